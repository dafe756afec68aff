/* Tests of the kind-independent restore (runner/src/restore): KIND:NAME
 * parsed against the loader registry, and restore_run driving a loader
 * of a made-up kind ("mem", which loads into memory) over sets that
 * backup_run wrote, with a made-up source, into local storage. */
#include "testutil.h"

#include <fcntl.h>

#include "backup/backup.h"
#include "catalog/catalog.h"
#include "common/mem.h"
#include "config/config.h"
#include "restore/restore.h"
#include "sources/loader.h"
#include "sources/source.h"
#include "storage/storage.h"

/* ---- parsing ---------------------------------------------------------- */

static int parse(const char *text, const char *into, struct restore_spec *spec, sv_error *err)
{
    struct restore_request req = {.spec = text, .load = {.into = into}};
    memset(err, 0, sizeof *err);
    return restore_parse(&req, spec, err);
}

static void test_a_spec_names_its_kind_loader_and_name(void **state)
{
    (void)state;
    struct restore_spec spec;
    sv_error err;
    assert_int_equal(parse("postgres:app", NULL, &spec, &err), 0);
    assert_ptr_equal(spec.ops, loader_find("postgres", 8));
    assert_string_equal(spec.ops->kind, "postgres");
    assert_string_equal(spec.name, "app");
    assert_string_equal(spec.text, "postgres:app");
    /* the kind ends at the first ':'; the rest is the name */
    assert_int_equal(parse("postgres:a:b", NULL, &spec, &err), 0);
    assert_string_equal(spec.name, "a:b");
    assert_int_equal(parse("postgres:globals", NULL, &spec, &err), 0);
    assert_string_equal(spec.name, "globals");
}

static void test_no_spec_is_a_usage_error_listing_the_forms(void **state)
{
    (void)state;
    struct restore_spec spec;
    sv_error err;
    const char *none[] = {NULL, "", "app", "postgres"};
    for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
        assert_int_equal(parse(none[i], NULL, &spec, &err), -1);
        assert_int_equal(err.code, SV_EXIT_USAGE);
        assert_string_equal(
            err.msg, "restore needs one spec: postgres:DATABASE, postgres:globals, redis:NAME or files:NAME");
        assert_null(spec.ops);
    }
}

static void test_an_unknown_kind_or_empty_name_is_a_usage_error(void **state)
{
    (void)state;
    struct restore_spec spec;
    sv_error err;
    const char *bad[] = {"mysql:app", "mongo:up",     ":app",           "postgres:",
                         "redis:",    "Postgres:app", "postgresql:app", "postgre:app"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(parse(bad[i], NULL, &spec, &err), -1);
        assert_int_equal(err.code, SV_EXIT_USAGE);
        char *want = xasprintf(
            "cannot restore '%s': sources are postgres:DATABASE, postgres:globals, redis:NAME or files:NAME",
            bad[i]);
        assert_string_equal(err.msg, want);
        free(want);
    }
}

static void test_the_kind_checks_its_name_and_options(void **state)
{
    (void)state;
    struct restore_spec spec;
    sv_error err;
    assert_int_equal(parse("postgres:globals", "elsewhere", &spec, &err), -1);
    assert_int_equal(err.code, SV_EXIT_USAGE);
    assert_non_null(strstr(err.msg, "--into does not apply to postgres:globals"));
    assert_int_equal(parse("postgres:app", "elsewhere", &spec, &err), 0);
    /* redis:NAME goes either to a file or online, never both or neither */
    assert_int_equal(parse("redis:cache", NULL, &spec, &err), -1);
    assert_int_equal(err.code, SV_EXIT_USAGE);
    assert_non_null(strstr(err.msg, "redis:cache needs --to-file PATH or --online"));

    /* --into names a database, --to a directory */
    sv_error e2 = {0};
    const struct loader_ops *files = loader_find("files", 5);
    const struct loader_ops *pg = loader_find("postgres", 8);
    assert_int_equal(files->check("up", &(struct loader_options){.into = "x"}, &e2), -1);
    assert_int_equal(e2.code, SV_EXIT_USAGE);
    assert_non_null(strstr(e2.msg, "--into does not apply to files:up"));
    assert_int_equal(pg->check("app", &(struct loader_options){.to = "/x"}, &e2), -1);
    assert_non_null(strstr(e2.msg, "--to does not apply to postgres:app"));
    assert_int_equal(files->check("up", &(struct loader_options){.to_file = "/x"}, &e2), -1);
    assert_non_null(strstr(e2.msg, "--to-file does not apply to files:up"));
    const struct loader_ops *redis = loader_find("redis", 5);
    assert_int_equal(redis->check("c", &(struct loader_options){.to = "/x", .online = true}, &e2), -1);
    assert_non_null(strstr(e2.msg, "--to does not apply to redis:c"));
    assert_int_equal(files->check("../x", &(struct loader_options){.to = "/x"}, &e2), -1);
    assert_int_equal(files->check("up", &(struct loader_options){.to = "/x"}, &e2), 0);
}

