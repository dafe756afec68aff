/*
 * A Redis artifact verified with no server: the RDB read whole through the
 * same checker the backup runs while it streams (magic, version, end
 * opcode, CRC-64), after restore/ checked the object's size and SHA-256.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "sources/checker.h"
#include "sources/redis.h"

struct rdb_verify {
    redis_rdb_check check;
};

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
    if (strcmp(a->format, "redis-rdb") != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "artifact format %s is not one sauve can verify", a->format);
    struct rdb_verify *v = xcalloc(1, sizeof *v);
    redis_rdb_check_init(&v->check);
    *sink = callback_sink(check_rdb, v, "rdb check");
    *ctx = v;
    return 0;
}

static int rdb_verify_finish(void *ctx, bool ok, char **detail, sv_error *err)
{
    struct rdb_verify *v = ctx;
    int rc = 0;
    if (ok) {
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
    free(v);
    return rc;
}

const struct checker_ops redis_checker = {
    .kind = "redis",
    .start = rdb_verify_start,
    .finish = rdb_verify_finish,
};
