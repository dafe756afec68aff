#include "sources/postgres_script.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

/* A restrict key is alphanumeric (pg_dump generates 63 characters); the
 * bound only keeps a forged one out of messages. */
#define RESTRICT_KEY_MAX 256

/* Letters, digits, '_', '$' and every byte of a multibyte character may
 * continue an identifier (the server's ident_cont); '$' and digits may not
 * start one. */
static bool ident_start(unsigned char c)
{
    return isalpha(c) || c == '_' || c >= 0x80;
}

static bool ident_cont(unsigned char c)
{
    return ident_start(c) || isdigit(c) || c == '$';
}

struct lexer {
    const char *t;
    size_t len, i;
    unsigned line;
    sv_error *err;
    struct pg_script *out;
    size_t cap;
    /* the statement being read */
    bool in_stmt;
    size_t stmt_start;
    unsigned stmt_line;
    int depth;
    /* \restrict and \unrestrict */
    bool restrict_seen, unrestrict_seen;
    unsigned restrict_line;
    char key[RESTRICT_KEY_MAX + 1];
};

static int fail(struct lexer *lx, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct lexer *lx, unsigned line, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sv_error_set(lx->err, SV_EXIT_FAILED, "line %u: %s", line, what);
}

static void begin_token(struct lexer *lx)
{
    if (lx->in_stmt)
        return;
    lx->in_stmt = true;
    lx->stmt_start = lx->i;
    lx->stmt_line = lx->line;
    lx->depth = 0;
}

/* Advances over n bytes, counting newlines. */
static void advance(struct lexer *lx, size_t n)
{
    for (size_t k = 0; k < n && lx->i < lx->len; k++)
        if (lx->t[lx->i++] == '\n')
            lx->line++;
}

static const char *const refused_verbs[] = {
    "begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release", "prepare", "copy", NULL,
};

static int end_stmt(struct lexer *lx, size_t end)
{
    if (lx->unrestrict_seen)
        return fail(lx, lx->stmt_line,
                    "SQL after \\unrestrict (pg_dumpall writes it after the last statement)");
    struct pg_script_stmt st = {.start = lx->stmt_start, .end = end, .line = lx->stmt_line};
    /* the first two words, for what the statement is */
    char words[2][sizeof st.verb] = {"", ""};
    size_t p = st.start;
    for (int w = 0; w < 2; w++) {
        while (p < end && isspace((unsigned char)lx->t[p]))
            p++;
        size_t n = 0;
        if (p < end && ident_start((unsigned char)lx->t[p]))
            while (p < end && ident_cont((unsigned char)lx->t[p])) {
                if (n + 1 < sizeof words[w])
                    words[w][n++] = (char)tolower((unsigned char)lx->t[p]);
                p++;
            }
        words[w][n] = '\0';
        if (n == 0)
            break;
    }
    memcpy(st.verb, words[0], sizeof st.verb);
    for (const char *const *v = refused_verbs; *v; v++)
        if (strcmp(st.verb, *v) == 0)
            return fail(
                lx, st.line,
                "%s statements are refused (pg_dumpall writes none; the restore runs the script in one "
                "transaction and moves no data through the client)",
                *v);
    if ((strcmp(words[0], "create") == 0 || strcmp(words[0], "drop") == 0) &&
        strcmp(words[1], "tablespace") == 0)
        lx->out->needs_autocommit = true;
    if (lx->out->n == lx->cap) {
        lx->cap = lx->cap ? lx->cap * 2 : 64;
        lx->out->stmts = xrealloc(lx->out->stmts, lx->cap * sizeof *lx->out->stmts);
    }
    lx->out->stmts[lx->out->n++] = st;
    lx->in_stmt = false;
    return 0;
}

/* '...' (escapes: backslash escapes too) or "..." from lx->i (the opening
 * quote), a doubled quote standing for itself. */
static int quoted(struct lexer *lx, char q, bool escapes)
{
    unsigned line = lx->line;
    advance(lx, 1);
    while (lx->i < lx->len) {
        char c = lx->t[lx->i];
        if (c == '\0')
            return fail(lx, lx->line, "a NUL byte");
        if (escapes && c == '\\') {
            advance(lx, 2);
            continue;
        }
        advance(lx, 1);
        if (c == q) {
            if (lx->i < lx->len && lx->t[lx->i] == q) {
                advance(lx, 1);
                continue;
            }
            return 0;
        }
    }
    return fail(lx, line,
                q == '"' ? "a double-quoted identifier that never ends" : "a string that never ends");
}

