/* Execution on XNNPACK: after planning, every layer becomes an XNNPACK operator created and set
 * up once with its final buffer pointers, so a forward pass only runs operators (and the few
 * kernels of nn_kernels.c) in order over the runtime's thread pool. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/nn_fold.h"

static enum cxr_status xnn_error(const struct nn_node *node, enum xnn_status code, const char *what,
                                 struct cxr_err *err)
{
    return nn_node_error(node,
                         code == xnn_status_out_of_memory ? CXR_ERR_NOMEM : CXR_ERR_UNSUPPORTED,
                         err, "XNNPACK: %s failed (status %d)", what, (int)code);
}

/* ONNX [M, C/g, kh, kw] to XNNPACK's [g][M/g][kh][kw][C/g]. */
static float *pack_conv_weights(const struct nn_node *node)
{
    size_t groups = node->groups, gic = node->in_channels / groups;
    size_t goc = node->out_channels / groups;
    size_t kh = node->pool.kernel[0], kw = node->pool.kernel[1];
    float *packed = malloc(node->out_channels * gic * kh * kw * sizeof(float) + 1);
    if (packed == NULL)
        return NULL;
    for (size_t o = 0; o < groups * goc; o++)
        for (size_t i = 0; i < gic; i++)
            for (size_t y = 0; y < kh; y++)
                for (size_t x = 0; x < kw; x++)
                    packed[((o * kh + y) * kw + x) * gic + i] =
                            node->weights[((o * gic + i) * kh + y) * kw + x];
    return packed;
}

/* Physical shape of a binary operand broadcast to the output's rank, in the output's layout;
 * constants rearranged to match. */
static enum cxr_status binary_operand(const struct nn_node *node, const struct nn_tensor *in,
                                      const struct nn_tensor *out, int side, struct nn_node *dst,
                                      struct cxr_err *err)
{
    int64_t dims[CXR_NN_MAX_RANK];
    uint32_t rank = out->rank, lead = out->rank - in->rank;
    for (uint32_t k = 0; k < rank; k++)
        dims[k] = k < lead ? 1 : in->dims[k - lead];
    size_t *shape = dst->binary_shape[side];
    dst->binary_rank[side] = rank;
    if (!out->nhwc) {
        for (uint32_t k = 0; k < rank; k++)
            shape[k] = (size_t)dims[k];
        if (in->values != NULL) {
            /* The node keeps its own copy: constants are freed after loading. */
            dst->const_operand[side] = malloc((in->count ? in->count : 1) * sizeof(float));
            if (dst->const_operand[side] == NULL)
                return cxr_err_set(err, CXR_ERR_NOMEM, "nn: out of memory");
            memcpy(dst->const_operand[side], in->values, in->count * sizeof(float));
        }
        return CXR_OK;
    }
    shape[0] = (size_t)dims[0];
    shape[1] = (size_t)dims[2];
    shape[2] = (size_t)dims[3];
    shape[3] = (size_t)dims[1];
    if (in->values != NULL) {
        float *values = malloc((in->count ? in->count : 1) * sizeof(float));
        if (values == NULL)
            return cxr_err_set(err, CXR_ERR_NOMEM, "nn: out of memory");
        const float *from = in->values;
        size_t c = (size_t)dims[1], h = (size_t)dims[2], w = (size_t)dims[3];
        for (size_t n = 0; n < (size_t)dims[0]; n++)
            for (size_t ci = 0; ci < c; ci++)
                for (size_t p = 0; p < h * w; p++)
                    values[(n * h * w + p) * c + ci] = from[(n * c + ci) * h * w + p];
        dst->const_operand[side] = values;
        return CXR_OK;
    }
    if (!in->nhwc && !(dims[2] * dims[3] == 1 || dims[1] == 1))
        return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                             "broadcasting a lower-rank activation across H and W");
    return CXR_OK;
}

