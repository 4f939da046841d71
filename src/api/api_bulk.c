/* POST /bulk_inference (spec/companion_endpoints.md): every .dcm under a folder, recursively,
 * through the single-inference pipeline with save_to_disk and no request patient_id. Files are
 * spread over the worker pool, at most one queued task per worker at a time so a bulk run
 * cannot crowd out single requests; files that fail are skipped, logged and counted; studies
 * that share a patient ID (and so one folder) are reported by the run ledger. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_internal.h"

#define SKIPPED_SHOWN 10

struct bulk_run {
    struct cxr_api *api;
    struct cxr_api_pool *pool;
    char *subject;
    char *request_id;
    char *input_shown;
    char *output_folder;
    char *output_shown;
    struct cxr_api_file_list files;
    size_t count, max;
    pthread_mutex_t lock;
    size_t next, finished, skipped, chains, flagged;
    struct cxr_buf skipped_text; /* "a.dcm: reason; ..." for the first SKIPPED_SHOWN */
    struct cxr_buf flagged_text; /* the same for files the gate flagged in warn mode */
    struct cxr_api_ledger *ledger;
    double start;
    cxr_api_bulk_done done;
    void *context;
};

static void run_destroy(struct bulk_run *run)
{
    cxr_api_file_list_release(&run->files);
    free(run->subject);
    free(run->request_id);
    free(run->input_shown);
    free(run->output_folder);
    free(run->output_shown);
    cxr_buf_release(&run->skipped_text);
    cxr_buf_release(&run->flagged_text);
    cxr_api_ledger_destroy(run->ledger);
    pthread_mutex_destroy(&run->lock);
    free(run);
}

static const char *text_of(const struct cxr_buf *buf)
{
    return buf->data ? (const char *)buf->data : "";
}

static void finish(struct bulk_run *run)
{
    struct cxr_api_response response = {0};
    struct cxr_buf shared = {0};
    size_t shared_count = cxr_api_ledger_collisions(run->ledger, run->output_folder,
                                                    run->input_shown, SKIPPED_SHOWN, &shared);
    char message[8192];
    const char *result = "Warning";
    size_t used = 0;
    if (run->skipped == 0 && shared_count == 0 && run->flagged == 0) {
        result = "Success";
        cxr_api_format(message, sizeof message, "Bulk inference completed successfully.");
    } else if (run->skipped == 0) {
        used = (size_t)snprintf(message, sizeof message, "Bulk inference completed with");
    } else {
        used = (size_t)snprintf(message, sizeof message,
                                "Bulk inference completed with %zu of %zu DICOM files skipped "
                                "(the server log names each one): %s%s",
                                run->skipped, run->count, text_of(&run->skipped_text),
                                run->skipped > SKIPPED_SHOWN ? "; ..." : "");
    }
    if (shared_count && used < sizeof message)
        used += (size_t)snprintf(message + used, sizeof message - used,
                                 "%s %zu " CXR_API_SHARED_ID_TEXT ": %s",
                                 run->skipped ? "; and" : "", shared_count, text_of(&shared));
    if (run->flagged && used < sizeof message)
        snprintf(message + used, sizeof message - used,
                 "%s %zu files that the input gate flagged (analysed: [gate] mode = warn): %s%s",
                 run->skipped || shared_count ? "; and" : "", run->flagged,
                 text_of(&run->flagged_text), run->flagged > SKIPPED_SHOWN ? "; ..." : "");
    cxr_buf_release(&shared);
    if (cxr_api_envelope(200, result, NULL, message, &response) != CXR_OK) {
        response.status = 500;
        response.body = NULL;
    }
    struct cxr_audit_record record = {
            .subject = run->subject,
            .request_id = run->request_id,
            .route = "bulk_inference",
            .input_path = run->input_shown,
            .status = 200,
            .duration_ms = (cxr_api_now() - run->start) * 1000.0,
            .message = message,
    };
    cxr_api_audit_enforce(run->api, cxr_api_audit_record(run->api, &record), &response);
    cxr_api_bulk_done done = run->done;
    void *context = run->context;
    run_destroy(run);
    done(&response, context);
}

/* Called with the lock held: hands out the next file, or NULL when none is left. */
static char *take_next(struct bulk_run *run)
{
    return run->next < run->count ? run->files.paths[run->next++] : NULL;
}

