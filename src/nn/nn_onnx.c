/* ONNX file to the runtime's graph: protobuf-c unpacks the ModelProto, then tensors
 * (initializers, inputs, outputs, every node output) and nodes are copied into the model with
 * every size checked. Attributes are read from the proto while the graph is compiled. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

#include "nn/nn_internal.h"

static const char *safe(const char *text)
{
    return text ? text : "";
}

int nn_tensor_find(const struct cxr_nn_model *model, const char *name)
{
    /* Graphs have a few thousand tensors at most; the loader runs once. */
    for (size_t i = model->tensor_count; i-- > 0;) {
        if (strcmp(model->tensors[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

int nn_tensor_add(struct cxr_nn_model *model, const char *name)
{
    if (model->tensor_count == model->tensor_capacity) {
        size_t capacity = model->tensor_capacity ? model->tensor_capacity * 2 : 64;
        struct nn_tensor *grown = realloc(model->tensors, capacity * sizeof(*grown));
        if (grown == NULL)
            return -1;
        model->tensors = grown;
        model->tensor_capacity = capacity;
    }
    struct nn_tensor *tensor = &model->tensors[model->tensor_count];
    memset(tensor, 0, sizeof(*tensor));
    tensor->name = strdup(name);
    if (tensor->name == NULL)
        return -1;
    tensor->producer = -1;
    tensor->root = (int)model->tensor_count;
    tensor->first_step = -1;
    tensor->last_step = -1;
    return (int)model->tensor_count++;
}

enum cxr_status nn_count_elements(uint32_t rank, const int64_t *dims, size_t *count,
                                  struct cxr_err *err)
{
    if (rank > CXR_NN_MAX_RANK)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "ONNX: tensor rank %u above %d", rank,
                           CXR_NN_MAX_RANK);
    int64_t total = 1;
    for (uint32_t i = 0; i < rank; i++) {
        if (dims[i] < 0 || dims[i] > NN_MAX_TENSOR_ELEMENTS)
            return cxr_err_set(err, CXR_ERR_LIMIT, "ONNX: dimension %lld out of range",
                               (long long)dims[i]);
        if (dims[i] != 0 && total > NN_MAX_TENSOR_ELEMENTS / dims[i])
            return cxr_err_set(err, CXR_ERR_LIMIT, "ONNX: tensor of more than %lld elements",
                               (long long)NN_MAX_TENSOR_ELEMENTS);
        total *= dims[i];
    }
    *count = (size_t)total;
    return CXR_OK;
}

/* Copies a TensorProto's values (raw_data or the typed fields) into tensor->values. */
static enum cxr_status tensor_from_proto(struct nn_tensor *tensor, const Onnx__TensorProto *proto,
                                         struct cxr_err *err)
{
    const char *name = safe(proto->name);
    if ((proto->has_data_location &&
         proto->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
        proto->n_external_data > 0)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                           "ONNX: tensor '%s' keeps its data in an external file, which is "
                           "refused (save the model with all tensors inside the .onnx file)",
                           name);
    if (proto->segment != NULL)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "ONNX: tensor '%s' is segmented", name);
    if (proto->n_dims > CXR_NN_MAX_RANK)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "ONNX: tensor '%s' has rank %zu", name,
                           proto->n_dims);
    tensor->rank = (uint32_t)proto->n_dims;
    for (size_t i = 0; i < proto->n_dims; i++)
        tensor->dims[i] = proto->dims[i];
    enum cxr_status status = nn_count_elements(tensor->rank, tensor->dims, &tensor->count, err);
    if (status != CXR_OK)
        return status;
    int32_t type = proto->has_data_type ? proto->data_type : 0;
    size_t count = tensor->count;
    size_t raw_len = proto->has_raw_data ? proto->raw_data.len : 0;
    const unsigned char *raw = proto->has_raw_data ? proto->raw_data.data : NULL;
    size_t bytes_each;
    if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        tensor->dtype = NN_F32;
        bytes_each = 4;
    } else if (type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
               type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ||
               type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) {
        tensor->dtype = type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? NN_F32 : NN_I64;
        bytes_each = type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? 4 : 8;
    } else {
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                           "ONNX: tensor '%s' has data type %d (float, double, int32 and int64 "
                           "are supported)",
                           name, type);
    }
    size_t typed;
    if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        typed = proto->n_float_data;
    else if (type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        typed = proto->n_int64_data;
    else if (type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32)
        typed = proto->n_int32_data;
    else
        typed = proto->n_double_data;
    if (raw != NULL ? raw_len != count * bytes_each : typed != count)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "ONNX: tensor '%s' holds %zu values where its shape needs %zu", name,
                           raw != NULL ? raw_len / bytes_each : typed, count);

    size_t element = tensor->dtype == NN_F32 ? sizeof(float) : sizeof(int64_t);
    tensor->values = malloc(count ? count * element : element);
    if (tensor->values == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory for tensor '%s'", name);
    float *f32 = tensor->values;
    int64_t *i64 = tensor->values;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *at = raw ? raw + i * bytes_each : NULL;
        switch (type) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
            if (at)
                memcpy(&f32[i], at, 4);
            else
                f32[i] = proto->float_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
            double value;
            if (at)
                memcpy(&value, at, 8);
            else
                value = proto->double_data[i];
            f32[i] = (float)value;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
            int32_t value;
            if (at)
                memcpy(&value, at, 4);
            else
                value = proto->int32_data[i];
            i64[i] = value;
            break;
        }
        default:
            if (at)
                memcpy(&i64[i], at, 8);
            else
                i64[i] = proto->int64_data[i];
            break;
        }
    }
    tensor->shaped = true;
    return CXR_OK;
}

