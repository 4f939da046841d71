/* One DICOM file through the whole pipeline: parse, resolve the patient ID, render, predict,
 * heatmap, PNGs, PDF, predictions JSON, and either the four output files (written as one atomic
 * group: all or nothing) or base64 strings. Errors carry the v1 status and Message; internal
 * causes stay in the log. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "dicom/dicom.h"
#include "image/image.h"
#include "nn/nn.h"
#include "report/report.h"

struct run_state {
    struct cxr_dicom_file *file;
    struct cxr_gray8 source;
    struct cxr_rgb8 heatmap;
    bool have_prediction;
    struct cxr_prediction prediction;
    struct cxr_buf source_png;
    struct cxr_buf heatmap_png;
    struct cxr_buf pdf;
    struct cxr_api_dicom_outputs dicom;
    char *folder;
    int parent_fd; /* output_folder_path, opened beneath the output root; -1 when not open */
    int folder_fd; /* its patient folder; -1 when not open */
    struct cxr_file_group *group;
};

/* Work run beside the main pipeline thread: on 2 cores, the source PNG is encoded while the
 * network runs, and the PDF is drawn while the heatmap PNG is encoded, which shortens a single
 * request by the shorter of each pair. */
enum side_kind { SIDE_SOURCE_PNG, SIDE_PDF };

struct side_job {
    enum side_kind kind;
    enum cxr_image_png_compression png_compression;
    struct run_state *state;
    struct cxr_report_info info;
    pthread_t thread;
    bool threaded;
    bool ran;
    enum cxr_status status;
    struct cxr_err err;
    double seconds;
};

static void *side_main(void *arg)
{
    struct side_job *job = arg;
    double start = cxr_api_now();
    struct run_state *state = job->state;
    if (job->kind == SIDE_SOURCE_PNG) {
        job->status = cxr_image_png_encode_gray8(&state->source, job->png_compression,
                                                 &state->source_png, &job->err);
    } else {
        job->status = cxr_report_pdf_render(&job->info, &state->prediction, &state->source,
                                            &state->pdf, &job->err);
    }
    job->seconds = cxr_api_now() - start;
    return NULL;
}

static void side_start(struct side_job *job)
{
    job->ran = true;
    job->err = (struct cxr_err)CXR_ERR_INIT;
    job->threaded = pthread_create(&job->thread, NULL, side_main, job) == 0;
    if (!job->threaded)
        side_main(job); /* no thread to spare: run it here */
}

/* Waits for the job; returns its status (CXR_OK when it never started). */
static enum cxr_status side_join(struct side_job *job)
{
    if (job->threaded)
        pthread_join(job->thread, NULL);
    job->threaded = false;
    return job->ran ? job->status : CXR_OK;
}

static void state_release(struct run_state *state)
{
    cxr_dicom_file_destroy(state->file);
    cxr_image_gray8_release(&state->source);
    cxr_image_rgb8_release(&state->heatmap);
    if (state->have_prediction)
        cxr_model_prediction_release(&state->prediction);
    cxr_buf_release(&state->source_png);
    cxr_buf_release(&state->heatmap_png);
    cxr_buf_release(&state->pdf);
    cxr_api_dicom_outputs_release(&state->dicom);
    free(state->folder);
    cxr_file_group_destroy(state->group);
    if (state->parent_fd >= 0)
        close(state->parent_fd);
    if (state->folder_fd >= 0)
        close(state->folder_fd);
}

static void fail_internal(struct cxr_api_result *result, const char *what,
                          const struct cxr_err *err)
{
    char cause[512];
    cxr_api_format(cause, sizeof cause, "%s: %s", what, err->message);
    cxr_api_result_error(result, CXR_API_SINGLE_INTERNAL, NULL, cause);
}

