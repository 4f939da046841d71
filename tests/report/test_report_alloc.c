/* Allocation-failure runs (tests/alloc_fail.h): the Nth allocation made by libcxr's code fails,
 * for N = 1, 2, ... until a call succeeds. Every failing run must return an error, leave its
 * output untouched, and (under the sanitizer build) leak nothing. cairo and pango allocate
 * through their own shared libraries and are not failed here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc_fail.h"
#include "report/report.h"

static float cams[CXR_FINDING_COUNT * 16];

static struct cxr_prediction make_prediction(void)
{
    struct cxr_prediction prediction = {0};
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        prediction.findings[k] = (struct cxr_finding){cxr_model_finding_names[k], k == 2, 0.7, 0.5};
    for (int i = 0; i < CXR_FINDING_COUNT * 16; i++)
        cams[i] = (float)(i % 7);
    prediction.result = CXR_RESULT_ABNORMAL;
    prediction.cam_width = 4;
    prediction.cam_height = 4;
    prediction.cams = cams;
    return prediction;
}

/* A 40 x 30 image of one grey level in pixels (40 * 30 bytes). */
static struct cxr_gray8 flat_source(uint8_t *pixels)
{
    memset(pixels, 90, 40 * 30);
    return (struct cxr_gray8){40, 30, pixels};
}

static void heatmap_survives_every_failure(void **state)
{
    (void)state;
    uint8_t grey[40 * 30];
    struct cxr_gray8 source = flat_source(grey);
    struct cxr_prediction prediction = make_prediction();
    long runs = 0;
    for (long n = 0;; n++) {
        struct cxr_rgb8 out = {1, 2, NULL};
        alloc_fail_after(n);
        enum cxr_status status = cxr_report_heatmap_render(&source, &prediction, &out, NULL);
        alloc_fail_after(-1);
        if (alloc_fail_count() == 0) {
            assert_int_equal(status, CXR_OK);
            free(out.pixels);
            break;
        }
        assert_int_equal(status, CXR_ERR_NOMEM);
        assert_int_equal(out.width, 1);
        assert_null(out.pixels);
        runs++;
    }
    assert_true(runs >= 3); /* the heatmap allocates several buffers */
}

/* The warn-mode band grows the heatmap: a failure leaves the heatmap as it was. */
static void warning_band_survives_every_failure(void **state)
{
    (void)state;
    uint8_t grey[40 * 30];
    struct cxr_gray8 source = flat_source(grey);
    struct cxr_prediction prediction = make_prediction();
    long runs = 0;
    for (long n = 0;; n++) {
        struct cxr_rgb8 heatmap = {0};
        assert_int_equal(cxr_report_heatmap_render(&source, &prediction, &heatmap, NULL), CXR_OK);
        uint32_t height = heatmap.height;
        alloc_fail_after(n);
        enum cxr_status status = cxr_report_heatmap_add_warning(
                &heatmap, "Image is not a frontal chest radiograph: Modality CT", NULL);
        alloc_fail_after(-1);
        free(heatmap.pixels);
        if (alloc_fail_count() == 0) {
            assert_int_equal(status, CXR_OK);
            assert_true(heatmap.height > height);
            break;
        }
        assert_int_equal(status, CXR_ERR_NOMEM);
        assert_int_equal(heatmap.height, height);
        runs++;
    }
    assert_true(runs >= 2); /* the grown image and the text */
}

static void pdf_survives_every_failure(void **state)
{
    (void)state;
    uint8_t grey[64 * 48];
    for (size_t i = 0; i < sizeof(grey); i++)
        grey[i] = (uint8_t)i;
    struct cxr_gray8 source = {64, 48, grey};
    struct cxr_prediction prediction = make_prediction();
    struct cxr_report_info info = {.patient_name = "Alloc^Test=Ideo^Graphic",
                                   .referring_physician_name = "Doc^Tor",
                                   .model_version = "v",
                                   .timezone = "UTC"};
    long runs = 0;
    for (long n = 0;; n++) {
        struct cxr_buf pdf = CXR_BUF_INIT(0);
        assert_int_equal(cxr_buf_append(&pdf, "head", 4), CXR_OK);
        alloc_fail_after(n);
        enum cxr_status status = cxr_report_pdf_render(&info, &prediction, &source, &pdf, NULL);
        alloc_fail_after(-1);
        if (alloc_fail_count() == 0) {
            assert_int_equal(status, CXR_OK);
            assert_true(pdf.len > 1000);
            cxr_buf_release(&pdf);
            break;
        }
        assert_int_not_equal(status, CXR_OK);
        assert_int_equal(pdf.len, 4); /* nothing appended */
        cxr_buf_release(&pdf);
        runs++;
    }
    assert_true(runs >= 3);
}

/* The three DICOM outputs: each failing run returns CXR_ERR_NOMEM and leaves out as it was. */
static void dicom_outputs_survive_every_failure(void **state)
{
    (void)state;
    const struct cxr_dicom_meta source = {.patient_id = "P1",
                                          .patient_name = "Doe John",
                                          .patient_name_raw = "Doe^John",
                                          .patient_age = "045Y",
                                          .patient_sex = "M",
                                          .patient_birth_date = "19800101",
                                          .sop_instance_uid = "1.2.3.4",
                                          .sop_class_uid = "1.2.840.10008.5.1.4.1.1.1",
                                          .study_instance_uid = "1.2.3",
                                          .study_date = "20261203",
                                          .modality = "CR",
                                          .body_part_examined = "CHEST",
                                          .view_position = "PA",
                                          .manufacturer = "",
                                          .institution_name = "",
                                          .specific_character_set = "",
                                          .transfer_syntax_uid = "",
                                          .patient_orientation = "",
                                          .accession_number = "A1",
                                          .referring_physician_name_raw = "",
                                          .study_time = "101010",
                                          .series_instance_uid = "1.2.3.5",
                                          .study_id = "S1"};
    const struct cxr_report_dicom_info info = {&source, NULL, "test-1", "model's own", 0};
    struct cxr_prediction prediction = make_prediction();
    uint8_t pixels[4 * 3 * 3];
    memset(pixels, 7, sizeof pixels);
    const struct cxr_rgb8 image = {4, 3, pixels};
    static const uint8_t pdf[] = "%PDF-1.4 odd";
    for (int kind = 0; kind < 3; kind++) {
        long runs = 0;
        for (long n = 0;; n++) {
            struct cxr_buf out = {0};
            alloc_fail_after(n);
            enum cxr_status status =
                    kind == 0   ? cxr_report_dicom_sr(&info, &prediction, &out, NULL)
                    : kind == 1 ? cxr_report_dicom_sc(&info, &image, "AI", true, &out, NULL)
                                : cxr_report_dicom_pdf(&info, pdf, sizeof pdf - 1, &out, NULL);
            alloc_fail_after(-1);
            if (alloc_fail_count() == 0) {
                assert_int_equal(status, CXR_OK);
                assert_true(out.len > 132);
                cxr_buf_release(&out);
                break;
            }
            assert_int_equal(status, CXR_ERR_NOMEM);
            assert_int_equal(out.len, 0);
            cxr_buf_release(&out);
            runs++;
        }
        assert_true(runs >= 2); /* the writer and its growing buffer at least */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(heatmap_survives_every_failure),
            cmocka_unit_test(warning_band_survives_every_failure),
            cmocka_unit_test(pdf_survives_every_failure),
            cmocka_unit_test(dicom_outputs_survive_every_failure),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    cxr_report_shutdown(); /* so LeakSanitizer sees no font caches */
    return failed;
}
