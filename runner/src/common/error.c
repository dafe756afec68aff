#include "common/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"

/* Formats into a fixed buffer the way every message of sauve is bounded:
 * the whole text first, its secrets masked, and only then cut to fit, so
 * that a secret straddling the end cannot leave its first part behind. The
 * unmasked text is wiped before it is freed. (The attribute lets clang's
 * -Wformat-nonliteral, in -Wformat=2, see fmt as the callers' format.) */
__attribute__((format(printf, 3, 0))) static void format_masked(char *dst, size_t size, const char *fmt,
                                                                va_list ap)
{
    char *full = xvasprintf(fmt, ap);
    log_mask_into(dst, size, full);
    free_secret(full);
}

int sv_error_set(sv_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return -1;
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    format_masked(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code ? code : SV_EXIT_FAILED;
    err->hint[0] = '\0';
    errno = saved;
    return -1;
}

int sv_error_hint(sv_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    format_masked(err->hint, sizeof err->hint, fmt, ap);
    va_end(ap);
    return -1;
}

int sv_error_wrap(sv_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *prefix = xvasprintf(fmt, ap);
    va_end(ap);
    /* Truncation is acceptable: the start of the message carries the context. */
    char *full = xasprintf("%s: %s", prefix, err->msg);
    log_mask_into(err->msg, sizeof err->msg, full);
    free_secret(full);
    free_secret(prefix);
    if (!err->code)
        err->code = SV_EXIT_FAILED;
    return -1;
}

void sv_error_clear(sv_error *err)
{
    if (!err)
        return;
    err->code = 0;
    err->msg[0] = '\0';
    err->hint[0] = '\0';
}

bool sv_error_isset(const sv_error *err)
{
    return err && err->code != 0;
}
