/* Tests of runner/src/common/proc.c and signals.c, with /bin/sh scripts as
 * children. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/signals.h"

static proc *start_sh(const char *script, bool pipe_stdout, sv_error *err)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    return proc_start(
        &(struct proc_options){
            .path = "/bin/sh", .argv = argv, .pipe_stdout = pipe_stdout, .log_name = "tool"},
        err);
}

/* Runs a script to the end and returns its stdout. */
static char *sh_output(const char *script, const struct proc_options *extra)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    struct proc_options o = {.path = "/bin/sh", .argv = argv, .pipe_stdout = true};
    if (extra) {
        o.env_set = extra->env_set;
        o.env_unset = extra->env_unset;
    }
    sv_error err = {0};
    proc *p = proc_start(&o, &err);
    assert_non_null(p);
    char *out = test_read_all(proc_stdout_fd(p));
    assert_int_equal(proc_wait(p, &err), 0);
    proc_free(p);
    return out;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sends everything written to fd 'target' to a temporary file until
 * redirect_end(), which returns what was written. */
struct redirect {
    int target;
    int saved;
    FILE *file;
};

static struct redirect redirect_begin(int target)
{
    struct redirect r = {.target = target};
    fflush(NULL);
    r.file = tmpfile();
    assert_non_null(r.file);
    r.saved = dup(target);
    assert_true(r.saved >= 0);
    assert_true(dup2(fileno(r.file), target) >= 0);
    return r;
}

static char *redirect_end(struct redirect *r)
{
    fflush(NULL);
    assert_true(dup2(r->saved, r->target) >= 0);
    close(r->saved);
    assert_int_equal(lseek(fileno(r->file), 0, SEEK_SET), 0);
    char *s = test_read_all(fileno(r->file));
    fclose(r->file);
    return s;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *h = strstr(hay, needle); h; h = strstr(h + 1, needle))
        n++;
    return n;
}

static int setup(void **state)
{
    (void)state;
    log_init(LOG_FORMAT_JSON, LOG_DEBUG);
    signals_reset();
    return 0;
}

/* ---- proc ---- */

static void test_exit_zero(void **state)
{
    (void)state;
    sv_error err = {0};
    proc *p = start_sh("exit 0", false, &err);
    assert_non_null(p);
    assert_true(proc_pid(p) > 0);
    assert_int_equal(proc_wait(p, &err), 0);
    assert_false(sv_error_isset(&err));
    assert_string_equal(proc_stderr_tail(p), "");
    proc_free(p);
}

static void test_exit_status_names_last_stderr_line(void **state)
{
    (void)state;
    sv_error err = {0};
    struct redirect r = redirect_begin(STDERR_FILENO);
    proc *p = start_sh("echo 'first problem' >&2; echo 'second problem' >&2; echo 'fatal: out of disk' >&2; "
                       "echo >&2; exit 3",
                       false, &err);
    assert_non_null(p);
    assert_int_equal(proc_wait(p, &err), -1);
    char *logged = redirect_end(&r);
    assert_int_equal(err.code, SV_EXIT_FAILED);
    assert_string_equal(err.msg, "tool exited with status 3: fatal: out of disk");
    /* Waiting again gives the same answer. */
    sv_error again = {0};
    assert_int_equal(proc_wait(p, &again), -1);
    assert_string_equal(again.msg, err.msg);
    assert_non_null(strstr(logged, "\"msg\":\"first problem\""));
    proc_free(p);
    free(logged);
}

static void test_default_log_name_is_basename(void **state)
{
    (void)state;
    const char *argv[] = {"sh", "-c", "exit 5", NULL};
    sv_error err = {0};
    proc *p = proc_start(&(struct proc_options){.path = "/bin/sh", .argv = argv}, &err);
    assert_non_null(p);
    assert_int_equal(proc_wait(p, &err), -1);
    assert_string_equal(err.msg, "sh exited with status 5");
    proc_free(p);
}

static void test_stdout_pipe_read_to_eof(void **state)
{
    (void)state;
    /* More than a pipe buffer, so the child blocks until we read. */
    char *out = sh_output("i=0; while [ $i -lt 20000 ]; do echo \"line $i\"; i=$((i+1)); done", NULL);
    assert_int_equal(count(out, "\n"), 20000);
    assert_non_null(strstr(out, "line 0\nline 1\n"));
    assert_non_null(strstr(out, "line 19999\n"));
    free(out);
}

