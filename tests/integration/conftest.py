"""Fixtures for the integration suite: one PostgreSQL 15 cluster for the
whole session (and one PostgreSQL 18, started when a test first asks for
it), template databases built once, and per test its own databases, its
own work and storage directories, and a sauve runner with a controlled
environment. Everything is removed at the end, also when a test fails."""

import os
import secrets
import shutil
import stat
import tempfile

import pytest

from pgdata import build_realistic
from pgserver import PG_BINDIR, PgServer, PgUnavailable, quote_ident
from redisserver import RedisServer
from sauvecli import Sauve, processes_matching, kill_quietly


@pytest.fixture(scope="session")
def pg():
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg18():
    """A PostgreSQL 18 cluster, built from Debian's source by `make
    pg-server` (build/pg/18, or $SAUVE_PG18_BINDIR). Missing binaries fail
    the tests that need it, with the command that builds them: a suite that
    skipped them would pass without ever meeting the current major."""
    try:
        server = PgServer(major=18)
    except PgUnavailable as e:
        pytest.fail(str(e), pytrace=False)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _template(pg, name, rows, tag):
    pg.create_database(name)
    build_realistic(pg, name, rows=rows, tag=tag)
    # A template nobody may connect to any more, so CREATE DATABASE ...
    # TEMPLATE can copy it at once.
    pg.psql("postgres", f"ALTER DATABASE {quote_ident(name)} WITH IS_TEMPLATE true "
                        "ALLOW_CONNECTIONS true")
    return name


@pytest.fixture(scope="session")
def big_template(pg):
    """A realistic database with ~300,000 generated rows, built once."""
    return _template(pg, "tmpl_big", 300_000, "big")


@pytest.fixture(scope="session")
def small_template(pg):
    """The same schema with 20,000 rows (a few MB of dump): for failure tests."""
    return _template(pg, "tmpl_small", 20_000, "small")


@pytest.fixture(scope="session")
def small_template18(pg18):
    """small_template's schema and data on the PostgreSQL 18 server."""
    return _template(pg18, "tmpl_small", 20_000, "small18")


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="sauve-it-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def storage(workdir):
    d = os.path.join(workdir, "storage")
    os.mkdir(d)
    return d


class Dbs:
    """Factory for the databases of one test on one server; drop_all()
    drops them, including databases that sauve created (register them with
    .expect())."""

    def __init__(self, server):
        self.server = server
        self.names = []

    def name(self, prefix="db"):
        n = f"{prefix}_{secrets.token_hex(3)}"
        self.names.append(n)
        return n

    def expect(self, name):
        self.names.append(name)
        return name

    def clone(self, template, prefix="db"):
        n = self.name(prefix)
        self.server.create_database(n, template=template)
        return n

    def empty(self, prefix="db"):
        n = self.name(prefix)
        self.server.create_database(n)
        return n

    def drop_all(self):
        for n in self.names:
            self.server.drop_database(n)


@pytest.fixture
def dbs(pg):
    """Databases of this test on the PostgreSQL 15 server (see Dbs)."""
    d = Dbs(pg)
    yield d
    d.drop_all()


@pytest.fixture
def dbs18(pg18):
    """Databases of this test on the PostgreSQL 18 server (see Dbs)."""
    d = Dbs(pg18)
    yield d
    d.drop_all()


@pytest.fixture
def roles_guard(pg):
    """Drops every role that did not exist when the test started."""
    before = pg.roles()
    yield
    for r in sorted(pg.roles() - before):
        pg.psql("postgres", f"DROP ROLE IF EXISTS {quote_ident(r)}")


@pytest.fixture
def sauve(pg, workdir, storage):
    """A sauve runner pointed at the session server (superuser over TCP
    with a password) and at this test's storage."""
    env = {
        "SAUVE_STORAGE": "file://" + storage,
        "SAUVE_PG_BINDIR": PG_BINDIR,
        **pg.tcp_env(),
    }
    return Sauve(workdir, env)


