#!/usr/bin/env python3
"""Writes the parameter table of the Helm chart's README from values.yaml
(each key, its default and the comment above it) and values.schema.json
(its type), between the README's markers, so that the table and the values
cannot drift: `make test-deploy` runs it with --check.

    scripts/chart-params.py [--chart deploy/helm/sauve] [--check]

Without --check it rewrites the table in CHART/README.md. With --check it
changes nothing and exits 1, naming the first differing line, when the table
is not what values.yaml and the schema give.
"""

import argparse
import json
import os
import re
import sys

import yaml

BEGIN = "<!-- BEGIN parameters: written by scripts/chart-params.py from values.yaml and values.schema.json -->"
END = "<!-- END parameters -->"
# Kubernetes objects given as defaults: one row each, their content as the default.
WHOLE = {"resources", "podSecurityContext", "securityContext", "networkPolicy.dns.to", "config.keep"}
KEY = re.compile(r'^( *)("?[A-Za-z_][\w.-]*"?):(.*)$')


def comments_and_keys(lines):
    """[(path, comment text)] in file order: the comment block right above
    each key, or above the run of sibling keys it belongs to."""
    out, stack, pending, run_comment = [], [], [], {}
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(line)
            continue
        m = KEY.match(line)
        if not m or stripped.startswith("-"):
            pending = [] if not stripped else pending
            continue
        indent, key = len(m.group(1)), m.group(2).strip('"')
        stack = [(n, k) for n, k in stack if n < indent] + [(indent, key)]
        path = ".".join(k for _, k in stack)
        own = [p for p in pending if len(p) - len(p.lstrip()) == indent]
        if own:
            text = describe(own)
            run_comment[(indent, tuple(k for _, k in stack[:-1]))] = text
        else:
            text = run_comment.get((indent, tuple(k for _, k in stack[:-1])), "")
        pending = []
        out.append((path, text))
    return out


def describe(comment_lines):
    """The prose of a comment block: its lines up to the first example (a
    line indented past '# '), joined."""
    words = []
    for c in comment_lines:
        body = c.strip()[1:]
        if body.startswith("  ") or body.strip().startswith("- "):
            break
        words.append(body.strip())
    text = " ".join(w for w in words if w)
    return text[:-1] + " (see values.yaml)." if text.endswith(":") else text


def schema_at(schema, path):
    node = schema
    for k in path.split("."):
        props = node.get("properties") or {}
        if k in props:
            node = props[k]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return {}
    return node


def type_of(node):
    if "enum" in node:
        return " \\| ".join(json.dumps(v) for v in node["enum"])
    t = node.get("type")
    if isinstance(t, list):
        return " \\| ".join(t)
    if t:
        return t
    if "anyOf" in node:
        return " \\| ".join(type_of(n) for n in node["anyOf"])
    return ""


def value_at(values, path):
    node = values
    for k in path.split("."):
        node = node[k]
    return node


def rows(chart):
    with open(os.path.join(chart, "values.yaml")) as f:
        text = f.read()
    with open(os.path.join(chart, "values.schema.json")) as f:
        schema = json.load(f)
    values = yaml.safe_load(text)
    out = []
    for path, comment in comments_and_keys(text.splitlines()):
        if any(path.startswith(w + ".") for w in WHOLE):
            continue
        value = value_at(values, path)
        if isinstance(value, dict) and value and path not in WHOLE:
            continue  # its keys have their own rows
        default = json.dumps(value, separators=(", ", ": "))
        cell = lambda s: s.replace("|", "\\|")
        out.append(f"| `{path}` | {type_of(schema_at(schema, path))} | `{cell(default)}` | {cell(comment)} |")
    return out


def table(chart):
    return "\n".join([BEGIN, "", "| Parameter | Type | Default | Description |", "| --- | --- | --- | --- |",
                      *rows(chart), "", END])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chart", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy",
                                                    "helm", "sauve"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    readme = os.path.join(args.chart, "README.md")
    with open(readme) as f:
        doc = f.read()
    if BEGIN not in doc or END not in doc:
        print(f"chart-params: {readme} has no parameter table markers ({BEGIN} ... {END})", file=sys.stderr)
        return 1
    head, rest = doc.split(BEGIN, 1)
    old, tail = rest.split(END, 1)
    new_doc = head + table(args.chart) + tail
    if args.check:
        if new_doc != doc:
            old_lines, new_lines = (BEGIN + old + END).splitlines(), table(args.chart).splitlines()
            first = next((i for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b),
                         min(len(old_lines), len(new_lines)))
            want = new_lines[first] if first < len(new_lines) else "(nothing)"
            print(f"chart-params: the parameter table of {readme} is stale: run scripts/chart-params.py "
                  f"(first difference: {want})", file=sys.stderr)
            return 1
        return 0
    with open(readme, "w") as f:
        f.write(new_doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
