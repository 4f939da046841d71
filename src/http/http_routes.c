/* Routing a request to its answer: /ping, /openapi.json and the worklist files without a token,
 * then the token check, /metrics, the job and result routes, and single and bulk inference handed
 * to the worker pool; and the helpers that send an answer. */
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/http_internal.h"

const char *const cxr_http_route_names[] = {"ping",           "metrics", "single_inference",
                                            "bulk_inference", "openapi", "other",
                                            "jobs",           "results", "ui"};

/* ---- responses ---- */

static enum MHD_Result send_text(struct cxr_http_request *request, int status,
                                 const char *content_type, const char *text, size_t size)
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
    if (request->route >= CXR_ROUTE_JOBS)
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
    cxr_http_metrics_request(request->server->metrics, cxr_http_route_names[request->route], status,
                             cxr_api_now() - request->start);
    enum MHD_Result result = MHD_queue_response(request->connection, (unsigned)status, response);
    MHD_destroy_response(response);
    request->status = status;
    request->state = CXR_REQUEST_ANSWERED;
    return result;
}

enum MHD_Result cxr_http_request_send_response(struct cxr_http_request *request,
                                               struct cxr_api_response *response)
{
    if (response->body == NULL) {
        static const char fallback[] = "{\"Result\":\"Failure\",\"Data\":null,\"Message\":"
                                       "\"Single Inference failed due to an internal error\"}\n";
        return send_text(request, 500, "application/json", fallback, sizeof fallback - 1);
    }
    return send_text(request, response->status, "application/json", response->body,
                     strlen(response->body));
}

enum MHD_Result cxr_http_request_send_error(struct cxr_http_request *request,
                                            enum cxr_api_error error, const char *detail)
{
    struct cxr_api_response response = {0};
    if (cxr_api_response_error(error, detail, &response) != CXR_OK)
        return cxr_http_request_send_response(request, &response);
    enum MHD_Result result = cxr_http_request_send_response(request, &response);
    cxr_api_response_release(&response);
    return result;
}

/* A job, result or worklist answer: an envelope or a file. */
static enum MHD_Result send_answer(struct cxr_http_request *request, struct cxr_http_answer *answer)
{
    enum MHD_Result result;
    if (answer->bytes.data) {
        request->disposition = answer->disposition[0] ? answer->disposition : NULL;
        result = send_text(request, 200, answer->content_type, (const char *)answer->bytes.data,
                           answer->bytes.len);
        request->disposition = NULL;
    } else {
        result = cxr_http_request_send_response(request, &answer->response);
    }
    cxr_http_answer_release(answer);
    return result;
}

/* ---- inference tasks ---- */

static void finish_task(struct cxr_http_request *request)
{
    pthread_mutex_lock(&request->lock);
    request->state = CXR_REQUEST_READY;
    pthread_mutex_unlock(&request->lock);
    MHD_resume_connection(request->connection);
}

static void single_task(void *context)
{
    struct cxr_http_request *request = context;
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
    struct cxr_http_request *request = context;
    request->response = *response;
    finish_task(request);
}

/* Suspends the connection and hands the request to the pool; answers 503 when the queue is
 * full. Suspending first means a fast worker cannot resume a connection not yet suspended. */
