/* sauve list: the sets of the series, newest first, from manifests only. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog/catalog.h"
#include "cli/commands.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/text.h"
#include "retention/prune.h"

static void human_age(time_t seconds, char *buf, size_t len)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds < 120)
        snprintf(buf, len, "%lds", (long)seconds);
    else if (seconds < 2 * 3600)
        snprintf(buf, len, "%ldm", (long)seconds / 60);
    else if (seconds < 2 * 86400)
        snprintf(buf, len, "%ldh", (long)seconds / 3600);
    else
        snprintf(buf, len, "%ldd", (long)seconds / 86400);
}

static json_t *retention_json(const retention_verdict *v)
{
    json_t *r = json_object();
    json_object_set_new(r, "keep", json_boolean(v->keep));
    json_t *reasons = json_array();
    for (size_t i = 0; i < v->n_reasons; i++)
        json_array_append_new(reasons, json_string(v->reasons[i]));
    json_object_set_new(r, "reasons", reasons);
    return r;
}

/* Every recipient the set's artifacts were encrypted to, each once, in the
 * order first met: what a user checks before destroying an identity. */
static size_t set_recipients(const manifest *m, const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_artifacts; i++)
        for (size_t j = 0; j < m->artifacts[i].n_recipients; j++) {
            const char *r = m->artifacts[i].recipients[j];
            size_t k = 0;
            while (k < n && strcmp(out[k], r) != 0)
                k++;
            if (k == n && n < cap)
                out[n++] = r;
        }
    return n;
}

#define MAX_LISTED_RECIPIENTS 64

static json_t *record_json(const set_record *r)
{
    json_t *o = json_object();
    char when[21];
    iso8601_format(r->finished, when);
    json_object_set_new(o, "finished", json_string(when));
    json_object_set_new(o, "ok", json_boolean(r->ok));
    if (r->restore_s >= 0)
        json_object_set_new(o, "restore_seconds", json_real(r->restore_s));
    json_object_set_new(o, "summary", json_string(r->summary ? r->summary : ""));
    return o;
}

/* "verified 2026-12-06, drill ok, restore 41 s": what the last checks of a
 * set found, newly allocated; NULL when it was never checked. */
static char *checks_text(const catalog_set *s)
{
    char v[64] = "", d[96] = "";
    if (s->verify_record) {
        char when[21];
        iso8601_format(s->verify_record->finished, when);
        snprintf(v, sizeof v, "%s %.10s", s->verify_record->ok ? "verified" : "verify FAILED", when);
    }
    if (s->drill_record) {
        char when[21];
        iso8601_format(s->drill_record->finished, when);
        snprintf(d, sizeof d, "drill %s %.10s, restore %.0f s", s->drill_record->ok ? "ok" : "FAILED", when,
                 s->drill_record->restore_s < 0 ? 0 : s->drill_record->restore_s);
    }
    if (!v[0] && !d[0])
        return NULL;
    return xasprintf("%s%s%s", v, v[0] && d[0] ? ", " : "", d);
}

