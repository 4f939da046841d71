/* One DICOM file through the whole pipeline: parse, resolve the patient ID, render, predict,
 * heatmap, PNGs, PDF, predictions JSON, and either the four output files (written as one atomic
 * group: all or nothing) or base64 strings. Errors carry the v1 status and Message; internal
 * causes stay in the log. The Data object and the files are made in api_outputs.c. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "dicom/dicom.h"
#include "image/image.h"
#include "nn/nn.h"
#include "report/report.h"

/* Work run beside the main pipeline thread: on 2 cores, the source PNG is encoded while the
 * network runs, and the PDF is drawn while the heatmap PNG is encoded, which shortens a single
 * request by the shorter of each pair. */
enum side_kind { SIDE_SOURCE_PNG, SIDE_PDF };

struct side_job {
    enum side_kind kind;
    enum cxr_image_png_compression png_compression;
    struct cxr_api_run_state *state;
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
    struct cxr_api_run_state *state = job->state;
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

static void state_release(struct cxr_api_run_state *state)
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

void cxr_api_run_fail_internal(struct cxr_api_result *result, const char *what,
                               const struct cxr_err *err)
{
    char cause[512];
    cxr_api_format(cause, sizeof cause, "%s: %s", what, err->message);
    cxr_api_result_error(result, CXR_API_SINGLE_INTERNAL, NULL, cause);
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
            .view_code_meaning = meta->view_code_meaning,
            .patient_orientation = meta->patient_orientation,
            .sop_class_uid = meta->sop_class_uid,
            .presentation_intent_type = meta->presentation_intent_type,
            .photometric_interpretation = desc.photometric_interpretation,
            .patient_age = meta->patient_age,
            .patient_birth_date = meta->patient_birth_date,
            .study_date = meta->study_date,
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

/* The file's Number of Frames (1 when absent or unreadable): the report says which frame. */
static uint32_t frame_count(const struct cxr_dicom_file *file)
{
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    struct cxr_err err = CXR_ERR_INIT;
    return cxr_dicom_file_pixels(file, &desc, &pixels, &err) == CXR_OK ? desc.number_of_frames : 1;
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
    snprintf(result->thresholds, sizeof result->thresholds, "%s", api->thresholds_used);
    pthread_rwlock_unlock(&api->thresholds_lock);
}

static void job_run(struct cxr_api *api, const struct cxr_api_job *job,
                    struct cxr_api_result *result)
{
    memset(result, 0, sizeof *result);
    result->status = 200;
    struct cxr_api_run_state state = {0};
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
        cxr_api_run_fail_internal(result, "DICOM read", &err);
        goto done;
    }
    if (status != CXR_OK) {
        cxr_api_format(message, sizeof message, "%s (%s)", job->input_path, err.message);
        cxr_api_result_error(result, CXR_API_DICOM_UNREADABLE, message, NULL);
        goto done;
    }
    const struct cxr_dicom_meta *meta = cxr_dicom_file_meta(state.file);
    result->sop_instance_uid = strdup(meta->sop_instance_uid);
    if (result->sop_instance_uid == NULL) {
        cxr_err_set(&err, CXR_ERR_NOMEM, "out of memory");
        cxr_api_run_fail_internal(result, "DICOM read", &err);
        goto done;
    }

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
        cxr_api_run_fail_internal(result, "rendering", &err);
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
        cxr_api_run_fail_internal(result, "inference", &err);
        goto done;
    }
    state.have_prediction = true;
    if (!gate_image(api, &state.prediction, result))
        goto done;
    snprintf(result->result, sizeof result->result, "%s",
             cxr_model_result_name(state.prediction.result));
    if (job->predict_only) {
        /* Scores for cxrd calibrate: same parse, render, gate and network, nothing drawn. */
        result->data = cxr_api_data_build(&state.prediction, patient_id, meta,
                                          cxr_model_version(api->model));
        if (result->data == NULL) {
            struct cxr_err oom = CXR_ERR_INIT;
            cxr_err_set(&oom, CXR_ERR_NOMEM, "out of memory");
            cxr_api_run_fail_internal(result, "building JSON", &oom);
        }
        goto done;
    }
    bool normal = state.prediction.result == CXR_RESULT_NORMAL;

