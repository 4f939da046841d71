/* Allocation-failure runs over the reader and the rendering chain (tests/alloc_fail.h): for
 * small corpus files of every encoding the reader handles (character sets, sequences, deflate,
 * big endian, RLE, JPEG Lossless, baseline, JPEG-LS, JPEG 2000), the Nth allocation fails for
 * N = 0, 1, ... until parse, metadata and render all succeed. Each failing run must end in an
 * error (never a crash or a partial image) and, under the sanitizer build, leak nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc_fail.h"
#include "dicom/dicom.h"
#include "image/image.h"

static const char *const files[] = {
        "pydicom-charset-files/chrH31.dcm",     /* ISO 2022 escapes through iconv */
        "pydicom-test-files/rtdose_1frame.dcm", /* implicit VR, sequences */
        "pydicom-test-files/image_dfl.dcm",     /* deflated data set */
        "pydicom-test-files/SC_rgb_small_odd_big_endian.dcm",
        "pydicom-test-files/SC_rgb_rle.dcm",
        "pydicom-test-files/SC_rgb_jpeg_gdcm.dcm", /* JPEG Lossless */
        "pylibjpeg-data/JPEGBaseline/JPEGBaseline_1s_1f_u_08_08.dcm",
        "pydicom-test-files/JPEGLSNearLossless_08.dcm",
        "dcmbench/j2ki.dcm",
        "dcmbench/gdcm-CR-MONO1-10-chest.dcm",
};

/* Parse, read every metadata field, render frame 1 (when the file has pixels). */
static enum cxr_status read_and_render(const struct cxr_buf *bytes, bool *rendered)
{
    struct cxr_limits limits = cxr_limits_default();
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_dicom_file *file = NULL;
    enum cxr_status status = cxr_dicom_file_parse(bytes->data, bytes->len, &limits, &file, &err);
    if (status != CXR_OK)
        return status;
    const struct cxr_dicom_meta *meta = cxr_dicom_file_meta(file);
    assert_non_null(meta);
    struct cxr_gray8 image = {0};
    status = cxr_image_render(file, &limits, &image, &err);
    if (status == CXR_OK) {
        assert_non_null(image.pixels);
        *rendered = true;
    } else {
        assert_null(image.pixels); /* no partial image on failure */
        if (status == CXR_ERR_NOT_FOUND)
            status = CXR_OK; /* no Pixel Data: nothing to render */
    }
    cxr_image_gray8_release(&image);
    cxr_dicom_file_destroy(file);
    return status;
}

static void every_allocation_failure_is_an_error(void **state)
{
    (void)state;
    const char *data = getenv("CXR_DATA_DIR");
    char path[1024];
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        snprintf(path, sizeof path, "%s/dicom/%s", data ? data : "../shared/data", files[f]);
        struct cxr_buf bytes = CXR_BUF_INIT(0);
        struct cxr_err err = CXR_ERR_INIT;
        assert_int_equal(cxr_file_read(path, 1 << 24, &bytes, &err), CXR_OK);
        long runs = 0;
        bool rendered = false;
        for (long n = 0;; n++) {
            alloc_fail_after(n);
            enum cxr_status status = read_and_render(&bytes, &rendered);
            alloc_fail_after(-1);
            if (alloc_fail_count() == 0) {
                assert_int_equal(status, CXR_OK);
                break;
            }
            if (status == CXR_OK) {
                fprintf(stderr, "%s: allocation %ld failed but the read succeeded\n", files[f], n);
                fail();
            }
            runs++;
        }
        printf("%s: %ld allocation failures, each an error\n", files[f], runs);
        assert_true(runs >= 2);
        cxr_buf_release(&bytes);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(every_allocation_failure_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
