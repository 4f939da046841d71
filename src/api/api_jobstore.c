/* The async bulk jobs' rows in the audit database. Every query runs under the audit log's lock
 * on its one connection, so a job file's state and its audit row (written together by
 * cxr_audit_write) are always seen together. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_jobstore.h"

void cxr_jobstore_job_release(struct cxr_jobstore_job *job)
{
    char **fields[] = {&job->subject,       &job->request_id,   &job->input_folder,
                       &job->output_folder, &job->output_shown, &job->summary,
                       &job->created,       &job->started,      &job->finished,
                       &job->message};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        free(*fields[i]);
        *fields[i] = NULL;
    }
}

void cxr_jobstore_time_now(char out[40])
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    size_t used = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(out + used, 40 - used, ".%03ldZ", now.tv_nsec / 1000000);
}

static enum cxr_status fail(sqlite3 *db, const char *what, struct cxr_err *err)
{
    return cxr_err_set(err, CXR_ERR_IO, "SQLite: jobs: %s: %s", what, sqlite3_errmsg(db));
}

static void bind(sqlite3_stmt *statement, int index, const char *text)
{
    sqlite3_bind_text(statement, index, text ? text : "", -1, SQLITE_TRANSIENT);
}

static char *column_dup(sqlite3_stmt *statement, int column)
{
    const unsigned char *text = sqlite3_column_text(statement, column);
    return strdup(text ? (const char *)text : "");
}

/* A recorded file's summary record as this release writes it (a row of an older release may
 * hold a field that a spreadsheet runs as a formula). */
static char *stored_row(sqlite3_stmt *select)
{
    const unsigned char *text = sqlite3_column_text(select, 2);
    return cxr_api_summary_row_stored(text ? (const char *)text : "");
}

enum cxr_status cxr_jobstore_insert(struct cxr_audit *audit, const struct cxr_jobstore_job *job,
                                    char *const *paths, size_t count, struct cxr_err *err)
{
    sqlite3 *db = cxr_audit_db_lock(audit);
    sqlite3_stmt *insert = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "INSERT INTO jobs (id, state, subject, request_id, input_folder,"
                                " output_folder, output_shown, summary, total, created)"
                                " VALUES (?,'queued',?,?,?,?,?,?,?,?)",
                                -1, &insert, NULL);
    if (rc == SQLITE_OK) {
        const char *texts[] = {job->id,           job->subject,       job->request_id,
                               job->input_folder, job->output_folder, job->output_shown,
                               job->summary};
        for (int i = 0; i < 7; i++)
            bind(insert, i + 1, texts[i]);
        sqlite3_bind_int64(insert, 8, (sqlite3_int64)count);
        bind(insert, 9, job->created);
        rc = sqlite3_step(insert) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(insert);
    insert = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT INTO job_files (job_id, seq, path) VALUES (?,?,?)", -1,
                                &insert, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < count; i++) {
        bind(insert, 1, job->id);
        sqlite3_bind_int64(insert, 2, (sqlite3_int64)i);
        bind(insert, 3, paths[i]);
        rc = sqlite3_step(insert) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(insert);
    }
    sqlite3_finalize(insert);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    enum cxr_status status = CXR_OK;
    if (rc != SQLITE_OK) {
        status = fail(db, "insert", err);
        if (!sqlite3_get_autocommit(db))
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    cxr_audit_db_unlock(audit);
    return status;
}

