/* The cxrd command: a thin dispatcher over the subcommands, each implemented in the library
 * (src/cli/) so tests link the same code. Exit status: 0 success, 1 failure, 2 usage error. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cxr_version.h"

struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

/* Subcommands are added here as they land; the list ends with a NULL name. */
static const struct command commands[] = {
        {"dump", "print a DICOM file's metadata and pixel description as JSON", cxr_cli_dump},
        {"render", "render a DICOM file as an 8-bit grey PNG", cxr_cli_render},
        {"model-info", "describe an ONNX model as the runtime plans it", cxr_cli_model_info},
        {"model-run", "run an ONNX model on .npy inputs, write .npy outputs", cxr_cli_model_run},
        {"serve", "serve the v1 HTTP API (--config FILE)", cxr_cli_serve},
        {"infer", "analyse DICOM files without HTTP (FILE... --output DIR)", cxr_cli_infer},
        {"calibrate", "choose a site's operating point on its labelled studies (--labels CSV)",
         cxr_cli_calibrate},
        {"results", "print the stored results of a SOP Instance UID (--sop UID)", cxr_cli_results},
        {"token", "mint a JWT for an integrator (--subject NAME)", cxr_cli_token},
        {NULL, NULL, NULL},
};

static void print_usage(FILE *out)
{
    fprintf(out,
            "cxrd %s - chest X-ray AI inference server\n\n"
            "Usage:\n"
            "  cxrd <command> [options]\n"
            "  cxrd <command> --help\n"
            "  cxrd --help | --version\n\n",
            CXR_VERSION_STRING);
    fprintf(out, "Commands:\n");
    if (commands[0].name == NULL)
        fprintf(out, "  (none in this build yet)\n");
    for (const struct command *command = commands; command->name; command++)
        fprintf(out, "  %-12s %s\n", command->name, command->summary);
    fprintf(out, "\nSee README.md for configuration and the HTTP API.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    /* A request allocates tens of MB in blocks of MBs (the DICOM file, the images, the PNG
     * filter and deflate buffers) from worker and side threads. glibc gives threads up to 8
     * arenas per core, each keeping its high-water mark after free, so peak RSS grew with the
     * threads that ever ran a request (bench/api, 2 workers, both modes: 292 MiB). Two arenas
     * keep the reuse without the spread (209 MiB, same CPU per request). By default glibc
     * still hands freed arena memory back to the kernel (trim), and the next request faults
     * every page in again: with cxr-default-2.4, 6.5-9.2 requests/s at concurrency 4 (2
     * cores). Keeping up to 128 MiB free per arena, and blocks up to glibc's largest mmap
     * threshold (32 MiB) in the arenas, made 10.4-10.6. The price is memory that stays
     * resident: a 10-minute soak plateaus at 253-292 MiB against 175-250 (docs/soak.md). */
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    /* A write past RLIMIT_FSIZE (ulimit -f, a systemd LimitFSIZE=) raises SIGXFSZ, whose default
     * action killed `serve` with every request in flight and left temp files behind. Ignored,
     * the write fails with EFBIG instead: that request fails and its temp files are removed. */
    signal(SIGXFSZ, SIG_IGN);
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("cxrd %s\n", CXR_VERSION_STRING);
        return 0;
    }
    for (const struct command *command = commands; command->name; command++) {
        if (strcmp(name, command->name) == 0)
            return command->run(argc - 1, argv + 1);
    }
    fprintf(stderr, "cxrd: unknown command '%s' (try 'cxrd --help')\n", name);
    return 2;
}
