/* Shared between the PDF page layout, its maps and its image preparation; not part of
 * report.h. */
#ifndef CXR_REPORT_PDF_INTERNAL_H
#define CXR_REPORT_PDF_INTERNAL_H

#include <cairo.h>
#include <stdint.h>

#include "report/report_internal.h"

/* Longest side, in pixels, of the source image embedded in the PDF: about 300 dpi at the
 * largest printed size (3.4 inches), which keeps the PDF small and quick to write. Images are
 * shrunk by the smallest integer factor that fits (a 2048 px image becomes 1024 px). */
#define CXR_REPORT_PDF_IMAGE_MAX_SIDE 1024
/* The same for each finding's overlay: printed smaller, several to a page. */
#define CXR_REPORT_PDF_MAP_MAX_SIDE 512

#define CXR_REPORT_PAGE_WIDTH  595.2756 /* A4 in PostScript points: 210 mm x 297 mm */
#define CXR_REPORT_PAGE_HEIGHT 841.8898
#define CXR_REPORT_MARGIN      36.0
#define CXR_REPORT_CONTENT     (CXR_REPORT_PAGE_WIDTH - 2 * CXR_REPORT_MARGIN)

/* The page being drawn: the next free y, and the image surfaces to destroy once the PDF is
 * finished (source + one per finding at most). */
struct cxr_report_page {
    cairo_t *cr;
    double y;
    cairo_surface_t *images[1 + CXR_FINDING_COUNT];
    int image_count;
};

/* A PDF written into a buffer: cairo's write callback. cairo does not reliably report a failed
 * write through the surface status, so the stream remembers it. */
struct cxr_report_pdf_stream {
    struct cxr_buf *out;
    enum cxr_status status;
};
cairo_status_t cxr_report_pdf_stream_write(void *closure, const unsigned char *data,
                                           unsigned int length);

enum cxr_report_align { CXR_REPORT_ALIGN_START, CXR_REPORT_ALIGN_END, CXR_REPORT_ALIGN_CENTER };

/* Draws text (UTF-8, made valid first: DICOM strings are decoded upstream but never trusted)
 * in a box of the given width, at most max_lines lines (ellipsised beyond). The paragraph
 * direction follows the text (pango's auto direction), so a right-to-left name starts at the
 * right edge of its own box. Returns the height used, in points. */
double cxr_report_pdf_text(cairo_t *cr, const char *text, double size, bool bold, double x,
                           double y, double width, enum cxr_report_align align, int max_lines);

/* The findings table at (x, page->y), width wide; returns its height. */
double cxr_report_pdf_findings(struct cxr_report_page *page,
                               const struct cxr_prediction *prediction, double x, double width);

/* How to read the maps, with a vector colour bar, in the box at (x, y); returns its height. */
double cxr_report_pdf_key(cairo_t *cr, double x, double y, double width);

/* The source image and one overlay per present finding, as a grid of labelled tiles filling
 * the band from page->y to bottom; Normal: the source alone. */
enum cxr_status cxr_report_pdf_maps(struct cxr_report_page *page,
                                    const struct cxr_prediction *prediction,
                                    const struct cxr_gray8 *source, double bottom,
                                    struct cxr_err *err);

/* A copy of source shrunk by area averaging by the smallest integer factor that brings its
 * longest side to at most max_side (never enlarged); out owns new pixels on success. */
enum cxr_status cxr_report_gray_shrink(const struct cxr_gray8 *source, uint32_t max_side,
                                       struct cxr_gray8 *out, struct cxr_err *err);

/* A cairo surface for the PDF page carrying the image (channels 1 = grey, 3 = RGB) as JPEG mime
 * data, shrunk by area averaging by the smallest integer factor that brings its longest side to
 * at most max_side (never enlarged). The surface itself is a 1 x 1 placeholder: draw it scaled
 * to the image's printed width and height, on a PDF surface only. */
enum cxr_status cxr_report_surface_from_pixels(const uint8_t *pixels, uint32_t channels,
                                               uint32_t width, uint32_t height, uint32_t max_side,
                                               cairo_surface_t **surface, struct cxr_err *err);

#endif
