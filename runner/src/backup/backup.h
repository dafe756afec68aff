/*
 * Taking a backup set: prepare every configured source, stream each of its
 * artifacts through zstd and SHA-256 into storage under NAME/SETID/, then
 * write the manifest last. A set is committed only when its manifest is
 * written, and only when at least one artifact succeeded.
 */
#ifndef SAUVE_BACKUP_BACKUP_H
#define SAUVE_BACKUP_BACKUP_H

#include <stdbool.h>

#include "common/error.h"
#include "config/config.h"
#include "manifest/manifest.h"
#include "sources/source.h"
#include "storage/storage.h"

struct backup_request {
    const char *reason; /* "backup" (default) or "safety" */
    const char *note;   /* recorded in the manifest; may be NULL */
    /* NULL: the configured sources; else this one alone (the safety backup
     * of what a restore replaces). The caller keeps and frees it. */
    source *only;
};

/* What happened to one artifact (or to a whole source that failed before
 * its artifacts were known), for notifications. */
struct backup_artifact_result {
    char *source; /* "postgres:app", or "postgres" */
    bool ok;
    uint64_t bytes_out; /* as stored */
    char *error;        /* NULL when ok */
};

struct backup_result {
    bool committed;
    char set_id[SET_ID_LEN + 1];
    size_t n_ok, n_failed;
    uint64_t bytes_in, bytes_out;
    double seconds;
    char failed[1024]; /* "postgres:app, postgres:x" when some failed */
    struct backup_artifact_result
        *artifacts; /* every artifact tried, in order; free with backup_result_free */
    size_t n_artifacts;
};

/*
 * Runs one backup into st. Returns the exit code: SV_EXIT_OK, SV_EXIT_PARTIAL
 * (committed, some artifact failed), or a failure code with err set
 * (SV_EXIT_TEMPFAIL / SV_EXIT_CONFIG when nothing was written,
 * SV_EXIT_FAILED otherwise); on failure no manifest is written and the
 * objects this run stored are removed.
 */
int backup_run(const sv_config *cfg, storage *st, const struct backup_request *req, struct backup_result *res,
               sv_error *err);

/* Frees what backup_run allocated in res (its artifacts). */
void backup_result_free(struct backup_result *res);

#endif
