/* The public face of the runtime (nn.h): the thread pool, loading a model (read, parse,
 * compile, plan, prepare), running it, and what `cxrd model-info` reports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"

enum cxr_status cxr_nn_runtime_create(uint32_t threads, struct cxr_nn_runtime **runtime,
                                      struct cxr_err *err)
{
    enum xnn_status code = xnn_initialize(NULL);
    if (code != xnn_status_success)
        return cxr_err_set(err,
                           code == xnn_status_unsupported_hardware ? CXR_ERR_UNSUPPORTED
                                                                   : CXR_ERR_INTERNAL,
                           "XNNPACK: initialisation failed (status %d)", (int)code);
    struct cxr_nn_runtime *created = calloc(1, sizeof(*created));
    if (created == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "nn: out of memory");
    created->pool = pthreadpool_create(threads);
    if (created->pool == NULL) {
        free(created);
        return cxr_err_set(err, CXR_ERR_NOMEM, "pthreadpool: cannot create %u threads", threads);
    }
    created->threads = (uint32_t)pthreadpool_get_threads_count(created->pool);
    created->memory_limit = NN_MAX_ARENA_BYTES;
    *runtime = created;
    return CXR_OK;
}

void cxr_nn_runtime_destroy(struct cxr_nn_runtime *runtime)
{
    if (runtime == NULL)
        return;
    pthreadpool_destroy(runtime->pool);
    free(runtime);
}

void cxr_nn_runtime_set_parallel(struct cxr_nn_runtime *runtime, bool parallel)
{
    atomic_store_explicit(&runtime->serial, !parallel, memory_order_relaxed);
}

void cxr_nn_runtime_set_memory_limit(struct cxr_nn_runtime *runtime, size_t bytes)
{
    runtime->memory_limit = bytes < NN_MAX_ARENA_BYTES ? bytes : NN_MAX_ARENA_BYTES;
}

uint32_t cxr_nn_runtime_threads(const struct cxr_nn_runtime *runtime)
{
    return runtime->threads;
}

void cxr_nn_model_destroy(struct cxr_nn_model *model)
{
    if (model == NULL)
        return;
    nn_exec_profile_print(model);
    free(model->profile_ms);
    nn_exec_release(model);
    for (size_t i = 0; i < model->tensor_count; i++) {
        free(model->tensors[i].name);
        free(model->tensors[i].values);
    }
    free(model->tensors);
    for (size_t i = 0; i < model->node_count; i++) {
        struct nn_node *node = &model->nodes[i];
        free(node->name);
        free(node->op_type);
        free(node->inputs);
        free(node->outputs);
        free(node->weights);
        free(node->bias);
        free(node->scale);
        free(node->const_operand[0]);
        free(node->const_operand[1]);
    }
    free(model->nodes);
    free(model->input_tensors);
    free(model->output_tensors);
    free(model->input_info);
    free(model->output_info);
    if (model->output_data != NULL) {
        for (size_t i = 0; i < model->output_count; i++)
            free(model->output_data[i]);
    }
    free(model->output_data);
    free(model->steps);
    free(model->arena);
    for (size_t i = 0; i < model->op_count_count; i++)
        free(model->op_counts[i].op_type);
    free(model->op_counts);
    for (size_t i = 0; i < model->metadata_count; i++) {
        free(model->metadata[i].key);
        free(model->metadata[i].value);
    }
    free(model->metadata);
    free(model);
}

static enum cxr_status count_op_types(struct cxr_nn_model *model, struct cxr_err *err)
{
    model->op_counts = calloc(model->node_count + 1, sizeof(*model->op_counts));
    if (model->op_counts == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "nn: out of memory");
    for (size_t i = 0; i < model->node_count; i++) {
        const char *op = model->nodes[i].op_type;
        size_t k = 0;
        while (k < model->op_count_count && strcmp(model->op_counts[k].op_type, op) != 0)
            k++;
        if (k == model->op_count_count) {
            model->op_counts[k].op_type = strdup(op);
            if (model->op_counts[k].op_type == NULL)
                return cxr_err_set(err, CXR_ERR_NOMEM, "nn: out of memory");
            model->op_count_count++;
        }
        model->op_counts[k].count++;
    }
    model->stats.onnx_nodes = model->node_count;
    return CXR_OK;
}

static enum cxr_status describe_io(struct cxr_nn_model *model, struct cxr_err *err)
{
    model->input_info = calloc(model->input_count + 1, sizeof(*model->input_info));
    model->output_info = calloc(model->output_count + 1, sizeof(*model->output_info));
    model->output_data = calloc(model->output_count + 1, sizeof(float *));
    if (!model->input_info || !model->output_info || !model->output_data)
        return cxr_err_set(err, CXR_ERR_NOMEM, "nn: out of memory");
    size_t output_bytes = 0;
    for (size_t i = 0; i < model->output_count; i++) {
        size_t count = model->tensors[model->output_tensors[i]].count;
        if (count > (model->runtime->memory_limit - output_bytes) / sizeof(float))
            return cxr_err_set(err, CXR_ERR_LIMIT, "nn: outputs need more than %zu bytes",
                               model->runtime->memory_limit);
        output_bytes += count * sizeof(float);
    }
    model->output_bytes = output_bytes;
    for (size_t io = 0; io < 2; io++) {
        size_t count = io ? model->output_count : model->input_count;
        for (size_t i = 0; i < count; i++) {
            const struct nn_tensor *tensor =
                    &model->tensors[io ? model->output_tensors[i] : model->input_tensors[i]];
            struct cxr_nn_tensor_info *info = io ? &model->output_info[i] : &model->input_info[i];
            info->name = tensor->name;
            info->rank = tensor->rank;
            memcpy(info->dims, tensor->dims, sizeof(info->dims));
            if (io) {
                model->output_data[i] = calloc(tensor->count ? tensor->count : 1, sizeof(float));
                if (model->output_data[i] == NULL)
                    return cxr_err_set(err, CXR_ERR_NOMEM, "nn: out of memory");
            }
        }
    }
    return CXR_OK;
}

/* Constants the forward pass does not read (all but constant graph outputs): their values
 * now live in XNNPACK's packed weights or in the nodes' own copies. */
