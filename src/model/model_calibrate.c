/* Site calibration maths: the operating characteristics of `presence = score >= threshold` at
 * every distinct score of a site's labelled studies, the ROC AUC, seeded bootstrap confidence
 * intervals for all of them, and the threshold that meets a target sensitivity with the highest
 * specificity. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

const double cxr_calibration_round_thresholds[CXR_CALIBRATION_ROUND_COUNT] = {
        0.01, 0.02, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50,
        0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 0.98, 0.99,
};

enum metric { SENSITIVITY, SPECIFICITY, PPV, NPV, TESTED_SHARE, TESTS_PER_CASE, METRIC_COUNT };

/* Memory for one pass of bootstrap values; more thresholds than fit are done in several passes
 * that redraw the same replicates from the seed. */
#define BOOTSTRAP_BUDGET_BYTES ((size_t)64 << 20)

/* splitmix64 (Steele, Lea and Flood 2014): small, fast, and easy to re-implement in a test. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in [0, n): draws at or above the largest multiple of n below 2^64 are redrawn. */
static size_t draw_index(uint64_t *state, size_t n)
{
    uint64_t bound = (uint64_t)n;
    uint64_t remainder = (UINT64_MAX % bound + 1) % bound; /* 2^64 mod n */
    for (;;) {
        uint64_t x = next_random(state);
        if (remainder == 0 || x <= UINT64_MAX - remainder)
            return (size_t)(x % bound);
    }
}

static int compare_studies(const void *a, const void *b)
{
    const struct cxr_calibration_study *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return x->label - y->label;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Index of the first distinct score >= threshold (distinct_count when none). */
static size_t first_at_or_above(const double *distinct, size_t distinct_count, double threshold)
{
    size_t low = 0, high = distinct_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (distinct[middle] < threshold)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

static void metrics(double tp, double fp, double tn, double fn, double out[METRIC_COUNT])
{
    double positives = tp + fn, negatives = tn + fp, called = tp + fp;
    out[SENSITIVITY] = positives > 0 ? tp / positives : NAN;
    out[SPECIFICITY] = negatives > 0 ? tn / negatives : NAN;
    out[PPV] = called > 0 ? tp / called : NAN;
    out[NPV] = tn + fn > 0 ? tn / (tn + fn) : NAN;
    out[TESTED_SHARE] = positives + negatives > 0 ? called / (positives + negatives) : NAN;
    out[TESTS_PER_CASE] = tp > 0 ? called / tp : NAN;
}

/* Mann-Whitney AUC from per-distinct-score class counts: the share of (positive, negative)
 * pairs ranked correctly, ties counting one half. */
static double auc_from_counts(const double *positive, const double *negative, size_t count)
{
    double positives = 0, negatives = 0, below = 0, sum = 0;
    for (size_t d = 0; d < count; d++) {
        positives += positive[d];
        negatives += negative[d];
    }
    if (positives == 0 || negatives == 0)
        return NAN;
    for (size_t d = 0; d < count; d++) {
        sum += positive[d] * (below + 0.5 * negative[d]);
        below += negative[d];
    }
    return sum / (positives * negatives);
}

/* R's type 7 quantile of sorted[0..n). */
static double quantile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return NAN;
    double h = (double)(n - 1) * p;
    size_t low = (size_t)floor(h);
    if (low + 1 >= n)
        return sorted[n - 1];
    return sorted[low] + (h - (double)low) * (sorted[low + 1] - sorted[low]);
}

/* 95 % percentile interval of values[0..n) (NANs skipped); sorts values in place. */
static void interval(double *values, size_t n, struct cxr_calibration_interval *out)
{
    size_t defined = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(values[i]))
            values[defined++] = values[i];
    }
    qsort(values, defined, sizeof *values, compare_doubles);
    out->low = quantile(values, defined, 0.025);
    out->high = quantile(values, defined, 0.975);
}

