"""Runs one program of the rootfs the way a container runtime runs the image
under Kubernetes' hardened defaults, for the rootfs tests.

Started by container.py as

    unshare --mount --pid --fork --kill-child --propagation private -- python3 jail.py SPEC

so that it is PID 1 of a new PID namespace and every mount below lives in a
private mount namespace that vanishes with it (nothing to unmount, also when
a test fails or is killed). SPEC is a JSON file:

    rootfs      the image's filesystem (build/rootfs), mounted read-only
    mnt         an empty directory to build the container's root in
    rw          {"/path/in/container": "/host/dir"}: writable volumes
    ro          {"/path/in/container": "/host/dir"}: read-only volumes
                (optional; ConfigMap and Secret files of a pod spec)
    termination host file bound at termination_path (writable)
    termination_path  where, under /dev (default /dev/termination-log)
    argv, env   what to execute, with exactly this environment
    uid, gid    the user (Kubernetes runAsUser/runAsGroup)
    groups      supplementary groups (optional, default none; a pod's
                fsGroup)
    read_only_root  remount the root read-only (optional, default true)

The container's root is a tmpfs (so that /dev, /proc and volume mount
points can be created, as the runtime does), holding a read-only bind
mount of each top-level entry of the rootfs, then remounted read-only
(readOnlyRootFilesystem). A volume whose mount point the image lacks below
one of its directories (/etc/sauve) gets it as a runtime does: that
directory becomes a tmpfs of read-only binds of its entries, plus the new
mount point. The program runs chrooted there, as uid:gid with
no supplementary groups, no capabilities and no_new_privs; the network is
the host's (the test servers listen on loopback).
"""

import ctypes
import json
import os
import subprocess
import sys

PR_SET_NO_NEW_PRIVS = 38
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def mount(*args):
    subprocess.run(["/usr/bin/mount", *args], check=True)


def bind_ro(src, dst):
    mount("--bind", src, dst)
    mount("-o", "remount,bind,ro", dst)


def touch(path):
    with open(path, "a"):
        pass


def populate(src_dir, dst_dir, needed, tmpfs):
    """Fills dst_dir (a fresh tmpfs) with read-only binds of src_dir's
    entries; an entry below which a mount point of needed (paths relative to
    src_dir) is missing becomes a tmpfs populated the same way instead."""
    for name in sorted(os.listdir(src_dir)):
        src, dst = os.path.join(src_dir, name), os.path.join(dst_dir, name)
        below = [p[len(name) + 1:] for p in needed if p.startswith(name + "/")]
        is_dir = os.path.isdir(src) and not os.path.islink(src)
        if is_dir and any(not os.path.lexists(os.path.join(src, p)) for p in below):
            os.mkdir(dst)
            mode = oct(os.stat(src).st_mode & 0o7777)[2:]
            mount("-t", "tmpfs", "-o", f"mode={mode},size=64k", "sauve-shadow", dst)
            tmpfs.append(dst)
            populate(src, dst, below, tmpfs)
            continue
        if is_dir:
            os.mkdir(dst)
        else:
            touch(dst)
        bind_ro(src, dst)


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    rootfs, mnt = spec["rootfs"], spec["mnt"]
    volumes = sorted([(t, s, False) for t, s in spec.get("rw", {}).items()]
                     + [(t, s, True) for t, s in spec.get("ro", {}).items()])

    mount("-t", "tmpfs", "-o", "mode=0755,size=1m", "sauve-root", mnt)
    tmpfs = [mnt]
    populate(rootfs, mnt, [t.strip("/") for t, _, _ in volumes], tmpfs)

    dev = os.path.join(mnt, "dev")
    os.mkdir(dev)
    mount("-t", "tmpfs", "-o", "mode=0755,size=64k,nosuid", "sauve-dev", dev)
    for d in DEVICES:
        touch(os.path.join(dev, d))
        mount("--bind", "/dev/" + d, os.path.join(dev, d))
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, name))
    if spec.get("termination"):
        path = spec.get("termination_path", "/dev/termination-log")
        rel = os.path.relpath(path, "/dev")
        if rel.startswith("..") or "/" in rel:
            raise SystemExit(f"jail: termination log {path} is not a file of /dev")
        touch(os.path.join(dev, rel))
        mount("--bind", spec["termination"], os.path.join(dev, rel))

    proc = os.path.join(mnt, "proc")
    os.mkdir(proc)
    mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", proc)

    # Parents before children (sorted by path), as the kubelet mounts them.
    for target, src, ro in volumes:
        dst = os.path.join(mnt, target.lstrip("/"))
        os.makedirs(dst, exist_ok=True)
        if ro:
            bind_ro(src, dst)
        else:
            mount("--bind", src, dst)

    if spec.get("read_only_root", True):
        for t in reversed(tmpfs):
            mount("-o", "remount,ro", t)

    os.chroot(mnt)
    os.chdir("/")
    os.setgroups(spec.get("groups", []))
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    argv = spec["argv"]
    os.execve(argv[0], argv, spec["env"])


if __name__ == "__main__":
    main()
