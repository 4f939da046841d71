/* api/ pieces that need no model: the config schema, the audit log (rows survive a reopen, WAL
 * mode), the bounded worker pool, patient ID rules, inline images spliced into the envelope, job
 * summary records stored by earlier releases. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "api/api.h"

static char folder[64];

static int folder_setup(void **state)
{
    (void)state;
    strcpy(folder, "/tmp/cxr-api-XXXXXX");
    return mkdtemp(folder) ? 0 : -1;
}

static int folder_teardown(void **state)
{
    (void)state;
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", folder);
    return system(command) == 0 ? 0 : -1;
}

static void write_text(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
}

static void config_keys_and_defaults(void **state)
{
    (void)state;
    unsetenv("CXRD_JWT_SECRET");
    char path[128];
    snprintf(path, sizeof path, "%s/cxrd.ini", folder);
    write_text(path, "[server]\nport = 9000\nworkers = 3\nqueue_size = 0\nrequest_timeout = 2m\n"
                     "head_timeout = 3s\nmax_connections_per_ip = 0\n"
                     "[limits]\nmax_body = 32k\nmax_header = 8k\nmax_inflight_memory = 2G\n"
                     "[paths]\ninput_root = /data/in\noutput_root = out\n"
                     "[model]\npath = models/m.onnx\n"
                     "[auth]\nsecret = from-file\ntoken_ttl = 7d\n"
                     "[audit]\ndatabase = a.sqlite\nrequired = true\n"
                     "[report]\ninstitution_name = Clinic \xc3\x9c\npng_compression = small\n");
    struct cxr_config config;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_config_load(path, &config, &err), CXR_OK);
    assert_int_equal(config.port, 9000);
    assert_int_equal(config.workers, 3);
    assert_int_equal(config.queue_size, 0);
    assert_int_equal(config.request_timeout_s, 120);
    assert_int_equal(config.limits.max_body_bytes, 32 * 1024);
    assert_int_equal(config.limits.max_header_bytes, 8 * 1024);
    assert_string_equal(config.input_root, "/data/in");
    char *real = realpath(folder, NULL);
    char expected[256];
    snprintf(expected, sizeof expected, "%s/out", real);
    assert_string_equal(config.output_root, expected); /* relative to the config's folder */
    snprintf(expected, sizeof expected, "%s/models/m.onnx", real);
    assert_string_equal(config.model_path, expected);
    assert_string_equal(config.jwt_secret, "from-file");
    assert_int_equal(config.token_ttl_s, 7 * 86400);
    assert_string_equal(config.institution_name, "Clinic \xc3\x9c");
    assert_string_equal(config.jwt_algorithm, "HS256"); /* defaults for keys not given */
    assert_int_equal(config.http_threads, 2);
    assert_int_equal(config.png_compression, CXR_IMAGE_PNG_SMALL);
    assert_int_equal(config.head_timeout_s, 3);
    assert_int_equal(config.max_connections_per_ip, 0);
    assert_int_equal(config.max_inflight_memory, (size_t)2 << 30);
    assert_true(config.audit_required);
    cxr_config_release(&config);
    assert_int_equal(cxr_config_load(NULL, &config, &err), CXR_OK);
    assert_int_equal(config.png_compression, CXR_IMAGE_PNG_FAST); /* the default */
    assert_int_equal(config.head_timeout_s, 10);
    assert_int_equal(config.max_connections_per_ip, 32);
    assert_false(config.audit_required);
    /* Sized to the machine: a quarter of physical memory, at least 256 MiB. */
    size_t quarter = (size_t)sysconf(_SC_PHYS_PAGES) / 4 * (size_t)sysconf(_SC_PAGESIZE);
    assert_int_equal(config.max_inflight_memory, quarter > (256u << 20) ? quarter : 256u << 20);
    cxr_config_release(&config);

    /* The environment wins for the secret. */
    setenv("CXRD_JWT_SECRET", "from-env", 1);
    assert_int_equal(cxr_config_load(path, &config, &err), CXR_OK);
    assert_string_equal(config.jwt_secret, "from-env");
    cxr_config_release(&config);
    unsetenv("CXRD_JWT_SECRET");
    free(real);

    /* Unknown keys and bad values name the key. */
    static const struct {
        const char *text;
        const char *needle;
    } bad[] = {
            {"[server]\nprot = 1\n", "unknown key [server] prot"},
            {"[server]\nport = 70000\n", "[server] port"},
            {"[limits]\nmax_body = lots\n", "[limits] max_body"},
            {"[auth]\nalgorithm = none\n", "algorithm"},
            {"[server]\nlog_level = loud\n", "log_level"},
            {"[nope]\nx = 1\n", "unknown key [nope] x"},
            {"[report]\npng_compression = tiny\n", "[report] png_compression"},
            {"[audit]\nrequired = yes\n", "[audit] required"},
            {"[audit]\nrequired = true\n", "[audit] required = true needs [audit] database"},
            {"[server]\nhead_timeout = 0s\n", "[server] head_timeout"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i].text);
        struct cxr_err bad_err = CXR_ERR_INIT;
        assert_int_not_equal(cxr_config_load(path, &config, &bad_err), CXR_OK);
        if (strstr(bad_err.message, bad[i].needle) == NULL)
            fail_msg("'%s' gave '%s'", bad[i].text, bad_err.message);
    }
}

