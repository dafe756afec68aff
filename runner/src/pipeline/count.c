/* Byte counter: the sizes the manifest records before and after compression. */
#include "pipeline/stream.h"

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
