/* The clinical PDF report: one A4 page laid out with cairo and pango (DejaVu Sans, with
 * fontconfig's fallback for scripts DejaVu lacks, e.g. CJK names): institution header, patient
 * and study details, overall result, findings table, source and heatmap images, disclaimer. */
#include <cairo-pdf.h>
#include <fontconfig/fontconfig.h>
#include <glib.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <string.h>

#include "report/report_pdf_internal.h"

#define PAGE_WIDTH  595.2756 /* A4 in PostScript points: 210 mm x 297 mm */
#define PAGE_HEIGHT 841.8898
#define MARGIN      42.0
#define CONTENT     (PAGE_WIDTH - 2 * MARGIN)
#define FONT        "DejaVu Sans"

struct page {
    cairo_t *cr;
    double y;                   /* top of the next block */
    cairo_surface_t *images[2]; /* destroyed once the PDF is finished */
};

enum align { ALIGN_LEFT, ALIGN_RIGHT, ALIGN_CENTER };

/* Draws text (UTF-8, made valid first: DICOM strings are decoded upstream but never trusted)
 * in a box of the given width, at most max_lines lines (ellipsised beyond). Returns the height
 * used, in points. */
static double draw_text(cairo_t *cr, const char *text, double size, bool bold, double x, double y,
                        double width, enum align align, int max_lines)
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
    pango_layout_set_alignment(layout, align == ALIGN_RIGHT    ? PANGO_ALIGN_RIGHT
                                       : align == ALIGN_CENTER ? PANGO_ALIGN_CENTER
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

static const char *or_empty(const char *text)
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

static void draw_header(struct page *page, const struct cxr_report_info *info)
{
    cairo_t *cr = page->cr;
    double left = draw_text(cr, or_empty(info->institution_name), 15, true, MARGIN, page->y,
                            CONTENT * 0.62, ALIGN_LEFT, 2);
    draw_text(cr, "Chest X-ray AI analysis report", 11, false, MARGIN + CONTENT * 0.62, page->y + 3,
              CONTENT * 0.38, ALIGN_RIGHT, 2);
    page->y += (left > 22 ? left : 22) + 6;
    rule(cr, page->y, 1.2);
    page->y += 10;
}

/* Label/value pairs in rows; the value column wraps (UIDs are up to 64 characters). */
static double draw_pairs(cairo_t *cr, const char *const *pairs, size_t count, double x, double y,
                         double label_width, double value_width)
{
    double top = y;
    for (size_t i = 0; i < count; i++) {
        draw_text(cr, pairs[2 * i], 9, true, x, y, label_width, ALIGN_LEFT, 1);
        double used = draw_text(cr, or_empty(pairs[2 * i + 1]), 9, false, x + label_width, y,
                                value_width, ALIGN_LEFT, 2);
        y += (used > 12 ? used : 12) + 2;
    }
    return y - top;
}

static void draw_details(struct page *page, const struct cxr_report_info *info)
{
    const char *patient[] = {
            "Patient name", info->patient_name,       "Patient ID", info->patient_id,
            "Birth date",   info->patient_birth_date, "Age",        info->patient_age,
            "Sex",          info->patient_sex,
    };
    const char *study[] = {
            "Study date", info->study_date, "Modality", info->modality, "View", info->view_position,
    };
    const char *uids[] = {
            "Study Instance UID",
            info->study_instance_uid,
            "SOP Instance UID",
            info->sop_instance_uid,
    };
    cairo_t *cr = page->cr;
    double half = CONTENT / 2;
    draw_text(cr, "Patient", 10.5, true, MARGIN, page->y, half, ALIGN_LEFT, 1);
    draw_text(cr, "Study", 10.5, true, MARGIN + half, page->y, half, ALIGN_LEFT, 1);
    page->y += 16;
    double left = draw_pairs(cr, patient, 5, MARGIN, page->y, 78, half - 84);
    double right = draw_pairs(cr, study, 3, MARGIN + half, page->y, 70, half - 70);
    page->y += left > right ? left : right;
    page->y += 2;
    page->y += draw_pairs(cr, uids, 2, MARGIN, page->y, 110, CONTENT - 110);
    page->y += 6;
}

static void draw_result(struct page *page, const struct cxr_prediction *prediction)
{
    cairo_t *cr = page->cr;
    /* Light fills so the text stays readable in black and white; the words carry the meaning. */
    double fill[3] = {0.86, 0.95, 0.86};
    if (prediction->result == CXR_RESULT_TB_PRESUMPTIVE) {
        fill[0] = 0.98, fill[1] = 0.84, fill[2] = 0.82;
    } else if (prediction->result == CXR_RESULT_ABNORMAL) {
        fill[0] = 0.99, fill[1] = 0.92, fill[2] = 0.78;
    }
    double height = 34;
    cairo_set_source_rgb(cr, fill[0], fill[1], fill[2]);
    cairo_rectangle(cr, MARGIN, page->y, CONTENT, height);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 0.8);
    cairo_stroke(cr);
    char line[96];
    snprintf(line, sizeof(line), "Overall result: %s", cxr_result_name(prediction->result));
    draw_text(cr, line, 16, true, MARGIN + 10, page->y + 7, CONTENT - 20, ALIGN_LEFT, 1);
    page->y += height + 12;
}

