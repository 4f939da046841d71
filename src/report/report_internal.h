/* Pieces of report/ exposed to its unit tests only. */
#ifndef CXR_REPORT_INTERNAL_H
#define CXR_REPORT_INTERNAL_H

#include <stdint.h>

#include "report/report.h"

/* The overlay colour map: 256 sRGB entries, index 0 = coldest (near black, violet), 255 =
 * hottest (pale yellow); lightness rises linearly in Oklab. Fills table[256][3]. */
void cxr_report_colormap_fill(uint8_t table[256][3]);

/* The normalised heat map at width x height: sum over present findings of confidence * cam,
 * negative values cut to 0 (only evidence for the findings), divided by the maximum, upsampled
 * bilinearly (pixel centres, as PyTorch's align_corners=False). heat has width * height floats
 * in [0, 1]. CXR_ERR_INVALID_ARG when no finding is present or the prediction has no maps. */
enum cxr_status cxr_report_heat_compute(const struct cxr_prediction *prediction, uint32_t width,
                                        uint32_t height, float *heat, struct cxr_err *err);

/* Maximum opacity of the colour over the source, reached where heat is 1. */
#define CXR_REPORT_HEAT_ALPHA 0.6f

#endif
