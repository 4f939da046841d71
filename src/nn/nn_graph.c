/* The graph compiler's driver: walks the ONNX nodes in order, folds constants, infers every
 * shape, checks operators and attributes (data movement and elementwise ones here, layers in
 * nn_ops.c), then has nn_fuse.c fuse BatchNormalization and activations into the layers. */
#include <stdlib.h>
#include <string.h>

#include "nn/nn_fold.h"

static bool is_const(const struct nn_tensor *tensor)
{
    return tensor != NULL && tensor->values != NULL;
}

/* Reads a constant int64 vector input (Reshape shape, Unsqueeze axes, Pad pads, ...). */
static enum cxr_status const_ints(const struct nn_node *node, const struct nn_tensor *tensor,
                                  int64_t *values, size_t max, size_t *count, struct cxr_err *err)
{
    if (!is_const(tensor) || tensor->dtype != NN_I64 || tensor->rank > 1)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                             "input '%s' must be a constant int64 vector",
                             tensor ? tensor->name : "");
    if (tensor->count > max)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "input '%s' is too long",
                             tensor->name);
    memcpy(values, tensor->values, tensor->count * sizeof(int64_t));
    *count = tensor->count;
    return CXR_OK;
}

/* Squeeze/Unsqueeze axes: attribute before opset 13, optional input after. */
static enum cxr_status axes_of(struct cxr_nn_model *model, const struct nn_node *node,
                               int64_t *axes, size_t *count, struct cxr_err *err)
{
    if (nn_attr_has(node, "axes"))
        return nn_attr_ints(node, "axes", axes, CXR_NN_MAX_RANK, count, err);
    struct nn_tensor *input = nn_node_input(model, node, 1);
    if (input == NULL) {
        *count = 0;
        return CXR_OK;
    }
    return const_ints(node, input, axes, CXR_NN_MAX_RANK, count, err);
}

/* Output shape of the reshaping operators, then a fold (constant input) or a view/copy. */
static enum cxr_status reshape_like(struct cxr_nn_model *model, struct nn_node *node, uint32_t rank,
                                    const int64_t *dims, struct cxr_err *err)
{
    struct nn_tensor *in = nn_node_input(model, node, 0);
    struct nn_tensor *out = nn_node_output(model, node, 0);
    if (is_const(in)) {
        node->kind = NN_KIND_DEAD;
        return nn_fold_copy(out, in, rank, dims, err);
    }
    enum cxr_status status = nn_shape_set(out, rank, dims, err);
    if (status != CXR_OK)
        return status;
    if (out->count != in->count)
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "%zu elements cannot become %zu",
                             in->count, out->count);
    node->kind = NN_KIND_RESHAPE; /* the planner turns it into a view where layouts agree */
    return CXR_OK;
}

static enum cxr_status compile_reshape(struct cxr_nn_model *model, struct nn_node *node,
                                       struct cxr_err *err)
{
    static const char *const allowed[] = {"allowzero", NULL};
    enum cxr_status status = nn_attr_check(node, allowed, err);
    struct nn_tensor *in = nn_node_input(model, node, 0);
    int64_t shape[CXR_NN_MAX_RANK];
    size_t rank = 0;
    int64_t allowzero = 0;
    if (status == CXR_OK)
        status = nn_attr_int(node, "allowzero", 0, &allowzero, err);
    if (status == CXR_OK)
        status =
                const_ints(node, nn_node_input(model, node, 1), shape, CXR_NN_MAX_RANK, &rank, err);
    if (status != CXR_OK)
        return status;
    int64_t known = 1;
    int infer = -1;
    for (size_t i = 0; i < rank; i++) {
        if (shape[i] == 0 && !allowzero) {
            if (i >= in->rank)
                return nn_node_error(node, CXR_ERR_MALFORMED, err, "0 past the input's rank");
            shape[i] = in->dims[i];
        }
        if (shape[i] == -1) {
            if (infer >= 0)
                return nn_node_error(node, CXR_ERR_MALFORMED, err, "two -1 in the shape");
            infer = (int)i;
            continue;
        }
        if (shape[i] < 0 || shape[i] > NN_MAX_TENSOR_ELEMENTS ||
            (shape[i] && known > NN_MAX_TENSOR_ELEMENTS / shape[i]))
            return nn_node_error(node, CXR_ERR_MALFORMED, err, "bad shape entry %lld",
                                 (long long)shape[i]);
        known *= shape[i];
    }
    if (infer >= 0) {
        if (known == 0 || (int64_t)in->count % known != 0)
            return nn_node_error(node, CXR_ERR_MALFORMED, err, "cannot infer the -1 dimension");
        shape[infer] = (int64_t)in->count / known;
    }
    return reshape_like(model, node, (uint32_t)rank, shape, err);
}

