/* The metadata the API needs, taken from the top level of the data set and converted to UTF-8
 * in the file's Specific Character Set, and the display rendering of Person Names. */
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom_internal.h"

enum field {
    FIELD_PATIENT_ID,
    FIELD_PATIENT_NAME,
    FIELD_PATIENT_NAME_RAW,
    FIELD_PATIENT_AGE,
    FIELD_PATIENT_SEX,
    FIELD_PATIENT_BIRTH_DATE,
    FIELD_SOP_INSTANCE_UID,
    FIELD_SOP_CLASS_UID,
    FIELD_STUDY_INSTANCE_UID,
    FIELD_STUDY_DATE,
    FIELD_MODALITY,
    FIELD_BODY_PART_EXAMINED,
    FIELD_VIEW_POSITION,
    FIELD_MANUFACTURER,
    FIELD_INSTITUTION_NAME,
    FIELD_SPECIFIC_CHARACTER_SET,
    FIELD_TRANSFER_SYNTAX_UID,
    FIELD_PATIENT_ORIENTATION,
    FIELD_ACCESSION_NUMBER,
    FIELD_REFERRING_PHYSICIAN_NAME_RAW,
    FIELD_STUDY_TIME,
    FIELD_SERIES_INSTANCE_UID,
    FIELD_STUDY_ID,
    FIELD_PRESENTATION_INTENT_TYPE,
    FIELD_VIEW_CODE_MEANING,
    FIELD_COUNT,
};

_Static_assert(FIELD_COUNT <= DICOM_META_STRINGS, "dicom_internal.h: too few metadata strings");

struct field_source {
    enum field field;
    uint32_t tag;
    uint32_t sequence; /* 0: tag is at the top level; else in this sequence's first item */
};

static const struct field_source sources[] = {
        {FIELD_PATIENT_ID, DICOM_TAG(0x0010, 0x0020), 0},
        {FIELD_PATIENT_NAME_RAW, DICOM_TAG(0x0010, 0x0010), 0},
        {FIELD_PATIENT_AGE, DICOM_TAG(0x0010, 0x1010), 0},
        {FIELD_PATIENT_SEX, DICOM_TAG(0x0010, 0x0040), 0},
        {FIELD_PATIENT_BIRTH_DATE, DICOM_TAG(0x0010, 0x0030), 0},
        {FIELD_SOP_INSTANCE_UID, DICOM_TAG(0x0008, 0x0018), 0},
        {FIELD_SOP_CLASS_UID, DICOM_TAG(0x0008, 0x0016), 0},
        {FIELD_STUDY_INSTANCE_UID, DICOM_TAG(0x0020, 0x000D), 0},
        {FIELD_STUDY_DATE, DICOM_TAG(0x0008, 0x0020), 0},
        {FIELD_MODALITY, DICOM_TAG(0x0008, 0x0060), 0},
        {FIELD_BODY_PART_EXAMINED, DICOM_TAG(0x0018, 0x0015), 0},
        {FIELD_VIEW_POSITION, DICOM_TAG(0x0018, 0x5101), 0},
        {FIELD_MANUFACTURER, DICOM_TAG(0x0008, 0x0070), 0},
        {FIELD_INSTITUTION_NAME, DICOM_TAG(0x0008, 0x0080), 0},
        {FIELD_SPECIFIC_CHARACTER_SET, TAG_SPECIFIC_CHARSET, 0},
        {FIELD_TRANSFER_SYNTAX_UID, TAG_TRANSFER_SYNTAX, 0},
        {FIELD_PATIENT_ORIENTATION, DICOM_TAG(0x0020, 0x0020), 0},
        {FIELD_ACCESSION_NUMBER, DICOM_TAG(0x0008, 0x0050), 0},
        {FIELD_REFERRING_PHYSICIAN_NAME_RAW, DICOM_TAG(0x0008, 0x0090), 0},
        {FIELD_STUDY_TIME, DICOM_TAG(0x0008, 0x0030), 0},
        {FIELD_SERIES_INSTANCE_UID, DICOM_TAG(0x0020, 0x000E), 0},
        {FIELD_STUDY_ID, DICOM_TAG(0x0020, 0x0010), 0},
        {FIELD_PRESENTATION_INTENT_TYPE, DICOM_TAG(0x0008, 0x0068), 0},
        /* View Code Sequence's Code Meaning, e.g. "postero-anterior" (PS3.16 CID 4010) */
        {FIELD_VIEW_CODE_MEANING, DICOM_TAG(0x0008, 0x0104), DICOM_TAG(0x0054, 0x0220)},
};