static void draw_findings(struct page *page, const struct cxr_prediction *prediction)
{
    cairo_t *cr = page->cr;
    const double columns[4] = {MARGIN + 6, MARGIN + 220, MARGIN + 330, MARGIN + 430};
    const char *heads[4] = {"Finding", "Confidence", "Threshold", "Present"};
    const double row = 14.5;
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_rectangle(cr, MARGIN, page->y, CONTENT, row + 2);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (int c = 0; c < 4; c++)
        draw_text(cr, heads[c], 9.5, true, columns[c], page->y + 2, 100, ALIGN_LEFT, 1);
    page->y += row + 2;
    for (int k = 0; k < CXR_FINDING_COUNT; k++) {
        const struct cxr_finding *finding = &prediction->findings[k];
        char confidence[32], threshold[32];
        snprintf(confidence, sizeof(confidence), "%.1f %%", finding->confidence * 100.0);
        snprintf(threshold, sizeof(threshold), "%.1f %%", finding->threshold * 100.0);
        const char *cells[4] = {finding->name ? finding->name : cxr_finding_names[k], confidence,
                                threshold, finding->presence ? "Yes" : "No"};
        for (int c = 0; c < 4; c++)
            draw_text(cr, cells[c], 9.5, finding->presence, columns[c], page->y + 1.5, 105,
                      ALIGN_LEFT, 1);
        page->y += row;
        cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
        rule(cr, page->y, 0.4);
        cairo_set_source_rgb(cr, 0, 0, 0);
    }
    page->y += 12;
}

/* Draws an image of width x height pixels fitted into the box (keeping the aspect ratio),
 * centred, with a thin frame. surface is the 1 x 1 JPEG carrier of report_image.c, so the
 * scale maps its unit square onto the printed rectangle. */
