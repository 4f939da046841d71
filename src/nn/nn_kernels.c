/* Operations XNNPACK (2022-02) lacks, written as plain loops over the planned layouts: the
 * per-channel affine map (standalone BatchNormalization, HardSigmoid), layout copies
 * (Reshape, Transpose, graph inputs and outputs, Concat that could not be done in place), and
 * reference pooling, nearest resize and batched MatMul for the shapes XNNPACK refuses. */
#include <math.h>
#include <string.h>

#include "nn/nn_internal.h"

size_t nn_tensor_offset(const struct nn_tensor *tensor, const int64_t *idx)
{
    if (tensor->nhwc) {
        size_t pixel = ((size_t)idx[0] * (size_t)tensor->dims[2] + (size_t)idx[2]) *
                               (size_t)tensor->dims[3] +
                       (size_t)idx[3];
        return pixel * tensor->stride + (size_t)idx[1];
    }
    if (tensor->rank == 0)
        return 0;
    size_t pixel = 0;
    for (uint32_t k = 0; k + 1 < tensor->rank; k++)
        pixel = pixel * (size_t)tensor->dims[k] + (size_t)idx[k];
    return pixel * tensor->stride + (size_t)idx[tensor->rank - 1];
}

/* Advances a row-major multi-index; returns false after the last element. */
static bool next_index(int64_t *idx, const int64_t *dims, uint32_t rank)
{
    for (uint32_t k = rank; k-- > 0;) {
        if (++idx[k] < dims[k])
            return true;
        idx[k] = 0;
    }
    return false;
}

struct affine_context {
    const float *in;
    float *out;
    size_t in_stride, out_stride, channels;
    const float *scale, *shift;
    float lo, hi;
};

static void affine_pixel(void *opaque, size_t pixel)
{
    const struct affine_context *ctx = opaque;
    const float *in = ctx->in + pixel * ctx->in_stride;
    float *out = ctx->out + pixel * ctx->out_stride;
    const float *scale = ctx->scale, *shift = ctx->shift;
    float lo = ctx->lo, hi = ctx->hi;
    for (size_t c = 0; c < ctx->channels; c++) {
        float value = in[c] * scale[c] + shift[c];
        value = value < lo ? lo : value;
        out[c] = value > hi ? hi : value;
    }
}

void nn_kernel_affine(pthreadpool_t pool, const struct nn_tensor *in, struct nn_tensor *out,
                      const float *scale, const float *shift, float lo, float hi)
{
    struct affine_context ctx = {
            in->data, out->data, in->stride, out->stride, nn_tensor_channels(in),
            scale,    shift,     lo,         hi};
    pthreadpool_parallelize_1d(pool, affine_pixel, &ctx, nn_tensor_pixels(in), 0);
}

void nn_kernel_reshape(const struct nn_tensor *in, struct nn_tensor *out)
{
    if (in->count == 0)
        return;
    int64_t in_idx[CXR_NN_MAX_RANK] = {0}, out_idx[CXR_NN_MAX_RANK] = {0};
    do {
        out->data[nn_tensor_offset(out, out_idx)] = in->data[nn_tensor_offset(in, in_idx)];
        next_index(out_idx, out->dims, out->rank);
    } while (next_index(in_idx, in->dims, in->rank));
}

void nn_kernel_transpose(const struct nn_tensor *in, struct nn_tensor *out, const int64_t *perm)
{
    if (out->count == 0)
        return;
    int64_t out_idx[CXR_NN_MAX_RANK] = {0}, in_idx[CXR_NN_MAX_RANK] = {0};
    do {
        for (uint32_t k = 0; k < out->rank; k++)
            in_idx[perm[k]] = out_idx[k];
        out->data[nn_tensor_offset(out, out_idx)] = in->data[nn_tensor_offset(in, in_idx)];
    } while (next_index(out_idx, out->dims, out->rank));
}

struct concat_context {
    const struct nn_tensor *in;
    struct nn_tensor *out;
    size_t channels, channel_offset;
};

static void concat_pixel(void *opaque, size_t pixel)
{
    const struct concat_context *ctx = opaque;
    memcpy(ctx->out->data + pixel * ctx->out->stride + ctx->channel_offset,
           ctx->in->data + pixel * ctx->in->stride, ctx->channels * sizeof(float));
}

