#include "testutil.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "storage/storage.h"

struct fixture {
    char *tmp;  /* test directory */
    char *root; /* storage root inside it, created by the first write */
    storage *st;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    f->tmp = test_tmpdir();
    f->root = xasprintf("%s/backups/sauve", f->tmp);
    char *url = xasprintf("file://%s/", f->root); /* trailing slash is tolerated */
    sv_error err = {0};
    f->st = storage_open(url, NULL, &err);
    assert_non_null(f->st);
    assert_string_equal(storage_url(f->st), url);
    free(url);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    storage_close(f->st);
    test_rmtree(f->tmp);
    free(f->tmp);
    free(f->root);
    free(f);
    return 0;
}

static void put(storage *st, const char *key, const char *text)
{
    sv_error err = {0};
    assert_int_equal(storage_put(st, key, text, strlen(text), &err), 0);
}

static char *get(storage *st, const char *key)
{
    sv_error err = {0};
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(storage_get(st, key, 1 << 20, &data, &len, &err), 0);
    assert_int_equal(strlen(data), len);
    return data;
}

/* Names in dir, hidden ones included, sorted and joined by spaces. */
static char *dir_names(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[64];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            assert_true(n < 64);
            names[n++] = xstrdup(de->d_name);
        }
    closedir(d);
    qsort(names, n, sizeof *names, (int (*)(const void *, const void *))strcmp);
    char *out = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        char *next = xasprintf("%s%s%s", out, i ? " " : "", names[i]);
        free(out);
        free(names[i]);
        out = next;
    }
    return out;
}

/* ---- put, get, read ---------------------------------------------------- */

static void test_put_get(void **state)
{
    struct fixture *f = *state;
    put(f->st, "default/20261122T020000Z/manifest.json", "{\"format\":1}");
    char *data = get(f->st, "default/20261122T020000Z/manifest.json");
    assert_string_equal(data, "{\"format\":1}");
    free(data);

    /* an empty object is an object */
    put(f->st, "empty", "");
    data = get(f->st, "empty");
    assert_string_equal(data, "");
    free(data);

    /* larger than max: refused, naming the key */
    sv_error err = {0};
    size_t len;
    data = NULL;
    assert_int_equal(storage_get(f->st, "default/20261122T020000Z/manifest.json", 4, &data, &len, &err), -1);
    assert_null(data);
    assert_non_null(strstr(err.msg, "manifest.json"));

    /* missing: code 1, naming key and storage */
    sv_error_clear(&err);
    assert_int_equal(storage_get(f->st, "default/nope.json", 100, &data, &len, &err), -1);
    assert_int_equal(err.code, SV_EXIT_FAILED);
    char *want = xasprintf("object default/nope.json not found in %s", storage_url(f->st));
    assert_string_equal(err.msg, want);
    free(want);
    /* a directory is not an object */
    sv_error_clear(&err);
    assert_int_equal(storage_get(f->st, "default", 100, &data, &len, &err), -1);
    assert_non_null(strstr(err.msg, "not found"));
}

