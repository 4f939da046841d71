/* What the DICOM output builders (report_dicom.c, report_sr.c) share: the new UIDs and times of
 * one object and the writers of the attributes every object carries, in ascending tag order. */
#ifndef CXR_REPORT_DICOM_INTERNAL_H
#define CXR_REPORT_DICOM_INTERNAL_H

#include "dicom/dicom.h"
#include "report/report.h"

#define REPORT_TAG(group, element) (((uint32_t)(group) << 16) | (uint32_t)(element))

enum report_dicom_kind { REPORT_DICOM_SR, REPORT_DICOM_SC, REPORT_DICOM_PDF };

/* One object being built. */
struct report_dicom_object {
    enum report_dicom_kind kind;
    const char *sop_class_uid;
    char sop_instance_uid[CXR_DICOM_UID_SIZE];
    char series_instance_uid[CXR_DICOM_UID_SIZE];
    char date[16]; /* DA of info->content_time, local time */
    char time[16]; /* TM */
    const char *series_description;
    int series_number;
    bool utf8; /* some text is not ASCII: Specific Character Set ISO_IR 192 */
    struct cxr_dicom_writer *writer;
};

/* The source must be identifiable: its study, series and instance are what the outputs hang on
 * (an SR's evidence sequence names all three). */
enum cxr_status report_dicom_check_source(const struct cxr_report_dicom_info *info,
                                          struct cxr_err *err);
/* New UIDs, the dates, and the writer. extra_text (NULL-terminated list, may be NULL) is other
 * text the object will carry, for the character set decision. */
enum cxr_status report_dicom_object_begin(struct report_dicom_object *object,
                                          const struct cxr_report_dicom_info *info,
                                          enum report_dicom_kind kind,
                                          const char *series_description,
                                          const char *const *extra_text, struct cxr_err *err);
/* Writes the file to out and destroys the writer (also on failure). */
enum cxr_status report_dicom_object_finish(struct report_dicom_object *object, struct cxr_buf *out,
                                           struct cxr_err *err);

/* (0008,0005) to (0008,0090): character set, creation date and time, SOP class and instance,
 * study date, content date, study and content time, accession number, modality, conversion
 * type (SC, PDF), manufacturer, referring physician. */
void report_dicom_write_head(struct report_dicom_object *object,
                             const struct cxr_report_dicom_info *info);
/* (0008,103E) Series Description and (0008,1090) Manufacturer's Model Name. */
void report_dicom_write_series_description(struct report_dicom_object *object);
/* (0010,xxxx) Patient module and Patient's Age, (0018,1020) Software Versions. */
void report_dicom_write_patient(struct report_dicom_object *object,
                                const struct cxr_report_dicom_info *info);
/* (0020,000D) to (0020,0013): study and series UIDs, Study ID, series and instance numbers. */
void report_dicom_write_series(struct report_dicom_object *object,
                               const struct cxr_report_dicom_info *info);
/* A code sequence of one item (tag is the sequence's): Code Value, Scheme, Meaning. */
void report_dicom_write_code(struct cxr_dicom_writer *writer, uint32_t tag, const char *value,
                             const char *scheme, const char *meaning);
/* A sequence of one item referencing the source image (SOP Class and Instance UIDs). */
void report_dicom_write_source_reference(struct cxr_dicom_writer *writer, uint32_t tag,
                                         const struct cxr_dicom_meta *source);

#endif
