/* Internals of the network runtime shared by its files: the graph as loaded from ONNX (tensors
 * and nodes), what folding and fusion turn each node into, the memory plan and the steps that
 * a forward pass runs. Only src/nn/ includes this. */
#ifndef CXR_NN_INTERNAL_H
#define CXR_NN_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthreadpool.h>
#include <xnnpack.h>

#include "nn/nn.h"

/* Element types the loader keeps; int64 exists only for load-time shape arithmetic. */
enum nn_dtype {
    NN_F32 = 1,
    NN_I64 = 7,
};

/* Most elements of one tensor, and of all activations together: far above any CNN we serve,
 * far below what a size_t multiplication of checked values can overflow. */
#define NN_MAX_TENSOR_ELEMENTS ((int64_t)1 << 31)
#define NN_MAX_ARENA_BYTES     ((size_t)4 << 30)
/* Constants computed at load (folding): shape arithmetic is tiny; refuse blow-ups. */
#define NN_MAX_FOLD_ELEMENTS ((size_t)1 << 24)

struct nn_tensor {
    char *name;
    enum nn_dtype dtype;
    uint32_t rank;
    int64_t dims[CXR_NN_MAX_RANK]; /* ONNX (logical, NCHW) shape */
    size_t count;                  /* product of dims */
    bool shaped;                   /* dims are known (every defined tensor after inference) */
    void *values;                  /* constants only: owned, ONNX row-major layout */
    int producer;                  /* node index; -1 for graph inputs and constants */
    uint32_t uses;                 /* node inputs and graph outputs naming it */
    bool graph_input, graph_output;

    /* Storage of an activation. Rank-4 activations are stored N,H,W,C ("pixels" of C
     * channels); others row-major with the last dimension as the channels. A tensor lives
     * inside its root's storage at channel_offset; every member of a root shares its stride
     * (floats from one pixel to the next). Concat in place makes inputs members of a root. */
    bool nhwc;
    int root;
    size_t channel_offset;
    size_t extent;       /* roots: channels reserved per pixel (becomes the stride) */
    size_t stride;       /* after planning, for every member */
    size_t arena_offset; /* roots: bytes into the arena */
    int first_step, last_step;
    float *data; /* after planning: this tensor's first element */
};

enum nn_kind {
    NN_KIND_NONE = 0, /* not yet decided */
    NN_KIND_DEAD,     /* folded into constants or into another node */
    NN_KIND_VIEW,     /* output is the input's storage, reinterpreted */
    NN_KIND_CONV,
    NN_KIND_MAXPOOL,
    NN_KIND_AVGPOOL,
    NN_KIND_GAP,
    NN_KIND_FC,
    NN_KIND_MATMUL, /* both operands are activations: naive batched matrix product */
    NN_KIND_GEMM,   /* Gemm with transA or a [M,N] C: reference loop */
    NN_KIND_BINARY,
    NN_KIND_AFFINE, /* y = clamp(x * scale[c] + shift[c]): BatchNormalization, HardSigmoid */
    NN_KIND_CLAMP,
    NN_KIND_SIGMOID,
    NN_KIND_HARDSWISH,
    NN_KIND_CONCAT,
    NN_KIND_RESHAPE, /* a copy from one layout to another, same logical order */
    NN_KIND_TRANSPOSE,
    NN_KIND_RESIZE,
    NN_KIND_PAD,
};

enum nn_binary_op {
    NN_ADD,
    NN_SUB,
    NN_MUL,
    NN_DIV,
};

struct nn_pool2d {
    uint32_t kernel[2], stride[2], dilation[2];
    uint32_t pad[4]; /* top, left, bottom, right (ceil_mode folded into bottom/right) */
    bool count_include_pad;
    bool naive; /* XNNPACK refused the shape: run the reference loop */
};

struct nn_node {
    char *name;
    char *op_type;
    size_t input_count, output_count;
    int *inputs; /* tensor indices; -1 where an optional input is empty */
    int *outputs;
    const void *proto; /* Onnx__NodeProto, valid during load only */

    enum nn_kind kind;
    float output_min, output_max; /* fused activation bounds */
    uint64_t flops;

