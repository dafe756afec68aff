/*
 * The files source: each tree walked and written as a POSIX pax archive
 * into the pipeline while it is read, with no temp file.
 *
 * The walk never follows a symbolic link and never resolves a path from
 * the top again: every entry is reached from its directory's descriptor
 * (openat, fstatat with AT_SYMLINK_NOFOLLOW, O_NOFOLLOW), so a link swapped
 * in while the walk runs cannot lead it out of the tree. Entries are
 * archived in byte order of their names, so that an unchanged tree gives
 * the same archive.
 *
 * Live trees: a file's size is taken from fstat of the opened file before
 * reading, and exactly that many bytes are archived (zeros if it shrank,
 * the rest left out if it grew). A file that changed while it was read, or
 * vanished between the listing and its reading, is a warning recorded in
 * the manifest, not a failure: the set is as good as the tree was.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "sources/files.h"

#define READ_CHUNK (256 * 1024)
/* The manifest lists this many warnings, then how many more there were. */
#define MAX_LISTED 50
/* The CACHEDIR.TAG convention (https://bford.info/cachedir/). */
#define CACHEDIR_SIGNATURE "Signature: 8a477f597d28d172789f06886806bc55"

struct files_source {
    const sv_config *cfg;
    struct files_tree *trees;
    size_t n_trees;
    /* one tree given directly (files_source_for), not the configuration's */
    char *only_name, *only_path;
};

/* Where a tree's walk is. */
struct walk {
    const struct files_tree *tree;
    const sv_config *cfg;
    struct archive *ar;
    stream *out;
    sv_error werr; /* the pipeline's error, when a write into out failed */
    dev_t root_dev;
    char **excludes; /* the tree's patterns and its exclude file's */
    size_t n_excludes;
    unsigned char *buf;
    /* hard links: (dev, ino) of each file with more than one link already
     * archived, and the path it was archived under */
    struct link {
        dev_t dev;
        ino_t ino;
        char *path;
    } * links;
    size_t n_links, cap_links;
    /* what went wrong */
    char **unreadable;
    size_t n_unreadable;
    char **warnings;
    size_t n_warnings;
    int64_t entries, files;
    uint64_t file_bytes;
    /* the last uid and gid named, so that a tree of one owner asks once */
    uid_t uid;
    gid_t gid;
    char uname[64], gname[64];
    bool have_uid, have_gid;
    bool fatal; /* the archive or the pipeline failed: stop */
};

static void add(char ***list, size_t *n, char *s)
{
    *list = xrealloc(*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = s;
}

static void warn_file(struct walk *w, const char *rel, const char *what)
{
    log_warn("files:%s: %s %s", w->tree->name, rel, what);
    add(&w->warnings, &w->n_warnings, xasprintf("%s %s", rel, what));
}

static void unreadable(struct walk *w, const char *rel, int errnum)
{
    log_with(LOG_ERROR, LOG_FIELDS(LOG_STR("tree", w->tree->name), LOG_STR("path", rel)),
             "files:%s: cannot read %s: %s", w->tree->name, rel, strerror(errnum));
    add(&w->unreadable, &w->n_unreadable, xasprintf("%s (%s)", rel, strerror(errnum)));
}

static la_ssize_t write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct walk *w = ctx;
    if (stream_write(w->out, buf, len, &w->werr) != 0) {
        archive_set_error(a, EIO, "%s", w->werr.msg);
        return -1;
    }
    return (la_ssize_t)len;
}

static bool excluded(const struct walk *w, const char *rel, const char *base, bool is_dir)
{
    for (size_t i = 0; i < w->n_excludes; i++)
        if (files_exclude_match(w->excludes[i], rel, base, is_dir))
            return true;
    return false;
}

