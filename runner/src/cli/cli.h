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

/* Command flags, as bits, so that each command can say which it accepts. */
enum cli_flag {
    CLI_JSON = 1 << 0,
    CLI_YES = 1 << 1,
    CLI_DRY_RUN = 1 << 2,
    CLI_CLEAN = 1 << 3,
    CLI_NO_SAFETY_BACKUP = 1 << 4,
    CLI_NO_OWNER = 1 << 5,
    CLI_SET = 1 << 6,
    CLI_INTO = 1 << 7,
    CLI_TO_FILE = 1 << 8,
    CLI_ONLINE = 1 << 9,
    CLI_TO = 1 << 10,
    CLI_CONFIRM = 1 << 11,
};

struct cli_args {
    const char *command; /* NULL when none was given */
    const char *args[CLI_MAX_ARGS];
    size_t nargs;
    const char *config_file; /* --config */
    const char *set;         /* --set ID|latest */
    const char *into;        /* --into NAME */
    const char *to_file;     /* --to-file PATH */
    const char *to;          /* --to DIR */
    const char *confirm;     /* --confirm TARGET */
    bool json, yes, dry_run, clean, no_safety_backup, no_owner, online, help, version;
    unsigned given;              /* enum cli_flag bits of the command flags present */
    struct config_flag *options; /* option flags for config_load */
    size_t noptions;
};

/* Parses argv. On a malformed command line fails with SV_EXIT_USAGE.
 * Strings point into argv (or are owned by args and freed by cli_free). */
int cli_parse(int argc, char **argv, struct cli_args *args, sv_error *err);
void cli_free(struct cli_args *args);

/* Fails with SV_EXIT_USAGE naming the first flag given that command does
 * not accept (allowed: enum cli_flag bits): a flag silently ignored, such
 * as --dry-run on backup, would do for real what the user meant to try. */
int cli_check_flags(const struct cli_args *args, const char *command, unsigned allowed, sv_error *err);

/* The text of `sauve help`. */
void cli_print_help(void);

#endif
