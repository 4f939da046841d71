/* Fuzz target: the worklist's routes after authentication, GET /results with its query
 * parameters and GET /results/{id}/{file} (api_results.c), against an audit database of a few
 * stored results whose files lie under the output root. The input is the parameters, one per
 * line: result, date, from, to, finding, job, limit, offset, then the file route's ID and name.
 * Every answer must be a documented envelope (200, 400, 404 or 410); a list must hold only rows
 * that match its filters, in the worklist's order, no more than its limit; a file must be the
 * bytes stored for that result. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "api/api.h"
#include "api/api_audit.h"
#include "api/api_internal.h"
#include "api/api_results.h"
#include "fuzz_api_setup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fresh folder per process (the release and sanitizer builds replay at the same time), so
 * the database always numbers the stored results 1..5, as the seeds name them. */
static char root[64], input_root[80], output_root[80], audit_path[80];

enum { FIELD_COUNT = 10, MAX_FIELD = 256 };

static struct cxr_config config;
static struct cxr_api *api;

/* The stored results: patient, result, whether its files are on disk, one present finding. */
static const struct stored {
    const char *patient_id, *result, *finding;
    bool saved;
} stored[] = {
        {"P1", "TB Presumptive", "Tuberculosis", true},
        {"P2", "Abnormal", "Cardiomegaly", true},
        {"P3", "Normal", NULL, true},
        {"P4", "Abnormal", "Pleural Effusion", false},
        {"P5", "TB Presumptive", "Tuberculosis", false},
};
static const char *const file_names[] = {"source_image.png", "heatmap.png", "report.pdf"};

static void write_text(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    if (file == NULL || fputs(text, file) < 0 || fclose(file) != 0) {
        perror(path);
        abort();
    }
}

/* The bytes stored as a result's file: its patient and file name, so that a file served for the
 * wrong result or the wrong name is seen. */
static void file_content(const char *patient_id, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s %s\n", patient_id, name);
}

static void store_result(size_t index)
{
    const struct stored *s = &stored[index];
    char sop[64], predictions[512], folder[256], path[512], content[128];
    snprintf(sop, sizeof sop, "1.2.3.%zu", index + 1);
    snprintf(predictions, sizeof predictions,
             "{\"heatmap\":\"%s\",\"findings\":[{\"name\":\"%s\",\"confidence\":0.9,"
             "\"presence\":%s},{\"name\":\"Nodule Mass\",\"confidence\":0.2,\"presence\":false}],"
             "\"metadata\":{\"sop_instance_uid\":\"%s\",\"patient_name\":\"Doe^%zu\","
             "\"model_version\":\"fuzz\"}}",
             s->finding ? "heatmap.png" : "", s->finding ? s->finding : "Tuberculosis",
             s->finding ? "true" : "false", sop, index);
    if (s->saved) {
        snprintf(folder, sizeof folder, "%s/%s", output_root, s->patient_id);
        if (mkdir(folder, 0700) != 0) {
            perror(folder);
            abort();
        }
        snprintf(path, sizeof path, "%s/%s_predictions.json", folder, s->patient_id);
        write_text(path, predictions);
        for (size_t n = 0; n < 3; n++) {
            snprintf(path, sizeof path, "%s/%s_%s", folder, s->patient_id, file_names[n]);
            file_content(s->patient_id, file_names[n], content, sizeof content);
            write_text(path, content);
        }
    }
    struct cxr_audit_record record = {
            .route = "single_inference",
            .sop_instance_uid = sop,
            .patient_id = s->patient_id,
            .result = s->result,
            .status = 200,
            .predictions = predictions,
            .output_folder = s->saved ? api->output_root.real : "",
            .job_id = index % 2 ? "0123456789abcdef0123456789abcdef" : "",
    };
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_audit_write(api->audit, &record, &err) != CXR_OK) {
        fprintf(stderr, "fuzz_results_query: %s\n", err.message);
        abort();
    }
}

static void remove_root(void)
{
    char command[96];
    snprintf(command, sizeof command, "rm -rf %s", root);
    if (system(command) != 0)
        fprintf(stderr, "fuzz_results_query: could not remove %s\n", root);
}

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/cxrd-fuzz-results-%ld", (long)getpid());
    snprintf(input_root, sizeof input_root, "%s/in", root);
    snprintf(output_root, sizeof output_root, "%s/out", root);
    snprintf(audit_path, sizeof audit_path, "%s/audit.sqlite", root);
    if (mkdir(root, 0700) != 0 || mkdir(input_root, 0700) != 0 || mkdir(output_root, 0700) != 0) {
        perror(root);
        abort();
    }
    atexit(remove_root);
    api = fuzz_api_create(input_root, output_root, audit_path, &config);
    for (size_t i = 0; i < sizeof stored / sizeof stored[0]; i++)
        store_result(i);
}

static void fail_with(const char *what, const struct cxr_api_response *response)
{
    fprintf(stderr, "fuzz_results_query: %s: %d %s\n", what, response->status,
            response->body ? response->body : "(no body)");
    abort();
}

