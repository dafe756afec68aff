"""Never an invalid object: every example values file of the chart, a set of
adversarial ones (tests/deploy/values: the longest names, every optional
feature on, every list empty) and every Kustomize overlay render objects
that pass the API server's own rules (apirules.py), on top of the offline
OpenAPI validation (validate.js) and the values schema. The checker itself
is tested first: each rule refuses what the API server refuses."""

import os
import re

import pytest
import yaml

from apirules import check, cron_errors
from conftest import (CHART, EXAMPLES, HERE, KUSTOMIZE, configs, example, fill_restore, k8s_tool, kustomize, load_docs, one,
                      manual_job, pods, restore_jobs, write_values)
from test_schema import errors as schema_errors

ADVERSARIAL_DIR = os.path.join(HERE, "values")
ADVERSARIAL = sorted(f for f in os.listdir(ADVERSARIAL_DIR) if f.endswith(".yaml"))
OVERLAYS = sorted(os.listdir(os.path.join(KUSTOMIZE, "overlays")))
# Helm refuses release names over 53 characters; the longest is the worst case.
LONG_RELEASE = "a-release-name-of-fifty-three-characters-for-backupsx"
assert len(LONG_RELEASE) == 53


def manual_job_names(notes):
    """{CronJob: the name of the manual backup Job} as NOTES.txt's commands
    make it (its date filled in)."""
    found = re.findall(r"job=(\S+)-\$\(date \+%Y%m%d%H%M%S\)\n\s+kubectl create job -n \S+ --from=cronjob/(\S+) ",
                       notes)
    return {cj: f"{prefix}-20261205023000" for prefix, cj in found}


def adversarial(name):
    return os.path.join(ADVERSARIAL_DIR, name)


def chart_cases():
    cases = [("defaults", [], "sauve"), ("defaults-long-release", [], LONG_RELEASE)]
    cases += [(f"ci/{e}", [example(e)], "sauve") for e in EXAMPLES]
    for a in ADVERSARIAL:
        cases += [(f"values/{a}", [adversarial(a)], "sauve"), (f"values/{a}-long-release", [adversarial(a)],
                                                                LONG_RELEASE)]
    return cases


CHART_CASES = chart_cases()


# --- the checker refuses what the API server refuses ----------------------------


def cronjob(name="sauve", schedule="0 2 * * *", codes=(3, 64, 78), pod_labels=None, tz="Etc/UTC"):
    labels = {"app.kubernetes.io/name": "sauve"} if pod_labels is None else pod_labels
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, "timeZone": tz, "jobTemplate": {"spec": {
                "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {
                    "containerName": "sauve", "operator": "In", "values": list(codes)}}]},
                "template": {"metadata": {"labels": labels}, "spec": {
                    "restartPolicy": "Never", "containers": [{"name": "sauve", "image": "sauve"}]}}}}}}


def rule(for_="30h"):
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "r"},
            "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0", "for": for_}]}]}}


def netpol(match):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n"},
            "spec": {"podSelector": {"matchLabels": match}, "policyTypes": ["Egress"]}}


def test_checker_accepts_a_good_cronjob():
    assert check([cronjob(), rule(), netpol({"app.kubernetes.io/name": "sauve"})]) == []


