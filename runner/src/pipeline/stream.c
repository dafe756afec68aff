/* The stream lifecycle shared by every stage, and the fd-to-stream pump. */
#include "pipeline/stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/signals.h"

/* Large enough that per-call overhead (syscall, stage dispatch) is noise,
 * small enough to stay in cache on its way through the stages. */
#define COPY_CHUNK (256 * 1024)

int stream_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    if (len == 0)
        return 0;
    return s->ops->write(s, buf, len, err);
}

int stream_finish(stream *s, sv_error *err)
{
    return s->ops->finish(s, err);
}

void stream_abort(stream *s)
{
    if (s)
        s->ops->abort(s);
}

void stream_free(stream *s)
{
    while (s) {
        stream *next = s->next;
        if (s->ops->destroy)
            s->ops->destroy(s);
        else
            free(s);
        s = next;
    }
}

int64_t stream_copy_fd(stream *s, int fd, void (*on_progress)(void *ctx, uint64_t total), void *ctx,
                       sv_error *err)
{
    char *buf = xmalloc(COPY_CHUNK);
    uint64_t total = 0;
    int64_t ret = -1;

    for (;;) {
        /* A source that never blocks (a fast pipe, a file) would never see
         * EINTR, so a stop request is also polled between chunks. */
        if (signals_check(err) < 0)
            goto out;
        ssize_t n = read(fd, buf, COPY_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            sv_error_set(err, SV_EXIT_FAILED, "cannot read the input of stage %s: %s", s->name,
                         strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (stream_write(s, buf, (size_t)n, err) < 0)
            goto out;
        total += (uint64_t)n;
        if (on_progress)
            on_progress(ctx, total);
    }
    ret = (int64_t)total;
out:
    free(buf);
    return ret;
}
