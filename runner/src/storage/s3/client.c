/*
 * The S3 request engine of client.h: one libcurl easy handle per conn,
 * SigV4 on every attempt (fresh date, fresh credentials), answers classified
 * into success, retry and failure, and the backoff between attempts.
 */
#include "storage/s3/client.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "storage/s3/xml.h"

#define CONNECT_TIMEOUT_S 10
#define RETRY_BASE_MS     200
#define RETRY_CAP_MS      20000
#define RETRY_BUDGET_S    600
#define CLEANUP_TIMEOUT_S 10L
#define CLEANUP_ATTEMPTS  2
/* A collected answer (listing page, error, DeleteResult) is an XML document
 * of at most S3_XML_MAX bytes (xml.h says why 8 MiB): reading stops there,
 * so a hostile or broken store cannot make sauve hold more. */
#define BODY_MAX          S3_XML_MAX
#define TRANSFER_BUF      (256 * 1024)
#define EMPTY_SHA256      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define UNSIGNED_PAYLOAD  "UNSIGNED-PAYLOAD"
#define MAX_EXTRA_HEADERS 16

/* ---- addressing ------------------------------------------------------ */

static bool bucket_char_ok(char c)
{
    /* Lowercase, digits, '.', '-' are today's rule; uppercase and '_' exist
     * in old us-east-1 buckets and in some S3-compatible stores. */
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

int s3_parse_storage_url(const char *url, char **bucket, char **prefix, sv_error *err)
{
    *bucket = *prefix = NULL;
    if (!url || strncmp(url, "s3://", 5) != 0)
        return sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_STORAGE: '%s' is not an s3:// URL", url ? url : "");
    const char *b = url + 5;
    size_t blen = strcspn(b, "/");
    if (blen == 0) {
        sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_STORAGE: '%s' names no bucket", url);
        return sv_error_hint(err, "use s3://bucket or s3://bucket/prefix");
    }
    for (size_t i = 0; i < blen; i++)
        if (!bucket_char_ok(b[i])) {
            sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_STORAGE: '%.*s' is not a valid bucket name", (int)blen,
                         b);
            return sv_error_hint(err, "bucket names have letters, digits, '.' and '-' only");
        }
    if (blen > 255)
        return sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_STORAGE: the bucket name is too long");

    const char *p = b + blen;
    while (*p == '/')
        p++;
    size_t plen = strlen(p);
    while (plen > 0 && p[plen - 1] == '/')
        plen--;
    for (size_t i = 0; i + 1 < plen; i++)
        if (p[i] == '/' && p[i + 1] == '/')
            return sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_STORAGE: '%s' has an empty path segment", url);
    for (size_t i = 0; i < plen; i++)
        if (p[i] == '?' || p[i] == '#' || (unsigned char)p[i] < 0x20)
            return sv_error_set(err, SV_EXIT_CONFIG,
                                "SAUVE_STORAGE: '%s' has a character not allowed in a prefix", url);
    /* "." and ".." segments: HTTP clients and servers resolve them, so the
     * keys would not be where the URL says. */
    for (size_t i = 0; i < plen;) {
        size_t seg = strcspn(p + i, "/");
        if (seg > plen - i)
            seg = plen - i;
        if ((seg == 1 && p[i] == '.') || (seg == 2 && p[i] == '.' && p[i + 1] == '.')) {
            sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_STORAGE: '%s' has a '%.*s' path segment", url, (int)seg,
                         p + i);
            return sv_error_hint(err, "write the prefix without '.' or '..' segments");
        }
        i += seg + 1;
    }
    *bucket = xstrndup(b, blen);
    *prefix = plen ? xasprintf("%.*s/", (int)plen, p) : xstrdup("");
    return 0;
}

int s3_endpoint_parse(const char *url, const char *what, struct s3_endpoint *out, sv_error *err)
{
    *out = (struct s3_endpoint){0};
    const char *rest;
    if (strncasecmp(url, "https://", 8) == 0) {
        out->https = true;
        rest = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else {
        sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s' is not an http:// or https:// URL", what, url);
        return sv_error_hint(err, "e.g. https://s3.eu-west-3.amazonaws.com or http://minio:9000");
    }
    size_t auth = strcspn(rest, "/?#");
    if (rest[auth] == '?' || rest[auth] == '#' || memchr(rest, '@', auth))
        return sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s': an endpoint has no query, fragment or user", what,
                            url);
    const char *host = rest, *port = NULL;
    size_t hlen;
    if (*host == '[') {
        const char *close = memchr(host, ']', auth);
        if (!close)
            return sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s' has an unterminated IPv6 address", what, url);
        hlen = (size_t)(close - host) + 1;
        if (hlen < auth) {
            if (host[hlen] != ':')
                return sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s' is not a valid URL", what, url);
            port = host + hlen + 1;
        }
    } else {
        const char *colon = memchr(host, ':', auth);
        hlen = colon ? (size_t)(colon - host) : auth;
        if (colon)
            port = colon + 1;
    }
    if (hlen == 0)
        return sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s' names no host", what, url);
    if (port) {
        size_t plen = (size_t)(rest + auth - port);
        long v = 0;
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i]) || v > 65535)
                return sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s' has an invalid port", what, url);
            v = v * 10 + (port[i] - '0');
        }
        if (plen == 0 || v < 1 || v > 65535)
            return sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s' has an invalid port", what, url);
        out->port = (int)v;
    }
    out->host = xstrndup(host, hlen);
    for (char *c = out->host; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    const char *path = rest + auth;
    size_t plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    out->base_path = xstrndup(path, plen);
    return 0;
}