static enum cxr_status compile_flatten(struct cxr_nn_model *model, struct nn_node *node,
                                       struct cxr_err *err)
{
    static const char *const allowed[] = {"axis", NULL};
    struct nn_tensor *in = nn_node_input(model, node, 0);
    int64_t axis = 1;
    enum cxr_status status = nn_attr_check(node, allowed, err);
    if (status == CXR_OK)
        status = nn_attr_int(node, "axis", 1, &axis, err);
    if (status != CXR_OK)
        return status;
    if (axis < 0)
        axis += in->rank;
    if (axis < 0 || axis > (int64_t)in->rank)
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "axis out of range");
    int64_t dims[2] = {1, 1};
    for (uint32_t k = 0; k < in->rank; k++)
        dims[(int64_t)k < axis ? 0 : 1] *= in->dims[k];
    return reshape_like(model, node, 2, dims, err);
}

static enum cxr_status compile_squeeze(struct cxr_nn_model *model, struct nn_node *node,
                                       bool unsqueeze, struct cxr_err *err)
{
    static const char *const allowed[] = {"axes", NULL};
    struct nn_tensor *in = nn_node_input(model, node, 0);
    int64_t axes[CXR_NN_MAX_RANK];
    size_t count = 0;
    enum cxr_status status = nn_attr_check(node, allowed, err);
    if (status == CXR_OK)
        status = axes_of(model, node, axes, &count, err);
    if (status != CXR_OK)
        return status;
    uint32_t out_rank = unsqueeze ? in->rank + (uint32_t)count : in->rank;
    if (out_rank > CXR_NN_MAX_RANK)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "rank above %d", CXR_NN_MAX_RANK);
    bool marked[CXR_NN_MAX_RANK] = {false};
    for (size_t i = 0; i < count; i++) {
        int64_t axis = axes[i] < 0 ? axes[i] + out_rank : axes[i];
        if (axis < 0 || axis >= (int64_t)out_rank || marked[axis])
            return nn_node_error(node, CXR_ERR_MALFORMED, err, "bad axis %lld", (long long)axes[i]);
        if (!unsqueeze && in->dims[axis] != 1)
            return nn_node_error(node, CXR_ERR_MALFORMED, err, "axis %lld is not 1",
                                 (long long)axis);
        marked[axis] = true;
    }
    int64_t dims[CXR_NN_MAX_RANK];
    uint32_t rank = 0;
    if (unsqueeze) {
        for (uint32_t k = 0, from = 0; k < out_rank; k++)
            dims[rank++] = marked[k] ? 1 : in->dims[from++];
    } else {
        for (uint32_t k = 0; k < in->rank; k++) {
            if (count == 0 ? in->dims[k] != 1 : !marked[k])
                dims[rank++] = in->dims[k];
        }
    }
    return reshape_like(model, node, rank, dims, err);
}

static enum cxr_status compile_concat(struct cxr_nn_model *model, struct nn_node *node,
                                      struct cxr_err *err)
{
    static const char *const allowed[] = {"axis", NULL};
    enum cxr_status status = nn_attr_check(node, allowed, err);
    int64_t axis = 0;
    if (status == CXR_OK)
        status = nn_attr_int(node, "axis", 0, &axis, err);
    if (status != CXR_OK)
        return status;
    if (node->input_count == 0)
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "no inputs");
    bool all_const = true;
    const struct nn_tensor *parts[64];
    if (node->input_count > 4096)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "too many inputs");
    for (size_t k = 0; k < node->input_count; k++) {
        struct nn_tensor *in = nn_node_input(model, node, k);
        if (in == NULL)
            return nn_node_error(node, CXR_ERR_MALFORMED, err, "empty input");
        all_const = all_const && is_const(in);
        if (k < 64)
            parts[k] = in;
    }
    struct nn_tensor *first = nn_node_input(model, node, 0);
    struct nn_tensor *out = nn_node_output(model, node, 0);
    if (all_const && node->input_count <= 64) {
        node->kind = NN_KIND_DEAD;
        return nn_fold_concat(out, parts, node->input_count, axis, err);
    }
    for (size_t k = 0; k < node->input_count; k++) {
        if (is_const(nn_node_input(model, node, k)))
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                                 "concatenating constants with computed tensors");
    }
    if (axis < -(int64_t)first->rank || axis >= (int64_t)first->rank)
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "axis out of range");
    if (axis < 0)
        axis += first->rank;
    int64_t dims[CXR_NN_MAX_RANK];
    memcpy(dims, first->dims, sizeof(dims));
    dims[axis] = 0;
    for (size_t k = 0; k < node->input_count; k++) {
        struct nn_tensor *in = nn_node_input(model, node, k);
        if (in->rank != first->rank || in->dtype != NN_F32)
            return nn_node_error(node, CXR_ERR_MALFORMED, err, "inputs differ in rank or type");
        for (uint32_t d = 0; d < in->rank; d++) {
            if ((int64_t)d != axis && in->dims[d] != first->dims[d])
                return nn_node_error(node, CXR_ERR_MALFORMED, err, "input shapes differ");
        }
        dims[axis] += in->dims[axis];
    }
    node->axis = axis;
    node->kind = NN_KIND_CONCAT;
    return nn_shape_set(out, first->rank, dims, err);
}

