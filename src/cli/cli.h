/* cxrd's subcommands, one function each (argv[0] is the command name). Exit status: 0 success,
 * 1 failure, 2 usage error. */
#ifndef CXR_CLI_H
#define CXR_CLI_H

int cxr_cli_model_info(int argc, char **argv);
int cxr_cli_model_run(int argc, char **argv);

#endif
