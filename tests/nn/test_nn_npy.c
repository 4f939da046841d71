/* .npy reader and writer: round trips, NumPy's own header layout, and refusals of what the
 * reader does not take (other dtypes, Fortran order, truncation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nn/nn.h"

static void temp_path(char *path, size_t size, const char *name)
{
    snprintf(path, size, "/tmp/cxr_test_nn_npy_%d_%s", (int)getpid(), name);
}

static void test_round_trip(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof(path), "a.npy");
    float data[24];
    for (int i = 0; i < 24; i++)
        data[i] = (float)i * 0.5f - 3.0f;
    int64_t dims[3] = {2, 3, 4};
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_nn_npy_write(path, data, 3, dims, &err), CXR_OK);
    struct cxr_nn_array array;
    assert_int_equal(cxr_nn_npy_read(path, NULL, &array, &err), CXR_OK);
    assert_int_equal(array.rank, 3);
    assert_int_equal(array.dims[0], 2);
    assert_int_equal(array.dims[1], 3);
    assert_int_equal(array.dims[2], 4);
    assert_int_equal(array.count, 24);
    assert_memory_equal(array.data, data, sizeof(data));
    cxr_nn_array_release(&array);

    /* The header NumPy writes: magic, v1.0, length so data starts on a 64-byte boundary. */
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    unsigned char header[128];
    assert_int_equal(fread(header, 1, sizeof(header), file), sizeof(header));
    fclose(file);
    assert_memory_equal(header, "\x93NUMPY\x01\x00", 8);
    size_t header_len = (size_t)header[8] | (size_t)header[9] << 8;
    assert_int_equal((10 + header_len) % 64, 0);
    const char *expected = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }";
    assert_memory_equal(header + 10, expected, strlen(expected));
    assert_int_equal(header[10 + header_len - 1], '\n');
    unlink(path);
}

static void test_scalar_and_vector_shapes(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof(path), "b.npy");
    float value = 42.0f;
    int64_t one[1] = {1};
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_nn_npy_write(path, &value, 1, one, &err), CXR_OK);
    struct cxr_nn_array array;
    assert_int_equal(cxr_nn_npy_read(path, NULL, &array, &err), CXR_OK);
    assert_int_equal(array.rank, 1);
    assert_int_equal(array.dims[0], 1);
    assert_true(array.data[0] == 42.0f);
    cxr_nn_array_release(&array);
    assert_int_equal(cxr_nn_npy_write(path, &value, 0, one, &err), CXR_OK);
    assert_int_equal(cxr_nn_npy_read(path, NULL, &array, &err), CXR_OK);
    assert_int_equal(array.rank, 0);
    assert_int_equal(array.count, 1);
    cxr_nn_array_release(&array);
    unlink(path);
}

static enum cxr_status parse_text(const char *header, size_t payload)
{
    unsigned char bytes[512];
    size_t len = strlen(header);
    memcpy(bytes, "\x93NUMPY\x01\x00", 8);
    bytes[8] = (unsigned char)len;
    bytes[9] = 0;
    memcpy(bytes + 10, header, len);
    memset(bytes + 10 + len, 0, payload);
    struct cxr_nn_array array;
    struct cxr_err err = CXR_ERR_INIT;
    enum cxr_status status = cxr_nn_npy_parse(bytes, 10 + len + payload, NULL, &array, &err);
    if (status == CXR_OK)
        cxr_nn_array_release(&array);
    return status;
}

static void test_refusals(void **state)
{
    (void)state;
    assert_int_equal(parse_text("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8),
                     CXR_OK);
    /* v2 header and double quotes are fine too; other dtypes and orders are not. */
    assert_int_equal(parse_text("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16),
                     CXR_ERR_UNSUPPORTED);
    assert_int_equal(parse_text("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8),
                     CXR_ERR_UNSUPPORTED);
    assert_int_equal(parse_text("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8),
                     CXR_ERR_UNSUPPORTED);
    assert_int_equal(parse_text("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 4),
                     CXR_ERR_MALFORMED);
    assert_int_equal(parse_text("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8),
                     CXR_ERR_MALFORMED);
    assert_int_equal(parse_text("{'descr': '<f4', 'fortran_order': False}", 8), CXR_ERR_MALFORMED);
    assert_int_equal(
            parse_text("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }", 8),
            CXR_ERR_LIMIT);
    assert_int_equal(parse_text("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 8),
                     CXR_ERR_MALFORMED);
    unsigned char bad[16] = "\x93NUMPX\x01\x00";
    struct cxr_nn_array array;
    assert_int_equal(cxr_nn_npy_parse(bad, sizeof(bad), NULL, &array, NULL), CXR_ERR_MALFORMED);
    /* A header length past the end of the file. */
    unsigned char truncated[12] = "\x93NUMPY\x01\x00\xff\x00";
    assert_int_equal(cxr_nn_npy_parse(truncated, sizeof(truncated), NULL, &array, NULL),
                     CXR_ERR_MALFORMED);
}

static void test_write_failure_leaves_nothing(void **state)
{
    (void)state;
    float value = 1.0f;
    int64_t one[1] = {1};
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_nn_npy_write("/nonexistent-dir/x.npy", &value, 1, one, &err), CXR_ERR_IO);
    assert_non_null(strstr(err.message, "nonexistent-dir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip),
            cmocka_unit_test(test_scalar_and_vector_shapes),
            cmocka_unit_test(test_refusals),
            cmocka_unit_test(test_write_failure_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
