/* The age v1 format on OpenSSL: keys, header, STREAM. See age.h. */
#include "crypto/age.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "common/mem.h"

#define INTRO        "age-encryption.org/v1\n"
#define X25519_LABEL "age-encryption.org/v1/X25519"
#define SHARE_B64    43 /* unpadded base64 of 32 bytes */
#define BODY_LINE    64
#define LINE_MAX_LEN 4096

/* ---- bech32 (BIP 173), the text form of age keys -------------------- */

static const char BECH32[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t bech32_polymod(const unsigned char *v, size_t n)
{
    static const uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
    uint32_t chk = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t top = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ v[i];
        for (int j = 0; j < 5; j++)
            if ((top >> j) & 1)
                chk ^= gen[j];
    }
    return chk;
}

/* hrp expanded, then data (5-bit values), then room for the checksum */
static size_t bech32_values(const char *hrp, const unsigned char *data, size_t n, unsigned char *v)
{
    size_t h = strlen(hrp), k = 0;
    for (size_t i = 0; i < h; i++)
        v[k++] = (unsigned char)tolower((unsigned char)hrp[i]) >> 5;
    v[k++] = 0;
    for (size_t i = 0; i < h; i++)
        v[k++] = (unsigned char)tolower((unsigned char)hrp[i]) & 31;
    memcpy(v + k, data, n);
    return k + n;
}

/* 32 bytes as bech32 with hrp; upper-cased when upper (identities). */
static void bech32_encode(const char *hrp, const unsigned char key[AGE_KEY_LEN], bool upper, char *out,
                          size_t cap)
{
    unsigned char data[64], v[128];
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < AGE_KEY_LEN; i++) {
        acc = (acc << 8) | key[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            data[n++] = (acc >> bits) & 31;
        }
    }
    if (bits)
        data[n++] = (acc << (5 - bits)) & 31;
    size_t k = bech32_values(hrp, data, n, v);
    memset(v + k, 0, 6);
    uint32_t mod = bech32_polymod(v, k + 6) ^ 1;
    size_t o = 0;
    for (size_t i = 0; hrp[i] && o + 1 < cap; i++)
        out[o++] = upper ? (char)toupper((unsigned char)hrp[i]) : hrp[i];
    if (o + 1 < cap)
        out[o++] = '1';
    for (size_t i = 0; i < n + 6 && o + 1 < cap; i++) {
        unsigned d = i < n ? data[i] : (mod >> (5 * (5 - (i - n)))) & 31;
        out[o++] = upper ? (char)toupper((unsigned char)BECH32[d]) : BECH32[d];
    }
    out[o] = '\0';
}

/* Decodes a bech32 string whose hrp is want_hrp (case-insensitively) into
 * exactly 32 bytes. Mixed case, a wrong checksum or non-zero padding fail. */
static bool bech32_decode(const char *s, const char *want_hrp, unsigned char key[AGE_KEY_LEN])
{
    size_t len = strlen(s);
    bool lower = false, upper = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 33 || c > 126)
            return false;
        lower |= islower(c) != 0;
        upper |= isupper(c) != 0;
    }
    const char *sep = strrchr(s, '1');
    size_t hrp_len = strlen(want_hrp);
    if ((lower && upper) || !sep || (size_t)(sep - s) != hrp_len || strncasecmp(s, want_hrp, hrp_len) != 0)
        return false;
    size_t n = len - hrp_len - 1;
    if (n < 6 || n > 64)
        return false;
    unsigned char data[64], v[128];
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(BECH32, tolower((unsigned char)sep[1 + i]));
        if (!p || !*p)
            return false;
        data[i] = (unsigned char)(p - BECH32);
    }
    size_t k = bech32_values(want_hrp, data, n, v);
    if (bech32_polymod(v, k) != 1)
        return false;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n - 6; i++) {
        acc = (acc << 5) | data[i];
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (o == AGE_KEY_LEN)
                return false;
            key[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o == AGE_KEY_LEN && bits < 5 && (acc & ((1u << bits) - 1)) == 0;
}

/* ---- unpadded, canonical base64 (the header's encoding) ------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = B64[(v >> 18) & 63];
        out[o++] = B64[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = B64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = B64[v & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

/* Decodes n characters into out (cap bytes); -1 on any character outside
 * the alphabet (padding included), an impossible length, or unused bits
 * that are not zero (two encodings of one value would let a header be
 * altered without changing what it says). */
static long b64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1))
        return -1;
    return (long)o;
}

