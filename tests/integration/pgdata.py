"""Test data for a PostgreSQL database, and what "the same database" means.

build_realistic() fills a database with the kinds of objects a real
application has; db_state() reads back everything a restore must reproduce,
from the server itself, so that tests compare source and restored databases
rather than hard-coded numbers.
"""

import difflib
import subprocess

from pgserver import PgServer, quote_ident, _harness_env

SCHEMA_SQL = r"""
CREATE SCHEMA sales;
CREATE SCHEMA hr;
CREATE SCHEMA audit;
CREATE TYPE sales.order_state AS ENUM ('new', 'paid', 'shipped', 'cancelled');
CREATE DOMAIN hr.email AS text CHECK (VALUE ~ '^[^@]+@[^@]+$');
CREATE SEQUENCE sales.invoice_no START 1000 INCREMENT 7;

CREATE TABLE hr.employees (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    city text,
    email hr.email,
    note text
);
CREATE TABLE sales.customers (
    id serial PRIMARY KEY,
    name text NOT NULL,
    country text,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE sales.orders (
    id bigserial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES sales.customers (id),
    invoice_no bigint NOT NULL DEFAULT nextval('sales.invoice_no'),
    state sales.order_state NOT NULL DEFAULT 'new',
    amount numeric(12, 2) NOT NULL CHECK (amount >= 0),
    payload jsonb,
    updated_at timestamptz
);
CREATE INDEX orders_customer_idx ON sales.orders (customer_id);
CREATE TABLE sales.events (
    id bigint PRIMARY KEY,
    digest text NOT NULL,
    at timestamptz NOT NULL,
    kind smallint NOT NULL,
    body text
);
CREATE TABLE sales.metrics (at date NOT NULL, v int) PARTITION BY RANGE (at);
CREATE TABLE sales.metrics_2024 PARTITION OF sales.metrics
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE sales.metrics_2025 PARTITION OF sales.metrics
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE audit.log (
    id bigserial PRIMARY KEY,
    tbl text NOT NULL,
    op text NOT NULL,
    row_data jsonb,
    at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION audit.record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit.log (tbl, op, row_data)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP, to_jsonb(NEW));
    RETURN NEW;
END
$$;
CREATE TRIGGER orders_audit AFTER INSERT OR UPDATE ON sales.orders
    FOR EACH ROW EXECUTE FUNCTION audit.record_change();

CREATE FUNCTION sales.customer_total(cid int) RETURNS numeric
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(amount), 0) FROM sales.orders WHERE customer_id = cid
$$;
CREATE VIEW sales.customer_totals AS
    SELECT c.id, c.name, sales.customer_total(c.id) AS total FROM sales.customers c;

CREATE TABLE public.app_notes (id serial PRIMARY KEY, author text, body text);
ALTER TABLE public.app_notes OWNER TO app;
GRANT USAGE ON SCHEMA sales TO app;
GRANT SELECT ON sales.customer_totals TO app;
COMMENT ON TABLE sales.orders IS 'Commandes — 注文 📦';
"""

DATA_SQL = r"""
INSERT INTO sales.customers (name, country, created) VALUES
    ('Société Générale des données', 'FR', '2024-03-01 10:00:00+00'),
    ('東京商事株式会社', 'JP', '2024-03-02 11:00:00+00'),
    ('Emoji 🎉🚀 Ltd', 'GB', '2024-03-03 12:00:00+00');
INSERT INTO sales.customers (name, country, created)
    SELECT 'customer ' || i || ' :TAG:', (ARRAY['FR','JP','DE','BR'])[1 + i % 4],
           timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour'
    FROM generate_series(1, 500) i;
INSERT INTO sales.orders (customer_id, state, amount, payload, updated_at)
    SELECT 1 + i % 503, (ARRAY['new','paid','shipped','cancelled'])[1 + i % 4]::sales.order_state,
           round((i * 3.7)::numeric % 10000, 2),
           jsonb_build_object('i', i, 'tag', ':TAG:', 'ville', 'Zürich', 'note', 'données ' || md5(i::text)),
           timestamptz '2024-06-01 00:00:00+00' + i * interval '1 minute'
    FROM generate_series(1, 2000) i;
UPDATE sales.orders SET state = 'paid' WHERE id % 97 = 0;
INSERT INTO hr.employees (name, city, email, note) VALUES
    ('Zoë Ångström', 'Malmö', 'zoe@example.org', 'naïve café'),
    ('山田太郎', '東京', 'taro@example.jp', '日本語のメモ'),
    ('Ana 💡', 'São Paulo', 'ana@example.br', E'tab\there, newline\nthere, backslash \\ and quote ''');
INSERT INTO sales.events (id, digest, at, kind, body)
    SELECT i, md5(i::text || ':TAG:'), timestamptz '2024-01-01 00:00:00+00' + i * interval '37 seconds',
           (i % 7)::smallint,
           CASE WHEN i % 1000 = 0 THEN 'données 東京 🎉 ' || i ELSE NULL END
    FROM generate_series(1, :ROWS:) i;
INSERT INTO sales.metrics (at, v)
    SELECT date '2024-01-01' + (i % 700), i FROM generate_series(1, 3000) i;
INSERT INTO public.app_notes (author, body) VALUES
    ('app', 'owned by app — propriété'), ('app', '所有者はapp');
SELECT setval('sales.invoice_no', 987654, true);
CREATE MATERIALIZED VIEW sales.daily_events AS
    SELECT date_trunc('day', at) AS day, count(*) AS n FROM sales.events GROUP BY 1;
SELECT lo_from_bytea(0, convert_to('Bonjour les données — 東京 🎉 :TAG:', 'UTF8'));
SELECT lo_from_bytea(0, decode(string_agg(md5(i::text || ':TAG:'), ''), 'hex'))
    FROM generate_series(1, 40000) i;
SELECT lo_from_bytea(0, ''::bytea);
DO $$
DECLARE o oid;
BEGIN
    o := lo_from_bytea(0, convert_to('large object owned by app', 'UTF8'));
    EXECUTE format('ALTER LARGE OBJECT %s OWNER TO app', o);
END
$$;
ANALYZE;
"""


