/* Async bulk jobs: the runner and the /jobs answers. A job's files were listed in the database
 * when it was created; the runner hands them out one per pool task (one chain of tasks per
 * worker, each resubmitted behind waiting single requests, as sync bulk runs do). Each file's
 * audit row and its "done" mark are one transaction, so after a crash exactly the unrecorded
 * files run again. One job runs at a time; when it ends its summary CSV is written and the next
 * queued job starts. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "api/api_jobstore.h"

#define PENDING_REASON   "not processed yet"
#define CANCELLED_REASON "not processed: the job was cancelled"
/* A job paused for want of room (its outputs or its audit rows) is tried again this often:
 * space may come back at night, with nobody there to submit another job or restart the server. */
#define RETRY_SECONDS 15
#define PAUSED_MESSAGE                                                                             \
    "Paused: no room to write its outputs or record its files; tried again every 15 s"
_Static_assert(RETRY_SECONDS == 15, "PAUSED_MESSAGE names the retry interval");
/* A job that pauses again on each try logs at debug level, and a warning every this many tries
 * (10 minutes): a disk full for a weekend must not also fill the log with the same lines. */
#define RETRY_REPORT_TRIES 40

struct active_job {
    struct cxr_jobstore_job row;
    long long *seqs;
    char **paths;
    size_t count, next, chains, ended;
    bool cancel;
    bool waiting_for_room; /* no room for a file's outputs or row (or a read-only file
                              system): hand out no more files */
    bool retrying;         /* a try of the paused job: no room again is logged at debug level */
    double session_start;  /* monotonic, for the ETA */
    size_t session_done;   /* files finished since this process took the job */
};

struct cxr_api_jobs {
    struct cxr_api *api;
    struct cxr_api_pool *pool;
    struct cxr_audit *audit;
    pthread_mutex_t lock; /* guards active, its counters, stopping and state changes */
    struct active_job *active;
    bool stopping;
    bool paused; /* no room to record the job or write its outputs: retry_main tries again */
    char paused_id[CXR_JOB_ID_LENGTH + 1]; /* that job, for its answers' message */
    char paused_since[40];                 /* when it first paused, for the logs */
    unsigned paused_tries;                 /* its tries since then that paused again */
    pthread_cond_t wake;                   /* tells retry_main that paused or stopping changed */
    pthread_t retry_thread;
    bool retry_started;
};

/* Called with the lock held: job id waits; the next kick comes from retry_main after
 * RETRY_SECONDS (or from a submission or the next start, whichever is first). */
static void pause_jobs(struct cxr_api_jobs *jobs, const char *id)
{
    jobs->paused = true;
    snprintf(jobs->paused_id, sizeof jobs->paused_id, "%s", id);
    pthread_cond_signal(&jobs->wake);
}

static void active_destroy(struct active_job *job)
{
    if (job == NULL)
        return;
    for (size_t i = 0; i < job->count; i++)
        free(job->paths[i]);
    free(job->paths);
    free(job->seqs);
    cxr_jobstore_job_release(&job->row);
    free(job);
}

static bool reply_error(struct cxr_api_response *response, enum cxr_api_error error,
                        const char *detail)
{
    if (cxr_api_response_error(error, detail, response) != CXR_OK) {
        response->status = 500;
        response->body = NULL;
    }
    return false;
}

static void reply(struct cxr_api_response *response, int status, json_t *data, const char *message)
{
    if (data == NULL)
        reply_error(response, CXR_API_JOBS_INTERNAL, NULL);
    else if (cxr_api_envelope(status, "Success", data, message, response) != CXR_OK)
        reply_error(response, CXR_API_JOBS_INTERNAL, NULL);
}

/* ---- the runner ---- */

/* Writes the summary and records the job's end; false when there was no room for the summary
 * or the end (a full or read-only file system): the job is then still running or queued in
 * the database, and waits. */
