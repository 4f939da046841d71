/* Opening beneath a root held open (cxr_path_open_beneath), by openat2 and by the walk that
 * follows symlinks by hand, each checked against the file stat(2) finds by path: symlinks that
 * stay inside are followed, every way out (absolute or relative target, "..", a loop) is refused
 * without naming the target, FIFOs open without blocking, missing folders are created only
 * beneath the root. And the sweep of stale temp files: only our names, only old, only unlocked. */
#define _GNU_SOURCE /* O_PATH */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/util.h"

struct tree {
    char base[64];
    char root[128];
    char outside[128];
    struct cxr_path_root handle;
};

static void make_file(const char *folder, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(name, file);
    fclose(file);
}

static void make_link(const char *target, const char *folder, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    assert_int_equal(symlink(target, path), 0);
}

static int tree_setup(void **state)
{
    struct tree *tree = calloc(1, sizeof *tree);
    strcpy(tree->base, "/tmp/cxr-beneath-XXXXXX");
    if (mkdtemp(tree->base) == NULL)
        return -1;
    snprintf(tree->root, sizeof tree->root, "%s/root", tree->base);
    snprintf(tree->outside, sizeof tree->outside, "%s/outside", tree->base);
    char path[512];
    mkdir(tree->root, 0755);
    mkdir(tree->outside, 0755);
    snprintf(path, sizeof path, "%s/a", tree->root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/a/b", tree->root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/a", tree->root);
    make_file(path, "x.dcm");
    make_file(tree->outside, "secret.dcm");
    make_link("a/x.dcm", tree->root, "relative.dcm");
    snprintf(path, sizeof path, "%s/a/x.dcm", tree->root);
    make_link(path, tree->root, "absolute.dcm");
    snprintf(path, sizeof path, "%s/a/b", tree->root);
    make_link("../x.dcm", path, "up.dcm");
    make_link(tree->outside, tree->root, "escape");
    snprintf(path, sizeof path, "%s/secret.dcm", tree->outside);
    make_link(path, tree->root, "escape.dcm");
    make_link("../outside/secret.dcm", tree->root, "dotdot.dcm");
    make_link("a/../../outside/secret.dcm", tree->root, "deep_dotdot.dcm");
    make_link("/proc/self/environ", tree->root, "proc.dcm");
    make_link("loop2", tree->root, "loop1");
    make_link("loop1", tree->root, "loop2");
    make_link(tree->root, tree->root, "self");
    snprintf(path, sizeof path, "%s/fifo.dcm", tree->root);
    if (mkfifo(path, 0644) != 0)
        return -1;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_path_root_open(tree->root, &tree->handle, &err) != CXR_OK)
        return -1;
    *state = tree;
    return 0;
}

static int tree_teardown(void **state)
{
    struct tree *tree = *state;
    cxr_path_openat2_disable(false);
    cxr_path_root_close(&tree->handle);
    char command[256];
    snprintf(command, sizeof command, "rm -rf '%s'", tree->base);
    int rc = system(command);
    free(tree);
    return rc == 0 ? 0 : -1;
}

/* Opens root/relative; on success checks the descriptor is the file `expected` names. */
static enum cxr_status open_and_check(struct tree *tree, const char *relative,
                                      enum cxr_path_open_mode mode, const char *expected,
                                      struct cxr_err *err)
{
    char path[512];
    snprintf(path, sizeof path, "%s%s%s", tree->root, relative[0] ? "/" : "", relative);
    int fd = -1;
    enum cxr_status status = cxr_path_open_beneath(&tree->handle, path, mode, &fd, err);
    if (status != CXR_OK)
        return status;
    struct stat opened, wanted;
    assert_int_equal(fstat(fd, &opened), 0);
    char want[512];
    snprintf(want, sizeof want, "%s%s%s", tree->root, expected[0] ? "/" : "", expected);
    assert_int_equal(stat(want, &wanted), 0);
    assert_true(opened.st_ino == wanted.st_ino && opened.st_dev == wanted.st_dev);
    assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    close(fd);
    return CXR_OK;
}

