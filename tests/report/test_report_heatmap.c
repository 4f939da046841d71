/* Heatmap overlay: refusal for Normal, the choice of the finding shown, per-map scaling (median
 * to maximum, weak and flat maps still show), bilinear upsampling at pixel centres (values from
 * PyTorch), the body mask on a synthetic radiograph (air, a burnt-in label and a collimator band
 * are outside), and the API heatmap of a finding present by a small margin: changed inside the
 * body, unchanged outside it, with a legend strip holding the colour bar. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report/report_internal.h"

static float cams[CXR_FINDING_COUNT * 144];

/* All findings absent at 0.1 < 0.5; maps of size side x side, all zero. */
static struct cxr_prediction make_prediction(uint32_t side)
{
    struct cxr_prediction prediction = {0};
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        prediction.findings[k] = (struct cxr_finding){cxr_model_finding_names[k], false, 0.1, 0.5};
    memset(cams, 0, sizeof(cams));
    prediction.result = CXR_RESULT_NORMAL;
    prediction.cam_width = side;
    prediction.cam_height = side;
    prediction.cams = cams;
    return prediction;
}

static void set_present(struct cxr_prediction *prediction, int finding, double confidence)
{
    prediction->findings[finding].presence = true;
    prediction->findings[finding].confidence = confidence;
    prediction->result = cxr_model_result_decide(prediction->findings);
}

/* A mask that is all body, for an image of width x height (factor 1). */
static uint8_t all_body[64 * 64];
static struct cxr_report_mask full_mask(uint32_t width, uint32_t height)
{
    memset(all_body, 1, sizeof(all_body));
    return (struct cxr_report_mask){width, height, 1, width, height, all_body};
}

static void normal_has_no_heatmap(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(2);
    uint8_t grey[16] = {0};
    struct cxr_gray8 source = {4, 4, grey};
    struct cxr_rgb8 out = {7, 7, NULL};
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_report_heatmap_render(&source, &prediction, &out, &err),
                     CXR_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "no finding is present"));
    assert_int_equal(out.width, 7); /* untouched on failure */
    assert_null(out.pixels);
}

static void finding_shown(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(2);
    assert_int_equal(cxr_report_finding_pick(&prediction), -1);
    set_present(&prediction, 3, 0.9);  /* margin 0.4 */
    set_present(&prediction, 6, 0.95); /* margin 0.45: the largest */
    assert_int_equal(cxr_report_finding_pick(&prediction), 6);
    prediction.findings[6].threshold = 0.9; /* margin 0.05 */
    assert_int_equal(cxr_report_finding_pick(&prediction), 3);
    set_present(&prediction, 0, 0.51); /* Tuberculosis first, whatever its margin */
    assert_int_equal(cxr_report_finding_pick(&prediction), 0);
}

static void each_map_scaled_on_its_own(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(2);
    struct cxr_report_mask mask = full_mask(2, 2);
    /* Map 1 [4, -1, 0, 8/3]: median 4/3, maximum 4 -> [1, 0, 0, 0.5]. Map 2 is the same map
     * a thousand times weaker and shifted: it must look the same. */
    const float values[4] = {4.0f, -1.0f, 0.0f, 8.0f / 3.0f};
    for (int i = 0; i < 4; i++) {
        cams[1 * 4 + i] = values[i];
        cams[2 * 4 + i] = values[i] * 1e-3f - 7.0f;
    }
    const float expected[4] = {1.0f, 0.0f, 0.0f, 0.5f};
    float heat[4];
    for (int finding = 1; finding <= 2; finding++) {
        assert_int_equal(cxr_report_heat_compute(&prediction, finding, &mask, 2, 2, heat, NULL),
                         CXR_OK);
        for (int i = 0; i < 4; i++)
            assert_float_equal(heat[i], expected[i], 1e-3);
    }
    /* A flat map has no maximum to point at: it shows evenly over the body, never blank. */
    for (int i = 0; i < 4; i++)
        cams[3 * 4 + i] = -2.5f;
    assert_int_equal(cxr_report_heat_compute(&prediction, 3, &mask, 2, 2, heat, NULL), CXR_OK);
    for (int i = 0; i < 4; i++)
        assert_float_equal(heat[i], 1.0f, 1e-6);
    /* NaN cells show nothing and do not spoil the others. */
    cams[1 * 4 + 1] = NAN;
    assert_int_equal(cxr_report_heat_compute(&prediction, 1, &mask, 2, 2, heat, NULL), CXR_OK);
    assert_float_equal(heat[0], 1.0f, 1e-6);
    assert_float_equal(heat[1], 0.0f, 1e-6);
}

