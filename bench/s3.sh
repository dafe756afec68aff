#!/usr/bin/env bash
# Benchmark: sauve against the tools people use to put backups into S3, on a
# local S3 server (Ceph's RADOS Gateway, started with the integration suite's
# harness by bench/s3_server.py).
#
#   bench/s3.sh SAUVE_BIN S3PUT_BIN      (what `make bench-s3` runs)
#
# Builds a pgbench database with realistic filler on a throwaway PostgreSQL 15
# (the loading code is bench/run.sh's), writes an incompressible stream of
# BENCH_RAW_MIB to tmpfs, then measures, in interleaved rounds
# (a b c d e f g h i a b c ...), against the same gateway:
#   A. backup of the database to S3
#     (a) sauve backup                                   (no globals)
#     (b) pg_dump -Fc DB | aws s3 cp - s3://... --expected-size N
#     (c) pg_dump DB | gzip | aws s3 cp - s3://...       (what users run today)
#     (d) pg_dump -Fc -Z0 DB | zstd -3 -T0 | aws s3 cp - s3://...  (best by hand)
#   B. raw upload of the stream (cat FILE | ...)
#     (e) s3put, sauve's storage code, default part size and parts in flight
#     (f) s3put with aws-cli's 8 MiB parts, 10 in flight
#     (g) s3put with rclone's 5 MiB parts, 4 in flight
#     (h) aws s3 cp - s3://... --expected-size BYTES
#     (i) rclone rcat remote:...
# each under GNU time (wall seconds, peak RSS, blocks written), deletes what
# each command uploaded after its round (the gateway keeps objects in RAM),
# and prints Markdown tables of medians and of the targets.
# docs/benchmarks.md ("S3") explains every figure.
#
# Environment:
#   BENCH_SCALE=50          pgbench scale (50: about 750 MB)
#   BENCH_ROUNDS=3          interleaved rounds
#   BENCH_FILLER=realistic  or "blank": pgbench's own blank filler (compresses ~50x)
#   BENCH_RAW_MIB=1024      size of the raw stream, MiB
#   BENCH_RAW_DIR           where the raw stream lives (default /dev/shm when
#                           it has room, else the work directory)
#   BENCH_DIR=$TMPDIR       where the cluster and the work files live
#   BENCH_OUT=FILE          also write the report (Markdown) to FILE
# Installs Debian's rclone with apt-get when it is missing. Everything
# (PostgreSQL, the gateway, the raw stream, the work directory) is removed on
# exit, failure or Ctrl-C.
set -euo pipefail
HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../scripts/lib/pg.sh
. "$HERE/../scripts/lib/pg.sh"
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

usage() {
    echo "usage: $0 SAUVE_BIN S3PUT_BIN" >&2
    exit 64
}
[ $# -eq 2 ] || usage
for bin in "$1" "$2"; do
    if ! [ -f "$bin" ] || ! [ -x "$bin" ]; then
        echo "bench: $bin: no such executable" >&2
        exit 66
    fi
done
SAUVE_BIN=$(realpath -e -- "$1")
S3PUT_BIN=$(realpath -e -- "$2")

SCALE=${BENCH_SCALE:-50}
ROUNDS=${BENCH_ROUNDS:-3}
FILLER=${BENCH_FILLER:-realistic}
RAW_MIB=${BENCH_RAW_MIB:-1024}
RAW_DIR_BASE=${BENCH_RAW_DIR:-}
BASE_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
OUT=${BENCH_OUT:-}
ZSTD_LEVEL=3
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
TIME=/usr/bin/time
AWS=/usr/bin/aws # Debian's awscli v2; an `aws` on PATH may be a pip v1
PYTHON=/usr/bin/python3
BUCKET=bench
# The peers' defaults (awscli/customizations/s3/transferconfig.py; `rclone
# help backend s3`), and the s3put rows that copy them.
AWS_PART_MIB=8 AWS_CONCURRENCY=10
RCLONE_PART_MIB=5 RCLONE_CONCURRENCY=4

for n in "$SCALE" "$ROUNDS" "$RAW_MIB"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || {
        echo "bench: BENCH_SCALE, BENCH_ROUNDS and BENCH_RAW_MIB must be positive integers" >&2
        exit 64
    }
done
bench_check_filler
bench_require_tools "$PGBIN/initdb" "$PGBIN/pg_ctl" "$PGBIN/psql" "$PGBIN/pg_dump" "$PGBIN/pg_restore" \
    "$PGBIN/pgbench" "$TIME" "$AWS" "$PYTHON" /usr/bin/radosgw \
    "$(command -v zstd || echo zstd)" "$(command -v gzip || echo gzip)"
pg_require_root bench

# The caller's PG*/SAUVE_*/AWS_*/RCLONE_* settings must not steer the
# benchmark (scrub_env also drops AWS_CA_BUNDLE, which rclone must not see).
scrub_env
while IFS= read -r var; do
    case $var in RCLONE_*) unset "$var" ;; esac
