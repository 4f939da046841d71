/* What api/ files share and nothing else needs. */
#ifndef CXR_API_INTERNAL_H
#define CXR_API_INTERNAL_H

#include <stdatomic.h>

#include <jansson.h>
#include <pthread.h>

#include "api/api.h"
#include "dicom/dicom.h"
#include "image/image.h"
#include "model/model.h"
#include "nn/nn.h"

struct cxr_api {
    const struct cxr_config *config;
    struct cxr_nn_runtime *runtime;
    struct cxr_model *model;
    struct cxr_audit *audit;
    /* Held open from start: every request file is opened beneath these (util.h). */
    struct cxr_path_root input_root;
    struct cxr_path_root output_root;
    char thresholds_used[256]; /* cxr_api_thresholds_used */
    /* Held for reading by every job from prediction to audit row, for writing by
     * cxr_api_thresholds_reload: a result never mixes two sets of thresholds. */
    pthread_rwlock_t thresholds_lock;
    double model_thresholds[CXR_FINDING_COUNT]; /* the model's own, before [thresholds] */
    atomic_uint jobs_running;      /* cxr_api_job_run calls in progress (api_pipeline.c) */
    atomic_size_t memory_reserved; /* declared decode memory of jobs in flight (api_memory.c) */
};

/* ---- The memory budget of requests in flight (api_memory.c) ---- */
struct cxr_dicom_pixel_desc;
/* What decoding and rendering the first frame of desc needs, with the fixed cost of a request
 * (saturates at SIZE_MAX). */
size_t cxr_api_memory_declared(const struct cxr_dicom_pixel_desc *desc);
/* Reserves bytes unless the total in flight would pass [limits] max_inflight_memory. Thread
 * safe. */
bool cxr_api_memory_reserve(struct cxr_api *api, size_t bytes);
void cxr_api_memory_release(struct cxr_api *api, size_t bytes);
size_t cxr_api_memory_reserved(struct cxr_api *api);

/* snprintf for messages that may be cut at the buffer's end on purpose. */
void cxr_api_format(char *out, size_t size, const char *fmt, ...) CXR_PRINTF(3, 4);

/* Writes an audit row if the audit log is open; failures go to the server log (and the
 * failure count). Returns false when a row should have been written and was not. */
bool cxr_api_audit_record(struct cxr_api *api, const struct cxr_audit_record *record);
/* The same, logging a row not written at level. */
bool cxr_api_audit_record_logged(struct cxr_api *api, const struct cxr_audit_record *record,
                                 enum cxr_log_level level);

/* With [audit] required = true, replaces response with the 503 of a request whose row could
 * not be written (the result is withheld). recorded: what the audit call returned. */
void cxr_api_audit_enforce(struct cxr_api *api, bool recorded, struct cxr_api_response *response);

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

/* The three DICOM outputs of a job (api_dicom.c). */
struct cxr_api_dicom_outputs {
    struct cxr_buf sr, heatmap, report;
};
/* Builds them from the job's prediction, heatmap (NULL for Normal: the Secondary Capture then
 * holds the grey source image), source image and PDF; gate_flagged ([gate] mode = warn) says so
 * in the Secondary Capture's Series Description. On failure nothing stays allocated. */
enum cxr_status
cxr_api_dicom_outputs_build(struct cxr_api *api, const struct cxr_dicom_meta *source,
                            const struct cxr_prediction *prediction, const struct cxr_rgb8 *heatmap,
                            const struct cxr_gray8 *image, const struct cxr_buf *pdf,
                            bool gate_flagged, int64_t report_time,
                            struct cxr_api_dicom_outputs *outputs, struct cxr_err *err);
void cxr_api_dicom_outputs_release(struct cxr_api_dicom_outputs *outputs);

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

/* ---- One file through the pipeline (api_pipeline.c) and its outputs (api_outputs.c) ---- */

/* What a run holds until it ends (the pipeline frees it, whatever happened). */
struct cxr_api_run_state {
    struct cxr_dicom_file *file;
    struct cxr_gray8 source;
    struct cxr_rgb8 heatmap;
    bool have_prediction;
    struct cxr_prediction prediction;
    struct cxr_buf source_png;
    struct cxr_buf heatmap_png;
    struct cxr_buf pdf;
    struct cxr_api_dicom_outputs dicom;
    char *folder;
    int parent_fd; /* output_folder_path, opened beneath the output root; -1 when not open */
    int folder_fd; /* its patient folder; -1 when not open */
    struct cxr_file_group *group;
};
/* Sets result to the 500 of an internal failure; "<what>: <err's message>" goes to the log. */
void cxr_api_run_fail_internal(struct cxr_api_result *result, const char *what,
                               const struct cxr_err *err);
/* "<folder>/<patient_id>/<patient_id><suffix>", malloc'ed; NULL when out of memory. */
char *cxr_api_output_path_build(const char *folder, const char *patient_id, const char *suffix);
/* The Data object of the spec (result, findings, metadata) with empty image fields; NULL when
 * out of memory. */
json_t *cxr_api_data_build(const struct cxr_prediction *prediction, const char *patient_id,
                           const struct cxr_dicom_meta *meta, const char *model_version);
/* Writes the run's files as one group into <output_folder>/<patient_id>/ (state->folder and
 * the descriptors are set here and released with the state). False with result's error. */
bool cxr_api_outputs_write(struct cxr_api *api, const struct cxr_api_job *job,
                           struct cxr_api_run_state *state, const char *patient_id, json_t *data,
                           struct cxr_api_result *result);
/* Sets data's image fields: paths of the saved files, or placeholders for inline images, whose
 * PNGs move from state to images. False when out of memory. */
bool cxr_api_image_fields_set(const struct cxr_api_job *job, struct cxr_api_run_state *state,
                              const char *patient_id, json_t *data,
                              struct cxr_api_inline_images *images);

#endif