void s3_endpoint_free(struct s3_endpoint *e)
{
    free(e->host);
    free(e->base_path);
    *e = (struct s3_endpoint){0};
}

static bool host_is_ip(const char *host)
{
    if (host[0] == '[')
        return true;
    for (const char *c = host; *c; c++)
        if (!isdigit((unsigned char)*c) && *c != '.')
            return false;
    return true;
}

bool s3_bucket_virtual_ok(const char *bucket, bool https)
{
    size_t n = strlen(bucket);
    if (n < 3 || n > 63 || bucket[0] == '-' || bucket[n - 1] == '-')
        return false;
    for (const char *c = bucket; *c; c++) {
        if (*c == '.' && https)
            return false;
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-' || *c == '.'))
            return false;
    }
    return true;
}

void s3_address(const struct s3_endpoint *ep, const char *bucket, bool path_style, const char *key,
                const char *query, char **url_out, char **host_out, char **path_out)
{
    bool use_path = path_style || host_is_ip(ep->host) || !s3_bucket_virtual_ok(bucket, ep->https);
    bool default_port = ep->port == 0 || ep->port == (ep->https ? 443 : 80);
    char port[16] = "";
    if (!default_port)
        snprintf(port, sizeof port, ":%d", ep->port);
    *host_out = use_path ? xasprintf("%s%s", ep->host, port) : xasprintf("%s.%s%s", bucket, ep->host, port);
    char *ekey = sigv4_uri_encode(key ? key : "", false);
    if (use_path)
        *path_out = *ekey ? xasprintf("%s/%s/%s", ep->base_path, bucket, ekey)
                          : xasprintf("%s/%s", ep->base_path, bucket);
    else
        *path_out = xasprintf("%s/%s", ep->base_path, ekey);
    free(ekey);
    bool q = query && *query;
    *url_out = xasprintf("%s://%s%s%s%s", ep->https ? "https" : "http", *host_out, *path_out, q ? "?" : "",
                         q ? query : "");
}

/* ---- retry policy ---------------------------------------------------- */

static bool code_is(const char *code, const char *name)
{
    return code && strcmp(code, name) == 0;
}

bool s3_curl_transient(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY: return true;
    default: return false;
    }
}

