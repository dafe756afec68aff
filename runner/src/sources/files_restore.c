/*
 * How a files artifact is restored: `sauve restore files:NAME --to DIR`.
 *
 * The archive is extracted into a new directory beside DIR (or, when DIR
 * is a mount point, which cannot be renamed, inside it), and moved into
 * place by rename only once restore/ finished the sink with ok, i.e. the
 * whole artifact verified; a failure removes it and leaves DIR as it was.
 *
 * Anyone who can write to the bucket can forge an archive, so extraction
 * trusts none of it: every entry is created relative to the extraction
 * directory's descriptor, each directory on the way opened with O_NOFOLLOW
 * (never through a symbolic link, never above the top: the equivalent of
 * openat2's RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); absolute names and ".."
 * are refused, as are device nodes, FIFOs, sockets and setuid (and setgid,
 * but on directories) bits; a file is created with O_EXCL after removing
 * what held its name, so no write goes through a link planted earlier.
 * Ownership is restored only when running as root, by numeric id.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/log.h"
#include "common/mem.h"
#include "sources/files.h"
#include "sources/loader.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static const char *const files_forms[] = {"files:NAME", NULL};

/* The extended attributes of directories, kept to be set once their
 * content is in: far more than a real tree's. */
#define DIR_XATTRS_MAX (256 << 20)

enum files_route {
    ROUTE_BESIDE, /* extracted into DIR's sibling, swapped in by rename */
    ROUTE_INSIDE, /* DIR is a mount point: extracted into DIR/.sauve-restore-*, entries moved up */
};

struct dir_meta {
    char *path;
    dev_t dev; /* the directory made for it: its metadata lands on nothing else */
    ino_t ino;
    mode_t mode;
    struct timespec mtime;
    uid_t uid;
    gid_t gid;
    struct files_xattrs *xattrs; /* set with the mode: a default ACL would shape what is created inside */
};

struct files_restore {
    const sv_config *cfg;
    char *name;
    bool clean;
    enum files_route route;
    bool exists;   /* DIR exists (empty, or replaced with --clean) */
    int parent_fd; /* DIR's parent (BESIDE) or DIR (INSIDE): where the temp directory is */
    char *base;    /* DIR's last component (BESIDE) */
    char *tmp;     /* the temp directory's name in parent_fd */
    int root;      /* the temp directory, where entries are extracted */
    bool as_root;
    /* the extraction, on the tar sink's thread */
    struct dir_meta *dirs;
    size_t n_dirs;
    int64_t entries;
    uint64_t bytes;
    size_t xattrs_skipped;  /* security labels, not set when not root */
    size_t dir_xattr_bytes; /* the attributes of r->dirs */
    /* the extraction failed on the target's side (space, permissions, what
     * its file system supports), not on the archive's: the error, which
     * finish reports as the loader's so that restore/ blames the target */
    bool disk_failed;
    sv_error disk_err;
    /* the directory of the last entry, by the name the archive gave it */
    char *last_dir;
    int last_dir_fd;
};

/* rc, after a call that failed with errno: when errno says the target's
 * file system refused (space, quota, permissions, what it supports), the
 * failure is the target's. Others (a name too long, a value the kernel
 * finds invalid) come from what the archive asked for. */
static int on_disk(struct files_restore *r, int rc)
{
    switch (errno) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EMLINK:
    case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
    case EROFS:
    case EACCES:
    case EPERM:
    case EIO:
    case EMFILE:
    case ENFILE:
        if (rc != 0)
            r->disk_failed = true;
        break;
    default: break;
    }
    return rc;
}

/* The owner's ids (as root), then the attributes, then the mode: a POSIX
 * ACL and the mode's group bits (its mask) are one thing, and user.
 * attributes need the write permission the final mode may not give. */
static int set_meta(struct files_restore *r, int fd, const char *name, uid_t uid, gid_t gid,
                    const struct files_xattrs *x, mode_t mode, sv_error *err)
{
    if (r->as_root && fchown(fd, uid, gid) != 0)
        return on_disk(r, sv_error_set(err, SV_EXIT_FAILED, "cannot set the owner of %.200s: %s", name,
                                       strerror(errno)));
    const char *attr = NULL;
    if (files_xattrs_write(fd, x, r->as_root, &r->xattrs_skipped, &attr) != 0) {
        int e = errno;
        sv_error_set(err, SV_EXIT_FAILED, "cannot set the extended attribute %.100s of %.200s: %s", attr,
                     name, strerror(e));
        if (e == ENOTSUP)
            sv_error_hint(err, "the target's file system keeps no extended attributes: restore onto one that "
                               "does (ext4, XFS, Btrfs), or extract with tar (docs: files.xattrs)");
        errno = e;
        return on_disk(r, -1);
    }
    if (fchmod(fd, mode) != 0)
        return on_disk(
            r, sv_error_set(err, SV_EXIT_FAILED, "cannot set the mode of %.200s: %s", name, strerror(errno)));
    return 0;
}

