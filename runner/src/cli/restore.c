/* sauve restore KIND:NAME: one source of a set back into its target
 * (restore/), reported in the summary line. */
#include "cli/commands.h"
#include "common/log.h"
#include "restore/restore.h"
#include "storage/storage.h"

void cmd_restore(const struct cli_args *args, const sv_config *cfg, struct outcome *out)
{
    struct restore_request req = {
        .spec = args->nargs == 1 ? args->args[0] : NULL,
        .set = args->set,
        .load = {.into = args->into,
                 .clean = args->clean,
                 .no_owner = args->no_owner,
                 .to_file = args->to_file,
                 .online = args->online,
                 .to = args->to},
        .no_safety_backup = args->no_safety_backup,
        .yes = args->yes,
        .confirm = args->confirm,
    };
    struct restore_spec spec;
    sv_error err = {0};
    if (restore_parse(&req, &spec, &err) != 0) {
        outcome_fail(out, "usage error", &err);
        return;
    }
    storage *st = command_storage(cfg, "restore failed", out);
    if (!st)
        return;
    struct restore_result res;
    if (restore_run(cfg, st, &spec, &req, &res, &err) == 0) {
        char human[32];
        outcome_set(out, SV_EXIT_OK, "restore ok: %s from set %s/%s into %s (%s) in %ld s", spec.text,
                    cfg->name, res.set_id, res.what, log_human_bytes(res.bytes_in, human, sizeof human),
                    res.seconds);
    } else {
        outcome_fail(out, err.code == SV_EXIT_USAGE ? "usage error" : "restore failed", &err);
    }
    restore_result_free(&res);
    storage_close(st);
}