bool s3_retryable(int curl_code, long status, const char *code)
{
    if (curl_code != CURLE_OK)
        return s3_curl_transient(curl_code);
    if (code_is(code, "SlowDown") || code_is(code, "RequestTimeout") || code_is(code, "InternalError") ||
        code_is(code, "ServiceUnavailable") || code_is(code, "TooManyRequests"))
        return true;
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

long s3_backoff_ms(int attempt, double rand01)
{
    long cap = RETRY_BASE_MS;
    for (int i = 1; i < attempt && cap < RETRY_CAP_MS; i++)
        cap *= 2;
    if (cap > RETRY_CAP_MS)
        cap = RETRY_CAP_MS;
    if (rand01 < 0)
        rand01 = 0;
    if (rand01 >= 1)
        rand01 = 0.999999;
    return (long)(rand01 * (double)cap);
}

/* ---- multipart schedule ---------------------------------------------- */

/*
 * The schedule: the configured size for the first 900 parts, then double
 * every 900 parts, never above S3's 5 GiB. With the default 16 MiB, the
 * first 14 GiB go in 16 MiB parts, the next 28 GiB in 32 MiB parts, and so
 * on; even from the minimum 5 MiB, 10,000 parts hold 8.8 TiB, more than S3's
 * 5 TiB object limit. Growing in steps (not from the start) keeps the parts
 * of the common, smaller stream at the size the operator chose.
 */
uint64_t s3_part_size(uint64_t base, int number)
{
    if (base < S3_MIN_PART_SIZE)
        base = S3_MIN_PART_SIZE;
    if (base > S3_MAX_PART_SIZE)
        base = S3_MAX_PART_SIZE;
    int steps = number > 0 ? (number - 1) / S3_PARTS_PER_STEP : 0;
    uint64_t size = base;
    for (int i = 0; i < steps && size < S3_MAX_PART_SIZE; i++)
        size *= 2;
    return size > S3_MAX_PART_SIZE ? S3_MAX_PART_SIZE : size;
}

/*
 * Memory: parallel x base while parts have their base size. Once they grow,
 * the number of parts in flight shrinks so that parallel x base still
 * bounds memory, down to two (one uploading while the next fills); from then
 * on memory is 2 x part size, which with the defaults happens only past
 * 42 GiB of compressed stream (64 MiB parts: 128 MiB).
 */
int s3_parts_in_flight(int parallel, uint64_t base, uint64_t size)
{
    if (parallel < 1)
        parallel = 1;
    int floor = parallel < 2 ? parallel : 2;
    uint64_t n = size ? ((uint64_t)parallel * base) / size : (uint64_t)parallel;
    if (n > (uint64_t)parallel)
        n = (uint64_t)parallel;
    return n < (uint64_t)floor ? floor : (int)n;
}

/* ---- the client ------------------------------------------------------ */

struct s3_client {
    char *bucket;
    struct s3_endpoint ep;
    char *endpoint_url;
    char *region;
    bool path_style;
    char *ca_bundle;
    long timeout_s;
    int max_attempts;
    long retry_budget_s;
    s3_cred_provider *creds;

    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

    pthread_mutex_t pool_mu;
    s3_conn **pool;
    size_t npool, cappool;
};

struct s3_conn {
    s3_client *client;
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    /* The transfer in progress. */
    const struct s3_request *req;
    struct s3_response *resp;
    size_t sent;
    bool sink_failed;
    bool body_overflow;
    size_t body_cap;
    sv_error sink_err;
    char bucket_region[64];
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userp)
{
    (void)h;
    (void)access;
    s3_client *c = userp;
    pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userp)
{
    (void)h;
    s3_client *c = userp;
    pthread_mutex_unlock(&c->share_locks[data]);
}

s3_client *s3_client_new(const struct s3_client_options *o)
{
    s3_client *c = xcalloc(1, sizeof *c);
    c->bucket = xstrdup(o->bucket);
    c->ep.https = o->endpoint->https;
    c->ep.host = xstrdup(o->endpoint->host);
    c->ep.port = o->endpoint->port;
    c->ep.base_path = xstrdup(o->endpoint->base_path);
    c->endpoint_url = xstrdup(o->endpoint_url);
    c->region = xstrdup(o->region);
    c->path_style = o->path_style;
    c->ca_bundle = o->ca_bundle ? xstrdup(o->ca_bundle) : NULL;
    c->timeout_s = o->timeout_s > 0 ? o->timeout_s : 60;
    c->max_attempts = o->max_attempts > 0 ? o->max_attempts : 1;
    c->retry_budget_s = o->retry_budget_s > 0 ? o->retry_budget_s : RETRY_BUDGET_S;
    c->creds = o->creds;
    pthread_mutex_init(&c->pool_mu, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_locks[i], NULL);
    /* DNS answers and TLS sessions shared between the conns: a new worker's
     * first request skips the lookup and the full handshake. */
    c->share = curl_share_init();
    if (c->share) {
        curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
        curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
        curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    }
    return c;
}

void s3_client_free(s3_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->npool; i++) {
        curl_easy_cleanup(c->pool[i]->curl);
        free(c->pool[i]);
    }
    free(c->pool);
    if (c->share)
        curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_locks[i]);
    pthread_mutex_destroy(&c->pool_mu);
    free(c->bucket);
    s3_endpoint_free(&c->ep);
    free(c->endpoint_url);
    free(c->region);
    free(c->ca_bundle);
    free(c);
}

const char *s3_client_bucket(const s3_client *c)
{
    return c->bucket;
}

const char *s3_client_endpoint_url(const s3_client *c)
{
    return c->endpoint_url;
}

bool s3_client_https(const s3_client *c)
{
    return c->ep.https;
}

s3_conn *s3_conn_acquire(s3_client *c)
{
    pthread_mutex_lock(&c->pool_mu);
    s3_conn *conn = c->npool ? c->pool[--c->npool] : NULL;
    pthread_mutex_unlock(&c->pool_mu);
    if (conn)
        return conn;
    conn = xcalloc(1, sizeof *conn);
    conn->client = c;
    conn->curl = curl_easy_init();
    if (!conn->curl)
        abort(); /* only fails out of memory: the policy of common/mem.h */
    return conn;
}