done < <(compgen -e)

log() { printf '[bench-s3 %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}


pg_workdir "$BASE_DIR/sauve-bench-s3.XXXXXX" # WORK; PGDATA_DIR=$WORK/pg
RUNS=$WORK/runs
mkdir -p "$RUNS" "$WORK/home"
S3_PID=
RAW_DIR=
GW_DIR=

# After pg_cleanup has stopped PostgreSQL and removed $WORK: stop the gateway
# (its launcher kills the daemons and removes their directory) and remove
# the raw stream.
cleaned_up() {
    if [ -n "$S3_PID" ]; then
        kill -TERM "$S3_PID" 2>/dev/null
        for _ in $(seq 100); do
            kill -0 "$S3_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$S3_PID" 2>/dev/null
        wait "$S3_PID" 2>/dev/null
    fi
    [ -z "$GW_DIR" ] || rm -rf -- "$GW_DIR"
    [ -z "$RAW_DIR" ] || rm -rf -- "$RAW_DIR"
    log "stopped PostgreSQL and the S3 gateway, removed $WORK${GW_DIR:+, $GW_DIR}${RAW_DIR:+ and $RAW_DIR}"
}
pg_cleanup_on_exit cleaned_up
cd "$WORK"
export HOME=$WORK/home

if ! command -v rclone >/dev/null; then
    log "installing rclone (apt-get)"
    { apt-get install -y -q --no-install-recommends rclone ||
        { apt-get update -q && apt-get install -y -q --no-install-recommends rclone; }; } \
        >"$WORK/apt.log" 2>&1 || {
        cat "$WORK/apt.log" >&2
        die "cannot install rclone"
    }
fi
RCLONE=$(command -v rclone)

# --- S3 gateway ----------------------------------------------------------------
log "starting the RADOS Gateway (bench/s3_server.py)"
GW_DIR=$(mktemp -d "$BASE_DIR/sauve-bench-s3-gw.XXXXXX") # the daemons' directory: theirs, not a test's
TMPDIR=$GW_DIR "$PYTHON" "$HERE/s3_server.py" "$WORK/s3.env" "$BUCKET" >"$WORK/s3server.log" 2>&1 &
S3_PID=$!
for _ in $(seq 1800); do
    [ -f "$WORK/s3.env" ] && break
    kill -0 "$S3_PID" 2>/dev/null || {
        cat "$WORK/s3server.log" >&2
        S3_PID=
        die "the S3 gateway did not start"
    }
    sleep 0.1
done
[ -f "$WORK/s3.env" ] || die "the S3 gateway did not start within 180 s"
S3_ENDPOINT='' S3_ACCESS_KEY='' S3_SECRET_KEY='' S3_REGION='' S3_START_SECONDS='' S3_PIDS='' S3_CEPH_CONF=''
# shellcheck source=/dev/null
. "$WORK/s3.env"
log "gateway at $S3_ENDPOINT, started in $S3_START_SECONDS s, bucket $BUCKET"

# Every S3 client gets the same keys, region and endpoint; none reads a
# config or credentials file of the machine.
printf '[default]\nregion = %s\ns3 =\n    addressing_style = path\n' "$S3_REGION" >"$WORK/aws-config"
: >"$WORK/rclone.conf"
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY \
    AWS_REGION=$S3_REGION AWS_DEFAULT_REGION=$S3_REGION AWS_ENDPOINT_URL_S3=$S3_ENDPOINT \
    AWS_CONFIG_FILE=$WORK/aws-config AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
    AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
export RCLONE_CONFIG=$WORK/rclone.conf RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Ceph \
    RCLONE_CONFIG_BENCH_ENDPOINT=$S3_ENDPOINT RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$S3_ACCESS_KEY \
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$S3_SECRET_KEY RCLONE_CONFIG_BENCH_REGION=$S3_REGION \
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true

# aws-cli (awscli v2 2.9 reads no AWS_ENDPOINT_URL*: the endpoint is a flag).
awsq() { "$AWS" --endpoint-url "$S3_ENDPOINT" "$@"; }

# "BYTES PARTS" of the objects under PREFIX: their total size, and the part
# count of the largest (from its multipart ETag "md5-N"; 1 for a PutObject).
objects() { # PREFIX
    awsq s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1" \
        --query 'Contents[].[Size,ETag]' --output text |
        awk '$1 ~ /^[0-9]+$/ { n += $1; if ($1 > big) { big = $1; e = $2 } }
             END { gsub(/"/, "", e); p = (e ~ /-[0-9]+$/) ? e : "x-1"; sub(/.*-/, "", p)
                   printf "%d %d\n", n, (big > 0) ? p : 0 }'
}
# Deletes the objects under PREFIX and frees their space at once: RGW hands
# a deleted object's data to its garbage collector, which by default waits
# 2 h, and the memstore OSD (RAM) would fill up (uploads then stall).
delete_prefix() { # PREFIX
    awsq s3 rm --recursive --quiet "s3://$BUCKET/$1" >/dev/null
    env -i PATH=/usr/bin:/bin HOME="$HOME" radosgw-admin -c "$S3_CEPH_CONF" gc process --include-all \
        >>"$WORK/gc.log" 2>&1 || die "radosgw-admin gc process failed: $(tail -n 3 "$WORK/gc.log")"
}

# --- PostgreSQL and the raw stream --------------------------------------------
PG_PORT=$(free_port)
PASSWORD=$(random_password)
DB=bench

log "starting PostgreSQL on 127.0.0.1:$PG_PORT in $PGDATA_DIR"
pg_start die "sauve S3 benchmark" "synchronous_commit = off" "full_page_writes = off" \
    "max_wal_size = 8GB" "maintenance_work_mem = 512MB" "autovacuum = off"
psql_admin <<<"CREATE ROLE bench LOGIN PASSWORD '$PASSWORD'" # stdin: not on an argv
export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=bench PGPASSWORD=$PASSWORD

log "loading $DB (scale $SCALE)"
bench_load "$DB" "$SCALE"
psql_admin -c CHECKPOINT

if [ -z "$RAW_DIR_BASE" ]; then
    RAW_DIR_BASE=$WORK
    if [ -d /dev/shm ] && [ -w /dev/shm ] &&
        [ "$(df --output=avail -B1M /dev/shm | tail -n 1)" -gt $((RAW_MIB + 1024)) ]; then
        RAW_DIR_BASE=/dev/shm
    fi
fi
RAW_DIR=$(mktemp -d "$RAW_DIR_BASE/sauve-bench-s3-raw.XXXXXX")
RAW=$RAW_DIR/raw
RAW_BYTES=$((RAW_MIB * 1024 * 1024))
log "writing $RAW_MIB MiB from /dev/urandom to $RAW"
head -c "$RAW_BYTES" /dev/urandom >"$RAW"

# --- measuring ------------------------------------------------------------------
# GNU time: %e wall seconds, %M peak RSS KiB, %O file system output blocks
# (512 B). A process's figures include those of the children it reaped, and
# %M is the largest peak among them: for sauve, sauve and its pg_dump; for a
# pipeline run by bash, bash and every process of the pipeline.

sauve_config() { # PREFIX
    export SAUVE_STORAGE="s3://$BUCKET/$1" SAUVE_PG_DATABASES="$DB" SAUVE_PG_GLOBALS=false \
        SAUVE_PG_BINDIR="$PGBIN" SAUVE_ZSTD_LEVEL="$ZSTD_LEVEL" SAUVE_S3_PATH_STYLE=true \
        SAUVE_LOG_FORMAT=json SAUVE_TERMINATION_LOG="$WORK/termination-log"
}
s3put_config() { # PREFIX [PART_MIB PARALLEL]
    export SAUVE_STORAGE="s3://$BUCKET/$1" SAUVE_S3_PATH_STYLE=true
    if [ $# -eq 3 ]; then export SAUVE_S3_PART_SIZE="$2" SAUVE_S3_PARALLEL="$3"; fi
}

# Runs one command under GNU time, stdout and stderr into DIR. Exits the
# script when it fails.
measure() { # DIR ARGV...
    local dir=$1 rc=0
    shift
    mkdir -p "$dir"
    "$TIME" -f '%e %M %O' -o "$dir/time" "$@" >"$dir/stdout" 2>"$dir/stderr" </dev/null || rc=$?
    if [ "$rc" -ne 0 ]; then
        log "FAILED (exit $rc): $*"
        sed 's/^/    /' "$dir/stderr" >&2
        exit 1
    fi
}

# shellcheck disable=SC2016 # the single-quoted scripts are expanded by the inner bash
run_cmd() { # CMD DIR PREFIX
    local cmd=$1 dir=$2 p=$3
    case $cmd in
    a) (
        sauve_config "$p"
        measure "$dir" "$SAUVE_BIN" backup
    ) ;;
    b) measure "$dir" bash -o pipefail -c '"$0" -Fc -d "$1" | "$2" --endpoint-url "$3" s3 cp - "$4" --expected-size "$5"' \
        "$PGBIN/pg_dump" "$DB" "$AWS" "$S3_ENDPOINT" "s3://$BUCKET/$p/$DB.dump" "$DUMP_BYTES" ;;
    c) measure "$dir" bash -o pipefail -c '"$0" -d "$1" | gzip | "$2" --endpoint-url "$3" s3 cp - "$4"' \
        "$PGBIN/pg_dump" "$DB" "$AWS" "$S3_ENDPOINT" "s3://$BUCKET/$p/$DB.sql.gz" ;;
    d) measure "$dir" bash -o pipefail -c '"$0" -Fc -Z0 -d "$1" | zstd -q -"$5" -T0 | "$2" --endpoint-url "$3" s3 cp - "$4"' \
        "$PGBIN/pg_dump" "$DB" "$AWS" "$S3_ENDPOINT" "s3://$BUCKET/$p/$DB.dump.zst" "$ZSTD_LEVEL" ;;
    e | f | g) (
        case $cmd in
        e) s3put_config "$p" ;;
        f) s3put_config "$p" "$AWS_PART_MIB" "$AWS_CONCURRENCY" ;;
        g) s3put_config "$p" "$RCLONE_PART_MIB" "$RCLONE_CONCURRENCY" ;;
        esac
        measure "$dir" bash -o pipefail -c 'cat "$0" | "$1" raw' "$RAW" "$S3PUT_BIN"
    ) ;;
    h) measure "$dir" bash -o pipefail -c 'cat "$0" | "$1" --endpoint-url "$2" s3 cp - "$3" --expected-size "$4"' \
        "$RAW" "$AWS" "$S3_ENDPOINT" "s3://$BUCKET/$p/raw" "$RAW_BYTES" ;;
    i) measure "$dir" bash -o pipefail -c 'cat "$0" | "$1" rcat "$2"' \
        "$RAW" "$RCLONE" "bench:$BUCKET/$p/raw" ;;
    esac
}

