#include "sources/checker.h"

#include <string.h>

/* The registry: each kind's checker is defined beside its dumper, in
 * sources/KIND_verify.c. */
extern const struct checker_ops postgres_checker;
extern const struct checker_ops redis_checker;
extern const struct checker_ops files_checker;
static const struct checker_ops *const checkers[] = {&postgres_checker, &redis_checker, &files_checker};

const struct checker_ops *checker_find(const char *kind)
{
    for (size_t i = 0; i < sizeof checkers / sizeof *checkers; i++)
        if (strcmp(checkers[i]->kind, kind) == 0)
            return checkers[i];
    return NULL;
}
