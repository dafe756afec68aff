"""The preflight: sauve finds out before dumping what would make the dump
fail, and says so in terms an operator can act on: the wrong pg_dump, a
role without superuser, a table the backup role cannot read."""

import os
import stat
import subprocess

from pgserver import quote_ident
from sauvecli import committed_sets


def fake_old_bindir(workdir):
    """A bin directory whose only pg_dump reports major version 14."""
    d = os.path.join(workdir, "pg14", "bin")
    os.makedirs(d)
    for tool in ("pg_dump", "pg_dumpall", "pg_restore", "psql"):
        p = os.path.join(d, tool)
        with open(p, "w") as f:
            f.write(f"#!/bin/sh\necho '{tool} (PostgreSQL) 14.11'\n")
        os.chmod(p, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return d


def test_only_an_older_pg_dump_is_a_configuration_error(sauve, dbs, storage, workdir):
    db = dbs.empty("oldbin")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_BINDIR": fake_old_bindir(workdir)})
    r.check_log_contract()
    assert r.code == 78, r.describe()
    summary = r.summary["msg"]
    # the server's major, and every major found with its directory
    assert "major 15 or newer" in summary and "major 14 in " in summary, r.describe()
    assert "postgresql-client-15" in summary, r.describe()
    assert committed_sets(storage) == []


def owned_by_app(pg, dbs, prefix):
    db = dbs.name(prefix)
    pg.create_database(db, owner="app")
    pg.psql(db, "create table t (id int primary key, v text); insert into t values (1, 'un'), (2, 'deux')",
            user="app")
    return db


def test_backup_as_non_superuser_dumps_globals_without_passwords(pg, sauve, dbs, storage):
    db = owned_by_app(pg, dbs, "nonsu")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, **pg.tcp_env(user="app")})
    r.check_log_contract()
    assert r.code == 0, r.describe()
    [(set_dir, _)] = committed_sets(storage)
    globals_zst = os.path.join(set_dir, "postgres", "globals.sql.zst")
    sql = subprocess.run(["zstd", "-dc", globals_zst], capture_output=True, check=True, text=True).stdout
    assert "CREATE ROLE app" in sql
    assert "SCRAM-SHA-256$" not in sql, "a non-superuser cannot read password hashes: --no-role-passwords"


def test_unreadable_table_is_reported_before_anything_is_dumped(pg, sauve, dbs, storage):
    db = owned_by_app(pg, dbs, "unread")
    pg.psql(db, "create schema vault; create table vault.secret (x int); revoke all on schema vault from public")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false",
                                 **pg.tcp_env(user="app")})
    r.check_log_contract()
    # the only artifact cannot be dumped: a configuration problem, nothing written
    assert r.code == 78, r.describe()
    assert "vault.secret" in r.summary["msg"] and db in r.summary["msg"], r.describe()
    assert "grant select" in r.summary["msg"].lower(), r.describe()
    assert committed_sets(storage) == []
    assert os.listdir(storage) == [], "nothing may be written when nothing can be dumped"


def test_unreadable_table_in_one_database_makes_a_partial_set(pg, sauve, dbs, storage):
    good = owned_by_app(pg, dbs, "good")
    bad = owned_by_app(pg, dbs, "bad")
    pg.psql(bad, f"create table {quote_ident('hidden')} (x int)")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": f"{good},{bad}", "SAUVE_PG_GLOBALS": "false",
                                 **pg.tcp_env(user="app")})
    r.check_log_contract()
    assert r.code == 2, r.describe()
    assert f"postgres:{bad}" in r.summary["msg"], r.describe()
    [(_, manifest)] = committed_sets(storage)
    by_name = {a["name"]: a for a in manifest["artifacts"]}
    assert by_name[good]["status"] == "ok"
    assert by_name[bad]["status"] == "failed" and "hidden" in by_name[bad]["error"]


def test_globals_restore_without_privilege_fails_and_says_why(pg, sauve, dbs, storage, roles_guard):
    db = dbs.empty("glob")
    backup = sauve.run("backup", env={"SAUVE_PG_DATABASES": db})
    assert backup.code == 0, backup.describe()
    # app may create databases but not roles: replaying CREATE ROLE must fail,
    # and "already exists" tolerance must not hide a permission error
    r = sauve.run("restore", "postgres:globals", "--yes", env={"SAUVE_PG_DATABASES": db, **pg.tcp_env(user="app")})
    r.check_log_contract()
    assert r.code == 1, r.describe()
    assert "permission denied" in r.summary["msg"], r.describe()
    assert "globals" in r.summary["msg"], r.describe()


def test_pg_dump_gets_the_postgres_password_and_no_other_secret(pg, sauve, dbs, storage, workdir):
    from conftest import make_bindir
    db = dbs.empty("envcheck")
    bindir = make_bindir(workdir, {"pg_dump": 'env > "$DIR/pg_dump.env"; exec "$REAL" "$@"'})
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_PG_BINDIR": bindir,
                                 "AWS_SECRET_ACCESS_KEY": "aws-secret-for-the-bucket-only",
                                 "SAUVE_NOTIFY_URL": "https://hooks.example/T000/B000/secret-token"})
    assert r.code == 0, r.describe()
    env = open(os.path.join(bindir, "pg_dump.env")).read()
    assert "PGPASSWORD=" in env, "pg_dump needs the password, through its environment"
    assert "aws-secret-for-the-bucket-only" not in env
    assert "secret-token" not in env
