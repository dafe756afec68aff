"""The weekly restore drill (`sauve drill`) in the chart (drill: values, a
CronJob per target that enables it) and in Kustomize (components/drill,
overlays/drill), and its alerts.

A drill restores a set into a SCRATCH PostgreSQL server given by its own
libpq settings over config.pg (PGHOST, PGPORT, PGUSER, PGPASSWORD_FILE),
so the chart renders nothing until the user enables it and names that
server, and the drill pod never carries the backup role's password (it
would be sent to the scratch server). Every adversarial values file of
tests/deploy/values turns drill on too, so test_apirules.py checks the
drill CronJob, its manual Job and its names against the API server's rules."""

import os
import re
import subprocess

import pytest
import yaml

from apirules import check
from conftest import (CHART, EXAMPLES, KUSTOMIZE, ROOT, RenderError, example, k8s_tool, kustomize, load_docs,
                      manual_job, one, user_made_secret, write_values)
from podrun import index_objects, run_spec
from test_apirules import LONG_RELEASE, adversarial, manual_job_names

DRILL = example("drill-values.yaml")
SCRATCH = """
config:
  storage: s3://backups/prod
  pg: {host: app-db-rw.databases.svc, user: backup, databases: [app]}
secret:
  values:
    pgPassword: backup-role-pw
    awsAccessKeyId: AKIAEXAMPLE
    awsSecretAccessKey: aws-secret
    pushgatewayUrl: http://pushgateway.monitoring.svc:9091
    notifyUrl: https://hooks.example/x
    healthcheckUrl: https://hc-ping.com/x
drill:
  enabled: true
  scratch:
    host: pg-scratch.backups.svc
    user: sauve_drill
    secret: {pgPassword: scratch-pw}
"""


def drills(docs):
    return [d for d in docs if d["kind"] == "CronJob"
            and d["metadata"]["labels"].get("app.kubernetes.io/component") == "drill"]


def pod_of(cronjob):
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def env_of(cronjob):
    return {e["name"]: e.get("value") for e in pod_of(cronjob)["containers"][0]["env"]}


# --- not rendered unless asked for ----------------------------------------------


@pytest.mark.parametrize("case", [None] + [e for e in EXAMPLES if e != "drill-values.yaml"])
def test_no_drill_by_default(helm, case):
    docs, text = helm(*([] if case is None else [example(case)]))
    assert drills(docs) == []
    assert not [d for d in docs if d["metadata"]["labels"].get("app.kubernetes.io/component") == "drill"]
    assert "sauve drill" not in helm(*([] if case is None else [example(case)]), notes=True)
    pr = [d for d in docs if d["kind"] == "PrometheusRule"]
    for rule in pr:
        assert "sauve_last_drill" not in yaml.safe_dump(rule)


def test_scratch_settings_alone_render_nothing(helm, tmp_path):
    v = write_values(tmp_path, SCRATCH.replace("enabled: true", "enabled: false"))
    docs, _ = helm(v)
    assert drills(docs) == []
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-drill")]


@pytest.mark.parametrize("values, message", [
    ("config: {pg: {host: db}}\ndrill: {enabled: true}\n",
     "drill.enabled needs drill.scratch.host: the throwaway PostgreSQL server"),
    ("config: {pg: {host: db}}\ndrill: {enabled: true, scratch: {host: pg-scratch}}\n",
     "drill.enabled needs drill.scratch.user"),
    ("config: {pg: {host: db}}\ntargets: {app: {drill: {enabled: true}}, billing: {}}\n",
     "targets.app: drill.enabled needs drill.scratch.host"),
    ("config: {pg: {host: db}}\ndrill: {enabled: true, scratch: {host: s, user: u, secret: "
     "{existingSecret: x, pgPassword: y}}}\n",
     "drill.scratch.secret.pgPassword is set together with drill.scratch.secret.existingSecret \"x\""),
    ("config: {pg: {host: db}, age: {recipients: [age1qayj5wprugcpgc845qmuqdh4f0pcg3gvtwlrkfq43jj9h2t2s5xqg68ske]}}\n"
     "drill: {enabled: true, scratch: {host: s, user: u}}\n",
     "drill.enabled with encrypted backups (config.age) needs restore.ageIdentity.existingSecret"),
    ("config: {pg: {host: db}, storage: s3://b/p}\ndrill: {enabled: true, scratch: {host: s, user: u}}\n"
     "networkPolicy: {enabled: true, database: {to: [{podSelector: {}}]}, s3: {to: [{podSelector: {}}]}}\n",
     "networkPolicy.enabled with drill.enabled needs networkPolicy.scratch.to"),
])
def test_enabled_without_what_it_needs_fails_naming_the_value(helm, tmp_path, values, message):
    with pytest.raises(RenderError) as e:
        helm(write_values(tmp_path, values))
    assert message in str(e.value)


