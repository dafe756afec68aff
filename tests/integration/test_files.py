"""Directory trees (SAUVE_FILES): what sauve archives is compared with the
source by an independent walk (os.lstat, sha256, readlink), after a restore
by sauve and after an extraction by GNU tar (zstd -dc | tar -x) that never
met sauve; hostile archives written by Python's tarfile (an independent
writer) are forged into a set and must extract nothing outside the target."""

import hashlib
import io
import json
import os
import re
import signal
import stat
import subprocess
import tarfile
import time

import pytest

from sauvecli import Sauve, committed_sets, forge_artifact, small_volume, wait_for

NS = 1_000_000_000


def make_tree(root, outside, large=0):
    """A tree with what archives get wrong: long and non-UTF-8 names, hard
    links, a sparse file, links out of the tree, odd modes and owners,
    nanosecond times. large: size of a sparse file with data at both ends."""
    os.makedirs(root)
    b = os.fsencode(root)

    def write(rel, data, mode=0o644):
        p = os.path.join(b, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    write(b"plain.txt", b"hello\n")
    write(b"caf\xc3\xa9.txt", "é".encode() * 100)             # UTF-8
    write(b"latin1-\xe9t\xe9.bin", os.urandom(3000))           # not UTF-8
    write(b"x" * 255, b"longest name")                         # NAME_MAX
    deep = b"/".join([b"d" * 200] * 6)                        # path over 1200 bytes
    write(deep + b"/f", b"deep")
    write(b"private/secret", b"s", mode=0o600)
    os.chmod(os.path.join(b, b"private"), 0o700)
    write(b"bin/tool", b"#!/bin/sh\n", mode=0o755)
    os.chmod(os.path.join(b, b"bin"), 0o2775)                   # setgid directory (fsGroup volumes)
    p = write(b"owned", b"o")
    os.chown(p, 1234, 5678)                                    # ids with no name
    first = write(b"links/first", b"linked content")
    os.link(first, os.path.join(b, b"links/second"))
    os.link(first, os.path.join(b, b"z-third"))
    os.symlink(os.path.join(outside, "victim"), os.path.join(b, b"links/abs-out"))
    os.symlink(b"../../outside", os.path.join(b, b"links/rel-out"))
    os.symlink(b"nowhere", os.path.join(b, b"links/dangling"))
    with open(os.path.join(b, b"sparse"), "wb") as f:
        f.write(b"start")
        f.seek(50 << 20)
        f.write(b"end")
    if large:
        with open(os.path.join(b, b"large"), "wb") as f:
            f.write(os.urandom(1 << 20))
            f.seek(large - (1 << 20))
            f.write(os.urandom(1 << 20))
    os.mkdir(os.path.join(b, b"empty-dir"))
    # nanosecond mtimes, set last (creating entries changes a directory's)
    t = 1_700_000_000 * NS + 123_456_789
    for dirpath, dirnames, filenames in os.walk(b, topdown=False):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), ns=(t, t), follow_symlinks=False)
            t += 1_000_001
    os.utime(b, ns=(t, t))


def walk(root):
    """Every entry under root by lstat: {relpath bytes: facts}; hard links
    are reported as the sorted group of names sharing an inode."""
    out, inodes = {}, {}
    b = os.fsencode(root)
    st = os.lstat(b)
    out[b"."] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns, st.st_uid, st.st_gid)
    for dirpath, dirnames, filenames in os.walk(b):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, b)
            st = os.lstat(p)
            common = (stat.S_IMODE(st.st_mode), st.st_mtime_ns, st.st_uid, st.st_gid)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p)) + common[2:]   # a link's mode is not stored
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",) + common
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", st.st_size, sha256_of(p)) + common
                inodes.setdefault(st.st_ino, []).append(rel)
            else:
                out[rel] = ("other", stat.S_IFMT(st.st_mode))
    groups = sorted(sorted(g) for g in inodes.values() if len(g) > 1)
    return out, groups


