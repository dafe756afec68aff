/*
 * Child processes (pg_dump, pg_restore, pg_dumpall): started without a shell,
 * with secrets passed only through their environment, never argv. Their
 * stderr is read by a thread and logged line by line (as warnings with a
 * "tool" field), and its last lines are kept for error messages.
 *
 * Every running child is registered with signals.h, so SIGTERM to sauve is
 * forwarded to its children before sauve aborts the set in progress.
 */
#ifndef SAUVE_COMMON_PROC_H
#define SAUVE_COMMON_PROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

typedef struct proc proc;

struct proc_options {
    const char *path;        /* executable, absolute path */
    const char *const *argv; /* argv[0]..NULL; must hold no secret */
    const char *const
        *env_set; /* NULL-terminated "K=V" added to (or replacing in) the inherited environment */
    const char *const *env_unset; /* NULL-terminated names removed from the inherited environment */
    /* When set, a NULL-terminated allow-list: only the inherited variables
     * it names reach the child ("LC_*": a name ending in '*' is a prefix),
     * then env_set on top. A child gets what it needs, not everything
     * sauve was given minus what someone thought of removing. */
    const char *const *env_keep;
    bool pipe_stdin;      /* caller writes the child's stdin through proc_stdin_fd() */
    bool pipe_stdout;     /* caller reads the child's stdout through proc_stdout_fd() */
    const char *log_name; /* name for stderr lines and messages, e.g. "pg_dump"; default basename(path) */
    /* Called from the stderr thread with each line (after it is logged), so
     * that a caller can judge the child's messages (psql's errors). */
    void (*on_stderr_line)(void *ctx, const char *line);
    void *on_stderr_ctx;
};

/* Starts the child. stdin not piped is /dev/null; stdout not piped goes to
 * sauve's stderr (never to sauve's stdout, which carries --json output).
 * Fails (SV_EXIT_FAILED) naming the executable when it cannot be started. */
proc *proc_start(const struct proc_options *o, sv_error *err);

pid_t proc_pid(const proc *p);

/* The parent's end of the pipe, or -1. proc_take_* transfers ownership to the
 * caller (who must close it); otherwise proc_wait()/proc_free() closes it. */
int proc_stdin_fd(proc *p);
int proc_stdout_fd(proc *p);
int proc_take_stdin(proc *p);
int proc_take_stdout(proc *p);

/*
 * Closes the parent's pipe ends still held, waits for the child and its
 * stderr thread. Returns 0 when it exited with status 0; otherwise -1 with
 * err "NAME exited with status N: LAST STDERR LINE" or "NAME killed by
 * signal S". Safe to call once.
 */
int proc_wait(proc *p, sv_error *err);

/* Sends sig to the child (e.g. SIGTERM on abort). No effect after wait. */
void proc_kill(proc *p, int sig);

/* The last lines the child wrote to stderr (up to ~2 KiB), "" when none.
 * Read it after proc_wait(): until then the stderr thread is appending. */
const char *proc_stderr_tail(const proc *p);

/* Kills (SIGKILL) a child still running, waits, and frees. NULL allowed. */
void proc_free(proc *p);

/*
 * Runs a short command to completion and captures its stdout (up to max
 * bytes, trailing newline stripped) e.g. "pg_dump --version". env_keep as
 * in proc_options (NULL: the whole environment). Returns 0 on exit
 * status 0.
 */
int proc_capture(const char *path, const char *const *argv, const char *const *env_keep, size_t max,
                 char **out, sv_error *err);

#endif