run_one() { # CMD ROUND
    local cmd=$1 r=$2 dir=$RUNS/$1.$2 p="$1.$2" wall rss blocks bytes parts
    run_cmd "$cmd" "$dir" "$p"
    read -r wall rss blocks <"$dir/time"
    read -r bytes parts < <(objects "$p/")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$cmd" "$wall" "$rss" "$((blocks * 512))" "$bytes" "$parts" \
        >>"$WORK/results.tsv"
    log "round $r ($cmd): ${wall} s, peak RSS $((rss / 1024)) MiB, stored $bytes B in $parts part(s), wrote $((blocks * 512)) B to disk"
    # The gateway keeps objects in RAM: delete them, except what the checks
    # below read (sauve's last set, s3put's last object).
    case "$cmd.$r" in "a.$ROUNDS" | "e.$ROUNDS") return ;; esac
    delete_prefix "$p/"
}

log "warm-up (not measured): pg_dump -Fc -Z0 | wc -c, pg_dump | wc -c, sauve backup, s3put"
DUMP_BYTES=$("$PGBIN/pg_dump" -Fc -Z0 -d "$DB" | wc -c)
PLAIN_BYTES=$("$PGBIN/pg_dump" -d "$DB" | wc -c)
run_cmd a "$RUNS/warmup-a" warmup-a
read -r WARM_A_WALL WARM_A_RSS _ <"$RUNS/warmup-a/time"
run_cmd e "$RUNS/warmup-e" warmup-e
read -r WARM_E_WALL WARM_E_RSS _ <"$RUNS/warmup-e/time"
log "warm-up: sauve backup ${WARM_A_WALL} s, $((WARM_A_RSS / 1024)) MiB; s3put ${WARM_E_WALL} s, $((WARM_E_RSS / 1024)) MiB"
delete_prefix warmup-a/
delete_prefix warmup-e/

