/* PNG encoding: libpng (an independent decoder, which checks every chunk's CRC) re-reads our
 * grey and RGB PNGs and must give back the exact bytes, for both presets and for every filter
 * with both deflaters; the buffer maximum is honoured; and the encode time of a 3000x3000
 * radiograph-like image is printed (target well under 100 ms). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <png.h>

#include "image/image.h"

/* Decodes with libpng's simplified API; returns the pixels (caller frees). */
static uint8_t *libpng_decode(const struct cxr_buf *buf, uint32_t format, png_image *info)
{
    memset(info, 0, sizeof(*info));
    info->version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_memory(info, buf->data, buf->len));
    info->format = format;
    uint8_t *pixels = malloc(PNG_IMAGE_SIZE(*info));
    assert_non_null(pixels);
    assert_true(png_image_finish_read(info, NULL, pixels, 0, NULL));
    return pixels;
}

/* A smooth image with noise, like a radiograph (the worst case for PNG is pure noise). */
static void fill_radiograph(uint8_t *pixels, uint32_t width, uint32_t height, uint32_t channels)
{
    uint32_t seed = 12345;
    for (uint32_t y = 0; y < height; y++)
        for (uint32_t x = 0; x < width * channels; x++) {
            seed = seed * 1103515245u + 12345u;
            int value = (int)((x / channels + y) * 255 / (width + height)) + (int)(seed >> 29);
            pixels[(size_t)y * width * channels + x] = (uint8_t)(value > 255 ? 255 : value);
        }
}

static void grey_round_trips_through_libpng(void **state)
{
    (void)state;
    static const uint32_t sizes[][2] = {{1, 1}, {7, 3}, {640, 480}, {1841, 1955}};
    for (size_t c = 0; c < 8; c++) {
        size_t s = c / 2;
        enum cxr_image_png_compression mode = c % 2 ? CXR_IMAGE_PNG_SMALL : CXR_IMAGE_PNG_FAST;
        struct cxr_gray8 image = {sizes[s][0], sizes[s][1], NULL};
        size_t count = (size_t)image.width * image.height;
        image.pixels = malloc(count);
        fill_radiograph(image.pixels, image.width, image.height, 1);
        struct cxr_buf buf = CXR_BUF_INIT(0);
        assert_int_equal(cxr_image_png_encode_gray8(&image, mode, &buf, NULL), CXR_OK);
        png_image info;
        uint8_t *decoded = libpng_decode(&buf, PNG_FORMAT_GRAY, &info);
        assert_int_equal(info.width, image.width);
        assert_int_equal(info.height, image.height);
        assert_memory_equal(decoded, image.pixels, count);
        free(decoded);
        cxr_buf_release(&buf);
        free(image.pixels);
    }
}

static void rgb_round_trips_through_libpng(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        enum cxr_image_png_compression mode = m ? CXR_IMAGE_PNG_SMALL : CXR_IMAGE_PNG_FAST;
        struct cxr_rgb8 image = {301, 203, malloc(301 * 203 * 3)};
        fill_radiograph(image.pixels, image.width, image.height, 3);
        struct cxr_buf buf = CXR_BUF_INIT(0);
        assert_int_equal(cxr_buf_append(&buf, "prefix", 6), CXR_OK);
        assert_int_equal(cxr_image_png_encode_rgb8(&image, mode, &buf, NULL), CXR_OK);
        assert_memory_equal(buf.data, "prefix", 6); /* appended after existing bytes */
        struct cxr_buf png = {buf.data + 6, buf.len - 6, 0, 0};
        png_image info;
        uint8_t *decoded = libpng_decode(&png, PNG_FORMAT_RGB, &info);
        assert_memory_equal(decoded, image.pixels, (size_t)301 * 203 * 3);
        free(decoded);
        cxr_buf_release(&buf);
        free(image.pixels);
    }
}

/* Every filter (PAETH and ADAPTIVE exercise the first row's and first pixel's edge rules) with
 * every deflater built (ISA-L at each of its levels), grey and RGB, at sizes down to one pixel. */
static void every_filter_and_deflater_round_trips(void **state)
{
    (void)state;
    static const enum cxr_image_png_filter filters[] = {
            CXR_IMAGE_PNG_FILTER_NONE, CXR_IMAGE_PNG_FILTER_SUB, CXR_IMAGE_PNG_FILTER_UP,
            CXR_IMAGE_PNG_FILTER_PAETH, CXR_IMAGE_PNG_FILTER_ADAPTIVE};
    static const uint32_t sizes[][2] = {{1, 1}, {2, 5}, {97, 61}};
    static const struct {
        enum cxr_image_png_deflater deflater;
        int level;
    } deflaters[] = {
        {CXR_IMAGE_PNG_ZLIB, 1},
        {CXR_IMAGE_PNG_LIBDEFLATE, 4},
#if CXR_HAVE_ISAL
        {CXR_IMAGE_PNG_ISAL, 0},
        {CXR_IMAGE_PNG_ISAL, 1},
        {CXR_IMAGE_PNG_ISAL, 3},
#endif
    };
    for (size_t f = 0; f < 5; f++)
        for (size_t d = 0; d < sizeof deflaters / sizeof deflaters[0]; d++)
            for (uint32_t channels = 1; channels <= 3; channels += 2)
                for (size_t s = 0; s < 3; s++) {
                    uint32_t width = sizes[s][0], height = sizes[s][1];
                    size_t count = (size_t)width * height * channels;
                    uint8_t *pixels = malloc(count);
                    fill_radiograph(pixels, width, height, channels);
                    struct cxr_image_png_options options = {deflaters[d].deflater, filters[f],
                                                            deflaters[d].level, 0};
                    struct cxr_buf buf = CXR_BUF_INIT(0);
                    assert_int_equal(cxr_image_png_encode(pixels, width, height, channels, &options,
                                                          &buf, NULL),
                                     CXR_OK);
                    png_image info;
                    uint8_t *decoded = libpng_decode(
                            &buf, channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY, &info);
                    assert_int_equal(info.width, width);
                    assert_int_equal(info.height, height);
                    assert_memory_equal(decoded, pixels, count);
                    free(decoded);
                    cxr_buf_release(&buf);
                    free(pixels);
                }
}

