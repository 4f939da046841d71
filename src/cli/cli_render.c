/* `cxrd render FILE OUT.png`: the whole rendering chain (decode frame 1, Modality LUT, VOI,
 * MONOCHROME1 inversion, colour to luminance) written as an 8-bit grey PNG. The PNG is
 * written atomically: a temporary file in the target folder, fsync, rename, fsync folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "dicom/dicom.h"
#include "image/image.h"

static void print_help(FILE *out)
{
    fprintf(out, "Usage: cxrd render FILE OUT.png\n\n"
                 "Renders frame 1 of a DICOM file as an 8-bit grey PNG at full resolution:\n"
                 "Modality LUT, the file's first window (or VOI LUT; a 0.5-99.5 percentile\n"
                 "window when it has none), MONOCHROME1 shown with bone bright (a\n"
                 "Presentation LUT Shape decides when present, as in dcm2pnm), colour\n"
                 "images as luminance. OUT.png is replaced atomically.\n"
                 "Exit status: 0 on success, 1 on failure (message on stderr), 2 on a usage\n"
                 "error. Put -- first to name files that begin with '-'.\n");
}

int cxr_cli_render(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_help(stdout);
        return 0;
    }
    /* "--" ends the options, so FILE or OUT.png can begin with '-' (as for infer). */
    if (argc == 4 && strcmp(argv[1], "--") == 0) {
        argc--;
        argv++;
    } else if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-') {
        print_help(stderr);
        return 2;
    }
    struct cxr_limits limits = cxr_limits_default();
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_dicom_file *file = NULL;
    struct cxr_gray8 image = {0};
    struct cxr_buf png = CXR_BUF_INIT(0);
    int status = 1;
    if (cxr_dicom_file_read(argv[1], &limits, &file, &err) != CXR_OK ||
        cxr_image_render(file, &limits, &image, &err) != CXR_OK ||
        cxr_image_png_encode_gray8(&image, CXR_IMAGE_PNG_FAST, &png, &err) != CXR_OK) {
        fprintf(stderr, "cxrd render: %s: %s\n", argv[1], err.message);
        goto done;
    }
    if (cxr_file_write_atomic(argv[2], png.data, png.len, &err) != CXR_OK) {
        fprintf(stderr, "cxrd render: cannot write %s: %s\n", argv[2], err.message);
        goto done;
    }
    status = 0;
done:
    cxr_buf_release(&png);
    cxr_image_gray8_release(&image);
    cxr_dicom_file_destroy(file);
    return status;
}
