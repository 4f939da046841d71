/* Prometheus metrics in the text exposition format: requests by route and status, request
 * latency per route and per pipeline stage as histograms, queue depth and connections as
 * gauges. One mutex; the counters are touched once per request. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

static const double bucket_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                       1,     2.5,  5,     10,   30,  60,   300};
#define BUCKETS (sizeof bucket_bounds / sizeof bucket_bounds[0])

struct histogram {
    uint64_t buckets[BUCKETS]; /* non-cumulative; summed when rendered */
    uint64_t count;
    double sum;
};

static const char *const routes[] = {"ping",           "metrics", "single_inference",
                                     "bulk_inference", "openapi", "other"};
#define ROUTES       (sizeof routes / sizeof routes[0])
#define STATUS_SLOTS 24

struct status_count {
    int status;
    uint64_t count;
};

struct cxr_metrics {
    pthread_mutex_t lock;
    struct status_count by_status[ROUTES][STATUS_SLOTS];
    struct histogram latency[ROUTES];
    struct histogram stages[CXR_STAGE_COUNT];
};

enum cxr_status cxr_http_metrics_create(struct cxr_metrics **out, struct cxr_err *err)
{
    struct cxr_metrics *metrics = calloc(1, sizeof *metrics);
    if (metrics == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "metrics: out of memory");
    pthread_mutex_init(&metrics->lock, NULL);
    *out = metrics;
    return CXR_OK;
}

void cxr_http_metrics_destroy(struct cxr_metrics *metrics)
{
    if (metrics == NULL)
        return;
    pthread_mutex_destroy(&metrics->lock);
    free(metrics);
}

static void observe(struct histogram *histogram, double seconds)
{
    size_t i = 0;
    while (i < BUCKETS && seconds > bucket_bounds[i])
        i++;
    if (i < BUCKETS)
        histogram->buckets[i]++;
    histogram->count++;
    histogram->sum += seconds;
}

static size_t route_index(const char *route)
{
    for (size_t i = 0; i < ROUTES; i++) {
        if (strcmp(routes[i], route) == 0)
            return i;
    }
    return ROUTES - 1;
}

void cxr_http_metrics_request(struct cxr_metrics *metrics, const char *route, int status,
                              double seconds)
{
    size_t r = route_index(route);
    pthread_mutex_lock(&metrics->lock);
    struct status_count *slots = metrics->by_status[r];
    for (size_t i = 0; i < STATUS_SLOTS; i++) {
        if (slots[i].status == status || slots[i].status == 0) {
            slots[i].status = status;
            slots[i].count++;
            break;
        }
    }
    observe(&metrics->latency[r], seconds);
    pthread_mutex_unlock(&metrics->lock);
}

void cxr_http_metrics_stages(struct cxr_metrics *metrics, const double seconds[CXR_STAGE_COUNT])
{
    pthread_mutex_lock(&metrics->lock);
    for (size_t i = 0; i < CXR_STAGE_COUNT; i++) {
        if (seconds[i] > 0)
            observe(&metrics->stages[i], seconds[i]);
    }
    pthread_mutex_unlock(&metrics->lock);
}

static void render_histogram(struct cxr_buf *out, const char *name, const char *label,
                             const char *value, const struct histogram *histogram)
{
    uint64_t cumulative = 0;
    for (size_t i = 0; i < BUCKETS; i++) {
        cumulative += histogram->buckets[i];
        cxr_buf_printf(out, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, value,
                       bucket_bounds[i], (unsigned long long)cumulative);
    }
    cxr_buf_printf(out, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, value,
                   (unsigned long long)histogram->count);
    cxr_buf_printf(out, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value, histogram->sum);
    cxr_buf_printf(out, "%s_count{%s=\"%s\"} %llu\n", name, label, value,
                   (unsigned long long)histogram->count);
}

enum cxr_status cxr_http_metrics_render(struct cxr_metrics *metrics, uint32_t queued,
                                        uint32_t running, uint32_t connections, struct cxr_buf *out)
{
    size_t start = out->len;
    pthread_mutex_lock(&metrics->lock);
    cxr_buf_printf(out, "# HELP cxrd_requests_total Requests answered, by route and HTTP "
                        "status.\n# TYPE cxrd_requests_total counter\n");
    for (size_t r = 0; r < ROUTES; r++) {
        for (size_t i = 0; i < STATUS_SLOTS && metrics->by_status[r][i].status; i++)
            cxr_buf_printf(out, "cxrd_requests_total{route=\"%s\",status=\"%d\"} %llu\n", routes[r],
                           metrics->by_status[r][i].status,
                           (unsigned long long)metrics->by_status[r][i].count);
    }
    cxr_buf_printf(out, "# HELP cxrd_request_duration_seconds Time from the request's first "
                        "byte to its answer, by route.\n"
                        "# TYPE cxrd_request_duration_seconds histogram\n");
    for (size_t r = 0; r < ROUTES; r++)
        render_histogram(out, "cxrd_request_duration_seconds", "route", routes[r],
                         &metrics->latency[r]);
    cxr_buf_printf(out, "# HELP cxrd_stage_duration_seconds Time spent in each pipeline stage "
                        "of an inference.\n# TYPE cxrd_stage_duration_seconds histogram\n");
    for (size_t s = 0; s < CXR_STAGE_COUNT; s++)
        render_histogram(out, "cxrd_stage_duration_seconds", "stage", cxr_api_stage_names[s],
                         &metrics->stages[s]);
    pthread_mutex_unlock(&metrics->lock);
    cxr_buf_printf(out,
                   "# HELP cxrd_queue_depth Inference requests waiting for a worker.\n"
                   "# TYPE cxrd_queue_depth gauge\ncxrd_queue_depth %u\n",
                   queued);
    cxr_buf_printf(out,
                   "# HELP cxrd_inference_running Inference tasks running now.\n"
                   "# TYPE cxrd_inference_running gauge\ncxrd_inference_running %u\n",
                   running);
    enum cxr_status status =
            cxr_buf_printf(out,
                           "# HELP cxrd_requests_in_flight HTTP requests being handled.\n"
                           "# TYPE cxrd_requests_in_flight gauge\n"
                           "cxrd_requests_in_flight %u\n",
                           connections);
    if (status != CXR_OK)
        out->len = start;
    return status;
}