static void set_owner_names(struct walk *w, struct archive_entry *e, const struct stat *st)
{
    if (!w->have_uid || w->uid != st->st_uid) {
        struct passwd pw, *res = NULL;
        char b[1024];
        w->uname[0] = '\0';
        if (getpwuid_r(st->st_uid, &pw, b, sizeof b, &res) == 0 && res)
            snprintf(w->uname, sizeof w->uname, "%s", res->pw_name);
        w->uid = st->st_uid;
        w->have_uid = true;
    }
    if (!w->have_gid || w->gid != st->st_gid) {
        struct group gr, *res = NULL;
        char b[4096];
        w->gname[0] = '\0';
        if (getgrgid_r(st->st_gid, &gr, b, sizeof b, &res) == 0 && res)
            snprintf(w->gname, sizeof w->gname, "%s", res->gr_name);
        w->gid = st->st_gid;
        w->have_gid = true;
    }
    if (w->uname[0])
        archive_entry_copy_uname(e, w->uname);
    if (w->gname[0])
        archive_entry_copy_gname(e, w->gname);
}

/* An entry for st at rel: type, mode, ids, mtime to the nanosecond. No
 * atime or ctime: they change when the tree is only read, and would make
 * two archives of one unchanged tree differ. */
static struct archive_entry *entry_for(struct walk *w, const char *rel, const struct stat *st)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_copy_pathname(e, rel);
    archive_entry_copy_stat(e, st);
    archive_entry_unset_atime(e);
    archive_entry_unset_ctime(e);
    archive_entry_unset_birthtime(e);
    archive_entry_set_ino(e, 0);
    archive_entry_set_dev(e, 0);
    archive_entry_set_nlink(e, 0);
    if (!S_ISREG(st->st_mode))
        archive_entry_set_size(e, 0);
    /* a restore sets no setuid bit, nor setgid but on a directory (from a
     * forged archive they are an attack): stored, the set would not restore */
    mode_t drop = (st->st_mode & S_ISUID) | (S_ISDIR(st->st_mode) ? 0 : st->st_mode & S_ISGID);
    if (drop) {
        archive_entry_set_perm(e, st->st_mode & 07777 & ~drop);
        warn_file(w, rel,
                  drop & S_ISUID ? "has the setuid bit, which a restore does not set: archived without it"
                                 : "has the setgid bit, which a restore does not set on a file: archived "
                                   "without it");
    }
    set_owner_names(w, e, st);
    return e;
}

/* With files.xattrs, the attributes of the open file or directory fd. One
 * that cannot be read is a warning: the entry is archived without them. */
struct left_out {
    struct walk *w;
    const char *rel;
};

static void xattr_left_out(void *ctx, const char *name, const char *why)
{
    struct left_out *l = ctx;
    char what[400];
    snprintf(what, sizeof what, "has the extended attribute %.255s, which %s: archived without it", name,
             why);
    warn_file(l->w, l->rel, what);
}

static void add_xattrs(struct walk *w, struct archive_entry *e, int fd, const char *rel)
{
    struct left_out l = {w, rel};
    if (!w->cfg->files_xattrs || files_xattrs_read(fd, e, xattr_left_out, &l) == 0)
        return;
    char what[200];
    snprintf(what, sizeof what, "has extended attributes that could not be read (%s): archived without them",
             strerror(errno));
    archive_entry_xattr_clear(e);
    warn_file(w, rel, what);
}

/* Writes e's header; false when the walk must stop. A header libarchive
 * refuses for this entry alone (ARCHIVE_FAILED) leaves the entry out, as
 * a warning. */
static bool write_header(struct walk *w, struct archive_entry *e, const char *rel)
{
    int r = archive_write_header(w->ar, e);
    if (r == ARCHIVE_OK || r == ARCHIVE_WARN) {
        w->entries++;
        return true;
    }
    if (r == ARCHIVE_FAILED) {
        warn_file(w, rel, "was left out: the archive cannot hold it");
        log_warn("files:%s: %s: %s", w->tree->name, rel, archive_error_string(w->ar));
        return true;
    }
    w->fatal = true;
    return false;
}

/* The hard links seen: an open-addressing table on (dev, ino), so that a
 * tree of many linked files is not a quadratic walk. */
