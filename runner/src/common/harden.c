#include "common/harden.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int harden_process(sv_error *err)
{
    /* The limit first: it also covers the children, even if prctl fails. */
    struct rlimit none = {.rlim_cur = 0, .rlim_max = 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "cannot disable core dumps (RLIMIT_CORE): %s",
                            strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "cannot make the process non-dumpable (PR_SET_DUMPABLE): %s",
                            strerror(errno));
    return 0;
}
