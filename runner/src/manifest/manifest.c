/*
 * manifest.json, format 1. The layout below is a stable contract: other tools
 * (and older or newer sauve) read it. Adding an optional field keeps format 1
 * (readers ignore fields they do not know); any change an older reader must
 * not silently ignore bumps "format".
 *
 * {
 *   "format": 1,
 *   "id": "20261122T020000Z",               set id: UTC start, also the directory name
 *   "name": "default",                      series (SAUVE_NAME)
 *   "reason": "backup",                     or "safety"
 *   "note": null,                           or free text
 *   "status": "ok",                         or "partial" when an artifact failed
 *   "started_at": "2026-11-22T02:00:00Z",
 *   "finished_at": "2026-11-22T02:00:12Z",
 *   "duration_seconds": 12.5,
 *   "sauve_version": "0.1.0",
 *   "hostname": "sauve-29110-x7k2p",        or null
 *   "totals": {"bytes_in": N, "bytes_out": N, "artifacts": N, "failed": N},
 *   "artifacts": [
 *     {
 *       "kind": "postgres", "name": "app",
 *       "key": "postgres/app.dump.zst",      relative to the set; null when failed
 *       "format": "pg_dump-custom", "compression": "zstd",
 *       "status": "ok",                      or "failed"
 *       "error": null,                       why it failed, when it did
 *       "bytes_in": N, "bytes_out": N,       integers, 64-bit
 *       "sha256": "<64 lowercase hex>",      of the stored object; null when failed
 *       "duration_seconds": 1.2,
 *       "server_version": "15.18", "tool": "pg_dump",
 *       "tool_version": "pg_dump (PostgreSQL) 15.18",
 *       "endpoint": "127.0.0.1:5432 user app",
 *       "mode": "sync", "format_version": 10, "items": 1234,   optional, only when
 *                                            known: how the data was taken, the
 *                                            version of the format (RDB), keys
 *       "warnings": ["...", ...],            optional, only when there is one: what
 *                                            went wrong without failing the artifact
 *                                            (a file that changed while read)
 *       "vanished": 3,                       optional: Redis keys mode, keys SCAN
 *                                            listed that were gone at DUMP
 *       "encryption": {"recipients": ["<fingerprint>", ...]}   or null
 *       "row_counts": {"tables": [                optional (PostgreSQL databases):
 *           {"schema": "public", "table": "t",    the rows of every table the
 *            "rows": 12, "how": "exact"}, ...]}   dump holds, in its own snapshot;
 *                                            how: exact (count(*)), estimate
 *                                            (the planner's), unknown (no
 *                                            estimate: rows absent); or
 *                     {"skipped": "why"}     when they could not be counted
 *     }
 *   ]
 * }
 *
 * Totals count ok artifacts only (bytes) and are derived: a reader checks
 * them against the artifacts, as it checks "status", to catch a hand-edited
 * or damaged manifest. Strings are UTF-8 (database names need not be ASCII).
 */
#include "manifest/manifest.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>

#include "common/mem.h"
#include "common/text.h"

/* The manifest must never lose a field silently, so a failed jansson
 * allocation is treated like any other out-of-memory: abort (common/mem.h). */
static void json_oom(void)
{
    fprintf(stderr, "sauve: out of memory building the manifest\n");
    abort();
}

static json_t *jcheck(json_t *v)
{
    if (!v)
        json_oom();
    return v;
}

static void jset(json_t *obj, const char *key, json_t *value)
{
    if (json_object_set_new(obj, key, jcheck(value)) != 0)
        json_oom();
}

/*
 * A JSON string for s, or null for NULL. Text that is not UTF-8 (an error
 * message from a tool running in a Latin-1 locale, say) gets U+FFFD for each
 * bad byte: jansson refuses invalid UTF-8, and dropping the field would be
 * worse than a replaced character.
 */
static json_t *jstr(const char *s)
{
    if (!s)
        return jcheck(json_null());
    json_t *v = json_string(s);
    if (v)
        return v;
    size_t len = strlen(s);
    char *clean = xmalloc(len * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(s + i, NULL);
        if (n == 0) {
            memcpy(clean + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(clean + o, s + i, n);
            o += n;
            i += n;
        }
    }
    clean[o] = '\0';
    v = jcheck(json_string(clean));
    free(clean);
    return v;
}

static json_t *jint(uint64_t v)
{
    /* json_int_t is long long: sizes above 8 EiB cannot occur in practice. */
    return jcheck(json_integer((json_int_t)v));
}

/* ---- time ------------------------------------------------------------- */

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int mo)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return mo == 2 && leap_year(y) ? 29 : days[mo - 1];
}

