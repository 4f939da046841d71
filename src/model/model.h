/* The model contract (DESIGN.md "The model contract"): loads a site's ONNX model through nn/,
 * checks that it has the input, outputs and metadata cxrd needs, and turns a forward pass into
 * the 11 API findings, the overall result and the class activation maps.
 *
 * Ownership: outputs are written only on success; on failure nothing is left allocated.
 * Threads: cxr_model_predict may be called from any number of threads on one model (forward
 * passes are serialised by a mutex inside the model); everything else is read-only after load. */
#ifndef CXR_MODEL_H
#define CXR_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "image/image.h"
#include "nn/nn.h"
#include "util/util.h"

#define CXR_FINDING_COUNT 11

/* "Tuberculosis", "Cardiomegaly", ..., "Calcification": API order and spelling. */
extern const char *const cxr_model_finding_names[CXR_FINDING_COUNT];

enum cxr_result { CXR_RESULT_NORMAL = 0, CXR_RESULT_ABNORMAL = 1, CXR_RESULT_TB_PRESUMPTIVE = 2 };

/* "Normal", "Abnormal", "TB Presumptive"; "Unknown" for a value outside the enum (never NULL). */
const char *cxr_model_result_name(enum cxr_result result);

/* One reported finding. name points at cxr_model_finding_names (static storage); presence is
 * confidence >= threshold; confidence is the model's probability in [0, 1]. */
struct cxr_finding {
    const char *name;
    bool presence;
    double confidence;
    double threshold;
};

struct cxr_prediction {
    enum cxr_result result;
    double gate_score; /* the image layer's score in [0, 1] that this is a frontal chest
                          radiograph; NAN when the model carries no image gate */
    struct cxr_finding findings[CXR_FINDING_COUNT]; /* API order */
    uint32_t cam_width, cam_height;                 /* class map size */
    float *cams; /* [CXR_FINDING_COUNT][cam_height][cam_width], API order, raw logit units */
};

struct cxr_model;

/* Loads an ONNX model via nn.h and checks the contract (input `image` [1,1,H,W]; outputs
 * `probabilities` [1,K], `cam` [1,K,h,w]; metadata cxr.labels = the 11 findings in any order,
 * cxr.thresholds, cxr.preprocess, cxr.model_version). Clear error naming what is wrong
 * (CXR_ERR_UNSUPPORTED "model contract: ..." for a model that breaks the contract). runtime must
 * outlive the model. */
enum cxr_status cxr_model_load(struct cxr_nn_runtime *runtime, const char *path,
                               const struct cxr_limits *limits, struct cxr_model **model,
                               struct cxr_err *err);
/* NULL is a no-op. */
void cxr_model_destroy(struct cxr_model *model);
/* cxr.model_version; owned by the model. */
const char *cxr_model_version(const struct cxr_model *model);

/* Preprocesses (cxr.preprocess → cxr_image_to_tensor), runs the network (serialised by an
 * internal mutex: thread safe), fills findings/result/cams. On success prediction->cams is
 * allocated and must be freed with cxr_model_prediction_release; on failure prediction is
 * untouched. */
enum cxr_status cxr_model_predict(struct cxr_model *model, const struct cxr_gray8 *image,
                                  struct cxr_prediction *prediction, struct cxr_err *err);
/* Frees cams and zeroes the struct; NULL is a no-op. */
void cxr_model_prediction_release(struct cxr_prediction *prediction);

/* Additions beyond the contract interface. */

/* Index of a finding in API order, or -1 when name is not one of the 11 (exact spelling). */
int cxr_model_finding_index(const char *name);

/* The overall-result rule: TB Presumptive when Tuberculosis is present; Abnormal when any other
 * finding is present; Normal otherwise. findings in API order. */
enum cxr_result cxr_model_result_decide(const struct cxr_finding findings[CXR_FINDING_COUNT]);

/* Network input size from cxr.preprocess. */
void cxr_model_input_size(const struct cxr_model *model, uint32_t *width, uint32_t *height);