static void test_stdin_round_trip(void **state)
{
    (void)state;
    const char *argv[] = {"cat", NULL};
    sv_error err = {0};
    proc *p = proc_start(
        &(struct proc_options){.path = "/bin/cat", .argv = argv, .pipe_stdin = true, .pipe_stdout = true},
        &err);
    assert_non_null(p);
    const char msg[] = "hello\nthrough cat\n";
    int in = proc_take_stdin(p);
    assert_true(in >= 0);
    assert_int_equal(proc_stdin_fd(p), -1);
    assert_int_equal(write(in, msg, sizeof msg - 1), (ssize_t)(sizeof msg - 1));
    close(in);
    char *out = test_read_all(proc_stdout_fd(p));
    assert_string_equal(out, msg);
    assert_int_equal(proc_wait(p, &err), 0);
    proc_free(p);
    free(out);
}

static void test_take_stdout(void **state)
{
    (void)state;
    sv_error err = {0};
    proc *p = start_sh("printf taken", true, &err);
    assert_non_null(p);
    int fd = proc_take_stdout(p);
    assert_true(fd >= 0);
    assert_int_equal(proc_stdout_fd(p), -1);
    char *out = test_read_all(fd);
    close(fd);
    assert_string_equal(out, "taken");
    assert_int_equal(proc_wait(p, &err), 0);
    proc_free(p);
    free(out);
}

static void test_stdout_not_piped_goes_to_stderr(void **state)
{
    (void)state;
    struct redirect r1 = redirect_begin(STDOUT_FILENO);
    struct redirect r2 = redirect_begin(STDERR_FILENO);
    sv_error err = {0};
    proc *p = start_sh("echo to-stdout", false, &err);
    assert_non_null(p);
    int rc = proc_wait(p, &err);
    char *err_text = redirect_end(&r2);
    char *out_text = redirect_end(&r1);
    assert_int_equal(rc, 0);
    assert_string_equal(out_text, "");
    assert_string_equal(err_text, "to-stdout\n");
    proc_free(p);
    free(err_text);
    free(out_text);
}

static void test_stdin_is_dev_null(void **state)
{
    (void)state;
    /* cat would block forever on an inherited terminal or pipe. */
    char *out = sh_output("cat; echo done", NULL);
    assert_string_equal(out, "done\n");
    free(out);
}

static void test_env_set_visible_and_replaces(void **state)
{
    (void)state;
    setenv("SAUVE_TEST_SECRET", "inherited", 1);
    const char *set[] = {"SAUVE_TEST_SECRET=s3cret value", "SAUVE_TEST_NEW=1", "SAUVE_TEST_NEW=2", NULL};
    char *out = sh_output("printf '%s|%s' \"$SAUVE_TEST_SECRET\" \"$SAUVE_TEST_NEW\"",
                          &(struct proc_options){.env_set = set});
    assert_string_equal(out, "s3cret value|2");
    free(out);

    /* A shell folds duplicate names, so look at the raw environment. */
    const char *argv[] = {"env", NULL};
    sv_error err = {0};
    proc *p = proc_start(
        &(struct proc_options){.path = "/usr/bin/env", .argv = argv, .env_set = set, .pipe_stdout = true},
        &err);
    assert_non_null(p);
    char *env = test_read_all(proc_stdout_fd(p));
    assert_int_equal(proc_wait(p, &err), 0);
    assert_int_equal(count(env, "SAUVE_TEST_SECRET="), 1);
    assert_non_null(strstr(env, "\nSAUVE_TEST_SECRET=s3cret value\n"));
    assert_int_equal(count(env, "SAUVE_TEST_NEW="), 1);
    assert_non_null(strstr(env, "\nSAUVE_TEST_NEW=2\n"));
    assert_non_null(strstr(env, "PATH="));
    proc_free(p);
    free(env);
    unsetenv("SAUVE_TEST_SECRET");
}

