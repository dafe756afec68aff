#include "verify/verify.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "manifest/record.h"
#include "pipeline/stream.h"
#include "restore/restore.h"
#include "sources/checker.h"

static void artifact_init(struct verify_artifact *va, const manifest_artifact *a)
{
    memset(va, 0, sizeof *va);
    va->source = xasprintf("%s:%s", a->kind, a->name);
    va->key = a->key ? xstrdup(a->key) : NULL;
}

/* Size and SHA-256 of the stored object only. */
static int check_stored(const sv_config *cfg, storage *st, const catalog_set *set, const manifest_artifact *a,
                        sv_error *err)
{
    return restore_read_artifact(st, cfg, set, a, ARTIFACT_STORED, null_sink(), err);
}

/* Read whole and checked by the checker of its kind; *detail on success. */
static int check_content(const sv_config *cfg, storage *st, const catalog_set *set,
                         const manifest_artifact *a, const struct checker_ops *ops, char **detail,
                         sv_error *err)
{
    void *ctx = NULL;
    stream *sink = NULL;
    if (ops->start(cfg, a, &ctx, &sink, err) != 0)
        return -1;
    int rc = restore_read_artifact(st, cfg, set, a, ARTIFACT_CONTENT, sink, err);
    sv_error ferr = {0};
    int frc = ops->finish(ctx, rc == 0, detail, &ferr);
    if (frc != 0 && (rc == 0 || ferr.msg[0])) {
        *err = ferr; /* the content is wrong, or the checker gave up first */
        return -1;
    }
    return rc;
}

void verify_artifact(const sv_config *cfg, storage *st, const catalog_set *set, size_t i,
                     struct verify_artifact *va)
{
    const manifest_artifact *a = &set->m.artifacts[i];
    artifact_init(va, a);
    sv_error err = {0};
    if (set->artifact_damaged && set->artifact_damaged[i]) {
        va->detail = xstrdup(set->damage);
        return;
    }
    const struct checker_ops *ops = checker_find(a->kind);
    sv_error why_not = {0};
    bool openable = ops && restore_check_identity(cfg, set, a, &why_not) == 0;
    if (openable) {
        char *detail = NULL;
        va->ok = check_content(cfg, st, set, a, ops, &detail, &err) == 0;
        va->content = va->ok;
        if (va->ok) {
            va->detail = xasprintf("size and SHA-256 match%s; %s", a->n_recipients ? ", decrypted" : "",
                                   detail ? detail : "read whole");
        } else {
            /* A stage after the digest (zstd's own checksum, age's tags)
             * may stop the read before the digest is known: whether the
             * object itself differs from what was stored is the first
             * thing to tell, with both digests, so it is read once more. */
            sv_error stored = {0};
            va->detail = xstrdup(check_stored(cfg, st, set, a, &stored) != 0 ? stored.msg : err.msg);
        }
        free(detail);
        return;
    }
    va->ok = check_stored(cfg, st, set, a, &err) == 0;
    if (!va->ok)
        va->detail = xstrdup(err.msg);
    else if (!ops)
        va->detail = xasprintf(
            "size and SHA-256 match; content not checked: this sauve has no checker for kind '%s'", a->kind);
    else
        va->detail = xasprintf("size and SHA-256 match; content not checked: %s", why_not.msg);
}

static void verify_set(const sv_config *cfg, storage *st, const catalog_set *set, struct verify_report *out)
{
    out->sets = xrealloc(out->sets, (out->n + 1) * sizeof *out->sets);
    struct verify_set *vs = &out->sets[out->n++];
    memset(vs, 0, sizeof *vs);
    memcpy(vs->id, set->id, sizeof vs->id);
    vs->ok = true;
    for (size_t i = 0; i < set->m.n_artifacts; i++) {
        if (!set->m.artifacts[i].ok)
            continue; /* the source failed during the backup: nothing was stored to verify */
        vs->artifacts = xrealloc(vs->artifacts, (vs->n + 1) * sizeof *vs->artifacts);
        const struct verify_artifact *va = &vs->artifacts[vs->n++];
        verify_artifact(cfg, st, set, i, &vs->artifacts[vs->n - 1]);
        out->artifacts_checked++;
        out->content_checked += va->content;
        if (!va->ok) {
            vs->ok = false;
            out->artifacts_failed++;
        }
        log_with(va->ok ? LOG_INFO : LOG_ERROR,
                 LOG_FIELDS(LOG_STR("set", set->id), LOG_STR("source", va->source), LOG_STR("key", va->key)),
                 "verify %s/%s %s: %s%s", cfg->name, set->id, va->source, va->ok ? "ok, " : "FAILED, ",
                 va->detail);
    }
}

int verify_run(const sv_config *cfg, storage *st, const char *which, struct verify_report *out, sv_error *err)
{
    memset(out, 0, sizeof *out);
    catalog cat;
    if (catalog_load(st, cfg->name, &cat, err) != 0)
        return -1;
    int rc = 0;
    if (which && strcmp(which, "all") == 0) {
        for (size_t i = 0; i < cat.n; i++)
            if (cat.sets[i].complete)
                verify_set(cfg, st, &cat.sets[i], out);
        if (out->n == 0)
            rc = sv_error_set(err, SV_EXIT_FAILED, "series %s at %s has no complete set to verify", cfg->name,
                              storage_url(st));
    } else if (!which || strcmp(which, "latest") == 0) {
        /* the newest backup, damaged or not: catalog_pick's "latest" would
         * pass over a damaged one, the very set to report */
        const catalog_set *newest = NULL;
        for (size_t i = 0; i < cat.n && !newest; i++)
            if (cat.sets[i].complete && strcmp(cat.sets[i].m.reason, "safety") != 0)
                newest = &cat.sets[i];
        if (newest)
            verify_set(cfg, st, newest, out);
        else
            rc = sv_error_set(err, SV_EXIT_FAILED, "series %s at %s has no complete backup set to verify",
                              cfg->name, storage_url(st));
    } else {
        const catalog_set *set = catalog_pick(&cat, which, err);
        if (set)
            verify_set(cfg, st, set, out);
        else
            rc = -1;
    }
    out->ok = rc == 0 && out->artifacts_failed == 0;
    catalog_free(&cat);
    return rc;
}

void verify_artifact_free(struct verify_artifact *va)
{
    free(va->source);
    free(va->key);
    free(va->detail);
    memset(va, 0, sizeof *va);
}

void verify_report_free(struct verify_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        for (size_t j = 0; j < r->sets[i].n; j++)
            verify_artifact_free(&r->sets[i].artifacts[j]);
        free(r->sets[i].artifacts);
    }
    free(r->sets);
    memset(r, 0, sizeof *r);
}

size_t verify_record(const sv_config *cfg, storage *st, const struct verify_report *r)
{
    size_t failed = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct verify_set *vs = &r->sets[i];
        set_record rec;
        record_init(&rec, "verify", vs->id, vs->ok, -1);
        size_t bad = 0;
        for (size_t j = 0; j < vs->n; j++) {
            record_add(&rec, vs->artifacts[j].source, vs->artifacts[j].ok, -1, vs->artifacts[j].detail);
            bad += !vs->artifacts[j].ok;
        }
        rec.summary =
            xasprintf("verify %s: %zu artifact(s), %zu do not verify", vs->ok ? "ok" : "failed", vs->n, bad);
        sv_error err = {0};
        if (catalog_store_record(st, cfg->name, &rec, &err) != 0) {
            log_warn("%s", err.msg);
            failed++;
        }
        record_free(&rec);
    }
    return failed;
}
