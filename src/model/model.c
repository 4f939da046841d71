/* A loaded contract model: the nn/ network plus the resolved contract, an input tensor reserved
 * at load, and a mutex that serialises forward passes so any number of request threads can
 * share one model. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

struct cxr_model {
    struct cxr_nn_model *network;
    struct cxr_model_contract contract;
    float *input; /* contract.input.width * height, reused by every pass under the mutex */
    pthread_mutex_t lock;
    struct cxr_model_gate gate;
    size_t gate_output; /* index of gate_features when gate.enabled */
};

/* The image gate needs both the cxr.gate weights and the pooled-feature output they apply to;
 * a model with neither has the attribute layer only. */
static enum cxr_status gate_load(struct cxr_model *model, const struct cxr_model_source *source,
                                 const char *metadata, struct cxr_err *err)
{
    const struct cxr_nn_tensor_info *features = NULL;
    for (size_t i = 0; i < source->output_count; i++) {
        if (source->outputs[i] && source->outputs[i]->name &&
            strcmp(source->outputs[i]->name, CXR_GATE_FEATURES_OUTPUT) == 0) {
            features = source->outputs[i];
            model->gate_output = i;
        }
    }
    if ((features == NULL) != (metadata == NULL))
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                           "model contract: cxr.gate and the output \"%s\" come together",
                           CXR_GATE_FEATURES_OUTPUT);
    size_t pooled = 0;
    if (features) {
        if (features->rank != 2 || features->dims[0] != 1 || features->dims[1] < 1 ||
            features->dims[1] > 65536)
            return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                               "model contract: output \"%s\" must be [1,N]",
                               CXR_GATE_FEATURES_OUTPUT);
        pooled = (size_t)features->dims[1];
    }
    return cxr_model_gate_parse(metadata, pooled, &model->gate, err);
}

enum cxr_status cxr_model_load(struct cxr_nn_runtime *runtime, const char *path,
                               const struct cxr_limits *limits, struct cxr_model **model,
                               struct cxr_err *err)
{
    if (runtime == NULL || path == NULL || model == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "model: missing argument");
    struct cxr_nn_model *network = NULL;
    enum cxr_status status = cxr_nn_model_load(runtime, path, limits, &network, err);
    if (status != CXR_OK)
        return status;

    /* The contract has one input and two outputs; a few extra outputs are tolerated. */
    enum { MAX_INPUTS = 4, MAX_OUTPUTS = 16 };
    const struct cxr_nn_tensor_info *inputs[MAX_INPUTS] = {NULL};
    const struct cxr_nn_tensor_info *outputs[MAX_OUTPUTS] = {NULL};
    size_t input_count = cxr_nn_model_input_count(network);
    size_t output_count = cxr_nn_model_output_count(network);
    if (input_count > MAX_INPUTS || output_count > MAX_OUTPUTS) {
        cxr_nn_model_destroy(network);
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                           "model contract: %zu inputs and %zu outputs, expected \"image\" and "
                           "\"probabilities\", \"cam\"",
                           input_count, output_count);
    }
    for (size_t i = 0; i < input_count; i++)
        inputs[i] = cxr_nn_model_input(network, i);
    for (size_t i = 0; i < output_count; i++)
        outputs[i] = cxr_nn_model_output(network, i);
    struct cxr_model_source source = {
            .input_count = input_count,
            .output_count = output_count,
            .inputs = inputs,
            .outputs = outputs,
            .labels = cxr_nn_model_metadata(network, "cxr.labels"),
            .thresholds = cxr_nn_model_metadata(network, "cxr.thresholds"),
            .preprocess = cxr_nn_model_metadata(network, "cxr.preprocess"),
            .model_version = cxr_nn_model_metadata(network, "cxr.model_version"),
    };
    struct cxr_model *loaded = calloc(1, sizeof(*loaded));
    if (loaded == NULL) {
        cxr_nn_model_destroy(network);
        return cxr_err_set(err, CXR_ERR_NOMEM, "model: out of memory");
    }
    status = cxr_model_contract_check(&source, &loaded->contract, err);
    if (status == CXR_OK)
        status = gate_load(loaded, &source, cxr_nn_model_metadata(network, "cxr.gate"), err);
    if (status == CXR_OK) {
        size_t pixels = (size_t)loaded->contract.input.width * loaded->contract.input.height;
        loaded->input = malloc(pixels * sizeof(float));
        if (loaded->input == NULL)
            status = cxr_err_set(err, CXR_ERR_NOMEM, "model: out of memory for the input");
    }
    if (status == CXR_OK && pthread_mutex_init(&loaded->lock, NULL) != 0)
        status = cxr_err_set(err, CXR_ERR_INTERNAL, "model: cannot create a mutex");
    if (status != CXR_OK) {
        cxr_model_gate_release(&loaded->gate);
        free(loaded->input);
        free(loaded);
        cxr_nn_model_destroy(network);
        return status;
    }
    loaded->network = network;
    *model = loaded;
    return CXR_OK;
}

