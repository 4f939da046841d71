/* Fuzz target: the JSON request path of POST /single_inference and POST /bulk_inference, from
 * the raw body to the v1 validation answer (cxr_api_request_parse, then the api entry points the
 * HTTP layer calls). The roots are empty folders, so no request can pass validation and no file
 * is ever read: any input must give a documented 4xx envelope, never a crash, a 200 or a 500. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <jansson.h>

#include "api/api.h"
#include "fuzz_api_setup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fixed, not mkdtemp: the seeds name these paths, and the path check is lexical first. Both
 * stay empty (nothing here writes), so parallel runs can share them. */
#define FUZZ_ROOT   "/tmp/cxrd-fuzz-api-request"
#define FUZZ_INPUT  FUZZ_ROOT "/in"
#define FUZZ_OUTPUT FUZZ_ROOT "/out"

static struct cxr_config config;
static struct cxr_api *api;
static struct cxr_api_pool *pool;

static void require_empty_folder(const char *path)
{
    if (mkdir(path, 0700) != 0 && access(path, F_OK) != 0) {
        perror(path);
        abort();
    }
    DIR *dir = opendir(path);
    if (dir == NULL) {
        perror(path);
        abort();
    }
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
            fprintf(stderr, "%s must be empty (found %s)\n", path, entry->d_name);
            abort();
        }
    }
    closedir(dir);
}

static void setup(void)
{
    if (mkdir(FUZZ_ROOT, 0700) != 0 && access(FUZZ_ROOT, F_OK) != 0) {
        perror(FUZZ_ROOT);
        abort();
    }
    require_empty_folder(FUZZ_INPUT);
    require_empty_folder(FUZZ_OUTPUT);
    api = fuzz_api_create(FUZZ_INPUT, FUZZ_OUTPUT, "", &config);
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_api_pool_create(1, 4, &pool, &err) != CXR_OK) {
        fprintf(stderr, "fuzz_api_request: %s\n", err.message);
        abort();
    }
}

/* A refusal must be a Failure envelope with a client error status. */
static void check_refusal(const struct cxr_api_response *response)
{
    if (getenv("CXR_FUZZ_VERBOSE")) /* to review what each seed reaches */
        fprintf(stderr, "%d %s", response->status, response->body ? response->body : "\n");
    if (response->body == NULL || (response->status != 400 && response->status != 415)) {
        fprintf(stderr, "unexpected answer %d: %s\n", response->status,
                response->body ? response->body : "(no body)");
        abort();
    }
    json_t *envelope = json_loads(response->body, 0, NULL);
    const char *result = json_string_value(json_object_get(envelope, "Result"));
    const char *message = json_string_value(json_object_get(envelope, "Message"));
    if (result == NULL || strcmp(result, "Failure") != 0 || message == NULL || message[0] == '\0')
        abort();
    json_decref(envelope);
}

static void bulk_done(struct cxr_api_response *response, void *context)
{
    (void)context;
    /* Accepted means a folder with DICOM files was found under an empty root. */
    fprintf(stderr, "bulk request accepted: %s\n", response->body ? response->body : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (api == NULL)
        setup();
    char why[200];
    json_t *body = cxr_api_request_parse((const char *)data, size, why, sizeof why);
    struct cxr_api_response response = {0};
    if (body == NULL) {
        if (cxr_api_response_error(CXR_API_NOT_JSON_OBJECT, why, &response) != CXR_OK)
            return 0;
        check_refusal(&response);
        cxr_api_response_release(&response);
        return 0;
    }
    cxr_api_single_inference(api, body, "fuzz", "fuzz-request", &response);
    check_refusal(&response);
    cxr_api_response_release(&response);

    struct cxr_api_response bulk = {0};
    if (cxr_api_bulk_inference(api, pool, body, "fuzz", "fuzz-request", bulk_done, NULL, &bulk))
        abort(); /* accepted: see bulk_done */
    check_refusal(&bulk);
    cxr_api_response_release(&bulk);
    json_decref(body);
    return 0;
}
