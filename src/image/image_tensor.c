/* The rendered image as the network's float tensor: resampled to the input size by the image
 * stage's resampler (image_resample.c), then mapped to the network's value range. */
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
    struct cxr_image_resampler *resampler = NULL;
    enum cxr_status status = cxr_image_resampler_create(image->width, image->height, 1, out_width,
                                                        out_height, &resampler, err);
    if (status != CXR_OK)
        return status;
    struct tensor_target target = {tensor, out_width, scale, offset};
    cxr_image_resampler_run_u8(resampler, image->pixels, store_row, &target);
    cxr_image_resampler_destroy(resampler);
    return CXR_OK;
}
