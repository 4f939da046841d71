/* Fuzz target for the ONNX loader: any bytes must be refused cleanly or load; a model that
 * loads and is small enough is also run once on zeros, exercising the plan and the kernels
 * on whatever shapes the fuzzer invents. */
#include <stdint.h>
#include <stdlib.h>

#include "nn/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cxr_nn_runtime *runtime;
    if (runtime == NULL && cxr_nn_runtime_create(1, &runtime, NULL) != CXR_OK)
        abort();
    struct cxr_limits limits = cxr_limits_default();
    limits.max_file_bytes = 1 << 20;
    struct cxr_nn_model *model = NULL;
    if (cxr_nn_model_load_memory(runtime, data, size, &limits, &model, NULL) != CXR_OK)
        return 0;
    struct cxr_nn_model_stats stats;
    cxr_nn_model_stats_get(model, &stats);
    size_t inputs = cxr_nn_model_input_count(model);
    if (stats.activation_bytes <= ((size_t)16 << 20) && stats.flops <= 100000000u && inputs <= 8) {
        const float *pointers[8];
        float *buffers[8] = {NULL};
        int ok = 1;
        for (size_t i = 0; i < inputs; i++) {
            const struct cxr_nn_tensor_info *info = cxr_nn_model_input(model, i);
            size_t count = 1;
            for (uint32_t k = 0; k < info->rank; k++)
                count *= (size_t)info->dims[k];
            buffers[i] =
                    count <= ((size_t)4 << 20) ? calloc(count ? count : 1, sizeof(float)) : NULL;
            ok = ok && buffers[i] != NULL;
            pointers[i] = buffers[i];
        }
        if (ok)
            (void)cxr_nn_model_run(model, pointers, NULL);
        for (size_t i = 0; i < inputs; i++)
            free(buffers[i]);
    }
    cxr_nn_model_destroy(model);
    return 0;
}
