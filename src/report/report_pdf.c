/* The clinical PDF report: one A4 page laid out with cairo and pango (DejaVu Sans, with
 * fontconfig's fallback for scripts DejaVu lacks, e.g. CJK names): institution header, patient
 * and study block, overall result, findings table beside the key to the maps, the source image
 * and one overlay per present finding (report_pdf_maps.c), model version, report time in the
 * site's time zone, disclaimer. */
#include <cairo-pdf.h>
#include <fontconfig/fontconfig.h>
#include <glib.h>
#include <inttypes.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_pdf_internal.h"

#define PAGE_WIDTH  CXR_REPORT_PAGE_WIDTH
#define PAGE_HEIGHT CXR_REPORT_PAGE_HEIGHT
#define MARGIN      CXR_REPORT_MARGIN
#define CONTENT     CXR_REPORT_CONTENT
#define FONT        "DejaVu Sans"
/* Space the footer needs at the bottom: model line, rule, disclaimer. */
#define FOOTER 58.0

double cxr_report_pdf_text(cairo_t *cr, const char *text, double size, bool bold, double x,
                           double y, double width, enum cxr_report_align align, int max_lines)
{
    char *valid = g_utf8_make_valid(text ? text : "", -1);
    PangoLayout *layout = pango_cairo_create_layout(cr);
    PangoFontDescription *font = pango_font_description_from_string(FONT);
    pango_font_description_set_absolute_size(font, size * PANGO_SCALE);
    pango_font_description_set_weight(font, bold ? PANGO_WEIGHT_BOLD : PANGO_WEIGHT_NORMAL);
    pango_layout_set_font_description(layout, font);
    pango_layout_set_width(layout, (int)(width * PANGO_SCALE));
    pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_height(layout, -max_lines);
    pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_END);
    /* A value broken inside a word must not gain a hyphen (pango adds one by default): in a
     * Patient ID, accession number or UID the reader would take it for part of the value. */
    PangoAttrList *attributes = pango_attr_list_new();
    pango_attr_list_insert(attributes, pango_attr_insert_hyphens_new(FALSE));
    pango_layout_set_attributes(layout, attributes);
    pango_attr_list_unref(attributes);
    /* With auto direction (pango's default) LEFT means "start": the left edge for Latin text,
     * the right edge of the same box for Arabic or Hebrew. */
    pango_layout_set_auto_dir(layout, TRUE);
    pango_layout_set_alignment(layout, align == CXR_REPORT_ALIGN_END      ? PANGO_ALIGN_RIGHT
                                       : align == CXR_REPORT_ALIGN_CENTER ? PANGO_ALIGN_CENTER
                                                                          : PANGO_ALIGN_LEFT);
    pango_layout_set_text(layout, valid, -1);
    cairo_move_to(cr, x, y);
    pango_cairo_show_layout(cr, layout);
    int pango_width = 0, pango_height = 0;
    pango_layout_get_size(layout, &pango_width, &pango_height);
    pango_font_description_free(font);
    g_object_unref(layout);
    g_free(valid);
    return (double)pango_height / PANGO_SCALE;
}

static const char *or_dash(const char *text)
{
    return text && *text ? text : "—";
}

static void rule(cairo_t *cr, double y, double width)
{
    cairo_set_line_width(cr, width);
    cairo_move_to(cr, MARGIN, y);
    cairo_line_to(cr, PAGE_WIDTH - MARGIN, y);
    cairo_stroke(cr);
}

static void draw_header(struct cxr_report_page *page, const struct cxr_report_info *info)
{
    cairo_t *cr = page->cr;
    double left = cxr_report_pdf_text(cr, or_dash(info->institution_name), 14, true, MARGIN,
                                      page->y, CONTENT * 0.6, CXR_REPORT_ALIGN_START, 2);
    cxr_report_pdf_text(cr, "Chest X-ray AI analysis report", 10.5, false, MARGIN + CONTENT * 0.6,
                        page->y + 3, CONTENT * 0.4, CXR_REPORT_ALIGN_END, 1);
    page->y += (left > 18 ? left : 18) + 4;
    rule(cr, page->y, 1.2);
    page->y += 6;
}

/* One framed cell of the details grid: a small grey label above the value, each in its own
 * box so a right-to-left value stays inside it. Returns the cell height. */
