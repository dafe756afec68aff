/* Tests of the globals script lexer (runner/src/sources/postgres_script.c):
 * where statements end, what hides a semicolon or a backslash, which
 * meta-commands pass (\restrict and \unrestrict as pg_dumpall writes them)
 * and that every refusal names its line. */
#include "testutil.h"

#include "sources/postgres_script.h"

static struct pg_script parse_ok(const char *text)
{
    struct pg_script s;
    sv_error err = {0};
    int rc = pg_script_parse(text, strlen(text), &s, &err);
    if (rc != 0)
        fail_msg("refused: %s\n%s", err.msg, text);
    return s;
}

/* The refusal's message, which must name line. */
static void refused(const char *text, unsigned line, const char *needle)
{
    struct pg_script s;
    sv_error err = {0};
    if (pg_script_parse(text, strlen(text), &s, &err) == 0)
        fail_msg("accepted:\n%s", text);
    assert_int_equal(err.code, SV_EXIT_FAILED);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "line %u: ", line);
    if (strncmp(err.msg, prefix, strlen(prefix)) != 0 || !strstr(err.msg, needle))
        fail_msg("expected '%s...%s', got '%s'", prefix, needle, err.msg);
    assert_int_equal(s.n, 0);
    assert_null(s.stmts);
}

static char *stmt_text(const char *text, const struct pg_script_stmt *st)
{
    return strndup(text + st->start, st->end - st->start);
}

static void test_what_pg_dumpall_writes(void **state)
{
    (void)state;
    const char *t = "--\n"
                    "-- PostgreSQL database cluster dump\n"
                    "--\n"
                    "\n"
                    "\\restrict 3cyyrb06HS4yKpzQKYz4qXCWKsXDfRTiUL3LsOshF1jXB8MXzDlt8TaA4HVMFu5\n"
                    "\n"
                    "SET default_transaction_read_only = off;\n"
                    "\n"
                    "CREATE ROLE a;\n"
                    "ALTER ROLE a WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:x=$y:z=';\n"
                    "COMMENT ON ROLE a IS E'hi \\\\ there; \\' -- no';\n"
                    "CREATE TABLESPACE tsx OWNER a LOCATION '/tmp/ts';\n"
                    "GRANT a TO b GRANTED BY postgres;\n"
                    "\n"
                    "\\unrestrict 3cyyrb06HS4yKpzQKYz4qXCWKsXDfRTiUL3LsOshF1jXB8MXzDlt8TaA4HVMFu5\n"
                    "\n"
                    "--\n"
                    "-- PostgreSQL database cluster dump complete\n"
                    "--\n";
    struct pg_script s = parse_ok(t);
    assert_int_equal(s.n, 6);
    assert_true(s.restricted);
    assert_true(s.needs_autocommit);
    const unsigned lines[] = {7, 9, 10, 11, 12, 13};
    const char *verbs[] = {"set", "create", "alter", "comment", "create", "grant"};
    for (size_t i = 0; i < s.n; i++) {
        assert_int_equal(s.stmts[i].line, lines[i]);
        assert_string_equal(s.stmts[i].verb, verbs[i]);
        assert_int_equal(t[s.stmts[i].end - 1], ';');
    }
    char *c = stmt_text(t, &s.stmts[3]);
    assert_string_equal(c, "COMMENT ON ROLE a IS E'hi \\\\ there; \\' -- no';");
    free(c);
    pg_script_free(&s);
}

