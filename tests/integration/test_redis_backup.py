"""Redis backup against real redis-server 7 (Debian): the RDB sauve takes
over the replication protocol, stored through the pipeline, is read back
by independent tools (zstd, redis-check-rdb, a plain redis-server started
on it) and compared with the source by DEBUG DIGEST and key counts."""

import json
import os
import select
import signal
import socket
import subprocess
import threading

import pytest

from redisserver import ThrowawayCA, assert_rdb_holds, fill_bulk, fill_dataset
from sauvecli import Sauve, all_files, committed_sets, forge_artifact, wait_for
from pgserver import free_port


@pytest.fixture
def rsauve(workdir, storage):
    """A sauve runner with file storage and no PostgreSQL configured."""
    return Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage})


def only_manifest(storage):
    sets = committed_sets(storage)
    assert len(sets) == 1, sets
    return sets[0]


def files_outside(storage, committed):
    """Files under storage that no committed set holds: what an aborted run left."""
    dirs = [d for d, _ in committed]
    return [f for f in all_files(storage) if not any(f.startswith(d + os.sep) for d in dirs)]


def stored_rdb(set_dir, workdir, name="default"):
    """The artifact decompressed by zstd (an independent reader) into a file."""
    out = os.path.join(workdir, f"{name}.rdb")
    with open(out, "wb") as f:
        subprocess.run(["zstd", "-dc", os.path.join(set_dir, "redis", f"{name}.rdb.zst")], stdout=f,
                       check=True)
    return out


def redis_env(server, **extra):
    env = {"SAUVE_REDIS_URL": server.url(), "SAUVE_REDIS_PASSWORD": server.password}
    env.update(extra)
    return env


@pytest.mark.parametrize("diskless", ["no", "yes"])
def test_sync_stores_the_servers_data_in_both_framings(servers, rsauve, storage, workdir, diskless):
    src = servers(extra=[f"repl-diskless-sync {diskless}"])
    fill_dataset(src)
    assert src.key_counts() == {0: 14, 3: 1000, 15: 1}
    r = rsauve.run("backup", env=redis_env(src, SAUVE_REDIS_NAME="cache"))
    assert r.code == 0, r.describe()
    framing = "eof-mark" if diskless == "yes" else "length"
    assert r.any_line("rdb_version", framing), r.describe()

    set_dir, m = only_manifest(storage)
    (a,) = m["artifacts"]
    assert (a["kind"], a["name"], a["key"], a["format"]) == ("redis", "cache", "redis/cache.rdb.zst",
                                                             "redis-rdb")
    info = src.cli("INFO", "server")
    assert f"redis_version:{a['server_version']}" in info
    assert a["mode"] == "sync"
    assert a["items"] == 1015
    rdb = stored_rdb(set_dir, workdir, "cache")
    with open(rdb, "rb") as f:
        head = f.read(9)
    assert head[:5] == b"REDIS" and a["format_version"] == int(head[5:9])
    assert a["bytes_in"] == os.path.getsize(rdb)
    assert_rdb_holds(src, rdb)
    # the connection is closed: the server keeps no replica of ours
    wait_for(lambda: "connected_slaves:0" in src.cli("INFO", "replication"), 10, "the replica to go")
    # the password never shows, neither in the output nor in the manifest
    assert src.password not in r.all_output()
    with open(os.path.join(set_dir, "manifest.json")) as f:
        assert src.password not in f.read()


def test_password_in_the_url_and_acl_user_with_minimal_rights(servers, rsauve, storage, workdir):
    src = servers(extra=["user backup on >backup-pass-93ac -@all +psync +replconf"])
    fill_dataset(src)
    url = src.url(user="backup", password="backup-pass-93ac")
    r = rsauve.run("backup", env={"SAUVE_REDIS_URL": url})
    assert r.code == 0, r.describe()
    # INFO is not allowed: the backup works, the manifest lacks what INFO tells
    assert r.any_line("INFO", "+info", level=("warn",)), r.describe()
    set_dir, m = only_manifest(storage)
    (a,) = m["artifacts"]
    assert a["endpoint"].endswith("as backup")
    assert "items" not in a and a["server_version"] is None
    assert "backup-pass-93ac" not in r.all_output()
    assert_rdb_holds(src, stored_rdb(set_dir, workdir))


def test_user_without_psync_is_told_what_to_allow(servers, rsauve, storage):
    src = servers(extra=["user nosync on >nosync-pass-51be -@all +replconf +info +ping"])
    fill_dataset(src)
    r = rsauve.run("backup", env={"SAUVE_REDIS_URL": src.url(user="nosync"),
                                  "SAUVE_REDIS_PASSWORD": "nosync-pass-51be"})
    assert r.code == 78, r.describe()
    line = r.any_line("NOPERM", "psync", "ACL SETUSER", "+psync +replconf", "SAUVE_REDIS_MODE=keys")
    assert line, r.describe()
    assert committed_sets(storage) == []
    assert "nosync-pass-51be" not in r.all_output()