/* ---- primitives ------------------------------------------------------ */

static int crypto_error(sv_error *err, const char *what)
{
    return sv_error_set(err, SV_EXIT_FAILED, "OpenSSL failed to %s", what);
}

static int hkdf_sha256(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt, size_t salt_len,
                       const char *info, unsigned char out[AGE_KEY_LEN], sv_error *err)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[5];
    size_t n = 0;
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    /* OpenSSL refuses an empty salt; HKDF defines it as HashLen zeros */
    static const unsigned char zero_salt[32];
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, (void *)(salt_len ? salt : zero_salt), salt_len ? salt_len : sizeof zero_salt);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    params[n] = OSSL_PARAM_construct_end();
    int ok = ctx && EVP_KDF_derive(ctx, out, AGE_KEY_LEN, params) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok ? 0 : crypto_error(err, "derive a key (HKDF-SHA-256)");
}

/* One-shot ChaCha20-Poly1305 with a zero nonce, as X25519 stanzas use it.
 * seal: in is n plaintext bytes, out n + 16; open: in is n sealed bytes,
 * out n - 16. Returns 0, or 1 when the tag does not verify. */
static int aead_zero_nonce(bool seal, const unsigned char key[AGE_KEY_LEN], const unsigned char *in, size_t n,
                           unsigned char *out, sv_error *err)
{
    static const unsigned char nonce[12];
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, rc = -1;
    size_t body = seal ? n : n - AGE_TAG_LEN;
    if (!ctx || EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, nonce, seal ? 1 : 0) != 1)
        goto out;
    if (!seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, AGE_TAG_LEN, (void *)(in + body)) != 1)
        goto out;
    if (EVP_CipherUpdate(ctx, out, &len, in, (int)body) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + len, &len) != 1) {
        rc = seal ? -1 : 1;
        goto out;
    }
    if (seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, AGE_TAG_LEN, out + body) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (rc < 0)
        return crypto_error(err, "run ChaCha20-Poly1305");
    return rc;
}

static EVP_PKEY *x25519_key(const unsigned char raw[AGE_KEY_LEN], bool secret)
{
    return secret ? EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, raw, AGE_KEY_LEN)
                  : EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, raw, AGE_KEY_LEN);
}

/* X25519(secret, peer). Returns 1 when the result is all zeros (a
 * low-order or identity point: the spec refuses it), 0 on success. */
static int x25519(EVP_PKEY *secret, const unsigned char peer_raw[AGE_KEY_LEN], unsigned char out[AGE_KEY_LEN],
                  sv_error *err)
{
    EVP_PKEY *peer = x25519_key(peer_raw, false);
    EVP_PKEY_CTX *ctx = peer ? EVP_PKEY_CTX_new(secret, NULL) : NULL;
    size_t len = AGE_KEY_LEN;
    int rc = 0;
    if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peer) != 1)
        rc = crypto_error(err, "load an X25519 key");
    else if (EVP_PKEY_derive(ctx, out, &len) != 1 || len != AGE_KEY_LEN)
        rc = 1; /* OpenSSL refuses the all-zero result itself */
    if (rc == 0) {
        unsigned char acc = 0;
        for (size_t i = 0; i < AGE_KEY_LEN; i++)
            acc |= out[i];
        rc = acc == 0;
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    return rc;
}

/* ---- keys ------------------------------------------------------------ */

