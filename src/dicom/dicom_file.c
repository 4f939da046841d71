/* The parsed file object: reading or copying the bytes, then the three parse-time steps in
 * order (element table, metadata, pixel description), and its destruction. After this a file
 * is immutable, so readers on several threads need no locks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dicom/dicom_internal.h"

void cxr_dicom_file_destroy(struct cxr_dicom_file *file)
{
    if (file == NULL)
        return;
    dicom_meta_free(file);
    dicom_pixels_free(file);
    free(file->elements);
    free(file->data);
    free(file);
}

/* Parses bytes the file object takes over (freed on failure too). */
static enum cxr_status parse_owned(uint8_t *data, size_t size, const struct cxr_limits *limits,
                                   struct cxr_dicom_file **file_out, struct cxr_err *err)
{
    struct cxr_dicom_file *file = calloc(1, sizeof(*file));
    if (file == NULL) {
        free(data);
        return cxr_err_set(err, CXR_ERR_NOMEM, "DICOM: out of memory");
    }
    file->data = data;
    file->size = size;
    enum cxr_status status = dicom_parse_elements(file, limits, err);
    if (status == CXR_OK)
        status = dicom_meta_build(file, err);
    if (status == CXR_OK && dicom_pixels_build(file, limits) != CXR_OK)
        status = cxr_err_set(err, CXR_ERR_NOMEM, "DICOM: out of memory for the pixel description");
    if (status != CXR_OK) {
        cxr_dicom_file_destroy(file);
        return status;
    }
    *file_out = file;
    return CXR_OK;
}

enum cxr_status cxr_dicom_file_parse(const uint8_t *bytes, size_t size,
                                     const struct cxr_limits *limits,
                                     struct cxr_dicom_file **file_out, struct cxr_err *err)
{
    struct cxr_limits default_limits = cxr_limits_default();
    if (limits == NULL)
        limits = &default_limits;
    if (file_out == NULL || (bytes == NULL && size > 0))
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "DICOM: no input or output");
    if (size == 0)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: empty file");
    if (size > limits->max_file_bytes)
        return cxr_err_set(err, CXR_ERR_LIMIT, "DICOM: file of %zu bytes exceeds %zu (limit)", size,
                           limits->max_file_bytes);
    uint8_t *data = malloc(size);
    if (data == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "DICOM: out of memory for %zu bytes", size);
    memcpy(data, bytes, size);
    return parse_owned(data, size, limits, file_out, err);
}

enum cxr_status cxr_dicom_file_read(const char *path, const struct cxr_limits *limits,
                                    struct cxr_dicom_file **file_out, struct cxr_err *err)
{
    struct cxr_limits default_limits = cxr_limits_default();
    if (limits == NULL)
        limits = &default_limits;
    if (path == NULL || file_out == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "DICOM: no path or output");
    FILE *stream = fopen(path, "rb");
    if (stream == NULL)
        return cxr_err_set(err, errno == ENOENT ? CXR_ERR_NOT_FOUND : CXR_ERR_IO,
                           "DICOM: cannot open %s: %s", path, strerror(errno));
    struct stat info;
    if (fstat(fileno(stream), &info) != 0 || !S_ISREG(info.st_mode)) {
        fclose(stream);
        return cxr_err_set(err, CXR_ERR_IO, "DICOM: %s is not a regular file", path);
    }
    if ((uint64_t)info.st_size > limits->max_file_bytes) {
        fclose(stream);
        return cxr_err_set(err, CXR_ERR_LIMIT, "DICOM: %s has %lld bytes, more than %zu (limit)",
                           path, (long long)info.st_size, limits->max_file_bytes);
    }
    size_t size = (size_t)info.st_size;
    uint8_t *bytes = malloc(size ? size : 1);
    if (bytes == NULL) {
        fclose(stream);
        return cxr_err_set(err, CXR_ERR_NOMEM, "DICOM: out of memory for %zu bytes", size);
    }
    size_t got = fread(bytes, 1, size, stream);
    bool failed = ferror(stream) != 0;
    fclose(stream);
    if (failed || got != size) {
        free(bytes);
        return cxr_err_set(err, CXR_ERR_IO, "DICOM: cannot read %s", path);
    }
    if (size == 0) {
        free(bytes);
        return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: %s is empty", path);
    }
    /* The buffer read here becomes the file's: large images are not copied again. */
    return parse_owned(bytes, size, limits, file_out, err);
}