def sha256_of(path):
    # into one buffer: a new one per read costs a page fault per 4 KiB,
    # which made hashing 1 GiB take 30 s on a loaded VM
    h, buf = hashlib.sha256(), bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def assert_same_tree(a, b):
    wa, ga = walk(a)
    wb, gb = walk(b)
    assert sorted(wa) == sorted(wb), set(wa) ^ set(wb)
    for k in wa:
        assert wa[k] == wb[k], (k, wa[k], wb[k])
    assert ga == gb


@pytest.fixture
def outside(workdir):
    """A directory beside the tree that nothing may touch, with a victim file."""
    d = os.path.join(workdir, "outside")
    os.mkdir(d)
    with open(os.path.join(d, "victim"), "w") as f:
        f.write("untouched")
    return d


def outside_state(d):
    """Names and contents beside the tree, and the owner, mode and time of
    the directory and each entry: a forged archive must change none."""
    def meta(path):
        st = os.lstat(path)
        return (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns)
    return [(".", meta(d))] + sorted(
        (p, open(os.path.join(d, p), "rb").read() if os.path.isfile(os.path.join(d, p)) else None,
         meta(os.path.join(d, p))) for p in os.listdir(d))


def manifest_of(sauve_or_bucket_sets):
    assert len(sauve_or_bucket_sets) == 1, sauve_or_bucket_sets
    return sauve_or_bucket_sets[0]


def test_tree_round_trip_through_s3_restored_by_sauve_and_by_gnu_tar(workdir, bucket, outside):
    tree = os.path.join(workdir, "tree")
    make_tree(tree, outside, large=1 << 30)
    s = Sauve(workdir, {**bucket.env, "SAUVE_FILES": f"uploads={tree}"})
    t0 = time.monotonic()
    r = s.run("backup")
    backup_s = time.monotonic() - t0
    assert r.code == 0, r.stderr
    key = [k for k in bucket.keys() if k.endswith("files/uploads.tar.zst")]
    assert len(key) == 1, bucket.keys()
    manifest = json.loads(bucket.get(key[0].rsplit("/", 2)[0] + "/manifest.json"))
    a = manifest["artifacts"][0]
    assert (a["kind"], a["name"], a["format"], a["status"]) == ("files", "uploads", "tar-pax", "ok")
    assert a["items"] == len(walk(tree)[0])
    assert "warnings" not in a
    # holes are stored as a map, not as zeros: 1 GiB of sparse file is 2 MiB of data
    assert a["bytes_in"] < (4 << 20)

    # GNU tar, never having met sauve, reads the object as stored
    stored = os.path.join(workdir, "uploads.tar.zst")
    with open(stored, "wb") as f:
        f.write(bucket.get(key[0]))
    gnu = os.path.join(workdir, "gnu")
    os.mkdir(gnu)
    subprocess.run(f"zstd -dc {stored} | tar -x --numeric-owner -C {gnu}", shell=True, check=True,
                   stderr=subprocess.DEVNULL)
    assert_same_tree(tree, gnu)
    # a UTF-8 name is stored as text; only a name that is not UTF-8 as its
    # bytes (hdrcharset=BINARY, which GNU tar warns about)
    data = subprocess.run(["zstd", "-dc", stored], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8", errors="surrogateescape") as t:
        charset = {os.fsencode(m.name): m.pax_headers.get("hdrcharset") for m in t.getmembers()}
    assert charset[b"caf\xc3\xa9.txt"] is None and charset[b"x" * 255] is None, charset
    assert charset[b"latin1-\xe9t\xe9.bin"] == "BINARY", charset

    r = s.run("verify", json_stdout=True)
    assert r.code == 0, r.stderr
    assert "tar archive read whole" in r.stdout + r.stderr

    target = os.path.join(workdir, "restored")
    t0 = time.monotonic()
    r = s.run("restore", "files:uploads", "--to", target, "--yes")
    restore_s = time.monotonic() - t0
    assert r.code == 0, r.stderr
    assert_same_tree(tree, target)
    assert [e[:2] for e in outside_state(outside)][1:] == [("victim", b"untouched")]
    assert not [n for n in os.listdir(workdir) if "sauve-restore" in n]
    print(f"1 GiB sparse tree: backup {backup_s:.1f} s, restore {restore_s:.1f} s")


def test_a_non_empty_target_is_refused_and_replaced_with_clean_after_a_safety_backup(workdir, storage,
                                                                                      outside):
    tree = os.path.join(workdir, "tree")
    make_tree(tree, outside)
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"uploads={tree}"})
    assert s.run("backup").code == 0
    target = os.path.join(workdir, "target")
    os.mkdir(target)
    with open(os.path.join(target, "old"), "w") as f:
        f.write("old content")
    r = s.run("restore", "files:uploads", "--to", target, "--yes")
    assert r.code == 1
    assert f"directory {target} is not empty, nothing was changed" in r.stderr
    assert os.listdir(target) == ["old"]

    r = s.run("restore", "files:uploads", "--to", target, "--clean", "--confirm", target)
    assert r.code == 0, r.stderr
    assert_same_tree(tree, target)
    sets = committed_sets(storage)
    safety = [m for _, m in sets if m["reason"] == "safety"]
    assert len(safety) == 1
    # the safety set holds the replaced tree: restore it elsewhere to see
    back = os.path.join(workdir, "back")
    r = s.run("restore", "files:uploads", "--to", back, "--set", safety[0]["id"], "--yes")
    assert r.code == 0, r.stderr
    assert open(os.path.join(back, "old")).read() == "old content"
    assert not [n for n in os.listdir(workdir) if "sauve-restore" in n]


