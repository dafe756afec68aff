#!/usr/bin/env bash
# Builds a fully static sauve with musl, and static PostgreSQL client tools
# (pg_dump, pg_restore, pg_dumpall, psql) for each supported major.
#
# Every library comes from Debian's source packages (apt-get source, with
# Debian's patches applied by dpkg-source) and is built as a static archive
# into a cache, build/static/prefix; what is already built is skipped, so a
# second run only relinks sauve. The same script runs in the Dockerfile's
# builder stage.
#
#   scripts/static/build.sh              everything (what `make static` runs)
#   scripts/static/build.sh --deps-only  the libraries and PostgreSQL tools, not
#                                        sauve (a cacheable Docker layer)
#   scripts/static/build.sh --unit-tests  also cmocka and the C unit tests, linked
#                                        like sauve, into OUT/musl/tests (to run
#                                        another architecture's under qemu)
#
# Environment:
#   SAUVE_STATIC_ARCH        target architecture, x86_64 or aarch64 (arm64)
#                            (default: the host's). Another architecture than
#                            the host's is cross-compiled: Debian's cross gcc
#                            (gcc-ARCH-linux-gnu) with a musl built from
#                            Debian's musl source package by that compiler
#   SAUVE_STATIC_DIR         output directory (default build/static for the
#                            host's architecture, build/static-ARCH for another)
#   SAUVE_STATIC_PG_MAJORS   PostgreSQL majors of the client tools (default "15 18")
#   SAUVE_STATIC_JOBS        parallel jobs (default: number of CPUs)
#
# Results:
#   build/static/sauve                      stripped static executable
#   build/static/musl/sauve                 the same, with debug information
#   build/static/pg/<major>/bin/{pg_dump,pg_restore,pg_dumpall,psql}
#   build/static/prefix/.stamps/*, build/static/pg/<major>/bin/.source
#                                           the Debian source package, exact version
#                                           and suite each part was built from
#
# Sources come from scripts/static/fetch-source.sh: by package name and a list
# of suites, the newest version that actually downloads (a mirror can list a
# version it no longer serves), with apt's own configuration and state under
# build/static/apt: the host's sources and package lists are neither read nor
# changed. SAUVE_STATIC_MIRROR and SAUVE_CACHE are passed on to it.
#
# Why 15 and 18: pg_dump N dumps every server from 9.2 to N, so 18 serves 16,
# 17 and 18 servers; 15 serves 15 and older with the same major. 17 is not
# built by default: on 2026-12-05 no suite's postgresql-17 source downloads
# (trixie lists 17.12-0+deb13u1, whose files the mirror answers 404 for), and
# 18 covers its servers. SAUVE_STATIC_PG_MAJORS="15 17 18" builds it when a
# source downloads again.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HOST_ARCH=$(uname -m)
ARCH=${SAUVE_STATIC_ARCH:-$HOST_ARCH}
case "$ARCH" in
    arm64) ARCH=aarch64 ;;
    amd64) ARCH=x86_64 ;;
esac
# CROSS: the GNU triplet of the cross toolchain, empty for a native build.
CROSS=
if [ "$ARCH" != "$HOST_ARCH" ]; then
    case "$ARCH" in
        x86_64 | aarch64) CROSS=$ARCH-linux-gnu ;;
        *) printf 'build.sh: SAUVE_STATIC_ARCH=%s: cross builds are for x86_64 or aarch64\n' "$ARCH" >&2; exit 1 ;;
    esac
fi
if [ -z "$CROSS" ]; then OUT=${SAUVE_STATIC_DIR:-$ROOT/build/static}; else OUT=${SAUVE_STATIC_DIR:-$ROOT/build/static-$ARCH}; fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PREFIX=$OUT/prefix
SRC=$OUT/src
STAMPS=$PREFIX/.stamps
PG_MAJORS=${SAUVE_STATIC_PG_MAJORS:-"15 18"}
JOBS=${SAUVE_STATIC_JOBS:-$(nproc)}
PATCHES=$ROOT/scripts/static/patches

# The PostgreSQL major whose libpq sauve links (bookworm's).
LIBPQ_MAJOR=15

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

deps_only=false unit_tests=false
case "${1:-}" in
    "") ;;
    --deps-only) deps_only=true ;;
    --unit-tests) unit_tests=true ;;
    *) die "usage: $0 [--deps-only | --unit-tests]" ;;
