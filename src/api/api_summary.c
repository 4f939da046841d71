/* The per-run summary CSV: every bulk run (sync or async) and every `cxrd infer` run writes
 * <output_folder>/cxrd_run_<UTC time>.csv, one record per input file (its result and each
 * finding's confidence and presence, or why it was skipped), so a screening programme has the
 * day's list in one file. Written whole through the atomic writer: a reader never sees half. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api_internal.h"

/* A text field after its separator (cxr_csv_append_text: quoted where needed, never a
 * spreadsheet formula). */
static enum cxr_status append_field(struct cxr_buf *out, const char *text, bool first)
{
    enum cxr_status status = first ? CXR_OK : cxr_buf_append(out, ",", 1);
    return status == CXR_OK ? cxr_csv_append_text(out, text) : status;
}

enum cxr_status cxr_api_summary_header(struct cxr_buf *out)
{
    static const char *const first[] = {"input_path", "patient_id", "sop_instance_uid", "result"};
    enum cxr_status status = CXR_OK;
    for (size_t i = 0; status == CXR_OK && i < 4; i++)
        status = append_field(out, first[i], i == 0);
    for (int f = 0; status == CXR_OK && f < CXR_FINDING_COUNT; f++) {
        status = cxr_buf_printf(out, ",%s confidence,%s presence", cxr_model_finding_names[f],
                                cxr_model_finding_names[f]);
    }
    if (status == CXR_OK)
        status = cxr_buf_printf(out, ",output_folder,skip_reason,model_version,thresholds\n");
    return status;
}

void cxr_api_summary_name(const struct timespec *when, char *out, size_t size)
{
    struct tm utc;
    gmtime_r(&when->tv_sec, &utc);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &utc);
    /* Milliseconds: two runs into one folder in the same second keep both summaries. */
    snprintf(out, size, CXR_API_SUMMARY_PREFIX "%s.%03ldZ.csv", stamp, when->tv_nsec / 1000000);
}

/* A finding's confidence exactly as the predictions JSON prints it (a number in [0, 1]: never
 * quoted nor prefixed). */
static enum cxr_status append_number(struct cxr_buf *out, const json_t *value)
{
    char *text = value ? json_dumps(value, JSON_ENCODE_ANY | JSON_REAL_PRECISION(6)) : NULL;
    enum cxr_status status = cxr_buf_append(out, ",", 1);
    if (status == CXR_OK && text)
        status = cxr_buf_append(out, text, strlen(text));
    free(text);
    return status;
}

char *cxr_api_summary_row(const char *input_path, const struct cxr_api_result *result,
                          const char *output_folder, const char *skip_reason)
{
    struct cxr_buf row = {0};
    bool ok = result && result->status == 200 && result->data;
    enum cxr_status status = append_field(&row, input_path, true);
    if (status == CXR_OK)
        status = append_field(&row, result ? result->patient_id : "", false);
    if (status == CXR_OK)
        status = append_field(
                &row, result && result->sop_instance_uid ? result->sop_instance_uid : "", false);
    if (status == CXR_OK)
        status = append_field(&row, ok ? result->result : "", false);
    const json_t *findings = ok ? json_object_get(result->data, "findings") : NULL;
    for (int f = 0; status == CXR_OK && f < CXR_FINDING_COUNT; f++) {
        const json_t *finding = NULL;
        for (size_t i = 0; i < json_array_size(findings); i++) {
            const json_t *item = json_array_get(findings, i);
            const char *name = json_string_value(json_object_get(item, "name"));
            if (name && strcmp(name, cxr_model_finding_names[f]) == 0)
                finding = item;
        }
        const json_t *presence = json_object_get(finding, "presence");
        status = append_number(&row, json_object_get(finding, "confidence"));
        if (status == CXR_OK)
            status = append_field(&row, presence ? (json_is_true(presence) ? "true" : "false") : "",
                                  false);
    }
    char folder[4096] = "";
    if (ok && output_folder && output_folder[0])
        cxr_api_format(folder, sizeof folder, "%s/%s", output_folder, result->patient_id);
    if (status == CXR_OK)
        status = append_field(&row, folder, false);
    if (status == CXR_OK)
        status = append_field(&row, ok ? "" : skip_reason, false);
    /* What made the result: a run that outlives an upgrade or a new site calibration (a job
     * resumed after a restart) holds results of more than one model or operating point. */
    const char *model = ok ? json_string_value(json_object_get(
                                     json_object_get(result->data, "metadata"), "model_version"))
                           : NULL;
    if (status == CXR_OK)
        status = append_field(&row, model ? model : "", false);
    if (status == CXR_OK)
        status = append_field(&row, ok ? result->thresholds : "", false);
    if (status == CXR_OK)
        status = cxr_buf_append(&row, "\n", 2); /* with the NUL */
    if (status != CXR_OK) {
        cxr_buf_release(&row);
        return NULL;
    }
    return (char *)row.data;
}

