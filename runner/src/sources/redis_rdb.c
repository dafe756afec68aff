/*
 * The RDB walker: cuts an RDB, fed in chunks of any size, into its items
 * (sources/redis.h). It knows how long each value is, for every type the
 * format has had (facts from the Redis sources, rdb.h and rdb.c), without
 * decoding values: a value's bytes are handed on as they are, so that a
 * DUMP payload is the type byte, those bytes, the version and a CRC-64.
 *
 * One item (its modifiers, key and value) is parsed from the buffered bytes
 * in one go; when the bytes run out the attempt is abandoned and made again
 * once more arrived. A second attempt waits until the buffer grew by half
 * (or until the exact count the parser asked for, when larger), so that a
 * value of many small elements is walked a bounded number of times, not
 * once per chunk.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "sources/redis.h"

/* Opcodes (rdb.h). */
#define OP_SLOT_INFO     0xf4
#define OP_FUNCTION2     0xf5
#define OP_FUNCTION_PRE  0xf6
#define OP_MODULE_AUX    0xf7
#define OP_IDLE          0xf8
#define OP_FREQ          0xf9
#define OP_AUX           0xfa
#define OP_RESIZEDB      0xfb
#define OP_EXPIRETIME_MS 0xfc
#define OP_EXPIRETIME    0xfd
#define OP_SELECTDB      0xfe
#define OP_EOF           0xff

/* Value types (rdb.h). */
enum {
    T_STRING = 0,
    T_LIST = 1,
    T_SET = 2,
    T_ZSET = 3,
    T_HASH = 4,
    T_ZSET_2 = 5,
    T_MODULE_PRE_GA = 6,
    T_MODULE_2 = 7,
    T_HASH_ZIPMAP = 9,
    T_LIST_ZIPLIST = 10,
    T_SET_INTSET = 11,
    T_ZSET_ZIPLIST = 12,
    T_HASH_ZIPLIST = 13,
    T_LIST_QUICKLIST = 14,
    T_STREAM_LISTPACKS = 15,
    T_HASH_LISTPACK = 16,
    T_ZSET_LISTPACK = 17,
    T_LIST_QUICKLIST_2 = 18,
    T_STREAM_LISTPACKS_2 = 19,
    T_SET_LISTPACK = 20,
    T_STREAM_LISTPACKS_3 = 21,
    T_HASH_METADATA_PRE_GA = 22,
    T_HASH_LISTPACK_EX_PRE_GA = 23,
    T_HASH_METADATA = 24,
    T_HASH_LISTPACK_EX = 25,
};

/* Length encodings: the top two bits of the first byte. */
#define LEN_6BIT   0
#define LEN_14BIT  1
#define LEN_32BIT  0x80
#define LEN_64BIT  0x81
#define LEN_ENCVAL 3
#define ENC_INT8   0
#define ENC_INT16  1
#define ENC_INT32  2
#define ENC_LZF    3

/* Module serialisation opcodes (MODULE_AUX payloads, module values). */
#define MOP_EOF    0
#define MOP_SINT   1
#define MOP_UINT   2
#define MOP_FLOAT  3
#define MOP_DOUBLE 4
#define MOP_STRING 5

const char *redis_rdb_type_name(int type)
{
    switch (type) {
    case T_STRING: return "string";
    case T_LIST:
    case T_LIST_ZIPLIST:
    case T_LIST_QUICKLIST:
    case T_LIST_QUICKLIST_2: return "list";
    case T_SET:
    case T_SET_INTSET:
    case T_SET_LISTPACK: return "set";
    case T_ZSET:
    case T_ZSET_2:
    case T_ZSET_ZIPLIST:
    case T_ZSET_LISTPACK: return "zset";
    case T_HASH:
    case T_HASH_ZIPMAP:
    case T_HASH_ZIPLIST:
    case T_HASH_LISTPACK: return "hash";
    case T_HASH_METADATA_PRE_GA:
    case T_HASH_LISTPACK_EX_PRE_GA:
    case T_HASH_METADATA:
    case T_HASH_LISTPACK_EX: return "hash with field expiration";
    case T_STREAM_LISTPACKS:
    case T_STREAM_LISTPACKS_2:
    case T_STREAM_LISTPACKS_3: return "stream";
    case T_MODULE_PRE_GA:
    case T_MODULE_2: return "module";
    default: return NULL;
    }
}

/* ---- the cursor over one attempt ------------------------------------------ */

