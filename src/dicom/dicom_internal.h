/* What the dicom module's files share and nobody else needs: the parsed element table, the
 * file object, value accessors, and the character set and pixel description steps that run
 * once at parse time so that a parsed file is immutable afterwards. */
#ifndef CXR_DICOM_INTERNAL_H
#define CXR_DICOM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dicom/dicom.h"

#define DICOM_NO_PARENT           UINT32_MAX
#define DICOM_TAG(group, element) (((uint32_t)(group) << 16) | (uint32_t)(element))
#define DICOM_VR(a, b)            ((uint16_t)(((unsigned)(a) << 8) | (unsigned)(b)))

#define TAG_ITEM               DICOM_TAG(0xFFFE, 0xE000)
#define TAG_ITEM_DELIMITER     DICOM_TAG(0xFFFE, 0xE00D)
#define TAG_SEQUENCE_DELIMITER DICOM_TAG(0xFFFE, 0xE0DD)
#define TAG_TRANSFER_SYNTAX    DICOM_TAG(0x0002, 0x0010)
#define TAG_SPECIFIC_CHARSET   DICOM_TAG(0x0008, 0x0005)
#define TAG_PIXEL_DATA         DICOM_TAG(0x7FE0, 0x0010)

/* One data element, item or encapsulated pixel data element. Elements are stored in file
 * order; an element inside a sequence item names that item as its parent, an item names its
 * sequence. The value lies at data[offset, offset + length) of the file's buffer. For an
 * encapsulated pixel data element the value is its items (offset table and fragments). */
struct dicom_element {
    uint32_t tag;
    uint16_t vr; /* DICOM_VR('U','S'); 0 when implicit VR */
    uint8_t big_endian;
    uint8_t encapsulated;
    uint32_t parent;
    size_t offset;
    size_t length;
};

#define DICOM_META_STRINGS 25

struct cxr_dicom_file {
    uint8_t *data; /* the file's bytes; for a deflated data set the meta group + inflated data */
    size_t size;
    struct dicom_element *elements;
    size_t element_count;
    size_t element_capacity;
    bool has_meta_group;
    bool explicit_vr;
    bool big_endian;
    bool deflated;

    /* Metadata strings, each NUL-terminated UTF-8, owned here (one per field of dicom_meta.c). */
    char *strings[DICOM_META_STRINGS];
    struct cxr_dicom_meta meta;

    /* The pixel description, prepared at parse time; pixel_status says whether it is usable. */
    struct cxr_err pixel_err;
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    struct cxr_dicom_lut modality_lut;
    struct cxr_dicom_lut voi_lut;
    uint16_t *modality_lut_entries;
    uint16_t *voi_lut_entries;
    double *windows; /* window_count centres then window_count widths */
    uint32_t *offsets;
    struct cxr_dicom_fragment *fragments;
    char *photometric;
};

static inline uint16_t dicom_read_u16(const uint8_t *bytes, bool big_endian)
{
    if (big_endian)
        return (uint16_t)((bytes[0] << 8) | bytes[1]);
    return (uint16_t)(bytes[0] | (bytes[1] << 8));
}

static inline uint32_t dicom_read_u32(const uint8_t *bytes, bool big_endian)
{
    if (big_endian)
        return ((uint32_t)bytes[0] << 24) | ((uint32_t)bytes[1] << 16) | ((uint32_t)bytes[2] << 8) |
               bytes[3];
    return ((uint32_t)bytes[3] << 24) | ((uint32_t)bytes[2] << 16) | ((uint32_t)bytes[1] << 8) |
           bytes[0];
}

/* dicom_parse.c: fills file->elements from file->data (and sets the encoding flags; a
 * deflated data set is inflated first, replacing file->data). */
enum cxr_status dicom_parse_elements(struct cxr_dicom_file *file, const struct cxr_limits *limits,
                                     struct cxr_err *err);

/* dicom_element.c: element lookup and value access. */
const struct dicom_element *dicom_element_find(const struct cxr_dicom_file *file, uint32_t parent,
                                               uint32_t tag);
/* Index of the first item of a sequence element, or DICOM_NO_PARENT. */
uint32_t dicom_sequence_first_item(const struct cxr_dicom_file *file,
                                   const struct dicom_element *seq);
uint32_t dicom_element_index(const struct cxr_dicom_file *file,
                             const struct dicom_element *element);
const uint8_t *dicom_element_value(const struct cxr_dicom_file *file,
                                   const struct dicom_element *element);
/* Reads the index-th 16-bit or 32-bit value in the element's byte order; false if too short. */
bool dicom_element_u16(const struct cxr_dicom_file *file, const struct dicom_element *element,
                       size_t index, uint16_t *value);
bool dicom_element_u32(const struct cxr_dicom_file *file, const struct dicom_element *element,
                       size_t index, uint32_t *value);

/* dicom_charset.c: decodes text in the Specific Character Set (value as stored, possibly
 * multi-valued) into NUL-terminated UTF-8 allocated with malloc. Bytes that cannot be decoded
 * become U+FFFD, and so does a NUL byte inside the value. is_person_name makes '^' and '='
 * reset ISO 2022 designations as PS3.5 says. Returns NULL only when out of memory. */
char *dicom_charset_to_utf8(const char *charset, size_t charset_length, const uint8_t *text,
                            size_t length, bool is_person_name);

/* dicom_meta.c: fills file->meta (and its strings). */
enum cxr_status dicom_meta_build(struct cxr_dicom_file *file, struct cxr_err *err);
void dicom_meta_free(struct cxr_dicom_file *file);
/* Renders a UTF-8 Person Name for display ("Doe^John" -> "John Doe"); malloc'd, NULL on OOM. */
char *dicom_person_name_render(const char *raw);

/* dicom_pixels.c: prepares the pixel description; failures are kept in file->pixel_err and
 * reported by cxr_dicom_file_pixels. Returns non-OK only when out of memory. */
enum cxr_status dicom_pixels_build(struct cxr_dicom_file *file, const struct cxr_limits *limits);
void dicom_pixels_free(struct cxr_dicom_file *file);

#endif