static void draw_image(cairo_t *cr, cairo_surface_t *surface, double width, double height, double x,
                       double y, double box)
{
    double scale = box / (width > height ? width : height);
    double dx = x + (box - width * scale) / 2, dy = y + (box - height * scale) / 2;
    cairo_save(cr);
    cairo_translate(cr, dx, dy);
    cairo_scale(cr, width * scale, height * scale);
    cairo_set_source_surface(cr, surface, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_set_line_width(cr, 0.6);
    cairo_rectangle(cr, dx, dy, width * scale, height * scale);
    cairo_stroke(cr);
}

static enum cxr_status draw_images(struct page *page, const struct cxr_gray8 *source,
                                   const struct cxr_rgb8 *heatmap, struct cxr_err *err)
{
    cairo_t *cr = page->cr;
    const double gap = 16, box = (CONTENT - gap) / 2;
    draw_text(cr, "Source image", 9.5, true, MARGIN, page->y, box, ALIGN_CENTER, 1);
    draw_text(cr, heatmap ? "Heatmap overlay (present findings)" : "Heatmap", 9.5, true,
              MARGIN + box + gap, page->y, box, ALIGN_CENTER, 1);
    page->y += 15;
    cairo_surface_t *surface = NULL;
    enum cxr_status status =
            cxr_report_surface_from_pixels(source->pixels, 1, source->width, source->height,
                                           CXR_REPORT_PDF_IMAGE_MAX_SIDE, &surface, err);
    if (status != CXR_OK)
        return status;
    page->images[0] = surface;
    draw_image(cr, surface, source->width, source->height, MARGIN, page->y, box);
    if (heatmap) {
        status = cxr_report_surface_from_pixels(heatmap->pixels, 3, heatmap->width, heatmap->height,
                                                CXR_REPORT_PDF_IMAGE_MAX_SIDE, &surface, err);
        if (status != CXR_OK)
            return status;
        page->images[1] = surface;
        draw_image(cr, surface, heatmap->width, heatmap->height, MARGIN + box + gap, page->y, box);
    } else {
        cairo_set_line_width(cr, 0.6);
        cairo_set_dash(cr, (const double[]){3, 3}, 2, 0);
        cairo_rectangle(cr, MARGIN + box + gap, page->y, box, box);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        draw_text(cr, "No heatmap: result Normal", 10, false, MARGIN + box + gap,
                  page->y + box / 2 - 7, box, ALIGN_CENTER, 1);
    }
    page->y += box + 10;
    return CXR_OK;
}

static void draw_footer(struct page *page, const struct cxr_report_info *info)
{
    cairo_t *cr = page->cr;
    char line[512];
    snprintf(line, sizeof(line), "Model version: %s      Report time: %s",
             or_empty(info->model_version), or_empty(info->report_time));
    draw_text(cr, line, 8.5, false, MARGIN, page->y, CONTENT, ALIGN_LEFT, 2);
    /* The disclaimer sits at the bottom of the page whatever the content above. */
    double y = PAGE_HEIGHT - MARGIN - 44;
    rule(cr, y - 6, 0.8);
    draw_text(cr,
              "This result is AI-generated decision support. It must be reviewed by a qualified "
              "reader before any clinical use and does not replace a diagnosis. This software is "
              "not a medical device.",
              8.5, true, MARGIN, y, CONTENT, ALIGN_LEFT, 4);
}

/* cairo does not reliably report a failed write through the surface status, so the stream
 * remembers it. */
struct pdf_stream {
    struct cxr_buf *out;
    enum cxr_status status;
};

static cairo_status_t append_to_buf(void *closure, const unsigned char *data, unsigned int length)
{
    struct pdf_stream *stream = closure;
    if (stream->status == CXR_OK)
        stream->status = cxr_buf_append(stream->out, data, length);
    return stream->status == CXR_OK ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

enum cxr_status cxr_report_pdf(const struct cxr_report_info *info,
                               const struct cxr_prediction *prediction,
                               const struct cxr_gray8 *source, const struct cxr_rgb8 *heatmap,
                               struct cxr_buf *out, struct cxr_err *err)
{
    if (info == NULL || prediction == NULL || out == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "report: missing argument");
    if (source == NULL || source->pixels == NULL || source->width == 0 || source->height == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "report: empty source image");
    if (heatmap && (heatmap->pixels == NULL || heatmap->width == 0 || heatmap->height == 0))
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "report: empty heatmap image");

    size_t start = out->len;
    struct pdf_stream stream = {out, CXR_OK};
    cairo_surface_t *surface =
            cairo_pdf_surface_create_for_stream(append_to_buf, &stream, PAGE_WIDTH, PAGE_HEIGHT);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surface);
        return cxr_err_set(err, CXR_ERR_NOMEM, "cairo: cannot create the PDF surface");
    }
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE,
                                   "Chest X-ray AI analysis report");
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "cxrd");
    cairo_t *cr = cairo_create(surface);
    cairo_set_source_rgb(cr, 0, 0, 0);
    struct page page = {cr, MARGIN, {NULL, NULL}};
    draw_header(&page, info);
    draw_details(&page, info);
    draw_result(&page, prediction);
    draw_findings(&page, prediction);
    enum cxr_status status = draw_images(&page, source, heatmap, err);
    if (status == CXR_OK)
        draw_footer(&page, info);
    cairo_status_t drawn = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(surface);
    cairo_status_t written = cairo_surface_status(surface);
    cairo_surface_destroy(surface);
    cairo_surface_destroy(page.images[0]); /* NULL is a no-op in cairo */
    cairo_surface_destroy(page.images[1]);
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
