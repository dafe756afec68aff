"""Redis restore against real redis-server 7 (Debian): a backup taken by
sauve is restored as an RDB file (--to-file) that a plain redis-server
loads and redis-check-rdb accepts, and replayed into a running server
(--online) as RESTORE commands; both compared with the source by DEBUG
DIGEST and key counts. Failure paths leave the file or the server as it
was (or, online, emptied again), and say so."""

import json
import os
import signal
import subprocess

import pytest

from redisserver import ThrowawayCA, assert_rdb_holds, fill_dataset, load_rdb, resp, restore_online
from sauvecli import Result, Sauve, committed_sets, forge_artifact, small_volume, wait_for


@pytest.fixture
def rsauve(workdir, storage):
    return Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage})


def fill_more(server):
    """What fill_dataset lacks: a small set of strings, a big list of long
    elements, a stream with several consumers and pending entries, LFU-less
    idle keys, a key in db 1 with a TTL, an int-encoded and an LZF-friendly
    long key."""
    cmds = [resp("SELECT", 0), resp("SADD", "set:small", "a", "b", "c")]
    cmds.append(resp("RPUSH", "list:big", *[os.urandom(200).hex() for _ in range(2000)]))
    for i in range(30):
        cmds.append(resp("XADD", "stream:b", "*", "i", i))
    cmds.append(resp("XGROUP", "CREATE", "stream:b", "g1", "0"))
    cmds.append(resp("XGROUP", "CREATE", "stream:b", "g2", "$"))
    cmds.append(resp("XREADGROUP", "GROUP", "g1", "alice", "COUNT", 5, "STREAMS", "stream:b", ">"))
    cmds.append(resp("XREADGROUP", "GROUP", "g1", "bob", "COUNT", 7, "STREAMS", "stream:b", ">"))
    cmds.append(resp("SET", "a" * 200, "key compressible by LZF"))
    cmds.append(resp("SET", "123456", "a key that is an integer"))
    cmds.append(resp("SELECT", 1))
    cmds.append(resp("SET", "db1:ttl", "x", "EX", 500_000))
    server.pipe(b"".join(cmds))


def backup(rsauve, src, name="cache"):
    r = rsauve.run("backup", env={"SAUVE_REDIS_URL": src.url(), "SAUVE_REDIS_PASSWORD": src.password,
                                  "SAUVE_REDIS_NAME": name})
    assert r.code == 0, r.describe()


def the_set(storage):
    sets = [s for s in committed_sets(storage) if s[1].get("reason", "backup") == "backup"]
    assert len(sets) == 1, sets
    return sets[0]


def leftovers(d, name):
    return [f for f in os.listdir(d) if f != name]


def edit_artifact(storage, edit, checksum=True):
    """The set's RDB decompressed, changed by edit(raw) -> bytes,
    recompressed, and the manifest made to agree (forge_artifact). checksum:
    the edit gets the RDB without its CRC-64, which is computed again for
    the result. Returns the forged RDB."""
    set_dir, m = the_set(storage)
    (a,) = m["artifacts"]
    raw = subprocess.run(["zstd", "-dc", os.path.join(set_dir, a["key"])], capture_output=True,
                         check=True).stdout
    if checksum:
        body = edit(raw[:-8])
        forged = body + crc64_jones(body).to_bytes(8, "little")
    else:
        forged = edit(raw)
    data = subprocess.run(["zstd", "-q", "-c"], input=forged, capture_output=True, check=True).stdout
    forge_artifact(set_dir, m, a, data, bytes_in=len(forged))
    return forged


def truncated_artifact(storage, cut=0.6):
    """The set's RDB cut short: only the RDB's own end marker and checksum
    can tell."""
    edit_artifact(storage, lambda raw: raw[:int(len(raw) * cut)], checksum=False)


# ---- --to-file ----------------------------------------------------------------


def test_to_file_writes_an_rdb_a_plain_server_loads(servers, rsauve, storage, workdir):
    src = servers()
    fill_dataset(src)
    fill_more(src)
    backup(rsauve, src)
    out_dir = os.path.join(workdir, "volume")
    os.makedirs(out_dir)
    target = os.path.join(out_dir, "dump.rdb")
    r = rsauve.run("restore", "redis:cache", "--to-file", target, "--yes")
    assert r.code == 0, r.describe()
    assert r.any_line("restore ok", "redis:cache", target), r.describe()
    assert_rdb_holds(src, target)
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o644 & ~current_umask())
    assert leftovers(out_dir, "dump.rdb") == []


