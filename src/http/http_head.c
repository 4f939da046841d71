/* Request heads as the intake sees them before libmicrohttpd does: where a head ends, its
 * Content-Length, its request line. Pure functions over the peeked bytes, unit-tested in
 * tests/http/test_http_intake.c. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/http_intake.h"

size_t cxr_http_intake_head_end(const char *buf, size_t length, size_t from)
{
    for (size_t i = from > 2 ? from - 2 : 0; i < length; i++) {
        if (buf[i] != '\n')
            continue;
        if (i >= 1 && buf[i - 1] == '\n')
            return i + 1;
        if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')
            return i + 1;
    }
    return 0;
}

enum cxr_http_content_length cxr_http_intake_content_length(const char *head, size_t length,
                                                            uint64_t limit, uint64_t *value)
{
    static const char name[] = "content-length:";
    enum cxr_http_content_length outcome = CXR_CONTENT_LENGTH_ABSENT;
    uint64_t found = 0;
    const char *end = head + length;
    const char *line = memchr(head, '\n', length); /* skip the request line */
    while (line && line < end) {
        line++;
        const char *line_end = memchr(line, '\n', (size_t)(end - line));
        if (line_end == NULL)
            line_end = end;
        if ((size_t)(line_end - line) >= sizeof name - 1 &&
            strncasecmp(line, name, sizeof name - 1) == 0) {
            const char *p = line + sizeof name - 1;
            const char *q = line_end;
            while (p < q && (*p == ' ' || *p == '\t'))
                p++;
            while (q > p && (q[-1] == '\r' || q[-1] == ' ' || q[-1] == '\t'))
                q--;
            if (p == q)
                return CXR_CONTENT_LENGTH_MALFORMED;
            uint64_t number = 0;
            bool huge = false;
            for (const char *c = p; c < q; c++) {
                if (*c < '0' || *c > '9')
                    return CXR_CONTENT_LENGTH_MALFORMED;
                unsigned digit = (unsigned)(*c - '0');
                if (number > (UINT64_MAX - digit) / 10)
                    huge = true;
                else
                    number = number * 10 + digit;
            }
            if (huge || number > limit)
                return CXR_CONTENT_LENGTH_TOO_LARGE;
            if (outcome == CXR_CONTENT_LENGTH_OK && number != found)
                return CXR_CONTENT_LENGTH_MALFORMED;
            outcome = CXR_CONTENT_LENGTH_OK;
            found = number;
        }
        line = line_end < end ? line_end : NULL;
    }
    if (outcome == CXR_CONTENT_LENGTH_OK)
        *value = found;
    return outcome;
}

void cxr_http_intake_request_line(const char *head, size_t length, char *method, size_t method_size,
                                  char *url, size_t url_size)
{
    method[0] = url[0] = '\0';
    const char *end = memchr(head, '\n', length);
    if (end == NULL)
        return;
    const char *space = memchr(head, ' ', (size_t)(end - head));
    if (space == NULL)
        return;
    const char *url_end = memchr(space + 1, ' ', (size_t)(end - space - 1));
    if (url_end == NULL)
        return;
    snprintf(method, method_size, "%.*s", (int)(space - head), head);
    snprintf(url, url_size, "%.*s", (int)(url_end - space - 1), space + 1);
}
