/* The audit log (api_audit.c): SQLite in WAL mode, one row per request, and every result's
 * predictions JSON by SOP Instance UID. */
#ifndef CXR_API_AUDIT_H
#define CXR_API_AUDIT_H

#include <stddef.h>

#include "util/util.h"

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
    const char *predictions;   /* the predictions JSON of a result, "" otherwise */
    const char *thresholds;    /* which thresholds a result used ("model's own", "site
                                  calibration of 2026-12-03"), "" otherwise */
    const char *request_id;    /* the HTTP request's X-Request-Id, "" for the CLI */
    const char *output_folder; /* the run's resolved output folder when files were saved
                                  (the result's files are in <output_folder>/<patient_id>/) */
    const char *job_id;        /* the async bulk job the row belongs to, "" otherwise */
    /* With job_id set and job_file_state non-NULL, file job_file_seq of that job is marked
     * job_file_state ("done" or "skipped") with its summary CSV row in the same transaction as
     * the row, so a crash never records one without the other. */
    long long job_file_seq;
    const char *job_file_state;
    const char *job_file_csv_row;
};

/* Opens (creating when needed) the database, its audit table and the bulk job tables (jobs,
 * job_files: api_jobstore.c), adding the columns of later releases to older files. */
enum cxr_status cxr_audit_open(const char *path, struct cxr_audit **audit, struct cxr_err *err);
/* Opens an existing audit database for lookups (cxr_audit_find_sop) only: nothing is created or
 * changed, and a file without the audit table is refused as not an audit database. */
enum cxr_status cxr_audit_open_read_only(const char *path, struct cxr_audit **audit,
                                         struct cxr_err *err);
void cxr_audit_close(struct cxr_audit *audit);
/* Appends one row with the current UTC time. When the file at the path is no longer the one
 * open (deleted or replaced), reopens the path first. Thread safe. NULL strings are stored as
 * "". A failure is counted (cxr_audit_failures). */
enum cxr_status cxr_audit_write(struct cxr_audit *audit, const struct cxr_audit_record *record,
                                struct cxr_err *err);

/* Rows that could not be written since open. Thread safe; NULL: 0. */
unsigned long long cxr_audit_failures(const struct cxr_audit *audit);

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

/* The connection, locked for the caller (other modules' queries on the same database: bulk
 * jobs, the worklist); every lock is paired with an unlock. */
struct sqlite3;
struct sqlite3 *cxr_audit_db_lock(struct cxr_audit *audit);
void cxr_audit_db_unlock(struct cxr_audit *audit);

#endif
