/* Shared foundations of every cxrd module: status codes and error messages, input limits,
 * growable byte buffers with a maximum, and logging.
 *
 * Ownership rule for the whole code base: an output pointer is written only on success; on
 * failure the callee frees what it allocated and the inputs stay the caller's. */
#ifndef CXR_UTIL_H
#define CXR_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CXR_PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))

/* Append-only: values are stored in logs and tests, never renumber. */
enum cxr_status {
    CXR_OK = 0,
    CXR_ERR_NOMEM = 1,       /* an allocation failed */
    CXR_ERR_IO = 2,          /* reading or writing a file failed */
    CXR_ERR_INVALID_ARG = 3, /* the caller passed something unusable */
    CXR_ERR_LIMIT = 4,       /* input exceeds one of struct cxr_limits */
    CXR_ERR_MALFORMED = 5,   /* input is not well-formed (truncated, bad lengths, ...) */
    CXR_ERR_UNSUPPORTED = 6, /* well-formed but not handled (transfer syntax, operator, ...) */
    CXR_ERR_NOT_FOUND = 7,   /* a file, element or key is absent */
    CXR_ERR_INTERNAL = 8,    /* a bug or a third-party library failure */
    CXR_ERR_NO_SPACE = 9, /* the file system is full or read-only: the same write may work later */
};

/* Human-readable error. The first error set wins, so the root cause survives the unwinding
 * of callers that add their own context. Always optional: functions accept err == NULL. */
struct cxr_err {
    enum cxr_status status;
    char message[512];
};

