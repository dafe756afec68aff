/*
 * The file:// backend: objects are files under a root directory, keys are
 * relative paths. An object appears under its key only by rename() of a
 * fully written and fsynced hidden temp file, so a crash leaves either the
 * old object, the new one, or a hidden leftover, never a partial object.
 */
#include "storage/storage_intern.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/signals.h"

#define IO_CHUNK (1024 * 1024)
#define DIR_MODE 0750
/* Group-readable like the directories, so that a restore Job sharing the
 * volume's group (Kubernetes fsGroup) can read what the backup wrote. */
#define FILE_MODE 0640
/* Room left in a 255-byte file name for ".", ".tmp-XXXXXX" around the base name. */
#define TMP_BASE_MAX 200

struct local {
    char *root; /* absolute, no trailing '/'; "" for the filesystem root */
};

static struct local *impl(storage *st)
{
    return st->impl;
}

static char *key_path(storage *st, const char *key)
{
    return xasprintf("%s/%s", impl(st)->root, key);
}

static const char *root_dir(storage *st)
{
    return *impl(st)->root ? impl(st)->root : "/";
}

/* Runtime conditions an operator fixes (permissions, read-only or full
 * volume) versus a wrong setting (the path is not a directory). */
static int errno_exit_code(int e)
{
    /* permissions and a read-only mount do not fix themselves: retrying the
     * Job cannot help, so they are configuration errors */
    return e == ENOTDIR || e == ENAMETOOLONG || e == ELOOP || e == EACCES || e == EPERM || e == EROFS
               ? SV_EXIT_CONFIG
               : SV_EXIT_TEMPFAIL;
}

/* mkdir -p, touching only the missing components: an existing ancestor may
 * be unwritable or read-only. Returns 0 or -1 with errno set. */
static int mkdirs(char *path)
{
    if (mkdir(path, DIR_MODE) == 0 || errno == EEXIST)
        return 0;
    char *slash = strrchr(path, '/');
    if (errno != ENOENT || !slash || slash == path)
        return -1;
    *slash = '\0';
    int rc = mkdirs(path);
    *slash = '/';
    if (rc < 0)
        return -1;
    return mkdir(path, DIR_MODE) == 0 || errno == EEXIST ? 0 : -1;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* ---- check ----------------------------------------------------------- */

/* Creates and removes a probe file in dir: the only reliable test of
 * writability (access() misses read-only mounts under some runtimes and
 * ignores a full disk). */
static int probe(storage *st, const char *dir, sv_error *err)
{
    char *tmpl = xasprintf("%s/.sauve-check-XXXXXX", strcmp(dir, "/") ? dir : "");
    int fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        sv_error_set(err, errno_exit_code(e), "storage %s: cannot create a file in %s: %s", st->url, dir,
                     strerror(e));
        free(tmpl);
        return -1;
    }
    close(fd);
    unlink(tmpl);
    free(tmpl);
    return 0;
}