    /* Per-kind parameters. */
    struct nn_pool2d pool; /* conv (kernel, stride, dilation, pad), pools */
    uint32_t groups;       /* conv */
    size_t in_channels;    /* conv, fc: input channels; affine: channels */
    size_t out_channels;   /* conv, fc */
    float *weights;        /* conv: ONNX [M, C/g, kh, kw]; fc: [out, in]; owned until packed */
    float *bias;           /* conv, fc: [out]; affine: shift */
    float *scale;          /* affine: per-channel scale */
    enum nn_binary_op binary;
    int64_t perm[CXR_NN_MAX_RANK]; /* transpose */
    int64_t axis;                  /* concat */
    uint32_t resize_mode;          /* 0 nearest, 1 linear */
    uint32_t resize_coord;         /* see nn_graph.c */
    uint32_t resize_nearest;
    double resize_scale[2];
    size_t pad_begin[CXR_NN_MAX_RANK], pad_end[CXR_NN_MAX_RANK];
    float pad_value;
    float *const_operand[2]; /* binary: constants rearranged to the activation layout */
    size_t binary_shape[2][XNN_MAX_TENSOR_DIMS];
    size_t binary_rank[2];

    xnn_operator_t op;
};

/* One executed operation of a forward pass. Input and output conversions (graph layout to the
 * internal one and back) are steps too. */
enum nn_step_type {
    NN_STEP_INPUT,
    NN_STEP_NODE,
    NN_STEP_OUTPUT,
};

struct nn_step {
    enum nn_step_type type;
    size_t index; /* graph input/output number, or node index */
};

struct nn_op_count {
    char *op_type;
    size_t count;
};

struct nn_metadata {
    char *key;
    char *value;
};

struct cxr_nn_runtime {
    pthreadpool_t pool;
    uint32_t threads;
    atomic_bool serial;  /* cxr_nn_runtime_set_parallel(false): passes run on the caller only */
    size_t memory_limit; /* activation arena + output buffers of one model */
};

struct cxr_nn_model {
    struct cxr_nn_runtime *runtime;
    struct nn_tensor *tensors;
    size_t tensor_count, tensor_capacity;
    struct nn_node *nodes;
    size_t node_count;
    int *input_tensors, *output_tensors;
    size_t input_count, output_count;
    struct cxr_nn_tensor_info *input_info, *output_info;
    float **output_data; /* dense NCHW copies of the graph outputs */
    const float *const *run_inputs;

    struct nn_step *steps;
    size_t step_count;
    unsigned char *arena;
    size_t arena_bytes;
    size_t output_bytes;

    struct nn_op_count *op_counts;
    size_t op_count_count;
    struct nn_metadata *metadata;
    size_t metadata_count;
    struct cxr_nn_model_stats stats;
    bool failed;        /* a run failed part-way: refuse further use */
    double *profile_ms; /* CXR_NN_PROFILE set: milliseconds spent per step, all runs */
    size_t profile_runs;
};

/* nn_onnx.c: parses the file into tensors and nodes (attributes stay in *proto_out, which the
 * caller frees with nn_onnx_free after the graph is compiled). */
/* owned (may be NULL) is freed as soon as protobuf-c has copied what it needs. */
enum cxr_status nn_onnx_load(struct cxr_nn_model *model, const unsigned char *bytes, size_t size,
                             unsigned char *owned, void **proto_out, struct cxr_err *err);
void nn_onnx_free(void *proto);
int nn_tensor_find(const struct cxr_nn_model *model, const char *name);
/* Adds a tensor (name copied); returns its index or -1 when out of memory. */
int nn_tensor_add(struct cxr_nn_model *model, const char *name);
enum cxr_status nn_count_elements(uint32_t rank, const int64_t *dims, size_t *count,
                                  struct cxr_err *err);

/* Attribute access for the node being compiled (ONNX AttributeProto by name). */
bool nn_attr_has(const struct nn_node *node, const char *name);
enum cxr_status nn_attr_int(const struct nn_node *node, const char *name, int64_t fallback,
                            int64_t *value, struct cxr_err *err);
