/* zstd compression and decompression stages (streaming API, fixed buffers). */
#include "pipeline/stream.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "common/mem.h"

#define ZSTD_DEFAULT_LEVEL 3
#define ZSTD_JOB_SIZE      (2 << 20)
/* 128 MiB: the largest window the decoder accepts, which bounds restore
 * memory whatever a (possibly hostile) frame header asks for. */
#define ZSTD_WINDOW_LOG_MAX 27

/* ---- compression --------------------------------------------------- */

struct zstd_c {
    stream base;
    ZSTD_CCtx *cctx;
    char *out;
    size_t out_size;
    size_t out_pos; /* compressed bytes waiting in out */
};

static int zc_flush(struct zstd_c *z, sv_error *err)
{
    if (z->out_pos == 0)
        return 0;
    size_t n = z->out_pos;
    z->out_pos = 0;
    return stream_write(z->base.next, z->out, n, err);
}

/* Runs the compressor over in with mode until it has consumed all of it
 * (ZSTD_e_continue) or completed the frame (ZSTD_e_end), passing the output
 * on only when the buffer is full, so that the next stage sees few, large
 * writes. */
static int zc_run(struct zstd_c *z, ZSTD_inBuffer *in, ZSTD_EndDirective mode, sv_error *err)
{
    for (;;) {
        ZSTD_outBuffer out = {z->out, z->out_size, z->out_pos};
        size_t rc = ZSTD_compressStream2(z->cctx, &out, in, mode);
        z->out_pos = out.pos;
        if (ZSTD_isError(rc))
            return sv_error_set(err, SV_EXIT_FAILED, "%s: compression failed: %s", z->base.name,
                                ZSTD_getErrorName(rc));
        if (z->out_pos == z->out_size && zc_flush(z, err) < 0)
            return -1;
        if (mode == ZSTD_e_end ? rc == 0 : in->pos == in->size)
            return 0;
    }
}

static int zc_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    ZSTD_inBuffer in = {buf, len, 0};
    return zc_run((struct zstd_c *)s, &in, ZSTD_e_continue, err);
}

static int zc_finish(stream *s, sv_error *err)
{
    struct zstd_c *z = (struct zstd_c *)s;
    ZSTD_inBuffer in = {NULL, 0, 0};
    if (zc_run(z, &in, ZSTD_e_end, err) < 0 || zc_flush(z, err) < 0)
        return -1;
    return stream_finish(s->next, err);
}

static void zc_abort(stream *s)
{
    struct zstd_c *z = (struct zstd_c *)s;
    /* Stops the worker threads' jobs now rather than at free. */
    ZSTD_CCtx_reset(z->cctx, ZSTD_reset_session_only);
    z->out_pos = 0;
    stream_abort(s->next);
}

static void zc_destroy(stream *s)
{
    struct zstd_c *z = (struct zstd_c *)s;
    ZSTD_freeCCtx(z->cctx);
    free(z->out);
    free(z);
}

static const struct stream_ops zc_ops = {zc_write, zc_finish, zc_abort, zc_destroy};

/*
 * CPUs this process may really use: the affinity mask, capped by the cgroup
 * v2 CPU quota (a Kubernetes CPU limit). The node's CPU count alone would
 * start 64 compression threads, and their buffers, in a pod limited to one.
 */
static int usable_cpus(void)
{
    int n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)online : 1;
    }
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char quota[32] = "";
        long period = 0;
        if (fscanf(f, "%31s %ld", quota, &period) == 2 && strcmp(quota, "max") != 0 && period > 0) {
            long q = atol(quota);
            int limit = (int)((q + period - 1) / period);
            if (limit >= 1 && limit < n)
                n = limit;
        }
        fclose(f);
    }
    return n;
}

