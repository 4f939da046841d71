/* Float32 .npy files: the reader for `cxrd model-run` inputs and the atomic writer for network
 * outputs and class maps. Only what NumPy writes for a C-order float32 array is accepted. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

void cxr_nn_array_release(struct cxr_nn_array *array)
{
    if (array == NULL)
        return;
    free(array->data);
    memset(array, 0, sizeof(*array));
}

/* Finds `'key':` in the header dictionary and returns the text after the colon. */
static const char *header_value(const char *header, const char *key)
{
    char quoted[32];
    const char *quotes = "'\"";
    for (int q = 0; q < 2; q++) {
        snprintf(quoted, sizeof(quoted), "%c%s%c", quotes[q], key, quotes[q]);
        const char *at = strstr(header, quoted);
        if (at == NULL)
            continue;
        at += strlen(quoted);
        while (*at == ' ')
            at++;
        if (*at != ':')
            return NULL;
        at++;
        while (*at == ' ')
            at++;
        return at;
    }
    return NULL;
}

static enum cxr_status parse_shape(const char *text, struct cxr_nn_array *array,
                                   struct cxr_err *err)
{
    if (*text != '(')
        return cxr_err_set(err, CXR_ERR_MALFORMED, "npy: shape is not a tuple");
    text++;
    uint32_t rank = 0;
    size_t count = 1;
    for (;;) {
        while (*text == ' ' || *text == ',')
            text++;
        if (*text == ')')
            break;
        if (*text < '0' || *text > '9')
            return cxr_err_set(err, CXR_ERR_MALFORMED, "npy: bad shape entry");
        char *end = NULL;
        errno = 0;
        unsigned long long dim = strtoull(text, &end, 10);
        if (errno != 0 || dim > (unsigned long long)INT32_MAX)
            return cxr_err_set(err, CXR_ERR_LIMIT, "npy: dimension too large");
        if (rank == CXR_NN_MAX_RANK)
            return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "npy: rank above %d", CXR_NN_MAX_RANK);
        if (dim != 0 && count > SIZE_MAX / sizeof(float) / dim)
            return cxr_err_set(err, CXR_ERR_LIMIT, "npy: array too large");
        count *= (size_t)dim;
        array->dims[rank++] = (int64_t)dim;
        text = end;
        if (*text != ',' && *text != ')' && *text != ' ')
            return cxr_err_set(err, CXR_ERR_MALFORMED, "npy: bad shape tuple");
    }
    array->rank = rank;
    array->count = count;
    return CXR_OK;
}

enum cxr_status cxr_nn_npy_parse(const void *bytes, size_t size, const struct cxr_limits *limits,
                                 struct cxr_nn_array *array, struct cxr_err *err)
{
    struct cxr_limits defaults = cxr_limits_default();
    if (limits == NULL)
        limits = &defaults;
    const unsigned char *data = bytes;
    if (size > limits->max_file_bytes)
        return cxr_err_set(err, CXR_ERR_LIMIT, "npy: file larger than %zu bytes",
                           limits->max_file_bytes);
    if (size < 10 || memcmp(data, npy_magic, sizeof(npy_magic)) != 0)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "npy: not a .npy file (bad magic)");
    unsigned major = data[6];
    size_t header_len, header_start;
    if (major == 1) {
        header_len = (size_t)data[8] | (size_t)data[9] << 8;
        header_start = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12)
            return cxr_err_set(err, CXR_ERR_MALFORMED, "npy: truncated header");
        header_len = (size_t)data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 |
                     (size_t)data[11] << 24;
        header_start = 12;
    } else {
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "npy: format version %u", major);
    }
    if (header_len > size - header_start || header_len > 65536)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "npy: truncated header");
    char *header = malloc(header_len + 1);
    if (header == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "npy: out of memory");
    memcpy(header, data + header_start, header_len);
    header[header_len] = '\0';
    if (strlen(header) != header_len) {
        free(header);
        return cxr_err_set(err, CXR_ERR_MALFORMED, "npy: NUL byte in header");
    }

    struct cxr_nn_array result;
    memset(&result, 0, sizeof(result));
    enum cxr_status status = CXR_OK;
    const char *descr = header_value(header, "descr");
    const char *order = header_value(header, "fortran_order");
    const char *shape = header_value(header, "shape");
    if (descr == NULL || order == NULL || shape == NULL)
        status = cxr_err_set(err, CXR_ERR_MALFORMED, "npy: header lacks descr/fortran_order/shape");
    else if (strncmp(descr, "'<f4'", 5) != 0 && strncmp(descr, "\"<f4\"", 5) != 0)
        status = cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                             "npy: only little-endian float32 ('<f4') arrays are supported");
    else if (strncmp(order, "False", 5) != 0)
        status = cxr_err_set(err, CXR_ERR_UNSUPPORTED, "npy: Fortran-order arrays unsupported");
    else
        status = parse_shape(shape, &result, err);
    free(header);
    if (status != CXR_OK)
        return status;

    size_t payload = size - header_start - header_len;
    if (payload != result.count * sizeof(float))
        return cxr_err_set(err, CXR_ERR_MALFORMED, "npy: %zu data bytes where the shape needs %zu",
                           payload, result.count * sizeof(float));
    result.data = malloc(result.count ? result.count * sizeof(float) : sizeof(float));
    if (result.data == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "npy: out of memory");
    memcpy(result.data, data + header_start + header_len, result.count * sizeof(float));
    *array = result;
    return CXR_OK;
}

