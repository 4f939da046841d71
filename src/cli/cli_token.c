/* `cxrd token --subject NAME [--ttl 30d] [--config FILE]`: mints a JWT for an integrator with
 * the configured key (HS256 secret or RS256/ES256 private key). There is no login endpoint:
 * operators issue tokens on the server. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "api/api.h"
#include "cli/cli.h"
#include "http/http.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: cxrd token --subject NAME [--ttl DURATION] [--config FILE]\n\n"
                 "Prints a JWT for NAME, valid from now for DURATION (e.g. 3600s, 12h, 30d;\n"
                 "default: [auth] token_ttl, 30d). The key comes from FILE's [auth] section or,\n"
                 "for HS256, from the environment variable CXRD_JWT_SECRET.\n");
}

int cxr_cli_token(int argc, char **argv)
{
    static const struct option options[] = {
            {"config", required_argument, NULL, 'c'},
            {"subject", required_argument, NULL, 's'},
            {"ttl", required_argument, NULL, 't'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *subject = NULL, *ttl_text = NULL;
    optind = 1;
    for (int option; (option = getopt_long(argc, argv, "c:s:t:h", options, NULL)) != -1;) {
        switch (option) {
        case 'c':
            config_path = optarg;
            break;
        case 's':
            subject = optarg;
            break;
        case 't':
            ttl_text = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (subject == NULL || subject[0] == '\0' || optind != argc) {
        usage(stderr);
        return 2;
    }
    struct cxr_config config;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_config_load(config_path, &config, &err) != CXR_OK) {
        fprintf(stderr, "cxrd token: %s\n", err.message);
        return 1;
    }
    uint64_t ttl = config.token_ttl_s;
    if (ttl_text && (cxr_parse_duration(ttl_text, &ttl) != CXR_OK || ttl == 0 ||
                     ttl > (uint64_t)3650 * 86400)) {
        fprintf(stderr, "cxrd token: --ttl '%s' is not a duration like 3600s, 12h or 30d\n",
                ttl_text);
        cxr_config_release(&config);
        return 2;
    }
    char *token = NULL;
    enum cxr_status status =
            cxr_http_auth_token_mint(&config, subject, ttl, time(NULL), &token, &err);
    cxr_config_release(&config);
    if (status != CXR_OK) {
        fprintf(stderr, "cxrd token: %s\n", err.message);
        return 1;
    }
    printf("%s\n", token);
    free(token);
    return 0;
}
