/* The parsed file object: reading or copying the bytes, then the three parse-time steps in
 * order (element table, metadata, pixel description), and its destruction. After this a file
 * is immutable, so readers on several threads need no locks. */
#include <stdlib.h>
#include <string.h>

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

/* Reads through the file (path) or the descriptor (fd >= 0). */
static enum cxr_status read_any(int fd, const char *path, const struct cxr_limits *limits,
                                struct cxr_dicom_file **file_out, struct cxr_err *err)
{
    struct cxr_limits default_limits = cxr_limits_default();
    if (limits == NULL)
        limits = &default_limits;
    if (path == NULL || file_out == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "DICOM: no path or output");
    struct cxr_buf bytes = CXR_BUF_INIT(0);
    struct cxr_err local = CXR_ERR_INIT;
    enum cxr_status status =
            fd >= 0 ? cxr_file_read_fd(fd, path, limits->max_file_bytes, &bytes, &local)
                    : cxr_file_read(path, limits->max_file_bytes, &bytes, &local);
    if (status != CXR_OK)
        return cxr_err_set(err, status, "DICOM: %s", local.message);
    if (bytes.len == 0) {
        cxr_buf_release(&bytes);
        return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: %s is empty", path);
    }
    /* The buffer read here becomes the file's: large images are not copied again. */
    return parse_owned(bytes.data, bytes.len, limits, file_out, err);
}

enum cxr_status cxr_dicom_file_read(const char *path, const struct cxr_limits *limits,
                                    struct cxr_dicom_file **file_out, struct cxr_err *err)
{
    return read_any(-1, path, limits, file_out, err);
}

enum cxr_status cxr_dicom_file_read_fd(int fd, const char *name, const struct cxr_limits *limits,
                                       struct cxr_dicom_file **file_out, struct cxr_err *err)
{
    if (fd < 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "DICOM: no descriptor");
    return read_any(fd, name, limits, file_out, err);
}
