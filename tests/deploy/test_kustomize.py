"""The Kustomize base, components and overlays (deploy/kustomize), rendered
with `kubectl kustomize` and validated offline; the same defaults and
hardening as the chart."""

import os
import subprocess

import pytest
import yaml

from apirules import check
from conftest import KUSTOMIZE, fill_restore, kustomize, load_docs, one, pods, user_made_secret, write_values
from podrun import index_objects, run_spec

OVERLAYS = sorted(os.listdir(os.path.join(KUSTOMIZE, "overlays")))
TARGETS = ["base"] + [f"overlays/{o}" for o in OVERLAYS]


def render(target):
    return kustomize(os.path.join(KUSTOMIZE, target))


def test_the_overlays_the_issue_asks_for():
    assert {"production", "manual-backup", "restore", "restore-clean"} <= set(OVERLAYS)
    assert sorted(os.listdir(os.path.join(KUSTOMIZE, "components"))) == [
        "age-identity", "drill", "drill-age-identity", "env-from", "files", "manual-backup", "openshift", "redis",
        "restore", "restore-clean", "restore-files", "restore-redis", "restore-role", "sidecar"]


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
def test_same_defaults_and_hardening_as_the_chart(helm, tmp_path, target):
    # overlays/openshift: as the chart's openshift: true (no fixed ids)
    openshift = target == "overlays/openshift"
    chart = one(helm(write_values(tmp_path, "openshift: true\n"))[0] if openshift else helm()[0], "CronJob")
    docs, _ = render(target)
    cj = one(docs, "CronJob", "sauve")
    for key in ("concurrencyPolicy", "startingDeadlineSeconds", "successfulJobsHistoryLimit",
                "failedJobsHistoryLimit", "suspend"):
        assert cj["spec"][key] == chart["spec"][key], key
    for doc, job in [(cj, cj["spec"]["jobTemplate"]["spec"])] + [(d, d["spec"]) for d in docs if d["kind"] == "Job"]:
        cjob = chart["spec"]["jobTemplate"]["spec"]
        assert job["podFailurePolicy"] == cjob["podFailurePolicy"]
        assert job["activeDeadlineSeconds"] == cjob["activeDeadlineSeconds"]
        if doc["metadata"]["labels"].get("app.kubernetes.io/component") == "restore":
            assert "ttlSecondsAfterFinished" not in job  # its id stays taken
        else:
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
    secret = one(docs, "Secret", next(d["metadata"]["name"] for d in docs if d["kind"] == "Secret"
                                      and d["metadata"]["name"].startswith("sauve-credentials-")))
    assert secret["metadata"]["namespace"] == "backups"
    spec = run_spec(one(docs, "CronJob"), index_objects(docs))
    files = {k: v for k, v in spec.environ.items() if k.endswith("_FILE")}
    assert sorted(files) == ["AWS_ACCESS_KEY_ID_FILE", "AWS_SECRET_ACCESS_KEY_FILE", "PGPASSWORD_FILE",
                             "SAUVE_HEALTHCHECK_URL_FILE"]
    for path in files.values():
        assert spec.file(path), path
        creds = spec.mount_for(path)
        assert creds.kind == "secret" and creds.read_only
        assert all(mode == 0o440 for _, mode in creds.files.values())
    # the storage's keys (every pod's), and what the backups alone use
    assert spec.mount_for(files["AWS_ACCESS_KEY_ID_FILE"]).source.startswith("sauve-credentials-")
    for name in ("PGPASSWORD_FILE", "SAUVE_HEALTHCHECK_URL_FILE"):
        assert spec.mount_for(files[name]).source.startswith("sauve-backup-credentials-"), name
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


