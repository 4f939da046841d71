/* The intake: accepts connections ahead of libmicrohttpd so that slow or hostile clients never
 * hold its connection slots. A head is only peeked at (MSG_PEEK) until it is complete, so
 * libmicrohttpd later reads the same bytes; what the intake must refuse (a head past the limit,
 * a Content-Length past max_body or not a number, a head still incomplete at its deadline, too
 * many connections) it answers with the v1 envelope, never libmicrohttpd's HTML pages. */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "http/http_intake.h"

#define REQUEST_LINE_ALLOWANCE 8192 /* the request line, beyond max_header */
#define LINGER_SECONDS         1.0  /* draining a refused client so it reads our answer */
#define STOP_SETTLE_SECONDS    1.0  /* heads already arriving at shutdown get this long */
#define EVENT_LISTEN           UINT32_MAX
#define EVENT_WAKE             (UINT32_MAX - 1)

enum slot_state { SLOT_FREE, SLOT_HEAD, SLOT_LINGER };

struct slot {
    enum slot_state state;
    int fd;
    struct sockaddr_in peer;
    double accepted;
    double deadline;
    size_t searched; /* head bytes already searched for the blank line */
};

struct address_count {
    uint32_t ip;
    uint32_t count;
};

/* A TLS connection libmicrohttpd holds whose head has not been complete yet. */
struct watched {
    int fd; /* -1: free */
    double deadline;
};

struct cxr_http_intake {
    struct cxr_http_intake_config config;
    int listen_fd;
    int epoll_fd;
    int wake_fd;
    uint16_t port;
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;
    struct slot *slots;
    uint32_t slot_count;
    size_t peek_size;
    char *peek;
    /* Pending and handed-over connections per address, shared with libmicrohttpd's threads. */
    pthread_mutex_t counts_lock;
    struct address_count *counts;
    uint32_t count_capacity;
    uint32_t active;
    struct watched *watched; /* under counts_lock; count_capacity entries */
};

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* ---- per-address counts ---- */

static uint32_t *count_of(struct cxr_http_intake *intake, uint32_t ip, bool create)
{
    struct address_count *free_entry = NULL;
    for (uint32_t i = 0; i < intake->count_capacity; i++) {
        struct address_count *entry = &intake->counts[i];
        if (entry->count && entry->ip == ip)
            return &entry->count;
        if (entry->count == 0 && free_entry == NULL)
            free_entry = entry;
    }
    if (!create || free_entry == NULL)
        return NULL;
    free_entry->ip = ip;
    return &free_entry->count;
}

/* Counts a new connection unless it breaks a limit; returns the refusal detail otherwise. */
static bool admit(struct cxr_http_intake *intake, uint32_t ip, char *why, size_t why_size)
{
    const struct cxr_http_intake_config *config = &intake->config;
    pthread_mutex_lock(&intake->counts_lock);
    uint32_t *count = count_of(intake, ip, true);
    bool ok = count != NULL;
    if (ok && config->max_per_ip && *count >= config->max_per_ip) {
        char text[INET_ADDRSTRLEN] = "";
        struct in_addr address = {.s_addr = ip};
        inet_ntop(AF_INET, &address, text, sizeof text);
        snprintf(why, why_size, "too many connections from %s (at most %u); retry later", text,
                 config->max_per_ip);
        ok = false;
    } else if (!ok) {
        snprintf(why, why_size, "too many connections; retry later");
    }
    if (ok)
        (*count)++;
    pthread_mutex_unlock(&intake->counts_lock);
    return ok;
}

static void release(struct cxr_http_intake *intake, uint32_t ip)
{
    pthread_mutex_lock(&intake->counts_lock);
    uint32_t *count = count_of(intake, ip, false);
    if (count && *count)
        (*count)--;
    pthread_mutex_unlock(&intake->counts_lock);
}

