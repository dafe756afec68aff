#!/usr/bin/env bash
# The fresh-root check (`make fresh-root`): proves that `make demo` works as
# the first command on a fresh Debian 12 machine, and that `make deps-test`
# then installs everything `make test` needs, from nothing.
#
#   scripts/fresh-root.sh [--keep]
#   scripts/fresh-root.sh --base-tarball   only the cached base root: makes it
#                                          if needed, prints its path
#
# CI machines keep whatever earlier runs installed, so a green CI alone never
# proved the install path. This script builds a minimal Debian 12 root
# (`debootstrap --variant=minbase bookworm`, plus `make`, which a user needs
# to type `make demo` at all), checks that it really lacks the build
# dependencies, puts the committed project (HEAD, not the working tree) at
# /src, and runs, as root inside it:
#
#   cd /src && make demo        installs the build group, builds, runs the demo
#   cd /src && make deps-test   installs the test group on top
#
# deps-test runs on every check, measured: it is the only proof that the
# test group installs from nothing, and it costs about 2-3 minutes of a run
# of about 3-5 minutes with a warm cache (see README.md for the figures).
# The full `make test` is not run inside: it would add its 10 minutes and
# prove nothing more about installing.
#
# Phases and their wall times are printed; a failure names its phase, and the
# last line is the verdict. The root is removed at the end, on failure and on
# Ctrl-C too; --keep keeps it (on disk) for debugging and prints where.
#
# Isolation: everything that runs in the root runs in new mount and PID
# namespaces (unshare). The root's mounts (a tmpfs for the root itself, proc,
# a read-only sysfs, a minimal /dev with its own devpts and a tmpfs /dev/shm,
# which PostgreSQL needs for POSIX shared memory) exist only in that mount
# namespace, and when its first process exits the kernel kills every process
# left in it (a PostgreSQL a failed demo left running, an apt-get cut short)
# and drops the mounts: nothing stays mounted, nothing survives the script.
# The root is a tmpfs (about 3 GB of memory at its largest) because dpkg's
# many small writes and fsyncs then cost nothing (a run took 4 min 21 s on
# disk and 3 min 16 s in a tmpfs, back to back) and the kernel frees it
# whatever happens; with --keep, or under 6 GiB of available memory, it is on
# disk under TMPDIR instead. The root shares the host's network; only the
# Debian mirror the host's apt uses is contacted.
#
# Cache: the base root (the debootstrap output) is kept as a tarball in
# ${SAUVE_CACHE:-$HOME/.cache/sauve}/fresh-root/, keyed by BASE_REV, the
# debootstrap version, the mirror, the architecture, the variant and the
# added packages, and made again when older than 7 days. It only saves time
# (1-2 minutes): without it (a new CI machine) the base is made with
# debootstrap, and a cache that does not unpack is removed and made again.
# Every run unpacks a fresh copy, so every run starts from the base root.
# Downloaded .debs are not cached: the mirror answers at about 40 MB/s here,
# so the 400 MB the two install steps fetch cost about 10 s; dpkg is the cost.
#
# Environment: SAUVE_CACHE (see above), TMPDIR (where the work directory is
# made, default /var/tmp; about 3 GB there when the root is on disk).
set -euo pipefail

SELF=$(realpath -e -- "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname -- "$SELF")/.." && pwd)
SUITE=bookworm
VARIANT=minbase
# Added to the base root: the one thing a user must have to type `make demo`.
INCLUDE="make"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
CACHE_DAYS=7
# The root lives in a tmpfs of this size when the host has MIN_AVAIL_KIB of
# memory available (the root grows to about 3 GB), else on disk.
TMPFS_SIZE=8g
MIN_AVAIL_KIB=$((6 * 1024 * 1024))
# Part of the cache key: bump it when phase_debootstrap changes what the base
# root holds.
BASE_REV=1
# What `make demo` must install itself: if the base root has any of these,
# the check proves nothing, and fails.
MUST_LACK=(gcc libpq-dev libzstd-dev libcurl4-openssl-dev libssl-dev pkg-config postgresql-15 zstd)

# (On stderr with --base-tarball, whose stdout is only the path.)
say() { if [ "${BASE_ONLY:-0}" = 1 ]; then printf 'fresh-root: %s\n' "$*" >&2; else printf 'fresh-root: %s\n' "$*"; fi; }
die() {
    printf 'fresh-root: %s\n' "$*" >&2
    exit 1
}
now_s() { echo "${EPOCHREALTIME%[.,]*}"; }
# "1 min 05 s" from a number of seconds.
duration() {
    local s=$1
    if [ "$s" -ge 60 ]; then printf '%d min %02d s' $((s / 60)) $((s % 60)); else printf '%d s' "$s"; fi
}

