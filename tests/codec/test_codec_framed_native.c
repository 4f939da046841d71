/* Frames of native bytes, each in its own fragment, through cxr_codec_frame_decode: Deflated
 * Image Frame Compression (each frame deflated on its own) and Encapsulated Uncompressed (each
 * frame as it is). Every frame of a multi-frame image must decode to the values the same image
 * gives as native data (1-bit frames start on a byte boundary in a fragment, and run on bit by
 * bit when native); short, long, corrupt streams and a missing frame are refused as
 * malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libdeflate.h>

#include "codec/codec.h"

#define FRAMES 3

static const char *const DEFLATED = "1.2.840.10008.1.2.8.1";
static const char *const ENCAPSULATED = "1.2.840.10008.1.2.1.98";
static const char *const NATIVE = "1.2.840.10008.1.2.1";

/* Raw Deflate of size bytes into out (capacity 4096); returns the stream's length. */
static size_t deflate_bytes(const uint8_t *data, size_t size, uint8_t *out)
{
    struct libdeflate_compressor *packer = libdeflate_alloc_compressor(6);
    assert_non_null(packer);
    size_t packed = libdeflate_deflate_compress(packer, data, size, out, 4096);
    libdeflate_free_compressor(packer);
    assert_true(packed > 0);
    return packed;
}

static struct cxr_dicom_pixel_desc describe(const char *syntax, uint32_t rows, uint32_t columns,
                                            uint16_t bits_allocated, uint16_t bits_stored)
{
    struct cxr_dicom_pixel_desc desc = {
            .transfer_syntax_uid = syntax,
            .rows = rows,
            .columns = columns,
            .samples_per_pixel = 1,
            .number_of_frames = FRAMES,
            .bits_allocated = bits_allocated,
            .bits_stored = bits_stored,
            .high_bit = (uint16_t)(bits_stored - 1),
            .photometric_interpretation = "MONOCHROME2",
    };
    return desc;
}

static enum cxr_status decode(const struct cxr_dicom_pixel_desc *desc,
                              const struct cxr_dicom_pixel_data *pixels, uint32_t frame_index,
                              struct cxr_codec_frame *frame)
{
    struct cxr_limits limits = cxr_limits_default();
    return cxr_codec_frame_decode(desc, pixels, frame_index, &limits, frame, NULL);
}

/* A frame's fragment in syntax: deflated, or the bytes as they are (out holds 4096 bytes). */
static size_t encode(const char *syntax, const uint8_t *data, size_t size, uint8_t *out)
{
    if (strcmp(syntax, DEFLATED) == 0)
        return deflate_bytes(data, size, out);
    assert_true(size <= 4096);
    memcpy(out, data, size);
    return size;
}

/* Every frame of the fragments equals the same frame of the native data. */
static void assert_frames_match(const char *syntax, uint32_t rows, uint32_t columns,
                                uint16_t bits_allocated, uint16_t bits_stored,
                                const uint8_t *native_bytes, size_t native_size,
                                const struct cxr_dicom_fragment *fragments)
{
    struct cxr_dicom_pixel_desc native_desc =
            describe(NATIVE, rows, columns, bits_allocated, bits_stored);
    struct cxr_dicom_pixel_data native = {.native = native_bytes, .native_size = native_size};
    struct cxr_dicom_pixel_desc framed_desc =
            describe(syntax, rows, columns, bits_allocated, bits_stored);
    struct cxr_dicom_pixel_data framed = {
            .encapsulated = true, .fragment_count = FRAMES, .fragments = fragments};
    for (uint32_t f = 0; f < FRAMES; f++) {
        struct cxr_codec_frame want;
        struct cxr_codec_frame got;
        assert_int_equal(decode(&native_desc, &native, f, &want), CXR_OK);
        assert_int_equal(decode(&framed_desc, &framed, f, &got), CXR_OK);
        assert_memory_equal(got.samples, want.samples, (size_t)rows * columns * sizeof(int32_t));
        cxr_codec_frame_release(&want);
        cxr_codec_frame_release(&got);
    }
}

static void one_bit_frames_start_on_byte_boundaries(void **state)
{
    (void)state;
    /* 5 x 3 = 15 bits a frame: native frames share bytes, framed ones do not. */
    enum { ROWS = 3, COLUMNS = 5, BITS = ROWS * COLUMNS };
    uint8_t packed[(FRAMES * BITS + 7) / 8] = {0};
    uint8_t frame_bits[FRAMES][(BITS + 7) / 8];
    memset(frame_bits, 0, sizeof(frame_bits));
    for (int f = 0; f < FRAMES; f++) {
        for (int i = 0; i < BITS; i++) {
            int bit = (i * 7 + f * 3) % 5 < 2; /* a different pattern per frame */
            int at = f * BITS + i;
            packed[at / 8] |= (uint8_t)(bit << (at % 8));
            frame_bits[f][i / 8] |= (uint8_t)(bit << (i % 8));
        }
    }
    const char *const syntaxes[] = {DEFLATED, ENCAPSULATED};
    for (int s = 0; s < 2; s++) {
        uint8_t streams[FRAMES][4096];
        struct cxr_dicom_fragment fragments[FRAMES];
        for (int f = 0; f < FRAMES; f++) {
            fragments[f].data = streams[f];
            fragments[f].size =
                    encode(syntaxes[s], frame_bits[f], sizeof(frame_bits[f]), streams[f]);
        }
        assert_frames_match(syntaxes[s], ROWS, COLUMNS, 1, 1, packed, sizeof(packed), fragments);
    }
}

