/* The model contract's checks: input and output names and shapes, and the metadata cxr.labels,
 * cxr.thresholds, cxr.preprocess and cxr.model_version (jansson), resolved into the mapping
 * from the network's label channels to the API's 11 findings. Every refusal names its cause. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "model/model_internal.h"

#define REFUSE(err, ...) cxr_err_set((err), CXR_ERR_UNSUPPORTED, "model contract: " __VA_ARGS__)

static const struct cxr_nn_tensor_info *find_tensor(const struct cxr_nn_tensor_info *const *list,
                                                    size_t count, const char *name, size_t *index)
{
    for (size_t i = 0; i < count; i++) {
        if (list[i] && list[i]->name && strcmp(list[i]->name, name) == 0) {
            *index = i;
            return list[i];
        }
    }
    return NULL;
}

/* "[1,11,16,16]" for messages. */
static void shape_text(const struct cxr_nn_tensor_info *info, char *text, size_t size)
{
    size_t used = (size_t)snprintf(text, size, "[");
    for (uint32_t d = 0; d < info->rank && d < CXR_NN_MAX_RANK && used < size; d++)
        used += (size_t)snprintf(text + used, size - used, d ? ",%lld" : "%lld",
                                 (long long)info->dims[d]);
    if (used < size)
        snprintf(text + used, size - used, "]");
}

static enum cxr_status check_shapes(const struct cxr_model_source *source,
                                    struct cxr_model_contract *contract, struct cxr_err *err)
{
    char shape[160];
    size_t index = 0;
    if (source->input_count != 1)
        return REFUSE(err, "the model has %zu inputs, expected one named \"image\"",
                      source->input_count);
    const struct cxr_nn_tensor_info *image =
            find_tensor(source->inputs, source->input_count, "image", &index);
    if (image == NULL)
        return REFUSE(err, "the input is named \"%s\", expected \"image\"",
                      source->inputs[0] && source->inputs[0]->name ? source->inputs[0]->name : "");
    shape_text(image, shape, sizeof(shape));
    if (image->rank != 4 || image->dims[0] != 1 || image->dims[1] != 1 || image->dims[2] < 1 ||
        image->dims[3] < 1 || image->dims[2] > CXR_MODEL_MAX_INPUT ||
        image->dims[3] > CXR_MODEL_MAX_INPUT)
        return REFUSE(err, "input \"image\" has shape %s, expected [1,1,H,W]", shape);
    contract->input.height = (uint32_t)image->dims[2];
    contract->input.width = (uint32_t)image->dims[3];

    const struct cxr_nn_tensor_info *probabilities =
            find_tensor(source->outputs, source->output_count, "probabilities", &index);
    if (probabilities == NULL)
        return REFUSE(err, "the model has no output named \"probabilities\"");
    contract->probabilities_output = index;
    shape_text(probabilities, shape, sizeof(shape));
    if (probabilities->rank != 2 || probabilities->dims[0] != 1 || probabilities->dims[1] < 1 ||
        probabilities->dims[1] > CXR_MODEL_MAX_LABELS)
        return REFUSE(err, "output \"probabilities\" has shape %s, expected [1,K]", shape);
    contract->label_count = (uint32_t)probabilities->dims[1];

    const struct cxr_nn_tensor_info *cam =
            find_tensor(source->outputs, source->output_count, "cam", &index);
    if (cam == NULL)
        return REFUSE(err, "the model has no output named \"cam\" (class activation maps)");
    contract->cam_output = index;
    shape_text(cam, shape, sizeof(shape));
    if (cam->rank != 4 || cam->dims[0] != 1 || cam->dims[1] != contract->label_count ||
        cam->dims[2] < 1 || cam->dims[3] < 1 || cam->dims[2] > CXR_MODEL_MAX_CAM_SIDE ||
        cam->dims[3] > CXR_MODEL_MAX_CAM_SIDE)
        return REFUSE(err, "output \"cam\" has shape %s, expected [1,%u,h,w]", shape,
                      contract->label_count);
    contract->cam_height = (uint32_t)cam->dims[2];
    contract->cam_width = (uint32_t)cam->dims[3];
    return CXR_OK;
}

static json_t *parse_json(const char *key, const char *text, struct cxr_err *err)
{
    if (text == NULL) {
        REFUSE(err, "metadata %s is missing", key);
        return NULL;
    }
    json_error_t error;
    json_t *value = json_loads(text, JSON_REJECT_DUPLICATES, &error);
    if (value == NULL)
        REFUSE(err, "metadata %s is not valid JSON (jansson: %s at line %d, column %d)", key,
               error.text, error.line, error.column);
    return value;
}

