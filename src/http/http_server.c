/* The HTTP server: libmicrohttpd with its own connection thread pool, and inference handed to
 * the api/ worker pool. A request that needs inference suspends its connection, becomes a task
 * on the bounded queue (503 when full) and is resumed by the worker with its response, so slow
 * inference never blocks /ping or other connections. */
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http_intake.h"
#include "http/http_internal.h"

enum route {
    ROUTE_PING,
    ROUTE_METRICS,
    ROUTE_SINGLE,
    ROUTE_BULK,
    ROUTE_OPENAPI,
    ROUTE_OTHER,
    ROUTE_JOBS, /* from here on: worklist routes, with the page security headers */
    ROUTE_RESULTS,
    ROUTE_UI
};
static const char *const route_names[] = {"ping",           "metrics", "single_inference",
                                          "bulk_inference", "openapi", "other",
                                          "jobs",           "results", "ui"};

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

enum request_state { STATE_NEW, STATE_RECEIVING, STATE_WAITING, STATE_READY, STATE_ANSWERED };

struct request {
    struct cxr_server *server;
    struct MHD_Connection *connection;
    enum route route;
    const char *url; /* libmicrohttpd's, valid until the request completes */
    double start;
    double queued_at;
    struct cxr_buf body;
    bool body_too_large;
    char subject[128];
    char request_id[65]; /* the client's X-Request-Id when safe, else one made here */
    char method[16];
    char message[512];       /* the Message of an error answer, for the log line */
    const char *disposition; /* Content-Disposition of a file answer, or NULL */
    json_t *json;
    pthread_mutex_t lock;
    enum request_state state; /* WAITING -> READY is set by the worker under lock */
    struct cxr_api_response response;
    int status;   /* status sent, for metrics */
    bool audited; /* the api wrote (or tried to write) this request's audit row */
};

/* ---- responses ---- */

