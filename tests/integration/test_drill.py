"""sauve drill against the real servers: each artifact of a set restored
into a scratch target (a new database on the drill's PostgreSQL server, an
RDB file and a tree under SAUVE_DRILL_DIR), compared with what the backup
recorded (row counts taken in the dump's own snapshot, keys, entries), the
user's own SQL checks run in it, the scratch copies removed whatever
happened, and the result stored beside the set, shown by `list`, and
pushed to the Pushgateway under its own job."""

import json
import os

import pytest

from sauvecli import committed_sets, set_dirs
from test_notify import Receiver


def scratch_dbs(pg):
    return [r[0] for r in pg.rows("postgres", "select datname from pg_database where datname like 'sauve_drill_%'")]


def drill_record(storage, set_id, name="default"):
    with open(os.path.join(storage, name, set_id, "results", "drill.json")) as f:
        return json.load(f)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_drill_restores_counts_checks_and_drops_the_scratch_database(pg, sauve, dbs, workdir, storage,
                                                                    small_template, receiver):
    db = dbs.clone(small_template, "drilled")
    config = os.path.join(workdir, "config.yaml")
    with open(config, "w") as f:
        f.write(f"""drill:
  checks:
    - name: events are there
      database: {db}
      sql: select count(*) > 0 from sales.events
    - name: no event from the future
      database: {db}
      sql: select coalesce(max(at) <= now(), true) from sales.events
""")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_DRILL_DIR": workdir}
    assert sauve.run("backup", env=env).code == 0
    [(_d, m)] = committed_sets(storage)
    r = sauve.run("drill", "--config", config, "--json",
                  env={**env, "SAUVE_PUSHGATEWAY_URL": receiver.url("/gw")})
    assert r.code == 0, r.describe()
    out = json.loads(r.stdout)
    assert out["set"] == m["id"] and out["ok"] is True
    by = {s["source"]: s for s in out["sources"]}
    app = by[f"postgres:{db}"]
    assert app["loaded"] is True and app["unit"] == "rows"
    recorded = sum(t["rows"] for t in [a for a in m["artifacts"] if a["name"] == db][0]["row_counts"]["tables"])
    assert recorded > 0 and app["compared"] == recorded and app["counted"] == recorded
    assert app["checks_run"] == 2 and app["checks_failed"] == 0
    assert app["restore_seconds"] > 0
    assert by["postgres:globals"]["loaded"] is False and by["postgres:globals"]["ok"] is True
    assert scratch_dbs(pg) == []
    assert "drill ok" in r.summary["msg"]

    rec = drill_record(storage, m["id"])
    assert rec["command"] == "drill" and rec["ok"] is True and rec["set"] == m["id"]
    assert rec["restore_seconds"] == pytest.approx(app["restore_seconds"], abs=0.01)
    # the manifest is untouched: a set never changes after its commit
    [(_d, m2)] = committed_sets(storage)
    assert m2 == m

    [push] = [q for q in receiver.requests if q["path"].startswith("/gw/")]
    assert push["path"] == "/gw/metrics/job/sauve-drill/name/default" and push["method"] == "PUT"
    body = push["body"]
    assert "sauve_last_drill_success 1\n" in body
    assert "sauve_last_drill_success_timestamp_seconds " in body
    assert f'sauve_restore_duration_seconds{{source="postgres:{db}"}} ' in body
    assert "postgres:globals" not in body  # not restored: no restore time to report

    r = sauve.run("list", env=env, json_stdout=True)
    assert r.code == 0
    assert f"checked: drill ok {rec['finished'][:10]}, restore " in r.stdout, r.stdout
    [listed] = json.loads(sauve.run("list", "--json", env=env).stdout)["sets"]
    assert listed["drill"]["ok"] is True and listed["verify"] is None


def alter_manifest(storage, edit):
    [(d, m)] = committed_sets(storage)
    edit(m)
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f)
    return m