enum cxr_status cxr_jobstore_load(struct cxr_audit *audit, const char *id,
                                  struct cxr_jobstore_job *job, struct cxr_err *err)
{
    memset(job, 0, sizeof *job);
    sqlite3 *db = cxr_audit_db_lock(audit);
    sqlite3_stmt *select = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT id, state, subject, request_id, input_folder,"
                                " output_folder, output_shown, summary, created, started,"
                                " finished, message, total FROM jobs WHERE id = ?",
                                -1, &select, NULL);
    enum cxr_status status = CXR_OK;
    if (rc == SQLITE_OK) {
        bind(select, 1, id);
        rc = sqlite3_step(select);
    }
    if (rc == SQLITE_ROW) {
        snprintf(job->id, sizeof job->id, "%s", (const char *)sqlite3_column_text(select, 0));
        snprintf(job->state, sizeof job->state, "%s", (const char *)sqlite3_column_text(select, 1));
        char **fields[] = {&job->subject,       &job->request_id,   &job->input_folder,
                           &job->output_folder, &job->output_shown, &job->summary,
                           &job->created,       &job->started,      &job->finished,
                           &job->message};
        for (int i = 0; i < 10; i++) {
            *fields[i] = column_dup(select, i + 2);
            if (*fields[i] == NULL)
                status = cxr_err_set(err, CXR_ERR_NOMEM, "jobs: out of memory");
        }
        job->total = sqlite3_column_int64(select, 12);
    } else if (rc == SQLITE_DONE) {
        status = cxr_err_set(err, CXR_ERR_NOT_FOUND, "job %s not found", id);
    } else {
        status = fail(db, "load", err);
    }
    sqlite3_finalize(select);
    cxr_audit_db_unlock(audit);
    if (status != CXR_OK)
        cxr_jobstore_job_release(job);
    return status;
}

