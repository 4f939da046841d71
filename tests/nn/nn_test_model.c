/* In-memory ONNX model builder for the runtime's tests (see nn_test_model.h). Every message
 * and string is recorded and freed by tm_destroy; allocation failure aborts the test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_test_model.h"

struct tm_model {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1];
    void **owned;
    size_t owned_count, owned_capacity;
};

static void *own(struct tm_model *model, void *pointer)
{
    if (pointer == NULL) {
        fprintf(stderr, "tm: out of memory\n");
        abort();
    }
    if (model->owned_count == model->owned_capacity) {
        model->owned_capacity = model->owned_capacity ? model->owned_capacity * 2 : 64;
        model->owned = realloc(model->owned, model->owned_capacity * sizeof(void *));
        if (model->owned == NULL)
            abort();
    }
    model->owned[model->owned_count++] = pointer;
    return pointer;
}

static void *alloc(struct tm_model *model, size_t size)
{
    return own(model, calloc(1, size ? size : 1));
}

static char *text(struct tm_model *model, const char *value)
{
    return own(model, strdup(value));
}

/* Appends one pointer to a protobuf-c repeated field (count + array). */
static void append(struct tm_model *model, size_t *count, void ***array, void *item)
{
    void **grown = alloc(model, (*count + 1) * sizeof(void *));
    if (*count)
        memcpy(grown, *array, *count * sizeof(void *));
    grown[(*count)++] = item;
    *array = grown;
}

struct tm_model *tm_create(void)
{
    struct tm_model *model = calloc(1, sizeof(*model));
    if (model == NULL)
        abort();
    Onnx__ModelProto model_init = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto graph_init = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto opset_init = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    model->model = model_init;
    model->graph = graph_init;
    model->opset = opset_init;
    model->opset.has_version = 1;
    model->opset.version = 13;
    model->opsets[0] = &model->opset;
    model->model.has_ir_version = 1;
    model->model.ir_version = 7;
    model->model.n_opset_import = 1;
    model->model.opset_import = model->opsets;
    model->model.graph = &model->graph;
    model->graph.name = text(model, "test");
    return model;
}

void tm_destroy(struct tm_model *model)
{
    if (model == NULL)
        return;
    for (size_t i = 0; i < model->owned_count; i++)
        free(model->owned[i]);
    free(model->owned);
    free(model);
}

static Onnx__ValueInfoProto *value_info(struct tm_model *model, const char *name, uint32_t rank,
                                        const int64_t *dims)
{
    Onnx__ValueInfoProto info_init = ONNX__VALUE_INFO_PROTO__INIT;
    Onnx__TypeProto type_init = ONNX__TYPE_PROTO__INIT;
    Onnx__TypeProto__Tensor tensor_init = ONNX__TYPE_PROTO__TENSOR__INIT;
    Onnx__TensorShapeProto shape_init = ONNX__TENSOR_SHAPE_PROTO__INIT;
    Onnx__ValueInfoProto *info = alloc(model, sizeof(*info));
    Onnx__TypeProto *type = alloc(model, sizeof(*type));
    Onnx__TypeProto__Tensor *tensor = alloc(model, sizeof(*tensor));
    Onnx__TensorShapeProto *shape = alloc(model, sizeof(*shape));
    *info = info_init;
    *type = type_init;
    *tensor = tensor_init;
    *shape = shape_init;
    info->name = text(model, name);
    info->type = type;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tensor;
    tensor->has_elem_type = 1;
    tensor->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    if (dims != NULL) {
        tensor->shape = shape;
        for (uint32_t k = 0; k < rank; k++) {
            Onnx__TensorShapeProto__Dimension dim_init = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
            Onnx__TensorShapeProto__Dimension *dim = alloc(model, sizeof(*dim));
            *dim = dim_init;
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = dims[k];
            append(model, &shape->n_dim, (void ***)&shape->dim, dim);
        }
    }
    return info;
}

void tm_input(struct tm_model *model, const char *name, uint32_t rank, const int64_t *dims)
{
    append(model, &model->graph.n_input, (void ***)&model->graph.input,
           value_info(model, name, rank, dims));
}

void tm_output(struct tm_model *model, const char *name)
{
    append(model, &model->graph.n_output, (void ***)&model->graph.output,
           value_info(model, name, 0, NULL));
}

static Onnx__TensorProto *tensor(struct tm_model *model, const char *name, uint32_t rank,
                                 const int64_t *dims)
{
    Onnx__TensorProto init = ONNX__TENSOR_PROTO__INIT;
    Onnx__TensorProto *proto = alloc(model, sizeof(*proto));
    *proto = init;
    proto->name = text(model, name);
    proto->n_dims = rank;
    proto->dims = alloc(model, (rank + 1) * sizeof(int64_t));
    memcpy(proto->dims, dims, rank * sizeof(int64_t));
    return proto;
}

