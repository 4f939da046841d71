/* Images for the PDF page: an area-averaging shrink of the grey source or the RGB heatmap to
 * about 300 dpi at the printed size, embedded as JPEG (libjpeg-turbo) so that writing the PDF
 * stays fast and the file small; the diagnostic image is the DICOM, not the report. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "report/report_pdf_internal.h"

/* Box-filter shrink by an integer factor: each output pixel is the rounded mean of a factor x
 * factor cell (cells on the right and bottom edges may be smaller). An integer factor keeps the
 * inner loops simple and fast; the printed size is set by the page, not by the pixel count.
 * Rows of a cell are summed first (one pass over the source), then cells within the sum. */
static void shrink(const uint8_t *pixels, uint32_t channels, uint32_t width, uint32_t height,
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

enum cxr_status cxr_report_gray_shrink(const struct cxr_gray8 *source, uint32_t max_side,
                                       struct cxr_gray8 *out, struct cxr_err *err)
{
    if (source == NULL || source->pixels == NULL || source->width == 0 || source->height == 0 ||
        max_side == 0 || out == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "report: empty image");
    uint32_t longest = source->width > source->height ? source->width : source->height;
    uint32_t factor = longest / max_side + (longest % max_side != 0); /* ceil, >= 1 */
    if (factor > 4096) /* sums of factor^2 values of 255 must fit in 32 bits */
        return cxr_err_set(err, CXR_ERR_LIMIT, "report: image of %ux%u is too large", source->width,
                           source->height);
    uint32_t width = source->width / factor + (source->width % factor != 0);
    uint32_t height = source->height / factor + (source->height % factor != 0);
    uint32_t *row_sum = malloc((size_t)source->width * sizeof(*row_sum));
    uint8_t *pixels = malloc((size_t)width * height);
    if (!row_sum || !pixels) {
        free(row_sum);
        free(pixels);
        return cxr_err_set(err, CXR_ERR_NOMEM, "report: out of memory shrinking the image");
    }
    shrink(source->pixels, 1, source->width, source->height, factor, width, height, row_sum,
           pixels);
    free(row_sum);
    *out = (struct cxr_gray8){width, height, pixels};
    return CXR_OK;
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
    uint32_t longest = width > height ? width : height;
    uint32_t factor = longest / max_side + (longest % max_side != 0); /* ceil, >= 1 */
    uint32_t out_width = width / factor + (width % factor != 0);
    uint32_t out_height = height / factor + (height % factor != 0);
    if (out_width > 32767 || out_height > 32767 || (size_t)width * channels > SIZE_MAX / 4)
        return cxr_err_set(err, CXR_ERR_LIMIT, "report: image of %ux%u is too large", width,
                           height);
    /* Sums of factor^2 values of 255 must fit in 32 bits. */
    if (factor > 4096)
        return cxr_err_set(err, CXR_ERR_LIMIT, "report: image of %ux%u is too large", width,
                           height);

    size_t out_values = (size_t)out_width * out_height * channels;
    uint32_t *row_sum = malloc((size_t)width * channels * sizeof(*row_sum));
    uint8_t *small = malloc(out_values);
    if (!row_sum || !small) {
        free(row_sum);
        free(small);
        return cxr_err_set(err, CXR_ERR_NOMEM, "report: out of memory shrinking the image");
    }
    shrink(pixels, channels, width, height, factor, out_width, out_height, row_sum, small);
    free(row_sum);

    unsigned char *jpeg = NULL;
    unsigned long jpeg_size = 0;
    enum cxr_status status =
            encode_jpeg(small, channels, out_width, out_height, &jpeg, &jpeg_size, err);
    free(small);
    if (status != CXR_OK)
        return status;
    cairo_surface_t *image = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    if (cairo_surface_status(image) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(image);
        free(jpeg);
        return cxr_err_set(err, CXR_ERR_NOMEM, "cairo: cannot create an image surface");
    }
    /* The surface is a 1 x 1 placeholder that only carries the JPEG: cairo's PDF surface embeds
     * the JPEG data as the image (the page draws it scaled to its printed size) and never reads
     * the pixels. A full-size surface would cost more than the rest of the page: the PDF
     * surface records the page with a copy-on-write snapshot of each source, and freeing the
     * source copies it. The test extracts the embedded images with pdfimages and compares them
     * with the inputs, which would catch cairo ever falling back to the placeholder. cairo owns the
     * JPEG from here and frees it with the surface. */
    if (cairo_surface_set_mime_data(image, CAIRO_MIME_TYPE_JPEG, jpeg, jpeg_size, free, jpeg) !=
        CAIRO_STATUS_SUCCESS) {
        free(jpeg);
        cairo_surface_destroy(image);
        return cxr_err_set(err, CXR_ERR_NOMEM, "cairo: cannot attach the JPEG data");
    }
    *surface = image;
    return CXR_OK;
}
