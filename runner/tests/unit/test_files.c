/* runner/src/sources/files_conf.c: the trees of SAUVE_FILES and the
 * exclude patterns, parsed and matched with no I/O. */
#include "testutil.h"

#include "common/mem.h"
#include "config/config.h"
#include "sources/files.h"

static void test_patterns_without_a_slash_match_a_name_at_any_depth(void **state)
{
    (void)state;
    assert_true(files_exclude_match("*.tmp", "a.tmp", "a.tmp", false));
    assert_true(files_exclude_match("*.tmp", "x/y/a.tmp", "a.tmp", false));
    assert_false(files_exclude_match("*.tmp", "a.tmp.keep", "a.tmp.keep", false));
    assert_true(files_exclude_match("cache", "x/cache", "cache", true));
    /* '*' does match a leading dot in a name, as .gitignore does */
    assert_true(files_exclude_match("*.swp", "x/.a.swp", ".a.swp", false));
}

static void test_patterns_with_a_slash_match_the_path_from_the_top(void **state)
{
    (void)state;
    assert_true(files_exclude_match("tmp/*", "tmp/a", "a", false));
    assert_false(files_exclude_match("tmp/*", "x/tmp/a", "a", false));
    /* '*' stays within one component of a path */
    assert_false(files_exclude_match("tmp/*", "tmp/a/b", "b", false));
    assert_true(files_exclude_match("/thumbs", "thumbs", "thumbs", true));
    assert_false(files_exclude_match("/thumbs", "x/thumbs", "thumbs", true));
    assert_true(files_exclude_match("a/*/c", "a/b/c", "c", false));
}

static void test_a_trailing_slash_matches_directories_only(void **state)
{
    (void)state;
    assert_true(files_exclude_match("cache/", "x/cache", "cache", true));
    assert_false(files_exclude_match("cache/", "x/cache", "cache", false));
    assert_true(files_exclude_match("/x/cache/", "x/cache", "cache", true));
}

static void test_an_exclude_file_is_one_pattern_a_line(void **state)
{
    (void)state;
    const char text[] = "# comment\n\n  *.tmp  \r\nthumbs/\n/\n   # indented comment\nlast";
    char **list = NULL;
    size_t n = 0;
    files_exclude_parse_lines(text, sizeof text - 1, &list, &n);
    assert_int_equal(n, 3);
    assert_string_equal(list[0], "*.tmp");
    assert_string_equal(list[1], "thumbs/");
    assert_string_equal(list[2], "last");
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static int load(sv_config *cfg, const char *const *env, sv_error *err)
{
    struct config_load_options o = {.env = env, .file = "/dev/null"};
    return config_load(cfg, &o, err);
}

static void test_trees_and_their_patterns(void **state)
{
    (void)state;
    const char *env[] = {"SAUVE_FILES=uploads=/data/uploads/,media=/data/media",
                         "SAUVE_FILES_EXCLUDE=*.tmp,media:thumbs/,other:x", NULL};
    sv_config cfg;
    sv_error err = {0};
    assert_int_equal(load(&cfg, env, &err), 0);
    assert_true(files_configured(&cfg));
    struct files_tree *t = NULL;
    size_t n = 0;
    assert_int_equal(files_trees_parse(&cfg, &t, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(t[0].name, "uploads");
    assert_string_equal(t[0].path, "/data/uploads");
    /* "other:x" names no tree: a pattern of every tree, colon included */
    assert_int_equal(t[0].n_excludes, 2);
    assert_string_equal(t[0].excludes[0], "*.tmp");
    assert_string_equal(t[0].excludes[1], "other:x");
    assert_int_equal(t[1].n_excludes, 3);
    assert_string_equal(t[1].excludes[1], "thumbs/");
    files_trees_free(t, n);
    config_free(&cfg);
}

static void test_bad_trees_are_configuration_errors_naming_the_setting(void **state)
{
    (void)state;
    const char *bad[] = {"SAUVE_FILES=/data/uploads", "SAUVE_FILES=up=data/uploads",
                         "SAUVE_FILES=up=/a,up=/b", "SAUVE_FILES=../x=/a", "SAUVE_FILES=up="};
    const char *want[] = {"is not NAME=/path", "is not absolute", "given twice", "tree name",
                          "is not NAME=/path"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *env[] = {bad[i], NULL};
        sv_config cfg;
        sv_error err = {0};
        assert_int_equal(load(&cfg, env, &err), 0);
        struct files_tree *t = NULL;
        size_t n = 0;
        assert_int_equal(files_trees_parse(&cfg, &t, &n, &err), -1);
        assert_int_equal(err.code, SV_EXIT_CONFIG);
        assert_non_null(strstr(err.msg, "SAUVE_FILES"));
        if (!strstr(err.msg, want[i]))
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i], err.msg, want[i]);
        config_free(&cfg);
    }
}

static void test_tree_names(void **state)
{
    (void)state;
    assert_true(files_name_is_valid("uploads"));
    assert_true(files_name_is_valid("a.b_c-1"));
    assert_false(files_name_is_valid(""));
    assert_false(files_name_is_valid(".hidden"));
    assert_false(files_name_is_valid("a/b"));
    assert_false(files_name_is_valid("a b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patterns_without_a_slash_match_a_name_at_any_depth),
        cmocka_unit_test(test_patterns_with_a_slash_match_the_path_from_the_top),
        cmocka_unit_test(test_a_trailing_slash_matches_directories_only),
        cmocka_unit_test(test_an_exclude_file_is_one_pattern_a_line),
        cmocka_unit_test(test_trees_and_their_patterns),
        cmocka_unit_test(test_bad_trees_are_configuration_errors_naming_the_setting),
        cmocka_unit_test(test_tree_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