/* Fields of a record: the 4 before the findings, 2 per finding, 4 after (2 before releases
 * recorded the model and thresholds); more is not a summary record. */
#define RECORD_FIELDS         (4 + 2 * CXR_FINDING_COUNT + 4)
#define EARLIER_RECORD_FIELDS (RECORD_FIELDS - 2)

char *cxr_api_summary_row_stored(const char *stored)
{
    struct cxr_csv *record = NULL;
    struct cxr_err ignored = CXR_ERR_INIT;
    if (cxr_csv_parse(stored, strlen(stored), 1, RECORD_FIELDS, &record, &ignored) != CXR_OK ||
        cxr_csv_record_count(record) != 1) {
        cxr_csv_destroy(record);
        return strdup(stored); /* not ours to rewrite: keep what was recorded */
    }
    /* Rewriting is idempotent: a defused field begins with "'", which starts no formula, and
     * numbers and presence pass through unchanged. */
    struct cxr_buf row = {0};
    enum cxr_status status = CXR_OK;
    size_t fields = cxr_csv_field_count(record, 0);
    for (size_t f = 0; status == CXR_OK && f < fields; f++)
        status = append_field(&row, cxr_csv_field(record, 0, f), f == 0);
    /* An earlier release's whole record: which model and thresholds made it was not kept. */
    if (status == CXR_OK && fields == EARLIER_RECORD_FIELDS)
        status = cxr_buf_append(&row, ",,", 2);
    if (status == CXR_OK)
        status = cxr_buf_append(&row, "\n", 2); /* with the NUL */
    cxr_csv_destroy(record);
    if (status != CXR_OK) {
        cxr_buf_release(&row);
        return NULL;
    }
    return (char *)row.data;
}

const char *cxr_api_skip_reason(const struct cxr_api_result *result)
{
    /* A full or read-only disk is the operator's to fix; "inference error" sent them to the
     * model or the image instead. */
    if (result->status == 500 && result->outputs_unwritten)
        return "outputs could not be written (the server log says why)";
    return result->status == 500 ? "inference error" : result->message;
}

enum cxr_status cxr_api_summary_write(struct cxr_api *api, const char *folder, const char *name,
                                      const char *const *rows, size_t count, struct cxr_err *err)
{
    struct cxr_buf text = {0};
    enum cxr_status status = cxr_api_summary_header(&text);
    for (size_t i = 0; status == CXR_OK && i < count; i++) {
        if (rows[i])
            status = cxr_buf_append(&text, rows[i], strlen(rows[i]));
    }
    if (status != CXR_OK) {
        cxr_buf_release(&text);
        return cxr_err_set(err, status, "summary %s/%s: out of memory", folder, name);
    }
    /* Beneath the output root's descriptor, as the results are: a job's folder may be swapped
     * for a symlink out of the root in the hours between the request's check and the job's end,
     * and the summary must not follow it. Created when missing (every file may have been
     * skipped before any patient folder was made). */
    int folder_fd = -1;
    struct cxr_file_group *group = NULL;
    status = cxr_path_open_beneath(&api->output_root, folder, CXR_PATH_OPEN_FOLDER_CREATE,
                                   &folder_fd, err);
    if (status == CXR_OK) {
        /* A summary's temp file left by a run killed inside its commit goes with the next
         * summary written there (the start-up sweep does not run for `cxrd infer`). */
        size_t budget = 4096;
        cxr_file_temps_sweep(folder_fd, 0, &budget);
        status = cxr_file_group_create_at(folder_fd, folder, &group, err);
    }
    if (status == CXR_OK)
        status = cxr_file_group_stage(group, name, text.data, text.len, err);
    if (status == CXR_OK)
        status = cxr_file_group_commit(group, err);
    cxr_file_group_destroy(group);
    if (folder_fd >= 0)
        close(folder_fd);
    cxr_buf_release(&text);
    return status;
}
