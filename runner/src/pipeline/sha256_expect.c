/* Verification before commit: the restore side of the SHA-256 stage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "pipeline/stream.h"

struct expect_stage {
    stream base;
    stream *digest; /* a sha256_stage with no next: hashes only */
    uint64_t bytes;
    uint64_t expected_bytes;
    char expected[65];
};

static int expect_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct expect_stage *e = (struct expect_stage *)s;
    /* the first byte beyond the recorded size is refused: what follows
     * it must not reach a loader */
    if (len > e->expected_bytes - e->bytes)
        return sv_error_set(err, SV_EXIT_FAILED,
                            "size mismatch: more than the %" PRIu64
                            " bytes the manifest recorded (replaced or appended-to object)",
                            e->expected_bytes);
    e->bytes += len;
    if (stream_write(e->digest, buf, len, err) != 0)
        return -1;
    return stream_write(s->next, buf, len, err);
}

static int expect_finish(stream *s, sv_error *err)
{
    struct expect_stage *e = (struct expect_stage *)s;
    if (stream_finish(e->digest, err) != 0)
        return -1;
    if (e->bytes != e->expected_bytes)
        return sv_error_set(err, SV_EXIT_FAILED,
                            "size mismatch: read %" PRIu64 " bytes, the manifest recorded %" PRIu64
                            " (truncated or replaced object)",
                            e->bytes, e->expected_bytes);
    char got[65];
    sha256_stage_hex(e->digest, got);
    if (strcmp(got, e->expected) != 0)
        return sv_error_set(
            err, SV_EXIT_FAILED,
            "checksum mismatch: sha256 %s, the manifest recorded %s (corrupt or tampered object)", got,
            e->expected);
    return stream_finish(s->next, err);
}

static void expect_abort(stream *s)
{
    stream_abort(s->next);
}

static void expect_destroy(stream *s)
{
    struct expect_stage *e = (struct expect_stage *)s;
    stream_free(e->digest);
    free(e);
}

static const struct stream_ops expect_ops = {expect_write, expect_finish, expect_abort, expect_destroy};

stream *sha256_expect_stage(stream *next, const char *expected_hex, uint64_t expected_bytes)
{
    struct expect_stage *e = xcalloc(1, sizeof *e);
    e->base = (stream){.ops = &expect_ops, .next = next, .name = "sha256-verify"};
    e->digest = sha256_stage(NULL);
    e->expected_bytes = expected_bytes;
    snprintf(e->expected, sizeof e->expected, "%s", expected_hex);
    return &e->base;
}