def test_excludes_exclude_file_and_cache_directories(workdir, storage):
    tree = os.path.join(workdir, "tree")
    for p in ["keep.txt", "a.tmp", "sub/b.tmp", "thumbs/t.jpg", "sub/thumbs/kept.jpg", "cache/CACHEDIR.TAG",
              "cache/blob", "ignored/x", "sub/ignored-too"]:
        os.makedirs(os.path.dirname(os.path.join(tree, p)), exist_ok=True)
        with open(os.path.join(tree, p), "w") as f:
            f.write("Signature: 8a477f597d28d172789f06886806bc55\n" if p.endswith("CACHEDIR.TAG") else p)
    with open(os.path.join(tree, ".sauveignore"), "w") as f:
        f.write("# ignored by the file at the top\n/ignored/\nignored-too\n")
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}",
                        "SAUVE_FILES_EXCLUDE": "*.tmp,up:/thumbs/,other:keep.txt",
                        "SAUVE_FILES_EXCLUDE_CACHES": "true"})
    assert s.run("backup").code == 0
    out = os.path.join(workdir, "out")
    r = s.run("restore", "files:up", "--to", out, "--yes")
    assert r.code == 0, r.stderr
    got = sorted(os.path.relpath(os.path.join(d, n), out) for d, dirs, files in os.walk(out) for n in files)
    assert got == [".sauveignore", "cache/CACHEDIR.TAG", "keep.txt", "sub/thumbs/kept.jpg"]


def test_bad_trees_are_configuration_errors(workdir, storage):
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage})
    r = s.run("backup", env={"SAUVE_FILES": "uploads=relative/path"})
    assert r.code == 78
    assert "SAUVE_FILES" in r.stderr and "is not absolute" in r.stderr
    r = s.run("backup", env={"SAUVE_FILES": f"up={workdir}/missing"})
    assert r.code == 78
    assert f"files:up: {workdir}/missing: No such file or directory" in r.stderr
    assert committed_sets(storage) == []
    r = s.run("check", env={"SAUVE_FILES": f"up={workdir}/missing,here={storage}"}, json_stdout=True)
    assert r.code == 78
    assert f"files:up: {workdir}/missing: No such file or directory" in r.stdout
    assert "files:here" in r.stdout


