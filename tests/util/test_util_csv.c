/* The CSV reader: RFC 4180 quoting, line endings, blank lines, a byte order mark, trimming, and
 * the malformed inputs it must refuse with the line. The writer's text fields read back through
 * the reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/util.h"

static struct cxr_csv *parse(const char *text)
{
    struct cxr_csv *csv = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_csv_parse(text, strlen(text), 100, 8, &csv, &err) != CXR_OK)
        fail_msg("'%s': %s", text, err.message);
    return csv;
}

static void records_and_fields(void **state)
{
    (void)state;
    struct cxr_csv *csv = parse("\xEF\xBB\xBFpath,label\r\n"
                                "a/b.dcm,1\r\n"
                                "\r\n"
                                "  \"with, comma\"  , 0\n"
                                "\"quote \"\"q\"\"\nand newline\",1\n"
                                "last,,x");
    assert_int_equal(cxr_csv_record_count(csv), 5);
    assert_string_equal(cxr_csv_field(csv, 0, 0), "path");
    assert_string_equal(cxr_csv_field(csv, 0, 1), "label");
    assert_string_equal(cxr_csv_field(csv, 1, 0), "a/b.dcm");
    assert_int_equal(cxr_csv_line(csv, 1), 2);
    assert_string_equal(cxr_csv_field(csv, 2, 0), "with, comma");
    assert_string_equal(cxr_csv_field(csv, 2, 1), "0");
    assert_int_equal(cxr_csv_line(csv, 2), 4);
    assert_string_equal(cxr_csv_field(csv, 3, 0), "quote \"q\"\nand newline");
    assert_int_equal(cxr_csv_line(csv, 4), 7);
    assert_int_equal(cxr_csv_field_count(csv, 4), 3);
    assert_string_equal(cxr_csv_field(csv, 4, 1), "");
    assert_string_equal(cxr_csv_field(csv, 4, 2), "x");
    assert_null(cxr_csv_field(csv, 4, 3));
    assert_null(cxr_csv_field(csv, 5, 0));
    assert_int_equal(cxr_csv_field_count(csv, 9), 0);
    cxr_csv_destroy(csv);
    cxr_csv_destroy(NULL);

    csv = parse("");
    assert_int_equal(cxr_csv_record_count(csv), 0);
    cxr_csv_destroy(csv);
    csv = parse(",,,\n");
    assert_int_equal(cxr_csv_field_count(csv, 0), 4);
    cxr_csv_destroy(csv);
}

/* ';' as spreadsheets in decimal-comma locales write it: commas are then ordinary text. */
static void semicolon_separated(void **state)
{
    (void)state;
    static const char text[] = "path;label\r\n\"a;b.dcm\";1,0\r\nc,d.dcm ; 0\r\n";
    struct cxr_csv *csv = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_csv_parse_separated(text, strlen(text), ';', 100, 8, &csv, &err), CXR_OK);
    assert_int_equal(cxr_csv_record_count(csv), 3);
    assert_string_equal(cxr_csv_field(csv, 1, 0), "a;b.dcm");
    assert_string_equal(cxr_csv_field(csv, 1, 1), "1,0");
    assert_string_equal(cxr_csv_field(csv, 2, 0), "c,d.dcm");
    assert_string_equal(cxr_csv_field(csv, 2, 1), "0");
    cxr_csv_destroy(csv);
}

static void malformed_inputs(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t size;
        enum cxr_status status;
        const char *needle;
    } bad[] = {
            {"a,b\n\"open,1\n", 0, CXR_ERR_MALFORMED, "line 2: a quoted field is not closed"},
            {"a,\"b\"c\n", 0, CXR_ERR_MALFORMED, "line 1: text after a closing quote"},
            {"a\0b\n", 4, CXR_ERR_MALFORMED, "NUL"},
            {"1,2,3,4,5,6,7,8,9\n", 0, CXR_ERR_LIMIT, "more than 8 fields"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cxr_csv *csv = NULL;
        struct cxr_err err = CXR_ERR_INIT;
        size_t size = bad[i].size ? bad[i].size : strlen(bad[i].text);
        assert_int_equal(cxr_csv_parse(bad[i].text, size, 100, 8, &csv, &err), bad[i].status);
        assert_null(csv);
        if (strstr(err.message, bad[i].needle) == NULL)
            fail_msg("case %zu gave '%s'", i, err.message);
    }
    char many[400] = "";
    for (int i = 0; i < 101; i++)
        strcat(many, "x\n");
    struct cxr_csv *csv = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_csv_parse(many, strlen(many), 100, 8, &csv, &err), CXR_ERR_LIMIT);
    assert_non_null(strstr(err.message, "more than 100 records"));
}

/* Every text field the writer appends reads back as itself through the reader (which trims
 * blanks around unquoted fields), except that one a spreadsheet would run as a formula gains a
 * leading apostrophe. */
static void written_fields_read_back(void **state)
{
    (void)state;
    static const struct {
        const char *text, *read_back;
    } cases[] = {
            {"plain/path.dcm", "plain/path.dcm"},
            {"with, comma", "with, comma"},
            {"quote \"q\"", "quote \"q\""},
            {"line\r\nbreak", "line\r\nbreak"},
            {" blank around\t", " blank around\t"},
            {"=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"},
            {"-A1", "'-A1"},
            {"+1", "'+1"},
            {"@SUM(A1)", "'@SUM(A1)"},
            {"\tindented", "'\tindented"},
            {"a=b-c", "a=b-c"},
            {"", ""},
    };
    size_t count = sizeof cases / sizeof cases[0];
    struct cxr_buf line = {0};
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(cxr_buf_append(&line, i ? "," : "", i ? 1 : 0), CXR_OK);
        assert_int_equal(cxr_csv_append_text(&line, cases[i].text), CXR_OK);
    }
    assert_int_equal(cxr_buf_append(&line, "\n", 1), CXR_OK);
    struct cxr_csv *csv = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_csv_parse((const char *)line.data, line.len, 10, 20, &csv, &err), CXR_OK);
    assert_int_equal(cxr_csv_record_count(csv), 1);
    assert_int_equal(cxr_csv_field_count(csv, 0), count);
    for (size_t i = 0; i < count; i++)
        assert_string_equal(cxr_csv_field(csv, 0, i), cases[i].read_back);
    assert_int_equal(cxr_csv_append_text(&line, NULL), CXR_OK);
    cxr_csv_destroy(csv);
    cxr_buf_release(&line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(records_and_fields),
            cmocka_unit_test(semicolon_separated),
            cmocka_unit_test(malformed_inputs),
            cmocka_unit_test(written_fields_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