static enum cxr_status compile_transpose(struct cxr_nn_model *model, struct nn_node *node,
                                         struct cxr_err *err)
{
    static const char *const allowed[] = {"perm", NULL};
    struct nn_tensor *in = nn_node_input(model, node, 0);
    struct nn_tensor *out = nn_node_output(model, node, 0);
    size_t count = 0;
    enum cxr_status status = nn_attr_check(node, allowed, err);
    if (status == CXR_OK)
        status = nn_attr_ints(node, "perm", node->perm, CXR_NN_MAX_RANK, &count, err);
    if (status != CXR_OK)
        return status;
    if (count == 0) {
        count = in->rank;
        for (uint32_t k = 0; k < in->rank; k++)
            node->perm[k] = in->rank - 1 - k;
    }
    bool seen[CXR_NN_MAX_RANK] = {false};
    if (count != in->rank)
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "perm does not match the rank");
    for (size_t k = 0; k < count; k++) {
        if (node->perm[k] < 0 || node->perm[k] >= (int64_t)in->rank || seen[node->perm[k]])
            return nn_node_error(node, CXR_ERR_MALFORMED, err, "perm is not a permutation");
        seen[node->perm[k]] = true;
    }
    if (is_const(in)) {
        node->kind = NN_KIND_DEAD;
        return nn_fold_transpose(out, in, node->perm, err);
    }
    int64_t dims[CXR_NN_MAX_RANK];
    for (uint32_t k = 0; k < in->rank; k++)
        dims[k] = in->dims[node->perm[k]];
    node->kind = NN_KIND_TRANSPOSE;
    return nn_shape_set(out, in->rank, dims, err);
}

static enum cxr_status compile_binary(struct cxr_nn_model *model, struct nn_node *node,
                                      enum nn_binary_op op, struct cxr_err *err)
{
    static const char *const allowed[] = {NULL};
    enum cxr_status status = nn_attr_check(node, allowed, err);
    if (status != CXR_OK)
        return status;
    struct nn_tensor *a = nn_node_input(model, node, 0);
    struct nn_tensor *b = nn_node_input(model, node, 1);
    struct nn_tensor *out = nn_node_output(model, node, 0);
    if (a == NULL || b == NULL || node->input_count != 2)
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "needs two inputs");
    if (is_const(a) && is_const(b)) {
        node->kind = NN_KIND_DEAD;
        return nn_fold_binary(out, a, b, op, err);
    }
    if (a->dtype != NN_F32 || b->dtype != NN_F32)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "only float32 operands");
    uint32_t rank;
    int64_t dims[CXR_NN_MAX_RANK];
    if (nn_broadcast_shape(a, b, &rank, dims) != CXR_OK)
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "operand shapes do not broadcast");
    if (rank > XNN_MAX_TENSOR_DIMS)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "rank above %d", XNN_MAX_TENSOR_DIMS);
    node->binary = op;
    node->kind = NN_KIND_BINARY;
    return nn_shape_set(out, rank, dims, err);
}

