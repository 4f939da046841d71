/* Load-time constant folding: the shape arithmetic exporters leave in CNN graphs (Shape,
 * Gather, Unsqueeze, Concat, Reshape, Cast, elementwise maths on small constants) is evaluated
 * once here, so only real layers reach the planner. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_fold.h"

static size_t element_size(enum nn_dtype dtype)
{
    return dtype == NN_F32 ? sizeof(float) : sizeof(int64_t);
}

enum cxr_status nn_fold_set(struct nn_tensor *out, enum nn_dtype dtype, uint32_t rank,
                            const int64_t *dims, struct cxr_err *err)
{
    enum cxr_status status = nn_shape_set(out, rank, dims, err);
    if (status != CXR_OK)
        return status;
    out->dtype = dtype;
    out->shaped = false; /* until it has its values */
    if (out->count > NN_MAX_FOLD_ELEMENTS)
        return cxr_err_set(err, CXR_ERR_LIMIT,
                           "ONNX: folding '%s' at load would make %zu values (at most %zu)",
                           out->name, out->count, NN_MAX_FOLD_ELEMENTS);
    free(out->values);
    out->values = calloc(out->count ? out->count : 1, element_size(dtype));
    if (out->values == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "ONNX: out of memory folding constants");
    out->shaped = true;
    return CXR_OK;
}

double nn_fold_get(const struct nn_tensor *tensor, size_t i)
{
    if (tensor->dtype == NN_F32)
        return ((const float *)tensor->values)[i];
    return (double)((const int64_t *)tensor->values)[i];
}

static void put(struct nn_tensor *tensor, size_t i, double value)
{
    if (tensor->dtype == NN_F32)
        ((float *)tensor->values)[i] = (float)value;
    else
        ((int64_t *)tensor->values)[i] = (int64_t)value;
}

enum cxr_status nn_fold_copy(struct nn_tensor *out, const struct nn_tensor *in, uint32_t rank,
                             const int64_t *dims, struct cxr_err *err)
{
    enum cxr_status status = nn_fold_set(out, in->dtype, rank, dims, err);
    if (status != CXR_OK)
        return status;
    if (out->count != in->count)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: reshaping %zu values into %zu", in->count,
                           out->count);
    memcpy(out->values, in->values, in->count * element_size(in->dtype));
    return CXR_OK;
}

enum cxr_status nn_broadcast_shape(const struct nn_tensor *a, const struct nn_tensor *b,
                                   uint32_t *rank, int64_t *dims)
{
    uint32_t r = a->rank > b->rank ? a->rank : b->rank;
    for (uint32_t i = 0; i < r; i++) {
        int64_t da = i < r - a->rank ? 1 : a->dims[i - (r - a->rank)];
        int64_t db = i < r - b->rank ? 1 : b->dims[i - (r - b->rank)];
        if (da != db && da != 1 && db != 1)
            return CXR_ERR_MALFORMED;
        dims[i] = da == 1 ? db : da;
    }
    *rank = r;
    return CXR_OK;
}

/* Offset into t (row-major, broadcast against out's shape) of out's element i. */
static size_t broadcast_offset(const struct nn_tensor *t, uint32_t rank, const int64_t *dims,
                               size_t i)
{
    size_t offset = 0, scale = 1;
    for (uint32_t k = rank; k-- > 0;) {
        int64_t index = (int64_t)(i % (size_t)dims[k]);
        i /= (size_t)dims[k];
        uint32_t lead = rank - t->rank;
        if (k >= lead) {
            int64_t d = t->dims[k - lead];
            offset += (d == 1 ? 0 : (size_t)index) * scale;
            scale *= (size_t)d;
        }
    }
    return offset;
}

enum cxr_status nn_fold_binary(struct nn_tensor *out, const struct nn_tensor *a,
                               const struct nn_tensor *b, enum nn_binary_op op, struct cxr_err *err)
{
    uint32_t rank;
    int64_t dims[CXR_NN_MAX_RANK];
    if (nn_broadcast_shape(a, b, &rank, dims) != CXR_OK)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: shapes do not broadcast");
    enum nn_dtype dtype = a->dtype == NN_F32 || b->dtype == NN_F32 ? NN_F32 : NN_I64;
    enum cxr_status status = nn_fold_set(out, dtype, rank, dims, err);
    if (status != CXR_OK)
        return status;
    for (size_t i = 0; i < out->count; i++) {
        double x = nn_fold_get(a, broadcast_offset(a, rank, dims, i));
        double y = nn_fold_get(b, broadcast_offset(b, rank, dims, i));
        double r;
        switch (op) {
        case NN_ADD:
            r = x + y;
            break;
        case NN_SUB:
            r = x - y;
            break;
        case NN_MUL:
            r = x * y;
            break;
        default:
            if (dtype == NN_I64) {
                if (y == 0)
                    return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: integer division by 0");
                r = (double)((int64_t)x / (int64_t)y);
            } else {
                r = x / y;
            }
            break;
        }
        put(out, i, r);
    }
    return CXR_OK;
}