/* $tag$...$tag$ from lx->i (the first '$'), tag_len the length of "$tag$". */
static int dollar_quoted(struct lexer *lx, size_t tag_len)
{
    unsigned line = lx->line;
    const char *tag = lx->t + lx->i;
    advance(lx, tag_len);
    while (lx->i < lx->len) {
        if (lx->t[lx->i] == '\0')
            return fail(lx, lx->line, "a NUL byte");
        if (lx->t[lx->i] == '$' && lx->len - lx->i >= tag_len && memcmp(lx->t + lx->i, tag, tag_len) == 0) {
            advance(lx, tag_len);
            return 0;
        }
        advance(lx, 1);
    }
    return fail(lx, line, "a dollar-quoted string that never ends");
}

/* The length of a dollar-quote opener "$tag$" or "$$" at lx->i, 0 when
 * the '$' opens none (a parameter $1, a lone '$'). */
static size_t dollar_tag(const struct lexer *lx)
{
    size_t p = lx->i + 1;
    if (p < lx->len && lx->t[p] == '$')
        return 2;
    if (p >= lx->len || !ident_start((unsigned char)lx->t[p]))
        return 0;
    while (p < lx->len && ident_cont((unsigned char)lx->t[p]) && lx->t[p] != '$')
        p++;
    return p < lx->len && lx->t[p] == '$' ? p + 1 - lx->i : 0;
}

/* Nested / * ... * / from lx->i. */
static int block_comment(struct lexer *lx)
{
    unsigned line = lx->line;
    int nest = 0;
    while (lx->i < lx->len) {
        if (lx->t[lx->i] == '\0')
            return fail(lx, lx->line, "a NUL byte");
        if (lx->i + 1 < lx->len && lx->t[lx->i] == '/' && lx->t[lx->i + 1] == '*') {
            nest++;
            advance(lx, 2);
        } else if (lx->i + 1 < lx->len && lx->t[lx->i] == '*' && lx->t[lx->i + 1] == '/') {
            advance(lx, 2);
            if (--nest == 0)
                return 0;
        } else {
            advance(lx, 1);
        }
    }
    return fail(lx, line, "a /* comment that never ends");
}

/* The backslash at lx->i: "\restrict KEY" and "\unrestrict KEY", each
 * alone on its line at its place, are accepted and skipped; anything else
 * is refused. */
static int meta_command(struct lexer *lx)
{
    size_t p = lx->i + 1;
    size_t name_start = p;
    while (p < lx->len && isalpha((unsigned char)lx->t[p]))
        p++;
    char name[32];
    size_t name_len = p - name_start;
    snprintf(name, sizeof name, "\\%.*s", (int)(name_len < 24 ? name_len : 24), lx->t + name_start);
    if (name_len == 0 && p < lx->len && lx->t[p] != '\n' && (unsigned char)lx->t[p] >= 0x21 &&
        (unsigned char)lx->t[p] < 0x7f)
        snprintf(name, sizeof name, "\\%c", lx->t[p]); /* \! \? \; ... */
    bool restrict_cmd = name_len == 8 && memcmp(lx->t + name_start, "restrict", 8) == 0;
    bool unrestrict_cmd = name_len == 10 && memcmp(lx->t + name_start, "unrestrict", 10) == 0;
    if (!restrict_cmd && !unrestrict_cmd)
        return fail(
            lx, lx->line,
            "psql meta-command %s is refused (pg_dumpall writes none but \\restrict and \\unrestrict)", name);
    bool line_start = lx->i == 0 || lx->t[lx->i - 1] == '\n';
    /* " KEY", then only blanks to the end of the line */
    size_t k = p;
    if (k < lx->len && lx->t[k] == ' ')
        k++;
    size_t key_start = k;
    while (k < lx->len && isalnum((unsigned char)lx->t[k]))
        k++;
    size_t key_len = k - key_start;
    while (k < lx->len && (lx->t[k] == ' ' || lx->t[k] == '\t' || lx->t[k] == '\r'))
        k++;
    bool alone = line_start && !lx->in_stmt && key_start > p && key_len > 0 && key_len <= RESTRICT_KEY_MAX &&
                 (k == lx->len || lx->t[k] == '\n');
    if (!alone)
        return fail(
            lx, lx->line,
            "%s is accepted only as pg_dumpall writes it, alone on its line with an alphanumeric key, "
            "between statements",
            name);
    char key[RESTRICT_KEY_MAX + 1];
    memcpy(key, lx->t + key_start, key_len);
    key[key_len] = '\0';
    if (restrict_cmd) {
        if (lx->restrict_seen || lx->out->n > 0)
            return fail(lx, lx->line, "\\restrict is accepted only once, before the first statement");
        lx->restrict_seen = true;
        lx->restrict_line = lx->line;
        memcpy(lx->key, key, key_len + 1);
    } else {
        if (!lx->restrict_seen || lx->unrestrict_seen)
            return fail(lx, lx->line, "\\unrestrict without a \\restrict before it");
        if (strcmp(key, lx->key) != 0) {
            return fail(lx, lx->line, "\\unrestrict names another key than the \\restrict of line %u",
                        lx->restrict_line);
        }
        lx->unrestrict_seen = true;
    }
    advance(lx, k - lx->i);
    return 0;
}