static bool write_end(struct cxr_api_jobs *jobs, struct active_job *job, const char *state)
{
    struct cxr_err err = CXR_ERR_INIT;
    char **rows = NULL;
    size_t count = 0;
    char finished[40], message[8192] = "";
    bool cancelled = strcmp(state, "cancelled") == 0;
    enum cxr_status status =
            cxr_jobstore_rows(jobs->audit, job->row.id,
                              cancelled ? CANCELLED_REASON : PENDING_REASON, &rows, &count, &err);
    if (status == CXR_OK)
        status = cxr_api_summary_write(jobs->api, job->row.output_folder, job->row.summary,
                                       (const char *const *)rows, count, &err);
    for (size_t i = 0; i < count; i++)
        free(rows[i]);
    free(rows);
    if (status != CXR_OK) {
        cxr_log(CXR_LOG_ERROR, "job %s: run summary: %s", job->row.id, err.message);
        /* No room for it: every result is on disk, so the job waits for room as for its
         * files (its end stays unrecorded; a later try writes the summary) instead of failing. */
        if (status == CXR_ERR_NO_SPACE && !cancelled)
            return false;
        if (!cancelled)
            state = "failed";
    }
    struct cxr_jobstore_counts counts;
    struct cxr_err count_err = CXR_ERR_INIT;
    if (cxr_jobstore_counts(jobs->audit, job->row.id, &counts, &count_err) == CXR_OK)
        cxr_api_format(message, sizeof message,
                       "%lld of %lld files done (TB Presumptive %lld, Abnormal %lld, Normal %lld, "
                       "skipped %lld)",
                       counts.done, job->row.total, counts.tb_presumptive, counts.abnormal,
                       counts.normal, counts.skipped);
    if (status != CXR_OK) {
        size_t used = strlen(message);
        snprintf(message + used, sizeof message - used,
                 "%sthe run summary could not be written: %s", used ? "; " : "", err.message);
    }
    /* Studies that share a patient ID share its folder, and the later replaced the earlier: say
     * so, as a sync bulk run does, naming the file whose result the folder holds (the summary's
     * output_folder of the others points at that folder). */
    struct cxr_api_ledger *ledger = NULL;
    struct cxr_buf shared = {0};
    size_t shared_count = 0;
    if (status == CXR_OK && cxr_api_ledger_create(&ledger) == CXR_OK &&
        cxr_jobstore_ledger(jobs->audit, job->row.id, ledger, &err) == CXR_OK)
        shared_count = cxr_api_ledger_collisions(ledger, job->row.output_folder,
                                                 job->row.input_folder, 10, &shared);
    if (shared_count) {
        size_t used = strlen(message);
        snprintf(message + used, sizeof message - used, "; %zu " CXR_API_SHARED_ID_TEXT ": %s%s",
                 shared_count, (const char *)shared.data, shared_count > 10 ? "; ..." : "");
    }
    cxr_buf_release(&shared);
    cxr_api_ledger_destroy(ledger);
    cxr_jobstore_time_now(finished);
    if (cxr_jobstore_update(jobs->audit, job->row.id, state, NULL, finished, message, &err) !=
        CXR_OK) {
        cxr_log(job->retrying ? CXR_LOG_DEBUG : CXR_LOG_ERROR,
                "job %s: its end (%s) could not be recorded: %s", job->row.id, state, err.message);
        return false;
    }
    cxr_log(CXR_LOG_INFO, "job %s %s: %s", job->row.id, state, message);
    return true;
}

