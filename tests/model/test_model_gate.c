/* The input gate without a network: the attribute layer table-driven (each row an image's tags
 * and the refusal it must produce, or none), cxr.gate parsing, and the image score computed
 * by hand for a tiny gate. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/model_internal.h"

/* Each row starts from a chest CR and overrides the tags it tests. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Winitializer-overrides"
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Woverride-init"
#endif

struct attribute_case {
    struct cxr_gate_attributes image;
    const char *reason; /* NULL: accepted */
};

#define CHEST_CR(...)                                                                              \
    {                                                                                              \
        .modality = "CR", .body_part_examined = "CHEST", .view_position = "PA",                    \
        .patient_orientation = "L\\F", .photometric_interpretation = "MONOCHROME1",                \
        .patient_age = "045Y", .rows = 2048, .columns = 2048, .samples_per_pixel = 1, __VA_ARGS__  \
    }

static const struct attribute_case attribute_cases[] = {
        {CHEST_CR(), NULL},
        {CHEST_CR(.modality = "DX", .body_part_examined = "Thorax"), NULL},
        {CHEST_CR(.modality = "", .body_part_examined = "", .view_position = "",
                  .patient_orientation = "", .patient_age = ""),
         NULL},
        {CHEST_CR(.modality = "OT"), NULL}, /* digitised film: left to the image layer */
        {CHEST_CR(.modality = "RG"), NULL}, /* film/screen radiography */
        {CHEST_CR(.modality = "XC"), "Modality XC is not a radiograph (CR or DX)"},
        {CHEST_CR(.body_part_examined = "PORT CHEST"), NULL},
        {CHEST_CR(.view_position = "AP"), NULL},
        {CHEST_CR(.patient_age = "062"), NULL}, /* not an AS value: unknown age */
        {CHEST_CR(.modality = "CT"), "Modality CT is not a radiograph (CR or DX)"},
        {CHEST_CR(.modality = "MR"), "Modality MR is not a radiograph (CR or DX)"},
        {CHEST_CR(.modality = "US"), "Modality US is not a radiograph (CR or DX)"},
        {CHEST_CR(.modality = "MG"), "Modality MG is not a radiograph (CR or DX)"},
        {CHEST_CR(.body_part_examined = "HAND"), "BodyPartExamined HAND is not the chest"},
        {CHEST_CR(.body_part_examined = "EXTREMITY"),
         "BodyPartExamined EXTREMITY is not the chest"},
        {CHEST_CR(.body_part_examined = "Thoracic spine"),
         "BodyPartExamined Thoracic spine is not the chest"},
        {CHEST_CR(.body_part_examined = "TSPINE"), "BodyPartExamined TSPINE is not the chest"},
        {CHEST_CR(.body_part_examined = "BRUSTWIRBELSAEULE"),
         "BodyPartExamined BRUSTWIRBELSAEULE is not the chest"},
        {CHEST_CR(.body_part_examined = "CHESTABDOMEN"),
         "BodyPartExamined CHESTABDOMEN is not the chest"},
        {CHEST_CR(.body_part_examined = "CHEST RIBS"),
         "BodyPartExamined CHEST RIBS is not the chest"},
        {CHEST_CR(.body_part_examined = "THORAX PA"), NULL},
        {CHEST_CR(.body_part_examined = "LUNGS"), NULL},
        {CHEST_CR(.view_position = "LL"), "ViewPosition LL is a lateral view"},
        {CHEST_CR(.view_position = "LATERAL"), "ViewPosition LATERAL is a lateral view"},
        {CHEST_CR(.view_position = "RLO"), "ViewPosition RLO is an oblique view"},
        {CHEST_CR(.view_position = "Oblique"), "ViewPosition Oblique is an oblique view"},
        {CHEST_CR(.view_position = "LAO"), "ViewPosition LAO is an oblique view"},
        {CHEST_CR(.view_position = "LLD"), NULL}, /* decubitus: a frontal projection */
        /* the coded view (PS3.16 CID 4010 meanings) when ViewPosition is empty */
        {CHEST_CR(.view_position = "", .view_code_meaning = "postero-anterior"), NULL},
        {CHEST_CR(.view_position = "", .view_code_meaning = "antero-posterior"), NULL},
        {CHEST_CR(.view_position = "", .view_code_meaning = "left lateral"),
         "ViewCodeSequence \"left lateral\" is not a frontal view"},
        {CHEST_CR(.view_position = "", .view_code_meaning = "Right Lateral"),
         "ViewCodeSequence \"Right Lateral\" is not a frontal view"},
        {CHEST_CR(.view_position = "", .view_code_meaning = "right anterior oblique"),
         "ViewCodeSequence \"right anterior oblique\" is not a frontal view"},
        {CHEST_CR(.view_position = "", .view_code_meaning = "left lateral decubitus"), NULL},
        {CHEST_CR(.view_position = "", .patient_orientation = "P\\F"),
         "PatientOrientation P\\F is a lateral view"},
        {CHEST_CR(.patient_orientation = "L\\H"),
         "PatientOrientation L\\H: the image is upside down"},
        {CHEST_CR(.patient_orientation = "R\\HL"),
         "PatientOrientation R\\HL: the image is upside down"},
        {CHEST_CR(.patient_orientation = "R\\F"), NULL}, /* mirrored, still frontal */
        {CHEST_CR(.patient_orientation = "L\\FR"), NULL},
        {CHEST_CR(.photometric_interpretation = "RGB", .samples_per_pixel = 3),
         "PhotometricInterpretation RGB: a radiograph is a greyscale image (MONOCHROME1 or "
         "MONOCHROME2)"},
        {CHEST_CR(.modality = "DX", .presentation_intent_type = "FOR PRESENTATION",
                  .sop_class_uid = "1.2.840.10008.5.1.4.1.1.1.1"),
         NULL},
        {CHEST_CR(.modality = "DX", .presentation_intent_type = "FOR PROCESSING"),
         "PresentationIntentType FOR PROCESSING: raw detector data, not an image for "
         "presentation"},
        {CHEST_CR(.modality = "DX", .sop_class_uid = "1.2.840.10008.5.1.4.1.1.1.1.1"),
         "SOPClassUID 1.2.840.10008.5.1.4.1.1.1.1.1 is a For Processing class: raw detector "
         "data, not an image for presentation"},
        {CHEST_CR(.rows = 32, .columns = 32), "image size 32x32 is not that of a chest radiograph"},
        {CHEST_CR(.rows = 4000, .columns = 1000),
         "image size 1000x4000 is not that of a chest radiograph"},
        {CHEST_CR(.patient_age = "012Y"),
         "PatientAge 012Y is below the model's intended age (18 years)"},
        {CHEST_CR(.patient_age = "006M"),
         "PatientAge 006M is below the model's intended age (18 years)"},
        /* Without PatientAge, the age at the study from the birth date. */
        {CHEST_CR(.patient_age = "", .patient_birth_date = "20060615", .study_date = "20240614"),
         "PatientBirthDate 20060615 and StudyDate 20240614: age 17 years is below the model's "
         "intended age (18 years)"},
        {CHEST_CR(.patient_age = "", .patient_birth_date = "20060615", .study_date = "20240615"),
         NULL},
        {CHEST_CR(.patient_age = "", .patient_birth_date = "20150228", .study_date = "20230301"),
         "PatientBirthDate 20150228 and StudyDate 20230301: age 8 years is below the model's "
         "intended age (18 years)"},
        {CHEST_CR(.patient_age = "BAD", .patient_birth_date = "20150228", .study_date = "20230301"),
         "PatientBirthDate 20150228 and StudyDate 20230301: age 8 years is below the model's "
         "intended age (18 years)"},
        /* PatientAge, when it is an AS value, decides. */
        {CHEST_CR(.patient_age = "045Y", .patient_birth_date = "20150228",
                  .study_date = "20230301"),
         NULL},
        /* Unknown: a date missing or malformed, or the birth after the study. */
        {CHEST_CR(.patient_age = "", .patient_birth_date = "20150228", .study_date = ""), NULL},
        {CHEST_CR(.patient_age = "", .patient_birth_date = "2015-02-28", .study_date = "20230301"),
         NULL},
        {CHEST_CR(.patient_age = "", .patient_birth_date = "20151328", .study_date = "20230301"),
         NULL},
        {CHEST_CR(.patient_age = "", .patient_birth_date = "20240101", .study_date = "20230301"),
         NULL},
};

