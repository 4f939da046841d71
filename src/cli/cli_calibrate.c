/* `cxrd calibrate --labels FILE.csv`: a site's own operating point. Runs the configured model
 * over the site's labelled studies through the same pipeline and input gate as `infer`, then
 * writes the ROC table with bootstrap CIs, the threshold that meets a target sensitivity with
 * the highest specificity, a one-page PDF of the plots and a ready [thresholds] section. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cli/cli_calibrate_internal.h"
#include "report/report.h"

#define LIST_SHOWN CALIBRATE_LIST_SHOWN

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: cxrd calibrate --labels FILE.csv [--target-sensitivity 0.90]\n"
            "                      [--finding Tuberculosis] [--output DIR] [--config FILE]\n"
            "                      [--model PATH] [--seed N] [--replicates N]\n\n"
            "Chooses a site's operating point for one finding on its own labelled studies.\n"
            "FILE.csv has a header row: a column `path` (DICOM files, relative to the CSV's\n"
            "folder) and either a column `label` (0/1 for --finding) or one column per finding\n"
            "named as in the API (0/1, empty: not labelled for it); ',' or ';' between fields,\n"
            "header names in any case. A file or image listed twice counts once. Every file\n"
            "goes through the pipeline and input gate of `cxrd infer` (nothing is drawn or\n"
            "written per file); unreadable or refused files are listed and left out. Needs at\n"
            "least %d positives and %d negatives (100 or more studies recommended).\n\n"
            "Writes to DIR (default ./calibration), atomically, and prints the summary:\n"
            "  summary.txt           AUC, the chosen point, the model's own point, round values\n"
            "  thresholds.csv        every distinct score: TP FP TN FN, sensitivity,\n"
            "                        specificity, PPV, NPV, share tested, tests per case found,\n"
            "                        each with a bootstrap 95%% CI\n"
            "  round_thresholds.csv  the same at 0.01, 0.02, 0.05, 0.10, ..., 0.95, 0.98, 0.99\n"
            "  scores.csv            path, label, score of every analysed study\n"
            "  calibration.pdf       ROC curve, sensitivity/specificity vs threshold, score\n"
            "                        distributions, the chosen point marked\n"
            "  thresholds.ini        the [thresholds] section to paste into the config\n"
            "--target-sensitivity (default 0.90): the threshold chosen has the highest\n"
            "specificity of those whose sensitivity reaches it, and of those the highest\n"
            "sensitivity. Bootstrap: --replicates\n"
            "(default %d) resamples of the studies with replacement, seeded by --seed (default\n"
            "1), 95%% percentile intervals. --config supplies [model], [limits] and [gate]; its\n"
            "[thresholds] are ignored (scores do not depend on them).\n",
            CXR_CALIBRATION_MIN_CLASS, CXR_CALIBRATION_MIN_CLASS, CXR_CALIBRATION_REPLICATES);
}

static void rows_release(struct calibrate_run *run)
{
    for (size_t i = 0; i < run->row_count; i++) {
        free(run->rows[i].resolved);
        free(run->rows[i].problem);
        free(run->rows[i].sop_instance_uid);
    }
    free(run->rows);
}

/* The class counts, refused early (before any file is analysed) when too small. */
static int check_counts(const struct calibrate_run *run, const char *what)
{
    size_t positives = 0, negatives = 0;
    for (size_t i = 0; i < run->row_count; i++) {
        if (run->rows[i].analysed || (strcmp(what, "labelled") == 0 && !run->rows[i].duplicate)) {
            positives += run->rows[i].label == 1;
            negatives += run->rows[i].label == 0;
        }
    }
    size_t minimum = CXR_CALIBRATION_MIN_CLASS;
    if (positives >= minimum && negatives >= minimum)
        return 0;
    fprintf(stderr,
            "cxrd calibrate: %zu positives and %zu negatives %s for %s: at least %zu of each are "
            "needed, or the confidence intervals would be meaningless; add ",
            positives, negatives, what, run->finding, minimum);
    if (positives < minimum)
        fprintf(stderr, "%zu more positive%s", minimum - positives,
                minimum - positives == 1 ? "" : "s");
    if (positives < minimum && negatives < minimum)
        fprintf(stderr, " and ");
    if (negatives < minimum)
        fprintf(stderr, "%zu more negative%s", minimum - negatives,
                minimum - negatives == 1 ? "" : "s");
    fprintf(stderr, " (100 or more studies are recommended)\n");
    return 1;
}