static enum cxr_status prepare_binary(struct cxr_nn_model *model, struct nn_node *node,
                                      struct cxr_err *err)
{
    const struct nn_tensor *a = &model->tensors[node->inputs[0]];
    const struct nn_tensor *b = &model->tensors[node->inputs[1]];
    const struct nn_tensor *out = &model->tensors[node->outputs[0]];
    enum cxr_status status = binary_operand(node, a, out, 0, node, err);
    if (status == CXR_OK)
        status = binary_operand(node, b, out, 1, node, err);
    if (status != CXR_OK)
        return status;
    enum xnn_status code;
    float lo = node->output_min, hi = node->output_max;
    switch (node->binary) {
    case NN_ADD:
        code = xnn_create_add_nd_f32(lo, hi, 0, &node->op);
        break;
    case NN_SUB:
        code = xnn_create_subtract_nd_f32(lo, hi, 0, &node->op);
        break;
    case NN_MUL:
        code = xnn_create_multiply_nd_f32(lo, hi, 0, &node->op);
        break;
    default:
        code = xnn_create_divide_nd_f32(lo, hi, 0, &node->op);
        break;
    }
    if (code != xnn_status_success)
        return xnn_error(node, code, "creating a binary operator", err);
    const float *pa = node->const_operand[0] ? node->const_operand[0] : a->data;
    const float *pb = node->const_operand[1] ? node->const_operand[1] : b->data;
    pthreadpool_t pool = model->runtime->pool;
    switch (node->binary) {
    case NN_ADD:
        code = xnn_setup_add_nd_f32(node->op, node->binary_rank[0], node->binary_shape[0],
                                    node->binary_rank[1], node->binary_shape[1], pa, pb, out->data,
                                    pool);
        break;
    case NN_SUB:
        code = xnn_setup_subtract_nd_f32(node->op, node->binary_rank[0], node->binary_shape[0],
                                         node->binary_rank[1], node->binary_shape[1], pa, pb,
                                         out->data, pool);
        break;
    case NN_MUL:
        code = xnn_setup_multiply_nd_f32(node->op, node->binary_rank[0], node->binary_shape[0],
                                         node->binary_rank[1], node->binary_shape[1], pa, pb,
                                         out->data, pool);
        break;
    default:
        code = xnn_setup_divide_nd_f32(node->op, node->binary_rank[0], node->binary_shape[0],
                                       node->binary_rank[1], node->binary_shape[1], pa, pb,
                                       out->data, pool);
        break;
    }
    if (code != xnn_status_success)
        return xnn_error(node, code, "setting up a binary operator", err);
    return CXR_OK;
}