void cxr_http_intake_connection_started(struct cxr_http_intake *intake, uint32_t ip)
{
    /* The intake's own count of this connection moves over with it (see hand_over). */
    pthread_mutex_lock(&intake->counts_lock);
    uint32_t *count = count_of(intake, ip, true);
    if (count)
        (*count)++;
    intake->active++;
    pthread_mutex_unlock(&intake->counts_lock);
}

void cxr_http_intake_connection_closed(struct cxr_http_intake *intake, uint32_t ip)
{
    pthread_mutex_lock(&intake->counts_lock);
    uint32_t *count = count_of(intake, ip, false);
    if (count && *count)
        (*count)--;
    if (intake->active)
        intake->active--;
    pthread_mutex_unlock(&intake->counts_lock);
}

/* ---- answering and closing ---- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Service Unavailable";
    }
}

static void close_slot(struct cxr_http_intake *intake, struct slot *slot)
{
    epoll_ctl(intake->epoll_fd, EPOLL_CTL_DEL, slot->fd, NULL);
    close(slot->fd);
    release(intake, slot->peer.sin_addr.s_addr);
    slot->state = SLOT_FREE;
    slot->fd = -1;
}

/* Sends the envelope of error (best effort: a few hundred bytes fit any socket buffer), then
 * half-closes and lingers briefly, reading what the client still sends, so that closing with
 * unread input does not reset the connection before the client reads the answer. */
