/* JPEG XL through cxr_codec_frame_decode against libjxl's own encoder: lossless streams of
 * 8, 10, 12 and 16-bit grey, a 16-bit stream holding 10-bit values, signed 12-bit values and
 * 8-bit RGB, written by JxlEncoder from known samples, must decode to exactly those samples (a
 * codestream or a container, a pad byte after it); a stream whose size, colour channels or
 * alpha disagree with the DICOM header, and truncated or garbage bytes, are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jxl/encode.h>

#include "codec/codec.h"

static const char *const JXL_LOSSLESS = "1.2.840.10008.1.2.4.110";

struct stream {
    uint8_t *bytes;
    size_t size;
};

/* A lossless JPEG XL stream of width x height samples (channels 1 or 3, values < 2^bits),
 * with an alpha channel when alpha, in a container when container. The samples go in as
 * floats v / (2^bits - 1): libjxl 0.7 reads integer buffers as full-range 8 or 16 bits. */
static struct stream encode(const uint32_t *values, uint32_t width, uint32_t height,
                            uint32_t channels, uint32_t bits, bool alpha, bool container)
{
    JxlEncoder *encoder = JxlEncoderCreate(NULL);
    assert_non_null(encoder);
    JxlBasicInfo info;
    JxlEncoderInitBasicInfo(&info);
    info.xsize = width;
    info.ysize = height;
    info.bits_per_sample = bits;
    info.num_color_channels = channels;
    info.uses_original_profile = JXL_TRUE;
    info.num_extra_channels = alpha ? 1 : 0;
    info.alpha_bits = alpha ? bits : 0;
    assert_int_equal(JxlEncoderUseContainer(encoder, container), JXL_ENC_SUCCESS);
    assert_int_equal(JxlEncoderSetBasicInfo(encoder, &info), JXL_ENC_SUCCESS);
    JxlColorEncoding colour;
    JxlColorEncodingSetToSRGB(&colour, channels == 1);
    assert_int_equal(JxlEncoderSetColorEncoding(encoder, &colour), JXL_ENC_SUCCESS);
    JxlEncoderFrameSettings *settings = JxlEncoderFrameSettingsCreate(encoder, NULL);
    assert_int_equal(JxlEncoderSetFrameLossless(settings, JXL_TRUE), JXL_ENC_SUCCESS);
    uint32_t planes = channels + (alpha ? 1 : 0); /* alpha repeats the first channel */
    size_t pixels = (size_t)width * height;
    float *input = malloc(pixels * planes * sizeof(*input));
    assert_non_null(input);
    float top = (float)((1u << bits) - 1);
    for (size_t p = 0; p < pixels; p++)
        for (uint32_t c = 0; c < planes; c++)
            input[p * planes + c] = (float)values[p * channels + (c < channels ? c : 0)] / top;
    JxlPixelFormat format = {planes, JXL_TYPE_FLOAT, JXL_NATIVE_ENDIAN, 0};
    assert_int_equal(
            JxlEncoderAddImageFrame(settings, &format, input, pixels * planes * sizeof(*input)),
            JXL_ENC_SUCCESS);
    JxlEncoderCloseInput(encoder);
    struct stream out = {malloc(1 << 20), 0};
    assert_non_null(out.bytes);
    uint8_t *next = out.bytes;
    size_t left = 1 << 20;
    assert_int_equal(JxlEncoderProcessOutput(encoder, &next, &left), JXL_ENC_SUCCESS);
    out.size = (size_t)(next - out.bytes);
    free(input);
    JxlEncoderDestroy(encoder);
    return out;
}

static enum cxr_status decode(const struct stream *stream, uint32_t width, uint32_t height,
                              uint32_t channels, uint32_t bits_stored, bool is_signed,
                              struct cxr_codec_frame *frame)
{
    struct cxr_dicom_pixel_desc desc = {
            .transfer_syntax_uid = JXL_LOSSLESS,
            .rows = height,
            .columns = width,
            .samples_per_pixel = (uint16_t)channels,
            .bits_allocated = bits_stored > 8 ? 16 : 8,
            .bits_stored = (uint16_t)bits_stored,
            .high_bit = (uint16_t)(bits_stored - 1),
            .pixel_representation = is_signed ? 1 : 0,
            .photometric_interpretation = channels == 1 ? "MONOCHROME2" : "RGB",
    };
    struct cxr_dicom_fragment fragment = {stream->bytes, stream->size};
    struct cxr_dicom_pixel_data pixels = {
            .encapsulated = true, .fragment_count = 1, .fragments = &fragment};
    struct cxr_limits limits = cxr_limits_default();
    return cxr_codec_frame_decode(&desc, &pixels, 0, &limits, frame, NULL);
}

