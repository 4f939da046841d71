/* Images for the PDF page: an area-averaging shrink of the grey source or the RGB heatmap to
 * about 300 dpi at the printed size, embedded as JPEG (libjpeg-turbo) so that writing the PDF
 * stays fast and the file small; the diagnostic image is the DICOM, not the report. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "report/report_pdf_internal.h"

struct byte_sink {
    uint8_t *out;
    size_t row_values;
};

static void byte_row(void *context, uint32_t y, const float *row)
{
    struct byte_sink *sink = context;
    cxr_report_bytes_from_floats(row, sink->row_values, 1.0f,
                                 sink->out + (size_t)y * sink->row_values);
}

/* Box-filter shrink by an integer factor with image/'s resampler: each output pixel is the
 * rounded mean of a factor x factor cell (cells on the right and bottom edges may be smaller).
 * An integer factor keeps every cell the same size; the printed size is set by the page. */
static enum cxr_status shrink(const uint8_t *pixels, uint32_t channels, uint32_t width,
                              uint32_t height, uint32_t factor, uint32_t out_width,
                              uint32_t out_height, uint8_t *out, struct cxr_err *err)
{
    struct cxr_image_resampler *resampler = NULL;
    enum cxr_status status = cxr_image_resampler_create_extent(
            width, height, channels, out_width, out_height, (double)out_width * factor,
            (double)out_height * factor, &resampler, err);
    if (status != CXR_OK)
        return status;
    struct byte_sink sink = {out, (size_t)out_width * channels};
    cxr_image_resampler_run_u8(resampler, pixels, byte_row, &sink);
    cxr_image_resampler_destroy(resampler);
    return CXR_OK;
}

enum cxr_status cxr_report_gray_shrink(const struct cxr_gray8 *source, uint32_t max_side,
                                       struct cxr_gray8 *out, struct cxr_err *err)
{
    if (source == NULL || source->pixels == NULL || source->width == 0 || source->height == 0 ||
        max_side == 0 || out == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "report: empty image");
    uint32_t longest = source->width > source->height ? source->width : source->height;
    uint32_t factor = longest / max_side + (longest % max_side != 0); /* ceil, >= 1 */
    uint32_t width = source->width / factor + (source->width % factor != 0);
    uint32_t height = source->height / factor + (source->height % factor != 0);
    uint8_t *pixels = malloc((size_t)width * height);
    if (pixels == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "report: out of memory shrinking the image");
    enum cxr_status status = shrink(source->pixels, 1, source->width, source->height, factor, width,
                                    height, pixels, err);
    if (status != CXR_OK) {
        free(pixels);
        return status;
    }
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

    size_t out_values = (size_t)out_width * out_height * channels;
    uint8_t *small = malloc(out_values);
    if (small == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "report: out of memory shrinking the image");
    enum cxr_status status =
            shrink(pixels, channels, width, height, factor, out_width, out_height, small, err);
    if (status != CXR_OK) {
        free(small);
        return status;
    }

    unsigned char *jpeg = NULL;
    unsigned long jpeg_size = 0;
    status = encode_jpeg(small, channels, out_width, out_height, &jpeg, &jpeg_size, err);
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