/* Threshold of finding (API index) in use; NAN for an index outside 0..10. */
double cxr_model_threshold(const struct cxr_model *model, int finding);

/* Site override of one finding's threshold (the companion spec: 0.5 "unless the model or the
 * site configuration says otherwise"). name in API spelling; threshold >= 0 (above 1 switches
 * the finding off). Not thread safe: call after load, before predictions start. */
enum cxr_status cxr_model_threshold_set(struct cxr_model *model, const char *name, double threshold,
                                        struct cxr_err *err);

/* ---- The input gate (model_gate.c): is this an adult frontal chest radiograph? ---- */

/* The DICOM attributes the gate reads; "" or 0 when absent. */
struct cxr_gate_attributes {
    const char *modality;
    const char *body_part_examined;
    const char *view_position;
    const char *view_code_meaning; /* View Code Sequence, first item (PS3.16 CID 4010) */
    const char *patient_orientation;
    const char *sop_class_uid;
    const char *presentation_intent_type;
    const char *photometric_interpretation;
    const char *patient_age;
    /* DA values: the age when PatientAge is absent or not an AS value */
    const char *patient_birth_date;
    const char *study_date;
    uint32_t rows, columns, samples_per_pixel;
};

/* The attribute layer: false, with the reason (naming the attribute) in reason, when the tags
 * say the image is not an adult frontal chest radiograph. Absent tags pass. Thread safe. */
bool cxr_model_gate_attributes_accept(const struct cxr_model *model,
                                      const struct cxr_gate_attributes *image, char *reason,
                                      size_t size);

/* The image layer: false, with the reason (the score and the threshold), when the model's gate
 * scored the image below its threshold. Always true for a model without an image gate. */
bool cxr_model_gate_image_accept(const struct cxr_model *model,
                                 const struct cxr_prediction *prediction, char *reason,
                                 size_t size);

/* Whether the model carries an image gate (cxr.gate and the gate_features output). */
bool cxr_model_gate_has_image_layer(const struct cxr_model *model);

/* ---- Site thresholds (model_thresholds.c): a site's [thresholds] config section ----
 * `model_version = <cxr.model_version it was calibrated for>`, `calibrated = YYYY-MM-DD[ HH:MM]`,
 * `allow_model_change = true|false` and `<Finding> = <threshold>` lines (API spelling). */

#define CXR_SITE_VERSION_SIZE 160
struct cxr_site_thresholds {
    bool present;                              /* the config has a [thresholds] key */
    char model_version[CXR_SITE_VERSION_SIZE]; /* "" when not given */
    char calibrated[20];                       /* "YYYY-MM-DD[ HH:MM]", "" when not given */
    bool allow_model_change;                   /* the explicit, logged override of the guard */
    bool set[CXR_FINDING_COUNT];               /* API order */
    double value[CXR_FINDING_COUNT];           /* >= 0; above 1 switches a finding off */
};

/* Applies one `key = value` line of [thresholds]. CXR_ERR_INVALID_ARG naming the key for an
 * unknown key (neither a setting nor one of the 11 findings) or a bad value. */
enum cxr_status cxr_model_thresholds_parse_key(struct cxr_site_thresholds *site, const char *key,
                                               const char *value, struct cxr_err *err);

/* The section as a whole: finding lines need model_version (site thresholds belong to one
 * model). */
enum cxr_status cxr_model_thresholds_check(const struct cxr_site_thresholds *site,
                                           struct cxr_err *err);

/* The threshold guard, then the overrides. When the section names another model_version than
 * the model's cxr.model_version: CXR_ERR_INVALID_ARG naming both and what to do, unless
 * allow_model_change (then one warning in the log says so). Writes to description (size bytes,
 * at least 64 useful) which thresholds are in use, for the PDF, the audit log and the start-up
 * log: "model's own", "site calibration of 2026-12-03", ... site may be NULL (model's own).
 * Not thread safe: call after load, before predictions start. */
enum cxr_status cxr_model_thresholds_apply(struct cxr_model *model,
                                           const struct cxr_site_thresholds *site,
                                           char *description, size_t size, struct cxr_err *err);

