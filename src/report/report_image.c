/* Images for the PDF page: an area-averaging shrink of the grey source or the RGB heatmap to
 * about 300 dpi at the printed size, embedded as JPEG (libjpeg-turbo) so that writing the PDF
 * stays fast and the file small; the diagnostic image is the DICOM, not the report. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "report/report_pdf_internal.h"

/* First source index of output cell i when n_in pixels shrink to n_out (n_out <= n_in). */
static uint32_t cell_start(uint32_t i, uint32_t n_in, uint32_t n_out)
{
    return (uint32_t)(((uint64_t)i * n_in) / n_out);
}

/* Box-filter shrink: each output pixel is the mean of the source cells it covers (rounded).
 * Rows are summed first (one pass over the source), then cells within the summed row; the cell
 * bounds and reciprocal widths along x are computed once (a division per value was the cost). */
static void shrink(const uint8_t *pixels, uint32_t channels, uint32_t width, uint32_t height,
                   uint32_t out_width, uint32_t out_height, uint32_t *row_sum,
                   uint32_t *column_start, float *column_scale, uint8_t *out)
{
    size_t row_values = (size_t)width * channels;
    for (uint32_t x = 0; x <= out_width; x++)
        column_start[x] = cell_start(x, width, out_width);
    for (uint32_t x = 0; x < out_width; x++) {
        if (column_start[x + 1] <= column_start[x]) /* cannot happen when shrinking; be safe */
            column_start[x + 1] = column_start[x] + 1;
        column_scale[x] = 1.0f / (float)(column_start[x + 1] - column_start[x]);
    }
    for (uint32_t y = 0; y < out_height; y++) {
        uint32_t y0 = cell_start(y, height, out_height);
        uint32_t y1 = cell_start(y + 1, height, out_height);
        y1 = y1 > y0 ? y1 : y0 + 1;
        float row_scale = 1.0f / (float)(y1 - y0);
        memset(row_sum, 0, row_values * sizeof(*row_sum));
        for (uint32_t sy = y0; sy < y1; sy++) {
            const uint8_t *row = pixels + sy * row_values;
            for (size_t i = 0; i < row_values; i++)
                row_sum[i] += row[i];
        }
        uint8_t *dest = out + (size_t)y * out_width * channels;
        for (uint32_t x = 0; x < out_width; x++) {
            float scale = column_scale[x] * row_scale;
            for (uint32_t c = 0; c < channels; c++) {
                uint32_t sum = 0;
                for (uint32_t sx = column_start[x]; sx < column_start[x + 1]; sx++)
                    sum += row_sum[sx * channels + c];
                float mean = (float)sum * scale + 0.5f;
                *dest++ = mean >= 255.0f ? 255 : (uint8_t)mean;
            }
        }
    }
}

struct jpeg_failure {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void jpeg_fail(j_common_ptr codec)
{
    struct jpeg_failure *failure = (struct jpeg_failure *)(void *)codec->err;
    codec->err->format_message(codec, failure->message);
    longjmp(failure->jump, 1);
}

/* JPEG of the shrunk image (quality 92, 4:4:4 so the heatmap colours keep their edges). */
static enum cxr_status encode_jpeg(const uint8_t *image, uint32_t channels, uint32_t width,
                                   uint32_t height, unsigned char **jpeg, unsigned long *size,
                                   struct cxr_err *err)
{
    struct jpeg_compress_struct codec;
    struct jpeg_failure failure;
    unsigned char *volatile data = NULL;
    unsigned long data_size = 0;
    codec.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = jpeg_fail;
    if (setjmp(failure.jump)) {
        jpeg_destroy_compress(&codec);
        free(data);
        return cxr_err_set(err, CXR_ERR_INTERNAL, "libjpeg: %s", failure.message);
    }
    jpeg_create_compress(&codec);
    unsigned char *buffer = NULL;
    jpeg_mem_dest(&codec, &buffer, &data_size);
    data = buffer;
    codec.image_width = width;
    codec.image_height = height;
    codec.input_components = (int)channels;
    codec.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&codec);
    jpeg_set_quality(&codec, 92, TRUE);
    for (int i = 0; i < codec.num_components; i++) {
        codec.comp_info[i].h_samp_factor = 1;
        codec.comp_info[i].v_samp_factor = 1;
    }
    jpeg_start_compress(&codec, TRUE);
    while (codec.next_scanline < codec.image_height) {
        JSAMPROW row = (JSAMPROW)(image + (size_t)codec.next_scanline * width * channels);
        jpeg_write_scanlines(&codec, &row, 1);
    }
    jpeg_finish_compress(&codec);
    data = buffer; /* jpeg_mem_dest may have grown (moved) the buffer */
    jpeg_destroy_compress(&codec);
    *jpeg = data;
    *size = data_size;
    return CXR_OK;
}

