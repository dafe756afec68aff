/* The ends of a chain: a file descriptor, a memory buffer, nothing. */
#include "pipeline/stream.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/signals.h"

/* ---- fd sink --------------------------------------------------------- */

struct fd_sink {
    stream base;
    int fd;
    /* Ring buffer of the last `cap` bytes written, kept back from the reader.
     * A ring rather than a sliding array: with a large holdback, shifting it
     * on every write would cost more than the write itself. */
    char *ring;
    size_t cap;
    size_t start; /* index of the oldest held byte */
    size_t held;
    bool *reader_gone; /* set on EPIPE, when the caller asked */
};

static int write_all(struct fd_sink *f, const char *p, size_t len, sv_error *err)
{
    while (len > 0) {
        ssize_t n = write(f->fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                if (signals_check(err) < 0)
                    return -1;
                continue;
            }
            if (errno == EPIPE) {
                if (f->reader_gone)
                    *f->reader_gone = true;
                return sv_error_set(err, SV_EXIT_FAILED,
                                    "%s: the reading process closed its input before the end of the stream",
                                    f->base.name);
            }
            return sv_error_set(err, SV_EXIT_FAILED, "%s: cannot write: %s", f->base.name, strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes out the oldest n held bytes. */
static int release_held(struct fd_sink *f, size_t n, sv_error *err)
{
    size_t first = f->cap - f->start < n ? f->cap - f->start : n;
    if (write_all(f, f->ring + f->start, first, err) < 0 || write_all(f, f->ring, n - first, err) < 0)
        return -1;
    f->start = (f->start + n) % f->cap;
    f->held -= n;
    return 0;
}

/* Appends n bytes to the ring; the caller guarantees they fit. */
static void hold(struct fd_sink *f, const char *p, size_t n)
{
    size_t end = (f->start + f->held) % f->cap;
    size_t first = f->cap - end < n ? f->cap - end : n;
    memcpy(f->ring + end, p, first);
    memcpy(f->ring, p + first, n - first);
    f->held += n;
}

static int fd_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct fd_sink *f = (struct fd_sink *)s;
    const char *p = buf;
    if (f->fd < 0)
        return sv_error_set(err, SV_EXIT_FAILED, "%s: write after the stream was closed", s->name);
    if (f->cap == 0)
        return write_all(f, p, len, err);

    if (f->held + len > f->cap) {
        /* Everything but the newest cap bytes may go: first from the ring
         * (older), then from the head of this write. */
        size_t excess = f->held + len - f->cap;
        size_t from_ring = excess < f->held ? excess : f->held;
        if (release_held(f, from_ring, err) < 0)
            return -1;
        size_t from_buf = excess - from_ring;
        if (write_all(f, p, from_buf, err) < 0)
            return -1;
        p += from_buf;
        len -= from_buf;
    }
    hold(f, p, len);
    return 0;
}

static int fd_finish(stream *s, sv_error *err)
{
    struct fd_sink *f = (struct fd_sink *)s;
    if (f->fd < 0)
        return sv_error_set(err, SV_EXIT_FAILED, "%s: finish after the stream was closed", s->name);
    if (f->held && release_held(f, f->held, err) < 0)
        return -1;
    int fd = f->fd;
    f->fd = -1;
    /* close() of a pipe only fails on EINTR/EIO; either way the descriptor is gone. */
    if (close(fd) < 0 && errno != EINTR)
        return sv_error_set(err, SV_EXIT_FAILED, "%s: cannot close: %s", s->name, strerror(errno));
    return 0;
}

static void fd_abort(stream *s)
{
    struct fd_sink *f = (struct fd_sink *)s;
    f->held = 0;
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

static void fd_destroy(stream *s)
{
    struct fd_sink *f = (struct fd_sink *)s;
    /* Freed without finish or abort: still never leak the descriptor, and
     * never release the held bytes. */
    fd_abort(s);
    free(f->ring);
    free(f);
}

static const struct stream_ops fd_ops = {fd_write, fd_finish, fd_abort, fd_destroy};

stream *fd_sink(int fd, size_t holdback, bool *reader_gone)
{
    struct fd_sink *f = xcalloc(1, sizeof *f);
    f->base = (stream){.ops = &fd_ops, .next = NULL, .name = "fd sink"};
    f->fd = fd;
    f->cap = holdback;
    f->ring = holdback ? xmalloc(holdback) : NULL;
    f->reader_gone = reader_gone;
    return &f->base;
}

/* ---- buffer sink ----------------------------------------------------- */

struct buffer_sink {
    stream base;
    char *data; /* always NUL-terminated after len bytes, for text objects */
    size_t len;
    size_t cap;
    size_t max;
};

static int buf_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct buffer_sink *b = (struct buffer_sink *)s;
    if (len > b->max - b->len)
        return sv_error_set(err, SV_EXIT_FAILED, "%s: more than the %zu-byte limit", s->name, b->max);
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        if (b->max < SIZE_MAX && cap > b->max + 1)
            cap = b->max + 1; /* never reserve more than the limit allows */
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, buf, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

static int buf_finish(stream *s, sv_error *err)
{
    (void)s;
    (void)err;
    return 0;
}

static void buf_abort(stream *s)
{
    (void)s;
}

static void buf_destroy(stream *s)
{
    struct buffer_sink *b = (struct buffer_sink *)s;
    free(b->data);
    free(b);
}

static const struct stream_ops buf_ops = {buf_write, buf_finish, buf_abort, buf_destroy};

stream *buffer_sink(size_t max)
{
    struct buffer_sink *b = xcalloc(1, sizeof *b);
    b->base = (stream){.ops = &buf_ops, .next = NULL, .name = "buffer"};
    b->max = max;
    return &b->base;
}

const void *buffer_sink_data(const stream *s, size_t *len)
{
    const struct buffer_sink *b = (const struct buffer_sink *)s;
    if (len)
        *len = b->len;
    return b->data ? b->data : "";
}

/* ---- null sink ------------------------------------------------------- */

static int null_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    (void)s;
    (void)buf;
    (void)len;
    (void)err;
    return 0;
}

static const struct stream_ops null_ops = {null_write, buf_finish, buf_abort, NULL};

stream *null_sink(void)
{
    stream *s = xcalloc(1, sizeof *s);
    *s = (stream){.ops = &null_ops, .next = NULL, .name = "null"};
    return s;
}

/* ---- callback sink --------------------------------------------------- */

struct callback_sink {
    stream base;
    int (*on_data)(void *ctx, const void *buf, size_t len, sv_error *err);
    void *ctx;
};

static int cb_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct callback_sink *c = (struct callback_sink *)s;
    return c->on_data(c->ctx, buf, len, err);
}

static const struct stream_ops callback_ops = {cb_write, buf_finish, buf_abort, NULL};

stream *callback_sink(int (*on_data)(void *ctx, const void *buf, size_t len, sv_error *err), void *ctx,
                      const char *name)
{
    struct callback_sink *c = xcalloc(1, sizeof *c);
    c->base = (stream){.ops = &callback_ops, .next = NULL, .name = name};
    c->on_data = on_data;
    c->ctx = ctx;
    return &c->base;
}
