/* Text for the report: Person Names with all component groups (table of cases, including the
 * pydicom charset corpus's Japanese, Korean and Chinese names as the DICOM reader decodes
 * them), DA and TM display, the report time in a time zone with its offset (checked against
 * the C library's own zone handling through TZ, in a child process so this one keeps its
 * environment), and the config's [report] timezone key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api.h"
#include "report/report.h"

static void person_names(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *shown;
    } cases[] = {
            {"Yamada^Tarou=山田^太郎=やまだ^たろう", "Yamada Tarou (山田 太郎, やまだ たろう)"},
            {"Hong^Gildong=洪^吉洞=홍^길동", "Hong Gildong (洪 吉洞, 홍 길동)"},
            {"Wang^XiaoDong=王^小東=", "Wang XiaoDong (王 小東)"},
            {"=山田^太郎", "山田 太郎"}, /* no alphabetic group: the first with content leads */
            {"==やまだ^たろう", "やまだ たろう"},
            {"Yamada^Tarou==やまだ^たろう", "Yamada Tarou (やまだ たろう)"},
            {"قباني^لنزار", "قباني لنزار"},
            {"Doe^John^Q^Dr^Jr", "Dr Doe John Q Jr"},
            {"Doe^John\\Roe^Jane", "Doe John"}, /* first value only */
            {" Doe ^ John ", "Doe John"},
            {"^^^^", ""},
            {"", ""},
            {"a=b=c=d", "a (b, c=d)"}, /* a fourth group is not allowed; kept, not lost */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *shown = cxr_report_person_name_format(cases[i].raw);
        assert_non_null(shown);
        assert_string_equal(shown, cases[i].shown);
        free(shown);
    }
    char *empty = cxr_report_person_name_format(NULL);
    assert_string_equal(empty, "");
    free(empty);
}

static void dates_and_times(void **state)
{
    (void)state;
    char out[64];
    cxr_report_date_format("20261127", out, sizeof out);
    assert_string_equal(out, "2026-11-27");
    cxr_report_date_format("2026.11.27", out, sizeof out); /* old form: as stored */
    assert_string_equal(out, "2026.11.27");
    cxr_report_date_format(NULL, out, sizeof out);
    assert_string_equal(out, "");
    cxr_report_time_format("081500.25", out, sizeof out);
    assert_string_equal(out, "08:15:00");
    cxr_report_time_format("0815", out, sizeof out);
    assert_string_equal(out, "08:15:00");
    cxr_report_time_format("08", out, sizeof out);
    assert_string_equal(out, "08:00:00");
    cxr_report_time_format("08:15:00", out, sizeof out); /* old form: as stored */
    assert_string_equal(out, "08:15:00");
    cxr_report_time_format("081", out, sizeof out);
    assert_string_equal(out, "081");
}

/* A confidence that rounds to its threshold's text gets decimals until the two differ. */
static void percent_pairs(void **state)
{
    (void)state;
    static const struct {
        double confidence, threshold;
        const char *confidence_text, *threshold_text;
    } cases[] = {
            {0.87, 0.5, "87.0 %", "50.0 %"},
            {0.1706, 0.171, "17.06 %", "17.10 %"},  /* below: "17.1 %" twice beside "No" */
            {0.29996, 0.3, "29.996 %", "30.000 %"}, /* rounds up to the threshold */
            {0.300004, 0.3, "30.0004 %", "30.0000 %"},
            {0.3, 0.3, "30.0 %", "30.0 %"}, /* equal: present, and printed alike */
            {0.0, 1.01, "0.0 %", "101.0 %"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char confidence[32], threshold[32];
        cxr_report_percent_pair(cases[i].confidence, cases[i].threshold, confidence, threshold);
        assert_string_equal(confidence, cases[i].confidence_text);
        assert_string_equal(threshold, cases[i].threshold_text);
    }
}

/* The C library's local time for t in zone, as "%Y-%m-%d %H:%M:%S UTC%z" with the offset's
 * colon added, computed in a child process (setenv is not for a threaded test runner). */
static void libc_time(int64_t t, const char *zone, char *out, size_t size)
{
    char command[256];
    snprintf(command, sizeof command, "TZ=%s date -d @%lld '+%%Y-%%m-%%d %%H:%%M:%%S UTC%%:z'",
             zone, (long long)t);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    assert_non_null(fgets(out, (int)size, pipe));
    out[strcspn(out, "\n")] = '\0';
    assert_int_equal(pclose(pipe), 0);
}

static void report_time_in_zone(void **state)
{
    (void)state;
    static const struct {
        int64_t time;
        const char *zone, *expected;
    } cases[] = {
            {1795767300, "Asia/Tokyo", "2026-11-27 17:15:00 UTC+09:00 (Asia/Tokyo)"},
            {1795767300, "Europe/Paris", "2026-11-27 09:15:00 UTC+01:00 (Europe/Paris)"},
            {1784272500, "Europe/Paris", "2026-07-17 09:15:00 UTC+02:00 (Europe/Paris)"}, /* DST */
            {1795767300, "America/St_Johns", "2026-11-27 04:45:00 UTC-03:30 (America/St_Johns)"},
            {1795767300, "UTC", "2026-11-27 08:15:00 UTC+00:00 (UTC)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[160], reference[96];
        assert_int_equal(
                cxr_report_timestamp_format(cases[i].time, cases[i].zone, out, sizeof out, NULL),
                CXR_OK);
        assert_string_equal(out, cases[i].expected);
        libc_time(cases[i].time, cases[i].zone, reference, sizeof reference);
        assert_memory_equal(out, reference, strlen(reference)); /* the same wall time, offset */
    }
    /* The machine's zone when none is configured: the offset is present either way. */
    char out[160];
    assert_int_equal(cxr_report_timestamp_format(1795767300, "", out, sizeof out, NULL), CXR_OK);
    assert_non_null(strstr(out, " UTC+") ? strstr(out, " UTC+") : strstr(out, " UTC-"));
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_report_timestamp_format(0, "Not/AZone", out, sizeof out, &err),
                     CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_report_timezone_check("Not/AZone", NULL), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_report_timezone_check("Europe/Paris", NULL), CXR_OK);
    assert_int_equal(cxr_report_timezone_check(NULL, NULL), CXR_OK);
}

static void config_timezone(void **state)
{
    (void)state;
    char folder[] = "/tmp/cxr_report_text_XXXXXX";
    assert_non_null(mkdtemp(folder));
    char path[256];
    snprintf(path, sizeof path, "%s/cxrd.ini", folder);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs("[report]\ntimezone = Europe/Paris\n", file);
    fclose(file);
    struct cxr_config config;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_config_load(path, &config, &err), CXR_OK);
    assert_string_equal(config.report_timezone, "Europe/Paris");
    cxr_config_release(&config);
    assert_int_equal(cxr_config_load(NULL, &config, &err), CXR_OK);
    assert_string_equal(config.report_timezone, ""); /* default: the machine's zone */
    cxr_config_release(&config);

    file = fopen(path, "w");
    assert_non_null(file);
    fputs("[report]\ntimezone = Europe/Pariss\n", file);
    fclose(file);
    assert_int_equal(cxr_config_load(path, &config, &err), CXR_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "[report] timezone: 'Europe/Pariss'"));
    unlink(path);
    rmdir(folder);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(person_names),    cmocka_unit_test(dates_and_times),
            cmocka_unit_test(percent_pairs),   cmocka_unit_test(report_time_in_zone),
            cmocka_unit_test(config_timezone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
