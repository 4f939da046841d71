/* Heatmap overlay: refusal for Normal, the confidence-weighted sum of present class maps,
 * bilinear upsampling at pixel centres (values worked out by hand), the blend, the output
 * size, and the colour map's endpoints and monotone lightness. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report/report_internal.h"

/* 2x2 class maps: Tuberculosis present (0.5) peaks top-left, Pleural Effusion present (1.0)
 * bottom-right, Consolidation absent with a huge peak top-right that must not show. Combined
 * map = 0.5*[4,0,0,0] + 1.0*[0,0,0,1] = [2,0,0,1] -> normalised [1,0,0,0.5]. */
static float cams[CXR_FINDING_COUNT * 4];

static struct cxr_prediction make_prediction(void)
{
    struct cxr_prediction prediction = {0};
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        prediction.findings[k] = (struct cxr_finding){cxr_finding_names[k], false, 0.1, 0.5};
    memset(cams, 0, sizeof(cams));
    cams[0 * 4 + 0] = 4.0f;
    cams[3 * 4 + 3] = 1.0f;
    cams[5 * 4 + 1] = 100.0f;
    cams[1 * 4 + 2] = -50.0f; /* absent too; negative */
    prediction.findings[0].presence = true;
    prediction.findings[0].confidence = 0.5;
    prediction.findings[3].presence = true;
    prediction.findings[3].confidence = 1.0;
    prediction.findings[5].confidence = 0.4;
    prediction.result = CXR_RESULT_TB_PRESUMPTIVE;
    prediction.cam_width = 2;
    prediction.cam_height = 2;
    prediction.cams = cams;
    return prediction;
}

static void normal_has_no_heatmap(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction();
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        prediction.findings[k].presence = false;
    prediction.result = CXR_RESULT_NORMAL;
    uint8_t grey[16] = {0};
    struct cxr_gray8 source = {4, 4, grey};
    struct cxr_rgb8 out = {7, 7, NULL};
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_report_heatmap(&source, &prediction, &out, &err), CXR_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "no finding is present"));
    assert_int_equal(out.width, 7); /* untouched on failure */
    assert_null(out.pixels);
}

static void weighted_sum_at_map_size(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction();
    float heat[4];
    assert_int_equal(cxr_report_heat_compute(&prediction, 2, 2, heat, NULL), CXR_OK);
    assert_float_equal(heat[0], 1.0f, 1e-6);
    assert_float_equal(heat[1], 0.0f, 1e-6);
    assert_float_equal(heat[2], 0.0f, 1e-6);
    assert_float_equal(heat[3], 0.5f, 1e-6);

    /* Weights follow confidence: raising Effusion's confidence to 4 would make both peaks
     * equal; with 2.0 the bottom-right is 2/2 = 1 and top-left 2/2 = 1. */
    prediction.findings[3].confidence = 2.0;
    assert_int_equal(cxr_report_heat_compute(&prediction, 2, 2, heat, NULL), CXR_OK);
    assert_float_equal(heat[0], 1.0f, 1e-6);
    assert_float_equal(heat[3], 1.0f, 1e-6);

    /* Only negative evidence: nothing is highlighted. */
    prediction = make_prediction();
    cams[0] = -4.0f;
    cams[3 * 4 + 3] = -1.0f;
    assert_int_equal(cxr_report_heat_compute(&prediction, 2, 2, heat, NULL), CXR_OK);
    for (int i = 0; i < 4; i++)
        assert_float_equal(heat[i], 0.0f, 1e-6);
}

static void bilinear_upsampling(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction();
    float heat[16];
    assert_int_equal(cxr_report_heat_compute(&prediction, 4, 4, heat, NULL), CXR_OK);
    /* Output pixel i maps to grid coordinate (i + 0.5) / 2 - 0.5, clamped: -0.25 -> 0, 0.25,
     * 0.75, 1.25 -> 1. Grid [[1, 0], [0, 0.5]]. Expected values from PyTorch:
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

static void overlay_blend_and_size(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction();
    enum { W = 6, H = 4 };
    uint8_t grey[W * H];
    for (int i = 0; i < W * H; i++)
        grey[i] = (uint8_t)(i * 10);
    struct cxr_gray8 source = {W, H, grey};
    struct cxr_rgb8 out = {0};
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_report_heatmap(&source, &prediction, &out, &err), CXR_OK);
    assert_int_equal(out.width, W);
    assert_int_equal(out.height, H);
    assert_non_null(out.pixels);

    float heat[W * H];
    assert_int_equal(cxr_report_heat_compute(&prediction, W, H, heat, NULL), CXR_OK);
    uint8_t table[256][3];
    cxr_report_colormap_fill(table);
    for (int i = 0; i < W * H; i++) {
        int level = (int)lroundf(heat[i] * 255.0f);
        double alpha = CXR_REPORT_HEAT_ALPHA * level / 255.0;
        for (int c = 0; c < 3; c++) {
            double expected = (1.0 - alpha) * grey[i] + alpha * table[level][c];
            assert_true(fabs(out.pixels[3 * i + c] - expected) <= 1.0);
        }
    }
    /* Top-left corner is the hottest point; the cold corner keeps the grey exactly. */
    assert_float_equal(heat[0], 1.0f, 1e-6);
    assert_float_equal(heat[W - 1], 0.0f, 1e-6);
    for (int c = 0; c < 3; c++)
        assert_int_equal(out.pixels[3 * (W - 1) + c], grey[W - 1]);
    free(out.pixels);
}

static void refuses_bad_arguments(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction();
    uint8_t grey[4] = {0};
    struct cxr_gray8 source = {2, 2, grey};
    struct cxr_gray8 empty = {0, 2, grey};
    struct cxr_rgb8 out = {0};
    assert_int_equal(cxr_report_heatmap(&empty, &prediction, &out, NULL), CXR_ERR_INVALID_ARG);
    prediction.cams = NULL;
    assert_int_equal(cxr_report_heatmap(&source, &prediction, &out, NULL), CXR_ERR_INVALID_ARG);
    prediction = make_prediction();
    prediction.cam_width = 0;
    assert_int_equal(cxr_report_heatmap(&source, &prediction, &out, NULL), CXR_ERR_INVALID_ARG);
    assert_null(out.pixels);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(normal_has_no_heatmap),
            cmocka_unit_test(weighted_sum_at_map_size),
            cmocka_unit_test(bilinear_upsampling),
            cmocka_unit_test(colormap_endpoints_and_monotone),
            cmocka_unit_test(overlay_blend_and_size),
            cmocka_unit_test(refuses_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
