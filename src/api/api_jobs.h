/* Async bulk jobs (api_jobs.c): POST /bulk_inference with "async": true answers at once with a
 * job; the job's files go through the shared worker pool one file per task, as a sync bulk
 * run's do, so single requests keep their turn. Jobs are stored in the audit database: after a
 * restart or a crash, the running job resumes with the files not yet recorded. One job runs at a
 * time (the others wait, "queued"), so two jobs never process the same file at once.
 *
 * Threads: every function is thread safe. Ownership: responses are filled in every case. */
#ifndef CXR_API_JOBS_H
#define CXR_API_JOBS_H

#include <stdbool.h>
#include <stddef.h>

#include "api/api_pool.h"
#include "api/api_response.h"
#include "util/util.h"

struct cxr_api;
struct cxr_api_jobs;
struct json_t;

/* Needs the api's audit database (CXR_ERR_INVALID_ARG without one). Records the end of jobs
 * cancelled before a crash, then resumes the job that was running and starts queued ones. */
enum cxr_status cxr_api_jobs_create(struct cxr_api *api, struct cxr_api_pool *pool,
                                    struct cxr_api_jobs **jobs, struct cxr_err *err);
/* Stops handing out files (shutdown): files in flight finish; the running job stays "running"
 * in the database and resumes at the next start. Call before destroying the pool. */
void cxr_api_jobs_stop(struct cxr_api_jobs *jobs);
/* After the pool is destroyed. NULL is a no-op. */
void cxr_api_jobs_destroy(struct cxr_api_jobs *jobs);
/* True while a job waits for room for its outputs or its rows, its tries included (/metrics'
 * cxrd_jobs_paused, so an alert need not read the log). False for NULL. */
bool cxr_api_jobs_paused(struct cxr_api_jobs *jobs);

/* True when a /bulk_inference body asks for a job ("async": true). */
bool cxr_api_bulk_is_async(const struct json_t *body);

/* POST /bulk_inference with "async": true: 202 with the job object, or the bulk errors. */
void cxr_api_jobs_submit(struct cxr_api_jobs *jobs, struct json_t *body, const char *subject,
                         const char *request_id, struct cxr_api_response *response);
/* GET /jobs/{id}, DELETE /jobs/{id} (cancel between files), GET /jobs (newest first). */
void cxr_api_jobs_get(struct cxr_api_jobs *jobs, const char *id, struct cxr_api_response *response);
void cxr_api_jobs_cancel(struct cxr_api_jobs *jobs, const char *id,
                         struct cxr_api_response *response);
void cxr_api_jobs_list(struct cxr_api_jobs *jobs, size_t limit, struct cxr_api_response *response);
/* GET /jobs/{id}/summary.csv: true with the CSV appended to csv (while the job runs, its files
 * not yet processed are listed as such), or false with response set (unknown job). */
bool cxr_api_jobs_summary(struct cxr_api_jobs *jobs, const char *id, struct cxr_buf *csv,
                          struct cxr_api_response *response);

#endif
