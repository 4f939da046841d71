/* The rendered image as the network's float tensor: resampled to the input size by the image
 * stage's resampler (image_resample.c), optionally equalised (the whole histogram, or CLAHE in
 * image_clahe.c), then mapped to the network's value range. */
#include <math.h>
#include <stdbool.h>
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

/* A resized level (in [0, 255]) rounded to 8 bits, halves up, as tools/train/data.py
 * network_input() rounds it before equalising. */
static uint8_t rounded_level(float value)
{
    float level = floorf(value + 0.5f);
    return level <= 0.0f ? 0 : level >= 255.0f ? 255 : (uint8_t)level;
}

/* Replaces the resized grey levels in tensor (count values in [0, 255]) by their equalised
 * levels in network units. Each level is first rounded to 8 bits (halves up) so the histogram
 * has 256 bins; rounding and integer arithmetic match tools/train/data.py network_input(). */
static void equalize(float *tensor, size_t count, float scale, float offset)
{
    uint64_t cumulative[256] = {0};
    uint8_t lowest = 255;
    for (size_t i = 0; i < count; i++) {
        uint8_t grey = rounded_level(tensor[i]);
        tensor[i] = grey;
        cumulative[grey]++;
        if (grey < lowest)
            lowest = grey;
    }
    for (int g = 1; g < 256; g++)
        cumulative[g] += cumulative[g - 1];
    uint64_t below = cumulative[lowest]; /* the darkest level present maps to 0 */
    uint64_t span = count > below ? count - below : 1;
    float value[256];
    for (int g = 0; g < 256; g++) {
        uint64_t rank = cumulative[g] > below ? cumulative[g] - below : 0;
        uint64_t level = (rank * 510 + span) / (2 * span); /* 255 * rank / span, halves up */
        value[g] = (float)(level > 255 ? 255 : level) * scale + offset;
    }
    for (size_t i = 0; i < count; i++)
        tensor[i] = value[(uint8_t)tensor[i]];
}

/* The resized levels (in [0, 255]) rounded to 8 bits, equalised by CLAHE, in network units. */
static enum cxr_status clahe_tensor(float *tensor, const struct cxr_tensor_format *format,
                                    struct cxr_err *err)
{
    size_t count = (size_t)format->width * format->height;
    uint8_t *levels = malloc(count);
    if (levels == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for CLAHE");
    for (size_t i = 0; i < count; i++)
        levels[i] = rounded_level(tensor[i]);
    enum cxr_status status = cxr_image_clahe(levels, format->width, format->height,
                                             format->clahe_tiles, format->clahe_clip, err);
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
    struct cxr_image_resampler *resampler = NULL;
    enum cxr_status status = cxr_image_resampler_create(
            image->width, image->height, 1, format->width, format->height, &resampler, err);
    if (status != CXR_OK)
        return status;
    /* equalisation works on grey levels: scale and offset come after it */
    bool levels_first = format->equalize != CXR_EQUALIZE_NONE;
    struct tensor_target target = {tensor, format->width, levels_first ? 1.0f : format->scale,
                                   levels_first ? 0.0f : format->offset};
    cxr_image_resampler_run_u8(resampler, image->pixels, store_row, &target);
    cxr_image_resampler_destroy(resampler);
    if (format->equalize == CXR_EQUALIZE_HISTOGRAM)
        equalize(tensor, (size_t)format->width * format->height, format->scale, format->offset);
    else if (format->equalize == CXR_EQUALIZE_CLAHE)
        status = clahe_tensor(tensor, format, err);
    return status;
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
