/* The result as a Chest CAD SR (PS3.3 A.35.6, root template TID 4100): the overall result as
 * the CAD processing summary, every finding as a Single Image Finding with its score as
 * Certainty of Finding, its presence as the Rendering Intent (present: presentation required;
 * below its threshold: not for presentation, as CAD SR marks findings under the operating
 * point), and the algorithm (name, model version, operating point). docs/dicom-outputs.md. */
#include <stdio.h>
#include <string.h>

#include "report/report_dicom_internal.h"

#define TAG          REPORT_TAG
#define LOCAL_SCHEME "99CXRD"

struct code {
    const char *value, *scheme, *meaning;
};

/* The findings in API order: SNOMED CT concepts where one matches the finding as the model
 * means it, cxrd's local codes otherwise (meaning = the API's name). */
static const struct code finding_codes[CXR_FINDING_COUNT] = {
        {"56717001", "SCT", "Tuberculosis"},
        {"8186001", "SCT", "Cardiomegaly"},
        {"PLTHICK", LOCAL_SCHEME, "Pleural Thickening"},
        {"60046008", "SCT", "Pleural effusion"},
        {"36118008", "SCT", "Pneumothorax"},
        {"CONSOL", LOCAL_SCHEME, "Consolidation"},
        {"46621007", "SCT", "Atelectasis"},
        {"NODMASS", LOCAL_SCHEME, "Nodule Mass"},
        {"FIBROSIS", LOCAL_SCHEME, "Fibrosis"},
        {"INFILTR", LOCAL_SCHEME, "Infiltration"},
        {"CALCIF", LOCAL_SCHEME, "Calcification"},
};

static const struct code chest_cad_report = {"111036", "DCM", "Chest CAD Report"};
static const struct code language = {"121049", "DCM", "Language of Content Item and Descendants"};
static const struct code english = {"en", "RFC5646", "English"};
static const struct code observer_type = {"121005", "DCM", "Observer Type"};
static const struct code device = {"121007", "DCM", "Device"};
static const struct code device_uid = {"121012", "DCM", "Device Observer UID"};
static const struct code device_name = {"121013", "DCM", "Device Observer Name"};
static const struct code image_library = {"111028", "DCM", "Image Library"};
static const struct code summary = {"111017", "DCM", "CAD Processing and Findings Summary"};
static const struct code with_findings = {"111242", "DCM",
                                          "All algorithms succeeded; with findings"};
static const struct code without_findings = {"111241", "DCM",
                                             "All algorithms succeeded; without findings"};
static const struct code overall_result = {"RESULT", LOCAL_SCHEME, "Overall result"};
static const struct code thresholds_used = {"THRESHOLDS", LOCAL_SCHEME, "Thresholds used"};
static const struct code single_finding = {"111059", "DCM", "Single Image Finding"};
static const struct code rendering_intent = {"111056", "DCM", "Rendering Intent"};
static const struct code presentation_required = {
        "111150", "DCM", "Presentation Required: Rendering device is expected to present"};
static const struct code not_for_presentation = {
        "111152", "DCM", "Not for Presentation: Rendering device expected not to present"};
static const struct code certainty = {"111012", "DCM", "Certainty of Finding"};
static const struct code algorithm_name = {"111001", "DCM", "Algorithm Name"};
static const struct code algorithm_version = {"111003", "DCM", "Algorithm Version"};
static const struct code operating_point = {"111071", "DCM", "CAD Operating Point"};
static const struct code percent = {"%", "UCUM", "Percent"};
static const struct code no_units = {"1", "UCUM", "no units"};

/* The UID of cxrd as the observing device (its implementation UID, dicom_write.c). */
#define DEVICE_OBSERVER_UID "2.25.300628122466630820463293918074614870118"

static void code_sequence(struct cxr_dicom_writer *w, uint32_t tag, const struct code *code)
{
    report_dicom_write_code(w, tag, code->value, code->scheme, code->meaning);
}

/* Opens a content item: relationship, value type and concept name (none when concept NULL). */
static void item_begin(struct cxr_dicom_writer *w, const char *relationship, const char *value_type,
                       const struct code *concept)
{
    cxr_dicom_writer_item_begin(w);
    cxr_dicom_writer_string(w, TAG(0x0040, 0xA010), "CS", relationship);
    cxr_dicom_writer_string(w, TAG(0x0040, 0xA040), "CS", value_type);
    if (concept)
        code_sequence(w, TAG(0x0040, 0xA043), concept);
}

