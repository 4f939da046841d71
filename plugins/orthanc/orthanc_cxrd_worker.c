/* orthanc-cxrd's workers: take instance IDs from the queue Orthanc's change callback fills,
 * run cxrd's pipeline on each (the same job as `"dicom_outputs": true`), store the three DICOM
 * outputs back into Orthanc, forward them when configured, and leave a record on the instance
 * (Orthanc metadata) so that nothing is processed twice, across restarts included. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api/api_job.h"
#include "dicom/dicom.h"
#include "orthanc_cxrd.h"

static const char *const output_suffixes[3] = {"_sr.dcm", "_heatmap.dcm", "_report.dcm"};

void cxrd_log_warning(struct cxrd_plugin *plugin, const char *format, ...)
{
    char message[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    OrthancPluginLogWarning(plugin->context, message);
}

static double now_seconds(void)
{
    return cxr_api_now();
}

char *cxrd_record_get(struct cxrd_plugin *plugin, const char *instance_id)
{
    char uri[160];
    snprintf(uri, sizeof uri, "/instances/%s/metadata/%u", instance_id, plugin->metadata_index);
    OrthancPluginMemoryBuffer answer = {0};
    if (OrthancPluginRestApiGet(plugin->context, &answer, uri) != OrthancPluginErrorCode_Success)
        return NULL;
    char *text = malloc(answer.size + 1);
    if (text) {
        memcpy(text, answer.data, answer.size);
        text[answer.size] = '\0';
    }
    OrthancPluginFreeMemoryBuffer(plugin->context, &answer);
    return text;
}

bool cxrd_record_put(struct cxrd_plugin *plugin, const char *instance_id, json_t *record)
{
    char *text = json_dumps(record, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (text == NULL)
        return false;
    char uri[160];
    snprintf(uri, sizeof uri, "/instances/%s/metadata/%u", instance_id, plugin->metadata_index);
    OrthancPluginMemoryBuffer answer = {0};
    OrthancPluginErrorCode code =
            OrthancPluginRestApiPut(plugin->context, &answer, uri, text, (uint32_t)strlen(text));
    free(text);
    if (code == OrthancPluginErrorCode_Success)
        OrthancPluginFreeMemoryBuffer(plugin->context, &answer);
    else
        cxrd_log_warning(plugin, "cxrd: cannot record the outcome on instance %s (error %d)",
                         instance_id, (int)code);
    return code == OrthancPluginErrorCode_Success;
}

static bool stopping(struct cxrd_plugin *plugin)
{
    pthread_mutex_lock(&plugin->lock);
    bool value = plugin->stopping;
    pthread_mutex_unlock(&plugin->lock);
    return value;
}

static void count(struct cxrd_plugin *plugin, const char *instance_id, enum cxrd_outcome outcome,
                  const char *message, double seconds)
{
    pthread_mutex_lock(&plugin->lock);
    uint64_t total = ++plugin->outcomes[outcome];
    plugin->busy_seconds += seconds;
    if (outcome != CXRD_OWN_OUTPUT && outcome != CXRD_ALREADY) {
        struct cxrd_recent *recent = &plugin->recent[plugin->recent_next];
        plugin->recent_next = (plugin->recent_next + 1) % CXRD_RECENT_COUNT;
        snprintf(recent->instance, sizeof recent->instance, "%s", instance_id);
        recent->outcome = outcome;
        snprintf(recent->message, sizeof recent->message, "%s", message ? message : "");
    }
    pthread_mutex_unlock(&plugin->lock);
    static const char *const metric_names[CXRD_OUTCOME_COUNT] = {"cxrd_instances_done",
                                                                 "cxrd_instances_refused",
                                                                 "cxrd_instances_failed",
                                                                 "cxrd_instances_own_output",
                                                                 "cxrd_instances_already_processed",
                                                                 "cxrd_instances_deleted"};
    OrthancPluginSetMetricsValue(plugin->context, metric_names[outcome], (float)total,
                                 OrthancPluginMetricsType_Default);
}

/* Records a refusal or failure on the instance and in the counters, and logs it. */
static void finish_without_outputs(struct cxrd_plugin *plugin, const char *instance_id,
                                   enum cxrd_outcome outcome, const char *message, double seconds)
{
    json_t *record =
            json_pack("{s:s, s:s}", "status", cxrd_outcome_name(outcome), "message", message);
    if (record)
        cxrd_record_put(plugin, instance_id, record);
    json_decref(record);
    cxrd_log_warning(plugin, "cxrd: instance %s %s: %s", instance_id, cxrd_outcome_name(outcome),
                     message);
    count(plugin, instance_id, outcome, message, seconds);
}

