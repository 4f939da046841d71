/* INI files through libinih, kept as a flat list of (section, key, value, line) so that a
 * caller's schema can look keys up and also reject keys it does not know (typos in a config
 * must not be silently ignored). Also the small number parsers config values need. */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct ini_entry {
    char *section;
    char *key;
    char *value;
};

struct cxr_ini {
    struct ini_entry *entries;
    size_t count;
    size_t cap;
    int nomem;
};

/* A config file is small; more entries than this is a mistake, not a config. */
#define INI_MAX_ENTRIES 4096

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
    struct cxr_ini *ini = user;
    if (key == NULL)
        return 1; /* a bare [section] line */
    if (ini->count == INI_MAX_ENTRIES) {
        ini->nomem = 1;
        return 0;
    }
    if (ini->count == ini->cap) {
        size_t cap = ini->cap ? ini->cap * 2 : 32;
        struct ini_entry *entries = realloc(ini->entries, cap * sizeof *entries);
        if (entries == NULL) {
            ini->nomem = 1;
            return 0;
        }
        ini->entries = entries;
        ini->cap = cap;
    }
    struct ini_entry *entry = &ini->entries[ini->count];
    entry->section = strdup(section);
    entry->key = strdup(key);
    entry->value = strdup(value ? value : "");
    if (!entry->section || !entry->key || !entry->value) {
        free(entry->section);
        free(entry->key);
        free(entry->value);
        ini->nomem = 1;
        return 0;
    }
    ini->count++;
    return 1;
}

static enum cxr_status finish(struct cxr_ini *ini, int rc, const char *origin, struct cxr_ini **out,
                              struct cxr_err *err)
{
    enum cxr_status status = CXR_OK;
    if (ini->nomem)
        status = cxr_err_set(err, CXR_ERR_NOMEM, "config %s: out of memory or too many keys",
                             origin);
    else if (rc == -1)
        status =
                cxr_err_set(err, CXR_ERR_IO, "config %s: cannot open: %s", origin, strerror(errno));
    else if (rc == -2)
        status = cxr_err_set(err, CXR_ERR_NOMEM, "config %s: inih: out of memory", origin);
    else if (rc > 0)
        status = cxr_err_set(err, CXR_ERR_MALFORMED, "config %s: inih: syntax error on line %d",
                             origin, rc);
    if (status != CXR_OK) {
        cxr_ini_destroy(ini);
        return status;
    }
    *out = ini;
    return CXR_OK;
}

enum cxr_status cxr_ini_load(const char *path, struct cxr_ini **out, struct cxr_err *err)
{
    struct cxr_ini *ini = calloc(1, sizeof *ini);
    if (ini == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "config: out of memory");
    errno = 0;
    int rc = ini_parse(path, on_entry, ini);
    return finish(ini, rc, path, out, err);
}

enum cxr_status cxr_ini_parse(const char *text, struct cxr_ini **out, struct cxr_err *err)
{
    struct cxr_ini *ini = calloc(1, sizeof *ini);
    if (ini == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "config: out of memory");
    int rc = ini_parse_string(text, on_entry, ini);
    return finish(ini, rc, "(text)", out, err);
}

void cxr_ini_destroy(struct cxr_ini *ini)
{
    if (ini == NULL)
        return;
    for (size_t i = 0; i < ini->count; i++) {
        free(ini->entries[i].section);
        free(ini->entries[i].key);
        free(ini->entries[i].value);
    }
    free(ini->entries);
    free(ini);
}

const char *cxr_ini_get(const struct cxr_ini *ini, const char *section, const char *key)
{
    const char *found = NULL;
    for (size_t i = 0; i < ini->count; i++) {
        if (strcmp(ini->entries[i].section, section) == 0 && strcmp(ini->entries[i].key, key) == 0)
            found = ini->entries[i].value;
    }
    return found;
}

size_t cxr_ini_count(const struct cxr_ini *ini)
{
    return ini->count;
}

void cxr_ini_entry(const struct cxr_ini *ini, size_t i, const char **section, const char **key,
                   const char **value)
{
    *section = ini->entries[i].section;
    *key = ini->entries[i].key;
    *value = ini->entries[i].value;
}

/* Parses leading decimal digits; returns the count of digits consumed (0 if none) and fails on
 * overflow. */
static size_t parse_digits(const char *text, uint64_t *value, int *overflow)
{
    uint64_t result = 0;
    size_t i = 0;
    *overflow = 0;
    for (; text[i] >= '0' && text[i] <= '9'; i++) {
        unsigned digit = (unsigned)(text[i] - '0');
        if (result > (UINT64_MAX - digit) / 10)
            *overflow = 1;
        else
            result = result * 10 + digit;
    }
    *value = result;
    return i;
}

enum cxr_status cxr_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *value)
{
    uint64_t result;
    int overflow;
    size_t used = parse_digits(text, &result, &overflow);
    if (used == 0 || text[used] != '\0' || overflow || result < min || result > max)
        return CXR_ERR_INVALID_ARG;
    *value = result;
    return CXR_OK;
}

enum cxr_status cxr_parse_size(const char *text, size_t *value)
{
    uint64_t number;
    int overflow;
    size_t used = parse_digits(text, &number, &overflow);
    if (used == 0 || overflow)
        return CXR_ERR_INVALID_ARG;
    unsigned shift = 0;
    const char *unit = text + used;
    if (*unit == 'k' || *unit == 'K')
        shift = 10;
    else if (*unit == 'm' || *unit == 'M')
        shift = 20;
    else if (*unit == 'g' || *unit == 'G')
        shift = 30;
    else if (*unit != '\0')
        return CXR_ERR_INVALID_ARG;
    if (shift && unit[1] != '\0')
        return CXR_ERR_INVALID_ARG;
    if (number > (SIZE_MAX >> shift))
        return CXR_ERR_INVALID_ARG;
    *value = (size_t)number << shift;
    return CXR_OK;
}

enum cxr_status cxr_parse_duration(const char *text, uint64_t *seconds)
{
    uint64_t number;
    int overflow;
    size_t used = parse_digits(text, &number, &overflow);
    if (used == 0 || overflow)
        return CXR_ERR_INVALID_ARG;
    uint64_t factor = 1;
    const char *unit = text + used;
    switch (*unit) {
    case '\0':
    case 's':
        break;
    case 'm':
        factor = 60;
        break;
    case 'h':
        factor = 3600;
        break;
    case 'd':
        factor = 86400;
        break;
    default:
        return CXR_ERR_INVALID_ARG;
    }
    if (*unit != '\0' && unit[1] != '\0')
        return CXR_ERR_INVALID_ARG;
    if (number > UINT64_MAX / factor)
        return CXR_ERR_INVALID_ARG;
    *seconds = number * factor;
    return CXR_OK;
}

enum cxr_status cxr_parse_bool(const char *text, int *value)
{
    static const char *const truthy[] = {"true", "yes", "on", "1"};
    static const char *const falsy[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(text, truthy[i]) == 0) {
            *value = 1;
            return CXR_OK;
        }
        if (strcmp(text, falsy[i]) == 0) {
            *value = 0;
            return CXR_OK;
        }
    }
    return CXR_ERR_INVALID_ARG;
}
