"""What only the built image has, read from the image itself (the OCI
archive and buildah's view of it), never from the Dockerfile: its
configuration (entrypoint, cmd, user, labels, environment), its layers and
exact file list (owners, modes, timestamps, static executables, no shell),
and what a process in it gets (probe.c): exactly the environment given, uid
65532, a read-only root."""

import datetime
import io
import os
import re
import struct
import subprocess
import tarfile

import pytest
import yaml

from container import UID, GID
from podrun import index_objects, run_spec
from imagerun import HOSTNAME, run_in_image
from test_rootfs import PG_TOOLS, expected_files
from test_rendered_jobs import chart_values

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUNTIME_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LABELS = ("org.opencontainers.image.title", "org.opencontainers.image.description",
          "org.opencontainers.image.source", "org.opencontainers.image.licenses",
          "org.opencontainers.image.version")


def makefile_version():
    with open(os.path.join(REPO, "Makefile")) as f:
        return re.search(r"^VERSION := (\S+)", f.read(), re.M).group(1)


def test_the_configuration_is_the_contract(oci_image, store):
    cfg = oci_image.config["config"]
    assert cfg.get("Entrypoint") == ["/usr/local/bin/sauve"], cfg
    assert cfg.get("Cmd") == ["backup"], cfg
    assert cfg.get("User") == f"{UID}:{GID}", cfg
    # The image sets no variable but the PATH a builder gives every image
    # that has none (BuildKit and buildah do): the pod's environment is all
    # sauve reads.
    assert cfg.get("Env") in (None, [], [f"PATH={RUNTIME_PATH}"]), cfg
    assert not cfg.get("ExposedPorts") and not cfg.get("Volumes"), cfg
    labels = cfg.get("Labels") or {}
    # Exactly the OCI labels the Dockerfile documents (no builder's own label).
    assert sorted(labels) == sorted(LABELS), labels
    assert labels["org.opencontainers.image.title"] == "sauve"
    assert labels["org.opencontainers.image.version"] == makefile_version(), labels
    assert (oci_image.config["os"], oci_image.config["architecture"]) == ("linux", store.inspect["OCIv1"]["architecture"])
    # buildah reads the same configuration from the image it pulled.
    assert store.inspect["OCIv1"]["config"] == cfg


def test_one_layer_holding_exactly_the_files(oci_image, store):
    assert len(oci_image.layers) == 1, oci_image.layers
    assert oci_image.layers[0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    # The rootfs digest is the layer's: the config's diff_id is the
    # uncompressed layer's sha256.
    assert oci_image.config["rootfs"]["diff_ids"] == [oci_image.diff_id(0)]
    files = oci_image.files()
    majors = sorted({p.split("/")[3] for p in files if p.startswith("usr/lib/postgresql/") and p.count("/") >= 3}, key=int)
    assert {"15", "18"} <= set(majors), majors
    got = {p for p in files if not p.startswith(("usr/share/zoneinfo/", "usr/share/doc/"))}
    assert got == expected_files(majors)
    # The notices themselves are checked by test_every_part_ships_its_licence_notice.
    assert {"usr/share/doc/sauve/LICENSE", "usr/share/doc/openssl/copyright"} <= set(files)
    assert "usr/share/zoneinfo/Europe/Paris" in files
    for shell in ("bin/sh", "bin/bash", "bin/busybox", "usr/bin/env"):
        assert shell not in files, shell
    # What the archive lists is what a container of the image holds.
    on_disk = set()
    for dirpath, dirs, names in os.walk(store.root):
        for n in dirs + names:
            on_disk.add(os.path.relpath(os.path.join(dirpath, n), store.root))
    assert on_disk == set(files)


def elf_interp(data):
    """True when an ELF executable asks for a program interpreter (is dynamic)."""
    assert data[:4] == b"\x7fELF", data[:4]
    assert data[4] == 2 and data[5] == 1, "64-bit little-endian ELF expected"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3 for i in range(phnum))