/* The element a source names, or NULL when it (or its sequence item) is absent. */
static const struct dicom_element *source_element(const struct cxr_dicom_file *file,
                                                  const struct field_source *source)
{
    uint32_t parent = DICOM_NO_PARENT;
    if (source->sequence != 0) {
        const struct dicom_element *sequence =
                dicom_element_find(file, DICOM_NO_PARENT, source->sequence);
        parent = sequence ? dicom_sequence_first_item(file, sequence) : DICOM_NO_PARENT;
        if (parent == DICOM_NO_PARENT)
            return NULL;
    }
    return dicom_element_find(file, parent, source->tag);
}

static char *copy_string(const char *text, size_t length)
{
    char *copy = malloc(length + 1);
    if (copy != NULL) {
        memcpy(copy, text, length);
        copy[length] = '\0';
    }
    return copy;
}

/* Removes trailing spaces and NULs (padding) and, unless keep_leading, leading spaces. */
static void trim_in_place(char *text, bool keep_leading)
{
    size_t length = strlen(text);
    while (length > 0 && text[length - 1] == ' ')
        length--;
    text[length] = '\0';
    if (!keep_leading) {
        size_t start = 0;
        while (text[start] == ' ')
            start++;
        memmove(text, text + start, length - start + 1);
    }
}

static void trim_span(const char **start, const char **end)
{
    while (*start < *end && **start == ' ')
        (*start)++;
    while (*end > *start && (*end)[-1] == ' ')
        (*end)--;
}

static char *render_value(const char *raw)
{
    /* The first group with any content (alphabetic, else ideographic, else phonetic). */
    const char *group = raw;
    const char *group_end = raw;
    for (const char *cursor = raw;;) {
        const char *end = strchr(cursor, '=');
        if (end == NULL)
            end = cursor + strlen(cursor);
        bool has_content = false;
        for (const char *c = cursor; c < end; c++) {
            if (*c != '^' && *c != ' ')
                has_content = true;
        }
        if (has_content) {
            group = cursor;
            group_end = end;
            break;
        }
        if (*end == '\0')
            break;
        cursor = end + 1;
    }

    /* Components: family, given, middle, prefix, suffix; shown as prefix given middle family
     * suffix. A sixth or later component (not allowed) is shown after the suffix. */
    const char *component_start[8] = {0};
    const char *component_end[8] = {0};
    size_t components = 0;
    for (const char *cursor = group; components < 8;) {
        const char *end = memchr(cursor, '^', (size_t)(group_end - cursor));
        if (end == NULL || components == 7)
            end = group_end;
        component_start[components] = cursor;
        component_end[components] = end;
        trim_span(&component_start[components], &component_end[components]);
        components++;
        if (end == group_end)
            break;
        cursor = end + 1;
    }
    static const size_t order[8] = {3, 1, 2, 0, 4, 5, 6, 7};
    size_t total = (size_t)(group_end - group) + 8;
    char *out = malloc(total + 1);
    if (out == NULL)
        return NULL;
    size_t length = 0;
    for (size_t i = 0; i < 8; i++) {
        size_t c = order[i];
        if (c >= components || component_end[c] == component_start[c])
            continue;
        if (length > 0)
            out[length++] = ' ';
        size_t part = (size_t)(component_end[c] - component_start[c]);
        memcpy(out + length, component_start[c], part);
        length += part;
    }
    out[length] = '\0';
    return out;
}

char *dicom_person_name_render(const char *raw)
{
    /* Patient's Name has VM 1; should a file carry several values, the first is shown. */
    char *first = copy_string(raw, strcspn(raw, "\\"));
    if (first == NULL)
        return NULL;
    char *rendered = render_value(first);
    free(first);
    return rendered;
}

/* The transfer syntax the data set was read with, for files that do not name one. */
static const char *detected_syntax(const struct cxr_dicom_file *file)
{
    if (!file->explicit_vr)
        return "1.2.840.10008.1.2";
    return file->big_endian ? "1.2.840.10008.1.2.2" : "1.2.840.10008.1.2.1";
}

