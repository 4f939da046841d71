/* orthanc-cxrd's entry points: Orthanc loads the plugin, which reads the "CXRD" section of
 * Orthanc's configuration, loads the model once, starts its workers, queues every new instance
 * from the change callback (which never waits on work) and answers GET /cxrd/status,
 * /cxrd/instances/{id} and /cxrd/metrics. docs/pacs.md describes the deployment. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cxr_version.h"
#include "orthanc_cxrd.h"
#include "report/report.h"

#define DEFAULT_METADATA_INDEX 4242
#define DEFAULT_WORKERS        2
#define DEFAULT_FORWARD_RETRY  60

static struct cxrd_plugin plugin;

const char *cxrd_outcome_name(enum cxrd_outcome outcome)
{
    static const char *const names[CXRD_OUTCOME_COUNT] = {"done",   "refused",           "failed",
                                                          "output", "already processed", "deleted"};
    return outcome < CXRD_OUTCOME_COUNT ? names[outcome] : "unknown";
}

static void log_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void log_error(const char *format, ...)
{
    char message[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    OrthancPluginLogError(plugin.context, message);
}

static OrthancPluginErrorCode on_change(OrthancPluginChangeType change_type,
                                        OrthancPluginResourceType resource_type,
                                        const char *resource_id)
{
    if (change_type == OrthancPluginChangeType_NewInstance &&
        resource_type == OrthancPluginResourceType_Instance) {
        cxrd_enqueue(&plugin, resource_id);
    } else if (change_type == OrthancPluginChangeType_OrthancStarted) {
        /* The REST API and the database are usable from now on. */
        cxrd_pending_restore(&plugin);
        if (plugin.resume_on_start)
            cxrd_request_scan(&plugin);
    } else if (change_type == OrthancPluginChangeType_OrthancStopped) {
        cxrd_pending_save(&plugin);
    }
    return OrthancPluginErrorCode_Success;
}

static void answer_json(OrthancPluginRestOutput *output, json_t *value)
{
    char *text = value ? json_dumps(value, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) : NULL;
    if (text == NULL) {
        OrthancPluginSendHttpStatusCode(plugin.context, output, 500);
        return;
    }
    OrthancPluginAnswerBuffer(plugin.context, output, text, (uint32_t)strlen(text),
                              "application/json");
    free(text);
}

static bool only_get(OrthancPluginRestOutput *output, const OrthancPluginHttpRequest *request)
{
    if (request->method == OrthancPluginHttpMethod_Get)
        return true;
    OrthancPluginSendMethodNotAllowed(plugin.context, output, "GET");
    return false;
}

static OrthancPluginErrorCode rest_status(OrthancPluginRestOutput *output, const char *url,
                                          const OrthancPluginHttpRequest *request)
{
    (void)url;
    if (!only_get(output, request))
        return OrthancPluginErrorCode_Success;
    json_t *status = json_object();
    json_t *outcomes = json_object();
    json_t *recent = json_array();
    pthread_mutex_lock(&plugin.lock);
    for (int i = 0; i < CXRD_OUTCOME_COUNT; i++)
        json_object_set_new(outcomes, cxrd_outcome_name((enum cxrd_outcome)i),
                            json_integer((json_int_t)plugin.outcomes[i]));
    for (size_t i = 0; i < CXRD_RECENT_COUNT; i++) {
        /* Newest first. */
        const struct cxrd_recent *entry =
                &plugin.recent[(plugin.recent_next + CXRD_RECENT_COUNT - 1 - i) %
                               CXRD_RECENT_COUNT];
        if (entry->instance[0] == '\0')
            continue;
        json_array_append_new(recent, json_pack("{s:s, s:s, s:s}", "instance", entry->instance,
                                                "status", cxrd_outcome_name(entry->outcome),
                                                "message", entry->message));
    }
    json_object_set_new(status, "plugin_version", json_string(CXR_VERSION_STRING));
    json_object_set_new(status, "model_version", json_string(cxr_api_model_version(plugin.api)));
    json_object_set_new(status, "workers", json_integer(plugin.worker_count));
    json_object_set_new(status, "received", json_integer((json_int_t)plugin.received));
    json_object_set_new(status, "queued", json_integer((json_int_t)plugin.queue_count));
    json_object_set_new(status, "in_progress", json_integer((json_int_t)plugin.in_progress));
    json_object_set_new(status, "dropped", json_integer((json_int_t)plugin.dropped));
    json_object_set_new(status, "resume_scans", json_integer((json_int_t)plugin.scans));
    json_object_set_new(status, "busy_seconds", json_real(plugin.busy_seconds));
    json_object_set_new(status, "outcomes", outcomes);
    json_object_set_new(status, "forward_to",
                        plugin.forward_to ? json_string(plugin.forward_to) : json_null());
    json_object_set_new(status, "forwarded", json_integer((json_int_t)plugin.forwarded));
    json_object_set_new(status, "forward_failed", json_integer((json_int_t)plugin.forward_failed));
    json_object_set_new(status, "forward_pending", json_integer((json_int_t)plugin.retry_count));
    json_object_set_new(status, "forward_retried",
                        json_integer((json_int_t)plugin.forward_retried));
    json_object_set_new(status, "recent", recent);
    pthread_mutex_unlock(&plugin.lock);
    answer_json(output, status);
    json_decref(status);
    return OrthancPluginErrorCode_Success;
}

