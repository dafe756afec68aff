"""Client-side encryption to age recipients, checked with Debian's `age`
(the reference implementation) as the independent client: what sauve
stores is a standard age file that `age -d` opens, sauve reads what `age -r`
wrote, and damaged ciphertext fails a restore before anything is committed.
The keys are made by `age-keygen`, not by sauve."""

import hashlib
import json
import os
import subprocess

import pytest

from pgdata import assert_same_state, db_state
from pgserver import PG_BINDIR, _harness_env, pg_bin
from sauvecli import Sauve, committed_sets, forge_artifact

AGE_CHUNK = 65536
SEALED_CHUNK = AGE_CHUNK + 16


def keygen(workdir, name):
    """(identity file, public key) made by age-keygen."""
    path = os.path.join(workdir, f"{name}.key")
    subprocess.run(["age-keygen", "-o", path], check=True, capture_output=True)
    pub = subprocess.run(["age-keygen", "-y", path], check=True, capture_output=True,
                         text=True).stdout.strip()
    assert pub.startswith("age1"), pub
    return path, pub


def secret_of(identity_file):
    with open(identity_file) as f:
        return next(l.strip() for l in f if l.startswith("AGE-SECRET-KEY-1"))


@pytest.fixture
def keys(workdir):
    ops = keygen(workdir, "ops")
    glass = keygen(workdir, "breakglass")
    other = keygen(workdir, "other")
    rfile = os.path.join(workdir, "recipients.txt")
    with open(rfile, "w") as f:
        f.write(f"# break-glass key, kept offline\n\n{glass[1]}\n")
    return {"ops": ops, "glass": glass, "other": other, "recipients_file": rfile}


def encrypted_backup(sauve, db, keys, **extra):
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_AGE_RECIPIENTS": keys["ops"][1],
           "SAUVE_AGE_RECIPIENTS_FILE": keys["recipients_file"], **extra}
    r = sauve.run("backup", env=env)
    assert r.code == 0, r.describe()
    return r


def the_artifact(storage, db):
    sets = committed_sets(storage)
    assert len(sets) == 1, sets
    set_dir, m = sets[0]
    a = next(a for a in m["artifacts"] if a["kind"] == "postgres" and a["name"] == db)
    return set_dir, m, a


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def age_decrypt(identity, data):
    p = subprocess.run(["age", "-d", "-i", identity], input=data, capture_output=True)
    assert p.returncode == 0, f"age -d: {p.stderr.decode()}"
    return p.stdout


def restore_with_tools(pg, dump_zst, db):
    """zstd -dc | pg_restore, run by the harness."""
    dump = subprocess.run(["zstd", "-q", "-d", "-c"], input=dump_zst, capture_output=True,
                          check=True).stdout
    p = subprocess.run([pg_bin("pg_restore"), "--exit-on-error", "-h", pg.datadir, "-p", str(pg.port),
                        "-U", "postgres", "-d", db], input=dump, capture_output=True,
                       env=_harness_env())
    assert p.returncode == 0, p.stderr.decode()


def test_encrypted_artifact_is_a_standard_age_file(pg, dbs, small_template, sauve, storage, keys):
    db = dbs.clone(small_template)
    r = encrypted_backup(sauve, db, keys)
    assert not r.any_line("AGE-SECRET-KEY"), r.describe()
    set_dir, m, a = the_artifact(storage, db)
    assert a["key"] == f"postgres/{db}.dump.zst.age"
    assert a["encryption"]["recipients"] == [keys["ops"][1], keys["glass"][1]]
    with open(os.path.join(set_dir, a["key"]), "rb") as f:
        stored = f.read()
    # the digest is the stored ciphertext's: verifiable without any key
    assert sha256(stored) == a["sha256"] and len(stored) == a["bytes_out"]
    assert stored.startswith(b"age-encryption.org/v1\n-> X25519 ")
    assert stored.count(b"\n-> X25519 ") == 2
    assert subprocess.run(["zstd", "-t", "-q"], input=stored, capture_output=True).returncode != 0
    # each recipient alone opens it, with the reference implementation
    plain = age_decrypt(keys["ops"][0], stored)
    assert age_decrypt(keys["glass"][0], stored) == plain
    p = subprocess.run(["age", "-d", "-i", keys["other"][0]], input=stored, capture_output=True)
    assert p.returncode != 0
    restored = dbs.empty("byhand")
    restore_with_tools(pg, plain, restored)
    assert_same_state(db_state(pg, db), db_state(pg, restored), "restored by age -d | zstd -dc | pg_restore")
    # the globals are encrypted too
    g = next(x for x in m["artifacts"] if x["name"] == "globals")
    assert g["key"].endswith(".sql.zst.age") and g["encryption"]["recipients"]


