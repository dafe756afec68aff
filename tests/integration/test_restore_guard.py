"""A restore refuses to start while a sauve backup of its target runs: exit
75 (temporary: retry later), one line naming the backup's backend, and
nothing changed. Backups are told apart by their application_name ("sauve
backup", sauve's own sessions and pg_dump's), which pg_stat_activity shows
to every role. A restore into another database is not held up, and once
the backup has ended the same restore runs.

The backup is held by the test, never by a sleep: either by a lock that
its pg_dump waits for (pglock.HeldLock), or by a pg_dump wrapper that says
it started and waits on a FIFO before running the real one (the session
counting the rows of the dump's snapshot is then open on the database)."""

import os
import re
import threading

from conftest import make_bindir
from pglock import HeldLock
from pgserver import quote_literal
from sauvecli import committed_sets, wait_for

BACKUP_APP = "sauve backup"


def backup_sessions(pg, db=None):
    """pids of the sessions of sauve backups (on db when given), as the
    superuser sees them."""
    where = f" and datname = {quote_literal(db)}" if db else ""
    return {int(r[0]) for r in pg.rows(
        "postgres", f"select pid from pg_stat_activity where application_name = '{BACKUP_APP}'{where}")}


def rows(pg, db):
    return pg.rows(db, "select id, v from t order by id")


def scratch_dbs(pg):
    return pg.rows("postgres", "select datname from pg_database where datname like 'sauve\\_%'")


# While the backup is held, a restore that did not refuse would wait for
# the test's lock (its safety backup does): bounded, so that it fails.
HELD_RUN_S = 180


def refused(r, db, pids):
    """r is the refusal of a restore: 75, the backup's database and one of
    its backends named, nothing changed, and what to do. The backend it
    names (an int)."""
    assert r.code == 75, r.describe()
    msg = r.summary["msg"]
    assert f"a sauve backup of database {db} is running (backend " in msg, msg
    assert "): nothing was changed (hint: run the restore again once the backup has ended" in msg, msg
    assert "suspend the backup CronJob" in msg and "\n" not in msg, msg
    m = re.search(r"\(backend (\d+) as ", msg)
    assert m and int(m.group(1)) in pids, (msg, pids)
    return int(m.group(1))


def test_a_restore_refuses_to_replace_a_database_whose_backup_runs(pg, sauve, dbs, storage):
    db = dbs.empty("guard")
    pg.psql(db, "create table t (id int primary key, v text); "
                "insert into t select g, 'set one' from generate_series(1, 200) g")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"}
    r = sauve.run("backup", env=env)
    assert r.code == 0, r.describe()
    [(_, first)] = committed_sets(storage)
    pg.psql(db, "update t set v = 'changed after set one'")
    changed = rows(pg, db)
    other = dbs.empty("elsewhere")  # exists and is empty: a restore inspects it

    with HeldLock(pg, db, "lock table t in access exclusive mode") as lock:
        p = sauve.start("backup", env=env)
        try:
            wait_for(lambda: lock.blocked("LOCK TABLE") or p.poll() is not None, 120,
                     "the backup's pg_dump to wait for the test's lock")
            assert p.poll() is None, "the backup ended before the test held it"
            held = backup_sessions(pg, db)
            assert set(lock.blocked_pids()) & held, "pg_dump does not carry the backup's application_name"

            # replacing the database being dumped: refused, nothing changed
            r = sauve.run("restore", f"postgres:{db}", "--set", first["id"], "--clean", "--confirm", db, env=env,
                          timeout=HELD_RUN_S)
            pid = refused(r, db, held)
            # as the superuser the restore sees where the backup runs from, and since when
            assert re.search(rf"\(backend {pid} as postgres from 127\.0\.0\.1, since "
                             r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; 1 other session\(s\) of sauve backups\)",
                             r.summary["msg"]), r.summary["msg"]
            # restoring into it without --clean is refused for what it is: not empty
            r = sauve.run("restore", f"postgres:{db}", "--into", db, "--yes", env=env, timeout=HELD_RUN_S)
            assert r.code == 1 and "is not empty" in r.summary["msg"], r.describe()

            # another database is not held up by a backup of this one
            r = sauve.run("restore", f"postgres:{db}", "--set", first["id"], "--into", other, "--yes", env=env,
                          timeout=HELD_RUN_S)
            assert r.code == 0, r.describe()
            assert rows(pg, other) == [[str(i), "set one"] for i in range(1, 201)]

            assert p.poll() is None, "the held backup ended while held"
            assert scratch_dbs(pg) == []
            assert len(committed_sets(storage)) == 1, "a safety set was written by a refused restore"
        finally:
            lock.release()
            b = sauve.finish(p, 300)
    assert b.code == 0, b.describe()
    # the lock was released before anything read the table: nothing was changed
    assert rows(pg, db) == changed

    # the backup has ended: the same restore runs
    r = sauve.run("restore", f"postgres:{db}", "--set", first["id"], "--clean", "--confirm", db, env=env)
    assert r.code == 0, r.describe()
    assert rows(pg, db) == [[str(i), "set one"] for i in range(1, 201)]


class HeldDump:
    """A SAUVE_PG_BINDIR whose pg_dump says it started and waits on a FIFO
    until release(): sauve's own session of the backup (the row counts in
    the snapshot pg_dump will use) is then open on the database."""

    def __init__(self, workdir):
        self.fifo = os.path.join(workdir, "hold")
        os.mkfifo(self.fifo)
        self.bindir = make_bindir(workdir, {
            "pg_dump": f'touch "$DIR/started"; exec 3< "{self.fifo}"; exec "$REAL" "$@"'})
        self.started = os.path.join(self.bindir, "started")

    def release(self):
        # opening the write end lets the reader's open return; a thread, so
        # that a pg_dump that never got that far cannot block the test
        def opener():
            with open(self.fifo, "w"):
                pass
        t = threading.Thread(target=opener, daemon=True)
        t.start()
        return t


