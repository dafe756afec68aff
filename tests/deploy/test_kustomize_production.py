"""Kustomize as the chart (issue 12, "What production installs also need"):
each pod mounts the credentials of its own role only, and the production
options of the chart (sidecars, extraEnvFrom, openshift) as components.

Credentials: overlays/production splits what every pod uses (the storage's
keys, sauve-credentials) from what the backups alone use (the backup role's
password and the healthcheck URL, sauve-backup-credentials); the restore
Job and the drill take the second out and mount their own role's Secret.
The tests run on a copy of the tree whose credential files all hold
distinct values, so that "no file holds the backup password" is decided by
content, whatever the placeholders say. Every build here is also checked by
the API server's rules (apirules) and validate.js."""

import os
import shutil
import uuid

import pytest
import yaml

from apirules import check
from conftest import KUSTOMIZE, fill_restore, kustomize, load_docs, one, user_made_secret, write_values
from podrun import index_objects, pod_template, run_spec

def distinct_tree(tmp_path):
    """A copy of deploy/kustomize whose credential files each hold a value
    of their own: {relative path: bytes}."""
    root = tmp_path / "kustomize"
    shutil.copytree(KUSTOMIZE, root)
    values = {}
    for dirpath, dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "credentials":
            continue
        for fn in files:
            p = os.path.join(dirpath, fn)
            rel = os.path.relpath(p, root)
            data = f"{rel}-{uuid.uuid4().hex}".encode()
            with open(p, "wb") as f:
                f.write(data)
            values[rel] = data
    return root, values


def build(root, resources, components=(), extra=None, tmp=None):
    """kubectl kustomize of an overlay made in tmp: resources and
    components relative to root (the tree or its copy)."""
    tmp.mkdir(exist_ok=True)
    rel = lambda p: os.path.relpath(os.path.join(root, p), tmp)
    k = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "backups",
         "resources": [rel(r) for r in resources], "components": [rel(c) for c in components], **(extra or {})}
    (tmp / "kustomization.yaml").write_text(yaml.safe_dump(k))
    docs, text = kustomize(str(tmp))
    return docs, text


def mounted_files(spec):
    """{path: bytes} of every file a ConfigMap or Secret mount puts in the container."""
    return {os.path.join(m.path, rel): data for m in spec.mounts for rel, (data, _) in m.files.items()}


def assert_valid(docs, text, validator, tmp_path):
    assert check(docs) == []
    out = tmp_path / "rendered.yaml"
    out.write_text(text)
    assert validator(str(out))["errors"] == []


# --- each pod its own role's credentials ---------------------------------------------------------


@pytest.mark.parametrize("overlay, pg", [("restore", True), ("restore-clean", True), ("restore-files", False),
                                         ("restore-redis", False)])
def test_restore_job_never_holds_the_backup_roles_password(tmp_path, validator, overlay, pg):
    """No file of the restore Job holds the backup role's password or the
    healthcheck URL; a PostgreSQL restore's PGPASSWORD_FILE is the restore
    Secret's file; the storage's keys are there. The backup CronJob, built
    with it, still has its password (the test can fail)."""
    root, values = distinct_tree(tmp_path)
    backup_pw = values["overlays/production/credentials/pgpassword"]
    healthcheck = values["overlays/production/credentials/healthcheck-url"]
    _, text = kustomize(os.path.join(root, "overlays", overlay))
    docs = load_docs(fill_restore(text))
    objects = index_objects(docs + [user_made_secret()])
    job = run_spec(one(docs, "Job", "sauve-restore-1"), objects)
    files = mounted_files(job)
    assert not [p for p, data in files.items() if backup_pw in data or healthcheck in data], files.keys()
    assert "SAUVE_HEALTHCHECK_URL_FILE" not in job.environ
    tmpl = pod_template(one(docs, "Job", "sauve-restore-1"))
    assert not [v for v in tmpl["spec"]["volumes"]
                if (v.get("secret") or {}).get("secretName", "").startswith("sauve-backup-credentials")]
    if pg:
        assert job.environ["PGPASSWORD_FILE"] == "/run/secrets/sauve-restore/pgpassword"
        assert job.file(job.environ["PGPASSWORD_FILE"]) == values["overlays/production/credentials/restore-pgpassword"]
        assert job.mount_for(job.environ["PGPASSWORD_FILE"]).source.startswith("sauve-restore-credentials-")
        assert job.environ["PGUSER"] == "app_restore"
    else:
        assert "PGPASSWORD_FILE" not in job.environ  # files and Redis: no PostgreSQL at all
    assert job.file(job.environ["AWS_SECRET_ACCESS_KEY_FILE"]) == \
        values["overlays/production/credentials/aws-secret-access-key"]
    backup = run_spec(one(docs, "CronJob", "sauve"), objects)
    assert backup.file(backup.environ["PGPASSWORD_FILE"]) == backup_pw
    assert backup.file(backup.environ["SAUVE_HEALTHCHECK_URL_FILE"]) == healthcheck
    assert_valid(docs, fill_restore(text), validator, tmp_path)