esac

t_start=$(date +%s)

# ---- build tools --------------------------------------------------------------

ensure_tools() {
    local need=(musl-tools musl-dev linux-libc-dev dpkg-dev gcc make cmake perl pkg-config
                patch bison flex xz-utils bzip2 file binutils ca-certificates tzdata debian-archive-keyring)
    # The cross compiler, its binutils, and the target's kernel headers
    # (musl has none); no foreign architecture is added to dpkg.
    if [ -n "$CROSS" ]; then
        local debarch=${ARCH/x86_64/amd64}
        debarch=${debarch/aarch64/arm64}
        need+=("gcc-${CROSS//_/-}" "binutils-${CROSS//_/-}" "linux-libc-dev-$debarch-cross")
    fi
    local missing=() p status
    for p in "${need[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [ "$status" = installed ] || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]}"
    log "installing build tools: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---- sources: by package and suites, the newest version that downloads ---------

# Where each source comes from, in the order fetch-source.sh trusts them: a
# release's security suite, the release, its updates, then newer releases.
# The libraries are bookworm's (with its security fixes). A PostgreSQL major
# comes from whichever suite carries it: 15 from bookworm, 17 from trixie,
# 18 from forky and sid today; a major that moves between suites needs no
# change here.
LIB_SUITES="bookworm-security bookworm bookworm-updates"
PG_SUITES="bookworm-security bookworm bookworm-updates trixie-security trixie trixie-updates forky sid"

# fetch PKG SUITES: the source package, unpacked with Debian's patches, into
# $SRC/PKG/tree (reused when present). Prints the tree's path.
fetch() {
    local pkg=$1 suites=$2 dir=$SRC/$1
    if [ ! -f "$dir/tree/.version" ]; then
        # shellcheck disable=SC2086 # the suites are words
        SAUVE_STATIC_APT_DIR=$OUT/apt "$ROOT/scripts/static/fetch-source.sh" "$pkg" "$dir/tree" $suites ||
            die "cannot fetch the source of $pkg"
    fi
    echo "$dir/tree"
}

done_already() { [ -f "$STAMPS/$1" ]; }

# source_date TREE: the date of the source package's newest changelog entry
# becomes SOURCE_DATE_EPOCH, as dpkg-buildpackage sets it, so that what a
# build embeds (OpenSSL's "built on" line, which libcurl's version string
# links into sauve) depends on the source, not on the day of the build:
# two builds of the image give the same bytes (docs/image.md).
source_date() {
    SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$1/debian/changelog" -STimestamp) ||
        die "no changelog date in $1/debian/changelog"
    export SOURCE_DATE_EPOCH
}
# mark_done NAME TREE WHAT: records which source package, version and suite
# NAME was built from (rootfs.sh writes them into the image).
#
# Each part's licence notice, Debian's copyright file of its source package,
# goes beside it into the prefix (share/doc/PACKAGE/copyright): the image
# ships them (rootfs.sh), and the Dockerfile's cached layer keeps no source
# tree to take them from later.
mark_done() {
    mkdir -p "$STAMPS"
    install -D -m 644 "$2/debian/copyright" "$PREFIX/share/doc/$(basename "$(dirname "$2")")/copyright"
    printf '%s %s %s %s\n' "$(basename "$(dirname "$2")")" "$(cat "$2/.version")" "$(cat "$2/.suite")" "$3" >"$STAMPS/$1"
    log "$1: $(cat "$STAMPS/$1")"
}

# ---- a cache of the libraries and tools, across clean checkouts ---------------

# What the functions below build (the libraries, musl for a cross build,
# the PostgreSQL tools: 9 minutes for the host and 15 for aarch64 on 2
# cores) changes only with this script, its patches and what Debian serves.
# A build in an empty output directory (a clean checkout: CI) starts from
# the copy kept under SAUVE_CACHE/static by the last complete build of the
# same script files, architecture and majors, when that copy is less than a
# week old, so that Debian's security fixes reach it within a week. Paths in
# its text files (pkg-config files, musl-gcc's specs) are rewritten for the
# new directory. SAUVE_STATIC_CACHE=no neither reads nor writes it (the
# Dockerfile's builder, which has its own layer cache).
CACHE_DIR=${SAUVE_CACHE:-${HOME:-/root}/.cache/sauve}/static
CACHE_ENTRY=$CACHE_DIR/$ARCH-$({ cat "$ROOT/scripts/static/build.sh" "$ROOT/scripts/static/fetch-source.sh" \
    "$PATCHES"/*; echo "$ARCH $PG_MAJORS"; } | sha256sum | cut -c1-16)
CACHE_PARTS="prefix pg libc"

cache_fresh() { [ -f "$CACHE_ENTRY/.out" ] && [ -z "$(find "$CACHE_ENTRY/.out" -mtime +6)" ]; }

cache_restore() {
    [ "${SAUVE_STATIC_CACHE:-yes}" != no ] && [ ! -d "$STAMPS" ] || return 0
    if ! cache_fresh; then
        [ -f "$CACHE_ENTRY/.out" ] && log "the cached build $CACHE_ENTRY is over a week old: building anew"
        return 0
    fi
    local old d
    old=$(cat "$CACHE_ENTRY/.out")
    for d in $CACHE_PARTS; do
        if [ -d "$CACHE_ENTRY/$d" ]; then cp -a "$CACHE_ENTRY/$d" "$OUT/"; fi
    done
    # text files only (-I): an archive's strings keep the old path, unused
    grep -rlIZ -F "$old" "$OUT/prefix" ${CROSS:+"$OUT/libc"} 2>/dev/null | xargs -0r sed -i "s|$old|$OUT|g"
    log "libraries and PostgreSQL tools taken from $CACHE_ENTRY (built $(date -r "$CACHE_ENTRY/.out" '+%F %R'))"
}

cache_store() {
    [ "${SAUVE_STATIC_CACHE:-yes}" != no ] || return 0
    # kept as long as it is fresh and holds every part this build made
    if cache_fresh && [ "$(cd "$CACHE_ENTRY" && ls -A prefix prefix/.stamps 2>/dev/null)" = \
        "$(cd "$OUT" && ls -A prefix prefix/.stamps)" ]; then return 0; fi
    local tmp=$CACHE_ENTRY.tmp.$$ d
    rm -rf "$tmp" && mkdir -p "$tmp"
    for d in $CACHE_PARTS; do
        if [ -d "$OUT/$d" ]; then cp -a "$OUT/$d" "$tmp/"; fi
    done
    printf '%s\n' "$OUT" >"$tmp/.out"
    rm -rf "$CACHE_ENTRY" && mv "$tmp" "$CACHE_ENTRY"
    # the entries of earlier script files, for this architecture
    find "$CACHE_DIR" -mindepth 1 -maxdepth 1 -name "$ARCH-*" ! -name "$(basename "$CACHE_ENTRY")" -exec rm -rf {} +
    log "libraries and PostgreSQL tools kept in $CACHE_ENTRY"
}

# ---- toolchain ----------------------------------------------------------------

# build_musl: for a cross build, musl itself, from Debian's musl source
# package (the version Debian's musl-tools gives the host build), compiled by
# the cross gcc into OUT/libc, with its musl-gcc wrapper (gcc plus a specs
# file that swaps glibc for musl). Debian's musl-tools is for the host only.
build_musl() {
    MUSL_GCC=$OUT/libc/bin/musl-gcc
    done_already musl && return 0
    local t; t=$(fetch musl "$LIB_SUITES")
    source_date "$t"
    (cd "$t" && ./configure --target="$CROSS" CROSS_COMPILE="$CROSS-" --prefix="$OUT/libc" \
        --disable-shared --enable-wrapper=gcc CFLAGS="-O2" && make -j"$JOBS" && make install) >"$t/../build.log" 2>&1 ||
        { tail -30 "$t/../build.log" >&2; die "musl failed"; }
    mark_done musl "$t" "musl libc (linked into every executable)"
}

setup_toolchain() {
    local multiarch kinc kasm
    case "$ARCH" in
        x86_64) OPENSSL_TARGET=linux-x86_64 ;;
        aarch64) OPENSSL_TARGET=linux-aarch64 ;;
        *) OPENSSL_TARGET=linux-generic64 ;;
    esac
    if [ -z "$CROSS" ]; then
        multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
        kinc=/usr/include kasm=/usr/include/$multiarch/asm
        MUSL_GCC=musl-gcc AR=ar RANLIB=ranlib STRIP=strip
    else
        # from linux-libc-dev-ARCH-cross
        kinc=/usr/$CROSS/include kasm=/usr/$CROSS/include/asm
        AR=$CROSS-ar RANLIB=$CROSS-ranlib STRIP=$CROSS-strip
        build_musl
    fi
    # musl ships no kernel headers: expose Debian's (linux-libc-dev) after
    # musl's own, and only those three directories.
    local kh=$OUT/kheaders
    mkdir -p "$kh"
    ln -sfn "$kinc/linux" "$kh/linux"
    ln -sfn "$kinc/asm-generic" "$kh/asm-generic"
    ln -sfn "$kasm" "$kh/asm"
    mkdir -p "$OUT/bin"
    cat >"$OUT/bin/musl-cc" <<EOF
#!/bin/sh
exec $MUSL_GCC -idirafter $kh "\$@"
EOF
    chmod 755 "$OUT/bin/musl-cc"
    CC=$OUT/bin/musl-cc
    export CC AR RANLIB STRIP
    # musl is linked into every executable: its notice ships with them (a
    # cross build's musl recorded its own source's in build_musl).
    [ -n "$CROSS" ] || install -D -m 644 /usr/share/doc/musl/copyright "$PREFIX/share/doc/musl/copyright"
    # autoconf's --host and CMake's cross-compiling settings (empty when native).
    HOST_ARGS=() CMAKE_CROSS=()
    if [ -n "$CROSS" ]; then
        HOST_ARGS=(--host="$CROSS")
        CMAKE_CROSS=(-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR="$ARCH" -DCMAKE_AR="$(command -v "$AR")"
                     -DCMAKE_RANLIB="$(command -v "$RANLIB")" -DCMAKE_FIND_ROOT_PATH="$PREFIX"
                     -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY
                     -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY)
    fi
    export CFLAGS="-O2 -fno-semantic-interposition"
    export PKG_CONFIG_LIBDIR=$PREFIX/lib/pkgconfig
    unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR CPPFLAGS LDFLAGS LIBS
    mkdir -p "$PREFIX/lib/pkgconfig" "$PREFIX/include"
}

# ---- libraries ----------------------------------------------------------------

build_zlib() {
    done_already zlib && return 0
    local t; t=$(fetch zlib "$LIB_SUITES")
    source_date "$t"
    (cd "$t" && ./configure --static --prefix="$PREFIX" && make -j"$JOBS" libz.a && make install) >"$t/../build.log" 2>&1 ||
        { tail -30 "$t/../build.log" >&2; die "zlib failed"; }
    mark_done zlib "$t" "libz"
}

build_zstd() {
    done_already zstd && return 0
    local t; t=$(fetch libzstd "$LIB_SUITES")
    source_date "$t"
    # libzstd.a is single-threaded by default; sauve compresses with workers.
    (cd "$t/lib" && make -j"$JOBS" libzstd.a-mt CC="$CC" AR="$AR") >"$t/../build.log" 2>&1 ||
        { tail -30 "$t/../build.log" >&2; die "zstd failed"; }
    install -m 644 "$t/lib/libzstd.a" "$PREFIX/lib/"
    install -m 644 "$t/lib/zstd.h" "$t/lib/zstd_errors.h" "$t/lib/zdict.h" "$PREFIX/include/"
    local v; v=$(sed -E 's/[+-].*//' "$t/.version")
    write_pc libzstd "$v" "zstd library" "-lzstd" "-pthread" ""
    mark_done zstd "$t" "libzstd"
}

# write_pc NAME VERSION DESCRIPTION LIBS LIBS_PRIVATE REQUIRES_PRIVATE
write_pc() {
    cat >"$PREFIX/lib/pkgconfig/$1.pc" <<EOF
prefix=$PREFIX
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: $1
Description: $3
Version: $2
Requires.private: $6
Libs: -L\${libdir} $4
Libs.private: $5
Cflags: -I\${includedir}
EOF
}

build_yaml() {
    done_already yaml && return 0
    local t; t=$(fetch libyaml "$LIB_SUITES")
    source_date "$t"
    # Debian's libyaml source has no configure: compile the library directly.
    local v; v=$(sed -E 's/-.*//' "$t/.version")
    local maj min pat
    IFS=. read -r maj min pat <<<"$v"
    rm -rf "$t/_obj" && mkdir -p "$t/_obj"
    local f
    for f in "$t"/src/*.c; do
        $CC $CFLAGS -I"$t/include" -I"$t/src" -DYAML_VERSION_MAJOR="$maj" -DYAML_VERSION_MINOR="$min" \
            -DYAML_VERSION_PATCH="$pat" -DYAML_VERSION_STRING="\"$v\"" -c "$f" -o "$t/_obj/$(basename "$f" .c).o"
    done
    rm -f "$PREFIX/lib/libyaml.a"
    "$AR" rcs "$PREFIX/lib/libyaml.a" "$t"/_obj/*.o
    install -m 644 "$t/include/yaml.h" "$PREFIX/include/"
    write_pc yaml-0.1 "$v" "Library to parse and emit YAML" "-lyaml" "" ""
    mark_done yaml "$t" "libyaml"
}

cmake_static() { # SRC_DIR BUILD_DIR ARGS...
    local s=$1 b=$2; shift 2
    cmake -S "$s" -B "$b" -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib -DBUILD_SHARED_LIBS=OFF ${CMAKE_CROSS[@]+"${CMAKE_CROSS[@]}"} "$@" &&
        cmake --build "$b" -j"$JOBS" && cmake --install "$b"
}

build_jansson() {
    done_already jansson && return 0
    local t; t=$(fetch jansson "$LIB_SUITES")
    source_date "$t"
    cmake_static "$t" "$t/_build" -DJANSSON_BUILD_SHARED_LIBS=OFF -DJANSSON_BUILD_DOCS=OFF \
        -DJANSSON_WITHOUT_TESTS=ON -DJANSSON_EXAMPLES=OFF >"$t/../build.log" 2>&1 ||
        { tail -30 "$t/../build.log" >&2; die "jansson failed"; }
    mark_done jansson "$t" "libjansson"
}

build_expat() {
    done_already expat && return 0
    local t; t=$(fetch expat "$LIB_SUITES")
    source_date "$t"
    # Debian's security backports test "#if XML_DTD == 1", as the autotools
    # configuration defines it; CMake's template defines it empty.
    sed -i -E 's/^#cmakedefine (XML_DTD|XML_NS)$/#cmakedefine \1 1/' "$t/expat/expat_config.h.cmake"
    cmake_static "$t/expat" "$t/_build" -DEXPAT_SHARED_LIBS=OFF -DEXPAT_BUILD_TOOLS=OFF \
        -DEXPAT_BUILD_EXAMPLES=OFF -DEXPAT_BUILD_TESTS=OFF -DEXPAT_BUILD_DOCS=OFF \
        -DEXPAT_BUILD_FUZZERS=OFF -DEXPAT_BUILD_PKGCONFIG=ON >"$t/../build.log" 2>&1 ||
        { tail -30 "$t/../build.log" >&2; die "expat failed"; }
    mark_done expat "$t" "libexpat"
}

build_openssl() {
    done_already openssl && return 0
    local t; t=$(fetch openssl "$LIB_SUITES")
    source_date "$t"
    # The CA bundle path sauve's image has is /etc/ssl/certs/ca-certificates.crt
    # (given to libcurl); openssldir only sets where openssl.cnf would be.
    (cd "$t" && ./Configure "$OPENSSL_TARGET" no-shared no-tests no-afalgeng no-module \
        --prefix="$PREFIX" --libdir=lib --openssldir=/etc/ssl CC="$CC" &&
        make -j"$JOBS" build_libs && make install_dev) >"$t/../build.log" 2>&1 ||
        { tail -30 "$t/../build.log" >&2; die "openssl failed"; }
    mark_done openssl "$t" "libssl libcrypto"
}

build_curl() {
    done_already curl && return 0
    local t; t=$(fetch curl "$LIB_SUITES")
    source_date "$t"
    # HTTP(S) only (S3, webhooks, Pushgateway), OpenSSL, no other optional library.
    (cd "$t" && ./configure ${HOST_ARGS[@]+"${HOST_ARGS[@]}"} --prefix="$PREFIX" --disable-shared --enable-static \
        --with-openssl="$PREFIX" --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --without-ca-path \
        --enable-threaded-resolver --disable-ldap --disable-ldaps --disable-dict --disable-gopher \
        --disable-imap --disable-pop3 --disable-smtp --disable-mqtt --disable-rtsp --disable-smb \
        --disable-telnet --disable-tftp --disable-ftp --disable-file --disable-manual \
        --without-libpsl --without-nghttp2 --without-nghttp3 --without-ngtcp2 --without-libidn2 \
        --without-brotli --without-zstd --without-zlib --without-librtmp --without-libssh2 \
        --without-libgsasl --without-gssapi &&
        make -j"$JOBS" -C lib && make -C lib install && make -C include install &&
        make install-pkgconfigDATA) >"$t/../build.log" 2>&1 ||
        { tail -30 "$t/../build.log" >&2; die "curl failed"; }
    mark_done curl "$t" "libcurl"
}

build_libarchive() {
    done_already libarchive && return 0
    local t; t=$(fetch libarchive "$LIB_SUITES")
    source_date "$t"
    # The tar reader and writer only: sauve compresses and encrypts with its
    # own stages, so no compression, crypto, XML or ACL library is linked in
    # (each ENABLE_* left on would be found on the host and leak in). Only
    # the static archive is built: the shared one is of no use here.
    local b=$t/_build
    (cmake -S "$t" -B "$b" -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=Release ${CMAKE_CROSS[@]+"${CMAKE_CROSS[@]}"} \
        -DENABLE_ZLIB=OFF -DENABLE_BZip2=OFF -DENABLE_LZMA=OFF -DENABLE_LZ4=OFF -DENABLE_ZSTD=OFF \
        -DENABLE_LIBB2=OFF -DENABLE_OPENSSL=OFF -DENABLE_MBEDTLS=OFF -DENABLE_NETTLE=OFF -DENABLE_CNG=OFF \
        -DENABLE_LIBXML2=OFF -DENABLE_EXPAT=OFF -DENABLE_PCREPOSIX=OFF -DENABLE_PCRE2POSIX=OFF \
        -DENABLE_LibGCC=OFF -DENABLE_ACL=OFF -DENABLE_XATTR=OFF -DENABLE_ICONV=OFF -DENABLE_WERROR=OFF \
        -DENABLE_TAR=OFF -DENABLE_CPIO=OFF -DENABLE_CAT=OFF -DENABLE_UNZIP=OFF -DENABLE_TEST=OFF \
        -DENABLE_INSTALL=OFF &&
        cmake --build "$b" -j"$JOBS" --target archive_static) >"$t/../build.log" 2>&1 ||
        { tail -30 "$t/../build.log" >&2; die "libarchive failed"; }
    install -m 644 "$b/libarchive/libarchive.a" "$PREFIX/lib/"
    install -m 644 "$t/libarchive/archive.h" "$t/libarchive/archive_entry.h" "$PREFIX/include/"
    local v; v=$(sed -E 's/-.*//' "$t/.version")
    write_pc libarchive "$v" "library that can create and read several streaming archive formats" "-larchive" "" ""
    mark_done libarchive "$t" "libarchive (tar only)"
}

# ---- PostgreSQL: libpq for sauve, and the client tools ----------------------

pg_configure() { # MAJOR -> prints the configured tree
    local major=$1 t
    t=$(fetch "postgresql-$major" "$PG_SUITES")
    local patch=$PATCHES/pg$major-find-other-exec-no-shell.patch
    [ -f "$patch" ] || die "PostgreSQL $major: no $patch (pg_dumpall runs pg_dump through /bin/sh, which the image lacks; port the patch of the nearest major)"
    if [ ! -f "$t/.configured" ]; then
        (cd "$t" && patch -p1 --forward <"$patch" &&
            ./configure ${HOST_ARGS[@]+"${HOST_ARGS[@]}"} --prefix="/usr/lib/postgresql/$major" --sysconfdir=/etc/postgresql-common \
                --without-readline --without-icu --without-gssapi --without-ldap --without-pam \
                --without-libxml --without-libxslt --without-lz4 --without-zstd --without-systemd \
                --without-selinux --without-llvm --without-perl --without-python --without-tcl \
                --disable-nls --disable-rpath --with-zlib --with-ssl=openssl \
                CC="$CC" CFLAGS="$CFLAGS" CPPFLAGS="-I$PREFIX/include" LDFLAGS="-static -L$PREFIX/lib" \
                LIBS="-pthread") >"$t/../build.log" 2>&1 ||
            { tail -40 "$t/../build.log" >&2; die "postgresql-$major: configure failed"; }
        touch "$t/.configured"
    fi
    echo "$t"
}

pg_make_libs() { # TREE
    local t=$1
    # The shared libpq cannot be linked against a static OpenSSL (its
    # exit() check fails): build the static archive only.
    # The generated headers (utils/errcodes.h, ...) first: src/port asks for
    # them only as a parallel prerequisite, and a -j build can race past it.
    (make -C "$t/src/backend" generated-headers &&
        make -C "$t/src/port" -j"$JOBS" all && make -C "$t/src/common" -j"$JOBS" all &&
        make -C "$t/src/interfaces/libpq" -j"$JOBS" all-static-lib &&
        make -C "$t/src/fe_utils" -j"$JOBS" all) >>"$t/../build.log" 2>&1 ||
        { tail -40 "$t/../build.log" >&2; die "$(basename "$(dirname "$t")"): libraries failed"; }
}

build_libpq() {
    done_already libpq && return 0
    local t; t=$(pg_configure "$LIBPQ_MAJOR")
    source_date "$t"
    pg_make_libs "$t"
    install -m 644 "$t/src/interfaces/libpq/libpq.a" "$PREFIX/lib/"
    # libpq's own helpers (as libpq.so links them; Debian's patch would
    # install them under /usr/lib/postgresql): copied by hand.
    install -m 644 "$t/src/common/libpgcommon_shlib.a" "$t/src/port/libpgport_shlib.a" "$PREFIX/lib/"
    install -m 644 "$t/src/interfaces/libpq/libpq-fe.h" "$t/src/interfaces/libpq/libpq-events.h" \
        "$t/src/include/postgres_ext.h" "$t/src/include/pg_config_ext.h" "$PREFIX/include/"
    local v; v=$(sed -E 's/-.*//' "$t/.version")
    write_pc libpq "$v" "PostgreSQL client library" "-lpq -lpgcommon_shlib -lpgport_shlib" "" "libssl libcrypto"
    mark_done libpq "$t" "libpq (linked into sauve)"
}

build_pg_tools() { # MAJOR
    local major=$1 dest=$OUT/pg/$1/bin
    [ -f "$dest/.version" ] && return 0
    local t; t=$(pg_configure "$major")
    source_date "$t"
    pg_make_libs "$t"
    # The programs link libpq.a, so after it come the helpers libpq.so would
    # carry (the *_shlib archives: libpq calls pg_encoding_to_char, which
    # libpgcommon.a names *_private), then the programs' own pgcommon and
    # pgport. The submake-* prerequisites would build the shared libpq:
    # their work is done above.
    local d
    for d in pg_dump psql; do
        make -C "$t/src/bin/$d" -j"$JOBS" -o submake-libpq -o submake-libpgport -o submake-libpgfeutils \
            LIBS="-L$t/src/common -L$t/src/port -lpgcommon_shlib -lpgport_shlib -lpgcommon -lpgport -lssl -lcrypto -lz -lm -pthread" all \
            >>"$t/../build.log" 2>&1 || { tail -40 "$t/../build.log" >&2; die "postgresql-$major: $d failed"; }
    done
    rm -rf "$dest" && mkdir -p "$dest"
    local p
    for p in pg_dump pg_restore pg_dumpall; do install -m 755 -s --strip-program="$STRIP" "$t/src/bin/pg_dump/$p" "$dest/"; done
    install -m 755 -s --strip-program="$STRIP" "$t/src/bin/psql/psql" "$dest/"
    cp "$t/.version" "$dest/.version"
    install -m 644 "$t/debian/copyright" "$dest/.copyright"
    printf '%s %s %s %s\n' "postgresql-$major" "$(cat "$t/.version")" "$(cat "$t/.suite")" \
        "pg_dump pg_restore pg_dumpall psql" >"$dest/.source"
    log "PostgreSQL $major client tools $(cat "$dest/.source") built"
}

# ---- sauve ----------------------------------------------------------------------

build_sauve() {
    log "linking sauve"
    # The Makefile's own rules and flags (-Wall -Wextra -Werror ...) and source
    # list; only the compiler, the libraries (static, from the prefix) and the
    # output directory differ ($(PKGS) is expanded by the Makefile).
    # -isystem makes the libraries' headers system headers, as Debian's are
    # in the glibc build (curl's type-checking macros would warn otherwise).
    make -C "$ROOT" --no-print-directory -j"$JOBS" BUILD="$OUT/musl" CC="$CC" LDFLAGS=-static \
        EXTRA_CFLAGS="-isystem $PREFIX/include" \
        'PKG_LIBS=$(call pkg_config,--static --libs)' "$OUT/musl/sauve"
    "$STRIP" -o "$OUT/sauve.tmp" "$OUT/musl/sauve"
    mv "$OUT/sauve.tmp" "$OUT/sauve"
}

# ---- the unit tests, for running another architecture's under qemu ----------

# cmocka goes into the prefix but is recorded apart from the stamps: it is
# never linked into what the image holds, so sources.json does not name it.
build_cmocka() {
    [ -f "$PREFIX/.cmocka" ] && return 0
    local t; t=$(fetch cmocka "$LIB_SUITES")
    source_date "$t"
    # cmocka.h declares uintptr_t itself unless told the C library has it
    # (musl's stdint.h does: cmocka 1.1.5 knows glibc's and Windows' only).
    rm -rf "$t/_build"
    CFLAGS="$CFLAGS -D_UINTPTR_T_DEFINED" cmake_static "$t" "$t/_build" -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF \
        -DPICKY_DEVELOPER=OFF >"$t/../build.log" 2>&1 ||
        { tail -30 "$t/../build.log" >&2; die "cmocka failed"; }
    # Where a build gives the static archive another name (libcmocka-static.a).
    [ -f "$PREFIX/lib/libcmocka.a" ] || cp "$PREFIX/lib/libcmocka-static.a" "$PREFIX/lib/libcmocka.a"
    rm -f "$PREFIX"/lib/libcmocka.so*
    printf 'cmocka %s %s\n' "$(cat "$t/.version")" "$(cat "$t/.suite")" >"$PREFIX/.cmocka"
}

# The Makefile's unit tests, compiled and linked as sauve is (static, musl,
# the prefix's libraries): OUT/musl/tests/test_*.
build_unit_tests() {
    build_cmocka
    log "linking the unit tests"
    local tests=() f
    for f in "$ROOT"/runner/tests/unit/test_*.c; do tests+=("$OUT/musl/tests/$(basename "$f" .c)"); done
    make -C "$ROOT" --no-print-directory -j"$JOBS" BUILD="$OUT/musl" CC="$CC" AR="$AR" LDFLAGS=-static \
        EXTRA_CFLAGS="-isystem $PREFIX/include -D_UINTPTR_T_DEFINED" \
        'PKG_LIBS=$(call pkg_config,--static --libs)' "${tests[@]}"
    check_static "${tests[@]}"
}

# ---- checks ---------------------------------------------------------------------

# check_static FILE...: each executable is static, without INTERP, and for
# the target architecture.
check_static() {
    local f machine
    case "$ARCH" in
        x86_64) machine='x86-64' ;;
        aarch64) machine='ARM aarch64' ;;
        *) machine='ELF' ;;
    esac
    for f in "$@"; do
        file -L "$f" | grep -q 'statically linked' || die "$f is not statically linked: $(file -L "$f")"
        file -L "$f" | grep -q "$machine" || die "$f is not for $ARCH: $(file -L "$f")"
        if readelf -lW "$f" | grep -q INTERP; then die "$f has an INTERP segment"; fi
    done
}

# timed STEP ARGS...: runs it, and says how long it took when it did something.
timed() {
    local t0=$SECONDS
    "$@"
    [ $((SECONDS - t0)) -eq 0 ] || log "$ARCH: $* took $((SECONDS - t0)) s"
}

ensure_tools
cache_restore
timed setup_toolchain
timed build_zlib
timed build_zstd
timed build_yaml
timed build_jansson
timed build_expat
timed build_openssl
timed build_curl
timed build_libarchive
timed build_libpq
for m in $PG_MAJORS; do
    timed build_pg_tools "$m"
done
if $deps_only; then
    cache_store
    log "libraries and PostgreSQL tools done in $(($(date +%s) - t_start)) s"
    exit 0
fi
timed build_sauve
if $unit_tests; then timed build_unit_tests; fi
cache_store

bins=("$OUT/sauve")
for m in $PG_MAJORS; do bins+=("$OUT"/pg/"$m"/bin/*); done
check_static "${bins[@]}"
log "static and without INTERP: ${bins[*]#$OUT/}"
ls -l "${bins[@]}" | awk '{printf "   %9d  %s\n", $5, $NF}' >&2
log "done in $(($(date +%s) - t_start)) s"
