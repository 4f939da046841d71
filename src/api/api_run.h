/* A run over many files, bulk or `cxrd infer`: the .dcm files under a folder (api_scan.c) and
 * the ledger of which file wrote which patient folder (api_ledger.c). */
#ifndef CXR_API_RUN_H
#define CXR_API_RUN_H

#include <stddef.h>
#include <time.h>

#include "util/util.h"

struct cxr_api;

/* ---- Folders of DICOM files (api_scan.c) ---- */
struct cxr_api_file_list {
    char **paths; /* count malloc'ed paths, sorted */
    size_t count, cap;
};
/* Appends the regular .dcm files (any case) under folder, recursively, without following
 * symlinks, and sorts the list. CXR_ERR_LIMIT when there would be more than max in the list;
 * the list keeps what it holds either way (release it). */
enum cxr_status cxr_api_file_list_scan(struct cxr_api_file_list *list, const char *folder,
                                       size_t max);
/* The same for the folder open as folder_fd (the caller's), whose path folder prefixes the
 * listed paths; sub-folders are opened relative to it with O_NOFOLLOW. */
enum cxr_status cxr_api_file_list_scan_at(struct cxr_api_file_list *list, int folder_fd,
                                          const char *folder, size_t max);
void cxr_api_file_list_release(struct cxr_api_file_list *list);

/* ---- The run ledger (api_ledger.c): which files of one bulk or `infer` run wrote which
 * patient folder, to report studies that share a patient ID. Thread safe. ---- */
struct cxr_api_ledger;
enum cxr_status cxr_api_ledger_create(struct cxr_api_ledger **ledger);
void cxr_api_ledger_destroy(struct cxr_api_ledger *ledger);
enum cxr_status cxr_api_ledger_add(struct cxr_api_ledger *ledger, const char *patient_id,
                                   const char *input_path, const char *sop_instance_uid);
/* Appends to text "PID: a.dcm, b.dcm (the folder holds b.dcm); ..." for the first max_shown
 * patient IDs written by more than one file (paths shown relative to strip when under it), and
 * returns how many such patient IDs there are. Reads each folder's predictions JSON under
 * output_folder to name the file whose result it holds. */
size_t cxr_api_ledger_collisions(struct cxr_api_ledger *ledger, const char *output_folder,
                                 const char *strip, size_t max_shown, struct cxr_buf *text);

/* The sentence that introduces the ledger's list in messages. */
#define CXR_API_SHARED_ID_TEXT                                                                     \
    "patient IDs written by more than one file (each folder keeps the result written last; "       \
    "every result stays in the audit log: cxrd results --sop UID)"

/* ---- The run summary CSV (api_summary.c) ----
 * <output_folder>/cxrd_run_<UTC time>.csv: a header, then one record per input file: input_path,
 * patient_id, sop_instance_uid, result, "<Finding> confidence" and "<Finding> presence" for the
 * 11 findings in API order (as the predictions JSON prints them), output_folder (the patient
 * folder holding the files) and skip_reason (empty for analysed files). */
#define CXR_API_SUMMARY_PREFIX "cxrd_run_"
struct cxr_api_result;
/* "cxrd_run_20261203T130512.345Z.csv" for a run started at wall-clock time when. */
void cxr_api_summary_name(const struct timespec *when, char *out, size_t size);
/* Appends the header line. CXR_ERR_NOMEM only. */
enum cxr_status cxr_api_summary_header(struct cxr_buf *out);
/* One record, LF-terminated, malloc'ed (NULL: out of memory): the result's fields when its
 * status is 200, else the patient ID and SOP Instance UID known so far and skip_reason.
 * result may be NULL (a file never analysed). output_folder is the run's output folder. */
char *cxr_api_summary_row(const char *input_path, const struct cxr_api_result *result,
                          const char *output_folder, const char *skip_reason);
/* A record read back from a job's files (job_files.csv_row) in this release's form, LF-terminated,
 * malloc'ed (NULL: out of memory): each field written again with the summary's field writer.
 * Releases before the formula defusing stored text fields as they were, and a job they
 * recorded is summarised (GET /jobs/{id}/summary.csv, its summary file) by this one. A record
 * of this release comes back the same; a whole record of a release before model_version and
 * thresholds gains them empty; one that does not parse as a single record is kept as stored. */
char *cxr_api_summary_row_stored(const char *stored);
/* The skip_reason of a failed result: its v1 Message, except for a 500, whose cause stays in the
 * server log: "outputs could not be written ..." when storage failed, else "inference error". */
const char *cxr_api_skip_reason(const struct cxr_api_result *result);
/* Writes the header and the non-NULL rows to folder/name atomically (a file group), folder
 * opened (created when missing) beneath api's output root: CXR_ERR_INVALID_ARG when it leads
 * out of the root. */
enum cxr_status cxr_api_summary_write(struct cxr_api *api, const char *folder, const char *name,
                                      const char *const *rows, size_t count, struct cxr_err *err);

#endif
