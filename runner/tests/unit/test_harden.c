/* Tests of runner/src/common/harden.c: after it, this process is not
 * dumpable, writes no core file, and its children inherit the core limit. */
#include "testutil.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/harden.h"
#include "common/proc.h"

static void test_no_core_dump_after_harden(void **state)
{
    (void)state;
    sv_error err = {0};
    assert_int_equal(harden_process(&err), 0);
    assert_false(sv_error_isset(&err));
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_int_equal(rl.rlim_cur, 0);
    assert_int_equal(rl.rlim_max, 0); /* hard too: nothing in the process can raise it again */
    struct rlimit raise = {.rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY};
    if (geteuid() != 0) /* root may raise a hard limit (CAP_SYS_RESOURCE) */
        assert_int_not_equal(setrlimit(RLIMIT_CORE, &raise), 0);
}

static void test_children_inherit_the_core_limit(void **state)
{
    (void)state;
    sv_error err = {0};
    assert_int_equal(harden_process(&err), 0);
    const char *argv[] = {"sh", "-c", "echo $(ulimit -c) $(ulimit -H -c)", NULL};
    char *out = NULL;
    assert_int_equal(proc_capture("/bin/sh", argv, NULL, 100, &out, &err), 0);
    assert_string_equal(out, "0 0");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_core_dump_after_harden),
        cmocka_unit_test(test_children_inherit_the_core_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