/* n decimal digits at s, or -1 when any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Checks calendar values and converts; timegm alone would normalise
 * "month 13" into next January, which a strict parser must refuse. */
static int civil_to_time(int y, int mo, int d, int h, int mi, int s, time_t *out)
{
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || s < 0 || s > 59)
        return -1;
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = t;
    return 0;
}

void set_id_format(time_t t, char out[SET_ID_LEN + 1])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    if (strftime(out, SET_ID_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != SET_ID_TIME_LEN)
        out[0] = '\0'; /* year outside 0..9999: no valid id exists */
}

void set_id_new(time_t t, int ms, char out[SET_ID_LEN + 1])
{
    set_id_format(t, out);
    if (!out[0])
        return;
    uint32_t r = 0;
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom((unsigned char *)&r + got, sizeof r - got, 0);
        if (n < 0 && errno != EINTR)
            abort(); /* no kernel randomness: as unusable as no memory */
        got += n > 0 ? (size_t)n : 0;
    }
    snprintf(out + SET_ID_TIME_LEN, SET_ID_LEN + 1 - SET_ID_TIME_LEN, "-%03d%05x",
             ms < 0 || ms > 999 ? 0 : ms, (unsigned)(r & 0xFFFFF));
}

int set_id_parse(const char *id, time_t *out)
{
    if (!id || strlen(id) < SET_ID_TIME_LEN || id[8] != 'T' || id[15] != 'Z')
        return -1;
    if (id[SET_ID_TIME_LEN]) {
        const char *suffix = id + SET_ID_TIME_LEN + 1;
        size_t n = strspn(suffix, "0123456789abcdefghijklmnopqrstuvwxyz");
        if (id[SET_ID_TIME_LEN] != '-' || n == 0 || n > SET_ID_SUFFIX_MAX || suffix[n])
            return -1;
    }
    int y = digits(id, 4), mo = digits(id + 4, 2), d = digits(id + 6, 2);
    int h = digits(id + 9, 2), mi = digits(id + 11, 2), s = digits(id + 13, 2);
    time_t t;
    if (civil_to_time(y, mo, d, h, mi, s, &t) != 0)
        return -1;
    if (out)
        *out = t;
    return 0;
}

void iso8601_format(time_t t, char out[21])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    if (strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
        out[0] = '\0';
}

int iso8601_parse(const char *s, time_t *out)
{
    if (!s || strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != 'Z')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
    time_t t;
    if (civil_to_time(y, mo, d, h, mi, sec, &t) != 0)
        return -1;
    if (out)
        *out = t;
    return 0;
}

/* ---- building --------------------------------------------------------- */

manifest_artifact *manifest_add(manifest *m)
{
    m->artifacts = xrealloc(m->artifacts, (m->n_artifacts + 1) * sizeof *m->artifacts);
    manifest_artifact *a = &m->artifacts[m->n_artifacts++];
    memset(a, 0, sizeof *a);
    return a;
}

void manifest_update_status(manifest *m)
{
    m->status = SET_OK;
    for (size_t i = 0; i < m->n_artifacts; i++)
        if (!m->artifacts[i].ok)
            m->status = SET_PARTIAL;
}

uint64_t manifest_bytes_out(const manifest *m)
{
    uint64_t total = 0;
    for (size_t i = 0; i < m->n_artifacts; i++)
        if (m->artifacts[i].ok)
            total += m->artifacts[i].bytes_out;
    return total;
}

uint64_t manifest_bytes_in(const manifest *m)
{
    uint64_t total = 0;
    for (size_t i = 0; i < m->n_artifacts; i++)
        if (m->artifacts[i].ok)
            total += m->artifacts[i].bytes_in;
    return total;
}

const manifest_artifact *manifest_find(const manifest *m, const char *kind, const char *name)
{
    for (size_t i = 0; i < m->n_artifacts; i++) {
        const manifest_artifact *a = &m->artifacts[i];
        if (a->kind && a->name && strcmp(a->kind, kind) == 0 && strcmp(a->name, name) == 0)
            return a;
    }
    return NULL;
}

static size_t count_failed(const manifest *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_artifacts; i++)
        if (!m->artifacts[i].ok)
            n++;
    return n;
}

