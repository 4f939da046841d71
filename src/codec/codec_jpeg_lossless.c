/* JPEG Lossless, process 14 (ITU-T T.81 Annex H; DICOM 1.2.840.10008.1.2.4.57 and .70):
 * Huffman-coded differences from one of seven predictors, 2-16 bits, point transform, restart
 * intervals, interleaved or one-scan-per-component images. Written here because Debian's
 * libjpeg-turbo is built without lossless support. Every read is bounded by the stream. */
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/codec_internal.h"

#define LOOKUP_BITS    9
#define MAX_COMPONENTS 4

struct huffman_table {
    bool defined;
    /* Fast path: the next LOOKUP_BITS bits give code length (0 = longer code) and symbol. */
    uint8_t fast_length[1 << LOOKUP_BITS];
    uint8_t fast_symbol[1 << LOOKUP_BITS];
    /* Slow path (T.81 F.2.2.3): per length, the largest code and the index of its first. */
    int32_t max_code[18];
    int32_t value_offset[17];
    uint8_t symbols[256];
};

struct component {
    uint32_t id;
    uint32_t index; /* position in the frame header = position in the output pixel */
};

struct bit_reader {
    const uint8_t *pos;
    const uint8_t *end; /* end of this scan's entropy-coded data */
    uint64_t acc;
    int bits;
    uint32_t padded_bytes; /* zero bytes fed past a marker or the end (overrun detection) */
};

struct lossless_decoder {
    const uint8_t *data;
    size_t size;
    size_t pos;
    struct huffman_table tables[4];
    uint32_t restart_interval;
    bool have_frame;
    uint32_t precision;
    uint32_t width;
    uint32_t height;
    uint32_t components;
    uint32_t component_ids[MAX_COMPONENTS];
    bool component_done[MAX_COMPONENTS];
    int32_t *samples;
    struct cxr_err *err;
};

static uint32_t read_be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static enum cxr_status build_table(struct huffman_table *table, const uint8_t counts[16],
                                   const uint8_t *symbols, uint32_t symbol_count,
                                   struct cxr_err *err)
{
    memset(table, 0, sizeof(*table));
    memcpy(table->symbols, symbols, symbol_count);
    int32_t code = 0;
    uint32_t k = 0;
    for (int length = 1; length <= 16; length++) {
        table->value_offset[length] = (int32_t)k - code;
        for (uint32_t i = 0; i < counts[length - 1]; i++) {
            /* An oversubscribed table would run past the code space (and the fast table);
             * found by fuzz_codec_jpeg_lossless. */
            if (code >= (1 << length))
                return cxr_err_set(err, CXR_ERR_MALFORMED, "JPEG Lossless: bad Huffman table");
            if (length <= LOOKUP_BITS) {
                int fill = LOOKUP_BITS - length;
                for (int j = 0; j < (1 << fill); j++) {
                    table->fast_length[(code << fill) | j] = (uint8_t)length;
                    table->fast_symbol[(code << fill) | j] = symbols[k];
                }
            }
            code++;
            k++;
        }
        table->max_code[length] = counts[length - 1] ? code - 1 : -1;
        code <<= 1;
    }
    table->max_code[17] = INT32_MAX; /* sentinel: a 17-bit code is never valid */
    table->defined = true;
    return CXR_OK;
}

static enum cxr_status parse_dht(struct lossless_decoder *dec, const uint8_t *p, size_t length)
{
    while (length > 0) {
        if (length < 17)
            return cxr_err_set(dec->err, CXR_ERR_MALFORMED, "JPEG Lossless: short DHT");
        uint32_t table_class = p[0] >> 4;
        uint32_t table_id = p[0] & 15;
        uint32_t total = 0;
        for (int i = 0; i < 16; i++)
            total += p[1 + i];
        if (table_id > 3 || total > 256 || 17 + total > length)
            return cxr_err_set(dec->err, CXR_ERR_MALFORMED, "JPEG Lossless: bad DHT");
        if (table_class == 0) {
            enum cxr_status status =
                    build_table(&dec->tables[table_id], p + 1, p + 17, total, dec->err);
            if (status != CXR_OK)
                return status;
        }
        /* AC tables (class 1) are not used by lossless scans; skipped. */
        p += 17 + total;
        length -= 17 + total;
    }
    return CXR_OK;
}

