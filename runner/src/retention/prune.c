#include "retention/prune.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "common/text.h"

/* How many undeleted keys the log names one by one before "and N more". */
#define NAME_MAX_KEYS 5

retention_policy retention_policy_from_config(const sv_config *cfg)
{
    retention_policy p = retention_policy_empty();
#define RULE(field) p.field = cfg->origin[OPT_ID_##field] == ORIGIN_UNSET ? RETENTION_OFF : cfg->field
    RULE(keep_last);
    RULE(keep_hourly);
    RULE(keep_daily);
    RULE(keep_weekly);
    RULE(keep_monthly);
    RULE(keep_yearly);
    RULE(keep_within);
#undef RULE
    if (cfg->origin[OPT_ID_prune_grace] != ORIGIN_UNSET) {
        p.grace = cfg->prune_grace;
        /* allowed, for tests and for sites with short backups, but an
         * upload younger than the grace period may belong to a running job */
        if (p.grace < 3600)
            log_warn(
                "SAUVE_PRUNE_GRACE is under an hour: incomplete sets and uploads of a backup still running "
                "elsewhere could be removed");
    }
    return p;
}

const char *retention_policy_describe(const retention_policy *p, char *buf, size_t len)
{
    const struct {
        const char *name;
        long n;
    } rules[] = {{"last", p->keep_last},     {"hourly", p->keep_hourly},   {"daily", p->keep_daily},
                 {"weekly", p->keep_weekly}, {"monthly", p->keep_monthly}, {"yearly", p->keep_yearly}};
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof rules / sizeof *rules && o < len; i++)
        if (rules[i].n >= 0)
            o += (size_t)snprintf(buf + o, len - o, "%s%s %ld", o ? ", " : "", rules[i].name, rules[i].n);
    if (p->keep_within >= 0 && o < len) {
        char d[32];
        o += (size_t)snprintf(buf + o, len - o, "%swithin %s", o ? ", " : "",
                              config_format_duration(p->keep_within, d, sizeof d));
    }
    if (o == 0)
        snprintf(buf, len, "none");
    return buf;
}

void prune_tz_setup(char *name, size_t len)
{
    if (retention_tz_init(name, len) != 0)
        log_with(LOG_WARN, LOG_FIELDS(LOG_STR("TZ", name)),
                 "TZ=%s names no time zone known here (no zone file): calendar periods are computed in UTC; "
                 "set TZ to a zone such as Europe/Paris, or install the time zone database",
                 name);
}

const char *prune_set_status(const catalog_set *s)
{
    if (s->damaged)
        return "damaged";
    if (s->complete)
        return s->m.status == SET_OK ? "ok" : "partial";
    return s->newer_format ? "newer format" : s->unreadable ? "unreadable" : "incomplete";
}

static bool is_safety(const catalog_set *s)
{
    return s->complete && s->m.reason && strcmp(s->m.reason, "safety") == 0;
}

/* The newest complete set (not dated in the future) holding a good copy of
 * each source, "kind:name". */
struct source_best {
    char *source;
    size_t set; /* index into the catalog */
};

static void newest_good_copies(const catalog *cat, const retention_set *sets, time_t now,
                               struct source_best **out, size_t *n_out)
{
    struct source_best *best = NULL;
    size_t nb = 0;
    for (size_t i = 0; i < cat->n; i++) {
        const catalog_set *s = &cat->sets[i];
        if (!s->complete || s->damaged || retention_set_in_future(&sets[i], now))
            continue;
        for (size_t a = 0; a < s->m.n_artifacts; a++) {
            const manifest_artifact *art = &s->m.artifacts[a];
            if (!art->ok || !art->kind || !art->name)
                continue;
            char *src = xasprintf("%s:%s", art->kind, art->name);
            size_t k = 0;
            while (k < nb && strcmp(best[k].source, src) != 0)
                k++;
            if (k == nb) {
                best = xrealloc(best, (nb + 1) * sizeof *best);
                best[nb++] = (struct source_best){src, i};
                continue;
            }
            free(src);
            const retention_set *cur = &sets[best[k].set];
            if (sets[i].time > cur->time || (sets[i].time == cur->time && strcmp(sets[i].id, cur->id) > 0))
                best[k].set = i;
        }
    }
    *out = best;
    *n_out = nb;
}

