/* The response envelope, results and messages, stage names, timing, the patient ID rule and
 * request field checks: the parts of api/ that need neither a model nor a request. */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_internal.h"

const char *const cxr_api_stage_names[CXR_STAGE_COUNT] = {
        "validate", "read", "render", "infer", "heatmap", "png", "pdf", "write",
};

void cxr_api_format(char *out, size_t size, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(out, size, fmt, args);
    va_end(args);
}

double cxr_api_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

void cxr_api_response_release(struct cxr_api_response *response)
{
    if (response == NULL)
        return;
    free(response->body);
    response->body = NULL;
}

/* Replaces "<key>":"<placeholder>" in body with the key and the base64 of png. Keys cannot
 * occur elsewhere in this form: a quote inside any value is escaped. */
static enum cxr_status splice_image(char **body, const char *key, const char *placeholder,
                                    const struct cxr_buf *png)
{
    char pattern[96];
    snprintf(pattern, sizeof pattern, "\"%s\":\"%s\"", key, placeholder);
    char *found = strstr(*body, pattern);
    if (found == NULL)
        return CXR_OK; /* this image is not inline */
    size_t body_length = strlen(*body);
    size_t value_at = (size_t)(found - *body) + strlen(key) + 4; /* after "key":" */
    size_t value_end = value_at + strlen(placeholder);
    size_t encoded = cxr_base64_encoded_length(png->len);
    char *spliced = malloc(body_length - (value_end - value_at) + encoded + 1);
    if (spliced == NULL)
        return CXR_ERR_NOMEM;
    memcpy(spliced, *body, value_at);
    cxr_base64_encode(png->data, png->len, spliced + value_at);
    memcpy(spliced + value_at + encoded, *body + value_end, body_length - value_end + 1);
    free(*body);
    *body = spliced;
    return CXR_OK;
}

json_t *cxr_api_json_string(const char *text)
{
    if (text == NULL)
        text = "";
    json_t *string = json_string(text);
    if (string != NULL)
        return string;
    size_t length = strlen(text);
    char *clean = malloc(length + 1);
    if (clean == NULL)
        return NULL;
    size_t used = 0;
    for (size_t at = 0; at < length;) {
        size_t n = cxr_utf8_sequence((const unsigned char *)text + at, length - at);
        if (n == 0) {
            clean[used++] = '?';
            at++;
        } else {
            memcpy(clean + used, text + at, n);
            used += n;
            at += n;
        }
    }
    clean[used] = '\0';
    string = json_string(clean);
    free(clean);
    return string;
}

/* The Message as a JSON string. A message can hold bytes that are not UTF-8 (a client's bytes
 * quoted by the JSON parser's error, a message cut inside a character); jansson refuses those,
 * and the envelope would lose its Message, so each such byte becomes '?'. */
static json_t *message_string(const char *message)
{
    return message ? cxr_api_json_string(message) : NULL;
}

enum cxr_status cxr_api_envelope_inline(int status, const char *result, json_t *data,
                                        const char *message,
                                        const struct cxr_api_inline_images *images,
                                        struct cxr_api_response *response)
{
    json_t *envelope = json_object();
    if (envelope == NULL) {
        json_decref(data);
        return CXR_ERR_NOMEM;
    }
    json_object_set_new(envelope, "Result", json_string(result));
    json_object_set_new(envelope, "Data", data ? data : json_null());
    json_object_set_new(envelope, "Message", message_string(message));
    char *body = json_dumps(envelope, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(envelope);
    if (body == NULL)
        return CXR_ERR_NOMEM;
    if (images &&
        (splice_image(&body, "source_image", CXR_API_INLINE_SOURCE, &images->source_png) !=
                 CXR_OK ||
         splice_image(&body, "heatmap", CXR_API_INLINE_HEATMAP, &images->heatmap_png) != CXR_OK)) {
        free(body);
        return CXR_ERR_NOMEM;
    }
    /* Like any text response, the body ends with a newline (terminals and scripts expect it). */
    size_t length = strlen(body);
    char *ended = realloc(body, length + 2);
    if (ended == NULL) {
        free(body);
        return CXR_ERR_NOMEM;
    }
    memcpy(ended + length, "\n", 2);
    body = ended;
    free(response->body);
    response->body = body;
    response->status = status;
    return CXR_OK;
}

enum cxr_status cxr_api_envelope(int status, const char *result, json_t *data, const char *message,
                                 struct cxr_api_response *response)
{
    return cxr_api_envelope_inline(status, result, data, message, NULL, response);
}

void cxr_api_result_fail(struct cxr_api_result *result, int status, const char *message,
                         const char *cause)
{
    result->status = status;
    snprintf(result->message, sizeof result->message, "%s", message);
    snprintf(result->cause, sizeof result->cause, "%s", cause ? cause : "");
    json_decref(result->data);
    result->data = NULL;
}

void cxr_api_result_release(struct cxr_api_result *result)
{
    if (result == NULL)
        return;
    json_decref(result->data);
    result->data = NULL;
    free(result->sop_instance_uid);
    result->sop_instance_uid = NULL;
    cxr_buf_release(&result->images.source_png);
    cxr_buf_release(&result->images.heatmap_png);
}

void cxr_api_value_text(const json_t *value, char *out, size_t size)
{
    if (json_is_string(value)) {
        snprintf(out, size, "%s", json_string_value(value));
        return;
    }
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(out, size, "%s", text ? text : "?");
    free(text);
}

bool cxr_api_patient_id_valid(const char *id, size_t length)
{
    if (length == 0 || length > 64 || id[0] == '.')
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = id[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool cxr_api_field_missing(const json_t *value)
{
    return value == NULL || json_is_null(value) ||
           (json_is_string(value) && json_string_length(value) == 0);
}

bool cxr_api_has_dcm_extension(const char *name)
{
    size_t length = strlen(name);
    return length > 4 && name[length - 4] == '.' &&
           tolower((unsigned char)name[length - 3]) == 'd' &&
           tolower((unsigned char)name[length - 2]) == 'c' &&
           tolower((unsigned char)name[length - 1]) == 'm';
}

json_t *cxr_api_request_parse(const char *data, size_t size, char *why, size_t why_size)
{
    json_error_t error;
    /* Duplicate keys are refused (which one counts would be a guess); NUL inside strings is
     * kept so the path checks can refuse it instead of seeing a shorter path. */
    json_t *body =
            json_loadb(data ? data : "", size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &error);
    if (json_is_object(body))
        return body;
    snprintf(why, why_size, "%s", body ? "valid JSON, but not an object" : error.text);
    json_decref(body);
    return NULL;
}
