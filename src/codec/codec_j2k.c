/* JPEG 2000 (DICOM .4.90/.91) and High-Throughput JPEG 2000 (.4.201/.202/.203) through
 * OpenJPEG 2.5, read from memory. OpenJPEG applies the inverse colour transform itself, so
 * YBR_RCT/YBR_ICT images come out as RGB. Its messages are collected for the error text. */
#include <stdio.h>
#include <string.h>

#include <openjpeg.h>

#include "codec/codec.h"
#include "codec/codec_internal.h"

struct memory_stream {
    const uint8_t *data;
    size_t size;
    size_t pos;
};

static OPJ_SIZE_T stream_read(void *buffer, OPJ_SIZE_T count, void *user)
{
    struct memory_stream *stream = user;
    size_t left = stream->size - stream->pos;
    if (left == 0)
        return (OPJ_SIZE_T)-1;
    if (count > left)
        count = left;
    memcpy(buffer, stream->data + stream->pos, count);
    stream->pos += count;
    return count;
}

static OPJ_OFF_T stream_skip(OPJ_OFF_T count, void *user)
{
    struct memory_stream *stream = user;
    if (count < 0) {
        if ((size_t)-count > stream->pos)
            return -1;
        stream->pos -= (size_t)-count;
        return count;
    }
    size_t left = stream->size - stream->pos;
    if ((uint64_t)count > left)
        count = (OPJ_OFF_T)left;
    stream->pos += (size_t)count;
    return count;
}

static OPJ_BOOL stream_seek(OPJ_OFF_T offset, void *user)
{
    struct memory_stream *stream = user;
    if (offset < 0 || (uint64_t)offset > stream->size)
        return OPJ_FALSE;
    stream->pos = (size_t)offset;
    return OPJ_TRUE;
}

static void on_error(const char *message, void *user)
{
    char *text = user;
    if (text[0] == '\0') {
        snprintf(text, 256, "%s", message);
        size_t length = strlen(text);
        if (length && text[length - 1] == '\n')
            text[length - 1] = '\0';
    }
}

static void on_quiet(const char *message, void *user)
{
    (void)message;
    (void)user;
}

enum cxr_status cxr_codec_j2k_decode(const uint8_t *data, size_t size, uint32_t width,
                                     uint32_t height, uint32_t components, int32_t *samples,
                                     struct cxr_err *err)
{
    static const uint8_t jp2_signature[] = {0, 0, 0, 12, 'j', 'P', ' ', ' '};
    bool jp2 = size >= sizeof(jp2_signature) &&
               memcmp(data, jp2_signature, sizeof(jp2_signature)) == 0;
    if (!jp2 && (size < 4 || data[0] != 0xFF || data[1] != 0x4F))
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "OpenJPEG: fragment is neither a J2K codestream nor a JP2 file");
    struct memory_stream memory = {data, size, 0};
    char message[256] = "";
    enum cxr_status status = CXR_OK;
    opj_image_t *image = NULL;
    opj_codec_t *codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
    opj_stream_t *stream = opj_stream_create(64 * 1024, OPJ_TRUE);
    if (codec == NULL || stream == NULL) {
        status = cxr_err_set(err, CXR_ERR_NOMEM, "OpenJPEG: cannot create a decoder");
        goto done;
    }
    opj_stream_set_user_data(stream, &memory, NULL);
    opj_stream_set_user_data_length(stream, size);
    opj_stream_set_read_function(stream, stream_read);
    opj_stream_set_skip_function(stream, stream_skip);
    opj_stream_set_seek_function(stream, stream_seek);
    opj_set_error_handler(codec, on_error, message);
    opj_set_warning_handler(codec, on_quiet, NULL);
    opj_set_info_handler(codec, on_quiet, NULL);
    opj_dparameters_t parameters;
    opj_set_default_decoder_parameters(&parameters);
    if (!opj_setup_decoder(codec, &parameters) || !opj_read_header(stream, codec, &image) ||
        image == NULL) {
        status = cxr_err_set(err, CXR_ERR_MALFORMED, "OpenJPEG: cannot read the header: %s",
                             message[0] ? message : "unknown error");
        goto done;
    }
    if (image->numcomps != components) {
        status = cxr_err_set(err, CXR_ERR_MALFORMED,
                             "OpenJPEG: %u components, the DICOM header says %u", image->numcomps,
                             components);
        goto done;
    }
    if (image->x1 - image->x0 != width || image->y1 - image->y0 != height) {
        status = cxr_err_set(err, CXR_ERR_MALFORMED,
                             "OpenJPEG: image is %ux%u, the DICOM header says %ux%u",
                             image->x1 - image->x0, image->y1 - image->y0, width, height);
        goto done;
    }
    if (!opj_decode(codec, stream, image) || !opj_end_decompress(codec, stream)) {
        status = cxr_err_set(err, CXR_ERR_MALFORMED, "OpenJPEG: decoding failed: %s",
                             message[0] ? message : "unknown error");
        goto done;
    }
    for (uint32_t c = 0; c < components; c++) {
        const opj_image_comp_t *comp = &image->comps[c];
        if (comp->w != width || comp->h != height || comp->data == NULL) {
            status = cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                                 "OpenJPEG: component %u is %ux%u (subsampled components are "
                                 "not supported)",
                                 c, comp->w, comp->h);
            goto done;
        }
        if (comp->prec < 1 || comp->prec > 31) {
            status = cxr_err_set(err, CXR_ERR_MALFORMED, "OpenJPEG: precision %u", comp->prec);
            goto done;
        }
    }
    size_t pixel_count = (size_t)width * height;
    for (uint32_t c = 0; c < components; c++) {
        const OPJ_INT32 *in = image->comps[c].data;
        if (components == 1) {
            memcpy(samples, in, pixel_count * sizeof(*samples));
            continue;
        }
        for (size_t i = 0; i < pixel_count; i++)
            samples[i * components + c] = in[i];
    }
done:
    if (image)
        opj_image_destroy(image);
    if (stream)
        opj_stream_destroy(stream);
    if (codec)
        opj_destroy_codec(codec);
    return status;
}
