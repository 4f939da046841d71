/* Operators and the memory plan against values computed by hand or by plain loops in this
 * file: convolution with padding, BatchNormalization folding and Relu fusion, pooling,
 * Concat written in place (DenseNet pattern), the classifier head, determinism across thread
 * counts. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn/nn.h"
#include "nn/nn_test_model.h"

static struct cxr_nn_runtime *runtime;

static struct cxr_nn_model *load(struct tm_model *builder)
{
    size_t size;
    unsigned char *bytes = tm_pack(builder, &size);
    struct cxr_nn_model *model = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    enum cxr_status status = cxr_nn_model_load_memory(runtime, bytes, size, NULL, &model, &err);
    free(bytes);
    if (status != CXR_OK)
        fail_msg("load failed: %s", err.message);
    return model;
}

static void run(struct cxr_nn_model *model, const float *input)
{
    const float *inputs[1] = {input};
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_nn_model_run(model, inputs, &err) != CXR_OK)
        fail_msg("run failed: %s", err.message);
}

static void assert_close(const float *got, const float *want, size_t count, float tolerance)
{
    for (size_t i = 0; i < count; i++) {
        if (!(fabsf(got[i] - want[i]) <= tolerance))
            fail_msg("element %zu: got %.7g, want %.7g", i, (double)got[i], (double)want[i]);
    }
}

/* The ONNX operator documentation's example: 5x5 ramp, 3x3 ones, pads 1. */
static void test_conv_3x3_padded(void **state)
{
    (void)state;
    struct tm_model *b = tm_create();
    int64_t in_dims[4] = {1, 1, 5, 5}, w_dims[4] = {1, 1, 3, 3};
    float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    tm_input(b, "x", 4, in_dims);
    tm_initializer(b, "w", 4, w_dims, ones, 1);
    Onnx__NodeProto *conv = tm_node(b, "Conv", "conv", "x,w", "y");
    int64_t pads[4] = {1, 1, 1, 1}, kernel[2] = {3, 3};
    tm_attr_ints(b, conv, "pads", 4, pads);
    tm_attr_ints(b, conv, "kernel_shape", 2, kernel);
    tm_output(b, "y");
    struct cxr_nn_model *model = load(b);
    float x[25];
    for (int i = 0; i < 25; i++)
        x[i] = (float)i;
    run(model, x);
    const float want[25] = {12,  21, 27, 33,  24,  33,  54,  63, 72,  51,  63,  99, 108,
                            117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84};
    assert_close(cxr_nn_model_output_data(model, 0), want, 25, 0.0f);
    const struct cxr_nn_tensor_info *out = cxr_nn_model_output(model, 0);
    assert_int_equal(out->rank, 4);
    assert_int_equal(out->dims[2], 5);
    struct cxr_nn_model_stats stats;
    cxr_nn_model_stats_get(model, &stats);
    assert_int_equal(stats.flops, 2 * 25 * 9);
    assert_int_equal(stats.parameters, 9);
    cxr_nn_model_destroy(model);
    tm_destroy(b);
}

