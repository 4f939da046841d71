/* `cxrd model-info MODEL.onnx`: what the runtime makes of a model — inputs, outputs, operator
 * histogram, parameters, FLOPs, planned activation memory and metadata_props. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "nn/nn.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: cxrd model-info MODEL.onnx\n\n"
                 "Loads an ONNX model as the server would and prints its inputs, outputs,\n"
                 "operators, parameters, FLOPs per forward pass, peak activation memory and\n"
                 "metadata. Exit status 1 if the model cannot be loaded (the message names\n"
                 "the unsupported node and operator).\n");
}

static void print_tensor(const struct cxr_nn_tensor_info *info)
{
    printf("  %s [", info->name);
    for (uint32_t k = 0; k < info->rank; k++)
        printf("%s%lld", k ? "," : "", (long long)info->dims[k]);
    printf("] float32\n");
}

int cxr_cli_model_info(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-') {
        usage(stderr);
        return 2;
    }
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_nn_runtime *runtime = NULL;
    struct cxr_nn_model *model = NULL;
    if (cxr_nn_runtime_create(1, &runtime, &err) != CXR_OK ||
        cxr_nn_model_load(runtime, argv[1], NULL, &model, &err) != CXR_OK) {
        fprintf(stderr, "cxrd model-info: %s\n", err.message);
        cxr_nn_runtime_destroy(runtime);
        return 1;
    }
    printf("model: %s\n", argv[1]);
    printf("inputs:\n");
    for (size_t i = 0; i < cxr_nn_model_input_count(model); i++)
        print_tensor(cxr_nn_model_input(model, i));
    printf("outputs:\n");
    for (size_t i = 0; i < cxr_nn_model_output_count(model); i++)
        print_tensor(cxr_nn_model_output(model, i));
    struct cxr_nn_model_stats stats;
    cxr_nn_model_stats_get(model, &stats);
    printf("operators: %zu nodes\n", stats.onnx_nodes);
    for (size_t i = 0; i < cxr_nn_model_op_type_count(model); i++) {
        const char *name;
        size_t count;
        cxr_nn_model_op_type(model, i, &name, &count);
        printf("  %-20s %zu\n", name, count);
    }
    printf("planned steps: %zu (after folding and fusion)\n", stats.planned_steps);
    printf("parameters: %llu\n", (unsigned long long)stats.parameters);
    printf("flops: %llu (%.3f GFLOP per forward pass)\n", (unsigned long long)stats.flops,
           (double)stats.flops / 1e9);
    printf("peak activation memory: %zu bytes (%.1f MiB)\n", stats.activation_bytes,
           (double)stats.activation_bytes / (1024.0 * 1024.0));
    printf("weights held: %zu bytes (%.1f MiB)\n", stats.weight_bytes,
           (double)stats.weight_bytes / (1024.0 * 1024.0));
    printf("metadata:\n");
    for (size_t i = 0; i < cxr_nn_model_metadata_count(model); i++) {
        const char *key, *value;
        cxr_nn_model_metadata_at(model, i, &key, &value);
        printf("  %s: %s\n", key, value);
    }
    cxr_nn_model_destroy(model);
    cxr_nn_runtime_destroy(runtime);
    return 0;
}
