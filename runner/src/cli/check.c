/* sauve check: validate the configuration and reach every source and the
 * storage, changing nothing. What an operator runs after editing a Secret,
 * and what the chart's test hook runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/log.h"
#include "common/mem.h"
#include "sources/postgres.h"
#include "storage/storage.h"

static void report(const struct cli_args *args, const char *what, bool ok, const char *detail)
{
    if (args->json)
        return;
    printf("%-4s %-10s %s\n", ok ? "ok" : "FAIL", what, detail);
}

void cmd_check(const struct cli_args *args, const sv_config *cfg, struct outcome *out)
{
    sv_error err = {0};
    int code = SV_EXIT_OK;
    char first[1200] = "";

    /* storage */
    storage *st = NULL;
    if (config_require(cfg, OPT_ID_storage, &err) == 0)
        st = storage_open(cfg->storage, &err);
    if (st && storage_check(st, &err) == 0) {
        report(args, "storage", true, storage_url(st));
    } else {
        report(args, "storage", false, err.msg);
        code = err.code;
        snprintf(first, sizeof first, "storage: %s", err.msg);
    }
    storage_close(st);

    /* postgres: the same preflight a backup does, without dumping */
    char pgdetail[1200] = "not configured (set SAUVE_PG_DATABASES or PGDATABASE)";
    bool pg_ok = false;
    if (pg_configured(cfg)) {
        source *src = pg_source_new(cfg, NULL, cfg->pg_globals);
        sv_error_clear(&err);
        if (src->ops->prepare(src, &err) == 0) {
            pg_ok = true;
            size_t off = (size_t)snprintf(pgdetail, sizeof pgdetail, "%s at %s, %s:",
                                          src->info.server_version, src->info.endpoint, src->info.tool_version);
            for (size_t i = 0; i < src->n_artifacts && off < sizeof pgdetail; i++) {
                const source_artifact *a = &src->artifacts[i];
                off += (size_t)snprintf(pgdetail + off, sizeof pgdetail - off, " %s%s", a->name,
                                        a->error ? " (FAILS)" : "");
                if (a->error) {
                    pg_ok = false;
                    log_error("postgres:%s: %s", a->name, a->error);
                    if (!code)
                        code = a->err_code ? a->err_code : SV_EXIT_FAILED;
                    if (!first[0])
                        snprintf(first, sizeof first, "postgres:%s: %s", a->name, a->error);
                }
            }
        } else {
            snprintf(pgdetail, sizeof pgdetail, "%s", err.msg);
            if (!code)
                code = err.code;
            if (!first[0])
                snprintf(first, sizeof first, "postgres: %s%s%s", err.msg, err.hint[0] ? " (hint: " : "",
                         err.hint[0] ? err.hint : "");
            if (err.hint[0] && strlen(first) + 1 < sizeof first)
                strcat(first, ")");
        }
        source_free(src);
    } else if (!code) {
        code = SV_EXIT_CONFIG;
        snprintf(first, sizeof first, "nothing to back up: set SAUVE_PG_DATABASES or PGDATABASE");
    }
    report(args, "postgres", pg_ok, pgdetail);

    if (args->json)
        printf("{\"ok\":%s,\"exit_code\":%d,\"problem\":%s%s%s}\n", code == 0 ? "true" : "false", code,
               first[0] ? "\"" : "", first[0] ? "see log" : "null", first[0] ? "\"" : "");
    if (code == SV_EXIT_OK)
        outcome_set(out, SV_EXIT_OK, "check ok: configuration valid, storage and postgres reachable");
    else
        outcome_set(out, code, "check failed: %s", first);
}
