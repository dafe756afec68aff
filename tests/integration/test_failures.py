"""How sauve fails: the exit code Kubernetes acts on, a message that names
what failed, nothing half-written that claims to be a backup, and restores
that refuse rather than damage a database."""

import json
import os
import re
import secrets
import signal
import struct
import subprocess
import time

import pytest

from conftest import make_bindir
from pgdata import assert_same_state, db_state
from pgserver import _harness_env, free_port, pg_bin
from sauvecli import (all_files, committed_sets, forge_artifact, pid_alive, processes_matching,
                      set_dirs, snapshot, wait_for)


def lines_matching(result, pattern):
    rx = re.compile(pattern, re.I)
    return [m for m in result.messages() if rx.search(m)]


def no_files(storage):
    return all_files(storage) == []


# ---- connection failures: 75, before anything is written -----------------

def test_wrong_password_is_a_temporary_failure_naming_host_and_user(pg, sauve, dbs, storage):
    db = dbs.empty("pw")
    wrong = "wrong-Pw-" + secrets.token_hex(8)
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "PGUSER": "app", "PGPASSWORD": wrong})
    assert r.code == 75, r.describe()
    assert r.any_line("127.0.0.1", "app", level=("error", "fatal")) or \
        r.any_line("127.0.0.1", "app", "exit_code"), (
            "no error line names both the host and the user\n" + r.describe())
    assert wrong not in r.all_output()
    assert no_files(storage), all_files(storage)


def test_server_not_listening_is_a_temporary_failure(pg, sauve, dbs, storage):
    db = dbs.empty("down")
    port = free_port()
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "PGPORT": str(port)}, timeout=120)
    assert r.code == 75, r.describe()
    assert lines_matching(r, rf"127\.0\.0\.1.*{port}|{port}.*127\.0\.0\.1"), (
        "no line names the host and port\n" + r.describe())
    assert no_files(storage), all_files(storage)


# ---- a source that fails --------------------------------------------------

def test_nonexistent_database_is_not_a_success(pg, sauve, dbs, storage):
    good = dbs.empty("good")
    missing = "missing_" + secrets.token_hex(3)
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": f"{good},{missing}"})
    print(f"exit code for a nonexistent database: {r.code}")
    assert r.code != 0, r.describe()
    assert r.code in (1, 2, 78), r.describe()
    assert lines_matching(r, re.escape(missing)), "no line names the missing database\n" + r.describe()
    sets = committed_sets(storage)
    for _d, m in sets:
        for a in m["artifacts"]:
            if a.get("name") == missing:
                assert a["status"] == "failed" and a.get("error"), a
        assert m["status"] != "ok", m
    if r.code == 2:
        (_d, m), = sets
        assert m["status"] == "partial"
        names = {a["name"]: a["status"] for a in m["artifacts"]}
        assert names.get(good) == "ok" and names.get(missing) == "failed", names
    else:
        assert sets == [], "no set may be committed when the run failed"


def test_pg_dump_killed_mid_stream_commits_nothing_and_keeps_the_earlier_set(
        pg, sauve, dbs, storage, workdir, small_template):
    db = dbs.clone(small_template)
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"}
    r = sauve.run("backup", env=env)
    assert r.code == 0, r.describe()
    (good_dir, good_manifest), = committed_sets(storage)
    before = snapshot(good_dir)

    fake = make_bindir(workdir, {"pg_dump": '"$REAL" "$@" | head -c 100000\nkill -9 $$'})
    r = sauve.run("backup", env=dict(env, SAUVE_PG_BINDIR=fake))
    assert r.code == 1, r.describe()
    assert lines_matching(r, re.escape(db)), "no line names the database\n" + r.describe()
    sets = committed_sets(storage)
    assert [d for d, _ in sets] == [good_dir], f"committed sets after the failed run: {sets}"
    assert snapshot(good_dir) == before, "the earlier set was modified"
    for d in set_dirs(storage):
        if d != good_dir:
            assert not os.path.exists(os.path.join(d, "manifest.json")), d

    lst = sauve.run("list", "--json")
    assert lst.code == 0, lst.describe()
    listed = json.loads(lst.stdout)["sets"]
    assert [s["id"] for s in listed if s["status"] == "ok"] == [good_manifest["id"]], listed
    assert all(s["status"] == "incomplete" for s in listed if s["id"] != good_manifest["id"]), listed