static void code_item(struct cxr_dicom_writer *w, const char *relationship,
                      const struct code *concept, const struct code *value)
{
    item_begin(w, relationship, "CODE", concept);
    code_sequence(w, TAG(0x0040, 0xA168), value);
    cxr_dicom_writer_item_end(w);
}

static void text_item(struct cxr_dicom_writer *w, const char *relationship,
                      const struct code *concept, const char *text)
{
    item_begin(w, relationship, "TEXT", concept);
    cxr_dicom_writer_string(w, TAG(0x0040, 0xA160), "UT", text);
    cxr_dicom_writer_item_end(w);
}

static void num_item(struct cxr_dicom_writer *w, const char *relationship,
                     const struct code *concept, double value, const struct code *units)
{
    char number[17];
    snprintf(number, sizeof number, "%.6g", value);
    item_begin(w, relationship, "NUM", concept);
    cxr_dicom_writer_sequence_begin(w, TAG(0x0040, 0xA300));
    cxr_dicom_writer_item_begin(w);
    code_sequence(w, TAG(0x0040, 0x08EA), units);
    cxr_dicom_writer_string(w, TAG(0x0040, 0xA30A), "DS", number);
    cxr_dicom_writer_item_end(w);
    cxr_dicom_writer_sequence_end(w);
    cxr_dicom_writer_item_end(w);
}

static void finding_item(struct cxr_dicom_writer *w, const struct cxr_finding *finding,
                         const struct code *code, const char *model_version)
{
    /* TID 4100: the summary is INFERRED FROM its findings (only a CONTAINER may CONTAIN). */
    item_begin(w, "INFERRED FROM", "CODE", &single_finding);
    code_sequence(w, TAG(0x0040, 0xA168), code);
    cxr_dicom_writer_sequence_begin(w, TAG(0x0040, 0xA730));
    code_item(w, "HAS CONCEPT MOD", &rendering_intent,
              finding->presence ? &presentation_required : &not_for_presentation);
    num_item(w, "HAS PROPERTIES", &certainty, 100.0 * finding->confidence, &percent);
    text_item(w, "HAS PROPERTIES", &algorithm_name, "cxrd");
    text_item(w, "HAS PROPERTIES", &algorithm_version, model_version);
    num_item(w, "HAS PROPERTIES", &operating_point, finding->threshold, &no_units);
    cxr_dicom_writer_sequence_end(w);
    cxr_dicom_writer_item_end(w);
}

static void content_tree(struct cxr_dicom_writer *w, const struct cxr_report_dicom_info *info,
                         const struct cxr_prediction *prediction)
{
    const char *model_version = info->model_version ? info->model_version : "";
    cxr_dicom_writer_sequence_begin(w, TAG(0x0040, 0xA730));
    code_item(w, "HAS CONCEPT MOD", &language, &english);
    code_item(w, "HAS OBS CONTEXT", &observer_type, &device);
    item_begin(w, "HAS OBS CONTEXT", "UIDREF", &device_uid);
    cxr_dicom_writer_string(w, TAG(0x0040, 0xA124), "UI", DEVICE_OBSERVER_UID);
    cxr_dicom_writer_item_end(w);
    text_item(w, "HAS OBS CONTEXT", &device_name, "cxrd");

    /* Image library: the one image the findings come from. */
    item_begin(w, "CONTAINS", "CONTAINER", &image_library);
    cxr_dicom_writer_string(w, TAG(0x0040, 0xA050), "CS", "SEPARATE");
    cxr_dicom_writer_sequence_begin(w, TAG(0x0040, 0xA730));
    cxr_dicom_writer_item_begin(w);
    report_dicom_write_source_reference(w, TAG(0x0008, 0x1199), info->source);
    cxr_dicom_writer_string(w, TAG(0x0040, 0xA010), "CS", "CONTAINS");
    cxr_dicom_writer_string(w, TAG(0x0040, 0xA040), "CS", "IMAGE");
    cxr_dicom_writer_item_end(w);
    cxr_dicom_writer_sequence_end(w);
    cxr_dicom_writer_item_end(w);

    bool any_present = prediction->result != CXR_RESULT_NORMAL;
    item_begin(w, "CONTAINS", "CODE", &summary);
    code_sequence(w, TAG(0x0040, 0xA168), any_present ? &with_findings : &without_findings);
    cxr_dicom_writer_sequence_begin(w, TAG(0x0040, 0xA730));
    /* Properties of the summary: the Chest CAD SR constraints (PS3.3 A.35.6) let a CODE hold
     * TEXT by HAS PROPERTIES, not by CONTAINS. */
    text_item(w, "HAS PROPERTIES", &overall_result, cxr_model_result_name(prediction->result));
    if (info->thresholds && info->thresholds[0])
        text_item(w, "HAS PROPERTIES", &thresholds_used, info->thresholds);
    for (size_t i = 0; i < CXR_FINDING_COUNT; i++)
        finding_item(w, &prediction->findings[i], &finding_codes[i], model_version);
    cxr_dicom_writer_sequence_end(w);
    cxr_dicom_writer_item_end(w);
    cxr_dicom_writer_sequence_end(w);
}