enum MHD_Result cxr_http_request_dispatch(struct cxr_http_request *request)
{
    struct cxr_server *server = request->server;
    if (request->route == CXR_ROUTE_BULK && cxr_api_bulk_is_async(request->json)) {
        /* A job answers at once (202 with its ID); its files run on the pool later. */
        if (server->jobs)
            cxr_api_jobs_submit(server->jobs, request->json, request->subject, request->request_id,
                                &request->response);
        else
            cxr_api_response_error(CXR_API_JOBS_UNAVAILABLE, NULL, &request->response);
        enum MHD_Result result = cxr_http_request_send_response(request, &request->response);
        cxr_api_response_release(&request->response);
        return result;
    }
    request->state = CXR_REQUEST_WAITING;
    request->queued_at = cxr_api_now();
    MHD_suspend_connection(request->connection);
    if (request->route == CXR_ROUTE_BULK) {
        if (!cxr_api_bulk_inference(server->api, server->pool, request->json, request->subject,
                                    request->request_id, bulk_done, request, &request->response)) {
            request->state = CXR_REQUEST_READY;
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
        request->state = CXR_REQUEST_READY;
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

/* Of all the request's Transfer-Encoding lines: whether there is one, and the first that is not
 * "chunked". */
struct transfer_coding {
    const char *unsupported;
    bool present;
};

static enum MHD_Result find_transfer_coding(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    (void)kind;
    struct transfer_coding *coding = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) != 0)
        return MHD_YES;
    coding->present = true;
    if (strcasecmp(value ? value : "", "chunked") != 0) {
        coding->unsupported = value ? value : "";
        return MHD_NO;
    }
    return MHD_YES;
}

enum cxr_http_route cxr_http_route_find(const char *url)
{
    if (strcmp(url, "/ping") == 0)
        return CXR_ROUTE_PING;
    if (strcmp(url, "/metrics") == 0)
        return CXR_ROUTE_METRICS;
    if (strcmp(url, "/single_inference") == 0)
        return CXR_ROUTE_SINGLE;
    if (strcmp(url, "/bulk_inference") == 0)
        return CXR_ROUTE_BULK;
    if (strcmp(url, "/openapi.json") == 0)
        return CXR_ROUTE_OPENAPI;
    if (strcmp(url, "/jobs") == 0 || strncmp(url, "/jobs/", 6) == 0)
        return CXR_ROUTE_JOBS;
    if (strcmp(url, "/results") == 0 || strncmp(url, "/results/", 9) == 0)
        return CXR_ROUTE_RESULTS;
    if (strcmp(url, "/ui") == 0 || strncmp(url, "/ui/", 4) == 0)
        return CXR_ROUTE_UI;
    return CXR_ROUTE_OTHER;
}

static enum MHD_Result answer_metrics(struct cxr_http_request *request)
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
                       "cxrd_audit_failures_total %llu\n"
                       "# HELP cxrd_jobs_paused 1 while a bulk job waits for room for its "
                       "outputs or its rows (tried again every 15 s).\n"
                       "# TYPE cxrd_jobs_paused gauge\n"
                       "cxrd_jobs_paused %d\n",
                       audit_failures, cxr_api_jobs_paused(server->jobs) ? 1 : 0) != CXR_OK) {
        cxr_buf_release(&text);
        return cxr_http_request_send_error(request, CXR_API_METRICS_UNAVAILABLE, NULL);
    }
    enum MHD_Result result =
            send_text(request, 200, "text/plain; version=0.0.4", (const char *)text.data, text.len);
    cxr_buf_release(&text);
    return result;
}

/* First call of a request: everything decided from the request line and headers alone. Returns
 * true when an answer was queued. */
