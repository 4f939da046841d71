/* Whole-file reads with a size cap, and atomic replacement of groups of output files: temp file
 * in the target folder, fsync, rename, fsync of the folder, so a crash or a failed request
 * never leaves a partial file behind; all of it relative to a descriptor of the folder, and
 * the temp files a killed writer left are swept. */
#define _GNU_SOURCE /* O_PATH */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

enum cxr_status cxr_file_read(const char *path, size_t max_bytes, struct cxr_buf *out,
                              struct cxr_err *err)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (a FIFO swapped in after a path
     * was validated would block a worker for good); cxr_file_read_fd then refuses it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return cxr_err_set(err, errno == ENOENT ? CXR_ERR_NOT_FOUND : CXR_ERR_IO, "open %s: %s",
                           path, strerror(errno));
    enum cxr_status status = cxr_file_read_fd(fd, path, max_bytes, out, err);
    close(fd);
    return status;
}

enum cxr_status cxr_file_read_fd(int fd, const char *path, size_t max_bytes, struct cxr_buf *out,
                                 struct cxr_err *err)
{
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode))
        return cxr_err_set(err, CXR_ERR_IO, "%s: not a regular file", path);
    if ((uint64_t)info.st_size > max_bytes)
        return cxr_err_set(err, CXR_ERR_LIMIT, "%s: %lld bytes, more than the limit of %zu", path,
                           (long long)info.st_size, max_bytes);
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
    if (status == CXR_ERR_NOMEM || status == CXR_ERR_LIMIT)
        cxr_err_set(err, status, "%s: %s", path, cxr_status_name(status));
    if (status != CXR_OK)
        out->len = start;
    return status;
}

struct staged_file {
    char *name;              /* the target's name in the folder */
    char temp[NAME_MAX + 1]; /* "" once renamed or removed */
    int temp_fd;             /* open (and locked) until renamed or removed; -1 otherwise */
    int remove_only;         /* unlink name at commit instead of renaming */
};

/* A run writes at most a handful of files; a fixed cap keeps the bookkeeping trivial. */
#define GROUP_MAX_FILES 16

struct cxr_file_group {
    int folder_fd;
    char *folder; /* for messages */
    size_t count;
    struct staged_file files[GROUP_MAX_FILES];
};

static bool is_temp_name(const char *name)
{
    size_t length = strlen(name);
    static const char marker[] = ".tmp-";
    size_t marker_length = sizeof marker - 1;
    if (name[0] != '.' || length < 1 + 1 + marker_length + 6)
        return false;
    if (memcmp(name + length - 6 - marker_length, marker, marker_length) != 0)
        return false;
    for (size_t i = length - 6; i < length; i++) {
        if (!isalnum((unsigned char)name[i]))
            return false;
    }
    return true;
}

/* Removes name in folder_fd when it is a stale temp file (see util.h). */
static bool remove_if_stale(int folder_fd, const char *name, time_t now)
{
    struct stat info;
    if (fstatat(folder_fd, name, &info, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(info.st_mode) ||
        info.st_mtime > now - CXR_FILE_TEMP_STALE_SECONDS)
        return false;
    int fd = openat(folder_fd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool removed = false;
    struct stat opened, now_there;
    /* A lock we can take means no live writer holds this file; the same inode still under the
     * name means it was not renamed into place meanwhile. */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &opened) == 0 &&
        fstatat(folder_fd, name, &now_there, AT_SYMLINK_NOFOLLOW) == 0 &&
        opened.st_ino == now_there.st_ino && opened.st_dev == now_there.st_dev)
        removed = unlinkat(folder_fd, name, 0) == 0;
    close(fd);
    return removed;
}

