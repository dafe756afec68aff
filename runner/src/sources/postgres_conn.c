/* Connections to PostgreSQL, the tools matching its version, and the
 * environment handed to those tools. */
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/proc.h"
#include "common/signals.h"
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

/* The server's notices ("database ... does not exist, skipping") go to the
 * log, not raw to stderr, where every line is a JSON object. */
static void notice_to_log(void *ctx, const char *message)
{
    (void)ctx;
    char *line = xstrdup(message);
    one_line(line);
    log_debug("postgres: %s", line);
    free(line);
}

PGconn *pg_connect(const sv_config *cfg, const char *dbname, sv_error *err)
{
    return pg_connect_as(cfg, dbname, PG_APPNAME, err);
}

PGconn *pg_connect_as(const sv_config *cfg, const char *dbname, const char *application_name, sv_error *err)
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
    add_kv(keys, vals, &n, "application_name", application_name);
    /* A silent hang is the worst outcome for a nightly Job: bound the connect. */
    if (!getenv("PGCONNECT_TIMEOUT"))
        add_kv(keys, vals, &n, "connect_timeout", "10");
    keys[n] = NULL;
    vals[n] = NULL;
    /* expand_dbname=0: dbname is a name, never a connection string */
    PGconn *conn = PQconnectdbParams(keys, vals, 0);
    if (conn && PQstatus(conn) == CONNECTION_OK) {
        PQsetNoticeProcessor(conn, notice_to_log, NULL);
        return conn;
    }

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
    } else if (strstr(msg, "is not permitted to log in")) {
        /* the role's attributes, not the network: retrying cannot help */
        code = SV_EXIT_CONFIG;
        hint = "the role needs LOGIN (ALTER ROLE ... LOGIN), see Minimal privileges in the README";
    } else if (strstr(msg, "permission denied for database")) {
        code = SV_EXIT_CONFIG;
        hint = "grant CONNECT on the database to the role (GRANT CONNECT ON DATABASE ... TO ...)";
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

void pg_cancel_query(PGconn *conn)
{
    PGcancel *k = PQgetCancel(conn);
    char buf[256];
    if (k) {
        PQcancel(k, buf, sizeof buf);
        PQfreeCancel(k);
    }
}

PGresult *pg_query_stoppable(PGconn *conn, const char *sql, sv_error *err)
{
    if (!PQsendQuery(conn, sql)) {
        char *msg = xstrdup(PQerrorMessage(conn));
        one_line(msg);
        sv_error_set(err, SV_EXIT_TEMPFAIL, "query on database %s could not be sent: %s", PQdb(conn), msg);
        free(msg);
        return NULL;
    }
    bool cancelled = false;
    while (PQisBusy(conn)) {
        if (!cancelled && signals_stop_requested()) {
            pg_cancel_query(conn);
            cancelled = true;
        }
        struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
        poll(&p, 1, 200);
        if (!PQconsumeInput(conn))
            break;
    }
    PGresult *r, *last = NULL;
    while ((r = PQgetResult(conn))) {
        /* the first error, else the last statement's result */
        if (last && PQresultStatus(last) != PGRES_TUPLES_OK && PQresultStatus(last) != PGRES_COMMAND_OK) {
            PQclear(r);
            continue;
        }
        PQclear(last);
        last = r;
    }
    if (cancelled) {
        PQclear(last);
        signals_check(err);
        return NULL;
    }
    ExecStatusType st = PQresultStatus(last);
    if (last && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK))
        return last;
    char *msg = xstrdup(last ? PQresultErrorMessage(last) : PQerrorMessage(conn));
    one_line(msg);
    sv_error_set(err, PQstatus(conn) == CONNECTION_OK ? SV_EXIT_FAILED : SV_EXIT_TEMPFAIL,
                 "query on database %s failed: %s", PQdb(conn), msg);
    free(msg);
    PQclear(last);
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

char *pg_version_number(const char *version)
{
    const char *p = strstr(version, "(PostgreSQL) ");
    if (p) {
        p += strlen("(PostgreSQL) ");
    } else {
        for (p = version; *p && !(isdigit((unsigned char)*p) && (p == version || p[-1] == ' ')); p++)
            ;
        if (!*p)
            return xstrdup(version);
    }
    return xstrndup(p, strcspn(p, " \t\r\n"));
}

/* "18.1" -> 18, "9.6.24" -> 9 (the server's PQserverVersion() / 10000
 * likewise), "18devel" -> 18. */
static int version_major(const char *version)
{
    char *number = pg_version_number(version);
    int major = atoi(number);
    free(number);
    return major;
}

static bool seen_dir(const struct pg_tool_candidates *c, const char *dir)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->items[i].dir, dir) == 0)
            return true;
    return false;
}