static char *path_join(const char *folder, const char *a, const char *b)
{
    size_t size = strlen(folder) + strlen(a) + strlen(b) + 2;
    char *path = malloc(size);
    if (path)
        snprintf(path, size, "%s/%s%s", folder, a, b);
    return path;
}

static void remove_tree(const char *folder)
{
    DIR *dir = opendir(folder);
    if (dir == NULL)
        return;
    for (struct dirent *entry; (entry = readdir(dir)) != NULL;) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char *path = path_join(folder, entry->d_name, "");
        if (path)
            unlink(path);
        free(path);
    }
    closedir(dir);
    rmdir(folder);
}

/* POSTs a DICOM file to /instances; fills the new instance's ID. */
static bool store_file(struct cxrd_plugin *plugin, const char *path, char id[CXRD_ORTHANC_ID_SIZE])
{
    struct cxr_buf bytes = {0};
    if (cxr_file_read(path, (size_t)1 << 30, &bytes, NULL) != CXR_OK) {
        cxr_buf_release(&bytes);
        return false;
    }
    OrthancPluginMemoryBuffer answer = {0};
    OrthancPluginErrorCode code = OrthancPluginRestApiPost(plugin->context, &answer, "/instances",
                                                           bytes.data, (uint32_t)bytes.len);
    cxr_buf_release(&bytes);
    if (code != OrthancPluginErrorCode_Success)
        return false;
    json_t *reply = json_loadb(answer.data, answer.size, 0, NULL);
    OrthancPluginFreeMemoryBuffer(plugin->context, &answer);
    const char *stored = json_string_value(json_object_get(reply, "ID"));
    bool ok = stored != NULL && strlen(stored) < CXRD_ORTHANC_ID_SIZE;
    if (ok)
        snprintf(id, CXRD_ORTHANC_ID_SIZE, "%s", stored);
    json_decref(reply);
    return ok;
}

static json_t *rest_get_json(struct cxrd_plugin *plugin, const char *uri)
{
    OrthancPluginMemoryBuffer answer = {0};
    if (OrthancPluginRestApiGet(plugin->context, &answer, uri) != OrthancPluginErrorCode_Success)
        return NULL;
    json_t *value = json_loadb(answer.data, answer.size, 0, NULL);
    OrthancPluginFreeMemoryBuffer(plugin->context, &answer);
    return value;
}

/* The outputs an earlier analysis of this instance left in its study, or NULL when none. With
 * OverwriteInstances, Orthanc replaces a re-sent instance under the same ID and drops its
 * metadata, our record with it; the outputs' records still name their source. */
