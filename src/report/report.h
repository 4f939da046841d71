/* Report outputs built from a prediction: the heatmap overlay (a present finding's class map on
 * the grey source, body only, with a legend) and the one-page A4 PDF report (cairo + pango).
 *
 * Ownership: outputs are written only on success; on failure nothing is left allocated and out
 * is unchanged. Threads: no shared state; any number of calls may run at once. */
#ifndef CXR_REPORT_H
#define CXR_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dicom/dicom.h"
#include "image/image.h"
#include "model/model.h"
#include "util/util.h"

/* The API heatmap: the overlay of ONE present finding, the most urgent (Tuberculosis when
 * present, else the present finding with the largest confidence - threshold), on the grey
 * source: its class map scaled on its own (0 at the map's median over the body, 1 at its
 * maximum there), upsampled bilinearly, restricted to the body found from the image (air,
 * collimator bands and burnt-in labels outside it keep the plain source), coloured with a
 * perceptual colour map whose opacity grows with the heat. Under the image, a legend strip of
 * cxr_report_legend_height(width) rows (report_internal.h): the finding's name, confidence and
 * threshold, the colour bar, and the other present findings. out receives a newly allocated
 * image of width source->width and height source->height + the strip (release with
 * cxr_image_rgb8_release); its first source->height rows align with the source.
 * CXR_ERR_INVALID_ARG when no finding is present (Normal has no heatmap). */
enum cxr_status cxr_report_heatmap_render(const struct cxr_gray8 *source,
                                          const struct cxr_prediction *prediction,
                                          struct cxr_rgb8 *out, struct cxr_err *err);

/* [gate] mode = warn: appends a band under the heatmap's legend that states the input gate's
 * message (e.g. "Image is not a frontal chest radiograph: ...") and that the result, findings
 * and map may not apply to the image, so the PNG (and its DICOM copy) never shows a plain
 * finding for a flagged image wherever it is viewed alone. heatmap grows in height; its first
 * rows stay as they were. An empty warning changes nothing. */
enum cxr_status cxr_report_heatmap_add_warning(struct cxr_rgb8 *heatmap, const char *warning,
                                               struct cxr_err *err);

/* What the PDF prints about the patient and study. Strings are UTF-8; NULL or "" print "—". */
struct cxr_report_info {
    const char *institution_name; /* the caller picks: the config's, else the file's */
    const char *patient_id;
    /* The file's own PatientID. When the request named another patient_id (that one names the
     * folder and the JSON), the report prints both, so the PDF inside a DICOM object that
     * carries the file's ID never shows only a different one. NULL or "": not printed. */
    const char *dicom_patient_id;
    /* Person Names as DICOM stores them ("Yamada^Tarou=山田^太郎=やまだ^たろう"): the report
     * prints every component group (cxr_report_person_name_format). */
    const char *patient_name, *referring_physician_name;
    const char *patient_age, *patient_sex;
    const char *patient_birth_date, *study_date; /* DA "YYYYMMDD" (other forms as given) */
    const char *study_time;                      /* TM "HHMMSS.ffffff" */
    const char *accession_number;
    const char *sop_instance_uid, *study_instance_uid, *modality, *view_position;
    /* Number of Frames of the source: above 1, the page says that frame 1 was analysed (a
     * reader would otherwise take the result for every frame). 0 or 1: nothing printed. */
    uint32_t frame_count;
    const char *model_version;
    const char *thresholds; /* which thresholds decided presence: "model's own", "site
                               calibration of 2026-12-03"; NULL or "" print nothing */
    int64_t report_time;    /* seconds since the Unix epoch (UTC) */
    const char *timezone;   /* IANA name for the report time; NULL or "" = the machine's */
    /* [gate] mode = warn: the input gate's message for an image it flagged (e.g. "Image is not
     * a frontal chest radiograph: ..."), printed in a box under the overall result so that the
     * page never shows a plain result for an image the model may not apply to. NULL or "":
     * nothing printed. */
    const char *warning;
};

/* One-page A4 PDF (cairo + pango, DejaVu fonts with fontconfig fallback) appended to out:
 * header, patient and study block, overall result, findings table (a finding whose threshold
 * is above 1 is switched off by the model or site and prints as "not assessed"; under it
 * "Thresholds: <info->thresholds>", which says whose thresholds decided), the source
 * image and one small overlay per present finding (each scaled on its own, body only), model
 * version, report time, disclaimer. Normal: the source image only. Images are downscaled for
 * the page. Thread safe (pango keeps one font map per thread). */
enum cxr_status cxr_report_pdf_render(const struct cxr_report_info *info,
                                      const struct cxr_prediction *prediction,
                                      const struct cxr_gray8 *source, struct cxr_buf *out,
                                      struct cxr_err *err);

/* What the calibration PDF states besides the numbers. Strings UTF-8. */
struct cxr_report_calibration_info {
    const char *finding, *model_version;
    const char *labels_path; /* the site's CSV */
    const char *date;        /* "YYYY-MM-DD HH:MM" of the calibration (local time) */
    const char *section;     /* the [thresholds] section text to paste */
    size_t left_out;         /* rows that could not be analysed */
};

