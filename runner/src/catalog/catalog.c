#include "catalog/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/mem.h"

/* A manifest is a few KiB per artifact; anything this large is not ours. */
#define MANIFEST_MAX (16u * 1024 * 1024)

/* How many set ids a "no such set" message names. */
#define PICK_LIST_MAX 5

/* Entry keys relative to prefix: backends report keys from the storage
 * root, but accepting both shapes costs nothing and keeps us correct if a
 * backend reports them relative to the prefix. */
static const char *strip_prefix(const char *key, const char *prefix, size_t plen)
{
    return strncmp(key, prefix, plen) == 0 ? key + plen : key;
}

/* A set while the listing is read. */
struct pending {
    catalog_set set;
    bool has_manifest;
    uint64_t manifest_size;
};

typedef struct {
    const char *prefix;
    size_t plen;
    struct pending *sets;
    size_t n, cap;
} load_ctx;

/* The pending set with this id, appended when new. */
static struct pending *pending_set(load_ctx *c, const char *id)
{
    int cmp = c->n ? strcmp(id, c->sets[c->n - 1].set.id) : 1;
    if (cmp == 0)
        return &c->sets[c->n - 1];
    /* A sorted listing gives a set's objects together (they share the
     * prefix ID/), but not the sets in id order ("T-3f/" sorts before "T/",
     * since '-' < '/'): whenever the id is not the last one's, search them
     * all, which also covers a backend that would not sort. */
    for (size_t i = c->n; i-- > 0;)
        if (strcmp(c->sets[i].set.id, id) == 0)
            return &c->sets[i];
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->sets = xrealloc(c->sets, c->cap * sizeof *c->sets);
    }
    struct pending *p = &c->sets[c->n++];
    memset(p, 0, sizeof *p);
    strcpy(p->set.id, id); /* set_id_parse bounds its length */
    return p;
}

static int collect_object(void *ctx, const storage_entry *e)
{
    load_ctx *c = ctx;
    if (e->is_prefix)
        return 0;
    const char *rel = strip_prefix(e->key, c->prefix, c->plen);
    /* NAME/SETID/KEY: stray objects directly under the series, and
     * directories that are no set id, are not sets. */
    const char *slash = strchr(rel, '/');
    if (!slash || slash - rel > SET_ID_LEN || !slash[1])
        return 0;
    char id[SET_ID_LEN + 1];
    memcpy(id, rel, (size_t)(slash - rel));
    id[slash - rel] = '\0';
    if (set_id_parse(id, NULL) != 0)
        return 0;
    struct pending *p = pending_set(c, id);
    catalog_set *set = &p->set;
    set->objects = xrealloc(set->objects, (set->n_objects + 1) * sizeof *set->objects);
    set->object_sizes = xrealloc(set->object_sizes, (set->n_objects + 1) * sizeof *set->object_sizes);
    set->object_sizes[set->n_objects] = e->size;
    set->objects[set->n_objects++] = xstrdup(slash + 1);
    set->stored_bytes += e->size;
    if (e->mtime > set->last_modified)
        set->last_modified = e->mtime;
    if (strcmp(slash + 1, MANIFEST_FILENAME) == 0) {
        p->has_manifest = true;
        p->manifest_size = e->size;
    }
    return 0;
}

/* Ids start with a fixed-width UTC time, so text order is time order; two
 * sets of the same second are ordered by their random suffix (a set of an
 * older sauve, with no suffix, first). */
static int newest_first(const void *a, const void *b)
{
    return -strcmp(((const struct pending *)a)->set.id, ((const struct pending *)b)->set.id);
}

/* "manifest invalid: " + the manifest's message, without saying "manifest" twice. */
static char *invalid_problem(const char *msg)
{
    if (strncmp(msg, "manifest: ", 10) == 0)
        msg += 10;
    else if (strncmp(msg, "manifest ", 9) == 0)
        msg += 9;
    return xasprintf("manifest invalid: %s", msg);
}

/* Whether a manifest that failed validation declares a format newer than
 * ours. Such a set is probably fine, written by a newer sauve sharing the
 * bucket (an upgrade rolled back, two versions during a rollout): this one
 * cannot use it, but must not treat it as debris either. */
static bool newer_format(const char *data, size_t len)
{
    json_t *root = json_loadb(data, len, 0, NULL);
    json_t *fmt = json_object_get(root, "format");
    bool newer = json_is_integer(fmt) && json_integer_value(fmt) > MANIFEST_FORMAT;
    json_decref(root);
    return newer;
}

