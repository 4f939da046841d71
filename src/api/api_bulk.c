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
#include <time.h>
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
    char **rows;             /* the summary CSV record of each file, by index */
    struct timespec started; /* wall clock: names the summary */
    size_t count;
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
    for (size_t i = 0; run->rows && i < run->count; i++)
        free(run->rows[i]);
    free(run->rows);
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

/* Writes the run summary; on failure fills err (for the Message) and returns false. */
static bool write_summary(struct bulk_run *run, struct cxr_err *err)
{
    char name[64];
    cxr_api_summary_name(&run->started, name, sizeof name);
    if (cxr_api_summary_write(run->api, run->output_folder, name, (const char *const *)run->rows,
                              run->count, err) != CXR_OK) {
        cxr_log(CXR_LOG_ERROR, "bulk: run summary: %s", err->message);
        return false;
    }
    cxr_log(CXR_LOG_INFO, "bulk: run summary %s/%s", run->output_folder, name);
    return true;
}

static void finish(struct bulk_run *run)
{
    struct cxr_api_response response = {0};
    struct cxr_err summary_err = CXR_ERR_INIT;
    /* A summary that is not on disk (full or read-only file system) must not read as Success. */
    bool summary_written = write_summary(run, &summary_err);
    struct cxr_buf shared = {0};
    size_t shared_count = cxr_api_ledger_collisions(run->ledger, run->output_folder,
                                                    run->input_shown, SKIPPED_SHOWN, &shared);
    /* Grown, not cut: ten long skip reasons filled a fixed 8 KiB text, and the notices after
     * them (a patient folder written twice, the summary not written) never reached the client.
     * Each part is bounded (SKIPPED_SHOWN entries of bounded messages). */
    struct cxr_buf text = CXR_BUF_INIT(1 << 20);
    const char *result = "Warning";
    if (run->skipped == 0 && shared_count == 0 && run->flagged == 0 && summary_written) {
        result = "Success";
        cxr_buf_printf(&text, "Bulk inference completed successfully.");
    } else if (run->skipped == 0) {
        cxr_buf_printf(&text, "Bulk inference completed with");
    } else {
        cxr_buf_printf(&text,
                       "Bulk inference completed with %zu of %zu DICOM files skipped (the server "
                       "log names each one): %s%s",
                       run->skipped, run->count, text_of(&run->skipped_text),
                       run->skipped > SKIPPED_SHOWN ? "; ..." : "");
    }
    if (shared_count)
        cxr_buf_printf(&text, "%s %zu " CXR_API_SHARED_ID_TEXT ": %s", run->skipped ? "; and" : "",
                       shared_count, text_of(&shared));
    if (run->flagged)
        cxr_buf_printf(
                &text,
                "%s %zu files that the input gate flagged (analysed: [gate] mode = warn): %s%s",
                run->skipped || shared_count ? "; and" : "", run->flagged,
                text_of(&run->flagged_text), run->flagged > SKIPPED_SHOWN ? "; ..." : "");
    if (!summary_written)
        cxr_buf_printf(&text, "%s the run summary not written (%s)",
                       run->skipped || shared_count || run->flagged ? "; and" : "",
                       summary_err.message);
    cxr_buf_release(&shared);
    const char *message = text_of(&text);
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
    cxr_buf_release(&text);
    cxr_api_bulk_done done = run->done;
    void *context = run->context;
    run_destroy(run);
    done(&response, context);
}

/* Called with the lock held: hands out the index of the next file, or SIZE_MAX when none is
 * left. */
