/* The labels file of `cxrd calibrate` as sites make it in a spreadsheet: comma or semicolon
 * separated, labels 0/1 as numbers, unused rows, one study listed twice. What is unambiguous is
 * accepted; anything else is refused naming the line, because a wrong label or a study counted
 * twice would give a wrong operating point without a sign. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli_calibrate_internal.h"

#define CSV_MAX_BYTES   ((size_t)64 << 20)
#define CSV_MAX_RECORDS 1000000
#define CSV_MAX_FIELDS  64

char *cxr_cli_calibrate_text(const char *fmt, ...)
{
    char text[2048];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    return strdup(text);
}

/* Well-formed UTF-8 (shortest forms, no surrogates, at most U+10FFFF). */
static bool is_utf8(const char *text)
{
    const unsigned char *c = (const unsigned char *)text;
    while (*c) {
        size_t length = *c < 0x80             ? 1
                        : (*c & 0xE0) == 0xC0 ? 2
                        : (*c & 0xF0) == 0xE0 ? 3
                        : (*c & 0xF8) == 0xF0 ? 4
                                              : 0;
        if (length == 0 || (length == 2 && *c < 0xC2) || (length == 4 && *c > 0xF4))
            return false;
        for (size_t i = 1; i < length; i++) {
            if ((c[i] & 0xC0) != 0x80)
                return false;
        }
        if ((length == 3 && *c == 0xE0 && c[1] < 0xA0) ||
            (length == 3 && *c == 0xED && c[1] >= 0xA0) ||
            (length == 4 && *c == 0xF0 && c[1] < 0x90) ||
            (length == 4 && *c == 0xF4 && c[1] >= 0x90))
            return false;
        c += length;
    }
    return true;
}

/* Spreadsheets in locales with a decimal comma export CSV with ';' between fields. The header
 * decides: ';' when its first line has one outside quotes and no comma; ',' otherwise. */
static char header_separator(const char *text, size_t size)
{
    size_t commas = 0, semicolons = 0;
    bool quoted = false;
    for (size_t at = 0; at < size && (quoted || (text[at] != '\n' && text[at] != '\r')); at++) {
        if (text[at] == '"')
            quoted = !quoted;
        else if (!quoted)
            commas += text[at] == ',', semicolons += text[at] == ';';
    }
    return commas == 0 && semicolons > 0 ? ';' : ',';
}

/* 1 or 0 for a label as a spreadsheet writes those numbers ("1", " 0 ", "1.0", "0,00" in a
 * ';' file); -1 for anything else (TRUE, yes, 2, 0.5, empty): their meaning is a guess. */
static int label_value(const char *text, char decimal_mark)
{
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text != '0' && *text != '1')
        return -1;
    int value = *text++ - '0';
    if (*text == decimal_mark) {
        if (*++text != '0')
            return -1;
        while (*text == '0')
            text++;
    }
    while (*text == ' ' || *text == '\t')
        text++;
    return *text ? -1 : value;
}

static bool record_empty(const struct cxr_csv *csv, size_t record)
{
    for (size_t f = 0; f < cxr_csv_field_count(csv, record); f++) {
        if (cxr_csv_field(csv, record, f)[0] != '\0')
            return false;
    }
    return true;
}

/* The column named name (any case, as spreadsheets capitalise headers); -1 when none, -2 after
 * printing why when two columns have that name. */
static long header_column(const struct cxr_csv *csv, const char *path, const char *name)
{
    long found = -1;
    for (size_t f = 0; f < cxr_csv_field_count(csv, 0); f++) {
        if (strcasecmp(cxr_csv_field(csv, 0, f), name) != 0)
            continue;
        if (found >= 0) {
            fprintf(stderr,
                    "cxrd calibrate: %s: the header has two columns `%s` (columns %ld and %zu); "
                    "keep one and run again\n",
                    path, name, found + 1, f + 1);
            return -2;
        }
        found = (long)f;
    }
    return found;
}

struct keyed_row {
    const char *key; /* the real path, or the SOP Instance UID */
    struct calibrate_row *row;
};

static int compare_keyed(const void *a, const void *b)
{
    const struct keyed_row *x = a, *y = b;
    int order = strcmp(x->key, y->key);
    return order ? order : x->row->line < y->row->line ? -1 : x->row->line > y->row->line;
}

/* The key of a row for dedupe (NULL: the row takes no part). */
typedef const char *key_of_row(const struct calibrate_row *row);