/* One row through the pipeline (predict only): its score, or why it was left out. */
static void analyse_row(struct cxr_api *api, const struct calibrate_run *run,
                        struct calibrate_row *row)
{
    /* No folder is written, so a study without a PatientID still counts. */
    struct cxr_api_job job = {
            .input_path = row->resolved,
            .patient_id = "CALIBRATION",
            .predict_only = true,
    };
    struct cxr_api_result result;
    cxr_api_job_run(api, &job, &result);
    if (result.status == 200 && result.data) {
        json_t *findings = json_object_get(result.data, "findings");
        json_t *finding = json_array_get(findings, (size_t)run->finding_index);
        row->score = json_real_value(json_object_get(finding, "confidence"));
        row->analysed = true;
        if (result.gate_flagged)
            row->problem = cxr_cli_calibrate_text("kept, gate warning: %s", result.message);
    } else {
        row->problem = cxr_cli_calibrate_text("%s%s%s", result.message, result.cause[0] ? ": " : "",
                                              result.cause);
    }
    row->sop_instance_uid = result.sop_instance_uid; /* taken over: release leaves it */
    result.sop_instance_uid = NULL;
    cxr_api_result_release(&result);
}

/* Runs every row through the pipeline (predict only). */
static void analyse(struct cxr_api *api, struct calibrate_run *run)
{
    bool progress = isatty(STDERR_FILENO);
    size_t step = run->row_count / 10 ? run->row_count / 10 : 1;
    double start = cxr_api_now();
    for (size_t i = 0; i < run->row_count; i++) {
        struct calibrate_row *row = &run->rows[i];
        if (progress)
            fprintf(stderr, "\r\033[K[%zu/%zu] %s", i + 1, run->row_count, row->path);
        if (row->problem == NULL) /* not left out when the labels were read */
            analyse_row(api, run, row);
        if (!progress && ((i + 1) % step == 0 || i + 1 == run->row_count))
            fprintf(stderr, "calibrate: %zu/%zu files (%.0f s)\n", i + 1, run->row_count,
                    cxr_api_now() - start);
    }
    if (progress)
        fprintf(stderr, "\n");
}

/* "0.917 (0.833-0.979)"; "—" when undefined. */
static void interval_text(const struct cxr_calibration_interval *value, int digits, char *out,
                          size_t size)
{
    if (isnan(value->value))
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%.*f (%.*f-%.*f)", digits, value->value, digits, value->low, digits,
                 value->high);
}

static void point_line(struct cxr_buf *out, const struct cxr_calibration_point *point)
{
    char sensitivity[64], specificity[64], ppv[64], npv[64], tested[64], tests[64];
    interval_text(&point->sensitivity, 3, sensitivity, sizeof sensitivity);
    interval_text(&point->specificity, 3, specificity, sizeof specificity);
    interval_text(&point->ppv, 3, ppv, sizeof ppv);
    interval_text(&point->npv, 3, npv, sizeof npv);
    interval_text(&point->tested_share, 3, tested, sizeof tested);
    interval_text(&point->tests_per_case, 2, tests, sizeof tests);
    cxr_buf_printf(out,
                   "  sensitivity %s, specificity %s\n  PPV %s, NPV %s\n  share sent for "
                   "confirmatory testing %s, tests per case found %s\n  (TP %zu, FP %zu, TN %zu, "
                   "FN %zu)\n",
                   sensitivity, specificity, ppv, npv, tested, tests, point->true_positives,
                   point->false_positives, point->true_negatives, point->false_negatives);
}

