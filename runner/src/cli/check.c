/* sauve check: validate the configuration and reach every source and the
 * storage, changing nothing. What an operator runs after editing a Secret,
 * and what the chart's test hook runs. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/text.h"
#include "crypto/age.h"
#include "sources/postgres.h"
#include "sources/files.h"
#include "sources/redis.h"
#include "storage/storage.h"

struct check_state {
    int code;         /* first failure's exit code */
    char first[1200]; /* first failure, for the summary */
    json_t *items;    /* [{"what", "ok", "detail"}] */
    bool text;
};

/* Returns the check's JSON item (owned by cs->items) for extra fields. */
static json_t *report(struct check_state *cs, const char *what, bool ok, int code, const char *detail)
{
    if (!ok && !cs->code) {
        cs->code = code ? code : SV_EXIT_FAILED;
        char *first = xasprintf("%s: %s", what, detail);
        log_mask_into(cs->first, sizeof cs->first, first);
        free_secret(first);
    }
    if (cs->text) {
        /* Names and messages come from the server (a database name, its
         * error text): escaped, so that none can drive the terminal. */
        char *w = text_escape(what), *d = text_escape(detail);
        printf("%-4s %-17s %s\n", ok ? "ok" : "FAIL", w, d);
        free(w);
        free(d);
    }
    json_t *o = json_object();
    json_object_set_new(o, "what", json_string(what));
    json_object_set_new(o, "ok", json_boolean(ok));
    json_object_set_new(o, "detail", json_string(detail));
    json_array_append_new(cs->items, o);
    return o;
}

static void report_error(struct check_state *cs, const char *what, const sv_error *err)
{
    char *detail = err->hint[0] ? xasprintf("%s (hint: %s)", err->msg, err->hint) : xstrdup(err->msg);
    report(cs, what, false, err->code, detail);
    free(detail);
}

static void check_storage(struct check_state *cs, const sv_config *cfg)
{
    sv_error err = {0};
    storage *st = NULL;
    if (config_require(cfg, OPT_ID_storage, &err) == 0)
        st = storage_open(cfg->storage, cfg, &err);
    if (st && storage_check(st, &err) == 0)
        report(cs, "storage", true, 0, storage_url(st));
    else
        report_error(cs, "storage", &err);
    storage_close(st);
}

/* The same preflight a backup does, without dumping. */
static void check_postgres(struct check_state *cs, const sv_config *cfg)
{
    if (!pg_configured(cfg)) {
        if (!redis_configured(cfg) && !files_configured(cfg))
            report(cs, "postgres", false, SV_EXIT_CONFIG,
                   "nothing to back up: set SAUVE_PG_DATABASES (a list, or 'all') or PGDATABASE, "
                   "SAUVE_REDIS_URL or SAUVE_FILES");
        return;
    }
    sv_error err = {0};
    source *src = pg_source_new(cfg, NULL, cfg->pg_globals);
    if (src->ops->prepare(src, &err) != 0) {
        report_error(cs, "postgres", &err);
        source_free(src);
        return;
    }
    /* Which pg_dump, and why: after a server upgrade, or in an image with
     * several majors, this is what the operator needs to see before the
     * first backup runs with it. */
    const struct pg_tools *t = pg_source_tools(src);
    char *number = pg_version_number(t->dump_version);
    bool same = t->reason == PG_TOOLS_SAME_MAJOR;
    char *detail =
        xasprintf("server %s at %s; pg_dump %s (%s)%s%s", src->info.server_version, src->info.endpoint,
                  number, t->dir, same ? ", " : ": ", pg_tools_reason_text(t->reason));
    json_t *item = report(cs, "postgres", true, 0, detail);
    json_object_set_new(item, "server_version", json_string(src->info.server_version));
    json_t *dump = json_object();
    json_object_set_new(dump, "version", json_string(number));
    json_object_set_new(dump, "major", json_integer(t->major));
    json_object_set_new(dump, "dir", json_string(t->dir));
    json_object_set_new(dump, "pg_dump_version", json_string(t->dump_version));
    json_object_set_new(dump, "reason", json_string(same ? "same_major" : "oldest_newer"));
    json_object_set_new(item, "pg_dump", dump);
    free(number);
    free(detail);
    for (size_t i = 0; i < src->n_artifacts; i++) {
        const source_artifact *a = &src->artifacts[i];
        char *what = xasprintf("postgres:%s", a->name);
        report(cs, what, a->error == NULL, a->err_code, a->error ? a->error : "reachable and readable");
        free(what);
    }
    source_free(src);
}

/* The same preflight a backup does (connect, AUTH, INFO, PSYNC probed
 * without starting a sync), without taking the RDB. */
