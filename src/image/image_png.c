/* PNG encoding for large radiographs. The presets filter the rows here, deflate the whole
 * filtered image in one call (fast: ISA-L's igzip, or libdeflate where ISA-L is not built;
 * small: libdeflate) and write the PNG chunks themselves (signature, IHDR, one IDAT, IEND); the
 * zlib path streams through libspng. Measurements behind the presets: docs/png.md. Also the image
 * release functions. */
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <spng.h>
#include <zlib.h>
#if CXR_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

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

struct cxr_image_png_options cxr_image_png_options_preset(enum cxr_image_png_compression mode)
{
    if (mode == CXR_IMAGE_PNG_SMALL)
        return (struct cxr_image_png_options){CXR_IMAGE_PNG_LIBDEFLATE, CXR_IMAGE_PNG_FILTER_SUB, 4,
                                              Z_DEFAULT_STRATEGY};
#if CXR_HAVE_ISAL
    return (struct cxr_image_png_options){CXR_IMAGE_PNG_ISAL, CXR_IMAGE_PNG_FILTER_SUB, 1,
                                          Z_DEFAULT_STRATEGY};
#else
    return (struct cxr_image_png_options){CXR_IMAGE_PNG_LIBDEFLATE, CXR_IMAGE_PNG_FILTER_SUB, 1,
                                          Z_DEFAULT_STRATEGY};
#endif
}

/* ---- zlib through libspng ---- */

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

static int spng_filter_choice(enum cxr_image_png_filter filter)
{
    switch (filter) {
    case CXR_IMAGE_PNG_FILTER_NONE:
        return SPNG_FILTER_CHOICE_NONE;
    case CXR_IMAGE_PNG_FILTER_SUB:
        return SPNG_FILTER_CHOICE_SUB;
    case CXR_IMAGE_PNG_FILTER_UP:
        return SPNG_FILTER_CHOICE_UP;
    case CXR_IMAGE_PNG_FILTER_PAETH:
        return SPNG_FILTER_CHOICE_PAETH;
    case CXR_IMAGE_PNG_FILTER_ADAPTIVE:
        return SPNG_FILTER_CHOICE_ALL;
    }
    return SPNG_FILTER_CHOICE_SUB;
}

