/* The DICOM writer: Part 10 files in explicit VR little endian with defined lengths, for the
 * objects cxrd sends back to a PACS (report/report_dicom*.c), and the UIDs they carry. The
 * reader (dicom_parse.c) and DCMTK/dicom3tools in the tests are its independent checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cxr_version.h"
#include "dicom/dicom_internal.h"

#define MAX_DEPTH       24
#define DEFAULT_MAX     ((size_t)1 << 30)
#define EXPLICIT_LE_UID "1.2.840.10008.1.2.1"
/* cxrd's Implementation Class UID: a UUID drawn once for this writer, under 2.25. */
#define IMPLEMENTATION_UID "2.25.300628122466630820463293918074614870118"

/* One open data set (the top level or an item) or sequence: where its length goes and the last
 * tag written in it, to check the ascending order. */
struct level {
    bool is_sequence;
    size_t length_offset; /* SIZE_MAX at the top level */
    uint32_t last_tag;
    bool any_tag;
};

struct cxr_dicom_writer {
    struct cxr_buf data;
    struct level levels[MAX_DEPTH + 1];
    size_t depth;
    struct cxr_err err;
};

enum cxr_status cxr_dicom_writer_create(size_t max_bytes, struct cxr_dicom_writer **writer,
                                        struct cxr_err *err)
{
    struct cxr_dicom_writer *created = calloc(1, sizeof *created);
    if (created == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "DICOM writer: out of memory");
    created->data.max = max_bytes ? max_bytes : DEFAULT_MAX;
    created->levels[0].length_offset = SIZE_MAX;
    created->err = (struct cxr_err)CXR_ERR_INIT;
    *writer = created;
    return CXR_OK;
}

void cxr_dicom_writer_destroy(struct cxr_dicom_writer *writer)
{
    if (writer == NULL)
        return;
    cxr_buf_release(&writer->data);
    free(writer);
}

static void put_u16(uint8_t *out, uint16_t value)
{
    out[0] = (uint8_t)(value & 0xFF);
    out[1] = (uint8_t)(value >> 8);
}

static void put_u32(uint8_t *out, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(value >> (8 * i));
}

static bool long_length_vr(const char *vr)
{
    static const char *const vrs[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                      "SV", "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof vrs / sizeof vrs[0]; i++) {
        if (memcmp(vr, vrs[i], 2) == 0)
            return true;
    }
    return false;
}

static enum cxr_status fail(struct cxr_dicom_writer *writer, enum cxr_status status,
                            const char *message, uint32_t tag)
{
    return cxr_err_set(&writer->err, status, "DICOM writer: %s at (%04X,%04X)", message,
                       (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF));
}

static enum cxr_status append(struct cxr_dicom_writer *writer, const void *bytes, size_t size)
{
    enum cxr_status status = cxr_buf_append(&writer->data, bytes, size);
    if (status != CXR_OK)
        return cxr_err_set(&writer->err, status,
                           status == CXR_ERR_LIMIT ? "DICOM writer: object larger than %zu bytes"
                                                   : "DICOM writer: out of memory (%zu bytes)",
                           writer->data.max);
    return CXR_OK;
}

/* Checks the order in the current data set and writes tag, VR and length. */
static enum cxr_status header(struct cxr_dicom_writer *writer, uint32_t tag, const char *vr,
                              size_t length)
{
    if (writer->err.status != CXR_OK)
        return writer->err.status;
    struct level *level = &writer->levels[writer->depth];
    if (level->is_sequence)
        return fail(writer, CXR_ERR_INVALID_ARG, "element outside an item", tag);
    if (level->any_tag && tag <= level->last_tag)
        return fail(writer, CXR_ERR_INVALID_ARG, "tags out of ascending order", tag);
    if (vr == NULL || strlen(vr) != 2)
        return fail(writer, CXR_ERR_INVALID_ARG, "bad VR", tag);
    level->last_tag = tag;
    level->any_tag = true;
    uint8_t bytes[12];
    put_u16(bytes, (uint16_t)(tag >> 16));
    put_u16(bytes + 2, (uint16_t)(tag & 0xFFFF));
    bytes[4] = (uint8_t)vr[0];
    bytes[5] = (uint8_t)vr[1];
    if (long_length_vr(vr)) {
        if (length > 0xFFFFFFFEu)
            return fail(writer, CXR_ERR_LIMIT, "value longer than 4 GiB", tag);
        put_u16(bytes + 6, 0);
        put_u32(bytes + 8, (uint32_t)length);
        return append(writer, bytes, 12);
    }
    if (length > 0xFFFF)
        return fail(writer, CXR_ERR_LIMIT, "value longer than 65534 bytes for its VR", tag);
    put_u16(bytes + 6, (uint16_t)length);
    return append(writer, bytes, 8);
}

