/* sauve backup: one backup set of every configured source (backup/), then
 * the prune of the series (retention/) and the notifications (notify/);
 * prints the result with --json. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/backup.h"
#include "catalog/catalog.h"
#include "cli/commands.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "notify/notify.h"
#include "retention/prune.h"
#include "storage/storage.h"
#include "verify/verify.h"

/*
 * The prune of `sauve backup`, after set_id was committed (never after a
 * failed backup): logs the plan, deletes, and adds the result to the run's
 * outcome. A failure is appended to the summary ("; prune failed: ...") and
 * turns exit 0 into 3; a partial backup keeps its 2, the more urgent news.
 * Returns the complete sets left in the series (the run's own catalog,
 * so that metrics need no second listing), or -1 when prune failed.
 */
static long prune_after_backup(const sv_config *cfg, storage *st, const char *set_id, struct outcome *out)
{
    struct prune_options o = {.pinned_id = set_id};
    struct prune_result res;
    sv_error err = {0};
    if (prune_run(cfg, st, &o, &res, &err) != 0) {
        log_error("prune after the backup failed: %s", err.msg);
        if (out->code == SV_EXIT_OK)
            out->code = SV_EXIT_PRUNE;
        if (err.hint[0])
            outcome_append(out, "; prune failed: %s (hint: %s)", err.msg, err.hint);
        else
            outcome_append(out, "; prune failed: %s", err.msg);
        return -1;
    }
    log_with(LOG_INFO,
             LOG_FIELDS(LOG_NUM("sets_deleted", res.sets_deleted), LOG_NUM("sets_kept", res.sets_kept),
                        LOG_NUM("uploads_removed", res.uploads_removed)),
             "prune ok: %zu set(s) deleted, %zu kept, %zu interrupted write(s) removed", res.sets_deleted,
             res.sets_kept, res.uploads_removed);
    outcome_append(out, "; pruned %zu set(s), %zu kept", res.sets_deleted, res.sets_kept);
    return (long)res.complete_sets;
}

/*
 * SAUVE_VERIFY=after-backup: the set just committed, read back from
 * storage. A set that does not verify is the worst news a run can carry
 * (it exists, and looks good to list and prune): exit 4 over 0, 2 and 3.
 */
static void verify_after_backup(const sv_config *cfg, storage *st, const char *set_id, struct outcome *out)
{
    struct verify_report r = {0};
    sv_error err = {0};
    if (verify_run(cfg, st, set_id, &r, &err) != 0) {
        log_error("verify after the backup failed: %s", err.msg);
        out->code = SV_EXIT_VERIFY;
        outcome_append(out, "; verify failed: %s", err.msg);
    } else if (!r.ok) {
        out->code = SV_EXIT_VERIFY;
        for (size_t j = 0; j < r.sets[0].n; j++)
            if (!r.sets[0].artifacts[j].ok) {
                outcome_append(out, "; VERIFY FAILED: %s: %s", r.sets[0].artifacts[j].source,
                               r.sets[0].artifacts[j].detail);
                break;
            }
    } else {
        outcome_append(out, "; verified (%zu read whole, %zu for integrity only)", r.content_checked,
                       r.artifacts_checked - r.content_checked);
    }
    if (r.n)
        verify_record(cfg, st, &r);
    verify_report_free(&r);
}

/* Complete sets of the series, for sauve_sets_total; -1 when storage fails. */
static long count_complete_sets(storage *st, const char *name)
{
    catalog c;
    sv_error err = {0};
    if (catalog_load(st, name, &c, &err) != 0)
        return -1;
    long n = 0;
    for (size_t i = 0; i < c.n; i++)
        n += c.sets[i].complete;
    catalog_free(&c);
    return n;
}

/* Reports the run on the notification channels. A failed notification is
 * named in the summary and turns exit 0 into 3; any other code is kept, so
 * that a failed or partial backup is never hidden. */
