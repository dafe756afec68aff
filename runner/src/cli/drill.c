/* sauve drill [KIND:NAME ...]: a set restored into scratch targets and
 * compared (drill/), reported per source on stdout (text, or JSON with
 * --json), stored beside the set, and pushed to the alerting channels. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "common/mem.h"
#include "common/text.h"
#include "drill/drill.h"
#include "notify/notify.h"
#include "storage/storage.h"

static void print_text(const struct drill_report *r)
{
    printf("%s  %s\n", r->set_id, r->ok ? "drill ok" : "drill FAILED");
    for (size_t i = 0; i < r->n; i++) {
        const struct drill_source *d = &r->sources[i];
        /* names and messages come from a manifest or a server: escaped */
        char *src = text_escape(d->source), *detail = text_escape(d->detail);
        printf("  %-6s %-28s %s\n", d->ok ? "ok" : "FAILED", src, detail);
        free(src);
        free(detail);
    }
}

static void print_json(const struct drill_report *r)
{
    json_t *root = json_object();
    json_object_set_new(root, "set", json_string(r->set_id));
    json_object_set_new(root, "ok", json_boolean(r->ok));
    json_object_set_new(root, "restore_seconds", json_real(r->restore_s));
    json_t *arr = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const struct drill_source *d = &r->sources[i];
        json_t *o = json_object();
        json_object_set_new(o, "source", json_string(d->source));
        json_object_set_new(o, "ok", json_boolean(d->ok));
        json_object_set_new(o, "loaded", json_boolean(d->loaded));
        json_object_set_new(o, "restore_seconds", d->loaded ? json_real(d->restore_s) : json_null());
        json_object_set_new(o, "unit", d->unit ? json_string(d->unit) : json_null());
        json_object_set_new(o, "counted", json_integer((json_int_t)d->counted));
        json_object_set_new(o, "compared", json_integer((json_int_t)d->compared));
        json_object_set_new(o, "checks_run", json_integer((json_int_t)d->checks_run));
        json_object_set_new(o, "checks_failed", json_integer((json_int_t)d->checks_failed));
        json_object_set_new(o, "detail", json_string(d->detail ? d->detail : ""));
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "sources", arr);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    puts(text);
    free(text);
    json_decref(root);
}

static void summarize(const sv_config *cfg, const struct drill_report *r, struct outcome *out)
{
    if (r->ok) {
        size_t loaded = 0, checks = 0;
        for (size_t i = 0; i < r->n; i++) {
            loaded += r->sources[i].loaded;
            checks += r->sources[i].checks_run;
        }
        outcome_set(
            out, SV_EXIT_OK,
            "drill ok: set %s/%s, %zu source(s): %zu restored into scratch targets in %.1f s, %zu read "
            "whole; %zu check(s) held",
            cfg->name, r->set_id, r->n, loaded, r->restore_s, r->n - loaded, checks);
        if (r->checks_not_run)
            outcome_append(out, "; %zu check(s) not run: their database was not among the sources drilled",
                           r->checks_not_run);
        return;
    }
    size_t failed = 0;
    const struct drill_source *first = NULL;
    for (size_t i = 0; i < r->n; i++)
        if (!r->sources[i].ok) {
            failed++;
            if (!first)
                first = &r->sources[i];
        }
    outcome_set(out, r->code, "drill failed: set %s/%s, %zu of %zu source(s) did not hold; first: %s: %s",
                cfg->name, r->set_id, failed, r->n, first->source, first->detail);
}

/* The metrics and the webhook; a failed notification after a good drill
 * is exit 3, as after a good backup. */
static void notify_end(notifier *nt, const sv_config *cfg, const struct drill_report *r, bool whole,
                       struct outcome *out)
{
    if (out->code == SV_EXIT_USAGE) {
        /* a typo on the command line says nothing about the backups */
        notify_free(nt);
        return;
    }
    struct notify_source *srcs = xcalloc(r->n + 1, sizeof *srcs);
    for (size_t i = 0; i < r->n; i++)
        srcs[i] = (struct notify_source){.source = r->sources[i].source,
                                         .ok = r->sources[i].ok,
                                         .error = r->sources[i].ok ? NULL : r->sources[i].detail,
                                         .restore_s = r->sources[i].loaded ? r->sources[i].restore_s : -1};
    struct notify_run run = {.name = cfg->name,
                             .set_id = r->set_id[0] ? r->set_id : NULL,
                             .exit_code = out->code,
                             .backup_ok = r->ok && out->code == SV_EXIT_OK,
                             /* a drill of some sources proves those only: it
                              * does not stand for the set in the alert */
                             .some_sources = !whole,
                             .summary = out->summary,
                             .sources = srcs,
                             .n_sources = r->n,
                             .sets_total = -1};
    outcome_notify(out, nt, &run);
    free(srcs);
    notify_free(nt);
}

void cmd_drill(const struct cli_args *args, const sv_config *cfg, struct outcome *out)
{
    notifier *nt = notify_start(cfg, NOTIFY_DRILL);
    struct drill_report r = {0};
    storage *st = command_storage(cfg, "drill failed", out);
    if (st) {
        struct drill_request req = {.set = args->set, .specs = args->args, .n_specs = args->nargs};
        sv_error err = {0};
        if (drill_run(cfg, st, &req, &r, &err) != 0) {
            outcome_fail(out, err.code == SV_EXIT_USAGE ? "usage error" : "drill failed", &err);
        } else {
            if (args->json)
                print_json(&r);
            else
                print_text(&r);
            summarize(cfg, &r, out);
            drill_record(cfg, st, &r, out->summary);
            if (r.record_error)
                outcome_append(out, "; %s", r.record_error);
        }
    }
    notify_end(nt, cfg, &r, args->nargs == 0, out);
    drill_report_free(&r);
    storage_close(st);
}
