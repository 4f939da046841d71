/* Report outputs built from a prediction: the heatmap overlay (class maps of the present
 * findings on the grey source) and the one-page A4 PDF report (cairo + pango).
 *
 * Ownership: outputs are written only on success; on failure nothing is left allocated and out
 * is unchanged. Threads: no shared state; any number of calls may run at once. */
#ifndef CXR_REPORT_H
#define CXR_REPORT_H

#include "image/image.h"
#include "model/model.h"
#include "util/util.h"

/* Heatmap overlay: class maps of the PRESENT findings weighted by confidence, summed, upsampled
 * (bilinear) to the image size, normalised, coloured with a perceptual colour map (e.g. viridis
 * or inferno, computed from a documented formula/table you write), alpha-blended on the grey
 * source. CXR_ERR_INVALID_ARG when no finding is present (Normal has no heatmap). out receives a
 * newly allocated image of the source's size (release with cxr_rgb8_release). */
enum cxr_status cxr_report_heatmap(const struct cxr_gray8 *source,
                                   const struct cxr_prediction *prediction, struct cxr_rgb8 *out,
                                   struct cxr_err *err);

struct cxr_report_info {
    const char *institution_name; /* from config; "" allowed */
    const char *patient_id, *patient_name, *patient_age, *patient_sex, *patient_birth_date;
    const char *sop_instance_uid, *study_instance_uid, *study_date, *modality, *view_position;
    const char *model_version;
    const char *report_time; /* ISO 8601, produced by the caller */
};

/* One-page A4 PDF (cairo + pango, DejaVu fonts) appended to out. heatmap may be NULL (Normal).
 * Strings are UTF-8; NULL strings print as empty. Images are downscaled for the page. */
enum cxr_status cxr_report_pdf(const struct cxr_report_info *info,
                               const struct cxr_prediction *prediction,
                               const struct cxr_gray8 *source, const struct cxr_rgb8 *heatmap,
                               struct cxr_buf *out, struct cxr_err *err);

/* Frees the process-wide font caches that pango, cairo and fontconfig keep after the first PDF
 * (LeakSanitizer reports them otherwise). Optional, at exit only: call it after every other
 * thread that rendered a PDF has exited (pango keeps one font map per thread, freed at thread
 * exit); no report function may be called afterwards. */
void cxr_report_shutdown(void);

#endif
