#include "testutil.h"

#include <errno.h>
#include <limits.h>

#include "common/log.h"
#include "config/config.h"

struct fx {
    char *dir;
    char *empty; /* an empty config file, so that /etc/sauve/config.yaml never leaks in */
    sv_config cfg;
    sv_error err;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    fx->dir = test_tmpdir();
    fx->empty = test_write_file(fx->dir, "empty.yaml", "");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    config_free(&fx->cfg);
    test_rmtree(fx->dir);
    free(fx->dir);
    free(fx->empty);
    free(fx);
    log_clear_secrets();
    return 0;
}

/* Loads with the given env (NULL-terminated) and file; no flags. */
static int load(struct fx *fx, const char *const *env, const char *file)
{
    config_free(&fx->cfg);
    sv_error_clear(&fx->err);
    struct config_load_options o = {.env = env, .file = file ? file : fx->empty};
    return config_load(&fx->cfg, &o, &fx->err);
}

static int load_flags(struct fx *fx, const char *const *env, const char *file,
                      const struct config_flag *flags, size_t n)
{
    config_free(&fx->cfg);
    sv_error_clear(&fx->err);
    struct config_load_options o = {.env = env, .file = file ? file : fx->empty, .flags = flags, .nflags = n};
    return config_load(&fx->cfg, &o, &fx->err);
}

/* Loads a config file holding yaml, with no env. */
static int load_yaml(struct fx *fx, const char *yaml)
{
    static const char *const no_env[] = {NULL};
    char *path = test_write_file(fx->dir, "config.yaml", yaml);
    int rc = load(fx, no_env, path);
    free(path);
    return rc;
}

#define assert_contains(hay, needle)                                                                         \
    do {                                                                                                     \
        if (!strstr((hay), (needle)))                                                                        \
            fail_msg("'%s' does not contain '%s'", (hay), (needle));                                         \
    } while (0)

#define assert_config_error(fx, needle)                                                                      \
    do {                                                                                                     \
        assert_int_equal((fx)->err.code, SV_EXIT_CONFIG);                                                    \
        assert_contains((fx)->err.msg, needle);                                                              \
    } while (0)

static void test_option_names(void **state)
{
    (void)state;
    size_t n = 0;
    const struct opt_def *opts = config_options(&n);
    assert_int_equal(n, OPT__COUNT);
    assert_ptr_equal(config_option(OPT_ID_zstd_level), &opts[OPT_ID_zstd_level]);

    const struct opt_def *o = config_option(OPT_ID_pg_databases);
    assert_string_equal(o->path, "pg.databases");
    assert_string_equal(o->env, "SAUVE_PG_DATABASES");
    assert_string_equal(o->flag, "--pg-databases");
    assert_int_equal(o->type, OPT_TYPE_LIST);

    o = config_option(OPT_ID_progress_interval);
    assert_string_equal(o->env, "SAUVE_PROGRESS_INTERVAL");
    assert_string_equal(o->flag, "--progress-interval");
    assert_int_equal(o->min, 1);
    assert_int_equal(o->max, 3600);
    assert_string_equal(o->def, "10");

    o = config_option(OPT_ID_pg_host);
    assert_string_equal(o->env, "PGHOST");
    assert_string_equal(o->flag, "--pg-host");

    o = config_option(OPT_ID_pg_password);
    assert_string_equal(o->env, "PGPASSWORD");
    assert_null(o->flag);

    o = config_option(OPT_ID_log_format);
    assert_string_equal(o->def, "auto");
    assert_string_equal(o->allowed, "auto|json|text");
    assert_int_equal(o->min, 0);
    assert_null(config_option(OPT_ID_zstd_level)->allowed);
}

static void test_defaults_and_unset(void **state)
{
    struct fx *fx = *state;
    const char *env[] = {"SAUVE_NAME=", "HOME=/root", NULL};
    assert_int_equal(load(fx, env, NULL), 0);
    sv_config *c = &fx->cfg;
    assert_string_equal(c->name, "default");
    assert_int_equal(c->origin[OPT_ID_name], ORIGIN_DEFAULT);
    assert_null(c->storage);
    assert_int_equal(c->origin[OPT_ID_storage], ORIGIN_UNSET);
    assert_int_equal(c->pg_port, 0);
    assert_int_equal(c->origin[OPT_ID_pg_port], ORIGIN_UNSET);
    assert_true(c->pg_globals);
    assert_int_equal(c->zstd_level, 3);
    assert_string_equal(c->log_format, "auto");
    assert_int_equal(c->pg_databases.n, 0);
    assert_int_equal(c->pg_bindir.n, 3);
    assert_string_equal(c->pg_bindir.items[0], "/usr/lib/postgresql/*/bin");
    assert_string_equal(c->pg_bindir.items[2], "/usr/bin");
    assert_string_equal(c->file, fx->empty);
    assert_int_equal(c->warnings.n, 0);
}

