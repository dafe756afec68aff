/*
 * A Redis artifact verified with no server, after restore/ checked the
 * object's size and SHA-256: an RDB read whole through the same checker
 * the backup runs while it streams (magic, version, end opcode, CRC-64); a
 * keys-mode stream walked record by record (each DUMP payload's CRC-64,
 * then the end record's count and CRC-64 of the stream).
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "sources/checker.h"
#include "sources/redis.h"

struct rdb_verify {
    bool keys;
    redis_rdb_check check;
    redis_keys_reader reader;
};

static int check_keys(void *ctx, const void *buf, size_t len, sv_error *err)
{
    struct rdb_verify *v = ctx;
    redis_keys_record rec;
    int n = redis_keys_reader_feed(&v->reader, buf, len);
    while (n == 0 && (n = redis_keys_reader_next(&v->reader, &rec, false)) == 1)
        n = 0;
    if (n < 0)
        return sv_error_set(err, SV_EXIT_FAILED, "not a whole keys-mode stream: %s", v->reader.error);
    return 0;
}

static int check_rdb(void *ctx, const void *buf, size_t len, sv_error *err)
{
    struct rdb_verify *v = ctx;
    if (redis_rdb_check_update(&v->check, buf, len) != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "not an RDB: %s", v->check.error);
    return 0;
}

static int rdb_verify_start(const sv_config *cfg, const manifest_artifact *a, void **ctx, stream **sink,
                            sv_error *err)
{
    (void)cfg;
    bool keys = strcmp(a->format, REDIS_KEYS_FORMAT) == 0;
    if (!keys && strcmp(a->format, "redis-rdb") != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "artifact format %s is not one sauve can verify", a->format);
    struct rdb_verify *v = xcalloc(1, sizeof *v);
    v->keys = keys;
    if (keys) {
        redis_keys_reader_init(&v->reader, REDIS_KEYS_MAX_ITEM);
        *sink = callback_sink(check_keys, v, "keys-mode check");
    } else {
        redis_rdb_check_init(&v->check);
        *sink = callback_sink(check_rdb, v, "rdb check");
    }
    *ctx = v;
    return 0;
}

static int rdb_verify_finish(void *ctx, bool ok, char **detail, sv_error *err)
{
    struct rdb_verify *v = ctx;
    int rc = 0;
    if (ok && v->keys) {
        redis_keys_record rec;
        int n;
        while ((n = redis_keys_reader_next(&v->reader, &rec, true)) == 1)
            ;
        if (n < 0 || redis_keys_reader_finish(&v->reader) != 0) {
            rc = sv_error_set(err, SV_EXIT_FAILED, "not a whole keys-mode stream: %s", v->reader.error);
        } else {
            char size[32];
            *detail = xasprintf("keys-mode stream version %d (NOT point-in-time), %s, %llu key(s), %llu "
                                "vanished between SCAN and DUMP; every DUMP payload's CRC-64 and the end "
                                "record match",
                                v->reader.version, log_human_bytes(v->reader.consumed, size, sizeof size),
                                (unsigned long long)v->reader.keys, (unsigned long long)v->reader.vanished);
        }
    } else if (ok) {
        if (redis_rdb_check_finish(&v->check) != 0) {
            rc = sv_error_set(err, SV_EXIT_FAILED, "not a whole RDB: %s", v->check.error);
        } else {
            char size[32];
            *detail =
                xasprintf("RDB version %d, %s, %s", v->check.version,
                          log_human_bytes(v->check.bytes, size, sizeof size),
                          v->check.unchecksummed ? "written without a checksum (rdbchecksum no): header "
                                                   "and end checked"
                                                 : "CRC-64 matches");
        }
    }
    redis_keys_reader_free(&v->reader);
    free(v);
    return rc;
}

const struct checker_ops redis_checker = {
    .kind = "redis",
    .start = rdb_verify_start,
    .finish = rdb_verify_finish,
};