void prune_plan_catalog(const catalog *cat, const retention_policy *p, time_t now, const char *pinned_id,
                        retention_plan *plan)
{
    retention_set *sets = xcalloc(cat->n ? cat->n : 1, sizeof *sets);
    for (size_t i = 0; i < cat->n; i++) {
        const catalog_set *s = &cat->sets[i];
        time_t t = 0;
        set_id_parse(s->id, &t); /* the catalog holds only valid ids */
        sets[i] = (retention_set){
            .id = s->id,
            .time = t,
            .last_activity = (time_t)s->last_modified,
            .state = s->damaged        ? RETENTION_DAMAGED
                     : s->complete     ? RETENTION_COMPLETE
                     : s->newer_format ? RETENTION_NEWER_FORMAT
                     : s->unreadable   ? RETENTION_UNREADABLE
                                       : RETENTION_INCOMPLETE,
            .safety = is_safety(s),
            .damage = s->damage,
            .pinned = pinned_id && strcmp(s->id, pinned_id) == 0 ? "committed by this run" : NULL,
        };
        if (retention_set_in_future(&sets[i], now))
            log_with(
                LOG_WARN, LOG_FIELDS(LOG_STR("set", s->id)),
                "set %s/%s is dated more than an hour after now (a writer's clock is wrong?): it is kept, "
                "and counted by no retention rule until then",
                cat->name, s->id);
    }

    struct source_best *best;
    size_t nbest;
    newest_good_copies(cat, sets, now, &best, &nbest);
    const char **names = xcalloc(nbest ? nbest : 1, sizeof *names);
    for (size_t i = 0; i < cat->n; i++) {
        size_t from = 0;
        for (size_t k = 0; k < nbest; k++)
            if (best[k].set == i)
                names[from++] = best[k].source;
        if (from == 0)
            continue;
        const char **mine = xcalloc(from, sizeof *mine);
        memcpy(mine, names, from * sizeof *mine);
        sets[i].newest_good_of = mine;
        sets[i].n_newest_good_of = from;
    }
    free(names);

    retention_plan_make(sets, cat->n, p, now, plan);
    for (size_t i = 0; i < cat->n; i++)
        free((void *)sets[i].newest_good_of);
    for (size_t k = 0; k < nbest; k++)
        free(best[k].source);
    free(best);
    free(sets);
}

/* ---- the plan, for people and machines -------------------------------- */

/* The reasons of a verdict joined with ", ", plus what the operator needs to
 * know about the set itself (a safety copy; why it is incomplete). */
