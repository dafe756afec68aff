"""scripts/static/fetch-source.sh against a Debian mirror made here: a signed
deb-src archive on loopback whose index lists versions it does not serve,
as deb.debian.org did on 2026-12-05 (postgresql-17 17.12-0+deb13u1 listed,
every file 404).

The mirror is real apt data: source packages built by dpkg-source, Sources
indexes by dpkg-scansources, Release files signed by a key made for the test
(gpg), served over HTTP by Python's http.server. apt verifies all of it as
it would Debian's, so a tampered file or a foreign signature is refused by
apt itself, not by a stand-in."""

import gzip
import hashlib
import http.server
import os
import shutil
import subprocess
import tempfile
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FETCH = os.path.join(ROOT, "scripts/static/fetch-source.sh")
PKG = "sauvetestsrc"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def make_source(work, version):
    """A native source package PKG_VERSION (.dsc + .tar.xz) in work/out."""
    d = os.path.join(work, f"{PKG}-{version}")
    os.makedirs(os.path.join(d, "debian/source"))
    with open(os.path.join(d, "debian/source/format"), "w") as f:
        f.write("3.0 (native)\n")
    with open(os.path.join(d, "debian/control"), "w") as f:
        f.write(
            f"Source: {PKG}\nMaintainer: sauve tests <tests@invalid>\nSection: misc\nPriority: optional\n"
            "Standards-Version: 4.6.2\n\n"
            f"Package: {PKG}\nArchitecture: all\nDescription: test package\n test package\n"
        )
    with open(os.path.join(d, "debian/changelog"), "w") as f:
        f.write(
            f"{PKG} ({version}) unstable; urgency=medium\n\n  * Test.\n\n"
            " -- sauve tests <tests@invalid>  Sat, 05 Dec 2026 00:00:00 +0000\n"
        )
    with open(os.path.join(d, "CONTENT"), "w") as f:
        f.write(f"version {version}\n")
    out = os.path.join(work, "out", version)
    os.makedirs(out)
    run(["dpkg-source", "-b", os.path.basename(d)], cwd=work)
    for n in os.listdir(work):
        if n.startswith(f"{PKG}_{version}"):
            shutil.move(os.path.join(work, n), out)
    return out


class Mirror:
    """archives: {"debian": {suite: [versions]}, "debian-security": {...}}.
    Every version's files are placed in the pool of every archive listing it."""

    def __init__(self, base, gnupghome, archives):
        self.root = os.path.join(base, "mirror")
        self.gnupghome = gnupghome
        work = os.path.join(base, "src")
        os.makedirs(work)
        built = {}
        for archive, suites in archives.items():
            for suite, versions in suites.items():
                for v in versions:
                    if v not in built:
                        built[v] = make_source(work, v)
                    pool = os.path.join(self.root, archive, "pool/main/s", PKG)
                    os.makedirs(pool, exist_ok=True)
                    for n in os.listdir(built[v]):
                        if not os.path.exists(os.path.join(pool, n)):
                            shutil.copy(os.path.join(built[v], n), pool)
                self._index(archive, suite, versions)

    def _index(self, archive, suite, versions):
        top = os.path.join(self.root, archive)
        # dpkg-scansources writes the Directory field relative to its argument.
        scan = run(["dpkg-scansources", f"pool/main/s/{PKG}"], cwd=top).stdout
        keep = [e for e in scan.split("\n\n") if e.strip() and any(f"\nVersion: {v}\n" in f"\n{e}\n" for v in versions)]
        text = "\n\n".join(keep) + "\n"
        dists = os.path.join(top, "dists", suite)
        os.makedirs(os.path.join(dists, "main/source"))
        files = {"main/source/Sources": text.encode(), "main/source/Sources.gz": gzip.compress(text.encode())}
        for rel, data in files.items():
            with open(os.path.join(dists, rel), "wb") as f:
                f.write(data)
        release = (
            f"Origin: sauve-tests\nLabel: sauve-tests\nSuite: {suite}\nCodename: {suite}\n"
            "Date: Sat, 05 Dec 2026 00:00:00 UTC\nArchitectures: amd64 source\nComponents: main\nSHA256:\n"
        )
        for rel, data in files.items():
            release += f" {hashlib.sha256(data).hexdigest()} {len(data)} {rel}\n"
        with open(os.path.join(dists, "Release"), "w") as f:
            f.write(release)
        run(
            ["gpg", "--batch", "--yes", "--homedir", self.gnupghome, "--clearsign", "-o",
             os.path.join(dists, "InRelease"), os.path.join(dists, "Release")]
        )

    def pool_file(self, archive, version, suffix):
        return os.path.join(self.root, archive, "pool/main/s", PKG, f"{PKG}_{version}{suffix}")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def env():
    base = tempfile.mkdtemp(prefix="sauve-fetch-")
    gnupghome = os.path.join(base, "gnupg")
    os.makedirs(gnupghome, mode=0o700)
    run(["gpg", "--batch", "--homedir", gnupghome, "--passphrase", "", "--quick-gen-key",
         "sauve test mirror <tests@invalid>", "ed25519", "sign", "never"])
    keyring = os.path.join(base, "keyring.gpg")
    with open(keyring, "wb") as f:
        f.write(subprocess.run(["gpg", "--homedir", gnupghome, "--export"], check=True, capture_output=True).stdout)
    servers = []

    def serve(mirror):
        handler = lambda *a, **kw: Quiet(*a, directory=mirror.root, **kw)  # noqa: E731
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    def fetch(mirror_url, *suites, keyring_path=keyring):
        e = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        e.update(
            SAUVE_STATIC_MIRROR=mirror_url,
            SAUVE_STATIC_KEYRING=keyring_path,
            SAUVE_CACHE=os.path.join(base, "cache"),
            SAUVE_STATIC_APT_DIR=os.path.join(base, "apt"),
        )
        dest = os.path.join(base, "tree")
        p = subprocess.run([FETCH, PKG, dest, *suites], env=e, capture_output=True, text=True, timeout=300)
        return p, dest

    yield type("Env", (), {"base": base, "gnupghome": gnupghome, "keyring": keyring, "serve": serve,
                           "fetch": staticmethod(fetch)})
    for s in servers:
        s.shutdown()
        s.server_close()
    # Every gpg home under base (a test may make its own) has an agent that
    # deletes its sockets as it exits: stop each, and wait, before removing.
    for home in [os.path.join(base, d) for d in os.listdir(base)]:
        if os.path.isfile(os.path.join(home, "pubring.kbx")):
            subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True, check=False)

    def vanished_is_fine(func, path, exc_info):
        # an agent still on its way out may remove a socket under our feet
        if not issubclass(exc_info[0], FileNotFoundError):
            raise exc_info[1]

    shutil.rmtree(base, onerror=vanished_is_fine)


