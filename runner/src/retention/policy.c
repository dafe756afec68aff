#include "retention/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/mem.h"
#include "config/config.h"

#define DEFAULT_GRACE (24L * 3600)
#define PERIOD_LEN    64

retention_policy retention_policy_empty(void)
{
    return (retention_policy){
        .keep_last = RETENTION_OFF,
        .keep_hourly = RETENTION_OFF,
        .keep_daily = RETENTION_OFF,
        .keep_weekly = RETENTION_OFF,
        .keep_monthly = RETENTION_OFF,
        .keep_yearly = RETENTION_OFF,
        .keep_within = RETENTION_OFF,
        .grace = DEFAULT_GRACE,
    };
}

bool retention_policy_is_empty(const retention_policy *p)
{
    return p->keep_last < 0 && p->keep_hourly < 0 && p->keep_daily < 0 && p->keep_weekly < 0 &&
           p->keep_monthly < 0 && p->keep_yearly < 0 && p->keep_within < 0;
}

/* ---- calendar periods ------------------------------------------------- */

enum period { PERIOD_HOUR, PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH, PERIOD_YEAR, PERIOD__COUNT };

static const char *const g_rule_names[PERIOD__COUNT] = {"hourly", "daily", "weekly", "monthly", "yearly"};

/* The period of t in local time: as a key (equal keys, same period) or as
 * the label shown after the rule's name. */
static void period_of(time_t t, enum period per, bool label, char out[PERIOD_LEN])
{
    struct tm tm;
    size_t n = 0;
    if (localtime_r(&t, &tm)) {
        switch (per) {
        /* The UTC offset is part of the hour: when clocks go back, 02:00-03:00
         * happens twice, and those are two hours. */
        case PERIOD_HOUR:
            n = label ? strftime(out, PERIOD_LEN, "%Y-%m-%d %H:00 %Z", &tm)
                      : strftime(out, PERIOD_LEN, "%Y-%m-%d %H %z", &tm);
            break;
        case PERIOD_DAY: n = strftime(out, PERIOD_LEN, "%Y-%m-%d", &tm); break;
        /* %G is the year the ISO week belongs to, not the calendar year. */
        case PERIOD_WEEK: n = strftime(out, PERIOD_LEN, "%G-W%V", &tm); break;
        case PERIOD_MONTH: n = strftime(out, PERIOD_LEN, "%Y-%m", &tm); break;
        case PERIOD_YEAR:
        case PERIOD__COUNT: n = strftime(out, PERIOD_LEN, "%Y", &tm); break;
        }
    }
    if (n == 0) /* out of the calendar's range: its own period */
        snprintf(out, PERIOD_LEN, "@%lld", (long long)t);
}

/* ---- plan ------------------------------------------------------------- */

static void add_reason(retention_verdict *v, char *reason)
{
    v->reasons = xrealloc(v->reasons, (v->n_reasons + 1) * sizeof *v->reasons);
    v->reasons[v->n_reasons++] = reason;
}

static void keep(retention_verdict *v, char *reason)
{
    v->keep = true;
    add_reason(v, reason);
}

struct order {
    time_t time;
    const char *id;
    size_t index;
};

/* Newest first; ids break ties so that the order, and so the plan, is
 * deterministic. */
static int newest_first(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    if (x->time != y->time)
        return x->time > y->time ? -1 : 1;
    return -strcmp(x->id, y->id);
}

static void apply_period_rule(const retention_set *sets, const size_t *complete, size_t nc, enum period per,
                              long count, retention_verdict *v)
{
    char last[PERIOD_LEN] = "";
    for (size_t i = 0; i < nc && count > 0; i++) {
        char key[PERIOD_LEN];
        period_of(sets[complete[i]].time, per, false, key);
        if (strcmp(key, last) == 0)
            continue; /* an older set of a period already kept */
        memcpy(last, key, sizeof last);
        char label[PERIOD_LEN];
        period_of(sets[complete[i]].time, per, true, label);
        keep(&v[complete[i]], xasprintf("%s %s", g_rule_names[per], label));
        count--;
    }
}