static char *why(const catalog_set *s, const retention_verdict *v)
{
    size_t len = 1;
    for (size_t j = 0; j < v->n_reasons; j++)
        len += strlen(v->reasons[j]) + 2;
    if (is_safety(s))
        len += 64 + (s->m.note ? strlen(s->m.note) : 0);
    if (!s->complete && s->problem)
        len += strlen(s->problem) + 2;
    char *out = xmalloc(len);
    size_t o = 0;
    for (size_t j = 0; j < v->n_reasons; j++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", j ? ", " : "", v->reasons[j]);
    if (!s->complete && s->problem)
        o += (size_t)snprintf(out + o, len - o, ": %s", s->problem);
    if (is_safety(s))
        snprintf(out + o, len - o, " [safety copy%s%s]", s->m.note ? ": " : "", s->m.note ? s->m.note : "");
    return out;
}

static void print_plan_text(const sv_config *cfg, storage *st, const catalog *cat, const retention_plan *plan,
                            const char *policy, const char *tz, const char *grace, bool dry_run)
{
    printf("prune plan for series '%s' in %s%s\n", cfg->name, storage_url(st), dry_run ? " (dry run)" : "");
    if (plan->empty_policy)
        printf("policy: none configured (SAUVE_KEEP_* unset): every complete set is kept\n");
    else
        printf("policy: %s\n", policy);
    printf("calendar periods in %s; incomplete sets are kept for %s (SAUVE_PRUNE_GRACE)\n\n", tz, grace);
    if (cat->n == 0) {
        printf("(no sets)\n");
        return;
    }
    printf("%-25s  %-6s  %-10s  %s\n", "SET", "ACTION", "STATUS", "WHY");
    for (size_t i = 0; i < cat->n; i++) {
        const catalog_set *s = &cat->sets[i];
        /* why quotes the manifest (a safety copy's note, a problem, source
         * names): escaped, so that a forged manifest cannot drive the terminal */
        char *w = why(s, &plan->verdicts[i]);
        char *shown = text_escape(w);
        printf("%-25s  %-6s  %-10s  %s\n", s->id, plan->verdicts[i].keep ? "keep" : "delete",
               prune_set_status(s), shown);
        free(shown);
        free(w);
    }
}

/* Whoever runs prune (the nightly backup included) hears of a damaged set. */
static void warn_damaged(const catalog *cat)
{
    for (size_t i = 0; i < cat->n; i++) {
        const catalog_set *s = &cat->sets[i];
        if (s->damaged)
            log_with(
                LOG_WARN, LOG_FIELDS(LOG_STR("set", s->id), LOG_STR("damage", s->damage)),
                "set %s/%s is damaged: %s; it is kept but no longer counts as a copy (find what removed or "
                "changed the object: a lifecycle rule, an operator?)",
                cat->name, s->id, s->damage);
    }
}

static void log_plan(const catalog *cat, const retention_plan *plan)
{
    for (size_t i = 0; i < cat->n; i++) {
        const catalog_set *s = &cat->sets[i];
        char *w = why(s, &plan->verdicts[i]);
        log_with(LOG_INFO,
                 LOG_FIELDS(LOG_STR("set", s->id),
                            LOG_STR("action", plan->verdicts[i].keep ? "keep" : "delete"),
                            LOG_STR("status", prune_set_status(s))),
                 "prune plan: %s set %s: %s", plan->verdicts[i].keep ? "keep" : "delete", s->id, w);
        free(w);
    }
}

/* ---- interrupted writes ----------------------------------------------- */

struct upload {
    char *key, *id;
    int64_t started;
    bool remove;
};

struct uploads {
    struct upload *items;
    size_t n;
    time_t now;
    long grace;
};

static int collect_upload(void *ctx, const storage_upload *u)
{
    struct uploads *ups = ctx;
    ups->items = xrealloc(ups->items, (ups->n + 1) * sizeof *ups->items);
    ups->items[ups->n++] = (struct upload){
        .key = xstrdup(u->key),
        .id = xstrdup(u->id),
        .started = u->started,
        /* an unknown start (the server's date could not be read) might be
         * a backup running now: never aborted */
        .remove = u->started > 0 && ups->now - u->started >= ups->grace,
    };
    if (u->started <= 0)
        log_with(LOG_WARN, LOG_FIELDS(LOG_STR("key", u->key)),
                 "prune: the interrupted write of %s has no known start time: it is kept; remove it by hand "
                 "once no backup is running",
                 u->key);
    return 0;
}

static void uploads_free(struct uploads *ups)
{
    for (size_t i = 0; i < ups->n; i++) {
        free(ups->items[i].key);
        free(ups->items[i].id);
    }
    free(ups->items);
}

/* ---- deletion --------------------------------------------------------- */

/* Remembers the first failure (the one the run reports) and logs each. */
static void note_failure(sv_error *first, const sv_error *e)
{
    log_error("prune: %s", e->msg);
    if (!sv_error_isset(first))
        *first = *e;
}

struct keys {
    char **items;
    size_t n;
    size_t *set_of; /* index of the set each key belongs to */
};

static void keys_push(struct keys *k, char *key, size_t set)
{
    k->items = xrealloc(k->items, (k->n + 1) * sizeof *k->items);
    k->set_of = xrealloc(k->set_of, (k->n + 1) * sizeof *k->set_of);
    k->items[k->n] = key;
    k->set_of[k->n++] = set;
}

static void keys_free(struct keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->items[i]);
    free(k->items);
    free(k->set_of);
    memset(k, 0, sizeof *k);
}

/*
 * Deletes keys in one batched call. When it fails, finds which keys are
 * still there (one stat each: only on this path) and marks their sets in
 * failed[]; the first failure goes to *first. Returns the number of keys
 * left behind.
 */
static size_t delete_keys(storage *st, const struct keys *k, bool dry_run, bool *failed, sv_error *first)
{
    if (k->n == 0 || dry_run)
        return 0;
    sv_error err = {0};
    if (storage_delete(st, (const char *const *)k->items, k->n, &err) == 0)
        return 0;
    note_failure(first, &err);
    size_t left = 0;
    for (size_t i = 0; i < k->n; i++) {
        sv_error serr = {0};
        int rc = storage_stat(st, k->items[i], NULL, &serr);
        if (rc == 1)
            continue; /* deleted after all */
        failed[k->set_of[i]] = true;
        if (left++ < NAME_MAX_KEYS)
            log_with(LOG_ERROR, LOG_FIELDS(LOG_STR("key", k->items[i])), "prune: %s was not deleted%s%s",
                     k->items[i], rc < 0 ? ": " : "", rc < 0 ? serr.msg : "");
    }
    if (left > NAME_MAX_KEYS)
        log_error("prune: and %zu more keys were not deleted", left - NAME_MAX_KEYS);
    return left;
}

