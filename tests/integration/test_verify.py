"""sauve verify, and SAUVE_VERIFY=after-backup: every artifact read back
from storage and checked (presence and size in the listing, size and
SHA-256, then decrypted, decompressed and read whole by pg_restore), a set
made damaged in each way named with the artifact and what is wrong, exit 4
when anything does not verify."""

import json
import os
import subprocess

import pytest

from conftest import make_bindir
from sauvecli import committed_sets, forge_artifact


def only_set(storage):
    (set_dir, m), = committed_sets(storage)
    return set_dir, m


def artifact(m, name):
    return next(a for a in m["artifacts"] if a["name"] == name)


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout


def unzstd(path):
    return subprocess.run(["zstd", "-q", "-d", "-c", path], capture_output=True, check=True).stdout


@pytest.fixture
def one_set(sauve, dbs, storage, small_template):
    db = dbs.clone(small_template)
    env = {"SAUVE_PG_DATABASES": db}
    r = sauve.run("backup", env=env)
    assert r.code == 0, r.describe()
    set_dir, m = only_set(storage)
    return db, env, set_dir, m


def verify(sauve, env, *args):
    r = sauve.run("verify", "--json", *args, env=env)
    report = json.loads(r.stdout) if r.stdout.strip() else None
    return r, report


def test_a_good_set_verifies_whole(sauve, one_set):
    db, env, _set_dir, m = one_set
    r, report = verify(sauve, env)
    assert r.code == 0, r.describe()
    assert report["ok"] is True
    (s,) = report["sets"]
    assert s["id"] == m["id"] and s["ok"]
    by = {a["source"]: a for a in s["artifacts"]}
    assert set(by) == {f"postgres:{db}", "postgres:globals"}
    assert by[f"postgres:{db}"]["checked"] == "content"
    assert "read the whole archive" in by[f"postgres:{db}"]["detail"]
    assert by["postgres:globals"]["checked"] == "content"
    assert "complete" in by["postgres:globals"]["detail"]
    text = sauve.run("verify", env=env, json_stdout=True)
    assert text.code == 0 and f"{m['id']}  ok" in text.stdout, text.describe()
    assert "verify ok: 1 set(s)" in text.summary["msg"]