def test_sigterm_during_backup_stops_promptly_and_leaves_nothing(
        pg, sauve, dbs, storage, workdir, small_template, reap):
    db = dbs.clone(small_template)
    token = "sauve-it-blocker-" + secrets.token_hex(4)
    reap.append(token)
    # A pg_dump that sends part of the dump, then hangs with its stdout open.
    fake = make_bindir(workdir, {"pg_dump": f"""echo $$ > "$DIR/pid"
"$REAL" "$@" | head -c 300000
touch "$DIR/emitted"
exec -a {token} sleep 100000"""})
    p = sauve.start("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false",
                                   "SAUVE_PG_BINDIR": fake})
    try:
        wait_for(lambda: os.path.exists(os.path.join(fake, "emitted")) or p.poll() is not None,
                 60, "the fake pg_dump to emit its bytes")
        assert p.poll() is None, "sauve exited before the dump was interrupted"
        wait_for(lambda: processes_matching(token), 10, "the fake pg_dump to block")
        dump_pid = int(open(os.path.join(fake, "pid")).read())
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        r = sauve.finish(p, timeout=15)
        elapsed = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert r.code != 0, r.describe()
    assert elapsed < 10, f"sauve took {elapsed:.1f}s to stop after SIGTERM"
    r.check_log_contract()
    assert committed_sets(storage) == []
    assert not [f for f in all_files(storage) if f.endswith("manifest.json")]
    wait_for(lambda: not processes_matching(token) and not pid_alive(dump_pid), 5,
             "the fake pg_dump to be gone")


# ---- configuration: 78 ----------------------------------------------------

def test_malformed_yaml_names_the_line(sauve, storage, workdir):
    cfg = os.path.join(workdir, "config.yaml")
    text = ("# sauve configuration\n"
            "# (comments count as lines)\n"
            f"storage: file://{storage}\n"
            "name: test\n"
            "pg:\n"
            "  host: 127.0.0.1\n"
            "  user: app: extra\n"          # line 7: a mapping value where none may be
            "  databases: [a, b]\n")
    with open(cfg, "w") as f:
        f.write(text)
    r = sauve.run("backup", env={"SAUVE_CONFIG": cfg}, unset=("SAUVE_STORAGE",))
    assert r.code == 78, r.describe()
    assert lines_matching(r, r"line\W{0,3}7\b"), "no message says line 7\n" + r.describe()
    assert no_files(storage)


def test_unknown_variable_is_reported_with_the_closest_name(sauve, dbs, storage):
    db = dbs.empty("typo")
    r = sauve.run("backup", env={"SAUVE_PG_DATABSES": db, "PGDATABASE": db})
    warn = r.any_line("SAUVE_PG_DATABSES", "SAUVE_PG_DATABASES", level=("warn", "warning"))
    assert warn, "no warning names the unknown variable and suggests SAUVE_PG_DATABASES\n" + r.describe()
    assert r.code == 0, r.describe()


def test_missing_storage_is_a_configuration_error(sauve, dbs, workdir):
    db = dbs.empty("nostore")
    before = set(all_files(workdir))
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db}, unset=("SAUVE_STORAGE",))
    assert r.code == 78, r.describe()
    assert lines_matching(r, "SAUVE_STORAGE"), "no message names SAUVE_STORAGE\n" + r.describe()
    new = {f for f in set(all_files(workdir)) - before if "/termination-" not in f}
    assert new == set(), f"sauve wrote files without a storage: {new}"


def test_invalid_zstd_level_is_a_configuration_error(sauve, dbs, storage):
    db = dbs.empty("lvl")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_ZSTD_LEVEL": "20"})
    assert r.code == 78, r.describe()
    assert lines_matching(r, "SAUVE_ZSTD_LEVEL"), r.describe()
    assert no_files(storage)


def test_no_pg_dump_in_bindir_is_a_configuration_error(sauve, dbs, storage, workdir):
    db = dbs.empty("nobin")
    empty = os.path.join(workdir, "emptybin")
    os.mkdir(empty)
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_BINDIR": empty})
    assert r.code == 78, r.describe()
    assert lines_matching(r, "pg_dump"), r.describe()
    assert committed_sets(storage) == []


