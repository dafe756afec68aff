"""apirules: the validation the API server (and Prometheus) applies that the
OpenAPI schemas validate.js checks against do not carry.

The OpenAPI schemas say "string" for a name, "array of integers" for exit
codes and "string" for a cron schedule; the API server then refuses a
CronJob name of 53 characters, exit codes out of order, `0 2 * *` or an
alert's `for: 30.5h`, long after `helm lint` and the offline schema check
passed. This module encodes those rules (from the Kubernetes validation
code: apimachinery's IsDNS1123Subdomain/IsDNS1123Label/IsQualifiedName/
IsValidLabelValue, batch's ValidateCronJob and ValidateJob, core's
ValidatePodSpec; Prometheus' rule-file loader), for what sauve's manifests
use:

    errors = check(docs)     # [] when every document would be accepted

Each error is one line naming the document and the field. Unknown kinds are
checked for their metadata only.
"""

import os
import re

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
# Prometheus' model.ParseDuration: units in decreasing order, each once.
PROM_DURATION = re.compile(r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$")
PROM_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

# The longest metadata.name per kind, where the API server's limit is not
# the DNS subdomain's 253: a CronJob's Jobs are named NAME-<minutes since
# the epoch, up to 11 digits>, themselves label values (job-name) of at most
# 63 characters, hence 52 (ValidateCronJob); a Job's name is the label value
# job-name of its pods (63). Everything else sauve renders is a subdomain.
NAME_LIMITS = {"CronJob": 52, "Job": 63}
# Kinds whose name is a DNS label rather than a subdomain (none of ours in
# practice, but Services and Namespaces are).
LABEL_NAMED = {"Service", "Namespace"}

CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
CRON_FIELDS = [  # (name, low, high, names)
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}),
]
ZONEINFO = "/usr/share/zoneinfo"


def cron_errors(schedule):
    """robfig/cron's standard parser, as the CronJob controller uses it (5
    fields or a macro; no TZ= prefix: the API refuses it for timeZone)."""
    if not isinstance(schedule, str) or not schedule.strip():
        return ["empty schedule"]
    s = schedule.strip()
    if "TZ=" in s:
        return ["TZ= or CRON_TZ= in schedule: use spec.timeZone"]
    if s.startswith("@"):
        return [] if s in CRON_MACROS or s.startswith("@every ") else [f"unknown macro {s}"]
    fields = s.split()
    if len(fields) != 5:
        return [f"{len(fields)} fields, want 5"]
    errs = []
    for text, (what, low, high, names) in zip(fields, CRON_FIELDS):
        for part in text.split(","):
            m = re.fullmatch(r"(\*|\?|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/([0-9]+))?", part)
            if not m:
                errs.append(f"{what}: cannot parse {part!r}")
                continue
            rng, step = m.group(1), m.group(2)
            if step is not None and int(step) == 0:
                errs.append(f"{what}: step 0 in {part!r}")
            if rng in ("*", "?"):
                continue
            ends = rng.split("-")
            vals = []
            for e in ends:
                if e.isdigit():
                    vals.append(int(e))
                elif e.lower() in names:
                    vals.append(names[e.lower()])
                else:
                    errs.append(f"{what}: {e!r} is not a value")
                    vals = None
                    break
            if vals is None:
                continue
            if any(v < low or v > high for v in vals):
                errs.append(f"{what}: {part!r} out of {low}-{high}")
            elif len(vals) == 2 and vals[0] > vals[1]:
                errs.append(f"{what}: range {part!r} goes backwards")
    return errs


def _qualified_key_errors(key, what):
    """A label or annotation key: [prefix/]name, prefix a DNS subdomain of at
    most 253, name a qualified name of at most 63."""
    if not isinstance(key, str):
        return [f"{what} key {key!r} is not a string"]
    prefix, _, name = key.rpartition("/")
    errs = []
    if "/" in key and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        errs.append(f"{what} key {key!r}: prefix must be a DNS subdomain of at most 253 characters")
    if not name or len(name) > 63 or not QUALIFIED_NAME.match(name):
        errs.append(f"{what} key {key!r}: name must be at most 63 alphanumerics, '-', '_' or '.', "
                    "starting and ending with an alphanumeric")
    return errs


def label_errors(labels, where):
    errs = []
    for k, v in (labels or {}).items():
        errs += _qualified_key_errors(k, f"{where} label")
        if not isinstance(v, str):
            errs.append(f"{where} label {k}: value {v!r} is not a string")
        elif len(v) > 63 or not LABEL_VALUE.match(v):
            errs.append(f"{where} label {k}: value {v!r} is not a valid label value (at most 63 characters, "
                        "alphanumerics, '-', '_', '.', alphanumeric at both ends)")
    return errs