@pytest.mark.parametrize("docs, message", [
    # the five bugs of issue 12
    ([cronjob(name="a" * 53)], "53 characters, a CronJob name has at most 52"),
    ([cronjob(codes=(78, 3, 64))], "is not sorted in ascending order"),
    ([cronjob(codes=(3, 3, 64))], "has duplicates"),
    ([rule("30.5h")], "not a Prometheus duration"),
    ([cronjob(pod_labels={"app.kubernetes.io/name": "other"}), netpol({"app.kubernetes.io/name": "sauve"})],
     "matches none of the pods"),
    # the rest of the class
    ([cronjob(name="Sauve")], "not a lowercase RFC 1123"),
    ([cronjob(schedule="0 2 * *")], "4 fields, want 5"),
    ([cronjob(schedule="0 25 * * *")], "hour: '25' out of 0-23"),
    ([cronjob(schedule="CRON_TZ=UTC 0 2 * * *")], "use spec.timeZone"),
    ([cronjob(schedule="@nightly")], "unknown macro"),
    ([cronjob(tz="Europe/Pariss")], "not a time zone"),
    ([cronjob(codes=(0, 3))], "0 with operator In"),
    ([cronjob(pod_labels={"team": "a" * 64})], "not a valid label value"),
    ([cronjob(pod_labels={"team": "dba-"})], "not a valid label value"),
    ([cronjob(pod_labels={"bad key!": "x"})], "label key 'bad key!'"),
    ([rule("1h30")], "not a Prometheus duration"),
    ([rule("")], "not a Prometheus duration"),
    ([{"kind": "Job", "metadata": {"name": "j" * 64}, "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}],
     "a Job name has at most 63"),
    ([{"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a/b": "x"}}], "data key 'a/b'"),
    ([{"kind": "ConfigMap", "metadata": {"name": "c"}}, {"kind": "ConfigMap", "metadata": {"name": "c"}}],
     "two documents of that kind and name"),
])
def test_checker_refuses(docs, message):
    errs = check(docs)
    assert any(message in e for e in errs), errs


def test_pod_spec_rules():
    cj = cronjob()
    pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["containers"].append({"name": "sauve", "image": "x"})
    pod["containers"][0]["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "x", "mountPath": "/tmp"}]
    pod["volumes"] = [{"name": "tmp", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
    errs = "\n".join(check([cj]))
    assert "duplicate name 'sauve'" in errs
    assert "duplicate mountPath '/tmp'" in errs
    assert "mounts volume 'x', which the pod does not have" in errs
    assert ".volumes: duplicate name 'tmp'" in errs


def test_native_sidecar_rules():
    """restartPolicy on a container: Always, on an init container only;
    probes on an init container: a sidecar's only. A native sidecar passes."""
    def with_inits(inits, containers=()):
        cj = cronjob()
        pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        pod["initContainers"] = inits
        pod["containers"] += list(containers)
        return check([cj])

    probe = {"httpGet": {"path": "/startup", "port": 9090}}
    assert with_inits([{"name": "proxy", "image": "x", "restartPolicy": "Always", "startupProbe": probe}]) == []
    errs = "\n".join(with_inits([{"name": "proxy", "image": "x", "restartPolicy": "Never"},
                                 {"name": "wait", "image": "x", "startupProbe": probe}],
                                [{"name": "side", "image": "x", "restartPolicy": "Always"}]))
    assert "init container 'proxy' restartPolicy 'Never': only Always" in errs
    assert "init container 'wait': startupProbe needs restartPolicy Always" in errs
    assert "container 'side' restartPolicy: for init containers only" in errs


@pytest.mark.parametrize("schedule", ["0 2 * * *", "*/15 1-5 * JAN-DEC mon-fri", "@daily", "0 0 1,15 * 0-6",
                                      "30 1 * * 7", "0 */2 ? * *"])
def test_cron_syntax_accepted(schedule):
    assert cron_errors(schedule) == []


# --- every rendering passes ------------------------------------------------------


@pytest.mark.parametrize("case, files, release", CHART_CASES, ids=[c[0] for c in CHART_CASES])
def test_chart_renders_valid_objects(helm, validator, tmp_path, case, files, release):
    # valid values first: the schema accepts the file
    assert schema_errors(helm(*files, dump_values=True)) == []
    docs, text = helm(*files, name=release)
    notes = helm(*files, name=release, notes=True)
    # the Jobs a user makes with the commands of NOTES.txt: the restore
    # template's (both, with the longest id) and a manual backup's
    made = restore_jobs(docs) + restore_jobs(docs, clean=True, ID="a" * 18)
    manual = manual_job_names(notes)
    crons = [d for d in docs if d["kind"] == "CronJob"]
    assert sorted(manual) == sorted(c["metadata"]["name"] for c in crons)
    made += [manual_job(c, manual[c["metadata"]["name"]]) for c in crons]
    assert check(docs + made) == []
    out = tmp_path / "rendered.yaml"
    out.write_text(text + "".join("---\n" + yaml.safe_dump(d) for d in made))
    assert validator(str(out))["errors"] == []


@pytest.mark.parametrize("values", ADVERSARIAL)
def test_real_helm_renders_the_adversarial_values(values):
    """The real helm (schema included) renders them, as the Go renderer does."""
    import subprocess

    r = subprocess.run([k8s_tool("helm"), "template", LONG_RELEASE, CHART, "-n", "backups", "-f", adversarial(values)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert check(load_docs(r.stdout)) == []


@pytest.mark.parametrize("overlay", ["base"] + [f"overlays/{o}" for o in OVERLAYS])
def test_kustomize_renders_valid_objects(validator, tmp_path, overlay):
    # the restore overlays' placeholders filled in, as the user does
    _, text = kustomize(os.path.join(KUSTOMIZE, overlay))
    text = fill_restore(text)
    assert check(load_docs(text)) == []
    out = tmp_path / "rendered.yaml"
    out.write_text(text)
    assert validator(str(out))["errors"] == []


# --- the five bugs, each fixed ---------------------------------------------------


def test_long_names_fit_and_stay_unique(helm, tmp_path):
    names = set()
    for suffix in ("a", "b"):
        release = LONG_RELEASE[:-1] + suffix
        docs, _ = helm(name=release)
        cj = one(docs, "CronJob")["metadata"]["name"]
        assert len(cj) <= 52 and not cj.endswith("-"), cj
        names.add(cj)
    assert len(names) == 2, "two releases that differ at the end got one CronJob name"
    # a short name is left alone
    docs, _ = helm(name="prod")
    assert one(docs, "CronJob")["metadata"]["name"] == "prod-sauve"


def test_exit_codes_sorted_and_unique(helm, tmp_path):
    docs, _ = helm(write_values(tmp_path, "podFailurePolicy:\n  failJobOnExitCodes: [78, 3, 255, 64, 100]\n"))
    rules = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    assert [r["onExitCodes"]["values"] for r in rules if "onExitCodes" in r] == [[3, 64, 78, 100, 255]]


def test_databases_as_a_string_in_notes(helm, tmp_path):
    notes = helm(write_values(tmp_path, "config:\n  pg:\n    databases: 'app, analytics'\n"), notes=True)
    assert "(app, analytics)" in notes


def test_no_run_hours_must_be_whole(helm, tmp_path):
    merged = helm(write_values(tmp_path, "prometheusRule:\n  noRunHours: 30.5\n"), dump_values=True)
    assert any(e.startswith("$.prometheusRule.noRunHours: 30.5 is not of type 'integer'") for e in
               schema_errors(merged)), schema_errors(merged)
    docs, _ = helm(write_values(tmp_path, "prometheusRule:\n  enabled: true\n  noRunHours: 1000000\n", "big.yaml"))
    fors = {r["alert"]: r.get("for") for g in one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    assert fors["SauveNeverRan"] == "1000000h"


@pytest.mark.parametrize("label", ["app.kubernetes.io/name", "app.kubernetes.io/instance",
                                   "app.kubernetes.io/component"])
def test_pod_labels_cannot_override_selector_labels(helm, tmp_path, label):
    v = write_values(tmp_path, f"podLabels:\n  {label}: other\n")
    assert any("podLabels" in e for e in schema_errors(helm(v, dump_values=True)))
    with pytest.raises(Exception, match="podLabels sets " + label):
        helm(v)


def test_pod_labels_reach_the_pods_once(helm, tmp_path):
    docs, text = helm(write_values(tmp_path, "podLabels:\n  team: dba\n"))
    for _, tmpl in pods(docs):
        assert tmpl["metadata"]["labels"]["team"] == "dba"
        assert tmpl["metadata"]["labels"]["app.kubernetes.io/name"] == "sauve"


@pytest.mark.parametrize("values", ADVERSARIAL)
def test_adversarial_config_is_accepted_by_sauve(helm, sauve_bin, tmp_path, values):
    """sauve reads the ConfigMap of each adversarial file without complaint
    (the string form of pg.databases included)."""
    import subprocess

    docs, _ = helm(adversarial(values))
    for i, cm in enumerate(configs(docs)):  # one per target
        cfg = tmp_path / f"config{i}.yaml"
        cfg.write_text(cm["data"]["config.yaml"])
        store = tmp_path / f"store{i}"
        store.mkdir()
        env = {"PATH": "/usr/bin:/bin", "SAUVE_STORAGE": f"file://{store}", "SAUVE_CONFIG": str(cfg),
               "SAUVE_LOG_FORMAT": "text"}
        r = subprocess.run([sauve_bin, "list"], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        assert "warn" not in r.stderr.lower(), r.stderr