static char *output_path(const char *folder, const char *patient_id, const char *suffix)
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
static json_t *build_data(const struct cxr_prediction *prediction, const char *patient_id,
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
    int fd = openat(*parent_fd, patient_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        *folder_fd = fd;
        return CXR_OK;
    }
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
static bool write_outputs(struct cxr_api *api, const struct cxr_api_job *job,
                          struct run_state *state, const char *patient_id, json_t *data,
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
        fail_internal(result, "writing outputs", &err);
        return false;
    }
    result->stage_seconds[CXR_STAGE_WRITE] = cxr_api_now() - start;
    return true;
}

/* Paths of the saved files, or placeholders for inline images, whose PNGs move to images. */
static bool set_image_fields(const struct cxr_api_job *job, struct run_state *state,
                             const char *patient_id, json_t *data,
                             struct cxr_api_inline_images *images)
{
    bool normal = state->prediction.result == CXR_RESULT_NORMAL;
    json_t *source = NULL, *heatmap = NULL;
    if (job->output_folder) {
        const char *shown =
                job->output_folder_shown ? job->output_folder_shown : job->output_folder;
        char *path = output_path(shown, patient_id, "_source_image.png");
        source = path ? json_string(path) : NULL;
        free(path);
        path = normal ? NULL : output_path(shown, patient_id, "_heatmap.png");
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
            char *path = output_path(shown, patient_id, dicom_suffixes[i]);
            json_t *value = path ? json_string(path) : NULL;
            free(path);
            if (value == NULL || json_object_set_new(data, dicom_fields[i], value) != 0)
                return false;
        }
    }
    return true;
}

/* The input gate's verdict: in refuse mode a 400 that stops the job; in warn mode the job
 * goes on with the message kept for a Warning; false only when the job must stop. */
static bool gate_verdict(struct cxr_api *api, const char *reason, struct cxr_api_result *result)
{
    char message[1024];
    cxr_api_error_message(CXR_API_NOT_CHEST_RADIOGRAPH, reason, message, sizeof message);
    if (api->config->gate_mode == CXR_GATE_REFUSE) {
        cxr_api_result_error(result, CXR_API_NOT_CHEST_RADIOGRAPH, reason, NULL);
        return false;
    }
    if (!result->gate_flagged) {
        result->gate_flagged = true;
        snprintf(result->message, sizeof result->message, "%s", message);
    }
    return true;
}

/* The attribute layer, before any pixel is decoded. */
static bool gate_attributes(struct cxr_api *api, const struct cxr_dicom_file *file,
                            struct cxr_api_result *result)
{
    if (api->config->gate_mode == CXR_GATE_OFF)
        return true;
    const struct cxr_dicom_meta *meta = cxr_dicom_file_meta(file);
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_dicom_file_pixels(file, &desc, &pixels, &err) != CXR_OK)
        return true; /* rendering reports what is wrong with the pixels */
    struct cxr_gate_attributes attributes = {
            .modality = meta->modality,
            .body_part_examined = meta->body_part_examined,
            .view_position = meta->view_position,
            .patient_orientation = meta->patient_orientation,
            .photometric_interpretation = desc.photometric_interpretation,
            .patient_age = meta->patient_age,
            .rows = desc.rows,
            .columns = desc.columns,
            .samples_per_pixel = desc.samples_per_pixel,
    };
    char reason[512];
    if (cxr_model_gate_attributes_accept(api->model, &attributes, reason, sizeof reason))
        return true;
    return gate_verdict(api, reason, result);
}

/* The image layer, from the score the forward pass computed. */
static bool gate_image(struct cxr_api *api, const struct cxr_prediction *prediction,
                       struct cxr_api_result *result)
{
    char reason[512];
    if (api->config->gate_mode == CXR_GATE_OFF ||
        cxr_model_gate_image_accept(api->model, prediction, reason, sizeof reason))
        return true;
    return gate_verdict(api, reason, result);
}

static void job_run(struct cxr_api *api, const struct cxr_api_job *job,
                    struct cxr_api_result *result);

/* The descriptor validation opened, or (bulk, infer, calibrate) the path opened now beneath the
 * input root: never a second lookup of a path that was checked earlier. */