static enum cxr_status parse_sof3(struct lossless_decoder *dec, const uint8_t *p, size_t length,
                                  uint32_t width, uint32_t height, uint32_t components)
{
    if (dec->have_frame)
        return cxr_err_set(dec->err, CXR_ERR_MALFORMED, "JPEG Lossless: second frame header");
    if (length < 6)
        return cxr_err_set(dec->err, CXR_ERR_MALFORMED, "JPEG Lossless: short SOF");
    dec->precision = p[0];
    dec->height = read_be16(p + 1);
    dec->width = read_be16(p + 3);
    dec->components = p[5];
    if (dec->precision < 2 || dec->precision > 16)
        return cxr_err_set(dec->err, CXR_ERR_MALFORMED, "JPEG Lossless: precision %u",
                           dec->precision);
    if (dec->height == 0)
        return cxr_err_set(dec->err, CXR_ERR_UNSUPPORTED,
                           "JPEG Lossless: height defined by DNL is not supported");
    if (dec->width != width || dec->height != height || dec->components != components)
        return cxr_err_set(dec->err, CXR_ERR_MALFORMED,
                           "JPEG Lossless: frame is %ux%u with %u components, the DICOM "
                           "header says %ux%u with %u",
                           dec->width, dec->height, dec->components, width, height, components);
    if (dec->components == 0 || dec->components > MAX_COMPONENTS ||
        length < 6 + 3 * (size_t)dec->components)
        return cxr_err_set(dec->err, CXR_ERR_MALFORMED, "JPEG Lossless: bad SOF");
    for (uint32_t c = 0; c < dec->components; c++) {
        dec->component_ids[c] = p[6 + 3 * c];
        if (p[7 + 3 * c] != 0x11)
            return cxr_err_set(dec->err, CXR_ERR_UNSUPPORTED,
                               "JPEG Lossless: subsampled components are not supported");
    }
    dec->have_frame = true;
    return CXR_OK;
}

static void reader_fill(struct bit_reader *reader)
{
    while (reader->bits <= 56) {
        uint32_t byte = 0;
        if (reader->pos < reader->end) {
            byte = reader->pos[0];
            if (byte == 0xFF) {
                if (reader->pos + 1 < reader->end && reader->pos[1] == 0x00) {
                    reader->pos += 2;
                } else {
                    byte = 0; /* a marker: feed zeros until the caller deals with it */
                    reader->padded_bytes++;
                }
            } else {
                reader->pos++;
            }
        } else {
            reader->padded_bytes++;
        }
        reader->acc = reader->acc << 8 | byte;
        reader->bits += 8;
    }
}

static inline uint32_t reader_peek(struct bit_reader *reader, int count)
{
    return (uint32_t)(reader->acc >> (reader->bits - count)) & ((1u << count) - 1);
}

/* Decodes one difference value (T.81 H.1.2.2: SSSS, then SSSS extra bits; 16 means 32768). */
static inline int32_t decode_difference(struct bit_reader *reader,
                                        const struct huffman_table *table, bool *bad)
{
    if (reader->bits < 32)
        reader_fill(reader);
    uint32_t look = reader_peek(reader, LOOKUP_BITS);
    uint32_t length = table->fast_length[look];
    uint32_t ssss;
    if (length != 0) {
        ssss = table->fast_symbol[look];
    } else {
        int32_t code = (int32_t)reader_peek(reader, LOOKUP_BITS);
        length = LOOKUP_BITS;
        while (code > table->max_code[length]) {
            code = code << 1 | (int32_t)((reader->acc >> (reader->bits - length - 1)) & 1);
            length++;
        }
        if (length > 16) {
            *bad = true;
            return 0;
        }
        ssss = table->symbols[(code + table->value_offset[length]) & 255];
    }
    reader->bits -= (int)length;
    if (ssss == 0)
        return 0;
    if (ssss >= 16) {
        if (ssss > 16)
            *bad = true;
        return 32768;
    }
    if (reader->bits < 16)
        reader_fill(reader);
    int32_t extra = (int32_t)reader_peek(reader, (int)ssss);
    reader->bits -= (int)ssss;
    if (extra < (1 << (ssss - 1)))
        extra += (int32_t)(-(1 << ssss) + 1);
    return extra;
}

