/* Rendering chain on synthetic frames: each VOI LUT Function against PS3.3 C.11.2 worked
 * values, rescale and Modality LUT, VOI LUT sequence, MONOCHROME1 inversion, the percentile
 * default window (without Pixel Padding), colour to luminance, and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "image/image.h"

static struct cxr_dicom_pixel_desc mono_desc(const char *photometric)
{
    struct cxr_dicom_pixel_desc desc = {
            .transfer_syntax_uid = "1.2.840.10008.1.2.1",
            .rows = 1,
            .samples_per_pixel = 1,
            .number_of_frames = 1,
            .bits_allocated = 16,
            .bits_stored = 12,
            .high_bit = 11,
            .photometric_interpretation = photometric,
            .rescale_slope = 1,
    };
    return desc;
}

static struct cxr_codec_frame frame_of(const int32_t *values, uint32_t count,
                                       const char *photometric, uint32_t samples_per_pixel)
{
    struct cxr_codec_frame frame = {.width = count, .height = 1};
    frame.samples_per_pixel = samples_per_pixel;
    strcpy(frame.photometric, photometric);
    frame.samples = (int32_t *)values;
    return frame;
}

static void render(const struct cxr_dicom_pixel_desc *desc, const struct cxr_codec_frame *frame,
                   uint8_t *out)
{
    struct cxr_gray8 image;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_image_render_frame(desc, frame, &image, &err), CXR_OK);
    assert_int_equal(image.width, frame->width);
    memcpy(out, image.pixels, image.width);
    cxr_image_gray8_release(&image);
    assert_null(image.pixels);
}

static void linear_window_matches_the_standard(void **state)
{
    (void)state;
    /* C = 100, W = 51: values <= 74.5 -> 0, > 124.5 -> 255, else
     * ((x - 99.5) / 50 + 0.5) * 255. x = 100 -> 130.05 -> 130; x = 90 -> 79.05 -> 79. */
    static const int32_t values[] = {0, 74, 75, 90, 100, 124, 125, 4095};
    double centre = 100;
    double width = 51;
    struct cxr_dicom_pixel_desc desc = mono_desc("MONOCHROME2");
    desc.window_count = 1;
    desc.window_centers = &centre;
    desc.window_widths = &width;
    struct cxr_codec_frame frame = frame_of(values, 8, "MONOCHROME2", 1);
    uint8_t out[8];
    render(&desc, &frame, out);
    static const uint8_t expect[] = {0, 0, 3, 79, 130, 252, 255, 255};
    assert_memory_equal(out, expect, sizeof(expect));

    /* MONOCHROME1: the same window, inverted. */
    desc.photometric_interpretation = "MONOCHROME1";
    frame = frame_of(values, 8, "MONOCHROME1", 1);
    render(&desc, &frame, out);
    for (int i = 0; i < 8; i++)
        assert_int_equal(out[i], 255 - expect[i]);
}

static void linear_exact_and_sigmoid(void **state)
{
    (void)state;
    static const int32_t values[] = {0, 50, 75, 100, 125, 150};
    double centre = 100;
    double width = 50;
    struct cxr_dicom_pixel_desc desc = mono_desc("MONOCHROME2");
    desc.window_count = 1;
    desc.window_centers = &centre;
    desc.window_widths = &width;
    desc.voi_lut_function = CXR_VOI_LINEAR_EXACT;
    struct cxr_codec_frame frame = frame_of(values, 6, "MONOCHROME2", 1);
    uint8_t out[6];
    render(&desc, &frame, out);
    /* <= 75 -> 0; > 125 -> 255; 100 -> 127.5 -> 128; 125 -> 255. */
    static const uint8_t exact[] = {0, 0, 0, 128, 255, 255};
    assert_memory_equal(out, exact, sizeof(exact));

    desc.voi_lut_function = CXR_VOI_SIGMOID;
    render(&desc, &frame, out);
    /* 255 / (1 + exp(-4 (x - 100) / 50)): x = 75 -> 30.5, 100 -> 127.5, 125 -> 224.5,
     * 50 -> 4.6, 150 -> 250.4. */
    static const uint8_t sigmoid[] = {0, 5, 31, 128, 225, 250};
    for (int i = 0; i < 6; i++)
        assert_in_range(out[i], sigmoid[i] > 0 ? sigmoid[i] - 1 : 0, sigmoid[i] + 1);
}

