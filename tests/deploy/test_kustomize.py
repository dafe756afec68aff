"""The Kustomize base, components and overlays (deploy/kustomize), rendered
with `kubectl kustomize` and validated offline; the same defaults and
hardening as the chart."""

import os
import subprocess

import pytest
import yaml

from conftest import KUSTOMIZE, kustomize, one, pods, user_made_secret
from podrun import index_objects, run_spec

OVERLAYS = sorted(os.listdir(os.path.join(KUSTOMIZE, "overlays")))
TARGETS = ["base"] + [f"overlays/{o}" for o in OVERLAYS]


def render(target):
    return kustomize(os.path.join(KUSTOMIZE, target))


def test_the_overlays_the_issue_asks_for():
    assert {"production", "manual-backup", "restore"} <= set(OVERLAYS)
    assert sorted(os.listdir(os.path.join(KUSTOMIZE, "components"))) == ["age-identity", "manual-backup", "restore"]


@pytest.mark.parametrize("target", TARGETS)
def test_renders_and_validates_offline(validator, tmp_path, target):
    docs, text = render(target)
    out = tmp_path / "rendered.yaml"
    out.write_text(text)
    result = validator(str(out))
    assert result["errors"] == []
    assert {"CronJob", "ConfigMap", "ServiceAccount"} <= {d["kind"] for d in docs}


@pytest.mark.parametrize("target", TARGETS)
def test_references_resolve_within_the_output(target):
    """Generated names (with their hash) are what the pods reference, in the
    same namespace."""
    docs, _ = render(target)
    objects = index_objects(docs + [user_made_secret()])  # the age identity, made with kubectl
    namespaces = {d["metadata"].get("namespace") for d in docs}
    assert len(namespaces) == 1, namespaces
    for doc, _ in pods(docs):
        spec = run_spec(doc, objects)  # raises when a ConfigMap, Secret or key is missing
        assert spec.file("/etc/sauve/config.yaml")
        assert spec.service_account in {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}


def chart_cronjob(helm):
    docs, _ = helm()
    return one(docs, "CronJob")


