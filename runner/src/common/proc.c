#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"

extern char **environ;

/* Longest stderr line logged as one record; longer lines become several. */
#define LINE_SPLIT 4096
/* How much of the child's last stderr lines is kept for error messages. */
#define TAIL_MAX 2048

struct proc {
    pid_t pid;
    char *name;
    int stdin_fd;  /* parent's write end, or -1 */
    int stdout_fd; /* parent's read end, or -1 */
    int stderr_fd; /* read by the thread; closed by proc_wait */
    pthread_t reader;
    bool waited;
    int status; /* waitpid status, once waited */
    int wait_errno;
    /* The last non-empty stderr lines joined by '\n', oldest dropped first.
     * Written only by the reader thread until proc_wait joins it. */
    char tail[TAIL_MAX + 1];
    size_t tail_len;
    void (*on_stderr_line)(void *ctx, const char *line);
    void *on_stderr_ctx;
};

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    default: return NULL;
    }
}

/* ---- stderr reader ---- */

static void tail_add(proc *p, const char *line, size_t len)
{
    /* The start of an overlong line says more than its end. */
    if (len > TAIL_MAX)
        len = TAIL_MAX;
    size_t need = len + (p->tail_len ? 1 : 0);
    while (p->tail_len && p->tail_len + need > TAIL_MAX) {
        char *nl = memchr(p->tail, '\n', p->tail_len);
        if (!nl) {
            p->tail_len = 0;
            break;
        }
        size_t drop = (size_t)(nl - p->tail) + 1;
        memmove(p->tail, p->tail + drop, p->tail_len - drop);
        p->tail_len -= drop;
    }
    if (p->tail_len)
        p->tail[p->tail_len++] = '\n';
    memcpy(p->tail + p->tail_len, line, len);
    p->tail_len += len;
    p->tail[p->tail_len] = '\0';
}

/* Logs one line (or piece of an overlong one) of len bytes at line, which
 * need not be NUL-terminated. It is masked before anything keeps or cuts
 * it: the tail keeps at most TAIL_MAX bytes of a line, and an error message
 * fewer, and a secret across either cut would leave a piece unmasked. */
static void emit_line(proc *p, const char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        len--;
    if (!len)
        return;
    char *raw = xstrndup(line, len);
    char *masked = log_mask(raw);
    free_secret(raw);
    log_write(LOG_WARN, LOG_FIELDS(LOG_STR("tool", p->name)), "%s", masked);
    tail_add(p, masked, strlen(masked));
    if (p->on_stderr_line)
        p->on_stderr_line(p->on_stderr_ctx, masked);
    free(masked);
}

/* Where to cut a full line buffer so that a UTF-8 sequence is not split
 * across two records (which would make both invalid JSON strings). */
static size_t utf8_cut(const char *s, size_t len)
{
    size_t k = len;
    while (k > 0 && len - k < 3 && ((unsigned char)s[k - 1] & 0xC0) == 0x80)
        k--;
    if (k == 0)
        return len;
    unsigned char lead = (unsigned char)s[k - 1];
    size_t seq = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (seq > 1 && (k - 1) + seq > len && k - 1 > 0)
        return k - 1;
    return len;
}

static void *stderr_reader(void *arg)
{
    proc *p = arg;
    char line[LINE_SPLIT + 1];
    size_t len = 0;
    char buf[4096];
    for (;;) {
        ssize_t n = read(p->stderr_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                emit_line(p, line, len);
                len = 0;
                continue;
            }
            line[len++] = buf[i];
            if (len == LINE_SPLIT) {
                /* Cut where no secret spans the cut (a secret split in two
                 * records is masked in neither), then not inside a UTF-8
                 * sequence; the rest starts the next record. A secret as
                 * long as the buffer cannot be kept whole: cut anyway. */
                size_t cut = log_secret_safe_cut(line, len);
                if (cut == 0)
                    cut = len;
                cut = utf8_cut(line, cut);
                emit_line(p, line, cut);
                memmove(line, line + cut, len - cut);
                len -= cut;
            }
        }
    }
    emit_line(p, line, len);
    return NULL;
}

/* ---- starting ---- */

static size_t env_name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

static bool env_listed(const char *const *list, const char *name, size_t len, bool entries)
{
    for (size_t i = 0; list && list[i]; i++) {
        size_t l = entries ? env_name_len(list[i]) : strlen(list[i]);
        if (l == len && strncmp(list[i], name, len) == 0)
            return true;
    }
    return false;
}

