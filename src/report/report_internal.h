/* Pieces of report/ exposed to its unit tests and the heatmap check only. */
#ifndef CXR_REPORT_INTERNAL_H
#define CXR_REPORT_INTERNAL_H

#include <stdint.h>

#include "report/report.h"

/* The overlay colour map: 256 sRGB entries, index 0 = coldest (near black, violet), 255 =
 * hottest (pale yellow); lightness rises linearly in Oklab. Fills table[256][3]. */
void cxr_report_colormap_fill(uint8_t table[256][3]);

/* The grey under the legends' colour bars. */
#define CXR_REPORT_BAR_GREY 128
/* The colour bar of the legends: for each heat level, the overlay's pixel over grey
 * CXR_REPORT_BAR_GREY (level 0: that grey untouched). */
void cxr_report_colorbar_fill(uint8_t table[256][3]);

/* The body mask on a grid of the source box-averaged by an integer factor (long side at most
 * CXR_REPORT_MASK_MAX_SIDE): cell (x, y) covers source pixels [x * factor, (x + 1) * factor). */
#define CXR_REPORT_MASK_MAX_SIDE 128
/* Flood limits as shares of the image's 2nd-98th percentile range: air is at most DARK above
 * the low end, a collimator band at least BRIGHT below the high end, and both are flat (local
 * standard deviation over 5 x 5 grid cells at most FLAT of the range). */
#define CXR_REPORT_MASK_DARK   0.12f
#define CXR_REPORT_MASK_BRIGHT 0.06f
#define CXR_REPORT_MASK_FLAT   0.025f
/* The flood starts from air within this many grid cells of the image edge. */
#define CXR_REPORT_MASK_RING 3

struct cxr_report_mask {
    uint32_t width, height;               /* grid size */
    uint32_t factor;                      /* source pixels per grid cell, per axis */
    uint32_t source_width, source_height; /* the image it was computed from */
    uint8_t *inside;                      /* width * height cells, 1 = body */
};

/* Computes the mask of source (see report_mask.c for the rules). On success mask owns a new
 * buffer (release with cxr_report_mask_release); an image in which the rules keep under a tenth
 * of the cells gets an all-body mask. */
enum cxr_status cxr_report_mask_compute(const struct cxr_gray8 *source,
                                        struct cxr_report_mask *mask, struct cxr_err *err);
/* Frees and zeroes; NULL is a no-op. */
void cxr_report_mask_release(struct cxr_report_mask *mask);

/* Index (API order) of the finding the API heatmap shows: Tuberculosis when present, else the
 * present finding with the largest confidence - threshold; -1 when none is present. */
int cxr_report_finding_pick(const struct cxr_prediction *prediction);

/* The displayed heat of one finding at width x height (an image of the mask's source size, or
 * a shrunk copy of it): the finding's class map scaled on its own, from its median over the
 * body's map cells (0) to its maximum there (1), clamped, upsampled bilinearly at pixel centres
 * and multiplied by the body mask upsampled the same way. Works whether or not the finding is
 * present. heat has width * height floats in [0, 1]. */
enum cxr_status cxr_report_heat_compute(const struct cxr_prediction *prediction, int finding,
                                        const struct cxr_report_mask *mask, uint32_t width,
                                        uint32_t height, float *heat, struct cxr_err *err);

/* The overlay of one finding on source (any size; the mask may come from a larger original of
 * the same image), without a legend: out receives a new source-sized RGB image. */
enum cxr_status cxr_report_overlay(const struct cxr_gray8 *source,
                                   const struct cxr_prediction *prediction, int finding,
                                   const struct cxr_report_mask *mask, struct cxr_rgb8 *out,
                                   struct cxr_err *err);

/* Maximum opacity of the colour over the source, reached where heat is 1. */
#define CXR_REPORT_HEAT_ALPHA 0.6f

/* Height in pixels of the legend strip under an API heatmap of the given width. */
uint32_t cxr_report_legend_height(uint32_t width);

/* Draws the legend strip (width x height RGB, height from cxr_report_legend_height) for the
 * finding shown: its name, confidence and threshold, the colour bar (the colour map's 256
 * entries, left to right, between colour_bar_x0 and colour_bar_x1 on rows colour_bar_y0 to
 * colour_bar_y1, returned so tests can find it) and the other present findings. */
struct cxr_report_legend_bar {
    uint32_t x0, x1, y0, y1;
};
enum cxr_status cxr_report_legend_draw(const struct cxr_prediction *prediction, int finding,
                                       uint8_t *rgb, uint32_t width, uint32_t height,
                                       struct cxr_report_legend_bar *bar, struct cxr_err *err);

/* out[i] = row[i] * gain rounded and clamped to 0..255 (resampled rows back to 8 bits). */
static inline void cxr_report_bytes_from_floats(const float *row, size_t count, float gain,
                                                uint8_t *out)
{
    for (size_t i = 0; i < count; i++) {
        float value = row[i] * gain + 0.5f;
        out[i] = value >= 255.0f ? 255 : value <= 0.0f ? 0 : (uint8_t)value;
    }
}

#endif
