/* Tests of runner/src/common/log.c (masking, records, the termination log),
 * and of the bounded buffers that rely on it (common/error.c,
 * cli/outcome.c). */
#include "testutil.h"

#include <errno.h>
#include <unistd.h>

#include "cli/commands.h"
#include "common/error.h"
#include "common/log.h"

/* stderr into a temporary file until stderr_end(), which returns it. */
struct capture {
    int saved;
    FILE *file;
};

static struct capture stderr_begin(void)
{
    struct capture c;
    fflush(NULL);
    c.file = tmpfile();
    assert_non_null(c.file);
    c.saved = dup(STDERR_FILENO);
    assert_true(dup2(fileno(c.file), STDERR_FILENO) >= 0);
    return c;
}

static char *stderr_end(struct capture *c)
{
    fflush(NULL);
    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    assert_int_equal(lseek(fileno(c->file), 0, SEEK_SET), 0);
    char *s = test_read_all(fileno(c->file));
    fclose(c->file);
    return s;
}

/* A string of n copies of c; newly allocated. */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static int setup(void **state)
{
    (void)state;
    log_clear_secrets();
    log_init(LOG_FORMAT_JSON, LOG_DEBUG);
    log_set_termination_path(NULL);
    return 0;
}

/* ---- masking ---- */

static void test_short_secrets_are_masked_too(void **state)
{
    (void)state;
    /* The configuration refuses secrets this short; a value registered from
     * elsewhere is masked all the same. */
    log_add_secret("q7");
    char *m = log_mask("a q7 b");
    assert_string_equal(m, "a *** b");
    free(m);
    log_add_secret("");
    m = log_mask("nothing to hide");
    assert_string_equal(m, "nothing to hide");
    free(m);
}

static void test_overlapping_secrets_leave_no_piece(void **state)
{
    (void)state;
    /* Masking one secret after the other would leave "ab" of the second. */
    log_add_secret("xyz12");
    log_add_secret("12ab");
    char *m = log_mask("<xyz12ab>");
    assert_string_equal(m, "<***>");
    free(m);
    m = log_mask("xyz12 and 12ab");
    assert_string_equal(m, "*** and ***");
    free(m);
}

static void test_mask_into_masks_before_the_cut(void **state)
{
    (void)state;
    const char *secret = "S3cr3t-straddling-the-cut";
    log_add_secret(secret);
    /* The secret starts 5 bytes before the end of a 32-byte buffer. */
    char *text = repeat('a', 26);
    char *full = malloc(strlen(text) + strlen(secret) + 1);
    sprintf(full, "%s%s", text, secret);
    char dst[32];
    log_mask_into(dst, sizeof dst, full);
    assert_string_equal(dst, "aaaaaaaaaaaaaaaaaaaaaaaaaa***");
    free(full);
    free(text);
}

static void test_mask_into_cuts_on_a_character_boundary(void **state)
{
    (void)state;
    char dst[5];
    log_mask_into(dst, sizeof dst, "abc\xc3\xa9z"); /* 'é' would be halved at 4 bytes */
    assert_string_equal(dst, "abc");
}

static void test_error_message_masked_before_it_is_cut(void **state)
{
    (void)state;
    const char *secret = "pw-0123456789abcdef-TAIL";
    log_add_secret(secret);
    sv_error err = {0};
    /* The secret straddles the end of err.msg (1024 bytes). */
    char *pad = repeat('x', sizeof err.msg - 1 - 10);
    sv_error_set(&err, SV_EXIT_FAILED, "%s%s", pad, secret);
    assert_false(test_has_piece(err.msg, secret, 4));
    assert_non_null(strstr(err.msg, "***"));
    sv_error_hint(&err, "%.*s%s", (int)(sizeof err.hint - 1 - 10), pad, secret);
    assert_false(test_has_piece(err.hint, secret, 4));
    /* Wrapping pushes the end of the message out: masked first as well. */
    sv_error_set(&err, SV_EXIT_FAILED, "%.*s%s", (int)(sizeof err.msg - 1 - 10 - 30), pad, secret);
    assert_non_null(strstr(err.msg, "***"));
    sv_error_wrap(&err, "%s", "a context of thirty bytes.....");
    assert_false(test_has_piece(err.msg, secret, 4));
    free(pad);
}

static void test_summary_masked_before_it_is_cut(void **state)
{
    (void)state;
    const char *secret = "https://hooks.example/T0KEN-abcdef";
    log_add_secret(secret);
    struct outcome out = {0};
    char *pad = repeat('y', sizeof out.summary - 1 - 12);
    outcome_set(&out, 1, "%s%s", pad, secret);
    assert_false(test_has_piece(out.summary, secret, 4));
    assert_int_equal(out.code, 1);
    outcome_set(&out, 1, "%.*s", (int)(sizeof out.summary - 1 - 20), pad);
    outcome_append(&out, "; notification failed: %s", secret);
    assert_false(test_has_piece(out.summary, secret, 4));
    free(pad);
}

