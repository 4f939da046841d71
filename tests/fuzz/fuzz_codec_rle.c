/* Fuzz target for the RLE Lossless decoder: the first 6 bytes choose the image (width and
 * height up to 256, samples 1 or 3, Bits Allocated 1/8/16/32); the rest is the fragment. */
#include <stdint.h>
#include <stdlib.h>

#include "codec/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6)
        return 0;
    static const uint16_t depths[] = {8, 16, 32, 1};
    uint32_t width = (uint32_t)data[0] + 1;
    uint32_t height = (uint32_t)data[1] + 1;
    uint32_t samples_per_pixel = data[2] & 1 ? 3 : 1;
    uint16_t bits = depths[data[3] & 3];
    int32_t *samples = malloc((size_t)width * height * samples_per_pixel * sizeof(*samples));
    if (samples == NULL)
        return 0;
    cxr_codec_rle_decode(data + 6, size - 6, width, height, samples_per_pixel, bits, samples, NULL);
    free(samples);
    return 0;
}