@pytest.mark.parametrize("target", TARGETS)
def test_same_defaults_and_hardening_as_the_chart(helm, target):
    chart = chart_cronjob(helm)
    docs, _ = render(target)
    cj = one(docs, "CronJob")
    for key in ("concurrencyPolicy", "startingDeadlineSeconds", "successfulJobsHistoryLimit",
                "failedJobsHistoryLimit", "suspend"):
        assert cj["spec"][key] == chart["spec"][key], key
    for doc, job in [(cj, cj["spec"]["jobTemplate"]["spec"])] + [(d, d["spec"]) for d in docs if d["kind"] == "Job"]:
        cjob = chart["spec"]["jobTemplate"]["spec"]
        assert job["podFailurePolicy"] == cjob["podFailurePolicy"]
        assert job["activeDeadlineSeconds"] == cjob["activeDeadlineSeconds"]
        assert job["ttlSecondsAfterFinished"] == cjob["ttlSecondsAfterFinished"]
        pod, cpod = job["template"]["spec"], cjob["template"]["spec"]
        for key in ("restartPolicy", "automountServiceAccountToken", "enableServiceLinks", "securityContext",
                    "terminationGracePeriodSeconds"):
            assert pod[key] == cpod[key], key
        c, cc = pod["containers"][0], cpod["containers"][0]
        for key in ("command", "securityContext", "terminationMessagePath", "terminationMessagePolicy"):
            assert c[key] == cc[key], key
        tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
        ctmp = next(v for v in cpod["volumes"] if v["name"] == "tmp")
        assert tmp["emptyDir"] == ctmp["emptyDir"]
    sa = one(docs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False


@pytest.mark.parametrize("target", TARGETS)
def test_env_names_are_settings_sauve_knows(known_env, target):
    docs, _ = render(target)
    for doc, tmpl in pods(docs):
        for e in tmpl["spec"]["containers"][0].get("env", []):
            assert e["name"] in known_env, e["name"]


def test_production_secret_generator_and_files(tmp_path):
    docs, _ = render("overlays/production")
    secret = one(docs, "Secret")
    assert secret["metadata"]["name"].startswith("sauve-credentials-")
    assert secret["metadata"]["namespace"] == "backups"
    spec = run_spec(one(docs, "CronJob"), index_objects(docs))
    files = {k: v for k, v in spec.environ.items() if k.endswith("_FILE")}
    assert sorted(files) == ["AWS_ACCESS_KEY_ID_FILE", "AWS_SECRET_ACCESS_KEY_FILE", "PGPASSWORD_FILE",
                             "SAUVE_HEALTHCHECK_URL_FILE"]
    for path in files.values():
        assert spec.file(path), path
    creds = spec.mount_for("/run/secrets/sauve")
    assert creds.kind == "secret" and creds.read_only
    assert all(mode == 0o440 for _, mode in creds.files.values())
    assert spec.environ["TZ"] == "Europe/Paris"
    assert one(docs, "CronJob")["spec"]["timeZone"] == "Europe/Paris"
    assert spec.image == "registry.example.com/platform/sauve:0.1.0"


def test_manual_backup_job_is_the_cronjobs_job():
    docs, _ = render("overlays/manual-backup")
    cj = one(docs, "CronJob")
    job = one(docs, "Job", "sauve-manual-backup")
    assert job["metadata"]["namespace"] == "backups"
    assert job["spec"] == cj["spec"]["jobTemplate"]["spec"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["backup"]


def test_restore_job():
    docs, _ = render("overlays/restore")
    cj = one(docs, "CronJob")
    job = one(docs, "Job", "sauve-restore")
    assert job["metadata"]["namespace"] == "backups"
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["restore", "postgres:app", "--set", "20261122T020000Z", "--clean", "--yes"]
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "restore"
    assert job["spec"]["backoffLimit"] == 1
    # otherwise the backups' pod: image, env, credentials, hardening
    cpod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod = job["spec"]["template"]["spec"]
    strip = lambda p: {**p, "containers": [{**p["containers"][0], "args": None}]}
    # ... and the age identity, the restore Job's alone (test_age.py)
    c = pod["containers"][0]
    assert {"name": "SAUVE_AGE_IDENTITY_FILE", "value": "/run/secrets/sauve-age/identity.txt"} in c["env"]
    pod = {**pod, "volumes": [v for v in pod["volumes"] if v["name"] != "age-identity"],
           "containers": [{**c, "env": [e for e in c["env"] if e["name"] != "SAUVE_AGE_IDENTITY_FILE"],
                           "volumeMounts": [m for m in c["volumeMounts"] if m["name"] != "age-identity"]}]}
    assert strip(pod) == strip(cpod)


def test_restore_component_default_is_harmless():
    """Used alone, the component restores into a new database (app_check)."""
    with open(os.path.join(KUSTOMIZE, "components", "restore", "restore.yaml")) as f:
        patch = yaml.safe_load(yaml.safe_load(f)["patch"])
    args = next(p["value"] for p in patch if p["path"].endswith("/args"))
    assert args[:2] == ["restore", "postgres:app"] and "--into" in args and "--clean" not in args
    assert args[-1] == "--yes"


@pytest.mark.parametrize("target", ["base", "overlays/production"])
def test_config_is_accepted_by_sauve(sauve_bin, tmp_path, target):
    docs, _ = render(target)
    cm = one(docs, "ConfigMap")
    text = cm["data"]["config.yaml"]
    assert yaml.safe_load(text)["notify"] == {"on": "failure"}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    store = tmp_path / "store"
    store.mkdir()
    env = {"PATH": "/usr/bin:/bin", "SAUVE_STORAGE": f"file://{store}", "SAUVE_CONFIG": str(cfg),
           "SAUVE_LOG_FORMAT": "text"}
    r = subprocess.run([sauve_bin, "list"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "warn" not in r.stderr.lower(), r.stderr
