/*
 * What every unit test includes: cmocka (with the headers it needs before
 * it) and a few helpers. Tests mirror the source tree: test_config.c tests
 * runner/src/config, and so on.
 */
#ifndef SAUVE_TESTUTIL_H
#define SAUVE_TESTUTIL_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* A folder of ../shared/testdata (published vectors, read in place): $env
 * when set, else found from the repo root (where make runs the tests) or
 * any folder below it, else from this source file. Newly allocated. */
static inline char *test_shared_testdata(const char *sub, const char *env)
{
    const char *e = getenv(env);
    if (e && *e)
        return strdup(e);
    char up[64] = "";
    char p[4096];
    for (int i = 0; i < 8; i++) {
        snprintf(p, sizeof p, "%s../shared/testdata/%s", up, sub);
        if (access(p, R_OK | X_OK) == 0)
            return strdup(p);
        strcat(up, "../");
    }
    /* __FILE__ is runner/tests/unit/testutil.h: four levels up is the repo's parent */
    snprintf(p, sizeof p, "%s", __FILE__);
    char *slash = strrchr(p, '/');
    if (slash)
        *slash = '\0';
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/../../../../shared/testdata/%s", slash ? p : ".", sub);
    return strdup(dir);
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

/* Reads fd to EOF; newly allocated, NUL-terminated. */
static inline char *test_read_all(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

/* True when any piece of secret of at least `piece` bytes occurs in s: a
 * secret that leaks in part leaks too. */
static inline bool test_has_piece(const char *s, const char *secret, size_t piece)
{
    size_t slen = strlen(secret);
    for (size_t i = 0; i + piece <= slen; i++)
        if (memmem(s, strlen(s), secret + i, piece))
            return true;
    return false;
}

#endif
