/*
 * manifest.json as list, prune and restore read it from the bucket
 * (manifest_from_json): anyone with write access to the bucket can forge
 * one. A manifest that parses must satisfy what its readers rely on (safe
 * keys, consistent status, well-formed digests), must serialise, and must
 * read back as the same manifest: what the reader accepted is what a writer
 * would have written.
 */
#include <math.h>

#include "fuzz.h"

#include "catalog/catalog.h"
#include "manifest/manifest.h"
#include "sources/postgres.h"

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool nonempty(const char *s)
{
    return s && *s;
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* No "." or ".." segment: a key that stays inside NAME/SETID/ on any store. */
static bool no_dot_segment(const char *path)
{
    for (const char *seg = path;;) {
        size_t n = strcspn(seg, "/");
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        if (!seg[n])
            return true;
        seg += n + 1;
    }
}

/* What list, prune and restore take for granted in a manifest that parsed. */
static void check_valid(const manifest *m)
{
    FUZZ_CHECK(m->format == MANIFEST_FORMAT);
    FUZZ_CHECK(set_id_parse(m->id, NULL) == 0);
    FUZZ_CHECK(nonempty(m->name) && nonempty(m->reason) && nonempty(m->sauve_version));
    FUZZ_CHECK(m->finished >= m->started);

    size_t failed = 0;
    uint64_t in = 0, out = 0;
    for (size_t i = 0; i < m->n_artifacts; i++) {
        const manifest_artifact *a = &m->artifacts[i];
        FUZZ_CHECK(nonempty(a->kind) && nonempty(a->name));
        /* restore finds an artifact by kind and name: they must name one */
        FUZZ_CHECK(manifest_find(m, a->kind, a->name) == a);
        if (a->ok) {
            FUZZ_CHECK(a->key && !a->error && is_hex64(a->sha256));
            FUZZ_CHECK(a->format && a->compression);
            /* the totals must not have wrapped around: they were checked against the file's */
            FUZZ_CHECK(in + a->bytes_in >= in && out + a->bytes_out >= out);
            in += a->bytes_in;
            out += a->bytes_out;
        } else {
            FUZZ_CHECK(nonempty(a->error));
            FUZZ_CHECK(!a->sha256[0] || is_hex64(a->sha256));
            failed++;
        }
        if (a->key) {
            FUZZ_CHECK(manifest_key_is_safe(a->key));
            FUZZ_CHECK(a->key[0] != '/' && no_dot_segment(a->key));
            FUZZ_CHECK(strcmp(a->key, MANIFEST_FILENAME) != 0);
            for (size_t j = 0; j < i; j++)
                FUZZ_CHECK(!m->artifacts[j].key || strcmp(m->artifacts[j].key, a->key) != 0);
            /* the storage key restore reads: NAME/SETID/KEY, nothing else */
            char *obj = catalog_object_key(m->name, m->id, a->key);
            size_t nlen = strlen(m->name), ilen = strlen(m->id);
            FUZZ_CHECK(strncmp(obj, m->name, nlen) == 0 && obj[nlen] == '/');
            FUZZ_CHECK(strncmp(obj + nlen + 1, m->id, ilen) == 0 && obj[nlen + 1 + ilen] == '/');
            FUZZ_CHECK(strcmp(obj + nlen + 2 + ilen, a->key) == 0);
            free(obj);
        }
        for (size_t r = 0; r < a->n_recipients; r++)
            FUZZ_CHECK(nonempty(a->recipients[r]));
        /* restore picks its pg_restore by the version in tool_version */
        if (a->tool_version) {
            char *number = pg_version_number(a->tool_version);
            FUZZ_CHECK(strlen(number) <= strlen(a->tool_version));
            free(number);
        }
    }
    FUZZ_CHECK((m->status == SET_PARTIAL) == (failed > 0));
    FUZZ_CHECK(manifest_bytes_in(m) == in && manifest_bytes_out(m) == out);
}

static void check_same_artifact(const manifest_artifact *a, const manifest_artifact *b)
{
    FUZZ_CHECK(str_eq(a->key, b->key) && str_eq(a->kind, b->kind) && str_eq(a->name, b->name));
    FUZZ_CHECK(str_eq(a->format, b->format) && str_eq(a->compression, b->compression));
    FUZZ_CHECK(a->ok == b->ok && str_eq(a->error, b->error));
    FUZZ_CHECK(a->bytes_in == b->bytes_in && a->bytes_out == b->bytes_out);
    FUZZ_CHECK(strcmp(a->sha256, b->sha256) == 0);
    /* written with 12 significant digits (JSON_REAL_PRECISION(12)) */
    FUZZ_CHECK(fabs(a->duration_s - b->duration_s) <= 1e-11 * fabs(a->duration_s));
    FUZZ_CHECK(str_eq(a->server_version, b->server_version) && str_eq(a->tool, b->tool));
    FUZZ_CHECK(str_eq(a->tool_version, b->tool_version) && str_eq(a->endpoint, b->endpoint));
    FUZZ_CHECK(a->n_recipients == b->n_recipients);
    for (size_t i = 0; i < a->n_recipients; i++)
        FUZZ_CHECK(strcmp(a->recipients[i], b->recipients[i]) == 0);
}

static void check_same(const manifest *a, const manifest *b)
{
    FUZZ_CHECK(a->format == b->format && strcmp(a->id, b->id) == 0);
    FUZZ_CHECK(str_eq(a->name, b->name) && str_eq(a->reason, b->reason) && str_eq(a->note, b->note));
    FUZZ_CHECK(a->status == b->status && a->started == b->started && a->finished == b->finished);
    FUZZ_CHECK(str_eq(a->sauve_version, b->sauve_version) && str_eq(a->hostname, b->hostname));
    FUZZ_CHECK(a->n_artifacts == b->n_artifacts);
    for (size_t i = 0; i < a->n_artifacts; i++)
        check_same_artifact(&a->artifacts[i], &b->artifacts[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    manifest m;
    sv_error err = {0};
    if (manifest_from_json((const char *)data, size, &m, &err) != 0) {
        /* a refusal says why, and leaves nothing allocated */
        FUZZ_CHECK(err.code == SV_EXIT_FAILED && err.msg[0]);
        FUZZ_CHECK(!m.artifacts && !m.name && !m.reason && !m.note && !m.sauve_version && !m.hostname);
        return 0;
    }
    check_valid(&m);

    char *json = manifest_to_json(&m);
    manifest back;
    sv_error err2 = {0};
    if (manifest_from_json(json, strlen(json), &back, &err2) != 0) {
        fprintf(stderr, "fuzz: a parsed manifest does not read back: %s\n%s\n", err2.msg, json);
        abort();
    }
    check_same(&m, &back);
    /* and the second writing is the first, byte for byte */
    char *json2 = manifest_to_json(&back);
    FUZZ_CHECK(strcmp(json, json2) == 0);

    free(json2);
    free(json);
    manifest_free(&back);
    manifest_free(&m);
    return 0;
}
