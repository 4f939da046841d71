/* DICOM Part 10 parsing: preamble and file meta group, transfer syntax detection, deflated data
 * sets, and the element walk (sequences, items, encapsulated pixel data) into a flat element
 * table. Every length is checked against the bytes that remain before it is used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dicom/dicom_internal.h"

#define UNDEFINED_LENGTH 0xFFFFFFFFu

struct encoding {
    bool explicit_vr;
    bool big_endian;
};

struct parser {
    struct cxr_dicom_file *file;
    const struct cxr_limits *limits;
    struct cxr_err *err;
    size_t counted; /* elements, items and fragments seen, against limits->max_elements */
};

static uint32_t read_tag(const uint8_t *bytes, bool big_endian)
{
    return DICOM_TAG(dicom_read_u16(bytes, big_endian), dicom_read_u16(bytes + 2, big_endian));
}

static bool vr_is_known(uint16_t vr)
{
    static const char known[] =
            "AEASATCSDADSDTFDFLISLOLTOBODOFOLOVOWPNSHSLSQSSSTSVTMUCUIULUNURUSUTUV";
    for (size_t i = 0; i + 1 < sizeof(known); i += 2) {
        if (DICOM_VR(known[i], known[i + 1]) == vr)
            return true;
    }
    return false;
}

/* Explicit VRs whose length field is 4 bytes after 2 reserved bytes (PS3.5 7.1.2). */
static bool vr_has_long_length(uint16_t vr)
{
    static const char long_vrs[] = "OBODOFOLOVOWSQSVUCUNURUTUV";
    for (size_t i = 0; i + 1 < sizeof(long_vrs); i += 2) {
        if (DICOM_VR(long_vrs[i], long_vrs[i + 1]) == vr)
            return true;
    }
    return false;
}

/* Sequences we must descend into when the data set has implicit VR and the length is defined:
 * the LUT sequences the renderer needs. Other defined-length implicit sequences are detected by
 * their first item tag (see parse_dataset). */
static bool tag_is_known_sequence(uint32_t tag)
{
    return tag == DICOM_TAG(0x0028, 0x3000) || tag == DICOM_TAG(0x0028, 0x3010);
}

static enum cxr_status malformed_at(struct parser *parser, size_t offset, uint32_t tag,
                                    const char *what)
{
    return cxr_err_set(parser->err, CXR_ERR_MALFORMED, "DICOM: %s at offset %zu (tag %04X,%04X)",
                       what, offset, (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF));
}

static enum cxr_status count_one(struct parser *parser)
{
    if (parser->counted >= parser->limits->max_elements)
        return cxr_err_set(parser->err, CXR_ERR_LIMIT, "DICOM: more than %u data elements (limit)",
                           (unsigned)parser->limits->max_elements);
    parser->counted++;
    return CXR_OK;
}

/* Appends to the element table. The element's index is the table's count before the call
 * (callers take it first, so it is always initialised: GCC cannot see that every failure path
 * returns a non-OK status through cxr_err_set and warned at -O3 about an out-parameter). */
static enum cxr_status element_append(struct parser *parser, const struct dicom_element *element)
{
    struct cxr_dicom_file *file = parser->file;
    enum cxr_status status = count_one(parser);
    if (status != CXR_OK)
        return status;
    if (file->element_count == file->element_capacity) {
        size_t capacity = file->element_capacity ? file->element_capacity * 2 : 64;
        struct dicom_element *grown = realloc(file->elements, capacity * sizeof(*grown));
        if (grown == NULL)
            return cxr_err_set(parser->err, CXR_ERR_NOMEM, "DICOM: out of memory for elements");
        file->elements = grown;
        file->element_capacity = capacity;
    }
    file->elements[file->element_count++] = *element;
    return CXR_OK;
}

static enum cxr_status parse_dataset(struct parser *parser, struct encoding encoding, size_t *pos,
                                     size_t end, uint32_t parent, uint32_t depth,
                                     bool until_item_delimiter, bool meta_group_only);

