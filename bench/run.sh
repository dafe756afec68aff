#!/usr/bin/env bash
# Benchmark: sauve backup against the pg_dump pipelines people run by hand.
#
#   bench/run.sh SAUVE_BIN        (what `make bench` runs)
#
# Builds a pgbench database with realistic filler on a throwaway PostgreSQL 15,
# then measures, in interleaved rounds (a b c d e f g a b c d e f g ...):
#   (a) sauve backup to local storage           (one database, no globals,
#                                                row counts exact: the default)
#   (b) pg_dump -Fc -Z0 DB > /dev/null           (the floor)
#   (c) pg_dump -Fc -Z0 DB | zstd -3 -T0 > /dev/null   (the practical limit)
#   (d) pg_dump DB | gzip > FILE                 (what users run today)
#   (e) (a) with age encryption to two recipients (its cost)
#   (f) (a) with SAUVE_PG_ROW_COUNTS=off        (what counting rows costs)
#   (g) (a) with SAUVE_PG_ROW_COUNTS=estimate
# each under GNU time (wall seconds, peak RSS, blocks written), and prints a
# Markdown table of medians. Then runs sauve once on a smaller database to see
# whether its memory stays flat. docs/benchmarks.md explains every figure.
#
# Environment:
#   BENCH_SCALE=50        pgbench scale of the main database (50: about 750 MB)
#   BENCH_SMALL_SCALE=10  scale of the second database (RSS flatness)
#   BENCH_ROUNDS=3        interleaved rounds
#   BENCH_FILLER=realistic  or "blank": pgbench's own blank filler (compresses ~50x)
#   BENCH_DIR=$TMPDIR     where the cluster and the outputs live (needs ~3x the database)
#   BENCH_OUT=FILE        also write the report (Markdown) to FILE
# Everything lives under one temporary directory, removed on exit or Ctrl-C.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../scripts/lib/pg.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../scripts/lib/pg.sh"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    echo "usage: $0 SAUVE_BIN" >&2
    exit 64
}
[ $# -eq 1 ] || usage
SAUVE_BIN=$(realpath -e -- "$1") || {
    echo "bench: $1: no such file" >&2
    exit 66
}
[ -x "$SAUVE_BIN" ] || {
    echo "bench: $SAUVE_BIN is not executable" >&2
    exit 66
}

SCALE=${BENCH_SCALE:-50}
SMALL_SCALE=${BENCH_SMALL_SCALE:-10}
ROUNDS=${BENCH_ROUNDS:-3}
FILLER=${BENCH_FILLER:-realistic}
BASE_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
OUT=${BENCH_OUT:-}
ZSTD_LEVEL=3
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
TIME=/usr/bin/time

for n in "$SCALE" "$SMALL_SCALE" "$ROUNDS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || {
        echo "bench: BENCH_SCALE, BENCH_SMALL_SCALE and BENCH_ROUNDS must be positive integers" >&2
        exit 64
    }
done
bench_check_filler
bench_require_tools "$PGBIN/initdb" "$PGBIN/pg_ctl" "$PGBIN/psql" "$PGBIN/pg_dump" "$PGBIN/pg_restore" \
    "$PGBIN/pgbench" "$TIME" "$(command -v zstd || echo zstd)" "$(command -v gzip || echo gzip)"
pg_require_root bench

# The caller's PG*/SAUVE_*/AWS_* settings must not steer the benchmark.
scrub_env

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

pg_workdir "$BASE_DIR/sauve-bench.XXXXXX" # WORK; PGDATA_DIR=$WORK/pg
RUNS=$WORK/runs                          # one directory per measured command
mkdir -p "$RUNS"

# pg_cleanup stops PostgreSQL and removes $WORK on exit; this says so.
cleaned_up() { log "stopped PostgreSQL, removed $WORK"; }
pg_cleanup_on_exit cleaned_up
cd "$WORK"

# --- PostgreSQL ---------------------------------------------------------------
PG_PORT=$(free_port)
PASSWORD=$(random_password)
DB=bench
SMALL_DB=bench_small

