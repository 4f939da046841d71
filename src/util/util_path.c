/* Checks for untrusted paths: syntax (absolute, normalised, no "..", no NUL), containment under
 * a configured root after symlinks are resolved, mkdir -p for output folders, and opening a path
 * beneath a root held open as a descriptor (the open that counts: see docs/file-safety.md). */
#define _GNU_SOURCE /* O_PATH */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

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
        /* Never where it resolves to: a symlink's target is not the client's to learn. */
        enum cxr_status status =
                cxr_err_set(err, CXR_ERR_INVALID_ARG, "outside the allowed root %s", root_real);
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

/* ---- Roots held open, and opening beneath them ----------------------------------------------
 * The path a request names is looked up relative to a descriptor of its root, one component at
 * a time, never following a symlink by name: a folder or file swapped for a symlink between the
 * request's check and this open cannot lead the server out of the root. */

enum cxr_status cxr_path_root_open(const char *path, struct cxr_path_root *root,
                                   struct cxr_err *err)
{
    char *copy = strdup(path);
    char *real = realpath(path, NULL);
    int saved = errno;
    if (copy == NULL || (real == NULL && saved == ENOMEM)) {
        free(copy);
        free(real);
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    }
    if (real == NULL) {
        free(copy);
        return cxr_err_set(err, CXR_ERR_IO, "%s: %s", path, strerror(saved));
    }
    int fd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        saved = errno;
        free(copy);
        free(real);
        return cxr_err_set(err, CXR_ERR_IO, "%s: %s", path, strerror(saved));
    }
    size_t length = strlen(copy);
    while (length > 1 && copy[length - 1] == '/')
        copy[--length] = '\0';
    root->fd = fd;
    root->path = copy;
    root->real = real;
    return CXR_OK;
}

void cxr_path_root_close(struct cxr_path_root *root)
{
    if (root == NULL)
        return;
    if (root->fd >= 0)
        close(root->fd);
    free(root->path);
    free(root->real);
    root->fd = -1;
    root->path = root->real = NULL;
}

static atomic_bool openat2_disabled;

void cxr_path_openat2_disable(bool disabled)
{
    atomic_store(&openat2_disabled, disabled);
}

/* The part of path below root (as configured or resolved), without a leading slash, or NULL
 * when path is not lexically under it. */
static const char *below_root(const struct cxr_path_root *root, const char *path)
{
    const char *roots[2] = {root->real, root->path};
    for (int i = 0; i < 2; i++) {
        if (roots[i] == NULL || !cxr_path_is_under(path, roots[i]))
            continue;
        size_t length = strlen(roots[i]);
        if (length == 1) /* the root "/" */
            length = 0;
        const char *rest = path + length;
        while (*rest == '/')
            rest++;
        return rest;
    }
    return NULL;
}

/* openat2(2) confines the whole lookup in the kernel in one call. It refuses absolute symlinks
 * even when they point inside the root, so any failure falls back to the walk below, which
 * decides (and words the error). */
static int open_fast(int root_fd, const char *relative, int flags)
{
    if (atomic_load(&openat2_disabled) || relative[0] == '\0')
        return -1;
    struct open_how how = {
            .flags = (uint64_t)flags,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, root_fd, relative, &how, sizeof how);
}

#define WALK_MAX_DEPTH 256
#define WALK_MAX_LINKS 40

/* A name that was a symlink when opened and is none when read was swapped meanwhile: looked up
 * again, a few times, before it counts as "not a folder". */
#define WALK_MAX_RETRIES 8

struct walk {
    int fds[WALK_MAX_DEPTH + 1]; /* fds[0] is the root's (not ours); fds[depth] the current */
    int depth;
    int retries;
    char *pending; /* the components still to look up, '/'-separated */
};

static void walk_pop_to(struct walk *walk, int depth)
{
    while (walk->depth > depth)
        close(walk->fds[walk->depth--]);
}