static enum cxr_status encode_spng(const uint8_t *pixels, uint32_t width, uint32_t height,
                                   uint32_t channels, const struct cxr_image_png_options *options,
                                   struct cxr_buf *out, struct cxr_err *err)
{
    size_t image_size = (size_t)width * height * channels;
    size_t original_length = out->len;
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (ctx == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "libspng: cannot create an encoder");
    struct sink sink = {out, CXR_OK};
    struct spng_ihdr header = {
            .width = width,
            .height = height,
            .bit_depth = 8,
            .color_type = channels == 3 ? SPNG_COLOR_TYPE_TRUECOLOR : SPNG_COLOR_TYPE_GRAYSCALE,
    };
    int code = spng_set_png_stream(ctx, write_to_buffer, &sink);
    if (code == 0)
        code = spng_set_ihdr(ctx, &header);
    if (code == 0)
        code = spng_set_option(ctx, SPNG_FILTER_CHOICE, spng_filter_choice(options->filter));
    if (code == 0)
        code = spng_set_option(ctx, SPNG_IMG_COMPRESSION_LEVEL, options->level);
    if (code == 0)
        code = spng_set_option(ctx, SPNG_IMG_COMPRESSION_STRATEGY, options->zlib_strategy);
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

/* ---- libdeflate, PNG chunks written here ---- */

static uint8_t paeth_predict(uint8_t left, uint8_t up, uint8_t up_left)
{
    int estimate = left + up - up_left;
    int distance_left = abs(estimate - left);
    int distance_up = abs(estimate - up);
    int distance_up_left = abs(estimate - up_left);
    if (distance_left <= distance_up && distance_left <= distance_up_left)
        return left;
    return distance_up <= distance_up_left ? up : up_left;
}

/* Writes filter type byte + filtered row to out (row_bytes + 1 bytes). previous is NULL for the
 * first row (a row of zeros, PNG's rule). */
static void filter_row(uint8_t type, const uint8_t *restrict row, const uint8_t *restrict previous,
                       size_t row_bytes, size_t bytes_per_pixel, uint8_t *restrict out)
{
    /* restrict: out never overlaps the image, which lets the compiler vectorise SUB and UP. */
    out[0] = type;
    uint8_t *restrict filtered = out + 1;
    switch (type) {
    case CXR_IMAGE_PNG_FILTER_SUB:
        memcpy(filtered, row, bytes_per_pixel < row_bytes ? bytes_per_pixel : row_bytes);
        for (size_t i = bytes_per_pixel; i < row_bytes; i++)
            filtered[i] = (uint8_t)(row[i] - row[i - bytes_per_pixel]);
        break;
    case CXR_IMAGE_PNG_FILTER_UP:
        if (previous == NULL) {
            memcpy(filtered, row, row_bytes);
            break;
        }
        for (size_t i = 0; i < row_bytes; i++)
            filtered[i] = (uint8_t)(row[i] - previous[i]);
        break;
    case CXR_IMAGE_PNG_FILTER_PAETH:
        for (size_t i = 0; i < row_bytes; i++) {
            uint8_t left = i >= bytes_per_pixel ? row[i - bytes_per_pixel] : 0;
            uint8_t up = previous ? previous[i] : 0;
            uint8_t up_left = previous && i >= bytes_per_pixel ? previous[i - bytes_per_pixel] : 0;
            filtered[i] = (uint8_t)(row[i] - paeth_predict(left, up, up_left));
        }
        break;
    default:
        memcpy(filtered, row, row_bytes);
        break;
    }
}

/* Sum of the filtered bytes taken as signed values: libpng's "minimum sum of absolute
 * differences" heuristic for choosing a row's filter. */
static uint64_t filtered_cost(const uint8_t *filtered, size_t row_bytes)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < row_bytes; i++)
        sum += (uint64_t)abs((int)(int8_t)filtered[i]);
    return sum;
}

static void filter_image(const uint8_t *pixels, uint32_t height, size_t row_bytes,
                         size_t bytes_per_pixel, enum cxr_image_png_filter filter, uint8_t *out,
                         uint8_t *scratch)
{
    static const uint8_t adaptive_types[] = {CXR_IMAGE_PNG_FILTER_NONE, CXR_IMAGE_PNG_FILTER_SUB,
                                             CXR_IMAGE_PNG_FILTER_UP, CXR_IMAGE_PNG_FILTER_PAETH};
    for (uint32_t y = 0; y < height; y++) {
        const uint8_t *row = pixels + (size_t)y * row_bytes;
        const uint8_t *previous = y ? row - row_bytes : NULL;
        uint8_t *target = out + (size_t)y * (row_bytes + 1);
        if (filter != CXR_IMAGE_PNG_FILTER_ADAPTIVE) {
            filter_row((uint8_t)filter, row, previous, row_bytes, bytes_per_pixel, target);
            continue;
        }
        uint64_t best = UINT64_MAX;
        for (size_t t = 0; t < sizeof adaptive_types; t++) {
            filter_row(adaptive_types[t], row, previous, row_bytes, bytes_per_pixel, scratch);
            uint64_t cost = filtered_cost(scratch + 1, row_bytes);
            if (cost < best) {
                best = cost;
                memcpy(target, scratch, row_bytes + 1);
            }
        }
    }
}

static void put_u32(uint8_t *at, uint32_t value)
{
    at[0] = (uint8_t)(value >> 24);
    at[1] = (uint8_t)(value >> 16);
    at[2] = (uint8_t)(value >> 8);
    at[3] = (uint8_t)value;
}

/* Appends one chunk: length, type, data, CRC-32 of type and data. */
static enum cxr_status append_chunk(struct cxr_buf *out, const char type[4], const uint8_t *data,
                                    size_t length)
{
    uint8_t head[8], tail[4];
    put_u32(head, (uint32_t)length);
    memcpy(head + 4, type, 4);
    uint32_t crc = libdeflate_crc32(0, head + 4, 4);
    crc = libdeflate_crc32(crc, data, length);
    put_u32(tail, crc);
    enum cxr_status status = cxr_buf_reserve_exact(out, sizeof head + length + sizeof tail);
    if (status == CXR_OK)
        status = cxr_buf_append(out, head, sizeof head);
    if (status == CXR_OK && length)
        status = cxr_buf_append(out, data, length);
    if (status == CXR_OK)
        status = cxr_buf_append(out, tail, sizeof tail);
    return status;
}