#define CXR_ERR_INIT                                                                               \
    {                                                                                              \
        CXR_OK,                                                                                    \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* Records status and message in err unless err is NULL or already holds an error.
 * Returns status, so callers can write `return cxr_err_set(err, CXR_ERR_IO, "...")`. */
enum cxr_status cxr_err_set(struct cxr_err *err, enum cxr_status status, const char *fmt, ...)
        CXR_PRINTF(3, 4);

/* Short constant name of a status ("CXR_ERR_MALFORMED"); never NULL. */
const char *cxr_status_name(enum cxr_status status);
/* The status of a failed file operation's errno: CXR_ERR_NO_SPACE for ENOSPC, EDQUOT and EROFS
 * (the operator can make room; a bulk job waits for it), else CXR_ERR_IO. */
enum cxr_status cxr_status_of_errno(int error);

/* Every limit applied to untrusted input, in one place. cxr_limits_default() gives the values
 * the server uses unless its configuration overrides them. */
struct cxr_limits {
    size_t max_file_bytes;      /* a DICOM or ONNX file read into memory */
    size_t max_image_pixels;    /* rows * columns of one frame */
    size_t max_decoded_bytes;   /* decoded pixel data of one frame */
    uint32_t max_nesting_depth; /* DICOM sequences within sequences */
    uint32_t max_elements;      /* DICOM data elements in one file, all levels */
    size_t max_body_bytes;      /* HTTP request body */
    size_t max_header_bytes;    /* HTTP request headers, all together */
};

struct cxr_limits cxr_limits_default(void);

/* A growable byte buffer that refuses to grow past max (0 means SIZE_MAX). Not thread safe.
 * Zero-initialise or use CXR_BUF_INIT(max); release with cxr_buf_release. */
struct cxr_buf {
    unsigned char *data;
    size_t len;
    size_t cap;
    size_t max;
};

#define CXR_BUF_INIT(max_bytes)                                                                    \
    {                                                                                              \
        NULL, 0, 0, (max_bytes)                                                                    \
    }

/* Makes room for `extra` more bytes. CXR_ERR_LIMIT past max, CXR_ERR_NOMEM if out of memory;
 * on failure the buffer is unchanged. */
enum cxr_status cxr_buf_reserve(struct cxr_buf *buf, size_t extra);
/* As cxr_buf_reserve, but grows to exactly len + extra bytes (no doubling): for a buffer whose
 * final size is known, such as a whole file that then becomes a long-lived object's bytes. */
enum cxr_status cxr_buf_reserve_exact(struct cxr_buf *buf, size_t extra);
enum cxr_status cxr_buf_append(struct cxr_buf *buf, const void *bytes, size_t count);
enum cxr_status cxr_buf_printf(struct cxr_buf *buf, const char *fmt, ...) CXR_PRINTF(2, 3);
/* Frees the storage and resets len and cap; keeps max. NULL is a no-op. */
void cxr_buf_release(struct cxr_buf *buf);

/* Length of the valid UTF-8 sequence at text, of which left bytes may be read (RFC 3629, as
 * jansson checks it: no overlong forms, surrogates or code points past U+10FFFF); 0 when there
 * is none. left must be at least 1. */
size_t cxr_utf8_sequence(const unsigned char *text, size_t left);

enum cxr_log_level {
    CXR_LOG_DEBUG = 0,
    CXR_LOG_INFO = 1,
    CXR_LOG_WARN = 2,
    CXR_LOG_ERROR = 3,
};

enum cxr_log_format {
    CXR_LOG_TEXT = 0, /* "<time> <level> <message>" */
    CXR_LOG_JSON = 1, /* {"time":..,"level":..,"message":..} or, for cxr_log_fields, the fields */
};

/* Messages below the level are dropped. Thread safe, also while other threads log (SIGHUP). */
void cxr_log_set_level(enum cxr_log_level level);
void cxr_log_set_format(enum cxr_log_format format);
/* Parses "text" or "json"; returns CXR_ERR_INVALID_ARG otherwise. */
enum cxr_status cxr_log_format_parse(const char *name, enum cxr_log_format *format);
/* Parses "debug", "info", "warn" or "error"; returns CXR_ERR_INVALID_ARG otherwise. */
enum cxr_status cxr_log_level_parse(const char *name, enum cxr_log_level *level);
/* One line to stderr: UTC time, level, message. Thread safe (one write per line). Whatever the
 * message quotes, the line is one line of UTF-8: control characters are escaped (\u000a),
 * bytes that are not UTF-8 become '?', and a line too long is cut between characters. */
void cxr_log(enum cxr_log_level level, const char *fmt, ...) CXR_PRINTF(2, 3);

/* One structured field of a log line: a string (text, NULL to leave the field out) or a
 * number (is_number). */
struct cxr_log_field {
    const char *key;
    const char *text;
    double number;
    bool is_number;
};
/* One line of key=value pairs after event (text), or one JSON object with "event" and each field
 * as a member (json). Thread safe. */
void cxr_log_fields(enum cxr_log_level level, const char *event, const struct cxr_log_field *fields,
                    size_t count);

/* ---- INI files (util_config.c, libinih) ---------------------------------------------------
 * A parsed INI file: every `key = value` of every [section], in file order. Lookups are exact
 * (case-sensitive). The schema (which keys exist, their types) belongs to the caller. */
struct cxr_ini;

/* Parses path. CXR_ERR_IO when it cannot be opened, CXR_ERR_MALFORMED with the line number on
 * a syntax error. */
enum cxr_status cxr_ini_load(const char *path, struct cxr_ini **ini, struct cxr_err *err);
/* Parses text held in memory (for tests and defaults). */
enum cxr_status cxr_ini_parse(const char *text, struct cxr_ini **ini, struct cxr_err *err);
/* NULL is a no-op. */
void cxr_ini_destroy(struct cxr_ini *ini);
/* Value of section.key (the last one when repeated), or NULL. Owned by ini. */
const char *cxr_ini_get(const struct cxr_ini *ini, const char *section, const char *key);
/* Entry i in file order (i < cxr_ini_count), to let a schema reject unknown keys. */
size_t cxr_ini_count(const struct cxr_ini *ini);
void cxr_ini_entry(const struct cxr_ini *ini, size_t i, const char **section, const char **key,
                   const char **value);

/* Parses a whole unsigned decimal number in [min, max] ("123"; no sign, no spaces). */
enum cxr_status cxr_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *value);
/* Parses a size with an optional binary unit: "512", "64k", "16M", "1G" (KiB, MiB, GiB). */
enum cxr_status cxr_parse_size(const char *text, size_t *value);
/* Parses a duration: a number with unit s, m, h or d ("90s", "15m", "30d"; a bare number is
 * seconds) into seconds. */
