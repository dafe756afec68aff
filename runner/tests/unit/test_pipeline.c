#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "common/mem.h"
#include "pipeline/stream.h"

/* ---- helpers --------------------------------------------------------- */

/* 8 MiB alternating between xorshift noise (incompressible) and repeated
 * text (compressible), so both zstd paths see real work. */
static unsigned char *make_data(size_t len)
{
    unsigned char *d = xmalloc(len);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    static const char text[] = "INSERT INTO items VALUES (42, 'sauve backup runner', now());\n";
    for (size_t i = 0; i < len; i++) {
        if ((i / 65536) % 2 == 0) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            d[i] = (unsigned char)x;
        } else {
            d[i] = (unsigned char)text[i % (sizeof text - 1)];
        }
    }
    return d;
}

/* Writes data into s in chunks of the given size (odd sizes exercise the
 * stages' buffering), then finishes. Returns finish's result. */
static int feed(stream *s, const void *data, size_t len, size_t chunk, sv_error *err)
{
    const char *p = data;
    while (len > 0) {
        size_t n = len < chunk ? len : chunk;
        if (stream_write(s, p, n, err) < 0)
            return -1;
        p += n;
        len -= n;
    }
    return stream_finish(s, err);
}

static char *compress(const void *data, size_t len, int workers, size_t *out_len)
{
    sv_error err = {0};
    stream *sink = buffer_sink(SIZE_MAX);
    stream *z = zstd_compress_stage(sink, &(struct zstd_options){.level = 0, .workers = workers});
    assert_int_equal(feed(z, data, len, 100000, &err), 0);
    size_t n;
    const void *p = buffer_sink_data(sink, &n);
    char *copy = xmalloc(n);
    memcpy(copy, p, n);
    *out_len = n;
    stream_free(z);
    return copy;
}

/* ---- sha256 and count ------------------------------------------------ */

