"""PostgreSQL backup and restore against a real server: what sauve stores is
what the server held, readable by pg_restore without sauve, and sauve's own
restore gives the same database back."""

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
import types

import pytest

from conftest import make_bindir
from pgdata import assert_same_state, db_state, large_objects, user_tables
from pgserver import PG_BINDIR, _harness_env, pg_bin, quote_ident
from sauvecli import (SET_ID_RE, Sauve, all_files, committed_sets,
                      set_dirs, sha256_file, snapshot)


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


def parse_time(s):
    t = dt.datetime.fromisoformat(str(s).replace("Z", "+00:00"))
    assert t.tzinfo is not None, f"timestamp without time zone: {s!r}"
    return t


def set_id_time(set_id):
    """The start time in a set id (20261122T020000Z-482a3f91: before the '-')."""
    return dt.datetime.strptime(set_id.split("-")[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)


def zstd_cat(path):
    p = subprocess.run(["zstd", "-q", "-d", "-c", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    assert p.returncode == 0, f"zstd -d {path}: {p.stderr.decode()}"
    return p.stdout


def pg_restore_list(path):
    """`zstd -dc path | pg_restore -l` (the TOC of a custom-format dump).
    pg_restore stops reading after the TOC, so the decompressed dump is
    handed over whole rather than through a pipe that would SIGPIPE zstd."""
    p = subprocess.run([pg_bin("pg_restore"), "-l"], input=zstd_cat(path),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_harness_env())
    assert p.returncode == 0, f"pg_restore -l: {p.stderr.decode()}"
    return p.stdout.decode("utf-8")


def pg_restore_into(pg, path, db):
    """`zstd -dc path | pg_restore -d db`, run by the harness, not sauve."""
    z = subprocess.Popen(["zstd", "-q", "-d", "-c", path], stdout=subprocess.PIPE)
    p = subprocess.run(
        [pg_bin("pg_restore"), "--exit-on-error", "-h", pg.datadir, "-p", str(pg.port),
         "-U", "postgres", "-d", db],
        stdin=z.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_harness_env())
    z.stdout.close()
    assert z.wait() == 0, f"zstd -d {path} failed"
    assert p.returncode == 0, f"pg_restore into {db}: {p.stderr}"


# ---- one nightly backup of two databases, shared by the read-only tests ----

@pytest.fixture(scope="module")
def nightly(pg, big_template, small_template):
    """Backs up two databases (+ globals) once under SAUVE_NAME=nightly."""
    workdir = tempfile.mkdtemp(prefix="sauve-it-nightly-")
    os.chmod(workdir, 0o755)
    storage = os.path.join(workdir, "storage")
    os.mkdir(storage)
    a = "nightly_big"
    b = "nightly_small"
    created = []
    try:
        pg.create_database(a, template=big_template)
        created.append(a)
        pg.create_database(b, template=small_template)
        created.append(b)
        # b differs from a in more than row counts.
        pg.psql(b, "insert into hr.employees (name, city) values ('only in b', 'Lyon');"
                   "drop view sales.customer_totals;")
        sv = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage,
                             "SAUVE_PG_BINDIR": PG_BINDIR, **pg.tcp_env()})
        before = utcnow()
        res = sv.run("backup", env={"SAUVE_PG_DATABASES": f"{a},{b}",
                                    "SAUVE_NAME": "nightly"}, check_log=False)
        after = utcnow()
        sets = committed_sets(storage, "nightly")
        ns = types.SimpleNamespace(
            result=res, storage=storage, workdir=workdir, sauve=sv, a=a, b=b,
            before=before, after=after, sets=sets,
            set_dir=sets[0][0] if len(sets) == 1 else None,
            manifest=sets[0][1] if len(sets) == 1 else None,
            state={a: db_state(pg, a), b: db_state(pg, b)})
        yield ns
    finally:
        for d in created:
            pg.drop_database(d)
        shutil.rmtree(workdir, ignore_errors=True)


def _need_set(nightly):
    r = nightly.result
    assert r.code == 0, r.describe()
    assert len(nightly.sets) == 1, (
        f"expected exactly one committed set under nightly/, found "
        f"{[d for d, _ in nightly.sets]}; set dirs: {set_dirs(nightly.storage, 'nightly')}\n"
        + r.describe())
    return nightly.set_dir, nightly.manifest


def test_backup_of_two_databases_exits_0_with_one_set(nightly):
    nightly.result.check_log_contract()
    set_dir, _m = _need_set(nightly)
    assert SET_ID_RE.match(os.path.basename(set_dir)), set_dir
    assert nightly.result.summary["level"] in ("info", "notice"), nightly.result.summary


def test_manifest_describes_the_set(nightly, pg):
    set_dir, m = _need_set(nightly)
    set_id = os.path.basename(set_dir)
    assert m["format"] == 1
    assert m["id"] == set_id
    assert m["name"] == "nightly"
    assert m["status"] == "ok"
    assert isinstance(m.get("reason"), str) and m["reason"] != "safety", m.get("reason")
    started, finished = parse_time(m["started_at"]), parse_time(m["finished_at"])
    second = dt.timedelta(seconds=1)
    assert nightly.before - second <= started <= finished <= nightly.after + second, (
        m["started_at"], m["finished_at"], nightly.before, nightly.after)
    assert nightly.before - second <= set_id_time(set_id) <= nightly.after, set_id

    keys = sorted(a["key"] for a in m["artifacts"])
    assert keys == sorted([f"postgres/{nightly.a}.dump.zst", f"postgres/{nightly.b}.dump.zst",
                           "postgres/globals.sql.zst"]), keys
    pg_dump_version = subprocess.run([pg_bin("pg_dump"), "--version"], stdout=subprocess.PIPE,
                                     text=True, check=True).stdout.split()[2]
    for art in m["artifacts"]:
        assert art["kind"] == "postgres", art
        assert art["status"] == "ok", art
        assert not art.get("error"), art
        is_globals = art["key"] == "postgres/globals.sql.zst"
        if not is_globals:
            assert art["name"] == art["key"][len("postgres/"):-len(".dump.zst")], art
        sv = str(art["server_version"])
        assert (pg.server_version.split()[0] in sv
                or sv == str(pg.server_version_num)), (sv, pg.server_version)
        assert art["tool"] == ("pg_dumpall" if is_globals else "pg_dump"), art
        assert pg_dump_version in str(art["tool_version"]), (art["tool_version"], pg_dump_version)


def test_stored_objects_match_the_manifest(nightly):
    set_dir, m = _need_set(nightly)
    stored = set(os.path.relpath(p, set_dir) for p in all_files(set_dir))
    expected = {"manifest.json"} | {a["key"] for a in m["artifacts"]}
    assert stored == expected, f"files in the set dir {sorted(stored)} != {sorted(expected)}"
    for art in m["artifacts"]:
        path = os.path.join(set_dir, art["key"])
        assert art["sha256"] == sha256_file(path), art["key"]
        assert art["bytes_out"] == os.path.getsize(path), art["key"]
        assert art["bytes_in"] == len(zstd_cat(path)), art["key"]
        assert art["bytes_out"] < art["bytes_in"], art  # it is compressed


def test_database_dump_is_custom_format_that_pg_restore_lists(nightly, pg):
    set_dir, _m = _need_set(nightly)
    for db in (nightly.a, nightly.b):
        path = os.path.join(set_dir, "postgres", f"{db}.dump.zst")
        assert zstd_cat(path)[:5] == b"PGDMP", "not a pg_dump custom-format archive"
        toc = pg_restore_list(path)
        assert re.search(r"^;\s+Compression: (0|none)\s*$", toc, re.M), (
            "dump is compressed inside (expected -Z0):\n" + toc[:800])
        assert re.search(rf"^;\s+dbname: {re.escape(db)}\s*$", toc, re.M), toc[:800]
        for schema, table in user_tables(pg, db):
            kind = "MATERIALIZED VIEW DATA" if table == "daily_events" else "TABLE DATA"
            assert re.search(rf"^\d+; .* {kind} {schema} {table} ", toc, re.M), (
                f"{kind} {schema}.{table} missing from the TOC of {db}")
        n_blobs = len(re.findall(r"^\d+; \d+ \d+ BLOB ", toc, re.M))
        assert n_blobs == len(large_objects(pg, db))
        for fn in ("record_change", "customer_total"):
            assert re.search(rf" FUNCTION \w+ {fn}\(", toc), fn
        assert re.search(r" TRIGGER sales orders orders_audit ", toc)
        assert re.search(r" SEQUENCE sales invoice_no ", toc)


def test_globals_artifact_is_pg_dumpall_sql_with_every_role(nightly, pg):
    set_dir, _m = _need_set(nightly)
    sql = zstd_cat(os.path.join(set_dir, "postgres", "globals.sql.zst")).decode("utf-8")
    for role in pg.roles():
        assert re.search(rf"^CREATE ROLE {re.escape(role)};$", sql, re.M), role
    app_hash = pg.scalar("postgres", "select rolpassword from pg_authid where rolname = 'app'")
    assert app_hash.startswith("SCRAM-SHA-256$") and app_hash in sql
    assert pg.app_password not in sql and pg.superuser_password not in sql


def test_list_json_shows_the_set(nightly):
    set_dir, m = _need_set(nightly)
    r = nightly.sauve.run("list", "--json", env={"SAUVE_NAME": "nightly"})
    assert r.code == 0, r.describe()
    out = json.loads(r.stdout)
    assert out["name"] == "nightly"
    assert [s["id"] for s in out["sets"]] == [m["id"]]
    s = out["sets"][0]
    assert s["status"] == "ok"
    assert s["reason"] == m["reason"]
    assert parse_time(s["started_at"]) == parse_time(m["started_at"])
    total_out = sum(a["bytes_out"] for a in m["artifacts"])
    total_files = sum(os.path.getsize(p) for p in all_files(set_dir))
    assert s["bytes"] in (total_out, total_files), (s["bytes"], total_out, total_files)
    assert sorted(a["key"] for a in s["artifacts"]) == sorted(a["key"] for a in m["artifacts"])


def test_sauve_restore_into_new_database_equals_source(nightly, pg, dbs):
    set_dir, m = _need_set(nightly)
    new = dbs.name("restored")
    assert not pg.database_exists(new)
    r = nightly.sauve.run("restore", f"postgres:{nightly.a}", "--set", m["id"],
                          "--into", new, "--yes", env={"SAUVE_NAME": "nightly"})
    assert r.code == 0, r.describe()
    assert_same_state(nightly.state[nightly.a], db_state(pg, new), f"restored {new}")
    # Restoring somewhere else must not have touched the storage.
    assert [d for d, _ in committed_sets(nightly.storage, "nightly")] == [set_dir]

    new_b = dbs.name("restored")
    r = nightly.sauve.run("restore", f"postgres:{nightly.b}", "--set", "latest",
                          "--into", new_b, "--yes", env={"SAUVE_NAME": "nightly"})
    assert r.code == 0, r.describe()
    assert_same_state(nightly.state[nightly.b], db_state(pg, new_b), f"restored {new_b}")


def test_pg_restore_alone_restores_the_stored_dump(nightly, pg, dbs):
    set_dir, _m = _need_set(nightly)
    new = dbs.empty("pgrestore")
    pg_restore_into(pg, os.path.join(set_dir, "postgres", f"{nightly.a}.dump.zst"), new)
    assert_same_state(nightly.state[nightly.a], db_state(pg, new), f"pg_restore into {new}")


# ---- tests with their own storage ----------------------------------------

def test_restore_globals_recreates_a_dropped_role_and_is_idempotent(pg, sauve, dbs, roles_guard):
    role = "r_" + os.urandom(3).hex()
    pg.psql("postgres", f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 3 "
                        f"VALID UNTIL '2099-01-01 00:00:00+00' PASSWORD 'role-pw-{role}';"
                        f"GRANT app TO {role};")
    authid_sql = ("select rolname, rolsuper, rolcreatedb, rolcanlogin, rolconnlimit, "
                  "rolvaliduntil, rolpassword from pg_authid where rolname !~ '^pg_' order by 1")
    members_sql = ("select r.rolname, m.rolname from pg_auth_members a join pg_roles r "
                   "on r.oid = a.roleid join pg_roles m on m.oid = a.member order by 1, 2")
    authid, members = pg.rows("postgres", authid_sql), pg.rows("postgres", members_sql)
    db = dbs.empty("g")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db})
    assert r.code == 0, r.describe()

    pg.psql("postgres", f"DROP ROLE {role}")
    for attempt in (1, 2):
        r = sauve.run("restore", "postgres:globals", "--yes")
        assert r.code == 0, f"restore of globals #{attempt}\n" + r.describe()
        assert pg.rows("postgres", authid_sql) == authid, f"roles after restore #{attempt}"
        assert pg.rows("postgres", members_sql) == members, f"memberships after restore #{attempt}"
    # The role's password works again.
    env = dict(_harness_env(), PGPASSWORD=f"role-pw-{role}")
    p = subprocess.run([pg_bin("psql"), "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(pg.port),
                        "-U", role, "-d", db, "-c", "select current_user"],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0 and p.stdout.strip() == role, p.stderr


def _argv_logger():
    # Records each invocation's argv (NUL-separated, one invocation per line
    # of the index file) then becomes the real tool.
    return 'printf "%s\\0" "$TOOL" "$@" >> "$DIR/argv.log"; printf "\\n" >> "$DIR/argv.log"\nexec "$REAL" "$@"'


def test_password_from_file_and_never_in_output_manifest_or_argv(pg, sauve, dbs, workdir, small_template):
    db = dbs.clone(small_template)
    pwfile = os.path.join(workdir, "pgpassword")
    with open(pwfile, "w") as f:
        f.write(pg.superuser_password)
    os.chmod(pwfile, 0o600)
    fake = make_bindir(workdir, {t: _argv_logger() for t in ("pg_dump", "pg_dumpall", "pg_restore")})
    env = {"SAUVE_PG_DATABASES": db, "PGPASSWORD_FILE": pwfile, "SAUVE_PG_BINDIR": fake}
    r = sauve.run("backup", env=env, unset=("PGPASSWORD",))
    assert r.code == 0, r.describe()
    sets = committed_sets(os.path.join(workdir, "storage"))
    assert len(sets) == 1, r.describe()
    new = dbs.name("pwrestore")
    r2 = sauve.run("restore", f"postgres:{db}", "--into", new, "--yes", env=env,
                   unset=("PGPASSWORD",))
    assert r2.code == 0, r2.describe()
    assert int(pg.scalar(new, "select count(*) from sales.events")) == 20_000

    with open(os.path.join(fake, "argv.log"), "rb") as f:
        argv_log = f.read()
    tools = {line.split(b"\0", 1)[0] for line in argv_log.split(b"\n") if line}
    assert {b"pg_dump", b"pg_dumpall", b"pg_restore"} <= tools, (
        f"sauve did not run the tools of SAUVE_PG_BINDIR: {tools}")

    pw = pg.superuser_password
    # the distinctive part too, in case the quote/backslash got mangled
    needles = [pw, pw.split("\\")[-1]]
    places = {"run outputs": r.all_output() + r2.all_output(),
              "child argv": argv_log.decode("utf-8", "replace")}
    for path in all_files(os.path.join(workdir, "storage")):
        with open(path, "rb") as f:
            data = f.read()
        places[path] = data.decode("utf-8", "replace")
        if path.endswith(".zst"):
            places[path + " (decompressed)"] = zstd_cat(path).decode("utf-8", "replace")
    for where, text in places.items():
        for n in needles:
            assert n not in text, f"the password appears in {where}"


def test_password_file_with_trailing_newline(pg, sauve, dbs, workdir):
    """`echo pw > file` is how many secrets get made; the official database
    images strip the trailing newline of *_FILE values, so does sauve."""
    db = dbs.empty("nl")
    pwfile = os.path.join(workdir, "pgpassword")
    with open(pwfile, "w") as f:
        f.write(pg.superuser_password + "\n")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "PGPASSWORD_FILE": pwfile},
                  unset=("PGPASSWORD",))
    assert r.code == 0, r.describe()


