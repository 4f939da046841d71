/* The audit log: one SQLite row per request (who, what file, which patient, what result, how
 * it ended, how long it took, the predictions JSON of every result, so a result whose files
 * a later study of the same patient replaced can still be read back by its SOP Instance UID,
 * and which thresholds it used: the model's own or a site calibration of a given date). WAL
 * mode so readers never block the server, synchronous=NORMAL (durable across process crashes; a
 * power loss may lose the last rows, not corrupt the file). Before each row the file at the
 * path is compared with the one open (st_dev, st_ino): a database deleted or replaced under the
 * server is reopened, so rows never go to an unlinked file; failures are counted. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/api.h"

struct cxr_audit {
    sqlite3 *db; /* NULL after a failed reopen: the next write tries again */
    sqlite3_stmt *insert;
    sqlite3_stmt *job_file; /* marks a job's file done or skipped (cxr_audit_record) */
    pthread_mutex_t lock;
    char *path;
    bool read_only; /* cxr_audit_open_read_only: no schema, no writes */
    dev_t device;   /* identity of the file open, to notice a replaced or deleted one */
    ino_t inode;
    atomic_ullong failures;
};

static const char schema[] = "PRAGMA journal_mode=WAL;"
                             "PRAGMA synchronous=NORMAL;"
                             "CREATE TABLE IF NOT EXISTS audit ("
                             " id INTEGER PRIMARY KEY,"
                             " time TEXT NOT NULL,"
                             " subject TEXT NOT NULL,"
                             " route TEXT NOT NULL,"
                             " input_path TEXT NOT NULL,"
                             " sop_instance_uid TEXT NOT NULL,"
                             " patient_id TEXT NOT NULL,"
                             " result TEXT NOT NULL,"
                             " status INTEGER NOT NULL,"
                             " duration_ms REAL NOT NULL,"
                             " message TEXT NOT NULL);";

/* Added after the first release: databases of that release gain the column on open. */
static const char predictions_column[] = "ALTER TABLE audit ADD COLUMN predictions TEXT NOT NULL"
                                         " DEFAULT '';";
static const char thresholds_column[] = "ALTER TABLE audit ADD COLUMN thresholds TEXT NOT NULL"
                                        " DEFAULT '';";
static const char request_id_column[] = "ALTER TABLE audit ADD COLUMN request_id TEXT NOT NULL"
                                        " DEFAULT '';";
static const char output_folder_column[] = "ALTER TABLE audit ADD COLUMN output_folder TEXT NOT"
                                           " NULL DEFAULT '';";
static const char job_id_column[] = "ALTER TABLE audit ADD COLUMN job_id TEXT NOT NULL"
                                    " DEFAULT '';";
/* Lookups by SOP Instance UID (cxrd results), by time (the worklist's day) and by job (a job's
 * rows), and the worklist's list of stored results in its order (result, then newest first):
 * without them every page of the worklist read the whole table (1.8 s for a year of 1,000,000
 * results, holding the lock every audit write waits for). Created on open, so older databases
 * gain them once. */
static const char indexes[] = "CREATE INDEX IF NOT EXISTS audit_sop ON audit (sop_instance_uid);"
                              "CREATE INDEX IF NOT EXISTS audit_time ON audit (time);"
                              "CREATE INDEX IF NOT EXISTS audit_job ON audit (job_id);"
                              "CREATE INDEX IF NOT EXISTS audit_listed ON audit (result, id)"
                              " WHERE predictions != '' AND status = 200;";
/* The findings present in each stored result, for the worklist's finding filter: without it,
 * finding= read every row's predictions JSON (8 s for a year of 1,000,000 results) under the
 * lock that audit writes wait for. Triggers keep it, so that every writer of the file keeps it
 * whole: an older release after a downgrade, or the sqlite3 shell pruning old rows (deleted by
 * the primary key, with the row's own findings). It is filled from the rows stored before once,
 * when it is made. JSON paths are read from the whole document, never from an element's text,
 * and a document that does not parse counts as '{}', so an odd row is left out instead of
 * failing a write. */
