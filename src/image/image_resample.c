/* The one resampler: separable, with per-axis weights computed once (area averaging when an
 * axis shrinks, so every source pixel counts equally; bilinear with pixel-centre alignment when
 * it grows), run row by row through a ring of horizontally resampled source rows, so no
 * full-size intermediate image is ever held. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

/* Largest side, in or out: DICOM's Rows and Columns are 16-bit. */
#define RESAMPLE_MAX_SIDE 65536u

struct axis_weights {
    uint32_t *first; /* first source index of each output index */
    uint32_t *count; /* number of taps */
    float *weights;  /* taps of output index i start at i * max_taps */
    uint32_t max_taps;
};

struct cxr_image_resampler {
    uint32_t in_width, in_height, channels, out_width, out_height;
    struct axis_weights horizontal, vertical;
    float *ring;        /* vertical.max_taps rows of out_width * channels floats */
    uint32_t *ring_row; /* source row each ring slot holds; UINT32_MAX when none */
    float *row;         /* the output row handed to the sink */
};

static void axis_free(struct axis_weights *axis)
{
    free(axis->first);
    free(axis->count);
    free(axis->weights);
}

/* Output index o covers source coordinates [o, o + 1) * extent / out. extent is in, or less
 * when the output spans only the first extent source samples, or more when the output grid
 * overhangs the image: a shrunk sample is then the mean of the source samples it covers. */
static bool axis_build(uint32_t in, double extent, uint32_t out, struct axis_weights *axis)
{
    double scale = extent / out;
    bool shrinking = out < extent;
    axis->max_taps = shrinking ? (uint32_t)ceil(scale) + 1 : 2;
    axis->first = calloc(out, sizeof(*axis->first));
    axis->count = calloc(out, sizeof(*axis->count));
    axis->weights = calloc((size_t)out * axis->max_taps, sizeof(*axis->weights));
    if (axis->first == NULL || axis->count == NULL || axis->weights == NULL) {
        axis_free(axis);
        return false;
    }
    for (uint32_t o = 0; o < out; o++) {
        float *w = axis->weights + (size_t)o * axis->max_taps;
        if (shrinking) {
            /* Output pixel o covers source interval [o * scale, (o + 1) * scale). */
            double begin = o * scale;
            double end = begin + scale;
            uint32_t first = (uint32_t)floor(begin);
            uint32_t n = 0;
            double covered = 0;
            for (uint32_t i = first; i < in && i < end && n < axis->max_taps; i++) {
                double overlap = fmin(end, i + 1.0) - fmax(begin, (double)i);
                w[n++] = (float)(overlap / scale);
                covered += overlap;
            }
            /* Only an overhanging cell covers less than scale: average what it covers. */
            for (uint32_t t = 0; covered > 0 && covered < scale - 1e-9 && t < n; t++)
                w[t] = (float)(w[t] * scale / covered);
            axis->first[o] = first;
            axis->count[o] = n;
        } else {
            double centre = (o + 0.5) * scale - 0.5;
            if (centre < 0)
                centre = 0;
            uint32_t left = (uint32_t)floor(centre);
            if (left >= in - 1) {
                axis->first[o] = in - 1;
                axis->count[o] = 1;
                w[0] = 1.0f;
                continue;
            }
            double fraction = centre - left;
            axis->first[o] = left;
            axis->count[o] = 2;
            w[0] = (float)(1.0 - fraction);
            w[1] = (float)fraction;
        }
    }
    return true;
}

enum cxr_status cxr_image_resampler_create(uint32_t in_width, uint32_t in_height, uint32_t channels,
                                           uint32_t out_width, uint32_t out_height,
                                           struct cxr_image_resampler **resampler,
                                           struct cxr_err *err)
{
    return cxr_image_resampler_create_extent(in_width, in_height, channels, out_width, out_height,
                                             in_width, in_height, resampler, err);
}

