/* POST /single_inference: the validation table of spec/single_inference_v1.md, in the order a
 * client fixes its request (required fields, types, then paths and files), then the pipeline.
 * Every outcome is an envelope and an audit row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_internal.h"

/* Copies a path-like string for a message; an embedded NUL shows as "\0". */
static void shown_path(const json_t *value, char *out, size_t size)
{
    if (!json_is_string(value)) {
        cxr_api_value_text(value, out, size);
        return;
    }
    const char *text = json_string_value(value);
    size_t length = json_string_length(value);
    size_t used = 0;
    for (size_t i = 0; i < length && used + 3 < size; i++) {
        if (text[i] == '\0') {
            out[used++] = '\\';
            out[used++] = '0';
        } else {
            out[used++] = text[i];
        }
    }
    out[used] = '\0';
}

/* Opens the checked path beneath the input root: the descriptor is what the job reads, so what
 * was checked is what is read (a swap after this changes nothing). */
static bool open_input(struct cxr_api *api, const char *path, const char *resolved,
                       const char *shown, struct cxr_api_job *job, struct cxr_api_result *result)
{
    struct cxr_err err = CXR_ERR_INIT;
    int fd = -1;
    enum cxr_status status =
            cxr_path_open_beneath(&api->input_root, path, CXR_PATH_OPEN_FILE, &fd, &err);
    if (status == CXR_ERR_NOT_FOUND) {
        cxr_api_result_error(result, CXR_API_INPUT_IMAGE_MISSING, shown, NULL);
        return false;
    }
    if (status != CXR_OK) {
        char message[1024];
        cxr_api_format(message, sizeof message, "input_image_path: %s (%s)", shown, err.message);
        cxr_api_result_error(result, CXR_API_INVALID_PATH, message, NULL);
        return false;
    }
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) || !cxr_api_has_dcm_extension(path) ||
        !cxr_api_has_dcm_extension(resolved)) {
        close(fd);
        cxr_api_result_error(result, CXR_API_NOT_DICOM_FILE, shown, NULL);
        return false;
    }
    job->input_open = true;
    job->input_fd = fd;
    return true;
}

/* Validates the request; fills job on success (paths owned by the caller's pointers, and
 * job->input_fd, open when job->input_open). */