static size_t link_slot(const struct walk *w, dev_t dev, ino_t ino)
{
    uint64_t h = ((uint64_t)ino * 0x9e3779b97f4a7c15u) ^ ((uint64_t)dev * 0xc2b2ae3d27d4eb4fu);
    size_t i = (size_t)(h ^ (h >> 29)) & (w->cap_links - 1);
    while (w->links[i].path && !(w->links[i].ino == ino && w->links[i].dev == dev))
        i = (i + 1) & (w->cap_links - 1);
    return i;
}

static const char *find_link(const struct walk *w, const struct stat *st)
{
    if (!w->cap_links)
        return NULL;
    return w->links[link_slot(w, st->st_dev, st->st_ino)].path;
}

static void remember_link(struct walk *w, const struct stat *st, const char *rel)
{
    if (2 * (w->n_links + 1) > w->cap_links) {
        struct link *old = w->links;
        size_t old_cap = w->cap_links;
        w->cap_links = old_cap ? 2 * old_cap : 64;
        w->links = xcalloc(w->cap_links, sizeof *w->links);
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].path)
                w->links[link_slot(w, old[i].dev, old[i].ino)] = old[i];
        free(old);
    }
    size_t i = link_slot(w, st->st_dev, st->st_ino);
    if (w->links[i].path)
        return;
    w->links[i] = (struct link){st->st_dev, st->st_ino, xstrdup(rel)};
    w->n_links++;
}

struct region {
    uint64_t off, len;
};

/* The data regions of a file with holes (SEEK_DATA/SEEK_HOLE), into *map;
 * 0 for a file without holes, or when the file system cannot say, or has
 * too many regions to be worth a map: the file is then stored whole. */
static size_t sparse_map(int fd, const struct stat *st, struct region **map)
{
    *map = NULL;
    if (st->st_size < 64 * 1024 || (uint64_t)st->st_blocks * 512 >= (uint64_t)st->st_size)
        return 0;
    size_t n = 0, cap = 0;
    off_t off = 0;
    while (off < st->st_size) {
        off_t data = lseek(fd, off, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break; /* only a hole is left */
        if (data < 0 || data >= st->st_size)
            break;
        off_t hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0) {
            n = 0;
            break;
        }
        if (hole > st->st_size)
            hole = st->st_size;
        if (n == 4096) {
            n = 0;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            *map = xrealloc(*map, cap * sizeof **map);
        }
        (*map)[n++] = (struct region){(uint64_t)data, (uint64_t)(hole - data)};
        off = hole;
    }
    if (n == 0 && off == 0 && lseek(fd, 0, SEEK_DATA) < 0 && errno == ENXIO) {
        /* all hole: one empty region at the end says so */
        *map = xrealloc(*map, sizeof **map);
        (*map)[n++] = (struct region){(uint64_t)st->st_size, 0};
    }
    if (n == 0) {
        free(*map);
        *map = NULL;
    }
    return n;
}

/* A regular file: opened without following a link, its size fixed by
 * fstat, exactly that many bytes archived. */