# ---------------------------------------------------------------------------
# Inside the namespaces (the script runs itself again under unshare): pid 1 of
# a new PID namespace, alone in a private mount namespace. Everything it
# needs comes from the FR_* variables the outer half exports.
# ---------------------------------------------------------------------------

# Runs the phase function $2 in a subshell, in the background so that a
# SIGTERM from the outer half is handled at once (bash runs a trap only
# between commands, and `wait` is one it interrupts). Prints its wall time;
# on failure says which phase failed and exits 1. $1: the phase's name.
PHASES=()
phase() {
    local name=$1 fn=$2 t0 rc=0
    printf '\n==> fresh-root: %s\n' "$name"
    # For the verdict the outer half prints, also after a signal.
    printf '%s\n' "$name" >"$FR_WORK/phase"
    t0=$(now_s)
    (
        set -euo pipefail
        "$fn"
    ) &
    wait $! || rc=$?
    local took=$(($(now_s) - t0))
    if [ "$rc" -ne 0 ]; then
        printf '\nfresh-root: FAILED in phase "%s" (exit %d after %s)\n' "$name" "$rc" "$(duration "$took")" >&2
        exit 1
    fi
    PHASES+=("$(printf '%-32s %s' "$name" "$(duration "$took")")")
    say "$name: done in $(duration "$took")"
}

# In the root, as root, with the environment of a login shell on a fresh
# machine (nothing of the host's: no MAKEFLAGS from the outer make, no
# AWS_CA_BUNDLE and the like) and no stdin, so that anything that prompts
# fails instead of hanging.
in_root() {
    chroot "$FR_ROOT" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        /bin/bash -lc "$1" </dev/null
}

# The base root: a fresh copy of the cached tarball, else debootstrap (whose
# result is then cached). In a tmpfs unless FR_TMPFS is 0.
phase_base() {
    mkdir "$FR_ROOT"
    if [ "$FR_TMPFS" = 1 ]; then
        mount -t tmpfs -o mode=755,size="$TMPFS_SIZE" fresh-root "$FR_ROOT"
        say "the root is a tmpfs (up to $TMPFS_SIZE of memory)"
    fi
    if [ -n "$FR_CACHE_HIT" ]; then
        if tar --extract --zstd --numeric-owner --xattrs --xattrs-include='*' --preserve-permissions \
            -C "$FR_ROOT" -f "$FR_CACHE_FILE" && [ -x "$FR_ROOT/usr/bin/apt-get" ]; then
            say "unpacked $FR_CACHE_FILE"
            return 0
        fi
        # The cache only ever saves time: a bad one is made again.
        say "warning: $FR_CACHE_FILE does not unpack to a root; removing it and running debootstrap"
        rm -f "$FR_CACHE_FILE"
        find "$FR_ROOT" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +
    fi
    debootstrap_base
}

# debootstrap's own log is shown when it fails (it is long and says little
# when it works).
debootstrap_base() {
    local log=$FR_WORK/debootstrap.log dir tmp
    if ! debootstrap --variant="$VARIANT" --include="$INCLUDE" --arch="$FR_ARCH" \
        --keyring="$KEYRING" --force-check-gpg \
        "$SUITE" "$FR_ROOT" "$FR_MIRROR" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "debootstrap $SUITE from $FR_MIRROR failed (above: the end of its log)" >&2
        return 1
    fi
    say "debootstrap $SUITE ($VARIANT, with $INCLUDE) from $FR_MIRROR"
    # The .debs debootstrap leaves in apt's cache: a fresh install has none.
    find "$FR_ROOT/var/cache/apt/archives" -name '*.deb' -delete
    # Cache the result for the next runs. A cache that cannot be written
    # costs only time. Written under a unique name, then renamed: runs at the
    # same time never read half a tarball.
    dir=$(dirname "$FR_CACHE_FILE")
    if mkdir -p "$dir" 2>/dev/null && tmp=$(mktemp "$FR_CACHE_FILE.partial.XXXXXX" 2>/dev/null) &&
        tar --create --zstd --one-file-system --numeric-owner --xattrs --xattrs-include='*' \
            -C "$FR_ROOT" -f "$tmp" . &&
        chmod 644 "$tmp" && mv -f "$tmp" "$FR_CACHE_FILE"; then
        say "cached the base root as $FR_CACHE_FILE ($(du -h "$FR_CACHE_FILE" | cut -f1))"
        # Older bases (another debootstrap, mirror or package list) are stale
        # now, and so are the leftovers of runs killed while writing.
        find "$dir" -maxdepth 1 -name "$SUITE-*.tar.zst" ! -name "$(basename "$FR_CACHE_FILE")" -delete
        find "$dir" -maxdepth 1 -name "$SUITE-*.partial.*" -mmin +1440 -delete
    else
        [ -z "${tmp:-}" ] || rm -f "$tmp"
        say "warning: could not cache the base root in $dir (that only costs time)"
    fi
}