int age_parse_recipient(const char *text, const char *what, age_recipient *r, sv_error *err)
{
    if (strncasecmp(text, "AGE-SECRET-KEY-", 15) == 0) {
        sv_error_set(err, SV_EXIT_CONFIG, "%s holds an age identity (a secret key), not a recipient", what);
        return sv_error_hint(err, "give its public key instead (age-keygen -y FILE prints it): the backup "
                                  "Job must never hold an identity");
    }
    /* bech32 puts the human-readable part before the last '1' and has no
     * '1' in its alphabet: "age1pq1..." (ML-KEM) and "ssh-..." fail here */
    if (!bech32_decode(text, "age", r->pub)) {
        sv_error_set(err, SV_EXIT_CONFIG, "%s: not an age X25519 recipient", what);
        return sv_error_hint(err, "a recipient is the public key age-keygen prints, \"age1\" followed by 58 "
                                  "characters; SSH and post-quantum recipients are not supported");
    }
    bech32_encode("age", r->pub, false, r->text, sizeof r->text);
    return 0;
}

static void add_recipient(age_recipients *out, const age_recipient *r)
{
    for (size_t i = 0; i < out->n; i++)
        if (memcmp(out->items[i].pub, r->pub, AGE_KEY_LEN) == 0)
            return;
    out->items = xrealloc(out->items, (out->n + 1) * sizeof *out->items);
    out->items[out->n++] = *r;
}

/* Calls each(line, lineno, ctx) for every line of path that is neither
 * blank nor a comment, with surrounding blanks removed. The buffer is wiped
 * afterwards: an identity file's lines are secret. */
static int each_key_line(const char *path, const char *setting,
                         int (*each)(char *line, int lineno, void *ctx, sv_error *err), void *ctx,
                         sv_error *err)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        return sv_error_set(err, SV_EXIT_CONFIG, "%s: cannot open %s: %s", setting, path, strerror(e));
    }
    char line[LINE_MAX_LEN];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            rc = sv_error_set(err, SV_EXIT_CONFIG, "%s: %s line %d is too long", setting, path, lineno);
            break;
        }
        while (len && isspace((unsigned char)line[len - 1]))
            line[--len] = '\0';
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p && *p != '#')
            rc = each(p, lineno, ctx, err);
    }
    if (rc == 0 && ferror(f))
        rc = sv_error_set(err, SV_EXIT_CONFIG, "%s: cannot read %s", setting, path);
    OPENSSL_cleanse(line, sizeof line);
    fclose(f);
    return rc;
}

struct recipients_file {
    age_recipients *out;
    const char *path;
};

static int recipient_line(char *line, int lineno, void *ctx, sv_error *err)
{
    struct recipients_file *rf = ctx;
    char *what = xasprintf("SAUVE_AGE_RECIPIENTS_FILE %s line %d", rf->path, lineno);
    age_recipient r;
    int rc = age_parse_recipient(line, what, &r, err);
    free(what);
    if (rc == 0)
        add_recipient(rf->out, &r);
    return rc;
}

int age_recipients_load(const sv_config *cfg, age_recipients *out, sv_error *err)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < cfg->age_recipients.n; i++) {
        char *what = xasprintf("SAUVE_AGE_RECIPIENTS item %zu", i + 1);
        age_recipient r;
        int rc = age_parse_recipient(cfg->age_recipients.items[i], what, &r, err);
        free(what);
        if (rc != 0) {
            age_recipients_free(out);
            return -1;
        }
        add_recipient(out, &r);
    }
    if (cfg->age_recipients_file && *cfg->age_recipients_file) {
        size_t before = out->n;
        struct recipients_file rf = {out, cfg->age_recipients_file};
        if (each_key_line(cfg->age_recipients_file, "SAUVE_AGE_RECIPIENTS_FILE", recipient_line, &rf, err) !=
            0) {
            age_recipients_free(out);
            return -1;
        }
        if (out->n == before && cfg->age_recipients.n == 0) {
            age_recipients_free(out);
            return sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_AGE_RECIPIENTS_FILE %s holds no recipient",
                                cfg->age_recipients_file);
        }
    }
    return 0;
}

void age_recipients_free(age_recipients *r)
{
    free(r->items);
    memset(r, 0, sizeof *r);
}

