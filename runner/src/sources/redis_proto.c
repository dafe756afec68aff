/* The bytes of Redis that sauve reads, without I/O: CRC-64, the RDB
 * checker, RESP replies, and the framing of the payload after SYNC. Kept
 * apart from the sockets so that tests and fuzzers feed it any cut. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "sources/redis.h"

/* ---- CRC-64 --------------------------------------------------------------- */

/* The Jones polynomial, bit-reversed for a reflected (LSB-first) CRC. */
#define CRC64_POLY_REFLECTED 0x95ac9329ac4bc9b5ULL

/* Slicing by 8: eight tables let the loop take a word per step, so the
 * check keeps up with the network (a byte-wise table does ~500 MB/s). */
static uint64_t g_crc_table[8][256];
static pthread_once_t g_crc_once = PTHREAD_ONCE_INIT;

static void crc64_init_tables(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint64_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ CRC64_POLY_REFLECTED : c >> 1;
        g_crc_table[0][i] = c;
    }
    for (unsigned i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            g_crc_table[t][i] = (g_crc_table[t - 1][i] >> 8) ^ g_crc_table[0][g_crc_table[t - 1][i] & 0xff];
}

uint64_t redis_crc64(uint64_t crc, const void *buf, size_t len)
{
    pthread_once(&g_crc_once, crc64_init_tables);
    const unsigned char *p = buf;
    while (len >= 8) {
        uint64_t w =
            crc ^ ((uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
                   (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56);
        crc = g_crc_table[7][w & 0xff] ^ g_crc_table[6][(w >> 8) & 0xff] ^ g_crc_table[5][(w >> 16) & 0xff] ^
              g_crc_table[4][(w >> 24) & 0xff] ^ g_crc_table[3][(w >> 32) & 0xff] ^
              g_crc_table[2][(w >> 40) & 0xff] ^ g_crc_table[1][(w >> 48) & 0xff] ^ g_crc_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = g_crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

/* ---- the RDB checker ------------------------------------------------------ */

/* The checksum was added in RDB version 5 (Redis 2.6): an older file has no
 * trailer to check. */
#define RDB_FIRST_CHECKSUMMED 5
#define RDB_OPCODE_EOF        0xff

void redis_rdb_check_init(redis_rdb_check *c)
{
    memset(c, 0, sizeof *c);
}

static int check_fail(redis_rdb_check *c, const char *msg)
{
    if (!c->failed)
        snprintf(c->error, sizeof c->error, "%s", msg);
    c->failed = true;
    return -1;
}

static int check_header(redis_rdb_check *c)
{
    if (memcmp(c->head, "REDIS", 5) != 0)
        return check_fail(c, "the payload is not an RDB (it does not start with REDIS)");
    int v = 0;
    for (int i = 5; i < 9; i++) {
        if (c->head[i] < '0' || c->head[i] > '9')
            return check_fail(c, "the RDB header has no 4-digit version after REDIS");
        v = v * 10 + (c->head[i] - '0');
    }
    if (v < RDB_FIRST_CHECKSUMMED) {
        char msg[96];
        snprintf(msg, sizeof msg, "RDB version %d has no checksum (sauve needs version %d or newer)", v,
                 RDB_FIRST_CHECKSUMMED);
        return check_fail(c, msg);
    }
    c->version = v;
    return 0;
}

static void crc_bytes(redis_rdb_check *c, const unsigned char *p, size_t n)
{
    if (n) {
        c->crc = redis_crc64(c->crc, p, n);
        c->last_crc_byte = p[n - 1];
    }
}

int redis_rdb_check_update(redis_rdb_check *c, const void *buf, size_t len)
{
    if (c->failed)
        return -1;
    const unsigned char *p = buf;
    for (size_t i = 0; c->bytes + i < sizeof c->head && i < len; i++)
        c->head[c->bytes + i] = p[i];
    bool header_now = c->bytes < sizeof c->head && c->bytes + len >= sizeof c->head;
    c->bytes += len;
    if (header_now && check_header(c) != 0)
        return -1;
    /* The last 8 bytes seen are held back from the CRC: they may be the
     * trailer. The logical sequence is tail + p; all but its last 8 go in. */
    size_t total = c->tail_len + len;
    if (total <= sizeof c->tail) {
        memcpy(c->tail + c->tail_len, p, len);
        c->tail_len = total;
        return 0;
    }
    size_t out = total - sizeof c->tail; /* bytes leaving the hold */
    size_t from_tail = out < c->tail_len ? out : c->tail_len;
    crc_bytes(c, c->tail, from_tail);
    crc_bytes(c, p, out - from_tail);
    unsigned char keep[8];
    size_t kept_tail = c->tail_len - from_tail; /* tail bytes still held */
    memcpy(keep, c->tail + from_tail, kept_tail);
    memcpy(keep + kept_tail, p + (len - (sizeof c->tail - kept_tail)), sizeof c->tail - kept_tail);
    memcpy(c->tail, keep, sizeof c->tail);
    c->tail_len = sizeof c->tail;
    return 0;
}

int redis_rdb_check_finish(redis_rdb_check *c)
{
    if (c->failed)
        return -1;
    if (c->bytes < sizeof c->head + 1 + sizeof c->tail) {
        char msg[96];
        snprintf(msg, sizeof msg, "the RDB is truncated: %llu bytes, too short for a header and trailer",
                 (unsigned long long)c->bytes);
        return check_fail(c, msg);
    }
    if (c->last_crc_byte != RDB_OPCODE_EOF)
        return check_fail(c,
                          "the RDB does not end with the end opcode 0xFF before its checksum (truncated?)");
    uint64_t stored = 0;
    for (int i = 7; i >= 0; i--)
        stored = stored << 8 | c->tail[i];
    if (stored == 0) {
        /* rdbchecksum no: the server wrote no checksum; nothing to compare */
        c->unchecksummed = true;
        return 0;
    }
    if (stored != c->crc) {
        char msg[128];
        snprintf(msg, sizeof msg, "the RDB checksum does not match: stored %016llx, computed %016llx",
                 (unsigned long long)stored, (unsigned long long)c->crc);
        return check_fail(c, msg);
    }
    return 0;
}

/* ---- RESP replies --------------------------------------------------------- */

/* The line at buf (up to CRLF): its length without CRLF in *n; 0 when no
 * CRLF yet; -1 when none can come within a sane length. */
static int find_line(const char *buf, size_t len, size_t *n, sv_error *err)
{
    const char *cr = memchr(buf, '\r', len);
    if (!cr) {
        if (len > REDIS_REPLY_MAX)
            return sv_error_set(err, SV_EXIT_FAILED, "redis protocol error: a reply line over %u bytes",
                                REDIS_REPLY_MAX);
        return 0;
    }
    if ((size_t)(cr - buf) + 1 >= len)
        return 0;
    if (cr[1] != '\n')
        return sv_error_set(err, SV_EXIT_FAILED, "redis protocol error: CR without LF in a reply");
    *n = (size_t)(cr - buf);
    return 1;
}

/* A decimal integer that fills s[0..n) exactly. */
static int parse_ll(const char *s, size_t n, long long *out)
{
    if (n == 0 || n > 20)
        return -1;
    char tmp[24];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end || end == tmp || tmp[0] == ' ' || tmp[0] == '+')
        return -1;
    *out = v;
    return 0;
}

/* Arrays nest; a peer that nests deeper than this is not a Redis. */
#define REDIS_MAX_DEPTH 8

static int parse_at(const char *buf, size_t len, redis_reply *out, size_t *used, int depth, sv_error *err)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return 0;
    size_t n = 0;
    int r = find_line(buf, len, &n, err);
    if (r <= 0)
        return r;
    const char *body = buf + 1;
    size_t blen = n - 1;
    if (n == 0)
        return sv_error_set(err, SV_EXIT_FAILED, "redis protocol error: an empty reply line");
    switch (buf[0]) {
    case '+':
    case '-':
        out->type = buf[0] == '+' ? REDIS_REPLY_STATUS : REDIS_REPLY_ERROR;
        out->str = xstrndup(body, blen);
        out->len = blen;
        *used = n + 2;
        return 1;
    case ':':
        if (parse_ll(body, blen, &out->integer) != 0)
            return sv_error_set(err, SV_EXIT_FAILED, "redis protocol error: a bad integer reply");
        out->type = REDIS_REPLY_INTEGER;
        *used = n + 2;
        return 1;
    case '$': {
        long long size;
        if (parse_ll(body, blen, &size) != 0 || size < -1 || size > (long long)REDIS_REPLY_MAX)
            return sv_error_set(err, SV_EXIT_FAILED, "redis protocol error: a bad bulk length");
        if (size == -1) {
            out->type = REDIS_REPLY_NIL;
            *used = n + 2;
            return 1;
        }
        size_t need = n + 2 + (size_t)size + 2;
        if (len < need)
            return 0;
        if (buf[need - 2] != '\r' || buf[need - 1] != '\n')
            return sv_error_set(err, SV_EXIT_FAILED, "redis protocol error: a bulk reply without its CRLF");
        out->type = REDIS_REPLY_BULK;
        /* binary-safe: a key may hold NUL bytes (SCAN's replies) */
        out->str = xmalloc((size_t)size + 1);
        memcpy(out->str, buf + n + 2, (size_t)size);
        out->str[size] = '\0';
        out->len = (size_t)size;
        *used = need;
        return 1;
    }
    case '*': {
        long long count;
        if (parse_ll(body, blen, &count) != 0 || count < -1 || count > 1024 * 1024)
            return sv_error_set(err, SV_EXIT_FAILED, "redis protocol error: a bad array length");
        if (depth >= REDIS_MAX_DEPTH)
            return sv_error_set(err, SV_EXIT_FAILED, "redis protocol error: arrays nested too deep");
        size_t pos = n + 2;
        if (count > 0)
            out->element = xcalloc((size_t)count, sizeof *out->element);
        out->integer = 0;
        for (long long i = 0; i < count; i++) {
            size_t el_used = 0;
            r = parse_at(buf + pos, len - pos, &out->element[i], &el_used, depth + 1, err);
            if (r <= 0) {
                out->type = REDIS_REPLY_ARRAY;
                out->integer = i + 1;
                return r;
            }
            pos += el_used;
        }
        out->type = count < 0 ? REDIS_REPLY_NIL : REDIS_REPLY_ARRAY;
        out->integer = count;
        *used = pos;
        return 1;
    }
    default:
        return sv_error_set(err, SV_EXIT_FAILED, "redis protocol error: unknown reply type 0x%02x",
                            (unsigned char)buf[0]);
    }
}

int redis_reply_parse(const char *buf, size_t len, redis_reply *out, size_t *used, sv_error *err)
{
    int r = parse_at(buf, len, out, used, 0, err);
    if (r <= 0)
        redis_reply_free(out);
    return r;
}

void redis_reply_free(redis_reply *r)
{
    if (r->type == REDIS_REPLY_ARRAY && r->element)
        for (long long i = 0; i < r->integer; i++)
            redis_reply_free(&r->element[i]);
    free(r->element);
    free(r->str);
    memset(r, 0, sizeof *r);
}

/* ---- the reply to SYNC / PSYNC -------------------------------------------- */

void redis_sync_init(redis_sync *s)
{
    memset(s, 0, sizeof *s);
}

/* One complete header line (without CRLF): a reply to note, a refusal, or
 * the payload's framing. */
static int header_line(redis_sync *s, sv_error *err)
{
    const char *l = s->line;
    size_t n = s->line_len;
    if (n > 0 && l[0] == '+') {
        /* +FULLRESYNC <replid> <offset>; anything else (+CONTINUE) cannot
         * answer "PSYNC ? -1" and carries no payload */
        if (strncmp(l, "+FULLRESYNC", 11) != 0)
            return sv_error_set(err, SV_EXIT_FAILED, "redis answered the sync request with '%.60s'", l);
        snprintf(s->fullresync, sizeof s->fullresync, "%s", l);
        return 0;
    }
    if (n > 0 && l[0] == '-') {
        snprintf(s->refusal, sizeof s->refusal, "%s", l + 1);
        s->state = REDIS_SYNC_REFUSED;
        return 0;
    }
    if (n > 0 && l[0] == '$') {
        if (n >= 5 && strncmp(l + 1, "EOF:", 4) == 0) {
            if (n != 5 + REDIS_EOF_MARK_LEN)
                return sv_error_set(err, SV_EXIT_FAILED,
                                    "redis protocol error: an EOF mark of %zu bytes (expected %d)", n - 5,
                                    REDIS_EOF_MARK_LEN);
            memcpy(s->mark, l + 5, REDIS_EOF_MARK_LEN);
            s->eof_framing = true;
        } else {
            long long v;
            if (parse_ll(l + 1, n - 1, &v) != 0 || v < 0)
                return sv_error_set(err, SV_EXIT_FAILED, "redis protocol error: a bad payload length '%.40s'",
                                    l);
            s->length = (uint64_t)v;
        }
        s->state = REDIS_SYNC_PAYLOAD;
        if (!s->eof_framing && s->length == 0)
            s->state = REDIS_SYNC_DONE;
        return 0;
    }
    return sv_error_set(err, SV_EXIT_FAILED,
                        "redis protocol error: expected the RDB payload, got a line starting with 0x%02x",
                        n ? (unsigned char)l[0] : 0);
}

/* EOF framing: the payload ends where the mark is. The last MARK_LEN bytes
 * are held back, since they may be its start; everything before them is
 * payload. Returns the bytes of buf consumed. */
static ssize_t feed_eof(redis_sync *s, const unsigned char *buf, size_t len, redis_emit_fn emit, void *ctx,
                        sv_error *err)
{
    size_t consumed = 0;
    while (consumed < len) {
        /* work on hold + the next slice, in a window of bounded size */
        unsigned char win[REDIS_EOF_MARK_LEN + 65536];
        size_t take = len - consumed;
        if (take > sizeof win - s->hold_len)
            take = sizeof win - s->hold_len;
        memcpy(win, s->hold, s->hold_len);
        memcpy(win + s->hold_len, buf + consumed, take);
        size_t wlen = s->hold_len + take;
        const unsigned char *at = memmem(win, wlen, s->mark, REDIS_EOF_MARK_LEN);
        if (at) {
            size_t pay = (size_t)(at - win);
            if (pay && emit(ctx, win, pay, err) != 0)
                return -1;
            s->payload += pay;
            /* bytes of buf up to the end of the mark are ours */
            size_t end = pay + REDIS_EOF_MARK_LEN; /* in win */
            consumed += end - s->hold_len;
            s->hold_len = 0;
            s->state = REDIS_SYNC_DONE;
            return (ssize_t)consumed;
        }
        size_t keep = wlen < REDIS_EOF_MARK_LEN - 1 ? wlen : REDIS_EOF_MARK_LEN - 1;
        size_t pay = wlen - keep;
        if (pay && emit(ctx, win, pay, err) != 0)
            return -1;
        s->payload += pay;
        memmove(s->hold, win + pay, keep);
        s->hold_len = keep;
        consumed += take;
    }
    return (ssize_t)consumed;
}

ssize_t redis_sync_feed(redis_sync *s, const void *buf, size_t len, redis_emit_fn emit, void *ctx,
                        sv_error *err)
{
    const unsigned char *p = buf;
    size_t i = 0;
    while (i < len && s->state == REDIS_SYNC_HEADER) {
        unsigned char ch = p[i++];
        if (ch == '\n') {
            if (s->line_len == 0) {
                /* a keep-alive: the server is still preparing the RDB */
                s->keepalives++;
                continue;
            }
            if (s->line[s->line_len - 1] != '\r')
                return sv_error_set(err, SV_EXIT_FAILED, "redis protocol error: LF without CR in a reply");
            s->line[--s->line_len] = '\0';
            int r = header_line(s, err);
            s->line_len = 0;
            if (r != 0)
                return -1;
            continue;
        }
        if (s->line_len + 1 >= sizeof s->line)
            return sv_error_set(err, SV_EXIT_FAILED, "redis protocol error: a reply line over %zu bytes",
                                sizeof s->line - 2);
        s->line[s->line_len++] = (char)ch;
        s->line[s->line_len] = '\0';
    }
    if (i == len || s->state != REDIS_SYNC_PAYLOAD)
        return (ssize_t)i;
    if (s->eof_framing) {
        ssize_t r = feed_eof(s, p + i, len - i, emit, ctx, err);
        return r < 0 ? -1 : (ssize_t)i + r;
    }
    uint64_t left = s->length - s->payload;
    size_t take = (uint64_t)(len - i) < left ? len - i : (size_t)left;
    if (emit(ctx, p + i, take, err) != 0)
        return -1;
    s->payload += take;
    if (s->payload == s->length)
        s->state = REDIS_SYNC_DONE;
    return (ssize_t)(i + take);
}

/* The value of field name in a "k=v,k=v" list that ends at end. */
static bool list_field(const char *p, const char *end, const char *name, const char **v, size_t *vlen)
{
    size_t n = strlen(name);
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if ((size_t)(stop - p) > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            *v = p + n + 1;
            *vlen = (size_t)(stop - *v);
            return true;
        }
        p = stop + 1;
    }
    return false;
}

int redis_info_backups(const char *replication, char *state, size_t len)
{
    int found = 0;
    if (len)
        state[0] = '\0';
    for (const char *p = replication; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *end = p + strcspn(p, "\r\n");
        /* "slave0:ip=...,port=...,state=...": a replica of this server */
        size_t digits = strncmp(p, "slave", 5) == 0 ? strspn(p + 5, "0123456789") : 0;
        if (!digits || p[5 + digits] != ':')
            continue;
        const char *v;
        size_t vlen;
        const char *fields = p + 5 + digits + 1;
        if (!list_field(fields, end, "ip", &v, &vlen) || vlen != strlen(REDIS_BACKUP_REPLICA) ||
            memcmp(v, REDIS_BACKUP_REPLICA, vlen) != 0)
            continue;
        if (found++ == 0 && len && list_field(fields, end, "state", &v, &vlen))
            snprintf(state, len, "%.*s", (int)vlen, v);
    }
    return found;
}