enum cxr_status cxr_dicom_writer_string(struct cxr_dicom_writer *writer, uint32_t tag,
                                        const char *vr, const char *value)
{
    size_t length = value ? strlen(value) : 0;
    bool odd = length % 2 != 0;
    enum cxr_status status = header(writer, tag, vr, length + odd);
    if (status == CXR_OK && length)
        status = append(writer, value, length);
    if (status == CXR_OK && odd)
        status = append(writer, strcmp(vr, "UI") == 0 ? "\0" : " ", 1);
    return status;
}

enum cxr_status cxr_dicom_writer_bytes(struct cxr_dicom_writer *writer, uint32_t tag,
                                       const char *vr, const void *bytes, size_t size)
{
    bool odd = size % 2 != 0;
    if (size > SIZE_MAX - 1)
        return fail(writer, CXR_ERR_LIMIT, "value too long", tag);
    enum cxr_status status = header(writer, tag, vr, size + odd);
    if (status == CXR_OK && size)
        status = append(writer, bytes, size);
    if (status == CXR_OK && odd)
        status = append(writer, "\0", 1);
    return status;
}

enum cxr_status cxr_dicom_writer_us(struct cxr_dicom_writer *writer, uint32_t tag, uint16_t value)
{
    uint8_t bytes[2];
    put_u16(bytes, value);
    enum cxr_status status = header(writer, tag, "US", 2);
    return status == CXR_OK ? append(writer, bytes, 2) : status;
}

enum cxr_status cxr_dicom_writer_ul(struct cxr_dicom_writer *writer, uint32_t tag, uint32_t value)
{
    uint8_t bytes[4];
    put_u32(bytes, value);
    enum cxr_status status = header(writer, tag, "UL", 4);
    return status == CXR_OK ? append(writer, bytes, 4) : status;
}

static enum cxr_status push(struct cxr_dicom_writer *writer, bool is_sequence, uint32_t tag)
{
    if (writer->depth == MAX_DEPTH)
        return fail(writer, CXR_ERR_LIMIT, "sequences nested too deep", tag);
    writer->depth++;
    writer->levels[writer->depth] = (struct level){
            .is_sequence = is_sequence,
            .length_offset = writer->data.len - 4,
    };
    return CXR_OK;
}

/* Closes the innermost level, which must be of the given kind, patching its length. */
static enum cxr_status pop(struct cxr_dicom_writer *writer, bool is_sequence)
{
    if (writer->err.status != CXR_OK)
        return writer->err.status;
    struct level *level = &writer->levels[writer->depth];
    if (writer->depth == 0 || level->is_sequence != is_sequence)
        return fail(writer, CXR_ERR_INVALID_ARG,
                    is_sequence ? "sequence end without its begin" : "item end without its begin",
                    0);
    size_t length = writer->data.len - (level->length_offset + 4);
    if (length > 0xFFFFFFFEu)
        return fail(writer, CXR_ERR_LIMIT, "sequence longer than 4 GiB", 0);
    put_u32(writer->data.data + level->length_offset, (uint32_t)length);
    writer->depth--;
    return CXR_OK;
}

