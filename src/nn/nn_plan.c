/* The static memory plan: which tensors share storage (views, Concat written in place through
 * channel strides), when each storage is live, and where it sits in one arena allocated at
 * load, so that a forward pass allocates nothing. */
#include <stdlib.h>
#include <string.h>

#include "nn/nn_fold.h"

#define ARENA_ALIGN 64

bool nn_kind_strided_input(enum nn_kind kind)
{
    return kind != NN_KIND_BINARY && kind != NN_KIND_PAD && kind != NN_KIND_MATMUL;
}

bool nn_kind_strided_output(enum nn_kind kind)
{
    return kind == NN_KIND_CONV || kind == NN_KIND_MAXPOOL || kind == NN_KIND_AVGPOOL ||
           kind == NN_KIND_GAP || kind == NN_KIND_FC || kind == NN_KIND_AFFINE ||
           kind == NN_KIND_CLAMP || kind == NN_KIND_SIGMOID || kind == NN_KIND_HARDSWISH ||
           kind == NN_KIND_RESHAPE || kind == NN_KIND_TRANSPOSE || kind == NN_KIND_CONCAT;
}

size_t nn_tensor_channels(const struct nn_tensor *tensor)
{
    if (tensor->rank == 0)
        return 1;
    return (size_t)(tensor->nhwc ? tensor->dims[1] : tensor->dims[tensor->rank - 1]);
}

size_t nn_tensor_pixels(const struct nn_tensor *tensor)
{
    size_t channels = nn_tensor_channels(tensor);
    return channels ? tensor->count / channels : 0;
}

/* Storage is the same byte order in NCHW and NHWC when H*W == 1 or C == 1. */
static bool row_major_equivalent(const struct nn_tensor *tensor)
{
    return !tensor->nhwc || tensor->dims[2] * tensor->dims[3] == 1 || tensor->dims[1] == 1;
}

/* Final storage root of t and t's channel offset in it. */
static int resolve(const struct cxr_nn_model *model, int t, size_t *offset)
{
    size_t total = 0;
    while (model->tensors[t].root != t) {
        total += model->tensors[t].channel_offset;
        t = model->tensors[t].root;
    }
    if (offset)
        *offset = total;
    return t;
}

static bool is_activation(const struct nn_tensor *tensor)
{
    return tensor->shaped && tensor->values == NULL;
}

/* Views: the output shares its input's storage when the byte order agrees. */
static void plan_views(struct cxr_nn_model *model, bool *view_output)
{
    for (size_t i = 0; i < model->node_count; i++) {
        struct nn_node *node = &model->nodes[i];
        if (node->kind != NN_KIND_VIEW && node->kind != NN_KIND_RESHAPE)
            continue;
        struct nn_tensor *in = &model->tensors[node->inputs[0]];
        struct nn_tensor *out = &model->tensors[node->outputs[0]];
        bool same = node->kind == NN_KIND_VIEW && in->rank == out->rank;
        bool compatible = row_major_equivalent(in) && row_major_equivalent(out) &&
                          nn_tensor_channels(in) == nn_tensor_channels(out) &&
                          nn_tensor_pixels(in) == nn_tensor_pixels(out);
        if (!same && !compatible) {
            node->kind = NN_KIND_RESHAPE;
            continue;
        }
        node->kind = NN_KIND_VIEW;
        out->root = node->inputs[0];
        out->channel_offset = 0;
        view_output[node->outputs[0]] = true;
    }
}

/* Marks tensors read by an operator that needs dense storage, through views. */
static void plan_dense(struct cxr_nn_model *model, bool *must_dense)
{
    for (size_t i = 0; i < model->node_count; i++) {
        const struct nn_node *node = &model->nodes[i];
        if (node->kind == NN_KIND_DEAD || node->kind == NN_KIND_VIEW ||
            nn_kind_strided_input(node->kind))
            continue;
        for (size_t k = 0; k < node->input_count; k++) {
            int t = node->inputs[k];
            while (t >= 0) {
                must_dense[t] = true;
                t = model->tensors[t].root == t ? -1 : model->tensors[t].root;
            }
        }
    }
    /* A view is dense only if what it views is: propagate to the viewers too. */
    for (size_t t = 0; t < model->tensor_count; t++) {
        size_t offset;
        if (model->tensors[t].root != (int)t && must_dense[resolve(model, (int)t, &offset)])
            must_dense[t] = true;
    }
}

/* Concat along channels written in place: each input is produced straight into its slice of
 * one storage whose pixel stride is the widest concatenation (DenseNet's blocks). */