static void sha_of(const void *data, size_t len, char hex[65])
{
    sv_error err = {0};
    stream *sink = buffer_sink(SIZE_MAX);
    stream *h = sha256_stage(sink);
    assert_int_equal(feed(h, data, len, 4096, &err), 0);
    sha256_stage_hex(h, hex);
    size_t n;
    const void *p = buffer_sink_data(sink, &n);
    assert_int_equal(n, len);
    assert_memory_equal(p, data, len);
    stream_free(h);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[65];
    sha_of("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_of("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char *a = xmalloc(1000000);
    memset(a, 'a', 1000000);
    sha_of(a, 1000000, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

static void test_count(void **state)
{
    (void)state;
    sv_error err = {0};
    stream *sink = buffer_sink(SIZE_MAX);
    stream *c = count_stage(sink);
    assert_int_equal(stream_write(c, "hello", 5, &err), 0);
    assert_int_equal(stream_write(c, "", 0, &err), 0);
    assert_int_equal(stream_write(c, " world", 6, &err), 0);
    assert_int_equal(stream_finish(c, &err), 0);
    assert_int_equal(count_stage_bytes(c), 11);
    size_t n;
    assert_string_equal(buffer_sink_data(sink, &n), "hello world");
    assert_int_equal(n, 11);
    stream_free(c);
}

/* sha256("hello world") */
#define HELLO_SHA "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"

static void test_sha256_expect(void **state)
{
    (void)state;
    sv_error err = {0};
    /* right size and digest: passes through and finishes the sink */
    stream *sink = buffer_sink(SIZE_MAX);
    stream *e = sha256_expect_stage(sink, HELLO_SHA, 11);
    assert_int_equal(stream_write(e, "hello ", 6, &err), 0);
    assert_int_equal(stream_write(e, "world", 5, &err), 0);
    assert_int_equal(stream_finish(e, &err), 0);
    stream_free(e);

    /* one byte changed: the digest says so at the end */
    e = sha256_expect_stage(buffer_sink(SIZE_MAX), HELLO_SHA, 11);
    assert_int_equal(stream_write(e, "hello World", 11, &err), 0);
    assert_int_equal(stream_finish(e, &err), -1);
    assert_non_null(strstr(err.msg, "checksum mismatch"));
    stream_abort(e);
    stream_free(e);

    /* short */
    sv_error_clear(&err);
    e = sha256_expect_stage(buffer_sink(SIZE_MAX), HELLO_SHA, 11);
    assert_int_equal(stream_write(e, "hello", 5, &err), 0);
    assert_int_equal(stream_finish(e, &err), -1);
    assert_non_null(strstr(err.msg, "read 5 bytes, the manifest recorded 11"));
    stream_abort(e);
    stream_free(e);

    /* longer: refused at the write that goes beyond, before the next stage sees it */
    sv_error_clear(&err);
    sink = buffer_sink(SIZE_MAX);
    e = sha256_expect_stage(sink, HELLO_SHA, 11);
    assert_int_equal(stream_write(e, "hello worl", 10, &err), 0);
    assert_int_equal(stream_write(e, "d!", 2, &err), -1);
    assert_non_null(strstr(err.msg, "more than the 11 bytes the manifest recorded"));
    size_t n;
    buffer_sink_data(sink, &n);
    assert_int_equal(n, 10);
    stream_abort(e);
    stream_free(e);
}

static void test_limit(void **state)
{
    (void)state;
    sv_error err = {0};
    stream *sink = buffer_sink(SIZE_MAX);
    stream *l = limit_stage(sink, 5, "postgres:app");
    assert_int_equal(stream_write(l, "abc", 3, &err), 0);
    assert_int_equal(stream_write(l, "de", 2, &err), 0); /* exactly the limit */
    assert_int_equal(stream_write(l, "", 0, &err), 0);
    assert_int_equal(stream_write(l, "f", 1, &err), -1);
    assert_non_null(strstr(err.msg, "postgres:app: more than the 5 bytes the manifest recorded"));
    size_t n;
    assert_memory_equal(buffer_sink_data(sink, &n), "abcde", 5);
    assert_int_equal(n, 5);
    stream_abort(l);
    stream_free(l);
}

static int count_calls(void *ctx, const void *buf, size_t len, sv_error *err)
{
    size_t *seen = ctx;
    if (len && ((const char *)buf)[0] == '!')
        return sv_error_set(err, SV_EXIT_FAILED, "refused");
    *seen += len;
    return 0;
}

static void test_callback_sink(void **state)
{
    (void)state;
    size_t seen = 0;
    sv_error err = {0};
    stream *s = callback_sink(count_calls, &seen, "counter");
    assert_int_equal(stream_write(s, "abc", 3, &err), 0);
    assert_int_equal(stream_write(s, "de", 2, &err), 0);
    assert_int_equal(stream_write(s, "!", 1, &err), -1); /* the callback's failure is the write's */
    assert_string_equal(err.msg, "refused");
    stream_abort(s);
    stream_free(s);
    assert_int_equal(seen, 5); /* ctx outlives the sink */
}

static void test_buffer_sink_limit(void **state)
{
    (void)state;
    sv_error err = {0};
    stream *b = buffer_sink(10);
    assert_int_equal(stream_write(b, "0123456789", 10, &err), 0);
    assert_int_equal(stream_write(b, "x", 1, &err), -1);
    assert_non_null(strstr(err.msg, "10-byte limit"));
    stream_abort(b);
    stream_free(b);

    stream *n = null_sink();
    assert_int_equal(stream_write(n, "abc", 3, &err), 0);
    assert_int_equal(stream_finish(n, &err), 0);
    stream_free(n);
}

/* ---- zstd ------------------------------------------------------------ */

#define BIG (8u * 1024 * 1024)

static void decompress_check(const char *z, size_t zlen, const unsigned char *want, size_t want_len)
{
    sv_error err = {0};
    stream *sink = buffer_sink(SIZE_MAX);
    stream *d = zstd_decompress_stage(sink);
    /* 7777: chunk boundaries fall anywhere inside blocks and headers */
    assert_int_equal(feed(d, z, zlen, 7777, &err), 0);
    size_t n;
    const void *p = buffer_sink_data(sink, &n);
    assert_int_equal(n, want_len);
    assert_memory_equal(p, want, want_len);
    stream_free(d);
}

/* The zstd CLI, an independent decoder, must accept and reproduce it. */
static void cli_check(const char *z, size_t zlen, const unsigned char *want, size_t want_len)
{
    char *dir = test_tmpdir();
    char *zpath = xasprintf("%s/data.zst", dir);
    char *out = xasprintf("%s/data", dir);
    FILE *f = fopen(zpath, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(z, 1, zlen, f), zlen);
    fclose(f);
    char *cmd = xasprintf("zstd -q -t '%s' && zstd -q -d '%s' -o '%s'", zpath, zpath, out);
    assert_int_equal(system(cmd), 0);
    f = fopen(out, "rb");
    assert_non_null(f);
    unsigned char *got = xmalloc(want_len + 1);
    assert_int_equal(fread(got, 1, want_len + 1, f), want_len);
    fclose(f);
    assert_memory_equal(got, want, want_len);
    free(got);
    free(cmd);
    free(out);
    free(zpath);
    test_rmtree(dir);
    free(dir);
}

static void roundtrip(int workers)
{
    unsigned char *data = make_data(BIG);
    size_t zlen;
    char *z = compress(data, BIG, workers, &zlen);
    /* Half the input is repeated text: it must actually have compressed. */
    assert_true(zlen < BIG * 6 / 10);
    decompress_check(z, zlen, data, BIG);
    cli_check(z, zlen, data, BIG);
    free(z);
    free(data);
}

static void test_zstd_roundtrip_single_thread(void **state)
{
    (void)state;
    roundtrip(-1);
}

static void test_zstd_roundtrip_multithread(void **state)
{
    (void)state;
    roundtrip(2);
    roundtrip(0);
}

static void test_zstd_concatenated_frames(void **state)
{
    (void)state;
    size_t l1, l2;
    char *a = compress("hello ", 6, -1, &l1);
    char *b = compress("world", 5, -1, &l2);
    char *both = xmalloc(l1 + l2);
    memcpy(both, a, l1);
    memcpy(both + l1, b, l2);
    decompress_check(both, l1 + l2, (const unsigned char *)"hello world", 11);
    free(both);
    free(a);
    free(b);
}

static void test_zstd_empty_input(void **state)
{
    (void)state;
    /* Compressing nothing still yields a frame, which decodes to nothing. */
    size_t zlen;
    char *z = compress("", 0, -1, &zlen);
    assert_true(zlen > 0);
    decompress_check(z, zlen, (const unsigned char *)"", 0);
    free(z);

    /* A zero-byte artifact is not a valid stream: it must not restore as empty. */
    sv_error err = {0};
    stream *d = zstd_decompress_stage(buffer_sink(SIZE_MAX));
    assert_int_equal(stream_finish(d, &err), -1);
    assert_non_null(strstr(err.msg, "zstd: truncated input"));
    stream_abort(d);
    stream_free(d);
}

static void test_zstd_truncated(void **state)
{
    (void)state;
    unsigned char *data = make_data(1024 * 1024);
    size_t zlen;
    char *z = compress(data, 1024 * 1024, -1, &zlen);
    /* Cut inside the header, the middle, and the final checksum. */
    size_t cuts[] = {3, zlen / 2, zlen - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        sv_error err = {0};
        stream *sink = buffer_sink(SIZE_MAX);
        stream *d = zstd_decompress_stage(sink);
        assert_int_equal(stream_write(d, z, cuts[i], &err), 0);
        assert_int_equal(stream_finish(d, &err), -1);
        assert_string_equal(err.msg, "zstd: truncated input: the artifact ends inside a compressed frame");
        stream_abort(d);
        stream_free(d);
    }
    free(z);
    free(data);
}

static void test_zstd_corrupt(void **state)
{
    (void)state;
    unsigned char *data = make_data(1024 * 1024);
    size_t zlen;
    char *z = compress(data, 1024 * 1024, -1, &zlen);
    for (size_t i = zlen / 2; i < zlen / 2 + 16; i++)
        z[i] ^= 0x5a;
    sv_error err = {0};
    stream *d = zstd_decompress_stage(buffer_sink(SIZE_MAX));
    int rc = stream_write(d, z, zlen, &err);
    if (rc == 0)
        rc = stream_finish(d, &err);
    assert_int_equal(rc, -1);
    assert_int_equal(err.code, SV_EXIT_FAILED);
    assert_non_null(strstr(err.msg, "zstd: corrupt input: "));
    stream_abort(d);
    stream_free(d);
    free(z);
    free(data);
}

/* ---- fd sink --------------------------------------------------------- */

/* Reads whatever the pipe holds right now (read end non-blocking). */
static size_t drain(int fd, unsigned char *out, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, out + got, cap - got);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n == 0 || errno == EAGAIN);
        return got;
    }
}

