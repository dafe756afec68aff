#!/usr/bin/env bash
# Back up and restore a throwaway PostgreSQL end to end with sauve.
#
#   scripts/demo.sh SAUVE_BIN          (what `make demo` runs)
#
# Starts PostgreSQL 15 on loopback (ephemeral port) with a password-protected
# role, loads a small "shop" database, then runs `sauve check`, `sauve backup`
# to a temporary local directory, `sauve list`, and `sauve restore
# postgres:shop --into shop_restored --yes`, and proves the restored database
# matches the original: row counts and checksums of every table, view and
# sequence, and a diff of both schemas. Exits non-zero on any mismatch.
# Everything it starts and writes lives under one temporary directory that is
# removed on exit, failure or Ctrl-C.
set -euo pipefail

usage() {
    echo "usage: $0 SAUVE_BIN" >&2
    exit 64
}
[ $# -eq 1 ] || usage

SAUVE_BIN=$(realpath -e -- "$1") || {
    echo "demo: $1: no such file" >&2
    exit 66
}
[ -x "$SAUVE_BIN" ] || {
    echo "demo: $SAUVE_BIN is not executable" >&2
    exit 66
}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
for tool in initdb pg_ctl psql pg_dump pg_restore; do
    [ -x "$PGBIN/$tool" ] || {
        echo "demo: $PGBIN/$tool not found (install postgresql-15)" >&2
        exit 69
    }
done
command -v zstd >/dev/null || {
    echo "demo: zstd not found" >&2
    exit 69
}
[ "$(id -u)" -eq 0 ] || {
    echo "demo: run as root (PostgreSQL is started as the postgres user with runuser)" >&2
    exit 77
}

# Whatever PG*/SAUVE_* the caller has set must not steer the demo.
while IFS= read -r var; do
    case $var in PG* | SAUVE_* | AWS_*) unset "$var" ;; esac
done < <(compgen -e)

if [ -t 1 ]; then
    BOLD=$'\e[1m' GREEN=$'\e[32m' RED=$'\e[31m' RESET=$'\e[0m'
else
    BOLD='' GREEN='' RED='' RESET=''
fi
STEP=0
STEPS=8
step() {
    STEP=$((STEP + 1))
    printf '\n%s==> [%d/%d] %s%s\n' "$BOLD" "$STEP" "$STEPS" "$*" "$RESET"
}
say() { printf '    %s\n' "$*"; }
fail() {
    printf '%sdemo: %s%s\n' "$RED" "$*" "$RESET" >&2
    exit 1
}

# --- everything below lives in $WORK, removed by the trap -------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sauve-demo.XXXXXX")
chmod 755 "$WORK"               # the postgres user must traverse it
PGDATA_DIR=$WORK/pg             # data directory and socket directory
STORE=$WORK/backups             # SAUVE_STORAGE=file://$STORE
PG_STARTING=0

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM HUP
    if [ "$PG_STARTING" = 1 ]; then
        # pg_ctl puts the postmaster in its own session, so Ctrl-C during
        # start does not reach it: wait for its pid file, then stop it.
        for _ in $(seq 50); do
            [ -f "$PGDATA_DIR/postmaster.pid" ] && break
            sleep 0.1
        done
    fi
    if [ -f "$PGDATA_DIR/postmaster.pid" ]; then
        local pid
        pid=$(head -n 1 "$PGDATA_DIR/postmaster.pid")
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1 ||
            kill -QUIT "$pid" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        say "stopped PostgreSQL (pid $pid)"
    fi
    cd /
    rm -rf -- "$WORK"
    say "removed $WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

cd "$WORK"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PGPORT_DEMO=$(free_port)
APP_PASSWORD=$(od -An -N15 -tx1 /dev/urandom | tr -d ' \n')

