"""The minimal PostgreSQL privileges of the README ("Minimal privileges"),
each proved against real servers, PostgreSQL 15 and 18: a role made with
exactly the documented statements runs its command, and the result is read
back with independent clients (pg_restore --list, psql); the same role with
one grant less fails, and sauve's one-line summary names what is missing.

The database under test is owned by a NOLOGIN role, like an application's:
a schema, a serial, a partitioned table, a view and a materialized view, a
table with row-level security, a large object, a grant to a third role, a
role setting, and CONNECT revoked from PUBLIC."""

import json
import os
import re
import secrets
import subprocess

import pytest

from conftest import Dbs
from pgserver import _harness_env, pg_bindir, quote_ident, quote_literal
from sauvecli import Sauve, artifact, committed_sets


class Cluster:
    """One server of the test, with the roles and databases it made (all
    removed at teardown) and a sauve runner for it."""

    def __init__(self, server, workdir, storage):
        self.server = server
        self.dbs = Dbs(server)
        self.storage = storage
        self.workdir = workdir
        self.bindir = pg_bindir(server.major)
        self.roles_before = server.roles()
        self.sauve = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_PG_BINDIR": self.bindir})
        self.passwords = {}

    def role(self, prefix, sql_after_create=""):
        """A new role prefix_xxxxxx with a password; sql_after_create
        (`{r}` is the quoted role) runs as the superuser."""
        name = f"{prefix}_{secrets.token_hex(3)}"
        pw = "pw " + secrets.token_hex(8)
        self.passwords[name] = pw
        self.server.psql("postgres", f"CREATE ROLE {quote_ident(name)} PASSWORD {quote_literal(pw)}")
        if sql_after_create:
            self.server.psql("postgres", sql_after_create.format(r=quote_ident(name)))
        return name

    def env(self, user):
        return {"PGHOST": self.server.host, "PGPORT": str(self.server.port), "PGUSER": user,
                "PGPASSWORD": self.passwords[user] if user in self.passwords else self.server.superuser_password}

    def run(self, user, *args, **settings):
        return self.sauve.run(*args, env={**self.env(user), **settings})

    def cleanup(self):
        self.dbs.drop_all()
        for r in sorted(self.server.roles() - self.roles_before):
            self.server.psql("postgres", f"DROP ROLE IF EXISTS {quote_ident(r)}")


@pytest.fixture(params=[15, 18], ids=["pg15", "pg18"])
def cluster(request, workdir, storage):
    server = request.getfixturevalue("pg" if request.param == 15 else "pg18")
    c = Cluster(server, workdir, storage)
    try:
        yield c
    finally:
        c.cleanup()


class Shop:
    """The application database: see the module's docstring."""

    def __init__(self, c):
        s = c.server
        self.owner = c.role("owner", "ALTER ROLE {r} SET work_mem = '8MB'")
        self.reader = c.role("reader")
        self.db = c.dbs.name("shop")
        s.create_database(self.db, owner=self.owner)
        s.psql("postgres", f"REVOKE CONNECT ON DATABASE {quote_ident(self.db)} FROM PUBLIC")
        s.psql(self.db, f"""
            SET ROLE {quote_ident(self.owner)};
            CREATE SCHEMA sales;
            CREATE TABLE sales.orders (id serial PRIMARY KEY, v text);
            INSERT INTO sales.orders (v) SELECT 'o' || g FROM generate_series(1, 40) g;
            CREATE TABLE sales.metrics (at int, v int) PARTITION BY RANGE (at);
            CREATE TABLE sales.metrics_low PARTITION OF sales.metrics FOR VALUES FROM (0) TO (100);
            INSERT INTO sales.metrics SELECT g, g FROM generate_series(0, 9) g;
            CREATE VIEW sales.recent AS SELECT * FROM sales.orders WHERE id > 30;
            CREATE MATERIALIZED VIEW sales.order_count AS SELECT count(*) AS n FROM sales.orders;
            CREATE TABLE public.notes (id int, body text);
            INSERT INTO public.notes VALUES (1, 'un'), (2, 'deux'), (3, 'trois');
            CREATE TABLE public.secret (id int, who text);
            INSERT INTO public.secret VALUES (1, 'alice'), (2, 'bob');
            ALTER TABLE public.secret ENABLE ROW LEVEL SECURITY;
            CREATE POLICY mine ON public.secret USING (who = current_user);
            GRANT USAGE ON SCHEMA sales TO {quote_ident(self.reader)};
            GRANT SELECT ON sales.orders TO {quote_ident(self.reader)};
            """)
        self.lo = s.scalar(self.db, f"SET ROLE {quote_ident(self.owner)}; "
                                    "SELECT lo_from_bytea(0, 'large object bytes')")
        self.tables = {"sales.orders": 40, "sales.metrics_low": 10, "public.notes": 3, "public.secret": 2}


