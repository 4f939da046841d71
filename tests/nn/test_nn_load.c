/* The loader refuses what it must, with the status and message a user needs: truncated and
 * corrupt files, wrong shapes, huge dimensions, external data, unknown operators and
 * attributes (naming the node), int64 or missing tensors. */
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

static enum cxr_status load_bytes(const unsigned char *bytes, size_t size, char *message)
{
    struct cxr_nn_model *model = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    enum cxr_status status = cxr_nn_model_load_memory(runtime, bytes, size, NULL, &model, &err);
    cxr_nn_model_destroy(model);
    if (message)
        strcpy(message, err.message);
    return status;
}

static enum cxr_status load(struct tm_model *builder, char *message)
{
    size_t size;
    unsigned char *bytes = tm_pack(builder, &size);
    enum cxr_status status = load_bytes(bytes, size, message);
    free(bytes);
    tm_destroy(builder);
    return status;
}

/* x [1,2,4,4] -> Conv(w [3,2,3,3]) -> Relu -> y */
static struct tm_model *conv_model(const int64_t *w_dims, int raw)
{
    static float w[4096];
    struct tm_model *b = tm_create();
    int64_t in_dims[4] = {1, 2, 4, 4};
    tm_input(b, "x", 4, in_dims);
    tm_initializer(b, "w", 4, w_dims, w, raw);
    tm_node(b, "Conv", "conv1", "x,w", "c");
    tm_node(b, "Relu", "relu1", "c", "y");
    tm_output(b, "y");
    return b;
}

static void test_valid_model_loads(void **state)
{
    (void)state;
    int64_t w_dims[4] = {3, 2, 3, 3};
    assert_int_equal(load(conv_model(w_dims, 1), NULL), CXR_OK);
    assert_int_equal(load(conv_model(w_dims, 0), NULL), CXR_OK);
}

static void test_truncated_and_corrupt(void **state)
{
    (void)state;
    int64_t w_dims[4] = {3, 2, 3, 3};
    struct tm_model *b = conv_model(w_dims, 1);
    size_t size;
    unsigned char *bytes = tm_pack(b, &size);
    tm_destroy(b);
    char message[512];
    /* Every truncation is refused, never crashes. */
    for (size_t cut = 0; cut < size; cut += (cut < 64 ? 1 : 7)) {
        enum cxr_status status = load_bytes(bytes, cut, message);
        assert_true(status == CXR_ERR_MALFORMED || status == CXR_ERR_UNSUPPORTED);
    }
    assert_int_equal(load_bytes(bytes, size - 1, message), CXR_ERR_MALFORMED);
    assert_non_null(strstr(message, "ONNX"));
    unsigned char garbage[64];
    memset(garbage, 0xff, sizeof(garbage));
    assert_int_equal(load_bytes(garbage, sizeof(garbage), NULL), CXR_ERR_MALFORMED);
    free(bytes);
}

static void test_wrong_shapes(void **state)
{
    (void)state;
    char message[512];
    int64_t w_dims[4] = {3, 5, 3, 3}; /* 5 input channels for a 2-channel input */
    assert_int_equal(load(conv_model(w_dims, 1), message), CXR_ERR_MALFORMED);
    assert_non_null(strstr(message, "conv1"));
    int64_t big_kernel[4] = {3, 2, 7, 7}; /* larger than the 4x4 input */
    assert_int_equal(load(conv_model(big_kernel, 1), message), CXR_ERR_MALFORMED);

    /* An initializer whose data does not match its dims. */
    struct tm_model *b = conv_model((int64_t[4]){3, 2, 3, 3}, 1);
    Onnx__TensorProto *w =
            tm_initializer(b, "extra", 1, (int64_t[1]){4}, (float[4]){1, 2, 3, 4}, 1);
    w->raw_data.len = 12;
    assert_int_equal(load(b, message), CXR_ERR_MALFORMED);
    assert_non_null(strstr(message, "extra"));

    /* Add of shapes that do not broadcast. */
    b = tm_create();
    tm_input(b, "a", 2, (int64_t[2]){2, 3});
    tm_input(b, "c", 2, (int64_t[2]){3, 2});
    tm_node(b, "Add", "add1", "a,c", "y");
    tm_output(b, "y");
    assert_int_equal(load(b, message), CXR_ERR_MALFORMED);
    assert_non_null(strstr(message, "add1"));

    /* Gemm takes only a constant B: a computed one is refused, not read as weights (found by
     * fuzz_onnx_load: Gemm(f, f) read B's missing values). */
    b = tm_create();
    tm_input(b, "x", 2, (int64_t[2]){3, 3});
    tm_node(b, "Relu", "relu", "x", "f");
    tm_node(b, "Gemm", "gemm1", "f,f", "y");
    tm_output(b, "y");
    assert_int_equal(load(b, message), CXR_ERR_UNSUPPORTED);
    assert_non_null(strstr(message, "gemm1"));
}