static double cell(cairo_t *cr, const char *label, const char *value, double x, double y,
                   double width, double value_size, int lines)
{
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    cxr_report_pdf_text(cr, label, 6.8, false, x + 4, y + 2.5, width - 8, CXR_REPORT_ALIGN_START,
                        1);
    cairo_set_source_rgb(cr, 0, 0, 0);
    double used = cxr_report_pdf_text(cr, or_dash(value), value_size, false, x + 4, y + 11.5,
                                      width - 8, CXR_REPORT_ALIGN_START, lines);
    return 11.5 + (used > 11 ? used : 11) + 2.5;
}

static void frame(cairo_t *cr, double x, double y, double width, double height)
{
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 0.5);
    cairo_rectangle(cr, x, y, width, height);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
}

/* A row of cells sharing one height (the tallest); widths are shares of CONTENT. */
static void cell_row(struct cxr_report_page *page, const char *const *labels,
                     const char *const *values, const double *shares, int count, double size,
                     int lines)
{
    double x = MARGIN, height = 0;
    for (int i = 0; i < count; i++) {
        double used =
                cell(page->cr, labels[i], values[i], x, page->y, CONTENT * shares[i], size, lines);
        height = used > height ? used : height;
        x += CONTENT * shares[i];
    }
    x = MARGIN;
    for (int i = 0; i < count; i++) {
        frame(page->cr, x, page->y, CONTENT * shares[i], height);
        x += CONTENT * shares[i];
    }
    page->y += height;
}

static enum cxr_status draw_details(struct cxr_report_page *page,
                                    const struct cxr_report_info *info, struct cxr_err *err)
{
    char *patient = cxr_report_person_name_format(info->patient_name);
    char *referring = cxr_report_person_name_format(info->referring_physician_name);
    if (patient == NULL || referring == NULL) {
        free(patient);
        free(referring);
        return cxr_err_set(err, CXR_ERR_NOMEM, "report: out of memory for names");
    }
    char birth[64], study_date[64], study_time[64], when[160], age_sex[96], modality_view[96];
    cxr_report_date_format(info->patient_birth_date, birth, sizeof birth);
    cxr_report_date_format(info->study_date, study_date, sizeof study_date);
    cxr_report_time_format(info->study_time, study_time, sizeof study_time);
    snprintf(when, sizeof when, "%s%s%s", study_date, study_date[0] && study_time[0] ? " " : "",
             study_time);
    snprintf(age_sex, sizeof age_sex, "%s / %s", or_dash(info->patient_age),
             or_dash(info->patient_sex));
    int used = snprintf(modality_view, sizeof modality_view, "%s / %s", or_dash(info->modality),
                        or_dash(info->view_position));
    if (info->frame_count > 1 && used >= 0 && (size_t)used < sizeof modality_view)
        snprintf(modality_view + used, sizeof modality_view - (size_t)used,
                 " (frame 1 of %" PRIu32 " analysed)", info->frame_count);

    /* The request's patient_id names the folder and the JSON; the file's own PatientID is what
     * the DICOM outputs (and the PACS) carry. When they differ, both are printed. */
    const char *file_id = info->dicom_patient_id;
    bool ids_differ =
            file_id && file_id[0] && info->patient_id && strcmp(file_id, info->patient_id) != 0;
    char *patient_id =
            ids_differ ? g_strdup_printf("%s\n(DICOM Patient ID: %s)", info->patient_id, file_id)
                       : g_strdup(info->patient_id ? info->patient_id : "");
    const double names[2] = {0.6, 0.4};
    /* Up to 8 lines a paragraph, so that no name or ID of valid length is cut short behind an
     * ellipsis: a 64-character ID takes up to 4 lines, a name of three full groups (64 Latin
     * and twice 64 CJK characters) 7. */
    cell_row(page, (const char *[]){"Patient name", "Patient ID"},
             (const char *[]){patient, patient_id}, names, 2, 10, 8);
    const double four[4] = {0.2, 0.2, 0.3, 0.3};
    cell_row(page,
             (const char *[]){"Birth date", "Age / sex", "Accession number", "Study date and time"},
             (const char *[]){birth, age_sex, info->accession_number, when}, four, 4, 9, 3);
    cell_row(page, (const char *[]){"Referring physician", "Modality / view"},
             (const char *[]){referring, modality_view}, names, 2, 9, 2);
    const double uids[2] = {0.5, 0.5};
    cell_row(page, (const char *[]){"Study Instance UID", "SOP Instance UID"},
             (const char *[]){info->study_instance_uid, info->sop_instance_uid}, uids, 2, 6.8, 2);
    page->y += 8;
    g_free(patient_id);
    free(patient);
    free(referring);
    return CXR_OK;
}