static void bilinear_upsampling(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(2);
    const float values[4] = {4.0f, -1.0f, 0.0f, 8.0f / 3.0f}; /* scaled: [[1, 0], [0, 0.5]] */
    memcpy(cams + 4 * 4, values, sizeof(values));
    struct cxr_report_mask mask = full_mask(4, 4);
    float heat[16];
    assert_int_equal(cxr_report_heat_compute(&prediction, 4, &mask, 4, 4, heat, NULL), CXR_OK);
    /* Output pixel i maps to grid coordinate (i + 0.5) / 2 - 0.5, clamped: -0.25 -> 0, 0.25,
     * 0.75, 1.25 -> 1. Expected values from PyTorch:
     * interpolate(grid, size=(4, 4), mode="bilinear", align_corners=False). */
    const float expected[16] = {
            1.0f,  0.75f,   0.25f,   0.0f,   /* */
            0.75f, 0.5938f, 0.2812f, 0.125f, /* */
            0.25f, 0.2812f, 0.3438f, 0.375f, /* */
            0.0f,  0.125f,  0.375f,  0.5f,   /* */
    };
    for (int i = 0; i < 16; i++)
        assert_float_equal(heat[i], expected[i], 1e-4);
}

static double luminance(const uint8_t rgb[3])
{
    double linear[3];
    for (int c = 0; c < 3; c++) {
        double v = rgb[c] / 255.0;
        linear[c] = v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
    }
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
}

static void colormap_endpoints_and_monotone(void **state)
{
    (void)state;
    uint8_t table[256][3];
    cxr_report_colormap_fill(table);
    /* Cold end: near black, violet (blue and red above green). */
    assert_true(luminance(table[0]) < 0.01);
    assert_true(table[0][2] >= table[0][1] && table[0][0] >= table[0][1]);
    assert_true(table[0][0] < 32 && table[0][1] < 32 && table[0][2] < 32);
    /* Hot end: bright pale yellow. */
    assert_true(luminance(table[255]) > 0.7);
    assert_true(table[255][0] > table[255][1] && table[255][1] > table[255][2]);
    assert_true(table[255][0] > 240 && table[255][1] > 200);
    /* Middle: a saturated red-orange. */
    assert_true(table[128][0] > 120 && table[128][0] > 2 * table[128][1]);
    /* Lightness never falls: the map reads correctly in grey. */
    for (int i = 1; i < 256; i++) {
        if (luminance(table[i]) + 1e-9 < luminance(table[i - 1]))
            fail_msg("luminance falls at %d", i);
    }
    for (int i = 8; i < 256; i += 8)
        assert_true(luminance(table[i]) > luminance(table[i - 8]));
}

/* A synthetic radiograph, 320 x 256: dark air with noise, a textured elliptic body centred at
 * (150, 135) with radii 105 x 95, a burnt-in label (bright text-like bars) in the air at the
 * top left, and a flat bright collimator band on the right 18 columns. */
enum { IMAGE_WIDTH = 320, IMAGE_HEIGHT = 256, BAND = 18 };

static double body_radius(uint32_t x, uint32_t y)
{
    double dx = (x + 0.5 - 150.0) / 105.0, dy = (y + 0.5 - 135.0) / 95.0;
    return sqrt(dx * dx + dy * dy);
}