/* [thresholds]: finding names with spaces as keys (libinih keeps them whole), the settings, and
 * refusals naming the key. */
static void config_thresholds_section(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/cxrd.ini", folder);
    write_text(path, "[thresholds]\nmodel_version = cxr-test-7 (beta)\ncalibrated = 2026-12-03\n"
                     "Tuberculosis = 0.125\nPleural Effusion = 0.12   ; inline comment\n"
                     "Calcification = 1.01\nallow_model_change = false\n");
    struct cxr_config config;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_config_load(path, &config, &err), CXR_OK);
    assert_true(config.thresholds.present);
    assert_string_equal(config.thresholds.model_version, "cxr-test-7 (beta)");
    assert_string_equal(config.thresholds.calibrated, "2026-12-03");
    assert_false(config.thresholds.allow_model_change);
    int effusion = cxr_model_finding_index("Pleural Effusion");
    assert_true(config.thresholds.set[0]);
    assert_true(config.thresholds.value[0] == 0.125);
    assert_true(config.thresholds.set[effusion]);
    assert_true(config.thresholds.value[effusion] == 0.12);
    assert_true(config.thresholds.value[CXR_FINDING_COUNT - 1] == 1.01);
    assert_false(config.thresholds.set[1]);
    cxr_config_release(&config);

    /* A date and time, as cxrd calibrate writes it. */
    write_text(path, "[thresholds]\nmodel_version = a\ncalibrated = 2026-12-03 23:59\n");
    assert_int_equal(cxr_config_load(path, &config, &err), CXR_OK);
    assert_string_equal(config.thresholds.calibrated, "2026-12-03 23:59");
    cxr_config_release(&config);

    /* No section: nothing set. */
    write_text(path, "[server]\nport = 9000\n");
    assert_int_equal(cxr_config_load(path, &config, &err), CXR_OK);
    assert_false(config.thresholds.present);
    cxr_config_release(&config);

    static const struct {
        const char *text;
        const char *needle;
    } bad[] = {
            {"[thresholds]\nTuberculosis = 0.3\n", "model_version is missing"},
            {"[thresholds]\nmodel_version = a\nTuberculoses = 0.3\n", "[thresholds] Tuberculoses"},
            {"[thresholds]\nmodel_version = a\npleural effusion = 0.3\n", "unknown key"},
            {"[thresholds]\nmodel_version = a\nTuberculosis = -0.1\n", "not a threshold"},
            {"[thresholds]\nmodel_version = a\nTuberculosis = 0.3x\n", "not a threshold"},
            {"[thresholds]\nmodel_version = a\nTuberculosis = nan\n", "not a threshold"},
            {"[thresholds]\nmodel_version = a\nTuberculosis =\n", "not a threshold"},
            {"[thresholds]\nmodel_version = a\ncalibrated = 3 Dec 2026\n", "YYYY-MM-DD"},
            {"[thresholds]\nmodel_version = a\ncalibrated = 2026-12-03 24:00\n", "HH:MM"},
            {"[thresholds]\nmodel_version = a\ncalibrated = 2026-12-03T14:05\n", "HH:MM"},
            {"[thresholds]\nmodel_version = a\ncalibrated = 2026-12-03 14:5\n", "HH:MM"},
            {"[thresholds]\nmodel_version = a\ncalibrated = 2026-13-03\n", "YYYY-MM-DD"},
            {"[thresholds]\nmodel_version = a\nallow_model_change = perhaps\n", "true or false"},
            {"[thresholds]\nmodel_version =\n", "model_version"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i].text);
        struct cxr_err bad_err = CXR_ERR_INIT;
        assert_int_not_equal(cxr_config_load(path, &config, &bad_err), CXR_OK);
        if (strstr(bad_err.message, bad[i].needle) == NULL)
            fail_msg("'%s' gave '%s'", bad[i].text, bad_err.message);
    }
}

