/* The server configuration: defaults, the INI schema (every key the README documents, unknown
 * keys refused so a typo cannot silently fall back to a default), and secrets from the
 * environment. Relative paths in a config file are relative to the file's folder. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "dicom/dicom.h"
#include "image/image.h"
#include "report/report.h"

/* Where the default model lives relative to the executable's folder (installed: /usr/bin ->
 * /usr/share/cxrd; the build tree has the same layout), and the fallback. */
#define DEFAULT_MODEL_RELATIVE "../share/cxrd/cxr-default.onnx"
#define DEFAULT_MODEL_FALLBACK "/usr/share/cxrd/cxr-default.onnx"

enum key_type {
    KEY_STRING,
    KEY_PATH,
    KEY_U32,
    KEY_PORT,
    KEY_SIZE,
    KEY_DURATION,
    KEY_DURATION32,
    KEY_GATE_MODE,
    KEY_PNG_COMPRESSION,
    KEY_BOOL,
};

struct key_spec {
    const char *section;
    const char *key;
    enum key_type type;
    size_t offset;
    uint64_t min, max; /* for numbers */
};

#define FIELD(name) offsetof(struct cxr_config, name)
static const struct key_spec keys[] = {
        {"server", "address", KEY_STRING, FIELD(address), 0, 0},
        {"server", "port", KEY_PORT, FIELD(port), 0, 65535},
        {"server", "http_threads", KEY_U32, FIELD(http_threads), 1, 256},
        {"server", "workers", KEY_U32, FIELD(workers), 1, 256},
        {"server", "queue_size", KEY_U32, FIELD(queue_size), 0, 100000},
        {"server", "max_connections", KEY_U32, FIELD(max_connections), 1, 100000},
        {"server", "request_timeout", KEY_DURATION32, FIELD(request_timeout_s), 1, 86400},
        {"server", "shutdown_grace", KEY_DURATION32, FIELD(shutdown_grace_s), 0, 86400},
        {"server", "head_timeout", KEY_DURATION32, FIELD(head_timeout_s), 1, 3600},
        {"server", "max_connections_per_ip", KEY_U32, FIELD(max_connections_per_ip), 0, 100000},
        {"server", "log_level", KEY_STRING, FIELD(log_level), 0, 0},
        {"server", "log_format", KEY_STRING, FIELD(log_format), 0, 0},
        {"server", "tls_certificate", KEY_PATH, FIELD(tls_certificate), 0, 0},
        {"server", "tls_key", KEY_PATH, FIELD(tls_key), 0, 0},
        {"server", "tls_client_ca", KEY_PATH, FIELD(tls_client_ca), 0, 0},
        {"limits", "max_body", KEY_SIZE, FIELD(limits.max_body_bytes), 64, (uint64_t)1 << 30},
        {"limits", "max_header", KEY_SIZE, FIELD(limits.max_header_bytes), 1024, 1 << 20},
        {"limits", "max_file", KEY_SIZE, FIELD(limits.max_file_bytes), 1024, (uint64_t)1 << 40},
        {"limits", "max_image_pixels", KEY_SIZE, FIELD(limits.max_image_pixels), 1,
         (uint64_t)1 << 34},
        {"limits", "max_bulk_files", KEY_U32, FIELD(max_bulk_files), 1, 10000000},
        {"limits", "max_inflight_memory", KEY_SIZE, FIELD(max_inflight_memory), 0,
         (uint64_t)1 << 44},
        {"paths", "input_root", KEY_PATH, FIELD(input_root), 0, 0},
        {"paths", "output_root", KEY_PATH, FIELD(output_root), 0, 0},
        {"model", "path", KEY_PATH, FIELD(model_path), 0, 0},
        {"model", "threads", KEY_U32, FIELD(model_threads), 0, 256},
        {"auth", "algorithm", KEY_STRING, FIELD(jwt_algorithm), 0, 0},
        {"auth", "secret", KEY_STRING, FIELD(jwt_secret), 0, 0},
        {"auth", "public_key", KEY_PATH, FIELD(jwt_public_key), 0, 0},
        {"auth", "private_key", KEY_PATH, FIELD(jwt_private_key), 0, 0},
        {"auth", "token_ttl", KEY_DURATION, FIELD(token_ttl_s), 60, (uint64_t)3650 * 86400},
        {"auth", "secret_file", KEY_PATH, FIELD(jwt_secret_file), 0, 0},
        {"auth", "key_id", KEY_STRING, FIELD(jwt_key_id), 0, 0},
        {"auth", "keys_dir", KEY_PATH, FIELD(jwt_keys_dir), 0, 0},
        {"auth", "revoked", KEY_PATH, FIELD(jwt_revoked), 0, 0},
        {"audit", "database", KEY_PATH, FIELD(audit_database), 0, 0},
        {"audit", "required", KEY_BOOL, FIELD(audit_required), 0, 0},
        {"report", "institution_name", KEY_STRING, FIELD(institution_name), 0, 0},
        {"gate", "mode", KEY_GATE_MODE, FIELD(gate_mode), 0, 0},
        {"report", "timezone", KEY_STRING, FIELD(report_timezone), 0, 0},
        {"report", "png_compression", KEY_PNG_COMPRESSION, FIELD(png_compression), 0, 0},
        {"dicom", "uid_root", KEY_STRING, FIELD(dicom_uid_root), 0, 0},
};

