/*
 * Verify: the artifacts of a set read back from storage (never from
 * memory) as a restore would read them, and loaded nowhere. For each: the
 * object's presence and size in the listing (the catalog's damage), its
 * size and SHA-256 against the manifest; then, when it can be opened
 * (unencrypted, or SAUVE_AGE_IDENTITY_FILE holds one of its recipients'
 * identities), decrypted, decompressed and checked by its kind's checker
 * (sources/checker.h: a custom dump walked whole by pg_restore, an RDB's
 * CRC-64, ...).
 * Without a key, an encrypted artifact is checked for integrity only, and
 * the report says so.
 */
#ifndef SAUVE_VERIFY_VERIFY_H
#define SAUVE_VERIFY_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog/catalog.h"
#include "config/config.h"
#include "storage/storage.h"

struct verify_artifact {
    char *source; /* "postgres:app" */
    char *key;    /* relative to the set; NULL for a source that failed during the backup */
    bool ok;
    bool content; /* decrypted, decompressed and its format checked; false: size and SHA-256 only */
    char *detail; /* what was found (success), or what is wrong (the failure) */
};

struct verify_set {
    char id[SET_ID_LEN + 1];
    bool ok;
    struct verify_artifact *artifacts;
    size_t n;
};

struct verify_report {
    struct verify_set *sets; /* newest first */
    size_t n;
    size_t artifacts_checked, artifacts_failed, content_checked;
    bool ok;
};

/*
 * Verifies the sets `which` names of series cfg->name: NULL or "latest"
 * (the newest complete backup, damaged or not: it is the one that matters),
 * "all" (every complete set), or an id or time as --set takes it. Returns 0
 * with out filled (out->ok says whether everything held), or -1 when
 * storage fails or nothing matches (err). Free out either way.
 */
int verify_run(const sv_config *cfg, storage *st, const char *which, struct verify_report *out,
               sv_error *err);
void verify_report_free(struct verify_report *r);

/*
 * Stores what verify found beside each set of r (manifest/record.h,
 * results/verify.json), for `sauve list`. A record that cannot be stored
 * (a read-only credential) is a warning: verifying changes nothing else.
 * Returns how many were not stored.
 */
size_t verify_record(const sv_config *cfg, storage *st, const struct verify_report *r);

/* Artifact i of set (stored: its source did not fail), verified alone as
 * verify_run verifies each: into va, which verify_artifact_free frees. */
void verify_artifact(const sv_config *cfg, storage *st, const catalog_set *set, size_t i,
                     struct verify_artifact *va);
void verify_artifact_free(struct verify_artifact *va);

#endif
