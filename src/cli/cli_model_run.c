/* `cxrd model-run MODEL.onnx IN0.npy [IN1.npy ...] OUTDIR [--threads N] [--repeat N]`: one
 * forward pass on float32 .npy inputs, one `<output name>.npy` per graph output, so the
 * runtime can be checked against any other framework on any supported model. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "nn/nn.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: cxrd model-run MODEL.onnx INPUT.npy [INPUT2.npy ...] OUTDIR [options]\n\n"
                 "Runs one forward pass of MODEL on float32 .npy inputs (one per graph input, in\n"
                 "order, shapes as `cxrd model-info` lists them) and writes OUTDIR/<output>.npy\n"
                 "(float32, NCHW as ONNX defines) for every graph output; OUTDIR is created\n"
                 "when missing.\n\n"
                 "Options:\n"
                 "  --threads N   worker threads (default 0: one per CPU)\n"
                 "  --repeat N    run N passes and print the median milliseconds per pass\n");
}

static int parse_count(const char *text, unsigned long max, unsigned long *value)
{
    char *end = NULL;
    errno = 0;
    unsigned long parsed = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || parsed > max || text[0] == '-')
        return -1;
    *value = parsed;
    return 0;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Output names become file names: refuse anything that could leave OUTDIR. */
static bool safe_file_name(const char *name)
{
    if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return strchr(name, '/') == NULL && strlen(name) < 200;
}

int cxr_cli_model_run(int argc, char **argv)
{
    unsigned long threads = 0, repeat = 0;
    const char *threads_text = NULL, *repeat_text = NULL; /* each option once */
    const char *positional[66];
    int positional_count = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--threads") == 0 || strcmp(argv[i], "--repeat") == 0) {
            bool is_threads = argv[i][2] == 't';
            unsigned long *target = is_threads ? &threads : &repeat;
            if (i + 1 >= argc || parse_count(argv[i + 1], 100000, target) != 0) {
                fprintf(stderr, "cxrd model-run: %s needs a number\n", argv[i]);
                return 2;
            }
            if (!cxr_cli_option_once("model-run", argv[i] + 2,
                                     is_threads ? &threads_text : &repeat_text, argv[i + 1]))
                return 2;
            i++;
            continue;
        }
        if (argv[i][0] == '-' || positional_count == 66) {
            usage(stderr);
            return 2;
        }
        positional[positional_count++] = argv[i];
    }
    if (positional_count < 3) {
        usage(stderr);
        return 2;
    }
    const char *model_path = positional[0];
    const char *outdir = positional[positional_count - 1];
    int input_files = positional_count - 2;

    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_nn_runtime *runtime = NULL;
    struct cxr_nn_model *model = NULL;
    struct cxr_nn_array arrays[64];
    const float *inputs[64];
    int loaded = 0, status = 1;
    if (cxr_nn_runtime_create((uint32_t)threads, &runtime, &err) != CXR_OK ||
        cxr_nn_model_load(runtime, model_path, NULL, &model, &err) != CXR_OK)
        goto fail;
    if ((size_t)input_files != cxr_nn_model_input_count(model)) {
        fprintf(stderr, "cxrd model-run: the model has %zu inputs, %d .npy files given\n",
                cxr_nn_model_input_count(model), input_files);
        goto done;
    }
    for (int i = 0; i < input_files; i++) {
        if (cxr_nn_npy_read(positional[1 + i], NULL, &arrays[i], &err) != CXR_OK)
            goto fail;
        loaded++;
        const struct cxr_nn_tensor_info *info = cxr_nn_model_input(model, (size_t)i);
        int match = info->rank == arrays[i].rank;
        for (uint32_t k = 0; match && k < info->rank; k++)
            match = info->dims[k] == arrays[i].dims[k];
        if (!match) {
            fprintf(stderr, "cxrd model-run: %s: shape does not match input '%s'\n",
                    positional[1 + i], info->name);
            goto done;
        }
        inputs[i] = arrays[i].data;
    }
    if (cxr_nn_model_run(model, inputs, &err) != CXR_OK)
        goto fail;
    if (repeat > 0) {
        double *times = calloc(repeat, sizeof(double));
        if (times == NULL)
            goto done;
        for (unsigned long r = 0; r < repeat; r++) {
            struct timespec start, end;
            clock_gettime(CLOCK_MONOTONIC, &start);
            if (cxr_nn_model_run(model, inputs, &err) != CXR_OK) {
                free(times);
                goto fail;
            }
            clock_gettime(CLOCK_MONOTONIC, &end);
            times[r] = (double)(end.tv_sec - start.tv_sec) * 1e3 +
                       (double)(end.tv_nsec - start.tv_nsec) / 1e6;
        }
        qsort(times, repeat, sizeof(double), compare_double);
        printf("median_ms %.3f threads %u runs %lu\n", times[repeat / 2],
               cxr_nn_runtime_threads(runtime), repeat);
        free(times);
    }
    /* OUTDIR and its parents are made now, so a run that fails earlier leaves nothing. */
    if (cxr_path_mkdirs(outdir, &err) != CXR_OK)
        goto fail;
    for (size_t i = 0; i < cxr_nn_model_output_count(model); i++) {
        const struct cxr_nn_tensor_info *info = cxr_nn_model_output(model, i);
        if (!safe_file_name(info->name)) {
            fprintf(stderr, "cxrd model-run: output name '%s' is not a safe file name\n",
                    info->name);
            goto done;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s.npy", outdir, info->name);
        if (cxr_nn_npy_write(path, cxr_nn_model_output_data(model, i), info->rank, info->dims,
                             &err) != CXR_OK)
            goto fail;
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "cxrd model-run: %s\n", err.message);
done:
    for (int i = 0; i < loaded; i++)
        cxr_nn_array_release(&arrays[i]);
    cxr_nn_model_destroy(model);
    cxr_nn_runtime_destroy(runtime);
    return status;
}