static json_t *earlier_outputs(struct cxrd_plugin *plugin, const char *instance_id)
{
    char uri[160];
    snprintf(uri, sizeof uri, "/instances/%s/study", instance_id);
    json_t *study = rest_get_json(plugin, uri);
    json_t *found = NULL;
    json_t *series_ids = json_object_get(study, "Series");
    for (size_t i = 0; i < json_array_size(series_ids); i++) {
        const char *series_id = json_string_value(json_array_get(series_ids, i));
        if (series_id == NULL || strlen(series_id) >= CXRD_ORTHANC_ID_SIZE)
            continue;
        snprintf(uri, sizeof uri, "/series/%s", series_id);
        json_t *series = rest_get_json(plugin, uri);
        const char *manufacturer = json_string_value(
                json_object_get(json_object_get(series, "MainDicomTags"), "Manufacturer"));
        json_t *instances = json_object_get(series, "Instances");
        for (size_t j = 0;
             manufacturer && strcmp(manufacturer, "cxrd") == 0 && j < json_array_size(instances);
             j++) {
            const char *output_id = json_string_value(json_array_get(instances, j));
            char *text = output_id ? cxrd_record_get(plugin, output_id) : NULL;
            json_t *record = text ? json_loads(text, 0, NULL) : NULL;
            free(text);
            const char *source = json_string_value(json_object_get(record, "source"));
            if (source && strcmp(source, instance_id) == 0) {
                if (found == NULL)
                    found = json_array();
                json_array_append_new(found, json_string(output_id));
            }
            json_decref(record);
        }
        json_decref(series);
    }
    json_decref(study);
    return found;
}

/* Stores the three outputs of an analysed instance, records them, forwards them. */
static void store_outputs(struct cxrd_plugin *plugin, const char *instance_id,
                          const char *patient_folder, json_t *data, double seconds)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < 3 && ids; i++) {
        char *path = path_join(patient_folder, instance_id, output_suffixes[i]);
        char id[CXRD_ORTHANC_ID_SIZE];
        bool stored = path && store_file(plugin, path, id);
        free(path);
        if (!stored) {
            json_decref(ids);
            finish_without_outputs(plugin, instance_id, CXRD_FAILED,
                                   "storing the DICOM outputs into Orthanc failed", seconds);
            return;
        }
        json_array_append_new(ids, json_string(id));
        json_t *record = json_pack("{s:s, s:s}", "status", cxrd_outcome_name(CXRD_OWN_OUTPUT),
                                   "source", instance_id);
        if (record)
            cxrd_record_put(plugin, id, record);
        json_decref(record);
    }
    if (ids == NULL)
        return;
    bool forwarded = true;
    if (plugin->forward_to && stopping(plugin)) {
        forwarded = false; /* the record says so: the next start forwards them */
    } else if (plugin->forward_to) {
        if (plugin->forward_source)
            json_array_append_new(ids, json_string(instance_id));
        forwarded = cxrd_forward(plugin, ids);
        if (plugin->forward_source)
            json_array_remove(ids, json_array_size(ids) - 1);
        pthread_mutex_lock(&plugin->lock);
        if (forwarded)
            plugin->forwarded++;
        else
            plugin->forward_failed++;
        pthread_mutex_unlock(&plugin->lock);
        if (!forwarded) {
            cxrd_log_warning(plugin,
                             "cxrd: forwarding the outputs of %s to %s failed; retried in %u s",
                             instance_id, plugin->forward_to, plugin->forward_retry_seconds);
            cxrd_retry_add(plugin, instance_id);
        }
    }
    json_t *record = json_pack("{s:s, s:O, s:O}", "status", cxrd_outcome_name(CXRD_DONE), "outputs",
                               ids, "data", data);
    if (record && plugin->forward_to)
        json_object_set_new(record, "forwarded", json_boolean(forwarded));
    if (record)
        cxrd_record_put(plugin, instance_id, record);
    json_decref(record);
    json_decref(ids);
    count(plugin, instance_id, CXRD_DONE, NULL, seconds);
}

