/* Backend choice by URL scheme, key rules shared by every backend, and the
 * small-object helpers built on the streaming calls. */
#include "storage/storage_intern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/text.h"

#define URL_HELP "use file:///path or s3://bucket/prefix"

/* How many skipped keys a storage handle names before it only counts. */
#define SKIPPED_NAMED 100

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
    for (size_t i = 0; i < st->nskipped; i++)
        free(st->skipped[i]);
    free(st->skipped);
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
 * segment (a local backend would otherwise escape its root), no segment
 * starting with '.', which backends reserve for their temporary objects
 * (and which a listing therefore skips), valid UTF-8 without control
 * characters (what a manifest accepts; XML 1.0, hence a DeleteObjects
 * request, cannot carry most of them). A prefix may also be "" and may end
 * with '/', and its last segment may be partial.
 * Returns why key breaks them, or NULL when it does not.
 */
static const char *key_problem(const char *key, bool is_prefix)
{
    if (!*key)
        return is_prefix ? NULL : "it is empty";
    if (key[0] == '/')
        return "it starts with '/'";
    for (const char *c = key; *c; c++)
        if ((unsigned char)*c < 0x20)
            return "it has a control character";
    if (!utf8_valid(key))
        return "it is not valid UTF-8";
    const char *seg = key;
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
        bool last = !slash;
        if (n == 0 && !(last && is_prefix))
            return "it has an empty segment";
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return "it has a '.' or '..' segment";
        if (n > 0 && seg[0] == '.')
            return "a segment starts with '.', which is reserved for temporary files";
        if (last)
            return NULL;
        seg = slash + 1;
    }
}

/* key for a message: printable ASCII as it is, '\' doubled, any other byte
 * as \xNN, so that a key read from storage cannot inject terminal escapes
 * or break a log line. Newly allocated. */
static char *escape_key(const char *key)
{
    char *out = xmalloc(4 * strlen(key) + 1);
    size_t o = 0;
    for (const unsigned char *c = (const unsigned char *)key; *c; c++) {
        if (*c == '\\') {
            out[o++] = '\\';
            out[o++] = '\\';
        } else if (*c >= 0x20 && *c < 0x7F) {
            out[o++] = (char)*c;
        } else {
            o += (size_t)snprintf(out + o, 5, "\\x%02x", *c);
        }
    }
    out[o] = '\0';
    return out;
}

static int check_path(const storage *st, const char *key, bool is_prefix, sv_error *err)
{
    const char *what = is_prefix ? "prefix" : "key";
    if (!key)
        return sv_error_set(err, SV_EXIT_FAILED, "storage %s: no %s given", st->url, what);
    if (!*key && !is_prefix)
        return sv_error_set(err, SV_EXIT_FAILED, "storage %s: empty key", st->url);
    const char *why = key_problem(key, is_prefix);
    if (!why)
        return 0;
    char *shown = escape_key(key);
    sv_error_set(err, SV_EXIT_FAILED, "storage %s: invalid %s '%s': %s", st->url, what, shown, why);
    free(shown);
    return -1;
}

void storage_skip_key(storage *st, const char *what, const char *key, const char *why)
{
    for (size_t i = 0; i < st->nskipped; i++)
        if (strcmp(st->skipped[i], key) == 0)
            return; /* said once: the next listing of the same run meets it again */
    if (st->nskipped == SKIPPED_NAMED) {
        if (!st->skipped_more)
            log_warn("storage %s: more keys that sauve cannot use were found and skipped; they are not "
                     "named one by one",
                     st->url);
        st->skipped_more = true;
        return;
    }
    st->skipped = xrealloc(st->skipped, (st->nskipped + 1) * sizeof *st->skipped);
    st->skipped[st->nskipped++] = xstrdup(key);
    char *shown = escape_key(key);
    log_with(LOG_WARN, LOG_FIELDS(LOG_STR("key", shown)),
             "storage %s: skipping the %s '%s': %s, which no key sauve writes has; it is left as it is, "
             "and list, prune and restore ignore it",
             st->url, what, shown, why);
    free(shown);
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

/* A listing passes on only keys that the other calls accept: a foreign
 * object whose key breaks the rules (a control character, "a//b", which the
 * catalog would make an absolute path) is reported and skipped, and
 * everything else is listed as usual. */
struct list_filter {
    storage *st;
    storage_list_cb cb;
    void *ctx;
};

static int filter_entry(void *ctx, const storage_entry *e)
{
    struct list_filter *f = ctx;
    const char *why = key_problem(e->key, e->is_prefix);
    if (why) {
        storage_skip_key(f->st, e->is_prefix ? "prefix" : "object", e->key, why);
        return 0;
    }
    return f->cb(f->ctx, e);
}

int storage_list(storage *st, const char *prefix, bool recursive, storage_list_cb cb, void *ctx,
                 sv_error *err)
{
    if (check_path(st, prefix, true, err) < 0)
        return -1;
    st->stats.lists++;
    struct list_filter f = {.st = st, .cb = cb, .ctx = ctx};
    return st->backend->list(st, prefix, recursive, filter_entry, &f, err);
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

struct upload_filter {
    storage *st;
    storage_upload_cb cb;
    void *ctx;
};

static int filter_upload(void *ctx, const storage_upload *u)
{
    struct upload_filter *f = ctx;
    const char *why = key_problem(u->key, false);
    if (why) {
        storage_skip_key(f->st, "interrupted write", u->key, why);
        return 0;
    }
    return f->cb(f->ctx, u);
}

int storage_list_uploads(storage *st, const char *prefix, storage_upload_cb cb, void *ctx, sv_error *err)
{
    if (!st->backend->list_uploads)
        return 0;
    st->stats.upload_lists++;
    struct upload_filter f = {.st = st, .cb = cb, .ctx = ctx};
    return st->backend->list_uploads(st, prefix, filter_upload, &f, err);
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