def test_all_databases_means_every_connectable_non_template_database(pg, sauve, dbs, storage):
    mine = [dbs.empty("all"), dbs.empty("all")]
    pg.psql("postgres", f"CREATE DATABASE {quote_ident(dbs.name('noconn'))} ALLOW_CONNECTIONS false")
    expected = {r[0] for r in pg.rows(
        "postgres", "select datname from pg_database where datallowconn and not datistemplate")}
    assert set(mine) <= expected
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": "all"})
    assert r.code == 0, r.describe()
    (_d, m), = committed_sets(storage)
    got = {a["name"] for a in m["artifacts"] if a["key"].endswith(".dump.zst")}
    assert got == expected


def test_globals_can_be_switched_off(sauve, dbs, storage):
    db = dbs.empty("ng")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"})
    assert r.code == 0, r.describe()
    (_d, m), = committed_sets(storage)
    assert [a["key"] for a in m["artifacts"]] == [f"postgres/{db}.dump.zst"]


def test_settings_precedence_flag_over_env_over_file(pg, sauve, dbs, storage, workdir):
    db = dbs.empty("prec")
    cfg = os.path.join(workdir, "config.yaml")
    with open(cfg, "w") as f:
        f.write(f"storage: file://{storage}\nname: fromfile\n"
                f"pg:\n  databases: [{db}]\n  globals: false\n")
    env = {"SAUVE_CONFIG": cfg}
    unset = ("SAUVE_STORAGE",)
    r = sauve.run("backup", env=env, unset=unset)
    assert r.code == 0, r.describe()
    r = sauve.run("backup", env=dict(env, SAUVE_NAME="fromenv"), unset=unset)
    assert r.code == 0, r.describe()
    r = sauve.run("backup", "--name", "fromflag", env=dict(env, SAUVE_NAME="fromenv"), unset=unset)
    assert r.code == 0, r.describe()
    for name in ("fromfile", "fromenv", "fromflag"):
        sets = committed_sets(storage, name)
        assert len(sets) == 1, (name, os.listdir(storage))
        assert sets[0][1]["name"] == name
        assert [a["key"] for a in sets[0][1]["artifacts"]] == [f"postgres/{db}.dump.zst"]


