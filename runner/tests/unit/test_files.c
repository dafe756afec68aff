/* runner/src/sources/files_conf.c: the trees of SAUVE_FILES and the
 * exclude patterns, parsed and matched with no I/O. */
#include "testutil.h"

#include "common/mem.h"
#include "config/config.h"
#include "sources/files.h"

#include <archive_entry.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

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

/* A tree 3000 directories deep (as deep as an archive may hold), a
 * read-only directory, a file and a symbolic link on the way, is removed
 * with 64 descriptors allowed: one at a time, never through the link. */
static void test_a_deep_tree_is_removed_with_few_descriptors(void **state)
{
    (void)state;
    char top[] = "/tmp/sauve-rm-XXXXXX";
    assert_non_null(mkdtemp(top));
    char outside[] = "/tmp/sauve-rm-out-XXXXXX";
    assert_non_null(mkdtemp(outside));
    char keep[sizeof outside + 8];
    snprintf(keep, sizeof keep, "%s/keep", outside);
    int kfd = open(keep, O_CREAT | O_WRONLY, 0600);
    assert_true(kfd >= 0);
    close(kfd);
    int fd = open(top, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(mkdirat(fd, "t", 0700), 0);
    int cur = openat(fd, "t", O_RDONLY | O_DIRECTORY);
    for (int i = 0; i < 3000; i++) {
        if (i == 100) {
            int f = openat(cur, "file", O_CREAT | O_WRONLY, 0400);
            assert_true(f >= 0);
            close(f);
            assert_int_equal(symlinkat(outside, cur, "link"), 0);
        }
        assert_int_equal(mkdirat(cur, "d", 0700), 0);
        int next = openat(cur, "d", O_RDONLY | O_DIRECTORY);
        assert_true(next >= 0);
        if (i == 1500)
            assert_int_equal(fchmod(cur, 0500), 0);
        close(cur);
        cur = next;
    }
    close(cur);
    struct rlimit old, low = {64, 64};
    getrlimit(RLIMIT_NOFILE, &old);
    low.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    char *path = xasprintf("%s/t", top);
    int rc = files_remove_tree(path);
    setrlimit(RLIMIT_NOFILE, &old);
    assert_int_equal(rc, 0);
    assert_int_equal(faccessat(fd, "t", F_OK, AT_SYMLINK_NOFOLLOW), -1);
    assert_int_equal(access(keep, F_OK), 0);      /* nothing through the link */
    assert_int_equal(files_remove_tree(path), 0); /* gone: nothing to do */
    free(path);
    close(fd);
    unlink(keep);
    rmdir(outside);
    rmdir(top);
}

/* sauve runs with LC_CTYPE C.UTF-8 (main.c): patterns still match bytes,
 * the same with glibc and musl, for names in UTF-8 and in other charsets. */
static void test_patterns_match_bytes_in_any_locale(void **state)
{
    (void)state;
    char *prev = xstrdup(setlocale(LC_CTYPE, NULL));
    if (!setlocale(LC_CTYPE, "C.UTF-8"))
        skip();
    assert_true(files_exclude_match("a?c",
                                    "a\xe9"
                                    "c",
                                    "a\xe9"
                                    "c",
                                    false)); /* Latin-1 */
    assert_true(files_exclude_match("a[\xe8\xe9]c",
                                    "a\xe9"
                                    "c",
                                    "a\xe9"
                                    "c",
                                    false));
    assert_false(files_exclude_match("caf?.txt", "caf\xc3\xa9.txt", "caf\xc3\xa9.txt", false));
    assert_true(files_exclude_match("caf??.txt", "caf\xc3\xa9.txt", "caf\xc3\xa9.txt", false));
    assert_true(files_exclude_match("caf\xc3\xa9.*", "caf\xc3\xa9.txt", "caf\xc3\xa9.txt", false));
    setlocale(LC_CTYPE, prev);
    free(prev);
}

static int check_attr(const char *name, const void *value, size_t size, const char **why)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_xattr_add_entry(e, "user.fine", "1", 1);
    archive_entry_xattr_add_entry(e, name, value, size);
    const char *which = NULL;
    int rc = files_xattrs_check(e, &which, why);
    if (rc != 0)
        assert_string_equal(which, name);
    archive_entry_free(e);
    return rc;
}

