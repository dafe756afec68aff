/*
 * AWS Signature Version 4 (see sigv4.h for the contract). Written from the
 * AWS documentation ("Create a signed AWS API request") and checked against
 * the AWS signing test suite; OpenSSL provides SHA-256 and HMAC.
 */
#include "storage/s3/sigv4.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/mem.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

/* The longest validity AWS accepts for a presigned URL: seven days. */
#define PRESIGN_MAX_SECONDS 604800L

/* A growable string; every append aborts on OOM like the rest of sauve.
 * Canonical headers and requests carry the session token and the SSE-C key:
 * the buffer never leaves a copy behind when it grows, and whoever frees
 * what it built wipes it (free_secret). */
struct buf {
    char *p;
    size_t len, cap;
};

static void buf_append_n(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        /* Not realloc: the block it gives back would keep the old contents. */
        char *grown = xmalloc(cap);
        if (b->p) {
            memcpy(grown, b->p, b->len);
            explicit_bzero(b->p, b->cap);
            free(b->p);
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_append(struct buf *b, const char *s)
{
    buf_append_n(b, s, strlen(s));
}

static void buf_append_c(struct buf *b, char c)
{
    buf_append_n(b, &c, 1);
}

/* Returns the string (never NULL, "" when nothing was appended); the caller owns it. */
static char *buf_take(struct buf *b)
{
    char *p = b->p ? b->p : xstrdup("");
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

/* OpenSSL only fails here when it cannot allocate: same policy as xmalloc. */
static void crypto_failed(const char *what)
{
    fprintf(stderr, "sauve: %s failed in OpenSSL (out of memory?)\n", what);
    abort();
}

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * len] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        crypto_failed("SHA-256");
    hex_encode(md, 32, out);
}

static void hmac_sha256(const void *key, size_t keylen, const char *data, unsigned char out[32])
{
    unsigned int outlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, strlen(data), out, &outlen) ||
        outlen != 32)
        crypto_failed("HMAC-SHA256");
}

void sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        strcpy(out, "19700101T000000Z"); /* years outside 1000..9999: never a real clock */
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void append_uri_encoded(struct buf *b, const char *s, size_t n, bool encode_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (c == '/' && !encode_slash)) {
            buf_append_c(b, (char)c);
        } else {
            char esc[3] = {'%', digits[c >> 4], digits[c & 0xf]};
            buf_append_n(b, esc, 3);
        }
    }
}

char *sigv4_uri_encode(const char *s, bool encode_slash)
{
    struct buf b = {0};
    append_uri_encoded(&b, s, strlen(s), encode_slash);
    return buf_take(&b);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into a new string. A '%' not followed by two hex
 * digits is kept as is; '+' stays '+' (SigV4 never reads it as a space). */
static char *uri_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 && (lo = hex_value(s[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/*
 * RFC 3986 dot-segment removal, also dropping empty segments ("//" becomes
 * "/"), as the signing suite expects. The result always starts with '/', and
 * ends with '/' when the input did (or ended in "." or "..") and anything
 * is left besides the root.
 */
static char *normalize_path(const char *path)
{
    size_t n = strlen(path);
    const char **seg = xcalloc(n / 2 + 2, sizeof *seg);
    size_t *seglen = xcalloc(n / 2 + 2, sizeof *seglen);
    size_t nseg = 0;
    bool trailing = false;

    for (const char *p = path; *p;) {
        if (*p == '/') {
            p++;
            trailing = true;
            continue;
        }
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 1 && p[0] == '.') {
            trailing = true;
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (nseg > 0)
                nseg--;
            trailing = true;
        } else {
            seg[nseg] = p;
            seglen[nseg] = len;
            nseg++;
            trailing = false;
        }
        p += len;
    }

    struct buf b = {0};
    buf_append_c(&b, '/');
    for (size_t i = 0; i < nseg; i++) {
        if (i > 0)
            buf_append_c(&b, '/');
        buf_append_n(&b, seg[i], seglen[i]);
    }
    if (trailing && nseg > 0)
        buf_append_c(&b, '/');
    free(seg);
    free(seglen);
    return buf_take(&b);
}

static char *canonical_uri(const char *path, bool normalize)
{
    if (!*path)
        return xstrdup("/");
    if (!normalize)
        return xstrdup(path); /* S3: already encoded once by the caller, signed as sent */
    char *norm = normalize_path(path);
    char *enc = sigv4_uri_encode(norm, false);
    free(norm);
    return enc;
}

struct param {
    char *name;  /* encoded */
    char *value; /* encoded */
};

static int param_cmp(const void *a, const void *b)
{
    const struct param *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

struct params {
    struct param *v;
    size_t n, cap;
};

static void params_add_encoded(struct params *ps, char *name, char *value)
{
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 8;
        ps->v = xrealloc(ps->v, ps->cap * sizeof *ps->v);
    }
    ps->v[ps->n].name = name;
    ps->v[ps->n].value = value;
    ps->n++;
}

/* Adds a parameter given unencoded. */
static void params_add(struct params *ps, const char *name, const char *value)
{
    params_add_encoded(ps, sigv4_uri_encode(name, true), sigv4_uri_encode(value, true));
}

/* Adds the parameters of a query as sent: each name and value is decoded,
 * then encoded the SigV4 way, so "%E1%88%B4" and the raw UTF-8 agree. */
static void params_parse(struct params *ps, const char *query)
{
    if (!query)
        return;
    for (const char *p = query; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t nlen = eq ? (size_t)(eq - p) : len;
            char *name = uri_decode(p, nlen);
            char *value = eq ? uri_decode(eq + 1, len - nlen - 1) : xstrdup("");
            params_add(ps, name, value);
            free(name);
            free_secret(value);
        }
        p += len;
        if (*p == '&')
            p++;
    }
}

static char *params_canonical(struct params *ps)
{
    if (ps->n > 1) /* ps->v is NULL when the query is empty */
        qsort(ps->v, ps->n, sizeof *ps->v, param_cmp);
    struct buf b = {0};
    for (size_t i = 0; i < ps->n; i++) {
        if (i > 0)
            buf_append_c(&b, '&');
        buf_append(&b, ps->v[i].name);
        buf_append_c(&b, '=');
        buf_append(&b, ps->v[i].value);
    }
    return buf_take(&b);
}

static void params_free(struct params *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->v[i].name);
        free_secret(ps->v[i].value); /* X-Amz-Security-Token of a presigned request */
    }
    free(ps->v);
}

