/* An equalised model's network input against the training tools': every case written by
 * make_equalized_input_cases.py must give the tools' resized 8-bit levels
 * (cxr_image_resize_levels) and equalised levels (cxr_image_to_tensor_formatted, scale 1,
 * offset 0) byte for byte. Also the property that needs no reference: an integer-factor shrink
 * is the rounded mean of each cell. Usage: test_image_equalized_input CASES_FILE */
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

struct input_case {
    struct cxr_gray8 image;
    struct cxr_tensor_format format;
    uint8_t *levels, *equalized;
};

static uint8_t *read_bytes(FILE *file, size_t count)
{
    uint8_t *bytes = malloc(count);
    assert_non_null(bytes);
    assert_int_equal(fread(bytes, 1, count, file), count);
    return bytes;
}

/* Reads the next record; false at the end of the file. */
static bool read_case(FILE *file, struct input_case *c)
{
    unsigned char head[32];
    if (fread(head, 1, sizeof(head), file) != sizeof(head))
        return false;
    uint32_t fields[6]; /* little-endian, as the build machines are */
    memcpy(fields, head, sizeof(fields));
    double clip;
    memcpy(&clip, head + 24, 8);
    c->image = (struct cxr_gray8){fields[0], fields[1], NULL};
    c->format = (struct cxr_tensor_format){.width = fields[2],
                                           .height = fields[3],
                                           .scale = 1.0f,
                                           .offset = 0.0f,
                                           .equalize = fields[4] == 1 ? CXR_EQUALIZE_HISTOGRAM
                                                                      : CXR_EQUALIZE_CLAHE,
                                           .clahe_tiles = fields[5],
                                           .clahe_clip = clip};
    size_t out = (size_t)fields[2] * fields[3];
    c->image.pixels = read_bytes(file, (size_t)fields[0] * fields[1]);
    c->levels = read_bytes(file, out);
    c->equalized = read_bytes(file, out);
    return true;
}

static void matches_the_training_tools(void **state)
{
    (void)state;
    FILE *file = fopen(cases_path, "rb");
    assert_non_null(file);
    int cases = 0;
    struct input_case c;
    while (read_case(file, &c)) {
        size_t count = (size_t)c.format.width * c.format.height;
        uint8_t *levels = malloc(count);
        float *tensor = malloc(count * sizeof(*tensor));
        assert_non_null(levels);
        assert_non_null(tensor);
        assert_int_equal(
                cxr_image_resize_levels(&c.image, c.format.width, c.format.height, levels, NULL),
                CXR_OK);
        assert_int_equal(cxr_image_to_tensor_formatted(&c.image, &c.format, tensor, NULL), CXR_OK);
        size_t level_differ = 0, equalized_differ = 0;
        for (size_t i = 0; i < count; i++) {
            level_differ += levels[i] != c.levels[i];
            equalized_differ += tensor[i] != (float)c.equalized[i];
        }
        if (level_differ != 0 || equalized_differ != 0)
            fail_msg("case %d (%ux%u to %ux%u, equalize %d): %zu resized and %zu equalised of "
                     "%zu levels differ",
                     cases, c.image.width, c.image.height, c.format.width, c.format.height,
                     (int)c.format.equalize, level_differ, equalized_differ, count);
        free(tensor);
        free(levels);
        free(c.image.pixels);
        free(c.levels);
        free(c.equalized);
        cases++;
    }
    fclose(file);
    assert_true(cases >= 10);
}

/* Shrunk by whole factors (2 and 3), each level is the mean of its cell rounded halves up. */
static void whole_factor_shrink_is_the_rounded_cell_mean(void **state)
{
    (void)state;
    enum { W = 12, H = 10, FX = 3, FY = 2 };
    uint8_t pixels[W * H], levels[(W / FX) * (H / FY)];
    for (int i = 0; i < W * H; i++)
        pixels[i] = (uint8_t)((i * 37 + (i / W) * 11) % 7 + 100); /* small spread: many halves */
    struct cxr_gray8 image = {W, H, pixels};
    assert_int_equal(cxr_image_resize_levels(&image, W / FX, H / FY, levels, NULL), CXR_OK);
    for (int y = 0; y < H / FY; y++)
        for (int x = 0; x < W / FX; x++) {
            int sum = 0;
            for (int dy = 0; dy < FY; dy++)
                for (int dx = 0; dx < FX; dx++)
                    sum += pixels[(y * FY + dy) * W + x * FX + dx];
            assert_int_equal(levels[y * (W / FX) + x], (2 * sum + FX * FY) / (2 * FX * FY));
        }
    assert_int_equal(cxr_image_resize_levels(&image, 0, 1, levels, NULL), CXR_ERR_INVALID_ARG);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_image_equalized_input CASES_FILE\n");
        return 2;
    }
    cases_path = argv[1];
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(matches_the_training_tools),
            cmocka_unit_test(whole_factor_shrink_is_the_rounded_cell_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
