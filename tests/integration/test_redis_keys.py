"""Redis keys mode (SAUVE_REDIS_MODE=keys) against real redis-server 7
(Debian): for servers that refuse replication, as managed services do
(simulated here with rename-command SYNC/PSYNC ""). Every key is read with
SCAN + PTTL + DUMP into sauve's keys-mode stream; verify walks it, and
restore --online replays it. On a quiescent source the restored server's
DEBUG DIGEST equals the source's."""

import json
import os
import struct
import subprocess

import pytest

from redisserver import MANAGED, fill_dataset, resp, restore_online
from sauvecli import Sauve, committed_sets, forge_artifact

@pytest.fixture
def rsauve(workdir, storage):
    return Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage})


def keys_backup(rsauve, src, name="cache", url=None, password=None):
    r = rsauve.run("backup", env={"SAUVE_REDIS_URL": url or src.url(),
                                  "SAUVE_REDIS_PASSWORD": password or src.password,
                                  "SAUVE_REDIS_NAME": name, "SAUVE_REDIS_MODE": "keys"})
    return r


def the_set(storage):
    sets = [s for s in committed_sets(storage) if s[1].get("reason", "backup") == "backup"]
    assert len(sets) == 1, sets
    return sets[0]


def raw_stream(set_dir, a):
    return subprocess.run(["zstd", "-dc", os.path.join(set_dir, a["key"])], capture_output=True,
                          check=True).stdout


def parse_stream(data):
    """An independent reader of docs/redis-keys-format.md: records and end."""
    assert data[:16] == b"SAUVE-REDIS-KEYS"
    assert struct.unpack_from("<H", data, 16)[0] == 1
    pos, recs = 18, []
    while data[pos:pos + 1] == b"K":
        db, exp, klen, plen = struct.unpack_from("<IqIQ", data, pos + 1)
        pos += 25
        key = data[pos:pos + klen]
        payload = data[pos + klen:pos + klen + plen]
        pos += klen + plen
        recs.append((db, key, exp, payload))
    assert data[pos:pos + 1] == b"E"
    keys, vanished, _crc = struct.unpack_from("<QQQ", data, pos + 1)
    assert pos + 25 == len(data)
    return recs, keys, vanished


def test_managed_service_backed_up_in_keys_mode_and_restored_online(servers, rsauve, storage, workdir):
    src = servers(extra=MANAGED)
    fill_dataset(src)
    # refused in sync mode: exit 78, pointing at keys mode
    r = rsauve.run("backup", env={"SAUVE_REDIS_URL": src.url(), "SAUVE_REDIS_PASSWORD": src.password})
    assert r.code == 78, r.describe()
    assert r.any_line("does not allow replication", "SAUVE_REDIS_MODE=keys"), r.describe()
    assert committed_sets(storage) == []

    r = keys_backup(rsauve, src)
    assert r.code == 0, r.describe()
    assert r.any_line("NOT point-in-time"), r.describe()
    set_dir, m = the_set(storage)
    (a,) = m["artifacts"]
    assert (a["format"], a["mode"], a["format_version"]) == ("redis-keys", "keys", 1)
    assert a["key"] == "redis/cache.keys.zst"
    assert a["items"] == sum(src.key_counts().values())
    assert a["vanished"] == 0

    # an independent reader of the format agrees with the server's own DUMP
    recs, keys, vanished = parse_stream(raw_stream(set_dir, a))
    assert (keys, vanished) == (len(recs), 0)
    assert {db for db, *_ in recs} == set(src.key_counts())
    by_key = {(db, k): (exp, p) for db, k, exp, p in recs}
    exp, payload = by_key[(0, b"str:ttl")]
    pexpireat = int(src.cli("PEXPIRETIME", "str:ttl"))
    assert abs(exp - pexpireat) < 5000
    assert by_key[(0, b"str:plain")][0] == -1
    big = by_key[(0, b"str:big")][1]
    assert len(big) > 1024 * 1024

    # list says what it is
    r = rsauve.run("list", json_stdout=True)
    assert r.code == 0, r.describe()
    assert "redis:cache (keys mode, NOT point-in-time)" in r.stdout, r.describe()
    j = json.loads(rsauve.run("list", "--json").stdout)
    (ja,) = j["sets"][0]["artifacts"]
    assert (ja["mode"], ja["point_in_time"]) == ("keys", False)

    r = rsauve.run("verify", "--set", "latest", json_stdout=True)
    assert r.code == 0, r.describe()
    assert r.any_line("keys-mode stream", "CRC-64"), r.describe()

    dst = servers(password="target-pass-9a1c")
    r = restore_online(rsauve, dst)
    assert r.code == 0, r.describe()
    assert dst.digest() == src.digest()
    assert dst.key_counts() == src.key_counts()
    assert 0 < int(dst.cli("PTTL", "str:ttl")) <= 86_400_000
    assert "grp" in dst.cli("XINFO", "GROUPS", "stream:a")

    # --to-file refuses a keys-mode artifact: it is not an RDB
    path = os.path.join(workdir, "dump.rdb")
    r = rsauve.run("restore", "redis:cache", "--to-file", path, "--yes")
    assert r.code == 1, r.describe()
    assert r.any_line("keys mode", "not an RDB", "--online"), r.describe()
    assert not os.path.exists(path)


