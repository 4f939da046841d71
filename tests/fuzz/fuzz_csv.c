/* Fuzz target: the CSV reader of `cxrd calibrate` label lists (the first byte picks ',' or ';'
 * as the separator), and the writer of CSV text fields. Any input gives a parse or an error,
 * never a crash; every field of a parse is readable and NUL-terminated within it; and every
 * field written back by cxr_csv_append_text reads back as itself (or with the apostrophe that
 * defuses a spreadsheet formula). */
#include <stdint.h>
#include <string.h>

#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One field through the writer and the reader again, after a first field as in the files cxrd
 * writes (their header comes first: a field at the very start that begins with a byte order
 * mark would lose it to the reader). */
static void round_trip(const char *field)
{
    struct cxr_buf written = {0};
    struct cxr_csv *csv = NULL;
    if (cxr_buf_append(&written, "x,", 2) != CXR_OK ||
        cxr_csv_append_text(&written, field) != CXR_OK ||
        cxr_buf_append(&written, ",\n", 2) != CXR_OK ||
        cxr_csv_parse((const char *)written.data, written.len, 2, 4, &csv, NULL) != CXR_OK)
        __builtin_trap();
    const char *read = cxr_csv_field(csv, 0, 1);
    if (read == NULL || (strcmp(read, field) != 0 && (read[0] != '\'' || strcmp(read + 1, field))))
        __builtin_trap();
    cxr_csv_destroy(csv);
    cxr_buf_release(&written);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char separator = data[0] & 1 ? ';' : ',';
    struct cxr_csv *csv = NULL;
    if (cxr_csv_parse_separated((const char *)data + 1, size - 1, separator, 10000, 64, &csv,
                                NULL) != CXR_OK)
        return 0;
    size_t total = 0;
    for (size_t r = 0; r < cxr_csv_record_count(csv); r++) {
        for (size_t f = 0; f < cxr_csv_field_count(csv, r); f++) {
            total += strlen(cxr_csv_field(csv, r, f));
            round_trip(cxr_csv_field(csv, r, f));
        }
    }
    if (total > size)
        __builtin_trap(); /* unescaping never adds bytes */
    cxr_csv_destroy(csv);
    return 0;
}