static int files_check(const char *name, const struct loader_options *o, sv_error *err)
{
    if (!files_name_is_valid(name))
        return sv_error_set(err, SV_EXIT_USAGE, "files:%s: not a tree name (letters, digits, '.', '_', '-')",
                            name);
    if (o->into)
        return sv_error_set(err, SV_EXIT_USAGE,
                            "--into does not apply to files:%s: give the directory as --to DIR", name);
    if (o->no_owner)
        return sv_error_set(
            err, SV_EXIT_USAGE,
            "--no-owner does not apply to files:%s: ownership is restored only when sauve runs "
            "as root",
            name);
    if (o->to_file || o->online)
        return sv_error_set(err, SV_EXIT_USAGE,
                            "--%s does not apply to files:%s (it is for redis:NAME): give "
                            "the directory as --to DIR",
                            o->to_file ? "to-file" : "online", name);
    if (o->to && !*o->to)
        return sv_error_set(err, SV_EXIT_USAGE, "--to needs a directory");
    return 0;
}

extern const struct loader_ops files_loader;

/* The directory of tree name in the configuration, or NULL. */
static char *configured_path(const sv_config *cfg, const char *name)
{
    struct files_tree *t = NULL;
    size_t n = 0;
    sv_error ignored = {0};
    char *path = NULL;
    if (files_trees_parse(cfg, &t, &n, &ignored) != 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            path = xstrdup(t[i].path);
    files_trees_free(t, n);
    return path;
}

static loader *files_open(const sv_config *cfg, const char *name, const struct loader_options *o)
{
    struct files_restore *r = xcalloc(1, sizeof *r);
    r->cfg = cfg;
    r->name = xstrdup(name);
    r->clean = o->clean;
    r->parent_fd = -1;
    r->root = -1;
    r->last_dir_fd = -1;
    r->as_root = geteuid() == 0;
    loader *l = xcalloc(1, sizeof *l);
    l->ops = &files_loader;
    l->impl = r;
    char *dir = o->to ? xstrdup(o->to) : configured_path(cfg, name);
    /* "/data/x/" is /data/x */
    size_t len = dir ? strlen(dir) : 0;
    while (len > 1 && dir[len - 1] == '/')
        dir[--len] = '\0';
    l->target = dir ? dir : xstrdup("");
    l->what = xasprintf("directory %s", l->target);
    l->changes = xstrdup(l->what);
    return l;
}

/* The names in directory fd, read whole before anything renames or
 * removes them (an entry moved during readdir may be skipped), through a
 * descriptor of its own (a dup would share, and move, fd's offset). NULL
 * when it cannot be read. */
static char **names_of(int fd, size_t *n)
{
    *n = 0;
    int d = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dp = d >= 0 ? fdopendir(d) : NULL;
    if (!dp) {
        if (d >= 0)
            close(d);
        return NULL;
    }
    char **names = xcalloc(1, sizeof *names);
    struct dirent *de;
    while ((de = readdir(dp)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            names = xrealloc(names, (*n + 2) * sizeof *names);
            names[(*n)++] = xstrdup(de->d_name);
        }
    closedir(dp);
    return names;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static bool dir_is_empty(int fd)
{
    size_t n;
    char **names = names_of(fd, &n);
    free_names(names, n);
    return names && n == 0;
}

static int files_inspect(loader *l, const manifest_artifact *a, bool *replaces, sv_error *err)
{
    struct files_restore *r = l->impl;
    *replaces = false;
    if (strcmp(a->format, FILES_FORMAT) != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "files:%s has format %s, which this sauve cannot restore",
                            r->name, a->format);
    if (!*l->target)
        return sv_error_set(err, SV_EXIT_USAGE, "files:%s: no directory to restore into: give --to DIR",
                            r->name);
    char *slash = strrchr(l->target, '/');
    char *parent = !slash               ? xstrdup(".")
                   : slash == l->target ? xstrdup("/")
                                        : xstrndup(l->target, (size_t)(slash - l->target));
    r->base = xstrdup(slash ? slash + 1 : l->target);
    r->parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->parent_fd < 0) {
        sv_error_set(err, SV_EXIT_FAILED, "cannot restore into %s: its parent %s: %s", l->target, parent,
                     strerror(errno));
        free(parent);
        return -1;
    }
    free(parent);
    if (!*r->base || strcmp(r->base, ".") == 0 || strcmp(r->base, "..") == 0)
        return sv_error_set(err, SV_EXIT_USAGE, "--to %s: name the directory itself, not . or ..", l->target);
    struct stat st, pst;
    if (fstatat(r->parent_fd, r->base, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            return sv_error_set(err, SV_EXIT_FAILED, "cannot restore into %s: %s", l->target,
                                strerror(errno));
        r->route = ROUTE_BESIDE;
        return loader_check_space(r->parent_fd, l->target, a->bytes_in, a->has_items ? a->items : 0, err);
    }
    if (!S_ISDIR(st.st_mode))
        return sv_error_set(err, SV_EXIT_FAILED, "%s exists and is not a directory, nothing was changed",
                            l->target);
    r->exists = true;
    int fd = openat(r->parent_fd, r->base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return sv_error_set(err, SV_EXIT_FAILED, "cannot open %s: %s", l->target, strerror(errno));
    bool empty = dir_is_empty(fd);
    fstat(r->parent_fd, &pst);
    /* a mount point (a Kubernetes volume) cannot be renamed: extract inside it */
    if (st.st_dev != pst.st_dev) {
        r->route = ROUTE_INSIDE;
        close(r->parent_fd);
        r->parent_fd = fd;
    } else {
        r->route = ROUTE_BESIDE;
        close(fd);
    }
    if (!empty && !r->clean) {
        sv_error_set(err, SV_EXIT_FAILED, "directory %s is not empty, nothing was changed", l->target);
        return sv_error_hint(err, "use --clean to replace it (a safety backup is taken first), or --to a new "
                                  "or empty directory");
    }
    *replaces = !empty;
    /* both trees are on the volume until the swap: the new one needs its
     * whole size free (at least: each file also rounds up to a block) */
    return loader_check_space(r->parent_fd, l->target, a->bytes_in, a->has_items ? a->items : 0, err);
}

static source *files_safety_source(loader *l)
{
    struct files_restore *r = l->impl;
    return files_source_for(r->cfg, r->name, l->target);
}

/* ---- removing a tree, never following a link ------------------------------ */

/* A directory opened on the way down: where to come back to. */
struct level {
    char *name; /* in its parent */
    dev_t dev;
    ino_t ino;
};

/* Opens directory name under dirfd, never through a link, and makes it
 * writable (a directory restored without write permission must be
 * emptied); its identity into *lv. */
static int open_level(int dirfd, const char *name, struct level *lv)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fchmod(fd, 0700);
    lv->name = xstrdup(name);
    lv->dev = st.st_dev;
    lv->ino = st.st_ino;
    return fd;
}

/*
 * Removes name under dirfd and everything below it. Depth first, holding
 * one descriptor at a time (a tree as deep as an archive may hold, 4096
 * levels, would otherwise need as many): it goes back up through "..",
 * checked to be the directory it came down from, so that a directory moved
 * meanwhile stops the removal rather than sending it elsewhere. Stops at
 * the first entry it cannot remove.
 */
static int rm_tree(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    struct level *stack = NULL;
    size_t depth = 0, cap = 0;
    stack = xrealloc(stack, ++cap * sizeof *stack);
    int fd = open_level(dirfd, name, &stack[0]);
    if (fd < 0) {
        free(stack);
        return -1;
    }
    depth = 1;
    int rc = 0;
    while (rc == 0) {
        size_t n;
        char **names = names_of(fd, &n);
        if (!names) {
            rc = -1;
            break;
        }
        int child = -1;
        for (size_t i = 0; i < n && child < 0 && rc == 0; i++) {
            if (unlinkat(fd, names[i], 0) == 0 || errno == ENOENT)
                continue;
            if (errno != EISDIR && errno != EPERM) {
                rc = -1;
                break;
            }
            if (depth == cap)
                stack = xrealloc(stack, (cap *= 2) * sizeof *stack);
            child = open_level(fd, names[i], &stack[depth]);
            if (child < 0)
                rc = -1;
        }
        free_names(names, n);
        if (rc != 0)
            break;
        if (child >= 0) {
            close(fd);
            fd = child;
            depth++;
            continue;
        }
        /* fd is empty: up one level, and remove it there */
        if (depth == 1)
            break;
        int parent = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;
        const struct level *up = &stack[depth - 2];
        if (parent < 0 || fstat(parent, &st) != 0 || st.st_dev != up->dev || st.st_ino != up->ino) {
            if (parent >= 0)
                close(parent);
            rc = -1;
            break;
        }
        close(fd);
        fd = parent;
        depth--;
        if (unlinkat(fd, stack[depth].name, AT_REMOVEDIR) != 0)
            rc = -1;
        free(stack[depth].name);
    }
    close(fd);
    for (size_t i = 0; i < depth; i++)
        free(stack[i].name);
    free(stack);
    if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) != 0)
        rc = -1;
    return rc;
}

int files_remove_tree(const char *path)
{
    return rm_tree(AT_FDCWD, path);
}

/* ---- extraction ------------------------------------------------------------ */

/*
 * Checks an entry's name (refused: absolute, "..", empty) and opens the
 * directory that holds its last component beneath root, creating missing
 * directories (0700, until their own entry sets them) and refusing any
 * component that is a symbolic link or not a directory. *base is the last
 * component alone, newly allocated (NULL for the top itself): never the
 * tail of name, whose trailing "/" or "/." would have the kernel follow a
 * symbolic link that holds that name. Returns the descriptor, or -1 with err.
 */
static int open_parent(int root, const char *name, char **base, bool create, sv_error *err)
{
    if (name[0] == '/')
        return sv_error_set(err, SV_EXIT_FAILED, "the archive holds an absolute name (%.200s): refused",
                            name);
    char *copy = xstrdup(name);
    size_t len = strlen(copy);
    while (len > 0 && copy[len - 1] == '/')
        copy[--len] = '\0';
    char *comps[4096];
    size_t n = 0;
    for (char *save = NULL, *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, "..") == 0) {
            free(copy);
            return sv_error_set(err, SV_EXIT_FAILED, "the archive holds a name with '..' (%.200s): refused",
                                name);
        }
        if (strcmp(c, ".") == 0)
            continue;
        if (n == sizeof comps / sizeof *comps) {
            free(copy);
            return sv_error_set(err, SV_EXIT_FAILED, "the archive holds a name too deep (%.100s...)", name);
        }
        comps[n++] = c;
    }
    if (n == 0) {
        free(copy);
        *base = NULL; /* the top itself */
        return fcntl(root, F_DUPFD_CLOEXEC, 0);
    }
    int fd = fcntl(root, F_DUPFD_CLOEXEC, 0);
    for (size_t i = 0; i + 1 < n && fd >= 0; i++) {
        int next = openat(fd, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && create && mkdirat(fd, comps[i], 0700) == 0)
            next = openat(fd, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            int e = errno;
            close(fd);
            fd = -1;
            if (e == ELOOP || e == ENOTDIR)
                sv_error_set(
                    err, SV_EXIT_FAILED,
                    "the archive's entry %.200s would be written through %s, a symbolic link or not a "
                    "directory: refused",
                    name, comps[i]);
            else
                sv_error_set(err, SV_EXIT_FAILED, "cannot create the directories of %.200s: %s", name,
                             strerror(e));
        } else {
            close(fd);
            fd = next;
        }
    }
    if (fd >= 0)
        *base = xstrdup(comps[n - 1]);
    free(copy);
    return fd;
}