static int local_check(storage *st, sv_error *err)
{
    const char *root = root_dir(st);
    struct stat sb;
    if (stat(root, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_STORAGE: %s is not a directory", root);
        return probe(st, root, err);
    }
    if (errno != ENOENT)
        return sv_error_set(err, errno_exit_code(errno), "storage %s: cannot access %s: %s", st->url, root,
                            strerror(errno));

    /* Missing: the first write creates it. Check without creating anything
     * that the nearest existing ancestor is a directory we can write in. */
    char *anc = xstrdup(root);
    int rc;
    for (;;) {
        char *slash = strrchr(anc, '/');
        if (slash == anc)
            anc[1] = '\0';
        else
            *slash = '\0';
        if (stat(anc, &sb) == 0) {
            if (!S_ISDIR(sb.st_mode))
                rc = sv_error_set(err, SV_EXIT_CONFIG,
                                  "SAUVE_STORAGE: cannot create %s: %s is not a directory", root, anc);
            else
                rc = probe(st, anc, err);
            break;
        }
        if (errno != ENOENT) {
            rc = sv_error_set(err, errno_exit_code(errno), "storage %s: cannot access %s: %s", st->url, anc,
                              strerror(errno));
            break;
        }
    }
    if (rc < 0)
        sv_error_hint(err, "sauve creates %s on the first backup; check the volume mount and its permissions",
                      root);
    free(anc);
    return rc;
}

/* ---- write ----------------------------------------------------------- */

struct local_writer {
    stream base;
    storage *st;
    char *key;
    char *path; /* final name */
    char *tmp;  /* hidden temp name in the same directory, so rename is atomic */
    char *dir;
    int fd;
    bool committed;
    char *buf;
    size_t used;
};

static int lw_fail(struct local_writer *w, const char *what, sv_error *err)
{
    return sv_error_set(err, SV_EXIT_FAILED, "storage %s: cannot %s %s: %s", w->st->url, what, w->key,
                        strerror(errno));
}

static int lw_flush(struct local_writer *w, sv_error *err)
{
    const char *p = w->buf;
    while (w->used > 0) {
        ssize_t n = write(w->fd, p, w->used);
        if (n < 0) {
            if (errno != EINTR)
                return lw_fail(w, "write", err);
            if (signals_check(err) < 0)
                return -1;
            continue;
        }
        p += n;
        w->used -= (size_t)n;
    }
    return 0;
}

static int lw_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct local_writer *w = (struct local_writer *)s;
    const char *p = buf;
    if (w->fd < 0)
        return sv_error_set(err, SV_EXIT_FAILED, "storage %s: write to %s after it was closed", w->st->url,
                            w->key);
    while (len > 0) {
        size_t n = IO_CHUNK - w->used < len ? IO_CHUNK - w->used : len;
        memcpy(w->buf + w->used, p, n);
        w->used += n;
        p += n;
        len -= n;
        if (w->used == IO_CHUNK && lw_flush(w, err) < 0)
            return -1;
    }
    return 0;
}

static int lw_finish(stream *s, sv_error *err)
{
    struct local_writer *w = (struct local_writer *)s;
    if (w->fd < 0)
        return sv_error_set(err, SV_EXIT_FAILED, "storage %s: finish of %s after it was closed", w->st->url,
                            w->key);
    if (lw_flush(w, err) < 0)
        return -1;
    if (fsync(w->fd) < 0)
        return lw_fail(w, "sync", err);
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) < 0 && errno != EINTR)
        return lw_fail(w, "close", err);
    if (rename(w->tmp, w->path) < 0)
        return lw_fail(w, "commit", err);
    w->committed = true;
    /* Without this the rename itself may not survive a crash. */
    if (fsync_dir(w->dir) < 0)
        return lw_fail(w, "sync the directory of", err);
    return 0;
}

static void lw_abort(stream *s)
{
    struct local_writer *w = (struct local_writer *)s;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (!w->committed && w->tmp) {
        unlink(w->tmp);
        free(w->tmp);
        w->tmp = NULL;
    }
}

static void lw_destroy(stream *s)
{
    struct local_writer *w = (struct local_writer *)s;
    /* Freed without finish or abort: discard, as abort would. */
    lw_abort(s);
    free(w->key);
    free(w->path);
    free(w->tmp);
    free(w->dir);
    free(w->buf);
    free(w);
}

static const struct stream_ops lw_ops = {lw_write, lw_finish, lw_abort, lw_destroy};

static stream *local_write(storage *st, const char *key, sv_error *err)
{
    struct local_writer *w = xcalloc(1, sizeof *w);
    w->base = (stream){.ops = &lw_ops, .next = NULL, .name = "storage"};
    w->st = st;
    w->fd = -1;
    w->key = xstrdup(key);
    w->path = key_path(st, key);
    const char *slash = strrchr(w->path, '/');
    int dirlen = (int)(slash - w->path);
    w->dir = dirlen ? xstrndup(w->path, (size_t)dirlen) : xstrdup("/");
    w->tmp = xasprintf("%.*s/.%.*s.tmp-XXXXXX", dirlen, w->path, TMP_BASE_MAX, slash + 1);
    size_t tmp_len = strlen(w->tmp);

    /* Two tries: a concurrent delete may remove a directory that has just
     * become empty between our mkdir and mkstemp. */
    for (int attempt = 0; attempt < 2 && w->fd < 0; attempt++) {
        if (mkdirs(w->dir) < 0) {
            sv_error_set(err, errno_exit_code(errno), "storage %s: cannot create the directory of %s: %s",
                         st->url, key, strerror(errno));
            goto fail;
        }
        memcpy(w->tmp + tmp_len - 6, "XXXXXX", 6);
        w->fd = mkostemp(w->tmp, O_CLOEXEC);
        if (w->fd < 0 && errno != ENOENT)
            break;
    }
    if (w->fd < 0) {
        sv_error_set(err, errno_exit_code(errno), "storage %s: cannot create a temporary file for %s: %s",
                     st->url, key, strerror(errno));
        goto fail;
    }
    fchmod(w->fd, FILE_MODE);
    w->buf = xmalloc(IO_CHUNK);
    return &w->base;

fail:
    free(w->tmp);
    w->tmp = NULL; /* nothing was created: abort must not unlink */
    lw_destroy(&w->base);
    return NULL;
}

