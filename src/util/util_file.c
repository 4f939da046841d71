/* Whole-file reads with a size cap, and atomic replacement of groups of output files: temp file
 * in the target folder, fsync, rename, fsync of the folder, so a crash or a failed request
 * never leaves a partial file behind. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

enum cxr_status cxr_file_read(const char *path, size_t max_bytes, struct cxr_buf *out,
                              struct cxr_err *err)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (a FIFO swapped in after a path
     * was validated would block a worker for good); the fstat below then refuses it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return cxr_err_set(err, errno == ENOENT ? CXR_ERR_NOT_FOUND : CXR_ERR_IO, "open %s: %s",
                           path, strerror(errno));
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        close(fd);
        return cxr_err_set(err, CXR_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)info.st_size > max_bytes) {
        close(fd);
        return cxr_err_set(err, CXR_ERR_LIMIT, "%s: %lld bytes, more than the limit of %zu", path,
                           (long long)info.st_size, max_bytes);
    }
    size_t start = out->len;
    /* One byte more than the file, so the read that finds its end needs no reallocation. */
    enum cxr_status status = cxr_buf_reserve_exact(out, (size_t)info.st_size + 1);
    while (status == CXR_OK) {
        if (out->len - start > max_bytes) {
            status = cxr_err_set(err, CXR_ERR_LIMIT, "%s: grew past the limit of %zu bytes", path,
                                 max_bytes);
            break;
        }
        if (out->cap == out->len)
            status = cxr_buf_reserve(out, 65536);
        if (status != CXR_OK)
            break;
        ssize_t got = read(fd, out->data + out->len, out->cap - out->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            status = cxr_err_set(err, CXR_ERR_IO, "read %s: %s", path, strerror(errno));
            break;
        }
        if (got == 0)
            break;
        out->len += (size_t)got;
    }
    close(fd);
    if (status == CXR_ERR_NOMEM || status == CXR_ERR_LIMIT)
        cxr_err_set(err, status, "%s: %s", path, cxr_status_name(status));
    if (status != CXR_OK)
        out->len = start;
    return status;
}

struct staged_file {
    char *temp_path; /* NULL once renamed */
    char *final_path;
    int remove_only; /* unlink final_path at commit instead of renaming */
};

/* A run writes at most a handful of files; a fixed cap keeps the bookkeeping trivial. */
#define GROUP_MAX_FILES 16

struct cxr_file_group {
    char *folder;
    size_t count;
    struct staged_file files[GROUP_MAX_FILES];
};

enum cxr_status cxr_file_group_create(const char *folder, struct cxr_file_group **out,
                                      struct cxr_err *err)
{
    struct cxr_file_group *group = calloc(1, sizeof *group);
    if (group == NULL || (group->folder = strdup(folder)) == NULL) {
        free(group);
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    }
    size_t length = strlen(group->folder);
    while (length > 1 && group->folder[length - 1] == '/')
        group->folder[--length] = '\0';
    *out = group;
    return CXR_OK;
}

static char *join(const char *folder, const char *prefix, const char *name, const char *suffix)
{
    size_t size = strlen(folder) + strlen(prefix) + strlen(name) + strlen(suffix) + 2;
    char *path = malloc(size);
    if (path)
        snprintf(path, size, "%s/%s%s%s", folder, prefix, name, suffix);
    return path;
}

/* Sets *entry only on success; every failure returns through cxr_err_set, which returns its
 * (non-OK) status, but GCC cannot see that across files and warns at -O3 that the caller may
 * use *entry uninitialised, hence the callers' NULL initialisers. */
static enum cxr_status add_entry(struct cxr_file_group *group, const char *name,
                                 struct staged_file **entry, struct cxr_err *err)
{
    if (strchr(name, '/') || name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "bad output file name '%s'", name);
    if (group->count == GROUP_MAX_FILES)
        return cxr_err_set(err, CXR_ERR_LIMIT, "too many files in one output group");
    struct staged_file *file = &group->files[group->count];
    file->final_path = join(group->folder, "", name, "");
    if (file->final_path == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    file->temp_path = NULL;
    file->remove_only = 0;
    *entry = file;
    return CXR_OK;
}

static enum cxr_status write_all(int fd, const unsigned char *bytes, size_t size)
{
    while (size) {
        ssize_t done = write(fd, bytes, size);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0)
            return CXR_ERR_IO;
        bytes += done;
        size -= (size_t)done;
    }
    return CXR_OK;
}