void nn_kernel_concat_part(pthreadpool_t pool, const struct nn_tensor *in, struct nn_tensor *out,
                           int64_t axis, int64_t offset)
{
    if (in->count == 0)
        return;
    int64_t channel_axis = out->nhwc ? 1 : (int64_t)out->rank - 1;
    if (axis == channel_axis) {
        struct concat_context ctx = {in, out, nn_tensor_channels(in), (size_t)offset};
        pthreadpool_parallelize_1d(pool, concat_pixel, &ctx, nn_tensor_pixels(in), 0);
        return;
    }
    int64_t in_idx[CXR_NN_MAX_RANK] = {0}, out_idx[CXR_NN_MAX_RANK];
    do {
        memcpy(out_idx, in_idx, sizeof(out_idx));
        out_idx[axis] += offset;
        out->data[nn_tensor_offset(out, out_idx)] = in->data[nn_tensor_offset(in, in_idx)];
    } while (next_index(in_idx, in->dims, in->rank));
}

void nn_kernel_pool(const struct nn_tensor *in, struct nn_tensor *out, const struct nn_pool2d *pool,
                    bool max, float lo, float hi)
{
    int64_t height = in->dims[2], width = in->dims[3];
    int64_t idx[4], src[4];
    for (idx[0] = 0; idx[0] < out->dims[0]; idx[0]++) {
        for (idx[1] = 0; idx[1] < out->dims[1]; idx[1]++) {
            for (idx[2] = 0; idx[2] < out->dims[2]; idx[2]++) {
                for (idx[3] = 0; idx[3] < out->dims[3]; idx[3]++) {
                    float best = -INFINITY, sum = 0.0f;
                    size_t valid = 0, padded = 0;
                    src[0] = idx[0];
                    src[1] = idx[1];
                    for (uint32_t ky = 0; ky < pool->kernel[0]; ky++) {
                        int64_t y =
                                idx[2] * pool->stride[0] + ky * pool->dilation[0] - pool->pad[0];
                        for (uint32_t kx = 0; kx < pool->kernel[1]; kx++) {
                            int64_t x = idx[3] * pool->stride[1] + kx * pool->dilation[1] -
                                        pool->pad[1];
                            /* Positions in the explicit (not ceil_mode) padding count when
                             * count_include_pad says so. */
                            bool in_pad = y >= -(int64_t)pool->pad[0] &&
                                          x >= -(int64_t)pool->pad[1] &&
                                          y < height + (int64_t)pool->pad[2] &&
                                          x < width + (int64_t)pool->pad[3];
                            if (y < 0 || x < 0 || y >= height || x >= width) {
                                padded += in_pad;
                                continue;
                            }
                            src[2] = y;
                            src[3] = x;
                            float value = in->data[nn_tensor_offset(in, src)];
                            best = value > best ? value : best;
                            sum += value;
                            valid++;
                        }
                    }
                    float result;
                    if (max)
                        result = best;
                    else if (pool->count_include_pad)
                        result = sum / (float)(valid + padded);
                    else
                        result = valid ? sum / (float)valid : 0.0f;
                    result = result < lo ? lo : result;
                    out->data[nn_tensor_offset(out, idx)] = result > hi ? hi : result;
                }
            }
        }
    }
}

/* ONNX Resize coordinate transformation, output coordinate to input coordinate. */
static double source_coordinate(uint32_t mode, double x, double scale, int64_t in_size,
                                int64_t out_size)
{
    switch (mode) {
    case 0: /* half_pixel */
        return (x + 0.5) / scale - 0.5;
    case 1: /* pytorch_half_pixel */
        return out_size > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    case 2: { /* align_corners: ONNX uses the unrounded resized length, in * scale */
        double resized = (double)in_size * scale;
        return resized > 1.0 ? x * (double)(in_size - 1) / (resized - 1.0) : 0.0;
    }
    case 3: /* asymmetric */
        return x / scale;
    default: /* tf_half_pixel_for_nn */
        return (x + 0.5) / scale;
    }
}

static int64_t nearest(uint32_t mode, double x)
{
    switch (mode) {
    case 0: /* round_prefer_floor */
        return x == floor(x) + 0.5 ? (int64_t)floor(x) : (int64_t)llround(x);
    case 1: /* round_prefer_ceil */
        return (int64_t)llround(x);
    case 2:
        return (int64_t)floor(x);
    default:
        return (int64_t)ceil(x);
    }
}