static void notify_end(notifier *nt, const sv_config *cfg, storage *st, const struct backup_result *res,
                       long sets_total, bool backup_ok, struct outcome *out)
{
    struct notify_source *srcs = xcalloc(res->n_artifacts + 1, sizeof *srcs);
    for (size_t i = 0; i < res->n_artifacts; i++)
        srcs[i] = (struct notify_source){.source = res->artifacts[i].source,
                                         .ok = res->artifacts[i].ok,
                                         .bytes_stored = res->artifacts[i].bytes_out,
                                         .error = res->artifacts[i].error};
    struct notify_run run = {.name = cfg->name,
                             .set_id = res->committed ? res->set_id : NULL,
                             .exit_code = out->code,
                             .backup_ok = backup_ok,
                             .summary = out->summary,
                             .sources = srcs,
                             .n_sources = res->n_artifacts,
                             .bytes_stored = res->bytes_out,
                             /* counted by prune when it ran; else listed here, only for the push */
                             .sets_total = sets_total >= 0 ? sets_total
                                           : st && res->committed && cfg->pushgateway_url
                                               ? count_complete_sets(st, cfg->name)
                                               : -1};
    outcome_notify(out, nt, &run);
    free(srcs);
    notify_free(nt);
}

void cmd_backup(const struct cli_args *args, const sv_config *cfg, struct outcome *out)
{
    sv_error err = {0};
    notifier *nt = notify_start(cfg, NOTIFY_BACKUP);
    struct backup_result res = {0};
    storage *st = command_storage(cfg, "backup failed", out);
    if (!st) {
        notify_end(nt, cfg, NULL, &res, -1, false, out);
        return;
    }
    struct backup_request req = {.reason = "backup"};
    int code = backup_run(cfg, st, &req, &res, &err);
    char in[32], stored[32];
    log_human_bytes(res.bytes_in, in, sizeof in);
    log_human_bytes(res.bytes_out, stored, sizeof stored);
    if (code == SV_EXIT_OK) {
        outcome_set(out, code,
                    "backup ok: set %s/%s, %zu artifact(s), %s stored (%s before compression), %.1f s",
                    cfg->name, res.set_id, res.n_ok, stored, in, res.seconds);
    } else if (code == SV_EXIT_PARTIAL) {
        outcome_set(out, code, "backup partial: set %s/%s committed with %zu of %zu artifact(s); failed: %s",
                    cfg->name, res.set_id, res.n_ok, res.n_ok + res.n_failed, res.failed);
    } else {
        outcome_fail(out, signals_stop_requested() ? "backup interrupted" : "backup failed", &err);
    }
    if (res.committed && strcmp(cfg->verify, "after-backup") == 0)
        verify_after_backup(cfg, st, res.set_id, out);
    /* Retention runs only once this run committed a set: never after a
     * failed backup, nor after one that does not verify (it would count as
     * the newest copy and let older good ones go). */
    long sets_total = -1;
    if (res.committed && cfg->prune && out->code == SV_EXIT_VERIFY) {
        log_warn(
            "prune skipped: set %s/%s does not verify, and must not stand in for the sets it would let go",
            cfg->name, res.set_id);
        outcome_append(out, "; prune skipped");
    } else if (res.committed && cfg->prune) {
        sets_total = prune_after_backup(cfg, st, res.set_id, out);
    }
    /* Last, after anything that changes the outcome (prune): the channels
     * report the run's final exit code and summary. */
    notify_end(nt, cfg, st, &res, sets_total, code == SV_EXIT_OK, out);
    if (args->json) {
        json_t *o = json_object();
        json_object_set_new(o, "status", json_string(code == 0 ? "ok" : code == 2 ? "partial" : "failed"));
        json_object_set_new(o, "exit_code", json_integer(out->code));
        json_object_set_new(o, "set", res.committed ? json_string(res.set_id) : json_null());
        json_object_set_new(o, "artifacts_ok", json_integer((json_int_t)res.n_ok));
        json_object_set_new(o, "artifacts_failed", json_integer((json_int_t)res.n_failed));
        json_object_set_new(o, "bytes_in", json_integer((json_int_t)res.bytes_in));
        json_object_set_new(o, "bytes_out", json_integer((json_int_t)res.bytes_out));
        json_object_set_new(o, "seconds", json_real(res.seconds));
        char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        puts(text);
        free(text);
        json_decref(o);
    }
    backup_result_free(&res);
    storage_close(st);
}
