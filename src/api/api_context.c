/* The API context: the model, the resolved input and output roots, the audit log, and the
 * request path check shared by single and bulk inference. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/api_internal.h"

static enum cxr_status open_root(const char *name, const char *path, struct cxr_path_root *root,
                                 struct cxr_err *err)
{
    if (path == NULL || path[0] == '\0')
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "config [paths] %s is not set", name);
    if (path[0] != '/')
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "config [paths] %s: '%s' is not absolute",
                           name, path);
    struct cxr_err local = CXR_ERR_INIT;
    enum cxr_status status = cxr_path_root_open(path, root, &local);
    if (status != CXR_OK)
        return cxr_err_set(err, status, "config [paths] %s: %s", name, local.message);
    return CXR_OK;
}

enum cxr_status cxr_api_create(const struct cxr_config *config, struct cxr_api **out,
                               struct cxr_err *err)
{
    struct cxr_api *api = calloc(1, sizeof *api);
    if (api == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    api->config = config;
    api->input_root.fd = api->output_root.fd = -1;
    pthread_rwlock_init(&api->thresholds_lock, NULL);
    enum cxr_status status = open_root("input_root", config->input_root, &api->input_root, err);
    if (status == CXR_OK)
        status = open_root("output_root", config->output_root, &api->output_root, err);
    if (status == CXR_OK)
        status = cxr_nn_runtime_create(config->model_threads, &api->runtime, err);
    if (status == CXR_OK) {
        status =
                cxr_model_load(api->runtime, config->model_path, &config->limits, &api->model, err);
        if (status != CXR_OK)
            cxr_err_set(err, status, "model %s", config->model_path);
    }
    for (int i = 0; status == CXR_OK && i < CXR_FINDING_COUNT; i++)
        api->model_thresholds[i] = cxr_model_threshold(api->model, i);
    /* The threshold guard: a [thresholds] section made for another model version stops here. */
    if (status == CXR_OK)
        status = cxr_model_thresholds_apply(api->model, &config->thresholds, api->thresholds_used,
                                            sizeof api->thresholds_used, err);
    if (status == CXR_OK && config->audit_database && config->audit_database[0])
        status = cxr_audit_open(config->audit_database, &api->audit, err);
    if (status != CXR_OK) {
        cxr_api_destroy(api);
        return status;
    }
    *out = api;
    return CXR_OK;
}

void cxr_api_destroy(struct cxr_api *api)
{
    if (api == NULL)
        return;
    cxr_audit_close(api->audit);
    cxr_model_destroy(api->model);
    cxr_nn_runtime_destroy(api->runtime);
    cxr_path_root_close(&api->input_root);
    cxr_path_root_close(&api->output_root);
    pthread_rwlock_destroy(&api->thresholds_lock);
    free(api);
}

enum cxr_status cxr_api_thresholds_reload(struct cxr_api *api,
                                          const struct cxr_site_thresholds *site,
                                          struct cxr_err *err)
{
    /* Waits for the jobs running now; jobs that start later see only the new thresholds. */
    pthread_rwlock_wrlock(&api->thresholds_lock);
    double running[CXR_FINDING_COUNT];
    char description[sizeof api->thresholds_used];
    for (int i = 0; i < CXR_FINDING_COUNT; i++) {
        running[i] = cxr_model_threshold(api->model, i);
        cxr_model_threshold_set(api->model, cxr_model_finding_names[i], api->model_thresholds[i],
                                NULL);
    }
    enum cxr_status status =
            cxr_model_thresholds_apply(api->model, site, description, sizeof description, err);
    for (int i = 0; i < CXR_FINDING_COUNT && status != CXR_OK; i++)
        cxr_model_threshold_set(api->model, cxr_model_finding_names[i], running[i], NULL);
    if (status == CXR_OK)
        memcpy(api->thresholds_used, description, sizeof description);
    pthread_rwlock_unlock(&api->thresholds_lock);
    return status;
}

const char *cxr_api_model_version(const struct cxr_api *api)
{
    return cxr_model_version(api->model);
}