@pytest.mark.parametrize("overlay, clean", [("restore", False), ("restore-clean", True)])
def test_restore_job(overlay, clean):
    """The restore overlays render a Job template: filled in as the README
    says, it is the backups' pod with restore arguments, the restore role
    and the age identity."""
    docs, text = render(f"overlays/{overlay}")
    cj = one(docs, "CronJob")
    job = one(load_docs(fill_restore(text, ID="r1", SET="20261122T020000Z")), "Job", "sauve-restore-r1")
    assert job["metadata"]["namespace"] == "backups"
    assert job["metadata"]["labels"]["sauve/restore-id"] == "r1"
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["restore", "postgres:app", "--set", "20261122T020000Z", "--into", "app_check", "--yes"] + (
        ["--clean", "--confirm", "app_check"] if clean else [])
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "restore"
    assert job["spec"]["backoffLimit"] == 1
    # no TTL: the Job, and its id, stay until deleted
    assert "ttlSecondsAfterFinished" not in job["spec"]
    # otherwise the backups' pod: image, env, credentials, hardening
    cpod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod = job["spec"]["template"]["spec"]
    strip = lambda p: {**p, "containers": [{**p["containers"][0], "args": None}]}
    # ... and the age identity and the restore role, the restore Job's alone (test_age.py, test_restore.py),
    # without what the backups alone use: their role's password and the healthcheck URL
    # (test_kustomize_production.py)
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["SAUVE_AGE_IDENTITY_FILE"] == "/run/secrets/sauve-age/identity.txt"
    assert env["PGUSER"] == "app_restore" and env["PGPASSWORD_FILE"] == "/run/secrets/sauve-restore/pgpassword"
    own = ("age-identity", "restore-credentials")
    backups = ("backup-credentials",)
    cenv = {e["name"]: e["value"] for e in cpod["containers"][0]["env"]}
    assert {**cenv, **env} == {**cenv, "SAUVE_AGE_IDENTITY_FILE": env["SAUVE_AGE_IDENTITY_FILE"],
                               "PGUSER": "app_restore", "PGPASSWORD_FILE": env["PGPASSWORD_FILE"]}
    assert env.keys() == cenv.keys() - {"SAUVE_HEALTHCHECK_URL_FILE"} | {"SAUVE_AGE_IDENTITY_FILE", "PGUSER"}
    pod = {**pod, "volumes": [v for v in pod["volumes"] if v["name"] not in own],
           "containers": [{**c, "env": None,
                           "volumeMounts": [m for m in c["volumeMounts"] if m["name"] not in own]}]}
    cc = cpod["containers"][0]
    cpod = {**cpod, "volumes": [v for v in cpod["volumes"] if v["name"] not in backups],
            "containers": [{**cc, "env": None,
                            "volumeMounts": [m for m in cc["volumeMounts"] if m["name"] not in backups]}]}
    assert strip(pod) == strip(cpod)


def test_restore_template_unfilled_is_refused():
    """Applied as it is (kubectl apply -k by mistake, or a GitOps tool), the
    restore Job's name is no valid name: the API server refuses it."""
    docs, _ = render("overlays/restore")
    errs = check([one(docs, "Job")])
    assert any("sauve-restore-@ID@" in e and "RFC 1123" in e for e in errs), errs


def test_restore_component_default_is_harmless():
    """The component's arguments restore into the target the user names,
    never --clean (overlays/restore-clean adds it)."""
    with open(os.path.join(KUSTOMIZE, "components", "restore", "restore.yaml")) as f:
        patch = yaml.safe_load(yaml.safe_load(f)["patch"])
    args = next(p["value"] for p in patch if p["path"].endswith("/args"))
    assert args[:2] == ["restore", "@SOURCE@"] and "--into" in args and "--clean" not in args
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


def test_restore_command_of_the_readme_keeps_the_job_alone():
    """The README's restore pipeline: the overlay rendered, the printed sed
    run, then the -l selector `kubectl create` filters the documents by (the
    resource builder's FilterByLabelSelector on file input; no offline
    kubectl command applies it, so it is applied here): one Job, filled in,
    and nothing of the production setup."""
    import re
    import shlex

    with open(os.path.join(KUSTOMIZE, "README.md")) as f:
        readme = f.read()
    m = re.search(r"kubectl kustomize deploy/kustomize/overlays/restore \\\n\s+\| (sed [^\n]+) \\\n"
                  r"\s+\| kubectl create -n backups -l (\S+)=(\S+) -f -\n", readme)
    assert m, "the README's restore command"
    sed, key, value = m.groups()
    _, text = render("overlays/restore")
    r = subprocess.run(shlex.split(sed), input=text, capture_output=True, text=True, check=True)
    docs = load_docs(r.stdout)
    chosen = [d for d in docs if (d["metadata"].get("labels") or {}).get(key) == value]
    assert [(d["kind"], d["metadata"]["name"]) for d in chosen] == [("Job", "sauve-restore-1")]
    assert check(chosen) == []
    # and the selector is what the overlay's own comment says
    with open(os.path.join(KUSTOMIZE, "overlays", "restore", "kustomization.yaml")) as f:
        assert f"kubectl create -n backups -l {key}={value} -f -" in f.read()
