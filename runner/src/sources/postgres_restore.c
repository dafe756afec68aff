/*
 * How a PostgreSQL backup is restored: the loader of kind "postgres"
 * (sources/loader.h). postgres:DATABASE is a pg_dump archive that
 * pg_restore loads into a database; postgres:globals is the SQL of
 * pg_dumpall --globals-only (roles, tablespaces) that sauve runs against
 * the cluster itself. The tools are of the server's major or the dump's,
 * the newer (pg_loader_tools).
 *
 * Globals are held in memory (at most GLOBALS_MAX) until the whole
 * artifact verified, then checked (sources/postgres_script.h: no psql
 * meta-command, no transaction control) and run statement by statement
 * over libpq, which interprets no meta-command and no psql variable, in
 * one transaction unless the script creates or drops a tablespace (which
 * PostgreSQL cannot do in one). Each statement runs under a savepoint so
 * that "already exists" (42710: the roles of the cluster the globals came
 * from, starting with the restoring superuser) is passed over as psql
 * would, and any other error rolls the whole script back.
 *
 * The target database is changed only when the whole artifact verified:
 * a new target is created and dropped again on failure; an empty one is
 * loaded in one transaction; a non-empty one is replaced only with
 * --clean, after a safety backup, by restoring into a scratch database and
 * swapping names once it is complete (so is an empty one that the tools
 * cannot load in one transaction).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/proc.h"
#include "sources/loader.h"
#include "sources/postgres.h"
#include "sources/postgres_script.h"

/* Bytes of the decompressed artifact held back from the loader until every
 * check has passed: far more than pg_restore needs to see the end of an
 * archive, so it cannot commit before sauve says the artifact is whole. */
#define LOADER_HOLDBACK (1u << 20)

#define GLOBALS_MAX PG_GLOBALS_MAX

/* Cluster-level statements (CREATE/DROP/ALTER DATABASE) cannot run inside
 * a database they change: connect to postgres, or to template1 when postgres
 * is one of them (restoring the postgres database itself) or does not exist. */
static PGconn *admin_connect(const sv_config *cfg, const char *changing1, const char *changing2,
                             sv_error *err)
{
    bool avoid_postgres = (changing1 && strcmp(changing1, "postgres") == 0) ||
                          (changing2 && strcmp(changing2, "postgres") == 0);
    PGconn *c = NULL;
    if (!avoid_postgres) {
        c = pg_connect(cfg, "postgres", err);
        if (c || err->code != SV_EXIT_CONFIG)
            return c;
        sv_error_clear(err);
    }
    return pg_connect(cfg, "template1", err);
}

static char *quote_ident(PGconn *c, const char *name)
{
    char *q = PQescapeIdentifier(c, name, strlen(name));
    char *out = xstrdup(q ? q : "\"\"");
    PQfreemem(q);
    return out;
}

static char *quote_literal(PGconn *c, const char *value)
{
    char *q = PQescapeLiteral(c, value, strlen(value));
    char *out = xstrdup(q ? q : "''");
    PQfreemem(q);
    return out;
}

