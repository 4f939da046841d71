/* The cxrd subcommands, one per src/cli/cli_<name>.c; src/main.c dispatches to them. Each takes
 * its own argv (argv[0] is the command name) and returns the process exit status. */
#ifndef CXR_CLI_H
#define CXR_CLI_H

int cxr_cli_dump(int argc, char **argv);
int cxr_cli_render(int argc, char **argv);
int cxr_cli_model_info(int argc, char **argv);
int cxr_cli_model_run(int argc, char **argv);
int cxr_cli_serve(int argc, char **argv);
int cxr_cli_token(int argc, char **argv);
int cxr_cli_infer(int argc, char **argv);
int cxr_cli_results(int argc, char **argv);
int cxr_cli_calibrate(int argc, char **argv);

#endif