static void archive_file(struct walk *w, int dirfd, const char *name, const char *rel, const struct stat *lst)
{
    if (lst->st_nlink > 1) {
        const char *first = find_link(w, lst);
        if (first) {
            struct archive_entry *e = entry_for(w, rel, lst);
            archive_entry_set_size(e, 0);
            archive_entry_copy_hardlink(e, first);
            write_header(w, e, rel);
            archive_entry_free(e);
            return;
        }
    }
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            warn_file(w, rel, "vanished before it was read: left out");
        else if (errno == ELOOP)
            warn_file(w, rel, "was replaced by a symbolic link before it was read: left out");
        else
            unreadable(w, rel, errno);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        warn_file(w, rel, "was replaced by another kind of file before it was read: left out");
        close(fd);
        return;
    }
    struct archive_entry *e = entry_for(w, rel, &st);
    add_xattrs(w, e, fd, rel);
    struct region *map = NULL;
    size_t n_map = sparse_map(fd, &st, &map);
    for (size_t i = 0; i < n_map; i++)
        archive_entry_sparse_add_entry(e, (la_int64_t)map[i].off, (la_int64_t)map[i].len);
    if (!write_header(w, e, rel)) {
        archive_entry_free(e);
        free(map);
        close(fd);
        return;
    }
    archive_entry_free(e);
    uint64_t want = (uint64_t)st.st_size, done = 0;
    bool shrank = false;
    int read_errno = 0;
    size_t next = 0; /* the first data region not behind done */
    while (done < want) {
        size_t n = want - done < READ_CHUNK ? (size_t)(want - done) : READ_CHUNK;
        bool hole = false;
        if (n_map) {
            while (next < n_map && map[next].off + map[next].len <= done)
                next++;
            if (next == n_map || map[next].off > done) {
                /* a hole: libarchive counts its bytes and stores none */
                uint64_t end = next == n_map ? want : map[next].off;
                hole = true;
                n = end - done < READ_CHUNK ? (size_t)(end - done) : READ_CHUNK;
            } else if (map[next].off + map[next].len - done < n) {
                n = (size_t)(map[next].off + map[next].len - done);
            }
        }
        ssize_t got = shrank || hole ? 0 : pread(fd, w->buf, n, (off_t)done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            read_errno = errno;
            shrank = true;
            got = 0;
        }
        if (got == 0) {
            /* a hole, or the header promised bytes the file no longer has:
             * zeros keep the archive whole */
            shrank = shrank || !hole;
            memset(w->buf, 0, n);
            got = (ssize_t)n;
        }
        if (archive_write_data(w->ar, w->buf, (size_t)got) < 0) {
            w->fatal = true;
            free(map);
            close(fd);
            return;
        }
        done += (uint64_t)got;
    }
    free(map);
    struct stat after;
    bool changed = fstat(fd, &after) != 0 || after.st_size != st.st_size ||
                   after.st_mtim.tv_sec != st.st_mtim.tv_sec || after.st_mtim.tv_nsec != st.st_mtim.tv_nsec;
    close(fd);
    w->files++;
    w->file_bytes += want;
    if (read_errno) {
        char what[160];
        snprintf(what, sizeof what, "could not be read whole (%s): the rest is zeros", strerror(read_errno));
        warn_file(w, rel, what);
    } else if (shrank) {
        warn_file(w, rel, "shrank while it was read: archived with zeros at its end");
    } else if (changed) {
        warn_file(w, rel, "changed while it was read: archived as read, possibly inconsistent");
    }
    if (st.st_nlink > 1)
        remember_link(w, &st, rel);
}

static void archive_symlink(struct walk *w, int dirfd, const char *name, const char *rel,
                            const struct stat *st)
{
    size_t cap = st->st_size > 0 ? (size_t)st->st_size + 1 : 256;
    char *target = NULL;
    ssize_t n;
    for (;;) {
        target = xrealloc(target, cap);
        n = readlinkat(dirfd, name, target, cap);
        if (n < 0 || (size_t)n < cap)
            break;
        cap *= 2;
    }
    if (n < 0) {
        if (errno == ENOENT)
            warn_file(w, rel, "vanished before it was read: left out");
        else if (errno == EINVAL)
            warn_file(w, rel, "was replaced by another kind of file before it was read: left out");
        else
            unreadable(w, rel, errno);
        free(target);
        return;
    }
    target[n] = '\0';
    struct archive_entry *e = entry_for(w, rel, st);
    archive_entry_copy_symlink(e, target);
    write_header(w, e, rel);
    archive_entry_free(e);
    free(target);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory fd (which it does not close), sorted. NULL with
 * errno when it cannot be listed. */
static char **list_dir(int fd, size_t *n)
{
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    /* the dup shares fd's offset: start from the first entry whatever it is */
    if (d)
        rewinddir(d);
    if (!d) {
        int e = errno;
        if (dup_fd >= 0)
            close(dup_fd);
        errno = e;
        return NULL;
    }
    char **names = NULL;
    size_t count = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        add(&names, &count, xstrdup(de->d_name));
        errno = 0;
    }
    int e = errno;
    closedir(d);
    if (e) {
        for (size_t i = 0; i < count; i++)
            free(names[i]);
        free(names);
        errno = e;
        return NULL;
    }
    if (count)
        qsort(names, count, sizeof *names, cmp_names);
    *n = count;
    return names ? names : xcalloc(1, sizeof *names);
}