static void process(struct cxrd_plugin *plugin, const char *instance_id)
{
    if (stopping(plugin))
        return; /* kept with the queue for the next start */
    char *existing = cxrd_record_get(plugin, instance_id);
    if (existing != NULL) {
        /* Stored but not forwarded when Orthanc stopped: the forward is still owed. */
        json_t *record = json_loads(existing, 0, NULL);
        free(existing);
        if (plugin->forward_to && json_is_false(json_object_get(record, "forwarded")))
            cxrd_retry_add(plugin, instance_id);
        json_decref(record);
        count(plugin, instance_id, CXRD_ALREADY, NULL, 0);
        return;
    }
    double start = now_seconds();
    OrthancPluginMemoryBuffer dicom = {0};
    if (OrthancPluginGetDicomForInstance(plugin->context, &dicom, instance_id) !=
        OrthancPluginErrorCode_Success) {
        /* Deleted while queued: nothing to record it on, but counted, so that the outcomes
         * add up to what was received. */
        count(plugin, instance_id, CXRD_DELETED, "not in Orthanc any more (deleted while queued)",
              0);
        return;
    }

    /* The plugin's own outputs come back through the change callback: recognise them by the
     * equipment they name, before any work (the record put after storing may come later). */
    struct cxr_dicom_file *file = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    char patient_id[80] = "";
    enum cxr_status status =
            cxr_dicom_file_parse(dicom.data, dicom.size, &plugin->config.limits, &file, &err);
    if (status == CXR_OK) {
        const struct cxr_dicom_meta *meta = cxr_dicom_file_meta(file);
        bool own = strcmp(meta->manufacturer, "cxrd") == 0;
        snprintf(patient_id, sizeof patient_id, "%s", meta->patient_id);
        cxr_dicom_file_destroy(file);
        if (own) {
            OrthancPluginFreeMemoryBuffer(plugin->context, &dicom);
            count(plugin, instance_id, CXRD_OWN_OUTPUT, NULL, 0);
            return;
        }
    }

    char *input = path_join(plugin->work_dir, instance_id, ".dcm");
    char *output = path_join(plugin->work_dir, "out", "");
    char *patient_folder = output ? path_join(output, instance_id, "") : NULL;
    bool written = input && patient_folder &&
                   cxr_file_write_atomic(input, dicom.data, dicom.size, &err) == CXR_OK;
    OrthancPluginFreeMemoryBuffer(plugin->context, &dicom);
    if (!written) {
        finish_without_outputs(plugin, instance_id, CXRD_FAILED,
                               err.message[0] ? err.message : "out of memory",
                               now_seconds() - start);
    } else {
        /* The Orthanc ID names the work folder: unique and a safe folder name. */
        struct cxr_api_job job = {
                .input_path = input,
                .patient_id = instance_id,
                .output_folder = output,
                .output_folder_shown = output,
                .dicom_outputs = true,
        };
        struct cxr_api_result result;
        cxr_api_job_run(plugin->api, &job, &result);
        double seconds = now_seconds() - start;
        if (result.status == 200) {
            /* Paths into the work folder mean nothing to a client (the outputs' Orthanc IDs
             * do), and the patient is the file's, not the work folder's name. */
            static const char *const local[] = {"source_image", "heatmap", "dicom_sr",
                                                "dicom_heatmap", "dicom_report"};
            for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
                json_object_del(result.data, local[i]);
            json_object_set_new(json_object_get(result.data, "metadata"), "patient_id",
                                json_string(patient_id));
            json_t *earlier = stopping(plugin) ? NULL : earlier_outputs(plugin, instance_id);
            if (stopping(plugin)) {
                /* Kept with the queue by cxrd_pending_save: analysed again at the next start
                 * rather than stored half while Orthanc shuts down. */
                json_decref(earlier);
                cxrd_log_warning(plugin,
                                 "cxrd: instance %s left for the next start (Orthanc stops)",
                                 instance_id);
            } else if (earlier == NULL) {
                store_outputs(plugin, instance_id, patient_folder, result.data, seconds);
            } else {
                /* Re-sent and overwritten: the study keeps one set of results. */
                json_t *record =
                        json_pack("{s:s, s:O, s:O, s:b}", "status", cxrd_outcome_name(CXRD_DONE),
                                  "outputs", earlier, "data", result.data, "resent", 1);
                if (record)
                    cxrd_record_put(plugin, instance_id, record);
                json_decref(record);
                json_decref(earlier);
                cxrd_log_warning(
                        plugin,
                        "cxrd: instance %s was stored again; its earlier outputs are kept, "
                        "none added",
                        instance_id);
                count(plugin, instance_id, CXRD_ALREADY, NULL, seconds);
            }
        } else {
            finish_without_outputs(plugin, instance_id,
                                   result.status == 400 ? CXRD_REFUSED : CXRD_FAILED,
                                   result.status == 400 ? result.message : result.cause, seconds);
        }
        cxr_api_result_release(&result);
    }
    if (input)
        unlink(input);
    if (patient_folder)
        remove_tree(patient_folder);
    free(input);
    free(output);
    free(patient_folder);
}

