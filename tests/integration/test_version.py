"""What a user learns about what they run: `sauve version` lists the
PostgreSQL client tools it finds, the libraries linked in and the Debian
sources of the image; `sauve check` names the pg_dump it would use for the
configured server, and why.

The pg_dumps of the version tests, and the newer and older ones of the check
tests, are stand-in scripts that only answer --version: what is tested is
sauve's discovery and choice of tools (a check never runs pg_dump for
anything else), not PostgreSQL. The server is the harness's real
PostgreSQL 15, and so is the same-major pg_dump."""

import json
import os
import shutil
import subprocess

import pytest

from pgserver import PG_BINDIR
from sauvecli import base_env, sauve_bin

SOURCES = {
    "format": 1,
    "sources": [
        {"package": "postgresql-18", "version": "18.1-1", "suite": "sid",
         "built": "pg_dump pg_restore pg_dumpall psql 18"},
        {"package": "openssl", "version": "3.0.17-1~deb12u2", "suite": "bookworm-security",
         "built": "libssl libcrypto"},
    ],
}
LIBRARIES = {"openssl", "libcurl", "zstd", "libpq", "jansson", "libyaml", "expat", "libarchive"}


def fake_pg_dump(root, major, version_line):
    """ROOT/MAJOR/bin/pg_dump answering --version with version_line."""
    d = os.path.join(root, major, "bin")
    os.makedirs(d)
    path = os.path.join(d, "pg_dump")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\necho '{version_line}'\n")
    os.chmod(path, 0o755)
    return d


@pytest.fixture
def fakebin(workdir):
    """Stand-ins of two majors, 15 and 18, under one glob."""
    root = os.path.join(workdir, "postgresql")
    d15 = fake_pg_dump(root, "15", "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)")
    d18 = fake_pg_dump(root, "18", "pg_dump (PostgreSQL) 18.1 (Debian 18.1-1)")
    return {"glob": os.path.join(root, "*", "bin"), "15": d15, "18": d18}


def installed(workdir, sources_text=None):
    """A copy of sauve at TREE/bin/sauve, as the image installs it, with
    TREE/share/sauve/sources.json holding sources_text when given."""
    tree = os.path.join(workdir, "tree")
    os.makedirs(os.path.join(tree, "bin"))
    exe = os.path.join(tree, "bin", "sauve")
    shutil.copy2(sauve_bin(), exe)
    if sources_text is not None:
        os.makedirs(os.path.join(tree, "share", "sauve"))
        with open(os.path.join(tree, "share", "sauve", "sources.json"), "w") as f:
            f.write(sources_text)
    return exe


def run(exe, *args, env=None, home):
    full = base_env(home)
    full.update(env or {})
    p = subprocess.run([exe, *args], env=full, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)
    return p


def describe(p):
    return f"exit {p.returncode}\n--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr}"


@pytest.fixture
def home(workdir):
    h = os.path.join(workdir, "home")
    os.makedirs(h, exist_ok=True)
    return h


# ---- sauve version -----------------------------------------------------------

def test_version_json_lists_both_majors_newest_first_and_the_libraries(workdir, home, fakebin):
    exe = installed(workdir)
    p = run(exe, "version", "--json", env={"SAUVE_PG_BINDIR": fakebin["glob"]}, home=home)
    assert p.returncode == 0, describe(p)
    assert p.stderr == "", describe(p)
    v = json.loads(p.stdout)
    assert v["version"] and p.stdout.count(v["version"]) >= 1
    assert v["postgresql_tools"] == [
        {"major": 18, "dir": fakebin["18"], "pg_dump_version": "pg_dump (PostgreSQL) 18.1 (Debian 18.1-1)"},
        {"major": 15, "dir": fakebin["15"],
         "pg_dump_version": "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"},
    ], v["postgresql_tools"]
    assert set(v["libraries"]) == LIBRARIES, v["libraries"]
    for name, version in v["libraries"].items():
        assert version and version[0].isdigit(), (name, version)
    # a developer build: nothing recorded, and that is not an error
    assert v["sources"] is None and v["sources_error"] is None, v

    p = run(exe, "version", env={"SAUVE_PG_BINDIR": fakebin["glob"]}, home=home)
    assert p.returncode == 0, describe(p)
    out = p.stdout
    assert out.startswith(f"sauve {v['version']}\n"), out
    assert out.index(fakebin["18"]) < out.index(fakebin["15"]), out
    assert "pg_dump (PostgreSQL) 18.1 (Debian 18.1-1)" in out
    for name in LIBRARIES:
        assert f"  {name} " in out, (name, out)
    assert "not recorded" in out, out
    # --version is the same command
    assert run(exe, "--version", env={"SAUVE_PG_BINDIR": fakebin["glob"]}, home=home).stdout == out