/* Results of every parse step: OK, MORE (the bytes ran out: need says how
 * many the item needs at least, from its start), BAD (err says why). */
enum { BAD = -1, MORE = 0, OK = 1 };

struct cur {
    const unsigned char *b;
    size_t pos, end; /* relative to the item's start */
    size_t limit;    /* an item may not be longer */
    size_t need;
    char *err;
    size_t errlen;
};

static int bad(struct cur *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct cur *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return BAD;
}

/* Takes n bytes (out may be NULL). */
static int take(struct cur *c, uint64_t n, const unsigned char **out)
{
    if (n > c->limit || c->pos + n > c->limit)
        return bad(c, "an item longer than %zu bytes (a length of %llu at byte %zu of it)", c->limit,
                   (unsigned long long)n, c->pos);
    if (c->end - c->pos < n) {
        c->need = c->pos + (size_t)n;
        return MORE;
    }
    if (out)
        *out = c->b + c->pos;
    c->pos += (size_t)n;
    return OK;
}

#define TRY(x)                                                                                               \
    do {                                                                                                     \
        int r_ = (x);                                                                                        \
        if (r_ != OK)                                                                                        \
            return r_;                                                                                       \
    } while (0)

static int byte(struct cur *c, unsigned *v)
{
    const unsigned char *p = NULL;
    TRY(take(c, 1, &p));
    *v = *p;
    return OK;
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* A length, or (*encoded set) the number of a special string encoding. */
static int len_or_enc(struct cur *c, uint64_t *len, bool *encoded)
{
    unsigned first;
    const unsigned char *p = NULL;
    TRY(byte(c, &first));
    *encoded = false;
    switch (first >> 6) {
    case LEN_6BIT: *len = first & 0x3f; return OK;
    case LEN_14BIT:
        TRY(take(c, 1, &p));
        *len = (uint64_t)(first & 0x3f) << 8 | *p;
        return OK;
    case LEN_ENCVAL:
        *encoded = true;
        *len = first & 0x3f;
        return OK;
    default:
        if (first == LEN_32BIT) {
            TRY(take(c, 4, &p));
            *len = be(p, 4);
        } else if (first == LEN_64BIT) {
            TRY(take(c, 8, &p));
            *len = be(p, 8);
        } else {
            return bad(c, "an unknown length encoding 0x%02x", first);
        }
        return OK;
    }
}

static int len(struct cur *c, uint64_t *v)
{
    bool encoded;
    TRY(len_or_enc(c, v, &encoded));
    if (encoded)
        return bad(c, "a string encoding where a length belongs");
    return OK;
}

/* A string as stored: plain bytes, an integer, or LZF-compressed. */
struct rstr {
    enum { S_PLAIN, S_INT, S_LZF } how;
    const unsigned char *p;
    uint64_t n;    /* PLAIN, LZF: stored bytes */
    uint64_t full; /* LZF: decompressed length */
    int64_t v;     /* INT */
};

static int string(struct cur *c, struct rstr *s)
{
    uint64_t n;
    bool encoded;
    TRY(len_or_enc(c, &n, &encoded));
    if (!encoded) {
        s->how = S_PLAIN;
        s->n = n;
        return take(c, n, &s->p);
    }
    const unsigned char *p = NULL;
    switch (n) {
    case ENC_INT8:
        TRY(take(c, 1, &p));
        s->how = S_INT;
        s->v = (int8_t)p[0];
        return OK;
    case ENC_INT16:
        TRY(take(c, 2, &p));
        s->how = S_INT;
        s->v = (int16_t)le(p, 2);
        return OK;
    case ENC_INT32:
        TRY(take(c, 4, &p));
        s->how = S_INT;
        s->v = (int32_t)le(p, 4);
        return OK;
    case ENC_LZF:
        s->how = S_LZF;
        TRY(len(c, &s->n));
        TRY(len(c, &s->full));
        if (s->full > c->limit)
            return bad(c, "a compressed string of %llu bytes, over the limit of %zu",
                       (unsigned long long)s->full, c->limit);
        return take(c, s->n, &s->p);
    default: return bad(c, "an unknown string encoding %llu", (unsigned long long)n);
    }
}

static int skip_string(struct cur *c)
{
    struct rstr s = {0};
    return string(c, &s);
}

/* ZSET (type 3) scores: a length byte, then that many ASCII characters;
 * 253, 254 and 255 stand for NaN, +inf and -inf. */
static int skip_old_double(struct cur *c)
{
    unsigned n;
    TRY(byte(c, &n));
    return n >= 253 ? OK : take(c, n, NULL);
}

static int skip_n_strings(struct cur *c, int per)
{
    uint64_t n;
    TRY(len(c, &n));
    /* n is the RDB's: n * per could wrap */
    for (uint64_t i = 0; i < n; i++)
        for (int j = 0; j < per; j++)
            TRY(skip_string(c));
    return OK;
}

/* The stream types: the listpacks, then the metadata, consumer groups, their
 * pending entries and consumers. Types 19 and 21 added fields. */
static int skip_stream(struct cur *c, int type)
{
    uint64_t n, v;
    TRY(len(c, &n));
    for (uint64_t i = 0; i < n; i++) {
        TRY(skip_string(c)); /* the master ID, 16 bytes */
        TRY(skip_string(c)); /* the listpack */
    }
    for (int i = 0; i < 3; i++) /* length, last ID ms and seq */
        TRY(len(c, &v));
    if (type >= T_STREAM_LISTPACKS_2)
        for (int i = 0; i < 5; i++) /* first ID, max deleted ID, entries added */
            TRY(len(c, &v));
    uint64_t groups;
    TRY(len(c, &groups));
    for (uint64_t g = 0; g < groups; g++) {
        TRY(skip_string(c));
        TRY(len(c, &v));
        TRY(len(c, &v));
        if (type >= T_STREAM_LISTPACKS_2)
            TRY(len(c, &v)); /* entries read */
        uint64_t pel;
        TRY(len(c, &pel));
        for (uint64_t i = 0; i < pel; i++) {
            TRY(take(c, 16 + 8, NULL)); /* raw ID, delivery time */
            TRY(len(c, &v));            /* delivery count */
        }
        uint64_t consumers;
        TRY(len(c, &consumers));
        for (uint64_t k = 0; k < consumers; k++) {
            TRY(skip_string(c));
            TRY(take(c, type >= T_STREAM_LISTPACKS_3 ? 16 : 8, NULL)); /* seen (and active) time */
            uint64_t cpel;
            TRY(len(c, &cpel));
            if (cpel > c->limit / 16)
                return bad(c, "a consumer with %llu pending entries", (unsigned long long)cpel);
            TRY(take(c, cpel * 16, NULL));
        }
    }
    return OK;
}

/* "ReJSON-RL": the 9 characters of a module type or aux field's id (the
 * top 54 bits, 6 per character; the low 10 are the encoding version). */
static void module_name(uint64_t id, char out[10])
{
    static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 9; i++)
        out[i] = set[(id >> (64 - 6 * (i + 1))) & 63];
    out[9] = '\0';
}

