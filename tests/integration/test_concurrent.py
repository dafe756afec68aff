"""Two runs of one series at once (the CronJob's and a manual Job, a retried
Job beside a slow one): each commits its own complete set, and each set
restores. The two runs are started, both held at the same point by a lock
the test holds in PostgreSQL, and released together.

To make them start "in the same second" for certain, the wall clock
(time() and clock_gettime(CLOCK_REALTIME)) is frozen for both with a small
LD_PRELOAD library built here: what is under test is how sauve names a set,
and two runs of one second are exactly the case where a name made of the
start time alone is shared. Everything else (the servers, pg_dump, the
storage) is real; the monotonic clock, which every timeout uses, is not
touched."""

import os
import subprocess
import time

import pytest

from pgdata import assert_same_state, db_state
from pglock import HeldLock
from pgserver import PG_BINDIR
from sauvecli import Sauve, committed_sets, wait_for

FROZEN_TIME_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
/* The wall clock, frozen at $SAUVE_IT_FROZEN_TIME (unix seconds), through
   both ways a program reads it; every other clock is the real one. */
static time_t frozen(void)
{
    static time_t fixed;
    if (!fixed)
        fixed = (time_t)strtoll(getenv("SAUVE_IT_FROZEN_TIME"), NULL, 10);
    return fixed;
}
time_t time(time_t *out)
{
    if (out)
        *out = frozen();
    return frozen();
}
int clock_gettime(clockid_t clock, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE) {
        ts->tv_sec = frozen();
        ts->tv_nsec = 0;
        return 0;
    }
    if (!real)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    return real(clock, ts);
}
"""


@pytest.fixture(scope="module")
def frozen_time_lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("frozen-time")
    src, lib = d / "frozen_time.c", d / "frozen_time.so"
    src.write_text(FROZEN_TIME_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(lib), str(src), "-ldl"], check=True)
    return str(lib)


def frozen_env(lib):
    # Now, to the second, for both runs (S3 signatures must stay within the
    # store's 15 minutes of skew). An ASan build checks that its runtime is
    # loaded first: a preloaded library is allowed here on purpose.
    return {"LD_PRELOAD": lib, "SAUVE_IT_FROZEN_TIME": str(int(time.time())),
            "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=1"}


def two_runs_at_once(pg, runner, db, env):
    """Starts two backups of db that block on the test's lock until both
    wait for it, releases them together, and returns both results."""
    with HeldLock(pg, db, "lock table t in access exclusive mode") as lock:
        procs = [runner.start("backup", env=env) for _ in range(2)]
        try:
            wait_for(lambda: lock.blocked("LOCK TABLE") == 2 or any(p.poll() is not None for p in procs), 120,
                     "both runs' pg_dump to wait for the test's lock")
            assert all(p.poll() is None for p in procs), "a run ended before the barrier"
        finally:
            lock.release()
            results = [runner.finish(p, timeout=300) for p in procs]
    return results


def make_db(pg, dbs):
    db = dbs.empty("twin")
    pg.psql(db, """create table t (id int primary key, v text);
                   insert into t select g, md5(g::text) from generate_series(1, 5000) g;""")
    return db


def check_runs_and_restore(pg, dbs, runner, db, results, ids):
    for r in results:
        assert r.code == 0, r.describe()
        r.check_log_contract()
    assert len(set(ids)) == 2, f"the two runs share a set: {ids}"
    stamp = ids[0][:16]
    assert all(i.startswith(stamp + "-") for i in ids), ids  # same second, two sets
    before = db_state(pg, db)
    for set_id in ids:
        new = dbs.name("restored")
        r = runner.run("restore", f"postgres:{db}", "--set", set_id, "--into", new, "--yes")
        assert r.code == 0, r.describe()
        assert_same_state(before, db_state(pg, new), f"the restore of set {set_id}")


def summary_set_id(result):
    return result.summary["msg"].split("set default/")[1].split(",")[0]


def test_two_runs_in_the_same_second_to_file_storage(pg, dbs, sauve, storage, frozen_time_lib):
    db = make_db(pg, dbs)
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", **frozen_env(frozen_time_lib)}
    results = two_runs_at_once(pg, sauve, db, env)
    sets = committed_sets(storage)
    ids = sorted(m["id"] for _, m in sets)
    assert sorted(summary_set_id(r) for r in results if r.code == 0) == ids
    for d, m in sets:
        assert os.path.basename(d) == m["id"] and m["status"] == "ok", m
    check_runs_and_restore(pg, dbs, sauve, db, results, ids)


def test_two_runs_in_the_same_second_to_s3(pg, dbs, workdir, bucket, frozen_time_lib):
    db = make_db(pg, dbs)
    runner = Sauve(workdir, {"SAUVE_PG_BINDIR": PG_BINDIR, **pg.tcp_env(), **bucket.env})
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", **frozen_env(frozen_time_lib)}
    results = two_runs_at_once(pg, runner, db, env)
    base = f"{bucket.prefix}/default/"
    ids = sorted(k[len(base):].split("/")[0] for k in bucket.keys(base) if k.endswith("/manifest.json"))
    assert sorted(summary_set_id(r) for r in results if r.code == 0) == ids
    for set_id in ids:
        keys = bucket.keys(f"{base}{set_id}/")
        assert keys == [f"{base}{set_id}/manifest.json", f"{base}{set_id}/postgres/{db}.dump.zst"], keys
    assert bucket.uploads() == []
    check_runs_and_restore(pg, dbs, runner, db, results, ids)