static json_t *artifact_to_json(const manifest_artifact *a)
{
    json_t *o = jcheck(json_object());
    jset(o, "kind", jstr(a->kind));
    jset(o, "name", jstr(a->name));
    jset(o, "key", jstr(a->key));
    jset(o, "format", jstr(a->format));
    jset(o, "compression", jstr(a->compression));
    jset(o, "status", jstr(a->ok ? "ok" : "failed"));
    jset(o, "error", jstr(a->ok ? NULL : a->error ? a->error : "unknown error"));
    jset(o, "bytes_in", jint(a->bytes_in));
    jset(o, "bytes_out", jint(a->bytes_out));
    jset(o, "sha256", jstr(a->sha256[0] ? a->sha256 : NULL));
    jset(o, "duration_seconds", json_real(a->duration_s));
    jset(o, "server_version", jstr(a->server_version));
    jset(o, "tool", jstr(a->tool));
    jset(o, "tool_version", jstr(a->tool_version));
    jset(o, "endpoint", jstr(a->endpoint));
    /* written only when known, so that the artifacts of other kinds keep
     * the layout they had */
    if (a->mode)
        jset(o, "mode", jstr(a->mode));
    if (a->format_version > 0)
        jset(o, "format_version", jint((uint64_t)a->format_version));
    if (a->has_items)
        jset(o, "items", jint((uint64_t)a->items));
    if (a->n_warnings) {
        json_t *ws = jcheck(json_array());
        for (size_t i = 0; i < a->n_warnings; i++)
            if (json_array_append_new(ws, jstr(a->warnings[i])) != 0)
                json_oom();
        jset(o, "warnings", ws);
    }
    if (a->row_counts.present) {
        json_t *rc = jcheck(json_object());
        if (a->row_counts.skipped) {
            jset(rc, "skipped", jstr(a->row_counts.skipped));
        } else {
            json_t *ts = jcheck(json_array());
            for (size_t i = 0; i < a->row_counts.n; i++) {
                const manifest_table_rows *t = &a->row_counts.tables[i];
                json_t *to = jcheck(json_object());
                jset(to, "schema", jstr(t->schema));
                jset(to, "table", jstr(t->table));
                if (t->how != ROWS_UNKNOWN)
                    jset(to, "rows", jint((uint64_t)t->rows));
                jset(to, "how", jstr(manifest_rows_how_name(t->how)));
                if (json_array_append_new(ts, to) != 0)
                    json_oom();
            }
            jset(rc, "tables", ts);
        }
        jset(o, "row_counts", rc);
    }
    if (a->has_vanished)
        jset(o, "vanished", jint((uint64_t)a->vanished));
    if (a->n_recipients) {
        json_t *enc = jcheck(json_object());
        json_t *rs = jcheck(json_array());
        for (size_t i = 0; i < a->n_recipients; i++)
            if (json_array_append_new(rs, jstr(a->recipients[i])) != 0)
                json_oom();
        jset(enc, "recipients", rs);
        jset(o, "encryption", enc);
    } else {
        jset(o, "encryption", json_null());
    }
    return o;
}

char *manifest_to_json(const manifest *m)
{
    char started[21], finished[21];
    iso8601_format(m->started, started);
    iso8601_format(m->finished, finished);

    json_t *root = jcheck(json_object());
    jset(root, "format", json_integer(m->format ? m->format : MANIFEST_FORMAT));
    jset(root, "id", jstr(m->id));
    jset(root, "name", jstr(m->name));
    jset(root, "reason", jstr(m->reason));
    jset(root, "note", jstr(m->note));
    /* Derived, not taken from m->status: a writer that forgot
     * manifest_update_status() must not commit a manifest readers reject. */
    jset(root, "status", jstr(count_failed(m) ? "partial" : "ok"));
    jset(root, "started_at", jstr(started));
    jset(root, "finished_at", jstr(finished));
    jset(root, "duration_seconds", json_real(difftime(m->finished, m->started)));
    jset(root, "sauve_version", jstr(m->sauve_version));
    jset(root, "hostname", jstr(m->hostname));

    json_t *totals = jcheck(json_object());
    jset(totals, "bytes_in", jint(manifest_bytes_in(m)));
    jset(totals, "bytes_out", jint(manifest_bytes_out(m)));
    jset(totals, "artifacts", jint(m->n_artifacts));
    jset(totals, "failed", jint(count_failed(m)));
    jset(root, "totals", totals);

    json_t *arts = jcheck(json_array());
    for (size_t i = 0; i < m->n_artifacts; i++)
        if (json_array_append_new(arts, artifact_to_json(&m->artifacts[i])) != 0)
            json_oom();
    jset(root, "artifacts", arts);

    /* 12 significant digits keep durations exact to the microsecond for a
     * year-long run while printing 1.2, not 1.2000000000000002. */
    char *out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(root);
    if (!out)
        json_oom();
    /* Callers free with free(); json_dumps allocates with malloc by default. */
    return out;
}

