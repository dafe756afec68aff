# shellcheck shell=bash
# Sourced by the benchmark scripts (bench/run.sh, bench/s3.sh): what they
# share. Uses the caller's PGBIN, FILLER, WORK and its die, log and
# psql_admin (scripts/lib/pg.sh) functions.

# Exits 64 unless FILLER is realistic or blank.
bench_check_filler() {
    case $FILLER in realistic | blank) ;; *)
        echo "bench: BENCH_FILLER must be realistic or blank" >&2
        exit 64
        ;;
    esac
}

# Exits 69 naming the first of the given executables that is missing.
bench_require_tools() {
    local tool
    for tool in "$@"; do
        [ -x "$tool" ] || {
            echo "bench: $tool not found" >&2
            exit 69
        }
    done
}

# Creates database DB as a pgbench database of scale SCALE, with the filler
# FILLER asks for, keys, frozen and analysed.
bench_load() { # DB SCALE
    local db=$1 scale=$2 t0=$SECONDS
    psql_admin -c "CREATE DATABASE $db OWNER bench"
    # Tables and rows first; keys after the filler is rewritten (faster).
    "$PGBIN/pgbench" -i -q -I dtG -s "$scale" "$db" >"$WORK/pgbench.log" 2>&1 ||
        {
            cat "$WORK/pgbench.log" >&2
            die "pgbench -i failed"
        }
    if [ "$FILLER" = realistic ]; then
        "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" \
            -c 'UPDATE pgbench_accounts SET filler = md5(aid::text) || md5((aid * 7)::text)' \
            -c 'VACUUM FULL pgbench_accounts'
    fi
    "$PGBIN/pgbench" -i -q -I p "$db" >"$WORK/pgbench.log" 2>&1 ||
        {
            cat "$WORK/pgbench.log" >&2
            die "pgbench -i -I p failed"
        }
    psql_admin -d "$db" -c 'VACUUM (FREEZE, ANALYZE)'
    log "$db: scale $scale, $FILLER filler, $(psql_admin -At -c "SELECT pg_size_pretty(pg_database_size('$db'))"), loaded in $((SECONDS - t0)) s"
}
