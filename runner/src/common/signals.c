#include "common/signals.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

#define MAX_CHILDREN 64

/* The handler may run on any thread while another thread polls or registers
 * a child, so plain volatile is not enough: these are lock-free atomics,
 * which C11 allows a signal handler to touch. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "signal handler needs lock-free int atomics");
_Static_assert(sizeof(pid_t) == sizeof(int), "pid_t slots rely on lock-free int atomics");

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the stop time needs lock-free long long atomics");

static _Atomic sig_atomic_t g_stop;
static _Atomic int g_nstops;          /* stop signals received */
static _Atomic long long g_stop_ms;   /* CLOCK_MONOTONIC of the first, in ms; 0: none */
static _Atomic bool g_cleanup;        /* between signals_cleanup_begin and _end */
static _Atomic long long g_window_ms; /* how long after the stop the cleanup may go on */
static _Atomic pid_t g_children[MAX_CHILDREN];

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe (POSIX) */
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_stop_signal(int sig)
{
    int saved = errno;
    long long none = 0;
    atomic_compare_exchange_strong(&g_stop_ms, &none, now_ms());
    atomic_fetch_add(&g_nstops, 1);
    atomic_store(&g_stop, sig);
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        pid_t pid = atomic_load(&g_children[i]);
        if (pid > 0)
            kill(pid, sig);
    }
    errno = saved;
}

void signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    /* No SA_RESTART: a read blocked on a stalled source or upload must return
     * EINTR so that the caller notices the stop request. */
    sa.sa_flags = 0;
    sigfillset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
}

double signals_cleanup_left(void)
{
    long long t = atomic_load(&g_stop_ms);
    if (!atomic_load(&g_stop) || !t)
        return -1;
    double left = (double)(t + atomic_load(&g_window_ms) - now_ms()) / 1000.0;
    return left > 0 ? left : 0;
}

/* Whether a stop request is held back now (see signals.h). */
static bool held(void)
{
    return atomic_load(&g_cleanup) && atomic_load(&g_nstops) < 2 && signals_cleanup_left() != 0;
}

int signals_stop_requested(void)
{
    int sig = atomic_load(&g_stop);
    return sig && held() ? 0 : sig;
}

void signals_cleanup_begin(double seconds)
{
    atomic_store(&g_window_ms, (long long)(seconds * 1000));
    atomic_store(&g_cleanup, true);
}

void signals_cleanup_end(void)
{
    atomic_store(&g_cleanup, false);
}

int signals_check(sv_error *err)
{
    int sig = signals_stop_requested();
    if (!sig)
        return 0;
    if (sig == SIGTERM)
        return sv_error_set(err, SV_EXIT_FAILED, "stopped by SIGTERM");
    if (sig == SIGINT)
        return sv_error_set(err, SV_EXIT_FAILED, "interrupted by SIGINT");
    return sv_error_set(err, SV_EXIT_FAILED, "stopped by signal %d", sig);
}

void signals_register_child(pid_t pid)
{
    if (pid <= 0)
        return;
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        pid_t expected = 0;
        if (atomic_compare_exchange_strong(&g_children[i], &expected, pid)) {
            /* A stop that arrived before the slot was filled was not
             * forwarded to this child; without this it would run to the end
             * while Kubernetes waits to kill us. The handler may also have
             * seen the slot: a second signal does no harm. */
            int sig = atomic_load(&g_stop);
            if (sig)
                kill(pid, sig);
            return;
        }
    }
    log_warn("cannot forward stop signals to child %d: %d children already registered", (int)pid,
             MAX_CHILDREN);
}

void signals_unregister_child(pid_t pid)
{
    if (pid <= 0)
        return;
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        pid_t expected = pid;
        if (atomic_compare_exchange_strong(&g_children[i], &expected, 0))
            return;
    }
}

void signals_reset(void)
{
    atomic_store(&g_stop, 0);
    atomic_store(&g_nstops, 0);
    atomic_store(&g_stop_ms, 0);
    atomic_store(&g_cleanup, false);
}
