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
/* Whether forward passes spread over the pool (true, the default) or run on the calling thread
 * alone. A hint read at the start of each pass, settable from any thread at any time: a server
 * with other requests in flight runs passes serially, so their PNG and PDF work uses the other
 * cores instead of the pool spinning while it waits for a core. Results are the same either way
 * (every output element is computed by one thread with the same kernel). */
void cxr_nn_runtime_set_parallel(struct cxr_nn_runtime *runtime, bool parallel);
/* Most bytes of activations plus outputs one model may plan (default 4 GiB); models needing
 * more fail to load with CXR_ERR_LIMIT. Set before loading; not thread safe. */
void cxr_nn_runtime_set_memory_limit(struct cxr_nn_runtime *runtime, size_t bytes);

/* Loads and plans a model. Unsupported operators or attributes fail here, naming the node and
 * the operator (CXR_ERR_UNSUPPORTED); malformed files give CXR_ERR_MALFORMED. A symbolic batch
 * dimension is fixed to 1. The model keeps a reference to the runtime, which must outlive it. */
enum cxr_status cxr_nn_model_load(struct cxr_nn_runtime *runtime, const char *path,
                                  const struct cxr_limits *limits, struct cxr_nn_model **model,
                                  struct cxr_err *err);
/* The same from an ONNX file already in memory (bytes are not kept; the fuzz target). */
enum cxr_status cxr_nn_model_load_memory(struct cxr_nn_runtime *runtime, const void *bytes,
                                         size_t size, const struct cxr_limits *limits,
                                         struct cxr_nn_model **model, struct cxr_err *err);
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

/* ---- Model statistics (cxrd model-info) ---- */

struct cxr_nn_model_stats {
    uint64_t parameters;     /* float elements of the ONNX initializers, as stored */
    uint64_t flops;          /* multiply-adds counted as 2, Conv/Gemm/MatMul only */
    size_t activation_bytes; /* the planned activation arena: peak activation memory */
    size_t weight_bytes;     /* packed weights and constants held for the forward pass */
    size_t onnx_nodes;       /* nodes in the ONNX graph */
    size_t planned_steps;    /* operators executed per forward pass after folding/fusion */
};

void cxr_nn_model_stats_get(const struct cxr_nn_model *model, struct cxr_nn_model_stats *stats);

/* Operator histogram of the ONNX graph as loaded (before folding): entry i of
 * cxr_nn_model_op_type_count() (i must be below it). name is owned by the model. */
size_t cxr_nn_model_op_type_count(const struct cxr_nn_model *model);
void cxr_nn_model_op_type(const struct cxr_nn_model *model, size_t i, const char **name,
                          size_t *count);

/* metadata_props in file order; key and value are owned by the model. */
size_t cxr_nn_model_metadata_count(const struct cxr_nn_model *model);
void cxr_nn_model_metadata_at(const struct cxr_nn_model *model, size_t i, const char **key,
                              const char **value);

/* ---- Float32 .npy files (NumPy format v1/v2/v3 headers, '<f4', C order) ---- */

struct cxr_nn_array {
    uint32_t rank;
    int64_t dims[CXR_NN_MAX_RANK];
    size_t count; /* product of dims (1 for rank 0) */
    float *data;  /* malloc'ed, owned by the array */
};

/* Reads a float32 little-endian C-order .npy file. Refuses other dtypes, Fortran order,
 * ranks above CXR_NN_MAX_RANK (CXR_ERR_UNSUPPORTED), files larger than
 * limits->max_file_bytes (CXR_ERR_LIMIT), truncated or inconsistent files (CXR_ERR_MALFORMED).
 * limits may be NULL (defaults). array is written only on success. */
enum cxr_status cxr_nn_npy_read(const char *path, const struct cxr_limits *limits,
                                struct cxr_nn_array *array, struct cxr_err *err);
/* The same from memory (bytes are not kept). */
enum cxr_status cxr_nn_npy_parse(const void *bytes, size_t size, const struct cxr_limits *limits,
                                 struct cxr_nn_array *array, struct cxr_err *err);
/* Frees data and zeroes the array; NULL is a no-op. */
void cxr_nn_array_release(struct cxr_nn_array *array);

/* Writes data (rank dims, C order) as a v1 .npy file, atomically: a temporary file in the
 * same folder, fsync, rename. Nothing is left behind on failure. */
enum cxr_status cxr_nn_npy_write(const char *path, const float *data, uint32_t rank,
                                 const int64_t *dims, struct cxr_err *err);

#endif