static void test_precedence(void **state)
{
    struct fx *fx = *state;
    char *file = test_write_file(fx->dir, "c.yaml", "# sauve\nname: nightly\nzstd:\n  level: 5\n");
    const char *no_env[] = {NULL};
    const char *env[] = {"SAUVE_ZSTD_LEVEL=7", NULL};
    const struct config_flag flag = {"zstd-level", "9"};
    char buf[256];

    assert_int_equal(load(fx, no_env, NULL), 0);
    assert_int_equal(fx->cfg.zstd_level, 3);
    assert_string_equal(config_describe_origin(&fx->cfg, OPT_ID_zstd_level, buf, sizeof buf), "default");

    assert_int_equal(load(fx, no_env, file), 0);
    assert_int_equal(fx->cfg.zstd_level, 5);
    assert_int_equal(fx->cfg.origin[OPT_ID_zstd_level], ORIGIN_FILE);
    char *want = malloc(strlen(file) + 64);
    sprintf(want, "config file %s line 4", file);
    assert_string_equal(config_describe_origin(&fx->cfg, OPT_ID_zstd_level, buf, sizeof buf), want);
    sprintf(want, "config file %s line 2", file);
    assert_string_equal(config_describe_origin(&fx->cfg, OPT_ID_name, buf, sizeof buf), want);

    assert_int_equal(load(fx, env, file), 0);
    assert_int_equal(fx->cfg.zstd_level, 7);
    assert_int_equal(fx->cfg.origin[OPT_ID_zstd_level], ORIGIN_ENV);
    assert_string_equal(config_describe_origin(&fx->cfg, OPT_ID_zstd_level, buf, sizeof buf),
                        "environment SAUVE_ZSTD_LEVEL");
    assert_string_equal(fx->cfg.name, "nightly"); /* the file still supplies what env does not */

    assert_int_equal(load_flags(fx, env, file, &flag, 1), 0);
    assert_int_equal(fx->cfg.zstd_level, 9);
    assert_int_equal(fx->cfg.origin[OPT_ID_zstd_level], ORIGIN_FLAG);
    assert_string_equal(config_describe_origin(&fx->cfg, OPT_ID_zstd_level, buf, sizeof buf),
                        "flag --zstd-level");
    assert_string_equal(config_describe_origin(&fx->cfg, OPT_ID_storage, buf, sizeof buf), "not set");
    free(want);
    free(file);
}

static void test_config_file_from_env(void **state)
{
    struct fx *fx = *state;
    char *file = test_write_file(fx->dir, "from-env.yaml", "storage: file:///var/backups\n");
    char *var = malloc(strlen(file) + 32);
    sprintf(var, "SAUVE_CONFIG=%s", file);
    const char *env[] = {var, NULL};
    config_free(&fx->cfg);
    struct config_load_options o = {.env = env};
    assert_int_equal(config_load(&fx->cfg, &o, &fx->err), 0);
    assert_string_equal(fx->cfg.storage, "file:///var/backups");
    assert_string_equal(fx->cfg.file, file);
    assert_int_equal(fx->cfg.warnings.n, 0); /* SAUVE_CONFIG is known */
    free(var);
    free(file);
}

static void test_missing_named_file(void **state)
{
    struct fx *fx = *state;
    const char *no_env[] = {NULL};
    assert_int_equal(load(fx, no_env, "/nonexistent/sauve.yaml"), -1);
    assert_config_error(fx, "config file /nonexistent/sauve.yaml does not exist");
    assert_contains(fx->err.msg, "--config");
    assert_null(fx->cfg.file); /* left freed */

    const char *env[] = {"SAUVE_CONFIG=/nonexistent/env.yaml", NULL};
    config_free(&fx->cfg);
    struct config_load_options o = {.env = env};
    assert_int_equal(config_load(&fx->cfg, &o, &fx->err), -1);
    assert_config_error(fx, "/nonexistent/env.yaml");
    assert_contains(fx->err.msg, "SAUVE_CONFIG");
}