/* The one-page A4 calibration report of `cxrd calibrate` (cairo + pango), appended to out: the
 * ROC curve, sensitivity and specificity against the threshold with their bootstrap 95 %
 * bands, the score distributions of positives and negatives, the chosen point and the model's
 * own point marked on each, a table of operating points, and the [thresholds] section. Thread
 * safe as cxr_report_pdf_render. */
enum cxr_status cxr_report_calibration_pdf(const struct cxr_report_calibration_info *info,
                                           const struct cxr_calibration *calibration,
                                           struct cxr_buf *out, struct cxr_err *err);

/* "Family^Given^Middle^Prefix^Suffix" groups (alphabetic=ideographic=phonetic) as "Prefix Family
 * Given Middle Suffix", the first group with content leading and the others in parentheses:
 * "Yamada^Tarou=山田^太郎=やまだ^たろう" -> "Yamada Tarou (山田 太郎, やまだ たろう)". Only the
 * first value of a multi-valued element. NULL is "". Returns a malloc'ed string (NULL when out
 * of memory). */
char *cxr_report_person_name_format(const char *raw);

/* DA "20261127" -> "2026-11-27" and TM "081500.25" -> "08:15:00" ("0815" -> "08:15:00");
 * other values are copied as given. out is always NUL-terminated. */
void cxr_report_date_format(const char *date, char *out, size_t size);
void cxr_report_time_format(const char *time, char *out, size_t size);

/* A confidence and its threshold as percentages, "17.1 %", with one decimal, or more (up to
 * four) while the two would print alike but differ: "17.06 %" below "17.10 %" rather than
 * "17.1 %" twice beside "No". Each out holds at least 32 bytes. */
void cxr_report_percent_pair(double confidence, double threshold, char confidence_out[32],
                             char threshold_out[32]);

/* The time in the zone (an IANA name; NULL or "" = the machine's) with its UTC offset and the
 * zone's name: "2026-11-27 09:15:00 UTC+01:00 (Europe/Paris)". CXR_ERR_INVALID_ARG for an
 * unknown zone. */
enum cxr_status cxr_report_timestamp_format(int64_t unix_seconds, const char *timezone, char *out,
                                            size_t size, struct cxr_err *err);

/* CXR_OK when timezone is empty, NULL or a zone GLib's database knows (for the config). */
enum cxr_status cxr_report_timezone_check(const char *timezone, struct cxr_err *err);

/* Frees the process-wide font caches that pango, cairo and fontconfig keep after the first PDF
 * (LeakSanitizer reports them otherwise). Optional, at exit only: call it after every other
 * thread that rendered a PDF has exited (pango keeps one font map per thread, freed at thread
 * exit); no report function may be called afterwards. */
void cxr_report_shutdown(void);

/* ---- DICOM outputs (report_dicom.c, report_sr.c; docs/dicom-outputs.md) ---------------------
 * Part 10 objects for a PACS, each in a new series of the source's study: the Patient and
 * General Study modules, Accession Number and Referring Physician are copied from the source
 * (as UTF-8, Specific Character Set ISO_IR 192 when any copied text is not ASCII), the source
 * SOP Instance is referenced, and every UID is new (cxr_dicom_uid_generate under uid_root).
 * Each function appends one file to out; on failure out keeps its length (CXR_ERR_NOMEM, or
 * CXR_ERR_INVALID_ARG when the source lacks the UIDs to refer to). Thread safe. */
struct cxr_report_dicom_info {
    const struct cxr_dicom_meta *source; /* the source image's metadata */
    const char *uid_root;                /* NULL or "": 2.25.<UUID> */
    const char *model_version;           /* cxr.model_version: the algorithm's version */
    const char *thresholds;              /* whose thresholds decided presence (as in the PDF) */
    int64_t content_time;                /* seconds since the Unix epoch; written in local time */
};

/* Series numbers of the three outputs, so that a viewer sorts them after the source. */
#define CXR_REPORT_DICOM_SERIES_SR      9901
#define CXR_REPORT_DICOM_SERIES_HEATMAP 9902
#define CXR_REPORT_DICOM_SERIES_PDF     9903

/* Chest CAD SR (1.2.840.10008.5.1.4.1.1.88.65, template TID 4100): the overall result, each of
 * the 11 findings with its score, presence (rendering intent) and threshold (operating point),
 * the model as the algorithm. */
enum cxr_status cxr_report_dicom_sr(const struct cxr_report_dicom_info *info,
                                    const struct cxr_prediction *prediction, struct cxr_buf *out,
                                    struct cxr_err *err);
/* Secondary Capture (1.2.840.10008.5.1.4.1.1.7), RGB, of image (the heatmap with its legend
 * burnt in: legend true sets Burned In Annotation YES); series_description names it ("AI
 * heatmap: ..."). Rows and columns at most 65535. */
enum cxr_status cxr_report_dicom_sc(const struct cxr_report_dicom_info *info,
                                    const struct cxr_rgb8 *image, const char *series_description,
                                    bool legend, struct cxr_buf *out, struct cxr_err *err);
/* Encapsulated PDF (1.2.840.10008.5.1.4.1.1.104.1) of the report's bytes, unchanged
 * (Encapsulated Document Length gives their count when a pad byte makes the value even). */
enum cxr_status cxr_report_dicom_pdf(const struct cxr_report_dicom_info *info, const uint8_t *pdf,
                                     size_t pdf_size, struct cxr_buf *out, struct cxr_err *err);

#endif