static enum MHD_Result send_text(struct request *request, int status, const char *content_type,
                                 const char *text, size_t size)
{
    struct MHD_Response *response =
            MHD_create_response_from_buffer(size, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (response == NULL)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(response, "X-Request-Id", request->request_id);
    /* One request per connection: every request head then passes the intake's deadline,
     * which a kept-alive connection would bypass. */
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    if (request->route >= ROUTE_JOBS)
        cxr_http_ui_headers(response);
    if (request->disposition)
        MHD_add_response_header(response, "Content-Disposition", request->disposition);
    if (status >= 400) {
        /* Error bodies are small envelopes: keep their Message for the request's log line. */
        json_t *body = json_loadb(text, size, 0, NULL);
        const char *message = json_string_value(json_object_get(body, "Message"));
        snprintf(request->message, sizeof request->message, "%s", message ? message : "");
        json_decref(body);
    }
    /* Counted before the response is queued: a client that reads /metrics right after its
     * answer must already see it (the completion callback runs after the bytes are sent). */
    cxr_http_metrics_request(request->server->metrics, route_names[request->route], status,
                             cxr_api_now() - request->start);
    enum MHD_Result result = MHD_queue_response(request->connection, (unsigned)status, response);
    MHD_destroy_response(response);
    request->status = status;
    request->state = STATE_ANSWERED;
    return result;
}

static enum MHD_Result send_api_response(struct request *request, struct cxr_api_response *response)
{
    if (response->body == NULL) {
        static const char fallback[] = "{\"Result\":\"Failure\",\"Data\":null,\"Message\":"
                                       "\"Single Inference failed due to an internal error\"}\n";
        return send_text(request, 500, "application/json", fallback, sizeof fallback - 1);
    }
    return send_text(request, response->status, "application/json", response->body,
                     strlen(response->body));
}

static enum MHD_Result send_error(struct request *request, enum cxr_api_error error,
                                  const char *detail)
{
    struct cxr_api_response response = {0};
    if (cxr_api_response_error(error, detail, &response) != CXR_OK)
        return send_api_response(request, &response);
    enum MHD_Result result = send_api_response(request, &response);
    cxr_api_response_release(&response);
    return result;
}

/* A job, result or worklist answer: an envelope or a file. */
static enum MHD_Result send_answer(struct request *request, struct cxr_http_answer *answer)
{
    enum MHD_Result result;
    if (answer->bytes.data) {
        request->disposition = answer->disposition[0] ? answer->disposition : NULL;
        result = send_text(request, 200, answer->content_type, (const char *)answer->bytes.data,
                           answer->bytes.len);
        request->disposition = NULL;
    } else {
        result = send_api_response(request, &answer->response);
    }
    cxr_http_answer_release(answer);
    return result;
}

/* ---- inference tasks ---- */

static void finish_task(struct request *request)
{
    pthread_mutex_lock(&request->lock);
    request->state = STATE_READY;
    pthread_mutex_unlock(&request->lock);
    MHD_resume_connection(request->connection);
}

static void single_task(void *context)
{
    struct request *request = context;
    struct cxr_server *server = request->server;
    uint32_t timeout = server->config->request_timeout_s;
    if (cxr_api_now() - request->queued_at > timeout) {
        cxr_api_response_error(CXR_API_BUSY,
                               "the request waited longer than the request timeout for an "
                               "inference worker; retry later",
                               &request->response);
    } else {
        cxr_api_single_inference(server->api, request->json, request->subject, request->request_id,
                                 &request->response);
        request->audited = true;
        cxr_http_metrics_stages(server->metrics, request->response.stage_seconds);
    }
    finish_task(request);
}

static void bulk_done(struct cxr_api_response *response, void *context)
{
    struct request *request = context;
    request->response = *response;
    finish_task(request);
}

/* Suspends the connection and hands the request to the pool; answers 503 when the queue is
 * full. Suspending first means a fast worker cannot resume a connection not yet suspended. */
static enum MHD_Result dispatch(struct request *request)
{
    struct cxr_server *server = request->server;
    if (request->route == ROUTE_BULK && cxr_api_bulk_is_async(request->json)) {
        /* A job answers at once (202 with its ID); its files run on the pool later. */
        if (server->jobs)
            cxr_api_jobs_submit(server->jobs, request->json, request->subject, request->request_id,
                                &request->response);
        else
            cxr_api_response_error(CXR_API_JOBS_UNAVAILABLE, NULL, &request->response);
        enum MHD_Result result = send_api_response(request, &request->response);
        cxr_api_response_release(&request->response);
        return result;
    }
    request->state = STATE_WAITING;
    request->queued_at = cxr_api_now();
    MHD_suspend_connection(request->connection);
    if (request->route == ROUTE_BULK) {
        if (!cxr_api_bulk_inference(server->api, server->pool, request->json, request->subject,
                                    request->request_id, bulk_done, request, &request->response)) {
            request->state = STATE_READY;
            MHD_resume_connection(request->connection);
        }
        return MHD_YES;
    }
    if (cxr_api_pool_submit(server->pool, single_task, request, false) != CXR_OK) {
        uint32_t queued, running;
        cxr_api_pool_depth(server->pool, &queued, &running);
        char message[256];
        snprintf(message, sizeof message,
                 "the inference queue is full (%u waiting, %u running); retry later", queued,
                 running);
        cxr_api_response_error(CXR_API_BUSY, message, &request->response);
        request->state = STATE_READY;
        MHD_resume_connection(request->connection);
    }
    return MHD_YES;
}

/* ---- request handling ---- */

struct header_sum {
    size_t total;
};

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    (void)kind;
    struct header_sum *sum = cls;
    sum->total += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

static enum route route_of(const char *url)
{
    if (strcmp(url, "/ping") == 0)
        return ROUTE_PING;
    if (strcmp(url, "/metrics") == 0)
        return ROUTE_METRICS;
    if (strcmp(url, "/single_inference") == 0)
        return ROUTE_SINGLE;
    if (strcmp(url, "/bulk_inference") == 0)
        return ROUTE_BULK;
    if (strcmp(url, "/openapi.json") == 0)
        return ROUTE_OPENAPI;
    if (strcmp(url, "/jobs") == 0 || strncmp(url, "/jobs/", 6) == 0)
        return ROUTE_JOBS;
    if (strcmp(url, "/results") == 0 || strncmp(url, "/results/", 9) == 0)
        return ROUTE_RESULTS;
    if (strcmp(url, "/ui") == 0 || strncmp(url, "/ui/", 4) == 0)
        return ROUTE_UI;
    return ROUTE_OTHER;
}

static enum MHD_Result answer_metrics(struct request *request)
{
    struct cxr_server *server = request->server;
    uint32_t queued, running;
    cxr_api_pool_depth(server->pool, &queued, &running);
    struct cxr_buf text = CXR_BUF_INIT(1 << 20);
    unsigned long long audit_failures = cxr_audit_failures(cxr_api_audit(server->api));
    if (cxr_http_metrics_render(server->metrics, queued, running, atomic_load(&server->in_flight),
                                &text) != CXR_OK ||
        cxr_buf_printf(&text,
                       "# HELP cxrd_audit_failures_total Audit rows that could not be written.\n"
                       "# TYPE cxrd_audit_failures_total counter\n"
                       "cxrd_audit_failures_total %llu\n",
                       audit_failures) != CXR_OK) {
        cxr_buf_release(&text);
        return send_error(request, CXR_API_METRICS_UNAVAILABLE, NULL);
    }
    enum MHD_Result result =
            send_text(request, 200, "text/plain; version=0.0.4", (const char *)text.data, text.len);
    cxr_buf_release(&text);
    return result;
}

/* A proxy's or client's X-Request-Id is kept when it is 1 to 64 characters of A-Z a-z 0-9 and
 * . _ : - (safe in logs, headers and file names); otherwise the server makes one: 16 random hex
 * digits. */
static void request_id_set(struct request *request)
{
    const char *given =
            MHD_lookup_connection_value(request->connection, MHD_HEADER_KIND, "X-Request-Id");
    size_t length = given ? strlen(given) : 0;
    bool safe = length > 0 && length < sizeof request->request_id;
    for (size_t i = 0; safe && i < length; i++) {
        char c = given[i];
        safe = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == ':' || c == '-';
    }
    if (safe) {
        memcpy(request->request_id, given, length + 1);
        return;
    }
    unsigned char random[8] = {0};
    if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random) {
        /* No entropy (very early boot): a clock-based ID is still unique enough for logs. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t mixed = (uint64_t)now.tv_sec * 1000000007u ^ (uint64_t)now.tv_nsec;
        memcpy(random, &mixed, sizeof random);
    }
    for (size_t i = 0; i < sizeof random; i++)
        snprintf(request->request_id + 2 * i, 3, "%02x", random[i]);
}

/* Mutual TLS: libmicrohttpd asks for a client certificate when given a CA but does not require
 * one; a connection without a certificate that the CA signed is refused here. */
static bool client_certificate_valid(struct request *request)
{
    const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(request->connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (info == NULL || info->tls_session == NULL)
        return false;
    gnutls_session_t session = (gnutls_session_t)info->tls_session;
    unsigned verdict = 0;
    unsigned listed = 0;
    if (gnutls_certificate_get_peers(session, &listed) == NULL || listed == 0)
        return false;
    return gnutls_certificate_verify_peers2(session, &verdict) == GNUTLS_E_SUCCESS && verdict == 0;
}

/* First call of a request: everything decided from the request line and headers alone. Returns
 * true when an answer was queued. */
static bool first_call(struct request *request, const char *method, enum MHD_Result *result)
{
    struct cxr_server *server = request->server;
    const struct cxr_limits *limits = &server->config->limits;
    struct header_sum sum = {0};
    MHD_get_connection_values(request->connection, MHD_HEADER_KIND, add_header_size, &sum);
    if (sum.total > limits->max_header_bytes) {
        char message[128];
        snprintf(message, sizeof message, "more than %zu bytes", limits->max_header_bytes);
        *result = send_error(request, CXR_API_HEADERS_TOO_LARGE, message);
        return true;
    }
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (request->route == ROUTE_PING) {
        static const char ok[] = "{\"status\": \"ok\"}\n";
        *result = get ? send_text(request, 200, "application/json", ok, sizeof ok - 1)
                      : send_error(request, CXR_API_METHOD_NOT_ALLOWED, "use GET /ping");
        return true;
    }
    if (request->route == ROUTE_OPENAPI) {
        *result = get ? send_text(request, 200, "application/json", cxr_http_openapi_json,
                                  cxr_http_openapi_json_size)
                      : send_error(request, CXR_API_METHOD_NOT_ALLOWED, "use GET /openapi.json");
        return true;
    }
    if (request->route == ROUTE_OTHER) {
        *result = send_error(request, CXR_API_NOT_FOUND, NULL);
        return true;
    }
    if (atomic_load(&server->stopping) &&
        (request->route == ROUTE_SINGLE || request->route == ROUTE_BULK)) {
        *result = send_error(request, CXR_API_SHUTTING_DOWN, "request not started");
        return true;
    }
    if (request->route == ROUTE_UI) { /* static files, no data: no token needed */
        const struct cxr_http_ui_file *file = cxr_http_ui_find(request->url);
        *result = !get    ? send_error(request, CXR_API_METHOD_NOT_ALLOWED, "use GET")
                  : !file ? send_error(request, CXR_API_NOT_FOUND, NULL)
                          : send_text(request, 200, file->content_type, (const char *)file->bytes,
                                      file->size);
        return true;
    }
    const char *authorization = MHD_lookup_connection_value(request->connection, MHD_HEADER_KIND,
                                                            MHD_HTTP_HEADER_AUTHORIZATION);
    pthread_rwlock_rdlock(&server->auth_lock);
    enum cxr_http_auth_outcome outcome = cxr_http_auth_check(
            server->auth, authorization, time(NULL), request->subject, sizeof request->subject);
    pthread_rwlock_unlock(&server->auth_lock);
    switch (outcome) {
    case CXR_AUTH_OK:
        break;
    case CXR_AUTH_MISSING:
        *result = send_error(request, CXR_API_TOKEN_MISSING, NULL);
        return true;
    case CXR_AUTH_EXPIRED:
        *result = send_error(request, CXR_API_TOKEN_EXPIRED, NULL);
        return true;
    case CXR_AUTH_INVALID:
        *result = send_error(request, CXR_API_TOKEN_INVALID, NULL);
        return true;
    }
    if (request->route == ROUTE_METRICS) {
        *result = get ? answer_metrics(request)
                      : send_error(request, CXR_API_METHOD_NOT_ALLOWED, "use GET /metrics");
        return true;
    }
    if (request->route == ROUTE_JOBS || request->route == ROUTE_RESULTS) {
        struct cxr_http_answer answer = {0};
        cxr_http_jobs_answer(server->api, server->jobs, request->connection, method, request->url,
                             &answer);
        *result = send_answer(request, &answer);
        return true;
    }
    if (!post) {
        *result = send_error(request, CXR_API_METHOD_NOT_ALLOWED, "use POST");
        return true;
    }
    const char *length = MHD_lookup_connection_value(request->connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length && strtoull(length, NULL, 10) > limits->max_body_bytes) {
        char message[128];
        snprintf(message, sizeof message, "more than %zu bytes", limits->max_body_bytes);
        *result = send_error(request, CXR_API_BODY_TOO_LARGE, message);
        return true;
    }
    return false;
}

static void head_arrived(struct cxr_server *server, struct MHD_Connection *connection);

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct cxr_server *server = cls;
    struct request *request = *con_cls;
    if (request == NULL) {
        request = calloc(1, sizeof *request);
        if (request == NULL)
            return MHD_NO;
        request->server = server;
        request->connection = connection;
        if (server->tls_certificate.len)
            head_arrived(server, connection);
        request->route = route_of(url);
        request->url = url;
        request->start = cxr_api_now();
        snprintf(request->method, sizeof request->method, "%s", method);
        request_id_set(request);
        if (server->tls_client_ca.len && !client_certificate_valid(request)) {
            cxr_log(CXR_LOG_WARN,
                    "request %s: refused: no client certificate signed by [server] "
                    "tls_client_ca",
                    request->request_id);
            free(request);
            *con_cls = NULL;
            return MHD_NO; /* closes the connection: there is nobody to answer */
        }
        request->body.max = server->config->limits.max_body_bytes;
        pthread_mutex_init(&request->lock, NULL);
        *con_cls = request;
        atomic_fetch_add(&server->in_flight, 1);
        enum MHD_Result result = MHD_YES;
        if (first_call(request, method, &result))
            return result;
        request->state = STATE_RECEIVING;
        return MHD_YES;
    }
    if (request->state == STATE_ANSWERED) {
        *upload_data_size = 0; /* answered from the headers alone: discard the body */
        return MHD_YES;
    }
    if (request->state == STATE_RECEIVING && *upload_data_size) {
        /* The body shares the head's deadline from the moment the head was complete: a
         * trickled body cannot hold the connection either. */
        if (cxr_api_now() - request->start > server->config->head_timeout_s) {
            cxr_log(CXR_LOG_WARN, "request %s: body not received within %u s; connection closed",
                    request->request_id, server->config->head_timeout_s);
            return MHD_NO;
        }
        if (!request->body_too_large &&
            cxr_buf_append(&request->body, upload_data, *upload_data_size) != CXR_OK) {
            request->body_too_large = true;
            cxr_buf_release(&request->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (request->state == STATE_RECEIVING) {
        if (request->body_too_large) {
            char message[128];
            snprintf(message, sizeof message, "more than %zu bytes",
                     server->config->limits.max_body_bytes);
            return send_error(request, CXR_API_BODY_TOO_LARGE, message);
        }
        char why[200];
        request->json = cxr_api_request_parse((const char *)request->body.data, request->body.len,
                                              why, sizeof why);
        cxr_buf_release(&request->body);
        if (request->json == NULL)
            return send_error(request, CXR_API_NOT_JSON_OBJECT, why);
        return dispatch(request);
    }
    pthread_mutex_lock(&request->lock);
    bool ready = request->state == STATE_READY;
    pthread_mutex_unlock(&request->lock);
    if (ready) {
        enum MHD_Result result = send_api_response(request, &request->response);
        cxr_api_response_release(&request->response);
        return result;
    }
    return MHD_YES; /* resumed spuriously: keep waiting */
}

/* The audit row of a request refused before the api saw it. */
static void audit_refusal(struct cxr_server *server, enum route route, const char *subject,
                          int status, double seconds, const char *request_id)
{
    struct cxr_audit *audit = cxr_api_audit(server->api);
    struct cxr_audit_record record = {
            .subject = subject,
            .route = route_names[route],
            .status = status,
            .duration_ms = seconds * 1000.0,
            .message = status == 503 ? "queue full or timed out" : "refused before inference",
            .request_id = request_id,
    };
    struct cxr_err err = CXR_ERR_INIT;
    if (audit && cxr_audit_write(audit, &record, &err) != CXR_OK)
        cxr_log(CXR_LOG_ERROR, "%s", err.message);
}

static void completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                      enum MHD_RequestTerminationCode code)
{
    (void)connection;
    (void)code;
    struct cxr_server *server = cls;
    struct request *request = *con_cls;
    if (request == NULL)
        return;
    double seconds = cxr_api_now() - request->start;
    if (request->route == ROUTE_SINGLE || request->route == ROUTE_BULK) {
        /* Requests refused before the api saw them still get their audit row. */
        if (request->status == 401 || request->status == 413 || request->status == 415 ||
            request->status == 431 || request->status == 405 ||
            (request->status == 503 && request->route == ROUTE_SINGLE && !request->audited))
            audit_refusal(server, request->route, request->subject, request->status, seconds,
                          request->request_id);
    }
    /* One line per request; /ping (probes every few seconds) only at debug level. */
    struct cxr_log_field fields[] = {
            {.key = "request_id", .text = request->request_id},
            {.key = "method", .text = request->method},
            {.key = "route", .text = route_names[request->route]},
            {.key = "status", .number = request->status, .is_number = true},
            {.key = "duration_ms",
             .number = (double)(int64_t)(seconds * 10000.0) / 10.0,
             .is_number = true},
            {.key = "sub", .text = request->subject[0] ? request->subject : NULL},
            {.key = "message", .text = request->message[0] ? request->message : NULL},
    };
    cxr_log_fields(request->route == ROUTE_PING ? CXR_LOG_DEBUG : CXR_LOG_INFO, "request", fields,
                   sizeof fields / sizeof fields[0]);
    json_decref(request->json);
    cxr_buf_release(&request->body);
    cxr_api_response_release(&request->response);
    pthread_mutex_destroy(&request->lock);
    free(request);
    *con_cls = NULL;
    atomic_fetch_sub(&server->in_flight, 1);
}

/* A request the intake answered itself (oversized, malformed, too slow, too many connections,
 * shutting down): counted, logged and audited like the others. */
static void intake_answered(void *context, const char *method, const char *url, int status,
                            const char *message, const char *request_id, double seconds)
{
    struct cxr_server *server = context;
    enum route route = url[0] ? route_of(url) : ROUTE_OTHER;
    cxr_http_metrics_request(server->metrics, route_names[route], status, seconds);
    if (route == ROUTE_SINGLE || route == ROUTE_BULK)
        audit_refusal(server, route, "", status, seconds, request_id);
    struct cxr_log_field fields[] = {
            {.key = "request_id", .text = request_id},
            {.key = "method", .text = method[0] ? method : NULL},
            {.key = "route", .text = route_names[route]},
            {.key = "status", .number = status, .is_number = true},
            {.key = "duration_ms",
             .number = (double)(int64_t)(seconds * 10000.0) / 10.0,
             .is_number = true},
            {.key = "message", .text = message},
    };
    cxr_log_fields(CXR_LOG_INFO, "request", fields, sizeof fields / sizeof fields[0]);
}

static bool intake_hand_over(void *context, int fd, const struct sockaddr_in *peer)
{
    struct cxr_server *server = context;
    return MHD_add_connection(server->daemon, fd, (const struct sockaddr *)peer, sizeof *peer) ==
           MHD_YES; /* libmicrohttpd closes fd when it refuses it */
}

/* What the intake tracks of a connection libmicrohttpd holds. */
struct connection_context {
    uint32_t ip;
    int watch; /* the intake's TLS head-deadline registration; -1: none */
};

/* Per-address counts of the connections libmicrohttpd holds (the intake's limits), and with
 * TLS the head deadline, which the intake cannot see to otherwise. */
static void connection_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
    struct cxr_server *server = cls;
    struct cxr_http_intake *intake = atomic_load(&server->intake);
    if (intake == NULL)
        return;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct connection_context *context = malloc(sizeof *context);
        if (context == NULL)
            return;
        const union MHD_ConnectionInfo *info =
                MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        context->ip = 0;
        if (info && info->client_addr && info->client_addr->sa_family == AF_INET)
            context->ip =
                    ((const struct sockaddr_in *)(const void *)info->client_addr)->sin_addr.s_addr;
        context->watch = -1;
        const union MHD_ConnectionInfo *fd =
                MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (server->tls_certificate.len && fd)
            context->watch = cxr_http_intake_watch(intake, fd->connect_fd);
        *socket_context = context;
        cxr_http_intake_connection_started(intake, context->ip);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        struct connection_context *context = *socket_context;
        cxr_http_intake_unwatch(intake, context->watch);
        cxr_http_intake_connection_closed(intake, context->ip);
        free(context);
        *socket_context = NULL;
    }
}

/* The head is complete: the TLS head deadline no longer applies. */
static void head_arrived(struct cxr_server *server, struct MHD_Connection *connection)
{
    struct cxr_http_intake *intake = atomic_load(&server->intake);
    const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct connection_context *context = info ? info->socket_context : NULL;
    if (intake && context && context->watch >= 0) {
        cxr_http_intake_unwatch(intake, context->watch);
        context->watch = -1;
    }
}

CXR_PRINTF(2, 0) static void mhd_log(void *cls, const char *fmt, va_list args)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, args);
    size_t length = strlen(line);
    while (length && line[length - 1] == '\n')
        line[--length] = '\0';
    cxr_log(CXR_LOG_WARN, "libmicrohttpd: %s", line);
}