static void answer(struct cxr_http_intake *intake, struct slot *slot, enum cxr_api_error error,
                   const char *detail, size_t head_length)
{
    char method[16], url[256];
    cxr_http_intake_request_line(intake->peek, head_length, method, sizeof method, url, sizeof url);
    unsigned char random[8] = {0};
    char request_id[17];
    if (getrandom(random, sizeof random, GRND_NONBLOCK) != (ssize_t)sizeof random)
        memset(random, 0, sizeof random);
    for (size_t i = 0; i < sizeof random; i++)
        snprintf(request_id + 2 * i, 3, "%02x", random[i]);
    struct cxr_api_response response = {0};
    int status = cxr_api_error_status(error);
    char message[512];
    cxr_api_error_message(error, detail, message, sizeof message);
    if (cxr_api_response_error(error, detail, &response) == CXR_OK && response.body) {
        char text[1024];
        int length = snprintf(text, sizeof text,
                              "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\nX-Request-Id: %s\r\nConnection: close\r\n"
                              "\r\n%s",
                              status, reason_phrase(status), strlen(response.body), request_id,
                              response.body);
        if (length > 0 && (size_t)length < sizeof text)
            (void)!send(slot->fd, text, (size_t)length, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    cxr_api_response_release(&response);
    if (intake->config.answered)
        intake->config.answered(intake->config.context, method, url, status, message, request_id,
                                now_seconds() - slot->accepted);
    shutdown(slot->fd, SHUT_WR);
    slot->state = SLOT_LINGER;
    slot->deadline = now_seconds() + LINGER_SECONDS;
    /* Drain what is buffered now: with edge-triggered events, a full receive buffer would
     * otherwise stall the client's send (and its read of the answer) until the deadline. */
    char sink[4096];
    while (recv(slot->fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
        ;
}

static void hand_over(struct cxr_http_intake *intake, struct slot *slot)
{
    epoll_ctl(intake->epoll_fd, EPOLL_CTL_DEL, slot->fd, NULL);
    /* libmicrohttpd's connection-started callback counts it again; ours ends here. */
    release(intake, slot->peer.sin_addr.s_addr);
    struct sockaddr_in peer = slot->peer;
    int fd = slot->fd;
    slot->state = SLOT_FREE;
    slot->fd = -1;
    intake->config.hand_over(intake->config.context, fd, &peer);
}

/* Reads (without consuming) what has arrived of a head and decides. events: what epoll said
 * (0 when called right after accept). */
static void examine(struct cxr_http_intake *intake, struct slot *slot, uint32_t events)
{
    if (slot->state == SLOT_LINGER) {
        char sink[4096];
        ssize_t got;
        while ((got = recv(slot->fd, sink, sizeof sink, MSG_DONTWAIT)) > 0)
            ;
        if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            close_slot(intake, slot);
        return;
    }
    ssize_t got = recv(slot->fd, intake->peek, intake->peek_size, MSG_PEEK | MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (got <= 0) {
        /* The peer left (or the connection broke) before its head was complete. */
        close_slot(intake, slot);
        return;
    }
    size_t length = (size_t)got;
    size_t end = cxr_http_intake_head_end(intake->peek, length, slot->searched);
    slot->searched = length;
    const struct cxr_http_intake_config *config = &intake->config;
    char detail[160];
    if (end == 0) {
        /* A peek keeps returning the unread part of the head, so a peer that left shows only
         * in the event: release it now rather than at its deadline. */
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            close_slot(intake, slot);
            return;
        }
        if (length < intake->peek_size)
            return; /* more to come */
        snprintf(detail, sizeof detail, "more than %zu bytes", config->max_header_bytes);
        answer(intake, slot, CXR_API_HEADERS_TOO_LARGE, detail, length);
        return;
    }
    if (atomic_load(&intake->stopping)) {
        answer(intake, slot, CXR_API_SHUTTING_DOWN, "request not started", end);
        return;
    }
    /* libmicrohttpd answers a head it cannot parse with an HTML page of its own. */
    char version[16];
    switch (cxr_http_intake_head_form(intake->peek, end, version, sizeof version)) {
    case CXR_HEAD_BAD_REQUEST_LINE:
        answer(intake, slot, CXR_API_BAD_REQUEST,
               "malformed request line (expected \"METHOD /path HTTP/1.1\")", end);
        return;
    case CXR_HEAD_VERSION:
        answer(intake, slot, CXR_API_HTTP_VERSION, version, end);
        return;
    case CXR_HEAD_BAD_HEADER_LINE:
        answer(intake, slot, CXR_API_BAD_REQUEST,
               "malformed header line (expected \"name: value\")", end);
        return;
    case CXR_HEAD_OK:
        break;
    }
    if (cxr_http_intake_field_count(intake->peek, end) > CXR_HTTP_HEAD_FIELDS_MAX) {
        snprintf(detail, sizeof detail, "more than %d header lines, query parameters and cookies",
                 CXR_HTTP_HEAD_FIELDS_MAX);
        answer(intake, slot, CXR_API_HEADERS_TOO_LARGE, detail, end);
        return;
    }
    uint64_t content_length = 0;
    switch (cxr_http_intake_content_length(intake->peek, end, config->max_body_bytes,
                                           &content_length)) {
    case CXR_CONTENT_LENGTH_TOO_LARGE:
        snprintf(detail, sizeof detail, "more than %zu bytes", config->max_body_bytes);
        answer(intake, slot, CXR_API_BODY_TOO_LARGE, detail, end);
        return;
    case CXR_CONTENT_LENGTH_MALFORMED:
        answer(intake, slot, CXR_API_BAD_REQUEST, "Content-Length is not a decimal number", end);
        return;
    case CXR_CONTENT_LENGTH_ABSENT:
    case CXR_CONTENT_LENGTH_OK:
        break;
    }
    /* libmicrohttpd would close a connection past its limit without a word. */
    pthread_mutex_lock(&intake->counts_lock);
    bool full = intake->active >= config->max_active;
    pthread_mutex_unlock(&intake->counts_lock);
    if (full) {
        snprintf(detail, sizeof detail, "too many connections (at most %u); retry later",
                 config->max_active);
        answer(intake, slot, CXR_API_BUSY, detail, end);
        return;
    }
    hand_over(intake, slot);
}

/* ---- the thread ---- */

static struct slot *free_slot(struct cxr_http_intake *intake)
{
    for (uint32_t i = 0; i < intake->slot_count; i++) {
        if (intake->slots[i].state == SLOT_FREE)
            return &intake->slots[i];
    }
    return NULL;
}

/* A refusal at accept time: a short envelope and close, no lingering (the client has not sent
 * much yet, and lingering would give it the slot it was refused). */
static void refuse(struct cxr_http_intake *intake, int fd, const struct sockaddr_in *peer,
                   const char *why)
{
    struct slot slot = {.state = SLOT_HEAD, .fd = fd, .peer = *peer, .accepted = now_seconds()};
    answer(intake, &slot, CXR_API_BUSY, why, 0);
    close(fd);
}

static void accept_all(struct cxr_http_intake *intake)
{
    for (;;) {
        struct sockaddr_in peer;
        socklen_t size = sizeof peer;
        int fd = accept4(intake->listen_fd, (struct sockaddr *)&peer, &size,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                cxr_log(CXR_LOG_WARN, "intake: accept: %s", strerror(errno));
            return;
        }
        char why[160];
        struct slot *slot = free_slot(intake);
        uint32_t ip = peer.sin_addr.s_addr;
        if (slot == NULL) {
            snprintf(why, sizeof why,
                     "too many connections still sending their request (at most %u); retry "
                     "later",
                     intake->slot_count);
            refuse(intake, fd, &peer, why);
            continue;
        }
        if (!admit(intake, ip, why, sizeof why)) {
            refuse(intake, fd, &peer, why);
            continue;
        }
        pthread_mutex_lock(&intake->counts_lock);
        bool full = intake->active >= intake->config.max_active;
        pthread_mutex_unlock(&intake->counts_lock);
        if (full) {
            release(intake, ip);
            snprintf(why, sizeof why, "too many connections (at most %u); retry later",
                     intake->config.max_active);
            refuse(intake, fd, &peer, why);
            continue;
        }
        *slot = (struct slot){.state = SLOT_HEAD, .fd = fd, .peer = peer};
        slot->accepted = now_seconds();
        slot->deadline = slot->accepted + intake->config.head_timeout_s;
        if (intake->config.tls) {
            hand_over(intake, slot); /* the head is encrypted: libmicrohttpd reads it */
            continue;
        }
        struct epoll_event event = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                                    .data.u32 = (uint32_t)(slot - intake->slots)};
        if (epoll_ctl(intake->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
            close(fd);
            release(intake, ip);
            slot->state = SLOT_FREE;
            continue;
        }
        examine(intake, slot, 0); /* the head may have come with the handshake */
    }
}

int cxr_http_intake_watch(struct cxr_http_intake *intake, int fd)
{
    int index = -1;
    pthread_mutex_lock(&intake->counts_lock);
    for (uint32_t i = 0; i < intake->count_capacity && index < 0; i++) {
        if (intake->watched[i].fd < 0) {
            intake->watched[i] = (struct watched){
                    .fd = fd, .deadline = now_seconds() + intake->config.head_timeout_s};
            index = (int)i;
        }
    }
    pthread_mutex_unlock(&intake->counts_lock);
    return index;
}

void cxr_http_intake_unwatch(struct cxr_http_intake *intake, int index)
{
    if (index < 0 || (uint32_t)index >= intake->count_capacity)
        return;
    pthread_mutex_lock(&intake->counts_lock);
    intake->watched[index].fd = -1;
    pthread_mutex_unlock(&intake->counts_lock);
}

/* TLS heads past their deadline: the connection is shut down (not closed: the descriptor
 * stays libmicrohttpd's, which then sees the end and closes it; it cannot have been reused,
 * since libmicrohttpd unwatches before it closes). No answer: it would have to be encrypted. */
static void expire_watched(struct cxr_http_intake *intake, double now)
{
    pthread_mutex_lock(&intake->counts_lock);
    for (uint32_t i = 0; i < intake->count_capacity; i++) {
        struct watched *watched = &intake->watched[i];
        if (watched->fd >= 0 && now >= watched->deadline) {
            shutdown(watched->fd, SHUT_RDWR);
            cxr_log(CXR_LOG_INFO,
                    "intake: a TLS connection sent no complete request head within %u s; "
                    "closed",
                    intake->config.head_timeout_s);
            watched->fd = -1;
        }
    }
    pthread_mutex_unlock(&intake->counts_lock);
}

static void expire(struct cxr_http_intake *intake, double now, bool stopping)
{
    char detail[160];
    if (intake->config.tls)
        expire_watched(intake, now);
    for (uint32_t i = 0; i < intake->slot_count; i++) {
        struct slot *slot = &intake->slots[i];
        if (slot->state == SLOT_LINGER && now >= slot->deadline) {
            close_slot(intake, slot);
        } else if (slot->state == SLOT_HEAD && stopping) {
            answer(intake, slot, CXR_API_SHUTTING_DOWN, "request not started", 0);
        } else if (slot->state == SLOT_HEAD && now >= slot->deadline) {
            snprintf(detail, sizeof detail, "the request head did not arrive within %u s",
                     intake->config.head_timeout_s);
            answer(intake, slot, CXR_API_REQUEST_TIMEOUT, detail, 0);
        }
    }
}

static bool any_open(const struct cxr_http_intake *intake)
{
    for (uint32_t i = 0; i < intake->slot_count; i++) {
        if (intake->slots[i].state != SLOT_FREE)
            return true;
    }
    return false;
}

static void *intake_main(void *arg)
{
    struct cxr_http_intake *intake = arg;
    double settle_until = 0;
    for (;;) {
        bool stopping = atomic_load(&intake->stopping);
        if (stopping && intake->listen_fd >= 0) {
            /* Stop accepting at once: what is in the backlog is taken (and answered 503 once
             * its head is in), then the socket closes and new connections are refused. */
            accept_all(intake);
            epoll_ctl(intake->epoll_fd, EPOLL_CTL_DEL, intake->listen_fd, NULL);
            close(intake->listen_fd);
            intake->listen_fd = -1;
            settle_until = now_seconds() + STOP_SETTLE_SECONDS;
        }
        double now = now_seconds();
        if (stopping) {
            if (now >= settle_until)
                expire(intake, now, true);
            else
                expire(intake, now, false);
            if (!any_open(intake))
                break;
        } else {
            expire(intake, now, false);
        }
        struct epoll_event events[64];
        int count = epoll_wait(intake->epoll_fd, events, 64, 100);
        for (int i = 0; i < count; i++) {
            uint32_t tag = events[i].data.u32;
            if (tag == EVENT_LISTEN) {
                accept_all(intake);
            } else if (tag == EVENT_WAKE) {
                uint64_t value;
                (void)!read(intake->wake_fd, &value, sizeof value);
            } else if (tag < intake->slot_count && intake->slots[tag].state != SLOT_FREE) {
                examine(intake, &intake->slots[tag], events[i].events);
            }
        }
    }
    return NULL;
}

/* ---- life cycle ---- */

static enum cxr_status listen_on(struct cxr_http_intake *intake, struct cxr_err *err)
{
    const struct cxr_http_intake_config *config = &intake->config;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(config->port)};
    if (inet_pton(AF_INET, config->address, &address.sin_addr) != 1)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "config [server] address: '%s' is not an IPv4 address", config->address);
    intake->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    if (intake->listen_fd >= 0)
        setsockopt(intake->listen_fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    /* A head up to the limit must fit the receive buffer, since it is peeked, not read. */
    int buffer = (int)(intake->peek_size * 2);
    if (intake->listen_fd >= 0 && intake->peek_size > 64 * 1024)
        setsockopt(intake->listen_fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    if (intake->listen_fd < 0 ||
        bind(intake->listen_fd, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(intake->listen_fd, 1024) != 0)
        return cxr_err_set(err, CXR_ERR_IO, "server: cannot listen on %s:%u (%s)", config->address,
                           (unsigned)config->port, strerror(errno));
    socklen_t size = sizeof address;
    getsockname(intake->listen_fd, (struct sockaddr *)&address, &size);
    intake->port = ntohs(address.sin_port);
    return CXR_OK;
}

enum cxr_status cxr_http_intake_create(const struct cxr_http_intake_config *config,
                                       struct cxr_http_intake **out, struct cxr_err *err)
{
    struct cxr_http_intake *intake = calloc(1, sizeof *intake);
    if (intake == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "server: out of memory");
    intake->config = *config;
    intake->listen_fd = intake->epoll_fd = intake->wake_fd = -1;
    atomic_init(&intake->stopping, false);
    pthread_mutex_init(&intake->counts_lock, NULL);
    intake->slot_count = config->max_pending ? config->max_pending : 1;
    intake->count_capacity = intake->slot_count + config->max_active + 16;
    intake->peek_size = config->max_header_bytes + REQUEST_LINE_ALLOWANCE;
    intake->slots = calloc(intake->slot_count, sizeof *intake->slots);
    intake->counts = calloc(intake->count_capacity, sizeof *intake->counts);
    intake->watched = calloc(intake->count_capacity, sizeof *intake->watched);
    for (uint32_t i = 0; intake->watched && i < intake->count_capacity; i++)
        intake->watched[i].fd = -1;
    intake->peek = malloc(intake->peek_size);
    enum cxr_status status = CXR_OK;
    if (intake->slots == NULL || intake->counts == NULL || intake->peek == NULL ||
        intake->watched == NULL)
        status = cxr_err_set(err, CXR_ERR_NOMEM, "server: out of memory");
    if (status == CXR_OK)
        status = listen_on(intake, err);
    if (status == CXR_OK) {
        intake->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        intake->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event listen_event = {.events = EPOLLIN, .data.u32 = EVENT_LISTEN};
        struct epoll_event wake_event = {.events = EPOLLIN, .data.u32 = EVENT_WAKE};
        if (intake->epoll_fd < 0 || intake->wake_fd < 0 ||
            epoll_ctl(intake->epoll_fd, EPOLL_CTL_ADD, intake->listen_fd, &listen_event) != 0 ||
            epoll_ctl(intake->epoll_fd, EPOLL_CTL_ADD, intake->wake_fd, &wake_event) != 0)
            status = cxr_err_set(err, CXR_ERR_IO, "server: epoll: %s", strerror(errno));
    }
    if (status == CXR_OK) {
        if (pthread_create(&intake->thread, NULL, intake_main, intake) != 0)
            status = cxr_err_set(err, CXR_ERR_IO, "server: cannot start the intake thread");
        else
            intake->thread_started = true;
    }
    if (status != CXR_OK) {
        cxr_http_intake_destroy(intake);
        return status;
    }
    *out = intake;
    return CXR_OK;
}

uint16_t cxr_http_intake_port(const struct cxr_http_intake *intake)
{
    return intake->port;
}

void cxr_http_intake_stop(struct cxr_http_intake *intake)
{
    if (intake == NULL || !intake->thread_started)
        return;
    atomic_store(&intake->stopping, true);
    uint64_t one = 1;
    (void)!write(intake->wake_fd, &one, sizeof one);
    pthread_join(intake->thread, NULL);
    intake->thread_started = false;
}

void cxr_http_intake_destroy(struct cxr_http_intake *intake)
{
    if (intake == NULL)
        return;
    cxr_http_intake_stop(intake);
    for (uint32_t i = 0; intake->slots && i < intake->slot_count; i++) {
        if (intake->slots[i].state != SLOT_FREE)
            close(intake->slots[i].fd);
    }
    if (intake->listen_fd >= 0)
        close(intake->listen_fd);
    if (intake->epoll_fd >= 0)
        close(intake->epoll_fd);
    if (intake->wake_fd >= 0)
        close(intake->wake_fd);
    pthread_mutex_destroy(&intake->counts_lock);
    free(intake->slots);
    free(intake->counts);
    free(intake->watched);
    free(intake->peek);
    free(intake);
}
