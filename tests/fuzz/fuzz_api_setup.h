/* The api the request fuzz targets share: the default config with these roots, the model at
 * CXR_FUZZ_MODEL_PATH and this audit database ("" for none). Aborts on failure. */
#ifndef CXR_FUZZ_API_SETUP_H
#define CXR_FUZZ_API_SETUP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

static struct cxr_api *fuzz_api_create(const char *input_root, const char *output_root,
                                       const char *audit_database, struct cxr_config *config)
{
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_config_load(NULL, config, &err) != CXR_OK)
        abort();
    free(config->input_root);
    free(config->output_root);
    free(config->model_path);
    free(config->audit_database);
    config->input_root = strdup(input_root);
    config->output_root = strdup(output_root);
    config->model_path = strdup(CXR_FUZZ_MODEL_PATH);
    config->audit_database = strdup(audit_database);
    struct cxr_api *api = NULL;
    if (cxr_api_create(config, &api, &err) != CXR_OK) {
        fprintf(stderr, "fuzz: %s\n", err.message);
        abort();
    }
    return api;
}

#endif
