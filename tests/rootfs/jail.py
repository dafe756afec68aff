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
    termination host file bound at /dev/termination-log (writable)
    argv, env   what to execute, with exactly this environment
    uid, gid    the user (Kubernetes runAsUser/runAsGroup)

The container's root is a tmpfs (so that /dev, /proc and volume mount
points can be created, as the runtime does), holding a read-only bind
mount of each top-level entry of the rootfs, then remounted read-only
(readOnlyRootFilesystem). The program runs chrooted there, as uid:gid with
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


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    rootfs, mnt = spec["rootfs"], spec["mnt"]

    mount("-t", "tmpfs", "-o", "mode=0755,size=1m", "sauve-root", mnt)
    for name in sorted(os.listdir(rootfs)):
        src, dst = os.path.join(rootfs, name), os.path.join(mnt, name)
        if os.path.isdir(src) and not os.path.islink(src):
            os.mkdir(dst)
        else:
            touch(dst)
        bind_ro(src, dst)

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
        touch(os.path.join(dev, "termination-log"))
        mount("--bind", spec["termination"], os.path.join(dev, "termination-log"))

    proc = os.path.join(mnt, "proc")
    os.mkdir(proc)
    mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", proc)

    for target, src in spec.get("rw", {}).items():
        dst = os.path.join(mnt, target.lstrip("/"))
        os.makedirs(dst)
        mount("--bind", src, dst)

    mount("-o", "remount,ro", mnt)

    os.chroot(mnt)
    os.chdir("/")
    os.setgroups([])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    argv = spec["argv"]
    os.execve(argv[0], argv, spec["env"])


if __name__ == "__main__":
    main()