static void open_table(void **state, bool use_openat2)
{
    struct tree *tree = *state;
    cxr_path_openat2_disable(!use_openat2);
    static const struct {
        const char *path;
        enum cxr_path_open_mode mode;
        enum cxr_status status;
        const char *expected; /* the file it must be, relative to the root */
    } cases[] = {
            {"a/x.dcm", CXR_PATH_OPEN_FILE, CXR_OK, "a/x.dcm"},
            {"relative.dcm", CXR_PATH_OPEN_FILE, CXR_OK, "a/x.dcm"},
            {"absolute.dcm", CXR_PATH_OPEN_FILE, CXR_OK, "a/x.dcm"},
            {"a/b/up.dcm", CXR_PATH_OPEN_FILE, CXR_OK, "a/x.dcm"},
            {"self/self/a/x.dcm", CXR_PATH_OPEN_FILE, CXR_OK, "a/x.dcm"},
            {"a", CXR_PATH_OPEN_FOLDER, CXR_OK, "a"},
            {"self", CXR_PATH_OPEN_FOLDER, CXR_OK, ""},
            {"", CXR_PATH_OPEN_FOLDER, CXR_OK, ""},
            {"fifo.dcm", CXR_PATH_OPEN_FILE, CXR_OK, "fifo.dcm"}, /* opens, does not block */
            {"missing.dcm", CXR_PATH_OPEN_FILE, CXR_ERR_NOT_FOUND, NULL},
            {"a/missing/x.dcm", CXR_PATH_OPEN_FILE, CXR_ERR_NOT_FOUND, NULL},
            {"escape/secret.dcm", CXR_PATH_OPEN_FILE, CXR_ERR_INVALID_ARG, NULL},
            {"escape.dcm", CXR_PATH_OPEN_FILE, CXR_ERR_INVALID_ARG, NULL},
            {"dotdot.dcm", CXR_PATH_OPEN_FILE, CXR_ERR_INVALID_ARG, NULL},
            {"deep_dotdot.dcm", CXR_PATH_OPEN_FILE, CXR_ERR_INVALID_ARG, NULL},
            {"proc.dcm", CXR_PATH_OPEN_FILE, CXR_ERR_INVALID_ARG, NULL},
            {"escape", CXR_PATH_OPEN_FOLDER, CXR_ERR_INVALID_ARG, NULL},
            {"loop1", CXR_PATH_OPEN_FILE, CXR_ERR_IO, NULL},
            {"a/x.dcm/more", CXR_PATH_OPEN_FILE, CXR_ERR_IO, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cxr_err err = CXR_ERR_INIT;
        enum cxr_status status =
                open_and_check(tree, cases[i].path, cases[i].mode, cases[i].expected, &err);
        if (status != cases[i].status)
            fail_msg("%s (openat2 %d): %s, want %s (%s)", cases[i].path, use_openat2,
                     cxr_status_name(status), cxr_status_name(cases[i].status), err.message);
        /* Refusals never show where a symlink points. */
        assert_null(strstr(err.message, tree->outside));
        assert_null(strstr(err.message, "/proc"));
        if (status == CXR_ERR_INVALID_ARG)
            assert_non_null(strstr(err.message, "outside the allowed root"));
    }
    /* A path not lexically under the root is refused before any lookup. */
    char path[512];
    snprintf(path, sizeof path, "%s/secret.dcm", tree->outside);
    int fd = -1;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_path_open_beneath(&tree->handle, path, CXR_PATH_OPEN_FILE, &fd, &err),
                     CXR_ERR_INVALID_ARG);
    assert_int_equal(fd, -1);
}

static void open_with_openat2(void **state)
{
    open_table(state, true);
}

static void open_by_walking(void **state)
{
    open_table(state, false);
}

static void create_stays_beneath(void **state)
{
    struct tree *tree = *state;
    for (int walk = 0; walk < 2; walk++) {
        cxr_path_openat2_disable(walk == 1);
        char path[512];
        snprintf(path, sizeof path, "%s/new%d/deeper/deepest", tree->root, walk);
        int fd = -1;
        struct cxr_err err = CXR_ERR_INIT;
        assert_int_equal(
                cxr_path_open_beneath(&tree->handle, path, CXR_PATH_OPEN_FOLDER_CREATE, &fd, &err),
                CXR_OK);
        struct stat opened, wanted;
        assert_int_equal(fstat(fd, &opened), 0);
        assert_int_equal(stat(path, &wanted), 0);
        assert_true(S_ISDIR(wanted.st_mode) && opened.st_ino == wanted.st_ino);
        close(fd);
        /* Through a symlink out of the root: refused, nothing created outside. */
        snprintf(path, sizeof path, "%s/escape/made%d", tree->root, walk);
        assert_int_equal(
                cxr_path_open_beneath(&tree->handle, path, CXR_PATH_OPEN_FOLDER_CREATE, &fd, &err),
                CXR_ERR_INVALID_ARG);
        snprintf(path, sizeof path, "%s/made%d", tree->outside, walk);
        assert_int_not_equal(access(path, F_OK), 0);
        /* A file where a folder should be. */
        struct cxr_err err2 = CXR_ERR_INIT;
        snprintf(path, sizeof path, "%s/a/x.dcm/sub", tree->root);
        assert_int_equal(
                cxr_path_open_beneath(&tree->handle, path, CXR_PATH_OPEN_FOLDER_CREATE, &fd, &err2),
                CXR_ERR_IO);
    }
}

