/* Fuzz target for the DICOM reader: parse arbitrary bytes, then touch everything a caller
 * reads (metadata strings, pixel description, LUT entries, fragments) so that ASan sees any
 * out-of-bounds pointer the reader hands out. */
#include <stdint.h>
#include <string.h>

#include "dicom/dicom.h"

static volatile uint32_t sink;

static void touch(const void *data, size_t size)
{
    const uint8_t *bytes = data;
    uint32_t sum = 0;
    for (size_t i = 0; i < size; i++)
        sum += bytes[i];
    sink += sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cxr_limits limits = cxr_limits_default();
    limits.max_file_bytes = 1 << 22;
    limits.max_elements = 1 << 16;
    struct cxr_dicom_file *file = NULL;
    if (cxr_dicom_file_parse(data, size, &limits, &file, NULL) != CXR_OK)
        return 0;
    const struct cxr_dicom_meta *meta = cxr_dicom_file_meta(file);
    const char *const strings[] = {
            meta->patient_id,
            meta->patient_name,
            meta->patient_name_raw,
            meta->patient_age,
            meta->patient_sex,
            meta->patient_birth_date,
            meta->sop_instance_uid,
            meta->sop_class_uid,
            meta->study_instance_uid,
            meta->study_date,
            meta->modality,
            meta->body_part_examined,
            meta->view_position,
            meta->manufacturer,
            meta->institution_name,
            meta->specific_character_set,
            meta->transfer_syntax_uid,
            meta->patient_orientation,
            meta->accession_number,
            meta->referring_physician_name_raw,
            meta->study_time,
            meta->series_instance_uid,
            meta->study_id,
            meta->presentation_intent_type,
            meta->view_code_meaning,
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        touch(strings[i], strlen(strings[i]) + 1);
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    if (cxr_dicom_file_pixels(file, &desc, &pixels, NULL) == CXR_OK) {
        touch(desc.photometric_interpretation, strlen(desc.photometric_interpretation) + 1);
        touch(desc.transfer_syntax_uid, strlen(desc.transfer_syntax_uid) + 1);
        touch(desc.window_centers, desc.window_count * sizeof(double));
        touch(desc.window_widths, desc.window_count * sizeof(double));
        if (desc.modality_lut != NULL)
            touch(desc.modality_lut->entries, desc.modality_lut->entry_count * sizeof(uint16_t));
        if (desc.voi_lut != NULL)
            touch(desc.voi_lut->entries, desc.voi_lut->entry_count * sizeof(uint16_t));
        if (pixels.encapsulated) {
            touch(pixels.offsets, pixels.offset_count * sizeof(uint32_t));
            for (size_t i = 0; i < pixels.fragment_count; i++)
                touch(pixels.fragments[i].data, pixels.fragments[i].size);
        } else {
            touch(pixels.native, pixels.native_size);
        }
    }
    cxr_dicom_file_destroy(file);
    return 0;
}
