/* The legend strip baked under the API heatmap, so the PNG explains itself wherever it is
 * viewed: which finding the colour shows (with its confidence and threshold), the colour bar
 * and what its ends mean, and which other findings are present (shown one per map in the PDF).
 * Text is drawn with cairo on an image surface; the colour bar is written pixel by pixel from
 * the same colour map as the overlay. */
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

/* The smallest text is 7 units high; below 9 pixels a reader cannot make it out (a 256 px
 * image, the size of every radiograph in the data folder, drew it 4.7 px high). An image too
 * narrow for the one-row layout at this size gets the stacked layout below. */
#define MIN_UNIT (9.0 / 7.0)
/* Height of the stacked layout, in units: title (2 lines), bar, its end labels, "Also
 * present" (5 lines: all ten other findings fit at 256 px). */
#define STACKED_UNITS 96.0

static uint32_t row_height(uint32_t width)
{
    uint32_t height = width / 7;
    return height < 56 ? 56 : height > 448 ? 448 : height;
}

/* The one-row layout's unit: a 384 x 56 grid scaled to the strip. */
static double row_unit(uint32_t width)
{
    return fmin(row_height(width) / 56.0, width / 384.0);
}

static bool stacked(uint32_t width)
{
    return row_unit(width) < MIN_UNIT;
}

uint32_t cxr_report_legend_height(uint32_t width)
{
    return stacked(width) ? (uint32_t)ceil(STACKED_UNITS * MIN_UNIT) : row_height(width);
}

/* Width of text in the current font. */
static double text_width(cairo_t *cr, const char *text)
{
    cairo_text_extents_t extents;
    cairo_text_extents(cr, text, &extents);
    return extents.x_advance;
}

/* Shows up to `lines` lines of text from (x, y) (top of the first line), breaking at spaces and
 * ending with an ellipsis when the text does not fit. cairo's own text API, not pango: the
 * legend is Latin text that needs no shaping, and pango releases fonts from a worker thread
 * after a call returns, which made cxr_report_shutdown abort in cairo's reset (an
 * `live_entries == 0` assertion) in short runs that draw only a legend. */
static void show_text(cairo_t *cr, const char *text, double size, bool bold, double x, double y,
                      double width, int lines)
{
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    char line[512];
    const char *rest = text;
    for (int l = 0; l < lines && *rest; l++) {
        /* The longest run of whole words that fits; a last line takes what it can. */
        size_t length = strlen(rest), fit = 0;
        for (size_t end = 0; end <= length; end++) {
            if (end != length && rest[end] != ' ')
                continue;
            if (end >= sizeof line)
                break;
            memcpy(line, rest, end);
            line[end] = '\0';
            if (text_width(cr, line) > width)
                break;
            fit = end;
        }
        bool last = l == lines - 1 || fit == length;
        if (last && fit < length) {
            /* Cut to fit with an ellipsis: drop bytes (whole UTF-8 characters) from the end. */
            size_t cut = length < sizeof line - 4 ? length : sizeof line - 4;
            for (;;) {
                while (cut > 0 && (rest[cut] & 0xC0) == 0x80)
                    cut--;
                memcpy(line, rest, cut);
                memcpy(line + cut, "\u2026", 4);
                if (cut == 0 || text_width(cr, line) <= width)
                    break;
                cut--;
            }
        } else {
            if (fit == 0) /* one word wider than the line: it takes the line anyway */
                fit = strcspn(rest, " ");
            fit = fit < sizeof line ? fit : sizeof line - 1;
            memcpy(line, rest, fit);
            line[fit] = '\0';
        }
        cairo_move_to(cr, x, y + size * (1.0 + 1.2 * l) - size * 0.2);
        cairo_show_text(cr, line);
        if (last)
            break;
        rest += fit;
        while (*rest == ' ')
            rest++;
    }
}

/* Ends drawing on a width x height cairo RGB24 surface (0x00RRGGBB words) and copies it into
 * rgb as packed RGB bytes; cr and surface are destroyed either way. */
