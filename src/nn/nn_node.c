/* What every operator's compile step uses on the node in hand: its inputs and outputs, errors
 * that name it, and giving an output its shape. */
#include <stdarg.h>
#include <stdio.h>

#include "nn/nn_fold.h"

enum cxr_status nn_node_error(const struct nn_node *node, enum cxr_status status,
                              struct cxr_err *err, const char *fmt, ...)
{
    char message[400];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    return cxr_err_set(err, status, "ONNX: node '%s' (%s): %s", node->name, node->op_type, message);
}

struct nn_tensor *nn_node_input(struct cxr_nn_model *model, const struct nn_node *node, size_t k)
{
    if (k >= node->input_count || node->inputs[k] < 0)
        return NULL;
    return &model->tensors[node->inputs[k]];
}

struct nn_tensor *nn_node_output(struct cxr_nn_model *model, const struct nn_node *node, size_t k)
{
    if (k >= node->output_count || node->outputs[k] < 0)
        return NULL;
    return &model->tensors[node->outputs[k]];
}

enum cxr_status nn_shape_set(struct nn_tensor *tensor, uint32_t rank, const int64_t *dims,
                             struct cxr_err *err)
{
    tensor->dtype = NN_F32;
    tensor->rank = rank;
    for (uint32_t i = 0; i < rank; i++)
        tensor->dims[i] = dims[i];
    enum cxr_status status = nn_count_elements(rank, dims, &tensor->count, err);
    if (status != CXR_OK)
        return status;
    tensor->shaped = true;
    return CXR_OK;
}
