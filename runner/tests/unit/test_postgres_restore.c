/* Tests of the PostgreSQL loader (runner/src/sources/postgres_restore.c):
 * the choice of the tools that load an artifact, that is the pure rules
 * over the server's major and the manifest's tool_version (which major,
 * one transaction or not) and the search in pg.bindir over directories of
 * /bin/sh stand-ins for pg_dump; and what the loader checks and says
 * before it reaches a server. */
#include "testutil.h"

#include <sys/stat.h>

#include "common/mem.h"
#include "config/config.h"
#include "sources/loader.h"
#include "sources/postgres.h"

static void test_the_newer_of_dump_and_server(void **state)
{
    (void)state;
    /* pg_restore 15 cannot read pg_dump 18's archive: 18 even for a 15 server */
    assert_int_equal(pg_loader_major(15, "pg_dump (PostgreSQL) 18.1 (Debian 18.1-1)"), 18);
    /* an old dump into a new server: the server's major */
    assert_int_equal(pg_loader_major(18, "pg_dump (PostgreSQL) 15.18"), 18);
    assert_int_equal(pg_loader_major(15, "pg_dump (PostgreSQL) 15.18"), 15);
    assert_int_equal(pg_loader_major(17, "pg_dump (PostgreSQL) 9.6.24"), 17);
    assert_int_equal(pg_loader_major(16, "pg_dump (PostgreSQL) 19devel"), 19);
    assert_int_equal(pg_loader_major(16, "pg_dump 18.0"), 18);
}

static void test_an_unknown_tool_version_counts_as_the_server(void **state)
{
    (void)state;
    assert_int_equal(pg_loader_major(15, NULL), 15);
    assert_int_equal(pg_loader_major(15, ""), 15);
    assert_int_equal(pg_loader_major(15, "something else"), 15);
    assert_int_equal(pg_loader_major(15, "pg_dump (PostgreSQL) -18"), 15);
    /* a manifest's nonsense never asks for an absurd major (nor overflows) */
    assert_int_equal(pg_loader_major(15, "pg_dump (PostgreSQL) 99999999999999999999"), 15);
    assert_int_equal(pg_loader_major(15, "pg_dump (PostgreSQL) 1000.1"), 15);
}

static void test_one_transaction_unless_17_into_older(void **state)
{
    (void)state;
    assert_true(pg_loader_transactional(15, 15));
    assert_true(pg_loader_transactional(16, 16));
    assert_true(pg_loader_transactional(18, 18));
    assert_true(pg_loader_transactional(18, 17));
    assert_true(pg_loader_transactional(15, 18));
    /* pg_restore 17+ sets transaction_timeout, which 16 and older reject */
    assert_false(pg_loader_transactional(17, 16));
    assert_false(pg_loader_transactional(18, 16));
    assert_false(pg_loader_transactional(18, 15));
}

