/*
 * sauve: parse the command line, resolve the configuration, run one command,
 * end with a one-line summary and the exit code of DESIGN.md.
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/harden.h"
#include "common/log.h"
#include "common/signals.h"
#include "config/config.h"

struct command {
    const char *name;
    void (*run)(const struct cli_args *, const sv_config *, struct outcome *);
    unsigned flags; /* enum cli_flag bits it accepts */
};

static const struct command commands[] = {
    {"backup", cmd_backup, CLI_JSON},
    {"restore", cmd_restore,
     CLI_SET | CLI_INTO | CLI_CLEAN | CLI_NO_SAFETY_BACKUP | CLI_NO_OWNER | CLI_YES | CLI_TO_FILE |
         CLI_ONLINE | CLI_TO | CLI_CONFIRM},
    {"list", cmd_list, CLI_JSON},
    {"verify", cmd_verify, CLI_SET | CLI_JSON},
    {"drill", cmd_drill, CLI_SET | CLI_JSON},
    {"check", cmd_check, CLI_JSON},
    {"prune", cmd_prune, CLI_DRY_RUN | CLI_JSON | CLI_YES}, /* prune never asks: --yes is accepted for Jobs */
};

static int finish(struct outcome *out)
{
    log_summary(out->code, "%s", out->summary);
    return out->code;
}

int main(int argc, char **argv)
{
    log_init(LOG_FORMAT_AUTO, LOG_INFO);
    /* File names in tar headers: libarchive converts them between the
     * locale's charset and pax's UTF-8, and in the C locale it can convert
     * no byte above 127, so every non-ASCII name, valid UTF-8 or not, was
     * stored as bytes (hdrcharset=BINARY, which GNU tar warns about). In
     * C.UTF-8 a UTF-8 name is text and only others are bytes. LC_CTYPE
     * only: messages and numbers stay as in C. Before any thread starts.
     * Where C.UTF-8 is missing (glibc before 2.35), names are bytes as
     * before; exclude patterns match bytes either way (files_conf.c). */
    setlocale(LC_CTYPE, "C.UTF-8");
    /* Before any secret is read: the configuration loads them all. */
    sv_error harden_err = {0};
    if (harden_process(&harden_err) != 0)
        log_warn("%s: a core dump could hold secrets", harden_err.msg);
    /* Known before the configuration loads, so that a configuration error,
     * the failure kubectl describe most needs to show, reaches it too. */
    const char *term = getenv("SAUVE_TERMINATION_LOG");
    if (term && *term)
        log_set_termination_path(term);
    signals_install();

    struct outcome out = {0};
    struct cli_args args;
    sv_error err = {0};
    if (cli_parse(argc, argv, &args, &err) != 0) {
        cli_free(&args);
        outcome_fail(&out, "usage error", &err);
        return finish(&out);
    }
    if (args.version || (args.command && strcmp(args.command, "version") == 0)) {
        int code = cmd_version(&args, &out) == 0 ? SV_EXIT_OK : finish(&out);
        cli_free(&args);
        return code;
    }
    if (args.help || !args.command || strcmp(args.command, "help") == 0) {
        cli_print_help();
        int code = args.command || args.help ? 0 : SV_EXIT_USAGE;
        cli_free(&args);
        return code;
    }

    const struct command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(commands[i].name, args.command) == 0)
            cmd = &commands[i];
    if (!cmd) {
        outcome_set(&out, SV_EXIT_USAGE,
                    "usage error: unknown command '%s' (commands: backup, restore, list, verify, drill, "
                    "prune, check, version, help)",
                    args.command);
        cli_free(&args);
        return finish(&out);
    }
    if (cli_check_flags(&args, cmd->name, cmd->flags, &err) != 0) {
        outcome_fail(&out, "usage error", &err);
        cli_free(&args);
        return finish(&out);
    }

    sv_config cfg;
    struct config_load_options lo = {
        .file = args.config_file, .flags = args.options, .nflags = args.noptions};
    if (config_load(&cfg, &lo, &err) != 0) {
        outcome_fail(&out, err.code == SV_EXIT_USAGE ? "usage error" : "configuration error", &err);
        cli_free(&args);
        return finish(&out);
    }
    log_configure(cfg.log_format, cfg.log_level);
    log_set_termination_path(cfg.termination_log && *cfg.termination_log ? cfg.termination_log : NULL);
    for (size_t i = 0; i < cfg.warnings.n; i++)
        log_warn("%s", cfg.warnings.items[i]);

    cmd->run(&args, &cfg, &out);
    int code = finish(&out);
    config_free(&cfg);
    cli_free(&args);
    return code;
}