bool cxr_http_request_route(struct cxr_http_request *request, const char *method,
                            const char *version, enum MHD_Result *result)
{
    struct cxr_server *server = request->server;
    const struct cxr_limits *limits = &server->config->limits;
    struct header_sum sum = {0};
    MHD_get_connection_values(request->connection, MHD_HEADER_KIND, add_header_size, &sum);
    if (sum.total > limits->max_header_bytes) {
        char message[128];
        snprintf(message, sizeof message, "more than %zu bytes", limits->max_header_bytes);
        *result = cxr_http_request_send_error(request, CXR_API_HEADERS_TOO_LARGE, message);
        return true;
    }
    /* libmicrohttpd treats any Transfer-Encoding but "chunked" (and looks at the first line
     * only) as a body that ends when the connection closes: such a request was never answered
     * and held its connection for request_timeout. RFC 9112 6.1: answer 400 and close. The
     * same section makes any Transfer-Encoding in an HTTP/1.0 request faulty framing (a proxy
     * of that version would not have read it as chunked): libmicrohttpd decoded it. */
    struct transfer_coding coding = {0};
    MHD_get_connection_values(request->connection, MHD_HEADER_KIND, find_transfer_coding, &coding);
    bool http10 = strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
    if (coding.unsupported || (coding.present && http10)) {
        char message[200];
        if (coding.unsupported)
            snprintf(message, sizeof message,
                     "Transfer-Encoding %.100s is not supported (send Content-Length or chunked)",
                     coding.unsupported);
        else
            snprintf(message, sizeof message,
                     "Transfer-Encoding is not allowed in an HTTP/1.0 request (send "
                     "Content-Length)");
        *result = cxr_http_request_send_error(request, CXR_API_BAD_REQUEST, message);
        return true;
    }
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (request->route == CXR_ROUTE_PING) {
        static const char ok[] = "{\"status\": \"ok\"}\n";
        *result = get ? send_text(request, 200, "application/json", ok, sizeof ok - 1)
                      : cxr_http_request_send_error(request, CXR_API_METHOD_NOT_ALLOWED,
                                                    "use GET /ping");
        return true;
    }
    if (request->route == CXR_ROUTE_OPENAPI) {
        *result = get ? send_text(request, 200, "application/json", cxr_http_openapi_json,
                                  cxr_http_openapi_json_size)
                      : cxr_http_request_send_error(request, CXR_API_METHOD_NOT_ALLOWED,
                                                    "use GET /openapi.json");
        return true;
    }
    if (request->route == CXR_ROUTE_OTHER) {
        *result = cxr_http_request_send_error(request, CXR_API_NOT_FOUND, NULL);
        return true;
    }
    if (atomic_load(&server->stopping) &&
        (request->route == CXR_ROUTE_SINGLE || request->route == CXR_ROUTE_BULK)) {
        *result =
                cxr_http_request_send_error(request, CXR_API_SHUTTING_DOWN, "request not started");
        return true;
    }
    if (request->route == CXR_ROUTE_UI) { /* static files, no data: no token needed */
        const struct cxr_http_ui_file *file = cxr_http_ui_find(request->url);
        *result = !get ? cxr_http_request_send_error(request, CXR_API_METHOD_NOT_ALLOWED, "use GET")
                  : !file ? cxr_http_request_send_error(request, CXR_API_NOT_FOUND, NULL)
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
        *result = cxr_http_request_send_error(request, CXR_API_TOKEN_MISSING, NULL);
        return true;
    case CXR_AUTH_EXPIRED:
        *result = cxr_http_request_send_error(request, CXR_API_TOKEN_EXPIRED, NULL);
        return true;
    case CXR_AUTH_INVALID:
        *result = cxr_http_request_send_error(request, CXR_API_TOKEN_INVALID, NULL);
        return true;
    }
    if (request->route == CXR_ROUTE_METRICS) {
        *result = get ? answer_metrics(request)
                      : cxr_http_request_send_error(request, CXR_API_METHOD_NOT_ALLOWED,
                                                    "use GET /metrics");
        return true;
    }
    if (request->route == CXR_ROUTE_JOBS || request->route == CXR_ROUTE_RESULTS) {
        struct cxr_http_answer answer = {0};
        cxr_http_jobs_answer(server->api, server->jobs, request->connection, method, request->url,
                             &answer);
        *result = send_answer(request, &answer);
        return true;
    }
    if (!post) {
        *result = cxr_http_request_send_error(request, CXR_API_METHOD_NOT_ALLOWED, "use POST");
        return true;
    }
    const char *length = MHD_lookup_connection_value(request->connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length && strtoull(length, NULL, 10) > limits->max_body_bytes) {
        char message[128];
        snprintf(message, sizeof message, "more than %zu bytes", limits->max_body_bytes);
        *result = cxr_http_request_send_error(request, CXR_API_BODY_TOO_LARGE, message);
        return true;
    }
    return false;
}