static void process(struct cxr_api_jobs *jobs, struct active_job *job, size_t index)
{
    const char *path = job->paths[index];
    double start = cxr_api_now();
    struct cxr_api_job pipeline = {
            .input_path = path,
            .output_folder = job->row.output_folder,
            .output_folder_shown = job->row.output_shown,
            .caller_logs_no_space = true,
    };
    struct cxr_api_result result;
    cxr_api_job_run(jobs->api, &pipeline, &result);
    const char *reason = cxr_api_skip_reason(&result);
    /* Outputs that did not fit (a full or read-only output file system) are not the file's
     * fault: it stays pending, and the job waits for room instead of skipping every file left. */
    bool retry = result.no_space;
    pthread_mutex_lock(&jobs->lock);
    bool quiet = job->retrying; /* another chain may clear it, under the lock */
    pthread_mutex_unlock(&jobs->lock);
    if (!retry && result.status != 200)
        cxr_log(CXR_LOG_WARN, "job %s: skipped %s: %s", job->row.id, path, reason);
    char *row = cxr_api_summary_row(path, &result, job->row.output_folder, reason);
    struct cxr_api_audit_extra extra = {
            .output_folder = job->row.output_folder,
            .job_id = job->row.id,
            .job_file_seq = job->seqs[index],
            .job_file_state = retry                  ? NULL
                              : result.status == 200 ? "done"
                                                     : "skipped",
            .csv_row = row ? row : "",
            .quiet_failure = quiet,
    };
    /* A file whose row is not written stays pending and runs again when the job resumes. */
    bool recorded = cxr_api_audit_result_extra(jobs->api, job->row.subject, job->row.request_id,
                                               "bulk_inference/file", path, &result,
                                               (cxr_api_now() - start) * 1000.0, &extra);
    free(row);
    enum cxr_log_level no_room_level = quiet ? CXR_LOG_DEBUG : CXR_LOG_ERROR;
    if (retry)
        cxr_log(no_room_level, "job %s: %s stays pending: no room for its outputs (%s)",
                job->row.id, path, result.cause);
    if (!recorded)
        cxr_log(no_room_level, "job %s: %s not recorded", job->row.id, path);
    pthread_mutex_lock(&jobs->lock);
    job->session_done++;
    job->waiting_for_room |= !recorded || retry;
    if (job->retrying && !job->waiting_for_room) {
        cxr_log(CXR_LOG_INFO, "job %s goes on: room again at try %u (paused since %s)", job->row.id,
                jobs->paused_tries + 1, jobs->paused_since);
        job->retrying = false;
    }
    pthread_mutex_unlock(&jobs->lock);
    cxr_api_result_release(&result);
}

static void kick(struct cxr_api_jobs *jobs, bool retry);

/* Called with the lock held, before pause_jobs: the first pause is an error; the tries that
 * pause again only count, with a warning every RETRY_REPORT_TRIES. */
static void log_pause(struct cxr_api_jobs *jobs, const struct active_job *job)
{
    if (!job->retrying) {
        jobs->paused_tries = 0;
        cxr_jobstore_time_now(jobs->paused_since);
        cxr_log(CXR_LOG_ERROR,
                "job %s paused: no room to record it or write its outputs; tried again in %d s, "
                "when the next job is submitted or at the next start",
                job->row.id, RETRY_SECONDS);
        return;
    }
    jobs->paused_tries++;
    cxr_log(jobs->paused_tries % RETRY_REPORT_TRIES ? CXR_LOG_DEBUG : CXR_LOG_WARN,
            "job %s still paused: no room to record it or write its outputs (try %u since %s; "
            "tried again every %d s)",
            job->row.id, jobs->paused_tries, jobs->paused_since, RETRY_SECONDS);
}

static void job_task(void *arg)
{
    struct cxr_api_jobs *jobs = arg;
    pthread_mutex_lock(&jobs->lock);
    struct active_job *job = jobs->active;
    size_t index =
            !job->cancel && !jobs->stopping && !job->waiting_for_room && job->next < job->count
                    ? job->next++
                    : SIZE_MAX;
    pthread_mutex_unlock(&jobs->lock);
    if (index != SIZE_MAX)
        process(jobs, job, index);
    pthread_mutex_lock(&jobs->lock);
    if (!job->cancel && !jobs->stopping && !job->waiting_for_room && job->next < job->count) {
        pthread_mutex_unlock(&jobs->lock);
        /* Continue the chain behind any waiting single request. */
        if (cxr_api_pool_submit(jobs->pool, job_task, jobs, true) == CXR_OK)
            return;
        pthread_mutex_lock(&jobs->lock);
    }
    if (++job->ended < job->chains) {
        pthread_mutex_unlock(&jobs->lock);
        return;
    }
    /* The last chain of the job: record its end unless the server is stopping with files left
     * (then it stays "running" and resumes at the next start). */
    const char *state = job->cancel               ? "cancelled"
                        : job->waiting_for_room   ? NULL
                        : job->next == job->count ? "done"
                                                  : NULL;
    bool paused = state ? !write_end(jobs, job, state) : job->waiting_for_room;
    /* Starting it again at once would redo its files in a loop while the database cannot
     * record them: it waits, still "running" there, and is tried again later. */
    if (paused)
        log_pause(jobs, job);
    jobs->active = NULL;
    if (paused)
        pause_jobs(jobs, job->row.id);
    active_destroy(job);
    if (!paused)
        kick(jobs, false);
    pthread_mutex_unlock(&jobs->lock);
}