/* ---- the registry ----------------------------------------------------- */

static void test_the_registry_knows_this_builds_kinds_only(void **state)
{
    (void)state;
    const struct loader_ops *pg = loader_find("postgres", 8);
    assert_non_null(pg);
    assert_string_equal(pg->kind, "postgres");
    assert_non_null(pg->check);
    assert_non_null(pg->open);
    assert_non_null(pg->inspect);
    assert_non_null(pg->safety_source);
    assert_non_null(pg->start);
    assert_non_null(pg->finish);
    /* only the first len bytes count: KIND of KIND:NAME */
    assert_ptr_equal(loader_find("postgres:app", 8), pg);
    assert_null(loader_find("postgres", 7));
    assert_null(loader_find("postgresx", 9));
    const struct loader_ops *redis = loader_find("redis", 5);
    assert_non_null(redis);
    assert_string_equal(redis->kind, "redis");
    assert_null(loader_find("", 0));
    char *forms = loader_forms();
    assert_string_equal(forms, "postgres:DATABASE, postgres:globals, redis:NAME or files:NAME");
    const struct loader_ops *files = loader_find("files", 5);
    assert_non_null(files);
    assert_string_equal(files->kind, "files");
    free(forms);
}

static const char *const forms_a[] = {"a:X", "a:Y", NULL};
static const char *const forms_b[] = {"b:Z", NULL};
static const char *const forms_none[] = {NULL};
static const struct loader_ops ops_a = {.kind = "a", .forms = forms_a};
static const struct loader_ops ops_b = {.kind = "b", .forms = forms_b};
static const struct loader_ops ops_none = {.kind = "n", .forms = forms_none};

static void test_forms_are_joined_as_a_sentence(void **state)
{
    (void)state;
    const struct loader_ops *const ab[] = {&ops_a, &ops_b};
    const struct loader_ops *const b_only[] = {&ops_b};
    const struct loader_ops *const a_none_b[] = {&ops_a, &ops_none, &ops_b};
    char *s = loader_forms_of(ab, 2);
    assert_string_equal(s, "a:X, a:Y or b:Z");
    free(s);
    s = loader_forms_of(b_only, 1);
    assert_string_equal(s, "b:Z");
    free(s);
    s = loader_forms_of(a_none_b, 3);
    assert_string_equal(s, "a:X, a:Y or b:Z");
    free(s);
    s = loader_forms_of(ab, 0);
    assert_string_equal(s, "");
    free(s);
}

/* ---- a made-up kind: "mem" -------------------------------------------- */

/* What the mem loader saw, and how it is to behave. */
static struct {
    /* behaviour */
    bool replaces;     /* inspect: the target holds data */
    bool refuse_start; /* start fails */
    bool refuse_end;   /* finish(ok) fails: the loader's own error */
    /* observations */
    char *got;
    size_t got_len;
    int inspected, started, finished, safety_sources;
    bool finished_ok, sink_finished, sink_aborted;
    char inspected_name[64];
} mem;

static void mem_reset(void)
{
    free(mem.got);
    memset(&mem, 0, sizeof mem);
}

static int cap_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    (void)s;
    (void)err;
    mem.got = xrealloc(mem.got, mem.got_len + len + 1);
    memcpy(mem.got + mem.got_len, buf, len);
    mem.got_len += len;
    mem.got[mem.got_len] = '\0';
    return 0;
}

static int cap_finish(stream *s, sv_error *err)
{
    (void)s;
    (void)err;
    mem.sink_finished = true;
    return 0;
}

static void cap_abort(stream *s)
{
    (void)s;
    mem.sink_aborted = true;
}