static void test_env_unset_removes(void **state)
{
    (void)state;
    setenv("SAUVE_TEST_GONE", "x", 1);
    setenv("SAUVE_TEST_KEPT", "y", 1);
    /* Names that merely share a prefix with SAUVE_TEST_KEPT must not remove it. */
    const char *unset[] = {"SAUVE_TEST_GONE", "SAUVE_TEST", "SAUVE_TEST_KEPT_NOT", NULL};
    char *out = sh_output("printf '%s %s' \"${SAUVE_TEST_GONE-unset}\" \"${SAUVE_TEST_KEPT-unset}\"",
                          &(struct proc_options){.env_unset = unset});
    assert_string_equal(out, "unset y");
    free(out);
    unsetenv("SAUVE_TEST_GONE");
    unsetenv("SAUVE_TEST_KEPT");
}

static void test_env_keep_is_an_allow_list(void **state)
{
    (void)state;
    setenv("SAUVE_TEST_KEEP", "kept", 1);
    setenv("SAUVE_TEST_KEEPER", "not the same name", 1);
    setenv("SAUVE_LC_ONE", "by prefix", 1);
    setenv("SAUVE_TEST_TOKEN", "never", 1);
    const char *keep[] = {"SAUVE_TEST_KEEP", "SAUVE_LC_*", NULL};
    const char *set[] = {"SAUVE_TEST_SET=given", NULL};
    /* The raw environment the child was started with: env(1) prints it as is. */
    const char *argv[] = {"env", NULL};
    sv_error err = {0};
    proc *p = proc_start(
        &(struct proc_options){
            .path = "/usr/bin/env", .argv = argv, .env_keep = keep, .env_set = set, .pipe_stdout = true},
        &err);
    assert_non_null(p);
    char *env = test_read_all(proc_stdout_fd(p));
    assert_int_equal(proc_wait(p, &err), 0);
    assert_string_equal(env, "SAUVE_TEST_KEEP=kept\nSAUVE_LC_ONE=by prefix\nSAUVE_TEST_SET=given\n");
    proc_free(p);
    free(env);

    char *out = NULL;
    const char *probe[] = {"sh", "-c", "printf '%s' \"${SAUVE_TEST_TOKEN-unset} ${SAUVE_TEST_KEEP-unset}\"",
                           NULL};
    assert_int_equal(proc_capture("/bin/sh", probe, keep, 100, &out, &err), 0);
    assert_string_equal(out, "unset kept");
    free(out);
    unsetenv("SAUVE_TEST_KEEP");
    unsetenv("SAUVE_TEST_KEEPER");
    unsetenv("SAUVE_LC_ONE");
    unsetenv("SAUVE_TEST_TOKEN");
}

static void test_argv_verbatim(void **state)
{
    (void)state;
    const char *argv[] = {"sh",      "-c", "printf '<%s>' \"$0\" \"$@\"", "zero", "a b", "", "$HOME",
                          "\"q\" *", NULL};
    sv_error err = {0};
    proc *p = proc_start(&(struct proc_options){.path = "/bin/sh", .argv = argv, .pipe_stdout = true}, &err);
    assert_non_null(p);
    char *out = test_read_all(proc_stdout_fd(p));
    assert_int_equal(proc_wait(p, &err), 0);
    assert_string_equal(out, "<zero><a b><><$HOME><\"q\" *>");
    proc_free(p);
    free(out);
}

static void test_killed_by_signal(void **state)
{
    (void)state;
    sv_error err = {0};
    proc *p = start_sh("kill -KILL $$", false, &err);
    assert_non_null(p);
    assert_int_equal(proc_wait(p, &err), -1);
    assert_int_equal(err.code, SV_EXIT_FAILED);
    assert_string_equal(err.msg, "tool killed by signal 9 (SIGKILL)");
    proc_free(p);
}

static void test_proc_kill_terminates(void **state)
{
    (void)state;
    /* Signals blocked in the parent must not be blocked in the child. */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old);
    const char *argv[] = {"sleep", "30", NULL};
    sv_error err = {0};
    proc *p = proc_start(&(struct proc_options){.path = "/bin/sleep", .argv = argv}, &err);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    assert_non_null(p);
    double t0 = now_seconds();
    proc_kill(p, SIGTERM);
    assert_int_equal(proc_wait(p, &err), -1);
    assert_true(now_seconds() - t0 < 5.0);
    assert_string_equal(err.msg, "sleep killed by signal 15 (SIGTERM)");
    proc_kill(p, SIGTERM); /* after wait: no effect, no crash */
    proc_free(p);
}

