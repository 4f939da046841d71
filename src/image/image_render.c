/* The rendering chain from stored values to an 8-bit grey image: Modality LUT (rescale or LUT
 * sequence), VOI LUT (window with its VOI LUT Function, LUT sequence, or a percentile window),
 * inversion of MONOCHROME1 (or as Presentation LUT Shape says), colour to luminance. Stored ranges
 * of up to 16 bits go through one lookup table built per image, so the per-pixel work is a single
 * load. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "image/image.h"

/* The default window when the file has none: these percentiles of the modality values of the
 * pixels that are not padding, so a few extreme pixels (collimator edges, burnt-in labels) do
 * not flatten the contrast. */
#define DEFAULT_LOW_PERCENTILE  0.005
#define DEFAULT_HIGH_PERCENTILE 0.995
/* Largest stored range rendered through a lookup table (2^16 entries). */
#define LUT_MAX_ENTRIES 65536

static bool photometric_is(const struct cxr_codec_frame *frame, const char *name)
{
    return strcmp(frame->photometric, name) == 0;
}

/* Whether bone would come out dark without inverting: MONOCHROME1, unless a Presentation LUT
 * Shape says otherwise (it decides when present, as in DCMTK's dcm2pnm). */
static bool needs_inversion(const struct cxr_dicom_pixel_desc *desc, const char *photometric)
{
    if (desc->presentation_lut_shape != CXR_PRESENTATION_LUT_ABSENT)
        return desc->presentation_lut_shape == CXR_PRESENTATION_LUT_INVERSE;
    return photometric != NULL && strcmp(photometric, "MONOCHROME1") == 0;
}

static double modality_value(const struct cxr_dicom_pixel_desc *desc, int32_t stored)
{
    const struct cxr_dicom_lut *lut = desc->modality_lut;
    if (lut && lut->entry_count > 0 && lut->entries) {
        int64_t index = (int64_t)stored - lut->first_mapped;
        if (index < 0)
            index = 0;
        if (index >= (int64_t)lut->entry_count)
            index = (int64_t)lut->entry_count - 1;
        return lut->entries[index];
    }
    if (desc->has_rescale)
        return stored * desc->rescale_slope + desc->rescale_intercept;
    return stored;
}

/* A value in [0, 255] as the VOI stage computes it, before MONOCHROME1 inversion. */
struct voi {
    enum { VOI_WINDOW, VOI_TABLE } kind;
    double center;
    double width;
    enum cxr_voi_lut_function function;
    const struct cxr_dicom_lut *table;
    double table_max;
};

static double voi_apply(const struct voi *voi, double x)
{
    if (voi->kind == VOI_TABLE) {
        const struct cxr_dicom_lut *lut = voi->table;
        int64_t index = (int64_t)floor(x) - lut->first_mapped;
        if (index < 0)
            index = 0;
        if (index >= (int64_t)lut->entry_count)
            index = (int64_t)lut->entry_count - 1;
        return lut->entries[index] * 255.0 / voi->table_max;
    }
    double c = voi->center;
    double w = voi->width;
    switch (voi->function) {
    case CXR_VOI_SIGMOID: /* PS3.3 C.11.2.1.3.1 */
        return 255.0 / (1.0 + exp(-4.0 * (x - c) / w));
    case CXR_VOI_LINEAR_EXACT: /* C.11.2.1.3.2 */
        if (x <= c - w / 2)
            return 0;
        if (x > c + w / 2)
            return 255;
        return ((x - c) / w + 0.5) * 255.0;
    default: /* LINEAR, C.11.2.1.2.1 */
        if (x <= c - 0.5 - (w - 1) / 2)
            return 0;
        if (x > c - 0.5 + (w - 1) / 2)
            return 255;
        return ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0;
    }
}

static uint8_t to_byte(double value, bool invert)
{
    long level = lround(value);
    if (level < 0)
        level = 0;
    if (level > 255)
        level = 255;
    return (uint8_t)(invert ? 255 - level : level);
}

struct value_count {
    double value;
    uint64_t count;
};

static int compare_value_count(const void *a, const void *b)
{
    double x = ((const struct value_count *)a)->value;
    double y = ((const struct value_count *)b)->value;
    return (x > y) - (x < y);
}

/* Whether a stored value is padding (Pixel Padding Value / Range Limit). The default window
 * leaves padding out, as PS3.3 C.7.5.1.1.2 asks of a display: a border padded with a value far
 * from the image's would otherwise flatten its contrast. When every pixel is padding, the
 * window comes from all of them. Padded pixels still go through the window (a value outside
 * the image's range, as the standard recommends, lands at black or white). */
