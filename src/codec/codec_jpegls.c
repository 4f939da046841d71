/* JPEG-LS (DICOM 1.2.840.10008.1.2.4.80 lossless, .81 near-lossless) through CharLS 2.4's C
 * API. CharLS writes 8-bit or 16-bit samples, by plane when the stream is not interleaved and
 * by pixel otherwise; both are copied into the interleaved int32 layout. */
#include <stdlib.h>

#include <charls/charls.h>

#include "codec/codec.h"
#include "codec/codec_internal.h"

enum cxr_status cxr_codec_jpegls_decode(const uint8_t *data, size_t size, uint32_t width,
                                        uint32_t height, uint32_t components, int32_t *samples,
                                        unsigned *precision, struct cxr_err *err)
{
    charls_jpegls_decoder *decoder = charls_jpegls_decoder_create();
    if (decoder == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "CharLS: cannot create a decoder");
    enum cxr_status status = CXR_OK;
    void *buffer = NULL;
    charls_frame_info frame;
    charls_interleave_mode interleave = CHARLS_INTERLEAVE_MODE_NONE;
    size_t buffer_size = 0;
    charls_jpegls_errc code = charls_jpegls_decoder_set_source_buffer(decoder, data, size);
    if (code == CHARLS_JPEGLS_ERRC_SUCCESS)
        code = charls_jpegls_decoder_read_header(decoder);
    if (code == CHARLS_JPEGLS_ERRC_SUCCESS)
        code = charls_jpegls_decoder_get_frame_info(decoder, &frame);
    if (code == CHARLS_JPEGLS_ERRC_SUCCESS)
        code = charls_jpegls_decoder_get_interleave_mode(decoder, &interleave);
    if (code != CHARLS_JPEGLS_ERRC_SUCCESS) {
        status = cxr_err_set(err, CXR_ERR_MALFORMED, "CharLS: %s", charls_get_error_message(code));
        goto done;
    }
    if (frame.width != width || frame.height != height ||
        (uint32_t)frame.component_count != components) {
        status = cxr_err_set(err, CXR_ERR_MALFORMED,
                             "CharLS: image is %ux%u with %d components, the DICOM header says "
                             "%ux%u with %u",
                             frame.width, frame.height, frame.component_count, width, height,
                             components);
        goto done;
    }
    if (frame.bits_per_sample < 2 || frame.bits_per_sample > 16) {
        status = cxr_err_set(err, CXR_ERR_MALFORMED, "CharLS: %d bits per sample",
                             frame.bits_per_sample);
        goto done;
    }
    code = charls_jpegls_decoder_get_destination_size(decoder, 0, &buffer_size);
    if (code != CHARLS_JPEGLS_ERRC_SUCCESS) {
        status = cxr_err_set(err, CXR_ERR_MALFORMED, "CharLS: %s", charls_get_error_message(code));
        goto done;
    }
    *precision = (unsigned)frame.bits_per_sample;
    size_t bytes_per_sample = frame.bits_per_sample > 8 ? 2 : 1;
    size_t sample_count = (size_t)width * height * components;
    if (buffer_size != sample_count * bytes_per_sample) {
        status = cxr_err_set(err, CXR_ERR_MALFORMED, "CharLS: unexpected output size %zu",
                             buffer_size);
        goto done;
    }
    buffer = malloc(buffer_size);
    if (buffer == NULL) {
        status = cxr_err_set(err, CXR_ERR_NOMEM, "CharLS: out of memory");
        goto done;
    }
    code = charls_jpegls_decoder_decode_to_buffer(decoder, buffer, buffer_size, 0);
    if (code != CHARLS_JPEGLS_ERRC_SUCCESS) {
        status = cxr_err_set(err, CXR_ERR_MALFORMED, "CharLS: %s", charls_get_error_message(code));
        goto done;
    }
    size_t pixel_count = (size_t)width * height;
    bool planar = interleave == CHARLS_INTERLEAVE_MODE_NONE && components > 1;
    for (size_t i = 0; i < sample_count; i++) {
        size_t target = planar ? (i % pixel_count) * components + i / pixel_count : i;
        samples[target] = bytes_per_sample == 2 ? ((const uint16_t *)buffer)[i]
                                                : ((const uint8_t *)buffer)[i];
    }
done:
    free(buffer);
    charls_jpegls_decoder_destroy(decoder);
    return status;
}
