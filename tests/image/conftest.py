"""The image tests run the built image (build/image/*.oci.tar, make image)
with buildah (imagerun.py) against the same real servers, with the same
fixtures and the same checks as the rootfs tests (tests/rootfs, whose tests
test_rootfs_shared.py imports), plus what only the image has: its
configuration, its layers and its exact environment (test_image.py)."""

import glob
import importlib.util
import os
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ROOTFS_TESTS = os.path.join(REPO, "tests", "rootfs")
sys.path.insert(0, ROOTFS_TESTS)
sys.path.insert(0, os.path.join(REPO, "scripts", "image"))

_spec = importlib.util.spec_from_file_location("sauve_rootfs_conftest", os.path.join(ROOTFS_TESTS, "conftest.py"))
_rootfs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_rootfs)

# Re-exported: pytest finds fixtures by attribute in this module (not the
# rootfs session start, which wants build/rootfs).
pg = _rootfs.pg
small_template = _rootfs.small_template
dbs = _rootfs.dbs
pg18 = _rootfs.pg18
small_template18 = _rootfs.small_template18
dbs18 = _rootfs.dbs18
roles_guard = _rootfs.roles_guard
s3 = _rootfs.s3
bucket = _rootfs.bucket
renderer = _rootfs.renderer
helm = _rootfs.helm
manual_job = _rootfs.manual_job
restore_jobs = _rootfs.restore_jobs
workdir = _rootfs.workdir

from container import Runtime  # noqa: E402
from imagerun import Store, make_container_class, make_run_pod  # noqa: E402
import oci  # noqa: E402


def archive_path():
    """The archive make image wrote for this machine's architecture
    (SAUVE_IMAGE_ARCHIVE: another one)."""
    if os.environ.get("SAUVE_IMAGE_ARCHIVE"):
        return os.environ["SAUVE_IMAGE_ARCHIVE"]
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    found = sorted(glob.glob(os.path.join(REPO, "build", "image", f"sauve-*-{arch}.oci.tar")))
    return found[-1] if found else ""


def pytest_sessionstart(session):
    if os.geteuid() != 0:
        pytest.exit("the image tests need root (buildah, mount namespaces)", 2)
    if not shutil.which("buildah"):
        pytest.exit("no buildah: run make deps-test", 2)
    if not archive_path() or not os.path.isfile(archive_path()):
        pytest.exit("no image archive in build/image: run make image", 2)


@pytest.fixture(scope="session")
def oci_image():
    """The image as the archive holds it (oci.Image): manifest, config, layers."""
    return oci.Image(archive_path())


@pytest.fixture(scope="session")
def store():
    """The image, pulled from the archive into a buildah store of this
    session's own; every container and image is removed at the end, and the
    store with them."""
    s = Store(archive_path())
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="session")
def runtime(store):
    """The built image under buildah (imagerun.py); root: the file system of
    a container of the image that never ran."""
    return Runtime("image", store.root, make_container_class(store), make_run_pod(store))
