/* The layers of a CNN at load time: Conv, BatchNormalization, pooling, Gemm/MatMul,
 * activations and Resize. Each checks its attributes (anything unknown is refused), infers
 * its output shape and takes private copies of the weights that fusion may rewrite. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_fold.h"

static bool is_const(const struct nn_tensor *tensor)
{
    return tensor != NULL && tensor->values != NULL;
}

static float *copy_floats(const struct nn_tensor *tensor, size_t count)
{
    float *copy = malloc((count ? count : 1) * sizeof(float));
    if (copy != NULL && tensor != NULL)
        memcpy(copy, tensor->values, count * sizeof(float));
    else if (copy != NULL)
        memset(copy, 0, count * sizeof(float));
    return copy;
}

/* Spatial attributes shared by Conv and the pools; fills node->pool and the output H, W. */
static enum cxr_status spatial(const struct nn_node *node, struct nn_pool2d *pool,
                               const int64_t *input_hw, const int64_t *kernel_in, bool ceil_mode,
                               int64_t *output_hw, struct cxr_err *err)
{
    int64_t kernel[2] = {kernel_in[0], kernel_in[1]}, strides[2] = {1, 1};
    int64_t dilations[2] = {1, 1}, pads[4] = {0, 0, 0, 0};
    size_t count;
    enum cxr_status status = nn_attr_ints(node, "strides", strides, 2, &count, err);
    if (status == CXR_OK && count != 0 && count != 2)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "strides must have 2 values");
    if (status == CXR_OK)
        status = nn_attr_ints(node, "dilations", dilations, 2, &count, err);
    if (status == CXR_OK && count != 0 && count != 2)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "dilations must have 2 values");
    if (status == CXR_OK)
        status = nn_attr_ints(node, "pads", pads, 4, &count, err);
    if (status == CXR_OK && count != 0 && count != 4)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "pads must have 4 values");
    if (status != CXR_OK)
        return status;
    char auto_pad_text[32];
    const char *auto_pad = nn_attr_string(node, "auto_pad", auto_pad_text, sizeof(auto_pad_text));
    if (auto_pad == NULL || auto_pad[0] == '\0')
        auto_pad = "NOTSET";
    for (int d = 0; d < 2; d++) {
        if (kernel[d] < 1 || kernel[d] > 4096 || strides[d] < 1 || strides[d] > 4096 ||
            dilations[d] < 1 || dilations[d] > 4096 || pads[d] < 0 || pads[d + 2] < 0 ||
            pads[d] > 4096 || pads[d + 2] > 4096)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                                 "kernel, strides, dilations or pads out of range");
        int64_t effective = (kernel[d] - 1) * dilations[d] + 1;
        if (strcmp(auto_pad, "SAME_UPPER") == 0 || strcmp(auto_pad, "SAME_LOWER") == 0) {
            int64_t out = (input_hw[d] + strides[d] - 1) / strides[d];
            int64_t total = (out - 1) * strides[d] + effective - input_hw[d];
            total = total < 0 ? 0 : total;
            pads[d] = auto_pad[5] == 'U' ? total / 2 : total - total / 2;
            pads[d + 2] = total - pads[d];
        } else if (strcmp(auto_pad, "VALID") == 0) {
            pads[d] = pads[d + 2] = 0;
        } else if (strcmp(auto_pad, "NOTSET") != 0) {
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "auto_pad '%s'", auto_pad);
        }
        int64_t span = input_hw[d] + pads[d] + pads[d + 2] - effective;
        if (span < 0)
            return nn_node_error(node, CXR_ERR_MALFORMED, err, "kernel larger than the input");
        int64_t out = span / strides[d] + 1;
        if (ceil_mode && span % strides[d] != 0) {
            out++;
            /* The last window must start inside the input or its leading padding. */
            if ((out - 1) * strides[d] >= input_hw[d] + pads[d])
                out--;
        }
        /* ceil_mode's partial last window becomes extra trailing padding. */
        int64_t needed = (out - 1) * strides[d] + effective - input_hw[d] - pads[d];
        if (needed > pads[d + 2])
            pads[d + 2] = needed;
        output_hw[d] = out;
        pool->kernel[d] = (uint32_t)kernel[d];
        pool->stride[d] = (uint32_t)strides[d];
        pool->dilation[d] = (uint32_t)dilations[d];
    }
    pool->pad[0] = (uint32_t)pads[0];
    pool->pad[1] = (uint32_t)pads[1];
    pool->pad[2] = (uint32_t)pads[2];
    pool->pad[3] = (uint32_t)pads[3];
    return CXR_OK;
}