/* ".." above "/" stays at "/" when the root is "/" (cxrd infer), as in any lookup; under any
 * other root the same symlink leads out of it. */
static void climbing_past_the_top(void **state)
{
    struct tree *tree = *state;
    char target[512], path[512];
    snprintf(target, sizeof target, "../../../../../../../../../../../..%s/a/x.dcm", tree->root);
    make_link(target, tree->root, "climb.dcm");
    snprintf(path, sizeof path, "%s/climb.dcm", tree->root);
    struct cxr_path_root top;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_path_root_open("/", &top, &err), CXR_OK);
    for (int walk = 0; walk < 2; walk++) {
        cxr_path_openat2_disable(walk == 1);
        int fd = -1;
        assert_int_equal(cxr_path_open_beneath(&top, path, CXR_PATH_OPEN_FILE, &fd, &err), CXR_OK);
        struct stat opened, wanted;
        snprintf(target, sizeof target, "%s/a/x.dcm", tree->root);
        assert_int_equal(fstat(fd, &opened), 0);
        assert_int_equal(stat(target, &wanted), 0);
        assert_true(opened.st_ino == wanted.st_ino);
        close(fd);
        assert_int_equal(cxr_path_open_beneath(&tree->handle, path, CXR_PATH_OPEN_FILE, &fd, &err),
                         CXR_ERR_INVALID_ARG);
    }
    cxr_path_root_close(&top);
}

/* ---- The sweep of stale temp files ---- */

static void age(const char *folder, const char *name, time_t seconds)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    struct timespec times[2];
    times[0].tv_sec = times[1].tv_sec = time(NULL) - seconds;
    times[0].tv_nsec = times[1].tv_nsec = 0;
    assert_int_equal(utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW), 0);
}

static bool exists(const char *folder, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    struct stat info;
    return lstat(path, &info) == 0;
}

static void sweep_removes_only_stale_temps(void **state)
{
    struct tree *tree = *state;
    char patient[512], deep[512];
    snprintf(patient, sizeof patient, "%s/a/PAT1", tree->root);
    mkdir(patient, 0755);
    snprintf(deep, sizeof deep, "%s/a/b/c", tree->root);
    mkdir(deep, 0755);
    snprintf(deep, sizeof deep, "%s/a/b/c/d", tree->root);
    mkdir(deep, 0755);
    const long old = 2 * CXR_FILE_TEMP_STALE_SECONDS;
    /* Stale: our pattern, old, unlocked. */
    make_file(patient, ".PAT1_report.pdf.tmp-Ab3xYz");
    age(patient, ".PAT1_report.pdf.tmp-Ab3xYz", old);
    make_file(patient, ".PAT1_heatmap.png.tmp-000000");
    age(patient, ".PAT1_heatmap.png.tmp-000000", old);
    /* Kept: too new; locked by a live writer; not our pattern; a symlink; a folder. */
    make_file(patient, ".PAT1_source_image.png.tmp-fresh1");
    make_file(patient, ".PAT1_predictions.json.tmp-locked");
    age(patient, ".PAT1_predictions.json.tmp-locked", old);
    make_file(patient, ".hidden.tmp-abc");
    age(patient, ".hidden.tmp-abc", old);
    make_file(patient, "PAT1_report.pdf.tmp-Ab3xYz");
    age(patient, "PAT1_report.pdf.tmp-Ab3xYz", old);
    make_file(patient, ".PAT1_x.tmp-Ab3xY!");
    age(patient, ".PAT1_x.tmp-Ab3xY!", old);
    make_link("/nonexistent", patient, ".PAT1_y.png.tmp-LINK00");
    char sub[600];
    snprintf(sub, sizeof sub, "%s/.PAT1_z.png.tmp-FOLDER", patient);
    mkdir(sub, 0755);
    age(patient, ".PAT1_z.png.tmp-FOLDER", old);
    /* Deeper than the sweep looks (root/a/b/c/d is depth 4 below the root). */
    make_file(deep, ".P_deep.png.tmp-DEEP00");
    age(deep, ".P_deep.png.tmp-DEEP00", old);

    char path[600];
    snprintf(path, sizeof path, "%s/.PAT1_predictions.json.tmp-locked", patient);
    int held = open(path, O_RDONLY);
    assert_true(held >= 0);
    assert_int_equal(flock(held, LOCK_EX), 0);

    size_t budget = 1000;
    assert_int_equal(cxr_file_temps_sweep(tree->handle.fd, 3, &budget), 2);
    assert_false(exists(patient, ".PAT1_report.pdf.tmp-Ab3xYz"));
    assert_false(exists(patient, ".PAT1_heatmap.png.tmp-000000"));
    assert_true(exists(patient, ".PAT1_source_image.png.tmp-fresh1"));
    assert_true(exists(patient, ".PAT1_predictions.json.tmp-locked"));
    assert_true(exists(patient, ".hidden.tmp-abc"));
    assert_true(exists(patient, "PAT1_report.pdf.tmp-Ab3xYz"));
    assert_true(exists(patient, ".PAT1_x.tmp-Ab3xY!"));
    assert_true(exists(patient, ".PAT1_y.png.tmp-LINK00"));
    assert_true(exists(patient, ".PAT1_z.png.tmp-FOLDER"));
    assert_true(exists(deep, ".P_deep.png.tmp-DEEP00"));
    assert_true(budget < 1000);

    /* The writer gone (its lock released), the file is stale; one level deeper reaches d. */
    close(held);
    budget = 1000;
    assert_int_equal(cxr_file_temps_sweep(tree->handle.fd, 4, &budget), 2);
    assert_false(exists(patient, ".PAT1_predictions.json.tmp-locked"));
    assert_false(exists(deep, ".P_deep.png.tmp-DEEP00"));
    /* A budget of entries bounds the work. */
    make_file(patient, ".PAT1_again.pdf.tmp-AGAIN0");
    age(patient, ".PAT1_again.pdf.tmp-AGAIN0", old);
    budget = 3;
    assert_int_equal(cxr_file_temps_sweep(tree->handle.fd, 4, &budget), 0);
    assert_int_equal(budget, 0);
    assert_true(exists(patient, ".PAT1_again.pdf.tmp-AGAIN0"));
}

