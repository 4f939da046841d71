/* The pieces of bulk jobs that need no model: the run summary's name and records (read back by
 * the CSV reader, quoting included), and the job store in the audit database (a file's audit
 * row and its done mark land together; pending files, counts and summary rows). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "api/api_jobstore.h"

static char folder[64];

static int folder_setup(void **state)
{
    (void)state;
    strcpy(folder, "/tmp/cxr-jobs-XXXXXX");
    return mkdtemp(folder) ? 0 : -1;
}

static int folder_teardown(void **state)
{
    (void)state;
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", folder);
    return system(command) == 0 ? 0 : -1;
}

static void summary_name_is_utc_with_milliseconds(void **state)
{
    (void)state;
    struct timespec when = {.tv_sec = 1796302512, .tv_nsec = 345678901}; /* 2026-12-03 */
    char name[64];
    cxr_api_summary_name(&when, name, sizeof name);
    assert_string_equal(name, "cxrd_run_20261203T125512.345Z.csv");
}

/* A result as the pipeline leaves it: Data with the 11 findings. */
static void fake_result(struct cxr_api_result *result)
{
    memset(result, 0, sizeof *result);
    result->status = 200;
    snprintf(result->patient_id, sizeof result->patient_id, "PAT001");
    result->sop_instance_uid = strdup("1.2.3");
    snprintf(result->result, sizeof result->result, "TB Presumptive");
    json_t *findings = json_array();
    for (int f = 0; f < CXR_FINDING_COUNT; f++)
        json_array_append_new(findings,
                              json_pack("{s:s, s:b, s:f}", "name", cxr_model_finding_names[f],
                                        "presence", f == 0, "confidence", 0.1234567 + f / 100.0));
    result->data = json_pack("{s:s, s:o, s:{s:s}}", "result", "TB Presumptive", "findings",
                             findings, "metadata", "model_version", "cxr-test-1.0");
    snprintf(result->thresholds, sizeof result->thresholds, "site calibration of 2026-12-03");
}

static void summary_records_read_back(void **state)
{
    (void)state;
    struct cxr_api_result result;
    fake_result(&result);
    /* A path that needs quoting: comma, quote, line break, leading blank. */
    char *analysed = cxr_api_summary_row(" /in/a,\"b\"\nc.dcm", &result, "/out", "ignored");
    char *skipped = cxr_api_summary_row("/in/junk.dcm", NULL, "/out", "Invalid DICOM, \"x\"");
    cxr_api_result_release(&result);
    assert_non_null(analysed);
    assert_non_null(skipped);
    struct cxr_buf text = {0};
    assert_int_equal(cxr_api_summary_header(&text), CXR_OK);
    assert_int_equal(cxr_buf_append(&text, analysed, strlen(analysed)), CXR_OK);
    assert_int_equal(cxr_buf_append(&text, skipped, strlen(skipped)), CXR_OK);
    free(analysed);
    free(skipped);
    struct cxr_csv *csv = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_csv_parse((const char *)text.data, text.len, 10, 64, &csv, &err), CXR_OK);
    cxr_buf_release(&text);
    assert_int_equal(cxr_csv_record_count(csv), 3);
    size_t fields = 4 + 2 * CXR_FINDING_COUNT + 4;
    for (size_t r = 0; r < 3; r++)
        assert_int_equal(cxr_csv_field_count(csv, r), fields);
    assert_string_equal(cxr_csv_field(csv, 0, 4), "Tuberculosis confidence");
    assert_string_equal(cxr_csv_field(csv, 0, fields - 3), "skip_reason");
    assert_string_equal(cxr_csv_field(csv, 0, fields - 2), "model_version");
    assert_string_equal(cxr_csv_field(csv, 0, fields - 1), "thresholds");
    assert_string_equal(cxr_csv_field(csv, 1, fields - 2), "cxr-test-1.0");
    assert_string_equal(cxr_csv_field(csv, 1, fields - 1), "site calibration of 2026-12-03");
    assert_string_equal(cxr_csv_field(csv, 2, fields - 2), "");
    assert_string_equal(cxr_csv_field(csv, 2, fields - 1), "");
    assert_string_equal(cxr_csv_field(csv, 1, 0), " /in/a,\"b\"\nc.dcm");
    assert_string_equal(cxr_csv_field(csv, 1, 1), "PAT001");
    assert_string_equal(cxr_csv_field(csv, 1, 3), "TB Presumptive");
    assert_string_equal(cxr_csv_field(csv, 1, 4), "0.123457"); /* 6 digits, as the JSON */
    assert_string_equal(cxr_csv_field(csv, 1, 5), "true");
    assert_string_equal(cxr_csv_field(csv, 1, 7), "false");
    assert_string_equal(cxr_csv_field(csv, 1, fields - 4), "/out/PAT001");
    assert_string_equal(cxr_csv_field(csv, 1, fields - 3), "");
    assert_string_equal(cxr_csv_field(csv, 2, 0), "/in/junk.dcm");
    assert_string_equal(cxr_csv_field(csv, 2, 3), "");
    assert_string_equal(cxr_csv_field(csv, 2, fields - 4), "");
    assert_string_equal(cxr_csv_field(csv, 2, fields - 3), "Invalid DICOM, \"x\"");
    cxr_csv_destroy(csv);
}