/* The envelope of an answer: Result and a non-empty Message; returns the parsed body. */
static json_t *envelope(const struct cxr_api_response *response, const char *expected_result)
{
    json_t *body = response->body ? json_loads(response->body, 0, NULL) : NULL;
    const char *result = json_string_value(json_object_get(body, "Result"));
    const char *message = json_string_value(json_object_get(body, "Message"));
    if (result == NULL || strcmp(result, expected_result) != 0 || message == NULL ||
        message[0] == '\0')
        fail_with("not an envelope", response);
    return body;
}

static int result_rank(const char *result)
{
    return strcmp(result, "TB Presumptive") == 0 ? 0 : strcmp(result, "Abnormal") == 0 ? 1 : 2;
}

static bool finding_present(const json_t *row, const char *name)
{
    const json_t *findings = json_object_get(row, "findings");
    for (size_t i = 0; i < json_array_size(findings); i++) {
        const json_t *finding = json_array_get(findings, i);
        const char *text = json_string_value(json_object_get(finding, "name"));
        if (text && strcmp(text, name) == 0 && json_is_true(json_object_get(finding, "presence")))
            return true;
    }
    return false;
}

static void check_list(const struct cxr_api_results_query *query,
                       const struct cxr_api_response *response)
{
    if (response->status == 400) {
        json_decref(envelope(response, "Failure"));
        return;
    }
    if (response->status != 200)
        fail_with("list", response);
    json_t *body = envelope(response, "Success");
    json_t *rows = json_object_get(body, "Data");
    long long limit = query->limit && query->limit[0] ? strtoll(query->limit, NULL, 10) : 200;
    if (!json_is_array(rows) || (long long)json_array_size(rows) > limit)
        fail_with("list size", response);
    int last_rank = -1;
    long long last_id = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const json_t *row = json_array_get(rows, i);
        const char *result = json_string_value(json_object_get(row, "result"));
        const char *job = json_string_value(json_object_get(row, "job_id"));
        long long id = json_integer_value(json_object_get(row, "id"));
        if (result == NULL || job == NULL || id <= 0)
            fail_with("row fields", response);
        if ((query->result && query->result[0] && strcmp(result, query->result) != 0) ||
            (query->job && query->job[0] && strcmp(job, query->job) != 0) ||
            (query->finding && query->finding[0] && !finding_present(row, query->finding)))
            fail_with("row outside the filters", response);
        int rank = result_rank(result);
        if (rank < last_rank || (rank == last_rank && id >= last_id))
            fail_with("order", response);
        last_rank = rank;
        last_id = id;
    }
    json_decref(body);
}

static void check_file(const char *id, const char *name, const struct cxr_buf *bytes, bool served,
                       const struct cxr_api_response *response)
{
    if (!served) {
        if (response->status != 404 && response->status != 410)
            fail_with("file", response);
        json_decref(envelope(response, "Failure"));
        return;
    }
    /* Served: a stored, saved result's file, byte for byte. */
    char *end = NULL;
    long long row = strtoll(id, &end, 10);
    if (row < 1 || row > (long long)(sizeof stored / sizeof stored[0]) || !stored[row - 1].saved)
        abort();
    char content[128];
    file_content(stored[row - 1].patient_id, name, content, sizeof content);
    if (bytes->len != strlen(content) || memcmp(bytes->data, content, bytes->len) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (api == NULL)
        setup();
    /* Fields, one per line; a missing line is a parameter not given. */
    char fields[FIELD_COUNT][MAX_FIELD];
    bool present[FIELD_COUNT] = {0};
    size_t start = 0;
    for (int f = 0; f < FIELD_COUNT && start <= size; f++) {
        const uint8_t *newline = memchr(data + start, '\n', size - start);
        size_t length = newline ? (size_t)(newline - data) - start : size - start;
        if (length >= MAX_FIELD || memchr(data + start, '\0', length) != NULL)
            return 0; /* a URL's parameter never holds a NUL: libmicrohttpd ends it there */
        memcpy(fields[f], data + start, length);
        fields[f][length] = '\0';
        present[f] = true;
        start += length + 1;
    }
    const char *value[FIELD_COUNT];
    for (int f = 0; f < FIELD_COUNT; f++)
        value[f] = present[f] ? fields[f] : NULL;

    struct cxr_api_results_query query = {
            .result = value[0],
            .date = value[1],
            .from = value[2],
            .to = value[3],
            .finding = value[4],
            .job = value[5],
            .limit = value[6],
            .offset = value[7],
    };
    struct cxr_api_response response = {0};
    cxr_api_results_list(api, &query, &response);
    check_list(&query, &response);
    cxr_api_response_release(&response);

    if (value[8] && value[9]) {
        struct cxr_api_response file_response = {0};
        struct cxr_buf bytes = {0};
        const char *content_type = NULL;
        bool served = cxr_api_results_file(api, value[8], value[9], &bytes, &content_type,
                                           &file_response);
        check_file(value[8], value[9], &bytes, served, &file_response);
        cxr_api_response_release(&file_response);
        cxr_buf_release(&bytes);
    }
    return 0;
}
