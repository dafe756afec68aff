#include "testutil.h"

#include "catalog/catalog.h"
#include "common/mem.h"
#include "manifest/manifest.h"
#include "storage/storage.h"
#include "storage/storage_intern.h"

typedef struct {
    char *dir;
    storage *st;
} fixture;

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    f->dir = test_tmpdir();
    char *url = xasprintf("file://%s", f->dir);
    sv_error err = {0};
    f->st = storage_open(url, NULL, &err);
    free(url);
    if (!f->st) {
        fprintf(stderr, "storage_open: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    storage_close(f->st);
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Stores key with content; returns its size. */
static uint64_t put(storage *st, const char *key, const char *content)
{
    sv_error err = {0};
    if (storage_put(st, key, content, strlen(content), &err) != 0)
        fail_msg("storage_put %s: %s", key, err.msg);
    return strlen(content);
}

/* A complete set: one dump object and its manifest, the manifest's id being
 * manifest_id (normally the set's own). Returns the bytes stored. */
static uint64_t put_set_reason(storage *st, const char *name, const char *set_id, const char *manifest_id,
                               const char *dump, const char *reason)
{
    manifest m = {0};
    snprintf(m.id, sizeof m.id, "%s", manifest_id);
    assert_int_equal(set_id_parse(set_id, &m.started), 0);
    m.finished = m.started + 30;
    m.name = xstrdup(name);
    m.reason = xstrdup(reason);
    m.sauve_version = xstrdup("0.1.0");
    manifest_artifact *a = manifest_add(&m);
    a->ok = true;
    a->kind = xstrdup("postgres");
    a->name = xstrdup("app");
    a->key = xstrdup("postgres/app.dump.zst");
    a->format = xstrdup("pg_dump-custom");
    a->compression = xstrdup("zstd");
    a->bytes_in = 10 * strlen(dump);
    a->bytes_out = strlen(dump);
    memset(a->sha256, 'e', 64);
    manifest_update_status(&m);
    char *json = manifest_to_json(&m);
    manifest_free(&m);

    char *dkey = catalog_object_key(name, set_id, "postgres/app.dump.zst");
    char *mkey = catalog_object_key(name, set_id, MANIFEST_FILENAME);
    uint64_t n = put(st, dkey, dump) + put(st, mkey, json);
    free(dkey);
    free(mkey);
    free(json);
    return n;
}

#define S_INCOMPLETE "20261123T020000Z"
#define S_NEW        "20261122T020000Z"
#define S_OLD        "20261121T020000Z"
#define S_CORRUPT    "20261120T020000Z"

typedef struct {
    uint64_t bytes_new, bytes_old, bytes_incomplete, bytes_corrupt;
} layout;

static uint64_t put_set(storage *st, const char *name, const char *set_id, const char *manifest_id,
                        const char *dump)
{
    return put_set_reason(st, name, set_id, manifest_id, dump, "backup");
}

static layout make_series(storage *st)
{
    layout l = {0};
    l.bytes_new = put_set(st, "default", S_NEW, S_NEW, "dump of the 22nd, a bit longer");
    l.bytes_old = put_set(st, "default", S_OLD, S_OLD, "dump of the 21st");
    /* Interrupted: objects, no manifest. */
    l.bytes_incomplete = put(st, "default/" S_INCOMPLETE "/postgres/globals.sql.zst", "globals") +
                         put(st, "default/" S_INCOMPLETE "/postgres/app.dump.zst", "half a dump");
    l.bytes_corrupt = put(st, "default/" S_CORRUPT "/postgres/app.dump.zst", "dump of the 20th") +
                      put(st, "default/" S_CORRUPT "/manifest.json", "{\"format\": 1, \"id\": ");
    /* Not sets: a stray object, a directory that is no set id, another series. */
    put(st, "default/README.txt", "hands off");
    put(st, "default/20261124T020000Z", "an object named like a set");
    put(st, "default/scratch/x", "x");
    put(st, "default/20261199T020000Z/manifest.json", "{}");
    put_set(st, "other", "20261125T020000Z", "20261125T020000Z", "other series");
    return l;
}

static void test_load(void **state)
{
    fixture *f = *state;
    layout l = make_series(f->st);
    catalog c;
    sv_error err = {0};
    assert_int_equal(catalog_load(f->st, "default", &c, &err), 0);

    assert_int_equal(c.n, 4);
    assert_string_equal(c.sets[0].id, S_INCOMPLETE);
    assert_string_equal(c.sets[1].id, S_NEW);
    assert_string_equal(c.sets[2].id, S_OLD);
    assert_string_equal(c.sets[3].id, S_CORRUPT);

    assert_false(c.sets[0].complete);
    assert_string_equal(c.sets[0].problem, "no manifest (interrupted or in progress)");
    assert_true(c.sets[0].stored_bytes == l.bytes_incomplete);
    assert_int_equal(c.sets[0].n_objects, 2);

    assert_true(c.sets[1].complete);
    assert_null(c.sets[1].problem);
    assert_string_equal(c.sets[1].m.id, S_NEW);
    assert_non_null(manifest_find(&c.sets[1].m, "postgres", "app"));
    assert_true(c.sets[1].stored_bytes == l.bytes_new);
    assert_int_equal(c.sets[1].n_objects, 2);

    assert_true(c.sets[2].complete);
    assert_true(c.sets[2].stored_bytes == l.bytes_old);
    assert_true(c.sets[1].stored_bytes != c.sets[2].stored_bytes);

    assert_false(c.sets[3].complete);
    assert_non_null(c.sets[3].problem);
    assert_int_equal(strncmp(c.sets[3].problem, "manifest invalid: ", 18), 0);
    assert_non_null(strstr(c.sets[3].problem, "JSON"));
    assert_true(c.sets[3].stored_bytes == l.bytes_corrupt);
    /* An invalid manifest is not handed out half-parsed. */
    assert_int_equal(c.sets[3].m.n_artifacts, 0);
    for (size_t i = 0; i < c.n; i++)
        assert_false(c.sets[i].newer_format);

    catalog_free(&c);
    assert_null(c.sets);
    assert_int_equal(c.n, 0);
}

/* A listing in another order than S3's: the objects of each set interleaved
 * with the others'. Each set must still be one set (found by fuzz_catalog:
 * sets came back twice, once without their manifest, which prune would have
 * deleted as incomplete). */
static const struct storage_backend *g_real_backend;

struct listed {
    char *key;
    uint64_t size;
    int64_t mtime;
    bool is_prefix;
};

struct listed_all {
    struct listed *items;
    size_t n;
};

static int collect(void *ctx, const storage_entry *e)
{
    struct listed_all *l = ctx;
    l->items = xrealloc(l->items, (l->n + 1) * sizeof *l->items);
    l->items[l->n++] = (struct listed){xstrdup(e->key), e->size, e->mtime, e->is_prefix};
    return 0;
}

/* Backwards by what follows NAME/SETID/, then by key: "d/S2/x", "d/S1/x", "d/S2/m", "d/S1/m". */
static int by_tail(const void *pa, const void *pb)
{
    const char *a = ((const struct listed *)pa)->key, *b = ((const struct listed *)pb)->key;
    const char *sa = strchr(a, '/'), *sb = strchr(b, '/');
    const char *ta = sa && strchr(sa + 1, '/') ? strchr(sa + 1, '/') : a;
    const char *tb = sb && strchr(sb + 1, '/') ? strchr(sb + 1, '/') : b;
    int c = strcmp(ta, tb);
    return -(c ? c : strcmp(a, b));
}

static int interleaved_list(storage *st, const char *prefix, bool recursive, storage_list_cb cb, void *ctx,
                            sv_error *err)
{
    struct listed_all l = {0};
    int rc = g_real_backend->list(st, prefix, recursive, collect, &l, err);
    qsort(l.items, l.n, sizeof *l.items, by_tail);
    for (size_t i = 0; i < l.n; i++) {
        storage_entry e = {l.items[i].key, l.items[i].size, l.items[i].mtime, l.items[i].is_prefix};
        if (rc == 0)
            rc = cb(ctx, &e);
        free(l.items[i].key);
    }
    free(l.items);
    return rc;
}

static void test_unordered_listing(void **state)
{
    fixture *f = *state;
    make_series(f->st);
    catalog sorted;
    sv_error err = {0};
    assert_int_equal(catalog_load(f->st, "default", &sorted, &err), 0);

    struct storage_backend interleaved = *f->st->backend;
    interleaved.list = interleaved_list;
    g_real_backend = f->st->backend;
    f->st->backend = &interleaved;
    catalog c;
    int rc = catalog_load(f->st, "default", &c, &err);
    f->st->backend = g_real_backend;
    assert_int_equal(rc, 0);
    assert_int_equal(c.n, sorted.n); /* each set once */
    for (size_t i = 0; i < c.n; i++) {
        assert_string_equal(c.sets[i].id, sorted.sets[i].id);
        assert_int_equal(c.sets[i].complete, sorted.sets[i].complete);
        assert_int_equal(c.sets[i].n_objects, sorted.sets[i].n_objects);
        assert_true(c.sets[i].stored_bytes == sorted.sets[i].stored_bytes);
    }
    catalog_free(&c);
    catalog_free(&sorted);
}

static void test_pick(void **state)
{
    fixture *f = *state;
    make_series(f->st);
    catalog c;
    sv_error err = {0};
    assert_int_equal(catalog_load(f->st, "default", &c, &err), 0);

    const catalog_set *s = catalog_pick(&c, NULL, &err);
    assert_non_null(s);
    assert_string_equal(s->id, S_NEW); /* skips the newer incomplete set */
    assert_ptr_equal(catalog_pick(&c, "latest", &err), s);

    s = catalog_pick(&c, S_OLD, &err);
    assert_non_null(s);
    assert_string_equal(s->id, S_OLD);
    assert_true(s->complete);

    sv_error_clear(&err);
    assert_null(catalog_pick(&c, S_INCOMPLETE, &err));
    assert_int_equal(err.code, SV_EXIT_FAILED);
    assert_non_null(strstr(err.msg, S_INCOMPLETE));
    assert_non_null(strstr(err.msg, "incomplete"));
    assert_non_null(strstr(err.msg, "no manifest"));
    assert_non_null(strstr(err.hint, S_NEW));

    sv_error_clear(&err);
    assert_null(catalog_pick(&c, S_CORRUPT, &err));
    assert_non_null(strstr(err.msg, S_CORRUPT));
    assert_non_null(strstr(err.msg, "manifest invalid"));

    sv_error_clear(&err);
    assert_null(catalog_pick(&c, "20250101T000000Z", &err));
    assert_non_null(strstr(err.msg, "20250101T000000Z does not exist"));
    assert_non_null(strstr(err.msg, S_NEW ", " S_OLD));
    assert_non_null(strstr(err.msg, S_INCOMPLETE " (incomplete)"));

    sv_error_clear(&err);
    assert_null(catalog_pick(&c, "yesterday", &err));
    assert_int_equal(err.code, SV_EXIT_USAGE);
    assert_non_null(strstr(err.msg, "yesterday"));

    catalog_free(&c);
}

/* Ids with a random suffix (this sauve) beside ids without (older ones),
 * two of them in the same second. */
#define S_SUFFIX_A "20261122T020000Z-0a1b2c"
#define S_SUFFIX_B "20261122T020000Z-ffee00"
#define S_SUFFIX_C "20261123T020000Z-123abc"

static void test_ids_with_and_without_suffix(void **state)
{
    fixture *f = *state;
    put_set(f->st, "default", S_NEW, S_NEW, "old-style id");
    put_set(f->st, "default", S_SUFFIX_A, S_SUFFIX_A, "first run of the second");
    put_set(f->st, "default", S_SUFFIX_B, S_SUFFIX_B, "second run of the second");
    put_set(f->st, "default", S_SUFFIX_C, S_SUFFIX_C, "next day");
    put_set(f->st, "default", S_OLD, S_OLD, "day before");
    /* not set ids: an uppercase suffix, an empty one */
    put(f->st, "default/20261124T020000Z-ABC/manifest.json", "{}");
    put(f->st, "default/20261124T020000Z-/x", "x");
    catalog c;
    sv_error err = {0};
    assert_int_equal(catalog_load(f->st, "default", &c, &err), 0);

    /* newest first by time; each set whole, although "T-a/" lists before "T/" */
    assert_int_equal(c.n, 5);
    const char *order[] = {S_SUFFIX_C, S_SUFFIX_B, S_SUFFIX_A, S_NEW, S_OLD};
    for (size_t i = 0; i < c.n; i++) {
        assert_string_equal(c.sets[i].id, order[i]);
        assert_true(c.sets[i].complete);
        assert_int_equal(c.sets[i].n_objects, 2);
    }
    assert_string_equal(catalog_pick(&c, "latest", &err)->id, S_SUFFIX_C);

    /* --set: the whole id, old or new; the time alone when one set has it */
    assert_string_equal(catalog_pick(&c, S_SUFFIX_A, &err)->id, S_SUFFIX_A);
    assert_string_equal(catalog_pick(&c, S_NEW, &err)->id, S_NEW); /* an exact old id wins */
    assert_string_equal(catalog_pick(&c, "20261123T020000Z", &err)->id, S_SUFFIX_C);
    sv_error_clear(&err);
    assert_null(catalog_pick(&c, "20261123T020000Z-123abd", &err));
    assert_non_null(strstr(err.msg, "does not exist"));
    catalog_free(&c);

    /* the time of two sets and of no old-style set: ambiguous */
    put_set(f->st, "pair", S_SUFFIX_A, S_SUFFIX_A, "a");
    put_set(f->st, "pair", S_SUFFIX_B, S_SUFFIX_B, "b");
    assert_int_equal(catalog_load(f->st, "pair", &c, &err), 0);
    sv_error_clear(&err);
    assert_null(catalog_pick(&c, S_NEW, &err));
    assert_int_equal(err.code, SV_EXIT_USAGE);
    assert_non_null(strstr(err.msg, "names 2 sets"));
    catalog_free(&c);
}

static void test_empty_series(void **state)
{
    fixture *f = *state;
    make_series(f->st);
    catalog c;
    sv_error err = {0};
    assert_int_equal(catalog_load(f->st, "nothing", &c, &err), 0);
    assert_int_equal(c.n, 0);
    assert_null(catalog_pick(&c, "latest", &err));
    assert_non_null(strstr(err.msg, "series nothing has no backup sets"));
    assert_non_null(strstr(err.msg, storage_url(f->st)));
    sv_error_clear(&err);
    assert_null(catalog_pick(&c, S_NEW, &err));
    assert_non_null(strstr(err.msg, S_NEW));
    assert_non_null(strstr(err.msg, "no backup sets"));
    catalog_free(&c);
}

static void test_only_incomplete(void **state)
{
    fixture *f = *state;
    put(f->st, "default/" S_NEW "/postgres/app.dump.zst", "partial");
    put(f->st, "default/" S_OLD "/manifest.json", "[]");
    catalog c;
    sv_error err = {0};
    assert_int_equal(catalog_load(f->st, "default", &c, &err), 0);
    assert_int_equal(c.n, 2);
    assert_null(catalog_pick(&c, NULL, &err));
    assert_non_null(strstr(err.msg, "no complete backup set: 2 incomplete, 0 safety copies"));
    assert_non_null(strstr(err.msg, "default"));
    catalog_free(&c);
}

static void test_manifest_in_wrong_directory(void **state)
{
    fixture *f = *state;
    put_set(f->st, "default", S_OLD, S_NEW, "copied here by hand");
    catalog c;
    sv_error err = {0};
    assert_int_equal(catalog_load(f->st, "default", &c, &err), 0);
    assert_int_equal(c.n, 1);
    assert_false(c.sets[0].complete);
    assert_non_null(strstr(c.sets[0].problem, "manifest invalid"));
    assert_non_null(strstr(c.sets[0].problem, S_NEW));
    assert_null(c.sets[0].m.name); /* freed, not left for a caller to trust */
    catalog_free(&c);
}

static void test_newer_format(void **state)
{
    fixture *f = *state;
    put_set(f->st, "default", S_OLD, S_OLD, "old");
    put(f->st, "default/" S_NEW "/manifest.json",
        "{\"format\": 2, \"id\": \"" S_NEW "\", \"shape\": \"new\"}");
    catalog c;
    sv_error err = {0};
    assert_int_equal(catalog_load(f->st, "default", &c, &err), 0);
    assert_int_equal(c.n, 2);
    assert_false(c.sets[0].complete);
    assert_true(c.sets[0].newer_format);
    assert_non_null(strstr(c.sets[0].problem, "upgrade sauve"));
    assert_true(c.sets[1].complete);
    assert_false(c.sets[1].newer_format);
    assert_string_equal(catalog_pick(&c, "latest", &err)->id, S_OLD);
    catalog_free(&c);
}

static void test_bad_series_name(void **state)
{
    fixture *f = *state;
    catalog c;
    sv_error err = {0};
    assert_int_equal(catalog_load(f->st, "a/../b", &c, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, "SAUVE_NAME"));
}

/* A safety copy taken before restore --clean is newer than the backup it
 * was taken for; "latest" must still mean the newest backup, or re-running
 * the restore would restore the copy of what it just replaced. */
static void test_latest_skips_safety_sets(void **state)
{
    fixture *f = *state;
    put_set(f->st, "db", "20261120T020000Z", "20261120T020000Z", "backup");
    put_set_reason(f->st, "db", "20261121T093000Z", "20261121T093000Z", "safety copy", "safety");
    sv_error err = {0};
    catalog c = {0};
    assert_int_equal(catalog_load(f->st, "db", &c, &err), 0);
    assert_int_equal(c.n, 2);
    const catalog_set *s = catalog_pick(&c, "latest", &err);
    assert_non_null(s);
    assert_string_equal(s->id, "20261120T020000Z");
    s = catalog_pick(&c, "20261121T093000Z", &err);
    assert_non_null(s);
    assert_string_equal(s->m.reason, "safety");
    catalog_free(&c);
}

static void test_object_key(void **state)
{
    (void)state;
    char *k = catalog_object_key("default", S_NEW, "postgres/app.dump.zst");
    assert_string_equal(k, "default/" S_NEW "/postgres/app.dump.zst");
    free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unordered_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_with_and_without_suffix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_incomplete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_in_wrong_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_series_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latest_skips_safety_sets, setup, teardown),
        cmocka_unit_test(test_object_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
