/*
 * A drill of a PostgreSQL database (sources/loader.h): the dump restored
 * into a new database of the drill's own server (the libpq settings of the
 * drill run: a throwaway server, or the same one under a generated name),
 * without owners and grants (the scratch server need not have the roles),
 * its tables counted and compared with the row counts the backup took in
 * the dump's own snapshot, then the user's checks (drill.checks) run in
 * it, and the database dropped. postgres:globals is not loaded: roles and
 * tablespaces belong to the whole cluster, and a drill changes nothing but
 * its scratch database.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "common/text.h"
#include "sources/loader.h"
#include "sources/postgres.h"

/* PostgreSQL's NAMEDATALEN - 1: a longer name is cut by the server, and
 * the drop would then miss the database the create made. */
#define PG_NAME_MAX 63

int pg_drill_target(const manifest_artifact *a, const char *dir, const char *tag, struct loader_options *o,
                    char **owned, const char **skip)
{
    (void)dir;
    if (strcmp(a->name, "globals") == 0) {
        *skip = "roles and tablespaces are the whole cluster's: not loaded by a drill, read whole as sauve "
                "verify reads it";
        return 1;
    }
    char *name = xasprintf("sauve_drill_%s_%s", tag, a->name);
    name[utf8_prefix(name, strlen(name), PG_NAME_MAX)] = '\0';
    o->into = *owned = name;
    /* the scratch server need not have the roles the dump names: the
     * drill proves the data, not who owns it */
    o->no_owner = true;
    o->no_privileges = true;
    return 0;
}

/* "public.orders" quoted for SQL; NULL when libpq refuses the name. */
static char *qualified(PGconn *c, const char *schema, const char *table)
{
    char *s = PQescapeIdentifier(c, schema, strlen(schema));
    char *t = PQescapeIdentifier(c, table, strlen(table));
    char *out = s && t ? xasprintf("%s.%s", s, t) : NULL;
    PQfreemem(s);
    PQfreemem(t);
    return out;
}

static void first_mismatch(struct drill_findings *f, char *text)
{
    if (f->mismatch)
        free(text);
    else
        f->mismatch = text;
}

/* Every table the manifest counted exactly, counted again in the scratch
 * database as the backup counted it (its own rows, ONLY; row security
 * off). Estimates are not compared: the planner's figure is not a count a
 * restore must reproduce. -1 when a stop was requested or the server was
 * lost (err). */
static int compare_rows(PGconn *c, const manifest_artifact *a, struct drill_findings *f, sv_error *err)
{
    const manifest_row_counts *rc = &a->row_counts;
    if (!rc->present || rc->skipped) {
        f->note = xasprintf(
            "row counts not compared: %s",
            rc->skipped ? rc->skipped : "the manifest has none (SAUVE_PG_ROW_COUNTS=off, or an older sauve)");
        return 0;
    }
    size_t estimates = 0, hidden = 0;
    for (size_t i = 0; i < rc->n; i++) {
        const manifest_table_rows *t = &rc->tables[i];
        if (t->how != ROWS_EXACT) {
            estimates++;
            continue;
        }
        char *name = qualified(c, t->schema, t->table);
        if (!name) {
            first_mismatch(f, xasprintf("table %s.%s: its name cannot be quoted", t->schema, t->table));
            continue;
        }
        char *sql = xasprintf("select count(*) from only %s", name);
        sv_error qerr = {0};
        PGresult *r = pg_query_stoppable(c, sql, &qerr);
        free(sql);
        free(name);
        if (!r && (signals_stop_requested() || qerr.code == SV_EXIT_TEMPFAIL)) {
            *err = qerr;
            return -1;
        }
        if (!r && strstr(qerr.msg, "row-level security")) {
            /* FORCE ROW LEVEL SECURITY binds the drill's role, owner of
             * the scratch copy: what it may not count is not a difference */
            hidden++;
        } else if (!r) {
            first_mismatch(f,
                           xasprintf("table %s.%s (%" PRId64 " rows in the backup) cannot be counted after "
                                     "the restore: %s",
                                     t->schema, t->table, t->rows, qerr.msg));
        } else {
            int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            f->counted += (uint64_t)n;
            f->compared += (uint64_t)t->rows;
            if (n != t->rows)
                first_mismatch(f, xasprintf("table %s.%s has %" PRId64 " rows after the restore, the backup "
                                            "counted %" PRId64 " in its snapshot",
                                            t->schema, t->table, n, t->rows));
        }
        PQclear(r);
    }
    if (estimates || hidden)
        f->note =
            xasprintf("not compared: %zu table(s) with an estimated count (SAUVE_PG_ROW_COUNTS), %zu with "
                      "forced row-level security",
                      estimates, hidden);
    return 0;
}

/* BOOLOID: a check answers with a boolean, nothing that merely prints "t" */
#define PG_BOOL_OID 16

/* The user's checks of this database: each must return one row of one
 * boolean, true. -1 when a stop was requested or the server was lost. */
static int run_checks(const sv_config *cfg, PGconn *c, const manifest_artifact *a, struct drill_findings *f,
                      sv_error *err)
{
    for (size_t i = 0; i < cfg->n_drill_checks; i++) {
        const sv_drill_check *k = &cfg->drill_checks[i];
        if (strcmp(k->database, a->name) != 0)
            continue;
        f->checks_run++;
        sv_error qerr = {0};
        PGresult *r = pg_query_stoppable(c, k->sql, &qerr);
        if (!r && (signals_stop_requested() || qerr.code == SV_EXIT_TEMPFAIL)) {
            *err = qerr;
            return -1;
        }
        const char *why = NULL;
        if (!r)
            why = qerr.msg;
        else if (PQntuples(r) != 1 || PQnfields(r) != 1)
            why = "returned other than one row of one column";
        else if (PQftype(r, 0) != PG_BOOL_OID)
            why = "returned other than a boolean";
        else if (PQgetisnull(r, 0, 0))
            why = "returned null, not true";
        else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0)
            why = "returned false";
        if (why) {
            f->checks_failed++;
            first_mismatch(f, xasprintf("check '%s' (config file line %d) %s%s", k->name, k->line,
                                        r ? "" : "failed: ", why));
        }
        log_with(why ? LOG_ERROR : LOG_INFO,
                 LOG_FIELDS(LOG_STR("check", k->name), LOG_STR("database", a->name)),
                 "drill check '%s' of postgres:%s: %s", k->name, a->name, why ? "did not hold" : "true");
        PQclear(r);
    }
    return 0;
}

int pg_drill_compare(const sv_config *cfg, const manifest_artifact *a, const struct loader_options *o,
                     struct drill_findings *f, sv_error *err)
{
    f->unit = "rows";
    PGconn *c = pg_connect(cfg, o->into, err);
    if (!c)
        return -1;
    /* as the backup counted: every row, or an error where a policy binds */
    sv_error ignored = {0};
    PQclear(pg_query(c, "set row_security = off", 0, NULL, &ignored));
    int rc = compare_rows(c, a, f, err);
    if (rc == 0)
        rc = run_checks(cfg, c, a, f, err);
    PQfinish(c);
    return rc;
}

int pg_drill_discard(const sv_config *cfg, const struct loader_options *o, sv_error *err)
{
    return pg_drop_database(cfg, o->into, true, err);
}