static void test_fd_sink_holdback(void **state)
{
    (void)state;
    enum { HOLD = 1000, TOTAL = 50000 };
    unsigned char *data = make_data(TOTAL);
    unsigned char *got = xmalloc(TOTAL + 1);
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    /* blocking writes: the sink does not expect EAGAIN */
    assert_int_equal(fcntl(p[1], F_SETFL, 0), 0);

    sv_error err = {0};
    stream *s = fd_sink(p[1], HOLD, NULL);
    size_t written = 0, seen = 0;
    /* Chunk sizes below, at and above the holdback, so the ring wraps. */
    size_t sizes[] = {1, 999, 1000, 1001, 7, 3000, 333, 17};
    for (size_t i = 0; written < TOTAL; i++) {
        size_t n = sizes[i % 8];
        if (n > TOTAL - written)
            n = TOTAL - written;
        assert_int_equal(stream_write(s, data + written, n, &err), 0);
        written += n;
        seen += drain(p[0], got + seen, TOTAL + 1 - seen);
        assert_int_equal(seen, written > HOLD ? written - HOLD : 0);
    }
    assert_memory_equal(got, data, seen);
    assert_int_equal(stream_finish(s, &err), 0);
    seen += drain(p[0], got + seen, TOTAL + 1 - seen);
    assert_int_equal(seen, TOTAL);
    assert_memory_equal(got, data, TOTAL);
    /* finish closed the write end: EOF */
    assert_int_equal(read(p[0], got, 1), 0);
    stream_free(s);
    close(p[0]);
    free(got);
    free(data);
}

