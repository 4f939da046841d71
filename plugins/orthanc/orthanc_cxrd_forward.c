/* orthanc-cxrd's forwards and what outlives a run of Orthanc: outputs sent to the ForwardTo
 * modality, retried while it is down, and, when Orthanc stops, the queue, the instances being
 * analysed and the forwards still owed, kept in a global property and taken up at the next start
 * (docs/pacs.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "orthanc_cxrd.h"

/* Sends instances to the configured modality (C-STORE by Orthanc). */
bool cxrd_forward(struct cxrd_plugin *plugin, json_t *ids)
{
    json_t *body = json_pack("{s:O, s:b}", "Resources", ids, "Synchronous", 1);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return false;
    char uri[256];
    snprintf(uri, sizeof uri, "/modalities/%s/store", plugin->forward_to);
    OrthancPluginMemoryBuffer answer = {0};
    OrthancPluginErrorCode code =
            OrthancPluginRestApiPost(plugin->context, &answer, uri, text, (uint32_t)strlen(text));
    free(text);
    if (code == OrthancPluginErrorCode_Success)
        OrthancPluginFreeMemoryBuffer(plugin->context, &answer);
    return code == OrthancPluginErrorCode_Success;
}

/* Keeps an instance whose forward failed for a later retry (the target may be down). */
void cxrd_retry_add(struct cxrd_plugin *plugin, const char *instance_id)
{
    pthread_mutex_lock(&plugin->lock);
    bool full = plugin->retry_count == CXRD_RETRY_CAPACITY;
    if (!full) {
        snprintf(plugin->retry[plugin->retry_count], CXRD_ORTHANC_ID_SIZE, "%s", instance_id);
        if (plugin->retry_count++ == 0) {
            plugin->retry_wait = plugin->forward_retry_seconds;
            plugin->retry_due = cxrd_monotonic_seconds() + plugin->retry_wait;
        }
    }
    pthread_mutex_unlock(&plugin->lock);
    if (full)
        cxrd_log_warning(plugin,
                         "cxrd: %d forwards already wait for a retry: the outputs of %s are not "
                         "retried (send them from Orthanc)",
                         CXRD_RETRY_CAPACITY, instance_id);
}

/* Forwards again the outputs recorded on an instance and marks the record forwarded. True when
 * sent, or when there is nothing left to send (the instance or its record is gone). */
static bool forward_again(struct cxrd_plugin *plugin, const char *instance_id)
{
    char *text = cxrd_record_get(plugin, instance_id);
    json_t *record = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    json_t *outputs = json_object_get(record, "outputs");
    if (!json_is_array(outputs) || json_is_true(json_object_get(record, "forwarded"))) {
        json_decref(record);
        return true;
    }
    json_t *ids = json_deep_copy(outputs);
    if (ids && plugin->forward_source)
        json_array_append_new(ids, json_string(instance_id));
    bool sent = ids && cxrd_forward(plugin, ids);
    json_decref(ids);
    if (sent) {
        json_object_set_new(record, "forwarded", json_true());
        cxrd_record_put(plugin, instance_id, record);
    }
    json_decref(record);
    return sent;
}

/* Works through the forwards waiting for a retry, oldest first, until one fails: that one goes
 * to the back (an instance that can never be sent does not hold up the others) and the next
 * round waits twice as long, at most an hour. Called by one worker at a time, without lock. */
void cxrd_retry_forwards(struct cxrd_plugin *plugin)
{
    for (;;) {
        char id[CXRD_ORTHANC_ID_SIZE];
        pthread_mutex_lock(&plugin->lock);
        if (plugin->retry_count == 0 || plugin->stopping) {
            pthread_mutex_unlock(&plugin->lock);
            return;
        }
        memcpy(id, plugin->retry[0], sizeof id);
        pthread_mutex_unlock(&plugin->lock);
        bool sent = forward_again(plugin, id);
        pthread_mutex_lock(&plugin->lock);
        memmove(plugin->retry[0], plugin->retry[1],
                (plugin->retry_count - 1) * sizeof plugin->retry[0]);
        if (sent) {
            plugin->retry_count--;
            plugin->forwarded++;
            plugin->forward_retried++;
            plugin->retry_wait = plugin->forward_retry_seconds;
        } else {
            memcpy(plugin->retry[plugin->retry_count - 1], id, sizeof id);
            plugin->forward_failed++;
            plugin->retry_wait = plugin->retry_wait * 2 < 3600 ? plugin->retry_wait * 2 : 3600;
            plugin->retry_due = cxrd_monotonic_seconds() + plugin->retry_wait;
        }
        size_t left = plugin->retry_count;
        double wait = plugin->retry_wait;
        pthread_mutex_unlock(&plugin->lock);
        if (sent) {
            cxrd_log_warning(plugin, "cxrd: forwarded the outputs of %s to %s on retry", id,
                             plugin->forward_to);
        } else {
            cxrd_log_warning(
                    plugin,
                    "cxrd: retrying the forward of %s to %s failed; %zu forwards wait, next "
                    "try in %.0f s",
                    id, plugin->forward_to, left, wait);
            return;
        }
    }
}