/* Removes what holds base in fd (a file, a link: an entry given twice), so
 * that the entry is created anew, never written through a link. A
 * directory is never replaced: the owner, mode and time recorded for it
 * would land on whatever took its name (an archive is forged that way). */
static int clear_name(int fd, const char *base, const char *name, sv_error *err)
{
    struct stat st;
    if (fstatat(fd, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    if (S_ISDIR(st.st_mode))
        return sv_error_set(err, SV_EXIT_FAILED,
                            "the archive holds %.200s twice, a directory and then something else: refused",
                            name);
    if (unlinkat(fd, base, 0) != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "cannot replace %.200s: %s", name, strerror(errno));
    return 0;
}

/* The owner and time of the symbolic link base in fd, not of what it names. */
static int set_link_meta(struct files_restore *r, int fd, const char *base, struct archive_entry *e)
{
    if (r->as_root && fchownat(fd, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
                               AT_SYMLINK_NOFOLLOW) != 0)
        return -1;
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                             {.tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e)}};
    return utimensat(fd, base, ts, AT_SYMLINK_NOFOLLOW);
}

static int extract_file(struct files_restore *r, struct archive *a, int pfd, const char *base,
                        struct archive_entry *e, const char *name, sv_error *err)
{
    /* created anew, never opened through what held the name: that is
     * removed first (nothing usually does, so the first try mostly works) */
    int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        if (clear_name(pfd, base, name, err) != 0)
            return -1;
        fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return on_disk(r,
                       sv_error_set(err, SV_EXIT_FAILED, "cannot create %.200s: %s", name, strerror(errno)));
    const void *buf;
    size_t len;
    la_int64_t off;
    uint64_t end = 0; /* where the last block written ends */
    int rc = 0, ar;
    while ((ar = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
        const char *p = buf;
        while (len > 0) {
            ssize_t w = pwrite(fd, p, len, (off_t)off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = on_disk(
                    r, sv_error_set(err, SV_EXIT_FAILED, "cannot write %.200s: %s", name, strerror(errno)));
                goto out;
            }
            p += w;
            len -= (size_t)w;
            off += w;
            r->bytes += (uint64_t)w;
        }
        if ((uint64_t)off > end)
            end = (uint64_t)off;
    }
    if (ar != ARCHIVE_EOF) {
        rc = sv_error_set(err, SV_EXIT_FAILED, "the archive's entry %.200s is cut short or damaged: %s", name,
                          archive_error_string(a));
        goto out;
    }
    /* a sparse file's last hole */
    if (end != (uint64_t)archive_entry_size(e) && ftruncate(fd, (off_t)archive_entry_size(e)) != 0) {
        rc = on_disk(
            r, sv_error_set(err, SV_EXIT_FAILED, "cannot set the size of %.200s: %s", name, strerror(errno)));
        goto out;
    }
    struct files_xattrs *x = files_xattrs_copy(e);
    rc = set_meta(r, fd, name, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e), x,
                  archive_entry_perm(e) & 01777, err);
    files_xattrs_free(x);
    if (rc != 0)
        goto out;
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                             {.tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e)}};
    if (futimens(fd, ts) != 0)
        rc = on_disk(
            r, sv_error_set(err, SV_EXIT_FAILED, "cannot set the time of %.200s: %s", name, strerror(errno)));
