/* Shared foundations of every cxrd module: status codes and error messages, input limits,
 * growable byte buffers with a maximum, and logging.
 *
 * Ownership rule for the whole code base: an output pointer is written only on success; on
 * failure the callee frees what it allocated and the inputs stay the caller's. */
#ifndef CXR_UTIL_H
#define CXR_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define CXR_PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))

/* Append-only: values are stored in logs and tests, never renumber. */
enum cxr_status {
    CXR_OK = 0,
    CXR_ERR_NOMEM = 1,       /* an allocation failed */
    CXR_ERR_IO = 2,          /* reading or writing a file failed */
    CXR_ERR_INVALID_ARG = 3, /* the caller passed something unusable */
    CXR_ERR_LIMIT = 4,       /* input exceeds one of struct cxr_limits */
    CXR_ERR_MALFORMED = 5,   /* input is not well-formed (truncated, bad lengths, ...) */
    CXR_ERR_UNSUPPORTED = 6, /* well-formed but not handled (transfer syntax, operator, ...) */
    CXR_ERR_NOT_FOUND = 7,   /* a file, element or key is absent */
    CXR_ERR_INTERNAL = 8,    /* a bug or a third-party library failure */
};

/* Human-readable error. The first error set wins, so the root cause survives the unwinding
 * of callers that add their own context. Always optional: functions accept err == NULL. */
struct cxr_err {
    enum cxr_status status;
    char message[512];
};

#define CXR_ERR_INIT                                                                               \
    {                                                                                              \
        CXR_OK,                                                                                    \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* Records status and message in err unless err is NULL or already holds an error.
 * Returns status, so callers can write `return cxr_err_set(err, CXR_ERR_IO, "...")`. */
enum cxr_status cxr_err_set(struct cxr_err *err, enum cxr_status status, const char *fmt, ...)
        CXR_PRINTF(3, 4);

/* Short constant name of a status ("CXR_ERR_MALFORMED"); never NULL. */
const char *cxr_status_name(enum cxr_status status);

/* Every limit applied to untrusted input, in one place. cxr_limits_default() gives the values
 * the server uses unless its configuration overrides them. */
struct cxr_limits {
    size_t max_file_bytes;      /* a DICOM or ONNX file read into memory */
    size_t max_image_pixels;    /* rows * columns of one frame */
    size_t max_decoded_bytes;   /* decoded pixel data of one frame */
    uint32_t max_nesting_depth; /* DICOM sequences within sequences */
    uint32_t max_elements;      /* DICOM data elements in one file, all levels */
    size_t max_body_bytes;      /* HTTP request body */
    size_t max_header_bytes;    /* HTTP request headers, all together */
};

struct cxr_limits cxr_limits_default(void);

/* A growable byte buffer that refuses to grow past max (0 means SIZE_MAX). Not thread safe.
 * Zero-initialise or use CXR_BUF_INIT(max); release with cxr_buf_release. */
struct cxr_buf {
    unsigned char *data;
    size_t len;
    size_t cap;
    size_t max;
};

#define CXR_BUF_INIT(max_bytes)                                                                    \
    {                                                                                              \
        NULL, 0, 0, (max_bytes)                                                                    \
    }

/* Makes room for `extra` more bytes. CXR_ERR_LIMIT past max, CXR_ERR_NOMEM if out of memory;
 * on failure the buffer is unchanged. */
enum cxr_status cxr_buf_reserve(struct cxr_buf *buf, size_t extra);
enum cxr_status cxr_buf_append(struct cxr_buf *buf, const void *bytes, size_t count);
enum cxr_status cxr_buf_printf(struct cxr_buf *buf, const char *fmt, ...) CXR_PRINTF(2, 3);
/* Frees the storage and resets len and cap; keeps max. NULL is a no-op. */
void cxr_buf_release(struct cxr_buf *buf);

enum cxr_log_level {
    CXR_LOG_DEBUG = 0,
    CXR_LOG_INFO = 1,
    CXR_LOG_WARN = 2,
    CXR_LOG_ERROR = 3,
};

/* Messages below the level are dropped. Thread safe; set the level before starting threads. */
void cxr_log_set_level(enum cxr_log_level level);
/* Parses "debug", "info", "warn" or "error"; returns CXR_ERR_INVALID_ARG otherwise. */
enum cxr_status cxr_log_level_parse(const char *name, enum cxr_log_level *level);
/* One line to stderr: UTC time, level, message. Thread safe (one write per line). */
void cxr_log(enum cxr_log_level level, const char *fmt, ...) CXR_PRINTF(2, 3);

#endif