static void rescale_and_modality_lut_come_before_the_window(void **state)
{
    (void)state;
    static const int32_t values[] = {0, 1000, 1024, 2048};
    double centre = 0; /* Hounsfield units after rescale */
    double width = 2;
    struct cxr_dicom_pixel_desc desc = mono_desc("MONOCHROME2");
    desc.has_rescale = true;
    desc.rescale_slope = 1;
    desc.rescale_intercept = -1024;
    desc.window_count = 1;
    desc.window_centers = &centre;
    desc.window_widths = &width;
    struct cxr_codec_frame frame = frame_of(values, 4, "MONOCHROME2", 1);
    uint8_t out[4];
    render(&desc, &frame, out);
    /* -1024, -24 -> 0; 0 -> ((0 + 0.5) / 1 + 0.5) * 255 = 255; 1024 -> 255 */
    static const uint8_t expect[] = {0, 0, 255, 255};
    assert_memory_equal(out, expect, sizeof(expect));

    /* A Modality LUT replaces the rescale: entries 10 20 30 from stored value 1000. */
    static const uint16_t entries[] = {10, 20, 30};
    struct cxr_dicom_lut lut = {3, 1000, 16, entries};
    static const int32_t lut_values[] = {0, 1000, 1001, 1002, 3000};
    double lut_centre = 20.5;
    double lut_width = 21; /* 10 -> 0 ... 30 -> 255, linear */
    desc.modality_lut = &lut;
    desc.window_centers = &lut_centre;
    desc.window_widths = &lut_width;
    frame = frame_of(lut_values, 5, "MONOCHROME2", 1);
    uint8_t lut_out[5];
    render(&desc, &frame, lut_out);
    static const uint8_t lut_expect[] = {0, 0, 128, 255, 255};
    assert_memory_equal(lut_out, lut_expect, sizeof(lut_expect));
}

static void voi_lut_sequence_is_used_without_a_window(void **state)
{
    (void)state;
    /* 12-bit table declared as 16 bits per entry but holding at most 4095: scaled by 4095. */
    static const uint16_t entries[] = {0, 4095, 2048};
    struct cxr_dicom_lut lut = {3, 5, 16, entries};
    static const int32_t values[] = {5, 6, 7, 100};
    struct cxr_dicom_pixel_desc desc = mono_desc("MONOCHROME2");
    desc.voi_lut = &lut;
    struct cxr_codec_frame frame = frame_of(values, 4, "MONOCHROME2", 1);
    uint8_t out[4];
    render(&desc, &frame, out);
    static const uint8_t expect[] = {0, 255, 128, 128};
    assert_memory_equal(out, expect, sizeof(expect));
}

static void default_window_ignores_outliers(void **state)
{
    (void)state;
    /* 1000 pixels from 1000 to 1999 plus two extreme outliers: the 0.5-99.5 percentile window
     * spans about 1004..1994, so the outliers saturate and the ramp keeps its contrast. */
    int32_t *values = malloc(1002 * sizeof(*values));
    for (int i = 0; i < 1000; i++)
        values[i] = 1000 + i;
    values[1000] = 0;
    values[1001] = 60000;
    struct cxr_dicom_pixel_desc desc = mono_desc("MONOCHROME2");
    desc.bits_stored = 16;
    struct cxr_codec_frame frame = frame_of(values, 1002, "MONOCHROME2", 1);
    uint8_t out[1002];
    render(&desc, &frame, out);
    assert_int_equal(out[1000], 0);
    assert_int_equal(out[1001], 255);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[999], 255);
    assert_in_range(out[500], 125, 131); /* mid-ramp stays mid-grey */
    free(values);
}

