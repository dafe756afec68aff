/*
 * PostgreSQL: everything sauve does with a PostgreSQL server. libpq for what
 * sauve does itself (preflight, versions, database list, restore targets,
 * the SQL of the globals);
 * the real pg_dump / pg_dumpall / pg_restore, of the major version
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
#include "manifest/manifest.h"
#include "pipeline/stream.h"
#include "sources/source.h"

/* ---- connections and tools (postgres_conn.c) ------------------------- */

/* The application_name of sauve's sessions (pg_stat_activity), its own and
 * its tools'. A backup's are PG_APPNAME_BACKUP, so that a restore can see
 * that a backup of its target is running (postgres_restore.c); everything
 * else is PG_APPNAME. */
#define PG_APPNAME        "sauve"
#define PG_APPNAME_BACKUP "sauve backup"

/* True when PostgreSQL is to be backed up: pg.databases or PGDATABASE set. */
bool pg_configured(const sv_config *cfg);

/*
 * Connects to dbname. On failure returns NULL with an error naming host,
 * port, user and database (never the password): SV_EXIT_CONFIG when the
 * database does not exist, SV_EXIT_TEMPFAIL otherwise (refused, timeout,
 * authentication), with a hint.
 */
PGconn *pg_connect(const sv_config *cfg, const char *dbname, sv_error *err);
/* pg_connect with another application_name (PG_APPNAME_BACKUP). */
PGconn *pg_connect_as(const sv_config *cfg, const char *dbname, const char *application_name, sv_error *err);

/* "127.0.0.1:5432 as app" for messages and the manifest (no password). */
char *pg_endpoint(const sv_config *cfg, PGconn *conn);

/* Runs a query expected to succeed; on failure sets err with the server's
 * message and the database name, returns NULL. Caller PQclear()s. */
PGresult *pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params, sv_error *err);

/* Asks the server to cancel what conn runs (best effort; the result still
 * has to be read). */
void pg_cancel_query(PGconn *conn);

/* pg_query for a query that may run long (a count, the user's own check):
 * sent asynchronously, and cancelled when a stop is requested (then err
 * says "stopped by SIGTERM"). Several statements: the first error, else
 * the last result. A lost connection is SV_EXIT_TEMPFAIL. */
PGresult *pg_query_stoppable(PGconn *conn, const char *sql, sv_error *err);

/* A dbname=... connection string with the name quoted for libpq, so that a
 * database name containing '=' or spaces is not parsed as options. */
char *pg_dbname_conninfo(const char *dbname);

/* One directory of pg.bindir that holds a pg_dump. */
struct pg_tool_candidate {
    char *dir;     /* as the pattern matched it, e.g. "/usr/lib/postgresql/18/bin" */
    char *version; /* what `pg_dump --version` printed (first line); NULL when it did not run */
    int major;     /* of that version: 15, 18; 0 when version is NULL */
    char *error;   /* why pg_dump did not run (not executable, exit status); NULL when it ran */
};

struct pg_tool_candidates {
    struct pg_tool_candidate *items;
    size_t n;
};

/*
 * The one scan of pg.bindir, shared by the choice of tools and `sauve
 * version`. Expands each pattern of bindir (globs allowed; a pattern that
 * matches nothing is skipped) and keeps every directory holding a pg_dump,
 * each once, with what `pg_dump --version` answered (run by its full path:
 * pg_dump finds its installation from argv[0], and the image has no PATH).
 * Order: newest major first; within a major, the order of bindir (then of
 * names within a glob), so that the first of a major is the preferred one;
 * the pg_dumps that did not run last. Never fails: out->n may be 0. Free
 * with pg_tool_candidates_free.
 */
void pg_tools_scan(const sv_strlist *bindir, struct pg_tool_candidates *out);
void pg_tool_candidates_free(struct pg_tool_candidates *c);