void s3_conn_release(s3_conn *conn)
{
    if (!conn)
        return;
    s3_client *c = conn->client;
    pthread_mutex_lock(&c->pool_mu);
    if (c->npool == c->cappool) {
        c->cappool = c->cappool ? 2 * c->cappool : 8;
        c->pool = xrealloc(c->pool, c->cappool * sizeof *c->pool);
    }
    c->pool[c->npool++] = conn;
    pthread_mutex_unlock(&c->pool_mu);
}

/* ---- helpers --------------------------------------------------------- */

char *s3_base64(const void *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

void s3_content_md5(const void *data, size_t len, char out[25])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
        abort(); /* MD5 unavailable (a FIPS-only OpenSSL): S3 requires it for uploads */
    EVP_EncodeBlock((unsigned char *)out, md, 16);
}

void s3_response_reset(struct s3_response *r)
{
    free(r->body);
    *r = (struct s3_response){0};
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- curl callbacks -------------------------------------------------- */

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userp)
{
    s3_conn *conn = userp;
    size_t left = conn->req->body_len - conn->sent;
    size_t n = size * nitems < left ? size * nitems : left;
    if (n) {
        memcpy(buf, (const char *)conn->req->body + conn->sent, n);
        conn->sent += n;
    }
    return n;
}

static int seek_cb(void *userp, curl_off_t offset, int origin)
{
    s3_conn *conn = userp;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > conn->req->body_len)
        return CURL_SEEKFUNC_FAIL;
    conn->sent = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static void body_append(s3_conn *conn, const char *data, size_t n)
{
    struct s3_response *r = conn->resp;
    if (r->body_len + n > BODY_MAX) {
        conn->body_overflow = true;
        return;
    }
    if (r->body_len + n + 1 > conn->body_cap) {
        size_t cap = conn->body_cap ? conn->body_cap : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        r->body = xrealloc(r->body, cap);
        conn->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    s3_conn *conn = userp;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(conn->curl, CURLINFO_RESPONSE_CODE, &status);
    conn->resp->status = status; /* on_data may look (a resumed GET wants 206) */
    if (status >= 200 && status < 300 && conn->req->on_data) {
        if (conn->req->on_data(conn->req->ctx, data, n, &conn->sink_err) < 0) {
            conn->sink_failed = true;
            return 0; /* stops the transfer: CURLE_WRITE_ERROR */
        }
        return n;
    }
    body_append(conn, data, n);
    if (conn->body_overflow)
        return 0;
    return n;
}

static void header_value(const char *line, size_t n, size_t namelen, char *out, size_t cap)
{
    const char *v = line + namelen;
    size_t vn = n - namelen;
    while (vn && (*v == ' ' || *v == '\t')) {
        v++;
        vn--;
    }
    while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
        vn--;
    if (vn >= cap)
        vn = cap - 1;
    memcpy(out, v, vn);
    out[vn] = '\0';
}

static bool header_is(const char *line, size_t n, const char *name)
{
    size_t len = strlen(name);
    return n > len && strncasecmp(line, name, len) == 0;
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *userp)
{
    s3_conn *conn = userp;
    struct s3_response *r = conn->resp;
    size_t n = size * nitems;
    char tmp[128];
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new answer (after "100 Continue"): forget the previous headers. */
        r->etag[0] = '\0';
        r->last_modified = 0;
        r->has_length = false;
        r->content_range[0] = '\0';
    } else if (header_is(line, n, "etag:")) {
        header_value(line, n, 5, r->etag, sizeof r->etag);
    } else if (header_is(line, n, "last-modified:")) {
        header_value(line, n, 14, tmp, sizeof tmp);
        time_t t = curl_getdate(tmp, NULL);
        r->last_modified = t > 0 ? (int64_t)t : 0;
    } else if (header_is(line, n, "content-length:")) {
        header_value(line, n, 15, tmp, sizeof tmp);
        char *end = NULL;
        unsigned long long v = strtoull(tmp, &end, 10);
        if (end && end != tmp && *end == '\0') {
            r->content_length = v;
            r->has_length = true;
        }
    } else if (header_is(line, n, "content-range:")) {
        header_value(line, n, 14, r->content_range, sizeof r->content_range);
    } else if (header_is(line, n, "x-amz-bucket-region:")) {
        header_value(line, n, 20, conn->bucket_region, sizeof conn->bucket_region);
    }
    return n;
}

static int xferinfo_cb(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    s3_conn *conn = userp;
    if (signals_stop_requested() && !conn->req->cleanup)
        return 1;
    if (conn->req->cancel && atomic_load(conn->req->cancel))
        return 1;
    return 0;
}

/* ---- errors ---------------------------------------------------------- */

