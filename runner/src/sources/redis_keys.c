/*
 * The keys-mode stream (format "redis-keys", version 1): what
 * SAUVE_REDIS_MODE=keys stores when a server refuses replication. It is
 * not an RDB: it is the sequence of DUMP payloads the server gave, one per
 * key, with what DUMP does not carry (the database, the key, the expiry).
 * docs/redis-keys-format.md is the full specification; in short, all
 * integers little-endian:
 *
 *   header  "SAUVE-REDIS-KEYS" (16 bytes), u16 version = 1
 *   record  'K', u32 db, i64 expire_ms (absolute Unix ms; -1: none),
 *           u32 key_len, u64 payload_len, key, payload (DUMP's reply as is:
 *           type byte, value, u16 RDB version, u64 CRC-64 of what precedes)
 *   end     'E', u64 keys (records), u64 vanished (keys SCAN listed that
 *           were gone at DUMP), u64 CRC-64 of every stream byte before it
 *
 * Nothing may follow the end record. A stream without it is truncated.
 * CRC-64 is Redis's (redis_crc64). No I/O here: bytes in, records out.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "sources/redis.h"

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int redis_dump_payload_check(const void *payload, size_t len, int *version)
{
    const unsigned char *p = payload;
    if (len < REDIS_DUMP_PAYLOAD_MIN)
        return -1;
    if (redis_crc64(0, p, len - 8) != get64(p + len - 8))
        return -1;
    if (version)
        *version = p[len - 10] | p[len - 9] << 8;
    return 0;
}

/* ---- writer ------------------------------------------------------------------ */

void redis_keys_writer_init(redis_keys_writer *w)
{
    memset(w, 0, sizeof *w);
}

void redis_keys_writer_pass(redis_keys_writer *w, const void *buf, size_t len)
{
    w->crc = redis_crc64(w->crc, buf, len);
    w->bytes += len;
}

size_t redis_keys_header(redis_keys_writer *w, unsigned char out[REDIS_KEYS_HEADER_LEN])
{
    memcpy(out, REDIS_KEYS_MAGIC, REDIS_KEYS_MAGIC_LEN);
    put16(out + REDIS_KEYS_MAGIC_LEN, REDIS_KEYS_VERSION);
    redis_keys_writer_pass(w, out, REDIS_KEYS_HEADER_LEN);
    return REDIS_KEYS_HEADER_LEN;
}

size_t redis_keys_record_head(redis_keys_writer *w, uint32_t db, int64_t expire_ms, uint32_t key_len,
                              uint64_t payload_len, unsigned char out[REDIS_KEYS_RECORD_HEAD_LEN])
{
    out[0] = 'K';
    put32(out + 1, db);
    put64(out + 5, (uint64_t)(expire_ms < 0 ? -1 : expire_ms));
    put32(out + 13, key_len);
    put64(out + 17, payload_len);
    redis_keys_writer_pass(w, out, REDIS_KEYS_RECORD_HEAD_LEN);
    w->keys++;
    return REDIS_KEYS_RECORD_HEAD_LEN;
}

size_t redis_keys_end(redis_keys_writer *w, uint64_t vanished, unsigned char out[REDIS_KEYS_END_LEN])
{
    out[0] = 'E';
    put64(out + 1, w->keys);
    put64(out + 9, vanished);
    redis_keys_writer_pass(w, out, 17);
    put64(out + 17, w->crc);
    w->bytes += 8;
    return REDIS_KEYS_END_LEN;
}

/* ---- reader ------------------------------------------------------------------ */

