/* sources/redis_rdb.c: the RDB walker (an RDB cut into items, each value's
 * bytes as a DUMP payload carries them), the DUMP trailer, and the RDB
 * version a server reads. Fed whole and cut at every point; RDBs written
 * by the real server, and RDBs built here with every encoding the format
 * has. */
#include "testutil.h"

#include "common/mem.h"
#include "sources/redis.h"

#include "redis_sample_rdb.h"

/* DUMP a, from the same server after SET a hello: the reference payload. */
static const unsigned char g_real_dump_a[] = {0x00, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a, 0x00,
                                              0x63, 0x72, 0xdf, 0x76, 0x65, 0x34, 0x20, 0x0a};

/* What the walker made of an RDB, as one text (items in order). */
struct walked {
    char *text;
    int rc; /* 0: whole; -1: refused */
    char error[200];
};

static void append(char **s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(char **s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *add = xvasprintf(fmt, ap);
    va_end(ap);
    char *n = xasprintf("%s%s", *s ? *s : "", add);
    free(*s);
    free(add);
    *s = n;
}

static void describe(char **s, const redis_rdb_item *it)
{
    append(s, "%d/%llu", (int)it->kind, (unsigned long long)it->db);
    if (it->kind == RDB_ITEM_KEY || it->kind == RDB_ITEM_AUX) {
        append(s, " key=");
        for (size_t i = 0; i < it->key_len; i++)
            append(s, "%02x", it->key[i]);
    }
    if (it->kind == RDB_ITEM_KEY)
        append(s, " type=%d exp=%lld idle=%lld freq=%d", it->type, (long long)it->expire_ms,
               (long long)it->idle, it->freq);
    if (it->kind == RDB_ITEM_MODULE_AUX)
        append(s, " module=%s", it->module);
    if (it->value) {
        append(s, " value=");
        for (size_t i = 0; i < it->value_len; i++)
            append(s, "%02x", it->value[i]);
    }
    append(s, "\n");
}

static struct walked walk(const unsigned char *data, size_t len, size_t step, size_t max_item)
{
    struct walked out = {0};
    redis_rdb_walker w;
    redis_rdb_walker_init(&w, max_item);
    redis_rdb_item it;
    int n = 0;
    for (size_t off = 0; off < len; off += step) {
        size_t k = len - off < step ? len - off : step;
        if (redis_rdb_walker_feed(&w, data + off, k) != 0)
            goto fail;
        while ((n = redis_rdb_walker_next(&w, &it, false)) == 1)
            describe(&out.text, &it);
        if (n < 0)
            goto fail;
    }
    while ((n = redis_rdb_walker_next(&w, &it, true)) == 1)
        describe(&out.text, &it);
    if (n < 0 || redis_rdb_walker_finish(&w) != 0)
        goto fail;
    redis_rdb_walker_free(&w);
    return out;
fail:
    out.rc = -1;
    snprintf(out.error, sizeof out.error, "%s", w.error);
    redis_rdb_walker_free(&w);
    return out;
}

/* Walked whole and in every step up to 17: the same items every time. */
static struct walked walk_all_cuts(const unsigned char *data, size_t len)
{
    struct walked whole = walk(data, len, len ? len : 1, 1 << 20);
    for (size_t step = 1; step <= 17; step++) {
        struct walked cut = walk(data, len, step, 1 << 20);
        assert_int_equal(cut.rc, whole.rc);
        if (whole.rc == 0)
            assert_string_equal(cut.text, whole.text);
        else
            assert_string_equal(cut.error, whole.error);
        free(cut.text);
    }
    return whole;
}

static void test_walks_the_real_rdb_in_any_cut(void **state)
{
    (void)state;
    struct walked w = walk_all_cuts(g_real_rdb, sizeof g_real_rdb);
    assert_int_equal(w.rc, 0);
    /* the aux fields, the database, its sizes, four keys, the end */
    const char *want_keys[] = {"key=65 type=0 exp=1796459034903", "key=61 type=0", "key=68 type=16",
                               "key=6c type=18"};
    const char *at = w.text;
    for (size_t i = 0; i < 4; i++) {
        const char *k = strstr(at, want_keys[i]);
        assert_non_null(k);
        at = k;
    }
    assert_non_null(strstr(w.text, "1/0\n"));                                     /* SELECTDB 0 */
    assert_non_null(strstr(w.text, "key=72656469732d766572 value=372e302e3135")); /* redis-ver 7.0.15 */
    assert_non_null(strstr(w.text, "key=61 type=0 exp=-1 idle=-1 freq=-1 value=0568656c6c6f\n"));
    assert_non_null(strstr(w.text, "6/0\n")); /* EOF */
    free(w.text);
}

static void test_dump_payload_equals_the_servers(void **state)
{
    (void)state;
    /* value of a: 05 "hello", RDB version 10 */
    const unsigned char value[] = {0x05, 'h', 'e', 'l', 'l', 'o'};
    unsigned char trailer[10];
    assert_int_equal(redis_dump_trailer(0, value, sizeof value, 10, trailer), 10);
    assert_int_equal(g_real_dump_a[0], 0);
    assert_memory_equal(g_real_dump_a + 1, value, sizeof value);
    assert_memory_equal(g_real_dump_a + 1 + sizeof value, trailer, 10);
}

static void test_every_cut_of_the_real_rdb_is_refused(void **state)
{
    (void)state;
    for (size_t cut = 0; cut < sizeof g_real_rdb; cut++) {
        struct walked w = walk(g_real_rdb, cut, 7, 1 << 20);
        assert_int_equal(w.rc, -1);
        assert_true(w.error[0]);
        free(w.text);
    }
    /* and a flipped bit anywhere: the checksum, or the structure, tells */
    unsigned char copy[sizeof g_real_rdb];
    for (size_t i = 0; i < sizeof g_real_rdb; i++) {
        memcpy(copy, g_real_rdb, sizeof copy);
        copy[i] ^= 0x10;
        struct walked w = walk(copy, sizeof copy, 5, 1 << 20);
        assert_int_equal(w.rc, -1);
        free(w.text);
    }
}

/* ---- RDBs built here ------------------------------------------------------- */

struct buf {
    unsigned char *p;
    size_t n;
};

static void put(struct buf *b, const void *data, size_t n)
{
    b->p = xrealloc(b->p, b->n + n + 1);
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void put_byte(struct buf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}

/* A length in the smallest encoding, or forced into a wider one (w = 6,
 * 14, 32 or 64). */
static void put_len_w(struct buf *b, uint64_t v, int w)
{
    if (w == 6) {
        put_byte(b, (unsigned)v);
    } else if (w == 14) {
        put_byte(b, 0x40 | (unsigned)(v >> 8));
        put_byte(b, (unsigned)(v & 0xff));
    } else {
        put_byte(b, w == 32 ? 0x80 : 0x81);
        for (int i = w / 8 - 1; i >= 0; i--)
            put_byte(b, (unsigned)(v >> (8 * i)) & 0xff);
    }
}

static void put_len(struct buf *b, uint64_t v)
{
    put_len_w(b, v, v < 64 ? 6 : v < 16384 ? 14 : 32);
}

static void put_str(struct buf *b, const char *s)
{
    put_len(b, strlen(s));
    put(b, s, strlen(s));
}

static void put_le(struct buf *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        put_byte(b, (unsigned)(v >> (8 * i)) & 0xff);
}

static void start_rdb(struct buf *b, int version)
{
    char head[10];
    snprintf(head, sizeof head, "REDIS%04d", version);
    put(b, head, 9);
}

static void end_rdb(struct buf *b)
{
    put_byte(b, 0xff);
    uint64_t crc = redis_crc64(0, b->p, b->n);
    put_le(b, crc, 8);
}

/* The value of the key named key in the walk, as hex; NULL when absent. */
static const char *value_of(const char *text, const char *key_hex)
{
    char *needle = xasprintf("key=%s type=", key_hex);
    const char *k = strstr(text, needle);
    free(needle);
    const char *v = k ? strstr(k, "value=") : NULL;
    return v ? v + 6 : NULL;
}

static void test_every_encoding_and_type(void **state)
{
    (void)state;
    struct buf b = {0};
    start_rdb(&b, 11);
    put_byte(&b, 0xfa); /* AUX redis-ver */
    put_str(&b, "redis-ver");
    put_str(&b, "7.2.4");
    put_byte(&b, 0xf5); /* FUNCTION2 */
    put_str(&b, "#!lua name=lib\nredis.register_function('f', function() return 1 end)");
    put_byte(&b, 0xf7); /* MODULE_AUX: id, when opcode, when, then data up to EOF */
    uint64_t id = 0;
    const char *set = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *mod = "mymodule1";
    for (int i = 0; i < 9; i++)
        id = id << 6 | (uint64_t)(strchr(set, mod[i]) - set);
    id = id << 10 | 3;
    put_len_w(&b, id, 64);
    put_len(&b, 2);
    put_len(&b, 2);
    put_len(&b, 1); /* SINT */
    put_len(&b, 5);
    put_len(&b, 5); /* STRING */
    put_str(&b, "x");
    put_len(&b, 3); /* FLOAT */
    put_le(&b, 0, 4);
    put_len(&b, 4); /* DOUBLE */
    put_le(&b, 0, 8);
    put_len(&b, 0);     /* EOF */
    put_byte(&b, 0xfe); /* SELECTDB 5, in a 32-bit length */
    put_len_w(&b, 5, 32);
    put_byte(&b, 0xfb); /* RESIZEDB */
    put_len(&b, 10);
    put_len(&b, 1);
    put_byte(&b, 0xf4); /* SLOT_INFO */
    put_len(&b, 1);
    put_len(&b, 2);
    put_len(&b, 3);

    /* keys in every string encoding: int8, int16, int32, LZF, 14-bit length */
    put_byte(&b, 0xfd); /* EXPIRETIME (seconds) */
    put_le(&b, 2000000000, 4);
    put_byte(&b, 0);
    put(&b, "\xc0\x85", 2); /* key -123 */
    put_str(&b, "v");
    put_byte(&b, 0xf8); /* IDLE */
    put_len(&b, 77);
    put_byte(&b, 0);
    put(&b, "\xc1\x39\x30", 3); /* key 12345 */
    put_str(&b, "v");
    put_byte(&b, 0xf9); /* FREQ */
    put_byte(&b, 9);
    put_byte(&b, 0);
    put(&b, "\xc2\x40\xe2\x01\x00", 5); /* key 123456 */
    put_str(&b, "v");
    put_byte(&b, 0);
    put(&b, "\xc3\x05\x0a\x00\x61\xe0\x00\x00", 8); /* key "aaaaaaaaaa", LZF */
    put_str(&b, "v");
    put_byte(&b, 0);
    put(&b, "\xc3\x06\x06\x02\x61\x62\x63\x20\x02", 9); /* key "abcabc", LZF */
    put_str(&b, "v");
    put_byte(&b, 0);
    char longkey[300];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    put_str(&b, longkey);
    put_str(&b, "v");

    /* values of every type */
    put_byte(&b, 0xfc); /* EXPIRETIME_MS */
    put_le(&b, 1800000000123ULL, 8);
    put_byte(&b, 1); /* LIST */
    put_str(&b, "list");
    put_len(&b, 2);
    put_str(&b, "a");
    put(&b, "\xc0\x07", 2);
    put_byte(&b, 2); /* SET */
    put_str(&b, "set");
    put_len(&b, 1);
    put_str(&b, "m");
    put_byte(&b, 3); /* ZSET, old doubles: NaN, +inf, -inf, "1.5" */
    put_str(&b, "zset1");
    put_len(&b, 4);
    put_str(&b, "n");
    put_byte(&b, 253);
    put_str(&b, "p");
    put_byte(&b, 254);
    put_str(&b, "m");
    put_byte(&b, 255);
    put_str(&b, "x");
    put_str(&b, "1.5");
    put_byte(&b, 5); /* ZSET_2 */
    put_str(&b, "zset2");
    put_len(&b, 1);
    put_str(&b, "x");
    put_le(&b, 0x3ff8000000000000ULL, 8);
    put_byte(&b, 4); /* HASH */
    put_str(&b, "hash");
    put_len(&b, 1);
    put_str(&b, "f");
    put_str(&b, "v");
    const int blobs[] = {9, 10, 11, 12, 13, 16, 17, 20};
    for (size_t i = 0; i < sizeof blobs / sizeof *blobs; i++) {
        put_byte(&b, (unsigned)blobs[i]);
        char name[16];
        snprintf(name, sizeof name, "blob%d", blobs[i]);
        put_str(&b, name);
        put_str(&b, "opaque bytes");
    }
    put_byte(&b, 14); /* LIST_QUICKLIST */
    put_str(&b, "ql");
    put_len(&b, 2);
    put_str(&b, "zl1");
    put_str(&b, "zl2");
    put_byte(&b, 18); /* LIST_QUICKLIST_2 */
    put_str(&b, "ql2");
    put_len(&b, 2);
    put_len(&b, 1);
    put_str(&b, "plain");
    put_len(&b, 2);
    put_str(&b, "packed");
    for (int type = 15; type <= 21; type += (type == 15 ? 4 : 2)) {
        put_byte(&b, (unsigned)type); /* STREAM_LISTPACKS 1, 2, 3 */
        char name[16];
        snprintf(name, sizeof name, "stream%d", type);
        put_str(&b, name);
        put_len(&b, 1);
        put_str(&b, "0123456789abcdef");
        put_str(&b, "listpack");
        put_len(&b, 3); /* length, last id */
        put_len(&b, 1700000000000ULL);
        put_len(&b, 0);
        if (type >= 19)
            for (int i = 0; i < 5; i++)
                put_len(&b, (uint64_t)i);
        put_len(&b, 1); /* one group */
        put_str(&b, "grp");
        put_len(&b, 1700000000000ULL);
        put_len(&b, 0);
        if (type >= 19)
            put_len(&b, 3);
        put_len(&b, 2); /* two pending */
        for (int i = 0; i < 2; i++) {
            put(&b, "IIIIIIIIIIIIIIII", 16);
            put_le(&b, 1700000000001ULL, 8);
            put_len(&b, 1);
        }
        put_len(&b, 1); /* one consumer with both */
        put_str(&b, "alice");
        put_le(&b, 1700000000002ULL, 8);
        if (type >= 21)
            put_le(&b, 1700000000003ULL, 8);
        put_len(&b, 2);
        put(&b, "IIIIIIIIIIIIIIIIJJJJJJJJJJJJJJJJ", 32);
    }
    end_rdb(&b);

    struct walked w = walk_all_cuts(b.p, b.n);
    assert_int_equal(w.rc, 0);
    assert_non_null(strstr(w.text, "module=mymodule1"));
    assert_non_null(strstr(w.text, "1/5\n"));                                                 /* SELECTDB 5 */
    assert_non_null(strstr(w.text, "key=2d313233 type=0 exp=2000000000000 idle=-1 freq=-1")); /* -123 */
    assert_non_null(strstr(w.text, "key=3132333435 type=0 exp=-1 idle=77 freq=-1"));          /* 12345 */
    assert_non_null(strstr(w.text, "key=313233343536 type=0 exp=-1 idle=-1 freq=9"));         /* 123456 */
    assert_non_null(strstr(w.text, "key=61616161616161616161 type=0"));                       /* LZF */
    assert_non_null(strstr(w.text, "key=616263616263 type=0"));                               /* LZF */
    assert_non_null(strstr(w.text, "key=6c697374 type=1 exp=1800000000123"));
    /* values are their stored bytes: the list's is its count and elements */
    assert_true(strncmp(value_of(w.text, "6c697374"), "020161c007\n", 11) == 0);
    /* the stream of type 21 ends with the consumer's two IDs */
    const char *s21 = value_of(w.text, "73747265616d3231");
    assert_non_null(s21);
    assert_non_null(strstr(s21, "4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a\n"));
    int keys = 0;
    for (const char *p = w.text; (p = strstr(p, "0/5 key=")); p++)
        keys++;
    assert_int_equal(keys, 6 + 5 + 8 + 2 + 3);
    free(w.text);

    /* every cut of it fails, and so does every byte past its end */
    for (size_t cut = 0; cut < b.n; cut += 3) {
        struct walked t = walk(b.p, cut, 64, 1 << 20);
        assert_int_equal(t.rc, -1);
        free(t.text);
    }
    put_byte(&b, 0);
    struct walked t = walk(b.p, b.n, 64, 1 << 20);
    assert_int_equal(t.rc, -1);
    assert_non_null(strstr(t.error, "after the end"));
    free(t.text);
    free(b.p);
}

/* An RDB of version 11 with one key of type and value (bytes). */
static struct walked one_key(unsigned type, const void *value, size_t len)
{
    struct buf b = {0};
    start_rdb(&b, 11);
    put_byte(&b, 0xfe);
    put_len(&b, 0);
    put_byte(&b, type);
    put_str(&b, "k");
    put(&b, value, len);
    end_rdb(&b);
    struct walked w = walk(b.p, b.n, 3, 1 << 20);
    free(b.p);
    return w;
}

static void test_unsupported_items_are_named(void **state)
{
    (void)state;
    /* a module value: its name */
    struct buf v = {0};
    uint64_t id = 0;
    const char *set = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 9; i++)
        id = id << 6 | (uint64_t)(strchr(set, "ReJSON-RL"[i]) - set);
    put_len_w(&v, id << 10, 64);
    put_len(&v, 0);
    struct walked w = one_key(7, v.p, v.n);
    assert_int_equal(w.rc, -1);
    assert_non_null(strstr(w.error, "module type ReJSON-RL"));
    free(w.text);
    free(v.p);

    w = one_key(24, "\0\0\0\0\0\0\0\0\0", 9);
    assert_int_equal(w.rc, -1);
    assert_non_null(strstr(w.error, "field expiration"));
    free(w.text);

    w = one_key(42, "", 0);
    assert_int_equal(w.rc, -1);
    assert_non_null(strstr(w.error, "unknown opcode or value type 42"));
    free(w.text);

    /* a key whose LZF does not decompress to its length (values are the
     * server's to check: RESTORE does) */
    struct buf b = {0};
    start_rdb(&b, 11);
    put_byte(&b, 0);
    put(&b, "\xc3\x02\x05\x00\x61", 5);
    put_str(&b, "v");
    end_rdb(&b);
    w = walk(b.p, b.n, 2, 1 << 20);
    assert_int_equal(w.rc, -1);
    assert_non_null(strstr(w.error, "LZF"));
    free(w.text);
    free(b.p);
}

static void test_items_over_the_bound_are_refused_early(void **state)
{
    (void)state;
    struct buf b = {0};
    start_rdb(&b, 10);
    put_byte(&b, 0);
    put_str(&b, "big");
    put_len_w(&b, 1u << 30, 32); /* a string of 1 GB announced */
    redis_rdb_walker w;
    redis_rdb_walker_init(&w, 1 << 20);
    assert_int_equal(redis_rdb_walker_feed(&w, b.p, b.n), 0);
    redis_rdb_item it;
    /* refused before a byte of it arrived */
    assert_int_equal(redis_rdb_walker_next(&w, &it, false), -1);
    assert_non_null(strstr(w.error, "longer than"));
    redis_rdb_walker_free(&w);
    free(b.p);

    /* a forged 64-bit length cannot overflow the arithmetic */
    b = (struct buf){0};
    start_rdb(&b, 10);
    put_byte(&b, 0);
    put_str(&b, "k");
    put_len_w(&b, UINT64_MAX - 3, 64);
    end_rdb(&b);
    struct walked r = walk(b.p, b.n, 4, 1 << 20);
    assert_int_equal(r.rc, -1);
    assert_non_null(strstr(r.error, "longer than"));
    free(r.text);
    free(b.p);
}

static void test_a_forged_count_cannot_wrap(void **state)
{
    (void)state;
    /* a hash of 2^63 + 1 fields: counted as n * 2 strings, it wrapped to 2 */
    struct buf v = {0};
    put_len_w(&v, (UINT64_C(1) << 63) + 1, 64);
    put_str(&v, "f");
    put_str(&v, "v");
    struct walked w = one_key(4, v.p, v.n);
    assert_int_equal(w.rc, -1);
    free(w.text);
    free(v.p);
}

/* The first key item of an RDB, walked whole. */
static void first_key(const struct buf *b, redis_rdb_item *it, redis_rdb_walker *w)
{
    redis_rdb_walker_init(w, 1 << 20);
    assert_int_equal(redis_rdb_walker_feed(w, b->p, b->n), 0);
    int n;
    while ((n = redis_rdb_walker_next(w, it, true)) == 1 && it->kind != RDB_ITEM_KEY)
        ;
    assert_int_equal(n, 1);
}

static void test_negative_expire_times_are_expired(void **state)
{
    (void)state;
    /* EXPIRETIME is a signed 32-bit count of seconds: 0xffffffff is -1 s,
     * not the year 2106 */
    struct buf b = {0};
    start_rdb(&b, 10);
    put_byte(&b, 0xfd);
    put_le(&b, 0xffffffffu, 4);
    put_byte(&b, 0);
    put_str(&b, "k");
    put_str(&b, "v");
    end_rdb(&b);
    redis_rdb_walker w;
    redis_rdb_item it;
    first_key(&b, &it, &w);
    assert_true(it.has_expire);
    assert_int_equal(it.expire_ms, -1000);
    redis_rdb_walker_free(&w);
    free(b.p);

    /* a negative millisecond time is an expiry too (long past) */
    b = (struct buf){0};
    start_rdb(&b, 10);
    put_byte(&b, 0xfc);
    put_le(&b, (uint64_t)-5, 8);
    put_byte(&b, 0);
    put_str(&b, "k");
    put_str(&b, "v");
    end_rdb(&b);
    first_key(&b, &it, &w);
    assert_true(it.has_expire);
    assert_int_equal(it.expire_ms, -5);
    redis_rdb_walker_free(&w);
    free(b.p);

    /* and none */
    b = (struct buf){0};
    start_rdb(&b, 10);
    put_byte(&b, 0);
    put_str(&b, "k");
    put_str(&b, "v");
    end_rdb(&b);
    first_key(&b, &it, &w);
    assert_false(it.has_expire);
    redis_rdb_walker_free(&w);
    free(b.p);
}

static void test_a_value_of_megabytes_in_small_chunks(void **state)
{
    (void)state;
    /* a 6 MB string fed 4 KB at a time: the walker asks for more until the
     * item is whole, then gives the memory of it back */
    size_t big = 6u << 20;
    unsigned char *value = malloc(big);
    assert_non_null(value);
    for (size_t i = 0; i < big; i++)
        value[i] = (unsigned char)(i * 2654435761u >> 13);
    /* 2000 small keys after it, gathered first (put reallocates each time) */
    struct buf tail = {0};
    for (int i = 0; i < 2000; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        put_byte(&tail, 0);
        put_str(&tail, k);
        put_str(&tail, "a value of some sixty bytes, to fill the walker's buffer again");
    }
    struct buf b = {0};
    start_rdb(&b, 10);
    put_byte(&b, 0);
    put_str(&b, "big");
    put_len(&b, big);
    put(&b, value, big);
    put(&b, tail.p, tail.n);
    free(tail.p);
    end_rdb(&b);
    redis_rdb_walker w;
    redis_rdb_walker_init(&w, 8u << 20);
    redis_rdb_item it;
    int n, keys = 0;
    bool seen_big = false;
    for (size_t off = 0; off < b.n; off += 4096) {
        size_t k = b.n - off < 4096 ? b.n - off : 4096;
        assert_int_equal(redis_rdb_walker_feed(&w, b.p + off, k), 0);
        while ((n = redis_rdb_walker_next(&w, &it, false)) == 1) {
            if (it.kind != RDB_ITEM_KEY)
                continue;
            keys++;
            if (it.key_len == 3 && memcmp(it.key, "big", 3) == 0) {
                /* the value as stored: its length, then its bytes */
                assert_true(it.value_len > big);
                assert_memory_equal(it.value + it.value_len - big, value, big);
                seen_big = true;
            }
        }
        assert_int_equal(n, 0);
    }
    while ((n = redis_rdb_walker_next(&w, &it, true)) == 1)
        keys += it.kind == RDB_ITEM_KEY;
    assert_int_equal(n, 0);
    assert_int_equal(redis_rdb_walker_finish(&w), 0);
    assert_true(seen_big);
    assert_int_equal(keys, 2001);
    /* the 6 MB are not held after the value went */
    assert_true(w.cap <= (4u << 20));
    redis_rdb_walker_free(&w);
    free(value);
    free(b.p);
}

static void test_unknown_versions_and_headers(void **state)
{
    (void)state;
    struct walked w = walk((const unsigned char *)"REDIS0099", 9, 9, 1024);
    assert_int_equal(w.rc, -1);
    assert_non_null(strstr(w.error, "RDB version 99"));
    w = walk((const unsigned char *)"NOTREDIS!", 9, 9, 1024);
    assert_int_equal(w.rc, -1);
    assert_non_null(strstr(w.error, "not an RDB"));
}

static void test_rdb_version_a_server_reads(void **state)
{
    (void)state;
    assert_int_equal(redis_rdb_version_of("7.0.15"), 10);
    assert_int_equal(redis_rdb_version_of("7.2.4"), 11);
    assert_int_equal(redis_rdb_version_of("7.4.1"), 12);
    assert_int_equal(redis_rdb_version_of("6.2.14"), 9);
    assert_int_equal(redis_rdb_version_of("5.0.0"), 9);
    assert_int_equal(redis_rdb_version_of("4.0.14"), 8);
    assert_int_equal(redis_rdb_version_of("3.2.12"), 7);
    assert_int_equal(redis_rdb_version_of("3.0.7"), 6);
    assert_int_equal(redis_rdb_version_of("8.0.2"), 0);
    assert_int_equal(redis_rdb_version_of("banana"), 0);
    assert_int_equal(redis_rdb_version_of(NULL), 0);
    assert_string_equal(redis_rdb_type_name(19), "stream");
    assert_null(redis_rdb_type_name(8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walks_the_real_rdb_in_any_cut),
        cmocka_unit_test(test_dump_payload_equals_the_servers),
        cmocka_unit_test(test_every_cut_of_the_real_rdb_is_refused),
        cmocka_unit_test(test_every_encoding_and_type),
        cmocka_unit_test(test_unsupported_items_are_named),
        cmocka_unit_test(test_items_over_the_bound_are_refused_early),
        cmocka_unit_test(test_a_forged_count_cannot_wrap),
        cmocka_unit_test(test_negative_expire_times_are_expired),
        cmocka_unit_test(test_a_value_of_megabytes_in_small_chunks),
        cmocka_unit_test(test_unknown_versions_and_headers),
        cmocka_unit_test(test_rdb_version_a_server_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
