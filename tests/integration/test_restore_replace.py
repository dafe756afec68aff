"""restore --clean replaces a database's contents, not the rules around it:
who may connect, its settings and comment survive; the postgres database
itself can be restored; and names that cannot be stored never produce a set
that looks committed but cannot be read."""

import json
import os

from pgserver import quote_ident
from sauvecli import committed_sets


def db_properties(pg, db):
    acl = pg.scalar("postgres", f"select coalesce(datacl::text, '') from pg_database where datname = '{db}'")
    settings = pg.scalar("postgres", "select coalesce(string_agg(c, ',' order by c), '') from pg_db_role_setting s "
                                     "join pg_database d on d.oid = s.setdatabase, unnest(s.setconfig) c "
                                     f"where d.datname = '{db}'")
    comment = pg.scalar("postgres", "select coalesce(shobj_description(oid, 'pg_database'), '') "
                                    f"from pg_database where datname = '{db}'")
    # the order of ACL items carries no meaning
    return sorted(acl.strip("{}").split(",")), settings, comment


def test_clean_restore_keeps_access_rules_settings_and_comment(pg, sauve, dbs, storage, small_template):
    db = dbs.clone(small_template, "props")
    q = quote_ident(db)
    pg.psql("postgres", f"revoke connect on database {q} from public; grant connect on database {q} to app; "
                        f"alter database {q} set statement_timeout = '5s'; "
                        f"alter role app in database {q} set work_mem = '8MB'; "
                        f"comment on database {q} is 'the shop, après minuit'")
    before = db_properties(pg, db)
    assert "app=c/postgres" in before[0] and "statement_timeout=5s" in before[1] and before[2], before
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"})
    assert r.code == 0, r.describe()
    r = sauve.run("restore", f"postgres:{db}", "--clean", "--confirm", db,
                  env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"})
    r.check_log_contract()
    assert r.code == 0, r.describe()
    after = db_properties(pg, db)
    assert after == before, f"database-level properties changed: {before} -> {after}"
    leftovers = pg.rows("postgres", "select datname from pg_database where datname like 'sauve\\_%'")
    assert leftovers == [], leftovers


def test_restored_database_does_not_inherit_template1(pg, sauve, dbs, storage, small_template):
    db = dbs.clone(small_template, "tmpl1")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"})
    assert r.code == 0, r.describe()
    pg.psql("template1", "create table sauve_template1_marker (x int)")
    try:
        target = dbs.expect(dbs.name("fromtmpl"))
        r = sauve.run("restore", f"postgres:{db}", "--into", target, "--yes",
                      env={"SAUVE_PG_DATABASES": db})
        assert r.code == 0, r.describe()
        assert pg.scalar(target, "select count(*) from pg_class where relname = 'sauve_template1_marker'") == "0"
    finally:
        pg.psql("template1", "drop table sauve_template1_marker")


def test_the_postgres_database_itself_can_be_restored_with_clean(pg, sauve, storage):
    pg.psql("postgres", "create table if not exists sauve_marker (v text); truncate sauve_marker; "
                        "insert into sauve_marker values ('before backup')")
    try:
        r = sauve.run("backup", env={"SAUVE_PG_DATABASES": "postgres", "SAUVE_PG_GLOBALS": "false"})
        assert r.code == 0, r.describe()
        pg.psql("postgres", "update sauve_marker set v = 'changed later'")
        r = sauve.run("restore", "postgres:postgres", "--clean", "--confirm", "postgres",
                      env={"SAUVE_PG_DATABASES": "postgres", "SAUVE_PG_GLOBALS": "false"})
        r.check_log_contract()
        assert r.code == 0, r.describe()
        assert pg.scalar("postgres", "select v from sauve_marker") == "before backup"
    finally:
        pg.psql("postgres", "drop table if exists sauve_marker")


def test_globals_alone_are_not_committed_as_a_backup(sauve, storage):
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": "no_such_database_here"})
    r.check_log_contract()
    assert r.code == 78, r.describe()
    assert "no_such_database_here" in r.summary["msg"], r.describe()
    assert committed_sets(storage) == []


def test_a_database_listed_twice_is_backed_up_once(sauve, dbs, storage):
    db = dbs.empty("twice")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": f"{db},{db}", "SAUVE_PG_GLOBALS": "false"})
    r.check_log_contract()
    assert r.code == 0, r.describe()
    [(_, manifest)] = committed_sets(storage)
    assert [a["name"] for a in manifest["artifacts"]] == [db]
    assert r.any_line("listed twice", level=("warn",)), r.describe()
    listing = sauve.run("list", "--json", env={})
    assert listing.code == 0 and json.loads(listing.stdout)["sets"][0]["status"] == "ok", listing.describe()


def test_globals_of_a_role_allowed_into_one_database_only(pg, sauve, dbs, storage, roles_guard):
    db = dbs.name("only")
    pg.create_database(db, owner="app")
    pg.psql("postgres", "revoke connect on database postgres from public; "
                        "revoke connect on database template1 from public")
    try:
        r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, **pg.tcp_env(user="app")})
        r.check_log_contract()
        assert r.code == 0, r.describe()
    finally:
        pg.psql("postgres", "grant connect on database postgres to public; "
                            "grant connect on database template1 to public")


