/* `cxrd token --subject NAME [--ttl 30d] [--config FILE]`: mints a JWT for an integrator with
 * the configured key (HS256 secret or RS256/ES256 private key). There is no login endpoint:
 * operators issue tokens on the server. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "cli/cli.h"
#include "http/http.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: cxrd token --subject NAME [--ttl DURATION] [--config FILE]\n\n"
                 "Prints a JWT for NAME, valid from now for DURATION (e.g. 3600s, 12h, 30d;\n"
                 "default: [auth] token_ttl, 30d). The key comes from FILE's [auth] section or,\n"
                 "for HS256, from the environment variable CXRD_JWT_SECRET. NAME is UTF-8\n"
                 "text of 1 to 127 bytes without control characters. Only the token goes to\n"
                 "stdout. Exit status: 0 on success, 1 on failure (message on stderr), 2 on a\n"
                 "usage error.\n");
}

/* Why subject cannot be a token's "sub", or NULL. The server copies the subject of each
 * request into its log line and audit rows: a longer one was cut there (possibly inside a
 * character), a line feed split the log line, and bytes that are not UTF-8 made libjwt fail
 * with "cannot sign" only. */
static const char *subject_problem(const char *subject)
{
    size_t length = strlen(subject);
    if (length == 0 || length > CXR_HTTP_SUBJECT_MAX)
        return "must have 1 to 127 bytes";
    for (size_t i = 0; i < length; i++) {
        if ((unsigned char)subject[i] < 0x20 || subject[i] == 0x7f)
            return "holds a control character";
    }
    json_t *string = json_string(subject); /* NULL when not UTF-8 */
    json_decref(string);
    return string ? NULL : "is not UTF-8 text";
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
            if (!cxr_cli_option_once("token", "config", &config_path, optarg))
                return 2;
            break;
        case 's':
            if (!cxr_cli_option_once("token", "subject", &subject, optarg))
                return 2;
            break;
        case 't':
            if (!cxr_cli_option_once("token", "ttl", &ttl_text, optarg))
                return 2;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (subject == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    const char *problem = subject_problem(subject);
    if (problem) {
        fprintf(stderr, "cxrd token: --subject %s\n", problem);
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