static void test_empty_and_comment_only_file(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(load_yaml(fx, ""), 0);
    assert_string_equal(fx->cfg.name, "default");
    assert_int_equal(load_yaml(fx, "# nothing here yet\n\n   # storage: s3://x\n"), 0);
    assert_int_equal(fx->cfg.origin[OPT_ID_storage], ORIGIN_UNSET);
    assert_int_equal(load_yaml(fx, "---\n"), 0);
    assert_int_equal(load_yaml(fx, "pg:\n  # host: db\n"), 0); /* a group left empty is null */
}

static void test_secret_from_file(void **state)
{
    struct fx *fx = *state;
    char *secret = test_write_file(fx->dir, "pgpass", "s3cr3t-pass\n");
    char *var = malloc(strlen(secret) + 32);
    sprintf(var, "PGPASSWORD_FILE=%s", secret);
    const char *env[] = {var, NULL};
    assert_int_equal(load(fx, env, NULL), 0);
    assert_string_equal(fx->cfg.pg_password, "s3cr3t-pass");
    assert_int_equal(fx->cfg.origin[OPT_ID_pg_password], ORIGIN_ENV);
    assert_int_equal(fx->cfg.warnings.n, 0);

    /* Windows line ending: only the final \r\n goes; inner newlines stay */
    free(test_write_file(fx->dir, "pgpass", "two\nlines\r\n"));
    assert_int_equal(load(fx, env, NULL), 0);
    assert_string_equal(fx->cfg.pg_password, "two\nlines");

    free(test_write_file(fx->dir, "pgpass", "keep-one-newline\n\n"));
    assert_int_equal(load(fx, env, NULL), 0);
    assert_string_equal(fx->cfg.pg_password, "keep-one-newline\n");

    /* the same through the config file */
    char *yaml = malloc(strlen(secret) + 64);
    sprintf(yaml, "pg:\n  host: db\n  password_file: %s\n", secret);
    assert_int_equal(load_yaml(fx, yaml), 0);
    assert_string_equal(fx->cfg.pg_password, "keep-one-newline\n");
    assert_int_equal(fx->cfg.origin[OPT_ID_pg_password], ORIGIN_FILE);
    assert_int_equal(fx->cfg.line[OPT_ID_pg_password], 3);

    /* plain PGPASSWORD */
    const char *plain[] = {"PGPASSWORD=direct-secret", NULL};
    assert_int_equal(load(fx, plain, NULL), 0);
    assert_string_equal(fx->cfg.pg_password, "direct-secret");
    free(yaml);
    free(var);
    free(secret);
}

static void test_secret_is_masked_in_logs(void **state)
{
    struct fx *fx = *state;
    const char *env[] = {"PGPASSWORD=masked-in-logs", NULL};
    assert_int_equal(load(fx, env, NULL), 0);
    char *term = malloc(strlen(fx->dir) + 16);
    sprintf(term, "%s/term", fx->dir);
    log_set_termination_path(term);
    log_summary(0, "password is %s", "masked-in-logs");
    log_set_termination_path(NULL);
    FILE *f = fopen(term, "r");
    assert_non_null(f);
    char line[256] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_null(strstr(line, "masked-in-logs"));
    assert_contains(line, "***");
    free(term);
}

static void test_secret_too_short_is_refused(void **state)
{
    struct fx *fx = *state;
    /* masking "abc" would hide it inside every word that holds it */
    const char *env[] = {"PGPASSWORD=abc", NULL};
    assert_int_equal(load(fx, env, NULL), -1);
    assert_config_error(fx, "PGPASSWORD: a secret of 3 characters is too short to be kept out of the logs");
    assert_contains(fx->err.hint, "at least 4 characters");
    assert_null(strstr(fx->err.msg, "abc"));

    /* the same from a file, and for every secret */
    char *path = test_write_file(fx->dir, "key", "k1\n");
    char *var = malloc(strlen(path) + 32);
    sprintf(var, "AWS_SECRET_ACCESS_KEY_FILE=%s", path);
    const char *from_file[] = {var, NULL};
    assert_int_equal(load(fx, from_file, NULL), -1);
    assert_config_error(fx, "AWS_SECRET_ACCESS_KEY_FILE: a secret of 2 characters is too short");
    free(var);
    free(path);

    assert_int_equal(load_yaml(fx, "pg:\n  password: x\n"), -1);
    assert_config_error(fx, "a secret of 1 character is too short");
}

