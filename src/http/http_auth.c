/* JWT authentication with libjwt 1.10. libjwt verifies signatures; the checks it does not make
 * are made here: the header's alg must equal the configured algorithm before any key is used
 * (refusing "none", unsigned tokens and HS256-with-a-public-key confusion), exp is required
 * and nbf enforced. */
#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"

struct cxr_auth {
    jwt_alg_t algorithm;
    char algorithm_name[8];
    unsigned char *key;
    size_t key_size;
};

/* Longest token accepted; real ones are a few hundred bytes. */
#define TOKEN_MAX 8192

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

enum cxr_status cxr_http_auth_create(const struct cxr_config *config, struct cxr_auth **out,
                                     struct cxr_err *err)
{
    struct cxr_auth *auth = calloc(1, sizeof *auth);
    if (auth == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "auth: out of memory");
    auth->algorithm = algorithm_of(config->jwt_algorithm);
    snprintf(auth->algorithm_name, sizeof auth->algorithm_name, "%s", config->jwt_algorithm);
    enum cxr_status status = CXR_OK;
    if (auth->algorithm == JWT_ALG_INVAL) {
        status = cxr_err_set(err, CXR_ERR_INVALID_ARG, "auth: unknown algorithm '%s'",
                             config->jwt_algorithm);
    } else if (auth->algorithm == JWT_ALG_HS256) {
        size_t size = config->jwt_secret ? strlen(config->jwt_secret) : 0;
        if (size == 0)
            status = cxr_err_set(err, CXR_ERR_INVALID_ARG,
                                 "auth: HS256 needs a secret ([auth] secret or CXRD_JWT_SECRET)");
        else if ((auth->key = (unsigned char *)strdup(config->jwt_secret)) == NULL)
            status = cxr_err_set(err, CXR_ERR_NOMEM, "auth: out of memory");
        auth->key_size = size;
        if (status == CXR_OK && size < 32)
            cxr_log(CXR_LOG_WARN, "auth: the HS256 secret has %zu bytes; use at least 32", size);
    } else {
        status = read_key(config->jwt_public_key, "public_key", &auth->key, &auth->key_size, err);
    }
    if (status != CXR_OK) {
        cxr_http_auth_destroy(auth);
        return status;
    }
    *out = auth;
    return CXR_OK;
}

void cxr_http_auth_destroy(struct cxr_auth *auth)
{
    if (auth == NULL)
        return;
    if (auth->key)
        memset(auth->key, 0, auth->key_size);
    free(auth->key);
    free(auth);
}

/* The alg of the JOSE header, checked before libjwt sees the token. */
static bool header_algorithm_matches(const char *token, size_t header_length, const char *wanted)
{
    struct cxr_buf decoded = CXR_BUF_INIT(4096);
    if (cxr_base64url_decode(token, header_length, &decoded) != CXR_OK) {
        cxr_buf_release(&decoded);
        return false;
    }
    json_t *header = json_loadb((const char *)decoded.data, decoded.len, 0, NULL);
    cxr_buf_release(&decoded);
    json_t *alg = json_object_get(header, "alg");
    bool matches = json_is_string(alg) && strcmp(json_string_value(alg), wanted) == 0;
    json_decref(header);
    return matches;
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
    if (!header_algorithm_matches(header, (size_t)(first - header), auth->algorithm_name))
        return CXR_AUTH_INVALID;

    char token[TOKEN_MAX + 1];
    memcpy(token, header, length);
    token[length] = '\0';
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, auth->key, (int)auth->key_size) != 0 || jwt == NULL)
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
    if (outcome == CXR_AUTH_OK && !json_is_number(exp))
        outcome = CXR_AUTH_INVALID;
    if (outcome == CXR_AUTH_OK && nbf && !json_is_number(nbf))
        outcome = CXR_AUTH_INVALID;
    if (outcome == CXR_AUTH_OK && sub && !json_is_string(sub))
        outcome = CXR_AUTH_INVALID;
    if (outcome == CXR_AUTH_OK && (double)now >= json_number_value(exp))
        outcome = CXR_AUTH_EXPIRED;
    if (outcome == CXR_AUTH_OK && nbf && (double)now < json_number_value(nbf))
        outcome = CXR_AUTH_INVALID;
    if (outcome == CXR_AUTH_OK && subject_size)
        snprintf(subject, subject_size, "%s", sub ? json_string_value(sub) : "");
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
        key = (unsigned char *)strdup(config->jwt_secret);
        key_size = strlen(config->jwt_secret);
        if (key == NULL)
            return cxr_err_set(err, CXR_ERR_NOMEM, "auth: out of memory");
    } else {
        status = read_key(config->jwt_private_key, "private_key", &key, &key_size, err);
        if (status != CXR_OK)
            return status;
    }
    jwt_t *jwt = NULL;
    char *token = NULL;
    if (jwt_new(&jwt) != 0 || jwt_add_grant(jwt, "sub", subject) != 0 ||
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
