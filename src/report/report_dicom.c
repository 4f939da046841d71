/* DICOM outputs for a PACS: what the three objects share (the copied Patient and Study modules,
 * new UIDs, the equipment) and the two simple ones, the heatmap as an RGB Secondary Capture and
 * the PDF report as an Encapsulated PDF. The structured report is report_sr.c. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cxr_version.h"
#include "report/report_dicom_internal.h"

#define TAG REPORT_TAG

static const char *const sop_classes[] = {
        [REPORT_DICOM_SR] = "1.2.840.10008.5.1.4.1.1.88.65",
        [REPORT_DICOM_SC] = "1.2.840.10008.5.1.4.1.1.7",
        [REPORT_DICOM_PDF] = "1.2.840.10008.5.1.4.1.1.104.1",
};
static const char *const modalities[] = {
        [REPORT_DICOM_SR] = "SR",
        [REPORT_DICOM_SC] = "OT",
        [REPORT_DICOM_PDF] = "DOC",
};
static const int series_numbers[] = {
        [REPORT_DICOM_SR] = CXR_REPORT_DICOM_SERIES_SR,
        [REPORT_DICOM_SC] = CXR_REPORT_DICOM_SERIES_HEATMAP,
        [REPORT_DICOM_PDF] = CXR_REPORT_DICOM_SERIES_PDF,
};

static bool is_ascii(const char *text)
{
    for (const unsigned char *c = (const unsigned char *)(text ? text : ""); *c; c++) {
        if (*c >= 0x80)
            return false;
    }
    return true;
}

enum cxr_status report_dicom_object_begin(struct report_dicom_object *object,
                                          const struct cxr_report_dicom_info *info,
                                          enum report_dicom_kind kind,
                                          const char *series_description,
                                          const char *const *extra_text, struct cxr_err *err)
{
    memset(object, 0, sizeof *object);
    object->kind = kind;
    object->sop_class_uid = sop_classes[kind];
    object->series_description = series_description;
    object->series_number = series_numbers[kind];
    enum cxr_status status = cxr_dicom_uid_generate(info->uid_root, object->sop_instance_uid, err);
    if (status == CXR_OK)
        status = cxr_dicom_uid_generate(info->uid_root, object->series_instance_uid, err);
    if (status != CXR_OK)
        return status;
    time_t seconds = (time_t)info->content_time;
    struct tm local;
    if (localtime_r(&seconds, &local) == NULL)
        return cxr_err_set(err, CXR_ERR_INTERNAL, "DICOM output: time out of range");
    strftime(object->date, sizeof object->date, "%Y%m%d", &local);
    strftime(object->time, sizeof object->time, "%H%M%S", &local);

    const struct cxr_dicom_meta *source = info->source;
    const char *copied[] = {source->patient_name_raw, source->patient_id,
                            source->accession_number, source->referring_physician_name_raw,
                            source->study_id,         info->model_version,
                            info->thresholds,         series_description};
    object->utf8 = false;
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
        object->utf8 |= !is_ascii(copied[i]);
    for (size_t i = 0; extra_text && extra_text[i]; i++)
        object->utf8 |= !is_ascii(extra_text[i]);
    return cxr_dicom_writer_create(0, &object->writer, err);
}

enum cxr_status report_dicom_object_finish(struct report_dicom_object *object, struct cxr_buf *out,
                                           struct cxr_err *err)
{
    enum cxr_status status = cxr_dicom_writer_finish(object->writer, object->sop_class_uid,
                                                     object->sop_instance_uid, out, err);
    cxr_dicom_writer_destroy(object->writer);
    object->writer = NULL;
    return status;
}

/* Characters (UTF-8 code points) in text. */
static size_t characters(const char *text)
{
    size_t count = 0;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        count += (*c & 0xC0) != 0x80;
    return count;
}

static bool all_of(const char *text, const char *allowed)
{
    return strspn(text, allowed) == strlen(text);
}

/* Whether a value copied from the source is valid for its VR (PS3.5 6.2): the source may be
 * anything, the outputs must stay valid, so an invalid value is written empty (all the copied
 * attributes are type 2) rather than carried into the PACS. */