static int count_rows(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *statement = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM audit", -1, &statement, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(statement), SQLITE_ROW);
    int rows = sqlite3_column_int(statement, 0);
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return rows;
}

static void audit_rows_survive_reopen(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/audit.sqlite", folder);
    struct cxr_audit *audit = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_audit_open(path, &audit, &err), CXR_OK);
    struct cxr_audit_record record = {
            .subject = "pacs",
            .route = "single_inference",
            .input_path = "/data/in/a.dcm",
            .sop_instance_uid = "1.2.3",
            .patient_id = "PAT001",
            .result = "Normal",
            .status = 200,
            .duration_ms = 123.5,
    };
    assert_int_equal(cxr_audit_write(audit, &record, &err), CXR_OK);
    record.status = 400;
    record.result = NULL;
    assert_int_equal(cxr_audit_write(audit, &record, &err), CXR_OK);
    cxr_audit_close(audit);
    assert_int_equal(count_rows(path), 2);

    audit = NULL;
    assert_int_equal(cxr_audit_open(path, &audit, &err), CXR_OK);
    assert_int_equal(cxr_audit_write(audit, &record, &err), CXR_OK);
    cxr_audit_close(audit);
    assert_int_equal(count_rows(path), 3);

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *statement = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &statement, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(statement), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(statement, 0), "wal");
    sqlite3_finalize(statement);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT subject, input_path, sop_instance_uid, "
                                        "patient_id, result, status, duration_ms, time "
                                        "FROM audit ORDER BY id LIMIT 1",
                                        -1, &statement, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(statement), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(statement, 0), "pacs");
    assert_string_equal((const char *)sqlite3_column_text(statement, 1), "/data/in/a.dcm");
    assert_string_equal((const char *)sqlite3_column_text(statement, 2), "1.2.3");
    assert_string_equal((const char *)sqlite3_column_text(statement, 3), "PAT001");
    assert_string_equal((const char *)sqlite3_column_text(statement, 4), "Normal");
    assert_int_equal(sqlite3_column_int(statement, 5), 200);
    assert_true(sqlite3_column_double(statement, 6) == 123.5);
    assert_int_equal(strlen((const char *)sqlite3_column_text(statement, 7)), 24);
    sqlite3_finalize(statement);
    sqlite3_close(db);

    struct cxr_err bad = CXR_ERR_INIT;
    assert_int_equal(cxr_audit_open("/nonexistent/dir/audit.sqlite", &audit, &bad), CXR_ERR_IO);
}

/* A database of an earlier release (no predictions or thresholds column) gains both on open;
 * its rows keep '' and new rows record which thresholds a result used. */
/* A database deleted or renamed over under an open log is noticed (st_dev/st_ino) and the path
 * reopened; a path that cannot hold a database counts failures until it can again. */
static void audit_follows_replaced_file(void **state)
{
    (void)state;
    char path[128], moved[160], wal[160], shm[160];
    snprintf(path, sizeof path, "%s/audit.sqlite", folder);
    snprintf(moved, sizeof moved, "%s/moved.sqlite", folder);
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    struct cxr_audit *audit = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_audit_open(path, &audit, &err), CXR_OK);
    struct cxr_audit_record record = {.route = "single_inference", .status = 400};
    assert_int_equal(cxr_audit_write(audit, &record, &err), CXR_OK);
    assert_int_equal(count_rows(path), 1);

    /* Moved away (log rotation by rename): new rows go to a fresh file at the path. */
    assert_int_equal(rename(path, moved), 0);
    unlink(wal);
    unlink(shm);
    assert_int_equal(cxr_audit_write(audit, &record, &err), CXR_OK);
    assert_int_equal(count_rows(path), 1);

    /* Deleted, and a folder put in its place: the row is lost and counted. */
    unlink(path);
    unlink(wal);
    unlink(shm);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(cxr_audit_failures(audit), 0);
    struct cxr_err failed = CXR_ERR_INIT;
    assert_int_not_equal(cxr_audit_write(audit, &record, &failed), CXR_OK);
    assert_non_null(strstr(failed.message, "audit database"));
    assert_int_equal(cxr_audit_failures(audit), 1);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(cxr_audit_write(audit, &record, &err), CXR_OK);
    assert_int_equal(cxr_audit_failures(audit), 1);
    assert_int_equal(count_rows(path), 1);
    cxr_audit_close(audit);
    assert_int_equal(cxr_audit_failures(NULL), 0);
    unlink(moved);
}