/* A field a spreadsheet would run as a formula (=, +, -, @, tab, CR first) is shown as text:
 * a leading apostrophe, inside the quotes when the field needs them too. Numbers are untouched. */
static void summary_fields_never_start_a_formula(void **state)
{
    (void)state;
    struct cxr_api_result result;
    fake_result(&result);
    snprintf(result.patient_id, sizeof result.patient_id, "-A1");
    free(result.sop_instance_uid);
    result.sop_instance_uid = strdup("=HYPERLINK(\"http://x\",\"y\")");
    char *analysed = cxr_api_summary_row("+in.dcm", &result, "/out", "ignored");
    cxr_api_result_release(&result);
    char *skipped = cxr_api_summary_row("/in/b.dcm", NULL, "/out", "@SUM(A1)");
    assert_non_null(analysed);
    assert_non_null(skipped);
    struct cxr_buf text = {0};
    assert_int_equal(cxr_buf_append(&text, analysed, strlen(analysed)), CXR_OK);
    assert_int_equal(cxr_buf_append(&text, skipped, strlen(skipped)), CXR_OK);
    /* The raw bytes: the apostrophe is inside the quotes of a quoted field. */
    assert_non_null(strstr(analysed, "'+in.dcm,'-A1,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\","));
    free(analysed);
    free(skipped);
    struct cxr_csv *csv = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_csv_parse((const char *)text.data, text.len, 10, 64, &csv, &err), CXR_OK);
    cxr_buf_release(&text);
    size_t fields = 4 + 2 * CXR_FINDING_COUNT + 2;
    assert_string_equal(cxr_csv_field(csv, 0, 0), "'+in.dcm");
    assert_string_equal(cxr_csv_field(csv, 0, 1), "'-A1");
    assert_string_equal(cxr_csv_field(csv, 0, 2), "'=HYPERLINK(\"http://x\",\"y\")");
    assert_string_equal(cxr_csv_field(csv, 0, 4), "0.123457");
    assert_string_equal(cxr_csv_field(csv, 0, fields - 2), "/out/-A1"); /* a path: '/' first */
    assert_string_equal(cxr_csv_field(csv, 1, fields - 1), "'@SUM(A1)");
    cxr_csv_destroy(csv);
}