/* A module's own serialisation, up to its end opcode. */
static int skip_module_data(struct cur *c)
{
    for (;;) {
        uint64_t op, v;
        TRY(len(c, &op));
        switch (op) {
        case MOP_EOF: return OK;
        case MOP_SINT:
        case MOP_UINT: TRY(len(c, &v)); break;
        case MOP_FLOAT: TRY(take(c, 4, NULL)); break;
        case MOP_DOUBLE: TRY(take(c, 8, NULL)); break;
        case MOP_STRING: TRY(skip_string(c)); break;
        default: return bad(c, "an unknown module data opcode %llu", (unsigned long long)op);
        }
    }
}

static int skip_value(struct cur *c, int type)
{
    uint64_t v;
    switch (type) {
    case T_STRING:
    case T_HASH_ZIPMAP:
    case T_LIST_ZIPLIST:
    case T_SET_INTSET:
    case T_ZSET_ZIPLIST:
    case T_HASH_ZIPLIST:
    case T_HASH_LISTPACK:
    case T_ZSET_LISTPACK:
    case T_SET_LISTPACK: return skip_string(c);
    case T_LIST:
    case T_SET:
    case T_LIST_QUICKLIST: return skip_n_strings(c, 1);
    case T_HASH: return skip_n_strings(c, 2);
    case T_ZSET: {
        uint64_t n;
        TRY(len(c, &n));
        for (uint64_t i = 0; i < n; i++) {
            TRY(skip_string(c));
            TRY(skip_old_double(c));
        }
        return OK;
    }
    case T_ZSET_2: {
        uint64_t n;
        TRY(len(c, &n));
        for (uint64_t i = 0; i < n; i++) {
            TRY(skip_string(c));
            TRY(take(c, 8, NULL));
        }
        return OK;
    }
    case T_LIST_QUICKLIST_2: {
        uint64_t n;
        TRY(len(c, &n));
        for (uint64_t i = 0; i < n; i++) {
            TRY(len(c, &v)); /* the node's container: plain or packed */
            TRY(skip_string(c));
        }
        return OK;
    }
    case T_STREAM_LISTPACKS:
    case T_STREAM_LISTPACKS_2:
    case T_STREAM_LISTPACKS_3: return skip_stream(c, type);
    case T_MODULE_2: {
        char name[10];
        TRY(len(c, &v));
        module_name(v, name);
        return bad(c,
                   "a value of module type %s: sauve cannot restore module types online (restore with "
                   "--to-file into a server that loads the module)",
                   name);
    }
    case T_MODULE_PRE_GA:
        return bad(c, "a value of a pre-release module type (RDB type 6), which no server loads any more");
    case T_HASH_METADATA_PRE_GA:
    case T_HASH_LISTPACK_EX_PRE_GA:
    case T_HASH_METADATA:
    case T_HASH_LISTPACK_EX:
        return bad(c,
                   "a hash with field expiration (RDB type %d, Redis 7.4+), which this sauve cannot cut "
                   "into RESTORE commands (restore with --to-file)",
                   type);
    default: return bad(c, "an unknown value type %d", type);
    }
}

