/*
 * Directory trees (upload volumes): each configured tree is stored as one
 * POSIX pax archive, written with libarchive while the tree is walked, so
 * that `zstd -dc NAME.tar.zst | tar -x` restores it without sauve.
 *
 *   files_conf.c     the trees and exclude patterns of the configuration (pure)
 *   files_backup.c   the dumper behind sources/source.h
 *   files_tar.c      a tar read from a push stream (libarchive on a thread)
 *   files_verify.c   the checker behind sources/checker.h
 *   files_restore.c  the loader behind sources/loader.h
 *   files_drill.c    the loader's drill: a scratch tree counted, then removed
 *   files_entry.c    what an archive's entry may be, for restore and verify alike
 *   files_xattr.c    extended attributes and POSIX ACLs (files.xattrs)
 */
#ifndef SAUVE_SOURCES_FILES_H
#define SAUVE_SOURCES_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "config/config.h"
#include "pipeline/stream.h"
#include "sources/source.h"

/* The artifact format, in the manifest. */
#define FILES_FORMAT "tar-pax"

/* ---- configuration (files_conf.c) -------------------------------------- */

struct files_tree {
    char *name;      /* NAME of NAME=/path: files/NAME.tar, files:NAME */
    char *path;      /* absolute */
    char **excludes; /* patterns of this tree: files.exclude's global ones and its NAME:PATTERN ones */
    size_t n_excludes;
};

/* True when files.trees (SAUVE_FILES) names at least one tree. */
bool files_configured(const sv_config *cfg);

/*
 * The trees of files.trees with their files.exclude patterns, newly
 * allocated into *trees (free with files_trees_free). Fails with 78 naming
 * the setting when an item is not NAME=/absolute/path, a NAME is not a safe
 * artifact name or repeats, or a pattern is empty.
 */
int files_trees_parse(const sv_config *cfg, struct files_tree **trees, size_t *n, sv_error *err);
void files_trees_free(struct files_tree *trees, size_t n);

/* True when NAME can name a tree: 1..100 of [A-Za-z0-9._-], not starting with '.'. */
bool files_name_is_valid(const char *name);

/*
 * Pure: does pattern exclude the entry at rel (its path from the tree's
 * top, "a/b/c") whose last component is base? A pattern without '/' is
 * matched against base (at any depth); one with a '/' before its end
 * against rel (a leading '/' anchors it at the top, and is dropped); a
 * trailing '/' matches directories only. Globs are fnmatch(3)'s, '*' not
 * crossing '/' in a path pattern.
 */
bool files_exclude_match(const char *pattern, const char *rel, const char *base, bool is_dir);

/* The patterns of an exclude file's text: one per line, '#' comments and
 * blank lines skipped, surrounding spaces trimmed. Appended to *list. */
void files_exclude_parse_lines(const char *text, size_t len, char ***list, size_t *n);

/* ---- the dumper (files_backup.c) ---------------------------------------- */

/* The source of every configured tree: one artifact files/NAME.tar each. */
source *files_source_new(const sv_config *cfg);

/* The source of one tree at path, named name, with the configuration's
 * other settings (the safety backup of a restore --clean). */
source *files_source_for(const sv_config *cfg, const char *name, const char *path);

/* ---- a tar read from a push stream (files_tar.c) ------------------------- */

struct archive;

/*
 * Runs consume(a, ctx, err) on a thread, with a (a libarchive reader of
 * tar formats only, no compression filter) reading the bytes written into
 * the returned sink. The sink's finish waits for consume and fails with
 * its error when it failed; abort makes a's reads fail and waits for it.
 * Trailing bytes after the end of the archive are read and discarded.
 * Memory: two buffers of 1 MiB.
 */
stream *files_tar_sink(int (*consume)(struct archive *a, void *ctx, sv_error *err), void *ctx,
                       const char *name);

/* ---- entries (files_entry.c) ---------------------------------------------- */

struct archive_entry;

/*
 * Whether a restore extracts entry e of an archive, by its header alone
 * (restore checks the same again as it opens each directory): refused, an
 * absolute name or one with a ".." component, in its name or its hard
 * link's target; a device node, FIFO or socket; a setuid file, or setgid
 * other than a directory; an extended attribute files_xattrs_check
 * refuses. 0, or -1 with err naming the entry. Pure: `sauve
 * verify` refuses what a restore would, so that a set that verifies
 * restores.
 */
int files_entry_check(struct archive_entry *e, sv_error *err);

/* ---- extended attributes (files_xattr.c) ------------------------------------ */

/*
 * Adds the extended attributes of the open file or directory fd to e
 * (POSIX ACLs among them: system.posix_acl_*), but those a restore would
 * refuse (files_xattr_refusal), each passed to left_out instead. 0, also
 * on a file system without attributes; -1 with errno when they cannot be
 * listed or read.
 */
int files_xattrs_read(int fd, struct archive_entry *e,
                      void (*left_out)(void *ctx, const char *name, const char *why), void *ctx);

/*
 * Pure: why a restore does not set attribute name = value[size], or NULL
 * when it does. It sets user. attributes, POSIX ACLs that are well formed
 * and security.selinux; it refuses the rest, among them what hands out
 * privileges as a setuid bit does (security.capability, other security.
 * labels, trusted. attributes), and what Linux would not take.
 */
const char *files_xattr_refusal(const char *name, const void *value, size_t size);

/*
 * Whether e's attributes may be restored (pure; files_entry_check asks
 * it): each one files_xattr_refusal accepts, and all of them within what a
 * file can hold. 0, or -1 with *name and *why saying which and why.
 */
int files_xattrs_check(struct archive_entry *e, const char **name, const char **why);

/* A copy of e's attributes, to set later (a directory's, once its content
 * is in); NULL when it has none. */
struct files_xattrs;
struct files_xattrs *files_xattrs_copy(struct archive_entry *e);
void files_xattrs_free(struct files_xattrs *x);
/* The bytes x holds (names and values); 0 for NULL. */
size_t files_xattrs_bytes(const struct files_xattrs *x);

/*
 * Sets x's attributes on fd. security.selinux only when as_root (the
 * kernel refuses it to others): otherwise it is counted in *skipped. 0,
 * or -1 with errno and *failed naming the attribute.
 */
int files_xattrs_write(int fd, const struct files_xattrs *x, bool as_root, size_t *skipped,
                       const char **failed);

/* ---- restore (files_restore.c) and drill (files_drill.c) ------------------- */

/* Removes path and everything below it, never following a symbolic link,
 * and making restored directories without write permission writable
 * first. 0 also when path does not exist. */
int files_remove_tree(const char *path);

struct drill_findings;
struct loader_options;
int files_drill_target(const manifest_artifact *a, const char *dir, const char *tag, struct loader_options *o,
                       char **owned, const char **skip);
int files_drill_compare(const sv_config *cfg, const manifest_artifact *a, const struct loader_options *o,
                        struct drill_findings *f, sv_error *err);
int files_drill_discard(const sv_config *cfg, const struct loader_options *o, sv_error *err);

#endif