static void test_stream_large_object(void **state)
{
    struct fixture *f = *state;
    enum { LEN = 3 * 1024 * 1024 + 77 }; /* several 1 MiB buffers and a tail */
    unsigned char *data = xmalloc(LEN);
    for (size_t i = 0; i < LEN; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    sv_error err = {0};
    stream *w = storage_write(f->st, "set/big.bin", &err);
    assert_non_null(w);
    for (size_t off = 0; off < LEN; off += 100000)
        assert_int_equal(stream_write(w, data + off, LEN - off < 100000 ? LEN - off : 100000, &err), 0);
    assert_int_equal(stream_finish(w, &err), 0);
    stream_free(w);

    storage_entry e;
    assert_int_equal(storage_stat(f->st, "set/big.bin", &e, &err), 0);
    assert_int_equal(e.size, LEN);
    assert_string_equal(e.key, "set/big.bin");
    assert_true(e.mtime > 0);
    assert_false(e.is_prefix);

    stream *sink = buffer_sink(SIZE_MAX);
    stream *c = count_stage(sink);
    assert_int_equal(storage_read(f->st, "set/big.bin", c, &err), 0);
    assert_int_equal(stream_finish(c, &err), 0);
    assert_int_equal(count_stage_bytes(c), LEN);
    size_t n;
    const void *p = buffer_sink_data(sink, &n);
    assert_int_equal(n, LEN);
    assert_memory_equal(p, data, LEN);
    stream_free(c);
    free(data);
}

/* ---- atomicity ------------------------------------------------------------ */

static void test_abort_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    sv_error err = {0};
    stream *w = storage_write(f->st, "set/a.dump.zst", &err);
    assert_non_null(w);
    assert_int_equal(stream_write(w, "partial", 7, &err), 0);
    stream_abort(w);
    stream_free(w);

    assert_int_equal(storage_stat(f->st, "set/a.dump.zst", NULL, &err), 1);
    char *dir = xasprintf("%s/set", f->root);
    char *names = dir_names(dir);
    assert_string_equal(names, ""); /* no temp file either */
    free(names);
    free(dir);

    /* freed without finish or abort: discarded the same way */
    w = storage_write(f->st, "set/b", &err);
    assert_int_equal(stream_write(w, "x", 1, &err), 0);
    stream_free(w);
    assert_int_equal(storage_stat(f->st, "set/b", NULL, &err), 1);
    dir = xasprintf("%s/set", f->root);
    names = dir_names(dir);
    assert_string_equal(names, "");
    free(names);
    free(dir);
}

static void test_replace_is_atomic(void **state)
{
    struct fixture *f = *state;
    put(f->st, "set/manifest.json", "old");
    sv_error err = {0};
    stream *w = storage_write(f->st, "set/manifest.json", &err);
    assert_non_null(w);
    assert_int_equal(stream_write(w, "new content", 11, &err), 0);

    /* before finish: readers see the old object, listings hide the temp */
    char *data = get(f->st, "set/manifest.json");
    assert_string_equal(data, "old");
    free(data);
    char *dir = xasprintf("%s/set", f->root);
    char *names = dir_names(dir);
    assert_non_null(strstr(names, ".manifest.json.tmp-")); /* the hidden temp exists... */
    free(names);

    assert_int_equal(stream_finish(w, &err), 0);
    stream_free(w);
    data = get(f->st, "set/manifest.json");
    assert_string_equal(data, "new content");
    free(data);
    names = dir_names(dir);
    assert_string_equal(names, "manifest.json"); /* ...and is gone after the rename */
    free(names);
    free(dir);
}

/* ---- list ----------------------------------------------------------------- */

struct collect {
    char buf[1024];
    size_t stop_after; /* 0: never */
    size_t n;
};

