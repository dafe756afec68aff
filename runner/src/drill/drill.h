/*
 * The restore drill: a set proven restorable by restoring it. Each stored
 * artifact of the set goes through the same restore as `sauve restore`
 * (restore/), into a scratch target its loader names (a new database on
 * the drill's own PostgreSQL server, an RDB file or a tree under
 * drill.dir), which is then compared with the manifest (row counts, keys,
 * entries), checked with the user's own queries (drill.checks), and
 * removed whatever happened. What a drill does not load (the cluster's
 * globals, a keys-mode Redis artifact) is read whole as `sauve verify`
 * reads it.
 *
 * The result is stored beside the set (manifest/record.h,
 * results/drill.json): how long each restore took, the restore time a
 * team can quote, and what was compared.
 */
#ifndef SAUVE_DRILL_DRILL_H
#define SAUVE_DRILL_DRILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "common/error.h"
#include "config/config.h"
#include "storage/storage.h"

struct drill_request {
    const char *set;          /* --set: an id, a time or "latest"; NULL is latest */
    const char *const *specs; /* KIND:NAME to drill; none: every stored artifact of the set */
    size_t n_specs;
};

struct drill_source {
    char *source; /* "postgres:app" */
    bool ok;
    bool loaded;      /* restored into a scratch target; false: read whole only (detail says why) */
    double restore_s; /* when loaded: the restore's duration */
    const char *unit; /* "rows", "keys", "entries"; NULL when nothing was counted */
    uint64_t counted, compared;
    size_t checks_run, checks_failed;
    char *detail; /* one line: what was found, or what is wrong */
    int code;     /* when !ok: the exit code the failure maps to */
};

struct drill_report {
    char set_id[SET_ID_LEN + 1];
    bool ok;
    int code;              /* SV_EXIT_OK, or the worst failure's */
    double restore_s;      /* the restores' total */
    size_t checks_not_run; /* drill.checks of databases this drill did not restore (specs named others) */
    struct drill_source *sources;
    size_t n;
    char *record_error; /* the result could not be stored beside the set: why; NULL when stored */
};

/*
 * Drills the set req->set of series cfg->name. Returns 0 with out filled
 * (out->ok: every source drilled held), or -1 when nothing could be
 * drilled (storage unreachable, no such set, a spec the set does not hold:
 * err). Free out either way.
 */
int drill_run(const sv_config *cfg, storage *st, const struct drill_request *req, struct drill_report *out,
              sv_error *err);
void drill_report_free(struct drill_report *r);

/* Stores the record of the drill beside its set, with the run's summary
 * line; on failure sets r->record_error. */
void drill_record(const sv_config *cfg, storage *st, struct drill_report *r, const char *summary);

#endif
