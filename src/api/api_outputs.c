/* The outputs of one pipeline run: the Data object of the predictions, and the files written
 * beneath the output root as one atomic group (predictions JSON, PNGs, PDF and, with
 * dicom_outputs, the DICOM files), or the placeholders of inline images. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_internal.h"

char *cxr_api_output_path_build(const char *folder, const char *patient_id, const char *suffix)
{
    size_t size = strlen(folder) + 2 * strlen(patient_id) + strlen(suffix) + 4;
    char *path = malloc(size);
    if (path)
        snprintf(path, size, "%s/%s/%s%s", folder, patient_id, patient_id, suffix);
    return path;
}

/* The DICOM outputs' file name suffixes, and their Data fields (with dicom_outputs only). */
static const char *const dicom_suffixes[3] = {"_sr.dcm", "_heatmap.dcm", "_report.dcm"};
static const char *const dicom_fields[3] = {"dicom_sr", "dicom_heatmap", "dicom_report"};

/* The Data object of the spec: result, findings (all 11, API order), source_image, heatmap,
 * metadata. Image fields are filled by the caller. */
json_t *cxr_api_data_build(const struct cxr_prediction *prediction, const char *patient_id,
                           const struct cxr_dicom_meta *meta, const char *model_version)
{
    json_t *data = json_object();
    json_t *findings = json_array();
    json_t *metadata = json_object();
    if (!data || !findings || !metadata) {
        json_decref(data);
        json_decref(findings);
        json_decref(metadata);
        return NULL;
    }
    for (size_t i = 0; i < CXR_FINDING_COUNT; i++) {
        const struct cxr_finding *finding = &prediction->findings[i];
        json_t *item = json_object();
        json_object_set_new(item, "name", json_string(finding->name));
        json_object_set_new(item, "presence", json_boolean(finding->presence));
        json_object_set_new(item, "confidence", json_real(finding->confidence));
        json_array_append_new(findings, item);
    }
    json_object_set_new(metadata, "model_version", json_string(model_version));
    json_object_set_new(metadata, "patient_id", json_string(patient_id));
    json_object_set_new(metadata, "patient_name", json_string(meta->patient_name));
    json_object_set_new(metadata, "sop_instance_uid", json_string(meta->sop_instance_uid));
    json_object_set_new(metadata, "age", json_string(meta->patient_age));
    json_object_set_new(metadata, "sex", json_string(meta->patient_sex));
    json_object_set_new(data, "result", json_string(cxr_model_result_name(prediction->result)));
    json_object_set_new(data, "findings", findings);
    json_object_set_new(data, "source_image", json_string(""));
    json_object_set_new(data, "heatmap", json_string(""));
    json_object_set_new(data, "metadata", metadata);
    return data;
}

/* Opens (creating what is missing) output_folder and its patient_id folder beneath the output
 * root. *created says whether this call made the patient folder (so a failure can remove it). */
