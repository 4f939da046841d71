/* The worklist's data: results stored in the audit database (the predictions JSON of every
 * analysed file), filtered and ordered for a reader, and the files of one result read back from
 * the output root. A result is named by its audit row ID: no client path is ever opened. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api_internal.h"

#define DEFAULT_LIMIT 200
#define MAX_LIMIT     1000
#define MAX_OFFSET    1000000000LL
#define UTC_TEXT_SIZE 96 /* "2026-12-05T18:30:00.000Z", with room for any int the compiler sees */

static bool fail(struct cxr_api_response *response, enum cxr_api_error error, const char *detail)
{
    if (cxr_api_response_error(error, detail, response) != CXR_OK) {
        response->status = 500;
        response->body = NULL;
    }
    return false;
}

static bool given(const char *text)
{
    return text && text[0];
}

/* A real calendar day as YYYY-MM-DD: "2026-13-45" would match nothing and answer an empty list,
 * which a reader takes for a day without results. */
static bool date_valid(const char *text)
{
    static const char pattern[] = "dddd-dd-dd";
    if (strlen(text) != sizeof pattern - 1)
        return false;
    for (size_t i = 0; pattern[i]; i++) {
        bool digit = text[i] >= '0' && text[i] <= '9';
        if (pattern[i] == 'd' ? !digit : text[i] != '-')
            return false;
    }
    int year = atoi(text), month = atoi(text + 5), day = atoi(text + 8);
    static const int days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month < 1 || month > 12 || day < 1 || day > days[month - 1])
        return false;
    return month != 2 || day < 29 || leap;
}

/* Two digits at text from 0 to max. */
static bool two_digits(const char *text, int max, int *value)
{
    if (text[0] < '0' || text[0] > '9' || text[1] < '0' || text[1] > '9')
        return false;
    *value = (text[0] - '0') * 10 + text[1] - '0';
    return *value <= max;
}

/* seconds since the epoch and milliseconds as the audit log writes a time (UTC, to the
 * millisecond: "2026-12-05T18:30:00.000Z", so that text order is time order); false outside
 * years 0-9999. */
static bool utc_text(time_t seconds, int millisecond, char out[UTC_TEXT_SIZE])
{
    struct tm utc;
    if (gmtime_r(&seconds, &utc) == NULL || utc.tm_year + 1900 < 0 || utc.tm_year + 1900 > 9999)
        return false;
    snprintf(out, UTC_TEXT_SIZE, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
             utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millisecond);
    return true;
}

/* An RFC 3339 instant (YYYY-MM-DDThh:mm:ss[.fraction] and Z or an offset +hh:mm/-hh:mm) as the
 * audit log writes times: UTC to the millisecond, "2026-12-05T18:30:00.000Z", so that text
 * order is time order. The page sends the bounds of the reader's local day this way: a clinic
 * at UTC+05:30 must not find its morning's images under yesterday's date. */
static bool instant_to_utc(const char *text, char out[UTC_TEXT_SIZE])
{
    char day[11];
    int hour, minute, second, offset_hour = 0, offset_minute = 0;
    if (strlen(text) < 20 || (text[10] != 'T' && text[10] != 't'))
        return false;
    memcpy(day, text, 10);
    day[10] = '\0';
    if (!date_valid(day) || !two_digits(text + 11, 23, &hour) || text[13] != ':' ||
        !two_digits(text + 14, 59, &minute) || text[16] != ':' ||
        !two_digits(text + 17, 59, &second))
        return false;
    const char *rest = text + 19;
    int millisecond = 0, digits = 0;
    if (*rest == '.') {
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++) {
            if (digits < 3)
                millisecond = millisecond * 10 + *rest - '0';
        }
        if (digits == 0)
            return false;
        for (int d = digits; d < 3; d++)
            millisecond *= 10;
    }
    bool zulu = (rest[0] == 'Z' || rest[0] == 'z') && rest[1] == '\0';
    bool offset = (rest[0] == '+' || rest[0] == '-') && strlen(rest) == 6 &&
                  two_digits(rest + 1, 23, &offset_hour) && rest[3] == ':' &&
                  two_digits(rest + 4, 59, &offset_minute);
    if (!zulu && !offset)
        return false;
    int sign = rest[0] == '-' ? -1 : 1; /* local time = UTC + offset */
    struct tm fields = {.tm_year = atoi(day) - 1900,
                        .tm_mon = atoi(day + 5) - 1,
                        .tm_mday = atoi(day + 8),
                        .tm_hour = hour,
                        .tm_min = minute,
                        .tm_sec = second};
    time_t utc_seconds = timegm(&fields) - sign * (offset_hour * 3600 + offset_minute * 60);
    return utc_text(utc_seconds, millisecond, out);
}

