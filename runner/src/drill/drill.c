#include "drill/drill.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "manifest/record.h"
#include "restore/restore.h"
#include "sources/loader.h"
#include "verify/verify.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Eight hex digits from the kernel: the scratch targets of two drills at
 * once never meet (the pid and the clock when the kernel has no answer). */
static void new_tag(char out[9])
{
    unsigned int r = 0;
    ssize_t got;
    while ((got = getrandom(&r, sizeof r, 0)) < 0 && errno == EINTR)
        ;
    if (got != (ssize_t)sizeof r) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        r = (unsigned int)getpid() * 2654435761u ^ (unsigned int)t.tv_nsec ^ (unsigned int)t.tv_sec;
    }
    snprintf(out, 9, "%08x", r);
}

static struct drill_source *add(struct drill_report *r, const manifest_artifact *a)
{
    r->sources = xrealloc(r->sources, (r->n + 1) * sizeof *r->sources);
    struct drill_source *d = &r->sources[r->n++];
    memset(d, 0, sizeof *d);
    d->source = xasprintf("%s:%s", a->kind, a->name);
    return d;
}

static void fail(struct drill_source *d, int code, char *detail)
{
    d->ok = false;
    d->code = code;
    free(d->detail);
    d->detail = detail;
}

/* What a drill does not load, read whole as verify reads it. */
static void verify_only(const sv_config *cfg, storage *st, const catalog_set *set, size_t i, const char *why,
                        struct drill_source *d)
{
    struct verify_artifact va;
    verify_artifact(cfg, st, set, i, &va);
    d->ok = va.ok;
    d->detail = xasprintf("not loaded (%s); %s", why, va.detail);
    if (!va.ok)
        d->code = SV_EXIT_VERIFY;
    verify_artifact_free(&va);
}

/* "12 rows compared" and what else the findings say, for the detail. */
static char *findings_text(const struct drill_findings *f, double restore_s)
{
    char checks[64] = "";
    if (f->checks_run)
        snprintf(checks, sizeof checks, ", %zu check(s) held", f->checks_run);
    return xasprintf("restored in %.1f s; %" PRIu64 " %s in the scratch copy%s%s%s%s", restore_s, f->counted,
                     f->unit, f->compared ? ", as the backup recorded" : "", checks, f->note ? "; " : "",
                     f->note ? f->note : "");
}

/* Restores artifact a of set into a scratch target and compares it; *started
 * says whether the loader made the target (only then is it removed: a
 * restore refused because the name was taken never touches what holds it). */
static void drill_load(const sv_config *cfg, storage *st, const catalog_set *set, const manifest_artifact *a,
                       const struct loader_ops *ops, const struct loader_options *o, struct drill_source *d,
                       bool *started)
{
    struct restore_request req = {
        .spec = d->source, .set = set->id, .load = *o, .no_safety_backup = true, .yes = true};
    struct restore_spec spec;
    struct restore_result res = {0};
    sv_error err = {0};
    double t0 = now_s();
    int rc = restore_parse(&req, &spec, &err);
    if (rc == 0)
        rc = restore_run(cfg, st, &spec, &req, &res, &err);
    d->restore_s = now_s() - t0;
    *started = res.target_started;
    bool artifact_failed = res.artifact_failed;
    restore_result_free(&res);
    if (rc != 0) {
        /* the set's fault (4) only when the artifact itself failed; the
         * scratch server, its disk, the drill's settings are not the set */
        int code = err.code == SV_EXIT_TEMPFAIL || err.code == SV_EXIT_CONFIG ? err.code
                   : artifact_failed                                          ? SV_EXIT_VERIFY
                                                                              : SV_EXIT_FAILED;
        fail(d, code,
             err.hint[0] ? xasprintf("the restore failed: %s (hint: %s)", err.msg, err.hint)
                         : xasprintf("the restore failed: %s", err.msg));
        return;
    }
    d->loaded = true;
    struct drill_findings f = {0};
    if (ops->drill_compare(cfg, a, o, &f, &err) != 0) {
        fail(d, err.code == SV_EXIT_TEMPFAIL || err.code == SV_EXIT_CONFIG ? err.code : SV_EXIT_FAILED,
             xasprintf("restored in %.1f s, but the scratch copy cannot be read: %s", d->restore_s, err.msg));
    } else {
        d->unit = f.unit;
        d->counted = f.counted;
        d->compared = f.compared;
        d->checks_run = f.checks_run;
        d->checks_failed = f.checks_failed;
        d->ok = f.mismatch == NULL;
        if (f.mismatch)
            fail(d, SV_EXIT_VERIFY, xasprintf("restored in %.1f s, but %s", d->restore_s, f.mismatch));
        else
            d->detail = findings_text(&f, d->restore_s);
    }
    free(f.mismatch);
    free(f.note);
}