/* Position of each API finding among the labels; other labels are allowed and ignored. */
static enum cxr_status check_labels(const char *text, struct cxr_model_contract *contract,
                                    json_t **labels_out, struct cxr_err *err)
{
    json_t *labels = parse_json("cxr.labels", text, err);
    if (labels == NULL)
        return CXR_ERR_UNSUPPORTED;
    enum cxr_status status = CXR_OK;
    if (!json_is_array(labels)) {
        status = REFUSE(err, "metadata cxr.labels must be a JSON array of names");
        goto done;
    }
    if (json_array_size(labels) != contract->label_count) {
        status = REFUSE(err, "metadata cxr.labels has %zu names but \"probabilities\" has %u",
                        json_array_size(labels), contract->label_count);
        goto done;
    }
    bool seen[CXR_FINDING_COUNT] = {false};
    for (size_t i = 0; i < json_array_size(labels); i++) {
        const char *name = json_string_value(json_array_get(labels, i));
        if (name == NULL) {
            status = REFUSE(err, "metadata cxr.labels entry %zu is not a string", i);
            goto done;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(name, json_string_value(json_array_get(labels, j))) == 0) {
                status = REFUSE(err, "metadata cxr.labels names \"%.64s\" twice", name);
                goto done;
            }
        }
        int finding = cxr_model_finding_index(name);
        if (finding >= 0) {
            seen[finding] = true;
            contract->label_of_finding[finding] = (uint32_t)i;
        }
    }
    for (int k = 0; k < CXR_FINDING_COUNT; k++) {
        if (!seen[k]) {
            status = REFUSE(err,
                            "metadata cxr.labels lacks \"%s\" (the 11 findings must all "
                            "be present, spelled as in the API)",
                            cxr_model_finding_names[k]);
            goto done;
        }
    }
done:
    if (status == CXR_OK)
        *labels_out = labels;
    else
        json_decref(labels);
    return status;
}

/* cxr.thresholds: optional; every key must be a label, every value a number >= 0 (values above
 * 1 switch a finding off). Findings without an entry use 0.5, the API's default. */
static enum cxr_status check_thresholds(const char *text, json_t *labels,
                                        struct cxr_model_contract *contract, struct cxr_err *err)
{
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        contract->thresholds[k] = 0.5;
    if (text == NULL)
        return CXR_OK;
    json_t *thresholds = parse_json("cxr.thresholds", text, err);
    if (thresholds == NULL)
        return CXR_ERR_UNSUPPORTED;
    enum cxr_status status = CXR_OK;
    if (!json_is_object(thresholds)) {
        status = REFUSE(err, "metadata cxr.thresholds must be a JSON object name -> number");
        goto done;
    }
    const char *name;
    json_t *value;
    json_object_foreach(thresholds, name, value)
    {
        bool is_label = false;
        for (size_t i = 0; i < json_array_size(labels) && !is_label; i++)
            is_label = strcmp(name, json_string_value(json_array_get(labels, i))) == 0;
        if (!is_label) {
            status = REFUSE(err,
                            "metadata cxr.thresholds names \"%.64s\", which is not in "
                            "cxr.labels",
                            name);
            goto done;
        }
        double threshold = json_number_value(value);
        if (!json_is_number(value) || !isfinite(threshold) || threshold < 0.0) {
            status = REFUSE(err, "metadata cxr.thresholds[\"%.64s\"] must be a number >= 0", name);
            goto done;
        }
        int finding = cxr_model_finding_index(name);
        if (finding >= 0)
            contract->thresholds[finding] = threshold;
    }
done:
    json_decref(thresholds);
    return status;
}

static enum cxr_status get_number(json_t *object, const char *key, double *value,
                                  struct cxr_err *err)
{
    json_t *member = json_object_get(object, key);
    if (!json_is_number(member) || !isfinite(json_number_value(member)))
        return REFUSE(err, "metadata cxr.preprocess needs a number \"%s\"", key);
    *value = json_number_value(member);
    return CXR_OK;
}

/* An optional string member: absent, or exactly `only`. */
static bool absent_or_equal(json_t *object, const char *key, const char *only)
{
    json_t *member = json_object_get(object, key);
    return member == NULL ||
           (json_is_string(member) && strcmp(json_string_value(member), only) == 0);
}

/* "equalize": absent, "histogram", or "clahe" with its "clahe_tiles" (an integer, at most the
 * input's shorter side and CXR_IMAGE_CLAHE_MAX_TILES) and "clahe_clip" (1 to 256). */
