/* The C half of the heatmap check (tests/report/heatmap_check.py): runs the model and the
 * report code on images the Python side has decoded, so the pointing game is scored on exactly
 * the maps cxrd draws. Not a ctest test: it needs the default model and the data folder.
 *
 * report_heat_check MODEL IMAGES.u8 COUNT WIDTH HEIGHT OUTDIR [PNG_COUNT [TB_CAMS.f32]]
 * IMAGES.u8 holds COUNT grey images of WIDTH x HEIGHT bytes. TB_CAMS.f32, when given, holds
 * COUNT Tuberculosis class maps of the model's map size that replace the model's own for
 * tb_point (so maps computed elsewhere, e.g. from the model card's exact inputs, can be drawn
 * with this image's body mask). Writes raw little-endian arrays
 * into OUTDIR: probabilities.f32 [COUNT][11], thresholds.f32 [11], cams.f32 [COUNT][11][h][w],
 * cam_shape.txt ("h w"), tb_point.i32 [COUNT][2] (x, y of the displayed Tuberculosis heat's
 * first maximum, row-major, as numpy's argmax), body_share.f32 [COUNT] (share of pixels with
 * mask weight > 0), result.u8 [COUNT] (0 Normal, 1 Abnormal, 2 TB Presumptive), changed.i64
 * [COUNT] (pixels of the API heatmap's image part that differ from the source; -1 for Normal),
 * changed_outside.i64 [COUNT] (of those, pixels whose body weight is 0), and heatmap_<i>.png for
 * the first PNG_COUNT non-Normal images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "nn/nn.h"
#include "report/report_internal.h"

static FILE *open_out(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen(path, "wb");
    if (file == NULL) {
        perror(path);
        exit(1);
    }
    return file;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s MODEL IMAGES.u8 COUNT WIDTH HEIGHT OUTDIR [PNG_COUNT]\n",
                argv[0]);
        return 2;
    }
    size_t count = strtoul(argv[3], NULL, 10);
    uint32_t width = (uint32_t)strtoul(argv[4], NULL, 10);
    uint32_t height = (uint32_t)strtoul(argv[5], NULL, 10);
    const char *outdir = argv[6];
    long png_count = argc > 7 ? strtol(argv[7], NULL, 10) : 0;
    FILE *tb_cams = NULL;
    if (argc > 8 && (tb_cams = fopen(argv[8], "rb")) == NULL) {
        perror(argv[8]);
        return 1;
    }
    size_t image_bytes = (size_t)width * height;

    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_limits limits = cxr_limits_default();
    struct cxr_nn_runtime *runtime = NULL;
    struct cxr_model *model = NULL;
    if (cxr_nn_runtime_create(2, &runtime, &err) != CXR_OK ||
        cxr_model_load(runtime, argv[1], &limits, &model, &err) != CXR_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    FILE *images = fopen(argv[2], "rb");
    if (images == NULL) {
        perror(argv[2]);
        return 1;
    }
    FILE *probabilities = open_out(outdir, "probabilities.f32");
    FILE *cams = open_out(outdir, "cams.f32");
    FILE *points = open_out(outdir, "tb_point.i32");
    FILE *shares = open_out(outdir, "body_share.f32");
    FILE *results = open_out(outdir, "result.u8");
    FILE *changed_file = open_out(outdir, "changed.i64");
    FILE *outside_file = open_out(outdir, "changed_outside.i64");
    FILE *thresholds = open_out(outdir, "thresholds.f32");
    for (int k = 0; k < CXR_FINDING_COUNT; k++) {
        float threshold = (float)cxr_model_threshold(model, k);
        fwrite(&threshold, sizeof threshold, 1, thresholds);
    }
    fclose(thresholds);

    struct cxr_gray8 source = {width, height, malloc(image_bytes)};
    float *heat = malloc(sizeof(float) * image_bytes);
    float *weight = malloc(sizeof(float) * image_bytes);
    uint32_t cam_width = 0, cam_height = 0;
    long pngs = 0;
    for (size_t i = 0; i < count; i++) {
        if (fread(source.pixels, 1, image_bytes, images) != image_bytes) {
            fprintf(stderr, "short read at image %zu\n", i);
            return 1;
        }
        struct cxr_prediction prediction;
        struct cxr_report_mask mask = {0};
        if (cxr_model_predict(model, &source, &prediction, &err) != CXR_OK ||
            cxr_report_mask_compute(&source, &mask, &err) != CXR_OK) {
            fprintf(stderr, "image %zu: %s\n", i, err.message);
            return 1;
        }
        cam_width = prediction.cam_width;
        cam_height = prediction.cam_height;
        size_t map_size = (size_t)cam_width * cam_height;
        float *own_tb = malloc(sizeof(float) * map_size);
        memcpy(own_tb, prediction.cams, sizeof(float) * map_size);
        if (tb_cams && fread(prediction.cams, sizeof(float), map_size, tb_cams) != map_size) {
            fprintf(stderr, "short read of %s at image %zu\n", argv[8], i);
            return 1;
        }
        if (cxr_report_heat_compute(&prediction, 0, &mask, width, height, heat, &err) != CXR_OK) {
            fprintf(stderr, "image %zu: %s\n", i, err.message);
            return 1;
        }
        memcpy(prediction.cams, own_tb, sizeof(float) * map_size);
        free(own_tb);
        for (int k = 0; k < CXR_FINDING_COUNT; k++) {
            float p = (float)prediction.findings[k].confidence;
            fwrite(&p, sizeof p, 1, probabilities);
        }
        fwrite(prediction.cams, sizeof(float), (size_t)CXR_FINDING_COUNT * cam_width * cam_height,
               cams);
        size_t best = 0;
        for (size_t p = 1; p < image_bytes; p++) {
            if (heat[p] > heat[best])
                best = p;
        }
        int32_t point[2] = {(int32_t)(best % width), (int32_t)(best / width)};
        fwrite(point, sizeof(int32_t), 2, points);

        /* The body weight itself: the heat of an all-ones map (a flat map shows evenly). */
        float *saved = prediction.cams;
        float *ones = malloc(sizeof(float) * cam_width * cam_height * CXR_FINDING_COUNT);
        for (size_t c = 0; c < (size_t)cam_width * cam_height * CXR_FINDING_COUNT; c++)
            ones[c] = 1.0f;
        prediction.cams = ones;
        cxr_report_heat_compute(&prediction, 0, &mask, width, height, weight, NULL);
        prediction.cams = saved;
        free(ones);
        size_t inside = 0;
        for (size_t p = 0; p < image_bytes; p++)
            inside += weight[p] > 0.0f;
        float share = (float)inside / (float)image_bytes;
        fwrite(&share, sizeof share, 1, shares);

        uint8_t result = (uint8_t)prediction.result;
        fwrite(&result, 1, 1, results);
        int64_t changed = -1, changed_outside = 0;
        if (prediction.result != CXR_RESULT_NORMAL) {
            struct cxr_rgb8 overlay = {0};
            if (cxr_report_heatmap_render(&source, &prediction, &overlay, &err) != CXR_OK) {
                fprintf(stderr, "image %zu: %s\n", i, err.message);
                return 1;
            }
            changed = 0;
            for (size_t p = 0; p < image_bytes; p++) {
                const uint8_t *rgb = overlay.pixels + 3 * p;
                bool differs = rgb[0] != source.pixels[p] || rgb[1] != source.pixels[p] ||
                               rgb[2] != source.pixels[p];
                changed += differs;
                changed_outside += differs && weight[p] == 0.0f;
            }
            if (pngs < png_count) {
                struct cxr_buf png = CXR_BUF_INIT(0);
                char name[64];
                snprintf(name, sizeof name, "heatmap_%zu.png", i);
                if (cxr_image_png_encode_rgb8(&overlay, CXR_IMAGE_PNG_FAST, &png, &err) == CXR_OK) {
                    FILE *file = open_out(outdir, name);
                    fwrite(png.data, 1, png.len, file);
                    fclose(file);
                }
                cxr_buf_release(&png);
                pngs++;
            }
            cxr_image_rgb8_release(&overlay);
        }
        fwrite(&changed, sizeof changed, 1, changed_file);
        fwrite(&changed_outside, sizeof changed_outside, 1, outside_file);
        cxr_report_mask_release(&mask);
        cxr_model_prediction_release(&prediction);
    }
    FILE *shape = open_out(outdir, "cam_shape.txt");
    fprintf(shape, "%u %u\n", cam_height, cam_width);
    fclose(shape);
    fclose(images);
    if (tb_cams)
        fclose(tb_cams);
    fclose(probabilities);
    fclose(cams);
    fclose(points);
    fclose(shares);
    fclose(results);
    fclose(changed_file);
    fclose(outside_file);
    free(source.pixels);
    free(heat);
    free(weight);
    cxr_model_destroy(model);
    cxr_nn_runtime_destroy(runtime);
    cxr_report_shutdown();
    return 0;
}
