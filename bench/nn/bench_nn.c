/* bench_nn: times forward passes of one ONNX model on the cxrd runtime. Loads the model once,
 * runs warm-up passes, then times each of N passes and prints one line of key=value figures
 * (median and minimum ms, load time, peak RSS) that bench/nn/run.py parses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/nn.h"
#include "util/util.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A memory figure of this process from /proc/self/status ("VmHWM:" peak resident set,
 * "VmRSS:" now), in KiB; -1 when unavailable. VmHWM belongs to this program's address space,
 * unlike getrusage's ru_maxrss, which Linux carries across execve from the parent's. */
static long proc_status_kb(const char *key)
{
    FILE *status = fopen("/proc/self/status", "r");
    if (status == NULL)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), status) != NULL) {
        size_t length = strlen(key);
        if (strncmp(line, key, length) == 0) {
            kb = strtol(line + length, NULL, 10);
            break;
        }
    }
    fclose(status);
    return kb;
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: bench_nn MODEL.onnx [--threads N] [--runs N] [--warmup N]\n"
                 "Times forward passes of MODEL on a fixed pseudo-random input; threads 0 means\n"
                 "one per CPU. Prints times_ms=T1,T2,... (each pass) on one line, then\n"
                 "model threads runs load_ms median_ms min_ms max_ms peak_rss_kb\n"
                 "rss_after_runs_kb as key=value pairs on the next.\n");
}

static int parse_count(const char *text, long min, long max, long *value)
{
    char *end = NULL;
    long parsed = strtol(text, &end, 10);
    if (end == text || *end != '\0' || parsed < min || parsed > max)
        return -1;
    *value = parsed;
    return 0;
}

/* Element count of a tensor, or 0 when a dimension is not positive or the count overflows. */
static size_t tensor_elements(const struct cxr_nn_tensor_info *info)
{
    size_t count = 1;
    for (uint32_t d = 0; d < info->rank; d++) {
        if (info->dims[d] <= 0 || (size_t)info->dims[d] > SIZE_MAX / sizeof(float) / count)
            return 0;
        count *= (size_t)info->dims[d];
    }
    return count;
}

/* Fills inputs with a fixed pseudo-random sequence in [-1, 1) (same input every run). */
static void fill_input(float *data, size_t count, uint32_t seed)
{
    uint32_t state = seed * 2654435761u + 1u;
    for (size_t i = 0; i < count; i++) {
        state = state * 1664525u + 1013904223u;
        data[i] = (float)(state >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
    }
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    long threads = 0, runs = 20, warmup = 3;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        long *target = NULL;
        long max = 1000000;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(arg, "--threads") == 0) {
            target = &threads;
            max = 1024;
        } else if (strcmp(arg, "--runs") == 0) {
            target = &runs;
        } else if (strcmp(arg, "--warmup") == 0) {
            target = &warmup;
        } else if (arg[0] != '-' && path == NULL) {
            path = arg;
            continue;
        } else {
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc || parse_count(argv[i + 1], target == &runs ? 1 : 0, max, target)) {
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (path == NULL) {
        usage(stderr);
        return 2;
    }

    int status = 1;
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_nn_runtime *runtime = NULL;
    struct cxr_nn_model *model = NULL;
    struct cxr_limits limits = cxr_limits_default();
    float **inputs = NULL;
    size_t input_count = 0;
    double *times = calloc((size_t)runs, sizeof(*times));
    if (times == NULL) {
        fprintf(stderr, "bench_nn: out of memory\n");
        return 1;
    }

    if (cxr_nn_runtime_create((uint32_t)threads, &runtime, &err) != CXR_OK)
        goto done;
    double load_start = now_ms();
    if (cxr_nn_model_load(runtime, path, &limits, &model, &err) != CXR_OK)
        goto done;
    double load_ms = now_ms() - load_start;

    input_count = cxr_nn_model_input_count(model);
    inputs = calloc(input_count ? input_count : 1, sizeof(*inputs));
    if (inputs == NULL) {
        cxr_err_set(&err, CXR_ERR_NOMEM, "bench_nn: out of memory");
        goto done;
    }
    for (size_t i = 0; i < input_count; i++) {
        const struct cxr_nn_tensor_info *info = cxr_nn_model_input(model, i);
        size_t count = tensor_elements(info);
        if (count == 0) {
            cxr_err_set(&err, CXR_ERR_UNSUPPORTED, "bench_nn: input %s has no fixed shape",
                        info->name);
            goto done;
        }
        inputs[i] = malloc(count * sizeof(float));
        if (inputs[i] == NULL) {
            cxr_err_set(&err, CXR_ERR_NOMEM, "bench_nn: out of memory");
            goto done;
        }
        fill_input(inputs[i], count, (uint32_t)i);
    }

    for (long i = 0; i < warmup; i++) {
        if (cxr_nn_model_run(model, (const float *const *)inputs, &err) != CXR_OK)
            goto done;
    }
    for (long i = 0; i < runs; i++) {
        double start = now_ms();
        if (cxr_nn_model_run(model, (const float *const *)inputs, &err) != CXR_OK)
            goto done;
        times[i] = now_ms() - start;
    }
    /* Every pass in run order, so a caller can interleave rounds with another framework. */
    printf("times_ms=");
    for (long i = 0; i < runs; i++)
        printf("%s%.3f", i ? "," : "", times[i]);
    printf("\n");
    qsort(times, (size_t)runs, sizeof(*times), compare_double);
    double median = runs % 2 ? times[runs / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2.0;

    printf("model=%s threads=%u runs=%ld load_ms=%.2f median_ms=%.3f min_ms=%.3f max_ms=%.3f "
           "peak_rss_kb=%ld rss_after_runs_kb=%ld\n",
           path, cxr_nn_runtime_threads(runtime), runs, load_ms, median, times[0], times[runs - 1],
           proc_status_kb("VmHWM:"), proc_status_kb("VmRSS:"));
    status = 0;

done:
    if (status != 0)
        fprintf(stderr, "bench_nn: %s: %s\n", cxr_status_name(err.status), err.message);
    if (inputs != NULL) {
        for (size_t i = 0; i < input_count; i++)
            free(inputs[i]);
    }
    free(inputs);
    free(times);
    cxr_nn_model_destroy(model);
    cxr_nn_runtime_destroy(runtime);
    return status;
}