static void test_exec_missing_binary(void **state)
{
    (void)state;
    const char *argv[] = {"nope", NULL};
    sv_error err = {0};
    proc *p = proc_start(&(struct proc_options){.path = "/nonexistent/sauve-nope", .argv = argv}, &err);
    assert_null(p);
    assert_int_equal(err.code, SV_EXIT_FAILED);
    assert_string_equal(err.msg, "cannot run /nonexistent/sauve-nope: No such file or directory");
    /* The failed child was reaped. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_exec_not_executable(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char *path = test_write_file(dir, "script", "#!/bin/sh\n");
    const char *argv[] = {"script", NULL};
    sv_error err = {0};
    proc *p = proc_start(&(struct proc_options){.path = path, .argv = argv}, &err);
    assert_null(p);
    char want[4200];
    /* No x bit at all: refused even when the tests run as root. */
    snprintf(want, sizeof want, "cannot run %s: Permission denied", path);
    assert_string_equal(err.msg, want);
    test_rmtree(dir);
    free(path);
    free(dir);
}

static void test_stderr_tail_holds_last_lines(void **state)
{
    (void)state;
    sv_error err = {0};
    struct redirect r = redirect_begin(STDERR_FILENO);
    proc *p = start_sh("i=1; while [ $i -le 500 ]; do echo \"problem number $i\" >&2; i=$((i+1)); done",
                       false, &err);
    assert_non_null(p);
    assert_int_equal(proc_wait(p, &err), 0);
    char *logged = redirect_end(&r);
    const char *tail = proc_stderr_tail(p);
    size_t len = strlen(tail);
    assert_true(len <= 2048);
    assert_true(len > 1500);
    assert_non_null(strstr(tail, "problem number 499\nproblem number 500"));
    assert_true(len >= strlen("problem number 500"));
    assert_string_equal(tail + len - strlen("problem number 500"), "problem number 500");
    assert_null(strstr(tail, "problem number 1\n"));
    /* Whole lines only: the oldest kept line is complete. */
    assert_memory_equal(tail, "problem number ", strlen("problem number "));
    assert_int_equal(count(logged, "\"level\":\"warn\""), 500);
    assert_int_equal(count(logged, "\"tool\":\"tool\""), 500);
    proc_free(p);
    free(logged);
}

struct seen_lines {
    int n;
    char last[64];
};

static void remember_line(void *ctx, const char *line)
{
    struct seen_lines *seen = ctx;
    seen->n++;
    snprintf(seen->last, sizeof seen->last, "%s", line);
}

/* Callers judge a child's messages line by line (psql's errors). */
static void test_stderr_line_callback_sees_every_line(void **state)
{
    (void)state;
    struct seen_lines seen = {0};
    const char *argv[] = {"sh", "-c", "echo one >&2; echo >&2; echo 'ERROR: two' >&2", NULL};
    struct redirect r = redirect_begin(STDERR_FILENO);
    sv_error err = {0};
    proc *p = proc_start(&(struct proc_options){.path = "/bin/sh",
                                                .argv = argv,
                                                .log_name = "tool",
                                                .on_stderr_line = remember_line,
                                                .on_stderr_ctx = &seen},
                         &err);
    assert_non_null(p);
    assert_int_equal(proc_wait(p, &err), 0);
    free(redirect_end(&r));
    assert_int_equal(seen.n, 2); /* empty lines are dropped */
    assert_string_equal(seen.last, "ERROR: two");
    proc_free(p);
}

static void test_stderr_lines_logged_and_split(void **state)
{
    (void)state;
    sv_error err = {0};
    struct redirect r = redirect_begin(STDERR_FILENO);
    /* 10000 x without a newline: three records of at most 4 KiB. */
    proc *p =
        start_sh("printf 'one\\r\\n\\ntwo\\n' >&2; head -c 10000 /dev/zero | tr '\\0' x >&2", false, &err);
    assert_non_null(p);
    assert_int_equal(proc_wait(p, &err), 0);
    char *logged = redirect_end(&r);
    assert_non_null(strstr(logged, "\"level\":\"warn\",\"msg\":\"one\",\"tool\":\"tool\"}\n"));
    assert_non_null(strstr(logged, "\"msg\":\"two\",\"tool\":\"tool\"}\n"));
    assert_int_equal(count(logged, "\n"), 5);
    assert_int_equal(count(logged, "x"), 10000);
    /* No record carries more than 4 KiB of the line. */
    for (const char *line = logged; *line;) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        assert_true(end - line < 4096 + 100);
        line = end + 1;
    }
    proc_free(p);
    free(logged);
}

