/* The model contract end to end on real ONNX files (fixtures from make_reference.py): load the
 * test model through nn/, predict on real radiographs, and compare probabilities and class maps
 * with PyTorch on the same preprocessed input; label mapping from a shuffled model; pinned
 * results through the heatmap and PDF; refusals of broken models; concurrent predictions. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"
#include "report/report.h"

#define FIXTURES "model_fixtures"
#define IMAGES   2

static struct cxr_nn_runtime *runtime;
static json_t *reference;
static struct cxr_gray8 images[IMAGES];

static struct cxr_gray8 read_pgm(const char *path)
{
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    unsigned width = 0, height = 0, maximum = 0;
    assert_int_equal(fscanf(file, "P5 %u %u %u", &width, &height, &maximum), 3);
    assert_int_equal(fgetc(file), '\n');
    assert_int_equal(maximum, 255);
    struct cxr_gray8 image = {width, height, malloc((size_t)width * height)};
    assert_non_null(image.pixels);
    assert_int_equal(fread(image.pixels, 1, (size_t)width * height, file), (size_t)width * height);
    fclose(file);
    return image;
}

static struct cxr_model *load(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), FIXTURES "/%s", name);
    struct cxr_limits limits = cxr_limits_default();
    struct cxr_model *model = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    enum cxr_status status = cxr_model_load(runtime, path, &limits, &model, &err);
    if (status != CXR_OK)
        fail_msg("%s: %s", path, err.message);
    return model;
}

static int setup(void **state)
{
    (void)state;
    json_error_t error;
    reference = json_load_file(FIXTURES "/reference.json", 0, &error);
    if (reference == NULL) {
        fprintf(stderr, "reference.json: %s\n", error.text);
        return -1;
    }
    for (int i = 0; i < IMAGES; i++) {
        char path[64];
        snprintf(path, sizeof(path), FIXTURES "/image%d.pgm", i);
        images[i] = read_pgm(path);
    }
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_nn_runtime_create(2, &runtime, &err) != CXR_OK) {
        fprintf(stderr, "runtime: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cxr_nn_runtime_destroy(runtime);
    for (int i = 0; i < IMAGES; i++)
        free(images[i].pixels);
    json_decref(reference);
    cxr_report_shutdown();
    return 0;
}

static double ref_value(int image, const char *model, const char *key, size_t i, size_t j)
{
    json_t *entry = json_object_get(
            json_array_get(json_object_get(reference, "images"), (size_t)image), model);
    json_t *value = json_array_get(json_object_get(entry, key), i);
    if (json_is_array(value))
        value = json_array_get(value, j);
    assert_true(json_is_number(value));
    return json_number_value(value);
}

/* Checks one prediction against PyTorch: probabilities within 1e-4, class maps within 1e-3 of
 * values of magnitude ~10 (logit units), presence and the result by the rule. */
static void check_against_reference(const struct cxr_prediction *prediction, int image,
                                    const char *model, bool check_thresholds)
{
    json_t *thresholds = json_object_get(reference, "thresholds");
    double worst = 0.0, worst_cam = 0.0;
    assert_int_equal(prediction->cam_width, 16);
    assert_int_equal(prediction->cam_height, 16);
    for (int k = 0; k < CXR_FINDING_COUNT; k++) {
        const struct cxr_finding *finding = &prediction->findings[k];
        assert_string_equal(finding->name, cxr_model_finding_names[k]);
        double expected = ref_value(image, model, "probabilities", (size_t)k, 0);
        worst = fmax(worst, fabs(finding->confidence - expected));
        if (check_thresholds)
            assert_float_equal(finding->threshold,
                               json_number_value(json_array_get(thresholds, (size_t)k)), 1e-12);
        assert_true(finding->presence == (finding->confidence >= finding->threshold));
        for (size_t p = 0; p < 256; p++) {
            double cam = ref_value(image, model, "cams", (size_t)k, p);
            worst_cam = fmax(worst_cam, fabs(prediction->cams[(size_t)k * 256 + p] - cam));
        }
    }
    printf("image %d, %s model: max |p - p_torch| = %.2e, max |cam - cam_torch| = %.2e\n", image,
           model, worst, worst_cam);
    assert_true(worst <= 1e-4);
    assert_true(worst_cam <= 1e-3);
    assert_int_equal(prediction->result, cxr_model_result_decide(prediction->findings));
}

