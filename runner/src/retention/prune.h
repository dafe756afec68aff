/*
 * Prune: apply the retention policy (retention/policy.h) to the sets of a
 * series in storage. `sauve prune` runs it alone; `sauve backup` runs it
 * after a committed set (never after a failed backup) unless SAUVE_PRUNE is
 * false; `sauve list` shows the same plan.
 *
 * Deletion order makes a crash harmless: first the manifests of every set
 * to delete (one batched delete), so that a half-deleted set is seen as
 * incomplete and never as good; then the other objects of the sets whose
 * manifest is gone (one batched delete); then interrupted writes older than
 * the grace period. The sets come from one listing of NAME/. --dry-run is
 * checked at every destructive call.
 */
#ifndef SAUVE_RETENTION_PRUNE_H
#define SAUVE_RETENTION_PRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "catalog/catalog.h"
#include "common/error.h"
#include "config/config.h"
#include "retention/policy.h"
#include "storage/storage.h"

/* The policy the configuration describes: a keep.* setting left unset is
 * RETENTION_OFF. */
retention_policy retention_policy_from_config(const sv_config *cfg);

/* "last 7, daily 14, within 14d", or "none" for an empty policy; into buf. */
const char *retention_policy_describe(const retention_policy *p, char *buf, size_t len);

/*
 * Sets up the local time zone for calendar periods (retention_tz_init),
 * logging a warning when TZ names a zone this system does not know. Writes
 * the zone's name into name.
 */
void prune_tz_setup(char *name, size_t len);

/*
 * Plans the sets of a loaded catalog: verdicts parallel to cat->sets.
 * pinned_id: a set kept whatever the policy (the one this run committed),
 * or NULL.
 */
void prune_plan_catalog(const catalog *cat, const retention_policy *p, time_t now, const char *pinned_id,
                        retention_plan *plan);

/* "ok", "partial", "incomplete" or "newer format". */
const char *prune_set_status(const catalog_set *s);

struct prune_options {
    bool dry_run;          /* plan and print, delete nothing */
    bool print;            /* print the plan on stdout (sauve prune); else it is logged */
    bool json;             /* with print: as JSON */
    const char *pinned_id; /* see prune_plan_catalog */
};

struct prune_result {
    size_t sets_kept, sets_to_delete, sets_deleted, sets_failed;
    size_t complete_sets; /* complete sets left in the series afterwards */
    size_t uploads_to_remove, uploads_removed, uploads_kept, uploads_failed;
};

/*
 * Loads the catalog of cfg->name, plans, prints or logs the plan, and
 * (unless dry_run) deletes. Returns 0, or -1 with err set: a storage error
 * while listing (its own code), or SV_EXIT_FAILED naming the first key that
 * could not be deleted (after trying every other deletion). res is filled
 * in both cases.
 */
int prune_run(const sv_config *cfg, storage *st, const struct prune_options *o, struct prune_result *res,
              sv_error *err);

#endif
