"""Runs `buildah run` for one container of the image, with the read-only root
and the /dev a Kubernetes container gets (see imagerun.py). Started by
imagerun.py as

    unshare --mount --pid --fork --mount-proc --kill-child --propagation private -- python3 runjail.py SPEC

so that every mount below lives in a private mount namespace that vanishes
with it, and nothing started survives it. SPEC is a JSON file:

    buildah           the buildah command with its store options
    container, mnt    the container and where its file system is mounted
    dev               an empty directory, made the container's /dev
    termination, termination_path   host file bound there (optional)
    read_only_root    remount the container's file system read-only
    user, hostname, cap_drop_all, volumes [[target, source, read_only]], env, argv
"""

import json
import os
import subprocess
import sys

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def mount(*args):
    subprocess.run(["/usr/bin/mount", *args], check=True)


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    dev, mnt = spec["dev"], spec["mnt"]

    # The kubelet's /dev, in place of the host's (which buildah binds into
    # the container): buildah itself needs only these devices too.
    mount("-t", "tmpfs", "-o", "mode=0755,size=64k,nosuid", "sauve-dev", dev)
    for d in DEVICES:
        open(os.path.join(dev, d), "a").close()
        mount("--bind", "/dev/" + d, os.path.join(dev, d))
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, name))
    os.mkdir(os.path.join(dev, "shm"))
    mount("-t", "tmpfs", "-o", "mode=1777,size=1m,nosuid,nodev", "sauve-shm", os.path.join(dev, "shm"))
    if spec.get("termination"):
        rel = os.path.relpath(spec["termination_path"], "/dev")
        if rel.startswith("..") or "/" in rel:
            raise SystemExit(f"runjail: termination log {spec['termination_path']} is not a file of /dev")
        open(os.path.join(dev, rel), "a").close()
        mount("--bind", spec["termination"], os.path.join(dev, rel))
    mount("--rbind", dev, "/dev")

    if spec["read_only_root"]:
        # buildah writes and removes /run/.containerenv at every run.
        mount("-t", "tmpfs", "-o", "mode=0755,size=64k,nosuid,nodev", "sauve-run", os.path.join(mnt, "run"))
        mount("-o", "remount,bind,ro", mnt)

    argv = spec["buildah"] + ["run", "--isolation", "chroot", "--user", spec["user"],
                              "--hostname", spec["hostname"]]
    if spec["cap_drop_all"]:
        argv += ["--cap-drop", "all"]
    for target, source, read_only in spec["volumes"]:
        argv += ["--volume", f"{source}:{target}:{'ro' if read_only else 'rw'}"]
    for k, v in sorted(spec["env"].items()):
        argv += ["--env", f"{k}={v}"]
    argv += [spec["container"], "--", *spec["argv"]]
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
