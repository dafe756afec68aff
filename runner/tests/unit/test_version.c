/* Tests of runner/src/cli/version.c: where the record of sources is, how it
 * is read (and refused), and the libraries' versions. */
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

#include "cli/version.h"
#include "common/mem.h"

static void test_sources_path_is_beside_the_executable(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"/usr/local/bin/sauve", "/usr/local/share/sauve/sources.json"},
        {"/work/main/build/sauve", "/work/main/share/sauve/sources.json"},
        {"/opt/x//bin//sauve", "/opt/x/share/sauve/sources.json"},
        {"/bin/sauve", "/share/sauve/sources.json"},
        {"/sauve", "/share/sauve/sources.json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *p = version_sources_path(cases[i][0]);
        assert_string_equal(p, cases[i][1]);
        free(p);
    }
}

/* Reads content written to a file; returns the state, sets *problem. */
static enum version_sources read_content(const char *content, json_t **sources, char **problem)
{
    char *dir = test_tmpdir();
    char *path = test_write_file(dir, "sources.json", content);
    enum version_sources r = version_sources_read(path, sources, problem);
    free(path);
    test_rmtree(dir);
    free(dir);
    return r;
}

static void test_sources_well_formed(void **state)
{
    (void)state;
    json_t *sources;
    char *problem;
    enum version_sources r = read_content(
        "{\"format\": 1, \"sources\": ["
        "{\"package\": \"postgresql-18\", \"version\": \"18.1-1\", \"suite\": \"sid\", "
        "\"built\": \"pg_dump pg_restore pg_dumpall psql 18\"}, "
        "{\"package\": \"openssl\", \"version\": \"3.0.17-1~deb12u2\", \"suite\": \"bookworm-security\", "
        "\"built\": \"libssl libcrypto\", \"extra\": 3}]}",
        &sources, &problem);
    assert_int_equal(r, VERSION_SOURCES_OK);
    assert_null(problem);
    assert_int_equal(json_array_size(sources), 2);
    json_t *e = json_array_get(sources, 1);
    assert_string_equal(json_string_value(json_object_get(e, "suite")), "bookworm-security");
    /* kept as in the file, unknown fields included */
    assert_int_equal(json_integer_value(json_object_get(e, "extra")), 3);
    json_decref(sources);

    r = read_content("{\"format\": 1, \"sources\": []}", &sources, &problem);
    assert_int_equal(r, VERSION_SOURCES_OK);
    assert_int_equal(json_array_size(sources), 0);
    json_decref(sources);
}

static void test_sources_missing(void **state)
{
    (void)state;
    json_t *sources = (json_t *)1;
    char *problem = (char *)1;
    assert_int_equal(version_sources_read("/nonexistent/sauve/share/sauve/sources.json", &sources, &problem),
                     VERSION_SOURCES_MISSING);
    assert_null(sources);
    assert_null(problem);
}

static void test_sources_malformed_are_reported(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"{\"format\": 1, \"sources\": [", "malformed: line 1"},
        {"", "malformed: line"},
        {"[1, 2]", "not a JSON object"},
        {"{\"sources\": []}", "no integer \"format\""},
        {"{\"format\": \"1\", \"sources\": []}", "no integer \"format\""},
        {"{\"format\": 2, \"sources\": []}", "format 2, this sauve reads format 1"},
        {"{\"format\": 1}", "no \"sources\" array"},
        {"{\"format\": 1, \"sources\": {}}", "no \"sources\" array"},
        {"{\"format\": 1, \"sources\": [\"openssl\"]}", "sources[0] has no string \"package\""},
        {"{\"format\": 1, \"sources\": [{\"package\": \"a\", \"version\": \"1\", \"suite\": \"s\", "
         "\"built\": "
         "\"b\"}, {\"package\": \"a\", \"version\": 1, \"suite\": \"s\", \"built\": \"b\"}]}",
         "sources[1] has no string \"version\""},
        {"{\"format\": 1, \"format\": 1, \"sources\": []}", "malformed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *sources;
        char *problem;
        assert_int_equal(read_content(cases[i][0], &sources, &problem), VERSION_SOURCES_BAD);
        assert_null(sources);
        assert_non_null(problem);
        if (!strstr(problem, cases[i][1]))
            fail_msg("case %zu: %s does not contain %s", i, problem, cases[i][1]);
        free(problem);
    }
}

static void test_sources_unreadable(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    json_t *sources;
    char *problem;
    /* a directory where the file should be */
    assert_int_equal(version_sources_read(dir, &sources, &problem), VERSION_SOURCES_BAD);
    assert_non_null(strstr(problem, "unreadable"));
    free(problem);
    /* no permission (root reads anything: only when not root) */
    if (geteuid() != 0) {
        char *path = test_write_file(dir, "sources.json", "{}");
        assert_int_equal(chmod(path, 0), 0);
        assert_int_equal(version_sources_read(path, &sources, &problem), VERSION_SOURCES_BAD);
        assert_non_null(strstr(problem, "unreadable"));
        free(problem);
        free(path);
    }
    test_rmtree(dir);
    free(dir);
}

static void test_libpq_text(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(version_libpq_text(150014, buf, sizeof buf), "15.14");
    assert_string_equal(version_libpq_text(180001, buf, sizeof buf), "18.1");
    assert_string_equal(version_libpq_text(180000, buf, sizeof buf), "18.0");
    assert_string_equal(version_libpq_text(90624, buf, sizeof buf), "9.6.24");
}

static void test_libraries_all_answer(void **state)
{
    (void)state;
    json_t *libs = version_libraries();
    static const char *const names[] = {"openssl", "libcurl", "zstd",  "libpq",
                                        "jansson", "libyaml", "expat", "libarchive"};
    assert_int_equal(json_object_size(libs), sizeof names / sizeof *names);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *v = json_string_value(json_object_get(libs, names[i]));
        assert_non_null(v);
        /* a version number, not a banner: starts with a digit */
        if (!(v[0] >= '0' && v[0] <= '9'))
            fail_msg("%s: %s", names[i], v);
    }
    json_decref(libs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sources_path_is_beside_the_executable),
        cmocka_unit_test(test_sources_well_formed),
        cmocka_unit_test(test_sources_missing),
        cmocka_unit_test(test_sources_malformed_are_reported),
        cmocka_unit_test(test_sources_unreadable),
        cmocka_unit_test(test_libpq_text),
        cmocka_unit_test(test_libraries_all_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