def test_real_helm_refuses_a_drill_without_scratch_server(tmp_path):
    v = write_values(tmp_path, "config: {pg: {host: db}}\ndrill: {enabled: true}\n")
    r = subprocess.run([k8s_tool("helm"), "template", "sauve", CHART, "-n", "backups", "-f", v],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "drill.enabled needs drill.scratch.host" in r.stderr


def test_a_target_of_redis_alone_needs_no_scratch_server(helm, tmp_path):
    """Only PostgreSQL is restored into a server; a Redis RDB goes to SAUVE_DRILL_DIR."""
    v = write_values(tmp_path, "config: {redis: {url: 'redis://redis-master.app.svc:6379'}}\n"
                               "drill: {enabled: true}\n")
    docs, _ = helm(v)
    [cj] = drills(docs)
    env = env_of(cj)
    assert "PGHOST" not in env and "PGUSER" not in env and "PGPASSWORD_FILE" not in env
    assert env["SAUVE_DRILL_DIR"] == "/var/lib/sauve/drill"


# --- the CronJob ------------------------------------------------------------------


def test_drill_cronjob(helm, tmp_path, validator):
    docs, text = helm(write_values(tmp_path, SCRATCH))
    [cj] = drills(docs)
    backup = one(docs, "CronJob", "sauve")
    assert cj["metadata"]["name"] == "sauve-drill"
    spec = cj["spec"]
    assert spec["schedule"] == "30 4 * * 0" and spec["timeZone"] == "Etc/UTC" and spec["suspend"] is False
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    # no retry: a drill that passed on a second attempt would hide the first
    assert job["backoffLimit"] == 0
    assert job["activeDeadlineSeconds"] == 21600
    assert job["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "drill"
    pod = pod_of(cj)
    c = pod["containers"][0]
    assert c["command"] == ["/usr/local/bin/sauve"] and c["args"] == ["drill"]
    # the backups' image, ServiceAccount, hardening and resources
    bpod = pod_of(backup)
    for key in ("serviceAccountName", "securityContext", "automountServiceAccountToken", "enableServiceLinks",
                "restartPolicy", "terminationGracePeriodSeconds"):
        assert pod[key] == bpod[key], key
    for key in ("image", "imagePullPolicy", "securityContext", "resources"):
        assert c[key] == bpod["containers"][0][key], key
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsNonRoot"] is True
    # the scratch server over config.pg, its password a file, never a literal
    env = env_of(cj)
    assert env["PGHOST"] == "pg-scratch.backups.svc" and env["PGPORT"] == "5432" and env["PGUSER"] == "sauve_drill"
    assert env["PGPASSWORD_FILE"] == "/run/secrets/sauve-drill/pgpassword"
    assert "PGPASSWORD" not in env and "PGSSLMODE" not in env
    assert env["SAUVE_DRILL_DIR"] == "/var/lib/sauve/drill"
    assert env["SAUVE_PUSHGATEWAY_URL_FILE"] and env["SAUVE_NOTIFY_URL_FILE"]
    # the drill pings no healthcheck (the backups' dead man's switch)
    assert "SAUVE_HEALTHCHECK_URL_FILE" not in env
    # a writable emptyDir, the only writable mount with /tmp
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    assert mounts["drill"]["mountPath"] == "/var/lib/sauve/drill" and not mounts["drill"].get("readOnly")
    assert vols["drill"] == {"name": "drill", "emptyDir": {"sizeLimit": "2Gi"}}
    for m in c["volumeMounts"]:
        assert m.get("readOnly") is True or m["mountPath"] in ("/tmp", "/var/lib/sauve/drill"), m
    # what sauve gets: the scratch role's password, and the backup role's nowhere
    objects = index_objects(docs)
    run = run_spec(cj, objects)
    assert run.argv == ["/usr/local/bin/sauve", "drill"]
    assert run.file(run.environ["PGPASSWORD_FILE"]) == b"scratch-pw"
    assert run.read_only_root is True
    for m in run.mounts:
        for content, _ in m.files.values():
            assert b"backup-role-pw" not in content, m.path
    secret = one(docs, "Secret", "sauve-drill")
    assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == "drill"
    # the backups never see the scratch password
    assert "sauve-drill" not in yaml.safe_dump(backup)
    assert check(docs) == []
    out = tmp_path / "rendered.yaml"
    out.write_text(text)
    assert validator(str(out))["errors"] == []


def test_drill_settings(helm):
    docs, _ = helm(DRILL)
    [cj] = drills(docs)
    env = env_of(cj)
    assert env["PGSSLMODE"] == "require" and env["PGUSER"] == "sauve_drill"
    pod = pod_of(cj)
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["drill-credentials"]["secret"] == {"secretName": "pg-scratch-credentials", "defaultMode": 0o440,
                                                   "items": [{"key": "password", "path": "pgpassword"}]}
    assert vols["drill"]["emptyDir"] == {"sizeLimit": "4Gi"}
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-drill")]
    # encrypted sets: the identity, as the restore Job has it; the backups never
    assert env["SAUVE_AGE_IDENTITY_FILE"] == "/run/secrets/sauve-age/identity.txt"
    assert vols["age-identity"]["secret"]["secretName"] == "sauve-age-identity"
    backup = yaml.safe_dump(one(docs, "CronJob", "sauve"))
    assert "sauve-age-identity" not in backup and "SAUVE_AGE_IDENTITY_FILE" not in backup
    objects = index_objects(docs + [user_made_secret(),
                                    user_made_secret("pg-scratch-credentials", {"password": "scratch"})])
    run = run_spec(cj, objects)
    assert run.file(run.environ["PGPASSWORD_FILE"]) == b"scratch"
    assert run.file(run.environ["SAUVE_AGE_IDENTITY_FILE"]).startswith(b"AGE-SECRET-KEY-1")
    # the NetworkPolicy lets the pods reach the scratch server
    np = one(docs, "NetworkPolicy")
    scratch = [r for r in np["spec"]["egress"]
               if r.get("to") == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "pg-scratch"}}}]]
    assert scratch and scratch[0]["ports"] == [{"protocol": "TCP", "port": 5432}]
    labels = cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in np["spec"]["podSelector"]["matchLabels"].items())


