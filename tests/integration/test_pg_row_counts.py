"""Row counts in the dump's own snapshot, against the real PostgreSQL 15
server: sauve exports a snapshot, runs pg_dump --snapshot with it, and
counts every table pg_dump dumps in that same snapshot; the counts go into
the manifest. Rows committed after the snapshot (while the dump runs) are
neither in the dump nor in the counts, which a restore of the dump proves
by counting its own tables."""

import json
import os

import pytest

from conftest import make_bindir
from pgserver import pg_bin, quote_ident
from sauvecli import artifact, committed_sets


def table_counts(pg, db):
    """(schema, table) -> count(*) of every ordinary table and partition,
    ONLY its own rows (a parent's COPY holds no child rows)."""
    tables = pg.rows(db, """
        select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema')
          and n.nspname !~ '^pg_toast' order by 1, 2""")
    out = {}
    for schema, name in tables:
        out[(schema, name)] = int(pg.scalar(
            db, f"select count(*) from only {quote_ident(schema)}.{quote_ident(name)}"))
    return out


def manifest_counts(art):
    rc = art["row_counts"]
    assert "skipped" not in rc, rc
    return {(t["schema"], t["table"]): (t.get("rows"), t["how"]) for t in rc["tables"]}


@pytest.fixture
def counted_db(pg, dbs, small_template):
    """small_template's tables (partitions included) plus an inheritance
    child, an unlogged table and a table whose name needs quoting."""
    db = dbs.clone(small_template, "rows")
    pg.psql(db, """
        CREATE TABLE public.parent (id int, v text);
        CREATE TABLE public.child (extra int) INHERITS (public.parent);
        INSERT INTO public.parent SELECT g, 'p' FROM generate_series(1, 7) g;
        INSERT INTO public.child SELECT g, 'c', g FROM generate_series(1, 5) g;
        CREATE UNLOGGED TABLE public.scratch (v int);
        INSERT INTO public.scratch SELECT generate_series(1, 11);
        CREATE TABLE public."We.ird name" (v int);
        INSERT INTO public."We.ird name" VALUES (1), (2), (3);
    """)
    return db


def test_counts_are_the_dumps_own_even_with_rows_committed_during_the_dump(pg, sauve, dbs, workdir, storage,
                                                                          counted_db):
    db = counted_db
    at_snapshot = table_counts(pg, db)
    # pg_dump, once sauve has exported its snapshot and before pg_dump
    # imports it, first commits rows in another session: they are after the
    # snapshot, so neither the dump nor the counts may hold them
    psql = pg_bin("psql")
    inserts = ("insert into sales.events select id + 100000000, digest, at, kind, body from sales.events "
               "limit 500; insert into public.child select 100, 'late', 100; "
               "insert into public.\"We.ird name\" values (4)")
    fake = make_bindir(workdir, {"pg_dump": f'"{psql}" -X -q -v ON_ERROR_STOP=1 -d {db} -c {_sh(inserts)} '
                                            f'>> "$DIR/psql.log" 2>&1 || exit 99\n'
                                            'printf "%s\\n" "$@" > "$DIR/pg_dump.argv"\n'
                                            'exec "$REAL" "$@"'})
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false",
                                 "SAUVE_PG_BINDIR": fake})
    assert r.code == 0, r.describe() + open(os.path.join(fake, "psql.log")).read()
    argv = open(os.path.join(fake, "pg_dump.argv")).read().split("\n")
    assert any(a.startswith("--snapshot=") for a in argv), argv
    after = table_counts(pg, db)
    assert after[("sales", "events")] == at_snapshot[("sales", "events")] + 500
    assert after[("public", "child")] == at_snapshot[("public", "child")] + 1

    [(_set_dir, m)] = committed_sets(storage)
    counts = manifest_counts(artifact(m, f"postgres/{db}.dump.zst"))
    assert counts == {k: (v, "exact") for k, v in at_snapshot.items()}, (counts, at_snapshot)
    assert counts[("public", "We.ird name")] == (3, "exact")
    assert counts[("public", "parent")] == (7, "exact")  # its own rows, not the child's

    # the dump holds exactly what was counted
    new = dbs.name("rows_restored")
    r = sauve.run("restore", f"postgres:{db}", "--into", new, "--yes")
    assert r.code == 0, r.describe()
    assert table_counts(pg, new) == at_snapshot


