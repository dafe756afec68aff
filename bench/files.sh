#!/usr/bin/env bash
# Benchmark: sauve backup and restore of a directory tree against its peers,
# in one run.
#
#   bench/files.sh SAUVE_BIN
#
# Writes two trees under BENCH_DIR (local disk):
#   small  BENCH_SMALL_FILES files (default 100,000) of 1 to 8 KiB in 100
#          directories of 10 subdirectories each, half random bytes (like
#          thumbnails), half CSV-like text (like JSON or mail)
#   large  BENCH_LARGE_FILES files (default 8) of BENCH_LARGE_MIB (default
#          256) MiB, half random (like videos), half CSV-like text (like
#          exports and logs); every line is unique, so that restic's
#          deduplication finds nothing the others do not
# then runs BENCH_ROUNDS rounds (default 5) of, for each tree,
#   backup   sauve backup (SAUVE_FILES=NAME=DIR, file:// on the same disk)
#            tar -cf - -C DIR . | zstd -3 -T0 > out.tar.zst     (GNU tar)
#            restic backup . into a new local repository   (when installed)
#   restore  sauve restore files:NAME --to NEW --yes
#            zstd -dc out.tar.zst | tar -xf - -C NEW
#            restic restore latest --target NEW
# interleaved (the tools' order rotates from round to round, so that a noisy
# neighbour or the page cache favours none), each under GNU time: wall,
# user+sys CPU (children included), peak RSS (of the largest process: for a
# pipeline, its largest member), the output's size. Before each command the
# file system is synced (not measured); after it, a timed `sync -f` gives
# what the command left unflushed: sauve fsyncs its object and syncfs()s a
# restored tree, tar does not, so "wall + flush" compares equal durability.
# Each restored tree is checked against the source (paths, types, sizes).
# Prints the medians of each tool and, per metric, the median over rounds of
# the ratio sauve ÷ peer of the same round.
#
# Environment:
#   BENCH_ROUNDS=5           interleaved rounds
#   BENCH_TREES="small large"  which trees
#   BENCH_SMALL_FILES=100000
#   BENCH_LARGE_FILES=8, BENCH_LARGE_MIB=256
#   BENCH_RESTIC=auto        auto: install Debian's restic with apt-get when
#                            missing (skipped, and said so, when it cannot
#                            be installed); no: leave restic out
#   BENCH_DIR=$TMPDIR        where the trees and the backups live (local
#                            disk; needs about 3x the trees: ~8 GiB by default)
#   BENCH_RESTORE_DIR        where trees are restored: /dev/shm when it has
#                            room for the largest tree twice, else BENCH_DIR.
#                            Removing a restored tree of 100,000 files took
#                            minutes on a shared VM disk (its journal), which
#                            would make the run far longer and every
#                            following measurement noisier
#   BENCH_OUT=FILE           also write the report (Markdown) to FILE
# Everything is removed on exit, failure or Ctrl-C.
set -euo pipefail
HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

if [ $# -ne 1 ] || ! [ -f "$1" ] || ! [ -x "$1" ]; then
    echo "usage: bench/files.sh SAUVE_BIN" >&2
    exit 64
fi
SAUVE_BIN=$(realpath -e -- "$1")
ROUNDS=${BENCH_ROUNDS:-5}
TREES=${BENCH_TREES:-small large}
SMALL_FILES=${BENCH_SMALL_FILES:-100000}
LARGE_FILES=${BENCH_LARGE_FILES:-8}
LARGE_MIB=${BENCH_LARGE_MIB:-256}
WANT_RESTIC=${BENCH_RESTIC:-auto}
BASE_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
OUT=${BENCH_OUT:-}
TIME=/usr/bin/time
PYTHON=/usr/bin/python3
for n in "$ROUNDS" "$SMALL_FILES" "$LARGE_FILES" "$LARGE_MIB"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || {
        echo "bench: BENCH_ROUNDS, BENCH_SMALL_FILES, BENCH_LARGE_FILES and BENCH_LARGE_MIB must be positive integers" >&2
        exit 64
    }
done
for t in $TREES; do
    case $t in small | large) ;; *)
        echo "bench: BENCH_TREES: '$t' is not small or large" >&2
        exit 64
        ;;
    esac
done
case $WANT_RESTIC in auto | no) ;; *)
    echo "bench: BENCH_RESTIC must be auto or no" >&2
    exit 64
    ;;
esac
bench_require_tools "$TIME" "$PYTHON" "$(command -v tar || echo tar)" "$(command -v zstd || echo zstd)" \
    "$(command -v sync || echo sync)"