static enum cxr_status compile_conv(struct cxr_nn_model *model, struct nn_node *node,
                                    struct cxr_err *err)
{
    static const char *const allowed[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                          "pads",     "strides",   NULL};
    struct nn_tensor *x = nn_node_input(model, node, 0);
    struct nn_tensor *w = nn_node_input(model, node, 1);
    struct nn_tensor *b = nn_node_input(model, node, 2);
    struct nn_tensor *y = nn_node_output(model, node, 0);
    enum cxr_status status = nn_attr_check(node, allowed, err);
    if (status != CXR_OK)
        return status;
    if (x->rank != 4)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "only 2-D convolutions");
    if (!is_const(w) || w->dtype != NN_F32 || w->rank != 4)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "weights must be a 4-D constant");
    int64_t group = 1;
    status = nn_attr_int(node, "group", 1, &group, err);
    if (status != CXR_OK)
        return status;
    int64_t channels = x->dims[1], outputs = w->dims[0];
    if (group < 1 || channels % group != 0 || outputs % group != 0 ||
        w->dims[1] != channels / group)
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "weights do not match the input");
    if (b != NULL && (!is_const(b) || b->dtype != NN_F32 || b->count != (size_t)outputs))
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "bias must be a constant [M]");
    int64_t kernel_attr[2];
    size_t count;
    status = nn_attr_ints(node, "kernel_shape", kernel_attr, 2, &count, err);
    if (status != CXR_OK)
        return status;
    if (count != 0 && (count != 2 || kernel_attr[0] != w->dims[2] || kernel_attr[1] != w->dims[3]))
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "kernel_shape differs from weights");
    int64_t out_hw[2];
    status = spatial(node, &node->pool, &x->dims[2], &w->dims[2], false, out_hw, err);
    if (status != CXR_OK)
        return status;
    node->groups = (uint32_t)group;
    node->in_channels = (size_t)channels;
    node->out_channels = (size_t)outputs;
    node->weights = copy_floats(w, w->count);
    node->bias = copy_floats(b, (size_t)outputs);
    if (node->weights == NULL || node->bias == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
    node->kind = NN_KIND_CONV;
    int64_t dims[4] = {x->dims[0], outputs, out_hw[0], out_hw[1]};
    node->flops = 2ull * (uint64_t)dims[0] * (uint64_t)outputs * (uint64_t)out_hw[0] *
                  (uint64_t)out_hw[1] * (uint64_t)(channels / group) * (uint64_t)w->dims[2] *
                  (uint64_t)w->dims[3];
    return nn_shape_set(y, 4, dims, err);
}