static void probabilities_match_pytorch(void **state)
{
    (void)state;
    struct cxr_model *model = load("test_model.onnx");
    assert_string_equal(cxr_model_version(model), "test-untrained");
    uint32_t width = 0, height = 0;
    cxr_model_input_size(model, &width, &height);
    assert_int_equal(width, 256);
    assert_int_equal(height, 256);
    for (int i = 0; i < IMAGES; i++) {
        struct cxr_prediction prediction;
        struct cxr_err err = CXR_ERR_INIT;
        if (cxr_model_predict(model, &images[i], &prediction, &err) != CXR_OK)
            fail_msg("predict: %s", err.message);
        check_against_reference(&prediction, i, "api", true);
        cxr_model_prediction_release(&prediction);
        assert_null(prediction.cams);
    }
    cxr_model_destroy(model);
}

/* A pass on the calling thread alone (cxr_nn_runtime_set_parallel(false), what a busy server
 * does) gives exactly the values of a pass spread over the pool. */
static void serial_passes_equal_parallel_ones(void **state)
{
    (void)state;
    struct cxr_model *model = load("test_model.onnx");
    for (int i = 0; i < IMAGES; i++) {
        struct cxr_prediction parallel, serial;
        cxr_nn_runtime_set_parallel(runtime, true);
        assert_int_equal(cxr_model_predict(model, &images[i], &parallel, NULL), CXR_OK);
        cxr_nn_runtime_set_parallel(runtime, false);
        assert_int_equal(cxr_model_predict(model, &images[i], &serial, NULL), CXR_OK);
        cxr_nn_runtime_set_parallel(runtime, true);
        for (int k = 0; k < CXR_FINDING_COUNT; k++)
            assert_true(serial.findings[k].confidence == parallel.findings[k].confidence);
        assert_memory_equal(serial.cams, parallel.cams,
                            (size_t)CXR_FINDING_COUNT * 256 * sizeof(float));
        cxr_model_prediction_release(&parallel);
        cxr_model_prediction_release(&serial);
    }
    cxr_model_destroy(model);
}

static void shuffled_labels_map_to_api_order(void **state)
{
    (void)state;
    struct cxr_model *model = load("test_model_shuffled.onnx");
    for (int i = 0; i < IMAGES; i++) {
        struct cxr_prediction prediction;
        assert_int_equal(cxr_model_predict(model, &images[i], &prediction, NULL), CXR_OK);
        check_against_reference(&prediction, i, "shuffled", false);
        for (int k = 0; k < CXR_FINDING_COUNT; k++)
            assert_float_equal(prediction.findings[k].threshold, 0.5, 0);
        cxr_model_prediction_release(&prediction);
    }
    cxr_model_destroy(model);
}

static void pinned_results_through_report(void **state)
{
    (void)state;
    struct cxr_model *tb = load("test_model_tb.onnx");
    struct cxr_model *normal = load("test_model_normal.onnx");
    struct cxr_prediction prediction;
    assert_int_equal(cxr_model_predict(tb, &images[0], &prediction, NULL), CXR_OK);
    assert_int_equal(prediction.result, CXR_RESULT_TB_PRESUMPTIVE);
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        assert_true(prediction.findings[k].presence == (k == 0 || k == 8));
    struct cxr_rgb8 heatmap = {0};
    assert_int_equal(cxr_report_heatmap_render(&images[0], &prediction, &heatmap, NULL), CXR_OK);
    assert_int_equal(heatmap.width, images[0].width);
    struct cxr_report_info info = {.patient_name = "Test^Patient",
                                   .model_version = cxr_model_version(tb)};
    struct cxr_buf pdf = CXR_BUF_INIT(0);
    assert_int_equal(cxr_report_pdf_render(&info, &prediction, &images[0], &pdf, NULL), CXR_OK);
    assert_true(pdf.len > 1000);
    cxr_buf_release(&pdf);
    free(heatmap.pixels);
    cxr_model_prediction_release(&prediction);

    assert_int_equal(cxr_model_predict(normal, &images[1], &prediction, NULL), CXR_OK);
    assert_int_equal(prediction.result, CXR_RESULT_NORMAL);
    assert_int_equal(cxr_report_heatmap_render(&images[1], &prediction, &heatmap, NULL),
                     CXR_ERR_INVALID_ARG);
    cxr_model_prediction_release(&prediction);

    /* A site override switches Cardiomegaly on. */
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_model_threshold_set(normal, "Cardiomegaly", 0.0, &err), CXR_OK);
    assert_int_equal(cxr_model_threshold_set(normal, "Cardiomegally", 0.0, &err),
                     CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_model_threshold_set(normal, "Fibrosis", -1.0, NULL), CXR_ERR_INVALID_ARG);
    assert_float_equal(cxr_model_threshold(normal, 1), 0.0, 0);
    assert_int_equal(cxr_model_predict(normal, &images[1], &prediction, NULL), CXR_OK);
    assert_int_equal(prediction.result, CXR_RESULT_ABNORMAL);
    assert_true(prediction.findings[1].presence);
    cxr_model_prediction_release(&prediction);

    /* Any image size: resized to the network input. */
    struct cxr_gray8 odd = {600, 451, malloc(600 * 451)};
    assert_non_null(odd.pixels);
    for (size_t p = 0; p < 600 * 451; p++)
        odd.pixels[p] = (uint8_t)(p * 31 % 251);
    assert_int_equal(cxr_model_predict(tb, &odd, &prediction, NULL), CXR_OK);
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        assert_true(prediction.findings[k].confidence >= 0 &&
                    prediction.findings[k].confidence <= 1);
    cxr_model_prediction_release(&prediction);
    free(odd.pixels);
    cxr_model_destroy(tb);
    cxr_model_destroy(normal);
}

