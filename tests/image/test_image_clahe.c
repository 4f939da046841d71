/* CLAHE (image_clahe.c) against the training tools' PyTorch clahe(): every case written by
 * make_clahe_cases.py must come out byte for byte the same, and through the tensor path too.
 * Also the properties that need no reference: a flat image keeps its level, bad arguments are
 * refused. Usage: test_image_clahe CASES_FILE */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "image/image.h"

static const char *cases_path;

struct clahe_case {
    uint32_t width, height, tiles;
    double clip;
    uint8_t *input, *expected;
};

/* Reads the next record; false at the end of the file. */
static bool read_case(FILE *file, struct clahe_case *c)
{
    unsigned char head[20];
    if (fread(head, 1, sizeof(head), file) != sizeof(head))
        return false;
    memcpy(&c->width, head, 4); /* little-endian, as the build machines are */
    memcpy(&c->height, head + 4, 4);
    memcpy(&c->tiles, head + 8, 4);
    memcpy(&c->clip, head + 12, 8);
    size_t count = (size_t)c->width * c->height;
    c->input = malloc(count);
    c->expected = malloc(count);
    assert_non_null(c->input);
    assert_non_null(c->expected);
    assert_int_equal(fread(c->input, 1, count, file), count);
    assert_int_equal(fread(c->expected, 1, count, file), count);
    return true;
}

static void matches_the_training_tools(void **state)
{
    (void)state;
    FILE *file = fopen(cases_path, "rb");
    assert_non_null(file);
    int cases = 0;
    struct clahe_case c;
    while (read_case(file, &c)) {
        size_t count = (size_t)c.width * c.height;
        uint8_t *levels = malloc(count);
        assert_non_null(levels);
        memcpy(levels, c.input, count);
        assert_int_equal(cxr_image_clahe(levels, c.width, c.height, c.tiles, c.clip, NULL), CXR_OK);
        size_t differ = 0;
        for (size_t i = 0; i < count; i++)
            differ += levels[i] != c.expected[i];
        if (differ != 0)
            fail_msg("case %d (%ux%u, %u tiles, clip %g): %zu of %zu pixels differ", cases, c.width,
                     c.height, c.tiles, c.clip, differ, count);

        /* The tensor path at the same size (no resampling): levels * scale + offset. */
        float *tensor = malloc(count * sizeof(*tensor));
        assert_non_null(tensor);
        struct cxr_gray8 image = {c.width, c.height, c.input};
        struct cxr_tensor_format format = {.width = c.width,
                                           .height = c.height,
                                           .scale = 2.0f / 255.0f,
                                           .offset = -1.0f,
                                           .equalize = CXR_EQUALIZE_CLAHE,
                                           .clahe_tiles = c.tiles,
                                           .clahe_clip = c.clip};
        assert_int_equal(cxr_image_to_tensor_formatted(&image, &format, tensor, NULL), CXR_OK);
        for (size_t i = 0; i < count; i++)
            assert_float_equal(tensor[i], (float)c.expected[i] * (2.0f / 255.0f) - 1.0f, 1e-6);
        free(tensor);
        free(levels);
        free(c.input);
        free(c.expected);
        cases++;
    }
    fclose(file);
    assert_true(cases >= 10);
}

/* Clipping leaves one count at the image's level and spreads the rest evenly, so the map is
 * close to the identity: a flat image keeps its level within one. */
static void a_flat_image_keeps_its_level(void **state)
{
    (void)state;
    enum { W = 40, H = 30 };
    uint8_t pixels[W * H];
    memset(pixels, 137, sizeof(pixels));
    assert_int_equal(cxr_image_clahe(pixels, W, H, 4, 2.0, NULL), CXR_OK);
    for (size_t i = 0; i < W * H; i++)
        assert_in_range(pixels[i], 136, 138);
}

static void bad_arguments_are_refused(void **state)
{
    (void)state;
    uint8_t pixels[16] = {0};
    assert_int_equal(cxr_image_clahe(pixels, 4, 4, 0, 2.0, NULL), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_image_clahe(pixels, 4, 4, 5, 2.0, NULL), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_image_clahe(pixels, 4, 4, 2, 0.5, NULL), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_image_clahe(pixels, 4, 4, 2, 300.0, NULL), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_image_clahe(NULL, 4, 4, 2, 2.0, NULL), CXR_ERR_INVALID_ARG);
    struct cxr_gray8 image = {4, 4, pixels};
    struct cxr_tensor_format format = {4, 4, 1.0f, 0.0f, CXR_EQUALIZE_CLAHE, 8, 2.0};
    float tensor[16];
    assert_int_equal(cxr_image_to_tensor_formatted(&image, &format, tensor, NULL),
                     CXR_ERR_INVALID_ARG);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_image_clahe CASES_FILE\n");
        return 2;
    }
    cases_path = argv[1];
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(matches_the_training_tools),
            cmocka_unit_test(a_flat_image_keeps_its_level),
            cmocka_unit_test(bad_arguments_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
