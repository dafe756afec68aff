/*
 * The record of a check of a committed set: what the last `sauve verify`
 * or `sauve drill` of it found. Stored beside the set as
 * NAME/SETID/results/verify.json and results/drill.json, never in the
 * manifest, so that a set never changes after its commit: a record is
 * replaced by the next check of its kind, and removed with its set.
 * A record says what was found; it never makes a set usable or not (the
 * manifest and the listing do), and a forged one only misleads `list`.
 */
#ifndef SAUVE_MANIFEST_RECORD_H
#define SAUVE_MANIFEST_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/error.h"

#define RECORD_FORMAT 1

/* The largest record a reader accepts (a drill of 100 sources is ~20 KiB). */
#define RECORD_MAX_BYTES ((size_t)1 << 20)
/* ... and the most sources in it: more than any set holds. */
#define RECORD_MAX_SOURCES 4096

/* One source of the check. */
typedef struct record_source {
    char *source; /* "postgres:app" */
    bool ok;
    double restore_s; /* drill: the restore into its scratch target took this; < 0: not restored */
    char *detail;     /* what was found, or what is wrong */
} record_source;

typedef struct set_record {
    char *command;   /* "verify" or "drill" */
    char set_id[40]; /* the set checked */
    time_t finished;
    bool ok;
    double restore_s; /* drill: the restores' total; < 0 for verify */
    char *summary;    /* the run's one line */
    char *hostname;
    char *sauve_version;
    record_source *sources;
    size_t n_sources;
} set_record;

/* "results/drill.json": the key of command's record, relative to the set.
 * Static storage; NULL for another command. */
const char *record_key(const char *command);

/* A record of command ("verify", "drill") of set set_id, finished now on
 * this host by this sauve: every string owned, freed by record_free. */
void record_init(set_record *r, const char *command, const char *set_id, bool ok, double restore_s);

/* Appends a source (strings copied). The detail has the registered secrets
 * masked: a record goes to the bucket, and says no more than the log. */
void record_add(set_record *r, const char *source, bool ok, double restore_s, const char *detail);

/* Pretty-printed JSON, newly allocated. */
char *record_to_json(const set_record *r);

/* Parses and checks the fields' types; on failure sets err naming the
 * field, and r is freed. */
int record_from_json(const char *json, size_t len, set_record *r, sv_error *err);

void record_free(set_record *r);

#endif
