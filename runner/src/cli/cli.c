#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

enum flag_kind { FLAG_BOOL, FLAG_VALUE };

struct command_flag {
    const char *name;
    enum flag_kind kind;
    size_t offset; /* into struct cli_args: bool or const char * */
    unsigned bit;  /* enum cli_flag, 0 for flags every command takes */
};

#define BOOL_FLAG(n, field, b)                                                                               \
    {                                                                                                        \
        n, FLAG_BOOL, offsetof(struct cli_args, field), b                                                    \
    }
#define VALUE_FLAG(n, field, b)                                                                              \
    {                                                                                                        \
        n, FLAG_VALUE, offsetof(struct cli_args, field), b                                                   \
    }

static const struct command_flag command_flags[] = {
    BOOL_FLAG("json", json, CLI_JSON),
    BOOL_FLAG("yes", yes, CLI_YES),
    BOOL_FLAG("dry-run", dry_run, CLI_DRY_RUN),
    BOOL_FLAG("clean", clean, CLI_CLEAN),
    BOOL_FLAG("no-safety-backup", no_safety_backup, CLI_NO_SAFETY_BACKUP),
    BOOL_FLAG("no-owner", no_owner, CLI_NO_OWNER),
    BOOL_FLAG("online", online, CLI_ONLINE),
    BOOL_FLAG("help", help, 0),
    BOOL_FLAG("version", version, 0),
    VALUE_FLAG("set", set, CLI_SET),
    VALUE_FLAG("into", into, CLI_INTO),
    VALUE_FLAG("to-file", to_file, CLI_TO_FILE),
    VALUE_FLAG("to", to, CLI_TO),
    VALUE_FLAG("confirm", confirm, CLI_CONFIRM),
    VALUE_FLAG("config", config_file, 0),
};

static const struct command_flag *find_command_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof command_flags / sizeof *command_flags; i++)
        if (strlen(command_flags[i].name) == len && strncmp(command_flags[i].name, name, len) == 0)
            return &command_flags[i];
    return NULL;
}

static bool is_bool_option(const char *name)
{
    size_t n;
    const struct opt_def *opts = config_options(&n);
    for (size_t i = 0; i < n; i++)
        if (opts[i].type == OPT_TYPE_BOOL && opts[i].flag && strcmp(opts[i].flag + 2, name) == 0)
            return true;
    return false;
}

int cli_parse(int argc, char **argv, struct cli_args *args, sv_error *err)
{
    memset(args, 0, sizeof *args);
    args->options = xcalloc((size_t)argc, sizeof *args->options);
    bool only_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_positional && strcmp(a, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (!only_positional && (strcmp(a, "-h") == 0)) {
            args->help = true;
            continue;
        }
        if (!only_positional && strncmp(a, "--", 2) == 0) {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
            const struct command_flag *f = find_command_flag(name, nlen);
            if (f && f->kind == FLAG_BOOL) {
                if (eq)
                    return sv_error_set(err, SV_EXIT_USAGE, "flag --%.*s takes no value", (int)nlen, name);
                *(bool *)((char *)args + f->offset) = true;
                args->given |= f->bit;
                continue;
            }
            const char *value = NULL;
            if (eq) {
                value = eq + 1;
            } else if (!f && is_bool_option(name)) {
                /* --pg-globals alone means true; it must not swallow the next word */
                value = "true";
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return sv_error_set(err, SV_EXIT_USAGE, "flag --%.*s needs a value", (int)nlen, name);
            }
            if (f) {
                *(const char **)((char *)args + f->offset) = value;
                args->given |= f->bit;
            } else {
                struct config_flag *o = &args->options[args->noptions++];
                o->name = xstrndup(name, nlen);
                o->value = value;
            }
            continue;
        }
        if (!only_positional && a[0] == '-' && a[1] != '\0') {
            sv_error_set(err, SV_EXIT_USAGE, "unknown flag %s", a);
            return sv_error_hint(err, "flags are long options such as --json; see `sauve help`");
        }
        if (!args->command) {
            args->command = a;
        } else if (args->nargs < CLI_MAX_ARGS) {
            args->args[args->nargs++] = a;
        } else {
            return sv_error_set(err, SV_EXIT_USAGE, "too many arguments");
        }
    }
    return 0;
}

