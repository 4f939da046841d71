/* CSV text as spreadsheets write it (RFC 4180): the label lists a site hands to `cxrd calibrate`,
 * parsed once into one block of NUL-terminated fields, so callers index records and fields
 * without owning anything; and the text fields of the CSV files cxrd writes (run summaries,
 * calibration scores), which readers open in spreadsheets. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct csv_record {
    size_t first_field, field_count, line;
};

struct cxr_csv {
    char *storage;  /* every field, unescaped, NUL-terminated */
    size_t *fields; /* offset of each field in storage */
    size_t field_count, field_cap;
    struct csv_record *records;
    size_t record_count, record_cap;
};

void cxr_csv_destroy(struct cxr_csv *csv)
{
    if (csv == NULL)
        return;
    free(csv->storage);
    free(csv->fields);
    free(csv->records);
    free(csv);
}

static bool grow(void **array, size_t *cap, size_t count, size_t item)
{
    if (count < *cap)
        return true;
    size_t cap_new = *cap ? *cap * 2 : 64;
    if (cap_new > SIZE_MAX / item)
        return false;
    void *bigger = realloc(*array, cap_new * item);
    if (bigger == NULL)
        return false;
    *array = bigger;
    *cap = cap_new;
    return true;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

enum cxr_status cxr_csv_parse(const char *text, size_t size, size_t max_records, size_t max_fields,
                              struct cxr_csv **out, struct cxr_err *err)
{
    return cxr_csv_parse_separated(text, size, ',', max_records, max_fields, out, err);
}

enum cxr_status cxr_csv_parse_separated(const char *text, size_t size, char separator,
                                        size_t max_records, size_t max_fields, struct cxr_csv **out,
                                        struct cxr_err *err)
{
    struct cxr_csv *csv = calloc(1, sizeof *csv);
    if (csv == NULL || size == SIZE_MAX || (csv->storage = malloc(size + 1)) == NULL) {
        cxr_csv_destroy(csv);
        return cxr_err_set(err, CXR_ERR_NOMEM, "CSV: out of memory");
    }
    /* Each field takes at most its source bytes plus a NUL, and each field but a record's last
     * consumes a separator: size + 1 bytes hold every field. */
    size_t at = 0, used = 0, line = 1;
    if (memchr(text, '\0', size) != NULL) {
        cxr_csv_destroy(csv);
        return cxr_err_set(err, CXR_ERR_MALFORMED, "CSV: the text holds a NUL byte");
    }
    if (size >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        at = 3; /* a UTF-8 byte order mark, as some spreadsheets write */
    enum cxr_status status = CXR_OK;
    while (at < size && status == CXR_OK) {
        /* One record: skip blank lines first. */
        size_t start = at;
        while (at < size && is_blank(text[at]))
            at++;
        if (at < size && (text[at] == '\n' || text[at] == '\r')) {
            at += (text[at] == '\r' && at + 1 < size && text[at + 1] == '\n') ? 2 : 1;
            line++;
            continue;
        }
        at = start;
        if (csv->record_count == max_records) {
            status = cxr_err_set(err, CXR_ERR_LIMIT, "CSV: more than %zu records (line %zu)",
                                 max_records, line);
            break;
        }
        if (!grow((void **)&csv->records, &csv->record_cap, csv->record_count,
                  sizeof *csv->records)) {
            status = cxr_err_set(err, CXR_ERR_NOMEM, "CSV: out of memory");
            break;
        }
        struct csv_record *record = &csv->records[csv->record_count];
        *record = (struct csv_record){csv->field_count, 0, line};
        for (bool more = true; more && status == CXR_OK;) {
            if (record->field_count == max_fields) {
                status = cxr_err_set(err, CXR_ERR_LIMIT, "CSV line %zu: more than %zu fields", line,
                                     max_fields);
                break;
            }
            if (!grow((void **)&csv->fields, &csv->field_cap, csv->field_count,
                      sizeof *csv->fields)) {
                status = cxr_err_set(err, CXR_ERR_NOMEM, "CSV: out of memory");
                break;
            }
            csv->fields[csv->field_count++] = used;
            record->field_count++;
            while (at < size && is_blank(text[at]))
                at++;
            if (at < size && text[at] == '"') {
                size_t quote_line = line;
                at++;
                for (;;) {
                    if (at == size) {
                        status = cxr_err_set(err, CXR_ERR_MALFORMED,
                                             "CSV line %zu: a quoted field is not closed",
                                             quote_line);
                        break;
                    }
                    if (text[at] == '"' && at + 1 < size && text[at + 1] == '"') {
                        csv->storage[used++] = '"';
                        at += 2;
                    } else if (text[at] == '"') {
                        at++;
                        break;
                    } else {
                        line += text[at] == '\n';
                        csv->storage[used++] = text[at++];
                    }
                }
                while (status == CXR_OK && at < size && is_blank(text[at]))
                    at++;
                if (status == CXR_OK && at < size && text[at] != separator && text[at] != '\n' &&
                    text[at] != '\r')
                    status = cxr_err_set(err, CXR_ERR_MALFORMED,
                                         "CSV line %zu: text after a closing quote", line);
            } else {
                size_t field_start = used;
                while (at < size && text[at] != separator && text[at] != '\n' && text[at] != '\r')
                    csv->storage[used++] = text[at++];
                while (used > field_start && is_blank(csv->storage[used - 1]))
                    used--;
            }
            csv->storage[used++] = '\0';
            if (status != CXR_OK)
                break;
            if (at < size && text[at] == separator) {
                at++;
            } else {
                more = false;
                if (at < size)
                    at += (text[at] == '\r' && at + 1 < size && text[at + 1] == '\n') ? 2 : 1;
                line++;
            }
        }
        if (status == CXR_OK)
            csv->record_count++;
    }
    if (status != CXR_OK) {
        cxr_csv_destroy(csv);
        return status;
    }
    *out = csv;
    return CXR_OK;
}

size_t cxr_csv_record_count(const struct cxr_csv *csv)
{
    return csv->record_count;
}

size_t cxr_csv_field_count(const struct cxr_csv *csv, size_t record)
{
    return record < csv->record_count ? csv->records[record].field_count : 0;
}

const char *cxr_csv_field(const struct cxr_csv *csv, size_t record, size_t field)
{
    if (record >= csv->record_count || field >= csv->records[record].field_count)
        return NULL;
    return csv->storage + csv->fields[csv->records[record].first_field + field];
}

size_t cxr_csv_line(const struct cxr_csv *csv, size_t record)
{
    return record < csv->record_count ? csv->records[record].line : 0;
}

/* Spreadsheets (Excel, LibreOffice) run a cell that begins with one of these as a formula, quoted
 * or not: a SOP Instance UID of "=HYPERLINK(...)" in a hostile DICOM file, or a valid patient ID
 * such as "-A1" (shown as the value of cell A1). */
static bool starts_formula(const char *text)
{
    return text[0] && strchr("=+-@\t\r", text[0]) != NULL;
}

enum cxr_status cxr_csv_append_text(struct cxr_buf *out, const char *text)
{
    size_t length = text ? strlen(text) : 0;
    if (length == 0)
        return CXR_OK;
    bool defuse = starts_formula(text);
    /* The reader above trims blanks around unquoted fields, so those are quoted too. */
    bool quote = strpbrk(text, ",\"\r\n") || text[0] == ' ' || text[0] == '\t' ||
                 text[length - 1] == ' ' || text[length - 1] == '\t';
    enum cxr_status status = CXR_OK;
    if (quote)
        status = cxr_buf_append(out, "\"", 1);
    if (status == CXR_OK && defuse)
        status = cxr_buf_append(out, "'", 1);
    if (!quote)
        return status == CXR_OK ? cxr_buf_append(out, text, length) : status;
    for (const char *c = text; status == CXR_OK && *c; c++)
        status = cxr_buf_append(out, *c == '"' ? "\"\"" : c, *c == '"' ? 2 : 1);
    return status == CXR_OK ? cxr_buf_append(out, "\"", 1) : status;
}
