"""The arm64 tests run the aarch64 static build (scripts/static/build.sh with
SAUVE_STATIC_ARCH=aarch64: build/static-aarch64) on this x86-64 machine
under qemu-user, against the integration suite's real servers and fixtures
(tests/integration/conftest.py): PostgreSQL 15 and 18, the RADOS Gateway,
Redis.

Why wrappers: binfmt_misc is not available here (it is not mounted, and
registering an interpreter would change the host), so the kernel cannot
execute an aarch64 file: every aarch64 program is started as
`qemu-aarch64-static PROGRAM ARGS`. sauve is run that way through SAUVE_BIN,
and when it (or pg_dumpall) executes pg_dump, the kernel must be handed
something it can run. So the PostgreSQL tools are reached through a
directory of one-line shell scripts, one per tool and major
(MAJOR/bin/pg_dump ...), given to sauve as SAUVE_PG_BINDIR; each execs qemu
on the real aarch64 tool with argv[0] set to the script's own path (qemu's
-0), so that pg_dumpall, which looks for pg_dump beside its argv[0], finds
the wrapper too. With binfmt (or on an arm64 machine) none of this is
needed: the same binaries run as they are."""

import importlib.util
import os
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
INTEGRATION = os.path.join(REPO, "tests", "integration")
sys.path.insert(0, INTEGRATION)

_spec = importlib.util.spec_from_file_location(
    "sauve_integration_conftest", os.path.join(INTEGRATION, "conftest.py"))
_it = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_it)

# Re-exported: pytest finds fixtures by attribute in this module.
pg = _it.pg
small_template = _it.small_template
dbs = _it.dbs
pg18 = _it.pg18
small_template18 = _it.small_template18
dbs18 = _it.dbs18
s3 = _it.s3
bucket = _it.bucket
servers = _it.servers
workdir = _it.workdir
storage = _it.storage

STATIC = os.path.abspath(os.environ.get("SAUVE_ARM64_STATIC_DIR", os.path.join(REPO, "build", "static-aarch64")))
QEMU = os.environ.get("SAUVE_QEMU_AARCH64", "/usr/bin/qemu-aarch64-static")
PG_TOOLS = ("pg_dump", "pg_restore", "pg_dumpall", "psql")


class Arm64:
    """The aarch64 build and its qemu wrappers.

    static: build/static-aarch64; sauve: the aarch64 executable;
    majors: the PostgreSQL majors built; wrappers: the wrapper directory,
    with sauve and MAJOR/bin/TOOL; bindir: SAUVE_PG_BINDIR for sauve."""

    def __init__(self, wrappers):
        self.static = STATIC
        self.sauve = os.path.join(STATIC, "sauve")
        self.majors = sorted((m for m in os.listdir(os.path.join(STATIC, "pg")) if m.isdigit()), key=int)
        self.wrappers = wrappers
        self.bindir = os.path.join(wrappers, "pg", "*", "bin")

    def real_tool(self, major, tool):
        return os.path.join(self.static, "pg", str(major), "bin", tool)

    def wrapper(self, major, tool):
        return os.path.join(self.wrappers, "pg", str(major), "bin", tool)

    def write(self):
        self._script(os.path.join(self.wrappers, "sauve"), self.sauve)
        for m in self.majors:
            os.makedirs(os.path.join(self.wrappers, "pg", m, "bin"))
            for t in PG_TOOLS:
                self._script(self.wrapper(m, t), self.real_tool(m, t))

    @staticmethod
    def _script(path, target):
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\nexec {QEMU} -0 "$0" {target} "$@"\n')
        os.chmod(path, 0o755)


def pytest_sessionstart(session):
    for f in (QEMU, os.path.join(STATIC, "sauve")):
        if not os.access(f, os.X_OK):
            pytest.exit(f"no {f}: run make static (qemu-user-static provides {QEMU})", 2)


@pytest.fixture(scope="session")
def arm64():
    d = tempfile.mkdtemp(prefix="sauve-arm64-")
    os.chmod(d, 0o755)
    a = Arm64(d)
    a.write()
    saved = os.environ.get("SAUVE_BIN")
    # sauvecli.Sauve runs SAUVE_BIN: here the aarch64 sauve under qemu.
    os.environ["SAUVE_BIN"] = os.path.join(d, "sauve")
    yield a
    if saved is None:
        os.environ.pop("SAUVE_BIN", None)
    else:
        os.environ["SAUVE_BIN"] = saved
    shutil.rmtree(d, ignore_errors=True)
