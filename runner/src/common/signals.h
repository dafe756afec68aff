/*
 * Stopping on request. Kubernetes stops a Job with SIGTERM (deadline,
 * eviction, node drain) and kills it with SIGKILL after the grace period, so
 * sauve must stop its children and abort the set in progress quickly.
 *
 * signals_install() makes SIGTERM and SIGINT set a flag (and note when)
 * and forward the signal to every registered child; long loops poll
 * signals_stop_requested()
 * and blocking reads return EINTR (handlers are installed without
 * SA_RESTART). SIGPIPE is ignored so that a dead child's pipe is an EPIPE
 * error, not a silent death.
 */
#ifndef SAUVE_COMMON_SIGNALS_H
#define SAUVE_COMMON_SIGNALS_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

void signals_install(void);

/* The signal number that asked sauve to stop, or 0. */
int signals_stop_requested(void);

/* When a stop was requested, sets err ("stopped by SIGTERM") with
 * SV_EXIT_FAILED and returns -1; else returns 0. */
int signals_check(sv_error *err);

/* Children to forward SIGTERM/SIGINT to. Async-signal-safe registry of a
 * fixed size (64); register fails silently beyond that (logged). */
void signals_register_child(pid_t pid);
void signals_unregister_child(pid_t pid);

/*
 * Cleaning up after a stop. A run stopped by SIGTERM must still remove what
 * it stored (README: an interrupted run leaves nothing behind), and every
 * storage call gives up once a stop is requested. Between begin and end,
 * a stop request is held back: signals_stop_requested() and
 * signals_check() answer as if none had come, so that the calls that
 * clean up go out, until `seconds` after the stop request (or a second
 * SIGTERM/SIGINT): then the request shows again, and what is still
 * running (a transfer, a retry wait) gives up as it would have.
 *
 * SIGNALS_CLEANUP_S is what a backup gives itself: Kubernetes waits
 * terminationGracePeriodSeconds (30 by default) between SIGTERM and
 * SIGKILL, and 20 s leaves the rest of the run (its summary, its
 * notifications) time to finish.
 */
#define SIGNALS_CLEANUP_S 20.0

void signals_cleanup_begin(double seconds);
void signals_cleanup_end(void);

/* Seconds left of the cleanup's time after the stop request, 0 when it is
 * used up, or -1 when no stop was requested (nothing bounds the cleanup). */
double signals_cleanup_left(void);

/* Tests: forget a stop request. */
void signals_reset(void);

#endif
