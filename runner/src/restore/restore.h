/*
 * Restore: one source of one set, KIND:NAME, streamed from storage through
 * SHA-256 and zstd into the loader of its kind (sources/loader.h), never
 * through local disk. What every kind shares is here: the set (latest,
 * --set, or the newest that holds a usable copy), the object's size and
 * checksum, decryption and decompression, the confirmation, the safety
 * backup of a target that is about to be replaced, and the timing. How a target of each kind
 * is inspected, changed and undone is its loader's.
 *
 * The target is changed only once the whole artifact verified: the loader
 * sees the end of the stream only then (a loader that cannot hold its
 * target back undoes what landed instead: sources/loader.h).
 */
#ifndef SAUVE_RESTORE_RESTORE_H
#define SAUVE_RESTORE_RESTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "config/config.h"
#include "sources/loader.h"
#include "storage/storage.h"

struct restore_request {
    const char *spec;           /* "postgres:app"; NULL when not exactly one was given */
    const char *set;            /* --set: an id, a time or "latest"; NULL is latest */
    struct loader_options load; /* --into, --clean, --no-owner, --to-file, --online */
    bool no_safety_backup;      /* --no-safety-backup */
    bool yes;                   /* --yes: no confirmation (Jobs) */
    const char *confirm;        /* --confirm: the target typed again; NULL when not given */
};

/* A spec parsed against the loader registry. */
struct restore_spec {
    const char *text;             /* "postgres:app", as given */
    const struct loader_ops *ops; /* the loader of its kind */
    const char *name;             /* "app": points into text */
};

/*
 * Parses req->spec, KIND:NAME, and has the kind's loader check NAME and
 * the options, before anything is opened. Fails with SV_EXIT_USAGE: no
 * spec, no ':', an empty NAME, or a kind this build does not restore (the
 * message lists the forms of every loader of the registry), or what the
 * loader refuses.
 */
int restore_parse(const struct restore_request *req, struct restore_spec *spec, sv_error *err);

struct restore_result {
    char set_id[SET_ID_LEN + 1]; /* the set restored from */
    char *what;                  /* "database app": what now holds the artifact */
    uint64_t bytes_in;           /* the artifact's size before compression */
    long seconds;                /* from the start of the load, after the confirmation */
    /* Also on failure: */
    bool target_started;  /* the loader prepared its target (created it): what a drill must remove */
    bool artifact_failed; /* the artifact itself failed (size, digest, decryption, decompression),
                           * not the loader or its target */
};

/*
 * Restores spec (from restore_parse) out of the series cfg->name in st:
 * picks the set, checks that an encrypted artifact can be opened
 * (restore_check_identity), asks for confirmation (unless req->yes;
 * without a terminal that is a usage error), has the loader inspect its
 * target, takes a
 * safety backup of a target about to be replaced (unless
 * req->no_safety_backup), then streams the artifact into the loader.
 * Returns 0 with res filled, or -1 with err: nothing was changed, or what
 * the loader's error says. Free res with restore_result_free either way.
 */
int restore_run(const sv_config *cfg, storage *st, const struct restore_spec *spec,
                const struct restore_request *req, struct restore_result *res, sv_error *err);
void restore_result_free(struct restore_result *res);

/*
 * For an artifact encrypted to age recipients: whether SAUVE_AGE_IDENTITY_FILE
 * holds the identity of one of them, checked before anything changes; the
 * error (78) names the recipients. 0 for an unencrypted artifact.
 */
int restore_check_identity(const sv_config *cfg, const catalog_set *set, const manifest_artifact *a,
                           sv_error *err);

/*
 * Streams the object of artifact a (of set) into sink, checking its SHA-256
 * and size against the manifest before the sink is finished, and decrypting
 * it with SAUVE_AGE_IDENTITY_FILE when it is encrypted. Finishes the
 * sink on success and aborts it on any failure; frees it either way.
 */
int restore_stream_artifact(storage *st, const sv_config *cfg, const catalog_set *set,
                            const manifest_artifact *a, stream *sink, sv_error *err);

/* How far restore_read_artifact goes into an artifact. */
enum artifact_depth {
    ARTIFACT_STORED,  /* the object's size and SHA-256: needs no key; sink gets the stored bytes */
    ARTIFACT_CONTENT, /* and then decrypted and decompressed: sink gets what the loader would */
};

/* restore_stream_artifact, or with ARTIFACT_STORED only the object's
 * integrity (verify without an identity, or after a backup). */
int restore_read_artifact(storage *st, const sv_config *cfg, const catalog_set *set,
                          const manifest_artifact *a, enum artifact_depth depth, stream *sink, sv_error *err);

#endif
