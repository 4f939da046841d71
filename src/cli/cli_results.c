/* `cxrd results --sop UID [--config FILE | --database FILE]`: prints every stored result of a
 * SOP Instance UID from the audit log, oldest first, as a JSON array (time, route, input path,
 * patient ID, result, predictions). A result whose files a later study of the same patient
 * replaced is still here. Exit 1 when there is none. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: cxrd results --sop UID [--config FILE | --database FILE]\n\n"
                 "Prints, as a JSON array, every result stored for the SOP Instance UID in the\n"
                 "audit database ([audit] database of --config, or --database; `cxrd infer`\n"
                 "without one keeps DIR/cxrd_results.sqlite): time, route, input_path,\n"
                 "patient_id, result and the predictions JSON. Exit status 1 when none.\n");
}

static void add_row(const struct cxr_audit_result_row *row, void *context)
{
    json_t *rows = context;
    json_t *predictions = json_loads(row->predictions, 0, NULL);
    json_t *item = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "time", row->time, "route",
                             row->route, "input_path", row->input_path, "patient_id",
                             row->patient_id, "result", row->result, "predictions",
                             predictions ? predictions : json_string(row->predictions));
    if (item)
        json_array_append_new(rows, item);
}

int cxr_cli_results(int argc, char **argv)
{
    static const struct option options[] = {
            {"sop", required_argument, NULL, 's'},
            {"config", required_argument, NULL, 'c'},
            {"database", required_argument, NULL, 'd'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
    };
    const char *sop = NULL, *config_path = NULL, *database = NULL;
    optind = 1;
    for (int option; (option = getopt_long(argc, argv, "s:c:d:h", options, NULL)) != -1;) {
        switch (option) {
        case 's':
            sop = optarg;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            database = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (sop == NULL || optind != argc || (config_path && database)) {
        usage(stderr);
        return 2;
    }
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_config config = {0};
    bool have_config = false;
    if (config_path) {
        if (cxr_config_load(config_path, &config, &err) != CXR_OK) {
            fprintf(stderr, "cxrd results: %s\n", err.message);
            return 1;
        }
        have_config = true;
        database = config.audit_database;
    }
    int exit_code = 1;
    struct cxr_audit *audit = NULL;
    json_t *rows = json_array();
    size_t count = 0;
    if (database == NULL || database[0] == '\0') {
        fprintf(stderr, "cxrd results: no audit database (give --database FILE, or a --config "
                        "with [audit] database)\n");
    } else if (access(database, R_OK) != 0) {
        fprintf(stderr, "cxrd results: cannot read the audit database %s\n", database);
    } else if (rows == NULL) {
        fprintf(stderr, "cxrd results: out of memory\n");
    } else if (cxr_audit_open(database, &audit, &err) != CXR_OK ||
               cxr_audit_find_sop(audit, sop, add_row, rows, &count, &err) != CXR_OK) {
        fprintf(stderr, "cxrd results: %s\n", err.message);
    } else if (count == 0) {
        fprintf(stderr, "cxrd results: no result stored for SOP Instance UID %s in %s\n", sop,
                database);
    } else {
        char *text = json_dumps(rows, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        if (text) {
            printf("%s\n", text);
            exit_code = 0;
        }
        free(text);
    }
    json_decref(rows);
    cxr_audit_close(audit);
    if (have_config)
        cxr_config_release(&config);
    return exit_code;
}
