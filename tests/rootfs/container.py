"""Running programs of the image's filesystem (build/rootfs) as Kubernetes
would run the container: see jail.py for what the container gets."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from sauvecli import Result, trace

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ROOTFS = os.path.abspath(os.environ.get("SAUVE_ROOTFS", os.path.join(REPO, "build", "rootfs")))
JAIL = os.path.join(HERE, "jail.py")
UID = GID = 65532
SAUVE = "/usr/local/bin/sauve"

# What a container runtime sets when the image sets nothing (Docker's and
# containerd's default PATH; runc takes HOME from the image's /etc/passwd).
CONTAINER_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOSTNAME": "sauve-test",
    "HOME": "/nonexistent",
}


class Container:
    """One 'container' configuration: environment and writable volumes.

    workdir: a host directory of the test (termination logs, specs);
    env: the pod's environment on top of CONTAINER_ENV;
    volumes: {"/path/in/container": "/host/dir"} mounted writable."""

    def __init__(self, workdir, env, volumes=None):
        self.workdir = workdir
        self.env = dict(env)
        self.volumes = dict(volumes or {})
        self.runs = 0

    def exec(self, argv, env=None, timeout=600):
        """Runs argv (absolute path inside the rootfs) in a fresh container.
        Returns (returncode, stdout, stderr, termination log text or None)."""
        self.runs += 1
        run_dir = os.path.join(self.workdir, f"container-{self.runs}")
        os.mkdir(run_dir)
        mnt = os.path.join(run_dir, "root")
        os.mkdir(mnt)
        term = os.path.join(run_dir, "termination-log")
        open(term, "w").close()
        os.chown(term, UID, GID)
        full_env = {**CONTAINER_ENV, **self.env, **(env or {})}
        p, termination = run_jail(run_dir, {
            "rootfs": ROOTFS, "mnt": mnt, "rw": self.volumes, "termination": term,
            "argv": list(argv), "env": full_env, "uid": UID, "gid": GID}, timeout)
        shutil.rmtree(run_dir, ignore_errors=True)
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"), termination)

    def sauve(self, *args, env=None, timeout=600, check_log=True):
        """Runs sauve ARGS in a fresh container; returns a sauvecli.Result."""
        code, out, err, term = self.exec([SAUVE, *args], env=env, timeout=timeout)
        r = Result(list(args), code, out, err, term)
        trace(r)
        if check_log:
            r.check_log_contract(json_stdout="--json" in args)
        return r


def run_jail(run_dir, jail_spec, timeout):
    """Runs jail.py with jail_spec (see jail.py) in new mount and PID
    namespaces. Returns (CompletedProcess, termination log text or None)."""
    spec = os.path.join(run_dir, "spec.json")
    with open(spec, "w") as f:
        json.dump(jail_spec, f)
    os.chmod(spec, 0o600)
    cmd = ["/usr/bin/unshare", "--mount", "--pid", "--fork", "--kill-child",
           "--propagation", "private", "--", sys.executable, JAIL, spec]
    try:
        p = subprocess.run(cmd, env={"PATH": "/usr/bin:/bin"},
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    finally:
        # The mounts lived in the namespace, gone with it; mnt is an
        # empty directory again (rmdir fails loudly if it is not).
        os.rmdir(jail_spec["mnt"])
    with open(jail_spec["termination"], encoding="utf-8", errors="replace") as f:
        termination = f.read() or None
    return p, termination


# What the kubelet adds to every container's environment whatever the pod
# says (enableServiceLinks: false drops only the other Services' variables).
KUBELET_ENV = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443",
    "KUBERNETES_PORT": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
    "KUBERNETES_PORT_443_TCP_PORT": "443",
    "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
}


def prepare_pod(spec, workdir):
    """What the kubelet prepares for the container a podrun.RunSpec
    describes (from a rendered manifest): its ConfigMap and Secret files
    (owner root, group fsGroup, their modes) to mount read-only at their
    mountPaths, a fresh emptyDir for each emptyDir mount, the termination
    log, the user, groups and environment. Returns a dict: run_dir (remove
    it after the run), ro and rw ({path in container: host dir}), term (the
    termination log's host file), env (the kubelet's variables and the
    pod's; not CONTAINER_ENV), uid, gid, groups."""
    from podrun import materialize

    if spec.run_as_non_root and not spec.user:
        raise ValueError("runAsNonRoot without a non-zero runAsUser: the kubelet refuses to start it")
    for m in spec.mounts:
        if m.sub_path or m.kind not in ("configMap", "secret", "emptyDir"):
            raise ValueError(f"mount {m.path}: {m.kind} {m.sub_path} is not modelled here")
    run_dir = tempfile.mkdtemp(prefix="pod-", dir=workdir)
    os.chmod(run_dir, 0o755)
    fs_group = spec.fs_group if spec.fs_group is not None else spec.group
    dirs = materialize(spec, os.path.join(run_dir, "volumes"), uid=0, gid=fs_group)
    ro, rw = {}, {}
    for m in spec.mounts:
        if m.kind == "emptyDir":
            # The kubelet's emptyDir: 0777, and with an fsGroup owned by
            # it and setgid.
            os.chown(dirs[m.path], 0, fs_group)
            os.chmod(dirs[m.path], 0o2777 if spec.fs_group is not None else 0o777)
            (ro if m.read_only else rw)[m.path] = dirs[m.path]
        else:
            ro[m.path] = dirs[m.path]
    term = os.path.join(run_dir, "termination-log")
    open(term, "w").close()
    os.chown(term, spec.user, fs_group)
    # Kubernetes adds the fsGroup to the container's supplementary groups.
    groups = [spec.fs_group] if spec.fs_group is not None else []
    return {"run_dir": run_dir, "ro": ro, "rw": rw, "term": term,
            "env": {**KUBELET_ENV, **spec.environ}, "uid": spec.user,
            "gid": spec.group if spec.group is not None else 0, "groups": groups}


def run_pod(spec, workdir, timeout=600):
    """Runs the container a podrun.RunSpec describes (from a rendered
    manifest) with the rootfs as its image, as the kubelet would
    (prepare_pod): its argv and environment, its volumes, its user, group
    and fsGroup, its read-only root and its termination log. Returns a
    sauvecli.Result."""
    pod = prepare_pod(spec, workdir)
    mnt = os.path.join(pod["run_dir"], "root")
    os.mkdir(mnt)
    p, termination = run_jail(pod["run_dir"], {
        "rootfs": ROOTFS, "mnt": mnt, "rw": pod["rw"], "ro": pod["ro"],
        "termination": pod["term"], "termination_path": spec.termination_message_path,
        "argv": spec.argv, "env": {**CONTAINER_ENV, **pod["env"]}, "uid": pod["uid"],
        "gid": pod["gid"], "groups": pod["groups"],
        "read_only_root": spec.read_only_root}, timeout)
    shutil.rmtree(pod["run_dir"], ignore_errors=True)
    r = Result(spec.argv[1:], p.returncode, p.stdout.decode("utf-8", "replace"),
               p.stderr.decode("utf-8", "replace"), termination)
    trace(r)
    return r


def make_workdir():
    d = tempfile.mkdtemp(prefix="sauve-rootfs-")
    os.chmod(d, 0o755)
    return d


class Runtime:
    """What runs the image's programs in a test (the fixture `runtime`):
    root, a directory holding exactly the image's files; Container and
    run_pod, as above. tests/image gives the same for the built image."""

    def __init__(self, name, root, container, run_pod):
        self.name, self.root, self.Container, self.run_pod = name, root, container, run_pod


ROOTFS_RUNTIME = Runtime("rootfs", ROOTFS, Container, run_pod)