log "starting PostgreSQL on 127.0.0.1:$PG_PORT in $PGDATA_DIR"
# Durability and autovacuum off: they only slow down loading, and the data is
# frozen and analysed before anything is measured, so dumps write nothing.
pg_start die "sauve benchmark" "synchronous_commit = off" "full_page_writes = off" \
    "max_wal_size = 8GB" "maintenance_work_mem = 512MB" "autovacuum = off"

psql_admin <<<"CREATE ROLE bench LOGIN PASSWORD '$PASSWORD'" # stdin: not on an argv
# Every client below (pg_dump, pgbench, sauve) connects as sauve would: TCP, password.
export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=bench PGPASSWORD=$PASSWORD

log "loading $DB (scale $SCALE) and $SMALL_DB (scale $SMALL_SCALE)"
bench_load "$DB" "$SCALE"
bench_load "$SMALL_DB" "$SMALL_SCALE"
psql_admin -c CHECKPOINT

# --- measuring ----------------------------------------------------------------
# Each measured command runs under GNU time: %e wall seconds, %M peak RSS in
# KiB, %O file system output blocks (512 bytes). The kernel folds a child's
# figures into its parent when the parent reaps it, so for a command that
# forks (sauve and its pg_dump; bash and the processes of its pipeline) %M is
# the largest peak RSS among them and %O the blocks all of them wrote.

# sauve's configuration, exported (call it in a subshell): as in a Pod, and
# no password on any argv. PGHOST, PGPORT, PGUSER, PGPASSWORD are exported above.
sauve_config() { # STORE_DIR DB
    export HOME=$WORK SAUVE_STORAGE="file://$1" SAUVE_PG_DATABASES="$2" SAUVE_PG_GLOBALS=false \
        SAUVE_PG_BINDIR="$PGBIN" SAUVE_ZSTD_LEVEL="$ZSTD_LEVEL" \
        SAUVE_LOG_FORMAT=json SAUVE_TERMINATION_LOG="$WORK/termination-log"
}

# Sum of the sizes of the files under a directory.
disk_bytes() { find "$1" -type f -printf '%s\n' | awk '{ n += $1 } END { printf "%d\n", n }'; }

# Runs one command, its stdout to /dev/null. $1: run directory (gets time,
# stderr, disk); $2: the directory whose size afterwards is the command's
# "bytes on disk"; rest: argv.
measure() {
    local dir=$1 outdir=$2 rc=0
    shift 2
    mkdir -p "$dir" "$outdir"
    "$TIME" -f '%e %M %O' -o "$dir/time" "$@" >/dev/null 2>"$dir/stderr" || rc=$?
    if [ "$rc" -ne 0 ]; then
        log "FAILED (exit $rc): $*"
        sed 's/^/    /' "$dir/stderr" >&2
        exit 1
    fi
    disk_bytes "$outdir" >"$dir/disk"
}

# Samples /proc/PID/status VmHWM (the process's own peak RSS, without its
# children) of the sauve that $TIME started, until it exits. Used on the
# unmeasured warm-up and the small-database run only, never in the rounds.
sample_hwm() { # TIME_PID OUT
    local tpid=$1 out=$2 spid="" k v hwm=0
    while kill -0 "$tpid" 2>/dev/null; do
        [ -n "$spid" ] || spid=$(pgrep -P "$tpid" | head -n 1 || true)
        if [ -n "$spid" ] && [ -r "/proc/$spid/status" ]; then
            while read -r k v _; do
                if [ "$k" = VmHWM: ] && [ "$v" -gt "$hwm" ]; then hwm=$v; fi
            done <"/proc/$spid/status" 2>/dev/null || true
        fi
        sleep 0.05
    done
    echo "$hwm" >"$out"
}
sauve_sampled() ( # NAME DB
    local dir=$RUNS/$1 db=$2 rc=0 tpid
    mkdir -p "$dir/store"
    sauve_config "$dir/store" "$db"
    "$TIME" -f '%e %M %O' -o "$dir/time" "$SAUVE_BIN" backup >/dev/null 2>"$dir/stderr" &
    tpid=$!
    sample_hwm "$tpid" "$dir/hwm"
    wait "$tpid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        log "FAILED (exit $rc): sauve backup of $db"
        sed 's/^/    /' "$dir/stderr" >&2
        exit 1
    fi
    disk_bytes "$dir/store" >"$dir/disk"
)