enum cxr_status nn_fold_gather(struct nn_tensor *out, const struct nn_tensor *data,
                               const struct nn_tensor *indices, int64_t axis, struct cxr_err *err)
{
    if (data->rank == 0 || axis < -(int64_t)data->rank || axis >= (int64_t)data->rank)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: Gather axis out of range");
    if (axis < 0)
        axis += data->rank;
    if (indices->dtype != NN_I64 || data->rank - 1 + indices->rank > CXR_NN_MAX_RANK)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "ONNX: Gather indices unsupported");
    int64_t dims[CXR_NN_MAX_RANK];
    uint32_t rank = 0;
    for (int64_t k = 0; k < axis; k++)
        dims[rank++] = data->dims[k];
    for (uint32_t k = 0; k < indices->rank; k++)
        dims[rank++] = indices->dims[k];
    for (uint32_t k = (uint32_t)axis + 1; k < data->rank; k++)
        dims[rank++] = data->dims[k];
    enum cxr_status status = nn_fold_set(out, data->dtype, rank, dims, err);
    if (status != CXR_OK)
        return status;
    size_t outer = 1, inner = 1;
    for (int64_t k = 0; k < axis; k++)
        outer *= (size_t)data->dims[k];
    for (uint32_t k = (uint32_t)axis + 1; k < data->rank; k++)
        inner *= (size_t)data->dims[k];
    int64_t extent = data->dims[axis];
    size_t at = 0;
    for (size_t o = 0; o < outer; o++) {
        for (size_t j = 0; j < indices->count; j++) {
            int64_t index = ((const int64_t *)indices->values)[j];
            if (index < 0)
                index += extent;
            if (index < 0 || index >= extent)
                return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: Gather index out of range");
            for (size_t k = 0; k < inner; k++)
                put(out, at++, nn_fold_get(data, (o * (size_t)extent + (size_t)index) * inner + k));
        }
    }
    return CXR_OK;
}

enum cxr_status nn_fold_concat(struct nn_tensor *out, const struct nn_tensor *const *parts,
                               size_t count, int64_t axis, struct cxr_err *err)
{
    const struct nn_tensor *first = parts[0];
    if (first->rank == 0 || axis < -(int64_t)first->rank || axis >= (int64_t)first->rank)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: Concat axis out of range");
    if (axis < 0)
        axis += first->rank;
    int64_t dims[CXR_NN_MAX_RANK];
    memcpy(dims, first->dims, sizeof(dims));
    dims[axis] = 0;
    enum nn_dtype dtype = first->dtype;
    for (size_t p = 0; p < count; p++) {
        if (parts[p]->rank != first->rank)
            return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: Concat of different ranks");
        for (uint32_t k = 0; k < first->rank; k++) {
            if ((int64_t)k != axis && parts[p]->dims[k] != first->dims[k])
                return cxr_err_set(err, CXR_ERR_MALFORMED, "ONNX: Concat shapes differ");
        }
        if (parts[p]->dtype == NN_F32)
            dtype = NN_F32;
        dims[axis] += parts[p]->dims[axis];
    }
    enum cxr_status status = nn_fold_set(out, dtype, first->rank, dims, err);
    if (status != CXR_OK)
        return status;
    size_t outer = 1;
    for (int64_t k = 0; k < axis; k++)
        outer *= (size_t)dims[k];
    size_t at = 0;
    for (size_t o = 0; o < outer; o++) {
        for (size_t p = 0; p < count; p++) {
            size_t chunk = outer ? parts[p]->count / outer : 0;
            for (size_t k = 0; k < chunk; k++)
                put(out, at++, nn_fold_get(parts[p], o * chunk + k));
        }
    }
    return CXR_OK;
}

enum cxr_status nn_fold_cast(struct nn_tensor *out, const struct nn_tensor *in, enum nn_dtype dtype,
                             struct cxr_err *err)
{
    enum cxr_status status = nn_fold_set(out, dtype, in->rank, in->dims, err);
    if (status != CXR_OK)
        return status;
    for (size_t i = 0; i < in->count; i++) {
        double value = nn_fold_get(in, i);
        if (dtype == NN_I64 && !(fabs(value) < 9.2e18))
            return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "ONNX: Cast of a value out of range");
        put(out, i, value);
    }
    return CXR_OK;
}

enum cxr_status nn_fold_transpose(struct nn_tensor *out, const struct nn_tensor *in,
                                  const int64_t *perm, struct cxr_err *err)
{
    int64_t dims[CXR_NN_MAX_RANK];
    for (uint32_t k = 0; k < in->rank; k++)
        dims[k] = in->dims[perm[k]];
    enum cxr_status status = nn_fold_set(out, in->dtype, in->rank, dims, err);
    if (status != CXR_OK)
        return status;
    size_t in_strides[CXR_NN_MAX_RANK];
    size_t stride = 1;
    for (uint32_t k = in->rank; k-- > 0;) {
        in_strides[k] = stride;
        stride *= (size_t)in->dims[k];
    }
    for (size_t i = 0; i < out->count; i++) {
        size_t rest = i, offset = 0;
        for (uint32_t k = in->rank; k-- > 0;) {
            size_t index = rest % (size_t)dims[k];
            rest /= (size_t)dims[k];
            offset += index * in_strides[perm[k]];
        }
        put(out, i, nn_fold_get(in, offset));
    }
    return CXR_OK;
}