enum cxr_status cxr_file_group_stage(struct cxr_file_group *group, const char *name,
                                     const void *bytes, size_t size, struct cxr_err *err)
{
    struct staged_file *file = NULL; /* set by add_entry when it succeeds */
    enum cxr_status status = add_entry(group, name, &file, err);
    if (status != CXR_OK)
        return status;
    char *temp = join(group->folder, ".", name, ".tmp-XXXXXX");
    if (temp == NULL) {
        free(file->final_path);
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    }
    int fd = mkstemp(temp);
    if (fd < 0) {
        status = cxr_err_set(err, CXR_ERR_IO, "create %s: %s", temp, strerror(errno));
        free(temp);
        free(file->final_path);
        return status;
    }
    int saved = 0;
    if (write_all(fd, bytes, size) != CXR_OK || fchmod(fd, 0644) != 0 || fsync(fd) != 0)
        saved = errno;
    if (close(fd) != 0 && saved == 0)
        saved = errno;
    if (saved) {
        unlink(temp);
        status = cxr_err_set(err, CXR_ERR_IO, "write %s: %s", temp, strerror(saved));
        free(temp);
        free(file->final_path);
        return status;
    }
    file->temp_path = temp;
    group->count++;
    return CXR_OK;
}

enum cxr_status cxr_file_group_remove(struct cxr_file_group *group, const char *name,
                                      struct cxr_err *err)
{
    struct staged_file *file = NULL; /* set by add_entry when it succeeds */
    enum cxr_status status = add_entry(group, name, &file, err);
    if (status != CXR_OK)
        return status;
    file->remove_only = 1;
    group->count++;
    return CXR_OK;
}

static void drop_temps(struct cxr_file_group *group)
{
    for (size_t i = 0; i < group->count; i++) {
        if (group->files[i].temp_path) {
            unlink(group->files[i].temp_path);
            free(group->files[i].temp_path);
            group->files[i].temp_path = NULL;
        }
    }
}

static enum cxr_status rename_all(struct cxr_file_group *group, struct cxr_err *err)
{
    /* rename(2) cannot replace a folder: find that before the first rename, so such a failure
     * leaves every target as it was. */
    for (size_t i = 0; i < group->count; i++) {
        struct stat info;
        if (lstat(group->files[i].final_path, &info) == 0 && S_ISDIR(info.st_mode))
            return cxr_err_set(err, CXR_ERR_IO, "%s is a folder, not a file",
                               group->files[i].final_path);
    }
    for (size_t i = 0; i < group->count; i++) {
        struct staged_file *file = &group->files[i];
        if (file->remove_only) {
            if (unlink(file->final_path) != 0 && errno != ENOENT)
                return cxr_err_set(err, CXR_ERR_IO, "remove %s: %s", file->final_path,
                                   strerror(errno));
            continue;
        }
        if (rename(file->temp_path, file->final_path) != 0)
            return cxr_err_set(err, CXR_ERR_IO, "rename to %s: %s", file->final_path,
                               strerror(errno));
        free(file->temp_path);
        file->temp_path = NULL;
    }
    return CXR_OK;
}

enum cxr_status cxr_file_group_commit(struct cxr_file_group *group, struct cxr_err *err)
{
    int dir = open(group->folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        drop_temps(group);
        return cxr_err_set(err, CXR_ERR_IO, "open %s: %s", group->folder, strerror(errno));
    }
    /* Groups committed to the same folder at the same moment (two requests for one patient,
     * in this process or another) take turns, so the folder always holds one group's set. */
    while (flock(dir, LOCK_EX) != 0 && errno == EINTR)
        ;
    enum cxr_status status = rename_all(group, err);
    drop_temps(group);
    /* The renames are durable only once the folder itself is on disk. */
    if (status == CXR_OK && fsync(dir) != 0 && errno != EINVAL)
        status = cxr_err_set(err, CXR_ERR_IO, "fsync %s: %s", group->folder, strerror(errno));
    close(dir); /* releases the lock */
    return status;
}

void cxr_file_group_destroy(struct cxr_file_group *group)
{
    if (group == NULL)
        return;
    drop_temps(group);
    for (size_t i = 0; i < group->count; i++)
        free(group->files[i].final_path);
    free(group->folder);
    free(group);
}

enum cxr_status cxr_file_write_atomic(const char *path, const void *bytes, size_t size,
                                      struct cxr_err *err)
{
    const char *slash = strrchr(path, '/');
    if (path[0] == '\0' || (slash != NULL && slash[1] == '\0'))
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "'%s' is not a path to a file", path);
    /* A bare file name lives in the current folder. */
    const char *name = slash ? slash + 1 : path;
    char *folder = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (folder == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    struct cxr_file_group *group = NULL;
    enum cxr_status status = cxr_file_group_create(folder, &group, err);
    free(folder);
    if (status == CXR_OK)
        status = cxr_file_group_stage(group, name, bytes, size, err);
    if (status == CXR_OK)
        status = cxr_file_group_commit(group, err);
    cxr_file_group_destroy(group);
    return status;
}