/* ---- parsing ---------------------------------------------------------- */

/* Field path for messages: "artifacts[1].sha256" or "id". */
typedef struct {
    char path[64];
} fieldname;

static fieldname field(const char *prefix, const char *key)
{
    fieldname f;
    if (prefix && *prefix)
        snprintf(f.path, sizeof f.path, "%s.%s", prefix, key);
    else
        snprintf(f.path, sizeof f.path, "%s", key);
    return f;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

static int bad_type(sv_error *err, const char *path, const char *want, const json_t *v)
{
    return sv_error_set(err, SV_EXIT_FAILED, "manifest field %s: expected %s, got %s", path, want,
                        v ? json_type_name(v) : "nothing (missing)");
}

/* Required non-empty string, copied into *out. */
static int get_string(json_t *obj, const char *prefix, const char *key, char **out, sv_error *err)
{
    json_t *v = json_object_get(obj, key);
    fieldname f = field(prefix, key);
    if (!json_is_string(v))
        return bad_type(err, f.path, "a string", v);
    if (json_string_length(v) == 0)
        return sv_error_set(err, SV_EXIT_FAILED, "manifest field %s: is empty", f.path);
    *out = xstrdup(json_string_value(v));
    return 0;
}

/* Optional string: absent or null leaves *out NULL. */
static int get_opt_string(json_t *obj, const char *prefix, const char *key, char **out, sv_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        fieldname f = field(prefix, key);
        return bad_type(err, f.path, "a string or null", v);
    }
    *out = xstrdup(json_string_value(v));
    return 0;
}

static int get_u64(json_t *obj, const char *prefix, const char *key, uint64_t *out, sv_error *err)
{
    json_t *v = json_object_get(obj, key);
    fieldname f = field(prefix, key);
    if (!json_is_integer(v))
        return bad_type(err, f.path, "an integer", v);
    if (json_integer_value(v) < 0)
        return sv_error_set(err, SV_EXIT_FAILED, "manifest field %s: is negative (%lld)", f.path,
                            (long long)json_integer_value(v));
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* An optional non-negative integer: absent or null leaves *out alone and
 * *present false (present may be NULL). */
static int get_opt_count(json_t *obj, const char *prefix, const char *key, int64_t *out, bool *present,
                         sv_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    uint64_t u;
    if (get_u64(obj, prefix, key, &u, err) != 0)
        return -1;
    /* jansson's integers are signed 64-bit: u fits */
    *out = (int64_t)u;
    if (present)
        *present = true;
    return 0;
}

static int get_seconds(json_t *obj, const char *prefix, const char *key, double *out, sv_error *err)
{
    json_t *v = json_object_get(obj, key);
    fieldname f = field(prefix, key);
    if (!json_is_number(v))
        return bad_type(err, f.path, "a number", v);
    double d = json_number_value(v);
    if (!isfinite(d) || d < 0)
        return sv_error_set(err, SV_EXIT_FAILED, "manifest field %s: is negative", f.path);
    *out = d;
    return 0;
}

static int get_time(json_t *obj, const char *key, time_t *out, sv_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return bad_type(err, key, "a string", v);
    if (iso8601_parse(json_string_value(v), out) != 0)
        return sv_error_set(err, SV_EXIT_FAILED,
                            "manifest field %s: \"%.40s\" is not a UTC time like 2026-11-22T02:00:00Z", key,
                            json_string_value(v));
    return 0;
}

static bool key_is_safe(const char *key);

bool manifest_key_is_safe(const char *key)
{
    return key_is_safe(key);
}

/* A key that stays inside the set's directory whatever the storage does
 * with it: relative, no "..", no "." and no empty segment, no control
 * character or backslash, valid UTF-8. */
static bool key_is_safe(const char *key)
{
    if (!*key || key[0] == '/' || !utf8_valid(key))
        return false;
    const char *seg = key;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)seg[i] < 0x20 || seg[i] == '\\')
                return false;
        if (!end)
            return true;
        seg = end + 1;
    }
}