/* Every stored instance without a record is queued (ResumeOnStart): those that arrived while
 * the plugin was not running, or were still queued when Orthanc stopped. */
static void scan(struct cxrd_plugin *plugin)
{
    OrthancPluginMemoryBuffer answer = {0};
    if (OrthancPluginRestApiGet(plugin->context, &answer, "/instances") !=
        OrthancPluginErrorCode_Success)
        return;
    json_t *ids = json_loadb(answer.data, answer.size, 0, NULL);
    OrthancPluginFreeMemoryBuffer(plugin->context, &answer);
    size_t queued = 0;
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        char *record = id ? cxrd_record_get(plugin, id) : NULL;
        if (id && record == NULL) {
            cxrd_enqueue(plugin, id);
            queued++;
        }
        free(record);
    }
    json_decref(ids);
    pthread_mutex_lock(&plugin->lock);
    plugin->scans++;
    pthread_mutex_unlock(&plugin->lock);
    if (queued)
        cxrd_log_warning(plugin, "cxrd: resuming %zu stored instances without a cxrd record",
                         queued);
}

/* Whether a forward retry is due and no worker is on them (under lock). */
static bool retry_due(struct cxrd_plugin *plugin)
{
    return plugin->retry_count > 0 && !plugin->retrying &&
           cxrd_monotonic_seconds() >= plugin->retry_due;
}

/* Waits for work: with forwards waiting for a retry, at most until they are due. */
static void wait_for_work(struct cxrd_plugin *plugin)
{
    while (!plugin->stopping && plugin->queue_count == 0 && !plugin->scan_pending &&
           !retry_due(plugin)) {
        if (plugin->retry_count > 0 && !plugin->retrying) {
            struct timespec until = {
                    .tv_sec = (time_t)plugin->retry_due,
                    .tv_nsec =
                            (long)((plugin->retry_due - (double)(time_t)plugin->retry_due) * 1e9)};
            pthread_cond_timedwait(&plugin->wake, &plugin->lock, &until);
        } else {
            pthread_cond_wait(&plugin->wake, &plugin->lock);
        }
    }
}

static char *busy_slot(struct cxrd_plugin *plugin, const char *instance_id)
{
    for (unsigned i = 0; i < CXRD_MAX_WORKERS; i++)
        if (strcmp(plugin->busy[i], instance_id) == 0)
            return plugin->busy[i];
    return NULL;
}

