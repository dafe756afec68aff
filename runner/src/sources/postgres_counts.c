/*
 * The rows of every table a pg_dump holds, counted in the dump's own
 * snapshot (postgres.h, pg_counter_*).
 *
 * One connection opens a REPEATABLE READ transaction, exports its snapshot
 * and lists, in it, the tables whose data pg_dump dumps: ordinary tables
 * and partitions outside the system schemas, not temporary, not members of
 * an extension, and not unlogged on a standby (pg_dump skips their data
 * there). pg_dump runs with --snapshot, so it sees exactly what the list
 * and the counts see; the transaction stays open until pg_dump has ended,
 * so the snapshot is never released before pg_dump imported it.
 *
 * The counts are one query (count(*) of each table, ONLY: pg_dump's COPY of
 * a parent does not include its children), sent without waiting right
 * after pg_dump started: the server counts on its own backend while sauve
 * streams the dump. Tables larger than the exact limit get the planner's
 * estimate instead. Counting is advisory: whatever goes wrong with it is
 * recorded as the reason there are no counts, never fails the backup.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/mem.h"
#include "sources/postgres.h"

struct pg_counter {
    PGconn *conn;
    char *snapshot;
    char *dbname;
    bool want; /* some table is counted exactly: the query must be sent */
    bool sent;
    /* the tables, in the order of the list */
    struct table {
        char *schema, *name;
        double reltuples;
        bool exact;
    } * tables;
    size_t n;
};

static void one_line(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        s[--n] = '\0';
}

/* Records why there are no counts, from the connection's last error. */
static void skip(manifest_row_counts *out, const char *what, PGconn *c)
{
    manifest_row_counts_free(out);
    out->present = true;
    char *msg = xstrdup(c ? PQerrorMessage(c) : "");
    one_line(msg);
    out->skipped = *msg ? xasprintf("%s: %s", what, msg) : xstrdup(what);
    free(msg);
}

static void counter_free(struct pg_counter *c)
{
    if (c->conn)
        PQfinish(c->conn);
    for (size_t i = 0; i < c->n; i++) {
        free(c->tables[i].schema);
        free(c->tables[i].name);
    }
    free(c->tables);
    free(c->snapshot);
    free(c->dbname);
    free(c);
}

struct pg_counter *pg_counter_start(const sv_config *cfg, const char *dbname, manifest_row_counts *out)
{
    memset(out, 0, sizeof *out);
    bool estimate_all = strcmp(cfg->pg_row_counts, "estimate") == 0;
    /* pg_relation_size, in bytes; 0: no limit */
    double exact_max = (double)cfg->pg_row_counts_exact_max_mb * 1024.0 * 1024.0;
    sv_error err = {0};
    struct pg_counter *c = xcalloc(1, sizeof *c);
    c->dbname = xstrdup(dbname);
    c->conn = pg_connect_as(cfg, dbname, PG_APPNAME_BACKUP, &err);
    if (!c->conn) {
        manifest_row_counts_free(out);
        out->present = true;
        out->skipped = xasprintf("cannot connect to count rows: %s", err.msg);
        counter_free(c);
        return NULL;
    }
    PGresult *r = PQexec(c->conn, "begin isolation level repeatable read read only");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        skip(out, "cannot begin the counting transaction", c->conn);
        counter_free(c);
        return NULL;
    }
    /* the first statement takes the transaction's snapshot: export it */
    r = PQexec(c->conn, "select pg_export_snapshot()");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        skip(
            out,
            "pg_export_snapshot() failed, so the rows could not be counted in the dump's snapshot (a standby "
            "before PostgreSQL 10 cannot export one)",
            c->conn);
        counter_free(c);
        return NULL;
    }
    c->snapshot = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    /* The size is the catalog's (relpages, as of the last VACUUM or
     * ANALYZE): pg_relation_size would take a lock on every table, and
     * wait here, before pg_dump even started, behind any lock held on one. */
    r = PQexec(c->conn,
               "select n.nspname, c.relname, c.reltuples::float8, "
               "c.relpages::float8 * current_setting('block_size')::float8 "
               "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
               "where c.relkind = 'r' and c.relpersistence <> 't' "
               "and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_toast' "
               "and (c.relpersistence = 'p' or not pg_is_in_recovery()) "
               "and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass "
               "                and d.objid = c.oid and d.deptype = 'e') "
               "order by 1, 2");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        skip(out, "cannot list the tables to count", c->conn);
        counter_free(c);
        return NULL;
    }
    c->n = (size_t)PQntuples(r);
    c->tables = xcalloc(c->n ? c->n : 1, sizeof *c->tables);
    for (size_t i = 0; i < c->n; i++) {
        struct table *t = &c->tables[i];
        t->schema = xstrdup(PQgetvalue(r, (int)i, 0));
        t->name = xstrdup(PQgetvalue(r, (int)i, 1));
        t->reltuples = strtod(PQgetvalue(r, (int)i, 2), NULL);
        double size = strtod(PQgetvalue(r, (int)i, 3), NULL);
        t->exact = !estimate_all && (exact_max <= 0 || size <= exact_max);
        c->want |= t->exact;
    }
    PQclear(r);
    /* Counting must see what pg_dump sees: pg_dump turns row security off
     * (and fails where a policy would hide rows); so does the count. One
     * backend: a backup's side query takes no parallel workers from the
     * server (nor the CPU pg_dump needs). */
    r = PQexec(c->conn, "set local row_security = off; set local max_parallel_workers_per_gather = 0");
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        skip(out, "cannot set up the counting transaction", c->conn);
        counter_free(c);
        return NULL;
    }
    return c;
}

