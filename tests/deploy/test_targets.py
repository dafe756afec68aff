"""Several targets in one release (issue 12): `targets:` in the style of
velero's `schedules:`, each entry merged over the top-level values and made
into its own CronJob, ConfigMap, Secret, schedule, series (SAUVE_NAME),
restore template and `helm test` pod; the ServiceAccount, NetworkPolicy and
PrometheusRule shared. ci/targets-values.yaml has three; the single-target
values (every other test) keep their names. Kustomize: overlays/multi-target."""

import os
import subprocess

import pytest
import yaml

from apirules import check, selector_matches
from conftest import (KUSTOMIZE, RenderError, configs, example, kustomize, manual_job, one, pods, restore_jobs,
                      write_values)
from podrun import index_objects, run_spec
from test_apirules import manual_job_names
from test_schema import errors as schema_errors

TARGETS = example("targets-values.yaml")
NAMES = ["analytics", "app", "billing"]


@pytest.fixture(scope="module")
def three(helm):
    docs, _ = helm(TARGETS)
    return docs


def by_target(docs, kind):
    return {d["metadata"]["labels"]["sauve/target"]: d for d in docs if d["kind"] == kind
            and "sauve/target" in d["metadata"]["labels"]}


def test_one_cronjob_configmap_secret_and_check_per_target(three):
    assert sorted(by_target(three, "CronJob")) == NAMES
    assert {t: d["metadata"]["name"] for t, d in by_target(three, "CronJob").items()} == {
        "analytics": "sauve-analytics", "app": "sauve-app", "billing": "sauve-billing"}
    assert sorted(c["metadata"]["name"] for c in configs(three)) == ["sauve-analytics", "sauve-app", "sauve-billing"]
    assert sorted(by_target(three, "Secret")) == NAMES
    assert sorted(by_target(three, "Pod")) == NAMES
    # shared
    for kind in ("ServiceAccount", "NetworkPolicy", "PrometheusRule"):
        assert [d["metadata"]["name"] for d in three if d["kind"] == kind] == ["sauve"], kind
    assert check(three) == []