def test_drill_never_holds_the_backup_or_redis_credentials(tmp_path, validator):
    """The drill over overlays/sources (Redis and a tree): its files hold
    neither the backup role's password, the healthcheck URL nor the Redis
    URL; PGPASSWORD_FILE is the scratch role's; the storage's keys are there."""
    root, values = distinct_tree(tmp_path)
    docs, text = build(root, ["overlays/sources"], ["components/drill", "components/drill-age-identity"],
                       {"secretGenerator": [{"name": "sauve-drill-credentials", "literals": [
                           "pgpassword=" + values["overlays/drill/credentials/drill-pgpassword"].decode()]}]},
                       tmp=tmp_path / "drill")
    objects = index_objects(docs + [user_made_secret()])
    drill = run_spec(one(docs, "CronJob", "sauve-drill"), objects)
    forbidden = [values[k] for k in ("overlays/production/credentials/pgpassword",
                                     "overlays/production/credentials/healthcheck-url",
                                     "overlays/sources/credentials/redis-url")]
    files = mounted_files(drill)
    assert not [p for p, data in files.items() if any(f in data for f in forbidden)], files.keys()
    assert drill.file(drill.environ["PGPASSWORD_FILE"]) == values["overlays/drill/credentials/drill-pgpassword"]
    assert not {"SAUVE_HEALTHCHECK_URL_FILE", "SAUVE_REDIS_URL_FILE"} & set(drill.environ)
    assert drill.file(drill.environ["AWS_ACCESS_KEY_ID_FILE"]) == values["overlays/production/credentials/aws-access-key-id"]
    # the backups of the same build keep all of theirs
    backup = run_spec(one(docs, "CronJob", "sauve"), objects)
    assert backup.file(backup.environ["SAUVE_REDIS_URL_FILE"]) == values["overlays/sources/credentials/redis-url"]
    assert backup.file(backup.environ["PGPASSWORD_FILE"]) == forbidden[0]
    assert_valid(docs, text, validator, tmp_path)


def test_the_drill_overlay_mounts_no_backup_password(tmp_path):
    root, values = distinct_tree(tmp_path)
    docs, _ = kustomize(os.path.join(root, "overlays", "drill"))
    drill = run_spec(one(docs, "CronJob", "sauve-drill"), index_objects(docs + [user_made_secret()]))
    backup_pw = values["overlays/production/credentials/pgpassword"]
    assert not [p for p, data in mounted_files(drill).items() if backup_pw in data]
    assert drill.file(drill.environ["PGPASSWORD_FILE"]) == values["overlays/drill/credentials/drill-pgpassword"]


def test_manual_backup_keeps_the_backup_credentials(tmp_path):
    """The manual backup is a backup: its role's password and healthcheck."""
    root, values = distinct_tree(tmp_path)
    docs, _ = kustomize(os.path.join(root, "overlays", "manual-backup"))
    job = run_spec(one(docs, "Job", "sauve-manual-backup"), index_objects(docs))
    assert job.file(job.environ["PGPASSWORD_FILE"]) == values["overlays/production/credentials/pgpassword"]
    assert job.file(job.environ["SAUVE_HEALTHCHECK_URL_FILE"]) == values["overlays/production/credentials/healthcheck-url"]


def test_restore_on_the_base_builds(tmp_path):
    """components/restore on a CronJob without the production Secrets (the
    base): taking out what is not there changes nothing."""
    docs, text = build(KUSTOMIZE, ["base"], ["components/restore"], tmp=tmp_path / "b")
    job = one(load_docs(fill_restore(text)), "Job", "sauve-restore-1")
    base = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"] == base["volumes"]
    assert pod["containers"][0]["volumeMounts"] == base["containers"][0]["volumeMounts"]


# --- the chart's production options ----------------------------------------------------------


def on_cloud_sql(tmp_path, components):
    return build(KUSTOMIZE, ["overlays/cloud-sql"], components,
                 {"secretGenerator": [{"name": "sauve-drill-credentials", "literals": ["pgpassword=x"]}]},
                 tmp=tmp_path / "cloud-sql")


def test_cloud_sql_sidecar_is_native_in_every_pod(tmp_path, validator):
    """components/sidecar: the proxy is an init container with
    restartPolicy Always and a startupProbe (sauve starts once it listens),
    in the CronJob and in what copies it (manual backup, restore, drill);
    sauve reaches the database on 127.0.0.1, the drill its scratch server."""
    docs, text = on_cloud_sql(tmp_path, ["components/manual-backup", "components/restore",
                                         "components/restore-role", "components/drill"])
    filled = load_docs(fill_restore(text))
    objects = index_objects(filled)
    names = []
    for doc in filled:
        if doc["kind"] not in ("CronJob", "Job"):
            continue
        names.append(doc["metadata"]["name"])
        pod = pod_template(doc)["spec"]
        (proxy,) = pod["initContainers"]
        assert proxy["name"] == "cloud-sql-proxy" and proxy["restartPolicy"] == "Always"
        assert proxy["startupProbe"]["httpGet"]["port"] == 9090 and "--http-port=9090" in proxy["args"]
        assert proxy["securityContext"]["readOnlyRootFilesystem"] is True
        assert [c["name"] for c in pod["containers"]] == ["sauve"]
        spec = run_spec(doc, objects)
        assert spec.environ["PGHOST"] == ("pg-scratch.backups.svc" if doc["metadata"]["name"] == "sauve-drill"
                                          else "127.0.0.1")
    assert sorted(names) == ["sauve", "sauve-drill", "sauve-manual-backup", "sauve-restore-1"]
    assert_valid(filled, fill_restore(text), validator, tmp_path)


