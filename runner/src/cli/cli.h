/*
 * Command line: `sauve [flags] COMMAND [ARGS] [flags]`. Flags may appear
 * before or after the command. Command flags (--json, --yes, --set, ...) are
 * parsed here; every other --name[=value] is handed to the configuration as
 * an option flag, which validates it (unknown option: usage error).
 */
#ifndef SAUVE_CLI_CLI_H
#define SAUVE_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "config/config.h"

#define CLI_MAX_ARGS 8

struct cli_args {
    const char *command; /* NULL when none was given */
    const char *args[CLI_MAX_ARGS];
    size_t nargs;
    const char *config_file; /* --config */
    const char *set;         /* --set ID|latest */
    const char *into;        /* --into NAME */
    bool json, yes, dry_run, clean, no_safety_backup, no_owner, help, version;
    struct config_flag *options; /* option flags for config_load */
    size_t noptions;
};

/* Parses argv. On a malformed command line fails with SV_EXIT_USAGE.
 * Strings point into argv (or are owned by args and freed by cli_free). */
int cli_parse(int argc, char **argv, struct cli_args *args, sv_error *err);
void cli_free(struct cli_args *args);

/* The text of `sauve help`. */
void cli_print_help(void);

#endif
