#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sv_error_set(sv_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code ? code : SV_EXIT_FAILED;
    err->hint[0] = '\0';
    return -1;
}

int sv_error_hint(sv_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->hint, sizeof err->hint, fmt, ap);
    va_end(ap);
    return -1;
}

int sv_error_wrap(sv_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    /* Truncation is acceptable: the start of the message carries the context. */
    int n = snprintf(err->msg, sizeof err->msg, "%s: ", prefix);
    if (n >= 0 && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, "%s", old);
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
