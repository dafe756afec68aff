#!/usr/bin/env bash
# Installs, from Debian's packages only, whatever a fresh Debian 12 machine
# lacks to build and test sauve. Installs nothing when all is present.
#
#   scripts/install-deps.sh build   to build sauve and run `make demo`
#   scripts/install-deps.sh test    everything `make test` needs (build included)
#
# Packages are named, never pinned to a version: a mirror keeps only the
# newest of each, and whatever it has is what a new machine gets.
set -euo pipefail

group=${1:-test}

build=(
    build-essential pkg-config ca-certificates
    libpq-dev libzstd-dev libyaml-dev libjansson-dev libssl-dev libcurl4-openssl-dev libexpat1-dev
    libarchive-dev
    # make demo: a throwaway PostgreSQL 15 (runuser is in util-linux, which
    # every Debian has), zstd to read what sauve wrote, python3 for a free port.
    postgresql-15 postgresql-client-15 zstd python3
)

tests=(
    clang-format libcmocka-dev
    # the age vectors are partly zlib-compressed; Debian's age is the
    # independent client of the encryption tests
    zlib1g-dev age
    # make fuzz: clang, and its runtimes (libFuzzer, ASan, UBSan), which it
    # only recommends
    clang libclang-rt-dev
    python3-pytest
    time procps
    # Redis tests: a real redis-server 7 and its independent clients
    # (redis-cli, redis-check-rdb); openssl makes their throwaway CA
    redis-server redis-tools openssl
    # files.xattrs tests: POSIX ACLs set and read by Debian's own tools
    acl
    # S3 tests: a real S3 server (Ceph RADOS Gateway: one monitor, one memstore
    # OSD; monmaptool is in ceph-base, ceph/ceph-authtool/radosgw-admin in
    # ceph-common) and independent clients (boto3 under /usr/bin/python3,
    # awscli v2 as /usr/bin/aws).
    ceph-base ceph-common ceph-mon ceph-osd radosgw
    python3-boto3 awscli
    # Deploy tests (make test-deploy): Helm's template language rebuilt from
    # Go's text/template, sprig and sigs.k8s.io/yaml (GOPATH mode, offline);
    # values.schema.json checked with jsonschema. kubectl and helm come from
    # npm (scripts/install-k8s-tools.sh).
    golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev
    python3-jsonschema python3-yaml
    # make test-fetch: a signed Debian mirror made on loopback (dpkg-dev is
    # in build-essential).
    gnupg
    # The fresh-root check (make fresh-root) builds a Debian 12 root from nothing.
    debootstrap
    # make pg-server: PostgreSQL 18 built from Debian's source for the tests
    # (its parsers are generated since 17; OpenSSL's headers are in build).
    bison flex
    # make image / test-image: buildah builds the Dockerfile and runs the image
    # (as root, chroot isolation: no container runtime or daemon).
    buildah
    # make test-arm64: qemu-user runs the aarch64 static build (cross-compiled
    # by scripts/static/build.sh, which installs its cross gcc itself).
    qemu-user-static
)

case "$group" in
    build) packages=("${build[@]}") ;;
    test)
        packages=("${build[@]}" "${tests[@]}")
        # The offline manifest validators are npm packages (tests/deploy):
        # Debian's node and npm, unless a node with its npm is already there (a
        # nodesource nodejs conflicts with Debian's npm package).
        if ! command -v npm >/dev/null 2>&1; then
            packages+=(nodejs npm)
        fi
        ;;
    *)
        echo "usage: $0 build|test" >&2
        exit 64
        ;;
esac

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "installing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
