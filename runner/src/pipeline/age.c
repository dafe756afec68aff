/* age encryption and decryption as stages: one chunk in flight each. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/mem.h"
#include "crypto/age.h"
#include "pipeline/stream.h"

/* ---- encrypt --------------------------------------------------------- */

struct age_enc {
    stream base;
    unsigned char *header; /* written before the first chunk, then freed */
    size_t header_len;
    sv_error header_err; /* why the header could not be made */
    age_stream *chunks;
    unsigned char plain[AGE_CHUNK];
    size_t held;
    unsigned char sealed[AGE_CHUNK + AGE_TAG_LEN];
};

static int enc_header(struct age_enc *e, sv_error *err)
{
    if (!e->chunks) {
        *err = e->header_err;
        return -1;
    }
    if (!e->header)
        return 0;
    int rc = stream_write(e->base.next, e->header, e->header_len, err);
    free(e->header);
    e->header = NULL;
    return rc;
}

static int enc_seal(struct age_enc *e, bool last, sv_error *err)
{
    if (age_stream_seal(e->chunks, e->plain, e->held, last, e->sealed, err) != 0)
        return -1;
    size_t n = e->held + AGE_TAG_LEN;
    e->held = 0;
    return stream_write(e->base.next, e->sealed, n, err);
}

static int enc_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct age_enc *e = (struct age_enc *)s;
    const unsigned char *p = buf;
    if (enc_header(e, err) != 0)
        return -1;
    while (len > 0) {
        /* A full chunk is sealed only once more data shows it is not the
         * last: the last chunk carries its own flag. */
        if (e->held == AGE_CHUNK && enc_seal(e, false, err) != 0)
            return -1;
        size_t take = AGE_CHUNK - e->held < len ? AGE_CHUNK - e->held : len;
        memcpy(e->plain + e->held, p, take);
        e->held += take;
        p += take;
        len -= take;
    }
    return 0;
}

static int enc_finish(stream *s, sv_error *err)
{
    struct age_enc *e = (struct age_enc *)s;
    /* an empty payload is one empty last chunk */
    if (enc_header(e, err) != 0 || enc_seal(e, true, err) != 0)
        return -1;
    return stream_finish(s->next, err);
}

static void enc_abort(stream *s)
{
    stream_abort(s->next);
}

static void enc_destroy(stream *s)
{
    struct age_enc *e = (struct age_enc *)s;
    age_stream_free(e->chunks);
    free(e->header);
    OPENSSL_cleanse(e->plain, sizeof e->plain);
    free(e);
}

static const struct stream_ops enc_ops = {enc_write, enc_finish, enc_abort, enc_destroy};

stream *age_encrypt_stage(stream *next, const age_recipients *r)
{
    struct age_enc *e = xcalloc(1, sizeof *e);
    e->base = (stream){.ops = &enc_ops, .next = next, .name = "age-encrypt"};
    e->header = xmalloc(age_header_size(r));
    unsigned char key[AGE_KEY_LEN];
    long n = age_header_write(r, e->header, key, &e->header_err);
    if (n >= 0) {
        e->header_len = (size_t)n;
        e->chunks = age_stream_new(key);
    }
    OPENSSL_cleanse(key, sizeof key);
    return &e->base;
}

/* ---- decrypt --------------------------------------------------------- */

struct age_dec {
    stream base;
    const age_identities *ids;
    unsigned char *header; /* bytes of the header and nonce gathered so far */
    size_t header_len;
    age_stream *chunks; /* NULL until the header opened */
    uint64_t n_chunks;
    unsigned char sealed[AGE_CHUNK + AGE_TAG_LEN];
    size_t held;
    unsigned char plain[AGE_CHUNK];
};

