/*
 * Extended attributes of a tree's files and directories (files.xattrs):
 * read into the archive's entries at backup (libarchive's pax writer
 * stores them as SCHILY.xattr and LIBARCHIVE.xattr records, which GNU tar
 * and bsdtar read), set again at restore. POSIX ACLs are the attributes
 * system.posix_acl_access and system.posix_acl_default, and travel as
 * their bytes like any other: no ACL library is needed on either side.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/mem.h"
#include "sources/files.h"

/* Linux's own limits (XATTR_SIZE_MAX, XATTR_LIST_MAX, XATTR_NAME_MAX): an
 * archive that claims more was not written from a Linux file. */
#define XATTR_VALUE_MAX 65536
#define XATTR_NAMES_MAX 65536
#define XATTR_NAME_LEN  255
/* All the values of one entry: far more than any file system keeps for
 * one file (ext4: a block), and a bound on what a forged entry costs. */
#define XATTR_ENTRY_MAX (1u << 20)

struct files_xattrs {
    size_t n;
    struct files_xattr {
        char *name;
        void *value;
        size_t size;
        size_t seq; /* its place in the archive */
    } * a;
};

/* The names of fd's attributes, NUL-separated, into *names; their length,
 * or -1 with errno. A list that grows between the two calls is asked
 * again. */
static ssize_t list_names(int fd, char **names)
{
    ssize_t len = -1;
    for (int tries = 0; tries < 4; tries++) {
        len = flistxattr(fd, NULL, 0);
        if (len <= 0)
            return len;
        *names = xrealloc(*names, (size_t)len);
        len = flistxattr(fd, *names, (size_t)len);
        if (len >= 0 || errno != ERANGE)
            return len;
    }
    return len;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A POSIX ACL as the kernel takes it: a version 2 header, then entries of
 * a known tag with permissions rwx at most. */
static bool acl_is_valid(const unsigned char *v, size_t size)
{
    if (size < 4 || (size - 4) % 8 != 0 || v[0] != 2 || v[1] || v[2] || v[3])
        return false;
    for (size_t off = 4; off < size; off += 8) {
        unsigned tag = v[off] | (unsigned)v[off + 1] << 8, perm = v[off + 2] | (unsigned)v[off + 3] << 8;
        if ((tag != 1 && tag != 2 && tag != 4 && tag != 8 && tag != 16 && tag != 32) || perm > 7)
            return false;
    }
    return true;
}

const char *files_xattr_refusal(const char *name, const void *value, size_t size)
{
    if (size > XATTR_VALUE_MAX)
        return "is larger than Linux allows";
    if (strlen(name) > XATTR_NAME_LEN)
        return "has a name longer than Linux allows";
    if (has_prefix(name, "user."))
        return name[5] ? NULL : "has an empty name";
    if (strcmp(name, "system.posix_acl_access") == 0 || strcmp(name, "system.posix_acl_default") == 0)
        return acl_is_valid(value, size) ? NULL : "is not a POSIX ACL the kernel takes";
    /* the one security label a restore sets: the others (capabilities,
     * Smack's exec labels, IMA/EVM) hand out privileges, as a setuid bit
     * does, and trusted. ones steer the kernel (overlayfs): a forged
     * archive must set none */
    if (strcmp(name, "security.selinux") == 0)
        return NULL;
    if (strcmp(name, "security.capability") == 0)
        return "grants file capabilities";
    return "is not one sauve restores (user., POSIX ACLs, security.selinux)";
}

int files_xattrs_read(int fd, struct archive_entry *e,
                      void (*left_out)(void *ctx, const char *name, const char *why), void *ctx)
{
    char *names = NULL;
    ssize_t len = list_names(fd, &names);
    if (len < 0) {
        int saved = errno;
        free(names);
        /* a file system without attributes: the file has none */
        if (saved == ENOTSUP)
            return 0;
        errno = saved;
        return -1;
    }
    void *value = NULL;
    int rc = 0;
    for (char *n = names; n && n < names + len; n += strlen(n) + 1) {
        ssize_t size = -1;
        for (int tries = 0; tries < 4; tries++) {
            size = fgetxattr(fd, n, NULL, 0);
            /* an empty value is read as it is: asked again with size 0, a
             * value grown meanwhile would be sized but not copied */
            if (size <= 0)
                break;
            value = xrealloc(value, (size_t)size);
            size = fgetxattr(fd, n, value, (size_t)size);
            if (size >= 0 || errno != ERANGE)
                break;
        }
        if (size < 0 && errno == ENODATA)
            continue; /* removed since the listing */
        if (size < 0) {
            rc = -1;
            break;
        }
        const char *why = files_xattr_refusal(n, value, (size_t)size);
        if (why)
            left_out(ctx, n, why);
        else
            archive_entry_xattr_add_entry(e, n, size ? value : "", (size_t)size);
    }
    int saved = errno;
    free(value);
    free(names);
    errno = saved;
    return rc;
}

int files_xattrs_check(struct archive_entry *e, const char **name, const char **why)
{
    const char *n;
    const void *v;
    size_t size, names = 0, values = 0;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &n, &v, &size) == ARCHIVE_OK) {
        *name = n;
        if ((*why = files_xattr_refusal(n, v, size)) != NULL)
            return -1;
        names += strlen(n) + 1;
        values += size;
        /* twice the limits: each attribute may come as two records */
        if (names > 2 * XATTR_NAMES_MAX || values > 2 * XATTR_ENTRY_MAX) {
            *why = "makes the entry's attributes more than a file can hold";
            return -1;
        }
    }
    return 0;
}

