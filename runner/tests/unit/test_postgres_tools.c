/* Tests of the choice of PostgreSQL client tools (runner/src/sources/
 * postgres_conn.c): the pure choice over candidates, the version parsing,
 * and the bindir scan over directories of /bin/sh stand-ins for pg_dump. */
#include "testutil.h"

#include <sys/stat.h>

#include "common/mem.h"
#include "config/config.h"
#include "sources/postgres.h"

#define CAND(dir, major)                                                                                     \
    {                                                                                                        \
        (char *)(dir), (char *)"pg_dump (PostgreSQL) " #major ".1", major, NULL                              \
    }
#define BROKEN(dir)                                                                                          \
    {                                                                                                        \
        (char *)(dir), NULL, 0, (char *)"pg_dump exited with status 1"                                       \
    }

static const struct pg_tool_candidate *choose(const struct pg_tool_candidate *c, size_t n, int server,
                                              enum pg_tools_reason *why)
{
    return pg_tools_choose(c, n, server, why);
}

static void test_same_major_wins_over_newer(void **state)
{
    (void)state;
    const struct pg_tool_candidate c[] = {CAND("/18", 18), CAND("/17", 17), CAND("/15", 15)};
    enum pg_tools_reason why = PG_TOOLS_NONE;
    const struct pg_tool_candidate *t = choose(c, 3, 15, &why);
    assert_non_null(t);
    assert_string_equal(t->dir, "/15");
    assert_int_equal(why, PG_TOOLS_SAME_MAJOR);
    assert_string_equal(pg_tools_reason_text(why), "same major");
}

static void test_only_newer_takes_the_oldest_newer(void **state)
{
    (void)state;
    /* several newer ones: 17 is the closest to a 16 server */
    const struct pg_tool_candidate c[] = {CAND("/18", 18), CAND("/17", 17), CAND("/15", 15)};
    enum pg_tools_reason why = PG_TOOLS_NONE;
    const struct pg_tool_candidate *t = choose(c, 3, 16, &why);
    assert_non_null(t);
    assert_string_equal(t->dir, "/17");
    assert_int_equal(why, PG_TOOLS_OLDEST_NEWER);
    assert_string_equal(pg_tools_reason_text(why), "same major unavailable, the oldest newer one");

    /* the order of the array does not change which major, only which directory */
    const struct pg_tool_candidate d[] = {CAND("/15", 15), CAND("/17", 17), CAND("/18", 18)};
    t = choose(d, 3, 16, &why);
    assert_string_equal(t->dir, "/17");
}

static void test_only_one_newer(void **state)
{
    (void)state;
    const struct pg_tool_candidate c[] = {CAND("/18", 18)};
    enum pg_tools_reason why = PG_TOOLS_NONE;
    const struct pg_tool_candidate *t = choose(c, 1, 15, &why);
    assert_non_null(t);
    assert_string_equal(t->dir, "/18");
    assert_int_equal(why, PG_TOOLS_OLDEST_NEWER);
}

static void test_only_older_is_none(void **state)
{
    (void)state;
    const struct pg_tool_candidate c[] = {CAND("/15", 15), CAND("/13", 13)};
    enum pg_tools_reason why = PG_TOOLS_SAME_MAJOR;
    assert_null(choose(c, 2, 18, &why));
    assert_int_equal(why, PG_TOOLS_NONE);
}

static void test_nothing_is_none(void **state)
{
    (void)state;
    enum pg_tools_reason why = PG_TOOLS_SAME_MAJOR;
    assert_null(choose(NULL, 0, 15, &why));
    assert_int_equal(why, PG_TOOLS_NONE);
    assert_null(choose(NULL, 0, 15, NULL));
}

static void test_first_of_a_major_is_preferred(void **state)
{
    (void)state;
    /* two directories of the same major: the order of pg.bindir decides */
    const struct pg_tool_candidate c[] = {CAND("/a/18", 18), CAND("/b/18", 18), CAND("/a/15", 15),
                                          CAND("/b/15", 15)};
    assert_string_equal(choose(c, 4, 15, NULL)->dir, "/a/15");
    assert_string_equal(choose(c, 4, 16, NULL)->dir, "/a/18");
}

