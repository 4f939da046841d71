/* Heatmap overlay: the class maps of the present findings, weighted by confidence, summed,
 * upsampled to the source size and drawn over the grey source with a perceptual colour map
 * whose opacity grows with the heat, so regions without evidence keep the plain radiograph. */
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

/* Source coordinate and weight for bilinear upsampling at pixel centres, clamped at the edges. */
struct axis_sample {
    uint32_t lo, hi;
    float weight_hi;
};

static void axis_samples(uint32_t out_size, uint32_t in_size, struct axis_sample *samples)
{
    double ratio = (double)in_size / (double)out_size;
    for (uint32_t i = 0; i < out_size; i++) {
        double position = (i + 0.5) * ratio - 0.5;
        if (position < 0.0)
            position = 0.0;
        uint32_t lo = (uint32_t)position;
        if (lo > in_size - 1)
            lo = in_size - 1;
        uint32_t hi = lo + 1 < in_size ? lo + 1 : lo;
        samples[i].lo = lo;
        samples[i].hi = hi;
        samples[i].weight_hi = hi == lo ? 0.0f : (float)(position - lo);
    }
}

static enum cxr_status check_maps(const struct cxr_prediction *prediction, struct cxr_err *err)
{
    if (prediction == NULL || prediction->cams == NULL || prediction->cam_width == 0 ||
        prediction->cam_height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: the prediction has no class maps");
    if (prediction->cam_width > 4096 || prediction->cam_height > 4096)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: class maps of %ux%u are too large",
                           prediction->cam_width, prediction->cam_height);
    return CXR_OK;
}

/* Receives each row of the heat map (width values in [0, 1]) in order. */
typedef void (*heat_row_fn)(void *context, uint32_t y, const float *row);

/* Computes the heat map row by row, so a full-size float image is never held in memory. */
static enum cxr_status heat_rows(const struct cxr_prediction *prediction, uint32_t width,
                                 uint32_t height, heat_row_fn sink, void *context,
                                 struct cxr_err *err)
{
    enum cxr_status status = check_maps(prediction, err);
    if (status != CXR_OK)
        return status;
    if (width == 0 || height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: empty output image");
    bool any_present = false;
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        any_present = any_present || prediction->findings[k].presence;
    if (!any_present)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "heatmap: no finding is present (result Normal has no heatmap)");

    size_t cam_pixels = (size_t)prediction->cam_width * prediction->cam_height;
    float *combined = calloc(cam_pixels, sizeof(*combined));
    struct axis_sample *columns = malloc(sizeof(*columns) * width);
    struct axis_sample *rows = malloc(sizeof(*rows) * height);
    float *row_lo = malloc(sizeof(float) * width);
    float *row_hi = malloc(sizeof(float) * width);
    float *row = malloc(sizeof(float) * width);
    if (!combined || !columns || !rows || !row_lo || !row_hi || !row) {
        status = cxr_err_set(err, CXR_ERR_NOMEM, "heatmap: out of memory");
        goto done;
    }

    for (int k = 0; k < CXR_FINDING_COUNT; k++) {
        if (!prediction->findings[k].presence)
            continue;
        float weight = (float)prediction->findings[k].confidence;
        const float *cam = prediction->cams + (size_t)k * cam_pixels;
        for (size_t i = 0; i < cam_pixels; i++)
            combined[i] += weight * cam[i];
    }
    /* Only positive evidence is shown; normalising on the small grid is the same as after
     * upsampling, because bilinear weights are convex (the maximum is a grid value). */
    float maximum = 0.0f;
    for (size_t i = 0; i < cam_pixels; i++) {
        if (!(combined[i] > 0.0f)) /* also clears NaN */
            combined[i] = 0.0f;
        if (combined[i] > maximum)
            maximum = combined[i];
    }
    float scale = maximum > 0.0f && isfinite(maximum) ? 1.0f / maximum : 0.0f;
    for (size_t i = 0; i < cam_pixels; i++)
        combined[i] = isfinite(combined[i]) ? combined[i] * scale : 1.0f;

