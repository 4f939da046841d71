/* Neural-network runtime: loads an ONNX model (protobuf-c), folds and fuses what it can, plans
 * every buffer once, and runs forward passes on XNNPACK operators over one shared pthreadpool.
 *
 * Ownership: outputs are written only on success. Threads: a runtime may be shared by any
 * number of models; one model runs one forward pass at a time (callers serialise run calls on
 * the same model; the pass itself uses every thread of the runtime's pool). */
#ifndef CXR_NN_H
#define CXR_NN_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define CXR_NN_MAX_RANK 8

struct cxr_nn_runtime;
struct cxr_nn_model;

/* threads == 0 means one per online CPU. Results are identical for any thread count. */
enum cxr_status cxr_nn_runtime_create(uint32_t threads, struct cxr_nn_runtime **runtime,
                                      struct cxr_err *err);
void cxr_nn_runtime_destroy(struct cxr_nn_runtime *runtime);
uint32_t cxr_nn_runtime_threads(const struct cxr_nn_runtime *runtime);

/* Loads and plans a model. Unsupported operators or attributes fail here, naming the node and
 * the operator (CXR_ERR_UNSUPPORTED); malformed files give CXR_ERR_MALFORMED. A symbolic batch
 * dimension is fixed to 1. The model keeps a reference to the runtime, which must outlive it. */
enum cxr_status cxr_nn_model_load(struct cxr_nn_runtime *runtime, const char *path,
                                  const struct cxr_limits *limits, struct cxr_nn_model **model,
                                  struct cxr_err *err);
void cxr_nn_model_destroy(struct cxr_nn_model *model);

struct cxr_nn_tensor_info {
    const char *name;
    uint32_t rank;
    int64_t dims[CXR_NN_MAX_RANK];
};

size_t cxr_nn_model_input_count(const struct cxr_nn_model *model);
size_t cxr_nn_model_output_count(const struct cxr_nn_model *model);
const struct cxr_nn_tensor_info *cxr_nn_model_input(const struct cxr_nn_model *model, size_t i);
const struct cxr_nn_tensor_info *cxr_nn_model_output(const struct cxr_nn_model *model, size_t i);

/* Value of a metadata_props key, NULL when absent. Owned by the model. */
const char *cxr_nn_model_metadata(const struct cxr_nn_model *model, const char *key);

/* One forward pass. inputs[i] points at the float32 data of graph input i (dense, row-major,
 * shape as cxr_nn_model_input reports). Allocates nothing. */
enum cxr_status cxr_nn_model_run(struct cxr_nn_model *model, const float *const *inputs,
                                 struct cxr_err *err);

/* Float32 data of graph output i from the last successful run; owned by the model and valid
 * until the next run or destroy. */
const float *cxr_nn_model_output_data(const struct cxr_nn_model *model, size_t i);

#endif
