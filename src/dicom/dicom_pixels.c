/* The pixel description (Image Pixel module, Modality and VOI LUT modules) and the pixel data
 * (native bytes, or Basic Offset Table + fragments), validated once at parse time so that
 * codec/ and image/ can trust sizes and counts. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom_internal.h"

#define TAG_ROWS                   DICOM_TAG(0x0028, 0x0010)
#define TAG_COLUMNS                DICOM_TAG(0x0028, 0x0011)
#define TAG_SAMPLES_PER_PIXEL      DICOM_TAG(0x0028, 0x0002)
#define TAG_PHOTOMETRIC            DICOM_TAG(0x0028, 0x0004)
#define TAG_PLANAR_CONFIGURATION   DICOM_TAG(0x0028, 0x0006)
#define TAG_NUMBER_OF_FRAMES       DICOM_TAG(0x0028, 0x0008)
#define TAG_BITS_ALLOCATED         DICOM_TAG(0x0028, 0x0100)
#define TAG_BITS_STORED            DICOM_TAG(0x0028, 0x0101)
#define TAG_HIGH_BIT               DICOM_TAG(0x0028, 0x0102)
#define TAG_PIXEL_REPRESENTATION   DICOM_TAG(0x0028, 0x0103)
#define TAG_PIXEL_PADDING_VALUE    DICOM_TAG(0x0028, 0x0120)
#define TAG_PIXEL_PADDING_LIMIT    DICOM_TAG(0x0028, 0x0121)
#define TAG_WINDOW_CENTER          DICOM_TAG(0x0028, 0x1050)
#define TAG_WINDOW_WIDTH           DICOM_TAG(0x0028, 0x1051)
#define TAG_RESCALE_INTERCEPT      DICOM_TAG(0x0028, 0x1052)
#define TAG_RESCALE_SLOPE          DICOM_TAG(0x0028, 0x1053)
#define TAG_VOI_LUT_FUNCTION       DICOM_TAG(0x0028, 0x1056)
#define TAG_MODALITY_LUT_SEQUENCE  DICOM_TAG(0x0028, 0x3000)
#define TAG_LUT_DESCRIPTOR         DICOM_TAG(0x0028, 0x3002)
#define TAG_LUT_DATA               DICOM_TAG(0x0028, 0x3006)
#define TAG_VOI_LUT_SEQUENCE       DICOM_TAG(0x0028, 0x3010)
#define TAG_FRAME_VOI_LUT          DICOM_TAG(0x0028, 0x9132)
#define TAG_PIXEL_VALUE_TRANSFORM  DICOM_TAG(0x0028, 0x9145)
#define TAG_SHARED_GROUPS          DICOM_TAG(0x5200, 0x9229)
#define TAG_PER_FRAME_GROUPS       DICOM_TAG(0x5200, 0x9230)
#define TAG_PRESENTATION_LUT_SHAPE DICOM_TAG(0x2050, 0x0020)

#define MAX_WINDOWS 64

static const struct dicom_element *find_top(const struct cxr_dicom_file *file, uint32_t tag)
{
    return dicom_element_find(file, DICOM_NO_PARENT, tag);
}

/* Enhanced objects (Enhanced DX/CR/CT/MR, multi-frame) keep what applies to a frame in
 * functional group macros (PS3.3 C.7.6.16): frame N's item of the Per-frame Functional Groups
 * Sequence, or the one item of the Shared Functional Groups Sequence. Finds the first item of
 * the macro sequence macro_tag for frame 1, per-frame first; false when neither group has it. */
static bool frame_macro_item(const struct cxr_dicom_file *file, uint32_t macro_tag, uint32_t *item)
{
    static const uint32_t groups[] = {TAG_PER_FRAME_GROUPS, TAG_SHARED_GROUPS};
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        const struct dicom_element *group = find_top(file, groups[i]);
        uint32_t frame = group ? dicom_sequence_first_item(file, group) : DICOM_NO_PARENT;
        const struct dicom_element *macro =
                frame != DICOM_NO_PARENT ? dicom_element_find(file, frame, macro_tag) : NULL;
        uint32_t first = macro ? dicom_sequence_first_item(file, macro) : DICOM_NO_PARENT;
        if (first != DICOM_NO_PARENT) {
            *item = first;
            return true;
        }
    }
    return false;
}

/* Where an attribute of a frame macro is read: the top level when the file has it there (older
 * objects, and what the reader has always done), else frame 1's macro item; DICOM_NO_PARENT
 * (the top level, where it is absent) when neither has it. */
