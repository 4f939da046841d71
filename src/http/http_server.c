/* The HTTP server: libmicrohttpd with its own connection thread pool, and inference handed to
 * the api/ worker pool. A request that needs inference suspends its connection, becomes a task
 * on the bounded queue (503 when full) and is resumed by the worker with its response, so slow
 * inference never blocks /ping or other connections. This file accepts and finishes requests and
 * runs the daemon; http_routes.c decides their answers. */
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

/* A proxy's or client's X-Request-Id is kept when it is 1 to 64 characters of A-Z a-z 0-9 and
 * . _ : - (safe in logs, headers and file names); otherwise the server makes one: 16 random hex
 * digits. */
static void request_id_set(struct cxr_http_request *request)
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
static bool client_certificate_valid(struct cxr_http_request *request)
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

static void head_arrived(struct cxr_server *server, struct MHD_Connection *connection);

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct cxr_server *server = cls;
    struct cxr_http_request *request = *con_cls;
    if (request == NULL) {
        request = calloc(1, sizeof *request);
        if (request == NULL)
            return MHD_NO;
        request->server = server;
        request->connection = connection;
        if (server->tls_certificate.len)
            head_arrived(server, connection);
        request->route = cxr_http_route_find(url);
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
        if (cxr_http_request_route(request, method, version, &result))
            return result;
        request->state = CXR_REQUEST_RECEIVING;
        return MHD_YES;
    }
    if (request->state == CXR_REQUEST_ANSWERED) {
        *upload_data_size = 0; /* answered from the headers alone: discard the body */
        return MHD_YES;
    }
    if (request->state == CXR_REQUEST_RECEIVING && *upload_data_size) {
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
    if (request->state == CXR_REQUEST_RECEIVING) {
        if (request->body_too_large) {
            char message[128];
            snprintf(message, sizeof message, "more than %zu bytes",
                     server->config->limits.max_body_bytes);
            return cxr_http_request_send_error(request, CXR_API_BODY_TOO_LARGE, message);
        }
        char why[200];
        request->json = cxr_api_request_parse((const char *)request->body.data, request->body.len,
                                              why, sizeof why);
        cxr_buf_release(&request->body);
        if (request->json == NULL)
            return cxr_http_request_send_error(request, CXR_API_NOT_JSON_OBJECT, why);
        return cxr_http_request_dispatch(request);
    }
    pthread_mutex_lock(&request->lock);
    bool ready = request->state == CXR_REQUEST_READY;
    pthread_mutex_unlock(&request->lock);
    if (ready) {
        enum MHD_Result result = cxr_http_request_send_response(request, &request->response);
        cxr_api_response_release(&request->response);
        return result;
    }
    return MHD_YES; /* resumed spuriously: keep waiting */
}

/* The audit row of a request refused before the api saw it. */
static void audit_refusal(struct cxr_server *server, enum cxr_http_route route, const char *subject,
                          int status, double seconds, const char *request_id)
{
    struct cxr_audit *audit = cxr_api_audit(server->api);
    struct cxr_audit_record record = {
            .subject = subject,
            .route = cxr_http_route_names[route],
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
    struct cxr_http_request *request = *con_cls;
    if (request == NULL)
        return;
    double seconds = cxr_api_now() - request->start;
    if (request->route == CXR_ROUTE_SINGLE || request->route == CXR_ROUTE_BULK) {
        /* Requests refused before the api saw them still get their audit row. */
        if (request->status == 401 || request->status == 413 || request->status == 415 ||
            request->status == 431 || request->status == 405 ||
            (request->status == 503 && request->route == CXR_ROUTE_SINGLE && !request->audited))
            audit_refusal(server, request->route, request->subject, request->status, seconds,
                          request->request_id);
    }
    /* One line per request; /ping (probes every few seconds) only at debug level. */
    struct cxr_log_field fields[] = {
            {.key = "request_id", .text = request->request_id},
            {.key = "method", .text = request->method},
            {.key = "route", .text = cxr_http_route_names[request->route]},
            {.key = "status", .number = request->status, .is_number = true},
            {.key = "duration_ms",
             .number = (double)(int64_t)(seconds * 10000.0) / 10.0,
             .is_number = true},
            {.key = "sub", .text = request->subject[0] ? request->subject : NULL},
            {.key = "message", .text = request->message[0] ? request->message : NULL},
    };
    cxr_log_fields(request->route == CXR_ROUTE_PING ? CXR_LOG_DEBUG : CXR_LOG_INFO, "request",
                   fields, sizeof fields / sizeof fields[0]);
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
    enum cxr_http_route route = url[0] ? cxr_http_route_find(url) : CXR_ROUTE_OTHER;
    cxr_http_metrics_request(server->metrics, cxr_http_route_names[route], status, seconds);
    if (route == CXR_ROUTE_SINGLE || route == CXR_ROUTE_BULK)
        audit_refusal(server, route, "", status, seconds, request_id);
    struct cxr_log_field fields[] = {
            {.key = "request_id", .text = request_id},
            {.key = "method", .text = method[0] ? method : NULL},
            {.key = "route", .text = cxr_http_route_names[route]},
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
     * oversized header block reaches our 431 (with the envelope) rather than MHD's, and for a
     * record of each field the intake lets through (about 56 bytes each; 128 kept). */
    size_t memory = config->limits.max_header_bytes * 2 + 64 * 1024 +
                    (size_t)CXR_HTTP_HEAD_FIELDS_MAX * 128;
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
