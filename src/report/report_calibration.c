/* The calibration report of `cxrd calibrate`: one A4 page (cairo + pango) with the ROC curve,
 * sensitivity and specificity against the threshold, the score distributions of the site's
 * positives and negatives, the chosen and the model's own operating points marked on each, a
 * table of operating points and the [thresholds] section to paste. Vector drawing throughout. */
#include <cairo-pdf.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <string.h>

#include "report/report_pdf_internal.h"

#define PAGE_WIDTH  CXR_REPORT_PAGE_WIDTH
#define PAGE_HEIGHT CXR_REPORT_PAGE_HEIGHT
#define MARGIN      CXR_REPORT_MARGIN
#define CONTENT     CXR_REPORT_CONTENT
#define BINS        20

/* Colours that stay apart in grey print too: positives/sensitivity dark red, negatives/
 * specificity blue, the chosen point red, the model's own point black. */
static const double red[3] = {0.75, 0.1, 0.1};
static const double blue[3] = {0.1, 0.3, 0.75};
static const double chosen_colour[3] = {0.9, 0.2, 0.0};

struct plot {
    cairo_t *cr;
    double x, y, width, height; /* the data area, in points */
    double x_min, x_max;
    double y_top; /* the value the top of the y axis stands for (tick labels only) */
};

static void colour(cairo_t *cr, const double rgb[3], double alpha)
{
    cairo_set_source_rgba(cr, rgb[0], rgb[1], rgb[2], alpha);
}

static double px(const struct plot *plot, double value)
{
    return plot->x + (value - plot->x_min) / (plot->x_max - plot->x_min) * plot->width;
}

static double py(const struct plot *plot, double value)
{
    return plot->y + plot->height - value * plot->height;
}

static void text(cairo_t *cr, const char *line, double size, bool bold, double x, double y,
                 double width, enum cxr_report_align align)
{
    cxr_report_pdf_text(cr, line, size, bold, x, y, width, align, 1);
}

/* Frame, grid, ticks at 0, 0.2, ..., 1 on both axes, title and axis names. */
static void plot_frame(struct plot *plot, const char *title, const char *x_name, const char *y_name)
{
    cairo_t *cr = plot->cr;
    cairo_set_source_rgb(cr, 0, 0, 0);
    text(cr, title, 8.5, true, plot->x - 22, plot->y - 24, plot->width + 22,
         CXR_REPORT_ALIGN_START);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    text(cr, y_name, 6.8, false, plot->x - 22, plot->y - 11, plot->width, CXR_REPORT_ALIGN_START);
    text(cr, x_name, 6.8, false, plot->x, plot->y + plot->height + 12, plot->width,
         CXR_REPORT_ALIGN_CENTER);
    cairo_set_line_width(cr, 0.3);
    for (int i = 0; i <= 5; i++) {
        double value = i / 5.0;
        double xv = plot->x_min + value * (plot->x_max - plot->x_min);
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, px(plot, xv), plot->y);
        cairo_line_to(cr, px(plot, xv), plot->y + plot->height);
        cairo_move_to(cr, plot->x, py(plot, value));
        cairo_line_to(cr, plot->x + plot->width, py(plot, value));
        cairo_stroke(cr);
        char label[16];
        cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
        snprintf(label, sizeof label, plot->x_max - plot->x_min < 0.5 ? "%.2f" : "%.1f", xv);
        text(cr, label, 6, false, px(plot, xv) - 15, plot->y + plot->height + 2, 30,
             CXR_REPORT_ALIGN_CENTER);
        snprintf(label, sizeof label, "%.2g", value * plot->y_top);
        text(cr, label, 6, false, plot->x - 33, py(plot, value) - 4, 30, CXR_REPORT_ALIGN_END);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 0.6);
    cairo_rectangle(cr, plot->x, plot->y, plot->width, plot->height);
    cairo_stroke(cr);
}

static void marker(cairo_t *cr, double x, double y, bool square, const double rgb[3])
{
    cairo_set_line_width(cr, 1.2);
    if (square)
        cairo_rectangle(cr, x - 3, y - 3, 6, 6);
    else
        cairo_arc(cr, x, y, 3.5, 0, 2 * M_PI);
    colour(cr, rgb, 1);
    cairo_stroke(cr);
}

