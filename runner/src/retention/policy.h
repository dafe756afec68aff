/*
 * The retention policy: which backup sets a prune keeps and why. A pure
 * function of the sets, the policy, the local time zone and "now": it reads
 * no storage and deletes nothing, so `list`, `prune --dry-run` and `prune`
 * show and do exactly the same plan.
 *
 * Semantics are restic's `forget`, over the complete sets taken by a backup
 * (reason "backup", dated no later than now + 1 h) only:
 *   - last N: the newest N complete sets;
 *   - hourly/daily/weekly/monthly/yearly N: walking complete sets newest
 *     first, the newest set of each distinct period, for the last N periods
 *     that have a set (a gap of a week without backups does not use up
 *     daily slots). Periods are calendar periods in the process's local time
 *     zone (TZ, read by the C library; see retention_tz_init); weeks are ISO
 *     weeks (Monday first, week-year: 2027-01-01 is in 2026-W53);
 *   - within D: every counted set taken no more than D before the newest
 *     counted set or now, whichever is earlier (relative to the newest set:
 *     backups that stopped do not make the policy expire everything);
 *   - a set is kept when any rule keeps it; all the rules keeping it are
 *     reported.
 *
 * Safety rules that no policy switches off:
 *   - the newest complete set is kept; when it is a safety copy (taken
 *     before a restore --clean), the newest complete backup is kept too;
 *   - a complete set dated more than RETENTION_FUTURE_SLACK after now (a
 *     writer with a wrong clock) is kept, and counted by no rule, nor as
 *     the newest complete set;
 *   - safety copies take no rule's slot: each is kept for
 *     RETENTION_SAFETY_KEEP after it was taken, then deleted;
 *   - a set that is the newest good copy of some source is kept;
 *   - a policy with no rule at all keeps every complete set (and says so);
 *     a rule set to 0 is a rule, that keeps nothing by itself;
 *   - an incomplete set (no manifest) is kept while younger than the grace
 *     period (it may be a backup in progress), measured from its last
 *     activity; older, it is deleted;
 *   - a set whose manifest a newer sauve wrote, or whose manifest exists
 *     but cannot be read or is invalid, is never deleted;
 *   - a damaged set (its manifest is valid but an object it names is missing
 *     or has another size) is never deleted, and counts for nothing: no
 *     rule's slot, not the newest complete set, no source's good copy, so
 *     the copies older than it stay protected;
 *   - a pinned set (the one this run just committed) is kept.
 */
#ifndef SAUVE_RETENTION_POLICY_H
#define SAUVE_RETENTION_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* A rule count: RETENTION_OFF when not configured, else 0..N. */
#define RETENTION_OFF (-1L)

/* How far after now a set may be dated before it is "in the future". */
#define RETENTION_FUTURE_SLACK 3600L

/* How long a safety copy is kept after it was taken. */
#define RETENTION_SAFETY_KEEP (7L * 86400)

typedef struct retention_policy {
    long keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly;
    long keep_within; /* seconds; RETENTION_OFF when not configured */
    long grace;       /* seconds an incomplete set is left alone */
} retention_policy;

/* A policy with every rule off and a grace of 24 h. */
retention_policy retention_policy_empty(void);

/* Whether no rule is configured (every rule RETENTION_OFF). */
bool retention_policy_is_empty(const retention_policy *p);

enum retention_state {
    RETENTION_COMPLETE,     /* manifest present and valid (status ok or partial) */
    RETENTION_INCOMPLETE,   /* no manifest */
    RETENTION_NEWER_FORMAT, /* manifest written by a newer sauve: never deleted */
    RETENTION_UNREADABLE,   /* manifest present but unreadable or invalid: never deleted */
    RETENTION_DAMAGED,      /* valid manifest, but an object missing or of another size: never deleted */
};

typedef struct retention_set {
    const char *id;       /* for messages; not interpreted */
    time_t time;          /* when the set was taken (its id's UTC time) */
    time_t last_activity; /* newest object's modification time, 0 when unknown */
    enum retention_state state;
    bool safety;        /* a safety copy taken before restore --clean */
    const char *damage; /* RETENTION_DAMAGED: what is wrong, for the reason */
    const char *pinned; /* non-NULL: always kept, with this as the reason */
    /* Sources ("postgres:app") of which this is the newest complete set
     * holding a good copy: always kept, and the reason names them. */
    const char *const *newest_good_of;
    size_t n_newest_good_of;
} retention_set;

/* Whether s is a complete set dated more than RETENTION_FUTURE_SLACK after now. */
bool retention_set_in_future(const retention_set *s, time_t now);

typedef struct retention_verdict {
    bool keep;
    char **reasons; /* why kept (every rule keeping it), or why deleted (one) */
    size_t n_reasons;
} retention_verdict;

typedef struct retention_plan {
    retention_verdict *verdicts; /* parallel to the sets given */
    size_t n, n_keep, n_delete;
    bool empty_policy;
} retention_plan;

/*
 * Plans sets[0..n) (any order) under policy p at time now. Fills plan (its
 * verdicts parallel to sets); free with retention_plan_free. Never fails.
 */
void retention_plan_make(const retention_set *sets, size_t n, const retention_policy *p, time_t now,
                         retention_plan *plan);
void retention_plan_free(retention_plan *plan);

/*
 * Makes the C library's local time the zone TZ names, and UTC when TZ is
 * unset or empty (rather than the host's /etc/localtime: a container's zone
 * must not depend on its image). Sets TZ in the environment only in that
 * case, once; sauve does nothing else with local time. Writes the zone's
 * name for messages ("UTC", "Europe/Paris") into name. Returns 0, or -1
 * when TZ names a zone file that does not exist (the C library would then
 * silently compute in UTC): the caller warns.
 */
int retention_tz_init(char *name, size_t len);

#endif
