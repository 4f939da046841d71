/* Stored results for the worklist page (api_results.c): the audit database's results, and
 * their files read back from the output root by result ID, never by a client's path. */
#ifndef CXR_API_RESULTS_H
#define CXR_API_RESULTS_H

#include <stdbool.h>
#include <stddef.h>

#include "api/api_response.h"
#include "util/util.h"

struct cxr_api;

/* Filters of GET /results; NULL or "" means no filter. */
struct cxr_api_results_query {
    const char *result;  /* "TB Presumptive", "Abnormal" or "Normal" */
    const char *date;    /* YYYY-MM-DD, a UTC day */
    const char *from;    /* results at or after this RFC 3339 time (Z or an offset) */
    const char *to;      /* results before this RFC 3339 time */
    const char *finding; /* a finding that must be present, spelled as in the API */
    const char *job;     /* a bulk job's ID */
    const char *limit;   /* 1..1000, default 200 */
    const char *offset;  /* results to pass over first (the next page), default 0 */
};

/* GET /results: Data is an array of results, TB Presumptive first, then Abnormal, then Normal,
 * newest first within each, at most limit of them after offset. 400 for a bad filter; the
 * jobs-unavailable error without a database. Thread safe. */
void cxr_api_results_list(struct cxr_api *api, const struct cxr_api_results_query *query,
                          struct cxr_api_response *response);

/* GET /results/{id}/{name}, name one of source_image.png, heatmap.png, report.pdf: the file of
 * that result from <output folder>/<patient_id>/, opened below the output root without following
 * symlinks, and only while the folder still holds that result (same SOP Instance UID in its
 * predictions JSON; else 410). True with the bytes appended to out and *content_type set; false
 * with response set. Thread safe. */
bool cxr_api_results_file(struct cxr_api *api, const char *id, const char *name,
                          struct cxr_buf *out, const char **content_type,
                          struct cxr_api_response *response);

#endif