static void vertical(const struct plot *plot, double value, const double rgb[3], bool dashed)
{
    cairo_t *cr = plot->cr;
    if (!(value >= plot->x_min && value <= plot->x_max))
        return;
    static const double dashes[2] = {3, 2};
    cairo_set_dash(cr, dashes, dashed ? 2 : 0, 0);
    cairo_set_line_width(cr, 0.9);
    colour(cr, rgb, 1);
    cairo_move_to(cr, px(plot, value), plot->y);
    cairo_line_to(cr, px(plot, value), plot->y + plot->height);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
}

static const double black[3] = {0, 0, 0};

/* The ROC curve through every distinct threshold, from (0,0) (nothing positive) to (1,1). */
static void draw_roc(struct plot *plot, const struct cxr_calibration *calibration)
{
    char title[128];
    snprintf(title, sizeof title, "ROC curve: AUC %.3f (95%% CI %.3f-%.3f)", calibration->auc.value,
             calibration->auc.low, calibration->auc.high);
    plot_frame(plot, title, "1 - specificity (false-positive rate)", "sensitivity");
    cairo_t *cr = plot->cr;
    static const double dashes[2] = {2, 2};
    cairo_set_dash(cr, dashes, 2, 0);
    cairo_set_line_width(cr, 0.5);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_move_to(cr, px(plot, 0), py(plot, 0));
    cairo_line_to(cr, px(plot, 1), py(plot, 1));
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    cairo_set_line_width(cr, 1.2);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, px(plot, 0), py(plot, 0));
    for (size_t i = calibration->point_count; i-- > 0;) {
        const struct cxr_calibration_point *point = &calibration->points[i];
        cairo_line_to(cr, px(plot, 1 - point->specificity.value),
                      py(plot, point->sensitivity.value));
    }
    cairo_stroke(cr);
    const struct cxr_calibration_point *chosen = &calibration->points[calibration->chosen];
    marker(cr, px(plot, 1 - calibration->model_point.specificity.value),
           py(plot, calibration->model_point.sensitivity.value), true, black);
    marker(cr, px(plot, 1 - chosen->specificity.value), py(plot, chosen->sensitivity.value), false,
           chosen_colour);
}

/* One metric as a step function of the threshold, with its 95 % band. */
static void metric_curve(struct plot *plot, const struct cxr_calibration *calibration,
                         bool sensitivity, const double rgb[3])
{
    cairo_t *cr = plot->cr;
    size_t count = calibration->point_count;
    /* Between two distinct scores the metric is that of the higher one (presence is score >=
     * threshold); below the lowest it is that of the lowest, above the highest nothing is
     * called positive. */
    for (int band = 1; band >= 0; band--) {
        for (int pass = 0; pass < (band ? 2 : 1); pass++) {
            double previous = 0;
            for (size_t i = 0; i <= count; i++) {
                const struct cxr_calibration_point *point =
                        i < count ? &calibration->points[i] : NULL;
                const struct cxr_calibration_interval *value =
                        point ? (sensitivity ? &point->sensitivity : &point->specificity) : NULL;
                double y = value ? (band ? (pass ? value->high : value->low) : value->value)
                                 : (sensitivity ? 0 : 1);
                double x_end = point ? point->threshold : plot->x_max;
                if (i == 0)
                    cairo_move_to(cr, px(plot, plot->x_min), py(plot, y));
                else
                    cairo_line_to(cr, px(plot, previous), py(plot, y));
                cairo_line_to(cr, px(plot, x_end), py(plot, y));
                previous = x_end;
            }
            cairo_line_to(cr, px(plot, plot->x_max), py(plot, sensitivity ? 0 : 1));
            colour(cr, rgb, band ? 0.35 : 1);
            cairo_set_line_width(cr, band ? 0.5 : 1.2);
            cairo_stroke(cr);
        }
    }
}