/* Conv (2 -> 3 channels, stride 2, no pads) + BatchNormalization + Relu, against loops. */
static void test_conv_batchnorm_relu_fused(void **state)
{
    (void)state;
    struct tm_model *b = tm_create();
    int64_t in_dims[4] = {1, 2, 6, 6}, w_dims[4] = {3, 2, 3, 3}, c_dims[1] = {3};
    float w[54], bias[3] = {0.5f, -1.0f, 0.25f};
    for (int i = 0; i < 54; i++)
        w[i] = (float)((i * 7) % 11) / 11.0f - 0.4f;
    float gamma[3] = {1.5f, 0.5f, -2.0f}, beta[3] = {0.1f, 0.2f, 0.3f};
    float mean[3] = {0.3f, -0.2f, 0.1f}, var[3] = {2.0f, 0.5f, 1.0f};
    tm_input(b, "x", 4, in_dims);
    tm_initializer(b, "w", 4, w_dims, w, 0);
    tm_initializer(b, "b", 1, c_dims, bias, 1);
    tm_initializer(b, "gamma", 1, c_dims, gamma, 1);
    tm_initializer(b, "beta", 1, c_dims, beta, 1);
    tm_initializer(b, "mean", 1, c_dims, mean, 1);
    tm_initializer(b, "var", 1, c_dims, var, 1);
    Onnx__NodeProto *conv = tm_node(b, "Conv", "conv", "x,w,b", "c");
    int64_t strides[2] = {2, 2};
    tm_attr_ints(b, conv, "strides", 2, strides);
    Onnx__NodeProto *bn = tm_node(b, "BatchNormalization", "bn", "c,gamma,beta,mean,var", "n");
    tm_attr_float(b, bn, "epsilon", 1e-3f);
    tm_node(b, "Relu", "relu", "n", "y");
    tm_output(b, "y");
    struct cxr_nn_model *model = load(b);
    struct cxr_nn_model_stats stats;
    cxr_nn_model_stats_get(model, &stats);
    assert_int_equal(stats.planned_steps, 1); /* one convolution does all three */
    float x[72];
    for (int i = 0; i < 72; i++)
        x[i] = sinf((float)i);
    run(model, x);
    float want[3 * 2 * 2];
    for (int o = 0; o < 3; o++)
        for (int oy = 0; oy < 2; oy++)
            for (int ox = 0; ox < 2; ox++) {
                double sum = bias[o];
                for (int c = 0; c < 2; c++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++)
                            sum += (double)w[((o * 2 + c) * 3 + ky) * 3 + kx] *
                                   x[(c * 6 + oy * 2 + ky) * 6 + ox * 2 + kx];
                double n = (sum - mean[o]) / sqrt(var[o] + 1e-3) * gamma[o] + beta[o];
                want[(o * 2 + oy) * 2 + ox] = (float)(n > 0 ? n : 0);
            }
    assert_close(cxr_nn_model_output_data(model, 0), want, 12, 1e-5f);
    cxr_nn_model_destroy(model);
    tm_destroy(b);
}

static void test_maxpool_and_averagepool(void **state)
{
    (void)state;
    struct tm_model *b = tm_create();
    int64_t in_dims[4] = {1, 1, 4, 4}, kernel[2] = {2, 2}, strides[2] = {2, 2};
    int64_t kernel3[2] = {3, 3}, pads[4] = {1, 1, 1, 1};
    tm_input(b, "x", 4, in_dims);
    Onnx__NodeProto *max = tm_node(b, "MaxPool", "max", "x", "m");
    tm_attr_ints(b, max, "kernel_shape", 2, kernel);
    tm_attr_ints(b, max, "strides", 2, strides);
    Onnx__NodeProto *avg = tm_node(b, "AveragePool", "avg", "x", "a");
    tm_attr_ints(b, avg, "kernel_shape", 2, kernel3);
    tm_attr_ints(b, avg, "strides", 2, strides);
    tm_attr_ints(b, avg, "pads", 4, pads);
    Onnx__NodeProto *avg_in = tm_node(b, "AveragePool", "avg_include", "x", "ai");
    tm_attr_ints(b, avg_in, "kernel_shape", 2, kernel3);
    tm_attr_ints(b, avg_in, "strides", 2, strides);
    tm_attr_ints(b, avg_in, "pads", 4, pads);
    tm_attr_int(b, avg_in, "count_include_pad", 1);
    tm_output(b, "m");
    tm_output(b, "a");
    tm_output(b, "ai");
    struct cxr_nn_model *model = load(b);
    float x[16] = {1, 5, 2, 0, -3, 4, 8, 1, 0, 0, -1, -2, 7, 3, -5, 6};
    run(model, x);
    const float want_max[4] = {5, 8, 7, 6};
    assert_close(cxr_nn_model_output_data(model, 0), want_max, 4, 0.0f);
    /* Windows rows/cols {-1..1} and {1..3}: padding excluded, then included (/9). */
    const float want_avg[4] = {(1 + 5 - 3 + 4) / 4.0f, (5 + 2 + 0 + 4 + 8 + 1) / 6.0f,
                               (-3 + 4 + 0 + 0 + 7 + 3) / 6.0f,
                               (4 + 8 + 1 + 0 - 1 - 2 + 3 - 5 + 6) / 9.0f};
    assert_close(cxr_nn_model_output_data(model, 1), want_avg, 4, 1e-6f);
    const float want_include[4] = {(1 + 5 - 3 + 4) / 9.0f, (5 + 2 + 0 + 4 + 8 + 1) / 9.0f,
                                   (-3 + 4 + 0 + 0 + 7 + 3) / 9.0f,
                                   (4 + 8 + 1 + 0 - 1 - 2 + 3 - 5 + 6) / 9.0f};
    assert_close(cxr_nn_model_output_data(model, 2), want_include, 4, 1e-6f);
    cxr_nn_model_destroy(model);
    tm_destroy(b);
}