static OrthancPluginErrorCode rest_instance(OrthancPluginRestOutput *output, const char *url,
                                            const OrthancPluginHttpRequest *request)
{
    (void)url;
    if (!only_get(output, request))
        return OrthancPluginErrorCode_Success;
    const char *id = request->groupsCount == 1 ? request->groups[0] : "";
    char *record = cxrd_record_get(&plugin, id);
    json_t *value = record ? json_loads(record, 0, NULL) : NULL;
    free(record);
    if (value == NULL) {
        /* No record yet: waiting or being analysed, or not an instance cxrd saw. */
        pthread_mutex_lock(&plugin.lock);
        const char *state = cxrd_pending_state(&plugin, id);
        pthread_mutex_unlock(&plugin.lock);
        /* A worker may have recorded it between the two looks. */
        record = state ? NULL : cxrd_record_get(&plugin, id);
        value = record ? json_loads(record, 0, NULL) : NULL;
        free(record);
        if (state == NULL && value == NULL) {
            OrthancPluginSendHttpStatusCode(plugin.context, output, 404);
            return OrthancPluginErrorCode_Success;
        }
        if (value == NULL)
            value = json_pack("{s:s}", "status", state);
    }
    answer_json(output, value);
    json_decref(value);
    return OrthancPluginErrorCode_Success;
}

static OrthancPluginErrorCode rest_metrics(OrthancPluginRestOutput *output, const char *url,
                                           const OrthancPluginHttpRequest *request)
{
    (void)url;
    if (!only_get(output, request))
        return OrthancPluginErrorCode_Success;
    struct cxr_buf text = {0};
    pthread_mutex_lock(&plugin.lock);
    cxr_buf_printf(&text, "# HELP cxrd_orthanc_instances_total Instances by outcome.\n"
                          "# TYPE cxrd_orthanc_instances_total counter\n");
    for (int i = 0; i < CXRD_OUTCOME_COUNT; i++)
        cxr_buf_printf(&text, "cxrd_orthanc_instances_total{outcome=\"%s\"} %llu\n",
                       cxrd_outcome_name((enum cxrd_outcome)i),
                       (unsigned long long)plugin.outcomes[i]);
    cxr_buf_printf(&text,
                   "# HELP cxrd_orthanc_received_total Instances queued by the change callback.\n"
                   "# TYPE cxrd_orthanc_received_total counter\n"
                   "cxrd_orthanc_received_total %llu\n"
                   "# TYPE cxrd_orthanc_dropped_total counter\n"
                   "cxrd_orthanc_dropped_total %llu\n"
                   "# TYPE cxrd_orthanc_queue_length gauge\n"
                   "cxrd_orthanc_queue_length %zu\n"
                   "# TYPE cxrd_orthanc_in_progress gauge\n"
                   "cxrd_orthanc_in_progress %llu\n"
                   "# TYPE cxrd_orthanc_forwarded_total counter\n"
                   "cxrd_orthanc_forwarded_total %llu\n"
                   "# TYPE cxrd_orthanc_forward_failed_total counter\n"
                   "cxrd_orthanc_forward_failed_total %llu\n"
                   "# HELP cxrd_orthanc_forward_pending Forwards waiting for a retry.\n"
                   "# TYPE cxrd_orthanc_forward_pending gauge\n"
                   "cxrd_orthanc_forward_pending %zu\n"
                   "# HELP cxrd_orthanc_busy_seconds_total Worker time on instances.\n"
                   "# TYPE cxrd_orthanc_busy_seconds_total counter\n"
                   "cxrd_orthanc_busy_seconds_total %.3f\n",
                   (unsigned long long)plugin.received, (unsigned long long)plugin.dropped,
                   plugin.queue_count, (unsigned long long)plugin.in_progress,
                   (unsigned long long)plugin.forwarded, (unsigned long long)plugin.forward_failed,
                   plugin.retry_count, plugin.busy_seconds);
    pthread_mutex_unlock(&plugin.lock);
    if (text.data == NULL) {
        OrthancPluginSendHttpStatusCode(plugin.context, output, 500);
        return OrthancPluginErrorCode_Success;
    }
    OrthancPluginAnswerBuffer(plugin.context, output, (const char *)text.data, (uint32_t)text.len,
                              "text/plain; version=0.0.4");
    cxr_buf_release(&text);
    return OrthancPluginErrorCode_Success;
}