/* Called with the lock held: starts the next job when none runs. retry: retry_main's try of the
 * paused job. */
static void kick(struct cxr_api_jobs *jobs, bool retry)
{
    struct cxr_err err = CXR_ERR_INIT;
    jobs->paused = false;
    while (jobs->active == NULL && !jobs->stopping) {
        char id[CXR_JOB_ID_LENGTH + 1];
        if (cxr_jobstore_next(jobs->audit, false, id, &err) != CXR_OK || id[0] == '\0')
            break;
        struct active_job *job = calloc(1, sizeof *job);
        enum cxr_status status =
                job ? cxr_jobstore_load(jobs->audit, id, &job->row, &err) : CXR_ERR_NOMEM;
        if (status == CXR_OK)
            status = cxr_jobstore_pending(jobs->audit, id, &job->seqs, &job->paths, &job->count,
                                          &err);
        char now[40];
        cxr_jobstore_time_now(now);
        bool resumed = status == CXR_OK && strcmp(job->row.state, "running") == 0;
        bool retrying = retry && strcmp(id, jobs->paused_id) == 0;
        if (status == CXR_OK)
            status = cxr_jobstore_update(jobs->audit, id, "running",
                                         job->row.started[0] ? NULL : now, NULL, NULL, &err);
        if (status != CXR_OK) {
            cxr_log(retrying ? CXR_LOG_DEBUG : CXR_LOG_ERROR, "job %s cannot start: %s", id,
                    err.message);
            bool ended = cxr_jobstore_update(jobs->audit, id, "failed", NULL, now, err.message,
                                             &err) == CXR_OK;
            active_destroy(job);
            if (ended)
                continue;
            pause_jobs(jobs, id); /* still running or queued there: taking it again would loop */
            break;
        }
        job->retrying = retrying;
        cxr_log(retrying ? CXR_LOG_DEBUG : CXR_LOG_INFO, "job %s %s: %zu of %lld files to do", id,
                resumed ? "resumed" : "started", job->count, job->row.total);
        job->session_start = cxr_api_now();
        jobs->active = job;
        if (job->count == 0) {
            bool ended = write_end(jobs, job, "done");
            jobs->active = NULL;
            active_destroy(job);
            if (ended)
                continue;
            pause_jobs(jobs, id);
            break;
        }
        uint32_t chains = cxr_api_pool_workers(jobs->pool);
        if (chains > job->count)
            chains = (uint32_t)job->count;
        /* The lock is held: no chain can end before their number is known. */
        for (; job->chains < chains; job->chains++) {
            if (cxr_api_pool_submit(jobs->pool, job_task, jobs, true) != CXR_OK)
                break;
        }
        if (job->chains == 0) {
            jobs->active = NULL; /* the pool is stopping: the job resumes at the next start */
            active_destroy(job);
            break;
        }
    }
}

/* Kicks a paused job again every RETRY_SECONDS until it runs, or the server stops. */
static void *retry_main(void *arg)
{
    struct cxr_api_jobs *jobs = arg;
    pthread_mutex_lock(&jobs->lock);
    while (!jobs->stopping) {
        if (!jobs->paused) {
            pthread_cond_wait(&jobs->wake, &jobs->lock);
            continue;
        }
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += RETRY_SECONDS;
        if (pthread_cond_timedwait(&jobs->wake, &jobs->lock, &deadline) == ETIMEDOUT &&
            jobs->paused && !jobs->stopping && jobs->active == NULL) {
            cxr_log(CXR_LOG_DEBUG, "jobs: trying the paused job again");
            kick(jobs, true);
        }
    }
    pthread_mutex_unlock(&jobs->lock);
    return NULL;
}

