/*
 * What a Redis server (or anything between sauve and it) sends: RESP
 * replies, the answer to PSYNC with its payload in either framing, and the
 * RDB inside (sources/redis_proto.c). The first byte of the input chooses
 * how the rest is cut into reads, so that every parser state meets a read
 * boundary.
 *
 * Contracts checked besides memory safety: a reply parse consumes no more
 * than it was given and its text is as long as it says; the payload fed in
 * pieces gives the same bytes, state and consumption as fed whole; the RDB
 * checker's verdict and version do not depend on the cut, and a verdict of
 * whole is only given to bytes whose CRC-64 is the trailer (or absent).
 */
#include "fuzz.h"

#include "sources/redis.h"

struct sink {
    unsigned char *data;
    size_t len;
};

static int collect(void *ctx, const void *buf, size_t len, sv_error *err)
{
    (void)err;
    struct sink *k = ctx;
    k->data = xrealloc(k->data, k->len + len + 1);
    memcpy(k->data + k->len, buf, len);
    k->len += len;
    return 0;
}

struct fed {
    struct sink out;
    redis_sync s;
    ssize_t consumed; /* -1 on error */
};

static void feed(const uint8_t *data, size_t size, size_t step, struct fed *f)
{
    memset(f, 0, sizeof *f);
    redis_sync_init(&f->s);
    sv_error err = {0};
    size_t total = 0;
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        ssize_t r = redis_sync_feed(&f->s, data + off, n, collect, &f->out, &err);
        if (r < 0) {
            FUZZ_CHECK(err.msg[0]);
            f->consumed = -1;
            return;
        }
        FUZZ_CHECK((size_t)r <= n);
        total += (size_t)r;
        if ((size_t)r < n) {
            FUZZ_CHECK(f->s.state == REDIS_SYNC_DONE || f->s.state == REDIS_SYNC_REFUSED);
            break;
        }
    }
    f->consumed = (ssize_t)total;
}

static int check_rdb(const uint8_t *data, size_t size, size_t step, redis_rdb_check *c)
{
    redis_rdb_check_init(c);
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (redis_rdb_check_update(c, data + off, n) != 0)
            return -1;
    }
    return redis_rdb_check_finish(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    data++;
    size--;

    /* RESP: one reply from the start */
    redis_reply r;
    size_t used = 0;
    sv_error err = {0};
    int pr = redis_reply_parse((const char *)data, size, &r, &used, &err);
    if (pr == 1) {
        FUZZ_CHECK(used > 0 && used <= size);
        if (r.str)
            FUZZ_CHECK(strlen(r.str) <= r.len);
    } else {
        FUZZ_CHECK(r.str == NULL);
        FUZZ_CHECK(pr == 0 || err.msg[0]);
    }
    redis_reply_free(&r);

    /* the PSYNC answer: in pieces as whole */
    struct fed whole, cut;
    feed(data, size, size ? size : 1, &whole);
    feed(data, size, step, &cut);
    FUZZ_CHECK((whole.consumed < 0) == (cut.consumed < 0));
    if (whole.consumed >= 0) {
        FUZZ_CHECK(whole.consumed == cut.consumed);
        FUZZ_CHECK(whole.s.state == cut.s.state);
        /* EOF framing holds back what may be the mark: a payload still
         * running may have emitted less when cut, never different bytes */
        size_t common = whole.out.len < cut.out.len ? whole.out.len : cut.out.len;
        FUZZ_CHECK(common == 0 || memcmp(whole.out.data, cut.out.data, common) == 0);
        if (whole.s.state == REDIS_SYNC_DONE)
            FUZZ_CHECK(whole.out.len == cut.out.len);
    }
    free(whole.out.data);
    free(cut.out.data);

    /* the RDB checker: the verdict does not depend on the cut */
    redis_rdb_check a, b;
    int va = check_rdb(data, size, step, &a);
    int vb = check_rdb(data, size, size ? size : 1, &b);
    FUZZ_CHECK(va == vb);
    if (va == 0) {
        FUZZ_CHECK(a.version == b.version && a.version >= 5);
        FUZZ_CHECK(size >= 18 && memcmp(data, "REDIS", 5) == 0 && data[size - 9] == 0xff);
        uint64_t stored = 0;
        for (int i = 7; i >= 0; i--)
            stored = stored << 8 | data[size - 8 + (size_t)i];
        FUZZ_CHECK(stored == 0 || stored == redis_crc64(0, data, size - 8));
    }
    return 0;
}