/* The destructive half of prune_run; a dry run goes through it to the
 * point of each destructive call, and no further. */
static void delete_planned(storage *st, const catalog *cat, const retention_plan *plan, bool dry_run,
                           struct prune_result *res, sv_error *first)
{
    bool *failed = xcalloc(cat->n ? cat->n : 1, sizeof *failed);

    /* 1. Manifests first: from here on a set is incomplete, never good. */
    struct keys manifests = {0};
    for (size_t i = 0; i < cat->n; i++) {
        if (plan->verdicts[i].keep)
            continue;
        const catalog_set *s = &cat->sets[i];
        for (size_t j = 0; j < s->n_objects; j++)
            if (strcmp(s->objects[j], MANIFEST_FILENAME) == 0)
                keys_push(&manifests, catalog_object_key(cat->name, s->id, s->objects[j]), i);
    }
    delete_keys(st, &manifests, dry_run, failed, first);
    keys_free(&manifests);

    /* 2. The rest of every set whose manifest is gone. A stop request
     * (SIGTERM) ends the run here: what is left is incomplete sets, which
     * the next prune removes. */
    sv_error serr = {0};
    bool stop = !dry_run && signals_check(&serr) != 0;
    if (stop) {
        note_failure(first, &serr);
        for (size_t i = 0; i < cat->n; i++)
            failed[i] = !plan->verdicts[i].keep;
    }
    struct keys objects = {0};
    for (size_t i = 0; i < cat->n && !stop; i++) {
        if (plan->verdicts[i].keep || failed[i])
            continue;
        const catalog_set *s = &cat->sets[i];
        for (size_t j = 0; j < s->n_objects; j++)
            if (strcmp(s->objects[j], MANIFEST_FILENAME) != 0)
                keys_push(&objects, catalog_object_key(cat->name, s->id, s->objects[j]), i);
    }
    delete_keys(st, &objects, dry_run, failed, first);
    keys_free(&objects);

    for (size_t i = 0; i < cat->n && !dry_run; i++) {
        if (plan->verdicts[i].keep)
            continue;
        if (failed[i]) {
            res->sets_failed++;
            res->complete_sets += cat->sets[i].complete;
            continue;
        }
        res->sets_deleted++;
        char *w = why(&cat->sets[i], &plan->verdicts[i]);
        log_with(LOG_INFO, LOG_FIELDS(LOG_STR("set", cat->sets[i].id)), "prune: deleted set %s/%s (%s)",
                 cat->name, cat->sets[i].id, w);
        free(w);
    }
    free(failed);
}

static void abort_uploads(storage *st, struct uploads *ups, bool dry_run, struct prune_result *res,
                          sv_error *first)
{
    for (size_t i = 0; i < ups->n; i++) {
        struct upload *u = &ups->items[i];
        sv_error serr = {0};
        if (!dry_run && signals_check(&serr) != 0) {
            note_failure(first, &serr);
            break;
        }
        if (!u->remove) {
            res->uploads_kept++;
            continue;
        }
        res->uploads_to_remove++;
        if (dry_run)
            continue;
        storage_upload su = {.key = u->key, .id = u->id, .started = u->started};
        sv_error err = {0};
        if (storage_abort_upload(st, &su, &err) != 0) {
            note_failure(first, &err);
            res->uploads_failed++;
            continue;
        }
        res->uploads_removed++;
        char iso[21];
        iso8601_format((time_t)u->started, iso);
        log_with(LOG_INFO, LOG_FIELDS(LOG_STR("key", u->key)),
                 "prune: removed the interrupted write of %s (started %s)", u->key, iso);
    }
}

/* ---- JSON ------------------------------------------------------------- */

static json_t *rule_json(long n)
{
    return n < 0 ? json_null() : json_integer((json_int_t)n);
}

static json_t *duration_json(long seconds)
{
    char d[32];
    return seconds < 0 ? json_null() : json_string(config_format_duration(seconds, d, sizeof d));
}