static int identity_line(char *line, int lineno, void *ctx, sv_error *err)
{
    age_identities *ids = ctx;
    age_identity id;
    if (!bech32_decode(line, "age-secret-key-", id.secret)) {
        OPENSSL_cleanse(&id, sizeof id);
        sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_AGE_IDENTITY_FILE %s line %d is not an age identity",
                     ids->origin, lineno);
        return sv_error_hint(err, "the file age-keygen writes: AGE-SECRET-KEY-1... lines, '#' comments; "
                                  "passphrase-protected and SSH identities are not supported");
    }
    EVP_PKEY *k = x25519_key(id.secret, true);
    size_t len = AGE_KEY_LEN;
    int ok = k && EVP_PKEY_get_raw_public_key(k, id.recipient.pub, &len) == 1;
    EVP_PKEY_free(k);
    if (!ok) {
        OPENSSL_cleanse(&id, sizeof id);
        return crypto_error(err, "derive the public key of an identity");
    }
    bech32_encode("age", id.recipient.pub, false, id.recipient.text, sizeof id.recipient.text);
    ids->items = xrealloc(ids->items, (ids->n + 1) * sizeof *ids->items);
    ids->items[ids->n++] = id;
    OPENSSL_cleanse(&id, sizeof id);
    return 0;
}

int age_identities_load(const char *path, age_identities *out, sv_error *err)
{
    memset(out, 0, sizeof *out);
    out->origin = xstrdup(path);
    if (each_key_line(path, "SAUVE_AGE_IDENTITY_FILE", identity_line, out, err) != 0) {
        age_identities_free(out);
        return -1;
    }
    if (out->n == 0) {
        sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_AGE_IDENTITY_FILE %s holds no identity", path);
        age_identities_free(out);
        return -1;
    }
    return 0;
}

void age_identities_free(age_identities *ids)
{
    if (ids->items)
        OPENSSL_cleanse(ids->items, ids->n * sizeof *ids->items);
    free(ids->items);
    free(ids->origin);
    memset(ids, 0, sizeof *ids);
}

bool age_identities_open_any(const age_identities *ids, char *const *recipients, size_t n)
{
    for (size_t i = 0; i < ids->n; i++)
        for (size_t j = 0; j < n; j++)
            if (strcmp(ids->items[i].recipient.text, recipients[j]) == 0)
                return true;
    return false;
}

/* ---- header: writing ------------------------------------------------- */

size_t age_header_size(const age_recipients *r)
{
    /* "-> X25519 " share "\n" body "\n" per recipient; "--- " mac "\n" */
    return strlen(INTRO) + r->n * (10 + SHARE_B64 + 1 + SHARE_B64 + 1) + 4 + SHARE_B64 + 1 + AGE_NONCE_LEN;
}

/* The stanza wrapping file_key for recipient r, appended at out. */
static long x25519_stanza(const age_recipient *r, const unsigned char file_key[AGE_FILE_KEY_LEN], char *out,
                          sv_error *err)
{
    EVP_PKEY *eph = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    unsigned char share[AGE_KEY_LEN], shared[AGE_KEY_LEN], salt[2 * AGE_KEY_LEN], wrap[AGE_KEY_LEN];
    unsigned char body[AGE_FILE_KEY_LEN + AGE_TAG_LEN];
    size_t len = AGE_KEY_LEN;
    long n = -1;
    if (!eph || EVP_PKEY_get_raw_public_key(eph, share, &len) != 1) {
        crypto_error(err, "make an X25519 key");
        goto out;
    }
    int x = x25519(eph, r->pub, shared, err);
    if (x != 0) {
        if (x == 1)
            sv_error_set(err, SV_EXIT_CONFIG, "age recipient %s is not a usable X25519 public key", r->text);
        goto out;
    }
    memcpy(salt, share, AGE_KEY_LEN);
    memcpy(salt + AGE_KEY_LEN, r->pub, AGE_KEY_LEN);
    if (hkdf_sha256(shared, sizeof shared, salt, sizeof salt, X25519_LABEL, wrap, err) != 0 ||
        aead_zero_nonce(true, wrap, file_key, AGE_FILE_KEY_LEN, body, err) != 0)
        goto out;
    n = sprintf(out, "-> X25519 ");
    n += (long)b64_encode(share, sizeof share, out + n);
    out[n++] = '\n';
    n += (long)b64_encode(body, sizeof body, out + n);
    out[n++] = '\n';
out:
    OPENSSL_cleanse(shared, sizeof shared);
    OPENSSL_cleanse(wrap, sizeof wrap);
    EVP_PKEY_free(eph);
    return n;
}