/* Noise does not compress: every preset must still fit its output buffer (igzip's stateless
 * call then writes stored blocks) and decode to the same bytes. */
static void incompressible_noise_round_trips(void **state)
{
    (void)state;
    uint32_t width = 1024, height = 768;
    size_t count = (size_t)width * height * 3;
    uint8_t *pixels = malloc(count);
    assert_non_null(pixels);
    uint64_t seed = 88172645463325252ull;
    for (size_t i = 0; i < count; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        pixels[i] = (uint8_t)(seed >> 32);
    }
    for (int mode = CXR_IMAGE_PNG_FAST; mode <= CXR_IMAGE_PNG_SMALL; mode++) {
        struct cxr_rgb8 image = {width, height, pixels};
        struct cxr_buf buf = CXR_BUF_INIT(0);
        assert_int_equal(
                cxr_image_png_encode_rgb8(&image, (enum cxr_image_png_compression)mode, &buf, NULL),
                CXR_OK);
        png_image info;
        uint8_t *decoded = libpng_decode(&buf, PNG_FORMAT_RGB, &info);
        assert_memory_equal(decoded, pixels, count);
        free(decoded);
        cxr_buf_release(&buf);
    }
    free(pixels);
}

static void buffer_limit_leaves_nothing_appended(void **state)
{
    (void)state;
    struct cxr_gray8 image = {256, 256, malloc(256 * 256)};
    fill_radiograph(image.pixels, 256, 256, 1);
    for (int m = 0; m < 2; m++) {
        struct cxr_buf buf = CXR_BUF_INIT(100);
        assert_int_equal(cxr_buf_append(&buf, "ab", 2), CXR_OK);
        struct cxr_err err = CXR_ERR_INIT;
        assert_int_equal(cxr_image_png_encode_gray8(
                                 &image, m ? CXR_IMAGE_PNG_SMALL : CXR_IMAGE_PNG_FAST, &buf, &err),
                         CXR_ERR_LIMIT);
        assert_int_equal(buf.len, 2);
        assert_non_null(strstr(err.message, "output buffer refused (limit)"));
        cxr_buf_release(&buf);
    }
    /* The zlib path fails the same way, its message naming libspng. */
    struct cxr_image_png_options options = {CXR_IMAGE_PNG_ZLIB, CXR_IMAGE_PNG_FILTER_SUB, 1, 0};
    struct cxr_buf buf = CXR_BUF_INIT(100);
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_image_png_encode(image.pixels, 256, 256, 1, &options, &buf, &err),
                     CXR_ERR_LIMIT);
    assert_int_equal(buf.len, 0);
    assert_non_null(strstr(err.message, "libspng"));
    cxr_buf_release(&buf);
    free(image.pixels);
}

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + now.tv_nsec / 1e9;
}

static void encode_time_of_a_large_image(void **state)
{
    (void)state;
    struct cxr_gray8 image = {3000, 3000, malloc((size_t)3000 * 3000)};
    fill_radiograph(image.pixels, 3000, 3000, 1);
    for (int m = 0; m < 2; m++) {
        double best = 1e9;
        size_t bytes = 0;
        for (int run = 0; run < 3; run++) {
            struct cxr_buf buf = CXR_BUF_INIT(0);
            double start = seconds_now();
            assert_int_equal(
                    cxr_image_png_encode_gray8(&image, m ? CXR_IMAGE_PNG_SMALL : CXR_IMAGE_PNG_FAST,
                                               &buf, NULL),
                    CXR_OK);
            double elapsed = seconds_now() - start;
            if (elapsed < best)
                best = elapsed;
            bytes = buf.len;
            cxr_buf_release(&buf);
        }
        printf("PNG encode 3000x3000 grey (%s): best of 3 %.1f ms, %zu bytes\n",
               m ? "small" : "fast", best * 1e3, bytes);
    }
    free(image.pixels);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(grey_round_trips_through_libpng),
            cmocka_unit_test(rgb_round_trips_through_libpng),
            cmocka_unit_test(every_filter_and_deflater_round_trips),
            cmocka_unit_test(incompressible_noise_round_trips),
            cmocka_unit_test(buffer_limit_leaves_nothing_appended),
            cmocka_unit_test(encode_time_of_a_large_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