# apt as a standard Debian 12 install has it, no service started by a
# package, the host's name servers.
phase_configure() {
    [ -s "$FR_ROOT$KEYRING" ] || {
        echo "the root has no $KEYRING (debian-archive-keyring)" >&2
        return 1
    }
    rm -f "$FR_ROOT/etc/apt/sources.list"
    cat >"$FR_ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $FR_MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: $KEYRING

Types: deb
URIs: $FR_SECURITY
Suites: $SUITE-security
Components: main
Signed-By: $KEYRING
EOF
    # invoke-rc.d asks policy-rc.d before starting a service: 101 is "not
    # allowed", so postgresql-15's postinst creates its cluster but starts
    # nothing.
    printf '#!/bin/sh\nexit 101\n' >"$FR_ROOT/usr/sbin/policy-rc.d"
    chmod 755 "$FR_ROOT/usr/sbin/policy-rc.d"
    # A copy, not a link: the host's may be a symlink to a path the root lacks.
    rm -f "$FR_ROOT/etc/resolv.conf"
    cat /etc/resolv.conf >"$FR_ROOT/etc/resolv.conf"
}

# The committed tree (HEAD), as a clean clone has it, at /src. /src's parent
# is /, which has no `shared`: whatever needs ../shared fails here.
phase_src() {
    mkdir "$FR_ROOT/src"
    git -C "$FR_REPO" archive --format=tar "$FR_COMMIT" | tar -x -C "$FR_ROOT/src"
    [ -f "$FR_ROOT/src/Makefile" ] || {
        echo "git archive $FR_COMMIT of $FR_REPO gave no Makefile" >&2
        return 1
    }
    say "/src is $FR_COMMIT of $FR_REPO ($(find "$FR_ROOT/src" -type f | wc -l) files)"
}

# The mounts a machine has, in this mount namespace only.
phase_mount() {
    local r=$FR_ROOT d
    mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
    mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
    # A minimal /dev: the usual character devices bound from the host, a
    # private devpts instance, and a tmpfs for POSIX shared memory.
    mount -t tmpfs -o nosuid,noexec,mode=755,size=64k devtmp "$r/dev"
    for d in null zero full random urandom tty; do
        touch "$r/dev/$d"
        mount --bind "/dev/$d" "$r/dev/$d"
    done
    mkdir "$r/dev/pts" "$r/dev/shm"
    mount -t devpts -o newinstance,nosuid,noexec,gid=5,mode=620,ptmxmode=666 devpts "$r/dev/pts"
    ln -s pts/ptmx "$r/dev/ptmx"
    mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$r/dev/shm"
    ln -s /proc/self/fd "$r/dev/fd"
    ln -s /proc/self/fd/0 "$r/dev/stdin"
    ln -s /proc/self/fd/1 "$r/dev/stdout"
    ln -s /proc/self/fd/2 "$r/dev/stderr"
}