static size_t take_next(struct bulk_run *run)
{
    return run->next < run->count ? run->next++ : SIZE_MAX;
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

static void process(struct bulk_run *run, size_t index)
{
    const char *path = run->files.paths[index];
    double start = cxr_api_now();
    struct cxr_api_job job = {
            .input_path = path,
            .patient_id = NULL,
            .output_folder = run->output_folder,
            .output_folder_shown = run->output_shown,
    };
    struct cxr_api_result result;
    cxr_api_job_run(run->api, &job, &result);
    const char *reason = cxr_api_skip_reason(&result);
    /* Each index is written by one task only; finish() reads them after every chain ended. */
    run->rows[index] = cxr_api_summary_row(path, &result, run->output_folder, reason);
    if (result.status != 200)
        record_skip(run, path, reason);
    else if (cxr_api_ledger_add(run->ledger, result.patient_id, path,
                                result.sop_instance_uid ? result.sop_instance_uid : "") != CXR_OK)
        cxr_log(CXR_LOG_ERROR, "bulk: out of memory recording %s", path);
    if (result.status == 200 && result.gate_flagged)
        record_flag(run, path, result.message);
    struct cxr_api_audit_extra extra = {.output_folder = run->output_folder};
    cxr_api_audit_result_extra(run->api, run->subject, run->request_id, "bulk_inference/file", path,
                               &result, (cxr_api_now() - start) * 1000.0, &extra);
    cxr_api_result_release(&result);
}

static void file_task(void *arg)
{
    struct bulk_run *run = arg;
    pthread_mutex_lock(&run->lock);
    size_t index = take_next(run);
    pthread_mutex_unlock(&run->lock);
    if (index != SIZE_MAX)
        process(run, index);
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
        index = take_next(run);
        pthread_mutex_unlock(&run->lock);
        if (index != SIZE_MAX)
            process(run, index);
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

void cxr_api_bulk_request_release(struct cxr_api_bulk_request *request)
{
    free(request->input_folder);
    free(request->output_folder);
    cxr_api_file_list_release(&request->files);
    memset(request, 0, sizeof *request);
}

bool cxr_api_bulk_request_check(struct cxr_api *api, json_t *body,
                                struct cxr_api_bulk_request *request,
                                struct cxr_api_response *response)
{
    memset(request, 0, sizeof *request);
    char message[1024];
    json_t *input = json_object_get(body, "input_folder_path");
    json_t *output = json_object_get(body, "output_folder_path");
    json_t *async = json_object_get(body, "async");
    if (cxr_api_field_missing(input))
        return fail(response, CXR_API_FIELD_REQUIRED, "input_folder_path");
    if (cxr_api_field_missing(output))
        return fail(response, CXR_API_FIELD_REQUIRED, "output_folder_path");
    if (async && !json_is_boolean(async) && !json_is_null(async)) {
        cxr_api_value_text(async, message, sizeof message);
        return fail(response, CXR_API_ASYNC_NOT_BOOLEAN, message);
    }

    char shown[700];
    struct cxr_err err = CXR_ERR_INIT;
    enum cxr_status status = CXR_ERR_INVALID_ARG;
    cxr_api_value_text(input, shown, sizeof shown);
    if (!json_is_string(input))
        cxr_err_set(&err, CXR_ERR_INVALID_ARG, "not a string");
    else
        status = cxr_api_path_check(api->config->input_root, api->input_root.real,
                                    json_string_value(input), json_string_length(input), true,
                                    &request->input_folder, &err);
    if (status == CXR_ERR_NOT_FOUND)
        return fail(response, CXR_API_INPUT_FOLDER_MISSING, shown);
    struct stat info;
    if (status == CXR_OK && (stat(request->input_folder, &info) != 0 || !S_ISDIR(info.st_mode))) {
        status = cxr_err_set(&err, CXR_ERR_INVALID_ARG, "not a folder");
    }
    if (status != CXR_OK) {
        cxr_api_bulk_request_release(request);
        cxr_api_format(message, sizeof message, "input_folder_path: %s (%s)", shown, err.message);
        return fail(response, CXR_API_INVALID_PATH, message);
    }
    struct cxr_api_result checked = {0};
    if (!cxr_api_output_folder_check(api, output, &request->output_folder, request->output_shown,
                                     sizeof request->output_shown, &checked)) {
        cxr_api_bulk_request_release(request);
        if (cxr_api_envelope(checked.status, "Failure", NULL, checked.message, response) !=
            CXR_OK) {
            response->status = 500;
            response->body = NULL;
        }
        return false;
    }
    /* The folder is listed through a descriptor opened beneath the input root, its sub-folders
     * with O_NOFOLLOW: a swap cannot make the scan list files outside the root. */
    size_t max = api->config->max_bulk_files;
    int folder_fd = -1;
    if (cxr_path_open_beneath(&api->input_root, request->input_folder, CXR_PATH_OPEN_FOLDER,
                              &folder_fd, &err) != CXR_OK) {
        cxr_api_format(message, sizeof message, "input_folder_path: %s (%s)", shown, err.message);
        cxr_api_bulk_request_release(request);
        return fail(response, CXR_API_INVALID_PATH, message);
    }
    status = cxr_api_file_list_scan_at(&request->files, folder_fd, request->input_folder, max);
    close(folder_fd);
    if (status == CXR_ERR_LIMIT) {
        cxr_api_format(message, sizeof message, "input_folder_path: %s (more than %zu DICOM files)",
                       json_string_value(input), max);
        cxr_api_bulk_request_release(request);
        return fail(response, CXR_API_INVALID_PATH, message);
    }
    if (status != CXR_OK) {
        cxr_log(CXR_LOG_ERROR, "bulk: scanning %s: %s", request->input_folder,
                cxr_status_name(status));
        cxr_api_bulk_request_release(request);
        return fail(response, CXR_API_BULK_INTERNAL, NULL);
    }
    if (request->files.count == 0) {
        cxr_api_bulk_request_release(request);
        return fail(response, CXR_API_NO_DICOM_FILES, NULL);
    }
    return true;
}

bool cxr_api_bulk_inference(struct cxr_api *api, struct cxr_api_pool *pool, json_t *body,
                            const char *subject, const char *request_id, cxr_api_bulk_done done,
                            void *context, struct cxr_api_response *response)
{
    struct cxr_api_bulk_request request;
    if (!cxr_api_bulk_request_check(api, body, &request, response))
        return false;
    struct bulk_run *run = calloc(1, sizeof *run);
    if (run == NULL) {
        cxr_api_bulk_request_release(&request);
        return fail(response, CXR_API_BULK_INTERNAL, NULL);
    }
    pthread_mutex_init(&run->lock, NULL);
    run->api = api;
    run->pool = pool;
    run->start = cxr_api_now();
    clock_gettime(CLOCK_REALTIME, &run->started);
    run->done = done;
    run->context = context;
    run->output_folder = request.output_folder;
    run->input_shown = request.input_folder; /* files are reported relative to the resolved
                                                folder */
    run->files = request.files;
    run->count = run->files.count;
    run->subject = strdup(subject ? subject : "");
    run->request_id = strdup(request_id ? request_id : "");
    run->output_shown = strdup(request.output_shown);
    run->rows = calloc(run->count, sizeof *run->rows);
    enum cxr_status status = run->subject && run->request_id && run->output_shown && run->rows
                                     ? cxr_api_ledger_create(&run->ledger)
                                     : CXR_ERR_NOMEM;
    if (status != CXR_OK) {
        run_destroy(run);
        return fail(response, CXR_API_BULK_INTERNAL, NULL);
    }
    cxr_log(CXR_LOG_INFO, "bulk: %zu DICOM files under %s", run->count, run->input_shown);

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
