/*
 * Notifications at the end of a run, so that a failed backup cannot go
 * unnoticed. Three independent channels, each optional:
 *
 *   pushgateway  (pushgateway_url)  Prometheus metrics of every run, success or not;
 *   webhook      (notify.url)       a JSON POST on failure (or always), Slack/Mattermost/Discord
 *                                   compatible through its "text" and "content" fields;
 *   healthcheck  (healthcheck_url)  healthchecks.io dead man's switch: URL/start when the run
 *                                   starts, URL on success, URL/fail with the summary otherwise.
 *
 * Every call has a connect and a total timeout (notify.timeout), TLS is
 * verified, and a call is made at most twice (once more only after a refused
 * connection, a reset, a 5xx or a 429; never after a timeout, so that a hung
 * receiver costs one timeout, nor after a stop request). All the calls of a
 * run share a time budget of 2 x notify.timeout + 5 s (25 s by default, within
 * Kubernetes' 30 s termination grace): the last call gets what is left, and
 * calls once it is spent are skipped, each with a warning, and count as
 * failed. A failed notification is logged as a warning that names only the
 * receiver's scheme://host[:port] and the HTTP status, never the answer's
 * body (a receiver may echo the path): the URLs are secrets (Slack webhook
 * tokens, healthcheck UUIDs), registered with log_add_secret, and so are
 * their path+query and path. Every text sent out has the registered secrets
 * masked (log_mask).
 *
 * Notifying never changes what the backup did; the caller turns a
 * notification failure into exit code 3 only when the run was otherwise 0.
 */
#ifndef SAUVE_NOTIFY_NOTIFY_H
#define SAUVE_NOTIFY_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* One source (artifact) of the run. */
struct notify_source {
    const char *source; /* "postgres:app"; "postgres" when it failed before its artifacts were known */
    bool ok;
    uint64_t bytes_stored; /* as stored (compressed); 0 when failed */
    const char *error;     /* NULL when ok */
    double restore_s;      /* drill: how long its restore took; < 0 when it was not restored */
};

/*
 * Which command ran. A backup reports to job "sauve" of the Pushgateway and
 * pings the healthcheck; a drill and a verify report to their own jobs,
 * "sauve-drill" and "sauve-verify", so that a backup's PUT never erases
 * what they pushed, and never ping the healthcheck, which watches backups.
 */
enum notify_command { NOTIFY_BACKUP, NOTIFY_DRILL, NOTIFY_VERIFY };

/* What the run did, as the channels report it. */
struct notify_run {
    enum notify_command command;
    const char *name;   /* the series (SAUVE_NAME) */
    const char *set_id; /* the set this run committed (drill, verify: checked), or NULL */
    int exit_code;      /* the run's exit code before notifications */
    /* backup: every source stored and the set committed, a success for the
     * 26 h alert; drill, verify: everything checked held */
    bool backup_ok;
    /* drill: only some of the set's sources were drilled, so a success
     * does not stand for the set: no success timestamp, and a POST that
     * keeps the last one */
    bool some_sources;
    const char *summary; /* the run's one-line summary */
    const struct notify_source *sources;
    size_t n_sources;
    uint64_t bytes_stored; /* total as stored */
    long sets_total;       /* complete sets of the series after the run; < 0 when not known */
    /* Filled by notify_finish when zero/NULL; set by unit tests. */
    double duration_s;
    double finished; /* Unix time, with fractions */
    const char *hostname;
};

typedef struct notifier notifier;

/*
 * Starts notifications for one run of `backup`: remembers the settings and
 * the start time, and pings healthcheck_url/start when set. Never fails: a
 * failed ping or an invalid URL is logged and counted by notify_finish.
 * Returns a notifier (never NULL) even when nothing is configured.
 */
notifier *notify_start(const sv_config *cfg, enum notify_command command);

/*
 * Reports the end of the run on every configured channel, in this order:
 * healthcheck, webhook, pushgateway (last, so that sauve_run_status includes
 * a failure of the other two). Returns the number of failed notifications,
 * including a failed start ping; `failed` receives their names and hosts,
 * e.g. "webhook (https://hooks.slack.com)", or "" when none failed.
 */
int notify_finish(notifier *n, const struct notify_run *run, char *failed, size_t failed_len);

void notify_free(notifier *n);

/* ---- rendering, exposed for unit tests ------------------------------------ */

/* "ok" when backup_ok, else "partial" when a set was committed, else "failed". */
const char *notify_status(const struct notify_run *run);

/*
 * The Prometheus text exposition format (version 0.0.4) of the run, with
 * # HELP and # TYPE lines. A backup: sauve_last_success_timestamp_seconds
 * only when run->backup_ok, sauve_source_bytes only when a set was
 * committed, sauve_sets_total only when known. A drill (a verify alike,
 * with verify for drill): sauve_last_drill_timestamp_seconds,
 * sauve_last_drill_success (1 or 0), sauve_drill_status (the exit code),
 * sauve_last_drill_success_timestamp_seconds only when it held, and
 * sauve_restore_duration_seconds of each source restored. Newly allocated.
 */
char *notify_metrics_text(const struct notify_run *run);

/* A label value escaped for the exposition format (\\, \", \n) into a newly allocated string. */
char *notify_escape_label(const char *value);

/*
 * BASE/metrics/job/JOB/name/NAME with each value path-escaped, or in the
 * LABEL@base64/VALUE form (URL-safe base64) when it contains '/' or is
 * empty, as the Pushgateway requires. A trailing '/' of base is dropped.
 * Newly allocated.
 */
char *notify_pushgateway_url(const char *base, const char *job, const char *name);

/* The webhook's JSON body (compact), with "text" (escaped for Slack) and
 * "content" (Discord, unescaped) set to one line an operator understands.
 * Every string has the registered secrets masked (log_mask). Newly allocated. */
char *notify_webhook_json(const struct notify_run *run);

/* s with & < > as &amp; &lt; &gt;, Slack's escaping, so that text cannot
 * mention (<!channel>) or link. Newly allocated. */
char *notify_slack_escape(const char *s);

/* The one line of "text": ":x: sauve backup of NAME failed on HOST (exit 75): ..."
 * (or "sauve drill of", "sauve verify of"),
 * at most 2000 characters (Discord's limit), registered secrets masked,
 * unescaped. Newly allocated. */
char *notify_webhook_text(const struct notify_run *run);

/* URL with "/" + suffix inserted before any query string ("" suffix: URL
 * unchanged). Newly allocated. */
char *notify_url_with_suffix(const char *url, const char *suffix);

/* "scheme://host[:port]" of url, nothing else (no user, path or query), for
 * logs; "(invalid URL)" when it cannot be parsed. Newly allocated. */
char *notify_url_origin(const char *url);

#endif
