/* JPEG XL (DICOM .4.110 lossless, .4.111 JPEG recompression, .4.112) through libjxl, read from
 * memory, one frame per call. libjxl hands out samples as floats in [0, 1] of the stream's bit
 * depth; scaled back by 2^bits - 1 and rounded they are the stored integers (exactly, for
 * lossless streams: float32 holds them with room to spare). Streams that would need more than
 * the DICOM header describes are refused rather than guessed at: animation, extra channels
 * (alpha), an orientation other than as stored, float samples, more than 16 bits. */
#include <math.h>
#include <stdlib.h>

#include <jxl/decode.h>

#include "codec/codec.h"
#include "codec/codec_internal.h"

/* The basic info against the DICOM header. */
static enum cxr_status check_info(const JxlBasicInfo *info, uint32_t width, uint32_t height,
                                  uint32_t components, struct cxr_err *err)
{
    if (info->xsize != width || info->ysize != height)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "libjxl: image is %ux%u, the DICOM header says %ux%u", info->xsize,
                           info->ysize, width, height);
    if (info->num_color_channels != components)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "libjxl: %u colour channels, the DICOM header says %u samples",
                           info->num_color_channels, components);
    if (info->have_animation || info->num_extra_channels != 0 ||
        info->orientation != JXL_ORIENT_IDENTITY)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                           "libjxl: animation, extra channels or a stored orientation (%u) are "
                           "not supported",
                           (unsigned)info->orientation);
    if (info->exponent_bits_per_sample != 0 || info->bits_per_sample < 1 ||
        info->bits_per_sample > 16)
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                           "libjxl: %u-bit samples (%u exponent bits) are not supported",
                           info->bits_per_sample, info->exponent_bits_per_sample);
    return CXR_OK;
}

/* Hands libjxl the frame's float buffer, *pixels, allocated here once: a second image or one of
 * another size than the header's is refused. */
static enum cxr_status set_output(JxlDecoder *decoder, const JxlPixelFormat *format, size_t count,
                                  float **pixels, struct cxr_err *err)
{
    size_t bytes = 0;
    if (*pixels != NULL ||
        JxlDecoderImageOutBufferSize(decoder, format, &bytes) != JXL_DEC_SUCCESS ||
        bytes != count * sizeof(float))
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "libjxl: the stream holds another image than the header's %zu samples",
                           count);
    if ((*pixels = malloc(bytes)) == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "libjxl: out of memory for %zu samples", count);
    if (JxlDecoderSetImageOutBuffer(decoder, format, *pixels, bytes) != JXL_DEC_SUCCESS)
        return cxr_err_set(err, CXR_ERR_INTERNAL, "libjxl: the output buffer was refused");
    return CXR_OK;
}

enum cxr_status cxr_codec_jxl_decode(const uint8_t *data, size_t size, uint32_t width,
                                     uint32_t height, uint32_t components, int32_t *samples,
                                     struct cxr_err *err)
{
    if (JxlSignatureCheck(data, size) < JXL_SIG_CODESTREAM)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "libjxl: fragment is neither a JPEG XL codestream nor a container");
    JxlDecoder *decoder = JxlDecoderCreate(NULL);
    if (decoder == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "libjxl: cannot create a decoder");
    enum cxr_status status = CXR_OK;
    float *pixels = NULL;
    size_t count = (size_t)width * height * components;
    JxlPixelFormat format = {components, JXL_TYPE_FLOAT, JXL_NATIVE_ENDIAN, 0};
    JxlBasicInfo info = {0};
    bool decoded = false;
    if (JxlDecoderSubscribeEvents(decoder, JXL_DEC_BASIC_INFO | JXL_DEC_FULL_IMAGE) !=
                JXL_DEC_SUCCESS ||
        JxlDecoderSetKeepOrientation(decoder, JXL_TRUE) != JXL_DEC_SUCCESS ||
        JxlDecoderSetInput(decoder, data, size) != JXL_DEC_SUCCESS) {
        status = cxr_err_set(err, CXR_ERR_INTERNAL, "libjxl: cannot set up the decoder");
        goto done;
    }
    JxlDecoderCloseInput(decoder);
    for (;;) {
        JxlDecoderStatus event = JxlDecoderProcessInput(decoder);
        if (event == JXL_DEC_BASIC_INFO) {
            if (JxlDecoderGetBasicInfo(decoder, &info) != JXL_DEC_SUCCESS ||
                (status = check_info(&info, width, height, components, err)) != CXR_OK)
                break;
        } else if (event == JXL_DEC_NEED_IMAGE_OUT_BUFFER) {
            if ((status = set_output(decoder, &format, count, &pixels, err)) != CXR_OK)
                break;
        } else if (event == JXL_DEC_FULL_IMAGE) {
            decoded = true;
        } else if (event == JXL_DEC_SUCCESS) {
            break;
        } else {
            status = cxr_err_set(err, CXR_ERR_MALFORMED, "libjxl: %s",
                                 event == JXL_DEC_NEED_MORE_INPUT ? "the stream is truncated"
                                                                  : "the stream is corrupt");
            break;
        }
    }
    if (status == CXR_OK && !decoded)
        status = cxr_err_set(err, CXR_ERR_MALFORMED, "libjxl: the stream holds no image");
    if (status == CXR_OK) {
        float top = (float)((1u << info.bits_per_sample) - 1);
        for (size_t i = 0; i < count; i++) {
            float level = nearbyintf(pixels[i] * top);
            samples[i] = !(level > 0.0f) ? 0 : level >= top ? (int32_t)top : (int32_t)level;
        }
    }
done:
    free(pixels);
    JxlDecoderDestroy(decoder);
    return status;
}