const char *pg_counter_snapshot(const struct pg_counter *c)
{
    return c->snapshot;
}

void pg_counter_send(struct pg_counter *c)
{
    if (!c->want)
        return;
    /* "savepoint ...; select 3, count(*) from only s.t union all ...". A
     * count that fails (a statement_timeout of the database or role, a
     * table dropped under it) then aborts only the savepoint: the exporting
     * transaction, and the snapshot pg_dump may not have imported yet, stay
     * valid, and the dump goes on without counts. */
    static const char head[] = "savepoint sauve_count; ";
    size_t cap = 256, len = strlen(head);
    char *sql = xmalloc(cap);
    memcpy(sql, head, len + 1);
    for (size_t i = 0; i < c->n; i++) {
        if (!c->tables[i].exact)
            continue;
        char *s = PQescapeIdentifier(c->conn, c->tables[i].schema, strlen(c->tables[i].schema));
        char *t = PQescapeIdentifier(c->conn, c->tables[i].name, strlen(c->tables[i].name));
        char *part = xasprintf("%sselect %zu, count(*) from only %s.%s",
                               len > strlen(head) ? " union all " : "", i, s ? s : "\"\"", t ? t : "\"\"");
        PQfreemem(s);
        PQfreemem(t);
        size_t pl = strlen(part);
        if (len + pl + 1 > cap) {
            while (len + pl + 1 > cap)
                cap *= 2;
            sql = xrealloc(sql, cap);
        }
        memcpy(sql + len, part, pl + 1);
        len += pl;
        free(part);
    }
    c->sent = PQsendQuery(c->conn, sql) == 1;
    if (!c->sent)
        log_warn("database %s: could not send the row count query: %s", c->dbname, PQerrorMessage(c->conn));
    free(sql);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for the result of the count query until deadline (monotonic
 * seconds): true when it is ready (or failed) without blocking. */
static bool wait_ready(PGconn *conn, double deadline)
{
    for (;;) {
        if (!PQconsumeInput(conn))
            return true; /* the connection failed: PQgetResult says so */
        if (!PQisBusy(conn))
            return true;
        double left = deadline - now_s();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
        int ms = left > 1 ? 1000 : (int)(left * 1000) + 1;
        poll(&p, 1, ms);
    }
}

static void cancel(PGconn *conn)
{
    pg_cancel_query(conn);
    PGresult *r;
    while ((r = PQgetResult(conn)))
        PQclear(r);
}

void pg_counter_finish(struct pg_counter *c, double wait_s, manifest_row_counts *out)
{
    manifest_row_counts_free(out);
    out->present = true;
    int64_t *exact = xcalloc(c->n ? c->n : 1, sizeof *exact);
    bool failed = false;
    if (c->want && !c->sent) {
        out->skipped = xstrdup("the row count query could not be sent");
        failed = true;
    } else if (c->sent) {
        if (!wait_ready(c->conn, now_s() + wait_s)) {
            cancel(c->conn);
            out->skipped = xasprintf("counting the rows did not end within %.0f s after the dump: cancelled "
                                     "(set pg.row_counts to estimate, or lower pg.row_counts_exact_max_mb)",
                                     wait_s);
            failed = true;
        } else {
            PGresult *r;
            while ((r = PQgetResult(c->conn))) {
                if (PQresultStatus(r) == PGRES_COMMAND_OK) {
                    /* the savepoint */
                } else if (!failed && PQresultStatus(r) != PGRES_TUPLES_OK) {
                    char *msg = xstrdup(PQresultErrorMessage(r));
                    one_line(msg);
                    out->skipped = xasprintf("counting the rows failed: %s", msg);
                    free(msg);
                    failed = true;
                } else if (!failed) {
                    for (int i = 0; i < PQntuples(r); i++) {
                        size_t idx = strtoul(PQgetvalue(r, i, 0), NULL, 10);
                        if (idx < c->n)
                            exact[idx] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
                    }
                }
                PQclear(r);
            }
        }
    }
    if (!failed)
        for (size_t i = 0; i < c->n; i++) {
            const struct table *t = &c->tables[i];
            if (t->exact)
                manifest_row_counts_add(out, t->schema, t->name, exact[i], ROWS_EXACT);
            else if (t->reltuples < 0)
                manifest_row_counts_add(out, t->schema, t->name, -1, ROWS_UNKNOWN);
            else
                manifest_row_counts_add(out, t->schema, t->name, (int64_t)(t->reltuples + 0.5),
                                        ROWS_ESTIMATE);
        }
    if (failed)
        log_warn("database %s: %s", c->dbname, out->skipped);
    free(exact);
    /* ends the transaction, and with it the exported snapshot */
    counter_free(c);
}

void pg_counter_abort(struct pg_counter *c)
{
    if (!c)
        return;
    if (c->sent)
        cancel(c->conn);
    counter_free(c);
}
