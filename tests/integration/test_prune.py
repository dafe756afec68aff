"""Retention on local storage: `sauve prune` plans and deletes exactly the
sets its plan names, deletes manifests first, removes crashed writes after
the grace period, and `sauve backup` prunes after a committed set only.

A history of many days cannot be waited for, so the tests make one real
backup and then plant older sets by copying that set's directory under new
ids: the manifest's id, started_at and finished_at are rewritten to the new
time (everything else, checksums included, stays valid because the objects
are the same bytes), and every file's mtime is set to the planted time, as
if it had been written then."""

import datetime
import json
import os
import re
import shutil
import subprocess
import time

from zoneinfo import ZoneInfo

import pytest

from sauvecli import committed_sets, set_dirs, snapshot

DAY = 86400


def set_id(t):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def series_dir(storage, name="default"):
    return os.path.join(storage, name)


def set_times(path, t):
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            os.utime(os.path.join(dirpath, f), (t, t))


def plant(storage, src_dir, t):
    """A copy of the set at src_dir, taken at t (unix seconds). Returns its id."""
    sid = set_id(t)
    dst = os.path.join(os.path.dirname(src_dir), sid)
    shutil.copytree(src_dir, dst)
    mpath = os.path.join(dst, "manifest.json")
    with open(mpath, encoding="utf-8") as f:
        m = json.load(f)
    m["id"] = sid
    m["started_at"] = iso(t)
    m["finished_at"] = iso(t + int(m["duration_seconds"]))
    with open(mpath, "w", encoding="utf-8") as f:
        json.dump(m, f, indent=2)
    set_times(dst, t + 30)
    return sid


@pytest.fixture
def real_set(pg, sauve, dbs, storage, small_template):
    """(env, set dir) after one real backup of a small database."""
    db = dbs.clone(small_template)
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_PRUNE": "false"}
    r = sauve.run("backup", env=env)
    assert r.code == 0, r.describe()
    (d, _m), = committed_sets(storage)
    return env, d


@pytest.fixture
def history(real_set, storage):
    """The real set plus 10 planted sets, one a day at 02:00 UTC going back
    from yesterday. Returns (env, ids newest first)."""
    env, d = real_set
    midnight = int(time.time()) // DAY * DAY
    planted = [plant(storage, d, midnight - (i + 1) * DAY + 2 * 3600) for i in range(10)]
    return env, [os.path.basename(d)] + planted


def ids_on_disk(storage):
    return sorted((os.path.basename(d) for d in set_dirs(storage)), reverse=True)


def plan_json(sauve, env, *extra):
    r = sauve.run("prune", "--dry-run", "--json", *extra, env=env)
    assert r.code == 0, r.describe()
    return json.loads(r.stdout)