/* zlib stream of in by libdeflate at level (1-12) into a new buffer. */
static enum cxr_status compress_libdeflate(const uint8_t *in, size_t size, int level, uint8_t **out,
                                           size_t *out_size, struct cxr_err *err)
{
    struct libdeflate_compressor *compressor = libdeflate_alloc_compressor(level < 1    ? 1
                                                                           : level > 12 ? 12
                                                                                        : level);
    if (compressor == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "libdeflate: cannot create a compressor");
    size_t bound = libdeflate_zlib_compress_bound(compressor, size);
    enum cxr_status status = CXR_OK;
    *out = malloc(bound);
    if (*out == NULL)
        status = cxr_err_set(err, CXR_ERR_NOMEM, "PNG: out of memory for the compressed image");
    else if ((*out_size = libdeflate_zlib_compress(compressor, in, size, *out, bound)) == 0)
        status = cxr_err_set(err, CXR_ERR_INTERNAL, "libdeflate: compression failed");
    libdeflate_free_compressor(compressor);
    return status;
}

#if CXR_HAVE_ISAL
/* zlib stream of in by ISA-L's igzip at level (0-3) in one stateless call into a new buffer. */
static enum cxr_status compress_isal(const uint8_t *in, size_t size, int level, uint8_t **out,
                                     size_t *out_size, struct cxr_err *err)
{
    static const uint32_t level_buf_sizes[] = {ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_DEFAULT,
                                               ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT};
    level = level < 0 ? 0 : level > 3 ? 3 : level;
    /* Stored blocks are the worst case: 5 bytes per 64 KiB block, plus header and trailer. */
    size_t bound = size + size / 16 + 1024;
    if (bound > UINT32_MAX)
        return cxr_err_set(err, CXR_ERR_LIMIT, "PNG: %zu bytes are too many for igzip", size);
    struct isal_zstream stream;
    isal_deflate_stateless_init(&stream);
    uint8_t *level_buf = level_buf_sizes[level] ? malloc(level_buf_sizes[level]) : NULL;
    *out = malloc(bound);
    if (*out == NULL || (level_buf_sizes[level] && level_buf == NULL)) {
        free(level_buf);
        return cxr_err_set(err, CXR_ERR_NOMEM, "PNG: out of memory for the compressed image");
    }
    stream.level = (uint32_t)level;
    stream.level_buf = level_buf;
    stream.level_buf_size = level_buf_sizes[level];
    stream.gzip_flag = IGZIP_ZLIB;
    stream.end_of_stream = 1;
    stream.next_in = (uint8_t *)(uintptr_t)in; /* igzip does not write its input */
    stream.avail_in = (uint32_t)size;
    stream.next_out = *out;
    stream.avail_out = (uint32_t)bound;
    int code = isal_deflate_stateless(&stream);
    free(level_buf);
    if (code != COMP_OK)
        return cxr_err_set(err, CXR_ERR_INTERNAL, "igzip: compression failed (%d)", code);
    *out_size = stream.total_out;
    return CXR_OK;
}
#else
static enum cxr_status compress_isal(const uint8_t *in, size_t size, int level, uint8_t **out,
                                     size_t *out_size, struct cxr_err *err)
{
    (void)in, (void)size, (void)level, (void)out, (void)out_size;
    return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "PNG: built without ISA-L");
}
#endif

