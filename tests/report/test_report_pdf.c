/* The PDF report checked with poppler as the independent reader: pdftotext finds the patient
 * details (every component group of Japanese, Korean and Arabic names read from the DICOM
 * corpus, Greek and accented Latin), accession number, referring physician, study time, the
 * result, all 11 findings ("not assessed" for a switched-off one), model version, the report
 * time with its zone's offset, and the disclaimer; pdfinfo sees one A4 page; pdfimages finds
 * the source and one overlay per present finding; pdftoppm renders it and no wide band of the
 * page is left empty. Also the Normal layout, failure without output, and the time for a
 * 2048 x 2048 image. */
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

#include "dicom/dicom.h"
#include "report/report.h"

#define PATIENT_NAME "Παπαδοπούλου^Ελένη=王^小明"
#define INSTITUTION  "Hôpital Saint-Étienne — Radiologie"
#define SOP_UID      "1.2.826.0.1.3680043.8.498.12345678901234567890123456789012345678901"

static float cams[CXR_FINDING_COUNT * 64];

static struct cxr_prediction make_prediction(enum cxr_result result)
{
    struct cxr_prediction prediction = {0};
    for (int k = 0; k < CXR_FINDING_COUNT; k++) {
        prediction.findings[k] =
                (struct cxr_finding){cxr_model_finding_names[k], false, 0.05 + 0.03 * k, 0.5};
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
            .study_date = "20261127",
            .study_time = "081500.25",
            .accession_number = "ACC-2026-0042",
            .referring_physician_name = "Martin^Claire^^Dr",
            .modality = "DX",
            .view_position = "PA",
            .model_version = "test-untrained",
            .report_time = 1795767300, /* 2026-11-27 08:15:00 UTC */
            .timezone = "Asia/Tokyo",
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

/* Copy of text without spaces, line ends and the bidi embedding marks poppler adds around
 * right-to-left runs (U+202B, U+202C): pdftotext splits shaped Arabic words at glyph gaps
 * ("لن زار"), so an Arabic name is compared with the spaces taken out of both sides. */
static char *squeeze(const char *text)
{
    char *out = malloc(strlen(text) + 1);
    assert_non_null(out);
    size_t used = 0;
    for (const char *c = text; *c;) {
        if (*c == ' ' || *c == '\n') {
            c++;
        } else if (strncmp(c, "\u202B", 3) == 0 || strncmp(c, "\u202C", 3) == 0) {
            c += 3;
        } else {
            out[used++] = *c++;
        }
    }
    out[used] = '\0';
    return out;
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

/* The largest share of the page's height, between the margins, that is blank: rows of a
 * 20 dpi grey rendering with no pixel darker than 250. */
static double blank_band(const char *pdf, const char *stem)
{
    char command[512];
    snprintf(command, sizeof command, "pdftoppm -r 20 -singlefile -gray %s %s && head -c 20 %s.pgm",
             pdf, stem, stem);
    free(run(command));
    snprintf(command, sizeof command, "%s.pgm", stem);
    uint32_t width = 0, height = 0;
    int channels = 0;
    uint8_t *pixels = read_pnm(command, &width, &height, &channels);
    uint32_t margin = height * 36 / 842 + 1, run_rows = 0, longest = 0;
    for (uint32_t y = margin; y + margin < height; y++) {
        bool blank = true;
        for (uint32_t x = width * 36 / 595 + 1; x + width * 36 / 595 + 1 < width; x++)
            blank = blank && pixels[((size_t)y * width + x) * (size_t)channels] > 250;
        run_rows = blank ? run_rows + 1 : 0;
        longest = run_rows > longest ? run_rows : longest;
    }
    free(pixels);
    return (double)longest / (double)height;
}

/* Counts the images pdfimages extracts and checks the first is the source. */
static int embedded_images(const char *pdf, const char *stem, const struct cxr_gray8 *source)
{
    char command[512];
    snprintf(command, sizeof command, "rm -f %s-* && pdfimages %s %s && ls %s-* | wc -l", stem, pdf,
             stem, stem);
    char *text = run(command);
    int count = atoi(text);
    free(text);
    snprintf(command, sizeof command, "%s-000.ppm", stem);
    uint32_t width = 0, height = 0;
    int channels = 0;
    uint8_t *embedded = read_pnm(command, &width, &height, &channels);
    assert_int_equal(width, source->width);
    assert_int_equal(height, source->height);
    for (size_t i = 0; i < (size_t)width * height; i++) /* first channel (all equal for grey) */
        embedded[i] = embedded[i * (size_t)channels];
    double difference = mean_difference(embedded, source->pixels, (size_t)width * height);
    printf("%s: %d images; source embedded with mean |difference| %.2f (of 255)\n", pdf, count,
           difference);
    assert_true(difference < 2.0);
    free(embedded);
    return count;
}

static void pdf_text_size_and_render(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(CXR_RESULT_TB_PRESUMPTIVE);
    prediction.findings[6].presence = true; /* Atelectasis too: three maps */
    prediction.findings[6].confidence = 0.61;
    /* Switched off by the model or site (threshold above 1): "not assessed", no numbers. */
    prediction.findings[10].confidence = 0.4242;
    prediction.findings[10].threshold = 1.5;
    struct cxr_report_info info = make_info();
    struct cxr_gray8 source = make_source(600, 500);
    struct cxr_buf pdf = CXR_BUF_INIT(0);
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_report_pdf_render(&info, &prediction, &source, &pdf, &err), CXR_OK);
    assert_memory_equal(pdf.data, "%PDF-", 5);
    /* Files go to the working directory: the test's build directory under ctest. */
    write_file("report_tb.pdf", &pdf);
    char *text = run("pdftotext -enc UTF-8 report_tb.pdf -");
    assert_contains(text, "Παπαδοπούλου Ελένη (王 小明)");
    assert_contains(text, "Hôpital Saint-Étienne");
    assert_contains(text, "PAT-001");
    assert_contains(text, SOP_UID);
    assert_contains(text, "045Y");
    assert_contains(text, "1981-03-14");
    assert_contains(text, "ACC-2026-0042");
    assert_contains(text, "2026-11-27 08:15:00"); /* study date and time */
    assert_contains(text, "Dr Martin Claire");
    assert_contains(text, "TB Presumptive");
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        assert_contains(text, cxr_model_finding_names[k]);
    assert_contains(text, "87.0 %"); /* Tuberculosis confidence */
    assert_contains(text, "72.0 %"); /* Consolidation */
    assert_contains(text, "Yes");
    assert_contains(text, "not assessed");
    assert_true(strstr(text, "42.4 %") == NULL); /* the switched-off finding's confidence */
    assert_true(strstr(text, "150.0 %") == NULL);
    assert_contains(text, "test-untrained");
    assert_contains(text, "2026-11-27 17:15:00 UTC+09:00 (Asia/Tokyo)"); /* report time */
    assert_contains(text, "AI-generated decision support");
    assert_contains(text, "qualified");
    assert_contains(text, "not a medical device");
    assert_contains(text, "Source image");
    assert_contains(text, "Reading the maps");
    assert_contains(text, "Tuberculosis 87.0 %"); /* map labels */
    assert_contains(text, "Consolidation 72.0 %");
    assert_contains(text, "Atelectasis 61.0 %");
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
    double blank = blank_band("report_tb.pdf", "report_tb_20dpi");
    printf("report_tb.pdf: largest blank band %.1f %% of the page height\n", 100 * blank);
    assert_true(blank < 0.06);

    /* The source (600 x 500, below the shrink limit: compared pixel by pixel) and one overlay
     * per present finding. */
    assert_int_equal(embedded_images("report_tb.pdf", "report_tb_image", &source), 4);
    cxr_buf_release(&pdf);
    free(source.pixels);
}

/* Names as the DICOM reader decodes them from the pydicom charset corpus: every component
 * group must reach the page, in the report's order. */
static void pdf_names_from_dicom(void **state)
{
    (void)state;
    static const struct {
        const char *file, *stem;
        const char *groups[3];
    } cases[] = {
            {"chrH31.dcm", "report_ja", {"Yamada Tarou", "山田 太郎", "やまだ たろう"}},
            {"chrI2.dcm", "report_ko", {"Hong Gildong", "洪 吉洞", "홍 길동"}},
            {"chrArab.dcm", "report_ar", {"قباني لنزار", NULL, NULL}},
    };
    const char *dir = getenv("CXR_DATA_DIR");
    struct cxr_gray8 source = make_source(400, 480);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/dicom/pydicom-charset-files/%s",
                 dir ? dir : "../shared/data", cases[i].file);
        struct cxr_dicom_file *file = NULL;
        struct cxr_err err = CXR_ERR_INIT;
        if (cxr_dicom_file_read(path, NULL, &file, &err) != CXR_OK)
            fail_msg("%s: %s", path, err.message);
        struct cxr_report_info info = make_info();
        info.patient_name = cxr_dicom_file_meta(file)->patient_name_raw;
        info.timezone = i == 2 ? "Asia/Riyadh" : "Asia/Seoul";
        struct cxr_prediction prediction = make_prediction(CXR_RESULT_ABNORMAL);
        struct cxr_buf pdf = CXR_BUF_INIT(0);
        assert_int_equal(cxr_report_pdf_render(&info, &prediction, &source, &pdf, &err), CXR_OK);
        char name[64], command[256];
        snprintf(name, sizeof name, "%s.pdf", cases[i].stem);
        write_file(name, &pdf);
        snprintf(command, sizeof command, "pdftotext -enc UTF-8 %s -", name);
        char *text = run(command);
        for (int g = 0; g < 3 && cases[i].groups[g]; g++) {
            if (i == 2) {
                char *squeezed_text = squeeze(text), *squeezed_name = squeeze(cases[i].groups[g]);
                assert_contains(squeezed_text, squeezed_name);
                free(squeezed_text);
                free(squeezed_name);
            } else {
                assert_contains(text, cases[i].groups[g]);
            }
        }
        assert_contains(text, "ACC-2026-0042");
        assert_contains(text, i == 2 ? "UTC+03:00 (Asia/Riyadh)" : "UTC+09:00 (Asia/Seoul)");
        free(text);
        cxr_buf_release(&pdf);
        cxr_dicom_file_destroy(file);
    }
    free(source.pixels);
}