def backup_role(c, shop, leave_out=None):
    """The backup role of the README, every statement but leave_out."""
    grants = {
        "LOGIN": "ALTER ROLE {r} LOGIN",
        "pg_read_all_data": "GRANT pg_read_all_data TO {r}",
        "CONNECT": f"GRANT CONNECT ON DATABASE {quote_ident(shop.db)} TO {{r}}",
        "BYPASSRLS": "ALTER ROLE {r} BYPASSRLS",
    }
    name = c.role("backup", "; ".join(sql for what, sql in grants.items() if what != leave_out))
    if leave_out != "large object":
        c.server.psql(shop.db, f"GRANT SELECT ON LARGE OBJECT {shop.lo} TO {quote_ident(name)}")
    return name


def zstd_cat(path):
    return subprocess.run(["zstd", "-q", "-d", "-c", path], stdout=subprocess.PIPE, check=True).stdout


def restore_list(c, set_dir, db):
    """pg_restore --list of the server's major, on what sauve stored."""
    dump = zstd_cat(os.path.join(set_dir, "postgres", f"{db}.dump.zst"))
    p = subprocess.run([os.path.join(c.bindir, "pg_restore"), "--list"], input=dump, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=_harness_env())
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


# ---- backup ---------------------------------------------------------------

def test_backup_role_with_the_documented_grants_dumps_everything(cluster):
    c = cluster
    shop = Shop(c)
    user = backup_role(c, shop)
    r = c.run(user, "backup", SAUVE_PG_DATABASES=shop.db)
    assert r.code == 0, r.describe()
    [(set_dir, m)] = committed_sets(c.storage)
    assert {a["key"]: a["status"] for a in m["artifacts"]} == {
        "postgres/globals.sql.zst": "ok", f"postgres/{shop.db}.dump.zst": "ok"}, m

    # every table's data, the materialized view's and the large object are in the archive
    listing = restore_list(c, set_dir, shop.db)
    for table in shop.tables:
        schema, name = table.split(".")
        assert f"TABLE DATA {schema} {name} {shop.owner}" in listing, (table, listing)
    assert f"MATERIALIZED VIEW DATA sales order_count {shop.owner}" in listing, listing
    # 15: "BLOB - OID OWNER"; 17 and newer: "BLOB METADATA - OID OWNER"
    assert re.search(rf"BLOB (METADATA )?- {shop.lo} {shop.owner}$", listing, re.M), listing
    assert f"POLICY public secret mine {shop.owner}" in listing, listing

    # the rows were counted in the dump's snapshot, row security off
    counts = artifact(m, f"postgres/{shop.db}.dump.zst")["row_counts"]
    assert "skipped" not in counts, counts
    got = {f"{t['schema']}.{t['table']}": t.get("rows") for t in counts["tables"]}
    assert got == shop.tables, got

    # the globals of a non-superuser: roles, their settings, no password hash
    sql = zstd_cat(os.path.join(set_dir, "postgres", "globals.sql.zst")).decode()
    assert f"CREATE ROLE {shop.owner};" in sql, sql
    assert f"ALTER ROLE {shop.owner} SET work_mem TO '8MB';" in sql, sql
    assert "SCRAM-SHA-256$" not in sql and "PASSWORD" not in sql, sql