/* Reads the "CXRD" section; false (logged) for a bad value. */
static bool read_settings(struct cxrd_plugin *state, const char **config_path,
                          const char **model_path)
{
    char *text = OrthancPluginGetConfiguration(state->context);
    json_t *all = text ? json_loads(text, 0, NULL) : NULL;
    if (text)
        OrthancPluginFreeString(state->context, text);
    json_t *section = json_object_get(all, "CXRD");
    state->metadata_index = DEFAULT_METADATA_INDEX;
    state->worker_count = DEFAULT_WORKERS;
    state->forward_retry_seconds = DEFAULT_FORWARD_RETRY;
    static char config_copy[4096], model_copy[4096];
    *config_path = NULL;
    *model_path = NULL;
    bool ok = true;
    if (section != NULL && !json_is_object(section)) {
        log_error("cxrd: the \"CXRD\" configuration section is not an object");
        ok = false;
    }
    const char *key;
    json_t *value;
    json_object_foreach(section, key, value)
    {
        if (strcmp(key, "Config") == 0 && json_is_string(value)) {
            snprintf(config_copy, sizeof config_copy, "%s", json_string_value(value));
            *config_path = config_copy;
        } else if (strcmp(key, "Model") == 0 && json_is_string(value)) {
            snprintf(model_copy, sizeof model_copy, "%s", json_string_value(value));
            *model_path = model_copy;
        } else if (strcmp(key, "WorkDir") == 0 && json_is_string(value)) {
            state->work_dir = strdup(json_string_value(value));
        } else if (strcmp(key, "ForwardTo") == 0 && json_is_string(value)) {
            if (json_string_length(value) > 0 && json_string_length(value) < 100 &&
                strspn(json_string_value(value),
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
                       "tuvwxyz0123456789_-.") == json_string_length(value)) {
                state->forward_to = strdup(json_string_value(value));
            } else {
                log_error("cxrd: CXRD.ForwardTo '%s' is not a DicomModalities name",
                          json_string_value(value));
                ok = false;
            }
        } else if (strcmp(key, "ForwardSource") == 0 && json_is_boolean(value)) {
            state->forward_source = json_is_true(value);
        } else if (strcmp(key, "ResumeOnStart") == 0 && json_is_boolean(value)) {
            state->resume_on_start = json_is_true(value);
        } else if (strcmp(key, "Workers") == 0 && json_is_integer(value) &&
                   json_integer_value(value) >= 1 &&
                   json_integer_value(value) <= CXRD_MAX_WORKERS) {
            state->worker_count = (unsigned)json_integer_value(value);
        } else if (strcmp(key, "ForwardRetrySeconds") == 0 && json_is_integer(value) &&
                   json_integer_value(value) >= 1 && json_integer_value(value) <= 3600) {
            state->forward_retry_seconds = (unsigned)json_integer_value(value);
        } else if (strcmp(key, "MetadataIndex") == 0 && json_is_integer(value) &&
                   json_integer_value(value) >= 1024 && json_integer_value(value) <= 65535) {
            state->metadata_index = (unsigned)json_integer_value(value);
        } else {
            log_error("cxrd: CXRD.%s: unknown key or bad value (see docs/pacs.md)", key);
            ok = false;
        }
    }
    /* A misspelt target would only show as a failed forward per instance, long after start.
     * Modalities kept in the database (DicomModalitiesInDatabase) are not known yet here. */
    if (state->forward_to && !json_is_true(json_object_get(all, "DicomModalitiesInDatabase")) &&
        json_object_get(json_object_get(all, "DicomModalities"), state->forward_to) == NULL) {
        log_error("cxrd: CXRD.ForwardTo '%s' is not an entry of DicomModalities",
                  state->forward_to);
        ok = false;
    }
    json_decref(all);
    return ok;
}

