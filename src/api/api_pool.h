/* The inference worker pool (api_pool.c). */
#ifndef CXR_API_POOL_H
#define CXR_API_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

struct cxr_api_pool;

/* ---- Worker pool (api_pool.c) ----
 * `workers` threads take tasks from a FIFO queue. submit() refuses (CXR_ERR_LIMIT) when
 * queue_max tasks are already waiting, unless force is set (bulk runs keep at most `workers`
 * of their own tasks queued). destroy() finishes every queued task first. */
typedef void (*cxr_api_task)(void *context);
enum cxr_status cxr_api_pool_create(uint32_t workers, uint32_t queue_max,
                                    struct cxr_api_pool **pool, struct cxr_err *err);
enum cxr_status cxr_api_pool_submit(struct cxr_api_pool *pool, cxr_api_task task, void *context,
                                    bool force);
uint32_t cxr_api_pool_workers(const struct cxr_api_pool *pool);
/* Tasks waiting (not yet started) and running now. */
void cxr_api_pool_depth(struct cxr_api_pool *pool, uint32_t *queued, uint32_t *running);
void cxr_api_pool_destroy(struct cxr_api_pool *pool);

#endif
