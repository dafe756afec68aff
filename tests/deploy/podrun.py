"""How Kubernetes would run a rendered sauve container, read from its manifest.

The deploy tests render the chart and the Kustomize overlays offline; a later
test runs the image's rootfs the way a kubelet would. This module is the
bridge: from a rendered CronJob, Job or Pod (and the ConfigMaps and Secrets
rendered with it) it computes what the container gets:

    spec = run_spec(cronjob, objects)
    spec.argv            command + args, $(VAR) references expanded
    spec.environ         the environment (envFrom, then env; valueFrom resolved)
    spec.mounts          every volume mount, with the files of ConfigMap and
                         Secret volumes (bytes, mode) as the kubelet writes them
    spec.user, spec.group, spec.fs_group, spec.read_only_root, ...
    materialize(spec, root)   writes those files under root + mountPath

Only what sauve's manifests use is modelled: env value/valueFrom
(secretKeyRef, configMapKeyRef, fieldRef to metadata.name/namespace),
envFrom, configMap/secret/emptyDir/persistentVolumeClaim volumes, items,
defaultMode and mode. Anything else raises, so a manifest change that this
does not understand is noticed rather than run wrongly.
"""

import base64
import os
import re
from dataclasses import dataclass, field


class Unsupported(Exception):
    """The manifest uses something this model of the kubelet does not."""


def index_objects(docs):
    """{(kind, name): doc} of the rendered documents (ConfigMaps, Secrets...)."""
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d}


def pod_template(doc):
    """The pod template ({metadata, spec}) of a CronJob, Job or Pod."""
    kind = doc["kind"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]
    if kind == "Job":
        return doc["spec"]["template"]
    if kind == "Pod":
        return {"metadata": doc.get("metadata", {}), "spec": doc["spec"]}
    raise Unsupported(f"no pod in a {kind}")


def _secret_data(secret):
    data = {k: base64.b64decode(re.sub(r"\s", "", v)) for k, v in (secret.get("data") or {}).items()}
    for k, v in (secret.get("stringData") or {}).items():
        data[k] = v.encode()
    return data


def _configmap_data(cm):
    data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
    for k, v in (cm.get("binaryData") or {}).items():
        data[k] = base64.b64decode(v)
    return data


@dataclass
class Mount:
    path: str
    read_only: bool
    kind: str  # configMap, secret, emptyDir, persistentVolumeClaim
    source: str  # the ConfigMap/Secret/claim name, "" for emptyDir
    files: dict = field(default_factory=dict)  # relative path -> (bytes, mode), configMap/secret only
    size_limit: str = ""
    sub_path: str = ""


@dataclass
class RunSpec:
    name: str  # the container's
    image: str
    argv: list
    environ: dict
    mounts: list
    user: int
    group: int
    fs_group: int
    run_as_non_root: bool
    read_only_root: bool
    allow_privilege_escalation: bool
    capabilities_dropped: list
    seccomp: str
    termination_message_path: str
    restart_policy: str
    service_account: str
    automount_token: bool
    enable_service_links: bool

    def mount_for(self, path):
        """The mount a file path falls under (the longest mountPath), or None."""
        best = None
        for m in self.mounts:
            if path == m.path or path.startswith(m.path.rstrip("/") + "/"):
                if best is None or len(m.path) > len(best.path):
                    best = m
        return best

    def file(self, path):
        """The bytes a ConfigMap or Secret mount puts at path, or None."""
        m = self.mount_for(path)
        if m is None:
            return None
        rel = os.path.relpath(path, m.path)
        entry = m.files.get(rel)
        return entry[0] if entry else None


def _expand(value, env):
    """Kubernetes' $(VAR) expansion: defined variables only, $$ escapes."""

    def repl(mo):
        if mo.group(0) == "$$":
            return "$"
        name = mo.group(1)
        return env[name] if name in env else mo.group(0)

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", repl, value)


def _lookup(objects, kind, name, optional, what):
    obj = objects.get((kind, name))
    if obj is None and not optional:
        raise KeyError(f"{what}: {kind} {name} is not among the rendered objects")
    return obj


