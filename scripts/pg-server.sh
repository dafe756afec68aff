#!/usr/bin/env bash
# Builds a PostgreSQL server of one major for the integration tests, from
# Debian's source package, into build/pg/MAJOR: a normal glibc build of the
# server and the programs the tests run (initdb, pg_ctl, postgres, psql,
# pg_dump, pg_restore, pg_dumpall), with OpenSSL, without ICU, readline,
# zlib, contrib or documentation.
#
#   scripts/pg-server.sh MAJOR        (make pg-server runs it for 18)
#
# Debian 12 carries binaries of PostgreSQL 15 only; a newer server comes
# from the source package postgresql-MAJOR of whichever suite carries it,
# chosen by scripts/static/fetch-source.sh (the newest version that
# downloads), which the static image's tools are built from too.
#
# A build takes minutes, so the installed tree is cached outside the clone
# (CI starts from a fresh clone every time), keyed by the exact Debian
# version and a hash of this script:
#   ${SAUVE_CACHE:-~/.cache/sauve}/pg-server/postgresql-MAJOR/VERSION-HASH/
# and copied into build/pg/MAJOR, never linked: the server runs as the
# postgres user, who cannot enter /root. A later run in the same clone
# does nothing (build/pg/MAJOR/.build names the version and the hash); a
# fresh clone asks the mirror which version is current (the apt indexes
# and the unpacked source, under build/pg/work-MAJOR) and copies the
# cached tree when it has that version.
#
# The tree is built for --prefix=/usr/lib/postgresql/MAJOR, as Debian's
# patches expect (a prefix without "postgres" in it would send the server's
# libraries to /usr/lib/postgresql/MAJOR/lib), installed under a staging
# directory, never into /usr. PostgreSQL finds its lib and share
# directories relative to its bin directory, and the programs find libpq
# through an $ORIGIN run path, so the tree works wherever it is copied.
#
# Environment:
#   SAUVE_CACHE             the cache (default ~/.cache/sauve); source files
#                           are kept there too (fetch-source.sh)
#   SAUVE_PG_SERVER_DIR     where build/pg is (default: the clone's build/pg)
#   SAUVE_PG_SERVER_JOBS    parallel jobs (default: number of CPUs)
#   SAUVE_STATIC_MIRROR     passed on to fetch-source.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT=$ROOT/scripts/pg-server.sh

log() { printf '== pg-server: %s\n' "$*" >&2; }
die() { printf 'pg-server: %s\n' "$*" >&2; exit 1; }

