/* Line-oriented logging to stderr, as text or as one JSON object a line (for log shippers).
 * Each line is formatted first and written with one call, so lines from concurrent request
 * threads never interleave. Level and format are atomics: SIGHUP may change them while request
 * threads log. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static atomic_int min_level = CXR_LOG_INFO;
static atomic_int log_format = CXR_LOG_TEXT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cxr_log_set_level(enum cxr_log_level level)
{
    atomic_store(&min_level, (int)level);
}

void cxr_log_set_format(enum cxr_log_format format)
{
    atomic_store(&log_format, (int)format);
}

enum cxr_status cxr_log_format_parse(const char *name, enum cxr_log_format *format)
{
    if (strcmp(name, "text") == 0)
        *format = CXR_LOG_TEXT;
    else if (strcmp(name, "json") == 0)
        *format = CXR_LOG_JSON;
    else
        return CXR_ERR_INVALID_ARG;
    return CXR_OK;
}

enum cxr_status cxr_log_level_parse(const char *name, enum cxr_log_level *level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (enum cxr_log_level)i;
            return CXR_OK;
        }
    }
    return CXR_ERR_INVALID_ARG;
}

/* Appends text to line (room: size bytes, of which one stays free) and returns the new length.
 * Whatever text holds, the result is one line of UTF-8: a file name, a DICOM value or a client's
 * bytes quoted in a message must not forge a log line (a newline) or break a log shipper's JSON
 * (bytes that are not UTF-8, a message cut inside a character). So control characters are
 * escaped (\u000a), bytes that are not UTF-8 become '?', and text that does not fit is cut
 * between characters. quote: also escape quotes and backslashes (a JSON string's body). */
static size_t append_clean(char *line, size_t used, size_t size, const char *text, bool quote)
{
    const unsigned char *c = (const unsigned char *)text;
    size_t left = strlen(text);
    while (left > 0) {
        size_t length = cxr_utf8_sequence(c, left);
        char escaped[8];
        const char *bytes = (const char *)c;
        size_t count = length;
        if (length == 0) {
            bytes = "?";
            count = length = 1;
        } else if (*c < 0x20 || *c == 0x7F) {
            snprintf(escaped, sizeof escaped, "\\u%04x", *c);
            bytes = escaped;
            count = 6;
        } else if (quote && (*c == '"' || *c == '\\')) {
            escaped[0] = '\\';
            escaped[1] = (char)*c;
            bytes = escaped;
            count = 2;
        }
        if (used + count >= size)
            break;
        memcpy(line + used, bytes, count);
        used += count;
        c += length;
        left -= length;
    }
    return used;
}

/* Appends a value to a text line: bare when it has no space, quote or equals sign, otherwise
 * double-quoted with quotes and backslashes escaped, so that key=value pairs parse back. */
static size_t append_text_value(char *line, size_t used, size_t size, const char *text)
{
    bool plain = text[0] != '\0' && strpbrk(text, " \t\"=\\") == NULL;
    if (plain)
        return append_clean(line, used, size, text, false);
    if (used + 2 < size)
        line[used++] = '"';
    used = append_clean(line, used, size - 1, text, true);
    if (used + 1 < size)
        line[used++] = '"';
    return used;
}

static size_t line_start(char *line, size_t size, enum cxr_log_level level, bool json)
{
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    char time_text[40];
    size_t used = strftime(time_text, sizeof time_text, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(time_text + used, sizeof time_text - used, ".%03ldZ", now.tv_nsec / 1000000);
    int length = json ? snprintf(line, size, "{\"time\":\"%s\",\"level\":\"%s\"", time_text,
                                 level_names[level])
                      : snprintf(line, size, "%s %-5s ", time_text, level_names[level]);
    return length > 0 ? (size_t)length : 0;
}

static void line_write(char *line, size_t used, size_t size)
{
    if (used > size - 2)
        used = size - 2; /* truncated message: still one line */
    line[used++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, used);
    (void)ignored;
}

void cxr_log(enum cxr_log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load(&min_level) || level > CXR_LOG_ERROR)
        return;
    bool json = atomic_load(&log_format) == CXR_LOG_JSON;
    char message[2048];
    va_list args;
    va_start(args, fmt);
    int length = vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    if (length < 0)
        return;
    char line[4096];
    size_t used = line_start(line, sizeof line, level, json);
    if (json) {
        used += (size_t)snprintf(line + used, sizeof line - used, ",\"message\":\"");
        used = append_clean(line, used, sizeof line - 3, message, true);
        used += (size_t)snprintf(line + used, sizeof line - used, "\"}");
    } else {
        used = append_clean(line, used, sizeof line - 1, message, false);
    }
    line_write(line, used, sizeof line);
}

void cxr_log_fields(enum cxr_log_level level, const char *event, const struct cxr_log_field *fields,
                    size_t count)
{
    if ((int)level < atomic_load(&min_level) || level > CXR_LOG_ERROR)
        return;
    bool json = atomic_load(&log_format) == CXR_LOG_JSON;
    char line[4096];
    size_t size = sizeof line - 4; /* room for the closing brace and newline */
    size_t used = line_start(line, size, level, json);
    if (json) {
        used += (size_t)snprintf(line + used, size - used, ",\"event\":\"%s\"", event);
    } else {
        used += (size_t)snprintf(line + used, size - used, "%s", event);
    }
    for (size_t i = 0; i < count && used < size; i++) {
        const struct cxr_log_field *field = &fields[i];
        if (field->text == NULL && !field->is_number)
            continue;
        /* A key or number that does not fit whole is left out with the fields after it (a
         * cut one would leave a NUL from snprintf in the line, or break the JSON); 3 bytes
         * stay for a value's quotes. */
        char key_text[80];
        int key_length =
                snprintf(key_text, sizeof key_text, json ? ",\"%s\":" : " %s=", field->key);
        char number_text[40] = "";
        int number_length =
                field->is_number ? snprintf(number_text, sizeof number_text, "%.6g", field->number)
                                 : 0;
        if (key_length < 0 || (size_t)key_length >= sizeof key_text || number_length < 0 ||
            used + (size_t)key_length + (size_t)number_length + 3 >= size)
            break;
        memcpy(line + used, key_text, (size_t)key_length);
        used += (size_t)key_length;
        if (field->is_number) {
            memcpy(line + used, number_text, (size_t)number_length);
            used += (size_t)number_length;
        } else if (json) {
            line[used++] = '"';
            used = append_clean(line, used, size - 1, field->text, true);
            line[used++] = '"';
        } else {
            used = append_text_value(line, used, size, field->text);
        }
    }
    if (used > size)
        used = size;
    if (json)
        line[used++] = '}';
    line_write(line, used, sizeof line);
}