static void check_redis(struct check_state *cs, const sv_config *cfg)
{
    source *srcs[1 + SV_REDIS_INSTANCES_MAX];
    size_t n = redis_sources_new(cfg, srcs, sizeof srcs / sizeof *srcs);
    for (size_t k = 0; k < n; k++) {
        source *src = srcs[k];
        sv_error err = {0};
        if (src->ops->prepare(src, &err) != 0) {
            report_error(cs, "redis", &err);
            source_free(src);
            continue;
        }
        for (size_t i = 0; i < src->n_artifacts; i++) {
            const source_artifact *a = &src->artifacts[i];
            bool keys = a->mode && strcmp(a->mode, "keys") == 0;
            char *what = xasprintf("redis:%s", a->name);
            char *detail =
                a->error ? xstrdup(a->error)
                : keys
                    ? xasprintf("server %s at %s; keys mode (NOT point-in-time; the user's permissions for "
                                "SCAN, PTTL and DUMP show at the first backup)",
                                src->info.server_version ? src->info.server_version : "(version unknown)",
                                src->info.endpoint)
                    : xasprintf("server %s at %s; replication not disabled (the user's permission for PSYNC "
                                "shows at the first backup)",
                                src->info.server_version ? src->info.server_version : "(version unknown)",
                                src->info.endpoint);
            json_t *item = report(cs, what, a->error == NULL, a->err_code, detail);
            if (src->info.server_version)
                json_object_set_new(item, "server_version", json_string(src->info.server_version));
            free(detail);
            free(what);
        }
        source_free(src);
    }
}

/* The trees parse, and each top is a directory sauve can list. */
static void check_files(struct check_state *cs, const sv_config *cfg)
{
    if (!files_configured(cfg))
        return;
    sv_error err = {0};
    source *src = files_source_new(cfg);
    if (src->ops->prepare(src, &err) != 0) {
        report_error(cs, "files", &err);
        source_free(src);
        return;
    }
    for (size_t i = 0; i < src->n_artifacts; i++) {
        const source_artifact *a = &src->artifacts[i];
        char *what = xasprintf("files:%s", a->name);
        report(cs, what, a->error == NULL, a->err_code, a->error ? a->error : "a directory");
        free(what);
    }
    source_free(src);
}

/* Recipients parse; an identity file, when this Job has one, opens. */
static void check_encryption(struct check_state *cs, const sv_config *cfg)
{
    sv_error err = {0};
    age_recipients r;
    if (age_recipients_load(cfg, &r, &err) != 0) {
        report_error(cs, "encryption", &err);
    } else if (r.n == 0) {
        report(cs, "encryption", true, 0,
               "off: artifacts are stored unencrypted (set SAUVE_AGE_RECIPIENTS to encrypt them)");
    } else {
        char detail[1024];
        size_t off = (size_t)snprintf(detail, sizeof detail, "age, to %zu recipient(s):", r.n);
        for (size_t i = 0; i < r.n && off < sizeof detail; i++)
            off += (size_t)snprintf(detail + off, sizeof detail - off, " %s", r.items[i].text);
        report(cs, "encryption", true, 0, detail);
    }
    age_recipients_free(&r);
    if (!cfg->age_identity_file || !*cfg->age_identity_file)
        return;
    age_identities ids;
    sv_error_clear(&err);
    if (age_identities_load(cfg->age_identity_file, &ids, &err) != 0) {
        report_error(cs, "age identity", &err);
        return;
    }
    char detail[1024];
    size_t off =
        (size_t)snprintf(detail, sizeof detail, "%s opens what was encrypted to:", cfg->age_identity_file);
    for (size_t i = 0; i < ids.n && off < sizeof detail; i++)
        off += (size_t)snprintf(detail + off, sizeof detail - off, " %s", ids.items[i].recipient.text);
    report(cs, "age identity", true, 0, detail);
    age_identities_free(&ids);
}

void cmd_check(const struct cli_args *args, const sv_config *cfg, struct outcome *out)
{
    struct check_state cs = {.items = json_array(), .text = !args->json};
    check_storage(&cs, cfg);
    check_postgres(&cs, cfg);
    check_redis(&cs, cfg);
    check_files(&cs, cfg);
    check_encryption(&cs, cfg);
    if (args->json) {
        json_t *root = json_object();
        json_object_set_new(root, "ok", json_boolean(cs.code == 0));
        json_object_set_new(root, "exit_code", json_integer(cs.code));
        json_object_set_new(root, "checks", cs.items);
        /* ASCII only: a server's text in a C1 control or a bidi override
         * reaches no terminal raw, even through cat or a pager */
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        puts(text);
        free(text);
        json_decref(root);
    } else {
        json_decref(cs.items);
    }
    if (cs.code == 0)
        outcome_set(out, SV_EXIT_OK, "check ok: configuration valid, storage and every source reachable");
    else
        outcome_set(out, cs.code, "check failed: %s", cs.first);
}
