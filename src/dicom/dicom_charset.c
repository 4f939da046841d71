/* Specific Character Set (0008,0005) to UTF-8: single-byte and Unicode/GB repertoires through
 * iconv, and ISO 2022 code extensions (PS3.5 6.1.2.5) by tracking the G0/G1 designations that
 * escape sequences make and decoding each run with the matching iconv converter. */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom_internal.h"

enum set_kind {
    SET_ASCII,    /* G0: ISO 646 (ISO-IR 6), also used for JIS X 0201 romaji */
    SET_SINGLE,   /* G1: an 8-bit set decoded by iconv (ISO 8859-n, TIS-620) */
    SET_KATAKANA, /* G1: JIS X 0201 katakana (ISO-IR 13) */
    SET_JIS0208,  /* G0: JIS X 0208, two 7-bit bytes (ISO-IR 87) */
    SET_JIS0212,  /* G0: JIS X 0212, two 7-bit bytes (ISO-IR 159) */
    SET_MULTI_GR, /* G1: a two-byte set in GR decoded by iconv (KS X 1001, GB 2312) */
    SET_WHOLE,    /* not ISO 2022: the whole value through iconv (UTF-8, GB18030, GBK) */
};

struct charset {
    const char *number; /* the defined term after "ISO_IR " / "ISO 2022 IR ", or the full term */
    enum set_kind kind;
    const char *iconv_name;
    const char *escape; /* designation escape sequence (without ESC) */
};

static const struct charset charsets[] = {
        {"6", SET_ASCII, NULL, "(B"},
        {"100", SET_SINGLE, "ISO-8859-1", "-A"},
        {"101", SET_SINGLE, "ISO-8859-2", "-B"},
        {"109", SET_SINGLE, "ISO-8859-3", "-C"},
        {"110", SET_SINGLE, "ISO-8859-4", "-D"},
        {"144", SET_SINGLE, "ISO-8859-5", "-L"},
        {"127", SET_SINGLE, "ISO-8859-6", "-G"},
        {"126", SET_SINGLE, "ISO-8859-7", "-F"},
        {"138", SET_SINGLE, "ISO-8859-8", "-H"},
        {"148", SET_SINGLE, "ISO-8859-9", "-M"},
        {"203", SET_SINGLE, "ISO-8859-15", "-b"},
        {"166", SET_SINGLE, "TIS-620", "-T"},
        {"13", SET_KATAKANA, NULL, ")I"},
        {"87", SET_JIS0208, "EUC-JP", "$B"},
        {"159", SET_JIS0212, "EUC-JP", "$(D"},
        {"149", SET_MULTI_GR, "EUC-KR", "$)C"},
        {"58", SET_MULTI_GR, "GB2312", "$)A"},
        {"192", SET_WHOLE, "UTF-8", NULL},
        {"GB18030", SET_WHOLE, "GB18030", NULL},
        {"GBK", SET_WHOLE, "GBK", NULL},
};

/* The JIS X 0201 romaji designation: treated as ASCII (the yen sign and overline differ). */
static const char romaji_escape[] = "(J";

/* The term reduced to upper-case letters and digits, so that the misspellings real files carry
 * ("ISO_IR100", "ISO-IR 100", "iso_ir 100") name the same set. */