static void draw_result(struct cxr_report_page *page, const struct cxr_prediction *prediction)
{
    cairo_t *cr = page->cr;
    /* Light fills so the text stays readable in black and white; the words carry the meaning. */
    double fill[3] = {0.86, 0.95, 0.86};
    if (prediction->result == CXR_RESULT_TB_PRESUMPTIVE) {
        fill[0] = 0.98, fill[1] = 0.84, fill[2] = 0.82;
    } else if (prediction->result == CXR_RESULT_ABNORMAL) {
        fill[0] = 0.99, fill[1] = 0.92, fill[2] = 0.78;
    }
    double height = 28;
    cairo_set_source_rgb(cr, fill[0], fill[1], fill[2]);
    cairo_rectangle(cr, MARGIN, page->y, CONTENT, height);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 0.8);
    cairo_stroke(cr);
    char line[96];
    snprintf(line, sizeof(line), "Overall result: %s", cxr_model_result_name(prediction->result));
    cxr_report_pdf_text(cr, line, 15, true, MARGIN + 10, page->y + 5, CONTENT * 0.6,
                        CXR_REPORT_ALIGN_START, 1);
    int present = 0;
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        present += prediction->findings[k].presence;
    snprintf(line, sizeof line, "%d of %d findings present", present, CXR_FINDING_COUNT);
    cxr_report_pdf_text(cr, line, 9.5, false, MARGIN + CONTENT * 0.6, page->y + 9,
                        CONTENT * 0.4 - 10, CXR_REPORT_ALIGN_END, 1);
    page->y += height + 8;
}

/* The input gate flagged the image ([gate] mode = warn): the API says so in its envelope, but
 * the PDF travels alone (and inside the Encapsulated PDF), so it states the warning right
 * under the result, framed and bold, before any number a reader might act on. */
static void draw_warning(struct cxr_report_page *page, const char *warning)
{
    if (warning == NULL || warning[0] == '\0')
        return;
    cairo_t *cr = page->cr;
    char *text = g_strdup_printf("Warning: %s\nThe input check flagged this image: the result, "
                                 "findings and maps on this page may not apply to it.",
                                 warning);
    /* Measured first (drawn in white on nothing), then boxed to its height. */
    cairo_push_group(cr);
    double used = cxr_report_pdf_text(cr, text, 9, true, MARGIN + 10, page->y + 5, CONTENT - 20,
                                      CXR_REPORT_ALIGN_START, 4);
    cairo_pattern_destroy(cairo_pop_group(cr));
    double height = used + 10;
    cairo_set_source_rgb(cr, 1.0, 0.95, 0.6);
    cairo_rectangle(cr, MARGIN, page->y, CONTENT, height);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.6, 0.1, 0.0);
    cairo_set_line_width(cr, 1.5);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cxr_report_pdf_text(cr, text, 9, true, MARGIN + 10, page->y + 5, CONTENT - 20,
                        CXR_REPORT_ALIGN_START, 4);
    g_free(text);
    page->y += height + 8;
}

static enum cxr_status draw_footer(struct cxr_report_page *page, const struct cxr_report_info *info,
                                   struct cxr_err *err)
{
    cairo_t *cr = page->cr;
    char time[160];
    enum cxr_status status =
            cxr_report_timestamp_format(info->report_time, info->timezone, time, sizeof time, err);
    if (status != CXR_OK)
        return status;
    char line[512];
    snprintf(line, sizeof(line), "Model version: %s      Report time: %s",
             or_dash(info->model_version), time);
    /* The footer sits at the bottom of the page; the maps above fill the space down to it. */
    double y = PAGE_HEIGHT - MARGIN - FOOTER;
    cxr_report_pdf_text(cr, line, 8, false, MARGIN, y, CONTENT, CXR_REPORT_ALIGN_START, 1);
    rule(cr, y + 14, 0.8);
    cxr_report_pdf_text(cr,
                        "This result is AI-generated decision support. It must be reviewed by a "
                        "qualified reader before any clinical use and does not replace a "
                        "diagnosis. This software is not a medical device.",
                        8.5, true, MARGIN, y + 19, CONTENT, CXR_REPORT_ALIGN_START, 3);
    return CXR_OK;
}

