"""The aarch64 static build works for real: run under qemu-user (see
conftest.py for why through wrappers), the aarch64 sauve with the aarch64
pg_dump/pg_restore/pg_dumpall backs up PostgreSQL 15 and 18 to the RADOS
Gateway and restores them, backs up Redis and a directory tree and restores
them; what it wrote is read by independent x86-64 clients (boto3, the host's
pg_restore, redis DEBUG DIGEST, an os.lstat walk)."""

import errno
import json
import os
import subprocess

import pytest

from pgdata import assert_same_state, db_state
from pgserver import PG_BINDIR
from redisserver import fill_dataset, restore_online
from sauvecli import Sauve
from test_files import assert_same_tree, make_tree

EM_AARCH64 = 183


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    assert head[:4] == b"\x7fELF", path
    assert head[4] == 2, f"{path}: not a 64-bit ELF"
    return int.from_bytes(head[18:20], "little")


def test_the_executables_are_aarch64_and_this_kernel_cannot_run_them(arm64):
    files = [arm64.sauve] + [arm64.real_tool(m, t) for m in arm64.majors for t in
                             ("pg_dump", "pg_restore", "pg_dumpall", "psql")]
    assert {"15", "18"} <= set(arm64.majors), arm64.majors
    for f in files:
        assert elf_machine(f) == EM_AARCH64, f
    # Without binfmt the kernel refuses them: the reason for the wrappers,
    # and the proof that what passes below ran under qemu, not natively.
    with pytest.raises(OSError) as e:
        subprocess.run([arm64.sauve, "version"], capture_output=True)
    assert e.value.errno == errno.ENOEXEC


def test_version_finds_the_aarch64_tools_through_the_wrappers(arm64, workdir):
    r = Sauve(workdir, {"SAUVE_PG_BINDIR": arm64.bindir}).run("version", "--json", check_log=False)
    assert r.code == 0, r.describe()
    v = json.loads(r.stdout)
    tools = {str(t["major"]): t for t in v["postgresql_tools"]}
    assert sorted(tools, key=int) == arm64.majors, v
    for m, t in tools.items():
        # each wrapper ran the aarch64 pg_dump --version under qemu
        assert f"pg_dump (PostgreSQL) {m}." in json.dumps(t), t


def pg_round_trip(arm64, server, dbs, template, bucket, workdir, major):
    source = dbs.clone(template, f"arm{major}")
    s = Sauve(workdir, {**server.tcp_env(), **bucket.env, "SAUVE_PG_DATABASES": source,
                        "SAUVE_PG_BINDIR": arm64.bindir})
    r = s.run("backup")
    assert r.code == 0, r.describe()
    # the server's own major, from the wrapper directory (the aarch64 tools)
    assert r.any_line(f"pg_dump from {arm64.wrappers}/pg/{major}/bin"), r.describe()
    assert r.any_line("error") is None, r.describe()
    keys = bucket.keys()
    (mkey,) = [k for k in keys if k.endswith("/manifest.json")]
    manifest = json.loads(bucket.get(mkey))
    (dump,) = [a for a in manifest["artifacts"] if a["key"].endswith(f"/{source}.dump.zst")]
    assert dump["tool_version"].startswith(f"pg_dump (PostgreSQL) {major}."), manifest
    assert any(a["key"].endswith("globals.sql.zst") for a in manifest["artifacts"]), manifest
    assert all(not a.get("error") for a in manifest["artifacts"]), manifest
    # An independent reader: the host's x86-64 pg_restore lists the dump the
    # aarch64 pg_dump wrote and the aarch64 sauve compressed and uploaded.
    (dkey,) = [k for k in keys if k.endswith(f"/{source}.dump.zst")]
    raw = subprocess.run(["zstd", "-dc"], input=bucket.get(dkey), capture_output=True, check=True).stdout
    host_restore = os.path.join(server.bindir if major == 18 else PG_BINDIR, "pg_restore")
    listing = subprocess.run([host_restore, "--list"], input=raw, capture_output=True, check=True).stdout.decode()
    assert "TABLE DATA public" in listing, listing[:2000]
    # and the aarch64 pg_restore puts it back
    new = dbs.expect(dbs.name("restored"))
    r = s.run("restore", f"postgres:{source}", "--into", new, "--yes")
    assert r.code == 0, r.describe()
    assert_same_state(db_state(server, source), db_state(server, new), f"restore into {new}")


def test_postgresql_15_to_s3_and_back(arm64, pg, dbs, small_template, bucket, workdir):
    pg_round_trip(arm64, pg, dbs, small_template, bucket, workdir, 15)


def test_postgresql_18_to_s3_and_back(arm64, pg18, dbs18, small_template18, bucket, workdir):
    pg_round_trip(arm64, pg18, dbs18, small_template18, bucket, workdir, 18)


def test_redis_to_s3_and_back_online(arm64, servers, bucket, workdir):
    src = servers()
    fill_dataset(src)
    s = Sauve(workdir, bucket.env)
    r = s.run("backup", env={"SAUVE_REDIS_URL": src.url(), "SAUVE_REDIS_PASSWORD": src.password,
                             "SAUVE_REDIS_NAME": "cache"})
    assert r.code == 0, r.describe()
    assert [k for k in bucket.keys() if "redis" in k and k.endswith(".zst")], bucket.keys()
    dst = servers(password="target-pass-arm64")
    r = restore_online(s, dst)
    assert r.code == 0, r.describe()
    assert dst.digest() == src.digest()
    assert dst.key_counts() == src.key_counts()


def test_directory_tree_to_s3_and_back(arm64, bucket, workdir):
    tree = os.path.join(workdir, "tree")
    outside = os.path.join(workdir, "outside")
    os.mkdir(outside)
    make_tree(tree, outside)
    s = Sauve(workdir, {**bucket.env, "SAUVE_FILES": f"uploads={tree}"})
    r = s.run("backup")
    assert r.code == 0, r.describe()
    assert [k for k in bucket.keys() if k.endswith("files/uploads.tar.zst")], bucket.keys()
    target = os.path.join(workdir, "restored")
    r = s.run("restore", "files:uploads", "--to", target, "--yes")
    assert r.code == 0, r.describe()
    assert_same_tree(tree, target)