def build_realistic(server: PgServer, db, *, rows=300_000, tag="a"):
    """Fills the (existing, empty) database db with several schemas, an enum,
    a domain, sequences, an identity column, a partitioned table, views, a
    materialized view, functions, a trigger, comments, grants, a table owned
    by `app`, non-ASCII text, large objects (one owned by `app`) and a table
    of `rows` generated rows. tag varies the data between databases."""
    server.psql(db, SCHEMA_SQL)
    server.psql(db, DATA_SQL.replace(":ROWS:", str(int(rows)))
                .replace(":TAG:", tag.replace("'", "")))


def schema_dump(server: PgServer, db):
    """`pg_dump --schema-only` of db, by the server's own major, normalised:
    comment lines, \\restrict lines and blank lines dropped."""
    p = subprocess.run(
        [server.bin("pg_dump"), "--schema-only", "-h", server.datadir,
         "-p", str(server.port), "-U", "postgres", "-d", db],
        env=_harness_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, check=False, timeout=300)
    assert p.returncode == 0, f"pg_dump --schema-only {db}: {p.stderr}"
    return normalise_sql(p.stdout)


def normalise_sql(text):
    out = []
    for line in text.splitlines():
        if line.startswith("--") or line.strip() == "":
            continue
        if line.startswith("\\restrict") or line.startswith("\\unrestrict"):
            continue
        out.append(line)
    return out


def user_tables(server: PgServer, db):
    """Every ordinary table, partition and materialized view outside the
    system schemas, as (schema, name)."""
    return [tuple(r) for r in server.rows(db, """
        select n.nspname, c.relname from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'm')
          and n.nspname not in ('pg_catalog', 'information_schema')
          and n.nspname !~ '^pg_toast'
        order by 1, 2""")]


def table_checksums(server: PgServer, db):
    tables = user_tables(server, db)
    if not tables:
        return {}
    parts = []
    for schema, name in tables:
        q = f"{quote_ident(schema)}.{quote_ident(name)}"
        parts.append(
            f"select '{schema}.{name}', count(*), "
            f"coalesce(md5(string_agg(t::text, ',' order by t::text)), '-') "
            f"from {q} t")
    rows = server.rows(db, "\nunion all\n".join(parts))
    return {r[0]: (int(r[1]), r[2]) for r in rows}


def large_objects(server: PgServer, db):
    return {int(r[0]): (r[1], int(r[2]), r[3]) for r in server.rows(db, """
        select m.oid, pg_get_userbyid(m.lomowner),
               length(lo_get(m.oid)), md5(lo_get(m.oid))
        from pg_largeobject_metadata m order by m.oid""")}


def sequences(server: PgServer, db):
    return {f"{r[0]}.{r[1]}": (r[2], r[3]) for r in server.rows(db, """
        select schemaname, sequencename, coalesce(last_value::text, 'null'),
               increment_by from pg_sequences order by 1, 2""")}


def db_state(server: PgServer, db):
    """Everything a restore must reproduce, read from the server."""
    return {
        "schema": schema_dump(server, db),
        "tables": table_checksums(server, db),
        "large_objects": large_objects(server, db),
        "sequences": sequences(server, db),
        "owner_of_app_notes": server.scalar(
            db, "select coalesce((select tableowner from pg_tables "
                "where schemaname='public' and tablename='app_notes'), '-')"),
    }


def assert_same_state(expected, actual, what="restored database"):
    """Compares two db_state() results; the message shows what differs."""
    problems = []
    if expected["schema"] != actual["schema"]:
        diff = "\n".join(difflib.unified_diff(
            expected["schema"], actual["schema"], "source", what, lineterm="",
            n=1))
        problems.append("schema differs:\n" + diff[:6000])
    for key in ("tables", "large_objects", "sequences", "owner_of_app_notes"):
        if expected[key] != actual[key]:
            if isinstance(expected[key], dict):
                ks = sorted(set(expected[key]) | set(actual[key]), key=str)
                lines = [f"  {k}: source={expected[key].get(k)} {what}={actual[key].get(k)}"
                         for k in ks if expected[key].get(k) != actual[key].get(k)]
                problems.append(f"{key} differ:\n" + "\n".join(lines[:40]))
            else:
                problems.append(f"{key}: source={expected[key]!r} {what}={actual[key]!r}")
    assert not problems, f"{what} is not the same as the source:\n" + "\n".join(problems)