/* Skips to the restart marker that must follow an interval and restarts the bit reader. */
static bool restart(struct bit_reader *reader)
{
    const uint8_t *p = reader->pos;
    while (p + 1 < reader->end && !(p[0] == 0xFF && p[1] >= 0xD0 && p[1] <= 0xD7))
        p++;
    if (p + 1 >= reader->end)
        return false;
    reader->pos = p + 2;
    reader->acc = 0;
    reader->bits = 0;
    reader->padded_bytes = 0;
    return true;
}

/* The end of the entropy-coded data starting at start: the first marker that is neither a
 * stuffed 0xFF00 nor a restart marker. */
static size_t scan_end(const uint8_t *data, size_t size, size_t start)
{
    size_t pos = start;
    while (pos + 1 < size) {
        const uint8_t *ff = memchr(data + pos, 0xFF, size - pos - 1);
        if (ff == NULL)
            return size;
        pos = (size_t)(ff - data);
        uint8_t next = data[pos + 1];
        if (next != 0x00 && next != 0xFF && !(next >= 0xD0 && next <= 0xD7))
            return pos;
        pos += next == 0xFF ? 1 : 2;
    }
    return size;
}

static enum cxr_status decode_scan(struct lossless_decoder *dec, const uint8_t *p, size_t length)
{
    if (!dec->have_frame)
        return cxr_err_set(dec->err, CXR_ERR_MALFORMED, "JPEG Lossless: scan before frame");
    if (length < 1)
        return cxr_err_set(dec->err, CXR_ERR_MALFORMED, "JPEG Lossless: short SOS");
    uint32_t scan_count = p[0];
    if (scan_count == 0 || scan_count > dec->components || length < 4 + 2 * (size_t)scan_count)
        return cxr_err_set(dec->err, CXR_ERR_MALFORMED, "JPEG Lossless: bad SOS");
    struct component scan[MAX_COMPONENTS];
    const struct huffman_table *tables[MAX_COMPONENTS];
    for (uint32_t i = 0; i < scan_count; i++) {
        uint32_t id = p[1 + 2 * i];
        uint32_t table_id = p[2 + 2 * i] >> 4;
        uint32_t c = 0;
        while (c < dec->components && dec->component_ids[c] != id)
            c++;
        if (c == dec->components || dec->component_done[c])
            return cxr_err_set(dec->err, CXR_ERR_MALFORMED,
                               "JPEG Lossless: scan names unknown component %u", id);
        if (table_id > 3 || !dec->tables[table_id].defined)
            return cxr_err_set(dec->err, CXR_ERR_MALFORMED,
                               "JPEG Lossless: scan uses undefined Huffman table %u", table_id);
        dec->component_done[c] = true;
        scan[i].id = id;
        scan[i].index = c;
        tables[i] = &dec->tables[table_id];
    }
    uint32_t predictor = p[1 + 2 * scan_count];
    uint32_t point_transform = p[3 + 2 * scan_count] & 15;
    if (predictor < 1 || predictor > 7)
        return cxr_err_set(dec->err, CXR_ERR_MALFORMED,
                           "JPEG Lossless: predictor %u (not a lossless scan)", predictor);
    if (point_transform >= dec->precision)
        return cxr_err_set(dec->err, CXR_ERR_MALFORMED, "JPEG Lossless: point transform %u",
                           point_transform);

