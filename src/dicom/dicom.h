/* DICOM Part 10 reader: parses a file into a data set, exposes the metadata the API needs as
 * UTF-8, and the pixel description and pixel data of the image for codec/ and image/.
 *
 * Ownership: an output pointer is written only on success; on failure the callee frees what
 * it allocated. Everything returned by accessors is owned by the cxr_dicom_file and lives until
 * cxr_dicom_file_destroy. A parsed file is immutable, so it may be read from several threads. */
#ifndef CXR_DICOM_H
#define CXR_DICOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

struct cxr_dicom_file;

/* Reads and parses a file. Errors: CXR_ERR_NOT_FOUND (no such file), CXR_ERR_IO (cannot
 * open/read, not a regular file), CXR_ERR_LIMIT (larger than limits->max_file_bytes or other
 * limits), CXR_ERR_MALFORMED (not DICOM, truncated, bad lengths), CXR_ERR_UNSUPPORTED (a big
 * endian meta group). A data set whose transfer syntax is unknown or contradicts its bytes is
 * read with the encoding detected from its first element (docs/dicom.md). */
enum cxr_status cxr_dicom_file_read(const char *path, const struct cxr_limits *limits,
                                    struct cxr_dicom_file **file, struct cxr_err *err);
/* The same from a descriptor the caller opened (and keeps): a request's file is opened once,
 * beneath the input root, and that descriptor is what is read. name is for messages only. */
enum cxr_status cxr_dicom_file_read_fd(int fd, const char *name, const struct cxr_limits *limits,
                                       struct cxr_dicom_file **file, struct cxr_err *err);

/* Parses bytes already in memory (copies what it keeps; bytes stay the caller's). */
enum cxr_status cxr_dicom_file_parse(const uint8_t *bytes, size_t size,
                                     const struct cxr_limits *limits, struct cxr_dicom_file **file,
                                     struct cxr_err *err);

/* NULL is a no-op. */
void cxr_dicom_file_destroy(struct cxr_dicom_file *file);

/* Metadata as NUL-terminated UTF-8 (converted from the Specific Character Set), trailing
 * padding removed. An absent or empty element is "" (never NULL). */
struct cxr_dicom_meta {
    const char *patient_id;
    const char *patient_name;     /* rendered for display: "Doe^John" -> "John Doe" */
    const char *patient_name_raw; /* as stored: "Yamada^Tarou=山田^太郎=やまだ^たろう" */
    const char *patient_age;      /* as stored, e.g. "045Y" */
    const char *patient_sex;
    const char *patient_birth_date;
    const char *sop_instance_uid;
    const char *sop_class_uid;
    const char *study_instance_uid;
    const char *study_date;
    const char *modality;
    const char *body_part_examined;
    const char *view_position;
    const char *manufacturer;
    const char *institution_name;
    const char *specific_character_set;
    const char *transfer_syntax_uid;
    const char *patient_orientation; /* (0020,0020), e.g. "L\\F" */
    const char *accession_number;
    /* Person Name as stored (all component groups, "^" and "=" kept), for the report to lay
     * out; decoded with the person-name rules of the Specific Character Set. */
    const char *referring_physician_name_raw;
    const char *study_time; /* TM as stored, e.g. "081500.123" */
    const char *series_instance_uid;
    const char *study_id;                 /* (0020,0010) */
    const char *presentation_intent_type; /* (0008,0068): "FOR PRESENTATION", "FOR PROCESSING" */
    /* Code Meaning of the View Code Sequence's (0054,0220) first item, e.g. "left lateral" */
    const char *view_code_meaning;
};

const struct cxr_dicom_meta *cxr_dicom_file_meta(const struct cxr_dicom_file *file);

/* A lookup table from the Modality LUT Sequence or VOI LUT Sequence (first item). */
struct cxr_dicom_lut {
    uint32_t entry_count;    /* descriptor value 1; 0 in the file means 65536 */
    int32_t first_mapped;    /* descriptor value 2, signed when the pixel data are signed */
    uint16_t bits_per_entry; /* descriptor value 3 */
    const uint16_t *entries; /* entry_count values, host byte order */
};

enum cxr_voi_lut_function {
    CXR_VOI_LINEAR = 0,
    CXR_VOI_LINEAR_EXACT = 1,
    CXR_VOI_SIGMOID = 2,
};

/* Presentation LUT Shape (2050,0020). When present it decides the polarity, as in DCMTK: the DX
 * IOD pairs INVERSE with MONOCHROME1 (one inversion, not two) and IDENTITY with MONOCHROME2. */
enum cxr_presentation_lut_shape {
    CXR_PRESENTATION_LUT_ABSENT = 0, /* absent or another value: Photometric Interpretation */
    CXR_PRESENTATION_LUT_IDENTITY = 1,
    CXR_PRESENTATION_LUT_INVERSE = 2,
};

/* Everything needed to decode and render the image. Absent optional elements are flagged. */
struct cxr_dicom_pixel_desc {
    const char *transfer_syntax_uid;
    uint32_t rows;
    uint32_t columns;
    uint32_t samples_per_pixel;
    uint32_t number_of_frames; /* 1 when absent */
    uint16_t bits_allocated;
    uint16_t bits_stored;
    uint16_t high_bit;
    uint16_t pixel_representation;          /* 0 unsigned, 1 two's complement */
    uint16_t planar_configuration;          /* 0 interleaved, 1 by plane */
    const char *photometric_interpretation; /* "MONOCHROME1", "MONOCHROME2", "RGB", ... */

    bool has_rescale;
    double rescale_slope; /* 1 and 0 when absent */
    double rescale_intercept;
    const struct cxr_dicom_lut *modality_lut; /* NULL when absent */

