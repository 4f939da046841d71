/* bench/png: times every PNG encoder setting worth considering on the two images the server
 * encodes per request (the rendered 2048x2048 source and its RGB heatmap overlay, made by the
 * library from a real radiograph and model) and prints a Markdown table: median thread CPU ms
 * of N runs, bytes, and both as ratios to the previous default (zlib level 1, Z_RLE, SUB).
 * Every output is decoded again with libspng and compared with the pixels.
 *
 * Usage: bench_png IMAGE.dcm MODEL.onnx [RUNS] [presets]
 * (presets: only the reference and the two presets of [report] png_compression) */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spng.h>
#include <zlib.h>

#include "dicom/dicom.h"
#include "image/image.h"
#include "model/model.h"
#include "nn/nn.h"
#include "report/report.h"

static double cpu_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return (double)now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static int decodes_to(const struct cxr_buf *png, const uint8_t *pixels, size_t size, int rgb)
{
    spng_ctx *ctx = spng_ctx_new(0);
    size_t out_size = 0;
    int ok = ctx && spng_set_png_buffer(ctx, png->data, png->len) == 0 &&
             spng_decoded_image_size(ctx, rgb ? SPNG_FMT_RGB8 : SPNG_FMT_G8, &out_size) == 0 &&
             out_size == size;
    uint8_t *decoded = ok ? malloc(size) : NULL;
    ok = ok && decoded &&
         spng_decode_image(ctx, decoded, size, rgb ? SPNG_FMT_RGB8 : SPNG_FMT_G8, 0) == 0 &&
         memcmp(decoded, pixels, size) == 0;
    free(decoded);
    spng_ctx_free(ctx);
    return ok;
}

struct setting {
    const char *name;
    struct cxr_image_png_options options;
};

static const char *filter_name(enum cxr_image_png_filter filter)
{
    switch (filter) {
    case CXR_IMAGE_PNG_FILTER_NONE:
        return "none";
    case CXR_IMAGE_PNG_FILTER_SUB:
        return "sub";
    case CXR_IMAGE_PNG_FILTER_UP:
        return "up";
    case CXR_IMAGE_PNG_FILTER_PAETH:
        return "paeth";
    case CXR_IMAGE_PNG_FILTER_ADAPTIVE:
        return "adaptive";
    }
    return "?";
}

static const char *strategy_name(int strategy)
{
    return strategy == Z_RLE ? "Z_RLE" : strategy == Z_FILTERED ? "Z_FILTERED" : "default";
}

/* Median CPU ms of runs encodes; bytes of the last. Returns 0 when an encode fails or the
 * result does not decode to the pixels. */
