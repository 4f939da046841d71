/* The contract checks without a network: a valid description passes and resolves the label
 * mapping, thresholds and preprocessing; each table row breaks one rule and must be refused
 * with CXR_ERR_UNSUPPORTED and a message naming the cause. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "model/model_internal.h"

#define API_LABELS                                                                                 \
    "[\"Tuberculosis\", \"Cardiomegaly\", \"Pleural Thickening\", \"Pleural Effusion\", "          \
    "\"Pneumothorax\", \"Consolidation\", \"Atelectasis\", \"Nodule Mass\", \"Fibrosis\", "        \
    "\"Infiltration\", \"Calcification\"]"
/* The same 11 in another order, plus two extra labels the API does not report. */
#define SHUFFLED_LABELS                                                                            \
    "[\"Hernia\", \"Calcification\", \"Infiltration\", \"Fibrosis\", \"Nodule Mass\", "            \
    "\"Atelectasis\", \"Consolidation\", \"Pneumothorax\", \"Pleural Effusion\", "                 \
    "\"Pleural Thickening\", \"Cardiomegaly\", \"Tuberculosis\", \"Edema\"]"
#define PREPROCESS                                                                                 \
    "{\"height\": 256, \"width\": 224, \"resize\": \"stretch\", \"scale\": 0.0078431, "            \
    "\"offset\": -1.0}"

struct fixture {
    struct cxr_nn_tensor_info image, probabilities, cam, extra;
    const struct cxr_nn_tensor_info *inputs[2];
    const struct cxr_nn_tensor_info *outputs[3];
    struct cxr_model_source source;
};

static void fixture_init(struct fixture *f, uint32_t labels)
{
    memset(f, 0, sizeof(*f));
    f->image = (struct cxr_nn_tensor_info){"image", 4, {1, 1, 256, 224}};
    f->probabilities = (struct cxr_nn_tensor_info){"probabilities", 2, {1, labels}};
    f->cam = (struct cxr_nn_tensor_info){"cam", 4, {1, labels, 8, 7}};
    f->extra = (struct cxr_nn_tensor_info){"features", 4, {1, 32, 8, 7}};
    f->inputs[0] = &f->image;
    /* Outputs in an unusual order: the contract finds them by name. */
    f->outputs[0] = &f->cam;
    f->outputs[1] = &f->extra;
    f->outputs[2] = &f->probabilities;
    f->source = (struct cxr_model_source){
            .input_count = 1,
            .output_count = 3,
            .inputs = f->inputs,
            .outputs = f->outputs,
            .labels = labels == 11 ? API_LABELS : SHUFFLED_LABELS,
            .thresholds = "{\"Tuberculosis\": 0.3, \"Calcification\": 1.01, \"Nodule Mass\": 0}",
            .preprocess = PREPROCESS,
            .model_version = "v1.0.1",
    };
}

