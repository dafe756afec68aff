#!/usr/bin/env bash
# Fetches a Debian source package, unpacked with Debian's patches, choosing
# the newest version that actually downloads from any of the given suites.
#
#   scripts/static/fetch-source.sh PACKAGE DEST SUITE...
#
# A package index may list a version whose files the mirror no longer serves
# (seen: postgresql-17 17.12-0+deb13u1 listed by trixie and trixie-security,
# every file 404). So the versions the suites list are tried newest first,
# and the first that downloads is taken; ties go to the suite named first.
# Suites are given in the order a user would trust them: a release's
# security suite, the release, its updates, then newer releases.
#
# On success DEST holds the unpacked tree, with DEST/.version (the exact
# Debian version) and DEST/.suite (a suite listing it); prints nothing on
# stdout. On failure exits 1 with a message naming the package, every suite
# searched and every version tried.
#
# Environment:
#   SAUVE_STATIC_MIRROR   mirror base URL (default http://deb.debian.org); a
#                         suite ending in -security is under MIRROR/debian-security,
#                         every other under MIRROR/debian
#   SAUVE_STATIC_KEYRING  keyring that signs the mirror's Release files
#                         (default: Debian's archive keyring)
#   SAUVE_STATIC_APT_DIR  apt's private state (default DEST/../apt): the
#                         host's sources and package lists are neither read
#                         nor changed
#   SAUVE_CACHE           downloaded source files are kept under
#                         SAUVE_CACHE/sources/PACKAGE (default ~/.cache/sauve):
#                         a version's files never change, so a later build
#                         reuses them; nothing depends on the cache
set -euo pipefail

die() { printf 'fetch-source: %s\n' "$*" >&2; exit 1; }
log() { printf '== %s\n' "$*" >&2; }

[ $# -ge 3 ] || die "usage: $0 PACKAGE DEST SUITE..."
pkg=$1 dest=$2
shift 2
suites=("$@")

MIRROR=${SAUVE_STATIC_MIRROR:-http://deb.debian.org}
KEYRING=${SAUVE_STATIC_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
CACHE=${SAUVE_CACHE:-${HOME:-/root}/.cache/sauve}
[ -r "$KEYRING" ] || die "keyring $KEYRING not readable (install debian-archive-keyring)"

mkdir -p "$(dirname "$dest")"
dest=$(cd "$(dirname "$dest")" && pwd)/$(basename "$dest")
APT_ROOT=${SAUVE_STATIC_APT_DIR:-$(dirname "$dest")/apt}

# One private apt state per suite, so that "version V from suite S" is
# exactly what is asked for: with several suites in one state, apt takes a
# version from the first suite listing it (a security archive can list a
# version whose files only the main archive serves). The lists are shared
# by every package fetched from the same suite in one build.
apt_state() { # SUITE -> sets APT
    local key
    key=$(printf '%s\n' "$MIRROR" "$KEYRING" "$1" | sha256sum | cut -c1-8)
    APT=$APT_ROOT/$1-$key
}
apt_opts() {
    printf '%s\n' -o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
        -o "Dir::State=$APT/state" -o "Dir::State::status=$APT/state/status" -o "Dir::Cache=$APT/cache"
}
apt_private() {
    local opts; mapfile -t opts < <(apt_opts)
    apt-get -q "${opts[@]}" -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}
apt_cache_private() {
    local opts; mapfile -t opts < <(apt_opts)
    apt-cache "${opts[@]}" "$@"
}

# update SUITE: the suite's source index, once per build. A suite that fails
# (gone from the mirror, or not signed by the keyring: apt then ignores it)
# is reported, not fatal: what matters is whether a suite that works lists
# the package, and the search below says so.
update() {
    apt_state "$1"
    [ -f "$APT/state/lists/.updated" ] && return 0
    rm -rf "$APT"
    mkdir -p "$APT/state/lists/partial" "$APT/cache/archives/partial"
    : >"$APT/state/status"
    case "$1" in
        *-security) echo "deb-src [signed-by=$KEYRING] $MIRROR/debian-security $1 main" ;;
        *) echo "deb-src [signed-by=$KEYRING] $MIRROR/debian $1 main" ;;
    esac >"$APT/sources.list"
    log "apt-get update (deb-src $1, private state in $APT)"
    if apt_private update >"$APT/update.log" 2>&1; then
        touch "$APT/state/lists/.updated"
    else
        # Not remembered: a later fetch asks again, so that a passing outage
        # of a security suite never pins older versions for good.
        log "apt-get update of $1 failed (not searched):"
        grep -E '^(E|W|Err):' "$APT/update.log" | sed 's/^/     /' >&2 || true
    fi
}

# "VERSION SUITE" per line. madison prints "pkg | version | mirror suite/main Sources".
candidates=()
for s in "${suites[@]}"; do
    update "$s"
    while IFS='|' read -r _ v where; do
        v=${v// /}
        case "$where" in
            *" $s/main Sources"*) candidates+=("$v $s") ;;
        esac
    done < <(apt_cache_private madison "$pkg" 2>/dev/null || true)
done
[ ${#candidates[@]} -gt 0 ] || die "$pkg: no suite lists it (searched: ${suites[*]} on $MIRROR)"

# Insertion sort by Debian version order (dpkg --compare-versions), stable.
sorted=()
for c in "${candidates[@]}"; do
    placed=false
    new=()
    for d in "${sorted[@]}"; do
        if ! $placed && dpkg --compare-versions "${c%% *}" gt "${d%% *}"; then
            new+=("$c")
            placed=true
        fi
        new+=("$d")
    done
    $placed || new+=("$c")
    sorted=("${new[@]}")
done

downloads=$CACHE/sources/$pkg
mkdir -p "$downloads"
tried=()
chosen=
for c in "${sorted[@]}"; do
    v=${c%% *} s=${c#* }
    tried+=("$v ($s)")
    apt_state "$s"
    log "apt-get source $pkg=$v ($s)"
    if (cd "$downloads" && apt_private source --download-only "$pkg=$v") >"$downloads/fetch.log" 2>&1; then
        chosen="$v $s"
        break
    fi
    # apt prints "Err:N URL ... (dsc)" then the server's answer ("404  Not Found").
    log "$pkg $v: listed by $s but not downloadable: $(grep -A1 -m1 -E '^Err:' "$downloads/fetch.log" | tr -s ' \n' ' ' | sed 's/ $//' ||
        grep -m1 '^E:' "$downloads/fetch.log")"
done
[ -n "$chosen" ] || die "$pkg: no listed version downloads (searched: ${suites[*]} on $MIRROR; tried: $(IFS=,; echo "${tried[*]}" | sed 's/,/, /g'))"

v=${chosen%% *} s=${chosen#* }
# The .dsc name drops the epoch.
dsc=$downloads/${pkg}_${v#*:}.dsc
[ -f "$dsc" ] || die "$pkg $v: downloaded, but $dsc is missing"
rm -rf "$dest" "$dest.tmp"
dpkg-source -x "$dsc" "$dest.tmp" >"$downloads/unpack.log" 2>&1 ||
    { cat "$downloads/unpack.log" >&2; die "dpkg-source -x $dsc failed"; }
echo "$v" >"$dest.tmp/.version"
echo "$s" >"$dest.tmp/.suite"
mv "$dest.tmp" "$dest"
log "$pkg $v from $s"