static void broken_models_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        enum cxr_status status;
        const char *message;
    } cases[] = {
            {"broken_no_cam.onnx", CXR_ERR_UNSUPPORTED, "no output named \"cam\""},
            {"broken_labels.onnx", CXR_ERR_UNSUPPORTED, "lacks \"Nodule Mass\""},
            {"broken_thresholds_json.onnx", CXR_ERR_UNSUPPORTED,
             "cxr.thresholds is not valid JSON"},
            {"broken_preprocess.onnx", CXR_ERR_UNSUPPORTED, "differs from the input"},
    };
    struct cxr_limits limits = cxr_limits_default();
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char path[256];
        snprintf(path, sizeof(path), FIXTURES "/%s", cases[c].file);
        struct cxr_model *model = (struct cxr_model *)&limits; /* must stay untouched */
        struct cxr_err err = CXR_ERR_INIT;
        enum cxr_status status = cxr_model_load(runtime, path, &limits, &model, &err);
        if (status != cases[c].status || strstr(err.message, cases[c].message) == NULL)
            fail_msg("%s: %s \"%s\"", cases[c].file, cxr_status_name(status), err.message);
        assert_ptr_equal(model, &limits);
    }
    struct cxr_model *model = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_not_equal(cxr_model_load(runtime, FIXTURES "/absent.onnx", &limits, &model, &err),
                         CXR_OK);
    assert_null(model);
    assert_true(err.message[0] != '\0');
}

struct worker {
    struct cxr_model *model;
    int failures;
    struct cxr_prediction expected[IMAGES];
};

static void *predict_many(void *argument)
{
    struct worker *worker = argument;
    for (int round = 0; round < 6; round++) {
        int i = round % IMAGES;
        struct cxr_prediction prediction;
        if (cxr_model_predict(worker->model, &images[i], &prediction, NULL) != CXR_OK) {
            worker->failures++;
            continue;
        }
        for (int k = 0; k < CXR_FINDING_COUNT; k++) {
            if (prediction.findings[k].confidence != worker->expected[i].findings[k].confidence)
                worker->failures++;
        }
        if (memcmp(prediction.cams, worker->expected[i].cams, sizeof(float) * 11 * 256) != 0)
            worker->failures++;
        cxr_model_prediction_release(&prediction);
    }
    return NULL;
}

static void concurrent_predictions_agree(void **state)
{
    (void)state;
    struct cxr_model *model = load("test_model.onnx");
    struct worker workers[4];
    memset(workers, 0, sizeof(workers));
    struct cxr_prediction expected[IMAGES];
    for (int i = 0; i < IMAGES; i++)
        assert_int_equal(cxr_model_predict(model, &images[i], &expected[i], NULL), CXR_OK);
    pthread_t threads[4];
    for (int t = 0; t < 4; t++) {
        workers[t].model = model;
        memcpy(workers[t].expected, expected, sizeof(expected));
        assert_int_equal(pthread_create(&threads[t], NULL, predict_many, &workers[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(workers[t].failures, 0);
    }
    for (int i = 0; i < IMAGES; i++)
        cxr_model_prediction_release(&expected[i]);
    cxr_model_destroy(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(probabilities_match_pytorch),
            cmocka_unit_test(serial_passes_equal_parallel_ones),
            cmocka_unit_test(shuffled_labels_map_to_api_order),
            cmocka_unit_test(pinned_results_through_report),
            cmocka_unit_test(broken_models_are_refused),
            cmocka_unit_test(concurrent_predictions_agree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
