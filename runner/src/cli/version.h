/*
 * sauve version: what this sauve runs with, so that a user knows what they
 * run. The parts that do not depend on the machine are here, for the unit
 * tests; cmd_version (commands.h) puts them together.
 */
#ifndef SAUVE_CLI_VERSION_H
#define SAUVE_CLI_VERSION_H

#include <jansson.h>
#include <stddef.h>

/*
 * Where the image records the Debian sources it was built from, relative
 * to the executable: "/usr/local/bin/sauve" ->
 * "/usr/local/share/sauve/sources.json" (DIR/../share/sauve/sources.json,
 * with the ".." resolved textually: exe comes from /proc/self/exe, which
 * has no symbolic link left in it). Newly allocated.
 */
char *version_sources_path(const char *exe);

enum version_sources {
    VERSION_SOURCES_OK,      /* read and well formed */
    VERSION_SOURCES_MISSING, /* no such file: a developer build, which records nothing */
    VERSION_SOURCES_BAD,     /* there, but unreadable or malformed */
};

/*
 * Reads the record written by the static build (scripts/static/rootfs.sh),
 * format 1: {"format": 1, "sources": [{"package": "postgresql-18",
 * "version": "18.1-1", "suite": "sid", "built": "pg_dump ... 18"}, ...]},
 * those four fields strings (others are kept as they are). OK: *sources is
 * the "sources" array as in the file (a new reference). BAD: *problem
 * (newly allocated) says why, naming the entry and field at fault; nothing
 * in the file can make it abort. MISSING: neither is set.
 */
enum version_sources version_sources_read(const char *path, json_t **sources, char **problem);

/*
 * The libraries linked into sauve, each asked for its own version at run
 * time (what is linked, not the headers it was compiled against):
 * {"openssl": "3.0.17", "libcurl": "7.88.1", "zstd": "1.5.4", "libpq":
 * "15.14", "jansson": "2.14", "libyaml": "0.2.5", "expat": "2.5.0"}. A new
 * reference.
 */
json_t *version_libraries(void);

/* PQlibVersion()'s number as PostgreSQL writes it: 150014 -> "15.14",
 * 180001 -> "18.1", 90624 -> "9.6.24". Into buf; returns buf. */
const char *version_libpq_text(int number, char *buf, size_t len);

#endif
