"""Encryption with age (issue 11) in the chart and the Kustomize overlays.

The recipients are public: they reach config.yaml in the ConfigMap, and
sauve itself reads them there. The identity is secret: a Secret the user
creates with kubectl, mounted in the restore Job (the chart's restore
template, Kustomize's restore overlay) and in no other workload (the
CronJob, the manual backup Job, the `helm test` Pod), never rendered. A
restore template of encrypted sets without it is not rendered, and the
schema refuses an identity, or anything but an X25519 recipient, where a
recipient goes."""

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import (AGE_IDENTITY_SECRET, CHART, KUSTOMIZE, ROOT, RenderError, example, fill_restore, k8s_tool, kustomize, load_docs,
                      one, pods, restore_jobs, restore_templates, user_made_secret, write_values)
from podrun import index_objects, materialize, run_spec
from test_schema import errors as schema_errors

# The recipients of the chart's CI example (ci/age-values.yaml), also given
# to a copy of the Kustomize tree (encrypted_kustomize):
# public keys whose identities were thrown away when they were made.
OPS = "age1qayj5wprugcpgc845qmuqdh4f0pcg3gvtwlrkfq43jj9h2t2s5xqg68ske"
GLASS = "age1rc343rwkvl7r4h9s87d6seum4cm526fpgct0mkxmjvd89s6vzqjs80n8fa"
IDENTITY_DIR = "/run/secrets/sauve-age"
IDENTITY_FILE = IDENTITY_DIR + "/identity.txt"
NO_IDENTITY = "has no restore template until it knows the identity's Secret"
SECRET_IN_RECIPIENTS = "is a secret key, not a recipient"
# Shaped like an identity, and none: the tests never hold a real one in the tree.
FAKE_IDENTITY = "AGE-SECRET-KEY-1" + "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L" + "Q" * 26
RESTORE_ONLY = dict(restore={"backoffLimit": 1})


def chart(helm, *values):
    docs, _ = helm(*values)
    return docs


def values_file(tmp_path, data, name="values.yaml"):
    return write_values(tmp_path, yaml.safe_dump(data), name)