CMDS="a b c d e f g h i"
printf 'round\tcmd\twall_s\tpeak_rss_kib\twritten_bytes\tstored_bytes\tparts\n' >"$WORK/results.tsv"
for r in $(seq "$ROUNDS"); do
    for cmd in $CMDS; do run_one "$cmd" "$r"; done
done

# Is what sauve stored the whole dump? Download its last set and compare.
set_key=$(awsq s3api list-objects-v2 --bucket "$BUCKET" --prefix "a.$ROUNDS/" --query 'Contents[].Key' --output text |
    tr '\t' '\n' | grep "/postgres/$DB\.dump\.zst\$" | head -n 1 || true)
[ -n "$set_key" ] || die "sauve left no */postgres/$DB.dump.zst under s3://$BUCKET/a.$ROUNDS/"
awsq s3api head-object --bucket "$BUCKET" --key "$(dirname "$(dirname "$set_key")")/manifest.json" >/dev/null 2>&1 ||
    die "sauve's set s3://$BUCKET/$(dirname "$(dirname "$set_key")") has no manifest.json"
awsq s3 cp "s3://$BUCKET/$set_key" "$WORK/check.dump.zst" --only-show-errors
zstd -dq --rm "$WORK/check.dump.zst" -o "$WORK/check.dump" || die "sauve's dump does not decompress"
STORED_RAW=$(stat -c %s "$WORK/check.dump")
"$PGBIN/pg_restore" --list "$WORK/check.dump" >/dev/null || die "sauve's dump is not a pg_dump archive"
rm -f "$WORK/check.dump"
delete_prefix "a.$ROUNDS/"
# And s3put's last upload: the same bytes as the stream?
awsq s3 cp "s3://$BUCKET/e.$ROUNDS/raw" - --only-show-errors | cmp -s - "$RAW" ||
    die "s3://$BUCKET/e.$ROUNDS/raw differs from the stream s3put read"