static bool is_padding(const struct cxr_dicom_pixel_desc *desc, int32_t stored)
{
    return desc->has_pixel_padding && stored >= desc->pixel_padding_low &&
           stored <= desc->pixel_padding_high;
}

/* Percentile window from (value, count) pairs, sorted here. */
static void percentile_window(struct value_count *pairs, size_t pair_count, struct voi *voi)
{
    qsort(pairs, pair_count, sizeof(*pairs), compare_value_count);
    uint64_t total = 0;
    for (size_t i = 0; i < pair_count; i++)
        total += pairs[i].count;
    uint64_t low_rank = (uint64_t)(total * DEFAULT_LOW_PERCENTILE);
    uint64_t high_rank = (uint64_t)(total * DEFAULT_HIGH_PERCENTILE);
    if (high_rank >= total && total > 0)
        high_rank = total - 1;
    double low = pairs[0].value;
    double high = pairs[pair_count - 1].value;
    uint64_t seen = 0;
    bool low_found = false;
    for (size_t i = 0; i < pair_count; i++) {
        seen += pairs[i].count;
        if (!low_found && seen > low_rank) {
            low = pairs[i].value;
            low_found = true;
        }
        if (seen > high_rank) {
            high = pairs[i].value;
            break;
        }
    }
    voi->kind = VOI_WINDOW;
    voi->function = CXR_VOI_LINEAR_EXACT;
    if (high <= low) {
        voi->center = low;
        voi->width = 1;
    } else {
        voi->center = (low + high) / 2;
        voi->width = high - low;
    }
}

/* Chooses the VOI transform: the file's first valid window, then its VOI LUT, else none
 * (the caller computes the default window). Returns false for "none". */
static bool voi_from_file(const struct cxr_dicom_pixel_desc *desc, struct voi *voi)
{
    memset(voi, 0, sizeof(*voi));
    for (uint32_t i = 0; i < desc->window_count; i++) {
        double width = desc->window_widths[i];
        bool usable = desc->voi_lut_function == CXR_VOI_LINEAR ? width >= 1 : width > 0;
        if (usable && isfinite(width) && isfinite(desc->window_centers[i])) {
            voi->kind = VOI_WINDOW;
            voi->center = desc->window_centers[i];
            voi->width = width;
            voi->function = desc->voi_lut_function;
            return true;
        }
    }
    const struct cxr_dicom_lut *lut = desc->voi_lut;
    if (lut && lut->entry_count > 0 && lut->entries) {
        voi->kind = VOI_TABLE;
        voi->table = lut;
        /* Scale by the largest entry the descriptor allows, unless the table is declared 16
         * bits but holds fewer (a common encoder habit also handled by DCMTK). */
        uint32_t max_entry = 0;
        for (uint32_t i = 0; i < lut->entry_count; i++)
            if (lut->entries[i] > max_entry)
                max_entry = lut->entries[i];
        unsigned bits =
                lut->bits_per_entry >= 1 && lut->bits_per_entry <= 16 ? lut->bits_per_entry : 16;
        while (bits > 8 && max_entry < (1u << (bits - 1)))
            bits--;
        voi->table_max = (double)((1u << bits) - 1);
        return true;
    }
    return false;
}

