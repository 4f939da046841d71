/* bench/decode helper: the same work dcm2pnm does for `dcm2pnm +Wi 1 +op FILE OUT.pgm` -
 * read and parse the file, decode frame 1, render it to 8-bit grey - and writes a binary PGM,
 * so the two programs can be timed side by side as processes (run_bench.py). With -n N it
 * repeats the work N times in-process and prints the median in milliseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dicom/dicom.h"
#include "image/image.h"

static double now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

static int render_once(const char *path, const char *out_path)
{
    struct cxr_limits limits = cxr_limits_default();
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_dicom_file *file = NULL;
    struct cxr_gray8 image = {0};
    if (cxr_dicom_file_read(path, &limits, &file, &err) != CXR_OK ||
        cxr_image_render(file, &limits, &image, &err) != CXR_OK) {
        fprintf(stderr, "bench_decode: %s: %s\n", path, err.message);
        cxr_dicom_file_destroy(file);
        return 1;
    }
    int status = 0;
    if (out_path) {
        FILE *out = fopen(out_path, "wb");
        if (out == NULL || fprintf(out, "P5\n%u %u\n255\n", image.width, image.height) < 0 ||
            fwrite(image.pixels, 1, (size_t)image.width * image.height, out) !=
                    (size_t)image.width * image.height)
            status = 1;
        if (out && fclose(out) != 0)
            status = 1;
    }
    cxr_image_gray8_release(&image);
    cxr_dicom_file_destroy(file);
    return status;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "-n") == 0) {
        int runs = atoi(argv[2]);
        if (runs < 1 || runs > 1000)
            return 2;
        double *times = malloc((size_t)runs * sizeof(*times));
        if (times == NULL)
            return 1;
        for (int i = 0; i < runs; i++) {
            double start = now_ms();
            if (render_once(argv[3], argv[4]) != 0) {
                free(times);
                return 1;
            }
            times[i] = now_ms() - start;
        }
        qsort(times, (size_t)runs, sizeof(*times), compare_double);
        printf("%.2f\n", times[runs / 2]);
        free(times);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: bench_decode FILE OUT.pgm | bench_decode -n RUNS FILE OUT.pgm\n");
        return 2;
    }
    return render_once(argv[1], argv[2]);
}
