"""Running the built image (the OCI archive make image writes) as Kubernetes
would run it, with buildah: `buildah from` + `buildah run --isolation chroot`
in a buildah store of the test session's own, removed at the end.

What a container gets here (runjail.py sets it up, then runs `buildah run`):

- the user the test or the pod says (uid:gid), no capabilities when the pod
  drops them (a non-root user has none anyway);
- exactly the environment given, plus what a runtime adds: PATH (the
  runtime's default: the image sets none), HOSTNAME, and HOME from the
  image's /etc/passwd;
- a read-only root: the container's file system is remounted read-only
  before buildah runs in it. What buildah itself mounts at each run must
  exist first, as a runtime creates its mount points in the container's
  writable layer (never in the image): /dev, /proc, /sys, /etc/hosts,
  /etc/hostname, /etc/resolv.conf, and each volume's mount point; /run is
  a small tmpfs, because buildah writes and removes /run/.containerenv at
  every run;
- a /dev like the kubelet's (null, zero, full, random, urandom, tty, fd,
  shm) with the termination log bound at /dev/termination-log (buildah's
  chroot isolation would bind the host's whole /dev, read-only, and skips
  mounts below /dev);
- the host's network (the test servers listen on loopback).

Not modelled, because buildah run has no way to: no_new_privs, and
supplementary groups other than the primary group (the chart's fsGroup is
its runAsGroup, so the pods need none).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from container import KUBELET_ENV, UID, GID, prepare_pod
from sauvecli import Result, trace

HERE = os.path.dirname(os.path.abspath(__file__))
RUNJAIL = os.path.join(HERE, "runjail.py")
HOSTNAME = "sauve-test"
TAG = "localhost/sauve-under-test:latest"


def _driver(root):
    """overlay when the kernel allows it on root's file system, else vfs
    (as scripts/image/lib.sh chooses)."""
    if os.environ.get("SAUVE_BUILDAH_DRIVER"):
        return os.environ["SAUVE_BUILDAH_DRIVER"]
    probe = os.path.join(root, "probe")
    r = subprocess.run(["buildah", "--root", probe, "--runroot", probe + "-run",
                        "--storage-driver", "overlay", "images"], capture_output=True)
    shutil.rmtree(probe, ignore_errors=True)
    shutil.rmtree(probe + "-run", ignore_errors=True)
    return "overlay" if r.returncode == 0 else "vfs"


class Store:
    """A buildah store holding the image of ARCHIVE (pulled from the
    archive: no registry), in a temporary directory; close() removes every
    container and image and the store itself."""

    def __init__(self, archive):
        self.archive = archive
        self.dir = tempfile.mkdtemp(prefix="sauve-image-test-", dir="/var/tmp")
        self.runroot = os.path.join("/run", os.path.basename(self.dir))
        self.driver = _driver(self.dir)
        self.base = ["buildah", "--root", os.path.join(self.dir, "storage"), "--runroot",
                     self.runroot, "--storage-driver", self.driver]
        self.image_id = self.bh("pull", "-q", f"oci-archive:{archive}").strip().splitlines()[-1]
        self.bh("tag", self.image_id, TAG)
        self.inspect = json.loads(self.bh("inspect", "--type", "image", TAG))
        # A container that never runs: its mounted file system is exactly
        # the image's (runtime.root).
        self.pristine = self.new_container()
        self.root = self.mount(self.pristine)

    def bh(self, *args, check=True):
        p = subprocess.run(self.base + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"buildah {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
        return p.stdout

    def new_container(self):
        return self.bh("from", "--pull=never", "--quiet", TAG).strip()

    def mount(self, ctr):
        return self.bh("mount", ctr).strip()

    def remove(self, ctr):
        self.bh("rm", ctr)

    def containers(self):
        return [c for c in self.bh("containers", "--quiet").split() if c]

    def close(self):
        self.bh("rm", "--all", check=False)
        self.bh("rmi", "--all", "--force", check=False)
        left = self.bh("images", "--all", "--quiet", check=False).split()
        # Nothing of the store may stay mounted before it is removed.
        with open("/proc/self/mountinfo") as f:
            mounted = [l.split()[4] for l in f if l.split()[4].startswith(self.dir + "/")]
        for m in sorted(mounted, reverse=True):
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)
        if left:
            raise RuntimeError(f"images left in {self.dir}: {left}")


# What buildah 1.28 itself writes to the stderr it shares with the program
# when the program exits with a status other than 0: not the program's.
BUILDAH_EXIT_LINES = re.compile(rb"(?:(?<=\n)|\A)((?:subprocess exited with status (\d+)\n)+)Error: exit status (\d+)\n\Z")


def program_stderr(stderr, code):
    """stderr without buildah's own lines about the exit status code."""
    m = BUILDAH_EXIT_LINES.search(stderr)
    if m and code != 0 and int(m.group(3)) == code and all(
            int(n) == code for n in re.findall(rb"status (\d+)", m.group(1))):
        return stderr[:m.start()]
    return stderr


