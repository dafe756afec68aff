#include "sources/source.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

source_artifact *source_add_artifact(source *s, const char *kind, const char *name, const char *key,
                                     const char *format)
{
    s->artifacts = xrealloc(s->artifacts, (s->n_artifacts + 1) * sizeof *s->artifacts);
    source_artifact *a = &s->artifacts[s->n_artifacts++];
    memset(a, 0, sizeof *a);
    a->kind = xstrdup(kind);
    a->name = xstrdup(name);
    a->key = xstrdup(key);
    a->format = xstrdup(format);
    return a;
}

void source_artifact_warn(source_artifact *a, const char *warning)
{
    a->warnings = xrealloc(a->warnings, (a->n_warnings + 1) * sizeof *a->warnings);
    a->warnings[a->n_warnings++] = xstrdup(warning);
}

void source_artifact_fail(source_artifact *a, const sv_error *err)
{
    free(a->error);
    a->error = err->hint[0] ? xasprintf("%s (hint: %s)", err->msg, err->hint) : xstrdup(err->msg);
    a->err_code = err->code;
}

void source_free(source *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_artifacts; i++) {
        free(s->artifacts[i].kind);
        free(s->artifacts[i].name);
        free(s->artifacts[i].key);
        free(s->artifacts[i].format);
        free(s->artifacts[i].error);
        free(s->artifacts[i].mode);
        for (size_t w = 0; w < s->artifacts[i].n_warnings; w++)
            free(s->artifacts[i].warnings[w]);
        free(s->artifacts[i].warnings);
        manifest_row_counts_free(&s->artifacts[i].row_counts);
    }
    free(s->artifacts);
    free(s->info.server_version);
    free(s->info.tool);
    free(s->info.tool_version);
    free(s->info.endpoint);
    if (s->ops && s->ops->destroy)
        s->ops->destroy(s);
    free(s);
}