static enum cxr_status compile_pool(struct cxr_nn_model *model, struct nn_node *node, bool max,
                                    struct cxr_err *err)
{
    static const char *const allowed_max[] = {"auto_pad",     "ceil_mode", "dilations",
                                              "kernel_shape", "pads",      "storage_order",
                                              "strides",      NULL};
    static const char *const allowed_avg[] = {"auto_pad",     "ceil_mode", "count_include_pad",
                                              "kernel_shape", "pads",      "strides",
                                              "dilations",    NULL};
    struct nn_tensor *x = nn_node_input(model, node, 0);
    struct nn_tensor *y = nn_node_output(model, node, 0);
    enum cxr_status status = nn_attr_check(node, max ? allowed_max : allowed_avg, err);
    if (status != CXR_OK)
        return status;
    if (x->rank != 4)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "only 2-D pooling");
    if (node->output_count > 1 && node->outputs[1] >= 0)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "the Indices output");
    int64_t kernel[2], ceil_mode = 0, storage = 0, include = 0;
    size_t count;
    status = nn_attr_ints(node, "kernel_shape", kernel, 2, &count, err);
    if (status == CXR_OK && count != 2)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "kernel_shape must have 2 values");
    if (status == CXR_OK)
        status = nn_attr_int(node, "ceil_mode", 0, &ceil_mode, err);
    if (status == CXR_OK)
        status = nn_attr_int(node, "storage_order", 0, &storage, err);
    if (status == CXR_OK)
        status = nn_attr_int(node, "count_include_pad", 0, &include, err);
    if (status != CXR_OK)
        return status;
    if (storage != 0)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "storage_order 1");
    int64_t out_hw[2];
    status = spatial(node, &node->pool, &x->dims[2], kernel, ceil_mode != 0, out_hw, err);
    if (status != CXR_OK)
        return status;
    const struct nn_pool2d *pool = &node->pool;
    bool padded = pool->pad[0] || pool->pad[1] || pool->pad[2] || pool->pad[3];
    bool dilated = pool->dilation[0] != 1 || pool->dilation[1] != 1;
    node->pool.count_include_pad = include != 0;
    /* XNNPACK pools need a window above one element; its average pool excludes padding
     * and knows no dilation. Everything else runs the reference loop. */
    node->pool.naive = (uint64_t)kernel[0] * (uint64_t)kernel[1] < 2 ||
                       (!max && ((padded && include) || dilated));
    node->kind = max ? NN_KIND_MAXPOOL : NN_KIND_AVGPOOL;
    int64_t dims[4] = {x->dims[0], x->dims[1], out_hw[0], out_hw[1]};
    return nn_shape_set(y, 4, dims, err);
}

static enum cxr_status compile_batchnorm(struct cxr_nn_model *model, struct nn_node *node,
                                         struct cxr_err *err)
{
    static const char *const allowed[] = {"epsilon", "momentum", "training_mode", "spatial", NULL};
    struct nn_tensor *x = nn_node_input(model, node, 0);
    enum cxr_status status = nn_attr_check(node, allowed, err);
    float epsilon = 1e-5f;
    int64_t training = 0, spatial_attr = 1;
    if (status == CXR_OK)
        status = nn_attr_float(node, "epsilon", 1e-5f, &epsilon, err);
    if (status == CXR_OK)
        status = nn_attr_int(node, "training_mode", 0, &training, err);
    if (status == CXR_OK)
        status = nn_attr_int(node, "spatial", 1, &spatial_attr, err);
    if (status != CXR_OK)
        return status;
    if (training != 0 || spatial_attr != 1 || node->output_count > 1)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "training mode");
    if (x->rank < 2 || x->rank == 3 || x->rank > 4)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "only [N,C] and [N,C,H,W] inputs");
    size_t channels = (size_t)x->dims[1];
    const struct nn_tensor *params[4];
    for (int k = 0; k < 4; k++) {
        params[k] = nn_node_input(model, node, (size_t)k + 1);
        if (!is_const(params[k]) || params[k]->dtype != NN_F32 || params[k]->count != channels)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                                 "scale, bias, mean and variance must be constants [C]");
    }
    node->scale = malloc(channels * sizeof(float));
    node->bias = malloc(channels * sizeof(float));
    if (node->scale == NULL || node->bias == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
    const float *gamma = params[0]->values, *beta = params[1]->values;
    const float *mean = params[2]->values, *var = params[3]->values;
    for (size_t c = 0; c < channels; c++) {
        /* Computed in double so the folded weights round once. */
        double scale = (double)gamma[c] / sqrt((double)var[c] + (double)epsilon);
        node->scale[c] = (float)scale;
        node->bias[c] = (float)((double)beta[c] - (double)mean[c] * scale);
    }
    node->in_channels = channels;
    node->kind = NN_KIND_AFFINE;
    return nn_shape_set(nn_node_output(model, node, 0), x->rank, x->dims, err);
}