static void valid_contract_resolves(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 11);
    struct cxr_model_contract contract;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_model_contract_check(&f.source, &contract, &err), CXR_OK);
    assert_int_equal(contract.input.width, 224);
    assert_int_equal(contract.input.height, 256);
    assert_int_equal(contract.cam_width, 7);
    assert_int_equal(contract.cam_height, 8);
    assert_int_equal(contract.label_count, 11);
    assert_int_equal(contract.probabilities_output, 2);
    assert_int_equal(contract.cam_output, 0);
    assert_float_equal(contract.input.scale, 0.0078431f, 1e-9);
    assert_float_equal(contract.input.offset, -1.0f, 0);
    assert_int_equal(contract.input.equalize, CXR_EQUALIZE_NONE);
    assert_string_equal(contract.model_version, "v1.0.1");
    for (uint32_t k = 0; k < CXR_FINDING_COUNT; k++)
        assert_int_equal(contract.label_of_finding[k], k);
    assert_float_equal(contract.thresholds[0], 0.3, 0);
    assert_float_equal(contract.thresholds[10], 1.01, 0);
    assert_float_equal(contract.thresholds[7], 0.0, 0);
    assert_float_equal(contract.thresholds[1], 0.5, 0); /* default */
    assert_float_equal(contract.thresholds[9], 0.5, 0);

    /* Histogram equalisation is the one optional preprocessing step. */
    f.source.preprocess = "{\"height\": 256, \"width\": 224, \"resize\": \"stretch\", "
                          "\"equalize\": \"histogram\", \"scale\": 1, \"offset\": 0}";
    assert_int_equal(cxr_model_contract_check(&f.source, &contract, &err), CXR_OK);
    assert_int_equal(contract.input.equalize, CXR_EQUALIZE_HISTOGRAM);

    /* CLAHE, with its tiles and clip limit. */
    f.source.preprocess = "{\"height\": 256, \"width\": 224, \"equalize\": \"clahe\", "
                          "\"clahe_tiles\": 8, \"clahe_clip\": 2.5, \"scale\": 1, \"offset\": 0}";
    assert_int_equal(cxr_model_contract_check(&f.source, &contract, &err), CXR_OK);
    assert_int_equal(contract.input.equalize, CXR_EQUALIZE_CLAHE);
    assert_int_equal(contract.input.clahe_tiles, 8);
    assert_float_equal(contract.input.clahe_clip, 2.5, 0);

    /* No cxr.thresholds at all: 0.5 everywhere. */
    f.source.thresholds = NULL;
    assert_int_equal(cxr_model_contract_check(&f.source, &contract, &err), CXR_OK);
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        assert_float_equal(contract.thresholds[k], 0.5, 0);
}

static void shuffled_labels_map_to_api_order(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 13);
    f.source.thresholds = "{\"Edema\": 0.9, \"Cardiomegaly\": 0.25}";
    struct cxr_model_contract contract;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_model_contract_check(&f.source, &contract, &err), CXR_OK);
    /* Channel i of SHUFFLED_LABELS: Hernia 0, Calcification 1, ..., Tuberculosis 11, Edema 12. */
    const uint32_t expected[CXR_FINDING_COUNT] = {11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
    for (int k = 0; k < CXR_FINDING_COUNT; k++)
        assert_int_equal(contract.label_of_finding[k], expected[k]);
    assert_float_equal(contract.thresholds[1], 0.25, 0);
    assert_int_equal(contract.label_count, 13);
}

struct refusal {
    const char *what;
    void (*breaks)(struct fixture *f);
    const char *message; /* substring of the error */
};