    uint32_t window_count; /* Window Center/Width pairs; 0 when absent */
    const double *window_centers;
    const double *window_widths;
    enum cxr_voi_lut_function voi_lut_function;
    const struct cxr_dicom_lut *voi_lut; /* first VOI LUT Sequence item; NULL when absent */
    enum cxr_presentation_lut_shape presentation_lut_shape; /* top level only */

    /* Pixel Padding Value (0028,0120) and, when present, Pixel Padding Range Limit (0028,0121):
     * the stored values in [low, high] pad the image to a rectangle or mark background. PS3.3
     * C.7.5.1.1.2 names them so that a display leaves them out of the image's dynamic range. */
    bool has_pixel_padding;
    int32_t pixel_padding_low;
    int32_t pixel_padding_high;
};

/* The pixel data element as stored. Native data is exactly as in the file (after inflating a
 * deflated data set): byte order is the transfer syntax's (big endian for 1.2.840.10008.1.2.2).
 * Encapsulated data is the list of fragments (item contents) after the Basic Offset Table. */
struct cxr_dicom_fragment {
    const uint8_t *data;
    size_t size;
};

struct cxr_dicom_pixel_data {
    bool encapsulated;
    bool big_endian;       /* native data only: OW words in big endian order (1.2.840.10008.1.2.2);
                            * with 8-bit samples their bytes are swapped in pairs. False for OB. */
    const uint8_t *native; /* native data only */
    size_t native_size;
    size_t offset_count; /* Basic Offset Table entries; 0 when empty */
    const uint32_t *offsets;
    size_t fragment_count;
    const struct cxr_dicom_fragment *fragments;
};

/* Fills desc and pixels from the file. CXR_ERR_NOT_FOUND when there is no Pixel Data;
 * CXR_ERR_MALFORMED when required image elements (Rows, Columns, Bits Allocated, ...) are
 * missing or inconsistent. */
enum cxr_status cxr_dicom_file_pixels(const struct cxr_dicom_file *file,
                                      struct cxr_dicom_pixel_desc *desc,
                                      struct cxr_dicom_pixel_data *pixels, struct cxr_err *err);

/* ---- Writer (dicom_write.c): Part 10 files in explicit VR little endian ----------------------
 * Elements are appended in the order given; each data set (the top level and every item) must
 * receive its tags in ascending order, which the writer checks. Sequences and items get defined
 * lengths, patched when they end. Errors are sticky (libspng's invalid state): after the first
 * failed call every later call does nothing and returns that status, so a builder may check
 * only cxr_dicom_writer_finish. Not thread safe; one writer per object. */
struct cxr_dicom_writer;

/* max_bytes bounds the data set (0: 1 GiB). */
enum cxr_status cxr_dicom_writer_create(size_t max_bytes, struct cxr_dicom_writer **writer,
                                        struct cxr_err *err);
/* NULL is a no-op. */
void cxr_dicom_writer_destroy(struct cxr_dicom_writer *writer);

/* A text value (AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT), padded to even length with
 * a NUL for UI and a space for the others. NULL is written as an empty (type 2) element. */
enum cxr_status cxr_dicom_writer_string(struct cxr_dicom_writer *writer, uint32_t tag,
                                        const char *vr, const char *value);
/* Binary values: OB/UN bytes (padded with one zero byte when odd), US and UL numbers. */
enum cxr_status cxr_dicom_writer_bytes(struct cxr_dicom_writer *writer, uint32_t tag,
                                       const char *vr, const void *bytes, size_t size);
enum cxr_status cxr_dicom_writer_us(struct cxr_dicom_writer *writer, uint32_t tag, uint16_t value);
enum cxr_status cxr_dicom_writer_ul(struct cxr_dicom_writer *writer, uint32_t tag, uint32_t value);
/* Sequence and item nesting (at most 24 levels). An empty sequence is begin then end. */
enum cxr_status cxr_dicom_writer_sequence_begin(struct cxr_dicom_writer *writer, uint32_t tag);
enum cxr_status cxr_dicom_writer_sequence_end(struct cxr_dicom_writer *writer);
enum cxr_status cxr_dicom_writer_item_begin(struct cxr_dicom_writer *writer);
enum cxr_status cxr_dicom_writer_item_end(struct cxr_dicom_writer *writer);

/* Appends to out the 128-byte preamble, "DICM", the file meta group (Media Storage SOP Class
 * and Instance, transfer syntax 1.2.840.10008.1.2.1, cxrd's implementation UID and version)
 * and the data set. CXR_ERR_INVALID_ARG when a sequence or item is still open; the sticky
 * error otherwise. The writer may be destroyed afterwards. */
enum cxr_status cxr_dicom_writer_finish(struct cxr_dicom_writer *writer, const char *sop_class_uid,
                                        const char *sop_instance_uid, struct cxr_buf *out,
                                        struct cxr_err *err);

/* A new UID: "2.25." and a random (version 4) UUID as a decimal integer when root is NULL or
 * "", else root "." random decimal digits up to 64 characters. out holds 65 bytes.
 * CXR_ERR_INVALID_ARG for a root that cxr_dicom_uid_root_check refuses; CXR_ERR_INTERNAL when
 * the system has no randomness to give. */
#define CXR_DICOM_UID_SIZE 65
enum cxr_status cxr_dicom_uid_generate(const char *root, char out[CXR_DICOM_UID_SIZE],
                                       struct cxr_err *err);
/* CXR_OK for "" and for a UID root: digits and dots, no empty component, no leading zero in a
 * component, at most 40 characters (leaving 23 digits, about 76 random bits, to the UID). */
enum cxr_status cxr_dicom_uid_root_check(const char *root, struct cxr_err *err);

#endif