static enum cxr_status read_pem(const char *path, const char *key, struct cxr_buf *pem,
                                struct cxr_err *err)
{
    enum cxr_status status = cxr_file_read(path, 1 << 20, pem, err);
    if (status == CXR_OK && (pem->len == 0 || memchr(pem->data, '\0', pem->len)))
        status = cxr_err_set(err, CXR_ERR_INVALID_ARG, "TLS: [server] %s %s is not PEM text", key,
                             path);
    if (status == CXR_OK)
        status = cxr_buf_append(pem, "", 1); /* libmicrohttpd takes a C string */
    if (status != CXR_OK)
        return cxr_err_set(err, status, "TLS: cannot read [server] %s %s", key, path);
    return CXR_OK;
}

enum cxr_status cxr_http_server_start(const struct cxr_config *config, struct cxr_api *api,
                                      struct cxr_server **out, struct cxr_err *err)
{
    struct cxr_server *server = calloc(1, sizeof *server);
    if (server == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "server: out of memory");
    server->config = config;
    server->api = api;
    atomic_init(&server->in_flight, 0);
    atomic_init(&server->stopping, false);
    atomic_init(&server->intake, NULL);
    server->tls_certificate = (struct cxr_buf)CXR_BUF_INIT(1 << 20);
    server->tls_key = (struct cxr_buf)CXR_BUF_INIT(1 << 20);
    server->tls_client_ca = (struct cxr_buf)CXR_BUF_INIT(1 << 20);
    pthread_rwlock_init(&server->auth_lock, NULL);
    enum cxr_status status = cxr_http_auth_create(config, &server->auth, err);
    if (status == CXR_OK)
        status = cxr_http_metrics_create(&server->metrics, err);
    if (status == CXR_OK)
        status = cxr_api_pool_create(config->workers, config->queue_size, &server->pool, err);
    if (status == CXR_OK && cxr_api_audit(api))
        status = cxr_api_jobs_create(api, server->pool, &server->jobs, err);
    bool tls = config->tls_certificate && config->tls_certificate[0];
    if (status == CXR_OK && tls) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
            status = cxr_err_set(err, CXR_ERR_INVALID_ARG,
                                 "libmicrohttpd: built without HTTPS; [server] tls_certificate "
                                 "cannot be used");
        if (status == CXR_OK)
            status = read_pem(config->tls_certificate, "tls_certificate", &server->tls_certificate,
                              err);
        if (status == CXR_OK)
            status = read_pem(config->tls_key, "tls_key", &server->tls_key, err);
        if (status == CXR_OK && config->tls_client_ca && config->tls_client_ca[0])
            status = read_pem(config->tls_client_ca, "tls_client_ca", &server->tls_client_ca, err);
    }
    if (status != CXR_OK) {
        cxr_http_server_stop(server, 0);
        return status;
    }
    /* Room for the headers we accept plus libmicrohttpd's own read buffer, so that an
     * oversized header block reaches our 431 (with the envelope) rather than MHD's. */
    size_t memory = config->limits.max_header_bytes * 2 + 64 * 1024;
    /* No listening socket of its own: the intake accepts and hands over complete heads. */
    server->daemon = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                    MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC |
                    (tls ? MHD_USE_TLS : 0),
            /* The logger first: libmicrohttpd warns about (and loses messages of) options
             * parsed before it. */
            0, NULL, NULL, handle, server, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)config->http_threads,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned)config->max_connections,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)config->request_timeout_s,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory, MHD_OPTION_NOTIFY_COMPLETED, completed,
            server, MHD_OPTION_NOTIFY_CONNECTION, connection_notify, server,
            /* The TLS options last: MHD_OPTION_END ends the list where TLS is off. */
            tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
            (const char *)server->tls_certificate.data, MHD_OPTION_HTTPS_MEM_KEY,
            (const char *)server->tls_key.data,
            server->tls_client_ca.len ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END,
            (const char *)server->tls_client_ca.data, MHD_OPTION_END);
    if (server->daemon == NULL) {
        cxr_http_server_stop(server, 0);
        return cxr_err_set(err, CXR_ERR_IO, "libmicrohttpd: cannot start the daemon");
    }
    struct cxr_http_intake_config intake = {
            .address = config->address,
            .port = config->port,
            .max_pending = config->max_connections,
            .max_active = config->max_connections,
            .max_per_ip = config->max_connections_per_ip,
            .head_timeout_s = config->head_timeout_s,
            .max_header_bytes = config->limits.max_header_bytes,
            .max_body_bytes = config->limits.max_body_bytes,
            .tls = tls,
            .hand_over = intake_hand_over,
            .answered = intake_answered,
            .context = server,
    };
    struct cxr_http_intake *created = NULL;
    status = cxr_http_intake_create(&intake, &created, err);
    if (status != CXR_OK) {
        cxr_http_server_stop(server, 0);
        return status;
    }
    atomic_store(&server->intake, created);
    server->port = cxr_http_intake_port(created);
    *out = server;
    return CXR_OK;
}