def test_a_row_count_the_restore_does_not_reproduce_fails_the_drill(pg, sauve, dbs, workdir, storage,
                                                                    small_template, receiver):
    db = dbs.clone(small_template, "altered")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_DRILL_DIR": workdir}
    assert sauve.run("backup", env=env).code == 0

    def plus_one(m):
        t = m["artifacts"][0]["row_counts"]["tables"][0]
        t["rows"] += 1
        plus_one.table = f"{t['schema']}.{t['table']}"
        plus_one.rows = t["rows"]
    m = alter_manifest(storage, plus_one)
    r = sauve.run("drill", env={**env, "SAUVE_PUSHGATEWAY_URL": receiver.url("/gw")}, json_stdout=True)
    assert r.code == 4, r.describe()
    msg = r.summary["msg"]
    assert msg.startswith("drill failed: set default/") and f"postgres:{db}" in msg, msg
    assert f"table {plus_one.table} has {plus_one.rows - 1} rows after the restore, the backup counted " \
           f"{plus_one.rows} in its snapshot" in msg, msg
    assert scratch_dbs(pg) == []
    rec = drill_record(storage, m["id"])
    assert rec["ok"] is False and rec["sources"][0]["ok"] is False
    [push] = receiver.requests
    # POST: the last success's timestamp stays in the group for the 8-day alert
    assert push["method"] == "POST" and "sauve_last_drill_success 0\n" in push["body"]
    assert "sauve_last_drill_success_timestamp_seconds" not in push["body"]
    assert "sauve_drill_status 4\n" in push["body"]


def test_a_check_that_does_not_hold_fails_the_drill_and_names_the_check(pg, sauve, dbs, workdir, storage,
                                                                         small_template):
    db = dbs.clone(small_template, "checked")
    config = os.path.join(workdir, "config.yaml")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_DRILL_DIR": workdir}
    assert sauve.run("backup", env=env).code == 0
    for sql, found in (("select count(*) > 1000000 from sales.events", "returned false"),
                       ("select null::boolean", "returned null, not true"),
                       ("select v from (values (true), (false)) t(v)", "returned other than one row of one column"),
                       ("select 't'::text", "returned other than a boolean"),
                       ("select * from no_such_table", "failed: query on database sauve_drill_")):
        with open(config, "w") as f:
            f.write(f"drill:\n  checks:\n    - name: big enough\n      database: {db}\n      sql: {json.dumps(sql)}\n")
        r = sauve.run("drill", "--config", config, env=env, json_stdout=True)
        assert r.code == 4, r.describe()
        assert "check 'big enough' (config file line 3) " + found in r.summary["msg"], r.summary["msg"]
        assert scratch_dbs(pg) == []


def test_malformed_checks_are_configuration_errors(sauve, workdir):
    config = os.path.join(workdir, "config.yaml")
    for text, message in (
            ("drill:\n  checks:\n    - name: x\n      database: app\n", "drill.checks[0] has no sql"),
            ("drill:\n  checks:\n    - name: x\n      database: app\n      sql: select true\n      sq: 1\n",
             "unknown key 'sq' in drill.checks[0] (did you mean 'sql'?)"),
            ("drill:\n  checks: select true\n", "key 'drill.checks' must be a list of mappings"),
            ("drill:\n  checks:\n    - {name: a, database: d, sql: select true}\n"
             "    - {name: a, database: d, sql: select true}\n", "drill check name 'a' is already used at line 3")):
        with open(config, "w") as f:
            f.write(text)
        r = sauve.run("drill", "--config", config, json_stdout=True)
        assert r.code == 78, r.describe()
        assert message in r.summary["msg"], r.summary["msg"]