def test_each_target_has_its_settings(three):
    crons = by_target(three, "CronJob")
    assert crons["app"]["spec"]["schedule"] == "0 2 * * *" and crons["app"]["spec"]["timeZone"] == "Etc/UTC"
    assert crons["billing"]["spec"]["schedule"] == "30 2 * * *"
    assert crons["billing"]["spec"]["timeZone"] == "Europe/Paris"
    assert crons["analytics"]["spec"]["suspend"] is True and crons["app"]["spec"]["suspend"] is False
    billing_pod = crons["billing"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert billing_pod["containers"][0]["resources"]["limits"]["memory"] == "2Gi"
    app_pod = crons["app"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert app_pod["containers"][0]["resources"]["limits"]["memory"] == "1Gi"
    objects = index_objects(three)
    want = {  # target: (series, host, port, databases, password)
        "app": ("app", "app-db-rw.databases.svc", None, ["app"], b"not-a-real-app-password"),
        "billing": ("billing", "billing-db.databases.svc", 6432, ["billing", "ledger"],
                    b"not-a-real-billing-password"),
        "analytics": ("analytics-weekly", "analytics-db.databases.svc", None, ["all"],
                      b"not-a-real-analytics-password"),
    }
    for target, (series, host, port, dbs, pw) in want.items():
        spec = run_spec(crons[target], objects)
        cfg = yaml.safe_load(spec.file("/etc/sauve/config.yaml"))
        assert cfg["name"] == series and spec.environ["SAUVE_NAME"] == series
        assert cfg["pg"]["host"] == host and cfg["pg"].get("port") == port and cfg["pg"]["databases"] == dbs
        assert cfg["pg"]["user"] == "backup" and cfg["storage"] == "s3://backups/prod"  # shared
        assert spec.file(spec.environ["PGPASSWORD_FILE"]) == pw
        assert spec.file(spec.environ["AWS_ACCESS_KEY_ID_FILE"]) == b"AKIAEXAMPLE"  # shared
        assert spec.service_account == "sauve"
    assert yaml.safe_load(one(three, "ConfigMap", "sauve-billing")["data"]["config.yaml"])["keep"]["daily"] == 30
    assert yaml.safe_load(one(three, "ConfigMap", "sauve-app")["data"]["config.yaml"])["keep"]["daily"] == 7


def test_every_target_config_is_accepted_by_sauve(three, sauve_bin, tmp_path):
    for cm in configs(three):
        cfg = tmp_path / f"{cm['metadata']['name']}.yaml"
        cfg.write_text(cm["data"]["config.yaml"])
        store = tmp_path / f"store-{cm['metadata']['name']}"
        store.mkdir()
        r = subprocess.run([sauve_bin, "list"], capture_output=True, text=True, env={
            "PATH": "/usr/bin:/bin", "SAUVE_STORAGE": f"file://{store}", "SAUVE_CONFIG": str(cfg),
            "SAUVE_LOG_FORMAT": "text"})
        assert r.returncode == 0 and "warn" not in r.stderr.lower(), r.stderr


def test_shared_network_policy_and_alerts_cover_every_target(three):
    np = one(three, "NetworkPolicy")
    for _, tmpl in pods(three):
        assert selector_matches(np["spec"]["podSelector"], tmpl["metadata"]["labels"])
    pg_ports = np["spec"]["egress"][1]["ports"]
    assert sorted(p["port"] for p in pg_ports) == [5432, 6432]
    rules = [r for g in one(three, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    success = next(r for r in rules if r["alert"] == "SauveNoRecentSuccess")
    assert 'name=~"analytics-weekly|app|billing"' in success["expr"], success["expr"]
    never = sorted(r["expr"] for r in rules if r["alert"] == "SauveNeverRan")
    assert never == [f'absent(sauve_last_run_timestamp_seconds{{job="sauve", name="{n}"}})'
                     for n in ("analytics-weekly", "app", "billing")]


def test_restore_and_manual_backup_per_target(helm, three):
    crons = by_target(three, "CronJob")
    objects = index_objects(three + [{"kind": "Secret", "metadata": {"name": "billing-restore-credentials"},
                                      "stringData": {"pgpassword": "billing-restore-pw"}}])
    jobs = {j["metadata"]["labels"]["sauve/target"]: j for j in restore_jobs(three)}
    assert {t: j["metadata"]["name"] for t, j in jobs.items()} == {
        "analytics": "sauve-analytics-restore-1", "app": "sauve-app-restore-1", "billing": "sauve-billing-restore-1"}
    billing = run_spec(jobs["billing"], objects)
    assert billing.environ["PGUSER"] == "billing_restore"
    assert billing.file(billing.environ["PGPASSWORD_FILE"]) == b"billing-restore-pw"
    app = run_spec(jobs["app"], objects)
    assert "PGUSER" not in app.environ
    assert app.file(app.environ["PGPASSWORD_FILE"]) == b"not-a-real-app-password"
    assert yaml.safe_load(app.file("/etc/sauve/config.yaml"))["pg"]["host"] == "app-db-rw.databases.svc"
    notes = helm(TARGETS, notes=True)
    names = manual_job_names(notes)
    assert sorted(names) == ["sauve-analytics", "sauve-app", "sauve-billing"]
    for target, cj in crons.items():
        job = manual_job(cj, names[cj["metadata"]["name"]])
        assert check([job]) == []
        assert f"kubectl get configmap -n backups sauve-{target}-restore -o jsonpath='{{.data.restore}}'" in notes
        assert f"Target {target}: sauve backs up PostgreSQL" in notes
    assert "-e 's/@SOURCE@/postgres:billing/g'" in notes


def test_single_target_values_keep_their_names(helm):
    docs, _ = helm(example("network-monitoring-values.yaml"))
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} == {
        ("ConfigMap", "sauve"), ("ConfigMap", "sauve-restore"), ("CronJob", "sauve"), ("Secret", "sauve"),
        ("ServiceAccount", "sauve"), ("NetworkPolicy", "sauve"), ("PrometheusRule", "sauve"), ("Pod", "sauve-check")}
    for d in docs:
        assert "sauve/target" not in d["metadata"]["labels"]
    cj = one(docs, "CronJob")
    env = {e["name"] for e in cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "SAUVE_NAME" not in env  # config.name, as before


def test_a_target_can_unset_what_the_top_level_sets(helm, tmp_path):
    """false, 0 and "" in a target replace the top-level value (a merge that
    skips empty values would keep the top-level one)."""
    v = write_values(tmp_path, "suspend: true\nbackoffLimit: 3\ntargets:\n  a:\n    suspend: false\n"
                     "    backoffLimit: 0\n  b: {}\n")
    crons = by_target(helm(v)[0], "CronJob")
    assert crons["a"]["spec"]["suspend"] is False and crons["b"]["spec"]["suspend"] is True
    assert crons["a"]["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert crons["b"]["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 3


@pytest.mark.parametrize("values, where", [
    ("targets:\n  App: {}\n", "$.targets: 'App' does not match"),
    ("targets:\n  a-name-longer-than-twenty: {}\n", "$.targets: 'a-name-longer-than-twenty' is too long"),
    ("targets:\n  a:\n    schedul: '0 3 * * *'\n", "$.targets.a: Additional properties are not allowed"),
    ("targets:\n  a:\n    networkPolicy: {enabled: true}\n", "$.targets.a: Additional properties are not allowed"),
    ("targets:\n  a:\n    config: {pg: {port: '5432'}}\n", "$.targets.a.config.pg.port: '5432' is not of type"),
])
def test_schema_refuses_bad_targets(helm, tmp_path, values, where):
    errs = schema_errors(helm(write_values(tmp_path, values), dump_values=True))
    assert any(e.startswith(where) for e in errs), errs


def test_target_mistakes_stop_the_render(helm, tmp_path):
    v = write_values(tmp_path, "targets:\n  a:\n    secret: {values: {awsAccessKeyId: AKIA}}\n")
    with pytest.raises(RenderError, match="S3 static keys come in pairs"):
        helm(v)


# --- Kustomize: overlays/multi-target ---------------------------------------------


def test_kustomize_multi_target_overlay():
    docs, _ = kustomize(os.path.join(KUSTOMIZE, "overlays", "multi-target"))
    crons = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CronJob"}
    assert sorted(crons) == ["sauve", "sauve-billing"]
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"] == ["sauve"]
    objects = index_objects(docs)
    app, billing = run_spec(crons["sauve"], objects), run_spec(crons["sauve-billing"], objects)
    app_cfg = yaml.safe_load(app.file("/etc/sauve/config.yaml"))
    billing_cfg = yaml.safe_load(billing.file("/etc/sauve/config.yaml"))
    assert app_cfg["name"] == "app" and billing_cfg["name"] == "billing"
    assert billing_cfg["pg"]["host"] == "billing-db.databases.svc" and billing_cfg["pg"]["databases"] == ["billing"]
    assert billing.file(billing.environ["PGPASSWORD_FILE"]) == b"CHANGE-ME-BILLING\n"
    assert billing.mount_for(billing.environ["PGPASSWORD_FILE"]).source.startswith("sauve-billing-credentials-")
    assert app.mount_for(app.environ["PGPASSWORD_FILE"]).source.startswith("sauve-backup-credentials-")
    # its own dead man's switch, the storage's keys shared (the same store)
    assert billing.file(billing.environ["SAUVE_HEALTHCHECK_URL_FILE"]) not in (
        None, app.file(app.environ["SAUVE_HEALTHCHECK_URL_FILE"]))
    assert billing.environ["SAUVE_NAME"] == "billing"
    assert billing.mount_for("/run/secrets/sauve").source == app.mount_for("/run/secrets/sauve").source
    assert billing.file(billing.environ["AWS_ACCESS_KEY_ID_FILE"]) == app.file(app.environ["AWS_ACCESS_KEY_ID_FILE"])
    assert crons["sauve-billing"]["spec"]["schedule"] == "30 2 * * *"
    # the hardening and the job policy are the production CronJob's
    for key in ("podFailurePolicy", "backoffLimit", "activeDeadlineSeconds"):
        assert crons["sauve-billing"]["spec"]["jobTemplate"]["spec"][key] == crons["sauve"]["spec"]["jobTemplate"]["spec"][key]
    assert check(docs) == []
