/* INI loading (libinih) and the value parsers config keys use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/util.h"

static void ini_entries_in_order(void **state)
{
    (void)state;
    struct cxr_ini *ini = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    const char *text = "; comment\n[server]\nport = 8500\nthreads=4 ; inline\n"
                       "[paths]\ninput_root = /data/in\n[server]\nport = 9000\n";
    assert_int_equal(cxr_ini_parse(text, &ini, &err), CXR_OK);
    assert_int_equal(cxr_ini_count(ini), 4);
    assert_string_equal(cxr_ini_get(ini, "server", "port"), "9000"); /* last one wins */
    assert_string_equal(cxr_ini_get(ini, "server", "threads"), "4");
    assert_string_equal(cxr_ini_get(ini, "paths", "input_root"), "/data/in");
    assert_null(cxr_ini_get(ini, "paths", "port"));
    const char *section, *key, *value;
    cxr_ini_entry(ini, 2, &section, &key, &value);
    assert_string_equal(section, "paths");
    assert_string_equal(key, "input_root");
    cxr_ini_destroy(ini);
}

static void ini_errors(void **state)
{
    (void)state;
    struct cxr_ini *ini = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_ini_parse("[server]\nport 8500\n", &ini, &err), CXR_ERR_MALFORMED);
    assert_non_null(strstr(err.message, "line 2"));
    assert_null(ini);
    struct cxr_err err2 = CXR_ERR_INIT;
    assert_int_equal(cxr_ini_load("/nonexistent/cxrd.ini", &ini, &err2), CXR_ERR_IO);
}

static void value_parsers(void **state)
{
    (void)state;
    uint64_t number = 0;
    size_t size = 0;
    int flag = -1;
    assert_int_equal(cxr_parse_u64("8500", 1, 65535, &number), CXR_OK);
    assert_int_equal(number, 8500);
    assert_int_equal(cxr_parse_u64("0", 1, 65535, &number), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_parse_u64("70000", 1, 65535, &number), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_parse_u64("-1", 0, 10, &number), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_parse_u64("12x", 0, 100, &number), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_parse_u64("99999999999999999999", 0, UINT64_MAX, &number),
                     CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_parse_size("64k", &size), CXR_OK);
    assert_int_equal(size, 65536);
    assert_int_equal(cxr_parse_size("16M", &size), CXR_OK);
    assert_int_equal(size, 16u << 20);
    assert_int_equal(cxr_parse_size("1G", &size), CXR_OK);
    assert_int_equal(size, 1u << 30);
    assert_int_equal(cxr_parse_size("12", &size), CXR_OK);
    assert_int_equal(size, 12);
    assert_int_equal(cxr_parse_size("1MB", &size), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_parse_size("", &size), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_parse_duration("30d", &number), CXR_OK);
    assert_int_equal(number, 30 * 86400);
    assert_int_equal(cxr_parse_duration("15m", &number), CXR_OK);
    assert_int_equal(number, 900);
    assert_int_equal(cxr_parse_duration("2h", &number), CXR_OK);
    assert_int_equal(number, 7200);
    assert_int_equal(cxr_parse_duration("45", &number), CXR_OK);
    assert_int_equal(number, 45);
    assert_int_equal(cxr_parse_duration("3w", &number), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_parse_duration("d", &number), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_parse_bool("yes", &flag), CXR_OK);
    assert_int_equal(flag, 1);
    assert_int_equal(cxr_parse_bool("off", &flag), CXR_OK);
    assert_int_equal(flag, 0);
    assert_int_equal(cxr_parse_bool("maybe", &flag), CXR_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(ini_entries_in_order),
            cmocka_unit_test(ini_errors),
            cmocka_unit_test(value_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