enum cxr_status nn_attr_float(const struct nn_node *node, const char *name, float fallback,
                              float *value, struct cxr_err *err);
/* Copies at most max ints; *count = how many the attribute has (0 when absent). */
enum cxr_status nn_attr_ints(const struct nn_node *node, const char *name, int64_t *values,
                             size_t max, size_t *count, struct cxr_err *err);
/* Copies a string attribute into buffer (truncated to size - 1 bytes; "" when it holds a NUL
 * byte) and returns buffer, or NULL when the attribute is absent. */
const char *nn_attr_string(const struct nn_node *node, const char *name, char *buffer, size_t size);
/* Fails naming the node when it carries an attribute outside allowed (NULL-terminated). */
enum cxr_status nn_attr_check(const struct nn_node *node, const char *const *allowed,
                              struct cxr_err *err);
/* A Constant node's value as a new constant tensor into model->tensors[tensor]. */
enum cxr_status nn_attr_constant(struct cxr_nn_model *model, const struct nn_node *node, int tensor,
                                 struct cxr_err *err);

/* nn_graph.c: shape inference, constant folding, operator checks, fusion. */
enum cxr_status nn_graph_compile(struct cxr_nn_model *model, struct cxr_err *err);

/* nn_plan.c: storage (views, concat in place), liveness, arena offsets, the step list. */
enum cxr_status nn_plan_build(struct cxr_nn_model *model, struct cxr_err *err);
bool nn_kind_strided_input(enum nn_kind kind);
bool nn_kind_strided_output(enum nn_kind kind);
/* Pixels (all but the channel dimension) and channels of a tensor's storage. */
size_t nn_tensor_pixels(const struct nn_tensor *tensor);
size_t nn_tensor_channels(const struct nn_tensor *tensor);

/* nn_exec.c: creates and sets up every XNNPACK operator (after planning); runs a pass. */
enum cxr_status nn_exec_prepare(struct cxr_nn_model *model, struct cxr_err *err);
enum cxr_status nn_exec_run(struct cxr_nn_model *model, struct cxr_err *err);
void nn_exec_release(struct cxr_nn_model *model);
/* Per-step milliseconds to stderr (CXR_NN_PROFILE=1 in the environment at load). */
void nn_exec_profile_print(const struct cxr_nn_model *model);

/* nn_kernels.c: the operations XNNPACK lacks, parallel over the runtime's pool. */
void nn_kernel_affine(pthreadpool_t pool, const struct nn_tensor *in, struct nn_tensor *out,
                      const float *scale, const float *shift, float lo, float hi);
/* Copies in to out element by element in logical order (any layouts, same count). */
void nn_kernel_reshape(const struct nn_tensor *in, struct nn_tensor *out);
void nn_kernel_transpose(const struct nn_tensor *in, struct nn_tensor *out, const int64_t *perm);
/* Writes in into out at offset `offset` along axis (logical indices). */
void nn_kernel_concat_part(pthreadpool_t pool, const struct nn_tensor *in, struct nn_tensor *out,
                           int64_t axis, int64_t offset);
void nn_kernel_pool(const struct nn_tensor *in, struct nn_tensor *out, const struct nn_pool2d *pool,
                    bool max, float lo, float hi);
void nn_kernel_resize_nearest(const struct nn_tensor *in, struct nn_tensor *out,
                              const struct nn_node *node);
void nn_kernel_resize_linear(const struct nn_tensor *in, struct nn_tensor *out,
                             const struct nn_node *node);
/* Y[M,N] = A x W^T + bias (W [N,K], bias [M,N]); A is [M,K], or [K,M] when trans_a. */
void nn_kernel_gemm(const struct nn_tensor *a, struct nn_tensor *out, const float *weights,
                    const float *bias, bool trans_a, float lo, float hi);
void nn_kernel_matmul(const struct nn_tensor *a, const struct nn_tensor *b, struct nn_tensor *out);
/* Offset in floats of logical index idx (rank entries) from tensor->data. */
size_t nn_tensor_offset(const struct nn_tensor *tensor, const int64_t *idx);

#endif
