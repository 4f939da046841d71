/* Frame decoding front door: knows the transfer syntaxes, finds frame N's bytes (native
 * offset, or fragments via the Basic Offset Table or JPEG/J2K start markers), routes them to
 * a codec (a deflated frame is inflated, then read as native), and normalises the result to
 * stored values (Bits Stored at High Bit, sign). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/codec_internal.h"

enum syntax_family {
    FAMILY_UNSUPPORTED,
    FAMILY_NATIVE,
    FAMILY_JPEG, /* routed by the frame header: lossless (SOF3) here, DCT to libjpeg (8-bit)
                  * or GDCM's IJG build (12-bit) */
    FAMILY_JPEGLS,
    FAMILY_J2K,
    FAMILY_JXL,
    FAMILY_RLE,
    FAMILY_DEFLATE,             /* each frame's native bytes in a fragment, raw Deflate */
    FAMILY_ENCAPSULATED_NATIVE, /* each frame's native bytes in a fragment, as they are */
};

struct syntax {
    const char *uid;
    const char *name;
    enum syntax_family family;
    bool lossless;
};

static const struct syntax syntaxes[] = {
        {"1.2.840.10008.1.2", "Implicit VR Little Endian", FAMILY_NATIVE, true},
        {"1.2.840.10008.1.2.1", "Explicit VR Little Endian", FAMILY_NATIVE, true},
        {"1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian",
         FAMILY_ENCAPSULATED_NATIVE, true},
        {"1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", FAMILY_NATIVE, true},
        {"1.2.840.10008.1.2.2", "Explicit VR Big Endian", FAMILY_NATIVE, true},
        {"1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", FAMILY_JPEG, false},
        {"1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", FAMILY_JPEG, false},
        {"1.2.840.10008.1.2.4.53", "JPEG Spectral Selection (retired)", FAMILY_JPEG, false},
        {"1.2.840.10008.1.2.4.55", "JPEG Full Progression (retired)", FAMILY_JPEG, false},
        {"1.2.840.10008.1.2.4.57", "JPEG Lossless (Process 14)", FAMILY_JPEG, true},
        {"1.2.840.10008.1.2.4.70", "JPEG Lossless SV1 (Process 14, Selection Value 1)", FAMILY_JPEG,
         true},
        {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", FAMILY_JPEGLS, true},
        {"1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless", FAMILY_JPEGLS, false},
        {"1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless Only", FAMILY_J2K, true},
        {"1.2.840.10008.1.2.4.91", "JPEG 2000", FAMILY_J2K, false},
        {"1.2.840.10008.1.2.4.201", "HTJ2K Lossless", FAMILY_J2K, true},
        {"1.2.840.10008.1.2.4.202", "HTJ2K Lossless RPCL", FAMILY_J2K, true},
        {"1.2.840.10008.1.2.4.203", "HTJ2K", FAMILY_J2K, false},
        {"1.2.840.10008.1.2.4.110", "JPEG XL Lossless", FAMILY_JXL, true},
        {"1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression", FAMILY_JXL, false},
        {"1.2.840.10008.1.2.4.112", "JPEG XL", FAMILY_JXL, false},
        {"1.2.840.10008.1.2.5", "RLE Lossless", FAMILY_RLE, true},
        {"1.2.840.10008.1.2.8.1", "Deflated Image Frame Compression", FAMILY_DEFLATE, true},
        /* Known but not decoded: named in the error message. */
        {"1.2.840.10008.1.2.4.52", "JPEG Extended (Process 3 & 5, retired)", FAMILY_UNSUPPORTED,
         false},
        {"1.2.840.10008.1.2.4.58", "JPEG Lossless (Process 15, retired)", FAMILY_UNSUPPORTED, true},
        {"1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component Lossless", FAMILY_UNSUPPORTED,
         true},
        {"1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component", FAMILY_UNSUPPORTED, false},
        {"1.2.840.10008.1.2.4.94", "JPIP Referenced", FAMILY_UNSUPPORTED, false},
        {"1.2.840.10008.1.2.4.100", "MPEG2 Main Profile", FAMILY_UNSUPPORTED, false},
        {"1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264", FAMILY_UNSUPPORTED, false},
        {"1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile", FAMILY_UNSUPPORTED, false},
};

static const struct syntax *syntax_find(const char *uid)
{
    if (uid == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(syntaxes) / sizeof(syntaxes[0]); i++) {
        if (strcmp(syntaxes[i].uid, uid) == 0)
            return &syntaxes[i];
    }
    return NULL;
}

const char *cxr_codec_syntax_name(const char *transfer_syntax_uid)
{
    const struct syntax *syntax = syntax_find(transfer_syntax_uid);
    return syntax ? syntax->name : "unknown transfer syntax";
}

bool cxr_codec_syntax_supported(const char *transfer_syntax_uid)
{
    const struct syntax *syntax = syntax_find(transfer_syntax_uid);
    return syntax && syntax->family != FAMILY_UNSUPPORTED;
}

bool cxr_codec_syntax_encapsulated(const char *transfer_syntax_uid)
{
    const struct syntax *syntax = syntax_find(transfer_syntax_uid);
    return syntax && syntax->family != FAMILY_NATIVE;
}

bool cxr_codec_syntax_lossless(const char *transfer_syntax_uid)
{
    const struct syntax *syntax = syntax_find(transfer_syntax_uid);
    return syntax && syntax->lossless;
}

void cxr_codec_frame_release(struct cxr_codec_frame *frame)
{
    if (frame == NULL)
        return;
    free(frame->samples);
    memset(frame, 0, sizeof(*frame));
}

static bool is_photometric(const struct cxr_dicom_pixel_desc *desc, const char *name)
{
    return desc->photometric_interpretation && strcmp(desc->photometric_interpretation, name) == 0;
}

/* Bytes of one frame in the native layout; a 1-bit frame rounded up to whole bytes (frames of
 * native 1-bit data run on bit by bit; a frame in its own fragment starts on a byte boundary). */
static size_t native_frame_bytes(const struct cxr_dicom_pixel_desc *desc)
{
    size_t pixel_count = (size_t)desc->rows * desc->columns;
    size_t sample_count = pixel_count * desc->samples_per_pixel;
    if (desc->bits_allocated == 1)
        return (sample_count + 7) / 8;
    if (is_photometric(desc, "YBR_FULL_422") && desc->samples_per_pixel == 3 &&
        desc->bits_allocated == 8)
        return pixel_count * 2;
    return sample_count * (desc->bits_allocated / 8u);
}

/* Reads native frame bytes into raw (unnormalised) samples. */
static enum cxr_status decode_native(const struct cxr_dicom_pixel_desc *desc,
                                     const struct cxr_dicom_pixel_data *pixels,
                                     uint32_t frame_index, int32_t *samples, bool *was_ybr422,
                                     struct cxr_err *err)
{
    const size_t pixel_count = (size_t)desc->rows * desc->columns;
    const uint32_t spp = desc->samples_per_pixel;
    const size_t sample_count = pixel_count * spp;
    const uint16_t bits = desc->bits_allocated;
    const uint8_t *data = pixels->native;
    if (bits == 1) {
        if (spp != 1)
            return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "1-bit colour pixel data");
        /* Frames of 1-bit data follow each other bit by bit, not byte-aligned. */
        uint64_t first_bit = (uint64_t)frame_index * sample_count;
        if ((first_bit + sample_count + 7) / 8 > pixels->native_size)
            return cxr_err_set(err, CXR_ERR_MALFORMED,
                               "pixel data holds %zu bytes, too few for frame %u",
                               pixels->native_size, frame_index + 1);
        for (size_t i = 0; i < sample_count; i++) {
            uint64_t bit = first_bit + i;
            samples[i] = (data[bit >> 3] >> (bit & 7)) & 1;
        }
        return CXR_OK;
    }
    bool ybr422 = is_photometric(desc, "YBR_FULL_422") && spp == 3;
    if (ybr422 && (bits != 8 || desc->columns % 2 != 0 || desc->planar_configuration != 0))
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                           "native YBR_FULL_422 with %u bits, %u columns, planar %u", bits,
                           desc->columns, desc->planar_configuration);
    size_t bytes_per_sample = bits / 8u;
    size_t frame_bytes = native_frame_bytes(desc);
    if ((uint64_t)frame_index + 1 > SIZE_MAX / frame_bytes ||
        frame_bytes * ((size_t)frame_index + 1) > pixels->native_size)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "pixel data holds %zu bytes, too few for frame %u of %zu bytes",
                           pixels->native_size, frame_index + 1, frame_bytes);
    data += frame_bytes * frame_index;
    if (ybr422) {
        /* Y1 Y2 Cb Cr for each pair of pixels (PS3.3 C.7.6.3.1.2): chroma is repeated. */
        for (size_t pair = 0; pair < pixel_count / 2; pair++) {
            const uint8_t *in = data + 4 * pair;
            int32_t *out = samples + 6 * pair;
            out[0] = in[0];
            out[1] = in[2];
            out[2] = in[3];
            out[3] = in[1];
            out[4] = in[2];
            out[5] = in[3];
        }
        *was_ybr422 = true;
        return CXR_OK;
    }
    bool planar = spp > 1 && desc->planar_configuration == 1;
    size_t first = sample_count * frame_index;
    for (size_t i = 0; i < sample_count; i++) {
        /* i walks the file's order; target is the interleaved position. */
        size_t target = planar ? (i % pixel_count) * spp + i / pixel_count : i;
        samples[target] =
                (int32_t)cxr_codec_native_raw(pixels, (unsigned)bytes_per_sample, first + i);
    }
    return CXR_OK;
}