/* A graph input or output: float tensors with a static shape (a symbolic dim becomes 1). */
static enum cxr_status value_info_shape(struct nn_tensor *tensor, const Onnx__ValueInfoProto *info,
                                        bool required, struct cxr_err *err)
{
    const Onnx__TypeProto *type = info->type;
    if (type == NULL || type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        type->tensor_type == NULL) {
        if (!required)
            return CXR_OK;
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "ONNX: graph input '%s' is not a tensor",
                           tensor->name);
    }
    const Onnx__TypeProto__Tensor *tensor_type = type->tensor_type;
    if (tensor_type->has_elem_type &&
        tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                           "ONNX: graph %s '%s' has element type %d; only float32 is supported",
                           required ? "input" : "output", tensor->name, tensor_type->elem_type);
    if (tensor_type->shape == NULL) {
        if (!required)
            return CXR_OK;
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "ONNX: graph input '%s' has no shape",
                           tensor->name);
    }
    if (!required)
        return CXR_OK; /* outputs get their shapes from inference */
    const Onnx__TensorShapeProto *shape = tensor_type->shape;
    if (shape->n_dim > CXR_NN_MAX_RANK)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "ONNX: graph input '%s' has rank %zu",
                           tensor->name, shape->n_dim);
    tensor->rank = (uint32_t)shape->n_dim;
    for (size_t i = 0; i < shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *dim = shape->dim[i];
        if (dim != NULL && dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            tensor->dims[i] = dim->dim_value;
        else
            tensor->dims[i] = 1; /* symbolic (batch): fixed to 1 */
    }
    enum cxr_status status = nn_count_elements(tensor->rank, tensor->dims, &tensor->count, err);
    if (status != CXR_OK)
        return status;
    if (tensor->count == 0)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "ONNX: graph input '%s' is empty",
                           tensor->name);
    tensor->dtype = NN_F32;
    tensor->shaped = true;
    return CXR_OK;
}