static void test_short_secret_warns_and_is_masked(void **state)
{
    struct fx *fx = *state;
    const char *env[] = {"PGPASSWORD=s3cr3t", NULL};
    assert_int_equal(load(fx, env, NULL), 0);
    assert_int_equal(fx->cfg.warnings.n, 1);
    assert_contains(fx->cfg.warnings.items[0], "PGPASSWORD is a secret of only 6 characters");
    assert_null(strstr(fx->cfg.warnings.items[0], "s3cr3t"));
    char *masked = log_mask("user=x password=s3cr3t");
    assert_string_equal(masked, "user=x password=***");
    free(masked);

    /* 8 characters: no warning */
    const char *longer[] = {"PGPASSWORD=s3cr3t-8", NULL};
    assert_int_equal(load(fx, longer, NULL), 0);
    assert_int_equal(fx->cfg.warnings.n, 0);
}

static void test_secret_both_set(void **state)
{
    struct fx *fx = *state;
    const char *env[] = {"PGPASSWORD=do-not-print-me", "PGPASSWORD_FILE=/run/secrets/pgpass", NULL};
    assert_int_equal(load(fx, env, NULL), -1);
    assert_config_error(fx, "PGPASSWORD and PGPASSWORD_FILE are both set; use one");
    assert_null(strstr(fx->err.msg, "do-not-print-me"));
    assert_null(strstr(fx->err.hint, "do-not-print-me"));

    assert_int_equal(load_yaml(fx, "pg:\n  password: do-not-print-me\n  password_file: /x\n"), -1);
    assert_config_error(fx, "line 3");
    assert_null(strstr(fx->err.msg, "do-not-print-me"));
}

static void test_secret_file_missing(void **state)
{
    struct fx *fx = *state;
    const char *env[] = {"PGPASSWORD_FILE=/nonexistent/pgpass", NULL};
    assert_int_equal(load(fx, env, NULL), -1);
    assert_config_error(fx, "PGPASSWORD_FILE");
    assert_contains(fx->err.msg, "/nonexistent/pgpass");
    assert_contains(fx->err.msg, strerror(ENOENT));
    assert_null(fx->cfg.pg_password);
}

static void test_secret_flag_refused(void **state)
{
    struct fx *fx = *state;
    const char *no_env[] = {NULL};
    const struct config_flag flag = {"pg-password", "hunter2-secret"};
    assert_int_equal(load_flags(fx, no_env, NULL, &flag, 1), -1);
    assert_int_equal(fx->err.code, SV_EXIT_USAGE);
    assert_string_equal(fx->err.hint,
                        "secrets are not accepted on the command line (visible in the process list): "
                        "use PGPASSWORD or PGPASSWORD_FILE");
    assert_null(strstr(fx->err.msg, "hunter2-secret"));

    const struct config_flag file_flag = {"pg-password-file", "/run/secrets/pgpass"};
    assert_int_equal(load_flags(fx, no_env, NULL, &file_flag, 1), -1);
    assert_int_equal(fx->err.code, SV_EXIT_USAGE);
}

static void test_unknown_flag(void **state)
{
    struct fx *fx = *state;
    const char *no_env[] = {NULL};
    const struct config_flag typo = {"pg-databses", "app"};
    assert_int_equal(load_flags(fx, no_env, NULL, &typo, 1), -1);
    assert_int_equal(fx->err.code, SV_EXIT_USAGE);
    assert_string_equal(fx->err.msg, "unknown option --pg-databses (did you mean --pg-databases?)");

    const struct config_flag far = {"frobnicate", "1"};
    assert_int_equal(load_flags(fx, no_env, NULL, &far, 1), -1);
    assert_int_equal(fx->err.code, SV_EXIT_USAGE);
    assert_string_equal(fx->err.msg, "unknown option --frobnicate");

    const struct config_flag ok[] = {{"pg-databases", "app, analytics"}, {"pg-globals", NULL}};
    assert_int_equal(load_flags(fx, no_env, NULL, ok, 2), 0);
    assert_int_equal(fx->cfg.pg_databases.n, 2);
    assert_string_equal(fx->cfg.pg_databases.items[1], "analytics");
    assert_true(fx->cfg.pg_globals);
    assert_int_equal(fx->cfg.origin[OPT_ID_pg_globals], ORIGIN_FLAG);
}

