/* Connections to PostgreSQL, the tools matching its version, and the
 * environment handed to those tools. */
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/proc.h"
#include "sources/postgres.h"

bool pg_configured(const sv_config *cfg)
{
    const char *pgdb = getenv("PGDATABASE");
    return cfg->pg_databases.n > 0 || (pgdb && *pgdb);
}

/* Flattens a libpq message to one log line: each line break (and the
 * indentation after it) becomes "; ", runs of blanks one space. */
static void one_line(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '\n' || *r == '\r') {
            while (r[1] == '\n' || r[1] == '\r' || r[1] == ' ' || r[1] == '\t')
                r++;
            if (r[1] && w > s) {
                *w++ = ';';
                *w++ = ' ';
            }
        } else if ((*r == ' ' || *r == '\t') && (w == s || w[-1] == ' ')) {
            continue;
        } else {
            *w++ = *r == '\t' ? ' ' : *r;
        }
    }
    while (w > s && (w[-1] == ' ' || w[-1] == ';'))
        w--;
    *w = '\0';
}

char *pg_endpoint(const sv_config *cfg, PGconn *conn)
{
    const char *host = conn && PQhost(conn) && *PQhost(conn) ? PQhost(conn) : cfg->pg_host;
    const char *port = conn && PQport(conn) && *PQport(conn) ? PQport(conn) : NULL;
    const char *user = conn && PQuser(conn) && *PQuser(conn) ? PQuser(conn) : cfg->pg_user;
    char portbuf[16];
    if (!port && cfg->pg_port) {
        snprintf(portbuf, sizeof portbuf, "%ld", cfg->pg_port);
        port = portbuf;
    }
    return xasprintf("%s:%s as %s", host ? host : "(default socket)", port ? port : "5432",
                     user ? user : "(default user)");
}

static void add_kv(const char **keys, const char **vals, size_t *n, const char *key, const char *value)
{
    if (!value)
        return;
    keys[*n] = key;
    vals[*n] = value;
    (*n)++;
}

PGconn *pg_connect(const sv_config *cfg, const char *dbname, sv_error *err)
{
    const char *keys[12];
    const char *vals[12];
    size_t n = 0;
    char portbuf[16];

    add_kv(keys, vals, &n, "host", cfg->pg_host);
    if (cfg->pg_port) {
        snprintf(portbuf, sizeof portbuf, "%ld", cfg->pg_port);
        add_kv(keys, vals, &n, "port", portbuf);
    }
    add_kv(keys, vals, &n, "user", cfg->pg_user);
    add_kv(keys, vals, &n, "password", cfg->pg_password);
    add_kv(keys, vals, &n, "sslmode", cfg->pg_sslmode);
    add_kv(keys, vals, &n, "dbname", dbname);
    add_kv(keys, vals, &n, "application_name", "sauve");
    /* A silent hang is the worst outcome for a nightly Job: bound the connect. */
    if (!getenv("PGCONNECT_TIMEOUT"))
        add_kv(keys, vals, &n, "connect_timeout", "10");
    keys[n] = NULL;
    vals[n] = NULL;
    /* expand_dbname=0: dbname is a name, never a connection string */
    PGconn *conn = PQconnectdbParams(keys, vals, 0);
    if (conn && PQstatus(conn) == CONNECTION_OK)
        return conn;

    char *endpoint = pg_endpoint(cfg, conn);
    char *msg = xstrdup(conn ? PQerrorMessage(conn) : "out of memory");
    one_line(msg);
    int code = SV_EXIT_TEMPFAIL;
    const char *hint = "check that the server is running and reachable from here (PGHOST, PGPORT)";
    if (strstr(msg, "does not exist") && strstr(msg, "database")) {
        code = SV_EXIT_CONFIG;
        hint = "check SAUVE_PG_DATABASES / PGDATABASE";
    } else if (strstr(msg, "password authentication failed") || strstr(msg, "no password supplied") ||
               strstr(msg, "authentication failed")) {
        hint = "check PGUSER and PGPASSWORD or PGPASSWORD_FILE, and pg_hba.conf";
    } else if (strstr(msg, "no pg_hba.conf entry")) {
        hint = "the server refuses this client: add a pg_hba.conf entry or check PGSSLMODE";
    }
    sv_error_set(err, code, "cannot connect to postgres at %s (database %s): %s", endpoint,
                 dbname ? dbname : "(default)", msg);
    sv_error_hint(err, "%s", hint);
    free(endpoint);
    free(msg);
    PQfinish(conn);
    return NULL;
}

PGresult *pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params, sv_error *err)
{
    PGresult *r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    char *msg = xstrdup(PQresultErrorMessage(r));
    one_line(msg);
    sv_error_set(err, SV_EXIT_FAILED, "query on database %s failed: %s", PQdb(conn), msg);
    free(msg);
    PQclear(r);
    return NULL;
}

char *pg_dbname_conninfo(const char *dbname)
{
    size_t len = strlen(dbname);
    char *out = xmalloc(len * 2 + 16);
    char *w = out;
    w += sprintf(w, "dbname='");
    for (const char *p = dbname; *p; p++) {
        if (*p == '\'' || *p == '\\')
            *w++ = '\\';
        *w++ = *p;
    }
    *w++ = '\'';
    *w = '\0';
    return out;
}

