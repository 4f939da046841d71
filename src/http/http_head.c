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
            /* Only the CR: libmicrohttpd skips white space before the number but refuses any
             * after it, with an HTML page of its own, so such a value is malformed here too. */
            if (q > p && q[-1] == '\r')
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

/* RFC 9110 5.6.2: the characters of a method or a header name. */
static bool is_token(const char *start, const char *end)
{
    if (start == end)
        return false;
    for (const char *c = start; c < end; c++) {
        bool letter_or_digit =
                (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9');
        /* (strchr finds the terminator for '\0', so NUL is excluded first) */
        if (!letter_or_digit && (*c == '\0' || strchr("!#$%&'*+-.^_`|~", *c) == NULL))
            return false;
    }
    return true;
}

/* The end of the line starting at line (before its CR LF or LF) and the start of the next. */
static const char *line_end(const char *line, const char *end, const char **next)
{
    const char *newline = memchr(line, '\n', (size_t)(end - line));
    if (newline == NULL) {
        *next = end;
        return end;
    }
    *next = newline + 1;
    return newline > line && newline[-1] == '\r' ? newline - 1 : newline;
}

enum cxr_http_head_form cxr_http_intake_head_form(const char *head, size_t length, char *version,
                                                  size_t version_size)
{
    const char *end = head + length;
    const char *next;
    const char *request_end = line_end(head, end, &next);
    const char *space = memchr(head, ' ', (size_t)(request_end - head));
    const char *target_end =
            space ? memchr(space + 1, ' ', (size_t)(request_end - space - 1)) : NULL;
    /* A NUL ends libmicrohttpd's copy of a line: "/ping\0x" would be read as "/ping", and a
     * header value cut there. RFC 9110 5.5 lets a recipient refuse it; it is. */
    if (space == NULL || target_end == NULL || target_end == space + 1 || !is_token(head, space) ||
        memchr(target_end + 1, ' ', (size_t)(request_end - target_end - 1)) ||
        memchr(head, '\0', (size_t)(request_end - head)))
        return CXR_HEAD_BAD_REQUEST_LINE;
    const char *protocol = target_end + 1;
    size_t protocol_length = (size_t)(request_end - protocol);
    if (protocol_length != 8 || strncmp(protocol, "HTTP/", 5) != 0 || protocol[6] != '.' ||
        protocol[5] < '0' || protocol[5] > '9' || protocol[7] < '0' || protocol[7] > '9')
        return CXR_HEAD_BAD_REQUEST_LINE;
    if (strncmp(protocol, "HTTP/1.0", 8) != 0 && strncmp(protocol, "HTTP/1.1", 8) != 0) {
        snprintf(version, version_size, "%.8s", protocol);
        return CXR_HEAD_VERSION;
    }
    for (const char *line = next; line < end; line = next) {
        const char *stop = line_end(line, end, &next);
        if (stop == line)
            break; /* the blank line that ends the head */
        if (memchr(line, '\0', (size_t)(stop - line)))
            return CXR_HEAD_BAD_HEADER_LINE;
        if (*line == ' ' || *line == '\t')
            continue; /* continues the line before */
        const char *colon = memchr(line, ':', (size_t)(stop - line));
        if (colon == NULL || !is_token(line, colon))
            return CXR_HEAD_BAD_HEADER_LINE;
    }
    return CXR_HEAD_OK;
}

static size_t count_of(const char *start, const char *end, char c)
{
    size_t count = 0;
    for (const char *p = start; p < end; p++)
        count += *p == c;
    return count;
}

size_t cxr_http_intake_field_count(const char *head, size_t length)
{
    const char *end = head + length;
    const char *next;
    const char *request_end = line_end(head, end, &next);
    size_t count = 0;
    /* The target: "METHOD target HTTP/x.y"; its query starts at the first '?'. */
    const char *target = memchr(head, ' ', (size_t)(request_end - head));
    const char *target_end =
            target ? memchr(target + 1, ' ', (size_t)(request_end - target - 1)) : NULL;
    const char *query =
            target_end ? memchr(target + 1, '?', (size_t)(target_end - target - 1)) : NULL;
    if (query)
        count += count_of(query + 1, target_end, '&') + 1;
    static const char cookie[] = "cookie:";
    for (const char *line = next; line < end; line = next) {
        const char *stop = line_end(line, end, &next);
        if (stop == line)
            break; /* the blank line that ends the head */
        if (*line == ' ' || *line == '\t')
            continue; /* continues the line before */
        count++;
        if ((size_t)(stop - line) >= sizeof cookie - 1 &&
            strncasecmp(line, cookie, sizeof cookie - 1) == 0)
            count += count_of(line + sizeof cookie - 1, stop, ';') + 1;
    }
    return count;
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
