/* Restore targets (inspect, create, drop, rename) and the loaders that feed
 * an artifact to pg_restore or psql. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/proc.h"
#include "sources/postgres.h"

/* Bytes of the decompressed artifact held back from the loader until every
 * check has passed: far more than pg_restore needs to see the end of an
 * archive, so it cannot commit before sauve says the artifact is whole. */
#define LOADER_HOLDBACK (1u << 20)

/* Cluster-level statements (CREATE/DROP/ALTER DATABASE) cannot run inside
 * the database they change: connect to postgres, or template1 without it. */
static PGconn *admin_connect(const sv_config *cfg, sv_error *err)
{
    PGconn *c = pg_connect(cfg, "postgres", err);
    if (!c && err->code == SV_EXIT_CONFIG) {
        sv_error_clear(err);
        c = pg_connect(cfg, "template1", err);
    }
    return c;
}

static char *quote_ident(PGconn *c, const char *name)
{
    char *q = PQescapeIdentifier(c, name, strlen(name));
    char *out = xstrdup(q ? q : "\"\"");
    PQfreemem(q);
    return out;
}

/* Runs "BEFORE ident(a) MIDDLE ident(b) AFTER" as an administrative statement. */
static int exec_admin(const sv_config *cfg, const char *before, const char *a, const char *middle,
                      const char *b, const char *after, sv_error *err)
{
    PGconn *c = admin_connect(cfg, err);
    if (!c)
        return -1;
    char *qa = quote_ident(c, a);
    char *qb = b ? quote_ident(c, b) : NULL;
    char *sql = xasprintf("%s %s %s %s %s", before, qa, middle, qb ? qb : "", after);
    PGresult *r = pg_query(c, sql, 0, NULL, err);
    int rc = r ? 0 : -1;
    PQclear(r);
    free(sql);
    free(qa);
    free(qb);
    PQfinish(c);
    return rc;
}

int pg_create_database(const sv_config *cfg, const char *dbname, const char *owner, sv_error *err)
{
    if (owner && exec_admin(cfg, "create database", dbname, "owner", owner, "", err) == 0)
        return 0;
    if (owner) {
        log_warn("cannot create database %s owned by %s (%s); creating it owned by the restoring user",
                 dbname, owner, err->msg);
        sv_error_clear(err);
    }
    return exec_admin(cfg, "create database", dbname, "", NULL, "", err);
}

int pg_drop_database(const sv_config *cfg, const char *dbname, bool force, sv_error *err)
{
    return exec_admin(cfg, "drop database if exists", dbname, "", NULL, force ? "with (force)" : "", err);
}

int pg_rename_database(const sv_config *cfg, const char *from, const char *to, sv_error *err)
{
    return exec_admin(cfg, "alter database", from, "rename to", to, "", err);
}

int pg_target_inspect(const sv_config *cfg, const char *dbname, struct pg_target *out, sv_error *err)
{
    memset(out, 0, sizeof *out);
    PGconn *c = admin_connect(cfg, err);
    if (!c)
        return -1;
    out->server_major = PQserverVersion(c) / 10000;
    const char *params[] = {dbname};
    PGresult *r =
        pg_query(c, "select pg_get_userbyid(datdba) from pg_database where datname = $1", 1, params, err);
    PQfinish(c);
    if (!r)
        return -1;
    out->exists = PQntuples(r) == 1;
    if (out->exists)
        out->owner = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!out->exists) {
        out->empty = true;
        return 0;
    }
    c = pg_connect(cfg, dbname, err);
    if (!c)
        return -1;
    /* Anything a user could have created: relations, functions, types,
     * schemas other than public, extensions other than plpgsql, large objects. */
    r = pg_query(c,
                 "select (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                 "        where n.nspname not in ('pg_catalog', 'information_schema')"
                 "        and n.nspname !~ '^pg_(toast|temp)')"
                 "     + (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                 "        where n.nspname not in ('pg_catalog', 'information_schema'))"
                 "     + (select count(*) from pg_namespace where nspname not in"
                 "        ('pg_catalog', 'information_schema', 'public') and nspname !~ '^pg_(toast|temp)')"
                 "     + (select count(*) from pg_extension where extname <> 'plpgsql')"
                 "     + (select count(*) from pg_largeobject_metadata)",
                 0, NULL, err);
    PQfinish(c);
    if (!r)
        return -1;
    out->empty = atol(PQgetvalue(r, 0, 0)) == 0;
    PQclear(r);
    return 0;
}