static enum cxr_status surface_to_rgb(cairo_t *cr, cairo_surface_t *surface, uint8_t *rgb,
                                      uint32_t width, uint32_t height, const char *what,
                                      struct cxr_err *err)
{
    cairo_destroy(cr);
    cairo_surface_flush(surface);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surface);
        return cxr_err_set(err, CXR_ERR_NOMEM, "cairo: cannot draw the %s", what);
    }
    const uint8_t *data = cairo_image_surface_get_data(surface);
    int stride = cairo_image_surface_get_stride(surface);
    for (uint32_t y = 0; y < height; y++) {
        const uint32_t *row = (const uint32_t *)(const void *)(data + (size_t)y * (size_t)stride);
        uint8_t *out = rgb + (size_t)y * width * 3;
        for (uint32_t x = 0; x < width; x++) {
            out[3 * x + 0] = (uint8_t)(row[x] >> 16);
            out[3 * x + 1] = (uint8_t)(row[x] >> 8);
            out[3 * x + 2] = (uint8_t)row[x];
        }
    }
    cairo_surface_destroy(surface);
    return CXR_OK;
}

enum cxr_status cxr_report_legend_draw(const struct cxr_prediction *prediction, int finding,
                                       uint8_t *rgb, uint32_t width, uint32_t height,
                                       struct cxr_report_legend_bar *bar, struct cxr_err *err)
{
    if (prediction == NULL || rgb == NULL || finding < 0 || finding >= CXR_FINDING_COUNT ||
        width == 0 || height == 0 || width > 32767 || height > 32767)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "legend: bad arguments");
    cairo_surface_t *surface =
            cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)width, (int)height);
    cairo_t *cr = cairo_create(surface);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(cr);
        cairo_surface_destroy(surface);
        return cxr_err_set(err, CXR_ERR_NOMEM, "cairo: cannot create the legend surface");
    }
    /* Wide images: one row of a 384 x 56 unit grid scaled to the strip (title; bar with its
     * meaning beside it; other findings). Narrow ones: the same items stacked at MIN_UNIT,
     * the bar across the strip with its ends labelled under it, as in the PDF's key. */
    bool narrow = stacked(width);
    double unit = narrow ? MIN_UNIT : fmin(height / 56.0, width / 384.0);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);

    const struct cxr_finding *shown = &prediction->findings[finding];
    const char *name = shown->name ? shown->name : cxr_model_finding_names[finding];
    char line[512], confidence[32], threshold[32];
    cxr_report_percent_pair(shown->confidence, shown->threshold, confidence, threshold);
    snprintf(line, sizeof line, "%s: %s (threshold %s)", name, confidence, threshold);
    show_text(cr, line, 11 * unit, true, 6 * unit, 3 * unit, width - 12 * unit, narrow ? 2 : 1);

    double bar_x0 = 6 * unit, bar_width = fmin(width * 0.4, 256 * unit);
    double bar_y0 = 20 * unit, others_y = 33 * unit;
    int others_lines = 2;
    if (narrow) {
        bar_width = width - 12 * unit;
        bar_y0 = 30 * unit;
        others_y = 53 * unit;
        others_lines = 5;
        show_text(cr, "median in body", 7.5 * unit, false, bar_x0, 41 * unit, bar_width / 2, 1);
        /* "maximum" ends at the bar's right end */
        cairo_text_extents_t extents;
        cairo_set_font_size(cr, 7.5 * unit);
        cairo_text_extents(cr, "maximum", &extents);
        show_text(cr, "maximum", 7.5 * unit, false, bar_x0 + bar_width - extents.x_advance,
                  41 * unit, bar_width / 2, 1);
    } else {
        show_text(cr, "median of this map in the body \u2192 its maximum", 7.5 * unit, false,
                  bar_x0 + bar_width + 6 * unit, bar_y0, width - bar_x0 - bar_width - 12 * unit, 1);
    }

    size_t used = (size_t)snprintf(line, sizeof line, "Also present:");
    int others = 0;
    for (int k = 0; k < CXR_FINDING_COUNT; k++) {
        if (k == finding || !prediction->findings[k].presence)
            continue;
        const char *other = prediction->findings[k].name ? prediction->findings[k].name
                                                         : cxr_model_finding_names[k];
        if (used < sizeof line)
            used += (size_t)snprintf(line + used, sizeof line - used, "%s %s", others ? "," : "",
                                     other);
        others++;
    }
    if (others == 0)
        snprintf(line, sizeof line, "No other finding present.");
    else if (used < sizeof line)
        snprintf(line + used, sizeof line - used, " (one map each in the PDF report)");
    show_text(cr, line, 7 * unit, false, 6 * unit, others_y, width - 12 * unit, others_lines);

    enum cxr_status status = surface_to_rgb(cr, surface, rgb, width, height, "legend", err);
    if (status != CXR_OK)
        return status;

    /* The colour bar: the overlay's colours over mid grey, level rising left to right. */
    uint8_t colormap[256][3];
    cxr_report_colorbar_fill(colormap);
    uint32_t x0 = (uint32_t)lround(bar_x0), x1 = (uint32_t)lround(bar_x0 + bar_width);
    uint32_t y0 = (uint32_t)lround(bar_y0), y1 = (uint32_t)lround(bar_y0 + 10 * unit);
    x1 = x1 > width ? width : x1;
    for (uint32_t y = y0; y < y1 && y < height; y++) {
        for (uint32_t x = x0; x < x1; x++) {
            uint32_t level = x1 - x0 > 1 ? (x - x0) * 255 / (x1 - x0 - 1) : 255;
            memcpy(rgb + ((size_t)y * width + x) * 3, colormap[level], 3);
        }
    }
    if (bar)
        *bar = (struct cxr_report_legend_bar){x0, x1, y0, y1};
    return CXR_OK;
}

