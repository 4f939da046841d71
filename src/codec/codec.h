/* Pixel data decoding by transfer syntax: turns one frame of a DICOM file's pixel data (native
 * or encapsulated fragments) into stored values, one int32 per sample, ready for the rendering
 * chain in image/. RLE Lossless and JPEG Lossless (process 14) are decoded here; JPEG baseline,
 * JPEG-LS, JPEG 2000 / HTJ2K and Deflated Image Frame Compression go through libjpeg-turbo,
 * CharLS, OpenJPEG and libdeflate; Encapsulated Uncompressed frames are read as native.
 *
 * Ownership: outputs are written only on success; on failure the callee frees what it
 * allocated. Thread safe: no shared state (each call uses its own library contexts). */
#ifndef CXR_CODEC_H
#define CXR_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dicom/dicom.h"
#include "util/util.h"

/* One decoded frame. samples holds width * height * samples_per_pixel values, row-major and
 * interleaved by pixel (planar data is interleaved by the decoder). Each value is the stored
 * value: Bits Stored bits taken at High Bit, sign-extended when Pixel Representation is 1.
 * For Bits Allocated 32 unsigned data the value is kept in 32 bits (the cast back to uint32_t
 * is the stored value). */
struct cxr_codec_frame {
    uint32_t width;
    uint32_t height;
    uint32_t samples_per_pixel;
    /* The photometric interpretation of the samples after decoding. Usually the file's, but
     * JPEG baseline YBR_FULL(_422) and JPEG 2000 YBR_RCT/YBR_ICT come out of their codecs as
     * RGB, so this says "RGB" then; native YBR_FULL_422 is upsampled and says YBR_FULL. */
    char photometric[17];
    int32_t *samples;
};

/* Decodes frame frame_index (0-based) of the pixel data. Errors: CXR_ERR_UNSUPPORTED naming
 * the transfer syntax UID and name when it is not handled; CXR_ERR_MALFORMED for corrupt or
 * truncated data or a description the data contradict; CXR_ERR_LIMIT when the frame exceeds
 * limits->max_image_pixels or max_decoded_bytes; CXR_ERR_INVALID_ARG for a frame index past
 * Number of Frames. */
enum cxr_status cxr_codec_frame_decode(const struct cxr_dicom_pixel_desc *desc,
                                       const struct cxr_dicom_pixel_data *pixels,
                                       uint32_t frame_index, const struct cxr_limits *limits,
                                       struct cxr_codec_frame *out, struct cxr_err *err);

/* Frees the samples and zeroes the struct; NULL is a no-op. */
void cxr_codec_frame_release(struct cxr_codec_frame *frame);

/* ---- Native sample layout: the one place that reads native containers and stored values,
 * used by cxr_codec_frame_decode and by image/'s native fast path (cxr_image_render_native) */

/* Raw container value of sample `index` (counted from the start of the pixel data) of native
 * data with 1, 2 or 4 bytes per sample, in the data's byte order. 8-bit samples of big endian
 * data sit in OW words whose bytes are swapped in pairs (dicom.h): a byte past native_size
 * (the odd last one) reads as 0. The caller has checked that the sample lies in the data. */
static inline uint32_t cxr_codec_native_raw(const struct cxr_dicom_pixel_data *pixels,
                                            unsigned bytes_per_sample, size_t index)
{
    const uint8_t *p = pixels->native + index * bytes_per_sample;
    bool big = pixels->big_endian;
    if (bytes_per_sample == 1 && big) {
        size_t at = index ^ 1u;
        return at < pixels->native_size ? pixels->native[at] : 0;
    }
    if (bytes_per_sample == 1)
        return p[0];
    if (bytes_per_sample == 2)
        return big ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Bits below the stored bits in a native container: High Bit + 1 - Bits Stored. A nonsensical
 * High Bit is taken as Bits Stored - 1 (the usual value), as DCMTK does. */
static inline unsigned cxr_codec_native_shift(const struct cxr_dicom_pixel_desc *desc)
{
    if (desc->high_bit < desc->bits_allocated && desc->high_bit + 1u >= desc->bits_stored)
        return (unsigned)(desc->high_bit + 1 - desc->bits_stored);
    return 0;
}

/* Stored value of a raw value: bits_stored (1 to 32) bits above shift, sign-extended when
 * is_signed (Pixel Representation 1). */
static inline int32_t cxr_codec_stored_value(uint32_t raw, unsigned shift, unsigned bits_stored,
                                             bool is_signed)
{
    uint32_t mask = bits_stored >= 32 ? UINT32_MAX : (1u << bits_stored) - 1;
    uint32_t value = (raw >> shift) & mask;
    if (!is_signed)
        return (int32_t)value;
    uint32_t sign = 1u << (bits_stored - 1);
    return (int32_t)((value ^ sign) - sign); /* two's complement sign extension */
}

/* A transfer syntax's conventional name ("JPEG Lossless SV1"), or "unknown transfer syntax".
 * Never NULL. */
const char *cxr_codec_syntax_name(const char *transfer_syntax_uid);

/* True when the transfer syntax's pixel data can be decoded by this build. */
bool cxr_codec_syntax_supported(const char *transfer_syntax_uid);

/* True when the transfer syntax's pixel data are encapsulated (compressed fragments). */
bool cxr_codec_syntax_encapsulated(const char *transfer_syntax_uid);

/* True when the transfer syntax is lossless (the decoded values must equal the original). */
bool cxr_codec_syntax_lossless(const char *transfer_syntax_uid);

/* The codecs written here, exposed for tests and fuzzing. Each decodes one whole compressed
 * frame (all its fragments concatenated) into the interleaved stored-value layout above,
 * before masking to Bits Stored (the caller normalises). */

/* RLE Lossless (PS3.5 Annex G): the RLE header, segments of PackBits, most significant byte
 * first. bits_allocated 8, 16 or 32 (1 is decoded as bytes of 8 packed pixels). */
enum cxr_status cxr_codec_rle_decode(const uint8_t *data, size_t size, uint32_t width,
                                     uint32_t height, uint32_t samples_per_pixel,
                                     uint16_t bits_allocated, int32_t *samples,
                                     struct cxr_err *err);

/* JPEG Lossless, process 14 (ITU T.81 Annex H): Huffman, predictors 1-7, point transform,
 * 2-16 bits, restart intervals, 1-4 interleaved or non-interleaved components. width, height
 * and components must match the frame header. Values are the decoded samples (unsigned, in
 * the precision of the frame header). */
enum cxr_status cxr_codec_jpeg_lossless_decode(const uint8_t *data, size_t size, uint32_t width,
                                               uint32_t height, uint32_t components,
                                               int32_t *samples, struct cxr_err *err);

/* Reads only the frame header of a JPEG stream (any SOF): size, components, precision and the
 * SOF marker (0xC0..0xCF). Used to route and validate before decoding. */
struct cxr_codec_jpeg_info {
    uint32_t width;
    uint32_t height;
    uint32_t components;
    uint32_t precision;
    uint32_t sof_marker;
};
enum cxr_status cxr_codec_jpeg_info_read(const uint8_t *data, size_t size,
                                         struct cxr_codec_jpeg_info *info, struct cxr_err *err);

#endif