static void test_without_restrict_and_without_tablespace(void **state)
{
    (void)state;
    struct pg_script s = parse_ok("CREATE ROLE a;\nALTER ROLE a SET search_path TO 'x';\n");
    assert_int_equal(s.n, 2);
    assert_false(s.restricted);
    assert_false(s.needs_autocommit);
    pg_script_free(&s);
    /* ALTER TABLESPACE runs in a transaction */
    s = parse_ok("ALTER TABLESPACE t OWNER TO a;");
    assert_false(s.needs_autocommit);
    pg_script_free(&s);
    s = parse_ok("drop  tablespace t;");
    assert_true(s.needs_autocommit);
    pg_script_free(&s);
    s = parse_ok("");
    assert_int_equal(s.n, 0);
    pg_script_free(&s);
    s = parse_ok("-- only a comment\n/* and /* nested */ one */\n");
    assert_int_equal(s.n, 0);
    pg_script_free(&s);
}

static void test_what_hides_a_semicolon_or_a_backslash(void **state)
{
    (void)state;
    const char *t = "COMMENT ON ROLE \"we;ird\\\" IS 'it''s; \\! no';\n" /* 1 */
                    "DO $f$ begin perform ';\\!'; end $f$;\n"            /* 2 */
                    "DO $$ x $f$ ; $$;\n"                                /* 3 */
                    "SELECT 1 /* ; \\! /* nested ; */ still; */ + 2;\n"  /* 4 */
                    "SELECT 1 -- ; \\! to the end of the line\n + 2;\n"  /* 5-6 */
                    "SELECT (1;2);\n"                                    /* 7 */
                    "SELECT a$b$c, $1;\n"                                /* 8 */
                    "SELECT e'\\';\\\\', U&'d\\0061t;a';\n"              /* 9 */
                    "SELECT 'no newline at the end'";                    /* 10 */
    struct pg_script s = parse_ok(t);
    assert_int_equal(s.n, 9);
    const unsigned lines[] = {1, 2, 3, 4, 5, 7, 8, 9, 10};
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(s.stmts[i].line, lines[i]);
    char *last = stmt_text(t, &s.stmts[8]);
    assert_string_equal(last, "SELECT 'no newline at the end'");
    free(last);
    char *paren = stmt_text(t, &s.stmts[5]);
    assert_string_equal(paren, "SELECT (1;2);");
    free(paren);
    pg_script_free(&s);
}

static void test_every_meta_command_is_refused_with_its_line(void **state)
{
    (void)state;
    refused("CREATE ROLE a;\n\\! touch /tmp/x\n", 2, "psql meta-command \\! is refused");
    refused("\\getenv home HOME\n", 1, "\\getenv");
    refused("CREATE ROLE a;\n\n\\copy t from '/etc/passwd'\n", 3, "\\copy");
    refused("\\o /tmp/out\nCREATE ROLE a;", 1, "\\o");
    refused("\\i /etc/passwd", 1, "\\i");
    refused("\\ir x", 1, "\\ir");
    refused("\\connect template1\n", 1, "\\connect");
    refused("\\c template1\n", 1, "\\c ");
    refused("\\set ON_ERROR_STOP off\n", 1, "\\set");
    refused("SELECT 1 \\g /tmp/out\n", 1, "\\g");
    refused("SELECT 1; SELECT 2 \\gexec\n", 1, "\\gexec");
    refused("CREATE ROLE a;\n  \\echo x\n", 2, "\\echo");
    refused("\\\\", 1, "\\\\");
    refused("\\", 1, "meta-command");
    /* after a string, a comment and a dollar quote, not inside them */
    refused("SELECT 'a', $q$b$q$ /* c */ \\! id\n", 1, "\\!");
    refused("SELECT E'\\\\' \\! id\n", 1, "\\!");
}