static enum cxr_status render_monochrome(const struct cxr_dicom_pixel_desc *desc,
                                         const struct cxr_codec_frame *frame, uint8_t *out,
                                         struct cxr_err *err)
{
    size_t count = (size_t)frame->width * frame->height;
    const int32_t *samples = frame->samples;
    bool invert = needs_inversion(desc, frame->photometric);
    int32_t min = samples[0];
    int32_t max = samples[0];
    for (size_t i = 1; i < count; i++) {
        if (samples[i] < min)
            min = samples[i];
        if (samples[i] > max)
            max = samples[i];
    }
    struct voi voi;
    bool have_voi = voi_from_file(desc, &voi);
    uint64_t range = (uint64_t)((int64_t)max - min) + 1;
    if (range <= LUT_MAX_ENTRIES) {
        /* Lookup table over the stored values present. */
        uint8_t *lut = malloc(range);
        if (lut == NULL)
            return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for the LUT");
        if (!have_voi) {
            uint64_t *histogram = calloc(range, sizeof(*histogram));
            struct value_count *pairs = malloc(range * sizeof(*pairs));
            if (histogram == NULL || pairs == NULL) {
                free(histogram);
                free(pairs);
                free(lut);
                return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for a histogram");
            }
            for (size_t i = 0; i < count; i++)
                histogram[samples[i] - min]++;
            size_t pair_count = 0;
            for (int pass = 0; pass < 2 && pair_count == 0; pass++) {
                for (uint64_t v = 0; v < range; v++) {
                    int32_t stored = (int32_t)(min + (int64_t)v);
                    if (histogram[v] == 0 || (pass == 0 && is_padding(desc, stored)))
                        continue;
                    pairs[pair_count].value = modality_value(desc, stored);
                    pairs[pair_count].count = histogram[v];
                    pair_count++;
                }
            }
            percentile_window(pairs, pair_count, &voi);
            free(histogram);
            free(pairs);
        }
        for (uint64_t v = 0; v < range; v++)
            lut[v] = to_byte(voi_apply(&voi, modality_value(desc, (int32_t)(min + (int64_t)v))),
                             invert);
        for (size_t i = 0; i < count; i++)
            out[i] = lut[samples[i] - min];
        free(lut);
        return CXR_OK;
    }
    /* Wide (32-bit) data: compute per pixel; the default window comes from a subsample. */
    if (!have_voi) {
        size_t step = count > (1u << 20) ? count / (1u << 20) : 1;
        size_t sampled = (count + step - 1) / step;
        struct value_count *pairs = malloc(sampled * sizeof(*pairs));
        if (pairs == NULL)
            return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for a histogram");
        size_t pair_count = 0;
        for (int pass = 0; pass < 2 && pair_count == 0; pass++) {
            for (size_t i = 0; i < count; i += step) {
                if (pass == 0 && is_padding(desc, samples[i]))
                    continue;
                pairs[pair_count].value = modality_value(desc, samples[i]);
                pairs[pair_count].count = 1;
                pair_count++;
            }
        }
        percentile_window(pairs, pair_count, &voi);
        free(pairs);
    }
    for (size_t i = 0; i < count; i++)
        out[i] = to_byte(voi_apply(&voi, modality_value(desc, samples[i])), invert);
    return CXR_OK;
}

/* Native 8/16-bit monochrome without the int32 intermediate: a histogram of the raw container
 * values (for the default window), one lookup table indexed by the raw value, one pass. */
enum cxr_status cxr_image_render_native(const struct cxr_dicom_pixel_desc *desc,
                                        const struct cxr_dicom_pixel_data *pixels,
                                        struct cxr_gray8 *out, struct cxr_err *err)
{
    size_t count = (size_t)desc->rows * desc->columns;
    unsigned bytes = desc->bits_allocated / 8u;
    unsigned bits_stored = desc->bits_stored;
    if (count == 0 || (bytes != 1 && bytes != 2) || bits_stored == 0 ||
        bits_stored > desc->bits_allocated || pixels->encapsulated || desc->samples_per_pixel != 1)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "image: not native 8/16-bit grey");
    if (pixels->native_size / bytes < count)
        return cxr_err_set(err, CXR_ERR_MALFORMED,
                           "pixel data holds %zu bytes, too few for one %ux%u frame",
                           pixels->native_size, desc->columns, desc->rows);
    /* Byte order, High Bit and sign exactly as codec/ reads native frames (codec.h). */
    unsigned shift = cxr_codec_native_shift(desc);
    bool is_signed = desc->pixel_representation == 1;
    bool invert = needs_inversion(desc, desc->photometric_interpretation);
    size_t entries = (size_t)1 << (8 * bytes);
    uint32_t *histogram = calloc(entries, sizeof(*histogram));
    uint8_t *lut = malloc(entries);
    uint8_t *image = malloc(count);
    struct value_count *pairs = NULL;
    enum cxr_status status = CXR_OK;
    if (histogram == NULL || lut == NULL || image == NULL) {
        status = cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for %zu pixels", count);
        goto done;
    }
    for (size_t i = 0; i < count; i++)
        histogram[cxr_codec_native_raw(pixels, bytes, i)]++;
    struct voi voi;
    if (!voi_from_file(desc, &voi)) {
        pairs = malloc(entries * sizeof(*pairs));
        if (pairs == NULL) {
            status = cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for a histogram");
            goto done;
        }
        size_t pair_count = 0;
        for (int pass = 0; pass < 2 && pair_count == 0; pass++) {
            for (size_t raw = 0; raw < entries; raw++) {
                if (histogram[raw] == 0)
                    continue;
                int32_t stored =
                        cxr_codec_stored_value((uint32_t)raw, shift, bits_stored, is_signed);
                if (pass == 0 && is_padding(desc, stored))
                    continue;
                pairs[pair_count].value = modality_value(desc, stored);
                pairs[pair_count].count = histogram[raw];
                pair_count++;
            }
        }
        percentile_window(pairs, pair_count, &voi);
    }
    for (size_t raw = 0; raw < entries; raw++) {
        if (histogram[raw] == 0)
            continue; /* never looked up */
        int32_t stored = cxr_codec_stored_value((uint32_t)raw, shift, bits_stored, is_signed);
        lut[raw] = to_byte(voi_apply(&voi, modality_value(desc, stored)), invert);
    }
    for (size_t i = 0; i < count; i++)
        image[i] = lut[cxr_codec_native_raw(pixels, bytes, i)];
    out->width = desc->columns;
    out->height = desc->rows;
    out->pixels = image;
    image = NULL;