static bool starts_frame(enum syntax_family family, const struct cxr_dicom_fragment *fragment)
{
    const uint8_t *p = fragment->data;
    if (fragment->size < 4)
        return false;
    if (family == FAMILY_J2K)
        return (p[0] == 0xFF && p[1] == 0x4F && p[2] == 0xFF && p[3] == 0x51) ||
               (fragment->size >= 8 && p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 12 &&
                p[4] == 'j' && p[5] == 'P');
    if (family == FAMILY_JPEG || family == FAMILY_JPEGLS)
        return p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF;
    if (family == FAMILY_JXL) /* a codestream, or a container's signature box */
        return (p[0] == 0xFF && p[1] == 0x0A) ||
               (fragment->size >= 8 && p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 12 &&
                p[4] == 'J' && p[5] == 'X' && p[6] == 'L' && p[7] == ' ');
    return true; /* RLE, deflated and encapsulated native frames: one fragment per frame */
}

/* Finds the fragments [first, end) of frame frame_index. */
static enum cxr_status frame_fragments(const struct cxr_dicom_pixel_desc *desc,
                                       const struct cxr_dicom_pixel_data *pixels,
                                       enum syntax_family family, uint32_t frame_index,
                                       size_t *first, size_t *end, struct cxr_err *err)
{
    size_t count = pixels->fragment_count;
    uint32_t frames = desc->number_of_frames ? desc->number_of_frames : 1;
    if (count == 0)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "encapsulated pixel data has no fragments");
    if (frames == 1) {
        *first = 0;
        *end = count;
        return CXR_OK;
    }
    if (pixels->offset_count == frames) {
        /* Basic Offset Table: offsets from the first fragment's item tag; each item has an
         * 8-byte header. */
        uint64_t target = pixels->offsets[frame_index];
        uint64_t next = frame_index + 1 < frames ? pixels->offsets[frame_index + 1] : UINT64_MAX;
        uint64_t position = 0;
        size_t begin = count;
        size_t stop = count;
        for (size_t i = 0; i < count; i++) {
            if (position == target)
                begin = i;
            if (position == next) {
                stop = i;
                break;
            }
            position += 8 + (uint64_t)pixels->fragments[i].size;
        }
        if (begin < stop) {
            *first = begin;
            *end = stop;
            return CXR_OK;
        }
        /* A table that does not match the fragments: fall back to the markers below. */
    }
    if (count == frames) {
        *first = frame_index;
        *end = frame_index + 1;
        return CXR_OK;
    }
    size_t seen = 0;
    for (size_t i = 0; i < count; i++) {
        if (!starts_frame(family, &pixels->fragments[i]))
            continue;
        if (seen == frame_index) {
            size_t stop = i + 1;
            while (stop < count && !starts_frame(family, &pixels->fragments[stop]))
                stop++;
            *first = i;
            *end = stop;
            return CXR_OK;
        }
        seen++;
    }
    return cxr_err_set(err, CXR_ERR_MALFORMED, "frame %u not found among %zu fragments",
                       frame_index + 1, count);
}