static bool sha256_is_hex(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static int parse_recipients(json_t *obj, const char *prefix, manifest_artifact *a, sv_error *err)
{
    json_t *enc = json_object_get(obj, "encryption");
    fieldname f = field(prefix, "encryption");
    if (!enc || json_is_null(enc))
        return 0;
    if (!json_is_object(enc))
        return bad_type(err, f.path, "an object or null", enc);
    json_t *rs = json_object_get(enc, "recipients");
    fieldname fr = field(f.path, "recipients");
    if (!json_is_array(rs))
        return bad_type(err, fr.path, "an array", rs);
    if (json_array_size(rs) == 0)
        return sv_error_set(err, SV_EXIT_FAILED, "manifest field %s: is empty", fr.path);
    a->recipients = xcalloc(json_array_size(rs), sizeof *a->recipients);
    for (size_t i = 0; i < json_array_size(rs); i++) {
        json_t *r = json_array_get(rs, i);
        if (!json_is_string(r) || json_string_length(r) == 0) {
            char p[sizeof fr.path + 24];
            snprintf(p, sizeof p, "%s[%zu]", fr.path, i);
            return bad_type(err, p, "a non-empty string", r);
        }
        a->recipients[a->n_recipients++] = xstrdup(json_string_value(r));
    }
    return 0;
}

static int parse_warnings(json_t *obj, const char *prefix, manifest_artifact *a, sv_error *err)
{
    json_t *ws = json_object_get(obj, "warnings");
    fieldname f = field(prefix, "warnings");
    if (!ws)
        return 0;
    if (!json_is_array(ws))
        return bad_type(err, f.path, "an array", ws);
    a->warnings = xcalloc(json_array_size(ws) + 1, sizeof *a->warnings);
    for (size_t i = 0; i < json_array_size(ws); i++) {
        json_t *w = json_array_get(ws, i);
        if (!json_is_string(w)) {
            char p[sizeof f.path + 24];
            snprintf(p, sizeof p, "%s[%zu]", f.path, i);
            return bad_type(err, p, "a string", w);
        }
        a->warnings[a->n_warnings++] = xstrdup(json_string_value(w));
    }
    return 0;
}

/* "row_counts": absent or null (older manifests, other kinds), else
 * exactly one of "skipped" (why) and "tables"; each table named once. */
static int parse_row_counts(json_t *obj, const char *prefix, manifest_artifact *a, sv_error *err)
{
    json_t *rc = json_object_get(obj, "row_counts");
    fieldname f = field(prefix, "row_counts");
    if (!rc || json_is_null(rc))
        return 0;
    if (!json_is_object(rc))
        return bad_type(err, f.path, "an object or null", rc);
    a->row_counts.present = true;
    json_t *skipped = json_object_get(rc, "skipped");
    json_t *tables = json_object_get(rc, "tables");
    if (!skipped == !tables)
        return sv_error_set(err, SV_EXIT_FAILED, "manifest field %s: needs either tables or skipped", f.path);
    if (skipped)
        return get_string(rc, f.path, "skipped", &a->row_counts.skipped, err);
    fieldname ft = field(f.path, "tables");
    if (!json_is_array(tables))
        return bad_type(err, ft.path, "an array", tables);
    size_t n = json_array_size(tables);
    a->row_counts.tables = xcalloc(n ? n : 1, sizeof *a->row_counts.tables);
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(tables, i);
        char p[sizeof ft.path + 24];
        snprintf(p, sizeof p, "%s[%zu]", ft.path, i);
        if (!json_is_object(t))
            return bad_type(err, p, "an object", t);
        manifest_table_rows *r = &a->row_counts.tables[a->row_counts.n++];
        r->rows = -1;
        char *how = NULL;
        if (get_string(t, p, "schema", &r->schema, err) || get_string(t, p, "table", &r->table, err) ||
            get_string(t, p, "how", &how, err))
            return -1;
        fieldname fh = field(p, "how");
        if (strcmp(how, "exact") == 0)
            r->how = ROWS_EXACT;
        else if (strcmp(how, "estimate") == 0)
            r->how = ROWS_ESTIMATE;
        else if (strcmp(how, "unknown") == 0)
            r->how = ROWS_UNKNOWN;
        else {
            sv_error_set(err, SV_EXIT_FAILED,
                         "manifest field %s: unknown \"%.20s\" (exact, estimate or unknown)", fh.path, how);
            free(how);
            return -1;
        }
        free(how);
        json_t *rows = json_object_get(t, "rows");
        fieldname fr = field(p, "rows");
        if (r->how == ROWS_UNKNOWN) {
            if (rows && !json_is_null(rows))
                return bad_type(err, fr.path, "nothing for an unknown count", rows);
        } else {
            uint64_t u;
            if (get_u64(t, p, "rows", &u, err) != 0)
                return -1;
            r->rows = (int64_t)u;
        }
        for (size_t j = 0; j + 1 < a->row_counts.n; j++)
            if (strcmp(a->row_counts.tables[j].schema, r->schema) == 0 &&
                strcmp(a->row_counts.tables[j].table, r->table) == 0)
                return sv_error_set(err, SV_EXIT_FAILED, "manifest field %s: table %s.%s repeats [%zu]", p,
                                    r->schema, r->table, j);
    }
    return 0;
}

