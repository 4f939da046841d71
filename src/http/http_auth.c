/* JWT authentication with libjwt 1.10. libjwt verifies signatures; the checks it does not make
 * are made here: the header's alg must equal the configured algorithm before any key is used
 * (refusing "none", unsigned tokens and HS256-with-a-public-key confusion), the header's kid
 * picks one of several keys (rotation), exp is required, nbf enforced, and a revoked jti
 * refused. A struct cxr_auth is immutable: a reload builds a new one. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "http/http.h"

/* One verification key: the configured one (kid = [auth] key_id, may be "") or one file of
 * [auth] keys_dir (kid = the file name without .secret or .pem). */
struct auth_key {
    char kid[65];
    unsigned char *key;
    size_t size;
};

struct cxr_auth {
    jwt_alg_t algorithm;
    char algorithm_name[8];
    struct auth_key *keys; /* keys[0] is the configured key */
    size_t key_count;
    char **revoked; /* sorted jti values */
    size_t revoked_count;
};

/* Longest token accepted; real ones are a few hundred bytes. */
#define TOKEN_MAX 8192
/* HS256 secrets shorter than this are refused (RFC 7518 3.2: at least the hash size). */
#define HS256_MIN_BYTES 32
#define KEYS_MAX        64
#define REVOKED_MAX     1000000

static jwt_alg_t algorithm_of(const char *name)
{
    if (strcmp(name, "HS256") == 0)
        return JWT_ALG_HS256;
    if (strcmp(name, "RS256") == 0)
        return JWT_ALG_RS256;
    if (strcmp(name, "ES256") == 0)
        return JWT_ALG_ES256;
    return JWT_ALG_INVAL;
}

static bool kid_valid(const char *kid, size_t length)
{
    if (length == 0 || length > 64)
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = kid[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static enum cxr_status read_key(const char *path, const char *what, unsigned char **key,
                                size_t *size, struct cxr_err *err)
{
    if (path == NULL || path[0] == '\0')
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "auth: config [auth] %s is not set", what);
    struct cxr_buf buf = CXR_BUF_INIT(0);
    enum cxr_status status = cxr_file_read(path, 1 << 20, &buf, err);
    if (status == CXR_OK && buf.len == 0)
        status = cxr_err_set(err, CXR_ERR_INVALID_ARG, "auth: %s %s is empty", what, path);
    if (status == CXR_OK)
        status = cxr_buf_append(&buf, "", 1); /* libjwt reads PEM as a C string */
    if (status != CXR_OK) {
        cxr_buf_release(&buf);
        return cxr_err_set(err, status, "auth: cannot read %s %s", what, path);
    }
    *key = buf.data;
    *size = buf.len - 1;
    return CXR_OK;
}

static enum cxr_status secret_check(size_t size, const char *where, struct cxr_err *err)
{
    if (size < HS256_MIN_BYTES)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "auth: the HS256 secret of %s has %zu bytes; at least %d are needed "
                           "(e.g. head -c 32 /dev/urandom | base64)",
                           where, size, HS256_MIN_BYTES);
    return CXR_OK;
}

