/* Site thresholds: the [thresholds] section a site writes (usually pasted from `cxrd
 * calibrate`), and the threshold guard: thresholds chosen for one model version never silently
 * carry over to another, whose scores mean something else. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

static bool digits(const char *text, int count)
{
    for (int i = 0; i < count; i++) {
        if (!isdigit((unsigned char)text[i]))
            return false;
    }
    return true;
}

static int two_digits(const char *text)
{
    return (text[0] - '0') * 10 + (text[1] - '0');
}

/* "YYYY-MM-DD" or "YYYY-MM-DD HH:MM" with a plausible month, day, hour and minute. The time is
 * what cxrd calibrate writes, so that two calibrations of one day name different thresholds. */
static bool calibration_time_valid(const char *text)
{
    size_t length = strlen(text);
    if (length != 10 && length != 16)
        return false;
    if (!digits(text, 4) || text[4] != '-' || !digits(text + 5, 2) || text[7] != '-' ||
        !digits(text + 8, 2))
        return false;
    int month = two_digits(text + 5), day = two_digits(text + 8);
    if (month < 1 || month > 12 || day < 1 || day > 31)
        return false;
    if (length == 10)
        return true;
    return text[10] == ' ' && digits(text + 11, 2) && text[13] == ':' && digits(text + 14, 2) &&
           two_digits(text + 11) <= 23 && two_digits(text + 14) <= 59;
}

static bool version_valid(const char *text)
{
    size_t length = strlen(text);
    if (length == 0 || length >= CXR_SITE_VERSION_SIZE)
        return false;
    for (size_t i = 0; i < length; i++) {
        if (text[i] < 0x20 || text[i] > 0x7e)
            return false;
    }
    return true;
}

enum cxr_status cxr_model_thresholds_parse_key(struct cxr_site_thresholds *site, const char *key,
                                               const char *value, struct cxr_err *err)
{
    site->present = true;
    if (strcmp(key, "model_version") == 0) {
        if (!version_valid(value))
            return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                               "config [thresholds] model_version: '%s' is not a model version "
                               "(printable ASCII, 1 to %d bytes)",
                               value, CXR_SITE_VERSION_SIZE - 1);
        snprintf(site->model_version, sizeof site->model_version, "%s", value);
        return CXR_OK;
    }
    if (strcmp(key, "calibrated") == 0) {
        if (!calibration_time_valid(value))
            return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                               "config [thresholds] calibrated: '%s' is not a date YYYY-MM-DD or "
                               "a date and time YYYY-MM-DD HH:MM",
                               value);
        snprintf(site->calibrated, sizeof site->calibrated, "%s", value);
        return CXR_OK;
    }
    if (strcmp(key, "allow_model_change") == 0) {
        int flag = 0;
        if (cxr_parse_bool(value, &flag) != CXR_OK)
            return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                               "config [thresholds] allow_model_change: '%s' is not true or false",
                               value);
        site->allow_model_change = flag != 0;
        return CXR_OK;
    }
    int finding = cxr_model_finding_index(key);
    if (finding < 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "config [thresholds] %s: unknown key (model_version, calibrated, "
                           "allow_model_change, or a finding spelled as in the API, e.g. "
                           "Tuberculosis, Pleural Effusion)",
                           key);
    char *end = NULL;
    errno = 0;
    double threshold = strtod(value, &end);
    if (value[0] == '\0' || end == NULL || *end != '\0' || errno != 0 || !isfinite(threshold) ||
        threshold < 0.0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "config [thresholds] %s: '%s' is not a threshold (a number >= 0; "
                           "above 1 switches the finding off)",
                           key, value);
    site->set[finding] = true;
    site->value[finding] = threshold;
    return CXR_OK;
}

static bool any_finding(const struct cxr_site_thresholds *site)
{
    for (int i = 0; i < CXR_FINDING_COUNT; i++) {
        if (site->set[i])
            return true;
    }
    return false;
}

enum cxr_status cxr_model_thresholds_check(const struct cxr_site_thresholds *site,
                                           struct cxr_err *err)
{
    if (site->present && site->model_version[0] == '\0')
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "config [thresholds]: model_version is missing: site thresholds hold "
                           "for the model version they were chosen for (cxrd calibrate writes "
                           "it)");
    return CXR_OK;
}

enum cxr_status cxr_model_thresholds_apply(struct cxr_model *model,
                                           const struct cxr_site_thresholds *site,
                                           char *description, size_t size, struct cxr_err *err)
{
    if (site == NULL || !site->present || !any_finding(site)) {
        if (site && site->present && strcmp(site->model_version, cxr_model_version(model)) != 0 &&
            !site->allow_model_change)
            goto refuse;
        snprintf(description, size, "model's own");
        return CXR_OK;
    }
    enum cxr_status status = cxr_model_thresholds_check(site, err);
    if (status != CXR_OK)
        return status;
    const char *loaded = cxr_model_version(model);
    bool changed = strcmp(site->model_version, loaded) != 0;
    if (changed && !site->allow_model_change)
        goto refuse;
    for (int i = 0; i < CXR_FINDING_COUNT && status == CXR_OK; i++) {
        if (site->set[i])
            status =
                    cxr_model_threshold_set(model, cxr_model_finding_names[i], site->value[i], err);
    }
    if (status != CXR_OK)
        return status;
    int used = site->calibrated[0]
                       ? snprintf(description, size, "site calibration of %s", site->calibrated)
                       : snprintf(description, size, "site thresholds (no calibration date)");
    if (changed && used >= 0 && (size_t)used < size)
        snprintf(description + used, size - (size_t)used, ", made for model %s",
                 site->model_version);
    if (changed)
        cxr_log(CXR_LOG_WARN,
                "thresholds: [thresholds] allow_model_change = true: using the thresholds "
                "calibrated for model version %s with model version %s; re-run cxrd calibrate "
                "with this model and replace the section",
                site->model_version, loaded);
    return CXR_OK;

refuse:
    return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                       "config [thresholds] was calibrated for model version %s, but the model "
                       "loaded is version %s: its scores differ, so the site's thresholds no "
                       "longer mean what they did. Re-run `cxrd calibrate` with this model on "
                       "the site's labelled studies and replace the [thresholds] section (or, "
                       "knowingly, set allow_model_change = true in it)",
                       site->model_version, cxr_model_version(model));
}