static enum cxr_status compile_activation(struct cxr_nn_model *model, struct nn_node *node,
                                          struct cxr_err *err)
{
    const char *op = node->op_type;
    struct nn_tensor *x = nn_node_input(model, node, 0);
    enum cxr_status status = CXR_OK;
    if (strcmp(op, "Relu") == 0) {
        static const char *const allowed[] = {NULL};
        status = nn_attr_check(node, allowed, err);
        node->output_min = 0.0f;
        node->kind = NN_KIND_CLAMP;
    } else if (strcmp(op, "Clip") == 0) {
        static const char *const allowed[] = {"min", "max", NULL};
        status = nn_attr_check(node, allowed, err);
        if (status == CXR_OK)
            status = nn_attr_float(node, "min", -INFINITY, &node->output_min, err);
        if (status == CXR_OK)
            status = nn_attr_float(node, "max", INFINITY, &node->output_max, err);
        for (size_t k = 1; k < 3 && status == CXR_OK; k++) {
            struct nn_tensor *bound = nn_node_input(model, node, k);
            if (bound == NULL)
                continue;
            if (!is_const(bound) || bound->count != 1 || bound->dtype != NN_F32)
                return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                                     "min and max must be constant scalars");
            *(k == 1 ? &node->output_min : &node->output_max) = *(const float *)bound->values;
        }
        if (node->output_min > node->output_max)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "min above max");
        node->kind = NN_KIND_CLAMP;
    } else if (strcmp(op, "Sigmoid") == 0) {
        static const char *const allowed[] = {NULL};
        status = nn_attr_check(node, allowed, err);
        node->kind = NN_KIND_SIGMOID;
    } else if (strcmp(op, "HardSwish") == 0) {
        static const char *const allowed[] = {NULL};
        status = nn_attr_check(node, allowed, err);
        node->kind = NN_KIND_HARDSWISH;
    } else if (strcmp(op, "HardSigmoid") == 0) {
        static const char *const allowed[] = {"alpha", "beta", NULL};
        float alpha = 0.2f, beta = 0.5f;
        status = nn_attr_check(node, allowed, err);
        if (status == CXR_OK)
            status = nn_attr_float(node, "alpha", 0.2f, &alpha, err);
        if (status == CXR_OK)
            status = nn_attr_float(node, "beta", 0.5f, &beta, err);
        node->scale = malloc(sizeof(float));
        node->bias = malloc(sizeof(float));
        if (node->scale == NULL || node->bias == NULL)
            return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
        node->scale[0] = alpha;
        node->bias[0] = beta;
        node->in_channels = 1; /* one scale and shift for every channel */
        node->output_min = 0.0f;
        node->output_max = 1.0f;
        node->kind = NN_KIND_AFFINE;
    } else {
        return CXR_ERR_NOT_FOUND;
    }
    if (status != CXR_OK)
        return status;
    return nn_shape_set(nn_node_output(model, node, 0), x->rank, x->dims, err);
}

