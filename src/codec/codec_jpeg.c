/* JPEG streams: reading the frame header (to route a fragment to the right decoder whatever
 * the transfer syntax claims) and decoding 8-bit DCT JPEG through libjpeg-turbo (the decode
 * itself is codec_jpeg_ijg.h, shared with the 12-bit build in codec_jpeg12.c). */
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
/* after jpeglib.h, which it needs */
#include <jerror.h>

#include "codec/codec.h"
#define IJG_LIBRARY_NAME "libjpeg"
#include "codec/codec_jpeg_ijg.h"

enum cxr_status cxr_codec_jpeg_info_read(const uint8_t *data, size_t size,
                                         struct cxr_codec_jpeg_info *info, struct cxr_err *err)
{
    if (size < 4 || data[0] != 0xFF || data[1] != 0xD8)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "JPEG: no SOI marker");
    size_t pos = 2;
    while (pos + 4 <= size) {
        if (data[pos] != 0xFF) {
            pos++;
            continue;
        }
        uint32_t marker = data[pos + 1];
        if (marker == 0xFF || marker == 0x00 || (marker >= 0xD0 && marker <= 0xD8)) {
            pos++;
            continue;
        }
        if (marker == 0xD9 || marker == 0xDA)
            break;
        size_t length = (size_t)data[pos + 2] << 8 | data[pos + 3];
        if (length < 2 || length > size - pos - 2)
            break;
        bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
                   marker != 0xCC;
        if (sof) {
            if (length < 8)
                break;
            const uint8_t *p = data + pos + 4;
            info->precision = p[0];
            info->height = (uint32_t)p[1] << 8 | p[2];
            info->width = (uint32_t)p[3] << 8 | p[4];
            info->components = p[5];
            info->sof_marker = 0xFF00 | marker;
            return CXR_OK;
        }
        pos += 2 + length;
    }
    return cxr_err_set(err, CXR_ERR_MALFORMED, "JPEG: no frame header");
}

enum cxr_status cxr_codec_jpeg_dct_decode(const uint8_t *data, size_t size, uint32_t width,
                                          uint32_t height, uint32_t components, bool convert_ybr,
                                          int32_t *samples, struct cxr_err *err)
{
    return ijg_decode(data, size, width, height, components, convert_ybr, samples, err);
}
