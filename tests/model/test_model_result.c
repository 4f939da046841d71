/* The API vocabulary and the overall-result rule, table-driven: every row sets presence on a
 * set of findings and names the expected overall result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"

static void finding_names_match_api(void **state)
{
    (void)state;
    /* Spelling and order from spec/single_inference_v1.md "Prediction JSON Structure". */
    static const char *const expected[CXR_FINDING_COUNT] = {
            "Tuberculosis", "Cardiomegaly",  "Pleural Thickening", "Pleural Effusion",
            "Pneumothorax", "Consolidation", "Atelectasis",        "Nodule Mass",
            "Fibrosis",     "Infiltration",  "Calcification"};
    for (int i = 0; i < CXR_FINDING_COUNT; i++) {
        assert_string_equal(cxr_model_finding_names[i], expected[i]);
        assert_int_equal(cxr_model_finding_index(expected[i]), i);
    }
    assert_int_equal(cxr_model_finding_index("tuberculosis"), -1);
    assert_int_equal(cxr_model_finding_index("Nodule"), -1);
    assert_int_equal(cxr_model_finding_index(""), -1);
    assert_int_equal(cxr_model_finding_index(NULL), -1);
}

static void result_names(void **state)
{
    (void)state;
    assert_string_equal(cxr_model_result_name(CXR_RESULT_NORMAL), "Normal");
    assert_string_equal(cxr_model_result_name(CXR_RESULT_ABNORMAL), "Abnormal");
    assert_string_equal(cxr_model_result_name(CXR_RESULT_TB_PRESUMPTIVE), "TB Presumptive");
    assert_string_equal(cxr_model_result_name((enum cxr_result)7), "Unknown");
}

struct result_case {
    const char *present; /* comma-separated finding names that are present */
    enum cxr_result expected;
};

static const struct result_case result_cases[] = {
        {"", CXR_RESULT_NORMAL},
        {"Tuberculosis", CXR_RESULT_TB_PRESUMPTIVE},
        {"Cardiomegaly", CXR_RESULT_ABNORMAL},
        {"Calcification", CXR_RESULT_ABNORMAL},
        {"Pneumothorax,Fibrosis", CXR_RESULT_ABNORMAL},
        {"Tuberculosis,Consolidation", CXR_RESULT_TB_PRESUMPTIVE},
        {"Consolidation,Tuberculosis,Calcification", CXR_RESULT_TB_PRESUMPTIVE},
        {"Tuberculosis,Cardiomegaly,Pleural Thickening,Pleural Effusion,Pneumothorax,"
         "Consolidation,Atelectasis,Nodule Mass,Fibrosis,Infiltration,Calcification",
         CXR_RESULT_TB_PRESUMPTIVE},
        {"Cardiomegaly,Pleural Thickening,Pleural Effusion,Pneumothorax,"
         "Consolidation,Atelectasis,Nodule Mass,Fibrosis,Infiltration,Calcification",
         CXR_RESULT_ABNORMAL},
};

static void result_rule_table(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(result_cases) / sizeof(result_cases[0]); c++) {
        struct cxr_finding findings[CXR_FINDING_COUNT];
        for (int i = 0; i < CXR_FINDING_COUNT; i++) {
            findings[i] = (struct cxr_finding){cxr_model_finding_names[i], false, 0.1, 0.5};
        }
        char list[512];
        strncpy(list, result_cases[c].present, sizeof(list) - 1);
        list[sizeof(list) - 1] = '\0';
        char *save = NULL;
        for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
            int index = cxr_model_finding_index(name);
            assert_true(index >= 0);
            findings[index].presence = true;
        }
        enum cxr_result result = cxr_model_result_decide(findings);
        if (result != result_cases[c].expected)
            fail_msg("case %zu {%s}: got %s", c, result_cases[c].present,
                     cxr_model_result_name(result));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(finding_names_match_api),
            cmocka_unit_test(result_names),
            cmocka_unit_test(result_rule_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
