/*
 * A checker: how `sauve verify` reads one kind of artifact whole without
 * loading it anywhere (no server, no target), after restore/ has checked
 * the object's size and SHA-256, decrypted and decompressed it. Defined
 * beside the kind's dumper, in sources/KIND_verify.c.
 */
#ifndef SAUVE_SOURCES_CHECKER_H
#define SAUVE_SOURCES_CHECKER_H

#include <stdbool.h>

#include "common/error.h"
#include "config/config.h"
#include "manifest/manifest.h"
#include "pipeline/stream.h"

struct checker_ops {
    const char *kind; /* the manifest's kind: "postgres", "redis" */
    /* *sink receives artifact a's decompressed bytes and checks them as
     * they pass; *ctx is what finish needs. Fails when a cannot be checked
     * (a format this build does not know, no tool that reads it). */
    int (*start)(const sv_config *cfg, const manifest_artifact *a, void **ctx, stream **sink, sv_error *err);
    /*
     * After the sink was finished (ok) or aborted (!ok): 0 with *detail
     * (newly allocated, for the report) when the content is what its format
     * promises, else -1 with err (when !ok, only if the checker failed
     * first: otherwise the caller reports the artifact's error). Frees ctx.
     */
    int (*finish)(void *ctx, bool ok, char **detail, sv_error *err);
};

/* The checker of kind, or NULL when this build has none. */
const struct checker_ops *checker_find(const char *kind);

#endif