static uint32_t attribute_parent(const struct cxr_dicom_file *file, uint32_t tag,
                                 uint32_t macro_tag)
{
    const struct dicom_element *top = find_top(file, tag);
    uint32_t item;
    if ((top == NULL || top->length == 0) && frame_macro_item(file, macro_tag, &item) &&
        dicom_element_find(file, item, tag) != NULL)
        return item;
    return DICOM_NO_PARENT;
}

/* A US value; absent (false) when the element is missing or empty. */
static bool read_us(const struct cxr_dicom_file *file, uint32_t tag, uint16_t *value)
{
    return dicom_element_u16(file, find_top(file, tag), 0, value);
}

/* The index-th backslash-separated value of a text element, spaces trimmed, into out.
 * False when there is no such value or it does not fit. */
static bool text_value(const struct cxr_dicom_file *file, const struct dicom_element *element,
                       size_t index, char *out, size_t out_size)
{
    if (element == NULL || element->encapsulated)
        return false;
    const char *text = (const char *)dicom_element_value(file, element);
    size_t length = element->length;
    size_t start = 0;
    for (size_t i = 0; i < index; i++) {
        const char *next = memchr(text + start, '\\', length - start);
        if (next == NULL)
            return false;
        start = (size_t)(next - text) + 1;
    }
    const char *next = memchr(text + start, '\\', length - start);
    size_t end = next ? (size_t)(next - text) : length;
    while (start < end && (text[start] == ' ' || text[start] == '\0'))
        start++;
    while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\0'))
        end--;
    if (end - start >= out_size)
        return false;
    memcpy(out, text + start, end - start);
    out[end - start] = '\0';
    return true;
}

static size_t value_count(const struct cxr_dicom_file *file, const struct dicom_element *element)
{
    if (element == NULL || element->encapsulated || element->length == 0)
        return 0;
    const char *text = (const char *)dicom_element_value(file, element);
    size_t count = 1;
    for (size_t i = 0; i < element->length; i++)
        count += text[i] == '\\';
    return count;
}

/* A Decimal String value (PS3.5 6.2: digits, sign, '.', exponent). One ',' in place of the
 * '.' is read as the decimal point: some software writes DS in its locale ("550,5"). */
static bool parse_decimal(const char *text, double *value)
{
    char normal[64];
    size_t length = strlen(text);
    if (length == 0 || length >= sizeof(normal) || strspn(text, "0123456789+-.,eE") != length ||
        strchr(text, ',') != strrchr(text, ',') || (strchr(text, ',') && strchr(text, '.')))
        return false;
    memcpy(normal, text, length + 1);
    char *comma = strchr(normal, ',');
    if (comma != NULL)
        *comma = '.';
    char *end;
    errno = 0;
    double parsed = strtod(normal, &end);
    if (*end != '\0' || errno != 0 || !isfinite(parsed))
        return false;
    *value = parsed;
    return true;
}

static bool parse_integer(const char *text, long *value)
{
    if (text[0] == '\0')
        return false;
    char *end;
    errno = 0;
    long parsed = strtol(text, &end, 10);
    if (*end != '\0' || errno != 0)
        return false;
    *value = parsed;
    return true;
}

/* Reads one LUT (descriptor + data) from the first item of a LUT sequence. NOT_FOUND when the
 * sequence is absent or empty. */