def test_backups_in_a_row_make_distinct_sets_listed_newest_first(sauve, dbs, storage):
    """Three quick backups: at least two of them start within the same
    second, so set ids (second resolution) collide unless sauve handles it."""
    db = dbs.empty("twice")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"}
    snapshots = []
    for i in range(3):
        r = sauve.run("backup", env=env)
        assert r.code == 0, f"backup #{i + 1}\n" + r.describe()
        snapshots.append(snapshot(storage))
    sets = committed_sets(storage)
    assert len(sets) == 3, f"three backups, sets: {[d for d, _ in sets]}"
    # No run rewrote an earlier set.
    final = snapshots[-1]
    for snap in snapshots[:-1]:
        assert {k: final.get(k) for k in snap} == snap
    r = sauve.run("list", "--json")
    assert r.code == 0, r.describe()
    listed = json.loads(r.stdout)["sets"]
    assert [s["id"] for s in listed] == sorted((m["id"] for _d, m in sets), reverse=True)
    assert all(s["status"] == "ok" for s in listed), listed
    for d, m in sets:
        assert m["id"] == os.path.basename(d)
        assert parse_time(m["started_at"]) <= parse_time(m["finished_at"]), (
            f"set {m['id']}: started_at {m['started_at']} after finished_at {m['finished_at']}")