static bool setup(void)
{
    const char *config_path, *model_path;
    if (!read_settings(&plugin, &config_path, &model_path))
        return false;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_config_load(config_path, &plugin.config, &err) != CXR_OK) {
        log_error("cxrd: %s", err.message);
        return false;
    }
    plugin.config_loaded = true;
    if (plugin.work_dir == NULL) {
        char pattern[] = "/tmp/orthanc-cxrd-XXXXXX";
        if (mkdtemp(pattern) == NULL) {
            log_error("cxrd: cannot make a work folder: %s", strerror(errno));
            return false;
        }
        plugin.work_dir = strdup(pattern);
        plugin.own_work_dir = true;
    } else if (cxr_path_mkdirs(plugin.work_dir, &err) != CXR_OK) {
        log_error("cxrd: CXRD.WorkDir %s: %s", plugin.work_dir, err.message);
        return false;
    }
    /* The plugin hands the pipeline its own copies: both roots are the work folder. */
    free(plugin.config.input_root);
    free(plugin.config.output_root);
    plugin.config.input_root = strdup(plugin.work_dir);
    plugin.config.output_root = strdup(plugin.work_dir);
    if (model_path) {
        free(plugin.config.model_path);
        plugin.config.model_path = strdup(model_path);
    }
    plugin.queue = calloc(CXRD_QUEUE_CAPACITY, sizeof *plugin.queue);
    plugin.retry = calloc(CXRD_RETRY_CAPACITY, sizeof *plugin.retry);
    if (!plugin.work_dir || !plugin.config.input_root || !plugin.config.output_root ||
        !plugin.config.model_path || !plugin.queue || !plugin.retry) {
        log_error("cxrd: out of memory");
        return false;
    }
    if (cxr_api_create(&plugin.config, &plugin.api, &err) != CXR_OK) {
        log_error("cxrd: %s", err.message);
        return false;
    }
    return cxrd_workers_start(&plugin);
}

static void teardown(void)
{
    cxrd_workers_stop(&plugin);
    cxr_api_destroy(plugin.api);
    plugin.api = NULL;
    if (plugin.config_loaded)
        cxr_config_release(&plugin.config);
    plugin.config_loaded = false;
    if (plugin.own_work_dir && plugin.work_dir) {
        char out[4200];
        snprintf(out, sizeof out, "%s/out", plugin.work_dir);
        rmdir(out);
        rmdir(plugin.work_dir);
    }
    free(plugin.work_dir);
    free(plugin.forward_to);
    free(plugin.queue);
    free(plugin.retry);
    plugin.work_dir = plugin.forward_to = NULL;
    plugin.queue = NULL;
    plugin.retry = NULL;
}

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext *context);
ORTHANC_PLUGINS_API void OrthancPluginFinalize(void);
ORTHANC_PLUGINS_API const char *OrthancPluginGetName(void);
ORTHANC_PLUGINS_API const char *OrthancPluginGetVersion(void);

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext *context)
{
    memset(&plugin, 0, sizeof plugin);
    plugin.context = context;
    pthread_mutex_init(&plugin.lock, NULL);
    /* Forward retries wait until a time on the monotonic clock (the worker's timed wait). */
    pthread_condattr_t wake_attr;
    pthread_condattr_init(&wake_attr);
    pthread_condattr_setclock(&wake_attr, CLOCK_MONOTONIC);
    pthread_cond_init(&plugin.wake, &wake_attr);
    pthread_condattr_destroy(&wake_attr);
    if (OrthancPluginCheckVersion(context) == 0) {
        log_error("cxrd: this Orthanc (%s) is older than the plugin SDK it was built with "
                  "(%d.%d.%d)",
                  context->orthancVersion, ORTHANC_PLUGINS_MINIMAL_MAJOR_NUMBER,
                  ORTHANC_PLUGINS_MINIMAL_MINOR_NUMBER, ORTHANC_PLUGINS_MINIMAL_REVISION_NUMBER);
        return -1;
    }
    OrthancPluginSetDescription(context, "cxrd: chest radiograph AI; stores a Chest CAD SR, a "
                                         "heatmap image and the PDF report in each study");
    if (!setup()) {
        teardown();
        return -1;
    }
    OrthancPluginRegisterOnChangeCallback(context, on_change);
    OrthancPluginRegisterRestCallback(context, "/cxrd/status", rest_status);
    OrthancPluginRegisterRestCallback(context, "/cxrd/instances/([^/]+)", rest_instance);
    OrthancPluginRegisterRestCallback(context, "/cxrd/metrics", rest_metrics);
    char message[512];
    snprintf(message, sizeof message,
             "cxrd: model %s loaded, %u workers, forward to %s, metadata %u, resume %s",
             cxr_api_model_version(plugin.api), plugin.worker_count,
             plugin.forward_to ? plugin.forward_to : "(none)", plugin.metadata_index,
             plugin.resume_on_start ? "on" : "off");
    OrthancPluginLogWarning(context, message);
    return 0;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize(void)
{
    teardown();
    cxr_report_shutdown(); /* every worker has joined */
    pthread_cond_destroy(&plugin.wake);
    pthread_mutex_destroy(&plugin.lock);
}

ORTHANC_PLUGINS_API const char *OrthancPluginGetName(void)
{
    return CXRD_PLUGIN_NAME;
}

ORTHANC_PLUGINS_API const char *OrthancPluginGetVersion(void)
{
    return CXR_VERSION_STRING;
}