out:
    close(fd);
    return rc;
}

static void forget_last_dir(struct files_restore *r);

/*
 * open_parent for an entry to create, keeping the last directory open: an
 * archive lists a directory's entries together, and each would otherwise
 * open every directory from the top again. What a name led to stays what
 * it leads to, since the extraction never removes or replaces a directory
 * (clear_name refuses to); a name spelt otherwise ("d/./x", "d//x") is
 * only looked up anew.
 */
static int entry_parent(struct files_restore *r, const char *name, char **base, sv_error *err)
{
    size_t len = strlen(name);
    while (len > 1 && name[len - 1] == '/')
        len--;
    const char *slash = memrchr(name, '/', len);
    if (slash && r->last_dir && strlen(r->last_dir) == (size_t)(slash - name) &&
        memcmp(r->last_dir, name, (size_t)(slash - name)) == 0) {
        const char *b = slash + 1;
        size_t blen = len - (size_t)(b - name);
        /* "." and ".." are no names to create: the full lookup says what they are */
        if (!(blen == 1 && b[0] == '.') && !(blen == 2 && b[0] == '.' && b[1] == '.')) {
            int fd = fcntl(r->last_dir_fd, F_DUPFD_CLOEXEC, 0);
            if (fd >= 0) {
                *base = xstrndup(b, blen);
                return fd;
            }
            return on_disk(r, sv_error_set(err, SV_EXIT_FAILED, "cannot open the directory of %.200s: %s",
                                           name, strerror(errno)));
        }
    }
    int fd = open_parent(r->root, name, base, true, err);
    /* kept only when the name's last component is what is created: "a/b/."
     * creates nothing in "a/b", it names b in "a" */
    if (fd >= 0 && *base && slash && strlen(*base) == len - (size_t)(slash + 1 - name) &&
        memcmp(*base, slash + 1, strlen(*base)) == 0) {
        forget_last_dir(r);
        r->last_dir_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (r->last_dir_fd >= 0)
            r->last_dir = xstrndup(name, (size_t)(slash - name));
    }
    return fd;
}

