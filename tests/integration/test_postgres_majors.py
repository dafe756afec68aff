"""Backup and restore across PostgreSQL majors, against real servers: the
session's PostgreSQL 15 (Debian's) and a PostgreSQL 18 built from Debian's
source (make pg-server). sauve dumps a server with pg_dump of its major,
else the oldest newer one, and loads an artifact with a pg_restore at least
as new as both the pg_dump that wrote it and the server. What sauve wrote
is read back with the harness's own clients of the matching major."""

import os
import re
import subprocess

import pytest

from pgdata import (assert_same_state, db_state, large_objects, sequences,
                    table_checksums)
from pgserver import _harness_env, pg_bindir, quote_ident
from sauvecli import Sauve, artifact, committed_sets

BIN15 = pg_bindir(15)
BIN18 = pg_bindir(18)


def zstd_cat(path):
    p = subprocess.run(["zstd", "-q", "-d", "-c", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    assert p.returncode == 0, f"zstd -d {path}: {p.stderr.decode()}"
    return p.stdout


def pg_restore_list(bindir, dump):
    """`pg_restore -l` of bindir on the (decompressed) archive dump."""
    return subprocess.run([os.path.join(bindir, "pg_restore"), "-l"], input=dump,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_harness_env())


def runner(server, workdir, storage, bindir, db, globals_=False):
    """sauve against server over TCP, with SAUVE_PG_BINDIR = bindir."""
    return Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_PG_BINDIR": bindir,
                           "SAUVE_PG_DATABASES": db,
                           "SAUVE_PG_GLOBALS": "true" if globals_ else "false",
                           **server.tcp_env()})


def only_set(storage):
    sets = committed_sets(storage)
    assert len(sets) == 1, [d for d, _ in sets]
    return sets[0]


def scratch_databases(server):
    return server.rows("postgres", "select datname from pg_database where datname like 'sauve\\_%'")


def data_state(server, db):
    """db_state without the schema text: what must survive a restore into
    another major, whose pg_dump prints the same schema differently."""
    return {"tables": table_checksums(server, db), "large_objects": large_objects(server, db),
            "sequences": sequences(server, db),
            "owner_of_app_notes": server.scalar(
                db, "select tableowner from pg_tables where schemaname = 'public' "
                    "and tablename = 'app_notes'")}


