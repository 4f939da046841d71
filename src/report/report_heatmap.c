/* Heatmap overlay: one finding's class map, scaled on its own so that a weak map still shows,
 * restricted to the body, drawn over the grey source with a perceptual colour map whose opacity
 * grows with the heat (regions without evidence keep the plain radiograph). The API heatmap is
 * the overlay of the most urgent present finding with a legend strip under the image. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

/* Oklab (Ottosson 2020) to linear sRGB: the published M2^-1 and M1^-1 matrices. */
static void oklab_to_linear_srgb(double lightness, double a, double b, double rgb[3])
{
    double l = lightness + 0.3963377774 * a + 0.2158037573 * b;
    double m = lightness - 0.1055613458 * a - 0.0638541728 * b;
    double s = lightness - 0.0894841775 * a - 1.2914855480 * b;
    l = l * l * l;
    m = m * m * m;
    s = s * s * s;
    rgb[0] = 4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s;
    rgb[1] = -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s;
    rgb[2] = -0.0041960863 * l - 0.7034186147 * m + 1.7076147010 * s;
}

static uint8_t srgb_encode(double linear)
{
    if (linear <= 0.0)
        return 0;
    if (linear >= 1.0)
        return 255;
    double encoded = linear <= 0.0031308 ? 12.92 * linear : 1.055 * pow(linear, 1.0 / 2.4) - 0.055;
    return (uint8_t)lround(encoded * 255.0);
}

/* The map is a path through Oklab written for cxrd (an inferno-like look, not a copy of any
 * published table): lightness L = 0.18 + 0.77 t rises linearly, so equal steps of heat are
 * equal steps of perceived lightness and the map prints readably in grey; the hue turns from
 * violet (300 degrees) through red to yellow (100 degrees); chroma peaks mid-way and stays
 * inside the sRGB gamut for every t (checked by the unit test through monotone luminance). */
void cxr_report_colormap_fill(uint8_t table[256][3])
{
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < 256; i++) {
        double t = i / 255.0;
        double lightness = 0.18 + 0.77 * t;
        double hue = (300.0 + 160.0 * t) * pi / 180.0;
        double chroma = 0.03 + 0.12 * sin(pi * fmin(1.0, t * 1.15)) + 0.06 * t;
        double rgb[3];
        oklab_to_linear_srgb(lightness, chroma * cos(hue), chroma * sin(hue), rgb);
        for (int c = 0; c < 3; c++)
            table[i][c] = srgb_encode(rgb[c]);
    }
}

int cxr_report_finding_pick(const struct cxr_prediction *prediction)
{
    if (prediction->findings[0].presence)
        return 0; /* Tuberculosis: what screening programmes run cxrd for */
    int best = -1;
    double best_margin = -INFINITY;
    for (int k = 1; k < CXR_FINDING_COUNT; k++) {
        const struct cxr_finding *finding = &prediction->findings[k];
        double margin = finding->confidence - finding->threshold;
        if (finding->presence && margin > best_margin) {
            best = k;
            best_margin = margin;
        }
    }
    return best;
}