/* The warning band: up to this many lines of bold text, more when the image is narrow. */
#define WARNING_LINES_WIDE   3
#define WARNING_LINES_NARROW 6
#define WARNING_SIZE         8.5 /* units */

static double warning_unit(uint32_t width)
{
    return stacked(width) ? MIN_UNIT : row_unit(width);
}

static int warning_lines(uint32_t width)
{
    return stacked(width) ? WARNING_LINES_NARROW : WARNING_LINES_WIDE;
}

static uint32_t warning_band_height(uint32_t width)
{
    return (uint32_t)ceil((warning_lines(width) * 1.2 * WARNING_SIZE + 8) * warning_unit(width));
}

/* Draws the band (amber, framed in dark red like the PDF's warning box) into a new surface of
 * width x height and copies it into rgb. */
static enum cxr_status draw_warning_band(const char *warning, uint8_t *rgb, uint32_t width,
                                         uint32_t height, struct cxr_err *err)
{
    cairo_surface_t *surface =
            cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)width, (int)height);
    cairo_t *cr = cairo_create(surface);
    double unit = warning_unit(width);
    cairo_set_source_rgb(cr, 1.0, 0.95, 0.6);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0.6, 0.1, 0.0);
    cairo_set_line_width(cr, 2 * unit);
    cairo_rectangle(cr, unit, unit, width - 2 * unit, height - 2 * unit);
    cairo_stroke(cr);
    size_t end = strlen(warning), length = end + 128;
    char *text = malloc(length);
    if (text == NULL) {
        cairo_destroy(cr);
        cairo_surface_destroy(surface);
        return cxr_err_set(err, CXR_ERR_NOMEM, "warning band: out of memory");
    }
    snprintf(text, length,
             "Input check warning: %s%s The result, findings and map may not apply to this image.",
             warning, end && warning[end - 1] == '.' ? "" : ".");
    show_text(cr, text, WARNING_SIZE * unit, true, 6 * unit, 4 * unit, width - 12 * unit,
              warning_lines(width));
    free(text);
    return surface_to_rgb(cr, surface, rgb, width, height, "warning band", err);
}

enum cxr_status cxr_report_heatmap_add_warning(struct cxr_rgb8 *heatmap, const char *warning,
                                               struct cxr_err *err)
{
    if (heatmap == NULL || heatmap->pixels == NULL || heatmap->width == 0 ||
        heatmap->width > 32767 || warning == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "warning band: bad arguments");
    if (warning[0] == '\0')
        return CXR_OK;
    uint32_t band = warning_band_height(heatmap->width);
    if (heatmap->height > 32767 - band)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "warning band: image too tall");
    size_t row = (size_t)heatmap->width * 3;
    uint8_t *grown = realloc(heatmap->pixels, row * (heatmap->height + band));
    if (grown == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "warning band: out of memory");
    heatmap->pixels = grown;
    enum cxr_status status =
            draw_warning_band(warning, grown + row * heatmap->height, heatmap->width, band, err);
    if (status == CXR_OK)
        heatmap->height += band;
    return status;
}