/* Rows with one key (one file, or one image under two paths) are one study counted twice: the
 * later rows are left out when their label is the first's, and refused when it is not. what is
 * "file" or "image" (an image's key, its SOP Instance UID, is named). Returns 0, or 1 after
 * naming the conflicting lines. */
static int dedupe(const char *labels_path, struct calibrate_run *run, key_of_row *key_of,
                  const char *what)
{
    struct keyed_row *keyed = calloc(run->row_count ? run->row_count : 1, sizeof *keyed);
    if (keyed == NULL) {
        fprintf(stderr, "cxrd calibrate: out of memory\n");
        return 1;
    }
    size_t count = 0;
    for (size_t i = 0; i < run->row_count; i++) {
        const char *key = key_of(&run->rows[i]);
        if (key != NULL)
            keyed[count++] = (struct keyed_row){key, &run->rows[i]};
    }
    qsort(keyed, count, sizeof *keyed, compare_keyed);
    bool image = strcmp(what, "image") == 0;
    size_t conflicts = 0;
    for (size_t i = 1, first = 0; i < count; i++) {
        if (strcmp(keyed[i].key, keyed[first].key) != 0) {
            first = i;
            continue;
        }
        struct calibrate_row *row = keyed[i].row, *earlier = keyed[first].row;
        if (row->label != earlier->label) {
            if (conflicts++ < CALIBRATE_LIST_SHOWN)
                fprintf(stderr,
                        "cxrd calibrate: %s line %zu: %s is the %s of line %zu%s%s%s, labelled "
                        "%d there and %d here\n",
                        labels_path, row->line, row->path, what, earlier->line,
                        image ? " (SOP Instance UID " : "", image ? keyed[i].key : "",
                        image ? ")" : "", earlier->label, row->label);
            continue;
        }
        free(row->problem);
        row->problem = cxr_cli_calibrate_text("the same %s as line %zu%s%s%s, counted once", what,
                                              earlier->line, image ? " (SOP Instance UID " : "",
                                              image ? keyed[i].key : "", image ? ")" : "");
        row->analysed = false;
        row->duplicate = true;
        run->duplicates++;
    }
    free(keyed);
    if (conflicts) {
        fprintf(stderr,
                "cxrd calibrate: %s: %zu rows give the %s of an earlier row another label; fix "
                "them and run again\n",
                labels_path, conflicts, what);
        return 1;
    }
    return 0;
}

static const char *resolved_file(const struct calibrate_row *row)
{
    return row->resolved;
}

static const char *analysed_image(const struct calibrate_row *row)
{
    return row->analysed && row->sop_instance_uid && row->sop_instance_uid[0]
                   ? row->sop_instance_uid
                   : NULL;
}

/* Every row's real path, relative paths against the CSV's folder; then one file listed twice. */
static int resolve_paths(const char *labels_path, struct calibrate_run *run)
{
    for (size_t i = 0; i < run->row_count; i++) {
        struct calibrate_row *row = &run->rows[i];
        if (row->path[0] == '\0') {
            row->problem = cxr_cli_calibrate_text("no path");
            continue;
        }
        char joined[8192];
        snprintf(joined, sizeof joined, "%s%s%s", row->path[0] == '/' ? "" : run->csv_dir,
                 row->path[0] == '/' ? "" : "/", row->path);
        row->resolved = realpath(joined, NULL);
        if (row->resolved == NULL)
            row->problem = cxr_cli_calibrate_text(
                    "%s: %s%s", joined, strerror(errno),
                    strchr(row->path, '\\') ? " (folders are separated by / here, not \\)" : "");
    }
    return dedupe(labels_path, run, resolved_file, "file");
}

