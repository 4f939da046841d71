/* Resampling into the network tensor: exact area averages when shrinking by whole and by
 * fractional factors, bilinear enlargement, the affine value map, histogram equalisation by its
 * definition, and argument checks. The resampler itself: interleaved channels kept apart, float
 * sources, rows handed out in order. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "image/image.h"

static void halving_averages_two_by_two_blocks(void **state)
{
    (void)state;
    uint8_t pixels[16];
    for (int i = 0; i < 16; i++)
        pixels[i] = (uint8_t)(i * 10);
    struct cxr_gray8 image = {4, 4, pixels};
    float tensor[4];
    assert_int_equal(cxr_image_to_tensor(&image, 2, 2, 1.0f, 0.0f, tensor, NULL), CXR_OK);
    /* block (0,0): 0 10 40 50 -> 25; (1,0): 20 30 60 70 -> 45; (0,1): 105; (1,1): 125 */
    assert_float_equal(tensor[0], 25.0f, 1e-4);
    assert_float_equal(tensor[1], 45.0f, 1e-4);
    assert_float_equal(tensor[2], 105.0f, 1e-4);
    assert_float_equal(tensor[3], 125.0f, 1e-4);

    /* scale and offset: windowed 8-bit to [-1024, 1024] as the model contract suggests */
    assert_int_equal(cxr_image_to_tensor(&image, 2, 2, 2048.0f / 255.0f, -1024.0f, tensor, NULL),
                     CXR_OK);
    assert_float_equal(tensor[0], 25.0f * 2048.0f / 255.0f - 1024.0f, 1e-2);
}

static void fractional_shrink_weights_partial_pixels(void **state)
{
    (void)state;
    /* 3 -> 2 columns: output 0 covers [0, 1.5): (a + b / 2) / 1.5; output 1 covers [1.5, 3). */
    uint8_t pixels[] = {30, 60, 90};
    struct cxr_gray8 image = {3, 1, pixels};
    float tensor[2];
    assert_int_equal(cxr_image_to_tensor(&image, 2, 1, 1.0f, 0.0f, tensor, NULL), CXR_OK);
    assert_float_equal(tensor[0], (30.0f + 30.0f) / 1.5f, 1e-3);
    assert_float_equal(tensor[1], (30.0f + 90.0f) / 1.5f, 1e-3);
}

static void constant_image_stays_constant_at_any_size(void **state)
{
    (void)state;
    uint8_t *pixels = malloc(997 * 613);
    memset(pixels, 77, 997 * 613);
    struct cxr_gray8 image = {997, 613, pixels};
    static const uint32_t sizes[][2] = {{224, 224}, {512, 300}, {1024, 1024}, {1, 1}};
    for (size_t s = 0; s < 4; s++) {
        size_t count = (size_t)sizes[s][0] * sizes[s][1];
        float *tensor = malloc(count * sizeof(*tensor));
        assert_int_equal(
                cxr_image_to_tensor(&image, sizes[s][0], sizes[s][1], 1.0f, 0.0f, tensor, NULL),
                CXR_OK);
        for (size_t i = 0; i < count; i++)
            assert_float_equal(tensor[i], 77.0f, 1e-3);
        free(tensor);
    }
    free(pixels);
}

static void enlarging_is_bilinear(void **state)
{
    (void)state;
    /* 2 -> 4 columns, pixel centres aligned: positions -0.25 (clamped), 0.25, 0.75, 1.25. */
    uint8_t pixels[] = {0, 100};
    struct cxr_gray8 image = {2, 1, pixels};
    float tensor[4];
    assert_int_equal(cxr_image_to_tensor(&image, 4, 1, 1.0f, 0.0f, tensor, NULL), CXR_OK);
    assert_float_equal(tensor[0], 0.0f, 1e-4);
    assert_float_equal(tensor[1], 25.0f, 1e-4);
    assert_float_equal(tensor[2], 75.0f, 1e-4);
    assert_float_equal(tensor[3], 100.0f, 1e-4);
}

/* The equalised level of grey g by its definition: 255 * (pixels at or below g - pixels at the
 * darkest grey) / (all pixels - pixels at the darkest grey), rounded half up. */
static float equalized_level(const uint8_t *pixels, size_t count, uint8_t g)
{
    uint8_t darkest = 255;
    size_t at_or_below = 0, at_darkest = 0;
    for (size_t i = 0; i < count; i++)
        darkest = pixels[i] < darkest ? pixels[i] : darkest;
    for (size_t i = 0; i < count; i++) {
        at_or_below += pixels[i] <= g;
        at_darkest += pixels[i] == darkest;
    }
    if (count == at_darkest)
        return 0.0f;
    return floorf(255.0f * (float)(at_or_below - at_darkest) / (float)(count - at_darkest) + 0.5f);
}

static void equalizing_spreads_the_histogram_by_its_definition(void **state)
{
    (void)state;
    /* Same size in and out, so the resized levels are the pixels themselves; a skewed image
     * (most pixels dark) whose equalised levels are spread over 0..255. */
    enum { W = 37, H = 23 };
    uint8_t pixels[W * H];
    uint32_t seed = 12345;
    for (size_t i = 0; i < W * H; i++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t r = (seed >> 16) % 100;
        pixels[i] = (uint8_t)(r < 70 ? 20 + r % 7 : 100 + r);
    }
    struct cxr_gray8 image = {W, H, pixels};
    float tensor[W * H];
    assert_int_equal(
            cxr_image_to_tensor_equalized(&image, W, H, 2.0f / 255.0f, -1.0f, tensor, NULL),
            CXR_OK);
    float lowest = 2.0f, highest = -2.0f;
    for (size_t i = 0; i < W * H; i++) {
        float want = equalized_level(pixels, W * H, pixels[i]) * (2.0f / 255.0f) - 1.0f;
        assert_float_equal(tensor[i], want, 1e-5);
        lowest = tensor[i] < lowest ? tensor[i] : lowest;
        highest = tensor[i] > highest ? tensor[i] : highest;
    }
    assert_float_equal(lowest, -1.0f, 1e-6);
    assert_float_equal(highest, 1.0f, 1e-6);

    /* A flat image has one level, which maps to the bottom. */
    memset(pixels, 90, sizeof(pixels));
    assert_int_equal(cxr_image_to_tensor_equalized(&image, W, H, 1.0f, 0.0f, tensor, NULL), CXR_OK);
    for (size_t i = 0; i < W * H; i++)
        assert_float_equal(tensor[i], 0.0f, 0);
}