static int compare_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* [auth] revoked: one jti a line; blank lines and lines starting with # are skipped. */
static enum cxr_status read_revoked(struct cxr_auth *auth, const char *path, struct cxr_err *err)
{
    struct cxr_buf buf = CXR_BUF_INIT(0);
    enum cxr_status status = cxr_file_read(path, 64 << 20, &buf, err);
    if (status != CXR_OK) {
        cxr_buf_release(&buf);
        return cxr_err_set(err, status, "auth: cannot read the revocation list %s", path);
    }
    const char *text = buf.data ? (const char *)buf.data : "";
    size_t capacity = 0;
    for (size_t at = 0; at < buf.len && status == CXR_OK;) {
        const char *line = text + at;
        const char *newline = memchr(line, '\n', buf.len - at);
        size_t length = newline ? (size_t)(newline - line) : buf.len - at;
        at += length + 1;
        while (length && (line[0] == ' ' || line[0] == '\t')) {
            line++;
            length--;
        }
        while (length &&
               (line[length - 1] == ' ' || line[length - 1] == '\t' || line[length - 1] == '\r'))
            length--;
        if (length == 0 || line[0] == '#')
            continue;
        if (auth->revoked_count == REVOKED_MAX) {
            status = cxr_err_set(err, CXR_ERR_INVALID_ARG,
                                 "auth: the revocation list %s has more than %d entries", path,
                                 REVOKED_MAX);
            break;
        }
        if (auth->revoked_count == capacity) {
            size_t grown = capacity ? capacity * 2 : 64;
            char **more = realloc(auth->revoked, grown * sizeof *more);
            if (more == NULL) {
                status = cxr_err_set(err, CXR_ERR_NOMEM, "auth: out of memory");
                break;
            }
            auth->revoked = more;
            capacity = grown;
        }
        char *jti = strndup(line, length);
        if (jti == NULL)
            status = cxr_err_set(err, CXR_ERR_NOMEM, "auth: out of memory");
        else
            auth->revoked[auth->revoked_count++] = jti;
    }
    cxr_buf_release(&buf);
    if (status == CXR_OK && auth->revoked_count)
        qsort(auth->revoked, auth->revoked_count, sizeof *auth->revoked, compare_text);
    return status;
}

/* [auth] keys_dir: every <kid>.secret (HS256) or <kid>.pem (RS256/ES256) file; other files are
 * ignored. */
static enum cxr_status read_keys_dir(struct cxr_auth *auth, const char *path, struct cxr_err *err)
{
    DIR *dir = opendir(path);
    if (dir == NULL)
        return cxr_err_set(err, CXR_ERR_IO, "auth: [auth] keys_dir %s: %s", path, strerror(errno));
    const char *suffix = auth->algorithm == JWT_ALG_HS256 ? ".secret" : ".pem";
    size_t suffix_length = strlen(suffix);
    enum cxr_status status = CXR_OK;
    for (struct dirent *entry; status == CXR_OK && (entry = readdir(dir)) != NULL;) {
        size_t length = strlen(entry->d_name);
        if (length <= suffix_length || entry->d_name[0] == '.' ||
            strcmp(entry->d_name + length - suffix_length, suffix) != 0)
            continue;
        size_t kid_length = length - suffix_length;
        if (!kid_valid(entry->d_name, kid_length)) {
            status = cxr_err_set(err, CXR_ERR_INVALID_ARG,
                                 "auth: key file %s/%s: the name before %s must be 1 to 64 of "
                                 "A-Z a-z 0-9 . _ -",
                                 path, entry->d_name, suffix);
            break;
        }
        if (auth->key_count == KEYS_MAX) {
            status = cxr_err_set(err, CXR_ERR_INVALID_ARG, "auth: more than %d keys in %s",
                                 KEYS_MAX, path);
            break;
        }
        struct auth_key *key = &auth->keys[auth->key_count];
        memcpy(key->kid, entry->d_name, kid_length);
        key->kid[kid_length] = '\0';
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", path, entry->d_name);
        status = read_key(file, "key file", &key->key, &key->size, err);
        if (status != CXR_OK)
            break;
        auth->key_count++;
        if (auth->algorithm == JWT_ALG_HS256) {
            while (key->size &&
                   (key->key[key->size - 1] == '\n' || key->key[key->size - 1] == '\r'))
                key->key[--key->size] = '\0'; /* a secret written with echo */
            status = secret_check(key->size, file, err);
        }
        for (size_t i = 0; status == CXR_OK && i + 1 < auth->key_count; i++) {
            if (strcmp(auth->keys[i].kid, key->kid) == 0)
                status = cxr_err_set(err, CXR_ERR_INVALID_ARG,
                                     "auth: kid '%s' of %s is also [auth] key_id", key->kid, file);
        }
    }
    closedir(dir);
    return status;
}

