/*
 * The handoff stage: the chain after it runs on a thread of its own. The
 * thread that writes (the source: reading files, reading pg_dump's pipe)
 * and the one that compresses, hashes and stores then overlap, as the two
 * processes of `tar | zstd` do; on one thread, each waited for the other.
 *
 * Bytes are copied into HANDOFF_BUFS buffers of HANDOFF_SIZE: the writer
 * fills the one free slot after the queue, the worker writes the oldest
 * queued one into next. Memory is bounded by those buffers. The worker
 * blocks every signal: a stop request reaches the writer's thread, and
 * the stages after this one see it by signals_stop_requested(), as they
 * would on any thread.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "pipeline/stream.h"

#define HANDOFF_BUFS 4
#define HANDOFF_SIZE ((size_t)1 << 20)

struct handoff {
    stream base;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *bufs[HANDOFF_BUFS];
    size_t lens[HANDOFF_BUFS];
    size_t head, count; /* the queue: slots head .. head+count-1, mod HANDOFF_BUFS */
    bool done;          /* the writer finished: the worker finishes next after the queue */
    bool stop;          /* abort: the worker leaves without finishing next */
    bool failed;        /* next failed: err says why; the worker has left */
    sv_error err;
    pthread_t th;
    bool running; /* th not joined yet */
};

static void *worker(void *arg)
{
    struct handoff *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        while (h->count == 0 && !h->done && !h->stop)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->stop || h->count == 0) {
            bool finish = !h->stop;
            pthread_mutex_unlock(&h->mu);
            if (finish) {
                sv_error e = {0};
                if (stream_finish(h->base.next, &e) != 0) {
                    pthread_mutex_lock(&h->mu);
                    h->failed = true;
                    h->err = e;
                    pthread_mutex_unlock(&h->mu);
                }
            }
            return NULL;
        }
        size_t idx = h->head;
        pthread_mutex_unlock(&h->mu);
        sv_error e = {0};
        int rc = stream_write(h->base.next, h->bufs[idx], h->lens[idx], &e);
        pthread_mutex_lock(&h->mu);
        if (rc != 0) {
            h->failed = true;
            h->err = e;
            pthread_cond_broadcast(&h->cv);
            pthread_mutex_unlock(&h->mu);
            return NULL;
        }
        h->lens[idx] = 0;
        h->head = (h->head + 1) % HANDOFF_BUFS;
        h->count--;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
}

/* The slot the writer fills, waiting for one to be free; -1 once next
 * failed (err). */
static int free_slot(struct handoff *h, size_t *slot, sv_error *err)
{
    pthread_mutex_lock(&h->mu);
    while (h->count == HANDOFF_BUFS && !h->failed)
        pthread_cond_wait(&h->cv, &h->mu);
    int rc = 0;
    if (h->failed) {
        *err = h->err;
        rc = -1;
    }
    /* head + count is the writer's slot: the worker moving head on moves
     * count back, so it stays put while the writer fills it */
    *slot = (h->head + h->count) % HANDOFF_BUFS;
    pthread_mutex_unlock(&h->mu);
    return rc;
}

static void queue_slot(struct handoff *h)
{
    pthread_mutex_lock(&h->mu);
    h->count++;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static int handoff_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct handoff *h = (struct handoff *)s;
    const unsigned char *p = buf;
    while (len > 0) {
        size_t slot;
        if (free_slot(h, &slot, err) != 0)
            return -1;
        size_t n = HANDOFF_SIZE - h->lens[slot];
        if (n > len)
            n = len;
        memcpy(h->bufs[slot] + h->lens[slot], p, n);
        h->lens[slot] += n;
        p += n;
        len -= n;
        if (h->lens[slot] == HANDOFF_SIZE)
            queue_slot(h);
    }
    return 0;
}

static void join(struct handoff *h)
{
    if (h->running) {
        pthread_join(h->th, NULL);
        h->running = false;
    }
}

static int handoff_finish(stream *s, sv_error *err)
{
    struct handoff *h = (struct handoff *)s;
    size_t slot;
    if (free_slot(h, &slot, err) != 0)
        return -1;
    pthread_mutex_lock(&h->mu);
    if (h->lens[slot] > 0)
        h->count++;
    h->done = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    join(h);
    if (h->failed) {
        *err = h->err;
        return -1;
    }
    return 0;
}

static void handoff_abort(stream *s)
{
    struct handoff *h = (struct handoff *)s;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    join(h);
    /* the worker has left: next is this thread's again */
    stream_abort(s->next);
}

static void handoff_destroy(stream *s)
{
    struct handoff *h = (struct handoff *)s;
    if (h->running) {
        /* freed without finish or abort: stop the worker before its buffers go */
        pthread_mutex_lock(&h->mu);
        h->stop = true;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        join(h);
    }
    for (size_t i = 0; i < HANDOFF_BUFS; i++)
        free(h->bufs[i]);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

static const struct stream_ops handoff_ops = {
    .write = handoff_write, .finish = handoff_finish, .abort = handoff_abort, .destroy = handoff_destroy};

stream *handoff_stage(stream *next)
{
    struct handoff *h = xcalloc(1, sizeof *h);
    h->base.ops = &handoff_ops;
    h->base.next = next;
    h->base.name = "handoff";
    for (size_t i = 0; i < HANDOFF_BUFS; i++)
        h->bufs[i] = xmalloc(HANDOFF_SIZE);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&h->th, NULL, worker, h) != 0)
        abort(); /* as on out of memory */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    h->running = true;
    return &h->base;
}