enum cxr_status cxr_report_dicom_sr(const struct cxr_report_dicom_info *info,
                                    const struct cxr_prediction *prediction, struct cxr_buf *out,
                                    struct cxr_err *err)
{
    const struct cxr_dicom_meta *source = info->source;
    enum cxr_status status = report_dicom_check_source(info, err);
    if (status != CXR_OK)
        return status;
    struct report_dicom_object object;
    status = report_dicom_object_begin(&object, info, REPORT_DICOM_SR, "AI findings (cxrd)", NULL,
                                       err);
    if (status != CXR_OK)
        return status;
    struct cxr_dicom_writer *w = object.writer;
    report_dicom_write_head(&object, info);
    /* The local codes' scheme, so a reader can tell whose codes they are. */
    cxr_dicom_writer_sequence_begin(w, TAG(0x0008, 0x0110));
    cxr_dicom_writer_item_begin(w);
    cxr_dicom_writer_string(w, TAG(0x0008, 0x0102), "SH", LOCAL_SCHEME);
    cxr_dicom_writer_string(w, TAG(0x0008, 0x0115), "ST", "cxrd local codes");
    cxr_dicom_writer_item_end(w);
    cxr_dicom_writer_sequence_end(w);
    report_dicom_write_series_description(&object);
    cxr_dicom_writer_sequence_begin(w, TAG(0x0008, 0x1111)); /* type 2: empty */
    cxr_dicom_writer_sequence_end(w);
    report_dicom_write_patient(&object, info);
    report_dicom_write_series(&object, info);

    /* SR Document Content, root: CONTAINER "Chest CAD Report" of template 4100. */
    cxr_dicom_writer_string(w, TAG(0x0040, 0xA040), "CS", "CONTAINER");
    code_sequence(w, TAG(0x0040, 0xA043), &chest_cad_report);
    cxr_dicom_writer_string(w, TAG(0x0040, 0xA050), "CS", "SEPARATE");
    cxr_dicom_writer_sequence_begin(w, TAG(0x0040, 0xA372)); /* type 2: empty */
    cxr_dicom_writer_sequence_end(w);
    /* Current Requested Procedure Evidence: the source image, by study and series. */
    cxr_dicom_writer_sequence_begin(w, TAG(0x0040, 0xA375));
    cxr_dicom_writer_item_begin(w);
    cxr_dicom_writer_sequence_begin(w, TAG(0x0008, 0x1115));
    cxr_dicom_writer_item_begin(w);
    report_dicom_write_source_reference(w, TAG(0x0008, 0x1199), source);
    cxr_dicom_writer_string(w, TAG(0x0020, 0x000E), "UI", source->series_instance_uid);
    cxr_dicom_writer_item_end(w);
    cxr_dicom_writer_sequence_end(w);
    cxr_dicom_writer_string(w, TAG(0x0020, 0x000D), "UI", source->study_instance_uid);
    cxr_dicom_writer_item_end(w);
    cxr_dicom_writer_sequence_end(w);
    cxr_dicom_writer_string(w, TAG(0x0040, 0xA491), "CS", "COMPLETE");
    cxr_dicom_writer_string(w, TAG(0x0040, 0xA493), "CS", "UNVERIFIED");
    cxr_dicom_writer_sequence_begin(w, TAG(0x0040, 0xA504));
    cxr_dicom_writer_item_begin(w);
    cxr_dicom_writer_string(w, TAG(0x0008, 0x0105), "CS", "DCMR");
    cxr_dicom_writer_string(w, TAG(0x0040, 0xDB00), "CS", "4100");
    cxr_dicom_writer_item_end(w);
    cxr_dicom_writer_sequence_end(w);
    content_tree(w, info, prediction);
    return report_dicom_object_finish(&object, out, err);
}
