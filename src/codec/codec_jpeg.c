/* JPEG streams: reading the frame header (to route a fragment to the right decoder whatever
 * the transfer syntax claims) and decoding 8-bit DCT JPEG through libjpeg-turbo. libjpeg
 * reports errors through a longjmp, which is confined to this file. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
/* after jpeglib.h, which it needs */
#include <jerror.h>

#include "codec/codec.h"
#include "codec/codec_internal.h"

enum cxr_status cxr_codec_jpeg_info_read(const uint8_t *data, size_t size,
                                         struct cxr_codec_jpeg_info *info, struct cxr_err *err)
{
    if (size < 4 || data[0] != 0xFF || data[1] != 0xD8)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "JPEG: no SOI marker");
    size_t pos = 2;
    while (pos + 4 <= size) {
        if (data[pos] != 0xFF) {
            pos++;
            continue;
        }
        uint32_t marker = data[pos + 1];
        if (marker == 0xFF || marker == 0x00 || (marker >= 0xD0 && marker <= 0xD8)) {
            pos++;
            continue;
        }
        if (marker == 0xD9 || marker == 0xDA)
            break;
        size_t length = (size_t)data[pos + 2] << 8 | data[pos + 3];
        if (length < 2 || length > size - pos - 2)
            break;
        bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
                   marker != 0xCC;
        if (sof) {
            if (length < 8)
                break;
            const uint8_t *p = data + pos + 4;
            info->precision = p[0];
            info->height = (uint32_t)p[1] << 8 | p[2];
            info->width = (uint32_t)p[3] << 8 | p[4];
            info->components = p[5];
            info->sof_marker = 0xFF00 | marker;
            return CXR_OK;
        }
        pos += 2 + length;
    }
    return cxr_err_set(err, CXR_ERR_MALFORMED, "JPEG: no frame header");
}

struct error_manager {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void on_error(j_common_ptr cinfo)
{
    struct error_manager *manager = (struct error_manager *)cinfo->err;
    manager->base.format_message(cinfo, manager->message);
    longjmp(manager->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level)
{
    /* Data that ends early is fatal: a damaged image must not be shown as if it were whole.
     * Other warnings (extraneous bytes before a marker, common in DICOM padding) and trace
     * messages are ignored, as DCMTK does. */
    int code = cinfo->err->msg_code;
    if (level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER)) {
        struct error_manager *manager = (struct error_manager *)cinfo->err;
        manager->base.format_message(cinfo, manager->message);
        longjmp(manager->jump, 1);
    }
}

/* The decompressor lives in a struct handed to the setjmp frame so nothing the longjmp skips
 * over needs to be volatile. */
struct decode_job {
    struct jpeg_decompress_struct cinfo;
    struct error_manager errors;
    JSAMPLE *row;
};

enum cxr_status cxr_codec_jpeg_dct_decode(const uint8_t *data, size_t size, uint32_t width,
                                          uint32_t height, uint32_t components, bool convert_ybr,
                                          int32_t *samples, struct cxr_err *err)
{
    if (size > (unsigned long)-1)
        return cxr_err_set(err, CXR_ERR_LIMIT, "libjpeg: fragment too large");
    struct decode_job job;
    memset(&job, 0, sizeof(job));
    job.cinfo.err = jpeg_std_error(&job.errors.base);
    job.errors.base.error_exit = on_error;
    job.errors.base.emit_message = on_message;
    if (setjmp(job.errors.jump)) {
        jpeg_destroy_decompress(&job.cinfo);
        return cxr_err_set(err, CXR_ERR_MALFORMED, "libjpeg: %s", job.errors.message);
    }
    jpeg_create_decompress(&job.cinfo);
    jpeg_mem_src(&job.cinfo, data, (unsigned long)size);
    jpeg_read_header(&job.cinfo, TRUE);
    if (job.cinfo.image_width != width || job.cinfo.image_height != height ||
        (uint32_t)job.cinfo.num_components != components) {
        uint32_t got_width = job.cinfo.image_width;
        uint32_t got_height = job.cinfo.image_height;
        uint32_t got_components = (uint32_t)job.cinfo.num_components;
        jpeg_destroy_decompress(&job.cinfo);
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "libjpeg: image is %ux%u with %u components, the DICOM header says "
                           "%ux%u with %u",
                           got_width, got_height, got_components, width, height, components);
    }
    if (components == 3) {
        job.cinfo.jpeg_color_space = convert_ybr ? JCS_YCbCr : JCS_RGB;
        job.cinfo.out_color_space = JCS_RGB;
    } else if (components == 1) {
        job.cinfo.out_color_space = JCS_GRAYSCALE;
    } else {
        jpeg_destroy_decompress(&job.cinfo);
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "libjpeg: %u components", components);
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