enum cxr_status cxr_http_auth_create(const struct cxr_config *config, struct cxr_auth **out,
                                     struct cxr_err *err)
{
    struct cxr_auth *auth = calloc(1, sizeof *auth);
    if (auth == NULL || (auth->keys = calloc(KEYS_MAX, sizeof *auth->keys)) == NULL) {
        free(auth);
        return cxr_err_set(err, CXR_ERR_NOMEM, "auth: out of memory");
    }
    auth->algorithm = algorithm_of(config->jwt_algorithm);
    snprintf(auth->algorithm_name, sizeof auth->algorithm_name, "%s", config->jwt_algorithm);
    struct auth_key *primary = &auth->keys[0];
    auth->key_count = 1;
    const char *kid = config->jwt_key_id ? config->jwt_key_id : "";
    enum cxr_status status = CXR_OK;
    if (kid[0] && !kid_valid(kid, strlen(kid)))
        status = cxr_err_set(err, CXR_ERR_INVALID_ARG,
                             "auth: [auth] key_id '%s' must be 1 to 64 of A-Z a-z 0-9 . _ -", kid);
    snprintf(primary->kid, sizeof primary->kid, "%s", kid);
    if (status == CXR_OK && auth->algorithm == JWT_ALG_INVAL) {
        status = cxr_err_set(err, CXR_ERR_INVALID_ARG, "auth: unknown algorithm '%s'",
                             config->jwt_algorithm);
    } else if (status == CXR_OK && auth->algorithm == JWT_ALG_HS256) {
        size_t size = config->jwt_secret ? strlen(config->jwt_secret) : 0;
        if (size == 0)
            status = cxr_err_set(err, CXR_ERR_INVALID_ARG,
                                 "auth: HS256 needs a secret ([auth] secret or CXRD_JWT_SECRET)");
        else
            status = secret_check(size, "[auth] secret or CXRD_JWT_SECRET", err);
        if (status == CXR_OK &&
            (primary->key = (unsigned char *)strdup(config->jwt_secret)) == NULL)
            status = cxr_err_set(err, CXR_ERR_NOMEM, "auth: out of memory");
        primary->size = size;
    } else if (status == CXR_OK) {
        status = read_key(config->jwt_public_key, "public_key", &primary->key, &primary->size, err);
    }
    if (status == CXR_OK && config->jwt_keys_dir && config->jwt_keys_dir[0])
        status = read_keys_dir(auth, config->jwt_keys_dir, err);
    if (status == CXR_OK && config->jwt_revoked && config->jwt_revoked[0])
        status = read_revoked(auth, config->jwt_revoked, err);
    if (status != CXR_OK) {
        cxr_http_auth_destroy(auth);
        return status;
    }
    *out = auth;
    return CXR_OK;
}

size_t cxr_http_auth_key_count(const struct cxr_auth *auth)
{
    return auth->key_count;
}

size_t cxr_http_auth_revoked_count(const struct cxr_auth *auth)
{
    return auth->revoked_count;
}

void cxr_http_auth_destroy(struct cxr_auth *auth)
{
    if (auth == NULL)
        return;
    for (size_t i = 0; auth->keys && i < auth->key_count; i++) {
        if (auth->keys[i].key)
            memset(auth->keys[i].key, 0, auth->keys[i].size);
        free(auth->keys[i].key);
    }
    free(auth->keys);
    for (size_t i = 0; i < auth->revoked_count; i++)
        free(auth->revoked[i]);
    free(auth->revoked);
    free(auth);
}

/* The alg of the JOSE header, checked before libjwt sees the token, and its kid: the key that
 * verifies it (the configured key when there is none). NULL when the header is bad or names
 * an unknown kid. */
