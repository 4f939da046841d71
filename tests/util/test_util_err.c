/* cxr_err keeps the first error; status names are distinct and stable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "util/util.h"

static void first_error_wins(void **state)
{
    (void)state;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_err_set(&err, CXR_ERR_MALFORMED, "tag (%04X,%04X) too long", 0x7FE0, 0x10),
                     CXR_ERR_MALFORMED);
    assert_int_equal(cxr_err_set(&err, CXR_ERR_IO, "context"), CXR_ERR_IO);
    assert_int_equal(err.status, CXR_ERR_MALFORMED);
    assert_string_equal(err.message, "tag (7FE0,0010) too long");
}

static void null_err_and_ok_status_are_ignored(void **state)
{
    (void)state;
    assert_int_equal(cxr_err_set(NULL, CXR_ERR_IO, "x"), CXR_ERR_IO);
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_err_set(&err, CXR_OK, "not an error"), CXR_OK);
    assert_int_equal(err.status, CXR_OK);
    assert_string_equal(err.message, "");
}

static void long_messages_are_truncated_and_terminated(void **state)
{
    (void)state;
    char long_text[2000];
    memset(long_text, 'a', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    struct cxr_err err = CXR_ERR_INIT;
    cxr_err_set(&err, CXR_ERR_LIMIT, "%s", long_text);
    assert_int_equal(strlen(err.message), sizeof(err.message) - 1);
}

static void status_names_are_stable(void **state)
{
    (void)state;
    static const struct {
        enum cxr_status status;
        int value;
        const char *name;
    } table[] = {
            {CXR_OK, 0, "CXR_OK"},
            {CXR_ERR_NOMEM, 1, "CXR_ERR_NOMEM"},
            {CXR_ERR_IO, 2, "CXR_ERR_IO"},
            {CXR_ERR_INVALID_ARG, 3, "CXR_ERR_INVALID_ARG"},
            {CXR_ERR_LIMIT, 4, "CXR_ERR_LIMIT"},
            {CXR_ERR_MALFORMED, 5, "CXR_ERR_MALFORMED"},
            {CXR_ERR_UNSUPPORTED, 6, "CXR_ERR_UNSUPPORTED"},
            {CXR_ERR_NOT_FOUND, 7, "CXR_ERR_NOT_FOUND"},
            {CXR_ERR_INTERNAL, 8, "CXR_ERR_INTERNAL"},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        assert_int_equal((int)table[i].status, table[i].value);
        assert_string_equal(cxr_status_name(table[i].status), table[i].name);
    }
    assert_string_equal(cxr_status_name((enum cxr_status)999), "CXR_ERR_UNKNOWN");
}

static void log_levels_parse(void **state)
{
    (void)state;
    enum cxr_log_level level = CXR_LOG_ERROR;
    assert_int_equal(cxr_log_level_parse("debug", &level), CXR_OK);
    assert_int_equal(level, CXR_LOG_DEBUG);
    assert_int_equal(cxr_log_level_parse("warn", &level), CXR_OK);
    assert_int_equal(level, CXR_LOG_WARN);
    assert_int_equal(cxr_log_level_parse("verbose", &level), CXR_ERR_INVALID_ARG);
    assert_int_equal(level, CXR_LOG_WARN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(first_error_wins),
            cmocka_unit_test(null_err_and_ok_status_are_ignored),
            cmocka_unit_test(long_messages_are_truncated_and_terminated),
            cmocka_unit_test(status_names_are_stable),
            cmocka_unit_test(log_levels_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