/* The resolved input: studies sorted, the distinct scores and each study's distinct index. */
struct table {
    size_t count, distinct_count;
    double *distinct;            /* ascending */
    size_t *distinct_of;         /* per study (sorted order) */
    double *positive, *negative; /* per distinct score: counts in the sample or a replicate */
    double *above_positive, *above_negative; /* suffix sums, distinct_count + 1 entries */
};

static void suffix_sums(struct table *table)
{
    table->above_positive[table->distinct_count] = 0;
    table->above_negative[table->distinct_count] = 0;
    for (size_t d = table->distinct_count; d-- > 0;) {
        table->above_positive[d] = table->above_positive[d + 1] + table->positive[d];
        table->above_negative[d] = table->above_negative[d + 1] + table->negative[d];
    }
}

/* Metrics at a threshold given by its first distinct index. */
static void metrics_at(const struct table *table, size_t first, double out[METRIC_COUNT])
{
    double tp = table->above_positive[first], fp = table->above_negative[first];
    double fn = table->above_positive[0] - tp, tn = table->above_negative[0] - fp;
    metrics(tp, fp, tn, fn, out);
}

static void point_fill(const struct table *table, double threshold,
                       struct cxr_calibration_point *point)
{
    size_t first = first_at_or_above(table->distinct, table->distinct_count, threshold);
    double values[METRIC_COUNT];
    metrics_at(table, first, values);
    point->threshold = threshold;
    point->true_positives = (size_t)table->above_positive[first];
    point->false_positives = (size_t)table->above_negative[first];
    point->false_negatives = (size_t)table->above_positive[0] - point->true_positives;
    point->true_negatives = (size_t)table->above_negative[0] - point->false_positives;
    struct cxr_calibration_interval *slots[METRIC_COUNT] = {
            &point->sensitivity, &point->specificity,  &point->ppv,
            &point->npv,         &point->tested_share, &point->tests_per_case};
    for (int m = 0; m < METRIC_COUNT; m++)
        *slots[m] = (struct cxr_calibration_interval){values[m], NAN, NAN};
}

static struct cxr_calibration_interval *point_slot(struct cxr_calibration_point *point, int metric)
{
    struct cxr_calibration_interval *slots[METRIC_COUNT] = {
            &point->sensitivity, &point->specificity,  &point->ppv,
            &point->npv,         &point->tested_share, &point->tests_per_case};
    return slots[metric];
}

/* The percentile bootstrap of a proportion at 0 or 1 collapses to that value (every replicate
 * is all successes or all failures): "1.000 (1.000-1.000)" for 20 of 20 would claim certainty,
 * and the CI-below-target note could never fire. There the open bound is the exact
 * (Clopper-Pearson) one, 0.025^(1/n) for n of n, which has a closed form. */
static void widen_at_boundary(struct cxr_calibration_interval *slot, size_t successes,
                              size_t trials)
{
    if (trials == 0 || isnan(slot->value))
        return;
    double bound = pow(0.025, 1.0 / (double)trials);
    if (successes == trials)
        slot->low = bound;
    else if (successes == 0)
        slot->high = 1.0 - bound;
}

static void widen_point_at_boundary(struct cxr_calibration_point *point)
{
    size_t tp = point->true_positives, fp = point->false_positives;
    size_t tn = point->true_negatives, fn = point->false_negatives;
    widen_at_boundary(&point->sensitivity, tp, tp + fn);
    widen_at_boundary(&point->specificity, tn, tn + fp);
    widen_at_boundary(&point->ppv, tp, tp + fp);
    widen_at_boundary(&point->npv, tn, tn + fn);
    widen_at_boundary(&point->tested_share, tp + fp, tp + fp + tn + fn);
    /* Tests per case found is 1 / PPV: its upper bound follows PPV's lower one. */
    if (tp + fp > 0 && tp == tp + fp)
        point->tests_per_case.high = 1.0 / point->ppv.low;
}

