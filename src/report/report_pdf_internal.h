/* Shared between the PDF page layout and its image preparation; not part of report.h. */
#ifndef CXR_REPORT_PDF_INTERNAL_H
#define CXR_REPORT_PDF_INTERNAL_H

#include <cairo.h>
#include <stdint.h>

#include "report/report.h"

/* Longest side, in pixels, of an image embedded in the PDF: about 300 dpi at the printed size
 * (3.4 inches), which keeps the PDF small and quick to write. Images are shrunk by the smallest
 * integer factor that fits (a 2048 px image becomes 1024 px, a 3000 px one 1000 px). */
#define CXR_REPORT_PDF_IMAGE_MAX_SIDE 1024

/* A cairo surface for the PDF page carrying the image (channels 1 = grey, 3 = RGB) as JPEG mime
 * data, shrunk by area averaging by the smallest integer factor that brings its longest side to
 * at most max_side (never enlarged). The surface itself is a 1 x 1 placeholder: draw it scaled
 * to the image's printed width and height, on a PDF surface only. */
enum cxr_status cxr_report_surface_from_pixels(const uint8_t *pixels, uint32_t channels,
                                               uint32_t width, uint32_t height, uint32_t max_side,
                                               cairo_surface_t **surface, struct cxr_err *err);

#endif