def test_wrong_password_names_the_setting(servers, rsauve, storage):
    src = servers()
    r = rsauve.run("backup", env=redis_env(src, SAUVE_REDIS_PASSWORD="not-the-password-1"))
    assert r.code == 78, r.describe()
    assert r.any_line("refused the password", "SAUVE_REDIS_PASSWORD"), r.describe()
    assert "not-the-password-1" not in r.all_output()
    r = rsauve.run("backup", env={"SAUVE_REDIS_URL": src.url(password="not-the-password-2")})
    assert r.code == 78, r.describe()
    assert r.any_line("refused the password", "SAUVE_REDIS_URL"), r.describe()
    assert "not-the-password-2" not in r.all_output()
    r = rsauve.run("backup", env={"SAUVE_REDIS_URL": src.url()})
    assert r.code == 78, r.describe()
    assert r.any_line("requires a password", "SAUVE_REDIS_PASSWORD"), r.describe()
    assert committed_sets(storage) == []


def test_unreachable_server_is_a_temporary_failure(rsauve, storage):
    port = free_port()
    r = rsauve.run("backup", env={"SAUVE_REDIS_URL": f"redis://127.0.0.1:{port}",
                                  "SAUVE_REDIS_TIMEOUT": "5"})
    assert r.code == 75, r.describe()
    assert r.any_line("cannot connect to redis", str(port)), r.describe()
    assert all_files(storage) == []


def test_server_refusing_sync_is_a_configuration_error(servers, rsauve, storage):
    src = servers(extra=['rename-command SYNC ""', 'rename-command PSYNC ""'])
    fill_dataset(src)
    r = rsauve.run("backup", env=redis_env(src))
    assert r.code == 78, r.describe()
    assert r.any_line("does not allow replication", "ElastiCache", "SAUVE_REDIS_MODE=keys"), r.describe()
    assert all_files(storage) == []


def test_tls_verified_with_client_certificate(servers, rsauve, storage, workdir):
    ca = ThrowawayCA(os.path.join(workdir, "pki"))
    src = servers(tls=ca, client_certs=True)
    fill_dataset(src)
    tls = {"SAUVE_REDIS_TLS_CA_FILE": ca.ca_crt, "SAUVE_REDIS_TLS_CERT_FILE": src.client_crt,
           "SAUVE_REDIS_TLS_KEY_FILE": src.client_key}
    r = rsauve.run("backup", env=redis_env(src, **tls))
    assert r.code == 0, r.describe()
    set_dir, m = only_manifest(storage)
    assert "(TLS)" in m["artifacts"][0]["endpoint"]
    assert_rdb_holds(src, stored_rdb(set_dir, workdir))

    # the host name is checked too: the certificate names 127.0.0.1 and localhost only
    other = ThrowawayCA(os.path.join(workdir, "pki-other"), name="other")
    for env in ({**tls, "SAUVE_REDIS_TLS_CA_FILE": other.ca_crt},  # another CA
                {k: v for k, v in tls.items() if k != "SAUVE_REDIS_TLS_CA_FILE"}):  # the system's CAs
        r = rsauve.run("backup", env=redis_env(src, **env))
        assert r.code == 78, r.describe()
        assert r.any_line("TLS certificate not trusted", "SAUVE_REDIS_TLS_CA_FILE"), r.describe()
    assert len(committed_sets(storage)) == 1


def test_tls_checks_the_host_name(servers, rsauve, storage, workdir):
    ca = ThrowawayCA(os.path.join(workdir, "pki"))
    # the same server on two loopback addresses; its certificate names
    # 127.0.0.1 and localhost only
    src = servers(tls=ca, bind="127.0.0.1 127.0.0.2")
    fill_dataset(src)
    env = {"SAUVE_REDIS_PASSWORD": src.password, "SAUVE_REDIS_TLS_CA_FILE": ca.ca_crt}
    # a DNS name (sent as SNI, checked against the certificate's names)
    r = rsauve.run("backup", env={**env, "SAUVE_REDIS_URL": src.url(host="localhost")})
    assert r.code == 0, r.describe()
    assert len(committed_sets(storage)) == 1
    r = rsauve.run("backup", env={**env, "SAUVE_REDIS_URL": src.url(host="127.0.0.2")})
    assert r.code == 78, r.describe()
    assert r.any_line("TLS certificate not trusted", "mismatch"), r.describe()
    assert len(committed_sets(storage)) == 1


