/* Log lines stay one line of UTF-8 whatever they quote: a file name with a newline or bytes
 * that are not UTF-8 (a bulk folder's listing), a message cut inside a character (a request's
 * Message kept in 512 bytes), in both formats; JSON lines stay valid JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "util/util.h"

/* What one call of log_call writes to stderr. */
static char *captured(void (*log_call)(const char *text), const char *text)
{
    fflush(stderr);
    FILE *file = tmpfile();
    assert_non_null(file);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fileno(file), STDERR_FILENO), STDERR_FILENO);
    log_call(text);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    off_t size = lseek(fileno(file), 0, SEEK_END);
    assert_true(size >= 0);
    char *out = calloc(1, (size_t)size + 1);
    assert_non_null(out);
    assert_int_equal(pread(fileno(file), out, (size_t)size, 0), (ssize_t)size);
    fclose(file);
    return out;
}

static void log_message(const char *text)
{
    cxr_log(CXR_LOG_WARN, "bulk: skipped %s: not a DICOM file", text);
}

static void log_field(const char *text)
{
    struct cxr_log_field fields[] = {{.key = "sub", .text = text},
                                     {.key = "message", .text = text}};
    cxr_log_fields(CXR_LOG_INFO, "request", fields, 2);
}

/* RFC 3629 UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static bool valid_utf8(const char *text)
{
    const unsigned char *c = (const unsigned char *)text;
    while (*c) {
        size_t length = *c < 0x80                  ? 1
                        : *c >= 0xC2 && *c <= 0xDF ? 2
                        : *c >= 0xE0 && *c <= 0xEF ? 3
                        : *c >= 0xF0 && *c <= 0xF4 ? 4
                                                   : 0;
        if (length == 0)
            return false;
        unsigned point = length == 1 ? *c : *c & (0x7F >> length);
        for (size_t i = 1; i < length; i++) {
            if ((c[i] & 0xC0) != 0x80)
                return false;
            point = point << 6 | (c[i] & 0x3F);
        }
        if ((length == 3 && point < 0x800) || (length == 4 && point < 0x10000) ||
            point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF))
            return false;
        c += length;
    }
    return true;
}

/* One line: a single newline, at the end; no other control character; valid UTF-8; in the JSON
 * format, one JSON object. */
static void assert_one_clean_line(const char *line, bool json)
{
    size_t length = strlen(line);
    assert_true(length > 1);
    assert_int_equal(line[length - 1], '\n');
    for (size_t i = 0; i + 1 < length; i++) {
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7F)
            fail_msg("control byte 0x%02x at %zu in: %s", (unsigned char)line[i], i, line);
    }
    if (!valid_utf8(line))
        fail_msg("not UTF-8: %s", line);
    if (json) {
        json_error_t error;
        json_t *object = json_loads(line, 0, &error);
        if (!json_is_object(object))
            fail_msg("not a JSON object (%s): %s", error.text, line);
        json_decref(object);
    }
}

static const char *const hostile[] = {
        "/in/new\nline.dcm",                          /* a forged second line */
        "/in/x\r2026-12-06T07:36:50.150Z info  fake", /* a carriage return */
        "/in/bad\xff\xfename.dcm",                    /* not UTF-8 */
        "/in/cut\xc3",                                /* a character cut short */
        "/in/over\xc0\xaf.dcm",                       /* an overlong '/' */
        "/in/surrogate\xed\xa0\x80.dcm",              /* an encoded U+D800 */
        "plain\x1b[31mred",                           /* a terminal escape */
        "del\x7f",
};

/* text through both loggers (a message and a field) in the current format: one clean line each. */
static void assert_logged_clean(const char *text, bool json)
{
    char *line = captured(log_message, text);
    assert_one_clean_line(line, json);
    free(line);
    line = captured(log_field, text);
    assert_one_clean_line(line, json);
    free(line);
}

static void text_lines_are_clean(void **state)
{
    (void)state;
    cxr_log_set_format(CXR_LOG_TEXT);
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++)
        assert_logged_clean(hostile[i], false);
    /* Text that needs nothing is written as it was. */
    char *line = captured(log_message, "/in/Ελένη ok.dcm");
    assert_non_null(strstr(line, "bulk: skipped /in/Ελένη ok.dcm: not a DICOM file\n"));
    free(line);
    line = captured(log_field, "Ελένη");
    assert_non_null(strstr(line, "request sub=Ελένη message=Ελένη\n"));
    free(line);
}

static void json_lines_are_clean(void **state)
{
    (void)state;
    cxr_log_set_format(CXR_LOG_JSON);
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++)
        assert_logged_clean(hostile[i], true);
    char *line = captured(log_field, "a\"b\\c\nd");
    assert_non_null(strstr(line, "\"sub\":\"a\\\"b\\\\c\\u000ad\""));
    free(line);
    cxr_log_set_format(CXR_LOG_TEXT);
}

/* A line longer than the line buffer is cut at a character, never inside one. */
static void long_lines_are_cut_at_a_character(void **state)
{
    (void)state;
    char text[6001];
    for (size_t offset = 0; offset < 3; offset++) {
        memset(text, 'x', offset);
        for (size_t i = offset; i + 2 <= sizeof text - 1; i += 2)
            memcpy(text + i, "\xc3\xa9", 2); /* é */
        text[sizeof text - 1 - ((sizeof text - 1 - offset) % 2)] = '\0';
        for (int format = CXR_LOG_TEXT; format <= CXR_LOG_JSON; format++) {
            cxr_log_set_format((enum cxr_log_format)format);
            assert_logged_clean(text, format == CXR_LOG_JSON);
        }
    }
    cxr_log_set_format(CXR_LOG_TEXT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(text_lines_are_clean),
            cmocka_unit_test(json_lines_are_clean),
            cmocka_unit_test(long_lines_are_cut_at_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
