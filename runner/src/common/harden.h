/*
 * What sauve does to itself before anything else: no core dump. sauve holds
 * secrets in memory (the PostgreSQL password, S3 keys and session tokens,
 * the SSE-C key, notification URLs) and aborts on out-of-memory by design
 * (common/mem.h); a core file written then would hold them all, readable
 * by whoever reads the node's core files.
 */
#ifndef SAUVE_COMMON_HARDEN_H
#define SAUVE_COMMON_HARDEN_H

#include "common/error.h"

/*
 * Makes the process not dumpable (prctl PR_SET_DUMPABLE 0: no core file,
 * whatever core_pattern says, and no ptrace or /proc/PID/mem access by
 * other processes of the same user) and sets RLIMIT_CORE to 0, soft and
 * hard, which children inherit: pg_dump, whose environment holds the
 * password, becomes dumpable again at exec, but writes no core file (a
 * core_pattern piping to a program is not bound by the limit; systemd's
 * and most collectors honour it). Returns 0, or -1 with err set when
 * either call failed (the process then runs, less protected: the caller
 * warns).
 */
int harden_process(sv_error *err);

#endif
