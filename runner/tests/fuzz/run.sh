#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time (make fuzz, make fuzz-quick).
#
#   runner/tests/fuzz/run.sh BUILD SECONDS NAME...
#
# Target NAME is BUILD/fuzz/fuzz_NAME. It starts from the repository's seed
# corpus (runner/tests/fuzz/corpus/NAME, only read) and from BUILD/corpus/NAME,
# the working corpus where libFuzzer writes what it finds: the repository's
# corpus changes only by hand. A crash, leak, sanitizer report or broken
# invariant leaves its input in BUILD/crashes/NAME/ and fails the run, with
# the end of the log. Every run appends its statistics to BUILD/fuzz-stats.tsv.
set -euo pipefail

build=$1
seconds=$2
shift 2
here=runner/tests/fuzz

# ASan's quarantine (256 MB by default) keeps freed memory out of reuse; on
# these VMs every fresh page is a costly fault, and parsers that allocate a
# lot per input (expat) ran 3 times slower with it. 16 MB still holds every
# block one input frees, which is what a use after free needs.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

mkdir -p "$build/logs"
status=0
for name in "$@"; do
    bin=$build/fuzz/fuzz_$name
    work=$build/corpus/$name
    crashes=$build/crashes/$name
    log=$build/logs/$name.log
    mkdir -p "$work" "$crashes"
    args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="$crashes/")
    [ -f "$here/$name.dict" ] && args+=(-dict="$here/$name.dict")
    seeds=()
    [ -d "$here/corpus/$name" ] && seeds+=("$here/corpus/$name")
    # stdin from /dev/null: a path in a fuzzed configuration may name /dev/stdin
    if "$bin" "${args[@]}" "$work" "${seeds[@]}" </dev/null >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
        tail -n 40 "$log" >&2
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    corpus=$(find "$work" -type f | wc -l)
    printf 'fuzz_%-12s %-6s %10s executions in %ss, %s inputs in %s (log: %s)\n' \
        "$name" "$result" "${execs:-?}" "$seconds" "$corpus" "$work" "$log"
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" "$seconds" "${execs:-0}" "$result" \
        >>"$build/fuzz-stats.tsv"
done
exit $status
