/*
 * Where backup sets live. One interface, several backends (file:// now, s3://
 * next), chosen by the URL scheme of SAUVE_STORAGE. Callers include only this
 * header; backends implement storage_intern.h.
 *
 * Keys are relative to the URL's root (the s3 prefix or the local directory),
 * use '/' as separator, and never start with '/' or contain "..".
 *
 * Writes are streams (pipeline/stream.h): an object becomes visible under its
 * key only when its stream finishes successfully (local: temp name, fsync,
 * rename; s3: CompleteMultipartUpload); an aborted or crashed write leaves at
 * most a hidden leftover that prune removes, never a partial object under
 * the final key.
 */
#ifndef SAUVE_STORAGE_STORAGE_H
#define SAUVE_STORAGE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "pipeline/stream.h"

typedef struct storage storage;

typedef struct storage_entry {
    const char *key; /* relative key; for a prefix (directory), ends with '/' */
    uint64_t size;   /* bytes; 0 for a prefix */
    int64_t mtime;   /* unix seconds; 0 when unknown */
    bool is_prefix;
} storage_entry;

/* Return 0 to continue listing, non-zero to stop (storage_list returns 0). */
typedef int (*storage_list_cb)(void *ctx, const storage_entry *entry);

/*
 * Opens the storage named by url ("file:///var/backups", "s3://bucket/prefix").
 * cfg carries the backend's settings (s3 endpoint, credentials, encryption);
 * NULL means defaults. Checks nothing remote: use storage_check() for that.
 * On a malformed or unsupported URL fails with SV_EXIT_CONFIG naming
 * SAUVE_STORAGE.
 */
struct sv_config;
storage *storage_open(const char *url, const struct sv_config *cfg, sv_error *err);
void storage_close(storage *st);

/* The URL the storage was opened with, for messages. */
const char *storage_url(const storage *st);

/*
 * Verifies the storage is reachable and writable enough to hold backups
 * (local: directory exists or can be created, is writable; s3: bucket
 * exists, credentials accepted). Changes nothing durable. Fails with
 * SV_EXIT_TEMPFAIL when unreachable, SV_EXIT_CONFIG when misconfigured.
 */
int storage_check(storage *st, sv_error *err);

/*
 * Starts writing an object. Returns a sink stream: write the bytes, then
 * stream_finish() to commit it under key or stream_abort() to discard it;
 * then stream_free(). Replaces an existing object at key on finish only.
 * Returns NULL and sets err when the write cannot start.
 */
stream *storage_write(storage *st, const char *key, sv_error *err);

/* Writes a small object in one call (e.g. a manifest). */
int storage_put(storage *st, const char *key, const void *data, size_t len, sv_error *err);

/*
 * Reads the object at key and writes its bytes into sink. Does not finish
 * or abort the sink: the caller decides. Fails with a message naming the
 * key when it does not exist (err->code SV_EXIT_FAILED).
 */
int storage_read(storage *st, const char *key, stream *sink, sv_error *err);

/* Reads a small object into a newly allocated buffer (NUL-terminated for
 * convenience, len excludes the NUL); fails if larger than max. */
int storage_get(storage *st, const char *key, size_t max, char **data, size_t *len, sv_error *err);

/* Fills *out for key. Returns 0 when found, 1 when absent, -1 on error. */
int storage_stat(storage *st, const char *key, storage_entry *out, sv_error *err);

/*
 * Lists keys under prefix ("" for everything). recursive=false lists one
 * level: objects directly under prefix, and sub-prefixes as entries with
 * is_prefix set. Order is lexicographic by key. Entry strings are valid only
 * during the callback.
 */
int storage_list(storage *st, const char *prefix, bool recursive, storage_list_cb cb, void *ctx,
                 sv_error *err);

/* Deletes objects; absent keys are not an error. Backends batch (S3: 1000
 * keys per request). */
int storage_delete(storage *st, const char *const *keys, size_t nkeys, sv_error *err);

/*
 * Interrupted writes: an S3 multipart upload never completed, or a local
 * temp file left by a crash. Prune lists them and removes those older than
 * its grace period; they are never visible as objects.
 */
typedef struct storage_upload {
    const char *key; /* the key the write was for */
    const char *id;  /* backend's handle: S3 UploadId, local temp file name */
    int64_t started; /* unix seconds */
} storage_upload;

typedef int (*storage_upload_cb)(void *ctx, const storage_upload *upload);

/* Lists interrupted writes whose key starts with prefix. Backends without
 * any report none. */
int storage_list_uploads(storage *st, const char *prefix, storage_upload_cb cb, void *ctx, sv_error *err);

/* Discards one interrupted write; already gone is not an error. */
int storage_abort_upload(storage *st, const storage_upload *upload, sv_error *err);

/* Calls made through this interface since storage_open, for logs and
 * benchmarks: a paginated listing counts once, a batched delete once per
 * call (with every key counted in deleted_keys). */
typedef struct storage_stats {
    unsigned long lists, reads, writes, stats, delete_calls, deleted_keys, upload_lists, upload_aborts;
} storage_stats;
const storage_stats *storage_get_stats(const storage *st);

#endif