static void pdf_normal_has_no_maps(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(CXR_RESULT_NORMAL);
    struct cxr_report_info info = make_info();
    info.institution_name = "";
    info.patient_birth_date = NULL;
    info.accession_number = NULL;
    info.timezone = "UTC";
    struct cxr_gray8 source = make_source(300, 400);
    struct cxr_buf pdf = CXR_BUF_INIT(0);
    assert_int_equal(cxr_report_pdf_render(&info, &prediction, &source, &pdf, NULL), CXR_OK);
    write_file("report_normal.pdf", &pdf);
    char *text = run("pdftotext -enc UTF-8 report_normal.pdf -");
    assert_contains(text, "Overall result: Normal");
    assert_true(strstr(text, "frame 1 of") == NULL); /* one frame: nothing said */
    assert_contains(text, "no finding present: no maps");
    assert_contains(text, "2026-11-27 08:15:00 UTC+00:00 (UTC)");
    assert_true(strstr(text, "Yes") == NULL); /* nothing present */
    free(text);
    /* A multi-frame source: the page says which frame the result is for. */
    info.frame_count = 3;
    struct cxr_buf frames = CXR_BUF_INIT(0);
    assert_int_equal(cxr_report_pdf_render(&info, &prediction, &source, &frames, NULL), CXR_OK);
    write_file("report_frames.pdf", &frames);
    text = run("pdftotext -enc UTF-8 report_frames.pdf -");
    assert_contains(text, "(frame 1 of 3 analysed)");
    free(text);
    cxr_buf_release(&frames);
    info.frame_count = 1;
    double blank = blank_band("report_normal.pdf", "report_normal_20dpi");
    printf("report_normal.pdf: largest blank band %.1f %% of the page height\n", 100 * blank);
    assert_true(blank < 0.06);
    assert_int_equal(embedded_images("report_normal.pdf", "report_normal_image", &source), 1);
    /* An unknown zone is an error, not a wrong time. */
    info.timezone = "Mars/Olympus_Mons";
    struct cxr_err err = CXR_ERR_INIT;
    size_t len = pdf.len;
    assert_int_equal(cxr_report_pdf_render(&info, &prediction, &source, &pdf, &err),
                     CXR_ERR_INVALID_ARG);
    assert_int_equal(pdf.len, len);
    assert_non_null(strstr(err.message, "Mars/Olympus_Mons"));
    cxr_buf_release(&pdf);
    free(source.pixels);
}