/* DenseNet's pattern: x0, y1 = conv(x0), y2 = conv(cat(x0, y1)), out = cat(x0, y1, y2).
 * Both Concats must be planned in place (no step) and the values must still be right. */
static void test_concat_in_place(void **state)
{
    (void)state;
    struct tm_model *b = tm_create();
    int64_t in_dims[4] = {1, 2, 3, 3}, w1_dims[4] = {1, 2, 1, 1}, w2_dims[4] = {2, 3, 1, 1};
    float w1[2] = {1.0f, -2.0f}, w2[6] = {0.5f, 1.0f, 2.0f, -1.0f, 0.0f, 3.0f};
    tm_input(b, "x", 4, in_dims);
    tm_initializer(b, "w1", 4, w1_dims, w1, 1);
    tm_initializer(b, "w2", 4, w2_dims, w2, 1);
    tm_node(b, "Relu", "relu0", "x", "x0");
    tm_node(b, "Conv", "conv1", "x0,w1", "y1");
    Onnx__NodeProto *cat1 = tm_node(b, "Concat", "cat1", "x0,y1", "c1");
    tm_attr_int(b, cat1, "axis", 1);
    tm_node(b, "Conv", "conv2", "c1,w2", "y2");
    Onnx__NodeProto *cat2 = tm_node(b, "Concat", "cat2", "x0,y1,y2", "out");
    tm_attr_int(b, cat2, "axis", 1);
    tm_output(b, "out");
    struct cxr_nn_model *model = load(b);
    struct cxr_nn_model_stats stats;
    cxr_nn_model_stats_get(model, &stats);
    assert_int_equal(stats.planned_steps, 3); /* relu, conv1, conv2: no copies */
    float x[18];
    for (int i = 0; i < 18; i++)
        x[i] = (float)(i % 5) - 1.5f;
    run(model, x);
    float want[5 * 9];
    for (int p = 0; p < 9; p++) {
        float a = fmaxf(x[p], 0.0f), c = fmaxf(x[9 + p], 0.0f);
        float y1 = a * w1[0] + c * w1[1];
        want[p] = a;
        want[9 + p] = c;
        want[18 + p] = y1;
        want[27 + p] = a * w2[0] + c * w2[1] + y1 * w2[2];
        want[36 + p] = a * w2[3] + c * w2[4] + y1 * w2[5];
    }
    assert_close(cxr_nn_model_output_data(model, 0), want, 45, 1e-6f);
    cxr_nn_model_destroy(model);
    tm_destroy(b);
}

/* The contract head: GlobalAveragePool, Flatten, Gemm, Add, Sigmoid. */
static void test_classifier_head(void **state)
{
    (void)state;
    struct tm_model *b = tm_create();
    int64_t in_dims[4] = {1, 3, 2, 2}, w_dims[2] = {2, 3}, bias_dims[1] = {2};
    float w[6] = {1, 0, -1, 0.5f, 0.5f, 0.5f}, c[2] = {0.1f, -0.1f}, shift[2] = {1.0f, 2.0f};
    tm_input(b, "x", 4, in_dims);
    tm_initializer(b, "w", 2, w_dims, w, 1);
    tm_initializer(b, "c", 1, bias_dims, c, 0);
    tm_initializer(b, "shift", 1, bias_dims, shift, 1);
    tm_node(b, "GlobalAveragePool", "gap", "x", "g");
    tm_node(b, "Flatten", "flatten", "g", "f");
    Onnx__NodeProto *gemm = tm_node(b, "Gemm", "fc", "f,w,c", "l");
    tm_attr_int(b, gemm, "transB", 1);
    tm_node(b, "Add", "add", "l,shift", "s");
    tm_node(b, "Sigmoid", "sigmoid", "s", "p");
    tm_output(b, "p");
    tm_metadata(b, "cxr.model_version", "test-1");
    struct cxr_nn_model *model = load(b);
    assert_string_equal(cxr_nn_model_metadata(model, "cxr.model_version"), "test-1");
    assert_null(cxr_nn_model_metadata(model, "absent"));
    float x[12] = {1, 2, 3, 4, 0, 0, 0, 4, -1, -1, 1, 1};
    run(model, x);
    float mean[3] = {2.5f, 1.0f, 0.0f};
    float want[2];
    for (int o = 0; o < 2; o++) {
        float logit = c[o] + shift[o];
        for (int i = 0; i < 3; i++)
            logit += w[o * 3 + i] * mean[i];
        want[o] = 1.0f / (1.0f + expf(-logit));
    }
    assert_close(cxr_nn_model_output_data(model, 0), want, 2, 1e-6f);
    cxr_nn_model_destroy(model);
    tm_destroy(b);
}