def test_the_18_harness_is_postgresql_18_with_its_own_clients(pg18):
    assert pg18.server_version_num // 10000 == 18, pg18.server_version
    for tool in ("psql", "pg_dump", "pg_restore"):
        out = subprocess.run([pg18.bin(tool), "--version"], stdout=subprocess.PIPE, text=True,
                             check=True).stdout
        assert out.startswith(f"{tool} (PostgreSQL) 18."), out
    # the harness reaches it over TCP with the password, as sauve does
    env = dict(_harness_env(), PGPASSWORD=pg18.app_password)
    p = subprocess.run([pg18.bin("psql"), "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(pg18.port),
                        "-U", "app", "-d", "postgres", "-c", "show server_version_num"],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0 and p.stdout.strip() == str(pg18.server_version_num), p.stderr


# ---- a PostgreSQL 18 server ---------------------------------------------------

def test_18_is_dumped_by_pg_dump_18_and_restored_by_pg_restore_18(
        pg18, dbs18, small_template18, workdir, storage):
    db = dbs18.clone(small_template18, "maj18")
    # 15 listed first: the choice is by major, not by order
    sv = runner(pg18, workdir, storage, f"{BIN15},{BIN18}", db, globals_=True)
    r = sv.run("backup")
    assert r.code == 0, r.describe()
    assert r.any_line("pg_dump from " + BIN18), r.describe()
    set_dir, m = only_set(storage)
    assert sorted(a["key"] for a in m["artifacts"]) == sorted(
        [f"postgres/{db}.dump.zst", "postgres/globals.sql.zst"]), m
    for a in m["artifacts"]:
        assert a["tool_version"].startswith("pg_dump (PostgreSQL) 18."), a
        assert str(a["server_version"]).startswith("18."), a

    dump = zstd_cat(os.path.join(set_dir, "postgres", f"{db}.dump.zst"))
    toc = pg_restore_list(BIN18, dump)
    assert toc.returncode == 0, toc.stderr.decode()
    listing = toc.stdout.decode()
    assert re.search(r"^;\s+Dumped by pg_dump version: 18\.", listing, re.M), listing[:800]
    assert re.search(rf"^;\s+dbname: {re.escape(db)}\s*$", listing, re.M), listing[:800]
    assert re.search(r"^\d+; .* TABLE DATA sales events ", listing, re.M), listing[:2000]
    # why the restore rule exists: an older pg_restore cannot read it
    old = pg_restore_list(BIN15, dump)
    assert old.returncode != 0 and "unsupported version" in old.stderr.decode(), old.stderr.decode()

    new = dbs18.expect(dbs18.name("restored18"))
    r = sv.run("restore", f"postgres:{db}", "--into", new, "--yes")
    assert r.code == 0, r.describe()
    assert r.any_line("pg_restore from " + BIN18), r.describe()
    assert_same_state(db_state(pg18, db), db_state(pg18, new), f"{new} on PostgreSQL 18")


def test_clean_restore_on_18_takes_a_safety_backup_then_replaces_the_database(
        pg18, dbs18, small_template18, workdir, storage):
    db = dbs18.clone(small_template18, "clean18")
    sv = runner(pg18, workdir, storage, f"{BIN15},{BIN18}", db)
    r = sv.run("backup")
    assert r.code == 0, r.describe()
    (_, m), = committed_sets(storage)
    original = db_state(pg18, db)
    pg18.psql(db, "delete from sales.events where id > 100;"
                  "create table public.added_later (x int); insert into public.added_later values (42);"
                  "refresh materialized view sales.daily_events;")
    changed = db_state(pg18, db)

    r = sv.run("restore", f"postgres:{db}", "--set", m["id"], "--clean", "--confirm", db)
    assert r.code == 0, r.describe()
    assert_same_state(original, db_state(pg18, db), f"{db} after --clean on PostgreSQL 18")
    assert scratch_databases(pg18) == []

    safety = [(d, sm) for d, sm in committed_sets(storage) if sm["reason"] == "safety"]
    assert len(safety) == 1, committed_sets(storage)
    sm = safety[0][1]
    art = artifact(sm, f"postgres/{db}.dump.zst")
    assert art["tool_version"].startswith("pg_dump (PostgreSQL) 18."), art
    check = dbs18.expect(dbs18.name("safety18"))
    r = sv.run("restore", f"postgres:{db}", "--set", sm["id"], "--into", check, "--yes")
    assert r.code == 0, r.describe()
    assert_same_state(changed, db_state(pg18, check), "the safety backup on PostgreSQL 18")


def test_18_with_only_pg_dump_15_is_a_configuration_error(pg18, dbs18, workdir, storage):
    db = dbs18.empty("only15")
    r = runner(pg18, workdir, storage, BIN15, db).run("backup")
    assert r.code == 78, r.describe()
    msg = r.summary["msg"]
    assert "major 18" in msg and f"major 15 in {BIN15}" in msg, r.describe()
    assert "postgresql-client-18" in r.all_output(), r.describe()
    assert committed_sets(storage) == []


# ---- a PostgreSQL 15 server dumped by pg_dump 18 --------------------------------

@pytest.fixture
def dumped_by_18(pg, dbs, small_template, workdir, storage):
    """A database of the 15 server and a set of it (with globals) written by
    pg_dump 18: SAUVE_PG_BINDIR held 18's tools only."""
    db = dbs.clone(small_template, "by18")
    r = runner(pg, workdir, storage, BIN18, db, globals_=True).run("backup")
    assert r.code == 0, r.describe()
    set_dir, m = only_set(storage)
    for a in m["artifacts"]:
        assert a["tool_version"].startswith("pg_dump (PostgreSQL) 18."), a
        assert str(a["server_version"]).startswith("15."), a
    return db, set_dir, m


def test_pg_restore_15_cannot_read_what_pg_dump_18_wrote(dumped_by_18):
    db, set_dir, _m = dumped_by_18
    dump = zstd_cat(os.path.join(set_dir, "postgres", f"{db}.dump.zst"))
    old = pg_restore_list(BIN15, dump)
    assert old.returncode != 0, old.stdout.decode()[:400]
    assert "unsupported version (1.16) in file header" in old.stderr.decode(), old.stderr.decode()
    assert pg_restore_list(BIN18, dump).returncode == 0


def test_15_restores_the_pg_dump_18_artifact_with_pg_restore_18(pg, dbs, dumped_by_18, workdir, storage):
    db, _set_dir, _m = dumped_by_18
    sv = runner(pg, workdir, storage, f"{BIN15},{BIN18}", db)
    source = db_state(pg, db)

    new = dbs.expect(dbs.name("into15"))
    r = sv.run("restore", f"postgres:{db}", "--into", new, "--yes")
    assert r.code == 0, r.describe()
    assert r.any_line("pg_restore from " + BIN18), r.describe()
    assert_same_state(source, db_state(pg, new), f"{new} (pg_restore 18 into 15)")

    # an existing empty database: pg_restore 18 cannot run in one
    # transaction on 15, so it loads a scratch database that replaces it
    empty = dbs.empty("empty15")
    pg.psql("postgres", f"comment on database {quote_ident(empty)} is 'kept'")
    r = sv.run("restore", f"postgres:{db}", "--into", empty, "--yes")
    assert r.code == 0, r.describe()
    assert_same_state(source, db_state(pg, empty), f"{empty} (pg_restore 18 into 15)")
    assert pg.scalar("postgres", "select shobj_description(oid, 'pg_database') from pg_database "
                                 f"where datname = '{empty}'") == "kept"
    assert scratch_databases(pg) == []


def test_clean_restore_on_15_of_the_pg_dump_18_artifact(pg, dbs, dumped_by_18, workdir, storage):
    db, _set_dir, m = dumped_by_18
    sv = runner(pg, workdir, storage, f"{BIN15},{BIN18}", db)
    original = db_state(pg, db)
    pg.psql(db, "delete from sales.events where id > 100; drop view sales.customer_totals;"
                "refresh materialized view sales.daily_events;")
    changed = db_state(pg, db)

    r = sv.run("restore", f"postgres:{db}", "--set", m["id"], "--clean", "--confirm", db)
    assert r.code == 0, r.describe()
    assert r.any_line("pg_restore from " + BIN18), r.describe()
    assert_same_state(original, db_state(pg, db), f"{db} after --clean (pg_restore 18 into 15)")
    assert scratch_databases(pg) == []
    # the safety copy is dumped by the server's own major
    safety = [sm for _d, sm in committed_sets(storage) if sm["reason"] == "safety"]
    assert len(safety) == 1, committed_sets(storage)
    art = artifact(safety[0], f"postgres/{db}.dump.zst")
    assert art["tool_version"].startswith("pg_dump (PostgreSQL) 15."), art
    check = dbs.expect(dbs.name("safety15"))
    r = sv.run("restore", f"postgres:{db}", "--set", safety[0]["id"], "--into", check, "--yes")
    assert r.code == 0, r.describe()
    assert_same_state(changed, db_state(pg, check), "the safety backup")


def test_15_restores_the_globals_of_pg_dumpall_18(pg, dumped_by_18, workdir, storage, roles_guard):
    """sauve runs the SQL of pg_dumpall 18 (with its \\restrict line) itself,
    in one transaction, whatever psql the machine has."""
    db, _set_dir, m = dumped_by_18
    assert "sauve_gone18" not in pg.roles()
    pg.psql("postgres", "create role sauve_gone18 login password 'x'")
    r = runner(pg, workdir, storage, BIN18, db, globals_=True).run("backup")
    assert r.code == 0, r.describe()
    newest = max(committed_sets(storage), key=lambda s: s[1]["id"])[1]
    assert artifact(newest, "postgres/globals.sql.zst")["tool_version"].startswith("pg_dump (PostgreSQL) 18.")
    pg.psql("postgres", "drop role sauve_gone18")

    r = runner(pg, workdir, storage, f"{BIN15},{BIN18}", db).run(
        "restore", "postgres:globals", "--set", newest["id"], "--yes")
    assert r.code == 0, r.describe()
    assert r.any_line("in one transaction"), r.describe()
    assert not r.any_line("psql from"), r.describe()
    assert "sauve_gone18" in pg.roles()


def test_with_only_15_tools_the_pg_dump_18_artifact_is_refused_before_anything_changes(
        pg, dbs, dumped_by_18, workdir, storage):
    db, _set_dir, m = dumped_by_18
    sv = runner(pg, workdir, storage, BIN15, db)
    sets_before = committed_sets(storage)

    new = dbs.expect(dbs.name("refused"))
    r = sv.run("restore", f"postgres:{db}", "--into", new, "--yes")
    assert r.code == 78, r.describe()
    msg = r.summary["msg"]
    assert "pg_dump 18" in msg and "major 18 or newer" in msg, r.describe()
    assert f"major 15 in {BIN15}" in msg, r.describe()
    assert "SAUVE_PG_BINDIR" in r.all_output() and "/usr/lib/postgresql/" in r.all_output(), r.describe()
    assert not pg.database_exists(new)

    pg.psql(db, "insert into hr.employees (name) values ('after the backup')")
    state = db_state(pg, db)
    r = sv.run("restore", f"postgres:{db}", "--set", m["id"], "--clean", "--confirm", db)
    assert r.code == 78, r.describe()
    assert "pg_dump 18" in r.summary["msg"], r.describe()
    # no safety backup, no scratch database, the database as it was
    assert committed_sets(storage) == sets_before
    assert scratch_databases(pg) == []
    assert_same_state(state, db_state(pg, db), f"{db} after the refused restore")


# ---- a PostgreSQL 15 dump into a PostgreSQL 18 server (an upgrade) ---------------

def test_a_pg_dump_15_artifact_restores_into_18_with_pg_restore_18(
        pg, pg18, dbs, dbs18, small_template, workdir, storage):
    db = dbs.clone(small_template, "up")
    r = runner(pg, workdir, storage, f"{BIN15},{BIN18}", db).run("backup")
    assert r.code == 0, r.describe()
    (_, m), = committed_sets(storage)
    assert artifact(m, f"postgres/{db}.dump.zst")["tool_version"].startswith("pg_dump (PostgreSQL) 15."), m

    # only 15's tools cannot load into 18: refused, nothing created
    refused = dbs18.expect(dbs18.name("up_refused"))
    r = runner(pg18, workdir, storage, BIN15, db).run("restore", f"postgres:{db}", "--into", refused, "--yes")
    assert r.code == 78, r.describe()
    assert "major 18" in r.summary["msg"] and f"major 15 in {BIN15}" in r.summary["msg"], r.describe()
    assert not pg18.database_exists(refused)

    new = dbs18.expect(dbs18.name("upgraded"))
    r = runner(pg18, workdir, storage, f"{BIN15},{BIN18}", db).run(
        "restore", f"postgres:{db}", "--into", new, "--yes")
    assert r.code == 0, r.describe()
    assert r.any_line("pg_restore from " + BIN18), r.describe()
    assert data_state(pg, db) == data_state(pg18, new)


def test_clean_restore_on_18_keeps_the_builtin_locale_provider(pg18, dbs18, workdir, storage):
    # 17 renamed pg_database's locale column and added the builtin provider:
    # the scratch database of --clean must be created like the target
    db = dbs18.name("builtin")
    pg18.psql("postgres", f"create database {quote_ident(db)} template template0 encoding 'UTF8' "
                          "locale_provider builtin builtin_locale 'C.UTF-8' lc_collate 'C' lc_ctype 'C'")
    pg18.psql(db, "create table t (s text); insert into t values ('ÉTÉ'), ('été'), ('Zoë')")
    sv = runner(pg18, workdir, storage, BIN18, db)
    r = sv.run("backup")
    assert r.code == 0, r.describe()
    pg18.psql(db, "delete from t")
    r = sv.run("restore", f"postgres:{db}", "--clean", "--confirm", db)
    assert r.code == 0, r.describe()
    assert pg18.rows("postgres", "select datlocprovider, datlocale from pg_database "
                                 f"where datname = '{db}'") == [["b", "C.UTF-8"]]
    # the builtin C.UTF-8 locale's case mapping, not C's (which leaves É alone)
    assert sorted(r[0] for r in pg18.rows(db, "select lower(s) from t")) == sorted(["été", "été", "zoë"])
