/* The IJG-API decode of one DCT JPEG frame, written once for the two IJG builds cxr links:
 * libjpeg-turbo (8-bit samples, codec_jpeg.c) and GDCM's 12-bit IJG build (codec_jpeg12.c).
 * Their headers declare the same names with different sample types and cannot share a
 * translation unit, so each includes this after its own jpeglib.h and jerror.h and gets its
 * own copy of these static functions. libjpeg reports errors through a longjmp, confined here.
 * Defines ijg_decode(); the includer sets IJG_LIBRARY_NAME (the prefix of its messages). */
#ifndef CXR_CODEC_JPEG_IJG_H
#define CXR_CODEC_JPEG_IJG_H

#include <setjmp.h>
#include <string.h>

#include "codec/codec_internal.h"

struct ijg_error_manager {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void ijg_on_error(j_common_ptr cinfo)
{
    struct ijg_error_manager *manager = (struct ijg_error_manager *)cinfo->err;
    manager->base.format_message(cinfo, manager->message);
    longjmp(manager->jump, 1);
}

static void ijg_on_message(j_common_ptr cinfo, int level)
{
    /* Data that ends early is fatal: a damaged image must not be shown as if it were whole.
     * Other warnings (extraneous bytes before a marker, common in DICOM padding) and trace
     * messages are ignored, as DCMTK does. */
    int code = cinfo->err->msg_code;
    if (level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER)) {
        struct ijg_error_manager *manager = (struct ijg_error_manager *)cinfo->err;
        manager->base.format_message(cinfo, manager->message);
        longjmp(manager->jump, 1);
    }
}

/* A source over bytes in memory (IJG 6b has no jpeg_mem_src). Past the end it supplies an
 * EOI marker with the JWRN_JPEG_EOF warning, which ijg_on_message makes fatal. */
static void ijg_source_init(j_decompress_ptr cinfo)
{
    (void)cinfo;
}

static boolean ijg_source_fill(j_decompress_ptr cinfo)
{
    static const JOCTET end_of_image[2] = {0xFF, 0xD9};
    WARNMS(cinfo, JWRN_JPEG_EOF);
    cinfo->src->next_input_byte = end_of_image;
    cinfo->src->bytes_in_buffer = 2;
    return TRUE;
}

static void ijg_source_skip(j_decompress_ptr cinfo, long count)
{
    struct jpeg_source_mgr *source = cinfo->src;
    if (count <= 0)
        return;
    if ((size_t)count > source->bytes_in_buffer) {
        ijg_source_fill(cinfo);
        return;
    }
    source->next_input_byte += count;
    source->bytes_in_buffer -= (size_t)count;
}

static void ijg_source_term(j_decompress_ptr cinfo)
{
    (void)cinfo;
}

/* The decompressor lives in a struct handed to the setjmp frame so nothing the longjmp skips
 * over needs to be volatile. */
struct ijg_decode_job {
    struct jpeg_decompress_struct cinfo;
    struct ijg_error_manager errors;
    struct jpeg_source_mgr source;
};

static enum cxr_status ijg_decode(const uint8_t *data, size_t size, uint32_t width, uint32_t height,
                                  uint32_t components, bool convert_ybr, int32_t *samples,
                                  struct cxr_err *err)
{
    struct ijg_decode_job job;
    memset(&job, 0, sizeof(job));
    job.cinfo.err = jpeg_std_error(&job.errors.base);
    job.errors.base.error_exit = ijg_on_error;
    job.errors.base.emit_message = ijg_on_message;
    if (setjmp(job.errors.jump)) {
        jpeg_destroy_decompress(&job.cinfo);
        return cxr_err_set(err, CXR_ERR_MALFORMED, IJG_LIBRARY_NAME ": %s", job.errors.message);
    }
    jpeg_create_decompress(&job.cinfo);
    job.source.next_input_byte = data;
    job.source.bytes_in_buffer = size;
    job.source.init_source = ijg_source_init;
    job.source.fill_input_buffer = ijg_source_fill;
    job.source.skip_input_data = ijg_source_skip;
    job.source.resync_to_restart = jpeg_resync_to_restart;
    job.source.term_source = ijg_source_term;
    job.cinfo.src = &job.source;
    jpeg_read_header(&job.cinfo, TRUE);
    if (job.cinfo.image_width != width || job.cinfo.image_height != height ||
        (uint32_t)job.cinfo.num_components != components) {
        uint32_t got_width = job.cinfo.image_width;
        uint32_t got_height = job.cinfo.image_height;
        uint32_t got_components = (uint32_t)job.cinfo.num_components;
        jpeg_destroy_decompress(&job.cinfo);
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           IJG_LIBRARY_NAME ": image is %ux%u with %u components, the DICOM "
                                            "header says %ux%u with %u",
                           got_width, got_height, got_components, width, height, components);
    }
    if (components == 3) {
        job.cinfo.jpeg_color_space = convert_ybr ? JCS_YCbCr : JCS_RGB;
        job.cinfo.out_color_space = JCS_RGB;
    } else if (components == 1) {
        job.cinfo.out_color_space = JCS_GRAYSCALE;
    } else {
        jpeg_destroy_decompress(&job.cinfo);
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, IJG_LIBRARY_NAME ": %u components",
                           components);
    }
    /* Accuracy first: the integer slow DCT is libjpeg's exact reference (and DCMTK's). */
    job.cinfo.dct_method = JDCT_ISLOW;
    job.cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&job.cinfo);
    size_t row_samples = (size_t)width * components;
    JSAMPARRAY rows = job.cinfo.mem->alloc_sarray((j_common_ptr)&job.cinfo, JPOOL_IMAGE,
                                                  (JDIMENSION)row_samples, 1);
    while (job.cinfo.output_scanline < job.cinfo.output_height) {
        JDIMENSION y = job.cinfo.output_scanline;
        jpeg_read_scanlines(&job.cinfo, rows, 1);
        int32_t *out = samples + (size_t)y * row_samples;
        for (size_t i = 0; i < row_samples; i++)
            out[i] = rows[0][i];
    }
    jpeg_finish_decompress(&job.cinfo);
    jpeg_destroy_decompress(&job.cinfo);
    return CXR_OK;
}

#endif