static void normalise_term(const char *term, size_t length, char *key, size_t key_size)
{
    size_t out = 0;
    for (size_t i = 0; i < length && out + 1 < key_size; i++) {
        char c = term[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            key[out++] = c;
    }
    key[out] = '\0';
}

static bool term_is_iso2022(const char *term, size_t length)
{
    char key[32];
    normalise_term(term, length, key, sizeof(key));
    return strncmp(key, "ISO2022", 7) == 0;
}

static const struct charset *charset_lookup(const char *term, size_t length)
{
    char key[32];
    normalise_term(term, length, key, sizeof(key));
    const char *number = NULL;
    if (strncmp(key, "ISO2022IR", 9) == 0)
        number = key + 9;
    else if (strncmp(key, "ISOIR", 5) == 0)
        number = key + 5;
    for (size_t i = 0; i < sizeof(charsets) / sizeof(charsets[0]); i++) {
        bool named = charsets[i].number[0] == 'G'; /* GB18030, GBK: whole names */
        if (named ? strcmp(key, charsets[i].number) == 0
                  : number != NULL && strcmp(number, charsets[i].number) == 0)
            return &charsets[i];
    }
    return NULL;
}

static enum cxr_status append_replacement(struct cxr_buf *out)
{
    return cxr_buf_append(out, "\xEF\xBF\xBD", 3);
}

static enum cxr_status append_codepoint(struct cxr_buf *out, uint32_t codepoint)
{
    uint8_t bytes[3];
    size_t count;
    if (codepoint < 0x80) {
        bytes[0] = (uint8_t)codepoint;
        count = 1;
    } else if (codepoint < 0x800) {
        bytes[0] = (uint8_t)(0xC0 | (codepoint >> 6));
        bytes[1] = (uint8_t)(0x80 | (codepoint & 0x3F));
        count = 2;
    } else {
        bytes[0] = (uint8_t)(0xE0 | (codepoint >> 12));
        bytes[1] = (uint8_t)(0x80 | ((codepoint >> 6) & 0x3F));
        bytes[2] = (uint8_t)(0x80 | (codepoint & 0x3F));
        count = 3;
    }
    return cxr_buf_append(out, bytes, count);
}

/* Converts bytes from iconv_name to UTF-8 onto out; undecodable bytes become U+FFFD. When
 * iconv lacks the converter, non-ASCII bytes become U+FFFD. */
static enum cxr_status append_converted(struct cxr_buf *out, const char *iconv_name,
                                        const uint8_t *bytes, size_t length)
{
    if (length == 0)
        return CXR_OK;
    iconv_t converter = iconv_open("UTF-8", iconv_name);
    if (converter == (iconv_t)-1) {
        for (size_t i = 0; i < length; i++) {
            enum cxr_status status =
                    bytes[i] < 0x80 ? cxr_buf_append(out, bytes + i, 1) : append_replacement(out);
            if (status != CXR_OK)
                return status;
        }
        return CXR_OK;
    }
    char *in = (char *)(uintptr_t)bytes;
    size_t in_left = length;
    enum cxr_status status = CXR_OK;
    while (in_left > 0 && status == CXR_OK) {
        status = cxr_buf_reserve(out, in_left * 4 + 16);
        if (status != CXR_OK)
            break;
        char *out_ptr = (char *)out->data + out->len;
        size_t out_left = out->cap - out->len;
        size_t before = out_left;
        size_t result = iconv(converter, &in, &in_left, &out_ptr, &out_left);
        out->len += before - out_left;
        if (result == (size_t)-1 && errno != E2BIG) {
            /* EILSEQ or EINVAL (incomplete sequence at the end): skip one byte. */
            status = append_replacement(out);
            in++;
            in_left--;
            iconv(converter, NULL, NULL, NULL, NULL);
        }
    }
    iconv_close(converter);
    return status;
}

struct iso2022_state {
    enum set_kind g0;
    const struct charset *g1;
};

static bool is_delimiter(uint8_t byte, bool is_person_name)
{
    return byte == '\\' || byte == '\r' || byte == '\n' || byte == '\f' || byte == '\t' ||
           (is_person_name && (byte == '^' || byte == '='));
}

/* Matches the escape sequence at text (after ESC); returns its length, 0 if unknown. */
static size_t match_escape(const uint8_t *text, size_t length, struct iso2022_state *state)
{
    if (length >= 2 && memcmp(text, romaji_escape, 2) == 0) {
        state->g0 = SET_ASCII;
        return 2;
    }
    for (size_t i = 0; i < sizeof(charsets) / sizeof(charsets[0]); i++) {
        const char *escape = charsets[i].escape;
        if (escape == NULL)
            continue;
        size_t escape_length = strlen(escape);
        if (length < escape_length || memcmp(text, escape, escape_length) != 0)
            continue;
        switch (charsets[i].kind) {
        case SET_ASCII:
        case SET_JIS0208:
        case SET_JIS0212:
            state->g0 = charsets[i].kind;
            break;
        default:
            state->g1 = &charsets[i];
            break;
        }
        return escape_length;
    }
    return 0;
}

static enum cxr_status decode_iso2022(struct cxr_buf *out, const struct charset *initial_g1,
                                      const uint8_t *text, size_t length, bool is_person_name)
{
    const struct iso2022_state initial = {SET_ASCII, initial_g1};
    struct iso2022_state state = initial;
    struct cxr_buf run = CXR_BUF_INIT(0); /* bytes for one iconv converter */
    const char *run_codec = NULL;
    enum cxr_status status = CXR_OK;
    size_t pos = 0;
    while (pos < length && status == CXR_OK) {
        uint8_t byte = text[pos];
        const char *codec = NULL;
        uint8_t pending[3];
        size_t pending_length = 0;
        size_t consumed = 1;
        uint32_t codepoint = 0;
        bool replace = false;
        if (byte == 0x1B) {
            size_t escape_length = match_escape(text + pos + 1, length - pos - 1, &state);
            if (escape_length == 0)
                replace = true;
            consumed = 1 + escape_length;
        } else if ((state.g0 == SET_JIS0208 || state.g0 == SET_JIS0212) && byte >= 0x21 &&
                   byte <= 0x7E) {
            if (pos + 1 < length && text[pos + 1] >= 0x21 && text[pos + 1] <= 0x7E) {
                codec = "EUC-JP";
                if (state.g0 == SET_JIS0212)
                    pending[pending_length++] = 0x8F;
                pending[pending_length++] = byte | 0x80;
                pending[pending_length++] = text[pos + 1] | 0x80;
                consumed = 2;
            } else {
                replace = true;
            }
        } else if (byte < 0x80) {
            codepoint = byte;
            if (is_delimiter(byte, is_person_name))
                state = initial;
        } else if (state.g1 != NULL && state.g1->kind == SET_KATAKANA) {
            if (byte >= 0xA1 && byte <= 0xDF)
                codepoint = 0xFF61 + (uint32_t)(byte - 0xA1);
            else
                replace = true;
        } else if (state.g1 != NULL && state.g1->iconv_name != NULL) {
            codec = state.g1->iconv_name;
            pending[pending_length++] = byte;
        } else {
            replace = true;
        }

        if (run_codec != NULL && codec != run_codec) {
            status = append_converted(out, run_codec, run.data, run.len);
            run.len = 0;
            run_codec = NULL;
        }
        if (status != CXR_OK)
            break;
        if (codec != NULL) {
            run_codec = codec;
            status = cxr_buf_append(&run, pending, pending_length);
        } else if (replace) {
            status = append_replacement(out);
        } else if (byte != 0x1B) {
            status = append_codepoint(out, codepoint);
        }
        pos += consumed;
    }
    if (status == CXR_OK && run_codec != NULL)
        status = append_converted(out, run_codec, run.data, run.len);
    cxr_buf_release(&run);
    return status;
}

/* out with each NUL byte replaced by U+FFFD. No repertoire has a NUL inside a value (only
 * padding, which the caller trims); left in place it would end the C string early, so that
 * PatientID "PAT001\0X" read as another patient's "PAT001" and named that patient's folder. */
static enum cxr_status nuls_replaced(struct cxr_buf *out)
{
    if (out->len == 0 || memchr(out->data, '\0', out->len) == NULL)
        return CXR_OK;
    struct cxr_buf clean = CXR_BUF_INIT(0);
    enum cxr_status status = CXR_OK;
    for (size_t i = 0; i < out->len && status == CXR_OK; i++)
        status = out->data[i] ? cxr_buf_append(&clean, out->data + i, 1)
                              : append_replacement(&clean);
    cxr_buf_release(out);
    *out = clean; /* the caller releases it on failure */
    return status;
}

char *dicom_charset_to_utf8(const char *charset, size_t charset_length, const uint8_t *text,
                            size_t length, bool is_person_name)
{
    /* Value 1 of the Specific Character Set is the default; any ISO 2022 term enables escapes. */
    const struct charset *first = NULL;
    bool iso2022 = false;
    size_t term_index = 0;
    size_t term_start = 0;
    for (size_t i = 0; i <= charset_length; i++) {
        if (i < charset_length && charset[i] != '\\')
            continue;
        size_t start = term_start;
        size_t end = i;
        term_start = i + 1;
        while (start < end && (charset[start] == ' ' || charset[start] == '\0'))
            start++;
        while (end > start && (charset[end - 1] == ' ' || charset[end - 1] == '\0'))
            end--;
        if (term_is_iso2022(charset + start, end - start))
            iso2022 = true;
        if (term_index++ == 0 && end > start)
            first = charset_lookup(charset + start, end - start);
    }

    struct cxr_buf out = CXR_BUF_INIT(0);
    enum cxr_status status;
    if (first != NULL && first->kind == SET_WHOLE) {
        status = append_converted(&out, first->iconv_name, text, length);
    } else if (iso2022 || (first != NULL && first->kind != SET_SINGLE)) {
        const struct charset *initial_g1 = NULL;
        if (first != NULL && first->kind != SET_ASCII && first->kind != SET_JIS0208 &&
            first->kind != SET_JIS0212)
            initial_g1 = first;
        status = decode_iso2022(&out, initial_g1, text, length, is_person_name);
    } else {
        /* A single 8-bit set, or the default repertoire (and unknown terms): bytes above 0x7F
         * in the default repertoire are read as ISO 8859-1, as pydicom does. */
        const char *name =
                first != NULL && first->iconv_name != NULL ? first->iconv_name : "ISO-8859-1";
        status = append_converted(&out, name, text, length);
    }
    if (status == CXR_OK)
        status = nuls_replaced(&out);
    if (status == CXR_OK)
        status = cxr_buf_append(&out, "", 1);
    if (status != CXR_OK) {
        cxr_buf_release(&out);
        return NULL;
    }
    return (char *)out.data;
}