/* The compressed bytes of frame frame_index: its one fragment as it lies in the file, or its
 * fragments joined into *joined, which the caller frees. */
static enum cxr_status frame_data(const struct cxr_dicom_pixel_desc *desc,
                                  const struct cxr_dicom_pixel_data *pixels,
                                  enum syntax_family family, uint32_t frame_index,
                                  const uint8_t **data, size_t *size, uint8_t **joined,
                                  struct cxr_err *err)
{
    size_t first = 0;
    size_t end = 0;
    *joined = NULL;
    enum cxr_status status = frame_fragments(desc, pixels, family, frame_index, &first, &end, err);
    if (status != CXR_OK)
        return status;
    *data = pixels->fragments[first].data;
    *size = pixels->fragments[first].size;
    if (end - first == 1)
        return CXR_OK;
    size_t total = 0;
    for (size_t i = first; i < end; i++)
        total += pixels->fragments[i].size; /* fragments lie in one file: cannot overflow */
    uint8_t *bytes = malloc(total ? total : 1);
    if (bytes == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory joining fragments");
    size_t at = 0;
    for (size_t i = first; i < end; i++) {
        memcpy(bytes + at, pixels->fragments[i].data, pixels->fragments[i].size);
        at += pixels->fragments[i].size;
    }
    *data = bytes;
    *size = total;
    *joined = bytes;
    return CXR_OK;
}

/* A frame's native little-endian bytes in its own fragment (PS3.5 A.4.11 and 8.2.16): as they
 * are (Encapsulated Uncompressed), or inflated (Deflated Image Frame Compression). The frame
 * must fill the fragment, but for one pad byte to an even length. */
static enum cxr_status decode_framed_native(const struct cxr_dicom_pixel_desc *desc,
                                            const struct cxr_dicom_pixel_data *pixels,
                                            enum syntax_family family, uint32_t frame_index,
                                            int32_t *samples, bool *was_ybr422, struct cxr_err *err)
{
    const uint8_t *data = NULL;
    size_t size = 0;
    uint8_t *joined = NULL;
    enum cxr_status status =
            frame_data(desc, pixels, family, frame_index, &data, &size, &joined, err);
    if (status != CXR_OK)
        return status;
    size_t frame_bytes = native_frame_bytes(desc);
    uint8_t *inflated = NULL;
    if (family == FAMILY_DEFLATE) {
        inflated = malloc(frame_bytes + 1);
        status = inflated == NULL
                         ? cxr_err_set(err, CXR_ERR_NOMEM, "out of memory inflating a frame")
                         : cxr_codec_inflate_frame(data, size, inflated, frame_bytes, err);
        data = inflated;
    } else if (size != frame_bytes && size != frame_bytes + 1) {
        status = cxr_err_set(err, CXR_ERR_MALFORMED,
                             "frame %u holds %zu bytes; its native size is %zu", frame_index + 1,
                             size, frame_bytes);
    }
    if (status == CXR_OK) {
        struct cxr_dicom_pixel_data frame = {.native = data, .native_size = frame_bytes};
        status = decode_native(desc, &frame, 0, samples, was_ybr422, err);
    }
    free(inflated);
    free(joined);
    return status;
}

/* Decodes frame frame_index of encapsulated data. *precision receives the bits per sample of
 * the codestream when it can hold the whole Bits Allocated container (RLE, JPEG Lossless,
 * JPEG-LS), else 0: the caller then takes the stored value at bit 0. */
static enum cxr_status decode_encapsulated(const struct cxr_dicom_pixel_desc *desc,
                                           const struct cxr_dicom_pixel_data *pixels,
                                           const struct syntax *syntax, uint32_t frame_index,
                                           int32_t *samples, bool *became_rgb, unsigned *precision,
                                           struct cxr_err *err)
{
    *precision = 0;
    const uint8_t *data = NULL;
    size_t size = 0;
    uint8_t *joined = NULL;
    enum cxr_status status =
            frame_data(desc, pixels, syntax->family, frame_index, &data, &size, &joined, err);
    if (status != CXR_OK)
        return status;
    uint32_t width = desc->columns;
    uint32_t height = desc->rows;
    uint32_t spp = desc->samples_per_pixel;
    switch (syntax->family) {
    case FAMILY_RLE:
        status = cxr_codec_rle_decode(data, size, width, height, spp, desc->bits_allocated, samples,
                                      err);
        *precision = desc->bits_allocated; /* RLE segments are the container's bytes */
        break;
    case FAMILY_JPEGLS:
        status = cxr_codec_jpegls_decode(data, size, width, height, spp, samples, precision, err);
        break;
    case FAMILY_JXL:
        status = cxr_codec_jxl_decode(data, size, width, height, spp, samples, err);
        *became_rgb = spp == 3;
        break;
    case FAMILY_J2K:
        status = cxr_codec_j2k_decode(data, size, width, height, spp, samples, err);
        *became_rgb =
                spp == 3 && (is_photometric(desc, "YBR_RCT") || is_photometric(desc, "YBR_ICT"));
        break;
    case FAMILY_JPEG: {
        struct cxr_codec_jpeg_info info;
        status = cxr_codec_jpeg_info_read(data, size, &info, err);
        if (status != CXR_OK)
            break;
        if (info.sof_marker == 0xFFC3) {
            status = cxr_codec_jpeg_lossless_decode(data, size, width, height, spp, samples, err);
            *precision = info.precision;
        } else if ((info.sof_marker == 0xFFC0 || info.sof_marker == 0xFFC1 ||
                    info.sof_marker == 0xFFC2) &&
                   (info.precision == 8 || info.precision == 12)) {
            bool ybr = is_photometric(desc, "YBR_FULL_422") || is_photometric(desc, "YBR_FULL") ||
                       is_photometric(desc, "YBR_PARTIAL_420");
            status = info.precision == 8 ? cxr_codec_jpeg_dct_decode(data, size, width, height, spp,
                                                                     ybr, samples, err)
                                         : cxr_codec_jpeg12_decode(data, size, width, height, spp,
                                                                   ybr, samples, err);
            *became_rgb = spp == 3;
        } else {
            status = cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                                 "transfer syntax %s (%s): JPEG frame type SOF%u with %u-bit "
                                 "precision is not supported",
                                 syntax->uid, syntax->name, info.sof_marker & 15, info.precision);
        }
        break;
    }
    default:
        status = cxr_err_set(err, CXR_ERR_INTERNAL, "no codec for %s", syntax->uid);
        break;
    }
    free(joined);
    return status;
}

