/* The HTTP front end (libmicrohttpd): routes of the v1 API over api/, JWT authentication
 * (libjwt), request limits, /ping and Prometheus /metrics, graceful shutdown.
 *
 * Ownership: outputs are written only on success. Threads: auth and metrics are thread safe;
 * a server is started and shut down from one thread. */
#ifndef CXR_HTTP_H
#define CXR_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "api/api.h"
#include "util/util.h"

/* ---- JWT (http_auth.c) ---- */
struct cxr_auth;

enum cxr_http_auth_outcome {
    CXR_AUTH_OK = 0,
    CXR_AUTH_MISSING = 1, /* no Authorization header (or an empty one): "Token missing" */
    CXR_AUTH_EXPIRED = 2, /* valid signature, past exp: "Token expired" */
    CXR_AUTH_INVALID = 3, /* anything else: "Invalid token" */
};

/* Reads the verification keys: the HS256 secret (config or CXRD_JWT_SECRET) or the RS256/ES256
 * public key file, under kid [auth] key_id; every <kid>.secret or <kid>.pem file of [auth]
 * keys_dir; and the revoked token IDs of [auth] revoked. Refuses an empty key and an HS256
 * secret shorter than 32 bytes. The result is immutable and may be shared by threads. */
enum cxr_status cxr_http_auth_create(const struct cxr_config *config, struct cxr_auth **auth,
                                     struct cxr_err *err);
size_t cxr_http_auth_key_count(const struct cxr_auth *auth);
size_t cxr_http_auth_revoked_count(const struct cxr_auth *auth);
void cxr_http_auth_destroy(struct cxr_auth *auth);

/* Checks an Authorization header value (raw token or "Bearer <token>") at time now: the
 * header's alg must be the configured one (so "none" and algorithm confusion are refused), its
 * kid (when present) must name a key, the signature must verify with that key (the configured
 * one without kid), exp must be present and in the future, nbf (when present) must have passed,
 * jti (when present) must not be revoked. On CXR_AUTH_OK the token's "sub" is copied to subject
 * (may be ""). */
enum cxr_http_auth_outcome cxr_http_auth_check(const struct cxr_auth *auth, const char *header,
                                               time_t now, char *subject, size_t subject_size);

/* The longest token subject ("sub") the server keeps whole for its log and audit rows, bytes. */
#define CXR_HTTP_SUBJECT_MAX 127

/* Mints a token for subject valid from now for ttl_s seconds (claims sub, jti (random), iat, nbf,
 * exp; header kid = [auth] key_id when set), signed with the HS256 secret or the RS256/ES256
 * private key of the config. *token is malloc'ed. */
enum cxr_status cxr_http_auth_token_mint(const struct cxr_config *config, const char *subject,
                                         uint64_t ttl_s, time_t now, char **token,
                                         struct cxr_err *err);

/* ---- Metrics (http_metrics.c) ---- */
struct cxr_metrics;

enum cxr_status cxr_http_metrics_create(struct cxr_metrics **metrics, struct cxr_err *err);
void cxr_http_metrics_destroy(struct cxr_metrics *metrics);
/* Counts one answered request of route ("ping", "single_inference", ...) and its duration. */
void cxr_http_metrics_request(struct cxr_metrics *metrics, const char *route, int status,
                              double seconds);
/* Adds the pipeline stage durations of one request (0 means the stage did not run). */
void cxr_http_metrics_stages(struct cxr_metrics *metrics, const double seconds[CXR_STAGE_COUNT]);
/* Prometheus text exposition format 0.0.4, appended to out. */
enum cxr_status cxr_http_metrics_render(struct cxr_metrics *metrics, uint32_t queued,
                                        uint32_t running, uint32_t connections,
                                        struct cxr_buf *out);

/* ---- The OpenAPI document (docs/openapi.yaml as JSON, generated at build time) ---- */
extern const char cxr_http_openapi_json[];
extern const size_t cxr_http_openapi_json_size;

/* ---- Server (http_server.c) ---- */
struct cxr_server;

/* Starts listening (config address and port; port 0 picks a free port) with the inference
 * worker pool. The api must outlive the server. */
enum cxr_status cxr_http_server_start(const struct cxr_config *config, struct cxr_api *api,
                                      struct cxr_server **server, struct cxr_err *err);
uint16_t cxr_http_server_port(const struct cxr_server *server);
/* Replaces the verification keys and revocation list with those of config (SIGHUP). Requests
 * in flight are not disturbed; on failure the old keys stay. Thread safe. */
enum cxr_status cxr_http_server_reload_auth(struct cxr_server *server,
                                            const struct cxr_config *config, struct cxr_err *err);
/* Graceful stop: stops accepting, lets every request in flight (queued ones included) finish and
 * be answered, waiting up to grace_s for slow clients, then frees the server. NULL: no-op. */
void cxr_http_server_stop(struct cxr_server *server, uint32_t grace_s);

#endif
