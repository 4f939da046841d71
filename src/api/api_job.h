/* One DICOM file through the pipeline (api_pipeline.c), shared by HTTP and `cxrd infer`, and
 * the audit row of its outcome. */
#ifndef CXR_API_JOB_H
#define CXR_API_JOB_H

#include <stdbool.h>

#include "api/api_response.h"

struct cxr_api;

/* ---- One file through the pipeline (api_pipeline.c), shared by HTTP and `cxrd infer` ---- */
struct cxr_api_job {
    const char *input_path; /* resolved, checked path of the .dcm file */
    bool input_open;        /* input_fd is that file, opened when it was checked; else input_path is
                               opened beneath the input root when the job reads it */
    int input_fd;           /* with input_open: the caller's descriptor, which the job reads */
    const char *patient_id; /* from the request, already validated; NULL: use DICOM */
    const char *output_folder;       /* NULL: return base64 strings instead of writing files */
    const char *output_folder_shown; /* the folder as the client named it, for response paths */
    bool explain;                    /* also write <patient_id>_cams.npy (cxrd infer --explain) */
    bool predict_only;         /* stop after the prediction and the gate: Data without images, no
                                  heatmap, PNG, PDF or files (cxrd calibrate) */
    bool dicom_outputs;        /* with output_folder: also <pid>_sr.dcm, _heatmap.dcm, _report.dcm
                                  (docs/dicom-outputs.md), listed in Data */
    bool caller_logs_no_space; /* a failure for want of room is not logged here: a bulk job keeps
                                  the file pending and logs it, once per pause */
};

/* The outcome of a job: Data (the predictions object) or an error with its HTTP status and the
 * v1 Message. */
struct cxr_api_result {
    int status;                          /* 200, 400 or 500 */
    char message[1024];                  /* v1 Message for errors */
    char cause[512];                     /* internal cause for the log (never sent to clients) */
    struct json_t *data;                 /* the Data object on success (owned; freed by release) */
    struct cxr_api_inline_images images; /* inline PNGs for data's placeholders (owned) */
    char patient_id[80];                 /* the resolved patient ID ("" before it is known) */
    /* The file's SOP Instance UID, whole (owned; freed by release; NULL before it is known):
     * one longer than a UID may be, cut short here, no longer matched the predictions JSON
     * (the worklist then called its files replaced). */
    char *sop_instance_uid;
    char result[24];
    char thresholds[256]; /* the thresholds the job ran with (cxr_api_thresholds_used), taken
                             under the same lock as the prediction: a reload since then is not
                             what the result was computed with */
    bool gate_flagged;    /* [gate] mode = warn: not a frontal chest radiograph; message says why */
    bool outputs_unwritten; /* failed writing the output files (storage), not on the input */
    bool no_space;          /* ... because the file system is full or read-only (a job waits) */
    double stage_seconds[CXR_STAGE_COUNT];
};

void cxr_api_job_run(struct cxr_api *api, const struct cxr_api_job *job,
                     struct cxr_api_result *result);
/* One audit row for a job's outcome (route "single_inference", "bulk_inference/file" or
 * "infer"), with its predictions JSON when it succeeded. No-op without an audit log; a failed
 * write goes to the log. Call before cxr_api_result_release (Data is read, not taken). Returns
 * false when the row could not be written. */
bool cxr_api_audit_result(struct cxr_api *api, const char *subject, const char *request_id,
                          const char *route, const char *input_path,
                          const struct cxr_api_result *result, double duration_ms);
/* What some audit rows add: the run's output folder (where the result's files were saved) and,
 * for a file of an async bulk job, the job file's new state and summary row, recorded in the
 * same transaction as the audit row. */
struct cxr_api_audit_extra {
    const char *output_folder;
    const char *job_id;
    long long job_file_seq;
    const char *job_file_state; /* "done" or "skipped" */
    const char *csv_row;
    bool quiet_failure; /* a row not written is logged at debug level (a paused job's tries) */
};
/* cxr_api_audit_result with extra (may be NULL). Returns false when the row was not written. */
bool cxr_api_audit_result_extra(struct cxr_api *api, const char *subject, const char *request_id,
                                const char *route, const char *input_path,
                                const struct cxr_api_result *result, double duration_ms,
                                const struct cxr_api_audit_extra *extra);
void cxr_api_result_release(struct cxr_api_result *result);
/* Sets result to an error of the table; cause (optional) goes to the log only. */
void cxr_api_result_error(struct cxr_api_result *result, enum cxr_api_error error,
                          const char *detail, const char *cause);

#endif