/* HMAC-SHA-256 of the header up to and including "---", keyed from the
 * file key. */
static int header_mac(const unsigned char file_key[AGE_FILE_KEY_LEN], const unsigned char *header, size_t len,
                      unsigned char mac[32], sv_error *err)
{
    unsigned char key[AGE_KEY_LEN];
    unsigned int mac_len = 0;
    int rc = hkdf_sha256(file_key, AGE_FILE_KEY_LEN, NULL, 0, "header", key, err);
    if (rc == 0 && !HMAC(EVP_sha256(), key, sizeof key, header, len, mac, &mac_len))
        rc = crypto_error(err, "compute the header MAC");
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

long age_header_write(const age_recipients *r, unsigned char *out, unsigned char payload_key[AGE_KEY_LEN],
                      sv_error *err)
{
    unsigned char file_key[AGE_FILE_KEY_LEN], mac[32];
    char *p = (char *)out;
    long n = -1;
    if (RAND_bytes(file_key, sizeof file_key) != 1) {
        crypto_error(err, "draw a random file key");
        goto out;
    }
    size_t len = (size_t)sprintf(p, INTRO);
    for (size_t i = 0; i < r->n; i++) {
        long s = x25519_stanza(&r->items[i], file_key, p + len, err);
        if (s < 0)
            goto out;
        len += (size_t)s;
    }
    len += (size_t)sprintf(p + len, "---");
    if (header_mac(file_key, out, len, mac, err) != 0)
        goto out;
    p[len++] = ' ';
    len += b64_encode(mac, sizeof mac, p + len);
    p[len++] = '\n';
    if (RAND_bytes(out + len, AGE_NONCE_LEN) != 1) {
        crypto_error(err, "draw a random nonce");
        goto out;
    }
    if (hkdf_sha256(file_key, sizeof file_key, out + len, AGE_NONCE_LEN, "payload", payload_key, err) != 0)
        goto out;
    n = (long)(len + AGE_NONCE_LEN);
out:
    OPENSSL_cleanse(file_key, sizeof file_key);
    return n;
}

/* ---- header: reading ------------------------------------------------- */

#define MAX_ARGS 8

struct stanza {
    const char *args[MAX_ARGS]; /* NUL-terminated copies inside the parse buffer */
    int nargs;
    unsigned char *body;
    size_t body_len;
};

static int header_failure(sv_error *err, const char *why)
{
    return sv_error_set(err, SV_EXIT_FAILED, "age header: %s (not an age v1 file, or a damaged one)", why);
}

static bool vchar_args(const char *line, size_t len)
{
    /* "-> " then arguments of VCHAR separated by single spaces, none empty */
    if (len <= 3)
        return false;
    for (size_t i = 3; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == ' ' ? (i == 3 || line[i - 1] == ' ' || i + 1 == len) : (c < 33 || c > 126))
            return false;
    }
    return true;
}

/* Tries identity id on an X25519 stanza: 0 and file_key set when it opens,
 * 1 when it is for someone else, -1 when the stanza is malformed. */