struct hdr {
    char *name;  /* lowercased */
    char *value; /* trimmed, blanks folded */
    size_t index;
};

static int hdr_cmp(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims the value and folds each inner run of blanks (including the line
 * breaks of an obsolete multi-line value) into one space. */
static char *fold_value(const char *v)
{
    struct buf b = {0};
    bool pending = false;
    for (; *v; v++) {
        if (is_blank(*v)) {
            pending = b.len > 0;
            continue;
        }
        if (pending)
            buf_append_c(&b, ' ');
        pending = false;
        buf_append_c(&b, *v);
    }
    return buf_take(&b);
}

/* Canonical headers ("name:value\n" each) and signed headers ("a;b").
 * Headers of the same name are joined with ',' in the order sent. */
static void canonical_headers(const struct sigv4_header *h, size_t n, char **canon, char **signed_out)
{
    struct hdr *v = xcalloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        v[i].name = xstrdup(h[i].name);
        for (char *c = v[i].name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        v[i].value = fold_value(h[i].value ? h[i].value : "");
        v[i].index = i;
    }
    qsort(v, n, sizeof *v, hdr_cmp);

    struct buf c = {0}, s = {0};
    for (size_t i = 0; i < n; i++) {
        bool same = i > 0 && strcmp(v[i].name, v[i - 1].name) == 0;
        if (same) {
            buf_append_c(&c, ',');
        } else {
            if (i > 0) {
                buf_append_c(&c, '\n');
                buf_append_c(&s, ';');
            }
            buf_append(&c, v[i].name);
            buf_append_c(&c, ':');
            buf_append(&s, v[i].name);
        }
        buf_append(&c, v[i].value);
    }
    if (n > 0)
        buf_append_c(&c, '\n');
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free_secret(v[i].value); /* x-amz-security-token, the SSE-C key */
    }
    free(v);
    *canon = buf_take(&c);
    *signed_out = buf_take(&s);
}

static bool missing(const char *s)
{
    return !s || !*s;
}