static enum cxr_status read_lut(struct cxr_dicom_file *file, uint32_t sequence_tag,
                                const char *name, bool signed_pixels, struct cxr_dicom_lut *lut,
                                uint16_t **entries_out, struct cxr_err *err)
{
    const struct dicom_element *sequence = find_top(file, sequence_tag);
    if (sequence == NULL)
        return CXR_ERR_NOT_FOUND;
    uint32_t item = dicom_sequence_first_item(file, sequence);
    if (item == DICOM_NO_PARENT)
        return CXR_ERR_NOT_FOUND;
    const struct dicom_element *descriptor = dicom_element_find(file, item, TAG_LUT_DESCRIPTOR);
    const struct dicom_element *data = dicom_element_find(file, item, TAG_LUT_DATA);
    /* An item with an empty descriptor and no data describes no LUT (seen in real files). */
    if ((descriptor == NULL || descriptor->length == 0) && (data == NULL || data->length == 0))
        return CXR_ERR_NOT_FOUND;
    uint16_t count_value, first_value, bits_value;
    if (!dicom_element_u16(file, descriptor, 0, &count_value) ||
        !dicom_element_u16(file, descriptor, 1, &first_value) ||
        !dicom_element_u16(file, descriptor, 2, &bits_value))
        return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: %s has no valid LUT Descriptor", name);
    if (data == NULL || data->encapsulated)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: %s has no LUT Data", name);
    uint32_t count = count_value == 0 ? 65536u : count_value;
    if (bits_value < 1 || bits_value > 16)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: %s has %u bits per entry", name,
                           (unsigned)bits_value);
    /* 8-bit entries may be packed two to a 16-bit word; the data length tells which. */
    bool packed =
            bits_value <= 8 && data->length < (size_t)count * 2 && data->length >= (size_t)count;
    if (!packed && data->length < (size_t)count * 2)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "DICOM: %s LUT Data has %zu bytes for %u entries", name, data->length,
                           (unsigned)count);
    uint16_t *entries = malloc((size_t)count * sizeof(*entries));
    if (entries == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "DICOM: out of memory for %s", name);
    const uint8_t *bytes = dicom_element_value(file, data);
    for (uint32_t i = 0; i < count; i++) {
        if (packed) {
            /* Bytes in word order: in a big-endian file the pair is swapped. */
            size_t at = data->big_endian ? (i ^ 1u) : i;
            entries[i] = at < data->length ? bytes[at] : 0;
        } else {
            uint16_t value = 0;
            dicom_element_u16(file, data, i, &value);
            entries[i] = value;
        }
    }
    lut->entry_count = count;
    lut->first_mapped = signed_pixels ? (int32_t)(int16_t)first_value : (int32_t)first_value;
    lut->bits_per_entry = bits_value;
    lut->entries = entries;
    *entries_out = entries;
    return CXR_OK;
}

/* Window Center/Width pairs from the top level or, in an enhanced object, frame 1's Frame VOI
 * LUT macro; parent says which (attribute_parent). */
static enum cxr_status read_windows(struct cxr_dicom_file *file, uint32_t parent,
                                    struct cxr_dicom_pixel_desc *desc, struct cxr_err *err)
{
    const struct dicom_element *centers = dicom_element_find(file, parent, TAG_WINDOW_CENTER);
    const struct dicom_element *widths = dicom_element_find(file, parent, TAG_WINDOW_WIDTH);
    size_t count = value_count(file, centers);
    size_t width_count = value_count(file, widths);
    if (width_count < count)
        count = width_count;
    if (count > MAX_WINDOWS)
        count = MAX_WINDOWS;
    if (count == 0)
        return CXR_OK;
    file->windows = malloc(2 * count * sizeof(double));
    if (file->windows == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "DICOM: out of memory for windows");
    /* Pairs that do not parse, or with a width below 1 (PS3.3 C.11.2.1.2), are left out. */
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        char center_text[64], width_text[64];
        double center, width;
        if (!text_value(file, centers, i, center_text, sizeof(center_text)) ||
            !text_value(file, widths, i, width_text, sizeof(width_text)) ||
            !parse_decimal(center_text, &center) || !parse_decimal(width_text, &width) ||
            width <= 0)
            continue;
        file->windows[kept] = center;
        file->windows[count + kept] = width;
        kept++;
    }
    if (kept > 0)
        memmove(file->windows + kept, file->windows + count, kept * sizeof(double));
    desc->window_count = (uint32_t)kept;
    desc->window_centers = file->windows;
    desc->window_widths = file->windows + kept;
    return CXR_OK;
}