def test_keys_mode_minimal_acl_and_noperm(servers, rsauve, storage):
    src = servers(extra=MANAGED + [
        "user keys on >keys-pass-3b7d ~* -@all +scan +dump +pttl +select +info",
        "user nodump on >nodump-pass-8e2f ~* -@all +scan +pttl +select +info"])
    fill_dataset(src)
    r = keys_backup(rsauve, src, url=src.url(user="keys"), password="keys-pass-3b7d")
    assert r.code == 0, r.describe()
    (a,) = the_set(storage)[1]["artifacts"]
    assert a["items"] == sum(src.key_counts().values())

    r = keys_backup(rsauve, src, url=src.url(user="nodump"), password="nodump-pass-8e2f")
    assert r.code == 78, r.describe()
    assert r.any_line("NOPERM", "DUMP", "+scan +dump +pttl"), r.describe()
    assert "nodump-pass-8e2f" not in r.all_output()
    assert len(committed_sets(storage)) == 1


def truncate_artifact(storage, cut):
    set_dir, m = the_set(storage)
    (a,) = m["artifacts"]
    raw = raw_stream(set_dir, a)
    short = raw[:cut(len(raw))]
    data = subprocess.run(["zstd", "-q", "-c"], input=short, capture_output=True, check=True).stdout
    forge_artifact(set_dir, m, a, data, bytes_in=len(short))


@pytest.mark.parametrize("where", ["mid-record", "end-record"])
def test_truncated_keys_artifact_refused_by_verify_and_restore(servers, rsauve, storage, where):
    src = servers(extra=MANAGED)
    fill_dataset(src)
    assert keys_backup(rsauve, src).code == 0
    # cut inside a record, or drop only the end record (every record whole)
    truncate_artifact(storage, (lambda n: int(n * 0.7)) if where == "mid-record" else (lambda n: n - 25))
    r = rsauve.run("verify", "--set", "latest", json_stdout=True)
    assert r.code != 0, r.describe()
    assert r.any_line("keys-mode stream", "truncated"), r.describe()
    dst = servers()
    r = restore_online(rsauve, dst)
    assert r.code == 1, r.describe()
    assert r.any_line("truncated"), r.describe()
    assert dst.key_counts() == {}


def test_a_flipped_byte_inside_a_payload_is_caught_by_its_crc(servers, rsauve, storage):
    src = servers(extra=MANAGED)
    src.cli("SET", "k", "v" * 100)
    assert keys_backup(rsauve, src).code == 0
    set_dir, m = the_set(storage)
    (a,) = m["artifacts"]
    raw = bytearray(raw_stream(set_dir, a))
    raw[18 + 25 + 1 + 20] ^= 0x01  # inside the value of the only record
    data = subprocess.run(["zstd", "-q", "-c"], input=bytes(raw), capture_output=True, check=True).stdout
    forge_artifact(set_dir, m, a, data, bytes_in=len(raw))
    r = rsauve.run("verify", "--set", "latest", json_stdout=True)
    assert r.code != 0, r.describe()
    assert r.any_line("CRC-64"), r.describe()


