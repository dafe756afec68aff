#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "sources/files.h"

/* Absolute, or a ".." component: a name that reaches outside the tree. */
static const char *escapes(const char *name)
{
    if (name[0] == '/')
        return "an absolute name";
    for (const char *c = name; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return "a name with '..'";
        c += n;
        c += *c == '/';
    }
    return NULL;
}

int files_entry_check(struct archive_entry *e, sv_error *err)
{
    const char *name = archive_entry_pathname(e);
    if (!name)
        return sv_error_set(err, SV_EXIT_FAILED, "the archive holds an entry whose name cannot be read");
    const char *hardlink = archive_entry_hardlink(e);
    const char *bad = escapes(name);
    if (bad)
        return sv_error_set(err, SV_EXIT_FAILED, "the archive holds %s (%.200s): refused", bad, name);
    if (hardlink && (bad = escapes(hardlink)))
        return sv_error_set(err, SV_EXIT_FAILED, "the archive links %.200s to %s (%.200s): refused", name,
                            bad, hardlink);
    mode_t type = archive_entry_filetype(e);
    mode_t perm = archive_entry_perm(e);
    if (!hardlink && (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO || type == AE_IFSOCK))
        return sv_error_set(err, SV_EXIT_FAILED,
                            "the archive holds %.200s, a %s: sauve restores no device node, FIFO or socket",
                            name,
                            type == AE_IFIFO    ? "FIFO"
                            : type == AE_IFSOCK ? "socket"
                                                : "device node");
    if ((perm & S_ISUID) || ((perm & S_ISGID) && type != AE_IFDIR))
        return sv_error_set(err, SV_EXIT_FAILED,
                            "the archive holds %.200s with the set%s bit: sauve restores no such file "
                            "(a forged archive?)",
                            name, (perm & S_ISUID) ? "uid" : "gid");
    const char *attr, *why;
    if (files_xattrs_check(e, &attr, &why) != 0)
        return sv_error_set(err, SV_EXIT_FAILED,
                            "the archive gives %.200s the extended attribute %.100s, which %s: refused", name,
                            attr, why);
    return 0;
}