static int lex(struct lexer *lx)
{
    while (lx->i < lx->len) {
        unsigned char c = (unsigned char)lx->t[lx->i];
        unsigned char next = lx->i + 1 < lx->len ? (unsigned char)lx->t[lx->i + 1] : 0;
        if (c == '\0')
            return fail(lx, lx->line, "a NUL byte");
        if (isspace(c)) {
            advance(lx, 1);
        } else if (c == '-' && next == '-') {
            while (lx->i < lx->len && lx->t[lx->i] != '\n') {
                if (lx->t[lx->i] == '\0')
                    return fail(lx, lx->line, "a NUL byte");
                lx->i++;
            }
        } else if (c == '/' && next == '*') {
            if (block_comment(lx) != 0)
                return -1;
        } else if (c == '\\') {
            if (meta_command(lx) != 0)
                return -1;
        } else if (c == '\'' || c == '"') {
            begin_token(lx);
            if (quoted(lx, (char)c, false) != 0)
                return -1;
        } else if (c == '$') {
            begin_token(lx);
            size_t tag = dollar_tag(lx);
            if (tag ? dollar_quoted(lx, tag) != 0 : (advance(lx, 1), 0))
                return -1;
        } else if (ident_start(c)) {
            begin_token(lx);
            size_t start = lx->i;
            while (lx->i < lx->len && ident_cont((unsigned char)lx->t[lx->i]))
                lx->i++;
            /* E'...' (and e'...') is a string with backslash escapes */
            if (lx->i - start == 1 && (c == 'E' || c == 'e') && lx->i < lx->len && lx->t[lx->i] == '\'' &&
                quoted(lx, '\'', true) != 0)
                return -1;
        } else {
            begin_token(lx);
            if (c == '(')
                lx->depth++;
            else if (c == ')' && lx->depth > 0)
                lx->depth--;
            advance(lx, 1);
            if (c == ';' && lx->depth == 0 && end_stmt(lx, lx->i) != 0)
                return -1;
        }
    }
    /* psql runs what is left at the end of its input */
    if (lx->in_stmt && end_stmt(lx, lx->len) != 0)
        return -1;
    if (lx->restrict_seen && !lx->unrestrict_seen)
        return fail(lx, lx->restrict_line,
                    "\\restrict without the \\unrestrict that pg_dumpall writes at the end");
    lx->out->restricted = lx->restrict_seen;
    return 0;
}

int pg_script_parse(const char *text, size_t len, struct pg_script *out, sv_error *err)
{
    memset(out, 0, sizeof *out);
    struct lexer lx = {.t = text, .len = len, .line = 1, .err = err, .out = out};
    if (lex(&lx) != 0) {
        pg_script_free(out);
        return -1;
    }
    return 0;
}

void pg_script_free(struct pg_script *s)
{
    free(s->stmts);
    memset(s, 0, sizeof *s);
}
