"""A backup stopped by SIGTERM (Job deadline, eviction, node drain) in the
middle of a dump: it exits 1 with a summary that says it was interrupted,
writes no manifest, and removes what it had stored (the globals already
uploaded, the multipart upload of the dump under way) well within the 30 s
Kubernetes gives between SIGTERM and SIGKILL; an earlier set is untouched.

The dump is held in the middle, deterministically, by a lock the test
holds: pg_dump writes the table data first and then reads the large
objects, and reading one needs a lock on pg_largeobject that conflicts with
the test's SHARE lock. The table data (12 MiB of random bytes, which zstd
cannot shrink) fills more than two 5 MiB parts, so the multipart upload has
started before pg_dump waits."""

import os
import signal
import time

from pglock import HeldLock
from pgserver import PG_BINDIR
from sauvecli import Sauve, all_files, committed_sets, snapshot, wait_for

MiB = 1024 * 1024
CLEANUP_S = 20  # SIGNALS_CLEANUP_S: what sauve gives its cleanup after SIGTERM


def make_db(pg, dbs, mib=12):
    db = dbs.empty("stop")
    pg.psql(db, f"""
        create table blobs (id int primary key, data bytea);
        insert into blobs
        select g, (select string_agg(decode(md5(random()::text || g || s), 'hex'), ''::bytea)
                   from generate_series(1, 64) s)
        from generate_series(1, {mib * 1024}) g;
        select lo_from_bytea(0, 'read last, under the test''s lock');""")
    return db


def interrupt_mid_dump(pg, runner, db, env, started):
    """Starts a backup, waits until its pg_dump waits for the test's lock
    on pg_largeobject and started() is true, sends SIGTERM, and returns the
    result and the seconds from SIGTERM to exit."""
    with HeldLock(pg, db, "lock table pg_catalog.pg_largeobject in share mode") as lock:
        p = runner.start("backup", env=env)
        try:
            wait_for(lambda: (lock.blocked() and started()) or p.poll() is not None, 120,
                     "the dump to be under way and waiting for the test's lock")
            assert p.poll() is None, "sauve ended before it was interrupted"
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            r = runner.finish(p, timeout=CLEANUP_S + 30)
            elapsed = time.monotonic() - t0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    return r, elapsed


def check_interrupted(r, elapsed):
    assert r.code == 1, r.describe()
    r.check_log_contract()
    msg = r.summary["msg"]
    assert msg.startswith("backup interrupted: stopped by SIGTERM"), msg
    assert "not committed" in msg and "what it had stored was removed" in msg, msg
    assert elapsed < CLEANUP_S, f"sauve took {elapsed:.1f}s to stop after SIGTERM"


def test_sigterm_mid_dump_to_s3_leaves_nothing_of_the_run(pg, dbs, workdir, bucket):
    runner = Sauve(workdir, {"SAUVE_PG_BINDIR": PG_BINDIR, **pg.tcp_env(), **bucket.env})
    early_db = dbs.empty("early")
    pg.psql(early_db, "create table t (x int); insert into t values (1)")
    r = runner.run("backup", env={"SAUVE_PG_DATABASES": early_db})
    assert r.code == 0, r.describe()
    base = f"{bucket.prefix}/default/"
    early = {k: bucket.client.head_object(Bucket=bucket.name, Key=k)["ETag"] for k in bucket.keys(base)}
    assert len(early) == 3, early  # globals, the database, the manifest

    db = make_db(pg, dbs)
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "true", "SAUVE_S3_PART_SIZE": "5",
           "SAUVE_ZSTD_LEVEL": "1"}
    dump_suffix = f"/postgres/{db}.dump.zst"

    def dump_upload_started():
        return [k for k, _ in bucket.uploads() if k.endswith(dump_suffix)]

    r, elapsed = interrupt_mid_dump(pg, runner, db, env, dump_upload_started)
    check_interrupted(r, elapsed)
    # the run had stored its globals and was uploading its dump
    assert r.any_line("postgres:globals: stored"), r.describe()

    left = {k: bucket.client.head_object(Bucket=bucket.name, Key=k)["ETag"] for k in bucket.keys(base)}
    assert left == early, f"objects of the interrupted run remain: {sorted(set(left) - set(early))}"
    assert bucket.uploads() == [], f"multipart uploads remain: {bucket.uploads()}"
    r = runner.run("list", "--json")
    assert r.code == 0, r.describe()


def test_sigterm_mid_dump_to_file_storage_leaves_nothing_of_the_run(pg, dbs, sauve, storage):
    early_db = dbs.empty("early")
    pg.psql(early_db, "create table t (x int); insert into t values (1)")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": early_db})
    assert r.code == 0, r.describe()
    (early_dir, _), = committed_sets(storage)
    before = snapshot(storage)

    db = make_db(pg, dbs, mib=2)
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "true"}

    def dump_started():
        return [f for f in all_files(storage) if f".{db}.dump.zst.tmp-" in os.path.basename(f)]

    r, elapsed = interrupt_mid_dump(pg, sauve, db, env, dump_started)
    check_interrupted(r, elapsed)
    assert r.any_line("postgres:globals: stored"), r.describe()
    assert snapshot(storage) == before, sorted(set(snapshot(storage)) - set(before))
    assert [d for d in os.listdir(os.path.join(storage, "default"))] == [os.path.basename(early_dir)]
