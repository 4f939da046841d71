/* What http/ files share and nothing else needs: the server and its requests (http_server.c
 * accepts and finishes them, http_routes.c answers them), and the answers of the job, result and
 * worklist routes (http_jobs.c, http_ui.c). */
#ifndef CXR_HTTP_INTERNAL_H
#define CXR_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "http/http.h"

struct cxr_http_intake;

/* A request's route, from its path (cxr_http_route_find). */
enum cxr_http_route {
    CXR_ROUTE_PING,
    CXR_ROUTE_METRICS,
    CXR_ROUTE_SINGLE,
    CXR_ROUTE_BULK,
    CXR_ROUTE_OPENAPI,
    CXR_ROUTE_OTHER,
    CXR_ROUTE_JOBS, /* from here on: worklist routes, with the page security headers */
    CXR_ROUTE_RESULTS,
    CXR_ROUTE_UI
};

/* The server of cxr_http_server_start (http.h keeps it opaque). */
struct cxr_server {
    const struct cxr_config *config;
    struct cxr_api *api;
    struct cxr_auth *auth; /* replaced by cxr_http_server_reload_auth under auth_lock */
    pthread_rwlock_t auth_lock;
    struct cxr_metrics *metrics;
    struct cxr_api_pool *pool;
    struct cxr_api_jobs *jobs; /* async bulk jobs; NULL without an [audit] database */
    struct MHD_Daemon *daemon;
    /* The listening socket, in front of the daemon; atomic because libmicrohttpd's threads
     * may see connections before cxr_http_intake_create has returned. */
    struct cxr_http_intake *_Atomic intake;
    atomic_bool stopping; /* shutdown began: requests not yet started get 503 */
    uint16_t port;
    /* PEM texts of [server] tls_certificate, tls_key, tls_client_ca (NUL-terminated), kept for
     * the daemon's lifetime. */
    struct cxr_buf tls_certificate, tls_key, tls_client_ca;
    atomic_uint in_flight; /* requests between the first handler call and completion */
};

enum cxr_http_request_state {
    CXR_REQUEST_NEW,
    CXR_REQUEST_RECEIVING,
    CXR_REQUEST_WAITING,
    CXR_REQUEST_READY,
    CXR_REQUEST_ANSWERED
};

/* One request: libmicrohttpd's con_cls, from the first handler call to the completion
 * callback. */
struct cxr_http_request {
    struct cxr_server *server;
    struct MHD_Connection *connection;
    enum cxr_http_route route;
    const char *url; /* libmicrohttpd's, valid until the request completes */
    double start;
    double queued_at;
    struct cxr_buf body;
    bool body_too_large;
    char subject[CXR_HTTP_SUBJECT_MAX + 1];
    char request_id[65]; /* the client's X-Request-Id when safe, else one made here */
    char method[16];
    char message[512];       /* the Message of an error answer, for the log line */
    const char *disposition; /* Content-Disposition of a file answer, or NULL */
    json_t *json;
    pthread_mutex_t lock;
    enum cxr_http_request_state state; /* WAITING -> READY is set by the worker under lock */
    struct cxr_api_response response;
    int status;   /* status sent, for metrics */
    bool audited; /* the api wrote (or tried to write) this request's audit row */
};

/* The route names of metrics, logs and audit rows, indexed by enum cxr_http_route. */
extern const char *const cxr_http_route_names[];

/* ---- routing (http_routes.c); each returns what the access handler returns ---- */

/* The route of a request path. */
enum cxr_http_route cxr_http_route_find(const char *url);
/* First call of a request: everything decided from the request line and headers alone (the
 * token check included); version is the request line's ("HTTP/1.1"). Returns true when an
 * answer was queued (*result set). */
bool cxr_http_request_route(struct cxr_http_request *request, const char *method,
                            const char *version, enum MHD_Result *result);
/* Hands a parsed request (request->json) to its job, or suspends the connection for the worker
 * pool; the connection is resumed with request->response set and the state READY. */
enum MHD_Result cxr_http_request_dispatch(struct cxr_http_request *request);
/* Sends an api envelope (a 500 fallback when its body is NULL); the response stays the
 * caller's. */
enum MHD_Result cxr_http_request_send_response(struct cxr_http_request *request,
                                               struct cxr_api_response *response);
/* Sends the Failure envelope of error; detail is its Message's variable part, or NULL. */
enum MHD_Result cxr_http_request_send_error(struct cxr_http_request *request,
                                            enum cxr_api_error error, const char *detail);

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