@pytest.fixture
def identity(tmp_path):
    """(the identity file's text, its recipient), made by Debian's age-keygen."""
    path = tmp_path / "identity.txt"
    r = subprocess.run(["age-keygen", "-o", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, f"age-keygen (Debian's age, scripts/install-deps.sh): {r.stderr}"
    pub = subprocess.run(["age-keygen", "-y", str(path)], capture_output=True, text=True, check=True).stdout.strip()
    return path.read_text(), pub


def encrypted_kustomize(tmp_path):
    """A copy of deploy/kustomize whose production config has the two
    recipients uncommented, as a user enables encryption (the tree itself
    ships none: keys nobody holds would make backups nobody can restore)."""
    root = tmp_path / "kustomize"
    if not root.exists():
        shutil.copytree(KUSTOMIZE, root)
        cfg = root / "overlays" / "production" / "config.yaml"
        cfg.write_text(cfg.read_text() + f"age:\n  recipients:\n    - {OPS}\n    - {GLASS}\n")
    return str(root)


def rendered(helm, target, tmp_path=None):
    """The documents of a target: "chart" (ci/age-values.yaml) or a Kustomize
    overlay; with tmp_path, that overlay with encryption turned on."""
    if target == "chart":
        docs = chart(helm, example("age-values.yaml"))
        return docs + restore_jobs(docs)
    _, text = kustomize(os.path.join(encrypted_kustomize(tmp_path) if tmp_path else KUSTOMIZE, target))
    return load_docs(fill_restore(text))


def is_restore_job(doc):
    labels = doc["spec"]["template"]["metadata"]["labels"] if doc["kind"] == "Job" else {}
    return labels.get("app.kubernetes.io/component") == "restore"


# --- the recipients reach sauve -------------------------------------------------


def test_chart_recipients_reach_config_yaml(helm, tmp_path):
    cfg = yaml.safe_load(one(chart(helm, example("age-values.yaml")), "ConfigMap")["data"]["config.yaml"])
    assert cfg["age"] == {"recipients": [OPS, GLASS]}
    v = values_file(tmp_path, {"config": {"age": {"recipients_file": "/etc/sauve/age/recipients.txt"}}})
    cfg = yaml.safe_load(one(chart(helm, v), "ConfigMap")["data"]["config.yaml"])
    assert cfg["age"] == {"recipients_file": "/etc/sauve/age/recipients.txt"}
    # off by default: nothing written, sauve's own default (no encryption)
    cfg = yaml.safe_load(one(chart(helm), "ConfigMap")["data"]["config.yaml"])
    assert "age" not in cfg


def test_kustomize_ships_no_recipients_and_takes_the_users(tmp_path):
    for target in ("base", "overlays/production", "overlays/restore", "overlays/manual-backup"):
        docs, _ = kustomize(os.path.join(KUSTOMIZE, target))
        assert "age" not in yaml.safe_load(one(docs, "ConfigMap")["data"]["config.yaml"]), target
    with open(os.path.join(KUSTOMIZE, "overlays", "production", "config.yaml")) as f:
        assert "#   recipients:" in f.read()  # documented where the user edits
    for target in ("overlays/production", "overlays/restore", "overlays/manual-backup"):
        docs, _ = kustomize(os.path.join(encrypted_kustomize(tmp_path), target))
        cfg = yaml.safe_load(one(docs, "ConfigMap")["data"]["config.yaml"])
        assert cfg["age"] == {"recipients": [OPS, GLASS]}, target


def sauve_check(sauve_bin, doc, objects, root):
    """`sauve check --json` in the environment the kubelet would give doc's
    container: its variables, its ConfigMap and Secret files written under
    root (paths into them moved there), the storage swapped for an empty
    local directory and PostgreSQL for a closed port. {what: check item}."""
    spec = run_spec(doc, objects)
    materialize(spec, str(root))
    env = {}
    for k, v in spec.environ.items():
        if v.startswith("/") and spec.mount_for(v) is not None:
            v = os.path.join(str(root), v.lstrip("/"))
        env[k] = v
    store = root / "store"
    store.mkdir()
    env.update(PATH="/usr/bin:/bin", SAUVE_STORAGE=f"file://{store}", PGHOST="127.0.0.1", PGPORT="1",
               PGCONNECT_TIMEOUT="5", SAUVE_LOG_FORMAT="text", SAUVE_TERMINATION_LOG=str(root / "termination-log"))
    r = subprocess.run([sauve_bin, "check", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert r.stdout, r.stderr
    return {c["what"]: c for c in json.loads(r.stdout)["checks"]}


@pytest.mark.parametrize("target", ["chart", "overlays/restore", "overlays/manual-backup"])
def test_sauve_reads_the_recipients_and_only_the_restore_job_the_identity(helm, sauve_bin, identity, tmp_path,
                                                                           target):
    """Every pod's sauve encrypts to both recipients of the rendered config;
    only the restore Job's sauve finds an identity, the one in the Secret."""
    text, pub = identity
    docs = rendered(helm, target, tmp_path)
    objects = index_objects(docs + [user_made_secret(data={"identity.txt": text})])
    seen = set()
    for i, (doc, _) in enumerate(pods(docs)):
        checks = sauve_check(sauve_bin, doc, objects, tmp_path / f"pod{i}")
        enc = checks["encryption"]
        assert enc["ok"] and enc["detail"] == f"age, to 2 recipient(s): {OPS} {GLASS}", (doc["kind"], enc)
        if is_restore_job(doc):
            seen.add("restore")
            ident = checks["age identity"]
            assert ident["ok"] and ident["detail"].endswith(f"opens what was encrypted to: {pub}"), ident
        else:
            seen.add(doc["kind"])
            assert "age identity" not in checks, (doc["kind"], doc["metadata"]["name"], checks["age identity"])
    want = {"chart": {"CronJob", "Pod", "restore"}, "overlays/restore": {"CronJob", "restore"},
            "overlays/manual-backup": {"CronJob", "Job"}}[target]
    assert seen == want


# --- the identity: the restore Job's alone ---------------------------------------


def identity_volumes(doc):
    """The restore Job's volumes of the identity Secret ([] for any other kind)."""
    vols = doc["spec"]["template"]["spec"].get("volumes", []) if doc["kind"] == "Job" else []
    return [v for v in vols if (v.get("secret") or {}).get("secretName") == AGE_IDENTITY_SECRET]


@pytest.mark.parametrize("target", ["chart", "base", "overlays/production", "overlays/restore",
                                    "overlays/manual-backup"])
def test_identity_is_mounted_in_the_restore_job_and_nowhere_else(helm, target, tmp_path):
    docs = rendered(helm, target, tmp_path)
    restore = [d for d in docs if d["kind"] == "Job" and is_restore_job(d)]
    assert len(restore) == (1 if target in ("chart", "overlays/restore") else 0), [d["metadata"]["name"] for d in docs]
    for job in restore:
        pod = job["spec"]["template"]["spec"]
        c = pod["containers"][0]
        vols = identity_volumes(job)
        assert len(vols) == 1, pod["volumes"]
        assert vols[0]["secret"]["defaultMode"] == 0o440
        assert vols[0]["secret"]["items"] == [{"key": "identity.txt", "path": "identity.txt"}]
        mounts = [m for m in c["volumeMounts"] if m["name"] == vols[0]["name"]]
        assert mounts == [{"name": vols[0]["name"], "mountPath": IDENTITY_DIR, "readOnly": True}]
        assert [e for e in c["env"] if "AGE_IDENTITY" in e["name"]] == [
            {"name": "SAUVE_AGE_IDENTITY_FILE", "value": IDENTITY_FILE}]
    # every other document, the Secrets and ConfigMaps included, never names it
    # (the chart's restore template is the restore Job's text: checked as that Job)
    templates = restore_templates(docs)
    others = [d for d in docs if not any(d is r for r in restore + templates)]
    assert {"CronJob", "ConfigMap"} <= {d["kind"] for d in others}
    if target == "chart":
        assert "Pod" in {d["kind"] for d in others}
    for d in others:
        dump = yaml.safe_dump(d)
        for word in (AGE_IDENTITY_SECRET, "sauve-age", "AGE_IDENTITY", "identity_file"):
            assert word not in dump, f"{d['kind']} {d['metadata']['name']} mentions {word}"


def test_chart_identity_secret_name_and_key(helm, tmp_path):
    v = values_file(tmp_path, {"config": {"age": {"recipients": [OPS]}},
                               "restore": {"ageIdentity": {"existingSecret": "ops-key", "key": "ops.txt"}}})
    job = restore_jobs(chart(helm, v))[0]
    vol = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "age-identity")
    assert vol["secret"] == {"secretName": "ops-key", "defaultMode": 0o440,
                             "items": [{"key": "ops.txt", "path": "identity.txt"}]}


def test_chart_without_encryption_mounts_no_identity(helm):
    # restore-role-values.yaml: no recipients, no identity
    job = restore_jobs(chart(helm, example("restore-role-values.yaml")))[0]
    assert not identity_volumes(job)
    assert "AGE" not in yaml.safe_dump(job)


def test_no_identity_is_committed_under_deploy():
    key = re.compile(r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}")
    found = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, "deploy")):
        for fn in files:
            with open(os.path.join(dirpath, fn), errors="replace") as f:
                if key.search(f.read()):
                    found.append(os.path.join(dirpath, fn))
    assert found == []


def test_kustomize_identity_component_needs_the_restore_job(tmp_path):
    """Alone, or listed before components/restore, the component fails the
    build instead of patching nothing (or the CronJob)."""
    rel = lambda p: os.path.relpath(os.path.join(KUSTOMIZE, p), tmp_path)
    for components in (["age-identity"], ["age-identity", "restore"]):
        (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "backups",
            "resources": [rel("overlays/production")],
            "components": [rel(f"components/{c}") for c in components]}))
        with pytest.raises(RenderError, match="sauve-restore"):
            kustomize(str(tmp_path))
    # in the right order it builds
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "backups",
        "resources": [rel("overlays/production")],
        "components": [rel("components/restore"), rel("components/age-identity")]}))
    docs, _ = kustomize(str(tmp_path))
    assert identity_volumes(one(docs, "Job", "sauve-restore-@ID@"))