static int extract_entry(struct files_restore *r, struct archive *a, struct archive_entry *e, sv_error *err)
{
    const char *name = archive_entry_pathname(e);
    if (!name)
        return sv_error_set(err, SV_EXIT_FAILED, "entry %lld of the archive has a name that cannot be read",
                            (long long)r->entries + 1);
    mode_t type = archive_entry_filetype(e);
    mode_t perm = archive_entry_perm(e);
    const char *hardlink = archive_entry_hardlink(e);
    if (files_entry_check(e, err) != 0)
        return -1;
    char *base = NULL;
    int pfd = entry_parent(r, name, &base, err);
    if (pfd < 0)
        return -1;
    int rc = 0;
    r->entries++;
    if (!base) {
        /* the top itself ("." or "./"): its mode and time, at the end */
        if (type == AE_IFDIR)
            base = xstrdup(".");
        else
            rc = sv_error_set(err, SV_EXIT_FAILED, "the archive's top entry %.200s is not a directory", name);
    }
    if (rc == 0 && hardlink) {
        char *tbase = NULL;
        int tfd = open_parent(r->root, hardlink, &tbase, false, err);
        if (tfd < 0) {
            rc = -1;
        } else {
            if (!tbase)
                rc = sv_error_set(err, SV_EXIT_FAILED, "the archive links %.200s to its top: refused", name);
            if (rc == 0)
                rc = clear_name(pfd, base, name, err);
            /* flags 0: a link to a symbolic link links the link itself */
            if (rc == 0 && linkat(tfd, tbase, pfd, base, 0) != 0)
                rc = on_disk(r, sv_error_set(err, SV_EXIT_FAILED, "cannot link %.200s to %.200s: %s", name,
                                             hardlink, strerror(errno)));
            close(tfd);
            free(tbase);
        }
    } else if (rc == 0 && type == AE_IFDIR) {
        struct stat st;
        if (strcmp(base, ".") != 0 && mkdirat(pfd, base, 0700) != 0 && errno != EEXIST)
            rc = on_disk(r, sv_error_set(err, SV_EXIT_FAILED, "cannot create directory %.200s: %s", name,
                                         strerror(errno)));
        else if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
            rc = sv_error_set(err, SV_EXIT_FAILED,
                              "cannot create directory %.200s: something else holds its name", name);
        struct files_xattrs *x = rc == 0 ? files_xattrs_copy(e) : NULL;
        r->dir_xattr_bytes += files_xattrs_bytes(x);
        /* kept until the end: bounded, whatever a forged archive claims */
        if (rc == 0 && r->dir_xattr_bytes > DIR_XATTRS_MAX) {
            rc = sv_error_set(err, SV_EXIT_FAILED,
                              "the archive's directories carry more than %d MiB of extended attributes "
                              "(at %.200s): refused",
                              DIR_XATTRS_MAX >> 20, name);
            files_xattrs_free(x);
        } else if (rc == 0) {
            r->dirs = xrealloc(r->dirs, (r->n_dirs + 1) * sizeof *r->dirs);
            r->dirs[r->n_dirs++] = (struct dir_meta){
                .path = xstrdup(name),
                .dev = st.st_dev,
                .ino = st.st_ino,
                .mode = perm & 03777,
                .mtime = {.tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e)},
                .uid = (uid_t)archive_entry_uid(e),
                .gid = (gid_t)archive_entry_gid(e),
                .xattrs = x};
        }
    } else if (rc == 0 && type == AE_IFLNK) {
        const char *target = archive_entry_symlink(e);
        rc = clear_name(pfd, base, name, err);
        /* a link's target is only text: nothing is ever written through it */
        if (rc == 0 && (!target || symlinkat(target, pfd, base) != 0 || set_link_meta(r, pfd, base, e) != 0))
            rc = on_disk(r, sv_error_set(err, SV_EXIT_FAILED, "cannot create symbolic link %.200s: %s", name,
                                         target ? strerror(errno) : "no target"));
    } else if (rc == 0 && type == AE_IFREG) {
        rc = extract_file(r, a, pfd, base, e, name, err);
    } else if (rc == 0) {
        rc = sv_error_set(err, SV_EXIT_FAILED, "the archive's entry %.200s has an unknown type", name);
    }
    close(pfd);
    free(base);
    return rc;
}