static void test_huge_dimensions(void **state)
{
    (void)state;
    char message[512];
    struct tm_model *b = tm_create();
    tm_input(b, "x", 4, (int64_t[4]){1, 1, (int64_t)1 << 40, (int64_t)1 << 40});
    tm_node(b, "Relu", "relu", "x", "y");
    tm_output(b, "y");
    assert_int_equal(load(b, message), CXR_ERR_LIMIT);

    b = tm_create();
    tm_input(b, "x", 4, (int64_t[4]){1, 1, 65536, 65536}); /* 2^32 elements */
    tm_node(b, "Relu", "relu", "x", "y");
    tm_output(b, "y");
    assert_int_equal(load(b, message), CXR_ERR_LIMIT);

    b = tm_create();
    tm_input(b, "x", 2, (int64_t[2]){1, -5});
    tm_node(b, "Relu", "relu", "x", "y");
    tm_output(b, "y");
    assert_int_equal(load(b, message), CXR_ERR_LIMIT);

    /* Within the per-tensor bounds but above the runtime's memory limit. */
    struct cxr_nn_runtime *small = NULL;
    assert_int_equal(cxr_nn_runtime_create(1, &small, NULL), CXR_OK);
    cxr_nn_runtime_set_memory_limit(small, 1 << 20);
    b = tm_create();
    tm_input(b, "x", 4, (int64_t[4]){1, 8, 256, 256}); /* 2 MiB */
    tm_node(b, "Relu", "relu", "x", "y");
    tm_output(b, "y");
    size_t size;
    unsigned char *bytes = tm_pack(b, &size);
    tm_destroy(b);
    struct cxr_nn_model *model = NULL;
    assert_int_equal(cxr_nn_model_load_memory(small, bytes, size, NULL, &model, NULL),
                     CXR_ERR_LIMIT);
    cxr_nn_runtime_set_memory_limit(small, 16 << 20);
    assert_int_equal(cxr_nn_model_load_memory(small, bytes, size, NULL, &model, NULL), CXR_OK);
    cxr_nn_model_destroy(model);
    cxr_nn_runtime_destroy(small);
    free(bytes);

    /* An initializer claiming 2^62 elements with no data behind them. */
    b = tm_create();
    tm_input(b, "x", 1, (int64_t[1]){4});
    Onnx__TensorProto *w = tm_initializer(b, "w", 1, (int64_t[1]){4}, (float[4]){0}, 1);
    w->dims[0] = (int64_t)1 << 62;
    tm_node(b, "Add", "add", "x,w", "y");
    tm_output(b, "y");
    assert_int_equal(load(b, message), CXR_ERR_LIMIT);
}

static void test_external_data_refused(void **state)
{
    (void)state;
    char message[512];
    struct tm_model *b = conv_model((int64_t[4]){3, 2, 3, 3}, 1);
    Onnx__TensorProto *w = tm_initializer(b, "ext", 1, (int64_t[1]){1}, (float[1]){0}, 1);
    w->has_data_location = 1;
    w->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    assert_int_equal(load(b, message), CXR_ERR_UNSUPPORTED);
    assert_non_null(strstr(message, "external"));
    assert_non_null(strstr(message, "ext"));
}

static void test_unknown_operator_and_attribute(void **state)
{
    (void)state;
    char message[512];
    struct tm_model *b = tm_create();
    tm_input(b, "x", 2, (int64_t[2]){1, 4});
    tm_node(b, "Relu", "ok", "x", "r");
    tm_node(b, "FancyOp", "mystery_node", "r", "y");
    tm_output(b, "y");
    assert_int_equal(load(b, message), CXR_ERR_UNSUPPORTED);
    assert_non_null(strstr(message, "mystery_node"));
    assert_non_null(strstr(message, "FancyOp"));

    /* An attribute the runtime does not know is refused, naming node and attribute. */
    b = tm_create();
    tm_input(b, "x", 4, (int64_t[4]){1, 1, 4, 4});
    Onnx__NodeProto *pool = tm_node(b, "MaxPool", "pool7", "x", "y");
    tm_attr_ints(b, pool, "kernel_shape", 2, (int64_t[2]){2, 2});
    tm_attr_int(b, pool, "storage_order", 1);
    tm_output(b, "y");
    assert_int_equal(load(b, message), CXR_ERR_UNSUPPORTED);
    assert_non_null(strstr(message, "pool7"));

    b = tm_create();
    tm_input(b, "x", 4, (int64_t[4]){1, 1, 4, 4});
    Onnx__NodeProto *resize = tm_node(b, "Resize", "resize3", "x,,scales", "y");
    tm_initializer(b, "scales", 1, (int64_t[1]){4}, (float[4]){1, 1, 2, 2}, 1);
    tm_attr_string(b, resize, "mode", "cubic");
    tm_output(b, "y");
    assert_int_equal(load(b, message), CXR_ERR_UNSUPPORTED);
    assert_non_null(strstr(message, "resize3"));
    assert_non_null(strstr(message, "cubic"));
}