def test_pg_restore_refusal_is_reported_as_such_not_as_a_damaged_artifact(pg, sauve, dbs, storage, roles_guard):
    db = dbs.empty("owner")
    pg.psql("postgres", "create role sauve_gone")
    pg.psql(db, "create table t (x int); alter table t owner to sauve_gone")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"})
    assert r.code == 0, r.describe()
    pg.psql(db, "drop table t")
    pg.psql("postgres", "drop role sauve_gone")
    target = dbs.expect(dbs.name("noowner"))
    r = sauve.run("restore", f"postgres:{db}", "--into", target, "--yes", env={"SAUVE_PG_DATABASES": db})
    r.check_log_contract()
    assert r.code == 1, r.describe()
    msg = r.summary["msg"]
    assert 'role "sauve_gone" does not exist' in msg, r.describe()
    assert "--no-owner" in msg, r.describe()
    assert "unusable" not in msg and "checksum" not in msg, r.describe()
    assert not pg.database_exists(target)


def test_latest_means_the_newest_set_in_which_that_database_succeeded(pg, sauve, dbs, storage, workdir):
    from conftest import make_bindir
    db = dbs.empty("flaky")
    other = dbs.empty("steady")
    pg.psql(db, "create table t (v text); insert into t values ('from the first night')")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": f"{db},{other}", "SAUVE_PG_GLOBALS": "false"})
    assert r.code == 0, r.describe()
    first = r.summary["msg"]
    # the second night, pg_dump fails for db only: a partial set becomes the newest
    bindir = make_bindir(workdir, {"pg_dump": f'case "$*" in *{db}*) echo "pg_dump: error: simulated" >&2; exit 1;; '
                                              'esac; exec "$REAL" "$@"'})
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": f"{db},{other}", "SAUVE_PG_GLOBALS": "false",
                                 "SAUVE_PG_BINDIR": bindir})
    assert r.code == 2, r.describe()
    target = dbs.expect(dbs.name("fallback"))
    r = sauve.run("restore", f"postgres:{db}", "--into", target, "--yes", env={"SAUVE_PG_DATABASES": db})
    r.check_log_contract()
    assert r.code == 0, r.describe()
    assert r.any_line("no usable", "newest that has it", level=("warn",)), r.describe()
    assert pg.scalar(target, "select v from t") == "from the first night"
    assert first.split("set default/")[1].split(",")[0] in r.summary["msg"], (first, r.summary["msg"])


def test_a_series_name_that_could_not_be_read_back_is_refused_before_writing(sauve, dbs, storage):
    db = dbs.empty("name")
    for bad in ("team/app", ".hidden"):
        r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_NAME": bad})
        r.check_log_contract()
        assert r.code == 78, r.describe()
        assert "SAUVE_NAME" in r.summary["msg"], r.describe()
    assert committed_sets(storage) == [] and not any(os.scandir(storage))


def test_a_flag_a_command_would_ignore_is_refused_not_ignored(sauve, dbs, storage):
    db = dbs.empty("dryrun")
    # --dry-run on backup or restore would otherwise run for real
    for argv in (("backup", "--dry-run"), ("restore", f"postgres:{db}", "--dry-run", "--yes"), ("list", "--clean")):
        r = sauve.run(*argv, env={"SAUVE_PG_DATABASES": db})
        r.check_log_contract()
        assert r.code == 64, r.describe()
        assert "does not take --" in r.summary["msg"], r.describe()
    assert not any(os.scandir(storage)), "nothing may be written"


def test_backup_json_output_agrees_with_the_manifest(sauve, dbs, storage):
    db = dbs.empty("json")
    r = sauve.run("backup", "--json", env={"SAUVE_PG_DATABASES": db}, json_stdout=True)
    r.check_log_contract(json_stdout=True)
    assert r.code == 0, r.describe()
    out = json.loads(r.stdout)
    [(set_dir, manifest)] = committed_sets(storage)
    assert out["status"] == "ok" and out["exit_code"] == 0
    assert out["set"] == manifest["id"] == os.path.basename(set_dir)
    assert out["artifacts_ok"] == len(manifest["artifacts"]) and out["artifacts_failed"] == 0
    assert out["bytes_out"] == sum(a["bytes_out"] for a in manifest["artifacts"])
    assert out["bytes_in"] == sum(a["bytes_in"] for a in manifest["artifacts"])

    failed = sauve.run("backup", "--json", env={"SAUVE_PG_DATABASES": db, "PGPORT": "1"}, json_stdout=True)
    assert failed.code == 75, failed.describe()
    out = json.loads(failed.stdout)
    assert out["status"] == "failed" and out["exit_code"] == 75 and out["set"] is None


def test_clean_needs_the_target_named_again_not_just_yes(pg, sauve, dbs, storage, small_template):
    """--yes is what every restore Job carries; replacing a database takes
    its name typed again, so a --yes copied from a restore into a scratch
    database cannot wipe a live one."""
    db = dbs.clone(small_template, "confirm")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"}
    r = sauve.run("backup", env=env)
    assert r.code == 0, r.describe()
    pg.psql(db, "create table written_after_the_backup (x int)")
    for argv, says in ((("--clean", "--yes"), f"--confirm {db}"),
                       (("--clean", "--confirm", db + "x"), f"--confirm {db}x does not name the target of this "
                                                            f"restore, {db}"),
                       (("--clean", "--yes", "--confirm", "other"), "does not name the target")):
        r = sauve.run("restore", f"postgres:{db}", *argv, env=env)
        r.check_log_contract()
        assert r.code == 64, r.describe()
        assert says in r.summary["msg"] + " " + r.stderr, r.describe()
        assert pg.scalar(db, "select count(*) from pg_class where relname = 'written_after_the_backup'") == "1", \
            f"{argv} changed the database"
    assert len(committed_sets(storage)) == 1, "no safety backup may have been taken"
    r = sauve.run("restore", f"postgres:{db}", "--clean", "--confirm", db, env=env)
    assert r.code == 0, r.describe()
    assert pg.scalar(db, "select count(*) from pg_class where relname = 'written_after_the_backup'") == "0"