static const struct stream_ops cap_ops = {cap_write, cap_finish, cap_abort, NULL};

/* The source of kind mem: artifacts named by a NULL-terminated list, each
 * holding "content of NAME". */
static int mem_prepare(source *s, sv_error *err)
{
    (void)err;
    for (const char *const *n = s->impl; *n; n++) {
        char *key = xasprintf("mem/%s.bin", *n);
        source_add_artifact(s, "mem", *n, key, "mem-bytes");
        free(key);
    }
    return 0;
}

static int mem_dump(source *s, size_t i, stream *out, sv_error *err)
{
    char *body = xasprintf("content of %s", s->artifacts[i].name);
    int rc = stream_write(out, body, strlen(body), err);
    free(body);
    return rc;
}

static const struct source_ops mem_source_ops = {.kind = "mem", .prepare = mem_prepare, .dump = mem_dump};

static source *mem_source(const char *const *names)
{
    source *s = xcalloc(1, sizeof *s);
    s->ops = &mem_source_ops;
    s->impl = (void *)names;
    return s;
}

static const char *const mem_forms[] = {"mem:NAME", NULL};
static const struct loader_ops mem_loader;

static int mem_check(const char *name, const struct loader_options *o, sv_error *err)
{
    (void)name;
    (void)o;
    (void)err;
    return 0;
}

static loader *mem_open(const sv_config *cfg, const char *name, const struct loader_options *o)
{
    (void)cfg;
    loader *l = xcalloc(1, sizeof *l);
    l->ops = &mem_loader;
    l->target = xstrdup(o->into ? o->into : name);
    l->what = xasprintf("memory %s", l->target);
    l->changes = xstrdup(l->what);
    return l;
}

static int mem_inspect(loader *l, const manifest_artifact *a, bool *replaces, sv_error *err)
{
    (void)l;
    (void)err;
    mem.inspected++;
    snprintf(mem.inspected_name, sizeof mem.inspected_name, "%s:%s", a->kind, a->name);
    *replaces = mem.replaces;
    return 0;
}

static const char *const safety_names[] = {"safety-copy", NULL};

static source *mem_safety_source(loader *l)
{
    (void)l;
    mem.safety_sources++;
    return mem_source(safety_names);
}

static int mem_start(loader *l, stream **sink, sv_error *err)
{
    (void)l;
    mem.started++;
    if (mem.refuse_start)
        return sv_error_set(err, SV_EXIT_FAILED, "mem target unreachable");
    stream *s = xcalloc(1, sizeof *s);
    *s = (stream){.ops = &cap_ops, .name = "mem"};
    *sink = s;
    return 0;
}

static int mem_finish(loader *l, bool ok, sv_error *err)
{
    (void)l;
    mem.finished++;
    mem.finished_ok = ok;
    if (ok && mem.refuse_end)
        return sv_error_set(err, SV_EXIT_FAILED, "mem refused the content");
    return ok ? 0 : -1;
}

static void mem_destroy(loader *l)
{
    (void)l;
}

static const struct loader_ops mem_loader = {.kind = "mem",
                                             .forms = mem_forms,
                                             .check = mem_check,
                                             .open = mem_open,
                                             .inspect = mem_inspect,
                                             .safety_source = mem_safety_source,
                                             .start = mem_start,
                                             .finish = mem_finish,
                                             .destroy = mem_destroy};

/* ---- restore_run over local storage ----------------------------------- */

typedef struct {
    char *dir;
    sv_config cfg;
    storage *st;
    char id[SET_ID_LEN + 1]; /* a set of mem:app and mem:cache */
    struct restore_result res;
    sv_error err;
} fixture;

/* Backs up the mem artifacts names as one set; its id into id. */
static void backup_mem(fixture *f, const char *const *names, char id[SET_ID_LEN + 1])
{
    source *src = mem_source(names);
    struct backup_request req = {.reason = "backup", .only = src};
    struct backup_result res;
    sv_error err = {0};
    int code = backup_run(&f->cfg, f->st, &req, &res, &err);
    if (code != SV_EXIT_OK)
        fail_msg("backup_run: %d %s", code, err.msg);
    strcpy(id, res.set_id);
    backup_result_free(&res);
    source_free(src);
    /* set ids order runs by their start, to the millisecond */
    usleep(3000);
}