enum cxr_status cxr_api_jobs_create(struct cxr_api *api, struct cxr_api_pool *pool,
                                    struct cxr_api_jobs **out, struct cxr_err *err)
{
    struct cxr_audit *audit = cxr_api_audit(api);
    if (audit == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "jobs: no [audit] database");
    struct cxr_api_jobs *jobs = calloc(1, sizeof *jobs);
    if (jobs == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "jobs: out of memory");
    jobs->api = api;
    jobs->pool = pool;
    jobs->audit = audit;
    pthread_mutex_init(&jobs->lock, NULL);
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&jobs->wake, &monotonic);
    pthread_condattr_destroy(&monotonic);
    jobs->retry_started = pthread_create(&jobs->retry_thread, NULL, retry_main, jobs) == 0;
    if (!jobs->retry_started)
        cxr_log(CXR_LOG_WARN, "jobs: no retry thread; a paused job waits for the next submission");
    pthread_mutex_lock(&jobs->lock);
    /* Jobs cancelled while their last files ran, when the process died before their end. */
    for (;;) {
        char id[CXR_JOB_ID_LENGTH + 1];
        struct active_job ended = {0};
        if (cxr_jobstore_next(audit, true, id, err) != CXR_OK || id[0] == '\0')
            break;
        if (cxr_jobstore_load(audit, id, &ended.row, err) != CXR_OK)
            break;
        bool recorded = write_end(jobs, &ended, "cancelled");
        cxr_jobstore_job_release(&ended.row);
        if (!recorded) {
            pause_jobs(jobs, id);
            break;
        }
    }
    kick(jobs, false);
    pthread_mutex_unlock(&jobs->lock);
    *out = jobs;
    return CXR_OK;
}

bool cxr_api_jobs_paused(struct cxr_api_jobs *jobs)
{
    if (jobs == NULL)
        return false;
    pthread_mutex_lock(&jobs->lock);
    bool paused = jobs->paused || (jobs->active && jobs->active->retrying);
    pthread_mutex_unlock(&jobs->lock);
    return paused;
}

void cxr_api_jobs_stop(struct cxr_api_jobs *jobs)
{
    if (jobs == NULL)
        return;
    pthread_mutex_lock(&jobs->lock);
    jobs->stopping = true;
    pthread_cond_signal(&jobs->wake);
    pthread_mutex_unlock(&jobs->lock);
    if (jobs->retry_started)
        pthread_join(jobs->retry_thread, NULL);
    jobs->retry_started = false;
}

void cxr_api_jobs_destroy(struct cxr_api_jobs *jobs)
{
    if (jobs == NULL)
        return;
    cxr_api_jobs_stop(jobs);      /* joins the retry thread when not stopped yet */
    active_destroy(jobs->active); /* NULL once the pool has run every chain to its end */
    pthread_cond_destroy(&jobs->wake);
    pthread_mutex_destroy(&jobs->lock);
    free(jobs);
}

/* ---- answers ---- */

static json_t *time_or_null(const char *text)
{
    return text && text[0] ? json_string(text) : json_null();
}

/* Called with the lock held. NULL when the job does not exist (or out of memory). */
static json_t *job_object(struct cxr_api_jobs *jobs, const char *id, enum cxr_status *status)
{
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_jobstore_job row;
    struct cxr_jobstore_counts counts;
    *status = cxr_jobstore_load(jobs->audit, id, &row, &err);
    if (*status != CXR_OK)
        return NULL;
    *status = cxr_jobstore_counts(jobs->audit, id, &counts, &err);
    if (*status != CXR_OK) {
        cxr_jobstore_job_release(&row);
        return NULL;
    }
    json_t *eta = json_null();
    struct active_job *active = jobs->active;
    if (active && strcmp(active->row.id, id) == 0 && active->session_done > 0 &&
        strcmp(row.state, "running") == 0) {
        double per_file = (cxr_api_now() - active->session_start) / (double)active->session_done;
        eta = json_real((double)(row.total - counts.done) * per_file);
    }
    /* The database may be unable to take a message: the answer says it from memory. */
    bool paused =
            jobs->paused && strcmp(jobs->paused_id, id) == 0 && strcmp(row.state, "running") == 0;
    char summary[4200];
    cxr_api_format(summary, sizeof summary, "%s/%s", row.output_shown, row.summary);
    json_t *object = json_pack(
            "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:o, s:o, s:o, s:s, s:s}",
            "id", row.id, "state", row.state, "input_folder_path", row.input_folder,
            "output_folder_path", row.output_shown, "total", (json_int_t)row.total, "done",
            (json_int_t)counts.done, "skipped", (json_int_t)counts.skipped, "tb_presumptive",
            (json_int_t)counts.tb_presumptive, "abnormal", (json_int_t)counts.abnormal, "normal",
            (json_int_t)counts.normal, "created", row.created, "started", time_or_null(row.started),
            "finished", time_or_null(row.finished), "eta_seconds", eta, "summary_csv", summary,
            "message", paused ? PAUSED_MESSAGE : row.message);
    cxr_jobstore_job_release(&row);
    if (object == NULL)
        *status = CXR_ERR_NOMEM;
    return object;
}

