#!/usr/bin/env bash
# Benchmark: what counting rows in the dump's snapshot costs a backup.
#
#   bench/row_counts.sh SAUVE_BIN
#
# The database of bench/run.sh (pgbench, realistic filler, scale BENCH_SCALE,
# default 50) on a throwaway PostgreSQL 15, then BENCH_ROUNDS (default 9)
# interleaved rounds of `sauve backup` to file:// with
#   off       SAUVE_PG_ROW_COUNTS=off
#   exact     SAUVE_PG_ROW_COUNTS=exact (the default)
#   estimate  SAUVE_PG_ROW_COUNTS=estimate
# and prints each one's median wall seconds and its cost over off, in one
# run: these machines are shared and noisy, and only ratios from interleaved
# rounds mean anything. bench/run.sh measures the same three as rows (a),
# (f) and (g) beside the other pipelines, in fewer rounds.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../scripts/lib/pg.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../scripts/lib/pg.sh"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

SAUVE_BIN=$(realpath -e -- "${1:?usage: bench/row_counts.sh SAUVE_BIN}")
SCALE=${BENCH_SCALE:-50}
ROUNDS=${BENCH_ROUNDS:-9}
FILLER=${BENCH_FILLER:-realistic}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
TIME=/usr/bin/time
for n in "$SCALE" "$ROUNDS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || {
        echo "bench: BENCH_SCALE and BENCH_ROUNDS must be positive integers" >&2
        exit 64
    }
done
bench_check_filler
bench_require_tools "$PGBIN/initdb" "$PGBIN/pg_ctl" "$PGBIN/psql" "$PGBIN/pg_dump" "$PGBIN/pgbench" "$TIME"
pg_require_root bench
scrub_env

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
pg_workdir "${TMPDIR:-/tmp}/sauve-bench-rows.XXXXXX"
cleaned_up() { log "stopped PostgreSQL, removed $WORK"; }
pg_cleanup_on_exit cleaned_up
cd "$WORK"

PG_PORT=$(free_port)
PASSWORD=$(random_password)
pg_start die "sauve row count benchmark" "synchronous_commit = off" "full_page_writes = off" \
    "max_wal_size = 8GB" "maintenance_work_mem = 512MB" "autovacuum = off"
psql_admin <<<"CREATE ROLE bench LOGIN PASSWORD '$PASSWORD'"
export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=bench PGPASSWORD=$PASSWORD
bench_load bench "$SCALE"
psql_admin -c CHECKPOINT

run() ( # MODE ROUND
    local dir=$WORK/$1.$2
    mkdir -p "$dir/store"
    export HOME=$WORK SAUVE_STORAGE="file://$dir/store" SAUVE_PG_DATABASES=bench SAUVE_PG_GLOBALS=false \
        SAUVE_PG_BINDIR="$PGBIN" SAUVE_PG_ROW_COUNTS="$1" SAUVE_TERMINATION_LOG="$WORK/termination-log"
    "$TIME" -f '%e' -o "$dir/time" "$SAUVE_BIN" backup >/dev/null 2>"$dir/stderr" || {
        sed 's/^/    /' "$dir/stderr" >&2
        die "sauve backup ($1) failed"
    }
    # the counts went into the manifest as asked
    case $1 in
    off) ! grep -q '"row_counts"' "$dir"/store/default/*/manifest.json ;;
    exact) grep -q '"how": "exact"' "$dir"/store/default/*/manifest.json ;;
    estimate) grep -q '"how": "estimate"' "$dir"/store/default/*/manifest.json ;;
    esac || die "the manifest of ($1) does not have the counts it should"
    printf '%s\t%s\n' "$1" "$(cat "$dir/time")" >>"$WORK/results.tsv"
    log "round $2 ($1): $(cat "$dir/time") s"
    rm -rf "$dir/store"
)

log "warm-up (not measured)"
run off 0
: >"$WORK/results.tsv"
for r in $(seq "$ROUNDS"); do
    for mode in off exact estimate; do run "$mode" "$r"; done
done

median() {
    awk -F'\t' -v m="$1" '$1 == m { print $2 }' "$WORK/results.tsv" | sort -g |
        awk '{ v[NR] = $1 } END { printf "%.2f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
off=$(median off)
echo
echo "sauve backup of pgbench scale $SCALE ($FILLER filler, $(psql_admin -At -c "SELECT pg_size_pretty(pg_database_size('bench'))")), $ROUNDS interleaved rounds, median wall s, $(nproc) cores:"
echo
echo "| SAUVE_PG_ROW_COUNTS | median wall s | cost over off |"
echo "| --- | ---: | ---: |"
for mode in off exact estimate; do
    m=$(median "$mode")
    printf '| %s | %s | %s %% |\n' "$mode" "$m" "$(awk "BEGIN { printf \"%+.1f\", ($m / $off - 1) * 100 }")"
done
