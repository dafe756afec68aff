/*
 * Tests of runner/src/retention: the policy on generated histories (a year
 * of sets with gaps, several a day, DST changes in Europe/Paris, ISO week
 * boundaries, incomplete and newer-format sets mixed in), the safety rules,
 * durations, and prune over local storage (deletion, dry run, interrupted
 * writes).
 */
#include "testutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "catalog/catalog.h"
#include "common/mem.h"
#include "config/config.h"
#include "manifest/manifest.h"
#include "retention/policy.h"
#include "retention/prune.h"
#include "storage/storage.h"

#define DAY  86400L
#define HOUR 3600L

static void use_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static time_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return timegm(&tm);
}

/* A history: sets with ids made from their times, all complete unless
 * changed afterwards. */
typedef struct {
    retention_set *sets;
    char (*ids)[SET_ID_LEN + 1];
    size_t n, cap;
} history;

static retention_set *add(history *h, time_t t, enum retention_state state)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 64;
        h->sets = xrealloc(h->sets, h->cap * sizeof *h->sets);
        h->ids = xrealloc(h->ids, h->cap * sizeof *h->ids);
        /* ids moved: point every set at its id again */
        for (size_t i = 0; i < h->n; i++)
            h->sets[i].id = h->ids[i];
    }
    set_id_format(t, h->ids[h->n]);
    retention_set *s = &h->sets[h->n];
    *s = (retention_set){.id = h->ids[h->n], .time = t, .last_activity = t + 60, .state = state};
    h->n++;
    return s;
}

static void history_free(history *h)
{
    free(h->sets);
    free(h->ids);
    memset(h, 0, sizeof *h);
}

static retention_plan plan_of(const history *h, const retention_policy *p, time_t now)
{
    retention_plan plan;
    retention_plan_make(h->sets, h->n, p, now, &plan);
    assert_int_equal(plan.n, h->n);
    assert_int_equal(plan.n_keep + plan.n_delete, h->n);
    return plan;
}

static bool has_reason(const retention_verdict *v, const char *reason)
{
    for (size_t i = 0; i < v->n_reasons; i++)
        if (strcmp(v->reasons[i], reason) == 0)
            return true;
    return false;
}