enum pg_tools_reason {
    PG_TOOLS_NONE,         /* nothing can dump the server */
    PG_TOOLS_SAME_MAJOR,   /* the server's own major */
    PG_TOOLS_OLDEST_NEWER, /* no tools of the server's major: the oldest newer one */
};

/*
 * Pure: which of c[0..n) dumps a server of server_major. The first
 * candidate of that major; else the first of the oldest major newer than
 * the server, since pg_dump reads older servers but refuses newer ones, and
 * the closest major is the one most like the server. Candidates whose
 * pg_dump did not run are never chosen. NULL when none qualifies (only
 * older majors, or nothing); *why (when not NULL) says which rule chose.
 */
const struct pg_tool_candidate *pg_tools_choose(const struct pg_tool_candidate *c, size_t n, int server_major,
                                                enum pg_tools_reason *why);

/* "same major" or "same major unavailable, the oldest newer one": for
 * messages. Static storage. */
const char *pg_tools_reason_text(enum pg_tools_reason why);

/* "major 15 in /usr/lib/postgresql/15/bin, a pg_dump that does not run in
 * /opt/broken/bin": what a scan found, for messages ("" when nothing).
 * Newly allocated. */
char *pg_tools_describe(const struct pg_tool_candidates *c);

/* "pg_dump (PostgreSQL) 18.1 (Debian 18.1-1)" -> "18.1", "... 18devel" ->
 * "18devel": the word after "(PostgreSQL) ", else the first word starting
 * with a digit, else the whole text. Newly allocated. */
char *pg_version_number(const char *version);

struct pg_tools {
    int major;                   /* major version of the tools found */
    char *dir;                   /* directory holding them */
    char *dump_version;          /* "pg_dump (PostgreSQL) 15.18 ..." */
    enum pg_tools_reason reason; /* why these */
};

/*
 * Finds pg_dump and friends for a server of server_major: pg_tools_scan of
 * pg.bindir, then pg_tools_choose. Fails with SV_EXIT_CONFIG when only
 * older majors (or none) exist, listing the majors and directories found,
 * with a hint to install the server's client tools.
 */
int pg_tools_find(const sv_config *cfg, int server_major, struct pg_tools *out, sv_error *err);
void pg_tools_free(struct pg_tools *t);
/* DIR/NAME, newly allocated. */
char *pg_tool_path(const struct pg_tools *t, const char *name);

/* NULL-terminated "K=V" list for children: the connection settings from the
 * configuration, including the password, and PGAPPNAME=application_name
 * (PG_APPNAME or PG_APPNAME_BACKUP). Free with pg_child_env_free. */
char **pg_child_env(const sv_config *cfg, const char *application_name);
void pg_child_env_free(char **env);
/* The allow-list of what the PostgreSQL tools (pg_dump, pg_dumpall,
 * pg_restore, psql, the version probe) inherit of sauve's environment
 * (proc_options.env_keep): libpq's variables but PGDATABASE and
 * PGPASSWORD (pg_child_env sets those sauve resolved), HOME (~/.pgpass,
 * ~/.postgresql/), the locale and time zone, and the Kerberos and OpenSSL
 * locations libpq may read. Nothing else: no cloud credential, token or
 * URL of sauve's reaches them. Static storage. */
const char *const *pg_child_env_keep(void);

/* ---- backup (postgres_backup.c) ---------------------------------------- */

/*
 * A source producing postgres/globals.sql (pg_dumpall --globals-only, when
 * globals is set) and postgres/DB.dump (pg_dump -Fc -Z0) per database,
 * with the row counts of its tables in the dump's snapshot (pg.row_counts).
 * databases NULL means the configuration's list (or 'all'); a non-NULL list
 * is used as is (the safety backup before a restore).
 */
source *pg_source_new(const sv_config *cfg, const sv_strlist *databases, bool globals);

/* The tools a PostgreSQL source from pg_source_new will run, once its
 * prepare succeeded (NULL before): for `sauve check` to name them. Owned
 * by the source. */
