"""What production installs also need (issue 12): extraEnvFrom, extra init
containers and native sidecars, writable extra volumes, common and
CronJob-level labels and annotations, an OpenShift security context without
fixed ids, and alerts from kube-state-metrics beside the Pushgateway ones.
Every one of them is on in values/everything-on.yaml, which test_apirules.py
renders through the API server's rules; here: each does what it says."""

import pytest

from apirules import check
from conftest import RenderError, example, one, pods, restore_jobs, write_values
from podrun import index_objects, run_spec
from test_schema import errors as schema_errors


def render(helm, tmp_path, text, name="values.yaml"):
    docs, _ = helm(write_values(tmp_path, text, name))
    return docs


def test_extra_env_from(helm, tmp_path):
    docs = render(helm, tmp_path, "extraEnvFrom:\n  - secretRef: {name: app-db-env}\n")
    for _, tmpl in pods(docs):
        assert tmpl["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": "app-db-env"}}]
    env_secret = {"kind": "Secret", "metadata": {"name": "app-db-env"}, "stringData": {"PGCONNECT_TIMEOUT": "7"}}
    spec = run_spec(one(docs, "CronJob"), index_objects(docs + [env_secret]))
    assert spec.environ["PGCONNECT_TIMEOUT"] == "7"
    assert spec.environ["SAUVE_CONFIG"] == "/etc/sauve/config.yaml"  # the chart's own win


def test_sidecars_are_native_and_init_containers_follow(helm, tmp_path):
    docs = render(helm, tmp_path, """
sidecars:
  - name: proxy
    image: proxy:1
extraInitContainers:
  - name: wait
    image: busybox:1
  - name: migrate-check
    image: busybox:1
""")
    for _, tmpl in pods(docs):
        inits = tmpl["spec"]["initContainers"]
        assert [c["name"] for c in inits] == ["proxy", "wait", "migrate-check"]
        assert inits[0]["restartPolicy"] == "Always"  # a sidecar: the Job completes when sauve exits
        assert "restartPolicy" not in inits[1]
        assert [c["name"] for c in tmpl["spec"]["containers"]] == ["sauve"]
    assert check(docs + restore_jobs(docs)) == []
    # sauve's own name is refused, and the API's rule (unique names) too
    errs = schema_errors(helm(write_values(tmp_path, "sidecars:\n  - {name: sauve, image: x}\n", "bad.yaml"),
                              dump_values=True))
    assert any(e.startswith("$.sidecars[0].name") for e in errs), errs


def test_writable_extra_volume(helm, tmp_path):
    docs = render(helm, tmp_path, """
extraVolumes:
  - name: scratch
    mountPath: /scratch
    volume: {emptyDir: {}}
    readOnly: false
  - name: dumps
    mountPath: /dumps
    claimName: dumps
    readOnly: false
  - name: ca
    mountPath: /etc/ca
    volume: {configMap: {name: ca}}
""")
    pod = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    mounts = {m["name"]: m["readOnly"] for m in pod["containers"][0]["volumeMounts"] if "readOnly" in m}
    assert mounts["scratch"] is False and mounts["dumps"] is False and mounts["ca"] is True
    pvc = next(v for v in pod["volumes"] if v["name"] == "dumps")
    assert pvc["persistentVolumeClaim"]["readOnly"] is False


def test_common_and_cronjob_labels_and_annotations(helm, tmp_path):
    docs = render(helm, tmp_path, """
commonLabels: {team: dba}
commonAnnotations: {owner: dba@example.com}
cronJobLabels: {backup-tier: gold}
cronJobAnnotations: {description: nightly}
prometheusRule: {enabled: true}
networkPolicy: {enabled: true, database: {to: [{podSelector: {}}]}}
""")
    for d in docs:
        assert d["metadata"]["labels"]["team"] == "dba", d["kind"]
        assert d["metadata"]["annotations"]["owner"] == "dba@example.com", d["kind"]
        assert ("backup-tier" in d["metadata"]["labels"]) == (d["kind"] == "CronJob"), d["kind"]
        assert ("description" in d["metadata"]["annotations"]) == (d["kind"] == "CronJob"), d["kind"]
    for _, tmpl in pods(docs):
        assert tmpl["metadata"]["labels"]["team"] == "dba"
        assert tmpl["metadata"]["annotations"]["owner"] == "dba@example.com"
        assert "backup-tier" not in tmpl["metadata"]["labels"]
    assert restore_jobs(docs)[0]["metadata"]["annotations"]["owner"] == "dba@example.com"
    assert check(docs) == []


@pytest.mark.parametrize("values", ["commonLabels: {app.kubernetes.io/name: x}\n",
                                    "cronJobLabels: {helm.sh/chart: x}\n", "commonLabels: {sauve/target: x}\n"])
def test_own_labels_cannot_be_overridden(helm, tmp_path, values):
    v = write_values(tmp_path, values)
    assert schema_errors(helm(v, dump_values=True))
    with pytest.raises(RenderError, match="a label of the chart's own"):
        helm(v)


def test_openshift_has_no_fixed_ids(helm, tmp_path):
    docs = render(helm, tmp_path, "openshift: true\n")
    for doc, tmpl in pods(docs):
        psc = tmpl["spec"]["securityContext"]
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(psc), (doc["kind"], psc)
        assert psc["runAsNonRoot"] is True and psc["seccompProfile"] == {"type": "RuntimeDefault"}
        csc = tmpl["spec"]["containers"][0]["securityContext"]
        assert not {"runAsUser", "runAsGroup"} & set(csc)
        assert csc["readOnlyRootFilesystem"] is True and csc["capabilities"]["drop"] == ["ALL"]
        assert csc["allowPrivilegeEscalation"] is False
    # the default keeps the image's uid
    docs, _ = helm()
    assert one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 65532


def rules_by_group(pr):
    return {g["name"]: {r["alert"]: r for r in g["rules"]} for g in pr["spec"]["groups"]}


def test_kube_state_metrics_alerts(helm, tmp_path):
    docs, _ = helm(example("network-monitoring-values.yaml"))
    groups = rules_by_group(one(docs, "PrometheusRule"))
    ksm = groups["sauve-kube-state-metrics"]
    assert sorted(ksm) == ["SauveCronJobNoSuccess", "SauveCronJobSuspended", "SauveJobFailed"]
    assert ksm["SauveCronJobNoSuccess"]["expr"] == (
        'time() - kube_cronjob_status_last_successful_time{namespace="backups", cronjob=~"sauve"} > 26 * 3600')
    assert ksm["SauveJobFailed"]["expr"] == 'kube_job_status_failed{namespace="backups", job_name=~"(sauve)-.+"} > 0'
    assert ksm["SauveCronJobSuspended"]["for"] == "30h"
    assert all(r["labels"]["team"] == "dba" for r in ksm.values())
    # the Pushgateway ones are still there, in their own group
    assert "SauveNoRecentSuccess" in groups["sauve"]
    # the Jobs the expressions name: the CronJob's, the manual ones, the restores
    import re
    pattern = re.compile(r"(sauve)-.+")
    cj = one(docs, "CronJob")["metadata"]["name"]
    for job in (f"{cj}-29012345", f"{cj}-manual-20261205023000", restore_jobs(docs)[0]["metadata"]["name"]):
        assert pattern.fullmatch(job), job
    assert check(docs) == []
    docs = render(helm, tmp_path, "prometheusRule: {enabled: true, kubeStateMetrics: false}\n")
    assert list(rules_by_group(one(docs, "PrometheusRule"))) == ["sauve"]