def test_restore_no_owner_gives_objects_to_the_restoring_user(pg, sauve, dbs, small_template):
    db = dbs.clone(small_template)
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"})
    assert r.code == 0, r.describe()
    new = dbs.name("noowner")
    r = sauve.run("restore", f"postgres:{db}", "--into", new, "--no-owner", "--yes")
    assert r.code == 0, r.describe()
    assert pg.scalar(db, "select tableowner from pg_tables where tablename = 'app_notes'") == "app"
    assert pg.scalar(new, "select tableowner from pg_tables where tablename = 'app_notes'") == "postgres"
    assert pg.scalar(new, "select count(*) from public.app_notes") == \
        pg.scalar(db, "select count(*) from public.app_notes")


def test_database_names_with_spaces_and_non_ascii(pg, sauve, dbs, storage):
    names = [dbs.expect("données été 東京"), dbs.expect("Ünïcødé 🎉 db")]
    for n in names:
        pg.create_database(n)
        pg.psql(n, "create table t (v text); insert into t values ('ok: ' || current_database())")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": ",".join(names), "SAUVE_PG_GLOBALS": "false"})
    assert r.code == 0, r.describe()
    (set_dir, m), = committed_sets(storage)
    assert sorted(a["name"] for a in m["artifacts"]) == sorted(names)
    for a in m["artifacts"]:
        assert os.path.isfile(os.path.join(set_dir, a["key"])), a["key"]
    for n in names:
        new = dbs.name("odd")
        r = sauve.run("restore", f"postgres:{n}", "--into", new, "--yes")
        assert r.code == 0, r.describe()
        assert pg.scalar(new, "select v from t") == f"ok: {n}"