enum cxr_status cxr_jobstore_update(struct cxr_audit *audit, const char *id, const char *state,
                                    const char *started, const char *finished, const char *message,
                                    struct cxr_err *err)
{
    sqlite3 *db = cxr_audit_db_lock(audit);
    sqlite3_stmt *update = NULL;
    /* A NULL argument keeps the stored value (COALESCE of a bound NULL). */
    int rc = sqlite3_prepare_v2(db,
                                "UPDATE jobs SET state = ?, started = COALESCE(?, started),"
                                " finished = COALESCE(?, finished),"
                                " message = COALESCE(?, message) WHERE id = ?",
                                -1, &update, NULL);
    if (rc == SQLITE_OK) {
        bind(update, 1, state);
        const char *optional[] = {started, finished, message};
        for (int i = 0; i < 3; i++) {
            if (optional[i])
                bind(update, i + 2, optional[i]);
            else
                sqlite3_bind_null(update, i + 2);
        }
        bind(update, 5, id);
        rc = sqlite3_step(update) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(update);
    enum cxr_status status = rc == SQLITE_OK ? CXR_OK : fail(db, "update", err);
    cxr_audit_db_unlock(audit);
    return status;
}

enum cxr_status cxr_jobstore_next(struct cxr_audit *audit, bool cancelled,
                                  char id[CXR_JOB_ID_LENGTH + 1], struct cxr_err *err)
{
    id[0] = '\0';
    sqlite3 *db = cxr_audit_db_lock(audit);
    sqlite3_stmt *select = NULL;
    const char *sql = cancelled ? "SELECT id FROM jobs WHERE state = 'cancelled' AND finished = ''"
                                  " ORDER BY rowid LIMIT 1"
                                : "SELECT id FROM jobs WHERE state IN ('running', 'queued')"
                                  " ORDER BY state = 'running' DESC, rowid LIMIT 1";
    int rc = sqlite3_prepare_v2(db, sql, -1, &select, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(select);
    if (rc == SQLITE_ROW)
        snprintf(id, CXR_JOB_ID_LENGTH + 1, "%s", (const char *)sqlite3_column_text(select, 0));
    sqlite3_finalize(select);
    enum cxr_status status =
            rc == SQLITE_ROW || rc == SQLITE_DONE ? CXR_OK : fail(db, "next job", err);
    cxr_audit_db_unlock(audit);
    return status;
}

enum cxr_status cxr_jobstore_pending(struct cxr_audit *audit, const char *id, long long **seqs,
                                     char ***paths, size_t *count, struct cxr_err *err)
{
    *seqs = NULL;
    *paths = NULL;
    *count = 0;
    size_t cap = 0;
    sqlite3 *db = cxr_audit_db_lock(audit);
    sqlite3_stmt *select = NULL;
    enum cxr_status status = CXR_OK;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT seq, path FROM job_files WHERE job_id = ?"
                                " AND state = 'pending' ORDER BY seq",
                                -1, &select, NULL);
    if (rc == SQLITE_OK)
        bind(select, 1, id);
    while (rc == SQLITE_OK && status == CXR_OK && (rc = sqlite3_step(select)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        if (*count == cap) {
            cap = cap ? cap * 2 : 64;
            long long *more_seqs = realloc(*seqs, cap * sizeof **seqs);
            if (more_seqs)
                *seqs = more_seqs;
            char **more_paths = realloc(*paths, cap * sizeof **paths);
            if (more_paths)
                *paths = more_paths;
            if (!more_seqs || !more_paths) {
                status = cxr_err_set(err, CXR_ERR_NOMEM, "jobs: out of memory");
                break;
            }
        }
        (*seqs)[*count] = sqlite3_column_int64(select, 0);
        (*paths)[*count] = column_dup(select, 1);
        if ((*paths)[*count] == NULL)
            status = cxr_err_set(err, CXR_ERR_NOMEM, "jobs: out of memory");
        else
            (*count)++;
    }
    if (status == CXR_OK && rc != SQLITE_DONE)
        status = fail(db, "pending files", err);
    sqlite3_finalize(select);
    cxr_audit_db_unlock(audit);
    if (status != CXR_OK) {
        for (size_t i = 0; i < *count; i++)
            free((*paths)[i]);
        free(*paths);
        free(*seqs);
        *seqs = NULL;
        *paths = NULL;
        *count = 0;
    }
    return status;
}

enum cxr_status cxr_jobstore_counts(struct cxr_audit *audit, const char *id,
                                    struct cxr_jobstore_counts *counts, struct cxr_err *err)
{
    memset(counts, 0, sizeof *counts);
    sqlite3 *db = cxr_audit_db_lock(audit);
    sqlite3_stmt *select = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT state, result, count(*) FROM job_files WHERE job_id = ?"
                                " AND state != 'pending' GROUP BY state, result",
                                -1, &select, NULL);
    if (rc == SQLITE_OK)
        bind(select, 1, id);
    while (rc == SQLITE_OK && (rc = sqlite3_step(select)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        const char *state = (const char *)sqlite3_column_text(select, 0);
        const char *result = (const char *)sqlite3_column_text(select, 1);
        long long n = sqlite3_column_int64(select, 2);
        counts->done += n;
        if (state && strcmp(state, "skipped") == 0)
            counts->skipped += n;
        else if (result && strcmp(result, "TB Presumptive") == 0)
            counts->tb_presumptive += n;
        else if (result && strcmp(result, "Abnormal") == 0)
            counts->abnormal += n;
        else if (result && strcmp(result, "Normal") == 0)
            counts->normal += n;
    }
    sqlite3_finalize(select);
    enum cxr_status status = rc == SQLITE_DONE ? CXR_OK : fail(db, "counts", err);
    cxr_audit_db_unlock(audit);
    return status;
}

enum cxr_status cxr_jobstore_rows(struct cxr_audit *audit, const char *id,
                                  const char *pending_reason, char ***rows, size_t *count,
                                  struct cxr_err *err)
{
    *rows = NULL;
    *count = 0;
    size_t cap = 0;
    sqlite3 *db = cxr_audit_db_lock(audit);
    sqlite3_stmt *select = NULL;
    enum cxr_status status = CXR_OK;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT state, path, csv_row FROM job_files WHERE job_id = ?"
                                " ORDER BY seq",
                                -1, &select, NULL);
    if (rc == SQLITE_OK)
        bind(select, 1, id);
    while (rc == SQLITE_OK && status == CXR_OK && (rc = sqlite3_step(select)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        if (*count == cap) {
            cap = cap ? cap * 2 : 64;
            char **more = realloc(*rows, cap * sizeof **rows);
            if (more == NULL) {
                status = cxr_err_set(err, CXR_ERR_NOMEM, "jobs: out of memory");
                break;
            }
            *rows = more;
        }
        const char *state = (const char *)sqlite3_column_text(select, 0);
        char *row = state && strcmp(state, "pending") == 0
                            ? cxr_api_summary_row((const char *)sqlite3_column_text(select, 1),
                                                  NULL, NULL, pending_reason)
                            : stored_row(select);
        if (row == NULL)
            status = cxr_err_set(err, CXR_ERR_NOMEM, "jobs: out of memory");
        else
            (*rows)[(*count)++] = row;
    }
    if (status == CXR_OK && rc != SQLITE_DONE)
        status = fail(db, "summary rows", err);
    sqlite3_finalize(select);
    cxr_audit_db_unlock(audit);
    if (status != CXR_OK) {
        for (size_t i = 0; i < *count; i++)
            free((*rows)[i]);
        free(*rows);
        *rows = NULL;
        *count = 0;
    }
    return status;
}

enum cxr_status cxr_jobstore_ledger(struct cxr_audit *audit, const char *id,
                                    struct cxr_api_ledger *ledger, struct cxr_err *err)
{
    sqlite3 *db = cxr_audit_db_lock(audit);
    sqlite3_stmt *select = NULL;
    enum cxr_status status = CXR_OK;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT patient_id, input_path, sop_instance_uid FROM audit"
                                " WHERE job_id = ? AND route = 'bulk_inference/file'"
                                " AND status = 200 ORDER BY id",
                                -1, &select, NULL);
    if (rc == SQLITE_OK)
        bind(select, 1, id);
    while (rc == SQLITE_OK && status == CXR_OK && (rc = sqlite3_step(select)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        const char *texts[3];
        for (int i = 0; i < 3; i++) {
            const unsigned char *text = sqlite3_column_text(select, i);
            texts[i] = text ? (const char *)text : "";
        }
        if (cxr_api_ledger_add(ledger, texts[0], texts[1], texts[2]) != CXR_OK)
            status = cxr_err_set(err, CXR_ERR_NOMEM, "jobs: out of memory");
    }
    if (status == CXR_OK && rc != SQLITE_DONE)
        status = fail(db, "ledger", err);
    sqlite3_finalize(select);
    cxr_audit_db_unlock(audit);
    return status;
}

enum cxr_status cxr_jobstore_recent(struct cxr_audit *audit, size_t limit,
                                    char (**ids)[CXR_JOB_ID_LENGTH + 1], size_t *count,
                                    struct cxr_err *err)
{
    *count = 0;
    *ids = calloc(limit ? limit : 1, sizeof **ids);
    if (*ids == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "jobs: out of memory");
    sqlite3 *db = cxr_audit_db_lock(audit);
    sqlite3_stmt *select = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT id FROM jobs ORDER BY rowid DESC LIMIT ?", -1, &select,
                                NULL);
    if (rc == SQLITE_OK)
        sqlite3_bind_int64(select, 1, (sqlite3_int64)limit);
    while (rc == SQLITE_OK && *count < limit && (rc = sqlite3_step(select)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        snprintf((*ids)[(*count)++], CXR_JOB_ID_LENGTH + 1, "%s",
                 (const char *)sqlite3_column_text(select, 0));
    }
    sqlite3_finalize(select);
    enum cxr_status status = rc == SQLITE_DONE || (rc == SQLITE_OK && *count == limit)
                                     ? CXR_OK
                                     : fail(db, "recent jobs", err);
    cxr_audit_db_unlock(audit);
    if (status != CXR_OK) {
        free(*ids);
        *ids = NULL;
        *count = 0;
    }
    return status;
}
