/* Site calibration maths against a direct count: every distinct threshold's confusion counts
 * and measures recomputed here by brute force, the AUC from all (positive, negative) pairs,
 * the chosen point, the decimal written to the config, refusals, determinism. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"

/* 26 positives and 23 negatives with ties inside and across the classes. */
static size_t make_studies(struct cxr_calibration_study *studies)
{
    size_t n = 0;
    for (int i = 0; i < 26; i++)
        studies[n++] = (struct cxr_calibration_study){0.30 + 0.025 * (i % 20), 1};
    for (int i = 0; i < 23; i++)
        studies[n++] = (struct cxr_calibration_study){0.05 + 0.025 * (i % 17), 0};
    studies[n++] = (struct cxr_calibration_study){0.0, 1}; /* a missed case at the bottom */
    return n;
}

static void near(double expected, double actual)
{
    if (isnan(expected) && isnan(actual))
        return;
    if (!(fabs(expected - actual) <= 1e-12))
        fail_msg("expected %.17g, got %.17g", expected, actual);
}

static void table_matches_direct_count(void **state)
{
    (void)state;
    struct cxr_calibration_study studies[64];
    size_t n = make_studies(studies);
    struct cxr_calibration_options options = {0.9, 0.5, 7, 500};
    struct cxr_calibration *calibration = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_model_calibrate(studies, n, &options, &calibration, &err), CXR_OK);
    assert_int_equal(calibration->positives, 27);
    assert_int_equal(calibration->negatives, 23);

    /* Distinct scores, ascending, each with the counts of presence = score >= threshold. */
    size_t distinct = 0;
    for (size_t p = 0; p < calibration->point_count; p++) {
        const struct cxr_calibration_point *point = &calibration->points[p];
        if (p > 0)
            assert_true(point->threshold > calibration->points[p - 1].threshold);
        double tp = 0, fp = 0, tn = 0, fn = 0;
        for (size_t i = 0; i < n; i++) {
            bool called = studies[i].score >= point->threshold;
            tp += called && studies[i].label;
            fp += called && !studies[i].label;
            fn += !called && studies[i].label;
            tn += !called && !studies[i].label;
        }
        assert_int_equal(point->true_positives, (size_t)tp);
        assert_int_equal(point->false_positives, (size_t)fp);
        assert_int_equal(point->true_negatives, (size_t)tn);
        assert_int_equal(point->false_negatives, (size_t)fn);
        near(tp / (tp + fn), point->sensitivity.value);
        near(tn / (tn + fp), point->specificity.value);
        near(tp + fp > 0 ? tp / (tp + fp) : NAN, point->ppv.value);
        near(tn + fn > 0 ? tn / (tn + fn) : NAN, point->npv.value);
        near((tp + fp) / (double)n, point->tested_share.value);
        near(tp > 0 ? (tp + fp) / tp : NAN, point->tests_per_case.value);
        assert_true(point->sensitivity.low <= point->sensitivity.high);
        distinct++;
    }
    for (size_t i = 0; i < n; i++) { /* every score is a point */
        bool found = false;
        for (size_t p = 0; p < calibration->point_count; p++)
            found |= calibration->points[p].threshold == studies[i].score;
        assert_true(found);
    }

    /* AUC: every (positive, negative) pair, ties one half. */
    double pairs = 0, correct = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            if (studies[i].label == 1 && studies[j].label == 0) {
                pairs++;
                correct += studies[i].score > studies[j].score    ? 1.0
                           : studies[i].score == studies[j].score ? 0.5
                                                                  : 0.0;
            }
        }
    }
    near(correct / pairs, calibration->auc.value);
    assert_true(calibration->auc.low <= calibration->auc.value);
    assert_true(calibration->auc.high >= calibration->auc.value);

    /* The chosen point meets the target; no other that does has a higher specificity, or the
     * same specificity with a higher sensitivity. */
    const struct cxr_calibration_point *chosen = &calibration->points[calibration->chosen];
    assert_true(chosen->sensitivity.value >= 0.9);
    for (size_t p = 0; p < calibration->point_count; p++) {
        const struct cxr_calibration_point *other = &calibration->points[p];
        if (other->sensitivity.value < 0.9)
            continue;
        assert_true(other->specificity.value <= chosen->specificity.value);
        if (other->specificity.value == chosen->specificity.value)
            assert_true(other->sensitivity.value <= chosen->sensitivity.value);
    }
    /* The configured decimal calls exactly the same studies positive. */
    assert_true(calibration->chosen_threshold <= chosen->threshold);
    assert_true(calibration->chosen_threshold >
                calibration->points[calibration->chosen - 1].threshold);
    assert_true(strtod(calibration->chosen_text, NULL) == calibration->chosen_threshold);

    /* The model's own point and the round points are computed the same way. */
    double tp = 0;
    for (size_t i = 0; i < n; i++)
        tp += studies[i].label && studies[i].score >= 0.5;
    assert_int_equal(calibration->model_point.true_positives, (size_t)tp);
    near(0.5, calibration->round_points[11].threshold);
    assert_int_equal(calibration->round_points[11].true_positives, (size_t)tp);

    /* Same seed, same intervals; another seed, other intervals. */
    struct cxr_calibration *again = NULL;
    assert_int_equal(cxr_model_calibrate(studies, n, &options, &again, &err), CXR_OK);
    assert_true(again->auc.low == calibration->auc.low);
    assert_true(again->points[3].specificity.high == calibration->points[3].specificity.high);
    cxr_calibration_destroy(again);
    options.seed = 8;
    assert_int_equal(cxr_model_calibrate(studies, n, &options, &again, &err), CXR_OK);
    assert_true(again->auc.low != calibration->auc.low || again->auc.high != calibration->auc.high);
    cxr_calibration_destroy(again);
    cxr_calibration_destroy(calibration);
    cxr_calibration_destroy(NULL);
}