static enum cxr_status compile_global_pool(struct cxr_nn_model *model, struct nn_node *node,
                                           struct cxr_err *err)
{
    struct nn_tensor *x = nn_node_input(model, node, 0);
    enum cxr_status status;
    int64_t keepdims = 1;
    if (strcmp(node->op_type, "ReduceMean") == 0) {
        static const char *const allowed[] = {"axes", "keepdims", NULL};
        int64_t axes[CXR_NN_MAX_RANK];
        size_t count = 0;
        status = nn_attr_check(node, allowed, err);
        if (status == CXR_OK)
            status = nn_attr_ints(node, "axes", axes, CXR_NN_MAX_RANK, &count, err);
        if (status == CXR_OK)
            status = nn_attr_int(node, "keepdims", 1, &keepdims, err);
        if (status != CXR_OK)
            return status;
        struct nn_tensor *axes_input = nn_node_input(model, node, 1);
        if (axes_input != NULL) {
            if (!is_const(axes_input) || axes_input->dtype != NN_I64 || axes_input->count > 8)
                return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "axes must be constant");
            count = axes_input->count;
            memcpy(axes, axes_input->values, count * sizeof(int64_t));
        }
        bool h = false, w = false;
        for (size_t i = 0; i < count; i++) {
            int64_t axis = axes[i] < 0 ? axes[i] + x->rank : axes[i];
            h = h || axis == 2;
            w = w || axis == 3;
            if (axis != 2 && axis != 3)
                count = 99;
        }
        if (x->rank != 4 || count != 2 || !h || !w)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                                 "only the mean over H and W of a 4-D tensor");
    } else {
        static const char *const allowed[] = {NULL};
        status = nn_attr_check(node, allowed, err);
        if (status != CXR_OK)
            return status;
        if (x->rank != 4)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "only 4-D inputs");
    }
    node->kind = NN_KIND_GAP;
    int64_t dims[4] = {x->dims[0], x->dims[1], 1, 1};
    return nn_shape_set(nn_node_output(model, node, 0), keepdims ? 4 : 2, dims, err);
}