static enum cxr_status read_input(struct cxr_api *api, const struct cxr_api_job *job,
                                  struct cxr_dicom_file **file, struct cxr_err *err)
{
    const struct cxr_limits *limits = &api->config->limits;
    if (job->input_open)
        return cxr_dicom_file_read_fd(job->input_fd, job->input_path, limits, file, err);
    int fd = -1;
    struct cxr_err local = CXR_ERR_INIT;
    enum cxr_status status = cxr_path_open_beneath(&api->input_root, job->input_path,
                                                   CXR_PATH_OPEN_FILE, &fd, &local);
    if (status != CXR_OK)
        return cxr_err_set(err, status == CXR_ERR_NOMEM ? status : CXR_ERR_IO, "DICOM: %s",
                           local.message);
    status = cxr_dicom_file_read_fd(fd, job->input_path, limits, file, err);
    close(fd);
    return status;
}

/* Reserves the decode memory the file declares before any pixel is decoded: 400 when the
 * image alone is over the budget, 503 when the requests in flight leave too little now. */
static bool memory_reserve(struct cxr_api *api, const struct cxr_dicom_file *file,
                           const struct cxr_api_job *job, size_t *reserved,
                           struct cxr_api_result *result)
{
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_dicom_file_pixels(file, &desc, &pixels, &err) != CXR_OK)
        return true; /* rendering reports what is wrong with the pixels */
    size_t need = cxr_api_memory_declared(&desc);
    size_t limit = api->config->max_inflight_memory;
    char message[1024];
    if (limit == 0)
        return true; /* a config not made by cxr_config_load: no budget */
    if (need > limit) {
        cxr_api_format(message, sizeof message,
                       "%s (%ux%u pixels need about %zu MiB to decode, more than [limits] "
                       "max_inflight_memory, %zu MiB)",
                       job->input_path, desc.columns, desc.rows, need >> 20, limit >> 20);
        cxr_api_result_error(result, CXR_API_DICOM_UNRENDERABLE, message, NULL);
        return false;
    }
    if (!cxr_api_memory_reserve(api, need)) {
        cxr_api_format(message, sizeof message,
                       "not enough memory for the requests in flight (this image needs about "
                       "%zu MiB of [limits] max_inflight_memory, %zu MiB, of which %zu MiB are "
                       "taken); retry later",
                       need >> 20, limit >> 20, cxr_api_memory_reserved(api) >> 20);
        cxr_api_result_error(result, CXR_API_BUSY, message, NULL);
        return false;
    }
    *reserved = need;
    return true;
}

void cxr_api_job_run(struct cxr_api *api, const struct cxr_api_job *job,
                     struct cxr_api_result *result)
{
    pthread_rwlock_rdlock(&api->thresholds_lock);
    job_run(api, job, result);
    pthread_rwlock_unlock(&api->thresholds_lock);
}

static void job_run(struct cxr_api *api, const struct cxr_api_job *job,
                    struct cxr_api_result *result)
{
    memset(result, 0, sizeof *result);
    result->status = 200;
    struct run_state state = {0};
    state.source_png.max = 0;
    state.parent_fd = state.folder_fd = -1;
    struct cxr_err err = CXR_ERR_INIT;
    char message[1024];
    struct side_job source_png = {0}, pdf = {0};
    size_t reserved = 0; /* of the in-flight memory budget, released at the end */
    atomic_fetch_add(&api->jobs_running, 1);

    double start = cxr_api_now();
    enum cxr_status status = read_input(api, job, &state.file, &err);
    result->stage_seconds[CXR_STAGE_READ] = cxr_api_now() - start;
    if (status == CXR_ERR_NOMEM || status == CXR_ERR_INTERNAL) {
        fail_internal(result, "DICOM read", &err);
        goto done;
    }
    if (status != CXR_OK) {
        cxr_api_format(message, sizeof message, "%s (%s)", job->input_path, err.message);
        cxr_api_result_error(result, CXR_API_DICOM_UNREADABLE, message, NULL);
        goto done;
    }
    const struct cxr_dicom_meta *meta = cxr_dicom_file_meta(state.file);
    snprintf(result->sop_instance_uid, sizeof result->sop_instance_uid, "%s",
             meta->sop_instance_uid);