static enum cxr_status prepare_node(struct cxr_nn_model *model, struct nn_node *node,
                                    struct cxr_err *err)
{
    pthreadpool_t pool = model->runtime->pool;
    struct nn_tensor *in = &model->tensors[node->inputs[0]];
    struct nn_tensor *out = &model->tensors[node->outputs[0]];
    const struct nn_pool2d *p = &node->pool;
    float lo = node->output_min, hi = node->output_max;
    enum xnn_status code = xnn_status_success;
    switch (node->kind) {
    case NN_KIND_CONV: {
        float *packed = pack_conv_weights(node);
        if (packed == NULL)
            return cxr_err_set(err, CXR_ERR_NOMEM, "nn: out of memory");
        code = xnn_create_convolution2d_nhwc_f32(
                p->pad[0], p->pad[3], p->pad[2], p->pad[1], p->kernel[0], p->kernel[1],
                p->stride[0], p->stride[1], p->dilation[0], p->dilation[1], node->groups,
                node->in_channels / node->groups, node->out_channels / node->groups, in->stride,
                out->stride, packed, node->bias, lo, hi, 0, &node->op);
        free(packed);
        if (code != xnn_status_success)
            return xnn_error(node, code, "creating a convolution", err);
        model->stats.weight_bytes += (node->out_channels * (node->in_channels / node->groups) *
                                              p->kernel[0] * p->kernel[1] +
                                      node->out_channels) *
                                     sizeof(float);
        code = xnn_setup_convolution2d_nhwc_f32(node->op, (size_t)in->dims[0], (size_t)in->dims[2],
                                                (size_t)in->dims[3], in->data, out->data, pool);
        break;
    }
    case NN_KIND_MAXPOOL:
    case NN_KIND_AVGPOOL:
        if (p->naive)
            return CXR_OK;
        if (node->kind == NN_KIND_MAXPOOL)
            code = xnn_create_max_pooling2d_nhwc_f32(
                    p->pad[0], p->pad[3], p->pad[2], p->pad[1], p->kernel[0], p->kernel[1],
                    p->stride[0], p->stride[1], p->dilation[0], p->dilation[1],
                    nn_tensor_channels(in), in->stride, out->stride, lo, hi, 0, &node->op);
        else
            code = xnn_create_average_pooling2d_nhwc_f32(
                    p->pad[0], p->pad[3], p->pad[2], p->pad[1], p->kernel[0], p->kernel[1],
                    p->stride[0], p->stride[1], nn_tensor_channels(in), in->stride, out->stride, lo,
                    hi, 0, &node->op);
        if (code == xnn_status_invalid_parameter || code == xnn_status_unsupported_parameter) {
            node->pool.naive = true; /* a shape XNNPACK does not take: reference loop */
            return CXR_OK;
        }
        if (code != xnn_status_success)
            return xnn_error(node, code, "creating a pooling operator", err);
        if (node->kind == NN_KIND_MAXPOOL)
            code = xnn_setup_max_pooling2d_nhwc_f32(node->op, (size_t)in->dims[0],
                                                    (size_t)in->dims[2], (size_t)in->dims[3],
                                                    in->data, out->data, pool);
        else
            code = xnn_setup_average_pooling2d_nhwc_f32(node->op, (size_t)in->dims[0],
                                                        (size_t)in->dims[2], (size_t)in->dims[3],
                                                        in->data, out->data, pool);
        break;
    case NN_KIND_GAP:
        code = xnn_create_global_average_pooling_nwc_f32(nn_tensor_channels(in), in->stride,
                                                         out->stride, lo, hi, 0, &node->op);
        if (code != xnn_status_success)
            return xnn_error(node, code, "creating a global average pooling", err);
        code = xnn_setup_global_average_pooling_nwc_f32(node->op, (size_t)in->dims[0],
                                                        (size_t)(in->dims[2] * in->dims[3]),
                                                        in->data, out->data, pool);
        break;
    case NN_KIND_FC:
        if (in->nhwc)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err, "a 4-D first operand");
        code = xnn_create_fully_connected_nc_f32(node->in_channels, node->out_channels, in->stride,
                                                 out->stride, node->weights, node->bias, lo, hi, 0,
                                                 &node->op);
        if (code != xnn_status_success)
            return xnn_error(node, code, "creating a fully connected operator", err);
        model->stats.weight_bytes += (node->in_channels + 1) * node->out_channels * sizeof(float);
        code = xnn_setup_fully_connected_nc_f32(node->op, nn_tensor_pixels(in), in->data, out->data,
                                                pool);
        break;
    case NN_KIND_BINARY:
        return prepare_binary(model, node, err);
    case NN_KIND_AFFINE: {
        size_t channels = nn_tensor_channels(in);
        if (node->in_channels == 1 && channels != 1) {
            float *scale = malloc(channels * sizeof(float));
            float *shift = malloc(channels * sizeof(float));
            if (scale == NULL || shift == NULL) {
                free(scale);
                free(shift);
                return cxr_err_set(err, CXR_ERR_NOMEM, "nn: out of memory");
            }
            for (size_t c = 0; c < channels; c++) {
                scale[c] = node->scale[0];
                shift[c] = node->bias[0];
            }
            free(node->scale);
            free(node->bias);
            node->scale = scale;
            node->bias = shift;
            node->in_channels = channels;
        }
        if (node->in_channels != channels)
            return nn_node_error(node, CXR_ERR_UNSUPPORTED, err,
                                 "per-channel parameters on a layout without channels last");
        return CXR_OK;
    }
    case NN_KIND_CLAMP:
        code = xnn_create_clamp_nc_f32(nn_tensor_channels(in), in->stride, out->stride, lo, hi, 0,
                                       &node->op);
        if (code == xnn_status_success)
            code = xnn_setup_clamp_nc_f32(node->op, nn_tensor_pixels(in), in->data, out->data,
                                          pool);
        break;
    case NN_KIND_SIGMOID:
        code = xnn_create_sigmoid_nc_f32(nn_tensor_channels(in), in->stride, out->stride, 0,
                                         &node->op);
        if (code == xnn_status_success)
            code = xnn_setup_sigmoid_nc_f32(node->op, nn_tensor_pixels(in), in->data, out->data,
                                            pool);
        break;
    case NN_KIND_HARDSWISH:
        code = xnn_create_hardswish_nc_f32(nn_tensor_channels(in), in->stride, out->stride, 0,
                                           &node->op);
        if (code == xnn_status_success)
            code = xnn_setup_hardswish_nc_f32(node->op, nn_tensor_pixels(in), in->data, out->data,
                                              pool);
        break;
    case NN_KIND_RESIZE:
        /* XNNPACK derives the scale from the sizes; ONNX uses the given scales (they differ
         * when in * scale is not whole), so the exact reference loop runs instead. */
        return CXR_OK;
    case NN_KIND_PAD: {
        size_t shape[XNN_MAX_TENSOR_DIMS], pre[XNN_MAX_TENSOR_DIMS], post[XNN_MAX_TENSOR_DIMS];
        static const int nhwc_order[4] = {0, 2, 3, 1};
        for (uint32_t k = 0; k < in->rank; k++) {
            int from = in->nhwc ? nhwc_order[k] : (int)k;
            shape[k] = (size_t)in->dims[from];
            pre[k] = node->pad_begin[from];
            post[k] = node->pad_end[from];
        }
        code = xnn_create_constant_pad_nd_x32(&node->pad_value, 0, &node->op);
        if (code == xnn_status_success)
            code = xnn_setup_constant_pad_nd_x32(node->op, in->rank, shape, pre, post, in->data,
                                                 out->data, pool);
        break;
    }
    default:
        return CXR_OK; /* reference kernels need nothing prepared */
    }
    if (code != xnn_status_success)
        return xnn_error(node, code, "creating or setting up an operator", err);
    return CXR_OK;
}

