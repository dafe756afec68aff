"""values.schema.json: Helm validates the merged values against it before
rendering anything. The renderer prints the values merged as Helm merges
them (-dump-values), and a JSON-schema validator (python3-jsonschema, the
draft 7 that Helm's validator reads) checks them here."""

import json
import os

import jsonschema
import pytest

from conftest import CHART, EXAMPLES, example, write_values

with open(os.path.join(CHART, "values.schema.json")) as f:
    SCHEMA = json.load(f)


def errors(values):
    v = jsonschema.Draft7Validator(SCHEMA)
    return sorted(f"{e.json_path}: {e.message}" for e in v.iter_errors(values))


def test_schema_is_valid_draft7():
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False


@pytest.mark.parametrize("case", [None] + EXAMPLES)
def test_good_values_pass(helm, case):
    values = helm(*([] if case is None else [example(case)]), dump_values=True)
    assert errors(values) == []


def test_every_object_of_ours_rejects_unknown_keys():
    """additionalProperties: false on every object the chart defines (maps of
    labels and Kubernetes passthroughs excepted)."""
    open_objects = []

    def walk(node, path):
        if node.get("type") == "object" or (isinstance(node.get("type"), list) and "object" in node["type"]):
            if "properties" in node and node.get("additionalProperties") is not False:
                open_objects.append(path)
            for k, sub in node.get("properties", {}).items():
                walk(sub, f"{path}.{k}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], path + "[]")

    walk(SCHEMA, "$")
    assert open_objects == []


@pytest.mark.parametrize("values, where", [
    # wrong types
    ("schedule: 5\n", "$.schedule: 5 is not of type 'string'"),
    ("suspend: \"yes\"\n", "$.suspend: 'yes' is not of type 'boolean'"),
    ("config:\n  pg:\n    port: \"5432\"\n", "$.config.pg.port: '5432' is not of type 'integer', 'null'"),
    ("backoffLimit: 1.5\n", "$.backoffLimit: 1.5 is not of type 'integer'"),
    ("extraEnv: {TZ: UTC}\n", "$.extraEnv: {'TZ': 'UTC'} is not of type 'array'"),
    ("resources:\n  limits:\n    memory: lots\n", "$.resources.limits.memory: 'lots' does not match"),
    # unknown keys (misspelled)
    ("schedul: \"0 3 * * *\"\n", "$: Additional properties are not allowed ('schedul' was unexpected)"),
    ("config:\n  pg:\n    hots: db\n", "$.config.pg: Additional properties are not allowed ('hots' was unexpected)"),
    ("securityContext:\n  readOnlyRootFileSystem: true\n",
     "$.securityContext: Additional properties are not allowed ('readOnlyRootFileSystem' was unexpected)"),
    ("secret:\n  values:\n    pgpassword: x\n", "$.secret.values: Additional properties are not allowed ('pgpassword' was unexpected)"),
    # secrets never in the ConfigMap
    ("config:\n  pg:\n    password: x\n", "$.config.pg: Additional properties are not allowed ('password' was unexpected)"),
    ("config:\n  notify:\n    url: https://hooks.example/x\n",
     "$.config.notify: Additional properties are not allowed ('url' was unexpected)"),
    # YAML 1.1: a bare `on:` is the key true
    ("config:\n  notify:\n    on: always\n",
     "$.config.notify: Additional properties are not allowed ('true' was unexpected)"),
    # ranges and enums of sauve's settings
    ("config:\n  zstd:\n    level: 25\n", "$.config.zstd.level: 25 is greater than the maximum of 19"),
    ("config:\n  s3:\n    sse: AES\n", "$.config.s3.sse: 'AES' is not one of"),
    ("config:\n  storage: /var/backups\n", "$.config.storage: '/var/backups' does not match"),
    ("config:\n  keep:\n    within: 2 weeks\n", "$.config.keep.within: '2 weeks' does not match"),
    # the restore switch and what it took are gone (a restore is a kubectl command)
    ("restore:\n  source: postgres:app\n", "$.restore: Additional properties are not allowed ('source' was unexpected)"),
    ("restore:\n  secret: {password: x}\n", "$.restore.secret: Additional properties are not allowed"),
    ("podFailurePolicy:\n  failJobOnExitCodes: [0]\n", "$.podFailurePolicy.failJobOnExitCodes[0]: 0 is less than the minimum of 1"),
    ("image:\n  pullPolicy: Sometimes\n", "$.image.pullPolicy: 'Sometimes' is not one of"),
    ("extraVolumes:\n  - {name: x, mountPath: /x, claimName: c, volume: {emptyDir: {}}}\n", "$.extraVolumes[0]: "),
])
def test_bad_values_are_rejected(helm, tmp_path, values, where):
    merged = helm(write_values(tmp_path, values), dump_values=True)
    errs = errors(merged)
    assert any(e.startswith(where) for e in errs), errs