/* The clock of the workers' condition variable (orthanc_cxrd.c sets it), for retry times. */
double cxrd_monotonic_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

void cxrd_pending_save(struct cxrd_plugin *plugin)
{
    /* Orthanc tears down what its API stands on soon after this callback returns (a worker
     * calling it then aborts Orthanc), and waiting here for the workers deadlocks: Orthanc holds
     * a lock during the callback that storing an instance needs. So the workers are told to
     * stop taking work and to leave an instance they have not begun to store (stopping), and
     * the instances they are on are kept with the queue: one they finish meanwhile carries a
     * record at the next start and is skipped then. */
    json_t *queued = json_array();
    json_t *forward = json_array();
    pthread_mutex_lock(&plugin->lock);
    plugin->stopping = true;
    pthread_cond_broadcast(&plugin->wake);
    for (unsigned i = 0; i < CXRD_MAX_WORKERS; i++)
        if (plugin->busy[i][0] != '\0')
            json_array_append_new(queued, json_string(plugin->busy[i]));
    for (size_t i = 0; i < plugin->queue_count; i++)
        json_array_append_new(
                queued, json_string(plugin->queue[(plugin->queue_head + i) % CXRD_QUEUE_CAPACITY]));
    for (size_t i = 0; i < plugin->retry_count; i++)
        json_array_append_new(forward, json_string(plugin->retry[i]));
    pthread_mutex_unlock(&plugin->lock);
    json_t *pending = json_pack("{s:o, s:o}", "queued", queued, "forward", forward);
    char *text = pending ? json_dumps(pending, JSON_COMPACT) : NULL;
    if (text == NULL ||
        OrthancPluginSetGlobalProperty(plugin->context, (int32_t)plugin->metadata_index, text) !=
                OrthancPluginErrorCode_Success)
        cxrd_log_warning(plugin, "cxrd: cannot keep the queue for the next start (ResumeOnStart "
                                 "finds those instances)");
    else if (json_array_size(queued) || json_array_size(forward))
        cxrd_log_warning(plugin,
                         "cxrd: %zu queued instances and %zu forwards kept for the next start",
                         json_array_size(queued), json_array_size(forward));
    free(text);
    json_decref(pending);
}

void cxrd_pending_restore(struct cxrd_plugin *plugin)
{
    char *text =
            OrthancPluginGetGlobalProperty(plugin->context, (int32_t)plugin->metadata_index, "");
    json_t *pending = text && text[0] ? json_loads(text, 0, NULL) : NULL;
    if (text)
        OrthancPluginFreeString(plugin->context, text);
    if (pending == NULL)
        return;
    json_t *queued = json_object_get(pending, "queued");
    json_t *forward = json_object_get(pending, "forward");
    for (size_t i = 0; i < json_array_size(queued); i++) {
        const char *id = json_string_value(json_array_get(queued, i));
        if (id)
            cxrd_enqueue(plugin, id); /* one analysed meanwhile counts as already processed */
    }
    pthread_mutex_lock(&plugin->lock);
    for (size_t i = 0; i < json_array_size(forward) && plugin->retry_count < CXRD_RETRY_CAPACITY;
         i++) {
        const char *id = json_string_value(json_array_get(forward, i));
        if (id && strlen(id) < CXRD_ORTHANC_ID_SIZE)
            snprintf(plugin->retry[plugin->retry_count++], CXRD_ORTHANC_ID_SIZE, "%s", id);
    }
    plugin->retry_wait = plugin->forward_retry_seconds;
    plugin->retry_due = cxrd_monotonic_seconds(); /* the target may be back: try now */
    pthread_cond_broadcast(&plugin->wake);
    pthread_mutex_unlock(&plugin->lock);
    OrthancPluginSetGlobalProperty(plugin->context, (int32_t)plugin->metadata_index, "");
    if (json_array_size(queued) || json_array_size(forward))
        cxrd_log_warning(
                plugin,
                "cxrd: %zu instances queued and %zu forwards kept at the last stop taken up",
                json_array_size(queued), json_array_size(forward));
    json_decref(pending);
}