def test_database_name_with_dot_dot_never_writes_outside_the_set(pg, sauve, dbs, storage):
    """PostgreSQL allows '/' and '..' in a database name. The contract does
    not say how such a name is stored; whatever sauve does, nothing may land
    outside the set directory, and a database it does not store is a failed
    source (exit 2, named in the manifest), never a silent success."""
    good = dbs.empty("plain")
    odd = dbs.expect("../../../escape")
    pg.create_database(odd)
    pg.psql(odd, "create table t (v text); insert into t values ('x')")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": f"{good},{odd}", "SAUVE_PG_GLOBALS": "false"})
    print(f"exit code with a database named {odd!r}: {r.code}")
    (set_dir, m), = committed_sets(storage)
    for path in all_files(storage):
        assert os.path.realpath(path).startswith(os.path.realpath(set_dir) + os.sep), path
    for a in m["artifacts"]:
        assert ".." not in (a.get("key") or "").split("/"), a.get("key")
    status = {a["name"]: a["status"] for a in m["artifacts"]}
    assert status.get(good) == "ok", status
    if r.code == 0:
        assert status.get(odd) == "ok" and m["status"] == "ok", (status, r.describe())
    else:
        assert r.code == 2, r.describe()
        assert status.get(odd) == "failed" and m["status"] == "partial", status
        assert lines_with(r, odd), r.describe()


def lines_with(result, needle):
    return [l for l in result.messages() if needle in l]


def test_check_reaches_the_server_and_changes_nothing(pg, sauve, dbs, storage):
    db = dbs.empty("check")
    r = sauve.run("check", "--json", env={"SAUVE_PG_DATABASES": db})
    assert r.code == 0, r.describe()
    json.loads(r.stdout)  # --json output is one JSON document
    assert all_files(storage) == []
    # Without --json, check prints its report on stdout (a human table): the
    # "stdout only for --json" rule is held for backup and restore only.
    r = sauve.run("check", env={"SAUVE_PG_DATABASES": db, "PGPASSWORD": "not-the-password"},
                  json_stdout=True)
    assert r.code == 75, r.describe()
    assert "not-the-password" not in r.all_output()