static int x25519_unwrap(const struct stanza *st, const age_identity *id,
                         unsigned char file_key[AGE_FILE_KEY_LEN], sv_error *err)
{
    unsigned char share[AGE_KEY_LEN + 1], shared[AGE_KEY_LEN], salt[2 * AGE_KEY_LEN], wrap[AGE_KEY_LEN];
    if (st->nargs != 2)
        return header_failure(err, "an X25519 stanza must have exactly one argument");
    if (strlen(st->args[1]) != SHARE_B64 ||
        b64_decode(st->args[1], SHARE_B64, share, sizeof share) != AGE_KEY_LEN)
        return header_failure(err, "an X25519 share is not 32 bytes of canonical base64");
    if (st->body_len != AGE_FILE_KEY_LEN + AGE_TAG_LEN)
        return header_failure(err, "an X25519 stanza does not wrap a 16-byte file key");
    EVP_PKEY *k = x25519_key(id->secret, true);
    if (!k)
        return crypto_error(err, "load an X25519 identity");
    int x = x25519(k, share, shared, err);
    EVP_PKEY_free(k);
    int rc;
    if (x != 0) {
        rc = x < 0 ? -1 : header_failure(err, "an X25519 share is a low-order point");
        goto out;
    }
    memcpy(salt, share, AGE_KEY_LEN);
    memcpy(salt + AGE_KEY_LEN, id->recipient.pub, AGE_KEY_LEN);
    if (hkdf_sha256(shared, sizeof shared, salt, sizeof salt, X25519_LABEL, wrap, err) != 0) {
        rc = -1;
        goto out;
    }
    rc = aead_zero_nonce(false, wrap, st->body, st->body_len, file_key, err);
out:
    OPENSSL_cleanse(shared, sizeof shared);
    OPENSSL_cleanse(wrap, sizeof wrap);
    return rc;
}

/* The header's stanzas parsed from a private copy `text` (len bytes, ending
 * in the MAC line); *mac_at is the offset of the " " after "---". */
static int parse_stanzas(char *text, size_t len, struct stanza **out, size_t *n_out, size_t *mac_at,
                         unsigned char mac[32], sv_error *err)
{
    struct stanza *st = NULL;
    size_t n = 0;
    char *p = text + strlen(INTRO);
    char *end = text + len;
    int rc = -1;
    for (;;) {
        char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        if (!nl) {
            header_failure(err, "the header has no MAC line");
            goto out;
        }
        size_t ll = (size_t)(nl - p);
        if (ll >= 3 && memcmp(p, "---", 3) == 0) {
            if (ll != 4 + SHARE_B64 || p[3] != ' ' || b64_decode(p + 4, SHARE_B64, mac, 32) != 32) {
                header_failure(err, "the MAC line is malformed");
                goto out;
            }
            *mac_at = (size_t)(p + 3 - text);
            break;
        }
        if (ll < 3 || memcmp(p, "-> ", 3) != 0 || !vchar_args(p, ll)) {
            header_failure(err, "a line is neither a stanza nor the MAC line");
            goto out;
        }
        st = xrealloc(st, (n + 1) * sizeof *st);
        struct stanza *s = &st[n++];
        memset(s, 0, sizeof *s);
        *nl = '\0';
        for (char *a = strtok(p + 3, " "); a; a = strtok(NULL, " ")) {
            if (s->nargs == MAX_ARGS) {
                header_failure(err, "a stanza has too many arguments");
                goto out;
            }
            s->args[s->nargs++] = a;
        }
        /* Body: full 64-column lines, ended by one shorter line (maybe empty). */
        char *body_start = nl + 1;
        char *q = body_start;
        size_t chars = 0;
        for (;;) {
            char *bl = q < end ? memchr(q, '\n', (size_t)(end - q)) : NULL;
            if (!bl) {
                header_failure(err, "a stanza's body does not end");
                goto out;
            }
            size_t bll = (size_t)(bl - q);
            if (bll > BODY_LINE) {
                header_failure(err, "a stanza's body line is longer than 64 columns");
                goto out;
            }
            /* compact the base64 in place, dropping the newlines */
            memmove(body_start + chars, q, bll);
            chars += bll;
            q = bl + 1;
            if (bll < BODY_LINE)
                break;
        }
        s->body = (unsigned char *)body_start; /* decoded in place: never longer than the text */
        long b = b64_decode(body_start, chars, s->body, chars);
        if (b < 0) {
            header_failure(err, "a stanza's body is not canonical base64");
            goto out;
        }
        s->body_len = (size_t)b;
        p = q;
    }
    *out = st;
    *n_out = n;
    st = NULL;
    rc = 0;
out:
    free(st);
    return rc;
}

