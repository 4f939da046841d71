/* The cxrd subcommands, one per src/cli/cli_<name>.c; src/main.c dispatches to them. Each takes
 * its own argv (argv[0] is the command name) and returns the process exit status. */
#ifndef CXR_CLI_H
#define CXR_CLI_H

#include <stdbool.h>

int cxr_cli_dump(int argc, char **argv);
int cxr_cli_render(int argc, char **argv);
int cxr_cli_model_info(int argc, char **argv);
int cxr_cli_model_run(int argc, char **argv);
int cxr_cli_serve(int argc, char **argv);
int cxr_cli_token(int argc, char **argv);
int cxr_cli_infer(int argc, char **argv);
int cxr_cli_results(int argc, char **argv);
int cxr_cli_calibrate(int argc, char **argv);

/* Sets *slot to value, or says "cxrd COMMAND: --OPTION given twice" on stderr and returns false
 * (the caller exits 2) when an earlier value is there (cli_options.c). */
bool cxr_cli_option_once(const char *command, const char *option, const char **slot,
                         const char *value);

#endif