/* Items of a sequence, from *pos up to end (defined length) or its delimiter (undefined). */
static enum cxr_status parse_sequence(struct parser *parser, struct encoding encoding, size_t *pos,
                                      size_t end, uint32_t sequence, uint32_t depth, bool undefined)
{
    const uint8_t *data = parser->file->data;
    if (depth > parser->limits->max_nesting_depth)
        return cxr_err_set(parser->err, CXR_ERR_LIMIT,
                           "DICOM: sequences nested deeper than %u (limit)",
                           (unsigned)parser->limits->max_nesting_depth);
    for (;;) {
        if (*pos == end) {
            if (undefined)
                return malformed_at(parser, *pos, parser->file->elements[sequence].tag,
                                    "sequence without delimiter");
            return CXR_OK;
        }
        if (end - *pos < 8)
            return malformed_at(parser, *pos, parser->file->elements[sequence].tag,
                                "truncated item header");
        uint32_t tag = read_tag(data + *pos, encoding.big_endian);
        uint32_t length = dicom_read_u32(data + *pos + 4, encoding.big_endian);
        size_t header_at = *pos;
        *pos += 8;
        if (tag == TAG_SEQUENCE_DELIMITER)
            return CXR_OK;
        if (tag != TAG_ITEM)
            return malformed_at(parser, header_at, tag, "expected an item in a sequence");
        struct dicom_element item = {
                .tag = TAG_ITEM,
                .big_endian = encoding.big_endian,
                .parent = sequence,
                .offset = *pos,
        };
        uint32_t index = (uint32_t)parser->file->element_count;
        enum cxr_status status = element_append(parser, &item);
        if (status != CXR_OK)
            return status;
        if (length == UNDEFINED_LENGTH) {
            status = parse_dataset(parser, encoding, pos, end, index, depth, true, false);
            if (status != CXR_OK)
                return status;
            parser->file->elements[index].length = *pos - 8 - item.offset;
        } else {
            if (length > end - *pos)
                return malformed_at(parser, header_at, tag, "item length exceeds its sequence");
            size_t item_end = *pos + length;
            status = parse_dataset(parser, encoding, pos, item_end, index, depth, false, false);
            if (status != CXR_OK)
                return status;
            parser->file->elements[index].length = length;
        }
    }
}

/* The items of an encapsulated Pixel Data element up to its sequence delimiter. */
static enum cxr_status parse_encapsulated(struct parser *parser, struct encoding encoding,
                                          size_t *pos, size_t end, size_t *content_end)
{
    const uint8_t *data = parser->file->data;
    for (;;) {
        if (end - *pos < 8)
            return malformed_at(parser, *pos, TAG_PIXEL_DATA,
                                "encapsulated pixel data without sequence delimiter");
        uint32_t tag = read_tag(data + *pos, encoding.big_endian);
        uint32_t length = dicom_read_u32(data + *pos + 4, encoding.big_endian);
        if (tag == TAG_SEQUENCE_DELIMITER) {
            *content_end = *pos;
            *pos += 8;
            return CXR_OK;
        }
        if (tag != TAG_ITEM)
            return malformed_at(parser, *pos, tag, "expected a fragment item in pixel data");
        if (length == UNDEFINED_LENGTH || length > end - *pos - 8)
            return malformed_at(parser, *pos, tag, "fragment length exceeds the file");
        enum cxr_status status = count_one(parser);
        if (status != CXR_OK)
            return status;
        *pos += 8 + (size_t)length;
    }
}

/* A defined-length value in implicit VR that starts with an item tag is most likely a sequence
 * the (deliberately small) dictionary does not know; try it, and keep it as bytes otherwise. */
static bool try_implicit_sequence(struct parser *parser, struct encoding encoding, size_t start,
                                  size_t length, uint32_t index, uint32_t depth)
{
    if (length < 8 || read_tag(parser->file->data + start, encoding.big_endian) != TAG_ITEM)
        return false;
    size_t saved_count = parser->file->element_count;
    size_t saved_counted = parser->counted;
    struct cxr_err *saved_err = parser->err;
    parser->err = NULL;
    size_t pos = start;
    enum cxr_status status =
            parse_sequence(parser, encoding, &pos, start + length, index, depth + 1, false);
    parser->err = saved_err;
    if (status == CXR_OK)
        return true;
    parser->file->element_count = saved_count;
    parser->counted = saved_counted;
    return false;
}