enum cxr_status cxr_image_resampler_create_extent(uint32_t in_width, uint32_t in_height,
                                                  uint32_t channels, uint32_t out_width,
                                                  uint32_t out_height, double x_extent,
                                                  double y_extent,
                                                  struct cxr_image_resampler **resampler,
                                                  struct cxr_err *err)
{
    if (resampler == NULL || in_width == 0 || in_height == 0 || channels == 0 || channels > 4 ||
        out_width == 0 || out_height == 0 || !(x_extent > 0 && x_extent <= 2.0 * in_width) ||
        !(y_extent > 0 && y_extent <= 2.0 * in_height))
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "image: bad resampling request");
    if (in_width > RESAMPLE_MAX_SIDE || in_height > RESAMPLE_MAX_SIDE ||
        out_width > RESAMPLE_MAX_SIDE || out_height > RESAMPLE_MAX_SIDE)
        return cxr_err_set(err, CXR_ERR_LIMIT, "image: resampling %ux%u to %ux%u is too large",
                           in_width, in_height, out_width, out_height);
    struct cxr_image_resampler *made = calloc(1, sizeof(*made));
    if (made == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for resampling");
    *made = (struct cxr_image_resampler){.in_width = in_width,
                                         .in_height = in_height,
                                         .channels = channels,
                                         .out_width = out_width,
                                         .out_height = out_height};
    size_t row_values = (size_t)out_width * channels;
    bool built = axis_build(in_width, x_extent, out_width, &made->horizontal);
    if (built && !axis_build(in_height, y_extent, out_height, &made->vertical)) {
        axis_free(&made->horizontal);
        built = false;
    }
    if (!built) {
        free(made);
        return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for resampling");
    }
    uint32_t slots = made->vertical.max_taps;
    made->ring = malloc((size_t)slots * row_values * sizeof(*made->ring));
    made->ring_row = malloc(slots * sizeof(*made->ring_row));
    made->row = malloc(row_values * sizeof(*made->row));
    if (made->ring == NULL || made->ring_row == NULL || made->row == NULL) {
        cxr_image_resampler_destroy(made);
        return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for resampling");
    }
    *resampler = made;
    return CXR_OK;
}

void cxr_image_resampler_destroy(struct cxr_image_resampler *resampler)
{
    if (resampler == NULL)
        return;
    axis_free(&resampler->horizontal);
    axis_free(&resampler->vertical);
    free(resampler->ring);
    free(resampler->ring_row);
    free(resampler->row);
    free(resampler);
}

/* Horizontal pass of one source row (8-bit or float samples) into out. */
#define HORIZONTAL_PASS(sample_type)                                                               \
    static void horizontal_##sample_type(const struct cxr_image_resampler *r,                      \
                                         const sample_type *in, float *out)                        \
    {                                                                                              \
        const struct axis_weights *axis = &r->horizontal;                                          \
        uint32_t channels = r->channels;                                                           \
        for (uint32_t x = 0; x < r->out_width; x++) {                                              \
            const float *w = axis->weights + (size_t)x * axis->max_taps;                           \
            const sample_type *src = in + (size_t)axis->first[x] * channels;                       \
            for (uint32_t c = 0; c < channels; c++) {                                              \
                float sum = 0;                                                                     \
                for (uint32_t t = 0; t < axis->count[x]; t++)                                      \
                    sum += w[t] * src[(size_t)t * channels + c];                                   \
                out[(size_t)x * channels + c] = sum;                                               \
            }                                                                                      \
        }                                                                                          \
    }
HORIZONTAL_PASS(uint8_t)
HORIZONTAL_PASS(float)

/* out += weight * src over n values; restrict lets the compiler vectorise it. */
static void accumulate(float *restrict out, const float *restrict src, float weight, size_t n)
{
    for (size_t x = 0; x < n; x++)
        out[x] += weight * src[x];
}

static void run(struct cxr_image_resampler *r, const uint8_t *pixels_u8, const float *pixels_f32,
                cxr_image_row_fn sink, void *context)
{
    const struct axis_weights *axis = &r->vertical;
    size_t in_values = (size_t)r->in_width * r->channels;
    size_t out_values = (size_t)r->out_width * r->channels;
    for (uint32_t slot = 0; slot < axis->max_taps; slot++)
        r->ring_row[slot] = UINT32_MAX;
    for (uint32_t y = 0; y < r->out_height; y++) {
        const float *w = axis->weights + (size_t)y * axis->max_taps;
        float *out = r->row;
        for (size_t x = 0; x < out_values; x++)
            out[x] = 0;
        /* The taps of one output row are at most max_taps consecutive source rows, so each
         * has its own slot; rows move forward, so each source row is resampled once. */
        for (uint32_t t = 0; t < axis->count[y]; t++) {
            uint32_t source_row = axis->first[y] + t;
            uint32_t slot = source_row % axis->max_taps;
            float *src = r->ring + (size_t)slot * out_values;
            if (r->ring_row[slot] != source_row) {
                if (pixels_u8 != NULL)
                    horizontal_uint8_t(r, pixels_u8 + (size_t)source_row * in_values, src);
                else
                    horizontal_float(r, pixels_f32 + (size_t)source_row * in_values, src);
                r->ring_row[slot] = source_row;
            }
            accumulate(out, src, w[t], out_values);
        }
        sink(context, y, out);
    }
}

