/* The intake (http_intake.c): the listening socket in front of libmicrohttpd. It accepts every
 * connection at once, keeps per-address and total counts, waits for the complete request head
 * under a deadline that trickling cannot extend, answers oversized or malformed heads with the
 * v1 envelope itself, and hands only complete heads to libmicrohttpd (MHD_add_connection).
 *
 * Threads: one intake thread; cxr_http_intake_connection_started/closed are called from
 * libmicrohttpd's threads and are thread safe. */
#ifndef CXR_HTTP_INTAKE_H
#define CXR_HTTP_INTAKE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

struct cxr_http_intake;

struct cxr_http_intake_config {
    const char *address;  /* IPv4 */
    uint16_t port;        /* 0: a free port */
    uint32_t max_pending; /* connections whose head is still arriving */
    uint32_t max_active;  /* connections handed over and still open */
    uint32_t max_per_ip;  /* pending + active from one address; 0: no limit */
    uint32_t head_timeout_s;
    size_t max_header_bytes;
    size_t max_body_bytes;
    bool tls; /* heads are encrypted: hand connections over right after accept */
    /* Takes fd (a connection whose head has arrived) and owns it from then on, also when it
     * returns false. */
    bool (*hand_over)(void *context, int fd, const struct sockaddr_in *peer);
    /* Called once for each request the intake answers itself (status >= 400); method and url
     * are "" when the request line did not arrive. */
    void (*answered)(void *context, const char *method, const char *url, int status,
                     const char *message, const char *request_id, double seconds);
    void *context;
};

/* Binds and listens (refusing with a message when the address is taken), then starts the
 * intake thread. */
enum cxr_status cxr_http_intake_create(const struct cxr_http_intake_config *config,
                                       struct cxr_http_intake **intake, struct cxr_err *err);
uint16_t cxr_http_intake_port(const struct cxr_http_intake *intake);
/* libmicrohttpd opened or closed a connection that was handed over (per-address counts). */
void cxr_http_intake_connection_started(struct cxr_http_intake *intake, uint32_t ip);
void cxr_http_intake_connection_closed(struct cxr_http_intake *intake, uint32_t ip);
/* TLS (the intake cannot read the head): libmicrohttpd's thread registers a connection it
 * opened, and unregisters it once the head is complete or the connection closes (before the
 * descriptor is closed); the intake thread shuts a registered connection down when it is still
 * there at the head deadline. Returns the registration (-1: none, the table is full). */
int cxr_http_intake_watch(struct cxr_http_intake *intake, int fd);
/* index -1: no-op. */
void cxr_http_intake_unwatch(struct cxr_http_intake *intake, int index);
/* Stops accepting at once (the listening socket is closed: new connections are refused), gives
 * heads already arriving up to a second, answers them 503 "Server is shutting down" and joins
 * the thread. Idempotent. */
void cxr_http_intake_stop(struct cxr_http_intake *intake);
/* Stops (if needed) and frees. NULL: no-op. */
void cxr_http_intake_destroy(struct cxr_http_intake *intake);

/* ---- head parsing (http_head.c) ---- */

/* Where a request head ends in buf[0..length): the offset just past its blank line (CRLF CRLF,
 * or bare LF LF as libmicrohttpd also accepts), or 0 when it has not arrived. from: bytes
 * already searched. */
size_t cxr_http_intake_head_end(const char *buf, size_t length, size_t from);

enum cxr_http_content_length {
    CXR_CONTENT_LENGTH_ABSENT,
    CXR_CONTENT_LENGTH_OK,        /* *value is set */
    CXR_CONTENT_LENGTH_TOO_LARGE, /* digits only, above limit (even past 2^64) */
    CXR_CONTENT_LENGTH_MALFORMED, /* not a decimal number, or two that differ */
};
/* The Content-Length of a complete head (header names are case-insensitive). */
enum cxr_http_content_length cxr_http_intake_content_length(const char *head, size_t length,
                                                            uint64_t limit, uint64_t *value);

/* Header lines, query parameters and cookies a head may hold together. libmicrohttpd keeps
 * each in a record of the connection's memory pool (about 56 bytes); a head of short ones
 * within max_header ran the pool out, and libmicrohttpd then left the request unanswered until
 * its idle timeout. The server sizes the pool for this many. */
#define CXR_HTTP_HEAD_FIELDS_MAX 1000

/* How many records libmicrohttpd makes of a complete head: its header lines (a folded line
 * continues the one before), the query parameters of its target ('&'-separated) and the
 * cookies of its Cookie lines (';'-separated). */
size_t cxr_http_intake_field_count(const char *head, size_t length);

/* Whether a complete head is one libmicrohttpd would parse: a request line "METHOD target
 * HTTP/1.x" and header lines "name: value" (a line starting with a space or tab continues the
 * one before). CXR_HEAD_OK, or what is wrong; version receives the request line's version for
 * CXR_HEAD_VERSION. */
enum cxr_http_head_form {
    CXR_HEAD_OK,
    CXR_HEAD_BAD_REQUEST_LINE,
    CXR_HEAD_VERSION, /* well formed, but not HTTP/1.0 or HTTP/1.1 */
    CXR_HEAD_BAD_HEADER_LINE,
};
enum cxr_http_head_form cxr_http_intake_head_form(const char *head, size_t length, char *version,
                                                  size_t version_size);

/* The method and URL of the request line in head[0..length) (for the log line and metrics);
 * both "" when the line has not arrived whole. */
void cxr_http_intake_request_line(const char *head, size_t length, char *method, size_t method_size,
                                  char *url, size_t url_size);

#endif