static enum cxr_status parse_dataset(struct parser *parser, struct encoding encoding, size_t *pos,
                                     size_t end, uint32_t parent, uint32_t depth,
                                     bool until_item_delimiter, bool meta_group_only)
{
    const uint8_t *data = parser->file->data;
    while (*pos < end) {
        size_t header_at = *pos;
        if (end - *pos < 8)
            return malformed_at(parser, *pos, 0, "truncated element header");
        uint32_t tag = read_tag(data + *pos, encoding.big_endian);
        if (meta_group_only && (tag >> 16) != 0x0002)
            return CXR_OK;
        if (tag == TAG_ITEM_DELIMITER) {
            if (!until_item_delimiter)
                return malformed_at(parser, *pos, tag, "item delimiter outside an item");
            *pos += 8;
            return CXR_OK;
        }
        if (tag == TAG_ITEM || tag == TAG_SEQUENCE_DELIMITER)
            return malformed_at(parser, *pos, tag, "item tag where a data element belongs");

        struct dicom_element element = {
                .tag = tag,
                .big_endian = encoding.big_endian,
                .parent = parent,
        };
        uint32_t length;
        if (encoding.explicit_vr) {
            element.vr = DICOM_VR(data[*pos + 4], data[*pos + 5]);
            if (!vr_is_known(element.vr))
                return malformed_at(parser, *pos, tag, "unknown value representation");
            if (vr_has_long_length(element.vr)) {
                if (end - *pos < 12)
                    return malformed_at(parser, *pos, tag, "truncated element header");
                length = dicom_read_u32(data + *pos + 8, encoding.big_endian);
                *pos += 12;
            } else {
                length = dicom_read_u16(data + *pos + 6, encoding.big_endian);
                *pos += 8;
            }
        } else {
            length = dicom_read_u32(data + *pos + 4, encoding.big_endian);
            *pos += 8;
        }
        element.offset = *pos;

        uint32_t index = (uint32_t)parser->file->element_count;
        enum cxr_status status;
        if (length == UNDEFINED_LENGTH) {
            bool bytes_vr = element.vr == DICOM_VR('O', 'B') || element.vr == DICOM_VR('O', 'W');
            if (tag == TAG_PIXEL_DATA && (bytes_vr || element.vr == 0)) {
                size_t content_end = *pos;
                status = parse_encapsulated(parser, encoding, pos, end, &content_end);
                if (status != CXR_OK)
                    return status;
                element.encapsulated = 1;
                element.length = content_end - element.offset;
                status = element_append(parser, &element);
            } else if (element.vr == DICOM_VR('S', 'Q') || element.vr == 0 ||
                       element.vr == DICOM_VR('U', 'N')) {
                /* An undefined-length UN is a sequence in implicit VR little endian (PS3.5
                 * 6.2.2). */
                struct encoding inner = encoding;
                if (element.vr == DICOM_VR('U', 'N'))
                    inner = (struct encoding){.explicit_vr = false, .big_endian = false};
                status = element_append(parser, &element);
                if (status == CXR_OK)
                    status = parse_sequence(parser, inner, pos, end, index, depth + 1, true);
                if (status == CXR_OK)
                    parser->file->elements[index].length = *pos - 8 - element.offset;
            } else {
                return malformed_at(parser, header_at, tag, "undefined length on a non-sequence");
            }
            if (status != CXR_OK)
                return status;
            continue;
        }

        if (length > end - *pos)
            return malformed_at(parser, header_at, tag,
                                "element length exceeds the remaining bytes");
        element.length = length;
        status = element_append(parser, &element);
        if (status != CXR_OK)
            return status;
        if (element.vr == DICOM_VR('S', 'Q') || (element.vr == 0 && tag_is_known_sequence(tag))) {
            size_t sequence_pos = *pos;
            status = parse_sequence(parser, encoding, &sequence_pos, *pos + length, index,
                                    depth + 1, false);
            if (status != CXR_OK)
                return status;
        } else if (element.vr == 0 && (tag >> 16) != 0x7FE0) {
            try_implicit_sequence(parser, encoding, *pos, length, index, depth);
        }
        *pos += length;
    }
    if (until_item_delimiter)
        return malformed_at(parser, *pos, 0, "item without delimiter");
    return CXR_OK;
}

/* Inflates the deflated data set (raw deflate, PS3.5 A.5) after the meta group and replaces
 * the file's bytes with meta group + inflated data set. */
