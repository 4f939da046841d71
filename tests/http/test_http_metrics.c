/* Prometheus text: counters by route and status, cumulative histogram buckets, gauges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/http.h"

static void exposition_format(void **state)
{
    (void)state;
    struct cxr_metrics *metrics = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_http_metrics_create(&metrics, &err), CXR_OK);
    cxr_http_metrics_request(metrics, "single_inference", 200, 0.2);
    cxr_http_metrics_request(metrics, "single_inference", 200, 0.03);
    cxr_http_metrics_request(metrics, "single_inference", 400, 0.001);
    cxr_http_metrics_request(metrics, "ping", 200, 0.0001);
    double stages[CXR_STAGE_COUNT] = {0};
    stages[CXR_STAGE_INFER] = 0.07;
    stages[CXR_STAGE_PDF] = 0.02;
    cxr_http_metrics_stages(metrics, stages);
    struct cxr_buf out = CXR_BUF_INIT(0);
    assert_int_equal(cxr_http_metrics_render(metrics, 3, 2, 5, &out), CXR_OK);
    assert_int_equal(cxr_buf_append(&out, "", 1), CXR_OK);
    const char *text = (const char *)out.data;
    const char *expected[] = {
            "# TYPE cxrd_requests_total counter\n",
            "cxrd_requests_total{route=\"single_inference\",status=\"200\"} 2\n",
            "cxrd_requests_total{route=\"single_inference\",status=\"400\"} 1\n",
            "cxrd_requests_total{route=\"ping\",status=\"200\"} 1\n",
            "# TYPE cxrd_request_duration_seconds histogram\n",
            /* cumulative: 0.001 <= 0.005; 0.03 <= 0.05; 0.2 <= 0.25 */
            "cxrd_request_duration_seconds_bucket{route=\"single_inference\",le=\"0.005\"} 1\n",
            "cxrd_request_duration_seconds_bucket{route=\"single_inference\",le=\"0.05\"} 2\n",
            "cxrd_request_duration_seconds_bucket{route=\"single_inference\",le=\"0.1\"} 2\n",
            "cxrd_request_duration_seconds_bucket{route=\"single_inference\",le=\"0.25\"} 3\n",
            "cxrd_request_duration_seconds_bucket{route=\"single_inference\",le=\"+Inf\"} 3\n",
            "cxrd_request_duration_seconds_count{route=\"single_inference\"} 3\n",
            "cxrd_stage_duration_seconds_bucket{stage=\"infer\",le=\"0.05\"} 0\n",
            "cxrd_stage_duration_seconds_bucket{stage=\"infer\",le=\"0.1\"} 1\n",
            "cxrd_stage_duration_seconds_count{stage=\"pdf\"} 1\n",
            "cxrd_stage_duration_seconds_count{stage=\"render\"} 0\n",
            "cxrd_queue_depth 3\n",
            "cxrd_inference_running 2\n",
            "cxrd_requests_in_flight 5\n",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        if (strstr(text, expected[i]) == NULL)
            fail_msg("missing line: %s\nin:\n%s", expected[i], text);
    }
    cxr_buf_release(&out);
    cxr_http_metrics_destroy(metrics);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(exposition_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