static const struct auth_key *header_key(const struct cxr_auth *auth, const char *token,
                                         size_t header_length)
{
    struct cxr_buf decoded = CXR_BUF_INIT(4096);
    if (cxr_base64url_decode(token, header_length, &decoded) != CXR_OK) {
        cxr_buf_release(&decoded);
        return false;
    }
    json_t *header = json_loadb((const char *)decoded.data, decoded.len, 0, NULL);
    cxr_buf_release(&decoded);
    json_t *alg = json_object_get(header, "alg");
    json_t *kid = json_object_get(header, "kid");
    const struct auth_key *key = NULL;
    if (json_is_string(alg) && strcmp(json_string_value(alg), auth->algorithm_name) == 0) {
        if (kid == NULL) {
            key = &auth->keys[0];
        } else if (json_is_string(kid)) {
            for (size_t i = 0; i < auth->key_count && key == NULL; i++) {
                if (auth->keys[i].kid[0] && strcmp(auth->keys[i].kid, json_string_value(kid)) == 0)
                    key = &auth->keys[i];
            }
        }
    }
    json_decref(header);
    return key;
}

/* text into out (size bytes, size > 0), cut only between characters when it does not fit: a
 * token signed elsewhere may carry a longer "sub" than cxrd token mints, and a subject cut inside
 * a character went into audit rows and log lines as bytes that are not UTF-8. */
static void copy_whole_characters(char *out, size_t size, const char *text)
{
    size_t used = 0, left = strlen(text);
    for (size_t length; left > 0; used += length, left -= length) {
        length = cxr_utf8_sequence((const unsigned char *)text + used, left);
        if (length == 0 || used + length >= size)
            break;
    }
    memcpy(out, text, used);
    out[used] = '\0';
}

enum cxr_http_auth_outcome cxr_http_auth_check(const struct cxr_auth *auth, const char *header,
                                               time_t now, char *subject, size_t subject_size)
{
    if (header == NULL)
        return CXR_AUTH_MISSING;
    while (*header == ' ' || *header == '\t')
        header++;
    if (*header == '\0')
        return CXR_AUTH_MISSING;
    if (strncasecmp(header, "Bearer ", 7) == 0) {
        header += 7;
        while (*header == ' ')
            header++;
    }
    size_t length = strlen(header);
    while (length && (header[length - 1] == ' ' || header[length - 1] == '\t'))
        length--;
    if (length == 0 || length > TOKEN_MAX)
        return CXR_AUTH_INVALID;

    /* Exactly three non-empty segments: an empty signature is an unsigned token. */
    const char *first = memchr(header, '.', length);
    const char *second =
            first ? memchr(first + 1, '.', length - (size_t)(first + 1 - header)) : NULL;
    if (!first || !second || first == header || second == first + 1 ||
        second + 1 == header + length ||
        memchr(second + 1, '.', length - (size_t)(second + 1 - header)))
        return CXR_AUTH_INVALID;
    for (size_t i = 0; i < length; i++) {
        char c = header[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok)
            return CXR_AUTH_INVALID;
    }
    const struct auth_key *key = header_key(auth, header, (size_t)(first - header));
    if (key == NULL)
        return CXR_AUTH_INVALID;

    char token[TOKEN_MAX + 1];
    memcpy(token, header, length);
    token[length] = '\0';
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, key->key, (int)key->size) != 0 || jwt == NULL)
        return CXR_AUTH_INVALID;
    enum cxr_http_auth_outcome outcome = CXR_AUTH_OK;
    if (jwt_get_alg(jwt) != auth->algorithm)
        outcome = CXR_AUTH_INVALID;

    /* Claims are read from the verified payload with jansson so that their JSON types are
     * checked (libjwt's getters cannot tell a missing claim from 0). */
    char *claims_text = outcome == CXR_AUTH_OK ? jwt_get_grants_json(jwt, NULL) : NULL;
    json_t *claims = claims_text ? json_loads(claims_text, 0, NULL) : NULL;
    free(claims_text);
    if (outcome == CXR_AUTH_OK && claims == NULL)
        outcome = CXR_AUTH_INVALID;
    json_t *exp = json_object_get(claims, "exp");
    json_t *nbf = json_object_get(claims, "nbf");
    json_t *sub = json_object_get(claims, "sub");
    json_t *jti = json_object_get(claims, "jti");
    if (outcome == CXR_AUTH_OK && !json_is_number(exp))
        outcome = CXR_AUTH_INVALID;
    if (outcome == CXR_AUTH_OK && nbf && !json_is_number(nbf))
        outcome = CXR_AUTH_INVALID;
    if (outcome == CXR_AUTH_OK && sub && !json_is_string(sub))
        outcome = CXR_AUTH_INVALID;
    if (outcome == CXR_AUTH_OK && jti && !json_is_string(jti))
        outcome = CXR_AUTH_INVALID;
    if (outcome == CXR_AUTH_OK && jti && auth->revoked_count) {
        const char *wanted = json_string_value(jti);
        if (bsearch(&wanted, auth->revoked, auth->revoked_count, sizeof *auth->revoked,
                    compare_text))
            outcome = CXR_AUTH_INVALID; /* revoked: told apart from others in no way */
    }
    if (outcome == CXR_AUTH_OK && (double)now >= json_number_value(exp))
        outcome = CXR_AUTH_EXPIRED;
    if (outcome == CXR_AUTH_OK && nbf && (double)now < json_number_value(nbf))
        outcome = CXR_AUTH_INVALID;
    if (outcome == CXR_AUTH_OK && subject_size)
        copy_whole_characters(subject, subject_size, sub ? json_string_value(sub) : "");
    json_decref(claims);
    jwt_free(jwt);
    return outcome;
}