run_one() { # CMD ROUND
    local cmd=$1 r=$2 dir=$RUNS/$1.$2
    case $cmd in
    a)
        (
            sauve_config "$dir/store" "$DB"
            measure "$dir" "$dir/store" "$SAUVE_BIN" backup
        )
        ;;
    b)
        measure "$dir" "$dir/out" "$PGBIN/pg_dump" -Fc -Z0 -d "$DB"
        ;;
    c)
        # shellcheck disable=SC2016 # expanded by the inner bash
        measure "$dir" "$dir/out" bash -o pipefail -c \
            '"$0" -Fc -Z0 -d "$1" | zstd -q -"$2" -T0 >/dev/null' "$PGBIN/pg_dump" "$DB" "$ZSTD_LEVEL"
        ;;
    d)
        # shellcheck disable=SC2016 # expanded by the inner bash
        measure "$dir" "$dir/out" bash -o pipefail -c \
            '"$0" -d "$1" | gzip >"$2"' "$PGBIN/pg_dump" "$DB" "$dir/out/$DB.sql.gz"
        ;;
    e)
        # (a) with client-side encryption to two age recipients, as the
        # README recommends (an operations key and a break-glass key)
        (
            sauve_config "$dir/store" "$DB"
            export SAUVE_AGE_RECIPIENTS="$AGE_RECIPIENTS"
            measure "$dir" "$dir/store" "$SAUVE_BIN" backup
        )
        ;;
    f | g)
        # (a) without row counts, and with the planner's estimates only
        (
            sauve_config "$dir/store" "$DB"
            if [ "$cmd" = f ]; then export SAUVE_PG_ROW_COUNTS=off; else export SAUVE_PG_ROW_COUNTS=estimate; fi
            measure "$dir" "$dir/store" "$SAUVE_BIN" backup
        )
        ;;
    esac
    read -r wall rss blocks <"$dir/time"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$cmd" "$wall" "$rss" "$((blocks * 512))" "$(cat "$dir/disk")" >>"$WORK/results.tsv"
    log "round $r ($cmd): ${wall} s, peak RSS $((rss / 1024)) MiB, wrote $((blocks * 512)) B, on disk $(cat "$dir/disk") B"
    # Keep only what the checks below read: sauve's last set, nothing else.
    if { [ "$cmd" = a ] || [ "$cmd" = e ]; } && [ "$r" -eq "$ROUNDS" ]; then return; fi
    rm -rf "$dir/store" "$dir/out"
}

log "warm-up (not measured): pg_dump -Fc -Z0 | wc -c, then sauve backup once"
DUMP_BYTES=$("$PGBIN/pg_dump" -Fc -Z0 -d "$DB" | wc -c)
PLAIN_BYTES=$("$PGBIN/pg_dump" -d "$DB" | wc -c)
sauve_sampled warmup "$DB"
read -r _ WARM_RSS _ <"$RUNS/warmup/time"
WARM_HWM=$(cat "$RUNS/warmup/hwm")
rm -rf "$RUNS/warmup/store"

# Two age keys for row (e), made by Debian's age-keygen; only their public
# halves reach sauve.
age-keygen -o "$WORK/age-ops.key" 2>/dev/null
age-keygen -o "$WORK/age-glass.key" 2>/dev/null
AGE_RECIPIENTS="$(age-keygen -y "$WORK/age-ops.key"),$(age-keygen -y "$WORK/age-glass.key")"

printf 'round\tcmd\twall_s\tpeak_rss_kib\twritten_bytes\tdisk_bytes\n' >"$WORK/results.tsv"
for r in $(seq "$ROUNDS"); do
    for cmd in a b c d e f g; do run_one "$cmd" "$r"; done
done