static enum cxr_status read_encapsulated(struct cxr_dicom_file *file,
                                         const struct dicom_element *pixel_element,
                                         struct cxr_dicom_pixel_data *pixels, struct cxr_err *err)
{
    /* The parser has checked the item structure; walk it again to collect the fragments. */
    const uint8_t *bytes = dicom_element_value(file, pixel_element);
    size_t length = pixel_element->length;
    size_t items = 0;
    for (size_t pos = 0; pos + 8 <= length;) {
        uint32_t item_length = dicom_read_u32(bytes + pos + 4, pixel_element->big_endian);
        if (item_length > length - pos - 8)
            return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: inconsistent fragment items");
        pos += 8 + (size_t)item_length;
        items++;
    }
    if (items < 2)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "DICOM: encapsulated Pixel Data has no fragments");
    file->fragments = malloc((items - 1) * sizeof(*file->fragments));
    if (file->fragments == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "DICOM: out of memory for fragments");
    size_t fragment_count = 0;
    for (size_t pos = 0, item = 0; pos + 8 <= length; item++) {
        uint32_t item_length = dicom_read_u32(bytes + pos + 4, pixel_element->big_endian);
        const uint8_t *content = bytes + pos + 8;
        if (item == 0) {
            if (item_length % 4 != 0)
                return cxr_err_set(err, CXR_ERR_MALFORMED,
                                   "DICOM: Basic Offset Table length %u is not a multiple of 4",
                                   (unsigned)item_length);
            size_t offset_count = item_length / 4;
            if (offset_count > 0) {
                file->offsets = malloc(offset_count * sizeof(*file->offsets));
                if (file->offsets == NULL)
                    return cxr_err_set(err, CXR_ERR_NOMEM, "DICOM: out of memory for offsets");
                for (size_t i = 0; i < offset_count; i++)
                    file->offsets[i] = dicom_read_u32(content + 4 * i, pixel_element->big_endian);
            }
            pixels->offset_count = offset_count;
        } else {
            file->fragments[fragment_count].data = content;
            file->fragments[fragment_count].size = item_length;
            fragment_count++;
        }
        pos += 8 + (size_t)item_length;
    }
    pixels->encapsulated = true;
    pixels->offsets = file->offsets;
    pixels->fragment_count = fragment_count;
    pixels->fragments = file->fragments;
    return CXR_OK;
}

/* Pixel Padding Value and Range Limit (US or SS, as Pixel Representation says: PS3.5 leaves
 * their VR to it). A Range Limit without a Pixel Padding Value is ignored, and so is an empty
 * value: padding only affects the default window, never whether a file is read. */
static void read_pixel_padding(const struct cxr_dicom_file *file, bool signed_pixels,
                               struct cxr_dicom_pixel_desc *desc)
{
    uint16_t value, limit;
    desc->has_pixel_padding = read_us(file, TAG_PIXEL_PADDING_VALUE, &value);
    if (!desc->has_pixel_padding)
        return;
    int32_t low = signed_pixels ? (int16_t)value : value;
    int32_t high = low;
    if (read_us(file, TAG_PIXEL_PADDING_LIMIT, &limit)) {
        int32_t other = signed_pixels ? (int16_t)limit : limit;
        low = other < low ? other : low;
        high = other > high ? other : high;
    }
    desc->pixel_padding_low = low;
    desc->pixel_padding_high = high;
}

static enum cxr_status describe(struct cxr_dicom_file *file, const struct cxr_limits *limits,
                                struct cxr_err *err)
{
    struct cxr_dicom_pixel_desc *desc = &file->desc;
    struct cxr_dicom_pixel_data *pixels = &file->pixels;
    const struct dicom_element *pixel_element = find_top(file, TAG_PIXEL_DATA);
    if (pixel_element == NULL)
        return cxr_err_set(err, CXR_ERR_NOT_FOUND, "DICOM: no Pixel Data element");