/* ---- the walker --------------------------------------------------------- */

void redis_rdb_walker_init(redis_rdb_walker *w, size_t max_item)
{
    memset(w, 0, sizeof *w);
    w->max_item = max_item;
    redis_rdb_check_init(&w->check);
}

void redis_rdb_walker_free(redis_rdb_walker *w)
{
    free(w->buf);
    free(w->key);
    free(w->aux);
    memset(w, 0, sizeof *w);
}

static int walker_fail(redis_rdb_walker *w, const char *msg)
{
    if (!w->failed)
        snprintf(w->error, sizeof w->error, "%s", msg);
    w->failed = true;
    return -1;
}

int redis_rdb_walker_feed(redis_rdb_walker *w, const void *buf, size_t len)
{
    if (w->failed)
        return -1;
    if (redis_rdb_check_update(&w->check, buf, len) != 0)
        return walker_fail(w, w->check.error);
    /* drop the items already handed out once they outweigh what is kept:
     * each byte is moved a bounded number of times */
    if (w->off && w->off >= w->len - w->off) {
        memmove(w->buf, w->buf + w->off, w->len - w->off);
        w->len -= w->off;
        w->off = 0;
        /* a large value is gone: give its memory back */
        if (w->cap > (4u << 20) && w->len + len < w->cap / 8) {
            w->cap /= 4;
            w->buf = xrealloc(w->buf, w->cap);
        }
    }
    if (w->cap - w->len < len) {
        size_t cap = w->cap ? w->cap : 65536;
        while (cap - w->len < len)
            cap *= 2;
        w->buf = xrealloc(w->buf, cap);
        w->cap = cap;
    }
    memcpy(w->buf + w->len, buf, len);
    w->len += len;
    w->bytes += len;
    return 0;
}

/* LZF (as liblzf writes it): a control byte below 32 is a run of that many
 * plus one literal bytes; above, a back-reference of (ctrl >> 5) + 2 bytes
 * (7 + a following byte + 2 when the three bits are all set) at distance
 * ((ctrl & 31) << 8 | next byte) + 1. */
static int lzf_decode(const unsigned char *in, size_t n, unsigned char *out, size_t full)
{
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned ctrl = in[i++];
        if (ctrl < 32) {
            size_t run = ctrl + 1;
            if (i + run > n || o + run > full)
                return -1;
            memcpy(out + o, in + i, run);
            i += run;
            o += run;
        } else {
            size_t l = ctrl >> 5;
            if (l == 7) {
                if (i >= n)
                    return -1;
                l += in[i++];
            }
            l += 2;
            if (i >= n)
                return -1;
            size_t dist = ((size_t)(ctrl & 31) << 8 | in[i++]) + 1;
            if (dist > o || o + l > full)
                return -1;
            for (size_t k = 0; k < l; k++, o++) /* overlapping copies repeat a pattern */
                out[o] = out[o - dist];
        }
    }
    return o == full ? 0 : -1;
}