/* ---- read, stat ------------------------------------------------------ */

static int local_read(storage *st, const char *key, stream *sink, sv_error *err)
{
    char *path = key_path(st, key);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    int rc = -1;
    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0 || errno == ENOENT || errno == ENOTDIR)
            sv_error_set(err, SV_EXIT_FAILED, "object %s not found in %s", key, st->url);
        else
            sv_error_set(err, SV_EXIT_FAILED, "storage %s: cannot open %s: %s", st->url, key,
                         strerror(errno));
        goto out;
    }
    char *buf = xmalloc(IO_CHUNK);
    for (;;) {
        if (signals_check(err) < 0)
            break;
        ssize_t n = read(fd, buf, IO_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            sv_error_set(err, SV_EXIT_FAILED, "storage %s: cannot read %s: %s", st->url, key,
                         strerror(errno));
            break;
        }
        if (n == 0) {
            rc = 0;
            break;
        }
        if (stream_write(sink, buf, (size_t)n, err) < 0) {
            sv_error_wrap(err, "object %s", key);
            break;
        }
    }
    free(buf);
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

static int local_stat(storage *st, const char *key, storage_entry *out, sv_error *err)
{
    char *path = key_path(st, key);
    struct stat sb;
    int rc = lstat(path, &sb);
    int e = errno;
    free(path);
    if (rc < 0) {
        if (e == ENOENT || e == ENOTDIR)
            return 1;
        return sv_error_set(err, SV_EXIT_FAILED, "storage %s: cannot stat %s: %s", st->url, key, strerror(e));
    }
    /* A directory is a prefix, not an object (as on S3). */
    if (!S_ISREG(sb.st_mode))
        return 1;
    if (out)
        *out = (storage_entry){.key = key, .size = (uint64_t)sb.st_size, .mtime = sb.st_mtim.tv_sec};
    return 0;
}

/* ---- list ------------------------------------------------------------ */

struct dirent_info {
    char *name;
    char *sort; /* name, plus '/' for a directory: see list_dir */
    bool is_dir;
    uint64_t size;
    int64_t mtime;
};

static int by_sort(const void *a, const void *b)
{
    return strcmp(((const struct dirent_info *)a)->sort, ((const struct dirent_info *)b)->sort);
}

struct list_ctx {
    storage *st;
    bool recursive;
    storage_list_cb cb;
    void *cbctx;
    sv_error *err;
};

/*
 * Lists directory `rel` (a key prefix ending in '/', or "") for entries whose
 * name starts with `match`. Returns 0, 1 when the callback asked to stop, or
 * -1 on error.
 *
 * Sorting each directory by name with '/' appended to directory names makes
 * this depth-first walk emit keys in plain lexicographic order, the order S3
 * lists in: "a-b" < "a/x" because '-' < '/'.
 */