static int dec_open(struct age_dec *d, bool last, sv_error *err)
{
    if (last && d->held == AGE_TAG_LEN && d->n_chunks > 0)
        return sv_error_set(err, SV_EXIT_FAILED,
                            "age payload: an empty last chunk after %llu others (only an empty file has one)",
                            (unsigned long long)d->n_chunks);
    if (age_stream_open(d->chunks, d->sealed, d->held, last, d->plain, err) != 0)
        return -1;
    size_t n = d->held - AGE_TAG_LEN;
    d->held = 0;
    d->n_chunks++;
    int rc = stream_write(d->base.next, d->plain, n, err);
    OPENSSL_cleanse(d->plain, n);
    return rc;
}

/* Gathers header bytes from p; on success *used says how many of len were
 * taken (the rest is payload). */
static int dec_header(struct age_dec *d, const unsigned char *p, size_t len, size_t *used, sv_error *err)
{
    size_t room = AGE_HEADER_MAX + AGE_NONCE_LEN + 1 - d->header_len;
    size_t take = len < room ? len : room;
    if (!d->header)
        d->header = xmalloc(AGE_HEADER_MAX + AGE_NONCE_LEN + 1);
    memcpy(d->header + d->header_len, p, take);
    d->header_len += take;
    size_t consumed = 0;
    unsigned char key[AGE_KEY_LEN];
    int rc = age_header_read(d->header, d->header_len, d->ids, &consumed, key, err);
    if (rc != 0) {
        *used = take;
        return rc;
    }
    d->chunks = age_stream_new(key);
    OPENSSL_cleanse(key, sizeof key);
    /* what came after the nonce is payload: hand it back */
    *used = take - (d->header_len - consumed);
    free(d->header);
    d->header = NULL;
    return 0;
}

static int dec_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct age_dec *d = (struct age_dec *)s;
    const unsigned char *p = buf;
    if (!d->chunks) {
        size_t used = 0;
        int rc = dec_header(d, p, len, &used, err);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
        p += used;
        len -= used;
    }
    while (len > 0) {
        /* A full sealed chunk is opened as "not last" only once more data
         * follows it; at the end it must open as the last one. */
        if (d->held == sizeof d->sealed && dec_open(d, false, err) != 0)
            return -1;
        size_t take = sizeof d->sealed - d->held < len ? sizeof d->sealed - d->held : len;
        memcpy(d->sealed + d->held, p, take);
        d->held += take;
        p += take;
        len -= take;
    }
    return 0;
}

static int dec_finish(stream *s, sv_error *err)
{
    struct age_dec *d = (struct age_dec *)s;
    if (!d->chunks) {
        if (d->header_len == 0)
            return sv_error_set(err, SV_EXIT_FAILED, "age header: the file is empty");
        return sv_error_set(err, SV_EXIT_FAILED,
                            "age header: the file ends inside the header or its nonce (truncated)");
    }
    if (d->held == 0)
        return sv_error_set(err, SV_EXIT_FAILED,
                            d->n_chunks ? "age payload: the last chunk is missing (truncated ciphertext)"
                                        : "age payload: no chunk at all (truncated ciphertext)");
    if (d->held < AGE_TAG_LEN)
        return sv_error_set(err, SV_EXIT_FAILED, "age payload: a chunk of %zu bytes is shorter than its tag",
                            d->held);
    if (dec_open(d, true, err) != 0)
        return -1;
    return stream_finish(s->next, err);
}

static void dec_abort(stream *s)
{
    stream_abort(s->next);
}

static void dec_destroy(stream *s)
{
    struct age_dec *d = (struct age_dec *)s;
    age_stream_free(d->chunks);
    free(d->header);
    free(d);
}

static const struct stream_ops dec_ops = {dec_write, dec_finish, dec_abort, dec_destroy};

stream *age_decrypt_stage(stream *next, const age_identities *ids)
{
    struct age_dec *d = xcalloc(1, sizeof *d);
    d->base = (stream){.ops = &dec_ops, .next = next, .name = "age-decrypt"};
    d->ids = ids;
    return &d->base;
}
