/* Text for the report from DICOM values: Person Names with every component group, dates and
 * times in a readable form, and the report time in the site's time zone with its UTC offset
 * (GLib's time zone database: no process-wide TZ variable, so threads need no lock). */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

/* Appends one component group ("Family^Given^Middle^Prefix^Suffix") as "Prefix Family Given
 * Middle Suffix": the family name stays first, as stored, so a name reads the same way in
 * every group (Japanese, Chinese and Korean names are family-first in all of them), and the
 * display never reorders what the modality wrote. Returns the bytes appended. */
static size_t append_group(const char *group, size_t length, char *out)
{
    const char *start[5] = {0};
    size_t size[5] = {0};
    size_t count = 0;
    const char *cursor = group, *end = group + length;
    while (count < 5) {
        const char *caret = memchr(cursor, '^', (size_t)(end - cursor));
        const char *stop = caret && count < 4 ? caret : end; /* extra carets stay in the last */
        while (cursor < stop && *cursor == ' ')
            cursor++;
        const char *trimmed = stop;
        while (trimmed > cursor && trimmed[-1] == ' ')
            trimmed--;
        start[count] = cursor;
        size[count] = (size_t)(trimmed - cursor);
        count++;
        if (stop == end)
            break;
        cursor = stop + 1;
    }
    static const int order[5] = {3, 0, 1, 2, 4};
    size_t used = 0;
    for (int i = 0; i < 5; i++) {
        int c = order[i];
        if (size[c] == 0)
            continue;
        if (used > 0)
            out[used++] = ' ';
        memcpy(out + used, start[c], size[c]);
        used += size[c];
    }
    return used;
}

char *cxr_report_person_name_format(const char *raw)
{
    if (raw == NULL)
        raw = "";
    size_t value_length = strcspn(raw, "\\"); /* the first value, should there be several */
    /* Groups only shrink (carets become spaces, padding goes); " (", ", " and ")" are added. */
    char *out = malloc(value_length + 8);
    char *group_text = malloc(value_length + 1);
    if (out == NULL || group_text == NULL) {
        free(out);
        free(group_text);
        return NULL;
    }
    size_t used = 0;
    int shown = 0;
    const char *cursor = raw, *end = raw + value_length;
    for (int group = 0; group < 3; group++) {
        const char *equals = memchr(cursor, '=', (size_t)(end - cursor));
        const char *stop = equals && group < 2 ? equals : end;
        size_t length = append_group(cursor, (size_t)(stop - cursor), group_text);
        if (length > 0) {
            /* "Main (second, third)": the first group with content leads. */
            const char *lead = shown == 0 ? "" : shown == 1 ? " (" : ", ";
            memcpy(out + used, lead, strlen(lead));
            used += strlen(lead);
            memcpy(out + used, group_text, length);
            used += length;
            shown++;
        }
        if (stop == end)
            break;
        cursor = stop + 1;
    }
    if (shown > 1)
        out[used++] = ')';
    out[used] = '\0';
    free(group_text);
    return out;
}

void cxr_report_date_format(const char *date, char *out, size_t size)
{
    /* DA is YYYYMMDD; anything else (old "YYYY.MM.DD", partial values) is shown as stored. */
    if (date && strlen(date) == 8 && strspn(date, "0123456789") == 8)
        snprintf(out, size, "%.4s-%.2s-%.2s", date, date + 4, date + 6);
    else
        snprintf(out, size, "%s", date ? date : "");
}

void cxr_report_time_format(const char *time, char *out, size_t size)
{
    /* TM is HH, HHMM or HHMMSS with an optional fraction; shown to the second. */
    size_t digits = time ? strspn(time, "0123456789") : 0;
    if (time && (digits == 2 || digits == 4 || digits == 6) &&
        (time[digits] == '\0' || time[digits] == '.')) {
        snprintf(out, size, "%.2s:%.2s:%.2s", time, digits >= 4 ? time + 2 : "00",
                 digits >= 6 ? time + 4 : "00");
    } else {
        snprintf(out, size, "%s", time ? time : "");
    }
}

void cxr_report_percent_pair(double confidence, double threshold, char confidence_out[32],
                             char threshold_out[32])
{
    /* Presence is confidence >= threshold; a confidence just under its threshold rounded to
     * the same text would read as present beside "No" (or absent beside "Yes"). */
    for (int decimals = 1; decimals <= 4; decimals++) {
        snprintf(confidence_out, 32, "%.*f %%", decimals, confidence * 100.0);
        snprintf(threshold_out, 32, "%.*f %%", decimals, threshold * 100.0);
        if (confidence == threshold || strcmp(confidence_out, threshold_out) != 0)
            break;
    }
}

/* The zone to report in: the named one, or the machine's. NULL for a name GLib does not know. */
static GTimeZone *zone_open(const char *timezone)
{
    if (timezone == NULL || timezone[0] == '\0')
        return g_time_zone_new_local();
    return g_time_zone_new_identifier(timezone);
}

enum cxr_status cxr_report_timezone_check(const char *timezone, struct cxr_err *err)
{
    GTimeZone *zone = zone_open(timezone);
    if (zone == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "[report] timezone: unknown time zone \"%s\" (an IANA name such as "
                           "Europe/Paris, or empty for the machine's)",
                           timezone);
    g_time_zone_unref(zone);
    return CXR_OK;
}

enum cxr_status cxr_report_timestamp_format(int64_t unix_seconds, const char *timezone, char *out,
                                            size_t size, struct cxr_err *err)
{
    GTimeZone *zone = zone_open(timezone);
    if (zone == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "report: unknown time zone \"%s\"", timezone);
    GDateTime *utc = g_date_time_new_from_unix_utc(unix_seconds);
    GDateTime *local = utc ? g_date_time_to_timezone(utc, zone) : NULL;
    gchar *text = local ? g_date_time_format(local, "%Y-%m-%d %H:%M:%S UTC%:z") : NULL;
    const char *name = timezone && timezone[0] ? timezone : g_time_zone_get_identifier(zone);
    enum cxr_status status = CXR_OK;
    if (text == NULL)
        status = cxr_err_set(err, CXR_ERR_INVALID_ARG, "report: time %lld cannot be shown",
                             (long long)unix_seconds);
    else if (name && name[0] && name[0] != ':' && name[0] != '/')
        snprintf(out, size, "%s (%s)", text, name);
    else
        snprintf(out, size, "%s", text);
    g_free(text);
    if (local)
        g_date_time_unref(local);
    if (utc)
        g_date_time_unref(utc);
    g_time_zone_unref(zone);
    return status;
}
