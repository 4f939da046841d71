/* Test helper for the corpus check: parses a DICOM file, decodes frame 1 and writes its
 * stored values (int32 little endian, interleaved) to RAW, renders it and writes the PNG to
 * PNG (optional). Prints "ok rows columns samples render_status", then the photometric
 * interpretation and the render error on their own lines; or "error ..." . Exit 0 decoded (even if
 * rendering failed), 1 parse or decode error, 2 usage. */
#include <stdio.h>
#include <stdlib.h>

#include "codec/codec.h"
#include "dicom/dicom.h"
#include "image/image.h"

static int write_file(const char *path, const void *data, size_t size)
{
    FILE *file = fopen(path, "wb");
    if (file == NULL)
        return 1;
    size_t written = fwrite(data, 1, size, file);
    return fclose(file) != 0 || written != size;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: codec_dump FILE RAW [PNG]\n");
        return 2;
    }
    struct cxr_limits limits = cxr_limits_default();
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_dicom_file *file = NULL;
    if (cxr_dicom_file_read(argv[1], &limits, &file, &err) != CXR_OK) {
        printf("error parse %s %s\n", cxr_status_name(err.status), err.message);
        return 1;
    }
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    struct cxr_codec_frame frame;
    if (cxr_dicom_file_pixels(file, &desc, &pixels, &err) != CXR_OK ||
        cxr_codec_frame_decode(&desc, &pixels, 0, &limits, &frame, &err) != CXR_OK) {
        printf("error decode %s %s\n", cxr_status_name(err.status), err.message);
        cxr_dicom_file_destroy(file);
        return 1;
    }
    size_t count = (size_t)frame.width * frame.height * frame.samples_per_pixel;
    int failed = write_file(argv[2], frame.samples, count * sizeof(int32_t));
    const char *render_status = "not-rendered";
    struct cxr_err render_err = CXR_ERR_INIT;
    if (argc == 4) {
        struct cxr_gray8 image;
        struct cxr_buf png = CXR_BUF_INIT(0);
        /* The API's path (cxr_image_render), which takes the native fast path where it
         * applies; the stored values above come from codec/ for every file. */
        if (cxr_image_render(file, &limits, &image, &render_err) == CXR_OK) {
            if (cxr_image_png_encode_gray8(&image, CXR_IMAGE_PNG_FAST, &png, &render_err) == CXR_OK)
                failed |= write_file(argv[3], png.data, png.len);
            cxr_image_gray8_release(&image);
        }
        cxr_buf_release(&png);
        render_status =
                render_err.status == CXR_OK ? "rendered" : cxr_status_name(render_err.status);
    }
    /* Three lines: sizes and render status; photometric (may hold spaces); render error. */
    printf("ok %u %u %u %s\n%s\n%s\n", frame.height, frame.width, frame.samples_per_pixel,
           render_status, frame.photometric, render_err.message);
    cxr_codec_frame_release(&frame);
    cxr_dicom_file_destroy(file);
    return failed;
}
