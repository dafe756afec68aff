"""sauve against what it does not control. Text it did not write (a
forged manifest in the bucket, a hostile database name on the server) is
escaped on a terminal (control characters as \\xNN), so that it cannot move
the cursor, set the window title, or print lines that look like sauve's
own; --json keeps it exact. A running sauve is not dumpable and writes no
core file, nor do its children."""

import json
import os
import pwd
import shutil
import subprocess

from pglock import HeldLock
from pgserver import PG_BINDIR, quote_ident
from sauvecli import committed_sets, sauve_bin, wait_for

# Clear the screen, set the window title, a C1 CSI (some terminals obey it
# like ESC [), a right-to-left override, and a new line that starts a line
# looking like a set of `sauve list` and a check of `sauve check`.
HOSTILE = ("\x1b[2J\x1b]0;pwned\x07\x9b31m\u202e"
           "\nok  20990101T000000Z  fake line")
FORGED_ID = "20200101T000000Z"
BROKEN_ID = "20200102T000000Z"


def raw_controls(text):
    """Characters that must never reach a terminal raw."""
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f
           or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"]
    return bad


def forge_sets(storage, good_dir):
    """Next to a real set: a set whose valid manifest carries hostile text
    in every free-text field it has, and a set whose manifest is invalid
    because of a hostile key (its problem quotes the key)."""
    with open(os.path.join(good_dir, "manifest.json"), encoding="utf-8") as f:
        m = json.load(f)
    real = m["artifacts"][0]
    failed = dict(real, name="evil" + HOSTILE, key=None, status="failed",
                  error="dump failed: " + HOSTILE, sha256=None)
    m.update(id=FORGED_ID, reason="safety", note="before restore " + HOSTILE,
             hostname="host" + HOSTILE, status="partial", artifacts=[real, failed])
    m["totals"].update(artifacts=2, failed=1)
    forged_dir = os.path.join(os.path.dirname(good_dir), FORGED_ID)
    shutil.copytree(good_dir, forged_dir)
    with open(os.path.join(forged_dir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(m, f)

    broken = dict(m, id=BROKEN_ID, status="ok", reason="backup",
                  artifacts=[dict(real, key="postgres/" + HOSTILE)])
    broken["totals"] = dict(m["totals"], artifacts=1, failed=0)
    broken_dir = os.path.join(os.path.dirname(good_dir), BROKEN_ID)
    shutil.copytree(good_dir, broken_dir)
    with open(os.path.join(broken_dir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(broken, f)


def assert_escaped(out, what):
    assert not raw_controls(out), f"{what} sent raw control characters: {raw_controls(out)!r}\n{out}"
    assert not [l for l in out.splitlines() if l.startswith("ok  20990101T000000Z")], (
        f"{what} printed a line the manifest made up\n{out}")
    assert "\\x1b[2J\\x1b]0;pwned\\x07\\xc2\\x9b31m\\xe2\\x80\\xae\\x0aok  20990101T000000Z" in out, (
        f"{what} does not show the hostile text escaped\n{out}")


def test_list_and_prune_escape_what_a_forged_manifest_says(pg, sauve, dbs, storage):
    db = dbs.empty("esc")
    pg.psql(db, "create table t (x int); insert into t values (1)")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false"})
    assert r.code == 0, r.describe()
    (good_dir, _), = committed_sets(storage)
    forge_sets(storage, good_dir)

    r = sauve.run("list", env={"SAUVE_PG_DATABASES": db}, json_stdout=True)
    assert r.code == 0, r.describe()
    assert FORGED_ID in r.stdout and BROKEN_ID in r.stdout, r.stdout
    assert_escaped(r.stdout, "sauve list")
    assert "manifest invalid" in r.stdout, r.stdout

    # --json is for programs: the text is exact there, JSON-escaped
    r = sauve.run("list", "--json", env={"SAUVE_PG_DATABASES": db})
    assert r.code == 0, r.describe()
    assert not raw_controls(r.stdout)
    sets = {s["id"]: s for s in json.loads(r.stdout)["sets"]}
    assert sets[FORGED_ID]["note"] == "before restore " + HOSTILE
    assert sets[FORGED_ID]["artifacts"][1]["error"] == "dump failed: " + HOSTILE
    assert HOSTILE in sets[BROKEN_ID]["problem"]

    r = sauve.run("prune", "--dry-run", env={"SAUVE_KEEP_LAST": "1"}, json_stdout=True)
    assert r.code == 0, r.describe()
    assert "safety copy: before restore" in r.stdout, r.stdout
    assert_escaped(r.stdout, "sauve prune --dry-run")


def test_check_and_the_termination_log_escape_a_hostile_database_name(pg, sauve, dbs):
    # registered whole, so that teardown drops it (a database left behind
    # breaks any later test that backs up "all")
    name = dbs.expect(dbs.name("evil") + "\x1b[31m\nFAIL postgres:fake")
    pg.psql("postgres", f"create database {quote_ident(name)}")
    env = {"SAUVE_PG_DATABASES": name, "SAUVE_PG_GLOBALS": "false"}
    # sauve cannot store a database of that name (78), and says so
    r = sauve.run("check", env=env, json_stdout=True, check_log=False)
    assert r.code == 78, r.describe()
    escaped = "\\x1b[31m\\x0aFAIL postgres:fake"
    lines = r.stdout.splitlines()
    assert not raw_controls(r.stdout), r.stdout
    assert not [l for l in lines if l.startswith("FAIL postgres:fake")], r.stdout
    assert [l for l in lines if l.startswith("FAIL postgres:evil_") and escaped in l], r.stdout
    # kubectl describe prints the termination log to a terminal too
    assert r.termination.count("\n") == 1 and not raw_controls(r.termination), repr(r.termination)
    assert escaped in r.termination, repr(r.termination)
    # JSON keeps the name exact, in ASCII
    r = sauve.run("check", "--json", env=env, check_log=False)
    assert r.code == 78, r.describe()
    assert not raw_controls(r.stdout)
    assert f"postgres:{name}" in [c["what"] for c in json.loads(r.stdout)["checks"]]


def _children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def _core_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        line, = [l for l in f if l.startswith("Max core file size")]
    return line.split()[4:6]


def _uid(pid):
    with open(f"/proc/{pid}/status") as f:
        line, = [l for l in f if l.startswith("Uid:")]
    return int(line.split()[1])


def test_a_running_sauve_is_not_dumpable_and_its_dump_writes_no_core(pg, dbs, workdir):
    """sauve runs as nobody, its pg_dump blocked on the test's lock: the
    kernel gives the /proc files of a non-dumpable process to root, and
    both processes have a core size limit of 0, soft and hard."""
    nobody = pwd.getpwnam("nobody")
    db = dbs.empty("core")
    pg.psql(db, "create table t (x int); insert into t values (1)")
    run_dir = os.path.join(workdir, "nobody")
    os.mkdir(run_dir)
    os.chmod(run_dir, 0o777)
    env = {"PATH": "/usr/bin:/bin", "HOME": run_dir, "TZ": "UTC",
           "SAUVE_STORAGE": "file://" + os.path.join(run_dir, "storage"),
           "SAUVE_TERMINATION_LOG": os.path.join(run_dir, "termination.log"),
           "SAUVE_PG_BINDIR": PG_BINDIR, "SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false",
           **pg.tcp_env()}
    with HeldLock(pg, db, "lock table t in access exclusive mode") as lock:
        p = subprocess.Popen([sauve_bin(), "backup"], env=env, cwd=run_dir, user=nobody.pw_uid,
                             group=nobody.pw_gid, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: lock.blocked() or p.poll() is not None, 60,
                     "sauve's pg_dump to wait for the test's lock")
            assert p.poll() is None, p.communicate()
            assert _uid(p.pid) == nobody.pw_uid
            assert os.stat(f"/proc/{p.pid}/status").st_uid == 0, (
                "sauve is dumpable: its /proc files belong to its own user")
            assert _core_limit(p.pid) == ["0", "0"]
            dump, = [c for c in _children(p.pid)]
            assert _core_limit(dump) == ["0", "0"], "pg_dump may write a core file"
        finally:
            lock.release()
            out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()


# What the PostgreSQL tools may inherit (pg_child_env_keep), and what sauve
# itself sets for them (pg_child_env).
CHILD_ENV_KEEP = {
    "PGHOSTADDR", "PGSERVICE", "PGSERVICEFILE", "PGSYSCONFDIR", "PGOPTIONS", "PGPASSFILE", "PGREQUIRESSL",
    "PGREQUIREAUTH", "PGCHANNELBINDING", "PGGSSENCMODE", "PGGSSLIB", "PGGSSDELEGATION", "PGKRBSRVNAME",
    "PGREQUIREPEER", "PGCONNECT_TIMEOUT", "PGCLIENTENCODING", "PGDATESTYLE", "PGTZ", "PGGEQO",
    "PGTARGETSESSIONATTRS", "PGLOADBALANCEHOSTS", "PGMINPROTOCOLVERSION", "PGMAXPROTOCOLVERSION",
    "PGLOCALEDIR", "HOME", "KRB5CCNAME", "KRB5_CONFIG", "SSL_CERT_FILE", "SSL_CERT_DIR", "LANG",
    "LANGUAGE", "TZ", "TZDIR"}
CHILD_ENV_SET = {"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGSSLMODE", "PGAPPNAME", "PGCONNECT_TIMEOUT"}


def allowed_in_child(name):
    return name in CHILD_ENV_KEEP or name in CHILD_ENV_SET or name.startswith(("PGSSL", "LC_"))


def recording_bindir(parent, tools=("pg_dump", "pg_dumpall")):
    """A SAUVE_PG_BINDIR whose tools record the environment they were
    started with (/proc/PID/environ, as exec gave it, before bash adds
    anything) and their arguments, then run the real tool. A stand-in is
    right here: what is tested is what sauve hands its children."""
    d = os.path.join(parent, "recbin")
    os.mkdir(d)
    for tool in os.listdir(PG_BINDIR):
        path = os.path.join(d, tool)
        if tool not in tools:
            os.symlink(os.path.join(PG_BINDIR, tool), path)
            continue
        with open(path, "w") as f:
            f.write(f"""#!/bin/bash
/bin/cat /proc/$$/environ > "{d}/call.$$.env"
printf '%s\\n' "{tool}" "$@" > "{d}/call.$$.args"
exec "{PG_BINDIR}/{tool}" "$@"
""")
        os.chmod(path, 0o755)
    return d


def recorded_calls(d):
    """[(argv, {name: value})] of every recorded call."""
    calls = []
    for name in sorted(os.listdir(d)):
        if name.startswith("call.") and name.endswith(".args"):
            pid = name[len("call."):-len(".args")]
            with open(os.path.join(d, name)) as f:
                argv = f.read().splitlines()
            with open(os.path.join(d, f"call.{pid}.env"), "rb") as f:
                env = dict(e.decode().split("=", 1) for e in f.read().split(b"\0") if e)
            calls.append((argv, env))
    return calls


def test_postgres_tools_get_an_allow_list_environment(pg, sauve, dbs, workdir):
    db = dbs.empty("env")
    pg.psql(db, "create table t (x int); insert into t values (1)")
    secrets_given = {
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-token-0123456789",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEYID0001",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-for-the-bucket-only",
        "AWS_SESSION_TOKEN": "session-token-abcdefghijkl",
        "SAUVE_NOTIFY_URL": "https://hooks.example/T000/B000/secret-token",
    }
    bindir = recording_bindir(workdir)
    r = sauve.run("backup", env={
        "SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "true", "SAUVE_PG_BINDIR": bindir,
        **secrets_given,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/creds",
        "UNLISTED_VARIABLE": "none of pg_dump's business", "PGDATABASE": db,
        "LC_MESSAGES": "C", "PGSSLROOTCERT": "/nonexistent/root.crt", "PGTZ": "UTC"})
    assert r.code == 0, r.describe()
    calls = recorded_calls(bindir)
    probes = [env for argv, env in calls if "--version" in argv]
    dumps = [(argv[0], env) for argv, env in calls if "--version" not in argv]
    assert probes, f"no version probe recorded: {calls}"
    assert sorted(t for t, _ in dumps) == ["pg_dump", "pg_dumpall"], calls
    password = pg.superuser_password
    for argv, env in calls:
        what = " ".join(argv)
        unlisted = sorted(n for n in env if not allowed_in_child(n))
        assert not unlisted, f"{what} got variables outside the allow-list: {unlisted}"
        for name, value in secrets_given.items():
            assert not any(value in v for v in env.values()), f"{what} got {name}"
        # what the user set for libpq does reach it
        assert env.get("LC_MESSAGES") == "C" and env.get("PGSSLROOTCERT") == "/nonexistent/root.crt", what
        assert env.get("PGTZ") == "UTC" and "HOME" in env, what
    for env in probes:
        assert "PGPASSWORD" not in env, "the version probe needs no password"
    for tool, env in dumps:
        assert env.get("PGPASSWORD") == password, f"{tool} needs the password, through its environment"
        # a backup's sessions are "sauve backup": what a restore looks for (test_restore_guard.py)
        assert env.get("PGAPPNAME") == "sauve backup", tool