def _damage(how, set_dir, m, db, workdir):
    a = artifact(m, db)
    path = os.path.join(set_dir, a["key"])
    if how == "missing":
        os.remove(path)
        return a, "is missing"
    if how == "truncated":
        with open(path, "r+b") as f:
            f.truncate(a["bytes_out"] // 2)
        return a, f"is truncated: {a['bytes_out'] // 2} bytes stored, the manifest recorded {a['bytes_out']}"
    if how == "bit flipped":
        with open(path, "r+b") as f:
            f.seek(a["bytes_out"] // 2)
            b = f.read(1)
            f.seek(a["bytes_out"] // 2)
            f.write(bytes([b[0] ^ 0x20]))
        return a, "checksum mismatch"
    if how == "not a dump, manifest forged":
        forge_artifact(set_dir, m, a, zstd(os.urandom(1 << 20)))
        return a, "could not read the archive"
    if how == "dump cut short, manifest forged":
        forge_artifact(set_dir, m, a, zstd(unzstd(path)[: a["bytes_in"] // 2]))
        return a, "could not read the archive"
    if how == "globals cut short, manifest forged":
        g = artifact(m, "globals")
        forge_artifact(set_dir, m, g, zstd(unzstd(os.path.join(set_dir, g["key"]))[:-60]))
        return g, "does not end with pg_dumpall's"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing", "truncated", "bit flipped", "not a dump, manifest forged",
                                 "dump cut short, manifest forged", "globals cut short, manifest forged"])
def test_each_kind_of_damage_is_named_and_exits_4(sauve, one_set, workdir, how):
    db, env, set_dir, m = one_set
    a, what = _damage(how, set_dir, m, db, workdir)
    r, report = verify(sauve, env)
    assert r.code == 4, r.describe()
    bad = [x for x in report["sets"][0]["artifacts"] if not x["ok"]]
    assert [x["source"] for x in bad] == [f"postgres:{a['name']}"], report
    assert what in bad[0]["detail"], bad[0]
    assert a["key"] in r.summary["msg"] or f"postgres:{a['name']}" in r.summary["msg"], r.summary
    assert r.summary["msg"].startswith("verify failed: 1 of 2 artifact(s) do not verify")


def test_all_sets_and_one_bad(sauve, one_set, storage):
    db, env, set_dir, m = one_set
    r = sauve.run("backup", env=env)
    assert r.code == 0, r.describe()
    os.remove(os.path.join(set_dir, artifact(m, db)["key"]))  # the older set
    r, report = verify(sauve, env, "--set", "all")
    assert r.code == 4, r.describe()
    assert [s["ok"] for s in report["sets"]] == [True, False]
    assert report["sets"][1]["id"] == m["id"]
    # latest alone is the newer, good set
    r, report = verify(sauve, env)
    assert r.code == 0 and len(report["sets"]) == 1 and report["sets"][0]["id"] != m["id"], r.describe()


def test_encrypted_sets_integrity_without_the_identity_content_with_it(sauve, dbs, storage, small_template,
                                                                       workdir):
    key = os.path.join(workdir, "ops.key")
    subprocess.run(["age-keygen", "-o", key], check=True, capture_output=True)
    pub = subprocess.run(["age-keygen", "-y", key], check=True, capture_output=True, text=True).stdout.strip()
    db = dbs.clone(small_template)
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_AGE_RECIPIENTS": pub}
    assert sauve.run("backup", env=env).code == 0
    r, report = verify(sauve, env)
    assert r.code == 0, r.describe()
    arts = report["sets"][0]["artifacts"]
    assert all(a["checked"] == "integrity" and "no identity is configured" in a["detail"] for a in arts), arts
    assert "2 for integrity only" in r.summary["msg"]
    with_id = dict(env, SAUVE_AGE_IDENTITY_FILE=key)
    r, report = verify(sauve, with_id)
    assert r.code == 0, r.describe()
    assert all(a["checked"] == "content" and "decrypted" in a["detail"] for a in report["sets"][0]["artifacts"])
    # a flipped bit under a forged manifest: only the ciphertext's own tags see it
    set_dir, m = only_set(storage)
    a = artifact(m, db)
    with open(os.path.join(set_dir, a["key"]), "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 1
    forge_artifact(set_dir, m, a, bytes(data))
    r, report = verify(sauve, env)
    assert r.code == 0, r.describe()  # integrity holds: the forger fixed the digest
    r, report = verify(sauve, with_id)
    assert r.code == 4, r.describe()
    assert "age payload" in [x for x in report["sets"][0]["artifacts"] if not x["ok"]][0]["detail"]


def test_verify_after_backup_catches_a_dump_cut_short_and_prunes_nothing(sauve, dbs, storage, small_template,
                                                                          workdir):
    db = dbs.clone(small_template)
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_VERIFY": "after-backup", "SAUVE_KEEP_LAST": "1"}
    r = sauve.run("backup", env=env)
    assert r.code == 0, r.describe()
    assert "verified (2 read whole, 0 for integrity only)" in r.summary["msg"]
    (good_dir, _), = committed_sets(storage)
    # a pg_dump that stops half-way yet exits 0: the backup itself cannot tell
    fake = make_bindir(workdir, {"pg_dump": '"$REAL" "$@" | head -c 300000'})
    r = sauve.run("backup", env=dict(env, SAUVE_PG_BINDIR=fake))
    assert r.code == 4, r.describe()
    assert "VERIFY FAILED" in r.summary["msg"] and f"postgres:{db}" in r.summary["msg"], r.summary
    assert r.any_line("prune skipped"), r.describe()
    # both sets are there: the bad one did not let the good one go
    assert len(committed_sets(storage)) == 2
    assert os.path.isdir(good_dir)