static void csv_number(struct cxr_buf *out, double value)
{
    if (isnan(value))
        cxr_buf_printf(out, ",");
    else
        cxr_buf_printf(out, ",%.17g", value);
}

static void points_csv(struct cxr_buf *out, const struct cxr_calibration_point *points,
                       size_t count)
{
    cxr_buf_printf(out, "threshold,true_positives,false_positives,true_negatives,false_negatives");
    const char *names[6] = {"sensitivity", "specificity",  "ppv",
                            "npv",         "tested_share", "tests_per_case"};
    for (int m = 0; m < 6; m++)
        cxr_buf_printf(out, ",%s,%s_low,%s_high", names[m], names[m], names[m]);
    cxr_buf_printf(out, "\n");
    for (size_t i = 0; i < count; i++) {
        const struct cxr_calibration_point *p = &points[i];
        cxr_buf_printf(out, "%.17g,%zu,%zu,%zu,%zu", p->threshold, p->true_positives,
                       p->false_positives, p->true_negatives, p->false_negatives);
        const struct cxr_calibration_interval *values[6] = {&p->sensitivity,  &p->specificity,
                                                            &p->ppv,          &p->npv,
                                                            &p->tested_share, &p->tests_per_case};
        for (int m = 0; m < 6; m++) {
            csv_number(out, values[m]->value);
            csv_number(out, values[m]->low);
            csv_number(out, values[m]->high);
        }
        cxr_buf_printf(out, "\n");
    }
}

struct outputs {
    struct cxr_buf summary, section, points, rounds, scores, pdf;
};

static void outputs_release(struct outputs *outputs)
{
    cxr_buf_release(&outputs->summary);
    cxr_buf_release(&outputs->section);
    cxr_buf_release(&outputs->points);
    cxr_buf_release(&outputs->rounds);
    cxr_buf_release(&outputs->scores);
    cxr_buf_release(&outputs->pdf);
}

