/*
 * The bucket as list, prune and restore read it: a listing of keys and the
 * manifests it names, through catalog_load (storage.c's key rules, the
 * grouping of keys into sets, each manifest read and judged), catalog_pick
 * (what restore takes) and prune_plan_catalog (what prune deletes). Anyone
 * with write access to the bucket chooses all of it. The storage is a fake
 * backend behind the real storage.c, serving the input.
 *
 * The input is NUL-separated: first the listing, one object per line
 * ("KEY" or "KEY<TAB>MTIME", MTIME in unix seconds), then the bodies of the
 * keys ending in /manifest.json, in listing order (missing ones are empty).
 *
 * Checked: the catalog is sorted newest first with valid, unique ids, a set
 * is complete exactly when its manifest is valid and names it; "latest" is
 * the newest complete backup; and, under the harshest policy (keep.last 0)
 * and under none, the safety rules of the README hold: the newest complete
 * set, sets whose manifest is unreadable or newer, incomplete sets younger
 * than the grace period, damaged sets (an object the manifest names is
 * missing or of another size), sets dated in the future and the newest good copy
 * of every source are never deleted.
 */
#include "fuzz.h"

#include "catalog/catalog.h"
#include "common/log.h"
#include "retention/policy.h"
#include "retention/prune.h"
#include "storage/storage_intern.h"

#define OBJECTS_MAX 256
#define NAME        "default"
/* 2026-11-23T00:00:00Z, so that the seeds' sets are a day old or less */
#define NOW   ((time_t)1795392000)
#define GRACE (24L * 3600)

struct object {
    const char *key;
    int64_t mtime;
    const char *body; /* manifests only */
    size_t len;
};

struct bucket {
    struct object objects[OBJECTS_MAX];
    size_t n;
};

static int fake_list(storage *st, const char *prefix, bool recursive, storage_list_cb cb, void *ctx,
                     sv_error *err)
{
    (void)recursive;
    (void)err;
    const struct bucket *b = st->impl;
    for (size_t i = 0; i < b->n; i++) {
        const struct object *o = &b->objects[i];
        if (strncmp(o->key, prefix, strlen(prefix)) != 0)
            continue;
        storage_entry e = {.key = o->key, .size = o->body ? o->len : 100, .mtime = o->mtime};
        int rc = cb(ctx, &e);
        if (rc)
            return rc;
    }
    return 0;
}

static int fake_read(storage *st, const char *key, stream *sink, sv_error *err)
{
    const struct bucket *b = st->impl;
    for (size_t i = 0; i < b->n; i++)
        if (b->objects[i].body && strcmp(b->objects[i].key, key) == 0)
            return stream_write(sink, b->objects[i].body, b->objects[i].len, err);
    return sv_error_set(err, SV_EXIT_FAILED, "no object %s", key);
}

static const struct storage_backend fake_backend = {.scheme = "fuzz", .list = fake_list, .read = fake_read};

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* skipped keys and sets in the future are warnings: not 10,000 a second */
    log_init(LOG_FORMAT_TEXT, LOG_ERROR);
    return 0;
}

static void check_catalog(const catalog *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const catalog_set *s = &c->sets[i];
        FUZZ_CHECK(set_id_parse(s->id, NULL) == 0);
        if (i)
            FUZZ_CHECK(strcmp(c->sets[i - 1].id, s->id) > 0); /* newest first, each once */
        FUZZ_CHECK(s->n_objects >= 1);
        for (size_t k = 0; k < s->n_objects; k++)
            FUZZ_CHECK(s->objects[k][0] && s->objects[k][0] != '/');
        FUZZ_CHECK(s->complete == !s->problem);
        FUZZ_CHECK(s->damaged == (s->damage != NULL) && (!s->damaged || s->complete));
        if (s->complete) {
            FUZZ_CHECK(strcmp(s->m.id, s->id) == 0 && !s->unreadable && !s->newer_format);
            /* what restore reads of it is listed under it */
            for (size_t a = 0; a < s->m.n_artifacts; a++)
                FUZZ_CHECK(!s->m.artifacts[a].key || manifest_key_is_safe(s->m.artifacts[a].key));
        }
        FUZZ_CHECK(!s->newer_format || s->unreadable);
    }
}

static void check_pick(const catalog *c)
{
    const catalog_set *newest = NULL;
    for (size_t i = 0; i < c->n && !newest; i++)
        if (c->sets[i].complete && strcmp(c->sets[i].m.reason, "safety") != 0)
            newest = &c->sets[i];
    sv_error err = {0};
    const catalog_set *got = catalog_pick(c, "latest", &err);
    FUZZ_CHECK(got == newest);
    FUZZ_CHECK(got || (err.code && err.msg[0]));
    for (size_t i = 0; i < c->n; i++) {
        sv_error e = {0};
        got = catalog_pick(c, c->sets[i].id, &e);
        FUZZ_CHECK(got == (c->sets[i].complete ? &c->sets[i] : NULL));
    }
}

