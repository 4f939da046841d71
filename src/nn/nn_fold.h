/* Load-time constant folding helpers (nn_fold.c), used by the graph compiler. Every function
 * replaces out's values with a new constant; out is a tensor of the model being loaded. */
#ifndef CXR_NN_FOLD_H
#define CXR_NN_FOLD_H

#include "nn/nn_internal.h"

/* Gives out a fresh zeroed constant of the type and shape. */
enum cxr_status nn_fold_set(struct nn_tensor *out, enum nn_dtype dtype, uint32_t rank,
                            const int64_t *dims, struct cxr_err *err);
double nn_fold_get(const struct nn_tensor *tensor, size_t i);
/* Same values, new shape (Reshape, Flatten, Squeeze, Unsqueeze, Identity). */
enum cxr_status nn_fold_copy(struct nn_tensor *out, const struct nn_tensor *in, uint32_t rank,
                             const int64_t *dims, struct cxr_err *err);
/* NumPy broadcasting of two shapes; CXR_ERR_MALFORMED when they do not broadcast. */
enum cxr_status nn_broadcast_shape(const struct nn_tensor *a, const struct nn_tensor *b,
                                   uint32_t *rank, int64_t *dims);
enum cxr_status nn_fold_binary(struct nn_tensor *out, const struct nn_tensor *a,
                               const struct nn_tensor *b, enum nn_binary_op op,
                               struct cxr_err *err);
enum cxr_status nn_fold_gather(struct nn_tensor *out, const struct nn_tensor *data,
                               const struct nn_tensor *indices, int64_t axis, struct cxr_err *err);
enum cxr_status nn_fold_concat(struct nn_tensor *out, const struct nn_tensor *const *parts,
                               size_t count, int64_t axis, struct cxr_err *err);
enum cxr_status nn_fold_cast(struct nn_tensor *out, const struct nn_tensor *in, enum nn_dtype dtype,
                             struct cxr_err *err);
enum cxr_status nn_fold_transpose(struct nn_tensor *out, const struct nn_tensor *in,
                                  const int64_t *perm, struct cxr_err *err);

/* ---- Shared by the graph compiler's files (nn_graph.c, nn_ops.c, nn_fuse.c) ---- */

/* nn_node.c: error naming the node and its operator: "ONNX: node 'conv1' (Conv): <message>". */
enum cxr_status nn_node_error(const struct nn_node *node, enum cxr_status status,
                              struct cxr_err *err, const char *fmt, ...) CXR_PRINTF(4, 5);
/* Input/output k of a node, NULL when absent or empty. */
struct nn_tensor *nn_node_input(struct cxr_nn_model *model, const struct nn_node *node, size_t k);
struct nn_tensor *nn_node_output(struct cxr_nn_model *model, const struct nn_node *node, size_t k);
/* Gives an activation its float32 shape, checking its size. */
enum cxr_status nn_shape_set(struct nn_tensor *tensor, uint32_t rank, const int64_t *dims,
                             struct cxr_err *err);
/* Compute operators (nn_ops.c). CXR_ERR_NOT_FOUND when op_type is not one of them. */
enum cxr_status nn_ops_compile(struct cxr_nn_model *model, struct nn_node *node,
                               struct cxr_err *err);
/* Fusion of a compiled graph (nn_fuse.c): rewires fused nodes and marks them dead. */
void nn_fuse_graph(struct cxr_nn_model *model);

#endif
