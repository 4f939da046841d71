/* Fuzz target: the intake's request-head parsing (http_head.c), which reads the peeked bytes of
 * every connection before libmicrohttpd does. Any input gives an answer, never a crash or a read
 * past the bytes given; searching for the head's end in two steps finds what one search finds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_intake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that any read past the end is caught by the sanitizer. */
    char *head = malloc(size ? size : 1);
    if (head == NULL)
        return 0;
    memcpy(head, data, size);
    size_t end = cxr_http_intake_head_end(head, size, 0);
    size_t half = size / 2;
    size_t stepped = cxr_http_intake_head_end(head, half, 0);
    if (stepped == 0)
        stepped = cxr_http_intake_head_end(head, size, half);
    if (stepped != end || end > size)
        __builtin_trap();
    size_t length = end ? end : size;
    uint64_t content_length = 0;
    (void)cxr_http_intake_content_length(head, length, 65536, &content_length);
    char version[16];
    if (cxr_http_intake_head_form(head, length, version, sizeof version) == CXR_HEAD_VERSION &&
        strlen(version) != 8)
        __builtin_trap(); /* "HTTP/x.y" */
    if (cxr_http_intake_field_count(head, length) > length + 1)
        __builtin_trap(); /* each field takes at least one byte, the first query one none */
    char method[16], url[64];
    cxr_http_intake_request_line(head, length, method, sizeof method, url, sizeof url);
    free(head);
    return 0;
}
