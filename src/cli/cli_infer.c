/* `cxrd infer FILE... --output DIR [--patient-id ID] [--explain]`: the single-inference
 * pipeline without HTTP, for batch screening runs. Same outputs as save_to_disk, a progress line
 * on a terminal, a summary at the end; exit 1 when any file failed. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "report/report.h"

/* The audit log `infer` keeps in the output folder when the config names none. */
#define CXR_INFER_DATABASE "cxrd_results.sqlite"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: cxrd infer FILE|DIR... --output OUT [--patient-id ID] [--explain]\n"
            "                  [--dicom] [--config FILE] [--model PATH]\n\n"
            "Analyses each DICOM FILE, and every .dcm file under each DIR (recursively, as\n"
            "bulk inference does), and writes OUT/<patient_id>/<patient_id>_predictions.json,\n"
            "_source_image.png, _heatmap.png (not for Normal) and _report.pdf, as the API does\n"
            "with save_to_disk. The patient ID is --patient-id (one FILE only) or the file's\n"
            "PatientID. --explain also writes <patient_id>_cams.npy: float32 [11,h,w] class\n"
            "maps in API order. --dicom also writes the DICOM outputs for a PACS: _sr.dcm\n"
            "(Chest CAD SR), _heatmap.dcm (Secondary Capture) and _report.dcm (Encapsulated\n"
            "PDF). --config supplies [model], [limits], [report], [gate], [dicom] and\n"
            "[audit]; without an audit database, results are also kept in\n"
            "OUT/" CXR_INFER_DATABASE " (read back with cxrd results). --model overrides the\n"
            "model path. Progress and the summary go to stderr, nothing to stdout; the run\n"
            "summary OUT/cxrd_run_<UTC time>.csv has one row per file.\n"
            "SIGINT (Ctrl-C) or SIGTERM stops the run after the file being analysed; the run\n"
            "summary lists the files not processed (a second signal stops at once).\n"
            "Exit status: 0 when every file was analysed, 1 when any failed, 2 on a usage\n"
            "error; stopped by a signal, it ends by that signal (a shell shows 130 or 143).\n");
}

/* Set by the first SIGINT or SIGTERM. Killed by default, a run left no run summary (the one
 * record of which files were done) and could die between the renames of one patient's files,
 * leaving a mix of two runs' results in the folder. The handler is one-shot (SA_RESETHAND):
 * a second signal kills at once. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int signal_number)
{
    stop_signal = signal_number;
}

static void catch_stop_signals(void)
{
    struct sigaction action = {.sa_handler = on_stop, .sa_flags = SA_RESETHAND | SA_RESTART};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

struct tally {
    size_t done, failed, by_result[3];
};

/* Removes a database this run made and could not open (a full or read-only output folder), with
 * the journal files SQLite may have left beside it: a half-made file would refuse the next run. */
static void remove_new_database(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char file[4200];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
        unlink(file);
    }
}

/* The files to analyse: each argument as given, or a folder's .dcm files (recursively, as
 * bulk inference takes them). False, with the reason on stderr, when a folder cannot be read. */
static bool list_inputs(char **arguments, int count, size_t max, struct cxr_api_file_list *list)
{
    for (int i = 0; i < count; i++) {
        struct stat info;
        enum cxr_status status;
        if (stat(arguments[i], &info) == 0 && S_ISDIR(info.st_mode)) {
            size_t before = list->count;
            status = cxr_api_file_list_scan(list, arguments[i], max);
            if (status == CXR_OK && list->count == before)
                fprintf(stderr, "cxrd infer: no .dcm files under %s\n", arguments[i]);
        } else {
            char *copy = strdup(arguments[i]);
            status = copy ? CXR_OK : CXR_ERR_NOMEM;
            if (copy && list->count == list->cap) {
                size_t cap = list->cap ? list->cap * 2 : 16;
                char **paths = realloc(list->paths, cap * sizeof *paths);
                status = paths ? CXR_OK : CXR_ERR_NOMEM;
                if (paths) {
                    list->paths = paths;
                    list->cap = cap;
                }
            }
            if (status == CXR_OK)
                list->paths[list->count++] = copy;
            else
                free(copy);
        }
        if (status == CXR_ERR_LIMIT) {
            fprintf(stderr, "cxrd infer: more than %zu DICOM files ([limits] max_bulk_files)\n",
                    max);
            return false;
        }
        if (status != CXR_OK) {
            fprintf(stderr, "cxrd infer: out of memory listing the files\n");
            return false;
        }
    }
    if (list->count == 0) {
        fprintf(stderr, "cxrd infer: no DICOM files to analyse\n");
        return false;
    }
    return true;
}