static void print_json(const sv_config *cfg, storage *st, const catalog *cat, const retention_plan *plan,
                       const retention_policy *p, const struct uploads *ups, const char *tz, bool dry_run,
                       const struct prune_result *res, const sv_error *first)
{
    json_t *root = json_object();
    json_object_set_new(root, "name", json_string(cfg->name));
    json_object_set_new(root, "storage", json_string(storage_url(st)));
    json_object_set_new(root, "dry_run", json_boolean(dry_run));
    json_object_set_new(root, "time_zone", json_string(tz));
    json_t *pol = json_object();
    json_object_set_new(pol, "empty", json_boolean(plan->empty_policy));
    json_object_set_new(pol, "keep_last", rule_json(p->keep_last));
    json_object_set_new(pol, "keep_hourly", rule_json(p->keep_hourly));
    json_object_set_new(pol, "keep_daily", rule_json(p->keep_daily));
    json_object_set_new(pol, "keep_weekly", rule_json(p->keep_weekly));
    json_object_set_new(pol, "keep_monthly", rule_json(p->keep_monthly));
    json_object_set_new(pol, "keep_yearly", rule_json(p->keep_yearly));
    json_object_set_new(pol, "keep_within", duration_json(p->keep_within));
    json_object_set_new(pol, "grace", duration_json(p->grace));
    json_object_set_new(root, "policy", pol);

    json_t *sets = json_array();
    for (size_t i = 0; i < cat->n; i++) {
        const catalog_set *s = &cat->sets[i];
        const retention_verdict *v = &plan->verdicts[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(s->id));
        json_object_set_new(o, "status", json_string(prune_set_status(s)));
        json_object_set_new(o, "action", json_string(v->keep ? "keep" : "delete"));
        json_t *reasons = json_array();
        for (size_t j = 0; j < v->n_reasons; j++)
            json_array_append_new(reasons, json_string(v->reasons[j]));
        json_object_set_new(o, "reasons", reasons);
        json_object_set_new(o, "safety", json_boolean(is_safety(s)));
        if (!s->complete)
            json_object_set_new(o, "problem", json_string(s->problem));
        if (s->damaged)
            json_object_set_new(o, "damage", json_string(s->damage));
        json_object_set_new(o, "objects", json_integer((json_int_t)s->n_objects));
        json_object_set_new(o, "bytes", json_integer((json_int_t)s->stored_bytes));
        json_array_append_new(sets, o);
    }
    json_object_set_new(root, "sets", sets);

    json_t *uploads = json_array();
    for (size_t i = 0; i < ups->n; i++) {
        json_t *o = json_object();
        char iso[21];
        iso8601_format((time_t)ups->items[i].started, iso);
        json_object_set_new(o, "key", json_string(ups->items[i].key));
        json_object_set_new(o, "started_at", ups->items[i].started > 0 ? json_string(iso) : json_null());
        json_object_set_new(o, "action", json_string(ups->items[i].remove ? "remove" : "keep"));
        json_array_append_new(uploads, o);
    }
    json_object_set_new(root, "uploads", uploads);

    json_t *r = json_object();
    json_object_set_new(r, "kept", json_integer((json_int_t)res->sets_kept));
    json_object_set_new(r, "deleted", json_integer((json_int_t)res->sets_deleted));
    json_object_set_new(r, "failed", json_integer((json_int_t)res->sets_failed));
    json_object_set_new(r, "uploads_removed", json_integer((json_int_t)res->uploads_removed));
    json_object_set_new(r, "uploads_failed", json_integer((json_int_t)res->uploads_failed));
    json_object_set_new(r, "error", sv_error_isset(first) ? json_string(first->msg) : json_null());
    json_object_set_new(root, "result", r);

    /* ASCII only: a manifest's text in a C1 control or a bidi override
     * reaches no terminal raw, even through cat or a pager */
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    puts(text);
    free(text);
    json_decref(root);
}

/* ---- the run ---------------------------------------------------------- */

