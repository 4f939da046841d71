/* Checks for untrusted paths: syntax (absolute, normalised, no "..", no NUL), containment under
 * a configured root after symlinks are resolved, and mkdir -p for output folders. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util.h"

enum cxr_status cxr_path_check_syntax(const char *path, size_t length, struct cxr_err *err)
{
    if (memchr(path, '\0', length) != NULL || path[length] != '\0')
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "contains a NUL byte");
    if (length == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "empty path");
    if (length >= PATH_MAX)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "longer than %d bytes", PATH_MAX - 1);
    if (path[0] != '/')
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "not an absolute path");
    const char *component = path + 1;
    while (*component) {
        const char *end = strchr(component, '/');
        size_t size = end ? (size_t)(end - component) : strlen(component);
        if (size == 2 && component[0] == '.' && component[1] == '.')
            return cxr_err_set(err, CXR_ERR_INVALID_ARG, "contains a '..' component");
        if (size == 1 && component[0] == '.')
            return cxr_err_set(err, CXR_ERR_INVALID_ARG, "not normalised (a '.' component)");
        if (size == 0)
            return cxr_err_set(err, CXR_ERR_INVALID_ARG, "not normalised (an empty component)");
        if (end == NULL)
            break;
        component = end + 1; /* a single trailing slash ends the loop here */
    }
    return CXR_OK;
}

bool cxr_path_is_under(const char *path, const char *root)
{
    size_t root_length = strlen(root);
    while (root_length > 1 && root[root_length - 1] == '/')
        root_length--;
    if (root_length == 1 && root[0] == '/')
        return path[0] == '/';
    if (strncmp(path, root, root_length) != 0)
        return false;
    return path[root_length] == '\0' || path[root_length] == '/';
}

static enum cxr_status check_under(char *resolved, const char *root_real, char **out,
                                   struct cxr_err *err)
{
    if (!cxr_path_is_under(resolved, root_real)) {
        enum cxr_status status =
                cxr_err_set(err, CXR_ERR_INVALID_ARG, "resolves to %s, outside the allowed root %s",
                            resolved, root_real);
        free(resolved);
        return status;
    }
    *out = resolved;
    return CXR_OK;
}

enum cxr_status cxr_path_resolve_under(const char *path, const char *root_real, int allow_missing,
                                       char **out, struct cxr_err *err)
{
    char *resolved = realpath(path, NULL);
    if (resolved)
        return check_under(resolved, root_real, out, err);
    if (errno == ENOMEM)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    if (errno != ENOENT && errno != ENOTDIR)
        return cxr_err_set(err, CXR_ERR_IO, "cannot resolve: %s", strerror(errno));
    if (!allow_missing || errno == ENOTDIR)
        return cxr_err_set(err, CXR_ERR_NOT_FOUND, "does not exist");

    /* Walk back to the longest prefix that exists, resolve it, and append the rest (which has no
     * "." or ".." components, so appending cannot climb out of the resolved prefix). */
    size_t length = strlen(path);
    char *prefix = strdup(path);
    if (prefix == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    while (length > 1 && prefix[length - 1] == '/')
        prefix[--length] = '\0';
    char *real_prefix = NULL;
    size_t cut = length;
    while (real_prefix == NULL) {
        char *slash = strrchr(prefix, '/');
        if (slash == NULL)
            break;
        cut = (size_t)(slash - prefix);
        if (cut == 0) {
            real_prefix = realpath("/", NULL);
            break;
        }
        *slash = '\0';
        real_prefix = realpath(prefix, NULL);
        if (real_prefix == NULL && errno != ENOENT) {
            free(prefix);
            return cxr_err_set(err, errno == ENOTDIR ? CXR_ERR_NOT_FOUND : CXR_ERR_IO,
                               "cannot resolve a parent: %s", strerror(errno));
        }
    }
    free(prefix);
    if (real_prefix == NULL)
        return cxr_err_set(err, CXR_ERR_IO, "cannot resolve any parent");
    const char *rest = path + cut; /* starts with '/' */
    size_t rest_length = length - cut;
    size_t prefix_length = strlen(real_prefix);
    if (prefix_length == 1)
        prefix_length = 0; /* the root "/" */
    resolved = malloc(prefix_length + rest_length + 1);
    if (resolved == NULL) {
        free(real_prefix);
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    }
    memcpy(resolved, real_prefix, prefix_length);
    memcpy(resolved + prefix_length, rest, rest_length);
    resolved[prefix_length + rest_length] = '\0';
    free(real_prefix);
    return check_under(resolved, root_real, out, err);
}

static enum cxr_status make_one(const char *path, struct cxr_err *err)
{
    if (mkdir(path, 0755) == 0)
        return CXR_OK;
    int saved = errno;
    struct stat info;
    if (saved == EEXIST && stat(path, &info) == 0 && S_ISDIR(info.st_mode))
        return CXR_OK;
    return cxr_err_set(err, CXR_ERR_IO, "mkdir %s: %s", path,
                       saved == EEXIST ? "exists and is not a folder" : strerror(saved));
}

enum cxr_status cxr_path_mkdirs(const char *path, struct cxr_err *err)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    enum cxr_status status = CXR_OK;
    for (char *p = copy + 1; *p && status == CXR_OK; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        status = make_one(copy, err);
        *p = '/';
    }
    size_t length = strlen(copy);
    while (length > 1 && copy[length - 1] == '/')
        copy[--length] = '\0';
    if (status == CXR_OK && length > 1)
        status = make_one(copy, err);
    free(copy);
    return status;
}
