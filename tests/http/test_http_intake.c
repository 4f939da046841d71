/* The intake's head parsing (http_head.c): where a head ends (CRLF or bare LF, searched
 * incrementally as bytes trickle in), its Content-Length (case, spaces, overflow past 2^64,
 * duplicates), whether it is well formed, and its request line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_intake.h"

static void head_end(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t end; /* 0: incomplete */
    } cases[] = {
            {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27},
            {"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody", 27},
            {"GET / HTTP/1.1\nHost: x\n\n", 24},
            {"GET / HTTP/1.1\r\nHost: x\r\n", 0},
            {"GET / HTTP/1.1\r\nHost: x\r\n\r", 0},
            {"", 0},
            {"\r\n\r\n", 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t length = strlen(cases[i].text);
        assert_int_equal(cxr_http_intake_head_end(cases[i].text, length, 0), cases[i].end);
        /* Byte by byte, each search starting where the last one stopped. */
        size_t found = 0;
        for (size_t n = 1; n <= length && found == 0; n++)
            found = cxr_http_intake_head_end(cases[i].text, n, n - 1);
        if (cases[i].end)
            assert_int_equal(found, cases[i].end);
        else
            assert_int_equal(found, 0);
    }
}

static void content_length(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        enum cxr_http_content_length outcome;
        uint64_t value;
    } cases[] = {
            {"POST / HTTP/1.1\r\nHost: x\r\n\r\n", CXR_CONTENT_LENGTH_ABSENT, 0},
            {"POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", CXR_CONTENT_LENGTH_OK, 12},
            {"POST / HTTP/1.1\r\ncontent-LENGTH:\t 0\r\n\r\n", CXR_CONTENT_LENGTH_OK, 0},
            /* White space after the number: libmicrohttpd refuses it (with its own page). */
            {"POST / HTTP/1.1\r\nContent-Length: 0 \r\n\r\n", CXR_CONTENT_LENGTH_MALFORMED, 0},
            {"POST / HTTP/1.1\r\nContent-Length: 7\t\r\n\r\n", CXR_CONTENT_LENGTH_MALFORMED, 0},
            {"POST / HTTP/1.1\nContent-Length: 7\n\n", CXR_CONTENT_LENGTH_OK, 7},
            {"POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n", CXR_CONTENT_LENGTH_OK, 1000},
            {"POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", CXR_CONTENT_LENGTH_TOO_LARGE, 0},
            {"POST / HTTP/1.1\r\nContent-Length: 100000000000000000000\r\n\r\n",
             CXR_CONTENT_LENGTH_TOO_LARGE, 0},
            {"POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
             CXR_CONTENT_LENGTH_TOO_LARGE, 0},
            {"POST / HTTP/1.1\r\nContent-Length: 1e20\r\n\r\n", CXR_CONTENT_LENGTH_MALFORMED, 0},
            {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", CXR_CONTENT_LENGTH_MALFORMED, 0},
            {"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", CXR_CONTENT_LENGTH_MALFORMED, 0},
            {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
             CXR_CONTENT_LENGTH_MALFORMED, 0},
            {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
             CXR_CONTENT_LENGTH_OK, 5},
            /* Only header lines count: not the request line, not a longer header name. */
            {"POST /Content-Length:9 HTTP/1.1\r\nX-Content-Length: 9999\r\n\r\n",
             CXR_CONTENT_LENGTH_ABSENT, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t value = 777;
        enum cxr_http_content_length outcome =
                cxr_http_intake_content_length(cases[i].head, strlen(cases[i].head), 1000, &value);
        if (outcome != cases[i].outcome)
            fail_msg("case %zu: outcome %d, expected %d", i, outcome, cases[i].outcome);
        assert_int_equal(value, cases[i].outcome == CXR_CONTENT_LENGTH_OK ? cases[i].value : 777);
    }
}

static void head_form(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        enum cxr_http_head_form form;
    } cases[] = {
            {"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n", CXR_HEAD_OK},
            {"POST /single_inference HTTP/1.0\n\n", CXR_HEAD_OK},
            {"GET http://h/ping?a=b HTTP/1.1\r\nX-Empty:\r\nX-A: 1\r\n 2\r\n\r\n", CXR_HEAD_OK},
            {"GET /ping\r\n\r\n", CXR_HEAD_BAD_REQUEST_LINE},
            {"HELLO\r\n\r\n", CXR_HEAD_BAD_REQUEST_LINE},
            {"GET  /ping HTTP/1.1\r\n\r\n", CXR_HEAD_BAD_REQUEST_LINE},
            {"GET /ping HTTP/1.1 x\r\n\r\n", CXR_HEAD_BAD_REQUEST_LINE},
            {"G(T /ping HTTP/1.1\r\n\r\n", CXR_HEAD_BAD_REQUEST_LINE},
            {"GET /ping http/1.1\r\n\r\n", CXR_HEAD_BAD_REQUEST_LINE},
            {"GET /ping HTTP/1.10\r\n\r\n", CXR_HEAD_BAD_REQUEST_LINE},
            {"GET /ping HTTP/2.0\r\n\r\n", CXR_HEAD_VERSION},
            {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", CXR_HEAD_VERSION},
            {"GET /ping HTTP/1.1\r\nno colon\r\n\r\n", CXR_HEAD_BAD_HEADER_LINE},
            {"GET /ping HTTP/1.1\r\nHost : x\r\n\r\n", CXR_HEAD_BAD_HEADER_LINE},
            {"GET /ping HTTP/1.1\r\n: x\r\n\r\n", CXR_HEAD_BAD_HEADER_LINE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char version[16] = "";
        size_t end = cxr_http_intake_head_end(cases[i].head, strlen(cases[i].head), 0);
        enum cxr_http_head_form form =
                cxr_http_intake_head_form(cases[i].head, end, version, sizeof version);
        if (form != cases[i].form)
            fail_msg("case %zu: form %d, expected %d", i, form, cases[i].form);
        if (form == CXR_HEAD_VERSION)
            assert_string_equal(version, "HTTP/2.0");
    }
    /* A NUL in the target or in a header line (continued lines too). */
    static const char nul_target[] = "GET /ping\0x HTTP/1.1\r\n\r\n";
    static const char nul_header[] = "GET /ping HTTP/1.1\r\nX-A: a\0b\r\n\r\n";
    static const char nul_folded[] = "GET /ping HTTP/1.1\r\nX-A: a\r\n b\0\r\n\r\n";
    char version[16] = "";
    assert_int_equal(
            cxr_http_intake_head_form(nul_target, sizeof nul_target - 1, version, sizeof version),
            CXR_HEAD_BAD_REQUEST_LINE);
    assert_int_equal(
            cxr_http_intake_head_form(nul_header, sizeof nul_header - 1, version, sizeof version),
            CXR_HEAD_BAD_HEADER_LINE);
    assert_int_equal(
            cxr_http_intake_head_form(nul_folded, sizeof nul_folded - 1, version, sizeof version),
            CXR_HEAD_BAD_HEADER_LINE);
}

static void field_count(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        size_t count;
    } cases[] = {
            {"GET /ping HTTP/1.1\r\n\r\n", 0},
            {"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n", 2}, /* a folded line */
            {"GET /results?a=1&b=2&&c HTTP/1.1\r\nHost: x\r\n\r\n", 5},
            {"GET /results? HTTP/1.1\n\n", 1},
            {"GET /ping HTTP/1.1\r\ncookie: a=1; b=2;c\r\n\r\n", 4},
            {"GET /ping HTTP/1.1\r\nX-Cookie: a;b;c\r\n\r\n", 1},
            {"GET /a&b&c HTTP/1.1\r\n\r\n", 0}, /* not a query */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t count = cxr_http_intake_field_count(cases[i].head, strlen(cases[i].head));
        if (count != cases[i].count)
            fail_msg("case %zu: %zu fields, expected %zu", i, count, cases[i].count);
    }
}

static void request_line(void **state)
{
    (void)state;
    char method[8], url[16];
    const char *head = "POST /single_inference HTTP/1.1\r\nHost: x\r\n\r\n";
    cxr_http_intake_request_line(head, strlen(head), method, sizeof method, url, sizeof url);
    assert_string_equal(method, "POST");
    assert_string_equal(url, "/single_inferen"); /* cut to the buffer */
    cxr_http_intake_request_line("GET /ping HTTP/1.1", 18, method, sizeof method, url, sizeof url);
    assert_string_equal(method, ""); /* the line has not ended */
    assert_string_equal(url, "");
    cxr_http_intake_request_line("GARBAGE\r\n", 9, method, sizeof method, url, sizeof url);
    assert_string_equal(method, "");
    cxr_http_intake_request_line("", 0, method, sizeof method, url, sizeof url);
    assert_string_equal(url, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(head_end),     cmocka_unit_test(content_length),
            cmocka_unit_test(head_form),    cmocka_unit_test(field_count),
            cmocka_unit_test(request_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