static enum cxr_status open_patient_folder(struct cxr_api *api, const char *output_folder,
                                           const char *patient_id, int *parent_fd, int *folder_fd,
                                           bool *created, struct cxr_err *err)
{
    enum cxr_status status = cxr_path_open_beneath(&api->output_root, output_folder,
                                                   CXR_PATH_OPEN_FOLDER_CREATE, parent_fd, err);
    if (status != CXR_OK)
        return status;
    *created = mkdirat(*parent_fd, patient_id, 0755) == 0;
    /* Why mkdir failed (a full or read-only file system) is the cause to report, not the
     * ENOENT of the open that follows it. */
    int mkdir_errno = *created || errno == EEXIST ? 0 : errno;
    int fd = openat(*parent_fd, patient_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        *folder_fd = fd;
        return CXR_OK;
    }
    if (errno == ENOENT && mkdir_errno)
        return cxr_err_set(err, cxr_status_of_errno(mkdir_errno), "mkdir: %s",
                           strerror(mkdir_errno));
    if (errno != ELOOP && errno != ENOTDIR)
        return cxr_err_set(err, CXR_ERR_IO, "open: %s", strerror(errno));
    /* A symlink (or not a folder): the full walk follows it only while it stays in the root. */
    size_t size = strlen(output_folder) + strlen(patient_id) + 2;
    char *path = malloc(size);
    if (path == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    snprintf(path, size, "%s/%s", output_folder, patient_id);
    status = cxr_path_open_beneath(&api->output_root, path, CXR_PATH_OPEN_FOLDER, folder_fd, err);
    free(path);
    return status;
}

/* Writes the four files (three for Normal, whose stale heatmap from an earlier run is removed)
 * as one group into <output_folder>/<patient_id>/. */
bool cxr_api_outputs_write(struct cxr_api *api, const struct cxr_api_job *job,
                           struct cxr_api_run_state *state, const char *patient_id, json_t *data,
                           struct cxr_api_result *result)
{
    struct cxr_err err = CXR_ERR_INIT;
    bool created = false;
    size_t size = strlen(job->output_folder) + strlen(patient_id) + 2;
    state->folder = malloc(size);
    if (state->folder == NULL) {
        cxr_api_result_error(result, CXR_API_SINGLE_INTERNAL, NULL, "out of memory");
        return false;
    }
    snprintf(state->folder, size, "%s/%s", job->output_folder, patient_id);

    /* Every folder is opened beneath the output root's descriptor, one component at a time:
     * a folder swapped for a symlink out of the root, before or during this, is refused, and
     * the files are then created and renamed relative to the patient folder's descriptor. */
    enum cxr_status status =
            open_patient_folder(api, job->output_folder, patient_id, &state->parent_fd,
                                &state->folder_fd, &created, &err);
    if (status == CXR_ERR_INVALID_ARG) {
        char message[1024];
        cxr_api_format(message, sizeof message, "output_folder_path: %s (%s)", state->folder,
                       err.message);
        cxr_api_result_error(result, CXR_API_INVALID_PATH, message, NULL);
        return false;
    }
    if (status != CXR_OK) {
        char message[1024];
        cxr_api_format(message, sizeof message, "%s (%s)", state->folder, err.message);
        cxr_api_result_error(result, CXR_API_OUTPUT_FOLDER_UNCREATABLE, message, err.message);
        result->outputs_unwritten = true;
        result->no_space = status == CXR_ERR_NO_SPACE;
        return false;
    }
    /* Leftovers of a writer killed inside a commit go when the folder is next written. */
    size_t budget = 4096;
    size_t swept = cxr_file_temps_sweep(state->folder_fd, 0, &budget);
    if (swept)
        cxr_log(CXR_LOG_INFO, "removed %zu stale temp files in %s", swept, state->folder);

    double start = cxr_api_now();
    bool normal = state->prediction.result == CXR_RESULT_NORMAL;
    char *json_text = json_dumps(data, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    char names[7][128];
    snprintf(names[0], sizeof names[0], "%s_predictions.json", patient_id);
    snprintf(names[1], sizeof names[1], "%s_source_image.png", patient_id);
    snprintf(names[2], sizeof names[2], "%s_heatmap.png", patient_id);
    snprintf(names[3], sizeof names[3], "%s_report.pdf", patient_id);
    const struct cxr_buf *dicom[3] = {&state->dicom.sr, &state->dicom.heatmap,
                                      &state->dicom.report};
    for (size_t i = 0; i < 3; i++)
        snprintf(names[4 + i], sizeof names[4 + i], "%s%s", patient_id, dicom_suffixes[i]);
    status = json_text ? CXR_OK : CXR_ERR_NOMEM;
    if (status == CXR_OK)
        status = cxr_file_group_create_at(state->folder_fd, state->folder, &state->group, &err);
    if (status == CXR_OK)
        status = cxr_file_group_stage(state->group, names[0], json_text, strlen(json_text), &err);
    if (status == CXR_OK)
        status = cxr_file_group_stage(state->group, names[1], state->source_png.data,
                                      state->source_png.len, &err);
    if (status == CXR_OK && normal)
        status = cxr_file_group_remove(state->group, names[2], &err);
    else if (status == CXR_OK)
        status = cxr_file_group_stage(state->group, names[2], state->heatmap_png.data,
                                      state->heatmap_png.len, &err);
    if (status == CXR_OK)
        status =
                cxr_file_group_stage(state->group, names[3], state->pdf.data, state->pdf.len, &err);
    /* Without dicom_outputs, DICOM files of an earlier run would describe another result. */
    for (size_t i = 0; i < 3 && status == CXR_OK; i++)
        status = job->dicom_outputs ? cxr_file_group_stage(state->group, names[4 + i],
                                                           dicom[i]->data, dicom[i]->len, &err)
                                    : cxr_file_group_remove(state->group, names[4 + i], &err);
    if (status == CXR_OK)
        status = cxr_file_group_commit(state->group, &err);
    free(json_text);
    if (status != CXR_OK) {
        cxr_file_group_destroy(state->group); /* removes the temp files first */
        state->group = NULL;
        if (created) /* only if empty: a failed request leaves nothing behind */
            unlinkat(state->parent_fd, patient_id, AT_REMOVEDIR);
        cxr_api_run_fail_internal(result, "writing outputs", &err);
        result->outputs_unwritten = true;
        result->no_space = err.status == CXR_ERR_NO_SPACE;
        return false;
    }
    result->stage_seconds[CXR_STAGE_WRITE] = cxr_api_now() - start;
    return true;
}

/* Paths of the saved files, or placeholders for inline images, whose PNGs move to images. */
bool cxr_api_image_fields_set(const struct cxr_api_job *job, struct cxr_api_run_state *state,
                              const char *patient_id, json_t *data,
                              struct cxr_api_inline_images *images)
{
    bool normal = state->prediction.result == CXR_RESULT_NORMAL;
    json_t *source = NULL, *heatmap = NULL;
    if (job->output_folder) {
        const char *shown =
                job->output_folder_shown ? job->output_folder_shown : job->output_folder;
        char *path = cxr_api_output_path_build(shown, patient_id, "_source_image.png");
        source = path ? json_string(path) : NULL;
        free(path);
        path = normal ? NULL : cxr_api_output_path_build(shown, patient_id, "_heatmap.png");
        heatmap = normal ? json_string("") : path ? json_string(path) : NULL;
        free(path);
    } else {
        /* The envelope writes the base64 text in place of these (cxr_api_envelope_inline). */
        source = json_string(CXR_API_INLINE_SOURCE);
        heatmap = json_string(normal ? "" : CXR_API_INLINE_HEATMAP);
        images->source_png = state->source_png;
        memset(&state->source_png, 0, sizeof state->source_png);
        if (!normal) {
            images->heatmap_png = state->heatmap_png;
            memset(&state->heatmap_png, 0, sizeof state->heatmap_png);
        }
    }
    if (source == NULL || heatmap == NULL) {
        json_decref(source);
        json_decref(heatmap);
        return false;
    }
    json_object_set_new(data, "source_image", source);
    json_object_set_new(data, "heatmap", heatmap);
    if (job->dicom_outputs && job->output_folder) {
        const char *shown =
                job->output_folder_shown ? job->output_folder_shown : job->output_folder;
        for (size_t i = 0; i < 3; i++) {
            char *path = cxr_api_output_path_build(shown, patient_id, dicom_suffixes[i]);
            json_t *value = path ? json_string(path) : NULL;
            free(path);
            if (value == NULL || json_object_set_new(data, dicom_fields[i], value) != 0)
                return false;
        }
    }
    return true;
}