log() { printf '[bench-files %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

WORK=$(mktemp -d "$BASE_DIR/sauve-bench-files.XXXXXX")
RESTORE_TOP=
cleanup() {
    rm -rf -- "$WORK" ${RESTORE_TOP:+"$RESTORE_TOP"}
    log "removed $WORK${RESTORE_TOP:+ and $RESTORE_TOP}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/home"
RESTORE_BASE=${BENCH_RESTORE_DIR:-}
if [ -z "$RESTORE_BASE" ]; then
    need_kib=$((2 * (LARGE_FILES * LARGE_MIB > 1024 ? LARGE_FILES * LARGE_MIB : 1024) * 1024))
    if [ -d /dev/shm ] && [ "$(df -k --output=avail /dev/shm | tail -1)" -gt "$need_kib" ]; then
        RESTORE_BASE=/dev/shm
    else
        RESTORE_BASE=$BASE_DIR
    fi
fi
RESTORE_TOP=$(mktemp -d "$RESTORE_BASE/sauve-bench-files-restore.XXXXXX")

RESTIC=
if [ "$WANT_RESTIC" = auto ]; then
    if ! command -v restic >/dev/null; then
        log "installing restic (apt-get)"
        { apt-get install -y -q --no-install-recommends restic ||
            { apt-get update -q && apt-get install -y -q --no-install-recommends restic; }; } \
            >"$WORK/apt.log" 2>&1 || log "cannot install restic (see below): restic left out"$'\n'"$(tail -3 "$WORK/apt.log")"
    fi
    RESTIC=$(command -v restic || true)
fi
TOOLS=(sauve tar)
[ -z "$RESTIC" ] || TOOLS+=(restic)

# --- the trees ---------------------------------------------------------------
# CSV-like text: every line unique, compresses about 4x with zstd -3.
make_trees() { # WHICH...
    "$PYTHON" - "$WORK/trees" "$SMALL_FILES" "$LARGE_FILES" "$LARGE_MIB" "$@" <<'EOF'
import os, random, sys
top, small_files, large_files, large_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(20261205)
line_no = 0
def text(n):
    global line_no
    out, size = [], 0
    while size < n:
        line_no += 1
        s = "%d,2026-12-05T%02d:%02d:%02d.%06d,user-%05d,%s,/api/items/%d,%d,%d\n" % (
            line_no, line_no // 3600 % 24, line_no // 60 % 60, line_no % 60, rng.getrandbits(20) % 1000000,
            rng.getrandbits(14), ("GET", "POST", "PUT")[line_no % 3], rng.getrandbits(24), 200, rng.getrandbits(16))
        out.append(s)
        size += len(s)
    return "".join(out).encode()[:n]
if "small" in sys.argv[5:]:
    d = os.path.join(top, "small")
    for i in range(small_files):
        sub = os.path.join(d, "d%03d" % (i // 1000 % 100), "e%d" % (i // 100 % 10))
        if i % 100 == 0:
            os.makedirs(sub, exist_ok=True)
        n = rng.randint(1024, 8192)
        with open(os.path.join(sub, "f%06d.%s" % (i, "bin" if i % 2 else "csv")), "wb") as f:
            f.write(rng.randbytes(n) if i % 2 else text(n))
if "large" in sys.argv[5:]:
    d = os.path.join(top, "large")
    os.makedirs(d, exist_ok=True)
    for i in range(large_files):
        with open(os.path.join(d, "f%d.%s" % (i, "bin" if i % 2 else "csv")), "wb") as f:
            for _ in range(large_mib):
                f.write(os.urandom(1 << 20) if i % 2 else text(1 << 20))
EOF
}
t0=$SECONDS
log "writing the trees ($TREES) into $WORK/trees"
# shellcheck disable=SC2086
make_trees $TREES
declare -A DESC FPRINT
for t in $TREES; do
    read -r entries bytes < <(find "$WORK/trees/$t" -mindepth 1 -printf '%s\n' | awk '{ n++; s += $1 } END { print n, s }')
    DESC[$t]="$entries entries, $(awk -v b="$bytes" 'BEGIN { printf "%.0f MiB", b / 1048576 }') of files"
    # what a restored tree must have: every path, its type and (for a file) its size
    FPRINT[$t]=$(cd "$WORK/trees/$t" && find . -mindepth 1 -printf '%y %P %s\n' | sed 's/^d \(.*\) [0-9]*$/d \1/' | LC_ALL=C sort | md5sum)
    log "$t: ${DESC[$t]}"
done
log "trees written in $((SECONDS - t0)) s"

# --- the commands ------------------------------------------------------------
# Each sets CMD to the command line of a tool's backup or restore of TREE,
# with R the round's directory: sauve and restic with a clean environment.
SAUVE_ENV=(env -i PATH=/usr/bin:/bin HOME="$WORK/home" SAUVE_TERMINATION_LOG=/dev/null)
restic_env() { # REPO: the environment of restic on that repository
    RESTIC_ENV=(env -i PATH=/usr/bin:/bin HOME="$WORK/home" XDG_CACHE_HOME="$1.cache"
        RESTIC_REPOSITORY="$1" RESTIC_PASSWORD=bench)
}
# shellcheck disable=SC2016 # the bash -c scripts take their arguments as $1, $2
backup_cmd() { # TOOL TREE R
    local src=$WORK/trees/$2
    case $1 in
    sauve) CMD=("${SAUVE_ENV[@]}" SAUVE_STORAGE="file://$3/sauve" SAUVE_FILES="$2=$src" "$SAUVE_BIN" backup) ;;
    tar) CMD=(bash -c 'tar -cf - -C "$1" . | zstd -3 -T0 -q > "$2"' _ "$src" "$3/tar.tar.zst") ;;
    restic)
        restic_env "$3/restic"
        CMD=(bash -c 'cd "$1" && shift && exec "$@" backup .' _ "$src" "${RESTIC_ENV[@]}" "$RESTIC")
        ;;
    esac
}
# shellcheck disable=SC2016
restore_cmd() { # TOOL TREE R TARGET
    case $1 in
    sauve) CMD=("${SAUVE_ENV[@]}" SAUVE_STORAGE="file://$3/sauve" "$SAUVE_BIN" restore "files:$2" --to "$4" --yes) ;;
    tar) CMD=(bash -c 'mkdir "$2" && zstd -dc -q "$1" | tar -xf - -C "$2"' _ "$3/tar.tar.zst" "$4") ;;
    restic)
        restic_env "$3/restic"
        CMD=("${RESTIC_ENV[@]}" "$RESTIC" restore latest --target "$4")
        ;;
    esac
}

