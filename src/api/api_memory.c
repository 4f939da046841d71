/* The memory budget of all requests in flight ([limits] max_inflight_memory): before a request
 * decodes its pixels it reserves what its DICOM attributes declare, so a burst of small files
 * declaring huge images is refused (503, or 400 when one alone exceeds the budget) instead of
 * driving the server into swap or the OOM killer. Lock-free: one atomic counter. */
#include <stdint.h>

#include "api/api_internal.h"
#include "dicom/dicom.h"

/* The network's buffers are reserved at load; what a request adds beyond its pixels (PNGs,
 * PDF, heatmap at model resolution) stays well under this. */
#define FIXED_REQUEST_BYTES ((size_t)32 << 20)

static size_t saturating_multiply(size_t a, size_t b)
{
    return a && b > SIZE_MAX / a ? SIZE_MAX : a * b;
}

static size_t saturating_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

size_t cxr_api_memory_declared(const struct cxr_dicom_pixel_desc *desc)
{
    /* Only the first frame is decoded: its stored samples, the 32-bit samples the codecs
     * produce, and the 8-bit rendering. */
    size_t pixels = saturating_multiply(desc->rows, desc->columns);
    size_t samples =
            saturating_multiply(pixels, desc->samples_per_pixel ? desc->samples_per_pixel : 1);
    size_t stored = (size_t)(desc->bits_allocated + 7u) / 8u;
    size_t decode = saturating_multiply(samples, stored + sizeof(int32_t));
    return saturating_add(saturating_add(decode, pixels), FIXED_REQUEST_BYTES);
}

bool cxr_api_memory_reserve(struct cxr_api *api, size_t bytes)
{
    size_t limit = api->config->max_inflight_memory;
    size_t reserved = atomic_load(&api->memory_reserved);
    do {
        if (bytes > limit || reserved > limit - bytes)
            return false;
    } while (!atomic_compare_exchange_weak(&api->memory_reserved, &reserved, reserved + bytes));
    return true;
}

void cxr_api_memory_release(struct cxr_api *api, size_t bytes)
{
    atomic_fetch_sub(&api->memory_reserved, bytes);
}

size_t cxr_api_memory_reserved(struct cxr_api *api)
{
    return atomic_load(&api->memory_reserved);
}
