/* The PDF's findings table, the key to its maps, and the maps themselves: the source image and
 * one small overlay per present finding (small multiples, each labelled and scaled on its own),
 * laid out as the largest grid that fills the space left on the page. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "report/report_pdf_internal.h"

#define LABEL_LINE 10.5 /* height of a line of a tile's label */
#define GAP        8.0  /* between tiles */
/* Tiles narrower than this get two label lines: "Pleural Thickening 14.6 %" needs ~130 pt. */
#define NARROW 150.0

/* A finding whose threshold is above 1 can never be present: the model (or the site) has
 * switched it off, e.g. an unvalidated finding. Its confidence means nothing to a reader. */
static bool not_assessed(const struct cxr_finding *finding)
{
    return finding->threshold > 1.0;
}

double cxr_report_pdf_findings(struct cxr_report_page *page,
                               const struct cxr_prediction *prediction, double x, double width)
{
    cairo_t *cr = page->cr;
    const double columns[4] = {x + 5, x + width * 0.42, x + width * 0.6, x + width * 0.77};
    const double widths[4] = {width * 0.42 - 8, width * 0.18 - 4, width * 0.17 - 4,
                              width * 0.23 - 4};
    const char *heads[4] = {"Finding", "Confidence", "Threshold", "Present"};
    const double row = 13.5;
    double top = page->y, y = top;
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_rectangle(cr, x, y, width, row + 2);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (int c = 0; c < 4; c++)
        cxr_report_pdf_text(cr, heads[c], 8.5, true, columns[c], y + 2.5, widths[c],
                            CXR_REPORT_ALIGN_START, 1);
    y += row + 2;
    for (int k = 0; k < CXR_FINDING_COUNT; k++) {
        const struct cxr_finding *finding = &prediction->findings[k];
        char confidence[32], threshold[32];
        cxr_report_percent_pair(finding->confidence, finding->threshold, confidence, threshold);
        bool off = not_assessed(finding);
        const char *cells[4] = {finding->name ? finding->name : cxr_model_finding_names[k],
                                off ? "—" : confidence, off ? "—" : threshold,
                                off                 ? "not assessed"
                                : finding->presence ? "Yes"
                                                    : "No"};
        if (off)
            cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
        for (int c = 0; c < 4; c++)
            cxr_report_pdf_text(cr, cells[c], 8.5, finding->presence, columns[c], y + 2, widths[c],
                                CXR_REPORT_ALIGN_START, 1);
        cairo_set_source_rgb(cr, 0, 0, 0);
        y += row;
        cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
        cairo_set_line_width(cr, 0.4);
        cairo_move_to(cr, x, y);
        cairo_line_to(cr, x + width, y);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
    }
    return y - top;
}