static int cmp_xattr(const void *a, const void *b)
{
    const struct files_xattr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    /* equal names keep the reader's order: which one is set never depends on qsort */
    return c ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

struct files_xattrs *files_xattrs_copy(struct archive_entry *e)
{
    if (archive_entry_xattr_reset(e) == 0)
        return NULL;
    struct files_xattrs *x = xcalloc(1, sizeof *x);
    const char *n;
    const void *v;
    size_t size;
    while (archive_entry_xattr_next(e, &n, &v, &size) == ARCHIVE_OK) {
        x->a = xrealloc(x->a, (x->n + 1) * sizeof *x->a);
        void *copy = xmalloc(size ? size : 1);
        if (size)
            memcpy(copy, v, size);
        x->a[x->n] = (struct files_xattr){xstrdup(n), copy, size, x->n};
        x->n++;
    }
    /* libarchive's pax writer stores each attribute twice, as a
     * LIBARCHIVE.xattr and a SCHILY.xattr record, and its reader returns
     * both: one of each name is set */
    qsort(x->a, x->n, sizeof *x->a, cmp_xattr);
    size_t kept = 0;
    for (size_t i = 0; i < x->n; i++) {
        if (kept && strcmp(x->a[kept - 1].name, x->a[i].name) == 0) {
            free(x->a[kept - 1].name);
            free(x->a[kept - 1].value);
            kept--;
        }
        x->a[kept++] = x->a[i];
    }
    x->n = kept;
    return x;
}

size_t files_xattrs_bytes(const struct files_xattrs *x)
{
    size_t n = 0;
    for (size_t i = 0; x && i < x->n; i++)
        n += strlen(x->a[i].name) + 1 + x->a[i].size;
    return n;
}

void files_xattrs_free(struct files_xattrs *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->n; i++) {
        free(x->a[i].name);
        free(x->a[i].value);
    }
    free(x->a);
    free(x);
}

int files_xattrs_write(int fd, const struct files_xattrs *x, bool as_root, size_t *skipped,
                       const char **failed)
{
    for (size_t i = 0; x && i < x->n; i++) {
        const char *n = x->a[i].name;
        /* the kernel lets only a privileged process set a label */
        if (!as_root && has_prefix(n, "security.")) {
            (*skipped)++;
            continue;
        }
        if (fsetxattr(fd, n, x->a[i].value, x->a[i].size, 0) != 0) {
            *failed = n;
            return -1;
        }
    }
    return 0;
}