# As the superuser over the Unix socket (trust): set-up and inspection only.
psql_admin() {
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGDATA_DIR" -p "$PGPORT_DEMO" -U postgres "$@"
}
# As the application role over TCP with its password: what sauve uses too.
psql_app() {
    PGPASSWORD=$APP_PASSWORD "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$PGPORT_DEMO" -U app "$@"
}
# sauve, configured through its environment as in a Pod. Exported in a
# subshell rather than passed to env(1), so that the password is on no argv.
SAUVE_LOG=$WORK/sauve.log
sauve_env() {
    export HOME=$WORK SAUVE_STORAGE="file://$STORE" \
        PGHOST=127.0.0.1 PGPORT="$PGPORT_DEMO" PGUSER=app PGPASSWORD="$APP_PASSWORD" \
        SAUVE_PG_DATABASES=shop SAUVE_PG_BINDIR="$PGBIN" \
        SAUVE_LOG_FORMAT=text SAUVE_TERMINATION_LOG="$WORK/termination-log"
    exec "$SAUVE_BIN" "$@"
}
sauve() {
    local rc
    # stdout as is; stderr (the log) indented, and kept to check it for secrets.
    if { (sauve_env "$@") 2>&1 1>&3 3>&- | tee -a "$SAUVE_LOG" | sed 's/^/    | /' >&2; } 3>&1; then
        rc=0
    else
        rc=${PIPESTATUS[0]}
    fi
    return "$rc"
}
now_us() { echo "${EPOCHREALTIME//[.,]/}"; }
secs_since() {
    local d=$(($(now_us) - $1))
    printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}
START_TIME=$(now_us)
show() { sed 's/^/    /'; }

# -----------------------------------------------------------------------------
step "Start a throwaway PostgreSQL 15 on 127.0.0.1:$PGPORT_DEMO"
install -d -o postgres -g postgres -m 700 "$PGDATA_DIR"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres -A trust \
    --auth-host=scram-sha-256 --no-locale --no-sync -E UTF8 >"$WORK/initdb.log" 2>&1 ||
    {
        cat "$WORK/initdb.log" >&2
        fail "initdb failed"
    }
cat >>"$PGDATA_DIR/postgresql.conf" <<EOF
# sauve demo
port = $PGPORT_DEMO
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDATA_DIR'
fsync = off
EOF
PG_STARTING=1
runuser -u postgres -- "$PGBIN/pg_ctl" -w -D "$PGDATA_DIR" -l "$PGDATA_DIR/log" start >/dev/null ||
    {
        cat "$PGDATA_DIR/log" >&2
        fail "PostgreSQL did not start"
    }
PG_STARTING=0
say "$(psql_admin -At -c 'select version()' | cut -d, -f1), data in $PGDATA_DIR"
say "TCP connections need a password (scram-sha-256); sauve connects over TCP."

# -----------------------------------------------------------------------------
step "Create the role 'app' (password) and load a sample 'shop' database"
psql_admin <<SQL
CREATE ROLE app LOGIN CREATEDB PASSWORD '$APP_PASSWORD';
CREATE ROLE reporting NOLOGIN;
CREATE DATABASE shop OWNER app;
SQL
psql_app -d shop <<'SQL'
CREATE SEQUENCE invoice_number_seq START 10000;

CREATE TABLE customers (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL UNIQUE,
    city       text,
    created_at timestamptz NOT NULL
);
COMMENT ON TABLE customers IS 'Kunden — clients — 顧客';

CREATE TABLE products (
    id    integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    sku   text NOT NULL UNIQUE,
    name  text NOT NULL,
    price numeric(10,2) NOT NULL CHECK (price >= 0),
    tags  text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE orders (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id    integer NOT NULL REFERENCES customers,
    placed_at      timestamptz NOT NULL,
    status         text NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'cancelled')),
    invoice_number bigint UNIQUE DEFAULT nextval('invoice_number_seq'),
    note           jsonb
);
CREATE INDEX orders_customer_placed ON orders (customer_id, placed_at);

