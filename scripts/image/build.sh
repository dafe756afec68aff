#!/usr/bin/env bash
# make image: builds the project's Dockerfile with buildah, as a user's
# `docker build .` would (the same Dockerfile, both stages), and writes the
# image as an OCI archive:
#
#   build/image/sauve-VERSION-ARCH.oci.tar     the image (oci-archive:), reference sauve:VERSION
#   build/image/report.txt, report.json        digests, compressed size, layers
#
# The builder stage's debian:bookworm cannot be pulled here: it is made from
# a debootstrap root (scripts/image/lib.sh, import_base) and the build runs
# with --pull=never. Every timestamp in the image (files, config, history) is
# the commit time of the newest commit that changed what the image is made
# from (lib.sh, source_date_epoch; SOURCE_DATE_EPOCH when set), so that two
# builds of a commit give the same digests (make image-repro checks it).
#
# Cache: buildah's layer cache (--layers) in the project's store (lib.sh):
# the builder's static libraries and PostgreSQL tools (about 8 minutes) are
# built again only when scripts/static/ or the base changes; a change to the
# runner rebuilds sauve and the final stage only. The final stage itself is
# always built again (seconds), so that it carries this build's timestamp
# (lib.sh, drop_final_cache). Images the build no longer needs (the
# previous build's) are removed from the store.
#
# Multi-arch: only the host's architecture is built. When an arm64 build
# exists (issue 12), build each ARCH with --platform linux/ARCH into
# build/image/sauve-VERSION-ARCH.oci.tar as here, then join them with
# `buildah manifest create` / `manifest add` and `manifest push --all
# oci-archive:build/image/sauve-VERSION.oci.tar`: see write_index below.
#
# Environment: SAUVE_VERSION (the Makefile's VERSION), SAUVE_CACHE,
# SAUVE_BUILDAH_ROOT, SAUVE_BUILDAH_DRIVER (lib.sh), SOURCE_DATE_EPOCH.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/image/lib.sh
. "$REPO/scripts/image/lib.sh"

VERSION=${SAUVE_VERSION:-0.1.0}
OUT=$REPO/build/image
T0=$(now_s)

img_require
store_setup
img_say "buildah $(buildah --version | awk '{print $3}'), $DRIVER storage in $STORE"

t=$(now_s)
import_base "$REPO"
t_base=$(($(now_s) - t))

EPOCH=$(source_date_epoch "$REPO")
ARCH=$(go_arch)
TAG=$IMAGE_NAME:$VERSION
img_say "building $TAG for linux/$ARCH, timestamps $(date -u -d "@$EPOCH" +%FT%TZ) ($EPOCH)"
t=$(now_s)
drop_final_cache "$TAG"
build_image "$REPO" "$EPOCH" "$TAG" --layers
t_build=$(($(now_s) - t))

# The archive: written under a temporary name, then renamed.
mkdir -p "$OUT"
ARCHIVE=$OUT/sauve-$VERSION-$ARCH.oci.tar
rm -f "$ARCHIVE.partial"
t=$(now_s)
bh push -q --format oci --remove-signatures "$TAG" "oci-archive:$ARCHIVE.partial:sauve:$VERSION"
mv -f "$ARCHIVE.partial" "$ARCHIVE"
t_push=$(($(now_s) - t))

# write_index: the multi-arch index. One architecture today (see above).
write_index() { :; }
write_index

# The store keeps what the next build can use: the base, this image, and
# the builder stage's layers (the cache), kept by a tag on the builder
# stage's last one (a build of --target builder, all of it from the cache).
# An earlier build's image and builder layers are dangling now: removed.
t=$(now_s)
build_image "$REPO" "$EPOCH" "$IMAGE_NAME-builder:cache" --layers --target builder >"$OUT/builder-tag.log" 2>&1 ||
    { tail -20 "$OUT/builder-tag.log" >&2; img_die "could not tag the builder stage"; }
prune_dangling
img_say "store: $(du -sh "$STORE" 2>/dev/null | cut -f1) in $STORE (kept the cache in $(($(now_s) - t)) s)"

python3 "$REPO/scripts/image/oci.py" report "$ARCHIVE" --json "$OUT/report.json" | tee "$OUT/report.txt"
img_say "make image: $(($(now_s) - T0)) s (base ${t_base} s, build ${t_build} s, archive ${t_push} s): $ARCHIVE"