static bool valid_amz_date(const char *d)
{
    if (missing(d) || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return false;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return false;
    return true;
}

static bool valid_input(const struct sigv4_request *req, const struct sigv4_key *key, const char *amz_date)
{
    if (!req || !key || !valid_amz_date(amz_date))
        return false;
    if (missing(req->method) || !req->path || missing(req->payload_hash) || (req->nheaders && !req->headers))
        return false;
    for (size_t i = 0; i < req->nheaders; i++)
        if (missing(req->headers[i].name))
            return false;
    return !missing(key->access_key_id) && !missing(key->secret_access_key) && !missing(key->region) &&
           !missing(key->service);
}

/* "20150830/us-east-1/s3/aws4_request"; newly allocated. */
static char *credential_scope(const struct sigv4_key *key, const char *amz_date)
{
    return xasprintf("%.8s/%s/%s/aws4_request", amz_date, key->region, key->service);
}

/*
 * Builds the canonical request from a canonical query, then the string to
 * sign and the signature, into out (canonical_request, string_to_sign,
 * signed_headers, signature).
 */
static void sign_with_query(const struct sigv4_request *req, const struct sigv4_key *key,
                            const char *amz_date, const char *canon_query, const char *canon_hdrs,
                            char *signed_hdrs, struct sigv4_result *out)
{
    char *uri = canonical_uri(req->path, req->normalize_path);
    out->canonical_request = xasprintf("%s\n%s\n%s\n%s\n%s\n%s", req->method, uri, canon_query, canon_hdrs,
                                       signed_hdrs, req->payload_hash);
    out->signed_headers = signed_hdrs;
    free(uri);

    char creq_hash[65];
    sigv4_sha256_hex(out->canonical_request, strlen(out->canonical_request), creq_hash);
    char *scope = credential_scope(key, amz_date);
    out->string_to_sign = xasprintf(ALGORITHM "\n%s\n%s\n%s", amz_date, scope, creq_hash);
    free(scope);

    /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
    char *secret = xasprintf("AWS4%s", key->secret_access_key);
    char date[9];
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    unsigned char k1[32], k2[32], sig[32];
    hmac_sha256(secret, strlen(secret), date, k1);
    free_secret(secret);
    hmac_sha256(k1, sizeof k1, key->region, k2);
    hmac_sha256(k2, sizeof k2, key->service, k1);
    hmac_sha256(k1, sizeof k1, "aws4_request", k2);
    hmac_sha256(k2, sizeof k2, out->string_to_sign, sig);
    OPENSSL_cleanse(k1, sizeof k1);
    OPENSSL_cleanse(k2, sizeof k2);
    hex_encode(sig, sizeof sig, out->signature);
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_key *key, const char *amz_date,
               struct sigv4_result *out)
{
    memset(out, 0, sizeof *out);
    if (!valid_input(req, key, amz_date))
        return -1;

    struct params ps = {0};
    params_parse(&ps, req->query);
    char *canon_query = params_canonical(&ps);
    params_free(&ps);

    char *canon_hdrs, *signed_hdrs;
    canonical_headers(req->headers, req->nheaders, &canon_hdrs, &signed_hdrs);
    sign_with_query(req, key, amz_date, canon_query, canon_hdrs, signed_hdrs, out);
    free_secret(canon_query);
    free_secret(canon_hdrs);

    char *scope = credential_scope(key, amz_date);
    out->authorization = xasprintf(ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                                   key->access_key_id, scope, out->signed_headers, out->signature);
    free(scope);
    return 0;
}

/*
 * Besides the contract in sigv4.h: expires_seconds must be 1..604800 (what
 * AWS accepts), else -1; out->authorization stays NULL (a presigned request
 * carries no Authorization header). The query returned keeps the request's
 * own parameters as sent, first, then the X-Amz-* ones in the order the AWS
 * SDKs send them.
 */
int sigv4_presign(const struct sigv4_request *req, const struct sigv4_key *key, const char *amz_date,
                  long expires_seconds, const char *session_token, char **query_out, struct sigv4_result *out)
{
    memset(out, 0, sizeof *out);
    *query_out = NULL;
    if (!valid_input(req, key, amz_date) || expires_seconds < 1 || expires_seconds > PRESIGN_MAX_SECONDS)
        return -1;

    char *canon_hdrs, *signed_hdrs;
    canonical_headers(req->headers, req->nheaders, &canon_hdrs, &signed_hdrs);

    char *scope = credential_scope(key, amz_date);
    char *credential = xasprintf("%s/%s", key->access_key_id, scope);
    free(scope);
    char expires[24];
    snprintf(expires, sizeof expires, "%ld", expires_seconds);
    bool token = session_token && *session_token;

    struct params ps = {0};
    params_parse(&ps, req->query);
    params_add(&ps, "X-Amz-Algorithm", ALGORITHM);
    params_add(&ps, "X-Amz-Credential", credential);
    params_add(&ps, "X-Amz-Date", amz_date);
    params_add(&ps, "X-Amz-Expires", expires);
    if (token)
        params_add(&ps, "X-Amz-Security-Token", session_token);
    params_add(&ps, "X-Amz-SignedHeaders", signed_hdrs);
    char *canon_query = params_canonical(&ps);
    params_free(&ps);

    sign_with_query(req, key, amz_date, canon_query, canon_hdrs, signed_hdrs, out);
    free_secret(canon_query);
    free_secret(canon_hdrs);

    struct buf q = {0};
    if (req->query && *req->query) {
        buf_append(&q, req->query);
        buf_append_c(&q, '&');
    }
    buf_append(&q, "X-Amz-Algorithm=" ALGORITHM "&X-Amz-Credential=");
    append_uri_encoded(&q, credential, strlen(credential), true);
    buf_append(&q, "&X-Amz-Date=");
    buf_append(&q, amz_date);
    buf_append(&q, "&X-Amz-SignedHeaders=");
    append_uri_encoded(&q, out->signed_headers, strlen(out->signed_headers), true);
    buf_append(&q, "&X-Amz-Expires=");
    buf_append(&q, expires);
    if (token) {
        buf_append(&q, "&X-Amz-Security-Token=");
        append_uri_encoded(&q, session_token, strlen(session_token), true);
    }
    buf_append(&q, "&X-Amz-Signature=");
    buf_append(&q, out->signature);
    *query_out = buf_take(&q);
    free(credential);
    return 0;
}

void sigv4_result_free(struct sigv4_result *r)
{
    if (!r)
        return;
    /* The canonical request holds every signed header's value (the session
     * token, the SSE-C key); the Authorization value can be replayed for
     * the same request until it expires. */
    free_secret(r->authorization);
    free(r->signed_headers);
    free_secret(r->canonical_request);
    free(r->string_to_sign);
    explicit_bzero(r->signature, sizeof r->signature);
    memset(r, 0, sizeof *r);
}