log "sauve backup of $SMALL_DB (scale $SMALL_SCALE), once"
sauve_sampled small "$SMALL_DB"
read -r SMALL_WALL SMALL_RSS _ <"$RUNS/small/time"
SMALL_HWM=$(cat "$RUNS/small/hwm")
SMALL_DUMP_BYTES=$("$PGBIN/pg_dump" -Fc -Z0 -d "$SMALL_DB" | wc -c)

# Is what sauve stored the whole dump? Decompress its last set and compare.
set_dump=$(find "$RUNS/a.$ROUNDS/store" -path "*/postgres/$DB.dump.zst" -type f | head -n 1)
[ -n "$set_dump" ] || die "sauve left no */postgres/$DB.dump.zst in its storage"
[ -f "$(dirname "$(dirname "$set_dump")")/manifest.json" ] || die "sauve's set has no manifest.json"
STORED_RAW=$(zstd -dcq "$set_dump" | wc -c)
zstd -dcq "$set_dump" >"$WORK/check.dump"
"$PGBIN/pg_restore" --list "$WORK/check.dump" >/dev/null || die "sauve's dump is not a pg_dump archive"
rm -f "$WORK/check.dump"
# And the encrypted one opens with age itself, to the same dump.
set_age=$(find "$RUNS/e.$ROUNDS/store" -path "*/postgres/$DB.dump.zst.age" -type f | head -n 1)
[ -n "$set_age" ] || die "sauve left no */postgres/$DB.dump.zst.age in its storage (row e)"
AGE_RAW=$(age -d -i "$WORK/age-glass.key" "$set_age" | zstd -dcq | wc -c)
[ "$AGE_RAW" = "$DUMP_BYTES" ] || die "the encrypted dump opens to $AGE_RAW B, not $DUMP_BYTES"