static enum cxr_status check_equalize(json_t *preprocess, struct cxr_model_contract *contract,
                                      struct cxr_err *err)
{
    contract->input.equalize = CXR_EQUALIZE_NONE;
    if (absent_or_equal(preprocess, "equalize", "histogram")) {
        if (json_object_get(preprocess, "equalize") != NULL)
            contract->input.equalize = CXR_EQUALIZE_HISTOGRAM;
        return CXR_OK;
    }
    if (!absent_or_equal(preprocess, "equalize", "clahe"))
        return REFUSE(err, "metadata cxr.preprocess \"equalize\" must be \"histogram\" or "
                           "\"clahe\" (the equalisations cxrd implements)");
    double tiles = 0, clip = 0;
    enum cxr_status status;
    if ((status = get_number(preprocess, "clahe_tiles", &tiles, err)) != CXR_OK ||
        (status = get_number(preprocess, "clahe_clip", &clip, err)) != CXR_OK)
        return status;
    uint32_t shorter = contract->input.width < contract->input.height ? contract->input.width
                                                                      : contract->input.height;
    if (!(tiles >= 1 && tiles <= CXR_IMAGE_CLAHE_MAX_TILES && tiles <= shorter) ||
        tiles != floor(tiles) || !(clip >= 1.0 && clip <= 256.0))
        return REFUSE(err,
                      "metadata cxr.preprocess CLAHE needs whole \"clahe_tiles\" from 1 to "
                      "%d and at most the input's side, and \"clahe_clip\" from 1 to 256 "
                      "(got %g and %g)",
                      CXR_IMAGE_CLAHE_MAX_TILES, tiles, clip);
    contract->input.equalize = CXR_EQUALIZE_CLAHE;
    contract->input.clahe_tiles = (uint32_t)tiles;
    contract->input.clahe_clip = clip;
    return CXR_OK;
}

static enum cxr_status check_preprocess(const char *text, struct cxr_model_contract *contract,
                                        struct cxr_err *err)
{
    json_t *preprocess = parse_json("cxr.preprocess", text, err);
    if (preprocess == NULL)
        return CXR_ERR_UNSUPPORTED;
    enum cxr_status status = CXR_OK;
    double height = 0, width = 0, scale = 0, offset = 0;
    if (!json_is_object(preprocess)) {
        status = REFUSE(err, "metadata cxr.preprocess must be a JSON object");
        goto done;
    }
    if ((status = get_number(preprocess, "height", &height, err)) != CXR_OK ||
        (status = get_number(preprocess, "width", &width, err)) != CXR_OK ||
        (status = get_number(preprocess, "scale", &scale, err)) != CXR_OK ||
        (status = get_number(preprocess, "offset", &offset, err)) != CXR_OK)
        goto done;
    if (height != contract->input.height || width != contract->input.width) {
        status = REFUSE(err,
                        "metadata cxr.preprocess size %gx%g (width x height) differs from "
                        "the input \"image\" %ux%u",
                        width, height, contract->input.width, contract->input.height);
        goto done;
    }
    if (!absent_or_equal(preprocess, "resize", "stretch")) {
        status = REFUSE(err, "metadata cxr.preprocess \"resize\" must be \"stretch\" (the only "
                             "resize cxrd implements)");
        goto done;
    }
    if (scale == 0.0 || fabs(scale) > 1e6 || fabs(offset) > 1e6) {
        status = REFUSE(err, "metadata cxr.preprocess scale %g / offset %g are out of range", scale,
                        offset);
        goto done;
    }
    if ((status = check_equalize(preprocess, contract, err)) != CXR_OK)
        goto done;
    contract->input.scale = (float)scale;
    contract->input.offset = (float)offset;
done:
    json_decref(preprocess);
    return status;
}

/* The version goes into JSON responses and the PDF: printable, bounded, non-empty. */
static enum cxr_status check_version(const char *text, struct cxr_model_contract *contract,
                                     struct cxr_err *err)
{
    if (text == NULL || *text == '\0')
        return REFUSE(err, "metadata cxr.model_version is missing or empty");
    size_t length = strlen(text);
    if (length > CXR_MODEL_MAX_VERSION)
        return REFUSE(err, "metadata cxr.model_version is longer than %d bytes",
                      CXR_MODEL_MAX_VERSION);
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c > 0x7e)
            return REFUSE(err, "metadata cxr.model_version must be printable ASCII");
    }
    memcpy(contract->model_version, text, length + 1);
    return CXR_OK;
}

enum cxr_status cxr_model_contract_check(const struct cxr_model_source *source,
                                         struct cxr_model_contract *contract, struct cxr_err *err)
{
    struct cxr_model_contract result;
    memset(&result, 0, sizeof(result));
    json_t *labels = NULL;
    enum cxr_status status = check_shapes(source, &result, err);
    if (status == CXR_OK)
        status = check_labels(source->labels, &result, &labels, err);
    if (status == CXR_OK)
        status = check_thresholds(source->thresholds, labels, &result, err);
    if (status == CXR_OK)
        status = check_preprocess(source->preprocess, &result, err);
    if (status == CXR_OK)
        status = check_version(source->model_version, &result, err);
    json_decref(labels);
    if (status == CXR_OK)
        *contract = result;
    return status;
}
