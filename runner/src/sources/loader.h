/*
 * A loader: how one kind of source is restored (PostgreSQL, Redis; directories
 * later), the counterpart of the dumper behind source.h and
 * defined beside it, in sources/KIND_restore.c. `sauve restore KIND:NAME`
 * restores artifact NAME of kind KIND through the loader of that kind.
 *
 * The restore orchestrator (restore/) owns what every kind shares: the
 * choice of the set, the object read from storage, its size and SHA-256,
 * zstd, the confirmation, the safety backup and the summary. A loader
 * knows none of them; it knows its target. Calls, in order:
 *
 *   check     the NAME and the options, before anything is opened
 *   open      a loader for them (nothing reached yet)
 *   inspect   the target, before anything changes: refuses what cannot be
 *             done (a non-empty target without --clean, no tool that can
 *             load the artifact) and says whether the target holds data
 *             that the restore replaces (then restore/ takes a safety
 *             backup of it first, with the source safety_source makes)
 *   start     prepares the target and returns the sink that receives the
 *             artifact's decompressed bytes
 *   finish    after the last byte (ok) or a failure (!ok): completes the
 *             restore, or undoes what start did
 *
 * (`sauve verify` reads an artifact the way a restore would but loads it
 * nowhere: that is each kind's checker, sources/checker.h.)
 *
 * `sauve drill` (drill/) restores an artifact the same way into a scratch
 * target that each kind names (drill_target), compares what landed there
 * with the manifest (drill_compare), and removes it (drill_discard).
 *
 * then loader_free. The sink must not let the target commit anything
 * before restore/ finishes it: restore/ verifies the artifact's size and
 * SHA-256 only at its end. (The one exception, a Redis restored online,
 * which no transaction can hold back, says in redis_restore.c how finish
 * undoes what landed.)
 */
#ifndef SAUVE_SOURCES_LOADER_H
#define SAUVE_SOURCES_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "config/config.h"
#include "manifest/manifest.h"
#include "pipeline/stream.h"
#include "sources/source.h"

/* The restore command's options that reach the loader. */
struct loader_options {
    const char *into;    /* --into: another target than NAME; NULL when not given */
    bool clean;          /* --clean: a target that holds data may be replaced */
    bool no_owner;       /* --no-owner (PostgreSQL: objects owned by the restoring user) */
    bool no_privileges;  /* PostgreSQL: no GRANT/REVOKE (a drill's scratch server need not have the roles) */
    const char *to_file; /* --to-file PATH (Redis: an RDB file for a stopped server); NULL when not given */
    bool online;         /* --online (Redis: replayed into a running server) */
    const char *to;      /* --to DIR (files: the directory restored into); NULL when not given */
};

typedef struct loader loader;

/* What a drill found in its scratch target, against the manifest. */
struct drill_findings {
    const char *unit;  /* "rows", "keys", "entries": what was counted */
    uint64_t counted;  /* found in the scratch target */
    uint64_t compared; /* of those, compared with a figure the manifest recorded */
    size_t checks_run; /* the user's own checks (drill.checks) */
    size_t checks_failed;
    char *mismatch; /* the first difference or failed check; NULL when everything held */
    char *note;     /* what could not be compared, and why; NULL */
};