static void record_skip(struct bulk_run *run, const char *path, const char *reason)
{
    cxr_log(CXR_LOG_WARN, "bulk: skipped %s: %s", path, reason);
    pthread_mutex_lock(&run->lock);
    run->skipped++;
    if (run->skipped <= SKIPPED_SHOWN) {
        const char *relative = path + strlen(run->input_shown);
        cxr_buf_printf(&run->skipped_text, "%s%s: %s", run->skipped > 1 ? "; " : "",
                       relative[0] == '/' ? relative + 1 : path, reason);
    }
    pthread_mutex_unlock(&run->lock);
}

static void record_flag(struct bulk_run *run, const char *path, const char *message)
{
    pthread_mutex_lock(&run->lock);
    run->flagged++;
    if (run->flagged <= SKIPPED_SHOWN) {
        const char *relative = path + strlen(run->input_shown);
        cxr_buf_printf(&run->flagged_text, "%s%s: %s", run->flagged > 1 ? "; " : "",
                       relative[0] == '/' ? relative + 1 : path, message);
    }
    pthread_mutex_unlock(&run->lock);
}

static void process(struct bulk_run *run, const char *path)
{
    double start = cxr_api_now();
    struct cxr_api_job job = {
            .input_path = path,
            .patient_id = NULL,
            .output_folder = run->output_folder,
            .output_folder_shown = run->output_shown,
    };
    struct cxr_api_result result;
    cxr_api_job_run(run->api, &job, &result);
    if (result.status != 200)
        record_skip(run, path, result.status == 500 ? "inference error" : result.message);
    else if (cxr_api_ledger_add(run->ledger, result.patient_id, path, result.sop_instance_uid) !=
             CXR_OK)
        cxr_log(CXR_LOG_ERROR, "bulk: out of memory recording %s", path);
    if (result.status == 200 && result.gate_flagged)
        record_flag(run, path, result.message);
    cxr_api_audit_result(run->api, run->subject, run->request_id, "bulk_inference/file", path,
                         &result, (cxr_api_now() - start) * 1000.0);
    cxr_api_result_release(&result);
}

static void file_task(void *arg)
{
    struct bulk_run *run = arg;
    pthread_mutex_lock(&run->lock);
    char *path = take_next(run);
    pthread_mutex_unlock(&run->lock);
    if (path)
        process(run, path);
    for (;;) {
        pthread_mutex_lock(&run->lock);
        if (run->next == run->count) {
            /* This chain ends; the last chain to end answers the request. */
            bool last = ++run->finished == run->chains;
            pthread_mutex_unlock(&run->lock);
            if (last)
                finish(run);
            return;
        }
        pthread_mutex_unlock(&run->lock);
        /* Continue the chain behind any waiting single request. */
        if (cxr_api_pool_submit(run->pool, file_task, run, true) == CXR_OK)
            return;
        /* The pool is shutting down: finish the files here rather than dropping them. */
        pthread_mutex_lock(&run->lock);
        path = take_next(run);
        pthread_mutex_unlock(&run->lock);
        if (path)
            process(run, path);
    }
}

static bool fail(struct cxr_api_response *response, enum cxr_api_error error, const char *detail)
{
    if (cxr_api_response_error(error, detail, response) != CXR_OK) {
        response->status = 500;
        response->body = NULL;
    }
    return false;
}