/* The UTC day's bounds as stored times: [start, end). The day is valid (date_valid). */
static void day_bounds(const char *day, char start[UTC_TEXT_SIZE], char end[UTC_TEXT_SIZE])
{
    struct tm fields = {
            .tm_year = atoi(day) - 1900, .tm_mon = atoi(day + 5) - 1, .tm_mday = atoi(day + 8)};
    time_t midnight = timegm(&fields);
    utc_text(midnight, 0, start);
    if (!utc_text(midnight + 86400, 0, end)) /* 9999-12-31: no year 10000 to end at */
        snprintf(end, UTC_TEXT_SIZE, "9999-12-31T24");
}

/* The checked filters: NULL (or "" for the times) where a filter is off. */
struct list_filters {
    const char *result, *job, *finding;
    char from[UTC_TEXT_SIZE], to[UTC_TEXT_SIZE]; /* a date narrows both to its day */
    long long limit, offset;
};

/* Narrows [from, to) to [start, end): stored times compare as text. */
static void narrow(struct list_filters *filters, const char *start, const char *end)
{
    if (filters->from[0] == '\0' || strcmp(start, filters->from) > 0)
        snprintf(filters->from, sizeof filters->from, "%s", start);
    if (filters->to[0] == '\0' || strcmp(end, filters->to) < 0)
        snprintf(filters->to, sizeof filters->to, "%s", end);
}

/* Checks the filters; on failure response holds the 400. */
static bool query_valid(const struct cxr_api_results_query *query, struct list_filters *filters,
                        struct cxr_api_response *response)
{
    if (given(query->result)) {
        bool known = false;
        for (int r = 0; r < 3; r++)
            known |= strcmp(query->result, cxr_model_result_name((enum cxr_result)r)) == 0;
        if (!known)
            return fail(response, CXR_API_INVALID_QUERY,
                        "result: not TB Presumptive, Abnormal or Normal");
    }
    if (given(query->date) && !date_valid(query->date))
        return fail(response, CXR_API_INVALID_QUERY, "date: not a day as YYYY-MM-DD");
    if (given(query->from) && !instant_to_utc(query->from, filters->from))
        return fail(response, CXR_API_INVALID_QUERY,
                    "from: not a time as YYYY-MM-DDThh:mm:ss with Z or an offset such as +05:30");
    if (given(query->to) && !instant_to_utc(query->to, filters->to))
        return fail(response, CXR_API_INVALID_QUERY,
                    "to: not a time as YYYY-MM-DDThh:mm:ss with Z or an offset such as +05:30");
    if (given(query->finding)) {
        bool known = false;
        for (int f = 0; f < CXR_FINDING_COUNT; f++)
            known |= strcmp(query->finding, cxr_model_finding_names[f]) == 0;
        if (!known)
            return fail(response, CXR_API_INVALID_QUERY, "finding: not one of the 11 findings");
    }
    if (given(query->job) && strspn(query->job, "0123456789abcdef") != strlen(query->job))
        return fail(response, CXR_API_INVALID_QUERY, "job: not a job ID");
    filters->limit = DEFAULT_LIMIT;
    if (given(query->limit)) {
        char *end = NULL;
        errno = 0;
        filters->limit = strtoll(query->limit, &end, 10);
        if (errno || *end || filters->limit < 1 || filters->limit > MAX_LIMIT)
            return fail(response, CXR_API_INVALID_QUERY, "limit: not a number from 1 to 1000");
    }
    /* Paging: a day of a screening programme is more than one page, and a reader must be able
     * to reach every result, not only the first limit of them. */
    filters->offset = 0;
    if (given(query->offset)) {
        char *end = NULL;
        errno = 0;
        filters->offset = strtoll(query->offset, &end, 10);
        if (errno || *end || filters->offset < 0 || filters->offset > MAX_OFFSET)
            return fail(response, CXR_API_INVALID_QUERY,
                        "offset: not a number from 0 to 1000000000");
    }
    if (given(query->date)) {
        char start[UTC_TEXT_SIZE], end[UTC_TEXT_SIZE];
        day_bounds(query->date, start, end);
        narrow(filters, start, end);
    }
    filters->result = given(query->result) ? query->result : NULL;
    filters->job = given(query->job) ? query->job : NULL;
    filters->finding = given(query->finding) ? query->finding : NULL;
    return true;
}