/* a goes before b: those that ran first, then the newer major. Anything
 * else keeps the scan order (the sort below is stable). */
static bool candidate_before(const struct pg_tool_candidate *a, const struct pg_tool_candidate *b)
{
    if ((a->version != NULL) != (b->version != NULL))
        return a->version != NULL;
    return a->major > b->major;
}

static void probe_dir(struct pg_tool_candidates *out, const char *dir)
{
    char *dump = xasprintf("%s/pg_dump", dir);
    struct pg_tool_candidate c = {.dir = xstrdup(dir)};
    if (access(dump, F_OK) != 0) {
        /* no pg_dump here: /usr/local/bin of most images */
        free(c.dir);
        free(dump);
        return;
    }
    sv_error err = {0};
    const char *argv[] = {dump, "--version", NULL};
    if (access(dump, X_OK) != 0) {
        c.error = xasprintf("%s is not executable: %s", dump, strerror(errno));
    } else if (proc_capture(dump, argv, pg_child_env_keep(), 256, &c.version, &err) != 0) {
        c.error = xstrdup(err.msg);
    } else {
        c.version[strcspn(c.version, "\r\n")] = '\0';
        c.major = version_major(c.version);
    }
    free(dump);
    out->items = xrealloc(out->items, (out->n + 1) * sizeof *out->items);
    out->items[out->n++] = c;
}

void pg_tools_scan(const sv_strlist *bindir, struct pg_tool_candidates *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < bindir->n; i++) {
        glob_t g;
        /* sorted, so that the scan order (which breaks ties) is the same on every machine */
        if (glob(bindir->items[i], 0, NULL, &g) != 0)
            continue;
        for (size_t j = 0; j < g.gl_pathc; j++)
            if (!seen_dir(out, g.gl_pathv[j]))
                probe_dir(out, g.gl_pathv[j]);
        globfree(&g);
    }
    /* insertion sort: stable, and there are a handful */
    for (size_t i = 1; i < out->n; i++) {
        struct pg_tool_candidate c = out->items[i];
        size_t j = i;
        for (; j > 0 && candidate_before(&c, &out->items[j - 1]); j--)
            out->items[j] = out->items[j - 1];
        out->items[j] = c;
    }
}

void pg_tool_candidates_free(struct pg_tool_candidates *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].dir);
        free(c->items[i].version);
        free(c->items[i].error);
    }
    free(c->items);
    memset(c, 0, sizeof *c);
}

const struct pg_tool_candidate *pg_tools_choose(const struct pg_tool_candidate *c, size_t n, int server_major,
                                                enum pg_tools_reason *why)
{
    const struct pg_tool_candidate *best = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!c[i].version || c[i].major < server_major)
            continue;
        if (c[i].major == server_major) {
            best = &c[i];
            break;
        }
        if (!best || c[i].major < best->major)
            best = &c[i];
    }
    if (why)
        *why = !best                         ? PG_TOOLS_NONE
               : best->major == server_major ? PG_TOOLS_SAME_MAJOR
                                             : PG_TOOLS_OLDEST_NEWER;
    return best;
}

const char *pg_tools_reason_text(enum pg_tools_reason why)
{
    switch (why) {
    case PG_TOOLS_SAME_MAJOR: return "same major";
    case PG_TOOLS_OLDEST_NEWER: return "same major unavailable, the oldest newer one";
    case PG_TOOLS_NONE: break;
    }
    return "none can dump the server";
}