def test_version_prints_the_recorded_sources(workdir, home, fakebin):
    exe = installed(workdir, json.dumps(SOURCES))
    p = run(exe, "version", "--json", env={"SAUVE_PG_BINDIR": fakebin["glob"]}, home=home)
    assert p.returncode == 0, describe(p)
    v = json.loads(p.stdout)
    assert v["sources"] == SOURCES["sources"], v
    assert v["sources_error"] is None
    assert v["sources_file"] == os.path.join(workdir, "tree", "share", "sauve", "sources.json")

    p = run(exe, "version", env={"SAUVE_PG_BINDIR": fakebin["glob"]}, home=home)
    assert p.returncode == 0, describe(p)
    lines = p.stdout.splitlines()
    for s in SOURCES["sources"]:
        assert any(s["package"] in l and s["version"] in l and s["suite"] in l and s["built"] in l
                   for l in lines), (s, p.stdout)


@pytest.mark.parametrize("text,why", [
    ('{"format": 1, "sources": [', "malformed"),
    ('{"format": 2, "sources": []}', "format 2"),
    ('{"format": 1, "sources": [{"package": "openssl"}]}', "sources[0]"),
])
def test_a_malformed_sources_record_is_reported_without_failing(workdir, home, fakebin, text, why):
    exe = installed(workdir, text)
    p = run(exe, "version", "--json", env={"SAUVE_PG_BINDIR": fakebin["glob"]}, home=home)
    assert p.returncode == 0, describe(p)
    v = json.loads(p.stdout)
    assert v["sources"] is None
    assert why in v["sources_error"], v["sources_error"]
    assert [t["major"] for t in v["postgresql_tools"]] == [18, 15]

    p = run(exe, "version", env={"SAUVE_PG_BINDIR": fakebin["glob"]}, home=home)
    assert p.returncode == 0, describe(p)
    line, = [l for l in p.stdout.splitlines() if l.startswith("built from Debian sources")]
    assert "sources.json" in line and why in line, line


def test_version_runs_without_any_configuration(workdir, home):
    p = run(installed(workdir), "version", "--json", home=home)
    assert p.returncode == 0, describe(p)
    v = json.loads(p.stdout)
    assert v["pg_bindir"] == ["/usr/lib/postgresql/*/bin", "/usr/local/bin", "/usr/bin"]
    # this machine's PostgreSQL 15, through the default pg.bindir
    assert any(t["dir"] == PG_BINDIR and t["major"] == 15 for t in v["postgresql_tools"]), v


def test_version_runs_with_a_broken_configuration(workdir, home, fakebin):
    """An invalid setting does not stop version: one line on stderr says the
    configuration did not load, and the default pg.bindir is searched."""
    broken = os.path.join(workdir, "broken.yaml")
    with open(broken, "w") as f:
        f.write("pg:\n  host: [unclosed\n")
    exe = installed(workdir)
    for env in ({"SAUVE_ZSTD_LEVEL": "99"}, {"SAUVE_CONFIG": broken}):
        p = run(exe, "version", "--json", env={"SAUVE_PG_BINDIR": fakebin["glob"], **env}, home=home)
        assert p.returncode == 0, describe(p)
        v = json.loads(p.stdout)
        assert v["pg_bindir"] == ["/usr/lib/postgresql/*/bin", "/usr/local/bin", "/usr/bin"], v
        lines = p.stderr.splitlines()
        assert len(lines) == 1, describe(p)
        assert "configuration did not load" in lines[0], lines
        assert ("SAUVE_ZSTD_LEVEL" if "SAUVE_ZSTD_LEVEL" in env else broken) in lines[0], lines


