"""Restoring postgres:globals checks everything before it changes anything:
the artifact is verified whole (size and SHA-256) before any statement
runs, a script holding a psql meta-command is refused whole, and the
script runs in one transaction, so that a statement failing half-way
leaves every role as it was. Against the real PostgreSQL 15 server, with
artifacts written by the pg_dumpall of each major the machine has."""

import json
import os
import re
import subprocess

import pytest

from pgserver import pg_bindir
from sauvecli import artifact, committed_sets, forge_artifact

ROLES_SQL = ("select rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolconnlimit, "
             "rolvaliduntil, rolpassword, shobj_description(oid, 'pg_authid') "
             "from pg_authid where rolname !~ '^pg_' order by 1")
MEMBERS_SQL = ("select r.rolname, m.rolname from pg_auth_members a join pg_roles r "
               "on r.oid = a.roleid join pg_roles m on m.oid = a.member order by 1, 2")


def roles_state(pg):
    return pg.rows("postgres", ROLES_SQL), pg.rows("postgres", MEMBERS_SQL)


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout


def unzstd(path):
    return subprocess.run(["zstd", "-q", "-d", "-c", path], stdout=subprocess.PIPE, check=True).stdout


@pytest.fixture
def globals_set(pg, sauve, dbs, storage, roles_guard):
    """A set with the globals of a cluster holding role r (login, a
    connection limit, a comment with a backslash and a quote, a member of
    app): (role, set_dir, manifest, the globals artifact, its SQL)."""
    role = "g_" + os.urandom(3).hex()
    pg.psql("postgres", f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 3 PASSWORD 'pw-{role}';"
                        f"COMMENT ON ROLE {role} IS E'back\\\\slash '' and $$dollar$$ -- not a comment';"
                        f"GRANT app TO {role};")
    db = dbs.empty("glob")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db})
    assert r.code == 0, r.describe()
    [(set_dir, m)] = committed_sets(storage)
    g = artifact(m, "postgres/globals.sql.zst")
    sql = unzstd(os.path.join(set_dir, g["key"]))
    return role, set_dir, m, g, sql


def insert_before_unrestrict(sql, text):
    """sql with text inserted before the \\unrestrict line pg_dumpall ends
    with (at the end when it has none)."""
    m = re.search(rb"^\\unrestrict ", sql, re.M)
    at = m.start() if m else len(sql)
    return sql[:at] + text + b"\n" + sql[at:]


def line_of(sql, needle):
    return sql[:sql.index(needle)].count(b"\n") + 1


def test_a_tampered_artifact_over_1_mib_changes_no_role(pg, sauve, globals_set):
    role, set_dir, m, g, sql = globals_set
    pg.psql("postgres", f"DROP ROLE {role}")
    before = roles_state(pg)
    # 40 000 new roles and the dropped one back: far beyond the 1 MiB a
    # streaming loader would have run before the checksum failed at the end
    extra = b"".join(b"CREATE ROLE sauve_tamper_%d;\n" % i for i in range(40_000))
    forged = insert_before_unrestrict(sql, extra)
    assert len(forged) > (1 << 20)
    forge_artifact(set_dir, m, g, zstd(forged), bytes_in=len(forged))
    # ... but the manifest still records the genuine digest
    m_path = os.path.join(set_dir, "manifest.json")
    with open(m_path) as f:
        mm = json.load(f)
    artifact(mm, g["key"])["sha256"] = "0" * 64
    with open(m_path, "w") as f:
        json.dump(mm, f)

    r = sauve.run("restore", "postgres:globals", "--yes")
    assert r.code == 1, r.describe()
    assert "checksum" in r.summary["msg"] or "sha" in r.summary["msg"].lower(), r.describe()
    assert roles_state(pg) == before
    assert pg.scalar("postgres", "select count(*) from pg_roles where rolname like 'sauve_tamper_%'") == "0"


@pytest.mark.parametrize("meta, name", [
    ("\\! touch {marker}", "\\!"),
    ("\\getenv sauve_home HOME", "\\getenv"),
    ("\\copy pg_catalog.pg_am from '/etc/passwd'", "\\copy"),
    ("\\o {marker}", "\\o"),
    ("\\i /etc/passwd", "\\i"),
    ("COMMENT ON ROLE postgres IS 'x' \\g {marker}", "\\g"),
    ("\\restrict AnotherKey", "\\restrict"),
])
def test_a_psql_meta_command_is_refused_and_nothing_runs(pg, sauve, workdir, globals_set, meta, name):
    role, set_dir, m, g, sql = globals_set
    marker = os.path.join(workdir, "meta-command-ran")
    pg.psql("postgres", f"DROP ROLE {role}")
    before = roles_state(pg)
    # a statement before the meta-command that would create a role, so that
    # running anything at all shows
    text = f"CREATE ROLE sauve_forged_first;\n{meta.format(marker=marker)}\n".encode()
    forged = insert_before_unrestrict(sql, text)
    forge_artifact(set_dir, m, g, zstd(forged), bytes_in=len(forged))

    r = sauve.run("restore", "postgres:globals", "--yes")
    assert r.code == 1, r.describe()
    msg = r.summary["msg"]
    line = line_of(forged, meta.split(" {")[0].encode()) if "{" in meta else line_of(forged, meta.encode())
    assert f"line {line}:" in msg, (line, msg)
    assert name in msg and "nothing was run" in msg, msg
    assert not os.path.exists(marker)
    assert roles_state(pg) == before
    assert "sauve_forged_first" not in pg.roles()
    assert "sauve_home" not in r.all_output() and os.environ.get("HOME", "/root") not in msg
    # verify reads it as the restore does: what verify accepts, restore runs
    v = sauve.run("verify", json_stdout=True)
    assert v.code == 4, v.describe()
    assert "a restore would refuse the SQL" in v.summary["msg"] and f"line {line}:" in v.summary["msg"], \
        v.summary["msg"]