/* ROOT/SUB/pg_dump: a script printing version. */
static void fake_pg_dump(const char *root, const char *sub, const char *version)
{
    char *dir = xasprintf("%s/%s", root, sub);
    char *cmd = xasprintf("mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    char *body = xasprintf("#!/bin/sh\necho '%s'\n", version);
    char *path = test_write_file(dir, "pg_dump", body);
    assert_int_equal(chmod(path, 0755), 0);
    free(path);
    free(body);
    free(cmd);
    free(dir);
}

static void bindir(sv_config *cfg, const char *root, const char *pattern)
{
    char *p = xasprintf("%s/%s", root, pattern);
    strlist_free(&cfg->pg_bindir);
    strlist_push(&cfg->pg_bindir, p);
    free(p);
}

static void test_tools_for_a_dump_newer_than_the_server(void **state)
{
    (void)state;
    char *root = test_tmpdir();
    fake_pg_dump(root, "15/bin", "pg_dump (PostgreSQL) 15.18");
    fake_pg_dump(root, "18/bin", "pg_dump (PostgreSQL) 18.6");
    sv_config cfg = {0};
    bindir(&cfg, root, "*/bin");
    struct pg_tools t;
    sv_error err = {0};

    assert_int_equal(pg_loader_tools(&cfg, 15, "pg_dump (PostgreSQL) 18.6", &t, &err), 0);
    assert_int_equal(t.major, 18);
    pg_tools_free(&t);
    /* the dump's own major when the server's would do: 15 for 15 */
    assert_int_equal(pg_loader_tools(&cfg, 15, "pg_dump (PostgreSQL) 15.18", &t, &err), 0);
    assert_int_equal(t.major, 15);
    pg_tools_free(&t);
    /* a 16 server, a pg_dump 15 archive: the oldest tools newer than the server */
    assert_int_equal(pg_loader_tools(&cfg, 16, "pg_dump (PostgreSQL) 15.18", &t, &err), 0);
    assert_int_equal(t.major, 18);
    pg_tools_free(&t);

    /* only 15's tools: the dump's major is what rules them out, and is named */
    bindir(&cfg, root, "15/bin");
    assert_int_equal(pg_loader_tools(&cfg, 15, "pg_dump (PostgreSQL) 18.6", &t, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, "written by pg_dump 18 (pg_dump (PostgreSQL) 18.6)"));
    assert_non_null(strstr(err.msg, "major 18 or newer"));
    char *found = xasprintf("SAUVE_PG_BINDIR has major 15 in %s/15/bin", root);
    assert_non_null(strstr(err.msg, found));
    free(found);
    assert_non_null(strstr(err.hint, "SAUVE_PG_BINDIR"));
    assert_non_null(strstr(err.hint, "postgresql-client-18"));
    assert_null(t.dir);

    /* nothing at all */
    bindir(&cfg, root, "none/bin");
    sv_error_clear(&err);
    assert_int_equal(pg_loader_tools(&cfg, 15, "pg_dump (PostgreSQL) 18.6", &t, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, "SAUVE_PG_BINDIR has no pg_dump at all"));

    strlist_free(&cfg.pg_bindir);
    test_rmtree(root);
    free(root);
}

static void test_tools_for_a_server_newer_than_every_tool(void **state)
{
    (void)state;
    char *root = test_tmpdir();
    fake_pg_dump(root, "15/bin", "pg_dump (PostgreSQL) 15.18");
    sv_config cfg = {0};
    bindir(&cfg, root, "15/bin");
    struct pg_tools t;
    sv_error err = {0};
    /* the server rules, as for a backup: the message names its major */
    assert_int_equal(pg_loader_tools(&cfg, 18, "pg_dump (PostgreSQL) 15.18", &t, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, "server (major 18)"));
    assert_null(strstr(err.msg, "written by"));
    assert_non_null(strstr(err.hint, "postgresql-client-18"));
    strlist_free(&cfg.pg_bindir);
    test_rmtree(root);
    free(root);
}

static void test_the_loader_names_its_target(void **state)
{
    (void)state;
    const struct loader_ops *pg = loader_find("postgres", 8);
    assert_non_null(pg);
    sv_config cfg = {0};
    loader *l = pg->open(&cfg, "app", &(struct loader_options){0});
    assert_ptr_equal(l->ops, pg);
    assert_string_equal(l->target, "app");
    assert_string_equal(l->what, "database app");
    assert_string_equal(l->changes, "database app");
    loader_free(l);
    l = pg->open(&cfg, "app", &(struct loader_options){.into = "app_copy", .clean = true});
    assert_string_equal(l->target, "app_copy");
    assert_string_equal(l->what, "database app_copy");
    loader_free(l);
    l = pg->open(&cfg, "globals", &(struct loader_options){0});
    assert_string_equal(l->what, "the cluster");
    assert_string_equal(l->changes, "the cluster's roles");
    loader_free(l);
}

static void test_globals_go_into_no_other_database(void **state)
{
    (void)state;
    const struct loader_ops *pg = loader_find("postgres", 8);
    sv_error err = {0};
    assert_int_equal(pg->check("globals", &(struct loader_options){.into = "x"}, &err), -1);
    assert_int_equal(err.code, SV_EXIT_USAGE);
    assert_string_equal(err.msg, "--into does not apply to postgres:globals (roles are cluster-wide)");
    sv_error_clear(&err);
    assert_int_equal(pg->check("globals", &(struct loader_options){.clean = true}, &err), 0);
    assert_int_equal(pg->check("app", &(struct loader_options){.into = "x", .no_owner = true}, &err), 0);
    assert_false(sv_error_isset(&err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_newer_of_dump_and_server),
        cmocka_unit_test(test_an_unknown_tool_version_counts_as_the_server),
        cmocka_unit_test(test_one_transaction_unless_17_into_older),
        cmocka_unit_test(test_tools_for_a_dump_newer_than_the_server),
        cmocka_unit_test(test_tools_for_a_server_newer_than_every_tool),
        cmocka_unit_test(test_the_loader_names_its_target),
        cmocka_unit_test(test_globals_go_into_no_other_database),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
