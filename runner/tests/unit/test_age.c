/*
 * runner/src/crypto/age and the age stages of runner/src/pipeline: the C2SP
 * CCTV age vectors (read in place from ../shared/testdata/age, or
 * $SAUVE_AGE_VECTORS), round trips, and damaged ciphertext.
 *
 * Vectors skipped, by design: ASCII armor (sauve writes and reads binary
 * objects only), scrypt passphrases and ML-KEM hybrid identities (sauve
 * supports X25519 identities only). A vector mixing an scrypt stanza with
 * X25519 ones is still run: it must fail in the header.
 */
#include "testutil.h"

#include <ctype.h>
#include <dirent.h>
#include <sys/stat.h>
#include <zlib.h>

#include "common/mem.h"
#include "crypto/age.h"
#include "pipeline/stream.h"

#define VECTOR_IDENTITY "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"

/* ---- helpers ---------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    size_t cap = 1 << 16, n = 0, r;
    char *b = xmalloc(cap + 1);
    while ((r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            b = xrealloc(b, (cap *= 2) + 1);
    }
    fclose(f);
    b[n] = '\0';
    *len = n;
    return b;
}

static unsigned char *inflate_all(const unsigned char *in, size_t n, size_t *out_len)
{
    z_stream z = {0};
    assert_int_equal(inflateInit(&z), Z_OK);
    size_t cap = 1 << 20, len = 0;
    unsigned char *out = xmalloc(cap);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    int rc;
    do {
        if (cap - len < (1 << 16))
            out = xrealloc(out, cap *= 2);
        z.next_out = out + len;
        z.avail_out = (uInt)(cap - len);
        rc = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
    } while (rc == Z_OK);
    assert_int_equal(rc, Z_STREAM_END);
    inflateEnd(&z);
    *out_len = len;
    return out;
}

static char *identity_file(const char *dir, const char *const *keys, size_t n)
{
    char *body = xstrdup("# created by test_age\n");
    for (size_t i = 0; i < n; i++) {
        char *b = xasprintf("%s\n%s\n", body, keys[i]);
        free(body);
        body = b;
    }
    char *path = test_write_file(dir, "identity.txt", body);
    free(body);
    return path;
}

/* Decrypts data written in pieces of `piece` bytes; returns the stage's
 * result, the plaintext's digest in hex (when it succeeded), the message. */
static int decrypt(const unsigned char *data, size_t len, size_t piece, const age_identities *ids,
                   char hex[65], sv_error *err)
{
    stream *digest = sha256_stage(NULL);
    stream *head = age_decrypt_stage(digest, ids);
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += piece)
        rc = stream_write(head, data + off, len - off < piece ? len - off : piece, err);
    if (rc == 0)
        rc = stream_finish(head, err);
    if (rc == 0)
        sha256_stage_hex(digest, hex);
    else
        stream_abort(head);
    stream_free(head);
    return rc;
}

/* ---- the vectors ---------------------------------------------------- */

struct vector {
    char expect[32];
    char payload[65];
    char *identities[4];
    size_t n_ids;
    bool armored, compressed, passphrase;
    unsigned char *body;
    size_t body_len;
};

static void vector_free(struct vector *v)
{
    for (size_t i = 0; i < v->n_ids; i++)
        free(v->identities[i]);
    free(v->body);
}

static void vector_read(const char *path, struct vector *v)
{
    memset(v, 0, sizeof *v);
    size_t len;
    char *all = slurp(path, &len);
    char *p = all;
    for (;;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = '\0';
        if (!*p)
            break;
        if (strncmp(p, "expect: ", 8) == 0)
            snprintf(v->expect, sizeof v->expect, "%s", p + 8);
        else if (strncmp(p, "payload: ", 9) == 0)
            snprintf(v->payload, sizeof v->payload, "%s", p + 9);
        else if (strncmp(p, "identity: ", 10) == 0 && v->n_ids < 4)
            v->identities[v->n_ids++] = xstrdup(p + 10);
        else if (strncmp(p, "armored: ", 9) == 0)
            v->armored = true;
        else if (strncmp(p, "compressed: ", 12) == 0)
            v->compressed = true;
        else if (strncmp(p, "passphrase: ", 12) == 0)
            v->passphrase = true;
        p = nl + 1;
    }
    p++;
    size_t n = len - (size_t)(p - all);
    if (v->compressed) {
        v->body = inflate_all((unsigned char *)p, n, &v->body_len);
    } else {
        v->body = xmalloc(n + 1);
        memcpy(v->body, p, n);
        v->body_len = n;
    }
    free(all);
}