static void test_unknown_env_warning(void **state)
{
    struct fx *fx = *state;
    const char *env[] = {"SAUVE_PG_DATABSES=app",
                         "SAUVE_SERVICE_HOST=10.0.0.1",
                         "SAUVE_PORT=tcp://10.0.0.1:80",
                         "PGPASSWORD_FILE=",
                         "SAUVE_CONFIG=",
                         "PATH=/usr/bin",
                         "SAUVE_STORAGE=s3://bucket/prefix",
                         NULL};
    assert_int_equal(load(fx, env, NULL), 0);
    assert_string_equal(fx->cfg.storage, "s3://bucket/prefix");
    assert_int_equal(fx->cfg.warnings.n, 3);
    assert_string_equal(
        fx->cfg.warnings.items[0],
        "unknown environment variable SAUVE_PG_DATABSES ignored (did you mean SAUVE_PG_DATABASES?)");
    assert_string_equal(fx->cfg.warnings.items[1], "unknown environment variable SAUVE_SERVICE_HOST ignored");
    assert_string_equal(fx->cfg.warnings.items[2], "unknown environment variable SAUVE_PORT ignored");
    assert_int_equal(fx->cfg.pg_databases.n, 0);
}

static void test_yaml_nested_and_lists(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(load_yaml(fx, "storage: s3://b/p\n"
                                   "pg:\n"
                                   "  databases: [app, ' analytics ']\n"
                                   "  host: db.example\n"
                                   "  port: 6432\n"
                                   "  globals: no\n"
                                   "  bindir: /opt/pg/bin, ,/usr/bin,\n"
                                   "log:\n"
                                   "  format: JSON\n"),
                     0);
    sv_config *c = &fx->cfg;
    assert_string_equal(c->storage, "s3://b/p");
    assert_int_equal(c->pg_databases.n, 2);
    assert_string_equal(c->pg_databases.items[0], "app");
    assert_string_equal(c->pg_databases.items[1], "analytics");
    assert_int_equal(c->line[OPT_ID_pg_databases], 3);
    assert_string_equal(c->pg_host, "db.example");
    assert_int_equal(c->pg_port, 6432);
    assert_false(c->pg_globals);
    assert_int_equal(c->pg_bindir.n, 2);
    assert_string_equal(c->pg_bindir.items[0], "/opt/pg/bin");
    assert_string_equal(c->pg_bindir.items[1], "/usr/bin");
    assert_string_equal(c->log_format, "json");

    assert_int_equal(load_yaml(fx, "pg:\n  databases:\n    - one\n    - two\n    - three\n"), 0);
    assert_int_equal(fx->cfg.pg_databases.n, 3);
    assert_string_equal(fx->cfg.pg_databases.items[2], "three");
    assert_int_equal(load_yaml(fx, "pg.host: flat\n"), 0);
    assert_string_equal(fx->cfg.pg_host, "flat");
    assert_int_equal(load_yaml(fx, "name: ~\npg:\n  host:\n"), 0); /* nulls leave defaults */
    assert_string_equal(fx->cfg.name, "default");
    assert_null(fx->cfg.pg_host);
}

static void test_list_from_env(void **state)
{
    struct fx *fx = *state;
    const char *env[] = {"SAUVE_PG_DATABASES= app , ,analytics,,", NULL};
    assert_int_equal(load(fx, env, NULL), 0);
    assert_int_equal(fx->cfg.pg_databases.n, 2);
    assert_string_equal(fx->cfg.pg_databases.items[0], "app");
    assert_string_equal(fx->cfg.pg_databases.items[1], "analytics");

    const char *only_commas[] = {"SAUVE_PG_BINDIR=, ,", NULL};
    assert_int_equal(load(fx, only_commas, NULL), 0);
    assert_int_equal(fx->cfg.pg_bindir.n, 3); /* no items is "not given": the default stays */
    assert_int_equal(fx->cfg.origin[OPT_ID_pg_bindir], ORIGIN_DEFAULT);
}

