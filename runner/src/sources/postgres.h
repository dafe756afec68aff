/*
 * PostgreSQL: everything sauve does with a PostgreSQL server. libpq for what
 * sauve does itself (preflight, versions, database list, restore targets);
 * the real pg_dump / pg_dumpall / pg_restore / psql, of the major version
 * matching the server, for the formats every PostgreSQL user can read.
 *
 * Connection settings come from the configuration (which reads libpq's own
 * PG* variables); children get them, password included, through their
 * environment only.
 */
#ifndef SAUVE_SOURCES_POSTGRES_H
#define SAUVE_SOURCES_POSTGRES_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "common/error.h"
#include "config/config.h"
#include "pipeline/stream.h"
#include "sources/source.h"

/* ---- connections and tools (postgres_conn.c) ------------------------- */

/* True when PostgreSQL is to be backed up: pg.databases or PGDATABASE set. */
bool pg_configured(const sv_config *cfg);

/*
 * Connects to dbname. On failure returns NULL with an error naming host,
 * port, user and database (never the password): SV_EXIT_CONFIG when the
 * database does not exist, SV_EXIT_TEMPFAIL otherwise (refused, timeout,
 * authentication), with a hint.
 */
PGconn *pg_connect(const sv_config *cfg, const char *dbname, sv_error *err);

/* "127.0.0.1:5432 as app" for messages and the manifest (no password). */
char *pg_endpoint(const sv_config *cfg, PGconn *conn);

/* Runs a query expected to succeed; on failure sets err with the server's
 * message and the database name, returns NULL. Caller PQclear()s. */
PGresult *pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params, sv_error *err);

/* A dbname=... connection string with the name quoted for libpq, so that a
 * database name containing '=' or spaces is not parsed as options. */
char *pg_dbname_conninfo(const char *dbname);

struct pg_tools {
    int major;          /* major version of the tools found */
    char *dir;          /* directory holding them */
    char *dump_version; /* "pg_dump (PostgreSQL) 15.18 ..." */
};

/*
 * Finds pg_dump and friends in pg.bindir (globs allowed): the same major as
 * the server if present, else the oldest newer one. Fails with
 * SV_EXIT_CONFIG when only older ones (or none) exist, listing what it found.
 */
int pg_tools_find(const sv_config *cfg, int server_major, struct pg_tools *out, sv_error *err);
void pg_tools_free(struct pg_tools *t);
/* DIR/NAME, newly allocated. */
char *pg_tool_path(const struct pg_tools *t, const char *name);

/* NULL-terminated "K=V" list for children: the connection settings from the
 * configuration, including the password. Free with pg_child_env_free. */
char **pg_child_env(const sv_config *cfg);
void pg_child_env_free(char **env);
/* NULL-terminated names removed from the children's inherited environment:
 * PGDATABASE and every secret that is not PostgreSQL's. Static storage. */
const char *const *pg_child_env_unset(void);

/* ---- backup (postgres_backup.c) ---------------------------------------- */

/*
 * A source producing postgres/globals.sql (pg_dumpall --globals-only, when
 * globals is set) and postgres/DB.dump (pg_dump -Fc -Z0) per database.
 * databases NULL means the configuration's list (or 'all'); a non-NULL list
 * is used as is (the safety backup before a restore).
 */
source *pg_source_new(const sv_config *cfg, const sv_strlist *databases, bool globals);

/* ---- restore (postgres_restore.c) -------------------------------------- */

struct pg_target {
    bool exists;
    bool empty;  /* no user objects and no large objects */
    char *owner; /* owner role of the database when it exists */
    int server_major;
};

int pg_target_inspect(const sv_config *cfg, const char *dbname, struct pg_target *out, sv_error *err);
void pg_target_free(struct pg_target *t);

/* Creates dbname from template0; like (NULL: server defaults) gives its
 * encoding and locale; owner (NULL: the connecting user) best effort. */
int pg_create_database(const sv_config *cfg, const char *dbname, const char *like, const char *owner,
                       sv_error *err);
/* force: terminate other sessions (PostgreSQL 13+ WITH (FORCE)). */
int pg_drop_database(const sv_config *cfg, const char *dbname, bool force, sv_error *err);
int pg_rename_database(const sv_config *cfg, const char *from, const char *to, sv_error *err);
/* Copies the ACL, settings and comment of database from onto database to. */
int pg_copy_database_properties(const sv_config *cfg, const char *from, const char *to, sv_error *err);
/* Replaces target by scratch (renamed into its place), then drops the old
 * target; force terminates the target's sessions first. */
int pg_replace_database(const sv_config *cfg, const char *target, const char *scratch, bool force,
                        sv_error *err);

typedef struct pg_loader pg_loader;

/*
 * Starts the program that loads an artifact: pg_restore into dbname in one
 * transaction (format pg_dump-custom), or psql for globals SQL (dbname is the
 * maintenance database; "already exists" errors are accepted so that
 * restoring globals twice succeeds). *sink receives the artifact's
 * decompressed bytes; it holds back the tail so that nothing is committed
 * before the whole artifact is verified.
 */
pg_loader *pg_loader_start(const sv_config *cfg, const char *format, const char *dbname, bool no_owner,
                           int server_major, stream **sink, sv_error *err);

/* ok: the sink was finished successfully, wait for the loader's verdict
 * (0, or -1 with err). !ok: the sink was aborted; stop the loader so that it
 * commits nothing (-1), unless it had already failed on its own: then 1,
 * with its error in err. */
int pg_loader_finish(pg_loader *l, bool ok, sv_error *err);

#endif
