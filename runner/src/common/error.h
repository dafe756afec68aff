/*
 * Error kinds and exit codes: the one table of DESIGN.md. Functions that can
 * fail return 0 on success and -1 on failure after filling an sv_error; the
 * error carries the exit code its kind maps to, a one-line message that names
 * what failed (setting, file, host), and an optional hint for the operator.
 *
 * Messages are lowercase, without a final period, e.g.
 *   "cannot connect to postgres at db:5432 as app (database app): password authentication failed"
 *   hint: "check PGPASSWORD or PGPASSWORD_FILE"
 */
#ifndef SAUVE_COMMON_ERROR_H
#define SAUVE_COMMON_ERROR_H

#include <stdbool.h>

enum sv_exit {
    SV_EXIT_OK = 0,
    SV_EXIT_FAILED = 1,    /* backup failed: no set committed (also: any failed command) */
    SV_EXIT_PARTIAL = 2,   /* set committed, at least one source failed */
    SV_EXIT_PRUNE = 3,     /* set committed, prune or notification failed */
    SV_EXIT_VERIFY = 4,    /* a set exists but does not verify (verify; backup with SAUVE_VERIFY) */
    SV_EXIT_USAGE = 64,    /* bad flag or argument */
    SV_EXIT_TEMPFAIL = 75, /* source or storage unreachable, timeout, before anything was written */
    SV_EXIT_CONFIG = 78,   /* missing or invalid setting */
};

typedef struct sv_error {
    int code;       /* an enum sv_exit value; 0 when no error is set */
    char msg[1024]; /* what failed, naming the setting, file or host */
    char hint[512]; /* what the operator can do about it; may be empty */
} sv_error;

/* Messages and hints are bounded (msg, hint): each is formatted whole, has
 * the secrets registered with log_add_secret() masked, and is only then
 * cut to fit (log_mask_into). */

/* Sets code and message; clears any previous hint. Returns -1 so that
 * `return sv_error_set(err, ...)` reads naturally, and leaves errno as it
 * was, so that the caller may still ask what failed. err may be NULL. */
int sv_error_set(sv_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets the hint of an error already set. Returns -1. */
int sv_error_hint(sv_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the message with context, keeping code and hint: "CONTEXT: old message". Returns -1. */
int sv_error_wrap(sv_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void sv_error_clear(sv_error *err);
bool sv_error_isset(const sv_error *err);

#endif
