/* Untrusted path checks: syntax table, containment, symlinks out of a root, missing folders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/util.h"

static void syntax_table(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        int ok;
    } cases[] = {
            {"/data/in/a.dcm", 1},
            {"/data/out/", 1},
            {"/", 1},
            {"relative/a.dcm", 0},
            {"", 0},
            {"/data/../etc/passwd", 0},
            {"/data/..", 0},
            {"/data/./a", 0},
            {"/data//a", 0},
            {"/data/out//", 0},
            {"/data/..x/a", 1},
            {"/data/.hidden", 1},
            {"C:/data/a.dcm", 0},
            {"/data/a..b.dcm", 1},
            {"/..", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cxr_err err = CXR_ERR_INIT;
        enum cxr_status status = cxr_path_check_syntax(cases[i].path, strlen(cases[i].path), &err);
        if ((status == CXR_OK) != cases[i].ok)
            fail_msg("path '%s': expected %s, got %s (%s)", cases[i].path,
                     cases[i].ok ? "ok" : "refusal", cxr_status_name(status), err.message);
    }
    /* An embedded NUL: the JSON string is longer than its C string. */
    const char with_nul[] = "/data/a.dcm\0/../../etc/passwd";
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_path_check_syntax(with_nul, sizeof with_nul - 1, &err),
                     CXR_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "NUL"));
}

static void is_under_is_component_wise(void **state)
{
    (void)state;
    assert_true(cxr_path_is_under("/data", "/data"));
    assert_true(cxr_path_is_under("/data/a", "/data"));
    assert_true(cxr_path_is_under("/data/a", "/data/"));
    assert_false(cxr_path_is_under("/data2/a", "/data"));
    assert_false(cxr_path_is_under("/dat", "/data"));
    assert_true(cxr_path_is_under("/anything", "/"));
}

struct tree {
    char base[64];
    char root[128];
    char outside[128];
};

static int tree_setup(void **state)
{
    struct tree *tree = calloc(1, sizeof *tree);
    strcpy(tree->base, "/tmp/cxr-path-XXXXXX");
    if (mkdtemp(tree->base) == NULL)
        return -1;
    snprintf(tree->root, sizeof tree->root, "%s/root", tree->base);
    snprintf(tree->outside, sizeof tree->outside, "%s/outside", tree->base);
    mkdir(tree->root, 0755);
    mkdir(tree->outside, 0755);
    char path[256];
    snprintf(path, sizeof path, "%s/a.dcm", tree->root);
    fclose(fopen(path, "w"));
    snprintf(path, sizeof path, "%s/secret.dcm", tree->outside);
    fclose(fopen(path, "w"));
    snprintf(path, sizeof path, "%s/escape", tree->root);
    if (symlink(tree->outside, path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/inner", tree->root);
    if (symlink(tree->root, path) != 0)
        return -1;
    *state = tree;
    return 0;
}

static int tree_teardown(void **state)
{
    struct tree *tree = *state;
    char command[256];
    snprintf(command, sizeof command, "rm -rf '%s'", tree->base);
    int rc = system(command);
    free(tree);
    return rc == 0 ? 0 : -1;
}

static void resolve_under_root(void **state)
{
    struct tree *tree = *state;
    char *root_real = realpath(tree->root, NULL);
    char path[256];
    char *resolved = NULL;
    struct cxr_err err = CXR_ERR_INIT;

    snprintf(path, sizeof path, "%s/a.dcm", tree->root);
    assert_int_equal(cxr_path_resolve_under(path, root_real, 0, &resolved, &err), CXR_OK);
    assert_true(cxr_path_is_under(resolved, root_real));
    free(resolved);

    /* A symlink inside the root that stays inside is fine. */
    snprintf(path, sizeof path, "%s/inner/a.dcm", tree->root);
    resolved = NULL;
    assert_int_equal(cxr_path_resolve_under(path, root_real, 0, &resolved, &err), CXR_OK);
    free(resolved);

    /* A symlink out of the root is refused, and the output stays untouched. */
    snprintf(path, sizeof path, "%s/escape/secret.dcm", tree->root);
    resolved = NULL;
    assert_int_equal(cxr_path_resolve_under(path, root_real, 0, &resolved, &err),
                     CXR_ERR_INVALID_ARG);
    assert_null(resolved);
    /* The message says so without telling where the symlink points (issue 19, item 12). */
    assert_non_null(strstr(err.message, "outside the allowed root"));
    assert_null(strstr(err.message, tree->outside));

    /* Missing file. */
    snprintf(path, sizeof path, "%s/missing.dcm", tree->root);
    struct cxr_err err2 = CXR_ERR_INIT;
    assert_int_equal(cxr_path_resolve_under(path, root_real, 0, &resolved, &err2),
                     CXR_ERR_NOT_FOUND);

    /* Missing output folders are allowed with allow_missing, under the root only. */
    snprintf(path, sizeof path, "%s/new/deeper/", tree->root);
    assert_int_equal(cxr_path_resolve_under(path, root_real, 1, &resolved, &err2), CXR_OK);
    char expected[300];
    snprintf(expected, sizeof expected, "%s/new/deeper", root_real);
    assert_string_equal(resolved, expected);
    free(resolved);
    snprintf(path, sizeof path, "%s/escape/new", tree->root);
    struct cxr_err err3 = CXR_ERR_INIT;
    assert_int_equal(cxr_path_resolve_under(path, root_real, 1, &resolved, &err3),
                     CXR_ERR_INVALID_ARG);
    assert_non_null(strstr(err3.message, "outside"));
    free(root_real);
}

static void mkdirs_creates_parents(void **state)
{
    struct tree *tree = *state;
    char path[256];
    struct cxr_err err = CXR_ERR_INIT;
    snprintf(path, sizeof path, "%s/x/y/z/", tree->root);
    assert_int_equal(cxr_path_mkdirs(path, &err), CXR_OK);
    assert_int_equal(cxr_path_mkdirs(path, &err), CXR_OK); /* idempotent */
    struct stat info;
    assert_int_equal(stat(path, &info), 0);
    assert_true(S_ISDIR(info.st_mode));
    /* A file in the way is an error, not a crash. */
    snprintf(path, sizeof path, "%s/a.dcm/sub", tree->root);
    assert_int_equal(cxr_path_mkdirs(path, &err), CXR_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(syntax_table),
            cmocka_unit_test(is_under_is_component_wise),
            cmocka_unit_test_setup_teardown(resolve_under_root, tree_setup, tree_teardown),
            cmocka_unit_test_setup_teardown(mkdirs_creates_parents, tree_setup, tree_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