static void release_constants(struct cxr_nn_model *model)
{
    for (size_t t = 0; t < model->tensor_count; t++) {
        struct nn_tensor *tensor = &model->tensors[t];
        if (tensor->values != NULL && !tensor->graph_output) {
            free(tensor->values);
            tensor->values = NULL;
            tensor->shaped = false;
        }
    }
}

/* The loading pipeline. owned, when not NULL, holds bytes and is freed as early as possible
 * (right after unpacking), which keeps the peak memory of loading a large model down. */
static enum cxr_status load(struct cxr_nn_runtime *runtime, const unsigned char *bytes, size_t size,
                            unsigned char *owned, const struct cxr_limits *limits,
                            struct cxr_nn_model **model, struct cxr_err *err)
{
    struct cxr_limits defaults = cxr_limits_default();
    if (limits == NULL)
        limits = &defaults;
    enum cxr_status status = CXR_OK;
    if (runtime == NULL || model == NULL || (bytes == NULL && size > 0))
        status = cxr_err_set(err, CXR_ERR_INVALID_ARG, "nn: bad arguments to load");
    else if (size > limits->max_file_bytes)
        status = cxr_err_set(err, CXR_ERR_LIMIT, "nn: model larger than %zu bytes",
                             limits->max_file_bytes);
    struct cxr_nn_model *loaded = status == CXR_OK ? calloc(1, sizeof(*loaded)) : NULL;
    if (status == CXR_OK && loaded == NULL)
        status = cxr_err_set(err, CXR_ERR_NOMEM, "nn: out of memory");
    if (status != CXR_OK) {
        free(owned);
        return status;
    }
    loaded->runtime = runtime;
    void *proto = NULL;
    status = nn_onnx_load(loaded, bytes, size, owned, &proto, err);
    if (status == CXR_OK)
        status = count_op_types(loaded, err);
    if (status == CXR_OK)
        status = nn_graph_compile(loaded, err);
    /* Attributes are read only while compiling. */
    nn_onnx_free(proto);
    for (size_t i = 0; i < loaded->node_count; i++)
        loaded->nodes[i].proto = NULL;
    if (status == CXR_OK)
        status = describe_io(loaded, err);
    if (status == CXR_OK)
        status = nn_plan_build(loaded, err);
    if (status == CXR_OK)
        status = nn_exec_prepare(loaded, err);
    if (status == CXR_OK)
        release_constants(loaded);
    const char *profile = getenv("CXR_NN_PROFILE");
    if (status == CXR_OK && profile != NULL && profile[0] == '1') {
        loaded->profile_ms = calloc(loaded->step_count + 1, sizeof(double));
        if (loaded->profile_ms == NULL)
            status = cxr_err_set(err, CXR_ERR_NOMEM, "nn: out of memory");
    }
    if (status != CXR_OK) {
        cxr_nn_model_destroy(loaded);
        return status;
    }
    *model = loaded;
    return CXR_OK;
}