/* Whether some reason starts with prefix. */
static bool has_reason_prefix(const retention_verdict *v, const char *prefix)
{
    for (size_t i = 0; i < v->n_reasons; i++)
        if (strncmp(v->reasons[i], prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

static size_t count_kept_by(const retention_plan *plan, const char *prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < plan->n; i++)
        n += plan->verdicts[i].keep && has_reason_prefix(&plan->verdicts[i], prefix);
    return n;
}

static retention_policy policy(void)
{
    return retention_policy_empty();
}

/* ---- the safety rules ------------------------------------------------ */

static void test_empty_policy_keeps_every_complete_set(void **state)
{
    (void)state;
    use_tz("UTC");
    time_t now = utc(2026, 11, 22, 12, 0);
    history h = {0};
    for (int i = 0; i < 50; i++)
        add(&h, now - i * DAY, RETENTION_COMPLETE);
    add(&h, now - 3 * DAY - HOUR, RETENTION_INCOMPLETE)->last_activity = 0;
    add(&h, now - HOUR, RETENTION_INCOMPLETE);
    retention_policy p = policy();
    assert_true(retention_policy_is_empty(&p));
    retention_plan plan = plan_of(&h, &p, now);
    assert_true(plan.empty_policy);
    for (size_t i = 0; i < 50; i++) {
        assert_true(plan.verdicts[i].keep);
        assert_true(
            has_reason(&plan.verdicts[i], "no retention policy configured (every complete set is kept)"));
    }
    /* Debris is still debris: the old incomplete set goes, the young stays. */
    assert_false(plan.verdicts[50].keep);
    assert_true(has_reason(&plan.verdicts[50], "incomplete for more than the grace period (24h)"));
    assert_true(plan.verdicts[51].keep);
    assert_true(has_reason(&plan.verdicts[51], "incomplete, younger than grace period (24h)"));
    assert_int_equal(plan.n_delete, 1);
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_every_rule_zero_still_keeps_the_newest_complete(void **state)
{
    (void)state;
    use_tz("UTC");
    time_t now = utc(2026, 11, 22, 12, 0);
    history h = {0};
    add(&h, now - 2 * DAY, RETENTION_INCOMPLETE)->last_activity = 0; /* newer, but incomplete and old */
    for (int i = 3; i < 20; i++)
        add(&h, now - i * DAY, RETENTION_COMPLETE);
    retention_policy p = policy();
    p.keep_last = p.keep_hourly = p.keep_daily = p.keep_weekly = p.keep_monthly = p.keep_yearly = 0;
    assert_false(retention_policy_is_empty(&p));
    retention_plan plan = plan_of(&h, &p, now);
    assert_false(plan.empty_policy);
    assert_false(plan.verdicts[0].keep);
    assert_true(plan.verdicts[1].keep);
    assert_int_equal(plan.verdicts[1].n_reasons, 1);
    assert_string_equal(plan.verdicts[1].reasons[0], "newest complete (always kept)");
    assert_int_equal(plan.n_keep, 1);
    for (size_t i = 2; i < h.n; i++) {
        assert_false(plan.verdicts[i].keep);
        assert_string_equal(plan.verdicts[i].reasons[0], "not kept by any rule");
    }
    retention_plan_free(&plan);

    /* keep.within 0 is a rule too: it keeps what is as new as the newest. */
    p.keep_within = 0;
    plan = plan_of(&h, &p, now);
    assert_int_equal(plan.n_keep, 1);
    assert_true(has_reason(&plan.verdicts[1], "within 0s"));
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_incomplete_sets_and_the_grace_period(void **state)
{
    (void)state;
    use_tz("UTC");
    time_t now = utc(2026, 11, 22, 12, 0);
    history h = {0};
    add(&h, now - 10 * DAY, RETENTION_COMPLETE);
    add(&h, now - 2 * HOUR, RETENTION_INCOMPLETE);                            /* 1: young: in progress? */
    add(&h, now - 2 * DAY, RETENTION_INCOMPLETE)->last_activity = 0;          /* 2: old */
    add(&h, now - 3 * DAY, RETENTION_INCOMPLETE)->last_activity = now - HOUR; /* 3: old id, recent write */
    add(&h, now - 400 * DAY, RETENTION_NEWER_FORMAT)->last_activity = 0;      /* 4: a newer sauve's */
    add(&h, now - 500 * DAY, RETENTION_UNREADABLE)->last_activity = 0;        /* 5: cannot be judged */
    retention_policy p = policy();
    p.keep_last = 1;
    retention_plan plan = plan_of(&h, &p, now);
    assert_true(plan.verdicts[0].keep);
    assert_true(plan.verdicts[1].keep);
    assert_true(has_reason(&plan.verdicts[1], "incomplete, younger than grace period (24h)"));
    assert_false(plan.verdicts[2].keep);
    assert_true(has_reason(&plan.verdicts[2], "incomplete for more than the grace period (24h)"));
    assert_true(plan.verdicts[3].keep);
    assert_true(plan.verdicts[4].keep);
    assert_true(has_reason(&plan.verdicts[4], "written by a newer sauve (never deleted)"));
    assert_true(plan.verdicts[5].keep);
    assert_true(has_reason(&plan.verdicts[5], "manifest unreadable or invalid (never deleted)"));
    retention_plan_free(&plan);

    /* A shorter grace period: the recent write is now old enough. */
    p.grace = 30 * 60;
    plan = plan_of(&h, &p, now);
    assert_false(plan.verdicts[1].keep);
    assert_false(plan.verdicts[3].keep);
    assert_true(has_reason(&plan.verdicts[3], "incomplete for more than the grace period (30m)"));
    assert_true(plan.verdicts[4].keep);
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_incomplete_sets_never_count(void **state)
{
    (void)state;
    use_tz("UTC");
    time_t now = utc(2026, 11, 22, 12, 0);
    history h = {0};
    /* Newest first, alternating complete and not: ids 0, 2, 4, ... complete. */
    for (int i = 0; i < 12; i++) {
        retention_set *s = add(&h, now - (i + 2) * DAY, i % 2 ? RETENTION_INCOMPLETE : RETENTION_COMPLETE);
        s->last_activity = 0;
        if (i % 4 == 3)
            s->state = RETENTION_NEWER_FORMAT;
    }
    retention_policy p = policy();
    p.keep_last = 3;
    p.keep_daily = 4;
    retention_plan plan = plan_of(&h, &p, now);
    for (size_t i = 0; i < h.n; i++) {
        if (i % 4 == 3) { /* newer format: kept, counted by no rule */
            assert_true(plan.verdicts[i].keep);
            assert_int_equal(plan.verdicts[i].n_reasons, 1);
        } else if (i % 2) { /* incomplete and old */
            assert_false(plan.verdicts[i].keep);
        } else {
            assert_true(plan.verdicts[i].keep == (i < 8)); /* the 4 newest complete */
        }
    }
    assert_true(has_reason(&plan.verdicts[4], "last (3 of 3)"));
    assert_false(has_reason_prefix(&plan.verdicts[6], "last"));
    assert_true(has_reason_prefix(&plan.verdicts[6], "daily "));
    assert_int_equal(count_kept_by(&plan, "daily "), 4);
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_safety_copies_take_no_slot_and_last_7_days(void **state)
{
    (void)state;
    use_tz("UTC");
    time_t now = utc(2026, 11, 22, 12, 0);
    history h = {0};
    add(&h, now - HOUR, RETENTION_COMPLETE)->safety = true; /* before a restore --clean */
    add(&h, now - DAY, RETENTION_COMPLETE);
    add(&h, now - 2 * DAY, RETENTION_COMPLETE);
    add(&h, now - 3 * DAY, RETENTION_COMPLETE)->safety = true; /* 3: younger than 7 days */
    add(&h, now - 8 * DAY, RETENTION_COMPLETE)->safety = true; /* 4: older */
    add(&h, now - 9 * DAY, RETENTION_COMPLETE);
    retention_policy p = policy();
    p.keep_last = 2;
    p.keep_daily = 3;
    p.keep_within = 2 * DAY;
    retention_plan plan = plan_of(&h, &p, now);
    /* The safety copy is the newest complete set, and takes no slot... */
    assert_true(has_reason(&plan.verdicts[0], "newest complete (always kept)"));
    assert_true(has_reason(&plan.verdicts[0], "safety copy, kept 7 days"));
    assert_false(has_reason_prefix(&plan.verdicts[0], "last"));
    assert_false(has_reason_prefix(&plan.verdicts[0], "daily"));
    assert_false(has_reason_prefix(&plan.verdicts[0], "within"));
    /* ...and the newest backup survives too, so "latest" still restores. */
    assert_true(has_reason(&plan.verdicts[1], "newest complete backup (always kept)"));
    assert_true(has_reason(&plan.verdicts[1], "last (1 of 2)"));
    assert_true(has_reason(&plan.verdicts[1], "daily 2026-11-21"));
    assert_true(has_reason(&plan.verdicts[2], "last (2 of 2)"));
    assert_true(has_reason(&plan.verdicts[2], "daily 2026-11-20"));
    assert_true(has_reason(&plan.verdicts[2], "within 2d")); /* from the newest backup */
    /* The third daily slot goes to a backup, not to a safety copy. */
    assert_int_equal(plan.verdicts[3].n_reasons, 1);
    assert_string_equal(plan.verdicts[3].reasons[0], "safety copy, kept 7 days");
    assert_false(plan.verdicts[4].keep);
    assert_string_equal(plan.verdicts[4].reasons[0], "safety copy older than 7 days");
    assert_true(has_reason(&plan.verdicts[5], "daily 2026-11-13"));
    assert_int_equal(plan.n_delete, 1);
    retention_plan_free(&plan);

    /* With no policy, every complete set is kept, safety copies included. */
    p = policy();
    plan = plan_of(&h, &p, now);
    assert_int_equal(plan.n_delete, 0);
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_sets_dated_in_the_future_are_kept_and_not_counted(void **state)
{
    (void)state;
    use_tz("UTC");
    time_t now = utc(2026, 11, 22, 12, 0);
    history h = {0};
    add(&h, now + 30 * DAY, RETENTION_COMPLETE);                /* 0: a writer's clock a month ahead */
    add(&h, now + 2 * HOUR, RETENTION_COMPLETE)->safety = true; /* 1: ahead too */
    add(&h, now + 30 * 60, RETENTION_COMPLETE);                 /* 2: within the slack: counted */
    for (int i = 1; i <= 5; i++)
        add(&h, now - i * DAY, RETENTION_COMPLETE); /* 3..7 */
    retention_policy p = policy();
    p.keep_last = 2;
    p.keep_within = DAY;
    retention_plan plan = plan_of(&h, &p, now);
    for (size_t i = 0; i < 2; i++) {
        assert_true(plan.verdicts[i].keep);
        assert_int_equal(plan.verdicts[i].n_reasons, 1);
        assert_string_equal(plan.verdicts[i].reasons[0], "dated in the future (clock skew?), not counted");
    }
    assert_true(has_reason(&plan.verdicts[2], "newest complete (always kept)"));
    assert_true(has_reason(&plan.verdicts[2], "last (1 of 2)"));
    assert_true(has_reason(&plan.verdicts[2], "within 24h"));
    assert_true(has_reason(&plan.verdicts[3], "last (2 of 2)"));
    /* within counts from now (earlier than the newest set): 1 day back */
    assert_true(has_reason(&plan.verdicts[3], "within 24h"));
    for (size_t i = 4; i < h.n; i++)
        assert_false(plan.verdicts[i].keep);
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_newest_good_copy_of_each_source_is_kept(void **state)
{
    (void)state;
    use_tz("UTC");
    time_t now = utc(2026, 11, 22, 12, 0);
    history h = {0};
    const char *app[] = {"postgres:app"};
    const char *both[] = {"postgres:app", "postgres:globals"};
    for (int i = 0; i < 10; i++)
        add(&h, now - i * DAY, RETENTION_COMPLETE);
    h.sets[0].newest_good_of = &both[1]; /* globals is fine every night */
    h.sets[0].n_newest_good_of = 1;
    h.sets[8].newest_good_of = app; /* app last dumped 8 days ago */
    h.sets[8].n_newest_good_of = 1;
    retention_policy p = policy();
    p.keep_last = 2;
    retention_plan plan = plan_of(&h, &p, now);
    assert_true(has_reason(&plan.verdicts[0], "newest good copy of postgres:globals"));
    assert_true(plan.verdicts[8].keep);
    assert_int_equal(plan.verdicts[8].n_reasons, 1);
    assert_string_equal(plan.verdicts[8].reasons[0], "newest good copy of postgres:app");
    assert_int_equal(plan.n_keep, 3);
    retention_plan_free(&plan);

    h.sets[8].newest_good_of = both;
    h.sets[8].n_newest_good_of = 2;
    plan = plan_of(&h, &p, now);
    assert_true(has_reason(&plan.verdicts[8], "newest good copy of postgres:app, postgres:globals"));
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_pinned_set_is_kept(void **state)
{
    (void)state;
    use_tz("UTC");
    time_t now = utc(2026, 11, 22, 12, 0);
    history h = {0};
    /* Two sets one hour apart within keep.last 1: the pinned older one is
     * kept all the same. */
    add(&h, now + 30 * 60, RETENTION_COMPLETE);
    add(&h, now - 30 * 60, RETENTION_COMPLETE)->pinned = "committed by this run";
    add(&h, now - DAY, RETENTION_COMPLETE);
    retention_policy p = policy();
    p.keep_last = 1;
    retention_plan plan = plan_of(&h, &p, now);
    assert_true(plan.verdicts[0].keep);
    assert_true(plan.verdicts[1].keep);
    assert_true(has_reason(&plan.verdicts[1], "committed by this run"));
    assert_false(plan.verdicts[2].keep);
    retention_plan_free(&plan);
    history_free(&h);
}

/* ---- each rule ------------------------------------------------------- */

static void test_keep_last(void **state)
{
    (void)state;
    use_tz("UTC");
    time_t now = utc(2026, 11, 22, 12, 0);
    history h = {0};
    /* Given oldest first: the plan must not depend on the order given. */
    for (int i = 9; i >= 0; i--)
        add(&h, now - i * HOUR, RETENTION_COMPLETE);
    retention_policy p = policy();
    p.keep_last = 4;
    retention_plan plan = plan_of(&h, &p, now);
    for (int i = 0; i < 10; i++) {
        int age = 9 - i;
        assert_true(plan.verdicts[i].keep == (age < 4));
        if (age < 4) {
            char want[32];
            snprintf(want, sizeof want, "last (%d of 4)", age + 1);
            assert_true(has_reason(&plan.verdicts[i], want));
        }
    }
    retention_plan_free(&plan);

    p.keep_last = 100; /* more than there are: everything */
    plan = plan_of(&h, &p, now);
    assert_int_equal(plan.n_keep, 10);
    retention_plan_free(&plan);
    history_free(&h);
}

/* A year of sets at 01:00, 09:00 and 17:00 UTC, with every 7th day and a
 * two-week holiday missing. */
static void year_with_gaps(history *h, time_t end)
{
    for (int day = 0; day < 365; day++) {
        if (day % 7 == 3 || (day >= 100 && day < 114))
            continue;
        time_t midnight = end - (end % DAY) - day * DAY;
        for (int k = 0; k < 3; k++)
            add(h, midnight + HOUR + k * 8 * HOUR, RETENTION_COMPLETE);
    }
}

static void test_daily_over_a_year_with_gaps(void **state)
{
    (void)state;
    use_tz("UTC");
    time_t now = utc(2026, 11, 22, 20, 0);
    history h = {0};
    year_with_gaps(&h, now);
    retention_policy p = policy();
    p.keep_daily = 30;
    retention_plan plan = plan_of(&h, &p, now);
    assert_int_equal(plan.n_keep, 30);
    /* The newest set of each of the last 30 days that have one: the 17:00
     * set, and the missing days do not use up slots. */
    size_t kept = 0;
    time_t oldest_kept = now;
    for (size_t i = 0; i < h.n; i++) {
        if (!plan.verdicts[i].keep)
            continue;
        kept++;
        struct tm tm;
        gmtime_r(&h.sets[i].time, &tm);
        assert_int_equal(tm.tm_hour, 17);
        char want[32];
        strftime(want, sizeof want, "daily %Y-%m-%d", &tm);
        assert_true(has_reason(&plan.verdicts[i], want));
        if (h.sets[i].time < oldest_kept)
            oldest_kept = h.sets[i].time;
    }
    assert_int_equal(kept, 30);
    /* 30 days with sets span 35 calendar days when every 7th is missing. */
    assert_true(now - oldest_kept > 33 * DAY);
    assert_true(now - oldest_kept < 36 * DAY);
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_hourly(void **state)
{
    (void)state;
    use_tz("UTC");
    time_t now = utc(2026, 11, 22, 12, 0);
    history h = {0};
    for (int i = 0; i < 24; i++)
        add(&h, now - i * 20 * 60, RETENTION_COMPLETE); /* every 20 minutes for 8 hours */
    retention_policy p = policy();
    p.keep_hourly = 5;
    retention_plan plan = plan_of(&h, &p, now);
    assert_int_equal(plan.n_keep, 5);
    assert_true(has_reason(&plan.verdicts[0], "hourly 2026-11-22 12:00 UTC"));
    assert_true(has_reason(&plan.verdicts[1], "hourly 2026-11-22 11:00 UTC")); /* 11:40 */
    assert_false(plan.verdicts[2].keep);                                       /* 11:20 */
    assert_true(has_reason(&plan.verdicts[4], "hourly 2026-11-22 10:00 UTC")); /* 10:40 */
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_monthly_and_yearly(void **state)
{
    (void)state;
    use_tz("UTC");
    history h = {0};
    /* Every 10 days from 2023-01-05 to 2026-11-21. */
    for (time_t t = utc(2023, 1, 5, 2, 0); t <= utc(2026, 11, 21, 2, 0); t += 10 * DAY)
        add(&h, t, RETENTION_COMPLETE);
    time_t now = utc(2026, 11, 22, 12, 0);
    retention_policy p = policy();
    p.keep_monthly = 6;
    retention_plan plan = plan_of(&h, &p, now);
    assert_int_equal(plan.n_keep, 6);
    const char *months[] = {"2026-11", "2026-10", "2026-09", "2026-08", "2026-07", "2026-06"};
    for (size_t m = 0; m < 6; m++) {
        char want[32];
        snprintf(want, sizeof want, "monthly %s", months[m]);
        assert_int_equal(count_kept_by(&plan, want), 1);
    }
    /* the newest of October: 2026-10-26 */
    for (size_t i = 0; i < h.n; i++)
        if (has_reason(&plan.verdicts[i], "monthly 2026-10"))
            assert_true(h.sets[i].time == utc(2026, 10, 26, 2, 0));
    retention_plan_free(&plan);

    p = policy();
    p.keep_yearly = 10; /* more years than there are: one per year */
    plan = plan_of(&h, &p, now);
    assert_int_equal(plan.n_keep, 4);
    assert_int_equal(count_kept_by(&plan, "yearly 2023"), 1);
    assert_int_equal(count_kept_by(&plan, "yearly 2026"), 1);
    for (size_t i = 0; i < h.n; i++)
        if (has_reason(&plan.verdicts[i], "yearly 2023"))
            assert_true(h.sets[i].time == utc(2023, 12, 31, 2, 0));
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_iso_weeks_across_the_new_year(void **state)
{
    (void)state;
    use_tz("UTC");
    history h = {0};
    add(&h, utc(2026, 12, 24, 2, 0), RETENTION_COMPLETE); /* Thursday, 2026-W52 */
    add(&h, utc(2026, 12, 28, 2, 0), RETENTION_COMPLETE); /* Monday, 2026-W53 */
    add(&h, utc(2026, 12, 31, 2, 0), RETENTION_COMPLETE); /* Thursday, 2026-W53 */
    add(&h, utc(2027, 1, 1, 2, 0), RETENTION_COMPLETE);   /* Friday: still 2026-W53 */
    add(&h, utc(2027, 1, 3, 23, 0), RETENTION_COMPLETE);  /* Sunday: still 2026-W53 */
    add(&h, utc(2027, 1, 4, 2, 0), RETENTION_COMPLETE);   /* Monday, 2027-W01 */
    time_t now = utc(2027, 1, 5, 0, 0);
    retention_policy p = policy();
    p.keep_weekly = 3;
    retention_plan plan = plan_of(&h, &p, now);
    assert_true(has_reason(&plan.verdicts[5], "weekly 2027-W01"));
    assert_true(has_reason(&plan.verdicts[4], "weekly 2026-W53"));
    assert_false(plan.verdicts[3].keep);
    assert_false(plan.verdicts[2].keep);
    assert_false(plan.verdicts[1].keep);
    assert_true(has_reason(&plan.verdicts[0], "weekly 2026-W52"));
    assert_int_equal(plan.n_keep, 3);
    retention_plan_free(&plan);

    /* Yearly is the calendar year, not the ISO week's: 2027-01-01 is 2027. */
    p = policy();
    p.keep_yearly = 2;
    plan = plan_of(&h, &p, now);
    assert_true(has_reason(&plan.verdicts[5], "yearly 2027"));
    assert_true(has_reason(&plan.verdicts[2], "yearly 2026"));
    assert_int_equal(plan.n_keep, 2);
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_daily_counts_days_in_paris_across_dst(void **state)
{
    (void)state;
    use_tz("Europe/Paris");
    retention_policy p = policy();
    p.keep_daily = 2;

    /* March: clocks go from 02:00 CET to 03:00 CEST on 2026-03-29. */
    history h = {0};
    add(&h, utc(2026, 3, 28, 22, 30), RETENTION_COMPLETE); /* 0: 23:30 CET on the 28th */
    add(&h, utc(2026, 3, 28, 23, 30), RETENTION_COMPLETE); /* 1: 00:30 CET on the 29th (UTC: the 28th) */
    add(&h, utc(2026, 3, 29, 0, 30), RETENTION_COMPLETE);  /* 2: 01:30 CET on the 29th */
    add(&h, utc(2026, 3, 29, 1, 30), RETENTION_COMPLETE);  /* 3: 03:30 CEST: 02:30 does not exist */
    retention_plan plan = plan_of(&h, &p, utc(2026, 3, 30, 12, 0));
    assert_true(has_reason(&plan.verdicts[3], "daily 2026-03-29"));
    assert_true(has_reason(&plan.verdicts[0], "daily 2026-03-28")); /* in UTC it would be set 1 */
    assert_false(plan.verdicts[1].keep);
    assert_false(plan.verdicts[2].keep);
    retention_plan_free(&plan);
    history_free(&h);

    /* October: clocks go from 03:00 CEST back to 02:00 CET on 2026-10-25,
     * so 02:30 happens twice. */
    add(&h, utc(2026, 10, 24, 21, 30), RETENTION_COMPLETE); /* 0: 23:30 CEST on the 24th */
    add(&h, utc(2026, 10, 24, 22, 30), RETENTION_COMPLETE); /* 1: 00:30 CEST on the 25th (UTC: the 24th) */
    add(&h, utc(2026, 10, 25, 0, 30), RETENTION_COMPLETE);  /* 2: 02:30 CEST */
    add(&h, utc(2026, 10, 25, 1, 30), RETENTION_COMPLETE);  /* 3: 02:30 CET, an hour later */
    plan = plan_of(&h, &p, utc(2026, 10, 26, 12, 0));
    assert_true(has_reason(&plan.verdicts[3], "daily 2026-10-25"));
    assert_true(has_reason(&plan.verdicts[0], "daily 2026-10-24"));
    assert_false(plan.verdicts[1].keep);
    assert_false(plan.verdicts[2].keep);
    retention_plan_free(&plan);

    /* The two 02:30s are two distinct hours. */
    p = policy();
    p.keep_hourly = 3;
    plan = plan_of(&h, &p, utc(2026, 10, 26, 12, 0));
    assert_true(has_reason(&plan.verdicts[3], "hourly 2026-10-25 02:00 CET"));
    assert_true(has_reason(&plan.verdicts[2], "hourly 2026-10-25 02:00 CEST"));
    assert_true(has_reason(&plan.verdicts[1], "hourly 2026-10-25 00:00 CEST"));
    assert_false(plan.verdicts[0].keep);
    retention_plan_free(&plan);
    history_free(&h);

    /* The same March history in UTC keeps the other set of the 28th. */
    use_tz("UTC");
    p = policy();
    p.keep_daily = 2;
    add(&h, utc(2026, 3, 28, 22, 30), RETENTION_COMPLETE);
    add(&h, utc(2026, 3, 28, 23, 30), RETENTION_COMPLETE);
    add(&h, utc(2026, 3, 29, 0, 30), RETENTION_COMPLETE);
    add(&h, utc(2026, 3, 29, 1, 30), RETENTION_COMPLETE);
    plan = plan_of(&h, &p, utc(2026, 3, 30, 12, 0));
    assert_true(has_reason(&plan.verdicts[1], "daily 2026-03-28"));
    assert_false(plan.verdicts[0].keep);
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_keep_within_is_relative_to_the_newest_set(void **state)
{
    (void)state;
    use_tz("UTC");
    time_t now = utc(2026, 11, 22, 12, 0);
    history h = {0};
    /* Backups stopped 100 days ago: within must not expire everything. */
    for (int i = 0; i < 30; i++)
        add(&h, now - (100 + i) * DAY, RETENTION_COMPLETE);
    add(&h, now - 99 * DAY, RETENTION_INCOMPLETE)->last_activity = 0;
    retention_policy p = policy();
    p.keep_within = 7 * DAY;
    retention_plan plan = plan_of(&h, &p, now);
    for (int i = 0; i < 30; i++) {
        assert_true(plan.verdicts[i].keep == (i <= 7)); /* the bound is inclusive */
        if (i <= 7)
            assert_true(has_reason(&plan.verdicts[i], "within 7d"));
    }
    assert_false(plan.verdicts[30].keep);
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_union_of_rules(void **state)
{
    (void)state;
    use_tz("UTC");
    history h = {0};
    time_t end = utc(2026, 11, 22, 20, 0); /* a Sunday */
    year_with_gaps(&h, end);
    retention_policy p = policy();
    p.keep_last = 2;
    p.keep_daily = 7;
    p.keep_weekly = 4;
    p.keep_monthly = 12;
    p.keep_yearly = 5;
    p.keep_within = 2 * DAY;
    retention_plan plan = plan_of(&h, &p, end);
    /* The newest set (17:00 on the last day, the third added): every rule
     * keeps it, and all of them are named. */
    const retention_verdict *v = &plan.verdicts[2];
    assert_true(v->keep);
    const char *all[] = {"newest complete (always kept)",
                         "last (1 of 2)",
                         "daily 2026-11-22",
                         "weekly 2026-W47",
                         "monthly 2026-11",
                         "yearly 2026",
                         "within 2d"};
    assert_int_equal(v->n_reasons, sizeof all / sizeof *all);
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        assert_true(has_reason(v, all[i]));
    /* Each rule alone keeps its own count; the union is no more than the
     * sum and every kept set has a reason. */
    assert_int_equal(count_kept_by(&plan, "last "), 2);
    assert_int_equal(count_kept_by(&plan, "daily "), 7);
    assert_int_equal(count_kept_by(&plan, "weekly "), 4);
    assert_int_equal(count_kept_by(&plan, "monthly "), 12);
    assert_int_equal(count_kept_by(&plan, "yearly "), 2); /* 2025 and 2026 only */
    size_t within = count_kept_by(&plan, "within ");
    assert_true(within >= 6 && within <= 7);
    assert_true(plan.n_keep < 2 + 7 + 4 + 12 + 2 + within);
    for (size_t i = 0; i < h.n; i++) {
        assert_true(plan.verdicts[i].n_reasons >= 1);
        if (!plan.verdicts[i].keep) {
            assert_int_equal(plan.verdicts[i].n_reasons, 1);
            assert_string_equal(plan.verdicts[i].reasons[0], "not kept by any rule");
        }
    }
    retention_plan_free(&plan);
    history_free(&h);
}

static void test_no_sets(void **state)
{
    (void)state;
    retention_policy p = policy();
    p.keep_last = 3;
    retention_plan plan;
    retention_plan_make(NULL, 0, &p, time(NULL), &plan);
    assert_int_equal(plan.n, 0);
    assert_int_equal(plan.n_keep + plan.n_delete, 0);
    retention_plan_free(&plan);
}

/* ---- durations and the time zone ------------------------------------- */

static void test_durations(void **state)
{
    (void)state;
    long s = -1;
    assert_int_equal(config_parse_duration("14d", &s), 0);
    assert_true(s == 14 * DAY);
    assert_int_equal(config_parse_duration("36h", &s), 0);
    assert_true(s == 36 * HOUR);
    assert_int_equal(config_parse_duration("2w", &s), 0);
    assert_true(s == 14 * DAY);
    assert_int_equal(config_parse_duration("1d12h", &s), 0);
    assert_true(s == 36 * HOUR);
    assert_int_equal(config_parse_duration("90m", &s), 0);
    assert_true(s == 5400);
    assert_int_equal(config_parse_duration("0", &s), 0);
    assert_true(s == 0);
    const char *bad[] = {"", "14", "d", "14x", "14 d", "-1d", "1.5d", "14D", "99999999999999999999d", "1d "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(config_parse_duration(bad[i], &s), -1);
    char buf[32];
    assert_string_equal(config_format_duration(14 * DAY, buf, sizeof buf), "14d");
    assert_string_equal(config_format_duration(DAY, buf, sizeof buf), "24h");
    assert_string_equal(config_format_duration(36 * HOUR, buf, sizeof buf), "36h");
    assert_string_equal(config_format_duration(5400, buf, sizeof buf), "90m");
    assert_string_equal(config_format_duration(61, buf, sizeof buf), "61s");
    assert_string_equal(config_format_duration(0, buf, sizeof buf), "0s");
}

static void test_duration_settings(void **state)
{
    (void)state;
    const char *env[] = {"SAUVE_KEEP_WITHIN=2w", "SAUVE_KEEP_DAILY=7", NULL};
    sv_config cfg;
    sv_error err = {0};
    struct config_load_options lo = {.env = env, .file = "/dev/null"};
    assert_int_equal(config_load(&cfg, &lo, &err), 0);
    retention_policy p = retention_policy_from_config(&cfg);
    assert_true(p.keep_within == 14 * DAY);
    assert_true(p.keep_daily == 7);
    assert_true(p.keep_last == RETENTION_OFF);
    assert_true(p.keep_hourly == RETENTION_OFF);
    assert_true(p.grace == DAY); /* the default, 24h */
    assert_true(cfg.prune);
    char d[128];
    assert_string_equal(retention_policy_describe(&p, d, sizeof d), "daily 7, within 14d");
    config_free(&cfg);

    const char *bad[] = {"SAUVE_KEEP_WITHIN=14", NULL};
    lo.env = bad;
    assert_int_equal(config_load(&cfg, &lo, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, "SAUVE_KEEP_WITHIN"));
    assert_non_null(strstr(err.msg, "not a duration"));
    assert_non_null(strstr(err.hint, "14d"));

    /* "6m" is six minutes in sauve, six months in restic: under an hour is
     * refused, naming the variable */
    const char *minutes[] = {"SAUVE_KEEP_WITHIN=6m", NULL};
    lo.env = minutes;
    assert_int_equal(config_load(&cfg, &lo, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, "SAUVE_KEEP_WITHIN"));
    assert_non_null(strstr(err.msg, "out of range"));
    const char *hour[] = {"SAUVE_KEEP_WITHIN=1h", NULL};
    lo.env = hour;
    assert_int_equal(config_load(&cfg, &lo, &err), 0);
    assert_true(retention_policy_from_config(&cfg).keep_within == HOUR);
    config_free(&cfg);

    /* under an hour is allowed (with a warning at prune time); zero is not */
    const char *small[] = {"SAUVE_PRUNE_GRACE=5m", NULL};
    lo.env = small;
    assert_int_equal(config_load(&cfg, &lo, &err), 0);
    assert_true(retention_policy_from_config(&cfg).grace == 300);
    config_free(&cfg);
    const char *zero[] = {"SAUVE_PRUNE_GRACE=0s", NULL};
    lo.env = zero;
    assert_int_equal(config_load(&cfg, &lo, &err), -1);
    assert_non_null(strstr(err.msg, "SAUVE_PRUNE_GRACE"));
    assert_non_null(strstr(err.msg, "out of range"));
}

static void test_time_zone_names(void **state)
{
    (void)state;
    char name[64];
    unsetenv("TZ");
    assert_int_equal(retention_tz_init(name, sizeof name), 0);
    assert_string_equal(name, "UTC");
    assert_string_equal(getenv("TZ"), "UTC");
    use_tz("Europe/Paris");
    assert_int_equal(retention_tz_init(name, sizeof name), 0);
    assert_string_equal(name, "Europe/Paris");
    use_tz("CET-1CEST,M3.5.0,M10.5.0/3");
    assert_int_equal(retention_tz_init(name, sizeof name), 0);
    use_tz("Europe/Pariss");
    assert_int_equal(retention_tz_init(name, sizeof name), -1);
    use_tz("UTC");
}

/* ---- prune over local storage ---------------------------------------- */

typedef struct {
    char *dir;
    storage *st;
} fixture;

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    f->dir = test_tmpdir();
    char *url = xasprintf("file://%s", f->dir);
    sv_error err = {0};
    f->st = storage_open(url, NULL, &err);
    free(url);
    if (!f->st)
        return -1;
    *state = f;
    use_tz("UTC");
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    storage_close(f->st);
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void put(storage *st, const char *key, const char *content)
{
    sv_error err = {0};
    if (storage_put(st, key, content, strlen(content), &err) != 0)
        fail_msg("storage_put %s: %s", key, err.msg);
}

/* A complete set taken at t: a dump object and its manifest; reason
 * "backup" or "safety"; app_ok false: a partial set where postgres:app
 * failed and postgres:globals is ok. */
/* in the manifest of a set whose app failed; a stray object of the others */
#define GLOBALS_OBJECT "globals, in the set"

static void put_set_as(storage *st, time_t t, char id[SET_ID_LEN + 1], const char *reason, bool app_ok)
{
    set_id_format(t, id);
    manifest m = {0};
    memcpy(m.id, id, SET_ID_LEN + 1);
    m.started = t;
    m.finished = t + 30;
    m.name = xstrdup("default");
    m.reason = xstrdup(reason);
    m.sauve_version = xstrdup("0.1.0");
    manifest_artifact *a = manifest_add(&m);
    a->kind = xstrdup("postgres");
    a->name = xstrdup("app");
    a->format = xstrdup("pg_dump-custom");
    a->compression = xstrdup("zstd");
    if (app_ok) {
        a->ok = true;
        a->key = xstrdup("postgres/app.dump.zst");
        a->bytes_in = 40;
        a->bytes_out = 4;
        memset(a->sha256, 'e', 64);
    } else {
        a->error = xstrdup("pg_dump: out of shared memory");
        a = manifest_add(&m);
        a->ok = true;
        a->kind = xstrdup("postgres");
        a->name = xstrdup("globals");
        a->key = xstrdup("postgres/globals.sql.zst");
        a->format = xstrdup("pg_dumpall-sql");
        a->compression = xstrdup("zstd");
        a->bytes_in = 40;
        a->bytes_out = strlen(GLOBALS_OBJECT);
        memset(a->sha256, 'e', 64);
    }
    manifest_update_status(&m);
    char *json = manifest_to_json(&m);
    manifest_free(&m);
    char *dkey = catalog_object_key("default", id, "postgres/app.dump.zst");
    char *gkey = catalog_object_key("default", id, "postgres/globals.sql.zst");
    char *mkey = catalog_object_key("default", id, MANIFEST_FILENAME);
    put(st, dkey, "dump");
    put(st, gkey, GLOBALS_OBJECT);
    put(st, mkey, json);
    free(dkey);
    free(gkey);
    free(mkey);
    free(json);
}

static void put_set(storage *st, time_t t, char id[SET_ID_LEN + 1])
{
    put_set_as(st, t, id, "backup", true);
}

static char *path_of(const fixture *f, const char *rel)
{
    return xasprintf("%s/%s", f->dir, rel);
}

static bool exists(const fixture *f, const char *rel)
{
    char *p = path_of(f, rel);
    struct stat sb;
    bool e = stat(p, &sb) == 0;
    free(p);
    return e;
}

/* A temp file as a crashed write leaves it, last written `age` seconds ago. */
/* A temp file left by a crashed write, with the given modification time. */
static void crashed_write_at(const fixture *f, const char *rel_dir, const char *base, time_t t)
{
    char *d = path_of(f, rel_dir);
    char *cmd = xasprintf("mkdir -p '%s'", d);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    char *name = xasprintf(".%s.tmp-AbC123", base);
    char *p = test_write_file(d, name, "half an object");
    struct utimbuf ut = {t, t};
    assert_int_equal(utime(p, &ut), 0);
    free(p);
    free(name);
    free(d);
}

static void crashed_write(const fixture *f, const char *rel_dir, const char *base, time_t age)
{
    crashed_write_at(f, rel_dir, base, time(NULL) - age);
}

static sv_config config_with(const fixture *f, const char *const *extra)
{
    const char *env[16];
    size_t n = 0;
    char *storage_env = xasprintf("SAUVE_STORAGE=file://%s", f->dir);
    env[n++] = storage_env;
    for (; extra && *extra && n < 15; extra++)
        env[n++] = *extra;
    env[n] = NULL;
    sv_config cfg;
    sv_error err = {0};
    struct config_load_options lo = {.env = env, .file = "/dev/null"};
    if (config_load(&cfg, &lo, &err) != 0)
        fail_msg("config_load: %s", err.msg);
    free(storage_env);
    return cfg;
}

static void test_prune_local(void **state)
{
    fixture *f = *state;
    time_t now = time(NULL);
    char ids[6][SET_ID_LEN + 1];
    for (int i = 0; i < 6; i++)
        put_set(f->st, now - (i + 1) * DAY, ids[i]);
    /* An interrupted backup two days old, with an old temp file, and a
     * young temp file in the set of a backup in progress. */
    char old_id[SET_ID_LEN + 1], young_id[SET_ID_LEN + 1];
    set_id_format(now - 2 * DAY - HOUR, old_id);
    set_id_format(now - 60, young_id);
    char *old_obj = xasprintf("default/%s/postgres/globals.sql.zst", old_id);
    put(f->st, old_obj, "globals");
    struct utimbuf ut = {now - 2 * DAY, now - 2 * DAY};
    char *old_path = path_of(f, old_obj);
    assert_int_equal(utime(old_path, &ut), 0);
    char *old_dir = xasprintf("default/%s/postgres", old_id);
    char *young_dir = xasprintf("default/%s/postgres", young_id);
    crashed_write(f, old_dir, "app.dump.zst", 2 * DAY);
    crashed_write(f, young_dir, "app.dump.zst", 60);

    const char *keep2[] = {"SAUVE_KEEP_LAST=2", NULL};
    sv_config cfg = config_with(f, keep2);
    struct prune_result res;
    sv_error err = {0};

    /* A dry run changes nothing. */
    struct prune_options dry = {.dry_run = true};
    /* Its listing goes to /dev/null: redirected under stdout, which C
     * does not let a program assign (musl's is a const object). */
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), devnull = open("/dev/null", O_WRONLY);
    assert_true(saved >= 0 && devnull >= 0);
    dup2(devnull, STDOUT_FILENO);
    close(devnull);
    assert_int_equal(prune_run(&cfg, f->st, &dry, &res, &err), 0);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    assert_int_equal(res.sets_kept, 2);
    assert_int_equal(res.sets_to_delete, 5); /* 4 complete and the old incomplete one */
    assert_int_equal(res.sets_deleted, 0);
    assert_int_equal(res.uploads_to_remove, 1);
    assert_int_equal(res.uploads_removed, 0);
    for (int i = 0; i < 6; i++) {
        char *m = xasprintf("default/%s/manifest.json", ids[i]);
        assert_true(exists(f, m));
        free(m);
    }
    char *old_tmp = xasprintf("%s/.app.dump.zst.tmp-AbC123", old_dir);
    char *young_tmp = xasprintf("%s/.app.dump.zst.tmp-AbC123", young_dir);
    assert_true(exists(f, old_tmp));

    /* The real thing: one listing, two batched deletes. */
    const storage_stats before = *storage_get_stats(f->st);
    struct prune_options real = {0};
    assert_int_equal(prune_run(&cfg, f->st, &real, &res, &err), 0);
    const storage_stats *after = storage_get_stats(f->st);
    assert_int_equal(after->lists - before.lists, 1);
    assert_int_equal(after->delete_calls - before.delete_calls, 2);
    assert_int_equal(after->deleted_keys - before.deleted_keys, 4 * 3 + 1);
    assert_int_equal(res.sets_deleted, 5);
    assert_int_equal(res.uploads_removed, 1);
    assert_int_equal(res.uploads_kept, 1);
    for (int i = 0; i < 6; i++) {
        char *d = xasprintf("default/%s", ids[i]);
        assert_true(exists(f, d) == (i < 2));
        free(d);
    }
    assert_false(exists(f, old_tmp));
    assert_false(exists(f, old_dir)); /* emptied directories go too */
    assert_true(exists(f, young_tmp));

    /* Nothing left to do: a second prune deletes nothing. */
    assert_int_equal(prune_run(&cfg, f->st, &real, &res, &err), 0);
    assert_int_equal(res.sets_deleted, 0);
    assert_int_equal(res.sets_kept, 2);

    free(old_tmp);
    free(young_tmp);
    free(old_obj);
    free(old_path);
    free(old_dir);
    free(young_dir);
    config_free(&cfg);
}

/* A plan of the series on the fixture's storage, with the catalog it was
 * made from. */
static retention_plan local_plan(const fixture *f, const retention_policy *p, catalog *cat)
{
    sv_error err = {0};
    if (catalog_load(f->st, "default", cat, &err) != 0)
        fail_msg("catalog_load: %s", err.msg);
    retention_plan plan;
    prune_plan_catalog(cat, p, time(NULL), NULL, &plan);
    return plan;
}

static const retention_verdict *verdict_of(const catalog *cat, const retention_plan *plan, const char *id)
{
    for (size_t i = 0; i < cat->n; i++)
        if (strcmp(cat->sets[i].id, id) == 0)
            return &plan->verdicts[i];
    fail_msg("no set %s", id);
    return NULL;
}

static void test_prune_keeps_a_set_whose_manifest_is_invalid(void **state)
{
    fixture *f = *state;
    time_t now = time(NULL);
    char ids[4][SET_ID_LEN + 1];
    for (int i = 0; i < 4; i++)
        put_set(f->st, now - (i + 2) * DAY, ids[i]);
    /* ids[2]: a manifest that is not JSON; ids[3]: one copied from another
     * set (its id differs from its directory). Both older than the grace. */
    char *bad = xasprintf("default/%s/manifest.json", ids[2]);
    put(f->st, bad, "{\"format\": 1, \"id\": tru");
    char *src = path_of(f, bad);
    char *moved = xasprintf("default/%s/manifest.json", ids[3]);
    char *dst = path_of(f, moved);
    char *other = xasprintf("default/%s/manifest.json", ids[0]);
    char *from = path_of(f, other);
    char *cmd = xasprintf("cp '%s' '%s'", from, dst);
    assert_int_equal(system(cmd), 0);
    /* and a set with no manifest at all, old: that one is debris */
    char debris[SET_ID_LEN + 1];
    set_id_format(now - 3 * DAY - HOUR, debris);
    char *dkey = xasprintf("default/%s/postgres/app.dump.zst", debris);
    put(f->st, dkey, "half");
    char *dpath = path_of(f, dkey);
    struct utimbuf ut = {now - 3 * DAY, now - 3 * DAY};
    assert_int_equal(utime(dpath, &ut), 0);

    retention_policy p = policy();
    p.keep_last = 1;
    catalog cat;
    retention_plan plan = local_plan(f, &p, &cat);
    for (int i = 2; i < 4; i++) {
        const retention_verdict *v = verdict_of(&cat, &plan, ids[i]);
        assert_true(v->keep);
        assert_true(has_reason(v, "manifest unreadable or invalid (never deleted)"));
    }
    for (size_t i = 0; i < cat.n; i++)
        if (strcmp(cat.sets[i].id, ids[2]) == 0 || strcmp(cat.sets[i].id, ids[3]) == 0) {
            assert_string_equal(prune_set_status(&cat.sets[i]), "unreadable");
            assert_non_null(strstr(cat.sets[i].problem, "manifest invalid: "));
        }
    assert_false(verdict_of(&cat, &plan, debris)->keep);
    assert_false(verdict_of(&cat, &plan, ids[1])->keep);
    retention_plan_free(&plan);
    catalog_free(&cat);

    const char *keep1[] = {"SAUVE_KEEP_LAST=1", NULL};
    sv_config cfg = config_with(f, keep1);
    struct prune_options real = {0};
    struct prune_result res;
    sv_error err = {0};
    assert_int_equal(prune_run(&cfg, f->st, &real, &res, &err), 0);
    assert_int_equal(res.sets_deleted, 2); /* ids[1] and the debris */
    assert_true(exists(f, bad));
    assert_true(exists(f, moved));
    config_free(&cfg);
    free(bad);
    free(src);
    free(moved);
    free(dst);
    free(other);
    free(from);
    free(cmd);
    free(dkey);
    free(dpath);
}

static void test_prune_keeps_the_newest_good_copy_of_each_source(void **state)
{
    fixture *f = *state;
    time_t now = time(NULL);
    /* app failed the last 5 nights (partial sets); its last good dump is
     * 6 days old; a safety copy 2 days ago and one 10 days ago. */
    char ids[8][SET_ID_LEN + 1], safety[2][SET_ID_LEN + 1];
    for (int i = 0; i < 8; i++)
        put_set_as(f->st, now - (i + 1) * DAY, ids[i], "backup", i >= 5);
    put_set_as(f->st, now - 2 * DAY - HOUR, safety[0], "safety", false);
    put_set_as(f->st, now - 10 * DAY, safety[1], "safety", true);
    /* a good copy dated in the future does not count as the newest */
    char future[SET_ID_LEN + 1];
    put_set_as(f->st, now + 20 * DAY, future, "backup", true);

    retention_policy p = policy();
    p.keep_last = 2;
    catalog cat;
    retention_plan plan = local_plan(f, &p, &cat);
    const retention_verdict *v = verdict_of(&cat, &plan, ids[5]);
    assert_true(v->keep);
    assert_int_equal(v->n_reasons, 1);
    assert_string_equal(v->reasons[0], "newest good copy of postgres:app");
    assert_true(has_reason(verdict_of(&cat, &plan, ids[0]), "newest good copy of postgres:globals"));
    assert_true(has_reason(verdict_of(&cat, &plan, ids[0]), "last (1 of 2)"));
    assert_true(has_reason(verdict_of(&cat, &plan, ids[1]), "last (2 of 2)"));
    assert_true(has_reason(verdict_of(&cat, &plan, safety[0]), "safety copy, kept 7 days"));
    assert_false(verdict_of(&cat, &plan, safety[1])->keep);
    assert_true(
        has_reason(verdict_of(&cat, &plan, future), "dated in the future (clock skew?), not counted"));
    for (int i = 2; i < 8; i++)
        assert_true(verdict_of(&cat, &plan, ids[i])->keep == (i == 5));
    assert_int_equal(plan.n_keep, 5);
    retention_plan_free(&plan);
    catalog_free(&cat);
}

static void test_damaged_sets_count_for_nothing_and_are_never_deleted(void **state)
{
    fixture *f = *state;
    time_t now = time(NULL);
    /* three good nights; then the newest's dump is deleted behind sauve's
     * back (a lifecycle rule), and the one before is truncated */
    char ids[3][SET_ID_LEN + 1];
    for (int i = 0; i < 3; i++)
        put_set_as(f->st, now - (i + 1) * DAY, ids[i], "backup", true);
    char *gone = catalog_object_key("default", ids[0], "postgres/app.dump.zst");
    sv_error err = {0};
    assert_int_equal(storage_delete(f->st, (const char *const *)&gone, 1, &err), 0);
    free(gone);
    char *cut = catalog_object_key("default", ids[1], "postgres/app.dump.zst");
    put(f->st, cut, "du");
    free(cut);

    retention_policy p = policy();
    p.keep_last = 1;
    catalog cat;
    retention_plan plan = local_plan(f, &p, &cat);
    const catalog_set *s0 = &cat.sets[0];
    assert_string_equal(s0->id, ids[0]);
    assert_true(s0->complete && s0->damaged);
    assert_string_equal(s0->damage, "postgres/app.dump.zst is missing");
    assert_string_equal(prune_set_status(s0), "damaged");
    assert_string_equal(cat.sets[1].damage,
                        "postgres/app.dump.zst is truncated: 2 bytes stored, the manifest recorded 4");
    assert_null(catalog_usable_artifact(s0, "postgres", "app"));
    assert_non_null(catalog_usable_artifact(&cat.sets[2], "postgres", "app"));

    /* the damaged sets are kept, say why, and protect nothing: the oldest,
     * the only good copy, is the newest complete set and is kept */
    const retention_verdict *v0 = verdict_of(&cat, &plan, ids[0]);
    assert_true(v0->keep);
    assert_int_equal(v0->n_reasons, 1);
    assert_string_equal(v0->reasons[0],
                        "damaged: postgres/app.dump.zst is missing (never deleted, not counted as a copy)");
    assert_true(verdict_of(&cat, &plan, ids[1])->keep);
    const retention_verdict *v2 = verdict_of(&cat, &plan, ids[2]);
    assert_true(has_reason(v2, "newest complete (always kept)"));
    assert_true(has_reason(v2, "last (1 of 1)"));
    assert_true(has_reason(v2, "newest good copy of postgres:app"));
    assert_int_equal(plan.n_delete, 0);
    retention_plan_free(&plan);
    catalog_free(&cat);

    /* and prune itself deletes nothing */
    const char *env[] = {"SAUVE_KEEP_LAST=1", NULL};
    sv_config cfg = config_with(f, env);
    struct prune_options real = {0};
    struct prune_result res;
    assert_int_equal(prune_run(&cfg, f->st, &real, &res, &err), 0);
    assert_int_equal(res.sets_deleted, 0);
    config_free(&cfg);
}

static void test_prune_keeps_an_upload_of_unknown_start(void **state)
{
    fixture *f = *state;
    /* mtime 0: a start time the storage could not tell (set as such: an age
     * of time(NULL) gave 1 when the clock ticked between the two reads) */
    crashed_write_at(f, "default/20261120T020000Z/postgres", "app.dump.zst", 0);
    crashed_write(f, "default/20261120T020000Z/postgres", "other.dump.zst", 3 * DAY);
    const char *env[] = {"SAUVE_KEEP_LAST=1", NULL};
    sv_config cfg = config_with(f, env);
    struct prune_options real = {0};
    struct prune_result res;
    sv_error err = {0};
    assert_int_equal(prune_run(&cfg, f->st, &real, &res, &err), 0);
    assert_int_equal(res.uploads_removed, 1);
    assert_int_equal(res.uploads_kept, 1);
    assert_true(exists(f, "default/20261120T020000Z/postgres/.app.dump.zst.tmp-AbC123"));
    assert_false(exists(f, "default/20261120T020000Z/postgres/.other.dump.zst.tmp-AbC123"));
    config_free(&cfg);
}

struct seen_uploads {
    char keys[4][128], ids[4][128];
    int64_t started[4];
    size_t n;
};

static int seen_upload(void *ctx, const storage_upload *u)
{
    struct seen_uploads *seen = ctx;
    assert_true(seen->n < 4);
    snprintf(seen->keys[seen->n], sizeof seen->keys[0], "%s", u->key);
    snprintf(seen->ids[seen->n], sizeof seen->ids[0], "%s", u->id);
    seen->started[seen->n++] = u->started;
    return 0;
}

static void test_local_uploads(void **state)
{
    fixture *f = *state;
    crashed_write(f, "default/20261120T020000Z/postgres", "app.dump.zst", 100);
    crashed_write(f, "other/20261120T020000Z", "manifest.json", 10);
    put(f->st, "default/20261120T020000Z/postgres/globals.sql.zst", "g");
    free(test_write_file(f->dir, ".sauve-check-AbC123", "")); /* a probe, not a write */

    struct seen_uploads seen = {0};
    sv_error err = {0};
    assert_int_equal(storage_list_uploads(f->st, "default/", seen_upload, &seen, &err), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.keys[0], "default/20261120T020000Z/postgres/app.dump.zst");
    assert_string_equal(seen.ids[0], "default/20261120T020000Z/postgres/.app.dump.zst.tmp-AbC123");
    time_t age = time(NULL) - (time_t)seen.started[0];
    assert_true(age >= 99 && age <= 110);

    memset(&seen, 0, sizeof seen);
    assert_int_equal(storage_list_uploads(f->st, "", seen_upload, &seen, &err), 0);
    assert_int_equal(seen.n, 2);

    /* Only temp files can be aborted, and aborting twice is fine. */
    storage_upload bad = {.key = "default/x", .id = "default/20261120T020000Z/postgres/globals.sql.zst"};
    assert_int_equal(storage_abort_upload(f->st, &bad, &err), -1);
    assert_true(exists(f, "default/20261120T020000Z/postgres/globals.sql.zst"));
    storage_upload escape = {.key = "x", .id = "../.x.tmp-AbC123"};
    assert_int_equal(storage_abort_upload(f->st, &escape, &err), -1);
    storage_upload u = {.key = "other/20261120T020000Z/manifest.json",
                        .id = "other/20261120T020000Z/.manifest.json.tmp-AbC123"};
    assert_int_equal(storage_abort_upload(f->st, &u, &err), 0);
    assert_false(exists(f, "other/20261120T020000Z/.manifest.json.tmp-AbC123"));
    assert_false(exists(f, "other")); /* its emptied directories too */
    assert_int_equal(storage_abort_upload(f->st, &u, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_policy_keeps_every_complete_set),
        cmocka_unit_test(test_every_rule_zero_still_keeps_the_newest_complete),
        cmocka_unit_test(test_incomplete_sets_and_the_grace_period),
        cmocka_unit_test(test_incomplete_sets_never_count),
        cmocka_unit_test(test_safety_copies_take_no_slot_and_last_7_days),
        cmocka_unit_test(test_sets_dated_in_the_future_are_kept_and_not_counted),
        cmocka_unit_test(test_newest_good_copy_of_each_source_is_kept),
        cmocka_unit_test(test_pinned_set_is_kept),
        cmocka_unit_test(test_keep_last),
        cmocka_unit_test(test_daily_over_a_year_with_gaps),
        cmocka_unit_test(test_hourly),
        cmocka_unit_test(test_monthly_and_yearly),
        cmocka_unit_test(test_iso_weeks_across_the_new_year),
        cmocka_unit_test(test_daily_counts_days_in_paris_across_dst),
        cmocka_unit_test(test_keep_within_is_relative_to_the_newest_set),
        cmocka_unit_test(test_union_of_rules),
        cmocka_unit_test(test_no_sets),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_duration_settings),
        cmocka_unit_test(test_time_zone_names),
        cmocka_unit_test_setup_teardown(test_prune_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_uploads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_keeps_a_set_whose_manifest_is_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_keeps_the_newest_good_copy_of_each_source, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damaged_sets_count_for_nothing_and_are_never_deleted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_prune_keeps_an_upload_of_unknown_start, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
