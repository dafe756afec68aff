/* The PostgreSQL source: preflight over libpq, then pg_dumpall for globals
 * and pg_dump -Fc -Z0 per database, their stdout streamed into the pipeline.
 * Each pg_dump runs in a snapshot sauve exported, in which the rows of its
 * tables are counted for the manifest (postgres_counts.c). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/proc.h"
#include "common/signals.h"
#include "manifest/manifest.h"
#include "sources/postgres.h"

struct pg_source {
    const sv_config *cfg;
    sv_strlist databases; /* as requested; "all" resolved in prepare */
    bool globals;
    bool superuser;
    struct pg_tools tools;
    char *maintenance_db;
};

/* Which database to connect to for cluster-wide questions: the first listed
 * one (a role may be allowed into nothing else), else PGDATABASE, else postgres. */
static const char *maintenance_db(const struct pg_source *ps)
{
    if (ps->databases.n > 0 && strcmp(ps->databases.items[0], "all") != 0)
        return ps->databases.items[0];
    const char *env = getenv("PGDATABASE");
    return env && *env ? env : "postgres";
}

static int resolve_all(PGconn *conn, sv_strlist *out, sv_error *err)
{
    PGresult *r = pg_query(conn,
                           "select datname from pg_database where datallowconn and not datistemplate "
                           "and has_database_privilege(datname, 'CONNECT') order by datname",
                           0, NULL, err);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0);
        /* sauve's own scratch databases (a drill's, a restore's in
         * progress) are copies of what it backs up, and go away */
        static const char *const own[] = {"sauve_drill_", "sauve_restore_", "sauve_old_"};
        bool scratch = false;
        for (size_t j = 0; j < sizeof own / sizeof *own; j++)
            scratch = scratch || strncmp(name, own[j], strlen(own[j])) == 0;
        if (scratch)
            log_info("database %s is a scratch copy of sauve's: not backed up by pg.databases=all", name);
        else
            strlist_push(out, name);
    }
    PQclear(r);
    return 0;
}

/* Whether the connected role may read large object m: what pg_dump needs
 * (pg_read_all_data does not cover large objects). 17 has the function;
 * before it, the same rule spelled out: owner, a grant, or
 * lo_compat_privileges. */
static const char *lo_readable(int server_version)
{
    return server_version >= 170000
               ? "(current_setting('lo_compat_privileges')::bool or has_largeobject_privilege(m.oid, "
                 "'SELECT'))"
               : "(current_setting('lo_compat_privileges')::bool or pg_has_role(m.lomowner, 'USAGE') "
                 "or exists (select 1 from aclexplode(m.lomacl) a where a.privilege_type = 'SELECT' "
                 "and (a.grantee = 0 or pg_has_role(a.grantee, 'USAGE'))))";
}

/* Per-database preflight: reachable, and everything pg_dump reads
 * readable (every table; for a non-superuser, every table with row-level
 * security, which pg_dump reads with row_security off, and every large
 * object), so that a dump that would fail halfway is reported before it
 * starts, with the grant that is missing. */
static void check_database(struct pg_source *ps, source_artifact *a)
{
    sv_error err = {0};
    PGconn *conn = pg_connect_as(ps->cfg, a->name, PG_APPNAME_BACKUP, &err);
    if (!conn) {
        source_artifact_fail(a, &err);
        return;
    }
    int version = PQserverVersion(conn);
    /* row-level security came with 9.5; a superuser bypasses it and reads every large object */
    const char *rls = ps->superuser || version < 90500
                          ? "false"
                          : "c.relkind = 'r' and c.relrowsecurity "
                            "and not (select rolbypassrls from pg_roles where rolname = current_user) "
                            /* the owner bypasses its table's policies unless they are forced */
                            "and (c.relforcerowsecurity or not pg_has_role(c.relowner, 'USAGE'))";
    char *sql = xasprintf(
        "with rel as (select c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) as name "
        "  from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "  where c.relkind in ('r', 'p', 'S', 'm') "
        "  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%%'), "
        "unreadable as (select name from rel where not has_table_privilege(oid, 'SELECT')), "
        "rls as (select rel.name from rel join pg_class c on c.oid = rel.oid where %s), "
        "lo as (select m.oid from pg_largeobject_metadata m where %s and not %s) "
        "select (select count(*) from unreadable), (select min(name) from unreadable), "
        "(select count(*) from rls), (select min(name) from rls), "
        "(select count(*) from lo), (select min(oid)::text from lo)",
        rls, ps->superuser ? "false" : "true", lo_readable(version));
    PGresult *r = pg_query(conn, sql, 0, NULL, &err);
    free(sql);
    if (!r) {
        source_artifact_fail(a, &err);
        PQfinish(conn);
        return;
    }
    long unreadable = atol(PQgetvalue(r, 0, 0));
    long rls_tables = atol(PQgetvalue(r, 0, 2));
    long lo = atol(PQgetvalue(r, 0, 4));
    char *endpoint = pg_endpoint(ps->cfg, conn);
    if (unreadable > 0) {
        sv_error_set(&err, SV_EXIT_CONFIG, "user cannot read %ld table(s) of database %s at %s, e.g. %s",
                     unreadable, a->name, endpoint, PQgetvalue(r, 0, 1));
        sv_error_hint(&err, "grant SELECT on them, or back up with a role that has pg_read_all_data");
    } else if (rls_tables > 0) {
        sv_error_set(&err, SV_EXIT_CONFIG,
                     "user cannot dump %ld table(s) with row-level security of database %s at %s, e.g. %s: "
                     "pg_dump reads every row, and the role is subject to their policies",
                     rls_tables, a->name, endpoint, PQgetvalue(r, 0, 3));
        sv_error_hint(&err,
                      "back up with a role that has BYPASSRLS (ALTER ROLE ... BYPASSRLS, as a superuser)");
    } else if (lo > 0) {
        sv_error_set(&err, SV_EXIT_CONFIG,
                     "user cannot read %ld large object(s) of database %s at %s, e.g. %s", lo, a->name,
                     endpoint, PQgetvalue(r, 0, 5));
        sv_error_hint(
            &err, "pg_read_all_data does not cover large objects: GRANT SELECT ON LARGE OBJECT ... to the "
                  "role, make it a member of their owner, or back up as a superuser");
    }
    if (err.code)
        source_artifact_fail(a, &err);
    free(endpoint);
    PQclear(r);
    PQfinish(conn);
}

