/* Shared between the PDF page layout and its image preparation; not part of report.h. */
#ifndef CXR_REPORT_PDF_INTERNAL_H
#define CXR_REPORT_PDF_INTERNAL_H

#include <cairo.h>
#include <stdint.h>

#include "report/report.h"

/* Longest side, in pixels, of an image embedded in the PDF: about 300 dpi at the printed size
 * (3.4 inches), which keeps the PDF small and quick to write. */
#define CXR_REPORT_PDF_IMAGE_MAX_SIDE 1000

/* A new RGB24 cairo surface holding the image (channels 1 = grey, 3 = RGB), shrunk by area
 * averaging so that its longest side is at most max_side; never enlarged. */
enum cxr_status cxr_report_surface_from_pixels(const uint8_t *pixels, uint32_t channels,
                                               uint32_t width, uint32_t height, uint32_t max_side,
                                               cairo_surface_t **surface, struct cxr_err *err);

#endif