# The check is worth something only if `make demo` has to install the build
# dependencies itself.
phase_bare() {
    local p status present=()
    for p in "${MUST_LACK[@]}"; do
        status=$(in_root "dpkg-query -W -f='\${db:Status-Status}' $p 2>/dev/null" || true)
        [ "$status" != installed ] || present+=("$p")
    done
    if [ ${#present[@]} -gt 0 ]; then
        echo "the base root already has ${present[*]} installed: it is not a fresh machine, the check would prove nothing" >&2
        return 1
    fi
    in_root 'command -v make >/dev/null' || {
        echo "the base root has no make" >&2
        return 1
    }
    [ ! -e "$FR_ROOT/shared" ] || {
        echo "the root has /shared: ../shared of /src must not exist" >&2
        return 1
    }
    say "not installed: ${MUST_LACK[*]}"
}

phase_demo() { in_root 'cd /src && make demo'; }
phase_deps_test() { in_root 'cd /src && make deps-test'; }

inside() {
    # pid 1 of the namespace: exiting kills every process left in it.
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    # Nothing mounted here may reach the host's mount table.
    mount --make-rprivate /

    if [ -n "$FR_CACHE_HIT" ]; then
        phase "base root (unpack the cache)" phase_base
    else
        phase "base root (debootstrap)" phase_base
    fi
    phase "configure apt, policy-rc.d, dns" phase_configure
    phase "copy the project to /src" phase_src
    phase "mount proc, sys, dev" phase_mount
    phase "check the root is bare" phase_bare
    phase "make demo" phase_demo
    phase "make deps-test" phase_deps_test

    rm -f "$FR_WORK/phase"
    printf '\n==> fresh-root: passed\n'
    printf '    %s\n' "${PHASES[@]}"
}

if [ "${1:-}" = --inside ]; then
    inside
    exit 0
fi

# ---------------------------------------------------------------------------
# Outside: checks, the cache key, the work directory and its removal, then the
# namespaces.
# ---------------------------------------------------------------------------

KEEP=0
BASE_ONLY=0
for arg in "$@"; do
    case $arg in
    --keep) KEEP=1 ;;
    --base-tarball) BASE_ONLY=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"
        exit 0
        ;;
    *)
        echo "usage: $0 [--keep] | --base-tarball" >&2
        exit 64
        ;;
    esac
done

[ "$(id -u)" -eq 0 ] || {
    echo "fresh-root: run as root (debootstrap, unshare and chroot need it)" >&2
    exit 77
}
T_START=$(now_s)

# The host's tools, from Debian's packages like everything else.
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v zstd >/dev/null || missing+=(zstd)
[ -s "$KEYRING" ] || missing+=(debian-archive-keyring)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing on the host: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        die "could not install ${missing[*]} on the host"
fi