def start_until_rdb_bytes(rsauve, env):
    """Starts sauve backup and returns (process, stderr lines read) once a
    progress line counts RDB bytes already received: a blocking trigger."""
    p = rsauve.start("backup", env={**env, "SAUVE_PROGRESS_INTERVAL": "1"})
    seen = []
    while True:
        line = p.stderr.readline()
        assert line, f"sauve ended before any RDB byte arrived: {b''.join(seen)!r}"
        seen.append(line)
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("source") == "redis:default" and obj.get("bytes", 0) > 0:
            return p, seen


def test_sigterm_mid_sync_stops_cleanly(servers, rsauve, storage):
    src = servers(extra=["repl-diskless-sync yes"])
    fill_bulk(src, keys=5000, size=4096)
    src.cli("CONFIG", "SET", "rdb-key-save-delay", "2000")
    p, seen = start_until_rdb_bytes(rsauve, redis_env(src))
    p.send_signal(signal.SIGTERM)
    rest = p.stderr.read()
    p.wait(timeout=60)
    out = (b"".join(seen) + rest).decode()
    assert p.returncode == 1, out
    assert "stopped by SIGTERM" in out, out
    assert all_files(storage) == []
    # sauve's connection is gone: the server keeps no replica of ours
    wait_for(lambda: "connected_slaves:0" in src.cli("INFO", "replication"), 30, "the replica to go")


def test_server_killed_mid_sync_commits_nothing_and_keeps_older_sets(servers, rsauve, storage):
    # diskless, and slowed by the server's own per-key delay, so that the
    # transfer is still running when the server is killed
    src = servers(extra=["repl-diskless-sync yes"])
    fill_bulk(src, keys=5000, size=4096)
    first = rsauve.run("backup", env=redis_env(src))
    assert first.code == 0, first.describe()
    before = committed_sets(storage)
    assert len(before) == 1
    src.cli("CONFIG", "SET", "rdb-key-save-delay", "2000")

    p, seen = start_until_rdb_bytes(rsauve, redis_env(src))
    src.kill()
    rest = p.stderr.read()
    p.wait(timeout=60)
    out = (b"".join(seen) + rest).decode()
    assert p.returncode == 1, out
    assert "closed the connection after" in out and "client-output-buffer-limit" in out, out
    assert committed_sets(storage) == before
    # nothing of the aborted set is left
    assert files_outside(storage, before) == []