/* Compares what the manifest says was stored with the listing. */
static void check_objects(catalog_set *set)
{
    set->artifact_damaged =
        xcalloc(set->m.n_artifacts ? set->m.n_artifacts : 1, sizeof *set->artifact_damaged);
    size_t n_damaged = 0;
    char first[512] = "";
    for (size_t i = 0; i < set->m.n_artifacts; i++) {
        const manifest_artifact *a = &set->m.artifacts[i];
        if (!a->ok)
            continue;
        size_t k = 0;
        while (k < set->n_objects && strcmp(set->objects[k], a->key) != 0)
            k++;
        char what[512] = "";
        if (k == set->n_objects)
            snprintf(what, sizeof what, "%s is missing", a->key);
        else if (set->object_sizes[k] < a->bytes_out)
            snprintf(what, sizeof what, "%s is truncated: %llu bytes stored, the manifest recorded %llu",
                     a->key, (unsigned long long)set->object_sizes[k], (unsigned long long)a->bytes_out);
        else if (set->object_sizes[k] > a->bytes_out)
            snprintf(what, sizeof what,
                     "%s has %llu bytes, more than the %llu the manifest recorded (replaced?)", a->key,
                     (unsigned long long)set->object_sizes[k], (unsigned long long)a->bytes_out);
        if (!what[0])
            continue;
        set->artifact_damaged[i] = true;
        if (n_damaged++ == 0)
            memcpy(first, what, sizeof first);
    }
    if (n_damaged == 0)
        return;
    set->damaged = true;
    set->damage = n_damaged == 1 ? xstrdup(first)
                                 : xasprintf("%s, and %zu other artifact(s) are missing or of another size",
                                             first, n_damaged - 1);
}

/* Reads the manifest of a listed set and fills the rest of it. Returns -1
 * only when storage fails. */
static int load_manifest(storage *st, const char *name, const struct pending *p, catalog_set *set,
                         sv_error *err)
{
    if (!p->has_manifest) {
        set->problem = xstrdup("no manifest (interrupted or in progress)");
        return 0;
    }
    if (p->manifest_size > MANIFEST_MAX) {
        set->problem = xasprintf("manifest invalid: %llu bytes, more than the %u a manifest may have",
                                 (unsigned long long)p->manifest_size, MANIFEST_MAX);
        set->unreadable = true;
        return 0;
    }

    char *key = catalog_object_key(name, set->id, MANIFEST_FILENAME);
    char *data = NULL;
    size_t len = 0;
    int rc = storage_get(st, key, MANIFEST_MAX, &data, &len, err);
    free(key);
    if (rc != 0 && (err->code == SV_EXIT_TEMPFAIL || err->code == SV_EXIT_CONFIG))
        return -1; /* the storage is failing or misconfigured (credentials, SSE-C key): say so, with its hint
                    */
    if (rc != 0) {
        /* One unreadable manifest (a permission, a set deleted meanwhile)
         * must not hide every other set; it is kept, never judged. */
        set->problem = xasprintf("manifest unreadable: %s", err->msg);
        set->unreadable = true;
        sv_error_clear(err);
        return 0;
    }

    /* A manifest that exists but is invalid (a bug, a hand edit, a bit
     * flip) may still describe good objects: like an unreadable one, it is
     * kept and reported, never judged. Only a set with no manifest at all
     * is debris. */
    sv_error merr = {0};
    if (manifest_from_json(data, len, &set->m, &merr) != 0) {
        set->unreadable = true;
        set->problem = invalid_problem(merr.msg);
        set->newer_format = newer_format(data, len);
    } else if (strcmp(set->m.id, set->id) != 0) {
        /* A manifest copied into the wrong directory describes other objects. */
        set->problem =
            xasprintf("manifest invalid: its id %s differs from its directory %s", set->m.id, set->id);
        set->unreadable = true;
        manifest_free(&set->m);
    } else {
        set->complete = true;
        check_objects(set);
    }
    free(data);
    return 0;
}

int catalog_check_name(const char *name, sv_error *err)
{
    /* the name is the first segment of every key: one that a later list or
     * restore could not read back is refused before anything is written */
    if (name && *name && !strchr(name, '/') && name[0] != '.' && manifest_key_is_safe(name))
        return 0;
    sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_NAME '%s' cannot name a series of sets", name ? name : "");
    return sv_error_hint(err, "use letters, digits, '-' and '_', e.g. app-prod");
}

