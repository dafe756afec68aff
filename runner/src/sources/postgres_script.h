/*
 * The SQL script of pg_dumpall --globals-only (the artifact postgres:globals)
 * as sauve reads it before running any of it: cut into statements the way
 * psql and the server cut it, and refused whole when it holds anything that
 * pg_dumpall does not write and that would act on the machine running the
 * restore rather than on the server.
 *
 * The lexer knows what can hide a semicolon or a backslash: '...' strings
 * (with E'...' backslash escapes), "..." identifiers, $tag$...$tag$ dollar
 * quotes, -- and nested / * * / comments, and parentheses (a semicolon inside
 * them does not end a statement, as in psql). Strings are read with
 * standard_conforming_strings on, which every pg_dumpall script sets.
 *
 * Refused, with the line named: any psql meta-command (a backslash outside
 * quotes and comments: \!, \copy, \getenv, \o, \i, \connect ...) except the
 * two that pg_dumpall 15.14/16.10/17.6/18 and later write against
 * CVE-2025-8714, "\restrict KEY" on its own line before the first statement
 * and "\unrestrict KEY" with the same alphanumeric key after the last one;
 * transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT ...), which would
 * end the one transaction the restore runs the script in; COPY, which
 * would move data through the client; a NUL byte; an unterminated quote or
 * comment. pg_dumpall -g writes no \connect.
 */
#ifndef SAUVE_SOURCES_POSTGRES_SCRIPT_H
#define SAUVE_SOURCES_POSTGRES_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

struct pg_script_stmt {
    size_t start;  /* offset of its first token (comments before it are not part of it) */
    size_t end;    /* one past its ';', or the end of the text for a last statement without one */
    unsigned line; /* 1-based line of its first token */
    char verb[24]; /* its first word, lowercase ("create"); "" when it starts with no word */
};

struct pg_script {
    struct pg_script_stmt *stmts;
    size_t n;
    /* CREATE or DROP TABLESPACE: PostgreSQL runs them only outside a
     * transaction block */
    bool needs_autocommit;
    bool restricted; /* it had \restrict and \unrestrict */
};

/*
 * Cuts text[0..len) (not NUL-terminated) into statements. On success fills
 * out (free with pg_script_free) and returns 0; otherwise -1 with err
 * (SV_EXIT_FAILED) naming the line and what was refused, and out empty.
 * Pure: reads nothing else, runs nothing.
 */
int pg_script_parse(const char *text, size_t len, struct pg_script *out, sv_error *err);
void pg_script_free(struct pg_script *s);

#endif