static const char findings_table[] =
        "CREATE TABLE audit_findings (finding TEXT NOT NULL, id INTEGER NOT NULL,"
        " PRIMARY KEY (finding, id)) WITHOUT ROWID;"
        "CREATE TRIGGER audit_findings_insert AFTER INSERT ON audit"
        " WHEN new.predictions != '' AND new.status = 200 AND json_valid(new.predictions)"
        " BEGIN INSERT OR IGNORE INTO audit_findings (finding, id)"
        " SELECT json_extract(new.predictions, f.fullkey || '.name'), new.id"
        " FROM json_each(new.predictions, '$.findings') AS f"
        " WHERE json_extract(new.predictions, f.fullkey || '.presence') = 1"
        " AND json_type(new.predictions, f.fullkey || '.name') = 'text'; END;"
        "CREATE TRIGGER audit_findings_delete AFTER DELETE ON audit"
        " WHEN json_valid(old.predictions)"
        " BEGIN DELETE FROM audit_findings WHERE id = old.id AND finding IN"
        " (SELECT json_extract(old.predictions, f.fullkey || '.name')"
        " FROM json_each(old.predictions, '$.findings') AS f); END;"
        "INSERT OR IGNORE INTO audit_findings (finding, id)"
        " SELECT json_extract(a.doc, f.fullkey || '.name'), a.id"
        " FROM (SELECT id, CASE WHEN json_valid(predictions) THEN predictions ELSE '{}' END AS doc"
        " FROM audit WHERE predictions != '' AND status = 200) AS a,"
        " json_each(a.doc, '$.findings') AS f"
        " WHERE json_extract(a.doc, f.fullkey || '.presence') = 1"
        " AND json_type(a.doc, f.fullkey || '.name') = 'text';";
/* Async bulk jobs (api_jobstore.c): one row per job, one per input file, listed when the job is
 * created, so a restarted server knows which files are left. */
static const char job_tables[] = "CREATE TABLE IF NOT EXISTS jobs ("
                                 " id TEXT PRIMARY KEY,"
                                 " state TEXT NOT NULL,"
                                 " subject TEXT NOT NULL,"
                                 " request_id TEXT NOT NULL,"
                                 " input_folder TEXT NOT NULL,"
                                 " output_folder TEXT NOT NULL,"
                                 " output_shown TEXT NOT NULL,"
                                 " summary TEXT NOT NULL,"
                                 " total INTEGER NOT NULL,"
                                 " created TEXT NOT NULL,"
                                 " started TEXT NOT NULL DEFAULT '',"
                                 " finished TEXT NOT NULL DEFAULT '',"
                                 " message TEXT NOT NULL DEFAULT '');"
                                 "CREATE TABLE IF NOT EXISTS job_files ("
                                 " job_id TEXT NOT NULL,"
                                 " seq INTEGER NOT NULL,"
                                 " path TEXT NOT NULL,"
                                 " state TEXT NOT NULL DEFAULT 'pending',"
                                 " result TEXT NOT NULL DEFAULT '',"
                                 " csv_row TEXT NOT NULL DEFAULT '',"
                                 " PRIMARY KEY (job_id, seq)) WITHOUT ROWID;";

static bool has_column(sqlite3 *db, const char *column)
{
    sqlite3_stmt *statement = NULL;
    bool found = false;
    if (sqlite3_prepare_v2(db, "PRAGMA table_info(audit)", -1, &statement, NULL) != SQLITE_OK)
        return false;
    while (sqlite3_step(statement) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(statement, 1);
        if (name && strcmp((const char *)name, column) == 0)
            found = true;
    }
    sqlite3_finalize(statement);
    return found;
}