/* [gate] mode = warn: the gate's message is printed on the page (a plain "Normal" for an image
 * the gate flagged would mislead whoever reads the PDF without the API's envelope), and the
 * page still fits and keeps its maps. */
static void pdf_gate_warning_printed(void **state)
{
    (void)state;
    const char *reasons[] = {"Image is not a frontal chest radiograph: image score 0.000 is below "
                             "the gate threshold 0.847",
                             NULL};
    for (int i = 0; i < 2; i++) {
        enum cxr_result result = i == 0 ? CXR_RESULT_NORMAL : CXR_RESULT_TB_PRESUMPTIVE;
        struct cxr_prediction prediction = make_prediction(result);
        struct cxr_report_info info = make_info();
        info.warning = reasons[0];
        struct cxr_gray8 source = make_source(300, 400);
        struct cxr_buf pdf = CXR_BUF_INIT(0);
        assert_int_equal(cxr_report_pdf_render(&info, &prediction, &source, &pdf, NULL), CXR_OK);
        write_file("report_warning.pdf", &pdf);
        char *text = run("pdftotext -enc UTF-8 report_warning.pdf -");
        char *squeezed = squeeze(text);
        char *needle = squeeze("Warning: Image is not a frontal chest radiograph: image score "
                               "0.000 is below the gate threshold 0.847");
        assert_non_null(strstr(squeezed, needle));
        assert_contains(text, "may not apply");
        assert_contains(text, "not a medical device"); /* the footer still fits */
        free(needle);
        free(squeezed);
        free(text);
        assert_int_equal(embedded_images("report_warning.pdf", "report_warning_image", &source),
                         i == 0 ? 1 : 3);
        assert_int_equal(system("pdfinfo report_warning.pdf | grep -q '^Pages: *1$'"), 0);
        /* No warning, no box. */
        info.warning = reasons[1];
        pdf.len = 0;
        assert_int_equal(cxr_report_pdf_render(&info, &prediction, &source, &pdf, NULL), CXR_OK);
        write_file("report_warning.pdf", &pdf);
        text = run("pdftotext -enc UTF-8 report_warning.pdf -");
        assert_true(strstr(text, "Warning") == NULL);
        free(text);
        cxr_buf_release(&pdf);
        free(source.pixels);
    }
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
    assert_int_equal(cxr_report_pdf_render(&info, &prediction, &source, &pdf, &err), CXR_ERR_LIMIT);
    assert_int_equal(pdf.len, 4);
    assert_memory_equal(pdf.data, "keep", 4);
    cxr_buf_release(&pdf);

    struct cxr_buf unlimited = CXR_BUF_INIT(0);
    assert_int_equal(cxr_report_pdf_render(&info, &prediction, &source, &unlimited, NULL), CXR_OK);
    struct cxr_gray8 empty = {0, 0, NULL};
    size_t len = unlimited.len;
    assert_int_equal(cxr_report_pdf_render(&info, &prediction, &empty, &unlimited, NULL),
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

/* A 2048 x 2048 source: the API heatmap and the PDF; prints the times and size (reported, not
 * asserted tightly: the machine is shared; the sanitizer build is several times slower). */
static void pdf_large_image_time(void **state)
{
    (void)state;
    struct cxr_prediction prediction = make_prediction(CXR_RESULT_ABNORMAL);
    struct cxr_report_info info = make_info();
    struct cxr_gray8 source = make_source(2048, 2048);
    struct cxr_rgb8 heatmap = {0};
    double start = seconds();
    assert_int_equal(cxr_report_heatmap_render(&source, &prediction, &heatmap, NULL), CXR_OK);
    double heatmap_time = seconds() - start;
    double best = 1e9;
    size_t size = 0;
    for (int round = 0; round < 3; round++) {
        struct cxr_buf pdf = CXR_BUF_INIT(0);
        start = seconds();
        assert_int_equal(cxr_report_pdf_render(&info, &prediction, &source, &pdf, NULL), CXR_OK);
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
        if (cxr_report_pdf_render(&info, &prediction, worker->source, &pdf, NULL) != CXR_OK ||
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
            cmocka_unit_test(pdf_names_from_dicom),
            cmocka_unit_test(pdf_normal_has_no_maps),
            cmocka_unit_test(pdf_gate_warning_printed),
            cmocka_unit_test(pdf_failure_appends_nothing),
            cmocka_unit_test(pdf_large_image_time),
            cmocka_unit_test(pdf_from_many_threads),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    cxr_report_shutdown(); /* so LeakSanitizer sees no font caches */
    return failed;
}
