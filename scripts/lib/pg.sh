# shellcheck shell=bash
# A throwaway PostgreSQL for scripts/demo.sh and bench/run.sh: started as the
# postgres user (runuser) on 127.0.0.1, with its data and its Unix socket in a
# temporary directory, and torn down with that directory on exit, failure or
# Ctrl-C. Sourced, not run; the caller uses `set -euo pipefail` and sets PGBIN,
# PostgreSQL's bin directory, before calling anything here.
#
# Variables: WORK (the temporary directory), PGDATA_DIR (data and socket
# directory), PG_PORT (TCP and socket port), PG_STARTING (1 while pg_ctl
# start runs), PG_PID (pid of the postmaster pg_stop stopped).

# Exits 77 unless run as root (runuser needs it). $1: the script's name, for
# the message.
pg_require_root() {
    [ "$(id -u)" -eq 0 ] || {
        echo "$1: run as root (PostgreSQL is started as the postgres user with runuser)" >&2
        exit 77
    }
}

# Unsets every exported PG*, SAUVE_* and AWS_* variable, so that the
# caller's environment cannot steer the script or the clients it runs.
scrub_env() {
    local var
    while IFS= read -r var; do
        case $var in
        PGBIN) ;; # the scripts' own setting: where PostgreSQL's programs are
        PG* | SAUVE_* | AWS_*) unset "$var" ;;
        esac
    done < <(compgen -e)
}

# Prints a TCP port that is free on 127.0.0.1 at the time of the call.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Prints a random password: 30 hex digits.
random_password() {
    od -An -N15 -tx1 /dev/urandom | tr -d ' \n'
}

# Creates the temporary directory from the mktemp template $1, traversable by
# the postgres user. Sets WORK, PGDATA_DIR=$WORK/pg and PG_STARTING=0.
pg_workdir() {
    WORK=$(mktemp -d "$1")
    chmod 755 "$WORK"
    PGDATA_DIR=$WORK/pg
    PG_STARTING=0
}

# From now on, on exit, failure or INT/TERM/HUP (exit status 130/143/129),
# runs pg_cleanup. $1: a function pg_cleanup calls after the teardown to
# report it (it may read PG_PID and WORK). Call it right after pg_workdir.
pg_cleanup_on_exit() {
    PG_CLEANUP_REPORT=$1
    trap pg_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

# The EXIT trap: stops PostgreSQL (pg_stop), removes WORK, calls the report
# function given to pg_cleanup_on_exit, and exits with the script's status.
# Uses WORK, PG_CLEANUP_REPORT.
pg_cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM HUP
    pg_stop
    cd /
    rm -rf -- "$WORK"
    "$PG_CLEANUP_REPORT"
    exit "$rc"
}

# Stops the PostgreSQL of PGDATA_DIR, if one runs, with pg_ctl -m immediate
# (SIGQUIT if pg_ctl fails), and waits up to 5 s for its postmaster to exit.
# pg_ctl puts the postmaster in its own session, so Ctrl-C during start does
# not reach it: while PG_STARTING is 1, first waits up to 5 s for its pid
# file. Sets PG_PID to the postmaster's pid, empty if none ran.
pg_stop() {
    PG_PID=
    if [ "$PG_STARTING" = 1 ]; then
        for _ in $(seq 50); do
            [ -f "$PGDATA_DIR/postmaster.pid" ] && break
            sleep 0.1
        done
    fi
    [ -f "$PGDATA_DIR/postmaster.pid" ] || return 0
    PG_PID=$(head -n 1 "$PGDATA_DIR/postmaster.pid")
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1 ||
        kill -QUIT "$PG_PID" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$PG_PID" 2>/dev/null || break
        sleep 0.1
    done
}

# Creates a cluster in PGDATA_DIR (initdb: superuser postgres, trust over the
# socket, scram-sha-256 over TCP, UTF8, no locale) and starts it on
# 127.0.0.1:PG_PORT, fsync off, with its socket in PGDATA_DIR; the server
# log is PGDATA_DIR/log. $1: the function that reports a fatal error and
# exits, called (after the log is shown) if initdb or the start fails; $2:
# the title of the lines appended to postgresql.conf; the rest: more
# settings, one "name = value" each. Uses PGBIN, WORK (initdb.log goes
# there), PGDATA_DIR, PG_PORT; sets PG_STARTING.
pg_start() {
    local die=$1 title=$2 setting
    shift 2
    install -d -o postgres -g postgres -m 700 "$PGDATA_DIR"
    runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres -A trust \
        --auth-host=scram-sha-256 --no-locale --no-sync -E UTF8 >"$WORK/initdb.log" 2>&1 ||
        {
            cat "$WORK/initdb.log" >&2
            "$die" "initdb failed"
        }
    cat >>"$PGDATA_DIR/postgresql.conf" <<EOF
# $title
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDATA_DIR'
fsync = off
EOF
    for setting; do
        echo "$setting" >>"$PGDATA_DIR/postgresql.conf"
    done
    PG_STARTING=1
    runuser -u postgres -- "$PGBIN/pg_ctl" -w -D "$PGDATA_DIR" -l "$PGDATA_DIR/log" start >/dev/null ||
        {
            cat "$PGDATA_DIR/log" >&2
            "$die" "PostgreSQL did not start"
        }
    PG_STARTING=0
}

# psql as the superuser over the Unix socket (trust), stopping at the first
# error; arguments are psql's. Uses PGBIN, PGDATA_DIR, PG_PORT.
psql_admin() {
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGDATA_DIR" -p "$PG_PORT" -U postgres "$@"
}