delete_prefix "e.$ROUNDS/"
# shellcheck disable=SC2016 # JMESPath literals, not shell
LEFT_UPLOADS=$(awsq s3api list-multipart-uploads --bucket "$BUCKET" --query 'length(Uploads || `[]`)' --output text)
# shellcheck disable=SC2016 # JMESPath literals, not shell
LEFT_OBJECTS=$(awsq s3api list-objects-v2 --bucket "$BUCKET" --query 'length(Contents || `[]`)' --output text)
GATEWAY_RSS=0
for kv in $S3_PIDS; do
    GATEWAY_RSS=$((GATEWAY_RSS + $(awk '/^VmRSS:/ { print $2 }' "/proc/${kv#*=}/status" 2>/dev/null || echo 0)))
done

# --- report ---------------------------------------------------------------------
median() { # CMD COLUMN (3 wall, 4 rss, 5 written, 6 stored, 7 parts)
    awk -F'\t' -v c="$1" -v k="$2" 'NR > 1 && $2 == c { print $k }' "$WORK/results.tsv" | sort -g |
        awk '{ v[NR] = $1 } END { printf "%.6f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
group() { printf '%d' "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo "NOT met"; fi; }

declare -A label=(
    [a]="(a) \`sauve backup\` (zstd -$ZSTD_LEVEL, SHA-256, manifest)"
    [b]="(b) \`pg_dump -Fc \\| aws s3 cp - --expected-size N\`"
    [c]="(c) \`pg_dump \\| gzip \\| aws s3 cp -\` (users today)"
    [d]="(d) \`pg_dump -Fc -Z0 \\| zstd -$ZSTD_LEVEL -T0 \\| aws s3 cp -\` (best by hand)"
    [e]="(e) \`s3put\` (sauve's storage code), defaults"
    [f]="(f) \`s3put\`, aws-cli's part size and concurrency"
    [g]="(g) \`s3put\`, rclone's part size and concurrency"
    [h]="(h) \`aws s3 cp - --expected-size $RAW_BYTES\`"
    [i]="(i) \`rclone rcat\`"
)
declare -A parts_setting=(
    [e]="16 MiB × 4 (SAUVE_S3_PART_SIZE, SAUVE_S3_PARALLEL defaults)"
    [f]="$AWS_PART_MIB MiB × $AWS_CONCURRENCY"
    [g]="$RCLONE_PART_MIB MiB × $RCLONE_CONCURRENCY"
    [h]="$AWS_PART_MIB MiB × $AWS_CONCURRENCY (multipart_chunksize, max_concurrent_requests defaults)"
    [i]="$RCLONE_PART_MIB MiB × $RCLONE_CONCURRENCY (--s3-chunk-size, --s3-upload-concurrency defaults)"
)
declare -A wall rss written stored parts
for c in $CMDS; do
    wall[$c]=$(median "$c" 3)
    rss[$c]=$(median "$c" 4)
    written[$c]=$(median "$c" 5)
    stored[$c]=$(median "$c" 6)
    parts[$c]=$(median "$c" 7)
done
mibps() { calc '%.1f' "$RAW_MIB / $1"; }
best_peer=h
awk "BEGIN { exit !(${wall[i]} < ${wall[h]}) }" && best_peer=i
gzip_sauve=$(calc '%.2f' "${wall[c]} / ${wall[a]}")
put_ratio=$(calc '%.2f' "${wall[$best_peer]} / ${wall[e]}")
peer_name=aws-cli
[ "$best_peer" = h ] || peer_name=rclone

report() {
    echo "## sauve S3 benchmark, $(date -u +%Y-%m-%d)"
    echo
    echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, $(uname -sr)"
    echo "- S3: Ceph RADOS Gateway $(radosgw --version 2>/dev/null | awk '{ print $3 }'), memstore OSD, HTTP on 127.0.0.1, path-style (bench/s3_server.py); its daemons' RSS after the rounds $(calc '%.0f' "$GATEWAY_RSS / 1024") MiB"
    echo "- PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }'), $(zstd --version | grep -o 'v[0-9.]*' | head -n 1 | sed 's/^/zstd /'), $(gzip --version | head -n 1), $("$AWS" --version 2>&1 | awk '{ print $1 }'), $("$RCLONE" version | head -n 1), sauve: $("$SAUVE_BIN" version 2>/dev/null | head -n 1 || echo '?')"
    echo "- database: pgbench scale $SCALE, $FILLER filler, $(psql_admin -At -c "SELECT pg_size_pretty(pg_database_size('$DB'))") on disk;" \
        "pg_dump -Fc -Z0 output $(group "$DUMP_BYTES") B, plain pg_dump output $(group "$PLAIN_BYTES") B"
    echo "- raw stream: $(group "$RAW_BYTES") B from /dev/urandom in $RAW_DIR_BASE, read with cat by every row"
    echo "- $ROUNDS interleaved round(s) ($CMDS ...), medians; every client over HTTP to the same gateway"
    echo
    echo "### A. Backup of the database to S3"
    echo
    echo "| command | median wall s | gzip ÷ this | median peak RSS MiB | bytes stored | parts | bytes written to disk (%O×512) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for c in a b c d; do
        printf '| %s | %.2f | %.2f | %.1f | %s | %d | %s |\n' "${label[$c]}" "${wall[$c]}" \
            "$(calc '%.4f' "${wall[c]} / ${wall[$c]}")" "$(calc '%.4f' "${rss[$c]} / 1024")" \
            "$(group "${stored[$c]%.*}")" "${parts[$c]%.*}" "$(group "${written[$c]%.*}")"
    done
    echo
    echo "sauve's stored dump decompresses to $(group "$STORED_RAW") B (pg_dump -Fc -Z0: $(group "$DUMP_BYTES") B); the set has its manifest.json."
    echo
    echo "### B. Raw upload of $RAW_MIB MiB (incompressible)"
    echo
    echo "| command | part size × in flight | median wall s | MiB/s | ÷ best peer ($peer_name) | median peak RSS MiB | parts |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    for c in e f g h i; do
        printf '| %s | %s | %.2f | %s | %.2f | %.1f | %d |\n' "${label[$c]}" "${parts_setting[$c]}" "${wall[$c]}" \
            "$(mibps "${wall[$c]}")" "$(calc '%.4f' "${wall[$best_peer]} / ${wall[$c]}")" \
            "$(calc '%.4f' "${rss[$c]} / 1024")" "${parts[$c]%.*}"
    done
    echo
    echo "s3put's last object read back equals the stream. Left in the bucket after the run: $LEFT_OBJECTS object(s), $LEFT_UPLOADS unfinished multipart upload(s)."
    echo
    echo "| target | measured | |"
    echo "| --- | ---: | --- |"
    echo "| sauve backup ≥ 2.5× faster than \`pg_dump \\| gzip \\| aws s3 cp -\` | ${gzip_sauve}× | $(verdict "$gzip_sauve >= 2.5") |"
    echo "| raw upload: s3put throughput ≥ the best of aws-cli and rclone | $(mibps "${wall[e]}") vs $(mibps "${wall[$best_peer]}") MiB/s ($peer_name): ${put_ratio}× | $(verdict "${wall[e]} <= ${wall[$best_peer]}") |"
    echo "| sauve backup peak RSS < 100 MiB (defaults) | $(calc '%.1f' "${rss[a]} / 1024") MiB | $(verdict "${rss[a]} < 102400") |"
    echo "| s3put peak RSS < 100 MiB (defaults) | $(calc '%.1f' "${rss[e]} / 1024") MiB | $(verdict "${rss[e]} < 102400") |"
    echo
    echo "<details><summary>every run</summary>"
    echo
    echo "| round | command | wall s | peak RSS KiB | bytes written | bytes stored | parts |"
    echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    awk -F'\t' 'NR > 1 { printf "| %s | (%s) | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$WORK/results.tsv"
    echo
    echo "</details>"
}
echo
if [ -n "$OUT" ]; then
    report | tee "$OUT"
else
    report
fi