bool cxr_api_bulk_is_async(const json_t *body)
{
    return json_is_true(json_object_get(body, "async"));
}

void cxr_api_jobs_submit(struct cxr_api_jobs *jobs, json_t *body, const char *subject,
                         const char *request_id, struct cxr_api_response *response)
{
    struct cxr_api_bulk_request request;
    if (!cxr_api_bulk_request_check(jobs->api, body, &request, response))
        return;
    struct cxr_jobstore_job row = {
            .subject = (char *)(subject ? subject : ""),
            .request_id = (char *)(request_id ? request_id : ""),
            .input_folder = request.input_folder,
            .output_folder = request.output_folder,
            .output_shown = request.output_shown,
    };
    unsigned char random[CXR_JOB_ID_LENGTH / 2];
    if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random) {
        cxr_api_bulk_request_release(&request);
        reply_error(response, CXR_API_JOBS_INTERNAL, NULL);
        return;
    }
    for (size_t i = 0; i < sizeof random; i++)
        snprintf(row.id + 2 * i, 3, "%02x", random[i]);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char summary[64], created[40];
    cxr_api_summary_name(&now, summary, sizeof summary);
    cxr_jobstore_time_now(created);
    row.summary = summary;
    row.created = created;
    struct cxr_err err = CXR_ERR_INIT;
    pthread_mutex_lock(&jobs->lock);
    enum cxr_status status =
            cxr_jobstore_insert(jobs->audit, &row, request.files.paths, request.files.count, &err);
    json_t *object = NULL;
    if (status == CXR_OK) {
        cxr_log(CXR_LOG_INFO, "job %s queued: %zu DICOM files under %s", row.id,
                request.files.count, request.input_folder);
        kick(jobs, false);
        object = job_object(jobs, row.id, &status);
    } else {
        cxr_log(CXR_LOG_ERROR, "job: %s", err.message);
    }
    pthread_mutex_unlock(&jobs->lock);
    if (object) {
        char message[128];
        cxr_api_format(message, sizeof message, "job %s created: %zu DICOM files", row.id,
                       request.files.count);
        struct cxr_audit_record record = {
                .subject = row.subject,
                .route = "bulk_inference",
                .input_path = request.input_folder,
                .status = 202,
                .message = message,
                .request_id = row.request_id,
                .job_id = row.id,
        };
        cxr_api_audit_record(jobs->api, &record);
    }
    cxr_api_bulk_request_release(&request);
    reply(response, 202, object, "Bulk inference job accepted.");
}

void cxr_api_jobs_get(struct cxr_api_jobs *jobs, const char *id, struct cxr_api_response *response)
{
    enum cxr_status status;
    pthread_mutex_lock(&jobs->lock);
    json_t *object = job_object(jobs, id, &status);
    pthread_mutex_unlock(&jobs->lock);
    if (status == CXR_ERR_NOT_FOUND)
        reply_error(response, CXR_API_JOB_NOT_FOUND, id);
    else
        reply(response, 200, object, "Job found.");
}