class Undeletable:
    """Makes one file impossible to delete: as root, the immutable attribute
    (root ignores permissions); otherwise a read-only directory."""

    def __init__(self, path):
        self.path = path
        self.root = os.geteuid() == 0
        if self.root:
            r = subprocess.run(["chattr", "+i", path], capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip(f"chattr +i is not possible here: {r.stderr.strip()}")
        else:
            os.chmod(os.path.dirname(path), 0o555)

    def undo(self):
        if self.root:
            subprocess.run(["chattr", "-i", self.path], check=True)
        else:
            os.chmod(os.path.dirname(self.path), 0o755)


@pytest.fixture
def undeletable():
    made = []

    def make(path):
        u = Undeletable(path)
        made.append(u)
        return u

    yield make
    for u in made:
        try:
            u.undo()
        except Exception:
            pass


# ---- prune ----------------------------------------------------------------

def test_dry_run_prints_the_plan_and_changes_nothing(sauve, storage, history):
    env, ids = history
    env = dict(env, SAUVE_KEEP_LAST="2", SAUVE_KEEP_WEEKLY="2")
    before = snapshot(storage)
    r = sauve.run("prune", "--dry-run", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    print(r.stdout)
    assert "policy: last 2, weekly 2" in r.stdout
    assert "calendar periods in UTC" in r.stdout
    lines = {l.split()[0]: l for l in r.stdout.splitlines() if re.match(r"^\d{8}T\d{6}Z(-[0-9a-f]+)? ", l)}
    assert sorted(lines, reverse=True) == ids
    assert re.search(r"keep\s+ok\s+newest complete \(always kept\), last \(1 of 2\), weekly ", lines[ids[0]])
    assert re.search(r"keep\s+ok\s+last \(2 of 2\)", lines[ids[1]])
    deleted = [i for i in ids if " delete " in lines[i]]
    assert len(deleted) >= 6, r.stdout
    for i in deleted:
        assert "not kept by any rule" in lines[i]
    assert "nothing was deleted" in r.summary["msg"]
    assert snapshot(storage) == before, "a dry run changed the storage"

    plan = plan_json(sauve, env)
    assert [s["id"] for s in plan["sets"]] == ids
    assert plan["dry_run"] is True
    assert plan["policy"]["keep_last"] == 2 and plan["policy"]["keep_daily"] is None
    assert plan["policy"]["grace"] == "24h"
    assert sorted(s["id"] for s in plan["sets"] if s["action"] == "delete") == sorted(deleted)
    assert plan["result"]["deleted"] == 0
    assert snapshot(storage) == before


def test_prune_deletes_exactly_the_plan_and_keeps_the_rest_byte_identical(sauve, storage, history):
    env, ids = history
    env = dict(env, SAUVE_KEEP_LAST="3", SAUVE_KEEP_WEEKLY="2")
    plan = plan_json(sauve, env)
    keep = [s["id"] for s in plan["sets"] if s["action"] == "keep"]
    delete = [s["id"] for s in plan["sets"] if s["action"] == "delete"]
    assert keep and delete
    kept_before = {i: snapshot(os.path.join(series_dir(storage), i)) for i in keep}

    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    assert f"{len(delete)} set(s) deleted" in r.summary["msg"], r.describe()
    assert ids_on_disk(storage) == keep
    for i in keep:
        assert snapshot(os.path.join(series_dir(storage), i)) == kept_before[i], i
    for i in delete:
        assert r.any_line("deleted set", i), f"no log line for the deletion of {i}\n{r.describe()}"

    lst = sauve.run("list", "--json", env=env)
    assert lst.code == 0, lst.describe()
    for s in json.loads(lst.stdout)["sets"]:
        assert s["retention"]["keep"] is True, s
        assert s["retention"]["reasons"], s

    # Applying the same policy again finds nothing to do.
    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 0 and "0 set(s) deleted" in r.summary["msg"], r.describe()


def test_empty_policy_keeps_everything_and_says_so(sauve, storage, history):
    env, ids = history
    before = snapshot(storage)
    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    assert "policy: none configured" in r.stdout
    assert "no retention policy configured" in r.stdout
    assert snapshot(storage) == before


def test_every_rule_zero_keeps_only_the_newest(sauve, storage, history):
    env, ids = history
    env = dict(env, SAUVE_KEEP_LAST="0", SAUVE_KEEP_DAILY="0", SAUVE_KEEP_WEEKLY="0",
               SAUVE_KEEP_MONTHLY="0", SAUVE_KEEP_YEARLY="0", SAUVE_KEEP_HOURLY="0")
    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    assert ids_on_disk(storage) == [ids[0]]


def test_keep_within_and_a_bad_duration(sauve, storage, history):
    env, ids = history
    plan = plan_json(sauve, dict(env, SAUVE_KEEP_WITHIN="3d"))
    kept = [s for s in plan["sets"] if s["action"] == "keep"]
    assert all("within 3d" in s["reasons"] for s in kept[1:]), kept
    assert 3 <= len(kept) <= 4, kept

    r = sauve.run("prune", env=dict(env, SAUVE_KEEP_WITHIN="14"))
    assert r.code == 78, r.describe()
    assert "SAUVE_KEEP_WITHIN" in r.summary["msg"] and "not a duration" in r.summary["msg"]


def test_daily_periods_follow_tz(sauve, storage, real_set):
    """Two sets half an hour either side of midnight in Paris, ten days ago,
    on the same UTC day: keep.daily counts two days in Europe/Paris, one in
    UTC."""
    env, d = real_set
    paris = ZoneInfo("Europe/Paris")
    day = datetime.datetime.fromtimestamp(time.time() - 10 * DAY, paris).date()
    midnight = datetime.datetime.combine(day, datetime.time(0, 0), tzinfo=paris).timestamp()
    a = plant(storage, d, int(midnight) - 1800)
    b = plant(storage, d, int(midnight) + 1800)
    assert a[:8] == b[:8], "both on one UTC day"
    env = dict(env, SAUVE_KEEP_DAILY="3")
    utc = {s["id"]: s for s in plan_json(sauve, env)["sets"]}
    assert utc[b]["action"] == "keep" and utc[a]["action"] == "delete", (utc[a], utc[b])
    plan = plan_json(sauve, dict(env, TZ="Europe/Paris"))
    assert plan["time_zone"] == "Europe/Paris"
    in_paris = {s["id"]: s for s in plan["sets"]}
    assert in_paris[a]["action"] == "keep" and in_paris[b]["action"] == "keep", (in_paris[a], in_paris[b])
    assert f"daily {day - datetime.timedelta(days=1)}" in in_paris[a]["reasons"], in_paris[a]
    assert f"daily {day}" in in_paris[b]["reasons"], in_paris[b]


def test_manifest_is_deleted_first_so_a_half_deleted_set_is_incomplete(sauve, storage, history, undeletable):
    env, ids = history
    env = dict(env, SAUVE_KEEP_LAST="2")
    victim = ids[5]
    vdir = os.path.join(series_dir(storage), victim)
    data = [p for p in (os.path.join(dp, f) for dp, _d, fs in os.walk(vdir) for f in fs)
            if not p.endswith("manifest.json")]
    u = undeletable(data[0])

    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 1, r.describe()
    key = os.path.relpath(data[0], storage)
    assert key in r.summary["msg"], r.describe()
    assert not os.path.exists(os.path.join(vdir, "manifest.json")), "the manifest survived"
    assert os.path.exists(data[0])
    # Every other set of the plan went; the victim is now incomplete, not ok.
    assert ids_on_disk(storage) == sorted(ids[:2] + [victim], reverse=True)
    lst = json.loads(sauve.run("list", "--json", env=env).stdout)
    status = {s["id"]: s["status"] for s in lst["sets"]}
    assert status[victim] == "incomplete", status
    assert status[ids[0]] == "ok" and status[ids[1]] == "ok"

    # Once the storage is fixed, the next prune removes the remains.
    u.undo()
    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    assert ids_on_disk(storage) == ids[:2]


def test_crashed_writes_are_removed_after_the_grace_period(sauve, storage, history):
    env, ids = history
    now = time.time()
    sdir = series_dir(storage)
    # A crashed first write: the set directory holds only a temp file.
    crashed = os.path.join(sdir, set_id(now - 3 * DAY), "postgres")
    os.makedirs(crashed)
    old = os.path.join(crashed, ".app.dump.zst.tmp-Q7xYz1")
    # A write in progress in the newest set's directory.
    young = os.path.join(sdir, ids[0], "postgres", ".other.dump.zst.tmp-Ab12Cd")
    for p in (old, young):
        with open(p, "wb") as f:
            f.write(b"half an object")
    os.utime(old, (now - 2 * DAY, now - 2 * DAY))

    plan = plan_json(sauve, env)
    ups = {u["key"]: u["action"] for u in plan["uploads"]}
    assert ups == {
        os.path.relpath(os.path.join(crashed, "app.dump.zst"), storage): "remove",
        f"default/{ids[0]}/postgres/other.dump.zst": "keep",
    }, ups
    assert os.path.exists(old)

    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    assert "1 interrupted write(s) removed" in r.summary["msg"], r.describe()
    assert not os.path.exists(old)
    assert not os.path.exists(os.path.dirname(crashed)), "the emptied set directory stayed"
    assert os.path.exists(young)
    assert len(ids_on_disk(storage)) == len(ids)

    # With a shorter grace period the young one is still young (written now).
    r = sauve.run("prune", env=dict(env, SAUVE_PRUNE_GRACE="1h"), json_stdout=True)
    assert r.code == 0 and os.path.exists(young), r.describe()


# ---- prune after backup -------------------------------------------------------

def test_backup_prunes_to_keep_last_after_its_commit(sauve, storage, history):
    env, ids = history
    r = sauve.run("backup", env=dict(env, SAUVE_PRUNE="true", SAUVE_KEEP_LAST="2"))
    assert r.code == 0, r.describe()
    assert "backup ok" in r.summary["msg"] and "pruned 10 set(s), 2 kept" in r.summary["msg"], r.describe()
    on_disk = ids_on_disk(storage)
    assert len(on_disk) == 2 and on_disk[1] == ids[0], on_disk
    assert len(committed_sets(storage)) == 2


def test_prune_is_on_by_default_and_off_with_sauve_prune_false(sauve, storage, history):
    env, ids = history
    env = {k: v for k, v in env.items() if k != "SAUVE_PRUNE"}
    r = sauve.run("backup", env=dict(env, SAUVE_PRUNE="false", SAUVE_KEEP_LAST="1"))
    assert r.code == 0, r.describe()
    assert len(ids_on_disk(storage)) == len(ids) + 1
    assert "prune" not in r.summary["msg"]

    r = sauve.run("backup", env=dict(env, SAUVE_KEEP_LAST="1"))
    assert r.code == 0, r.describe()
    assert len(ids_on_disk(storage)) == 1


def test_failed_backup_prunes_nothing(sauve, storage, history):
    env, ids = history
    before = snapshot(storage)
    r = sauve.run("backup", env=dict(env, SAUVE_PRUNE="true", SAUVE_KEEP_LAST="1",
                                     PGPASSWORD="wrong-password-for-sure"))
    assert r.code == 75, r.describe()
    assert snapshot(storage) == before
    assert not r.any_line("prune"), r.describe()


def test_prune_failure_after_a_backup_exits_3(sauve, storage, history, undeletable):
    env, ids = history
    victim = os.path.join(series_dir(storage), ids[4])
    data = [os.path.join(dp, f) for dp, _d, fs in os.walk(victim) for f in fs if f != "manifest.json"]
    undeletable(data[0])
    r = sauve.run("backup", env=dict(env, SAUVE_PRUNE="true", SAUVE_KEEP_LAST="1"))
    assert r.code == 3, r.describe()
    msg = r.summary["msg"]
    assert msg.startswith("backup ok") and "prune failed" in msg, msg
    assert os.path.relpath(data[0], storage) in msg, msg
    new = [d for d in ids_on_disk(storage) if d not in ids]
    assert len(new) == 1 and os.path.exists(os.path.join(series_dir(storage), new[0], "manifest.json"))
    assert not os.path.exists(os.path.join(victim, "manifest.json"))


# ---- list -----------------------------------------------------------------------

def test_list_says_why_each_set_is_kept(sauve, storage, history):
    env, ids = history
    env = dict(env, SAUVE_KEEP_LAST="2", SAUVE_KEEP_DAILY="4")
    lst = sauve.run("list", "--json", env=env)
    assert lst.code == 0, lst.describe()
    sets = {s["id"]: s["retention"] for s in json.loads(lst.stdout)["sets"]}
    assert sets[ids[0]]["keep"] and "last (1 of 2)" in sets[ids[0]]["reasons"]
    assert any(r.startswith("daily ") for r in sets[ids[3]]["reasons"])
    assert sets[ids[-1]] == {"keep": False, "reasons": ["not kept by any rule"]}

    text = sauve.run("list", env=env, json_stdout=True)
    assert text.code == 0, text.describe()
    assert "retention: last 2, daily 4 (calendar periods in UTC)" in text.stdout
    assert "next prune deletes it: not kept by any rule" in text.stdout
    assert "kept: newest complete (always kept), last (1 of 2), daily " in text.stdout


# ---- what prune must never delete ---------------------------------------------

def edit_manifest(storage, sid, edit):
    """Rewrites the manifest of set sid with edit(m), keeping its mtime."""
    mpath = os.path.join(series_dir(storage), sid, "manifest.json")
    st = os.stat(mpath)
    with open(mpath, encoding="utf-8") as f:
        m = json.load(f)
    edit(m)
    with open(mpath, "w", encoding="utf-8") as f:
        json.dump(m, f, indent=2)
    os.utime(mpath, (st.st_atime, st.st_mtime))


def fail_artifacts(m):
    """A partial set: every artifact failed."""
    for a in m["artifacts"]:
        a.update(status="failed", error="pg_dump: out of shared memory", key=None, sha256=None)
    m["status"] = "partial"
    m["totals"].update(bytes_in=0, bytes_out=0, failed=len(m["artifacts"]))


def test_a_set_with_an_invalid_manifest_is_kept(sauve, storage, history):
    env, ids = history
    env = dict(env, SAUVE_KEEP_LAST="1")
    mpath = os.path.join(series_dir(storage), ids[4], "manifest.json")
    with open(mpath, "a", encoding="utf-8") as f:
        f.write("trailing junk")  # two days older than the grace period
    os.utime(mpath, (time.time() - 4 * DAY, time.time() - 4 * DAY))

    plan = {s["id"]: s for s in plan_json(sauve, env)["sets"]}
    assert plan[ids[4]]["action"] == "keep", plan[ids[4]]
    assert plan[ids[4]]["status"] == "unreadable"
    assert plan[ids[4]]["reasons"] == ["manifest unreadable or invalid (never deleted)"]
    assert plan[ids[4]]["problem"].startswith("manifest invalid: "), plan[ids[4]]

    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    assert ids_on_disk(storage) == [ids[0], ids[4]]


def test_a_set_dated_in_the_future_is_kept_and_not_counted(sauve, storage, real_set):
    env, d = real_set
    now = int(time.time())
    future = plant(storage, d, now + 30 * DAY)
    older = [plant(storage, d, now - (i + 1) * DAY) for i in range(3)]
    env = dict(env, SAUVE_KEEP_LAST="2")
    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    assert r.any_line(future, "dated more than an hour after now", level="warn"), r.describe()
    # Without the rule, the future set would take the newest slot and the
    # real newest set would be the 2nd of 2: the 1st of 3 older would go.
    assert ids_on_disk(storage) == [future, os.path.basename(d), older[0]]
    plan = {s["id"]: s for s in plan_json(sauve, env)["sets"]}
    assert plan[future]["reasons"] == ["dated in the future (clock skew?), not counted"]
    assert "newest complete (always kept)" in plan[os.path.basename(d)]["reasons"]


def test_safety_copies_take_no_slot_and_go_after_7_days(sauve, storage, history):
    env, ids = history
    for sid in (ids[1], ids[8]):
        edit_manifest(storage, sid, lambda m: m.update(reason="safety", note="before restore of postgres:x"))
    env = dict(env, SAUVE_KEEP_LAST="3")
    plan = {s["id"]: s for s in plan_json(sauve, env)["sets"]}
    assert plan[ids[1]]["reasons"] == ["safety copy, kept 7 days"], plan[ids[1]]
    assert plan[ids[1]]["safety"] is True
    assert "last (2 of 3)" in plan[ids[2]]["reasons"] and "last (3 of 3)" in plan[ids[3]]["reasons"]
    assert plan[ids[8]] == dict(plan[ids[8]], action="delete", reasons=["safety copy older than 7 days"])
    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    assert ids_on_disk(storage) == ids[:4]


def test_the_newest_good_copy_of_each_source_is_kept(sauve, storage, history):
    env, ids = history
    for sid in ids[:6]:  # the database failed the last six nights
        edit_manifest(storage, sid, fail_artifacts)
    (art,) = json.load(open(os.path.join(series_dir(storage), ids[6], "manifest.json")))["artifacts"]
    source = f"{art['kind']}:{art['name']}"
    env = dict(env, SAUVE_KEEP_LAST="2")
    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    assert ids_on_disk(storage) == ids[:2] + [ids[6]]
    plan = {s["id"]: s for s in plan_json(sauve, env)["sets"]}
    assert plan[ids[6]]["reasons"] == [f"newest good copy of {source}"], plan[ids[6]]


def test_a_damaged_set_is_shown_kept_and_protects_nothing(sauve, storage, history, dbs):
    """The newest set's dump is deleted behind sauve's back (a lifecycle
    rule, an operator), the next one's truncated: with keep.last 1 the
    older good set must stay, and nothing damaged is deleted either."""
    env, ids = history
    (art,) = json.load(open(os.path.join(series_dir(storage), ids[0], "manifest.json")))["artifacts"]
    os.remove(os.path.join(series_dir(storage), ids[0], art["key"]))
    cut = os.path.join(series_dir(storage), ids[1], art["key"])
    with open(cut, "r+b") as f:
        f.truncate(art["bytes_out"] - 1)
    env = dict(env, SAUVE_KEEP_LAST="1")

    lst = json.loads(sauve.run("list", "--json", env=env).stdout)["sets"]
    by_id = {s["id"]: s for s in lst}
    assert by_id[ids[0]]["status"] == "damaged"
    assert by_id[ids[0]]["damage"] == f"{art['key']} is missing"
    assert by_id[ids[0]]["artifacts"][0]["status"] == "damaged"
    assert by_id[ids[1]]["damage"] == (f"{art['key']} is truncated: {art['bytes_out'] - 1} bytes stored, "
                                       f"the manifest recorded {art['bytes_out']}")
    text = sauve.run("list", env=env, json_stdout=True).stdout
    assert re.search(rf"{ids[0]}\s+damaged\s", text), text
    assert "(DAMAGED)" in text

    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    assert r.any_line("damaged", ids[0], level=("warn",)), r.describe()
    # the two damaged sets and the newest intact one (ids[2]) stay
    assert ids_on_disk(storage) == ids[:3]
    plan = {s["id"]: s for s in plan_json(sauve, env)["sets"]}
    assert plan[ids[2]]["reasons"][:2] == ["newest complete (always kept)", "last (1 of 1)"], plan[ids[2]]
    assert plan[ids[0]]["reasons"] == [
        f"damaged: {art['key']} is missing (never deleted, not counted as a copy)"]

    # restore of "latest" skips the set whose copy is damaged
    db = art["name"]
    target = dbs.name("fromgood")
    r = sauve.run("restore", f"postgres:{db}", "--into", target, "--yes", env=env)
    assert r.code == 0, r.describe()
    assert r.any_line("restoring from", ids[2]), r.describe()


def test_keep_within_under_an_hour_is_refused(sauve, storage, history):
    env, ids = history
    before = snapshot(storage)
    r = sauve.run("prune", env=dict(env, SAUVE_KEEP_WITHIN="6m"))
    assert r.code == 78, r.describe()
    assert "SAUVE_KEEP_WITHIN" in r.summary["msg"] and "out of range" in r.summary["msg"], r.describe()
    assert snapshot(storage) == before


def test_an_upload_of_unknown_start_is_kept(sauve, storage, history):
    env, ids = history
    tmp = os.path.join(series_dir(storage), ids[3], "postgres", ".lost.dump.zst.tmp-Zz99Yy")
    os.makedirs(os.path.dirname(tmp), exist_ok=True)
    with open(tmp, "wb") as f:
        f.write(b"half an object")
    os.utime(tmp, (0, 0))  # as if its start time could not be read
    r = sauve.run("prune", env=env, json_stdout=True)
    assert r.code == 0, r.describe()
    assert os.path.exists(tmp)
    assert r.any_line("no known start time", level="warn"), r.describe()