    size_t data_start = (size_t)(p + length - dec->data);
    size_t data_end = scan_end(dec->data, dec->size, data_start);
    struct bit_reader reader = {dec->data + data_start, dec->data + data_end, 0, 0, 0};

    const uint32_t width = dec->width;
    const uint32_t stride = dec->components;
    const int32_t initial = 1 << (dec->precision - point_transform - 1);
    int32_t *samples = dec->samples;
    uint32_t rows_per_interval = 0;
    if (dec->restart_interval) {
        /* Lossless restart intervals span whole rows (T.81 H.1.1); libjpeg enforces the same. */
        if (dec->restart_interval % width != 0)
            return cxr_err_set(dec->err, CXR_ERR_UNSUPPORTED,
                               "JPEG Lossless: restart interval %u is not a multiple of the "
                               "row width %u",
                               dec->restart_interval, width);
        rows_per_interval = dec->restart_interval / width;
    }
    bool first_row = true; /* first row of the image or of a restart interval */
    bool bad = false;

    for (uint32_t y = 0; y < dec->height; y++) {
        int32_t *row = samples + (size_t)y * width * stride;
        const int32_t *above = y > 0 ? row - (size_t)width * stride : row;
        if (rows_per_interval && y > 0 && y % rows_per_interval == 0) {
            if (!restart(&reader))
                return cxr_err_set(dec->err, CXR_ERR_MALFORMED,
                                   "JPEG Lossless: restart marker missing");
            first_row = true;
        }
        for (uint32_t x = 0; x < width; x++) {
            for (uint32_t i = 0; i < scan_count; i++) {
                uint32_t c = scan[i].index;
                int32_t prediction;
                if (first_row) {
                    prediction = x == 0 ? initial : row[(x - 1) * stride + c];
                } else if (x == 0) {
                    prediction = above[c];
                } else {
                    int32_t ra = row[(x - 1) * stride + c];
                    int32_t rb = above[x * stride + c];
                    int32_t rc = above[(x - 1) * stride + c];
                    switch (predictor) {
                    case 1:
                        prediction = ra;
                        break;
                    case 2:
                        prediction = rb;
                        break;
                    case 3:
                        prediction = rc;
                        break;
                    case 4:
                        prediction = ra + rb - rc;
                        break;
                    case 5:
                        prediction = ra + ((rb - rc) >> 1);
                        break;
                    case 6:
                        prediction = rb + ((ra - rc) >> 1);
                        break;
                    default:
                        prediction = (ra + rb) >> 1;
                        break;
                    }
                }
                int32_t difference = decode_difference(&reader, tables[i], &bad);
                row[x * stride + c] = (prediction + difference) & 0xFFFF;
            }
        }
        if (bad)
            return cxr_err_set(dec->err, CXR_ERR_MALFORMED, "JPEG Lossless: invalid Huffman code");
        first_row = false;
        /* More padding than the reader could have prefetched means the data ran out. */
        if (reader.padded_bytes * 8 > (uint32_t)reader.bits + 64)
            return cxr_err_set(dec->err, CXR_ERR_MALFORMED,
                               "JPEG Lossless: entropy-coded data truncated");
    }
    if (reader.padded_bytes * 8 > (uint32_t)reader.bits)
        return cxr_err_set(dec->err, CXR_ERR_MALFORMED,
                           "JPEG Lossless: entropy-coded data truncated");
    if (point_transform) {
        for (size_t i = 0; i < (size_t)width * dec->height; i++)
            for (uint32_t s = 0; s < scan_count; s++)
                samples[i * stride + scan[s].index] <<= point_transform;
    }
    dec->pos = data_end;
    return CXR_OK;
}

