#!/usr/bin/env bash
# make image-repro: is the image reproducible? Builds the Dockerfile a second
# time, in an empty buildah store of its own (nothing cached: the builder's
# static build runs again from the sources), from the same tree, base and
# timestamp as `make image`, and compares the two archives: the manifest
# digest, the config digest, and each layer's digests (compressed, and the
# rootfs digest of the uncompressed layer). Same: exit 0. Different: exit 1,
# naming each digest that differs and, for a layer, each file that differs
# and how (content, mode, owner, time, order); the second archive is kept in
# build/image/repro/ to look at.
#
# What it cannot prove: the builder installs Debian's packages and fetches
# Debian's sources by name, so a build after the mirror moved (a security
# update of OpenSSL, tzdata, ca-certificates...) gives another image from
# the same commit, by design (docs/image.md).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/image/lib.sh
. "$REPO/scripts/image/lib.sh"

VERSION=${SAUVE_VERSION:-0.1.0}
ARCH=$(go_arch)
FIRST=$REPO/build/image/sauve-$VERSION-$ARCH.oci.tar
[ -f "$FIRST" ] || img_die "no $FIRST: run make image first"
T0=$(now_s)
img_require

# The base the first build used (its store's record), so that both builds
# start from the same debian:bookworm.
store_setup
first_base=$(cut -d' ' -f1 "$STORE/sauve-base" 2>/dev/null || true)

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/sauve-image-repro.XXXXXX")
cleanup() {
    set +e
    bh rm --all >/dev/null 2>&1
    bh rmi --all --force >/dev/null 2>&1
    # Never delete through a mount.
    awk -v w="$WORK" 'index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r | xargs -r umount -l
    rm -rf --one-file-system "$WORK" "$RUNROOT"
}
store_setup "$WORK/storage"
trap cleanup EXIT
img_say "second build in an empty $DRIVER store, $STORE"
import_base "$REPO"
second_base=$(cut -d' ' -f1 "$STORE/sauve-base")
[ -z "$first_base" ] || [ "$first_base" = "$second_base" ] ||
    img_die "the base root changed since make image ($first_base, now $second_base): run make image again first"

EPOCH=$(source_date_epoch "$REPO")
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "the tree")
t=$(now_s)
# --layers as make image builds: a build without it commits each stage as
# one layer, another image (nothing is cached in an empty store anyway).
build_image "$REPO" "$EPOCH" "$IMAGE_NAME-repro:$VERSION" --layers
SECOND=$WORK/sauve-$VERSION-$ARCH.oci.tar
bh push -q --format oci --remove-signatures "$IMAGE_NAME-repro:$VERSION" "oci-archive:$SECOND:sauve:$VERSION"
img_say "second build: $(($(now_s) - t)) s"

if python3 "$REPO/scripts/image/oci.py" compare "$FIRST" "$SECOND"; then
    rm -rf "$REPO/build/image/repro"
    img_say "reproducible: two builds of $COMMIT give the same image ($(($(now_s) - T0)) s)"
else
    mkdir -p "$REPO/build/image/repro"
    mv "$SECOND" "$REPO/build/image/repro/"
    img_die "NOT reproducible: the digests above differ; the second image is build/image/repro/$(basename "$SECOND")"
fi