static bool is_cache_dir(int fd)
{
    int t = openat(fd, "CACHEDIR.TAG", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (t < 0)
        return false;
    char b[sizeof CACHEDIR_SIGNATURE - 1];
    ssize_t n = read(t, b, sizeof b);
    close(t);
    return n == (ssize_t)sizeof b && memcmp(b, CACHEDIR_SIGNATURE, sizeof b) == 0;
}

static void walk_dir(struct walk *w, int fd, const char *rel);

static void walk_entry(struct walk *w, int dirfd, const char *name, const char *dir_rel)
{
    char *rel = *dir_rel ? xasprintf("%s/%s", dir_rel, name) : xstrdup(name);
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            warn_file(w, rel, "vanished before it was read: left out");
        else
            unreadable(w, rel, errno);
        free(rel);
        return;
    }
    if (excluded(w, rel, name, S_ISDIR(st.st_mode))) {
        free(rel);
        return;
    }
    if (S_ISREG(st.st_mode)) {
        archive_file(w, dirfd, name, rel, &st);
    } else if (S_ISLNK(st.st_mode)) {
        archive_symlink(w, dirfd, name, rel, &st);
    } else if (S_ISDIR(st.st_mode)) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                warn_file(w, rel, "vanished before it was read: left out");
            else if (errno == ELOOP || errno == ENOTDIR)
                warn_file(w, rel, "was replaced by another kind of file before it was read: left out");
            else
                unreadable(w, rel, errno);
            free(rel);
            return;
        }
        struct stat dst;
        if (fstat(fd, &dst) != 0)
            dst = st;
        struct archive_entry *e = entry_for(w, rel, &dst);
        add_xattrs(w, e, fd, rel);
        bool ok = write_header(w, e, rel);
        archive_entry_free(e);
        if (ok && !w->fatal) {
            if (w->cfg->files_one_file_system && dst.st_dev != w->root_dev)
                log_info("files:%s: %s is another file system: stored empty (files.one_file_system)",
                         w->tree->name, rel);
            else
                walk_dir(w, fd, rel);
        }
        close(fd);
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        /* restore creates no FIFO or device node (in a forged archive they
         * are an attack): stored, they would make every set unrestorable */
        warn_file(w, rel,
                  S_ISFIFO(st.st_mode) ? "is a FIFO: left out (it holds no data)"
                                       : "is a device node: left out (it holds no data)");
    } else {
        log_info("files:%s: %s is a socket: left out (a socket is not data)", w->tree->name, rel);
    }
    free(rel);
}

static void walk_dir(struct walk *w, int fd, const char *rel)
{
    size_t n = 0;
    char **names = list_dir(fd, &n);
    if (!names) {
        unreadable(w, *rel ? rel : ".", errno);
        return;
    }
    bool cache = w->cfg->files_exclude_caches && is_cache_dir(fd);
    for (size_t i = 0; i < n; i++) {
        sv_error stop = {0};
        if (!w->fatal && signals_check(&stop) != 0) {
            w->fatal = true;
            sv_error_set(&w->werr, SV_EXIT_FAILED, "%s", stop.msg);
        }
        if (!w->fatal && (!cache || strcmp(names[i], "CACHEDIR.TAG") == 0))
            walk_entry(w, fd, names[i], rel);
        free(names[i]);
    }
    free(names);
}