def fds_of(pid):
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def test_a_file_growing_and_one_deleted_during_the_backup_are_warnings(workdir, storage):
    """sauve is stopped (SIGSTOP) while it holds the large file open: the
    test then grows it and deletes a file listed but not yet read, and lets
    sauve go on. No timing decides the outcome: the stop makes the change
    happen between sauve's fstat and the end of its reading."""
    tree = os.path.join(workdir, "tree")
    os.makedirs(tree)
    grow = os.path.join(tree, "grow")
    size = 4 << 20
    with open(grow, "wb") as f:
        f.write(os.urandom(size))       # no hole to skip, and slow to compress at level 19
    gone = os.path.join(tree, "zz-gone")
    with open(gone, "w") as f:
        f.write("soon gone")
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"live={tree}",
                        "SAUVE_LOG_FORMAT": "json", "SAUVE_ZSTD_LEVEL": "19"})
    p = s.start("backup")
    stopped = False
    try:
        wait_for(lambda: p.poll() is not None or grow in fds_of(p.pid), 60, "sauve to open the large file",
                 interval=0.001)
        assert p.poll() is None, "sauve ended before the test saw it read the large file"
        os.kill(p.pid, signal.SIGSTOP)
        stopped = True
        assert grow in fds_of(p.pid), "sauve read the whole large file before it could be stopped"
        with open(grow, "ab") as f:
            f.write(b"appended while read")
        os.unlink(gone)
    finally:
        if stopped:
            os.kill(p.pid, signal.SIGCONT)
    r = s.finish(p, 300)
    assert r.code == 0, r.stderr
    (_, m), = committed_sets(storage)
    a = m["artifacts"][0]
    assert a["status"] == "ok"
    assert a["warnings"] == ["grow changed while it was read: archived as read, possibly inconsistent",
                             "zz-gone vanished before it was read: left out"]
    assert "files:live: grow changed while it was read" in r.stderr
    # exactly the size fstat gave before reading was archived
    set_dir = os.path.join(storage, "default", m["id"])
    listing = subprocess.run(f"zstd -dc {set_dir}/files/live.tar.zst | tar -tv", shell=True, check=True,
                             capture_output=True, text=True).stdout
    assert [ln.split()[2] for ln in listing.splitlines() if ln.endswith(" grow")] == [str(size)]