@pytest.mark.parametrize("leave_out, says", [
    ("LOGIN", ["not permitted to log in", "LOGIN"]),
    ("CONNECT", ["permission denied for database", "GRANT CONNECT"]),
    ("pg_read_all_data", ["cannot read", "table(s)", "pg_read_all_data"]),
    ("BYPASSRLS", ["row-level security", "public.secret", "BYPASSRLS"]),
    ("large object", ["cannot read 1 large object(s)", "GRANT SELECT ON LARGE OBJECT"]),
])
def test_backup_role_missing_one_grant_fails_naming_it(cluster, leave_out, says):
    c = cluster
    shop = Shop(c)
    user = backup_role(c, shop, leave_out=leave_out)
    r = c.run(user, "backup", SAUVE_PG_DATABASES=shop.db)
    # retrying cannot help: a configuration error, before anything is written
    assert r.code == 78, r.describe()
    summary = r.summary["msg"]
    for words in says:
        assert words in summary, (words, r.describe())
    assert shop.db in summary and user in summary, r.describe()
    if leave_out == "large object":
        assert shop.lo in summary, r.describe()
    assert committed_sets(c.storage) == [] and os.listdir(c.storage) == [], "nothing may be written"


def test_backup_role_before_pg_read_all_data_with_grants_per_schema(cluster):
    """What the README gives for PostgreSQL 13 and older (no
    pg_read_all_data), tried here on a newer server: grants per schema, and
    default privileges so that a table made later is readable too."""
    c = cluster
    shop = Shop(c)
    user = c.role("backup13", "ALTER ROLE {r} LOGIN BYPASSRLS")
    q, o = quote_ident(user), quote_ident(shop.owner)
    c.server.psql("postgres", f"GRANT CONNECT ON DATABASE {quote_ident(shop.db)} TO {q}")
    c.server.psql(shop.db, f"""
        GRANT SELECT ON LARGE OBJECT {shop.lo} TO {q};
        GRANT USAGE ON SCHEMA public, sales TO {q};
        GRANT SELECT ON ALL TABLES IN SCHEMA public, sales TO {q};
        GRANT SELECT ON ALL SEQUENCES IN SCHEMA public, sales TO {q};
        ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public, sales GRANT SELECT ON TABLES TO {q};
        ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public, sales GRANT SELECT ON SEQUENCES TO {q};
        SET ROLE {o};
        CREATE TABLE sales.later (id serial, v text);
        INSERT INTO sales.later (v) VALUES ('made after the grants');
        """)
    r = c.run(user, "backup", SAUVE_PG_DATABASES=shop.db)
    assert r.code == 0, r.describe()
    [(set_dir, _)] = committed_sets(c.storage)
    listing = restore_list(c, set_dir, shop.db)
    assert f"TABLE DATA sales later {shop.owner}" in listing, listing

    # without the default privileges, the table made later is what is missing
    c.server.psql(shop.db, f"SET ROLE {o}; CREATE TABLE sales.no_default (id int);"
                           f"REVOKE SELECT ON sales.no_default FROM {q}")
    r = c.run(user, "backup", SAUVE_PG_DATABASES=shop.db)
    assert r.code == 78, r.describe()
    assert "sales.no_default" in r.summary["msg"], r.describe()


# ---- restore --------------------------------------------------------------

def restore_role(c, shop, leave_out=None):
    """The restore role of the README, every statement but leave_out."""
    grants = {
        "LOGIN": "ALTER ROLE {r} LOGIN",
        "CREATEDB": "ALTER ROLE {r} CREATEDB",
        "owner": f"GRANT {quote_ident(shop.owner)} TO {{r}}",
    }
    return c.role("restore", "; ".join(sql for what, sql in grants.items() if what != leave_out))


def backed_up_shop(c):
    """The shop, backed up by the superuser, then changed: a restore that
    worked brings back the rows of the set."""
    shop = Shop(c)
    r = c.run(c.server.superuser, "backup", SAUVE_PG_DATABASES=shop.db)
    assert r.code == 0, r.describe()
    c.server.psql(shop.db, "INSERT INTO sales.orders (v) VALUES ('after the backup'); DELETE FROM public.notes")
    return shop


