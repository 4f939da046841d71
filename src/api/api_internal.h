/* What api/ files share and nothing else needs. */
#ifndef CXR_API_INTERNAL_H
#define CXR_API_INTERNAL_H

#include <stdatomic.h>

#include <jansson.h>
#include <pthread.h>

#include "api/api.h"
#include "model/model.h"
#include "nn/nn.h"

struct cxr_api {
    const struct cxr_config *config;
    struct cxr_nn_runtime *runtime;
    struct cxr_model *model;
    struct cxr_audit *audit;
    char *input_root_real;
    char *output_root_real;
    char thresholds_used[256]; /* cxr_api_thresholds_used */
    /* Held for reading by every job from prediction to audit row, for writing by
     * cxr_api_thresholds_reload: a result never mixes two sets of thresholds. */
    pthread_rwlock_t thresholds_lock;
    double model_thresholds[CXR_FINDING_COUNT]; /* the model's own, before [thresholds] */
    atomic_uint jobs_running; /* cxr_api_job_run calls in progress (api_pipeline.c) */
};

/* snprintf for messages that may be cut at the buffer's end on purpose. */
void cxr_api_format(char *out, size_t size, const char *fmt, ...) CXR_PRINTF(3, 4);

/* Writes an audit row if the audit log is open; failures go to the server log only. */
void cxr_api_audit_record(struct cxr_api *api, const struct cxr_audit_record *record);

/* Sets result to an error; cause (optional) goes to the log only. */
void cxr_api_result_fail(struct cxr_api_result *result, int status, const char *message,
                         const char *cause);

/* The message text of a JSON value for a "...: <value>" message: strings as they are, other
 * values as compact JSON. Always NUL-terminated, truncated to size. */
void cxr_api_value_text(const json_t *value, char *out, size_t size);

/* Checks a request's output_folder_path (syntax, root, a component that is not a folder). On
 * success *resolved is malloc'ed and shown holds the folder as the client wrote it, without
 * trailing slashes; on failure result holds the v1 error. */
bool cxr_api_output_folder_check(struct cxr_api *api, const json_t *output, char **resolved,
                                 char *shown, size_t shown_size, struct cxr_api_result *result);

/* A request field counts as missing when absent, null or the empty string. */
bool cxr_api_field_missing(const json_t *value);

/* Whether a file name ends in ".dcm", in any case. */
bool cxr_api_has_dcm_extension(const char *name);

/* A validated POST /bulk_inference body (api_bulk.c), sync or async: the resolved folders and
 * the sorted .dcm files under the input folder. */
struct cxr_api_bulk_request {
    char *input_folder;  /* resolved, malloc'ed */
    char *output_folder; /* resolved, malloc'ed */
    char output_shown[4096];
    struct cxr_api_file_list files;
};
/* Checks the body (the v1 rules; "async", when present, must be a boolean or null) and lists
 * the files. False with response filled on any error. */
bool cxr_api_bulk_request_check(struct cxr_api *api, json_t *body,
                                struct cxr_api_bulk_request *request,
                                struct cxr_api_response *response);
void cxr_api_bulk_request_release(struct cxr_api_bulk_request *request);

#endif
