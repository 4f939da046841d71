/* Fuzz target: the model contract checks on arbitrary metadata and shapes. Input: 6 bytes of
 * shape choices, then cxr.labels, cxr.thresholds, cxr.preprocess and cxr.model_version separated
 * by NUL bytes (a missing part means an absent key). Must never crash or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6)
        return 0;
    struct cxr_nn_tensor_info image = {"image", 4, {1, 1, 256, 256}};
    struct cxr_nn_tensor_info probabilities = {"probabilities", 2, {1, 11}};
    struct cxr_nn_tensor_info cam = {"cam", 4, {1, 11, 16, 16}};
    /* Shape perturbations: mostly valid, so the fuzzer spends its time in the JSON. */
    image.dims[2] = data[0] & 0x80 ? (int64_t)(int8_t)data[0] * 97 : 256;
    image.rank = data[1] & 0x80 ? data[1] % 9 : 4;
    probabilities.dims[1] = data[2] & 0x80 ? (int64_t)(int8_t)data[2] * 1031 : 11 + data[2] % 4;
    cam.dims[1] = probabilities.dims[1];
    cam.dims[2] = data[3] & 0x80 ? (int64_t)(int8_t)data[3] * 4099 : 1 + data[3] % 32;
    cam.rank = data[4] & 0x80 ? data[4] % 9 : 4;
    const struct cxr_nn_tensor_info *inputs[1] = {&image};
    const struct cxr_nn_tensor_info *outputs[2] = {data[5] & 1 ? &cam : &probabilities,
                                                   data[5] & 1 ? &probabilities : &cam};

    /* Copy so that each string ends in a NUL the fuzzer cannot remove. */
    char *text = malloc(size - 6 + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data + 6, size - 6);
    text[size - 6] = '\0';
    const char *parts[4] = {NULL, NULL, NULL, NULL};
    char *cursor = text, *end = text + (size - 6);
    for (int i = 0; i < 4 && cursor <= end; i++) {
        parts[i] = cursor;
        cursor += strlen(cursor) + 1;
    }
    struct cxr_model_source source = {
            .input_count = 1,
            .output_count = (data[5] & 2) ? 1 : 2,
            .inputs = inputs,
            .outputs = outputs,
            .labels = parts[0],
            .thresholds = parts[1],
            .preprocess = parts[2],
            .model_version = parts[3],
    };
    struct cxr_model_contract contract;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_model_contract_check(&source, &contract, &err) == CXR_OK) {
        /* A resolved contract is consistent. */
        for (int k = 0; k < CXR_FINDING_COUNT; k++) {
            if (contract.label_of_finding[k] >= contract.label_count || contract.thresholds[k] < 0)
                abort();
        }
        /* CLAHE settings that cxr_image_clahe() would refuse never get through. */
        if (contract.input.equalize == CXR_EQUALIZE_CLAHE &&
            (contract.input.clahe_tiles < 1 ||
             contract.input.clahe_tiles > CXR_IMAGE_CLAHE_MAX_TILES ||
             contract.input.clahe_tiles > contract.input.width ||
             contract.input.clahe_tiles > contract.input.height ||
             !(contract.input.clahe_clip >= 1.0) || contract.input.clahe_clip > 256.0))
            abort();
    } else if (strncmp(err.message, "model contract: ", 16) != 0) {
        abort();
    }
    free(text);
    return 0;
}