/* A code for answers without an <Error> body (HEAD, proxies). */
static const char *status_code_name(long status)
{
    switch (status) {
    case 301: return "PermanentRedirect";
    case 307: return "TemporaryRedirect";
    case 400: return "BadRequest";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 412: return "PreconditionFailed";
    case 416: return "InvalidRange";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    default: return "";
    }
}

static bool is_config_code(const char *code)
{
    static const char *const codes[] = {
        "NoSuchBucket",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
        "Forbidden",
        "AuthorizationHeaderMalformed",
        "PermanentRedirect",
        "TemporaryRedirect",
        "InvalidBucketName",
        "RequestTimeTooSkewed",
        "InvalidToken",
        "ExpiredToken",
        "InvalidStorageClass",
        "KMS.NotFoundException",
        "KMS.DisabledException",
        "InvalidEncryptionAlgorithmError",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidRegion",
    };
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

static int http_exit_code(long status, const char *code)
{
    if (status >= 500 || status == 429 || strcmp(code, "SlowDown") == 0 ||
        strcmp(code, "RequestTimeout") == 0 || strcmp(code, "TooManyRequests") == 0)
        return SV_EXIT_TEMPFAIL;
    if (is_config_code(code) || status == 301 || status == 403)
        return SV_EXIT_CONFIG;
    return SV_EXIT_FAILED;
}

static int transport_exit_code(CURLcode cc)
{
    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return SV_EXIT_CONFIG;
    default: return SV_EXIT_TEMPFAIL;
    }
}

/* "s3 PutObject s3://bucket/key (part 3) at ENDPOINT: " then fmt. The
 * whole text goes to sv_error_set uncut: it masks secrets before it cuts,
 * so a secret in a store's message cannot leak its first part at the cut. */
static int set_error(s3_conn *conn, int code, sv_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_error(s3_conn *conn, int code, sv_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = xvasprintf(fmt, ap);
    va_end(ap);
    const struct s3_request *req = conn->req;
    const s3_client *c = conn->client;
    const char *subject = req->subject ? req->subject : req->key ? req->key : "";
    int rc = sv_error_set(err, code, "s3 %s s3://%s/%s%s%s%s at %s: %s", req->op, c->bucket, subject,
                          req->detail ? " (" : "", req->detail ? req->detail : "", req->detail ? ")" : "",
                          c->endpoint_url, what);
    free_secret(what);
    return rc;
}

static void add_hint(s3_conn *conn, const char *code, long status, sv_error *err)
{
    const s3_client *c = conn->client;
    if (strcmp(code, "NoSuchBucket") == 0) {
        sv_error_hint(err,
                      "bucket %s does not exist at %s: create it, or correct SAUVE_STORAGE; for an "
                      "S3-compatible store check AWS_ENDPOINT_URL_S3 and SAUVE_S3_PATH_STYLE",
                      c->bucket, c->endpoint_url);
    } else if (strcmp(code, "SignatureDoesNotMatch") == 0) {
        sv_error_hint(err,
                      "check AWS_SECRET_ACCESS_KEY (or its _FILE), the region (AWS_REGION, now %s), this "
                      "machine's clock, and SAUVE_S3_PATH_STYLE for an S3-compatible store",
                      c->region);
    } else if (strcmp(code, "InvalidAccessKeyId") == 0) {
        sv_error_hint(err, "check AWS_ACCESS_KEY_ID (or its _FILE): %s does not know this key",
                      c->endpoint_url);
    } else if (strcmp(code, "AccessDenied") == 0 || strcmp(code, "Forbidden") == 0 ||
               strcmp(code, "AllAccessDisabled") == 0) {
        sv_error_hint(err,
                      "the credentials (%s) are refused on bucket %s: sauve needs s3:ListBucket, "
                      "s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucketMultipartUploads and "
                      "s3:AbortMultipartUpload (and kms:GenerateDataKey, kms:Decrypt with SSE-KMS)",
                      c->creds ? s3_credentials_describe(c->creds) : "none", c->bucket);
    } else if (strcmp(code, "AuthorizationHeaderMalformed") == 0 || strcmp(code, "PermanentRedirect") == 0 ||
               strcmp(code, "InvalidRegion") == 0 || status == 301) {
        if (conn->bucket_region[0])
            sv_error_hint(err, "bucket %s is in region %s: set AWS_REGION=%s (now %s)", c->bucket,
                          conn->bucket_region, conn->bucket_region, c->region);
        else
            sv_error_hint(err,
                          "set AWS_REGION to the bucket's region (now %s), or correct AWS_ENDPOINT_URL_S3",
                          c->region);
    } else if (strcmp(code, "RequestTimeTooSkewed") == 0) {
        sv_error_hint(err,
                      "this machine's clock differs from the store's by more than 15 minutes: fix its time");
    } else if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "InvalidToken") == 0) {
        sv_error_hint(err, "the session token (AWS_SESSION_TOKEN) is expired or invalid");
    }
}