static void test_stderr_split_keeps_utf8_whole(void **state)
{
    (void)state;
    sv_error err = {0};
    struct redirect r = redirect_begin(STDERR_FILENO);
    /* 4095 bytes then a 2-byte character: a cut at 4096 would halve it. */
    proc *p = start_sh("{ head -c 4095 /dev/zero | tr '\\0' a; printf '\\303\\251\\n'; } >&2", false, &err);
    assert_non_null(p);
    assert_int_equal(proc_wait(p, &err), 0);
    char *logged = redirect_end(&r);
    assert_int_equal(count(logged, "\n"), 2);
    assert_non_null(strstr(logged, "\"msg\":\"\xc3\xa9\""));
    proc_free(p);
    free(logged);
}

static void test_stderr_secret_across_the_split_is_masked(void **state)
{
    (void)state;
    const char *secret = "Pw-across-the-split-42";
    log_add_secret(secret);
    sv_error err = {0};
    struct redirect r = redirect_begin(STDERR_FILENO);
    /* The secret starts 6 bytes before the 4 KiB split of an overlong line. */
    proc *p =
        start_sh("{ head -c 4090 /dev/zero | tr '\\0' a; printf 'Pw-across-the-split-42 and more\\n'; } >&2",
                 false, &err);
    assert_non_null(p);
    assert_int_equal(proc_wait(p, &err), 0);
    char *logged = redirect_end(&r);
    assert_false(test_has_piece(logged, secret, 4));
    /* the line is all there, in two records cut before the secret */
    char *first = malloc(4090 + 16);
    sprintf(first, "\"msg\":\"%4090s\"", "");
    for (char *c = strchr(first, ' '); c && *c == ' '; c++)
        *c = 'a';
    assert_non_null(strstr(logged, first));
    assert_non_null(strstr(logged, "\"msg\":\"*** and more\""));
    free(first);
    assert_false(test_has_piece(proc_stderr_tail(p), secret, 4));
    proc_free(p);
    free(logged);
    log_clear_secrets();
}

static void test_stderr_secret_across_the_tail_cut_is_masked(void **state)
{
    (void)state;
    const char *secret = "Pw-across-the-tail-cut-43";
    log_add_secret(secret);
    sv_error err = {0};
    struct redirect r = redirect_begin(STDERR_FILENO);
    /* The tail keeps 2 KiB of a line: the secret starts 8 bytes before. */
    proc *p = start_sh(
        "{ head -c 2040 /dev/zero | tr '\\0' b; printf 'Pw-across-the-tail-cut-43\\n'; } >&2; exit 4", false,
        &err);
    assert_non_null(p);
    assert_int_equal(proc_wait(p, &err), -1);
    free(redirect_end(&r));
    assert_false(test_has_piece(proc_stderr_tail(p), secret, 4));
    assert_false(test_has_piece(err.msg, secret, 4));
    proc_free(p);
    log_clear_secrets();
}

static void test_pipes_not_inherited_by_later_children(void **state)
{
    (void)state;
    sv_error err = {0};
    const char *cat_argv[] = {"cat", NULL};
    proc *a = proc_start(
        &(struct proc_options){.path = "/bin/cat", .argv = cat_argv, .pipe_stdin = true, .pipe_stdout = true},
        &err);
    assert_non_null(a);
    const char *sleep_argv[] = {"sleep", "30", NULL};
    proc *b = proc_start(
        &(struct proc_options){
            .path = "/bin/sleep", .argv = sleep_argv, .pipe_stdin = true, .pipe_stdout = true},
        &err);
    assert_non_null(b);

    /* b holds no pipe but its own 0, 1 and 2 (exec has happened when
     * proc_start returns). Other descriptors are not counted: the new
     * program's start-up (the loader, locale files) opens and closes files
     * of its own, and a count raced with it under load. */
    char fddir[64];
    snprintf(fddir, sizeof fddir, "/proc/%d/fd", (int)proc_pid(b));
    DIR *d = opendir(fddir);
    assert_non_null(d);
    int pipes_above_2 = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || atoi(e->d_name) <= 2)
            continue;
        char link[128], target[256];
        snprintf(link, sizeof link, "%s/%s", fddir, e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue; /* closed meanwhile */
        target[n] = '\0';
        if (strncmp(target, "pipe:", 5) == 0 || strncmp(target, "socket:", 7) == 0)
            pipes_above_2++;
    }
    closedir(d);
    assert_int_equal(pipes_above_2, 0);

    /* If b held a's stdin, a would never see EOF. */
    assert_int_equal(write(proc_stdin_fd(a), "x", 1), 1);
    close(proc_take_stdin(a));
    struct pollfd pfd = {.fd = proc_stdout_fd(a), .events = POLLIN};
    char buf[8];
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    assert_int_equal(read(pfd.fd, buf, sizeof buf), 1);
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    assert_int_equal(read(pfd.fd, buf, sizeof buf), 0);
    assert_int_equal(proc_wait(a, &err), 0);
    proc_free(a);
    proc_free(b); /* still running: SIGKILLed and reaped */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
}