def test_list_and_check_show_the_recipients(dbs, small_template, sauve, storage, keys):
    db = dbs.clone(small_template)
    encrypted_backup(sauve, db, keys)
    r = sauve.run("list", json_stdout=True)
    assert r.code == 0, r.describe()
    assert f"encrypted to: {keys['ops'][1]}, {keys['glass'][1]}" in r.stdout, r.stdout
    j = sauve.run("list", "--json")
    sets = json.loads(j.stdout)["sets"]
    assert sets[0]["encrypted_to"] == [keys["ops"][1], keys["glass"][1]]
    assert all(a["encrypted_to"] == [keys["ops"][1], keys["glass"][1]] for a in sets[0]["artifacts"])
    # key rotation: a new recipient applies to new sets only
    encrypted_backup(sauve, db, keys, SAUVE_AGE_RECIPIENTS=f"{keys['ops'][1]},{keys['other'][1]}")
    sets = json.loads(sauve.run("list", "--json").stdout)["sets"]
    assert sets[0]["encrypted_to"] == [keys["ops"][1], keys["other"][1], keys["glass"][1]]
    assert sets[1]["encrypted_to"] == [keys["ops"][1], keys["glass"][1]]

    c = sauve.run("check", env={"SAUVE_PG_DATABASES": db, "SAUVE_AGE_RECIPIENTS": keys["ops"][1],
                                "SAUVE_AGE_IDENTITY_FILE": keys["glass"][0]}, json_stdout=True)
    assert c.code == 0, c.describe()
    assert f"age, to 1 recipient(s): {keys['ops'][1]}" in c.stdout
    assert f"opens what was encrypted to: {keys['glass'][1]}" in c.stdout
    assert secret_of(keys["glass"][0]) not in c.all_output()


def test_restore_decrypts_with_the_identity_file(pg, dbs, small_template, sauve, storage, keys):
    db = dbs.clone(small_template)
    encrypted_backup(sauve, db, keys)
    target = dbs.name("restored")
    r = sauve.run("restore", f"postgres:{db}", "--into", target, "--yes",
                  env={"SAUVE_AGE_IDENTITY_FILE": keys["glass"][0]})
    assert r.code == 0, r.describe()
    assert_same_state(db_state(pg, db), db_state(pg, target))
    assert secret_of(keys["glass"][0]) not in r.all_output()


def test_restore_without_a_matching_identity_changes_nothing(pg, dbs, small_template, sauve, storage, keys):
    db = dbs.clone(small_template)
    encrypted_backup(sauve, db, keys)
    target = dbs.name("never")
    # no identity at all
    r = sauve.run("restore", f"postgres:{db}", "--into", target, "--yes")
    assert r.code == 78, r.describe()
    assert r.any_line("SAUVE_AGE_IDENTITY_FILE", keys["ops"][1], keys["glass"][1]), r.describe()
    # an identity for someone else
    r = sauve.run("restore", f"postgres:{db}", "--into", target, "--yes",
                  env={"SAUVE_AGE_IDENTITY_FILE": keys["other"][0]})
    assert r.code == 78, r.describe()
    assert r.any_line(keys["other"][1], keys["ops"][1], keys["glass"][1]), r.describe()
    assert secret_of(keys["other"][0]) not in r.all_output()
    assert pg.scalar("postgres", f"select count(*) from pg_database where datname = '{target}'") == "0"


def test_sauve_reads_what_age_wrote(pg, dbs, small_template, sauve, storage, keys):
    """The other direction: an object written by `age -r` restores."""
    db = dbs.clone(small_template)
    encrypted_backup(sauve, db, keys)
    set_dir, m, a = the_artifact(storage, db)
    with open(os.path.join(set_dir, a["key"]), "rb") as f:
        plain = age_decrypt(keys["ops"][0], f.read())
    by_age = subprocess.run(["age", "-r", keys["other"][1]], input=plain, capture_output=True,
                            check=True).stdout
    a["encryption"]["recipients"] = [keys["other"][1]]
    forge_artifact(set_dir, m, a, by_age)
    target = dbs.name("fromage")
    r = sauve.run("restore", f"postgres:{db}", "--into", target, "--yes",
                  env={"SAUVE_AGE_IDENTITY_FILE": keys["other"][0]})
    assert r.code == 0, r.describe()
    assert_same_state(db_state(pg, db), db_state(pg, target))