static void test_attributes_a_restore_may_set(void **state)
{
    (void)state;
    static const char big[70000];
    /* user::rw- user:1234:rw- group::r-- mask::rw- other::r-- as setfacl writes them */
    static const unsigned char acl[] = {2,    0,    0,    0,    1,    0,    6,  0,    0xff, 0xff, 0xff,
                                        0xff, 2,    0,    6,    0,    0xd2, 4,  0,    0,    4,    0,
                                        4,    0,    0xff, 0xff, 0xff, 0xff, 16, 0,    6,    0,    0xff,
                                        0xff, 0xff, 0xff, 32,   0,    4,    0,  0xff, 0xff, 0xff, 0xff};
    const char *why = NULL;
    char longest[256];
    memset(longest, 'n', sizeof longest - 1);
    memcpy(longest, "user.", 5);
    longest[255] = '\0';
    assert_int_equal(check_attr("user.mime_type", "text/plain", 10, &why), 0);
    assert_int_equal(check_attr("user.empty", "", 0, &why), 0);
    assert_int_equal(check_attr("user.largest", big, 65536, &why), 0);
    assert_int_equal(check_attr(longest, "v", 1, &why), 0);
    assert_int_equal(check_attr("security.selinux", "system_u:object_r:httpd_sys_content_t:s0", 40, &why), 0);
    assert_int_equal(check_attr("system.posix_acl_access", acl, sizeof acl, &why), 0);
    assert_int_equal(check_attr("system.posix_acl_default", acl, sizeof acl, &why), 0);

    assert_int_equal(check_attr("security.capability", "\1\0\0\2", 4, &why), -1);
    assert_string_equal(why, "grants file capabilities");
    assert_int_equal(check_attr("user.too-large", big, 65537, &why), -1);
    assert_string_equal(why, "is larger than Linux allows");
    char too_long[257];
    memset(too_long, 'n', 256);
    memcpy(too_long, "user.", 5);
    too_long[256] = '\0';
    assert_int_equal(check_attr(too_long, "v", 1, &why), -1);
    assert_string_equal(why, "has a name longer than Linux allows");
    assert_int_equal(check_attr("user.", "v", 1, &why), -1);
    assert_string_equal(why, "has an empty name");
    /* an ACL the kernel would refuse: cut, wrong version, unknown tag, perm beyond rwx */
    unsigned char bad[sizeof acl];
    assert_int_equal(check_attr("system.posix_acl_access", acl, sizeof acl - 1, &why), -1);
    assert_string_equal(why, "is not a POSIX ACL the kernel takes");
    for (size_t at = 0; at < 3; at++) {
        memcpy(bad, acl, sizeof acl);
        bad[at == 0 ? 0 : at == 1 ? 4 : 6] = at == 0 ? 1 : at == 1 ? 3 : 8;
        assert_int_equal(check_attr("system.posix_acl_default", bad, sizeof bad, &why), -1);
    }
    /* what hands out privileges or steers the kernel, and unknown namespaces */
    const char *others[] = {"security.SMACK64EXEC",
                            "security.ima",
                            "security.evm",
                            "trusted.overlay.redirect",
                            "trusted.x",
                            "system.nfs4_acl",
                            "system.posix_acl_access2",
                            "posix_acl_access",
                            "",
                            "user"};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        assert_int_equal(check_attr(others[i], "v", 1, &why), -1);
        assert_non_null(strstr(why, "is not one sauve restores"));
    }
    /* many attributes, each allowed, more than a file holds in all */
    struct archive_entry *e = archive_entry_new();
    for (int i = 0; i < 40; i++) {
        char n[32];
        snprintf(n, sizeof n, "user.v%d", i);
        archive_entry_xattr_add_entry(e, n, big, 60000);
    }
    const char *which = NULL;
    assert_int_equal(files_xattrs_check(e, &which, &why), -1);
    assert_string_equal(why, "makes the entry's attributes more than a file can hold");
    archive_entry_free(e);
}

/* libarchive's reader returns each attribute twice (LIBARCHIVE.xattr and
 * SCHILY.xattr records): the copy keeps one of each name. */
static void test_a_copy_holds_each_attribute_once(void **state)
{
    (void)state;
    struct archive_entry *e = archive_entry_new();
    assert_null(files_xattrs_copy(e));
    archive_entry_xattr_add_entry(e, "user.b", "3", 1);
    archive_entry_xattr_add_entry(e, "user.a", "2", 1);
    archive_entry_xattr_add_entry(e, "user.b", "3", 1);
    archive_entry_xattr_add_entry(e, "user.a", "2", 1);
    struct files_xattrs *x = files_xattrs_copy(e);
    assert_non_null(x);
    char dir[] = "/tmp/sauve-xattr-XXXXXX";
    assert_non_null(mkdtemp(dir));
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    size_t skipped = 0;
    const char *failed = NULL;
    if (files_xattrs_write(fd, x, false, &skipped, &failed) == 0) {
        char names[64], v[4];
        ssize_t n = flistxattr(fd, names, sizeof names);
        assert_int_equal(n, (ssize_t)sizeof "user.a\0user.b");
        assert_int_equal(fgetxattr(fd, "user.b", v, sizeof v), 1);
        assert_int_equal(v[0], '3');
    } else {
        /* a temp directory on a file system without user attributes */
        assert_string_equal(failed, "user.a");
    }
    assert_int_equal(skipped, 0);
    files_xattrs_free(x);
    archive_entry_free(e);
    close(fd);
    rmdir(dir);
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
        cmocka_unit_test(test_a_deep_tree_is_removed_with_few_descriptors),
        cmocka_unit_test(test_patterns_match_bytes_in_any_locale),
        cmocka_unit_test(test_attributes_a_restore_may_set),
        cmocka_unit_test(test_a_copy_holds_each_attribute_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
