/* The async bulk jobs' tables in the audit database (api_jobstore.c), for api_jobs.c only:
 * jobs (one row per job) and job_files (one row per input file, listed when the job is
 * created; a file becomes "done" or "skipped" in the same transaction as its audit row). */
#ifndef CXR_API_JOBSTORE_H
#define CXR_API_JOBSTORE_H

#include <jansson.h>

#include "api/api_internal.h"

#define CXR_JOB_ID_LENGTH 32 /* hex digits */

/* A job row as stored (strings malloc'ed; release with cxr_jobstore_job_release). */
struct cxr_jobstore_job {
    char id[CXR_JOB_ID_LENGTH + 1];
    char state[16]; /* queued, running, done, failed, cancelled */
    char *subject, *request_id, *input_folder, *output_folder, *output_shown, *summary;
    char *created, *started, *finished, *message;
    long long total;
};
void cxr_jobstore_job_release(struct cxr_jobstore_job *job);

/* "2026-12-03T13:05:12.345Z", the audit log's time format. */
void cxr_jobstore_time_now(char out[40]);

/* Inserts the job (state queued) and its files (seq 0.., pending) in one transaction. */
enum cxr_status cxr_jobstore_insert(struct cxr_audit *audit, const struct cxr_jobstore_job *job,
                                    char *const *paths, size_t count, struct cxr_err *err);
/* CXR_ERR_NOT_FOUND when there is no job id. */
enum cxr_status cxr_jobstore_load(struct cxr_audit *audit, const char *id,
                                  struct cxr_jobstore_job *job, struct cxr_err *err);
/* Sets state, and started/finished/message when not NULL. */
enum cxr_status cxr_jobstore_update(struct cxr_audit *audit, const char *id, const char *state,
                                    const char *started, const char *finished, const char *message,
                                    struct cxr_err *err);
/* The job to run next: the running one (after a restart), else the oldest queued; or, with
 * cancelled set, a cancelled job whose end was never recorded. id is "" when none. */
enum cxr_status cxr_jobstore_next(struct cxr_audit *audit, bool cancelled,
                                  char id[CXR_JOB_ID_LENGTH + 1], struct cxr_err *err);
/* The job's files still pending, in order: *seqs and *paths malloc'ed arrays of *count. */
enum cxr_status cxr_jobstore_pending(struct cxr_audit *audit, const char *id, long long **seqs,
                                     char ***paths, size_t *count, struct cxr_err *err);
/* Counts of the job's files: done (analysed or skipped), skipped, and by result. */
struct cxr_jobstore_counts {
    long long done, skipped, tb_presumptive, abnormal, normal;
};
enum cxr_status cxr_jobstore_counts(struct cxr_audit *audit, const char *id,
                                    struct cxr_jobstore_counts *counts, struct cxr_err *err);
/* The summary CSV's records in file order, pending files with pending_reason. *rows is an
 * array of *count malloc'ed strings. */
enum cxr_status cxr_jobstore_rows(struct cxr_audit *audit, const char *id,
                                  const char *pending_reason, char ***rows, size_t *count,
                                  struct cxr_err *err);
/* Adds the job's analysed files (their audit rows, before and after any restart) to ledger, to
 * find the patient IDs that more than one file wrote. */
enum cxr_status cxr_jobstore_ledger(struct cxr_audit *audit, const char *id,
                                    struct cxr_api_ledger *ledger, struct cxr_err *err);
/* The IDs of the most recent jobs, newest first (at most limit): *ids malloc'ed. */
enum cxr_status cxr_jobstore_recent(struct cxr_audit *audit, size_t limit,
                                    char (**ids)[CXR_JOB_ID_LENGTH + 1], size_t *count,
                                    struct cxr_err *err);

#endif
