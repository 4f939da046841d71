/* The contract checks of model/, separated from loading so unit tests can feed them metadata and
 * tensor shapes directly (no ONNX file, no runtime). Not part of model.h. */
#ifndef CXR_MODEL_INTERNAL_H
#define CXR_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "image/image.h"
#include "model/model.h"

#define CXR_MODEL_MAX_LABELS   1024 /* cxr.labels entries; the 11 findings plus any extras */
#define CXR_MODEL_MAX_VERSION  128  /* bytes of cxr.model_version */
#define CXR_MODEL_MAX_CAM_SIDE 1024 /* h and w of the class maps */
#define CXR_MODEL_MAX_INPUT    8192 /* H and W of the network input */

/* What a loaded network offers, as nn.h reports it. */
struct cxr_model_source {
    size_t input_count, output_count;
    const struct cxr_nn_tensor_info *const *inputs;  /* input_count entries */
    const struct cxr_nn_tensor_info *const *outputs; /* output_count entries */
    /* metadata_props values, NULL when absent */
    const char *labels, *thresholds, *preprocess, *model_version;
};

/* The contract, checked and resolved. */
struct cxr_model_contract {
    /* the input tensor: W, H of `image` and cxr.preprocess, its scale, offset and equalisation */
    struct cxr_tensor_format input;
    size_t probabilities_output, cam_output;
    uint32_t label_count; /* K */
    uint32_t cam_width, cam_height;
    uint32_t label_of_finding[CXR_FINDING_COUNT]; /* channel of each API finding */
    double thresholds[CXR_FINDING_COUNT];         /* API order */
    char model_version[CXR_MODEL_MAX_VERSION + 1];
};

#define CXR_GATE_DEFAULT_MIN_AGE 18.0 /* years; the default model is for adults */
#define CXR_GATE_FEATURES_OUTPUT "gate_features"

/* The image layer of the input gate, from the model's cxr.gate metadata: a logistic classifier
 * over [pooled features (a graph output), 16 x 16 thumbnail / 255, 32-bin histogram share]. */
struct cxr_model_gate {
    bool enabled; /* false: no image layer (attributes only) */
    size_t pooled_count;
    float *weights; /* pooled_count + 256 + 32 */
    double bias;
    double threshold; /* on the score in [0, 1] */
    double min_age_years;
};

/* Parses cxr.gate (text may be NULL: no image layer). On failure gate holds nothing. */
enum cxr_status cxr_model_gate_parse(const char *text, size_t pooled_count,
                                     struct cxr_model_gate *gate, struct cxr_err *err);
void cxr_model_gate_release(struct cxr_model_gate *gate);
/* Score in [0, 1] from the pooled features and the network input tensor (width x height, in
 * network units: grey = (value - offset) / scale). */
double cxr_model_gate_score(const struct cxr_model_gate *gate, const float *pooled,
                            const float *tensor, uint32_t width, uint32_t height, float scale,
                            float offset);
bool cxr_model_gate_check_attributes(const struct cxr_model_gate *gate,
                                     const struct cxr_gate_attributes *image, char *reason,
                                     size_t size);

/* Checks the contract (DESIGN.md) and fills contract. CXR_ERR_UNSUPPORTED with a message
 * starting "model contract:" and naming the offending input, output or metadata key. */
enum cxr_status cxr_model_contract_check(const struct cxr_model_source *source,
                                         struct cxr_model_contract *contract, struct cxr_err *err);

#endif
