/* orthanc-cxrd: an Orthanc plugin that runs cxrd on the chest radiographs Orthanc receives and
 * stores the DICOM outputs back into the same study (docs/pacs.md). What its two files share:
 * the plugin state, the work queue and the per-instance record kept as Orthanc metadata. */
#ifndef CXR_ORTHANC_CXRD_H
#define CXR_ORTHANC_CXRD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <orthanc/OrthancCPlugin.h>

#include "api/api.h"

#define CXRD_PLUGIN_NAME     "cxrd"
#define CXRD_MAX_WORKERS     16
#define CXRD_QUEUE_CAPACITY  100000
#define CXRD_RECENT_COUNT    32
#define CXRD_ORTHANC_ID_SIZE 64
#define CXRD_RETRY_CAPACITY  10000 /* instances whose forward waits for a retry */

/* What happened to one instance (also the "status" of its metadata record). */
enum cxrd_outcome {
    CXRD_DONE,       /* analysed; outputs stored */
    CXRD_REFUSED,    /* the gate or the reader refused it (reason kept) */
    CXRD_FAILED,     /* an internal error (reason kept) */
    CXRD_OWN_OUTPUT, /* one of the plugin's own outputs */
    CXRD_ALREADY,    /* carried a record already: processed before (a restart, a resend) */
    CXRD_DELETED,    /* deleted from Orthanc before a worker reached it */
    CXRD_OUTCOME_COUNT,
};

struct cxrd_recent {
    char instance[CXRD_ORTHANC_ID_SIZE];
    enum cxrd_outcome outcome;
    char message[256];
};

struct cxrd_plugin {
    OrthancPluginContext *context;
    struct cxr_config config;
    bool config_loaded;
    struct cxr_api *api;
    /* "CXRD" section of Orthanc's configuration. */
    char *work_dir;      /* transient copies of inputs and outputs; removed at exit */
    bool own_work_dir;   /* made by the plugin (removed at exit) */
    char *forward_to;    /* a DicomModalities name, or NULL */
    bool forward_source; /* also send the source instance */
    unsigned metadata_index;
    bool resume_on_start;
    unsigned worker_count;
    unsigned forward_retry_seconds; /* first wait before a failed forward is retried */

    pthread_t workers[CXRD_MAX_WORKERS];
    unsigned workers_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    char (*queue)[CXRD_ORTHANC_ID_SIZE]; /* ring of CXRD_QUEUE_CAPACITY instance IDs */
    size_t queue_head, queue_count;
    bool scan_pending; /* look for instances stored while the plugin was not running */
    bool stopping;
    /* The instance each worker is on ("" when idle): an ID queued twice (the change callback
     * and a resume scan) is never analysed by two workers at once. */
    char busy[CXRD_MAX_WORKERS][CXRD_ORTHANC_ID_SIZE];
    /* Instances whose outputs are stored but could not be forwarded: retried by a worker, the
     * wait doubling from forward_retry_seconds up to an hour while the target stays down. */
    char (*retry)[CXRD_ORTHANC_ID_SIZE];
    size_t retry_count;
    double retry_due, retry_wait; /* monotonic seconds */
    bool retrying;                /* one worker at a time works through the list */

    /* Counters (under lock). */
    uint64_t received, dropped, in_progress;
    uint64_t outcomes[CXRD_OUTCOME_COUNT];
    uint64_t forwarded, forward_failed, forward_retried;
    uint64_t scans;      /* ResumeOnStart scans completed */
    double busy_seconds; /* time workers spent on analysed instances */
    struct cxrd_recent recent[CXRD_RECENT_COUNT];
    size_t recent_next;
};

const char *cxrd_outcome_name(enum cxrd_outcome outcome);

/* Worker side (orthanc_cxrd_worker.c). */
/* Starts the workers; false (logged) when a thread cannot start. */
bool cxrd_workers_start(struct cxrd_plugin *plugin);
/* Asks the workers to stop after the instance each is on, and joins them. */
void cxrd_workers_stop(struct cxrd_plugin *plugin);
/* Queues an instance (from Orthanc's change callback: never blocks on work). */
void cxrd_enqueue(struct cxrd_plugin *plugin, const char *instance_id);
/* Asks a worker to look for stored instances without a record (ResumeOnStart). */
void cxrd_request_scan(struct cxrd_plugin *plugin);
/* Whether an instance is waiting in the queue or on a worker (under lock): NULL when neither,
 * else "queued" or "in progress" (its /cxrd/instances status). */
const char *cxrd_pending_state(struct cxrd_plugin *plugin, const char *instance_id);

/* The instance's metadata record (JSON text, malloc'ed) or NULL when it has none. */
char *cxrd_record_get(struct cxrd_plugin *plugin, const char *instance_id);
/* Puts the instance's record (the caller keeps record); false (logged) when Orthanc refuses. */
bool cxrd_record_put(struct cxrd_plugin *plugin, const char *instance_id, json_t *record);
/* A warning line in Orthanc's log. */
void cxrd_log_warning(struct cxrd_plugin *plugin, const char *format, ...)
        __attribute__((format(printf, 2, 3)));

/* Forward side (orthanc_cxrd_forward.c); none of these is called under plugin->lock. */
/* Sends instances (an array of Orthanc IDs) to ForwardTo by C-STORE; true when all were sent. */
bool cxrd_forward(struct cxrd_plugin *plugin, json_t *ids);
/* Keeps an analysed instance whose forward failed for a retry. */
void cxrd_retry_add(struct cxrd_plugin *plugin, const char *instance_id);
/* Retries the forwards that wait, oldest first, until one fails (one worker at a time). */
void cxrd_retry_forwards(struct cxrd_plugin *plugin);
/* Seconds on CLOCK_MONOTONIC, the clock of plugin->wake: forward retry times. */
double cxrd_monotonic_seconds(void);
/* When Orthanc stops (never blocks): tells the workers to stop, and keeps what was queued, being
 * analysed or waiting for a forward retry in a global property (index MetadataIndex). */
void cxrd_pending_save(struct cxrd_plugin *plugin);
/* When Orthanc has started: queues again what cxrd_pending_save kept, and clears it. */
void cxrd_pending_restore(struct cxrd_plugin *plugin);

#endif