def test_version_refuses_a_flag_it_does_not_take(workdir, home):
    p = run(installed(workdir), "version", "--dry-run", home=home)
    assert p.returncode == 64, describe(p)
    assert p.stdout == ""
    assert "--dry-run" in p.stderr


# ---- sauve check names the pg_dump ---------------------------------------------

def postgres_check(result):
    doc = json.loads(result.stdout)
    item, = [c for c in doc["checks"] if c["what"] == "postgres"]
    return doc, item


def test_check_names_the_same_major_pg_dump(pg, sauve, dbs):
    db = dbs.empty("which")
    r = sauve.run("check", "--json", env={"SAUVE_PG_DATABASES": db})
    assert r.code == 0, r.describe()
    _doc, item = postgres_check(r)
    real = subprocess.run([os.path.join(PG_BINDIR, "pg_dump"), "--version"], capture_output=True,
                          text=True, check=True).stdout.strip()
    number = real.split("(PostgreSQL) ")[1].split()[0]
    assert item["pg_dump"] == {"version": number, "major": 15, "dir": PG_BINDIR,
                               "pg_dump_version": real, "reason": "same_major"}, item
    assert item["detail"].endswith(f"; pg_dump {number} ({PG_BINDIR}), same major"), item
    assert item["detail"].startswith(f"server {item['server_version']} at 127.0.0.1:"), item

    r = sauve.run("check", env={"SAUVE_PG_DATABASES": db}, json_stdout=True)
    assert r.code == 0, r.describe()
    assert f"pg_dump {number} ({PG_BINDIR}), same major" in r.stdout, r.describe()


def test_check_without_the_same_major_names_the_oldest_newer_one(pg, sauve, dbs, workdir):
    db = dbs.empty("newer")
    root = os.path.join(workdir, "newer")
    d16 = fake_pg_dump(root, "16", "pg_dump (PostgreSQL) 16.9")
    fake_pg_dump(root, "18", "pg_dump (PostgreSQL) 18.1 (Debian 18.1-1)")
    fake_pg_dump(root, "14", "pg_dump (PostgreSQL) 14.19")
    r = sauve.run("check", "--json",
                  env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_BINDIR": os.path.join(root, "*", "bin")})
    assert r.code == 0, r.describe()
    _doc, item = postgres_check(r)
    assert item["pg_dump"]["dir"] == d16 and item["pg_dump"]["major"] == 16, item
    assert item["pg_dump"]["reason"] == "oldest_newer", item
    assert item["detail"].endswith(
        f"; pg_dump 16.9 ({d16}): same major unavailable, the oldest newer one"), item


def test_check_with_only_older_pg_dumps_lists_the_majors_found(pg, sauve, dbs, workdir):
    db = dbs.empty("older")
    root = os.path.join(workdir, "older")
    d14 = fake_pg_dump(root, "14", "pg_dump (PostgreSQL) 14.19")
    d13 = fake_pg_dump(root, "13", "pg_dump (PostgreSQL) 13.22")
    r = sauve.run("check", "--json",
                  env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_BINDIR": os.path.join(root, "*", "bin")})
    assert r.code == 78, r.describe()
    _doc, item = postgres_check(r)
    assert not item["ok"]
    detail = item["detail"]
    assert f"major 14 in {d14}" in detail and f"major 13 in {d13}" in detail, detail
    assert detail.index("major 14") < detail.index("major 13"), detail
    assert "postgresql-client-15" in detail, detail  # the hint
    assert "postgresql-client-15" in r.summary["msg"], r.summary
