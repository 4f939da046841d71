/* JPEG Lossless decoder on hand-assembled streams whose every bit is worked out in the
 * comments (T.81 Annex H), including restart markers, plus truncation and corruption. The
 * DCMTK-encoded fixtures (test_codec_fixtures) cover real encoders and every predictor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"

/* 2x2, 8 bits, predictor 1, one DC table with three 2-bit codes: 00 -> SSSS 0, 01 -> SSSS 1,
 * 10 -> SSSS 2. Pixels 128 129 / 127 127:
 *   (0,0) prediction 2^7 = 128, difference 0: 00
 *   (1,0) prediction Ra = 128, difference +1: 01 1
 *   (0,1) prediction Rb = 128, difference -1: 01 0
 *   (1,1) prediction Ra = 127, difference 0: 00
 * Bits 0001101000, padded with ones: 0x1A 0x3F. */
static const uint8_t two_by_two[] = {
        0xFF, 0xD8, /* SOI */
        0xFF, 0xC4, 0x00, 0x16, 0x00, 0x00, 0x03, 0,    0,    0,    0,    0,    0,
        0,    0,                                                                      /* DHT */
        0,    0,    0,    0,    0,    0,    0x00, 0x01, 0x02,                         /* symbols */
        0xFF, 0xC3, 0x00, 0x0B, 0x08, 0x00, 0x02, 0x00, 0x02, 0x01, 0x01, 0x11, 0x00, /* SOF3 */
        0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, /* SOS, predictor 1 */
        0x1A, 0x3F, 0xFF, 0xD9};

/* The same image with a restart interval of one row: row 1 is predicted as a first row, so
 * (0,1) gets 128 again (difference -1) and (1,1) Ra = 127. Row 0: 00 01 1 -> 0x1F; RST0;
 * row 1: 01 0 00 -> 0x47. */
static const uint8_t with_restart[] = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x16, 0x00, 0x00, 0x03, 0,
                                       0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
                                       0,    0,    0,    0x00, 0x01, 0x02, 0xFF, 0xC3, 0x00, 0x0B,
                                       0x08, 0x00, 0x02, 0x00, 0x02, 0x01, 0x01, 0x11, 0x00, 0xFF,
                                       0xDD, 0x00, 0x04, 0x00, 0x02, /* DRI 2 */
                                       0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00,
                                       0x1F, 0xFF, 0xD0, 0x47, 0xFF, 0xD9};

static const int32_t expected[] = {128, 129, 127, 127};

static void decodes_hand_built_stream(void **state)
{
    (void)state;
    int32_t samples[4];
    assert_int_equal(
            cxr_codec_jpeg_lossless_decode(two_by_two, sizeof(two_by_two), 2, 2, 1, samples, NULL),
            CXR_OK);
    assert_memory_equal(samples, expected, sizeof(expected));
    struct cxr_codec_jpeg_info info;
    assert_int_equal(cxr_codec_jpeg_info_read(two_by_two, sizeof(two_by_two), &info, NULL), CXR_OK);
    assert_int_equal(info.sof_marker, 0xFFC3);
    assert_int_equal(info.precision, 8);
    assert_int_equal(info.width, 2);
    assert_int_equal(info.components, 1);
}

static void restart_resets_prediction(void **state)
{
    (void)state;
    int32_t samples[4];
    assert_int_equal(cxr_codec_jpeg_lossless_decode(with_restart, sizeof(with_restart), 2, 2, 1,
                                                    samples, NULL),
                     CXR_OK);
    assert_memory_equal(samples, expected, sizeof(expected));
}

static void size_mismatch_is_malformed(void **state)
{
    (void)state;
    int32_t samples[9];
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(
            cxr_codec_jpeg_lossless_decode(two_by_two, sizeof(two_by_two), 3, 3, 1, samples, &err),
            CXR_ERR_MALFORMED);
    assert_non_null(strstr(err.message, "JPEG Lossless"));
}

static void every_truncation_fails_cleanly(void **state)
{
    (void)state;
    int32_t samples[4];
    /* Cutting inside the headers or the scan fails; the only tolerated loss is the EOI. */
    for (size_t cut = 0; cut + 2 < sizeof(two_by_two); cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, two_by_two, cut);
        enum cxr_status status = cxr_codec_jpeg_lossless_decode(copy, cut, 2, 2, 1, samples, NULL);
        if (cut < sizeof(two_by_two) - 4)
            assert_int_not_equal(status, CXR_OK);
        free(copy);
    }
}

static void corrupt_headers_are_rejected(void **state)
{
    (void)state;
    int32_t samples[4];
    uint8_t copy[sizeof(two_by_two)];
    /* Predictor 0 (a DCT-style scan header). */
    memcpy(copy, two_by_two, sizeof(copy));
    copy[sizeof(copy) - 7] = 0x00;
    assert_int_equal(cxr_codec_jpeg_lossless_decode(copy, sizeof(copy), 2, 2, 1, samples, NULL),
                     CXR_ERR_MALFORMED);
    /* Scan uses table 1, never defined. */
    memcpy(copy, two_by_two, sizeof(copy));
    copy[sizeof(copy) - 8] = 0x10;
    assert_int_equal(cxr_codec_jpeg_lossless_decode(copy, sizeof(copy), 2, 2, 1, samples, NULL),
                     CXR_ERR_MALFORMED);
    /* Precision 1. */
    memcpy(copy, two_by_two, sizeof(copy));
    copy[30] = 0x01;
    assert_int_equal(cxr_codec_jpeg_lossless_decode(copy, sizeof(copy), 2, 2, 1, samples, NULL),
                     CXR_ERR_MALFORMED);
    /* A baseline frame header is not process 14. */
    memcpy(copy, two_by_two, sizeof(copy));
    copy[27] = 0xC0;
    assert_int_equal(cxr_codec_jpeg_lossless_decode(copy, sizeof(copy), 2, 2, 1, samples, NULL),
                     CXR_ERR_UNSUPPORTED);
    /* Oversubscribed Huffman table: 5 codes of length 2. */
    memcpy(copy, two_by_two, sizeof(copy));
    copy[8] = 0x05;
    assert_int_not_equal(cxr_codec_jpeg_lossless_decode(copy, sizeof(copy), 2, 2, 1, samples, NULL),
                         CXR_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(decodes_hand_built_stream),
            cmocka_unit_test(restart_resets_prediction),
            cmocka_unit_test(size_mismatch_is_malformed),
            cmocka_unit_test(every_truncation_fails_cleanly),
            cmocka_unit_test(corrupt_headers_are_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