    axis_samples(width, prediction->cam_width, columns);
    axis_samples(height, prediction->cam_height, rows);
    uint32_t cached_lo = UINT32_MAX, cached_hi = UINT32_MAX;
    for (uint32_t y = 0; y < height; y++) {
        /* Interpolate the two grid rows horizontally once per grid row, not per output row. */
        if (rows[y].lo != cached_lo || rows[y].hi != cached_hi) {
            const float *grid_lo = combined + (size_t)rows[y].lo * prediction->cam_width;
            const float *grid_hi = combined + (size_t)rows[y].hi * prediction->cam_width;
            for (uint32_t x = 0; x < width; x++) {
                float w = columns[x].weight_hi;
                row_lo[x] = grid_lo[columns[x].lo] * (1.0f - w) + grid_lo[columns[x].hi] * w;
                row_hi[x] = grid_hi[columns[x].lo] * (1.0f - w) + grid_hi[columns[x].hi] * w;
            }
            cached_lo = rows[y].lo;
            cached_hi = rows[y].hi;
        }
        float w = rows[y].weight_hi;
        for (uint32_t x = 0; x < width; x++)
            row[x] = row_lo[x] * (1.0f - w) + row_hi[x] * w;
        sink(context, y, row);
    }
    status = CXR_OK;
done:
    free(row);
    free(combined);
    free(columns);
    free(rows);
    free(row_lo);
    free(row_hi);
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

enum cxr_status cxr_report_heat_compute(const struct cxr_prediction *prediction, uint32_t width,
                                        uint32_t height, float *heat, struct cxr_err *err)
{
    if (heat == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: no output buffer");
    struct heat_target target = {heat, width};
    return heat_rows(prediction, width, height, copy_row, &target, err);
}

/* Blend tables: for each heat level, colour * alpha and the grey weight, in 1/256 units. */
struct blend {
    const uint8_t *grey;
    uint8_t *rgb;
    uint32_t width;
    uint32_t colour_part[256][3];
    uint32_t grey_weight[256];
};

static void blend_row(void *context, uint32_t y, const float *row)
{
    struct blend *blend = context;
    const uint8_t *grey = blend->grey + (size_t)y * blend->width;
    uint8_t *rgb = blend->rgb + (size_t)y * blend->width * 3;
    for (uint32_t x = 0; x < blend->width; x++) {
        /* row[x] is in [0, 1] (convex interpolation of values in [0, 1]); clamp anyway. */
        float scaled = row[x] * 255.0f + 0.5f;
        int level = scaled <= 0.0f ? 0 : scaled >= 255.0f ? 255 : (int)scaled;
        uint32_t base = grey[x] * blend->grey_weight[level] + 128;
        rgb[3 * x + 0] = (uint8_t)((base + blend->colour_part[level][0]) >> 8);
        rgb[3 * x + 1] = (uint8_t)((base + blend->colour_part[level][1]) >> 8);
        rgb[3 * x + 2] = (uint8_t)((base + blend->colour_part[level][2]) >> 8);
    }
}

enum cxr_status cxr_report_heatmap(const struct cxr_gray8 *source,
                                   const struct cxr_prediction *prediction, struct cxr_rgb8 *out,
                                   struct cxr_err *err)
{
    if (source == NULL || source->pixels == NULL || source->width == 0 || source->height == 0 ||
        out == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "heatmap: empty source image");
    size_t pixels = (size_t)source->width * source->height;
    if (pixels / source->height != source->width || pixels > SIZE_MAX / 3)
        return cxr_err_set(err, CXR_ERR_LIMIT, "heatmap: image too large");

    struct blend *blend = malloc(sizeof(*blend));
    uint8_t *rgb = malloc(pixels * 3);
    if (!blend || !rgb) {
        free(blend);
        free(rgb);
        return cxr_err_set(err, CXR_ERR_NOMEM, "heatmap: out of memory for %ux%u", source->width,
                           source->height);
    }
    uint8_t colormap[256][3];
    cxr_report_colormap_fill(colormap);
    for (int level = 0; level < 256; level++) {
        float alpha = CXR_REPORT_HEAT_ALPHA * (float)level / 255.0f;
        uint32_t a = (uint32_t)lroundf(alpha * 256.0f);
        blend->grey_weight[level] = 256 - a;
        for (int c = 0; c < 3; c++)
            blend->colour_part[level][c] = colormap[level][c] * a;
    }
    blend->grey = source->pixels;
    blend->rgb = rgb;
    blend->width = source->width;
    enum cxr_status status =
            heat_rows(prediction, source->width, source->height, blend_row, blend, err);
    free(blend);
    if (status != CXR_OK) {
        free(rgb);
        return status;
    }
    out->width = source->width;
    out->height = source->height;
    out->pixels = rgb;
    return CXR_OK;
}
