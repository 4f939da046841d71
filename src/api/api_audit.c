/* The audit log: one SQLite row per request (who, what file, which patient, what result, how
 * it ended, how long it took). WAL mode so readers never block the server, synchronous=NORMAL
 * (durable across process crashes; a power loss may lose the last rows, not corrupt the file). */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"

struct cxr_audit {
    sqlite3 *db;
    sqlite3_stmt *insert;
    pthread_mutex_t lock;
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

enum cxr_status cxr_audit_open(const char *path, struct cxr_audit **out, struct cxr_err *err)
{
    struct cxr_audit *audit = calloc(1, sizeof *audit);
    if (audit == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "audit: out of memory");
    pthread_mutex_init(&audit->lock, NULL);
    int rc = sqlite3_open_v2(path, &audit->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(audit->db, 5000);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(audit->db, schema, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(audit->db,
                                "INSERT INTO audit (time, subject, route, input_path,"
                                " sop_instance_uid, patient_id, result, status, duration_ms,"
                                " message) VALUES (?,?,?,?,?,?,?,?,?,?)",
                                -1, &audit->insert, NULL);
    if (rc != SQLITE_OK) {
        enum cxr_status status =
                cxr_err_set(err, CXR_ERR_IO, "SQLite: audit database %s: %s", path,
                            audit->db ? sqlite3_errmsg(audit->db) : sqlite3_errstr(rc));
        cxr_audit_close(audit);
        return status;
    }
    *out = audit;
    return CXR_OK;
}

void cxr_audit_close(struct cxr_audit *audit)
{
    if (audit == NULL)
        return;
    sqlite3_finalize(audit->insert);
    sqlite3_close(audit->db);
    pthread_mutex_destroy(&audit->lock);
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
    int rc = sqlite3_step(insert);
    sqlite3_reset(insert);
    sqlite3_clear_bindings(insert);
    enum cxr_status status = CXR_OK;
    if (rc != SQLITE_DONE)
        status =
                cxr_err_set(err, CXR_ERR_IO, "SQLite: audit insert: %s", sqlite3_errmsg(audit->db));
    pthread_mutex_unlock(&audit->lock);
    return status;
}
