/* What `cxrd calibrate` (cli_calibrate.c) shares with its labels reader (cli_calibrate_labels.c):
 * one row per labelled study of the site's CSV. */
#ifndef CXR_CLI_CALIBRATE_INTERNAL_H
#define CXR_CLI_CALIBRATE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

#define CALIBRATE_LIST_SHOWN 20 /* unreadable rows and bad labels named on the terminal */

/* One study row of the CSV. */
struct calibrate_row {
    size_t line;
    const char *path; /* as written */
    int label;
    char *resolved; /* the real path; NULL when it could not be resolved (problem says why) */
    double score;
    bool analysed;
    char *problem;          /* why it was left out, or the gate's warning */
    bool duplicate;         /* left out: another row's file or image, with the same label */
    char *sop_instance_uid; /* whole (a longer one than a UID may be, cut, matched another's) */
};

struct calibrate_run {
    const char *finding;
    int finding_index;
    struct calibrate_row *rows;
    size_t row_count;
    size_t unlabelled; /* per-finding CSV: rows with an empty cell for the finding */
    size_t empty_rows; /* rows with every cell empty (a spreadsheet's unused rows) */
    size_t duplicates; /* rows left out as another row's file or image */
    char csv_dir[4096];
};

/* Reads the header and every row of the labels CSV at path (a real path), resolves each row's
 * file against run->csv_dir, and leaves out later rows of a file already listed. Returns 0, or
 * 1 after printing why on stderr (labels other than 0/1, text that is not UTF-8, a header
 * without the columns, one file with two labels), naming the lines. *csv_out owns the rows'
 * path strings. */
int cxr_cli_calibrate_labels_read(const char *path, struct calibrate_run *run,
                                  struct cxr_csv **csv_out);
/* After analysis: leaves out later rows whose DICOM file is an image already counted (same SOP
 * Instance UID under another path). Returns 0, or 1 after printing the lines when such rows
 * carry different labels. */
int cxr_cli_calibrate_images_dedupe(const char *labels_path, struct calibrate_run *run);
char *cxr_cli_calibrate_text(const char *fmt, ...) CXR_PRINTF(1, 2);

#endif