static void test_enum_and_bool(void **state)
{
    struct fx *fx = *state;
    const char *ok[] = {"SAUVE_LOG_LEVEL=Debug", "SAUVE_PG_GLOBALS=OFF", NULL};
    assert_int_equal(load(fx, ok, NULL), 0);
    assert_string_equal(fx->cfg.log_level, "debug");
    assert_false(fx->cfg.pg_globals);

    const char *bad_enum[] = {"SAUVE_LOG_FORMAT=xml", NULL};
    assert_int_equal(load(fx, bad_enum, NULL), -1);
    assert_config_error(fx, "SAUVE_LOG_FORMAT: 'xml' is not one of auto, json, text");

    const char *bad_bool[] = {"SAUVE_PG_GLOBALS=maybe", NULL};
    assert_int_equal(load(fx, bad_bool, NULL), -1);
    assert_config_error(fx, "SAUVE_PG_GLOBALS: 'maybe' is not a boolean");

    static const char *const truthy[] = {"true", "YES", "1", "On"};
    for (size_t i = 0; i < 4; i++) {
        char var[64];
        snprintf(var, sizeof var, "SAUVE_PG_GLOBALS=%s", truthy[i]);
        const char *env[] = {"SAUVE_PG_GLOBALS=false", NULL};
        assert_int_equal(load(fx, env, NULL), 0);
        assert_false(fx->cfg.pg_globals);
        env[0] = var;
        assert_int_equal(load(fx, env, NULL), 0);
        assert_true(fx->cfg.pg_globals);
    }
}

static void test_int_errors_name_their_source(void **state)
{
    struct fx *fx = *state;
    const char *range[] = {"SAUVE_ZSTD_LEVEL=30", NULL};
    assert_int_equal(load(fx, range, NULL), -1);
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_string_equal(fx->err.msg, "SAUVE_ZSTD_LEVEL: '30' is out of range 1..19");

    const char *junk[] = {"PGPORT=54x", NULL};
    assert_int_equal(load(fx, junk, NULL), -1);
    assert_config_error(fx, "PGPORT: '54x' is not an integer");

    const char *huge[] = {"PGPORT=99999999999999999999999", NULL};
    assert_int_equal(load(fx, huge, NULL), -1);
    assert_config_error(fx, "is out of range 1..65535");

    const char *blank[] = {"PGPORT= 5432", NULL};
    assert_int_equal(load(fx, blank, NULL), -1);
    assert_config_error(fx, "is not an integer");

    assert_int_equal(load_yaml(fx, "\nzstd:\n  level: 0\n"), -1);
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_contains(fx->err.msg, "config file ");
    assert_contains(fx->err.msg, "config.yaml line 3 key zstd.level: '0' is out of range 1..19");

    const char *no_env[] = {NULL};
    const struct config_flag flag = {"progress-interval", "-5"};
    assert_int_equal(load_flags(fx, no_env, NULL, &flag, 1), -1);
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_string_equal(fx->err.msg, "--progress-interval: '-5' is out of range 1..3600");

    /* a bad value is reported even when a higher level overrides it */
    const char *good[] = {"SAUVE_ZSTD_LEVEL=4", NULL};
    char *file = test_write_file(fx->dir, "bad.yaml", "zstd: {level: high}\n");
    assert_int_equal(load(fx, good, file), -1);
    assert_config_error(fx, "line 1 key zstd.level: 'high' is not an integer");
    free(file);
}

static void test_yaml_malformed(void **state)
{
    struct fx *fx = *state;
    /* bad indentation on line 3 */
    assert_int_equal(load_yaml(fx, "pg:\n  host: db\n port: 5432\n"), -1);
    assert_config_error(fx, "config.yaml line 3 column ");

    assert_int_equal(load_yaml(fx, "storage: s3://b\nname: [unclosed\n\n"), -1);
    assert_config_error(fx, "config file ");
    assert_contains(fx->err.msg, "while parsing a flow sequence at line 2");
    assert_null(fx->cfg.storage);

    assert_int_equal(load_yaml(fx, "name: a\n\"unterminated: b\n"), -1);
    assert_config_error(fx, "while scanning a quoted scalar at line 2 column 1");
}

static void test_yaml_unknown_key(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(load_yaml(fx, "storage: s3://b\npg:\n  host: db\n  databses: [app]\n"), -1);
    assert_config_error(fx, "config.yaml line 4: unknown key 'pg.databses' (did you mean 'pg.databases'?)");

    assert_int_equal(load_yaml(fx, "retention:\n  daily: 7\n"), -1);
    assert_config_error(fx, "config.yaml line 1: unknown key 'retention'");
    assert_null(strstr(fx->err.msg, "did you mean"));

    assert_int_equal(load_yaml(fx, "pg:\n  pasword_file: /run/x\n"), -1);
    assert_config_error(fx, "unknown key 'pg.pasword_file' (did you mean 'pg.password_file'?)");
}