/* Squeeze-Excitation: Mul of [1,C,H,W] by a computed [1,C,1,1]; results identical for any
 * thread count. */
static void test_squeeze_excitation_deterministic(void **state)
{
    (void)state;
    struct tm_model *b = tm_create();
    int64_t in_dims[4] = {1, 8, 9, 9}, w_dims[4] = {8, 8, 3, 3}, pads[4] = {1, 1, 1, 1};
    float w[8 * 8 * 9];
    for (int i = 0; i < 8 * 8 * 9; i++)
        w[i] = cosf((float)i) * 0.2f;
    tm_input(b, "x", 4, in_dims);
    tm_initializer(b, "w", 4, w_dims, w, 1);
    Onnx__NodeProto *conv = tm_node(b, "Conv", "conv", "x,w", "c");
    tm_attr_ints(b, conv, "pads", 4, pads);
    tm_node(b, "GlobalAveragePool", "gap", "c", "g");
    tm_node(b, "Sigmoid", "gate", "g", "s");
    tm_node(b, "Mul", "scale", "c,s", "y");
    tm_output(b, "y");
    size_t size;
    unsigned char *bytes = tm_pack(b, &size);
    float x[8 * 81];
    for (int i = 0; i < 8 * 81; i++)
        x[i] = sinf((float)i * 0.37f);
    const float *inputs[1] = {x};
    float results[2][8 * 81];
    for (int t = 0; t < 2; t++) {
        struct cxr_nn_runtime *pool = NULL;
        struct cxr_nn_model *model = NULL;
        assert_int_equal(cxr_nn_runtime_create((uint32_t)t + 1, &pool, NULL), CXR_OK);
        assert_int_equal(cxr_nn_model_load_memory(pool, bytes, size, NULL, &model, NULL), CXR_OK);
        assert_int_equal(cxr_nn_model_run(model, inputs, NULL), CXR_OK);
        memcpy(results[t], cxr_nn_model_output_data(model, 0), sizeof(results[t]));
        cxr_nn_model_destroy(model);
        cxr_nn_runtime_destroy(pool);
    }
    assert_memory_equal(results[0], results[1], sizeof(results[0]));
    /* And the values: gate from the channel mean of the convolution. */
    float conv_out[8 * 81];
    for (int o = 0; o < 8; o++)
        for (int p = 0; p < 81; p++) {
            int py = p / 9, px = p % 9;
            double sum = 0;
            for (int c = 0; c < 8; c++)
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        int y = py + ky - 1, xx = px + kx - 1;
                        if (y < 0 || xx < 0 || y >= 9 || xx >= 9)
                            continue;
                        sum += (double)w[((o * 8 + c) * 3 + ky) * 3 + kx] * x[c * 81 + y * 9 + xx];
                    }
            conv_out[o * 81 + p] = (float)sum;
        }
    float want[8 * 81];
    for (int o = 0; o < 8; o++) {
        double mean = 0;
        for (int p = 0; p < 81; p++)
            mean += conv_out[o * 81 + p];
        float gate = 1.0f / (1.0f + expf(-(float)(mean / 81)));
        for (int p = 0; p < 81; p++)
            want[o * 81 + p] = conv_out[o * 81 + p] * gate;
    }
    assert_close(results[0], want, 8 * 81, 1e-5f);
    free(bytes);
    tm_destroy(b);
}

static int setup(void **state)
{
    (void)state;
    return cxr_nn_runtime_create(2, &runtime, NULL) == CXR_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cxr_nn_runtime_destroy(runtime);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_conv_3x3_padded),
            cmocka_unit_test(test_conv_batchnorm_relu_fused),
            cmocka_unit_test(test_maxpool_and_averagepool),
            cmocka_unit_test(test_concat_in_place),
            cmocka_unit_test(test_classifier_head),
            cmocka_unit_test(test_squeeze_excitation_deterministic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