const char *cxr_api_thresholds_used(const struct cxr_api *api)
{
    return api->thresholds_used;
}

double cxr_api_model_threshold(const struct cxr_api *api, int finding)
{
    return cxr_model_threshold(api->model, finding);
}

struct cxr_audit *cxr_api_audit(struct cxr_api *api)
{
    return api->audit;
}

const char *cxr_api_input_root(const struct cxr_api *api)
{
    return api->input_root.real;
}

const char *cxr_api_output_root(const struct cxr_api *api)
{
    return api->output_root.real;
}

size_t cxr_api_output_sweep(struct cxr_api *api)
{
    size_t budget = CXR_API_SWEEP_ENTRIES;
    return cxr_file_temps_sweep(api->output_root.fd, CXR_API_SWEEP_DEPTH, &budget);
}

bool cxr_api_audit_record(struct cxr_api *api, const struct cxr_audit_record *record)
{
    return cxr_api_audit_record_logged(api, record, CXR_LOG_ERROR);
}

bool cxr_api_audit_record_logged(struct cxr_api *api, const struct cxr_audit_record *record,
                                 enum cxr_log_level level)
{
    if (api->audit == NULL)
        return true;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_audit_write(api->audit, record, &err) == CXR_OK)
        return true;
    cxr_log(level, "audit row of request %s not written: %s",
            record->request_id && record->request_id[0] ? record->request_id : "-", err.message);
    return false;
}

void cxr_api_audit_enforce(struct cxr_api *api, bool recorded, struct cxr_api_response *response)
{
    if (recorded || !api->config->audit_required)
        return;
    struct cxr_api_response refused = {0};
    if (cxr_api_response_error(CXR_API_AUDIT_UNAVAILABLE,
                               "the request could not be recorded ([audit] required = true); "
                               "retry later",
                               &refused) != CXR_OK)
        return;
    memcpy(refused.stage_seconds, response->stage_seconds, sizeof refused.stage_seconds);
    cxr_api_response_release(response);
    *response = refused;
}

enum cxr_status cxr_api_path_check(const char *root, const char *root_real, const char *path,
                                   size_t length, bool must_exist, char **resolved,
                                   struct cxr_err *err)
{
    enum cxr_status status = cxr_path_check_syntax(path, length, err);
    if (status != CXR_OK)
        return status;
    /* Refuse paths that are lexically outside the root before touching the file system, so a
     * request cannot probe which files exist elsewhere. */
    if (!cxr_path_is_under(path, root) && !cxr_path_is_under(path, root_real))
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "outside the allowed root %s", root_real);
    return cxr_path_resolve_under(path, root_real, !must_exist, resolved, err);
}

/* The predictions JSON as stored in the audit log: Data with inline PNG placeholders blanked
 * (the images themselves are not kept there). */
