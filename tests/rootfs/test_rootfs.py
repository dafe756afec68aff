"""The image's filesystem (build/rootfs, what `make rootfs` assembles and the
Dockerfile copies into a scratch image) is self-sufficient: run as Kubernetes
runs the container (chroot into a read-only root, uid 65532, no host
libraries, no shell, only the environment the pod sets), sauve backs up a
real PostgreSQL to the RADOS Gateway and to a mounted volume, and restores.

The same tests run the built image (tests/image imports them): the fixture
`runtime` says what runs (here the rootfs in jail.py, there the image under
buildah) and `runtime.root` is a directory holding the image's files."""

import json
import os
import re
import stat

import pytest

from container import REPO, SAUVE, UID, GID
from pgdata import assert_same_state, db_state
from sauvecli import committed_sets

PG_TOOLS = ("pg_dump", "pg_restore", "pg_dumpall", "psql")


def rootfs_files(root):
    out = []
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(dirpath, n), root))
    return sorted(out)


def majors(root):
    return sorted(os.listdir(os.path.join(root, "usr/lib/postgresql")), key=int)


def expected_files(majors):
    """Every path of the image but the zone files: what the image holds."""
    expected = {"etc", "etc/group", "etc/passwd", "etc/ssl", "etc/ssl/certs",
                "etc/ssl/certs/ca-certificates.crt", "tmp", "usr", "usr/local",
                "usr/local/bin", "usr/local/bin/sauve", "usr/local/share", "usr/local/share/sauve",
                "usr/local/share/sauve/sources.json", "usr/lib", "usr/lib/postgresql",
                "usr/share", "usr/share/zoneinfo", "usr/share/doc"}
    for m in majors:
        expected |= {f"usr/lib/postgresql/{m}", f"usr/lib/postgresql/{m}/bin"}
        expected |= {f"usr/lib/postgresql/{m}/bin/{t}" for t in PG_TOOLS}
    return expected


def test_rootfs_holds_exactly_the_image_contents(runtime):
    root = runtime.root
    got = {f for f in rootfs_files(root) if not f.startswith(("usr/share/zoneinfo/", "usr/share/doc/"))}
    assert got == expected_files(majors(root))
    # 15 for 15 and older servers, 18 for 16 to 18 (scripts/static/build.sh)
    assert {"15", "18"} <= set(majors(root))
    for f in ("bin/sh", "usr/bin/env", "lib", "usr/lib/x86_64-linux-gnu"):
        assert not os.path.lexists(os.path.join(root, f)), f
    for m in majors(root):
        for t in PG_TOOLS:
            with open(os.path.join(root, f"usr/lib/postgresql/{m}/bin/{t}"), "rb") as f:
                assert f.read(4) == b"\x7fELF"
    passwd = open(os.path.join(root, "etc/passwd")).read().splitlines()
    assert f"sauve:x:{UID}:{GID}:sauve:/nonexistent:/sbin/nologin" in passwd
    assert f"sauve:x:{GID}:" in open(os.path.join(root, "etc/group")).read().splitlines()
    assert os.path.isfile(os.path.join(root, "usr/share/zoneinfo/Europe/Paris"))
    assert stat.S_IMODE(os.stat(os.path.join(root, "tmp")).st_mode) == 0o1777


def test_every_tool_runs_alone_in_the_container(runtime, workdir):
    c = runtime.Container(workdir, {})
    code, out, err, _ = c.exec(["/usr/local/bin/sauve", "version"])
    assert code == 0 and out.startswith("sauve "), (code, out, err)
    for m in majors(runtime.root):
        for t in PG_TOOLS:
            code, out, err, _ = c.exec([f"/usr/lib/postgresql/{m}/bin/{t}", "--version"])
            assert code == 0, (m, t, code, out, err)
            assert out.startswith(f"{t} (PostgreSQL) {m}."), (m, t, out)


