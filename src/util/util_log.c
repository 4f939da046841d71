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

/* Appends text to line (capacity size, one byte kept for the newline) as a JSON string body:
 * quotes, backslashes and control characters escaped. Returns the new length. */
static size_t append_json_string(char *line, size_t used, size_t size, const char *text)
{
    for (const unsigned char *c = (const unsigned char *)text; *c && used + 8 < size; c++) {
        if (*c == '"' || *c == '\\') {
            line[used++] = '\\';
            line[used++] = (char)*c;
        } else if (*c < 0x20) {
            used += (size_t)snprintf(line + used, size - used, "\\u%04x", *c);
        } else {
            line[used++] = (char)*c;
        }
    }
    return used;
}

/* Appends a value to a text line: bare when it has no space, quote or equals sign, otherwise
 * double-quoted with quotes and backslashes escaped, so that key=value pairs parse back. */
static size_t append_text_value(char *line, size_t used, size_t size, const char *text)
{
    bool plain = text[0] != '\0' && strpbrk(text, " \t\"=\\") == NULL;
    if (plain) {
        int length = snprintf(line + used, size - used, "%s", text);
        return used + (length > 0 ? (size_t)length : 0);
    }
    if (used + 2 < size)
        line[used++] = '"';
    used = append_json_string(line, used, size, text);
    if (used + 2 < size)
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
        used = append_json_string(line, used, sizeof line - 3, message);
        used += (size_t)snprintf(line + used, sizeof line - used, "\"}");
    } else {
        used += (size_t)snprintf(line + used, sizeof line - used, "%s", message);
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
        used += (size_t)snprintf(line + used, size - used, json ? ",\"%s\":" : " %s=", field->key);
        if (used >= size)
            break;
        if (field->is_number) {
            used += (size_t)snprintf(line + used, size - used, "%.6g", field->number);
        } else if (json) {
            line[used++] = '"';
            used = append_json_string(line, used, size - 1, field->text);
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