/* Draws one replicate's class counts per distinct score into table->positive/negative. */
static void draw_replicate(struct table *table, const struct cxr_calibration_study *studies,
                           uint64_t *state)
{
    memset(table->positive, 0, table->distinct_count * sizeof *table->positive);
    memset(table->negative, 0, table->distinct_count * sizeof *table->negative);
    for (size_t i = 0; i < table->count; i++) {
        size_t pick = draw_index(state, table->count);
        if (studies[pick].label)
            table->positive[table->distinct_of[pick]] += 1;
        else
            table->negative[table->distinct_of[pick]] += 1;
    }
    suffix_sums(table);
}

/* Bootstrap intervals of every evaluated point (and of the AUC on the first pass). */
static enum cxr_status bootstrap(struct table *table, const struct cxr_calibration_study *studies,
                                 struct cxr_calibration_point **points, size_t point_count,
                                 struct cxr_calibration *calibration, struct cxr_err *err)
{
    size_t replicates = calibration->options.replicates;
    size_t per_point = replicates * METRIC_COUNT * sizeof(double);
    size_t chunk = BOOTSTRAP_BUDGET_BYTES / per_point;
    if (chunk == 0)
        chunk = 1;
    if (chunk > point_count)
        chunk = point_count;
    double *values = malloc(chunk * per_point);
    double *aucs = malloc(replicates * sizeof *aucs);
    size_t *firsts = malloc(chunk * sizeof *firsts);
    if (values == NULL || aucs == NULL || firsts == NULL) {
        free(values);
        free(aucs);
        free(firsts);
        return cxr_err_set(err, CXR_ERR_NOMEM, "calibrate: out of memory for the bootstrap");
    }
    for (size_t start = 0; start < point_count; start += chunk) {
        size_t end = start + chunk < point_count ? start + chunk : point_count;
        for (size_t p = start; p < end; p++)
            firsts[p - start] =
                    first_at_or_above(table->distinct, table->distinct_count, points[p]->threshold);
        uint64_t state = calibration->options.seed; /* every pass redraws the same replicates */
        for (size_t b = 0; b < replicates; b++) {
            draw_replicate(table, studies, &state);
            if (start == 0)
                aucs[b] = auc_from_counts(table->positive, table->negative, table->distinct_count);
            for (size_t p = start; p < end; p++) {
                double out[METRIC_COUNT];
                metrics_at(table, firsts[p - start], out);
                for (int m = 0; m < METRIC_COUNT; m++)
                    values[((p - start) * METRIC_COUNT + (size_t)m) * replicates + b] = out[m];
            }
        }
        if (start == 0) {
            for (size_t b = 0; b < replicates; b++)
                calibration->undefined_replicates += isnan(aucs[b]);
            interval(aucs, replicates, &calibration->auc);
        }
        for (size_t p = start; p < end; p++) {
            for (int m = 0; m < METRIC_COUNT; m++) {
                struct cxr_calibration_interval *slot = point_slot(points[p], m);
                interval(values + ((p - start) * METRIC_COUNT + (size_t)m) * replicates, replicates,
                         slot);
                if (isnan(slot->value))
                    slot->low = slot->high = NAN;
            }
            widen_point_at_boundary(points[p]);
        }
    }
    free(values);
    free(aucs);
    free(firsts);
    return CXR_OK;
}

/* Subtracts one unit in the last place from a decimal string of digits and one '.'
 * ("0.124" -> "0.123", "0.100" -> "0.099"); false when it would go below zero. */
static bool decimal_decrement(char *text)
{
    for (size_t i = strlen(text); i-- > 0;) {
        if (text[i] == '.')
            continue;
        if (text[i] > '0') {
            text[i]--;
            return true;
        }
        text[i] = '9';
    }
    return false;
}

