/*
 * A drill of a Redis artifact (sources/loader.h): the RDB restored as the
 * file of a stopped server (restore --to-file) in the drill's private
 * directory under drill.dir, its keys
 * counted by walking it whole, then the file removed. A keys-mode
 * artifact loads only into a running server, which a drill does not have:
 * it is read whole as `sauve verify` reads it.
 *
 * The key count the manifest holds is what the server reported before it
 * forked for the RDB, so writes in between move it: the drill shows both
 * and fails on the walk, not on the difference.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "sources/loader.h"
#include "sources/redis.h"

/* The largest item the walker holds: as a restore --online does. */
#define DRILL_MAX_ITEM ((size_t)512 << 20)

int redis_drill_target(const manifest_artifact *a, const char *dir, const char *tag, struct loader_options *o,
                       char **owned, const char **skip)
{
    if (strcmp(a->format, REDIS_KEYS_FORMAT) == 0) {
        *skip =
            "a keys-mode artifact loads only into a running Redis (restore --online): read whole as sauve "
            "verify reads it";
        return 1;
    }
    (void)tag; /* dir is the run's own */
    if (strchr(a->name, '/') || a->name[0] == '.') {
        *skip = "its name cannot name a file";
        return 1;
    }
    o->to_file = *owned = xasprintf("%s/%s.rdb", dir, a->name);
    return 0;
}

/* The keys of the RDB file at path into *keys. */
static int count_keys(const char *path, uint64_t *keys, sv_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sv_error_set(err, SV_EXIT_FAILED, "the restored RDB %s cannot be read: %s", path,
                            strerror(errno));
    redis_rdb_walker w;
    redis_rdb_walker_init(&w, DRILL_MAX_ITEM);
    unsigned char buf[1 << 16];
    int rc = 0;
    for (bool at_end = false; rc == 0 && !at_end;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            rc = sv_error_set(err, SV_EXIT_FAILED, "the restored RDB %s cannot be read: %s", path,
                              strerror(errno));
            break;
        }
        at_end = n == 0;
        if (n > 0 && redis_rdb_walker_feed(&w, buf, (size_t)n) != 0)
            rc = -1;
        redis_rdb_item it;
        int got;
        while (rc == 0 && (got = redis_rdb_walker_next(&w, &it, at_end)) == 1)
            *keys += it.kind == RDB_ITEM_KEY;
        if (rc == 0 && got < 0)
            rc = -1;
    }
    if (rc == 0 && redis_rdb_walker_finish(&w) != 0)
        rc = -1;
    if (rc != 0 && !sv_error_isset(err))
        sv_error_set(err, SV_EXIT_FAILED, "the restored RDB %s is not whole: %s", path, w.error);
    redis_rdb_walker_free(&w);
    close(fd);
    return rc;
}

int redis_drill_compare(const sv_config *cfg, const manifest_artifact *a, const struct loader_options *o,
                        struct drill_findings *f, sv_error *err)
{
    (void)cfg;
    f->unit = "keys";
    uint64_t keys = 0;
    if (count_keys(o->to_file, &keys, err) != 0) {
        f->mismatch = xstrdup(err->msg);
        memset(err, 0, sizeof *err);
        return 0;
    }
    f->counted = keys;
    if (a->has_items)
        f->note = xasprintf("the server reported %" PRId64 " key(s) before it forked for the RDB (writes in "
                            "between move that figure: not compared)",
                            a->items);
    return 0;
}

int redis_drill_discard(const sv_config *cfg, const struct loader_options *o, sv_error *err)
{
    (void)cfg;
    if (unlink(o->to_file) != 0 && errno != ENOENT)
        return sv_error_set(err, SV_EXIT_FAILED, "cannot remove the drill's RDB %s: %s", o->to_file,
                            strerror(errno));
    return 0;
}
