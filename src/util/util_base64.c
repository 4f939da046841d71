/* Base64 (RFC 4648): the standard alphabet for PNGs in JSON responses, the URL-safe alphabet
 * for reading JWT segments. */
#include <string.h>

#include "util.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t cxr_base64_encoded_length(size_t size)
{
    size_t groups = size / 3 + (size % 3 != 0);
    if (groups > (SIZE_MAX - 1) / 4)
        return 0;
    return groups * 4;
}

void cxr_base64_encode(const uint8_t *bytes, size_t size, char *out)
{
    size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        uint32_t group = (uint32_t)bytes[i] << 16 | (uint32_t)bytes[i + 1] << 8 | bytes[i + 2];
        *out++ = alphabet[group >> 18];
        *out++ = alphabet[(group >> 12) & 63];
        *out++ = alphabet[(group >> 6) & 63];
        *out++ = alphabet[group & 63];
    }
    if (size - i == 1) {
        uint32_t group = (uint32_t)bytes[i] << 16;
        *out++ = alphabet[group >> 18];
        *out++ = alphabet[(group >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (size - i == 2) {
        uint32_t group = (uint32_t)bytes[i] << 16 | (uint32_t)bytes[i + 1] << 8;
        *out++ = alphabet[group >> 18];
        *out++ = alphabet[(group >> 12) & 63];
        *out++ = alphabet[(group >> 6) & 63];
        *out++ = '=';
    }
    *out = '\0';
}

static int value_of(char c, bool url_safe)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url_safe ? '-' : '+'))
        return 62;
    if (c == (url_safe ? '_' : '/'))
        return 63;
    return -1;
}

/* Decodes `length` characters without padding; a trailing group of 2 or 3 characters gives 1
 * or 2 bytes, and its unused low bits must be zero (canonical encoding). */
static enum cxr_status decode_unpadded(const char *text, size_t length, bool url_safe,
                                       struct cxr_buf *out)
{
    if (length % 4 == 1)
        return CXR_ERR_MALFORMED;
    size_t decoded = length / 4 * 3 + (length % 4 ? length % 4 - 1 : 0);
    enum cxr_status status = cxr_buf_reserve(out, decoded);
    if (status != CXR_OK)
        return status;
    unsigned char *dst = out->data + out->len;
    size_t i = 0;
    for (; i < length; i += 4) {
        size_t chunk = length - i < 4 ? length - i : 4;
        uint32_t group = 0;
        for (size_t j = 0; j < 4; j++) {
            int value = j < chunk ? value_of(text[i + j], url_safe) : 0;
            if (value < 0)
                return CXR_ERR_MALFORMED;
            group = group << 6 | (uint32_t)value;
        }
        *dst++ = (unsigned char)(group >> 16);
        if (chunk > 2)
            *dst++ = (unsigned char)(group >> 8);
        if (chunk > 3)
            *dst++ = (unsigned char)group;
        if ((chunk == 2 && (group & 0xffff)) || (chunk == 3 && (group & 0xff)))
            return CXR_ERR_MALFORMED;
    }
    out->len += decoded;
    return CXR_OK;
}

enum cxr_status cxr_base64_decode(const char *text, size_t length, struct cxr_buf *out)
{
    if (length % 4 != 0)
        return CXR_ERR_MALFORMED;
    size_t padding = 0;
    while (padding < 2 && padding < length && text[length - 1 - padding] == '=')
        padding++;
    if (padding && (length - padding) % 4 == 0)
        return CXR_ERR_MALFORMED;
    return decode_unpadded(text, length - padding, false, out);
}

enum cxr_status cxr_base64url_decode(const char *text, size_t length, struct cxr_buf *out)
{
    return decode_unpadded(text, length, true, out);
}