def test_set_sources_schedule_and_resources(helm):
    docs, _ = helm(adversarial("everything-on.yaml"))
    [cj] = drills(docs)
    c = pod_of(cj)["containers"][0]
    assert c["args"] == ["drill", "--set", "20261122T020000Z-482a3f91", "postgres:app", "postgres:analytics",
                         "redis:sessions", "files:invoices", "files:media-thumbnails-20"]
    assert cj["spec"]["timeZone"] == "Pacific/Chatham" and cj["spec"]["suspend"] is True
    assert c["resources"]["limits"]["memory"] == "16Gi"
    env = env_of(cj)
    assert env["PGPORT"] == "15432" and env["PGSSLMODE"] == "verify-full"
    # Redis' and the trees' credentials and mounts are the backups' only
    assert not {"SAUVE_REDIS_PASSWORD_FILE", "SAUVE_REDIS_TLS_CA_FILE", "SAUVE_HEALTHCHECK_URL_FILE"} & set(env)
    assert not [m for m in c["volumeMounts"] if m["mountPath"].startswith("/srv/")]
    # nor the pod affinity to the application's pod the trees' volumes need
    assert "requiredDuringSchedulingIgnoredDuringExecution" in pod_of(one(docs, "CronJob", "sauve"))["affinity"]["podAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod_of(cj)["affinity"]["podAffinity"]


# --- per target -----------------------------------------------------------------


def test_one_drill_per_target_that_enables_it(helm, tmp_path):
    v = write_values(tmp_path, """
config: {storage: s3://b/p, pg: {host: db}}
targets:
  app:
    drill:
      enabled: true
      scratch: {host: scratch-a, user: drill_a, secret: {existingSecret: scratch-a}}
  billing:
    config: {pg: {host: billing-db}}
  ledger:
    drill:
      enabled: true
      schedule: "0 5 * * 6"
      scratch: {host: scratch-l, user: drill_l, secret: {pgPassword: l-pw}}
""")
    docs, _ = helm(v)
    got = {d["metadata"]["labels"]["sauve/target"]: d for d in drills(docs)}
    assert sorted(got) == ["app", "ledger"]
    assert got["app"]["metadata"]["name"] == "sauve-app-drill"
    assert env_of(got["app"])["PGHOST"] == "scratch-a" and env_of(got["app"])["SAUVE_NAME"] == "app"
    assert env_of(got["ledger"])["PGUSER"] == "drill_l" and got["ledger"]["spec"]["schedule"] == "0 5 * * 6"
    assert got["app"]["spec"]["schedule"] == "30 4 * * 0"
    # each reads its target's config
    objects = index_objects(docs + [user_made_secret("scratch-a", {"pgpassword": "a-pw"})])
    run = run_spec(got["ledger"], objects)
    assert yaml.safe_load(run.file("/etc/sauve/config.yaml"))["name"] == "ledger"
    assert run.file(run.environ["PGPASSWORD_FILE"]) == b"l-pw"
    assert run_spec(got["app"], objects).file("/run/secrets/sauve-drill/pgpassword") == b"a-pw"
    assert one(docs, "Secret", "sauve-ledger-drill")
    notes = helm(v, notes=True)
    names = manual_job_names(notes)
    for cj in got.values():
        job = manual_job(cj, names[cj["metadata"]["name"]])
        assert check([job]) == []
    assert "--from=cronjob/sauve-app-drill" in notes and "--from=cronjob/sauve-billing-drill" not in notes
    assert check(docs) == []


def test_top_level_drill_reaches_every_target_but_the_one_turning_it_off(helm):
    docs, _ = helm(adversarial("many-targets.yaml"), name=LONG_RELEASE)
    crons = [d for d in docs if d["kind"] == "CronJob"]
    targets = {d["metadata"]["labels"]["sauve/target"] for d in drills(docs)}
    assert targets == {"a-target-of-twenty-1", "a-target-of-twenty-2"}
    names = [d["metadata"]["name"] for d in crons]
    assert len(set(names)) == len(names) and all(len(n) <= 52 for n in names)


# --- NOTES.txt --------------------------------------------------------------------


def test_notes_run_a_drill_now(helm):
    notes = helm(DRILL, name="prod", notes=True)
    docs, _ = helm(DRILL, name="prod")
    [cj] = drills(docs)
    assert "Run a drill now, and follow it:" in notes
    assert f"  kubectl create job -n backups --from=cronjob/{cj['metadata']['name']} \"$job\"" in notes
    names = manual_job_names(notes)
    job = manual_job(cj, names[cj["metadata"]["name"]])
    assert re.fullmatch(r"prod-sauve-drill-manual-\d{14}", job["metadata"]["name"])
    assert check([job]) == []
    assert run_spec(job, index_objects(docs + [user_made_secret(), user_made_secret(
        "pg-scratch-credentials", {"password": "x"})])).argv == ["/usr/local/bin/sauve", "drill"]


# --- alerts -----------------------------------------------------------------------


def alerts_file():
    with open(os.path.join(ROOT, "deploy", "alerts", "prometheus-rules.yaml")) as f:
        return yaml.safe_load(f)


def test_alerts_file_has_the_drill_alerts():
    groups = {g["name"]: {r["alert"]: r for r in g["rules"]} for g in alerts_file()["spec"]["groups"]}
    drill = groups["sauve-drill"]
    assert sorted(drill) == ["SauveDrillFailed", "SauveDrillNeverSucceeded", "SauveNoRecentDrill"]
    assert re.fullmatch(r'time\(\) - sauve_last_drill_success_timestamp_seconds\{job="sauve-drill"\} > 8 \* 86400',
                        drill["SauveNoRecentDrill"]["expr"])
    assert drill["SauveDrillFailed"]["expr"] == 'sauve_last_drill_success{job="sauve-drill"} == 0'
    assert "absent(sauve_last_drill_success_timestamp_seconds{job=\"sauve-drill\"" in \
        drill["SauveDrillNeverSucceeded"]["expr"]
    assert drill["SauveDrillNeverSucceeded"]["for"] == "192h"
    assert groups["sauve-verify"]["SauveVerifyFailed"]["expr"] == 'sauve_last_verify_success{job="sauve-verify"} == 0'
    for g in groups.values():
        for name, r in g.items():
            assert r["labels"]["severity"] in ("warning", "critical"), name
            assert r["annotations"]["summary"], name
    # and the README's table names them
    with open(os.path.join(ROOT, "deploy", "alerts", "README.md")) as f:
        readme = f.read()
    for name in ("SauveNoRecentDrill", "SauveDrillFailed", "SauveDrillNeverSucceeded", "SauveVerifyFailed"):
        assert f"| {name} |" in readme


def test_chart_drill_alerts_are_those_of_deploy_alerts(helm):
    docs, _ = helm(DRILL)
    pr = one(docs, "PrometheusRule")
    [group] = [g for g in pr["spec"]["groups"] if g["name"] == "sauve-drill"]
    got = {r["alert"]: r for r in group["rules"]}
    want = {r["alert"]: r for g in alerts_file()["spec"]["groups"] if g["name"] == "sauve-drill"
            for r in g["rules"]}
    assert sorted(got) == sorted(want)
    norm = lambda e: re.sub(r"\s+", " ", re.sub(r', name="(app|default)"', "", e)).strip()
    for name, r in got.items():
        assert 'job="sauve-drill", name="app"' in r["expr"], r["expr"]
        assert norm(r["expr"]) == norm(want[name]["expr"]), name
        assert r.get("for") == want[name].get("for"), name
        assert r["labels"] == want[name]["labels"], name
        assert r["annotations"]["summary"].replace("series app", "series default") == \
            want[name]["annotations"]["summary"], name
    # verify's alerts are not the chart's: it schedules no verify
    assert "sauve_last_verify" not in yaml.safe_dump(pr)
    assert check([pr]) == []


def test_chart_drill_alerts_of_several_targets(helm, tmp_path):
    v = write_values(tmp_path, """
config: {pg: {host: db}}
prometheusRule: {enabled: true, noDrillDays: 15}
drill: {enabled: true, scratch: {host: s, user: u}}
targets: {app: {}, billing: {drill: {enabled: false}}, ledger: {config: {name: ledger.v2}}}
""")
    docs, _ = helm(v)
    pr = one(docs, "PrometheusRule")
    [group] = [g for g in pr["spec"]["groups"] if g["name"] == "sauve-drill"]
    rules = {r["alert"]: r for r in group["rules"] if r["alert"] != "SauveDrillNeverSucceeded"}
    assert 'name=~"app|ledger\\\\.v2"' in rules["SauveDrillFailed"]["expr"]
    assert rules["SauveNoRecentDrill"]["expr"].endswith("> 15 * 86400")
    never = [r for r in group["rules"] if r["alert"] == "SauveDrillNeverSucceeded"]
    assert [r["expr"] for r in never] == [
        'absent(sauve_last_drill_success_timestamp_seconds{job="sauve-drill", name="app"})',
        'absent(sauve_last_drill_success_timestamp_seconds{job="sauve-drill", name="ledger.v2"})']
    assert all(r["for"] == "360h" for r in never)
    assert check([pr]) == []


# --- Kustomize --------------------------------------------------------------------


def test_kustomize_drill_overlay(validator, tmp_path):
    docs, text = kustomize(os.path.join(KUSTOMIZE, "overlays", "drill"))
    cj = one(docs, "CronJob", "sauve-drill")
    backup = one(docs, "CronJob", "sauve")
    assert cj["metadata"]["namespace"] == "backups"
    assert cj["metadata"]["labels"]["app.kubernetes.io/component"] == "drill"
    spec = cj["spec"]
    assert spec["schedule"] == "30 4 * * 0" and spec["concurrencyPolicy"] == "Forbid"
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert spec["jobTemplate"]["spec"]["podFailurePolicy"] == backup["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]
    pod, bpod = pod_of(cj), pod_of(backup)
    assert spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "drill"
    c, bc = pod["containers"][0], bpod["containers"][0]
    assert c["args"] == ["drill"]
    for key in ("image", "command", "securityContext", "resources"):
        assert c[key] == bc[key], key
    assert pod["securityContext"] == bpod["securityContext"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and c["securityContext"]["runAsNonRoot"] is True
    env = env_of(cj)
    assert env["PGHOST"] and env["PGUSER"] and env["PGPORT"] == "5432"
    assert env["PGPASSWORD_FILE"] == "/run/secrets/sauve-drill/pgpassword"
    assert env["SAUVE_DRILL_DIR"] == "/var/lib/sauve/drill"
    assert env["SAUVE_AGE_IDENTITY_FILE"] == "/run/secrets/sauve-age/identity.txt"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["drill"]["emptyDir"]["sizeLimit"] == "2Gi"
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["drill"]["mountPath"] == "/var/lib/sauve/drill" and not mounts["drill"].get("readOnly")
    # the generated Secret (its hashed name) is the one mounted
    objects = index_objects(docs + [user_made_secret()])
    run = run_spec(cj, objects)
    assert run.file(run.environ["PGPASSWORD_FILE"]) == b"CHANGE-ME\n"
    assert run.file(run.environ["SAUVE_AGE_IDENTITY_FILE"])
    # the backups get neither the scratch password nor the identity
    btext = yaml.safe_dump(backup)
    assert "sauve-drill" not in btext and "sauve-age" not in btext and "PGHOST" not in btext
    assert check(docs) == []
    out = tmp_path / "rendered.yaml"
    out.write_text(text)
    assert validator(str(out))["errors"] == []


def test_kustomize_drill_component_without_identity(tmp_path):
    """components/drill alone, on the base: it builds, and mounts no identity."""
    rel = lambda p: os.path.relpath(os.path.join(KUSTOMIZE, p), tmp_path)
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "ns",
        "resources": [rel("base")], "components": [rel("components/drill")],
        "secretGenerator": [{"name": "sauve-drill-credentials", "literals": ["pgpassword=x"]}]}))
    docs, _ = kustomize(str(tmp_path))
    cj = one(docs, "CronJob", "sauve-drill")
    assert "SAUVE_AGE_IDENTITY_FILE" not in env_of(cj)
    assert run_spec(cj, index_objects(docs)).file("/run/secrets/sauve-drill/pgpassword") == b"x"
    assert check(docs) == []


@pytest.mark.parametrize("components", [["drill-age-identity"], ["drill-age-identity", "drill"]])
def test_kustomize_drill_identity_needs_the_drill_before_it(tmp_path, components):
    """components/drill-age-identity without components/drill, or before it,
    fails the build (rather than a drill without the identity)."""
    rel = lambda p: os.path.relpath(os.path.join(KUSTOMIZE, p), tmp_path)
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [rel("base")], "components": [rel(f"components/{c}") for c in components],
        "secretGenerator": [{"name": "sauve-drill-credentials", "literals": ["pgpassword=x"]}]}))
    with pytest.raises(RenderError, match="CronJob.v1.batch/sauve-drill"):
        kustomize(str(tmp_path))