double cxr_report_pdf_key(cairo_t *cr, double x, double y, double width)
{
    double top = y;
    y += cxr_report_pdf_text(cr, "Reading the maps", 9, true, x, y, width, CXR_REPORT_ALIGN_START,
                             1) +
         3;
    y += cxr_report_pdf_text(
                 cr,
                 "Each map shows where the network found evidence for one present finding. It "
                 "is scaled on its own: clear at the map's median inside the body, brightest "
                 "at its maximum, so colours compare places within one map, not findings or "
                 "images. Outside the body (air, collimation, labels) nothing is coloured. A "
                 "map is not a diagnosis or a lesion outline.",
                 7.2, false, x, y, width, CXR_REPORT_ALIGN_START, 12) +
         5;
    /* The colour bar as vector strips of the overlay's own colours over mid grey. */
    uint8_t table[256][3];
    cxr_report_colorbar_fill(table);
    const int strips = 64;
    double bar_height = 9, strip = width / strips;
    for (int i = 0; i < strips; i++) {
        const uint8_t *rgb = table[i * 255 / (strips - 1)];
        cairo_set_source_rgb(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
        cairo_rectangle(cr, x + i * strip, y, strip + 0.3, bar_height); /* overlap: no seams */
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    y += bar_height + 1.5;
    cxr_report_pdf_text(cr, "median", 7, false, x, y, width / 2, CXR_REPORT_ALIGN_START, 1);
    cxr_report_pdf_text(cr, "maximum", 7, false, x + width / 2, y, width / 2, CXR_REPORT_ALIGN_END,
                        1);
    return y + 9 - top;
}

/* Draws an image of width x height pixels at (x, y), box points wide (the height follows the
 * aspect ratio), with a thin frame. surface is the 1 x 1 JPEG carrier of report_image.c, so
 * the scale maps its unit square onto the printed rectangle. */
static void draw_image(cairo_t *cr, cairo_surface_t *surface, double width, double height, double x,
                       double y, double box)
{
    double scale = box / width;
    double dx = x, dy = y;
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

/* The tile width that fits count tiles of the image's shape (height = aspect * width) into
 * width x height best, and the columns it needs. */
static double grid_fit(int count, double aspect, double width, double height, double label,
                       int *columns)
{
    double best = 0;
    *columns = 1;
    for (int c = 1; c <= count; c++) {
        int rows = (count + c - 1) / c;
        double across = (width - (c - 1) * GAP) / c;
        double down = (height - rows * label - (rows - 1) * GAP) / rows / aspect;
        double side = across < down ? across : down;
        if (side > best) {
            best = side;
            *columns = c;
        }
    }
    return best;
}

enum cxr_status cxr_report_pdf_maps(struct cxr_report_page *page,
                                    const struct cxr_prediction *prediction,
                                    const struct cxr_gray8 *source, double bottom,
                                    struct cxr_err *err)
{
    cairo_t *cr = page->cr;
    /* Tiles: the source, then the finding the API heatmap shows, then the others in order. */
    int order[CXR_FINDING_COUNT], count = 0;
    int first = cxr_report_finding_pick(prediction);
    if (first >= 0)
        order[count++] = first;
    for (int k = 0; k < CXR_FINDING_COUNT; k++) {
        if (k != first && prediction->findings[k].presence)
            order[count++] = k;
    }
    int columns = 1;
    double aspect = (double)source->height / source->width;
    int label_lines = 1;
    double label = LABEL_LINE + 1.5;
    double side =
            grid_fit(count + 1, aspect, CXR_REPORT_CONTENT, bottom - page->y, label, &columns);
    if (side < NARROW) {
        label_lines = 2;
        label = 2 * LABEL_LINE + 1.5;
        side = grid_fit(count + 1, aspect, CXR_REPORT_CONTENT, bottom - page->y, label, &columns);
    }
    if (side < 40)
        return cxr_err_set(err, CXR_ERR_INTERNAL, "report: no room for the images on the page");
    int rows = (count + 1 + columns - 1) / columns;
    double used_width = columns * side + (columns - 1) * GAP;
    double used_height = rows * (side * aspect + label) + (rows - 1) * GAP;
    double left = CXR_REPORT_MARGIN + (CXR_REPORT_CONTENT - used_width) / 2;
    page->y +=
            (bottom - page->y - used_height) / 2; /* any slack above and below, not in one band */

    cairo_surface_t *surface = NULL;
    enum cxr_status status =
            cxr_report_surface_from_pixels(source->pixels, 1, source->width, source->height,
                                           CXR_REPORT_PDF_IMAGE_MAX_SIDE, &surface, err);
    if (status != CXR_OK)
        return status;
    page->images[page->image_count++] = surface;
    cxr_report_pdf_text(cr, count ? "Source image" : "Source image (no finding present: no maps)",
                        8.5, true, left, page->y, side, CXR_REPORT_ALIGN_CENTER, 1);
    draw_image(cr, surface, source->width, source->height, left, page->y + label, side);
    if (count == 0)
        return CXR_OK;

    struct cxr_report_mask mask = {0};
    struct cxr_gray8 small = {0};
    status = cxr_report_mask_compute(source, &mask, err);
    if (status == CXR_OK)
        status = cxr_report_gray_shrink(source, CXR_REPORT_PDF_MAP_MAX_SIDE, &small, err);
    for (int i = 0; i < count && status == CXR_OK; i++) {
        int tile = i + 1, k = order[i];
        double x = left + (tile % columns) * (side + GAP);
        double y = page->y + (tile / columns) * (side * aspect + label + GAP);
        struct cxr_rgb8 overlay = {0};
        status = cxr_report_overlay(&small, prediction, k, &mask, &overlay, err);
        if (status != CXR_OK)
            break;
        status = cxr_report_surface_from_pixels(overlay.pixels, 3, overlay.width, overlay.height,
                                                CXR_REPORT_PDF_MAP_MAX_SIDE, &surface, err);
        free(overlay.pixels);
        if (status != CXR_OK)
            break;
        page->images[page->image_count++] = surface;
        char text[96];
        const char *name = prediction->findings[k].name;
        snprintf(text, sizeof text, "%s%s%.1f %%", name ? name : cxr_model_finding_names[k],
                 label_lines == 2 ? "\n" : " ", prediction->findings[k].confidence * 100.0);
        /* Narrow tiles: the name on one line, its confidence under it, on every tile alike. */
        cxr_report_pdf_text(cr, text, 8.5, true, x, y, side, CXR_REPORT_ALIGN_CENTER, label_lines);
        draw_image(cr, surface, small.width, small.height, x, y + label, side);
    }
    cxr_report_mask_release(&mask);
    free(small.pixels);
    return status;
}
