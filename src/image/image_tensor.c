/* The rendered image as the network's float tensor: resampled to the input size by the image
 * stage's resampler (image_resample.c), or to exact 8-bit levels (image_levels.c) that are
 * equalised (the whole histogram, or CLAHE in image_clahe.c), then mapped to the network's
 * value range. */
#include <stdlib.h>

#include "image/image.h"

struct tensor_target {
    float *tensor;
    uint32_t width;
    float scale, offset;
};

static void store_row(void *context, uint32_t y, const float *row)
{
    struct tensor_target *target = context;
    float *out = target->tensor + (size_t)y * target->width;
    for (uint32_t x = 0; x < target->width; x++)
        out[x] = row[x] * target->scale + target->offset;
}

/* Replaces 8-bit levels by their histogram-equalised levels: grey g becomes
 * round(255 * (C(g) - C(lowest)) / (N - C(lowest))), halves up (image.h), in integers as
 * tools/train/data.py equalize() computes it. */
static void equalize(uint8_t *levels, size_t count)
{
    uint64_t cumulative[256] = {0};
    uint8_t lowest = 255;
    for (size_t i = 0; i < count; i++) {
        cumulative[levels[i]]++;
        if (levels[i] < lowest)
            lowest = levels[i];
    }
    for (int g = 1; g < 256; g++)
        cumulative[g] += cumulative[g - 1];
    uint64_t below = cumulative[lowest]; /* the darkest level present maps to 0 */
    uint64_t span = count > below ? count - below : 1;
    uint8_t map[256];
    for (int g = 0; g < 256; g++) {
        uint64_t rank = cumulative[g] > below ? cumulative[g] - below : 0;
        uint64_t level = (rank * 510 + span) / (2 * span); /* 255 * rank / span, halves up */
        map[g] = (uint8_t)(level > 255 ? 255 : level);
    }
    for (size_t i = 0; i < count; i++)
        levels[i] = map[levels[i]];
}

/* The exact resized levels (cxr_image_resize_levels), equalised as format says, in network
 * units. */
static enum cxr_status equalized_tensor(const struct cxr_gray8 *image,
                                        const struct cxr_tensor_format *format, float *tensor,
                                        struct cxr_err *err)
{
    size_t count = (size_t)format->width * format->height;
    uint8_t *levels = malloc(count);
    if (levels == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for equalising");
    enum cxr_status status =
            cxr_image_resize_levels(image, format->width, format->height, levels, err);
    if (status == CXR_OK && format->equalize == CXR_EQUALIZE_HISTOGRAM)
        equalize(levels, count);
    else if (status == CXR_OK)
        status = cxr_image_clahe(levels, format->width, format->height, format->clahe_tiles,
                                 format->clahe_clip, err);
    for (size_t i = 0; status == CXR_OK && i < count; i++)
        tensor[i] = (float)levels[i] * format->scale + format->offset;
    free(levels);
    return status;
}

enum cxr_status cxr_image_to_tensor_formatted(const struct cxr_gray8 *image,
                                              const struct cxr_tensor_format *format, float *tensor,
                                              struct cxr_err *err)
{
    if (image == NULL || image->pixels == NULL || format == NULL || tensor == NULL ||
        image->width == 0 || image->height == 0 || format->width == 0 || format->height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "image: bad tensor request");
    if (format->width > 65536 || format->height > 65536)
        return cxr_err_set(err, CXR_ERR_LIMIT, "image: tensor of %ux%u is too large", format->width,
                           format->height);
    if (format->equalize != CXR_EQUALIZE_NONE)
        return equalized_tensor(image, format, tensor, err);
    struct cxr_image_resampler *resampler = NULL;
    enum cxr_status status = cxr_image_resampler_create(
            image->width, image->height, 1, format->width, format->height, &resampler, err);
    if (status != CXR_OK)
        return status;
    struct tensor_target target = {tensor, format->width, format->scale, format->offset};
    cxr_image_resampler_run_u8(resampler, image->pixels, store_row, &target);
    cxr_image_resampler_destroy(resampler);
    return CXR_OK;
}

enum cxr_status cxr_image_to_tensor(const struct cxr_gray8 *image, uint32_t out_width,
                                    uint32_t out_height, float scale, float offset, float *tensor,
                                    struct cxr_err *err)
{
    struct cxr_tensor_format format = {
            .width = out_width, .height = out_height, .scale = scale, .offset = offset};
    return cxr_image_to_tensor_formatted(image, &format, tensor, err);
}

enum cxr_status cxr_image_to_tensor_equalized(const struct cxr_gray8 *image, uint32_t out_width,
                                              uint32_t out_height, float scale, float offset,
                                              float *tensor, struct cxr_err *err)
{
    struct cxr_tensor_format format = {.width = out_width,
                                       .height = out_height,
                                       .scale = scale,
                                       .offset = offset,
                                       .equalize = CXR_EQUALIZE_HISTOGRAM};
    return cxr_image_to_tensor_formatted(image, &format, tensor, err);
}