/* Whether the allow-list keeps the variable name[0..len): by its name, or
 * by a prefix written "PREFIX*". */
static bool env_kept(const char *const *keep, const char *name, size_t len)
{
    for (size_t i = 0; keep[i]; i++) {
        size_t l = strlen(keep[i]);
        if (l && keep[i][l - 1] == '*' ? len >= l - 1 && strncmp(keep[i], name, l - 1) == 0
                                       : l == len && strncmp(keep[i], name, len) == 0)
            return true;
    }
    return false;
}

/* The child's environment: pointers into environ and o->env_set (not
 * copies), so the array alone is freed. Built before fork because the child
 * of a threaded process may not allocate. */
static const char **build_envp(const struct proc_options *o)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    for (size_t i = 0; o->env_set && o->env_set[i]; i++)
        n++;
    const char **envp = xcalloc(n + 1, sizeof *envp);
    size_t k = 0;
    for (char **e = environ; e && *e; e++) {
        size_t len = env_name_len(*e);
        if (env_listed(o->env_unset, *e, len, false) || env_listed(o->env_set, *e, len, true))
            continue;
        if (o->env_keep && !env_kept(o->env_keep, *e, len))
            continue;
        envp[k++] = *e;
    }
    for (size_t i = 0; o->env_set && o->env_set[i]; i++) {
        /* When a name is set twice, the last entry wins. */
        size_t len = env_name_len(o->env_set[i]);
        if (env_listed(o->env_set + i + 1, o->env_set[i], len, true))
            continue;
        envp[k++] = o->env_set[i];
    }
    envp[k] = NULL;
    return envp;
}

struct child_plan {
    const char *path;
    char *const *argv;
    char *const *envp;
    int in;     /* becomes fd 0 */
    int out;    /* becomes fd 1; 2 (sauve's stderr) when not piped */
    int err;    /* becomes fd 2 */
    int report; /* CLOEXEC pipe: receives errno when exec fails */
    int max_fd; /* highest descriptor to close without close_range(2) */
};

/* Runs in the forked child of a possibly threaded process: only
 * async-signal-safe calls from here on. */
/* The descriptor limit, read in the parent (sysconf is not
 * async-signal-safe), bounded so that a huge limit cannot stall the child. */
static int max_fd_number(void)
{
    long n = sysconf(_SC_OPEN_MAX);
    return n > 0 && n < 65536 ? (int)n - 1 : 65535;
}

/*
 * Closes fds first..last (last -1: all above first) in the child, between
 * fork and exec, so async-signal-safe only. close_range(2) does it at once
 * (Linux 5.9+; called as a system call, since musl has no wrapper); older
 * kernels get a loop up to the descriptor limit read before the fork.
 */
static void close_fds(int first, int last, int max_fd)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)first, last < 0 ? ~0U : (unsigned)last, 0) == 0)
        return;
#endif
    int end = last < 0 ? max_fd : last;
    for (int fd = first; fd <= end; fd++)
        close(fd);
}

static _Noreturn void child_exec(const struct child_plan *c)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    /* sauve's handler would forward to sauve's children, and an ignored
     * SIGPIPE survives exec: pg_dump must die normally on both. */
    sigaction(SIGTERM, &dfl, NULL);
    sigaction(SIGINT, &dfl, NULL);
    sigaction(SIGPIPE, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    int e = 0;
    /* fd 1 before fd 2: when stdout is not piped it is a copy of sauve's
     * stderr, which fd 2 is about to stop being. */
    if (dup2(c->in, 0) < 0 || dup2(c->out, 1) < 0 || dup2(c->err, 2) < 0) {
        e = errno;
    } else {
        /* Parent-side fds are CLOEXEC already; this also drops any fd a
         * library opened without it (a socket to the bucket, say). */
        if (c->report > 3)
            close_fds(3, c->report - 1, c->max_fd);
        close_fds(c->report + 1, -1, c->max_fd);
        execve(c->path, c->argv, c->envp);
        e = errno;
    }
    ssize_t w;
    do
        w = write(c->report, &e, sizeof e);
    while (w < 0 && errno == EINTR);
    _exit(127);
}

static void block_all_signals(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, old);
}