def test_the_image_records_the_exact_sources_it_was_built_from(runtime, workdir):
    root = runtime.root
    with open(os.path.join(root, "usr/local/share/sauve/sources.json")) as f:
        record = json.load(f)
    assert record["format"] == 1
    by_package = {s["package"]: s for s in record["sources"]}
    # One entry per part built: postgresql-15 gives libpq and the tools.
    tools = {s["package"]: s for s in record["sources"] if "pg_dump" in s["built"]}
    for s in record["sources"]:
        assert s["version"] and s["suite"] and s["built"], s
    # Every library linked into sauve is named.
    for package in ("openssl", "curl", "libzstd", "libyaml", "jansson", "expat", "zlib", "libarchive", "postgresql-15"):
        assert package in by_package, (package, sorted(by_package))
    # Each major's record is the version its pg_dump reports ("18.6-3" built
    # pg_dump 18.6), and its suite carries that major.
    c = runtime.Container(workdir, {})
    for m in majors(root):
        s = tools[f"postgresql-{m}"]
        code, out, err, _ = c.exec([f"/usr/lib/postgresql/{m}/bin/pg_dump", "--version"])
        assert code == 0, err
        upstream = s["version"].split(":")[-1].split("-")[0]
        assert out.strip() == f"pg_dump (PostgreSQL) {upstream}", (s, out)
    # sauve version tells the same in the container: the tools it finds by
    # default, newest first, and the record.
    code, out, err, _ = c.exec([SAUVE, "version", "--json"])
    assert code == 0, err
    v = json.loads(out)
    assert [str(t["major"]) for t in v["postgresql_tools"]] == sorted(majors(root), key=int, reverse=True), v
    assert v["sources"] == record["sources"], v


def test_there_is_no_shell_in_the_container(runtime, workdir):
    code, out, err, _ = runtime.Container(workdir, {}).exec(["/bin/sh", "-c", "true"])
    assert code != 0
    # (The rootfs's jail says "No such file", buildah "no such file".)
    assert "no such file" in err.lower(), err


@pytest.fixture
def source_db(pg, dbs, small_template):
    return dbs.clone(small_template, "rootfs")


def pod_env(pg, db):
    # As the chart sets it: libpq's variables, the database, a time zone by
    # name; no SAUVE_PG_BINDIR (the default finds /usr/lib/postgresql/*/bin).
    return {**pg.tcp_env(), "SAUVE_PG_DATABASES": db, "TZ": "Europe/Paris"}


def check_backup(r, pg):
    assert r.code == 0, r.describe()
    # the default SAUVE_PG_BINDIR finds the image's tools of the server's major
    major = pg.server_version.split(".")[0]
    assert r.any_line(f"pg_dump from /usr/lib/postgresql/{major}/bin"), r.describe()
    # the zone database is in the image: TZ=Europe/Paris is understood
    assert r.any_line("names no time zone") is None, r.describe()
    # pg_dumpall ran (globals): it checks pg_dump's version without a shell
    assert r.any_line("error") is None, r.describe()


def check_restore(pg, dbs, container, source, r_env=None):
    new = dbs.expect(dbs.name("restored"))
    r = container.sauve("restore", f"postgres:{source}", "--into", new, "--yes", env=r_env)
    assert r.code == 0, r.describe()
    assert_same_state(db_state(pg, source), db_state(pg, new), f"restore into {new}")


def test_backup_to_s3_and_restore(runtime, pg, dbs, source_db, bucket, workdir):
    c = runtime.Container(workdir, {**pod_env(pg, source_db), **bucket.env})
    r = c.sauve("backup")
    check_backup(r, pg)
    keys = bucket.keys()
    manifests = [k for k in keys if k.endswith("/manifest.json")]
    assert len(manifests) == 1, keys
    manifest = json.loads(bucket.get(manifests[0]))
    kinds = {a.get("key", "").split("/")[-1] for a in manifest["artifacts"]}
    assert f"{source_db}.dump.zst" in kinds and "globals.sql.zst" in kinds, manifest
    assert all(not a.get("error") for a in manifest["artifacts"]), manifest
    # list finds the set in the bucket, complete; check reaches both
    # servers and changes nothing.
    r = c.sauve("list", "--json")
    assert r.code == 0, r.describe()
    listed = json.loads(r.stdout)["sets"]
    assert [(s["id"], s["status"]) for s in listed] == [(manifest["id"], "ok")], listed
    r = c.sauve("check", "--json")
    assert r.code == 0, r.describe()
    assert bucket.keys() == keys
    check_restore(pg, dbs, c, source_db)