/* The bytes of s into a buffer of the walker (*dst, grown as needed). */
static int decode_string(struct cur *c, const struct rstr *s, unsigned char **dst, size_t *len)
{
    size_t n = s->how == S_PLAIN ? (size_t)s->n : s->how == S_LZF ? (size_t)s->full : 24;
    *dst = xrealloc(*dst, n + 1);
    if (s->how == S_PLAIN) {
        memcpy(*dst, s->p, n);
    } else if (s->how == S_INT) {
        n = (size_t)snprintf((char *)*dst, 24, "%lld", (long long)s->v);
    } else if (lzf_decode(s->p, (size_t)s->n, *dst, n) != 0) {
        return bad(c, "a string whose LZF compression is corrupt");
    }
    (*dst)[n] = '\0';
    *len = n;
    return OK;
}

/* One item from the bytes at the start of c; its fields into it. */
static int parse_item(redis_rdb_walker *w, struct cur *c, redis_rdb_item *it)
{
    memset(it, 0, sizeof *it);
    it->expire_ms = -1;
    it->idle = -1;
    it->freq = -1;
    const unsigned char *p = NULL;
    uint64_t v;
    for (;;) {
        unsigned op;
        TRY(byte(c, &op));
        switch (op) {
        case OP_EXPIRETIME:
            TRY(take(c, 4, &p));
            /* seconds, a signed 32-bit number as Redis writes it */
            it->expire_ms = (int64_t)(int32_t)(uint32_t)le(p, 4) * 1000;
            it->has_expire = true;
            continue;
        case OP_EXPIRETIME_MS:
            TRY(take(c, 8, &p));
            it->expire_ms = (int64_t)le(p, 8);
            it->has_expire = true;
            continue;
        case OP_IDLE:
            TRY(len(c, &v));
            it->idle = v > INT64_MAX ? INT64_MAX : (int64_t)v;
            continue;
        case OP_FREQ:
            TRY(take(c, 1, &p));
            it->freq = *p;
            continue;
        case OP_EOF: it->kind = RDB_ITEM_EOF; return OK;
        case OP_SELECTDB:
            it->kind = RDB_ITEM_SELECTDB;
            TRY(len(c, &it->db));
            return OK;
        case OP_RESIZEDB:
        case OP_SLOT_INFO:
            it->kind = RDB_ITEM_HINT;
            for (int i = 0; i < (op == OP_RESIZEDB ? 2 : 3); i++)
                TRY(len(c, &v));
            return OK;
        case OP_AUX: {
            it->kind = RDB_ITEM_AUX;
            struct rstr name = {0}, value = {0};
            TRY(string(c, &name));
            TRY(string(c, &value));
            TRY(decode_string(c, &name, &w->key, &it->key_len));
            TRY(decode_string(c, &value, &w->aux, &it->value_len));
            it->key = w->key;
            it->value = w->aux;
            return OK;
        }
        case OP_FUNCTION2: {
            it->kind = RDB_ITEM_FUNCTION;
            struct rstr code = {0};
            TRY(string(c, &code));
            TRY(decode_string(c, &code, &w->aux, &it->value_len));
            it->value = w->aux;
            return OK;
        }
        case OP_FUNCTION_PRE:
            return bad(c, "functions in the format of Redis 7.0 release candidates (opcode 246), which no "
                          "release loads");
        case OP_MODULE_AUX: {
            it->kind = RDB_ITEM_MODULE_AUX;
            char name[10];
            TRY(len(c, &it->module_id));
            TRY(len(c, &v)); /* the opcode of "when" (an unsigned) */
            TRY(len(c, &v)); /* when: before or after the keys */
            TRY(skip_module_data(c));
            module_name(it->module_id, name);
            memcpy(it->module, name, sizeof name);
            return OK;
        }
        default: {
            if (!redis_rdb_type_name((int)op))
                return bad(c, "an unknown opcode or value type %u", op);
            it->kind = RDB_ITEM_KEY;
            it->type = (int)op;
            struct rstr key = {0};
            TRY(string(c, &key));
            size_t value_start = c->pos;
            TRY(skip_value(c, it->type));
            TRY(decode_string(c, &key, &w->key, &it->key_len));
            it->key = w->key;
            it->value = c->b + value_start;
            it->value_len = c->pos - value_start;
            return OK;
        }
        }
    }
}