static int collect_cb(void *ctx, const storage_entry *e)
{
    struct collect *c = ctx;
    size_t len = strlen(c->buf);
    snprintf(c->buf + len, sizeof c->buf - len, "%s%s%s", len ? " " : "", e->key, e->is_prefix ? "(p)" : "");
    if (e->is_prefix)
        assert_int_equal(e->key[strlen(e->key) - 1], '/');
    else
        assert_int_equal(e->size, strlen(e->key)); /* each object holds its own key */
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static const char *list(storage *st, const char *prefix, bool recursive, struct collect *c)
{
    memset(c, 0, sizeof *c);
    sv_error err = {0};
    assert_int_equal(storage_list(st, prefix, recursive, collect_cb, c, &err), 0);
    return c->buf;
}

static void test_list(void **state)
{
    struct fixture *f = *state;
    struct collect c;
    /* before anything exists: empty, not an error */
    assert_string_equal(list(f->st, "", true, &c), "");

    /* chosen so that sorting by name alone gets the order wrong: '-' < '/' < '0' */
    const char *keys[] = {"top", "b/x", "a0", "a/z/w", "a-b", "a/y", "a/z/v"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        put(f->st, keys[i], keys[i]);
    /* a write in progress is invisible */
    sv_error err = {0};
    stream *w = storage_write(f->st, "a/inflight", &err);
    assert_non_null(w);

    assert_string_equal(list(f->st, "", true, &c), "a-b a/y a/z/v a/z/w a0 b/x top");
    assert_string_equal(list(f->st, "", false, &c), "a-b a/(p) a0 b/(p) top");
    assert_string_equal(list(f->st, "a/", false, &c), "a/y a/z/(p)");
    assert_string_equal(list(f->st, "a/", true, &c), "a/y a/z/v a/z/w");
    /* a prefix is a string prefix, as on S3, not only a directory */
    assert_string_equal(list(f->st, "a", true, &c), "a-b a/y a/z/v a/z/w a0");
    assert_string_equal(list(f->st, "a", false, &c), "a-b a/(p) a0");
    assert_string_equal(list(f->st, "a/z/", false, &c), "a/z/v a/z/w");
    assert_string_equal(list(f->st, "nothing/", true, &c), "");
    assert_string_equal(list(f->st, "top/", true, &c), ""); /* under a file */

    /* the callback can stop the listing */
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    assert_int_equal(storage_list(f->st, "", true, collect_cb, &c, &err), 0);
    assert_string_equal(c.buf, "a-b a/y");

    stream_abort(w);
    stream_free(w);
}

/* stderr into a temporary file until captured_end, which returns what was
 * written (newly allocated). */
struct captured {
    int saved;
    FILE *tmp;
};

static struct captured captured_begin(void)
{
    fflush(stderr);
    struct captured c = {.saved = dup(STDERR_FILENO), .tmp = tmpfile()};
    assert_non_null(c.tmp);
    assert_true(dup2(fileno(c.tmp), STDERR_FILENO) >= 0);
    return c;
}

static char *captured_end(struct captured *c)
{
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    long n = ftell(c->tmp);
    char *out = xcalloc(1, (size_t)n + 1);
    rewind(c->tmp);
    assert_int_equal(fread(out, 1, (size_t)n, c->tmp), (size_t)n);
    fclose(c->tmp);
    return out;
}

static size_t occurrences(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

static void make_file(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
    free(path);
}

/* Names no key can have, made by something else in the storage: skipped by
 * every listing, each reported once, and everything else listed. */
static void test_foreign_names_are_skipped_and_reported_once(void **state)
{
    struct fixture *f = *state;
    put(f->st, "a/good", "a/good");
    char *a = xasprintf("%s/a", f->root);
    make_file(a, "bad\x01name");
    make_file(a, "\xff\xfe");
    char *sub = xasprintf("%s/ctl\x02"
                          "dir",
                          a);
    assert_int_equal(mkdir(sub, 0700), 0);
    make_file(sub, "x");

    log_init(LOG_FORMAT_JSON, LOG_WARN);
    struct captured cap = captured_begin();
    struct collect c;
    const char *r1 = list(f->st, "a/", true, &c);
    bool first_ok = strcmp(r1, "a/good") == 0;
    const char *r2 = list(f->st, "a/", false, &c);
    bool second_ok = strcmp(r2, "a/good") == 0;
    list(f->st, "", true, &c);
    char *logged = captured_end(&cap);
    log_init(LOG_FORMAT_TEXT, LOG_ERROR);
    if (!first_ok || !second_ok)
        fail_msg("listed more than a/good; log: %s", logged);

    /* three objects and one prefix, each named once, escaped */
    assert_int_equal(occurrences(logged, "skipping the"), 4);
    assert_int_equal(occurrences(logged, "'a/bad\\\\x01name': it has a control character"), 1);
    assert_int_equal(occurrences(logged, "'a/\\\\xff\\\\xfe': it is not valid UTF-8"), 1);
    assert_int_equal(occurrences(logged, "the object 'a/ctl\\\\x02dir/x'"), 1);
    assert_int_equal(occurrences(logged, "the prefix 'a/ctl\\\\x02dir/'"), 1);
    assert_null(strchr(logged, '\x01'));
    assert_null(strchr(logged, '\x02'));
    free(logged);

    /* and no such key can be written, read or deleted */
    sv_error err = {0};
    assert_null(storage_write(f->st, "a/new\x1b[2J", &err));
    assert_non_null(strstr(err.msg, "'a/new\\x1b[2J': it has a control character"));
    sv_error_clear(&err);
    const char *keys[] = {"a/good", "a/bad\x01name"};
    assert_int_equal(storage_delete(f->st, keys, 2, &err), -1);
    assert_int_equal(storage_stat(f->st, "a/good", NULL, &err), 0);
    free(sub);
    free(a);
}

/* ---- stat, delete ----------------------------------------------------------- */

static void test_stat(void **state)
{
    struct fixture *f = *state;
    put(f->st, "s/obj", "12345");
    sv_error err = {0};
    storage_entry e = {0};
    assert_int_equal(storage_stat(f->st, "s/obj", &e, &err), 0);
    assert_int_equal(e.size, 5);
    assert_int_equal(storage_stat(f->st, "s/absent", &e, &err), 1);
    assert_int_equal(storage_stat(f->st, "s", &e, &err), 1);           /* a prefix */
    assert_int_equal(storage_stat(f->st, "s/obj/under", &e, &err), 1); /* under a file */
    assert_false(sv_error_isset(&err));
}

static void test_delete(void **state)
{
    struct fixture *f = *state;
    put(f->st, "default/20261121T020000Z/postgres/app.dump.zst", "a");
    put(f->st, "default/20261121T020000Z/manifest.json", "m");
    put(f->st, "default/20261122T020000Z/manifest.json", "n");
    sv_error err = {0};
    const char *keys[] = {
        "default/20261121T020000Z/postgres/app.dump.zst",
        "default/20261121T020000Z/manifest.json",
        "default/20261121T020000Z/absent.zst",
        "never/existed",
    };
    assert_int_equal(storage_delete(f->st, keys, 4, &err), 0);
    assert_int_equal(storage_stat(f->st, keys[0], NULL, &err), 1);
    assert_int_equal(storage_stat(f->st, keys[1], NULL, &err), 1);

    /* the deleted set leaves no empty directory; its neighbour stays */
    char *names = dir_names(f->root);
    assert_string_equal(names, "default");
    free(names);
    char *dir = xasprintf("%s/default", f->root);
    names = dir_names(dir);
    assert_string_equal(names, "20261122T020000Z");
    free(names);
    free(dir);

    /* deleting the last object keeps the root itself */
    const char *last[] = {"default/20261122T020000Z/manifest.json"};
    assert_int_equal(storage_delete(f->st, last, 1, &err), 0);
    names = dir_names(f->root);
    assert_string_equal(names, "");
    free(names);
    /* and again: absent is not an error */
    assert_int_equal(storage_delete(f->st, last, 1, &err), 0);
}

/* ---- validation ------------------------------------------------------------- */

static void test_invalid_keys(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = {"", "/abs", "a//b", "a/../b", "..", "./a", "a/.", "a/", ".hidden", "a/.tmp-x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sv_error err = {0};
        assert_null(storage_write(f->st, bad[i], &err));
        assert_true(sv_error_isset(&err));
        if (*bad[i]) {
            char *quoted = xasprintf("'%s'", bad[i]);
            assert_non_null(strstr(err.msg, quoted));
            free(quoted);
        }
        sv_error_clear(&err);
        assert_int_equal(storage_put(f->st, bad[i], "x", 1, &err), -1);
        sv_error_clear(&err);
        assert_int_equal(storage_stat(f->st, bad[i], NULL, &err), -1);
        sv_error_clear(&err);
        stream *sink = null_sink();
        assert_int_equal(storage_read(f->st, bad[i], sink, &err), -1);
        stream_free(sink);
        sv_error_clear(&err);
        const char *keys[] = {"fine", bad[i]};
        assert_int_equal(storage_delete(f->st, keys, 2, &err), -1);
    }
    /* nothing escaped the root */
    char *names = dir_names(f->tmp);
    assert_string_equal(names, "");
    free(names);

    struct collect c;
    sv_error err = {0};
    assert_int_equal(storage_list(f->st, "../", true, collect_cb, &c, &err), -1);
    assert_int_equal(storage_list(f->st, "/a", true, collect_cb, &c, &err), -1);
    assert_int_equal(storage_list(f->st, "a//", true, collect_cb, &c, &err), -1);
    assert_string_equal(list(f->st, "a/", true, &c), "");
}

static void test_bad_urls(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "http://example.com/x", "file://relative/path", "file:relative", "/var/backups", "S3://bucket"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sv_error err = {0};
        assert_null(storage_open(bad[i], NULL, &err));
        assert_int_equal(err.code, SV_EXIT_CONFIG);
        assert_non_null(strstr(err.msg, "SAUVE_STORAGE"));
    }
    sv_error err = {0};
    assert_null(storage_open("ftp://host/x", NULL, &err));
    assert_string_equal(
        err.msg, "SAUVE_STORAGE: unsupported URL 'ftp://host/x': use file:///path or s3://bucket/prefix");
    assert_null(storage_open(NULL, NULL, &err));
    assert_int_equal(err.code, SV_EXIT_CONFIG);
}

/* ---- check ------------------------------------------------------------------ */

static void test_check(void **state)
{
    struct fixture *f = *state;
    sv_error err = {0};
    /* missing but creatable: fine, and check creates nothing */
    assert_int_equal(storage_check(f->st, &err), 0);
    char *names = dir_names(f->tmp);
    assert_string_equal(names, "");
    free(names);

    /* existing: fine, and the probe file is gone */
    put(f->st, "x", "1");
    assert_int_equal(storage_check(f->st, &err), 0);
    names = dir_names(f->root);
    assert_string_equal(names, "x");
    free(names);

    /* the root is a regular file: a configuration error naming it */
    char *file = test_write_file(f->tmp, "plain", "not a directory");
    char *url = xasprintf("file://%s", file);
    storage *st = storage_open(url, NULL, &err);
    assert_non_null(st);
    assert_int_equal(storage_check(st, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, file));
    sv_error_clear(&err);
    assert_int_equal(storage_put(st, "k", "v", 1, &err), -1);
    storage_close(st);
    free(url);

    /* below a regular file: cannot be created */
    url = xasprintf("file://%s/sub/dir", file);
    st = storage_open(url, NULL, &err);
    assert_int_equal(storage_check(st, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    storage_close(st);
    free(url);
    free(file);

    /* an unwritable directory: a runtime failure (root ignores modes) */
    if (geteuid() != 0) {
        char *ro = xasprintf("%s/ro", f->tmp);
        assert_int_equal(mkdir(ro, 0500), 0);
        url = xasprintf("file://%s", ro);
        st = storage_open(url, NULL, &err);
        sv_error_clear(&err);
        assert_int_equal(storage_check(st, &err), -1);
        assert_int_equal(err.code, SV_EXIT_TEMPFAIL);
        storage_close(st);
        chmod(ro, 0700);
        free(url);
        free(ro);
    }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_put_get),
        T(test_stream_large_object),
        T(test_abort_leaves_nothing),
        T(test_replace_is_atomic),
        T(test_list),
        T(test_foreign_names_are_skipped_and_reported_once),
        T(test_stat),
        T(test_delete),
        T(test_invalid_keys),
        T(test_check),
        cmocka_unit_test(test_bad_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