static void test_a_pg_dump_that_does_not_run_is_never_chosen(void **state)
{
    (void)state;
    const struct pg_tool_candidate c[] = {CAND("/18", 18), BROKEN("/broken")};
    /* server major 0: the broken one's major (0) would otherwise qualify */
    enum pg_tools_reason why = PG_TOOLS_SAME_MAJOR;
    assert_null(choose(c + 1, 1, 0, &why));
    assert_int_equal(why, PG_TOOLS_NONE);
    assert_string_equal(choose(c, 2, 0, NULL)->dir, "/18");
}

static void test_version_number(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"pg_dump (PostgreSQL) 18.1 (Debian 18.1-1)", "18.1"},
        {"pg_dump (PostgreSQL) 15.18", "15.18"},
        {"pg_dump (PostgreSQL) 18devel", "18devel"},
        {"pg_dump (PostgreSQL) 9.6.24", "9.6.24"},
        {"pg_dump 16.2", "16.2"},
        {"something else", "something else"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *n = pg_version_number(cases[i][0]);
        assert_string_equal(n, cases[i][1]);
        free(n);
    }
}

/* ---- the scan, over stand-ins: what is tested is the discovery --------- */

/* DIR/pg_dump: a script printing version (or failing when version is NULL). */
static void fake_pg_dump(const char *root, const char *sub, const char *version, mode_t mode)
{
    char *dir = xasprintf("%s/%s", root, sub);
    char *cmd = xasprintf("mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    char *body = version ? xasprintf("#!/bin/sh\necho '%s'\n", version)
                         : xstrdup("#!/bin/sh\necho 'cannot start' >&2\nexit 1\n");
    char *path = test_write_file(dir, "pg_dump", body);
    assert_int_equal(chmod(path, mode), 0);
    free(path);
    free(body);
    free(cmd);
    free(dir);
}

static void test_scan_orders_newest_first_and_keeps_bindir_order(void **state)
{
    (void)state;
    char *root = test_tmpdir();
    fake_pg_dump(root, "lib/15/bin", "pg_dump (PostgreSQL) 15.18", 0755);
    fake_pg_dump(root, "lib/18/bin", "pg_dump (PostgreSQL) 18.1 (Debian 18.1-1)", 0755);
    fake_pg_dump(root, "lib/9.6/bin", "pg_dump (PostgreSQL) 9.6.24", 0755);
    fake_pg_dump(root, "local/bin", "pg_dump (PostgreSQL) 18.0", 0755);
    fake_pg_dump(root, "broken/bin", NULL, 0755);
    fake_pg_dump(root, "noexec/bin", "pg_dump (PostgreSQL) 17.0", 0644);
    char *cmd = xasprintf("mkdir -p '%s/empty/bin'", root);
    assert_int_equal(system(cmd), 0);
    free(cmd);

    sv_strlist bindir = {0};
    char *p;
    strlist_push(&bindir, p = xasprintf("%s/broken/bin", root));
    free(p);
    strlist_push(&bindir, p = xasprintf("%s/lib/*/bin", root));
    free(p);
    strlist_push(&bindir, p = xasprintf("%s/empty/bin", root));
    free(p);
    strlist_push(&bindir, p = xasprintf("%s/local/bin", root));
    free(p);
    strlist_push(&bindir, p = xasprintf("%s/lib/15/bin", root)); /* again: listed once */
    free(p);
    strlist_push(&bindir, p = xasprintf("%s/noexec/bin", root));
    free(p);
    strlist_push(&bindir, p = xasprintf("%s/nothing-*/bin", root));
    free(p);

    struct pg_tool_candidates c;
    pg_tools_scan(&bindir, &c);
    assert_int_equal(c.n, 6);
    static const char *const dirs[] = {"lib/18/bin",  "local/bin",  "lib/15/bin",
                                       "lib/9.6/bin", "broken/bin", "noexec/bin"};
    static const int majors[] = {18, 18, 15, 9, 0, 0};
    for (size_t i = 0; i < c.n; i++) {
        char *want = xasprintf("%s/%s", root, dirs[i]);
        assert_string_equal(c.items[i].dir, want);
        assert_int_equal(c.items[i].major, majors[i]);
        assert_true((c.items[i].version == NULL) == (c.items[i].error != NULL));
        free(want);
    }
    assert_string_equal(c.items[0].version, "pg_dump (PostgreSQL) 18.1 (Debian 18.1-1)");
    assert_non_null(strstr(c.items[4].error, "status 1"));
    assert_non_null(strstr(c.items[5].error, "not executable"));

    /* the same list serves the choice: 16 gets the first 18, in bindir order */
    enum pg_tools_reason why;
    const struct pg_tool_candidate *t = pg_tools_choose(c.items, c.n, 16, &why);
    assert_ptr_equal(t, &c.items[0]);
    assert_int_equal(why, PG_TOOLS_OLDEST_NEWER);

    pg_tool_candidates_free(&c);
    strlist_free(&bindir);
    test_rmtree(root);
    free(root);
}

static void test_find_lists_the_majors_found_when_none_can_serve(void **state)
{
    (void)state;
    char *root = test_tmpdir();
    fake_pg_dump(root, "15/bin", "pg_dump (PostgreSQL) 15.18", 0755);
    fake_pg_dump(root, "13/bin", "pg_dump (PostgreSQL) 13.9", 0755);
    sv_config cfg = {0};
    char *p = xasprintf("%s/*/bin", root);
    strlist_push(&cfg.pg_bindir, p);
    free(p);

    struct pg_tools t;
    sv_error err = {0};
    assert_int_equal(pg_tools_find(&cfg, 18, &t, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    char *m15 = xasprintf("major 15 in %s/15/bin", root);
    char *m13 = xasprintf("major 13 in %s/13/bin", root);
    assert_non_null(strstr(err.msg, m15));
    assert_non_null(strstr(err.msg, m13));
    assert_true(strstr(err.msg, m15) < strstr(err.msg, m13));
    assert_non_null(strstr(err.hint, "postgresql-client-18"));

    assert_int_equal(pg_tools_find(&cfg, 14, &t, &err), 0);
    assert_int_equal(t.major, 15);
    assert_int_equal(t.reason, PG_TOOLS_OLDEST_NEWER);
    pg_tools_free(&t);
    assert_int_equal(pg_tools_find(&cfg, 13, &t, &err), 0);
    assert_int_equal(t.major, 13);
    assert_int_equal(t.reason, PG_TOOLS_SAME_MAJOR);
    assert_string_equal(t.dump_version, "pg_dump (PostgreSQL) 13.9");
    pg_tools_free(&t);

    strlist_free(&cfg.pg_bindir);
    strlist_push(&cfg.pg_bindir, "/nonexistent/sauve/bin");
    assert_int_equal(pg_tools_find(&cfg, 15, &t, &err), -1);
    assert_non_null(strstr(err.msg, "none found in SAUVE_PG_BINDIR (/nonexistent/sauve/bin)"));
    strlist_free(&cfg.pg_bindir);

    free(m15);
    free(m13);
    test_rmtree(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_major_wins_over_newer),
        cmocka_unit_test(test_only_newer_takes_the_oldest_newer),
        cmocka_unit_test(test_only_one_newer),
        cmocka_unit_test(test_only_older_is_none),
        cmocka_unit_test(test_nothing_is_none),
        cmocka_unit_test(test_first_of_a_major_is_preferred),
        cmocka_unit_test(test_a_pg_dump_that_does_not_run_is_never_chosen),
        cmocka_unit_test(test_version_number),
        cmocka_unit_test(test_scan_orders_newest_first_and_keeps_bindir_order),
        cmocka_unit_test(test_find_lists_the_majors_found_when_none_can_serve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
