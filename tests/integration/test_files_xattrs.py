"""files.xattrs: extended attributes and POSIX ACLs of a tree, set by
setfacl and os.setxattr, read back by getfacl and os.getxattr (independent
of sauve) after a restore by sauve, as root and as another user, and after
an extraction by GNU tar; a file system that keeps no attributes fails the
restore clearly and leaves no target behind."""

import os
import re
import subprocess

import pytest

from sauvecli import Sauve, committed_sets, small_volume
from test_files import assert_same_tree, walk

# bytes that are not text, and one value as large as ext4 keeps in the inode's block
BINARY = bytes(range(256)) * 4


def xattrs_of(root):
    """{relpath: {name: value}} of every file and directory under root
    (symbolic links carry none that sauve stores)."""
    out = {}
    b = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(b):
        for n in [b"."] + dirnames + filenames if dirpath == b else dirnames + filenames:
            p = os.path.normpath(os.path.join(dirpath, n))
            if os.path.islink(p):
                continue
            out[os.path.relpath(p, b)] = {a: os.getxattr(p, a, follow_symlinks=False)
                                          for a in sorted(os.listxattr(p, follow_symlinks=False))}
    return out


def getfacl(root):
    """The ACLs of the tree as getfacl prints them, numeric, paths relative:
    one block per entry, sorted (getfacl walks in the directory's order,
    which differs between file systems)."""
    out = subprocess.run(["getfacl", "-R", "-n", "-p", "."], cwd=root, check=True, capture_output=True,
                         text=True).stdout
    return "\n\n".join(sorted(b.strip() for b in out.split("\n\n") if b.strip()))


def make_tree(root):
    os.makedirs(os.path.join(root, "shared/inner"))
    files = {"plain": b"p", "tagged": b"t", "acl": b"a", "shared/report": b"r", "secret": b"s"}
    for rel, data in files.items():
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
    os.symlink("plain", os.path.join(root, "link"))
    os.setxattr(os.path.join(root, "tagged"), "user.checksum", b"sha256:abc")
    os.setxattr(os.path.join(root, "tagged"), "user.binary", BINARY)
    os.setxattr(os.path.join(root, "tagged"), "user.empty", b"")
    os.setxattr(os.path.join(root, "shared"), "user.dir-note", b"on a directory")
    os.setxattr(root, "user.top", b"the tree's top")
    # only root may set a label: restored only as root
    os.setxattr(os.path.join(root, "secret"), "security.selinux", b"system_u:object_r:httpd_sys_content_t:s0")
    # an access ACL naming a user and a group, a default ACL that new files
    # under shared/ inherit, and a read-only file the ACL gives more
    subprocess.run(["setfacl", "-m", "u:1234:rw,g:5678:r", os.path.join(root, "acl")], check=True)
    subprocess.run(["setfacl", "-d", "-m", "u:1234:rwx,g::r-x,o::-", os.path.join(root, "shared")], check=True)
    with open(os.path.join(root, "shared/inner/late"), "wb") as f:
        f.write(b"inherits the default ACL of shared/ through inner/")
    os.chmod(os.path.join(root, "tagged"), 0o444)
    os.chmod(os.path.join(root, "shared/report"), 0o400)


@pytest.fixture
def tree(workdir):
    t = os.path.join(workdir, "tree")
    os.makedirs(t)
    make_tree(t)
    return t