bool cxr_api_bulk_inference(struct cxr_api *api, struct cxr_api_pool *pool, json_t *body,
                            const char *subject, const char *request_id, cxr_api_bulk_done done,
                            void *context, struct cxr_api_response *response)
{
    char message[1024];
    json_t *input = json_object_get(body, "input_folder_path");
    json_t *output = json_object_get(body, "output_folder_path");
    if (cxr_api_field_missing(input))
        return fail(response, CXR_API_FIELD_REQUIRED, "input_folder_path");
    if (cxr_api_field_missing(output))
        return fail(response, CXR_API_FIELD_REQUIRED, "output_folder_path");

    char shown[700];
    struct cxr_err err = CXR_ERR_INIT;
    char *input_resolved = NULL, *output_resolved = NULL;
    enum cxr_status status = CXR_ERR_INVALID_ARG;
    cxr_api_value_text(input, shown, sizeof shown);
    if (!json_is_string(input))
        cxr_err_set(&err, CXR_ERR_INVALID_ARG, "not a string");
    else
        status = cxr_api_path_check(api->config->input_root, api->input_root.real,
                                    json_string_value(input), json_string_length(input), true,
                                    &input_resolved, &err);
    if (status == CXR_ERR_NOT_FOUND) {
        return fail(response, CXR_API_INPUT_FOLDER_MISSING, shown);
    }
    struct stat info;
    if (status == CXR_OK && (stat(input_resolved, &info) != 0 || !S_ISDIR(info.st_mode))) {
        status = cxr_err_set(&err, CXR_ERR_INVALID_ARG, "not a folder");
    }
    if (status != CXR_OK) {
        free(input_resolved);
        cxr_api_format(message, sizeof message, "input_folder_path: %s (%s)", shown, err.message);
        return fail(response, CXR_API_INVALID_PATH, message);
    }
    char output_shown[4096];
    struct cxr_api_result checked = {0};
    if (!cxr_api_output_folder_check(api, output, &output_resolved, output_shown,
                                     sizeof output_shown, &checked)) {
        free(input_resolved);
        if (cxr_api_envelope(checked.status, "Failure", NULL, checked.message, response) !=
            CXR_OK) {
            response->status = 500;
            response->body = NULL;
        }
        return false;
    }

    struct bulk_run *run = calloc(1, sizeof *run);
    if (run == NULL) {
        free(input_resolved);
        free(output_resolved);
        return fail(response, CXR_API_BULK_INTERNAL, NULL);
    }
    pthread_mutex_init(&run->lock, NULL);
    run->api = api;
    run->pool = pool;
    run->start = cxr_api_now();
    run->max = api->config->max_bulk_files;
    run->done = done;
    run->context = context;
    run->output_folder = output_resolved;
    run->subject = strdup(subject ? subject : "");
    run->request_id = strdup(request_id ? request_id : "");
    run->input_shown = input_resolved; /* files are reported relative to the resolved folder */
    run->output_shown = strdup(output_shown);
    status = run->subject && run->request_id && run->output_shown
                     ? cxr_api_ledger_create(&run->ledger)
                     : CXR_ERR_NOMEM;
    /* The folder is listed through a descriptor opened beneath the input root, its sub-folders
     * with O_NOFOLLOW: a swap cannot make the scan list files outside the root. */
    int folder_fd = -1;
    if (status == CXR_OK &&
        cxr_path_open_beneath(&api->input_root, input_resolved, CXR_PATH_OPEN_FOLDER, &folder_fd,
                              &err) != CXR_OK) {
        cxr_api_format(message, sizeof message, "input_folder_path: %s (%s)", shown, err.message);
        run_destroy(run);
        return fail(response, CXR_API_INVALID_PATH, message);
    }
    if (status == CXR_OK) {
        status = cxr_api_file_list_scan_at(&run->files, folder_fd, input_resolved, run->max);
        close(folder_fd);
    }
    run->count = run->files.count;
    if (status == CXR_ERR_LIMIT) {
        cxr_api_format(message, sizeof message, "input_folder_path: %s (more than %zu DICOM files)",
                       json_string_value(input), run->max);
        run_destroy(run);
        return fail(response, CXR_API_INVALID_PATH, message);
    }
    if (status != CXR_OK) {
        cxr_log(CXR_LOG_ERROR, "bulk: scanning %s: %s", input_resolved, cxr_status_name(status));
        run_destroy(run);
        return fail(response, CXR_API_BULK_INTERNAL, NULL);
    }
    if (run->count == 0) {
        run_destroy(run);
        return fail(response, CXR_API_NO_DICOM_FILES, NULL);
    }
    cxr_log(CXR_LOG_INFO, "bulk: %zu DICOM files under %s", run->count, input_resolved);

    /* One chain of tasks per worker; each chain resubmits itself until the files run out.
     * The lock keeps chains from finishing before their number is known. */
    uint32_t chains = cxr_api_pool_workers(pool);
    if (chains > run->count)
        chains = (uint32_t)run->count;
    pthread_mutex_lock(&run->lock);
    for (; run->chains < chains; run->chains++) {
        if (cxr_api_pool_submit(pool, file_task, run, true) != CXR_OK)
            break;
    }
    bool started = run->chains > 0;
    pthread_mutex_unlock(&run->lock);
    if (!started) {
        run_destroy(run);
        return fail(response, CXR_API_SHUTTING_DOWN, "bulk inference not started");
    }
    return true;
}
