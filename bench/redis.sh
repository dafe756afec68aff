#!/usr/bin/env bash
# Benchmark: sauve backup of a Redis against its peers, in one run.
#
#   bench/redis.sh SAUVE_BIN
#
# Starts a throwaway redis-server (Debian's, diskless sync) on an ephemeral
# port, fills it with BENCH_REDIS_KEYS keys (default 250,000: 1 KiB random
# and 2 KiB of repetitive text each, about 870 MB in memory and a 275 MiB
# RDB, since Redis compresses the text itself), then runs BENCH_ROUNDS
# rounds (default 5), interleaved so that a noisy neighbour hurts all three
# alike, of:
#   floor   redis-cli --rdb - > /dev/null (the server's own speed)
#   peer    redis-cli --rdb - | zstd -3 -T0 > tmpfs
#   sauve   sauve backup into file:// on tmpfs (zstd 3, SHA-256, RDB check)
# and prints the median wall seconds of each, sauve's ratio to each, and
# sauve's peak RSS (GNU time). Storage is tmpfs so that the disk is not
# what is measured. Everything is removed at the end.
set -euo pipefail

sauve=${1:?usage: bench/redis.sh SAUVE_BIN}
keys=${BENCH_REDIS_KEYS:-250000}
rounds=${BENCH_ROUNDS:-5}
for tool in redis-server redis-cli zstd /usr/bin/time python3; do
    command -v "$tool" >/dev/null || {
        echo "bench: $tool not found" >&2
        exit 69
    }
done

work=$(mktemp -d /tmp/sauve-bench-redis-XXXXXX)
shm=$(mktemp -d /dev/shm/sauve-bench-redis-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work" "$shm"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/redis.conf" <<EOF
port $port
bind 127.0.0.1
dir $work
save ""
repl-diskless-sync yes
repl-diskless-sync-delay 0
logfile $work/redis.log
EOF
redis-server "$work/redis.conf" &
pid=$!
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done

echo "filling $keys keys..." >&2
python3 - "$keys" <<'EOF' | redis-cli -p "$port" --pipe >/dev/null
import os, sys
text = (b"session user=12345 cart=[item-1,item-2] locale=fr_FR " * 40)[:2048]
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    key = b"k:%d" % i
    value = os.urandom(1024) + text[i % 64:] + text[:i % 64]
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
EOF
redis-cli -p "$port" info memory | grep '^used_memory_human' >&2

# Runs a command under GNU time and appends "NAME seconds peak_rss_kb" to
# the results; a failed command ends the benchmark.
wall() { # NAME COMMAND...
    local name=$1
    shift
    /usr/bin/time -f "$name %e %M" -a -o "$work/results" "$@" >/dev/null 2>"$work/err" || {
        echo "bench: $* failed: $(tail -3 "$work/err")" >&2
        exit 1
    }
}

: >"$work/results"
for r in $(seq "$rounds"); do
    echo "round $r of $rounds" >&2
    # to stdout: redis-cli --rdb /dev/null fails its fsync of /dev/null
    wall floor redis-cli -p "$port" --rdb -
    wall peer bash -c "redis-cli -p $port --rdb - 2>/dev/null | zstd -3 -T0 -q > $shm/peer.zst"
    rm -rf "$shm/st" "$shm/peer.zst"
    mkdir "$shm/st"
    wall sauve env -i PATH=/usr/bin:/bin SAUVE_STORAGE="file://$shm/st" \
        SAUVE_REDIS_URL="redis://127.0.0.1:$port" SAUVE_TERMINATION_LOG=/dev/null "$sauve" backup
    rdb_bytes=$(python3 -c 'import json, glob, sys; print(json.load(open(glob.glob(sys.argv[1] + "/default/*/manifest.json")[0]))["artifacts"][0]["bytes_in"])' "$shm/st")
done

python3 - "$work/results" "$rdb_bytes" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {k: statistics.median(float(r[1]) for r in rows if r[0] == k) for k in ("floor", "peer", "sauve")}
rss = max(int(r[2]) for r in rows if r[0] == "sauve")
mib = int(sys.argv[2]) / 2**20
print(f"| RDB {mib:.0f} MiB, {len(rows) // 3} rounds | median s | MiB/s | sauve / this |")
print("| --- | --- | --- | --- |")
for k, label in (("floor", "redis-cli --rdb - > /dev/null"), ("peer", "redis-cli --rdb - \\| zstd -3 -T0"),
                 ("sauve", "sauve backup (file:// on tmpfs)")):
    print(f"| {label} | {med[k]:.2f} | {mib / med[k]:.0f} | {med['sauve'] / med[k]:.2f} |")
print(f"\nsauve peak RSS: {rss / 1024:.0f} MiB")
EOF