def test_attributes_and_acls_round_trip_through_sauve_and_gnu_tar(workdir, storage, tree):
    source_attrs, source_acls = xattrs_of(tree), getfacl(tree)
    assert "default:user:1234:rwx" in source_acls and "user:1234:rw-" in source_acls
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}",
                        "SAUVE_FILES_XATTRS": "true"})
    r = s.run("backup")
    assert r.code == 0, r.stderr
    (set_dir, m), = committed_sets(storage)
    assert "warnings" not in m["artifacts"][0]

    target = os.path.join(workdir, "restored")
    r = s.run("restore", "files:up", "--to", target, "--yes")
    assert r.code == 0, r.stderr
    assert_same_tree(tree, target)
    assert xattrs_of(target) == source_attrs
    assert getfacl(target) == source_acls

    # GNU tar reads the pax records (SCHILY.xattr) without sauve
    gnu = os.path.join(workdir, "gnu")
    os.mkdir(gnu)
    subprocess.run(f"zstd -dc {set_dir}/files/up.tar.zst | tar -x --numeric-owner --xattrs "
                   f"--xattrs-include='*' -C {gnu}", shell=True, check=True)
    assert xattrs_of(gnu) == source_attrs
    assert getfacl(gnu) == source_acls

    r = s.run("verify", json_stdout=True)
    assert r.code == 0, r.describe()


def test_without_the_setting_no_attribute_is_stored(workdir, storage, tree):
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}"})
    assert s.run("backup").code == 0
    (set_dir, _), = committed_sets(storage)
    listing = subprocess.run(f"zstd -dc {set_dir}/files/up.tar.zst | strings", shell=True, check=True,
                             capture_output=True, text=True).stdout
    assert "SCHILY.xattr" not in listing and "user.checksum" not in listing
    target = os.path.join(workdir, "restored")
    assert s.run("restore", "files:up", "--to", target, "--yes").code == 0
    assert all(attrs == {} for attrs in xattrs_of(target).values()), xattrs_of(target)


def test_another_user_restores_user_attributes_and_acls_and_is_told_of_the_rest(workdir, storage, tree,
                                                                             monkeypatch):
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}",
                        "SAUVE_FILES_XATTRS": "true"})
    assert s.run("backup").code == 0
    wrapper = os.path.join(workdir, "sauve-as-nobody")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups "
                f"{os.path.abspath(os.environ['SAUVE_BIN'])} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    parent = os.path.join(workdir, "nobodys")
    os.mkdir(parent)
    os.chown(parent, 65534, 65534)
    for d, _, files in os.walk(storage):
        for p in [d] + [os.path.join(d, n) for n in files]:
            os.chown(p, 65534, 65534)
    os.chown(s.home, 65534, 65534)
    os.chown(workdir, 65534, 65534)
    target = os.path.join(parent, "restored")
    monkeypatch.setenv("SAUVE_BIN", wrapper)
    r = s.run("restore", "files:up", "--to", target, "--yes")
    assert r.code == 0, r.stderr
    labels = sum(a.startswith("security.") for attrs in xattrs_of(tree).values() for a in attrs)
    assert f"{labels} security labels (security.selinux) were not restored: only root may set them" \
        in r.stderr, r.stderr
    want = {rel: {a: v for a, v in attrs.items() if not a.startswith("security.")}
            for rel, attrs in xattrs_of(tree).items()}
    assert xattrs_of(target) == want
    assert getfacl(target).replace("# owner: 65534\n# group: 65534\n", "") == \
        getfacl(tree).replace("# owner: 0\n# group: 0\n", "")