static int parse_artifact(json_t *obj, size_t idx, manifest_artifact *a, sv_error *err)
{
    char p[32];
    snprintf(p, sizeof p, "artifacts[%zu]", idx);
    if (!json_is_object(obj))
        return bad_type(err, p, "an object", obj);

    json_t *st = json_object_get(obj, "status");
    fieldname fs = field(p, "status");
    if (!json_is_string(st))
        return bad_type(err, fs.path, "a string", st);
    if (strcmp(json_string_value(st), "ok") == 0)
        a->ok = true;
    else if (strcmp(json_string_value(st), "failed") == 0)
        a->ok = false;
    else
        return sv_error_set(err, SV_EXIT_FAILED, "manifest field %s: unknown status \"%.20s\" (ok or failed)",
                            fs.path, json_string_value(st));

    if (get_string(obj, p, "kind", &a->kind, err) || get_string(obj, p, "name", &a->name, err))
        return -1;

    if (a->ok) {
        if (get_string(obj, p, "key", &a->key, err))
            return -1;
    } else if (get_opt_string(obj, p, "key", &a->key, err)) {
        return -1;
    }
    if (a->key && !key_is_safe(a->key)) {
        fieldname f = field(p, "key");
        return sv_error_set(err, SV_EXIT_FAILED,
                            "manifest field %s: \"%.100s\" is not a safe relative key "
                            "(leading '/', '..', '.' or empty segment)",
                            f.path, a->key);
    }
    if (a->key && strcmp(a->key, MANIFEST_FILENAME) == 0) {
        fieldname f = field(p, "key");
        return sv_error_set(err, SV_EXIT_FAILED, "manifest field %s: names the manifest itself", f.path);
    }

    if (a->ok) {
        json_t *e = json_object_get(obj, "error");
        if (e && !json_is_null(e)) {
            fieldname f = field(p, "error");
            return bad_type(err, f.path, "null for an ok artifact", e);
        }
    } else if (get_string(obj, p, "error", &a->error, err)) {
        return -1;
    }

    json_t *sha = json_object_get(obj, "sha256");
    fieldname fh = field(p, "sha256");
    if (a->ok || (sha && !json_is_null(sha))) {
        if (!json_is_string(sha))
            return bad_type(err, fh.path, "a string", sha);
        if (!sha256_is_hex(json_string_value(sha)))
            return sv_error_set(err, SV_EXIT_FAILED,
                                "manifest field %s: \"%.70s\" is not 64 lowercase hex digits", fh.path,
                                json_string_value(sha));
        memcpy(a->sha256, json_string_value(sha), 65);
    }

    if (get_opt_string(obj, p, "format", &a->format, err) ||
        get_opt_string(obj, p, "compression", &a->compression, err) ||
        get_u64(obj, p, "bytes_in", &a->bytes_in, err) || get_u64(obj, p, "bytes_out", &a->bytes_out, err) ||
        get_seconds(obj, p, "duration_seconds", &a->duration_s, err) ||
        get_opt_string(obj, p, "server_version", &a->server_version, err) ||
        get_opt_string(obj, p, "tool", &a->tool, err) ||
        get_opt_string(obj, p, "tool_version", &a->tool_version, err) ||
        get_opt_string(obj, p, "endpoint", &a->endpoint, err) ||
        get_opt_string(obj, p, "mode", &a->mode, err) ||
        get_opt_count(obj, p, "format_version", &a->format_version, NULL, err) ||
        get_opt_count(obj, p, "items", &a->items, &a->has_items, err) ||
        get_opt_count(obj, p, "vanished", &a->vanished, &a->has_vanished, err) ||
        parse_warnings(obj, p, a, err) || parse_recipients(obj, p, a, err) ||
        parse_row_counts(obj, p, a, err))
        return -1;
    /* restore chooses its loader and decoder by these: an ok artifact
     * without them cannot be restored */
    if (a->ok && (!a->format || !a->compression)) {
        fieldname f = field(p, a->format ? "compression" : "format");
        return sv_error_set(err, SV_EXIT_FAILED, "manifest field %s: missing for an ok artifact", f.path);
    }
    return 0;
}