enum cxr_status cxr_http_auth_token_mint(const struct cxr_config *config, const char *subject,
                                         uint64_t ttl_s, time_t now, char **out,
                                         struct cxr_err *err)
{
    jwt_alg_t algorithm = algorithm_of(config->jwt_algorithm);
    unsigned char *key = NULL;
    size_t key_size = 0;
    enum cxr_status status = CXR_OK;
    if (algorithm == JWT_ALG_INVAL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "auth: unknown algorithm '%s'",
                           config->jwt_algorithm);
    if (algorithm == JWT_ALG_HS256) {
        if (config->jwt_secret == NULL || config->jwt_secret[0] == '\0')
            return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                               "auth: HS256 needs a secret ([auth] secret or CXRD_JWT_SECRET)");
        key_size = strlen(config->jwt_secret);
        status = secret_check(key_size, "[auth] secret or CXRD_JWT_SECRET", err);
        if (status != CXR_OK)
            return status;
        key = (unsigned char *)strdup(config->jwt_secret);
        if (key == NULL)
            return cxr_err_set(err, CXR_ERR_NOMEM, "auth: out of memory");
    } else {
        status = read_key(config->jwt_private_key, "private_key", &key, &key_size, err);
        if (status != CXR_OK)
            return status;
    }
    /* A random token ID, so that one token can be revoked without a new key. */
    unsigned char random[16];
    char jti[2 * sizeof random + 1];
    if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random) {
        memset(key, 0, key_size);
        free(key);
        return cxr_err_set(err, CXR_ERR_IO, "auth: no random bytes for the token ID");
    }
    for (size_t i = 0; i < sizeof random; i++)
        snprintf(jti + 2 * i, 3, "%02x", random[i]);
    const char *kid = config->jwt_key_id ? config->jwt_key_id : "";
    jwt_t *jwt = NULL;
    char *token = NULL;
    if (jwt_new(&jwt) != 0 || jwt_add_grant(jwt, "sub", subject) != 0 ||
        jwt_add_grant(jwt, "jti", jti) != 0 || (kid[0] && jwt_add_header(jwt, "kid", kid) != 0) ||
        jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "nbf", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)(now + (time_t)ttl_s)) != 0 ||
        jwt_set_alg(jwt, algorithm, key, (int)key_size) != 0 ||
        (token = jwt_encode_str(jwt)) == NULL)
        status = cxr_err_set(err, CXR_ERR_INTERNAL, "libjwt: cannot sign a %s token",
                             config->jwt_algorithm);
    jwt_free(jwt);
    memset(key, 0, key_size);
    free(key);
    if (status != CXR_OK)
        return status;
    *out = token; /* libjwt 1.10 allocates with malloc unless told otherwise */
    return CXR_OK;
}
