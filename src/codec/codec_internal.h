/* Inside codec/: the wrappers over third-party decoders. Each decodes one whole compressed
 * frame, the image codecs into interleaved int32 samples (width * height * samples_per_pixel,
 * allocated by the caller), and translates its library's errors into a cxr_err. */
#ifndef CXR_CODEC_INTERNAL_H
#define CXR_CODEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* libjpeg-turbo, 8-bit DCT (baseline and 8-bit extended). convert_ybr: the DICOM photometric
 * interpretation says YBR_FULL(_422), so the decoder converts YCbCr to RGB; otherwise a
 * three-component stream is taken as RGB as stored (DCMTK's rule). */
enum cxr_status cxr_codec_jpeg_dct_decode(const uint8_t *data, size_t size, uint32_t width,
                                          uint32_t height, uint32_t components, bool convert_ybr,
                                          int32_t *samples, struct cxr_err *err);

/* GDCM's 12-bit IJG build (libgdcmjpeg12): DCT JPEG with 12-bit samples (JPEG Extended,
 * SOF1), values 0..4095; convert_ybr as above. */
enum cxr_status cxr_codec_jpeg12_decode(const uint8_t *data, size_t size, uint32_t width,
                                        uint32_t height, uint32_t components, bool convert_ybr,
                                        int32_t *samples, struct cxr_err *err);

/* CharLS: JPEG-LS lossless and near-lossless; precision receives the stream's bits per
 * sample. */
enum cxr_status cxr_codec_jpegls_decode(const uint8_t *data, size_t size, uint32_t width,
                                        uint32_t height, uint32_t components, int32_t *samples,
                                        unsigned *precision, struct cxr_err *err);

/* OpenJPEG: JPEG 2000 (J2K codestream or JP2 file) and HTJ2K. */
enum cxr_status cxr_codec_j2k_decode(const uint8_t *data, size_t size, uint32_t width,
                                     uint32_t height, uint32_t components, int32_t *samples,
                                     struct cxr_err *err);

/* libjxl: JPEG XL (codestream or container), integer samples of up to 16 bits; colour comes
 * out as RGB. */
enum cxr_status cxr_codec_jxl_decode(const uint8_t *data, size_t size, uint32_t width,
                                     uint32_t height, uint32_t components, int32_t *samples,
                                     struct cxr_err *err);

/* libdeflate: inflates one frame's raw Deflate stream (Deflated Image Frame Compression) into
 * out, which holds frame_bytes + 1 bytes (the frame's native size, and a pad byte an encoder
 * may add). CXR_ERR_MALFORMED when the stream is corrupt or inflates to fewer or more bytes. */
enum cxr_status cxr_codec_inflate_frame(const uint8_t *data, size_t size, uint8_t *out,
                                        size_t frame_bytes, struct cxr_err *err);

#endif
