"""The Helm chart (deploy/helm/sauve), rendered offline with default values and
with each example values file of its ci/ directory."""

import base64
import os
import re
import subprocess

import pytest
import yaml

from conftest import (CHART, EXAMPLES, ROOT, RenderError, configs, example, one, pods, user_made_secret, write_values)
from podrun import index_objects, run_spec

CASES = [None] + EXAMPLES  # None: the chart's defaults


def case_files(case):
    return [] if case is None else [example(case)]


def exit_action(job_spec, code, container="sauve"):
    """What the Job controller does with a pod of job_spec that exited with
    `code`: the first podFailurePolicy rule that matches, else Count."""
    for rule in (job_spec.get("podFailurePolicy") or {}).get("rules", []):
        oe = rule.get("onExitCodes")
        if not oe or oe.get("containerName", container) != container:
            continue
        hit = code in oe["values"]
        if (oe["operator"] == "In") == hit:
            return rule["action"]
    return "Count"


def job_specs(docs):
    for d in docs:
        if d["kind"] == "CronJob":
            yield d, d["spec"]["jobTemplate"]["spec"]
        elif d["kind"] == "Job":
            yield d, d["spec"]


@pytest.mark.parametrize("case", CASES)
def test_renders_and_validates_offline(helm, validator, tmp_path, case):
    docs, text = helm(*case_files(case))
    out = tmp_path / "rendered.yaml"
    out.write_text(text)
    result = validator(str(out))
    assert result["errors"] == []
    kinds = {d["kind"] for d in docs}
    assert {"CronJob", "ConfigMap", "ServiceAccount", "Pod"} <= kinds
    assert len(result["documents"]) == len(docs)


def test_validator_catches_misspelled_keys_and_wrong_types(helm, validator, tmp_path):
    # The validator itself: a model check alone lets a misspelled key through.
    _, text = helm(example("network-monitoring-values.yaml"))
    bad = (text.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem", 1)
           .replace("startingDeadlineSeconds: 3600", "startingDeadlineSeconds: soon", 1)
           .replace("    - Egress", "    - Egres", 1)
           .replace("          annotations:\n            summary", "          anotations:\n            summary", 1))
    out = tmp_path / "bad.yaml"
    out.write_text(bad)
    errors = "\n".join(validator(str(out))["errors"])
    assert "unknown field CronJob.spec.jobTemplate.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem" in errors
    assert "startingDeadlineSeconds must be integer" in errors
    assert "policyTypes/1 must be equal to one of the allowed values" in errors
    assert "unknown field PrometheusRule.spec.groups[0].rules[0].anotations" in errors


def test_cronjob_defaults(helm):
    docs, text = helm()
    cj = one(docs, "CronJob")
    spec = cj["spec"]
    assert re.search(r'^  schedule: "0 2 \* \* \*"$', text, re.M), "schedule must be quoted"
    assert spec["timeZone"] == "Etc/UTC"
    assert spec["suspend"] is False
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 3600
    assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 3
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 2
    assert job["activeDeadlineSeconds"] == 21600
    assert job["ttlSecondsAfterFinished"] == 604800
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # podFailurePolicy requires it
    c = pod["containers"][0]
    assert c["command"] == ["/usr/local/bin/sauve"] and c["args"] == ["backup"]
    assert c["image"] == "sauve:0.1.0"
    assert c["terminationMessagePath"] == "/dev/termination-log"


@pytest.mark.parametrize("case", CASES)
def test_pod_failure_policy_follows_exit_codes(helm, case):
    docs, _ = helm(*case_files(case))
    specs = list(job_specs(docs))
    assert specs
    for doc, job in specs:
        # README "Exit codes": 78 configuration error and 64 usage error fail
        # the Job at once; 75 temporary failure is retried.
        assert exit_action(job, 78) == "FailJob", doc["metadata"]["name"]
        assert exit_action(job, 64) == "FailJob"
        assert exit_action(job, 3) == "FailJob"
        for code in (75, 1, 2):
            assert exit_action(job, code) == "Count", code
        conds = [r for r in job["podFailurePolicy"]["rules"] if "onPodConditions" in r]
        assert conds == [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]


