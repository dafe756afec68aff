#include "sources/loader.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

/* The registry. Each kind's loader is defined beside its dumper, in
 * sources/KIND_restore.c; a kind is restorable once it is listed here. */
extern const struct loader_ops postgres_loader;
extern const struct loader_ops redis_loader;
extern const struct loader_ops files_loader;
static const struct loader_ops *const loaders[] = {&postgres_loader, &redis_loader, &files_loader};
#define N_LOADERS (sizeof loaders / sizeof *loaders)

void loader_free(loader *l)
{
    if (!l)
        return;
    free(l->target);
    free(l->what);
    free(l->changes);
    if (l->ops && l->ops->destroy)
        l->ops->destroy(l);
    free(l);
}

const struct loader_ops *loader_find(const char *kind, size_t len)
{
    for (size_t i = 0; i < N_LOADERS; i++)
        if (strlen(loaders[i]->kind) == len && memcmp(loaders[i]->kind, kind, len) == 0)
            return loaders[i];
    return NULL;
}

char *loader_forms_of(const struct loader_ops *const *ops, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        for (const char *const *f = ops[i]->forms; *f; f++)
            total++;
    char *out = xstrdup("");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (const char *const *f = ops[i]->forms; *f; f++, k++) {
            char *next = xasprintf("%s%s%s", out, k == 0 ? "" : k + 1 == total ? " or " : ", ", *f);
            free(out);
            out = next;
        }
    return out;
}

char *loader_forms(void)
{
    return loader_forms_of(loaders, N_LOADERS);
}