/* "pg_dump (PostgreSQL) 15.18 (Debian ...)" -> 15; "... 9.6.24" -> 9. */
static int parse_major(const char *version)
{
    const char *p = strstr(version, ") ");
    p = p ? p + 2 : version;
    while (*p && !isdigit((unsigned char)*p))
        p++;
    return atoi(p);
}

struct candidate {
    char *dir;
    char *version;
    int major;
};

int pg_tools_find(const sv_config *cfg, int server_major, struct pg_tools *out, sv_error *err)
{
    memset(out, 0, sizeof *out);
    struct candidate *c = NULL;
    size_t nc = 0;
    for (size_t i = 0; i < cfg->pg_bindir.n; i++) {
        glob_t g;
        if (glob(cfg->pg_bindir.items[i], GLOB_NOSORT, NULL, &g) != 0)
            continue;
        for (size_t j = 0; j < g.gl_pathc; j++) {
            char *dump = xasprintf("%s/pg_dump", g.gl_pathv[j]);
            char *version = NULL;
            sv_error ignored = {0};
            /* the full path: pg_dump finds its own installation from argv[0],
             * and the image has no PATH to search */
            const char *argv[] = {dump, "--version", NULL};
            if (access(dump, X_OK) == 0 && proc_capture(dump, argv, 256, &version, &ignored) == 0) {
                c = xrealloc(c, (nc + 1) * sizeof *c);
                c[nc++] = (struct candidate){xstrdup(g.gl_pathv[j]), version, parse_major(version)};
            } else {
                free(version);
            }
            free(dump);
        }
        globfree(&g);
    }
    /* Same major first; else the oldest newer one, since pg_dump reads
     * older servers but refuses newer ones. */
    struct candidate *best = NULL;
    for (size_t i = 0; i < nc; i++) {
        if (c[i].major < server_major)
            continue;
        if (!best ||
            (best->major != server_major && (c[i].major == server_major || c[i].major < best->major)))
            best = &c[i];
    }
    int rc = 0;
    if (best) {
        out->major = best->major;
        out->dir = xstrdup(best->dir);
        out->dump_version = xstrdup(best->version);
    } else {
        char found[512] = "";
        size_t off = 0;
        for (size_t i = 0; i < nc && off < sizeof found; i++)
            off += (size_t)snprintf(found + off, sizeof found - off, "%s%s (%d)", i ? ", " : "", c[i].dir,
                                    c[i].major);
        sv_error_set(err, SV_EXIT_CONFIG, "no pg_dump of version %d or newer for the server (version %d): %s",
                     server_major, server_major, nc ? found : "none found in SAUVE_PG_BINDIR");
        sv_error_hint(
            err, "install postgresql-client-%d in the image or point SAUVE_PG_BINDIR at its bin directory",
            server_major);
        rc = -1;
    }
    for (size_t i = 0; i < nc; i++) {
        free(c[i].dir);
        free(c[i].version);
    }
    free(c);
    return rc;
}

void pg_tools_free(struct pg_tools *t)
{
    free(t->dir);
    free(t->dump_version);
    memset(t, 0, sizeof *t);
}

char *pg_tool_path(const struct pg_tools *t, const char *name)
{
    return xasprintf("%s/%s", t->dir, name);
}

char **pg_child_env(const sv_config *cfg)
{
    char **env = xcalloc(10, sizeof *env);
    size_t n = 0;
    if (cfg->pg_host)
        env[n++] = xasprintf("PGHOST=%s", cfg->pg_host);
    if (cfg->pg_port)
        env[n++] = xasprintf("PGPORT=%ld", cfg->pg_port);
    if (cfg->pg_user)
        env[n++] = xasprintf("PGUSER=%s", cfg->pg_user);
    if (cfg->pg_password)
        env[n++] = xasprintf("PGPASSWORD=%s", cfg->pg_password);
    if (cfg->pg_sslmode)
        env[n++] = xasprintf("PGSSLMODE=%s", cfg->pg_sslmode);
    env[n++] = xstrdup("PGAPPNAME=sauve");
    if (!getenv("PGCONNECT_TIMEOUT"))
        env[n++] = xstrdup("PGCONNECT_TIMEOUT=10");
    env[n] = NULL;
    return env;
}

void pg_child_env_free(char **env)
{
    if (!env)
        return;
    for (char **p = env; *p; p++)
        free_secret(*p);
    free(env);
}

const char *const *pg_child_env_unset(void)
{
    /* PGDATABASE: the tools get the database in their arguments. Every
     * other secret sauve knows (S3 keys, notification URLs, their _FILE
     * forms) is none of pg_dump's business. Built once, on first use. */
    static const char **names;
    if (names)
        return names;
    size_t n;
    const struct opt_def *opts = config_options(&n);
    names = xcalloc(2 * n + 2, sizeof *names);
    size_t k = 0;
    names[k++] = "PGDATABASE";
    for (size_t i = 0; i < n; i++) {
        if (opts[i].type != OPT_TYPE_SECRET || strncmp(opts[i].env, "PG", 2) == 0)
            continue;
        names[k++] = opts[i].env;
        names[k++] = xasprintf("%s_FILE", opts[i].env);
    }
    names[k] = NULL;
    return names;
}