static bool validate(struct cxr_api *api, json_t *body, struct cxr_api_job *job,
                     char **input_resolved, char **output_resolved, char *output_shown,
                     size_t output_shown_size, struct cxr_api_result *result)
{
    char message[1024];
    char shown[700];
    json_t *input = json_object_get(body, "input_image_path");
    json_t *save = json_object_get(body, "save_to_disk");
    json_t *patient = json_object_get(body, "patient_id");
    json_t *output = json_object_get(body, "output_folder_path");
    json_t *dicom_outputs = json_object_get(body, "dicom_outputs");
    if (cxr_api_field_missing(input)) {
        cxr_api_result_error(result, CXR_API_FIELD_REQUIRED, "input_image_path", NULL);
        return false;
    }
    if (save == NULL || json_is_null(save)) {
        cxr_api_result_error(result, CXR_API_FIELD_REQUIRED, "save_to_disk", NULL);
        return false;
    }
    if (!json_is_boolean(save)) {
        cxr_api_value_text(save, shown, sizeof shown);
        cxr_api_result_error(result, CXR_API_SAVE_TO_DISK_NOT_BOOLEAN, shown, NULL);
        return false;
    }
    bool save_to_disk = json_is_true(save);
    /* Optional, off by default (the v1 contract): DICOM objects are files for a PACS. */
    if (dicom_outputs != NULL && !json_is_null(dicom_outputs) &&
        (!json_is_boolean(dicom_outputs) || (json_is_true(dicom_outputs) && !save_to_disk))) {
        cxr_api_value_text(dicom_outputs, shown, sizeof shown);
        cxr_api_result_error(result, CXR_API_DICOM_OUTPUTS_INVALID, shown, NULL);
        return false;
    }
    job->dicom_outputs = json_is_true(dicom_outputs);
    if (save_to_disk && cxr_api_field_missing(output)) {
        cxr_api_result_error(result, CXR_API_OUTPUT_FOLDER_REQUIRED, NULL, NULL);
        return false;
    }

    struct cxr_err err = CXR_ERR_INIT;
    shown_path(input, shown, sizeof shown);
    enum cxr_status status = CXR_ERR_INVALID_ARG;
    if (!json_is_string(input))
        cxr_err_set(&err, CXR_ERR_INVALID_ARG, "not a string");
    else
        status = cxr_api_path_check(api->config->input_root, api->input_root.real,
                                    json_string_value(input), json_string_length(input), true,
                                    input_resolved, &err);
    if (status == CXR_ERR_NOT_FOUND) {
        cxr_api_result_error(result, CXR_API_INPUT_IMAGE_MISSING, shown, NULL);
        return false;
    }
    if (status != CXR_OK) {
        cxr_api_format(message, sizeof message, "input_image_path: %s (%s)", shown, err.message);
        cxr_api_result_error(result, CXR_API_INVALID_PATH, message, NULL);
        return false;
    }
    if (!open_input(api, json_string_value(input), *input_resolved, shown, job, result))
        return false;

    job->patient_id = NULL;
    if (json_is_string(patient) && json_string_length(patient) == 0) {
        /* The spec's "Empty Patient ID" row: an empty ID is that error, not an invalid one. */
        cxr_api_result_error(result, CXR_API_PATIENT_ID_EMPTY,
                             "patient_id in the request body is empty", NULL);
        return false;
    }
    if (patient != NULL && !json_is_null(patient)) {
        if (!json_is_string(patient) ||
            !cxr_api_patient_id_valid(json_string_value(patient), json_string_length(patient))) {
            shown_path(patient, shown, sizeof shown);
            cxr_api_format(message, sizeof message, "'%s' in request body", shown);
            cxr_api_result_error(result, CXR_API_PATIENT_ID_INVALID, message, NULL);
            return false;
        }
        job->patient_id = json_string_value(patient);
    }

    job->output_folder = NULL;
    if (save_to_disk) {
        if (!cxr_api_output_folder_check(api, output, output_resolved, output_shown,
                                         output_shown_size, result))
            return false;
        job->output_folder = *output_resolved;
        job->output_folder_shown = output_shown;
    }
    job->input_path = *input_resolved;
    return true;
}

void cxr_api_single_inference(struct cxr_api *api, json_t *body, const char *subject,
                              const char *request_id, struct cxr_api_response *response)
{
    double start = cxr_api_now();
    struct cxr_api_result result;
    memset(&result, 0, sizeof result);
    result.status = 200;
    struct cxr_api_job job = {0};
    char *input_resolved = NULL, *output_resolved = NULL;
    char output_shown[4096];
    bool valid = validate(api, body, &job, &input_resolved, &output_resolved, output_shown,
                          sizeof output_shown, &result);
    result.stage_seconds[CXR_STAGE_VALIDATE] = cxr_api_now() - start;
    if (valid) {
        double validate_seconds = result.stage_seconds[CXR_STAGE_VALIDATE];
        cxr_api_job_run(api, &job, &result);
        result.stage_seconds[CXR_STAGE_VALIDATE] = validate_seconds;
    }

    json_t *input = json_object_get(body, "input_image_path");
    struct cxr_api_audit_extra extra = {.output_folder = valid ? job.output_folder : NULL};
    bool recorded =
            cxr_api_audit_result_extra(api, subject, request_id, "single_inference",
                                       json_is_string(input) ? json_string_value(input) : "",
                                       &result, (cxr_api_now() - start) * 1000.0, &extra);
    memcpy(response->stage_seconds, result.stage_seconds, sizeof result.stage_seconds);
    enum cxr_status status;
    if (result.status == 200) {
        status = cxr_api_envelope_inline(
                200, result.gate_flagged ? "Warning" : "Success", result.data,
                result.gate_flagged ? result.message : "Inference completed successfully.",
                &result.images, response);
        result.data = NULL; /* stolen */
    } else {
        status = cxr_api_envelope(result.status, "Failure", NULL, result.message, response);
    }
    if (status != CXR_OK) {
        response->status = 500;
        response->body = NULL;
    }
    cxr_api_result_release(&result);
    if (job.input_open)
        close(job.input_fd);
    free(input_resolved);
    free(output_resolved);
    cxr_api_audit_enforce(api, recorded, response);
}