    const char *patient_id = job->patient_id ? job->patient_id : meta->patient_id;
    if (patient_id[0] == '\0') {
        cxr_api_format(message, sizeof message,
                       "no patient_id in the request and no PatientID in %s", job->input_path);
        cxr_api_result_error(result, CXR_API_PATIENT_ID_EMPTY, message, NULL);
        goto done;
    }
    if (!cxr_api_patient_id_valid(patient_id, strlen(patient_id))) {
        cxr_api_format(message, sizeof message, "'%s' in DICOM PatientID of %s", patient_id,
                       job->input_path);
        cxr_api_result_error(result, CXR_API_PATIENT_ID_INVALID, message, NULL);
        goto done;
    }
    snprintf(result->patient_id, sizeof result->patient_id, "%s", patient_id);

    if (!gate_attributes(api, state.file, result))
        goto done;
    if (!memory_reserve(api, state.file, job, &reserved, result))
        goto done;

    start = cxr_api_now();
    status = cxr_image_render(state.file, &api->config->limits, &state.source, &err);
    result->stage_seconds[CXR_STAGE_RENDER] = cxr_api_now() - start;
    if (status == CXR_ERR_NOMEM || status == CXR_ERR_INTERNAL) {
        fail_internal(result, "rendering", &err);
        goto done;
    }
    if (status != CXR_OK) {
        /* A file that parses but whose pixels cannot be shown is the client's data, not an
         * internal failure: 400 in the wording of the spec's DICOM row. */
        cxr_api_format(message, sizeof message, "%s (%s)", job->input_path, err.message);
        cxr_api_result_error(result, CXR_API_DICOM_UNRENDERABLE, message, NULL);
        goto done;
    }

    source_png.kind = SIDE_SOURCE_PNG;
    source_png.state = &state;
    source_png.png_compression = api->config->png_compression;
    if (!job->predict_only)
        side_start(&source_png);

    /* Alone, a forward pass uses every core; with other requests in flight it runs on this
     * thread only, so the cores go to their work rather than to the pool's spinning. */
    cxr_nn_runtime_set_parallel(api->runtime, atomic_load(&api->jobs_running) <= 1);
    start = cxr_api_now();
    status = cxr_model_predict(api->model, &state.source, &state.prediction, &err);
    result->stage_seconds[CXR_STAGE_INFER] = cxr_api_now() - start;
    if (status != CXR_OK) {
        fail_internal(result, "inference", &err);
        goto done;
    }
    state.have_prediction = true;
    if (!gate_image(api, &state.prediction, result))
        goto done;
    snprintf(result->result, sizeof result->result, "%s",
             cxr_model_result_name(state.prediction.result));
    if (job->predict_only) {
        /* Scores for cxrd calibrate: same parse, render, gate and network, nothing drawn. */
        result->data =
                build_data(&state.prediction, patient_id, meta, cxr_model_version(api->model));
        if (result->data == NULL) {
            struct cxr_err oom = CXR_ERR_INIT;
            cxr_err_set(&oom, CXR_ERR_NOMEM, "out of memory");
            fail_internal(result, "building JSON", &oom);
        }
        goto done;
    }
    bool normal = state.prediction.result == CXR_RESULT_NORMAL;

    if (!normal) {
        start = cxr_api_now();
        status = cxr_report_heatmap_render(&state.source, &state.prediction, &state.heatmap, &err);
        result->stage_seconds[CXR_STAGE_HEATMAP] = cxr_api_now() - start;
        if (status != CXR_OK) {
            fail_internal(result, "heatmap", &err);
            goto done;
        }
    }