static void test_capture(void **state)
{
    (void)state;
    const char *argv[] = {"sh", "-c", "echo 'pg_dump (PostgreSQL) 16.4'", NULL};
    char *out = NULL;
    sv_error err = {0};
    assert_int_equal(proc_capture("/bin/sh", argv, NULL, 256, &out, &err), 0);
    assert_string_equal(out, "pg_dump (PostgreSQL) 16.4");
    free(out);

    /* Longer than max: truncated, and the child is not killed by SIGPIPE. */
    const char *long_argv[] = {"sh", "-c", "head -c 200000 /dev/zero | tr '\\0' y", NULL};
    assert_int_equal(proc_capture("/bin/sh", long_argv, NULL, 10, &out, &err), 0);
    assert_string_equal(out, "yyyyyyyyyy");
    free(out);

    const char *fail_argv[] = {"sh", "-c", "echo partial; echo 'bad option' >&2; exit 2", NULL};
    struct redirect r = redirect_begin(STDERR_FILENO);
    assert_int_equal(proc_capture("/bin/sh", fail_argv, NULL, 256, &out, &err), -1);
    free(redirect_end(&r));
    assert_null(out);
    assert_string_equal(err.msg, "sh exited with status 2: bad option");

    assert_int_equal(proc_capture("/nonexistent/x", fail_argv, NULL, 256, &out, &err), -1);
    assert_null(out);
    assert_string_equal(err.msg, "cannot run /nonexistent/x: No such file or directory");
}

static void test_free_null(void **state)
{
    (void)state;
    proc_free(NULL);
    assert_true(true);
}

/* ---- signals ---- */

static void test_sigterm_sets_flag_and_reaches_child(void **state)
{
    (void)state;
    signals_install();
    const char *argv[] = {"sleep", "30", NULL};
    sv_error err = {0};
    proc *p = proc_start(&(struct proc_options){.path = "/bin/sleep", .argv = argv}, &err);
    assert_non_null(p);
    assert_int_equal(signals_stop_requested(), 0);
    double t0 = now_seconds();
    raise(SIGTERM);
    assert_int_equal(signals_stop_requested(), SIGTERM);
    assert_int_equal(proc_wait(p, &err), -1);
    assert_true(now_seconds() - t0 < 5.0);
    assert_string_equal(err.msg, "sleep killed by signal 15 (SIGTERM)");
    proc_free(p);
    signals_reset();
    assert_int_equal(signals_stop_requested(), 0);
}

static void test_child_started_after_stop_is_stopped(void **state)
{
    (void)state;
    signals_install();
    raise(SIGINT);
    const char *argv[] = {"sleep", "30", NULL};
    sv_error err = {0};
    proc *p = proc_start(&(struct proc_options){.path = "/bin/sleep", .argv = argv}, &err);
    assert_non_null(p);
    assert_int_equal(proc_wait(p, &err), -1);
    assert_string_equal(err.msg, "sleep killed by signal 2 (SIGINT)");
    proc_free(p);
    signals_reset();
}