static void no_cam(struct fixture *f)
{
    f->outputs[0] = &f->extra;
}
static void cam_wrong_rank(struct fixture *f)
{
    f->cam.rank = 3;
}
static void cam_wrong_count(struct fixture *f)
{
    f->cam.dims[1] = 10;
}
static void no_probabilities(struct fixture *f)
{
    f->source.output_count = 2;
}
static void probabilities_3d(struct fixture *f)
{
    f->probabilities = (struct cxr_nn_tensor_info){"probabilities", 3, {1, 11, 1}};
}
static void input_renamed(struct fixture *f)
{
    f->image.name = "input";
}
static void input_rgb(struct fixture *f)
{
    f->image.dims[1] = 3;
}
static void two_inputs(struct fixture *f)
{
    f->inputs[1] = &f->extra;
    f->source.input_count = 2;
}
static void labels_missing(struct fixture *f)
{
    f->source.labels = NULL;
}
static void labels_misspelled(struct fixture *f)
{
    f->source.labels = "[\"Tuberculosis\", \"Cardiomegaly\", \"Pleural Thickening\", "
                       "\"Pleural Effusion\", \"Pneumothorax\", \"Consolidation\", "
                       "\"Atelectasis\", \"Nodule\", \"Fibrosis\", \"Infiltration\", "
                       "\"Calcification\"]";
}
static void labels_duplicate(struct fixture *f)
{
    f->source.labels = "[\"Tuberculosis\", \"Tuberculosis\", \"Pleural Thickening\", "
                       "\"Pleural Effusion\", \"Pneumothorax\", \"Consolidation\", "
                       "\"Atelectasis\", \"Nodule Mass\", \"Fibrosis\", \"Infiltration\", "
                       "\"Calcification\"]";
}
static void labels_not_json(struct fixture *f)
{
    f->source.labels = "[\"Tuberculosis\", ";
}
static void labels_object(struct fixture *f)
{
    f->source.labels = "{\"Tuberculosis\": 0}";
}
static void labels_number(struct fixture *f)
{
    f->source.labels = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]";
}
static void labels_count(struct fixture *f)
{
    f->source.labels = "[\"Tuberculosis\"]";
}
static void thresholds_not_json(struct fixture *f)
{
    f->source.thresholds = "{Tuberculosis: 0.5}";
}
static void thresholds_unknown_name(struct fixture *f)
{
    f->source.thresholds = "{\"Nodule\": 0.5}";
}
static void thresholds_negative(struct fixture *f)
{
    f->source.thresholds = "{\"Fibrosis\": -0.1}";
}
static void thresholds_string(struct fixture *f)
{
    f->source.thresholds = "{\"Fibrosis\": \"0.5\"}";
}
static void thresholds_array(struct fixture *f)
{
    f->source.thresholds = "[0.5]";
}
static void preprocess_missing(struct fixture *f)
{
    f->source.preprocess = NULL;
}
static void preprocess_size_mismatch(struct fixture *f)
{
    f->source.preprocess = "{\"height\": 224, \"width\": 224, \"scale\": 1, \"offset\": 0}";
}
static void preprocess_no_scale(struct fixture *f)
{
    f->source.preprocess = "{\"height\": 256, \"width\": 224, \"offset\": 0}";
}
static void preprocess_crop(struct fixture *f)
{
    f->source.preprocess = "{\"height\": 256, \"width\": 224, \"resize\": \"center-crop\", "
                           "\"scale\": 1, \"offset\": 0}";
}
static void preprocess_zero_scale(struct fixture *f)
{
    f->source.preprocess = "{\"height\": 256, \"width\": 224, \"scale\": 0, \"offset\": 0}";
}
static void preprocess_duplicate_key(struct fixture *f)
{
    f->source.preprocess =
            "{\"height\": 256, \"height\": 1, \"width\": 224, \"scale\": 1, \"offset\": 0}";
}
static void preprocess_unknown_equalize(struct fixture *f)
{
    f->source.preprocess = "{\"height\": 256, \"width\": 224, \"equalize\": \"adaptive\", "
                           "\"scale\": 1, \"offset\": 0}";
}
static void preprocess_clahe_no_tiles(struct fixture *f)
{
    f->source.preprocess = "{\"height\": 256, \"width\": 224, \"equalize\": \"clahe\", "
                           "\"clahe_clip\": 2, \"scale\": 1, \"offset\": 0}";
}
static void preprocess_clahe_fractional_tiles(struct fixture *f)
{
    f->source.preprocess = "{\"height\": 256, \"width\": 224, \"equalize\": \"clahe\", "
                           "\"clahe_tiles\": 7.5, \"clahe_clip\": 2, \"scale\": 1, "
                           "\"offset\": 0}";
}
static void preprocess_clahe_low_clip(struct fixture *f)
{
    f->source.preprocess = "{\"height\": 256, \"width\": 224, \"equalize\": \"clahe\", "
                           "\"clahe_tiles\": 8, \"clahe_clip\": 0.5, \"scale\": 1, "
                           "\"offset\": 0}";
}
static void version_missing(struct fixture *f)
{
    f->source.model_version = NULL;
}
static void version_empty(struct fixture *f)
{
    f->source.model_version = "";
}
static void version_control(struct fixture *f)
{
    f->source.model_version = "v1\n<script>";
}