/* 12 bits stored in 16 with other bits set above High Bit; the second frame's fragment carries
 * one pad byte after the frame. */
static void sixteen_bit_frames_are_read_as_native(void **state)
{
    (void)state;
    enum { ROWS = 3, COLUMNS = 3, COUNT = ROWS * COLUMNS, BYTES = 2 * COUNT };
    uint8_t raw[FRAMES * BYTES];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)(i * 37 + 11);
    const char *const syntaxes[] = {DEFLATED, ENCAPSULATED};
    for (int s = 0; s < 2; s++) {
        uint8_t streams[FRAMES][4096];
        struct cxr_dicom_fragment fragments[FRAMES];
        for (int f = 0; f < FRAMES; f++) {
            uint8_t padded[BYTES + 1];
            memcpy(padded, raw + f * BYTES, BYTES);
            padded[BYTES] = 0;
            fragments[f].data = streams[f];
            fragments[f].size = encode(syntaxes[s], padded, f == 1 ? BYTES + 1 : BYTES, streams[f]);
        }
        assert_frames_match(syntaxes[s], ROWS, COLUMNS, 16, 12, raw, sizeof(raw), fragments);
    }
}

static void malformed_deflated_streams_are_refused(void **state)
{
    (void)state;
    enum { ROWS = 4, COLUMNS = 4, BYTES = ROWS * COLUMNS };
    uint8_t raw[BYTES + 2] = {0};
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)(i * 5);
    uint8_t exact[4096];
    uint8_t shorter[4096];
    uint8_t longer[4096];
    struct cxr_dicom_fragment fragment = {exact, deflate_bytes(raw, BYTES, exact)};
    struct cxr_dicom_pixel_desc desc = describe(DEFLATED, ROWS, COLUMNS, 8, 8);
    desc.number_of_frames = 1;
    struct cxr_dicom_pixel_data pixels = {
            .encapsulated = true, .fragment_count = 1, .fragments = &fragment};
    struct cxr_codec_frame frame;
    assert_int_equal(decode(&desc, &pixels, 0, &frame), CXR_OK);
    assert_int_equal(frame.samples[BYTES - 1], raw[BYTES - 1]);
    cxr_codec_frame_release(&frame);

    /* Fewer bytes than the frame, two more than the frame, a truncated and a garbage stream. */
    struct cxr_dicom_fragment bad[] = {
            {shorter, deflate_bytes(raw, BYTES - 1, shorter)},
            {longer, deflate_bytes(raw, BYTES + 2, longer)},
            {exact, fragment.size / 2},
            {(const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff", 8},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pixels.fragments = &bad[i];
        assert_int_equal(decode(&desc, &pixels, 0, &frame), CXR_ERR_MALFORMED);
    }

    /* Three frames declared, two fragments: the third is not there. */
    struct cxr_dicom_fragment two[] = {fragment, fragment};
    desc.number_of_frames = FRAMES;
    pixels.fragments = two;
    pixels.fragment_count = 2;
    assert_int_equal(decode(&desc, &pixels, 1, &frame), CXR_OK);
    cxr_codec_frame_release(&frame);
    assert_int_equal(decode(&desc, &pixels, 2, &frame), CXR_ERR_MALFORMED);
}

/* An encapsulated uncompressed fragment holds the frame, or the frame and one pad byte. */
static void encapsulated_frames_of_the_wrong_size_are_refused(void **state)
{
    (void)state;
    enum { ROWS = 4, COLUMNS = 4, BYTES = ROWS * COLUMNS };
    uint8_t raw[BYTES + 2];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)(i * 5 + 1);
    struct cxr_dicom_pixel_desc desc = describe(ENCAPSULATED, ROWS, COLUMNS, 8, 8);
    desc.number_of_frames = 1;
    struct cxr_dicom_fragment fragment = {raw, BYTES + 1};
    struct cxr_dicom_pixel_data pixels = {
            .encapsulated = true, .fragment_count = 1, .fragments = &fragment};
    struct cxr_codec_frame frame;
    assert_int_equal(decode(&desc, &pixels, 0, &frame), CXR_OK);
    assert_int_equal(frame.samples[BYTES - 1], raw[BYTES - 1]);
    cxr_codec_frame_release(&frame);
    const size_t wrong[] = {BYTES - 1, BYTES + 2, 0};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        fragment.size = wrong[i];
        assert_int_equal(decode(&desc, &pixels, 0, &frame), CXR_ERR_MALFORMED);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(one_bit_frames_start_on_byte_boundaries),
            cmocka_unit_test(sixteen_bit_frames_are_read_as_native),
            cmocka_unit_test(malformed_deflated_streams_are_refused),
            cmocka_unit_test(encapsulated_frames_of_the_wrong_size_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
