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
    - name: other database
      database: not-this-one
      sql: select false
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