def test_pod_failure_policy_is_configurable(helm, tmp_path):
    v = write_values(tmp_path, "podFailurePolicy:\n  failJobOnExitCodes: [78]\n  ignoreDisruptions: false\n")
    docs, _ = helm(v)
    job = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]
    assert exit_action(job, 78) == "FailJob" and exit_action(job, 3) == "Count"
    assert job["podFailurePolicy"]["rules"] == [
        {"action": "FailJob", "onExitCodes": {"containerName": "sauve", "operator": "In", "values": [78]}}]


@pytest.mark.parametrize("case", CASES)
def test_every_pod_is_hardened(helm, case):
    docs, _ = helm(*case_files(case))
    for doc, tmpl in pods(docs):
        pod = tmpl["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["enableServiceLinks"] is False  # no SAUVE_SERVICE_* variables
        assert pod["restartPolicy"] == "Never"
        # cleanup after SIGTERM (20 s) and notifications fit before SIGKILL
        assert pod["terminationGracePeriodSeconds"] == 60
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532 and psc["runAsGroup"] == 65532
        assert psc["fsGroup"] == 65532
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["privileged"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert c["resources"]["limits"]["memory"]
            # every mount but /tmp (and the drill's scratch directory) is read-only
            drill = tmpl["metadata"]["labels"]["app.kubernetes.io/component"] == "drill"
            for m in c["volumeMounts"]:
                assert m.get("readOnly") is True or m["mountPath"] == "/tmp" or (
                    drill and m["mountPath"] == "/var/lib/sauve/drill"), m
    sa = one(docs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False


@pytest.mark.parametrize("case", CASES)
def test_env_names_are_settings_sauve_knows(helm, known_env, case):
    docs, _ = helm(*case_files(case))
    for doc, tmpl in pods(docs):
        for c in tmpl["spec"]["containers"]:
            for e in c.get("env", []):
                assert e["name"] in known_env, f"{doc['kind']} sets {e['name']}, which sauve does not know"
            assert not c.get("envFrom"), "envFrom would hide what is set"


@pytest.mark.parametrize("case", CASES)
def test_credentials_are_files_behind_x_file(helm, case):
    """Every *_FILE variable points at a file of a mounted Secret item, and
    no credential is a plain variable."""
    docs, _ = helm(*case_files(case))
    # the age identity and Redis' TLS files (ci/sources-values.yaml): made with kubectl
    objects = index_objects(docs + [user_made_secret(), user_made_secret("redis-tls", {"ca.crt": "PEM"})])
    for doc, tmpl in pods(docs):
        c = tmpl["spec"]["containers"][0]
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        vols = {v["name"]: v for v in tmpl["spec"]["volumes"]}
        provided = {}
        for name, m in mounts.items():
            if "secret" in vols[name]:
                s = vols[name]["secret"]
                assert s["defaultMode"] == 0o440
                for it in s["items"]:
                    provided[f"{m['mountPath']}/{it['path']}"] = (s["secretName"], it["key"])
        files = {e["name"]: e["value"] for e in c.get("env", []) if e["name"].endswith("_FILE")}
        assert sorted(files.values()) == sorted(provided), (files, provided)
        for e in c.get("env", []):
            assert e["name"] not in ("PGPASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
                                     "SAUVE_NOTIFY_URL", "SAUVE_PUSHGATEWAY_URL", "SAUVE_HEALTHCHECK_URL",
                                     "SAUVE_REDIS_URL", "SAUVE_REDIS_PASSWORD")
        # with a chart-made Secret, the files hold the values given (the
        # restore Job's password is the restore role's: test_restore.py;
        # the drill's the scratch role's: test_drill.py)
        component = tmpl["metadata"]["labels"]["app.kubernetes.io/component"]
        is_restore = component == "restore"
        if case and "existing" not in case and "targets" not in case and not (is_restore and "restore-role" in case) \
                and component != "drill":
            with open(example(case)) as f:
                given = yaml.safe_load(f)["secret"]["values"]
            spec = run_spec(doc, objects)
            assert spec.file(spec.environ["PGPASSWORD_FILE"]) == given["pgPassword"].encode()


def test_existing_secret_with_configurable_keys(helm):
    docs, _ = helm(example("existing-secret-values.yaml"))
    assert not [d for d in docs if d["kind"] == "Secret"], "no Secret when existingSecret is given"
    pod = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    vol = next(v for v in pod["volumes"] if v["name"] == "credentials")
    assert vol["secret"]["secretName"] == "app-backup-credentials"
    assert {(i["key"], i["path"]) for i in vol["secret"]["items"]} == {
        ("password", "pgpassword"), ("access-key", "aws-access-key-id"),
        ("secret-key", "aws-secret-access-key"), ("healthcheck-url", "healthcheck-url")}
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["PGPASSWORD_FILE"] == "/run/secrets/sauve/pgpassword"
    assert env["AWS_ACCESS_KEY_ID_FILE"] == "/run/secrets/sauve/aws-access-key-id"
    assert env["AWS_SECRET_ACCESS_KEY_FILE"] == "/run/secrets/sauve/aws-secret-access-key"
    assert env["SAUVE_HEALTHCHECK_URL_FILE"] == "/run/secrets/sauve/healthcheck-url"
    assert "SAUVE_NOTIFY_URL_FILE" not in env
    # extra volumes: read-only, the claim too
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["uploads"] == {"name": "uploads", "mountPath": "/data/uploads", "readOnly": True}
    uploads = next(v for v in pod["volumes"] if v["name"] == "uploads")
    assert uploads["persistentVolumeClaim"] == {"claimName": "app-uploads", "readOnly": True}
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "nodeAffinity" in pod["affinity"]
    assert pod["priorityClassName"] == "backups"


def test_irsa_has_no_keys_at_all(helm):
    docs, _ = helm(example("irsa-values.yaml"))
    sa = one(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    secret = one(docs, "Secret")
    assert sorted(secret["data"]) == ["notify-url", "pgpassword"]
    assert base64.b64decode(secret["data"]["pgpassword"]) == b"not-a-real-password"
    for doc, tmpl in pods(docs):
        c = tmpl["spec"]["containers"][0]
        names = {e["name"] for e in c["env"]}
        assert not {n for n in names if n.startswith("AWS_")}, names
        assert tmpl["spec"]["serviceAccountName"] == "sauve"
        # schedule in Paris time, and retention's calendar with it
        assert {"name": "TZ", "value": "Europe/Paris"} in c["env"]
    assert one(docs, "CronJob")["spec"]["timeZone"] == "Europe/Paris"


def test_no_tz_for_utc(helm):
    docs, _ = helm()
    env = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "TZ" not in {e["name"] for e in env}


@pytest.mark.parametrize("case", CASES)
def test_config_is_accepted_by_sauve(helm, sauve_bin, tmp_path, case):
    """The ConfigMap's config.yaml is sauve's own format: `sauve list` reads it
    (storage swapped for an empty local directory) without complaint."""
    docs, _ = helm(*case_files(case))
    for i, cm in enumerate(configs(docs)):  # one per target
        text = cm["data"]["config.yaml"]
        cfg = yaml.safe_load(text)
        assert True not in cfg.get("notify", {}), "a bare `on:` key became true"
        cfg_file = tmp_path / f"config{i}.yaml"
        cfg_file.write_text(text)
        store = tmp_path / f"store{i}"
        store.mkdir()
        env = {"PATH": "/usr/bin:/bin", "SAUVE_STORAGE": f"file://{store}", "SAUVE_CONFIG": str(cfg_file),
               "SAUVE_LOG_FORMAT": "text"}
        r = subprocess.run([sauve_bin, "list"], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        assert "unknown" not in r.stderr.lower() and "warn" not in r.stderr.lower(), r.stderr


def test_notify_on_key_reaches_sauve(helm):
    docs, _ = helm(example("irsa-values.yaml"))
    text = one(docs, "ConfigMap")["data"]["config.yaml"]
    assert re.search(r'^  "on": always$', text, re.M), text
    assert yaml.safe_load(text)["notify"] == {"on": "always"}


def test_network_policy_and_prometheus_rule(helm):
    docs, _ = helm()
    assert not [d for d in docs if d["kind"] in ("NetworkPolicy", "PrometheusRule")]
    docs, _ = helm(example("network-monitoring-values.yaml"))
    np = one(docs, "NetworkPolicy")
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in np["spec"]
    assert np["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "sauve", "app.kubernetes.io/instance": "sauve"}
    ports = [[(p["protocol"], p["port"]) for p in r["ports"]] for r in np["spec"]["egress"]]
    assert ports[:4] == [[("UDP", 53), ("TCP", 53)], [("TCP", 6432)], [("TCP", 6379)], [("TCP", 443)]]
    # the pods it selects carry those labels
    for doc, tmpl in pods(docs):
        labels = tmpl["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in np["spec"]["podSelector"]["matchLabels"].items())


def test_prometheus_rule_has_the_alerts_of_deploy_alerts(helm):
    docs, _ = helm(example("network-monitoring-values.yaml"))
    pr = one(docs, "PrometheusRule")
    assert pr["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    with open(os.path.join(ROOT, "deploy", "alerts", "prometheus-rules.yaml")) as f:
        ref = yaml.safe_load(f)
    want = {r["alert"]: r for g in ref["spec"]["groups"] if g["name"] == "sauve" for r in g["rules"]}
    # (the kube-state-metrics group: test_production.py; the drill's, with
    # drill enabled: test_drill.py; verify's is not the chart's)
    got = {r["alert"]: r for g in pr["spec"]["groups"] if not g["name"].endswith("-kube-state-metrics")
           for r in g["rules"]}
    assert sorted(got) == sorted(want)
    # the chart narrows each expression to its own series (name="app")
    norm = lambda e: re.sub(r"\s+", " ", re.sub(r', name="(app|default)"', "", e)).strip()
    for name, r in got.items():
        w = want[name]
        assert 'name="app"' in r["expr"], r["expr"]
        assert norm(r["expr"]) == norm(w["expr"]), (r["expr"], w["expr"])
        assert r.get("for") == w.get("for")
        assert r["labels"] == {**w["labels"], "team": "dba"}
        assert r["annotations"]["summary"].replace("series app", "series default") == w["annotations"]["summary"]
        assert "{{ $labels.name }}" in r["annotations"]["summary"] or name == "SauveNeverRan"


def test_helm_test_hook_runs_check(helm):
    docs, _ = helm()
    pod = one(docs, "Pod")
    assert pod["metadata"]["name"] == "sauve-check"
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["containers"][0]["args"] == ["check"]
    v_docs, _ = helm(example("existing-secret-values.yaml"))
    pod = one(v_docs, "Pod")
    assert pod["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"


def test_names_and_labels(helm):
    docs, _ = helm()
    for d in docs:
        labels = d["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "sauve"
        assert labels["app.kubernetes.io/instance"] == "sauve"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["helm.sh/chart"] == "sauve-0.2.0"
    # Names too long for their kind: test_apirules.py (the CronJob's 52).
    docs, _ = helm(name="prod")
    assert one(docs, "CronJob")["metadata"]["name"] == "prod-sauve"


def test_notes(helm, tmp_path):
    notes = helm(notes=True)
    assert "WARNING: config.storage is not set" in notes
    assert "kubectl create job -n backups --from=cronjob/sauve" in notes
    assert 'kubectl logs -n backups -f "job/$job"' in notes
    assert "helm test sauve -n backups" in notes
    assert "kubectl get configmap -n backups sauve-restore -o jsonpath='{.data.restore}'" in notes
    assert "-e 's/@SOURCE@/postgres:DB/g'" in notes
    assert "restore.enabled" not in notes
    notes = helm(example("restore-role-values.yaml"), notes=True)
    assert "WARNING" not in notes
    assert "-e 's/@SOURCE@/postgres:app/g'" in notes and "-e 's/@TARGET@/app_check/g'" in notes
    assert "kubectl logs -n backups -f job/sauve-restore-1" in notes


@pytest.mark.parametrize("values, message", [
    ("secret:\n  existingSecret: creds\n  keys: {pgPassword: pw}\n  values: {pgPassword: x}\n",
     "secret.values.pgPassword is set together with secret.existingSecret"),
    ("secret:\n  existingSecret: creds\n", "names none of its keys"),
    ("secret:\n  values: {awsAccessKeyId: AKIA}\n", "S3 static keys come in pairs"),
    ("secret:\n  values: {awsSessionToken: t}\n", "awsSessionToken goes with static keys"),
    ("secret:\n  values: {sseCustomerKey: k}\nconfig:\n  s3: {sse: AES256}\n", "excludes config.s3.sse"),
    ("restore:\n  enabled: true\n", "restore.enabled was removed (chart 0.2.0): a release never runs a restore"),
    ("restore:\n  secret: {existingSecret: r, pgPassword: x}\n",
     "restore.secret.pgPassword is set together with restore.secret.existingSecret"),
    ("networkPolicy:\n  enabled: true\n", "networkPolicy.enabled needs networkPolicy.database.to"),
    ("config: {storage: 's3://b/p'}\nnetworkPolicy:\n  enabled: true\n  database:\n    to: [{podSelector: {}}]\n",
     "networkPolicy.s3.to"),
    ("extraVolumes:\n  - {name: x, mountPath: /x}\n", "extraVolumes x: set claimName or volume"),
])
def test_mistakes_stop_the_render(helm, tmp_path, values, message):
    with pytest.raises(RenderError) as e:
        helm(write_values(tmp_path, values))
    assert message in str(e.value)


def test_chart_metadata():
    with open(os.path.join(CHART, "Chart.yaml")) as f:
        chart = yaml.safe_load(f)
    assert chart["apiVersion"] == "v2" and chart["name"] == "sauve"
    assert chart["kubeVersion"] == ">=1.27.0-0"


def test_values_yaml_is_commented_throughout():
    """Every key of values.yaml has a comment above it (or above the run of
    sibling keys it belongs to); the contents of Kubernetes objects given as
    defaults (resources, security contexts, DNS peers) are exempt."""
    exempt = ("resources.", "podSecurityContext.", "securityContext.", "networkPolicy.dns.to.")
    with open(os.path.join(CHART, "values.yaml")) as f:
        lines = f.read().splitlines()
    stack, missing = [], []
    for i, line in enumerate(lines):
        m = re.match(r"^( *)(\"?[A-Za-z_][\w.-]*\"?):", line)
        if not m:
            continue
        indent, key = len(m.group(1)), m.group(2).strip('"')
        stack = [(n, k) for n, k in stack if n < indent] + [(indent, key)]
        path = ".".join(k for _, k in stack)
        if path.startswith(exempt):
            continue
        j = i - 1
        while j >= 0 and re.match(r"^ {%d}\"?[A-Za-z_][\w.-]*\"?:\s*\S" % indent, lines[j]):
            j -= 1
        if not (j >= 0 and lines[j].strip().startswith("#")):
            missing.append(f"{i + 1}: {path}")
    assert not missing, "keys without a comment:\n" + "\n".join(missing)


def test_readme_parameter_table_is_current(tmp_path):
    """The chart README's parameter table is what scripts/chart-params.py
    makes of values.yaml and the schema; a value changed without it fails."""
    import shutil

    script = os.path.join(ROOT, "scripts", "chart-params.py")
    r = subprocess.run(["/usr/bin/python3", script, "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(CHART, "README.md")) as f:
        readme = f.read()
    assert "| `restore.pgUser` | string | `\"\"` |" in readme and "| `targets` | object | `{}` |" in readme
    # a drifted copy is caught, and rewriting it makes it current again
    chart = tmp_path / "sauve"
    shutil.copytree(CHART, chart)
    values = chart / "values.yaml"
    values.write_text(values.read_text().replace("backoffLimit: 2\n", "backoffLimit: 5\n", 1))
    r = subprocess.run(["/usr/bin/python3", script, "--chart", str(chart), "--check"], capture_output=True, text=True)
    assert r.returncode == 1 and "| `backoffLimit` | integer | `5` |" in r.stderr, r.stderr
    subprocess.run(["/usr/bin/python3", script, "--chart", str(chart)], check=True)
    r = subprocess.run(["/usr/bin/python3", script, "--chart", str(chart), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