static void job_store_records_files_with_their_audit_rows(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/audit.sqlite", folder);
    struct cxr_audit *audit = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_audit_open(path, &audit, &err), CXR_OK);
    char *paths[] = {"/in/a.dcm", "/in/b.dcm", "/in/c.dcm"};
    struct cxr_jobstore_job job = {
            .id = "0123456789abcdef0123456789abcdef",
            .subject = "tester",
            .request_id = "r1",
            .input_folder = "/in",
            .output_folder = "/out",
            .output_shown = "/out",
            .summary = "cxrd_run_x.csv",
            .created = "2026-12-03T00:00:00.000Z",
    };
    assert_int_equal(cxr_jobstore_insert(audit, &job, paths, 3, &err), CXR_OK);
    char next[CXR_JOB_ID_LENGTH + 1];
    assert_int_equal(cxr_jobstore_next(audit, false, next, &err), CXR_OK);
    assert_string_equal(next, job.id);

    struct cxr_audit_record done = {
            .route = "bulk_inference/file",
            .input_path = "/in/b.dcm",
            .result = "Normal",
            .status = 200,
            .job_id = job.id,
            .job_file_seq = 1,
            .job_file_state = "done",
            .job_file_csv_row = "row b\n",
    };
    assert_int_equal(cxr_audit_write(audit, &done, &err), CXR_OK);
    struct cxr_audit_record skipped = done;
    skipped.input_path = "/in/c.dcm";
    skipped.result = "";
    skipped.status = 400;
    skipped.job_file_seq = 2;
    skipped.job_file_state = "skipped";
    skipped.job_file_csv_row = "row c\n";
    assert_int_equal(cxr_audit_write(audit, &skipped, &err), CXR_OK);

    long long *seqs = NULL;
    char **pending = NULL;
    size_t count = 0;
    assert_int_equal(cxr_jobstore_pending(audit, job.id, &seqs, &pending, &count, &err), CXR_OK);
    assert_int_equal(count, 1);
    assert_int_equal(seqs[0], 0);
    assert_string_equal(pending[0], "/in/a.dcm");
    free(pending[0]);
    free(pending);
    free(seqs);
    struct cxr_jobstore_counts counts;
    assert_int_equal(cxr_jobstore_counts(audit, job.id, &counts, &err), CXR_OK);
    assert_int_equal(counts.done, 2);
    assert_int_equal(counts.skipped, 1);
    assert_int_equal(counts.normal, 1);
    assert_int_equal(counts.tb_presumptive, 0);
    char **rows = NULL;
    assert_int_equal(cxr_jobstore_rows(audit, job.id, "not yet", &rows, &count, &err), CXR_OK);
    assert_int_equal(count, 3);
    assert_string_equal(rows[1], "row b\n");
    assert_string_equal(rows[2], "row c\n");
    assert_non_null(strstr(rows[0], "/in/a.dcm,"));
    assert_non_null(strstr(rows[0], ",not yet,,\n")); /* no model or thresholds yet */
    for (size_t i = 0; i < count; i++)
        free(rows[i]);
    free(rows);

    assert_int_equal(cxr_jobstore_update(audit, job.id, "done", NULL, "2026-12-03T00:01:00.000Z",
                                         "ok", &err),
                     CXR_OK);
    struct cxr_jobstore_job loaded;
    assert_int_equal(cxr_jobstore_load(audit, job.id, &loaded, &err), CXR_OK);
    assert_string_equal(loaded.state, "done");
    assert_string_equal(loaded.started, ""); /* NULL kept the stored value */
    assert_string_equal(loaded.finished, "2026-12-03T00:01:00.000Z");
    assert_int_equal(loaded.total, 3);
    cxr_jobstore_job_release(&loaded);
    assert_int_equal(cxr_jobstore_next(audit, false, next, &err), CXR_OK);
    assert_string_equal(next, "");
    assert_int_equal(cxr_jobstore_load(audit, "ffffffffffffffffffffffffffffffff", &loaded, &err),
                     CXR_ERR_NOT_FOUND);
    cxr_audit_close(audit);

    /* Both audit rows carry the job ID; reopening keeps everything. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *statement = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM audit WHERE job_id = ?", -1,
                                        &statement, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(statement, 1, job.id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(statement), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(statement, 0), 2);
    sqlite3_finalize(statement);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(summary_name_is_utc_with_milliseconds),
            cmocka_unit_test(summary_records_read_back),
            cmocka_unit_test(summary_fields_never_start_a_formula),
            cmocka_unit_test_setup_teardown(job_store_records_files_with_their_audit_rows,
                                            folder_setup, folder_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