/* What sauve's messages say for each failure kind the vectors name. */
static const char *failure_marker(const char *expect)
{
    if (strcmp(expect, "header failure") == 0)
        return "age header: ";
    if (strcmp(expect, "HMAC failure") == 0)
        return "age header MAC";
    if (strcmp(expect, "no match") == 0)
        return "no identity";
    if (strcmp(expect, "payload failure") == 0)
        return "age payload: ";
    fail_msg("unknown expectation '%s'", expect);
    return NULL;
}

static void test_cctv_vectors(void **state)
{
    (void)state;
    char *dir = test_shared_testdata("age", "SAUVE_AGE_VECTORS");
    char *tmp = test_tmpdir();
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open the age vectors at %s (set SAUVE_AGE_VECTORS)", dir);
    int ran = 0, skipped = 0, succeeded = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "LICENSE") == 0)
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        struct vector v;
        vector_read(path, &v);
        bool x25519 = v.n_ids == 0;
        for (size_t i = 0; i < v.n_ids; i++)
            x25519 |= strncmp(v.identities[i], "AGE-SECRET-KEY-1", 16) == 0;
        /* armor, passphrase-only and ML-KEM-only vectors: not sauve's formats */
        bool scrypt_only = v.passphrase && !memmem(v.body, v.body_len, "-> X25519 ", 10);
        if (v.armored || !x25519 || scrypt_only) {
            skipped++;
            vector_free(&v);
            free(path);
            continue;
        }
        /* a vector with no identity (e.g. an empty file) fails before one is needed */
        const char *keys[4] = {VECTOR_IDENTITY};
        size_t nkeys = 1;
        if (v.n_ids) {
            nkeys = 0;
            for (size_t i = 0; i < v.n_ids; i++)
                if (strncmp(v.identities[i], "AGE-SECRET-KEY-1", 16) == 0)
                    keys[nkeys++] = v.identities[i];
        }
        char *idpath = identity_file(tmp, keys, nkeys);
        age_identities ids;
        sv_error err = {0};
        assert_int_equal(age_identities_load(idpath, &ids, &err), 0);
        /* whole, then in small pieces: the header parser must not care */
        size_t pieces[2] = {v.body_len ? v.body_len : 1, v.body_len > 200000 ? 4093 : 1};
        for (int k = 0; k < 2; k++) {
            char hex[65] = "";
            sv_error_clear(&err);
            int rc = decrypt(v.body, v.body_len, pieces[k], &ids, hex, &err);
            if (strcmp(v.expect, "success") == 0) {
                if (rc != 0)
                    fail_msg("%s: expected success, got: %s", e->d_name, err.msg);
                if (strcmp(hex, v.payload) != 0)
                    fail_msg("%s: payload sha256 %s, expected %s", e->d_name, hex, v.payload);
            } else {
                const char *marker = failure_marker(v.expect);
                if (rc == 0)
                    fail_msg("%s: expected %s, but it decrypted", e->d_name, v.expect);
                if (!strstr(err.msg, marker) ||
                    (strcmp(v.expect, "header failure") == 0 && strstr(err.msg, "age header MAC")))
                    fail_msg("%s: expected %s, got: %s", e->d_name, v.expect, err.msg);
            }
        }
        succeeded += strcmp(v.expect, "success") == 0;
        ran++;
        age_identities_free(&ids);
        unlink(idpath);
        free(idpath);
        vector_free(&v);
        free(path);
    }
    closedir(d);
    print_message("age vectors: %d run (%d expected to decrypt), %d skipped (armor, scrypt, ML-KEM)\n", ran,
                  succeeded, skipped);
    assert_true(ran >= 60);
    assert_true(succeeded >= 5);
    test_rmtree(tmp);
    free(tmp);
    free(dir);
}

/* ---- keys ------------------------------------------------------------- */

/* The vectors' X25519 identity, loaded from a file written under tmp;
 * returns that file's path. */
static char *load_vector_identity(const char *tmp, age_identities *ids)
{
    const char *keys[] = {VECTOR_IDENTITY};
    char *path = identity_file(tmp, keys, 1);
    sv_error err = {0};
    assert_int_equal(age_identities_load(path, ids, &err), 0);
    return path;
}