def state(c, db):
    s = c.server
    return {
        "owner": s.scalar("postgres", f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = "
                                      f"{quote_literal(db)}"),
        "tables": {t: (s.scalar(db, f"SELECT tableowner FROM pg_tables WHERE schemaname || '.' || tablename = "
                                    f"{quote_literal(t)}"),
                       int(s.scalar(db, f"SELECT count(*) FROM ONLY {t}")))
                   for t in ("sales.orders", "sales.metrics_low", "public.notes", "public.secret")},
        "large_objects": s.rows(db, "SELECT oid::text, pg_get_userbyid(lomowner) FROM pg_largeobject_metadata"),
    }


def test_restore_role_replaces_the_database_with_clean(cluster):
    c = cluster
    shop = backed_up_shop(c)
    user = restore_role(c, shop)
    r = c.run(user, "restore", f"postgres:{shop.db}", "--clean", "--confirm", shop.db)
    assert r.code == 0, r.describe()
    got = state(c, shop.db)
    assert got["owner"] == shop.owner, got
    assert got["tables"] == {t: (shop.owner, n) for t, n in shop.tables.items()}, got
    assert got["large_objects"] == [[shop.lo, shop.owner]], got
    s = c.server
    assert s.scalar(shop.db, f"SELECT has_table_privilege({quote_literal(shop.reader)}, 'sales.orders', "
                             "'SELECT')") == "t"
    # the database's own ACL came along: PUBLIC still may not connect
    assert s.scalar("postgres", f"SELECT has_database_privilege('public', {quote_literal(shop.db)}, "
                                "'CONNECT')") == "f"
    safety = [m for _, m in committed_sets(c.storage) if m.get("reason") == "safety"]
    assert len(safety) == 1, committed_sets(c.storage)


def test_restore_role_into_a_new_database_with_no_owner(cluster):
    c = cluster
    shop = backed_up_shop(c)
    user = restore_role(c, shop)
    new = c.dbs.expect(c.dbs.name("copy"))
    r = c.run(user, "restore", f"postgres:{shop.db}", "--into", new, "--no-owner", "--yes")
    assert r.code == 0, r.describe()
    got = state(c, new)
    # --no-owner: everything belongs to the role that restored
    assert got["owner"] == user, got
    assert got["tables"] == {t: (user, n) for t, n in shop.tables.items()}, got
    assert got["large_objects"] == [[shop.lo, user]], got


def test_restore_role_into_a_new_database_keeping_owners_stops_on_schema_public(cluster):
    """The README's limit of --into NEW without --no-owner: the new database
    is the restoring role's, and since 15 only its owner may create in
    public, so a table of public cannot be handed to its owner. The restore
    says how to get round it and drops the database it made."""
    c = cluster
    shop = backed_up_shop(c)
    user = restore_role(c, shop)
    new = c.dbs.expect(c.dbs.name("copy"))
    r = c.run(user, "restore", f"postgres:{shop.db}", "--into", new, "--yes")
    assert r.code == 1, r.describe()
    summary = r.summary["msg"]
    assert "permission denied for schema public" in summary, r.describe()
    assert "create the target first" in summary and "--no-owner" in summary, r.describe()
    assert not c.server.database_exists(new)


def test_restore_into_an_empty_database_of_the_owner_needs_no_createdb(cluster):
    c = cluster
    shop = backed_up_shop(c)
    user = restore_role(c, shop, leave_out="CREATEDB")
    target = c.dbs.name("empty")
    c.server.create_database(target, owner=shop.owner)
    r = c.run(user, "restore", f"postgres:{shop.db}", "--into", target, "--yes")
    assert r.code == 0, r.describe()
    got = state(c, target)
    assert got["owner"] == shop.owner, got
    assert got["tables"] == {t: (shop.owner, n) for t, n in shop.tables.items()}, got