static size_t element_count(uint32_t rank, const int64_t *dims)
{
    size_t count = 1;
    for (uint32_t k = 0; k < rank; k++)
        count *= (size_t)dims[k];
    return count;
}

Onnx__TensorProto *tm_initializer(struct tm_model *model, const char *name, uint32_t rank,
                                  const int64_t *dims, const float *values, int raw)
{
    Onnx__TensorProto *proto = tensor(model, name, rank, dims);
    size_t count = element_count(rank, dims);
    proto->has_data_type = 1;
    proto->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    if (raw) {
        proto->has_raw_data = 1;
        proto->raw_data.len = count * sizeof(float);
        proto->raw_data.data = alloc(model, count * sizeof(float));
        memcpy(proto->raw_data.data, values, count * sizeof(float));
    } else {
        proto->n_float_data = count;
        proto->float_data = alloc(model, count * sizeof(float));
        memcpy(proto->float_data, values, count * sizeof(float));
    }
    append(model, &model->graph.n_initializer, (void ***)&model->graph.initializer, proto);
    return proto;
}

Onnx__TensorProto *tm_initializer_i64(struct tm_model *model, const char *name, uint32_t rank,
                                      const int64_t *dims, const int64_t *values)
{
    Onnx__TensorProto *proto = tensor(model, name, rank, dims);
    size_t count = element_count(rank, dims);
    proto->has_data_type = 1;
    proto->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    proto->n_int64_data = count;
    proto->int64_data = alloc(model, count * sizeof(int64_t));
    memcpy(proto->int64_data, values, count * sizeof(int64_t));
    append(model, &model->graph.n_initializer, (void ***)&model->graph.initializer, proto);
    return proto;
}

static void split(struct tm_model *model, const char *list, size_t *count, char ***names)
{
    if (list == NULL || list[0] == '\0')
        return;
    char *copy = text(model, list);
    for (char *start = copy;;) {
        char *comma = strchr(start, ',');
        if (comma)
            *comma = '\0';
        append(model, count, (void ***)names, start);
        if (!comma)
            break;
        start = comma + 1;
    }
}

Onnx__NodeProto *tm_node(struct tm_model *model, const char *op, const char *name,
                         const char *inputs, const char *outputs)
{
    Onnx__NodeProto init = ONNX__NODE_PROTO__INIT;
    Onnx__NodeProto *node = alloc(model, sizeof(*node));
    *node = init;
    node->op_type = text(model, op);
    node->name = text(model, name);
    split(model, inputs, &node->n_input, &node->input);
    split(model, outputs, &node->n_output, &node->output);
    append(model, &model->graph.n_node, (void ***)&model->graph.node, node);
    return node;
}

static Onnx__AttributeProto *attribute(struct tm_model *model, Onnx__NodeProto *node,
                                       const char *name, Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto init = ONNX__ATTRIBUTE_PROTO__INIT;
    Onnx__AttributeProto *attr = alloc(model, sizeof(*attr));
    *attr = init;
    attr->name = text(model, name);
    attr->has_type = 1;
    attr->type = type;
    append(model, &node->n_attribute, (void ***)&node->attribute, attr);
    return attr;
}

void tm_attr_int(struct tm_model *model, Onnx__NodeProto *node, const char *name, int64_t value)
{
    Onnx__AttributeProto *attr =
            attribute(model, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    attr->has_i = 1;
    attr->i = value;
}

void tm_attr_float(struct tm_model *model, Onnx__NodeProto *node, const char *name, float value)
{
    Onnx__AttributeProto *attr =
            attribute(model, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    attr->has_f = 1;
    attr->f = value;
}

void tm_attr_ints(struct tm_model *model, Onnx__NodeProto *node, const char *name, size_t count,
                  const int64_t *values)
{
    Onnx__AttributeProto *attr =
            attribute(model, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    attr->n_ints = count;
    attr->ints = alloc(model, (count + 1) * sizeof(int64_t));
    memcpy(attr->ints, values, count * sizeof(int64_t));
}

void tm_attr_string(struct tm_model *model, Onnx__NodeProto *node, const char *name,
                    const char *value)
{
    Onnx__AttributeProto *attr =
            attribute(model, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    attr->has_s = 1;
    attr->s.len = strlen(value);
    attr->s.data = (uint8_t *)text(model, value);
}

void tm_metadata(struct tm_model *model, const char *key, const char *value)
{
    Onnx__StringStringEntryProto init = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    Onnx__StringStringEntryProto *entry = alloc(model, sizeof(*entry));
    *entry = init;
    entry->key = text(model, key);
    entry->value = text(model, value);
    append(model, &model->model.n_metadata_props, (void ***)&model->model.metadata_props, entry);
}

unsigned char *tm_pack(struct tm_model *model, size_t *size)
{
    *size = onnx__model_proto__get_packed_size(&model->model);
    unsigned char *bytes = malloc(*size + 1);
    if (bytes == NULL)
        abort();
    onnx__model_proto__pack(&model->model, bytes);
    return bytes;
}