/* host: the host name actually contacted (the bucket in front when
 * virtual-hosted), with the port when not the default. */
static void add_transport_hint(s3_conn *conn, CURLcode cc, const char *host, sv_error *err)
{
    const s3_client *c = conn->client;
    /* Path style contacts the endpoint's own host; virtual-hosted "bucket.host". */
    bool virtual_host = strncmp(host, c->ep.host, strlen(c->ep.host)) != 0;
    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        sv_error_hint(err,
                      "the certificate of %s is not trusted: set SAUVE_S3_CA_BUNDLE to the PEM file of "
                      "its certificate authority",
                      c->endpoint_url);
        break;
    case CURLE_SSL_CACERT_BADFILE:
        sv_error_hint(err, "SAUVE_S3_CA_BUNDLE (or AWS_CA_BUNDLE) must name a readable PEM file");
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        if (virtual_host) {
            sv_error_hint(err,
                          "%s (the bucket's virtual-hosted name at %s) does not resolve: check "
                          "AWS_ENDPOINT_URL_S3 and the DNS, or set SAUVE_S3_PATH_STYLE=true for a store "
                          "without a DNS name per bucket",
                          host, c->endpoint_url);
            break;
        }
        /* fall through */
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
        sv_error_hint(err,
                      "check that %s is the store's address (AWS_ENDPOINT_URL_S3) and is reachable from "
                      "here (DNS, network policy, firewall)",
                      c->endpoint_url);
        break;
    default: break;
    }
}

/* ---- one attempt ----------------------------------------------------- */

static struct curl_slist *add_header(struct curl_slist *list, const char *name, const char *value)
{
    char *line = xasprintf("%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(list, line);
    /* The line may carry a secret (Authorization, SSE-C key): wipe our copy. */
    free_secret(line);
    if (!l)
        abort();
    return l;
}

/* A 2xx answer whose document is an <Error> (with or without a namespace
 * or prefix, after any prolog): the root element tells, not the bytes. */
void s3_slist_wipe(struct curl_slist *list)
{
    for (struct curl_slist *l = list; l; l = l->next)
        if (l->data)
            explicit_bzero(l->data, strlen(l->data));
}

static bool is_error_document(const char *body, size_t len)
{
    char root[64];
    return s3_xml_root_name(body, len, root, sizeof root) == 0 && strcmp(root, "Error") == 0;
}

static void setup_transfer(s3_conn *conn, const struct s3_request *req, const char *url,
                           struct curl_slist *headers)
{
    s3_client *c = conn->client;
    CURL *h = conn->curl;
    /* reset keeps the live connections, the DNS and TLS session caches. */
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    /* The path goes out as signed: no squashing of "/./" or "/../". */
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    /* A stall (under 1 byte/s for timeout_s) ends the attempt; a slow but
     * moving transfer of a large part does not. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                     req->cleanup && c->timeout_s > CLEANUP_TIMEOUT_S ? CLEANUP_TIMEOUT_S : c->timeout_s);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)TRANSFER_BUF);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, (long)TRANSFER_BUF);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sauve/" SAUVE_VERSION);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, conn->errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    /* TLS verification stays on (libcurl's default); only the CA file may change. */
    if (c->ca_bundle)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_bundle);
    if (c->share)
        curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, conn);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, conn);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, conn);

    if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, conn);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, conn);
        if (strcmp(req->method, "POST") == 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
    } else if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        if (strcmp(req->method, "GET") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    }
}