/* Whether the schema holds this table or index. */
static bool in_schema(sqlite3 *db, const char *type, const char *name)
{
    sqlite3_stmt *statement = NULL;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", -1,
                           &statement, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(statement, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(statement, 2, name, -1, SQLITE_STATIC);
    bool found = sqlite3_step(statement) == SQLITE_ROW;
    sqlite3_finalize(statement);
    return found;
}

/* Says so when the worklist's index or findings table is about to be made for stored rows: the
 * first start after an upgrade takes seconds per million of them, and would look hung. */
static void say_if_indexing(sqlite3 *db)
{
    if (in_schema(db, "index", "audit_listed") && in_schema(db, "table", "audit_findings"))
        return;
    sqlite3_stmt *statement = NULL;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM audit", -1, &statement, NULL) == SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_ROW && sqlite3_column_int64(statement, 0) > 0)
        cxr_log(CXR_LOG_INFO, "audit: indexing %lld stored rows for the worklist (once)",
                (long long)sqlite3_column_int64(statement, 0));
    sqlite3_finalize(statement);
}

/* Runs sql whole or not at all: a table filled from the stored rows must not stay half-filled
 * (it is made only when missing). */
static int exec_in_transaction(sqlite3 *db, const char *sql)
{
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Closes the handle without a checkpoint: the WAL file at the path may belong to another
 * database by now, and closing must not delete it. */
static void close_handle(struct cxr_audit *audit)
{
    sqlite3_finalize(audit->insert);
    sqlite3_finalize(audit->job_file);
    audit->insert = NULL;
    audit->job_file = NULL;
    if (audit->db) {
        sqlite3_db_config(audit->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        int persist = 1;
        sqlite3_file_control(audit->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    }
    sqlite3_close(audit->db);
    audit->db = NULL;
}

/* Creates the tables, adds the columns of later releases and prepares the writes. */
static int prepare_for_writing(struct cxr_audit *audit)
{
    int rc = sqlite3_exec(audit->db, schema, NULL, NULL, NULL);
    if (rc == SQLITE_OK && !has_column(audit->db, "predictions"))
        rc = sqlite3_exec(audit->db, predictions_column, NULL, NULL, NULL);
    if (rc == SQLITE_OK && !has_column(audit->db, "thresholds"))
        rc = sqlite3_exec(audit->db, thresholds_column, NULL, NULL, NULL);
    if (rc == SQLITE_OK && !has_column(audit->db, "request_id"))
        rc = sqlite3_exec(audit->db, request_id_column, NULL, NULL, NULL);
    if (rc == SQLITE_OK && !has_column(audit->db, "output_folder"))
        rc = sqlite3_exec(audit->db, output_folder_column, NULL, NULL, NULL);
    if (rc == SQLITE_OK && !has_column(audit->db, "job_id"))
        rc = sqlite3_exec(audit->db, job_id_column, NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        say_if_indexing(audit->db);
        rc = sqlite3_exec(audit->db, indexes, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(audit->db, job_tables, NULL, NULL, NULL);
    if (rc == SQLITE_OK && !in_schema(audit->db, "table", "audit_findings"))
        rc = exec_in_transaction(audit->db, findings_table);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(audit->db,
                                "INSERT INTO audit (time, subject, route, input_path,"
                                " sop_instance_uid, patient_id, result, status, duration_ms,"
                                " message, predictions, thresholds, request_id, output_folder,"
                                " job_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                -1, &audit->insert, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(audit->db,
                                "UPDATE job_files SET state = ?, result = ?, csv_row = ?"
                                " WHERE job_id = ? AND seq = ?",
                                -1, &audit->job_file, NULL);
    return rc;
}

static enum cxr_status open_handle(struct cxr_audit *audit, struct cxr_err *err)
{
    const char *path = audit->path;
    int flags =
            audit->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &audit->db, flags | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(audit->db, 5000);
    bool first_release = false; /* an audit table without stored results */
    if (rc == SQLITE_OK && audit->read_only) {
        first_release =
                in_schema(audit->db, "table", "audit") && !has_column(audit->db, "predictions");
        rc = has_column(audit->db, "predictions") ? SQLITE_OK : SQLITE_NOTADB;
    } else if (rc == SQLITE_OK) {
        rc = prepare_for_writing(audit);
    }
    struct stat info;
    if (rc == SQLITE_OK && stat(path, &info) != 0)
        rc = SQLITE_CANTOPEN;
    if (rc != SQLITE_OK) {
        enum cxr_status status;
        if (first_release)
            status = cxr_err_set(err, CXR_ERR_IO,
                                 "%s was written by cxrd's first release, which kept no results"
                                 " (only who asked for what)",
                                 path);
        else if (rc == SQLITE_NOTADB && audit->read_only)
            status = cxr_err_set(err, CXR_ERR_IO,
                                 "%s is not a cxrd audit database (no audit table with"
                                 " predictions)",
                                 path);
        else
            status = cxr_err_set(err, CXR_ERR_IO, "SQLite: audit database %s: %s", path,
                                 audit->db ? sqlite3_errmsg(audit->db) : sqlite3_errstr(rc));
        sqlite3_finalize(audit->insert);
        sqlite3_finalize(audit->job_file);
        audit->insert = NULL;
        audit->job_file = NULL;
        sqlite3_close(audit->db);
        audit->db = NULL;
        return status;
    }
    audit->device = info.st_dev;
    audit->inode = info.st_ino;
    return CXR_OK;
}

static enum cxr_status open_audit(const char *path, bool read_only, struct cxr_audit **out,
                                  struct cxr_err *err)
{
    struct cxr_audit *audit = calloc(1, sizeof *audit);
    if (audit == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "audit: out of memory");
    audit->read_only = read_only;
    pthread_mutex_init(&audit->lock, NULL);
    atomic_init(&audit->failures, 0);
    audit->path = strdup(path);
    enum cxr_status status = audit->path ? open_handle(audit, err)
                                         : cxr_err_set(err, CXR_ERR_NOMEM, "audit: out of memory");
    if (status != CXR_OK) {
        cxr_audit_close(audit);
        return status;
    }
    *out = audit;
    return CXR_OK;
}

enum cxr_status cxr_audit_open(const char *path, struct cxr_audit **out, struct cxr_err *err)
{
    return open_audit(path, false, out, err);
}

enum cxr_status cxr_audit_open_read_only(const char *path, struct cxr_audit **out,
                                         struct cxr_err *err)
{
    return open_audit(path, true, out, err);
}

/* The file at the path must still be the one open; otherwise (deleted, renamed over, moved
 * away) the handle is reopened at the path, creating a fresh database when needed. Called
 * under the lock. */
static enum cxr_status ensure_current(struct cxr_audit *audit, struct cxr_err *err)
{
    struct stat info;
    bool same = audit->db != NULL && stat(audit->path, &info) == 0 &&
                info.st_dev == audit->device && info.st_ino == audit->inode;
    if (same)
        return CXR_OK;
    if (audit->db)
        cxr_log(CXR_LOG_WARN, "audit: database %s was deleted or replaced; reopening it",
                audit->path);
    /* The old handle stays until a new one is open: the job store's queries need a handle,
     * even a stale one, when the path cannot be opened now. */
    struct cxr_audit stale = {
            .db = audit->db, .insert = audit->insert, .job_file = audit->job_file};
    audit->db = NULL;
    audit->insert = NULL;
    audit->job_file = NULL;
    enum cxr_status status = open_handle(audit, err);
    if (status != CXR_OK && stale.db != NULL) {
        audit->db = stale.db;
        audit->insert = stale.insert;
        audit->job_file = stale.job_file;
        return status;
    }
    close_handle(&stale);
    return status;
}

unsigned long long cxr_audit_failures(const struct cxr_audit *audit)
{
    return audit ? atomic_load(&((struct cxr_audit *)audit)->failures) : 0;
}

void cxr_audit_close(struct cxr_audit *audit)
{
    if (audit == NULL)
        return;
    sqlite3_finalize(audit->insert);
    sqlite3_finalize(audit->job_file);
    sqlite3_close(audit->db);
    pthread_mutex_destroy(&audit->lock);
    free(audit->path);
    free(audit);
}

static void bind_text(sqlite3_stmt *statement, int index, const char *text)
{
    sqlite3_bind_text(statement, index, text ? text : "", -1, SQLITE_TRANSIENT);
}

enum cxr_status cxr_audit_write(struct cxr_audit *audit, const struct cxr_audit_record *record,
                                struct cxr_err *err)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    char time_text[40];
    size_t used = strftime(time_text, sizeof time_text, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(time_text + used, sizeof time_text - used, ".%03ldZ", now.tv_nsec / 1000000);

    pthread_mutex_lock(&audit->lock);
    enum cxr_status status = ensure_current(audit, err);
    if (status != CXR_OK) {
        atomic_fetch_add(&audit->failures, 1);
        pthread_mutex_unlock(&audit->lock);
        return status;
    }
    sqlite3_stmt *insert = audit->insert;
    bind_text(insert, 1, time_text);
    bind_text(insert, 2, record->subject);
    bind_text(insert, 3, record->route);
    bind_text(insert, 4, record->input_path);
    bind_text(insert, 5, record->sop_instance_uid);
    bind_text(insert, 6, record->patient_id);
    bind_text(insert, 7, record->result);
    sqlite3_bind_int(insert, 8, record->status);
    sqlite3_bind_double(insert, 9, record->duration_ms);
    bind_text(insert, 10, record->message);
    bind_text(insert, 11, record->predictions);
    bind_text(insert, 12, record->thresholds);
    bind_text(insert, 13, record->request_id);
    bind_text(insert, 14, record->output_folder);
    bind_text(insert, 15, record->job_id);
    bool job_file = record->job_id && record->job_id[0] && record->job_file_state;
    int rc = job_file ? sqlite3_exec(audit->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = sqlite3_step(insert);
    sqlite3_reset(insert);
    sqlite3_clear_bindings(insert);
    if (job_file && rc == SQLITE_DONE) {
        sqlite3_stmt *update = audit->job_file;
        bind_text(update, 1, record->job_file_state);
        bind_text(update, 2, record->result);
        bind_text(update, 3, record->job_file_csv_row);
        bind_text(update, 4, record->job_id);
        sqlite3_bind_int64(update, 5, record->job_file_seq);
        rc = sqlite3_step(update);
        sqlite3_reset(update);
        sqlite3_clear_bindings(update);
        if (rc == SQLITE_DONE)
            rc = sqlite3_exec(audit->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? SQLITE_DONE
                                                                                  : SQLITE_ERROR;
    }
    if (rc != SQLITE_DONE) {
        status =
                cxr_err_set(err, CXR_ERR_IO, "SQLite: audit insert: %s", sqlite3_errmsg(audit->db));
        atomic_fetch_add(&audit->failures, 1);
        if (job_file && !sqlite3_get_autocommit(audit->db))
            sqlite3_exec(audit->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&audit->lock);
    return status;
}

enum cxr_status cxr_audit_find_sop(struct cxr_audit *audit, const char *sop_instance_uid,
                                   cxr_audit_row_visit visit, void *context, size_t *count,
                                   struct cxr_err *err)
{
    *count = 0;
    pthread_mutex_lock(&audit->lock);
    if (ensure_current(audit, err) != CXR_OK) {
        pthread_mutex_unlock(&audit->lock);
        return CXR_ERR_IO;
    }
    sqlite3_stmt *statement = NULL;
    int rc = sqlite3_prepare_v2(audit->db,
                                "SELECT time, route, input_path, patient_id, result, predictions"
                                " FROM audit WHERE sop_instance_uid = ? AND predictions != ''"
                                " ORDER BY id",
                                -1, &statement, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(statement, 1, sop_instance_uid, -1, SQLITE_TRANSIENT);
    while (rc == SQLITE_OK && (rc = sqlite3_step(statement)) == SQLITE_ROW) {
        const char *columns[6];
        for (int i = 0; i < 6; i++) {
            const unsigned char *text = sqlite3_column_text(statement, i);
            columns[i] = text ? (const char *)text : "";
        }
        struct cxr_audit_result_row row = {
                .time = columns[0],
                .route = columns[1],
                .input_path = columns[2],
                .patient_id = columns[3],
                .result = columns[4],
                .predictions = columns[5],
        };
        visit(&row, context);
        (*count)++;
        rc = SQLITE_OK;
    }
    enum cxr_status status = CXR_OK;
    if (rc != SQLITE_DONE)
        status =
                cxr_err_set(err, CXR_ERR_IO, "SQLite: audit lookup: %s", sqlite3_errmsg(audit->db));
    sqlite3_finalize(statement);
    pthread_mutex_unlock(&audit->lock);
    return status;
}

sqlite3 *cxr_audit_db_lock(struct cxr_audit *audit)
{
    pthread_mutex_lock(&audit->lock);
    struct cxr_err ignored = CXR_ERR_INIT;
    ensure_current(audit, &ignored); /* on failure the stale handle is kept */
    return audit->db;
}

void cxr_audit_db_unlock(struct cxr_audit *audit)
{
    pthread_mutex_unlock(&audit->lock);
}
