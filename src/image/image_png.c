/* PNG encoding through libspng, tuned for speed on large radiographs: the SUB filter (cheap
 * and effective on smooth X-ray rows) with zlib level 1 and the Z_RLE strategy, which on
 * filtered radiographs is both the fastest and the smallest of the fast settings (measured:
 * docs/codecs.md). Bytes stream straight into the caller's buffer, which enforces its own
 * maximum. Also the image release functions. */
#include <stdlib.h>
#include <string.h>

#include <spng.h>
#include <zlib.h>

#include "image/image.h"

void cxr_image_gray8_release(struct cxr_gray8 *image)
{
    if (image == NULL)
        return;
    free(image->pixels);
    memset(image, 0, sizeof(*image));
}

void cxr_image_rgb8_release(struct cxr_rgb8 *image)
{
    if (image == NULL)
        return;
    free(image->pixels);
    memset(image, 0, sizeof(*image));
}

struct sink {
    struct cxr_buf *out;
    enum cxr_status status;
};

static int write_to_buffer(spng_ctx *ctx, void *user, void *bytes, size_t length)
{
    (void)ctx;
    struct sink *sink = user;
    enum cxr_status status = cxr_buf_append(sink->out, bytes, length);
    if (status != CXR_OK) {
        sink->status = status;
        return SPNG_IO_ERROR;
    }
    return 0;
}

static enum cxr_status encode(const uint8_t *pixels, uint32_t width, uint32_t height,
                              uint8_t colour_type, size_t bytes_per_pixel, struct cxr_buf *out,
                              struct cxr_err *err)
{
    if (pixels == NULL || out == NULL || width == 0 || height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "libspng: empty image");
    if (width > (uint32_t)INT32_MAX || height > (uint32_t)INT32_MAX ||
        (size_t)width > SIZE_MAX / bytes_per_pixel / height)
        return cxr_err_set(err, CXR_ERR_LIMIT, "libspng: image of %ux%u is too large", width,
                           height);
    size_t image_size = (size_t)width * height * bytes_per_pixel;
    size_t original_length = out->len;
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (ctx == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "libspng: cannot create an encoder");
    struct sink sink = {out, CXR_OK};
    struct spng_ihdr header = {
            .width = width,
            .height = height,
            .bit_depth = 8,
            .color_type = colour_type,
    };
    int code = spng_set_png_stream(ctx, write_to_buffer, &sink);
    if (code == 0)
        code = spng_set_ihdr(ctx, &header);
    if (code == 0)
        code = spng_set_option(ctx, SPNG_FILTER_CHOICE, SPNG_FILTER_CHOICE_SUB);
    if (code == 0)
        code = spng_set_option(ctx, SPNG_IMG_COMPRESSION_LEVEL, 1);
    if (code == 0)
        code = spng_set_option(ctx, SPNG_IMG_COMPRESSION_STRATEGY, Z_RLE);
    if (code == 0)
        code = spng_encode_image(ctx, pixels, image_size, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    spng_ctx_free(ctx);
    if (code != 0) {
        out->len = original_length; /* nothing partial is left appended */
        if (sink.status != CXR_OK)
            return cxr_err_set(err, sink.status, "libspng: output buffer refused %s",
                               sink.status == CXR_ERR_LIMIT ? "(limit)" : "(out of memory)");
        return cxr_err_set(err, CXR_ERR_INTERNAL, "libspng: %s", spng_strerror(code));
    }
    return CXR_OK;
}

enum cxr_status cxr_image_png_encode_gray8(const struct cxr_gray8 *image, struct cxr_buf *out,
                                           struct cxr_err *err)
{
    if (image == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "libspng: no image");
    return encode(image->pixels, image->width, image->height, SPNG_COLOR_TYPE_GRAYSCALE, 1, out,
                  err);
}

enum cxr_status cxr_image_png_encode_rgb8(const struct cxr_rgb8 *image, struct cxr_buf *out,
                                          struct cxr_err *err)
{
    if (image == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "libspng: no image");
    return encode(image->pixels, image->width, image->height, SPNG_COLOR_TYPE_TRUECOLOR, 3, out,
                  err);
}