cairo_status_t cxr_report_pdf_stream_write(void *closure, const unsigned char *data,
                                           unsigned int length)
{
    struct cxr_report_pdf_stream *stream = closure;
    if (stream->status == CXR_OK)
        stream->status = cxr_buf_append(stream->out, data, length);
    return stream->status == CXR_OK ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static enum cxr_status draw_page(struct cxr_report_page *page, const struct cxr_report_info *info,
                                 const struct cxr_prediction *prediction,
                                 const struct cxr_gray8 *source, struct cxr_err *err)
{
    draw_header(page, info);
    enum cxr_status status = draw_details(page, info, err);
    if (status != CXR_OK)
        return status;
    draw_result(page, prediction);
    draw_warning(page, info->warning);
    /* Findings on the left, the key to the maps on the right, side by side (Normal: no maps,
     * no key). */
    bool normal = prediction->result == CXR_RESULT_NORMAL;
    double table_width = normal ? CONTENT : CONTENT * 0.62, top = page->y;
    double table = cxr_report_pdf_findings(page, prediction, MARGIN, table_width);
    if (info->thresholds && info->thresholds[0]) {
        /* Which operating points decided "Present": the model's or the site's own. */
        char caption[320];
        snprintf(caption, sizeof caption, "Thresholds: %s", info->thresholds);
        table += 3 + cxr_report_pdf_text(page->cr, caption, 7.5, false, MARGIN + 5, top + table + 3,
                                         table_width - 10, CXR_REPORT_ALIGN_START, 2);
    }
    double key = normal ? 0
                        : cxr_report_pdf_key(page->cr, MARGIN + table_width + 12, top,
                                             CONTENT - table_width - 12);
    page->y = top + (table > key ? table : key) + 10;
    status = draw_footer(page, info, err);
    if (status == CXR_OK)
        status = cxr_report_pdf_maps(page, prediction, source, PAGE_HEIGHT - MARGIN - FOOTER - 6,
                                     err);
    return status;
}

enum cxr_status cxr_report_pdf_render(const struct cxr_report_info *info,
                                      const struct cxr_prediction *prediction,
                                      const struct cxr_gray8 *source, struct cxr_buf *out,
                                      struct cxr_err *err)
{
    if (info == NULL || prediction == NULL || out == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "report: missing argument");
    if (source == NULL || source->pixels == NULL || source->width == 0 || source->height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "report: empty source image");

    size_t start = out->len;
    struct cxr_report_pdf_stream stream = {out, CXR_OK};
    cairo_surface_t *surface = cairo_pdf_surface_create_for_stream(
            cxr_report_pdf_stream_write, &stream, PAGE_WIDTH, PAGE_HEIGHT);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surface);
        return cxr_err_set(err, CXR_ERR_NOMEM, "cairo: cannot create the PDF surface");
    }
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE,
                                   "Chest X-ray AI analysis report");
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "cxrd");
    cairo_t *cr = cairo_create(surface);
    cairo_set_source_rgb(cr, 0, 0, 0);
    struct cxr_report_page page = {.cr = cr, .y = MARGIN};
    enum cxr_status status = draw_page(&page, info, prediction, source, err);
    cairo_status_t drawn = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(surface);
    cairo_status_t written = cairo_surface_status(surface);
    cairo_surface_destroy(surface);
    for (int i = 0; i < page.image_count; i++)
        cairo_surface_destroy(page.images[i]);
    if (status == CXR_OK && drawn != CAIRO_STATUS_SUCCESS)
        status = cxr_err_set(err, CXR_ERR_INTERNAL, "cairo: %s", cairo_status_to_string(drawn));
    if (status == CXR_OK && stream.status == CXR_ERR_LIMIT)
        status = cxr_err_set(err, CXR_ERR_LIMIT, "report: the PDF exceeds the buffer limit");
    else if (status == CXR_OK && stream.status != CXR_OK)
        status = cxr_err_set(err, stream.status, "report: out of memory writing the PDF");
    else if (status == CXR_OK && written != CAIRO_STATUS_SUCCESS)
        status = cxr_err_set(err, CXR_ERR_INTERNAL, "cairo: %s", cairo_status_to_string(written));
    if (status != CXR_OK)
        out->len = start; /* nothing appended on failure */
    return status;
}

void cxr_report_shutdown(void)
{
    /* Order matters: the font map holds fontconfig patterns, cairo caches scaled fonts. */
    pango_cairo_font_map_set_default(NULL);
    cairo_debug_reset_static_data();
    FcFini();
}