/* The tree's exclude file, at its top: its patterns join the tree's. */
static void read_exclude_file(struct walk *w, int root)
{
    const char *name = w->cfg->files_exclude_file;
    if (!name || !*name)
        return;
    int fd = openat(root, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    char *text = NULL;
    size_t len = 0;
    ssize_t got;
    /* an exclude file is a few lines: 1 MiB is far more than one needs */
    while (len < (1u << 20)) {
        text = xrealloc(text, len + 65536);
        got = read(fd, text + len, 65536);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    size_t before = w->n_excludes;
    files_exclude_parse_lines(text ? text : "", len, &w->excludes, &w->n_excludes);
    free(text);
    log_info("files:%s: %zu patterns from %s/%s", w->tree->name, w->n_excludes - before, w->tree->path, name);
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

/* "a, b and 3 more": the first items of a list, for one error line. */
static char *first_of(char **l, size_t n, size_t shown)
{
    char *out = xstrdup("");
    for (size_t i = 0; i < n && i < shown; i++) {
        char *next = xasprintf("%s%s%s", out, i ? ", " : "", l[i]);
        free(out);
        out = next;
    }
    if (n > shown) {
        char *next = xasprintf("%s and %zu more (each is in the log)", out, n - shown);
        free(out);
        out = next;
    }
    return out;
}

static int dump_tree(const sv_config *cfg, const struct files_tree *tree, source_artifact *a, stream *out,
                     sv_error *err)
{
    int root = open(tree->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return sv_error_set(err, SV_EXIT_FAILED, "files:%s: cannot open %s: %s", tree->name, tree->path,
                            strerror(errno));
    struct stat rst;
    fstat(root, &rst);
    struct walk w = {.tree = tree, .cfg = cfg, .out = out, .root_dev = rst.st_dev};
    for (size_t i = 0; i < tree->n_excludes; i++)
        add(&w.excludes, &w.n_excludes, xstrdup(tree->excludes[i]));
    read_exclude_file(&w, root);
    w.buf = xmalloc(READ_CHUNK);
    w.ar = archive_write_new();
    int rc = 0;
    /* pax: no limit on names, sizes or ids, nanosecond times. A name that
     * is not text in the locale is stored as its bytes (hdrcharset=BINARY,
     * for that entry alone: GNU tar notes the keyword and keeps the bytes). */
    if (archive_write_set_format_pax(w.ar) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(w.ar, 64 * 1024) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w.ar, 1) != ARCHIVE_OK ||
        archive_write_open(w.ar, &w, NULL, write_cb, NULL) != ARCHIVE_OK) {
        rc = sv_error_set(err, SV_EXIT_FAILED, "files:%s: cannot start the archive: %s", tree->name,
                          archive_error_string(w.ar));
        goto out;
    }
    /* the top first, as "tar -C DIR ." stores it: its mode and time */
    struct archive_entry *top = entry_for(&w, ".", &rst);
    add_xattrs(&w, top, root, ".");
    if (write_header(&w, top, "."))
        walk_dir(&w, root, "");
    archive_entry_free(top);
    if (!w.fatal && archive_write_close(w.ar) != ARCHIVE_OK)
        w.fatal = true;
    if (w.fatal) {
        if (sv_error_isset(&w.werr))
            *err = w.werr;
        else
            sv_error_set(err, SV_EXIT_FAILED, "files:%s: writing the archive failed: %s", tree->name,
                         archive_error_string(w.ar));
        rc = -1;
        goto out;
    }
    if (w.n_unreadable && strcmp(cfg->files_unreadable, "warn") != 0) {
        char *names = first_of(w.unreadable, w.n_unreadable, 20);
        sv_error_set(err, SV_EXIT_FAILED, "files:%s: %zu file%s under %s cannot be read: %s", tree->name,
                     w.n_unreadable, w.n_unreadable == 1 ? "" : "s", tree->path, names);
        sv_error_hint(err, "let sauve's user read them, exclude them (files.exclude), or set "
                           "SAUVE_FILES_UNREADABLE=warn to back up the rest");
        free(names);
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < w.n_unreadable; i++) {
        char *s = xasprintf("%s could not be read: left out", w.unreadable[i]);
        add(&w.warnings, &w.n_warnings, s);
    }
    for (size_t i = 0; i < w.n_warnings && i < MAX_LISTED; i++)
        source_artifact_warn(a, w.warnings[i]);
    if (w.n_warnings > MAX_LISTED) {
        char *s = xasprintf("and %zu more warnings (in the log)", w.n_warnings - MAX_LISTED);
        source_artifact_warn(a, s);
        free(s);
    }
    a->items = w.entries;
    a->has_items = true;
    char human[32];
    log_with(LOG_INFO,
             LOG_FIELDS(LOG_STR("tree", tree->name), LOG_NUM("entries", w.entries), LOG_NUM("files", w.files),
                        LOG_NUM("file_bytes", (int64_t)w.file_bytes),
                        LOG_NUM("warnings", (int64_t)w.n_warnings)),
             "files:%s: %lld entries (%lld files, %s) archived from %s%s", tree->name, (long long)w.entries,
             (long long)w.files, log_human_bytes(w.file_bytes, human, sizeof human), tree->path,
             w.n_warnings ? ", with warnings" : "");
out:
    archive_write_free(w.ar);
    close(root);
    free(w.buf);
    for (size_t i = 0; i < w.cap_links; i++)
        free(w.links[i].path);
    free(w.links);
    free_list(w.excludes, w.n_excludes);
    free_list(w.unreadable, w.n_unreadable);
    free_list(w.warnings, w.n_warnings);
    return rc;
}

/* ---- the source ---------------------------------------------------------- */

static int files_prepare(source *s, sv_error *err)
{
    struct files_source *fs = s->impl;
    if (fs->only_name) {
        fs->trees = xcalloc(1, sizeof *fs->trees);
        fs->trees[0].name = xstrdup(fs->only_name);
        fs->trees[0].path = xstrdup(fs->only_path);
        fs->n_trees = 1;
        /* the configuration's patterns of every tree, and of this one */
        struct files_tree *conf = NULL;
        size_t n = 0;
        sv_error ignored = {0};
        if (files_trees_parse(fs->cfg, &conf, &n, &ignored) == 0) {
            for (size_t i = 0; i < n; i++)
                if (strcmp(conf[i].name, fs->only_name) == 0)
                    for (size_t j = 0; j < conf[i].n_excludes; j++)
                        add(&fs->trees[0].excludes, &fs->trees[0].n_excludes, xstrdup(conf[i].excludes[j]));
            files_trees_free(conf, n);
        }
    } else if (files_trees_parse(fs->cfg, &fs->trees, &fs->n_trees, err) != 0) {
        return -1;
    }
    s->info.tool = xstrdup("libarchive");
    s->info.tool_version = xstrdup(archive_version_string());
    for (size_t i = 0; i < fs->n_trees; i++) {
        const struct files_tree *t = &fs->trees[i];
        char *key = xasprintf("files/%s.tar", t->name);
        source_artifact *a = source_add_artifact(s, "files", t->name, key, FILES_FORMAT);
        free(key);
        struct stat st;
        int r = stat(t->path, &st);
        if (r != 0 || !S_ISDIR(st.st_mode)) {
            sv_error e = {0};
            sv_error_set(&e, SV_EXIT_CONFIG, "files:%s: %s: %s", t->name, t->path,
                         r != 0 ? strerror(errno) : "not a directory");
            sv_error_hint(&e, "mount the volume there, or correct SAUVE_FILES");
            source_artifact_fail(a, &e);
        }
    }
    return 0;
}

static int files_dump(source *s, size_t i, stream *out, sv_error *err)
{
    struct files_source *fs = s->impl;
    return dump_tree(fs->cfg, &fs->trees[i], &s->artifacts[i], out, err);
}

static void files_destroy(source *s)
{
    struct files_source *fs = s->impl;
    files_trees_free(fs->trees, fs->n_trees);
    free(fs->only_name);
    free(fs->only_path);
    free(fs);
}

static const struct source_ops files_ops = {
    .kind = "files",
    .prepare = files_prepare,
    .dump = files_dump,
    .destroy = files_destroy,
};

source *files_source_new(const sv_config *cfg)
{
    struct files_source *fs = xcalloc(1, sizeof *fs);
    fs->cfg = cfg;
    source *s = xcalloc(1, sizeof *s);
    s->ops = &files_ops;
    s->impl = fs;
    return s;
}

source *files_source_for(const sv_config *cfg, const char *name, const char *path)
{
    source *s = files_source_new(cfg);
    struct files_source *fs = s->impl;
    fs->only_name = xstrdup(name);
    fs->only_path = xstrdup(path);
    return s;
}