/* Directories get their mode and time last, deepest first: creating what
 * is inside them changed both. */
static int finish_dirs(struct files_restore *r, sv_error *err)
{
    for (size_t i = r->n_dirs; i-- > 0;) {
        const struct dir_meta *d = &r->dirs[i];
        char *base = NULL;
        int pfd = open_parent(r->root, d->path, &base, false, err);
        if (pfd < 0)
            return -1;
        /* set through the directory's own descriptor: nothing on the way
         * (a name, a link) can send them elsewhere */
        int fd = openat(pfd, base ? base : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(pfd);
        free(base);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_dev != d->dev || st.st_ino != d->ino) {
            if (fd >= 0)
                close(fd);
            return sv_error_set(err, SV_EXIT_FAILED, "directory %.200s was replaced during the restore%s%s",
                                d->path, fd < 0 ? ": " : "", fd < 0 ? strerror(e) : "");
        }
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, d->mtime};
        int rc = set_meta(r, fd, d->path, d->uid, d->gid, d->xattrs, d->mode, err);
        if (rc == 0 && futimens(fd, ts) != 0)
            rc = on_disk(r, sv_error_set(err, SV_EXIT_FAILED, "cannot set the time of directory %.200s: %s",
                                         d->path, strerror(errno)));
        close(fd);
        if (rc)
            return rc;
    }
    return 0;
}

static int extract(struct archive *a, void *ctx, sv_error *err)
{
    struct files_restore *r = ctx;
    struct archive_entry *e;
    for (;;) {
        int ar = archive_read_next_header(a, &e);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar < ARCHIVE_WARN)
            return sv_error_set(err, SV_EXIT_FAILED, "not a readable tar archive after %lld entries: %s",
                                (long long)r->entries, archive_error_string(a));
        if (extract_entry(r, a, e, err) != 0)
            goto failed;
    }
    forget_last_dir(r);
    if (finish_dirs(r, err) != 0)
        goto failed;
    if (r->xattrs_skipped)
        log_warn("files:%s: %zu security labels (security.selinux) were not restored: "
                 "only root may set them",
                 r->name, r->xattrs_skipped);
    return 0;
failed:
    forget_last_dir(r);
    if (r->disk_failed)
        r->disk_err = *err;
    return -1;
}