static void draw_threshold_plot(struct plot *plot, const struct cxr_calibration *calibration)
{
    plot_frame(plot, "Sensitivity and specificity against the threshold", "threshold",
               "thin lines: 95% CI");
    metric_curve(plot, calibration, true, red);
    metric_curve(plot, calibration, false, blue);
    cairo_t *cr = plot->cr;
    static const double dots[2] = {1, 2};
    cairo_set_dash(cr, dots, 2, 0);
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
    cairo_set_line_width(cr, 0.6);
    double target = calibration->options.target_sensitivity;
    cairo_move_to(cr, plot->x, py(plot, target));
    cairo_line_to(cr, plot->x + plot->width, py(plot, target));
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    vertical(plot, calibration->options.model_threshold, black, true);
    vertical(plot, calibration->chosen_threshold, chosen_colour, false);
    const struct cxr_calibration_point *chosen = &calibration->points[calibration->chosen];
    marker(cr, px(plot, calibration->chosen_threshold), py(plot, chosen->sensitivity.value), false,
           chosen_colour);
    marker(cr, px(plot, calibration->chosen_threshold), py(plot, chosen->specificity.value), false,
           chosen_colour);
    /* The key sits above the frame, clear of the curves. */
    colour(cr, red, 1);
    text(cr, "sensitivity", 6.8, true, plot->x + plot->width - 100, plot->y - 11, 50,
         CXR_REPORT_ALIGN_END);
    colour(cr, blue, 1);
    text(cr, "specificity", 6.8, true, plot->x + plot->width - 50, plot->y - 11, 50,
         CXR_REPORT_ALIGN_END);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    char line[64];
    snprintf(line, sizeof line, "target %.2f", target);
    text(cr, line, 6.2, false, plot->x + 3, py(plot, target) - 9, 80, CXR_REPORT_ALIGN_START);
}

/* Histograms over [0, 1] of each class, as shares of the class, overlaid as outlines. */
static void draw_distributions(struct plot *plot, const struct cxr_calibration *calibration)
{
    double shares[2][BINS] = {{0}};
    double span = plot->x_max - plot->x_min;
    for (size_t i = 0; i < calibration->study_count; i++) {
        const struct cxr_calibration_study *study = &calibration->studies[i];
        int bin = (int)((study->score - plot->x_min) / span * BINS);
        bin = bin < 0 ? 0 : bin >= BINS ? BINS - 1 : bin;
        shares[study->label ? 1 : 0][bin] += 1;
    }
    double peak = 0;
    for (int c = 0; c < 2; c++) {
        double total = c ? (double)calibration->positives : (double)calibration->negatives;
        for (int b = 0; b < BINS; b++) {
            shares[c][b] /= total;
            peak = shares[c][b] > peak ? shares[c][b] : peak;
        }
    }
    /* The y axis ends at the tallest bar, rounded up to a tenth. */
    double top = ceil(peak * 10) / 10;
    top = top <= 0 ? 1 : top;
    plot->y_top = top;
    char name[96];
    snprintf(name, sizeof name, "share per bin of %.3g", span / BINS);
    plot_frame(plot, "Score distributions", "model score (confidence)", name);
    cairo_t *cr = plot->cr;
    for (int c = 0; c < 2; c++) {
        const double *rgb = c ? red : blue;
        for (int b = 0; b < BINS; b++) {
            double height = shares[c][b] / top;
            cairo_rectangle(cr, px(plot, plot->x_min + span * b / BINS), py(plot, height),
                            plot->width / BINS, height * plot->height);
        }
        colour(cr, rgb, 0.22);
        cairo_fill_preserve(cr);
        colour(cr, rgb, 1);
        cairo_set_line_width(cr, 0.8);
        cairo_stroke(cr);
    }
    vertical(plot, calibration->options.model_threshold, black, true);
    vertical(plot, calibration->chosen_threshold, chosen_colour, false);
    char line[96];
    colour(cr, red, 1);
    snprintf(line, sizeof line, "positives (%zu)", calibration->positives);
    text(cr, line, 6.8, true, plot->x + plot->width - 140, plot->y - 11, 70, CXR_REPORT_ALIGN_END);
    colour(cr, blue, 1);
    snprintf(line, sizeof line, "negatives (%zu)", calibration->negatives);
    text(cr, line, 6.8, true, plot->x + plot->width - 70, plot->y - 11, 70, CXR_REPORT_ALIGN_END);
}

