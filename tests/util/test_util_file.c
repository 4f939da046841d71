/* Atomic output groups: staged files are invisible until commit, an aborted group leaves the
 * folder exactly as it was, commit replaces whole files and removes the ones marked, and two
 * groups committed to one folder at the same moment never leave a mix of both. The one file
 * reader: limits, and a FIFO refused at once by it and by every reader built on it. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dicom/dicom.h"
#include "nn/nn.h"
#include "util/util.h"

static int folder_setup(void **state)
{
    char *folder = strdup("/tmp/cxr-file-XXXXXX");
    if (mkdtemp(folder) == NULL)
        return -1;
    *state = folder;
    return 0;
}

static int folder_teardown(void **state)
{
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", (char *)*state);
    free(*state);
    return system(command) == 0 ? 0 : -1;
}

static size_t entry_count(const char *folder)
{
    DIR *dir = opendir(folder);
    size_t count = 0;
    for (struct dirent *entry; (entry = readdir(dir));)
        count += entry->d_name[0] != '.' ||
                 (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0);
    closedir(dir);
    return count;
}

static void read_back(const char *folder, const char *name, const char *expected)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    struct cxr_buf buf = CXR_BUF_INIT(0);
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_file_read(path, 1 << 20, &buf, &err), CXR_OK);
    assert_int_equal(buf.len, strlen(expected));
    assert_memory_equal(buf.data, expected, buf.len);
    cxr_buf_release(&buf);
}

static void commit_makes_files_visible(void **state)
{
    const char *folder = *state;
    struct cxr_file_group *group = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_file_group_create(folder, &group, &err), CXR_OK);
    assert_int_equal(cxr_file_group_stage(group, "a.json", "{}", 2, &err), CXR_OK);
    assert_int_equal(cxr_file_group_stage(group, "b.png", "PNGDATA", 7, &err), CXR_OK);
    /* Before commit only the hidden temp files exist. */
    char path[256];
    snprintf(path, sizeof path, "%s/a.json", folder);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(entry_count(folder), 2);
    assert_int_equal(cxr_file_group_commit(group, &err), CXR_OK);
    cxr_file_group_destroy(group);
    assert_int_equal(entry_count(folder), 2);
    read_back(folder, "a.json", "{}");
    read_back(folder, "b.png", "PNGDATA");
    struct stat info;
    assert_int_equal(stat(path, &info), 0);
    assert_int_equal(info.st_mode & 0777, 0644);

    /* A second run replaces a.json whole and removes b.png. */
    assert_int_equal(cxr_file_group_create(folder, &group, &err), CXR_OK);
    assert_int_equal(cxr_file_group_stage(group, "a.json", "{\"x\":1}", 7, &err), CXR_OK);
    assert_int_equal(cxr_file_group_remove(group, "b.png", &err), CXR_OK);
    assert_int_equal(cxr_file_group_remove(group, "never-existed", &err), CXR_OK);
    assert_int_equal(cxr_file_group_commit(group, &err), CXR_OK);
    cxr_file_group_destroy(group);
    assert_int_equal(entry_count(folder), 1);
    read_back(folder, "a.json", "{\"x\":1}");
}

static void abort_leaves_nothing(void **state)
{
    const char *folder = *state;
    struct cxr_file_group *group = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_file_group_create(folder, &group, &err), CXR_OK);
    assert_int_equal(cxr_file_group_stage(group, "a.json", "{}", 2, &err), CXR_OK);
    assert_int_equal(cxr_file_group_stage(group, "../escape", "x", 1, &err), CXR_ERR_INVALID_ARG);
    cxr_file_group_destroy(group); /* no commit: the failed request leaves nothing */
    assert_int_equal(entry_count(folder), 0);
}

static void folder_in_the_way_fails_before_any_rename(void **state)
{
    const char *folder = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/b.pdf", folder);
    assert_int_equal(mkdir(path, 0755), 0);
    struct cxr_file_group *group = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_file_group_create(folder, &group, &err), CXR_OK);
    assert_int_equal(cxr_file_group_stage(group, "a.json", "{}", 2, &err), CXR_OK);
    assert_int_equal(cxr_file_group_stage(group, "b.pdf", "%PDF", 4, &err), CXR_OK);
    assert_int_equal(cxr_file_group_commit(group, &err), CXR_ERR_IO);
    assert_non_null(strstr(err.message, "is a folder"));
    cxr_file_group_destroy(group);
    assert_int_equal(entry_count(folder), 1); /* only the folder; a.json was not renamed */
}

static void single_file_and_read_limit(void **state)
{
    const char *folder = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/one.txt", folder);
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_file_write_atomic(path, "hello", 5, &err), CXR_OK);
    read_back(folder, "one.txt", "hello");
    struct cxr_buf buf = CXR_BUF_INIT(0);
    assert_int_equal(cxr_file_read(path, 4, &buf, &err), CXR_ERR_LIMIT);
    assert_int_equal(buf.len, 0);
    struct cxr_err err2 = CXR_ERR_INIT;
    snprintf(path, sizeof path, "%s/missing", folder);
    assert_int_equal(cxr_file_read(path, 4, &buf, &err2), CXR_ERR_NOT_FOUND);
    cxr_buf_release(&buf);
    /* Writing into a folder that does not exist fails and creates nothing. */
    snprintf(path, sizeof path, "%s/no/such/file", folder);
    assert_int_equal(cxr_file_write_atomic(path, "x", 1, &err2), CXR_ERR_IO);
}