enum cxr_status cxr_dicom_writer_sequence_begin(struct cxr_dicom_writer *writer, uint32_t tag)
{
    enum cxr_status status = header(writer, tag, "SQ", 0);
    return status == CXR_OK ? push(writer, true, tag) : status;
}

enum cxr_status cxr_dicom_writer_sequence_end(struct cxr_dicom_writer *writer)
{
    return pop(writer, true);
}

enum cxr_status cxr_dicom_writer_item_begin(struct cxr_dicom_writer *writer)
{
    if (writer->err.status != CXR_OK)
        return writer->err.status;
    if (!writer->levels[writer->depth].is_sequence)
        return fail(writer, CXR_ERR_INVALID_ARG, "item outside a sequence", TAG_ITEM);
    uint8_t bytes[8] = {0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0};
    enum cxr_status status = append(writer, bytes, sizeof bytes);
    return status == CXR_OK ? push(writer, false, TAG_ITEM) : status;
}

enum cxr_status cxr_dicom_writer_item_end(struct cxr_dicom_writer *writer)
{
    return pop(writer, false);
}

/* One meta element into a plain buffer (the meta group is written apart from the data set). */
static enum cxr_status meta_element(struct cxr_buf *out, uint16_t element, const char *vr,
                                    const void *value, size_t length, bool pad_nul)
{
    bool odd = length % 2 != 0;
    uint8_t bytes[12];
    size_t header_size = 8;
    put_u16(bytes, 0x0002);
    put_u16(bytes + 2, element);
    bytes[4] = (uint8_t)vr[0];
    bytes[5] = (uint8_t)vr[1];
    if (long_length_vr(vr)) {
        put_u16(bytes + 6, 0);
        put_u32(bytes + 8, (uint32_t)(length + odd));
        header_size = 12;
    } else {
        put_u16(bytes + 6, (uint16_t)(length + odd));
    }
    enum cxr_status status = cxr_buf_append(out, bytes, header_size);
    if (status == CXR_OK)
        status = cxr_buf_append(out, value, length);
    if (status == CXR_OK && odd)
        status = cxr_buf_append(out, pad_nul ? "\0" : " ", 1);
    return status;
}

enum cxr_status cxr_dicom_writer_finish(struct cxr_dicom_writer *writer, const char *sop_class_uid,
                                        const char *sop_instance_uid, struct cxr_buf *out,
                                        struct cxr_err *err)
{
    if (writer->err.status != CXR_OK)
        return cxr_err_set(err, writer->err.status, "%s", writer->err.message);
    if (writer->depth != 0)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "DICOM writer: %zu levels still open",
                           writer->depth);
    if (strlen(sop_class_uid) > 64 || strlen(sop_instance_uid) > 64)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "DICOM writer: UID longer than 64");
    struct cxr_buf meta = {0};
    static const uint8_t version[2] = {0x00, 0x01};
    char name[17];
    snprintf(name, sizeof name, "CXRD_%s", CXR_VERSION_STRING);
    enum cxr_status status = meta_element(&meta, 0x0001, "OB", version, 2, true);
    if (status == CXR_OK)
        status = meta_element(&meta, 0x0002, "UI", sop_class_uid, strlen(sop_class_uid), true);
    if (status == CXR_OK)
        status =
                meta_element(&meta, 0x0003, "UI", sop_instance_uid, strlen(sop_instance_uid), true);
    if (status == CXR_OK)
        status = meta_element(&meta, 0x0010, "UI", EXPLICIT_LE_UID, strlen(EXPLICIT_LE_UID), true);
    if (status == CXR_OK)
        status = meta_element(&meta, 0x0012, "UI", IMPLEMENTATION_UID, strlen(IMPLEMENTATION_UID),
                              true);
    if (status == CXR_OK)
        status = meta_element(&meta, 0x0013, "SH", name, strlen(name), false);

    uint8_t preamble[132] = {0};
    memcpy(preamble + 128, "DICM", 4);
    uint8_t group_length[12];
    put_u16(group_length, 0x0002);
    put_u16(group_length + 2, 0x0000);
    memcpy(group_length + 4, "UL", 2);
    put_u16(group_length + 6, 4);
    put_u32(group_length + 8, (uint32_t)meta.len);
    size_t mark = out->len;
    if (status == CXR_OK)
        status = cxr_buf_append(out, preamble, sizeof preamble);
    if (status == CXR_OK)
        status = cxr_buf_append(out, group_length, sizeof group_length);
    if (status == CXR_OK)
        status = cxr_buf_append(out, meta.data, meta.len);
    if (status == CXR_OK)
        status = cxr_buf_append(out, writer->data.data, writer->data.len);
    cxr_buf_release(&meta);
    if (status != CXR_OK) {
        out->len = mark;
        return cxr_err_set(err, status, "DICOM writer: out of memory for the file");
    }
    return CXR_OK;
}