static int compare_floats(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Scales one class map in place to [0, 1]: 0 at its median over the cells that lie mostly in
 * the body, 1 at its maximum there. Per-map percentiles rather than a fixed logit scale,
 * because maps of different findings (and models) live on different scales: a map that is weak
 * in absolute terms still shows where it is strongest. A flat map (no location stands out) is
 * shown evenly at full strength over the body rather than not at all. */
static void scale_map(float *grid, uint32_t cam_width, uint32_t cam_height,
                      const struct cxr_report_mask *mask, float *values)
{
    size_t cells = (size_t)cam_width * cam_height;
    /* Share of each map cell's mask cells (by centre) that are body. */
    uint32_t inside[4096], total[4096];
    memset(inside, 0, sizeof(uint32_t) * cells);
    memset(total, 0, sizeof(uint32_t) * cells);
    for (uint32_t my = 0; my < mask->height; my++) {
        double py = (my + 0.5) * mask->factor;
        uint32_t r = (uint32_t)(py * cam_height / mask->source_height);
        r = r < cam_height ? r : cam_height - 1;
        for (uint32_t mx = 0; mx < mask->width; mx++) {
            double px = (mx + 0.5) * mask->factor;
            uint32_t c = (uint32_t)(px * cam_width / mask->source_width);
            c = c < cam_width ? c : cam_width - 1;
            total[r * cam_width + c]++;
            inside[r * cam_width + c] += mask->inside[(size_t)my * mask->width + mx];
        }
    }
    size_t count = 0;
    for (size_t i = 0; i < cells; i++) {
        if (isfinite(grid[i]) && total[i] > 0 && 2 * inside[i] >= total[i])
            values[count++] = grid[i];
    }
    if (count == 0) { /* no cell mostly in the body: use the whole map */
        for (size_t i = 0; i < cells; i++) {
            if (isfinite(grid[i]))
                values[count++] = grid[i];
        }
    }
    float low = 0.0f, high = 0.0f;
    if (count > 0) {
        qsort(values, count, sizeof(float), compare_floats);
        low = count % 2 ? values[count / 2] : 0.5f * (values[count / 2 - 1] + values[count / 2]);
        high = values[count - 1];
    }
    float span = high - low;
    bool flat = !(span > 1e-6f * fmaxf(1.0f, fabsf(high)));
    for (size_t i = 0; i < cells; i++) {
        float v = grid[i];
        if (isnan(v))
            grid[i] = 0.0f;
        else if (flat)
            grid[i] = v >= low ? 1.0f : 0.0f;
        else
            grid[i] = fminf(1.0f, fmaxf(0.0f, (v - low) / span));
    }
}

static enum cxr_status check_maps(const struct cxr_prediction *prediction, int finding,
                                  struct cxr_err *err)
{
    if (prediction == NULL || prediction->cams == NULL || prediction->cam_width == 0 ||
        prediction->cam_height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: the prediction has no class maps");
    if ((size_t)prediction->cam_width * prediction->cam_height > 4096)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: class maps of %ux%u are too large",
                           prediction->cam_width, prediction->cam_height);
    if (finding < 0 || finding >= CXR_FINDING_COUNT)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: no finding %d", finding);
    return CXR_OK;
}

/* Receives each row of the heat map (width values in [0, 1]) in order. */
typedef void (*heat_row_fn)(void *context, uint32_t y, const float *row);

/* The body mask upsampled to the image, as bytes (255 inside), then each heat row times it. */
struct mask_sink {
    uint8_t *body;
    uint32_t width;
};

static void mask_row(void *context, uint32_t y, const float *row)
{
    struct mask_sink *sink = context;
    cxr_report_bytes_from_floats(row, sink->width, 255.0f, sink->body + (size_t)y * sink->width);
}

struct heat_sink {
    const uint8_t *body;
    uint32_t width;
    float *row;
    heat_row_fn sink;
    void *context;
};

static void masked_heat_row(void *context, uint32_t y, const float *row)
{
    struct heat_sink *heat = context;
    const uint8_t *body = heat->body + (size_t)y * heat->width;
    for (uint32_t x = 0; x < heat->width; x++)
        heat->row[x] = row[x] * (body[x] * (1.0f / 255.0f));
    heat->sink(heat->context, y, heat->row);
}

/* Computes the heat map row by row: no full-size float image is held (the body mask, upsampled
 * once, is one byte per pixel). */
static enum cxr_status heat_rows(const struct cxr_prediction *prediction, int finding,
                                 const struct cxr_report_mask *mask, uint32_t width,
                                 uint32_t height, heat_row_fn sink, void *context,
                                 struct cxr_err *err)
{
    enum cxr_status status = check_maps(prediction, finding, err);
    if (status != CXR_OK)
        return status;
    if (width == 0 || height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: empty output image");
    if (mask == NULL || mask->inside == NULL || mask->width == 0 || mask->height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: no body mask");

    uint32_t cam_width = prediction->cam_width, cam_height = prediction->cam_height;
    size_t cam_pixels = (size_t)cam_width * cam_height;
    size_t mask_cells = (size_t)mask->width * mask->height;
    float *grid = malloc(sizeof(float) * cam_pixels * 2);
    float *mask_grid = malloc(sizeof(float) * mask_cells);
    uint8_t *body = malloc((size_t)width * height);
    float *row = malloc(sizeof(float) * (size_t)width);
    struct cxr_image_resampler *map = NULL, *body_map = NULL;
    if (!grid || !mask_grid || !body || !row) {
        status = cxr_err_set(err, CXR_ERR_NOMEM, "heatmap: out of memory");
        goto done;
    }
    memcpy(grid, prediction->cams + (size_t)finding * cam_pixels, sizeof(float) * cam_pixels);
    scale_map(grid, cam_width, cam_height, mask, grid + cam_pixels);
    for (size_t i = 0; i < mask_cells; i++)
        mask_grid[i] = mask->inside[i] ? 1.0f : 0.0f;

    /* Both grids are upsampled bilinearly at pixel centres by image/'s resampler. The map grid
     * spans the whole image; the mask grid spans factor-pixel cells of the source, so its last
     * cell may overhang the image and only source_width / factor cells map onto it. */
    status = cxr_image_resampler_create(cam_width, cam_height, 1, width, height, &map, err);
    if (status == CXR_OK)
        status = cxr_image_resampler_create_extent(mask->width, mask->height, 1, width, height,
                                                   (double)mask->source_width / mask->factor,
                                                   (double)mask->source_height / mask->factor,
                                                   &body_map, err);
    if (status != CXR_OK)
        goto done;
    struct mask_sink masks = {body, width};
    cxr_image_resampler_run_f32(body_map, mask_grid, mask_row, &masks);
    struct heat_sink heat = {body, width, row, sink, context};
    cxr_image_resampler_run_f32(map, grid, masked_heat_row, &heat);
    status = CXR_OK;
done:
    cxr_image_resampler_destroy(map);
    cxr_image_resampler_destroy(body_map);
    free(grid);
    free(mask_grid);
    free(body);
    free(row);
    return status;
}

struct heat_target {
    float *heat;
    uint32_t width;
};

static void copy_row(void *context, uint32_t y, const float *row)
{
    struct heat_target *target = context;
    memcpy(target->heat + (size_t)y * target->width, row, sizeof(float) * target->width);
}

enum cxr_status cxr_report_heat_compute(const struct cxr_prediction *prediction, int finding,
                                        const struct cxr_report_mask *mask, uint32_t width,
                                        uint32_t height, float *heat, struct cxr_err *err)
{
    if (heat == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: no output buffer");
    struct heat_target target = {heat, width};
    return heat_rows(prediction, finding, mask, width, height, copy_row, &target, err);
}

/* Blend tables: for each heat level, colour * alpha and the grey weight, in 1/256 units. */
struct blend {
    const uint8_t *grey;
    uint8_t *rgb;
    uint32_t width;
    uint32_t colour_part[256][3];
    uint32_t grey_weight[256];
};

static void blend_tables(struct blend *blend)
{
    uint8_t colormap[256][3];
    cxr_report_colormap_fill(colormap);
    for (int level = 0; level < 256; level++) {
        float alpha = CXR_REPORT_HEAT_ALPHA * (float)level / 255.0f;
        uint32_t a = (uint32_t)lroundf(alpha * 256.0f);
        blend->grey_weight[level] = 256 - a;
        for (int c = 0; c < 3; c++)
            blend->colour_part[level][c] = colormap[level][c] * a;
    }
}

static uint8_t blend_pixel(const struct blend *blend, uint8_t grey, int level, int channel)
{
    uint32_t base = grey * blend->grey_weight[level] + 128;
    return (uint8_t)((base + blend->colour_part[level][channel]) >> 8);
}

/* The legends show what the overlay draws, not the bare colour map: at heat 0 the overlay
 * leaves the radiograph untouched and at 1 it is 60 % colour, so a bar of the pure map (near
 * black violet at the "median" end, saturated yellow at the maximum) showed colours no map
 * contains. Each entry is the overlay's own blend over a mid grey. */
void cxr_report_colorbar_fill(uint8_t table[256][3])
{
    struct blend blend;
    blend_tables(&blend);
    for (int level = 0; level < 256; level++)
        for (int c = 0; c < 3; c++)
            table[level][c] = blend_pixel(&blend, CXR_REPORT_BAR_GREY, level, c);
}

static void blend_row(void *context, uint32_t y, const float *row)
{
    struct blend *blend = context;
    const uint8_t *grey = blend->grey + (size_t)y * blend->width;
    uint8_t *rgb = blend->rgb + (size_t)y * blend->width * 3;
    for (uint32_t x = 0; x < blend->width; x++) {
        /* row[x] is in [0, 1] (convex interpolation of values in [0, 1]); clamp anyway. */
        float scaled = row[x] * 255.0f + 0.5f;
        int level = scaled <= 0.0f ? 0 : scaled >= 255.0f ? 255 : (int)scaled;
        rgb[3 * x + 0] = blend_pixel(blend, grey[x], level, 0);
        rgb[3 * x + 1] = blend_pixel(blend, grey[x], level, 1);
        rgb[3 * x + 2] = blend_pixel(blend, grey[x], level, 2);
    }
}

/* Blends the finding's heat over source into rgb (source-sized, allocated by the caller). */
static enum cxr_status blend_into(const struct cxr_gray8 *source,
                                  const struct cxr_prediction *prediction, int finding,
                                  const struct cxr_report_mask *mask, uint8_t *rgb,
                                  struct cxr_err *err)
{
    struct blend *blend = malloc(sizeof(*blend));
    if (blend == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "heatmap: out of memory");
    blend_tables(blend);
    blend->grey = source->pixels;
    blend->rgb = rgb;
    blend->width = source->width;
    enum cxr_status status = heat_rows(prediction, finding, mask, source->width, source->height,
                                       blend_row, blend, err);
    free(blend);
    return status;
}

static enum cxr_status check_source(const struct cxr_gray8 *source, uint32_t extra_rows,
                                    size_t *bytes, struct cxr_err *err)
{
    if (source == NULL || source->pixels == NULL || source->width == 0 || source->height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: empty source image");
    size_t rows = (size_t)source->height + extra_rows;
    size_t pixels = (size_t)source->width * rows;
    if (pixels / rows != source->width || pixels > SIZE_MAX / 3 || rows > UINT32_MAX)
        return cxr_err_set(err, CXR_ERR_LIMIT, "heatmap: image too large");
    *bytes = pixels * 3;
    return CXR_OK;
}

enum cxr_status cxr_report_overlay(const struct cxr_gray8 *source,
                                   const struct cxr_prediction *prediction, int finding,
                                   const struct cxr_report_mask *mask, struct cxr_rgb8 *out,
                                   struct cxr_err *err)
{
    size_t bytes = 0;
    enum cxr_status status = check_source(source, 0, &bytes, err);
    if (status != CXR_OK)
        return status;
    if (out == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: no output image");
    uint8_t *rgb = malloc(bytes);
    if (rgb == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "heatmap: out of memory for %ux%u", source->width,
                           source->height);
    status = blend_into(source, prediction, finding, mask, rgb, err);
    if (status != CXR_OK) {
        free(rgb);
        return status;
    }
    *out = (struct cxr_rgb8){source->width, source->height, rgb};
    return CXR_OK;
}

enum cxr_status cxr_report_heatmap_render(const struct cxr_gray8 *source,
                                          const struct cxr_prediction *prediction,
                                          struct cxr_rgb8 *out, struct cxr_err *err)
{
    if (out == NULL || prediction == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: missing argument");
    int finding = cxr_report_finding_pick(prediction);
    if (finding < 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "heatmap: no finding is present (result Normal has no heatmap)");
    size_t bytes = 0;
    uint32_t legend = source && source->width ? cxr_report_legend_height(source->width) : 0;
    enum cxr_status status = check_source(source, legend, &bytes, err);
    if (status != CXR_OK)
        return status;
    status = check_maps(prediction, finding, err);
    if (status != CXR_OK)
        return status;
    struct cxr_report_mask mask = {0};
    status = cxr_report_mask_compute(source, &mask, err);
    if (status != CXR_OK)
        return status;
    uint8_t *rgb = malloc(bytes);
    if (rgb == NULL) {
        cxr_report_mask_release(&mask);
        return cxr_err_set(err, CXR_ERR_NOMEM, "heatmap: out of memory for %ux%u", source->width,
                           source->height);
    }
    status = blend_into(source, prediction, finding, &mask, rgb, err);
    cxr_report_mask_release(&mask);
    if (status == CXR_OK)
        status = cxr_report_legend_draw(prediction, finding,
                                        rgb + (size_t)source->width * source->height * 3,
                                        source->width, legend, NULL, err);
    if (status != CXR_OK) {
        free(rgb);
        return status;
    }
    *out = (struct cxr_rgb8){source->width, source->height + legend, rgb};
    return CXR_OK;
}