static void test_restrict_only_as_pg_dumpall_writes_it(void **state)
{
    (void)state;
    /* accepted: before the first statement, alone, then matched */
    struct pg_script s = parse_ok("\\restrict K1\nCREATE ROLE a;\n\\unrestrict K1\n-- done\n");
    assert_int_equal(s.n, 1);
    pg_script_free(&s);
    refused("\\restrict K1\nCREATE ROLE a;\n", 1, "without the \\unrestrict");
    refused("CREATE ROLE a;\n\\restrict K1\nCREATE ROLE b;\n\\unrestrict K1\n", 2,
            "only once, before the first");
    refused("\\restrict K1\n\\restrict K1\n", 2, "only once");
    refused("\\restrict K1\nCREATE ROLE a;\n\\unrestrict K2\n", 3,
            "another key than the \\restrict of line 1");
    refused("CREATE ROLE a;\n\\unrestrict K1\n", 2, "without a \\restrict");
    refused("\\restrict K1\nCREATE ROLE a;\n\\unrestrict K1\nCREATE ROLE b;\n", 4, "SQL after \\unrestrict");
    refused("\\restrict K1\nCREATE ROLE a;\n\\unrestrict K1\n\\unrestrict K1\n", 4, "without a \\restrict");
    /* the key is alphanumeric and alone on its line */
    refused("\\restrict K1 \\! id\n", 1, "alone on its line");
    refused("\\restrict K-1\n", 1, "alone on its line");
    refused("\\restrict\n", 1, "alone on its line");
    refused("\\restrict `id`\n", 1, "alone on its line");
    refused("\\restrict :key\n", 1, "alone on its line");
    refused("  \\restrict K1\n", 1, "alone on its line");
    refused("\\restrict K1\nCREATE ROLE a\n\\unrestrict K1\n", 3,
            "alone on its line"); /* inside a statement */
    refused("\\restrictK1\n", 1, "meta-command \\restrictK");
}

static void test_transaction_control_and_copy_are_refused(void **state)
{
    (void)state;
    refused("CREATE ROLE a;\nCOMMIT;\n", 2, "commit statements are refused");
    refused("begin;", 1, "begin statements");
    refused("  /* c */ Rollback;", 1, "rollback statements");
    refused("SAVEPOINT x;", 1, "savepoint");
    refused("END;", 1, "end statements");
    refused("COPY t FROM STDIN;", 1, "copy statements");
    refused("CREATE ROLE a;\ncopy t to '/tmp/x'", 2, "copy statements");
    /* a word that merely starts like one passes */
    struct pg_script s = parse_ok("COMMENT ON ROLE a IS 'begin; commit';");
    assert_int_equal(s.n, 1);
    pg_script_free(&s);
}

static void test_what_never_ends_is_refused(void **state)
{
    (void)state;
    refused("CREATE ROLE a;\nCOMMENT ON ROLE a IS 'open;\n\n", 2, "a string that never ends");
    refused("SELECT \"open", 1, "double-quoted identifier that never ends");
    refused("SELECT $x$ open $y$;", 1, "dollar-quoted string that never ends");
    refused("SELECT 1;\n/* open /* nested */", 2, "comment that never ends");
    refused("SELECT E'open\\';", 1, "a string that never ends");
}

static void test_a_nul_byte_is_refused(void **state)
{
    (void)state;
    const char t[] = "CREATE ROLE a;\nCREATE ROLE b\0; \\! id\n";
    struct pg_script s;
    sv_error err = {0};
    assert_int_equal(pg_script_parse(t, sizeof t - 1, &s, &err), -1);
    assert_string_equal(err.msg, "line 2: a NUL byte");
    const char q[] = "SELECT 'a\0b';";
    sv_error err2 = {0};
    assert_int_equal(pg_script_parse(q, sizeof q - 1, &s, &err2), -1);
    assert_string_equal(err2.msg, "line 1: a NUL byte");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_what_pg_dumpall_writes),
        cmocka_unit_test(test_without_restrict_and_without_tablespace),
        cmocka_unit_test(test_what_hides_a_semicolon_or_a_backslash),
        cmocka_unit_test(test_every_meta_command_is_refused_with_its_line),
        cmocka_unit_test(test_restrict_only_as_pg_dumpall_writes_it),
        cmocka_unit_test(test_transaction_control_and_copy_are_refused),
        cmocka_unit_test(test_what_never_ends_is_refused),
        cmocka_unit_test(test_a_nul_byte_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