static bool copied_value_valid(const char *vr, const char *value)
{
    size_t length = characters(value);
    if (length == 0)
        return true;
    if (strcmp(vr, "DA") == 0)
        return strlen(value) == 8 && all_of(value, "0123456789");
    if (strcmp(vr, "TM") == 0)
        return strlen(value) >= 2 && strlen(value) <= 14 && all_of(value, "0123456789.") &&
               strspn(value, "0123456789") >= 2;
    if (strcmp(vr, "CS") == 0)
        return length <= 16 && all_of(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ \\");
    if (strcmp(vr, "SH") == 0)
        return length <= 16 && strpbrk(value, "\\") == NULL;
    if (strcmp(vr, "LO") == 0)
        return length <= 64 && strpbrk(value, "\\") == NULL;
    if (strcmp(vr, "PN") == 0) {
        /* At most 64 characters per component group, at most three groups, one value. */
        if (strpbrk(value, "\\") != NULL)
            return false;
        size_t groups = 1, group_length = 0;
        for (const char *c = value; *c; c++) {
            if (*c == '=') {
                groups++;
                group_length = 0;
            } else if ((*c & 0xC0) != 0x80 && ++group_length > 64) {
                return false;
            }
        }
        return groups <= 3;
    }
    return true;
}

static void write_copied(struct cxr_dicom_writer *w, uint32_t tag, const char *vr,
                         const char *value)
{
    /* Patient's and Referring Physician's Name have VM 1, yet real files carry several values
     * ("Doe^John\\Roe^Richard"): keep the first, the name the JSON and the PDF show, rather than
     * leave the object without a name (its whole value is invalid). A first value too long for
     * the buffer is too long for PN as well (3 groups of 64 characters of at most 4 bytes). */
    char first[3 * 64 * 4 + 3];
    size_t first_length = value ? strcspn(value, "\\") : 0;
    if (strcmp(vr, "PN") == 0 && value && value[first_length] == '\\' &&
        first_length < sizeof first) {
        memcpy(first, value, first_length);
        first[first_length] = '\0';
        value = first;
    }
    cxr_dicom_writer_string(w, tag, vr, copied_value_valid(vr, value) ? value : "");
}

void report_dicom_write_head(struct report_dicom_object *object,
                             const struct cxr_report_dicom_info *info)
{
    struct cxr_dicom_writer *w = object->writer;
    const struct cxr_dicom_meta *source = info->source;
    if (object->utf8)
        cxr_dicom_writer_string(w, TAG(0x0008, 0x0005), "CS", "ISO_IR 192");
    if (object->kind == REPORT_DICOM_SC)
        cxr_dicom_writer_string(w, TAG(0x0008, 0x0008), "CS", "DERIVED\\SECONDARY");
    cxr_dicom_writer_string(w, TAG(0x0008, 0x0012), "DA", object->date);
    cxr_dicom_writer_string(w, TAG(0x0008, 0x0013), "TM", object->time);
    cxr_dicom_writer_string(w, TAG(0x0008, 0x0016), "UI", object->sop_class_uid);
    cxr_dicom_writer_string(w, TAG(0x0008, 0x0018), "UI", object->sop_instance_uid);
    write_copied(w, TAG(0x0008, 0x0020), "DA", source->study_date);
    cxr_dicom_writer_string(w, TAG(0x0008, 0x0023), "DA", object->date);
    if (object->kind == REPORT_DICOM_PDF) {
        char datetime[32];
        snprintf(datetime, sizeof datetime, "%s%s", object->date, object->time);
        cxr_dicom_writer_string(w, TAG(0x0008, 0x002A), "DT", datetime);
    }
    write_copied(w, TAG(0x0008, 0x0030), "TM", source->study_time);
    cxr_dicom_writer_string(w, TAG(0x0008, 0x0033), "TM", object->time);
    write_copied(w, TAG(0x0008, 0x0050), "SH", source->accession_number);
    cxr_dicom_writer_string(w, TAG(0x0008, 0x0060), "CS", modalities[object->kind]);
    /* SC Equipment: a workstation made the object from the source (WSD). */
    if (object->kind != REPORT_DICOM_SR)
        cxr_dicom_writer_string(w, TAG(0x0008, 0x0064), "CS", "WSD");
    cxr_dicom_writer_string(w, TAG(0x0008, 0x0070), "LO", "cxrd");
    write_copied(w, TAG(0x0008, 0x0090), "PN", source->referring_physician_name_raw);
}

void report_dicom_write_series_description(struct report_dicom_object *object)
{
    cxr_dicom_writer_string(object->writer, TAG(0x0008, 0x103E), "LO", object->series_description);
    cxr_dicom_writer_string(object->writer, TAG(0x0008, 0x1090), "LO", "cxrd");
}

static bool age_valid(const char *age)
{
    return strlen(age) == 4 && age[0] >= '0' && age[0] <= '9' && age[1] >= '0' && age[1] <= '9' &&
           age[2] >= '0' && age[2] <= '9' && strchr("DWMY", age[3]) != NULL && age[3] != '\0';
}

void report_dicom_write_patient(struct report_dicom_object *object,
                                const struct cxr_report_dicom_info *info)
{
    struct cxr_dicom_writer *w = object->writer;
    const struct cxr_dicom_meta *source = info->source;
    write_copied(w, TAG(0x0010, 0x0010), "PN", source->patient_name_raw);
    write_copied(w, TAG(0x0010, 0x0020), "LO", source->patient_id);
    write_copied(w, TAG(0x0010, 0x0030), "DA", source->patient_birth_date);
    write_copied(w, TAG(0x0010, 0x0040), "CS", source->patient_sex);
    /* Patient's Age is optional here: copied only when the source's is a valid AS ("045Y"). */
    if (age_valid(source->patient_age))
        cxr_dicom_writer_string(w, TAG(0x0010, 0x1010), "AS", source->patient_age);
    /* The gate let only chest radiographs through: the series is of the (unpaired) chest,
     * which also makes General Series Laterality unnecessary. */
    if (object->kind == REPORT_DICOM_SC)
        cxr_dicom_writer_string(w, TAG(0x0018, 0x0015), "CS", "CHEST");
    char versions[160];
    snprintf(versions, sizeof versions, "cxrd %s\\%s", CXR_VERSION_STRING,
             info->model_version ? info->model_version : "");
    cxr_dicom_writer_string(w, TAG(0x0018, 0x1020), "LO", versions);
}

void report_dicom_write_series(struct report_dicom_object *object,
                               const struct cxr_report_dicom_info *info)
{
    struct cxr_dicom_writer *w = object->writer;
    char number[16];
    cxr_dicom_writer_string(w, TAG(0x0020, 0x000D), "UI", info->source->study_instance_uid);
    cxr_dicom_writer_string(w, TAG(0x0020, 0x000E), "UI", object->series_instance_uid);
    write_copied(w, TAG(0x0020, 0x0010), "SH", info->source->study_id);
    snprintf(number, sizeof number, "%d", object->series_number);
    cxr_dicom_writer_string(w, TAG(0x0020, 0x0011), "IS", number);
    cxr_dicom_writer_string(w, TAG(0x0020, 0x0013), "IS", "1");
}

void report_dicom_write_code(struct cxr_dicom_writer *writer, uint32_t tag, const char *value,
                             const char *scheme, const char *meaning)
{
    cxr_dicom_writer_sequence_begin(writer, tag);
    cxr_dicom_writer_item_begin(writer);
    cxr_dicom_writer_string(writer, TAG(0x0008, 0x0100), "SH", value);
    cxr_dicom_writer_string(writer, TAG(0x0008, 0x0102), "SH", scheme);
    cxr_dicom_writer_string(writer, TAG(0x0008, 0x0104), "LO", meaning);
    cxr_dicom_writer_item_end(writer);
    cxr_dicom_writer_sequence_end(writer);
}

void report_dicom_write_source_reference(struct cxr_dicom_writer *writer, uint32_t tag,
                                         const struct cxr_dicom_meta *source)
{
    cxr_dicom_writer_sequence_begin(writer, tag);
    cxr_dicom_writer_item_begin(writer);
    cxr_dicom_writer_string(writer, TAG(0x0008, 0x1150), "UI", source->sop_class_uid);
    cxr_dicom_writer_string(writer, TAG(0x0008, 0x1155), "UI", source->sop_instance_uid);
    cxr_dicom_writer_item_end(writer);
    cxr_dicom_writer_sequence_end(writer);
}

/* A UID the outputs can carry: digits and dots, non-empty components, at most 64 characters.
 * Leading zeros in a component are invalid too, yet common in real files and harmless: the
 * reference must equal the source's UID for the PACS to link the two, so they are kept. */
static bool uid_usable(const char *uid)
{
    size_t length = strlen(uid);
    return length <= 64 && all_of(uid, "0123456789.") && uid[0] != '.' && uid[length - 1] != '.' &&
           strstr(uid, "..") == NULL;
}

enum cxr_status report_dicom_check_source(const struct cxr_report_dicom_info *info,
                                          struct cxr_err *err)
{
    const struct cxr_dicom_meta *source = info->source;
    if (source->study_instance_uid[0] == '\0' || source->series_instance_uid[0] == '\0' ||
        source->sop_instance_uid[0] == '\0' || source->sop_class_uid[0] == '\0')
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "DICOM output: the source has no Study Instance UID, Series Instance "
                           "UID, SOP Instance UID or SOP Class UID to refer to");
    /* The outputs copy these into their references and their study: a value that is no UID
     * makes objects a PACS may refuse (so the result never reaches the reader) or file apart. */
    const struct {
        const char *name, *value;
    } uids[] = {{"Study Instance UID", source->study_instance_uid},
                {"Series Instance UID", source->series_instance_uid},
                {"SOP Instance UID", source->sop_instance_uid},
                {"SOP Class UID", source->sop_class_uid}};
    for (size_t i = 0; i < sizeof uids / sizeof uids[0]; i++) {
        if (!uid_usable(uids[i].value))
            return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                               "DICOM output: the source's %s '%.70s' is not a UID (digits and "
                               "dots, at most 64 characters)",
                               uids[i].name, uids[i].value);
    }
    return CXR_OK;
}