static enum cxr_status parse_gate_mode(const char *value, enum cxr_gate_mode *mode)
{
    static const char *const names[] = {"refuse", "warn", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(value, names[i]) == 0) {
            *mode = (enum cxr_gate_mode)i;
            return CXR_OK;
        }
    }
    return CXR_ERR_INVALID_ARG;
}

static enum cxr_status parse_png_compression(const char *value,
                                             enum cxr_image_png_compression *mode)
{
    if (strcmp(value, "fast") == 0)
        *mode = CXR_IMAGE_PNG_FAST;
    else if (strcmp(value, "small") == 0)
        *mode = CXR_IMAGE_PNG_SMALL;
    else
        return CXR_ERR_INVALID_ARG;
    return CXR_OK;
}

static enum cxr_status set_string(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return CXR_ERR_NOMEM;
    free(*slot);
    *slot = copy;
    return CXR_OK;
}

static enum cxr_status set_path(char **slot, const char *dir, const char *value)
{
    if (value[0] == '/' || value[0] == '\0' || dir == NULL)
        return set_string(slot, value);
    size_t size = strlen(dir) + strlen(value) + 2;
    char *joined = malloc(size);
    if (joined == NULL)
        return CXR_ERR_NOMEM;
    snprintf(joined, size, "%s/%s", dir, value);
    free(*slot);
    *slot = joined;
    return CXR_OK;
}

static enum cxr_status apply(struct cxr_config *config, const struct key_spec *spec,
                             const char *value, struct cxr_err *err)
{
    void *slot = (char *)config + spec->offset;
    uint64_t number = 0;
    size_t size = 0;
    enum cxr_status status = CXR_OK;
    switch (spec->type) {
    case KEY_STRING:
        status = set_string(slot, value);
        break;
    case KEY_PATH:
        status = set_path(slot, config->config_dir, value);
        break;
    case KEY_U32:
    case KEY_PORT:
        status = cxr_parse_u64(value, spec->min, spec->max, &number);
        if (status == CXR_OK && spec->type == KEY_PORT)
            *(uint16_t *)slot = (uint16_t)number;
        else if (status == CXR_OK)
            *(uint32_t *)slot = (uint32_t)number;
        break;
    case KEY_SIZE:
        status = cxr_parse_size(value, &size);
        if (status == CXR_OK && (size < spec->min || size > spec->max))
            status = CXR_ERR_INVALID_ARG;
        if (status == CXR_OK)
            *(size_t *)slot = size;
        break;
    case KEY_DURATION:
    case KEY_DURATION32:
        status = cxr_parse_duration(value, &number);
        if (status == CXR_OK && (number < spec->min || number > spec->max))
            status = CXR_ERR_INVALID_ARG;
        if (status == CXR_OK && spec->type == KEY_DURATION)
            *(uint64_t *)slot = number;
        else if (status == CXR_OK)
            *(uint32_t *)slot = (uint32_t)number;
        break;
    case KEY_GATE_MODE:
        status = parse_gate_mode(value, slot);
        break;
    case KEY_PNG_COMPRESSION:
        status = parse_png_compression(value, slot);
        break;
    case KEY_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0)
            *(bool *)slot = strcmp(value, "true") == 0;
        else
            status = CXR_ERR_INVALID_ARG;
        break;
    }
    if (status == CXR_ERR_NOMEM)
        return cxr_err_set(err, status, "config: out of memory");
    if (status != CXR_OK)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "config [%s] %s: bad value '%s'",
                           spec->section, spec->key, value);
    return CXR_OK;
}