enum cxr_status cxr_nn_npy_read(const char *path, const struct cxr_limits *limits,
                                struct cxr_nn_array *array, struct cxr_err *err)
{
    struct cxr_limits defaults = cxr_limits_default();
    if (limits == NULL)
        limits = &defaults;
    struct cxr_buf bytes = CXR_BUF_INIT(0);
    struct cxr_err local = CXR_ERR_INIT;
    enum cxr_status status = cxr_file_read(path, limits->max_file_bytes, &bytes, &local);
    if (status != CXR_OK)
        return cxr_err_set(err, status, "npy: %s", local.message);
    status = cxr_nn_npy_parse(bytes.data, bytes.len, limits, array, &local);
    cxr_buf_release(&bytes);
    if (status != CXR_OK)
        return cxr_err_set(err, status, "%s: %s", path, local.message);
    return CXR_OK;
}

enum cxr_status cxr_nn_npy_write(const char *path, const float *data, uint32_t rank,
                                 const int64_t *dims, struct cxr_err *err)
{
    if (path == NULL || (data == NULL && rank > 0) || rank > CXR_NN_MAX_RANK)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "npy: bad arguments to write");
    char header[512];
    int len =
            snprintf(header, sizeof(header), "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t count = 1;
    for (uint32_t i = 0; i < rank; i++) {
        if (dims[i] < 0 || (dims[i] > 0 && count > SIZE_MAX / sizeof(float) / (size_t)dims[i]))
            return cxr_err_set(err, CXR_ERR_INVALID_ARG, "npy: bad dimension");
        count *= (size_t)dims[i];
        len += snprintf(header + len, sizeof(header) - (size_t)len, "%lld%s", (long long)dims[i],
                        rank == 1 ? "," : (i + 1 < rank ? ", " : ""));
    }
    len += snprintf(header + len, sizeof(header) - (size_t)len, "), }");
    /* NumPy pads the header with spaces to a multiple of 64 bytes, ending in '\n'. */
    size_t total = 10 + (size_t)len + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t header_len = padded - 10;
    memset(header + len, ' ', header_len - (size_t)len - 1);
    header[header_len - 1] = '\n';
    unsigned char preamble[10] = {0x93,
                                  'N',
                                  'U',
                                  'M',
                                  'P',
                                  'Y',
                                  1,
                                  0,
                                  (unsigned char)(header_len & 0xff),
                                  (unsigned char)(header_len >> 8)};

    /* One buffer, written atomically by util (temp + fsync + rename + folder fsync). */
    struct cxr_buf file = CXR_BUF_INIT(0);
    enum cxr_status status =
            cxr_buf_reserve(&file, sizeof(preamble) + header_len + count * sizeof(float));
    if (status != CXR_OK) {
        cxr_buf_release(&file);
        return cxr_err_set(err, status, "npy: out of memory for %s", path);
    }
    cxr_buf_append(&file, preamble, sizeof(preamble));
    cxr_buf_append(&file, header, header_len);
    cxr_buf_append(&file, data, count * sizeof(float));
    status = cxr_file_write_atomic(path, file.data, file.len, err);
    cxr_buf_release(&file);
    return status;
}