enum cxr_status cxr_parse_duration(const char *text, uint64_t *seconds);
/* "true/false", "yes/no", "on/off", "1/0". */
enum cxr_status cxr_parse_bool(const char *text, int *value);

/* ---- Paths (util_path.c) ------------------------------------------------------------------
 * Request paths are untrusted. A path is acceptable when it is absolute, has no NUL byte, no
 * empty, "." or ".." component (one trailing slash is allowed), and fits PATH_MAX. */
enum cxr_status cxr_path_check_syntax(const char *path, size_t length, struct cxr_err *err);

/* True when path equals root or lies below it (component-wise: "/data2" is not under "/data").
 * Both are plain strings; root may end with a slash. */
bool cxr_path_is_under(const char *path, const char *root);

/* Resolves path with realpath(3) and checks the result lies under root_real (itself a
 * resolved path). When allow_missing is set, trailing components that do not exist yet are
 * allowed: the longest existing prefix is resolved and the rest appended (they contain no
 * "..", see cxr_path_check_syntax). Writes a malloc'ed resolved path to *resolved.
 * CXR_ERR_NOT_FOUND when the path (or, with allow_missing, a needed parent) does not exist,
 * CXR_ERR_INVALID_ARG when the resolved path escapes root_real, CXR_ERR_IO otherwise. */
enum cxr_status cxr_path_resolve_under(const char *path, const char *root_real, int allow_missing,
                                       char **resolved, struct cxr_err *err);

/* Creates a directory and its missing parents with mode 0755 (like mkdir -p). */
enum cxr_status cxr_path_mkdirs(const char *path, struct cxr_err *err);

/* A root that request paths must stay beneath, held open from start-up: every file of a request
 * is opened relative to fd, so no swap of a folder or file for a symlink between a check and
 * the open can lead out of it (docs/file-safety.md). */
struct cxr_path_root {
    int fd;     /* O_PATH descriptor of the folder; -1 once closed */
    char *path; /* as configured, without trailing slashes */
    char *real; /* realpath(path) when opened */
};
/* Resolves and opens path (a folder). CXR_ERR_IO when it cannot be resolved or opened. */
enum cxr_status cxr_path_root_open(const char *path, struct cxr_path_root *root,
                                   struct cxr_err *err);
/* Closes and frees; a zeroed root with fd -1, or NULL, is a no-op. */
void cxr_path_root_close(struct cxr_path_root *root);

enum cxr_path_open_mode {
    CXR_PATH_OPEN_FILE,          /* O_RDONLY|O_NONBLOCK|O_NOCTTY: the caller fstat()s the result */
    CXR_PATH_OPEN_FOLDER,        /* O_RDONLY|O_DIRECTORY */
    CXR_PATH_OPEN_FOLDER_CREATE, /* the same, creating missing folders (mode 0755) on the way */
};
/* Opens path, an absolute path lexically under root->path or root->real, beneath root->fd:
 * openat2(RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS) when the kernel has it and it succeeds, else
 * one component at a time with O_NOFOLLOW, following symlinks by hand: a relative target
 * continues from its folder ("..": never above the root), an absolute one must lie under the
 * root and continues from root->fd. *fd is O_CLOEXEC. CXR_ERR_INVALID_ARG ("outside the
 * allowed root <root>", never the target) when the path or a symlink leads out of the root,
 * CXR_ERR_NOT_FOUND when something does not exist, CXR_ERR_IO otherwise (a component that is
 * not a folder, a symlink loop, permissions). Thread safe. */