def test_a_file_system_without_attributes_fails_the_restore_and_leaves_nothing(workdir, storage, tree):
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}",
                        "SAUVE_FILES_XATTRS": "true"})
    assert s.run("backup").code == 0
    mnt = os.path.join(workdir, "ramfs")
    os.mkdir(mnt)
    p = subprocess.run(["mount", "-t", "ramfs", "sauve-test", mnt], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a ramfs here: {p.stderr.strip()}")
    try:
        r = s.run("restore", "files:up", "--to", os.path.join(mnt, "target"), "--yes")
        assert r.code == 1, r.stderr
        assert re.search(r"cannot set the extended attribute [a-z_.]+ of \S+: (Operation not supported|Not supported)", r.stderr), \
            r.stderr
        assert "keeps no extended attributes" in r.stderr
        # the target failed, not the set: the message says so
        assert "is unusable" not in r.stderr
        assert f"files:up: restoring into {mnt}/target failed: cannot set the extended attribute" in r.stderr
        assert os.listdir(mnt) == []
        # a drill whose scratch directory is there fails on its own side (1), not the set's (4)
        r = s.run("drill", "--json", env={"SAUVE_DRILL_DIR": mnt}, json_stdout=True)
        assert r.code == 1, r.describe()
        assert os.listdir(mnt) == []
    finally:
        subprocess.run(["umount", mnt], check=True)


def test_a_mount_point_gets_the_tops_attributes_too(workdir, storage, tree):
    """A volume's mount point cannot be renamed: the entries are moved into
    it, and its own attributes (the top's ACL) set on it."""
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}",
                        "SAUVE_FILES_XATTRS": "true"})
    assert s.run("backup").code == 0
    with small_volume(os.path.join(workdir, "volume"), 20 << 20) as mnt:
        try:
            os.setxattr(mnt, "user.probe", b"1")
            os.removexattr(mnt, "user.probe")
        except OSError as e:
            pytest.skip(f"this kernel's tmpfs keeps no user. attributes (Linux 6.6 and later do): {e}")
        r = s.run("restore", "files:up", "--to", mnt, "--yes")
        assert r.code == 0, r.stderr
        assert xattrs_of(mnt) == xattrs_of(tree)
        assert getfacl(mnt) == getfacl(tree)


def test_attributes_a_restore_would_refuse_are_left_out_with_a_warning(workdir, storage):
    """What a restore refuses (privileges, kernel controls) is not stored:
    the backup warns, file by file, and the set restores; a setuid bit
    likewise."""
    tree = os.path.join(workdir, "tree")
    os.makedirs(tree)
    for n in ("steer", "smack", "tool"):
        with open(os.path.join(tree, n), "wb") as f:
            f.write(n.encode())
    os.setxattr(os.path.join(tree, "steer"), "trusted.overlay.opaque", b"y")
    os.setxattr(os.path.join(tree, "steer"), "user.kept", b"k")
    os.setxattr(os.path.join(tree, "smack"), "security.SMACK64EXEC", b"_")
    os.chmod(os.path.join(tree, "tool"), 0o4755)
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}",
                        "SAUVE_FILES_XATTRS": "true"})
    r = s.run("backup")
    assert r.code == 0, r.describe()
    (_, m), = committed_sets(storage)
    assert (m["artifacts"][0]["status"], sorted(m["artifacts"][0]["warnings"])) == ("ok", [
        "smack has the extended attribute security.SMACK64EXEC, which is not one sauve restores (user., POSIX "
        "ACLs, security.selinux): archived without it",
        "steer has the extended attribute trusted.overlay.opaque, which is not one sauve restores (user., POSIX "
        "ACLs, security.selinux): archived without it",
        "tool has the setuid bit, which a restore does not set: archived without it"])
    assert s.run("verify", json_stdout=True).code == 0
    target = os.path.join(workdir, "restored")
    r = s.run("restore", "files:up", "--to", target, "--yes")
    assert r.code == 0, r.describe()
    assert xattrs_of(target)[b"steer"] == {"user.kept": b"k"}
    assert xattrs_of(target)[b"smack"] == {}
    assert os.stat(os.path.join(target, "tool")).st_mode & 0o7777 == 0o755


def test_a_parents_default_acl_is_not_inherited_by_the_restored_tree(workdir, storage, tree):
    """The tree comes back as the archive has it, not as the directory it
    is restored into would shape it."""
    s = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_FILES": f"up={tree}",
                        "SAUVE_FILES_XATTRS": "true"})
    assert s.run("backup").code == 0
    parent = os.path.join(workdir, "shared-parent")
    os.mkdir(parent)
    subprocess.run(["setfacl", "-d", "-m", "u:4321:rwx", parent], check=True)
    target = os.path.join(parent, "restored")
    r = s.run("restore", "files:up", "--to", target, "--yes")
    assert r.code == 0, r.describe()
    assert "4321" not in getfacl(target)
    assert getfacl(target) == getfacl(tree)
    assert xattrs_of(target) == xattrs_of(tree)
    assert walk(target)[0].keys() == walk(tree)[0].keys()