static void attribute_layer(void **state)
{
    (void)state;
    struct cxr_model_gate gate;
    assert_int_equal(cxr_model_gate_parse(NULL, 0, &gate, NULL), CXR_OK);
    assert_false(gate.enabled);
    for (size_t i = 0; i < sizeof attribute_cases / sizeof attribute_cases[0]; i++) {
        const struct attribute_case *row = &attribute_cases[i];
        char reason[512] = "";
        bool accepted = cxr_model_gate_check_attributes(&gate, &row->image, reason, sizeof reason);
        if (row->reason == NULL) {
            if (!accepted)
                fail_msg("row %zu refused: %s", i, reason);
        } else {
            assert_false(accepted);
            assert_string_equal(reason, row->reason);
        }
    }
}

/* A gate with 2 pooled features; weights: pooled (1, -1), thumbnail cell 0 weight 2, histogram
 * bin 31 weight 3, bias -1. */
static char *tiny_gate_json(double threshold)
{
    size_t count = 2 + 256 + 32;
    char *text = malloc(count * 8 + 200);
    size_t used = (size_t)sprintf(text, "{\"weights\":[");
    for (size_t i = 0; i < count; i++) {
        double w = i == 0 ? 1 : i == 1 ? -1 : i == 2 ? 2 : i == count - 1 ? 3 : 0;
        used += (size_t)sprintf(text + used, "%s%g", i ? "," : "", w);
    }
    sprintf(text + used, "],\"bias\":-1,\"threshold\":%g,\"min_age_years\":16}", threshold);
    return text;
}

