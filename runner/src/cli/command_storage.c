/* The storage a command works on (cli/commands.h): what every command that
 * reads or writes sets opens first, so that each refuses a series name no
 * reader could list and a missing SAUVE_STORAGE the same way. */
#include "catalog/catalog.h"
#include "cli/commands.h"
#include "storage/storage.h"

storage *command_storage(const sv_config *cfg, const char *what, struct outcome *out)
{
    sv_error err = {0};
    storage *st = NULL;
    if (catalog_check_name(cfg->name, &err) == 0 && config_require(cfg, OPT_ID_storage, &err) == 0) {
        st = storage_open(cfg->storage, cfg, &err);
    }
    if (!st)
        outcome_fail(out, what, &err);
    return st;
}