static enum cxr_status load_graph(struct cxr_nn_model *model, const Onnx__ModelProto *proto,
                                  struct cxr_err *err)
{
    const Onnx__GraphProto *graph = proto->graph;
    if (graph == NULL)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: the model has no graph");
    for (size_t i = 0; i < proto->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *opset = proto->opset_import[i];
        const char *domain = opset ? safe(opset->domain) : "";
        if (domain[0] != '\0' && strcmp(domain, "ai.onnx") != 0)
            return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                               "ONNX: operator set domain '%s' is not supported", domain);
    }
    if (graph->n_sparse_initializer > 0)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "ONNX: sparse initializers unsupported");

    enum cxr_status status;
    for (size_t i = 0; i < graph->n_initializer; i++) {
        const Onnx__TensorProto *init = graph->initializer[i];
        const char *name = safe(init->name);
        if (name[0] == '\0' || nn_tensor_find(model, name) >= 0)
            return cxr_err_set(err, CXR_ERR_MALFORMED,
                               "ONNX: initializer '%s' is unnamed or defined twice", name);
        int index = nn_tensor_add(model, name);
        if (index < 0)
            return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
        status = tensor_from_proto(&model->tensors[index], init, err);
        if (status != CXR_OK)
            return status;
        if (model->tensors[index].dtype == NN_F32)
            model->stats.parameters += model->tensors[index].count;
    }

    /* Graph inputs that are initializers too (IR < 4 style) are constants, not inputs. */
    size_t inputs = 0;
    model->input_tensors = calloc(graph->n_input + 1, sizeof(int));
    model->output_tensors = calloc(graph->n_output + 1, sizeof(int));
    if (model->input_tensors == NULL || model->output_tensors == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
    for (size_t i = 0; i < graph->n_input; i++) {
        const char *name = safe(graph->input[i]->name);
        if (name[0] == '\0')
            return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: unnamed graph input");
        int existing = nn_tensor_find(model, name);
        if (existing >= 0) {
            if (model->tensors[existing].values != NULL)
                continue;
            return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: graph input '%s' listed twice", name);
        }
        int index = nn_tensor_add(model, name);
        if (index < 0)
            return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
        status = value_info_shape(&model->tensors[index], graph->input[i], true, err);
        if (status != CXR_OK)
            return status;
        model->tensors[index].graph_input = true;
        model->input_tensors[inputs++] = index;
    }
    model->input_count = inputs;
    if (inputs == 0)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "ONNX: the graph has no runtime input");

    model->nodes = calloc(graph->n_node + 1, sizeof(*model->nodes));
    if (model->nodes == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
    for (size_t i = 0; i < graph->n_node; i++) {
        const Onnx__NodeProto *proto_node = graph->node[i];
        struct nn_node *node = &model->nodes[i];
        model->node_count = i + 1;
        node->proto = proto_node;
        node->output_min = -INFINITY;
        node->output_max = INFINITY;
        const char *name = safe(proto_node->name);
        char fallback[32];
        if (name[0] == '\0') {
            snprintf(fallback, sizeof(fallback), "#%zu", i);
            name = fallback;
        }
        node->name = strdup(name);
        node->op_type = strdup(safe(proto_node->op_type));
        if (node->name == NULL || node->op_type == NULL)
            return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
        const char *domain = safe(proto_node->domain);
        if (domain[0] != '\0' && strcmp(domain, "ai.onnx") != 0)
            return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                               "ONNX: node '%s' uses operator %s from domain '%s', which is not "
                               "supported",
                               node->name, node->op_type, domain);
        node->input_count = proto_node->n_input;
        node->output_count = proto_node->n_output;
        node->inputs = calloc(node->input_count + 1, sizeof(int));
        node->outputs = calloc(node->output_count + 1, sizeof(int));
        if (node->inputs == NULL || node->outputs == NULL)
            return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
        for (size_t k = 0; k < node->input_count; k++) {
            const char *input = safe(proto_node->input[k]);
            if (input[0] == '\0') {
                node->inputs[k] = -1;
                continue;
            }
            int index = nn_tensor_find(model, input);
            if (index < 0)
                return cxr_err_set(err, CXR_ERR_MALFORMED,
                                   "ONNX: node '%s' (%s) reads '%s', which no earlier node, "
                                   "input or initializer defines",
                                   node->name, node->op_type, input);
            node->inputs[k] = index;
        }
        for (size_t k = 0; k < node->output_count; k++) {
            const char *output = safe(proto_node->output[k]);
            if (output[0] == '\0') {
                node->outputs[k] = -1;
                continue;
            }
            if (nn_tensor_find(model, output) >= 0)
                return cxr_err_set(err, CXR_ERR_MALFORMED,
                                   "ONNX: node '%s' (%s) redefines tensor '%s'", node->name,
                                   node->op_type, output);
            int index = nn_tensor_add(model, output);
            if (index < 0)
                return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
            model->tensors[index].producer = (int)i;
            node->outputs[k] = index;
        }
    }

    for (size_t i = 0; i < graph->n_output; i++) {
        const char *name = safe(graph->output[i]->name);
        int index = nn_tensor_find(model, name);
        if (index < 0)
            return cxr_err_set(err, CXR_ERR_MALFORMED,
                               "ONNX: graph output '%s' is not produced by the graph", name);
        status = value_info_shape(&model->tensors[index], graph->output[i], false, err);
        if (status != CXR_OK)
            return status;
        for (size_t k = 0; k < i; k++) {
            if (model->output_tensors[k] == index)
                return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: graph output '%s' listed twice",
                                   name);
        }
        model->tensors[index].graph_output = true;
        model->output_tensors[i] = index;
    }
    model->output_count = graph->n_output;
    if (model->output_count == 0)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: the graph has no output");

    model->metadata = calloc(proto->n_metadata_props + 1, sizeof(*model->metadata));
    if (model->metadata == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
    for (size_t i = 0; i < proto->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *entry = proto->metadata_props[i];
        model->metadata[i].key = strdup(safe(entry->key));
        model->metadata[i].value = strdup(safe(entry->value));
        model->metadata_count = i + 1;
        if (model->metadata[i].key == NULL || model->metadata[i].value == NULL)
            return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
    }
    return CXR_OK;
}