#define LIST_ORDER                                                                                 \
    " ORDER BY CASE result WHEN 'TB Presumptive' THEN 0 WHEN 'Abnormal' THEN 1 ELSE 2 END,"        \
    " id DESC"

/* The result groups in LIST_ORDER's order (a stored result is always one of the three, the v1
 * API's values); with the result filter, only its group. */
static int list_groups(const struct list_filters *filters, const char *groups[3])
{
    static const enum cxr_result order[3] = {CXR_RESULT_TB_PRESUMPTIVE, CXR_RESULT_ABNORMAL,
                                             CXR_RESULT_NORMAL};
    int count = 0;
    for (int r = 0; r < 3; r++) {
        const char *name = cxr_model_result_name(order[r]);
        if (filters->result == NULL || strcmp(filters->result, name) == 0)
            groups[count++] = name;
    }
    return count;
}

/* The worklist as it opens and refreshes (no filter but the result): each group's newest IDs
 * are read backwards from the index of stored results by result and ID (audit_listed,
 * api_audit.c), and left as soon as the page is full. Sorting the groups together read the
 * whole index under the lock that running requests' audit writes wait for. With a job, a time
 * range or a finding, the rows that match are found by their own index (audit_job, audit_time,
 * the audit_findings table) and sorted: read backwards by ID, a group whose newest rows do not
 * match would be read to its end, once for each group. */
static bool list_by_group(const struct list_filters *filters)
{
    return filters->job == NULL && filters->finding == NULL && filters->from[0] == '\0' &&
           filters->to[0] == '\0';
}

/* The list's statement for the filters given, from fixed pieces (every value is bound, by
 * bind_filters, in the same order). The page's IDs are chosen first, and only those rows are
 * read whole. */
static void list_sql(const struct list_filters *filters, char *sql, size_t size)
{
    static const char columns[] = "SELECT time, patient_id, result, sop_instance_uid,"
                                  " predictions, job_id, output_folder, id FROM audit";
    if (!list_by_group(filters)) {
        /* A finding alone: its rows come from audit_findings. With a job or a time range, whose
         * rows are fewer (a day, a run), each of those is looked up there instead: driven by the
         * finding, a day with Tuberculosis read every TB result of the year (0.46 s a page). */
        bool narrower = filters->job || filters->from[0] || filters->to[0];
        const char *finding =
                filters->finding == NULL ? ""
                : narrower ? " AND EXISTS (SELECT 1 FROM audit_findings WHERE finding = ?"
                             " AND audit_findings.id = audit.id)"
                           : " AND id IN (SELECT id FROM audit_findings WHERE finding = ?)";
        snprintf(sql, size,
                 "%s WHERE id IN (SELECT id FROM audit WHERE predictions != '' AND status = 200"
                 "%s%s%s%s%s" LIST_ORDER " LIMIT ? OFFSET ?)" LIST_ORDER,
                 columns, filters->result ? " AND result = ?" : "",
                 filters->job ? " AND job_id = ?" : "", filters->from[0] ? " AND time >= ?" : "",
                 filters->to[0] ? " AND time < ?" : "", finding);
        return;
    }
    const char *groups[3];
    int count = list_groups(filters, groups);
    size_t used = (size_t)snprintf(sql, size, "%s WHERE id IN (SELECT id FROM (", columns);
    for (int g = 0; g < count && used < size; g++)
        used += (size_t)snprintf(sql + used, size - used,
                                 "%sSELECT %d AS rank, id FROM (SELECT id FROM audit WHERE"
                                 " result = ? AND predictions != '' AND status = 200"
                                 " ORDER BY id DESC LIMIT ?)",
                                 g ? " UNION ALL " : "", g);
    if (used < size)
        snprintf(sql + used, size - used, ") ORDER BY rank, id DESC LIMIT ? OFFSET ?)" LIST_ORDER);
}