enum cxr_status nn_exec_prepare(struct cxr_nn_model *model, struct cxr_err *err)
{
    for (size_t s = 0; s < model->step_count; s++) {
        if (model->steps[s].type != NN_STEP_NODE)
            continue;
        struct nn_node *node = &model->nodes[model->steps[s].index];
        enum cxr_status status = prepare_node(model, node, err);
        /* XNNPACK keeps its own packed copies: ours are no longer needed. */
        if (node->kind == NN_KIND_CONV || node->kind == NN_KIND_FC) {
            free(node->weights);
            node->weights = NULL;
        }
        if (status != CXR_OK)
            return status;
    }
    return CXR_OK;
}

void nn_exec_release(struct cxr_nn_model *model)
{
    for (size_t i = 0; i < model->node_count; i++) {
        if (model->nodes[i].op != NULL)
            xnn_delete_operator(model->nodes[i].op);
        model->nodes[i].op = NULL;
    }
}

/* A caller's dense, row-major buffer seen as a tensor, for the layout copies. */
static struct nn_tensor dense_view(const struct nn_tensor *like, float *data)
{
    struct nn_tensor view = *like;
    view.nhwc = false;
    view.stride = like->rank ? (size_t)like->dims[like->rank - 1] : 1;
    view.data = data;
    return view;
}

static bool is_dense_row_major(const struct nn_tensor *tensor)
{
    bool same_order =
            !tensor->nhwc || tensor->dims[2] * tensor->dims[3] == 1 || tensor->dims[1] == 1;
    return same_order && tensor->stride == nn_tensor_channels(tensor);
}

static enum cxr_status run_node(struct cxr_nn_model *model, pthreadpool_t pool,
                                struct nn_node *node, struct cxr_err *err)
{
    struct nn_tensor *in = &model->tensors[node->inputs[0]];
    struct nn_tensor *out = &model->tensors[node->outputs[0]];
    switch (node->kind) {
    case NN_KIND_AFFINE:
        nn_kernel_affine(pool, in, out, node->scale, node->bias, node->output_min,
                         node->output_max);
        return CXR_OK;
    case NN_KIND_RESHAPE:
        nn_kernel_reshape(in, out);
        return CXR_OK;
    case NN_KIND_TRANSPOSE:
        nn_kernel_transpose(in, out, node->perm);
        return CXR_OK;
    case NN_KIND_CONCAT: {
        int64_t offset = 0;
        for (size_t k = 0; k < node->input_count; k++) {
            const struct nn_tensor *part = &model->tensors[node->inputs[k]];
            nn_kernel_concat_part(pool, part, out, node->axis, offset);
            offset += part->dims[node->axis];
        }
        return CXR_OK;
    }
    case NN_KIND_GEMM:
        nn_kernel_gemm(in, out, node->weights, node->bias, node->groups == 1, node->output_min,
                       node->output_max);
        return CXR_OK;
    case NN_KIND_MATMUL:
        nn_kernel_matmul(in, &model->tensors[node->inputs[1]], out);
        return CXR_OK;
    case NN_KIND_RESIZE:
        if (node->resize_mode == 0)
            nn_kernel_resize_nearest(in, out, node);
        else
            nn_kernel_resize_linear(in, out, node);
        return CXR_OK;
    case NN_KIND_MAXPOOL:
    case NN_KIND_AVGPOOL:
        if (node->pool.naive) {
            nn_kernel_pool(in, out, &node->pool, node->kind == NN_KIND_MAXPOOL, node->output_min,
                           node->output_max);
            return CXR_OK;
        }
        break;
    default:
        break;
    }
    enum xnn_status code = xnn_run_operator(node->op, pool);
    if (code != xnn_status_success)
        return xnn_error(node, code, "running an operator", err);
    return CXR_OK;
}