static void restore_signals(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Reaps a child that never became the program (exec failed) or that we
 * cannot supervise. */
static void reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

proc *proc_start(const struct proc_options *o, sv_error *err)
{
    const char *base = strrchr(o->path, '/');
    const char *name = o->log_name ? o->log_name : base ? base + 1 : o->path;

    for (size_t i = 0; o->env_set && o->env_set[i]; i++) {
        if (!strchr(o->env_set[i], '=')) {
            sv_error_set(err, SV_EXIT_FAILED, "cannot run %s: environment entry %zu has no '='", o->path, i);
            return NULL;
        }
    }

    /* [0] read end, [1] write end; every fd made here is CLOEXEC so that
     * no other child (started now or later) holds a copy, which would keep
     * a pipe from reaching EOF. */
    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, rep[2] = {-1, -1};
    int devnull = -1;
    const char *what = NULL;
    if (pipe2(errp, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0)
        what = "pipe";
    else if (o->pipe_stdin && pipe2(in, O_CLOEXEC) < 0)
        what = "pipe";
    else if (o->pipe_stdout && pipe2(out, O_CLOEXEC) < 0)
        what = "pipe";
    else if (!o->pipe_stdin && (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        what = "/dev/null";
    if (what) {
        sv_error_set(err, SV_EXIT_FAILED, "cannot run %s: %s: %s", o->path, what, strerror(errno));
        goto fail_fds;
    }

    const char **envp = build_envp(o);
    struct child_plan plan = {
        .path = o->path,
        .argv = (char *const *)o->argv,
        .envp = (char *const *)envp,
        .in = o->pipe_stdin ? in[0] : devnull,
        .out = o->pipe_stdout ? out[1] : STDERR_FILENO,
        .err = errp[1],
        .report = rep[1],
        .max_fd = max_fd_number(),
    };

    /* Signals stay blocked until the pid is registered: the child must not
     * run sauve's handler before it resets it, and a SIGTERM arriving in
     * between must find the child in the registry. */
    sigset_t old;
    block_all_signals(&old);
    pid_t pid = fork();
    if (pid == 0)
        child_exec(&plan);
    int fork_errno = errno;
    if (pid > 0)
        signals_register_child(pid);
    restore_signals(&old);
    free(envp);

    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&errp[1]);
    close_fd(&rep[1]);
    close_fd(&devnull);
    if (pid < 0) {
        sv_error_set(err, SV_EXIT_FAILED, "cannot run %s: fork: %s", o->path, strerror(fork_errno));
        goto fail_fds;
    }

    /* EOF means exec succeeded (the CLOEXEC write end closed); otherwise
     * the child sent the errno of its failure. */
    int child_errno = 0;
    ssize_t n;
    do
        n = read(rep[0], &child_errno, sizeof child_errno);
    while (n < 0 && errno == EINTR);
    close_fd(&rep[0]);
    if (n > 0) {
        signals_unregister_child(pid);
        reap(pid);
        sv_error_set(err, SV_EXIT_FAILED, "cannot run %s: %s", o->path, strerror(child_errno));
        goto fail_fds;
    }

    proc *p = xcalloc(1, sizeof *p);
    p->pid = pid;
    p->name = xstrdup(name);
    p->on_stderr_line = o->on_stderr_line;
    p->on_stderr_ctx = o->on_stderr_ctx;
    p->stdin_fd = in[1];
    p->stdout_fd = out[0];
    p->stderr_fd = errp[0];

    /* The reader inherits a fully blocked mask, so a stop signal always
     * lands on a thread whose blocking read it is meant to interrupt. */
    block_all_signals(&old);
    int rc = pthread_create(&p->reader, NULL, stderr_reader, p);
    restore_signals(&old);
    if (rc != 0) {
        kill(pid, SIGKILL);
        signals_unregister_child(pid);
        reap(pid);
        close_fd(&p->stdin_fd);
        close_fd(&p->stdout_fd);
        close_fd(&p->stderr_fd);
        free(p->name);
        free(p);
        sv_error_set(err, SV_EXIT_FAILED, "cannot run %s: cannot start stderr reader: %s", o->path,
                     strerror(rc));
        return NULL;
    }
    return p;

fail_fds:
    for (int i = 0; i < 2; i++) {
        close_fd(&in[i]);
        close_fd(&out[i]);
        close_fd(&errp[i]);
        close_fd(&rep[i]);
    }
    close_fd(&devnull);
    return NULL;
}

pid_t proc_pid(const proc *p)
{
    return p->pid;
}

int proc_stdin_fd(proc *p)
{
    return p->stdin_fd;
}

int proc_stdout_fd(proc *p)
{
    return p->stdout_fd;
}

int proc_take_stdin(proc *p)
{
    int fd = p->stdin_fd;
    p->stdin_fd = -1;
    return fd;
}

int proc_take_stdout(proc *p)
{
    int fd = p->stdout_fd;
    p->stdout_fd = -1;
    return fd;
}

/* ---- waiting ---- */

/* The line of a child's stderr tail that says what went wrong: the last
 * one carrying "error" or "FATAL" (PostgreSQL tools end with DETAIL: and
 * HINT: lines that mean little alone), else the last line. */
static bool telling_line(const char *tail, char *out, size_t len)
{
    const char *last = NULL, *last_error = NULL;
    size_t last_len = 0, last_error_len = 0;
    for (const char *line = tail; *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        char *copy = xstrndup(line, n);
        if (n) {
            last = line;
            last_len = n;
            if (strcasestr(copy, "error") || strstr(copy, "FATAL")) {
                last_error = line;
                last_error_len = n;
            }
        }
        free(copy);
        line = end ? end + 1 : line + n;
    }
    if (last_error) {
        last = last_error;
        last_len = last_error_len;
    }
    if (!last)
        return false;
    snprintf(out, len, "%.*s", (int)last_len, last);
    return true;
}

static int wait_result(const proc *p, sv_error *err)
{
    if (p->wait_errno)
        return sv_error_set(err, SV_EXIT_FAILED, "cannot wait for %s: %s", p->name, strerror(p->wait_errno));
    int st = p->status;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        const char *sname = signal_name(sig);
        if (sname)
            return sv_error_set(err, SV_EXIT_FAILED, "%s killed by signal %d (%s)", p->name, sig, sname);
        return sv_error_set(err, SV_EXIT_FAILED, "%s killed by signal %d", p->name, sig);
    }
    char line[TAIL_MAX + 1];
    if (telling_line(p->tail, line, sizeof line))
        return sv_error_set(err, SV_EXIT_FAILED, "%s exited with status %d: %s", p->name, WEXITSTATUS(st),
                            line);
    return sv_error_set(err, SV_EXIT_FAILED, "%s exited with status %d", p->name, WEXITSTATUS(st));
}

int proc_wait(proc *p, sv_error *err)
{
    if (p->waited)
        return wait_result(p, err);
    close_fd(&p->stdin_fd);
    close_fd(&p->stdout_fd);

    /* Wait without reaping, then unregister, then reap: the pid stays a
     * zombie, never reused, for as long as the handler may signal it, and a
     * SIGTERM during the wait is still forwarded. */
    siginfo_t info;
    int rc;
    do {
        memset(&info, 0, sizeof info);
        rc = waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOWAIT);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        p->wait_errno = errno;
    signals_unregister_child(p->pid);
    pid_t w;
    do
        w = waitpid(p->pid, &p->status, 0);
    while (w < 0 && errno == EINTR);
    if (w < 0 && !p->wait_errno)
        p->wait_errno = errno;

    pthread_join(p->reader, NULL);
    close_fd(&p->stderr_fd);
    p->waited = true;
    return wait_result(p, err);
}

void proc_kill(proc *p, int sig)
{
    if (p && !p->waited)
        kill(p->pid, sig);
}

const char *proc_stderr_tail(const proc *p)
{
    return p->tail;
}

void proc_free(proc *p)
{
    if (!p)
        return;
    if (!p->waited) {
        kill(p->pid, SIGKILL);
        proc_wait(p, NULL);
    }
    free(p->name);
    free(p);
}

/* ---- capture ---- */

int proc_capture(const char *path, const char *const *argv, const char *const *env_keep, size_t max,
                 char **out, sv_error *err)
{
    *out = NULL;
    proc *p = proc_start(
        &(struct proc_options){.path = path, .argv = argv, .env_keep = env_keep, .pipe_stdout = true}, err);
    if (!p)
        return -1;
    char *buf = xmalloc(max + 1);
    size_t len = 0;
    int fd = proc_stdout_fd(p);
    bool stopped = false;
    for (;;) {
        char chunk[4096];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) {
            if (signals_stop_requested()) {
                stopped = true;
                break;
            }
            continue;
        }
        if (n <= 0)
            break;
        /* Keep draining past max: closing early would kill the child with
         * SIGPIPE and turn a long answer into a failure. */
        size_t take = (size_t)n < max - len ? (size_t)n : max - len;
        memcpy(buf + len, chunk, take);
        len += take;
    }
    if (stopped)
        proc_kill(p, SIGTERM);
    int rc = proc_wait(p, err);
    proc_free(p);
    if (stopped) {
        free(buf);
        return signals_check(err);
    }
    if (rc < 0) {
        free(buf);
        return -1;
    }
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    *out = buf;
    return 0;
}
