/* RLE Lossless decoder: PackBits runs, byte planes most significant first, multi-sample
 * images, and every kind of malformed header or segment, on hand-built fragments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"

/* A fragment: 64-byte header with the given segments, concatenated. */
static size_t build(uint8_t *out, const uint8_t *const *segments, const size_t *sizes,
                    uint32_t count)
{
    memset(out, 0, 64);
    out[0] = (uint8_t)count;
    size_t at = 64;
    for (uint32_t i = 0; i < count; i++) {
        out[4 + 4 * i] = (uint8_t)at;
        out[5 + 4 * i] = (uint8_t)(at >> 8);
        memcpy(out + at, segments[i], sizes[i]);
        at += sizes[i];
    }
    return at;
}

static void literal_replicate_and_noop_runs(void **state)
{
    (void)state;
    /* literal 2 bytes, a no-op (-128), replicate 7 three times, literal 1 byte */
    static const uint8_t segment[] = {0x01, 10, 20, 0x80, 0xFE, 7, 0x00, 99};
    const uint8_t *segments[] = {segment};
    size_t sizes[] = {sizeof(segment)};
    uint8_t fragment[128];
    size_t size = build(fragment, segments, sizes, 1);
    int32_t samples[6];
    assert_int_equal(cxr_codec_rle_decode(fragment, size, 3, 2, 1, 8, samples, NULL), CXR_OK);
    static const int32_t expect[] = {10, 20, 7, 7, 7, 99};
    assert_memory_equal(samples, expect, sizeof(expect));
}

static void sixteen_bits_most_significant_plane_first(void **state)
{
    (void)state;
    static const uint8_t high[] = {0x01, 0x12, 0xFF};
    static const uint8_t low[] = {0x01, 0x34, 0x01};
    const uint8_t *segments[] = {high, low};
    size_t sizes[] = {3, 3};
    uint8_t fragment[128];
    size_t size = build(fragment, segments, sizes, 2);
    int32_t samples[2];
    assert_int_equal(cxr_codec_rle_decode(fragment, size, 2, 1, 1, 16, samples, NULL), CXR_OK);
    assert_int_equal(samples[0], 0x1234);
    assert_int_equal(samples[1], 0xFF01);
}

static void rgb_planes_are_interleaved(void **state)
{
    (void)state;
    static const uint8_t red[] = {0xFF, 1}; /* replicate twice */
    static const uint8_t green[] = {0x01, 2, 3};
    static const uint8_t blue[] = {0xFF, 4};
    const uint8_t *segments[] = {red, green, blue};
    size_t sizes[] = {2, 3, 2};
    uint8_t fragment[128];
    size_t size = build(fragment, segments, sizes, 3);
    int32_t samples[6];
    assert_int_equal(cxr_codec_rle_decode(fragment, size, 2, 1, 3, 8, samples, NULL), CXR_OK);
    static const int32_t expect[] = {1, 2, 4, 1, 3, 4};
    assert_memory_equal(samples, expect, sizeof(expect));
}

static void malformed_fragments_are_rejected(void **state)
{
    (void)state;
    static const uint8_t segment[] = {0x03, 1, 2, 3, 4};
    const uint8_t *segments[] = {segment, segment};
    size_t sizes[] = {sizeof(segment), sizeof(segment)};
    uint8_t fragment[128];
    int32_t samples[6];
    struct cxr_err err = CXR_ERR_INIT;

    /* Two segments for an 8-bit single-sample image. */
    size_t size = build(fragment, segments, sizes, 2);
    assert_int_equal(cxr_codec_rle_decode(fragment, size, 2, 2, 1, 8, samples, &err),
                     CXR_ERR_MALFORMED);
    assert_non_null(strstr(err.message, "RLE"));

    /* Every truncation of a valid fragment fails cleanly. */
    size = build(fragment, segments, sizes, 1);
    for (size_t cut = 0; cut < size; cut++)
        assert_int_equal(cxr_codec_rle_decode(fragment, cut, 2, 2, 1, 8, samples, NULL),
                         CXR_ERR_MALFORMED);
    assert_int_equal(cxr_codec_rle_decode(fragment, size, 2, 2, 1, 8, samples, NULL), CXR_OK);

    /* Segment offset pointing into the header, or past the end. */
    fragment[4] = 10;
    assert_int_equal(cxr_codec_rle_decode(fragment, size, 2, 2, 1, 8, samples, NULL),
                     CXR_ERR_MALFORMED);
    fragment[4] = 200;
    assert_int_equal(cxr_codec_rle_decode(fragment, size, 2, 2, 1, 8, samples, NULL),
                     CXR_ERR_MALFORMED);

    /* A segment that decodes to fewer bytes than the plane. */
    size = build(fragment, segments, sizes, 1);
    assert_int_equal(cxr_codec_rle_decode(fragment, size, 3, 2, 1, 8, samples, NULL),
                     CXR_ERR_MALFORMED);

    /* Unsupported depth. */
    assert_int_equal(cxr_codec_rle_decode(fragment, size, 2, 2, 1, 12, samples, NULL),
                     CXR_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(literal_replicate_and_noop_runs),
            cmocka_unit_test(sixteen_bits_most_significant_plane_first),
            cmocka_unit_test(rgb_planes_are_interleaved),
            cmocka_unit_test(malformed_fragments_are_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
