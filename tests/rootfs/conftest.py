"""The rootfs tests reuse the integration suite's servers and fixtures
(tests/integration/conftest.py): PostgreSQL, the RADOS Gateway, buckets,
per-test databases; and the deploy suite's chart renderer."""

import importlib.util
import os
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.abspath(os.path.join(HERE, "..", "integration"))
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
roles_guard = _it.roles_guard
s3 = _it.s3
bucket = _it.bucket

# The deploy suite's chart renderer (tests/deploy/conftest.py; it puts
# tests/deploy, with podrun.py, on sys.path), for the rendered Jobs.
_dspec = importlib.util.spec_from_file_location(
    "sauve_deploy_conftest", os.path.join(HERE, "..", "deploy", "conftest.py"))
_deploy = importlib.util.module_from_spec(_dspec)
_dspec.loader.exec_module(_deploy)
renderer = _deploy.renderer
helm = _deploy.helm
# What the user makes with kubectl: the manual backup and restore Jobs.
manual_job = _deploy.manual_job
restore_jobs = _deploy.restore_jobs

from container import ROOTFS, ROOTFS_RUNTIME, make_workdir  # noqa: E402


def pytest_sessionstart(session):
    if os.geteuid() != 0:
        pytest.exit("the rootfs tests need root (mount and user namespaces: chroot, bind mounts)", 2)
    if not os.path.exists(os.path.join(ROOTFS, "usr", "local", "bin", "sauve")):
        pytest.exit(f"no rootfs at {ROOTFS}: run make rootfs", 2)


@pytest.fixture
def workdir():
    d = make_workdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def runtime():
    """The rootfs in jail.py (container.py)."""
    return ROOTFS_RUNTIME

