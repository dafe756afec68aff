#!/usr/bin/env bash
# Assembles the container image's whole filesystem, build/rootfs, from the
# static build (scripts/static/build.sh) and the host's CA certificates and
# time zone database. What the image holds is exactly this tree:
#
#   /usr/local/bin/sauve
#   /usr/local/share/sauve/sources.json  the Debian source packages (exact version,
#                                        suite) everything here was built from;
#                                        `sauve version` prints it
#   /usr/lib/postgresql/<major>/bin/{pg_dump,pg_restore,pg_dumpall,psql}
#   /etc/ssl/certs/ca-certificates.crt   libcurl's and the image's CA bundle
#   /etc/passwd, /etc/group              uid/gid 65532 "sauve" (libpq looks the
#                                        user up when PGUSER is not given)
#   /usr/share/zoneinfo/                 for TZ names (retention periods)
#   /usr/share/doc/PACKAGE/copyright     the licence notice of each part: every
#                                        source package built, musl, the CA
#                                        bundle and tzdata (Debian's copyright
#                                        files); /usr/share/doc/sauve/LICENSE
#   /tmp                                 empty, world-writable with sticky bit
#
# No shell, no libraries, nothing else.
#
# Environment: SAUVE_STATIC_DIR (default build/static), SAUVE_ROOTFS
# (default build/rootfs), SAUVE_STATIC_PG_MAJORS (default: every major built).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATIC=${SAUVE_STATIC_DIR:-$ROOT/build/static}
RFS=${SAUVE_ROOTFS:-$ROOT/build/rootfs}
UID_GID=65532

die() { printf 'rootfs.sh: %s\n' "$*" >&2; exit 1; }

[ -x "$STATIC/sauve" ] || die "no $STATIC/sauve: run make static first"
majors=${SAUVE_STATIC_PG_MAJORS:-$(cd "$STATIC/pg" 2>/dev/null && ls -d [0-9]* | sort -n | tr '\n' ' ')}
[ -n "${majors// /}" ] || die "no PostgreSQL tools under $STATIC/pg: run make static first"

for f in /etc/ssl/certs/ca-certificates.crt /usr/share/zoneinfo/UTC; do
    if [ ! -e "$f" ]; then
        [ "$(id -u)" -eq 0 ] || die "$f missing (install ca-certificates and tzdata)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates tzdata >/dev/null
    fi
done

# Never delete through a mount (a test that left its chroot mounted).
RFS_ABS=$(realpath -m "$RFS")
if awk -v r="$RFS_ABS" '$5 == r || index($5, r "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    die "something is mounted under $RFS_ABS; unmount it first"
fi

rm -rf "$RFS"
umask 022
mkdir -p "$RFS/usr/local/bin" "$RFS/etc/ssl/certs" "$RFS/usr/share"
install -m 755 "$STATIC/sauve" "$RFS/usr/local/bin/sauve"
for m in $majors; do
    mkdir -p "$RFS/usr/lib/postgresql/$m/bin"
    for t in pg_dump pg_restore pg_dumpall psql; do
        [ -x "$STATIC/pg/$m/bin/$t" ] || die "no $STATIC/pg/$m/bin/$t"
        install -m 755 "$STATIC/pg/$m/bin/$t" "$RFS/usr/lib/postgresql/$m/bin/$t"
    done