static void default_window_leaves_out_pixel_padding(void **state)
{
    (void)state;
    /* A ramp -1000..-1 padded by 1000 pixels of -2000 (signed, as CT pads): with the padding
     * left out the window spans the ramp alone; a frame of nothing but padding still renders.
     * The same through the 32-bit path, whose range is too wide for a lookup table. */
    int32_t *values = malloc(2000 * sizeof(*values));
    for (int i = 0; i < 1000; i++) {
        values[i] = -1000 + i;
        values[1000 + i] = -2000;
    }
    struct cxr_dicom_pixel_desc desc = mono_desc("MONOCHROME2");
    desc.bits_stored = 16;
    desc.pixel_representation = 1;
    desc.has_pixel_padding = true;
    desc.pixel_padding_low = -2000;
    desc.pixel_padding_high = -2000;
    struct cxr_codec_frame frame = frame_of(values, 2000, "MONOCHROME2", 1);
    uint8_t out[2000];
    render(&desc, &frame, out);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[999], 255);
    assert_in_range(out[500], 125, 131);
    assert_int_equal(out[1000], 0); /* padding below the window: black */

    desc.has_pixel_padding = false; /* half the pixels at -2000 pull the window down */
    render(&desc, &frame, out);
    assert_in_range(out[500], 185, 200); /* -500 in a window of about -2000..-5 */

    values[1999] = 1 << 30; /* the 32-bit path: one far pixel, padding left out again */
    desc.has_pixel_padding = true;
    render(&desc, &frame, out);
    assert_int_equal(out[999], 255);
    assert_in_range(out[500], 125, 131);

    for (int i = 0; i < 2000; i++)
        values[i] = -2000;
    render(&desc, &frame, out);
    assert_int_equal(out[0], out[1999]);
    free(values);
}

static void colour_becomes_luminance(void **state)
{
    (void)state;
    static const int32_t rgb[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
    struct cxr_dicom_pixel_desc desc = mono_desc("RGB");
    desc.samples_per_pixel = 3;
    desc.bits_stored = 8;
    struct cxr_codec_frame frame = frame_of(rgb, 4, "RGB", 3);
    uint8_t out[4];
    render(&desc, &frame, out);
    /* Rec. 601: 0.299, 0.587, 0.114 of 255. */
    static const uint8_t expect[] = {76, 150, 29, 255};
    assert_memory_equal(out, expect, sizeof(expect));

    static const int32_t ybr[] = {10, 128, 128, 200, 0, 255};
    frame = frame_of(ybr, 2, "YBR_FULL", 3);
    uint8_t luma[2];
    render(&desc, &frame, luma);
    assert_int_equal(luma[0], 10);
    assert_int_equal(luma[1], 200);
}

static void palette_colour_is_refused(void **state)
{
    (void)state;
    static const int32_t values[] = {1, 2};
    struct cxr_dicom_pixel_desc desc = mono_desc("PALETTE COLOR");
    struct cxr_codec_frame frame = frame_of(values, 2, "PALETTE COLOR", 1);
    struct cxr_gray8 image = {0};
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_image_render_frame(&desc, &frame, &image, &err), CXR_ERR_UNSUPPORTED);
    assert_null(image.pixels);
    assert_non_null(strstr(err.message, "PALETTE"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(linear_window_matches_the_standard),
            cmocka_unit_test(linear_exact_and_sigmoid),
            cmocka_unit_test(rescale_and_modality_lut_come_before_the_window),
            cmocka_unit_test(voi_lut_sequence_is_used_without_a_window),
            cmocka_unit_test(default_window_ignores_outliers),
            cmocka_unit_test(default_window_leaves_out_pixel_padding),
            cmocka_unit_test(colour_becomes_luminance),
            cmocka_unit_test(palette_colour_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