def _sh(s):
    return "'" + s.replace("'", "'\\''") + "'"


def test_estimate_mode_and_the_exact_limit_say_which_count_is_which(pg, sauve, dbs, storage, counted_db):
    db = counted_db
    pg.psql(db, "CREATE TABLE public.never_analysed (v int)")
    pg.psql(db, "VACUUM ANALYZE sales.events; VACUUM ANALYZE public.scratch")
    exact = table_counts(pg, db)
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false",
                                 "SAUVE_PG_ROW_COUNTS": "estimate"})
    assert r.code == 0, r.describe()
    [(_d, m)] = committed_sets(storage)
    counts = manifest_counts(artifact(m, f"postgres/{db}.dump.zst"))
    assert set(counts) == set(exact)
    assert {how for _rows, how in counts.values()} <= {"estimate", "unknown"}
    # analysed: the planner knows; never analysed (15 says -1): unknown, no rows
    assert counts[("sales", "events")] == (exact[("sales", "events")], "estimate")
    assert counts[("public", "scratch")] == (11, "estimate")
    assert counts[("public", "never_analysed")] == (None, "unknown")

    # exact, but tables over 1 MiB estimated: events is over, scratch not
    events_mb = int(pg.scalar(db, "select pg_relation_size('sales.events')")) / (1 << 20)
    assert events_mb > 1, events_mb
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false",
                                 "SAUVE_PG_ROW_COUNTS_EXACT_MAX_MB": "1"})
    assert r.code == 0, r.describe()
    newest = max(committed_sets(storage), key=lambda s: s[1]["id"])[1]
    counts = manifest_counts(artifact(newest, f"postgres/{db}.dump.zst"))
    assert counts[("sales", "events")] == (exact[("sales", "events")], "estimate")
    assert counts[("public", "scratch")] == (11, "exact")
    assert counts[("public", "never_analysed")] == (0, "exact")


def test_off_records_nothing_and_dumps_without_a_snapshot(pg, sauve, dbs, workdir, storage, counted_db):
    fake = make_bindir(workdir, {"pg_dump": 'printf "%s\\n" "$@" > "$DIR/pg_dump.argv"; exec "$REAL" "$@"'})
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": counted_db, "SAUVE_PG_ROW_COUNTS": "off",
                                 "SAUVE_PG_BINDIR": fake})
    assert r.code == 0, r.describe()
    [(_d, m)] = committed_sets(storage)
    assert all("row_counts" not in a for a in m["artifacts"]), m
    argv = open(os.path.join(fake, "pg_dump.argv")).read()
    assert "--snapshot" not in argv


def test_globals_carry_no_counts_and_list_json_shows_them(pg, sauve, storage, counted_db):
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": counted_db})
    assert r.code == 0, r.describe()
    [(_d, m)] = committed_sets(storage)
    assert "row_counts" not in artifact(m, "postgres/globals.sql.zst")
    counts = manifest_counts(artifact(m, f"postgres/{counted_db}.dump.zst"))
    assert all(how == "exact" for _rows, how in counts.values())
    r = sauve.run("list", "--json")
    assert r.code == 0, r.describe()
    [s] = json.loads(r.stdout)["sets"]
    by_name = {a["name"]: a for a in s["artifacts"]}
    assert "rows" not in by_name["globals"]
    assert by_name[counted_db]["rows"] == {"tables": len(counts), "total": sum(n for n, _ in counts.values()),
                                           "not_exact": 0}


