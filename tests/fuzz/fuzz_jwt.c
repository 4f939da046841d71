/* Fuzz target: the Authorization header check (JWT parsing, base64url, JOSE header JSON, libjwt
 * verification, claims). Any input must give an outcome, never a crash; forged tokens must
 * never be accepted (the secret is not derivable from the corpus). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cxr_auth *auth;
static struct cxr_config config;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (auth == NULL) {
        struct cxr_err err = CXR_ERR_INIT;
        if (cxr_config_load(NULL, &config, &err) != CXR_OK)
            abort();
        free(config.jwt_secret);
        config.jwt_secret = strdup("fuzz-secret-that-no-input-contains-0123");
        if (cxr_http_auth_create(&config, &auth, &err) != CXR_OK)
            abort();
    }
    char *header = malloc(size + 1);
    if (header == NULL)
        return 0;
    memcpy(header, data, size);
    header[size] = '\0';
    char subject[64];
    enum cxr_http_auth_outcome outcome =
            cxr_http_auth_check(auth, header, 1900000000, subject, sizeof subject);
    if (outcome == CXR_AUTH_OK)
        abort(); /* a token signed with the secret cannot come from the fuzzer */
    free(header);
    return 0;
}
