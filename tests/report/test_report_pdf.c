/* The PDF report checked with poppler as the independent reader: pdftotext finds the patient
 * details (Greek, CJK and accented Latin included), the result, all 11 findings, the model
 * version, report time and disclaimer; pdfinfo sees one A4 page; pdftoppm renders it. Also the
 * Normal layout, failure without output, and the time for a 2048 x 2048 image. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "report/report.h"

#define PATIENT_NAME "Παπαδοπούλου^Ελένη 王小明"
#define INSTITUTION  "Hôpital Saint-Étienne — Radiologie"
#define SOP_UID      "1.2.826.0.1.3680043.8.498.12345678901234567890123456789012345678901"

static float cams[CXR_FINDING_COUNT * 64];

static struct cxr_prediction make_prediction(enum cxr_result result)
{
    struct cxr_prediction prediction = {0};
    for (int k = 0; k < CXR_FINDING_COUNT; k++) {
        prediction.findings[k] =
                (struct cxr_finding){cxr_finding_names[k], false, 0.05 + 0.03 * k, 0.5};
    }
    if (result == CXR_RESULT_TB_PRESUMPTIVE) {
        prediction.findings[0].presence = true;
        prediction.findings[0].confidence = 0.87;
    }
    if (result != CXR_RESULT_NORMAL) {
        prediction.findings[5].presence = true;
        prediction.findings[5].confidence = 0.72;
    }
    prediction.result = result;
    for (int i = 0; i < CXR_FINDING_COUNT * 64; i++)
        cams[i] = (float)((i * 37) % 64) / 16.0f;
    prediction.cam_width = 8;
    prediction.cam_height = 8;
    prediction.cams = cams;
    return prediction;
}

static struct cxr_report_info make_info(void)
{
    struct cxr_report_info info = {
            .institution_name = INSTITUTION,
            .patient_id = "PAT-001",
            .patient_name = PATIENT_NAME,
            .patient_age = "045Y",
            .patient_sex = "F",
            .patient_birth_date = "1981-03-14",
            .sop_instance_uid = SOP_UID,
            .study_instance_uid = "1.2.3.4.5",
            .study_date = "2026-11-27",
            .modality = "DX",
            .view_position = "PA",
            .model_version = "test-untrained",
            .report_time = "2026-11-27T08:15:00Z",
    };
    return info;
}

static struct cxr_gray8 make_source(uint32_t width, uint32_t height)
{
    struct cxr_gray8 image = {width, height, malloc((size_t)width * height)};
    assert_non_null(image.pixels);
    for (uint32_t y = 0; y < height; y++)
        for (uint32_t x = 0; x < width; x++)
            image.pixels[(size_t)y * width + x] = (uint8_t)((x * 255 / width + y / 8) & 0xff);
    return image;
}

static void write_file(const char *path, const struct cxr_buf *buf)
{
    FILE *file = fopen(path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(buf->data, 1, buf->len, file), buf->len);
    assert_int_equal(fclose(file), 0);
}

/* Output of a shell command, NUL-terminated; the caller frees it. */
static char *run(const char *command)
{
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t got;
    while ((got = fread(text + len, 1, cap - 1 - len, pipe)) > 0)
        len += got;
    text[len] = '\0';
    assert_int_equal(pclose(pipe), 0);
    return text;
}

static void assert_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("\"%s\" not found in:\n%s", needle, text);
}

static void pdf_text_size_and_render(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(CXR_RESULT_TB_PRESUMPTIVE);
    struct cxr_report_info info = make_info();
    struct cxr_gray8 source = make_source(600, 500);
    struct cxr_rgb8 heatmap = {0};
    assert_int_equal(cxr_report_heatmap(&source, &prediction, &heatmap, NULL), CXR_OK);
    struct cxr_buf pdf = CXR_BUF_INIT(0);
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_report_pdf(&info, &prediction, &source, &heatmap, &pdf, &err), CXR_OK);
    assert_memory_equal(pdf.data, "%PDF-", 5);
    /* Files go to the working directory: the test's build directory under ctest. */
    write_file("report_tb.pdf", &pdf);
    char *text = run("pdftotext -enc UTF-8 report_tb.pdf -");
    assert_contains(text, "Παπαδοπούλου^Ελένη");
    assert_contains(text, "王小明");
    assert_contains(text, "Hôpital Saint-Étienne");
    assert_contains(text, "PAT-001");
    assert_contains(text, SOP_UID);
    assert_contains(text, "045Y");
    assert_contains(text, "1981-03-14");
    assert_contains(text, "TB Presumptive");
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        assert_contains(text, cxr_finding_names[k]);
    assert_contains(text, "87.0 %"); /* Tuberculosis confidence */
    assert_contains(text, "72.0 %"); /* Consolidation */
    assert_contains(text, "Yes");
    assert_contains(text, "test-untrained");
    assert_contains(text, "2026-11-27T08:15:00Z");
    assert_contains(text, "AI-generated decision support");
    assert_contains(text, "qualified");
    assert_contains(text, "not a medical device");
    assert_contains(text, "Heatmap overlay");
    free(text);

    text = run("pdfinfo report_tb.pdf");
    const char *pages = strstr(text, "Pages:");
    assert_non_null(pages);
    assert_int_equal(strtol(pages + strlen("Pages:"), NULL, 10), 1);
    assert_contains(text, "595.276 x 841.89 pts (A4)");
    free(text);

    /* The page renders: A4 at 50 dpi is 413.4 x 584.7 pixels (poppler rounds up). */
    text = run("pdftoppm -r 50 -singlefile -gray report_tb.pdf report_tb && "
               "head -c 20 report_tb.pgm");
    int width = 0, height = 0;
    assert_int_equal(sscanf(text, "P5 %d %d", &width, &height), 2);
    assert_true(width >= 413 && width <= 414);
    assert_true(height >= 584 && height <= 585);
    free(text);

    cxr_buf_release(&pdf);
    free(heatmap.pixels);
    free(source.pixels);
}