static enum cxr_status compile_pad(struct cxr_nn_model *model, struct nn_node *node,
                                   struct cxr_err *err)
{
    static const char *const allowed[] = {"mode", "pads", "value", NULL};
    enum cxr_status status = nn_attr_check(node, allowed, err);
    if (status != CXR_OK)
        return status;
    struct nn_tensor *in = nn_node_input(model, node, 0);
    struct nn_tensor *out = nn_node_output(model, node, 0);
    char mode_text[32];
    const char *mode = nn_attr_string(node, "mode", mode_text, sizeof(mode_text));
    if (mode != NULL && strcmp(mode, "constant") != 0)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "mode '%s' (only constant)", mode);
    int64_t pads[2 * CXR_NN_MAX_RANK];
    size_t count = 0;
    node->pad_value = 0.0f;
    if (nn_attr_has(node, "pads")) {
        status = nn_attr_ints(node, "pads", pads, 2 * CXR_NN_MAX_RANK, &count, err);
        if (status == CXR_OK)
            status = nn_attr_float(node, "value", 0.0f, &node->pad_value, err);
    } else {
        status = const_ints(node, nn_node_input(model, node, 1), pads, 2 * CXR_NN_MAX_RANK, &count,
                            err);
        struct nn_tensor *value = nn_node_input(model, node, 2);
        if (status == CXR_OK && value != NULL) {
            if (!is_const(value) || value->count != 1)
                return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                                     "constant_value must be a constant scalar");
            node->pad_value = (float)nn_fold_get(value, 0);
        }
        if (status == CXR_OK && nn_node_input(model, node, 3) != NULL)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "the axes input");
    }
    if (status != CXR_OK)
        return status;
    if (count != 2 * (size_t)in->rank)
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "pads does not match the rank");
    if (is_const(in))
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "padding a constant");
    int64_t dims[CXR_NN_MAX_RANK];
    bool any = false;
    for (uint32_t k = 0; k < in->rank; k++) {
        if (pads[k] < 0 || pads[k + in->rank] < 0)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "negative pads");
        if (pads[k] > 65536 || pads[k + in->rank] > 65536)
            return nn_node_error(node, CXR_ERR_LIMIT, err, "pads too large");
        node->pad_begin[k] = (size_t)pads[k];
        node->pad_end[k] = (size_t)pads[k + in->rank];
        dims[k] = in->dims[k] + pads[k] + pads[k + in->rank];
        any = any || pads[k] || pads[k + in->rank];
    }
    if (in->rank > XNN_MAX_TENSOR_DIMS)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "rank above %d", XNN_MAX_TENSOR_DIMS);
    node->kind = any ? NN_KIND_PAD : NN_KIND_VIEW;
    return nn_shape_set(out, in->rank, dims, err);
}

