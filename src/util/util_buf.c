/* Growable byte buffers with a hard maximum, so no input can make one grow without bound. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Room for extra more bytes: capacity doubled until it fits (amortised appends), or exactly
 * len + extra. */
static enum cxr_status grow(struct cxr_buf *buf, size_t extra, bool exact)
{
    size_t max = buf->max ? buf->max : SIZE_MAX;
    if (extra > max || buf->len > max - extra)
        return CXR_ERR_LIMIT;
    size_t needed = buf->len + extra;
    if (needed <= buf->cap)
        return CXR_OK;
    size_t cap = exact ? needed : buf->cap ? buf->cap : 256;
    while (cap < needed)
        cap = cap > max / 2 ? max : cap * 2;
    unsigned char *data = realloc(buf->data, cap);
    if (data == NULL)
        return CXR_ERR_NOMEM;
    buf->data = data;
    buf->cap = cap;
    return CXR_OK;
}

enum cxr_status cxr_buf_reserve(struct cxr_buf *buf, size_t extra)
{
    return grow(buf, extra, false);
}

enum cxr_status cxr_buf_reserve_exact(struct cxr_buf *buf, size_t extra)
{
    return grow(buf, extra, true);
}

enum cxr_status cxr_buf_append(struct cxr_buf *buf, const void *bytes, size_t count)
{
    enum cxr_status status = cxr_buf_reserve(buf, count);
    if (status != CXR_OK)
        return status;
    if (count)
        memcpy(buf->data + buf->len, bytes, count);
    buf->len += count;
    return CXR_OK;
}

enum cxr_status cxr_buf_printf(struct cxr_buf *buf, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int length = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (length < 0)
        return CXR_ERR_INVALID_ARG;
    /* Room for the terminating NUL that vsnprintf writes; it is not counted in len. */
    enum cxr_status status = cxr_buf_reserve(buf, (size_t)length + 1);
    if (status != CXR_OK)
        return status;
    va_start(args, fmt);
    vsnprintf((char *)buf->data + buf->len, (size_t)length + 1, fmt, args);
    va_end(args);
    buf->len += (size_t)length;
    return CXR_OK;
}

void cxr_buf_release(struct cxr_buf *buf)
{
    if (buf == NULL)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}
