/*
 * Stopping on request. Kubernetes stops a Job with SIGTERM (deadline,
 * eviction, node drain) and kills it with SIGKILL after the grace period, so
 * sauve must stop its children and abort the set in progress quickly.
 *
 * signals_install() makes SIGTERM and SIGINT set a flag and forward the
 * signal to every registered child; long loops poll signals_stop_requested()
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

/* Tests: forget a stop request. */
void signals_reset(void);

#endif