static void cell_interval(char *out, size_t size, const struct cxr_calibration_interval *value,
                          int digits)
{
    if (isnan(value->value))
        snprintf(out, size, "—");
    else
        snprintf(out, size, "%.*f (%.*f–%.*f)", digits, value->value, digits, value->low, digits,
                 value->high);
}

/* Operating points: the chosen one, the model's own, and round thresholds 0.1 ... 0.9. */
static double draw_table(cairo_t *cr, const struct cxr_calibration *calibration, double y)
{
    const char *heads[7] = {"Threshold", "Sensitivity",      "Specificity",   "PPV",
                            "NPV",       "Sent for testing", "Tests per case"};
    const double shares[7] = {0.118, 0.147, 0.147, 0.147, 0.147, 0.147, 0.147};
    const double row = 10.5;
    double x = MARGIN;
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_rectangle(cr, MARGIN, y, CONTENT, row + 1);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (int c = 0; c < 7; c++) {
        text(cr, heads[c], 6.8, true, x + 2, y + 1.5, CONTENT * shares[c] - 4,
             CXR_REPORT_ALIGN_START);
        x += CONTENT * shares[c];
    }
    y += row + 1;
    const struct cxr_calibration_point *rows[12];
    char labels[12][48];
    int count = 0;
    snprintf(labels[count], sizeof labels[count], "%s chosen", calibration->chosen_text);
    rows[count++] = &calibration->points[calibration->chosen];
    snprintf(labels[count], sizeof labels[count], "%.4g model's",
             calibration->model_point.threshold);
    rows[count++] = &calibration->model_point;
    for (size_t r = 0; r < CXR_CALIBRATION_ROUND_COUNT && count < 12; r++) {
        double threshold = cxr_calibration_round_thresholds[r];
        int tenths = (int)lround(threshold * 10);
        if (fabs(threshold * 10 - tenths) > 1e-9)
            continue;
        snprintf(labels[count], sizeof labels[count], "%.1f", threshold);
        rows[count++] = &calibration->round_points[r];
    }
    for (int i = 0; i < count; i++) {
        const struct cxr_calibration_point *point = rows[i];
        char cells[7][64];
        memcpy(cells[0], labels[i], sizeof labels[i]);
        cell_interval(cells[1], sizeof cells[1], &point->sensitivity, 3);
        cell_interval(cells[2], sizeof cells[2], &point->specificity, 3);
        cell_interval(cells[3], sizeof cells[3], &point->ppv, 3);
        cell_interval(cells[4], sizeof cells[4], &point->npv, 3);
        cell_interval(cells[5], sizeof cells[5], &point->tested_share, 3);
        cell_interval(cells[6], sizeof cells[6], &point->tests_per_case, 2);
        if (i == 0)
            colour(cr, chosen_colour, 1);
        x = MARGIN;
        for (int c = 0; c < 7; c++) {
            text(cr, cells[c], 6.3, false, x + 2, y + 1.5, CONTENT * shares[c] - 4,
                 CXR_REPORT_ALIGN_START);
            x += CONTENT * shares[c];
        }
        cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
        cairo_set_line_width(cr, 0.3);
        cairo_move_to(cr, MARGIN, y + row);
        cairo_line_to(cr, MARGIN + CONTENT, y + row);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        y += row;
    }
    return y;
}