static enum cxr_status compile_gemm(struct cxr_nn_model *model, struct nn_node *node,
                                    struct cxr_err *err)
{
    struct nn_tensor *a = nn_node_input(model, node, 0);
    struct nn_tensor *b = nn_node_input(model, node, 1);
    struct nn_tensor *c = nn_node_input(model, node, 2);
    struct nn_tensor *y = nn_node_output(model, node, 0);
    bool matmul = strcmp(node->op_type, "MatMul") == 0;
    int64_t trans_a = 0, trans_b = 0;
    float alpha = 1.0f, beta = 1.0f;
    enum cxr_status status;
    if (matmul) {
        static const char *const allowed[] = {NULL};
        status = nn_attr_check(node, allowed, err);
    } else {
        static const char *const allowed[] = {"alpha", "beta", "transA", "transB", NULL};
        status = nn_attr_check(node, allowed, err);
        if (status == CXR_OK)
            status = nn_attr_int(node, "transA", 0, &trans_a, err);
        if (status == CXR_OK)
            status = nn_attr_int(node, "transB", 0, &trans_b, err);
        if (status == CXR_OK)
            status = nn_attr_float(node, "alpha", 1.0f, &alpha, err);
        if (status == CXR_OK)
            status = nn_attr_float(node, "beta", 1.0f, &beta, err);
    }
    if (status != CXR_OK)
        return status;
    if (b == NULL || a->dtype != NN_F32 || b->dtype != NN_F32)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "float32 operands needed");
    if (is_const(a))
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "a constant first operand");
    if (a->rank >= 4)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "operands of rank 4 or more");
    if (matmul && !is_const(b)) {
        /* Both operands computed: the reference batched product (no broadcasting). */
        if (a->rank < 2 || a->rank != b->rank || a->dims[a->rank - 1] != b->dims[b->rank - 2])
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                                 "operands of equal rank >= 2 with matching inner dimension");
        for (uint32_t k = 0; k + 2 < a->rank; k++) {
            if (a->dims[k] != b->dims[k])
                return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "batch broadcasting");
        }
        int64_t dims[CXR_NN_MAX_RANK];
        memcpy(dims, a->dims, sizeof(dims));
        dims[a->rank - 1] = b->dims[b->rank - 1];
        node->kind = NN_KIND_MATMUL;
        status = nn_shape_set(y, a->rank, dims, err);
        if (status == CXR_OK)
            node->flops = 2ull * y->count * (uint64_t)a->dims[a->rank - 1];
        return status;
    }
    if (!is_const(b) || b->rank != 2 || (matmul ? a->rank < 1 : a->rank != 2))
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "only A[M,K] x constant B[K,N]");
    int64_t m_dim = trans_a ? a->dims[1] : (a->rank >= 2 ? a->dims[a->rank - 2] : 1);
    int64_t k_dim = trans_a ? a->dims[0] : a->dims[a->rank - 1];
    int64_t b_k = trans_b ? b->dims[1] : b->dims[0];
    int64_t n_dim = trans_b ? b->dims[0] : b->dims[1];
    if (b_k != k_dim)
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "inner dimensions differ");
    /* C: one value, N values ([N] or [1,N]) go to XNNPACK's bias; [M,1] or [M,N] (and
     * transA) take the reference loop with C expanded to [M,N]. */
    bool per_output = c == NULL || c->count == 1 || (c->rank == 1 && c->dims[0] == n_dim) ||
                      (c->rank == 2 && c->dims[0] == 1 && c->dims[1] == n_dim);
    if (c != NULL && (!is_const(c) || c->dtype != NN_F32 || c->rank > 2 ||
                      (!per_output && !(c->rank == 2 && (c->dims[0] == m_dim) &&
                                        (c->dims[1] == n_dim || c->dims[1] == 1)))))
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                             "C must be a constant broadcastable to [M,N]");
    bool reference = trans_a != 0 || !per_output;
    /* Weights kept as [N, K]; alpha and beta folded in. */
    size_t m = (size_t)m_dim, n = (size_t)n_dim, k = (size_t)k_dim;
    size_t bias_count = reference ? m * n : n;
    node->weights = malloc((n * k + 1) * sizeof(float));
    node->bias = calloc(bias_count + 1, sizeof(float));
    if (node->weights == NULL || node->bias == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory");
    const float *bw = b->values;
    for (size_t o = 0; o < n; o++) {
        for (size_t i = 0; i < k; i++)
            node->weights[o * k + i] = alpha * (trans_b ? bw[o * k + i] : bw[i * n + o]);
    }
    for (size_t e = 0; c != NULL && e < bias_count; e++) {
        size_t row = e / n, col = e % n, at;
        if (c->count == 1)
            at = 0;
        else if (per_output)
            at = col;
        else
            at = c->dims[1] == 1 ? row : row * n + col;
        node->bias[e] = beta * ((const float *)c->values)[at];
    }
    node->in_channels = k;
    node->out_channels = n;
    node->groups = trans_a ? 1 : 0; /* reference Gemm: A stored [K,M] */
    node->kind = reference ? NN_KIND_GEMM : NN_KIND_FC;
    int64_t dims[CXR_NN_MAX_RANK];
    memcpy(dims, a->dims, sizeof(dims));
    if (trans_a)
        dims[0] = m_dim;
    dims[a->rank - 1] = n_dim;
    status = nn_shape_set(y, a->rank, dims, err);
    if (status == CXR_OK)
        node->flops = 2ull * y->count * k;
    return status;
}