CREATE TABLE order_items (
    order_id   bigint NOT NULL REFERENCES orders ON DELETE CASCADE,
    product_id integer NOT NULL REFERENCES products,
    quantity   integer NOT NULL CHECK (quantity > 0),
    unit_price numeric(10,2) NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE VIEW order_totals AS
    SELECT o.id AS order_id, c.name AS customer, o.status,
           sum(i.quantity * i.unit_price) AS total
    FROM orders o
    JOIN customers c ON c.id = o.customer_id
    JOIN order_items i ON i.order_id = o.id
    GROUP BY o.id, c.name, o.status;
GRANT SELECT ON order_totals TO reporting;

-- 48 products with names in many scripts.
INSERT INTO products (sku, name, price, tags)
SELECT format('SKU-%s-%s', p.n, s.size),
       p.name || ' (' || s.size || ')',
       round((p.n * 3.17 + s.mult * 4.5)::numeric, 2),
       ARRAY[p.tag, lower(s.size)]
FROM (VALUES (1, 'Café moulu — Éthiopie', 'café'),
             (2, 'Kaffeemühle „Größe“', 'küche'),
             (3, 'Crème brûlée', 'dessert'),
             (4, 'Ψωμί χωριάτικο', 'ψωμί'),
             (5, 'Чай с лимоном', 'чай'),
             (6, '抹茶 (宇治)', '茶'),
             (7, 'Smørbrød', 'smør'),
             (8, 'Jalapeño salsa', 'picante'),
             (9, 'Żurek staropolski', 'zupa'),
             (10, 'Çay bardağı', 'çay'),
             (11, 'Pizza kit 🍕', 'pizza'),
             (12, 'Ñandú de peluche', 'juguete')) AS p(n, name, tag)
CROSS JOIN (VALUES ('S', 1), ('M', 2), ('L', 3), ('XL', 4)) AS s(size, mult);

-- 1,000 customers.
INSERT INTO customers (name, email, city, created_at)
SELECT (ARRAY['Zoë', 'José', 'Søren', 'Łukasz', 'Ana María', 'Jürgen', 'François',
              'Chloé', 'Åsa', 'Nguyễn Văn', '李', 'Ayşe', 'Renée', 'Björk'])[1 + i % 14]
       || ' ' ||
       (ARRAY['Müller', 'García', 'Østergaard', 'Wójcik', 'Dubois', 'Núñez', 'Sørensen',
              'O''Brien', 'Ivanova', '山田', 'Çelik', 'Håkansson'])[1 + (i / 14) % 12],
       format('customer%s@example.org', i),
       (ARRAY['Zürich', 'Kraków', 'São Paulo', 'Malmö', 'Reykjavík', 'Montréal',
              'Ōsaka', 'İstanbul', 'Kyiv', 'Lyon'])[1 + i % 10],
       timestamptz '2023-01-01 00:00:00+00' + i * interval '7 hours 13 minutes'
FROM generate_series(1, 1000) AS i;

-- 3,000 orders, every one numbered from invoice_number_seq.
INSERT INTO orders (customer_id, placed_at, status, note)
SELECT 1 + (i * 7919) % 1000,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '2 hours 37 minutes',
       (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + (i * 31) % 4],
       CASE WHEN i % 5 = 0
            THEN jsonb_build_object('gift', true, 'message', 'Joyeux anniversaire ! 🎂')
       END
FROM generate_series(1, 3000) AS i;

-- 1 to 3 lines per order: about 6,000 rows.
INSERT INTO order_items (order_id, product_id, quantity, unit_price)
SELECT o.id, p.id, 1 + (o.id * k) % 4, p.price
FROM orders o
CROSS JOIN generate_series(1, 3) AS k
JOIN products p ON p.id = 1 + (o.id * 13 + k * 17) % 48
WHERE k <= 1 + o.id % 3;

ANALYZE customers, products, orders, order_items;
SQL
psql_app -d shop -At -F ' ' -c "
    SELECT 'customers', count(*), 'rows' FROM customers UNION ALL
    SELECT 'products', count(*), 'rows, e.g. ' || string_agg(name, ', ' ORDER BY id) FILTER (WHERE id % 4 = 1 AND id < 24) FROM products UNION ALL
    SELECT 'orders', count(*), 'rows' FROM orders UNION ALL
    SELECT 'order_items', count(*), 'rows' FROM order_items" |
    while read -r table n rest; do printf '    %-12s %5s %s\n' "$table" "$n" "$rest"; done
say "plus a view (order_totals, granted to role reporting), indexes, foreign keys and checks"
say "sequence invoice_number_seq is at $(psql_app -d shop -At -c 'select last_value from invoice_number_seq')"

# -----------------------------------------------------------------------------
step "sauve check: validate the configuration, reach PostgreSQL and the storage"
say "SAUVE_STORAGE=file://$STORE  PGHOST=127.0.0.1 PGPORT=$PGPORT_DEMO PGUSER=app PGPASSWORD=***"
say "SAUVE_PG_DATABASES=shop  SAUVE_PG_BINDIR=$PGBIN"
sauve check || fail "sauve check failed (exit $?)"

# -----------------------------------------------------------------------------
step "sauve backup"
t0=$(now_us)
rc=0
sauve backup || rc=$?
[ "$rc" -eq 0 ] || fail "sauve backup exited $rc (0 expected)"
say "exit status 0 in $(secs_since "$t0") s"

# -----------------------------------------------------------------------------
step "What was stored"
(cd "$STORE" && find . -type f -printf '%10s  %P\n' | sort -k2) | show
dump=$(find "$STORE" -path '*/postgres/shop.dump.zst' -type f | head -n 1)
[ -n "$dump" ] || fail "no */postgres/shop.dump.zst under $STORE (the documented layout)"
[ -f "$(dirname "$(dirname "$dump")")/manifest.json" ] || fail "no manifest.json beside the dump"
say "The dump is zstd-compressed pg_dump custom format, readable without sauve:"
say "  zstd -dc .../postgres/shop.dump.zst | pg_restore --list"
zstd -dcq "$dump" >"$WORK/shop.dump" || fail "$dump is not a valid zstd stream"
"$PGBIN/pg_restore" --list "$WORK/shop.dump" | grep -E ' (TABLE|VIEW|SEQUENCE) ' | show
if grep -rqF -- "$APP_PASSWORD" "$STORE" "$SAUVE_LOG"; then
    fail "the password of role app appears in the stored files or sauve's log"
fi
say "The password of role app appears neither in sauve's log nor in the storage."

# -----------------------------------------------------------------------------
step "sauve list"
sauve list || fail "sauve list failed (exit $?)"

# -----------------------------------------------------------------------------
step "sauve restore postgres:shop --into shop_restored --yes"
sauve restore postgres:shop --into shop_restored --yes || fail "sauve restore failed (exit $?)"

# -----------------------------------------------------------------------------
step "Compare shop and shop_restored"
objects=$(psql_admin -d shop -At -F ' ' -c "
    SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' ELSE 'table' END, c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'S')
    ORDER BY c.relkind, c.relname")
# Prints "ROWS MD5" for a table or view (its rows in a canonical order,
# hashed), "LAST_VALUE MD5" for a sequence.
fingerprint() {
    local db=$1 kind=$2 name=$3 query
    if [ "$kind" = sequence ]; then
        query="SELECT last_value, md5(last_value::text || ',' || is_called::text) FROM public.\"$name\""
    else
        query="SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))
               FROM public.\"$name\" t"
    fi
    psql_admin -d "$db" -At -F ' ' -c "$query"
}
mismatch=0
printf '    %-9s %-20s %9s %9s  %-16s %-16s\n' "" "" "shop" "restored" "" ""
printf '    %-9s %-20s %9s %9s  %-16s %-16s\n' kind name "rows" "rows" "md5 (shop)" "md5 (restored)"
while read -r kind name; do
    read -r n1 h1 < <(fingerprint shop "$kind" "$name")
    if ! out=$(fingerprint shop_restored "$kind" "$name" 2>&1); then
        out="- missing"
    fi
    read -r n2 h2 <<<"$out"
    verdict="ok"
    if [ "$n1" != "$n2" ] || [ "$h1" != "$h2" ]; then
        verdict="${RED}DIFFERENT${RESET}"
        mismatch=1
    fi
    printf '    %-9s %-20s %9s %9s  %-16s %-16s %s\n' "$kind" "$name" "$n1" "$n2" "${h1:0:16}" "${h2:0:16}" "$verdict"
done <<<"$objects"

# Schema of both, without the random \restrict keys pg_dump >= 15.14 prints.
schema() {
    "$PGBIN/pg_dump" --schema-only -h "$PGDATA_DIR" -p "$PGPORT_DEMO" -U postgres "$1" |
        grep -Ev '^\\(un)?restrict '
}
schema shop >"$WORK/schema-shop.sql"
schema shop_restored >"$WORK/schema-restored.sql"
if diff -u --label shop --label shop_restored "$WORK/schema-shop.sql" "$WORK/schema-restored.sql" >"$WORK/schema.diff"; then
    say "pg_dump --schema-only: identical ($(grep -c . "$WORK/schema-shop.sql") lines)"
else
    say "pg_dump --schema-only differs:"
    show <"$WORK/schema.diff"
    mismatch=1
fi
[ "$mismatch" -eq 0 ] || fail "data do not match"
printf '\n    %sdata match%s: shop_restored is identical to shop\n' "$GREEN" "$RESET"

printf '\n%s==> Done in %s s; stopping what the demo started%s\n' "$BOLD" "$(secs_since "$START_TIME")" "$RESET"
