# shellcheck shell=bash
# What the image scripts share (scripts/image/build.sh, repro.sh): buildah
# with the project's own storage, and the base image the Dockerfile's
# builder stage starts from. Sourced, never run.
#
# Storage: buildah keeps images and its layer cache in a store of the
# project's own, SAUVE_BUILDAH_ROOT (default ~/.cache/sauve/buildah/DRIVER),
# never the host's /var/lib/containers: the cache survives `make clean` and a
# fresh clone, and `rm -rf ~/.cache/sauve/buildah` removes all of it. The
# storage driver is overlay where the kernel allows it (as root on ext4
# here), else vfs (a full copy of the file system per layer: slower, and
# several GB for the builder stage). Isolation is chroot: no container
# runtime is needed, and RUN steps share the host's network.

IMAGE_NAME=localhost/sauve
# The name the Dockerfile's builder stage asks for, as buildah resolves it.
BASE_NAME=docker.io/library/debian:bookworm
SAUVE_CACHE=${SAUVE_CACHE:-${HOME:-/root}/.cache/sauve}
export BUILDAH_ISOLATION=chroot

img_die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
img_say() { printf '== %s\n' "$*" >&2; }
now_s() { echo "${EPOCHREALTIME%[.,]*}"; }

img_require() {
    [ "$(id -u)" -eq 0 ] || img_die "run as root (buildah builds and runs images as root here)"
    command -v buildah >/dev/null || img_die "no buildah: run make deps-test (scripts/install-deps.sh test)"
}

# store_setup [ROOT]: chooses the driver and the store (ROOT, default
# SAUVE_BUILDAH_ROOT or the cache); bh then runs buildah on it.
store_setup() {
    local root=${1:-${SAUVE_BUILDAH_ROOT:-}} driver=${SAUVE_BUILDAH_DRIVER:-}
    if [ -z "$driver" ]; then
        driver=vfs
        # overlay needs the kernel's overlayfs on the store's file system;
        # buildah says so at once when it cannot.
        local probe=${root:-$SAUVE_CACHE/buildah/overlay}
        mkdir -p "$probe"
        if buildah --root "$probe" --runroot "/run/sauve-buildah/probe-$$" --storage-driver overlay \
            images >/dev/null 2>&1; then
            driver=overlay
        fi
        rm -rf "/run/sauve-buildah/probe-$$"
    fi
    STORE=${root:-$SAUVE_CACHE/buildah/$driver}
    DRIVER=$driver
    mkdir -p "$STORE"
    RUNROOT=/run/sauve-buildah/$(printf '%s' "$STORE" | sha256sum | cut -c1-12)
}
bh() { buildah --root "$STORE" --runroot "$RUNROOT" --storage-driver "$DRIVER" "$@"; }

# What the image is made from: the build context (.dockerignore lets in the
# Makefile, LICENSE, runner/ and scripts/static/), the Dockerfile, and how it
# is built.
IMAGE_INPUTS=(Dockerfile .dockerignore Makefile LICENSE runner scripts/static scripts/image scripts/fresh-root.sh)

# source_date_epoch REPO: the time every timestamp of the image is clamped
# to: the commit time of the newest commit that changed IMAGE_INPUTS, so
# that a commit that changes nothing the image is made from (documentation,
# tests) gives the same image, digests included; SOURCE_DATE_EPOCH when set
# (a source tree without git).
source_date_epoch() {
    if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
        echo "$SOURCE_DATE_EPOCH"
        return 0
    fi
    local t
    t=$(git -C "$1" log -1 --format=%ct -- "${IMAGE_INPUTS[@]}" 2>/dev/null) && [ -n "$t" ] ||
        img_die "$1 is no git checkout: set SOURCE_DATE_EPOCH (the time every file of the image gets)"
    echo "$t"
}