const struct pg_tools *pg_source_tools(const source *s);

/* ---- row counts in the dump's snapshot (postgres_counts.c) ------------- */

struct pg_counter;

/*
 * Connects to dbname, begins a REPEATABLE READ transaction, exports its
 * snapshot (pg_counter_snapshot, for pg_dump --snapshot) and lists in it
 * the tables whose data pg_dump dumps, each to be counted exactly or, with
 * pg.row_counts=estimate or above pg.row_counts_exact_max_mb, estimated.
 * NULL when any of it fails (a standby before PostgreSQL 10 exports no
 * snapshot): out then says why (skipped), and the dump runs without a
 * shared snapshot. Never fails the backup.
 */
struct pg_counter *pg_counter_start(const sv_config *cfg, const char *dbname, manifest_row_counts *out);
const char *pg_counter_snapshot(const struct pg_counter *c);
/* Sends the count query without waiting: the server counts while pg_dump
 * runs. Call once pg_dump has started. */
void pg_counter_send(struct pg_counter *c);
/* After pg_dump ended: waits at most wait_s seconds for the counts (then
 * cancels them), fills out with a count per table or the reason there are
 * none, ends the transaction (releasing the snapshot) and frees c. */
void pg_counter_finish(struct pg_counter *c, double wait_s, manifest_row_counts *out);
/* The dump failed: cancels, ends the transaction, frees c. NULL allowed. */
void pg_counter_abort(struct pg_counter *c);

/* ---- restore (postgres_restore.c) -------------------------------------- */

/* The loader of kind "postgres" (sources/loader.h, registered in
 * loader.c) is postgres_loader; what follows is its choice of tools,
 * pure or nearly so, for tests. */

/*
 * Pure: the major of the pg_restore that loads an
 * artifact written by tool_version (the manifest's "pg_dump (PostgreSQL)
 * 18.1") into a server of server_major: the newer of the two. pg_restore
 * cannot read the archive of a newer pg_dump (17 changed the format), and
 * like pg_dump it is not made for a newer server. A tool_version that is
 * NULL or names no version counts as the server's major.
 */
/* The largest globals artifact (decompressed) a restore accepts, and
 * verify reads whole: it is held in memory until verified. pg_dumpall -g
 * writes a few hundred bytes per role; 64 MiB is a cluster of some 100 000
 * roles. */
#define PG_GLOBALS_MAX ((size_t)64 << 20)

/* Drops dbname if it exists (postgres_restore.c); force: terminates its
 * other sessions first (PostgreSQL 13+ WITH (FORCE)). */
int pg_drop_database(const sv_config *cfg, const char *dbname, bool force, sv_error *err);

/* ---- drill (postgres_drill.c): the loader's drill operations --------- */

struct drill_findings;
struct loader_options;
int pg_drill_target(const manifest_artifact *a, const char *dir, const char *tag, struct loader_options *o,
                    char **owned, const char **skip);
int pg_drill_compare(const sv_config *cfg, const manifest_artifact *a, const struct loader_options *o,
                     struct drill_findings *f, sv_error *err);
int pg_drill_discard(const sv_config *cfg, const struct loader_options *o, sv_error *err);

int pg_loader_major(int server_major, const char *tool_version);

/*
 * Finds the tools of major pg_loader_major() or the oldest newer one in
 * pg.bindir. Fails with SV_EXIT_CONFIG when there are none, naming the
 * artifact's major when that is what rules the older tools out, what was
 * found, and where newer tools come from.
 */
int pg_loader_tools(const sv_config *cfg, int server_major, const char *tool_version, struct pg_tools *out,
                    sv_error *err);

/*
 * Pure: whether pg_restore of tools_major can load into a server of
 * server_major in one transaction. Not from 17 into a server before 17:
 * pg_restore 17+ sets transaction_timeout on its connection, which older
 * servers reject, and in one transaction any error is fatal.
 */
bool pg_loader_transactional(int tools_major, int server_major);

#endif