static void test_safe_cut_keeps_secrets_whole(void **state)
{
    (void)state;
    log_add_secret("SECRET");
    /* no secret near the end: cut anywhere */
    assert_int_equal(log_secret_safe_cut("abcdefgh", 8), 8);
    /* a whole secret before the end does not span the cut */
    assert_int_equal(log_secret_safe_cut("abSECRET", 8), 8);
    /* the start of a secret at the end: kept for the next piece */
    assert_int_equal(log_secret_safe_cut("abcdeSEC", 8), 5);
    assert_int_equal(log_secret_safe_cut("abcdefgS", 8), 7);
    /* a cut asked inside a secret moves before it */
    assert_int_equal(log_secret_safe_cut("abSECRETxyz", 5), 2);
    /* all of it is the start of a secret: no safe cut */
    assert_int_equal(log_secret_safe_cut("SECR", 4), 0);
}

static void test_safe_cut_goes_round_again(void **state)
{
    (void)state;
    /* Moving before "CRETX" lands inside "ASECR": the cut moves again. */
    log_add_secret("ASECR");
    log_add_secret("CRETX");
    assert_int_equal(log_secret_safe_cut("..ASECRETX", 9), 2);
}

/* ---- records ---- */

static void test_text_records_escape_control_characters(void **state)
{
    (void)state;
    log_init(LOG_FORMAT_TEXT, LOG_DEBUG);
    struct capture c = stderr_begin();
    log_with(LOG_WARN, LOG_FIELDS(LOG_STR("name", "db\x1b]0;owned\x07")), "manifest says %s",
             "\x1b[2J\nfake line");
    char *out = stderr_end(&c);
    assert_null(strchr(out, '\x1b'));
    assert_null(strchr(out, '\x07'));
    assert_non_null(strstr(out, "manifest says \\x1b[2J\\x0afake line"));
    assert_non_null(strstr(out, "name=db\\x1b]0;owned\\x07"));
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one line */
    free(out);
}

/* log.format and log.level as the configuration spells them */
static void test_settings_choose_format_and_level(void **state)
{
    (void)state;
    log_configure("json", "warn");
    struct capture c = stderr_begin();
    log_info("not shown");
    log_warn("shown");
    char *out = stderr_end(&c);
    assert_null(strstr(out, "not shown"));
    assert_non_null(strstr(out, "\"msg\":\"shown\""));
    free(out);
    log_configure("text", "debug");
    c = stderr_begin();
    log_debug("detail");
    out = stderr_end(&c);
    assert_non_null(strstr(out, "debug detail"));
    assert_null(strchr(out, '{'));
    free(out);
    /* unknown or unset: auto (JSON when stderr is not a terminal) and info */
    log_configure(NULL, "verbose");
    c = stderr_begin();
    log_debug("hidden");
    log_info("plain");
    out = stderr_end(&c);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "\"msg\":\"plain\""));
    free(out);
}

static void test_termination_log_masked_and_bounded(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/termination-log", dir);
    log_set_termination_path(path);
    const char *secret = "pw-in-the-summary-0123456789";
    log_add_secret(secret);
    char *pad = repeat('z', 5000);
    struct capture c = stderr_begin();
    log_summary(1, "backup failed: %s %s", secret, pad);
    free(stderr_end(&c));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *written = test_read_all(fileno(f));
    fclose(f);
    assert_true(strlen(written) <= 4096);
    assert_int_equal(written[strlen(written) - 1], '\n');
    assert_false(test_has_piece(written, secret, 4));
    assert_non_null(strstr(written, "backup failed: *** zzz"));
    free(written);
    free(pad);
    log_set_termination_path(NULL);
    test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_short_secrets_are_masked_too, setup),
        cmocka_unit_test_setup(test_overlapping_secrets_leave_no_piece, setup),
        cmocka_unit_test_setup(test_mask_into_masks_before_the_cut, setup),
        cmocka_unit_test_setup(test_mask_into_cuts_on_a_character_boundary, setup),
        cmocka_unit_test_setup(test_error_message_masked_before_it_is_cut, setup),
        cmocka_unit_test_setup(test_summary_masked_before_it_is_cut, setup),
        cmocka_unit_test_setup(test_safe_cut_keeps_secrets_whole, setup),
        cmocka_unit_test_setup(test_safe_cut_goes_round_again, setup),
        cmocka_unit_test_setup(test_text_records_escape_control_characters, setup),
        cmocka_unit_test_setup(test_termination_log_masked_and_bounded, setup),
        cmocka_unit_test_setup(test_settings_choose_format_and_level, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