bool retention_set_in_future(const retention_set *s, time_t now)
{
    return s->state == RETENTION_COMPLETE && s->time > now && s->time - now > RETENTION_FUTURE_SLACK;
}

/* "newest good copy of postgres:app, redis:cache" */
static char *newest_good_reason(const retention_set *s)
{
    size_t len = 32;
    for (size_t j = 0; j < s->n_newest_good_of; j++)
        len += strlen(s->newest_good_of[j]) + 2;
    char *out = xmalloc(len);
    size_t o = (size_t)snprintf(out, len, "newest good copy of ");
    for (size_t j = 0; j < s->n_newest_good_of; j++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", j ? ", " : "", s->newest_good_of[j]);
    return out;
}

void retention_plan_make(const retention_set *sets, size_t n, const retention_policy *p, time_t now,
                         retention_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->n = n;
    plan->verdicts = xcalloc(n ? n : 1, sizeof *plan->verdicts);
    plan->empty_policy = retention_policy_is_empty(p);
    retention_verdict *v = plan->verdicts;

    struct order *order = xcalloc(n ? n : 1, sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = (struct order){sets[i].time, sets[i].id ? sets[i].id : "", i};
    qsort(order, n, sizeof *order, newest_first);

    /* Newest first: the complete sets not dated in the future (candidates
     * for "the newest complete set"), and among them the backups, the only
     * sets the rules count (a safety copy takes no slot). */
    size_t *complete = xcalloc(n ? n : 1, sizeof *complete);
    size_t *counted = xcalloc(n ? n : 1, sizeof *counted);
    size_t nc = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = order[i].index;
        if (sets[k].state != RETENTION_COMPLETE || retention_set_in_future(&sets[k], now))
            continue;
        complete[nc++] = k;
        if (!sets[k].safety)
            counted[nb++] = k;
    }

    char grace[32];
    config_format_duration(p->grace, grace, sizeof grace);

    for (size_t i = 0; i < n; i++)
        if (sets[i].pinned)
            keep(&v[i], xstrdup(sets[i].pinned));

    for (size_t i = 0; i < n; i++)
        if (retention_set_in_future(&sets[i], now))
            keep(&v[i], xstrdup("dated in the future (clock skew?), not counted"));

    if (nc > 0) {
        keep(&v[complete[0]], xstrdup("newest complete (always kept)"));
        if (sets[complete[0]].safety && nb > 0)
            keep(&v[counted[0]], xstrdup("newest complete backup (always kept)"));
    }

    if (plan->empty_policy) {
        for (size_t i = 0; i < nc; i++)
            keep(&v[complete[i]], xstrdup("no retention policy configured (every complete set is kept)"));
    } else {
        for (size_t i = 0; p->keep_last > 0 && i < nb && i < (size_t)p->keep_last; i++)
            keep(&v[counted[i]], xasprintf("last (%zu of %ld)", i + 1, p->keep_last));
        const long counts[PERIOD__COUNT] = {
            [PERIOD_HOUR] = p->keep_hourly,   [PERIOD_DAY] = p->keep_daily,   [PERIOD_WEEK] = p->keep_weekly,
            [PERIOD_MONTH] = p->keep_monthly, [PERIOD_YEAR] = p->keep_yearly,
        };
        for (int per = 0; per < PERIOD__COUNT; per++)
            if (counts[per] > 0)
                apply_period_rule(sets, counted, nb, (enum period)per, counts[per], v);
        if (p->keep_within >= 0 && nb > 0) {
            char within[32];
            config_format_duration(p->keep_within, within, sizeof within);
            /* the newest set may be up to the slack ahead of now */
            time_t newest = sets[counted[0]].time < now ? sets[counted[0]].time : now;
            for (size_t i = 0; i < nb; i++)
                if (newest - sets[counted[i]].time <= p->keep_within)
                    keep(&v[counted[i]], xasprintf("within %s", within));
        }
    }

    for (size_t i = 0; i < nc; i++) {
        const retention_set *s = &sets[complete[i]];
        if (s->safety && now - s->time < RETENTION_SAFETY_KEEP)
            keep(&v[complete[i]], xstrdup("safety copy, kept 7 days"));
    }

    for (size_t i = 0; i < n; i++)
        if (sets[i].state == RETENTION_COMPLETE && sets[i].n_newest_good_of > 0)
            keep(&v[i], newest_good_reason(&sets[i]));

    for (size_t i = 0; i < n; i++) {
        const retention_set *s = &sets[i];
        if (s->state == RETENTION_NEWER_FORMAT) {
            keep(&v[i], xstrdup("written by a newer sauve (never deleted)"));
        } else if (s->state == RETENTION_UNREADABLE) {
            keep(&v[i], xstrdup("manifest unreadable or invalid (never deleted)"));
        } else if (s->state == RETENTION_DAMAGED) {
            keep(&v[i], xasprintf("damaged: %s (never deleted, not counted as a copy)",
                                  s->damage ? s->damage : "an object is missing or of another size"));
        } else if (s->state == RETENTION_INCOMPLETE) {
            time_t active = s->last_activity > s->time ? s->last_activity : s->time;
            if (now - active < p->grace)
                keep(&v[i], xasprintf("incomplete, younger than grace period (%s)", grace));
            else if (!v[i].keep)
                add_reason(&v[i], xasprintf("incomplete for more than the grace period (%s)", grace));
        } else if (!v[i].keep) {
            add_reason(&v[i], xstrdup(s->safety ? "safety copy older than 7 days" : "not kept by any rule"));
        }
        if (v[i].keep)
            plan->n_keep++;
        else
            plan->n_delete++;
    }
    free(counted);
    free(complete);
    free(order);
}

void retention_plan_free(retention_plan *plan)
{
    if (!plan || !plan->verdicts)
        return;
    for (size_t i = 0; i < plan->n; i++) {
        for (size_t j = 0; j < plan->verdicts[i].n_reasons; j++)
            free(plan->verdicts[i].reasons[j]);
        free(plan->verdicts[i].reasons);
    }
    free(plan->verdicts);
    memset(plan, 0, sizeof *plan);
}

/* ---- time zone -------------------------------------------------------- */

/* Names the C library reads as UTC even without a zone database. */
static bool is_utc_name(const char *z)
{
    static const char *const names[] = {"UTC",  "UTC0",    "GMT",     "GMT0",    "UCT",           "Universal",
                                        "Zulu", "Etc/UTC", "Etc/GMT", "Etc/UCT", "Etc/Universal", "Etc/Zulu"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcasecmp(z, names[i]) == 0)
            return true;
    return false;
}

int retention_tz_init(char *name, size_t len)
{
    const char *tz = getenv("TZ");
    if (!tz || !*tz) {
        setenv("TZ", "UTC", 1);
        tzset();
        snprintf(name, len, "UTC");
        return 0;
    }
    tzset();
    snprintf(name, len, "%s", tz);
    const char *zone = tz[0] == ':' ? tz + 1 : tz;
    /* A POSIX rule such as "CET-1CEST,M3.5.0,M10.5.0/3" has digits and no
     * '/' outside its rules; anything else names a file of the zone
     * database, which a slim image may lack. */
    size_t head = strcspn(zone, ",");
    bool posix_rule = strpbrk(zone, "0123456789") && !memchr(zone, '/', head);
    if (posix_rule || is_utc_name(zone))
        return 0;
    const char *dir = getenv("TZDIR");
    char *path =
        zone[0] == '/' ? xstrdup(zone) : xasprintf("%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", zone);
    int rc = access(path, R_OK) == 0 ? 0 : -1;
    free(path);
    return rc;
}