def annotation_errors(annotations, where):
    errs = []
    total = 0
    for k, v in (annotations or {}).items():
        errs += _qualified_key_errors(k, f"{where} annotation")
        if not isinstance(v, str):
            errs.append(f"{where} annotation {k}: value {v!r} is not a string")
        else:
            total += len(k) + len(v)
    if total > 256 * 1024:
        errs.append(f"{where} annotations: {total} bytes, more than 256 KiB")
    return errs


def name_errors(kind, name, where="metadata.name"):
    if not isinstance(name, str) or not name:
        return [f"{where}: missing"]
    limit = NAME_LIMITS.get(kind, 63 if kind in LABEL_NAMED else 253)
    pattern = DNS1123_LABEL if kind in LABEL_NAMED else DNS1123_SUBDOMAIN
    errs = []
    if len(name) > limit:
        errs.append(f"{where} {name!r}: {len(name)} characters, a {kind} name has at most {limit}")
    if not pattern.match(name):
        errs.append(f"{where} {name!r}: not a lowercase RFC 1123 {'label' if kind in LABEL_NAMED else 'subdomain'}")
    return errs


def _sorted_unique(values, where):
    if not isinstance(values, list):
        return [f"{where}: not a list"]
    if values != sorted(values):
        return [f"{where}: {values} is not sorted in ascending order"]
    if len(set(values)) != len(values):
        return [f"{where}: {values} has duplicates"]
    return []


def _nonneg(spec, keys, where):
    errs = []
    for k in keys:
        v = spec.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            errs.append(f"{where}.{k}: {v!r} must be an integer >= 0")
    return errs


def _positive(spec, keys, where):
    errs = []
    for k in keys:
        v = spec.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
            errs.append(f"{where}.{k}: {v!r} must be an integer > 0")
    return errs


def _unique(items, key, where):
    seen, errs = set(), []
    for it in items:
        v = it.get(key) if isinstance(it, dict) else None
        if v in seen:
            errs.append(f"{where}: duplicate {key} {v!r}")
        seen.add(v)
    return errs


def selector_matches(selector, labels):
    """matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist)."""
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, vals = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and labels.get(k) in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def pod_spec_errors(pod, where):
    errs = []
    containers = list(pod.get("initContainers") or []) + list(pod.get("containers") or [])
    if not pod.get("containers"):
        errs.append(f"{where}.containers: at least one")
    errs += _unique(containers, "name", f"{where} containers and initContainers")
    volumes = pod.get("volumes") or []
    errs += _unique(volumes, "name", f"{where}.volumes")
    vol_names = {v.get("name") for v in volumes}
    for i, v in enumerate(volumes):
        errs += name_errors("Service", v.get("name"), f"{where}.volumes[{i}].name")  # a DNS label
        for src in ("secret", "configMap"):
            for it in (v.get(src) or {}).get("items") or []:
                p = it.get("path", "")
                if p.startswith("/") or ".." in p.split("/"):
                    errs.append(f"{where}.volumes[{i}].{src}.items path {p!r} must be relative without '..'")
        mode = (v.get("secret") or v.get("configMap") or {}).get("defaultMode")
        if mode is not None and not (0 <= mode <= 0o777):
            errs.append(f"{where}.volumes[{i}] defaultMode {mode} out of 0-0777")
    errs += _nonneg(pod, ["terminationGracePeriodSeconds"], where)
    errs += _positive(pod, ["activeDeadlineSeconds"], where)
    if pod.get("restartPolicy") not in (None, "Always", "OnFailure", "Never"):
        errs.append(f"{where}.restartPolicy {pod.get('restartPolicy')!r}")
    # Native sidecars (core's validateInitContainers, validateContainers):
    # restartPolicy on a container is Always on an init container only; the
    # probes of an init container are a sidecar's only (a plain one runs to
    # completion before the next starts).
    for c in pod.get("initContainers") or []:
        cw = f"{where} init container {c.get('name')!r}"
        rp = c.get("restartPolicy")
        if rp not in (None, "Always"):
            errs.append(f"{cw} restartPolicy {rp!r}: only Always (a native sidecar)")
        if rp != "Always":
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe in c:
                    errs.append(f"{cw}: {probe} needs restartPolicy Always (a native sidecar)")
    for c in pod.get("containers") or []:
        if "restartPolicy" in c:
            errs.append(f"{where} container {c.get('name')!r} restartPolicy: for init containers only")
    for i, c in enumerate(containers):
        cw = f"{where} container {c.get('name')!r}"
        errs += name_errors("Service", c.get("name"), f"{cw} name")
        for e in c.get("env") or []:
            if not ENV_NAME.match(e.get("name", "")):
                errs.append(f"{cw} env {e.get('name')!r}: not a valid variable name")
        mounts = c.get("volumeMounts") or []
        errs += _unique(mounts, "mountPath", f"{cw}.volumeMounts")
        for m in mounts:
            if m.get("name") not in vol_names:
                errs.append(f"{cw} mounts volume {m.get('name')!r}, which the pod does not have")
            if not str(m.get("mountPath", "")).startswith("/"):
                errs.append(f"{cw} mountPath {m.get('mountPath')!r} is not absolute")
        for ef in c.get("envFrom") or []:
            p = ef.get("prefix")
            if p and not ENV_NAME.match(p):
                errs.append(f"{cw} envFrom prefix {p!r}")
    return errs