enum cxr_status cxr_nn_model_load_memory(struct cxr_nn_runtime *runtime, const void *bytes,
                                         size_t size, const struct cxr_limits *limits,
                                         struct cxr_nn_model **model, struct cxr_err *err)
{
    return load(runtime, bytes, size, NULL, limits, model, err);
}

enum cxr_status cxr_nn_model_load(struct cxr_nn_runtime *runtime, const char *path,
                                  const struct cxr_limits *limits, struct cxr_nn_model **model,
                                  struct cxr_err *err)
{
    struct cxr_limits defaults = cxr_limits_default();
    if (limits == NULL)
        limits = &defaults;
    if (path == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "nn: no model path");
    struct cxr_buf bytes = CXR_BUF_INIT(0);
    struct cxr_err local = CXR_ERR_INIT;
    enum cxr_status status = cxr_file_read(path, limits->max_file_bytes, &bytes, &local);
    if (status != CXR_OK)
        return cxr_err_set(err, status, "nn: %s", local.message);
    /* load takes the bytes over and frees them as soon as they are unpacked. */
    status = load(runtime, bytes.data, bytes.len, bytes.data, limits, model, &local);
    if (status != CXR_OK)
        return cxr_err_set(err, status, "%s: %s", path, local.message);
    return CXR_OK;
}

size_t cxr_nn_model_input_count(const struct cxr_nn_model *model)
{
    return model->input_count;
}

size_t cxr_nn_model_output_count(const struct cxr_nn_model *model)
{
    return model->output_count;
}

const struct cxr_nn_tensor_info *cxr_nn_model_input(const struct cxr_nn_model *model, size_t i)
{
    return i < model->input_count ? &model->input_info[i] : NULL;
}

const struct cxr_nn_tensor_info *cxr_nn_model_output(const struct cxr_nn_model *model, size_t i)
{
    return i < model->output_count ? &model->output_info[i] : NULL;
}

const char *cxr_nn_model_metadata(const struct cxr_nn_model *model, const char *key)
{
    for (size_t i = 0; i < model->metadata_count; i++) {
        if (strcmp(model->metadata[i].key, key) == 0)
            return model->metadata[i].value;
    }
    return NULL;
}

size_t cxr_nn_model_metadata_count(const struct cxr_nn_model *model)
{
    return model->metadata_count;
}

void cxr_nn_model_metadata_at(const struct cxr_nn_model *model, size_t i, const char **key,
                              const char **value)
{
    *key = i < model->metadata_count ? model->metadata[i].key : NULL;
    *value = i < model->metadata_count ? model->metadata[i].value : NULL;
}

void cxr_nn_model_stats_get(const struct cxr_nn_model *model, struct cxr_nn_model_stats *stats)
{
    *stats = model->stats;
}

size_t cxr_nn_model_op_type_count(const struct cxr_nn_model *model)
{
    return model->op_count_count;
}

void cxr_nn_model_op_type(const struct cxr_nn_model *model, size_t i, const char **name,
                          size_t *count)
{
    *name = i < model->op_count_count ? model->op_counts[i].op_type : NULL;
    *count = i < model->op_count_count ? model->op_counts[i].count : 0;
}

enum cxr_status cxr_nn_model_run(struct cxr_nn_model *model, const float *const *inputs,
                                 struct cxr_err *err)
{
    if (model == NULL || inputs == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "nn: bad arguments to run");
    if (model->failed)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "nn: the model failed earlier");
    for (size_t i = 0; i < model->input_count; i++) {
        if (inputs[i] == NULL)
            return cxr_err_set(err, CXR_ERR_INVALID_ARG, "nn: input %zu is NULL", i);
    }
    model->run_inputs = inputs;
    enum cxr_status status = nn_exec_run(model, err);
    model->run_inputs = NULL;
    if (status != CXR_OK)
        model->failed = true;
    return status;
}

const float *cxr_nn_model_output_data(const struct cxr_nn_model *model, size_t i)
{
    return i < model->output_count ? model->output_data[i] : NULL;
}