static void bind_filters(sqlite3_stmt *select, const struct list_filters *filters)
{
    int index = 1;
    if (list_by_group(filters)) {
        const char *groups[3];
        int count = list_groups(filters, groups);
        for (int g = 0; g < count; g++) {
            sqlite3_bind_text(select, index++, groups[g], -1, SQLITE_STATIC);
            /* A group gives the page no more rows than the page holds in all. */
            sqlite3_bind_int64(select, index++, filters->limit + filters->offset);
        }
    } else {
        const char *texts[] = {filters->result, filters->job,
                               filters->from[0] ? filters->from : NULL,
                               filters->to[0] ? filters->to : NULL, filters->finding};
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
            if (texts[i])
                sqlite3_bind_text(select, index++, texts[i], -1, SQLITE_TRANSIENT);
    }
    sqlite3_bind_int64(select, index++, filters->limit);
    sqlite3_bind_int64(select, index, filters->offset);
}

/* The finding a reader looks at first: Tuberculosis when present, else the present finding
 * with the highest confidence; null for a result without one. */
static json_t *top_finding(const json_t *findings)
{
    const json_t *best = NULL;
    for (size_t i = 0; i < json_array_size(findings); i++) {
        const json_t *finding = json_array_get(findings, i);
        if (!json_is_true(json_object_get(finding, "presence")))
            continue;
        const char *name = json_string_value(json_object_get(finding, "name"));
        if (name && strcmp(name, "Tuberculosis") == 0) {
            best = finding;
            break;
        }
        if (best == NULL || json_number_value(json_object_get(finding, "confidence")) >
                                    json_number_value(json_object_get(best, "confidence")))
            best = finding;
    }
    return best ? json_pack("{s:O, s:O}", "name", json_object_get(best, "name"), "confidence",
                            json_object_get(best, "confidence"))
                : json_null();
}

static json_t *row_object(sqlite3_stmt *select)
{
    const char *texts[7];
    for (int i = 0; i < 7; i++) {
        const unsigned char *text = sqlite3_column_text(select, i);
        texts[i] = text ? (const char *)text : "";
    }
    json_t *predictions = json_loads(texts[4], 0, NULL);
    json_t *metadata = json_object_get(predictions, "metadata");
    json_t *findings = json_object_get(predictions, "findings");
    const char *heatmap = json_string_value(json_object_get(predictions, "heatmap"));
    const char *name = json_string_value(json_object_get(metadata, "patient_name"));
    const char *version = json_string_value(json_object_get(metadata, "model_version"));
    json_t *object =
            json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:O, s:b, s:b}", "id",
                      (json_int_t)sqlite3_column_int64(select, 7), "time", texts[0], "patient_id",
                      texts[1], "patient_name", name ? name : "", "result", texts[2], "top_finding",
                      top_finding(findings), "model_version", version ? version : "",
                      "sop_instance_uid", texts[3], "job_id", texts[5], "findings",
                      findings ? findings : json_null(), "has_files", texts[6][0] != '\0',
                      "has_heatmap", texts[6][0] != '\0' && heatmap && heatmap[0]);
    json_decref(predictions);
    return object;
}