def test_backup_to_a_mounted_volume_and_restore(runtime, pg, dbs, source_db, workdir):
    vol = os.path.join(workdir, "volume")
    os.mkdir(vol)
    os.chown(vol, UID, GID)
    c = runtime.Container(workdir, {**pod_env(pg, source_db), "SAUVE_STORAGE": "file:///backups"},
                  volumes={"/backups": vol})
    r = c.sauve("backup")
    check_backup(r, pg)
    sets = committed_sets(vol)
    assert len(sets) == 1, os.listdir(vol)
    # written by uid/gid 65532, nobody else
    for dirpath, dirs, files in os.walk(vol):
        for n in dirs + files:
            st = os.lstat(os.path.join(dirpath, n))
            assert (st.st_uid, st.st_gid) == (UID, GID), os.path.join(dirpath, n)
    check_restore(pg, dbs, c, source_db)


def test_the_root_filesystem_is_read_only(runtime, pg, source_db, workdir):
    # /tmp exists in the image but, without a volume, is as read-only as
    # the rest: local storage there fails before anything is written.
    c = runtime.Container(workdir, {**pod_env(pg, source_db), "SAUVE_STORAGE": "file:///tmp/backups"})
    r = c.sauve("backup")
    assert r.code != 0, r.describe()
    assert os.listdir(os.path.join(runtime.root, "tmp")) == []


def test_postgresql_18_backup_and_restore_with_the_image_tools(runtime, pg18, dbs18, small_template18, workdir):
    # The current major, dumped and restored by the image's own static
    # pg_dump/pg_restore 18 (found by the default SAUVE_PG_BINDIR).
    source = dbs18.clone(small_template18, "rootfs18")
    vol = os.path.join(workdir, "volume")
    os.mkdir(vol)
    os.chown(vol, UID, GID)
    c = runtime.Container(workdir, {**pod_env(pg18, source), "SAUVE_STORAGE": "file:///backups"},
                  volumes={"/backups": vol})
    r = c.sauve("backup")
    check_backup(r, pg18)
    ((_, manifest),) = committed_sets(vol)
    dump = [a for a in manifest["artifacts"] if a["key"].endswith(f"/{source}.dump.zst")]
    assert len(dump) == 1 and dump[0]["tool_version"].startswith("pg_dump (PostgreSQL) 18."), manifest
    check_restore(pg18, dbs18, c, source)


def test_every_part_ships_its_licence_notice(runtime):
    """Each source package built, musl (linked into every executable), the
    CA bundle and tzdata have their copyright file, sauve its LICENSE, and
    nothing else is under /usr/share/doc."""
    root = runtime.root
    with open(os.path.join(root, "usr/local/share/sauve/sources.json")) as f:
        packages = {s["package"] for s in json.load(f)["sources"]}
    doc = os.path.join(root, "usr/share/doc")
    assert set(os.listdir(doc)) == packages | {"musl", "ca-certificates", "tzdata", "sauve"}
    for package in os.listdir(doc):
        name = "LICENSE" if package == "sauve" else "copyright"
        assert os.listdir(os.path.join(doc, package)) == [name], package
        with open(os.path.join(doc, package, name), errors="replace") as f:
            text = f.read()
        # A notice, not an empty or truncated file: it names a licence.
        assert re.search(r"licen[cs]e|permission is hereby granted", text, re.I), (package, text[:200])
    with open(os.path.join(doc, "sauve/LICENSE"), "rb") as f, open(os.path.join(REPO, "LICENSE"), "rb") as g:
        assert f.read() == g.read()
    # The notice of the PostgreSQL tools is their source's: postgresql-18's
    # for 18's tools, not libpq's (15) for all.
    for m in majors(root):
        with open(os.path.join(doc, f"postgresql-{m}/copyright"), errors="replace") as f:
            assert "PostgreSQL" in f.read(), m