static enum cxr_status inflate_dataset(struct parser *parser, size_t dataset_start)
{
    struct cxr_dicom_file *file = parser->file;
    size_t max = parser->limits->max_file_bytes;
    struct cxr_buf out = CXR_BUF_INIT(max);
    enum cxr_status status = cxr_buf_append(&out, file->data, dataset_start);
    if (status != CXR_OK) {
        cxr_buf_release(&out);
        return cxr_err_set(parser->err, status, "DICOM: no room for the inflated data set");
    }
    z_stream stream;
    memset(&stream, 0, sizeof(stream));
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) {
        cxr_buf_release(&out);
        return cxr_err_set(parser->err, CXR_ERR_INTERNAL, "zlib: inflateInit2 failed");
    }
    size_t in_left = file->size - dataset_start;
    stream.next_in = file->data + dataset_start;
    int result = Z_OK;
    while (result != Z_STREAM_END) {
        status = cxr_buf_reserve(&out, 65536);
        if (status != CXR_OK) {
            status = cxr_err_set(parser->err, status,
                                 "DICOM: inflated data set larger than %zu bytes (limit)", max);
            break;
        }
        uInt chunk_in = in_left > 0x40000000u ? 0x40000000u : (uInt)in_left;
        stream.avail_in = chunk_in;
        stream.next_out = out.data + out.len;
        stream.avail_out =
                (uInt)(out.cap - out.len > 0x40000000u ? 0x40000000u : out.cap - out.len);
        uInt avail_out_before = stream.avail_out;
        result = inflate(&stream, Z_NO_FLUSH);
        out.len += avail_out_before - stream.avail_out;
        in_left -= chunk_in - stream.avail_in;
        if (result == Z_STREAM_END)
            break;
        if (result == Z_BUF_ERROR && in_left == 0) {
            status = cxr_err_set(parser->err, CXR_ERR_MALFORMED,
                                 "zlib: deflated data set is truncated");
            break;
        }
        if (result != Z_OK && result != Z_BUF_ERROR) {
            status = cxr_err_set(parser->err, CXR_ERR_MALFORMED, "zlib: %s",
                                 stream.msg ? stream.msg : "inflate failed");
            break;
        }
    }
    inflateEnd(&stream);
    if (result != Z_STREAM_END) {
        cxr_buf_release(&out);
        return status != CXR_OK ? status
                                : cxr_err_set(parser->err, CXR_ERR_MALFORMED,
                                              "zlib: deflated data set is truncated");
    }
    free(file->data);
    file->data = out.data;
    file->size = out.len;
    return CXR_OK;
}

static void trim_uid(const uint8_t *value, size_t length, char *out, size_t out_size)
{
    while (length > 0 && (value[length - 1] == 0 || value[length - 1] == ' '))
        length--;
    while (length > 0 && value[0] == ' ') {
        value++;
        length--;
    }
    if (length >= out_size)
        length = out_size - 1;
    memcpy(out, value, length);
    out[length] = '\0';
}

/* Guesses the encoding of a data set from its first element: explicit VR when a known VR
 * follows the tag, big endian when the group reads as a small big-endian number. Without a
 * meta group it fails unless the first group is one a data set can start with, so that other
 * files (text, images) are refused. */
static bool detect_encoding(const uint8_t *bytes, size_t size, bool after_meta_group,
                            struct encoding *encoding)
{
    if (size < 8)
        return false;
    bool explicit_vr = vr_is_known(DICOM_VR(bytes[4], bytes[5]));
    bool big_endian = explicit_vr && bytes[0] == 0 && bytes[1] != 0;
    uint16_t group = dicom_read_u16(bytes, big_endian);
    if (!after_meta_group && (group > 0x0008 || (group & 1)))
        return false;
    encoding->explicit_vr = explicit_vr;
    encoding->big_endian = big_endian;
    return true;
}

/* The data set encoding a transfer syntax names; false for ones this reader does not know. */
static bool encoding_of_syntax(const char *uid, struct encoding *encoding, bool *deflated)
{
    *deflated = false;
    if (strcmp(uid, "1.2.840.10008.1.2") == 0) {
        *encoding = (struct encoding){.explicit_vr = false, .big_endian = false};
        return true;
    }
    if (strcmp(uid, "1.2.840.10008.1.2.2") == 0) {
        *encoding = (struct encoding){.explicit_vr = true, .big_endian = true};
        return true;
    }
    *encoding = (struct encoding){.explicit_vr = true, .big_endian = false};
    if (strcmp(uid, "1.2.840.10008.1.2.1.99") == 0) {
        *deflated = true;
        return true;
    }
    /* Every other standard transfer syntax (native explicit LE and all encapsulated ones) uses
     * explicit VR little endian for the data set. */
    return strncmp(uid, "1.2.840.10008.1.2.", 18) == 0;
}

