/*
 * The pipeline's one abstraction: a push stream. Bytes are written into the
 * head of a chain; each stage transforms them and writes into the stage after
 * it (`next`); the last stage is a sink (a storage object, a file descriptor,
 * a memory buffer).
 *
 *   source -> zstd -> sha256 -> count -> storage sink        (backup)
 *   storage -> sha256 -> count -> unzstd -> holdback fd sink (restore)
 *
 * Lifecycle, the same for every stage:
 *   - write() zero or more times;
 *   - then exactly one of finish() (flush, finalise, then finish `next`:
 *     after a successful finish the whole chain is committed) or abort()
 *     (discard: abort `next`, commit nothing);
 *   - then stream_free() on the head, which frees the whole chain.
 * A failed write() or finish() leaves the chain needing abort().
 *
 * After finish(), each stage's result (digest, byte count) is read back with
 * that stage's own accessor, e.g. sha256_stage_hex(). Stages do their own
 * buffering; memory is bounded by their fixed buffers, never by stream size.
 *
 * Stages are not thread-safe: one chain is driven by one thread.
 */
#ifndef SAUVE_PIPELINE_STREAM_H
#define SAUVE_PIPELINE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct stream stream;

struct stream_ops {
    /* Consumes all len bytes or fails. */
    int (*write)(stream *s, const void *buf, size_t len, sv_error *err);
    /* Flushes, finalises this stage, then finishes s->next. */
    int (*finish)(stream *s, sv_error *err);
    /* Discards this stage's state, then aborts s->next. Never fails. */
    void (*abort)(stream *s);
    /* Frees this stage only (not next). May be NULL when free() suffices. */
    void (*destroy)(stream *s);
};

struct stream {
    const struct stream_ops *ops;
    stream *next;     /* NULL for a sink */
    const char *name; /* stage name for error messages, e.g. "zstd" */
};

int stream_write(stream *s, const void *buf, size_t len, sv_error *err);
int stream_finish(stream *s, sv_error *err);
void stream_abort(stream *s);
/* Frees s and every stage after it. NULL is allowed. */
void stream_free(stream *s);

/*
 * Copies everything readable from fd into s until EOF. Does not finish or
 * abort s. Returns the number of bytes copied, or -1 on a read or write error.
 * When on_progress is not NULL it is called after each chunk with the running
 * total, so that callers can log progress.
 */
int64_t stream_copy_fd(stream *s, int fd, void (*on_progress)(void *ctx, uint64_t total), void *ctx,
                       sv_error *err);

/* ---- stages ----------------------------------------------------------- */

struct zstd_options {
    int level;   /* 1..19; 0 means the default, 3 */
    int workers; /* compression threads; 0 means one per online CPU, -1 single-threaded in-caller */
};

/* Compresses into next. The frame carries a content checksum so that
 * decompression detects corruption independently of SHA-256. */
stream *zstd_compress_stage(stream *next, const struct zstd_options *opts);

/* Decompresses into next. finish() fails when the input ended inside a
 * frame (truncated artifact) and write() fails on corrupt data, naming
 * the stage. Memory is bounded by the decoder window limit (128 MiB max). */
stream *zstd_decompress_stage(stream *next);

/* Passes bytes through unchanged while hashing them. */
stream *sha256_stage(stream *next);
/* After finish(): the lowercase hex digest (65 bytes with NUL) into out. */
void sha256_stage_hex(const stream *s, char out[65]);

/* Passes bytes through while hashing and counting them; finish() fails,
 * without finishing next, unless the digest equals expected_hex and the
 * byte count equals expected_bytes. Restore puts it first, so that a
 * tampered or truncated artifact is refused before the sink commits. */
stream *sha256_expect_stage(stream *next, const char *expected_hex, uint64_t expected_bytes);

/*
 * age v1 encryption to recipients (crypto/age.h): the header is written
 * before the first chunk, then the payload in 64 KiB ChaCha20-Poly1305
 * chunks. A header that could not be made fails the first write or finish.
 */
struct age_recipients;
stream *age_encrypt_stage(stream *next, const struct age_recipients *r);

/*
 * age v1 decryption with ids (kept by the caller until the chain is freed).
 * Each chunk reaches next only once it authenticated; a missing last chunk,
 * trailing bytes or any altered byte fail, and the header's failures are
 * those of age_header_read ("age header: ...", "no identity ...").
 */
struct age_identities;
stream *age_decrypt_stage(stream *next, const struct age_identities *ids);

/* Passes at most max bytes through to next: the write that would go beyond
 * fails ("WHAT: more than the MAX bytes the manifest recorded ..."), so a
 * stream larger than recorded stops at once, not after it was all consumed
 * (restore: an object replaced by a larger one, a decompression bomb). */
stream *limit_stage(stream *next, uint64_t max, const char *what);

/* Passes bytes through unchanged while counting them. */
stream *count_stage(stream *next);
uint64_t count_stage_bytes(const stream *s);

/*
 * Sink that writes to a file descriptor (e.g. a child's stdin).
 * With holdback > 0 the last `holdback` bytes are kept back until finish(),
 * so the reader cannot see the end of the stream until every stage before
 * the sink has verified it (restore: pg_restore must not commit a truncated
 * or tampered archive). finish() writes the held bytes and closes the fd;
 * abort() closes the fd without writing them. The sink owns fd.
 * When reader_gone is given, it is set once a write finds the reader gone
 * (EPIPE): the reader stopped first, so its error, not the sink's, is the
 * cause (whether it has exited yet is a matter of timing).
 */
stream *fd_sink(int fd, size_t holdback, bool *reader_gone);

/* Sink that appends to a growing memory buffer, up to max bytes (then
 * write() fails). For small objects such as manifests, and tests. */
stream *buffer_sink(size_t max);
/* The bytes written so far; valid until the stream is freed. */
const void *buffer_sink_data(const stream *s, size_t *len);

/* Sink that discards everything (verify, benchmarks). */
stream *null_sink(void);

/* Sink that hands every write to on_data (a checker watching a stream go
 * by); finish and abort do nothing. ctx outlives the sink, which the chain
 * frees, so that what on_data gathered can be read afterwards. */
stream *callback_sink(int (*on_data)(void *ctx, const void *buf, size_t len, sv_error *err), void *ctx,
                      const char *name);

#endif
