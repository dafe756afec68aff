"""Restores and manual backups with kubectl, outside the release (issue 12).

The chart never renders a restore Job: it ships a template (the ConfigMap
NAME-restore, keys restore and restore-clean) that the user fills with sed
and creates with kubectl, as NOTES.txt prints; a manual backup is `kubectl
create job --from=cronjob/...`. The restore Job's name holds a user-given
id, so creating it twice is refused, and it has no TTL. Restore credentials
are their own Secret, mounted in the restore Job alone.

The Jobs made from the templates are checked by apirules and validate.js in
test_apirules.py (every example and adversarial values file); here: what
they carry, the commands of NOTES.txt run with the real kubectl and sed, and
that no render of the release, whatever its values, starts a restore."""

import re
import shlex
import subprocess

import pytest
import yaml

from apirules import check
from conftest import (CHART, EXAMPLES, RenderError, example, k8s_tool, load_docs, manual_job, one, restore_jobs,
                      write_values)
from podrun import index_objects, run_spec
from test_apirules import ADVERSARIAL, adversarial, manual_job_names

RESTORE_ROLE = example("restore-role-values.yaml")


def env_of(job):
    return {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def secret_volumes(pod_spec):
    return {v["secret"]["secretName"]: v for v in pod_spec.get("volumes", []) if "secret" in v}


def test_restore_template_by_default(helm):
    docs, _ = helm()
    cm = one(docs, "ConfigMap", "sauve-restore")
    assert cm["metadata"]["labels"]["app.kubernetes.io/component"] == "restore"
    assert sorted(cm["data"]) == ["restore", "restore-clean"]
    for key in cm["data"]:
        for ph in ("@ID@", "@SOURCE@", "@SET@", "@TARGET@"):
            assert ph in cm["data"][key], (key, ph)
    job = restore_jobs(docs, ID="r1", SOURCE="postgres:app", SET="20261122T020000Z", TARGET="app_check")[0]
    assert job["metadata"]["name"] == "sauve-restore-r1"
    assert job["metadata"]["labels"]["sauve/restore-id"] == "r1"
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "restore"
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["restore", "postgres:app", "--set", "20261122T020000Z", "--into", "app_check", "--yes"]
    clean = restore_jobs(docs, clean=True)[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert clean == ["restore", "postgres:app", "--set", "latest", "--into", "app_check", "--clean", "--confirm", "app_check"]
    # no TTL: the finished Job stays, and its id stays taken; one retry
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert job["spec"]["backoffLimit"] == 1 and job["spec"]["activeDeadlineSeconds"] == 21600
    # otherwise the backups' pod
    cron = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    strip = lambda p: {**p, "containers": [{**p["containers"][0], "args": None}]}
    assert strip(job["spec"]["template"]["spec"]) == strip(cron)


def test_an_unfilled_template_is_refused(helm):
    """Created without sed (or applied by a GitOps tool), the Job's name and
    label are invalid: the API server refuses it."""
    docs, _ = helm()
    job = load_docs(one(docs, "ConfigMap", "sauve-restore")["data"]["restore"])[0]
    errs = check([job])
    assert any("'sauve-restore-@ID@'" in e and "RFC 1123" in e for e in errs), errs
    assert any("sauve/restore-id" in e for e in errs), errs


def test_longest_restore_id_fits(helm):
    docs, _ = helm(name="a-release-name-of-fifty-three-characters-for-backupsx")
    job = restore_jobs(docs, ID="r" * 18)[0]
    assert len(job["metadata"]["name"]) == 63
    assert check([job]) == []
    assert any("at most 63" in e for e in check(restore_jobs(docs, ID="r" * 19)))


def test_restore_role_credentials(helm):
    """restore.pgUser and restore.secret: the restore Job connects as the
    restore role with its own password file; the backups, the check pod and
    the manual backups never see that Secret, nor the restore Job the backup
    role's password."""
    docs, _ = helm(RESTORE_ROLE)
    job = restore_jobs(docs)[0]
    env = env_of(job)
    assert env["PGUSER"] == "app_restore"
    assert env["PGPASSWORD_FILE"] == "/run/secrets/sauve-restore/pgpassword"
    assert list(env).count("PGPASSWORD_FILE") == 1
    assert "--no-owner" in job["spec"]["template"]["spec"]["containers"][0]["args"]
    vols = secret_volumes(job["spec"]["template"]["spec"])
    assert vols["app-restore-credentials"]["secret"]["items"] == [{"key": "password", "path": "pgpassword"}]
    assert vols["app-restore-credentials"]["secret"]["defaultMode"] == 0o440
    backup_items = {i["key"] for i in vols["sauve"]["secret"]["items"]}
    assert "pgpassword" not in backup_items and "aws-access-key-id" in backup_items
    # what sauve gets: the restore role's password from its Secret
    restore_secret = {"kind": "Secret", "metadata": {"name": "app-restore-credentials"},
                      "stringData": {"password": "restore-pw"}}
    spec = run_spec(job, index_objects(docs + [restore_secret]))
    assert spec.file(spec.environ["PGPASSWORD_FILE"]) == b"restore-pw"
    assert spec.environ["PGUSER"] == "app_restore"
    for d in docs:
        if d["kind"] in ("CronJob", "Pod"):
            text = yaml.safe_dump(d)
            assert "app-restore-credentials" not in text and "sauve-restore" not in text, d["kind"]
            assert "PGUSER" not in text


def test_chart_made_restore_secret(helm, tmp_path):
    v = write_values(tmp_path, "restore:\n  pgUser: app_restore\n  secret:\n    pgPassword: restore-pw\n")
    docs, _ = helm(v)
    secret = one(docs, "Secret", "sauve-restore")
    assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == "restore"
    job = restore_jobs(docs)[0]
    spec = run_spec(job, index_objects(docs))
    assert spec.file(spec.environ["PGPASSWORD_FILE"]) == b"restore-pw"
    assert spec.environ["PGUSER"] == "app_restore"
    # without restore credentials, the restore Job uses the backup role's
    docs, _ = helm(example("network-monitoring-values.yaml"))
    spec = run_spec(restore_jobs(docs)[0], index_objects(docs))
    assert spec.file(spec.environ["PGPASSWORD_FILE"]) == b"not-a-real-password"
    assert "PGUSER" not in spec.environ


def test_notes_commands_run_with_kubectl_and_sed(helm, tmp_path):
    """The restore command of NOTES.txt, run: the real kubectl reads the
    template out of the rendered ConfigMap with the printed jsonpath (the
    cluster's `kubectl get` stands in as `kubectl annotate --local`, the same
    jsonpath printer), the printed sed fills it, and what reaches `kubectl
    create` is the Job asked for."""
    docs, text = helm(RESTORE_ROLE)
    notes = helm(RESTORE_ROLE, notes=True)
    m = re.search(r"kubectl get configmap -n (\S+) (\S+) -o jsonpath='([^']+)' \\\n\s+\| (sed [^\n]+) \\\n"
                  r"\s+\| kubectl create -n (\S+) -f -\n", notes)
    assert m, notes
    ns, cm_name, jsonpath, sed, create_ns = m.groups()
    assert ns == create_ns == "backups"
    cm_file = tmp_path / "cm.yaml"
    cm_file.write_text(yaml.safe_dump(one(docs, "ConfigMap", cm_name)))
    r = subprocess.run([k8s_tool("kubectl"), "annotate", "--local", "-f", str(cm_file), "sauve/test=1",
                        "-o", f"jsonpath={jsonpath}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(shlex.split(sed), input=r.stdout, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    job = one(load_docs(r.stdout), "Job")
    assert job["metadata"]["name"] == "sauve-restore-1"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:6] == [
        "restore", "postgres:app", "--set", "latest", "--into", "app_check"]
    assert check([job]) == []
    logs = re.search(r"kubectl logs -n backups -f job/(\S+) ", notes)
    assert logs and logs.group(1) == job["metadata"]["name"]
    # the destructive variant is named, by its key
    assert "'{.data.restore-clean}'" in notes and "restore-clean" in one(docs, "ConfigMap", cm_name)["data"]


def test_manual_backup_job(helm):
    """`kubectl create job --from=cronjob/...` as NOTES.txt prints it: a
    valid Job, the CronJob's own pod (its env and Secrets), no restore
    credentials."""
    docs, _ = helm(RESTORE_ROLE, name="prod")
    cj = one(docs, "CronJob")
    names = manual_job_names(helm(RESTORE_ROLE, name="prod", notes=True))
    job = manual_job(cj, names[cj["metadata"]["name"]])
    assert re.fullmatch(r"prod-sauve-manual-\d{14}", job["metadata"]["name"])
    assert check([job]) == []
    assert job["spec"] == cj["spec"]["jobTemplate"]["spec"]
    spec = run_spec(job, index_objects(docs))
    assert spec.argv == ["/usr/local/bin/sauve", "backup"]
    assert spec.file(spec.environ["PGPASSWORD_FILE"]) == b"not-a-real-password"
    assert "PGUSER" not in spec.environ


def release_workloads(docs):
    """What the release itself would start: Jobs and Pods that are not the
    `helm test` hook (which runs only on `helm test`)."""
    return [(d["kind"], d["metadata"]["name"]) for d in docs
            if d["kind"] in ("Job", "Pod")
            and (d["metadata"].get("annotations") or {}).get("helm.sh/hook") != "test"]


VALUE_SETS = [[]] + [[example(e)] for e in EXAMPLES] + [[adversarial(a)] for a in ADVERSARIAL]


def test_no_render_of_the_release_starts_a_restore(helm, tmp_path):
    """Install, then upgrades with other values (an image bump, each example
    and adversarial file): no render holds a Job, and the Pod is the test
    hook alone; a restore exists only as the template's text."""
    bump = write_values(tmp_path, "image:\n  tag: 0.2.0\n", "bump.yaml")
    for files in VALUE_SETS:
        for extra in ([], [bump]):
            docs, _ = helm(*files, *extra)
            assert release_workloads(docs) == [], files + extra
            assert [d for d in docs if d["kind"] == "Job"] == []


def test_real_helm_upgrade_render_starts_no_restore(tmp_path):
    """The same with the real helm, as an upgrade renders (--is-upgrade), and
    the old switch refused with the way forward."""
    helm_bin = k8s_tool("helm")
    for files in ([], [RESTORE_ROLE]):
        args = [helm_bin, "template", "sauve", CHART, "-n", "backups", "--is-upgrade"]
        for f in files:
            args += ["-f", f]
        r = subprocess.run(args + ["--set", "image.tag=0.2.0"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert release_workloads(load_docs(r.stdout)) == []
    r = subprocess.run([helm_bin, "template", "sauve", CHART, "--is-upgrade", "--set", "restore.enabled=true"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "restore.enabled was removed" in r.stderr and "helm get notes" in r.stderr, r.stderr


def test_old_restore_switch_off_is_accepted(helm, tmp_path):
    """--reuse-values of a release that had restore.enabled=false renders."""
    docs, _ = helm(write_values(tmp_path, "restore:\n  enabled: false\n"))
    assert release_workloads(docs) == []
    with pytest.raises(RenderError, match="restore.enabled was removed"):
        helm(write_values(tmp_path, "restore:\n  enabled: true\n", "on.yaml"))