def pod_template_errors(tmpl, where):
    meta = tmpl.get("metadata") or {}
    return (label_errors(meta.get("labels"), f"{where}.metadata")
            + annotation_errors(meta.get("annotations"), f"{where}.metadata")
            + pod_spec_errors(tmpl.get("spec") or {}, f"{where}.spec"))


def job_spec_errors(spec, where):
    errs = _nonneg(spec, ["backoffLimit", "ttlSecondsAfterFinished"], where)
    errs += _positive(spec, ["activeDeadlineSeconds", "parallelism", "completions"], where)
    tmpl = spec.get("template") or {}
    pod = tmpl.get("spec") or {}
    pfp = spec.get("podFailurePolicy")
    if pfp is not None:
        if pod.get("restartPolicy") != "Never":
            errs.append(f"{where}.podFailurePolicy needs template.spec.restartPolicy Never")
        rules = pfp.get("rules") or []
        if len(rules) > 20:
            errs.append(f"{where}.podFailurePolicy: more than 20 rules")
        names = {c.get("name") for c in (pod.get("containers") or []) + (pod.get("initContainers") or [])}
        for i, r in enumerate(rules):
            rw = f"{where}.podFailurePolicy.rules[{i}]"
            oe = r.get("onExitCodes")
            if (oe is None) == (r.get("onPodConditions") is None):
                errs.append(f"{rw}: exactly one of onExitCodes and onPodConditions")
            if oe is not None:
                vals = oe.get("values") or []
                errs += _sorted_unique(vals, f"{rw}.onExitCodes.values")
                if not vals or len(vals) > 255:
                    errs.append(f"{rw}.onExitCodes.values: 1 to 255 values")
                if oe.get("operator") == "In" and 0 in vals:
                    errs.append(f"{rw}.onExitCodes.values: 0 with operator In")
                if oe.get("containerName") and oe["containerName"] not in names:
                    errs.append(f"{rw}.onExitCodes.containerName {oe['containerName']!r} is no container of the pod")
    errs += pod_template_errors(tmpl, f"{where}.template")
    return errs


def _time_zone_errors(tz, where):
    if tz is None:
        return []
    if not isinstance(tz, str) or not tz or tz.startswith("/") or ".." in tz \
            or not os.path.isfile(os.path.join(ZONEINFO, tz)):
        return [f"{where}: {tz!r} is not a time zone of the IANA database"]
    return []


def cronjob_errors(doc, where):
    spec = doc.get("spec") or {}
    errs = [f"{where}.spec.schedule {spec.get('schedule')!r}: {e}" for e in cron_errors(spec.get("schedule"))]
    errs += _time_zone_errors(spec.get("timeZone"), f"{where}.spec.timeZone")
    errs += _nonneg(spec, ["startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"],
                    f"{where}.spec")
    if spec.get("concurrencyPolicy") not in (None, "Allow", "Forbid", "Replace"):
        errs.append(f"{where}.spec.concurrencyPolicy {spec.get('concurrencyPolicy')!r}")
    jt = spec.get("jobTemplate") or {}
    jmeta = jt.get("metadata") or {}
    errs += label_errors(jmeta.get("labels"), f"{where}.spec.jobTemplate.metadata")
    errs += annotation_errors(jmeta.get("annotations"), f"{where}.spec.jobTemplate.metadata")
    errs += job_spec_errors(jt.get("spec") or {}, f"{where}.spec.jobTemplate.spec")
    return errs