static void equalizing_rounds_the_resized_levels(void **state)
{
    (void)state;
    /* 4x1 -> 2x1: the means 10.5 and 30.5 round up to 11 and 31 (two levels: 0 and 255); an
     * unequalised tensor keeps them exact. */
    uint8_t pixels[] = {10, 11, 30, 31};
    struct cxr_gray8 image = {4, 1, pixels};
    float tensor[2];
    assert_int_equal(cxr_image_to_tensor(&image, 2, 1, 1.0f, 0.0f, tensor, NULL), CXR_OK);
    assert_float_equal(tensor[0], 10.5f, 1e-5);
    assert_int_equal(cxr_image_to_tensor_equalized(&image, 2, 1, 1.0f, 0.0f, tensor, NULL), CXR_OK);
    assert_float_equal(tensor[0], 0.0f, 0);
    assert_float_equal(tensor[1], 255.0f, 0);
}

static void bad_arguments_are_refused(void **state)
{
    (void)state;
    uint8_t pixel = 1;
    struct cxr_gray8 image = {1, 1, &pixel};
    float tensor[1];
    assert_int_equal(cxr_image_to_tensor(&image, 0, 1, 1, 0, tensor, NULL), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_image_to_tensor(NULL, 1, 1, 1, 0, tensor, NULL), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_image_to_tensor(&image, 1, 1, 1, 0, NULL, NULL), CXR_ERR_INVALID_ARG);
}

struct collected {
    float values[64];
    uint32_t next_row;
    size_t row_values;
};

static void collect_row(void *context, uint32_t y, const float *row)
{
    struct collected *rows = context;
    assert_int_equal(y, rows->next_row++);
    memcpy(rows->values + y * rows->row_values, row, rows->row_values * sizeof(float));
}

static void resampler_keeps_channels_apart(void **state)
{
    (void)state;
    /* 4x2 RGB shrunk to 2x1: each output is the mean of a 2x2 block, per channel. */
    uint8_t rgb[4 * 2 * 3];
    for (int i = 0; i < 24; i++)
        rgb[i] = (uint8_t)(i * 4 + (i % 3) * 50);
    struct cxr_image_resampler *resampler = NULL;
    assert_int_equal(cxr_image_resampler_create(4, 2, 3, 2, 1, &resampler, NULL), CXR_OK);
    struct collected rows = {.row_values = 6};
    cxr_image_resampler_run_u8(resampler, rgb, collect_row, &rows);
    assert_int_equal(rows.next_row, 1);
    for (int x = 0; x < 2; x++) {
        for (int c = 0; c < 3; c++) {
            int a = (2 * x) * 3 + c, b = (2 * x + 1) * 3 + c;
            float mean = (rgb[a] + rgb[b] + rgb[12 + a] + rgb[12 + b]) / 4.0f;
            assert_float_equal(rows.values[x * 3 + c], mean, 1e-4);
        }
    }
    /* Reusable: a second run gives the same rows. */
    float first[6];
    memcpy(first, rows.values, sizeof first);
    rows.next_row = 0;
    cxr_image_resampler_run_u8(resampler, rgb, collect_row, &rows);
    assert_memory_equal(first, rows.values, sizeof first);
    cxr_image_resampler_destroy(resampler);
    cxr_image_resampler_destroy(NULL);
}

static void resampler_enlarges_float_sources(void **state)
{
    (void)state;
    /* 2x2 floats to 4x4: bilinear at pixel centres, edges clamped. */
    const float grid[4] = {0.0f, 1.0f, 2.0f, 3.0f};
    struct cxr_image_resampler *resampler = NULL;
    assert_int_equal(cxr_image_resampler_create(2, 2, 1, 4, 4, &resampler, NULL), CXR_OK);
    struct collected rows = {.row_values = 4};
    cxr_image_resampler_run_f32(resampler, grid, collect_row, &rows);
    cxr_image_resampler_destroy(resampler);
    const float along[4] = {0.0f, 0.25f, 0.75f, 1.0f};
    for (int y = 0; y < 4; y++) {
        for (int x = 0; x < 4; x++)
            assert_float_equal(rows.values[y * 4 + x], along[x] + 2.0f * along[y], 1e-6);
    }
    assert_int_equal(cxr_image_resampler_create(2, 2, 5, 4, 4, &resampler, NULL),
                     CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_image_resampler_create(70000, 2, 1, 4, 4, &resampler, NULL),
                     CXR_ERR_LIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(halving_averages_two_by_two_blocks),
            cmocka_unit_test(fractional_shrink_weights_partial_pixels),
            cmocka_unit_test(constant_image_stays_constant_at_any_size),
            cmocka_unit_test(enlarging_is_bilinear),
            cmocka_unit_test(equalizing_spreads_the_histogram_by_its_definition),
            cmocka_unit_test(equalizing_rounds_the_resized_levels),
            cmocka_unit_test(bad_arguments_are_refused),
            cmocka_unit_test(resampler_keeps_channels_apart),
            cmocka_unit_test(resampler_enlarges_float_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
