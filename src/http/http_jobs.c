/* The routes of bulk jobs and stored results, after authentication: GET /jobs, GET and DELETE
 * /jobs/{id}, GET /jobs/{id}/summary.csv, GET /results and GET /results/{id}/{file}. IDs are
 * checked here (a job ID is 32 hex digits, a result ID a number), so a URL never reaches a
 * query or the file system as a path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"

void cxr_http_answer_release(struct cxr_http_answer *answer)
{
    cxr_api_response_release(&answer->response);
    cxr_buf_release(&answer->bytes);
}

static void error(struct cxr_http_answer *answer, enum cxr_api_error code, const char *detail)
{
    if (cxr_api_response_error(code, detail, &answer->response) != CXR_OK) {
        answer->response.status = 500;
        answer->response.body = NULL;
    }
}

static bool job_id_valid(const char *id, size_t length)
{
    if (length != 32)
        return false;
    for (size_t i = 0; i < length; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    }
    return true;
}

static const char *argument(struct MHD_Connection *connection, const char *key)
{
    return MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, key);
}

static void jobs_answer(struct cxr_api_jobs *jobs, struct MHD_Connection *connection, bool get,
                        bool delete, const char *rest, struct cxr_http_answer *answer)
{
    if (rest[0] == '\0') { /* /jobs */
        if (!get)
            return error(answer, CXR_API_METHOD_NOT_ALLOWED, "use GET /jobs");
        const char *limit_text = argument(connection, "limit");
        char *end = NULL;
        long limit = limit_text ? strtol(limit_text, &end, 10) : 50;
        if (limit_text && (*end || limit < 1 || limit > 200))
            return error(answer, CXR_API_INVALID_QUERY, "limit: not a number from 1 to 200");
        if (jobs == NULL)
            return error(answer, CXR_API_JOBS_UNAVAILABLE, NULL);
        return cxr_api_jobs_list(jobs, (size_t)limit, &answer->response);
    }
    if (rest[0] != '/')
        return error(answer, CXR_API_NOT_FOUND, NULL);
    const char *id = rest + 1;
    const char *slash = strchr(id, '/');
    size_t length = slash ? (size_t)(slash - id) : strlen(id);
    if (!job_id_valid(id, length) || (slash && strcmp(slash, "/summary.csv") != 0))
        return error(answer, CXR_API_NOT_FOUND, NULL);
    char job_id[33];
    memcpy(job_id, id, 32);
    job_id[32] = '\0';
    if (slash) { /* /jobs/{id}/summary.csv */
        if (!get)
            return error(answer, CXR_API_METHOD_NOT_ALLOWED, "use GET");
        if (jobs == NULL)
            return error(answer, CXR_API_JOBS_UNAVAILABLE, NULL);
        if (cxr_api_jobs_summary(jobs, job_id, &answer->bytes, &answer->response)) {
            answer->content_type = "text/csv; charset=utf-8";
            snprintf(answer->disposition, sizeof answer->disposition,
                     "attachment; filename=\"cxrd_job_%s.csv\"", job_id);
        }
        return;
    }
    if (!get && !delete)
        return error(answer, CXR_API_METHOD_NOT_ALLOWED, "use GET or DELETE");
    if (jobs == NULL)
        return error(answer, CXR_API_JOBS_UNAVAILABLE, NULL);
    if (get)
        cxr_api_jobs_get(jobs, job_id, &answer->response);
    else
        cxr_api_jobs_cancel(jobs, job_id, &answer->response);
}

static void results_answer(struct cxr_api *api, struct MHD_Connection *connection, bool get,
                           const char *rest, struct cxr_http_answer *answer)
{
    if (!get)
        return error(answer, CXR_API_METHOD_NOT_ALLOWED, "use GET");
    if (rest[0] == '\0') { /* /results */
        struct cxr_api_results_query query = {
                .result = argument(connection, "result"),
                .date = argument(connection, "date"),
                .finding = argument(connection, "finding"),
                .job = argument(connection, "job"),
                .limit = argument(connection, "limit"),
                .offset = argument(connection, "offset"),
                .from = argument(connection, "from"),
                .to = argument(connection, "to"),
        };
        return cxr_api_results_list(api, &query, &answer->response);
    }
    /* /results/{id}/{file} */
    char id[24];
    const char *slash = rest[0] == '/' ? strchr(rest + 1, '/') : NULL;
    size_t length = slash ? (size_t)(slash - rest - 1) : 0;
    if (slash == NULL || length == 0 || length >= sizeof id)
        return error(answer, CXR_API_NOT_FOUND, NULL);
    memcpy(id, rest + 1, length);
    id[length] = '\0';
    if (cxr_api_results_file(api, id, slash + 1, &answer->bytes, &answer->content_type,
                             &answer->response)) {
        snprintf(answer->disposition, sizeof answer->disposition,
                 "inline; filename=\"cxrd_result_%s_%s\"", id, slash + 1);
    }
}

void cxr_http_jobs_answer(struct cxr_api *api, struct cxr_api_jobs *jobs,
                          struct MHD_Connection *connection, const char *method, const char *url,
                          struct cxr_http_answer *answer)
{
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    bool delete = strcmp(method, MHD_HTTP_METHOD_DELETE) == 0;
    if (strncmp(url, "/jobs", 5) == 0)
        jobs_answer(jobs, connection, get, delete, url + 5, answer);
    else
        results_answer(api, connection, get, url + 8, answer);
}
