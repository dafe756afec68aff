/* Backend choice by URL scheme, key rules shared by every backend, and the
 * small-object helpers built on the streaming calls. */
#include "storage/storage_intern.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

#define URL_HELP "use file:///path or s3://bucket/prefix"

storage *storage_open(const char *url, const struct sv_config *cfg, sv_error *err)
{
    if (!url || !*url) {
        sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_STORAGE is not set");
        sv_error_hint(err, "%s", URL_HELP);
        return NULL;
    }
    storage *st = xcalloc(1, sizeof *st);
    st->url = xstrdup(url);

    int rc;
    if (strncmp(url, "file://", 7) == 0 && url[7] == '/') {
        rc = storage_local_open(st, url + 7, err);
    } else if (strncmp(url, "file://", 7) == 0) {
        rc = sv_error_set(err, SV_EXIT_CONFIG,
                          "SAUVE_STORAGE: unsupported URL '%s': a file URL needs an absolute path, "
                          "e.g. file:///var/backups",
                          url);
    } else if (strncmp(url, "s3://", 5) == 0) {
        rc = storage_s3_open(st, url, cfg, err);
    } else {
        rc = sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_STORAGE: unsupported URL '%s': %s", url, URL_HELP);
    }
    if (rc < 0) {
        free(st->url);
        free(st);
        return NULL;
    }
    return st;
}

void storage_close(storage *st)
{
    if (!st)
        return;
    if (st->backend && st->backend->close)
        st->backend->close(st);
    free(st->url);
    free(st);
}

const char *storage_url(const storage *st)
{
    return st->url;
}

/*
 * The key rules, the same for every backend so that a set written to one
 * can be copied to another: relative, '/'-separated, no empty, "." or ".."
 * segment (a local backend would otherwise escape its root), and no segment
 * starting with '.', which backends reserve for their temporary objects
 * (and which a listing therefore skips). A prefix may also be "" and may end
 * with '/', and its last segment may be partial.
 */
static int check_path(const storage *st, const char *key, bool is_prefix, sv_error *err)
{
    const char *what = is_prefix ? "prefix" : "key";
    if (!key)
        return sv_error_set(err, SV_EXIT_FAILED, "storage %s: no %s given", st->url, what);
    if (!*key) {
        if (is_prefix)
            return 0;
        return sv_error_set(err, SV_EXIT_FAILED, "storage %s: empty key", st->url);
    }
    if (key[0] == '/')
        return sv_error_set(err, SV_EXIT_FAILED, "storage %s: invalid %s '%s': it starts with '/'", st->url,
                            what, key);
    const char *seg = key;
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
        bool last = !slash;
        if (n == 0 && !(last && is_prefix))
            return sv_error_set(err, SV_EXIT_FAILED, "storage %s: invalid %s '%s': it has an empty segment",
                                st->url, what, key);
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return sv_error_set(err, SV_EXIT_FAILED,
                                "storage %s: invalid %s '%s': it has a '.' or '..' segment", st->url, what,
                                key);
        if (n > 0 && seg[0] == '.')
            return sv_error_set(err, SV_EXIT_FAILED,
                                "storage %s: invalid %s '%s': a segment starts with '.', which is reserved "
                                "for temporary files",
                                st->url, what, key);
        if (last)
            return 0;
        seg = slash + 1;
    }
}

int storage_check(storage *st, sv_error *err)
{
    return st->backend->check(st, err);
}

stream *storage_write(storage *st, const char *key, sv_error *err)
{
    if (check_path(st, key, false, err) < 0)
        return NULL;
    st->stats.writes++;
    return st->backend->write(st, key, err);
}

int storage_put(storage *st, const char *key, const void *data, size_t len, sv_error *err)
{
    stream *w = storage_write(st, key, err);
    if (!w)
        return -1;
    int rc = -1;
    if (stream_write(w, data, len, err) == 0 && stream_finish(w, err) == 0)
        rc = 0;
    else
        stream_abort(w);
    stream_free(w);
    return rc;
}

int storage_read(storage *st, const char *key, stream *sink, sv_error *err)
{
    if (check_path(st, key, false, err) < 0)
        return -1;
    st->stats.reads++;
    return st->backend->read(st, key, sink, err);
}

int storage_get(storage *st, const char *key, size_t max, char **data, size_t *len, sv_error *err)
{
    stream *sink = buffer_sink(max);
    if (storage_read(st, key, sink, err) < 0 || stream_finish(sink, err) < 0) {
        stream_abort(sink);
        stream_free(sink);
        return -1;
    }
    size_t n;
    const void *p = buffer_sink_data(sink, &n);
    *data = xmalloc(n + 1);
    memcpy(*data, p, n);
    (*data)[n] = '\0';
    if (len)
        *len = n;
    stream_free(sink);
    return 0;
}

int storage_stat(storage *st, const char *key, storage_entry *out, sv_error *err)
{
    if (check_path(st, key, false, err) < 0)
        return -1;
    st->stats.stats++;
    return st->backend->stat(st, key, out, err);
}

int storage_list(storage *st, const char *prefix, bool recursive, storage_list_cb cb, void *ctx,
                 sv_error *err)
{
    if (check_path(st, prefix, true, err) < 0)
        return -1;
    st->stats.lists++;
    return st->backend->list(st, prefix, recursive, cb, ctx, err);
}

int storage_delete(storage *st, const char *const *keys, size_t nkeys, sv_error *err)
{
    for (size_t i = 0; i < nkeys; i++)
        if (check_path(st, keys[i], false, err) < 0)
            return -1;
    if (!nkeys)
        return 0;
    st->stats.delete_calls++;
    st->stats.deleted_keys += nkeys;
    return st->backend->remove(st, keys, nkeys, err);
}

int storage_list_uploads(storage *st, const char *prefix, storage_upload_cb cb, void *ctx, sv_error *err)
{
    if (!st->backend->list_uploads)
        return 0;
    st->stats.upload_lists++;
    return st->backend->list_uploads(st, prefix, cb, ctx, err);
}

int storage_abort_upload(storage *st, const storage_upload *upload, sv_error *err)
{
    if (!st->backend->abort_upload)
        return 0;
    st->stats.upload_aborts++;
    return st->backend->abort_upload(st, upload, err);
}

const storage_stats *storage_get_stats(const storage *st)
{
    return &st->stats;
}