# Runs CMD under GNU time after a sync, times the `sync -f` after it, and
# appends to the results "TREE OP TOOL ROUND wall user sys rss_kb flush
# bytes" (bytes: du of OUTPUT, 0 without).
measure() { # TREE OP TOOL ROUND [OUTPUT]
    local tree=$1 op=$2 tool=$3 round=$4 output=${5:-} fs=$WORK
    [ "$op" = backup ] || fs=$RESTORE_TOP
    sync -f "$WORK"
    "$TIME" -f '%e %U %S %M' -o "$WORK/time" "${CMD[@]}" >"$WORK/cmd.log" 2>&1 || {
        tail -5 "$WORK/cmd.log" >&2
        die "$tree $op with $tool failed"
    }
    "$TIME" -f '%e' -o "$WORK/flush" sync -f "$fs"
    local bytes=0
    [ -z "$output" ] || bytes=$(du -sb "$output" | cut -f1)
    printf '%s %s %s %s %s %s %s\n' "$tree" "$op" "$tool" "$round" "$(cat "$WORK/time")" "$(cat "$WORK/flush")" \
        "$bytes" >>"$WORK/results"
    log "round $round, $tree $op, $tool: $(cut -d' ' -f1 "$WORK/time") s (+ $(cat "$WORK/flush") s flush)"
}

# The restored tree has what the source has, then goes.
check_restored() { # TREE TOOL DIR
    local got
    got=$(cd "$3" && find . -mindepth 1 -printf '%y %P %s\n' | sed 's/^d \(.*\) [0-9]*$/d \1/' | LC_ALL=C sort | md5sum)
    [ "$got" = "${FPRINT[$1]}" ] || die "the tree restored by $2 differs from $1 (paths, types or sizes)"
    rm -rf -- "$3"
}