static void test_yaml_shapes(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(load_yaml(fx, "zstd:\n  level: {a: 1}\n"), -1);
    assert_config_error(fx, "line 2: key 'zstd.level' must be a single value, not a mapping");

    assert_int_equal(load_yaml(fx, "name: [a, b]\n"), -1);
    assert_config_error(fx, "line 1: key 'name' must be a single value, not a list");

    assert_int_equal(load_yaml(fx, "pg:\n  databases:\n    - app\n    - [nested]\n"), -1);
    assert_config_error(fx, "line 4: key 'pg.databases' must be a list of single values");

    assert_int_equal(load_yaml(fx, "\npg: db.example\n"), -1);
    assert_config_error(fx, "line 2: key 'pg' must be a mapping");

    assert_int_equal(load_yaml(fx, "- storage\n- name\n"), -1);
    assert_config_error(fx, "the top level must be a mapping");

    assert_int_equal(load_yaml(fx, "just a string\n"), -1);
    assert_config_error(fx, "the top level must be a mapping");

    assert_int_equal(load_yaml(fx, "name: a\nstorage: s3://b\nname: b\n"), -1);
    assert_config_error(fx, "line 3: duplicate key 'name' (first at line 1)");

    assert_int_equal(load_yaml(fx, "pg:\n  host: a\npg.host: b\n"), -1);
    assert_config_error(fx, "line 3: duplicate key 'pg.host' (first at line 2)");

    assert_int_equal(load_yaml(fx, "pg:\n  host: a\npg:\n  port: 1\n"), -1);
    assert_config_error(fx, "line 3: duplicate key 'pg'");

    assert_int_equal(load_yaml(fx, "name: a\n---\nname: b\n"), -1);
    assert_config_error(fx, "line 3: a second YAML document");
}

static void test_require(void **state)
{
    struct fx *fx = *state;
    const char *no_env[] = {NULL};
    assert_int_equal(load(fx, no_env, NULL), 0);
    assert_int_equal(config_require(&fx->cfg, OPT_ID_storage, &fx->err), -1);
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_string_equal(
        fx->err.msg,
        "storage is not set: set SAUVE_STORAGE, the 'storage' key of the config file, or --storage");
    assert_contains(fx->err.hint, "s3://bucket/prefix");

    assert_int_equal(config_require(&fx->cfg, OPT_ID_pg_password, &fx->err), -1);
    assert_contains(fx->err.msg, "PGPASSWORD_FILE");

    sv_error_clear(&fx->err);
    assert_int_equal(config_require(&fx->cfg, OPT_ID_name, &fx->err), 0);
    assert_false(sv_error_isset(&fx->err));
}

static void test_suggest(void **state)
{
    (void)state;
    const char *names[] = {"SAUVE_PG_DATABASES", "SAUVE_PG_BINDIR", "SAUVE_NAME", "SAUVE_STORAGE"};
    assert_string_equal(config_suggest("SAUVE_PG_DATABSES", names, 4), "SAUVE_PG_DATABASES");
    assert_string_equal(config_suggest("SAUVE_STROAGE", names, 4), "SAUVE_STORAGE"); /* transposition */
    assert_string_equal(config_suggest("sauve_name", names, 4), "SAUVE_NAME");       /* case */
    assert_string_equal(config_suggest("SAUVE_PG_DATABASE_LIST", names, 4),
                        "SAUVE_PG_DATABASES"); /* 5 edits in 22 */
    assert_null(config_suggest("SAUVE_SERVICE_HOST", names, 4));
    assert_null(config_suggest("SAUVE_PORT", names, 4));
    assert_null(config_suggest("SAUVE_NAME_OF_THE_SET", names, 4)); /* 11 edits is another name */
    assert_null(config_suggest("ab", (const char *[]){"cd"}, 1));   /* replacing everything is not a typo */
    assert_null(config_suggest("x", names, 0));
}