def test_secret_on_the_command_line_is_refused(sauve, dbs, storage):
    db = dbs.empty("argv")
    secret = "argv-secret-" + secrets.token_hex(6)
    r = sauve.run("backup", "--pg-password", secret, env={"SAUVE_PG_DATABASES": db})
    assert r.code == 64, r.describe()
    assert secret not in r.all_output()
    assert no_files(storage)


# ---- restore refusals ----------------------------------------------------

@pytest.fixture
def backed_up(pg, sauve, dbs, storage, small_template):
    """A database (clone of the small template) and one committed set of it."""
    db = dbs.clone(small_template)
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"})
    assert r.code == 0, r.describe()
    (set_dir, m), = committed_sets(storage)
    return db, set_dir, m


def test_restore_without_yes_and_no_terminal_is_refused(pg, sauve, dbs, backed_up):
    db, _set_dir, _m = backed_up
    new = dbs.name("noyes")
    r = sauve.run("restore", f"postgres:{db}", "--into", new)
    assert r.code == 64, r.describe()
    assert lines_matching(r, "--yes"), r.describe()
    assert not pg.database_exists(new)


def test_restore_into_non_empty_database_without_clean_is_refused(pg, sauve, storage, backed_up):
    db, _set_dir, _m = backed_up
    pg.psql(db, "insert into hr.employees (name) values ('added after the backup')")
    state = db_state(pg, db)
    r = sauve.run("restore", f"postgres:{db}", "--yes")
    assert r.code == 1, r.describe()
    assert lines_matching(r, re.escape(db) + ".*--clean|--clean.*" + re.escape(db)), (
        "no message names the database and --clean\n" + r.describe())
    assert_same_state(state, db_state(pg, db), f"{db} after the refused restore")
    assert len(committed_sets(storage)) == 1


def _corruption_message(r, key):
    return lines_matching(r, re.escape(key) + r".*(checksum|corrupt|truncat)"
                          r"|(checksum|corrupt|truncat).*" + re.escape(key))


def test_corrupt_artifact_fails_restore_and_creates_nothing(pg, sauve, dbs, backed_up):
    db, set_dir, _m = backed_up
    key = f"postgres/{db}.dump.zst"
    path = os.path.join(set_dir, key)
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(size // 2)
        chunk = f.read(16)
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in chunk))
    new = dbs.name("corrupt")
    r = sauve.run("restore", f"postgres:{db}", "--into", new, "--yes")
    assert r.code == 1, r.describe()
    assert _corruption_message(r, key), "no message names the artifact as corrupt\n" + r.describe()
    assert not pg.database_exists(new), "the restore target exists after a failed restore"


def test_truncated_artifact_fails_clean_restore_and_leaves_target_untouched(
        pg, sauve, storage, backed_up):
    db, set_dir, _m = backed_up
    key = f"postgres/{db}.dump.zst"
    path = os.path.join(set_dir, key)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    pg.psql(db, "delete from sales.events where id % 2 = 0")
    state = db_state(pg, db)
    r = sauve.run("restore", f"postgres:{db}", "--clean", "--no-safety-backup", "--confirm", db)
    assert r.code == 1, r.describe()
    assert _corruption_message(r, key), "no message names the artifact as truncated\n" + r.describe()
    assert_same_state(state, db_state(pg, db), f"{db} after the failed restore")
    assert len(committed_sets(storage)) == 1


def test_clean_restore_writes_a_safety_set_then_replaces_the_database(
        pg, sauve, dbs, storage, backed_up):
    db, set_dir, m = backed_up
    original = db_state(pg, db)
    pg.psql(db, "delete from sales.events where id > 100;"
                "drop view sales.customer_totals;"
                "create table public.added_later (x int); insert into public.added_later values (42);"
                # pg_restore recomputes materialized views; keep this one current
                "refresh materialized view sales.daily_events;")
    changed = db_state(pg, db)
    r = sauve.run("restore", f"postgres:{db}", "--set", m["id"], "--clean", "--confirm", db)
    assert r.code == 0, r.describe()
    assert_same_state(original, db_state(pg, db), f"{db} after --clean restore")

    sets = committed_sets(storage)
    safety = [(d, sm) for d, sm in sets if sm.get("reason") == "safety"]
    assert len(sets) == 2 and len(safety) == 1, [(d, sm.get("reason")) for d, sm in sets]
    sdir, sm = safety[0]
    assert sm["status"] == "ok"
    art = next(a for a in sm["artifacts"] if a["key"] == f"postgres/{db}.dump.zst")
    assert art["status"] == "ok"
    # The safety set holds the database as it was just before the restore.
    check = dbs.name("safety")
    r = sauve.run("restore", f"postgres:{db}", "--set", sm["id"], "--into", check, "--yes")
    assert r.code == 0, r.describe()
    assert_same_state(changed, db_state(pg, check), "the safety backup")


