/*
 * What every fuzz target shares. A target (fuzz_NAME.c) is a libFuzzer entry
 * point over one parser of bytes that come from outside sauve: a bucket
 * anyone with write access can fill, a configuration file, an endpoint's
 * answer. Besides the sanitizers' own checks (ASan, UBSan, LeakSanitizer:
 * every target frees all it got), each target checks the parser's contract
 * with FUZZ_CHECK, whose failure aborts so that libFuzzer keeps the input.
 *
 * Built by `make fuzz` with clang, against the project's objects compiled
 * with -fsanitize=fuzzer-no-link,address,undefined (build-fuzz/).
 */
#ifndef SAUVE_FUZZ_FUZZ_H
#define SAUVE_FUZZ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

/* Not assert(): an invariant must be checked whatever NDEBUG says. */
#define FUZZ_CHECK(cond)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "fuzz: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);             \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

/* The input as a C string, newly allocated: parsers of text get a NUL
 * terminated copy, so that a read past the input is ASan's to report, not a
 * read of whatever follows libFuzzer's buffer. An embedded NUL ends the
 * string, as it would for a value read from the environment or a file. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = xmalloc(size + 1);
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/*
 * Cuts the input into up to `max` NUL-terminated parts at each NUL byte, so
 * that a target taking several strings (a URL and a text) gets them from one
 * input. Returns the number of parts (at least 1); parts[i] point into *buf,
 * which the caller frees.
 */
static inline size_t fuzz_split(const uint8_t *data, size_t size, char **buf, const char **parts, size_t max)
{
    *buf = fuzz_cstr(data, size);
    size_t n = 0;
    parts[n++] = *buf;
    for (size_t i = 0; i < size && n < max; i++)
        if ((*buf)[i] == '\0')
            parts[n++] = *buf + i + 1;
    return n;
}

/* True when s is well-formed UTF-8 (no overlong form, no surrogate, at most U+10FFFF). */
static inline bool fuzz_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, cp;
        size_t n;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n;
    }
    return true;
}

#endif