enum cxr_status cxr_path_open_beneath(const struct cxr_path_root *root, const char *path,
                                      enum cxr_path_open_mode mode, int *fd, struct cxr_err *err);
/* Tests only: true makes cxr_path_open_beneath skip openat2 and always walk by hand. */
void cxr_path_openat2_disable(bool disabled);

/* ---- Base64 (util_base64.c) ---------------------------------------------------------------
 * Standard alphabet with padding (RFC 4648 section 4). */
/* Length of the encoding of size bytes, without the NUL; 0 on overflow of size_t. */
size_t cxr_base64_encoded_length(size_t size);
/* Encodes size bytes into out, which has room for cxr_base64_encoded_length(size) + 1 bytes;
 * NUL-terminates. */
void cxr_base64_encode(const uint8_t *bytes, size_t size, char *out);
/* Decodes text (padding required, no whitespace); appends to out. CXR_ERR_MALFORMED on any
 * character outside the alphabet or bad padding. Used by tests and by the JWT reader (which
 * first maps the URL-safe alphabet). */
enum cxr_status cxr_base64_decode(const char *text, size_t length, struct cxr_buf *out);
/* The URL-safe alphabet without padding (RFC 4648 section 5), as in JWTs. */
enum cxr_status cxr_base64url_decode(const char *text, size_t length, struct cxr_buf *out);

/* ---- Files (util_file.c) ------------------------------------------------------------------ */
/* Reads a whole regular file, refusing more than max_bytes (CXR_ERR_LIMIT); appends to out,
 * whose room grows to exactly the file's size (+1) when the file does not change meanwhile.
 * The one way cxr reads an input or model file: opened with O_NONBLOCK and O_NOCTTY, so a FIFO
 * or device swapped in for the path never blocks the caller, and refused unless the opened
 * descriptor is a regular file (fstat). CXR_ERR_NOT_FOUND when the path does not exist,
 * CXR_ERR_IO when it cannot be opened or read or is not a regular file. Thread safe. */
enum cxr_status cxr_file_read(const char *path, size_t max_bytes, struct cxr_buf *out,
                              struct cxr_err *err);
/* The same from an open descriptor (e.g. from cxr_path_open_beneath), which stays the
 * caller's; name is for messages only. */
enum cxr_status cxr_file_read_fd(int fd, const char *name, size_t max_bytes, struct cxr_buf *out,
                                 struct cxr_err *err);

/* Atomic replacement of a group of files in one folder: each file is first written in full to a
 * hidden temp file `.<name>.tmp-XXXXXX` in the target folder, held under flock(LOCK_EX) by its
 * writer until it is renamed or removed, and fsync'd (stage); commit then renames every staged
 * file over its target and fsyncs the folder; abort (or destroy before commit) removes the temp
 * files and leaves the targets untouched. A reader sees each file either old or new, never
 * partial. Commits to one folder hold an exclusive flock(2) on it, so concurrent groups (threads
 * or processes) land one after the other, never interleaved. A group itself is not thread safe
 * (one writer per group). */
struct cxr_file_group;

/* Opens folder (by path: for the operator's own folders; requests use _create_at). */
enum cxr_status cxr_file_group_create(const char *folder, struct cxr_file_group **group,
                                      struct cxr_err *err);
/* A group in the folder open as folder_fd (the group opens its own descriptor of it, so its
 * flock is its own); every create, rename and remove is relative to it, never by path. folder
 * names it in messages. */
enum cxr_status cxr_file_group_create_at(int folder_fd, const char *folder,
                                         struct cxr_file_group **group, struct cxr_err *err);
/* Stages name (a plain file name, no slash) with the given bytes, mode 0644. */
enum cxr_status cxr_file_group_stage(struct cxr_file_group *group, const char *name,
                                     const void *bytes, size_t size, struct cxr_err *err);