def test_owners_modes_timestamps_and_static_executables(oci_image):
    entries = oci_image.entries(0)
    created = oci_image.config["created"]
    # Every timestamp is the one the build was given (the commit's time):
    # the config's, the history's and each file's.
    epoch = {e["mtime"] for e in entries}
    assert len(epoch) == 1, sorted(epoch)[:5]
    when = datetime.datetime.fromtimestamp(epoch.pop(), datetime.timezone.utc)
    assert created.startswith(when.strftime("%Y-%m-%dT%H:%M:%S")), (created, when)
    assert all(h["created"] == created for h in oci_image.config["history"]), oci_image.config["history"]
    # The layer lists its entries in order, directories before what they hold.
    paths = [e["path"] for e in entries]
    assert paths == sorted(paths, key=lambda p: p.split("/")), "entries are not in sorted order"
    for e in entries:
        assert (e["uid"], e["gid"]) == (0, 0), e
    by_path = {e["path"]: e for e in entries}
    assert by_path["tmp"]["mode"] & 0o7777 == 0o1777
    executables = [e for e in entries if e["type"] == "file" and e["mode"] & 0o111]
    expected = {"usr/local/bin/sauve"} | {p for p in by_path if p.startswith("usr/lib/postgresql/") and p.rsplit("/", 1)[-1] in PG_TOOLS}
    assert {e["path"] for e in executables} == expected
    for e in executables:
        assert e["mode"] & 0o7777 == 0o755, e
    with_interp = []
    with tarfile.open(fileobj=io.BytesIO(oci_image.layer_tar(0))) as t:
        for m in t.getmembers():
            if m.name.lstrip("./") in expected and elf_interp(t.extractfile(m).read()):
                with_interp.append(m.name)
    assert with_interp == []


@pytest.fixture(scope="session")
def probe(tmp_path_factory):
    """probe.c, static (no library of the host enters the container)."""
    d = tmp_path_factory.mktemp("probe")
    os.chmod(d, 0o755)
    out = d / "probe"
    subprocess.run(["cc", "-static", "-O2", "-o", str(out), os.path.join(os.path.dirname(__file__), "probe.c")],
                   check=True)
    return str(d)


def run_probe(store, workdir, probe, env, *dirs, read_only_root=True):
    run_dir = os.path.join(workdir, f"probe-{len(os.listdir(workdir))}")
    os.mkdir(run_dir)
    p, _ = run_in_image(store, run_dir, argv=["/probe/probe", *dirs], env=env, uid=UID, gid=GID,
                        ro={"/probe": probe}, read_only_root=read_only_root)
    return p


def probe_facts(p):
    assert p.returncode == 0, (p.returncode, p.stderr.decode(errors="replace"))
    env, lines = {}, []
    for line in p.stdout.decode().splitlines():
        if line.startswith("env "):
            k, _, v = line[4:].partition("=")
            env[k] = v
        else:
            lines.append(line)
    return env, lines


def test_a_process_gets_exactly_the_environment_given(store, probe, workdir, monkeypatch):
    # A variable of the test's own environment must not reach the container.
    monkeypatch.setenv("SAUVE_HOST_ONLY", "leak")
    given = {"SAUVE_STORAGE": "file:///backups", "PGHOST": "127.0.0.1", "TZ": "Europe/Paris",
             "WITH_SPACES": "a b = c"}
    env, lines = probe_facts(run_probe(store, workdir, probe, given))
    # What a runtime adds for an image that sets no variable: PATH (its
    # default), HOSTNAME, and HOME from the image's /etc/passwd.
    assert env == {**given, "PATH": RUNTIME_PATH, "HOSTNAME": HOSTNAME, "HOME": "/nonexistent"}
    assert f"uid {UID} euid {UID} gid {GID} egid {GID}" in lines, lines
    assert "status CapEff:\t0000000000000000" in lines, lines


def test_the_root_is_read_only_for_everyone(store, probe, workdir):
    dirs = ["/", "/tmp", "/etc", "/usr/local/bin"]
    _, lines = probe_facts(run_probe(store, workdir, probe, {}, *dirs))
    for d in dirs:
        assert f"write {d} Read-only file system" in lines, lines
    # The probe can tell: without the read-only root, uid 65532 writes /tmp
    # (the image's /tmp is 1777) and nothing else.
    _, lines = probe_facts(run_probe(store, workdir, probe, {}, *dirs, read_only_root=False))
    assert "write /tmp ok" in lines, lines
    assert "write /etc Permission denied" in lines, lines


def test_the_rendered_cronjob_runs_what_the_image_says(oci_image, helm, pg, bucket, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(chart_values(pg, bucket, "app")))
    docs, _ = helm(str(values), name="app-backup", namespace="backups")
    objects = index_objects(docs)
    cronjob = [d for d in docs if d["kind"] == "CronJob"]
    assert len(cronjob) == 1
    spec = run_spec(cronjob[0], objects)
    cfg = oci_image.config["config"]
    # The CronJob runs the image's entrypoint with its default command, as
    # the image's user.
    assert spec.argv == cfg["Entrypoint"] + cfg["Cmd"], (spec.argv, cfg)
    assert f"{spec.user}:{spec.group}" == cfg["User"]
    assert spec.read_only_root
    # Its environment names the settings sauve reads, and no secret value.
    assert spec.environ.get("PGPASSWORD_FILE") and "PGPASSWORD" not in spec.environ, spec.environ
    assert pg.superuser_password not in spec.environ.values()