def current_umask():
    u = os.umask(0)
    os.umask(u)
    return u


def test_to_file_keeps_an_existing_file_without_clean_and_replaces_it_with(servers, rsauve, storage,
                                                                          workdir):
    src = servers()
    fill_dataset(src)
    backup(rsauve, src)
    target = os.path.join(workdir, "dump.rdb")
    with open(target, "wb") as f:
        f.write(b"the file of the stopped server")
    os.chmod(target, 0o600)
    r = rsauve.run("restore", "redis:cache", "--to-file", target, "--yes")
    assert r.code == 1, r.describe()
    assert r.any_line("exists", "nothing was changed", "--clean"), r.describe()
    with open(target, "rb") as f:
        assert f.read() == b"the file of the stopped server"

    r = rsauve.run("restore", "redis:cache", "--to-file", target, "--clean", "--confirm", target)
    assert r.code == 0, r.describe()
    assert_rdb_holds(src, target)
    # the mode of the file it replaced
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert leftovers(workdir, "dump.rdb") == [d for d in os.listdir(workdir) if d != "dump.rdb"
                                              and not d.startswith(".dump.rdb")]


def test_to_file_on_a_volume_too_small_is_refused_before_anything_changed(servers, rsauve, storage, workdir):
    src = servers()
    fill_dataset(src)
    fill_more(src)
    backup(rsauve, src)
    _, m = the_set(storage)
    size = m["artifacts"][0]["bytes_in"]
    with small_volume(os.path.join(workdir, "volume"), size // 2) as vol:
        target = os.path.join(vol, "dump.rdb")
        with open(target, "wb") as f:
            f.write(b"the file of the stopped server")
        r = rsauve.run("restore", "redis:cache", "--to-file", target, "--clean", "--confirm", target)
        assert r.code == 1, r.describe()
        assert r.any_line(f"not enough space to restore into {target}", "nothing was changed"), r.describe()
        assert os.listdir(vol) == ["dump.rdb"]
        with open(target, "rb") as f:
            assert f.read() == b"the file of the stopped server"


def test_to_file_truncated_artifact_leaves_the_file_untouched(servers, rsauve, storage, workdir):
    src = servers()
    fill_dataset(src)
    backup(rsauve, src)
    truncated_artifact(storage)
    out_dir = os.path.join(workdir, "volume")
    os.makedirs(out_dir)
    target = os.path.join(out_dir, "dump.rdb")
    with open(target, "wb") as f:
        f.write(b"previous")
    r = rsauve.run("restore", "redis:cache", "--to-file", target, "--clean", "--confirm", target)
    assert r.code == 1, r.describe()
    assert r.any_line("not a whole RDB", "was not changed"), r.describe()
    with open(target, "rb") as f:
        assert f.read() == b"previous"
    assert leftovers(out_dir, "dump.rdb") == []


def test_to_file_removes_temporary_files_a_killed_run_left(servers, rsauve, storage, workdir):
    src = servers()
    fill_dataset(src)
    backup(rsauve, src)
    out_dir = os.path.join(workdir, "volume")
    os.makedirs(out_dir)
    target = os.path.join(out_dir, "dump.rdb")
    stale = os.path.join(out_dir, ".dump.rdb.sauve-4242-1700000000")
    with open(stale, "wb") as f:
        f.write(b"half an RDB")
    # not ours: another name, another file's, a directory
    kept = [".dump.rdb.sauve-4242-17x", ".other.rdb.sauve-1-2", "dump.rdb.sauve-1-2"]
    for k in kept:
        with open(os.path.join(out_dir, k), "wb") as f:
            f.write(b"x")
    os.mkdir(os.path.join(out_dir, ".dump.rdb.sauve-1-2"))
    r = rsauve.run("restore", "redis:cache", "--to-file", target, "--yes")
    assert r.code == 0, r.describe()
    assert r.any_line("removed", stale), r.describe()
    assert sorted(leftovers(out_dir, "dump.rdb")) == sorted(kept + [".dump.rdb.sauve-1-2"])
    assert_rdb_holds(src, target)


def test_to_file_usage_errors(rsauve, workdir):
    for args, needle in [((), "--to-file PATH or --online"),
                         (("--to-file", "x", "--online"), "not both"),
                         (("--to-file", "x", "--into", "redis://h:1"), "--into goes with --online"),
                         (("--online", "--into", "redis://u:secret-in-argv@h:1"), "visible"),
                         (("--online", "--into", "redis://h:1/3"), "database (/3) does not apply"),
                         (("--to-file", "x", "--no-owner"), "--no-owner")]:
        r = rsauve.run("restore", "redis:cache", *args, "--yes")
        assert r.code == 64, r.describe()
        assert r.any_line(needle), r.describe()
        assert "secret-in-argv" not in r.all_output()
    r = rsauve.run("restore", "postgres:app", "--to-file", "x", "--yes")
    assert r.code == 64 and r.any_line("--to-file does not apply"), r.describe()


# ---- --online -------------------------------------------------------------------


def test_online_restore_replays_every_type_into_an_empty_server(servers, rsauve, storage):
    src = servers()
    fill_dataset(src)
    fill_more(src)
    backup(rsauve, src)
    dst = servers(password="target-pass-5d1e")
    r = restore_online(rsauve, dst)
    assert r.code == 0, r.describe()
    assert dst.digest() == src.digest()
    assert dst.key_counts() == src.key_counts()
    # TTLs are absolute: still there, not reset
    assert 0 < int(dst.cli("PTTL", "str:ttl")) <= 86_400_000
    # streams keep their groups and pending entries
    assert "alice" in dst.cli("XINFO", "CONSUMERS", "stream:b", "g1")
    assert dst.cli("XPENDING", "stream:b", "g1").splitlines()[0] == "12"
    assert r.any_line("restored", "key(s)"), r.describe()
    assert dst.password not in r.all_output()


def test_online_refuses_a_non_empty_target_and_replaces_it_with_clean(servers, rsauve, storage):
    src = servers()
    fill_dataset(src)
    backup(rsauve, src)
    dst = servers()
    dst.cli("SET", "precious", "data")
    before = dst.digest()
    r = restore_online(rsauve, dst)
    assert r.code == 1, r.describe()
    assert r.any_line("holds 1 key(s)", "nothing was changed"), r.describe()
    assert dst.digest() == before

    r = restore_online(rsauve, dst, "--clean")
    assert r.code == 0, r.describe()
    assert dst.digest() == src.digest()
    safety = [m for _, m in committed_sets(storage) if m.get("reason") == "safety"]
    assert len(safety) == 1, safety
    (a,) = safety[0]["artifacts"]
    assert (a["kind"], a["name"], a["items"]) == ("redis", "cache", 1)


def test_online_wrong_password_changes_nothing(servers, rsauve, storage):
    src = servers()
    fill_dataset(src)
    backup(rsauve, src)
    dst = servers()
    r = restore_online(rsauve, dst, password="not-the-password-77")
    assert r.code == 78, r.describe()
    assert r.any_line("refused the password"), r.describe()
    assert dst.key_counts() == {}
    assert "not-the-password-77" not in r.all_output()


def test_online_truncated_artifact_leaves_the_target_empty(servers, rsauve, storage):
    src = servers()
    fill_dataset(src)
    fill_more(src)
    backup(rsauve, src)
    truncated_artifact(storage, cut=0.9)
    dst = servers()
    r = restore_online(rsauve, dst)
    assert r.code == 1, r.describe()
    assert r.any_line("emptied again"), r.describe()
    assert dst.key_counts() == {}


def test_online_refuses_a_target_older_than_the_rdb(servers, rsauve, storage):
    src = servers()
    fill_dataset(src)
    backup(rsauve, src)
    set_dir, m = the_set(storage)
    m["artifacts"][0]["format_version"] = 11
    with open(os.path.join(set_dir, "manifest.json"), "w") as f:
        json.dump(m, f)
    dst = servers()
    r = restore_online(rsauve, dst)
    assert r.code == 1, r.describe()
    assert r.any_line("reads RDB versions up to 10", "RDB version 11", "nothing was changed"), r.describe()
    assert dst.key_counts() == {}


def test_online_minimal_acl_and_noperm(servers, rsauve, storage):
    src = servers()
    fill_dataset(src)
    # more keys than the pipeline window: the refusal is read mid-stream
    src.cli("DEBUG", "POPULATE", "2000", "many", "10")
    backup(rsauve, src)
    dst = servers(extra=["user restorer on >restorer-pass-1 resetkeys ~* -@all +restore +select +info "
                         "+flushall +function|list +function|flush +function|load",
                         "user weak on >weak-pass-2 ~* -@all +select +info +flushall +function|list"])
    e = {"SAUVE_REDIS_PASSWORD": "restorer-pass-1"}
    r = rsauve.run("restore", "redis:cache", "--online", "--into", dst.url(user="restorer"), "--yes", env=e)
    assert r.code == 0, r.describe()
    assert dst.digest() == src.digest()

    dst.cli("FLUSHALL")
    e = {"SAUVE_REDIS_PASSWORD": "weak-pass-2"}
    r = rsauve.run("restore", "redis:cache", "--online", "--into", dst.url(user="weak"), "--yes", env=e)
    assert r.code == 1, r.describe()
    assert r.any_line("NOPERM", "+restore"), r.describe()
    # the server's refusal is the cause, not the artifact
    assert "NOPERM" in r.summary["msg"] and "emptied again" in r.summary["msg"], r.describe()
    # keys sent are not keys restored: none was confirmed
    assert "0 confirmed" in r.summary["msg"], r.describe()
    assert "unusable" not in r.all_output() and "the artifact failed" not in r.all_output(), r.describe()
    assert dst.key_counts() == {}


def test_online_stopped_by_sigterm_empties_the_target_again(servers, rsauve, storage):
    """SIGTERM once the restore reports progress: every read and write gives
    up on a stop, but the undo still goes out (the stop is held back for
    it), and the target is left empty."""
    src = servers()
    # many keys, so that the restore is still running a second after it started
    src.cli("DEBUG", "POPULATE", "1500000", "key", "100")
    backup(rsauve, src)
    dst = servers()
    p = rsauve.start("restore", "redis:cache", "--online", "--into", dst.url(), "--yes",
                     env={"SAUVE_REDIS_PASSWORD": dst.password, "SAUVE_PROGRESS_INTERVAL": "1"})
    seen = []
    for line in iter(p.stderr.readline, b""):
        seen.append(line)
        if b"restoring:" in line:
            p.send_signal(signal.SIGTERM)
            break
    assert seen and b"restoring:" in seen[-1], b"".join(seen).decode()
    try:
        out, rest = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise
    r = Result(p._sauve_args, p.returncode, out.decode(), b"".join(seen).decode() + rest.decode(),
               rsauve._read(p._sauve_term))
    r.check_log_contract(json_stdout=False)
    assert r.code == 1, r.describe()
    assert r.any_line("SIGTERM"), r.describe()
    assert r.any_line("emptied again"), r.describe()
    assert dst.key_counts() == {}


def crc64_jones(data, crc=0):
    """Redis's CRC-64 (reflected Jones polynomial), for forging an RDB."""
    table = crc64_jones.table
    if table is None:
        table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x95AC9329AC4BC9B5 if c & 1 else c >> 1
            table.append(c)
        crc64_jones.table = table
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


crc64_jones.table = None


def test_online_skips_keys_already_expired_as_a_loading_server_does(servers, rsauve, storage, workdir):
    """The RDB is forged so that str:ttl expired in 2001: a plain server
    loading the file drops it, and the online restore does not send it; both
    end with the same data."""
    src = servers()
    fill_dataset(src)
    backup(rsauve, src)

    def expire_in_2001(raw):
        at = raw.index(b"\x00\x07str:ttl")
        assert raw[at - 9] == 0xFC, "str:ttl has a millisecond expiry"
        return raw[:at - 8] + (1_000_000_000_000).to_bytes(8, "little") + raw[at:]

    forged = edit_artifact(storage, expire_in_2001)

    rdb = os.path.join(workdir, "forged.rdb")
    with open(rdb, "wb") as f:
        f.write(forged)
    loaded = load_rdb(rdb)
    try:
        assert loaded.cli("EXISTS", "str:ttl").strip() == "0"
        dst = servers()
        r = restore_online(rsauve, dst)
        assert r.code == 0, r.describe()
        assert r.any_line("1 already expired"), r.describe()
        assert dst.cli("EXISTS", "str:ttl").strip() == "0"
        assert dst.digest() == loaded.digest()
    finally:
        loaded.stop()


def test_online_over_tls_into_the_configured_server(servers, rsauve, storage, workdir):
    src = servers()
    fill_dataset(src)
    backup(rsauve, src)
    ca = ThrowawayCA(os.path.join(workdir, "ca"))
    dst = servers(tls=ca)
    r = rsauve.run("restore", "redis:cache", "--online", "--yes",
                   env={"SAUVE_REDIS_URL": dst.url(host="localhost"), "SAUVE_REDIS_PASSWORD": dst.password,
                        "SAUVE_REDIS_TLS_CA_FILE": ca.ca_crt})
    assert r.code == 0, r.describe()
    assert dst.digest() == src.digest()
    # without the CA, the server is not trusted and nothing is changed
    dst.cli("FLUSHALL")
    r = rsauve.run("restore", "redis:cache", "--online", "--yes",
                   env={"SAUVE_REDIS_URL": dst.url(host="localhost"), "SAUVE_REDIS_PASSWORD": dst.password})
    assert r.code == 78, r.describe()
    assert r.any_line("not trusted"), r.describe()
    assert dst.key_counts() == {}


def test_a_byte_changed_inside_a_value_is_caught_by_the_rdb_checksum_both_ways(servers, rsauve, storage,
                                                                                workdir):
    """One character of a string value changed, the manifest made to agree:
    every value still parses, so only the RDB's CRC-64 at its very end can
    tell. The file is not renamed into place; online, what landed is
    flushed again."""
    src = servers()
    fill_dataset(src)
    backup(rsauve, src)
    edit_artifact(storage, lambda raw: raw.replace(b"hello", b"jello", 1), checksum=False)

    target = os.path.join(workdir, "dump.rdb")
    r = rsauve.run("restore", "redis:cache", "--to-file", target, "--yes")
    assert r.code == 1, r.describe()
    assert r.any_line("checksum does not match", "was not changed"), r.describe()
    assert not os.path.exists(target)
    assert not [f for f in os.listdir(workdir) if f.startswith(".dump.rdb")]

    dst = servers()
    r = restore_online(rsauve, dst)
    assert r.code == 1, r.describe()
    assert r.any_line("emptied again"), r.describe()
    assert dst.key_counts() == {}


def test_a_server_that_cannot_read_the_payloads_version_is_emptied_again(servers, rsauve, storage):
    """An RDB of version 11 whose manifest records no version (nothing to
    check ahead): the 7.0 server refuses the first payload, sauve says the
    server is older than the RDB and leaves it empty."""
    src = servers()
    fill_dataset(src)
    backup(rsauve, src)

    def version_11(raw):
        assert raw[:9] == b"REDIS0010"
        return b"REDIS0011" + raw[9:]

    edit_artifact(storage, version_11)
    set_dir, m = the_set(storage)
    del m["artifacts"][0]["format_version"]
    with open(os.path.join(set_dir, "manifest.json"), "w") as f:
        json.dump(m, f)
    dst = servers()
    r = restore_online(rsauve, dst)
    assert r.code == 1, r.describe()
    assert r.any_line("payload version", "older than the RDB (version 11)"), r.describe()
    assert r.any_line("emptied again"), r.describe()
    assert dst.key_counts() == {}


def test_online_restores_function_libraries(servers, rsauve, storage):
    src = servers()
    src.cli("FUNCTION", "LOAD", "#!lua name=sauvelib\nredis.register_function('sauve_one', function() return 1 end)")
    src.cli("SET", "k", "v")
    backup(rsauve, src)
    dst = servers()
    r = restore_online(rsauve, dst)
    assert r.code == 0, r.describe()
    assert r.any_line("1 function library"), r.describe()
    assert "sauvelib" in dst.cli("FUNCTION", "LIST")
    assert dst.cli("FCALL", "sauve_one", "0").strip() == "1"
    assert dst.digest() == src.digest()


LIB = "#!lua name=%s\nredis.register_function('%s_one', function() return 1 end)"


def test_online_truncated_artifact_leaves_no_function_library(servers, rsauve, storage):
    """FLUSHALL keeps function libraries: the undo removes them too."""
    src = servers()
    src.cli("FUNCTION", "LOAD", LIB % ("sauvelib", "sauve"))
    fill_dataset(src)
    backup(rsauve, src)
    truncated_artifact(storage, cut=0.9)
    dst = servers()
    r = restore_online(rsauve, dst)
    assert r.code == 1, r.describe()
    assert r.any_line("emptied again", "FUNCTION FLUSH"), r.describe()
    assert dst.key_counts() == {}
    assert dst.cli("FUNCTION", "LIST").strip() == ""


def test_online_a_target_with_only_function_libraries_is_not_empty(servers, rsauve, storage):
    src = servers()
    src.cli("FUNCTION", "LOAD", LIB % ("newlib", "new"))
    src.cli("SET", "k", "v")
    backup(rsauve, src)
    dst = servers()
    dst.cli("FUNCTION", "LOAD", LIB % ("oldlib", "old"))
    r = restore_online(rsauve, dst)
    assert r.code == 1, r.describe()
    assert r.any_line("holds 0 key(s) and 1 function library", "nothing was changed"), r.describe()
    assert "oldlib" in dst.cli("FUNCTION", "LIST")

    r = restore_online(rsauve, dst, "--clean")
    assert r.code == 0, r.describe()
    libs = dst.cli("FUNCTION", "LIST")
    assert "newlib" in libs and "oldlib" not in libs, libs
    assert dst.digest() == src.digest()
    # the safety backup holds the library it replaced
    safety = [(d, m) for d, m in committed_sets(storage) if m.get("reason") == "safety"]
    assert len(safety) == 1, safety


def test_online_clean_then_an_unsupported_type_says_the_target_was_emptied(servers, rsauve, storage):
    """A module-typed value (forged) is refused only after --clean flushed
    the target: the error says so, and where its data is."""
    src = servers()
    src.cli("SET", "modkey", "vvvvvvvvv")
    backup(rsauve, src)
    edit_artifact(storage, lambda raw: raw.replace(b"\x00\x06modkey", b"\x07\x06modkey", 1))
    dst = servers()
    dst.cli("SET", "precious", "data")
    r = restore_online(rsauve, dst, "--clean")
    assert r.code == 1, r.describe()
    msg = r.summary["msg"]
    assert "module type" in msg, r.describe()
    assert "was emptied (FLUSHALL) for the restore" in msg and "safety backup" in msg, r.describe()
    assert dst.key_counts() == {}
    assert [m for _, m in committed_sets(storage) if m.get("reason") == "safety"]


def test_online_refuses_while_a_sauve_backup_reads_the_server(servers, rsauve, storage):
    """A backup announces itself as the replica "sauve-backup": a restore
    into that server exits 75 and changes nothing while it runs. The
    backup is held by the server, never by a sleep: a diskless sync waits
    repl-diskless-sync-delay for more replicas before it forks, and setting
    the delay back to 0 lets it go."""
    src = servers()
    fill_dataset(src)
    backup(rsauve, src)
    before = src.digest()
    # a disk-based sync forks at once: only a diskless one waits
    src.cli("CONFIG", "SET", "repl-diskless-sync", "yes")
    src.cli("CONFIG", "SET", "repl-diskless-sync-delay", "3600")
    env = {"SAUVE_REDIS_URL": src.url(), "SAUVE_REDIS_PASSWORD": src.password, "SAUVE_REDIS_NAME": "cache"}
    p = rsauve.start("backup", env=env)
    try:
        wait_for(lambda: "ip=sauve-backup" in src.cli("INFO", "replication") or p.poll() is not None, 60,
                 "the backup to be listed as a replica")
        assert p.poll() is None, "the backup ended before the test held it"
        # the server's own log names who asked
        assert "sauve-backup" in src.log()
        r = restore_online(rsauve, src, "--clean")
        assert r.code == 75, r.describe()
        msg = r.summary["msg"]
        assert f"a sauve backup of redis at 127.0.0.1:{src.port} is running (a replica named sauve-backup, " \
               "state wait_bgsave): nothing was changed" in msg, msg
        assert "suspend the backup CronJob" in msg and "\n" not in msg, msg
        assert src.digest() == before
    finally:
        src.cli("CONFIG", "SET", "repl-diskless-sync-delay", "0")
    r = rsauve.finish(p, timeout=120)
    assert r.code == 0, r.describe()
    # once it has ended, the same restore runs (the server kept its data)
    r = restore_online(rsauve, src, "--clean")
    assert r.code == 0, r.describe()
    assert src.digest() == before