def hostile(members):
    """A tar written by Python's tarfile: members are (TarInfo, data or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def info(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.linkname = linkname
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    return (ti, data if kind == tarfile.REGTYPE else None)


def owned_dir(name, mode=0o2777, path=None):
    """A directory entry that claims an owner and mode: what a forger hopes
    lands on something outside. path: its pax name, e.g. without the "/"
    tarfile adds."""
    ti, _ = info(name, tarfile.DIRTYPE, mode=mode)
    ti.uid, ti.gid, ti.mtime = 4242, 4343, 12345
    if path:
        ti.pax_headers = {"path": path}
    return (ti, None)


def with_xattr(name, attr, value):
    """A file whose pax header gives it an extended attribute (as GNU tar
    and libarchive write them)."""
    ti, data = info(name, data=b"#!/bin/sh\n", mode=0o755)
    ti.pax_headers = {f"SCHILY.xattr.{attr}": value}
    return (ti, data)


def attacks(outside):
    twice = "twice, a directory and then something else"
    return {
        "absolute": ([info(os.path.join(outside, "abs"), data=b"pwned")], "absolute name"),
        "dotdot": ([info("ok/../../outside/dotdot", data=b"pwned")], "'..'"),
        "through-symlink": ([info("ln", tarfile.SYMTYPE, linkname=outside),
                             info("ln/through", data=b"pwned")], "through ln, a symbolic link"),
        "hardlink-out": ([info("hl", tarfile.LNKTYPE, linkname=os.path.join(outside, "victim")),
                          info("hl", data=b"pwned")], "absolute name"),
        "hardlink-dotdot": ([info("hl", tarfile.LNKTYPE, linkname="../outside/victim")], "'..'"),
        "hardlink-via-symlink": ([info("ln", tarfile.SYMTYPE, linkname=outside),
                                  info("hl", tarfile.LNKTYPE, linkname="ln/victim"),
                                  info("hl", data=b"pwned")], "through ln, a symbolic link"),
        "device": ([info("null", tarfile.CHRTYPE)], "a device node"),
        "fifo": ([info("fifo", tarfile.FIFOTYPE)], "a FIFO"),
        "setuid": ([info("suid", data=b"#!/bin/sh\n", mode=0o4755)], "setuid bit"),
        "setgid-file": ([info("sgid", data=b"x", mode=0o2755)], "setgid bit"),
        # file capabilities are setuid by another name
        "xattr-capability": ([with_xattr("cap", "security.capability", "\x01\x00\x00\x02 ")],
                             "extended attribute security.capability, which grants file capabilities"),
        "xattr-other-namespace": ([with_xattr("odd", "system.sockprotoname", "x")],
                                  "which is not one sauve restores"),
        "xattr-smack-exec": ([with_xattr("odd", "security.SMACK64EXEC", "_")], "which is not one sauve restores"),
        "xattr-name-too-long": ([with_xattr("odd", "user." + "n" * 300, "v")],
                                "which has a name longer than Linux allows"),
        "xattr-bad-acl": ([with_xattr("odd", "system.posix_acl_access", "\x02\x00\x00\x00\x01")],
                          "which is not a POSIX ACL the kernel takes"),
        # a directory's owner and mode are set at the end: never on what took its name
        "dir-then-symlink": ([owned_dir("d"), info("d", tarfile.SYMTYPE, linkname=outside)], twice),
        "dir-without-slash-then-symlink": ([owned_dir("d", path="d"),
                                            info("d", tarfile.SYMTYPE, linkname=outside + "/victim")], twice),
        "dir-dot-then-symlink": ([owned_dir("d/."), info("d", tarfile.SYMTYPE, linkname=outside)], twice),
        "dir-then-file": ([owned_dir("x", mode=0o2755, path="x"), info("x", data=b"#!/bin/sh\n", mode=0o755)],
                          twice),
        "dir-then-hardlink": ([owned_dir("d"), info("d", tarfile.LNKTYPE, linkname="first-ok")], twice),
    }


# refused by their headers alone (files_entry_check), by verify too
HEADER_LEVEL = {"absolute", "dotdot", "hardlink-out", "hardlink-dotdot", "device", "fifo", "setuid", "setgid-file",
                "xattr-capability", "xattr-other-namespace", "xattr-smack-exec", "xattr-name-too-long",
                "xattr-bad-acl"}


@pytest.mark.parametrize("attack", sorted(attacks("/x")))
def test_a_hostile_archive_extracts_nothing_outside_and_fails_clearly(workdir, storage, outside, attack):
    tree = os.path.join(workdir, "tree")
    os.makedirs(tree)
    with open(os.path.join(tree, "f"), "w") as f:
        f.write("f")
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}"})
    assert s.run("backup").code == 0
    (set_dir, m), = committed_sets(storage)
    members, phrase = attacks(outside)[attack]
    before = outside_state(outside)
    data = hostile([info("first-ok", data=b"fine")] + members)
    forged = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    forge_artifact(set_dir, m, m["artifacts"][0], forged, bytes_in=len(data))
    parent = os.path.join(workdir, "restore-parent")
    os.mkdir(parent)
    target = os.path.join(parent, "target")
    r = s.run("restore", "files:up", "--to", target, "--yes")
    assert r.code == 1, r.stderr
    assert phrase in r.stderr, r.stderr
    assert outside_state(outside) == before
    assert [e[:2] for e in before][1:] == [("victim", b"untouched")]
    assert os.listdir(parent) == []          # neither the target nor the temp directory
    # verify refuses, by the headers alone, what any restore refuses: a set
    # that verifies restores; what depends on the order of the entries on
    # disk (a link then a name through it) only the extraction can see
    v = s.run("verify", json_stdout=True)
    if attack in HEADER_LEVEL:
        assert v.code == 4, v.describe()
        assert "a restore would refuse tar entry" in v.summary["msg"] and phrase in v.summary["msg"], v.summary
    else:
        assert v.code == 0, v.describe()


def test_a_name_ending_in_dot_does_not_send_later_entries_elsewhere(workdir, storage):
    """"a/b/." names b in a: the restore keeps the directory of the last
    entry open, and must not take it for the directory of "a/b/x"."""
    tree = os.path.join(workdir, "tree")
    os.makedirs(tree)
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}"})
    assert s.run("backup").code == 0
    (set_dir, m), = committed_sets(storage)
    a, b = owned_dir("a", mode=0o755, path="a"), owned_dir("a/b", mode=0o755, path="a/b")
    dot = owned_dir("a/b/.", mode=0o755, path="a/b/.")
    data = hostile([a, b, dot, info("a/b/x", data=b"in b"), info("a/y", data=b"in a")])
    forged = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    forge_artifact(set_dir, m, m["artifacts"][0], forged, bytes_in=len(data))
    target = os.path.join(workdir, "target")
    r = s.run("restore", "files:up", "--to", target, "--yes")
    assert r.code == 0, r.describe()
    got = sorted(os.path.relpath(os.path.join(d, n), target) for d, _, files in os.walk(target) for n in files)
    assert got == ["a/b/x", "a/y"]


def test_a_damaged_archive_is_named_by_verify_and_restores_nothing(workdir, storage):
    tree = os.path.join(workdir, "tree")
    os.makedirs(tree)
    with open(os.path.join(tree, "f"), "wb") as f:
        f.write(os.urandom(100_000))
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}"})
    assert s.run("backup").code == 0
    (set_dir, m), = committed_sets(storage)
    data = hostile([info("a", data=os.urandom(50_000))])[:20_000]        # cut inside the data
    data = data + b"\x01" * 1000
    forged = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    forge_artifact(set_dir, m, m["artifacts"][0], forged, bytes_in=len(data))
    r = s.run("verify", json_stdout=True)
    assert r.code == 4, r.stderr
    assert "files:up" in r.stdout + r.stderr
    assert "cut short" in r.stdout + r.stderr or "not a readable tar archive" in r.stdout + r.stderr
    target = os.path.join(workdir, "target")
    r = s.run("restore", "files:up", "--to", target, "--yes")
    assert r.code == 1
    assert not os.path.exists(target)
    assert not [n for n in os.listdir(workdir) if "sauve-restore" in n]


def as_nobody(workdir, storage, monkeypatch):
    """sauve run as uid/gid 65534 (root reads everything): a wrapper that
    setpriv's to it, and the test's directories made its own."""
    wrapper = os.path.join(workdir, "sauve-as-nobody")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups "
                f"{os.path.abspath(os.environ['SAUVE_BIN'])} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    monkeypatch.setenv("SAUVE_BIN", wrapper)
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage})
    for d in (workdir, storage, s.home):
        os.chown(d, 65534, 65534)
    return s


def unreadable_tree(workdir):
    tree = os.path.join(workdir, "tree")
    for p, mode in [("ok.txt", 0o644), ("secret-a", 0o600), ("dir-b/secret-b", 0o600), ("dir-b/fine", 0o644),
                    ("locked/inside", 0o644)]:
        os.makedirs(os.path.dirname(os.path.join(tree, p)), exist_ok=True)
        with open(os.path.join(tree, p), "w") as f:
            f.write(p)
        os.chmod(os.path.join(tree, p), mode)
    os.chmod(os.path.join(tree, "locked"), 0o700)
    return tree


def test_unreadable_files_fail_the_tree_naming_each_unless_warned(workdir, storage, monkeypatch):
    tree = unreadable_tree(workdir)
    s = as_nobody(workdir, storage, monkeypatch)
    r = s.run("backup", env={"SAUVE_FILES": f"up={tree}"})
    assert r.code == 1, r.stderr
    assert "files:up: 3 files under" in r.stderr
    for name in ("dir-b/secret-b (Permission denied)", "locked (Permission denied)",
                 "secret-a (Permission denied)"):
        assert name in r.stderr, name
    assert "SAUVE_FILES_UNREADABLE=warn" in r.stderr
    assert committed_sets(storage) == []

    r = s.run("backup", env={"SAUVE_FILES": f"up={tree}", "SAUVE_FILES_UNREADABLE": "warn"})
    assert r.code == 0, r.stderr
    (_, m), = committed_sets(storage)
    assert m["artifacts"][0]["warnings"] == [
        "dir-b/secret-b (Permission denied) could not be read: left out",
        "locked (Permission denied) could not be read: left out",
        "secret-a (Permission denied) could not be read: left out"]
    out = os.path.join(workdir, "out")
    r = s.run("restore", "files:up", "--to", out, "--yes")
    assert r.code == 0, r.stderr
    got = sorted(os.path.relpath(os.path.join(d, n), out) for d, dirs, files in os.walk(out) for n in files)
    assert got == ["dir-b/fine", "ok.txt"]


def test_a_mount_point_is_restored_in_place_by_moving_entries(workdir, storage, outside):
    """A Kubernetes volume is a mount point: it cannot be renamed, so the
    tree is extracted inside it and its entries moved up once verified."""
    tree = os.path.join(workdir, "tree")
    make_tree(tree, outside)
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}"})
    assert s.run("backup").code == 0
    with small_volume(os.path.join(workdir, "volume"), 200 << 20) as mnt:
        with open(os.path.join(mnt, "stale"), "w") as f:
            f.write("stale")
        r = s.run("restore", "files:up", "--to", mnt, "--clean", "--confirm", mnt)
        assert r.code == 0, r.stderr
        assert_same_tree(tree, mnt)
        assert not os.path.exists(os.path.join(mnt, "stale"))


def test_a_mount_point_whose_content_cannot_move_is_left_as_it_was(workdir, storage, monkeypatch):
    """As another user than root, a directory without write permission
    cannot be renamed (its ".." changes): the move of the volume's old
    content aside stops there, and what had moved goes back."""
    tree = os.path.join(workdir, "tree")
    os.makedirs(tree)
    with open(os.path.join(tree, "new"), "w") as f:
        f.write("the backup's")
    s = as_nobody(workdir, storage, monkeypatch)
    env = {"SAUVE_FILES": f"up={tree}"}
    assert s.run("backup", env=env).code == 0
    with small_volume(os.path.join(workdir, "volume"), 20 << 20) as mnt:
        os.chown(mnt, 65534, 65534)
        # entries on both sides of the one that cannot move, whatever
        # order the directory lists them in
        names = [f"before-{i:02}" for i in range(10)] + ["locked"] + [f"after-{i:02}" for i in range(10)]
        for n in names:
            p = os.path.join(mnt, n)
            os.mkdir(p)
            with open(os.path.join(p, "f"), "w") as f:
                f.write(n)
            os.chown(os.path.join(p, "f"), 65534, 65534)
            os.chown(p, 65534, 65534)
        os.chmod(os.path.join(mnt, "locked"), 0o555)
        before = {k: v for k, v in walk(mnt)[0].items() if k != b"."}
        r = s.run("restore", "files:up", "--to", mnt, "--clean", "--confirm", mnt, env=env)
        assert r.code == 1, r.describe()
        assert f"cannot move {mnt}/locked aside: Permission denied; {mnt} was left as it was" in r.stderr, \
            r.stderr
        assert "can be moved by root only" in r.stderr
        assert {k: v for k, v in walk(mnt)[0].items() if k != b"."} == before
        assert sorted(os.listdir(mnt)) == sorted(names)
        os.chmod(os.path.join(mnt, "locked"), 0o755)


def test_a_database_and_a_tree_in_one_set_each_restored(sauve, pg, dbs, small_template, workdir, storage,
                                                         outside):
    """One `sauve backup` of a PostgreSQL database and an upload directory:
    one set, both artifacts, listed; a missing tree beside them makes the
    set partial (exit 2), not lost."""
    db = dbs.clone(small_template)
    tree = os.path.join(workdir, "tree")
    make_tree(tree, outside)
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_FILES": f"uploads={tree}"}
    r = sauve.run("backup", env=env)
    assert r.code == 0, r.stderr
    (set_dir, m), = committed_sets(storage)
    assert sorted((a["kind"], a["name"], a["status"]) for a in m["artifacts"]) == [
        ("files", "uploads", "ok"), ("postgres", db, "ok")]
    r = sauve.run("list", "--json", env=env)
    assert r.code == 0
    assert "files:uploads" in r.stdout or '"files"' in r.stdout
    out = os.path.join(workdir, "out")
    r = sauve.run("restore", "files:uploads", "--to", out, "--yes", env=env)
    assert r.code == 0, r.stderr
    assert_same_tree(tree, out)

    r = sauve.run("backup", env={**env, "SAUVE_FILES": f"uploads={tree},gone={workdir}/not-mounted"})
    assert r.code == 2, r.stderr
    m = committed_sets(storage)[-1][1]
    failed = [a for a in m["artifacts"] if a["status"] == "failed"]
    assert [(a["kind"], a["name"]) for a in failed] == [("files", "gone")]
    assert "not-mounted: No such file or directory" in failed[0]["error"]


def test_a_file_over_8_gib_keeps_its_size(workdir, storage):
    """ustar's size field stops at 8 GiB; pax carries more. The file is
    sparse (its holes are neither read nor stored), with data at both ends."""
    tree = os.path.join(workdir, "tree")
    os.makedirs(tree)
    size = 9 << 30
    head, tail = os.urandom(4096), os.urandom(4096)
    with open(os.path.join(tree, "huge"), "wb") as f:
        f.write(head)
        f.seek(size - len(tail))
        f.write(tail)
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}"})
    assert s.run("backup").code == 0
    (set_dir, _m), = committed_sets(storage)
    listing = subprocess.run(f"zstd -dc {set_dir}/files/up.tar.zst | tar -tv", shell=True, check=True,
                             capture_output=True, text=True).stdout
    assert [ln.split()[2] for ln in listing.splitlines() if ln.endswith(" huge")] == [str(size)]
    out = os.path.join(workdir, "out")
    r = s.run("restore", "files:up", "--to", out, "--yes")
    assert r.code == 0, r.stderr
    p = os.path.join(out, "huge")
    assert os.stat(p).st_size == size
    with open(p, "rb") as f:
        assert f.read(len(head)) == head
        f.seek(size - len(tail))
        assert f.read() == tail
        f.seek(5 << 30)
        assert f.read(1 << 20) == bytes(1 << 20)
    assert os.stat(p).st_blocks * 512 < (1 << 20)      # restored with its holes


def test_a_fifo_in_the_tree_is_left_out_with_a_warning_and_the_set_restores(workdir, storage):
    """Restore creates no FIFO or device node (in a forged archive they are
    an attack); a backup that stored one would make every set unrestorable."""
    tree = os.path.join(workdir, "tree")
    os.makedirs(tree)
    with open(os.path.join(tree, "f"), "w") as f:
        f.write("data")
    os.mkfifo(os.path.join(tree, "pipe"))
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}"})
    r = s.run("backup")
    assert r.code == 0, r.stderr
    (_, m), = committed_sets(storage)
    assert m["artifacts"][0]["warnings"] == ["pipe is a FIFO: left out (it holds no data)"], m
    target = os.path.join(workdir, "restored")
    r = s.run("restore", "files:up", "--to", target, "--yes")
    assert r.code == 0, r.stderr
    assert sorted(os.listdir(target)) == ["f"]


def test_a_tree_larger_than_the_free_space_is_refused_before_anything_changed(workdir, storage):
    """The restore would fill the volume half-way (and stop the application
    sharing it): refused with both figures, before the safety backup."""
    tree = os.path.join(workdir, "tree")
    os.makedirs(tree)
    with open(os.path.join(tree, "big"), "wb") as f:
        f.write(os.urandom(3 << 20))
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}"})
    assert s.run("backup").code == 0
    (_, m), = committed_sets(storage)
    with small_volume(os.path.join(workdir, "volume"), 2 << 20) as vol:
        with open(os.path.join(vol, "keep"), "w") as f:
            f.write("the application's file")
        for args in (["--to", os.path.join(vol, "new"), "--yes"], ["--to", vol, "--clean", "--confirm", vol]):
            r = s.run("restore", "files:up", *args)
            assert r.code == 1, r.describe()
            assert re.search(r"not enough space to restore into \S+: the artifact holds 3\.\d MiB, its file "
                             r"system has [\d.]+ [KM]i?B free; nothing was changed", r.stderr), r.stderr
            assert sorted(os.listdir(vol)) == ["keep"]
        assert open(os.path.join(vol, "keep")).read() == "the application's file"
    # no safety backup was taken: nothing was about to be replaced
    assert [x["id"] for _, x in committed_sets(storage)] == [m["id"]]