def test_replaced_artifact_of_same_size_is_caught_by_checksum_before_touching_the_target(
        pg, sauve, dbs, storage, backed_up):
    """The stored object is replaced by a *valid* zstd stream of a *valid*
    dump of another database, padded to the recorded size with a zstd
    skippable frame: only the SHA-256 in the manifest can tell. A --clean
    restore must refuse it before it touches the target."""
    db, set_dir, _m = backed_up
    key = f"postgres/{db}.dump.zst"
    path = os.path.join(set_dir, key)
    other = dbs.empty("intruder")
    pg.psql(other, "create table intruder (x int); insert into intruder values (1)")
    dump = subprocess.run(
        [pg_bin("pg_dump"), "-Fc", "-Z0", "-h", pg.datadir, "-p", str(pg.port), "-U", "postgres",
         "-d", other], stdout=subprocess.PIPE, env=_harness_env(), check=True).stdout
    comp = subprocess.run(["zstd", "-q", "-c"], input=dump, stdout=subprocess.PIPE,
                          check=True).stdout
    size = os.path.getsize(path)
    assert len(comp) + 8 <= size
    pad = size - len(comp) - 8
    with open(path, "wb") as f:
        f.write(comp + struct.pack("<II", 0x184D2A50, pad) + b"\0" * pad)
    assert os.path.getsize(path) == size
    assert subprocess.run(["zstd", "-q", "-d", "-c", path], stdout=subprocess.PIPE,
                          check=True).stdout == dump  # still a perfectly readable dump

    state = db_state(pg, db)
    r = sauve.run("restore", f"postgres:{db}", "--clean", "--no-safety-backup", "--confirm", db)
    assert r.code == 1, r.describe()
    assert lines_matching(r, re.escape(key) + r".*(checksum|sha-?256|corrupt)"
                          r"|(checksum|sha-?256|corrupt).*" + re.escape(key)), r.describe()
    assert_same_state(state, db_state(pg, db), f"{db} after the refused restore")
    assert pg.scalar(db, "select count(*) from pg_class where relname = 'intruder'") == "0"


def test_restore_stops_at_the_decompressed_size_the_manifest_recorded(pg, sauve, dbs, backed_up):
    """The manifest says the dump is 100 kB; the object (genuine, its digest
    matching) decompresses to several MB: a decompression bomb looks the
    same. The restore stops at the first byte beyond the recorded size,
    before the loader sees any of it (all is still held back), and creates
    nothing."""
    db, set_dir, m = backed_up
    key = f"postgres/{db}.dump.zst"
    with open(os.path.join(set_dir, key), "rb") as f:
        data = f.read()
    assert next(x for x in m["artifacts"] if x.get("key") == key)["bytes_in"] > 1_000_000
    forge_artifact(set_dir, m, next(x for x in m["artifacts"] if x.get("key") == key), data,
                   bytes_in=100_000)
    target = dbs.name("bomb")
    r = sauve.run("restore", f"postgres:{db}", "--into", target, "--yes")
    assert r.code == 1, r.describe()
    assert r.any_line("more than the 100000 bytes the manifest recorded", key), r.describe()
    assert not pg.database_exists(target)


def test_object_longer_than_recorded_is_refused_at_the_first_extra_byte(pg, sauve, dbs, backed_up):
    db, set_dir, m = backed_up
    key = f"postgres/{db}.dump.zst"
    path = os.path.join(set_dir, key)
    with open(path, "ab") as f:
        f.write(b"\0" * 4096)
    target = dbs.name("longer")
    # the listing already shows the size: the set is damaged, nothing is read
    r = sauve.run("restore", f"postgres:{db}", "--set", m["id"], "--into", target, "--yes")
    assert r.code == 1, r.describe()
    assert r.any_line(key, "more than the", "replaced"), r.describe()
    assert not pg.database_exists(target)