double cxr_calibration_decimal_between(double low, double high, char *text, size_t size)
{
    char candidate[64];
    for (int decimals = 1; decimals <= 20; decimals++) {
        snprintf(candidate, sizeof candidate, "%.*f", decimals, high);
        double value = strtod(candidate, NULL);
        if (value > high) {
            if (!decimal_decrement(candidate))
                continue;
            value = strtod(candidate, NULL);
        }
        if (value > low && value <= high) {
            /* Trailing zeros add nothing: "0.250" -> "0.25". */
            size_t length = strlen(candidate);
            while (length > 2 && candidate[length - 1] == '0' && candidate[length - 2] != '.')
                candidate[--length] = '\0';
            snprintf(text, size, "%s", candidate);
            return value;
        }
    }
    snprintf(text, size, "%.17g", high); /* round-trips exactly */
    return strtod(text, NULL);
}

static enum cxr_status check_input(const struct cxr_calibration_study *studies, size_t count,
                                   const struct cxr_calibration_options *options, size_t *positives,
                                   size_t *negatives, struct cxr_err *err)
{
    if (!(options->target_sensitivity > 0.0 && options->target_sensitivity <= 1.0))
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "calibrate: target sensitivity %g is not in (0, 1]",
                           options->target_sensitivity);
    if (options->replicates < 100 || options->replicates > 100000)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "calibrate: %u bootstrap replicates (100 to 100000)",
                           options->replicates);
    *positives = *negatives = 0;
    for (size_t i = 0; i < count; i++) {
        if (studies[i].label != 0 && studies[i].label != 1)
            return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                               "calibrate: study %zu has label %d (labels are 0 or 1)", i + 1,
                               studies[i].label);
        if (!(studies[i].score >= 0.0 && studies[i].score <= 1.0))
            return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                               "calibrate: study %zu has score %g (not in [0, 1])", i + 1,
                               studies[i].score);
        *positives += studies[i].label == 1;
        *negatives += studies[i].label == 0;
    }
    size_t minimum = CXR_CALIBRATION_MIN_CLASS;
    if (*positives < minimum || *negatives < minimum) {
        char more[128];
        if (*positives < minimum && *negatives < minimum)
            snprintf(more, sizeof more, "%zu more positives and %zu more negatives",
                     minimum - *positives, minimum - *negatives);
        else
            snprintf(more, sizeof more, "%zu more %s",
                     *positives < minimum ? minimum - *positives : minimum - *negatives,
                     *positives < minimum ? "positives" : "negatives");
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "calibrate: %zu positives and %zu negatives: at least %zu of each are "
                           "needed, or the confidence intervals would be meaningless (%s "
                           "needed; 100 or more studies are recommended)",
                           *positives, *negatives, minimum, more);
    }
    return CXR_OK;
}

static void table_release(struct table *table)
{
    free(table->distinct);
    free(table->distinct_of);
    free(table->positive);
    free(table->negative);
    free(table->above_positive);
    free(table->above_negative);
}

static enum cxr_status table_build(const struct cxr_calibration_study *sorted, size_t count,
                                   struct table *table, struct cxr_err *err)
{
    memset(table, 0, sizeof *table);
    table->count = count;
    table->distinct = malloc(count * sizeof *table->distinct);
    table->distinct_of = malloc(count * sizeof *table->distinct_of);
    table->positive = calloc(count, sizeof *table->positive);
    table->negative = calloc(count, sizeof *table->negative);
    table->above_positive = malloc((count + 1) * sizeof *table->above_positive);
    table->above_negative = malloc((count + 1) * sizeof *table->above_negative);
    if (!table->distinct || !table->distinct_of || !table->positive || !table->negative ||
        !table->above_positive || !table->above_negative) {
        table_release(table);
        return cxr_err_set(err, CXR_ERR_NOMEM, "calibrate: out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        if (i == 0 || sorted[i].score != sorted[i - 1].score)
            table->distinct[table->distinct_count++] = sorted[i].score;
        table->distinct_of[i] = table->distinct_count - 1;
    }
    for (size_t i = 0; i < count; i++) {
        if (sorted[i].label)
            table->positive[table->distinct_of[i]] += 1;
        else
            table->negative[table->distinct_of[i]] += 1;
    }
    suffix_sums(table);
    return CXR_OK;
}

enum cxr_status cxr_model_calibrate(const struct cxr_calibration_study *studies, size_t count,
                                    const struct cxr_calibration_options *options,
                                    struct cxr_calibration **out, struct cxr_err *err)
{
    if (studies == NULL || options == NULL || out == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "calibrate: missing argument");
    size_t positives = 0, negatives = 0;
    enum cxr_status status = check_input(studies, count, options, &positives, &negatives, err);
    if (status != CXR_OK)
        return status;
    struct cxr_calibration *calibration = calloc(1, sizeof *calibration);
    struct cxr_calibration_study *sorted = malloc(count * sizeof *sorted);
    if (calibration == NULL || sorted == NULL) {
        free(calibration);
        free(sorted);
        return cxr_err_set(err, CXR_ERR_NOMEM, "calibrate: out of memory");
    }
    memcpy(sorted, studies, count * sizeof *sorted);
    qsort(sorted, count, sizeof *sorted, compare_studies);
    calibration->studies = sorted;
    calibration->study_count = count;
    calibration->positives = positives;
    calibration->negatives = negatives;
    calibration->options = *options;