if [ $# -ne 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
    die "usage: $0 MAJOR (e.g. 18)"
fi
major=$1
pkg=postgresql-$major
# The suites fetch-source.sh searches, in the order it trusts them (as
# scripts/static/build.sh does for the image's tools).
suites=(bookworm-security bookworm bookworm-updates trixie-security trixie trixie-updates forky sid)

BASE=${SAUVE_PG_SERVER_DIR:-$ROOT/build/pg}
mkdir -p "$BASE"
BASE=$(cd "$BASE" && pwd)
OUT=$BASE/$major
WORK=$BASE/work-$major
CACHE=${SAUVE_CACHE:-${HOME:-/root}/.cache/sauve}
JOBS=${SAUVE_PG_SERVER_JOBS:-$(nproc)}
hash=$(sha256sum "$SCRIPT" | cut -c1-12)
t_start=$(date +%s)

# Two runs in one clone at once must not build in the same directories;
# two clones that share the cache race only on its final rename (below).
mkdir -p "$WORK"
exec 9>"$WORK/lock"
flock 9

if [ -f "$OUT/.build" ] && [ "$(cut -d' ' -f3 "$OUT/.build")" = "$hash" ] && [ -x "$OUT/bin/postgres" ]; then
    log "$OUT is $(cut -d' ' -f1,2 "$OUT/.build") (already built; rm -rf $OUT to ask the mirror again)"
    exit 0
fi

for tool in bison flex perl make gcc pkg-config dpkg-source apt-get; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run 'make deps-test' (scripts/install-deps.sh test)"
done
[ -f /usr/include/openssl/ssl.h ] || die "OpenSSL headers are missing: run 'make deps-test'"
[ -d /usr/share/zoneinfo ] || die "/usr/share/zoneinfo is missing: install tzdata"

log "asking the mirror for $pkg (${suites[*]})"
SAUVE_STATIC_APT_DIR=$WORK/apt SAUVE_CACHE=$CACHE \
    "$ROOT/scripts/static/fetch-source.sh" "$pkg" "$WORK/src" "${suites[@]}" ||
    die "cannot fetch the source of $pkg"
version=$(cat "$WORK/src/.version")
suite=$(cat "$WORK/src/.suite")
entry=$CACHE/pg-server/$pkg/$version-$hash

build() {
    local src=$WORK/src stage=$WORK/stage
    log "building $pkg $version ($suite) with $JOBS jobs; log in $WORK/build.log"
    rm -rf "$stage"
    : >"$WORK/build.log"
    # rpathdir: the programs find libpq in ../lib wherever the tree is copied
    # (make turns $$ into $, the shell's single quotes keep it). The
    # generated headers first: a parallel build can race past them.
    # shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader, not the shell
    local mk=(make -j"$JOBS" rpathdir='$$ORIGIN/../lib')
    # Only what initdb, the server and the tests' clients need; the catalog
    # headers' directory installs postgres.bki, which initdb reads.
    local dirs=(src/backend src/include/catalog src/backend/utils/mb/conversion_procs src/backend/snowball
        src/timezone src/pl/plpgsql src/interfaces/libpq src/bin/initdb src/bin/pg_ctl src/bin/psql src/bin/pg_dump)
    (
        cd "$src"
        ./configure --prefix="/usr/lib/postgresql/$major" --without-icu --without-readline --without-zlib \
            --with-system-tzdata=/usr/share/zoneinfo --with-ssl=openssl --without-gssapi --without-ldap \
            --without-pam --without-systemd --without-llvm --disable-nls
        make -C src/backend generated-headers
        for d in "${dirs[@]}"; do "${mk[@]}" -C "$d" all; done
        for d in "${dirs[@]}"; do "${mk[@]}" -C "$d" install DESTDIR="$stage"; done
    ) >>"$WORK/build.log" 2>&1 || {
        tail -40 "$WORK/build.log" >&2
        die "$pkg $version: build failed (full log: $WORK/build.log)"
    }
    local tree=$stage/usr/lib/postgresql/$major
    # What the tests run, and proof that each is this version.
    local upstream=${version#*:}
    upstream=${upstream%%-*}
    local p
    for p in initdb pg_ctl postgres psql pg_dump pg_restore pg_dumpall; do
        [ -x "$tree/bin/$p" ] || die "$pkg $version: $p was not installed"
        "$tree/bin/$p" --version | grep -qF " $upstream" ||
            die "$pkg $version: $p --version says '$("$tree/bin/$p" --version)', not $upstream"
    done
    local f
    for f in lib/plpgsql.so lib/dict_snowball.so share/postgres.bki share/system_constraints.sql \
        share/postgresql.conf.sample share/snowball_create.sql share/timezonesets/Default; do
        [ -f "$tree/$f" ] || die "$pkg $version: $f was not installed"
    done
    # Into the cache under a temporary name, then renamed: a cache entry is
    # complete or absent, also when two builds race (the loser's is dropped).
    mkdir -p "$(dirname "$entry")"
    local tmp=$entry.tmp.$$
    rm -rf "$tmp"
    cp -a "$tree" "$tmp"
    printf '%s %s %s %s\n' "$pkg" "$version" "$hash" "$suite" >"$tmp/.build"
    mv -T "$tmp" "$entry" 2>/dev/null || rm -rf "$tmp"
    rm -rf "$stage"
}

if [ -f "$entry/.build" ]; then
    log "$pkg $version found in the cache ($entry)"
else
    build
fi

rm -rf "$OUT.tmp"
cp -a "$entry" "$OUT.tmp"
# The server runs as the postgres user.
chmod -R a+rX "$OUT.tmp"
rm -rf "$OUT"
mv -T "$OUT.tmp" "$OUT"
# The unpacked source is large and the next run re-fetches it; the apt
# indexes stay.
rm -rf "$WORK/src"
log "$OUT: $pkg $version from $suite ($("$OUT/bin/postgres" --version)) in $(($(date +%s) - t_start)) s"