def test_a_damaged_dump_fails_the_drill_without_a_scratch_database(pg, sauve, dbs, workdir, storage,
                                                                   small_template):
    db = dbs.clone(small_template, "damaged")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_DRILL_DIR": workdir}
    assert sauve.run("backup", env=env).code == 0
    [(d, m)] = committed_sets(storage)
    key = m["artifacts"][0]["key"]
    path = os.path.join(d, key)
    # same size, one byte changed: the listing cannot see it, the restore's SHA-256 does
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 1]))
    r = sauve.run("drill", env=env, json_stdout=True)
    assert r.code == 4, r.describe()
    assert f"postgres:{db}: the restore failed: artifact of set {m['id']} is unusable" in r.summary["msg"], \
        r.summary["msg"]
    assert scratch_dbs(pg) == []
    # truncated: the listing shows it, the set is damaged, nothing is restored
    with open(path, "r+b") as f:
        f.truncate(100)
    r = sauve.run("drill", env=env, json_stdout=True)
    assert r.code == 4, r.describe()
    assert f"postgres:{db}: damaged: " in r.summary["msg"], r.summary["msg"]
    assert scratch_dbs(pg) == []


def test_a_drill_stopped_by_sigterm_drops_its_scratch_database(pg, sauve, dbs, workdir, storage, small_template):
    from conftest import make_bindir
    from sauvecli import wait_for
    db = dbs.clone(small_template, "stopped")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_DRILL_DIR": workdir}
    assert sauve.run("backup", env=env).code == 0
    fifo = os.path.join(workdir, "hold")
    os.mkfifo(fifo)
    # pg_restore says it started, then waits on a FIFO nobody writes: the
    # drill is mid-restore, its scratch database created, when it is stopped
    # (the open of a FIFO with no writer blocks in bash itself, which
    # SIGTERM ends, as it ends a real pg_restore)
    fake = make_bindir(workdir, {"pg_restore": f'touch "$DIR/started"; exec 3< "{fifo}"; exec "$REAL" "$@"'})
    p = sauve.start("drill", env={**env, "SAUVE_PG_BINDIR": fake})
    wait_for(lambda: os.path.exists(os.path.join(fake, "started")), 60, "pg_restore to start")
    assert len(scratch_dbs(pg)) == 1
    p.send_signal(15)
    r = sauve.finish(p, 120)
    assert r.code == 1, r.describe()
    assert "stopped by SIGTERM" in r.summary["msg"], r.summary["msg"]
    assert scratch_dbs(pg) == []
    [(d, _m)] = committed_sets(storage)
    assert not os.path.exists(os.path.join(d, "results"))  # an interrupted drill records nothing


def test_a_drill_stopped_during_a_check_cancels_it_and_drops_the_scratch(pg, sauve, dbs, workdir, storage,
                                                                        small_template):
    from sauvecli import wait_for
    db = dbs.clone(small_template, "slowcheck")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_DRILL_DIR": workdir}
    assert sauve.run("backup", env=env).code == 0
    config = os.path.join(workdir, "config.yaml")
    with open(config, "w") as f:
        f.write(f"drill:\n  checks:\n    - name: slow\n      database: {db}\n"
                "      sql: select pg_sleep(3600) is not null\n")
    p = sauve.start("drill", "--config", config, env=env)
    wait_for(lambda: pg.scalar("postgres", "select count(*) from pg_stat_activity "
                                           "where query like 'select pg_sleep(3600)%'") == "1",
             120, "the check to run")
    p.send_signal(15)
    r = sauve.finish(p, 60)  # well within a pod's grace period, though the check would run an hour
    assert r.code == 1, r.describe()
    assert "stopped by SIGTERM" in r.summary["msg"], r.summary["msg"]
    assert scratch_dbs(pg) == []