struct loader_ops {
    const char *kind; /* "postgres": KIND of KIND:NAME, the manifest's kind */
    /* The specs it restores, for usage messages: {"postgres:DATABASE",
     * "postgres:globals", NULL}. */
    const char *const *forms;
    /* Checks NAME (never empty) and the options it was given, before
     * anything is opened. Fails with SV_EXIT_USAGE. */
    int (*check)(const char *name, const struct loader_options *o, sv_error *err);
    /* A loader of NAME (checked) with o (copied). Reaches nothing: never fails. */
    loader *(*open)(const sv_config *cfg, const char *name, const struct loader_options *o);
    /*
     * Inspects the target for artifact a (the manifest's record: format,
     * tool and server versions), before anything changes. Fails (nothing
     * changed) when the restore cannot or must not go on. Sets *replaces
     * when the target holds data that the restore will replace.
     */
    int (*inspect)(loader *l, const manifest_artifact *a, bool *replaces, sv_error *err);
    /* After inspect set *replaces: a source that backs up the target as it
     * is now, for the safety backup. The caller frees it (source_free). */
    source *(*safety_source)(loader *l);
    /*
     * Prepares the target (creates it, or a scratch copy to swap in) and
     * starts loading: *sink receives the artifact's decompressed bytes. On
     * failure, undoes what it did; finish is then not called.
     */
    int (*start)(loader *l, stream **sink, sv_error *err);
    /*
     * Called once the sink was finished (ok: the whole artifact verified)
     * or aborted (!ok: reading or verifying it failed, or the loader
     * stopped reading). Completes the restore (0), or undoes what start did
     * and returns -1. err is set when the loader's own failure is the cause
     * (always when ok; when !ok, only when the loader failed before the
     * artifact did, e.g. it refused its content): otherwise the caller
     * reports the artifact's error.
     */
    int (*finish)(loader *l, bool ok, sv_error *err);
    void (*destroy)(loader *l);

    /* ---- drill ---- */
    /*
     * A scratch target for artifact a into o: a new database, or a file or
     * directory under dir, named after tag (unique to the drill). *owned
     * receives the string o points to (the caller frees it). Returns 1
     * with *skip (static text) when a drill does not load this artifact.
     */
    int (*drill_target)(const manifest_artifact *a, const char *dir, const char *tag,
                        struct loader_options *o, char **owned, const char **skip);
    /* drill_target puts its target under dir: drill/ makes dir, a private
     * directory of the run inside drill.dir, and removes it after */
    bool drill_needs_dir;
    /* Compares the scratch target with what a's manifest recorded, and
     * runs the user's checks; fills f. Fails (err) only when the target
     * cannot be read. */
    int (*drill_compare)(const sv_config *cfg, const manifest_artifact *a, const struct loader_options *o,
                         struct drill_findings *f, sv_error *err);
    /* Removes the scratch target, whatever state it is in. */
    int (*drill_discard)(const sv_config *cfg, const struct loader_options *o, sv_error *err);
};

struct loader {
    const struct loader_ops *ops;
    /* What the restore changes, set by open, for messages: */
    char *target;  /* as the user named it: "app" (--into, else NAME) */
    char *what;    /* "database app", "the cluster": the summary, the safety backup */
    char *changes; /* "database app", "the cluster's roles": the confirmation */
    void *impl;
};

/* Frees target, what and changes, then calls ops->destroy. NULL allowed. */
void loader_free(loader *l);

/* The hint of a restore that refused to start while a sauve backup of its
 * target runs (exit 75), whatever the kind. */
#define LOADER_HINT_BACKUP_RUNNING                                                                           \
    "run the restore again once the backup has ended; to keep the next scheduled backup from starting "      \
    "during "                                                                                                \
    "the restore, suspend the backup CronJob first (kubectl patch cronjob NAME -p "                          \
    "'{\"spec\":{\"suspend\":true}}')"

/*
 * For loaders that write files: whether the file system of directory dirfd
 * has room for bytes (the artifact's size before compression) and files
 * (its entries; 0 when not known). 0, or 1 (SV_EXIT_FAILED) with err
 * naming target, what is needed and what is free: checked before anything
 * changed, since a restore that fills the volume half-way helps no one and
 * may stop the application that shares it. A file system that cannot say
 * (statvfs fails, or reports no size or no inodes) is not refused.
 */
int loader_check_space(int dirfd, const char *target, uint64_t bytes, int64_t files, sv_error *err);

/* ---- the registry: the kinds this build restores (loader.c) ------------ */

/* The loader of kind, the first len bytes of it (the KIND of KIND:NAME),
 * or NULL when this build restores no such kind. */
const struct loader_ops *loader_find(const char *kind, size_t len);

/* "postgres:DATABASE or postgres:globals": the forms of every loader of
 * this build, for usage messages. Newly allocated. */
char *loader_forms(void);

/* Pure: the forms of loaders[0..n) joined as a sentence: "a, b or c".
 * Newly allocated. */
char *loader_forms_of(const struct loader_ops *const *loaders, size_t n);

#endif