void cxr_api_jobs_cancel(struct cxr_api_jobs *jobs, const char *id,
                         struct cxr_api_response *response)
{
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_jobstore_job row;
    pthread_mutex_lock(&jobs->lock);
    enum cxr_status status = cxr_jobstore_load(jobs->audit, id, &row, &err);
    bool loaded = status == CXR_OK;
    bool queued = loaded && strcmp(row.state, "queued") == 0;
    bool active = jobs->active && strcmp(jobs->active->row.id, id) == 0;
    char detail[64] = "";
    if (queued || (loaded && strcmp(row.state, "running") == 0)) {
        /* Only a cancel the database holds is answered as done (a full or read-only database
         * would keep the job, and run it, after "Job cancelled."). */
        status = cxr_jobstore_update(jobs->audit, id, "cancelled", NULL, NULL, NULL, &err);
        if (status != CXR_OK) {
            cxr_log(CXR_LOG_ERROR, "job %s: cancel not recorded: %s", id, err.message);
        } else if (!active) {
            /* No file in flight (queued, or paused for room): it ends now, its summary lists
             * every file left as not processed. */
            struct active_job ended = {.row = row};
            write_end(jobs, &ended, "cancelled");
        } else {
            /* Files in flight finish; the last chain records the end and writes the summary. */
            jobs->active->cancel = true;
            cxr_log(CXR_LOG_INFO, "job %s cancelled", id);
        }
    } else if (loaded) {
        cxr_api_format(detail, sizeof detail, "%s is %s", id, row.state);
    }
    json_t *object = status == CXR_OK && !detail[0] ? job_object(jobs, id, &status) : NULL;
    pthread_mutex_unlock(&jobs->lock);
    if (loaded)
        cxr_jobstore_job_release(&row);
    if (status == CXR_ERR_NOT_FOUND)
        reply_error(response, CXR_API_JOB_NOT_FOUND, id);
    else if (detail[0])
        reply_error(response, CXR_API_JOB_FINISHED, detail);
    else
        reply(response, 200, object, "Job cancelled.");
}

void cxr_api_jobs_list(struct cxr_api_jobs *jobs, size_t limit, struct cxr_api_response *response)
{
    struct cxr_err err = CXR_ERR_INIT;
    char(*ids)[CXR_JOB_ID_LENGTH + 1] = NULL;
    size_t count = 0;
    json_t *list = json_array();
    pthread_mutex_lock(&jobs->lock);
    enum cxr_status status =
            list ? cxr_jobstore_recent(jobs->audit, limit, &ids, &count, &err) : CXR_ERR_NOMEM;
    for (size_t i = 0; status == CXR_OK && i < count; i++) {
        json_t *object = job_object(jobs, ids[i], &status);
        if (object && json_array_append_new(list, object) != 0)
            status = CXR_ERR_NOMEM;
    }
    pthread_mutex_unlock(&jobs->lock);
    free(ids);
    if (status != CXR_OK) {
        json_decref(list);
        list = NULL;
    }
    reply(response, 200, list, "Recent jobs, newest first.");
}

bool cxr_api_jobs_summary(struct cxr_api_jobs *jobs, const char *id, struct cxr_buf *csv,
                          struct cxr_api_response *response)
{
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_jobstore_job row;
    pthread_mutex_lock(&jobs->lock);
    enum cxr_status status = cxr_jobstore_load(jobs->audit, id, &row, &err);
    char **rows = NULL;
    size_t count = 0;
    if (status == CXR_OK) {
        /* The same records as the file the job writes when it ends (and, before, the files
         * not yet processed). */
        status = cxr_jobstore_rows(jobs->audit, id,
                                   strcmp(row.state, "cancelled") == 0 ? CANCELLED_REASON
                                                                       : PENDING_REASON,
                                   &rows, &count, &err);
        cxr_jobstore_job_release(&row);
    }
    pthread_mutex_unlock(&jobs->lock);
    if (status == CXR_OK)
        status = cxr_api_summary_header(csv);
    for (size_t i = 0; i < count; i++) {
        if (status == CXR_OK)
            status = cxr_buf_append(csv, rows[i], strlen(rows[i]));
        free(rows[i]);
    }
    free(rows);
    if (status == CXR_ERR_NOT_FOUND)
        return reply_error(response, CXR_API_JOB_NOT_FOUND, id);
    if (status != CXR_OK)
        return reply_error(response, CXR_API_JOBS_INTERNAL, NULL);
    return true;
}