# ---- fake PostgreSQL tool directories --------------------------------------

def make_bindir(parent, bodies, name="fakebin"):
    """A directory for SAUVE_PG_BINDIR. Each tool named in bodies (e.g.
    {"pg_dump": "..."}) is a bash script: a version query (-V, --version)
    goes to the real tool, anything else runs the body, in which $REAL is
    the real tool, $DIR this directory and $TOOL the tool's name. Every
    other tool of the real bindir is a symlink to the real one."""
    d = os.path.join(parent, name)
    os.mkdir(d)
    for tool in os.listdir(PG_BINDIR):
        if tool not in bodies:
            os.symlink(os.path.join(PG_BINDIR, tool), os.path.join(d, tool))
    for tool, body in bodies.items():
        script = os.path.join(d, tool)
        with open(script, "w") as f:
            f.write(f"""#!/bin/bash
REAL={PG_BINDIR}/{tool}
DIR={d}
TOOL={tool}
for a in "$@"; do
    case "$a" in -V|--version) exec "$REAL" "$@";; esac
done
{body}
""")
        os.chmod(script, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP
                 | stat.S_IROTH | stat.S_IXOTH)
    return d


@pytest.fixture
def reap():
    """Processes a test may leave behind on failure (by marker string in the
    command line): killed at teardown."""
    markers = []
    yield markers
    for m in markers:
        for pid in processes_matching(m):
            kill_quietly(pid)


# ---- S3 (Ceph RADOS Gateway) -----------------------------------------------

@pytest.fixture(scope="session")
def s3():
    """One S3 server (radosgw + memstore OSD + monitor, see s3server.py) for
    the whole session, started (1-2 s) only when a test first asks for it."""
    from s3server import S3Server
    server = S3Server()
    try:
        server.start()
        yield server
    finally:
        server.stop()


class S3Bucket:
    """A fresh, empty bucket for one test, and sauve's settings for it.

    name: the bucket; prefix: where sauve is told to write inside it;
    url: s3://name/prefix; env: SAUVE_STORAGE, AWS_* and SAUVE_S3_PATH_STYLE
    for Sauve(workdir, {**other_env, **bucket.env}); client: a boto3 client;
    server: the S3Server."""

    def __init__(self, server, name, prefix="backups"):
        self.server = server
        self.name = name
        self.prefix = prefix
        self.url = f"s3://{name}/{prefix}"
        self.client = server.client()
        self.env = {
            "SAUVE_STORAGE": self.url,
            **server.env(),
            "SAUVE_S3_PATH_STYLE": "true",
        }

    def keys(self, prefix=None):
        """Every object key under prefix (default: the whole bucket), sorted."""
        out = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix or "")
        for page in pages:
            out.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(out)

    def get(self, key):
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def uploads(self):
        """Unfinished multipart uploads: [(key, upload id)]."""
        r = self.client.list_multipart_uploads(Bucket=self.name)
        return [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]

    def empty_and_delete(self):
        for key, upload_id in self.uploads():
            self.client.abort_multipart_upload(Bucket=self.name, Key=key,
                                               UploadId=upload_id)
        keys = self.keys()
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=self.name, Delete={
                "Objects": [{"Key": k} for k in keys[i:i + 1000]],
                "Quiet": True})
        self.client.delete_bucket(Bucket=self.name)


@pytest.fixture
def bucket(s3):
    """A new bucket for this test (see S3Bucket). Afterwards the gateway is
    running again (a test may have killed it) and the bucket is emptied and
    deleted, so that the memstore OSD's memory does not grow all session."""
    b = S3Bucket(s3, f"sauve-it-{secrets.token_hex(4)}")
    s3.make_bucket(b.name)
    yield b
    s3.ensure_rgw()
    b.empty_and_delete()


@pytest.fixture
def servers():
    """Redis servers of this test: servers(**RedisServer options) starts
    one; all are stopped after the test."""
    started = []

    def make(*args, **kwargs):
        s = RedisServer(*args, **kwargs)
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.stop()