static const char *const app_and_cache[] = {"app", "cache", NULL};
static const char *const cache_only[] = {"cache", NULL};

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    f->dir = test_tmpdir();
    char *storage_env = xasprintf("SAUVE_STORAGE=file://%s", f->dir);
    const char *env[] = {storage_env, "SAUVE_NAME=unit", NULL};
    struct config_load_options lo = {.env = env, .file = "/dev/null"};
    sv_error err = {0};
    if (config_load(&f->cfg, &lo, &err) != 0)
        fail_msg("config_load: %s", err.msg);
    free(storage_env);
    f->st = storage_open(f->cfg.storage, &f->cfg, &err);
    if (!f->st)
        fail_msg("storage_open: %s", err.msg);
    mem_reset();
    backup_mem(f, app_and_cache, f->id);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    restore_result_free(&f->res);
    storage_close(f->st);
    config_free(&f->cfg);
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    mem_reset();
    return 0;
}

/* restore_run of text (of kind mem) into f->res and f->err. */
static int run(fixture *f, const char *text, struct restore_request *req)
{
    struct restore_spec spec = {.text = text, .ops = &mem_loader, .name = strchr(text, ':') + 1};
    req->spec = text;
    restore_result_free(&f->res);
    memset(&f->err, 0, sizeof f->err);
    return restore_run(&f->cfg, f->st, &spec, req, &f->res, &f->err);
}

static void test_the_artifact_reaches_the_loader_whole_and_verified(void **state)
{
    fixture *f = *state;
    assert_int_equal(run(f, "mem:app", &(struct restore_request){.yes = true}), 0);
    assert_string_equal(mem.got, "content of app");
    assert_string_equal(mem.inspected_name, "mem:app");
    assert_int_equal(mem.inspected, 1);
    assert_int_equal(mem.started, 1);
    assert_int_equal(mem.finished, 1);
    assert_true(mem.finished_ok);
    assert_true(mem.sink_finished);
    assert_false(mem.sink_aborted);
    assert_int_equal(mem.safety_sources, 0);
    assert_string_equal(f->res.set_id, f->id);
    assert_string_equal(f->res.what, "memory app");
    assert_int_equal(f->res.bytes_in, strlen("content of app"));
}

static void test_a_damaged_object_never_finishes_the_sink(void **state)
{
    fixture *f = *state;
    /* the same size, other bytes: only the checksum can tell */
    char *path = xasprintf("%s/unit/%s/mem/app.bin.zst", f->dir, f->id);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t middle = lseek(fd, 0, SEEK_END) / 2;
    unsigned char byte;
    assert_int_equal(pread(fd, &byte, 1, middle), 1);
    byte ^= 0xff;
    assert_int_equal(pwrite(fd, &byte, 1, middle), 1);
    close(fd);
    free(path);
    assert_int_equal(run(f, "mem:app", &(struct restore_request){.yes = true}), -1);
    assert_int_equal(f->err.code, SV_EXIT_FAILED);
    assert_non_null(strstr(f->err.msg, "unusable"));
    assert_int_equal(mem.finished, 1);
    assert_false(mem.finished_ok);
    assert_false(mem.sink_finished);
    assert_true(mem.sink_aborted);
}

static void test_the_loaders_own_failure_is_the_error(void **state)
{
    fixture *f = *state;
    struct restore_request req = {.yes = true};
    mem.refuse_end = true;
    assert_int_equal(run(f, "mem:app", &req), -1);
    assert_string_equal(f->err.msg, "mem refused the content");

    mem_reset();
    mem.refuse_start = true;
    assert_int_equal(run(f, "mem:app", &req), -1);
    assert_string_equal(f->err.msg, "mem target unreachable");
    assert_int_equal(mem.finished, 0); /* start undid its own work */
}