static char *predictions_text(const json_t *data)
{
    json_t *copy = json_deep_copy(data);
    if (copy == NULL)
        return NULL;
    const char *fields[] = {"source_image", "heatmap"};
    for (size_t i = 0; i < 2; i++) {
        const char *value = json_string_value(json_object_get(copy, fields[i]));
        if (value && (strcmp(value, CXR_API_INLINE_SOURCE) == 0 ||
                      strcmp(value, CXR_API_INLINE_HEATMAP) == 0))
            json_object_set_new(copy, fields[i], json_string(""));
    }
    char *text = json_dumps(copy, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(copy);
    return text;
}

bool cxr_api_audit_result(struct cxr_api *api, const char *subject, const char *request_id,
                          const char *route, const char *input_path,
                          const struct cxr_api_result *result, double duration_ms)
{
    return cxr_api_audit_result_extra(api, subject, request_id, route, input_path, result,
                                      duration_ms, NULL);
}

bool cxr_api_audit_result_extra(struct cxr_api *api, const char *subject, const char *request_id,
                                const char *route, const char *input_path,
                                const struct cxr_api_result *result, double duration_ms,
                                const struct cxr_api_audit_extra *extra)
{
    if (api->audit == NULL)
        return true;
    bool ok = result->status == 200;
    char *predictions = ok && result->data ? predictions_text(result->data) : NULL;
    if (ok && result->data && predictions == NULL)
        cxr_log(CXR_LOG_ERROR, "audit: out of memory for the predictions of %s", input_path);
    struct cxr_audit_record record = {
            .subject = subject,
            .route = route,
            .input_path = input_path,
            .sop_instance_uid = result->sop_instance_uid ? result->sop_instance_uid : "",
            .patient_id = result->patient_id,
            .result = ok ? result->result : "",
            .status = result->status,
            .duration_ms = duration_ms,
            .message = ok && !result->gate_flagged ? "" : result->message,
            .predictions = predictions ? predictions : "",
            .thresholds = ok ? result->thresholds : "",
            .request_id = request_id,
    };
    if (extra) {
        record.output_folder = ok ? extra->output_folder : "";
        record.job_id = extra->job_id;
        record.job_file_seq = extra->job_file_seq;
        record.job_file_state = extra->job_file_state;
        record.job_file_csv_row = extra->csv_row;
    }
    bool quiet = extra && extra->quiet_failure;
    bool recorded =
            cxr_api_audit_record_logged(api, &record, quiet ? CXR_LOG_DEBUG : CXR_LOG_ERROR);
    free(predictions);
    return recorded;
}

bool cxr_api_output_folder_check(struct cxr_api *api, const json_t *output, char **resolved,
                                 char *shown, size_t shown_size, struct cxr_api_result *result)
{
    struct cxr_err err = CXR_ERR_INIT;
    char text[700], detail[1024];
    cxr_api_value_text(output, text, sizeof text);
    enum cxr_status status = CXR_ERR_INVALID_ARG;
    if (!json_is_string(output)) {
        cxr_err_set(&err, CXR_ERR_INVALID_ARG, "not a string");
    } else {
        /* A folder: "x/" names the same as "x", also when x turns out to be a file. */
        size_t length = json_string_length(output);
        const char *path = json_string_value(output);
        while (length > 1 && path[length - 1] == '/' && path[length - 2] != '/')
            length--;
        char *trimmed = malloc(length + 1); /* not strndup: a NUL inside must reach the check */
        if (trimmed) {
            memcpy(trimmed, path, length);
            trimmed[length] = '\0';
        }
        if (trimmed == NULL)
            cxr_err_set(&err, CXR_ERR_NOMEM, "out of memory");
        else
            status = cxr_api_path_check(api->config->output_root, api->output_root.real, trimmed,
                                        length, false, resolved, &err);
        free(trimmed);
    }
    if (status == CXR_ERR_NOT_FOUND) {
        /* A component of the folder exists but is not a folder: it cannot be created. */
        cxr_api_format(detail, sizeof detail, "%s (%s)", text, err.message);
        cxr_api_result_error(result, CXR_API_OUTPUT_FOLDER_UNCREATABLE, detail, err.message);
        return false;
    }
    if (status != CXR_OK) {
        cxr_api_format(detail, sizeof detail, "output_folder_path: %s (%s)", text, err.message);
        cxr_api_result_error(result, CXR_API_INVALID_PATH, detail, NULL);
        return false;
    }
    /* A file where the folder should be: refused now, before any inference is spent on it. */
    struct stat info;
    if (stat(*resolved, &info) == 0 && !S_ISDIR(info.st_mode)) {
        free(*resolved);
        *resolved = NULL;
        cxr_api_format(detail, sizeof detail, "%s (exists and is not a folder)", text);
        cxr_api_result_error(result, CXR_API_OUTPUT_FOLDER_UNCREATABLE, detail, NULL);
        return false;
    }
    /* Response paths use the folder as the client wrote it, without a trailing slash. */
    snprintf(shown, shown_size, "%s", json_string_value(output));
    size_t length = strlen(shown);
    while (length > 1 && shown[length - 1] == '/')
        shown[--length] = '\0';
    return true;
}