# The mirror the host's apt uses for bookworm and for its security updates
# (as apt itself reads its sources), else Debian's.
mirror_of() {
    # shellcheck disable=SC2016 # apt's own $(FIELD) syntax
    apt-get indextargets --format '$(TARGET_OF) $(RELEASE) $(REPO_URI)' 2>/dev/null |
        awk -v rel="$1" '$1 == "deb" && $2 == rel { print $3; exit }'
}
FR_MIRROR=$(mirror_of "$SUITE")
FR_MIRROR=${FR_MIRROR:-http://deb.debian.org/debian/}
FR_SECURITY=$(mirror_of "$SUITE-security")
FR_SECURITY=${FR_SECURITY:-http://deb.debian.org/debian-security/}
FR_ARCH=$(dpkg --print-architecture)

[ "$BASE_ONLY" -eq 1 ] || git -C "$REPO" rev-parse --verify -q HEAD >/dev/null ||
    die "$REPO is not a git checkout with a commit: the check copies the committed tree (HEAD)"
FR_REPO=$REPO
FR_COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || true)
if [ "$BASE_ONLY" -eq 0 ] && [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]; then
    say "note: uncommitted changes in $REPO are not part of the check (it copies $FR_COMMIT)"
fi

# The base root's key: what decides its content. A base older than
# CACHE_DAYS is rebuilt too (the mirror moves on).
DEBOOTSTRAP_VERSION=$(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null || echo unknown)
key=$(printf '%s\n' "$BASE_REV" "$DEBOOTSTRAP_VERSION" "$FR_MIRROR" "$FR_ARCH" "$VARIANT" "$INCLUDE" | sha256sum | cut -c1-12)
CACHE_DIR=${SAUVE_CACHE:-${HOME:-/root}/.cache/sauve}/fresh-root
FR_CACHE_FILE=$CACHE_DIR/$SUITE-$FR_ARCH-$VARIANT-$key.tar.zst
FR_CACHE_HIT=
if [ -n "$(find "$FR_CACHE_FILE" -maxdepth 0 -mtime -"$CACHE_DAYS" 2>/dev/null)" ]; then
    FR_CACHE_HIT=1
    say "base root from the cache: $FR_CACHE_FILE"
else
    say "no base root younger than $CACHE_DAYS days in $CACHE_DIR: debootstrap $SUITE from $FR_MIRROR"
fi

# --base-tarball: only make sure the cached base root exists, and print its
# path (nothing else) on stdout. `make image` imports it as the builder's
# debian:bookworm (scripts/image/build.sh).
if [ "$BASE_ONLY" -eq 1 ]; then
    if [ -z "$FR_CACHE_HIT" ]; then
        FR_WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/sauve-base-root.XXXXXX")
        FR_ROOT=$FR_WORK/root
        trap 'rm -rf --one-file-system -- "$FR_WORK"' EXIT
        debootstrap_base >&2 || die "could not make the base root"
        [ -f "$FR_CACHE_FILE" ] || die "the base root was made but could not be cached in $FR_CACHE_FILE"
    fi
    printf '%s\n' "$FR_CACHE_FILE"
    exit 0
fi

FR_WORK=
UNSHARE_PID=
INTERRUPTED=

# Removes the work directory, unless --keep; never through a mount point (the
# namespaces' mounts are gone by now: something mounted there was mounted
# from outside, and rm would empty it). Then prints the verdict, last, where
# a CI log is read first.
cleanup() {
    local rc=$? phase='' total
    set +e
    trap - EXIT INT TERM HUP
    if [ -n "$FR_WORK" ]; then
        phase=$(cat "$FR_WORK/phase" 2>/dev/null)
        if [ "$KEEP" -eq 1 ]; then
            say "kept the root: $FR_ROOT (remove it with: rm -rf --one-file-system $FR_WORK)"
        elif awk -v w="$FR_WORK" '$5 == w || index($5, w "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
            echo "fresh-root: something is mounted under $FR_WORK; NOT removed (unmount it, then rm -rf $FR_WORK)" >&2
            [ "$rc" -ne 0 ] || rc=1
        else
            local t0
            t0=$(now_s)
            rm -rf --one-file-system -- "$FR_WORK"
            say "removed $FR_WORK in $(duration $(($(now_s) - t0)))"
        fi
    fi
    total=$(duration $(($(now_s) - T_START)))
    if [ "$rc" -eq 0 ]; then
        say "passed in $total"
    elif [ -n "$INTERRUPTED" ]; then
        echo "fresh-root: INTERRUPTED by $INTERRUPTED${phase:+ in phase \"$phase\"} after $total" >&2
    elif [ -n "$phase" ]; then
        echo "fresh-root: FAILED in phase \"$phase\" after $total; the phase's output is above" >&2
    else
        echo "fresh-root: FAILED (exit $rc) after $total" >&2
    fi
    exit "$rc"
}

# unshare runs in the background and this script waits for it, so that a
# signal is handled at once (bash runs a trap only when its foreground
# command ends, and `wait` is interrupted): the trap asks pid 1 of the
# namespace to exit, which kills everything in it, waits for unshare, which
# returns once the namespace is empty, and only then does cleanup remove the
# root. (SIGTERM, not SIGINT: a background job starts with SIGINT ignored.)
# --kill-child covers unshare itself being killed.
stop_inside() {
    local child=
    set +e
    INTERRUPTED=$1
    echo "fresh-root: $1: stopping everything in the root" >&2
    if [ -n "$UNSHARE_PID" ]; then
        read -r child _ <"/proc/$UNSHARE_PID/task/$UNSHARE_PID/children" 2>/dev/null
        if [ -n "$child" ]; then
            kill -TERM "$child" 2>/dev/null
        else
            kill -KILL "$UNSHARE_PID" 2>/dev/null
        fi
        wait "$UNSHARE_PID" 2>/dev/null
    fi
    exit "$2"
}
trap cleanup EXIT
trap 'stop_inside SIGINT 130' INT
trap 'stop_inside SIGTERM 143' TERM
trap 'stop_inside SIGHUP 129' HUP

# A tmpfs root: dpkg's many small writes and fsyncs cost nothing, and the
# kernel frees it with the mount namespace whatever happens to this script.
# --keep needs the root to outlive the namespace: on disk then.
avail_kib=$(awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo)
if [ "$KEEP" -eq 1 ]; then
    FR_TMPFS=0
elif [ "${avail_kib:-0}" -lt "$MIN_AVAIL_KIB" ]; then
    FR_TMPFS=0
    say "note: $((avail_kib / 1024)) MiB of memory available, under $((MIN_AVAIL_KIB / 1024)) MiB: the root goes on disk"
else
    FR_TMPFS=1
fi

FR_WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/sauve-fresh-root.XXXXXX")
FR_ROOT=$FR_WORK/root
export FR_WORK FR_ROOT FR_TMPFS FR_MIRROR FR_SECURITY FR_ARCH FR_REPO FR_COMMIT FR_CACHE_FILE FR_CACHE_HIT

unshare --mount --pid --fork --propagation private --kill-child -- "$SELF" --inside &
UNSHARE_PID=$!
rc=0
wait "$UNSHARE_PID" || rc=$?
UNSHARE_PID=
# Its status is the script's; cleanup reports it.
[ "$rc" -eq 0 ] || exit "$rc"
