/*
 * What every unit test includes: cmocka (with the headers it needs before
 * it) and a few helpers. Tests mirror the source tree: test_config.c tests
 * runner/src/config, and so on.
 */
#ifndef SAUVE_TESTUTIL_H
#define SAUVE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A fresh temporary directory (mkdtemp under $TMPDIR or /tmp); newly allocated. */
static inline char *test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/sauve-unit-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

/* Removes a directory tree made by a test (rm -rf). */
static inline void test_rmtree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Writes a whole file; returns its path (newly allocated) under dir. */
static inline char *test_write_file(const char *dir, const char *name, const char *content)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    return path;
}

#endif
