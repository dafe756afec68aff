"""The chart checked with the real helm (v3, from build/tools/bin under
`make test-deploy`): lint, render with the defaults and each example values
file of ci/ and compare with render/main.go's output, and reject bad values
through values.schema.json as Helm itself applies it."""

import subprocess

import pytest

from conftest import CHART, EXAMPLES, example, k8s_tool, load_docs, write_values

CASES = [None] + EXAMPLES  # None: the chart's defaults
NAME, NAMESPACE = "sauve", "backups"


@pytest.fixture(scope="session")
def helm_bin():
    return k8s_tool("helm")


def run_helm(helm_bin, *args):
    return subprocess.run([helm_bin, *args], capture_output=True, text=True)


def helm_template(helm_bin, *values):
    args = ["template", NAME, CHART, "--namespace", NAMESPACE]
    for v in values:
        args += ["-f", v]
    return run_helm(helm_bin, *args)


def key(doc):
    return (doc["kind"], doc["metadata"]["name"])


def test_helm_is_v3(helm_bin):
    r = run_helm(helm_bin, "version", "--short")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("v3."), r.stdout


def test_lint_strict(helm_bin):
    # --strict fails on WARNING and ERROR; INFO (e.g. "icon is recommended") is no failure.
    r = run_helm(helm_bin, "lint", "--strict", CHART)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[WARNING]" not in r.stdout and "[ERROR]" not in r.stdout, r.stdout


@pytest.mark.parametrize("case", EXAMPLES)
def test_lint_strict_with_example_values(helm_bin, case):
    r = run_helm(helm_bin, "lint", "--strict", CHART, "-f", example(case))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[WARNING]" not in r.stdout and "[ERROR]" not in r.stdout, r.stdout


@pytest.mark.parametrize("case", CASES)
def test_helm_template_matches_go_renderer(helm_bin, helm, case):
    files = [] if case is None else [example(case)]
    r = helm_template(helm_bin, *files)
    assert r.returncode == 0, r.stderr
    real = load_docs(r.stdout)
    assert real, "helm rendered nothing"
    ours, _ = helm(*files, name=NAME, namespace=NAMESPACE)

    real_keys, our_keys = sorted(map(key, real)), sorted(map(key, ours))
    assert len(set(real_keys)) == len(real_keys), f"duplicate documents: {real_keys}"
    assert real_keys == our_keys, (f"only helm: {sorted(set(real_keys) - set(our_keys))}, "
                                   f"only render/main.go: {sorted(set(our_keys) - set(real_keys))}")

    by_key = {key(d): d for d in ours}
    differ = [k for k in map(key, real) if by_key[k] != next(d for d in real if key(d) == k)]
    assert differ == [], f"documents that differ between helm and render/main.go: {differ}"


@pytest.mark.parametrize("values, message", [
    # wrong types
    ("schedule: 5\n", "schedule: Invalid type. Expected: string, given: integer"),
    ("suspend: \"yes\"\n", "suspend: Invalid type. Expected: boolean, given: string"),
    ("config:\n  pg:\n    port: \"5432\"\n", "config.pg.port: Invalid type"),
    ("extraEnv: {TZ: UTC}\n", "extraEnv: Invalid type. Expected: array, given: object"),
    # unknown keys
    ("schedul: \"0 3 * * *\"\n", "Additional property schedul is not allowed"),
    ("config:\n  pg:\n    hots: db\n", "config.pg: Additional property hots is not allowed"),
    ("securityContext:\n  readOnlyRootFileSystem: true\n",
     "securityContext: Additional property readOnlyRootFileSystem is not allowed"),
    # ranges
    ("config:\n  zstd:\n    level: 25\n", "config.zstd.level: Must be less than or equal to 19"),
])
def test_helm_applies_the_schema(helm_bin, tmp_path, values, message):
    r = helm_template(helm_bin, write_values(tmp_path, values))
    assert r.returncode != 0, f"helm rendered bad values:\n{values}"
    assert "values don't meet the specifications of the schema" in r.stderr, r.stderr
    assert message in r.stderr, r.stderr
