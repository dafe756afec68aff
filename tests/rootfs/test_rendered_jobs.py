"""The chart's Jobs, run as Kubernetes would run them: the chart is rendered
(tests/deploy's renderer) with values pointing at the loopback PostgreSQL and
RADOS Gateway; the container of each rendered pod (its command, args,
environment, ConfigMap and Secret files, user, fsGroup, read-only root,
termination log: podrun.run_spec) runs the image's rootfs
(container.run_pod; tests/image runs the built image instead, through the
fixture `runtime`). Nothing of the run is taken from anywhere but the
rendered manifest."""

import json

import pytest
import yaml

from pgdata import assert_same_state, db_state
from podrun import index_objects, run_spec

# tests/deploy's helpers, re-exported by conftest.py.
from conftest import manual_job, restore_jobs  # noqa: E402


def one(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, [(d["kind"], d["metadata"]["name"]) for d in docs]
    return found[0]


def chart_values(pg, bucket, db, **overrides):
    """Values a user would write for these servers: settings in config,
    credentials in secret.values."""
    server = bucket.server
    values = {
        "timeZone": "Europe/Paris",
        "config": {
            "storage": bucket.url,
            "pg": {"host": pg.host, "port": pg.port, "user": pg.superuser,
                   "databases": [db]},
            "s3": {"endpoint": server.endpoint, "region": server.region,
                   "path_style": True},
        },
        "secret": {"values": {
            "pgPassword": pg.superuser_password,
            "awsAccessKeyId": server.access_key,
            "awsSecretAccessKey": server.secret_key,
        }},
    }
    for path, value in overrides.items():
        node = values
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return values


@pytest.fixture
def render(helm, tmp_path):
    def render(values):
        f = tmp_path / f"values-{len(list(tmp_path.iterdir()))}.yaml"
        f.write_text(yaml.safe_dump(values))
        docs, _ = helm(str(f), name="app-backup", namespace="backups")
        return docs, index_objects(docs)

    return render


@pytest.fixture
def source_db(pg, dbs, small_template):
    return dbs.clone(small_template, "rendered")


def fatal_exit_codes(job_spec):
    """The exit codes of container sauve that the podFailurePolicy fails the
    Job on at once (action FailJob, operator In)."""
    codes = set()
    for rule in (job_spec.get("podFailurePolicy") or {}).get("rules", []):
        ec = rule.get("onExitCodes")
        if rule["action"] == "FailJob" and ec and ec.get("containerName", "sauve") == "sauve":
            assert ec["operator"] == "In", rule
            codes |= set(ec["values"])
    return codes


def committed_sets(bucket):
    return [k for k in bucket.keys() if k.endswith("/manifest.json")]


def run_backup_job(runtime, docs, objects, workdir, bucket):
    cronjob = one(docs, "CronJob")
    spec = run_spec(cronjob, objects)
    # What is about to run is the hardened pod of the manifest.
    assert spec.argv == ["/usr/local/bin/sauve", "backup"]
    assert spec.read_only_root and spec.user == 65532 and spec.capabilities_dropped == ["ALL"]
    assert "PGPASSWORD_FILE" in spec.environ and "PGPASSWORD" not in spec.environ
    r = runtime.run_pod(spec, workdir)
    assert r.code == 0, r.describe()
    r.check_log_contract()
    sets = committed_sets(bucket)
    assert len(sets) == 1, bucket.keys()
    manifest = json.loads(bucket.get(sets[0]))
    assert all(not a.get("error") for a in manifest["artifacts"]), manifest
    return r


def test_backup_job_and_check_pod(runtime, pg, source_db, bucket, render, workdir):
    docs, objects = render(chart_values(pg, bucket, source_db))
    assert not [d for d in docs if d["kind"] == "Job"]
    r = run_backup_job(runtime, docs, objects, workdir, bucket)
    # TZ came from the manifest (timeZone) and the image has the zone.
    assert r.any_line("names no time zone") is None, r.describe()
    assert r.any_line("error") is None, r.describe()
    # The helm test pod: sauve check reaches both servers, changes nothing.
    before = bucket.keys()
    check = runtime.run_pod(run_spec(one(docs, "Pod"), objects), workdir)
    assert check.code == 0, check.describe()
    assert bucket.keys() == before


def test_manual_backup_job_then_restore_job(runtime, pg, dbs, source_db, bucket, render, workdir):
    """The two kubectl commands of NOTES.txt: a manual backup Job made from
    the CronJob (`kubectl create job --from=cronjob/...`), then a restore
    Job made from the release's restore template, filled in with sed; the
    release itself holds no Job."""
    target = dbs.expect(dbs.name("restored"))
    docs, objects = render(chart_values(pg, bucket, source_db))
    assert not [d for d in docs if d["kind"] == "Job"]
    cronjob = one(docs, "CronJob")
    manual = manual_job(cronjob, "app-backup-sauve-manual-20261205023000")
    r = runtime.run_pod(run_spec(manual, objects), workdir)
    assert r.code == 0, r.describe()
    assert len(committed_sets(bucket)) == 1, bucket.keys()
    job = restore_jobs(docs, ID="r1", SOURCE=f"postgres:{source_db}", SET="latest", TARGET=target)[0]
    assert job["metadata"]["name"] == "app-backup-sauve-restore-r1"
    spec = run_spec(job, objects)
    assert spec.argv[1:3] == ["restore", f"postgres:{source_db}"] and "--yes" in spec.argv
    r = runtime.run_pod(spec, workdir)
    assert r.code == 0, r.describe()
    r.check_log_contract()
    assert_same_state(db_state(pg, source_db), db_state(pg, target), f"restore Job into {target}")


@pytest.mark.parametrize("override", [
    {"config.storage": ""},                 # required, accepted by the schema
    {"config.zstd.level": 99},              # sauve refuses it (1 to 19)
], ids=["no-storage", "zstd-99"])
def test_broken_configuration_fails_the_job_at_once(runtime, pg, source_db, bucket, render, workdir, override):
    docs, objects = render(chart_values(pg, bucket, source_db, **override))
    cronjob = one(docs, "CronJob")
    fatal = fatal_exit_codes(cronjob["spec"]["jobTemplate"]["spec"])
    assert fatal, cronjob["spec"]["jobTemplate"]["spec"]
    r = runtime.run_pod(run_spec(cronjob, objects), workdir)
    print(f"broken configuration {override}: exit {r.code}, fatal {sorted(fatal)}")
    assert r.code in fatal, (sorted(fatal), r.describe())
    assert r.termination, r.describe()
    assert bucket.keys() == [], bucket.keys()


def test_drill_cronjob_restores_the_set_into_a_scratch_database_and_drops_it(runtime, pg, source_db, bucket,
                                                                              render, workdir):
    """The weekly drill as the chart renders it: its own scratch server
    settings and password file, its emptyDir, the set restored, compared,
    its scratch database dropped, and the result stored beside the set."""
    values = chart_values(pg, bucket, source_db)
    values["drill"] = {"enabled": True, "scratch": {"host": pg.host, "port": pg.port, "user": pg.superuser,
                                                     "secret": {"pgPassword": pg.superuser_password}}}
    docs, objects = render(values)
    cronjobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CronJob"}
    [drill] = [c for n, c in cronjobs.items() if n.endswith("-drill")]
    [backup] = [c for n, c in cronjobs.items() if not n.endswith("-drill")]
    r = runtime.run_pod(run_spec(backup, objects), workdir)
    assert r.code == 0, r.describe()
    [manifest_key] = committed_sets(bucket)
    spec = run_spec(drill, objects)
    assert spec.argv == ["/usr/local/bin/sauve", "drill"]
    assert spec.read_only_root and spec.user == 65532
    r = runtime.run_pod(spec, workdir)
    assert r.code == 0, r.describe()
    r.check_log_contract(json_stdout=True)
    assert f"postgres:{source_db}" in r.stdout and "drill ok" in r.stdout, r.stdout
    record = manifest_key[: -len("manifest.json")] + "results/drill.json"
    rec = json.loads(bucket.get(record))
    assert rec["ok"] is True and any(s["source"] == f"postgres:{source_db}" and s["restore_seconds"] > 0
                                     for s in rec["sources"]), rec
    left = pg.rows("postgres", "select datname from pg_database where datname like 'sauve_drill_%'")
    assert left == [], left