    int64_t report_time = (int64_t)time(NULL);
    if (job->output_folder) {
        pdf.kind = SIDE_PDF;
        pdf.state = &state;
        /* The config's institution heads the report; without one, the file's own. */
        const char *institution = api->config->institution_name;
        pdf.info = (struct cxr_report_info){
                .institution_name =
                        institution && institution[0] ? institution : meta->institution_name,
                .patient_id = patient_id,
                .patient_name = meta->patient_name_raw, /* every component group */
                .referring_physician_name = meta->referring_physician_name_raw,
                .patient_age = meta->patient_age,
                .patient_sex = meta->patient_sex,
                .patient_birth_date = meta->patient_birth_date,
                .study_date = meta->study_date,
                .study_time = meta->study_time,
                .accession_number = meta->accession_number,
                .sop_instance_uid = meta->sop_instance_uid,
                .study_instance_uid = meta->study_instance_uid,
                .modality = meta->modality,
                .view_position = meta->view_position,
                .model_version = cxr_model_version(api->model),
                .thresholds = api->thresholds_used,
                .report_time = report_time,
                .timezone = api->config->report_timezone,
        };
        side_start(&pdf);
    }

    start = cxr_api_now();
    if (!normal)
        status = cxr_image_png_encode_rgb8(&state.heatmap, api->config->png_compression,
                                           &state.heatmap_png, &err);
    double heatmap_png_seconds = cxr_api_now() - start;
    enum cxr_status source_status = side_join(&source_png);
    result->stage_seconds[CXR_STAGE_PNG] = heatmap_png_seconds + source_png.seconds;
    if (status == CXR_OK && source_status != CXR_OK) {
        status = source_status;
        err = source_png.err;
    }
    if (status != CXR_OK) {
        fail_internal(result, "PNG encoding", &err);
        goto done;
    }
    if (side_join(&pdf) != CXR_OK) {
        fail_internal(result, "PDF report", &pdf.err);
        goto done;
    }
    result->stage_seconds[CXR_STAGE_PDF] = pdf.seconds;
    if (job->dicom_outputs && job->output_folder) {
        status = cxr_api_dicom_outputs_build(api, meta, &state.prediction,
                                             normal ? NULL : &state.heatmap, &state.source,
                                             &state.pdf, report_time, &state.dicom, &err);
        if (status == CXR_ERR_INVALID_ARG) {
            /* The source lacks what the outputs must refer to: the client's data, a 400. */
            cxr_api_format(message, sizeof message, "%s (%s)", job->input_path, err.message);
            cxr_api_result_error(result, CXR_API_DICOM_OUTPUTS_SOURCE, message, NULL);
            goto done;
        }
        if (status != CXR_OK) {
            fail_internal(result, "DICOM outputs", &err);
            goto done;
        }
    }

    json_t *data = build_data(&state.prediction, patient_id, meta, cxr_model_version(api->model));
    if (data == NULL || !set_image_fields(job, &state, patient_id, data, &result->images)) {
        json_decref(data);
        cxr_api_result_error(result, CXR_API_SINGLE_INTERNAL, NULL, "out of memory building JSON");
        goto done;
    }
    if (job->output_folder && !write_outputs(api, job, &state, patient_id, data, result)) {
        json_decref(data);
        goto done;
    }
    if (job->explain && job->output_folder) {
        char *path = output_path(job->output_folder, patient_id, "_cams.npy");
        int64_t dims[3] = {CXR_FINDING_COUNT, state.prediction.cam_height,
                           state.prediction.cam_width};
        status =
                path ? cxr_nn_npy_write(path, state.prediction.cams, 3, dims, &err) : CXR_ERR_NOMEM;
        free(path);
        if (status != CXR_OK) {
            json_decref(data);
            fail_internal(result, "class maps (.npy)", &err);
            goto done;
        }
    }
    result->data = data;

done:
    /* The side jobs read the state: they finish before it is freed, whatever happened. */
    side_join(&source_png);
    side_join(&pdf);
    if (result->status == 500)
        cxr_log(CXR_LOG_ERROR, "%s: %s", job->input_path, result->cause);
    state_release(&state);
    cxr_api_memory_release(api, reserved);
    atomic_fetch_sub(&api->jobs_running, 1);
}