static bool in_future(const catalog_set *s)
{
    time_t t = 0;
    set_id_parse(s->id, &t);
    return t > NOW + RETENTION_FUTURE_SLACK;
}

/* Complete, and every object its manifest names is listed at its size. */
static bool intact(const catalog_set *s)
{
    return s->complete && !s->damaged;
}

/* Whether set i holds a good copy of a source that no newer (not future)
 * intact set holds. */
static bool newest_good_copy(const catalog *c, size_t i)
{
    const catalog_set *s = &c->sets[i];
    if (!intact(s) || in_future(s))
        return false;
    for (size_t a = 0; a < s->m.n_artifacts; a++) {
        const manifest_artifact *art = &s->m.artifacts[a];
        if (!art->ok)
            continue;
        bool newer = false;
        for (size_t j = 0; j < i && !newer; j++)
            if (intact(&c->sets[j]) && !in_future(&c->sets[j])) {
                const manifest_artifact *o = manifest_find(&c->sets[j].m, art->kind, art->name);
                newer = o && o->ok;
            }
        if (!newer)
            return true;
    }
    return false;
}

static void check_plan(const catalog *c, const retention_policy *p)
{
    retention_plan plan;
    prune_plan_catalog(c, p, NOW, NULL, &plan);
    FUZZ_CHECK(plan.n == c->n && plan.n_keep + plan.n_delete == c->n);
    bool complete_seen = false, backup_seen = false;
    for (size_t i = 0; i < c->n; i++) {
        const catalog_set *s = &c->sets[i];
        const retention_verdict *v = &plan.verdicts[i];
        FUZZ_CHECK(v->n_reasons >= 1); /* the plan says why, either way */
        for (size_t r = 0; r < v->n_reasons; r++)
            FUZZ_CHECK(v->reasons[r] && v->reasons[r][0]);
        bool must_keep = false;
        if (intact(s) && !in_future(s)) {
            bool safety = strcmp(s->m.reason, "safety") == 0;
            /* the newest complete set, and the newest backup when that is a safety copy */
            if (!complete_seen || (!safety && !backup_seen))
                must_keep = true;
            complete_seen = true;
            backup_seen = backup_seen || !safety;
        }
        if (s->unreadable || s->newer_format || s->damaged || in_future(s))
            must_keep = true;
        if (!s->complete && s->last_modified > NOW - GRACE)
            must_keep = true;
        if (newest_good_copy(c, i))
            must_keep = true;
        if (retention_policy_is_empty(p) && s->complete)
            must_keep = true;
        if (must_keep && !v->keep) {
            fprintf(stderr, "fuzz: set %s (%s) would be deleted: %s\n", s->id,
                    s->complete ? "complete" : s->problem, v->reasons[0]);
            abort();
        }
    }
    retention_plan_free(&plan);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf;
    const char *parts[OBJECTS_MAX + 1];
    size_t nparts = fuzz_split(data, size, &buf, parts, OBJECTS_MAX + 1);

    struct bucket b = {.n = 0};
    char *listing = xstrdup(parts[0]);
    size_t next_body = 1;
    for (char *line = strtok(listing, "\n"); line && b.n < OBJECTS_MAX; line = strtok(NULL, "\n")) {
        struct object *o = &b.objects[b.n++];
        char *tab = strchr(line, '\t');
        o->mtime = 0;
        if (tab) {
            *tab = '\0';
            o->mtime = strtoll(tab + 1, NULL, 10);
        }
        o->key = line;
        size_t klen = strlen(line);
        if (klen >= 14 && strcmp(line + klen - 14, "/manifest.json") == 0) {
            o->body = next_body < nparts ? parts[next_body++] : "";
            o->len = strlen(o->body);
        }
    }

    storage *st = xcalloc(1, sizeof *st);
    st->backend = &fake_backend;
    st->url = xstrdup("fuzz://bucket");
    st->impl = &b;
    catalog c;
    sv_error err = {0};
    /* only a failing storage fails a load, and this one never fails */
    FUZZ_CHECK(catalog_load(st, NAME, &c, &err) == 0);
    check_catalog(&c);
    check_pick(&c);

    retention_policy harsh = retention_policy_empty();
    harsh.keep_last = 0;
    harsh.grace = GRACE;
    check_plan(&c, &harsh);
    retention_policy none = retention_policy_empty();
    none.grace = GRACE;
    check_plan(&c, &none);

    catalog_free(&c);
    storage_close(st);
    free(listing);
    free(buf);
    return 0;
}