static void refusals_say_how_many(void **state)
{
    (void)state;
    struct cxr_calibration_study studies[64];
    size_t n = 0;
    for (int i = 0; i < 19; i++)
        studies[n++] = (struct cxr_calibration_study){0.5 + 0.01 * i, 1};
    for (int i = 0; i < 25; i++)
        studies[n++] = (struct cxr_calibration_study){0.01 * i, 0};
    struct cxr_calibration_options options = {0.9, 0.5, 1, 200};
    struct cxr_calibration *calibration = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_model_calibrate(studies, n, &options, &calibration, &err),
                     CXR_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "19 positives and 25 negatives"));
    assert_non_null(strstr(err.message, "1 more positives"));
    assert_null(calibration);

    studies[0].label = 2;
    err = (struct cxr_err)CXR_ERR_INIT;
    assert_int_equal(cxr_model_calibrate(studies, n, &options, &calibration, &err),
                     CXR_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "label 2"));
    studies[0].label = 1;
    studies[1].score = 1.5;
    err = (struct cxr_err)CXR_ERR_INIT;
    assert_int_equal(cxr_model_calibrate(studies, n, &options, &calibration, &err),
                     CXR_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "score 1.5"));
}

static struct cxr_calibration *calibrate(const struct cxr_calibration_study *studies, size_t n,
                                         double target)
{
    struct cxr_calibration_options options = {target, 0.5, 1, 200};
    struct cxr_calibration *calibration = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_model_calibrate(studies, n, &options, &calibration, &err) != CXR_OK)
        fail_msg("%s", err.message);
    return calibration;
}

/* Where only positives score between two thresholds, both have one specificity and the lower
 * finds more cases: it is chosen (it used to be the higher, a dominated point). */
static void chosen_point_finds_most_cases(void **state)
{
    (void)state;
    struct cxr_calibration_study studies[64];
    size_t n = 0;
    for (int i = 0; i < 20; i++) /* perfect separation, exactly 20 of each class */
        studies[n++] = (struct cxr_calibration_study){0.01 * (i + 1), 0};
    for (int i = 0; i < 20; i++)
        studies[n++] = (struct cxr_calibration_study){0.30 + 0.01 * i, 1};
    static const double targets[] = {0.5, 0.9, 0.95, 1.0};
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        struct cxr_calibration *calibration = calibrate(studies, n, targets[t]);
        const struct cxr_calibration_point *chosen = &calibration->points[calibration->chosen];
        assert_string_equal(calibration->chosen_text, "0.3");
        near(1.0, chosen->sensitivity.value);
        near(1.0, chosen->specificity.value);
        /* 20 of 20: the exact interval's lower bound 0.025^(1/20), not the bootstrap's 1.0;
         * PPV 1 alike, so tests per case found reach 1 / that bound. */
        near(pow(0.025, 1.0 / 20), chosen->sensitivity.low);
        near(pow(0.025, 1.0 / 20), chosen->specificity.low);
        near(pow(0.025, 1.0 / 20), chosen->ppv.low);
        near(1.0, chosen->sensitivity.high);
        near(1.0 / pow(0.025, 1.0 / 20), chosen->tests_per_case.high);
        cxr_calibration_destroy(calibration);
    }
    /* All positives score the same, and two negatives with them: the tie is called positive. */
    n = 0;
    for (int i = 0; i < 20; i++)
        studies[n++] = (struct cxr_calibration_study){0.7, 1};
    for (int i = 0; i < 20; i++)
        studies[n++] = (struct cxr_calibration_study){i < 2 ? 0.7 : 0.03 * i, 0};
    struct cxr_calibration *calibration = calibrate(studies, n, 0.9);
    const struct cxr_calibration_point *chosen = &calibration->points[calibration->chosen];
    assert_string_equal(calibration->chosen_text, "0.7");
    assert_int_equal(chosen->true_positives, 20);
    assert_int_equal(chosen->false_positives, 2);
    near(18.0 / 20.0, chosen->specificity.value);
    near((20.0 * 18 + 0.5 * 20 * 2) / 400.0, calibration->auc.value);
    cxr_calibration_destroy(calibration);
}

static void shortest_decimal(void **state)
{
    (void)state;
    char text[40];
    static const struct {
        double low, high;
        const char *expected;
    } cases[] = {
            {0.1, 0.25, "0.2"},
            {0.24, 0.25, "0.25"},
            {0.2499, 0.25, "0.25"},
            {0.12345, 0.123456789, "0.123456"},
            {0.3, 0.30000001, "0.30000001"},
            {-1.0, 0.0, "0.0"},
            {0.999, 1.0, "1.0"},
            {0.14, 0.14624553918838501, "0.146"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double value =
                cxr_calibration_decimal_between(cases[i].low, cases[i].high, text, sizeof text);
        if (strcmp(text, cases[i].expected) != 0)
            fail_msg("(%g, %.17g]: '%s', expected '%s'", cases[i].low, cases[i].high, text,
                     cases[i].expected);
        assert_true(value > cases[i].low && value <= cases[i].high);
    }
    /* Neighbouring doubles: the exact value itself. */
    double high = 0.3, low = nextafter(high, 0);
    double value = cxr_calibration_decimal_between(low, high, text, sizeof text);
    assert_true(value == high);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(table_matches_direct_count),
            cmocka_unit_test(refusals_say_how_many),
            cmocka_unit_test(chosen_point_finds_most_cases),
            cmocka_unit_test(shortest_decimal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