/* The element walk proper, on a parser over one file. */
static enum cxr_status parse_file(struct parser *parser)
{
    struct cxr_dicom_file *file = parser->file;
    size_t pos = 0;
    if (file->size >= 132 && memcmp(file->data + 128, "DICM", 4) == 0)
        pos = 132;

    /* The file meta group is explicit VR little endian whatever the data set uses. */
    struct encoding meta_encoding = {.explicit_vr = true, .big_endian = false};
    if (file->size - pos >= 8 && dicom_read_u16(file->data + pos, false) == 0x0002) {
        file->has_meta_group = true;
        /* Some old writers put the meta group in implicit VR; read what is there. */
        if (!vr_is_known(DICOM_VR(file->data[pos + 4], file->data[pos + 5])))
            meta_encoding.explicit_vr = false;
        enum cxr_status status = parse_dataset(parser, meta_encoding, &pos, file->size,
                                               DICOM_NO_PARENT, 0, false, true);
        if (status != CXR_OK)
            return status;
    } else if (pos == 0 && file->size >= 8 && dicom_read_u16(file->data, true) == 0x0002) {
        return cxr_err_set(parser->err, CXR_ERR_UNSUPPORTED,
                           "DICOM: big endian file meta group is not supported");
    }

    char syntax[68] = "";
    const struct dicom_element *syntax_element =
            dicom_element_find(file, DICOM_NO_PARENT, TAG_TRANSFER_SYNTAX);
    if (syntax_element != NULL)
        trim_uid(file->data + syntax_element->offset, syntax_element->length, syntax,
                 sizeof(syntax));

    struct encoding encoding;
    bool deflated = false;
    bool known = syntax[0] != '\0' && encoding_of_syntax(syntax, &encoding, &deflated);
    if (pos == file->size) {
        /* Only a meta group (or nothing): valid for a meta-only file, but it has no content. */
        if (!file->has_meta_group)
            return cxr_err_set(parser->err, CXR_ERR_MALFORMED, "DICOM: empty file");
        encoding = meta_encoding;
    } else if (deflated) {
        enum cxr_status status = inflate_dataset(parser, pos);
        if (status != CXR_OK)
            return status;
        file->deflated = true;
    } else if (!known) {
        if (syntax[0] != '\0' && file->has_meta_group && strncmp(syntax, "1.2.840.10008.", 14))
            cxr_log(CXR_LOG_DEBUG, "DICOM: unknown transfer syntax %s, detecting encoding", syntax);
        if (!detect_encoding(file->data + pos, file->size - pos, file->has_meta_group, &encoding))
            return cxr_err_set(parser->err, CXR_ERR_MALFORMED,
                               file->has_meta_group
                                       ? "DICOM: cannot recognise the data set encoding"
                                       : "DICOM: not a DICOM file (no DICM prefix and no "
                                         "recognisable first element)");
    } else if (file->size - pos >= 8 && !encoding.big_endian) {
        /* Files that contradict their transfer syntax exist; trust the bytes, as DCMTK and
         * pydicom do: a known VR after the first tag means explicit VR. */
        encoding.explicit_vr = vr_is_known(DICOM_VR(file->data[pos + 4], file->data[pos + 5]));
    }
    file->explicit_vr = encoding.explicit_vr;
    file->big_endian = encoding.big_endian;

    enum cxr_status status =
            parse_dataset(parser, encoding, &pos, file->size, DICOM_NO_PARENT, 0, false, false);
    if (status != CXR_OK)
        return status;
    if (file->element_count == 0)
        return cxr_err_set(parser->err, CXR_ERR_MALFORMED, "DICOM: no data elements");
    return CXR_OK;
}

enum cxr_status dicom_parse_elements(struct cxr_dicom_file *file, const struct cxr_limits *limits,
                                     struct cxr_err *err)
{
    struct parser parser = {.file = file, .limits = limits, .err = err};
    return parse_file(&parser);
}
