#include "pipeline/progress.h"

#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "common/mem.h"

struct progress {
    stream base;
    char *label;
    double interval;
    double start;
    double last;
    uint64_t bytes;
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int progress_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct progress *p = (struct progress *)s;
    p->bytes += len;
    double t = now_seconds();
    if (t - p->last >= p->interval) {
        p->last = t;
        double rate = p->bytes / (t - p->start) / (1024.0 * 1024.0);
        char human[32];
        log_with(LOG_INFO,
                 LOG_FIELDS(LOG_STR("source", p->label), LOG_NUM("bytes", p->bytes),
                            LOG_NUM("rate_bytes_per_second", (int64_t)(rate * 1024 * 1024))),
                 "%s: %s so far, %.1f MiB/s", p->label, log_human_bytes(p->bytes, human, sizeof human), rate);
    }
    return stream_write(s->next, buf, len, err);
}

static int progress_finish(stream *s, sv_error *err)
{
    return stream_finish(s->next, err);
}

static void progress_abort(stream *s)
{
    stream_abort(s->next);
}

static void progress_destroy(stream *s)
{
    struct progress *p = (struct progress *)s;
    free(p->label);
    free(p);
}

static const struct stream_ops progress_ops = {progress_write, progress_finish, progress_abort,
                                               progress_destroy};

stream *progress_stage(stream *next, const char *label, int interval_seconds)
{
    struct progress *p = xcalloc(1, sizeof *p);
    p->base.ops = &progress_ops;
    p->base.next = next;
    p->base.name = "progress";
    p->label = xstrdup(label);
    p->interval = interval_seconds > 0 ? interval_seconds : 10;
    p->start = p->last = now_seconds();
    return &p->base;
}