static void test_fd_sink_abort_withholds(void **state)
{
    (void)state;
    unsigned char data[3000];
    unsigned char got[3001];
    memset(data, 'x', sizeof data);
    int p[2];
    assert_int_equal(pipe(p), 0);
    sv_error err = {0};
    stream *s = fd_sink(p[1], 1000, NULL);
    assert_int_equal(stream_write(s, data, sizeof data, &err), 0);
    stream_abort(s);
    /* abort closed the write end, so this blocking read ends at EOF */
    size_t n = 0;
    ssize_t r;
    while ((r = read(p[0], got + n, sizeof got - n)) > 0)
        n += (size_t)r;
    assert_int_equal(n, 2000);
    stream_free(s);
    close(p[0]);
}

static void test_fd_sink_reader_gone(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    sv_error err = {0};
    stream *s = fd_sink(p[1], 0, NULL);
    assert_int_equal(stream_write(s, "data", 4, &err), -1);
    assert_int_equal(err.code, SV_EXIT_FAILED);
    assert_non_null(strstr(err.msg, "closed its input"));
    stream_abort(s);
    stream_free(s);

    /* The same through the holdback path, failing at finish. */
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    sv_error_clear(&err);
    bool gone = false;
    s = fd_sink(p[1], 100, &gone);
    assert_int_equal(stream_write(s, "data", 4, &err), 0);
    assert_false(gone); /* held back: nothing reached the pipe yet */
    assert_int_equal(stream_finish(s, &err), -1);
    assert_non_null(strstr(err.msg, "closed its input"));
    assert_true(gone);
    stream_abort(s);
    stream_free(s);

    /* An abort (the artifact failed verification) is not the reader's doing. */
    assert_int_equal(pipe(p), 0);
    gone = false;
    s = fd_sink(p[1], 100, &gone);
    assert_int_equal(stream_write(s, "data", 4, &err), 0);
    stream_abort(s);
    stream_free(s);
    close(p[0]);
    assert_false(gone);
}

/* ---- stream_copy_fd -------------------------------------------------- */

static void on_progress(void *ctx, uint64_t total)
{
    uint64_t *last = ctx;
    assert_true(total > *last);
    *last = total;
}

static void test_copy_fd(void **state)
{
    (void)state;
    enum { LEN = 1024 * 1024 + 12345 }; /* not a multiple of the chunk */
    unsigned char *data = make_data(LEN);
    char *dir = test_tmpdir();
    char *path = xasprintf("%s/in", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, LEN, f), LEN);
    fclose(f);

    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    sv_error err = {0};
    stream *sink = buffer_sink(SIZE_MAX);
    stream *c = count_stage(sink);
    uint64_t last = 0;
    assert_int_equal(stream_copy_fd(c, fd, on_progress, &last, &err), LEN);
    assert_int_equal(last, LEN);
    assert_int_equal(stream_finish(c, &err), 0);
    assert_int_equal(count_stage_bytes(c), LEN);
    size_t n;
    const void *p = buffer_sink_data(sink, &n);
    assert_int_equal(n, LEN);
    assert_memory_equal(p, data, LEN);
    stream_free(c);
    close(fd);

    /* A write error downstream stops the copy with that error. */
    fd = open(path, O_RDONLY);
    sv_error_clear(&err);
    stream *small = buffer_sink(1000);
    assert_int_equal(stream_copy_fd(small, fd, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "limit"));
    stream_abort(small);
    stream_free(small);
    close(fd);

    test_rmtree(dir);
    free(dir);
    free(path);
    free(data);
}

int main(void)
{
    /* What signals_install() does in sauve: a dead reader is EPIPE, not death. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_sha256_expect),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_callback_sink),
        cmocka_unit_test(test_buffer_sink_limit),
        cmocka_unit_test(test_zstd_roundtrip_single_thread),
        cmocka_unit_test(test_zstd_roundtrip_multithread),
        cmocka_unit_test(test_zstd_concatenated_frames),
        cmocka_unit_test(test_zstd_empty_input),
        cmocka_unit_test(test_zstd_truncated),
        cmocka_unit_test(test_zstd_corrupt),
        cmocka_unit_test(test_fd_sink_holdback),
        cmocka_unit_test(test_fd_sink_abort_withholds),
        cmocka_unit_test(test_fd_sink_reader_gone),
        cmocka_unit_test(test_copy_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