/* Drills artifact i of set; dir: the run's private directory, or NULL
 * when it could not be made (why_no_dir). */
static void drill_artifact(const sv_config *cfg, storage *st, const catalog_set *set, size_t i,
                           const char *tag, const char *dir, const char *why_no_dir, struct drill_source *d)
{
    const manifest_artifact *a = &set->m.artifacts[i];
    if (set->artifact_damaged && set->artifact_damaged[i]) {
        fail(d, SV_EXIT_VERIFY, xasprintf("damaged: %s", set->damage));
        return;
    }
    const struct loader_ops *ops = loader_find(a->kind, strlen(a->kind));
    if (!ops || !ops->drill_target) {
        verify_only(cfg, st, set, i, "this sauve has no drill for its kind", d);
        return;
    }
    if (ops->drill_needs_dir && !dir) {
        fail(d, SV_EXIT_CONFIG, xasprintf("not drilled: %s", why_no_dir));
        return;
    }
    struct loader_options o = {0};
    char *owned = NULL;
    const char *skip = NULL;
    if (ops->drill_target(a, dir, tag, &o, &owned, &skip) == 1) {
        verify_only(cfg, st, set, i, skip, d);
        return;
    }
    log_with(LOG_INFO,
             LOG_FIELDS(LOG_STR("set", set->id), LOG_STR("source", d->source), LOG_STR("scratch", owned)),
             "drill: restoring %s of set %s/%s into scratch %s", d->source, cfg->name, set->id, owned);
    bool started = false;
    drill_load(cfg, st, set, a, ops, &o, d, &started);
    if (started) {
        /* whatever happened, and even after a stop request: a drill leaves
         * nothing behind on the server it borrowed */
        signals_cleanup_begin(SIGNALS_CLEANUP_S);
        sv_error derr = {0};
        if (ops->drill_discard(cfg, &o, &derr) != 0) {
            log_with(LOG_ERROR, LOG_FIELDS(LOG_STR("scratch", owned)),
                     "drill: the scratch copy %s was not removed: %s", owned, derr.msg);
            char *was = d->detail;
            d->detail =
                xasprintf("%s; and the scratch copy %s was NOT removed: %s", was ? was : "", owned, derr.msg);
            free(was);
            if (d->ok) {
                d->ok = false;
                d->code = SV_EXIT_FAILED;
            }
        }
        signals_cleanup_end();
    }
    free(owned);
}

/* The run's private directory for the scratch files, inside drill.dir
 * (0700: a copy of the data is readable by no one else); NULL with *why
 * when drill.dir is not a writable directory. */
static char *private_dir(const sv_config *cfg, char **why)
{
    const char *base = cfg->drill_dir && *cfg->drill_dir ? cfg->drill_dir : "/tmp";
    char *dir = xasprintf("%s/sauve-drill-XXXXXX", base);
    if (!mkdtemp(dir)) {
        *why = xasprintf("SAUVE_DRILL_DIR (drill.dir) %s is not a directory sauve can write in: %s", base,
                         strerror(errno));
        free(dir);
        return NULL;
    }
    return dir;
}

/* A check of drill.checks that names a database the set does not hold is
 * a mistake in the settings, never a check quietly not run. */
static int check_checks(const sv_config *cfg, const catalog_set *set, sv_error *err)
{
    for (size_t i = 0; i < cfg->n_drill_checks; i++) {
        const sv_drill_check *k = &cfg->drill_checks[i];
        const manifest_artifact *a = manifest_find(&set->m, "postgres", k->database);
        if (!a || strcmp(k->database, "globals") == 0) {
            sv_error_set(
                err, SV_EXIT_CONFIG,
                "drill.checks '%s' (config file line %d) names database %s, which set %s/%s does not hold",
                k->name, k->line, k->database, cfg->name, set->id);
            return sv_error_hint(
                err, "name a database of pg.databases (sauve list --json shows what a set holds)");
        }
    }
    return 0;
}

/* Whether artifact a is among the specs (all when there are none); marks
 * the spec found. */
static bool wanted(const struct drill_request *req, const manifest_artifact *a, bool *found)
{
    if (req->n_specs == 0)
        return true;
    size_t klen = strlen(a->kind);
    for (size_t i = 0; i < req->n_specs; i++) {
        const char *s = req->specs[i];
        if (strncmp(s, a->kind, klen) == 0 && s[klen] == ':' && strcmp(s + klen + 1, a->name) == 0) {
            found[i] = true;
            return true;
        }
    }
    return false;
}

