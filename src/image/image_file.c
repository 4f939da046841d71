/* cxr_image_render: a parsed DICOM file to its 8-bit grey rendering (frame 1). Kept apart from
 * the rendering chain so the chain links without the DICOM reader. */
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
    struct cxr_codec_frame frame;
    status = cxr_codec_frame_decode(&desc, &pixels, 0, limits, &frame, err);
    if (status != CXR_OK)
        return status;
    status = cxr_image_render_frame(&desc, &frame, out, err);
    cxr_codec_frame_release(&frame);
    return status;
}