def run_spec(doc, objects, container="sauve"):
    """What the kubelet gives container `container` of doc's pod (see module doc).
    objects: index_objects() of the documents rendered with it."""
    tmpl = pod_template(doc)
    meta, pod = tmpl.get("metadata", {}), tmpl["spec"]
    ctrs = [c for c in pod["containers"] if c["name"] == container]
    if not ctrs:
        raise KeyError(f"no container {container}")
    c = ctrs[0]
    # Init containers and native sidecars (extraInitContainers, sidecars)
    # run beside sauve's container; what sauve's container gets is not
    # changed by them, and is all this models.

    env = {}
    for src in c.get("envFrom") or []:
        prefix = src.get("prefix", "")
        if "secretRef" in src:
            ref = src["secretRef"]
            obj = _lookup(objects, "Secret", ref["name"], ref.get("optional"), "envFrom")
            data = _secret_data(obj) if obj else {}
        elif "configMapRef" in src:
            ref = src["configMapRef"]
            obj = _lookup(objects, "ConfigMap", ref["name"], ref.get("optional"), "envFrom")
            data = _configmap_data(obj) if obj else {}
        else:
            raise Unsupported(f"envFrom {src}")
        for k, v in data.items():
            env[prefix + k] = v.decode()
    for e in c.get("env") or []:
        name = e["name"]
        if "valueFrom" not in e:
            env[name] = _expand(e.get("value", ""), env)
            continue
        vf = e["valueFrom"]
        if "secretKeyRef" in vf or "configMapKeyRef" in vf:
            is_secret = "secretKeyRef" in vf
            ref = vf["secretKeyRef" if is_secret else "configMapKeyRef"]
            kind = "Secret" if is_secret else "ConfigMap"
            obj = _lookup(objects, kind, ref["name"], ref.get("optional"), f"env {name}")
            data = (_secret_data(obj) if is_secret else _configmap_data(obj)) if obj else {}
            if ref["key"] in data:
                env[name] = data[ref["key"]].decode()
            elif not ref.get("optional"):
                raise KeyError(f"env {name}: key {ref['key']} not in {kind} {ref['name']}")
        elif "fieldRef" in vf:
            path = vf["fieldRef"]["fieldPath"]
            values = {"metadata.name": meta.get("name", "pod"), "metadata.namespace": doc["metadata"].get("namespace", "default")}
            if path not in values:
                raise Unsupported(f"env {name}: fieldRef {path}")
            env[name] = values[path]
        else:
            raise Unsupported(f"env {name}: valueFrom {vf}")

    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    mounts = []
    for vm in c.get("volumeMounts") or []:
        vol = volumes[vm["name"]]
        ro = bool(vm.get("readOnly"))
        sub = vm.get("subPath", "")
        if "configMap" in vol or "secret" in vol:
            is_secret = "secret" in vol
            src = vol["secret" if is_secret else "configMap"]
            name = src["secretName" if is_secret else "name"]
            kind = "Secret" if is_secret else "ConfigMap"
            obj = _lookup(objects, kind, name, src.get("optional"), f"volume {vm['name']}")
            data = (_secret_data(obj) if is_secret else _configmap_data(obj)) if obj else {}
            mode = src.get("defaultMode", 0o644)
            files = {}
            if src.get("items"):
                for it in src["items"]:
                    if it["key"] not in data:
                        if src.get("optional"):
                            continue
                        raise KeyError(f"volume {vm['name']}: key {it['key']} not in {kind} {name}")
                    files[it["path"]] = (data[it["key"]], it.get("mode", mode))
            else:
                files = {k: (v, mode) for k, v in data.items()}
            # Projected files are always read-only, whatever the mount says.
            mounts.append(Mount(vm["mountPath"], True, kind[0].lower() + kind[1:], name, files, sub_path=sub))
        elif "emptyDir" in vol:
            ed = vol["emptyDir"] or {}
            mounts.append(Mount(vm["mountPath"], ro, "emptyDir", "", size_limit=str(ed.get("sizeLimit", "")), sub_path=sub))
        elif "persistentVolumeClaim" in vol:
            pvc = vol["persistentVolumeClaim"]
            mounts.append(Mount(vm["mountPath"], ro or bool(pvc.get("readOnly")), "persistentVolumeClaim", pvc["claimName"], sub_path=sub))
        else:
            kind = next(k for k in vol if k != "name")
            mounts.append(Mount(vm["mountPath"], ro, kind, "", sub_path=sub))

    psc = pod.get("securityContext") or {}
    csc = c.get("securityContext") or {}

    def sc(key, default=None):
        return csc.get(key, psc.get(key, default))

    argv = [_expand(a, env) for a in (c.get("command") or []) + (c.get("args") or [])]
    return RunSpec(
        name=c["name"],
        image=c.get("image", ""),
        argv=argv,
        environ=env,
        mounts=mounts,
        user=sc("runAsUser"),
        group=sc("runAsGroup"),
        fs_group=psc.get("fsGroup"),
        run_as_non_root=bool(sc("runAsNonRoot", False)),
        read_only_root=bool(csc.get("readOnlyRootFilesystem", False)),
        allow_privilege_escalation=csc.get("allowPrivilegeEscalation", True),
        capabilities_dropped=list((csc.get("capabilities") or {}).get("drop") or []),
        seccomp=(sc("seccompProfile") or {}).get("type", ""),
        termination_message_path=c.get("terminationMessagePath", "/dev/termination-log"),
        restart_policy=pod.get("restartPolicy", "Always"),
        service_account=pod.get("serviceAccountName", "default"),
        automount_token=pod.get("automountServiceAccountToken", True),
        enable_service_links=pod.get("enableServiceLinks", True),
    )


def materialize(spec, root, uid=None, gid=None):
    """Writes the files of the ConfigMap and Secret mounts under root (root +
    mountPath), with their modes; creates the emptyDir mount points. With uid
    and gid (as root only), the files get the owner the kubelet gives them:
    root, and the pod's fsGroup as group. Returns {mountPath: host dir}."""
    out = {}
    for m in spec.mounts:
        host = os.path.join(root, m.path.lstrip("/"))
        os.makedirs(host, exist_ok=True)
        out[m.path] = host
        for rel, (data, mode) in m.files.items():
            p = os.path.join(host, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
            os.chmod(p, mode)
            if uid is not None:
                os.chown(p, uid, spec.fs_group if spec.fs_group is not None else gid)
    return out