static json_t *set_json(const catalog_set *s, const retention_verdict *v, time_t now)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(s->id));
    json_object_set_new(o, "status", json_string(prune_set_status(s)));
    time_t started = 0;
    set_id_parse(s->id, &started);
    char iso[21];
    iso8601_format(started, iso);
    json_object_set_new(o, "started_at", json_string(iso));
    json_object_set_new(o, "age_seconds", json_integer((json_int_t)(now - started)));
    json_object_set_new(o, "bytes", json_integer((json_int_t)s->stored_bytes));
    json_object_set_new(o, "objects", json_integer((json_int_t)s->n_objects));
    json_object_set_new(o, "retention", retention_json(v));
    if (!s->complete) {
        json_object_set_new(o, "problem", json_string(s->problem));
        return o;
    }
    if (s->damaged)
        json_object_set_new(o, "damage", json_string(s->damage));
    json_object_set_new(o, "reason", json_string(s->m.reason));
    if (s->m.note)
        json_object_set_new(o, "note", json_string(s->m.note));
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)manifest_bytes_in(&s->m)));
    json_t *arts = json_array();
    for (size_t i = 0; i < s->m.n_artifacts; i++) {
        const manifest_artifact *a = &s->m.artifacts[i];
        json_t *ja = json_object();
        json_object_set_new(ja, "kind", json_string(a->kind));
        json_object_set_new(ja, "name", json_string(a->name));
        if (a->mode) {
            json_object_set_new(ja, "mode", json_string(a->mode));
            json_object_set_new(ja, "point_in_time", json_boolean(strcmp(a->mode, "keys") != 0));
        }
        bool damaged = s->artifact_damaged && s->artifact_damaged[i];
        json_object_set_new(ja, "status", json_string(!a->ok ? "failed" : damaged ? "damaged" : "ok"));
        if (a->ok) {
            json_t *rs = json_array();
            for (size_t r = 0; r < a->n_recipients; r++)
                json_array_append_new(rs, json_string(a->recipients[r]));
            json_object_set_new(ja, "encrypted_to", rs);
            json_object_set_new(ja, "key", json_string(a->key));
            json_object_set_new(ja, "bytes_out", json_integer((json_int_t)a->bytes_out));
            json_object_set_new(ja, "bytes_in", json_integer((json_int_t)a->bytes_in));
            if (a->row_counts.present) {
                /* the manifest has them table by table; here, how many */
                json_t *rows = json_object();
                if (a->row_counts.skipped) {
                    json_object_set_new(rows, "skipped", json_string(a->row_counts.skipped));
                } else {
                    int64_t total = 0;
                    size_t not_exact = 0;
                    for (size_t t = 0; t < a->row_counts.n; t++) {
                        total +=
                            a->row_counts.tables[t].how == ROWS_UNKNOWN ? 0 : a->row_counts.tables[t].rows;
                        not_exact += a->row_counts.tables[t].how != ROWS_EXACT;
                    }
                    json_object_set_new(rows, "tables", json_integer((json_int_t)a->row_counts.n));
                    json_object_set_new(rows, "total", json_integer((json_int_t)total));
                    json_object_set_new(rows, "not_exact", json_integer((json_int_t)not_exact));
                }
                json_object_set_new(ja, "rows", rows);
            }
        } else {
            json_object_set_new(ja, "error", json_string(a->error));
        }
        json_array_append_new(arts, ja);
    }
    json_object_set_new(o, "artifacts", arts);
    const char *rcpt[MAX_LISTED_RECIPIENTS];
    size_t nr = set_recipients(&s->m, rcpt, MAX_LISTED_RECIPIENTS);
    json_t *rs = json_array();
    for (size_t i = 0; i < nr; i++)
        json_array_append_new(rs, json_string(rcpt[i]));
    json_object_set_new(o, "encrypted_to", rs);
    json_object_set_new(o, "verify", s->verify_record ? record_json(s->verify_record) : json_null());
    json_object_set_new(o, "drill", s->drill_record ? record_json(s->drill_record) : json_null());
    if (s->record_problem)
        json_object_set_new(o, "record_problem", json_string(s->record_problem));
    return o;
}

/* Prints text that came from storage (a manifest's names, errors and
 * reason, a problem quoting one) escaped: a forged manifest must not be
 * able to drive the terminal or print lines that look like sauve's. */
static void put_escaped(const char *s, const char *after)
{
    char *e = text_escape(s);
    fputs(e, stdout);
    fputs(after, stdout);
    free(e);
}

/* "kept: last (1 of 7), daily 2026-11-21" under the set's line. */
static void print_retention(const retention_verdict *v)
{
    printf("%27s%s: ", "", v->keep ? "kept" : "next prune deletes it");
    for (size_t i = 0; i < v->n_reasons; i++) {
        fputs(i ? ", " : "", stdout);
        put_escaped(v->reasons[i], ""); /* "newest good copy of postgres:NAME" names a manifest's source */
    }
    putchar('\n');
}