static void plan_concat(struct cxr_nn_model *model, struct nn_node *node, const bool *view_output,
                        const bool *must_dense)
{
    struct nn_tensor *out = &model->tensors[node->outputs[0]];
    int64_t channel_axis = out->nhwc ? 1 : (int64_t)out->rank - 1;
    if (node->axis != channel_axis || must_dense[node->outputs[0]] || out->graph_input)
        return;
    size_t base_offset;
    int root = resolve(model, node->inputs[0], &base_offset);
    struct nn_tensor *root_tensor = &model->tensors[root];
    if (view_output[node->inputs[0]] || must_dense[root] || !is_activation(root_tensor) ||
        (root_tensor->producer >= 0 &&
         !nn_kind_strided_output(model->nodes[root_tensor->producer].kind)))
        return;
    /* Check every input first: all are placed, or none. */
    size_t expected = base_offset, extent = root_tensor->extent;
    for (size_t k = 0; k < node->input_count; k++) {
        int t = node->inputs[k];
        struct nn_tensor *in = &model->tensors[t];
        size_t offset;
        int in_root = resolve(model, t, &offset);
        size_t channels = nn_tensor_channels(in);
        if (view_output[t] || must_dense[t])
            return;
        if (in_root == root && offset == expected) {
            /* already in place */
        } else if (in_root == t && in->extent == channels && expected == extent &&
                   in->producer >= 0 && !in->graph_input &&
                   nn_kind_strided_output(model->nodes[in->producer].kind)) {
            for (size_t j = 0; j < k; j++) {
                if (node->inputs[j] == t)
                    return;
            }
            extent += channels;
        } else {
            return;
        }
        expected += channels;
    }
    expected = base_offset;
    for (size_t k = 0; k < node->input_count; k++) {
        int t = node->inputs[k];
        struct nn_tensor *in = &model->tensors[t];
        if (t != root && in->root == t) {
            in->root = root;
            in->channel_offset = expected;
            root_tensor->extent += nn_tensor_channels(in);
        }
        expected += nn_tensor_channels(in);
    }
    out->root = root;
    out->channel_offset = base_offset;
    node->kind = NN_KIND_VIEW; /* nothing left to do at run time */
}

struct placement {
    int tensor;
    size_t bytes;
};

static int by_size_descending(const void *a, const void *b)
{
    const struct placement *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return x->tensor - y->tensor;
}

enum cxr_status nn_plan_build(struct cxr_nn_model *model, struct cxr_err *err)
{
    size_t n = model->tensor_count;
    bool *view_output = calloc(n + 1, sizeof(bool));
    bool *must_dense = calloc(n + 1, sizeof(bool));
    int *node_step = calloc(model->node_count + 1, sizeof(int));
    struct placement *order = calloc(n + 1, sizeof(*order));
    model->steps = calloc(model->input_count + model->node_count + model->output_count + 1,
                          sizeof(*model->steps));
    enum cxr_status status = CXR_OK;
    if (!view_output || !must_dense || !node_step || !order || !model->steps) {
        status = cxr_err_set(err, CXR_ERR_NOMEM, "nn: out of memory planning");
        goto done;
    }
    for (size_t t = 0; t < n; t++) {
        struct nn_tensor *tensor = &model->tensors[t];
        tensor->nhwc = is_activation(tensor) && tensor->rank == 4;
        tensor->root = (int)t;
        tensor->extent = is_activation(tensor) ? nn_tensor_channels(tensor) : 0;
    }
    plan_views(model, view_output);
    plan_dense(model, must_dense);
    for (size_t i = 0; i < model->node_count; i++) {
        if (model->nodes[i].kind == NN_KIND_CONCAT)
            plan_concat(model, &model->nodes[i], view_output, must_dense);
    }

    /* Steps: inputs, the nodes that do work, outputs. */
    size_t steps = 0;
    for (size_t i = 0; i < model->input_count; i++)
        model->steps[steps++] = (struct nn_step){NN_STEP_INPUT, i};
    for (size_t i = 0; i < model->node_count; i++) {
        node_step[i] = -1;
        enum nn_kind kind = model->nodes[i].kind;
        if (kind == NN_KIND_DEAD || kind == NN_KIND_VIEW)
            continue;
        node_step[i] = (int)steps;
        model->steps[steps++] = (struct nn_step){NN_STEP_NODE, i};
    }
    for (size_t i = 0; i < model->output_count; i++)
        model->steps[steps++] = (struct nn_step){NN_STEP_OUTPUT, i};
    model->step_count = steps;
    model->stats.planned_steps = steps - model->input_count - model->output_count;

