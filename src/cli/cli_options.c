/* What the subcommands share in reading their options. */
#include <stdio.h>

#include "cli/cli.h"

bool cxr_cli_option_once(const char *command, const char *option, const char **slot,
                         const char *value)
{
    /* getopt lets the last of two win: a script that builds its command line from pieces would
     * get another config, model, folder or patient than one of them named, and exit 0. */
    if (*slot != NULL) {
        fprintf(stderr, "cxrd %s: --%s given twice\n", command, option);
        return false;
    }
    *slot = value;
    return true;
}