static void draw_page(cairo_t *cr, const struct cxr_report_calibration_info *info,
                      const struct cxr_calibration *calibration)
{
    double y = MARGIN;
    char line[1024];
    snprintf(line, sizeof line, "Site calibration: %s", info->finding);
    text(cr, line, 14, true, MARGIN, y, CONTENT * 0.6, CXR_REPORT_ALIGN_START);
    snprintf(line, sizeof line, "cxrd calibrate, %s", info->date);
    text(cr, line, 9.5, false, MARGIN + CONTENT * 0.6, y + 3, CONTENT * 0.4, CXR_REPORT_ALIGN_END);
    y += 22;
    cairo_set_line_width(cr, 1.2);
    cairo_move_to(cr, MARGIN, y);
    cairo_line_to(cr, MARGIN + CONTENT, y);
    cairo_stroke(cr);
    y += 5;
    snprintf(line, sizeof line,
             "Model version %s. Labels: %s. Analysed %zu studies: %zu positive, %zu negative "
             "(prevalence %.1f %%); %zu rows left out. Target sensitivity %.2f. Bootstrap: %u "
             "resamples of the studies with replacement, seed %llu, 95 %% percentile intervals.",
             info->model_version, info->labels_path, calibration->study_count,
             calibration->positives, calibration->negatives,
             100.0 * (double)calibration->positives / (double)calibration->study_count,
             info->left_out, calibration->options.target_sensitivity,
             calibration->options.replicates, (unsigned long long)calibration->options.seed);
    y += cxr_report_pdf_text(cr, line, 7.5, false, MARGIN, y, CONTENT, CXR_REPORT_ALIGN_START, 4) +
         6;

    /* The chosen point, in a box. */
    const struct cxr_calibration_point *chosen = &calibration->points[calibration->chosen];
    char sensitivity[64], specificity[64], ppv[64], tested[64];
    cell_interval(sensitivity, sizeof sensitivity, &chosen->sensitivity, 3);
    cell_interval(specificity, sizeof specificity, &chosen->specificity, 3);
    cell_interval(ppv, sizeof ppv, &chosen->ppv, 3);
    cell_interval(tested, sizeof tested, &chosen->tested_share, 3);
    snprintf(line, sizeof line,
             "Chosen threshold %s (red): of the thresholds whose sensitivity reaches %.2f, the "
             "one with the highest specificity, then the highest sensitivity. Sensitivity %s, "
             "specificity %s, PPV %s, share sent for confirmatory testing %s. The model's own "
             "threshold %.4g (black) gives sensitivity %.3f, specificity %.3f on these studies.",
             calibration->chosen_text, calibration->options.target_sensitivity, sensitivity,
             specificity, ppv, tested, calibration->model_point.threshold,
             calibration->model_point.sensitivity.value,
             calibration->model_point.specificity.value);
    double box_top = y;
    double used = cxr_report_pdf_text(cr, line, 8.5, false, MARGIN + 8, y + 5, CONTENT - 16,
                                      CXR_REPORT_ALIGN_START, 4);
    cairo_set_source_rgb(cr, 1.0, 0.93, 0.88);
    cairo_rectangle(cr, MARGIN, box_top, CONTENT, used + 10);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cxr_report_pdf_text(cr, line, 8.5, false, MARGIN + 8, y + 5, CONTENT - 16,
                        CXR_REPORT_ALIGN_START, 4);
    cairo_set_line_width(cr, 0.8);
    cairo_rectangle(cr, MARGIN, box_top, CONTENT, used + 10);
    cairo_stroke(cr);
    y += used + 10 + 34;

    /* Two rows of plots: ROC and threshold plot, then distributions beside the section. */
    double side = (CONTENT - 60) / 2;
    double height = 185;
    /* Threshold axes span the scores (and the model's own threshold) to the nearest tenth, so
     * scores bunched in a narrow band still spread over the plot. */
    double low = calibration->studies[0].score;
    double high = calibration->studies[calibration->study_count - 1].score;
    double own = calibration->options.model_threshold;
    if (own >= 0 && own <= 1) {
        low = own < low ? own : low;
        high = own > high ? own : high;
    }
    low = floor(low * 10) / 10;
    high = ceil(high * 10) / 10;
    if (high <= low)
        high = low + 0.1;
    if (high > 1)
        high = 1, low = low > 0.9 ? 0.9 : low;
    struct plot roc = {cr, MARGIN + 26, y, side, height, 0, 1, 1};
    struct plot by_threshold = {cr, MARGIN + 26 + side + 34, y, side, height, low, high, 1};
    draw_roc(&roc, calibration);
    draw_threshold_plot(&by_threshold, calibration);
    y += height + 58;
    struct plot distributions = {cr, MARGIN + 26, y, side, height, low, high, 1};
    draw_distributions(&distributions, calibration);

    double section_x = MARGIN + 26 + side + 34, section_width = CONTENT - (section_x - MARGIN);
    double sy = y - 24;
    cairo_set_source_rgb(cr, 0, 0, 0);
    text(cr, "Paste into the config", 8.5, true, section_x, sy, section_width,
         CXR_REPORT_ALIGN_START);
    sy += 14;
    /* The section's own lines, in a monospace face (pango markup is avoided: the text is the
     * site's path). */
    PangoLayout *layout = pango_cairo_create_layout(cr);
    PangoFontDescription *font = pango_font_description_from_string("DejaVu Sans Mono");
    pango_font_description_set_absolute_size(font, 6.3 * PANGO_SCALE);
    pango_layout_set_font_description(layout, font);
    pango_layout_set_width(layout, (int)(section_width * PANGO_SCALE));
    pango_layout_set_wrap(layout, PANGO_WRAP_CHAR);
    pango_layout_set_text(layout, info->section ? info->section : "", -1);
    cairo_move_to(cr, section_x, sy);
    pango_cairo_show_layout(cr, layout);
    int layout_width = 0, layout_height = 0;
    pango_layout_get_size(layout, &layout_width, &layout_height);
    pango_font_description_free(font);
    g_object_unref(layout);
    sy += (double)layout_height / PANGO_SCALE + 8;
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cxr_report_pdf_text(cr,
                        "Marks: red circle and line, the chosen threshold; black square and "
                        "dashed line, the model's own threshold; dotted line, the target "
                        "sensitivity. Re-run cxrd calibrate whenever the model changes: the "
                        "server refuses a section made for another model version.",
                        7, false, section_x, sy, section_width, CXR_REPORT_ALIGN_START, 8);
    y += height + 30;

    cairo_set_source_rgb(cr, 0, 0, 0);
    text(cr, "Operating points (95 % CI)", 8.5, true, MARGIN, y, CONTENT, CXR_REPORT_ALIGN_START);
    y = draw_table(cr, calibration, y + 13);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cxr_report_pdf_text(cr,
                        "PPV, NPV, the share sent for testing and the tests per case found "
                        "assume the prevalence of this set is that of the screened population. "
                        "Decision support only; this software is not a medical device.",
                        7, false, MARGIN, y + 4, CONTENT, CXR_REPORT_ALIGN_START, 2);
}