static void pdf_normal_has_no_heatmap(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(CXR_RESULT_NORMAL);
    struct cxr_report_info info = make_info();
    info.institution_name = "";
    info.patient_birth_date = NULL;
    struct cxr_gray8 source = make_source(300, 400);
    struct cxr_buf pdf = CXR_BUF_INIT(0);
    assert_int_equal(cxr_report_pdf(&info, &prediction, &source, NULL, &pdf, NULL), CXR_OK);
    write_file("report_normal.pdf", &pdf);
    char *text = run("pdftotext -enc UTF-8 report_normal.pdf -");
    assert_contains(text, "Overall result: Normal");
    assert_contains(text, "No heatmap: result Normal");
    assert_true(strstr(text, "Yes") == NULL); /* nothing present */
    free(text);
    cxr_buf_release(&pdf);
    free(source.pixels);
}

static void pdf_failure_appends_nothing(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(CXR_RESULT_ABNORMAL);
    struct cxr_report_info info = make_info();
    info.patient_name = "bad \xff\xfe utf-8 \xc3"; /* made valid, never a crash */
    struct cxr_gray8 source = make_source(64, 64);
    struct cxr_buf pdf = CXR_BUF_INIT(4096);
    assert_int_equal(cxr_buf_append(&pdf, "keep", 4), CXR_OK);
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_report_pdf(&info, &prediction, &source, NULL, &pdf, &err), CXR_ERR_LIMIT);
    assert_int_equal(pdf.len, 4);
    assert_memory_equal(pdf.data, "keep", 4);
    cxr_buf_release(&pdf);

    struct cxr_buf unlimited = CXR_BUF_INIT(0);
    assert_int_equal(cxr_report_pdf(&info, &prediction, &source, NULL, &unlimited, NULL), CXR_OK);
    struct cxr_gray8 empty = {0, 0, NULL};
    size_t len = unlimited.len;
    assert_int_equal(cxr_report_pdf(&info, &prediction, &empty, NULL, &unlimited, NULL),
                     CXR_ERR_INVALID_ARG);
    assert_int_equal(unlimited.len, len);
    cxr_buf_release(&unlimited);
    free(source.pixels);
}

static double seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec + now.tv_nsec / 1e9;
}

/* A 2048 x 2048 source and heatmap: prints the time and size (reported, not asserted tightly:
 * the machine is shared; the sanitizer build is several times slower). */
static void pdf_large_image_time(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(CXR_RESULT_ABNORMAL);
    struct cxr_report_info info = make_info();
    struct cxr_gray8 source = make_source(2048, 2048);
    struct cxr_rgb8 heatmap = {0};
    double start = seconds();
    assert_int_equal(cxr_report_heatmap(&source, &prediction, &heatmap, NULL), CXR_OK);
    double heatmap_time = seconds() - start;
    double best = 1e9;
    size_t size = 0;
    for (int round = 0; round < 3; round++) {
        struct cxr_buf pdf = CXR_BUF_INIT(0);
        start = seconds();
        assert_int_equal(cxr_report_pdf(&info, &prediction, &source, &heatmap, &pdf, NULL), CXR_OK);
        double elapsed = seconds() - start;
        best = elapsed < best ? elapsed : best;
        size = pdf.len;
        cxr_buf_release(&pdf);
    }
    printf("2048x2048: heatmap %.1f ms, PDF best of 3 %.1f ms, %zu bytes\n", heatmap_time * 1e3,
           best * 1e3, size);
    assert_true(size < 4u * 1024 * 1024);
    assert_true(best < 5.0);
    free(heatmap.pixels);
    free(source.pixels);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(pdf_text_size_and_render),
            cmocka_unit_test(pdf_normal_has_no_heatmap),
            cmocka_unit_test(pdf_failure_appends_nothing),
            cmocka_unit_test(pdf_large_image_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
