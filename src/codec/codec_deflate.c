/* Deflated Image Frame Compression (DICOM PS3.5 8.2.16, 1.2.840.10008.1.2.8.1): each frame is
 * its native little-endian bytes compressed on their own with raw Deflate (RFC 1951, no zlib
 * header), one frame per fragment; 1-bit frames start on a byte boundary. libdeflate inflates
 * into a buffer sized from the pixel description, so no stream can grow past the frame. */
#include <libdeflate.h>

#include "codec/codec_internal.h"

enum cxr_status cxr_codec_inflate_frame(const uint8_t *data, size_t size, uint8_t *out,
                                        size_t frame_bytes, struct cxr_err *err)
{
    struct libdeflate_decompressor *inflater = libdeflate_alloc_decompressor();
    if (inflater == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "out of memory for a deflate decompressor");
    size_t produced = 0;
    /* One byte more than the frame: an encoder may pad an odd-length frame to even length. */
    enum libdeflate_result result =
            libdeflate_deflate_decompress(inflater, data, size, out, frame_bytes + 1, &produced);
    libdeflate_free_decompressor(inflater);
    if (result == LIBDEFLATE_INSUFFICIENT_SPACE)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "deflated frame inflates to more than its %zu bytes", frame_bytes);
    if (result != LIBDEFLATE_SUCCESS)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "deflated frame is corrupt (libdeflate %d)",
                           (int)result);
    if (produced < frame_bytes)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "deflated frame inflates to %zu bytes, the frame needs %zu", produced,
                           frame_bytes);
    return CXR_OK;
}