static void audit_migrates_older_schema(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/old.sqlite", folder);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE audit (id INTEGER PRIMARY KEY, time TEXT NOT "
                                  "NULL, subject TEXT NOT NULL, route TEXT NOT NULL, input_path "
                                  "TEXT NOT NULL, sop_instance_uid TEXT NOT NULL, patient_id "
                                  "TEXT NOT NULL, result TEXT NOT NULL, status INTEGER NOT NULL, "
                                  "duration_ms REAL NOT NULL, message TEXT NOT NULL);"
                                  "INSERT INTO audit VALUES (1, 't', 's', 'infer', 'p', '1.2', "
                                  "'P', 'Normal', 200, 1.0, '');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    struct cxr_audit *audit = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_audit_open(path, &audit, &err), CXR_OK);
    struct cxr_audit_record record = {.route = "infer",
                                      .result = "TB Presumptive",
                                      .status = 200,
                                      .thresholds = "site calibration of 2026-12-03"};
    assert_int_equal(cxr_audit_write(audit, &record, &err), CXR_OK);
    cxr_audit_close(audit);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *statement = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT thresholds, predictions FROM audit ORDER BY id",
                                        -1, &statement, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(statement), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(statement, 0), "");
    assert_int_equal(sqlite3_step(statement), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(statement, 0),
                        "site calibration of 2026-12-03");
    sqlite3_finalize(statement);
    sqlite3_close(db);
}

struct gate {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int open;
    int ran;
};

static void gated_task(void *context)
{
    struct gate *gate = context;
    pthread_mutex_lock(&gate->lock);
    while (!gate->open)
        pthread_cond_wait(&gate->changed, &gate->lock);
    gate->ran++;
    pthread_mutex_unlock(&gate->lock);
}

static void pool_is_bounded_and_drains(void **state)
{
    (void)state;
    struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    struct cxr_api_pool *pool = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_api_pool_create(2, 3, &pool, &err), CXR_OK);
    /* 2 running + 3 waiting fit; the sixth is refused unless forced. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(cxr_api_pool_submit(pool, gated_task, &gate, false), CXR_OK);
    assert_int_equal(cxr_api_pool_submit(pool, gated_task, &gate, false), CXR_ERR_LIMIT);
    assert_int_equal(cxr_api_pool_submit(pool, gated_task, &gate, true), CXR_OK);
    uint32_t queued = 0, running = 0;
    for (int tries = 0; tries < 200 && running < 2; tries++) {
        cxr_api_pool_depth(pool, &queued, &running);
        usleep(5000);
    }
    assert_int_equal(running, 2);
    assert_int_equal(queued, 4);
    pthread_mutex_lock(&gate.lock);
    gate.open = 1;
    pthread_cond_broadcast(&gate.changed);
    pthread_mutex_unlock(&gate.lock);
    cxr_api_pool_destroy(pool); /* finishes every queued task */
    assert_int_equal(gate.ran, 6);
}

static void patient_id_rules(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        bool ok;
    } cases[] = {
            {"PAT001", true},
            {"a.b-c_d", true},
            {"", false},
            {".", false},
            {"..", false},
            {".hidden", false},
            {"a/b", false},
            {"a b", false},
            {"PAT\\1", false},
            {"Ünï", false},
            {"x;rm -rf", false},
            {"1234567890", true},
            {"0123456789012345678901234567890123456789012345678901234567890123", true},
            {"01234567890123456789012345678901234567890123456789012345678901234", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cxr_api_patient_id_valid(cases[i].id, strlen(cases[i].id)) != cases[i].ok)
            fail_msg("patient id '%s'", cases[i].id);
    }
    assert_false(cxr_api_patient_id_valid("PAT\0001", 6)); /* embedded NUL */
}

/* Inline PNGs replace only their own placeholders, byte for byte as base64; a placeholder text
 * in another value (a patient name can hold anything) stays as it is. */