stream *zstd_compress_stage(stream *next, const struct zstd_options *opts)
{
    struct zstd_c *z = xcalloc(1, sizeof *z);
    z->base = (stream){.ops = &zc_ops, .next = next, .name = "zstd"};
    z->cctx = ZSTD_createCCtx();
    if (!z->cctx)
        abort(); /* allocation failure: the memory policy is to abort */
    z->out_size = ZSTD_CStreamOutSize();
    z->out = xmalloc(z->out_size);

    int level = opts && opts->level ? opts->level : ZSTD_DEFAULT_LEVEL;
    int workers = opts ? opts->workers : 0;
    if (workers == 0) {
        workers = usable_cpus();
    } else if (workers < 0) {
        workers = 0; /* zstd's "compress in the caller's thread" */
    }

    /* zstd clamps an out-of-range level itself; the configuration layer
     * reports it to the user. */
    ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1);
    /* Fails only with a libzstd built without threads; compressing in the
     * caller's thread is then the correct fallback. */
    ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, workers);
    /* zstd's default job is 4 windows (8 MiB at level 3), and several jobs
     * are buffered per worker: 2 MiB jobs cut peak memory by two thirds for
     * the same ratio (measured on a pgbench dump, docs/benchmarks.md). */
    if (workers > 0)
        ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_jobSize, ZSTD_JOB_SIZE);
    return &z->base;
}

/* ---- decompression ------------------------------------------------- */

struct zstd_d {
    stream base;
    ZSTD_DCtx *dctx;
    char *out;
    size_t out_size;
    int seen_input;
    int frame_done; /* the last frame decoded so far is complete and flushed */
};

static int zd_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct zstd_d *z = (struct zstd_d *)s;
    ZSTD_inBuffer in = {buf, len, 0};
    z->seen_input = 1;
    ZSTD_outBuffer out;
    /* A full output buffer may leave decoded bytes inside the context even
     * after all input is consumed: keep draining until it is not full. */
    do {
        out = (ZSTD_outBuffer){z->out, z->out_size, 0};
        size_t before = in.pos;
        size_t rc = ZSTD_decompressStream(z->dctx, &out, &in);
        if (ZSTD_isError(rc))
            return sv_error_set(err, SV_EXIT_FAILED, "%s: corrupt input: %s", s->name, ZSTD_getErrorName(rc));
        if (rc == 0)
            z->frame_done = 1;
        else if (in.pos != before || out.pos != 0)
            /* A call that made no progress says nothing new about the frame:
             * after a complete frame it returns the size of the next header. */
            z->frame_done = 0;
        if (out.pos && stream_write(s->next, z->out, out.pos, err) < 0)
            return -1;
    } while (in.pos < in.size || out.pos == out.size);
    return 0;
}

static int zd_finish(stream *s, sv_error *err)
{
    struct zstd_d *z = (struct zstd_d *)s;
    if (!z->seen_input)
        return sv_error_set(err, SV_EXIT_FAILED,
                            "%s: truncated input: the artifact is empty, it holds no compressed frame",
                            s->name);
    if (!z->frame_done)
        return sv_error_set(err, SV_EXIT_FAILED,
                            "%s: truncated input: the artifact ends inside a compressed frame", s->name);
    return stream_finish(s->next, err);
}

static void zd_abort(stream *s)
{
    stream_abort(s->next);
}

static void zd_destroy(stream *s)
{
    struct zstd_d *z = (struct zstd_d *)s;
    ZSTD_freeDCtx(z->dctx);
    free(z->out);
    free(z);
}

static const struct stream_ops zd_ops = {zd_write, zd_finish, zd_abort, zd_destroy};

stream *zstd_decompress_stage(stream *next)
{
    struct zstd_d *z = xcalloc(1, sizeof *z);
    z->base = (stream){.ops = &zd_ops, .next = next, .name = "zstd"};
    z->dctx = ZSTD_createDCtx();
    if (!z->dctx)
        abort(); /* allocation failure: the memory policy is to abort */
    z->out_size = ZSTD_DStreamOutSize();
    z->out = xmalloc(z->out_size);
    ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX);
    return &z->base;
}