def read(path):
    with open(path) as f:
        return f.read().strip()


def test_newest_listed_version_missing_falls_back_to_the_newest_that_downloads(env):
    # 1.2 is listed by the security suite and by sid, but the mirror lost
    # its files; 1.1 is the newest that downloads; 1.0 is older.
    m = Mirror(env.base, env.gnupghome, {
        "debian-security": {"rel-security": ["1.2"]},
        "debian": {"rel": ["1.0", "1.1"], "sid": ["1.2"]},
    })
    for archive in ("debian", "debian-security"):
        for suffix in (".dsc", ".tar.xz"):
            os.remove(m.pool_file(archive, "1.2", suffix))
    p, dest = env.fetch(env.serve(m), "rel-security", "rel", "sid")
    assert p.returncode == 0, p.stderr
    assert read(os.path.join(dest, ".version")) == "1.1"
    assert read(os.path.join(dest, ".suite")) == "rel"
    assert read(os.path.join(dest, "CONTENT")) == "version 1.1"
    # Both listings of 1.2 were tried, and each refusal says why.
    assert "1.2: listed by rel-security but not downloadable" in p.stderr
    assert "1.2: listed by sid but not downloadable" in p.stderr
    assert "404" in p.stderr


def test_tampered_source_is_refused_and_an_older_intact_one_taken(env):
    m = Mirror(env.base, env.gnupghome, {"debian": {"rel": ["1.0", "1.1"]}})
    path = m.pool_file("debian", "1.1", ".tar.xz")
    with open(path, "r+b") as f:
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 0xFF]))
    p, dest = env.fetch(env.serve(m), "rel")
    assert p.returncode == 0, p.stderr
    assert read(os.path.join(dest, ".version")) == "1.0"
    assert "1.1: listed by rel but not downloadable" in p.stderr


def test_no_version_downloads_names_the_package_every_suite_and_every_version(env):
    m = Mirror(env.base, env.gnupghome, {"debian-security": {"rel-security": ["2.0"]}, "debian": {"rel": ["1.9"]}})
    for v, archive in (("2.0", "debian-security"), ("1.9", "debian")):
        os.remove(m.pool_file(archive, v, ".dsc"))
    p, dest = env.fetch(env.serve(m), "rel-security", "rel", "newer")
    assert p.returncode == 1
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith(f"fetch-source: {PKG}: no listed version downloads")
    assert "searched: rel-security rel newer" in last
    assert "tried: 2.0 (rel-security), 1.9 (rel)" in last
    assert not os.path.exists(dest)
    # The suite this mirror lacks was reported, and did not stop the search.
    assert "apt-get update of newer failed" in p.stderr


def test_a_package_no_suite_lists_is_a_clear_error(env):
    m = Mirror(env.base, env.gnupghome, {"debian": {"rel": ["1.0"]}})
    url = env.serve(m)
    e = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    e.update(SAUVE_STATIC_MIRROR=url, SAUVE_STATIC_KEYRING=env.keyring, SAUVE_CACHE=os.path.join(env.base, "c"),
             SAUVE_STATIC_APT_DIR=os.path.join(env.base, "apt"))
    p = subprocess.run([FETCH, "postgresql-99", os.path.join(env.base, "t"), "rel"], env=e, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 1
    assert "postgresql-99: no suite lists it (searched: rel on " in p.stderr


def test_index_signed_by_another_key_is_not_trusted(env):
    m = Mirror(env.base, env.gnupghome, {"debian": {"rel": ["1.0"]}})
    other = os.path.join(env.base, "other-gnupg")
    os.makedirs(other, mode=0o700)
    run(["gpg", "--batch", "--homedir", other, "--passphrase", "", "--quick-gen-key", "someone else <x@invalid>",
         "ed25519", "sign", "never"])
    other_keyring = os.path.join(env.base, "other.gpg")
    with open(other_keyring, "wb") as f:
        f.write(subprocess.run(["gpg", "--homedir", other, "--export"], check=True, capture_output=True).stdout)
    p, dest = env.fetch(env.serve(m), "rel", keyring_path=other_keyring)
    assert p.returncode == 1
    assert "apt-get update of rel failed" in p.stderr
    assert f"{PKG}: no suite lists it" in p.stderr
    assert not os.path.exists(dest)
