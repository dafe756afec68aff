"""The harness itself: the server answers over TCP with passwords, and the
comparison helpers see differences (so a passing restore test means
something)."""

import subprocess

import pytest

from pgdata import assert_same_state, db_state, large_objects, user_tables
from pgserver import pg_bin, _harness_env


def test_server_accepts_password_over_tcp_and_refuses_a_wrong_one(pg):
    def connect(user, password):
        env = dict(_harness_env(), PGPASSWORD=password)
        return subprocess.run(
            [pg_bin("psql"), "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(pg.port),
             "-U", user, "-d", "postgres", "-c", "select current_user"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    ok = connect("app", pg.app_password)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "app"
    su = connect("postgres", pg.superuser_password)
    assert su.returncode == 0 and su.stdout.strip() == "postgres", su.stderr
    bad = connect("app", "not-the-password")
    assert bad.returncode != 0
    assert "password authentication failed" in bad.stderr


def test_template_has_the_promised_objects(pg, small_template):
    tables = {f"{s}.{t}" for s, t in user_tables(pg, small_template)}
    assert {"sales.events", "sales.orders", "audit.log", "public.app_notes",
            "sales.metrics_2024", "sales.daily_events"} <= tables
    assert int(pg.scalar(small_template, "select count(*) from sales.events")) == 20_000
    assert int(pg.scalar(small_template, "select count(*) from audit.log")) > 0
    los = large_objects(pg, small_template)
    assert len(los) == 4 and "app" in {o for o, _n, _m in los.values()}
    assert pg.scalar(small_template, "select count(*) from hr.employees where city = '東京'") == "1"


def test_state_comparison_detects_differences(pg, dbs, small_template):
    a = dbs.clone(small_template)
    b = dbs.clone(small_template)
    sa = db_state(pg, a)
    assert_same_state(sa, db_state(pg, b))  # clones are equal

    pg.psql(b, "update sales.events set body = 'x' where id = 12345")
    with pytest.raises(AssertionError, match="sales.events"):
        assert_same_state(sa, db_state(pg, b))

    c = dbs.clone(small_template)
    pg.psql(c, "create index on sales.events (kind)")
    with pytest.raises(AssertionError, match="schema differs"):
        assert_same_state(sa, db_state(pg, c))

    d = dbs.clone(small_template)
    pg.psql(d, "select lo_put((select min(oid) from pg_largeobject_metadata), 0, 'Z'::bytea)")
    with pytest.raises(AssertionError, match="large_objects"):
        assert_same_state(sa, db_state(pg, d))