int drill_run(const sv_config *cfg, storage *st, const struct drill_request *req, struct drill_report *out,
              sv_error *err)
{
    memset(out, 0, sizeof *out);
    catalog cat;
    if (catalog_load(st, cfg->name, &cat, err) != 0)
        return -1;
    int rc = -1;
    bool *found = xcalloc(req->n_specs + 1, sizeof *found);
    const catalog_set *set = catalog_pick(&cat, req->set, err);
    if (!set)
        goto out;
    memcpy(out->set_id, set->id, sizeof out->set_id);
    for (size_t i = 0; i < set->m.n_artifacts; i++) {
        const manifest_artifact *a = &set->m.artifacts[i];
        if (a->ok)
            wanted(req, a, found);
    }
    for (size_t i = 0; i < req->n_specs; i++)
        if (!found[i]) {
            sv_error_set(err, SV_EXIT_USAGE, "set %s/%s stores no %s", cfg->name, set->id, req->specs[i]);
            sv_error_hint(err, "sauve list --json shows what each set holds");
            goto out;
        }
    if (check_checks(cfg, set, err) != 0)
        goto out;
    char tag[9];
    new_tag(tag);
    char *why_no_dir = NULL, *dir = NULL;
    for (size_t i = 0; i < set->m.n_artifacts && !dir && !why_no_dir; i++) {
        const manifest_artifact *a = &set->m.artifacts[i];
        const struct loader_ops *ops =
            a->ok && wanted(req, a, found) ? loader_find(a->kind, strlen(a->kind)) : NULL;
        if (ops && ops->drill_needs_dir)
            dir = private_dir(cfg, &why_no_dir);
    }
    out->ok = true;
    for (size_t i = 0; i < set->m.n_artifacts && !signals_stop_requested(); i++) {
        const manifest_artifact *a = &set->m.artifacts[i];
        if (!a->ok || !wanted(req, a, found))
            continue; /* a source that failed during the backup stored nothing */
        struct drill_source *d = add(out, a);
        drill_artifact(cfg, st, set, i, tag, dir, why_no_dir, d);
        if (d->loaded)
            out->restore_s += d->restore_s;
        if (!d->ok) {
            out->ok = false;
            /* the set's own fault (4) outranks the rest: it is what to act on */
            if (out->code != SV_EXIT_VERIFY)
                out->code = d->code;
        }
        log_with(d->ok ? LOG_INFO : LOG_ERROR,
                 LOG_FIELDS(LOG_STR("set", set->id), LOG_STR("source", d->source)), "drill %s/%s %s: %s%s",
                 cfg->name, set->id, d->source, d->ok ? "ok, " : "FAILED, ", d->detail);
    }
    if (dir && rmdir(dir) != 0)
        log_warn("drill: its directory %s was not removed: %s", dir, strerror(errno));
    free(dir);
    free(why_no_dir);
    for (size_t i = 0; i < cfg->n_drill_checks; i++) {
        const manifest_artifact *a = manifest_find(&set->m, "postgres", cfg->drill_checks[i].database);
        if (a && !wanted(req, a, found))
            out->checks_not_run++;
    }
    if (signals_check(err) != 0)
        goto out;
    if (out->n == 0) {
        sv_error_set(err, SV_EXIT_FAILED,
                     "set %s/%s stores nothing to drill (every source failed during its backup)", cfg->name,
                     set->id);
        goto out;
    }
    rc = 0;
out:
    free(found);
    catalog_free(&cat);
    return rc;
}

void drill_record(const sv_config *cfg, storage *st, struct drill_report *r, const char *summary)
{
    set_record rec;
    record_init(&rec, "drill", r->set_id, r->ok, r->restore_s);
    rec.summary = xstrdup(summary);
    for (size_t i = 0; i < r->n; i++)
        record_add(&rec, r->sources[i].source, r->sources[i].ok,
                   r->sources[i].loaded ? r->sources[i].restore_s : -1, r->sources[i].detail);
    sv_error err = {0};
    if (catalog_store_record(st, cfg->name, &rec, &err) != 0)
        r->record_error = xstrdup(err.msg);
    record_free(&rec);
}

void drill_report_free(struct drill_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->sources[i].source);
        free(r->sources[i].detail);
    }
    free(r->sources);
    free(r->record_error);
    memset(r, 0, sizeof *r);
}