int cxr_cli_infer(int argc, char **argv)
{
    static const struct option options[] = {
            {"output", required_argument, NULL, 'o'}, {"patient-id", required_argument, NULL, 'p'},
            {"explain", no_argument, NULL, 'e'},      {"dicom", no_argument, NULL, 'd'},
            {"config", required_argument, NULL, 'c'}, {"model", required_argument, NULL, 'm'},
            {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *output = NULL, *patient_id = NULL, *config_path = NULL, *model = NULL;
    bool explain = false, dicom_outputs = false;
    optind = 1;
    for (int option; (option = getopt_long(argc, argv, "o:p:edc:m:h", options, NULL)) != -1;) {
        switch (option) {
        case 'o':
            if (!cxr_cli_option_once("infer", "output", &output, optarg))
                return 2;
            break;
        case 'p':
            if (!cxr_cli_option_once("infer", "patient-id", &patient_id, optarg))
                return 2;
            break;
        case 'e':
            explain = true;
            break;
        case 'd':
            dicom_outputs = true;
            break;
        case 'c':
            if (!cxr_cli_option_once("infer", "config", &config_path, optarg))
                return 2;
            break;
        case 'm':
            if (!cxr_cli_option_once("infer", "model", &model, optarg))
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
    if ((output == NULL || output[0] == '\0') && optind < argc) {
        fprintf(stderr, "cxrd infer: --output OUT is required: the folder the results go to\n");
        return 2;
    }
    if (output == NULL || optind == argc) {
        usage(stderr);
        return 2;
    }
    if (patient_id && !cxr_api_patient_id_valid(patient_id, strlen(patient_id))) {
        fprintf(stderr, "cxrd infer: Invalid patient_id: '%s'\n", patient_id);
        return 2;
    }

    struct cxr_config config;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_config_load(config_path, &config, &err) != CXR_OK) {
        fprintf(stderr, "cxrd infer: %s\n", err.message);
        return 1;
    }
    struct cxr_api_file_list inputs = {0};
    if (!list_inputs(argv + optind, argc - optind, config.max_bulk_files, &inputs)) {
        cxr_api_file_list_release(&inputs);
        cxr_config_release(&config);
        return 1;
    }
    if (patient_id && inputs.count > 1) {
        fprintf(stderr, "cxrd infer: --patient-id names one patient; give one FILE with it\n");
        cxr_api_file_list_release(&inputs);
        cxr_config_release(&config);
        return 2;
    }
    int file_count = (int)inputs.count;
    cxr_log_set_level(CXR_LOG_WARN);
    /* The operator names files and folders directly: the request roots do not apply. */
    free(config.input_root);
    free(config.output_root);
    config.input_root = strdup("/");
    config.output_root = strdup("/");
    if (model) {
        free(config.model_path);
        config.model_path = strdup(model);
    }
    char *output_real = NULL;
    bool database_is_new = false; /* this run makes the output folder's audit database */
    struct cxr_api *api = NULL;
    struct cxr_api_ledger *ledger = NULL;
    char **rows = NULL; /* the run summary's record of each file */
    int exit_code = 1;
    if (!config.input_root || !config.output_root || !config.model_path) {
        fprintf(stderr, "cxrd infer: out of memory\n");
        goto done;
    }
    if (cxr_path_mkdirs(output, &err) != CXR_OK || (output_real = realpath(output, NULL)) == NULL) {
        fprintf(stderr, "cxrd infer: Unable to create output folder: %s (%s)\n", output,
                err.message[0] ? err.message : "cannot resolve");
        goto done;
    }
    /* Every result is kept by SOP Instance UID, also when a later study of the same patient
     * replaces its files: without a configured audit log, one lives in the output folder. */
    if (config.audit_database == NULL || config.audit_database[0] == '\0') {
        free(config.audit_database);
        size_t size = strlen(output_real) + sizeof "/" CXR_INFER_DATABASE;
        config.audit_database = malloc(size);
        if (config.audit_database == NULL) {
            fprintf(stderr, "cxrd infer: out of memory\n");
            goto done;
        }
        snprintf(config.audit_database, size, "%s/%s", output_real, CXR_INFER_DATABASE);
        database_is_new = access(config.audit_database, F_OK) != 0;
    }
    if (cxr_api_ledger_create(&ledger) != CXR_OK) {
        fprintf(stderr, "cxrd infer: out of memory\n");
        goto done;
    }
    if (cxr_api_create(&config, &api, &err) != CXR_OK) {
        fprintf(stderr, "cxrd infer: %s\n", err.message);
        if (database_is_new)
            remove_new_database(config.audit_database);
        goto done;
    }

    bool progress = isatty(STDERR_FILENO);
    struct tally tally = {0};
    double start = cxr_api_now();
    struct timespec started;
    clock_gettime(CLOCK_REALTIME, &started);
    rows = calloc((size_t)file_count, sizeof *rows);
    if (rows == NULL) {
        fprintf(stderr, "cxrd infer: out of memory\n");
        goto done;
    }
    catch_stop_signals();
    int stopped_at = file_count;
    for (int i = 0; i < file_count; i++) {
        if (stop_signal) {
            stopped_at = i;
            break;
        }
        const char *path = inputs.paths[i];
        char *resolved = realpath(path, NULL);
        struct cxr_api_result result;
        double file_start = cxr_api_now();
        if (resolved == NULL) {
            memset(&result, 0, sizeof result);
            result.status = 400;
            snprintf(result.message, sizeof result.message, "Input image path does not exist");
        } else {
            struct cxr_api_job job = {
                    .input_path = resolved,
                    .patient_id = patient_id,
                    .output_folder = output_real,
                    .output_folder_shown = output_real,
                    .explain = explain,
                    .dicom_outputs = dicom_outputs,
            };
            cxr_api_job_run(api, &job, &result);
        }
        if (progress)
            fprintf(stderr, "\r\033[K[%d/%d] %s", i + 1, file_count, path);
        if (result.status == 200) {
            tally.done++;
            for (int r = 0; r < 3; r++)
                tally.by_result[r] += strcmp(result.result, cxr_model_result_name(r)) == 0;
            if (!progress)
                fprintf(stderr, "[%d/%d] %s: %s (%s)\n", i + 1, file_count, path, result.result,
                        result.patient_id);
        } else {
            tally.failed++;
            fprintf(stderr, "%s%s: failed: %s%s%s\n", progress ? "\n" : "", path, result.message,
                    result.cause[0] ? ": " : "", result.cause);
        }
        if (result.status == 200 &&
            cxr_api_ledger_add(ledger, result.patient_id, path,
                               result.sop_instance_uid ? result.sop_instance_uid : "") != CXR_OK)
            fprintf(stderr, "cxrd infer: out of memory recording %s\n", path);
        if (result.status == 200 && result.gate_flagged)
            fprintf(stderr, "%s%s: warning: %s\n", progress ? "\n" : "", path, result.message);
        rows[i] = cxr_api_summary_row(path, &result, output_real, result.message);
        struct cxr_api_audit_extra extra = {.output_folder = output_real};
        cxr_api_audit_result_extra(api, getenv("USER") ? getenv("USER") : "", NULL, "infer", path,
                                   &result, (cxr_api_now() - file_start) * 1000.0, &extra);
        cxr_api_result_release(&result);
        free(resolved);
    }
    if (progress)
        fprintf(stderr, "\n");
    if (stopped_at < file_count) {
        char reason[96];
        snprintf(reason, sizeof reason, "not processed: cxrd infer was stopped (%s)",
                 stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
        for (int i = stopped_at; i < file_count; i++)
            rows[i] = cxr_api_summary_row(inputs.paths[i], NULL, output_real, reason);
        fprintf(stderr, "infer: stopped by %s: %d of %d files not processed\n",
                stop_signal == SIGINT ? "SIGINT" : "SIGTERM", file_count - stopped_at, file_count);
    }
    fprintf(stderr,
            "infer: %d files in %.1f s: %zu analysed (TB Presumptive %zu, Abnormal %zu, Normal "
            "%zu), %zu failed; outputs in %s\n",
            file_count, cxr_api_now() - start, tally.done,
            tally.by_result[CXR_RESULT_TB_PRESUMPTIVE], tally.by_result[CXR_RESULT_ABNORMAL],
            tally.by_result[CXR_RESULT_NORMAL], tally.failed, output_real);
    struct cxr_buf shared = {0};
    size_t shared_count = cxr_api_ledger_collisions(ledger, output_real, NULL, 20, &shared);
    if (shared_count)
        fprintf(stderr, "infer: warning: %zu " CXR_API_SHARED_ID_TEXT ": %s\n", shared_count,
                (const char *)shared.data);
    cxr_buf_release(&shared);
    char summary[64];
    cxr_api_summary_name(&started, summary, sizeof summary);
    if (cxr_api_summary_write(api, output_real, summary, (const char *const *)rows,
                              (size_t)file_count, &err) != CXR_OK) {
        fprintf(stderr, "cxrd infer: run summary: %s\n", err.message);
        tally.failed++;
    } else {
        fprintf(stderr, "infer: summary %s/%s\n", output_real, summary);
    }
    exit_code = stop_signal ? 128 + stop_signal : tally.failed ? 1 : 0;

done:
    for (int i = 0; rows && i < file_count; i++)
        free(rows[i]);
    free(rows);
    cxr_api_file_list_release(&inputs);
    cxr_api_ledger_destroy(ledger);
    cxr_api_destroy(api);
    cxr_report_shutdown(); /* single-threaded here: free the font caches */
    free(output_real);
    cxr_config_release(&config);
    /* Die by the signal (its handler was one-shot) rather than exit: a shell running infer in
     * a loop stops on a child killed by SIGINT, but goes on after one that exited. */
    if (stop_signal)
        raise(stop_signal);
    return exit_code;
}
