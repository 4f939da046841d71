/* The inference worker pool: a fixed set of threads and a bounded FIFO of tasks. The bound is
 * what turns overload into a quick 503 instead of an ever-growing backlog. */
#include <pthread.h>
#include <stdlib.h>

#include "api/api.h"

struct task_node {
    cxr_api_task task;
    void *context;
    struct task_node *next;
};

struct cxr_api_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct task_node *head, *tail;
    uint32_t queued, running, queue_max, workers, started;
    bool stopping;
    pthread_t *threads;
};

static void *worker_main(void *arg)
{
    struct cxr_api_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (pool->head == NULL && !pool->stopping)
            pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->head == NULL)
            break; /* stopping and drained */
        struct task_node *node = pool->head;
        pool->head = node->next;
        if (pool->head == NULL)
            pool->tail = NULL;
        pool->queued--;
        pool->running++;
        pthread_mutex_unlock(&pool->lock);
        node->task(node->context);
        free(node);
        pthread_mutex_lock(&pool->lock);
        pool->running--;
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

enum cxr_status cxr_api_pool_create(uint32_t workers, uint32_t queue_max, struct cxr_api_pool **out,
                                    struct cxr_err *err)
{
    if (workers == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "worker pool: no workers");
    struct cxr_api_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL || (pool->threads = calloc(workers, sizeof *pool->threads)) == NULL) {
        free(pool);
        return cxr_err_set(err, CXR_ERR_NOMEM, "worker pool: out of memory");
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->queue_max = queue_max;
    pool->workers = workers;
    for (; pool->started < workers; pool->started++) {
        if (pthread_create(&pool->threads[pool->started], NULL, worker_main, pool) != 0) {
            cxr_api_pool_destroy(pool);
            return cxr_err_set(err, CXR_ERR_INTERNAL, "worker pool: cannot start a thread");
        }
    }
    *out = pool;
    return CXR_OK;
}

enum cxr_status cxr_api_pool_submit(struct cxr_api_pool *pool, cxr_api_task task, void *context,
                                    bool force)
{
    struct task_node *node = malloc(sizeof *node);
    if (node == NULL)
        return CXR_ERR_NOMEM;
    node->task = task;
    node->context = context;
    node->next = NULL;
    pthread_mutex_lock(&pool->lock);
    /* A task is refused when every worker is busy and queue_max tasks already wait. */
    bool full = pool->queued + pool->running >= pool->queue_max + pool->workers;
    if (pool->stopping || (full && !force)) {
        pthread_mutex_unlock(&pool->lock);
        free(node);
        return CXR_ERR_LIMIT;
    }
    if (pool->tail)
        pool->tail->next = node;
    else
        pool->head = node;
    pool->tail = node;
    pool->queued++;
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    return CXR_OK;
}

uint32_t cxr_api_pool_workers(const struct cxr_api_pool *pool)
{
    return pool->workers;
}

void cxr_api_pool_depth(struct cxr_api_pool *pool, uint32_t *queued, uint32_t *running)
{
    pthread_mutex_lock(&pool->lock);
    *queued = pool->queued;
    *running = pool->running;
    pthread_mutex_unlock(&pool->lock);
}

void cxr_api_pool_destroy(struct cxr_api_pool *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (uint32_t i = 0; i < pool->started; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool);
}