/* The default [model] path, resolved at run time: beside the executable when it is there. */
static enum cxr_status set_default_model(char **slot)
{
    char exe[4096];
    ssize_t length = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (length > 0) {
        exe[length] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char candidate[4096 + sizeof DEFAULT_MODEL_RELATIVE + 1];
            snprintf(candidate, sizeof candidate, "%s/%s", exe, DEFAULT_MODEL_RELATIVE);
            char *resolved = realpath(candidate, NULL);
            if (resolved) {
                free(*slot);
                *slot = resolved;
                return CXR_OK;
            }
        }
    }
    return set_string(slot, DEFAULT_MODEL_FALLBACK);
}

static enum cxr_status set_defaults(struct cxr_config *config)
{
    memset(config, 0, sizeof *config);
    config->port = 8500;
    config->http_threads = 2;
    config->workers = 2;
    config->queue_size = 16;
    config->max_connections = 64;
    config->request_timeout_s = 120;
    config->shutdown_grace_s = 30;
    config->head_timeout_s = 10;
    config->max_connections_per_ip = 32;
    config->limits = cxr_limits_default();
    config->max_bulk_files = 100000;
    config->model_threads = 0;
    config->token_ttl_s = 30 * 86400;
    if (set_string(&config->address, "0.0.0.0") || set_string(&config->log_level, "info") ||
        set_string(&config->input_root, "") || set_string(&config->output_root, "") ||
        set_default_model(&config->model_path) || set_string(&config->jwt_algorithm, "HS256") ||
        set_string(&config->jwt_secret, "") || set_string(&config->jwt_public_key, "") ||
        set_string(&config->jwt_private_key, "") || set_string(&config->audit_database, "") ||
        set_string(&config->institution_name, "") || set_string(&config->report_timezone, "") ||
        set_string(&config->log_format, "text") || set_string(&config->tls_certificate, "") ||
        set_string(&config->tls_key, "") || set_string(&config->tls_client_ca, "") ||
        set_string(&config->jwt_key_id, "") || set_string(&config->jwt_secret_file, "") ||
        set_string(&config->jwt_keys_dir, "") || set_string(&config->jwt_revoked, "") ||
        set_string(&config->dicom_uid_root, ""))
        return CXR_ERR_NOMEM;
    return CXR_OK;
}

static enum cxr_status check(const struct cxr_config *config, struct cxr_err *err)
{
    enum cxr_log_level level;
    if (cxr_log_level_parse(config->log_level, &level) != CXR_OK)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "config [server] log_level: '%s' is not debug, info, warn or error",
                           config->log_level);
    enum cxr_log_format format;
    if (cxr_log_format_parse(config->log_format, &format) != CXR_OK)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "config [server] log_format: '%s' is not text or json",
                           config->log_format);
    if ((config->tls_certificate[0] == '\0') != (config->tls_key[0] == '\0'))
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "config [server] tls_certificate and tls_key: set both or neither");
    if (config->audit_required && config->audit_database[0] == '\0')
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "config [audit] required = true needs [audit] database");
    if (config->tls_client_ca[0] && config->tls_certificate[0] == '\0')
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "config [server] tls_client_ca needs tls_certificate and tls_key");
    const char *alg = config->jwt_algorithm;
    if (strcmp(alg, "HS256") != 0 && strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "config [auth] algorithm: '%s' is not HS256, RS256 or ES256", alg);
    /* An unknown zone would fail every PDF; refuse it at start instead. */
    if (cxr_report_timezone_check(config->report_timezone, NULL) != CXR_OK)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "config [report] timezone: '%s' is not a time zone (an IANA name such "
                           "as Europe/Paris; empty for the machine's)",
                           config->report_timezone);
    struct cxr_err uid_err = CXR_ERR_INIT;
    if (cxr_dicom_uid_root_check(config->dicom_uid_root, &uid_err) != CXR_OK)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "config [dicom] uid_root: %s",
                           uid_err.message);
    return cxr_model_thresholds_check(&config->thresholds, err);
}

/* [limits] max_inflight_memory's default: a quarter of the machine's memory (at least
 * 256 MiB), so that a burst of requests declaring huge images cannot push the server into
 * swap or the OOM killer, while a normal load (a few 2-4k images at a time) never meets it. */
static size_t default_inflight_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long page_size = sysconf(_SC_PAGESIZE);
    size_t floor = (size_t)256 << 20;
    if (pages <= 0 || page_size <= 0)
        return (size_t)1 << 30;
    size_t quarter = (size_t)pages / 4 * (size_t)page_size;
    return quarter > floor ? quarter : floor;
}

