/*
 * A tar read from a push stream. The pipeline pushes bytes (write), and
 * libarchive pulls them (its read callback): the reader runs on its own
 * thread, and the two meet at two buffers. The writer appends to one while
 * it has room, and wakes the reader only when it was empty; the reader
 * takes whatever has gathered by swapping the two (libarchive is done
 * with the block it was given before when it asks for the next). So a
 * hand-over, two thread switches on a busy machine, carries up to 1 MiB,
 * not one pipeline write. Bounded: two buffers of 1 MiB.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>

#include "common/mem.h"
#include "sources/files.h"

#define BRIDGE_BUF (1024 * 1024)

struct tar_sink {
    stream s;
    int (*consume)(struct archive *a, void *ctx, sv_error *err);
    void *ctx;
    pthread_t thread;
    bool running; /* the thread was started and not joined yet */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *buf; /* filled by write */
    size_t len;
    unsigned char *rbuf; /* what the reader was last given: libarchive's until its next read */
    bool eof;            /* finish: no more bytes */
    bool aborted;        /* abort: the reader's next read fails */
    bool done;           /* consume returned */
    int rc;
    sv_error err;
};

static la_ssize_t read_cb(struct archive *a, void *ctx, const void **out)
{
    struct tar_sink *t = ctx;
    pthread_mutex_lock(&t->mu);
    while (t->len == 0 && !t->eof && !t->aborted)
        pthread_cond_wait(&t->cv, &t->mu);
    la_ssize_t n;
    if (t->aborted) {
        archive_set_error(a, ECANCELED, "the stream was aborted");
        n = -1;
    } else {
        n = (la_ssize_t)t->len;
        unsigned char *given = t->buf;
        t->buf = t->rbuf;
        t->rbuf = given;
        t->len = 0;
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    *out = t->rbuf;
    return n;
}

static void *run(void *arg)
{
    struct tar_sink *t = arg;
    struct archive *a = archive_read_new();
    sv_error err = {0};
    int rc;
    /* tar only, and no filter: the pipeline has decompressed already, and
     * a reader that guessed formats would read anything as something */
    if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_open(a, t, NULL, read_cb, NULL) != ARCHIVE_OK)
        rc = sv_error_set(&err, SV_EXIT_FAILED, "not a tar archive: %s", archive_error_string(a));
    else
        rc = t->consume(a, t->ctx, &err);
    archive_read_free(a);
    pthread_mutex_lock(&t->mu);
    t->rc = rc;
    t->err = err;
    t->done = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static int tar_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct tar_sink *t = (struct tar_sink *)s;
    const unsigned char *p = buf;
    pthread_mutex_lock(&t->mu);
    while (len > 0) {
        while (t->len == BRIDGE_BUF && !t->done)
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->done) {
            if (t->rc != 0) {
                *err = t->err;
                pthread_mutex_unlock(&t->mu);
                return -1;
            }
            break; /* after the end of the archive: read and dropped */
        }
        size_t n = len < BRIDGE_BUF - t->len ? len : BRIDGE_BUF - t->len;
        bool was_empty = t->len == 0;
        memcpy(t->buf + t->len, p, n);
        t->len += n;
        p += n;
        len -= n;
        if (was_empty)
            pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static void stop(struct tar_sink *t, bool abort)
{
    if (!t->running)
        return;
    pthread_mutex_lock(&t->mu);
    if (abort)
        t->aborted = true;
    else
        t->eof = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    t->running = false;
}

static int tar_finish(stream *s, sv_error *err)
{
    struct tar_sink *t = (struct tar_sink *)s;
    stop(t, false);
    if (t->rc != 0) {
        *err = t->err;
        return -1;
    }
    return 0;
}

static void tar_abort(stream *s)
{
    stop((struct tar_sink *)s, true);
}

static void tar_destroy(stream *s)
{
    struct tar_sink *t = (struct tar_sink *)s;
    stop(t, true);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t->buf);
    free(t->rbuf);
    free(t);
}

static const struct stream_ops tar_ops = {
    .write = tar_write,
    .finish = tar_finish,
    .abort = tar_abort,
    .destroy = tar_destroy,
};

stream *files_tar_sink(int (*consume)(struct archive *a, void *ctx, sv_error *err), void *ctx,
                       const char *name)
{
    struct tar_sink *t = xcalloc(1, sizeof *t);
    t->s.ops = &tar_ops;
    t->s.name = name;
    t->consume = consume;
    t->ctx = ctx;
    t->buf = xmalloc(BRIDGE_BUF);
    t->rbuf = xmalloc(BRIDGE_BUF);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    /* musl gives a thread 128 KiB of stack: libarchive and an extraction
     * want more, whichever libc runs them */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 2u << 20);
    /* the thread inherits a mask with every signal blocked: a SIGTERM must
     * reach the main thread, whose blocking reads it interrupts */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&t->thread, &attr, run, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        abort(); /* no thread: as out of memory, the policy is to abort */
    pthread_attr_destroy(&attr);
    t->running = true;
    return &t->s;
}