class FakeRedis:
    """A test double standing in for a broken server (no real Redis sends a
    damaged RDB on purpose): answers +OK / INFO to the handshake, then
    sends payload (bytes) after PSYNC, framed as given, and closes."""

    def __init__(self, payload, framing="length"):
        self.payload = payload
        self.framing = framing
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                buf = b""
                while True:
                    r, _, _ = select.select([c], [], [], 10)
                    if not r:
                        break
                    data = c.recv(65536)
                    if not data:
                        break
                    buf += data
                    while b"\r\n" in buf:
                        # one command per recv is what sauve sends; parse loosely
                        cmd, buf = self.take(buf)
                        if cmd is None:
                            break
                        if not self.answer(c, cmd):
                            buf = b""
                            break

    @staticmethod
    def take(buf):
        if not buf.startswith(b"*"):
            return None, buf
        n, rest = buf[1:].split(b"\r\n", 1)
        args = []
        for _ in range(int(n)):
            if b"\r\n" not in rest:
                return None, buf
            ln, rest = rest[1:].split(b"\r\n", 1)
            ln = int(ln)
            if len(rest) < ln + 2:
                return None, buf
            args.append(rest[:ln])
            rest = rest[ln + 2:]
        return [a.decode().upper() if i == 0 else a for i, a in enumerate(args)], rest

    def answer(self, c, cmd):
        if cmd[0] == "INFO":
            body = b"redis_version:7.0.99\r\n" if cmd[1] == b"server" else b"db0:keys=1,expires=0\r\n"
            c.sendall(b"$%d\r\n%s\r\n" % (len(body), body))
        elif cmd[0] == "PSYNC" and len(cmd) == 1:
            c.sendall(b"-ERR wrong number of arguments for 'psync' command\r\n")
        elif cmd[0] == "PSYNC":
            c.sendall(b"+FULLRESYNC 0123456789012345678901234567890123456789 0\r\n\n\n")
            if self.framing == "length":
                c.sendall(b"$%d\r\n" % len(self.payload) + self.payload)
            else:
                mark = b"m" * 40
                c.sendall(b"$EOF:" + mark + b"\r\n" + self.payload + mark)
            return False
        else:
            c.sendall(b"+OK\r\n")
        return True

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("damage", ["flip", "truncate", "no-end"])
@pytest.mark.parametrize("framing", ["length", "eof"])
def test_a_damaged_rdb_fails_the_artifact(servers, rsauve, storage, workdir, damage, framing):
    src = servers()
    fill_dataset(src, big_mb=1)
    src.cli("SAVE")
    with open(os.path.join(src.dir, "dump.rdb"), "rb") as f:
        good = f.read()
    bad = {"flip": good[:len(good) // 2] + bytes([good[len(good) // 2] ^ 1]) + good[len(good) // 2 + 1:],
           "truncate": good[:-20],
           "no-end": good[:-9] + b"\xfe" + good[-8:]}[damage]
    for payload, ok in ((good, True), (bad, False)):
        fake = FakeRedis(payload, framing)
        try:
            r = rsauve.run("backup", env={"SAUVE_REDIS_URL": f"redis://127.0.0.1:{fake.port}"})
        finally:
            fake.close()
        if ok:
            # the double itself is right: the server's own RDB passes through it
            assert r.code == 0, r.describe()
        else:
            assert r.code == 1, r.describe()
            assert r.any_line("bad RDB"), r.describe()
    committed = committed_sets(storage)
    assert len(committed) == 1
    assert files_outside(storage, committed) == []


def test_redis_beside_postgres_in_one_set(servers, sauve, dbs, small_template, storage, workdir):
    src = servers()
    fill_dataset(src)
    db = dbs.clone(small_template)
    r = sauve.run("backup", env={**redis_env(src), "SAUVE_PG_DATABASES": db})
    assert r.code == 0, r.describe()
    set_dir, m = only_manifest(storage)
    kinds = sorted((a["kind"], a["name"]) for a in m["artifacts"])
    assert kinds == sorted([("postgres", "globals"), ("postgres", db), ("redis", "default")])
    assert_rdb_holds(src, stored_rdb(set_dir, workdir))

    # Redis refusing the sync while PostgreSQL works: partial, committed, named
    nosync = servers(extra=['rename-command PSYNC ""', 'rename-command SYNC ""'])
    r = sauve.run("backup", env={**redis_env(nosync), "SAUVE_PG_DATABASES": db})
    assert r.code == 2, r.describe()
    assert r.any_line("redis:default", "does not allow replication"), r.describe()
    assert len(committed_sets(storage)) == 2


def test_check_reaches_redis_and_names_a_refusal(servers, rsauve, storage):
    src = servers()
    r = rsauve.run("check", "--json", env=redis_env(src))
    assert r.code == 0, r.describe()
    items = {c["what"]: c for c in json.loads(r.stdout)["checks"]}
    assert items["redis:default"]["ok"] and items["redis:default"]["server_version"].startswith("7.")
    nosync = servers(extra=['rename-command PSYNC ""', 'rename-command SYNC ""'])
    r = rsauve.run("check", "--json", env=redis_env(nosync))
    assert r.code == 78, r.describe()
    items = {c["what"]: c for c in json.loads(r.stdout)["checks"]}
    assert not items["redis:default"]["ok"]
    assert "does not allow replication" in items["redis:default"]["detail"]
    assert all_files(storage) == []


def test_verify_reads_the_rdb_whole_and_catches_a_forged_one(servers, rsauve, storage, workdir):
    """sauve verify checks a Redis artifact's RDB (magic, version, end opcode,
    CRC-64) after its size and SHA-256; a forged object with a manifest that
    matches it (an RDB with one byte changed) is caught by the CRC-64."""
    src = servers()
    fill_dataset(src)
    env = redis_env(src)
    assert rsauve.run("backup", env=env).code == 0
    r = rsauve.run("verify", "--json", env=env)
    assert r.code == 0, r.describe()
    (a,) = json.loads(r.stdout)["sets"][0]["artifacts"]
    assert a["checked"] == "content" and "CRC-64 matches" in a["detail"], a
    set_dir, m = only_manifest(storage)
    rdb = bytearray(open(stored_rdb(set_dir, workdir), "rb").read())
    rdb[len(rdb) // 2] ^= 0x01
    data = subprocess.run(["zstd", "-q", "-c"], input=bytes(rdb), capture_output=True, check=True).stdout
    forge_artifact(set_dir, m, m["artifacts"][0], data)
    r = rsauve.run("verify", "--json", env=env)
    assert r.code == 4, r.describe()
    (a,) = json.loads(r.stdout)["sets"][0]["artifacts"]
    assert not a["ok"] and "checksum does not match" in a["detail"], a