/* A staged file is locked by its group until commit: even when old, the sweep leaves it. */
static void staged_temps_are_locked(void **state)
{
    struct tree *tree = *state;
    char folder[512];
    snprintf(folder, sizeof folder, "%s/a", tree->root);
    struct cxr_file_group *group = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_file_group_create(folder, &group, &err), CXR_OK);
    assert_int_equal(cxr_file_group_stage(group, "P_out.json", "{}", 2, &err), CXR_OK);
    char command[700];
    snprintf(command, sizeof command,
             "cd '%s' && touch -d '-1 hour' .P_out.json.tmp-* && ls .P_out.json.tmp-* >/dev/null",
             folder);
    assert_int_equal(system(command), 0);
    size_t budget = 1000;
    int fd = open(folder, O_PATH | O_DIRECTORY);
    assert_int_equal(cxr_file_temps_sweep(fd, 0, &budget), 0);
    assert_int_equal(cxr_file_group_commit(group, &err), CXR_OK);
    cxr_file_group_destroy(group);
    close(fd);
    assert_true(exists(folder, "P_out.json"));
}

/* What a SIGKILL inside a stage leaves: a temp file, unlocked by the kernel at the writer's
 * death, that the sweep removes once it is old enough (and not before). */
static void killed_writer_leaves_a_stale_temp(void **state)
{
    struct tree *tree = *state;
    char folder[512];
    snprintf(folder, sizeof folder, "%s/a/b", tree->root);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct cxr_file_group *group = NULL;
        if (cxr_file_group_create(folder, &group, NULL) == CXR_OK &&
            cxr_file_group_stage(group, "P_k_report.pdf", "%PDF", 4, NULL) == CXR_OK)
            kill(getpid(), SIGKILL);
        _exit(1);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    char left[NAME_MAX + 1] = "";
    DIR *dir = opendir(folder);
    for (struct dirent *entry; (entry = readdir(dir));) {
        if (strncmp(entry->d_name, ".P_k_report.pdf.tmp-", 20) == 0)
            snprintf(left, sizeof left, "%s", entry->d_name);
    }
    closedir(dir);
    assert_true(left[0] != '\0');
    int fd = open(folder, O_PATH | O_DIRECTORY);
    size_t budget = 1000;
    assert_int_equal(cxr_file_temps_sweep(fd, 0, &budget), 0); /* too new */
    assert_true(exists(folder, left));
    age(folder, left, 2 * CXR_FILE_TEMP_STALE_SECONDS);
    assert_int_equal(cxr_file_temps_sweep(fd, 0, &budget), 1);
    assert_false(exists(folder, left));
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(open_with_openat2, tree_setup, tree_teardown),
            cmocka_unit_test_setup_teardown(open_by_walking, tree_setup, tree_teardown),
            cmocka_unit_test_setup_teardown(create_stays_beneath, tree_setup, tree_teardown),
            cmocka_unit_test_setup_teardown(climbing_past_the_top, tree_setup, tree_teardown),
            cmocka_unit_test_setup_teardown(sweep_removes_only_stale_temps, tree_setup,
                                            tree_teardown),
            cmocka_unit_test_setup_teardown(staged_temps_are_locked, tree_setup, tree_teardown),
            cmocka_unit_test_setup_teardown(killed_writer_leaves_a_stale_temp, tree_setup,
                                            tree_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