enum cxr_status cxr_report_surface_from_pixels(const uint8_t *pixels, uint32_t channels,
                                               uint32_t width, uint32_t height, uint32_t max_side,
                                               cairo_surface_t **surface, struct cxr_err *err)
{
    if (pixels == NULL || width == 0 || height == 0 || (channels != 1 && channels != 3) ||
        max_side == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "report: empty image");
    uint32_t out_width = width, out_height = height;
    uint32_t longest = width > height ? width : height;
    if (longest > max_side) {
        out_width = (uint32_t)(((uint64_t)width * max_side + longest / 2) / longest);
        out_height = (uint32_t)(((uint64_t)height * max_side + longest / 2) / longest);
        out_width = out_width ? out_width : 1;
        out_height = out_height ? out_height : 1;
    }
    if (out_width > 32767 || out_height > 32767 || (size_t)width * channels > SIZE_MAX / 4)
        return cxr_err_set(err, CXR_ERR_LIMIT, "report: image of %ux%u is too large", width,
                           height);
    /* Sums of up to 2^24 source rows of 255 fit in 32 bits; larger shrink ratios cannot occur
     * under any sane image limit, but check rather than assume. */
    if (height / out_height + 1 > (UINT32_MAX / 255) / (width / out_width + 1))
        return cxr_err_set(err, CXR_ERR_LIMIT, "report: image of %ux%u is too large", width,
                           height);

    size_t out_values = (size_t)out_width * out_height * channels;
    uint32_t *row_sum = malloc((size_t)width * channels * sizeof(*row_sum));
    uint32_t *column_start = malloc(((size_t)out_width + 1) * sizeof(*column_start));
    float *column_scale = malloc((size_t)out_width * sizeof(*column_scale));
    uint8_t *small = malloc(out_values);
    if (!row_sum || !column_start || !column_scale || !small) {
        free(row_sum);
        free(column_start);
        free(column_scale);
        free(small);
        return cxr_err_set(err, CXR_ERR_NOMEM, "report: out of memory shrinking the image");
    }
    shrink(pixels, channels, width, height, out_width, out_height, row_sum, column_start,
           column_scale, small);
    free(row_sum);
    free(column_start);
    free(column_scale);

    unsigned char *jpeg = NULL;
    unsigned long jpeg_size = 0;
    enum cxr_status status =
            encode_jpeg(small, channels, out_width, out_height, &jpeg, &jpeg_size, err);
    if (status != CXR_OK) {
        free(small);
        return status;
    }
    cairo_surface_t *image =
            cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)out_width, (int)out_height);
    if (cairo_surface_status(image) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(image);
        free(small);
        free(jpeg);
        return cxr_err_set(err, CXR_ERR_NOMEM, "cairo: cannot create a %ux%u image", out_width,
                           out_height);
    }
    /* The pixels too, for any backend that cannot use the JPEG directly. */
    cairo_surface_flush(image);
    unsigned char *data = cairo_image_surface_get_data(image);
    size_t stride = (size_t)cairo_image_surface_get_stride(image);
    for (uint32_t y = 0; y < out_height; y++) {
        uint32_t *out = (uint32_t *)(void *)(data + y * stride);
        const uint8_t *in = small + (size_t)y * out_width * channels;
        for (uint32_t x = 0; x < out_width; x++) {
            const uint8_t *p = in + (size_t)x * channels;
            out[x] = channels == 1 ? (uint32_t)p[0] * 0x010101u
                                   : ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
        }
    }
    cairo_surface_mark_dirty(image);
    free(small);
    /* cairo owns the JPEG from here and frees it with the surface. */
    if (cairo_surface_set_mime_data(image, CAIRO_MIME_TYPE_JPEG, jpeg, jpeg_size, free, jpeg) !=
        CAIRO_STATUS_SUCCESS) {
        free(jpeg);
        cairo_surface_destroy(image);
        return cxr_err_set(err, CXR_ERR_NOMEM, "cairo: cannot attach the JPEG data");
    }
    *surface = image;
    return CXR_OK;
}
