/*
 * A PostgreSQL artifact verified with no server: what `sauve verify` reads
 * after the object's size, SHA-256, decryption and zstd held. A custom dump
 * is walked whole by pg_restore (its table of contents and every data
 * block) into /dev/null, with the tools a restore of it would use; the SQL
 * of pg_dumpall must end with the line pg_dumpall writes once it completed,
 * and pass the checks a restore makes before it runs any of it
 * (sources/postgres_script.h): what verify accepts, restore runs.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/proc.h"
#include "sources/checker.h"
#include "sources/postgres.h"
#include "sources/postgres_script.h"

#define GLOBALS_END "-- PostgreSQL database cluster dump complete\n"
#define TAIL_KEEP   256

struct pg_verify {
    bool globals;
    proc *p; /* pg_restore (custom dump) */
    bool stopped_reading;
    char *tools; /* "pg_restore 18.1 from DIR", for the detail */
    /* globals: the whole text, as a restore holds it */
    char *buf;
    size_t len, cap;
};

/* Holds the globals' text as it goes by, up to what a restore holds. */
static int collect(void *ctx, const void *data, size_t len, sv_error *err)
{
    struct pg_verify *t = ctx;
    if (len > PG_GLOBALS_MAX - t->len)
        return sv_error_set(err, SV_EXIT_FAILED,
                            "the SQL is larger than the %zu MiB a restore holds in memory to check it before "
                            "running any of it: a restore would refuse it",
                            PG_GLOBALS_MAX >> 20);
    if (t->len + len > t->cap) {
        size_t cap = t->cap ? t->cap : (size_t)64 << 10;
        while (cap < t->len + len)
            cap *= 2;
        t->cap = cap;
        t->buf = xrealloc(t->buf, cap);
    }
    memcpy(t->buf + t->len, data, len);
    t->len += len;
    return 0;
}

/* Whether the text ends with pg_dumpall's completion line, then nothing but
 * the comment dashes and blank lines it puts after it. */
static bool ends_complete(const struct pg_verify *v)
{
    size_t n = strlen(GLOBALS_END);
    for (size_t at = v->len; at-- > 0 && v->len - at <= TAIL_KEEP;) {
        char c = v->buf[at];
        if (c == '\n' || c == '-') {
            if (at + 1 >= n && memcmp(v->buf + at + 1 - n, GLOBALS_END, n) == 0)
                return true;
            continue;
        }
        return false;
    }
    return false;
}

/* ---- the checker (sources/checker.h) ---------------------------------- */

static int pg_verify_start(const sv_config *cfg, const manifest_artifact *a, void **ctx, stream **sink,
                           sv_error *err)
{
    struct pg_verify *v = xcalloc(1, sizeof *v);
    if (strcmp(a->format, "pg_dumpall-globals-sql") == 0) {
        v->globals = true;
        *sink = callback_sink(collect, v, "globals");
        *ctx = v;
        return 0;
    }
    if (strcmp(a->format, "pg_dump-custom") != 0) {
        free(v);
        return sv_error_set(err, SV_EXIT_FAILED, "artifact format %s is not one sauve can verify", a->format);
    }
    /* the tools a restore would take: at least as new as the pg_dump that
     * wrote it (pg_restore cannot read a newer pg_dump's archives) */
    struct pg_tools tools = {0};
    if (pg_loader_tools(cfg, 0, a->tool_version, &tools, err) != 0) {
        free(v);
        return -1;
    }
    char *tool = pg_tool_path(&tools, "pg_restore");
    char *number = pg_version_number(tools.dump_version);
    v->tools = xasprintf("pg_restore %s from %s", number, tools.dir);
    free(number);
    /* --file: a script of the whole archive, thrown away: every TOC entry and
     * data block is read and decoded, and nothing connects anywhere */
    const char *argv[] = {tool, "--file=/dev/null", NULL};
    char **env = pg_child_env(cfg, PG_APPNAME);
    struct proc_options po = {.path = tool,
                              .argv = argv,
                              .env_set = (const char *const *)env,
                              .env_keep = pg_child_env_keep(),
                              .pipe_stdin = true,
                              .log_name = "pg_restore"};
    v->p = proc_start(&po, err);
    pg_child_env_free(env);
    free(tool);
    pg_tools_free(&tools);
    if (!v->p) {
        free(v->tools);
        free(v);
        return -1;
    }
    *sink = fd_sink(proc_take_stdin(v->p), 0, &v->stopped_reading);
    *ctx = v;
    return 0;
}

static int pg_verify_finish(void *ctx, bool ok, char **detail, sv_error *err)
{
    struct pg_verify *v = ctx;
    int rc = 0;
    if (v->globals) {
        struct pg_script script = {0};
        if (ok && !ends_complete(v)) {
            sv_error_set(err, SV_EXIT_FAILED,
                         "the SQL (%zu bytes) does not end with pg_dumpall's \"cluster dump complete\" line: "
                         "cut short when it was written",
                         v->len);
            rc = -1;
        } else if (ok && pg_script_parse(v->buf, v->len, &script, err) != 0) {
            sv_error_wrap(err, "a restore would refuse the SQL");
            rc = -1;
        } else if (ok) {
            *detail = xasprintf("SQL of %zu bytes, %zu statement(s) a restore accepts, complete (ends with "
                                "pg_dumpall's last line)",
                                v->len, script.n);
        }
        pg_script_free(&script);
        free(v->buf);
    } else if (ok) {
        rc = proc_wait(v->p, err);
        if (rc == 0)
            *detail = xasprintf("%s read the whole archive", v->tools);
        else
            sv_error_wrap(err, "%s could not read the archive", v->tools);
    } else if (v->stopped_reading) {
        /* pg_restore gave up first: its words are the cause */
        if (proc_wait(v->p, err) != 0) {
            sv_error_wrap(err, "%s could not read the archive", v->tools);
            rc = -1;
        }
    } else {
        proc_kill(v->p, SIGTERM);
        sv_error ignored = {0};
        proc_wait(v->p, &ignored);
    }
    if (!v->globals)
        proc_free(v->p);
    free(v->tools);
    free(v);
    return rc;
}

const struct checker_ops postgres_checker = {
    .kind = "postgres",
    .start = pg_verify_start,
    .finish = pg_verify_finish,
};
