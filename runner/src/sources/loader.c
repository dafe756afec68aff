#include "sources/loader.h"

#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "common/log.h"
#include "common/mem.h"

/* The registry. Each kind's loader is defined beside its dumper, in
 * sources/KIND_restore.c; a kind is restorable once it is listed here. */
extern const struct loader_ops postgres_loader;
extern const struct loader_ops redis_loader;
extern const struct loader_ops files_loader;
static const struct loader_ops *const loaders[] = {&postgres_loader, &redis_loader, &files_loader};
#define N_LOADERS (sizeof loaders / sizeof *loaders)

void loader_free(loader *l)
{
    if (!l)
        return;
    free(l->target);
    free(l->what);
    free(l->changes);
    if (l->ops && l->ops->destroy)
        l->ops->destroy(l);
    free(l);
}

int loader_check_space(int dirfd, const char *target, uint64_t bytes, int64_t files, sv_error *err)
{
    struct statvfs vfs;
    /* f_blocks 0: a file system without a size (ramfs) cannot say */
    if (fstatvfs(dirfd, &vfs) != 0 || vfs.f_blocks == 0)
        return 0;
    uint64_t free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (bytes > free_bytes) {
        char need[32], have[32];
        sv_error_set(err, SV_EXIT_FAILED,
                     "not enough space to restore into %s: the artifact holds %s, its file "
                     "system has %s free; nothing was changed",
                     target, log_human_bytes(bytes, need, sizeof need),
                     log_human_bytes(free_bytes, have, sizeof have));
        return sv_error_hint(err, "free space there, grow the volume, or restore to another place first");
    }
    /* f_files 0: a file system without an inode count (btrfs, some FUSE) */
    if (files > 0 && vfs.f_files > 0 && (uint64_t)files > (uint64_t)vfs.f_favail) {
        sv_error_set(err, SV_EXIT_FAILED,
                     "not enough inodes to restore into %s: the artifact holds %lld entries, "
                     "its file system can create %llu more; nothing was changed",
                     target, (long long)files, (unsigned long long)vfs.f_favail);
        return sv_error_hint(err, "free inodes there, or restore to another file system");
    }
    return 0;
}

const struct loader_ops *loader_find(const char *kind, size_t len)
{
    for (size_t i = 0; i < N_LOADERS; i++)
        if (strlen(loaders[i]->kind) == len && memcmp(loaders[i]->kind, kind, len) == 0)
            return loaders[i];
    return NULL;
}

char *loader_forms_of(const struct loader_ops *const *ops, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        for (const char *const *f = ops[i]->forms; *f; f++)
            total++;
    char *out = xstrdup("");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (const char *const *f = ops[i]->forms; *f; f++, k++) {
            char *next = xasprintf("%s%s%s", out, k == 0 ? "" : k + 1 == total ? " or " : ", ", *f);
            free(out);
            out = next;
        }
    return out;
}

char *loader_forms(void)
{
    return loader_forms_of(loaders, N_LOADERS);
}