def prometheus_rule_errors(doc, where):
    errs = []
    groups = (doc.get("spec") or {}).get("groups") or []
    errs += _unique(groups, "name", f"{where}.spec.groups")
    for g in groups:
        gw = f"{where} group {g.get('name')!r}"
        for k in ("interval", "query_offset"):
            if k in g and not (isinstance(g[k], str) and g[k] and PROM_DURATION.match(g[k])):
                errs.append(f"{gw}.{k} {g[k]!r}: not a Prometheus duration")
        for r in g.get("rules") or []:
            rw = f"{gw} rule {r.get('alert') or r.get('record')!r}"
            if ("alert" in r) == ("record" in r):
                errs.append(f"{rw}: exactly one of alert and record")
            if not str(r.get("expr", "")).strip():
                errs.append(f"{rw}: empty expr")
            for k in ("for", "keep_firing_for"):
                if k in r:
                    v = r[k]
                    if not (isinstance(v, str) and v and PROM_DURATION.match(v)):
                        errs.append(f"{rw}.{k} {v!r}: not a Prometheus duration (e.g. 30h, 1h30m)")
            for what in ("labels", "annotations"):
                for k, v in (r.get(what) or {}).items():
                    if not PROM_LABEL_NAME.match(str(k)):
                        errs.append(f"{rw} {what} name {k!r}: not a Prometheus label name")
                    if not isinstance(v, str):
                        errs.append(f"{rw} {what} {k}: value {v!r} is not a string")
    return errs


def network_policy_errors(doc, where, pods_labels):
    """The policy selects at least one of the pods rendered with it (a
    selector that matches nothing silently stops protecting them)."""
    spec = doc.get("spec") or {}
    sel = spec.get("podSelector")
    errs = []
    if sel is None:
        return [f"{where}.spec.podSelector: missing"]
    if pods_labels and not any(selector_matches(sel, labels) for labels in pods_labels):
        errs.append(f"{where}.spec.podSelector {sel} matches none of the pods rendered with it")
    for i, e in enumerate(spec.get("egress") or []):
        for p in e.get("ports") or []:
            port = p.get("port")
            if isinstance(port, int) and not 1 <= port <= 65535:
                errs.append(f"{where}.spec.egress[{i}] port {port} out of 1-65535")
            if isinstance(port, str) and not DNS1123_LABEL.match(port):
                errs.append(f"{where}.spec.egress[{i}] named port {port!r}")
    return errs


def data_key_errors(doc, where):
    errs = []
    for field in ("data", "stringData", "binaryData"):
        for k in (doc.get(field) or {}):
            if len(k) > 253 or not CONFIG_KEY.match(k):
                errs.append(f"{where}.{field} key {k!r}: alphanumerics, '-', '_' or '.', at most 253")
    return errs


def pod_labels_of(doc):
    kind = doc.get("kind")
    if kind == "CronJob":
        return ((doc["spec"]["jobTemplate"]["spec"].get("template") or {}).get("metadata") or {}).get("labels")
    if kind == "Job":
        return ((doc["spec"].get("template") or {}).get("metadata") or {}).get("labels")
    if kind == "Pod":
        return doc["metadata"].get("labels")
    return None


def check(docs):
    """Every rule above on every document; [] when all would be accepted."""
    errs = []
    pods_labels = [pod_labels_of(d) for d in docs if d.get("kind") in ("CronJob", "Job", "Pod")]
    seen = set()
    for d in docs:
        kind = d.get("kind", "?")
        meta = d.get("metadata") or {}
        name = meta.get("name")
        where = f"{kind}/{name}"
        if (kind, name) in seen:
            errs.append(f"{where}: two documents of that kind and name")
        seen.add((kind, name))
        errs += [f"{where}: {e}" for e in name_errors(kind, name)]
        if meta.get("namespace") is not None:
            errs += [f"{where}: {e}" for e in name_errors("Namespace", meta["namespace"], "metadata.namespace")]
        errs += label_errors(meta.get("labels"), f"{where} metadata")
        errs += annotation_errors(meta.get("annotations"), f"{where} metadata")
        if kind == "CronJob":
            errs += cronjob_errors(d, where)
        elif kind == "Job":
            errs += job_spec_errors(d.get("spec") or {}, f"{where}.spec")
        elif kind == "Pod":
            errs += pod_spec_errors(d.get("spec") or {}, f"{where}.spec")
        elif kind == "PrometheusRule":
            errs += prometheus_rule_errors(d, where)
        elif kind == "NetworkPolicy":
            errs += network_policy_errors(d, where, pods_labels)
        elif kind in ("ConfigMap", "Secret"):
            errs += data_key_errors(d, where)
    return errs
