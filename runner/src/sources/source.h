/*
 * A source: something sauve backs up (PostgreSQL now; Redis and directories
 * later). A source first prepares (connects, checks versions and privileges,
 * decides what artifacts it will produce), then dumps each artifact as a
 * byte stream into the pipeline. The backup orchestrator (backup/) owns the
 * pipeline, the storage and the manifest; a source knows none of them.
 */
#ifndef SAUVE_SOURCES_SOURCE_H
#define SAUVE_SOURCES_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "manifest/manifest.h"
#include "pipeline/stream.h"

typedef struct source source;

typedef struct source_artifact {
    char *kind;   /* "postgres" */
    char *name;   /* "app", "globals" */
    char *key;    /* relative key before compression suffix: "postgres/app.dump" */
    char *format; /* "pg_dump-custom" */
    /* Set by prepare when this artifact cannot be dumped (e.g. its database
     * does not exist): the orchestrator records it as failed without calling
     * dump. err_code is the exit code such a failure maps to. */
    char *error;
    int err_code;
    /* Useful only beside the others (PostgreSQL's globals): a set in which
     * only auxiliary artifacts succeeded is not committed. */
    bool auxiliary;
    /* Recorded in the manifest when set (by prepare or dump): how the data
     * was taken ("sync"), the version of the artifact's own format (the RDB
     * version), and the number of keys or rows the server reported. */
    char *mode;
    int64_t format_version; /* 0: none */
    int64_t items;          /* when has_items */
    bool has_items;
    /* What went wrong without failing the artifact (a file that changed
     * while it was read): recorded in the manifest, the artifact ok. */
    char **warnings;
    size_t n_warnings;
    /* The rows of every table, counted in the dump's own snapshot
     * (PostgreSQL databases): set by dump, moved into the manifest. */
    manifest_row_counts row_counts;
    int64_t vanished; /* Redis keys mode: keys listed but gone when read, when has_vanished */
    bool has_vanished;
} source_artifact;

/* Facts about the server and tools, recorded in the manifest. */
typedef struct source_info {
    char *server_version; /* "15.18" */
    char *tool;           /* "pg_dump" */
    char *tool_version;   /* "pg_dump (PostgreSQL) 15.18" */
    char *endpoint;       /* "127.0.0.1:5432 user app", never a password */
} source_info;

struct source_ops {
    const char *kind;
    /* Connects, checks, fills s->artifacts. Unreachable: SV_EXIT_TEMPFAIL;
     * misconfigured (no matching tool, unknown database): SV_EXIT_CONFIG. */
    int (*prepare)(source *s, sv_error *err);
    /* Streams artifact i into out; never finishes or aborts out. On failure
     * the artifact is marked failed by the caller with err's message. */
    int (*dump)(source *s, size_t i, stream *out, sv_error *err);
    void (*destroy)(source *s);
};

struct source {
    const struct source_ops *ops;
    source_artifact *artifacts;
    size_t n_artifacts;
    source_info info;
    void *impl;
};

/* Frees artifacts and info, then calls ops->destroy. NULL allowed. */
void source_free(source *s);

/* Appends an artifact (strings copied) and returns it (owned by s). */
source_artifact *source_add_artifact(source *s, const char *kind, const char *name, const char *key,
                                     const char *format);

/* Appends a warning (copied) to a. */
void source_artifact_warn(source_artifact *a, const char *warning);

/* Marks an artifact as failed before any dump, from err. */
void source_artifact_fail(source_artifact *a, const sv_error *err);

#endif