@pytest.mark.parametrize("env, needle", [
    ({"SAUVE_PG_ROW_COUNTS": "yes"}, "SAUVE_PG_ROW_COUNTS"),
    ({"SAUVE_PG_ROW_COUNTS": "count"}, "SAUVE_PG_ROW_COUNTS"),
    ({"SAUVE_PG_ROW_COUNTS_EXACT_MAX_MB": "-1"}, "SAUVE_PG_ROW_COUNTS_EXACT_MAX_MB"),
    ({"SAUVE_PG_ROW_COUNTS_EXACT_MAX_MB": "1G"}, "SAUVE_PG_ROW_COUNTS_EXACT_MAX_MB"),
])
def test_bad_settings_exit_78_naming_them(sauve, dbs, storage, env, needle):
    db = dbs.empty("rows_bad")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, **env})
    assert r.code == 78, r.describe()
    assert needle in r.summary["msg"], r.describe()
    assert committed_sets(storage) == []


def test_a_count_that_fails_before_pg_dump_imports_the_snapshot_leaves_the_dump_whole(pg, sauve, dbs, workdir,
                                                                                       storage, small_template):
    """The count runs on the connection that exported the snapshot, under a
    savepoint: when it fails (cancelled here, as a statement_timeout or a
    table dropped under it would), only the savepoint is aborted, the
    snapshot stays valid, and pg_dump, started after the failure, imports
    it and dumps everything; the manifest says why there are no counts."""
    from pglock import HeldLock
    from sauvecli import wait_for
    db = dbs.clone(small_template, "cancelled")
    go = os.path.join(workdir, "go")
    os.mkfifo(go)
    # pg_dump waits (on a FIFO the test opens) until the count has failed
    fake = make_bindir(workdir, {"pg_dump": f'exec 3< "{go}"; exec "$REAL" "$@"'})
    with HeldLock(pg, db, "lock table sales.events in access exclusive mode") as lock:
        p = sauve.start("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false",
                                       "SAUVE_PG_BINDIR": fake})
        [counter] = wait_for(lambda: lock.blocked_pids(), 120, "the row count to wait for the lock")
        assert pg.scalar("postgres", f"select query from pg_stat_activity where pid = {counter}") \
            .startswith("savepoint sauve_count;")
        pg.scalar("postgres", f"select pg_cancel_backend({counter})")
        # (only the savepoint is aborted, though the state says "aborted"
        # for a failed subtransaction too: the dump below proves it)
        wait_for(lambda: pg.scalar("postgres", f"select state from pg_stat_activity where pid = {counter} "
                                               "and state like 'idle in transaction%'"),
                 120, "the cancelled count to end")
        lock.release()
        with open(go, "w"):
            pass
        r = sauve.finish(p, 600)
    assert r.code == 0, r.describe()
    [(_set_dir, m)] = committed_sets(storage)
    a = artifact(m, f"postgres/{db}.dump.zst")
    assert a.get("error") is None
    assert "counting the rows failed" in a["row_counts"]["skipped"] and "cancel" in a["row_counts"]["skipped"], a


def test_a_drill_counts_as_the_backup_counted(pg, sauve, dbs, workdir, storage, counted_db):
    """Inheritance children, an unlogged table, a name to quote: the drill
    counts each table's own rows (ONLY), as the backup did, and finds what
    the manifest recorded."""
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": counted_db, "SAUVE_PG_GLOBALS": "false"})
    assert r.code == 0, r.describe()
    [(_set_dir, m)] = committed_sets(storage)
    recorded = sum(t["rows"] for t in artifact(m, f"postgres/{counted_db}.dump.zst")["row_counts"]["tables"])
    r = sauve.run("drill", "--json", env={"SAUVE_PG_DATABASES": counted_db, "SAUVE_DRILL_DIR": workdir})
    assert r.code == 0, r.describe()
    [src] = json.loads(r.stdout)["sources"]
    assert src["compared"] == src["counted"] == recorded, src