void pg_target_free(struct pg_target *t)
{
    free(t->owner);
    memset(t, 0, sizeof *t);
}

struct pg_loader {
    proc *p;
    bool globals;
    int unexpected_errors; /* psql errors other than "already exists" */
    char first_error[512];
};

/* psql reports each failed statement as "psql:<stdin>:N: ERROR:  42710: ...".
 * Restoring globals into a cluster that already has the roles must succeed,
 * so duplicate_object (42710) is expected; anything else is a failure. */
static void on_psql_stderr(void *ctx, const char *line)
{
    struct pg_loader *l = ctx;
    const char *e = strstr(line, "ERROR:");
    if (!e)
        return;
    if (strstr(e, "42710"))
        return;
    if (l->unexpected_errors++ == 0)
        snprintf(l->first_error, sizeof l->first_error, "%s", line);
}

pg_loader *pg_loader_start(const sv_config *cfg, const char *format, const char *dbname, bool no_owner,
                           int server_major, stream **sink, sv_error *err)
{
    struct pg_tools tools;
    if (pg_tools_find(cfg, server_major, &tools, err) != 0)
        return NULL;
    pg_loader *l = xcalloc(1, sizeof *l);
    l->globals = strcmp(format, "pg_dumpall-globals-sql") == 0;
    if (!l->globals && strcmp(format, "pg_dump-custom") != 0) {
        sv_error_set(err, SV_EXIT_FAILED, "artifact format %s cannot be restored into postgres", format);
        pg_tools_free(&tools);
        free(l);
        return NULL;
    }
    char *tool = pg_tool_path(&tools, l->globals ? "psql" : "pg_restore");
    char *conninfo = pg_dbname_conninfo(dbname);
    char *dbarg = xasprintf("--dbname=%s", conninfo);
    const char *argv[10];
    size_t n = 0;
    if (l->globals) {
        argv[n++] = tool;
        argv[n++] = "--no-psqlrc";
        argv[n++] = "--quiet";
        argv[n++] = "--set=VERBOSITY=verbose";
    } else {
        argv[n++] = tool;
        /* one transaction: a failure anywhere leaves the target as it was */
        argv[n++] = "--single-transaction";
        if (no_owner)
            argv[n++] = "--no-owner";
    }
    argv[n++] = "--no-password";
    argv[n++] = dbarg;
    argv[n] = NULL;
    char **env = pg_child_env(cfg);
    const char *unset[] = {"PGDATABASE", NULL};
    struct proc_options po = {.path = tool,
                              .argv = argv,
                              .env_set = (const char *const *)env,
                              .env_unset = unset,
                              .pipe_stdin = true,
                              .log_name = l->globals ? "psql" : "pg_restore",
                              .on_stderr_line = l->globals ? on_psql_stderr : NULL,
                              .on_stderr_ctx = l};
    l->p = proc_start(&po, err);
    pg_child_env_free(env);
    free(tool);
    free(conninfo);
    free(dbarg);
    pg_tools_free(&tools);
    if (!l->p) {
        free(l);
        return NULL;
    }
    *sink = fd_sink(proc_take_stdin(l->p), LOADER_HOLDBACK);
    return l;
}

int pg_loader_finish(pg_loader *l, bool ok, sv_error *err)
{
    if (!ok) {
        /* The artifact failed verification: make sure nothing commits. */
        proc_kill(l->p, SIGTERM);
        sv_error ignored = {0};
        proc_wait(l->p, &ignored);
        proc_free(l->p);
        free(l);
        return -1;
    }
    int rc = proc_wait(l->p, err);
    if (rc == 0 && l->unexpected_errors > 0) {
        sv_error_set(err, SV_EXIT_FAILED, "psql reported %d error(s) restoring globals, first: %s",
                     l->unexpected_errors, l->first_error);
        rc = -1;
    }
    proc_free(l->p);
    free(l);
    return rc;
}
