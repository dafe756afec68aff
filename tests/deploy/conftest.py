"""Shared fixtures of the deploy tests: the chart renderer, the offline
validator, sauve's list of settings, and rendering helpers.

No cluster exists on these machines: the chart is rendered by render/main.go
(Go text/template + sprig + Helm's own functions, built here from Debian's Go
in GOPATH mode), the overlays by `kubectl kustomize`, and every document is
validated by validate.js (npm kubernetes-models). kubectl and helm are the
first on PATH: `make test-deploy` installs them (scripts/install-k8s-tools.sh)
into build/tools/bin and puts that directory first; test_helm_cli.py checks
the chart with the real helm and compares its output with render/main.go's.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(ROOT, "deploy", "helm", "sauve")
KUSTOMIZE = os.path.join(ROOT, "deploy", "kustomize")
BUILD = os.path.join(ROOT, "build", "deploy")
RENDER = os.path.join(BUILD, "render")
EXAMPLES = sorted(f for f in os.listdir(os.path.join(CHART, "ci")) if f.endswith(".yaml"))

sys.path.insert(0, HERE)


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="session")
def renderer():
    """Builds render/main.go into build/deploy/render (offline, GOPATH mode)."""
    go = shutil.which("go") or "/usr/lib/go/bin/go"
    if not os.path.exists(go):
        pytest.fail("no Go toolchain: run scripts/install-deps.sh (golang-go)")
    os.makedirs(BUILD, exist_ok=True)
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOFLAGS="",
               GOCACHE=os.path.join(BUILD, "gocache"))
    r = _run([go, "build", "-o", RENDER, "./tests/deploy/render"], cwd=ROOT, env=env)
    assert r.returncode == 0, f"building the renderer failed:\n{r.stderr}"
    return RENDER


@pytest.fixture(scope="session")
def validator():
    """node validate.js, with the npm packages installed (once) next to it."""
    lock = os.path.join(HERE, "package-lock.json")
    stamp = os.path.join(HERE, "node_modules", ".package-lock.json")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(lock):
        r = _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE)
        assert r.returncode == 0, f"npm ci failed:\n{r.stderr}"

    def validate(*files):
        r = _run(["node", os.path.join(HERE, "validate.js"), *files])
        assert r.returncode in (0, 1), f"validate.js failed:\n{r.stderr}"
        return json.loads(r.stdout)

    return validate


@pytest.fixture(scope="session")
def sauve_bin():
    path = os.environ.get("SAUVE_BIN") or os.path.join(ROOT, "build", "sauve")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: run make (or set SAUVE_BIN)")
    return path


class RenderError(Exception):
    pass


def load_docs(text):
    """The documents of a multi-document YAML text, empty ones dropped.
    PyYAML reads YAML 1.1 as the API server's YAML library does."""
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="session")
def helm(renderer):
    """helm(values_file..., name=, namespace=, notes=, dump_values=) ->
    (docs, text); raises RenderError with the renderer's message."""

    def render(*values, name="sauve", namespace="backups", notes=False, dump_values=False, extra=()):
        cmd = [renderer, "-name", name, "-namespace", namespace, *extra]
        for v in values:
            cmd += ["-f", v]
        if notes:
            cmd.append("-notes")
        if dump_values:
            cmd.append("-dump-values")
        r = _run(cmd + [CHART])
        if r.returncode != 0:
            raise RenderError(r.stderr.strip())
        if notes:
            return r.stdout
        if dump_values:
            return json.loads(r.stdout)
        return load_docs(r.stdout), r.stdout

    return render


def k8s_tool(name):
    """The kubectl or helm first on PATH (build/tools/bin under make test-deploy)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"no {name} on PATH: run make k8s-tools and put build/tools/bin on PATH (make test-deploy does)")
    return path


_KUSTOMIZED = {}


def kustomize(path):
    """(docs, text) of `kubectl kustomize path`. The tree's own targets are
    built once per session (they do not change during it); temporary ones
    every time."""
    path = os.path.abspath(path)
    cached = path.startswith(KUSTOMIZE + os.sep)
    if not cached or path not in _KUSTOMIZED:
        r = _run([k8s_tool("kubectl"), "kustomize", path])
        if r.returncode != 0:
            raise RenderError(r.stderr.strip())
        if not cached:
            return load_docs(r.stdout), r.stdout
        _KUSTOMIZED[path] = r.stdout
    return load_docs(_KUSTOMIZED[path]), _KUSTOMIZED[path]


def example(name):
    return os.path.join(CHART, "ci", name)


def write_values(tmp_path, text, name="values.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# The age identity's Secret: created by the user with kubectl, referenced by
# the restore Job (the chart's ci/age-values.yaml, Kustomize's
# components/age-identity) and rendered by nothing.
AGE_IDENTITY_SECRET = "sauve-age-identity"


def user_made_secret(name=AGE_IDENTITY_SECRET, data=None):
    """A stand-in for a Secret the user creates with kubectl and no manifest
    renders (`kubectl create secret generic NAME --from-file=identity.txt=PATH`),
    to add to the rendered objects before run_spec."""
    data = {"identity.txt": "AGE-SECRET-KEY-1 stand-in\n"} if data is None else data
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}


def configs(docs):
    """The ConfigMaps holding sauve's config.yaml: one per target."""
    return [d for d in docs if d["kind"] == "ConfigMap" and "config.yaml" in (d.get("data") or {})]