static void test_registry_slots_are_reused(void **state)
{
    (void)state;
    signals_install();
    /* More children than registry slots, one after another: each wait must
     * free its slot, or the last child would not receive the stop signal. */
    const char *true_argv[] = {"true", NULL};
    for (int i = 0; i < 70; i++) {
        sv_error err = {0};
        proc *p = proc_start(&(struct proc_options){.path = "/bin/true", .argv = true_argv}, &err);
        assert_non_null(p);
        assert_int_equal(proc_wait(p, &err), 0);
        proc_free(p);
    }
    const char *argv[] = {"sleep", "30", NULL};
    sv_error err = {0};
    proc *p = proc_start(&(struct proc_options){.path = "/bin/sleep", .argv = argv}, &err);
    assert_non_null(p);
    raise(SIGTERM);
    assert_int_equal(proc_wait(p, &err), -1);
    assert_string_equal(err.msg, "sleep killed by signal 15 (SIGTERM)");
    proc_free(p);
    signals_reset();
}

static void test_signals_check(void **state)
{
    (void)state;
    signals_install();
    sv_error err = {0};
    assert_int_equal(signals_check(&err), 0);
    assert_false(sv_error_isset(&err));

    raise(SIGINT);
    assert_int_equal(signals_check(&err), -1);
    assert_int_equal(err.code, SV_EXIT_FAILED);
    assert_string_equal(err.msg, "interrupted by SIGINT");

    raise(SIGTERM);
    assert_int_equal(signals_check(&err), -1);
    assert_string_equal(err.msg, "stopped by SIGTERM");

    signals_reset();
    sv_error_clear(&err);
    assert_int_equal(signals_check(&err), 0);
    assert_false(sv_error_isset(&err));
}

static void test_cleanup_holds_a_stop_for_its_time(void **state)
{
    (void)state;
    signals_install();
    sv_error err = {0};
    /* no stop: nothing bounds a cleanup, nothing is held */
    assert_true(signals_cleanup_left() < 0);
    signals_cleanup_begin(0.3);
    assert_int_equal(signals_check(&err), 0);
    signals_cleanup_end();

    raise(SIGTERM);
    assert_int_equal(signals_stop_requested(), SIGTERM);
    signals_cleanup_begin(0.3);
    /* held: storage calls that clean up after the stop go out */
    assert_int_equal(signals_stop_requested(), 0);
    assert_int_equal(signals_check(&err), 0);
    double left = signals_cleanup_left();
    assert_true(left > 0 && left <= 0.3);
    /* 0.3 s after the stop, it shows again: what still runs gives up */
    double t0 = now_seconds();
    while (signals_stop_requested() == 0 && now_seconds() - t0 < 5)
        poll(NULL, 0, 10);
    assert_int_equal(signals_stop_requested(), SIGTERM);
    assert_true(signals_cleanup_left() == 0);
    assert_int_equal(signals_check(&err), -1);
    assert_string_equal(err.msg, "stopped by SIGTERM");
    signals_cleanup_end();
    signals_reset();
}

static void test_cleanup_ends_at_a_second_signal_or_its_end(void **state)
{
    (void)state;
    signals_install();
    raise(SIGTERM);
    signals_cleanup_begin(SIGNALS_CLEANUP_S);
    assert_int_equal(signals_stop_requested(), 0);
    assert_true(signals_cleanup_left() > SIGNALS_CLEANUP_S - 5);
    /* a second SIGTERM (or a second Ctrl-C) means now */
    raise(SIGTERM);
    assert_int_equal(signals_stop_requested(), SIGTERM);
    signals_cleanup_end();
    signals_reset();

    raise(SIGINT);
    signals_cleanup_begin(SIGNALS_CLEANUP_S);
    assert_int_equal(signals_stop_requested(), 0);
    signals_cleanup_end();
    assert_int_equal(signals_stop_requested(), SIGINT);
    signals_reset();
}

static void test_sigpipe_ignored_in_parent_default_in_child(void **state)
{
    (void)state;
    signals_install();
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    assert_int_equal(write(fds[1], "x", 1), -1);
    assert_int_equal(errno, EPIPE);
    close(fds[1]);

    /* yes exits on EPIPE when SIGPIPE is ignored, so this fails rather than hangs. */
    const char *argv[] = {"yes", NULL};
    sv_error err = {0};
    proc *p =
        proc_start(&(struct proc_options){.path = "/usr/bin/yes", .argv = argv, .pipe_stdout = true}, &err);
    assert_non_null(p);
    char buf[16];
    assert_true(read(proc_stdout_fd(p), buf, sizeof buf) > 0);
    close(proc_take_stdout(p));
    assert_int_equal(proc_wait(p, &err), -1);
    assert_string_equal(err.msg, "yes killed by signal 13 (SIGPIPE)");
    proc_free(p);
}