static struct cxr_gray8 make_radiograph(void)
{
    struct cxr_gray8 image = {IMAGE_WIDTH, IMAGE_HEIGHT, malloc(IMAGE_WIDTH * IMAGE_HEIGHT)};
    assert_non_null(image.pixels);
    uint32_t noise = 12345;
    for (uint32_t y = 0; y < IMAGE_HEIGHT; y++) {
        for (uint32_t x = 0; x < IMAGE_WIDTH; x++) {
            noise = noise * 1103515245u + 12345u;
            int value = 6 + (int)((noise >> 16) % 5);
            if (body_radius(x, y) < 1.0) /* ribs and vessels: texture the flood must not cross */
                value = 110 + (int)(45 * sin(x * 0.31) * cos(y * 0.23)) + (int)((noise >> 16) % 30);
            if (y >= 12 && y < 26 && x >= 10 && x < 60 && (x / 4) % 2 == 0)
                value = 250; /* label */
            if (x >= IMAGE_WIDTH - BAND)
                value = 245; /* collimator */
            image.pixels[(size_t)y * IMAGE_WIDTH + x] = (uint8_t)value;
        }
    }
    return image;
}

static void body_mask_of_synthetic_radiograph(void **state)
{
    (void)state;
    struct cxr_gray8 image = make_radiograph();
    struct cxr_report_mask mask = {0};
    assert_int_equal(cxr_report_mask_compute(&image, &mask, NULL), CXR_OK);
    assert_int_equal(mask.factor, 3); /* 320 / 128, rounded up */
    assert_int_equal(mask.width, 107);
    assert_int_equal(mask.height, 86);
    size_t both = 0, either = 0, label = 0, band = 0;
    for (uint32_t y = 0; y < mask.height; y++) {
        for (uint32_t x = 0; x < mask.width; x++) {
            bool inside = mask.inside[y * mask.width + x];
            bool truth = body_radius(x * 3 + 1, y * 3 + 1) < 1.0;
            both += inside && truth;
            either += inside || truth;
            label += inside && y * 3 >= 12 && y * 3 < 26 && x * 3 < 60;
            band += inside && x * 3 >= IMAGE_WIDTH - BAND;
        }
    }
    double overlap = (double)both / (double)either;
    printf("body mask: intersection over union with the true body %.3f\n", overlap);
    assert_true(overlap > 0.93);
    assert_int_equal(label, 0);
    assert_int_equal(band, 0);
    cxr_report_mask_release(&mask);
    cxr_report_mask_release(NULL);
    free(image.pixels);
}

/* The case: one finding present by a small margin, with a weak map whose strongest
 * cell lies in the air outside the body (where the old overlay drew its only colour). */