def test_a_restore_into_an_empty_database_and_of_globals_wait_for_its_backup(pg, sauve, dbs, workdir, storage,
                                                                            roles_guard):
    src = dbs.empty("src")
    pg.psql(src, "create table t (id int primary key, v text); insert into t values (1, 'from src')")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": src, "SAUVE_PG_GLOBALS": "true"})
    assert r.code == 0, r.describe()
    busy = dbs.empty("busy")  # exists, empty: a restore would load it in place
    # a restore role as the README has it: LOGIN CREATEDB, no pg_read_all_stats
    role = "restorer_" + os.urandom(3).hex()
    pg.psql("postgres", f"create role {role} login createdb password 'pw-{role}'")
    as_role = {"PGUSER": role, "PGPASSWORD": f"pw-{role}"}

    hold = HeldDump(workdir)
    p = sauve.start("backup", env={"SAUVE_PG_DATABASES": busy, "SAUVE_PG_GLOBALS": "false",
                                   "SAUVE_PG_ROW_COUNTS": "exact", "SAUVE_PG_BINDIR": hold.bindir})
    opener = None
    try:
        wait_for(lambda: os.path.exists(hold.started) or p.poll() is not None, 120, "the backup's pg_dump to start")
        assert p.poll() is None, "the backup ended before the test held it"
        held = backup_sessions(pg, busy)
        assert held, "the backup's own session does not carry its application_name"

        r = sauve.run("restore", f"postgres:{src}", "--into", busy, "--yes", timeout=HELD_RUN_S)
        refused(r, busy, held)
        assert " as postgres from 127.0.0.1, since " in r.summary["msg"], r.summary["msg"]

        # a role that may not see the backup's address still sees the backup
        r = sauve.run("restore", f"postgres:{src}", "--into", busy, "--yes", env=as_role, timeout=HELD_RUN_S)
        refused(r, busy, held)
        assert ("as postgres; its address and start are shown only to superusers and members of "
                "pg_read_all_stats") in r.summary["msg"], r.summary["msg"]
        pg.psql("postgres", f"grant pg_read_all_stats to {role}")
        r = sauve.run("restore", f"postgres:{src}", "--into", busy, "--yes", env=as_role, timeout=HELD_RUN_S)
        refused(r, busy, held)
        assert " as postgres from 127.0.0.1, since " in r.summary["msg"], r.summary["msg"]

        # the cluster's roles are not replaced while any database is backed up
        before = pg.rows("postgres", "select rolname, rolpassword from pg_authid order by 1")
        r = sauve.run("restore", "postgres:globals", "--yes", timeout=HELD_RUN_S)
        refused(r, busy, held)
        assert pg.rows("postgres", "select rolname, rolpassword from pg_authid order by 1") == before

        assert pg.scalar(busy, "select count(*) from pg_class where relname = 't'") == "0"
        assert p.poll() is None, "the held backup ended while held"
    finally:
        opener = hold.release()
        b = sauve.finish(p, 300)
        opener.join(60)
    assert b.code == 0, b.describe()
    assert backup_sessions(pg, busy) == set()

    r = sauve.run("restore", f"postgres:{src}", "--into", busy, "--yes")
    assert r.code == 0, r.describe()
    assert pg.rows(busy, "select id, v from t") == [["1", "from src"]]


def test_pg_dump_and_sauve_itself_carry_the_backup_application_name(pg, sauve, dbs, workdir):
    """What a restore looks for: while held, every session of the backup is
    "sauve backup", and a restore's own sessions are not (a restore must not
    take another restore, or itself, for a backup)."""
    db = dbs.empty("names")
    pg.psql(db, "create table t (id int primary key, v text); insert into t values (1, 'x')")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"}
    with HeldLock(pg, db, "lock table t in access exclusive mode") as lock:
        p = sauve.start("backup", env=env)
        try:
            wait_for(lambda: lock.blocked() >= 2 or p.poll() is not None, 120,
                     "the dump and the row counts to wait for the test's lock")
            assert p.poll() is None
            names = pg.rows("postgres", f"select application_name, query from pg_stat_activity "
                                        f"where datname = {quote_literal(db)} and pid <> {lock.pid} "
                                        f"and backend_type = 'client backend'")
            # pg_dump's LOCK TABLE and sauve's count, both the backup's
            assert sorted(n for n, _ in names) == [BACKUP_APP, BACKUP_APP], names
            assert any(q.startswith("LOCK TABLE") for _, q in names), names
        finally:
            lock.release()
            b = sauve.finish(p, 300)
    assert b.code == 0, b.describe()
    # a restore into a new database: its pg_restore is "sauve", never "sauve backup"
    fake = make_bindir(workdir, {"pg_restore": 'echo "$PGAPPNAME" > "$DIR/appname"; exec "$REAL" "$@"'})
    new = dbs.expect(dbs.name("copy"))
    r = sauve.run("restore", f"postgres:{db}", "--into", new, "--yes", env={**env, "SAUVE_PG_BINDIR": fake})
    assert r.code == 0, r.describe()
    with open(os.path.join(fake, "appname")) as f:
        assert f.read().strip() == "sauve"
    assert pg.scalar(new, "select v from t") == "x"