static int pg_prepare(source *s, sv_error *err)
{
    struct pg_source *ps = s->impl;
    ps->maintenance_db = xstrdup(maintenance_db(ps));
    PGconn *conn = pg_connect_as(ps->cfg, ps->maintenance_db, PG_APPNAME_BACKUP, err);
    if (!conn)
        return -1;

    int server_num = PQserverVersion(conn);
    int server_major = server_num / 10000;
    const char *sv = PQparameterStatus(conn, "server_version");
    s->info.server_version = xstrndup(sv ? sv : "", sv ? strcspn(sv, " ") : 0);
    s->info.endpoint = pg_endpoint(ps->cfg, conn);
    const char *su = PQparameterStatus(conn, "is_superuser");
    ps->superuser = su && strcmp(su, "on") == 0;

    int rc = -1;
    sv_strlist dbs = {0};
    if (pg_tools_find(ps->cfg, server_major, &ps->tools, err) != 0)
        goto out;
    s->info.tool = xstrdup("pg_dump");
    s->info.tool_version = xstrdup(ps->tools.dump_version);

    bool all = ps->databases.n == 1 && strcmp(ps->databases.items[0], "all") == 0;
    if (all) {
        if (resolve_all(conn, &dbs, err) != 0)
            goto out;
    } else if (ps->databases.n > 0) {
        for (size_t i = 0; i < ps->databases.n; i++)
            strlist_push(&dbs, ps->databases.items[i]);
    } else {
        strlist_push(&dbs, ps->maintenance_db);
    }

    if (ps->globals)
        source_add_artifact(s, "postgres", "globals", "postgres/globals.sql", "pg_dumpall-globals-sql")
            ->auxiliary = true;
    for (size_t i = 0; i < dbs.n; i++) {
        bool repeated = false;
        for (size_t j = 0; j < i && !repeated; j++)
            repeated = strcmp(dbs.items[i], dbs.items[j]) == 0;
        if (repeated) {
            log_warn("database %s is listed twice in SAUVE_PG_DATABASES; backed up once", dbs.items[i]);
            continue;
        }
        char *key = xasprintf("postgres/%s.dump", dbs.items[i]);
        char *stored = xasprintf("%s.zst", key);
        source_artifact *a = source_add_artifact(s, "postgres", dbs.items[i], key, "pg_dump-custom");
        bool storable = strchr(dbs.items[i], '/') == NULL && strcmp(dbs.items[i], "globals") != 0 &&
                        dbs.items[i][0] != '.' && manifest_key_is_safe(stored);
        free(key);
        free(stored);
        if (!storable) {
            /* The name becomes part of a storage key: refuse what would
             * collide with the layout or not survive the manifest, instead
             * of committing a set nobody can read. */
            sv_error e = {0};
            sv_error_set(&e, SV_EXIT_CONFIG,
                         "database name '%s' cannot be stored under sauve's layout "
                         "(it contains '/', '\\', a control character or invalid UTF-8, starts with '.', "
                         "or is 'globals')",
                         dbs.items[i]);
            source_artifact_fail(a, &e);
            continue;
        }
        check_database(ps, a);
    }
    if (dbs.n == 0)
        log_warn("postgres at %s has no connectable database to back up", s->info.endpoint);
    log_with(LOG_INFO,
             LOG_FIELDS(LOG_STR("source", "postgres"), LOG_STR("server_version", s->info.server_version),
                        LOG_STR("tools", ps->tools.dir), LOG_NUM("databases", (int64_t)dbs.n)),
             "postgres %s at %s: %zu database(s), pg_dump from %s", s->info.server_version, s->info.endpoint,
             dbs.n, ps->tools.dir);
    rc = 0;
out:
    strlist_free(&dbs);
    PQfinish(conn);
    return rc;
}

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int pg_dump_artifact(source *s, size_t i, stream *out, sv_error *err)
{
    struct pg_source *ps = s->impl;
    source_artifact *a = &s->artifacts[i];
    bool globals = strcmp(a->format, "pg_dumpall-globals-sql") == 0;
    /* the rows of each table, counted in the snapshot pg_dump dumps */
    struct pg_counter *counter = NULL;
    char *snapshot_arg = NULL;
    if (!globals && strcmp(ps->cfg->pg_row_counts, "off") != 0) {
        counter = pg_counter_start(ps->cfg, a->name, &a->row_counts);
        if (counter)
            snapshot_arg = xasprintf("--snapshot=%s", pg_counter_snapshot(counter));
        else
            log_warn("database %s: rows not counted: %s", a->name, a->row_counts.skipped);
    }
    double t0 = monotonic_s();
    char *tool = pg_tool_path(&ps->tools, globals ? "pg_dumpall" : "pg_dump");
    char *conninfo = pg_dbname_conninfo(globals ? ps->maintenance_db : a->name);
    char *dbarg = xasprintf("--dbname=%s", conninfo);
    const char *argv[10];
    size_t n = 0;
    if (globals) {
        /* full path: pg_dumpall finds pg_dump next to its own argv[0] */
        argv[n++] = tool;
        argv[n++] = "--globals-only";
        /* pg_authid is readable by superusers only */
        if (!ps->superuser)
            argv[n++] = "--no-role-passwords";
        /* without it pg_dumpall connects to postgres or template1, which a
         * role allowed into its own database only cannot */
        argv[n++] = "--database";
        argv[n++] = ps->maintenance_db;
    } else {
        argv[n++] = tool;
        argv[n++] = "--format=custom";
        argv[n++] = "--compress=0";
        if (snapshot_arg)
            argv[n++] = snapshot_arg;
    }
    argv[n++] = "--no-password";
    argv[n++] = dbarg;
    argv[n] = NULL;

    char **env = pg_child_env(ps->cfg, PG_APPNAME_BACKUP);
    struct proc_options po = {.path = tool,
                              .argv = argv,
                              .env_set = (const char *const *)env,
                              .env_keep = pg_child_env_keep(),
                              .pipe_stdout = true,
                              .log_name = globals ? "pg_dumpall" : "pg_dump"};
    int rc = -1;
    proc *p = proc_start(&po, err);
    pg_child_env_free(env);
    if (!p)
        goto out;
    /* pg_dump imports the snapshot as it starts; the transaction that
     * exported it stays open until pg_dump has ended */
    if (counter)
        pg_counter_send(counter);
    int64_t copied = stream_copy_fd(out, proc_stdout_fd(p), NULL, NULL, err);
    if (copied < 0) {
        /* The pipeline failed (storage, signal): stop the dump, report the pipeline's error. */
        proc_kill(p, SIGTERM);
        sv_error ignored = {0};
        proc_wait(p, &ignored);
        goto out;
    }
    if (proc_wait(p, err) != 0) {
        if (signals_stop_requested())
            signals_check(err);
        goto out;
    }
    if (copied == 0) {
        sv_error_set(err, SV_EXIT_FAILED, "%s wrote nothing for %s", globals ? "pg_dumpall" : "pg_dump",
                     a->name);
        goto out;
    }
    if (counter) {
        /* counting may go on after the dump, but not for long: 10 s and a
         * quarter of the dump's own time */
        pg_counter_finish(counter, 10 + (monotonic_s() - t0) / 4, &a->row_counts);
        counter = NULL;
    }
    rc = 0;
out:
    pg_counter_abort(counter);
    if (rc != 0)
        manifest_row_counts_free(&a->row_counts);
    proc_free(p);
    free(snapshot_arg);
    free(tool);
    free(conninfo);
    free(dbarg);
    return rc;
}

static void pg_destroy(source *s)
{
    struct pg_source *ps = s->impl;
    strlist_free(&ps->databases);
    pg_tools_free(&ps->tools);
    free(ps->maintenance_db);
    free(ps);
}

static const struct source_ops pg_source_ops = {
    .kind = "postgres",
    .prepare = pg_prepare,
    .dump = pg_dump_artifact,
    .destroy = pg_destroy,
};

source *pg_source_new(const sv_config *cfg, const sv_strlist *databases, bool globals)
{
    struct pg_source *ps = xcalloc(1, sizeof *ps);
    ps->cfg = cfg;
    ps->globals = globals;
    const sv_strlist *dbs = databases ? databases : &cfg->pg_databases;
    for (size_t i = 0; i < dbs->n; i++)
        strlist_push(&ps->databases, dbs->items[i]);
    source *s = xcalloc(1, sizeof *s);
    s->ops = &pg_source_ops;
    s->impl = ps;
    return s;
}

const struct pg_tools *pg_source_tools(const source *s)
{
    if (s->ops != &pg_source_ops)
        return NULL;
    const struct pg_source *ps = s->impl;
    return ps->tools.dir ? &ps->tools : NULL;
}
