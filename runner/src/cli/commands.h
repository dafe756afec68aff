/*
 * The commands, thin: each takes the parsed command line and the resolved
 * configuration, calls the module that does the work (backup/, restore/,
 * retention/, catalog/, sources/) with the storage it opened, and reports:
 * data on stdout (text, or JSON with --json), and an outcome, the exit code
 * and the one-line summary that ends the run (main logs it and writes it to
 * the termination log). The modules log the rest to stderr; none of them
 * includes this header.
 */
#ifndef SAUVE_CLI_COMMANDS_H
#define SAUVE_CLI_COMMANDS_H

#include "cli/cli.h"
#include "common/error.h"
#include "config/config.h"

struct outcome {
    int code;
    char summary[2048];
};

/* Sets the outcome from an error: "WHAT: message (hint: ...)". */
void outcome_fail(struct outcome *out, const char *what, const sv_error *err);
/* Sets the outcome. The summary is formatted whole, masked, then cut to
 * fit (log_mask_into): a secret never survives a cut in part. */
void outcome_set(struct outcome *out, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Appends to the summary ("; prune failed: ..."), masked then cut the same way. */
void outcome_append(struct outcome *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports run on the notification channels (notify_finish). A failed
 * notification is named in the summary and turns exit 0 into 3; any other
 * code is kept, so that a failure is never hidden by a good notification. */
struct notifier;
struct notify_run;
void outcome_notify(struct outcome *out, struct notifier *nt, const struct notify_run *run);

/* Opens the configured storage for a command; on failure sets the outcome
 * ("WHAT: storage is not set ...") and returns NULL. */
struct storage;
struct storage *command_storage(const sv_config *cfg, const char *what, struct outcome *out);

void cmd_backup(const struct cli_args *args, const sv_config *cfg, struct outcome *out);
void cmd_restore(const struct cli_args *args, const sv_config *cfg, struct outcome *out);
void cmd_list(const struct cli_args *args, const sv_config *cfg, struct outcome *out);
void cmd_check(const struct cli_args *args, const sv_config *cfg, struct outcome *out);
void cmd_prune(const struct cli_args *args, const sv_config *cfg, struct outcome *out);
void cmd_verify(const struct cli_args *args, const sv_config *cfg, struct outcome *out);
void cmd_drill(const struct cli_args *args, const sv_config *cfg, struct outcome *out);

/*
 * sauve version [--json] (and --version): prints sauve's version, the
 * PostgreSQL client tools found in pg.bindir, the libraries linked in and
 * the Debian sources the image was built from (cli/version.h). It loads the
 * configuration itself, and one that does not load is said in one line on
 * stderr and the default pg.bindir searched. Returns 0 once it has printed
 * (sauve exits 0, with no summary line: stdout is the answer, and the
 * termination log is for Jobs), or -1 with a usage error in out.
 */
int cmd_version(const struct cli_args *args, struct outcome *out);

#endif