int cxr_cli_calibrate_labels_read(const char *path, struct calibrate_run *run,
                                  struct cxr_csv **csv_out)
{
    struct cxr_buf text = CXR_BUF_INIT(CSV_MAX_BYTES);
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_csv *csv = NULL;
    char separator = ',';
    if (cxr_file_read(path, CSV_MAX_BYTES, &text, &err) == CXR_OK)
        separator = header_separator((const char *)text.data, text.len);
    /* Excel's "Unicode Text" export is UTF-16 with a byte order mark: the reader would only say
     * "NUL byte". */
    const unsigned char *bytes = text.data;
    if (err.message[0] == '\0' && text.len >= 2 &&
        ((bytes[0] == 0xFF && bytes[1] == 0xFE) || (bytes[0] == 0xFE && bytes[1] == 0xFF)))
        cxr_err_set(&err, CXR_ERR_MALFORMED,
                    "the file is UTF-16 (a spreadsheet's \"Unicode Text\"); save it as CSV UTF-8 "
                    "and run again");
    if (err.message[0] ||
        cxr_csv_parse_separated((const char *)text.data, text.len, separator, CSV_MAX_RECORDS,
                                CSV_MAX_FIELDS, &csv, &err) != CXR_OK) {
        fprintf(stderr, "cxrd calibrate: %s: %s\n", path, err.message);
        cxr_buf_release(&text);
        return 1;
    }
    cxr_buf_release(&text);
    /* A file saved in a legacy code page (Excel's plain "CSV" is Windows-1252 on Windows) names
     * files that do not exist here under those bytes: say so rather than guess the code page. */
    size_t records = cxr_csv_record_count(csv), not_utf8 = 0;
    for (size_t r = 0; r < records; r++) {
        bool ok = true;
        for (size_t f = 0; ok && f < cxr_csv_field_count(csv, r); f++)
            ok = is_utf8(cxr_csv_field(csv, r, f));
        if (!ok && not_utf8++ < CALIBRATE_LIST_SHOWN)
            fprintf(stderr, "cxrd calibrate: %s line %zu: text that is not UTF-8\n", path,
                    cxr_csv_line(csv, r));
    }
    if (not_utf8) {
        fprintf(stderr,
                "cxrd calibrate: %s: %zu lines are not UTF-8 (a spreadsheet's legacy code page, "
                "e.g. Windows-1252?); save the file as UTF-8 (Excel: \"CSV UTF-8\"; LibreOffice: "
                "character set \"Unicode (UTF-8)\") and run again\n",
                path, not_utf8);
        cxr_csv_destroy(csv);
        return 1;
    }
    if (records < 2) {
        fprintf(stderr, "cxrd calibrate: %s: no rows under the header\n", path);
        cxr_csv_destroy(csv);
        return 1;
    }
    long path_column = header_column(csv, path, "path");
    long label_column = header_column(csv, path, "label");
    long finding_column = header_column(csv, path, run->finding);
    if (path_column == -2 || label_column == -2 || finding_column == -2) {
        cxr_csv_destroy(csv);
        return 1;
    }
    bool per_finding = label_column < 0;
    if (per_finding)
        label_column = finding_column;
    if (path_column < 0 || label_column < 0) {
        fprintf(stderr,
                "cxrd calibrate: %s: the header needs a column `path` and a column `label` or "
                "`%s` (one column per finding, named as in the API), separated by commas or "
                "semicolons\n",
                path, run->finding);
        cxr_csv_destroy(csv);
        return 1;
    }
    run->rows = calloc(records, sizeof *run->rows);
    if (run->rows == NULL) {
        fprintf(stderr, "cxrd calibrate: out of memory\n");
        cxr_csv_destroy(csv);
        return 1;
    }
    /* In a ';' file the decimal mark is a comma: "1,0". */
    char decimal_mark = separator == ';' ? ',' : '.';
    size_t bad = 0;
    for (size_t r = 1; r < records; r++) {
        if (record_empty(csv, r)) {
            run->empty_rows++; /* ",,," : a row the spreadsheet exported but nobody filled */
            continue;
        }
        const char *file = cxr_csv_field(csv, r, (size_t)path_column);
        const char *label = cxr_csv_field(csv, r, (size_t)label_column);
        if (label == NULL)
            label = "";
        if (per_finding && label[strspn(label, " \t")] == '\0') {
            run->unlabelled++; /* not labelled for this finding */
            continue;
        }
        int value = label_value(label, decimal_mark);
        if (value < 0) {
            if (bad++ < CALIBRATE_LIST_SHOWN)
                fprintf(stderr, "cxrd calibrate: %s line %zu: label '%s' is not 0 or 1\n", path,
                        cxr_csv_line(csv, r), label);
            continue;
        }
        struct calibrate_row *row = &run->rows[run->row_count++];
        row->line = cxr_csv_line(csv, r);
        row->path = file ? file : "";
        row->label = value;
    }
    if (bad) {
        fprintf(stderr,
                "cxrd calibrate: %s: %zu rows have a label other than 0 or 1 (1 = has %s, 0 = "
                "does not%s); fix them and run again\n",
                path, bad, run->finding, per_finding ? ", empty = not labelled" : "");
        cxr_csv_destroy(csv);
        return 1;
    }
    if (resolve_paths(path, run) != 0) {
        cxr_csv_destroy(csv);
        return 1;
    }
    *csv_out = csv;
    return 0;
}

int cxr_cli_calibrate_images_dedupe(const char *labels_path, struct calibrate_run *run)
{
    return dedupe(labels_path, run, analysed_image, "image");
}
