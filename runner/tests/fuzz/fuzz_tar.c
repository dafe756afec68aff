/*
 * What a files artifact holds once restore/ has checked its size and
 * SHA-256 and decompressed it: a tar that anyone with write access to the
 * bucket may have forged. `sauve verify` reads it with libarchive on a
 * thread fed by a push stream (sources/files_tar.c, files_verify.c). The
 * first byte of the input chooses how the rest is cut into writes, so
 * that every state of the bridge between the pipeline and libarchive meets
 * a write boundary.
 *
 * Contracts checked besides memory safety: the verdict and the detail (the
 * entry count) do not depend on the cut; a failure has a message.
 */
#include "fuzz.h"

#include "manifest/manifest.h"
#include "sources/checker.h"
#include "sources/files.h"

/* The checker's verdict on data fed in writes of step bytes; *detail newly
 * allocated (or NULL). */
static int check(const uint8_t *data, size_t size, size_t step, char **detail)
{
    const struct checker_ops *ops = checker_find("files");
    FUZZ_CHECK(ops);
    manifest_artifact a = {.kind = "files", .name = "fuzz", .format = FILES_FORMAT};
    void *ctx = NULL;
    stream *sink = NULL;
    sv_error err = {0};
    FUZZ_CHECK(ops->start(NULL, &a, &ctx, &sink, &err) == 0);
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += step) {
        size_t n = size - off < step ? size - off : step;
        rc = stream_write(sink, data + off, n, &err);
    }
    if (rc == 0)
        rc = stream_finish(sink, &err);
    else
        stream_abort(sink);
    stream_free(sink);
    if (rc != 0)
        FUZZ_CHECK(err.msg[0]);
    *detail = NULL;
    sv_error ferr = {0};
    FUZZ_CHECK(ops->finish(ctx, rc == 0, detail, &ferr) == 0);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] * 37 + 1;
    char *whole = NULL, *cut = NULL;
    int a = check(data + 1, size - 1, size, &whole);
    int b = check(data + 1, size - 1, step, &cut);
    FUZZ_CHECK(a == b);
    FUZZ_CHECK((whole == NULL) == (cut == NULL));
    if (whole)
        FUZZ_CHECK(strcmp(whole, cut) == 0);
    free(whole);
    free(cut);
    return 0;
}