int catalog_load(storage *st, const char *name, catalog *out, sv_error *err)
{
    memset(out, 0, sizeof *out);
    if (catalog_check_name(name, err) != 0)
        return -1;
    out->name = xstrdup(name);
    out->url = xstrdup(storage_url(st));

    char *prefix = xasprintf("%s/", name);
    load_ctx lc = {.prefix = prefix, .plen = strlen(prefix)};
    int rc = storage_list(st, prefix, true, collect_object, &lc, err);
    free(prefix);
    if (rc == 0 && lc.n > 1)
        qsort(lc.sets, lc.n, sizeof *lc.sets, newest_first);

    out->sets = xcalloc(lc.n ? lc.n : 1, sizeof *out->sets);
    for (size_t i = 0; i < lc.n; i++)
        out->sets[out->n++] = lc.sets[i].set; /* owned by out from here, freed with it */
    if (rc != 0) {
        free(lc.sets);
        catalog_free(out);
        return sv_error_wrap(err, "listing the sets of series %s", name);
    }
    for (size_t i = 0; i < lc.n; i++) {
        if (load_manifest(st, name, &lc.sets[i], &out->sets[i], err) != 0) {
            sv_error_wrap(err, "reading set %s of series %s", out->sets[i].id, name);
            free(lc.sets);
            catalog_free(out);
            return -1;
        }
    }
    free(lc.sets);
    return 0;
}

void catalog_free(catalog *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->sets[i].problem);
        free(c->sets[i].damage);
        free(c->sets[i].artifact_damaged);
        free(c->sets[i].object_sizes);
        manifest_free(&c->sets[i].m);
        for (size_t j = 0; j < c->sets[i].n_objects; j++)
            free(c->sets[i].objects[j]);
        free(c->sets[i].objects);
        set_record *recs[] = {c->sets[i].verify_record, c->sets[i].drill_record};
        for (size_t j = 0; j < 2; j++)
            if (recs[j]) {
                record_free(recs[j]);
                free(recs[j]);
            }
        free(c->sets[i].record_problem);
    }
    free(c->sets);
    free(c->name);
    free(c->url);
    memset(c, 0, sizeof *c);
}

static const char *series(const catalog *c)
{
    return c->name ? c->name : "?";
}

static const char *where(const catalog *c)
{
    return c->url ? c->url : "the storage";
}

/* The newest complete set taken by a backup run. Safety sets (taken before
 * a restore --clean) are skipped: re-running a restore Job with "latest"
 * must not restore the copy of the database it just replaced. */
static const catalog_set *newest_complete(const catalog *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->sets[i].complete && strcmp(c->sets[i].m.reason, "safety") != 0)
            return &c->sets[i];
    return NULL;
}

/* "A, B (incomplete), C, and 4 more" into buf. */
static void list_newest(const catalog *c, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->n && i < PICK_LIST_MAX && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s%s", i ? ", " : "", c->sets[i].id,
                              c->sets[i].complete ? "" : " (incomplete)");
    if (c->n > PICK_LIST_MAX && o < size)
        snprintf(buf + o, size - o, ", and %zu older", c->n - PICK_LIST_MAX);
}

static const catalog_set *find_id(const catalog *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->sets[i].id, id) == 0)
            return &c->sets[i];
    return NULL;
}