static void print_text(const sv_config *cfg, const char *url, const catalog *cat, const retention_plan *plan,
                       const char *policy, const char *tz, time_t now)
{
    printf("sets of '%s' in %s, newest first\n", cfg->name, url);
    printf("retention: %s (calendar periods in %s)\n\n",
           plan->empty_policy ? "no policy configured, every complete set is kept" : policy, tz);
    if (cat->n == 0) {
        printf("(none)\n");
        return;
    }
    printf("%-25s  %-10s  %10s  %5s  %-7s  %-6s  %s\n", "SET", "STATUS", "SIZE", "AGE", "REASON", "PRUNE",
           "SOURCES");
    for (size_t i = 0; i < cat->n; i++) {
        const catalog_set *s = &cat->sets[i];
        time_t started = 0;
        set_id_parse(s->id, &started);
        char size[32], age[16];
        log_human_bytes(s->stored_bytes, size, sizeof size);
        human_age(now - started, age, sizeof age);
        char *reason = text_escape(s->complete ? s->m.reason : "-");
        printf("%-25s  %-10s  %10s  %5s  %-7s  %-6s  ", s->id, prune_set_status(s), size, age, reason,
               plan->verdicts[i].keep ? "keep" : "delete");
        free(reason);
        if (!s->complete) {
            put_escaped(s->problem, "\n");
            print_retention(&plan->verdicts[i]);
            continue;
        }
        for (size_t j = 0; j < s->m.n_artifacts; j++) {
            const manifest_artifact *a = &s->m.artifacts[j];
            fputs(j ? ", " : "", stdout);
            put_escaped(a->kind, ":");
            put_escaped(a->name, "");
            fputs(!a->ok                                          ? " (FAILED)"
                  : s->artifact_damaged && s->artifact_damaged[j] ? " (DAMAGED)"
                                                                  : "",
                  stdout);
            /* a copy taken key by key is not a snapshot: say so where it is chosen */
            if (a->ok && a->mode && strcmp(a->mode, "keys") == 0)
                fputs(" (keys mode, NOT point-in-time)", stdout);
        }
        putchar('\n');
        for (size_t j = 0; j < s->m.n_artifacts; j++) {
            const manifest_artifact *a = &s->m.artifacts[j];
            if (a->ok)
                continue;
            printf("%27s", "");
            put_escaped(a->kind, ":");
            put_escaped(a->name, " failed: ");
            put_escaped(a->error, "\n");
        }
        const char *rcpt[MAX_LISTED_RECIPIENTS];
        size_t nr = set_recipients(&s->m, rcpt, MAX_LISTED_RECIPIENTS);
        if (nr) {
            printf("%27sencrypted to: ", "");
            for (size_t r = 0; r < nr; r++)
                put_escaped(rcpt[r], r + 1 < nr ? ", " : "\n");
        }
        char *checks = checks_text(s);
        if (checks) {
            printf("%27schecked: ", "");
            put_escaped(checks, "\n");
            free(checks);
        }
        if (s->record_problem) {
            printf("%27s", "");
            put_escaped(s->record_problem, "\n");
        }
        print_retention(&plan->verdicts[i]);
    }
}

void cmd_list(const struct cli_args *args, const sv_config *cfg, struct outcome *out)
{
    sv_error err = {0};
    storage *st = command_storage(cfg, "list failed", out);
    if (!st)
        return;
    catalog cat = {0};
    if (catalog_load(st, cfg->name, &cat, &err) != 0) {
        outcome_fail(out, "list failed", &err);
        storage_close(st);
        return;
    }
    catalog_load_records(st, &cat);
    time_t now = time(NULL);
    /* The plan the next prune would carry out, with the same inputs. */
    char tz[128], policy[256];
    prune_tz_setup(tz, sizeof tz);
    retention_policy pol = retention_policy_from_config(cfg);
    retention_policy_describe(&pol, policy, sizeof policy);
    retention_plan plan;
    prune_plan_catalog(&cat, &pol, now, NULL, &plan);
    if (args->json) {
        json_t *root = json_object();
        json_object_set_new(root, "name", json_string(cfg->name));
        json_object_set_new(root, "storage", json_string(storage_url(st)));
        json_t *sets = json_array();
        for (size_t i = 0; i < cat.n; i++)
            json_array_append_new(sets, set_json(&cat.sets[i], &plan.verdicts[i], now));
        json_object_set_new(root, "sets", sets);
        /* ASCII only: a manifest's text in a C1 control or a bidi override
         * reaches no terminal raw, even through cat or a pager */
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        puts(text);
        free(text);
        json_decref(root);
    } else {
        print_text(cfg, storage_url(st), &cat, &plan, policy, tz, now);
    }
    size_t complete = 0, damaged = 0;
    for (size_t i = 0; i < cat.n; i++) {
        complete += cat.sets[i].complete && !cat.sets[i].damaged;
        damaged += cat.sets[i].damaged;
    }
    char extra[64] = "";
    if (damaged)
        snprintf(extra, sizeof extra, ", %zu damaged (an object missing or of another size)", damaged);
    outcome_set(out, SV_EXIT_OK, "list ok: %zu set(s) of '%s', %zu complete%s", cat.n, cfg->name, complete,
                extra);
    retention_plan_free(&plan);
    catalog_free(&cat);
    storage_close(st);
}