/* Runs "BEFORE ident(a) MIDDLE ident(b) AFTER" as an administrative statement. */
static int exec_admin(const sv_config *cfg, const char *before, const char *a, const char *middle,
                      const char *b, const char *after, sv_error *err)
{
    PGconn *c = admin_connect(cfg, a, b, err);
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

/* From template0, never template1: whatever a site added to template1 must
 * not end up inside a restored database (and an extension there would make
 * pg_restore fail on "already exists"). With `like`, the new database gets
 * its encoding, collation, ctype and locale provider; owner (NULL: the
 * connecting user) is set best effort. */
static int pg_create_database(const sv_config *cfg, const char *dbname, const char *like, const char *owner,
                              sv_error *err)
{
    PGconn *c = admin_connect(cfg, dbname, like, err);
    if (!c)
        return -1;
    char *qname = quote_ident(c, dbname);
    char *locale = xstrdup("");
    if (like) {
        const char *params[] = {like};
        /* 15 added ICU per database (daticulocale), 17 the builtin provider
         * and renamed the column datlocale */
        int version = PQserverVersion(c);
        PGresult *r =
            pg_query(c,
                     version >= 170000   ? "select pg_encoding_to_char(encoding), datcollate, datctype, "
                                           "datlocprovider, coalesce(datlocale, '') "
                                           "from pg_database where datname = $1"
                     : version >= 150000 ? "select pg_encoding_to_char(encoding), datcollate, datctype, "
                                           "datlocprovider, coalesce(daticulocale, '') "
                                           "from pg_database where datname = $1"
                                         : "select pg_encoding_to_char(encoding), datcollate, datctype, "
                                           "'c', '' from pg_database where datname = $1",
                     1, params, err);
        if (!r) {
            free(qname);
            free(locale);
            PQfinish(c);
            return -1;
        }
        if (PQntuples(r) == 1) {
            char *enc = quote_literal(c, PQgetvalue(r, 0, 0));
            char *coll = quote_literal(c, PQgetvalue(r, 0, 1));
            char *ctype = quote_literal(c, PQgetvalue(r, 0, 2));
            char *provider_locale = quote_literal(c, PQgetvalue(r, 0, 4));
            const char *provider = PQgetvalue(r, 0, 3);
            free(locale);
            if (strcmp(provider, "i") == 0)
                locale = xasprintf(" encoding %s lc_collate %s lc_ctype %s locale_provider icu icu_locale %s",
                                   enc, coll, ctype, provider_locale);
            else if (strcmp(provider, "b") == 0)
                locale = xasprintf(" encoding %s lc_collate %s lc_ctype %s locale_provider builtin "
                                   "builtin_locale %s",
                                   enc, coll, ctype, provider_locale);
            else
                locale = xasprintf(" encoding %s lc_collate %s lc_ctype %s", enc, coll, ctype);
            free(enc);
            free(coll);
            free(ctype);
            free(provider_locale);
        }
        PQclear(r);
    }
    char *sql = xasprintf("create database %s template template0%s", qname, locale);
    PGresult *r = pg_query(c, sql, 0, NULL, err);
    int rc = r ? 0 : -1;
    if (!r && strstr(err->msg, "permission denied to create database")) {
        /* the role's attributes: retrying cannot help */
        err->code = SV_EXIT_CONFIG;
        sv_error_hint(err,
                      "the restoring role needs CREATEDB (ALTER ROLE ... CREATEDB), or restore --into an "
                      "empty database it may connect to and own objects in");
    }
    PQclear(r);
    free(sql);
    if (rc == 0 && owner) {
        char *qowner = quote_ident(c, owner);
        sql = xasprintf("alter database %s owner to %s", qname, qowner);
        sv_error oerr = {0};
        r = pg_query(c, sql, 0, NULL, &oerr);
        if (!r)
            log_warn("database %s stays owned by the restoring user: %s", dbname, oerr.msg);
        PQclear(r);
        free(sql);
        free(qowner);
    }
    free(qname);
    free(locale);
    PQfinish(c);
    return rc;
}

/* force: terminate other sessions (PostgreSQL 13+ WITH (FORCE)). */
int pg_drop_database(const sv_config *cfg, const char *dbname, bool force, sv_error *err)
{
    if (!force)
        return exec_admin(cfg, "drop database if exists", dbname, "", NULL, "", err);
    PGconn *c = admin_connect(cfg, dbname, NULL, err);
    if (!c)
        return -1;
    /* WITH (FORCE) came with 13; before it, the sessions are ended first
     * (best effort: the drop names any that remains) */
    bool with_force = PQserverVersion(c) >= 130000;
    if (!with_force) {
        const char *params[] = {dbname};
        sv_error ignored = {0};
        PQclear(pg_query(c,
                         "select pg_terminate_backend(pid) from pg_stat_activity "
                         "where datname = $1 and pid <> pg_backend_pid()",
                         1, params, &ignored));
    }
    char *q = quote_ident(c, dbname);
    char *sql = xasprintf("drop database if exists %s%s", q, with_force ? " with (force)" : "");
    PGresult *r = pg_query(c, sql, 0, NULL, err);
    int rc = r ? 0 : -1;
    PQclear(r);
    free(sql);
    free(q);
    PQfinish(c);
    return rc;
}

static int pg_rename_database(const sv_config *cfg, const char *from, const char *to, sv_error *err)
{
    return exec_admin(cfg, "alter database", from, "rename to", to, "", err);
}

/* Database-level state that pg_restore without --create does not carry:
 * who may connect (the ACL), per-database and per-role-in-database
 * settings, and the comment. Copied from the database being replaced, so a
 * restore --clean never reopens a database its owner had closed. */
static int pg_copy_database_properties(const sv_config *cfg, const char *from, const char *to, sv_error *err)
{
    PGconn *c = admin_connect(cfg, from, to, err);
    if (!c)
        return -1;
    char *f = quote_literal(c, from);
    char *t = quote_literal(c, to);
    char *sql = xasprintf(
        "do $sauve$ declare r record; src oid; begin\n"
        "  select oid into src from pg_database where datname = %s;\n"
        "  if (select datacl from pg_database where oid = src) is not null then\n"
        "    execute format('revoke all on database %%I from public', %s);\n"
        "    for r in select a.privilege_type, a.is_grantable, a.grantee\n"
        "             from pg_database d, aclexplode(d.datacl) a where d.oid = src and a.grantee <> d.datdba "
        "loop\n"
        "      execute format('grant %%s on database %%I to %%s%%s', r.privilege_type, %s,\n"
        "        case when r.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(r.grantee)) end,\n"
        "        case when r.is_grantable then ' with grant option' else '' end);\n"
        "    end loop;\n"
        "  end if;\n"
        "  for r in select s.setrole, unnest(s.setconfig) as kv from pg_db_role_setting s\n"
        "           where s.setdatabase = src loop\n"
        "    execute format('alter %%s set %%I = %%L',\n"
        "      case when r.setrole = 0 then format('database %%I', %s)\n"
        "           else format('role %%I in database %%I', pg_get_userbyid(r.setrole), %s) end,\n"
        "      split_part(r.kv, '=', 1), substr(r.kv, strpos(r.kv, '=') + 1));\n"
        "  end loop;\n"
        "  if shobj_description(src, 'pg_database') is not null then\n"
        "    execute format('comment on database %%I is %%L', %s, shobj_description(src, 'pg_database'));\n"
        "  end if;\n"
        "end $sauve$",
        f, t, t, t, t, t);
    PGresult *r = pg_query(c, sql, 0, NULL, err);
    int rc = r ? 0 : -1;
    if (!r)
        sv_error_wrap(err, "cannot copy access rules and settings of database %s to %s", from, to);
    PQclear(r);
    free(sql);
    free(f);
    free(t);
    PQfinish(c);
    return rc;
}

/* Swaps in the restored copy without a moment where neither exists: the
 * target is renamed aside, the copy takes its name, and only then is the old
 * one dropped; a failed second rename puts the target back. force
 * terminates the target's sessions first. */
static int pg_replace_database(const sv_config *cfg, const char *target, const char *scratch, bool force,
                               sv_error *err)
{
    char *aside = xasprintf("sauve_old_%ld_%d", (long)time(NULL), (int)getpid());
    int rc = -1;
    if (force) {
        /* sessions on the target would block the rename */
        PGconn *c = admin_connect(cfg, target, scratch, err);
        if (!c)
            goto out;
        const char *params[] = {target};
        sv_error ignored = {0};
        PQclear(pg_query(c,
                         "select pg_terminate_backend(pid) from pg_stat_activity "
                         "where datname = $1 and pid <> pg_backend_pid()",
                         1, params, &ignored));
        PQfinish(c);
    }
    if (pg_rename_database(cfg, target, aside, err) != 0) {
        sv_error_wrap(err, "cannot move database %s aside", target);
        goto out;
    }
    if (pg_rename_database(cfg, scratch, target, err) != 0) {
        sv_error back = {0};
        if (pg_rename_database(cfg, aside, target, &back) != 0)
            sv_error_wrap(err, "database %s is now named %s (renaming it back failed: %s)", target, aside,
                          back.msg);
        goto out;
    }
    sv_error derr = {0};
    if (pg_drop_database(cfg, aside, force, &derr) != 0)
        log_warn("restore done, but the previous database, renamed %s, could not be dropped: %s", aside,
                 derr.msg);
    rc = 0;
out:
    free(aside);
    return rc;
}

struct pg_target {
    bool exists;
    bool empty;  /* no user objects and no large objects */
    char *owner; /* owner role of the database when it exists */
    int server_major;
};

static int pg_target_inspect(const sv_config *cfg, const char *dbname, struct pg_target *out, sv_error *err)
{
    memset(out, 0, sizeof *out);
    PGconn *c = admin_connect(cfg, dbname, NULL, err);
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

/*
 * Refuses, with SV_EXIT_TEMPFAIL and nothing changed, while a sauve backup
 * has a session on dbname (NULL: on any database, for the cluster's roles):
 * replacing a database that pg_dump is reading would end the dump (the
 * swap terminates its sessions), and the set it writes would hold a state
 * that never existed (a dump of the old database beside globals of the
 * restored roles). A backup's sessions are known by their application_name
 * (PG_APPNAME_BACKUP), which pg_stat_activity shows to every role; their
 * address and start only to a superuser or a member of pg_read_all_stats,
 * so the message says so when they are hidden. Nothing prevents a backup
 * from starting after this check: the backup CronJob's suspend does.
 */
static int refuse_while_backed_up(const sv_config *cfg, const char *dbname, sv_error *err)
{
    PGconn *c = admin_connect(cfg, dbname, NULL, err);
    if (!c)
        return -1;
    const char *params[] = {PG_APPNAME_BACKUP, dbname};
    PGresult *r =
        pg_query(c,
                 "select pid, coalesce(usename, '?'), coalesce(datname, '?'), backend_start is not null, "
                 "coalesce(host(client_addr), 'the local socket'), "
                 "to_char(backend_start at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), count(*) over () "
                 "from pg_stat_activity where application_name = $1 and ($2::text is null or datname = $2) "
                 "and pid <> pg_backend_pid() order by backend_start nulls last, pid limit 1",
                 2, params, err);
    PQfinish(c);
    if (!r)
        return sv_error_wrap(err, "cannot tell whether a sauve backup is running, nothing was changed");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    const char *pid = PQgetvalue(r, 0, 0), *role = PQgetvalue(r, 0, 1), *db = PQgetvalue(r, 0, 2);
    bool visible = strcmp(PQgetvalue(r, 0, 3), "t") == 0;
    long sessions = atol(PQgetvalue(r, 0, 6));
    char *more =
        sessions > 1 ? xasprintf("; %ld other session(s) of sauve backups", sessions - 1) : xstrdup("");
    if (visible)
        sv_error_set(err, SV_EXIT_TEMPFAIL,
                     "a sauve backup of database %s is running (backend %s as %s from %s, since %s UTC%s): "
                     "nothing was changed",
                     db, pid, role, PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 5), more);
    else
        sv_error_set(err, SV_EXIT_TEMPFAIL,
                     "a sauve backup of database %s is running (backend %s as %s; its address and start are "
                     "shown only to superusers and members of pg_read_all_stats%s): nothing was changed",
                     db, pid, role, more);
    sv_error_hint(err, "%s", LOADER_HINT_BACKUP_RUNNING);
    free(more);
    PQclear(r);
    return -1;
}

static void pg_target_free(struct pg_target *t)
{
    free(t->owner);
    memset(t, 0, sizeof *t);
}

/* A running pg_restore. */
struct pg_load {
    proc *p;
    bool transactional;    /* pg_restore --single-transaction */
    int unexpected_errors; /* errors other than those expected (below) */
    int expected_errors;   /* pg_restore's rejected transaction_timeout */
    long ignored_errors;   /* pg_restore's own count, -1 when it gave none */
    bool stopped_reading;  /* closed its input before the end of the stream */
    char first_error[512];
};

/* Without --single-transaction (and so without --exit-on-error),
 * pg_restore goes on after an error and counts it. The only error expected
 * is the "SET transaction_timeout = 0" that pg_restore 17+ sends on every
 * connection and servers before 17 reject ("pg_restore: error: could not
 * execute query: ERROR:  unrecognized configuration parameter ..."); the
 * last line is then "pg_restore: warning: errors ignored on restore: 1". */
static void on_pg_restore_stderr(void *ctx, const char *line)
{
    struct pg_load *l = ctx;
    const char *ignored = strstr(line, "errors ignored on restore: ");
    if (ignored) {
        l->ignored_errors = strtol(ignored + strlen("errors ignored on restore: "), NULL, 10);
        return;
    }
    if (!strstr(line, "pg_restore: error:"))
        return;
    if (strstr(line, "unrecognized configuration parameter \"transaction_timeout\"")) {
        l->expected_errors++;
        return;
    }
    if (l->unexpected_errors++ == 0)
        snprintf(l->first_error, sizeof l->first_error, "%s", line);
}

bool pg_loader_transactional(int tools_major, int server_major)
{
    return tools_major < 17 || server_major >= 17;
}

/* The major of the tool that wrote an artifact, from the manifest's
 * "pg_dump (PostgreSQL) 18.1 (Debian 18.1-1)"; 0 when it names none. */
static int artifact_major(const char *tool_version)
{
    if (!tool_version)
        return 0;
    char *number = pg_version_number(tool_version);
    char *end;
    long major = strtol(number, &end, 10);
    free(number);
    /* "18devel" is 18; a manifest's nonsense must not demand major 2^31 */
    return end != number && major > 0 && major < 1000 ? (int)major : 0;
}

int pg_loader_major(int server_major, const char *tool_version)
{
    int dump_major = artifact_major(tool_version);
    return dump_major > server_major ? dump_major : server_major;
}

int pg_loader_tools(const sv_config *cfg, int server_major, const char *tool_version, struct pg_tools *out,
                    sv_error *err)
{
    int dump_major = artifact_major(tool_version);
    if (pg_tools_find(cfg, pg_loader_major(server_major, tool_version), out, err) == 0)
        return 0;
    if (dump_major <= server_major)
        return -1; /* the server's major rules, as for a backup: pg_tools_find said it */
    /* pg_tools_find's words blame the server, which is older than the dump */
    struct pg_tool_candidates c;
    pg_tools_scan(&cfg->pg_bindir, &c);
    char *found = pg_tools_describe(&c);
    sv_error_set(
        err, SV_EXIT_CONFIG,
        "the artifact was written by pg_dump %d (%s): loading it needs client tools of major %d or "
        "newer (pg_restore cannot read the archives of a newer pg_dump), even into a server of major "
        "%d, and SAUVE_PG_BINDIR has %s",
        dump_major, tool_version, dump_major, server_major, c.n ? found : "no pg_dump at all");
    sv_error_hint(
        err,
        "point SAUVE_PG_BINDIR at the bin directory of PostgreSQL %d or newer client tools (the sauve "
        "image has them under /usr/lib/postgresql/MAJOR/bin, which the default SAUVE_PG_BINDIR "
        "searches), or install postgresql-client-%d",
        dump_major, dump_major);
    free(found);
    pg_tool_candidates_free(&c);
    return -1;
}

/*
 * Starts the pg_restore of tools (pg_loader_tools) that loads an artifact
 * into dbname on a server of server_major (format pg_dump-custom), in one
 * transaction when pg_loader_transactional(), else committing as it goes,
 * the rejected transaction_timeout its only accepted error (load only into
 * a database to drop on failure, then). *sink receives the
 * artifact's decompressed bytes; it holds back the tail so that the loader
 * cannot finish (nor commit its one transaction) before the whole artifact
 * is verified.
 */
static struct pg_load *pg_load_start(const sv_config *cfg, const char *format, const char *dbname,
                                     bool no_owner, bool no_privileges, const struct pg_tools *tools,
                                     int server_major, stream **sink, sv_error *err)
{
    struct pg_load *l = xcalloc(1, sizeof *l);
    l->transactional = pg_loader_transactional(tools->major, server_major);
    l->ignored_errors = -1;
    if (strcmp(format, "pg_dump-custom") != 0) {
        sv_error_set(err, SV_EXIT_FAILED, "artifact format %s cannot be restored into postgres", format);
        free(l);
        return NULL;
    }
    char *tool = pg_tool_path(tools, "pg_restore");
    char *conninfo = pg_dbname_conninfo(dbname);
    char *dbarg = xasprintf("--dbname=%s", conninfo);
    const char *argv[10];
    size_t n = 0;
    argv[n++] = tool;
    /* one transaction: a failure anywhere leaves the target as it was
     * (else the caller restores into a database it drops on failure) */
    if (l->transactional)
        argv[n++] = "--single-transaction";
    if (no_owner)
        argv[n++] = "--no-owner";
    if (no_privileges)
        argv[n++] = "--no-privileges";
    argv[n++] = "--no-password";
    argv[n++] = dbarg;
    argv[n] = NULL;
    char **env = pg_child_env(cfg, PG_APPNAME);
    struct proc_options po = {.path = tool,
                              .argv = argv,
                              .env_set = (const char *const *)env,
                              .env_keep = pg_child_env_keep(),
                              .pipe_stdin = true,
                              .log_name = "pg_restore",
                              .on_stderr_line = !l->transactional ? on_pg_restore_stderr : NULL,
                              .on_stderr_ctx = l};
    l->p = proc_start(&po, err);
    pg_child_env_free(env);
    free(tool);
    free(conninfo);
    free(dbarg);
    if (!l->p) {
        free(l);
        return NULL;
    }
    *sink = fd_sink(proc_take_stdin(l->p), LOADER_HOLDBACK, &l->stopped_reading);
    return l;
}

/* ok: the sink was finished successfully, wait for the loader's verdict
 * (0, or -1 with err). !ok: the sink was aborted; stop the loader before it
 * sees the end, so that its one transaction commits nothing (-1), unless it
 * had already failed on its own: then 1, with its error in err. */
static int pg_load_finish(struct pg_load *l, bool ok, sv_error *err)
{
    if (!ok) {
        int rc = -1;
        if (l->stopped_reading) {
            /* The loader stopped first (pg_restore refused something): its
             * error, not the broken pipe that followed, is the cause. A
             * loader that exited only because the artifact failed
             * verification (its input closed early) does not count, however
             * fast it went. */
            if (proc_wait(l->p, err) != 0)
                rc = 1;
        } else {
            /* The artifact failed verification: stop the loader before it
             * sees the end. In one transaction nothing commits; otherwise
             * the caller drops the database it was loading. */
            proc_kill(l->p, SIGTERM);
            sv_error ignored = {0};
            proc_wait(l->p, &ignored);
        }
        proc_free(l->p);
        free(l);
        return rc;
    }
    int rc = proc_wait(l->p, err);
    if (rc != 0 && !l->transactional && l->unexpected_errors == 0 && l->expected_errors > 0 &&
        l->ignored_errors == l->expected_errors) {
        /* exit status 1 for the rejected transaction_timeout alone */
        sv_error_clear(err);
        rc = 0;
    }
    if (l->unexpected_errors > 0) {
        sv_error_set(err, SV_EXIT_FAILED, "pg_restore reported %d error(s), first: %s", l->unexpected_errors,
                     l->first_error);
        rc = -1;
    }
    proc_free(l->p);
    free(l);
    return rc;
}

/* ---- the loader (sources/loader.h) ------------------------------------- */

static const char *const postgres_forms[] = {"postgres:DATABASE", "postgres:globals", NULL};

/* Where the artifact goes, decided by inspect. */
enum pg_route {
    ROUTE_GLOBALS,  /* run by sauve in the maintenance database: roles are cluster-wide */
    ROUTE_NEW,      /* the target does not exist: created, dropped again on failure */
    ROUTE_IN_PLACE, /* empty, loaded in one transaction: on failure it stays empty */
    ROUTE_SCRATCH,  /* into a scratch database, swapped in once complete */
};

struct pg_restore {
    const sv_config *cfg;
    bool globals, clean, no_owner, no_privileges;
    const manifest_artifact *a; /* the caller's, from inspect to finish */
    struct pg_target t;
    struct pg_tools tools;
    enum pg_route route;
    char *db; /* where the program loads: the target, a scratch database, or postgres */
    struct pg_load *load;
    /* globals: the artifact as it arrives, run only once it all verified */
    char *script;
    size_t script_len, script_cap;
};

static int pg_check(const char *name, const struct loader_options *o, sv_error *err)
{
    if (o->to_file || o->online)
        return sv_error_set(err, SV_EXIT_USAGE, "--%s does not apply to postgres:%s (it is for redis:NAME)",
                            o->to_file ? "to-file" : "online", name);
    if (o->to)
        return sv_error_set(err, SV_EXIT_USAGE, "--to does not apply to postgres:%s (it names a directory)",
                            name);
    if (o->into && strcmp(name, "globals") == 0)
        return sv_error_set(err, SV_EXIT_USAGE,
                            "--into does not apply to postgres:globals (roles are cluster-wide)");
    return 0;
}

extern const struct loader_ops postgres_loader;

static loader *pg_open(const sv_config *cfg, const char *name, const struct loader_options *o)
{
    struct pg_restore *r = xcalloc(1, sizeof *r);
    r->cfg = cfg;
    r->globals = strcmp(name, "globals") == 0;
    r->clean = o->clean;
    r->no_owner = o->no_owner;
    r->no_privileges = o->no_privileges;
    loader *l = xcalloc(1, sizeof *l);
    l->ops = &postgres_loader;
    l->impl = r;
    l->target = xstrdup(o->into ? o->into : name);
    l->what = r->globals ? xstrdup("the cluster") : xasprintf("database %s", l->target);
    l->changes = xstrdup(r->globals ? "the cluster's roles" : l->what);
    return l;
}

/* The tools that will load the artifact, chosen before anything changes: a
 * restore that cannot load must not have created, backed up or replaced
 * anything first. */
static int choose_tools(struct pg_restore *r, sv_error *err)
{
    const manifest_artifact *a = r->a;
    if (pg_loader_tools(r->cfg, r->t.server_major, a->tool_version, &r->tools, err) != 0)
        return -1;
    log_with(LOG_INFO,
             LOG_FIELDS(LOG_STR("tools", r->tools.dir), LOG_STR("tools_version", r->tools.dump_version),
                        LOG_STR("artifact_tool_version", a->tool_version ? a->tool_version : ""),
                        LOG_NUM("server_major", r->t.server_major)),
             "pg_restore from %s (PostgreSQL %d) loads %s:%s, written by %s, into a server of major %d",
             r->tools.dir, r->tools.major, a->kind, a->name,
             a->tool_version ? a->tool_version : "an unrecorded pg_dump", r->t.server_major);
    return 0;
}

static int pg_inspect(loader *l, const manifest_artifact *a, bool *replaces, sv_error *err)
{
    struct pg_restore *r = l->impl;
    r->a = a;
    *replaces = false;
    if (r->globals) {
        /* sauve runs the SQL itself: no tool to choose, but the server is
         * reached before anything is read */
        r->route = ROUTE_GLOBALS;
        if (strcmp(a->format, "pg_dumpall-globals-sql") != 0)
            return sv_error_set(err, SV_EXIT_FAILED,
                                "artifact format %s cannot be restored as postgres:globals", a->format);
        if (pg_target_inspect(r->cfg, "postgres", &r->t, err) != 0)
            return -1;
        return refuse_while_backed_up(r->cfg, NULL, err);
    }
    if (pg_target_inspect(r->cfg, l->target, &r->t, err) != 0)
        return -1;
    if (r->t.exists && !r->t.empty && !r->clean) {
        sv_error_set(err, SV_EXIT_FAILED, "database %s is not empty, nothing was changed", l->target);
        return sv_error_hint(
            err, "use --clean to replace it (a safety backup is taken first), or --into another database");
    }
    if (choose_tools(r, err) != 0)
        return -1;
    /* last: a restore that cannot run at all says so first, not "retry later" */
    if (r->t.exists && refuse_while_backed_up(r->cfg, l->target, err) != 0)
        return -1;
    bool one_transaction = pg_loader_transactional(r->tools.major, r->t.server_major);
    if (!one_transaction)
        log_info("pg_restore %d cannot load into a server of major %d in one transaction (it sets "
                 "transaction_timeout, which servers before 17 reject): it loads into a database dropped if "
                 "anything fails",
                 r->tools.major, r->t.server_major);
    if (!r->t.exists) {
        r->route = ROUTE_NEW;
    } else if (r->t.empty && one_transaction) {
        /* pg_restore runs in one transaction: on failure the target stays empty */
        r->route = ROUTE_IN_PLACE;
    } else {
        /* Not empty (--clean), or empty but loaded without one transaction.
         * An empty target needs no safety copy. */
        r->route = ROUTE_SCRATCH;
        *replaces = !r->t.empty;
    }
    return 0;
}

static source *pg_safety_source(loader *l)
{
    struct pg_restore *r = l->impl;
    sv_strlist dbs = {0};
    strlist_push(&dbs, l->target);
    source *s = pg_source_new(r->cfg, &dbs, false);
    strlist_free(&dbs);
    return s;
}

/* Drops the database that start created for a restore that failed. */
static void undo(loader *l)
{
    struct pg_restore *r = l->impl;
    sv_error derr = {0};
    if (r->route == ROUTE_NEW && pg_drop_database(r->cfg, r->db, false, &derr) != 0)
        log_warn("could not drop database %s created for the failed restore: %s", r->db, derr.msg);
    else if (r->route == ROUTE_SCRATCH)
        pg_drop_database(r->cfg, r->db, false, &derr);
}

/* ---- globals: verified whole, checked, then run ------------------------ */

static int globals_collect(void *ctx, const void *buf, size_t len, sv_error *err)
{
    struct pg_restore *r = ctx;
    if (len > GLOBALS_MAX - r->script_len) {
        sv_error_set(
            err, SV_EXIT_FAILED,
            "postgres:globals is larger than the %zu MiB a restore holds in memory to verify it before "
            "running any of it, nothing was changed",
            GLOBALS_MAX >> 20);
        return sv_error_hint(err,
                             "check what the artifact holds (zstd -dc); pg_dumpall -g writes a few hundred "
                             "bytes per role");
    }
    if (r->script_len + len > r->script_cap) {
        size_t cap = r->script_cap ? r->script_cap : (size_t)64 << 10;
        while (cap < r->script_len + len)
            cap *= 2;
        r->script_cap = cap < GLOBALS_MAX ? cap : GLOBALS_MAX;
        r->script = xrealloc(r->script, r->script_cap);
    }
    memcpy(r->script + r->script_len, buf, len);
    r->script_len += len;
    return 0;
}

/* The server's notices (GRANT of a membership already held...) go to the
 * log, not to stderr as libpq would print them. */
static void globals_notice(void *ctx, const char *message)
{
    (void)ctx;
    char *m = xstrdup(message);
    for (char *p = m; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    log_info("postgres:globals: %s", m);
    free(m);
}

static bool globals_exec(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    return ok;
}

/* "create role", the first two words of st, for messages: never more, its
 * arguments may hold a password hash. */
static void stmt_words(const char *text, const struct pg_script_stmt *st, char *out, size_t size)
{
    size_t n = 0;
    int words = 0;
    for (size_t p = st->start; p < st->end && n + 1 < size && words < 2; p++) {
        char ch = text[p];
        if (ch == ' ' || ch == '\t' || ch == '\n') {
            if (n && out[n - 1] != ' ' && ++words < 2)
                out[n++] = ' ';
            continue;
        }
        if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') && ch != '_')
            break;
        out[n++] = ch;
    }
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

/*
 * Runs the verified globals script: refused whole when it holds what
 * pg_dumpall does not write (postgres_script.h); else statement by
 * statement, in one transaction when PostgreSQL allows it, passing over
 * "already exists" (42710). 0, or -1 with err saying whether anything was
 * committed.
 */
static int run_globals(struct pg_restore *r, sv_error *err)
{
    struct pg_script s;
    if (pg_script_parse(r->script, r->script_len, &s, err) != 0) {
        sv_error_hint(err,
                      "the artifact is not what pg_dumpall -g writes: whoever could write to the storage may "
                      "have forged it (the manifest too)");
        return sv_error_wrap(err, "postgres:globals refused, nothing was run");
    }
    PGconn *c = pg_connect(r->cfg, r->db, err);
    if (!c) {
        pg_script_free(&s);
        return -1;
    }
    PQsetNoticeProcessor(c, globals_notice, NULL);
    bool tx = !s.needs_autocommit;
    if (tx)
        log_info("postgres:globals: running its %zu statements in one transaction", s.n);
    else
        log_warn(
            "postgres:globals creates or drops a tablespace, which PostgreSQL cannot do in a transaction: "
            "its %zu statements run one by one, and a failure leaves those before it committed",
            s.n);
    int rc = -1;
    size_t passed_over = 0;
    if (tx && !globals_exec(c, "begin")) {
        sv_error_set(err, SV_EXIT_FAILED, "postgres:globals: cannot begin a transaction: %s",
                     PQerrorMessage(c));
        goto out;
    }
    for (size_t i = 0; i < s.n; i++) {
        const struct pg_script_stmt *st = &s.stmts[i];
        if (tx && !globals_exec(c, "savepoint sauve_statement")) {
            sv_error_set(err, SV_EXIT_FAILED, "postgres:globals: cannot set a savepoint: %s",
                         PQerrorMessage(c));
            goto out;
        }
        char *sql = xstrndup(r->script + st->start, st->end - st->start);
        PGresult *res = PQexec(c, sql);
        free(sql);
        ExecStatusType es = PQresultStatus(res);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        bool ok = es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK;
        bool exists = es == PGRES_FATAL_ERROR && state && strcmp(state, "42710") == 0;
        if (!ok && !exists) {
            char words[64];
            stmt_words(r->script, st, words, sizeof words);
            char *msg = xstrdup(es == PGRES_FATAL_ERROR ? PQresultErrorMessage(res) : PQresStatus(es));
            for (char *p = msg; *p; p++)
                if (*p == '\n' || *p == '\r')
                    *p = ' ';
            sv_error_set(err, SV_EXIT_FAILED, "postgres:globals line %u (%s): %s%s", st->line, words, msg,
                         tx ? "; the transaction was rolled back, nothing was changed"
                            : "; the statements before it were committed");
            if (state && strcmp(state, "42501") == 0)
                sv_error_hint(err, "pg_dumpall writes the attributes of every role, superusers included: "
                                   "restore postgres:globals as a superuser");
            free(msg);
            PQclear(res);
            goto out;
        }
        PQclear(res);
        if (exists)
            passed_over++;
        if (tx && !globals_exec(c, exists ? "rollback to savepoint sauve_statement"
                                          : "release savepoint sauve_statement")) {
            sv_error_set(err, SV_EXIT_FAILED, "postgres:globals: savepoint failed: %s", PQerrorMessage(c));
            goto out;
        }
    }
    if (tx && !globals_exec(c, "commit")) {
        sv_error_set(err, SV_EXIT_FAILED, "postgres:globals: commit failed, nothing was changed: %s",
                     PQerrorMessage(c));
        goto out;
    }
    log_info("postgres:globals: %zu statements run, %zu of them passed over (already exists)", s.n,
             passed_over);
    rc = 0;
out:
    /* closing an open transaction rolls it back */
    PQfinish(c);
    pg_script_free(&s);
    return rc;
}

static int pg_start(loader *l, stream **sink, sv_error *err)
{
    struct pg_restore *r = l->impl;
    if (r->route == ROUTE_GLOBALS) {
        r->db = xstrdup("postgres");
        *sink = callback_sink(globals_collect, r, "postgres:globals");
        return 0;
    }
    r->db = r->route == ROUTE_GLOBALS   ? xstrdup("postgres")
            : r->route == ROUTE_SCRATCH ? xasprintf("sauve_restore_%ld_%d", (long)time(NULL), (int)getpid())
                                        : xstrdup(l->target);
    if ((r->route == ROUTE_NEW && pg_create_database(r->cfg, r->db, NULL, NULL, err) != 0) ||
        (r->route == ROUTE_SCRATCH && pg_create_database(r->cfg, r->db, l->target, r->t.owner, err) != 0))
        return -1;
    r->load = pg_load_start(r->cfg, r->a->format, r->db, r->no_owner, r->no_privileges, &r->tools,
                            r->t.server_major, sink, err);
    if (!r->load) {
        undo(l);
        return -1;
    }
    return 0;
}

static int pg_finish(loader *l, bool ok, sv_error *err)
{
    struct pg_restore *r = l->impl;
    if (r->route == ROUTE_GLOBALS) {
        /* not verified: nothing of it ran */
        int rc = ok ? run_globals(r, err) : -1;
        free(r->script);
        r->script = NULL;
        r->script_len = r->script_cap = 0;
        return rc;
    }
    sv_error lerr = {0};
    int lrc = pg_load_finish(r->load, ok, &lerr);
    r->load = NULL;
    if ((ok && lrc != 0) || lrc == 1) {
        /* the program's own refusal, not a damaged artifact */
        *err = lerr;
        sv_error_wrap(err, "loading %s:%s into database %s failed%s", r->a->kind, r->a->name, r->db,
                      pg_loader_transactional(r->tools.major, r->t.server_major) ? ", nothing was committed"
                                                                                 : "");
        if (strstr(err->msg, "role") && strstr(err->msg, "does not exist"))
            sv_error_hint(err, "restore postgres:globals first, or pass --no-owner");
        else if (strstr(err->msg, "must be member of role") || strstr(err->msg, "must be able to SET ROLE"))
            sv_error_hint(err, "the restoring role must be a member of the roles that own the objects (GRANT "
                               "owner TO role), or pass --no-owner");
        else if (r->route == ROUTE_NEW && strstr(err->msg, "permission denied for schema"))
            sv_error_hint(err,
                          "the new database belongs to the restoring role, and the objects' owner may not "
                          "create in its schemas: create the target first, owned by that owner, or pass "
                          "--no-owner");
    }
    if (!ok || lrc != 0 ||
        (r->route == ROUTE_SCRATCH && pg_copy_database_properties(r->cfg, l->target, r->db, err) != 0)) {
        undo(l);
        return -1;
    }
    /* The restored copy is complete: only now is the target replaced. */
    if (r->route == ROUTE_SCRATCH &&
        pg_replace_database(r->cfg, l->target, r->db, r->clean && r->t.server_major >= 13, err) != 0) {
        return sv_error_wrap(err, "restored copy is complete in database %s but could not replace %s", r->db,
                             l->target);
    }
    return 0;
}

static void pg_destroy(loader *l)
{
    struct pg_restore *r = l->impl;
    if (r->load) {
        sv_error ignored = {0};
        pg_load_finish(r->load, false, &ignored);
    }
    pg_tools_free(&r->tools);
    pg_target_free(&r->t);
    free(r->script);
    free(r->db);
    free(r);
}

const struct loader_ops postgres_loader = {
    .kind = "postgres",
    .forms = postgres_forms,
    .check = pg_check,
    .open = pg_open,
    .inspect = pg_inspect,
    .safety_source = pg_safety_source,
    .start = pg_start,
    .finish = pg_finish,
    .destroy = pg_destroy,
    .drill_target = pg_drill_target,
    .drill_compare = pg_drill_compare,
    .drill_discard = pg_drill_discard,
};