static enum cxr_status compile_resize(struct cxr_nn_model *model, struct nn_node *node,
                                      struct cxr_err *err)
{
    static const char *const allowed[] = {"mode",
                                          "coordinate_transformation_mode",
                                          "nearest_mode",
                                          "cubic_coeff_a",
                                          "exclude_outside",
                                          "extrapolation_value",
                                          NULL};
    static const char *const coords[] = {"half_pixel", "pytorch_half_pixel",   "align_corners",
                                         "asymmetric", "tf_half_pixel_for_nn", NULL};
    static const char *const nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil", NULL};
    struct nn_tensor *x = nn_node_input(model, node, 0);
    enum cxr_status status = nn_attr_check(node, allowed, err);
    if (status != CXR_OK)
        return status;
    int64_t exclude = 0;
    status = nn_attr_int(node, "exclude_outside", 0, &exclude, err);
    if (status != CXR_OK)
        return status;
    char mode_text[32], coord_text[32], rounding_text[32];
    const char *mode = nn_attr_string(node, "mode", mode_text, sizeof(mode_text));
    const char *coord =
            nn_attr_string(node, "coordinate_transformation_mode", coord_text, sizeof(coord_text));
    const char *rounding =
            nn_attr_string(node, "nearest_mode", rounding_text, sizeof(rounding_text));
    mode = mode ? mode : "nearest";
    coord = coord ? coord : "half_pixel";
    rounding = rounding ? rounding : "round_prefer_floor";
    if (strcmp(mode, "nearest") == 0)
        node->resize_mode = 0;
    else if (strcmp(mode, "linear") == 0)
        node->resize_mode = 1;
    else
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "mode '%s'", mode);
    node->resize_coord = 99;
    for (uint32_t i = 0; coords[i]; i++)
        node->resize_coord = strcmp(coord, coords[i]) == 0 ? i : node->resize_coord;
    node->resize_nearest = 99;
    for (uint32_t i = 0; nearest[i]; i++)
        node->resize_nearest = strcmp(rounding, nearest[i]) == 0 ? i : node->resize_nearest;
    if (node->resize_coord == 99 || node->resize_nearest == 99 || exclude != 0)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                             "coordinate_transformation_mode '%s' / nearest_mode '%s'", coord,
                             rounding);
    if (x->rank != 4)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "only 4-D inputs");
    /* Opset 10: (X, scales); 11+: (X, roi, scales, sizes). */
    struct nn_tensor *scales = nn_node_input(model, node, node->input_count == 2 ? 1 : 2);
    struct nn_tensor *sizes = nn_node_input(model, node, 3);
    int64_t dims[4];
    if (sizes != NULL && sizes->count > 0) {
        if (!is_const(sizes) || sizes->dtype != NN_I64 || sizes->count != 4)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "sizes must be constant [4]");
        memcpy(dims, sizes->values, sizeof(dims));
        for (int d = 2; d < 4; d++)
            node->resize_scale[d - 2] = (double)dims[d] / (double)x->dims[d];
    } else if (scales != NULL && scales->count > 0) {
        if (!is_const(scales) || scales->dtype != NN_F32 || scales->count != 4)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "scales must be constant [4]");
        const float *values = scales->values;
        for (int d = 0; d < 4; d++) {
            if (!(values[d] > 0.0f && values[d] < 65536.0f))
                return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "bad scale");
            dims[d] = (int64_t)floor((double)x->dims[d] * (double)values[d]);
        }
        node->resize_scale[0] = values[2];
        node->resize_scale[1] = values[3];
    } else {
        return nn_node_error(node, CXR_ERR_MALFORMED, err, "neither scales nor sizes");
    }
    if (dims[0] != x->dims[0] || dims[1] != x->dims[1] || dims[2] < 1 || dims[3] < 1)
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "only resizing H and W");
    node->kind = NN_KIND_RESIZE;
    return nn_shape_set(nn_node_output(model, node, 0), 4, dims, err);
}

enum cxr_status nn_ops_compile(struct cxr_nn_model *model, struct nn_node *node,
                               struct cxr_err *err)
{
    const char *op = node->op_type;
    if (strcmp(op, "Conv") == 0)
        return compile_conv(model, node, err);
    if (strcmp(op, "MaxPool") == 0 || strcmp(op, "AveragePool") == 0)
        return compile_pool(model, node, op[0] == 'M', err);
    if (strcmp(op, "GlobalAveragePool") == 0 || strcmp(op, "ReduceMean") == 0)
        return compile_global_pool(model, node, err);
    if (strcmp(op, "BatchNormalization") == 0)
        return compile_batchnorm(model, node, err);
    if (strcmp(op, "Gemm") == 0 || strcmp(op, "MatMul") == 0)
        return compile_gemm(model, node, err);
    if (strcmp(op, "Resize") == 0)
        return compile_resize(model, node, err);
    return compile_activation(model, node, err);
}