/* ---- Site calibration maths (model_calibrate.c): ROC table, bootstrap CIs, the chosen point */

#define CXR_CALIBRATION_MIN_CLASS  20   /* fewer positives or negatives: refused */
#define CXR_CALIBRATION_REPLICATES 2000 /* default bootstrap replicates */

/* One labelled study: the model's confidence for the finding and the site's label. */
struct cxr_calibration_study {
    double score;
    int label; /* 1 positive, 0 negative */
};

/* A point estimate with its bootstrap 95 % interval; all three NAN when undefined (e.g. PPV
 * where nothing is called positive). */
struct cxr_calibration_interval {
    double value, low, high;
};

/* The operating point `presence = score >= threshold` on the site's studies. */
struct cxr_calibration_point {
    double threshold;
    size_t true_positives, false_positives, true_negatives, false_negatives;
    struct cxr_calibration_interval sensitivity, specificity;
    struct cxr_calibration_interval ppv, npv;
    struct cxr_calibration_interval tested_share;   /* share of studies called positive */
    struct cxr_calibration_interval tests_per_case; /* called positive per true positive */
};

struct cxr_calibration_options {
    double target_sensitivity; /* in (0, 1] */
    double model_threshold;    /* the model's own threshold, evaluated for comparison */
    uint64_t seed;             /* bootstrap seed */
    uint32_t replicates;       /* bootstrap replicates, >= 100 */
};

/* Round thresholds of the summary table: 0.01, 0.02, 0.05, 0.10, ..., 0.95, 0.98, 0.99. */
#define CXR_CALIBRATION_ROUND_COUNT 23
extern const double cxr_calibration_round_thresholds[CXR_CALIBRATION_ROUND_COUNT];

struct cxr_calibration {
    size_t positives, negatives;
    struct cxr_calibration_options options;
    struct cxr_calibration_interval auc; /* Mann-Whitney, ties count one half */
    size_t point_count;
    struct cxr_calibration_point *points; /* every distinct score, ascending */
    struct cxr_calibration_point round_points[CXR_CALIBRATION_ROUND_COUNT];
    struct cxr_calibration_point model_point; /* at options.model_threshold */
    size_t chosen; /* index in points: the highest specificity among the thresholds whose
                      sensitivity meets the target, then the lowest threshold (the most
                      cases found) with that specificity */
    /* The threshold to configure: the shortest decimal in (the next lower distinct score,
     * points[chosen].threshold], so exactly the same studies are called positive. */
    double chosen_threshold;
    char chosen_text[40];
    size_t study_count;
    struct cxr_calibration_study *studies; /* sorted by score, ascending */
    size_t undefined_replicates;           /* AUC replicates without both classes (skipped) */
};

/* Every point, the AUC and their bootstrap CIs: `replicates` resamples of the studies with
 * replacement (not stratified, so PPV, NPV and the tested share also carry the uncertainty of
 * the prevalence), drawn with splitmix64 from seed (index = draw mod n, rejection-sampled so it
 * is unbiased, into the studies sorted by score, then label); 95 % percentile intervals (the 2.5
 * and 97.5 percentiles, interpolated between order statistics as R's type 7), over the replicates
 * where the measure is defined. Deterministic for a given input and options. CXR_ERR_INVALID_ARG,
 * saying how many more are needed, with fewer than CXR_CALIBRATION_MIN_CLASS positives or
 * negatives, or a label other than 0/1, or a score that is not a number in [0, 1]. */
enum cxr_status cxr_model_calibrate(const struct cxr_calibration_study *studies, size_t count,
                                    const struct cxr_calibration_options *options,
                                    struct cxr_calibration **calibration, struct cxr_err *err);
/* NULL is a no-op. */
void cxr_calibration_destroy(struct cxr_calibration *calibration);

/* Writes into text the shortest decimal number d with low < d <= high (high >= 0), and returns
 * it (strtod(text) == the value returned). */
double cxr_calibration_decimal_between(double low, double high, char *text, size_t size);

#endif