enum cxr_status cxr_report_dicom_sc(const struct cxr_report_dicom_info *info,
                                    const struct cxr_rgb8 *image, const char *series_description,
                                    bool legend, struct cxr_buf *out, struct cxr_err *err)
{
    if (report_dicom_check_source(info, err) != CXR_OK)
        return CXR_ERR_INVALID_ARG;
    if (image->width == 0 || image->height == 0 || image->width > 65535 || image->height > 65535)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "DICOM output: a %ux%u image does not fit Rows and Columns",
                           image->width, image->height);
    struct report_dicom_object object;
    enum cxr_status status = report_dicom_object_begin(&object, info, REPORT_DICOM_SC,
                                                       series_description, NULL, err);
    if (status != CXR_OK)
        return status;
    struct cxr_dicom_writer *w = object.writer;
    report_dicom_write_head(&object, info);
    report_dicom_write_series_description(&object);
    cxr_dicom_writer_string(w, TAG(0x0008, 0x2111), "ST",
                            "cxrd heatmap overlay of the source image with its legend");
    report_dicom_write_source_reference(w, TAG(0x0008, 0x2112), info->source);
    report_dicom_write_patient(&object, info);
    report_dicom_write_series(&object, info);
    write_copied(w, TAG(0x0020, 0x0020), "CS", info->source->patient_orientation);
    cxr_dicom_writer_us(w, TAG(0x0028, 0x0002), 3);
    cxr_dicom_writer_string(w, TAG(0x0028, 0x0004), "CS", "RGB");
    cxr_dicom_writer_us(w, TAG(0x0028, 0x0006), 0);
    cxr_dicom_writer_us(w, TAG(0x0028, 0x0010), (uint16_t)image->height);
    cxr_dicom_writer_us(w, TAG(0x0028, 0x0011), (uint16_t)image->width);
    cxr_dicom_writer_us(w, TAG(0x0028, 0x0100), 8);
    cxr_dicom_writer_us(w, TAG(0x0028, 0x0101), 8);
    cxr_dicom_writer_us(w, TAG(0x0028, 0x0102), 7);
    cxr_dicom_writer_us(w, TAG(0x0028, 0x0103), 0);
    cxr_dicom_writer_string(w, TAG(0x0028, 0x0301), "CS", legend ? "YES" : "NO");
    cxr_dicom_writer_string(w, TAG(0x0028, 0x2110), "CS", "00");
    cxr_dicom_writer_bytes(w, TAG(0x7FE0, 0x0010), "OB", image->pixels,
                           (size_t)image->width * image->height * 3);
    return report_dicom_object_finish(&object, out, err);
}

