/* The outcome of a command: its exit code and the summary line that ends
 * the run (cli/commands.h). */
#include <stdarg.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "common/log.h"
#include "common/mem.h"
#include "notify/notify.h"

void outcome_set(struct outcome *out, int code, const char *fmt, ...)
{
    out->code = code;
    va_list ap;
    va_start(ap, fmt);
    char *full = xvasprintf(fmt, ap);
    va_end(ap);
    log_mask_into(out->summary, sizeof out->summary, full);
    free_secret(full);
}

void outcome_append(struct outcome *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *more = xvasprintf(fmt, ap);
    va_end(ap);
    char *full = xasprintf("%s%s", out->summary, more);
    log_mask_into(out->summary, sizeof out->summary, full);
    free_secret(full);
    free_secret(more);
}

void outcome_fail(struct outcome *out, const char *what, const sv_error *err)
{
    if (err->hint[0])
        outcome_set(out, err->code, "%s: %s (hint: %s)", what, err->msg, err->hint);
    else
        outcome_set(out, err->code, "%s: %s", what, err->msg);
}

void outcome_notify(struct outcome *out, notifier *nt, const struct notify_run *run)
{
    char failed[1024];
    if (notify_finish(nt, run, failed, sizeof failed) > 0) {
        if (out->code == SV_EXIT_OK)
            out->code = SV_EXIT_PRUNE;
        outcome_append(out, "; notification failed: %s", failed);
    }
}
