/*
 * The manifest of a backup set: manifest.json, written last, so that a set
 * without one is incomplete. It records what was stored and how to check it.
 * Serialised with jansson. Never contains a secret: no connection strings,
 * passwords or keys, only host/port/user/database names.
 *
 * Keys of artifacts are relative to the set's directory
 * (e.g. "postgres/app.dump.zst"), so a set can be copied elsewhere whole.
 */
#ifndef SAUVE_MANIFEST_MANIFEST_H
#define SAUVE_MANIFEST_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"

#define MANIFEST_FORMAT   1
#define MANIFEST_FILENAME "manifest.json"
/*
 * A set id is the UTC start time and a suffix, e.g.
 * 20261122T020000Z-482a3f91: the milliseconds of the start (482) and 5
 * random hex digits. Two runs of a series that start in the same second
 * get two ids, and text order is still start order (the time is
 * fixed-width and comes first, the milliseconds next). Sets written before
 * the suffix existed have the time alone (20261122T020000Z), and are read
 * as before.
 */
#define SET_ID_TIME_LEN   16                                        /* 20261122T020000Z */
#define SET_ID_SUFFIX_LEN 8                                         /* what set_id_new writes */
#define SET_ID_SUFFIX_MAX 16                                        /* what a reader accepts */
#define SET_ID_LEN        (SET_ID_TIME_LEN + 1 + SET_ID_SUFFIX_MAX) /* the longest id */

/* How a table's rows were counted. */
enum manifest_rows_how {
    ROWS_EXACT,    /* count(*) in the dump's own snapshot */
    ROWS_ESTIMATE, /* the planner's estimate (pg_class.reltuples) as of the snapshot */
    ROWS_UNKNOWN,  /* an estimate was asked for, and the planner has none (never analysed) */
};

/* The rows of one table of a dump. */
typedef struct manifest_table_rows {
    char *schema;
    char *table;
    int64_t rows; /* -1 when how is ROWS_UNKNOWN */
    enum manifest_rows_how how;
} manifest_table_rows;

/* The rows of every table a dump holds, counted in the dump's own snapshot
 * (PostgreSQL), or why they were not. */
typedef struct manifest_row_counts {
    bool present;  /* recorded (older manifests and other kinds have none) */
    char *skipped; /* why there are no counts; NULL when counted */
    manifest_table_rows *tables;
    size_t n;
} manifest_row_counts;

/* "exact", "estimate", "unknown". */
const char *manifest_rows_how_name(enum manifest_rows_how how);
/* Appends a table (strings copied) and marks rc present. */
void manifest_row_counts_add(manifest_row_counts *rc, const char *schema, const char *table, int64_t rows,
                             enum manifest_rows_how how);
/* Frees and zeroes. */
void manifest_row_counts_free(manifest_row_counts *rc);

typedef struct manifest_artifact {
    char *key;          /* relative to the set, e.g. "postgres/app.dump.zst"; NULL when failed */
    char *kind;         /* "postgres", later "redis", "files" */
    char *name;         /* "app", "globals" */
    char *format;       /* "pg_dump-custom", "pg_dumpall-sql" */
    char *compression;  /* "zstd" */
    bool ok;            /* false: the source failed; error says why; no object */
    char *error;        /* NULL when ok */
    uint64_t bytes_in;  /* before compression */
    uint64_t bytes_out; /* as stored */
    char sha256[65];    /* hex digest of the stored object; "" when failed */
    double duration_s;
    char *server_version;   /* "15.18", or NULL */
    char *tool;             /* "pg_dump", or NULL */
    char *tool_version;     /* "pg_dump (PostgreSQL) 15.18", or NULL */
    char *endpoint;         /* source endpoint, e.g. "db:5432 user app" (never a password), or NULL */
    char *mode;             /* how the data was taken, e.g. "sync" (Redis); NULL: not recorded */
    int64_t format_version; /* version of the artifact's format (RDB version); 0: not recorded */
    int64_t items;          /* keys (Redis) the server reported, when has_items */
    bool has_items;
    /* what went wrong without failing an ok artifact (files that changed
     * while they were read); written only when there is one */
    char **warnings;
    size_t n_warnings;
    int64_t vanished; /* keys listed but gone when read (Redis keys mode), when has_vanished */
    bool has_vanished;
    char **recipients; /* encryption recipients' fingerprints */
    size_t n_recipients;
    manifest_row_counts row_counts; /* PostgreSQL databases, when counted */
} manifest_artifact;

enum set_status { SET_OK, SET_PARTIAL };

typedef struct manifest {
    int format; /* MANIFEST_FORMAT */
    char id[SET_ID_LEN + 1];
    char *name;   /* set series name (SAUVE_NAME) */
    char *reason; /* "backup", or "safety" for the copy taken before restore --clean */
    char *note;   /* free text, e.g. "before restore of postgres:app"; NULL */
    enum set_status status;
    time_t started;
    time_t finished;
    char *sauve_version;
    char *hostname;
    manifest_artifact *artifacts;
    size_t n_artifacts;
} manifest;

/* Appends a zeroed artifact and returns it (owned by m). */
manifest_artifact *manifest_add(manifest *m);

/* Derives status from the artifacts: SET_OK when all are ok, else SET_PARTIAL. */
void manifest_update_status(manifest *m);

/* Pretty-printed JSON, newly allocated. */
char *manifest_to_json(const manifest *m);

/* Parses and validates (required fields, types, key shape, sha256 shape,
 * format version). On failure sets err naming the field; m is then freed. */
int manifest_from_json(const char *json, size_t len, manifest *m, sv_error *err);

void manifest_free(manifest *m);

/* Totals over ok artifacts. */
uint64_t manifest_bytes_out(const manifest *m);
uint64_t manifest_bytes_in(const manifest *m);

/* True when key can name an artifact: relative, no "." / ".." / empty
 * segment, no control character or backslash, valid UTF-8. Writers check
 * with this what readers will check. */
bool manifest_key_is_safe(const char *key);

/* Finds an artifact by kind and name, or NULL. */
const manifest_artifact *manifest_find(const manifest *m, const char *kind, const char *name);

/* The time part of a set id, "20261122T020000Z", for UTC time t ("" for a
 * year outside 1970..9999). */
void set_id_format(time_t t, char out[SET_ID_LEN + 1]);

/* A new set id for a run started at t and ms milliseconds (0..999): the
 * time, '-', the milliseconds as 3 digits, and 5 random lowercase hex
 * digits from the kernel's generator. */
void set_id_new(time_t t, int ms, char out[SET_ID_LEN + 1]);

/* Parses "20261122T020000Z" or "20261122T020000Z-SUFFIX" (1 to 16
 * lowercase letters and digits) and gives the time in *out (may be NULL).
 * Returns -1 on anything else. */
int set_id_parse(const char *id, time_t *out);

/* ISO 8601 UTC "2026-11-22T02:00:00Z" into out (21 bytes with NUL). */
void iso8601_format(time_t t, char out[21]);
int iso8601_parse(const char *s, time_t *out);

#endif