/* [auth] secret_file: the secret is the file's content without its trailing newline (the
 * packaged service generates one at installation, readable by root and the cxrd group). */
static enum cxr_status read_secret_file(struct cxr_config *config, struct cxr_err *err)
{
    struct cxr_buf buf = CXR_BUF_INIT(64 * 1024);
    enum cxr_status status = cxr_file_read(config->jwt_secret_file, 64 * 1024, &buf, err);
    while (status == CXR_OK && buf.len &&
           (buf.data[buf.len - 1] == '\n' || buf.data[buf.len - 1] == '\r'))
        buf.len--;
    if (status == CXR_OK && (buf.len == 0 || memchr(buf.data, '\0', buf.len)))
        status = CXR_ERR_INVALID_ARG;
    if (status == CXR_OK && (status = cxr_buf_append(&buf, "", 1)) == CXR_OK) {
        free(config->jwt_secret);
        config->jwt_secret = (char *)buf.data;
        return CXR_OK;
    }
    cxr_buf_release(&buf);
    return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                       "config [auth] secret_file %s: cannot read a secret from it (empty, "
                       "unreadable or binary)",
                       config->jwt_secret_file);
}

enum cxr_status cxr_config_load(const char *path, struct cxr_config *config, struct cxr_err *err)
{
    if (set_defaults(config) != CXR_OK) {
        cxr_config_release(config);
        return cxr_err_set(err, CXR_ERR_NOMEM, "config: out of memory");
    }
    enum cxr_status status = CXR_OK;
    struct cxr_ini *ini = NULL;
    if (path) {
        char *absolute = realpath(path, NULL);
        if (absolute == NULL) {
            status = cxr_err_set(err, CXR_ERR_IO, "config %s: %s", path, strerror(errno));
        } else {
            char *slash = strrchr(absolute, '/');
            slash[slash == absolute ? 1 : 0] = '\0';
            config->config_dir = absolute;
            status = cxr_ini_load(path, &ini, err);
        }
    }
    for (size_t i = 0; ini && status == CXR_OK && i < cxr_ini_count(ini); i++) {
        const char *section, *key, *value;
        cxr_ini_entry(ini, i, &section, &key, &value);
        /* [thresholds] keys are finding names (with spaces): model/ knows them. */
        if (strcmp(section, "thresholds") == 0) {
            status = cxr_model_thresholds_parse_key(&config->thresholds, key, value, err);
            continue;
        }
        const struct key_spec *spec = NULL;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            if (strcmp(keys[k].section, section) == 0 && strcmp(keys[k].key, key) == 0)
                spec = &keys[k];
        }
        if (spec == NULL)
            status = cxr_err_set(err, CXR_ERR_INVALID_ARG, "config %s: unknown key [%s] %s", path,
                                 section, key);
        else
            status = apply(config, spec, value, err);
    }
    cxr_ini_destroy(ini);
    const char *secret = getenv("CXRD_JWT_SECRET");
    if (status == CXR_OK && secret && secret[0] && set_string(&config->jwt_secret, secret))
        status = cxr_err_set(err, CXR_ERR_NOMEM, "config: out of memory");
    if (status == CXR_OK && config->jwt_secret[0] == '\0' && config->jwt_secret_file[0])
        status = read_secret_file(config, err);
    if (status == CXR_OK)
        status = check(config, err);
    if (status == CXR_OK && config->max_inflight_memory == 0)
        config->max_inflight_memory = default_inflight_memory();
    if (status != CXR_OK)
        cxr_config_release(config);
    return status;
}

void cxr_config_release(struct cxr_config *config)
{
    if (config == NULL)
        return;
    char **strings[] = {
            &config->config_dir,      &config->address,        &config->log_level,
            &config->input_root,      &config->output_root,    &config->model_path,
            &config->jwt_algorithm,   &config->jwt_secret,     &config->jwt_public_key,
            &config->jwt_private_key, &config->audit_database, &config->institution_name,
            &config->report_timezone, &config->log_format,     &config->tls_certificate,
            &config->tls_key,         &config->tls_client_ca,  &config->jwt_key_id,
            &config->jwt_keys_dir,    &config->jwt_revoked,    &config->jwt_secret_file,
            &config->dicom_uid_root};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        free(*strings[i]);
        *strings[i] = NULL;
    }
}