static double now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
}

static void yield_task(void *context, size_t index)
{
    (void)context;
    (void)index;
}

/* pthreadpool's workers spin for a while (up to about a million pause instructions) waiting
 * for the next operator, which inside a pass saves a wake-up per operator but after the last
 * one only burns a core that other requests' PNG and PDF work could use. One empty task with
 * PTHREADPOOL_FLAG_YIELD_WORKERS sends them straight to sleep. */
static void yield_workers(pthreadpool_t pool)
{
    size_t threads = pool ? pthreadpool_get_threads_count(pool) : 1;
    if (threads > 1)
        pthreadpool_parallelize_1d(pool, yield_task, NULL, threads, PTHREADPOOL_FLAG_YIELD_WORKERS);
}

enum cxr_status nn_exec_run(struct cxr_nn_model *model, struct cxr_err *err)
{
    /* NULL: XNNPACK and the kernels here run on the calling thread (pthreadpool's rule). */
    pthreadpool_t pool = atomic_load_explicit(&model->runtime->serial, memory_order_relaxed)
                                 ? NULL
                                 : model->runtime->pool;
    double start = model->profile_ms ? now_ms() : 0.0;
    for (size_t s = 0; s < model->step_count; s++) {
        const struct nn_step *step = &model->steps[s];
        if (model->profile_ms && s > 0) {
            double end = now_ms();
            model->profile_ms[s - 1] += end - start;
            start = end;
        }
        if (step->type == NN_STEP_INPUT) {
            struct nn_tensor *tensor = &model->tensors[model->input_tensors[step->index]];
            const float *data = model->run_inputs[step->index];
            if (is_dense_row_major(tensor)) {
                memcpy(tensor->data, data, tensor->count * sizeof(float));
            } else {
                struct nn_tensor source = dense_view(tensor, (float *)data);
                nn_kernel_reshape(&source, tensor);
            }
        } else if (step->type == NN_STEP_OUTPUT) {
            struct nn_tensor *tensor = &model->tensors[model->output_tensors[step->index]];
            float *data = model->output_data[step->index];
            if (tensor->values != NULL) {
                memcpy(data, tensor->values, tensor->count * sizeof(float));
            } else if (is_dense_row_major(tensor)) {
                memcpy(data, tensor->data, tensor->count * sizeof(float));
            } else {
                struct nn_tensor target = dense_view(tensor, data);
                nn_kernel_reshape(tensor, &target);
            }
        } else {
            enum cxr_status status = run_node(model, pool, &model->nodes[step->index], err);
            if (status != CXR_OK) {
                yield_workers(pool);
                return status;
            }
        }
    }
    yield_workers(pool);
    if (model->profile_ms && model->step_count > 0) {
        model->profile_ms[model->step_count - 1] += now_ms() - start;
        model->profile_runs++;
    }
    return CXR_OK;
}

void nn_exec_profile_print(const struct cxr_nn_model *model)
{
    if (model->profile_ms == NULL || model->profile_runs == 0)
        return;
    double total = 0.0;
    for (size_t s = 0; s < model->step_count; s++)
        total += model->profile_ms[s];
    fprintf(stderr, "nn profile: %zu runs, %.3f ms per run\n", model->profile_runs,
            total / (double)model->profile_runs);
    for (size_t s = 0; s < model->step_count; s++) {
        const struct nn_step *step = &model->steps[s];
        const char *what = step->type == NN_STEP_INPUT    ? "(input)"
                           : step->type == NN_STEP_OUTPUT ? "(output)"
                                                          : model->nodes[step->index].op_type;
        const char *name = step->type == NN_STEP_NODE ? model->nodes[step->index].name : "";
        const struct nn_tensor *out =
                step->type == NN_STEP_NODE ? &model->tensors[model->nodes[step->index].outputs[0]]
                                           : NULL;
        fprintf(stderr, "  %4zu %8.3f ms %-18s %-40s %s\n", s,
                model->profile_ms[s] / (double)model->profile_runs, what, name,
                out ? (out->nhwc ? "nhwc" : "") : "");
    }
}
