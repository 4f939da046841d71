/* The fixed vocabulary of the API: the 11 finding names in API order and the overall-result
 * rule that turns per-finding presence into Normal / Abnormal / TB Presumptive. */
#include <string.h>

#include "model/model.h"

const char *const cxr_model_finding_names[CXR_FINDING_COUNT] = {
        "Tuberculosis", "Cardiomegaly",  "Pleural Thickening", "Pleural Effusion",
        "Pneumothorax", "Consolidation", "Atelectasis",        "Nodule Mass",
        "Fibrosis",     "Infiltration",  "Calcification",
};

const char *cxr_model_result_name(enum cxr_result result)
{
    switch (result) {
    case CXR_RESULT_NORMAL:
        return "Normal";
    case CXR_RESULT_ABNORMAL:
        return "Abnormal";
    case CXR_RESULT_TB_PRESUMPTIVE:
        return "TB Presumptive";
    }
    return "Unknown";
}

int cxr_model_finding_index(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < CXR_FINDING_COUNT; i++) {
        if (strcmp(cxr_model_finding_names[i], name) == 0)
            return i;
    }
    return -1;
}

enum cxr_result cxr_model_result_decide(const struct cxr_finding findings[CXR_FINDING_COUNT])
{
    /* Tuberculosis is index 0 in API order; it outranks every other finding. */
    if (findings[0].presence)
        return CXR_RESULT_TB_PRESUMPTIVE;
    for (int i = 1; i < CXR_FINDING_COUNT; i++) {
        if (findings[i].presence)
            return CXR_RESULT_ABNORMAL;
    }
    return CXR_RESULT_NORMAL;
}