done
# sources.json: one entry per part built (scripts/static/build.sh records
# "package version suite what..." for each library and PostgreSQL major).
json_str() { local v=${1//\\/\\\\}; printf '"%s"' "${v//\"/\\\"}"; }
source_entries() {
    local f
    for f in "$STATIC"/prefix/.stamps/* "${majors_sources[@]}"; do
        # A build from before sources were recorded by suite has stamps of
        # one or three words: stop rather than write a wrong record.
        [ "$(wc -w <"$f")" -ge 4 ] || { echo "BAD $f"; continue; }
        cat "$f"
    done
}
majors_sources=()
for m in $majors; do
    [ -f "$STATIC/pg/$m/bin/.source" ] || die "no $STATIC/pg/$m/bin/.source: an old static build; rm -rf $STATIC/pg/$m and run make static"
    majors_sources+=("$STATIC/pg/$m/bin/.source")
done
mkdir -p "$RFS/usr/local/share/sauve"
{
    printf '{\n  "format": 1,\n  "sources": ['
    sep=
    while read -r package version suite built; do
        [ "$package" != BAD ] || die "$version records no source suite: an old static build; rm -rf $STATIC and run make static"
        [ -n "$built" ] || die "no suite recorded for $package $version: an old static build; rm -rf $STATIC and run make static"
        printf '%s\n    {"package": %s, "version": %s, "suite": %s, "built": %s}' "$sep" "$(json_str "$package")" \
            "$(json_str "$version")" "$(json_str "$suite")" "$(json_str "$built")"
        sep=,
    done < <(source_entries)
    printf '\n  ]\n}\n'
} >"$RFS/usr/local/share/sauve/sources.json"

install -m 644 /etc/ssl/certs/ca-certificates.crt "$RFS/etc/ssl/certs/ca-certificates.crt"

# Licence notices: what is linked into the executables (the build put each
# source package's copyright file into the prefix), the host's CA bundle and
# zone files, and sauve's own licence.
doc=$RFS/usr/share/doc
while read -r package _; do
    f=$STATIC/prefix/share/doc/$package/copyright
    [ -s "$f" ] || die "no licence notice $f: an old static build; rm -rf $STATIC and run make static"
    install -D -m 644 "$f" "$doc/$package/copyright"
done < <(cat "$STATIC"/prefix/.stamps/*)
for m in $majors; do
    f=$STATIC/pg/$m/bin/.copyright
    [ -s "$f" ] || die "no licence notice $f: an old static build; rm -rf $STATIC/pg/$m and run make static"
    install -D -m 644 "$f" "$doc/postgresql-$m/copyright"
done
f=$STATIC/prefix/share/doc/musl/copyright
[ -s "$f" ] || die "no licence notice $f: an old static build; rm -rf $STATIC and run make static"
install -D -m 644 "$f" "$doc/musl/copyright"
for package in ca-certificates tzdata; do
    install -D -m 644 "/usr/share/doc/$package/copyright" "$doc/$package/copyright"
done
install -D -m 644 "$ROOT/LICENSE" "$doc/sauve/LICENSE"

printf 'root:x:0:0:root:/root:/sbin/nologin\nsauve:x:%d:%d:sauve:/nonexistent:/sbin/nologin\n' \
    "$UID_GID" "$UID_GID" >"$RFS/etc/passwd"
printf 'root:x:0:\nsauve:x:%d:\n' "$UID_GID" >"$RFS/etc/group"
chmod 644 "$RFS/etc/passwd" "$RFS/etc/group"

# The zone files, without the leap-second ("right/") and "posix/" variants
# where a tzdata still ships them; links inside the tree stay links.
cp -a /usr/share/zoneinfo "$RFS/usr/share/zoneinfo"
rm -rf "$RFS/usr/share/zoneinfo/right" "$RFS/usr/share/zoneinfo/posix" "$RFS/usr/share/zoneinfo/posixrules"
rm -f "$RFS/usr/share/zoneinfo/localtime"          # Debian's link to the host's /etc/localtime
find "$RFS/usr/share/zoneinfo" -xtype l -delete   # links that pointed into what was removed
if find "$RFS/usr/share/zoneinfo" -type l -lname '/*' | grep -q .; then
    die "absolute symlinks in the copied zoneinfo tree"
fi

mkdir -m 1777 "$RFS/tmp"
chmod 1777 "$RFS/tmp"
if [ "$(id -u)" -eq 0 ]; then chown -R 0:0 "$RFS"; fi

# Check: every executable is static, no other file is executable.
while IFS= read -r -d '' f; do
    file -L "$f" | grep -q 'statically linked' || die "$f is not statically linked"
done < <(find "$RFS" -type f -perm /111 -print0)

size_kib=$(du -sk "$RFS" | cut -f1)
files=$(find "$RFS" -type f | wc -l)
echo "rootfs: $RFS, $files files, $((size_kib / 1024)) MiB ($size_kib KiB); PostgreSQL tools: $majors"
