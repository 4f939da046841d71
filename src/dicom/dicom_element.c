/* Lookup and value access on the parsed element table, shared by the metadata and pixel
 * description steps. */
#include "dicom/dicom_internal.h"

const struct dicom_element *dicom_element_find(const struct cxr_dicom_file *file, uint32_t parent,
                                               uint32_t tag)
{
    for (size_t i = 0; i < file->element_count; i++) {
        if (file->elements[i].parent == parent && file->elements[i].tag == tag)
            return &file->elements[i];
    }
    return NULL;
}

uint32_t dicom_element_index(const struct cxr_dicom_file *file, const struct dicom_element *element)
{
    return (uint32_t)(element - file->elements);
}

uint32_t dicom_sequence_first_item(const struct cxr_dicom_file *file,
                                   const struct dicom_element *seq)
{
    uint32_t index = dicom_element_index(file, seq);
    for (size_t i = index + 1; i < file->element_count; i++) {
        if (file->elements[i].parent == index && file->elements[i].tag == TAG_ITEM)
            return (uint32_t)i;
    }
    return DICOM_NO_PARENT;
}

const uint8_t *dicom_element_value(const struct cxr_dicom_file *file,
                                   const struct dicom_element *element)
{
    return file->data + element->offset;
}

bool dicom_element_u16(const struct cxr_dicom_file *file, const struct dicom_element *element,
                       size_t index, uint16_t *value)
{
    if (element == NULL || element->encapsulated || index >= element->length / 2)
        return false;
    *value = dicom_read_u16(file->data + element->offset + 2 * index, element->big_endian);
    return true;
}

bool dicom_element_u32(const struct cxr_dicom_file *file, const struct dicom_element *element,
                       size_t index, uint32_t *value)
{
    if (element == NULL || element->encapsulated || index >= element->length / 4)
        return false;
    *value = dicom_read_u32(file->data + element->offset + 4 * index, element->big_endian);
    return true;
}
