/* The worklist page's static files (embedded at build time from src/http/ui/) and the security
 * headers of every worklist answer. The page itself holds no data: results, images and reports
 * come from the authenticated /results routes, fetched by the page with the reader's token. */
#include <string.h>

#include "http/http_internal.h"

const struct cxr_http_ui_file *cxr_http_ui_find(const char *url)
{
    const char *wanted = strcmp(url, "/ui/") == 0 ? "/ui" : url;
    for (size_t i = 0; i < cxr_http_ui_file_count; i++) {
        if (strcmp(cxr_http_ui_files[i].url, wanted) == 0)
            return &cxr_http_ui_files[i];
    }
    return NULL;
}

void cxr_http_ui_headers(struct MHD_Response *response)
{
    /* No inline script or style anywhere; blob: images are the ones the page fetched with its
     * token. */
    MHD_add_response_header(response, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; style-src 'self'; "
                            "img-src 'self' blob:; connect-src 'self'; base-uri 'none'; "
                            "form-action 'none'; frame-ancestors 'none'");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, "X-Frame-Options", "DENY");
    MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(response, "Cache-Control", "no-store");
}