/* One node: fold it, or infer its output shapes and check what it asks for. */
static enum cxr_status compile_node(struct cxr_nn_model *model, struct nn_node *node,
                                    struct cxr_err *err)
{
    const char *op = node->op_type;
    for (size_t k = 0; k < node->input_count; k++) {
        struct nn_tensor *in = nn_node_input(model, node, k);
        if (in != NULL && !in->shaped)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                                 "input '%s' has no value (it comes from an unsupported "
                                 "output)",
                                 in->name);
    }
    struct nn_tensor *in = nn_node_input(model, node, 0);
    struct nn_tensor *out = nn_node_output(model, node, 0);
    if (strcmp(op, "Constant") == 0) {
        if (out == NULL)
            return nn_node_error(node, CXR_ERR_MALFORMED, err, "no output");
        node->kind = NN_KIND_DEAD;
        return nn_attr_constant(model, node, node->outputs[0], err);
    }
    if (out == NULL || (in == NULL && strcmp(op, "Constant") != 0))
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "missing input or output");
    for (size_t k = 1; k < node->output_count; k++) {
        /* Dropout's mask and similar extras: allowed only while nothing reads them. */
        if (node->outputs[k] >= 0 && strcmp(op, "Dropout") != 0)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "more than one output");
    }

    if (strcmp(op, "Identity") == 0 || strcmp(op, "Dropout") == 0) {
        static const char *const allowed[] = {"seed", "ratio", NULL};
        enum cxr_status status = nn_attr_check(node, allowed, err);
        if (status == CXR_OK && nn_node_input(model, node, 2) != NULL &&
            strcmp(op, "Dropout") == 0) {
            struct nn_tensor *training = nn_node_input(model, node, 2);
            if (!is_const(training) || nn_fold_get(training, 0) != 0)
                return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "training mode");
        }
        if (status != CXR_OK)
            return status;
        if (is_const(in)) {
            node->kind = NN_KIND_DEAD;
            return nn_fold_copy(out, in, in->rank, in->dims, err);
        }
        node->kind = NN_KIND_VIEW;
        return nn_shape_set(out, in->rank, in->dims, err);
    }
    if (strcmp(op, "Shape") == 0) {
        static const char *const allowed[] = {"start", "end", NULL};
        int64_t start = 0, end = in->rank;
        enum cxr_status status = nn_attr_check(node, allowed, err);
        if (status == CXR_OK)
            status = nn_attr_int(node, "start", 0, &start, err);
        if (status == CXR_OK)
            status = nn_attr_int(node, "end", in->rank, &end, err);
        if (status != CXR_OK)
            return status;
        start = start < 0 ? start + in->rank : start;
        end = end < 0 ? end + in->rank : end;
        start = start < 0 ? 0 : (start > (int64_t)in->rank ? in->rank : start);
        end = end < start ? start : (end > (int64_t)in->rank ? in->rank : end);
        int64_t dims[1] = {end - start};
        status = nn_fold_set(out, NN_I64, 1, dims, err);
        if (status != CXR_OK)
            return status;
        for (int64_t k = start; k < end; k++)
            ((int64_t *)out->values)[k - start] = in->dims[k];
        node->kind = NN_KIND_DEAD;
        return CXR_OK;
    }
    if (strcmp(op, "Gather") == 0) {
        static const char *const allowed[] = {"axis", NULL};
        int64_t axis = 0;
        enum cxr_status status = nn_attr_check(node, allowed, err);
        if (status == CXR_OK)
            status = nn_attr_int(node, "axis", 0, &axis, err);
        if (status != CXR_OK)
            return status;
        struct nn_tensor *indices = nn_node_input(model, node, 1);
        if (!is_const(in) || !is_const(indices))
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                                 "only on constants (shape arithmetic)");
        node->kind = NN_KIND_DEAD;
        return nn_fold_gather(out, in, indices, axis, err);
    }
    if (strcmp(op, "Cast") == 0) {
        static const char *const allowed[] = {"to", "saturate", NULL};
        int64_t to = 0;
        enum cxr_status status = nn_attr_check(node, allowed, err);
        if (status == CXR_OK)
            status = nn_attr_int(node, "to", 0, &to, err);
        if (status != CXR_OK)
            return status;
        enum nn_dtype dtype;
        if (to == 1 || to == 11)
            dtype = NN_F32;
        else if (to == 6 || to == 7)
            dtype = NN_I64;
        else
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "cast to type %lld",
                                 (long long)to);
        if (is_const(in)) {
            node->kind = NN_KIND_DEAD;
            return nn_fold_cast(out, in, dtype, err);
        }
        if (dtype != NN_F32)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "casting activations");
        node->kind = NN_KIND_VIEW;
        return nn_shape_set(out, in->rank, in->dims, err);
    }
    if (strcmp(op, "Reshape") == 0)
        return compile_reshape(model, node, err);
    if (strcmp(op, "Flatten") == 0)
        return compile_flatten(model, node, err);
    if (strcmp(op, "Squeeze") == 0 || strcmp(op, "Unsqueeze") == 0)
        return compile_squeeze(model, node, op[0] == 'U', err);
    if (strcmp(op, "Concat") == 0)
        return compile_concat(model, node, err);
    if (strcmp(op, "Transpose") == 0)
        return compile_transpose(model, node, err);
    if (strcmp(op, "Pad") == 0)
        return compile_pad(model, node, err);
    if (strcmp(op, "Add") == 0)
        return compile_binary(model, node, NN_ADD, err);
    if (strcmp(op, "Sub") == 0)
        return compile_binary(model, node, NN_SUB, err);
    if (strcmp(op, "Mul") == 0)
        return compile_binary(model, node, NN_MUL, err);
    if (strcmp(op, "Div") == 0)
        return compile_binary(model, node, NN_DIV, err);

    if (is_const(in) && strcmp(op, "Gemm") != 0 && strcmp(op, "MatMul") != 0)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "a layer applied to a constant");
    if (in->dtype != NN_F32)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "only float32 data");
    enum cxr_status status = nn_ops_compile(model, node, err);
    if (status == CXR_ERR_NOT_FOUND)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "operator %s is not supported", op);
    return status;
}

enum cxr_status nn_graph_compile(struct cxr_nn_model *model, struct cxr_err *err)
{
    for (size_t i = 0; i < model->node_count; i++) {
        enum cxr_status status = compile_node(model, &model->nodes[i], err);
        if (status != CXR_OK)
            return status;
    }
    for (size_t i = 0; i < model->output_count; i++) {
        const struct nn_tensor *out = &model->tensors[model->output_tensors[i]];
        if (!out->shaped || out->dtype != NN_F32)
            return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                               "ONNX: graph output '%s' is not a float32 tensor", out->name);
    }
    nn_fuse_graph(model);
    for (size_t i = 0; i < model->node_count; i++)
        model->stats.flops += model->nodes[i].kind == NN_KIND_DEAD ? 0 : model->nodes[i].flops;
    return CXR_OK;
}
