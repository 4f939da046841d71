/* The v1 API without HTTP: configuration, the request rules of POST /single_inference and
 * POST /bulk_inference (spec/single_inference_v1.md, spec/companion_endpoints.md), the pipeline
 * that turns one DICOM file into predictions, PNGs and a PDF, the output folder layout with
 * atomic writes, the worker pool, and the SQLite audit log. http/ and the `infer` command are
 * thin front ends over this module.
 *
 * Ownership: outputs are written only on success. Threads: a struct cxr_api is read-only after
 * cxr_api_create; every cxr_api_* request function may run on any number of threads at once. */
#ifndef CXR_API_H
#define CXR_API_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "util/util.h"

/* [gate] mode: what the input gate does with an image that is not an adult frontal chest
 * radiograph. */
enum cxr_gate_mode {
    CXR_GATE_REFUSE = 0, /* 400, no outputs (the default) */
    CXR_GATE_WARN = 1,   /* the result, with Result "Warning" and the gate's message */
    CXR_GATE_OFF = 2,
};

/* ---- Configuration (api_config.c): every key is documented in README "## Configuration". */
struct cxr_config {
    char *config_dir; /* folder of the config file; relative paths in it are resolved here */
    /* [server] */
    char *address;
    uint16_t port;
    uint32_t http_threads;      /* libmicrohttpd's connection thread pool */
    uint32_t workers;           /* inference workers */
    uint32_t queue_size;        /* requests that may wait for a worker; more get 503 */
    uint32_t max_connections;   /* open connections at once */
    uint32_t request_timeout_s; /* idle connection timeout and the longest wait in the queue */
    uint32_t shutdown_grace_s;  /* how long SIGTERM waits for requests in flight */
    char *log_level;
    /* [limits] (also max_body_bytes and max_header_bytes) */
    struct cxr_limits limits;
    uint32_t max_bulk_files;
    /* [paths] */
    char *input_root;
    char *output_root;
    /* [model] */
    char *model_path;
    uint32_t model_threads; /* 0: one per CPU */
    /* [auth] */
    char *jwt_algorithm; /* "HS256", "RS256" or "ES256" */
    char *jwt_secret;    /* HS256; the environment's CXRD_JWT_SECRET takes precedence */
    char *jwt_public_key;
    char *jwt_private_key; /* only for `cxrd token` with RS256/ES256 */
    uint64_t token_ttl_s;
    /* [audit] */
    char *audit_database;
    /* [report] */
    char *institution_name; /* "" = the DICOM file's Institution Name */
    char *report_timezone;  /* IANA name for the PDF's report time; "" = the machine's zone */
    /* [gate] */
    enum cxr_gate_mode gate_mode;
    /* [thresholds]: site thresholds and the model version they were calibrated for */
    struct cxr_site_thresholds thresholds;
};

/* Fills config with the defaults, then applies path (may be NULL: defaults only) and the
 * environment (CXRD_JWT_SECRET). Unknown sections or keys and bad values are errors naming the
 * key. Does not check that files exist; cxr_api_create does. */
enum cxr_status cxr_config_load(const char *path, struct cxr_config *config, struct cxr_err *err);
void cxr_config_release(struct cxr_config *config);

/* ---- Audit log (api_audit.c): SQLite in WAL mode, one row per request. ---- */
struct cxr_audit;

struct cxr_audit_record {
    const char *subject; /* token subject, "" when unauthenticated */
    const char *route;   /* "single_inference", "bulk_inference", "bulk_inference/file", "infer" */
    const char *input_path;
    const char *sop_instance_uid;
    const char *patient_id;
    const char *result; /* "Normal", ... or "" */
    int status;         /* HTTP status (the CLI records 200 or 500 alike) */
    double duration_ms;
    const char *message;
    const char *predictions; /* the predictions JSON of a result, "" otherwise */
    const char *thresholds;  /* which thresholds a result used ("model's own", "site
                                calibration of 2026-12-03"), "" otherwise */
};

enum cxr_status cxr_audit_open(const char *path, struct cxr_audit **audit, struct cxr_err *err);
void cxr_audit_close(struct cxr_audit *audit);
/* Appends one row with the current UTC time. Thread safe. NULL strings are stored as "". */
enum cxr_status cxr_audit_write(struct cxr_audit *audit, const struct cxr_audit_record *record,
                                struct cxr_err *err);

/* A stored result, as cxr_audit_find_sop hands it over (strings valid during the call). */
struct cxr_audit_result_row {
    const char *time, *route, *input_path, *patient_id, *result, *predictions;
};
typedef void (*cxr_audit_row_visit)(const struct cxr_audit_result_row *row, void *context);
/* Calls visit for every stored result of sop_instance_uid, oldest first; *count is how many.
 * Thread safe. */
enum cxr_status cxr_audit_find_sop(struct cxr_audit *audit, const char *sop_instance_uid,
                                   cxr_audit_row_visit visit, void *context, size_t *count,
                                   struct cxr_err *err);

/* ---- The API context ---- */
struct cxr_api;

/* Loads and checks the model (refusing to start without one), resolves the input and output
 * roots (they must exist), opens the audit log when config->audit_database is not "". */
enum cxr_status cxr_api_create(const struct cxr_config *config, struct cxr_api **api,
                               struct cxr_err *err);
void cxr_api_destroy(struct cxr_api *api);
const char *cxr_api_model_version(const struct cxr_api *api);
/* Which thresholds results use: "model's own" or "site calibration of <date>" (and, under
 * [thresholds] allow_model_change, the model version they were made for). */
const char *cxr_api_thresholds_used(const struct cxr_api *api);
/* The threshold in use for a finding (API index); NAN outside 0..10. */
double cxr_api_model_threshold(const struct cxr_api *api, int finding);
struct cxr_audit *cxr_api_audit(struct cxr_api *api);

