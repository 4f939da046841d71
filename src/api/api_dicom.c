/* The DICOM outputs of one job (`"dicom_outputs": true`, `cxrd infer --dicom`): the Chest CAD
 * SR, the heatmap as a Secondary Capture and the PDF report as an Encapsulated PDF, built from
 * what the pipeline already made (docs/dicom-outputs.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "report/report.h"

void cxr_api_dicom_outputs_release(struct cxr_api_dicom_outputs *outputs)
{
    cxr_buf_release(&outputs->sr);
    cxr_buf_release(&outputs->heatmap);
    cxr_buf_release(&outputs->report);
}

enum cxr_status
cxr_api_dicom_outputs_build(struct cxr_api *api, const struct cxr_dicom_meta *source,
                            const struct cxr_prediction *prediction, const struct cxr_rgb8 *heatmap,
                            const struct cxr_gray8 *image, const struct cxr_buf *pdf,
                            bool gate_flagged, int64_t report_time,
                            struct cxr_api_dicom_outputs *outputs, struct cxr_err *err)
{
    struct cxr_report_dicom_info info = {
            .source = source,
            .uid_root = api->config->dicom_uid_root,
            .model_version = cxr_model_version(api->model),
            .thresholds = api->thresholds_used,
            .content_time = report_time,
    };
    memset(outputs, 0, sizeof *outputs);
    enum cxr_status status = cxr_report_dicom_sr(&info, prediction, &outputs->sr, err);
    /* The heatmap travels alone in the PACS: a reader who opens it without the PDF (which
     * states the gate's warning) sees at least in its series that the image was flagged. */
    const char *flagged = gate_flagged ? "; input check warning" : "";
    if (status == CXR_OK && heatmap != NULL) {
        char description[96];
        snprintf(description, sizeof description, "AI heatmap (cxrd): %s%s",
                 cxr_model_result_name(prediction->result), flagged);
        status = cxr_report_dicom_sc(&info, heatmap, description, true, &outputs->heatmap, err);
    } else if (status == CXR_OK) {
        /* Normal: no overlay to show; the viewer still gets the series, with the source as
         * cxrd saw it and a description that says there is nothing to overlay. */
        struct cxr_rgb8 grey = {image->width, image->height, NULL};
        size_t count = (size_t)image->width * image->height;
        grey.pixels = count <= SIZE_MAX / 3 ? malloc(count * 3) : NULL;
        if (grey.pixels == NULL) {
            status = cxr_err_set(err, CXR_ERR_NOMEM, "DICOM outputs: out of memory");
        } else {
            for (size_t i = 0; i < count; i++)
                memset(grey.pixels + 3 * i, image->pixels[i], 3);
            status = cxr_report_dicom_sc(
                    &info, &grey,
                    gate_flagged ? "AI heatmap (cxrd): Normal; input check warning"
                                 : "AI heatmap (cxrd): Normal, no finding to overlay",
                    false, &outputs->heatmap, err);
            free(grey.pixels);
        }
    }
    if (status == CXR_OK)
        status = cxr_report_dicom_pdf(&info, pdf->data, pdf->len, &outputs->report, err);
    if (status != CXR_OK)
        cxr_api_dicom_outputs_release(outputs);
    return status;
}