uint16_t cxr_http_server_port(const struct cxr_server *server)
{
    return server->port;
}

static void wait_idle(struct cxr_server *server, double seconds)
{
    double deadline = cxr_api_now() + seconds;
    while (atomic_load(&server->in_flight) > 0 && cxr_api_now() < deadline) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

void cxr_http_server_stop(struct cxr_server *server, uint32_t grace_s)
{
    if (server == NULL)
        return;
    atomic_store(&server->stopping, true);
    /* Stop accepting at once (new connections are refused; heads still arriving get 503);
     * connections already handed over carry on. */
    cxr_http_intake_stop(atomic_load(&server->intake));
    if (server->daemon) {
        wait_idle(server, grace_s);
        unsigned left = atomic_load(&server->in_flight);
        if (left)
            cxr_log(CXR_LOG_WARN, "shutdown: %u requests still open after %u s", left, grace_s);
    }
    /* Finishes every queued and running task; each resumes and answers its connection while
     * the daemon still runs. A running job stops between files and resumes at the next start. */
    cxr_api_jobs_stop(server->jobs);
    cxr_api_pool_destroy(server->pool);
    server->pool = NULL;
    cxr_api_jobs_destroy(server->jobs);
    server->jobs = NULL;
    if (server->daemon) {
        wait_idle(server, 5);
        MHD_stop_daemon(server->daemon);
    }
    cxr_http_intake_destroy(atomic_load(&server->intake));
    cxr_http_metrics_destroy(server->metrics);
    cxr_http_auth_destroy(server->auth);
    pthread_rwlock_destroy(&server->auth_lock);
    cxr_buf_release(&server->tls_certificate);
    if (server->tls_key.data)
        memset(server->tls_key.data, 0, server->tls_key.len);
    cxr_buf_release(&server->tls_key);
    cxr_buf_release(&server->tls_client_ca);
    free(server);
}

enum cxr_status cxr_http_server_reload_auth(struct cxr_server *server,
                                            const struct cxr_config *config, struct cxr_err *err)
{
    struct cxr_auth *fresh = NULL;
    enum cxr_status status = cxr_http_auth_create(config, &fresh, err);
    if (status != CXR_OK)
        return status;
    /* Requests check their token under the read lock and copy what they need: once the swap
     * is done nobody holds the old keys. */
    pthread_rwlock_wrlock(&server->auth_lock);
    struct cxr_auth *old = server->auth;
    server->auth = fresh;
    pthread_rwlock_unlock(&server->auth_lock);
    cxr_log(CXR_LOG_INFO, "auth reloaded: %zu keys, %zu revoked token IDs",
            cxr_http_auth_key_count(fresh), cxr_http_auth_revoked_count(fresh));
    cxr_http_auth_destroy(old);
    return CXR_OK;
}
