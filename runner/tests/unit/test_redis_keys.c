/* sources/redis_keys.c: the keys-mode stream. A stream written with the
 * writer (around real DUMP payloads from redis-server 7.0) is read back in
 * every cut; every truncation, a flipped bit anywhere, bytes after the end,
 * a wrong count, a payload that fails its CRC-64 and a newer version are
 * refused, naming why. */
#include "testutil.h"

#include "common/mem.h"
#include "sources/redis.h"

/* DUMP a after SET a hello, from Debian's redis-server 7.0.15. */
static const unsigned char g_dump_a[] = {0x00, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a, 0x00,
                                         0x63, 0x72, 0xdf, 0x76, 0x65, 0x34, 0x20, 0x0a};

struct buf {
    unsigned char *p;
    size_t len;
};

static void put(struct buf *b, const void *p, size_t n)
{
    b->p = xrealloc(b->p, b->len + n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_record(struct buf *b, redis_keys_writer *w, uint32_t db, int64_t exp, const char *key,
                       const unsigned char *payload, size_t plen)
{
    unsigned char head[REDIS_KEYS_RECORD_HEAD_LEN];
    put(b, head, redis_keys_record_head(w, db, exp, (uint32_t)strlen(key), plen, head));
    redis_keys_writer_pass(w, key, strlen(key));
    put(b, key, strlen(key));
    redis_keys_writer_pass(w, payload, plen);
    put(b, payload, plen);
}

/* A stream of three keys in two databases, one expiring, 5 vanished. */
static struct buf sample(void)
{
    struct buf b = {0};
    redis_keys_writer w;
    redis_keys_writer_init(&w);
    unsigned char h[REDIS_KEYS_HEADER_LEN], e[REDIS_KEYS_END_LEN];
    put(&b, h, redis_keys_header(&w, h));
    put_record(&b, &w, 0, -1, "a", g_dump_a, sizeof g_dump_a);
    put_record(&b, &w, 0, 1893456000000, "b", g_dump_a, sizeof g_dump_a);
    put_record(&b, &w, 7, -1, "c", g_dump_a, sizeof g_dump_a);
    put(&b, e, redis_keys_end(&w, 5, e));
    assert_int_equal(w.bytes, b.len);
    assert_int_equal(w.keys, 3);
    return b;
}

/* Reads data fed in pieces of step bytes: 0 when whole, with the keys seen
 * as "db:key:expire;" in text; -1 with the reader's error in text. */
static int read_all(const unsigned char *data, size_t len, size_t step, char *text, size_t cap)
{
    redis_keys_reader r;
    redis_keys_reader_init(&r, 1 << 16);
    redis_keys_record rec;
    size_t o = 0;
    text[0] = '\0';
    int n = 0;
    for (size_t off = 0; off <= len; off += step) {
        bool at_end = off + step > len;
        size_t k = len - off < step ? len - off : step;
        if (redis_keys_reader_feed(&r, data + off, k) != 0) {
            n = -1;
            break;
        }
        while ((n = redis_keys_reader_next(&r, &rec, at_end)) == 1)
            if (rec.kind == REDIS_KEYS_KEY) {
                assert_int_equal(rec.payload_len, sizeof g_dump_a);
                assert_int_equal(rec.rdb_version, 10);
                o += (size_t)snprintf(text + o, cap - o, "%u:%.*s:%lld;", rec.db, (int)rec.key_len, rec.key,
                                      (long long)rec.expire_ms);
            } else {
                o += (size_t)snprintf(text + o, cap - o, "end %llu %llu", (unsigned long long)rec.keys,
                                      (unsigned long long)rec.vanished);
            }
        if (n < 0 || at_end)
            break;
    }
    int rc = n < 0 || redis_keys_reader_finish(&r) != 0 ? -1 : 0;
    if (rc)
        snprintf(text, cap, "%s", r.error);
    redis_keys_reader_free(&r);
    return rc;
}

static void test_payload_check_on_a_real_dump(void **state)
{
    (void)state;
    int v = 0;
    assert_int_equal(redis_dump_payload_check(g_dump_a, sizeof g_dump_a, &v), 0);
    assert_int_equal(v, 10);
    unsigned char bad[sizeof g_dump_a];
    memcpy(bad, g_dump_a, sizeof bad);
    bad[3] ^= 1;
    assert_int_equal(redis_dump_payload_check(bad, sizeof bad, NULL), -1);
    assert_int_equal(redis_dump_payload_check(g_dump_a, 10, NULL), -1);
}

static void test_round_trip_in_every_cut(void **state)
{
    (void)state;
    struct buf b = sample();
    assert_memory_equal(b.p, "SAUVE-REDIS-KEYS\x01\x00", 18);
    char text[512];
    for (size_t step = 1; step <= b.len; step++) {
        assert_int_equal(read_all(b.p, b.len, step, text, sizeof text), 0);
        assert_string_equal(text, "0:a:-1;0:b:1893456000000;7:c:-1;end 3 5");
    }
    free(b.p);
}

static void test_every_truncation_is_refused(void **state)
{
    (void)state;
    struct buf b = sample();
    char text[512];
    for (size_t cut = 0; cut < b.len; cut++) {
        assert_int_equal(read_all(b.p, cut, 7, text, sizeof text), -1);
        assert_non_null(strstr(text, cut < REDIS_KEYS_HEADER_LEN ? "header" : "truncated"));
    }
    free(b.p);
}

static void test_every_flipped_bit_is_refused(void **state)
{
    (void)state;
    struct buf b = sample();
    char text[512];
    for (size_t i = 0; i < b.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            b.p[i] ^= (unsigned char)(1 << bit);
            assert_int_equal(read_all(b.p, b.len, 13, text, sizeof text), -1);
            b.p[i] ^= (unsigned char)(1 << bit);
        }
    free(b.p);
}

static void test_named_refusals(void **state)
{
    (void)state;
    char text[512];
    struct buf b = sample();
    put(&b, "x", 1);
    assert_int_equal(read_all(b.p, b.len, 1000, text, sizeof text), -1);
    assert_non_null(strstr(text, "after the end record"));
    free(b.p);

    b = sample();
    b.p[16] = 2;
    assert_int_equal(read_all(b.p, b.len, 1000, text, sizeof text), -1);
    assert_non_null(strstr(text, "version 2"));
    free(b.p);

    assert_int_equal(read_all((const unsigned char *)"REDIS0010", 9, 1000, text, sizeof text), -1);
    assert_non_null(strstr(text, "magic"));

    /* a payload whose CRC-64 fails, in a stream whose own CRC agrees */
    struct buf c = {0};
    redis_keys_writer w;
    redis_keys_writer_init(&w);
    unsigned char h[REDIS_KEYS_HEADER_LEN], e[REDIS_KEYS_END_LEN], bad[sizeof g_dump_a];
    memcpy(bad, g_dump_a, sizeof bad);
    bad[2] = 'H';
    put(&c, h, redis_keys_header(&w, h));
    put_record(&c, &w, 0, -1, "a", bad, sizeof bad);
    put(&c, e, redis_keys_end(&w, 0, e));
    assert_int_equal(read_all(c.p, c.len, 1000, text, sizeof text), -1);
    assert_non_null(strstr(text, "record 1 fails its CRC-64"));
    free(c.p);

    /* an end record that counts another number of keys */
    c = (struct buf){0};
    redis_keys_writer_init(&w);
    put(&c, h, redis_keys_header(&w, h));
    put_record(&c, &w, 0, -1, "a", g_dump_a, sizeof g_dump_a);
    w.keys = 2;
    put(&c, e, redis_keys_end(&w, 0, e));
    assert_int_equal(read_all(c.p, c.len, 1000, text, sizeof text), -1);
    assert_non_null(strstr(text, "counts 2 key(s), the stream holds 1"));
    free(c.p);
}

static void test_bounds_refused_before_buffering(void **state)
{
    (void)state;
    redis_keys_writer w;
    redis_keys_writer_init(&w);
    unsigned char h[REDIS_KEYS_HEADER_LEN], head[REDIS_KEYS_RECORD_HEAD_LEN];
    redis_keys_header(&w, h);
    redis_keys_record_head(&w, 0, -1, 1, (uint64_t)1 << 40, head);
    redis_keys_reader r;
    redis_keys_reader_init(&r, 1 << 16);
    redis_keys_record rec;
    assert_int_equal(redis_keys_reader_feed(&r, h, sizeof h), 0);
    assert_int_equal(redis_keys_reader_feed(&r, head, sizeof head), 0);
    assert_int_equal(redis_keys_reader_next(&r, &rec, false), -1);
    assert_non_null(strstr(r.error, "DUMP payload of 1099511627776 bytes"));
    assert_true(r.cap < (1u << 20));
    redis_keys_reader_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_payload_check_on_a_real_dump),
        cmocka_unit_test(test_round_trip_in_every_cut),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_every_flipped_bit_is_refused),
        cmocka_unit_test(test_named_refusals),
        cmocka_unit_test(test_bounds_refused_before_buffering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