@pytest.mark.parametrize("leave_out, args, says", [
    ("CREATEDB", ["--clean", "--confirm", "{db}"], ["permission denied to create database", "CREATEDB"]),
    # without the owner's role it may not even connect (the database is closed to PUBLIC)
    ("owner", ["--clean", "--confirm", "{db}"], ["permission denied for database", "GRANT CONNECT"]),
    ("owner", ["--into", "{new}", "--yes"], ["OWNER", "--no-owner"]),
])
def test_restore_role_missing_one_grant_fails_naming_it_and_changes_nothing(cluster, leave_out, args, says):
    c = cluster
    shop = backed_up_shop(c)
    before = state(c, shop.db)
    user = restore_role(c, shop, leave_out=leave_out)
    new = c.dbs.expect(c.dbs.name("new"))
    r = c.run(user, "restore", f"postgres:{shop.db}", *[a.format(db=shop.db, new=new) for a in args])
    assert r.code in (1, 78), r.describe()
    summary = r.summary["msg"]
    for words in says:
        if words == "OWNER":
            # 15: must be member of role "x"; 16 and newer: must be able to SET ROLE "x"
            assert ("must be member of role" in summary or "must be able to SET ROLE" in summary) and \
                shop.owner in summary, r.describe()
        else:
            assert words in summary, (words, r.describe())
    assert state(c, shop.db) == before
    assert not c.server.database_exists(new)
    assert c.server.rows("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'sauve\\_%'") == []


def test_globals_restore_needs_a_superuser(cluster):
    c = cluster
    shop = Shop(c)
    lost = c.role("lost", "ALTER ROLE {r} NOLOGIN CONNECTION LIMIT 2")
    r = c.run(c.server.superuser, "backup", SAUVE_PG_DATABASES=shop.db)
    assert r.code == 0, r.describe()
    c.server.psql("postgres", f"DROP ROLE {quote_ident(lost)}")

    # CREATEROLE is not enough: pg_dumpall sets every role's SUPERUSER attribute
    createrole = c.role("globals", "ALTER ROLE {r} LOGIN CREATEROLE")
    r = c.run(createrole, "restore", "postgres:globals", "--yes", SAUVE_PG_DATABASES=shop.db)
    assert r.code == 1, r.describe()
    summary = r.summary["msg"]
    assert "ALTER ROLE" in summary and "SUPERUSER" in summary.upper(), r.describe()
    assert "restore postgres:globals as a superuser" in summary, r.describe()
    assert lost not in c.server.roles()

    superuser = c.role("globals_su", "ALTER ROLE {r} LOGIN SUPERUSER")
    r = c.run(superuser, "restore", "postgres:globals", "--yes", SAUVE_PG_DATABASES=shop.db)
    assert r.code == 0, r.describe()
    assert c.server.scalar("postgres", f"SELECT rolconnlimit FROM pg_roles WHERE rolname = "
                                       f"{quote_literal(lost)}") == "2"


def test_drill_role_needs_createdb_and_nothing_else(cluster):
    """The drill role: LOGIN and CREATEDB on its scratch server, no grant on
    the application's database or roles (the drill loads without owners
    and grants into a database it creates and drops)."""
    c = cluster
    shop = backed_up_shop(c)
    drill = c.role("drill", "ALTER ROLE {r} LOGIN CREATEDB")
    r = c.run(drill, "drill", "--json", SAUVE_DRILL_DIR=c.workdir)
    assert r.code == 0, r.describe()
    by = {s["source"]: s for s in json.loads(r.stdout)["sources"]}
    assert by[f"postgres:{shop.db}"]["compared"] == sum(shop.tables.values())
    assert c.server.rows("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'sauve\\_drill%'") == []

    nocreatedb = c.role("drill_nocreatedb", "ALTER ROLE {r} LOGIN")
    r = c.sauve.run("drill", env={**c.env(nocreatedb), "SAUVE_DRILL_DIR": c.workdir}, json_stdout=True)
    assert r.code == 78, r.describe()
    assert "permission denied to create database" in r.summary["msg"] and "CREATEDB" in r.summary["msg"], \
        r.describe()