void cxr_api_results_list(struct cxr_api *api, const struct cxr_api_results_query *query,
                          struct cxr_api_response *response)
{
    struct list_filters filters = {0};
    if (api->audit == NULL) {
        fail(response, CXR_API_JOBS_UNAVAILABLE, NULL);
        return;
    }
    if (!query_valid(query, &filters, response))
        return;
    char sql[2048];
    list_sql(&filters, sql, sizeof sql);
    json_t *rows = json_array();
    sqlite3 *db = cxr_audit_db_lock(api->audit);
    sqlite3_stmt *select = NULL;
    int rc = rows ? sqlite3_prepare_v2(db, sql, -1, &select, NULL) : SQLITE_NOMEM;
    if (rc == SQLITE_OK)
        bind_filters(select, &filters);
    while (rc == SQLITE_OK && (rc = sqlite3_step(select)) == SQLITE_ROW) {
        json_t *object = row_object(select);
        rc = object && json_array_append_new(rows, object) == 0 ? SQLITE_OK : SQLITE_NOMEM;
    }
    if (rc != SQLITE_DONE)
        cxr_log(CXR_LOG_ERROR, "results: SQLite: %s", sqlite3_errmsg(db));
    sqlite3_finalize(select);
    cxr_audit_db_unlock(api->audit);
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        fail(response, CXR_API_JOBS_INTERNAL, NULL);
        return;
    }
    if (cxr_api_envelope(200, "Success", rows, "Stored results.", response) != CXR_OK)
        fail(response, CXR_API_JOBS_INTERNAL, NULL);
}

/* Opens relative (components separated by '/') below the folder descriptor dir, refusing
 * symlinks at every step. Returns a descriptor or -1. */
static int open_below(int dir, const char *relative, bool folder)
{
    char copy[4096];
    if (snprintf(copy, sizeof copy, "%s", relative) >= (int)sizeof copy)
        return -1;
    int current = dup(dir);
    char *save = NULL;
    char *part = strtok_r(copy, "/", &save);
    while (current >= 0 && part) {
        char *next = strtok_r(NULL, "/", &save);
        bool last = next == NULL;
        int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
        if (!last || folder)
            flags |= O_DIRECTORY;
        int opened = strcmp(part, "..") == 0 ? -1 : openat(current, part, flags);
        close(current);
        current = opened;
        part = next;
    }
    return current;
}

/* Reads a regular file below dir, at most max bytes. */
static enum cxr_status read_below(int dir, const char *name, size_t max, struct cxr_buf *out)
{
    int fd = open_below(dir, name, false);
    if (fd < 0)
        return errno == ENOENT ? CXR_ERR_NOT_FOUND : CXR_ERR_IO;
    struct stat info;
    enum cxr_status status = CXR_OK;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode))
        status = CXR_ERR_IO;
    else if ((uint64_t)info.st_size > max)
        status = CXR_ERR_LIMIT;
    else
        status = cxr_buf_reserve(out, (size_t)info.st_size);
    size_t start = out->len;
    while (status == CXR_OK && out->len - start < (size_t)info.st_size) {
        ssize_t got = read(fd, out->data + out->len, (size_t)info.st_size - (out->len - start));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            status = CXR_ERR_IO;
        else
            out->len += (size_t)got;
    }
    close(fd);
    if (status != CXR_OK)
        out->len = start;
    return status;
}

/* The file name of the result stored with output folder, patient ID and SOP Instance UID sop,
 * read from its patient folder while that folder holds this result. kind: index in names. */
