#!/usr/bin/env bash
# Benchmark: sauve prune over a large series on local storage.
#
#   bench/prune.sh SAUVE_BIN
#
# Writes BENCH_SETS complete sets (a manifest and one small object each, one
# every 6 hours going back from now) straight into a file:// storage directory
# with bench/gen_sets.py, then measures under GNU time (wall seconds, peak RSS):
#   list           sauve list --json (the catalog: one listing, one read per manifest)
#   prune dry run  sauve prune --dry-run --json (the plan)
#   prune          sauve prune (the plan, then the deletions)
# with a policy that keeps about 30 sets. sauve's debug log reports the storage
# calls each run made (listings, reads, delete calls and keys): the point of the
# design is one paginated listing and batched deletes, whatever the number of
# sets. On S3 the same counters apply (a listing is paginated by 1,000 keys, a
# delete call is one DeleteObjects request per 1,000 keys); that is measured
# with the S3 backend.
#
# Environment:
#   BENCH_SETS=10000   sets to create
#   BENCH_DIR=$TMPDIR  where the storage directory lives (removed on exit)
set -euo pipefail

[ $# -eq 1 ] || {
    echo "usage: $0 SAUVE_BIN" >&2
    exit 64
}
SAUVE=$(realpath -- "$1")
HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
SETS=${BENCH_SETS:-10000}
[ -x /usr/bin/time ] || {
    echo "bench: GNU time (/usr/bin/time) is needed: apt-get install time" >&2
    exit 69
}

WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/sauve-bench-prune.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT INT TERM HUP
STORAGE=$WORK/storage
mkdir -p "$STORAGE"

# Only what the benchmark sets steers sauve.
run_sauve() {
    env -i PATH=/usr/bin:/bin HOME="$WORK" TZ=UTC \
        SAUVE_STORAGE="file://$STORAGE" SAUVE_LOG_FORMAT=json SAUVE_LOG_LEVEL=debug \
        SAUVE_TERMINATION_LOG="$WORK/termination.log" \
        SAUVE_KEEP_LAST=7 SAUVE_KEEP_DAILY=14 SAUVE_KEEP_WEEKLY=8 SAUVE_KEEP_MONTHLY=12 SAUVE_KEEP_YEARLY=5 \
        "$@"
}

# row LABEL ARGS...: one sauve run under GNU time; prints a table row.
row() {
    local label=$1
    shift
    local rc=0
    run_sauve /usr/bin/time -f '%e %M' -o "$WORK/time" "$SAUVE" "$@" >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "bench: sauve $* exited $rc" >&2
        tail -n 5 "$WORK/stderr" >&2
        exit 1
    fi
    local wall rss calls
    read -r wall rss <"$WORK/time"
    calls=$(python3 - "$WORK/stderr" <<'PY'
import json, sys
calls = "-"
for line in open(sys.argv[1]):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if "lists" in o and "delete_calls" in o:
        calls = f'{o["lists"]} listing, {o["reads"]} reads, {o["delete_calls"]} delete calls ({o["deleted_keys"]} keys)'
print(calls)
PY
)
    printf '| %s | %s | %s MiB | %s |\n' "$label" "$wall" "$((rss / 1024))" "$calls"
}

echo "bench: writing $SETS sets into $STORAGE" >&2
t0=$(date +%s.%N)
python3 "$HERE/gen_sets.py" "$STORAGE" "$SETS" --every 21600
t1=$(date +%s.%N)
echo "bench: generated in $(echo "$t1 - $t0" | bc) s" >&2

echo
echo "sauve prune over $SETS sets (file:// on $(df -T "$STORAGE" | awk 'NR==2 {print $2}'), $(nproc) CPUs);"
echo "policy: last 7, daily 14, weekly 8, monthly 12, yearly 5"
echo
echo "| run | wall s | peak RSS | storage calls |"
echo "| --- | ---: | ---: | --- |"
row "list --json" list --json
row "prune --dry-run --json" prune --dry-run --json
kept=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["kept"])' "$WORK/stdout")
row "prune" prune
left=$(find "$STORAGE/default" -mindepth 1 -maxdepth 1 -type d | wc -l)
row "prune again (nothing to do)" prune
echo
echo "kept by the plan: $kept sets; left on disk after prune: $left sets"