static int list_dir(struct list_ctx *lc, const char *rel, const char *match)
{
    char *path = xasprintf("%s/%s", impl(lc->st)->root, rel);
    DIR *d = opendir(path);
    if (!d) {
        int e = errno;
        free(path);
        /* No directory: no keys under this prefix, as S3 would answer. */
        if (e == ENOENT || e == ENOTDIR)
            return 0;
        return sv_error_set(lc->err, SV_EXIT_FAILED, "storage %s: cannot list %s: %s", lc->st->url,
                            *rel ? rel : "/", strerror(e));
    }

    struct dirent_info *ents = NULL;
    size_t n = 0, cap = 0;
    size_t mlen = strlen(match);
    int rc = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        /* Hidden names are temp files and probes (keys never start with '.'). */
        if (de->d_name[0] == '.' || strncmp(de->d_name, match, mlen) != 0)
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue; /* removed while we list */
            rc = sv_error_set(lc->err, SV_EXIT_FAILED, "storage %s: cannot stat %s%s: %s", lc->st->url, rel,
                              de->d_name, strerror(errno));
            break;
        }
        /* Only files and directories: a symlink could lead outside the root
         * or into a loop. */
        if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            ents = xrealloc(ents, cap * sizeof *ents);
        }
        bool is_dir = S_ISDIR(sb.st_mode);
        ents[n++] = (struct dirent_info){
            .name = xstrdup(de->d_name),
            .sort = xasprintf("%s%s", de->d_name, is_dir ? "/" : ""),
            .is_dir = is_dir,
            .size = is_dir ? 0 : (uint64_t)sb.st_size,
            .mtime = sb.st_mtim.tv_sec,
        };
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = sv_error_set(lc->err, SV_EXIT_FAILED, "storage %s: cannot list %s: %s", lc->st->url,
                          *rel ? rel : "/", strerror(errno));
    closedir(d);
    free(path);

    if (ents)
        qsort(ents, n, sizeof *ents, by_sort);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *key = xasprintf("%s%s", rel, ents[i].sort);
        if (ents[i].is_dir && lc->recursive) {
            rc = list_dir(lc, key, "");
        } else {
            storage_entry e = {
                .key = key, .size = ents[i].size, .mtime = ents[i].mtime, .is_prefix = ents[i].is_dir};
            if (lc->cb(lc->cbctx, &e) != 0)
                rc = 1;
        }
        free(key);
    }
    for (size_t i = 0; i < n; i++) {
        free(ents[i].name);
        free(ents[i].sort);
    }
    free(ents);
    return rc;
}

static int local_list(storage *st, const char *prefix, bool recursive, storage_list_cb cb, void *ctx,
                      sv_error *err)
{
    /* S3 prefix semantics: "a/b" matches "a/b.txt", "a/bc/..." and "a/b/...";
     * so list the directory "a/" for names starting with "b". */
    const char *slash = strrchr(prefix, '/');
    size_t dlen = slash ? (size_t)(slash - prefix) + 1 : 0;
    char *rel = xstrndup(prefix, dlen);
    struct list_ctx lc = {st, recursive, cb, ctx, err};
    int rc = list_dir(&lc, rel, prefix + dlen);
    free(rel);
    return rc < 0 ? -1 : 0;
}

/* ---- remove ---------------------------------------------------------- */

/* Removes the directories of key that are now empty, deepest first, up to
 * (not including) the root, so that a deleted set leaves nothing behind. */
static void prune_dirs(storage *st, const char *key)
{
    char *path = key_path(st, key);
    size_t rootlen = strlen(impl(st)->root);
    for (;;) {
        char *slash = strrchr(path, '/');
        if (!slash || (size_t)(slash - path) <= rootlen)
            break;
        *slash = '\0';
        if (rmdir(path) < 0 && errno != ENOENT)
            break; /* not empty (or not ours to remove): its parents are not empty either */
    }
    free(path);
}

static int local_remove(storage *st, const char *const *keys, size_t nkeys, sv_error *err)
{
    size_t failed = 0;
    for (size_t i = 0; i < nkeys; i++) {
        char *path = key_path(st, keys[i]);
        int rc = unlink(path);
        int e = errno;
        free(path);
        /* Absent, or a directory (a prefix, not an object): nothing to delete. */
        if (rc < 0 && e != ENOENT && e != ENOTDIR && e != EISDIR) {
            if (failed++ == 0)
                sv_error_set(err, SV_EXIT_FAILED, "storage %s: cannot delete %s: %s", st->url, keys[i],
                             strerror(e));
            continue;
        }
        prune_dirs(st, keys[i]);
    }
    if (failed > 1)
        sv_error_wrap(err, "%zu of %zu deletions failed, the first", failed, nkeys);
    return failed ? -1 : 0;
}

/* ---- interrupted writes ---------------------------------------------- */

/* Whether name is a temp file of local_write: ".BASE.tmp-XXXXXX". Writes
 * BASE's length into *base_len. */
static bool is_tmp_name(const char *name, size_t *base_len)
{
    static const char suffix[] = ".tmp-XXXXXX";
    size_t len = strlen(name), slen = sizeof suffix - 1;
    if (name[0] != '.' || len < 1 + 1 + slen || strncmp(name + len - slen, ".tmp-", 5) != 0)
        return false;
    *base_len = len - 1 - slen;
    return true;
}