static const struct refusal refusals[] = {
        {"missing cam output", no_cam, "no output named \"cam\""},
        {"cam rank 3", cam_wrong_rank, "output \"cam\" has shape [1,11,8]"},
        {"cam with 10 maps", cam_wrong_count, "expected [1,11,h,w]"},
        {"missing probabilities", no_probabilities, "no output named \"probabilities\""},
        {"probabilities rank 3", probabilities_3d, "expected [1,K]"},
        {"input renamed", input_renamed, "expected \"image\""},
        {"RGB input", input_rgb, "[1,3,256,224], expected [1,1,H,W]"},
        {"two inputs", two_inputs, "2 inputs"},
        {"no labels", labels_missing, "cxr.labels is missing"},
        {"misspelled label", labels_misspelled, "lacks \"Nodule Mass\""},
        {"duplicate label", labels_duplicate, "names \"Tuberculosis\" twice"},
        {"labels not JSON", labels_not_json, "cxr.labels is not valid JSON"},
        {"labels object", labels_object, "must be a JSON array"},
        {"labels numbers", labels_number, "entry 0 is not a string"},
        {"labels count", labels_count, "has 1 names but \"probabilities\" has 11"},
        {"thresholds not JSON", thresholds_not_json, "cxr.thresholds is not valid JSON"},
        {"threshold for unknown", thresholds_unknown_name, "\"Nodule\", which is not in"},
        {"negative threshold", thresholds_negative, "[\"Fibrosis\"] must be a number >= 0"},
        {"string threshold", thresholds_string, "[\"Fibrosis\"] must be a number"},
        {"thresholds array", thresholds_array, "must be a JSON object"},
        {"no preprocess", preprocess_missing, "cxr.preprocess is missing"},
        {"preprocess size", preprocess_size_mismatch, "differs from the input"},
        {"preprocess scale", preprocess_no_scale, "needs a number \"scale\""},
        {"preprocess crop", preprocess_crop, "must be \"stretch\""},
        {"preprocess zero scale", preprocess_zero_scale, "out of range"},
        {"preprocess duplicate", preprocess_duplicate_key, "cxr.preprocess is not valid JSON"},
        {"unknown equalisation", preprocess_unknown_equalize,
         "\"equalize\" must be \"histogram\" or \"clahe\""},
        {"CLAHE without tiles", preprocess_clahe_no_tiles, "needs a number \"clahe_tiles\""},
        {"CLAHE fractional tiles", preprocess_clahe_fractional_tiles, "(got 7.5 and 2)"},
        {"CLAHE clip below 1", preprocess_clahe_low_clip, "(got 8 and 0.5)"},
        {"no version", version_missing, "cxr.model_version is missing"},
        {"empty version", version_empty, "cxr.model_version is missing or empty"},
        {"control chars", version_control, "printable ASCII"},
};

static void refusals_name_the_cause(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        struct fixture f;
        fixture_init(&f, 11);
        refusals[i].breaks(&f);
        struct cxr_model_contract contract;
        memset(&contract, 0x5a, sizeof(contract));
        struct cxr_err err = CXR_ERR_INIT;
        enum cxr_status status = cxr_model_contract_check(&f.source, &contract, &err);
        if (status != CXR_ERR_UNSUPPORTED || strstr(err.message, refusals[i].message) == NULL ||
            strncmp(err.message, "model contract: ", 16) != 0)
            fail_msg("%s: status %s, message \"%s\", expected \"%s\"", refusals[i].what,
                     cxr_status_name(status), err.message, refusals[i].message);
        assert_int_equal(contract.input.width, 0x5a5a5a5a); /* untouched on failure */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(valid_contract_resolves),
            cmocka_unit_test(shuffled_labels_map_to_api_order),
            cmocka_unit_test(refusals_name_the_cause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