# --- report -------------------------------------------------------------------
median() { # CMD COLUMN (3 wall, 4 rss, 5 written, 6 disk)
    awk -F'\t' -v c="$1" -v k="$2" 'NR > 1 && $2 == c { print $k }' "$WORK/results.tsv" | sort -g |
        awk '{ v[NR] = $1 } END { printf "%.6f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
group() { printf '%d' "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }

declare -A label=(
    [a]="(a) \`sauve backup\` to file://"
    [b]="(b) \`pg_dump -Fc -Z0 > /dev/null\` (floor)"
    [c]="(c) \`pg_dump -Fc -Z0 \\| zstd -$ZSTD_LEVEL -T0 > /dev/null\` (practical limit)"
    [d]="(d) \`pg_dump \\| gzip > file\` (users today)"
    [e]="(e) \`sauve backup\` to file://, age-encrypted to 2 recipients"
    [f]="(f) \`sauve backup\` to file://, \`SAUVE_PG_ROW_COUNTS=off\`"
    [g]="(g) \`sauve backup\` to file://, \`SAUVE_PG_ROW_COUNTS=estimate\`"
)
declare -A wall rss written disk
for c in a b c d e f g; do
    wall[$c]=$(median "$c" 3)
    rss[$c]=$(median "$c" 4)
    written[$c]=$(median "$c" 5)
    disk[$c]=$(median "$c" 6)
done

verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo "NOT met"; fi; }
sauve_floor=$(calc '%.2f' "${wall[a]} / ${wall[b]}")
gzip_sauve=$(calc '%.2f' "${wall[d]} / ${wall[a]}")
age_cost=$(calc '%.1f' "(${wall[e]} / ${wall[a]} - 1) * 100")
counts_cost=$(calc '%.1f' "(${wall[a]} / ${wall[f]} - 1) * 100")
estimate_cost=$(calc '%.1f' "(${wall[g]} / ${wall[f]} - 1) * 100")
rss_big=$(calc '%.1f' "${rss[a]} / 1024")
rss_small=$(calc '%.1f' "$SMALL_RSS / 1024")
rss_diff=$((${rss[a]%.*} - SMALL_RSS))
flat_ok="${rss_diff#-} <= 4096 || ${rss_diff#-} <= 0.10 * $SMALL_RSS"

report() {
    echo "## sauve benchmark, $(date -u +%Y-%m-%d)"
    echo
    echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, $(uname -sr)"
    echo "- PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }'), $(zstd --version | grep -o 'v[0-9.]*' | head -n 1 | sed 's/^/zstd /'), $(gzip --version | head -n 1), sauve: $("$SAUVE_BIN" version 2>/dev/null | head -n 1 || echo '?')"
    echo "- database: pgbench scale $SCALE, $FILLER filler, $(psql_admin -At -c "SELECT pg_size_pretty(pg_database_size('$DB'))") on disk;" \
        "pg_dump -Fc -Z0 output $(group "$DUMP_BYTES") B, plain pg_dump output $(group "$PLAIN_BYTES") B"
    echo "- $ROUNDS interleaved round(s) (a b c d e f g a b c d e f g ...), medians; zstd level $ZSTD_LEVEL; all clients over TCP 127.0.0.1 with a password"
    echo
    echo "| command | median wall s | × floor | gzip ÷ this | median peak RSS MiB | bytes on disk | bytes written (%O×512) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for c in a b c d e f g; do
        printf '| %s | %.2f | %.2f | %.2f | %.1f | %s | %s |\n' "${label[$c]}" "${wall[$c]}" \
            "$(calc '%.4f' "${wall[$c]} / ${wall[b]}")" "$(calc '%.4f' "${wall[d]} / ${wall[$c]}")" \
            "$(calc '%.4f' "${rss[$c]} / 1024")" "$(group "${disk[$c]%.*}")" "$(group "${written[$c]%.*}")"
    done
    echo
    echo "sauve's stored dump decompresses to $(group "$STORED_RAW") B (pg_dump -Fc -Z0: $(group "$DUMP_BYTES") B); the encrypted one (e), opened by \`age -d\` and zstd, to $(group "$AGE_RAW") B."
    echo "sauve's own peak RSS, sampled from /proc (without its pg_dump child): $(calc '%.1f' "$WARM_HWM / 1024") MiB at scale $SCALE, $(calc '%.1f' "$SMALL_HWM / 1024") MiB at scale $SMALL_SCALE."
    echo "RSS flatness: sauve backup peak RSS $rss_big MiB at scale $SCALE (median) vs $rss_small MiB at scale $SMALL_SCALE" \
        "(one run, $SMALL_WALL s, pg_dump -Fc -Z0 output $(group "$SMALL_DUMP_BYTES") B; warm-up at scale $SCALE: $(calc '%.1f' "$WARM_RSS / 1024") MiB)."
    echo
    echo "| target | measured | |"
    echo "| --- | ---: | --- |"
    echo "| sauve within 1.25× of the floor | ${sauve_floor}× | $(verdict "$sauve_floor <= 1.25") |"
    echo "| sauve ≥ 2.5× faster than \`pg_dump \\| gzip\` | ${gzip_sauve}× | $(verdict "$gzip_sauve >= 2.5") |"
    echo "| sauve peak RSS < 64 MiB | $rss_big MiB | $(verdict "${rss[a]} < 65536") |"
    echo "| age encryption costs < 10 % of backup time ((e) vs (a)) | ${age_cost} % | $(verdict "$age_cost < 10") |"
    echo "| exact row counts (the default) cost < 10 % of backup time ((a) vs (f)) | ${counts_cost} % | $(verdict "$counts_cost < 10") |"
    echo "| estimated row counts cost < 10 % of backup time ((g) vs (f)) | ${estimate_cost} % | $(verdict "$estimate_cost < 10") |"
    echo "| peak RSS flat between scale $SMALL_SCALE and $SCALE (≤ 4 MiB or ≤ 10% apart) | $rss_small → $rss_big MiB | $(verdict "$flat_ok") |"
    echo
    echo "<details><summary>every run</summary>"
    echo
    echo "| round | command | wall s | peak RSS KiB | bytes written | bytes on disk |"
    echo "| ---: | --- | ---: | ---: | ---: | ---: |"
    awk -F'\t' 'NR > 1 { printf "| %s | (%s) | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$WORK/results.tsv"
    echo
    echo "</details>"
}
echo
if [ -n "$OUT" ]; then
    report | tee "$OUT"
else
    report
fi