    struct table table;
    status = table_build(sorted, count, &table, err);
    if (status != CXR_OK) {
        cxr_calibration_destroy(calibration);
        return status;
    }
    calibration->point_count = table.distinct_count;
    calibration->points = calloc(table.distinct_count, sizeof *calibration->points);
    size_t evaluated = table.distinct_count + CXR_CALIBRATION_ROUND_COUNT + 1;
    struct cxr_calibration_point **all = malloc(evaluated * sizeof *all);
    if (calibration->points == NULL || all == NULL) {
        free(all);
        table_release(&table);
        cxr_calibration_destroy(calibration);
        return cxr_err_set(err, CXR_ERR_NOMEM, "calibrate: out of memory");
    }
    size_t n = 0;
    for (size_t d = 0; d < table.distinct_count; d++) {
        point_fill(&table, table.distinct[d], &calibration->points[d]);
        all[n++] = &calibration->points[d];
    }
    for (size_t r = 0; r < CXR_CALIBRATION_ROUND_COUNT; r++) {
        point_fill(&table, cxr_calibration_round_thresholds[r], &calibration->round_points[r]);
        all[n++] = &calibration->round_points[r];
    }
    point_fill(&table, options->model_threshold, &calibration->model_point);
    all[n++] = &calibration->model_point;
    calibration->auc.value = auc_from_counts(table.positive, table.negative, table.distinct_count);

    /* Sensitivity falls as the threshold rises and specificity grows: the highest threshold
     * that still meets the target has the highest specificity among those that do. The lowest
     * distinct score calls every study positive (sensitivity 1), so one always qualifies. */
    size_t chosen = 0;
    for (size_t d = 0; d < table.distinct_count; d++) {
        if (calibration->points[d].sensitivity.value >= options->target_sensitivity)
            chosen = d;
    }
    /* Several thresholds may share that specificity: when only positives score between them, a
     * lower one finds more cases for the same false positives, so it is the better point (the
     * top of the ROC curve's vertical step, not its foot). */
    while (chosen > 0 && calibration->points[chosen - 1].false_positives ==
                                 calibration->points[chosen].false_positives)
        chosen--;
    calibration->chosen = chosen;
    double below = chosen > 0 ? table.distinct[chosen - 1] : -1.0;
    calibration->chosen_threshold =
            cxr_calibration_decimal_between(below, table.distinct[chosen], calibration->chosen_text,
                                            sizeof calibration->chosen_text);

    status = bootstrap(&table, sorted, all, n, calibration, err);
    free(all);
    table_release(&table);
    if (status != CXR_OK) {
        cxr_calibration_destroy(calibration);
        return status;
    }
    *out = calibration;
    return CXR_OK;
}

void cxr_calibration_destroy(struct cxr_calibration *calibration)
{
    if (calibration == NULL)
        return;
    free(calibration->points);
    free(calibration->studies);
    free(calibration);
}
