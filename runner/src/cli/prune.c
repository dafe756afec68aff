/* sauve prune: the retention policy applied now (retention/prune.h); with
 * --dry-run, only the plan. */
#include <stdio.h>

#include "cli/commands.h"
#include "retention/prune.h"
#include "storage/storage.h"

void cmd_prune(const struct cli_args *args, const sv_config *cfg, struct outcome *out)
{
    storage *st = command_storage(cfg, "prune failed", out);
    if (!st)
        return;
    struct prune_options o = {.dry_run = args->dry_run, .print = true, .json = args->json};
    struct prune_result res;
    sv_error err = {0};
    if (prune_run(cfg, st, &o, &res, &err) != 0) {
        outcome_fail(out, "prune failed", &err);
    } else if (o.dry_run) {
        outcome_set(out, SV_EXIT_OK,
                    "prune dry run of '%s': %zu set(s) and %zu interrupted write(s) would be deleted, %zu "
                    "set(s) kept; nothing was deleted",
                    cfg->name, res.sets_to_delete, res.uploads_to_remove, res.sets_kept);
    } else {
        outcome_set(out, SV_EXIT_OK,
                    "prune ok: '%s': %zu set(s) deleted, %zu kept, %zu interrupted write(s) removed",
                    cfg->name, res.sets_deleted, res.sets_kept, res.uploads_removed);
    }
    storage_close(st);
}