    if (!normal) {
        start = cxr_api_now();
        status = cxr_report_heatmap_render(&state.source, &state.prediction, &state.heatmap, &err);
        if (status == CXR_OK && result->gate_flagged)
            status = cxr_report_heatmap_add_warning(&state.heatmap, result->message, &err);
        result->stage_seconds[CXR_STAGE_HEATMAP] = cxr_api_now() - start;
        if (status != CXR_OK) {
            cxr_api_run_fail_internal(result, "heatmap", &err);
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
                .dicom_patient_id = meta->patient_id,
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
                .frame_count = frame_count(state.file),
                .model_version = cxr_model_version(api->model),
                .thresholds = api->thresholds_used,
                .report_time = report_time,
                .timezone = api->config->report_timezone,
                /* warn mode: the PDF (also inside the DICOM outputs) carries the gate's word */
                .warning = result->gate_flagged ? result->message : NULL,
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
        cxr_api_run_fail_internal(result, "PNG encoding", &err);
        goto done;
    }
    if (side_join(&pdf) != CXR_OK) {
        cxr_api_run_fail_internal(result, "PDF report", &pdf.err);
        goto done;
    }
    result->stage_seconds[CXR_STAGE_PDF] = pdf.seconds;
    if (job->dicom_outputs && job->output_folder) {
        status = cxr_api_dicom_outputs_build(
                api, meta, &state.prediction, normal ? NULL : &state.heatmap, &state.source,
                &state.pdf, result->gate_flagged, report_time, &state.dicom, &err);
        if (status == CXR_ERR_INVALID_ARG) {
            /* The source lacks what the outputs must refer to: the client's data, a 400. */
            cxr_api_format(message, sizeof message, "%s (%s)", job->input_path, err.message);
            cxr_api_result_error(result, CXR_API_DICOM_OUTPUTS_SOURCE, message, NULL);
            goto done;
        }
        if (status != CXR_OK) {
            cxr_api_run_fail_internal(result, "DICOM outputs", &err);
            goto done;
        }
    }

    json_t *data =
            cxr_api_data_build(&state.prediction, patient_id, meta, cxr_model_version(api->model));
    if (data == NULL || !cxr_api_image_fields_set(job, &state, patient_id, data, &result->images)) {
        json_decref(data);
        cxr_api_result_error(result, CXR_API_SINGLE_INTERNAL, NULL, "out of memory building JSON");
        goto done;
    }
    if (job->output_folder && !cxr_api_outputs_write(api, job, &state, patient_id, data, result)) {
        json_decref(data);
        goto done;
    }
    if (job->explain && job->output_folder) {
        char *path = cxr_api_output_path_build(job->output_folder, patient_id, "_cams.npy");
        int64_t dims[3] = {CXR_FINDING_COUNT, state.prediction.cam_height,
                           state.prediction.cam_width};
        status =
                path ? cxr_nn_npy_write(path, state.prediction.cams, 3, dims, &err) : CXR_ERR_NOMEM;
        free(path);
        if (status != CXR_OK) {
            json_decref(data);
            cxr_api_run_fail_internal(result, "class maps (.npy)", &err);
            goto done;
        }
    }
    result->data = data;

done:
    /* The side jobs read the state: they finish before it is freed, whatever happened. */
    side_join(&source_png);
    side_join(&pdf);
    if (result->status == 500 && !(result->no_space && job->caller_logs_no_space))
        cxr_log(CXR_LOG_ERROR, "%s: %s", job->input_path, result->cause);
    state_release(&state);
    cxr_api_memory_release(api, reserved);
    atomic_fetch_sub(&api->jobs_running, 1);
}