/* The derived parts must agree with the artifacts: a disagreement means the
 * file was edited or damaged, and then none of it can be trusted. */
static int check_consistency(json_t *root, const manifest *m, sv_error *err)
{
    for (size_t i = 0; i < m->n_artifacts; i++) {
        const manifest_artifact *a = &m->artifacts[i];
        for (size_t j = 0; j < i; j++) {
            const manifest_artifact *b = &m->artifacts[j];
            if (strcmp(a->kind, b->kind) == 0 && strcmp(a->name, b->name) == 0)
                return sv_error_set(err, SV_EXIT_FAILED,
                                    "manifest field artifacts[%zu]: %s:%s repeats artifacts[%zu]", i, a->kind,
                                    a->name, j);
            if (a->key && b->key && strcmp(a->key, b->key) == 0)
                return sv_error_set(err, SV_EXIT_FAILED,
                                    "manifest field artifacts[%zu].key: \"%.100s\" repeats artifacts[%zu]", i,
                                    a->key, j);
        }
    }

    /* The totals below are sums: a forged manifest must not make them wrap
     * around 2^64 to match totals of its choosing (three artifacts of 2^63
     * bytes and a total of 0). No set holds 16 EiB. */
    uint64_t in = 0, out = 0;
    for (size_t i = 0; i < m->n_artifacts; i++) {
        const manifest_artifact *a = &m->artifacts[i];
        if (!a->ok)
            continue;
        if (in + a->bytes_in < in || out + a->bytes_out < out)
            return sv_error_set(
                err, SV_EXIT_FAILED,
                "manifest field artifacts[%zu]: the artifacts' sizes add up to more than 2^64 bytes", i);
        in += a->bytes_in;
        out += a->bytes_out;
    }

    size_t failed = count_failed(m);
    if (m->status == SET_OK && failed > 0)
        return sv_error_set(err, SV_EXIT_FAILED, "manifest field status: is ok but %zu artifact(s) failed",
                            failed);
    if (m->status == SET_PARTIAL && failed == 0)
        return sv_error_set(err, SV_EXIT_FAILED, "manifest field status: is partial but no artifact failed");

    json_t *t = json_object_get(root, "totals");
    if (!json_is_object(t))
        return bad_type(err, "totals", "an object", t);
    struct {
        const char *key;
        uint64_t want;
    } totals[] = {
        {"bytes_in", manifest_bytes_in(m)},
        {"bytes_out", manifest_bytes_out(m)},
        {"artifacts", m->n_artifacts},
        {"failed", failed},
    };
    for (size_t i = 0; i < sizeof totals / sizeof totals[0]; i++) {
        uint64_t got;
        if (get_u64(t, "totals", totals[i].key, &got, err))
            return -1;
        if (got != totals[i].want)
            return sv_error_set(err, SV_EXIT_FAILED,
                                "manifest field totals.%s: is %llu but the artifacts add up to %llu",
                                totals[i].key, (unsigned long long)got, (unsigned long long)totals[i].want);
    }
    return 0;
}