done:
    free(histogram);
    free(lut);
    free(image);
    free(pairs);
    return status;
}

static enum cxr_status render_colour(const struct cxr_dicom_pixel_desc *desc,
                                     const struct cxr_codec_frame *frame, uint8_t *out,
                                     struct cxr_err *err)
{
    size_t count = (size_t)frame->width * frame->height;
    const int32_t *samples = frame->samples;
    /* Colour samples are shown over their full stored range (no VOI for colour). */
    unsigned bits = desc->bits_stored;
    double scale = bits >= 32 ? 255.0 / 4294967295.0 : 255.0 / (double)((1ull << bits) - 1);
    if (photometric_is(frame, "YBR_FULL")) {
        /* Y is the luminance already (PS3.3 C.7.6.3.1.2). */
        for (size_t i = 0; i < count; i++)
            out[i] = to_byte((uint32_t)samples[3 * i] * scale, false);
        return CXR_OK;
    }
    if (!photometric_is(frame, "RGB"))
        return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                           "image: photometric interpretation %s is not supported for rendering",
                           frame->photometric);
    if (bits == 8) {
        /* Rec. 601 luma in fixed point (weights sum to 1 << 16). */
        for (size_t i = 0; i < count; i++) {
            const int32_t *p = samples + 3 * i;
            uint32_t luma =
                    (uint32_t)(19595 * (uint32_t)(p[0] & 255) + 38470 * (uint32_t)(p[1] & 255) +
                               7471 * (uint32_t)(p[2] & 255) + 32768);
            out[i] = (uint8_t)(luma >> 16);
        }
        return CXR_OK;
    }
    for (size_t i = 0; i < count; i++) {
        const int32_t *p = samples + 3 * i;
        double luma = 0.299 * (uint32_t)p[0] + 0.587 * (uint32_t)p[1] + 0.114 * (uint32_t)p[2];
        out[i] = to_byte(luma * scale, false);
    }
    return CXR_OK;
}

enum cxr_status cxr_image_render_frame(const struct cxr_dicom_pixel_desc *desc,
                                       const struct cxr_codec_frame *frame, struct cxr_gray8 *out,
                                       struct cxr_err *err)
{
    if (desc == NULL || frame == NULL || out == NULL || frame->samples == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "image: missing argument");
    size_t count = (size_t)frame->width * frame->height;
    if (count == 0)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "image: empty frame");
    bool monochrome = photometric_is(frame, "MONOCHROME1") || photometric_is(frame, "MONOCHROME2");
    if (!monochrome && frame->samples_per_pixel == 1) {
        if (photometric_is(frame, "PALETTE COLOR"))
            return cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                               "image: PALETTE COLOR images are not supported for rendering");
        monochrome = true; /* an unknown or absent one-sample interpretation: grey */
    }
    if (monochrome && frame->samples_per_pixel != 1)
        return cxr_err_set(err, CXR_ERR_MALFORMED, "image: %s with %u samples per pixel",
                           frame->photometric, frame->samples_per_pixel);
    uint8_t *pixels = malloc(count);
    if (pixels == NULL)
        return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for %zu pixels", count);
    enum cxr_status status = monochrome ? render_monochrome(desc, frame, pixels, err)
                                        : render_colour(desc, frame, pixels, err);
    if (status != CXR_OK) {
        free(pixels);
        return status;
    }
    out->width = frame->width;
    out->height = frame->height;
    out->pixels = pixels;
    return CXR_OK;
}