/* Two writers commit three-file groups to the same folder at the same moment, many times over
 * (as two requests for one patient do); after each round all three files must come from the
 * same writer. */
enum { ROUNDS = 300 };

struct racer {
    const char *folder;
    pthread_barrier_t *barrier;
    int id;
    int failures;
};

static void *race_commits(void *arg)
{
    struct racer *racer = arg;
    static const char *const names[] = {"p_predictions.json", "p_source.png", "p_report.pdf"};
    for (int round = 0; round < ROUNDS; round++) {
        char tag[32];
        snprintf(tag, sizeof tag, "writer %d round %d", racer->id, round);
        struct cxr_err err = CXR_ERR_INIT;
        struct cxr_file_group *group = NULL;
        enum cxr_status status = cxr_file_group_create(racer->folder, &group, &err);
        for (int i = 0; i < 3 && status == CXR_OK; i++)
            status = cxr_file_group_stage(group, names[i], tag, strlen(tag), &err);
        pthread_barrier_wait(racer->barrier);
        if (status == CXR_OK)
            status = cxr_file_group_commit(group, &err);
        cxr_file_group_destroy(group);
        racer->failures += status != CXR_OK;
        pthread_barrier_wait(racer->barrier);
        if (racer->id == 0) { /* both groups are in: the three files must agree */
            char first[64] = "", path[256];
            for (int i = 0; i < 3; i++) {
                snprintf(path, sizeof path, "%s/%s", racer->folder, names[i]);
                struct cxr_buf buf = CXR_BUF_INIT(0);
                if (cxr_file_read(path, 64, &buf, &err) != CXR_OK || buf.len >= sizeof first) {
                    racer->failures++;
                } else if (i == 0) {
                    memcpy(first, buf.data, buf.len);
                } else if (buf.len != strlen(first) || memcmp(buf.data, first, buf.len) != 0) {
                    racer->failures++;
                }
                cxr_buf_release(&buf);
            }
        }
        pthread_barrier_wait(racer->barrier);
    }
    return NULL;
}

static void concurrent_groups_never_mix(void **state)
{
    const char *folder = *state;
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    struct racer racers[2] = {{folder, &barrier, 0, 0}, {folder, &barrier, 1, 0}};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, race_commits, &racers[1]), 0);
    race_commits(&racers[0]);
    pthread_join(thread, NULL);
    pthread_barrier_destroy(&barrier);
    assert_int_equal(racers[0].failures, 0);
    assert_int_equal(racers[1].failures, 0);
    assert_int_equal(entry_count(folder), 3); /* no temp file left */
}

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + now.tv_nsec / 1e9;
}

/* Issue 19 item 1: a FIFO swapped in for a validated path blocked a worker in open() for good.
 * Every reader must refuse it at once, with no writer ever appearing. SIGALRM ends the test
 * (a failure) should a read block. */
static void fifo_is_refused_promptly(void **state)
{
    const char *folder = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/input.dcm", folder);
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(20);
    double start = seconds_now();

    struct cxr_buf buf = CXR_BUF_INIT(0);
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_file_read(path, 1 << 20, &buf, &err), CXR_ERR_IO);
    assert_non_null(strstr(err.message, "not a regular file"));
    assert_int_equal(buf.len, 0);
    cxr_buf_release(&buf);

    struct cxr_dicom_file *file = NULL;
    struct cxr_err dicom_err = CXR_ERR_INIT;
    assert_int_equal(cxr_dicom_file_read(path, NULL, &file, &dicom_err), CXR_ERR_IO);
    assert_null(file);

    struct cxr_nn_array array;
    struct cxr_err npy_err = CXR_ERR_INIT;
    assert_int_equal(cxr_nn_npy_read(path, NULL, &array, &npy_err), CXR_ERR_IO);

    struct cxr_nn_runtime *runtime = NULL;
    struct cxr_err model_err = CXR_ERR_INIT;
    assert_int_equal(cxr_nn_runtime_create(1, &runtime, &model_err), CXR_OK);
    struct cxr_nn_model *model = NULL;
    assert_int_equal(cxr_nn_model_load(runtime, path, NULL, &model, &model_err), CXR_ERR_IO);
    assert_null(model);
    cxr_nn_runtime_destroy(runtime);

    alarm(0);
    assert_true(seconds_now() - start < 5.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(commit_makes_files_visible, folder_setup,
                                            folder_teardown),
            cmocka_unit_test_setup_teardown(abort_leaves_nothing, folder_setup, folder_teardown),
            cmocka_unit_test_setup_teardown(folder_in_the_way_fails_before_any_rename, folder_setup,
                                            folder_teardown),
            cmocka_unit_test_setup_teardown(single_file_and_read_limit, folder_setup,
                                            folder_teardown),
            cmocka_unit_test_setup_teardown(concurrent_groups_never_mix, folder_setup,
                                            folder_teardown),
            cmocka_unit_test_setup_teardown(fifo_is_refused_promptly, folder_setup,
                                            folder_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