enum s3_outcome s3_attempt(s3_conn *conn, const struct s3_request *req, struct s3_response *resp,
                           sv_error *err)
{
    s3_client *c = conn->client;
    s3_response_reset(resp);
    conn->req = req;
    conn->resp = resp;
    conn->sent = 0;
    conn->sink_failed = false;
    conn->body_overflow = false;
    conn->body_cap = 0;
    conn->errbuf[0] = '\0';
    conn->bucket_region[0] = '\0';
    sv_error_clear(&conn->sink_err);

    if (req->nheaders > MAX_EXTRA_HEADERS) {
        set_error(conn, SV_EXIT_FAILED, err, "too many headers");
        return S3_FAIL;
    }
    if (!req->cleanup && signals_check(err) < 0)
        return S3_FAIL;

    s3_credentials cr = {0};
    if (s3_credentials_get(c->creds, &cr, err) < 0) {
        sv_error_wrap(err, "s3 %s s3://%s/%s", req->op, c->bucket, req->key ? req->key : "");
        return S3_FAIL;
    }

    char *url, *host, *path;
    s3_address(&c->ep, c->bucket, c->path_style, req->key, req->query, &url, &host, &path);

    char hash[65];
    const char *payload_hash;
    if (req->payload_hash) {
        payload_hash = req->payload_hash;
    } else if (req->body_len == 0) {
        payload_hash = EMPTY_SHA256;
    } else if (c->ep.https) {
        /* TLS protects the bytes in transit; callers add Content-MD5 where S3
         * should check them, and hashing every part twice would cost CPU. */
        payload_hash = UNSIGNED_PAYLOAD;
    } else {
        /* Over plain http the signature must cover the body. */
        sigv4_sha256_hex(req->body, req->body_len, hash);
        payload_hash = hash;
    }

    char amz_date[17];
    sigv4_amz_date(time(NULL), amz_date);
    struct sigv4_header hdrs[MAX_EXTRA_HEADERS + 4];
    size_t nh = 0;
    hdrs[nh++] = (struct sigv4_header){"host", host};
    hdrs[nh++] = (struct sigv4_header){"x-amz-content-sha256", payload_hash};
    hdrs[nh++] = (struct sigv4_header){"x-amz-date", amz_date};
    if (cr.session_token && *cr.session_token)
        hdrs[nh++] = (struct sigv4_header){"x-amz-security-token", cr.session_token};
    for (size_t i = 0; i < req->nheaders; i++)
        hdrs[nh++] = req->headers[i];

    struct sigv4_request sreq = {
        .method = req->method,
        .path = path,
        .query = req->query,
        .headers = hdrs,
        .nheaders = nh,
        .payload_hash = payload_hash,
        .normalize_path = false,
    };
    struct sigv4_key key = {
        .access_key_id = cr.access_key_id,
        .secret_access_key = cr.secret_access_key,
        .region = c->region,
        .service = "s3",
    };
    struct sigv4_result sig = {0};
    enum s3_outcome outcome = S3_FAIL;
    struct curl_slist *list = NULL;
    if (sigv4_sign(&sreq, &key, amz_date, &sig) < 0) {
        set_error(conn, SV_EXIT_CONFIG, err, "cannot sign the request (incomplete credentials)");
        goto out;
    }
    for (size_t i = 0; i < nh; i++)
        list = add_header(list, hdrs[i].name, hdrs[i].value);
    list = add_header(list, "Authorization", sig.authorization);
    /* No "Expect: 100-continue" round trip before each part. */
    list = curl_slist_append(list, "Expect:");
    if (!list)
        abort();

    setup_transfer(conn, req, url, list);
    CURLcode cc = curl_easy_perform(conn->curl);
    long status = 0;
    curl_easy_getinfo(conn->curl, CURLINFO_RESPONSE_CODE, &status);
    resp->status = status;
    resp->curl_code = (int)cc;

    if (conn->sink_failed) {
        resp->sink_failed = true;
        *err = conn->sink_err;
        if (!err->code)
            set_error(conn, SV_EXIT_FAILED, err, "the receiving stream failed");
        goto out;
    }
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        if (signals_check(err) == 0)
            set_error(conn, SV_EXIT_FAILED, err, "cancelled");
        goto out;
    }
    if (conn->body_overflow) {
        set_error(conn, SV_EXIT_FAILED, err, "HTTP %ld: the answer is larger than %u MiB", status,
                  BODY_MAX >> 20);
        goto out;
    }
    if (cc != CURLE_OK) {
        set_error(conn, transport_exit_code(cc), err, "%s",
                  conn->errbuf[0] ? conn->errbuf : curl_easy_strerror(cc));
        add_transport_hint(conn, cc, host, err);
        outcome = s3_retryable((int)cc, 0, "") ? S3_RETRY : S3_FAIL;
        goto out;
    }

    bool ok = status >= 200 && status < 300;
    /* Some 200 answers are failures (CompleteMultipartUpload, CopyObject):
     * the body says so. Streamed bodies are the caller's data, never read. */
    if (ok && !req->on_data && resp->body && is_error_document(resp->body, resp->body_len))
        ok = false;
    /* A 200 that must carry a result but carries anything else (nothing,
     * blanks, a cut or foreign document) proves nothing: try again. */
    if (ok && req->expect_root && !req->on_data &&
        !(resp->body && s3_xml_root_is(resp->body, resp->body_len, req->expect_root))) {
        set_error(conn, SV_EXIT_TEMPFAIL, err, "HTTP %ld but the answer is not a %s document (%s)", status,
                  req->expect_root,
                  !resp->body || resp->body_len == 0 ? "empty" : "malformed, truncated or another document");
        outcome = S3_RETRY;
        goto out;
    }
    if (ok) {
        outcome = S3_OK;
        goto out;
    }
    /* The answer is masked before its Message is cut to fit: a store that
     * echoes a secret (a session token in a canonical request, say) must
     * not leave its first part at the cut, unrecognisable to later masking. */
    char *masked_body = resp->body ? log_mask(resp->body) : NULL;
    if (!masked_body ||
        s3_xml_error(masked_body, strlen(masked_body), resp->code, sizeof resp->code, resp->message,
                     sizeof resp->message) < 0 ||
        !resp->code[0])
        snprintf(resp->code, sizeof resp->code, "%s", status_code_name(status));
    free_secret(masked_body);
    if (resp->message[0])
        set_error(conn, http_exit_code(status, resp->code), err, "HTTP %ld %s: %s", status, resp->code,
                  resp->message);
    else
        set_error(conn, http_exit_code(status, resp->code), err, "HTTP %ld %s", status, resp->code);
    add_hint(conn, resp->code, status, err);
    outcome = s3_retryable(0, status, resp->code) ? S3_RETRY : S3_FAIL;

