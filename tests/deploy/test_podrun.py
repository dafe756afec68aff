"""podrun: what a kubelet would give the sauve container of a rendered
manifest (used later to run the image's rootfs the same way)."""

import os
import stat

import pytest

from conftest import example, one, restore_jobs
from podrun import Unsupported, index_objects, materialize, run_spec


def test_run_spec_of_the_chart_cronjob(helm):
    docs, _ = helm(example("network-monitoring-values.yaml"))
    spec = run_spec(one(docs, "CronJob"), index_objects(docs))
    assert spec.argv == ["/usr/local/bin/sauve", "backup"]
    assert spec.environ["SAUVE_CONFIG"] == "/etc/sauve/config.yaml"
    assert spec.file("/etc/sauve/config.yaml").startswith(b"keep:")
    assert spec.file(spec.environ["PGPASSWORD_FILE"]) == b"not-a-real-password"
    assert spec.file(spec.environ["AWS_SESSION_TOKEN_FILE"]) == b"not-a-real-token"
    assert spec.file(spec.environ["SAUVE_PUSHGATEWAY_URL_FILE"]) == b"http://pushgateway.monitoring.svc:9091"
    assert (spec.user, spec.group, spec.fs_group) == (65532, 65532, 65532)
    assert spec.run_as_non_root and spec.read_only_root
    assert spec.allow_privilege_escalation is False
    assert spec.capabilities_dropped == ["ALL"] and spec.seccomp == "RuntimeDefault"
    assert spec.termination_message_path == "/dev/termination-log"
    assert spec.restart_policy == "Never" and not spec.automount_token and not spec.enable_service_links
    writable = [m.path for m in spec.mounts if not m.read_only]
    assert writable == ["/tmp"]


def test_run_spec_of_the_restore_job_and_the_test_pod(helm):
    docs, _ = helm(example("network-monitoring-values.yaml"))
    objects = index_objects(docs)
    restore = run_spec(restore_jobs(docs)[0], objects)
    assert restore.argv[:3] == ["/usr/local/bin/sauve", "restore", "postgres:app"]
    check = run_spec(one(docs, "Pod"), objects)
    assert check.argv == ["/usr/local/bin/sauve", "check"]
    assert check.environ == restore.environ


def test_existing_secret_is_not_rendered(helm):
    docs, _ = helm(example("existing-secret-values.yaml"))
    with pytest.raises(KeyError, match="Secret app-backup-credentials"):
        run_spec(one(docs, "CronJob"), index_objects(docs))
    # given the Secret (as a test would create it), the files appear
    secret = {"kind": "Secret", "metadata": {"name": "app-backup-credentials"},
              "stringData": {"password": "pw", "access-key": "ak", "secret-key": "sk", "healthcheck-url": "http://hc"}}
    configmap = {"kind": "ConfigMap", "metadata": {"name": "minio-ca"}, "data": {"ca.crt": "PEM"}}
    spec = run_spec(one(docs, "CronJob"), index_objects(docs + [secret, configmap]))
    assert spec.file(spec.environ["PGPASSWORD_FILE"]) == b"pw"
    assert spec.file("/etc/sauve/ca/ca.crt") == b"PEM"
    uploads = spec.mount_for("/data/uploads/x")
    assert uploads.kind == "persistentVolumeClaim" and uploads.source == "app-uploads" and uploads.read_only
    assert spec.environ["PGCONNECT_TIMEOUT"] == "10"


def test_env_expansion_and_value_from():
    cronjob = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{
        "name": "sauve", "command": ["/bin/x"], "args": ["$(A)", "$$(A)", "$(NOPE)"],
        "env": [{"name": "A", "value": "a"}, {"name": "B", "value": "$(A)-b"},
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}
    objects = index_objects([{"kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg==\n"}}])
    spec = run_spec(cronjob, objects)
    assert spec.argv == ["/bin/x", "a", "$(A)", "$(NOPE)"]
    assert spec.environ == {"A": "a", "B": "a-b", "S": "v", "N": "p"}
    cronjob["spec"]["containers"][0]["env"].append({"name": "R", "valueFrom": {"resourceFieldRef": {}}})
    with pytest.raises(Unsupported):
        run_spec(cronjob, objects)


def test_materialize(helm, tmp_path):
    docs, _ = helm(example("irsa-values.yaml"))
    spec = run_spec(one(docs, "CronJob"), index_objects(docs))
    dirs = materialize(spec, str(tmp_path))
    pw = os.path.join(dirs["/run/secrets/sauve"], "pgpassword")
    with open(pw, "rb") as f:
        assert f.read() == b"not-a-real-password"
    assert stat.S_IMODE(os.stat(pw).st_mode) == 0o440
    assert os.path.isfile(os.path.join(dirs["/etc/sauve"], "config.yaml"))
    assert os.path.isdir(dirs["/tmp"])