int cli_check_flags(const struct cli_args *args, const char *command, unsigned allowed, sv_error *err)
{
    for (size_t i = 0; i < sizeof command_flags / sizeof *command_flags; i++) {
        const struct command_flag *f = &command_flags[i];
        if (f->bit && (args->given & f->bit) && !(allowed & f->bit)) {
            sv_error_set(err, SV_EXIT_USAGE, "%s does not take --%s", command, f->name);
            return sv_error_hint(err, "see `sauve help` for the flags of each command");
        }
    }
    return 0;
}

void cli_free(struct cli_args *args)
{
    for (size_t i = 0; i < args->noptions; i++)
        free((char *)args->options[i].name);
    free(args->options);
    memset(args, 0, sizeof *args);
}

void cli_print_help(void)
{
    fputs("sauve " SAUVE_VERSION " - backups of PostgreSQL to object storage, for Kubernetes\n"
          "\n"
          "usage: sauve COMMAND [flags]\n"
          "\n"
          "commands:\n"
          "  backup            back up every configured source as one backup set, then prune\n"
          "                      (unless SAUVE_PRUNE=false)\n"
          "  restore SOURCE    restore one source of a set: postgres:DB, postgres:globals, redis:NAME or\n"
          "                      files:NAME\n"
          "                      --set ID|latest     which set (default latest complete)\n"
          "                      --into NAME         target database (default: the source's name); with\n"
          "                                          --online, a redis:// URL without password (default:\n"
          "                                          SAUVE_REDIS_URL)\n"
          "                      --to-file PATH      redis: write the RDB file of a stopped server\n"
          "                      --online            redis: replay into a running server (RESTORE)\n"
          "                      --to DIR            files: the directory restored into (default: the "
          "tree's path in SAUVE_FILES)\n"
          "                      --clean             replace a non-empty target (a safety backup is taken "
          "first)\n"
          "                      --no-safety-backup  with --clean, skip the safety backup\n"
          "                      --no-owner          do not restore object ownership\n"
          "                      --yes               do not ask for confirmation (required when not on a "
          "terminal)\n"
          "                      --confirm TARGET    the target named again: what --clean needs when not\n"
          "                                          on a terminal (--yes is not enough to replace data)\n"
          "  list              backup sets, newest first, with status, size, age and why each is kept\n"
          "  verify            read sets back from storage and check them: size, SHA-256, and (when it can\n"
          "                      open them) the content, decrypted, decompressed and read whole\n"
          "                      --set ID|latest|all which set(s) (default latest)\n"
          "  drill [KIND:NAME ...]  restore a set into scratch targets (a new database on the drill's\n"
          "                      PostgreSQL server, files under SAUVE_DRILL_DIR), compare row, key and\n"
          "                      entry counts with the manifest, run drill.checks, remove the scratch\n"
          "                      copies, and store the result beside the set (exit 4 if it did not hold)\n"
          "                      --set ID|latest     which set (default latest)\n"
          "  prune             apply the retention policy (SAUVE_KEEP_*): print the plan, then delete\n"
          "                      --dry-run           print the plan, delete nothing\n"
          "  check             validate the configuration, reach every source and the storage, name the\n"
          "                      pg_dump it would use and why; change nothing\n"
          "  version           print the version, the PostgreSQL client tools found in SAUVE_PG_BINDIR,\n"
          "                      the libraries linked in, and the Debian sources of the image\n"
          "  help              this text\n"
          "\n"
          "common flags:\n"
          "  --json            machine-readable output on stdout\n"
          "  --config FILE     YAML configuration file (default $SAUVE_CONFIG or /etc/sauve/config.yaml)\n"
          "\n"
          "settings (flag > environment > config file > default):\n",
          stdout);
    size_t n;
    const struct opt_def *opts = config_options(&n);
    for (size_t i = 0; i < n; i++) {
        const struct opt_def *o = &opts[i];
        printf("  %-22s %-20s %s", o->env, o->flag ? o->flag : "(secret: no flag)", o->help);
        if (o->def)
            printf(" [default: %s]", o->def);
        if (o->type == OPT_TYPE_SECRET)
            printf(" (also %s_FILE)", o->env);
        putchar('\n');
    }
    fputs("\nexit codes: 0 ok, 1 failed, 2 partial, 3 committed but prune/notify failed,\n"
          "            64 usage, 75 temporary (unreachable), 78 configuration\n",
          stdout);
}
