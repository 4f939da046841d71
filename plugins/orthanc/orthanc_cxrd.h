/* orthanc-cxrd: an Orthanc plugin that runs cxrd on the chest radiographs Orthanc receives and
 * stores the DICOM outputs back into the same study (docs/pacs.md). What its two files share:
 * the plugin state, the work queue and the per-instance record kept as Orthanc metadata. */
#ifndef CXR_ORTHANC_CXRD_H
#define CXR_ORTHANC_CXRD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <orthanc/OrthancCPlugin.h>

#include "api/api.h"

#define CXRD_PLUGIN_NAME     "cxrd"
#define CXRD_MAX_WORKERS     16
#define CXRD_QUEUE_CAPACITY  100000
#define CXRD_RECENT_COUNT    32
#define CXRD_ORTHANC_ID_SIZE 64

/* What happened to one instance (also the "status" of its metadata record). */
enum cxrd_outcome {
    CXRD_DONE,       /* analysed; outputs stored */
    CXRD_REFUSED,    /* the gate or the reader refused it (reason kept) */
    CXRD_FAILED,     /* an internal error (reason kept) */
    CXRD_OWN_OUTPUT, /* one of the plugin's own outputs */
    CXRD_ALREADY,    /* carried a record already: processed before (a restart, a resend) */
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

    pthread_t workers[CXRD_MAX_WORKERS];
    unsigned workers_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    char (*queue)[CXRD_ORTHANC_ID_SIZE]; /* ring of CXRD_QUEUE_CAPACITY instance IDs */
    size_t queue_head, queue_count;
    bool scan_pending; /* look for instances stored while the plugin was not running */
    bool stopping;

    /* Counters (under lock). */
    uint64_t received, dropped, in_progress;
    uint64_t outcomes[CXRD_OUTCOME_COUNT];
    uint64_t forwarded, forward_failed;
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
/* Whether an instance is waiting in the queue (under lock). */
bool cxrd_queued(struct cxrd_plugin *plugin, const char *instance_id);

/* The instance's metadata record (JSON text, malloc'ed) or NULL when it has none. */
char *cxrd_record_get(struct cxrd_plugin *plugin, const char *instance_id);

#endif