static int fail(redis_keys_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(redis_keys_reader *r, const char *fmt, ...)
{
    if (!r->failed) {
        va_list ap;
        va_start(ap, fmt);
        int n = snprintf(r->error, sizeof r->error, "at byte %llu: ", (unsigned long long)r->consumed);
        if (n > 0 && (size_t)n < sizeof r->error)
            vsnprintf(r->error + n, sizeof r->error - (size_t)n, fmt, ap);
        va_end(ap);
    }
    r->failed = true;
    return -1;
}

void redis_keys_reader_init(redis_keys_reader *r, size_t max_item)
{
    memset(r, 0, sizeof *r);
    r->max_item = max_item;
}

void redis_keys_reader_free(redis_keys_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->off = r->len = r->cap = 0;
}

int redis_keys_reader_feed(redis_keys_reader *r, const void *buf, size_t len)
{
    if (r->failed)
        return -1;
    if (!len)
        return 0;
    if (r->ended)
        return fail(r, "bytes after the end record");
    if (r->off && r->off == r->len)
        r->off = r->len = 0;
    if (r->off > r->cap / 2) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    if (r->cap - r->len < len) {
        size_t cap = r->cap ? r->cap : 65536;
        while (cap - r->len < len)
            cap *= 2;
        r->buf = xrealloc(r->buf, cap);
        r->cap = cap;
    }
    memcpy(r->buf + r->len, buf, len);
    r->len += len;
    return 0;
}

/* Hands n bytes at the front out of the buffer, into the stream's CRC. */
static const unsigned char *take(redis_keys_reader *r, size_t n)
{
    const unsigned char *p = r->buf + r->off;
    r->crc = redis_crc64(r->crc, p, n);
    r->off += n;
    r->consumed += n;
    return p;
}

int redis_keys_reader_next(redis_keys_reader *r, redis_keys_record *rec, bool at_end)
{
    memset(rec, 0, sizeof *rec);
    if (r->failed)
        return -1;
    if (r->ended)
        return 0;
    size_t have = r->len - r->off;
    if (!have)
        return !at_end      ? 0
               : r->version ? fail(r, "the stream ends without its end record (truncated)")
                            : fail(r, "the stream ends inside its header");
    const unsigned char *p = r->buf + r->off;
    if (!r->version) {
        if (have < REDIS_KEYS_HEADER_LEN) {
            if (have &&
                memcmp(p, REDIS_KEYS_MAGIC, have < REDIS_KEYS_MAGIC_LEN ? have : REDIS_KEYS_MAGIC_LEN))
                return fail(r, "not a sauve keys-mode stream (no SAUVE-REDIS-KEYS magic)");
            return at_end ? fail(r, "the stream ends inside its header") : 0;
        }
        if (memcmp(p, REDIS_KEYS_MAGIC, REDIS_KEYS_MAGIC_LEN) != 0)
            return fail(r, "not a sauve keys-mode stream (no SAUVE-REDIS-KEYS magic)");
        int v = p[REDIS_KEYS_MAGIC_LEN] | p[REDIS_KEYS_MAGIC_LEN + 1] << 8;
        if (v != REDIS_KEYS_VERSION)
            return fail(r, "keys-mode stream version %d, this sauve reads version %d", v, REDIS_KEYS_VERSION);
        take(r, REDIS_KEYS_HEADER_LEN);
        r->version = v;
        have = r->len - r->off;
        p = r->buf + r->off;
    }
    if (!have)
        return at_end ? fail(r, "the stream ends without its end record (truncated)") : 0;
    if (p[0] == 'E') {
        if (have < REDIS_KEYS_END_LEN)
            return at_end ? fail(r, "the stream ends inside its end record (truncated)") : 0;
        uint64_t keys = get64(p + 1), vanished = get64(p + 9);
        take(r, 17);
        uint64_t crc = r->crc, stored = get64(r->buf + r->off);
        take(r, 8);
        if (keys != r->keys)
            return fail(r, "the end record counts %llu key(s), the stream holds %llu",
                        (unsigned long long)keys, (unsigned long long)r->keys);
        if (crc != stored)
            return fail(r, "the stream's CRC-64 does not match its end record");
        r->ended = true;
        if (r->off != r->len)
            return fail(r, "bytes after the end record");
        rec->kind = REDIS_KEYS_END;
        rec->keys = keys;
        rec->vanished = vanished;
        r->vanished = vanished;
        return 1;
    }
    if (p[0] != 'K')
        return fail(r, "unknown record type 0x%02x", p[0]);
    if (have < REDIS_KEYS_RECORD_HEAD_LEN)
        return at_end ? fail(r, "the stream ends inside a record (truncated)") : 0;
    uint32_t db = get32(p + 1);
    int64_t expire = (int64_t)get64(p + 5);
    uint32_t key_len = get32(p + 13);
    uint64_t payload_len = get64(p + 17);
    if (expire < -1)
        return fail(r, "a record with expiry %lld", (long long)expire);
    if (key_len == 0 || key_len > r->max_item)
        return fail(r, "a key of %lu bytes (at most %zu are read)", (unsigned long)key_len, r->max_item);
    if (payload_len < REDIS_DUMP_PAYLOAD_MIN || payload_len > r->max_item)
        return fail(r, "a DUMP payload of %llu bytes (between %d and %zu are read)",
                    (unsigned long long)payload_len, REDIS_DUMP_PAYLOAD_MIN, r->max_item);
    size_t need = REDIS_KEYS_RECORD_HEAD_LEN + key_len + (size_t)payload_len;
    if (have < need)
        return at_end ? fail(r, "the stream ends inside a record (truncated)") : 0;
    take(r, REDIS_KEYS_RECORD_HEAD_LEN);
    const unsigned char *key = take(r, key_len);
    const unsigned char *payload = take(r, (size_t)payload_len);
    int version = 0;
    if (redis_dump_payload_check(payload, (size_t)payload_len, &version) != 0)
        return fail(r, "the DUMP payload of record %llu fails its CRC-64", (unsigned long long)r->keys + 1);
    r->keys++;
    if (version > r->max_rdb_version)
        r->max_rdb_version = version;
    rec->kind = REDIS_KEYS_KEY;
    rec->db = db;
    rec->expire_ms = expire;
    rec->key = key;
    rec->key_len = key_len;
    rec->payload = payload;
    rec->payload_len = (size_t)payload_len;
    rec->rdb_version = version;
    return 1;
}

int redis_keys_reader_finish(redis_keys_reader *r)
{
    if (r->failed)
        return -1;
    if (!r->ended)
        return fail(r, "the stream ends without its end record (truncated)");
    return 0;
}