static bool result_file_read(struct cxr_api *api, const char *folder, const char *patient_id,
                             const char *sop, bool has_heatmap, int kind, const char *name,
                             const char *const names[][2], struct cxr_buf *out,
                             const char **content_type, struct cxr_api_response *response)
{
    if (folder[0] == '\0')
        return fail(response, CXR_API_RESULT_NO_FILE,
                    "no saved files are recorded for this result (returned inline, or stored "
                    "before cxrd recorded output folders)");
    if (kind == 1 && !has_heatmap)
        return fail(response, CXR_API_RESULT_NO_FILE, "a Normal result has no heatmap");
    const char *root = api->output_root.real;
    if (!cxr_path_is_under(folder, root) ||
        !cxr_api_patient_id_valid(patient_id, strlen(patient_id)))
        return fail(response, CXR_API_RESULT_NO_FILE,
                    "the result's folder is not below the "
                    "output root");

    /* <folder>/<patient_id>/, relative to the output root. */
    char relative[4200];
    const char *below = folder + strlen(root);
    while (*below == '/')
        below++;
    cxr_api_format(relative, sizeof relative, "%s%s%s", below, below[0] ? "/" : "", patient_id);
    /* Beneath the descriptor the server opened the root with at start, not its path again. */
    int patient_fd = open_below(api->output_root.fd, relative, true);
    if (patient_fd < 0)
        return fail(response, CXR_API_RESULT_NO_FILE, "the result's folder is gone");
    /* Held until the file is read: a commit (which holds LOCK_EX) between the check of the
     * predictions JSON and the read would serve a later study's file under this result. */
    while (flock(patient_fd, LOCK_SH) != 0 && errno == EINTR)
        continue;
    char file[128];
    snprintf(file, sizeof file, "%s_predictions.json", patient_id);
    struct cxr_buf predictions = {0};
    enum cxr_status status = read_below(patient_fd, file, 1 << 20, &predictions);
    json_t *stored = status == CXR_OK
                             ? json_loadb((const char *)predictions.data, predictions.len, 0, NULL)
                             : NULL;
    cxr_buf_release(&predictions);
    const char *stored_sop = json_string_value(
            json_object_get(json_object_get(stored, "metadata"), "sop_instance_uid"));
    bool same = stored_sop && strcmp(stored_sop, sop) == 0;
    json_decref(stored);
    if (!same) {
        close(patient_fd);
        return fail(response, status == CXR_OK ? CXR_API_RESULT_REPLACED : CXR_API_RESULT_NO_FILE,
                    status == CXR_OK ? patient_id : "the result's files are gone");
    }
    snprintf(file, sizeof file, "%s_%s", patient_id, name);
    status = read_below(patient_fd, file, api->config->limits.max_file_bytes, out);
    close(patient_fd);
    if (status != CXR_OK)
        return fail(response, CXR_API_RESULT_NO_FILE, name);
    *content_type = names[kind][1];
    return true;
}

bool cxr_api_results_file(struct cxr_api *api, const char *id, const char *name,
                          struct cxr_buf *out, const char **content_type,
                          struct cxr_api_response *response)
{
    static const char *const names[][2] = {{"source_image.png", "image/png"},
                                           {"heatmap.png", "image/png"},
                                           {"report.pdf", "application/pdf"}};
    int kind = -1;
    for (int i = 0; i < 3; i++)
        kind = strcmp(name, names[i][0]) == 0 ? i : kind;
    if (api->audit == NULL)
        return fail(response, CXR_API_JOBS_UNAVAILABLE, NULL);
    char *end = NULL;
    long long row_id = strtoll(id, &end, 10);
    if (kind < 0 || id[0] < '0' || id[0] > '9' || *end || row_id <= 0)
        return fail(response, CXR_API_NOT_FOUND, NULL);

    char folder[4096] = "", patient_id[80] = "";
    char *sop = NULL; /* whole: a cut one would never match the predictions JSON */
    bool has_heatmap = false;
    sqlite3 *db = cxr_audit_db_lock(api->audit);
    sqlite3_stmt *select = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT output_folder, patient_id, sop_instance_uid,"
                                " json_extract(predictions, '$.heatmap') FROM audit"
                                " WHERE id = ? AND predictions != '' AND status = 200",
                                -1, &select, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(select, 1, row_id);
        rc = sqlite3_step(select);
    }
    if (rc == SQLITE_ROW) {
        const unsigned char *texts[4];
        for (int i = 0; i < 4; i++)
            texts[i] = sqlite3_column_text(select, i);
        snprintf(folder, sizeof folder, "%s", texts[0] ? (const char *)texts[0] : "");
        snprintf(patient_id, sizeof patient_id, "%s", texts[1] ? (const char *)texts[1] : "");
        sop = strdup(texts[2] ? (const char *)texts[2] : "");
        has_heatmap = texts[3] && texts[3][0];
    }
    sqlite3_finalize(select);
    cxr_audit_db_unlock(api->audit);
    if (rc != SQLITE_ROW)
        return fail(response, CXR_API_RESULT_NOT_FOUND, id);
    bool read = sop ? result_file_read(api, folder, patient_id, sop, has_heatmap, kind, name, names,
                                       out, content_type, response)
                    : fail(response, CXR_API_JOBS_INTERNAL, NULL);
    free(sop);
    return read;
}