static void build_texts(const struct calibrate_run *run, const struct cxr_calibration *calibration,
                        const char *labels_path, const char *model_version, double model_threshold,
                        const char *date, size_t left_out, struct outputs *outputs)
{
    const struct cxr_calibration_point *chosen = &calibration->points[calibration->chosen];
    struct cxr_buf *section = &outputs->section;
    char sensitivity[64], specificity[64];
    interval_text(&chosen->sensitivity, 3, sensitivity, sizeof sensitivity);
    interval_text(&chosen->specificity, 3, specificity, sizeof specificity);
    cxr_buf_printf(section,
                   "; cxrd calibrate %s: %s on %zu positives and %zu negatives of %s;\n"
                   "; target sensitivity %.2f: sensitivity %s, specificity %s (bootstrap 95%% "
                   "CI)\n"
                   "[thresholds]\nmodel_version = %s\ncalibrated = %s\n%s = %s\n",
                   date, run->finding, calibration->positives, calibration->negatives, labels_path,
                   calibration->options.target_sensitivity, sensitivity, specificity, model_version,
                   date, run->finding, calibration->chosen_text);

    struct cxr_buf *out = &outputs->summary;
    char auc[64];
    interval_text(&calibration->auc, 3, auc, sizeof auc);
    cxr_buf_printf(out, "cxrd calibrate: %s, model version %s, %s\n", run->finding, model_version,
                   date);
    cxr_buf_printf(out,
                   "labels: %s: %zu rows labelled for %s; %zu analysed (%zu positive, %zu "
                   "negative), %zu left out%s\n",
                   labels_path, run->row_count, run->finding, calibration->study_count,
                   calibration->positives, calibration->negatives, left_out,
                   left_out ? " (listed at the end)" : "");
    if (run->unlabelled)
        cxr_buf_printf(out, "       %zu rows have no label for %s (empty cell) and are not used\n",
                       run->unlabelled, run->finding);
    if (run->duplicates)
        cxr_buf_printf(out,
                       "       %zu rows list the file or image of an earlier row and are counted "
                       "once\n",
                       run->duplicates);
    if (run->empty_rows)
        cxr_buf_printf(out, "       %zu empty rows (every cell empty) are skipped\n",
                       run->empty_rows);
    cxr_buf_printf(out, "ROC AUC %s, %zu distinct scores\n\n", auc, calibration->point_count);
    cxr_buf_printf(out,
                   "Chosen: threshold %s: of the thresholds whose sensitivity reaches the target "
                   "%.2f,\n  the one with the highest specificity, then the highest sensitivity;"
                   " it calls positive\n  exactly the studies scoring >= %.17g\n",
                   calibration->chosen_text, calibration->options.target_sensitivity,
                   chosen->threshold);
    point_line(out, chosen);
    if (!isnan(chosen->sensitivity.low) &&
        chosen->sensitivity.low < calibration->options.target_sensitivity)
        cxr_buf_printf(out,
                       "  note: the CI's lower end (%.3f) is below the target: on another sample "
                       "of this size the sensitivity may fall short; more positives narrow it\n",
                       chosen->sensitivity.low);
    cxr_buf_printf(out, "\nThe model's own threshold %.6g on these studies:\n", model_threshold);
    point_line(out, &calibration->model_point);

    cxr_buf_printf(out, "\nRound thresholds (95%% CI in thresholds.csv and "
                        "round_thresholds.csv):\n");
    cxr_buf_printf(out, "threshold  sensitivity  specificity    PPV     NPV   tested  "
                        "tests/case\n");
    for (size_t r = 0; r < CXR_CALIBRATION_ROUND_COUNT; r++) {
        const struct cxr_calibration_point *p = &calibration->round_points[r];
        char ppv[16], npv[16], tests[16];
        snprintf(ppv, sizeof ppv, isnan(p->ppv.value) ? "-" : "%.3f", p->ppv.value);
        snprintf(npv, sizeof npv, isnan(p->npv.value) ? "-" : "%.3f", p->npv.value);
        snprintf(tests, sizeof tests, isnan(p->tests_per_case.value) ? "-" : "%.2f",
                 p->tests_per_case.value);
        cxr_buf_printf(out, "%9.2f  %11.3f  %11.3f  %6s  %6s  %6.1f%%  %10s\n", p->threshold,
                       p->sensitivity.value, p->specificity.value, ppv, npv,
                       p->tested_share.value * 100.0, tests);
    }
    cxr_buf_printf(out,
                   "\nBootstrap: %u resamples of the %zu studies with replacement (not "
                   "stratified: PPV, NPV and the tested share carry the prevalence's uncertainty "
                   "too), splitmix64 seed %llu, 95%% percentile intervals (type 7 "
                   "quantiles).\nPPV, NPV, share tested and tests per case found assume the "
                   "set's prevalence (%.1f%%) is the screened population's.\n",
                   calibration->options.replicates, calibration->study_count,
                   (unsigned long long)calibration->options.seed,
                   100.0 * (double)calibration->positives / (double)calibration->study_count);
    cxr_buf_printf(out, "\nPaste into the config (replacing any earlier [thresholds] section; "
                        "calibrate each finding on its own, one line per finding):\n");
    cxr_buf_append(out, section->data, section->len);
    if (left_out) {
        cxr_buf_printf(out, "\nLeft out (%zu):\n", left_out);
        for (size_t i = 0; i < run->row_count; i++) {
            const struct calibrate_row *row = &run->rows[i];
            if (!row->analysed)
                cxr_buf_printf(out, "  line %zu: %s: %s\n", row->line, row->path,
                               row->problem ? row->problem : "?");
        }
    }
    for (size_t i = 0, shown = 0; i < run->row_count; i++) {
        const struct calibrate_row *row = &run->rows[i];
        if (row->analysed && row->problem)
            cxr_buf_printf(out, "%s  line %zu: %s: %s\n", shown++ ? "" : "\nGate warnings:\n",
                           row->line, row->path, row->problem);
    }

    points_csv(&outputs->points, calibration->points, calibration->point_count);
    points_csv(&outputs->rounds, calibration->round_points, CXR_CALIBRATION_ROUND_COUNT);
    cxr_buf_printf(&outputs->scores, "path,label,score\n");
    for (size_t i = 0; i < run->row_count; i++) {
        const struct calibrate_row *row = &run->rows[i];
        if (!row->analysed)
            continue;
        cxr_csv_append_text(&outputs->scores, row->path);
        cxr_buf_printf(&outputs->scores, ",%d,%.17g\n", row->label, row->score);
    }
}