    /* Liveness of each root: from the first write of any member to the last read. */
    for (size_t t = 0; t < n; t++) {
        model->tensors[t].first_step = -1;
        model->tensors[t].last_step = -1;
    }
    for (size_t s = 0; s < steps; s++) {
        const struct nn_step *step = &model->steps[s];
        int writes = -1;
        const int *reads = NULL;
        size_t read_count = 0;
        int single_read;
        if (step->type == NN_STEP_INPUT) {
            writes = model->input_tensors[step->index];
        } else if (step->type == NN_STEP_OUTPUT) {
            single_read = model->output_tensors[step->index];
            reads = &single_read;
            read_count = 1;
        } else {
            const struct nn_node *node = &model->nodes[step->index];
            writes = node->outputs[0];
            reads = node->inputs;
            read_count = node->input_count;
        }
        if (writes >= 0) {
            struct nn_tensor *root = &model->tensors[resolve(model, writes, NULL)];
            if (root->first_step < 0)
                root->first_step = (int)s;
            root->last_step = root->last_step < (int)s ? (int)s : root->last_step;
        }
        for (size_t k = 0; k < read_count; k++) {
            if (reads[k] < 0 || !is_activation(&model->tensors[reads[k]]))
                continue;
            struct nn_tensor *root = &model->tensors[resolve(model, reads[k], NULL)];
            root->last_step = (int)s;
        }
    }

    /* Best fit, largest first: each storage goes to the lowest offset where it overlaps no
     * placed storage that is live at the same time. */
    size_t roots = 0;
    for (size_t t = 0; t < n; t++) {
        struct nn_tensor *tensor = &model->tensors[t];
        if (tensor->root != (int)t || tensor->first_step < 0)
            continue;
        size_t pixels = nn_tensor_pixels(tensor);
        if (tensor->extent && pixels > (NN_MAX_ARENA_BYTES / sizeof(float)) / tensor->extent) {
            status = cxr_err_set(err, CXR_ERR_LIMIT, "nn: activation '%s' too large", tensor->name);
            goto done;
        }
        size_t bytes = pixels * tensor->extent * sizeof(float) + XNN_EXTRA_BYTES;
        order[roots++] =
                (struct placement){(int)t, (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN};
    }
    qsort(order, roots, sizeof(*order), by_size_descending);
    size_t arena = 0;
    for (size_t i = 0; i < roots; i++) {
        struct nn_tensor *tensor = &model->tensors[order[i].tensor];
        size_t offset = 0;
        for (bool moved = true; moved;) {
            moved = false;
            for (size_t j = 0; j < i; j++) {
                const struct nn_tensor *other = &model->tensors[order[j].tensor];
                bool overlap_time = other->first_step <= tensor->last_step &&
                                    tensor->first_step <= other->last_step;
                bool overlap_space = other->arena_offset < offset + order[i].bytes &&
                                     offset < other->arena_offset + order[j].bytes;
                if (overlap_time && overlap_space) {
                    offset = other->arena_offset + order[j].bytes;
                    moved = true;
                }
            }
        }
        tensor->arena_offset = offset;
        if (offset + order[i].bytes > arena)
            arena = offset + order[i].bytes;
        if (arena > NN_MAX_ARENA_BYTES) {
            status = cxr_err_set(err, CXR_ERR_LIMIT, "nn: activations need more than %zu bytes",
                                 NN_MAX_ARENA_BYTES);
            goto done;
        }
    }
    model->arena_bytes = arena;
    model->stats.activation_bytes = arena;
    model->arena = aligned_alloc(ARENA_ALIGN, arena ? arena : ARENA_ALIGN);
    if (model->arena == NULL) {
        status = cxr_err_set(err, CXR_ERR_NOMEM, "nn: cannot allocate %zu bytes of activations",
                             arena);
        goto done;
    }
    for (size_t t = 0; t < n; t++) {
        struct nn_tensor *tensor = &model->tensors[t];
        if (!is_activation(tensor))
            continue;
        size_t offset;
        const struct nn_tensor *root = &model->tensors[resolve(model, (int)t, &offset)];
        tensor->stride = root->extent;
        if (tensor->root != (int)t && view_output[t] && nn_tensor_channels(tensor) &&
            root->extent == nn_tensor_channels(root))
            tensor->stride = nn_tensor_channels(tensor); /* dense view, maybe new shape */
        tensor->data = (float *)(model->arena + root->arena_offset) + offset;
    }
done:
    free(view_output);
    free(must_dense);
    free(node_step);
    free(order);
    return status;
}
