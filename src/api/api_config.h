/* The server configuration (api_config.c): defaults, the INI keys README "## Configuration"
 * documents, and secrets from the environment. */
#ifndef CXR_API_CONFIG_H
#define CXR_API_CONFIG_H

#include <stdint.h>

#include "image/image.h"
#include "model/model.h"
#include "util/util.h"

/* [gate] mode: what the input gate does with an image that is not an adult frontal chest
 * radiograph. */
enum cxr_gate_mode {
    CXR_GATE_REFUSE = 0, /* 400, no outputs (the default) */
    CXR_GATE_WARN = 1,   /* the result, with Result "Warning" and the gate's message */
    CXR_GATE_OFF = 2,
};

/* ---- Configuration (api_config.c): every key is documented in README "## Configuration". */
struct cxr_config {
    char *config_dir; /* folder of the config file; relative paths in it are resolved here */
    /* [server] */
    char *address;
    uint16_t port;
    uint32_t http_threads;           /* libmicrohttpd's connection thread pool */
    uint32_t workers;                /* inference workers */
    uint32_t queue_size;             /* requests that may wait for a worker; more get 503 */
    uint32_t max_connections;        /* open connections at once */
    uint32_t request_timeout_s;      /* idle connection timeout and the longest wait in the queue */
    uint32_t shutdown_grace_s;       /* how long SIGTERM waits for requests in flight */
    uint32_t head_timeout_s;         /* a request head (and then its body) must arrive within it */
    uint32_t max_connections_per_ip; /* open or arriving connections of one address; 0: any */
    char *log_level;
    char *log_format;      /* "text" or "json" */
    char *tls_certificate; /* PEM; "" = plain HTTP */
    char *tls_key;
    char *tls_client_ca; /* PEM CAs; when set, clients must present a certificate they signed */
    /* [limits] (also max_body_bytes and max_header_bytes) */
    struct cxr_limits limits;
    uint32_t max_bulk_files;
    /* Declared decode memory of all requests in flight together; 0 in the file: sized to the
     * machine at load (cxr_config_load fills it). */
    size_t max_inflight_memory;
    /* [paths] */
    char *input_root;
    char *output_root;
    /* [model] */
    char *model_path;
    uint32_t model_threads; /* 0: one per CPU */
    /* [auth] */
    char *jwt_algorithm; /* "HS256", "RS256" or "ES256" */
    char *jwt_secret;    /* HS256; the environment's CXRD_JWT_SECRET takes precedence */
    char *jwt_public_key;
    char *jwt_private_key; /* only for `cxrd token` with RS256/ES256 */
    uint64_t token_ttl_s;
    char *jwt_secret_file; /* HS256 secret in a file (when neither secret nor the env is set) */
    char *jwt_key_id;      /* kid of the key above: set in minted tokens; "" = none */
    char *jwt_keys_dir;    /* more verification keys, one file per kid: <kid>.secret or <kid>.pem */
    char *jwt_revoked;     /* file of revoked token IDs (jti), one a line; "" = none */
    /* [audit] */
    char *audit_database;
    bool audit_required; /* a request whose row cannot be written gets 503 */
    /* [report] */
    char *institution_name; /* "" = the DICOM file's Institution Name */
    char *report_timezone;  /* IANA name for the PDF's report time; "" = the machine's zone */
    enum cxr_image_png_compression png_compression; /* fast (default) or small */
    /* [dicom] */
    char *dicom_uid_root; /* root of the DICOM outputs' UIDs; "" = 2.25.<UUID> */
    /* [gate] */
    enum cxr_gate_mode gate_mode;
    /* [thresholds]: site thresholds and the model version they were calibrated for */
    struct cxr_site_thresholds thresholds;
};

/* Fills config with the defaults, then applies path (may be NULL: defaults only) and the
 * environment (CXRD_JWT_SECRET). Unknown sections or keys and bad values are errors naming the
 * key. Does not check that files exist; cxr_api_create does. */
enum cxr_status cxr_config_load(const char *path, struct cxr_config *config, struct cxr_err *err);
void cxr_config_release(struct cxr_config *config);

#endif
