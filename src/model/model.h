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
    const char *patient_orientation;
    const char *photometric_interpretation;
    const char *patient_age;
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

#endif