/* Replaces pending with target + "/" + rest. */
static enum cxr_status walk_splice(struct walk *walk, const char *target, const char *rest,
                                   struct cxr_err *err)
{
    size_t size = strlen(target) + strlen(rest) + 2;
    char *joined = malloc(size);
    if (joined == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    snprintf(joined, size, "%s/%s", target, rest);
    free(walk->pending);
    walk->pending = joined;
    return CXR_OK;
}

/* Follows the symlink name in the current folder by hand: an absolute target must lie
 * (lexically) under the root and restarts from the root's descriptor; a relative one continues
 * from the current folder, its ".." handled by the walk. */
static enum cxr_status walk_follow(struct walk *walk, const struct cxr_path_root *root,
                                   const char *name, const char *rest, int *links,
                                   struct cxr_err *err)
{
    char target[PATH_MAX];
    ssize_t length = readlinkat(walk->fds[walk->depth], name, target, sizeof target - 1);
    if (length < 0 && errno == EINVAL && walk->retries++ < WALK_MAX_RETRIES)
        return walk_splice(walk, name, rest, err); /* no longer a symlink: look again */
    if (length < 0)
        return cxr_err_set(err, errno == ENOENT ? CXR_ERR_NOT_FOUND : CXR_ERR_IO, "%s",
                           errno == EINVAL ? "a component is not a folder" : strerror(errno));
    target[length] = '\0';
    if (++*links > WALK_MAX_LINKS)
        return cxr_err_set(err, CXR_ERR_IO, "too many levels of symbolic links");
    const char *next = target;
    if (target[0] == '/') {
        next = below_root(root, target);
        if (next == NULL)
            return cxr_err_set(err, CXR_ERR_INVALID_ARG, "outside the allowed root %s", root->real);
        walk_pop_to(walk, 0);
    }
    return walk_splice(walk, next, rest, err);
}

static enum cxr_status walk_error(int saved, const char *what, struct cxr_err *err)
{
    if (saved == ENOENT)
        return cxr_err_set(err, CXR_ERR_NOT_FOUND, "does not exist");
    if (saved == ENOMEM)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    return cxr_err_set(err, CXR_ERR_IO, "%s: %s", what, strerror(saved));
}

static enum cxr_status walk_run(struct walk *walk, const struct cxr_path_root *root,
                                enum cxr_path_open_mode mode, int *out, struct cxr_err *err)
{
    int links = 0;
    int created = 0;
    for (;;) {
        char *cursor = walk->pending;
        while (*cursor == '/')
            cursor++;
        if (*cursor == '\0')
            break;
        char *end = strchr(cursor, '/');
        size_t size = end ? (size_t)(end - cursor) : strlen(cursor);
        char name[NAME_MAX + 1];
        if (size > NAME_MAX)
            return cxr_err_set(err, CXR_ERR_IO, "a component is longer than %d bytes", NAME_MAX);
        memcpy(name, cursor, size);
        name[size] = '\0';
        char rest[PATH_MAX];
        if ((size_t)snprintf(rest, sizeof rest, "%s", end ? end + 1 : "") >= sizeof rest)
            return cxr_err_set(err, CXR_ERR_IO, "the path grew past %d bytes", PATH_MAX - 1);
        const char *after = rest;
        while (*after == '/')
            after++;
        bool last = *after == '\0';
        memmove(walk->pending, rest, strlen(rest) + 1);

        if (strcmp(name, ".") == 0)
            continue;
        if (strcmp(name, "..") == 0) {
            if (walk->depth == 0 && strcmp(root->real, "/") == 0)
                continue; /* "/.." is "/" (cxrd infer's root) */
            if (walk->depth == 0)
                return cxr_err_set(err, CXR_ERR_INVALID_ARG, "outside the allowed root %s",
                                   root->real);
            walk_pop_to(walk, walk->depth - 1);
            continue;
        }
        int here = walk->fds[walk->depth];
        if (last && mode == CXR_PATH_OPEN_FILE) {
            int fd = openat(here, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) {
                *out = fd;
                return CXR_OK;
            }
            if (errno != ELOOP)
                return walk_error(errno, "open", err);
            enum cxr_status status = walk_follow(walk, root, name, rest, &links, err);
            if (status != CXR_OK)
                return status;
            continue;
        }
        if (walk->depth == WALK_MAX_DEPTH)
            return cxr_err_set(err, CXR_ERR_IO, "more than %d nested folders", WALK_MAX_DEPTH);
        int fd = openat(here, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            walk->fds[++walk->depth] = fd;
            continue;
        }
        int saved = errno;
        if (saved == ENOENT && mode == CXR_PATH_OPEN_FOLDER_CREATE && created++ < 64) {
            if (mkdirat(here, name, 0755) != 0 && errno != EEXIST)
                return walk_error(errno, "mkdir", err);
            /* Look it up again: what is there now may be another writer's, or a symlink. */
            if (walk_splice(walk, name, rest, err) != CXR_OK)
                return CXR_ERR_NOMEM;
            continue;
        }
        if (saved != ELOOP && saved != ENOTDIR)
            return walk_error(saved, "open", err);
        enum cxr_status status = walk_follow(walk, root, name, rest, &links, err);
        if (status != CXR_OK)
            return status;
    }
    /* The path names a folder: open it for use (O_PATH descriptors cannot be read or locked). */
    int flags = mode == CXR_PATH_OPEN_FILE ? O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC
                                           : O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    int fd = openat(walk->fds[walk->depth], ".", flags);
    if (fd < 0)
        return walk_error(errno, "open", err);
    *out = fd;
    return CXR_OK;
}

enum cxr_status cxr_path_open_beneath(const struct cxr_path_root *root, const char *path,
                                      enum cxr_path_open_mode mode, int *fd, struct cxr_err *err)
{
    const char *relative = below_root(root, path);
    if (relative == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "outside the allowed root %s", root->real);
    if (mode != CXR_PATH_OPEN_FOLDER_CREATE) {
        int flags = mode == CXR_PATH_OPEN_FILE ? O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC
                                               : O_RDONLY | O_DIRECTORY | O_CLOEXEC;
        int fast = open_fast(root->fd, relative, flags);
        if (fast >= 0) {
            *fd = fast;
            return CXR_OK;
        }
    }
    struct walk walk = {.depth = 0};
    walk.fds[0] = root->fd;
    walk.pending = strdup(relative);
    if (walk.pending == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    int opened = -1;
    enum cxr_status status = walk_run(&walk, root, mode, &opened, err);
    walk_pop_to(&walk, 0);
    free(walk.pending);
    if (status == CXR_OK)
        *fd = opened;
    return status;
}