/* Filters the rows here, deflates the whole filtered image in one call and writes the chunks. */
static enum cxr_status encode_whole(const uint8_t *pixels, uint32_t width, uint32_t height,
                                    uint32_t channels, const struct cxr_image_png_options *options,
                                    struct cxr_buf *out, struct cxr_err *err)
{
    size_t row_bytes = (size_t)width * channels;
    if (row_bytes + 1 > SIZE_MAX / height)
        return cxr_err_set(err, CXR_ERR_LIMIT, "PNG: image of %ux%u is too large", width, height);
    size_t filtered_size = (row_bytes + 1) * height;
    uint8_t *filtered = malloc(filtered_size);
    uint8_t *scratch = malloc(row_bytes + 1);
    uint8_t *compressed = NULL;
    size_t compressed_size = 0;
    enum cxr_status status = CXR_OK;
    size_t original_length = out->len;
    if (filtered == NULL || scratch == NULL) {
        status = cxr_err_set(err, CXR_ERR_NOMEM, "PNG: out of memory for %ux%u", width, height);
        goto done;
    }
    filter_image(pixels, height, row_bytes, channels, options->filter, filtered, scratch);
    if (options->deflater == CXR_IMAGE_PNG_ISAL)
        status = compress_isal(filtered, filtered_size, options->level, &compressed,
                               &compressed_size, err);
    else
        status = compress_libdeflate(filtered, filtered_size, options->level, &compressed,
                                     &compressed_size, err);
    if (status != CXR_OK)
        goto done;
    if (compressed_size > INT32_MAX) { /* a chunk's length is at most 2^31 - 1 */
        status = cxr_err_set(err, CXR_ERR_LIMIT, "PNG: %zu compressed bytes do not fit a chunk",
                             compressed_size);
        goto done;
    }
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t header[13];
    put_u32(header, width);
    put_u32(header + 4, height);
    header[8] = 8;                     /* bit depth */
    header[9] = channels == 3 ? 2 : 0; /* truecolour or greyscale */
    header[10] = 0;                    /* deflate */
    header[11] = 0;                    /* adaptive filtering (per-row filter bytes) */
    header[12] = 0;                    /* not interlaced */
    status = cxr_buf_append(out, signature, sizeof signature);
    if (status == CXR_OK)
        status = append_chunk(out, "IHDR", header, sizeof header);
    if (status == CXR_OK)
        status = append_chunk(out, "IDAT", compressed, compressed_size);
    if (status == CXR_OK)
        status = append_chunk(out, "IEND", NULL, 0);
    if (status != CXR_OK) {
        out->len = original_length; /* nothing partial is left appended */
        status = cxr_err_set(err, status, "PNG: output buffer refused %s",
                             status == CXR_ERR_LIMIT ? "(limit)" : "(out of memory)");
    }
done:
    free(compressed);
    free(scratch);
    free(filtered);
    return status;
}

enum cxr_status cxr_image_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height,
                                     uint32_t channels, const struct cxr_image_png_options *options,
                                     struct cxr_buf *out, struct cxr_err *err)
{
    if (pixels == NULL || out == NULL || options == NULL || width == 0 || height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "PNG: empty image");
    if (channels != 1 && channels != 3)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "PNG: %u channels", channels);
    if (width > (uint32_t)INT32_MAX || height > (uint32_t)INT32_MAX ||
        (size_t)width > SIZE_MAX / channels / height)
        return cxr_err_set(err, CXR_ERR_LIMIT, "PNG: image of %ux%u is too large", width, height);
    if (options->deflater == CXR_IMAGE_PNG_ZLIB)
        return encode_spng(pixels, width, height, channels, options, out, err);
    return encode_whole(pixels, width, height, channels, options, out, err);
}

enum cxr_status cxr_image_png_encode_gray8(const struct cxr_gray8 *image,
                                           enum cxr_image_png_compression mode, struct cxr_buf *out,
                                           struct cxr_err *err)
{
    if (image == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "PNG: no image");
    struct cxr_image_png_options options = cxr_image_png_options_preset(mode);
    return cxr_image_png_encode(image->pixels, image->width, image->height, 1, &options, out, err);
}

enum cxr_status cxr_image_png_encode_rgb8(const struct cxr_rgb8 *image,
                                          enum cxr_image_png_compression mode, struct cxr_buf *out,
                                          struct cxr_err *err)
{
    if (image == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "PNG: no image");
    struct cxr_image_png_options options = cxr_image_png_options_preset(mode);
    return cxr_image_png_encode(image->pixels, image->width, image->height, 3, &options, out, err);
}