enum cxr_status cxr_report_dicom_pdf(const struct cxr_report_dicom_info *info, const uint8_t *pdf,
                                     size_t pdf_size, struct cxr_buf *out, struct cxr_err *err)
{
    if (report_dicom_check_source(info, err) != CXR_OK)
        return CXR_ERR_INVALID_ARG;
    if (pdf_size == 0 || pdf_size > 0xFFFFFFFEu)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "DICOM output: PDF of %zu bytes", pdf_size);
    struct report_dicom_object object;
    enum cxr_status status = report_dicom_object_begin(&object, info, REPORT_DICOM_PDF,
                                                       "AI report (cxrd)", NULL, err);
    if (status != CXR_OK)
        return status;
    struct cxr_dicom_writer *w = object.writer;
    report_dicom_write_head(&object, info);
    report_dicom_write_series_description(&object);
    report_dicom_write_patient(&object, info);
    report_dicom_write_series(&object, info);
    cxr_dicom_writer_string(w, TAG(0x0028, 0x0301), "CS", "YES");
    cxr_dicom_writer_sequence_begin(w, TAG(0x0040, 0xA043)); /* type 2: empty */
    cxr_dicom_writer_sequence_end(w);
    cxr_dicom_writer_string(w, TAG(0x0042, 0x0010), "ST", "Chest radiograph AI report");
    cxr_dicom_writer_bytes(w, TAG(0x0042, 0x0011), "OB", pdf, pdf_size);
    cxr_dicom_writer_string(w, TAG(0x0042, 0x0012), "LO", "application/pdf");
    report_dicom_write_source_reference(w, TAG(0x0042, 0x0013), info->source);
    cxr_dicom_writer_ul(w, TAG(0x0042, 0x0015), (uint32_t)pdf_size);
    return report_dicom_object_finish(&object, out, err);
}