    desc->transfer_syntax_uid = file->meta.transfer_syntax_uid;
    uint16_t rows, columns, bits_allocated;
    if (!read_us(file, TAG_ROWS, &rows) || !read_us(file, TAG_COLUMNS, &columns) ||
        !read_us(file, TAG_BITS_ALLOCATED, &bits_allocated))
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "DICOM: image lacks Rows, Columns or Bits Allocated");
    uint16_t samples = 1, bits_stored = bits_allocated, pixel_representation = 0, planar = 0;
    read_us(file, TAG_SAMPLES_PER_PIXEL, &samples);
    read_us(file, TAG_BITS_STORED, &bits_stored);
    uint16_t high_bit = bits_stored > 0 ? (uint16_t)(bits_stored - 1) : 0;
    read_us(file, TAG_HIGH_BIT, &high_bit);
    read_us(file, TAG_PIXEL_REPRESENTATION, &pixel_representation);
    if (samples > 1)
        read_us(file, TAG_PLANAR_CONFIGURATION, &planar);
    if (rows == 0 || columns == 0)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: image of %ux%u pixels",
                           (unsigned)columns, (unsigned)rows);
    if (samples != 1 && samples != 3 && samples != 4)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: %u samples per pixel",
                           (unsigned)samples);
    if (bits_allocated == 0 || bits_allocated > 64 || (bits_allocated != 1 && bits_allocated % 8))
        return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: Bits Allocated %u",
                           (unsigned)bits_allocated);
    if (bits_stored == 0 || bits_stored > bits_allocated || high_bit >= bits_allocated ||
        high_bit + 1 < bits_stored)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "DICOM: Bits Stored %u / High Bit %u do not fit Bits Allocated %u",
                           (unsigned)bits_stored, (unsigned)high_bit, (unsigned)bits_allocated);
    if (pixel_representation > 1 || planar > 1)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "DICOM: Pixel Representation %u / Planar Configuration %u",
                           (unsigned)pixel_representation, (unsigned)planar);

    long frames = 1;
    const struct dicom_element *frames_element = find_top(file, TAG_NUMBER_OF_FRAMES);
    char text[64];
    if (frames_element != NULL && frames_element->length > 0) {
        if (!text_value(file, frames_element, 0, text, sizeof(text)) ||
            !parse_integer(text, &frames) || frames < 0 || frames > 0x7FFFFFFF)
            return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: invalid Number of Frames");
        if (frames == 0)
            frames = 1; /* an image has a frame; DCMTK assumes 1 too */
    }

    const struct dicom_element *photometric = find_top(file, TAG_PHOTOMETRIC);
    if (!text_value(file, photometric, 0, text, sizeof(text)) || text[0] == '\0')
        return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: image lacks Photometric Interpretation");
    /* CS values are upper case; "monochrome1" from a careless writer still means MONOCHROME1
     * (DCMTK compares without case too), and a missed inversion would show bone dark. */
    for (char *c = text; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    file->photometric = strdup(text);
    if (file->photometric == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "DICOM: out of memory");

    size_t pixel_count = (size_t)rows * columns;
    if (pixel_count > limits->max_image_pixels)
        return cxr_err_set(err, CXR_ERR_LIMIT, "DICOM: image of %ux%u pixels exceeds the limit",
                           (unsigned)columns, (unsigned)rows);
    /* rows * columns < 2^32, samples <= 4, bits <= 64: the frame size fits 64 bits. */
    uint64_t frame_bits = (uint64_t)pixel_count * samples * bits_allocated;
    /* Native YBR_FULL_422 stores two luminance samples and one pair of chrominance samples
     * per two pixels (PS3.3 C.7.6.3.1.2): two thirds of the full size. */
    if (!pixel_element->encapsulated && samples == 3 && strcmp(text, "YBR_FULL_422") == 0)
        frame_bits = (uint64_t)rows * (((uint64_t)columns + 1) / 2 * 2) * 2 * bits_allocated;
    uint64_t frame_bytes = (frame_bits + 7) / 8;
    if (frame_bytes > limits->max_decoded_bytes)
        return cxr_err_set(err, CXR_ERR_LIMIT,
                           "DICOM: a frame of %llu bytes exceeds the decoded size limit",
                           (unsigned long long)frame_bytes);

    desc->rows = rows;
    desc->columns = columns;
    desc->samples_per_pixel = samples;
    desc->number_of_frames = (uint32_t)frames;
    desc->bits_allocated = bits_allocated;
    desc->bits_stored = bits_stored;
    desc->high_bit = high_bit;
    desc->pixel_representation = pixel_representation;
    desc->planar_configuration = planar;
    desc->photometric_interpretation = file->photometric;

    if (pixel_element->encapsulated) {
        enum cxr_status status = read_encapsulated(file, pixel_element, pixels, err);
        if (status != CXR_OK)
            return status;
    } else {
        /* All frames must be present, so that any frame a caller picks lies in the buffer. */
        uint64_t total_bits = frame_bits * (uint64_t)frames;
        if (total_bits / (uint64_t)frames != frame_bits ||
            (total_bits + 7) / 8 > (uint64_t)pixel_element->length)
            return cxr_err_set(err, CXR_ERR_MALFORMED,
                               "DICOM: Pixel Data has %zu bytes, fewer than %ld frame(s) of "
                               "%llu bytes",
                               pixel_element->length, frames, (unsigned long long)frame_bytes);
        pixels->encapsulated = false;
        /* OB data has no byte order; OW data in a big endian file is 16-bit words in big
         * endian order, 8-bit samples included (their bytes are swapped in pairs). */
        pixels->big_endian = pixel_element->big_endian && pixel_element->vr != DICOM_VR('O', 'B');
        pixels->native = dicom_element_value(file, pixel_element);
        pixels->native_size = pixel_element->length;
    }

    desc->rescale_slope = 1;
    desc->rescale_intercept = 0;
    uint32_t rescale_parent =
            attribute_parent(file, TAG_RESCALE_INTERCEPT, TAG_PIXEL_VALUE_TRANSFORM);
    const struct dicom_element *slope = dicom_element_find(file, rescale_parent, TAG_RESCALE_SLOPE);
    const struct dicom_element *intercept =
            dicom_element_find(file, rescale_parent, TAG_RESCALE_INTERCEPT);
    /* The Modality LUT module requires both (Type 1C). One alone is ignored, as DCMTK and
     * pydicom do; so is a slope of 0, which would flatten the image (DCMTK ignores it too). */
    if (slope != NULL && slope->length > 0 && intercept != NULL && intercept->length > 0) {
        if (!text_value(file, slope, 0, text, sizeof(text)) ||
            !parse_decimal(text, &desc->rescale_slope))
            return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: invalid Rescale Slope");
        if (!text_value(file, intercept, 0, text, sizeof(text)) ||
            !parse_decimal(text, &desc->rescale_intercept))
            return cxr_err_set(err, CXR_ERR_MALFORMED, "DICOM: invalid Rescale Intercept");
        desc->has_rescale = desc->rescale_slope != 0;
        if (!desc->has_rescale) {
            desc->rescale_slope = 1;
            desc->rescale_intercept = 0;
        }
    }

    /* The window and its function come from one place: the top level or frame 1's macro. */
    uint32_t voi_parent = attribute_parent(file, TAG_WINDOW_CENTER, TAG_FRAME_VOI_LUT);
    enum cxr_status status = read_windows(file, voi_parent, desc, err);
    if (status != CXR_OK)
        return status;
    desc->voi_lut_function = CXR_VOI_LINEAR;
    if (text_value(file, dicom_element_find(file, voi_parent, TAG_VOI_LUT_FUNCTION), 0, text,
                   sizeof(text))) {
        if (strcmp(text, "LINEAR_EXACT") == 0)
            desc->voi_lut_function = CXR_VOI_LINEAR_EXACT;
        else if (strcmp(text, "SIGMOID") == 0)
            desc->voi_lut_function = CXR_VOI_SIGMOID;
    }
    desc->presentation_lut_shape = CXR_PRESENTATION_LUT_ABSENT;
    if (text_value(file, find_top(file, TAG_PRESENTATION_LUT_SHAPE), 0, text, sizeof(text))) {
        if (strcmp(text, "IDENTITY") == 0)
            desc->presentation_lut_shape = CXR_PRESENTATION_LUT_IDENTITY;
        else if (strcmp(text, "INVERSE") == 0)
            desc->presentation_lut_shape = CXR_PRESENTATION_LUT_INVERSE;
    }

    bool signed_pixels = pixel_representation == 1;
    read_pixel_padding(file, signed_pixels, desc);
    status = read_lut(file, TAG_MODALITY_LUT_SEQUENCE, "Modality LUT Sequence", signed_pixels,
                      &file->modality_lut, &file->modality_lut_entries, err);
    if (status == CXR_OK)
        desc->modality_lut = &file->modality_lut;
    else if (status != CXR_ERR_NOT_FOUND)
        return status;
    status = read_lut(file, TAG_VOI_LUT_SEQUENCE, "VOI LUT Sequence", signed_pixels, &file->voi_lut,
                      &file->voi_lut_entries, err);
    if (status == CXR_OK)
        desc->voi_lut = &file->voi_lut;
    else if (status != CXR_ERR_NOT_FOUND)
        return status;
    return CXR_OK;
}

enum cxr_status dicom_pixels_build(struct cxr_dicom_file *file, const struct cxr_limits *limits)
{
    file->pixel_err = (struct cxr_err)CXR_ERR_INIT;
    enum cxr_status status = describe(file, limits, &file->pixel_err);
    if (status == CXR_ERR_NOMEM)
        return CXR_ERR_NOMEM;
    return CXR_OK;
}

void dicom_pixels_free(struct cxr_dicom_file *file)
{
    free(file->modality_lut_entries);
    free(file->voi_lut_entries);
    free(file->windows);
    free(file->offsets);
    free(file->fragments);
    free(file->photometric);
}

enum cxr_status cxr_dicom_file_pixels(const struct cxr_dicom_file *file,
                                      struct cxr_dicom_pixel_desc *desc,
                                      struct cxr_dicom_pixel_data *pixels, struct cxr_err *err)
{
    if (file == NULL || desc == NULL || pixels == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "DICOM: no file or output");
    if (file->pixel_err.status != CXR_OK)
        return cxr_err_set(err, file->pixel_err.status, "%s", file->pixel_err.message);
    *desc = file->desc;
    *pixels = file->pixels;
    return CXR_OK;
}