# --- the rounds ----------------------------------------------------------------
: >"$WORK/results"
: >"$WORK/streams"
for t in $TREES; do tar -cf - -C "$WORK/trees/$t" . >/dev/null; done # warm the page cache alike for all
n_tools=${#TOOLS[@]}
for r in $(seq "$ROUNDS"); do
    for t in $TREES; do
        R=$WORK/r$r.$t
        mkdir -p "$R/sauve"
        if [ -n "$RESTIC" ]; then
            restic_env "$R/restic"
            "${RESTIC_ENV[@]}" "$RESTIC" init -q >/dev/null
        fi
        order=()
        for i in $(seq 0 $((n_tools - 1))); do order+=("${TOOLS[$(((i + r) % n_tools))]}"); done
        for tool in "${order[@]}"; do
            case $tool in sauve) out=$R/sauve ;; tar) out=$R/tar.tar.zst ;; restic) out=$R/restic ;; esac
            backup_cmd "$tool" "$t" "$R"
            measure "$t" backup "$tool" "$r" "$out"
        done
        if [ "$r" = 1 ]; then
            # the tar streams themselves: sauve's pax entries against GNU tar's
            sauve_in=$("$PYTHON" -c 'import json, glob, sys; print(json.load(open(glob.glob(sys.argv[1] + "/default/*/manifest.json")[0]))["artifacts"][0]["bytes_in"])' "$R/sauve")
            tar_in=$(zstd -dc -q "$R/tar.tar.zst" | wc -c)
            pax=$(zstd -dc -q "$R"/sauve/default/*/files/"$t".tar.zst | tar -tf - | wc -l)
            echo "$t $sauve_in $tar_in" >>"$WORK/streams"
            log "$t: tar stream $sauve_in B from sauve ($pax entries), $tar_in B from GNU tar"
        fi
        for tool in "${order[@]}"; do
            restore_cmd "$tool" "$t" "$R" "$RESTORE_TOP/$tool"
            measure "$t" restore "$tool" "$r"
            check_restored "$t" "$tool" "$RESTORE_TOP/$tool"
        done
        rm -rf -- "$R"
    done
done

# --- the report ----------------------------------------------------------------
report() {
    echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))," \
        "$(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, Linux $(uname -r)"
    echo "- trees and backups on $(df --output=fstype "$BASE_DIR" | tail -1) ($BASE_DIR), restores into $(df --output=fstype "$RESTORE_TOP" | tail -1) ($RESTORE_BASE)"
    echo "- $(tar --version | head -1), $(zstd --version | grep -o 'v[0-9.]*' | head -1 | sed 's/^/zstd /')${RESTIC:+, $("$RESTIC" version | cut -d' ' -f1-2)}, sauve: $("$SAUVE_BIN" version 2>/dev/null | head -1 || echo '?')"
    for t in $TREES; do echo "- $t tree: ${DESC[$t]}"; done
    echo "- $ROUNDS interleaved round(s), the order of the tools rotating; medians; page cache warm"
    echo
    "$PYTHON" - "$WORK/results" "$WORK/streams" "${TOOLS[@]}" <<'EOF'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
streams = {l.split()[0]: l.split()[1:] for l in open(sys.argv[2])}
tools = sys.argv[3:]
# TREE OP TOOL ROUND wall user sys rss flush bytes
m = {}
for tree, op, tool, rnd, wall, user, sys_, rss, flush, nbytes in rows:
    m.setdefault((tree, op, tool), {})[rnd] = dict(
        wall=float(wall), flushed=float(wall) + float(flush), cpu=float(user) + float(sys_),
        rss=int(rss) / 1024, size=int(nbytes) / 2**20)
trees = list(dict.fromkeys(r[0] for r in rows))
label = {("backup", "sauve"): "`sauve backup` (file://)",
         ("backup", "tar"): "`tar -cf - -C DIR . \\| zstd -3 -T0 > f`",
         ("backup", "restic"): "`restic backup .` (new local repository)",
         ("restore", "sauve"): "`sauve restore files:NAME --to NEW`",
         ("restore", "tar"): "`zstd -dc f \\| tar -xf - -C NEW`",
         ("restore", "restic"): "`restic restore latest --target NEW`"}
keys = ("wall", "flushed", "cpu", "rss", "size")
def med(tree, op, tool, k):
    return st.median(v[k] for v in m[(tree, op, tool)].values())
print("| tree | command | wall s | wall + flush s | CPU s (user+sys) | peak RSS MiB | output MiB |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for tree in trees:
    for op in ("backup", "restore"):
        for tool in tools:
            vals = [med(tree, op, tool, k) for k in keys]
            size = f"{vals[4]:.1f}" if op == "backup" else ""
            print(f"| {tree} | {label[(op, tool)]} | {vals[0]:.2f} | {vals[1]:.2f} | {vals[2]:.2f} | {vals[3]:.1f} | {size} |")
print()
print("sauve ÷ peer, the median over rounds of the ratio within a round (below 1: sauve better):")
print()
print("| tree | operation | peer | wall | wall + flush | CPU | peak RSS | output size |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
for tree in trees:
    for op in ("backup", "restore"):
        for peer in tools[1:]:
            s, p = m[(tree, op, "sauve")], m[(tree, op, peer)]
            cells = []
            for k in keys:
                if k == "size" and op == "restore":
                    cells.append("")
                    continue
                rs = [s[r][k] / p[r][k] for r in s if r in p and p[r][k] > 0]
                cells.append(f"{st.median(rs):.2f}" if rs else "")
            print(f"| {tree} | {op} | {peer} | " + " | ".join(cells) + " |")
print()
for tree, (s_in, t_in) in streams.items():
    print(f"{tree}: tar stream before compression: sauve {int(s_in):,} B, GNU tar {int(t_in):,} B "
          f"({int(s_in) / int(t_in):.3f}x)")
EOF
}
echo
if [ -n "$OUT" ]; then report | tee "$OUT"; else report; fi
[ -n "$RESTIC" ] || echo "restic: not installed (BENCH_RESTIC=$WANT_RESTIC), left out"