/* Where the header ends: the offset just past the MAC line's newline, 0 when
 * it is not complete yet, -1 when what arrived cannot start an age header. */
static long header_end(const unsigned char *buf, size_t len, sv_error *err)
{
    size_t intro = strlen(INTRO);
    size_t cmp = len < intro ? len : intro;
    if (memcmp(buf, INTRO, cmp) != 0) {
        if (len >= 19 && memcmp(buf, "age-encryption.org/", 19) == 0 && memchr(buf, '\n', len))
            return header_failure(err, "unsupported version line");
        if (len >= 34 && memcmp(buf, "-----BEGIN AGE ENCRYPTED FILE-----", 34) == 0)
            return header_failure(err, "ASCII-armored files are not supported");
        if (cmp == len && len < intro && memcmp(buf, INTRO, len) == 0)
            return 0;
        return header_failure(err, "the file does not start with age-encryption.org/v1");
    }
    /* A "---" can only start a line in the MAC line: stanza lines start with
     * "-> " and base64 has no '-'. */
    for (size_t i = intro; i + 3 <= len; i++) {
        if (buf[i - 1] == '\n' && memcmp(buf + i, "---", 3) == 0) {
            const unsigned char *nl = memchr(buf + i, '\n', len - i);
            if (!nl)
                break;
            return (long)(nl - buf + 1);
        }
    }
    if (len > AGE_HEADER_MAX)
        return header_failure(err, "longer than 256 KiB");
    return 0;
}

int age_header_read(const unsigned char *buf, size_t len, const age_identities *ids, size_t *consumed,
                    unsigned char payload_key[AGE_KEY_LEN], sv_error *err)
{
    long hend = header_end(buf, len, err);
    if (hend <= 0)
        return hend < 0 ? -1 : 1;
    if (hend > AGE_HEADER_MAX)
        return header_failure(err, "longer than 256 KiB");
    if ((size_t)hend + AGE_NONCE_LEN > len)
        return 1;
    size_t hlen = (size_t)hend;
    char *text = xmalloc(hlen + 1);
    memcpy(text, buf, hlen);
    text[hlen] = '\0';
    struct stanza *st = NULL;
    size_t n = 0, mac_at = 0;
    unsigned char mac[32], want[32], file_key[AGE_FILE_KEY_LEN];
    int rc = -1;
    if (memchr(text, '\0', hlen)) {
        header_failure(err, "a NUL byte in the header");
        goto out;
    }
    if (parse_stanzas(text, hlen, &st, &n, &mac_at, mac, err) != 0)
        goto out;
    bool has_x25519 = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(st[i].args[0], "scrypt") == 0 && n > 1) {
            header_failure(err, "an scrypt stanza must be alone in the header");
            goto out;
        }
        has_x25519 |= strcmp(st[i].args[0], "X25519") == 0;
    }
    int opened = 1;
    for (size_t i = 0; i < n && opened == 1; i++) {
        if (strcmp(st[i].args[0], "X25519") != 0)
            continue; /* another kind of recipient, or grease */
        for (size_t j = 0; j < ids->n && opened == 1; j++)
            opened = x25519_unwrap(&st[i], &ids->items[j], file_key, err);
        if (opened < 0)
            goto out;
    }
    if (opened != 0) {
        if (n == 1 && strcmp(st[0].args[0], "scrypt") == 0)
            sv_error_set(err, SV_EXIT_FAILED,
                         "no identity can open this file: it is passphrase-encrypted "
                         "(scrypt), which sauve does not read");
        else
            sv_error_set(err, SV_EXIT_FAILED,
                         "no identity in %s opens this file (%zu recipient stanza(s), %s)",
                         ids->origin ? ids->origin : "the identity file", n,
                         has_x25519 ? "X25519 ones for other keys" : "none of them X25519");
        goto out;
    }
    /* the MAC covers the header up to and including "---" */
    if (header_mac(file_key, buf, mac_at, want, err) != 0)
        goto out;
    if (CRYPTO_memcmp(mac, want, sizeof mac) != 0) {
        sv_error_set(err, SV_EXIT_FAILED, "age header MAC mismatch: the header was altered");
        goto out;
    }
    if (hkdf_sha256(file_key, sizeof file_key, buf + hlen, AGE_NONCE_LEN, "payload", payload_key, err) != 0)
        goto out;
    *consumed = hlen + AGE_NONCE_LEN;
    rc = 0;
