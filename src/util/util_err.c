/* Status names and the first-error-wins error record. */
#include <errno.h>
#include <stdio.h>

#include "util.h"

enum cxr_status cxr_err_set(struct cxr_err *err, enum cxr_status status, const char *fmt, ...)
{
    if (err == NULL || err->status != CXR_OK || status == CXR_OK)
        return status;
    err->status = status;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, args);
    va_end(args);
    return status;
}

const char *cxr_status_name(enum cxr_status status)
{
    switch (status) {
    case CXR_OK:
        return "CXR_OK";
    case CXR_ERR_NOMEM:
        return "CXR_ERR_NOMEM";
    case CXR_ERR_IO:
        return "CXR_ERR_IO";
    case CXR_ERR_INVALID_ARG:
        return "CXR_ERR_INVALID_ARG";
    case CXR_ERR_LIMIT:
        return "CXR_ERR_LIMIT";
    case CXR_ERR_MALFORMED:
        return "CXR_ERR_MALFORMED";
    case CXR_ERR_UNSUPPORTED:
        return "CXR_ERR_UNSUPPORTED";
    case CXR_ERR_NOT_FOUND:
        return "CXR_ERR_NOT_FOUND";
    case CXR_ERR_INTERNAL:
        return "CXR_ERR_INTERNAL";
    case CXR_ERR_NO_SPACE:
        return "CXR_ERR_NO_SPACE";
    }
    return "CXR_ERR_UNKNOWN";
}

enum cxr_status cxr_status_of_errno(int error)
{
    return error == ENOSPC || error == EDQUOT || error == EROFS ? CXR_ERR_NO_SPACE : CXR_ERR_IO;
}

struct cxr_limits cxr_limits_default(void)
{
    return (struct cxr_limits){
            .max_file_bytes = (size_t)1 << 30,
            .max_image_pixels = (size_t)16384 * 16384,
            .max_decoded_bytes = (size_t)1 << 30,
            .max_nesting_depth = 16,
            .max_elements = 1u << 20,
            .max_body_bytes = 64 * 1024,
            .max_header_bytes = 16 * 1024,
    };
}
