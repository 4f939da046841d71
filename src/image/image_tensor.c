/* Resampling the rendered image into the network's float tensor: separable, with per-axis
 * weights computed once (area averaging when shrinking, so every source pixel counts
 * equally; bilinear with pixel-centre alignment when enlarging). */
#include <math.h>
#include <stdlib.h>

#include "image/image.h"

struct axis_weights {
    uint32_t *first; /* first source index of each output index */
    uint32_t *count; /* number of taps */
    float *weights;  /* taps of output index i start at i * max_taps */
    uint32_t max_taps;
};

static void axis_free(struct axis_weights *axis)
{
    free(axis->first);
    free(axis->count);
    free(axis->weights);
}

static bool axis_build(uint32_t in, uint32_t out, struct axis_weights *axis)
{
    double scale = (double)in / out;
    axis->max_taps = out < in ? (uint32_t)ceil(scale) + 1 : 2;
    axis->first = calloc(out, sizeof(*axis->first));
    axis->count = calloc(out, sizeof(*axis->count));
    axis->weights = calloc((size_t)out * axis->max_taps, sizeof(*axis->weights));
    if (axis->first == NULL || axis->count == NULL || axis->weights == NULL) {
        axis_free(axis);
        return false;
    }
    for (uint32_t o = 0; o < out; o++) {
        float *w = axis->weights + (size_t)o * axis->max_taps;
        if (out < in) {
            /* Output pixel o covers source interval [o * scale, (o + 1) * scale). */
            double begin = o * scale;
            double end = begin + scale;
            uint32_t first = (uint32_t)floor(begin);
            uint32_t n = 0;
            for (uint32_t i = first; i < in && i < end && n < axis->max_taps; i++) {
                double overlap = fmin(end, i + 1.0) - fmax(begin, (double)i);
                w[n++] = (float)(overlap / scale);
            }
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

enum cxr_status cxr_image_to_tensor(const struct cxr_gray8 *image, uint32_t out_width,
                                    uint32_t out_height, float scale, float offset, float *tensor,
                                    struct cxr_err *err)
{
    if (image == NULL || image->pixels == NULL || tensor == NULL || image->width == 0 ||
        image->height == 0 || out_width == 0 || out_height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "image: bad tensor request");
    if (out_width > 65536 || out_height > 65536)
        return cxr_err_set(err, CXR_ERR_LIMIT, "image: tensor of %ux%u is too large", out_width,
                           out_height);
    struct axis_weights horizontal = {0};
    struct axis_weights vertical = {0};
    float *rows = NULL;
    if (!axis_build(image->width, out_width, &horizontal) ||
        !axis_build(image->height, out_height, &vertical) ||
        (rows = malloc((size_t)image->height * out_width * sizeof(*rows))) == NULL) {
        axis_free(&horizontal);
        axis_free(&vertical);
        return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for resampling");
    }
    /* Horizontal pass: every source row to out_width columns. */
    for (uint32_t y = 0; y < image->height; y++) {
        const uint8_t *in = image->pixels + (size_t)y * image->width;
        float *out = rows + (size_t)y * out_width;
        for (uint32_t x = 0; x < out_width; x++) {
            const float *w = horizontal.weights + (size_t)x * horizontal.max_taps;
            const uint8_t *src = in + horizontal.first[x];
            float sum = 0;
            for (uint32_t t = 0; t < horizontal.count[x]; t++)
                sum += w[t] * src[t];
            out[x] = sum;
        }
    }
    /* Vertical pass, then the affine map to the network's value range. */
    for (uint32_t y = 0; y < out_height; y++) {
        const float *w = vertical.weights + (size_t)y * vertical.max_taps;
        float *out = tensor + (size_t)y * out_width;
        for (uint32_t x = 0; x < out_width; x++)
            out[x] = 0;
        for (uint32_t t = 0; t < vertical.count[y]; t++) {
            const float *src = rows + (size_t)(vertical.first[y] + t) * out_width;
            for (uint32_t x = 0; x < out_width; x++)
                out[x] += w[t] * src[x];
        }
        for (uint32_t x = 0; x < out_width; x++)
            out[x] = out[x] * scale + offset;
    }
    free(rows);
    axis_free(&horizontal);
    axis_free(&vertical);
    return CXR_OK;
}