def one(docs, kind, name=None):
    """The one document of that kind (and name). Without a name, a ConfigMap
    is the configuration: restore templates are left out; a CronJob is the
    backups': drill CronJobs are left out."""
    templates = [] if name else restore_templates(docs) + [
        d for d in docs if d["kind"] == "CronJob"
        and (d["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "drill"]
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
             and not any(d is t for t in templates)]
    assert len(found) == 1, f"want one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


# What a user fills the restore Job template with (NOTES.txt's example).
RESTORE_FILL = {"@ID@": "1", "@SOURCE@": "postgres:app", "@SET@": "latest", "@TARGET@": "app_check"}


def fill_restore(text, **fill):
    """The restore template's text with its placeholders replaced, as the
    sed of NOTES.txt does (ID=, SOURCE=, SET=, TARGET= override the
    defaults of RESTORE_FILL)."""
    values = dict(RESTORE_FILL)
    values.update({f"@{k}@": v for k, v in fill.items()})
    for k, v in values.items():
        text = text.replace(k, v)
    assert "@" not in re.sub(r"[\w.+-]+@[\w.-]+", "", text), "a placeholder is left"
    return text


def restore_templates(docs):
    """The ConfigMaps holding restore Job templates (component restore, key restore)."""
    return [d for d in docs if d["kind"] == "ConfigMap" and "restore" in (d.get("data") or {})
            and d["metadata"]["labels"].get("app.kubernetes.io/component") == "restore"]


def restore_jobs(docs, clean=False, **fill):
    """The Jobs the restore templates of docs make, filled in (fill_restore)."""
    key = "restore-clean" if clean else "restore"
    jobs = []
    for cm in restore_templates(docs):
        job = load_docs(fill_restore(cm["data"][key], **fill))
        assert len(job) == 1 and job[0]["kind"] == "Job", job
        jobs.append(job[0])
    return jobs


def manual_job(cronjob, name):
    """The Job `kubectl create job NAME --from=cronjob/CRONJOB` makes: the
    CronJob's job template under that name, marked manual, owned by it."""
    jt = cronjob["spec"]["jobTemplate"]
    meta = {"name": name, "labels": dict(jt.get("metadata", {}).get("labels") or {}),
            "annotations": {**(jt.get("metadata", {}).get("annotations") or {}),
                            "cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": cronjob["metadata"]["name"],
                                 "uid": "00000000-0000-0000-0000-000000000000", "controller": True}]}
    if cronjob["metadata"].get("namespace"):
        meta["namespace"] = cronjob["metadata"]["namespace"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": jt["spec"]}


def pods(docs):
    """(doc, pod template) of every CronJob, Job and Pod, and of the Jobs
    the restore templates make (filled in with RESTORE_FILL)."""
    from podrun import pod_template

    docs = docs + restore_jobs(docs)
    return [(d, pod_template(d)) for d in docs if d["kind"] in ("CronJob", "Job", "Pod")]


@pytest.fixture(scope="session")
def known_env(sauve_bin):
    """Every environment variable sauve knows: the names `sauve help` prints
    (settings and their X_FILE forms, SAUVE_CONFIG), the README's table, and
    the PG*/AWS* names the sources read (libpq's own and the AWS credential
    chain's)."""
    r = _run([sauve_bin, "help"])
    names = set(re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\bPG[A-Z]+\b|\bTZ\b", r.stdout + r.stderr))
    with open(os.path.join(ROOT, "README.md")) as f:
        names |= set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", f.read(), re.M))
    for dirpath, _, files in os.walk(os.path.join(ROOT, "runner", "src")):
        for fn in files:
            if fn.endswith((".c", ".h", ".def")):
                with open(os.path.join(dirpath, fn), errors="replace") as f:
                    names |= set(re.findall(r'"((?:AWS|PG)[A-Z0-9_]*)"', f.read()))
    # libpq reads these itself (sauve passes the environment to libpq and pg_dump)
    names |= {"PGHOSTADDR", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGSSLCERT", "PGSSLKEY",
              "PGSSLROOTCERT", "PGSSLCRL", "PGAPPNAME", "PGCONNECT_TIMEOUT", "PGTARGETSESSIONATTRS",
              "PGSSLMINPROTOCOLVERSION", "PGSSLMAXPROTOCOLVERSION", "PGOPTIONS", "PGDATABASE"}
    assert "SAUVE_STORAGE" in names and "PGPASSWORD_FILE" in names, r.stdout
    return names
