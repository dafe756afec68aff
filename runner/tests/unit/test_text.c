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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_keeps_printable_text),
        cmocka_unit_test(test_escape_controls_and_bad_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