@pytest.mark.parametrize("major", [15, 18])
def test_a_genuine_artifact_of_each_major_restores_twice(pg, sauve, dbs, storage, roles_guard, major):
    bindir = pg_bindir(major)
    if not os.path.exists(os.path.join(bindir, "pg_dumpall")):
        pytest.fail(f"no pg_dumpall {major} in {bindir}: make pg-server, or set SAUVE_PG{major}_BINDIR",
                    pytrace=False)
    role = "g_" + os.urandom(3).hex()
    pg.psql("postgres", f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 3 VALID UNTIL '2099-01-01 00:00:00+00' "
                        f"PASSWORD 'pw-{role}'; COMMENT ON ROLE {role} IS E'a \\\\ b'; GRANT app TO {role};")
    before = roles_state(pg)
    db = dbs.empty("glob")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_BINDIR": bindir}
    r = sauve.run("backup", env=env)
    assert r.code == 0, r.describe()
    [(set_dir, m)] = committed_sets(storage)
    g = artifact(m, "postgres/globals.sql.zst")
    assert g["tool_version"].startswith(f"pg_dump (PostgreSQL) {major}."), g
    sql = unzstd(os.path.join(set_dir, g["key"]))
    assert re.search(rb"^\\restrict [A-Za-z0-9]+$", sql, re.M), "pg_dumpall of this major writes \\restrict"

    pg.psql("postgres", f"DROP ROLE {role}")
    for attempt in (1, 2):
        r = sauve.run("restore", "postgres:globals", "--yes", env=env)
        assert r.code == 0, f"restore #{attempt}\n" + r.describe()
        assert r.any_line("in one transaction"), r.describe()
        assert roles_state(pg) == before, f"roles after restore #{attempt}"


def test_a_statement_failing_half_way_leaves_every_role_as_it_was(pg, sauve, globals_set):
    role, set_dir, m, g, sql = globals_set
    pg.psql("postgres", f"DROP ROLE {role}; ALTER ROLE app CONNECTION LIMIT 7")
    before = roles_state(pg)
    # the genuine statements run first (they recreate role and reset app's
    # limit), then one fails
    failing = b"ALTER ROLE sauve_no_such_role WITH LOGIN;"
    forged = insert_before_unrestrict(sql, failing + b"\nCREATE ROLE sauve_after_the_failure;\n")
    forge_artifact(set_dir, m, g, zstd(forged), bytes_in=len(forged))

    r = sauve.run("restore", "postgres:globals", "--yes")
    assert r.code == 1, r.describe()
    msg = r.summary["msg"]
    assert f"line {line_of(forged, failing)} (ALTER ROLE)" in msg, msg
    assert "sauve_no_such_role" in msg and "rolled back, nothing was changed" in msg, msg
    assert roles_state(pg) == before
    assert role not in pg.roles()
    assert pg.scalar("postgres", "select rolconnlimit from pg_roles where rolname = 'app'") == "7"


def test_transaction_control_is_refused(pg, sauve, globals_set):
    role, set_dir, m, g, sql = globals_set
    pg.psql("postgres", f"DROP ROLE {role}")
    before = roles_state(pg)
    forged = insert_before_unrestrict(sql, b"COMMIT;\nCREATE ROLE sauve_after_commit;")
    forge_artifact(set_dir, m, g, zstd(forged), bytes_in=len(forged))
    r = sauve.run("restore", "postgres:globals", "--yes")
    assert r.code == 1, r.describe()
    assert f"line {line_of(forged, b'COMMIT;')}: commit statements are refused" in r.summary["msg"], r.describe()
    assert roles_state(pg) == before


def test_an_artifact_over_the_memory_bound_is_refused_naming_it(pg, sauve, globals_set):
    role, set_dir, m, g, sql = globals_set
    pg.psql("postgres", f"DROP ROLE {role}")
    before = roles_state(pg)
    pad = b"-- padding\n" * ((65 << 20) // 11)
    forged = insert_before_unrestrict(sql, pad)
    forge_artifact(set_dir, m, g, zstd(forged), bytes_in=len(forged))
    r = sauve.run("restore", "postgres:globals", "--yes")
    assert r.code == 1, r.describe()
    assert "larger than the 64 MiB" in r.summary["msg"] and "nothing was changed" in r.summary["msg"], r.describe()
    assert roles_state(pg) == before

