/* Fusion after the graph is compiled: BatchNormalization folded into the Conv before it,
 * Relu/Clip into the bounds of the layer before them, x * HardSigmoid(x) into HardSwish. Each
 * rule rewires the graph so the dead node is skipped by the planner. */
#include <math.h>
#include <string.h>

#include "nn/nn_fold.h"

static void count_uses(struct cxr_nn_model *model)
{
    for (size_t t = 0; t < model->tensor_count; t++)
        model->tensors[t].uses = model->tensors[t].graph_output ? 1 : 0;
    for (size_t i = 0; i < model->node_count; i++) {
        const struct nn_node *node = &model->nodes[i];
        if (node->kind == NN_KIND_DEAD)
            continue;
        for (size_t k = 0; k < node->input_count; k++) {
            if (node->inputs[k] >= 0)
                model->tensors[node->inputs[k]].uses++;
        }
    }
}

/* The node producing tensor t, when only one consumer reads t and t is not an output. */
static struct nn_node *sole_producer(struct cxr_nn_model *model, int t)
{
    const struct nn_tensor *tensor = &model->tensors[t];
    if (tensor->producer < 0 || tensor->uses != 1 || tensor->graph_output)
        return NULL;
    return &model->nodes[tensor->producer];
}

/* layer now writes what the fused node wrote, and the fused node is dead. */
static void absorb(struct cxr_nn_model *model, struct nn_node *layer, struct nn_node *fused)
{
    int fused_out = fused->outputs[0];
    int layer_out = layer->outputs[0];
    layer->outputs[0] = fused_out;
    model->tensors[fused_out].producer = (int)(layer - model->nodes);
    model->tensors[layer_out].producer = -1;
    model->tensors[layer_out].shaped = false;
    fused->kind = NN_KIND_DEAD;
}

/* BatchNormalization after a Conv becomes the Conv's weights and bias. */
static void fuse_batchnorm(struct cxr_nn_model *model, struct nn_node *bn)
{
    struct nn_node *conv = sole_producer(model, bn->inputs[0]);
    if (conv == NULL || conv->kind != NN_KIND_CONV || isfinite(conv->output_min) ||
        isfinite(conv->output_max))
        return;
    size_t per_output =
            conv->in_channels / conv->groups * conv->pool.kernel[0] * conv->pool.kernel[1];
    for (size_t o = 0; o < conv->out_channels; o++) {
        for (size_t k = 0; k < per_output; k++)
            conv->weights[o * per_output + k] *= bn->scale[o];
        conv->bias[o] = conv->bias[o] * bn->scale[o] + bn->bias[o];
    }
    conv->output_min = bn->output_min;
    conv->output_max = bn->output_max;
    absorb(model, conv, bn); /* the Conv now writes the BatchNormalization's output */
}

static bool takes_bounds(enum nn_kind kind)
{
    return kind == NN_KIND_CONV || kind == NN_KIND_FC || kind == NN_KIND_GEMM ||
           kind == NN_KIND_BINARY || kind == NN_KIND_AFFINE || kind == NN_KIND_MAXPOOL ||
           kind == NN_KIND_AVGPOOL || kind == NN_KIND_GAP || kind == NN_KIND_CLAMP;
}

/* Relu/Clip after a layer becomes that layer's output bounds. */
static void fuse_clamp(struct cxr_nn_model *model, struct nn_node *clamp)
{
    struct nn_node *layer = sole_producer(model, clamp->inputs[0]);
    if (layer == NULL || !takes_bounds(layer->kind) || layer->output_count != 1)
        return;
    layer->output_min = fmaxf(layer->output_min, clamp->output_min);
    layer->output_max = fminf(layer->output_max, clamp->output_max);
    absorb(model, layer, clamp);
}

/* x * HardSigmoid(x) with alpha 1/6, beta 1/2 is HardSwish (MobileNet-V3 at opset 13). */
static void fuse_hardswish(struct cxr_nn_model *model, struct nn_node *mul)
{
    if (mul->binary != NN_MUL)
        return;
    for (int side = 0; side < 2; side++) {
        struct nn_node *gate = sole_producer(model, mul->inputs[side]);
        int x = mul->inputs[1 - side];
        if (gate == NULL || gate->kind != NN_KIND_AFFINE || gate->inputs[0] != x ||
            strcmp(gate->op_type, "HardSigmoid") != 0 || gate->output_min != 0.0f ||
            gate->output_max != 1.0f || fabsf(gate->scale[0] - 1.0f / 6.0f) > 1e-7f ||
            fabsf(gate->bias[0] - 0.5f) > 1e-7f ||
            model->tensors[x].count != model->tensors[mul->outputs[0]].count)
            continue;
        gate->kind = NN_KIND_DEAD;
        mul->kind = NN_KIND_HARDSWISH;
        mul->inputs[0] = x;
        mul->input_count = 1;
        return;
    }
}

void nn_fuse_graph(struct cxr_nn_model *model)
{
    /* In graph order: each rule looks back at the node producing its input. */
    count_uses(model);
    for (size_t i = 0; i < model->node_count; i++) {
        struct nn_node *node = &model->nodes[i];
        if (node->kind == NN_KIND_AFFINE && strcmp(node->op_type, "BatchNormalization") == 0)
            fuse_batchnorm(model, node);
        else if (node->kind == NN_KIND_CLAMP)
            fuse_clamp(model, node);
        else if (node->kind == NN_KIND_BINARY)
            fuse_hardswish(model, node);
        count_uses(model);
    }
}