def run_in_image(store, run_dir, *, argv, env, uid, gid, rw=None, ro=None, termination=None,
                 termination_path="/dev/termination-log", read_only_root=True, cap_drop_all=True,
                 timeout=600):
    """Runs argv in a fresh container of the image (removed afterwards).
    Returns (CompletedProcess, termination log text or None)."""
    ctr = store.new_container()
    try:
        mnt = store.mount(ctr)
        volumes = sorted([(t, s, False) for t, s in (rw or {}).items()]
                         + [(t, s, True) for t, s in (ro or {}).items()])
        # The runtime's mount points, in the container's own layer.
        for d in ("dev", "proc", "sys", "run"):
            os.makedirs(os.path.join(mnt, d), exist_ok=True)
        if os.path.isdir(os.path.join(mnt, "etc")):
            for f in ("hosts", "hostname", "resolv.conf"):
                open(os.path.join(mnt, "etc", f), "a").close()
        for target, src, _ in volumes:
            dst = os.path.join(mnt, target.lstrip("/"))
            if os.path.isdir(src):
                os.makedirs(dst, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                open(dst, "a").close()
        dev = os.path.join(run_dir, "dev")
        os.mkdir(dev)
        spec = {"buildah": store.base, "container": ctr, "mnt": mnt, "dev": dev,
                "termination": termination, "termination_path": termination_path,
                "read_only_root": read_only_root, "user": f"{uid}:{gid}", "hostname": HOSTNAME,
                "cap_drop_all": cap_drop_all, "volumes": volumes, "env": env, "argv": list(argv)}
        spec_file = os.path.join(run_dir, "spec.json")
        with open(spec_file, "w") as f:
            json.dump(spec, f)
        os.chmod(spec_file, 0o600)
        cmd = ["/usr/bin/unshare", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child",
               "--propagation", "private", "--", sys.executable, RUNJAIL, spec_file]
        p = subprocess.run(cmd, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    finally:
        store.remove(ctr)
    p.stderr = program_stderr(p.stderr, p.returncode)
    termination_text = None
    if termination:
        with open(termination, encoding="utf-8", errors="replace") as f:
            termination_text = f.read() or None
    return p, termination_text


def image_argv(store, argv):
    """A pod's command + args as the runtime runs it: a container without a
    command (argv does not start with a path) runs the image's entrypoint
    with the args, or with the image's cmd when there are none."""
    cfg = store.inspect["OCIv1"]["config"]
    if argv and argv[0].startswith("/"):
        return list(argv)
    return list(cfg.get("Entrypoint") or []) + (list(argv) or list(cfg.get("Cmd") or []))


def make_container_class(store):
    """A class like container.Container, running the image."""

    class ImageContainer:
        def __init__(self, workdir, env, volumes=None):
            self.workdir = workdir
            self.env = dict(env)
            self.volumes = dict(volumes or {})
            self.runs = 0

        def exec(self, argv, env=None, timeout=600, ro=None):
            self.runs += 1
            run_dir = os.path.join(self.workdir, f"container-{self.runs}")
            os.mkdir(run_dir)
            term = os.path.join(run_dir, "termination-log")
            open(term, "w").close()
            os.chown(term, UID, GID)
            p, termination = run_in_image(
                store, run_dir, argv=argv, env={**self.env, **(env or {})}, uid=UID, gid=GID,
                rw=self.volumes, ro=ro, termination=term, timeout=timeout)
            shutil.rmtree(run_dir, ignore_errors=True)
            return (p.returncode, p.stdout.decode("utf-8", "replace"),
                    p.stderr.decode("utf-8", "replace"), termination)

        def sauve(self, *args, env=None, timeout=600, check_log=True):
            code, out, err, term = self.exec(["/usr/local/bin/sauve", *args], env=env, timeout=timeout)
            r = Result(list(args), code, out, err, term)
            trace(r)
            if check_log:
                r.check_log_contract(json_stdout="--json" in args)
            return r

    return ImageContainer


def make_run_pod(store):
    """run_pod like container.run_pod, running the image."""

    def run_pod(spec, workdir, timeout=600):
        pod = prepare_pod(spec, workdir)
        if set(pod["groups"]) - {pod["gid"]}:
            raise ValueError(f"supplementary groups {pod['groups']} besides {pod['gid']}: "
                             "buildah run cannot give them (imagerun.py)")
        argv = image_argv(store, spec.argv)
        p, termination = run_in_image(
            store, pod["run_dir"], argv=argv, env=pod["env"], uid=pod["uid"], gid=pod["gid"],
            rw=pod["rw"], ro=pod["ro"], termination=pod["term"],
            termination_path=spec.termination_message_path, read_only_root=spec.read_only_root,
            cap_drop_all="ALL" in spec.capabilities_dropped, timeout=timeout)
        shutil.rmtree(pod["run_dir"], ignore_errors=True)
        r = Result(argv[1:], p.returncode, p.stdout.decode("utf-8", "replace"),
                   p.stderr.decode("utf-8", "replace"), termination)
        trace(r)
        return r

    return run_pod
