/* JPEG Extended with 12-bit samples (DICOM 1.2.840.10008.1.2.4.51, SOF1; common in CR
 * archives; also progressive SOF2 frames of the retired .4.53 and .4.55) through GDCM's 12-bit
 * build of the IJG library (libgdcmjpeg12, Debian's libgdcm-dev), the same IJG 6b code DCMTK builds
 * as its libijg12. Its symbols are renamed (gdcmjpeg12_*), so it links beside libjpeg-turbo; the
 * decode is codec_jpeg_ijg.h. */
#include <stdio.h>

#include <gdcmjpeg/12/jpeglib.h>
/* after jpeglib.h, which it needs */
#include <gdcmjpeg/12/jerror.h>

#include "codec/codec.h"
#define IJG_LIBRARY_NAME "IJG 12-bit (GDCM)"
#include "codec/codec_jpeg_ijg.h"

enum cxr_status cxr_codec_jpeg12_decode(const uint8_t *data, size_t size, uint32_t width,
                                        uint32_t height, uint32_t components, bool convert_ybr,
                                        int32_t *samples, struct cxr_err *err)
{
    return ijg_decode(data, size, width, height, components, convert_ybr, samples, err);
}