static void inline_images_spliced_into_envelope(void **state)
{
    (void)state;
    struct cxr_api_inline_images images = {CXR_BUF_INIT(0), CXR_BUF_INIT(0)};
    assert_int_equal(cxr_buf_append(&images.source_png, "\x89PNG source", 11), CXR_OK);
    assert_int_equal(cxr_buf_append(&images.heatmap_png, "heat\0map", 8), CXR_OK);
    json_t *data = json_pack("{s:s,s:s,s:{s:s}}", "source_image", CXR_API_INLINE_SOURCE, "heatmap",
                             CXR_API_INLINE_HEATMAP, "metadata", "patient_name",
                             CXR_API_INLINE_SOURCE "\"source_image\":\"" CXR_API_INLINE_SOURCE);
    struct cxr_api_response response = {0};
    assert_int_equal(cxr_api_envelope_inline(200, "Success", data, "ok", &images, &response),
                     CXR_OK);
    json_t *parsed = json_loads(response.body, 0, NULL);
    assert_non_null(parsed);
    json_t *got = json_object_get(parsed, "Data");
    assert_string_equal(json_string_value(json_object_get(got, "source_image")),
                        "iVBORyBzb3VyY2U=");
    assert_string_equal(json_string_value(json_object_get(got, "heatmap")), "aGVhdABtYXA=");
    assert_string_equal(
            json_string_value(json_object_get(json_object_get(got, "metadata"), "patient_name")),
            CXR_API_INLINE_SOURCE "\"source_image\":\"" CXR_API_INLINE_SOURCE);
    json_decref(parsed);
    cxr_api_response_release(&response);
    cxr_buf_release(&images.source_png);
    cxr_buf_release(&images.heatmap_png);
}

/* Summary records stored by a job's files come back in this release's form: an earlier
 * release's text field that a spreadsheet would run gains the apostrophe; a record of this
 * release, numbers and empty fields stay byte for byte; a stored text that is no single
 * record is kept as it was. */
static void summary_rows_stored_by_earlier_releases(void **state)
{
    (void)state;
    static const struct {
        const char *stored, *expected;
    } cases[] = {
            {"/in/a.dcm,-A1,1.2.3,TB Presumptive,0.5,true,,\n",
             "/in/a.dcm,'-A1,1.2.3,TB Presumptive,0.5,true,,\n"},
            {"/in/b.dcm,P,\"=HYPERLINK(\"\"x\"\",\"\"y\"\")\",Normal,1e-05,false\n",
             "/in/b.dcm,P,\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\",Normal,1e-05,false\n"},
            {"/in/c.dcm,'-A1,@x,,,,/out/'-A1,\n", "/in/c.dcm,'-A1,'@x,,,,/out/'-A1,\n"},
            {"\"/in/d, e.dcm\",'+B,'=C,Abnormal,0.25,true,/out/'+B,\"x\ny\"\n",
             "\"/in/d, e.dcm\",'+B,'=C,Abnormal,0.25,true,/out/'+B,\"x\ny\"\n"},
            {"", ""},
            /* A whole record of a release before model_version and thresholds. */
            {"/in/"
             "e.dcm,-E,1.2.5,Normal,0.1,false,0.1,false,0.1,false,0.1,false,0.1,false,0.1,false,"
             "0.1,false,0.1,false,0.1,false,0.1,false,0.1,false,/out/-E,\n",
             "/in/e.dcm,'-E,1.2.5,Normal,0.1,false,0.1,false,0.1,false,0.1,false,0.1,false,0.1,"
             "false,0.1,false,0.1,false,0.1,false,0.1,false,0.1,false,/out/-E,,,\n"},
            {"a,\"unclosed\n", "a,\"unclosed\n"},
            {"a,b\nc,d\n", "a,b\nc,d\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *row = cxr_api_summary_row_stored(cases[i].stored);
        assert_non_null(row);
        assert_string_equal(row, cases[i].expected);
        free(row);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(config_keys_and_defaults, folder_setup,
                                            folder_teardown),
            cmocka_unit_test_setup_teardown(config_thresholds_section, folder_setup,
                                            folder_teardown),
            cmocka_unit_test_setup_teardown(audit_migrates_older_schema, folder_setup,
                                            folder_teardown),
            cmocka_unit_test_setup_teardown(audit_follows_replaced_file, folder_setup,
                                            folder_teardown),
            cmocka_unit_test_setup_teardown(audit_rows_survive_reopen, folder_setup,
                                            folder_teardown),
            cmocka_unit_test(pool_is_bounded_and_drains),
            cmocka_unit_test(patient_id_rules),
            cmocka_unit_test(inline_images_spliced_into_envelope),
            cmocka_unit_test(summary_rows_stored_by_earlier_releases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
