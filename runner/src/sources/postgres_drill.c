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
 * database. Estimates are not compared: the planner's figure is not a
 * count a restore must reproduce. */
static void compare_rows(PGconn *c, const manifest_artifact *a, struct drill_findings *f)
{
    const manifest_row_counts *rc = &a->row_counts;
    if (!rc->present || rc->skipped) {
        f->note = xasprintf(
            "row counts not compared: %s",
            rc->skipped ? rc->skipped : "the manifest has none (SAUVE_PG_ROW_COUNTS=off, or an older sauve)");
        return;
    }
    size_t estimates = 0;
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
        char *sql = xasprintf("select count(*) from %s", name);
        sv_error qerr = {0};
        PGresult *r = pg_query(c, sql, 0, NULL, &qerr);
        if (!r) {
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
        free(sql);
        free(name);
    }
    if (estimates)
        f->note =
            xasprintf("%zu table(s) with an estimated count not compared (SAUVE_PG_ROW_COUNTS)", estimates);
}

/* The user's checks of this database: each must return true. */
static void run_checks(const sv_config *cfg, PGconn *c, const manifest_artifact *a, struct drill_findings *f)
{
    for (size_t i = 0; i < cfg->n_drill_checks; i++) {
        const sv_drill_check *k = &cfg->drill_checks[i];
        if (strcmp(k->database, a->name) != 0)
            continue;
        f->checks_run++;
        sv_error qerr = {0};
        PGresult *r = pg_query(c, k->sql, 0, NULL, &qerr);
        bool held = r && PQntuples(r) >= 1 && PQnfields(r) >= 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        if (!held) {
            f->checks_failed++;
            if (!r)
                first_mismatch(
                    f, xasprintf("check '%s' (config file line %d) failed: %s", k->name, k->line, qerr.msg));
            else
                first_mismatch(f, xasprintf("check '%s' (config file line %d) returned %s, not true", k->name,
                                            k->line,
                                            PQntuples(r) < 1 || PQnfields(r) < 1 ? "no row"
                                            : PQgetisnull(r, 0, 0)               ? "null"
                                                                                 : PQgetvalue(r, 0, 0)));
        }
        log_with(held ? LOG_INFO : LOG_ERROR,
                 LOG_FIELDS(LOG_STR("check", k->name), LOG_STR("database", a->name)),
                 "drill check '%s' of postgres:%s: %s", k->name, a->name, held ? "true" : "did not hold");
        PQclear(r);
    }
}

int pg_drill_compare(const sv_config *cfg, const manifest_artifact *a, const struct loader_options *o,
                     struct drill_findings *f, sv_error *err)
{
    f->unit = "rows";
    PGconn *c = pg_connect(cfg, o->into, err);
    if (!c)
        return -1;
    compare_rows(c, a, f);
    run_checks(cfg, c, a, f);
    PQfinish(c);
    return 0;
}

int pg_drill_discard(const sv_config *cfg, const struct loader_options *o, sv_error *err)
{
    return pg_drop_database(cfg, o->into, true, err);
}
