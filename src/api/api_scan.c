/* The .dcm files under a folder, recursively, as bulk inference and `cxrd infer DIR` take them:
 * regular files and symlinks whose name ends in .dcm (any case), sorted by path. A symlinked
 * file is opened later like any input, beneath the input root: one that leads out of it is
 * skipped with the reason, so every .dcm name is analysed or counted as skipped. Symlinked
 * folders are not entered (they could loop or lead out of the root). A sub-folder that cannot
 * be listed (no permission, or nested too deep) is listed itself: opening it as an input fails
 * with the reason, so the run counts it as skipped instead of dropping its studies unseen. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_internal.h"

#define SCAN_MAX_DEPTH 32

static enum cxr_status add(struct cxr_api_file_list *list, char *path, size_t max)
{
    if (list->count == max)
        return CXR_ERR_LIMIT;
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        char **paths = realloc(list->paths, cap * sizeof *paths);
        if (paths == NULL)
            return CXR_ERR_NOMEM;
        list->paths = paths;
        list->cap = cap;
    }
    list->paths[list->count++] = path;
    return CXR_OK;
}

/* Lists the folder open as dir (closed here), whose path is folder. */
static enum cxr_status scan(struct cxr_api_file_list *list, DIR *dir, const char *folder,
                            size_t max, int depth)
{
    enum cxr_status status = CXR_OK;
    for (struct dirent *entry; status == CXR_OK && (entry = readdir(dir));) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        size_t size = strlen(folder) + strlen(entry->d_name) + 2;
        char *path = malloc(size);
        if (path == NULL) {
            status = CXR_ERR_NOMEM;
            break;
        }
        snprintf(path, size, "%s/%s", folder, entry->d_name);
        struct stat info;
        bool keep = false;
        if (fstatat(dirfd(dir), entry->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0) {
            /* vanished since readdir */
        } else if (S_ISDIR(info.st_mode)) {
            /* O_NOFOLLOW: a folder swapped for a symlink since fstatat is not entered. */
            int child = depth < SCAN_MAX_DEPTH
                                ? openat(dirfd(dir), entry->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                                : -1;
            DIR *listed = child >= 0 ? fdopendir(child) : NULL;
            if (listed != NULL) {
                status = scan(list, listed, path, max, depth + 1);
            } else {
                if (child >= 0)
                    close(child);
                cxr_log(CXR_LOG_WARN, "cannot list folder %s: counted as skipped", path);
                status = add(list, path, max);
                keep = status == CXR_OK;
            }
        } else if (cxr_api_has_dcm_extension(entry->d_name)) {
            /* Any .dcm that is not a folder: a FIFO, socket or device is listed too, and
             * skipped with its reason when opened (never read), not dropped unseen. */
            status = add(list, path, max);
            keep = status == CXR_OK;
        } else if (S_ISLNK(info.st_mode)) {
            cxr_log(CXR_LOG_WARN, "not following symlink %s", path);
        }
        if (!keep)
            free(path);
    }
    closedir(dir);
    return status;
}

static int compare_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

enum cxr_status cxr_api_file_list_scan_at(struct cxr_api_file_list *list, int folder_fd,
                                          const char *folder, size_t max)
{
    int fd = openat(folder_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (dir == NULL) {
        if (fd >= 0)
            close(fd);
        cxr_log(CXR_LOG_WARN, "cannot open folder %s", folder);
        return CXR_OK;
    }
    enum cxr_status status = scan(list, dir, folder, max, 0);
    if (status == CXR_OK && list->count > 1) /* an empty list has no array to sort */
        qsort(list->paths, list->count, sizeof *list->paths, compare_paths);
    return status;
}

enum cxr_status cxr_api_file_list_scan(struct cxr_api_file_list *list, const char *folder,
                                       size_t max)
{
    int fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        cxr_log(CXR_LOG_WARN, "cannot open folder %s", folder);
        return CXR_OK;
    }
    enum cxr_status status = cxr_api_file_list_scan_at(list, fd, folder, max);
    close(fd);
    return status;
}

void cxr_api_file_list_release(struct cxr_api_file_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->paths[i]);
    free(list->paths);
    memset(list, 0, sizeof *list);
}