static void image_score(void **state)
{
    (void)state;
    char *text = tiny_gate_json(0.5);
    struct cxr_model_gate gate;
    assert_int_equal(cxr_model_gate_parse(text, 2, &gate, NULL), CXR_OK);
    assert_true(gate.enabled);
    assert_true(gate.min_age_years == 16);
    /* A 32 x 32 input, scale 1 offset 0 (grey levels as they are): the top-left 2 x 2 block
     * (thumbnail cell 0) is 255, everything else 0. */
    float tensor[32 * 32] = {0};
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++)
            tensor[y * 32 + x] = 255;
    float pooled[2] = {0.5f, 0.25f};
    double score = cxr_model_gate_score(&gate, pooled, tensor, 32, 32, 1.0f, 0.0f);
    /* logit = -1 + 0.5 - 0.25 + 2 * (255 / 255) + 3 * (4 / 1024) */
    double logit = -1 + 0.5 - 0.25 + 2.0 + 3.0 * 4.0 / 1024.0;
    assert_true(fabs(score - 1.0 / (1.0 + exp(-logit))) < 1e-9);
    cxr_model_gate_release(&gate);
    free(text);
}

static void gate_json_refused(void **state)
{
    (void)state;
    struct cxr_model_gate gate;
    struct cxr_err err = CXR_ERR_INIT;
    char *text = tiny_gate_json(0.5);
    assert_int_equal(cxr_model_gate_parse(text, 3, &gate, &err), CXR_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "cxr.gate needs 291 weights"));
    assert_false(gate.enabled);
    free(text);
    err = (struct cxr_err)CXR_ERR_INIT;
    assert_int_equal(cxr_model_gate_parse("[1]", 2, &gate, &err), CXR_ERR_UNSUPPORTED);
    err = (struct cxr_err)CXR_ERR_INIT;
    assert_int_equal(cxr_model_gate_parse("{\"weights\":[],\"bias\":0}", 0, &gate, &err),
                     CXR_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(attribute_layer),
            cmocka_unit_test(image_score),
            cmocka_unit_test(gate_json_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