# import_base: the builder stage's debian:bookworm, which no registry can
# give here: the debootstrap root of scripts/fresh-root.sh (bookworm minbase,
# plus make), cached as a tarball in ~/.cache/sauve/fresh-root, with apt's
# sources as Debian's official image has them (bookworm, bookworm-updates,
# bookworm-security from deb.debian.org), and the host's apt view of the
# mirror's dates (host_apt_validity). Imported once per tarball: the
# image stays in the store, and with it the builder's layer cache; a new
# tarball (a week old, or another debootstrap) makes a new base, and the
# builder stage is built again on it.
import_base() {
    local repo=$1 tarball stamp want ctr mnt
    tarball=$("$repo/scripts/fresh-root.sh" --base-tarball) || img_die "no base root (scripts/fresh-root.sh --base-tarball)"
    stamp=$STORE/sauve-base
    local apt_conf
    apt_conf=$(host_apt_validity)
    want=$(basename "$tarball")-$(printf '%s' "$apt_conf" | sha256sum | cut -c1-8)
    if [ -f "$stamp" ] && [ "$(cut -d' ' -f1 "$stamp")" = "$want" ] &&
        [ "$(bh inspect --type image --format '{{.FromImageID}}' "$BASE_NAME" 2>/dev/null)" = "$(cut -d' ' -f2 "$stamp")" ]; then
        img_say "base $BASE_NAME: $want, imported before"
        return 0
    fi
    img_say "importing $tarball as $BASE_NAME"
    ctr=$(bh from --pull=never scratch)
    mnt=$(bh mount "$ctr")
    tar --extract --zstd --numeric-owner --xattrs --xattrs-include='*' --preserve-permissions \
        -C "$mnt" -f "$tarball" || { bh rm "$ctr" >/dev/null; img_die "could not unpack $tarball"; }
    rm -f "$mnt/etc/apt/sources.list"
    cat >"$mnt/etc/apt/sources.list.d/debian.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    if [ -n "$apt_conf" ]; then
        printf '%s\n' "// The host's apt settings for the mirror's Release dates (scripts/image/lib.sh)" \
            "$apt_conf" >"$mnt/etc/apt/apt.conf.d/99sauve-host-mirror"
    fi
    bh umount "$ctr" >/dev/null
    bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash \
        --os linux --arch "$(go_arch)" "$ctr"
    bh commit -q --rm --identity-label=false --timestamp "$(stat -c %Y "$tarball")" "$ctr" "$BASE_NAME" >/dev/null
    printf '%s %s\n' "$want" "$(bh inspect --type image --format '{{.FromImageID}}' "$BASE_NAME")" >"$stamp"
}

# host_apt_validity: how the host's apt judges the dates of the mirror's
# Release files (Acquire::Check-Valid-Until, Acquire::Check-Date), when the
# host sets them. The base image talks to the same mirror as the host, so
# its apt must judge it the same way: a machine whose mirror is a frozen
# snapshot (this one: forky's and sid's Release files expired weeks ago)
# accepts them on the host, and the builder, whose fetch-source.sh reads
# /etc/apt/apt.conf.d too, must as well. Nothing is set when the host sets
# nothing, as on a machine that talks to Debian's live mirror.
host_apt_validity() {
    apt-config dump 2>/dev/null | grep -E '^Acquire::Check-(Valid-Until|Date) ' || true
}

# The architecture as OCI names it.
go_arch() {
    case "$(dpkg --print-architecture)" in
        amd64) echo amd64 ;;
        arm64) echo arm64 ;;
        *) dpkg --print-architecture ;;
    esac
}

# build_image REPO EPOCH TAG [bud flags...]: the Dockerfile, as `docker build`
# builds it: both stages, the base from the store only (--pull=never), every
# timestamp the given epoch, no label buildah would add of its own.
build_image() {
    local repo=$1 epoch=$2 tag=$3
    shift 3
    bh bud --pull=never --isolation chroot --force-rm --timestamp "$epoch" --identity-label=false \
        --build-arg VERSION="${SAUVE_VERSION:-0.1.0}" -f "$repo/Dockerfile" -t "$tag" "$@" "$repo"
}

# prune_dangling: removes the images no tag keeps and no other image is
# built on (again, until none is left: removing one can leave its parent so).
prune_dangling() {
    local i removed
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
        removed=$(bh rmi --prune 2>/dev/null | grep -c . || true)
        [ "$removed" -gt 0 ] || return 0
    done
}

# drop_final_cache TAG: forgets the previous build's final stage, so that it
# is built again (a few seconds: one COPY) and carries this build's
# timestamp. buildah's layer cache does not look at --timestamp: a final
# stage taken from the cache would keep the time of the commit it was first
# built at, and the image would depend on what the cache held. The builder
# stage stays cached (kept by the tag build.sh puts on it); its files get
# the timestamp when the final stage copies them.
drop_final_cache() {
    bh rmi "$1" >/dev/null 2>&1 || true
    prune_dangling
}