struct uploads_ctx {
    storage *st;
    const char *prefix;
    storage_upload_cb cb;
    void *cbctx;
    sv_error *err;
};

/* Walks directory rel ("" or ending in '/') for temp files whose key starts
 * with the prefix. Returns 0, 1 when the callback asked to stop, -1 on error. */
static int walk_uploads(struct uploads_ctx *uc, const char *rel)
{
    char *path = xasprintf("%s/%s", impl(uc->st)->root, rel);
    DIR *d = opendir(path);
    free(path);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return sv_error_set(uc->err, SV_EXIT_FAILED, "storage %s: cannot list %s: %s", uc->st->url,
                            *rel ? rel : "/", strerror(errno));
    }
    size_t rlen = strlen(rel), plen = strlen(uc->prefix);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* removed while we walk */
        size_t base_len;
        if (S_ISDIR(sb.st_mode) && name[0] != '.') {
            char *sub = xasprintf("%s%s/", rel, name);
            /* Only directories that can hold keys under the prefix. */
            size_t n = strlen(sub);
            if (strncmp(sub, uc->prefix, n < plen ? n : plen) == 0)
                rc = walk_uploads(uc, sub);
            free(sub);
        } else if (S_ISREG(sb.st_mode) && is_tmp_name(name, &base_len)) {
            char *key = xasprintf("%.*s%.*s", (int)rlen, rel, (int)base_len, name + 1);
            char *id = xasprintf("%s%s", rel, name);
            if (strncmp(key, uc->prefix, plen) == 0) {
                storage_upload u = {.key = key, .id = id, .started = sb.st_mtim.tv_sec};
                if (uc->cb(uc->cbctx, &u) != 0)
                    rc = 1;
            }
            free(key);
            free(id);
        }
    }
    closedir(d);
    return rc;
}

/* A local write has no separate start time: the temp file's modification
 * time, which every write refreshes, stands for it, so a slow write in
 * progress looks young, as it should. */
static int local_list_uploads(storage *st, const char *prefix, storage_upload_cb cb, void *ctx, sv_error *err)
{
    const char *slash = strrchr(prefix, '/');
    char *rel = xstrndup(prefix, slash ? (size_t)(slash - prefix) + 1 : 0);
    struct uploads_ctx uc = {st, prefix, cb, ctx, err};
    int rc = walk_uploads(&uc, rel);
    free(rel);
    return rc < 0 ? -1 : 0;
}

static int local_abort_upload(storage *st, const storage_upload *upload, sv_error *err)
{
    /* The id comes from our own listing, but it is a path: refuse anything
     * but a temp file name under the root. */
    const char *id = upload->id;
    const char *base = strrchr(id, '/');
    base = base ? base + 1 : id;
    size_t base_len;
    if (id[0] == '/' || strstr(id, "../") || !is_tmp_name(base, &base_len))
        return sv_error_set(err, SV_EXIT_FAILED, "storage %s: '%s' is not an interrupted write", st->url, id);
    char *path = key_path(st, id);
    int rc = unlink(path);
    int e = errno;
    free(path);
    if (rc < 0 && e != ENOENT)
        return sv_error_set(err, SV_EXIT_FAILED, "storage %s: cannot remove the interrupted write %s: %s",
                            st->url, id, strerror(e));
    prune_dirs(st, id);
    return 0;
}

/* ---- open ------------------------------------------------------------ */

static void local_close(storage *st)
{
    struct local *l = impl(st);
    if (l)
        free(l->root);
    free(l);
    st->impl = NULL;
}

static const struct storage_backend local_backend = {
    .scheme = "file",
    .check = local_check,
    .write = local_write,
    .read = local_read,
    .stat = local_stat,
    .list = local_list,
    .remove = local_remove,
    .list_uploads = local_list_uploads,
    .abort_upload = local_abort_upload,
    .close = local_close,
};

int storage_local_open(storage *st, const char *path, sv_error *err)
{
    if (!path || path[0] != '/')
        return sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_STORAGE: '%s' is not an absolute path",
                            path ? path : "");
    size_t len = strlen(path);
    while (len > 0 && path[len - 1] == '/')
        len--; /* "file:///" is the root itself, kept as "" */
    struct local *l = xcalloc(1, sizeof *l);
    l->root = xstrndup(path, len);
    st->backend = &local_backend;
    st->impl = l;
    return 0;
}