enum cxr_status cxr_report_calibration_pdf(const struct cxr_report_calibration_info *info,
                                           const struct cxr_calibration *calibration,
                                           struct cxr_buf *out, struct cxr_err *err)
{
    if (info == NULL || calibration == NULL || out == NULL || calibration->point_count == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "report: missing argument");
    size_t start = out->len;
    struct cxr_report_pdf_stream stream = {out, CXR_OK};
    cairo_surface_t *surface = cairo_pdf_surface_create_for_stream(
            cxr_report_pdf_stream_write, &stream, PAGE_WIDTH, PAGE_HEIGHT);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surface);
        return cxr_err_set(err, CXR_ERR_NOMEM, "cairo: cannot create the PDF surface");
    }
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, "cxrd site calibration");
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "cxrd");
    cairo_t *cr = cairo_create(surface);
    cairo_set_source_rgb(cr, 0, 0, 0);
    draw_page(cr, info, calibration);
    cairo_status_t drawn = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(surface);
    cairo_status_t written = cairo_surface_status(surface);
    cairo_surface_destroy(surface);
    enum cxr_status status = CXR_OK;
    if (drawn != CAIRO_STATUS_SUCCESS)
        status = cxr_err_set(err, CXR_ERR_INTERNAL, "cairo: %s", cairo_status_to_string(drawn));
    else if (stream.status != CXR_OK)
        status = cxr_err_set(err, stream.status, "report: out of memory writing the PDF");
    else if (written != CAIRO_STATUS_SUCCESS)
        status = cxr_err_set(err, CXR_ERR_INTERNAL, "cairo: %s", cairo_status_to_string(written));
    if (status != CXR_OK)
        out->len = start;
    return status;
}