def _damaged(stored, how):
    hdr_end = stored.index(b"\n---") + 1
    hdr_end = stored.index(b"\n", hdr_end) + 1 + 16  # the MAC line, then the nonce
    payload = len(stored) - hdr_end
    assert payload > 3 * SEALED_CHUNK, "the test needs a dump of several chunks"
    if how == "bit flipped":
        b = bytearray(stored)
        b[hdr_end + 2 * SEALED_CHUNK + 100] ^= 0x01
        return bytes(b)
    if how == "truncated":
        return stored[:hdr_end + 2 * SEALED_CHUNK]
    if how == "reordered":
        c1 = stored[hdr_end:hdr_end + SEALED_CHUNK]
        c2 = stored[hdr_end + SEALED_CHUNK:hdr_end + 2 * SEALED_CHUNK]
        return stored[:hdr_end] + c2 + c1 + stored[hdr_end + 2 * SEALED_CHUNK:]
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["bit flipped", "truncated", "reordered"])
def test_damaged_ciphertext_fails_before_anything_is_committed(pg, dbs, small_template, sauve, storage,
                                                               keys, how):
    db = dbs.clone(small_template)
    pg.psql(db, "create table big_payload as select g, md5(g::text) || repeat('x', 200) as v "
                "from generate_series(1, 20000) g")
    encrypted_backup(sauve, db, keys)
    set_dir, m, a = the_artifact(storage, db)
    with open(os.path.join(set_dir, a["key"]), "rb") as f:
        stored = f.read()
    forge_artifact(set_dir, m, a, _damaged(stored, how))
    # into a new database: it must not be left behind
    target = dbs.name("damaged")
    r = sauve.run("restore", f"postgres:{db}", "--into", target, "--yes",
                  env={"SAUVE_AGE_IDENTITY_FILE": keys["ops"][0]})
    assert r.code == 1, r.describe()
    assert r.any_line("age payload", a["key"]), r.describe()
    assert pg.scalar("postgres", f"select count(*) from pg_database where datname = '{target}'") == "0"
    # over the live database with --clean: it stays as it was
    state = db_state(pg, db)
    r = sauve.run("restore", f"postgres:{db}", "--clean", "--no-safety-backup", "--confirm", db,
                  env={"SAUVE_AGE_IDENTITY_FILE": keys["ops"][0]})
    assert r.code == 1, r.describe()
    assert_same_state(state, db_state(pg, db), f"{db} after the refused restore")


def test_bad_recipient_settings_are_config_errors_that_store_nothing(dbs, small_template, sauve, storage,
                                                                     keys, workdir):
    db = dbs.clone(small_template)
    secret = secret_of(keys["ops"][0])
    cases = [
        ({"SAUVE_AGE_RECIPIENTS": secret}, "identity"),
        ({"SAUVE_AGE_RECIPIENTS": keys["ops"][1][:-1] + ("q" if keys["ops"][1][-1] != "q" else "p")},
         "SAUVE_AGE_RECIPIENTS item 1"),
        ({"SAUVE_AGE_RECIPIENTS_FILE": os.path.join(workdir, "missing.txt")}, "missing.txt"),
        ({"SAUVE_AGE_RECIPIENTS_FILE": keys["ops"][0]}, "line 3"),  # an identity file by mistake
    ]
    for env, needle in cases:
        r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, **env})
        assert r.code == 78, r.describe()
        assert r.any_line(needle), r.describe()
        assert secret not in r.all_output(), r.describe()
    assert committed_sets(storage) == []
    assert not any(files for _, _, files in os.walk(storage)), "a refused backup stored something"


def test_encrypted_backup_and_restore_through_s3(pg, dbs, small_template, workdir, bucket, keys):
    """The same through the RADOS Gateway: the object boto3 reads is the age
    file, and sauve restores it from the bucket."""
    sv = Sauve(workdir, {"SAUVE_PG_BINDIR": PG_BINDIR, **pg.tcp_env(), **bucket.env})
    db = dbs.clone(small_template)
    r = sv.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_AGE_RECIPIENTS": keys["ops"][1]})
    assert r.code == 0, r.describe()
    set_ids = sorted({k.split("/")[2] for k in bucket.keys(f"{bucket.prefix}/default/")})
    assert len(set_ids) == 1
    base = f"{bucket.prefix}/default/{set_ids[0]}/"
    m = json.loads(bucket.get(base + "manifest.json"))
    a = next(a for a in m["artifacts"] if a["name"] == db)
    body = bucket.get(base + a["key"])
    assert a["key"].endswith(".dump.zst.age") and sha256(body) == a["sha256"]
    restored = dbs.empty("s3byhand")
    restore_with_tools(pg, age_decrypt(keys["ops"][0], body), restored)
    target = dbs.name("s3restored")
    r = sv.run("restore", f"postgres:{db}", "--into", target, "--yes",
               env={"SAUVE_AGE_IDENTITY_FILE": keys["ops"][0]})
    assert r.code == 0, r.describe()
    assert_same_state(db_state(pg, db), db_state(pg, target))
    assert_same_state(db_state(pg, db), db_state(pg, restored), "restored by hand from the bucket")