static size_t sweep(int folder_fd, int depth, size_t *budget, time_t now)
{
    int fd = openat(folder_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (dir == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    size_t removed = 0;
    for (struct dirent *entry; *budget > 0 && (entry = readdir(dir));) {
        --*budget;
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (is_temp_name(name)) {
            removed += remove_if_stale(dirfd(dir), name, now);
            continue;
        }
        if (depth == 0 || (entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN))
            continue;
        int child = openat(dirfd(dir), name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (child >= 0) {
            removed += sweep(child, depth - 1, budget, now);
            close(child);
        }
    }
    closedir(dir);
    return removed;
}

size_t cxr_file_temps_sweep(int folder_fd, int max_depth, size_t *budget)
{
    return sweep(folder_fd, max_depth, budget, time(NULL));
}

enum cxr_status cxr_file_group_create_at(int folder_fd, const char *folder,
                                         struct cxr_file_group **out, struct cxr_err *err)
{
    struct cxr_file_group *group = calloc(1, sizeof *group);
    if (group == NULL || (group->folder = strdup(folder)) == NULL) {
        free(group);
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    }
    /* A description of its own, not a dup: flock belongs to the open file description, and
     * two groups of one folder must exclude each other. */
    group->folder_fd = openat(folder_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (group->folder_fd < 0) {
        enum cxr_status status = cxr_err_set(err, CXR_ERR_IO, "%s: %s", folder, strerror(errno));
        free(group->folder);
        free(group);
        return status;
    }
    size_t length = strlen(group->folder);
    while (length > 1 && group->folder[length - 1] == '/')
        group->folder[--length] = '\0';
    *out = group;
    return CXR_OK;
}

enum cxr_status cxr_file_group_create(const char *folder, struct cxr_file_group **out,
                                      struct cxr_err *err)
{
    int fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cxr_err_set(err, CXR_ERR_IO, "open %s: %s", folder, strerror(errno));
    enum cxr_status status = cxr_file_group_create_at(fd, folder, out, err);
    close(fd);
    return status;
}

/* Sets *entry only on success; every failure returns through cxr_err_set, which returns its
 * (non-OK) status, but GCC cannot see that across files and warns at -O3 that the caller may
 * use *entry uninitialised, hence the callers' NULL initialisers. */
static enum cxr_status add_entry(struct cxr_file_group *group, const char *name,
                                 struct staged_file **entry, struct cxr_err *err)
{
    if (strchr(name, '/') || name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "bad output file name '%s'", name);
    /* Room for ".<name>.tmp-XXXXXX" in one file name. */
    if (strlen(name) + 12 > NAME_MAX)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "output file name '%s' is too long", name);
    if (group->count == GROUP_MAX_FILES)
        return cxr_err_set(err, CXR_ERR_LIMIT, "too many files in one output group");
    struct staged_file *file = &group->files[group->count];
    file->name = strdup(name);
    if (file->name == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory");
    file->temp[0] = '\0';
    file->temp_fd = -1;
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

/* Creates ".<name>.tmp-XXXXXX" (mkstemp's pattern, which has no *at form) in the folder and
 * locks it before anything else happens to it. */
static int create_temp(int folder_fd, const char *name, char *temp, size_t size)
{
    static const char letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned char random[6];
        if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            uint64_t mix = (uint64_t)now.tv_nsec * 0x9E3779B97F4A7C15u + (uint64_t)attempt;
            memcpy(random, &mix, sizeof random);
        }
        char suffix[7];
        for (int i = 0; i < 6; i++)
            suffix[i] = letters[random[i] % (sizeof letters - 1)];
        suffix[6] = '\0';
        snprintf(temp, size, ".%s.tmp-%s", name, suffix);
        int fd =
                openat(folder_fd, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
                ;
            return fd;
        }
        if (errno != EEXIST)
            return -1;
    }
    return -1;
}

static void drop_entry(struct cxr_file_group *group, struct staged_file *file)
{
    if (file->temp[0])
        unlinkat(group->folder_fd, file->temp, 0);
    if (file->temp_fd >= 0)
        close(file->temp_fd);
    file->temp[0] = '\0';
    file->temp_fd = -1;
}

enum cxr_status cxr_file_group_stage(struct cxr_file_group *group, const char *name,
                                     const void *bytes, size_t size, struct cxr_err *err)
{
    struct staged_file *file = NULL; /* set by add_entry when it succeeds */
    enum cxr_status status = add_entry(group, name, &file, err);
    if (status != CXR_OK)
        return status;
    file->temp_fd = create_temp(group->folder_fd, name, file->temp, sizeof file->temp);
    if (file->temp_fd < 0) {
        status = cxr_err_set(err, cxr_status_of_errno(errno), "create a temp file for %s/%s: %s",
                             group->folder, name, strerror(errno));
        file->temp[0] = '\0';
        free(file->name);
        return status;
    }
    int saved = 0;
    if (write_all(file->temp_fd, bytes, size) != CXR_OK || fchmod(file->temp_fd, 0644) != 0 ||
        fsync(file->temp_fd) != 0)
        saved = errno;
    if (saved) {
        status = cxr_err_set(err, cxr_status_of_errno(saved), "write %s/%s: %s", group->folder,
                             file->temp, strerror(saved));
        drop_entry(group, file);
        free(file->name);
        return status;
    }
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
    for (size_t i = 0; i < group->count; i++)
        drop_entry(group, &group->files[i]);
}

static enum cxr_status rename_all(struct cxr_file_group *group, struct cxr_err *err)
{
    /* rename(2) cannot replace a folder: find that before the first rename, so such a failure
     * leaves every target as it was. */
    for (size_t i = 0; i < group->count; i++) {
        struct stat info;
        if (fstatat(group->folder_fd, group->files[i].name, &info, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(info.st_mode))
            return cxr_err_set(err, CXR_ERR_IO, "%s/%s is a folder, not a file", group->folder,
                               group->files[i].name);
    }
    for (size_t i = 0; i < group->count; i++) {
        struct staged_file *file = &group->files[i];
        if (file->remove_only) {
            if (unlinkat(group->folder_fd, file->name, 0) != 0 && errno != ENOENT)
                return cxr_err_set(err, CXR_ERR_IO, "remove %s/%s: %s", group->folder, file->name,
                                   strerror(errno));
            continue;
        }
        if (renameat(group->folder_fd, file->temp, group->folder_fd, file->name) != 0)
            return cxr_err_set(err, cxr_status_of_errno(errno), "rename to %s/%s: %s",
                               group->folder, file->name, strerror(errno));
        file->temp[0] = '\0';
        close(file->temp_fd); /* releases its lock: it is the target now */
        file->temp_fd = -1;
    }
    return CXR_OK;
}

enum cxr_status cxr_file_group_commit(struct cxr_file_group *group, struct cxr_err *err)
{
    /* Groups committed to the same folder at the same moment (two requests for one patient,
     * in this process or another) take turns, and readers that take LOCK_SH on the folder
     * (docs/file-safety.md) never see the set part-way through. */
    while (flock(group->folder_fd, LOCK_EX) != 0 && errno == EINTR)
        ;
    enum cxr_status status = rename_all(group, err);
    drop_temps(group);
    /* The renames are durable only once the folder itself is on disk. */
    if (status == CXR_OK && fsync(group->folder_fd) != 0 && errno != EINVAL)
        status = cxr_err_set(err, cxr_status_of_errno(errno), "fsync %s: %s", group->folder,
                             strerror(errno));
    flock(group->folder_fd, LOCK_UN);
    return status;
}

void cxr_file_group_destroy(struct cxr_file_group *group)
{
    if (group == NULL)
        return;
    drop_temps(group);
    for (size_t i = 0; i < group->count; i++)
        free(group->files[i].name);
    close(group->folder_fd);
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