out:
    OPENSSL_cleanse(file_key, sizeof file_key);
    free(st);
    free(text);
    return rc;
}

/* ---- payload --------------------------------------------------------- */

struct age_stream {
    EVP_CIPHER_CTX *ctx;
    unsigned char key[AGE_KEY_LEN];
    uint64_t counter;
    bool done; /* the last chunk went through: nothing may follow */
};

age_stream *age_stream_new(const unsigned char payload_key[AGE_KEY_LEN])
{
    age_stream *s = xcalloc(1, sizeof *s);
    memcpy(s->key, payload_key, AGE_KEY_LEN);
    s->ctx = EVP_CIPHER_CTX_new();
    if (!s->ctx)
        abort(); /* out of memory, as everywhere else */
    return s;
}

/* nonce: 11-byte big-endian chunk counter, then 1 for the last chunk */
static void chunk_nonce(uint64_t counter, bool last, unsigned char nonce[12])
{
    memset(nonce, 0, 12);
    for (int i = 0; i < 8; i++)
        nonce[10 - i] = (unsigned char)(counter >> (8 * i));
    nonce[11] = last ? 1 : 0;
}

static int chunk_cipher(age_stream *s, bool seal, const unsigned char *in, size_t n, bool last,
                        unsigned char *out, sv_error *err)
{
    if (s->done)
        return sv_error_set(err, SV_EXIT_FAILED, "age payload: data after the last chunk");
    unsigned char nonce[12];
    chunk_nonce(s->counter, last, nonce);
    int len = 0;
    size_t body = seal ? n : n - AGE_TAG_LEN;
    if (EVP_CipherInit_ex(s->ctx, EVP_chacha20_poly1305(), NULL, s->key, nonce, seal ? 1 : 0) != 1 ||
        (!seal &&
         EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_SET_TAG, AGE_TAG_LEN, (void *)(in + body)) != 1) ||
        EVP_CipherUpdate(s->ctx, out, &len, in, (int)body) != 1)
        return crypto_error(err, "run ChaCha20-Poly1305");
    if (EVP_CipherFinal_ex(s->ctx, out + len, &len) != 1) {
        if (seal)
            return crypto_error(err, "run ChaCha20-Poly1305");
        OPENSSL_cleanse(out, body);
        return sv_error_set(
            err, SV_EXIT_FAILED,
            "age payload: chunk %llu does not authenticate%s (damaged, truncated or reordered "
            "ciphertext)",
            (unsigned long long)s->counter, last ? " as the last one" : "");
    }
    if (seal && EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_GET_TAG, AGE_TAG_LEN, out + body) != 1)
        return crypto_error(err, "run ChaCha20-Poly1305");
    s->counter++;
    s->done = last;
    return 0;
}

int age_stream_seal(age_stream *s, const unsigned char *in, size_t n, bool last, unsigned char *out,
                    sv_error *err)
{
    return chunk_cipher(s, true, in, n, last, out, err);
}

int age_stream_open(age_stream *s, const unsigned char *in, size_t n, bool last, unsigned char *out,
                    sv_error *err)
{
    if (n < AGE_TAG_LEN || n > AGE_CHUNK + AGE_TAG_LEN)
        return sv_error_set(err, SV_EXIT_FAILED, "age payload: a chunk of %zu bytes is impossible", n);
    return chunk_cipher(s, false, in, n, last, out, err);
}

void age_stream_free(age_stream *s)
{
    if (!s)
        return;
    EVP_CIPHER_CTX_free(s->ctx);
    OPENSSL_cleanse(s->key, sizeof s->key);
    free(s);
}