static void test_durations(void **state)
{
    (void)state;
    long s = -1;
    assert_int_equal(config_parse_duration("1w2d12h30m15s", &s), 0);
    assert_int_equal(s, 9 * 86400L + 12 * 3600 + 30 * 60 + 15);
    assert_int_equal(config_parse_duration("0", &s), 0);
    assert_int_equal(s, 0);
    assert_int_equal(config_parse_duration("9223372036854775807s", &s), 0);
    assert_true(s == LONG_MAX);
    s = -1;
    const char *bad[] = {
        "", "14", "d", "1x", "1d ", " 1d", "-1d", "1.5h",
        /* one past LONG_MAX, in the number itself (was signed overflow; found by fuzz_values) */
        "9223372036854775808s", "09223372036854775809", "15250284452472w"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(config_parse_duration(bad[i], &s), -1);
    assert_int_equal(s, -1);

    char buf[32];
    assert_string_equal(config_format_duration(14 * 86400L, buf, sizeof buf), "14d");
    assert_string_equal(config_format_duration(86400L, buf, sizeof buf), "24h");
    assert_string_equal(config_format_duration(90 * 60L, buf, sizeof buf), "90m");
    assert_string_equal(config_format_duration(0, buf, sizeof buf), "0s");
}

static void test_free_zeroes(void **state)
{
    struct fx *fx = *state;
    const char *env[] = {"SAUVE_PG_DATABASES=a,b", "PGPASSWORD=pw-to-free", "SAUVE_TYPO=1", NULL};
    assert_int_equal(load(fx, env, NULL), 0);
    assert_int_equal(fx->cfg.warnings.n, 1);
    config_free(&fx->cfg);
    sv_config zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&fx->cfg, &zero, sizeof zero);
    config_free(&fx->cfg); /* twice is harmless */

    sv_strlist l = {0};
    strlist_push(&l, "one");
    strlist_push(&l, "two");
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[1], "two");
    strlist_free(&l);
    assert_null(l.items);
    assert_int_equal(l.n, 0);
}

static void test_redis_instances(void **state)
{
    struct fx *fx = *state;
    char *url = test_write_file(fx->dir, "url", "redis://u:url-pass-1@a:6379\n");
    char *pass = test_write_file(fx->dir, "pass", "file-pass-2\n");
    char *yaml = malloc(1024);
    snprintf(
        yaml, 1024,
        "redis:\n  timeout: 9\n  instances:\n    - name: sessions\n      url_file: %s\n      password_file: "
        "%s\n"
        "    - name: cache\n      url: redis://b:6380\n      password: inline-pass-3\n      mode: keys\n",
        url, pass);
    assert_int_equal(load_yaml(fx, yaml), 0);
    assert_int_equal(fx->cfg.n_redis_instances, 2);
    const sv_redis_instance *a = &fx->cfg.redis_instances[0], *b = &fx->cfg.redis_instances[1];
    assert_string_equal(a->name, "sessions");
    assert_string_equal(a->url, "redis://u:url-pass-1@a:6379");
    assert_string_equal(a->password, "file-pass-2");
    assert_string_equal(a->mode, "sync");
    assert_string_equal(b->name, "cache");
    assert_string_equal(b->password, "inline-pass-3");
    assert_string_equal(b->mode, "keys");
    assert_int_equal(b->line, 7);
    assert_int_equal(fx->cfg.redis_timeout, 9);
    /* every secret is masked in what sauve prints */
    sv_error e = {0};
    sv_error_set(&e, SV_EXIT_CONFIG, "%s %s %s", a->url, a->password, b->password);
    assert_null(strstr(e.msg, "url-pass-1"));
    assert_null(strstr(e.msg, "file-pass-2"));
    assert_null(strstr(e.msg, "inline-pass-3"));

    assert_int_equal(load_yaml(fx, "redis:\n  instances:\n    - url: redis://a\n"), -1);
    assert_contains(fx->err.msg, "line 3: redis.instances[0] has no name");
    assert_int_equal(
        load_yaml(fx, "redis:\n  instances:\n    - name: x\n      url: redis://a\n      pasword: p\n"), -1);
    assert_contains(fx->err.msg, "unknown key 'pasword' in redis.instances[0] (did you mean 'password'?)");
    assert_int_equal(load_yaml(fx, "redis:\n  instances:\n    - name: x\n      url: [a]\n"), -1);
    assert_contains(fx->err.msg, "redis.instances[0].url must be a single value");
    assert_int_equal(load_yaml(fx, "redis:\n  instances:\n    - just-a-name\n"), -1);
    assert_contains(fx->err.msg, "must be a mapping");
    free(yaml);
    free(url);
    free(pass);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_option_names),
        cmocka_unit_test_setup_teardown(test_defaults_and_unset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_file_from_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_named_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_comment_only_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_from_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_is_masked_in_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_too_short_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_secret_warns_and_is_masked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_both_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_file_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_flag_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_env_warning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_nested_and_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_from_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enum_and_bool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int_errors_name_their_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_require, setup, teardown),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_durations),
        cmocka_unit_test_setup_teardown(test_free_zeroes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_instances, setup, teardown),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
