/* RLE Lossless (DICOM PS3.5 Annex G): a 64-byte header of segment offsets, then one PackBits
 * segment per byte plane (per sample, most significant byte first). Written here because no
 * Debian library decodes DICOM RLE; every length is checked against the fragment. */
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/codec_internal.h"

#define RLE_HEADER_BYTES 64
#define RLE_MAX_SEGMENTS 15

static uint32_t read_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* PackBits into plane[0..plane_size). Returns false when the segment ends before the plane is
 * full. Extra decoded bytes (encoders pad odd-length rows) are ignored. */
static bool unpack_segment(const uint8_t *in, size_t in_size, uint8_t *plane, size_t plane_size)
{
    size_t in_pos = 0;
    size_t out_pos = 0;
    while (out_pos < plane_size && in_pos < in_size) {
        int8_t header = (int8_t)in[in_pos++];
        if (header >= 0) {
            size_t count = (size_t)header + 1;
            if (count > in_size - in_pos)
                count = in_size - in_pos;
            if (count > plane_size - out_pos)
                count = plane_size - out_pos;
            memcpy(plane + out_pos, in + in_pos, count);
            in_pos += (size_t)header + 1;
            out_pos += count;
        } else if (header != -128) {
            size_t count = (size_t)(1 - header);
            if (in_pos >= in_size)
                break;
            uint8_t value = in[in_pos++];
            if (count > plane_size - out_pos)
                count = plane_size - out_pos;
            memset(plane + out_pos, value, count);
            out_pos += count;
        }
    }
    return out_pos == plane_size;
}

enum cxr_status cxr_codec_rle_decode(const uint8_t *data, size_t size, uint32_t width,
                                     uint32_t height, uint32_t samples_per_pixel,
                                     uint16_t bits_allocated, int32_t *samples, struct cxr_err *err)
{
    if (bits_allocated != 1 && bits_allocated != 8 && bits_allocated != 16 && bits_allocated != 32)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "RLE: Bits Allocated %u is not supported",
                           bits_allocated);
    if (samples_per_pixel == 0 || samples_per_pixel > 4 || width == 0 || height == 0)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "RLE: bad image description");
    if (size < RLE_HEADER_BYTES)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "RLE: fragment of %zu bytes has no header",
                           size);
    uint32_t bytes_per_sample = bits_allocated == 1 ? 1 : bits_allocated / 8u;
    uint32_t expected = samples_per_pixel * bytes_per_sample;
    uint32_t segment_count = read_le32(data);
    if (segment_count != expected || segment_count > RLE_MAX_SEGMENTS)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "RLE: %u segments where the image needs %u",
                           segment_count, expected);
    size_t pixel_count = (size_t)width * height; /* caller checked against limits */
    size_t plane_size = bits_allocated == 1 ? (pixel_count + 7) / 8 : pixel_count;
    uint8_t *plane = malloc(plane_size);
    if (plane == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "RLE: out of memory");

    size_t sample_count = pixel_count * samples_per_pixel;
    if (bits_allocated != 1)
        memset(samples, 0, sample_count * sizeof(*samples));
    enum cxr_status status = CXR_OK;
    for (uint32_t segment = 0; segment < segment_count; segment++) {
        uint32_t start = read_le32(data + 4 + 4 * segment);
        uint32_t end = segment + 1 < segment_count
                               ? read_le32(data + 8 + 4 * segment)
                               : (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size);
        if (start < RLE_HEADER_BYTES || start > end || end > size) {
            status = cxr_err_set(err, CXR_ERR_MALFORMED,
                                 "RLE: segment %u offsets %u..%u outside the %zu-byte fragment",
                                 segment + 1, start, end, size);
            break;
        }
        if (!unpack_segment(data + start, end - start, plane, plane_size)) {
            status = cxr_err_set(err, CXR_ERR_MALFORMED, "RLE: segment %u is truncated",
                                 segment + 1);
            break;
        }
        uint32_t sample_index = segment / bytes_per_sample;
        uint32_t byte_index = segment % bytes_per_sample; /* 0 = most significant */
        int32_t *out = samples + sample_index;
        if (bits_allocated == 1) {
            /* A single plane of packed bits, least significant bit first (as native 1-bit). */
            for (size_t i = 0; i < pixel_count; i++)
                out[i] = (plane[i >> 3] >> (i & 7)) & 1;
            continue;
        }
        unsigned shift = 8u * (bytes_per_sample - 1 - byte_index);
        if (samples_per_pixel == 1 && shift == 0 && bytes_per_sample == 1) {
            for (size_t i = 0; i < pixel_count; i++)
                out[i] = plane[i];
        } else {
            for (size_t i = 0; i < pixel_count; i++)
                out[i * samples_per_pixel] = (int32_t)((uint32_t)out[i * samples_per_pixel] |
                                                       (uint32_t)plane[i] << shift);
        }
    }
    free(plane);
    return status;
}