/* The header: "REDIS" and four digits. */
static int parse_header(redis_rdb_walker *w, struct cur *c)
{
    const unsigned char *p = NULL;
    TRY(take(c, 9, &p));
    if (memcmp(p, "REDIS", 5) != 0)
        return bad(c, "not an RDB (it does not start with REDIS)");
    int version = 0;
    for (int i = 5; i < 9; i++) {
        if (p[i] < '0' || p[i] > '9')
            return bad(c, "not an RDB (no version number after REDIS)");
        version = version * 10 + (p[i] - '0');
    }
    if (version < 1 || version > REDIS_RDB_VERSION_MAX)
        return bad(c, "RDB version %d, which this sauve does not know (it reads 1 to %d)", version,
                   REDIS_RDB_VERSION_MAX);
    w->version = version;
    return OK;
}

int redis_rdb_walker_next(redis_rdb_walker *w, redis_rdb_item *it, bool at_end)
{
    if (w->failed)
        return -1;
    size_t avail = w->len - w->off;
    if (w->eof) {
        /* after the end opcode only the checksum may follow */
        size_t trailer = w->version >= 5 ? 8 : 0;
        if (avail > trailer)
            return walker_fail(w, "bytes after the end of the RDB");
        if (at_end && avail < trailer)
            return walker_fail(w, "the RDB ends inside its checksum");
        return 0;
    }
    if (!at_end && (avail < w->need || avail < w->tried + w->tried / 2))
        return 0;
    char msg[sizeof w->error];
    static const unsigned char none[1];
    struct cur c = {.b = w->buf ? w->buf + w->off : none,
                    .end = avail,
                    .limit = w->max_item,
                    .err = msg,
                    .errlen = sizeof msg};
    bool header = w->version == 0;
    int r = header ? parse_header(w, &c) : parse_item(w, &c, it);
    if (r == BAD) {
        char where[sizeof w->error];
        snprintf(where, sizeof where, "%s (at byte %llu)", msg, (unsigned long long)(w->bytes - avail));
        return walker_fail(w, where);
    }
    if (r == MORE) {
        if (at_end)
            return walker_fail(w, "the RDB ends inside an item (truncated)");
        w->need = c.need;
        w->tried = avail;
        return 0;
    }
    w->off += c.pos;
    w->need = 0;
    w->tried = 0;
    if (header)
        return redis_rdb_walker_next(w, it, at_end);
    if (it->kind == RDB_ITEM_SELECTDB)
        w->db = it->db;
    it->db = w->db;
    if (it->kind == RDB_ITEM_EOF)
        w->eof = true;
    it->offset = w->bytes - avail;
    return 1;
}

int redis_rdb_walker_finish(redis_rdb_walker *w)
{
    if (w->failed)
        return -1;
    if (!w->eof)
        return walker_fail(w, "the RDB ends before its end marker (truncated)");
    redis_rdb_item it;
    if (redis_rdb_walker_next(w, &it, true) != 0)
        return -1;
    if (redis_rdb_check_finish(&w->check) != 0)
        return walker_fail(w, w->check.error);
    return 0;
}

/* ---- DUMP payloads ---------------------------------------------------------- */

size_t redis_dump_trailer(int type, const void *value, size_t len, int version, unsigned char out[10])
{
    unsigned char t = (unsigned char)type;
    out[0] = (unsigned char)(version & 0xff);
    out[1] = (unsigned char)(version >> 8);
    uint64_t crc = redis_crc64(redis_crc64(redis_crc64(0, &t, 1), value, len), out, 2);
    for (int i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)(crc >> (8 * i));
    return 10;
}

int redis_rdb_version_of(const char *redis_version)
{
    int major = 0, minor = 0;
    if (!redis_version || sscanf(redis_version, "%d.%d", &major, &minor) < 1)
        return 0;
    /* the RDB_VERSION each release line writes and reads at most; later
     * lines (8 and on) raise it in minor releases: unknown, not guessed */
    static const struct {
        int major, minor, rdb;
    } table[] = {{7, 4, 12}, {7, 2, 11}, {7, 0, 10}, {5, 0, 9}, {4, 0, 8}, {3, 2, 7}, {2, 6, 6}, {0, 0, 0}};
    if (major >= 8)
        return 0;
    for (size_t i = 0; table[i].rdb; i++)
        if (major > table[i].major || (major == table[i].major && minor >= table[i].minor))
            return table[i].rdb;
    return 0;
}
