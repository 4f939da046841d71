/* The v1 error table: every failure the API can answer, its HTTP status and the fixed wording of
 * its Message (spec/single_inference_v1.md, spec/companion_endpoints.md, README's table). The one
 * place that maps an error to a status and a message, as curl's strerror table does; call sites
 * supply only the variable part. */
#include <stdio.h>

#include "api/api_internal.h"

struct error_text {
    int status;
    const char *before; /* Message = before + detail + after */
    const char *after;
};

static const struct error_text errors[CXR_API_ERROR_COUNT] = {
        [CXR_API_FIELD_REQUIRED] = {400, "", " is required in the request"},
        [CXR_API_SAVE_TO_DISK_NOT_BOOLEAN] =
                {400, "Invalid value for save_to_disk, should be a boolean: ", ""},
        [CXR_API_OUTPUT_FOLDER_REQUIRED] = {400,
                                            "output_folder_path is required in the request when "
                                            "save_to_disk is True",
                                            ""},
        [CXR_API_INVALID_PATH] = {400, "Invalid path ", ""},
        [CXR_API_INPUT_IMAGE_MISSING] = {400, "Input image path does not exist: ", ""},
        [CXR_API_INPUT_FOLDER_MISSING] = {400, "Input folder path does not exist: ", ""},
        [CXR_API_NOT_DICOM_FILE] = {400, "Requested image is not a DICOM file: ", ""},
        [CXR_API_DICOM_UNREADABLE] = {400, "Invalid DICOM image, unable to fetch patient ID: ", ""},
        [CXR_API_DICOM_UNRENDERABLE] = {400,
                                        "Invalid DICOM image, unable to render the pixel data: ",
                                        ""},
        [CXR_API_NOT_CHEST_RADIOGRAPH] = {400, "Image is not a frontal chest radiograph: ", ""},
        [CXR_API_PATIENT_ID_INVALID] = {400, "Invalid patient_id: ", ""},
        [CXR_API_PATIENT_ID_EMPTY] = {400, "Patient ID is empty or None: ", ""},
        [CXR_API_NO_DICOM_FILES] = {400, "No Dicom images found in the provided path", ""},
        [CXR_API_TOKEN_MISSING] = {401, "Token missing", ""},
        [CXR_API_TOKEN_EXPIRED] = {401, "Token expired", ""},
        [CXR_API_TOKEN_INVALID] = {401, "Invalid token", ""},
        [CXR_API_NOT_FOUND] = {404, "Not found", ""},
        [CXR_API_METHOD_NOT_ALLOWED] = {405, "Method not allowed: ", ""},
        [CXR_API_BODY_TOO_LARGE] = {413, "Request body too large: ", ""},
        [CXR_API_HEADERS_TOO_LARGE] = {431, "Request headers too large: ", ""},
        [CXR_API_NOT_JSON_OBJECT] = {415,
                                     "Unsupported Media Type: the body must be a JSON object (",
                                     ")"},
        [CXR_API_OUTPUT_FOLDER_UNCREATABLE] = {500, "Unable to create output folder: ", ""},
        [CXR_API_SINGLE_INTERNAL] = {500, "Single Inference failed due to an internal error", ""},
        [CXR_API_BULK_INTERNAL] = {500, "Bulk inference failed due to an internal error", ""},
        [CXR_API_METRICS_UNAVAILABLE] = {500, "Metrics unavailable", ""},
        [CXR_API_BUSY] = {503, "Server busy: ", ""},
        [CXR_API_SHUTTING_DOWN] = {503, "Server is shutting down; ", ""},
        [CXR_API_DICOM_OUTPUTS_INVALID] = {400,
                                           "Invalid value for dicom_outputs, should be a boolean "
                                           "(true needs save_to_disk true): ",
                                           ""},
        [CXR_API_DICOM_OUTPUTS_SOURCE] = {400, "Cannot make DICOM outputs from this image: ", ""},
        [CXR_API_BAD_REQUEST] = {400, "Bad request: ", ""},
        [CXR_API_REQUEST_TIMEOUT] = {408, "Request timeout: ", ""},
        [CXR_API_AUDIT_UNAVAILABLE] = {503, "Audit log unavailable: ", ""},
        [CXR_API_ASYNC_NOT_BOOLEAN] = {400, "Invalid value for async, should be a boolean: ", ""},
        [CXR_API_JOBS_UNAVAILABLE] = {400,
                                      "Bulk jobs and stored results need a database: set [audit] "
                                      "database in the server configuration",
                                      ""},
        [CXR_API_JOB_NOT_FOUND] = {404, "Job not found: ", ""},
        [CXR_API_JOB_FINISHED] = {409, "Job has already ended: ", ""},
        [CXR_API_RESULT_NOT_FOUND] = {404, "Result not found: ", ""},
        [CXR_API_RESULT_NO_FILE] = {404, "No such file for this result: ", ""},
        [CXR_API_RESULT_REPLACED] = {410,
                                     "The files of this result were replaced by a later study of "
                                     "the same patient: ",
                                     ""},
        [CXR_API_INVALID_QUERY] = {400, "Invalid query parameter ", ""},
        [CXR_API_JOBS_INTERNAL] = {500, "Bulk job failed due to an internal error", ""},
        [CXR_API_HTTP_VERSION] = {505,
                                  "HTTP version not supported: ", " (HTTP/1.0 and HTTP/1.1 are)"},
};

int cxr_api_error_status(enum cxr_api_error error)
{
    return error < CXR_API_ERROR_COUNT ? errors[error].status : 500;
}

void cxr_api_error_message(enum cxr_api_error error, const char *detail, char *out, size_t size)
{
    if (error >= CXR_API_ERROR_COUNT)
        error = CXR_API_SINGLE_INTERNAL;
    snprintf(out, size, "%s%s%s", errors[error].before, detail ? detail : "", errors[error].after);
}

void cxr_api_result_error(struct cxr_api_result *result, enum cxr_api_error error,
                          const char *detail, const char *cause)
{
    char message[sizeof result->message];
    cxr_api_error_message(error, detail, message, sizeof message);
    cxr_api_result_fail(result, cxr_api_error_status(error), message, cause);
}

enum cxr_status cxr_api_response_error(enum cxr_api_error error, const char *detail,
                                       struct cxr_api_response *response)
{
    char message[4096];
    cxr_api_error_message(error, detail, message, sizeof message);
    return cxr_api_envelope(cxr_api_error_status(error), "Failure", NULL, message, response);
}