static void test_blocking_read_interrupted(void **state)
{
    (void)state;
    signals_install();
    /* The child keeps signalling until one lands while we are blocked in
     * read(). It starts only once unregistered (it waits for a line on
     * stdin), so the forwarded SIGTERM does not stop it. Should the read be
     * restarted instead, the child gives up after a few seconds and writes,
     * so the test fails instead of hanging. */
    const char *argv[] = {
        "sh", "-c",
        "read go; i=0; while [ $i -lt 300 ] && kill -TERM $PPID; do sleep 0.01; i=$((i+1)); done; "
        "echo restarted",
        NULL};
    sv_error err = {0};
    proc *p = proc_start(
        &(struct proc_options){.path = "/bin/sh", .argv = argv, .pipe_stdin = true, .pipe_stdout = true},
        &err);
    assert_non_null(p);
    signals_unregister_child(proc_pid(p));
    assert_int_equal(write(proc_stdin_fd(p), "go\n", 3), 3);
    char c;
    ssize_t n = read(proc_stdout_fd(p), &c, 1);
    int e = errno;
    assert_int_equal(n, -1);
    assert_int_equal(e, EINTR);
    assert_int_equal(signals_stop_requested(), SIGTERM);
    proc_kill(p, SIGKILL);
    assert_int_equal(proc_wait(p, &err), -1);
    assert_string_equal(err.msg, "sh killed by signal 9 (SIGKILL)");
    proc_free(p);
    signals_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_exit_zero, setup),
        cmocka_unit_test_setup(test_exit_status_names_last_stderr_line, setup),
        cmocka_unit_test_setup(test_default_log_name_is_basename, setup),
        cmocka_unit_test_setup(test_stdout_pipe_read_to_eof, setup),
        cmocka_unit_test_setup(test_stdin_round_trip, setup),
        cmocka_unit_test_setup(test_take_stdout, setup),
        cmocka_unit_test_setup(test_stdout_not_piped_goes_to_stderr, setup),
        cmocka_unit_test_setup(test_stdin_is_dev_null, setup),
        cmocka_unit_test_setup(test_env_set_visible_and_replaces, setup),
        cmocka_unit_test_setup(test_env_unset_removes, setup),
        cmocka_unit_test_setup(test_env_keep_is_an_allow_list, setup),
        cmocka_unit_test_setup(test_argv_verbatim, setup),
        cmocka_unit_test_setup(test_killed_by_signal, setup),
        cmocka_unit_test_setup(test_proc_kill_terminates, setup),
        cmocka_unit_test_setup(test_exec_missing_binary, setup),
        cmocka_unit_test_setup(test_exec_not_executable, setup),
        cmocka_unit_test_setup(test_stderr_tail_holds_last_lines, setup),
        cmocka_unit_test_setup(test_stderr_line_callback_sees_every_line, setup),
        cmocka_unit_test_setup(test_stderr_lines_logged_and_split, setup),
        cmocka_unit_test_setup(test_stderr_split_keeps_utf8_whole, setup),
        cmocka_unit_test_setup(test_stderr_secret_across_the_split_is_masked, setup),
        cmocka_unit_test_setup(test_stderr_secret_across_the_tail_cut_is_masked, setup),
        cmocka_unit_test_setup(test_pipes_not_inherited_by_later_children, setup),
        cmocka_unit_test_setup(test_capture, setup),
        cmocka_unit_test_setup(test_free_null, setup),
        cmocka_unit_test_setup(test_sigterm_sets_flag_and_reaches_child, setup),
        cmocka_unit_test_setup(test_child_started_after_stop_is_stopped, setup),
        cmocka_unit_test_setup(test_registry_slots_are_reused, setup),
        cmocka_unit_test_setup(test_signals_check, setup),
        cmocka_unit_test_setup(test_cleanup_holds_a_stop_for_its_time, setup),
        cmocka_unit_test_setup(test_cleanup_ends_at_a_second_signal_or_its_end, setup),
        cmocka_unit_test_setup(test_sigpipe_ignored_in_parent_default_in_child, setup),
        cmocka_unit_test_setup(test_blocking_read_interrupted, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