/* Values spread over the whole range of bits, in a pattern that is not smooth. */
static uint32_t *pattern(size_t count, uint32_t bits)
{
    uint32_t *values = malloc(count * sizeof(*values));
    assert_non_null(values);
    for (size_t i = 0; i < count; i++)
        values[i] = (uint32_t)((i * 2654435761u) >> 7) & ((1u << bits) - 1);
    values[0] = 0;
    values[1] = (1u << bits) - 1;
    return values;
}

static void lossless_grey_decodes_exactly(void **state)
{
    (void)state;
    enum { W = 37, H = 23 };
    /* {bits of the stream, bits of the values and of Bits Stored} */
    const uint32_t depths[][2] = {{8, 8}, {10, 10}, {12, 12}, {16, 16}, {16, 10}};
    for (size_t d = 0; d < sizeof(depths) / sizeof(depths[0]); d++) {
        uint32_t *values = pattern(W * H, depths[d][1]);
        for (int container = 0; container < 2; container++) {
            struct stream stream = encode(values, W, H, 1, depths[d][0], false, container);
            stream.bytes[stream.size++] = 0; /* the pad to an even length a fragment may have */
            struct cxr_codec_frame frame;
            assert_int_equal(decode(&stream, W, H, 1, depths[d][1], false, &frame), CXR_OK);
            for (size_t i = 0; i < W * H; i++)
                assert_int_equal(frame.samples[i], values[i]);
            cxr_codec_frame_release(&frame);
            free(stream.bytes);
        }
        free(values);
    }
}

/* Signed 12-bit values stored as their two's complement bit patterns, as for other codecs. */
static void signed_values_come_back_signed(void **state)
{
    (void)state;
    enum { W = 16, H = 9 };
    uint32_t *patterns = pattern(W * H, 12);
    struct stream stream = encode(patterns, W, H, 1, 12, false, false);
    struct cxr_codec_frame frame;
    assert_int_equal(decode(&stream, W, H, 1, 12, true, &frame), CXR_OK);
    for (size_t i = 0; i < W * H; i++) {
        int32_t want = patterns[i] >= 2048 ? (int32_t)patterns[i] - 4096 : (int32_t)patterns[i];
        assert_int_equal(frame.samples[i], want);
    }
    cxr_codec_frame_release(&frame);
    free(stream.bytes);
    free(patterns);
}

static void lossless_rgb_decodes_exactly(void **state)
{
    (void)state;
    enum { W = 19, H = 11 };
    uint32_t *values = pattern(W * H * 3, 8);
    struct stream stream = encode(values, W, H, 3, 8, false, false);
    struct cxr_codec_frame frame;
    assert_int_equal(decode(&stream, W, H, 3, 8, false, &frame), CXR_OK);
    for (size_t i = 0; i < W * H * 3; i++)
        assert_int_equal(frame.samples[i], values[i]);
    cxr_codec_frame_release(&frame);
    free(stream.bytes);
    free(values);
}

static void disagreeing_or_broken_streams_are_refused(void **state)
{
    (void)state;
    enum { W = 12, H = 8 };
    uint32_t *values = pattern(W * H, 8);
    struct stream stream = encode(values, W, H, 1, 8, false, false);
    struct cxr_codec_frame frame;
    assert_int_equal(decode(&stream, W + 1, H, 1, 8, false, &frame), CXR_ERR_MALFORMED);
    assert_int_equal(decode(&stream, W, H, 3, 8, false, &frame), CXR_ERR_MALFORMED);
    struct stream truncated = {stream.bytes, stream.size / 2};
    assert_int_equal(decode(&truncated, W, H, 1, 8, false, &frame), CXR_ERR_MALFORMED);
    struct stream garbage = {(uint8_t *)"\xff\x0a\xff\xff\xff\xff\xff\xff", 8};
    assert_int_equal(decode(&garbage, W, H, 1, 8, false, &frame), CXR_ERR_MALFORMED);
    struct stream not_jxl = {(uint8_t *)"\xff\xd8\xff\xe0\x00\x10JFIF", 10};
    assert_int_equal(decode(&not_jxl, W, H, 1, 8, false, &frame), CXR_ERR_MALFORMED);
    struct stream with_alpha = encode(values, W, H, 1, 8, true, false);
    assert_int_equal(decode(&with_alpha, W, H, 1, 8, false, &frame), CXR_ERR_UNSUPPORTED);
    free(with_alpha.bytes);
    free(stream.bytes);
    free(values);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(lossless_grey_decodes_exactly),
            cmocka_unit_test(signed_values_come_back_signed),
            cmocka_unit_test(lossless_rgb_decodes_exactly),
            cmocka_unit_test(disagreeing_or_broken_streams_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