static enum cxr_status find_marker(struct lossless_decoder *dec, uint32_t *marker)
{
    /* Fill bytes (0xFF) may precede a marker; anything else between segments is skipped as
     * libjpeg does, so trailing garbage after a scan does not fail the image. */
    while (dec->pos + 1 < dec->size) {
        if (dec->data[dec->pos] == 0xFF && dec->data[dec->pos + 1] != 0xFF &&
            dec->data[dec->pos + 1] != 0x00) {
            *marker = dec->data[dec->pos + 1];
            dec->pos += 2;
            return CXR_OK;
        }
        dec->pos++;
    }
    return CXR_ERR_NOT_FOUND;
}

enum cxr_status cxr_codec_jpeg_lossless_decode(const uint8_t *data, size_t size, uint32_t width,
                                               uint32_t height, uint32_t components,
                                               int32_t *samples, struct cxr_err *err)
{
    struct lossless_decoder *dec = calloc(1, sizeof(*dec));
    if (dec == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "JPEG Lossless: out of memory");
    dec->data = data;
    dec->size = size;
    dec->samples = samples;
    dec->err = err;
    enum cxr_status status = CXR_OK;
    if (size < 4 || data[0] != 0xFF || data[1] != 0xD8) {
        status = cxr_err_set(err, CXR_ERR_MALFORMED, "JPEG Lossless: no SOI marker");
        goto done;
    }
    dec->pos = 2;
    uint32_t scans_done = 0;
    for (;;) {
        uint32_t marker;
        if (find_marker(dec, &marker) != CXR_OK)
            break; /* missing EOI: tolerated once every component is decoded */
        if (marker == 0xD9)
            break;
        if (marker >= 0xD0 && marker <= 0xD7)
            continue;
        if (dec->pos + 2 > size) {
            status = cxr_err_set(err, CXR_ERR_MALFORMED, "JPEG Lossless: truncated marker");
            goto done;
        }
        size_t length = read_be16(data + dec->pos);
        if (length < 2 || length > size - dec->pos) {
            status = cxr_err_set(err, CXR_ERR_MALFORMED,
                                 "JPEG Lossless: segment 0x%02X length %zu past the data", marker,
                                 length);
            goto done;
        }
        const uint8_t *body = data + dec->pos + 2;
        size_t body_length = length - 2;
        dec->pos += length;
        switch (marker) {
        case 0xC3:
            status = parse_sof3(dec, body, body_length, width, height, components);
            break;
        case 0xC4:
            status = parse_dht(dec, body, body_length);
            break;
        case 0xDD:
            if (body_length < 2)
                status = cxr_err_set(err, CXR_ERR_MALFORMED, "JPEG Lossless: short DRI");
            else
                dec->restart_interval = read_be16(body);
            break;
        case 0xDA:
            status = decode_scan(dec, body, body_length);
            if (status == CXR_OK)
                scans_done++;
            break;
        case 0xC0:
        case 0xC1:
        case 0xC2:
        case 0xC5:
        case 0xC6:
        case 0xC7:
        case 0xC9:
        case 0xCA:
        case 0xCB:
        case 0xCD:
        case 0xCE:
        case 0xCF:
            status =
                    cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                                "JPEG Lossless: frame type SOF%u is not process 14", marker - 0xC0);
            break;
        case 0xDC:
            status = cxr_err_set(err, CXR_ERR_UNSUPPORTED, "JPEG Lossless: DNL not supported");
            break;
        default:
            break; /* APPn, COM, DQT, ...: not needed */
        }
        if (status != CXR_OK)
            goto done;
        bool all_done = dec->have_frame;
        for (uint32_t c = 0; c < dec->components; c++)
            all_done = all_done && dec->component_done[c];
        if (all_done)
            break;
    }
    bool complete = dec->have_frame && scans_done > 0;
    for (uint32_t c = 0; c < dec->components; c++)
        complete = complete && dec->component_done[c];
    if (!complete)
        status = cxr_err_set(err, CXR_ERR_MALFORMED,
                             "JPEG Lossless: stream ends before every component is decoded");
done:
    free(dec);
    return status;
}
