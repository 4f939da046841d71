/* The v1 API without HTTP: configuration, the request rules of POST /single_inference and
 * POST /bulk_inference (spec/single_inference_v1.md, spec/companion_endpoints.md), the pipeline
 * that turns one DICOM file into predictions, PNGs and a PDF, the output folder layout with
 * atomic writes, the worker pool, and the SQLite audit log. http/ and the `infer` command are
 * thin front ends over this module. This header is the request entry points and the context;
 * each other concept has its own header (api_config.h, api_audit.h, api_response.h,
 * api_pool.h, api_job.h, api_run.h), all included here.
 *
 * Ownership: outputs are written only on success. Threads: a struct cxr_api is read-only after
 * cxr_api_create; every cxr_api_* request function may run on any number of threads at once. */
#ifndef CXR_API_H
#define CXR_API_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api_audit.h"
#include "api/api_config.h"
#include "api/api_job.h"
#include "api/api_jobs.h"
#include "api/api_pool.h"
#include "api/api_response.h"
#include "api/api_results.h"
#include "api/api_run.h"
#include "model/model.h"
#include "util/util.h"

/* ---- The API context ---- */
struct cxr_api;

/* Loads and checks the model (refusing to start without one), resolves the input and output
 * roots (they must exist), opens the audit log when config->audit_database is not "". */
enum cxr_status cxr_api_create(const struct cxr_config *config, struct cxr_api **api,
                               struct cxr_err *err);
void cxr_api_destroy(struct cxr_api *api);
const char *cxr_api_model_version(const struct cxr_api *api);
struct cxr_audit *cxr_api_audit(struct cxr_api *api);

/* Which thresholds results use: "model's own" or "site calibration of <date>" (and, under
 * [thresholds] allow_model_change, the model version they were made for). */
const char *cxr_api_thresholds_used(const struct cxr_api *api);
/* Replaces the site thresholds ([thresholds] of a reloaded config, SIGHUP) after the jobs
 * running now finish: findings the section does not name go back to the model's own. The
 * threshold guard applies as at start; on failure the running thresholds stay. Thread safe. */
enum cxr_status cxr_api_thresholds_reload(struct cxr_api *api,
                                          const struct cxr_site_thresholds *site,
                                          struct cxr_err *err);
/* The threshold in use for a finding (API index); NAN outside 0..10. */
double cxr_api_model_threshold(const struct cxr_api *api, int finding);

/* Seconds since an arbitrary start (CLOCK_MONOTONIC), for durations. */
double cxr_api_now(void);

/* Parses the body of POST /single_inference or /bulk_inference: returns the JSON object, or
 * NULL with why (for CXR_API_NOT_JSON_OBJECT) when the body is not JSON or not an object. */
struct json_t *cxr_api_request_parse(const char *data, size_t size, char *why, size_t why_size);

/* POST /single_inference with the body already parsed as a JSON object. subject is the token
 * subject and request_id the request's X-Request-Id (may be NULL), both for the audit log.
 * Always fills response (every failure is a response too), writes one audit row. */
void cxr_api_single_inference(struct cxr_api *api, struct json_t *body, const char *subject,
                              const char *request_id, struct cxr_api_response *response);

/* ---- POST /bulk_inference (api_bulk.c) ----
 * Validation happens at once; the files are then processed by tasks submitted to a pool, and
 * done() is called (from a pool worker) with the final response. */
typedef void (*cxr_api_bulk_done)(struct cxr_api_response *response, void *context);
/* Returns true when the request was accepted and done() will be called later; false when the
 * request failed validation and response is filled now. */
bool cxr_api_bulk_inference(struct cxr_api *api, struct cxr_api_pool *pool, struct json_t *body,
                            const char *subject, const char *request_id, cxr_api_bulk_done done,
                            void *context, struct cxr_api_response *response);

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

/* At start-up (`cxrd serve`): removes the stale temp files (util.h, cxr_file_temps_sweep) that
 * writers killed inside a commit left under the output root, in its folders down to
 * CXR_API_SWEEP_DEPTH levels (output_folder_path/patient folder, with two more levels of
 * output_folder_path), looking at no more than CXR_API_SWEEP_ENTRIES directory entries, so a
 * large archive under the root cannot delay the start. Patient folders beyond that are cleaned
 * when they are next written. Returns how many files it removed. */
#define CXR_API_SWEEP_DEPTH   4
#define CXR_API_SWEEP_ENTRIES 20000
size_t cxr_api_output_sweep(struct cxr_api *api);

#endif