int prune_run(const sv_config *cfg, storage *st, const struct prune_options *o, struct prune_result *res,
              sv_error *err)
{
    memset(res, 0, sizeof *res);
    char tz[128], grace[32], policy[256];
    prune_tz_setup(tz, sizeof tz);
    retention_policy p = retention_policy_from_config(cfg);
    config_format_duration(p.grace, grace, sizeof grace);
    retention_policy_describe(&p, policy, sizeof policy);

    const storage_stats before = *storage_get_stats(st); /* a backup may have used st already */
    catalog cat;
    if (catalog_load(st, cfg->name, &cat, err) != 0)
        return -1;
    time_t now = time(NULL);
    retention_plan plan;
    prune_plan_catalog(&cat, &p, now, o->pinned_id, &plan);
    res->sets_kept = plan.n_keep;
    res->sets_to_delete = plan.n_delete;
    for (size_t i = 0; i < cat.n; i++)
        res->complete_sets += cat.sets[i].complete && (plan.verdicts[i].keep || o->dry_run);

    struct uploads ups = {.now = now, .grace = p.grace};
    char *uprefix = xasprintf("%s/", cfg->name);
    int urc = storage_list_uploads(st, uprefix, collect_upload, &ups, err);
    free(uprefix);
    if (urc != 0) {
        sv_error_wrap(err, "listing the interrupted writes of series %s", cfg->name);
        uploads_free(&ups);
        retention_plan_free(&plan);
        catalog_free(&cat);
        return -1;
    }

    warn_damaged(&cat);
    if (o->print && !o->json)
        print_plan_text(cfg, st, &cat, &plan, policy, tz, grace, o->dry_run);
    if (!o->print)
        log_plan(&cat, &plan);
    if (o->print && !o->json) {
        if (ups.n)
            printf("\ninterrupted writes (never visible as objects):\n");
        for (size_t i = 0; i < ups.n; i++) {
            char iso[21];
            iso8601_format((time_t)ups.items[i].started, iso);
            char *key = text_escape(ups.items[i].key); /* a key in storage is anyone's text */
            if (ups.items[i].started <= 0)
                printf("  %-6s  %s (start time unknown: never removed)\n", "keep", key);
            else
                printf("  %-6s  %s (started %s, %s the grace period)\n",
                       ups.items[i].remove ? "remove" : "keep", key, iso,
                       ups.items[i].remove ? "older than" : "within");
            free(key);
        }
        fflush(stdout); /* the plan is out before anything is deleted */
    }
    log_with(LOG_INFO,
             LOG_FIELDS(LOG_NUM("keep", plan.n_keep), LOG_NUM("delete", plan.n_delete),
                        LOG_NUM("uploads", ups.n), LOG_STR("policy", policy), LOG_STR("time_zone", tz)),
             "prune %s series %s: %zu set(s) to keep, %zu to delete, %zu interrupted write(s) (policy: %s)",
             o->dry_run ? "plan (dry run) for" : "of", cfg->name, plan.n_keep, plan.n_delete, ups.n, policy);

    sv_error first = {0};
    delete_planned(st, &cat, &plan, o->dry_run, res, &first);
    abort_uploads(st, &ups, o->dry_run, res, &first);

    const storage_stats *now_stats = storage_get_stats(st);
    storage_stats ss = {
        .lists = now_stats->lists - before.lists,
        .reads = now_stats->reads - before.reads,
        .delete_calls = now_stats->delete_calls - before.delete_calls,
        .deleted_keys = now_stats->deleted_keys - before.deleted_keys,
        .upload_lists = now_stats->upload_lists - before.upload_lists,
        .upload_aborts = now_stats->upload_aborts - before.upload_aborts,
    };
    log_with(LOG_DEBUG,
             LOG_FIELDS(LOG_NUM("lists", ss.lists), LOG_NUM("reads", ss.reads),
                        LOG_NUM("delete_calls", ss.delete_calls), LOG_NUM("deleted_keys", ss.deleted_keys),
                        LOG_NUM("upload_lists", ss.upload_lists), LOG_NUM("upload_aborts", ss.upload_aborts)),
             "prune: storage calls: %lu listing(s), %lu read(s), %lu delete call(s) for %lu key(s)", ss.lists,
             ss.reads, ss.delete_calls, ss.deleted_keys);

    if (o->print && o->json)
        print_json(cfg, st, &cat, &plan, &p, &ups, tz, o->dry_run, res, &first);

    uploads_free(&ups);
    retention_plan_free(&plan);
    catalog_free(&cat);
    if (sv_error_isset(&first)) {
        *err = first;
        err->code = SV_EXIT_FAILED;
        if (res->sets_failed)
            sv_error_wrap(err, "%zu set(s) not deleted", res->sets_failed);
        sv_error_hint(err, "sets whose manifest was deleted are now incomplete and are removed by the next "
                           "prune; fix the storage permissions and run sauve prune again");
        return -1;
    }
    return 0;
}