static enum cxr_status write_outputs(const char *folder, const struct outputs *outputs,
                                     struct cxr_err *err)
{
    const struct {
        const char *name;
        const struct cxr_buf *buf;
    } files[] = {
            {"summary.txt", &outputs->summary},   {"thresholds.ini", &outputs->section},
            {"thresholds.csv", &outputs->points}, {"round_thresholds.csv", &outputs->rounds},
            {"scores.csv", &outputs->scores},     {"calibration.pdf", &outputs->pdf},
    };
    struct cxr_file_group *group = NULL;
    enum cxr_status status = cxr_path_mkdirs(folder, err);
    if (status == CXR_OK)
        status = cxr_file_group_create(folder, &group, err);
    for (size_t i = 0; status == CXR_OK && i < sizeof files / sizeof files[0]; i++)
        status = cxr_file_group_stage(group, files[i].name, files[i].buf->data, files[i].buf->len,
                                      err);
    if (status == CXR_OK)
        status = cxr_file_group_commit(group, err);
    cxr_file_group_destroy(group);
    return status;
}

struct options {
    const char *labels, *output, *config, *model, *finding;
    double target;
    uint64_t seed;
    uint32_t replicates;
};

static int parse_options(int argc, char **argv, struct options *options)
{
    static const struct option long_options[] = {
            {"labels", required_argument, NULL, 'l'},
            {"target-sensitivity", required_argument, NULL, 't'},
            {"finding", required_argument, NULL, 'f'},
            {"output", required_argument, NULL, 'o'},
            {"config", required_argument, NULL, 'c'},
            {"model", required_argument, NULL, 'm'},
            {"seed", required_argument, NULL, 's'},
            {"replicates", required_argument, NULL, 'r'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
    };
    *options =
            (struct options){.target = 0.90, .seed = 1, .replicates = CXR_CALIBRATION_REPLICATES};
    optind = 1;
    uint64_t number = 0;
    char *end = NULL;
    const char *target = NULL, *seed = NULL, *replicates = NULL; /* each given once */
    for (int option;
         (option = getopt_long(argc, argv, "l:t:f:o:c:m:s:r:h", long_options, NULL)) != -1;) {
        switch (option) {
        case 'l':
            if (!cxr_cli_option_once("calibrate", "labels", &options->labels, optarg))
                return 2;
            break;
        case 't':
            if (!cxr_cli_option_once("calibrate", "target-sensitivity", &target, optarg))
                return 2;
            options->target = strtod(optarg, &end);
            if (*end != '\0' || !(options->target > 0.0 && options->target <= 1.0)) {
                fprintf(stderr, "cxrd calibrate: --target-sensitivity %s is not in (0, 1]\n",
                        optarg);
                return 2;
            }
            break;
        case 'f':
            if (!cxr_cli_option_once("calibrate", "finding", &options->finding, optarg))
                return 2;
            break;
        case 'o':
            if (!cxr_cli_option_once("calibrate", "output", &options->output, optarg))
                return 2;
            break;
        case 'c':
            if (!cxr_cli_option_once("calibrate", "config", &options->config, optarg))
                return 2;
            break;
        case 'm':
            if (!cxr_cli_option_once("calibrate", "model", &options->model, optarg))
                return 2;
            break;
        case 's':
            if (!cxr_cli_option_once("calibrate", "seed", &seed, optarg))
                return 2;
            if (cxr_parse_u64(optarg, 0, UINT64_MAX, &options->seed) != CXR_OK) {
                fprintf(stderr, "cxrd calibrate: --seed %s is not a number\n", optarg);
                return 2;
            }
            break;
        case 'r':
            if (!cxr_cli_option_once("calibrate", "replicates", &replicates, optarg))
                return 2;
            if (cxr_parse_u64(optarg, 100, 100000, &number) != CXR_OK) {
                fprintf(stderr, "cxrd calibrate: --replicates %s is not in 100..100000\n", optarg);
                return 2;
            }
            options->replicates = (uint32_t)number;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (options->labels == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (options->output == NULL) /* the defaults, set after the options seen once */
        options->output = "calibration";
    if (options->finding == NULL)
        options->finding = "Tuberculosis";
    if (cxr_model_finding_index(options->finding) < 0) {
        fprintf(stderr,
                "cxrd calibrate: --finding '%s' is not one of the 11 findings (API "
                "spelling, e.g. Tuberculosis, Pleural Effusion)\n",
                options->finding);
        return 2;
    }
    return 0;
}

/* The config as calibrate uses it: any file, no audit log, no thresholds. */
static int load_config(const struct options *options, struct cxr_config *config)
{
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_config_load(options->config, config, &err) != CXR_OK) {
        fprintf(stderr, "cxrd calibrate: %s\n", err.message);
        return 1;
    }
    /* Scores do not depend on thresholds, and a section made for the previous model must not
     * stop the very run that replaces it. */
    if (config->thresholds.present)
        fprintf(stderr,
                "cxrd calibrate: note: the config's [thresholds] (for model version %s) are "
                "ignored here\n",
                config->thresholds.model_version);
    memset(&config->thresholds, 0, sizeof config->thresholds);
    free(config->input_root);
    free(config->output_root);
    free(config->audit_database);
    config->input_root = strdup("/");
    config->output_root = strdup("/");
    config->audit_database = strdup("");
    if (options->model) {
        free(config->model_path);
        config->model_path = strdup(options->model);
    }
    if (!config->input_root || !config->output_root || !config->audit_database ||
        !config->model_path) {
        fprintf(stderr, "cxrd calibrate: out of memory\n");
        return 1;
    }
    return 0;
}

int cxr_cli_calibrate(int argc, char **argv)
{
    struct options options;
    int parsed = parse_options(argc, argv, &options);
    if (parsed != 0)
        return parsed < 0 ? 0 : parsed;

    struct calibrate_run run = {.finding = options.finding,
                                .finding_index = cxr_model_finding_index(options.finding)};
    char *labels_real = realpath(options.labels, NULL);
    if (labels_real == NULL) {
        fprintf(stderr, "cxrd calibrate: %s: %s\n", options.labels, strerror(errno));
        return 1;
    }
    snprintf(run.csv_dir, sizeof run.csv_dir, "%s", labels_real);
    char *slash = strrchr(run.csv_dir, '/');
    slash[slash == run.csv_dir ? 1 : 0] = '\0';

    struct cxr_csv *csv = NULL;
    struct cxr_config config;
    bool config_loaded = false;
    struct cxr_api *api = NULL;
    struct cxr_calibration *calibration = NULL;
    struct outputs outputs = {0};
    struct cxr_err err = CXR_ERR_INIT;
    int exit_code = 1;
    if (cxr_cli_calibrate_labels_read(labels_real, &run, &csv) != 0 ||
        check_counts(&run, "labelled") != 0)
        goto done;
    if (load_config(&options, &config) != 0)
        goto done;
    config_loaded = true;
    cxr_log_set_level(CXR_LOG_WARN);
    if (cxr_api_create(&config, &api, &err) != CXR_OK) {
        fprintf(stderr, "cxrd calibrate: %s\n", err.message);
        goto done;
    }
    const char *model_version = cxr_api_model_version(api);
    fprintf(stderr, "calibrate: %s with model %s (version %s) on %zu studies of %s\n", run.finding,
            config.model_path, model_version, run.row_count, labels_real);
    analyse(api, &run);
    if (cxr_cli_calibrate_images_dedupe(labels_real, &run) != 0)
        goto done;

    size_t left_out = 0, analysed = 0;
    struct cxr_calibration_study *studies = calloc(run.row_count, sizeof *studies);
    if (studies == NULL) {
        fprintf(stderr, "cxrd calibrate: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < run.row_count; i++) {
        if (run.rows[i].analysed)
            studies[analysed++] =
                    (struct cxr_calibration_study){run.rows[i].score, run.rows[i].label};
        else
            left_out++;
    }
    size_t unreadable = left_out - run.duplicates;
    for (size_t i = 0, shown = 0; i < run.row_count; i++) {
        if (!run.rows[i].analysed && shown++ < LIST_SHOWN)
            fprintf(stderr, "calibrate: left out: line %zu: %s: %s\n", run.rows[i].line,
                    run.rows[i].path, run.rows[i].problem ? run.rows[i].problem : "?");
    }
    if (left_out > LIST_SHOWN)
        fprintf(stderr, "calibrate: ... %zu more left out (all in summary.txt)\n",
                left_out - LIST_SHOWN);
    if (run.duplicates)
        fprintf(stderr,
                "calibrate: %zu rows list a file or image of an earlier row with the same label "
                "and are counted once\n",
                run.duplicates);
    if (unreadable)
        fprintf(stderr, "calibrate: %zu of %zu rows could not be analysed and are left out\n",
                unreadable, run.row_count);
    if (check_counts(&run, "analysed") != 0) {
        free(studies);
        goto done;
    }
    double model_threshold = cxr_api_model_threshold(api, run.finding_index);
    struct cxr_calibration_options calibration_options = {
            .target_sensitivity = options.target,
            .model_threshold = model_threshold,
            .seed = options.seed,
            .replicates = options.replicates,
    };
    enum cxr_status status =
            cxr_model_calibrate(studies, analysed, &calibration_options, &calibration, &err);
    free(studies);
    if (status != CXR_OK) {
        fprintf(stderr, "cxrd calibrate: %s\n", err.message);
        goto done;
    }

    /* Local date and time to the minute: the section's `calibrated`, which names these
     * thresholds in PDFs and audit rows, so two calibrations of one day must differ. */
    char date[24];
    time_t now = time(NULL);
    struct tm local;
    localtime_r(&now, &local);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M", &local);
    build_texts(&run, calibration, labels_real, model_version, model_threshold, date, left_out,
                &outputs);
    if (cxr_buf_append(&outputs.section, "", 1) != CXR_OK) {
        fprintf(stderr, "cxrd calibrate: out of memory\n");
        goto done;
    }
    struct cxr_report_calibration_info info = {
            .finding = run.finding,
            .model_version = model_version,
            .labels_path = labels_real,
            .date = date,
            .section = (const char *)outputs.section.data,
            .left_out = left_out,
    };
    if (cxr_report_calibration_pdf(&info, calibration, &outputs.pdf, &err) != CXR_OK) {
        fprintf(stderr, "cxrd calibrate: calibration PDF: %s\n",
                err.message[0] ? err.message : "out of memory");
        goto done;
    }
    outputs.section.len--; /* the NUL was for the PDF only */
    if (write_outputs(options.output, &outputs, &err) != CXR_OK) {
        fprintf(stderr, "cxrd calibrate: writing %s: %s\n", options.output, err.message);
        goto done;
    }
    fwrite(outputs.summary.data, 1, outputs.summary.len, stdout);
    fprintf(stdout,
            "\nWritten to %s: summary.txt, thresholds.ini, thresholds.csv, "
            "round_thresholds.csv, scores.csv, calibration.pdf\n",
            options.output);
    exit_code = 0;

done:
    outputs_release(&outputs);
    cxr_calibration_destroy(calibration);
    cxr_api_destroy(api);
    cxr_report_shutdown();
    if (config_loaded)
        cxr_config_release(&config);
    cxr_csv_destroy(csv);
    rows_release(&run);
    free(labels_real);
    return exit_code;
}
