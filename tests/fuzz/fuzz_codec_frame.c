/* Fuzz target for the frame decoding front door (cxr_codec_frame_decode): the first 6 bytes
 * describe the image (transfer syntax, up to 64 x 64, 1-4 frames, depth, samples, planar,
 * sign, Bits Stored, photometric); the rest is native pixel data, or for an encapsulated
 * syntax fragments separated by the item tag bytes FE FF 00 E0. Every frame is decoded: this
 * reaches fragment finding and joining, deflated frames and every codec on hostile bytes. */
#include <stdint.h>
#include <string.h>

#include "codec/codec.h"

#define MAX_FRAGMENTS 16

static const char *const syntaxes[] = {
        "1.2.840.10008.1.2.1",     "1.2.840.10008.1.2.2",    "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.8.1",   "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",  "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.1.98",
        "1.2.840.10008.1.2.4.110",
};
static const char *const photometrics[] = {"MONOCHROME2", "MONOCHROME1",  "RGB",
                                           "YBR_FULL",    "YBR_FULL_422", "PALETTE COLOR"};
static const uint8_t item_tag[4] = {0xFE, 0xFF, 0x00, 0xE0};

/* Splits data at every item tag into at most MAX_FRAGMENTS fragments; returns their count. */
static size_t split_fragments(const uint8_t *data, size_t size, struct cxr_dicom_fragment *out)
{
    size_t count = 0;
    size_t start = 0;
    for (size_t i = 0; i + 4 <= size && count + 1 < MAX_FRAGMENTS; i++) {
        if (memcmp(data + i, item_tag, 4) == 0) {
            out[count++] = (struct cxr_dicom_fragment){data + start, i - start};
            start = i + 4;
            i += 3;
        }
    }
    out[count++] = (struct cxr_dicom_fragment){data + start, size - start};
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6)
        return 0;
    static const uint16_t depths[] = {8, 16, 1, 32};
    const char *syntax = syntaxes[data[0] % (sizeof(syntaxes) / sizeof(syntaxes[0]))];
    uint16_t bits = depths[data[3] & 3];
    struct cxr_dicom_pixel_desc desc = {
            .transfer_syntax_uid = syntax,
            .rows = (uint32_t)(data[1] % 64) + 1,
            .columns = (uint32_t)(data[2] % 64) + 1,
            .samples_per_pixel = data[3] & 4 ? 3 : 1,
            .planar_configuration = (data[3] >> 3) & 1,
            .pixel_representation = (data[3] >> 4) & 1,
            .number_of_frames = (uint32_t)((data[3] >> 5) & 3) + 1,
            .bits_allocated = bits,
            .bits_stored = (uint16_t)(data[4] % bits + 1),
            .photometric_interpretation =
                    photometrics[data[5] % (sizeof(photometrics) / sizeof(photometrics[0]))],
    };
    desc.high_bit = (uint16_t)(desc.bits_stored - 1);
    struct cxr_dicom_fragment fragments[MAX_FRAGMENTS];
    struct cxr_dicom_pixel_data pixels = {.encapsulated = cxr_codec_syntax_encapsulated(syntax)};
    if (pixels.encapsulated) {
        pixels.fragment_count = split_fragments(data + 6, size - 6, fragments);
        pixels.fragments = fragments;
    } else {
        pixels.big_endian = strcmp(syntax, "1.2.840.10008.1.2.2") == 0;
        pixels.native = data + 6;
        pixels.native_size = size - 6;
    }
    struct cxr_limits limits = cxr_limits_default();
    for (uint32_t f = 0; f < desc.number_of_frames; f++) {
        struct cxr_codec_frame frame;
        if (cxr_codec_frame_decode(&desc, &pixels, f, &limits, &frame, NULL) == CXR_OK)
            cxr_codec_frame_release(&frame);
    }
    return 0;
}