static void test_a_replaced_target_is_backed_up_first_unless_declined(void **state)
{
    fixture *f = *state;
    struct restore_request req = {.yes = true};
    mem.replaces = true;
    assert_int_equal(run(f, "mem:app", &req), 0);
    assert_int_equal(mem.safety_sources, 1);
    catalog cat;
    assert_int_equal(catalog_load(f->st, "unit", &cat, &f->err), 0);
    assert_int_equal(cat.n, 2);
    /* the safety copy is the newest set, of reason safety, with the
     * safety source's artifact and the loader's words in its note */
    assert_string_equal(cat.sets[0].m.reason, "safety");
    assert_non_null(manifest_find(&cat.sets[0].m, "mem", "safety-copy"));
    char *note = xasprintf("memory app before restore --clean from set %s", f->id);
    assert_string_equal(cat.sets[0].m.note, note);
    free(note);
    catalog_free(&cat);

    /* latest still means the backup, not the safety copy */
    mem_reset();
    mem.replaces = true;
    req.no_safety_backup = true;
    assert_int_equal(run(f, "mem:app", &req), 0);
    assert_string_equal(f->res.set_id, f->id);
    assert_int_equal(mem.safety_sources, 0);
    assert_int_equal(catalog_load(f->st, "unit", &cat, &f->err), 0);
    assert_int_equal(cat.n, 2);
    catalog_free(&cat);
}

/* latest restores mem:app from f->id, older than newer, which has no
 * usable copy; --set newer is refused with a message that starts with want,
 * before the loader is reached. */
static void assert_latest_skips(fixture *f, const char *newer, const char *want)
{
    assert_true(strcmp(newer, f->id) > 0);
    struct restore_request req = {.yes = true};
    assert_int_equal(run(f, "mem:app", &req), 0);
    assert_string_equal(f->res.set_id, f->id);
    assert_string_equal(mem.got, "content of app");
    mem_reset();
    req.set = newer;
    assert_int_equal(run(f, "mem:app", &req), -1);
    assert_memory_equal(f->err.msg, want, strlen(want));
    assert_int_equal(mem.inspected, 0);
}

static void test_latest_falls_back_to_the_newest_set_that_has_it(void **state)
{
    fixture *f = *state;
    char newer[SET_ID_LEN + 1];
    backup_mem(f, cache_only, newer);
    char *want = xasprintf("set unit/%s has no artifact mem:app (it holds: mem:cache)", newer);
    assert_latest_skips(f, newer, want);
    free(want);

    /* a name no set holds */
    assert_int_equal(run(f, "mem:nothing", &(struct restore_request){.yes = true}), -1);
    assert_non_null(strstr(f->err.msg, "has no artifact mem:nothing"));
}

static void test_a_damaged_copy_is_refused_and_latest_skips_it(void **state)
{
    fixture *f = *state;
    char newer[SET_ID_LEN + 1];
    backup_mem(f, app_and_cache, newer);
    /* another size than the manifest records: the listing tells */
    char *path = xasprintf("%s/unit/%s/mem/app.bin.zst", f->dir, newer);
    assert_int_equal(truncate(path, 3), 0);
    free(path);
    char *want = xasprintf("mem:app in set unit/%s is damaged, nothing was changed: ", newer);
    assert_latest_skips(f, newer, want);
    free(want);
    /* what is intact in it still restores */
    assert_int_equal(run(f, "mem:cache", &(struct restore_request){.yes = true, .set = newer}), 0);
    assert_string_equal(mem.got, "content of cache");
}

static void test_without_yes_and_a_terminal_nothing_is_touched(void **state)
{
    fixture *f = *state;
    int saved = dup(STDIN_FILENO);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, STDIN_FILENO);
    close(null);
    int rc = run(f, "mem:app", &(struct restore_request){0});
    dup2(saved, STDIN_FILENO);
    close(saved);
    assert_int_equal(rc, -1);
    assert_int_equal(f->err.code, SV_EXIT_USAGE);
    assert_string_equal(f->err.msg, "restore changes memory app and needs confirmation");
    assert_int_equal(mem.inspected, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_spec_names_its_kind_loader_and_name),
        cmocka_unit_test(test_no_spec_is_a_usage_error_listing_the_forms),
        cmocka_unit_test(test_an_unknown_kind_or_empty_name_is_a_usage_error),
        cmocka_unit_test(test_the_kind_checks_its_name_and_options),
        cmocka_unit_test(test_the_registry_knows_this_builds_kinds_only),
        cmocka_unit_test(test_forms_are_joined_as_a_sentence),
        cmocka_unit_test_setup_teardown(test_the_artifact_reaches_the_loader_whole_and_verified, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_damaged_object_never_finishes_the_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_loaders_own_failure_is_the_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_replaced_target_is_backed_up_first_unless_declined, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_latest_falls_back_to_the_newest_set_that_has_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_damaged_copy_is_refused_and_latest_skips_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_yes_and_a_terminal_nothing_is_touched, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