enum cxr_status cxr_dicom_uid_root_check(const char *root, struct cxr_err *err)
{
    size_t length = strlen(root);
    if (length == 0)
        return CXR_OK;
    if (length > 40)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "UID root '%s' is longer than 40 characters",
                           root);
    bool component_start = true;
    for (size_t i = 0; i < length; i++) {
        char c = root[i];
        if (c == '.') {
            if (component_start)
                return cxr_err_set(err, CXR_ERR_INVALID_ARG, "UID root '%s' has an empty component",
                                   root);
            component_start = true;
        } else if (c >= '0' && c <= '9') {
            if (component_start && c == '0' && root[i + 1] >= '0' && root[i + 1] <= '9')
                return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                                   "UID root '%s' has a component with a leading zero", root);
            component_start = false;
        } else {
            return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                               "UID root '%s' holds a character other than digits and dots", root);
        }
    }
    if (component_start)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "UID root '%s' ends with a dot", root);
    return CXR_OK;
}

/* The 128-bit big-endian number as decimal digits (at most 39 and a NUL). */
static void decimal_from_bytes(const uint8_t in[16], char out[40])
{
    uint8_t number[16];
    memcpy(number, in, 16);
    char digits[40];
    size_t count = 0;
    bool zero;
    do {
        unsigned remainder = 0;
        zero = true;
        for (int i = 0; i < 16; i++) {
            unsigned value = (remainder << 8) | number[i];
            number[i] = (uint8_t)(value / 10);
            remainder = value % 10;
            if (number[i])
                zero = false;
        }
        digits[count++] = (char)('0' + remainder);
    } while (!zero);
    for (size_t i = 0; i < count; i++)
        out[i] = digits[count - 1 - i];
    out[count] = '\0';
}

enum cxr_status cxr_dicom_uid_generate(const char *root, char out[CXR_DICOM_UID_SIZE],
                                       struct cxr_err *err)
{
    if (root == NULL)
        root = "";
    if (cxr_dicom_uid_root_check(root, err) != CXR_OK)
        return CXR_ERR_INVALID_ARG;
    uint8_t random[16];
    size_t got = 0;
    while (got < sizeof random) {
        ssize_t n = getrandom(random + got, sizeof random - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return cxr_err_set(err, CXR_ERR_INTERNAL, "UID: getrandom: %s", strerror(errno));
        got += (size_t)n;
    }
    random[6] = (uint8_t)((random[6] & 0x0F) | 0x40); /* UUID version 4 (RFC 4122) */
    random[8] = (uint8_t)((random[8] & 0x3F) | 0x80); /* variant 10 */
    char digits[40];
    decimal_from_bytes(random, digits);
    if (root[0] == '\0') {
        snprintf(out, CXR_DICOM_UID_SIZE, "2.25.%s", digits);
        return CXR_OK;
    }
    /* Under a site root the UUID's leading digits fill what is left of the 64 characters (a
     * decimal prefix has no leading zero, as a UID component must not). */
    size_t room = CXR_DICOM_UID_SIZE - 1 - strlen(root) - 1;
    snprintf(out, CXR_DICOM_UID_SIZE, "%s.%.*s", root, (int)room, digits);
    return CXR_OK;
}
