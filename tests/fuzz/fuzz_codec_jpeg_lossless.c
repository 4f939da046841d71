/* Fuzz target for the JPEG Lossless decoder: the input is a JPEG stream; the image size and
 * component count are taken from its own frame header (bounded), as the DICOM header would
 * give them, so the fuzzer reaches the entropy decoder. Also routes through the header
 * reader used for all JPEG fragments. */
#include <stdint.h>
#include <stdlib.h>

#include "codec/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cxr_codec_jpeg_info info;
    if (cxr_codec_jpeg_info_read(data, size, &info, NULL) != CXR_OK)
        return 0;
    if (info.width == 0 || info.height == 0 || info.components == 0 || info.components > 4 ||
        (size_t)info.width * info.height > 1u << 20)
        return 0;
    size_t count = (size_t)info.width * info.height * info.components;
    int32_t *samples = malloc(count * sizeof(*samples));
    if (samples == NULL)
        return 0;
    cxr_codec_jpeg_lossless_decode(data, size, info.width, info.height, info.components, samples,
                                   NULL);
    free(samples);
    return 0;
}