static int files_start(loader *l, stream **sink, sv_error *err)
{
    struct files_restore *r = l->impl;
    r->tmp = r->route == ROUTE_BESIDE
                 ? xasprintf(".%s.sauve-restore-%ld-%d", r->base, (long)time(NULL), (int)getpid())
                 : xasprintf(".sauve-restore-%ld-%d", (long)time(NULL), (int)getpid());
    if (mkdirat(r->parent_fd, r->tmp, 0700) != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "cannot create %s beside %s to restore into: %s", r->tmp,
                            l->target, strerror(errno));
    r->root = openat(r->parent_fd, r->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (r->root < 0) {
        sv_error_set(err, SV_EXIT_FAILED, "cannot open %s: %s", r->tmp, strerror(errno));
        rm_tree(r->parent_fd, r->tmp);
        return -1;
    }
    /* a default ACL of the directory it was made in would be inherited by
     * every entry: the tree is restored as the archive has it, not as
     * its new parent would shape it */
    fremovexattr(r->root, "system.posix_acl_default");
    fremovexattr(r->root, "system.posix_acl_access");
    log_info("files:%s: extracting into %s/%s, moved into place once the artifact verified", r->name,
             r->route == ROUTE_BESIDE ? "its parent" : l->target, r->tmp);
    *sink = files_tar_sink(extract, r, "tar extraction");
    return 0;
}

/* Moves the names of directory from (all but skip1 and skip2) into to,
 * recording each moved in *moved. 0, or -1 with errno and *failed (newly
 * allocated) the name that did not move. */
static int move_names(int from, int to, const char *skip1, const char *skip2, char ***moved, size_t *n_moved,
                      char **failed)
{
    size_t n = 0;
    char **names = names_of(from, &n);
    *moved = xcalloc(n + 1, sizeof **moved);
    *n_moved = 0;
    if (!names) {
        *failed = xstrdup(".");
        return -1;
    }
    int rc = 0, saved = 0;
    for (size_t i = 0; i < n; i++) {
        bool skip = (skip1 && strcmp(names[i], skip1) == 0) || (skip2 && strcmp(names[i], skip2) == 0);
        if (rc == 0 && !skip) {
            if (renameat(from, names[i], to, names[i]) == 0) {
                (*moved)[(*n_moved)++] = names[i];
                continue;
            }
            saved = errno;
            *failed = xstrdup(names[i]);
            rc = -1;
        }
        free(names[i]);
    }
    free(names);
    errno = saved;
    return rc;
}

/* Undoes move_names: each moved name from to back into from. What cannot
 * go back is logged with where it is; their number is returned. */
static size_t move_back(struct files_restore *r, int from, int to, char **moved, size_t n, const char *where)
{
    size_t stuck = 0;
    for (size_t i = 0; i < n; i++)
        if (renameat(to, moved[i], from, moved[i]) != 0) {
            log_error("files:%s: %s could not be moved back: it is in %s (%s)", r->name, moved[i], where,
                      strerror(errno));
            stuck++;
        }
    return stuck;
}

/* Moves every entry of the temp directory into DIR (a mount point), the
 * old ones first into a directory that is then removed. A rename that
 * fails (a directory a non-root user may not move: renaming it rewrites
 * its "..") puts back what had moved: DIR keeps what it held. */
static int move_inside(loader *l, sv_error *err)
{
    struct files_restore *r = l->impl;
    /* the top's mode and time as the archive set them, before moving its
     * entries out changes the time */
    struct stat top;
    bool have_top = fstat(r->root, &top) == 0;
    char *old = xasprintf(".sauve-old-%ld-%d", (long)time(NULL), (int)getpid());
    if (mkdirat(r->parent_fd, old, 0700) != 0) {
        sv_error_set(err, SV_EXIT_FAILED, "cannot create %s in %s: %s", old, l->target, strerror(errno));
        free(old);
        return -1;
    }
    int ofd = openat(r->parent_fd, old, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    char **aside = NULL, **placed = NULL, *failed = NULL;
    size_t n_aside = 0, n_placed = 0, stuck = 0;
    int rc = 0, e = 0;
    const char *step = NULL; /* "cannot move %s/%s aside", "cannot move %s into %s" */
    if (ofd < 0) {
        rc = sv_error_set(err, SV_EXIT_FAILED, "cannot open %s in %s: %s", old, l->target, strerror(errno));
    } else if (move_names(r->parent_fd, ofd, old, r->tmp, &aside, &n_aside, &failed) != 0) {
        e = errno;
        step = "aside";
    } else if (move_names(r->root, r->parent_fd, NULL, NULL, &placed, &n_placed, &failed) != 0) {
        e = errno;
        step = "in";
        stuck += move_back(r, r->root, r->parent_fd, placed, n_placed, r->tmp);
    }
    if (ofd >= 0 && (rc != 0 || step)) {
        char *where = xasprintf("%s/%s", l->target, old);
        stuck += move_back(r, r->parent_fd, ofd, aside, n_aside, where);
        free(where);
        if (stuck == 0)
            unlinkat(r->parent_fd, old, AT_REMOVEDIR);
    }
    if (step) {
        char after[160];
        if (stuck)
            snprintf(after, sizeof after, "%zu entries could not be put back (the log says where they are)",
                     stuck);
        else
            snprintf(after, sizeof after, "%s was left as it was", l->target);
        if (strcmp(step, "aside") == 0)
            rc = sv_error_set(err, SV_EXIT_FAILED, "cannot move %s/%s aside: %s; %s", l->target, failed,
                              strerror(e), after);
        else
            rc = sv_error_set(err, SV_EXIT_FAILED, "cannot move %s into %s: %s; %s", failed, l->target,
                              strerror(e), after);
        if (e == EACCES || e == EPERM)
            sv_error_hint(err, "a directory without write permission can be moved by root only: run the "
                               "restore as root, or make it writable");
    }
    free_names(aside, n_aside);
    free_names(placed, n_placed);
    free(failed);
    if (ofd >= 0)
        close(ofd);
    if (rc == 0) {
        rm_tree(r->parent_fd, old);
        /* emptied: removed now, or its removal would change the time set below */
        unlinkat(r->parent_fd, r->tmp, AT_REMOVEDIR);
        if (have_top) {
            /* the top's attributes too (the mount point's ACL, say) */
            for (size_t i = 0; i < r->n_dirs; i++) {
                const char *attr = NULL;
                if (r->dirs[i].xattrs &&
                    (strcmp(r->dirs[i].path, ".") == 0 || strcmp(r->dirs[i].path, "./") == 0) &&
                    files_xattrs_write(r->parent_fd, r->dirs[i].xattrs, r->as_root, &r->xattrs_skipped,
                                       &attr) != 0)
                    log_warn("files:%s: cannot set the extended attribute %s of %s: %s", r->name, attr,
                             l->target, strerror(errno));
            }
            fchmod(r->parent_fd, top.st_mode & 03777);
            struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, top.st_mtim};
            futimens(r->parent_fd, ts);
        }
    }
    free(old);
    return rc;
}

/* Where renameat2's exchange is not supported (NFS, some FUSE): the old
 * tree aside, the new one in its place, the old one where the new one
 * was (so that what follows removes it); the old one back on failure. */
static int swap_in_two_steps(loader *l, sv_error *err)
{
    struct files_restore *r = l->impl;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return sv_error_set(err, SV_EXIT_FAILED, "cannot swap the restored tree with %s: %s", l->target,
                            strerror(errno));
    char *aside = xasprintf(".%s.sauve-old-%ld-%d", r->base, (long)time(NULL), (int)getpid());
    int rc = 0;
    if (renameat(r->parent_fd, r->base, r->parent_fd, aside) != 0) {
        rc = sv_error_set(err, SV_EXIT_FAILED, "cannot move %s aside: %s", l->target, strerror(errno));
    } else if (renameat(r->parent_fd, r->tmp, r->parent_fd, r->base) != 0) {
        rc = sv_error_set(err, SV_EXIT_FAILED, "cannot move the restored tree to %s: %s", l->target,
                          strerror(errno));
        if (renameat(r->parent_fd, aside, r->parent_fd, r->base) != 0)
            log_error("files:%s: the previous tree is in %s beside %s", r->name, aside, l->target);
    } else if (renameat(r->parent_fd, aside, r->parent_fd, r->tmp) != 0) {
        rm_tree(r->parent_fd, aside);
    }
    free(aside);
    return rc;
}

static int files_finish(loader *l, bool ok, sv_error *err)
{
    struct files_restore *r = l->impl;
    int rc = 0;
    /* the restored tree on disk before it replaces anything: one syncfs,
     * not an fsync per file */
    if (ok && syncfs(r->root) != 0)
        log_warn("files:%s: syncfs of the restored tree failed: %s", r->name, strerror(errno));
    if (ok) {
        if (r->route == ROUTE_INSIDE) {
            rc = move_inside(l, err);
        } else if (!r->exists) {
            /* a directory made meanwhile is not replaced */
            if (renameat(r->parent_fd, r->tmp, r->parent_fd, r->base) != 0)
                rc = sv_error_set(err, SV_EXIT_FAILED, "cannot move the restored tree to %s: %s", l->target,
                                  strerror(errno));
        } else if (syscall(SYS_renameat2, r->parent_fd, r->tmp, r->parent_fd, r->base, RENAME_EXCHANGE) !=
                   0) {
            rc = swap_in_two_steps(l, err);
        }
        /* after the swap, tmp holds the previous tree */
    } else {
        rc = -1;
        if (r->disk_failed) {
            *err = r->disk_err;
            sv_error_wrap(err, "files:%s: restoring into %s failed", r->name, l->target);
        }
    }
    if (r->root >= 0) {
        close(r->root);
        r->root = -1;
    }
    if (rm_tree(r->parent_fd, r->tmp) != 0)
        log_warn("files:%s: could not remove %s: %s", r->name, r->tmp, strerror(errno));
    if (rc == 0) {
        char human[32];
        log_info("files:%s: %lld entries (%s of file data) restored into %s", r->name, (long long)r->entries,
                 log_human_bytes(r->bytes, human, sizeof human), l->target);
    }
    return rc;
}

static void forget_last_dir(struct files_restore *r)
{
    if (r->last_dir_fd >= 0)
        close(r->last_dir_fd);
    r->last_dir_fd = -1;
    free(r->last_dir);
    r->last_dir = NULL;
}

static void files_destroy(loader *l)
{
    struct files_restore *r = l->impl;
    forget_last_dir(r);
    if (r->root >= 0)
        close(r->root);
    if (r->parent_fd >= 0)
        close(r->parent_fd);
    for (size_t i = 0; i < r->n_dirs; i++) {
        free(r->dirs[i].path);
        files_xattrs_free(r->dirs[i].xattrs);
    }
    free(r->dirs);
    free(r->name);
    free(r->base);
    free(r->tmp);
    free(r);
}

const struct loader_ops files_loader = {
    .drill_target = files_drill_target,
    .drill_needs_dir = true,
    .drill_compare = files_drill_compare,
    .drill_discard = files_drill_discard,
    .kind = "files",
    .forms = files_forms,
    .check = files_check,
    .open = files_open,
    .inspect = files_inspect,
    .safety_source = files_safety_source,
    .start = files_start,
    .finish = files_finish,
    .destroy = files_destroy,
};