/* Stored value of each sample: Bits Stored bits at High Bit (native data, and codestreams
 * that hold the whole container) or at bit 0 (other codec output), sign-extended when Pixel
 * Representation is 1. */
static void normalise(int32_t *samples, size_t count, unsigned shift, unsigned bits_stored,
                      bool is_signed)
{
    if (bits_stored >= 32 && shift == 0)
        return;
    for (size_t i = 0; i < count; i++)
        samples[i] = cxr_codec_stored_value((uint32_t)samples[i], shift, bits_stored, is_signed);
}

enum cxr_status cxr_codec_frame_decode(const struct cxr_dicom_pixel_desc *desc,
                                       const struct cxr_dicom_pixel_data *pixels,
                                       uint32_t frame_index, const struct cxr_limits *limits,
                                       struct cxr_codec_frame *out, struct cxr_err *err)
{
    if (desc == NULL || pixels == NULL || limits == NULL || out == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "codec: missing argument");
    const char *uid = desc->transfer_syntax_uid ? desc->transfer_syntax_uid : "";
    const struct syntax *syntax = syntax_find(uid);
    if (syntax == NULL || syntax->family == FAMILY_UNSUPPORTED)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "transfer syntax %s (%s) is not supported",
                           uid, cxr_codec_syntax_name(uid));
    uint32_t frames = desc->number_of_frames ? desc->number_of_frames : 1;
    if (frame_index >= frames)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "frame %u requested, the file has %u",
                           frame_index + 1, frames);
    if (desc->rows == 0 || desc->columns == 0)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "image has %u rows and %u columns", desc->rows,
                           desc->columns);
    if (desc->samples_per_pixel != 1 && desc->samples_per_pixel != 3)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "%u samples per pixel",
                           desc->samples_per_pixel);
    uint16_t bits = desc->bits_allocated;
    if (bits != 1 && bits != 8 && bits != 16 && bits != 32)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED, "Bits Allocated %u is not supported", bits);
    if (desc->bits_stored == 0 || desc->bits_stored > bits)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "Bits Stored %u with Bits Allocated %u",
                           desc->bits_stored, bits);
    if ((pixels->encapsulated != (syntax->family != FAMILY_NATIVE)))
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "pixel data is %s but the transfer syntax %s is %s",
                           pixels->encapsulated ? "encapsulated" : "native", uid,
                           syntax->family == FAMILY_NATIVE ? "native" : "encapsulated");
    size_t pixel_count = (size_t)desc->rows * desc->columns;
    if (pixel_count > limits->max_image_pixels)
        return cxr_err_set(err, CXR_ERR_LIMIT, "image of %ux%u pixels exceeds the limit of %zu",
                           desc->columns, desc->rows, limits->max_image_pixels);
    size_t sample_count = pixel_count * desc->samples_per_pixel;
    if (sample_count > limits->max_decoded_bytes / sizeof(int32_t))
        return cxr_err_set(err, CXR_ERR_LIMIT,
                           "decoded frame of %zu samples exceeds the limit of %zu bytes",
                           sample_count, limits->max_decoded_bytes);
    int32_t *samples = malloc(sample_count * sizeof(*samples));
    if (samples == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory for a %ux%u frame", desc->columns,
                           desc->rows);
    bool became_rgb = false;
    bool was_ybr422 = false;
    enum cxr_status status;
    unsigned shift = 0;
    unsigned precision = 0;
    bool native_layout = syntax->family == FAMILY_NATIVE || syntax->family == FAMILY_DEFLATE ||
                         syntax->family == FAMILY_ENCAPSULATED_NATIVE;
    if (syntax->family == FAMILY_NATIVE)
        status = decode_native(desc, pixels, frame_index, samples, &was_ybr422, err);
    else if (native_layout)
        status = decode_framed_native(desc, pixels, syntax->family, frame_index, samples,
                                      &was_ybr422, err);
    else
        status = decode_encapsulated(desc, pixels, syntax, frame_index, samples, &became_rgb,
                                     &precision, err);
    /* High Bit places the stored bits in native data, and in a lossless codestream whose
     * precision reaches it (an encoder that kept the container, as DCMTK's do: 12 bits stored
     * at High Bit 15 come back as 16-bit words). A codestream of Bits Stored bits carries the
     * stored value at bit 0. */
    if (native_layout || precision > desc->high_bit)
        shift = cxr_codec_native_shift(desc);
    if (status != CXR_OK) {
        free(samples);
        return status;
    }
    normalise(samples, sample_count, shift, desc->bits_stored, desc->pixel_representation == 1);
    memset(out, 0, sizeof(*out));
    out->width = desc->columns;
    out->height = desc->rows;
    out->samples_per_pixel = desc->samples_per_pixel;
    const char *photometric =
            desc->photometric_interpretation ? desc->photometric_interpretation : "";
    if (became_rgb)
        photometric = "RGB";
    else if (was_ybr422 ||
             (desc->samples_per_pixel == 3 && strcmp(photometric, "YBR_FULL_422") == 0))
        photometric = "YBR_FULL"; /* codecs here return full-resolution chroma */
    snprintf(out->photometric, sizeof(out->photometric), "%s", photometric);
    out->samples = samples;
    return CXR_OK;
}
