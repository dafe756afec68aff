/* Byte counter: the sizes the manifest records before and after compression;
 * and a counter with a ceiling, for what a manifest says a stream holds. */
#include "pipeline/stream.h"

#include <inttypes.h>
#include <stdio.h>

#include "common/mem.h"

struct count_stage {
    stream base;
    uint64_t bytes;
};

static int count_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    ((struct count_stage *)s)->bytes += len;
    return s->next ? stream_write(s->next, buf, len, err) : 0;
}

static int count_finish(stream *s, sv_error *err)
{
    return s->next ? stream_finish(s->next, err) : 0;
}

static void count_abort(stream *s)
{
    stream_abort(s->next);
}

static const struct stream_ops count_ops = {count_write, count_finish, count_abort, NULL};

stream *count_stage(stream *next)
{
    struct count_stage *c = xcalloc(1, sizeof *c);
    c->base = (stream){.ops = &count_ops, .next = next, .name = "count"};
    return &c->base;
}

uint64_t count_stage_bytes(const stream *s)
{
    return ((const struct count_stage *)s)->bytes;
}

/* ---- limit ------------------------------------------------------------- */

struct limit_stage {
    stream base;
    uint64_t bytes;
    uint64_t max;
    char what[128];
};

static int limit_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct limit_stage *l = (struct limit_stage *)s;
    if (len > l->max - l->bytes)
        return sv_error_set(err, SV_EXIT_FAILED,
                            "%s: more than the %" PRIu64
                            " bytes the manifest recorded (a replaced object, or "
                            "one that decompresses to more than it should)",
                            l->what, l->max);
    l->bytes += len;
    return stream_write(s->next, buf, len, err);
}

static const struct stream_ops limit_ops = {limit_write, count_finish, count_abort, NULL};

stream *limit_stage(stream *next, uint64_t max, const char *what)
{
    struct limit_stage *l = xcalloc(1, sizeof *l);
    l->base = (stream){.ops = &limit_ops, .next = next, .name = "limit"};
    l->max = max;
    snprintf(l->what, sizeof l->what, "%s", what);
    return &l->base;
}