def test_redis_and_a_tree_drilled_into_scratch_files_that_are_removed(servers, workdir, storage):
    from redisserver import fill_dataset
    from sauvecli import Sauve
    src = servers()
    fill_dataset(src, big_mb=1)
    keys = sum(int(src.cli("DBSIZE", db=n).strip()) for n in range(16))
    tree = os.path.join(workdir, "tree")
    os.makedirs(os.path.join(tree, "a", "b"))
    for i in range(20):
        with open(os.path.join(tree, "a", f"f{i}"), "wb") as f:
            f.write(os.urandom(i * 100))
    os.symlink("a/f1", os.path.join(tree, "link"))
    os.chmod(os.path.join(tree, "a", "b"), 0o555)  # the scratch copy must still be removed
    scratch = os.path.join(workdir, "scratch")
    os.mkdir(scratch)
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_REDIS_URL": src.url(),
                        "SAUVE_REDIS_PASSWORD": src.password, "SAUVE_REDIS_NAME": "cache",
                        "SAUVE_FILES": f"uploads={tree}", "SAUVE_DRILL_DIR": scratch})
    assert s.run("backup").code == 0
    r = s.run("drill", "--json")
    assert r.code == 0, r.describe()
    by = {x["source"]: x for x in json.loads(r.stdout)["sources"]}
    assert by["redis:cache"]["loaded"] and by["redis:cache"]["unit"] == "keys"
    assert by["redis:cache"]["counted"] == keys > 0
    assert f"the server reported {keys} key(s)" in by["redis:cache"]["detail"]
    entries = 1 + sum(len(ds) + len(fs) for _, ds, fs in os.walk(tree))
    assert by["files:uploads"]["counted"] == by["files:uploads"]["compared"] == entries
    assert os.listdir(scratch) == []
    # one spec only
    r = s.run("drill", "files:uploads", "--json")
    assert r.code == 0, r.describe()
    assert [x["source"] for x in json.loads(r.stdout)["sources"]] == ["files:uploads"]
    r = s.run("drill", "redis:other", json_stdout=True)
    assert r.code == 64 and "stores no redis:other" in r.summary["msg"], r.describe()
    os.chmod(os.path.join(tree, "a", "b"), 0o755)