enum cxr_status nn_onnx_load(struct cxr_nn_model *model, const unsigned char *bytes, size_t size,
                             unsigned char *owned, void **proto_out, struct cxr_err *err)
{
    Onnx__ModelProto *proto = onnx__model_proto__unpack(NULL, size, bytes);
    free(owned); /* the file's bytes are not needed any more: keep the peak low */
    if (proto == NULL)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "ONNX: the file is not a valid ModelProto (truncated or corrupt)");
    *proto_out = proto;
    return load_graph(model, proto, err);
}

void nn_onnx_free(void *proto)
{
    if (proto != NULL)
        onnx__model_proto__free_unpacked(proto, NULL);
}

/* ---- Attributes ---- */

static const Onnx__AttributeProto *find_attr(const struct nn_node *node, const char *name)
{
    const Onnx__NodeProto *proto = node->proto;
    for (size_t i = 0; i < proto->n_attribute; i++) {
        if (proto->attribute[i] && strcmp(safe(proto->attribute[i]->name), name) == 0)
            return proto->attribute[i];
    }
    return NULL;
}

bool nn_attr_has(const struct nn_node *node, const char *name)
{
    return find_attr(node, name) != NULL;
}

static enum cxr_status attr_type_error(const struct nn_node *node, const char *name,
                                       struct cxr_err *err)
{
    return cxr_err_set(err, CXR_ERR_MALFORMED,
                       "ONNX: node '%s' (%s): attribute %s has the wrong type", node->name,
                       node->op_type, name);
}