class DeletingProxy:
    """A TCP proxy between sauve and the server that, when the first bytes
    holding a DUMP command pass (SCAN has listed the keys by then), deletes
    the victim keys on the server before forwarding them: keys that vanish
    between SCAN and DUMP, deterministically."""

    def __init__(self, server, victims):
        import socket
        import threading
        self.server, self.victims, self.done = server, victims, False
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    def _accept(self):
        import socket
        import threading
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.server.port))
            for a, b, up in ((c, s, True), (s, c, False)):
                t = threading.Thread(target=self._pump, args=(a, b, up), daemon=True)
                t.start()

    def _pump(self, a, b, up):
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                data = b""
            if not data:
                for x in (a, b):
                    try:
                        x.shutdown(2)
                    except OSError:
                        pass
                return
            if up and not self.done and b"DUMP" in data:
                self.done = True
                self.server.cli("DEL", *self.victims)
            try:
                b.sendall(data)
            except OSError:
                return

    def close(self):
        self.lsock.close()


def test_keys_deleted_between_scan_and_dump_are_counted_not_errors(servers, rsauve, storage):
    src = servers(extra=MANAGED)
    for i in range(20):
        src.cli("SET", f"k{i}", f"v{i}")
    proxy = DeletingProxy(src, ["k3", "k11"])
    try:
        r = keys_backup(rsauve, src, url=f"redis://127.0.0.1:{proxy.port}")
    finally:
        proxy.close()
    assert r.code == 0, r.describe()
    assert proxy.done
    assert r.any_line("18 key(s)", "2 key(s) vanished between SCAN and DUMP"), r.describe()
    set_dir, m = the_set(storage)
    (a,) = m["artifacts"]
    assert (a["items"], a["vanished"]) == (18, 2)
    recs, keys, vanished = parse_stream(raw_stream(set_dir, a))
    assert (keys, vanished) == (18, 2)
    assert {k for _, k, _, _ in recs} == {f"k{i}".encode() for i in range(20)} - {b"k3", b"k11"}
    dst = servers()
    r = restore_online(rsauve, dst)
    assert r.code == 0, r.describe()
    assert dst.digest() == src.digest()


def test_clean_restore_into_a_managed_target_takes_its_safety_backup_in_keys_mode(servers, rsauve, storage):
    src = servers(extra=MANAGED)
    fill_dataset(src, big_mb=1)
    assert keys_backup(rsauve, src).code == 0
    dst = servers(extra=MANAGED)
    dst.cli("SET", "precious", "data")
    r = restore_online(rsauve, dst)
    assert r.code == 1, r.describe()
    assert r.any_line("holds 1 key(s)", "nothing was changed"), r.describe()
    r = restore_online(rsauve, dst, "--clean")
    assert r.code == 0, r.describe()
    assert dst.digest() == src.digest()
    safety = [m for _, m in committed_sets(storage) if m.get("reason") == "safety"]
    assert len(safety) == 1, safety
    (a,) = safety[0]["artifacts"]
    assert (a["name"], a["mode"], a["format"], a["items"]) == ("cache", "keys", "redis-keys", 1)


def test_a_value_larger_than_any_reply_sauve_buffers_is_streamed(servers, rsauve, storage):
    """40 MB in one key: more than the 16 MB sauve accepts for a reply it
    holds whole (REDIS_REPLY_MAX), so the DUMP reply must stream."""
    src = servers(extra=MANAGED)
    src.pipe(resp("SET", "huge", os.urandom(40 * 1024 * 1024)) + resp("SET", "small", "x"))
    r = keys_backup(rsauve, src)
    assert r.code == 0, r.describe()
    (a,) = the_set(storage)[1]["artifacts"]
    assert a["items"] == 2 and a["bytes_in"] > 40 * 1024 * 1024
    dst = servers()
    r = restore_online(rsauve, dst)
    assert r.code == 0, r.describe()
    assert dst.digest() == src.digest()


def test_check_reports_keys_mode(servers, rsauve):
    src = servers(extra=MANAGED)
    r = rsauve.run("check", env={"SAUVE_REDIS_URL": src.url(), "SAUVE_REDIS_PASSWORD": src.password,
                                 "SAUVE_REDIS_MODE": "keys"}, json_stdout=True)
    assert r.code == 0, r.describe()
    assert "keys mode (NOT point-in-time" in r.all_output(), r.describe()
