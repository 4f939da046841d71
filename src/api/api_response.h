/* What a request answers (api_response.c, api_errors.c): the {"Result","Data","Message"}
 * envelope, the v1 error table, inline PNGs and the stage timings. */
#ifndef CXR_API_RESPONSE_H
#define CXR_API_RESPONSE_H

#include "util/util.h"

/* Wall time of each pipeline stage of one request, seconds; 0 for stages not run. */
enum cxr_api_stage {
    CXR_STAGE_VALIDATE = 0,
    CXR_STAGE_READ,    /* DICOM parse */
    CXR_STAGE_RENDER,  /* decode + LUTs + 8-bit image */
    CXR_STAGE_INFER,   /* preprocessing + forward pass */
    CXR_STAGE_HEATMAP, /* overlay */
    CXR_STAGE_PNG,     /* PNG encoding */
    CXR_STAGE_PDF,
    CXR_STAGE_WRITE, /* atomic file writes */
    CXR_STAGE_COUNT
};
extern const char *const cxr_api_stage_names[CXR_STAGE_COUNT];

/* A finished request: HTTP status and the JSON body (the {"Result","Data","Message"}
 * envelope). body is malloc'ed; release with cxr_api_response_release. */
struct cxr_api_response {
    int status;
    char *body;
    double stage_seconds[CXR_STAGE_COUNT];
};
void cxr_api_response_release(struct cxr_api_response *response);

/* Builds an envelope response: result is "Success", "Warning" or "Failure"; data may be NULL
 * (JSON null; a non-NULL json_t is stolen). Returns CXR_ERR_NOMEM only. */
struct json_t;
enum cxr_status cxr_api_envelope(int status, const char *result, struct json_t *data,
                                 const char *message, struct cxr_api_response *response);

/* A JSON string of text (NULL: ""), each byte that is not part of valid UTF-8 replaced by '?'.
 * jansson refuses strings that are not UTF-8, and a file name, patient name or message read from
 * outside (a Latin-1 file name, a DICOM value cut inside a character) would otherwise be lost.
 * NULL only when out of memory. Thread-safe. */
struct json_t *cxr_api_json_string(const char *text);

/* ---- The v1 errors (api_errors.c): the one table of HTTP statuses and Message wordings ---- */
enum cxr_api_error {
    CXR_API_FIELD_REQUIRED,            /* detail: the field name */
    CXR_API_SAVE_TO_DISK_NOT_BOOLEAN,  /* detail: the value */
    CXR_API_OUTPUT_FOLDER_REQUIRED,    /* no detail */
    CXR_API_INVALID_PATH,              /* detail: "<field>: <path> (<reason>)" */
    CXR_API_INPUT_IMAGE_MISSING,       /* detail: the path */
    CXR_API_INPUT_FOLDER_MISSING,      /* detail: the path */
    CXR_API_NOT_DICOM_FILE,            /* detail: the path */
    CXR_API_DICOM_UNREADABLE,          /* detail: "<path> (<reason>)" */
    CXR_API_DICOM_UNRENDERABLE,        /* detail: "<path> (<reason>)" */
    CXR_API_NOT_CHEST_RADIOGRAPH,      /* detail: the gate's reason */
    CXR_API_PATIENT_ID_INVALID,        /* detail: "'<id>' in request body" or "... of <file>" */
    CXR_API_PATIENT_ID_EMPTY,          /* detail: why */
    CXR_API_NO_DICOM_FILES,            /* no detail */
    CXR_API_TOKEN_MISSING,             /* 401 */
    CXR_API_TOKEN_EXPIRED,             /* 401 */
    CXR_API_TOKEN_INVALID,             /* 401 */
    CXR_API_NOT_FOUND,                 /* 404 */
    CXR_API_METHOD_NOT_ALLOWED,        /* 405; detail: what to use */
    CXR_API_BODY_TOO_LARGE,            /* 413; detail: the limit */
    CXR_API_HEADERS_TOO_LARGE,         /* 431; detail: the limit */
    CXR_API_NOT_JSON_OBJECT,           /* 415; detail: the parser's reason */
    CXR_API_OUTPUT_FOLDER_UNCREATABLE, /* 500; detail: "<path> (<reason>)" */
    CXR_API_SINGLE_INTERNAL,           /* 500; the cause goes to the log only */
    CXR_API_BULK_INTERNAL,             /* 500 */
    CXR_API_METRICS_UNAVAILABLE,       /* 500 */
    CXR_API_BUSY,                      /* 503; detail: why */
    CXR_API_SHUTTING_DOWN,             /* 503; detail: what was not done */
    CXR_API_DICOM_OUTPUTS_INVALID,     /* 400; detail: the value */
    CXR_API_DICOM_OUTPUTS_SOURCE,      /* 400; detail: "<path> (<reason>)" */
    CXR_API_BAD_REQUEST,               /* 400; detail: what is wrong with the HTTP request */
    CXR_API_REQUEST_TIMEOUT,           /* 408; detail: the deadline */
    CXR_API_AUDIT_UNAVAILABLE,         /* 503; detail: what was withheld */
    CXR_API_ASYNC_NOT_BOOLEAN,         /* 400; detail: the value */
    CXR_API_JOBS_UNAVAILABLE,          /* 400: no database for jobs and results */
    CXR_API_JOB_NOT_FOUND,             /* 404; detail: the job ID */
    CXR_API_JOB_FINISHED,              /* 409; detail: "<id> is <state>" */
    CXR_API_RESULT_NOT_FOUND,          /* 404; detail: the result ID */
    CXR_API_RESULT_NO_FILE,            /* 404; detail: why */
    CXR_API_RESULT_REPLACED,           /* 410; detail: the patient folder */
    CXR_API_INVALID_QUERY,             /* 400; detail: "<parameter>: <why>" */
    CXR_API_JOBS_INTERNAL,             /* 500 */
    CXR_API_HTTP_VERSION,              /* 505; detail: the version the request line names */
    CXR_API_ERROR_COUNT
};

/* The HTTP status of an error. */
int cxr_api_error_status(enum cxr_api_error error);
/* The v1 Message of an error with its variable part (detail may be NULL), truncated to size. */
void cxr_api_error_message(enum cxr_api_error error, const char *detail, char *out, size_t size);
/* A Failure envelope for an error. Returns CXR_ERR_NOMEM only. */
enum cxr_status cxr_api_response_error(enum cxr_api_error error, const char *detail,
                                       struct cxr_api_response *response);

/* PNGs sent inline (save_to_disk false). Data carries a placeholder string for each image
 * present (CXR_API_INLINE_SOURCE, CXR_API_INLINE_HEATMAP); the envelope writes the base64 text
 * straight into the body in its place, because a JSON library would copy and escape-scan
 * megabytes of base64 that never need escaping. */
#define CXR_API_INLINE_SOURCE  "cxr-inline-png:source_image"
#define CXR_API_INLINE_HEATMAP "cxr-inline-png:heatmap"
struct cxr_api_inline_images {
    struct cxr_buf source_png;  /* empty when not inline */
    struct cxr_buf heatmap_png; /* empty when not inline or Normal */
};

/* cxr_api_envelope with data's image placeholders replaced by images' base64 text. */
enum cxr_status cxr_api_envelope_inline(int status, const char *result, struct json_t *data,
                                        const char *message,
                                        const struct cxr_api_inline_images *images,
                                        struct cxr_api_response *response);

#endif
