/* Image stage: turns a DICOM file's pixel data into what people and the network see. The
 * rendering chain is: decode frame 1 (codec/), Modality LUT (rescale or LUT sequence), VOI LUT
 * (window centre/width with the VOI LUT Function, a VOI LUT sequence, or a histogram-based
 * default window), MONOCHROME1 inversion (or as Presentation LUT Shape says) so bone is bright,
 * colour to luminance; the result is an 8-bit grey image at full resolution. Also: resampling into
 * the network's float tensor, and PNG encoding.
 *
 * Ownership: outputs are written only on success. Thread safe: no shared state. */
#ifndef CXR_IMAGE_H
#define CXR_IMAGE_H

#include <stdint.h>

#include "dicom/dicom.h"
#include "util/util.h"

/* Row-major 8-bit grey image, stride == width. */
struct cxr_gray8 {
    uint32_t width;
    uint32_t height;
    uint8_t *pixels;
};

/* Row-major 8-bit RGB image, 3 bytes per pixel, stride == 3 * width. */
struct cxr_rgb8 {
    uint32_t width;
    uint32_t height;
    uint8_t *pixels;
};

/* Frees the pixels and zeroes the struct; NULL is a no-op. */
void cxr_image_gray8_release(struct cxr_gray8 *image);
void cxr_image_rgb8_release(struct cxr_rgb8 *image);

/* The whole rendering chain for frame 1 of a parsed file. Errors name the cause, e.g.
 * CXR_ERR_UNSUPPORTED "transfer syntax 1.2.840.10008.1.2.4.92 (JPEG 2000 Part 2 Multi-component
 * Lossless) is not supported". */
enum cxr_status cxr_image_render(const struct cxr_dicom_file *file, const struct cxr_limits *limits,
                                 struct cxr_gray8 *out, struct cxr_err *err);

/* The rendering chain without the file: frame (decoded by codec/, see codec/codec.h) rendered
 * with desc's LUTs and window. Used by cxr_image_render and by tests and benchmarks. */
struct cxr_codec_frame;
enum cxr_status cxr_image_render_frame(const struct cxr_dicom_pixel_desc *desc,
                                       const struct cxr_codec_frame *frame, struct cxr_gray8 *out,
                                       struct cxr_err *err);

/* The same chain for native (uncompressed) 8- or 16-bit single-sample monochrome data, frame
 * 1, straight from the file's bytes through one table indexed by the raw value (no decoded
 * frame). cxr_image_render uses it when it applies; CXR_ERR_INVALID_ARG otherwise. */
struct cxr_dicom_pixel_data;
enum cxr_status cxr_image_render_native(const struct cxr_dicom_pixel_desc *desc,
                                        const struct cxr_dicom_pixel_data *pixels,
                                        struct cxr_gray8 *out, struct cxr_err *err);

/* ---- Resampling (image_resample.c): the one resampler of the pipeline ----
 * Separable, with per-axis weights computed once at create: area averaging when an axis
 * shrinks (every source pixel counts equally), bilinear at pixel centres with clamped edges
 * when it grows or keeps its size. The source is row-major, packed (stride == width *
 * channels), channels interleaved. Output rows go to a callback in order, each as out_width *
 * channels floats (valid during the call), so no full-size intermediate is held; memory is
 * O(out_width * taps). A resampler is reusable for sources of its size but not thread safe;
 * destroying NULL is a no-op. */
struct cxr_image_resampler;
typedef void (*cxr_image_row_fn)(void *context, uint32_t y, const float *row);
/* channels 1 to 4; sides up to 65536 (CXR_ERR_LIMIT above). *resampler only on success. */
enum cxr_status cxr_image_resampler_create(uint32_t in_width, uint32_t in_height, uint32_t channels,
                                           uint32_t out_width, uint32_t out_height,
                                           struct cxr_image_resampler **resampler,
                                           struct cxr_err *err);
/* The same, with the output spanning x_extent x y_extent source samples (fractions allowed,
 * 0 < extent <= twice the side): less than the image when the source is a grid whose last
 * cell overhangs the image it maps to; more when the output is such a grid (an overhanging
 * output cell is the mean of the samples it covers). */