enum cxr_status dicom_meta_build(struct cxr_dicom_file *file, struct cxr_err *err)
{
    const struct dicom_element *charset_element =
            dicom_element_find(file, DICOM_NO_PARENT, TAG_SPECIFIC_CHARSET);
    const char *charset = "";
    size_t charset_length = 0;
    if (charset_element != NULL) {
        charset = (const char *)dicom_element_value(file, charset_element);
        charset_length = charset_element->length;
    }
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
        const struct dicom_element *element = source_element(file, &sources[i]);
        char *text;
        if (element == NULL || element->encapsulated) {
            text = copy_string("", 0);
        } else {
            const uint8_t *value = dicom_element_value(file, element);
            size_t length = element->length;
            while (length > 0 && (value[length - 1] == ' ' || value[length - 1] == '\0'))
                length--;
            bool is_person_name = sources[i].field == FIELD_PATIENT_NAME_RAW ||
                                  sources[i].field == FIELD_REFERRING_PHYSICIAN_NAME_RAW;
            text = dicom_charset_to_utf8(charset, charset_length, value, length, is_person_name);
        }
        if (text == NULL)
            return cxr_err_set(err, CXR_ERR_NOMEM, "DICOM: out of memory for metadata");
        /* A NUL inside a value is U+FFFD by now (dicom_charset_to_utf8), never an end. */
        trim_in_place(text, sources[i].field == FIELD_PATIENT_NAME_RAW ||
                                    sources[i].field == FIELD_REFERRING_PHYSICIAN_NAME_RAW);
        file->strings[sources[i].field] = text;
    }
    if (file->strings[FIELD_TRANSFER_SYNTAX_UID][0] == '\0') {
        const char *syntax = detected_syntax(file);
        char *copy = copy_string(syntax, strlen(syntax));
        if (copy == NULL)
            return cxr_err_set(err, CXR_ERR_NOMEM, "DICOM: out of memory for metadata");
        free(file->strings[FIELD_TRANSFER_SYNTAX_UID]);
        file->strings[FIELD_TRANSFER_SYNTAX_UID] = copy;
    }
    file->strings[FIELD_PATIENT_NAME] =
            dicom_person_name_render(file->strings[FIELD_PATIENT_NAME_RAW]);
    if (file->strings[FIELD_PATIENT_NAME] == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "DICOM: out of memory for metadata");

    char **s = file->strings;
    file->meta = (struct cxr_dicom_meta){
            .patient_id = s[FIELD_PATIENT_ID],
            .patient_name = s[FIELD_PATIENT_NAME],
            .patient_name_raw = s[FIELD_PATIENT_NAME_RAW],
            .patient_age = s[FIELD_PATIENT_AGE],
            .patient_sex = s[FIELD_PATIENT_SEX],
            .patient_birth_date = s[FIELD_PATIENT_BIRTH_DATE],
            .sop_instance_uid = s[FIELD_SOP_INSTANCE_UID],
            .sop_class_uid = s[FIELD_SOP_CLASS_UID],
            .study_instance_uid = s[FIELD_STUDY_INSTANCE_UID],
            .study_date = s[FIELD_STUDY_DATE],
            .modality = s[FIELD_MODALITY],
            .body_part_examined = s[FIELD_BODY_PART_EXAMINED],
            .view_position = s[FIELD_VIEW_POSITION],
            .manufacturer = s[FIELD_MANUFACTURER],
            .institution_name = s[FIELD_INSTITUTION_NAME],
            .specific_character_set = s[FIELD_SPECIFIC_CHARACTER_SET],
            .transfer_syntax_uid = s[FIELD_TRANSFER_SYNTAX_UID],
            .patient_orientation = s[FIELD_PATIENT_ORIENTATION],
            .accession_number = s[FIELD_ACCESSION_NUMBER],
            .referring_physician_name_raw = s[FIELD_REFERRING_PHYSICIAN_NAME_RAW],
            .study_time = s[FIELD_STUDY_TIME],
            .series_instance_uid = s[FIELD_SERIES_INSTANCE_UID],
            .study_id = s[FIELD_STUDY_ID],
            .presentation_intent_type = s[FIELD_PRESENTATION_INTENT_TYPE],
            .view_code_meaning = s[FIELD_VIEW_CODE_MEANING],
    };
    return CXR_OK;
}

void dicom_meta_free(struct cxr_dicom_file *file)
{
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        free(file->strings[i]);
        file->strings[i] = NULL;
    }
}

const struct cxr_dicom_meta *cxr_dicom_file_meta(const struct cxr_dicom_file *file)
{
    return &file->meta;
}
