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
        spec = os.path.join(run_dir, "spec.json")
        with open(spec, "w") as f:
            json.dump({"rootfs": ROOTFS, "mnt": mnt, "rw": self.volumes,
                       "termination": term, "argv": list(argv),
                       "env": full_env, "uid": UID, "gid": GID}, f)
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
            os.rmdir(mnt)
        with open(term, encoding="utf-8", errors="replace") as f:
            termination = f.read() or None
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


def make_workdir():
    d = tempfile.mkdtemp(prefix="sauve-rootfs-")
    os.chmod(d, 0o755)
    return d