def test_sidecar_listed_after_restore_is_not_copied(tmp_path):
    """The order the README states: the restore copies the CronJob as it is
    when its component runs."""
    docs, _ = build(KUSTOMIZE, ["overlays/production"], ["components/restore", "components/sidecar"],
                    tmp=tmp_path / "late")
    assert "initContainers" in pod_template(one(docs, "CronJob"))["spec"]
    assert "initContainers" not in pod_template(one(docs, "Job"))["spec"]


def test_env_from_a_generated_configmap(tmp_path):
    """components/env-from: every key of sauve-env (its hashed name) is a
    variable of sauve's container, in the restore Job too; the container's
    own env wins; every name is one sauve or libpq reads."""
    docs, text = on_cloud_sql(tmp_path, ["components/restore", "components/restore-role"])
    filled = load_docs(fill_restore(text))
    objects = index_objects(filled)
    with open(os.path.join(KUSTOMIZE, "components", "env-from", "sauve.env")) as f:
        want = dict(line.strip().split("=", 1) for line in f if line.strip() and not line.startswith("#"))
    assert want
    for name in ("sauve", "sauve-restore-1"):
        doc = one(filled, "CronJob" if name == "sauve" else "Job", name)
        (ref,) = pod_template(doc)["spec"]["containers"][0]["envFrom"]
        assert ref["configMapRef"]["name"].startswith("sauve-env-")
        spec = run_spec(doc, objects)
        assert {k: spec.environ[k] for k in want} == want
    # the container's env wins over envFrom
    cm = one(filled, "ConfigMap", ref["configMapRef"]["name"])
    cm["data"]["SAUVE_CONFIG"] = "/elsewhere"
    assert run_spec(one(filled, "CronJob", "sauve"), objects).environ["SAUVE_CONFIG"] == "/etc/sauve/config.yaml"


def test_env_from_names_are_settings_sauve_knows(known_env):
    with open(os.path.join(KUSTOMIZE, "components", "env-from", "sauve.env")) as f:
        names = [line.split("=", 1)[0] for line in f if line.strip() and not line.startswith("#")]
    assert names and set(names) <= known_env


ORDERS = [["components/openshift", "components/restore", "components/drill", "components/manual-backup"],
          ["components/restore", "components/drill", "components/manual-backup", "components/openshift"]]


@pytest.mark.parametrize("components", ORDERS, ids=["openshift-first", "openshift-last"])
def test_openshift_no_fixed_ids_in_any_pod(helm, tmp_path, validator, components):
    """components/openshift: no runAsUser, runAsGroup or fsGroup in any pod
    or sauve container, whichever order it is listed in; the rest of the
    hardening is exactly the chart's with openshift: true."""
    docs, text = build(KUSTOMIZE, ["overlays/production"], components,
                       {"secretGenerator": [{"name": "sauve-drill-credentials", "literals": ["pgpassword=x"]}]},
                       tmp=tmp_path / "os")
    chart_docs, _ = helm(write_values(tmp_path, "openshift: true\n"))
    cpod = pod_template(one(chart_docs, "CronJob"))["spec"]
    filled = load_docs(fill_restore(text))
    pods = [(d["metadata"]["name"], pod_template(d)["spec"]) for d in filled if d["kind"] in ("CronJob", "Job")]
    assert sorted(n for n, _ in pods) == ["sauve", "sauve-drill", "sauve-manual-backup", "sauve-restore-1"]
    for name, pod in pods:
        assert pod["securityContext"] == cpod["securityContext"], name
        assert pod["containers"][0]["securityContext"] == cpod["containers"][0]["securityContext"], name
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(pod["securityContext"]), name
    assert_valid(filled, fill_restore(text), validator, tmp_path)


def test_openshift_overlay_and_the_default(helm, tmp_path):
    docs, _ = kustomize(os.path.join(KUSTOMIZE, "overlays", "openshift"))
    psc = pod_template(one(docs, "CronJob"))["spec"]["securityContext"]
    assert "runAsUser" not in psc and psc["runAsNonRoot"] is True
    # without the component, the image's uid stays fixed, as the chart's default
    docs, _ = kustomize(os.path.join(KUSTOMIZE, "overlays", "production"))
    assert pod_template(one(docs, "CronJob"))["spec"]["securityContext"]["runAsUser"] == 65532
