/* Fuzz target: the CSV reader of `cxrd calibrate` label lists. Any input gives a parse or an
 * error, never a crash; every field of a parse is readable and NUL-terminated within it. */
#include <stdint.h>
#include <string.h>

#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cxr_csv *csv = NULL;
    if (cxr_csv_parse((const char *)data, size, 10000, 64, &csv, NULL) != CXR_OK)
        return 0;
    size_t total = 0;
    for (size_t r = 0; r < cxr_csv_record_count(csv); r++) {
        for (size_t f = 0; f < cxr_csv_field_count(csv, r); f++)
            total += strlen(cxr_csv_field(csv, r, f));
    }
    if (total > size)
        __builtin_trap(); /* unescaping never adds bytes */
    cxr_csv_destroy(csv);
    return 0;
}