out:
    curl_easy_setopt(conn->curl, CURLOPT_HTTPHEADER, NULL);
    s3_slist_wipe(list); /* curl's copies of Authorization, the token, the SSE-C key */
    curl_slist_free_all(list);
    sigv4_result_free(&sig);
    s3_credentials_clear(&cr);
    free(url);
    free(host);
    free(path);
    conn->req = NULL;
    conn->resp = NULL;
    return outcome;
}

/* ---- retries --------------------------------------------------------- */

/* Appends " (after N attempts in T s)" to the message: the cause stays first. */
static void note_attempts(sv_error *err, int attempts, double elapsed)
{
    size_t len = strlen(err->msg);
    snprintf(err->msg + len, sizeof err->msg - len, " (after %d attempts in %.0f s)", attempts, elapsed);
}

/* Jitter only: the kernel's generator, no seeding to get wrong (and musl
 * has no arc4random). */
static double rand01(void)
{
    uint32_t v = 0;
    while (getrandom(&v, sizeof v, 0) < 0 && errno == EINTR)
        ;
    return (double)v / 4294967296.0;
}

int s3_retry_wait(s3_client *c, const struct s3_request *req, struct s3_retry *rt, sv_error *err)
{
    double elapsed = now_mono() - rt->started;
    int max_attempts =
        req->cleanup && c->max_attempts > CLEANUP_ATTEMPTS ? CLEANUP_ATTEMPTS : c->max_attempts;
    if (rt->attempt >= max_attempts || elapsed >= (double)c->retry_budget_s) {
        if (rt->attempt > 1)
            note_attempts(err, rt->attempt, elapsed);
        return -1;
    }
    long ms = s3_backoff_ms(rt->attempt, rand01());
    log_with(LOG_WARN,
             LOG_FIELDS(LOG_STR("op", req->op), LOG_STR("key", req->key ? req->key : ""),
                        LOG_NUM("attempt", rt->attempt), LOG_NUM("max_attempts", max_attempts),
                        LOG_NUM("retry_in_ms", ms)),
             "%s; attempt %d of %d failed, retrying in %.1f s", err->msg, rt->attempt, max_attempts,
             (double)ms / 1000.0);
    /* Sleep in short slices: SIGTERM, or another part's failure, ends the wait. */
    double until = now_mono() + (double)ms / 1000.0;
    for (;;) {
        if (!req->cleanup && signals_check(err) < 0)
            return -1;
        if (req->cancel && atomic_load(req->cancel)) {
            sv_error_set(err, SV_EXIT_FAILED, "s3 %s s3://%s/%s: cancelled", req->op, c->bucket,
                         req->key ? req->key : "");
            return -1;
        }
        double left = until - now_mono();
        if (left <= 0)
            return 0;
        double slice = left < 0.05 ? left : 0.05;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(slice * 1e9)};
        nanosleep(&ts, NULL);
    }
}

int s3_request(s3_conn *conn, const struct s3_request *req, struct s3_response *resp, sv_error *err)
{
    struct s3_retry rt = {.attempt = 0, .started = now_mono()};
    for (;;) {
        rt.attempt++;
        enum s3_outcome o = s3_attempt(conn, req, resp, err);
        resp->attempts = rt.attempt;
        if (o == S3_OK)
            return 0;
        if (o == S3_FAIL) {
            if (rt.attempt > 1)
                note_attempts(err, rt.attempt, now_mono() - rt.started);
            return -1;
        }
        if (s3_retry_wait(conn->client, req, &rt, err) < 0)
            return -1;
    }
}
