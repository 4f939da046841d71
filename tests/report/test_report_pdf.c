/* The PDF report checked with poppler as the independent reader: pdftotext finds the patient
 * details (Greek, CJK and accented Latin included), the result, all 11 findings, the model
 * version, report time and disclaimer; pdfinfo sees one A4 page; pdftoppm renders it. Also the
 * Normal layout, failure without output, and the time for a 2048 x 2048 image. */
#include <pthread.h>
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

/* Reads a binary PGM (P5) or PPM (P6) as written by poppler's pdfimages. */
static uint8_t *read_pnm(const char *path, uint32_t *width, uint32_t *height, int *channels)
{
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    char magic[3] = {0};
    unsigned w = 0, h = 0, maximum = 0;
    assert_int_equal(fscanf(file, "%2s %u %u %u", magic, &w, &h, &maximum), 4);
    assert_int_equal(fgetc(file), '\n');
    assert_int_equal(maximum, 255);
    *channels = strcmp(magic, "P6") == 0 ? 3 : 1;
    size_t size = (size_t)w * h * (size_t)*channels;
    uint8_t *pixels = malloc(size);
    assert_non_null(pixels);
    assert_int_equal(fread(pixels, 1, size, file), size);
    fclose(file);
    *width = w;
    *height = h;
    return pixels;
}

/* Mean absolute difference between an extracted image and what we embedded (JPEG q92). */
static double mean_difference(const uint8_t *a, const uint8_t *b, size_t count)
{
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += (uint64_t)abs((int)a[i] - (int)b[i]);
    return (double)total / (double)count;
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

    /* The embedded images are the source and the heatmap (600 x 500 is below the shrink
     * limit, so they are compared pixel by pixel, within JPEG's error). */
    text = run("rm -f report_tb_image-* && pdfimages report_tb.pdf report_tb_image && "
               "ls report_tb_image-*");
    /* poppler writes decoded JPEGs as PPM, grey ones included. */
    assert_contains(text, "report_tb_image-000.ppm");
    assert_contains(text, "report_tb_image-001.ppm");
    free(text);
    uint32_t image_width = 0, image_height = 0;
    int channels = 0;
    uint8_t *embedded = read_pnm("report_tb_image-000.ppm", &image_width, &image_height, &channels);
    assert_int_equal(image_width, 600);
    assert_int_equal(image_height, 500);
    for (size_t i = 0; i < 600 * 500; i++) /* first channel (all equal for grey) */
        embedded[i] = embedded[i * (size_t)channels];
    double difference = mean_difference(embedded, source.pixels, 600 * 500);
    free(embedded);
    embedded = read_pnm("report_tb_image-001.ppm", &image_width, &image_height, &channels);
    assert_int_equal(channels, 3);
    assert_int_equal(image_width, 600);
    double heatmap_difference = mean_difference(embedded, heatmap.pixels, 600 * 500 * 3);
    free(embedded);
    printf("embedded images: mean |difference| source %.2f, heatmap %.2f (of 255)\n", difference,
           heatmap_difference);
    assert_true(difference < 2.0);
    assert_true(heatmap_difference < 2.0);

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

/* CPU time of this process: on the shared 2-core machine wall time mostly measures the other
 * jobs; cairo and pango use no threads here, so CPU time is the cost of the call. */
static double seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
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
        if (round == 0)
            write_file("report_large.pdf", &pdf);
        cxr_buf_release(&pdf);
    }
    printf("2048x2048 (CPU time): heatmap %.1f ms, PDF best of 3 %.1f ms, %zu bytes\n",
           heatmap_time * 1e3, best * 1e3, size);

    /* Embedded at half size: compare with a 2 x 2 box average computed here. */
    char *text = run("rm -f report_large_image-* && pdfimages report_large.pdf "
                     "report_large_image && ls report_large_image-*");
    assert_contains(text, "report_large_image-000.ppm");
    free(text);
    uint32_t width = 0, height = 0;
    int channels = 0;
    uint8_t *embedded = read_pnm("report_large_image-000.ppm", &width, &height, &channels);
    assert_int_equal(width, 1024);
    assert_int_equal(height, 1024);
    uint64_t total = 0;
    for (uint32_t y = 0; y < 1024; y++) {
        for (uint32_t x = 0; x < 1024; x++) {
            const uint8_t *p = source.pixels + (size_t)2 * y * 2048 + 2 * x;
            int mean = (p[0] + p[1] + p[2048] + p[2049] + 2) / 4;
            total += (uint64_t)abs(mean - embedded[((size_t)y * 1024 + x) * (size_t)channels]);
        }
    }
    free(embedded);
    printf("2048 source embedded at 1024: mean |difference| %.2f\n", total / (1024.0 * 1024.0));
    assert_true(total / (1024.0 * 1024.0) < 2.0);
    assert_true(size < 4u * 1024 * 1024);
    assert_true(best < 5.0);
    free(heatmap.pixels);
    free(source.pixels);
}

struct pdf_worker {
    struct cxr_gray8 *source;
    int index;
    int failures;
    size_t text_bytes;
};

/* A complete PDF ends with "%%EOF" and a line end. */
static bool ends_with_eof(const struct cxr_buf *pdf)
{
    for (size_t i = pdf->len > 16 ? pdf->len - 16 : 0; i + 5 <= pdf->len; i++) {
        if (memcmp(pdf->data + i, "%%EOF", 5) == 0)
            return true;
    }
    return false;
}

/* Each thread writes its own patient's reports; pango keeps one font map per thread. */
static void *write_reports(void *argument)
{
    struct pdf_worker *worker = argument;
    struct cxr_prediction prediction = make_prediction(CXR_RESULT_ABNORMAL);
    for (int round = 0; round < 3; round++) {
        char name[64];
        snprintf(name, sizeof(name), "Thread%d^Round%d Ωμέγα", worker->index, round);
        struct cxr_report_info info = make_info();
        info.patient_name = name;
        struct cxr_buf pdf = CXR_BUF_INIT(0);
        if (cxr_report_pdf(&info, &prediction, worker->source, NULL, &pdf, NULL) != CXR_OK ||
            pdf.len < 1000 || memcmp(pdf.data, "%PDF-", 5) != 0 || !ends_with_eof(&pdf))
            worker->failures++;
        cxr_buf_release(&pdf);
    }
    return NULL;
}

static void pdf_from_many_threads(void **state)
{
    (void)state;
    struct cxr_gray8 source = make_source(512, 512);
    struct pdf_worker workers[4];
    pthread_t threads[4];
    for (int t = 0; t < 4; t++) {
        workers[t] = (struct pdf_worker){&source, t, 0, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, write_reports, &workers[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(workers[t].failures, 0);
    }
    free(source.pixels);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(pdf_text_size_and_render),
            cmocka_unit_test(pdf_normal_has_no_heatmap),
            cmocka_unit_test(pdf_failure_appends_nothing),
            cmocka_unit_test(pdf_large_image_time),
            cmocka_unit_test(pdf_from_many_threads),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    cxr_report_shutdown(); /* so LeakSanitizer sees no font caches */
    return failed;
}