static int parse_root(json_t *root, manifest *m, sv_error *err)
{
    if (!json_is_object(root))
        return sv_error_set(err, SV_EXIT_FAILED, "manifest: expected a JSON object, got %s",
                            json_type_name(root));

    /* The format comes first: a newer manifest may fail every other check,
     * and "upgrade sauve" is then the only useful message. */
    json_t *fmt = json_object_get(root, "format");
    if (!json_is_integer(fmt))
        return bad_type(err, "format", "an integer", fmt);
    json_int_t f = json_integer_value(fmt);
    if (f > MANIFEST_FORMAT) {
        sv_error_set(err, SV_EXIT_FAILED,
                     "manifest format %lld is newer than this sauve understands: upgrade sauve",
                     (long long)f);
        return sv_error_hint(err, "this sauve reads manifest format %d", MANIFEST_FORMAT);
    }
    if (f < 1)
        return sv_error_set(err, SV_EXIT_FAILED, "manifest field format: %lld is not a manifest format",
                            (long long)f);
    m->format = (int)f;

    json_t *id = json_object_get(root, "id");
    if (!json_is_string(id))
        return bad_type(err, "id", "a string", id);
    if (set_id_parse(json_string_value(id), NULL) != 0)
        return sv_error_set(err, SV_EXIT_FAILED,
                            "manifest field id: \"%.40s\" is not a set id like 20261122T020000Z-482a3f91",
                            json_string_value(id));
    strcpy(m->id, json_string_value(id)); /* set_id_parse bounds its length */

    if (get_string(root, NULL, "name", &m->name, err) || get_string(root, NULL, "reason", &m->reason, err) ||
        get_opt_string(root, NULL, "note", &m->note, err))
        return -1;

    json_t *st = json_object_get(root, "status");
    if (!json_is_string(st))
        return bad_type(err, "status", "a string", st);
    if (strcmp(json_string_value(st), "ok") == 0)
        m->status = SET_OK;
    else if (strcmp(json_string_value(st), "partial") == 0)
        m->status = SET_PARTIAL;
    else
        return sv_error_set(err, SV_EXIT_FAILED,
                            "manifest field status: unknown status \"%.20s\" (ok or partial)",
                            json_string_value(st));

    double duration;
    if (get_time(root, "started_at", &m->started, err) || get_time(root, "finished_at", &m->finished, err) ||
        get_seconds(root, NULL, "duration_seconds", &duration, err) ||
        get_string(root, NULL, "sauve_version", &m->sauve_version, err) ||
        get_opt_string(root, NULL, "hostname", &m->hostname, err))
        return -1;
    if (m->finished < m->started)
        return sv_error_set(err, SV_EXIT_FAILED, "manifest field finished_at: is before started_at");

    json_t *arts = json_object_get(root, "artifacts");
    if (!json_is_array(arts))
        return bad_type(err, "artifacts", "an array", arts);
    for (size_t i = 0; i < json_array_size(arts); i++)
        if (parse_artifact(json_array_get(arts, i), i, manifest_add(m), err))
            return -1;

    return check_consistency(root, m, err);
}

int manifest_from_json(const char *json, size_t len, manifest *m, sv_error *err)
{
    memset(m, 0, sizeof *m);
    json_error_t jerr;
    /* Duplicate keys would let two readers see two different manifests. */
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return sv_error_set(err, SV_EXIT_FAILED, "manifest: not valid JSON at line %d column %d: %s",
                            jerr.line, jerr.column, jerr.text);
    int rc = parse_root(root, m, err);
    json_decref(root);
    if (rc != 0)
        manifest_free(m);
    return rc;
}

static void artifact_free(manifest_artifact *a)
{
    free(a->key);
    free(a->kind);
    free(a->name);
    free(a->format);
    free(a->compression);
    free(a->error);
    free(a->server_version);
    free(a->tool);
    free(a->tool_version);
    free(a->endpoint);
    free(a->mode);
    for (size_t i = 0; i < a->n_warnings; i++)
        free(a->warnings[i]);
    free(a->warnings);
    for (size_t i = 0; i < a->n_recipients; i++)
        free(a->recipients[i]);
    free(a->recipients);
    manifest_row_counts_free(&a->row_counts);
}

const char *manifest_rows_how_name(enum manifest_rows_how how)
{
    return how == ROWS_EXACT ? "exact" : how == ROWS_ESTIMATE ? "estimate" : "unknown";
}

void manifest_row_counts_add(manifest_row_counts *rc, const char *schema, const char *table, int64_t rows,
                             enum manifest_rows_how how)
{
    rc->present = true;
    rc->tables = xrealloc(rc->tables, (rc->n + 1) * sizeof *rc->tables);
    rc->tables[rc->n++] = (manifest_table_rows){.schema = xstrdup(schema),
                                                .table = xstrdup(table),
                                                .rows = how == ROWS_UNKNOWN ? -1 : rows,
                                                .how = how};
}

void manifest_row_counts_free(manifest_row_counts *rc)
{
    for (size_t i = 0; i < rc->n; i++) {
        free(rc->tables[i].schema);
        free(rc->tables[i].table);
    }
    free(rc->tables);
    free(rc->skipped);
    memset(rc, 0, sizeof *rc);
}

void manifest_free(manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_artifacts; i++)
        artifact_free(&m->artifacts[i]);
    free(m->artifacts);
    free(m->name);
    free(m->reason);
    free(m->note);
    free(m->sauve_version);
    free(m->hostname);
    memset(m, 0, sizeof *m);
}