static int measure(const uint8_t *pixels, uint32_t width, uint32_t height, uint32_t channels,
                   const struct cxr_image_png_options *options, int runs, double *ms, size_t *bytes)
{
    double times[64];
    struct cxr_buf png = CXR_BUF_INIT(0);
    for (int run = 0; run < runs; run++) {
        png.len = 0;
        struct cxr_err err = CXR_ERR_INIT;
        double start = cpu_ms();
        if (cxr_image_png_encode(pixels, width, height, channels, options, &png, &err) != CXR_OK) {
            fprintf(stderr, "bench_png: %s\n", err.message);
            cxr_buf_release(&png);
            return 0;
        }
        times[run] = cpu_ms() - start;
    }
    qsort(times, (size_t)runs, sizeof times[0], compare_double);
    *ms = times[runs / 2];
    *bytes = png.len;
    int ok = decodes_to(&png, pixels, (size_t)width * height * channels, channels == 3);
    cxr_buf_release(&png);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: bench_png IMAGE.dcm MODEL.onnx [RUNS] [presets]\n");
        return 2;
    }
    int runs = argc >= 4 ? atoi(argv[3]) : 5;
    bool presets_only = argc == 5 && strcmp(argv[4], "presets") == 0;
    if (runs < 1 || runs > 64)
        return 2;
    struct cxr_limits limits = cxr_limits_default();
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_dicom_file *file = NULL;
    struct cxr_gray8 source = {0};
    struct cxr_rgb8 heatmap = {0};
    struct cxr_nn_runtime *runtime = NULL;
    struct cxr_model *model = NULL;
    struct cxr_prediction prediction;
    if (cxr_dicom_file_read(argv[1], &limits, &file, &err) != CXR_OK ||
        cxr_image_render(file, &limits, &source, &err) != CXR_OK ||
        cxr_nn_runtime_create(1, &runtime, &err) != CXR_OK ||
        cxr_model_load(runtime, argv[2], &limits, &model, &err) != CXR_OK ||
        cxr_model_predict(model, &source, &prediction, &err) != CXR_OK) {
        fprintf(stderr, "bench_png: %s\n", err.message);
        return 1;
    }
    int present = 0;
    for (size_t i = 0; i < CXR_FINDING_COUNT; i++)
        present += prediction.findings[i].presence;
    if (!present) /* a Normal image has no heatmap: show the first finding's map instead */
        prediction.findings[0].presence = true;
    if (cxr_report_heatmap_render(&source, &prediction, &heatmap, &err) != CXR_OK) {
        fprintf(stderr, "bench_png: heatmap: %s\n", err.message);
        return 1;
    }

    struct setting settings[128];
    size_t count = 0;
    static const enum cxr_image_png_filter filters[] = {
            CXR_IMAGE_PNG_FILTER_NONE, CXR_IMAGE_PNG_FILTER_SUB, CXR_IMAGE_PNG_FILTER_UP,
            CXR_IMAGE_PNG_FILTER_PAETH, CXR_IMAGE_PNG_FILTER_ADAPTIVE};
    /* The reference first: the previous default. */
    settings[count++] =
            (struct setting){"zlib", {CXR_IMAGE_PNG_ZLIB, CXR_IMAGE_PNG_FILTER_SUB, 1, Z_RLE}};
    for (size_t f = 0; f < 5 && !presets_only; f++)
        if (filters[f] != CXR_IMAGE_PNG_FILTER_SUB)
            settings[count++] =
                    (struct setting){"zlib", {CXR_IMAGE_PNG_ZLIB, filters[f], 1, Z_RLE}};
    if (presets_only) {
        count = 1;
        settings[count++] =
                (struct setting){"fast", cxr_image_png_options_preset(CXR_IMAGE_PNG_FAST)};
        settings[count++] =
                (struct setting){"small", cxr_image_png_options_preset(CXR_IMAGE_PNG_SMALL)};
    }
    static const int strategies[] = {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_RLE};
    for (int level = 1; level <= 6 && !presets_only; level++)
        for (size_t s = 0; s < 3; s++)
            if (!(level == 1 && strategies[s] == Z_RLE))
                settings[count++] = (struct setting){
                        "zlib",
                        {CXR_IMAGE_PNG_ZLIB, CXR_IMAGE_PNG_FILTER_SUB, level, strategies[s]}};
    for (size_t f = 0; f < 5 && !presets_only; f++)
        settings[count++] = (struct setting){
                "libdeflate", {CXR_IMAGE_PNG_LIBDEFLATE, filters[f], 1, Z_DEFAULT_STRATEGY}};
    static const int libdeflate_levels[] = {2, 3, 4, 6, 9};
    for (size_t l = 0; l < 5 && !presets_only; l++)
        for (size_t f = 1; f <= 3; f += 1)
            settings[count++] = (struct setting){"libdeflate",
                                                 {CXR_IMAGE_PNG_LIBDEFLATE, filters[f],
                                                  libdeflate_levels[l], Z_DEFAULT_STRATEGY}};
#if CXR_HAVE_ISAL
    for (int level = 0; level <= 3 && !presets_only; level++)
        for (size_t f = 0; f <= 3; f++)
            settings[count++] = (struct setting){
                    "isa-l", {CXR_IMAGE_PNG_ISAL, filters[f], level, Z_DEFAULT_STRATEGY}};
#endif

    printf("source %ux%u grey, heatmap %ux%u RGB; median thread CPU ms of %d runs; ratios to "
           "the first row\n\n",
           source.width, source.height, heatmap.width, heatmap.height, runs);
    printf("| deflater | level | strategy | filter | source ms | source bytes | heatmap ms | "
           "heatmap bytes | total ms | total bytes | ms ratio | bytes ratio |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    double reference_ms = 0, reference_bytes = 0;
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        const struct cxr_image_png_options *options = &settings[i].options;
        double source_ms, heatmap_ms;
        size_t source_bytes, heatmap_bytes;
        if (!measure(source.pixels, source.width, source.height, 1, options, runs, &source_ms,
                     &source_bytes) ||
            !measure(heatmap.pixels, heatmap.width, heatmap.height, 3, options, runs, &heatmap_ms,
                     &heatmap_bytes)) {
            printf("| %s | %d | %s | %s | FAILED (not bit-exact or error) |\n", settings[i].name,
                   options->level, strategy_name(options->zlib_strategy),
                   filter_name(options->filter));
            failed = 1;
            continue;
        }
        double total_ms = source_ms + heatmap_ms;
        double total_bytes = (double)source_bytes + (double)heatmap_bytes;
        if (i == 0) {
            reference_ms = total_ms;
            reference_bytes = total_bytes;
        }
        int zlib = options->deflater == CXR_IMAGE_PNG_ZLIB;
        printf("| %s | %d | %s | %s | %.1f | %zu | %.1f | %zu | %.1f | %.0f | %.2f | %.3f |\n",
               settings[i].name, options->level, zlib ? strategy_name(options->zlib_strategy) : "-",
               filter_name(options->filter), source_ms, source_bytes, heatmap_ms, heatmap_bytes,
               total_ms, total_bytes, total_ms / reference_ms, total_bytes / reference_bytes);
        fflush(stdout);
    }
    cxr_image_rgb8_release(&heatmap);
    cxr_model_prediction_release(&prediction);
    cxr_model_destroy(model);
    cxr_nn_runtime_destroy(runtime);
    cxr_image_gray8_release(&source);
    cxr_dicom_file_destroy(file);
    return failed;
}