enum cxr_status cxr_image_resampler_create_extent(uint32_t in_width, uint32_t in_height,
                                                  uint32_t channels, uint32_t out_width,
                                                  uint32_t out_height, double x_extent,
                                                  double y_extent,
                                                  struct cxr_image_resampler **resampler,
                                                  struct cxr_err *err);
void cxr_image_resampler_destroy(struct cxr_image_resampler *resampler);
/* Resamples in_width x in_height samples of 8 bits or float, calling sink for each row. */
void cxr_image_resampler_run_u8(struct cxr_image_resampler *resampler, const uint8_t *pixels,
                                cxr_image_row_fn sink, void *context);
void cxr_image_resampler_run_f32(struct cxr_image_resampler *resampler, const float *pixels,
                                 cxr_image_row_fn sink, void *context);

/* Area averaging by an integer factor, the resampler's fast case for 8-bit samples: out
 * (ceil(width / factor) x ceil(height / factor) x channels bytes, the caller's) gets the rounded
 * mean of each factor x factor cell; cells on the right and bottom edges may be smaller. */
enum cxr_status cxr_image_box_shrink(const uint8_t *pixels, uint32_t channels, uint32_t width,
                                     uint32_t height, uint32_t factor, uint8_t *out,
                                     struct cxr_err *err);

/* The whole image resized to out_width x out_height as the resampler above resizes it (the
 * aspect ratio is not kept), rounded to 8-bit levels with halves up, exactly (integer sums):
 * the levels cxr.preprocess equalisation works on. levels has out_width * out_height bytes,
 * the caller's. Sides up to 65536. */
enum cxr_status cxr_image_resize_levels(const struct cxr_gray8 *image, uint32_t out_width,
                                        uint32_t out_height, uint8_t *levels, struct cxr_err *err);

/* How cxr.preprocess equalises the resized grey levels, before scale and offset. */
enum cxr_equalize { CXR_EQUALIZE_NONE, CXR_EQUALIZE_HISTOGRAM, CXR_EQUALIZE_CLAHE };

/* The network tensor a model asks for (cxr.preprocess). */
struct cxr_tensor_format {
    uint32_t width, height;
    float scale, offset; /* tensor = level * scale + offset */
    enum cxr_equalize equalize;
    uint32_t clahe_tiles; /* CXR_EQUALIZE_CLAHE: cxr_image_clahe()'s tiles and clip */
    double clahe_clip;
};

/* Resizes the whole image to format's size with the resampler above (the aspect ratio is not
 * kept), then maps level * scale + offset. To equalise (format->equalize), the resized levels
 * are taken exactly, rounded to 8 bits (cxr_image_resize_levels()), and equalised as
 * cxr_image_to_tensor_equalized() or cxr_image_clahe() say. tensor has width * height floats,
 * owned by the caller. */
enum cxr_status cxr_image_to_tensor_formatted(const struct cxr_gray8 *image,
                                              const struct cxr_tensor_format *format, float *tensor,
                                              struct cxr_err *err);

/* Resizes the whole image to out_width x out_height with the resampler above (the aspect
 * ratio is not kept) and writes tensor[y * out_width + x] =
 * pixel * scale + offset. tensor has out_width * out_height floats, owned by the caller. */
enum cxr_status cxr_image_to_tensor(const struct cxr_gray8 *image, uint32_t out_width,
                                    uint32_t out_height, float scale, float offset, float *tensor,
                                    struct cxr_err *err);
/* The same with the resized image's grey histogram equalised (cxr.preprocess "equalize":
 * "histogram"): on the exact 8-bit levels (cxr_image_resize_levels()), grey g becomes
 * round(255 * (C(g) - C(lowest)) / (N - C(lowest))), halves up, where C(g) counts the pixels at
 * or below g and lowest is the darkest grey present; then * scale + offset. */
enum cxr_status cxr_image_to_tensor_equalized(const struct cxr_gray8 *image, uint32_t out_width,
                                              uint32_t out_height, float scale, float offset,
                                              float *tensor, struct cxr_err *err);