static void test_dangling_and_duplicate_tensors(void **state)
{
    (void)state;
    char message[512];
    struct tm_model *b = tm_create();
    tm_input(b, "x", 2, (int64_t[2]){1, 4});
    tm_node(b, "Relu", "r1", "nowhere", "y");
    tm_output(b, "y");
    assert_int_equal(load(b, message), CXR_ERR_MALFORMED);
    assert_non_null(strstr(message, "nowhere"));

    b = tm_create();
    tm_input(b, "x", 2, (int64_t[2]){1, 4});
    tm_node(b, "Relu", "r1", "x", "y");
    tm_node(b, "Relu", "r2", "x", "y");
    tm_output(b, "y");
    assert_int_equal(load(b, message), CXR_ERR_MALFORMED);

    b = tm_create();
    tm_input(b, "x", 2, (int64_t[2]){1, 4});
    tm_node(b, "Relu", "r1", "x", "y");
    tm_output(b, "not_produced");
    assert_int_equal(load(b, message), CXR_ERR_MALFORMED);
}

/* Shape arithmetic from older exporters folds away: Shape, Gather, Unsqueeze, Concat,
 * Reshape of a [1,C,1,1] map into [1,C]. */
static void test_shape_arithmetic_folds(void **state)
{
    (void)state;
    struct tm_model *b = tm_create();
    tm_input(b, "x", 4, (int64_t[4]){1, 3, 1, 1});
    tm_initializer_i64(b, "zero", 0, (int64_t[1]){1}, (int64_t[1]){0});
    tm_initializer_i64(b, "minus_one", 1, (int64_t[1]){1}, (int64_t[1]){-1});
    tm_node(b, "Shape", "shape", "x", "s");
    Onnx__NodeProto *gather = tm_node(b, "Gather", "gather", "s,zero", "n");
    tm_attr_int(b, gather, "axis", 0);
    tm_node(b, "Unsqueeze", "unsqueeze", "n,axes", "n1");
    tm_initializer_i64(b, "axes", 1, (int64_t[1]){1}, (int64_t[1]){0});
    Onnx__NodeProto *cat = tm_node(b, "Concat", "cat", "n1,minus_one", "shape2");
    tm_attr_int(b, cat, "axis", 0);
    tm_node(b, "Reshape", "reshape", "x,shape2", "y");
    tm_output(b, "y");
    size_t size;
    unsigned char *bytes = tm_pack(b, &size);
    tm_destroy(b);
    struct cxr_nn_model *model = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_nn_model_load_memory(runtime, bytes, size, NULL, &model, &err) != CXR_OK)
        fail_msg("%s", err.message);
    free(bytes);
    const struct cxr_nn_tensor_info *out = cxr_nn_model_output(model, 0);
    assert_int_equal(out->rank, 2);
    assert_int_equal(out->dims[0], 1);
    assert_int_equal(out->dims[1], 3);
    struct cxr_nn_model_stats stats;
    cxr_nn_model_stats_get(model, &stats);
    assert_int_equal(stats.planned_steps, 0); /* a view of the input copy */
    float x[3] = {1, 2, 3};
    const float *inputs[1] = {x};
    assert_int_equal(cxr_nn_model_run(model, inputs, NULL), CXR_OK);
    assert_memory_equal(cxr_nn_model_output_data(model, 0), x, sizeof(x));
    cxr_nn_model_destroy(model);
}

static int setup(void **state)
{
    (void)state;
    return cxr_nn_runtime_create(1, &runtime, NULL) == CXR_OK ? 0 : -1;
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
            cmocka_unit_test(test_valid_model_loads),
            cmocka_unit_test(test_truncated_and_corrupt),
            cmocka_unit_test(test_wrong_shapes),
            cmocka_unit_test(test_huge_dimensions),
            cmocka_unit_test(test_external_data_refused),
            cmocka_unit_test(test_unknown_operator_and_attribute),
            cmocka_unit_test(test_dangling_and_duplicate_tensors),
            cmocka_unit_test(test_shape_arithmetic_folds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