void cxr_model_destroy(struct cxr_model *model)
{
    if (model == NULL)
        return;
    pthread_mutex_destroy(&model->lock);
    cxr_nn_model_destroy(model->network);
    cxr_model_gate_release(&model->gate);
    free(model->input);
    free(model);
}

const char *cxr_model_version(const struct cxr_model *model)
{
    return model->contract.model_version;
}

void cxr_model_input_size(const struct cxr_model *model, uint32_t *width, uint32_t *height)
{
    *width = model->contract.input.width;
    *height = model->contract.input.height;
}

double cxr_model_threshold(const struct cxr_model *model, int finding)
{
    return finding >= 0 && finding < CXR_FINDING_COUNT ? model->contract.thresholds[finding] : NAN;
}

enum cxr_status cxr_model_threshold_set(struct cxr_model *model, const char *name, double threshold,
                                        struct cxr_err *err)
{
    int finding = cxr_model_finding_index(name);
    if (finding < 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "model: \"%s\" is not one of the findings",
                           name ? name : "");
    if (!isfinite(threshold) || threshold < 0.0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "model: threshold %g for %s must be a number >= 0", threshold, name);
    model->contract.thresholds[finding] = threshold;
    return CXR_OK;
}

enum cxr_status cxr_model_predict(struct cxr_model *model, const struct cxr_gray8 *image,
                                  struct cxr_prediction *prediction, struct cxr_err *err)
{
    if (model == NULL || image == NULL || prediction == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "model: missing argument");
    const struct cxr_model_contract *contract = &model->contract;
    size_t cam_pixels = (size_t)contract->cam_width * contract->cam_height;
    float *cams = malloc(cam_pixels * CXR_FINDING_COUNT * sizeof(*cams));
    if (cams == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "model: out of memory for the class maps");

    struct cxr_prediction result;
    memset(&result, 0, sizeof(result));
    pthread_mutex_lock(&model->lock);
    enum cxr_status status =
            cxr_image_to_tensor_formatted(image, &contract->input, model->input, err);
    if (status == CXR_OK) {
        const float *inputs[1] = {model->input};
        status = cxr_nn_model_run(model->network, inputs, err);
    }
    if (status == CXR_OK) {
        const float *probabilities =
                cxr_nn_model_output_data(model->network, contract->probabilities_output);
        const float *cam = cxr_nn_model_output_data(model->network, contract->cam_output);
        for (int k = 0; k < CXR_FINDING_COUNT && status == CXR_OK; k++) {
            uint32_t label = contract->label_of_finding[k];
            double confidence = probabilities[label];
            /* A probability outside [0, 1] means the model is not what its contract says. */
            if (!(confidence >= 0.0 && confidence <= 1.0)) {
                status = cxr_err_set(err, CXR_ERR_INTERNAL,
                                     "model: probability %g for %s is not in [0, 1]", confidence,
                                     cxr_model_finding_names[k]);
                break;
            }
            result.findings[k] = (struct cxr_finding){
                    .name = cxr_model_finding_names[k],
                    .presence = confidence >= contract->thresholds[k],
                    .confidence = confidence,
                    .threshold = contract->thresholds[k],
            };
            memcpy(cams + k * cam_pixels, cam + (size_t)label * cam_pixels,
                   cam_pixels * sizeof(*cams));
        }
    }
    result.gate_score = NAN;
    if (status == CXR_OK && model->gate.enabled)
        result.gate_score = cxr_model_gate_score(
                &model->gate, cxr_nn_model_output_data(model->network, model->gate_output),
                model->input, contract->input.width, contract->input.height, contract->input.scale,
                contract->input.offset);
    pthread_mutex_unlock(&model->lock);
    if (status != CXR_OK) {
        free(cams);
        return status;
    }
    result.result = cxr_model_result_decide(result.findings);
    result.cam_width = contract->cam_width;
    result.cam_height = contract->cam_height;
    result.cams = cams;
    *prediction = result;
    return CXR_OK;
}

void cxr_model_prediction_release(struct cxr_prediction *prediction)
{
    if (prediction == NULL)
        return;
    free(prediction->cams);
    memset(prediction, 0, sizeof(*prediction));
}

bool cxr_model_gate_attributes_accept(const struct cxr_model *model,
                                      const struct cxr_gate_attributes *image, char *reason,
                                      size_t size)
{
    return cxr_model_gate_check_attributes(&model->gate, image, reason, size);
}

bool cxr_model_gate_has_image_layer(const struct cxr_model *model)
{
    return model->gate.enabled;
}

bool cxr_model_gate_image_accept(const struct cxr_model *model,
                                 const struct cxr_prediction *prediction, char *reason, size_t size)
{
    if (!model->gate.enabled || !isfinite(prediction->gate_score))
        return true;
    if (prediction->gate_score >= model->gate.threshold)
        return true;
    snprintf(reason, size, "image score %.3f is below the gate threshold %.3f",
             prediction->gate_score, model->gate.threshold);
    return false;
}