static void heatmap_shows_weak_finding_inside_body_only(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(12);
    set_present(&prediction, 1, 0.5004); /* Cardiomegaly, threshold 0.5 */
    set_present(&prediction, 3, 0.7);
    float *map = cams + 1 * 144;
    for (int r = 0; r < 12; r++)
        for (int c = 0; c < 12; c++) /* weak bump at cell (6, 5), inside the body */
            map[r * 12 + c] = 0.002f * expf(-((r - 6) * (r - 6) + (c - 5) * (c - 5)) / 4.0f);
    map[0] = 0.01f; /* the strongest cell: top-left corner, air */
    struct cxr_gray8 source = make_radiograph();
    struct cxr_rgb8 out = {0};
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_report_heatmap_render(&source, &prediction, &out, &err), CXR_OK);
    uint32_t legend = cxr_report_legend_height(IMAGE_WIDTH);
    assert_int_equal(out.width, IMAGE_WIDTH);
    assert_int_equal(out.height, IMAGE_HEIGHT + legend);

    size_t changed_inside = 0, changed_outside = 0, outside = 0, near_peak = 0;
    for (uint32_t y = 0; y < IMAGE_HEIGHT; y++) {
        for (uint32_t x = 0; x < IMAGE_WIDTH; x++) {
            size_t i = (size_t)y * IMAGE_WIDTH + x;
            const uint8_t *rgb = out.pixels + 3 * i;
            bool same = rgb[0] == source.pixels[i] && rgb[1] == source.pixels[i] &&
                        rgb[2] == source.pixels[i];
            double radius = body_radius(x, y);
            if (radius < 0.95) {
                changed_inside += !same;
            } else if (radius > 1.08) { /* beyond the mask cells on the skin line (3 pixels each) */
                outside++;
                changed_outside += !same;
            }
            /* Map cell (6, 5) is centred at (5.5 / 12 * 320, 6.5 / 12 * 256) = (147, 139). */
            if (abs((int)x - 147) < 8 && abs((int)y - 139) < 8)
                near_peak += !same && abs((int)rgb[0] - (int)source.pixels[i]) > 20;
        }
    }
    printf("changed pixels: %zu inside the body, %zu of %zu outside, %zu strongly near the peak\n",
           changed_inside, changed_outside, outside, near_peak);
    assert_int_equal(changed_outside, 0);
    assert_true(changed_inside > 2000);
    assert_true(near_peak > 100);

    /* The legend: a row of the strip holds the colour bar, the colour map's entries left to
     * right from the first to the last; white text is there too. */
    uint8_t table[256][3];
    cxr_report_colorbar_fill(table);
    bool found_bar = false;
    size_t light = 0;
    for (uint32_t y = IMAGE_HEIGHT; y < out.height; y++) {
        const uint8_t *row = out.pixels + (size_t)y * IMAGE_WIDTH * 3;
        int level = 0, first = -1, last = -1;
        for (uint32_t x = 0; x < IMAGE_WIDTH; x++) {
            const uint8_t *rgb = row + 3 * x;
            light += rgb[0] > 200 && rgb[1] > 200 && rgb[2] > 200;
            int match = -1;
            for (int l = level; l < 256 && match < 0; l++)
                match = memcmp(rgb, table[l], 3) == 0 ? l : -1;
            if (match >= 0 && (first >= 0 || match == 0)) {
                first = first < 0 ? (int)x : first;
                last = (int)x;
                level = match;
            } else if (first >= 0) {
                break;
            }
        }
        if (first >= 0 && level == 255 && last - first > 100)
            found_bar = true;
    }
    assert_true(found_bar);
    assert_true(light > 100);
    free(out.pixels);
    free(source.pixels);
}

/* The legend stays readable on small images (every radiograph of the data folder is 256 px
 * wide; the old strip drew its smaller lines 4.7 px high there): every line of text is at
 * least 7 px from its top to its bottom, there are at least three of them, and nothing runs
 * off the strip's bottom edge, with all ten other findings named. */
static void legend_readable_at_every_width(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(2);
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        set_present(&prediction, k, 0.9);
    prediction.findings[2].confidence = 0.0004; /* "0.0 %": not what the test measures */
    const uint32_t widths[] = {128, 256, 300, 383, 499, 500, 512, 1024, 3000};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        uint32_t width = widths[w], height = cxr_report_legend_height(width);
        uint8_t *rgb = malloc((size_t)width * height * 3);
        assert_non_null(rgb);
        struct cxr_report_legend_bar bar;
        assert_int_equal(cxr_report_legend_draw(&prediction, 2, rgb, width, height, &bar, NULL),
                         CXR_OK);
        int bands = 0, band = 0, shortest = 1 << 30;
        for (uint32_t y = 0; y <= height; y++) {
            bool text = false;
            for (uint32_t x = 0; y < height && x < width && !text; x++) {
                const uint8_t *p = rgb + ((size_t)y * width + x) * 3;
                bool in_bar = x >= bar.x0 && x < bar.x1 && y >= bar.y0 && y < bar.y1;
                text = !in_bar && p[0] > 160 && p[1] > 160 && p[2] > 160;
            }
            if (text) {
                band++;
            } else if (band > 0) {
                bands++;
                shortest = band < shortest ? band : shortest;
                band = 0;
            }
            if (y == height - 1)
                assert_false(text); /* nothing cut at the bottom edge */
        }
        printf("legend %u x %u: %d text bands, the shortest %d px\n", width, height, bands,
               shortest);
        assert_true(bands >= 3);
        assert_true(shortest >= 7);
        free(rgb);
    }
}