void nn_kernel_resize_nearest(const struct nn_tensor *in, struct nn_tensor *out,
                              const struct nn_node *node)
{
    int64_t idx[4], src[4];
    for (idx[0] = 0; idx[0] < out->dims[0]; idx[0]++) {
        for (idx[1] = 0; idx[1] < out->dims[1]; idx[1]++) {
            for (idx[2] = 0; idx[2] < out->dims[2]; idx[2]++) {
                for (idx[3] = 0; idx[3] < out->dims[3]; idx[3]++) {
                    src[0] = idx[0];
                    src[1] = idx[1];
                    for (int d = 0; d < 2; d++) {
                        double x = source_coordinate(node->resize_coord, (double)idx[2 + d],
                                                     node->resize_scale[d], in->dims[2 + d],
                                                     out->dims[2 + d]);
                        int64_t i = nearest(node->resize_nearest, x);
                        i = i < 0 ? 0 : i;
                        src[2 + d] = i >= in->dims[2 + d] ? in->dims[2 + d] - 1 : i;
                    }
                    out->data[nn_tensor_offset(out, idx)] = in->data[nn_tensor_offset(in, src)];
                }
            }
        }
    }
}

/* ONNX linear resize: the source coordinate clamped to the input, two taps per axis. */
void nn_kernel_resize_linear(const struct nn_tensor *in, struct nn_tensor *out,
                             const struct nn_node *node)
{
    int64_t idx[4], src[4];
    int64_t lo[2][2];
    float weight[2][2];
    for (idx[2] = 0; idx[2] < out->dims[2]; idx[2]++) {
        for (idx[3] = 0; idx[3] < out->dims[3]; idx[3]++) {
            for (int d = 0; d < 2; d++) {
                int64_t size = in->dims[2 + d];
                double x = source_coordinate(node->resize_coord, (double)idx[2 + d],
                                             node->resize_scale[d], size, out->dims[2 + d]);
                x = x < 0 ? 0 : (x > (double)(size - 1) ? (double)(size - 1) : x);
                int64_t x0 = (int64_t)floor(x);
                lo[d][0] = x0;
                lo[d][1] = x0 + 1 < size ? x0 + 1 : x0;
                weight[d][1] = (float)(x - (double)x0);
                weight[d][0] = 1.0f - weight[d][1];
            }
            for (idx[0] = 0; idx[0] < out->dims[0]; idx[0]++) {
                for (idx[1] = 0; idx[1] < out->dims[1]; idx[1]++) {
                    float sum = 0.0f;
                    src[0] = idx[0];
                    src[1] = idx[1];
                    for (int a = 0; a < 2; a++) {
                        for (int b = 0; b < 2; b++) {
                            src[2] = lo[0][a];
                            src[3] = lo[1][b];
                            sum += weight[0][a] * weight[1][b] *
                                   in->data[nn_tensor_offset(in, src)];
                        }
                    }
                    out->data[nn_tensor_offset(out, idx)] = sum;
                }
            }
        }
    }
}

void nn_kernel_gemm(const struct nn_tensor *a, struct nn_tensor *out, const float *weights,
                    const float *bias, bool trans_a, float lo, float hi)
{
    size_t m = (size_t)out->dims[0], n = (size_t)out->dims[1];
    size_t k = (size_t)(trans_a ? a->dims[0] : a->dims[1]);
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            float sum = bias[i * n + j];
            for (size_t p = 0; p < k; p++) {
                size_t at = trans_a ? p * a->stride + i : i * a->stride + p;
                sum += a->data[at] * weights[j * k + p];
            }
            sum = sum < lo ? lo : sum;
            out->data[i * out->stride + j] = sum > hi ? hi : sum;
        }
    }
}

void nn_kernel_matmul(const struct nn_tensor *a, const struct nn_tensor *b, struct nn_tensor *out)
{
    uint32_t rank = a->rank;
    size_t m = (size_t)a->dims[rank - 2], k = (size_t)a->dims[rank - 1];
    size_t n = (size_t)b->dims[rank - 1];
    size_t batches = (m && n) ? out->count / (m * n) : 0;
    for (size_t batch = 0; batch < batches; batch++) {
        const float *x = a->data + batch * m * k;
        const float *y = b->data + batch * k * n;
        float *z = out->data + batch * m * n;
        for (size_t i = 0; i < m; i++) {
            for (size_t j = 0; j < n; j++) {
                float sum = 0.0f;
                for (size_t p = 0; p < k; p++)
                    sum += x[i * k + p] * y[p * n + j];
                z[i * n + j] = sum;
            }
        }
    }
}
