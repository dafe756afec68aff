/*
 * For storage backends only: the table of operations each backend provides.
 * Callers use storage.h. Each backend file defines one `const struct
 * storage_backend` and a constructor that storage.c calls by URL scheme.
 */
#ifndef SAUVE_STORAGE_STORAGE_INTERN_H
#define SAUVE_STORAGE_STORAGE_INTERN_H

#include "storage/storage.h"

struct storage_backend {
    const char *scheme; /* "file", "s3" */
    int (*check)(storage *st, sv_error *err);
    stream *(*write)(storage *st, const char *key, sv_error *err);
    int (*read)(storage *st, const char *key, stream *sink, sv_error *err);
    int (*stat)(storage *st, const char *key, storage_entry *out, sv_error *err);
    int (*list)(storage *st, const char *prefix, bool recursive, storage_list_cb cb, void *ctx,
                sv_error *err);
    int (*remove)(storage *st, const char *const *keys, size_t nkeys, sv_error *err);
    /* Optional (NULL: the backend never leaves interrupted writes). */
    int (*list_uploads)(storage *st, const char *prefix, storage_upload_cb cb, void *ctx, sv_error *err);
    int (*abort_upload)(storage *st, const storage_upload *upload, sv_error *err);
    void (*close)(storage *st); /* frees backend state (st->impl) */
};

struct storage {
    const struct storage_backend *backend;
    char *url;  /* as given, for messages */
    void *impl; /* backend state */
    storage_stats stats;
    char **skipped; /* keys already reported by storage_skip_key */
    size_t nskipped;
    bool skipped_more; /* more than storage.c names were skipped, and that was said */
};

/*
 * For backends (and storage.c's own listing filter): a listing met an entry
 * that cannot be a key of this interface (its URL encoding is broken, it has
 * a control character, an empty or "." segment, ...: why says which) and
 * skips it. Reported once per storage handle as a warning naming what
 * ("object", "prefix", "interrupted write") and the key, escaped; the entry
 * itself is left as it is.
 */
void storage_skip_key(storage *st, const char *what, const char *key, const char *why);

/* Local directory backend: url is "file:///absolute/path". */
int storage_local_open(storage *st, const char *path, sv_error *err);

/* S3 backend: url is "s3://bucket[/prefix]"; settings from cfg (may be NULL). */
struct sv_config;
int storage_s3_open(storage *st, const char *url, const struct sv_config *cfg, sv_error *err);

#endif
