/* cxr_image_render: a parsed DICOM file to its 8-bit grey rendering (frame 1). Kept apart from
 * the rendering chain so the chain links without the DICOM reader. */
#include <stdbool.h>
#include <string.h>

#include "codec/codec.h"
#include "image/image.h"

enum cxr_status cxr_image_render(const struct cxr_dicom_file *file, const struct cxr_limits *limits,
                                 struct cxr_gray8 *out, struct cxr_err *err)
{
    if (file == NULL || limits == NULL || out == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "image: missing argument");
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    enum cxr_status status = cxr_dicom_file_pixels(file, &desc, &pixels, err);
    if (status != CXR_OK)
        return status;
    /* The common case - native 8/16-bit grey, the whole chain in one table over the raw
     * values - skips the int32 frame; everything else goes through codec/. */
    bool monochrome = desc.photometric_interpretation &&
                      (strcmp(desc.photometric_interpretation, "MONOCHROME1") == 0 ||
                       strcmp(desc.photometric_interpretation, "MONOCHROME2") == 0);
    bool native = !pixels.encapsulated && desc.transfer_syntax_uid &&
                  cxr_codec_syntax_supported(desc.transfer_syntax_uid) &&
                  !cxr_codec_syntax_encapsulated(desc.transfer_syntax_uid);
    if (monochrome && native && desc.samples_per_pixel == 1 &&
        (desc.bits_allocated == 8 || desc.bits_allocated == 16) && desc.bits_stored >= 1 &&
        desc.bits_stored <= desc.bits_allocated) {
        size_t pixel_count = (size_t)desc.rows * desc.columns;
        if (pixel_count > limits->max_image_pixels)
            return cxr_err_set(err, CXR_ERR_LIMIT, "image of %ux%u pixels exceeds the limit of %zu",
                               desc.columns, desc.rows, limits->max_image_pixels);
        return cxr_image_render_native(&desc, &pixels, out, err);
    }
    struct cxr_codec_frame frame;
    status = cxr_codec_frame_decode(&desc, &pixels, 0, limits, &frame, err);
    if (status != CXR_OK)
        return status;
    status = cxr_image_render_frame(&desc, &frame, out, err);
    cxr_codec_frame_release(&frame);
    return status;
}