/* The colour bar shows what the overlay draws: its left end is the radiograph untouched (heat
 * 0), its right end the overlay's pixel at heat 1, both over the same grey (the old bar showed
 * the bare colour map: near-black violet where the overlay adds no colour at all). */
static void legend_bar_shows_overlay_colours(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(2);
    set_present(&prediction, 0, 0.9);
    cams[3] = 1.0f; /* TB map: cell (1, 1) hot, the others at the median */
    uint8_t grey[16 * 16];
    memset(grey, CXR_REPORT_BAR_GREY, sizeof grey);
    struct cxr_gray8 source = {16, 16, grey};
    struct cxr_report_mask mask = full_mask(16, 16);
    struct cxr_rgb8 overlay = {0};
    assert_int_equal(cxr_report_overlay(&source, &prediction, 0, &mask, &overlay, NULL), CXR_OK);
    const uint8_t *cold = overlay.pixels, *hot = overlay.pixels + (16 * 16 - 1) * 3;
    assert_true(cold[0] == CXR_REPORT_BAR_GREY && cold[1] == cold[0] && cold[2] == cold[0]);

    const uint32_t widths[] = {256, 1024};
    for (int w = 0; w < 2; w++) {
        uint32_t width = widths[w], height = cxr_report_legend_height(width);
        uint8_t *rgb = malloc((size_t)width * height * 3);
        assert_non_null(rgb);
        struct cxr_report_legend_bar bar;
        assert_int_equal(cxr_report_legend_draw(&prediction, 0, rgb, width, height, &bar, NULL),
                         CXR_OK);
        const uint8_t *left = rgb + ((size_t)bar.y0 * width + bar.x0) * 3;
        const uint8_t *right = rgb + ((size_t)bar.y0 * width + bar.x1 - 1) * 3;
        assert_memory_equal(left, cold, 3);
        assert_memory_equal(right, hot, 3);
        free(rgb);
    }
    free(overlay.pixels);
}

static void refuses_bad_arguments(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(2);
    set_present(&prediction, 0, 0.9);
    uint8_t grey[4] = {0};
    struct cxr_gray8 source = {2, 2, grey};
    struct cxr_gray8 empty = {0, 2, grey};
    struct cxr_rgb8 out = {0};
    assert_int_equal(cxr_report_heatmap_render(&empty, &prediction, &out, NULL),
                     CXR_ERR_INVALID_ARG);
    prediction.cams = NULL;
    assert_int_equal(cxr_report_heatmap_render(&source, &prediction, &out, NULL),
                     CXR_ERR_INVALID_ARG);
    prediction = make_prediction(2);
    set_present(&prediction, 0, 0.9);
    prediction.cam_width = 0;
    assert_int_equal(cxr_report_heatmap_render(&source, &prediction, &out, NULL),
                     CXR_ERR_INVALID_ARG);
    assert_null(out.pixels);
    struct cxr_report_mask mask = full_mask(2, 2);
    float heat[4];
    prediction = make_prediction(2);
    assert_int_equal(cxr_report_heat_compute(&prediction, 11, &mask, 2, 2, heat, NULL),
                     CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_report_heat_compute(&prediction, 0, NULL, 2, 2, heat, NULL),
                     CXR_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(normal_has_no_heatmap),
            cmocka_unit_test(finding_shown),
            cmocka_unit_test(each_map_scaled_on_its_own),
            cmocka_unit_test(bilinear_upsampling),
            cmocka_unit_test(colormap_endpoints_and_monotone),
            cmocka_unit_test(body_mask_of_synthetic_radiograph),
            cmocka_unit_test(heatmap_shows_weak_finding_inside_body_only),
            cmocka_unit_test(legend_readable_at_every_width),
            cmocka_unit_test(legend_bar_shows_overlay_colours),
            cmocka_unit_test(refuses_bad_arguments),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    cxr_report_shutdown(); /* the legend draws text with pango */
    return failed;
}
