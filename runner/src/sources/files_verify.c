/*
 * A files artifact verified with no target: the tar read whole by
 * libarchive (every header parsed, every entry's data read past), after
 * restore/ checked the object's size and SHA-256, and every entry held to
 * the rules a restore extracts by (files_entry_check): a set that verifies
 * restores.
 */
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/log.h"
#include "common/mem.h"
#include "sources/checker.h"
#include "sources/files.h"

struct tar_verify {
    int64_t entries, files;
    uint64_t file_bytes;
};

static int walk(struct archive *a, void *ctx, sv_error *err)
{
    struct tar_verify *v = ctx;
    struct archive_entry *e;
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return sv_error_set(err, SV_EXIT_FAILED, "not a readable tar archive after %lld entries: %s",
                                (long long)v->entries, archive_error_string(a));
        v->entries++;
        if (files_entry_check(e, err) != 0)
            return sv_error_wrap(err, "a restore would refuse tar entry %lld", (long long)v->entries);
        if (archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e)) {
            v->files++;
            v->file_bytes += (uint64_t)archive_entry_size(e);
        }
        if (archive_read_data_skip(a) != ARCHIVE_OK) {
            const char *p = archive_entry_pathname(e);
            return sv_error_set(err, SV_EXIT_FAILED, "tar entry %lld (%.200s) is cut short: %s",
                                (long long)v->entries, p ? p : "a name this locale cannot show",
                                archive_error_string(a));
        }
    }
}

static int tar_verify_start(const sv_config *cfg, const manifest_artifact *a, void **ctx, stream **sink,
                            sv_error *err)
{
    (void)cfg;
    if (strcmp(a->format, FILES_FORMAT) != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "artifact format %s is not one sauve can verify", a->format);
    struct tar_verify *v = xcalloc(1, sizeof *v);
    *sink = files_tar_sink(walk, v, "tar check");
    *ctx = v;
    return 0;
}

static int tar_verify_finish(void *ctx, bool ok, char **detail, sv_error *err)
{
    (void)err;
    struct tar_verify *v = ctx;
    if (ok) {
        char size[32];
        *detail = xasprintf("tar archive read whole: %lld entries, %lld files, %s", (long long)v->entries,
                            (long long)v->files, log_human_bytes(v->file_bytes, size, sizeof size));
    }
    free(v);
    return 0;
}

const struct checker_ops files_checker = {
    .kind = "files",
    .start = tar_verify_start,
    .finish = tar_verify_finish,
};
