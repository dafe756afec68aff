/* SHA-256 of the bytes passing through, read back after finish. */
#include "pipeline/stream.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

struct sha256_stage {
    stream base;
    EVP_MD_CTX *md;
    char hex[65];
};

static int sha_write(stream *s, const void *buf, size_t len, sv_error *err)
{
    struct sha256_stage *h = (struct sha256_stage *)s;
    if (EVP_DigestUpdate(h->md, buf, len) != 1)
        return sv_error_set(err, SV_EXIT_FAILED, "sha256: digest update failed");
    return s->next ? stream_write(s->next, buf, len, err) : 0;
}

static int sha_finish(stream *s, sv_error *err)
{
    struct sha256_stage *h = (struct sha256_stage *)s;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(h->md, digest, &n) != 1 || n != 32)
        return sv_error_set(err, SV_EXIT_FAILED, "sha256: digest finalisation failed");
    for (unsigned int i = 0; i < n; i++)
        snprintf(h->hex + 2 * i, 3, "%02x", digest[i]);
    return s->next ? stream_finish(s->next, err) : 0;
}

static void sha_abort(stream *s)
{
    stream_abort(s->next);
}

static void sha_destroy(stream *s)
{
    struct sha256_stage *h = (struct sha256_stage *)s;
    EVP_MD_CTX_free(h->md);
    free(h);
}

static const struct stream_ops sha_ops = {sha_write, sha_finish, sha_abort, sha_destroy};

stream *sha256_stage(stream *next)
{
    struct sha256_stage *h = xcalloc(1, sizeof *h);
    h->base = (stream){.ops = &sha_ops, .next = next, .name = "sha256"};
    h->md = EVP_MD_CTX_new();
    /* Only fails when OpenSSL cannot allocate, which the memory policy treats as fatal. */
    if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1)
        abort();
    return &h->base;
}

void sha256_stage_hex(const stream *s, char out[65])
{
    const struct sha256_stage *h = (const struct sha256_stage *)s;
    memcpy(out, h->hex, 65);
}