void cxr_image_resampler_run_u8(struct cxr_image_resampler *resampler, const uint8_t *pixels,
                                cxr_image_row_fn sink, void *context)
{
    run(resampler, pixels, NULL, sink, context);
}

void cxr_image_resampler_run_f32(struct cxr_image_resampler *resampler, const float *pixels,
                                 cxr_image_row_fn sink, void *context)
{
    run(resampler, NULL, pixels, sink, context);
}

/* The integer-factor case of area averaging, on 8-bit samples: rows of a cell are summed first
 * (one contiguous pass over the source, which vectorises), then cells within the sum. The
 * general resampler gives the same means but costs about four times as much here, where the
 * PDF shrinks a full-size RGB heatmap once per map. */
static void box_shrink(const uint8_t *pixels, uint32_t channels, uint32_t width, uint32_t height,
                       uint32_t factor, uint32_t out_width, uint32_t out_height, uint32_t *row_sum,
                       uint8_t *out)
{
    size_t row_values = (size_t)width * channels;
    for (uint32_t y = 0; y < out_height; y++) {
        uint32_t y0 = y * factor;
        uint32_t y1 = y0 + factor < height ? y0 + factor : height;
        memset(row_sum, 0, row_values * sizeof(*row_sum));
        for (uint32_t sy = y0; sy < y1; sy++) {
            const uint8_t *row = pixels + sy * row_values;
            for (size_t i = 0; i < row_values; i++)
                row_sum[i] += row[i];
        }
        uint8_t *dest = out + (size_t)y * out_width * channels;
        float full_scale = 1.0f / (float)((y1 - y0) * factor);
        for (uint32_t x = 0; x < out_width; x++) {
            uint32_t x0 = x * factor;
            uint32_t x1 = x0 + factor < width ? x0 + factor : width;
            float scale = x1 - x0 == factor ? full_scale : 1.0f / (float)((y1 - y0) * (x1 - x0));
            const uint32_t *cell = row_sum + (size_t)x0 * channels;
            for (uint32_t c = 0; c < channels; c++) {
                uint32_t sum = 0;
                for (uint32_t j = 0; j < x1 - x0; j++)
                    sum += cell[j * channels + c];
                float mean = (float)sum * scale + 0.5f;
                dest[c] = mean >= 255.0f ? 255 : (uint8_t)mean;
            }
            dest += channels;
        }
    }
}

enum cxr_status cxr_image_box_shrink(const uint8_t *pixels, uint32_t channels, uint32_t width,
                                     uint32_t height, uint32_t factor, uint8_t *out,
                                     struct cxr_err *err)
{
    if (pixels == NULL || out == NULL || channels == 0 || channels > 4 || width == 0 ||
        height == 0 || factor == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "image: bad shrink request");
    if (factor > 4096) /* sums of factor^2 values of 255 must fit in 32 bits */
        return cxr_err_set(err, CXR_ERR_LIMIT, "image: shrink factor %u is too large", factor);
    if (factor == 1) { /* the PDF's small maps are already at their printed size */
        memcpy(out, pixels, (size_t)width * height * channels);
        return CXR_OK;
    }
    uint32_t out_width = width / factor + (width % factor != 0);
    uint32_t out_height = height / factor + (height % factor != 0);
    uint32_t *row_sum = malloc((size_t)width * channels * sizeof(*row_sum));
    if (row_sum == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for shrinking");
    box_shrink(pixels, channels, width, height, factor, out_width, out_height, row_sum, out);
    free(row_sum);
    return CXR_OK;
}