# --- a restore of encrypted sets needs the identity ---------------------------------


ENCRYPTED = {
    "recipients": {"config": {"age": {"recipients": [OPS, GLASS]}}},
    "recipients_file": {"config": {"age": {"recipients_file": "/etc/sauve/age/recipients.txt"}}},
    "extraEnv": {"extraEnv": [{"name": "SAUVE_AGE_RECIPIENTS", "value": OPS}]},
}


@pytest.mark.parametrize("how", sorted(ENCRYPTED))
def test_restore_template_of_encrypted_sets_needs_the_identity(helm, tmp_path, how):
    # the backups need no identity: they render, without a restore template
    docs = chart(helm, values_file(tmp_path, {**ENCRYPTED[how], **RESTORE_ONLY}, "backups.yaml"))
    assert {"CronJob", "ConfigMap"} <= {d["kind"] for d in docs}
    assert restore_templates(docs) == []
    # NOTES.txt says why, and how to get one
    notes = helm(values_file(tmp_path, ENCRYPTED[how]), notes=True)
    assert NO_IDENTITY in notes
    assert "--set restore.ageIdentity.existingSecret=sauve-age-identity" in notes
    # with it, the template renders, and its Job mounts the identity
    with_identity = {**ENCRYPTED[how], "restore": {"ageIdentity": {"existingSecret": AGE_IDENTITY_SECRET}}}
    jobs = restore_jobs(chart(helm, values_file(tmp_path, with_identity, "ok.yaml")))
    assert len(jobs) == 1 and identity_volumes(jobs[0])