static void *worker_main(void *arg)
{
    struct cxrd_plugin *plugin = arg;
    pthread_mutex_lock(&plugin->lock);
    for (;;) {
        wait_for_work(plugin);
        if (plugin->stopping)
            break;
        if (plugin->scan_pending) {
            plugin->scan_pending = false;
            pthread_mutex_unlock(&plugin->lock);
            scan(plugin);
            pthread_mutex_lock(&plugin->lock);
            continue;
        }
        if (retry_due(plugin)) {
            plugin->retrying = true;
            pthread_mutex_unlock(&plugin->lock);
            cxrd_retry_forwards(plugin);
            pthread_mutex_lock(&plugin->lock);
            plugin->retrying = false;
            continue;
        }
        char id[CXRD_ORTHANC_ID_SIZE];
        memcpy(id, plugin->queue[plugin->queue_head], sizeof id);
        plugin->queue_head = (plugin->queue_head + 1) % CXRD_QUEUE_CAPACITY;
        plugin->queue_count--;
        if (busy_slot(plugin, id) != NULL) {
            /* Queued twice and another worker is on it: its record settles this copy. */
            pthread_mutex_unlock(&plugin->lock);
            count(plugin, id, CXRD_ALREADY, NULL, 0);
            pthread_mutex_lock(&plugin->lock);
            continue;
        }
        char *slot = busy_slot(plugin, ""); /* at most worker_count are taken */
        memcpy(slot, id, sizeof id);
        plugin->in_progress++;
        pthread_mutex_unlock(&plugin->lock);
        process(plugin, id);
        pthread_mutex_lock(&plugin->lock);
        slot[0] = '\0';
        plugin->in_progress--;
    }
    pthread_mutex_unlock(&plugin->lock);
    return NULL;
}

const char *cxrd_pending_state(struct cxrd_plugin *plugin, const char *instance_id)
{
    if (instance_id[0] == '\0')
        return NULL;
    if (busy_slot(plugin, instance_id) != NULL)
        return "in progress";
    for (size_t i = 0; i < plugin->queue_count; i++) {
        size_t index = (plugin->queue_head + i) % CXRD_QUEUE_CAPACITY;
        if (strcmp(plugin->queue[index], instance_id) == 0)
            return "queued";
    }
    return NULL;
}

void cxrd_enqueue(struct cxrd_plugin *plugin, const char *instance_id)
{
    if (strlen(instance_id) >= CXRD_ORTHANC_ID_SIZE)
        return;
    pthread_mutex_lock(&plugin->lock);
    plugin->received++;
    bool full = plugin->queue_count == CXRD_QUEUE_CAPACITY;
    if (full) {
        plugin->dropped++;
    } else {
        size_t tail = (plugin->queue_head + plugin->queue_count) % CXRD_QUEUE_CAPACITY;
        snprintf(plugin->queue[tail], CXRD_ORTHANC_ID_SIZE, "%s", instance_id);
        plugin->queue_count++;
        pthread_cond_signal(&plugin->wake);
    }
    pthread_mutex_unlock(&plugin->lock);
    if (full)
        cxrd_log_warning(plugin,
                         "cxrd: queue full (%d): instance %s not queued (ResumeOnStart "
                         "picks it up at the next start)",
                         CXRD_QUEUE_CAPACITY, instance_id);
}

void cxrd_request_scan(struct cxrd_plugin *plugin)
{
    pthread_mutex_lock(&plugin->lock);
    plugin->scan_pending = true;
    pthread_cond_signal(&plugin->wake);
    pthread_mutex_unlock(&plugin->lock);
}

bool cxrd_workers_start(struct cxrd_plugin *plugin)
{
    for (unsigned i = 0; i < plugin->worker_count; i++) {
        if (pthread_create(&plugin->workers[i], NULL, worker_main, plugin) != 0) {
            cxrd_log_warning(plugin, "cxrd: cannot start worker %u: %s", i, strerror(errno));
            cxrd_workers_stop(plugin);
            return false;
        }
        plugin->workers_started++;
    }
    return true;
}

void cxrd_workers_stop(struct cxrd_plugin *plugin)
{
    pthread_mutex_lock(&plugin->lock);
    plugin->stopping = true;
    pthread_cond_broadcast(&plugin->wake);
    pthread_mutex_unlock(&plugin->lock);
    for (unsigned i = 0; i < plugin->workers_started; i++)
        pthread_join(plugin->workers[i], NULL);
    plugin->workers_started = 0;
}
