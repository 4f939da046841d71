/* Which files of one run (a bulk request or a `cxrd infer` run) wrote which patient folder. Two
 * studies with the same patient ID write the same folder, and the later replaces the earlier
 * (the output layout is per patient): the ledger finds such groups at the end of the run so the
 * run can say so, naming the file whose result the folder now holds; every result stays in the
 * audit log by SOP Instance UID. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"

struct entry {
    char *patient_id;
    char *input_path;
    char *sop_instance_uid;
};

struct cxr_api_ledger {
    pthread_mutex_t lock;
    struct entry *entries;
    size_t count, cap;
};

enum cxr_status cxr_api_ledger_create(struct cxr_api_ledger **out)
{
    struct cxr_api_ledger *ledger = calloc(1, sizeof *ledger);
    if (ledger == NULL)
        return CXR_ERR_NOMEM;
    pthread_mutex_init(&ledger->lock, NULL);
    *out = ledger;
    return CXR_OK;
}

void cxr_api_ledger_destroy(struct cxr_api_ledger *ledger)
{
    if (ledger == NULL)
        return;
    for (size_t i = 0; i < ledger->count; i++) {
        free(ledger->entries[i].patient_id);
        free(ledger->entries[i].input_path);
        free(ledger->entries[i].sop_instance_uid);
    }
    free(ledger->entries);
    pthread_mutex_destroy(&ledger->lock);
    free(ledger);
}

enum cxr_status cxr_api_ledger_add(struct cxr_api_ledger *ledger, const char *patient_id,
                                   const char *input_path, const char *sop_instance_uid)
{
    struct entry entry = {strdup(patient_id), strdup(input_path), strdup(sop_instance_uid)};
    enum cxr_status status = CXR_OK;
    pthread_mutex_lock(&ledger->lock);
    if (entry.patient_id == NULL || entry.input_path == NULL || entry.sop_instance_uid == NULL) {
        status = CXR_ERR_NOMEM;
    } else if (ledger->count == ledger->cap) {
        size_t cap = ledger->cap ? ledger->cap * 2 : 64;
        struct entry *grown = realloc(ledger->entries, cap * sizeof *grown);
        if (grown == NULL) {
            status = CXR_ERR_NOMEM;
        } else {
            ledger->entries = grown;
            ledger->cap = cap;
        }
    }
    if (status == CXR_OK)
        ledger->entries[ledger->count++] = entry;
    pthread_mutex_unlock(&ledger->lock);
    if (status != CXR_OK) {
        free(entry.patient_id);
        free(entry.input_path);
        free(entry.sop_instance_uid);
    }
    return status;
}

static int by_patient_then_path(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int order = strcmp(x->patient_id, y->patient_id);
    return order ? order : strcmp(x->input_path, y->input_path);
}

/* The SOP Instance UID in the folder's predictions JSON: the result the folder holds now. */
static char *folder_sop(const char *output_folder, const char *patient_id)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s_predictions.json", output_folder, patient_id, patient_id);
    /* cxr_file_read, not json_load_file's fopen: a FIFO put in the file's place must not block
     * the worker that answers the run (it opens O_NONBLOCK and reads regular files only). */
    struct cxr_buf text = CXR_BUF_INIT(0);
    json_t *root = NULL;
    if (cxr_file_read(path, 1 << 20, &text, NULL) == CXR_OK)
        root = json_loadb((const char *)text.data, text.len, 0, NULL);
    cxr_buf_release(&text);
    const char *uid = json_string_value(
            json_object_get(json_object_get(root, "metadata"), "sop_instance_uid"));
    char *copy = uid ? strdup(uid) : NULL;
    json_decref(root);
    return copy;
}

static const char *shown(const char *path, const char *strip)
{
    size_t length = strip ? strlen(strip) : 0;
    if (length && strncmp(path, strip, length) == 0 && path[length] == '/')
        return path + length + 1;
    return path;
}

size_t cxr_api_ledger_collisions(struct cxr_api_ledger *ledger, const char *output_folder,
                                 const char *strip, size_t max_shown, struct cxr_buf *text)
{
    pthread_mutex_lock(&ledger->lock);
    if (ledger->count > 1) /* an empty ledger has no array to sort */
        qsort(ledger->entries, ledger->count, sizeof *ledger->entries, by_patient_then_path);
    size_t groups = 0;
    for (size_t first = 0, end; first < ledger->count; first = end) {
        for (end = first + 1; end < ledger->count && strcmp(ledger->entries[end].patient_id,
                                                            ledger->entries[first].patient_id) == 0;
             end++)
            ;
        if (end - first < 2)
            continue;
        if (++groups > max_shown)
            continue;
        const struct entry *group = ledger->entries + first;
        char *held = folder_sop(output_folder, group->patient_id);
        const char *holder = NULL;
        cxr_buf_printf(text, "%s%s: ", groups > 1 ? "; " : "", group->patient_id);
        for (size_t i = 0; i < end - first; i++) {
            cxr_buf_printf(text, "%s%s", i ? ", " : "", shown(group[i].input_path, strip));
            if (held && strcmp(held, group[i].sop_instance_uid) == 0)
                holder = group[i].input_path;
        }
        if (holder)
            cxr_buf_printf(text, " (the folder holds %s)", shown(holder, strip));
        free(held);
    }
    if (groups > max_shown)
        cxr_buf_printf(text, "; ...");
    pthread_mutex_unlock(&ledger->lock);
    return groups;
}