enum cxr_status nn_attr_int(const struct nn_node *node, const char *name, int64_t fallback,
                            int64_t *value, struct cxr_err *err)
{
    const Onnx__AttributeProto *attr = find_attr(node, name);
    if (attr == NULL) {
        *value = fallback;
        return CXR_OK;
    }
    if (attr->has_type && attr->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return attr_type_error(node, name, err);
    *value = attr->i;
    return CXR_OK;
}

enum cxr_status nn_attr_float(const struct nn_node *node, const char *name, float fallback,
                              float *value, struct cxr_err *err)
{
    const Onnx__AttributeProto *attr = find_attr(node, name);
    if (attr == NULL) {
        *value = fallback;
        return CXR_OK;
    }
    if (attr->has_type && attr->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
        return attr_type_error(node, name, err);
    *value = attr->f;
    return CXR_OK;
}

enum cxr_status nn_attr_ints(const struct nn_node *node, const char *name, int64_t *values,
                             size_t max, size_t *count, struct cxr_err *err)
{
    const Onnx__AttributeProto *attr = find_attr(node, name);
    *count = 0;
    if (attr == NULL)
        return CXR_OK;
    if (attr->has_type && attr->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return attr_type_error(node, name, err);
    if (attr->n_ints > max)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                           "ONNX: node '%s' (%s): attribute %s has %zu values (at most %zu)",
                           node->name, node->op_type, name, attr->n_ints, max);
    for (size_t i = 0; i < attr->n_ints; i++)
        values[i] = attr->ints[i];
    *count = attr->n_ints;
    return CXR_OK;
}

const char *nn_attr_string(const struct nn_node *node, const char *name, char *buffer, size_t size)
{
    const Onnx__AttributeProto *attr = find_attr(node, name);
    if (attr == NULL)
        return NULL;
    size_t len = attr->has_s ? attr->s.len : 0;
    len = len < size - 1 ? len : size - 1;
    if (len)
        memcpy(buffer, attr->s.data, len);
    buffer[len] = '\0';
    /* Attribute strings are bytes: text with a NUL inside matches no known value. */
    if (strlen(buffer) != len)
        buffer[0] = '\0';
    return buffer;
}

enum cxr_status nn_attr_check(const struct nn_node *node, const char *const *allowed,
                              struct cxr_err *err)
{
    const Onnx__NodeProto *proto = node->proto;
    for (size_t i = 0; i < proto->n_attribute; i++) {
        const char *name = proto->attribute[i] ? safe(proto->attribute[i]->name) : "";
        bool known = false;
        for (const char *const *at = allowed; *at && !known; at++)
            known = strcmp(*at, name) == 0;
        if (!known)
            return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                               "ONNX: node '%s' (%s): attribute '%s' is not supported", node->name,
                               node->op_type, name);
    }
    return CXR_OK;
}

enum cxr_status nn_attr_constant(struct cxr_nn_model *model, const struct nn_node *node,
                                 int tensor_index, struct cxr_err *err)
{
    const Onnx__NodeProto *proto = node->proto;
    struct nn_tensor *tensor = &model->tensors[tensor_index];
    if (proto->n_attribute != 1 || proto->attribute[0] == NULL)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                           "ONNX: node '%s' (Constant) needs exactly one value attribute",
                           node->name);
    const Onnx__AttributeProto *attr = proto->attribute[0];
    const char *name = safe(attr->name);
    if (strcmp(name, "value") == 0 && attr->t != NULL)
        return tensor_from_proto(tensor, attr->t, err);
    size_t count = 0;
    bool is_float = false;
    if (strcmp(name, "value_float") == 0 || strcmp(name, "value_int") == 0) {
        count = 1;
        tensor->rank = 0;
        is_float = name[6] == 'f';
    } else if (strcmp(name, "value_floats") == 0 || strcmp(name, "value_ints") == 0) {
        is_float = name[6] == 'f';
        count = is_float ? attr->n_floats : attr->n_ints;
        tensor->rank = 1;
        tensor->dims[0] = (int64_t)count;
    } else {
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                           "ONNX: node '%s' (Constant): attribute '%s' is not supported",
                           node->name, name);
    }
    tensor->dtype = is_float ? NN_F32 : NN_I64;
    tensor->count = count;
    tensor->values = malloc((count ? count : 1) * 8);
    if (tensor->values == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
    for (size_t i = 0; i < count; i++) {
        if (is_float)
            ((float *)tensor->values)[i] = tensor->rank == 0 ? attr->f : attr->floats[i];
        else
            ((int64_t *)tensor->values)[i] = tensor->rank == 0 ? attr->i : attr->ints[i];
    }
    tensor->shaped = true;
    return CXR_OK;
}