static void test_keys(void **state)
{
    (void)state;
    char *tmp = test_tmpdir();
    age_identities ids;
    sv_error err = {0};
    char *idpath = load_vector_identity(tmp, &ids);
    assert_int_equal(ids.n, 1);
    const char *pub = ids.items[0].recipient.text;
    assert_int_equal(strlen(pub), AGE_RECIPIENT_LEN);
    assert_memory_equal(pub, "age1", 4);

    /* the recipient text decodes back to the same key */
    age_recipient r;
    assert_int_equal(age_parse_recipient(pub, "test", &r, &err), 0);
    assert_memory_equal(r.pub, ids.items[0].recipient.pub, AGE_KEY_LEN);
    assert_string_equal(r.text, pub);

    /* one changed character breaks the checksum */
    char bad[AGE_RECIPIENT_LEN + 1];
    memcpy(bad, pub, sizeof bad);
    bad[20] = bad[20] == 'q' ? 'p' : 'q';
    assert_int_equal(age_parse_recipient(bad, "SAUVE_AGE_RECIPIENTS item 2", &r, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, "SAUVE_AGE_RECIPIENTS item 2"));

    /* mixed case is not bech32 */
    memcpy(bad, pub, sizeof bad);
    bad[10] = (char)toupper((unsigned char)bad[10]);
    bad[11] = 'q';
    assert_int_equal(age_parse_recipient(bad, "x", &r, &err), -1);

    /* an identity pasted as a recipient is refused, and never echoed */
    sv_error_clear(&err);
    assert_int_equal(age_parse_recipient(VECTOR_IDENTITY, "SAUVE_AGE_RECIPIENTS item 1", &r, &err), -1);
    assert_non_null(strstr(err.msg, "identity"));
    assert_null(strstr(err.msg, VECTOR_IDENTITY + 16));
    assert_null(strstr(err.hint, VECTOR_IDENTITY + 16));

    /* SSH keys are not supported, and say so */
    sv_error_clear(&err);
    assert_int_equal(age_parse_recipient("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW", "x", &r, &err),
                     -1);
    assert_non_null(strstr(err.hint, "SSH"));

    assert_true(age_identities_open_any(&ids, (char *const[]){(char *)pub}, 1));
    assert_false(age_identities_open_any(&ids, (char *const[]){"age1other"}, 1));
    age_identities_free(&ids);

    /* a broken identity line is named by file and line, its text never shown */
    char *broken = test_write_file(
        tmp, "broken.txt",
        "# c\n\nAGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM1\n");
    sv_error_clear(&err);
    assert_int_equal(age_identities_load(broken, &ids, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, "line 3"));
    assert_non_null(strstr(err.msg, broken));
    assert_null(strstr(err.msg, "EGTZVFFV"));
    char *none = test_write_file(tmp, "none.txt", "# nothing here\n");
    sv_error_clear(&err);
    assert_int_equal(age_identities_load(none, &ids, &err), -1);
    assert_non_null(strstr(err.msg, "holds no identity"));
    sv_error_clear(&err);
    assert_int_equal(age_identities_load("/nonexistent/id.txt", &ids, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/id.txt"));

    free(broken);
    free(none);
    free(idpath);
    test_rmtree(tmp);
    free(tmp);
}

static void test_recipients_from_config(void **state)
{
    (void)state;
    char *tmp = test_tmpdir();
    age_identities ids;
    sv_error err = {0};
    char *idpath = load_vector_identity(tmp, &ids);
    const char *pub = ids.items[0].recipient.text;

    char *body = xasprintf("# ops key\n%s\n\n  # break-glass, duplicate of the env one\n  %s  \n", pub, pub);
    char *file = test_write_file(tmp, "recipients.txt", body);
    sv_config cfg = {0};
    char *items[] = {(char *)pub};
    cfg.age_recipients = (sv_strlist){items, 1};
    cfg.age_recipients_file = file;
    age_recipients r;
    assert_int_equal(age_recipients_load(&cfg, &r, &err), 0);
    assert_int_equal(r.n, 1); /* duplicates dropped */
    assert_string_equal(r.items[0].text, pub);
    age_recipients_free(&r);

    /* a bad line names the file and the line */
    char *badfile = test_write_file(tmp, "bad.txt", "# c\nage1notakey\n");
    cfg.age_recipients_file = badfile;
    assert_int_equal(age_recipients_load(&cfg, &r, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, "bad.txt line 2"));

    /* nothing configured: no recipients, no error */
    sv_config none = {0};
    sv_error_clear(&err);
    assert_int_equal(age_recipients_load(&none, &r, &err), 0);
    assert_int_equal(r.n, 0);

    age_identities_free(&ids);
    free(body);
    free(file);
    free(badfile);
    free(idpath);
    test_rmtree(tmp);
    free(tmp);
}

/* ---- round trips and damage ------------------------------------------ */

struct keypair {
    age_identities ids;
    age_recipients rs;
};

/* Two fresh identities in one file: ids holds both, rs their recipients. */
static void two_keys(const char *tmp, struct keypair *kp)
{
    /* the two X25519 identities the vectors use */
    const char *keys[] = {VECTOR_IDENTITY,
                          "AGE-SECRET-KEY-143WN7DCXU4G8R5AXQSSYD9AEPYDNT3HXSLWSPK36CDU6E8M59SSSAGZ3KG"};
    char *path = identity_file(tmp, keys, 2);
    sv_error err = {0};
    assert_int_equal(age_identities_load(path, &kp->ids, &err), 0);
    assert_int_equal(kp->ids.n, 2);
    kp->rs.n = 2;
    kp->rs.items = xcalloc(2, sizeof *kp->rs.items);
    kp->rs.items[0] = kp->ids.items[0].recipient;
    kp->rs.items[1] = kp->ids.items[1].recipient;
    unlink(path);
    free(path);
}

static unsigned char *encrypt_pieces(const age_recipients *rs, const unsigned char *data, size_t len,
                                     size_t piece, size_t *out_len)
{
    stream *sink = buffer_sink(SIZE_MAX);
    stream *head = age_encrypt_stage(sink, rs);
    sv_error err = {0};
    for (size_t off = 0; off < len; off += piece)
        assert_int_equal(stream_write(head, data + off, len - off < piece ? len - off : piece, &err), 0);
    assert_int_equal(stream_finish(head, &err), 0);
    size_t n;
    const void *p = buffer_sink_data(sink, &n);
    unsigned char *out = xmalloc(n + 1);
    memcpy(out, p, n);
    *out_len = n;
    stream_free(head);
    return out;
}

static void sha_hex(const unsigned char *data, size_t len, char hex[65])
{
    stream *s = sha256_stage(NULL);
    sv_error err = {0};
    assert_int_equal(stream_write(s, data, len, &err), 0);
    assert_int_equal(stream_finish(s, &err), 0);
    sha256_stage_hex(s, hex);
    stream_free(s);
}

static void test_round_trip(void **state)
{
    (void)state;
    char *tmp = test_tmpdir();
    struct keypair kp;
    two_keys(tmp, &kp);
    size_t sizes[] = {0, 1, AGE_CHUNK - 1, AGE_CHUNK, AGE_CHUNK + 1, 2 * AGE_CHUNK, 3 * AGE_CHUNK + 17};
    unsigned char *data = xmalloc(3 * AGE_CHUNK + 17);
    for (size_t i = 0; i < 3 * AGE_CHUNK + 17; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t len = sizes[s], n;
        unsigned char *ct = encrypt_pieces(&kp.rs, data, len, 1000, &n);
        /* header, nonce, then full chunks plus one last chunk (empty only when len is 0) */
        size_t chunks = len == 0 ? 1 : (len + AGE_CHUNK - 1) / AGE_CHUNK;
        assert_int_equal(n, age_header_size(&kp.rs) + len + chunks * AGE_TAG_LEN);
        char want[65], got[65];
        sha_hex(data, len, want);
        /* each identity alone opens it */
        for (size_t k = 0; k < 2; k++) {
            age_identities one = {.items = &kp.ids.items[k], .n = 1, .origin = "one"};
            sv_error err = {0};
            assert_int_equal(decrypt(ct, n, 7777, &one, got, &err), 0);
            assert_string_equal(got, want);
        }
        free(ct);
    }

    /* two encryptions of the same data differ (fresh file key and nonce) */
    size_t n1, n2;
    unsigned char *a = encrypt_pieces(&kp.rs, data, 100, 100, &n1);
    unsigned char *b = encrypt_pieces(&kp.rs, data, 100, 100, &n2);
    assert_int_equal(n1, n2);
    assert_true(memcmp(a, b, n1) != 0);
    free(a);
    free(b);

    free(data);
    free(kp.rs.items);
    age_identities_free(&kp.ids);
    test_rmtree(tmp);
    free(tmp);
}

static void test_damage_is_refused(void **state)
{
    (void)state;
    char *tmp = test_tmpdir();
    struct keypair kp;
    two_keys(tmp, &kp);
    size_t len = 2 * AGE_CHUNK + 500, n;
    unsigned char *data = xcalloc(1, len);
    unsigned char *ct = encrypt_pieces(&kp.rs, data, len, len, &n);
    size_t hdr = age_header_size(&kp.rs);
    char hex[65];
    sv_error err = {0};

    /* wrong identity: a file for the second key only, opened with the first */
    age_recipients second = {.items = &kp.rs.items[1], .n = 1};
    size_t n2;
    unsigned char *ct2 = encrypt_pieces(&second, data, 10, 10, &n2);
    age_identities first = {.items = &kp.ids.items[0], .n = 1, .origin = "/secrets/age/identity.txt"};
    assert_int_equal(decrypt(ct2, n2, n2, &first, hex, &err), -1);
    assert_non_null(strstr(err.msg, "no identity in /secrets/age/identity.txt"));
    sv_error_clear(&err);
    assert_int_equal(decrypt(ct2, n2, n2, &kp.ids, hex, &err), 0);
    free(ct2);

    /* a flipped bit anywhere: in the header text, the MAC, the nonce, each chunk */
    size_t where[] = {30,       hdr - AGE_NONCE_LEN - 5,           hdr - 3,
                      hdr + 10, hdr + AGE_CHUNK + AGE_TAG_LEN + 1, n - 1};
    const char *marker[] = {"age header",  "age header",  "age payload",
                            "age payload", "age payload", "age payload"};
    for (size_t i = 0; i < sizeof where / sizeof *where; i++) {
        ct[where[i]] ^= 0x10;
        sv_error_clear(&err);
        assert_int_equal(decrypt(ct, n, 4096, &kp.ids, hex, &err), -1);
        if (!strstr(err.msg, marker[i]))
            fail_msg("flip at %zu: %s", where[i], err.msg);
        ct[where[i]] ^= 0x10;
    }

    /* truncated at a chunk boundary: the last chunk is missing */
    sv_error_clear(&err);
    assert_int_equal(decrypt(ct, hdr + AGE_CHUNK + AGE_TAG_LEN, 4096, &kp.ids, hex, &err), -1);
    assert_non_null(strstr(err.msg, "age payload"));
    /* truncated inside the header */
    sv_error_clear(&err);
    assert_int_equal(decrypt(ct, 40, 4096, &kp.ids, hex, &err), -1);
    assert_non_null(strstr(err.msg, "truncated"));
    /* trailing bytes after the last chunk */
    unsigned char *longer = xmalloc(n + 3);
    memcpy(longer, ct, n);
    memcpy(longer + n, "abc", 3);
    sv_error_clear(&err);
    assert_int_equal(decrypt(longer, n + 3, 4096, &kp.ids, hex, &err), -1);
    assert_non_null(strstr(err.msg, "age payload"));
    /* chunks reordered: the first two swapped */
    unsigned char *swapped = xmalloc(n);
    memcpy(swapped, ct, n);
    size_t c = AGE_CHUNK + AGE_TAG_LEN;
    memcpy(swapped + hdr, ct + hdr + c, c);
    memcpy(swapped + hdr + c, ct + hdr, c);
    sv_error_clear(&err);
    assert_int_equal(decrypt(swapped, n, 4096, &kp.ids, hex, &err), -1);
    assert_non_null(strstr(err.msg, "chunk 0 does not authenticate"));
    /* the intact one still opens */
    sv_error_clear(&err);
    assert_int_equal(decrypt(ct, n, 4096, &kp.ids, hex, &err), 0);

    /* an oversized header is refused, not buffered without end */
    size_t big = AGE_HEADER_MAX + 100;
    unsigned char *huge = xmalloc(big);
    memcpy(huge, "age-encryption.org/v1\n-> grease ", 32);
    memset(huge + 32, 'a', big - 32);
    sv_error_clear(&err);
    assert_int_equal(decrypt(huge, big, 65536, &kp.ids, hex, &err), -1);
    assert_non_null(strstr(err.msg, "age header"));

    free(huge);
    free(swapped);
    free(longer);
    free(ct);
    free(data);
    free(kp.rs.items);
    age_identities_free(&kp.ids);
    test_rmtree(tmp);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cctv_vectors),           cmocka_unit_test(test_keys),
        cmocka_unit_test(test_recipients_from_config), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_damage_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