def test_verify_records_its_result_and_pushes_under_its_own_job(pg, sauve, dbs, workdir, storage,
                                                               small_template, receiver):
    db = dbs.clone(small_template, "verified")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_DRILL_DIR": workdir,
           "SAUVE_PUSHGATEWAY_URL": receiver.url("/gw")}
    assert sauve.run("backup", env=env).code == 0
    [(_d, m)] = committed_sets(storage)
    r = sauve.run("verify", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    with open(os.path.join(storage, "default", m["id"], "results", "verify.json")) as f:
        rec = json.load(f)
    assert rec["command"] == "verify" and rec["ok"] is True and rec["set"] == m["id"]
    assert [s["source"] for s in rec["sources"]] == [f"postgres:{db}"]
    paths = [q["path"] for q in receiver.requests]
    assert paths == ["/gw/metrics/job/sauve/name/default", "/gw/metrics/job/sauve-verify/name/default"], paths
    body = receiver.requests[1]["body"]
    assert "sauve_last_verify_success 1\n" in body and "sauve_verify_status 0\n" in body
    assert "sauve_last_verify_timestamp_seconds " in body
    listed = sauve.run("list", env=env, json_stdout=True).stdout
    assert f"checked: verified {rec['finished'][:10]}" in listed, listed


def test_prune_removes_a_set_with_its_records(pg, sauve, dbs, workdir, storage, small_template):
    db = dbs.clone(small_template, "pruned")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_DRILL_DIR": workdir}
    assert sauve.run("backup", env=env).code == 0
    [(first, _m)] = committed_sets(storage)
    assert sauve.run("drill", env=env, json_stdout=True).code == 0
    assert sauve.run("verify", env=env, json_stdout=True).code == 0
    assert sorted(os.listdir(os.path.join(first, "results"))) == ["drill.json", "verify.json"]
    # the records are not artifacts: the set is still complete and intact
    [listed] = json.loads(sauve.run("list", "--json", env=env).stdout)["sets"]
    assert listed["status"] == "ok", listed
    assert sauve.run("backup", env={**env, "SAUVE_KEEP_LAST": "1"}).code == 0
    assert not os.path.exists(first)
    assert len(set_dirs(storage)) == 1


def test_a_scratch_server_without_the_dumps_roles_still_drills(pg, sauve, dbs, workdir, storage, small_template):
    """A throwaway server has none of the production roles: the drill
    loads without owners and grants, and proves the data."""
    import secrets
    owner, reader = f"drill_owner_{secrets.token_hex(3)}", f"drill_reader_{secrets.token_hex(3)}"
    db = dbs.clone(small_template, "roles")
    pg.psql("postgres", f"CREATE ROLE {owner}; CREATE ROLE {reader};")
    pg.psql(db, f"CREATE TABLE public.owned (v int); INSERT INTO public.owned VALUES (1), (2);"
                f"ALTER TABLE public.owned OWNER TO {owner}; GRANT SELECT ON public.owned TO {reader};")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_DRILL_DIR": workdir}
    assert sauve.run("backup", env=env).code == 0
    pg.psql("postgres", f"DROP DATABASE {db}; DROP ROLE {owner}; DROP ROLE {reader};")
    r = sauve.run("drill", "--json", env=env)
    assert r.code == 0, r.describe()
    [src] = json.loads(r.stdout)["sources"]
    assert src["ok"] and src["compared"] > 2, src
    assert scratch_dbs(pg) == []


def test_settings_the_drill_cannot_use_are_78_and_change_nothing(pg, sauve, dbs, workdir, storage, small_template,
                                                                 servers):
    from redisserver import fill_dataset
    db = dbs.clone(small_template, "settings")
    src = servers()
    fill_dataset(src, big_mb=1)
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_REDIS_URL": src.url(),
           "SAUVE_REDIS_PASSWORD": src.password, "SAUVE_REDIS_NAME": "cache"}
    assert sauve.run("backup", env=env).code == 0
    # a check naming a database the set does not hold is a mistake, not a check quietly skipped
    config = os.path.join(workdir, "config.yaml")
    with open(config, "w") as f:
        f.write("drill:\n  checks:\n    - name: typo\n      database: shpo\n      sql: select true\n")
    r = sauve.run("drill", "--config", config, env={**env, "SAUVE_DRILL_DIR": workdir}, json_stdout=True)
    assert r.code == 78, r.describe()
    assert "drill.checks 'typo' (config file line 3) names database shpo, which set" in r.summary["msg"]
    assert scratch_dbs(pg) == []
    # a drill directory that does not exist: the scratch server is not the set
    missing = os.path.join(workdir, "no-such-dir")
    r = sauve.run("drill", "--json", env={**env, "SAUVE_DRILL_DIR": missing})
    assert r.code == 78, r.describe()
    by = {x["source"]: x for x in json.loads(r.stdout)["sources"]}
    assert by[f"postgres:{db}"]["ok"] is True  # PostgreSQL needs no directory
    assert f"SAUVE_DRILL_DIR (drill.dir) {missing} is not a directory sauve can write in" in \
        by["redis:cache"]["detail"]


def test_a_drill_leaves_the_source_database_alone_and_all_skips_scratch_copies(pg, sauve, dbs, workdir, storage,
                                                                               small_template):
    """A drill on the production server: the source database is unchanged;
    and a backup of 'all' leaves sauve's scratch copies out."""
    from pgdata import db_state
    db = dbs.clone(small_template, "prod")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_DRILL_DIR": workdir}
    assert sauve.run("backup", env=env).code == 0
    before = db_state(pg, db)
    r = sauve.run("drill", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    assert db_state(pg, db) == before
    scratch = dbs.expect(f"sauve_drill_00000000_{db}")
    pg.create_database(scratch)
    r = sauve.run("backup", env={**env, "SAUVE_PG_DATABASES": "all"})
    assert r.code == 0, r.describe()
    assert scratch not in [a["name"] for _d, m in committed_sets(storage) for a in m["artifacts"]]
    assert r.any_line(f"database {scratch} is a scratch copy of sauve's") is not None
