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
                 "patient_id, result and the predictions JSON. One UID per run. Exit status\n"
                 "0 when results were printed, 1 when none is stored or the database cannot\n"
                 "be read (message on stderr), 2 on a usage error.\n");
}

struct found {
    json_t *rows;
    size_t lost; /* rows that could not be built (out of memory) */
};

/* Each text field through cxr_api_json_string: an input path that is not UTF-8 (a file name
 * from a Latin-1 share) made json_pack refuse the whole row, and the result vanished from an
 * answer that still said success. */
static void add_row(const struct cxr_audit_result_row *row, void *context)
{
    struct found *found = context;
    json_t *predictions = json_loads(row->predictions, 0, NULL);
    json_t *item = json_pack(
            "{s:o, s:o, s:o, s:o, s:o, s:o}", "time", cxr_api_json_string(row->time), "route",
            cxr_api_json_string(row->route), "input_path", cxr_api_json_string(row->input_path),
            "patient_id", cxr_api_json_string(row->patient_id), "result",
            cxr_api_json_string(row->result), "predictions",
            predictions ? predictions : cxr_api_json_string(row->predictions));
    if (item == NULL || json_array_append_new(found->rows, item) != 0)
        found->lost++;
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
            /* A script that passes several UIDs would otherwise get the last one's results
             * alone, with exit status 0. */
            if (!cxr_cli_option_once("results", "sop", &sop, optarg)) {
                fprintf(stderr, "cxrd results: run it once per UID\n");
                return 2;
            }
            break;
        case 'c':
            if (!cxr_cli_option_once("results", "config", &config_path, optarg))
                return 2;
            break;
        case 'd':
            if (!cxr_cli_option_once("results", "database", &database, optarg))
                return 2;
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
    struct found found = {.rows = json_array()};
    size_t count = 0;
    if (database == NULL || database[0] == '\0') {
        fprintf(stderr, "cxrd results: no audit database (give --database FILE, or a --config "
                        "with [audit] database)\n");
    } else if (access(database, R_OK) != 0) {
        fprintf(stderr, "cxrd results: cannot read the audit database %s\n", database);
    } else if (found.rows == NULL) {
        fprintf(stderr, "cxrd results: out of memory\n");
    } else if (cxr_audit_open_read_only(database, &audit, &err) != CXR_OK ||
               cxr_audit_find_sop(audit, sop, add_row, &found, &count, &err) != CXR_OK) {
        fprintf(stderr, "cxrd results: %s\n", err.message);
    } else if (count == 0) {
        fprintf(stderr, "cxrd results: no result stored for SOP Instance UID %s in %s\n", sop,
                database);
    } else if (found.lost) {
        fprintf(stderr, "cxrd results: out of memory building %zu of the %zu results\n", found.lost,
                count);
    } else {
        char *text = json_dumps(found.rows, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        if (text) {
            printf("%s\n", text);
            exit_code = 0;
        }
        free(text);
    }
    json_decref(found.rows);
    cxr_audit_close(audit);
    if (have_config)
        cxr_config_release(&config);
    return exit_code;
}
