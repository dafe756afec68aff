/*
 * A drill of a directory tree (sources/loader.h): the archive extracted
 * in the drill's private directory under drill.dir (restore --to), every entry counted and compared with
 * the entries the backup archived, then the tree removed.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "sources/files.h"
#include "sources/loader.h"

int files_drill_target(const manifest_artifact *a, const char *dir, const char *tag, struct loader_options *o,
                       char **owned, const char **skip)
{
    (void)tag; /* dir is the run's own */
    if (strchr(a->name, '/') || a->name[0] == '.') {
        *skip = "its name cannot name a directory";
        return 1;
    }
    o->to = *owned = xasprintf("%s/%s", dir, a->name);
    return 0;
}

/* nftw keeps no context: one walk at a time, on the main thread. */
static uint64_t walk_entries, walk_bytes;

static int count_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (type == FTW_DNR || type == FTW_NS)
        return 1;
    walk_entries++;
    if (S_ISREG(st->st_mode))
        walk_bytes += (uint64_t)st->st_size;
    return 0;
}

int files_drill_compare(const sv_config *cfg, const manifest_artifact *a, const struct loader_options *o,
                        struct drill_findings *f, sv_error *err)
{
    (void)cfg;
    f->unit = "entries";
    walk_entries = walk_bytes = 0;
    /* the root is an entry of the archive too ("."), as it is of the walk */
    int rc = nftw(o->to, count_entry, 16, FTW_PHYS);
    if (rc != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "the restored tree %s cannot be walked%s%s", o->to,
                            rc < 0 ? ": " : " (a directory or file cannot be read)",
                            rc < 0 ? strerror(errno) : "");
    f->counted = walk_entries;
    char human[32];
    log_info("files:%s: %" PRIu64 " entries, %s of file data in the restored tree", a->name, walk_entries,
             log_human_bytes(walk_bytes, human, sizeof human));
    if (!a->has_items) {
        f->note = xstrdup("the manifest records no entry count: not compared");
        return 0;
    }
    f->compared = (uint64_t)a->items;
    if (walk_entries != (uint64_t)a->items)
        f->mismatch = xasprintf("the restored tree has %" PRIu64 " entries, the backup archived %" PRId64,
                                walk_entries, a->items);
    return 0;
}

int files_drill_discard(const sv_config *cfg, const struct loader_options *o, sv_error *err)
{
    (void)cfg;
    if (files_remove_tree(o->to) != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "cannot remove the drill's tree %s: %s", o->to,
                            strerror(errno));
    return 0;
}
