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

/* Linux's own limits (XATTR_SIZE_MAX, XATTR_LIST_MAX): an archive that
 * claims more was not written from a Linux file. */
#define XATTR_VALUE_MAX 65536
#define XATTR_NAMES_MAX 65536

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

int files_xattrs_read(int fd, struct archive_entry *e)
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
            if (size < 0)
                break;
            value = xrealloc(value, size ? (size_t)size : 1);
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
        archive_entry_xattr_add_entry(e, n, value, (size_t)size);
    }
    int saved = errno;
    free(value);
    free(names);
    errno = saved;
    return rc;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static const char *refusal(const char *name, size_t size)
{
    if (size > XATTR_VALUE_MAX)
        return "is larger than Linux allows";
    /* like the setuid bit: a forged archive must not hand out privileges */
    if (strcmp(name, "security.capability") == 0)
        return "grants file capabilities";
    if (has_prefix(name, "user.") || has_prefix(name, "trusted.") || has_prefix(name, "security.") ||
        strcmp(name, "system.posix_acl_access") == 0 || strcmp(name, "system.posix_acl_default") == 0)
        return NULL;
    return "is of no namespace sauve restores (user., trusted., security., POSIX ACLs)";
}

int files_xattrs_check(struct archive_entry *e, const char **name, const char **why)
{
    const char *n;
    const void *v;
    size_t size, names = 0;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &n, &v, &size) == ARCHIVE_OK) {
        *name = n;
        if ((*why = refusal(n, size)) != NULL)
            return -1;
        names += strlen(n) + 1;
        /* twice Linux's limit: each attribute may come as two records */
        if (names > 2 * XATTR_NAMES_MAX) {
            *why = "makes the entry's attributes more than Linux allows";
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
        /* the kernel lets only a privileged process set these */
        if (!as_root && (has_prefix(n, "trusted.") || has_prefix(n, "security."))) {
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
