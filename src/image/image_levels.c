/* The resampler's resize of an 8-bit grey image (image_resample.c, whole image to a size)
 * rounded to 8-bit levels, halves up, in integer arithmetic. Equalisation works on these levels,
 * and an area average often lands exactly on a half: float sums put it on either side by 1e-6,
 * so cxrd and the training tools (tools/train/data.py resized_levels) take the sums exactly. */
#include <stdlib.h>

#include "image/image.h"

/* One axis: every output index's taps as whole-number weights over one common denominator. */
struct level_axis {
    uint32_t *first;   /* first source index of each output index */
    uint32_t *count;   /* number of taps */
    uint32_t *weights; /* taps of output index o start at o * max_taps */
    uint32_t max_taps;
    uint32_t denominator;
};

static void level_axis_free(struct level_axis *axis)
{
    free(axis->first);
    free(axis->count);
    free(axis->weights);
}

/* Shrinking, in units of 1 / out: output o covers [o, o + 1) * in and source pixel i covers
 * [i, i + 1) * out, so the overlaps are whole numbers summing to in, the denominator. Growing:
 * bilinear about the centre ((2 o + 1) in - out) / (2 out), clamped at 0 (image_resample.c),
 * over the denominator 2 out. Equal sizes: each pixel itself. */
static bool level_axis_build(uint32_t in, uint32_t out, struct level_axis *axis)
{
    axis->max_taps = out < in ? (in + out - 1) / out + 1 : 2;
    axis->first = calloc(out, sizeof(*axis->first));
    axis->count = calloc(out, sizeof(*axis->count));
    axis->weights = calloc((size_t)out * axis->max_taps, sizeof(*axis->weights));
    if (axis->first == NULL || axis->count == NULL || axis->weights == NULL) {
        level_axis_free(axis);
        return false;
    }
    axis->denominator = out < in ? in : out == in ? 1 : 2 * out;
    for (uint32_t o = 0; o < out; o++) {
        uint32_t *w = axis->weights + (size_t)o * axis->max_taps;
        uint32_t n = 0;
        if (out < in) {
            uint64_t begin = (uint64_t)o * in, end = begin + in;
            axis->first[o] = (uint32_t)(begin / out);
            for (uint64_t i = axis->first[o]; i < in && i * out < end; i++) {
                uint64_t low = i * out > begin ? i * out : begin;
                uint64_t high = (i + 1) * out < end ? (i + 1) * out : end;
                w[n++] = (uint32_t)(high - low);
            }
        } else if (out == in) {
            axis->first[o] = o;
            w[n++] = 1;
        } else {
            uint64_t twice = (uint64_t)(2 * o + 1) * in;
            uint64_t centre = twice > out ? twice - out : 0; /* in units of 1 / (2 out) */
            uint64_t left = centre / axis->denominator, fraction = centre % axis->denominator;
            if (left >= in - 1) {
                axis->first[o] = in - 1;
                w[n++] = axis->denominator;
            } else {
                axis->first[o] = (uint32_t)left;
                w[n++] = (uint32_t)(axis->denominator - fraction);
                w[n++] = (uint32_t)fraction;
            }
        }
        axis->count[o] = n;
    }
    return true;
}

/* Each output row sums its source rows, each resampled horizontally again (a source row
 * serves at most a few output rows), so memory stays O(out_width * taps). Sums stay below
 * 255 * (2 * 65536)^2 < 2^43. */
static void resize(const struct cxr_gray8 *image, const struct level_axis *across,
                   const struct level_axis *down, uint32_t out_width, uint32_t out_height,
                   uint64_t *sums, uint8_t *levels)
{
    uint64_t denominator = (uint64_t)across->denominator * down->denominator;
    for (uint32_t y = 0; y < out_height; y++) {
        for (uint32_t x = 0; x < out_width; x++)
            sums[x] = 0;
        const uint32_t *wy = down->weights + (size_t)y * down->max_taps;
        for (uint32_t t = 0; t < down->count[y]; t++) {
            const uint8_t *row = image->pixels + (size_t)(down->first[y] + t) * image->width;
            for (uint32_t x = 0; x < out_width; x++) {
                const uint32_t *wx = across->weights + (size_t)x * across->max_taps;
                const uint8_t *src = row + across->first[x];
                uint64_t sum = 0;
                for (uint32_t s = 0; s < across->count[x]; s++)
                    sum += (uint64_t)wx[s] * src[s];
                sums[x] += wy[t] * sum;
            }
        }
        uint8_t *out = levels + (size_t)y * out_width;
        for (uint32_t x = 0; x < out_width; x++)
            out[x] = (uint8_t)((2 * sums[x] + denominator) / (2 * denominator));
    }
}

enum cxr_status cxr_image_resize_levels(const struct cxr_gray8 *image, uint32_t out_width,
                                        uint32_t out_height, uint8_t *levels, struct cxr_err *err)
{
    if (image == NULL || image->pixels == NULL || levels == NULL || image->width == 0 ||
        image->height == 0 || out_width == 0 || out_height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "image: bad level resize request");
    if (image->width > 65536 || image->height > 65536 || out_width > 65536 || out_height > 65536)
        return cxr_err_set(err, CXR_ERR_LIMIT, "image: resizing %ux%u to %ux%u is too large",
                           image->width, image->height, out_width, out_height);
    struct level_axis across = {0}, down = {0};
    uint64_t *sums = malloc((size_t)out_width * sizeof(*sums));
    bool built = sums != NULL && level_axis_build(image->width, out_width, &across);
    if (built && !level_axis_build(image->height, out_height, &down)) {
        level_axis_free(&across);
        built = false;
    }
    if (!built) {
        free(sums);
        return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for resizing");
    }
    resize(image, &across, &down, out_width, out_height, sums, levels);
    level_axis_free(&across);
    level_axis_free(&down);
    free(sums);
    return CXR_OK;
}