/* Seconds since an arbitrary start (CLOCK_MONOTONIC), for durations. */
double cxr_api_now(void);

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

/* POST /single_inference with the body already parsed as a JSON object. subject is the token
 * subject for the audit log. Always fills response (every failure is a response too), writes
 * one audit row. */
void cxr_api_single_inference(struct cxr_api *api, struct json_t *body, const char *subject,
                              struct cxr_api_response *response);

/* ---- POST /bulk_inference (api_bulk.c) ----
 * Validation happens at once; the files are then processed by tasks submitted to a pool, and
 * done() is called (from a pool worker) with the final response. */
struct cxr_api_pool;
typedef void (*cxr_api_bulk_done)(struct cxr_api_response *response, void *context);
/* Returns true when the request was accepted and done() will be called later; false when the
 * request failed validation and response is filled now. */
bool cxr_api_bulk_inference(struct cxr_api *api, struct cxr_api_pool *pool, struct json_t *body,
                            const char *subject, cxr_api_bulk_done done, void *context,
                            struct cxr_api_response *response);

/* ---- Worker pool (api_pool.c) ----
 * `workers` threads take tasks from a FIFO queue. submit() refuses (CXR_ERR_LIMIT) when
 * queue_max tasks are already waiting, unless force is set (bulk runs keep at most `workers`
 * of their own tasks queued). destroy() finishes every queued task first. */
typedef void (*cxr_api_task)(void *context);
enum cxr_status cxr_api_pool_create(uint32_t workers, uint32_t queue_max,
                                    struct cxr_api_pool **pool, struct cxr_err *err);
enum cxr_status cxr_api_pool_submit(struct cxr_api_pool *pool, cxr_api_task task, void *context,
                                    bool force);
uint32_t cxr_api_pool_workers(const struct cxr_api_pool *pool);
/* Tasks waiting (not yet started) and running now. */
void cxr_api_pool_depth(struct cxr_api_pool *pool, uint32_t *queued, uint32_t *running);
void cxr_api_pool_destroy(struct cxr_api_pool *pool);

/* ---- One file through the pipeline (api_pipeline.c), shared by HTTP and `cxrd infer` ---- */
struct cxr_api_job {
    const char *input_path;          /* resolved, checked path of the .dcm file */
    const char *patient_id;          /* from the request, already validated; NULL: use DICOM */
    const char *output_folder;       /* NULL: return base64 strings instead of writing files */
    const char *output_folder_shown; /* the folder as the client named it, for response paths */
    bool explain;                    /* also write <patient_id>_cams.npy (cxrd infer --explain) */
    bool predict_only; /* stop after the prediction and the gate: Data without images, no
                          heatmap, PNG, PDF or files (cxrd calibrate) */
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
    char sop_instance_uid[80];
    char result[24];
    bool gate_flagged; /* [gate] mode = warn: not a frontal chest radiograph; message says why */
    double stage_seconds[CXR_STAGE_COUNT];
};

void cxr_api_job_run(struct cxr_api *api, const struct cxr_api_job *job,
                     struct cxr_api_result *result);
/* One audit row for a job's outcome (route "single_inference", "bulk_inference/file" or
 * "infer"), with its predictions JSON when it succeeded. No-op without an audit log; a failed
 * write goes to the log. Call before cxr_api_result_release (Data is read, not taken). */
void cxr_api_audit_result(struct cxr_api *api, const char *subject, const char *route,
                          const char *input_path, const struct cxr_api_result *result,
                          double duration_ms);
void cxr_api_result_release(struct cxr_api_result *result);

/* ---- The run ledger (api_ledger.c): which files of one bulk or `infer` run wrote which
 * patient folder, to report studies that share a patient ID. Thread safe. ---- */
struct cxr_api_ledger;
enum cxr_status cxr_api_ledger_create(struct cxr_api_ledger **ledger);
void cxr_api_ledger_destroy(struct cxr_api_ledger *ledger);
enum cxr_status cxr_api_ledger_add(struct cxr_api_ledger *ledger, const char *patient_id,
                                   const char *input_path, const char *sop_instance_uid);
/* Appends to text "PID: a.dcm, b.dcm (the folder holds b.dcm); ..." for the first max_shown
 * patient IDs written by more than one file (paths shown relative to strip when under it), and
 * returns how many such patient IDs there are. Reads each folder's predictions JSON under
 * output_folder to name the file whose result it holds. */
size_t cxr_api_ledger_collisions(struct cxr_api_ledger *ledger, const char *output_folder,
                                 const char *strip, size_t max_shown, struct cxr_buf *text);

/* The sentence that introduces the ledger's list in messages. */
#define CXR_API_SHARED_ID_TEXT                                                                     \
    "patient IDs written by more than one file (each folder keeps the result written last; "       \
    "every result stays in the audit log: cxrd results --sop UID)"

/* True when id is a safe folder name: 1 to 64 characters of A-Z a-z 0-9 . _ - and not starting
 * with a dot. */
bool cxr_api_patient_id_valid(const char *id, size_t length);

/* Checks a request path (syntax, root after symlinks). root is the root as configured (a path
 * must lie under it or under its resolved form root_real before anything is looked up). On success
 * *resolved is malloc'ed. The error text is the reason only (e.g. "contains a '..' component").
 * must_exist selects CXR_ERR_NOT_FOUND for a missing path (input) or allows missing trailing
 * folders (output). */
enum cxr_status cxr_api_path_check(const char *root, const char *root_real, const char *path,
                                   size_t length, bool must_exist, char **resolved,
                                   struct cxr_err *err);

const char *cxr_api_input_root(const struct cxr_api *api);
const char *cxr_api_output_root(const struct cxr_api *api);

#endif