char *pg_tools_describe(const struct pg_tool_candidates *c)
{
    char *s = xstrdup("");
    for (size_t i = 0; i < c->n; i++) {
        const struct pg_tool_candidate *k = &c->items[i];
        char *next = k->version
                         ? xasprintf("%s%smajor %d in %s", s, i ? ", " : "", k->major, k->dir)
                         : xasprintf("%s%sa pg_dump that does not run in %s", s, i ? ", " : "", k->dir);
        free(s);
        s = next;
    }
    return s;
}

static char *join_list(const sv_strlist *l)
{
    char *s = xstrdup("");
    for (size_t i = 0; i < l->n; i++) {
        char *next = xasprintf("%s%s%s", s, i ? "," : "", l->items[i]);
        free(s);
        s = next;
    }
    return s;
}

int pg_tools_find(const sv_config *cfg, int server_major, struct pg_tools *out, sv_error *err)
{
    memset(out, 0, sizeof *out);
    struct pg_tool_candidates c;
    pg_tools_scan(&cfg->pg_bindir, &c);
    enum pg_tools_reason why;
    const struct pg_tool_candidate *best = pg_tools_choose(c.items, c.n, server_major, &why);
    if (best) {
        out->major = best->major;
        out->dir = xstrdup(best->dir);
        out->dump_version = xstrdup(best->version);
        out->reason = why;
        pg_tool_candidates_free(&c);
        return 0;
    }
    char *found = pg_tools_describe(&c);
    char *searched = join_list(&cfg->pg_bindir);
    if (c.n)
        sv_error_set(err, SV_EXIT_CONFIG,
                     "no pg_dump of major %d or newer for the server (major %d), and pg_dump refuses newer "
                     "servers: SAUVE_PG_BINDIR (%s) has %s",
                     server_major, server_major, searched, found);
    else
        sv_error_set(err, SV_EXIT_CONFIG,
                     "no pg_dump for the server (major %d): none found in SAUVE_PG_BINDIR (%s)", server_major,
                     searched);
    sv_error_hint(err,
                  "install postgresql-client-%d in the image or point SAUVE_PG_BINDIR at its bin directory",
                  server_major);
    free(found);
    free(searched);
    pg_tool_candidates_free(&c);
    return -1;
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

char **pg_child_env(const sv_config *cfg, const char *application_name)
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
    env[n++] = xasprintf("PGAPPNAME=%s", application_name);
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

const char *const *pg_child_env_keep(void)
{
    static const char *const keep[] = {
        /* libpq (https://www.postgresql.org/docs/current/libpq-envars.html):
         * PGHOST, PGPORT, PGUSER, PGSSLMODE and the password come from
         * sauve's configuration through pg_child_env; PGDATABASE is left
         * out, the tools get the database in their arguments */
        "PGHOSTADDR", "PGSERVICE", "PGSERVICEFILE", "PGSYSCONFDIR", "PGOPTIONS", "PGPASSFILE", "PGREQUIRESSL",
        "PGSSL*", "PGREQUIREAUTH", "PGCHANNELBINDING", "PGGSSENCMODE", "PGGSSLIB", "PGGSSDELEGATION",
        "PGKRBSRVNAME", "PGREQUIREPEER", "PGCONNECT_TIMEOUT", "PGCLIENTENCODING", "PGDATESTYLE", "PGTZ",
        "PGGEQO", "PGTARGETSESSIONATTRS", "PGLOADBALANCEHOSTS", "PGMINPROTOCOLVERSION",
        "PGMAXPROTOCOLVERSION", "PGLOCALEDIR",
        /* ~/.pgpass, ~/.pg_service.conf, ~/.postgresql/ (client certificates, root.crt) */
        "HOME",
        /* GSSAPI authentication; OpenSSL's CAs (sslrootcert=system) */
        "KRB5CCNAME", "KRB5_CONFIG", "SSL_CERT_FILE", "SSL_CERT_DIR",
        /* messages, encodings, time zone */
        "LANG", "LANGUAGE", "LC_*", "TZ", "TZDIR", NULL};
    return keep;
}