/* ---- Contrast-limited adaptive histogram equalisation (image_clahe.c) ----
 * In place, on an 8-bit grey image cut into tiles x tiles tiles (tile k of n pixels covers
 * [k*n/tiles, (k+1)*n/tiles), integer division). Each tile's 256-bin histogram is clipped at
 * max(1, floor(clip * tile pixels / 256)) and the clipped excess spread evenly over the bins;
 * the cumulative count maps grey g to round(255 * C(g) / tile pixels). A pixel's new level
 * blends the maps of the (up to) four tiles whose centres surround it, bilinearly, rounded
 * halves up: the same integers as the training tools' clahe() (tools/train/data.py).
 * Needs 1 <= tiles <= min(width, height, CXR_IMAGE_CLAHE_MAX_TILES) and 1 <= clip <= 256 (256:
 * no clipping), else CXR_ERR_INVALID_ARG. */
#define CXR_IMAGE_CLAHE_MAX_TILES 64
enum cxr_status cxr_image_clahe(uint8_t *pixels, uint32_t width, uint32_t height, uint32_t tiles,
                                double clip, struct cxr_err *err);

/* ---- PNG encoding (image_png.c) ----
 * 8-bit grey or RGB, appended to out (which the caller owns and releases; its maximum is
 * honoured and on failure nothing stays appended). Two presets, chosen by the config's
 * [report] png_compression (docs/png.md has the measurements behind them):
 * - CXR_IMAGE_PNG_FAST: SUB filter, ISA-L igzip level 1 (about a quarter of the CPU of the
 *   former zlib level 1 + Z_RLE, files 13 % smaller); libdeflate level 1 when built without
 *   ISA-L (CXR_HAVE_ISAL);
 * - CXR_IMAGE_PNG_SMALL: SUB filter, libdeflate level 4 (about 10 % smaller again, about four
 *   times the CPU of FAST).
 * Both are written as signature, IHDR, one IDAT and IEND.
 * Both decode bit-exact with libpng. Thread safe. */
enum cxr_image_png_compression {
    CXR_IMAGE_PNG_FAST = 0,
    CXR_IMAGE_PNG_SMALL = 1,
};

enum cxr_image_png_deflater {
    CXR_IMAGE_PNG_ZLIB = 0,       /* libspng streaming into zlib */
    CXR_IMAGE_PNG_LIBDEFLATE = 1, /* whole-buffer libdeflate, PNG chunks written here */
    CXR_IMAGE_PNG_ISAL = 2,       /* whole-buffer ISA-L igzip (levels 0-3), chunks written here */
};

/* PNG row filters; ADAPTIVE picks per row the filter whose output has the least sum of
 * absolute values (libpng's heuristic; libspng's SPNG_FILTER_CHOICE_ALL for zlib). */
enum cxr_image_png_filter {
    CXR_IMAGE_PNG_FILTER_NONE = 0,
    CXR_IMAGE_PNG_FILTER_SUB = 1,
    CXR_IMAGE_PNG_FILTER_UP = 2,
    CXR_IMAGE_PNG_FILTER_PAETH = 4,
    CXR_IMAGE_PNG_FILTER_ADAPTIVE = 5,
};

/* Every encoder setting, for the presets and for bench/png. level: zlib 1-9, libdeflate 1-12;
 * zlib_strategy: Z_DEFAULT_STRATEGY, Z_FILTERED or Z_RLE (ignored by libdeflate). */
struct cxr_image_png_options {
    enum cxr_image_png_deflater deflater;
    enum cxr_image_png_filter filter;
    int level;
    int zlib_strategy;
};

struct cxr_image_png_options cxr_image_png_options_preset(enum cxr_image_png_compression mode);

/* channels is 1 (grey) or 3 (RGB); rows are packed (stride == width * channels). */
enum cxr_status cxr_image_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height,
                                     uint32_t channels, const struct cxr_image_png_options *options,
                                     struct cxr_buf *out, struct cxr_err *err);
enum cxr_status cxr_image_png_encode_gray8(const struct cxr_gray8 *image,
                                           enum cxr_image_png_compression mode, struct cxr_buf *out,
                                           struct cxr_err *err);
enum cxr_status cxr_image_png_encode_rgb8(const struct cxr_rgb8 *image,
                                          enum cxr_image_png_compression mode, struct cxr_buf *out,
                                          struct cxr_err *err);

#endif
