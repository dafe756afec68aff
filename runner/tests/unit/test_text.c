/* Tests of runner/src/common/text.c. */
#include "testutil.h"

#include "common/text.h"

static void test_escape_keeps_printable_text(void **state)
{
    (void)state;
    char *e = text_escape("app_db caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac 100%");
    assert_string_equal(e, "app_db caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac 100%");
    free(e);
}

static void test_escape_controls_and_bad_bytes(void **state)
{
    (void)state;
    char *e = text_escape("a\x1b[31mb\r\nc\td\x7f");
    assert_string_equal(e, "a\\x1b[31mb\\x0d\\x0ac\\x09d\\x7f");
    free(e);
    /* C1 CSI (U+009B), RLO (U+202E), LINE SEPARATOR (U+2028) */
    e = text_escape("x\xc2\x9by\xe2\x80\xaez\xe2\x80\xa8");
    assert_string_equal(e, "x\\xc2\\x9by\\xe2\\x80\\xaez\\xe2\\x80\\xa8");
    free(e);
    /* not UTF-8: a lone continuation byte, an overlong '/', a cut sequence */
    e = text_escape("\x80 \xc0\xaf \xe2\x82");
    assert_string_equal(e, "\\x80 \\xc0\\xaf \\xe2\\x82");
    free(e);
    e = text_escape("C:\\temp");
    assert_string_equal(e, "C:\\temp");
    free(e);
}

static void test_utf8_sequences(void **state)
{
    (void)state;
    unsigned long cp = 0;
    assert_int_equal(utf8_seq("A", &cp), 1);
    assert_int_equal(cp, 0x41);
    assert_int_equal(utf8_seq("\xc3\xa9", &cp), 2);
    assert_int_equal(cp, 0xE9);
    assert_int_equal(utf8_seq("\xe2\x82\xac", &cp), 3);
    assert_int_equal(cp, 0x20AC);
    assert_int_equal(utf8_seq("\xf0\x9f\x98\x80", &cp), 4);
    assert_int_equal(cp, 0x1F600);
    assert_int_equal(utf8_seq("\xc3\xa9", NULL), 2);
    /* overlong '/', overlong 3 and 4 bytes, surrogate, beyond U+10FFFF,
     * stray continuation, sequence cut by the end */
    const char *bad[] = {"\xc0\xaf",         "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xed\xa0\x80",
                         "\xf4\x90\x80\x80", "\x80",         "\xe2\x82",         "\xf8\x88\x80\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(utf8_seq(bad[i], NULL), 0);
        assert_false(utf8_valid(bad[i]));
    }
    assert_true(utf8_valid(""));
    assert_true(utf8_valid("caf\xc3\xa9 \xe6\x97\xa5"));
    assert_false(utf8_valid("caf\xc3\xa9 \xe6\x97"));
}

static void test_utf8_prefix_never_splits_a_character(void **state)
{
    (void)state;
    const char *s = "ab\xe2\x82\xac"
                    "d"; /* a b EURO d: 6 bytes */
    assert_int_equal(utf8_prefix(s, 6, 10), 6);
    assert_int_equal(utf8_prefix(s, 6, 6), 6);
    assert_int_equal(utf8_prefix(s, 6, 5), 5);
    assert_int_equal(utf8_prefix(s, 6, 4), 2);
    assert_int_equal(utf8_prefix(s, 6, 3), 2);
    assert_int_equal(utf8_prefix(s, 6, 2), 2);
    assert_int_equal(utf8_prefix(s, 6, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_keeps_printable_text),
        cmocka_unit_test(test_escape_controls_and_bad_bytes),
        cmocka_unit_test(test_utf8_sequences),
        cmocka_unit_test(test_utf8_prefix_never_splits_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