/* Marks name for removal at commit (a file of an earlier run that this run does not produce,
 * e.g. the heatmap of a result that is now Normal). Absent files are fine. */
enum cxr_status cxr_file_group_remove(struct cxr_file_group *group, const char *name,
                                      struct cxr_err *err);
/* Renames every staged file into place and fsyncs the folder. After an error part-way, the
 * files not yet renamed are removed. */
enum cxr_status cxr_file_group_commit(struct cxr_file_group *group, struct cxr_err *err);
/* Removes temp files not committed, frees the group. NULL is a no-op. */
void cxr_file_group_destroy(struct cxr_file_group *group);

/* Temp files left by a writer that died (SIGKILL, power loss) inside a stage or commit are
 * stale when all of these hold: the name is a hidden temp name of a group (`.<name>.tmp-` and 6
 * letters or digits), it is a regular file, it was last modified CXR_FILE_TEMP_STALE_SECONDS
 * or more ago (a writer creates its temp and locks it in the same moment; the age covers that
 * moment), and no process holds a flock on it (a live writer holds LOCK_EX on each of its temps).
 * Removes those in folder_fd and, to max_depth levels below it (no symlinks followed), its
 * sub-folders, looking at no more than *budget directory entries (decremented). Returns how
 * many were removed. Thread safe. */
#define CXR_FILE_TEMP_STALE_SECONDS 60
size_t cxr_file_temps_sweep(int folder_fd, int max_depth, size_t *budget);

/* One-file convenience: stage + commit of path (its folder must exist). */
enum cxr_status cxr_file_write_atomic(const char *path, const void *bytes, size_t size,
                                      struct cxr_err *err);

/* ---- CSV (util_csv.c) ----------------------------------------------------------------------
 * RFC 4180 text: fields separated by commas, records by LF or CRLF; a field in double quotes
 * may hold commas, line breaks and "" for a quote. Blanks around unquoted fields are trimmed,
 * blank lines skipped, a leading UTF-8 byte order mark ignored. */
struct cxr_csv;
/* Parses size bytes of text. CXR_ERR_MALFORMED naming the line for an unclosed quote, text
 * after a closing quote or a NUL byte; CXR_ERR_LIMIT beyond max_records records or max_fields
 * fields in one record. */
enum cxr_status cxr_csv_parse(const char *text, size_t size, size_t max_records, size_t max_fields,
                              struct cxr_csv **csv, struct cxr_err *err);
/* The same with another field separator, e.g. ';' (what spreadsheets in locales with a decimal
 * comma write); it must not be a blank, a quote or a line break. */
enum cxr_status cxr_csv_parse_separated(const char *text, size_t size, char separator,
                                        size_t max_records, size_t max_fields, struct cxr_csv **csv,
                                        struct cxr_err *err);
/* NULL is a no-op. */
void cxr_csv_destroy(struct cxr_csv *csv);
size_t cxr_csv_record_count(const struct cxr_csv *csv);
/* Fields of a record (0 past the last record). */
size_t cxr_csv_field_count(const struct cxr_csv *csv, size_t record);
/* A field, unescaped and NUL-terminated, owned by csv; NULL past the record's last field. */
const char *cxr_csv_field(const struct cxr_csv *csv, size_t record, size_t field);
/* The 1-based line on which a record starts, for messages. */
size_t cxr_csv_line(const struct cxr_csv *csv, size_t record);
/* Appends one text field (no separator): quoted where RFC 4180 or the reader's trimming needs
 * it, and prefixed with "'" when a spreadsheet would run it as a formula (it begins with
 * = + - @, a tab or CR; OWASP's CSV injection advice), so it is shown, never evaluated. NULL or
 * "" appends nothing. Numbers are the caller's to print. */
enum cxr_status cxr_csv_append_text(struct cxr_buf *out, const char *text);

#endif
