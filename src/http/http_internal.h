/* What http/ files share and nothing else needs: the answers of the job, result and worklist
 * routes (http_jobs.c, http_ui.c), sent by http_server.c. */
#ifndef CXR_HTTP_INTERNAL_H
#define CXR_HTTP_INTERNAL_H

#include <microhttpd.h>

#include "http/http.h"

/* An answer: an envelope (response), or bytes of a file or CSV (bytes.data non-NULL) with
 * content_type and an optional Content-Disposition. */
struct cxr_http_answer {
    struct cxr_api_response response;
    struct cxr_buf bytes;
    const char *content_type;
    char disposition[128];
};
void cxr_http_answer_release(struct cxr_http_answer *answer);

/* GET, DELETE /jobs..., GET /results... after authentication. jobs is NULL without a database.
 * url is the request's path; query values come from the connection. */
void cxr_http_jobs_answer(struct cxr_api *api, struct cxr_api_jobs *jobs,
                          struct MHD_Connection *connection, const char *method, const char *url,
                          struct cxr_http_answer *answer);

/* The worklist page's embedded files (generated from src/http/ui/ by ui_embed.py). */
struct cxr_http_ui_file {
    const char *url; /* "/ui", "/ui/ui.js", ... */
    const char *content_type;
    const unsigned char *bytes;
    size_t size;
};
extern const struct cxr_http_ui_file cxr_http_ui_files[];
extern const size_t cxr_http_ui_file_count;
/* The embedded file served at url ("/ui/" is "/ui"), or NULL. */
const struct cxr_http_ui_file *cxr_http_ui_find(const char *url);
/* The headers every worklist answer carries: a strict Content-Security-Policy (scripts and
 * styles only from the server's own files, images from the server or blob: URLs made by the
 * page), no framing, no referrer, no MIME sniffing, no caching. */
void cxr_http_ui_headers(struct MHD_Response *response);

#endif
