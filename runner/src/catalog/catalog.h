/*
 * The catalog: which backup sets exist for a series, read from storage and
 * manifests only. A set directory without a readable, valid manifest is
 * incomplete and is never trusted for restore; objects no manifest names are
 * never trusted either. Nor is a manifest alone: every object it names is
 * compared with the listing (presence and size, which the listing gives
 * for free), and a set that fails is damaged.
 *
 * Layout (DESIGN.md): NAME/SETID/manifest.json and NAME/SETID/<artifact keys>.
 */
#ifndef SAUVE_CATALOG_CATALOG_H
#define SAUVE_CATALOG_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "manifest/manifest.h"
#include "manifest/record.h"
#include "storage/storage.h"

typedef struct catalog_set {
    char id[SET_ID_LEN + 1];
    bool complete;     /* manifest present and valid */
    char *problem;     /* why incomplete ("no manifest", "manifest invalid: ..."); NULL when complete */
    bool unreadable;   /* the manifest exists but could not be read (permissions...): prune must keep it */
    bool newer_format; /* incomplete only because a newer sauve wrote the manifest: prune must keep it */
    manifest m;        /* valid only when complete */
    uint64_t stored_bytes; /* sum of object sizes found under the set */
    size_t n_objects;
    char **objects;         /* keys of those objects, relative to the set ("manifest.json", ...) */
    uint64_t *object_sizes; /* their sizes, parallel to objects */
    /* Complete, but an object the manifest names as stored is missing from
     * the listing or has another size than recorded (deleted by a lifecycle
     * rule or an operator, truncated): never a good copy, never deleted
     * automatically. damage says what, artifact_damaged which (parallel to
     * m.artifacts). */
    bool damaged;
    char *damage;
    bool *artifact_damaged;
    int64_t last_modified; /* newest object's modification time (unix seconds); 0 when unknown */
    /* What the last verify and drill of the set found (catalog_load_records):
     * NULL when none is stored, or it cannot be read (record_problem). */
    set_record *verify_record, *drill_record;
    char *record_problem;
} catalog_set;

typedef struct catalog {
    catalog_set *sets; /* newest first */
    size_t n;
    char *name; /* the series, for messages */
    char *url;  /* the storage URL, for messages */
} catalog;

/* Fails with SV_EXIT_CONFIG naming SAUVE_NAME unless name can be the first
 * segment of every key of a series (no '/', no leading '.', the manifest's
 * key rule). */
int catalog_check_name(const char *name, sv_error *err);

/* Lists every set of series `name` with one (paginated) listing of NAME/,
 * then reads each set's manifest. A set is a directory NAME/SETID/ holding
 * at least one object. Fails only when storage fails. */
int catalog_load(storage *st, const char *name, catalog *out, sv_error *err);
void catalog_free(catalog *c);

/*
 * Picks a set: "latest" (or NULL) is the newest complete set taken by a
 * backup (safety copies taken before a restore are skipped); otherwise the
 * exact id, which must be complete, or the time part of an id alone
 * (20261122T020000Z) when exactly one set has that time. Fails with a
 * message listing what exists (64 when the time names several sets).
 */
const catalog_set *catalog_pick(const catalog *c, const char *which, sv_error *err);

/* The artifact kind:name of set s when it is stored and intact (the source
 * succeeded and the listing holds its object at the recorded size), or NULL. */
const manifest_artifact *catalog_usable_artifact(const catalog_set *s, const char *kind, const char *name);

/*
 * Reads the records of verify and drill stored beside each complete set
 * (manifest/record.h) into its verify_record and drill_record. One that
 * cannot be read or parsed (storage failing included) is left NULL and
 * said in record_problem: a record only informs, it never changes what a
 * set is, nor fails what reads it.
 */
void catalog_load_records(storage *st, catalog *c);

/* Stores r beside its set, NAME/SETID/results/COMMAND.json, replacing the
 * previous record of that command. */
int catalog_store_record(storage *st, const char *name, const set_record *r, sv_error *err);

/* Storage key of an artifact: "NAME/SETID/KEY"; newly allocated. */
char *catalog_object_key(const char *name, const char *set_id, const char *relkey);

#endif