const catalog_set *catalog_pick(const catalog *c, const char *which, sv_error *err)
{
    if (!which || strcmp(which, "latest") == 0) {
        const catalog_set *s = newest_complete(c);
        if (s)
            return s;
        if (c->n == 0) {
            sv_error_set(err, SV_EXIT_FAILED, "series %s has no backup sets at %s", series(c), where(c));
            sv_error_hint(err, "check SAUVE_STORAGE and SAUVE_NAME, or run sauve backup first");
            return NULL;
        }
        size_t incomplete = 0;
        for (size_t i = 0; i < c->n; i++)
            incomplete += !c->sets[i].complete;
        sv_error_set(
            err, SV_EXIT_FAILED,
            "series %s at %s has no complete backup set: %zu incomplete, %zu safety cop%s (newest %s: %s)",
            series(c), where(c), incomplete, c->n - incomplete, c->n - incomplete == 1 ? "y" : "ies",
            c->sets[0].id, c->sets[0].problem ? c->sets[0].problem : "a safety copy, pick it with --set");
        sv_error_hint(err, "sauve list shows each set and why it is incomplete");
        return NULL;
    }

    if (set_id_parse(which, NULL) != 0) {
        sv_error_set(err, SV_EXIT_USAGE,
                     "--set \"%.40s\" is neither latest nor a set id like 20261122T020000Z-482a3f91", which);
        sv_error_hint(err, "sauve list shows the sets of series %s", series(c));
        return NULL;
    }
    if (strlen(which) == SET_ID_TIME_LEN && !find_id(c, which)) {
        /* The time alone (what a schedule says) names the set of that
         * second when there is exactly one. */
        const catalog_set *only = NULL;
        size_t n = 0;
        for (size_t i = 0; i < c->n; i++)
            if (strncmp(c->sets[i].id, which, SET_ID_TIME_LEN) == 0) {
                only = &c->sets[i];
                n++;
            }
        if (n > 1) {
            sv_error_set(err, SV_EXIT_USAGE, "--set %s names %zu sets of series %s started in that second",
                         which, n, series(c));
            sv_error_hint(err, "give the whole id (sauve list shows them)");
            return NULL;
        }
        if (only)
            which = only->id;
    }

    for (size_t i = 0; i < c->n; i++) {
        const catalog_set *s = &c->sets[i];
        if (strcmp(s->id, which) != 0)
            continue;
        if (s->complete)
            return s;
        sv_error_set(err, SV_EXIT_FAILED, "set %s of series %s is incomplete: %s", s->id, series(c),
                     s->problem);
        const catalog_set *nc = newest_complete(c);
        if (nc)
            sv_error_hint(err, "the newest complete set is %s (--set latest)", nc->id);
        return NULL;
    }

    if (c->n == 0) {
        sv_error_set(err, SV_EXIT_FAILED, "set %s does not exist: series %s has no backup sets at %s", which,
                     series(c), where(c));
        return NULL;
    }
    char sets[256];
    list_newest(c, sets, sizeof sets);
    sv_error_set(err, SV_EXIT_FAILED, "set %s does not exist in series %s at %s; newest sets: %s", which,
                 series(c), where(c), sets);
    return NULL;
}

const manifest_artifact *catalog_usable_artifact(const catalog_set *s, const char *kind, const char *name)
{
    if (!s->complete)
        return NULL;
    for (size_t i = 0; i < s->m.n_artifacts; i++) {
        const manifest_artifact *a = &s->m.artifacts[i];
        if (strcmp(a->kind, kind) == 0 && strcmp(a->name, name) == 0)
            return a->ok && !(s->artifact_damaged && s->artifact_damaged[i]) ? a : NULL;
    }
    return NULL;
}

char *catalog_object_key(const char *name, const char *set_id, const char *relkey)
{
    return xasprintf("%s/%s/%s", name, set_id, relkey);
}

/* ---- records of verify and drill ----------------------------------------- */

static bool has_object(const catalog_set *s, const char *rel)
{
    for (size_t i = 0; i < s->n_objects; i++)
        if (strcmp(s->objects[i], rel) == 0)
            return true;
    return false;
}

void catalog_load_records(storage *st, catalog *c)
{
    static const char *const commands[] = {"verify", "drill"};
    for (size_t i = 0; i < c->n; i++) {
        catalog_set *s = &c->sets[i];
        if (!s->complete)
            continue;
        for (size_t j = 0; j < 2; j++) {
            const char *rel = record_key(commands[j]);
            if (!has_object(s, rel))
                continue;
            char *key = catalog_object_key(series(c), s->id, rel);
            char *data = NULL;
            size_t len = 0;
            sv_error gerr = {0};
            int rc = storage_get(st, key, RECORD_MAX_BYTES, &data, &len, &gerr);
            set_record *rec = NULL;
            if (rc == 0) {
                rec = xcalloc(1, sizeof *rec);
                if (record_from_json(data, len, rec, &gerr) != 0 || strcmp(rec->set_id, s->id) != 0 ||
                    strcmp(rec->command, commands[j]) != 0) {
                    if (!sv_error_isset(&gerr))
                        sv_error_set(&gerr, SV_EXIT_FAILED, "it names another set or command");
                    record_free(rec);
                    free(rec);
                    rec = NULL;
                }
            }
            if (!rec && !s->record_problem)
                s->record_problem = xasprintf("record %s cannot be read: %s", key, gerr.msg);
            if (j == 0)
                s->verify_record = rec;
            else
                s->drill_record = rec;
            free(data);
            free(key);
        }
    }
}

int catalog_store_record(storage *st, const char *name, const set_record *r, sv_error *err)
{
    const char *rel = record_key(r->command);
    char *key = catalog_object_key(name, r->set_id, rel);
    char *json = record_to_json(r);
    int rc = storage_put(st, key, json, strlen(json), err);
    if (rc != 0)
        sv_error_wrap(err, "the %s record %s was not stored", r->command, key);
    free(json);
    free(key);
    return rc;
}
