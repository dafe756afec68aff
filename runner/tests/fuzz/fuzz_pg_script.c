/*
 * The SQL of a postgres:globals artifact (sources/postgres_script.c): what
 * anyone who can write to the bucket can forge, lexed before a restore runs
 * any of it. The input is given exactly as long as it is (no NUL added), so
 * that a read past it is ASan's to report.
 *
 * Contracts checked besides memory safety: a refusal names a line and
 * leaves nothing; accepted statements lie inside the input, in order,
 * without overlap, each starting on the line it says and ending with its
 * ';' (but the last); and each statement lexed again alone comes back
 * whole as one statement (so none hides a meta-command or a second
 * statement that the lexer saw differently in context).
 */
#include "fuzz.h"

#include "sources/postgres_script.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmalloc(size ? size : 1);
    memcpy(text, data, size);
    struct pg_script s;
    sv_error err = {0};
    if (pg_script_parse(text, size, &s, &err) != 0) {
        FUZZ_CHECK(strncmp(err.msg, "line ", 5) == 0);
        FUZZ_CHECK(s.n == 0 && s.stmts == NULL);
        free(text);
        return 0;
    }
    size_t prev_end = 0;
    for (size_t i = 0; i < s.n; i++) {
        const struct pg_script_stmt *st = &s.stmts[i];
        FUZZ_CHECK(st->start >= prev_end && st->start < st->end && st->end <= size);
        unsigned line = 1;
        for (size_t k = 0; k < st->start; k++)
            line += text[k] == '\n';
        FUZZ_CHECK(line == st->line);
        FUZZ_CHECK(i + 1 == s.n || text[st->end - 1] == ';');
        /* a statement alone is one statement (it ends at its own ';') */
        struct pg_script one;
        sv_error err2 = {0};
        char *alone = xmalloc(st->end - st->start);
        memcpy(alone, text + st->start, st->end - st->start);
        FUZZ_CHECK(pg_script_parse(alone, st->end - st->start, &one, &err2) == 0);
        FUZZ_CHECK(one.n == 1 && one.stmts[0].start == 0 && one.stmts[0].end == st->end - st->start);
        pg_script_free(&one);
        free(alone);
        prev_end = st->end;
    }
    pg_script_free(&s);
    free(text);
    return 0;
}
