/* Line-oriented logging to stderr. Each line is formatted first and written with one call,
 * so lines from concurrent request threads never interleave. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static enum cxr_log_level min_level = CXR_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cxr_log_set_level(enum cxr_log_level level)
{
    min_level = level;
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

void cxr_log(enum cxr_log_level level, const char *fmt, ...)
{
    if (level < min_level || level > CXR_LOG_ERROR)
        return;
    char line[2048];
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    size_t used = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &utc);
    used += (size_t)snprintf(line + used, sizeof(line) - used, ".%03ldZ %-5s ",
                             now.tv_nsec / 1000000, level_names[level]);
    va_list args;
    va_start(args, fmt);
    int length = vsnprintf(line + used, sizeof(line) - used - 1, fmt, args);
    va_end(args);
    if (length < 0)
        return;
    used += (size_t)length;
    if (used > sizeof(line) - 2)
        used = sizeof(line) - 2; /* truncated message: still one line */
    line[used++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, used);
    (void)ignored;
}
