/* Growable buffers: contents, growth, and the maximum that input can never exceed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/util.h"

static void append_and_printf_accumulate(void **state)
{
    (void)state;
    struct cxr_buf buf = CXR_BUF_INIT(0);
    assert_int_equal(cxr_buf_append(&buf, "ab", 2), CXR_OK);
    assert_int_equal(cxr_buf_printf(&buf, "-%d-%s", 42, "x"), CXR_OK);
    assert_int_equal(buf.len, 7);
    assert_memory_equal(buf.data, "ab-42-x", 7);
    assert_int_equal(buf.data[buf.len], '\0'); /* printf leaves a terminator past len */
    cxr_buf_release(&buf);
    assert_null(buf.data);
    assert_int_equal(buf.len, 0);
}

static void grows_across_many_appends(void **state)
{
    (void)state;
    struct cxr_buf buf = CXR_BUF_INIT(0);
    for (int i = 0; i < 10000; i++) {
        unsigned char byte = (unsigned char)(i * 7);
        assert_int_equal(cxr_buf_append(&buf, &byte, 1), CXR_OK);
    }
    assert_int_equal(buf.len, 10000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(buf.data[i], (unsigned char)(i * 7));
    cxr_buf_release(&buf);
}

static void exact_reserve_grows_to_the_size_asked(void **state)
{
    (void)state;
    struct cxr_buf buf = CXR_BUF_INIT(1000);
    assert_int_equal(cxr_buf_reserve_exact(&buf, 300), CXR_OK);
    assert_int_equal(buf.cap, 300); /* cxr_buf_reserve would have doubled to 512 */
    assert_int_equal(cxr_buf_append(&buf, "abc", 3), CXR_OK);
    assert_int_equal(cxr_buf_reserve_exact(&buf, 997), CXR_OK);
    assert_int_equal(buf.cap, 1000);
    assert_int_equal(cxr_buf_reserve_exact(&buf, 998), CXR_ERR_LIMIT);
    assert_int_equal(buf.cap, 1000);
    assert_memory_equal(buf.data, "abc", 3);
    cxr_buf_release(&buf);
}

static void maximum_is_enforced_and_buffer_unchanged(void **state)
{
    (void)state;
    struct cxr_buf buf = CXR_BUF_INIT(10);
    assert_int_equal(cxr_buf_append(&buf, "0123456789", 10), CXR_OK);
    assert_int_equal(cxr_buf_append(&buf, "x", 1), CXR_ERR_LIMIT);
    assert_int_equal(buf.len, 10);
    assert_memory_equal(buf.data, "0123456789", 10);
    /* printf needs one byte for its terminator, so it cannot fill the buffer exactly. */
    struct cxr_buf small = CXR_BUF_INIT(4);
    assert_int_equal(cxr_buf_printf(&small, "%s", "abcd"), CXR_ERR_LIMIT);
    assert_int_equal(small.len, 0);
    assert_int_equal(cxr_buf_reserve(&buf, SIZE_MAX), CXR_ERR_LIMIT);
    cxr_buf_release(&buf);
    cxr_buf_release(&small);
    cxr_buf_release(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(append_and_printf_accumulate),
            cmocka_unit_test(grows_across_many_appends),
            cmocka_unit_test(exact_reserve_grows_to_the_size_asked),
            cmocka_unit_test(maximum_is_enforced_and_buffer_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