def test_real_helm_renders_no_restore_template_without_identity(tmp_path):
    helm_bin = k8s_tool("helm")
    v = values_file(tmp_path, ENCRYPTED["recipients"])
    r = subprocess.run([helm_bin, "template", "sauve", CHART, "-f", v], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert restore_templates(load_docs(r.stdout)) == []


def test_identity_in_extra_env_does_not_render(helm, tmp_path):
    v = values_file(tmp_path, {"extraEnv": [{"name": "SAUVE_AGE_IDENTITY_FILE", "value": "/x/identity.txt"}]})
    with pytest.raises(RenderError, match="extraEnv sets SAUVE_AGE_IDENTITY_FILE, which would reach every pod"):
        helm(v)


# --- the schema --------------------------------------------------------------------


MALFORMED = [
    OPS[:-1],  # too short
    OPS + "q",  # too long
    OPS.upper(),  # bech32 in capitals: age writes lower case
    OPS[:10] + "b" + OPS[11:],  # b is not in bech32's alphabet
    "age1",
    "",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHj7 ops@example",  # an SSH recipient: sauve has X25519 only
    f"{OPS},{GLASS}",  # a list is a YAML list here
]


@pytest.mark.parametrize("bad", MALFORMED)
def test_schema_refuses_a_malformed_recipient(helm, tmp_path, bad):
    merged = helm(values_file(tmp_path, {"config": {"age": {"recipients": [OPS, bad]}}}), dump_values=True)
    errs = schema_errors(merged)
    assert any(e.startswith("$.config.age.recipients[1]: ") and "does not match '^age1" in e for e in errs), errs
    assert not any(e.startswith("$.config.age.recipients[0]") for e in errs), errs


@pytest.mark.parametrize("pasted", [FAKE_IDENTITY, FAKE_IDENTITY.lower(), f"# created: 2026-11-22\n{FAKE_IDENTITY}\n"])
def test_schema_refuses_an_identity_in_recipients_and_says_why(helm, tmp_path, pasted):
    merged = helm(values_file(tmp_path, {"config": {"age": {"recipients": [OPS, pasted]}}}), dump_values=True)
    errs = schema_errors(merged)
    assert any(e.startswith("$.config.age.recipients[1]: ") and SECRET_IN_RECIPIENTS in e for e in errs), errs


def test_real_helm_refuses_an_identity_in_recipients_without_echoing_it(tmp_path):
    v = values_file(tmp_path, {"config": {"age": {"recipients": [OPS, FAKE_IDENTITY]}}})
    r = subprocess.run([k8s_tool("helm"), "template", "sauve", CHART, "-f", v], capture_output=True, text=True)
    assert r.returncode != 0
    assert "values don't meet the specifications of the schema" in r.stderr, r.stderr
    assert "config.age.recipients.1" in r.stderr and SECRET_IN_RECIPIENTS in r.stderr, r.stderr
    assert "restore.ageIdentity.existingSecret" in r.stderr
    assert FAKE_IDENTITY not in r.stderr and FAKE_IDENTITY[16:] not in r.stderr
    assert "config.age.recipients.0" not in r.stderr  # the good recipient passes
    # and a malformed one, with the pattern named
    v = values_file(tmp_path, {"config": {"age": {"recipients": [OPS[:-1]]}}}, "short.yaml")
    r = subprocess.run([k8s_tool("helm"), "template", "sauve", CHART, "-f", v], capture_output=True, text=True)
    assert r.returncode != 0 and "config.age.recipients.0: Does not match pattern '^age1" in r.stderr, r.stderr


@pytest.mark.parametrize("values, where", [
    # the identity has no place in the values, in config or beside the Secret's name
    ({"config": {"age": {"identity_file": "/run/secrets/sauve-age/identity.txt"}}},
     "$.config.age: Additional properties are not allowed ('identity_file' was unexpected)"),
    ({"restore": {"ageIdentity": {"existingSecret": "k", "identity": FAKE_IDENTITY}}},
     "$.restore.ageIdentity: Additional properties are not allowed ('identity' was unexpected)"),
    ({"config": {"age": {"recipients": OPS}}}, "$.config.age.recipients: "),
    ({"config": {"age": {"recipients": [OPS, OPS]}}}, "$.config.age.recipients: "),
    ({"config": {"age": {"recipients_file": "recipients.txt"}}}, "$.config.age.recipients_file: "),
    ({"restore": {"ageIdentity": {"existingSecret": "Ops_Key"}}}, "$.restore.ageIdentity.existingSecret: "),
    ({"restore": {"ageIdentity": {"key": ""}}}, "$.restore.ageIdentity.key: "),
])
def test_schema_refuses_other_age_mistakes(helm, tmp_path, values, where):
    errs = schema_errors(helm(values_file(tmp_path, values), dump_values=True))
    assert any(e.startswith(where) for e in errs), errs


def test_schema_accepts_the_documented_values(helm, tmp_path):
    good = {"config": {"age": {"recipients": [OPS, GLASS], "recipients_file": "/etc/sauve/age/recipients.txt"}},
            "restore": {"ageIdentity": {"existingSecret": "sauve-age-identity", "key": "identity.txt"}}}
    assert schema_errors(helm(values_file(tmp_path, good), dump_values=True)) == []


# --- NOTES.txt -------------------------------------------------------------------


def test_notes_name_the_recipients_and_the_identity_secret(helm, tmp_path):
    notes = helm(example("age-values.yaml"), notes=True)
    line = next(l for l in notes.splitlines() if l.startswith("Encrypted with age"))
    assert f"to {OPS}, {GLASS};" in line and "in the Secret sauve-age-identity" in line, line
    assert "  kubectl create secret generic sauve-age-identity -n backups --from-file=identity.txt=PATH" in notes
    # not set yet: said so, and the restore command carries it
    notes = helm(values_file(tmp_path, ENCRYPTED["recipients"]), notes=True)
    assert "restore.ageIdentity.existingSecret (not set yet)" in notes
    assert "--set restore.ageIdentity.existingSecret=sauve-age-identity" in notes
    # no encryption: no word of it
    notes = helm(notes=True)
    assert "Encrypted with age" not in notes and "ageIdentity" not in notes


def test_values_of_an_older_release_without_the_age_keys(helm, tmp_path):
    """`helm upgrade --reuse-values` from a chart without config.age and
    restore.ageIdentity renders with the old values alone (null removes a
    key as the old values lack it): no nil-pointer error, and a restore still
    gets the identity check's own message."""
    old = {"config": {"age": None}, "restore": {"ageIdentity": None}}
    docs = chart(helm, values_file(tmp_path, old))
    assert not identity_volumes(restore_jobs(docs)[0])
    assert "Encrypted with age" not in helm(values_file(tmp_path, old), notes=True)
    old["extraEnv"] = [{"name": "SAUVE_AGE_RECIPIENTS", "value": OPS}]
    assert restore_templates(chart(helm, values_file(tmp_path, old, "encrypted.yaml"))) == []
