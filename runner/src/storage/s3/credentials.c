/*
 * The S3 credential chain of credentials.h.
 *
 * Static keys come from the configuration (options.def: AWS_ACCESS_KEY_ID,
 * their _FILE forms, or the config file). The other sources read AWS's own
 * variables straight from the environment, as AWS SDKs do, because the
 * platform sets them (the EKS pod identity webhook, the EKS Pod Identity
 * agent, ECS) and users never write them.
 *
 * Every fetch uses its own libcurl easy handle, so no handle is shared
 * between threads. Fetching happens under the provider's mutex: workers that
 * need credentials while another refreshes them wait for that refresh instead
 * of asking the endpoint again.
 */
#include "storage/s3/credentials.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <expat.h>
#include <jansson.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "config/config.h"
#include "storage/s3/client.h"
#include "storage/s3/xml.h"

/* Credentials expiring within this many seconds are fetched again. */
#define REFRESH_MARGIN 300
/* When a refresh fails, credentials still valid this long are used meanwhile
 * (as AWS SDKs do), and the endpoint is not asked again before RETRY_AFTER. */
#define STALE_MIN   60
#define RETRY_AFTER 30

#define CONNECT_TIMEOUT_MS 5000L
#define REQUEST_TIMEOUT_MS 20000L
/* All attempts of one fetch, backoff included, end within this bound. */
#define FETCH_DEADLINE_MS 45000L
#define MAX_ATTEMPTS      3
#define FIRST_BACKOFF_MS  500L

/* Larger answers are not credentials (a proxy's page, a wrong endpoint). */
#define RESPONSE_MAX (64 * 1024)
/* Service account tokens are a few kilobytes; a larger file is a wrong path. */
#define TOKEN_MAX (64 * 1024)
/* Longest message of a service quoted in an error. */
#define QUOTE_MAX 300

#define ECS_HOST_URL     "http://169.254.170.2"
#define STS_API_VERSION  "2011-06-15"
#define SESSION_NAME_MAX 64

#ifndef SAUVE_VERSION
#define SAUVE_VERSION "dev"
#endif

enum source { SOURCE_STATIC, SOURCE_WEB_IDENTITY, SOURCE_CONTAINER };

struct s3_cred_provider {
    enum source source;
    char *describe;
    char *ca_bundle; /* AWS_CA_BUNDLE, or NULL */

    /* web identity */
    char *role_arn;
    char *token_file;
    char *session_name;
    char *sts_url;

    /* container credentials */
    char *url;
    bool url_local;        /* loopback or link-local: never through a proxy */
    char *auth_token_file; /* read again at every fetch: the agent rotates it */
    char *auth_token;      /* AWS_CONTAINER_AUTHORIZATION_TOKEN; a secret */

    pthread_mutex_t lock;
    s3_credentials cur;      /* access_key_id NULL until the first fetch */
    time_t retry_not_before; /* after a failed refresh that kept cur */
};

/* ---------------------------------------------------------------- helpers */

/* An AWS variable of the environment; empty counts as unset, as in AWS SDKs. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static char *env_dup(const char *name)
{
    const char *v = env(name);
    return v ? xstrdup(v) : NULL;
}

static void curl_init_once(void)
{
    /* libcurl 7.88's global init is not thread-safe: run it once, from
     * s3_credentials_new(), which runs before upload workers start. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000L + (now.tv_nsec - since->tv_nsec) / 1000000L;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !signals_stop_requested())
        ;
}

/* A growable byte buffer whose old contents are wiped when it grows or is
 * freed: it holds credentials. */
struct buf {
    char *data;
    size_t len, cap;
    bool overflow; /* more than RESPONSE_MAX was offered */
};

static void buf_append(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *grown = xmalloc(cap);
        if (b->len)
            memcpy(grown, b->data, b->len);
        if (b->data)
            explicit_bzero(b->data, b->cap);
        free(b->data);
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_append_str(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

static void buf_reset(struct buf *b)
{
    if (b->data)
        explicit_bzero(b->data, b->cap);
    b->len = 0;
    b->overflow = false;
    if (b->data)
        b->data[0] = '\0';
}

static void buf_free(struct buf *b)
{
    buf_reset(b);
    free(b->data);
    *b = (struct buf){0};
}

/* application/x-www-form-urlencoded: unreserved characters kept, every other
 * byte %XX. */
static void form_append(struct buf *b, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    if (b->len)
        buf_append(b, "&", 1);
    buf_append_str(b, key);
    buf_append(b, "=", 1);
    for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
            *s == '.' || *s == '_' || *s == '~') {
            buf_append(b, (const char *)s, 1);
        } else {
            char enc[3] = {'%', hex[*s >> 4], hex[*s & 15]};
            buf_append(b, enc, 3);
        }
    }
}

/*
 * Reads the token file at path into *out (newly allocated; free with
 * free_secret), without its trailing whitespace. var names the variable that
 * named the file, for messages. Returns 0, or -1 with err set (78).
 */
static int read_token_file(const char *path, const char *var, char **out, sv_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sv_error_set(err, SV_EXIT_CONFIG, "cannot read %s %s: %s", var, path, strerror(errno));
        return sv_error_hint(err, "mount the token at that path, readable by the user sauve runs as");
    }
    /* read(2) into our own buffer, not stdio's, which is freed unwiped */
    char *token = xmalloc(TOKEN_MAX + 1);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, token + n, TOKEN_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free_secret(token);
            return sv_error_set(err, SV_EXIT_CONFIG, "cannot read %s %s: %s", var, path, strerror(e));
        }
        if (r == 0 || (n += (size_t)r) > TOKEN_MAX)
            break;
    }
    close(fd);
    if (n > TOKEN_MAX) {
        free_secret(token);
        return sv_error_set(err, SV_EXIT_CONFIG, "%s %s is larger than %d bytes, not a token", var, path,
                            TOKEN_MAX);
    }
    while (n && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' ' || token[n - 1] == '\t'))
        n--;
    token[n] = '\0';
    if (n == 0) {
        free_secret(token);
        return sv_error_set(err, SV_EXIT_CONFIG, "%s %s is empty", var, path);
    }
    *out = token;
    return 0;
}

/* An HTTP header value must not be able to add headers of its own. */
static bool header_safe(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

/*
 * A service's message, fit to quote in an error: at most QUOTE_MAX bytes,
 * control characters blanked, withheld entirely when it contains `secret`
 * (a service echoing what it was sent). Into out.
 */
static const char *quote_message(const char *msg, const char *secret, char *out, size_t len)
{
    const char *fixed = !msg || !*msg                              ? "no message"
                        : secret && *secret && strstr(msg, secret) ? "message withheld: it quotes the token"
                                                                   : NULL;
    if (fixed) {
        snprintf(out, len, "%s", fixed);
        return out;
    }
    size_t n = strlen(msg);
    if (n > QUOTE_MAX)
        n = QUOTE_MAX;
    if (n >= len)
        n = len - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)msg[i] < 0x20 || msg[i] == 0x7f ? ' ' : msg[i];
    out[n] = '\0';
    return out;
}

/*
 * ISO 8601 UTC time as AWS writes it: "2026-11-22T02:00:00Z", with optional
 * fractional seconds and a "+hh:mm" offset instead of Z. Returns 0 or -1.
 */
static int parse_iso8601(const char *s, time_t *out)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n == 0)
        return -1;
    const char *r = s + n;
    if (*r == '.') {
        r++;
        while (*r >= '0' && *r <= '9')
            r++;
    }
    long offset = 0;
    if (*r == 'Z' || *r == 'z') {
        r++;
    } else if (*r == '+' || *r == '-') {
        int oh, om, k = 0;
        if (sscanf(r + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5)
            return -1;
        offset = (*r == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
        r += 1 + k;
    } else {
        return -1;
    }
    if (*r || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = t - offset;
    return 0;
}

/* ------------------------------------------------------------------- HTTP */

struct http_call {
    const char *what; /* "sts", "the container credentials endpoint": in messages */
    const char *url;
    const char *post;          /* form body, or NULL for GET */
    const char *accept;        /* Accept header value */
    const char *authorization; /* Authorization header value, or NULL */
    bool no_proxy;
    long status; /* out: HTTP status of the last attempt */
    struct buf body;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct buf *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > RESPONSE_MAX) {
        b->overflow = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    buf_append(b, data, n);
    return n;
}

/* One request on a handle of its own. */
static CURLcode perform_once(const s3_cred_provider *p, struct http_call *c, long timeout_ms,
                             char errbuf[CURL_ERROR_SIZE])
{
    CURL *h = curl_easy_init();
    if (!h)
        return CURLE_FAILED_INIT;
    struct curl_slist *headers = NULL;
    char *accept = xasprintf("Accept: %s", c->accept);
    headers = curl_slist_append(headers, accept);
    free(accept);
    if (c->post)
        headers =
            curl_slist_append(headers, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
    if (c->authorization) {
        struct buf auth = {0};
        buf_append_str(&auth, "Authorization: ");
        buf_append_str(&auth, c->authorization);
        headers = curl_slist_append(headers, auth.data);
        buf_free(&auth);
    }

    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (p->ca_bundle)
        curl_easy_setopt(h, CURLOPT_CAINFO, p->ca_bundle);
    if (c->no_proxy)
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sauve/" SAUVE_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c->body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (c->post) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->post);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(c->post));
    }

    CURLcode rc = curl_easy_perform(h);
    c->status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
    curl_easy_cleanup(h);
    s3_slist_wipe(headers); /* the metadata or container token */
    curl_slist_free_all(headers);
    return rc;
}

/*
 * Performs c, retrying connect errors and 5xx answers up to MAX_ATTEMPTS
 * times with doubling backoff, all within FETCH_DEADLINE_MS. Returns 0 when
 * an answer arrived (c->status and c->body set, possibly a 4xx or the last
 * 5xx), or -1 with err set when none did.
 */
static int http_fetch(const s3_cred_provider *p, struct http_call *c, sv_error *err)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long backoff = FIRST_BACKOFF_MS;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode rc;
    int attempt;
    for (attempt = 1;; attempt++) {
        buf_reset(&c->body);
        errbuf[0] = '\0';
        long timeout = FETCH_DEADLINE_MS - elapsed_ms(&start);
        if (timeout > REQUEST_TIMEOUT_MS)
            timeout = REQUEST_TIMEOUT_MS;
        rc = perform_once(p, c, timeout, errbuf);
        bool retry = rc == CURLE_OK ? c->status >= 500 : s3_curl_transient(rc);
        if (!retry || attempt == MAX_ATTEMPTS || signals_stop_requested() ||
            elapsed_ms(&start) + backoff + 1000 > FETCH_DEADLINE_MS)
            break;
        if (rc == CURLE_OK)
            log_debug("%s at %s answered HTTP %ld (attempt %d of %d), retrying in %ld ms", c->what, c->url,
                      c->status, attempt, MAX_ATTEMPTS, backoff);
        else
            log_debug("cannot reach %s at %s (attempt %d of %d): %s; retrying in %ld ms", c->what, c->url,
                      attempt, MAX_ATTEMPTS, errbuf[0] ? errbuf : curl_easy_strerror(rc), backoff);
        sleep_ms(backoff);
        backoff *= 2;
    }
    if (rc == CURLE_OK)
        return 0;

    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_WRITE_ERROR:
        if (!c->body.overflow)
            break;
        return sv_error_set(err, SV_EXIT_TEMPFAIL, "%s at %s answered more than %d bytes: not credentials",
                            c->what, c->url, RESPONSE_MAX);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        sv_error_set(err, SV_EXIT_CONFIG, "cannot verify the TLS certificate of %s at %s: %s", c->what,
                     c->url, why);
        return sv_error_hint(err, "set AWS_CA_BUNDLE to a file of the CA certificates that sign it");
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return sv_error_set(err, SV_EXIT_CONFIG, "invalid URL for %s: %s: %s", c->what, c->url, why);
    default: break;
    }
    sv_error_set(err, SV_EXIT_TEMPFAIL, "cannot reach %s at %s (%d attempt%s): %s", c->what, c->url, attempt,
                 attempt == 1 ? "" : "s", why);
    return sv_error_hint(err, "check that the pod can reach that address (NetworkPolicy, egress proxy)");
}

/* ------------------------------------------------------------ STS answers */

enum sts_field { STS_KEY_ID, STS_SECRET, STS_TOKEN, STS_EXPIRATION, STS_CODE, STS_MESSAGE, STS__COUNT };

#define XML_DEPTH_MAX 16

struct sts_parse {
    int depth;
    const char *names[XML_DEPTH_MAX]; /* local names of the open elements (static strings), or NULL */
    int collecting;                   /* an sts_field while inside one, else -1 */
    struct buf text;
    char *fields[STS__COUNT];
};

/* The element's name without a namespace prefix. */
static const char *local_name(const char *name)
{
    const char *colon = strrchr(name, ':');
    return colon ? colon + 1 : name;
}

/* Handlers get the parser (s3_xml_parser_new), the state is its user data. */
static void XMLCALL sts_start(void *parser, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    static const char *const credentials[] = {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"};
    static const char *const error[] = {"Code", "Message"};
    static const char *const containers[] = {"Credentials", "Error"};
    struct sts_parse *sp = XML_GetUserData((XML_Parser)parser);
    const char *ln = local_name(name);
    const char *parent = sp->depth > 0 && sp->depth <= XML_DEPTH_MAX ? sp->names[sp->depth - 1] : NULL;
    const char *known = NULL;
    sp->collecting = -1;
    if (parent && strcmp(parent, "Credentials") == 0) {
        for (int i = 0; i < 4; i++)
            if (strcmp(ln, credentials[i]) == 0)
                sp->collecting = STS_KEY_ID + i;
    } else if (parent && strcmp(parent, "Error") == 0) {
        for (int i = 0; i < 2; i++)
            if (strcmp(ln, error[i]) == 0)
                sp->collecting = STS_CODE + i;
    } else {
        for (int i = 0; i < 2; i++)
            if (strcmp(ln, containers[i]) == 0)
                known = containers[i];
    }
    if (sp->depth < XML_DEPTH_MAX)
        sp->names[sp->depth] = known;
    sp->depth++;
    buf_reset(&sp->text);
}

static void XMLCALL sts_end(void *parser, const XML_Char *name)
{
    (void)name;
    struct sts_parse *sp = XML_GetUserData((XML_Parser)parser);
    sp->depth--;
    if (sp->collecting >= 0) {
        free_secret(sp->fields[sp->collecting]);
        sp->fields[sp->collecting] = xstrdup(sp->text.data ? sp->text.data : "");
        sp->collecting = -1;
    }
    buf_reset(&sp->text);
}

static void XMLCALL sts_text(void *parser, const XML_Char *s, int len)
{
    struct sts_parse *sp = XML_GetUserData((XML_Parser)parser);
    if (sp->collecting >= 0 && len > 0)
        buf_append(&sp->text, s, (size_t)len);
}

/* Parses an STS answer (credentials or ErrorResponse). Returns 0, or -1 when
 * it is not XML or has a DOCTYPE (see s3_xml_parser_new). */
static int sts_parse_body(const struct buf *body, struct sts_parse *sp)
{
    *sp = (struct sts_parse){.collecting = -1};
    if (!body->len)
        return -1;
    XML_Parser xp = s3_xml_parser_new(sp);
    XML_SetElementHandler(xp, sts_start, sts_end);
    XML_SetCharacterDataHandler(xp, sts_text);
    int ok = XML_Parse(xp, body->data, (int)body->len, 1) == XML_STATUS_OK;
    XML_ParserFree(xp);
    buf_free(&sp->text);
    return ok ? 0 : -1;
}

static void sts_parse_free(struct sts_parse *sp)
{
    for (int i = 0; i < STS__COUNT; i++)
        free_secret(sp->fields[i]);
    buf_free(&sp->text);
}

/* STS refusals that go away by themselves: not a configuration error. */
static bool sts_code_transient(const char *code)
{
    static const char *const transient[] = {"IDPCommunicationError", "Throttling",
                                            "ThrottlingException",   "RequestLimitExceeded",
                                            "ServiceUnavailable",    "InternalFailure"};
    for (size_t i = 0; code && i < sizeof transient / sizeof *transient; i++)
        if (strcmp(code, transient[i]) == 0)
            return true;
    return false;
}

static const char *sts_hint(const s3_cred_provider *p, const char *code, char *buf, size_t len)
{
    if (code && strcmp(code, "AccessDenied") == 0)
        snprintf(buf, len,
                 "check the trust policy of role %s: it must allow sts:AssumeRoleWithWebIdentity to the "
                 "cluster's OIDC provider for this service account (conditions on the token's sub and aud)",
                 p->role_arn);
    else if (code && strcmp(code, "InvalidIdentityToken") == 0)
        snprintf(buf, len,
                 "check that the cluster's OIDC provider is registered in IAM and that the token in %s has "
                 "the audience sts.amazonaws.com",
                 p->token_file);
    else if (code && strcmp(code, "ExpiredTokenException") == 0)
        snprintf(buf, len,
                 "the token in %s has expired: it must be a projected service account token, which the "
                 "kubelet renews",
                 p->token_file);
    else
        snprintf(buf, len, "check AWS_ROLE_ARN (%s) and the role's trust policy", p->role_arn);
    return buf;
}

static int fetch_web_identity(s3_cred_provider *p, s3_credentials *out, sv_error *err)
{
    char *token;
    if (read_token_file(p->token_file, "AWS_WEB_IDENTITY_TOKEN_FILE", &token, err))
        return -1;
    log_add_secret(token);

    struct buf form = {0};
    form_append(&form, "Action", "AssumeRoleWithWebIdentity");
    form_append(&form, "Version", STS_API_VERSION);
    form_append(&form, "RoleArn", p->role_arn);
    form_append(&form, "RoleSessionName", p->session_name);
    form_append(&form, "WebIdentityToken", token);

    /* Unsigned, as AWS specifies for AssumeRoleWithWebIdentity: the token is
     * the proof of identity. */
    struct http_call c = {.what = "sts", .url = p->sts_url, .post = form.data, .accept = "application/xml"};
    int rc = http_fetch(p, &c, err);
    buf_free(&form);
    if (rc) {
        free_secret(token);
        buf_free(&c.body);
        return -1;
    }

    struct sts_parse sp;
    bool is_xml = sts_parse_body(&c.body, &sp) == 0;
    const char *code = sp.fields[STS_CODE];
    char quoted[QUOTE_MAX + 1], hint[512];
    rc = -1;
    if (c.status == 200 && is_xml && sp.fields[STS_KEY_ID] && sp.fields[STS_SECRET] && sp.fields[STS_TOKEN] &&
        sp.fields[STS_EXPIRATION]) {
        if (parse_iso8601(sp.fields[STS_EXPIRATION], &out->expires) == 0) {
            out->access_key_id = sp.fields[STS_KEY_ID];
            out->secret_access_key = sp.fields[STS_SECRET];
            out->session_token = sp.fields[STS_TOKEN];
            sp.fields[STS_KEY_ID] = sp.fields[STS_SECRET] = sp.fields[STS_TOKEN] = NULL;
            rc = 0;
        } else {
            sv_error_set(err, SV_EXIT_TEMPFAIL, "sts at %s answered an invalid Expiration: %s", p->sts_url,
                         quote_message(sp.fields[STS_EXPIRATION], token, quoted, sizeof quoted));
        }
    } else if (c.status == 200) {
        sv_error_set(err, SV_EXIT_TEMPFAIL, "sts at %s answered HTTP 200 without credentials", p->sts_url);
    } else if (!is_xml || !code) {
        sv_error_set(err, c.status >= 500 ? SV_EXIT_TEMPFAIL : SV_EXIT_CONFIG,
                     "sts at %s answered HTTP %ld to AssumeRoleWithWebIdentity, without an AWS error",
                     p->sts_url, c.status);
        if (c.status < 500)
            sv_error_hint(err, "check AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL and AWS_REGION");
    } else if (c.status >= 500 || sts_code_transient(code)) {
        sv_error_set(err, SV_EXIT_TEMPFAIL, "sts at %s failed AssumeRoleWithWebIdentity (HTTP %ld): %s: %s",
                     p->sts_url, c.status, code,
                     quote_message(sp.fields[STS_MESSAGE], token, quoted, sizeof quoted));
        sv_error_hint(err, "a temporary failure of STS: a retry of the Job may succeed");
    } else {
        sv_error_set(err, SV_EXIT_CONFIG, "sts at %s refused AssumeRoleWithWebIdentity (HTTP %ld): %s: %s",
                     p->sts_url, c.status, code,
                     quote_message(sp.fields[STS_MESSAGE], token, quoted, sizeof quoted));
        sv_error_hint(err, "%s", sts_hint(p, code, hint, sizeof hint));
    }
    sts_parse_free(&sp);
    buf_free(&c.body);
    free_secret(token);
    return rc;
}

/* --------------------------------------------------- container credentials */

/* A string member of a JSON object, or NULL. */
static const char *json_str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int fetch_container(s3_cred_provider *p, s3_credentials *out, sv_error *err)
{
    char *token = NULL;
    if (p->auth_token_file) {
        if (read_token_file(p->auth_token_file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token, err))
            return -1;
        if (!header_safe(token)) {
            free_secret(token);
            return sv_error_set(
                err, SV_EXIT_CONFIG,
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s holds a line break inside the token",
                p->auth_token_file);
        }
        log_add_secret(token);
    } else if (p->auth_token) {
        token = xstrdup(p->auth_token);
    }

    struct http_call c = {.what = "the endpoint",
                          .url = p->url,
                          .accept = "application/json",
                          .authorization = token,
                          .no_proxy = p->url_local};
    int rc = http_fetch(p, &c, err);
    if (rc) {
        free_secret(token);
        buf_free(&c.body);
        return -1;
    }

    json_error_t jerr;
    json_t *root = c.body.len ? json_loadb(c.body.data, c.body.len, 0, &jerr) : NULL;
    if (root && !json_is_object(root)) {
        json_decref(root);
        root = NULL;
    }
    char quoted[QUOTE_MAX + 1];
    rc = -1;
    if (c.status == 200 && root) {
        const char *key_id = json_str(root, "AccessKeyId");
        const char *secret = json_str(root, "SecretAccessKey");
        const char *session = json_str(root, "Token");
        const char *expiration = json_str(root, "Expiration");
        time_t expires = 0; /* no Expiration: long-term keys, as AWS SDKs take it */
        if (!key_id || !*key_id || !secret || !*secret)
            sv_error_set(err, SV_EXIT_TEMPFAIL,
                         "the endpoint answered without AccessKeyId and SecretAccessKey");
        else if (expiration && parse_iso8601(expiration, &expires))
            sv_error_set(err, SV_EXIT_TEMPFAIL, "the endpoint answered an invalid Expiration: %s",
                         quote_message(expiration, token, quoted, sizeof quoted));
        else {
            out->access_key_id = xstrdup(key_id);
            out->secret_access_key = xstrdup(secret);
            out->session_token = session && *session ? xstrdup(session) : NULL;
            out->expires = expires;
            rc = 0;
        }
    } else if (c.status == 200) {
        sv_error_set(err, SV_EXIT_TEMPFAIL, "the endpoint answered HTTP 200 without a JSON object");
    } else {
        /* errors MAY carry {"code": ..., "message": ...} */
        const char *code = root ? json_str(root, "code") : NULL;
        const char *message = root ? json_str(root, "message") : NULL;
        if (root && !code)
            code = json_str(root, "Code");
        if (root && !message)
            message = json_str(root, "Message");
        int exit_code = c.status >= 500 || c.status == 429 ? SV_EXIT_TEMPFAIL : SV_EXIT_CONFIG;
        const char *verb = exit_code == SV_EXIT_CONFIG ? "refused" : "failed";
        char quoted_code[QUOTE_MAX + 1];
        if (code)
            sv_error_set(err, exit_code, "the endpoint %s (HTTP %ld): %s: %s", verb, c.status,
                         quote_message(code, token, quoted_code, sizeof quoted_code),
                         quote_message(message, token, quoted, sizeof quoted));
        else
            sv_error_set(err, exit_code, "the endpoint %s (HTTP %ld)", verb, c.status);
        if (exit_code == SV_EXIT_CONFIG)
            sv_error_hint(err, "%s",
                          token
                              ? "check the authorization token (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or "
                                "AWS_CONTAINER_AUTHORIZATION_TOKEN) and the pod identity association of the "
                                "service account"
                              : "check the role attached to the task or pod");
    }
    json_decref(root);
    buf_free(&c.body);
    free_secret(token);
    return rc;
}

/* ----------------------------------------------------------- construction */

/* RoleSessionName allows [\w+=,.@-]{2,64}: other bytes become '-'. */
static char *default_session_name(void)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !*host)
        snprintf(host, sizeof host, "%s", "unknown");
    char *name = xasprintf("sauve-%s", host);
    if (strlen(name) > SESSION_NAME_MAX)
        name[SESSION_NAME_MAX] = '\0';
    for (char *s = name; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr("_+=,.@-", *s)))
            *s = '-';
    return name;
}

static char *sts_endpoint(sv_error *err)
{
    const char *url = env("AWS_ENDPOINT_URL_STS");
    if (!url)
        url = env("AWS_ENDPOINT_URL");
    if (url)
        return xstrdup(url);
    const char *region = env("AWS_REGION");
    const char *var = "AWS_REGION";
    if (!region) {
        region = env("AWS_DEFAULT_REGION");
        var = "AWS_DEFAULT_REGION";
    }
    if (!region)
        return xstrdup("https://sts.amazonaws.com"); /* the global endpoint, in us-east-1 */
    for (const char *s = region; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-')) {
            sv_error_set(err, SV_EXIT_CONFIG, "%s is not an AWS region: %s", var, region);
            sv_error_hint(err, "an AWS region looks like eu-west-3");
            return NULL;
        }
    /* the China partition has its own domain */
    return xasprintf("https://sts.%s.amazonaws.com%s", region, strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
}

static int init_static(s3_cred_provider *p, const sv_config *cfg, sv_error *err)
{
    const struct opt_def *key = config_option(OPT_ID_s3_access_key_id);
    const struct opt_def *secret = config_option(OPT_ID_s3_secret_access_key);
    const struct opt_def *session = config_option(OPT_ID_s3_session_token);
    char origin[256];
    if (!cfg->s3_access_key_id || !cfg->s3_secret_access_key) {
        const struct opt_def *set = cfg->s3_access_key_id       ? key
                                    : cfg->s3_secret_access_key ? secret
                                                                : session;
        const struct opt_def *missing = cfg->s3_access_key_id ? secret : key;
        config_describe_origin(cfg, set->id, origin, sizeof origin);
        if (set == session)
            sv_error_set(err, SV_EXIT_CONFIG,
                         "%s is set (%s) but not %s and %s: a session token goes with the keys it was issued "
                         "with",
                         set->env, origin, key->env, secret->env);
        else
            sv_error_set(err, SV_EXIT_CONFIG, "%s is set (%s) but not %s: static S3 keys need both", set->env,
                         origin, missing->env);
        return sv_error_hint(
            err,
            "set %s (or %s_FILE, or '%s' in the config file), or unset %s to use web identity "
            "or container credentials",
            missing->env, missing->env, missing->path, set->env);
    }
    p->source = SOURCE_STATIC;
    p->describe = xstrdup("static keys");
    p->cur.access_key_id = xstrdup(cfg->s3_access_key_id);
    p->cur.secret_access_key = xstrdup(cfg->s3_secret_access_key);
    p->cur.session_token = cfg->s3_session_token ? xstrdup(cfg->s3_session_token) : NULL;
    return 0;
}

static int init_web_identity(s3_cred_provider *p, sv_error *err)
{
    const char *arn = env("AWS_ROLE_ARN");
    const char *file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
    if (!arn || !file) {
        sv_error_set(err, SV_EXIT_CONFIG, "%s is set but not %s: web identity needs both",
                     arn ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE",
                     arn ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN");
        return sv_error_hint(err,
                             "on EKS, annotate the service account with eks.amazonaws.com/role-arn and the "
                             "pod identity webhook sets both");
    }
    if (!(p->sts_url = sts_endpoint(err)))
        return -1;
    p->source = SOURCE_WEB_IDENTITY;
    p->role_arn = xstrdup(arn);
    p->token_file = xstrdup(file);
    p->session_name =
        env("AWS_ROLE_SESSION_NAME") ? env_dup("AWS_ROLE_SESSION_NAME") : default_session_name();
    p->describe = xasprintf("web identity %s", arn);
    return 0;
}

/* The AWS rule for an http:// full URI: a loopback address, the ECS host
 * 169.254.170.2, or the EKS Pod Identity agent 169.254.170.23 / fd00:ec2::23. */
static bool allowed_http_host(const char *host)
{
    char ip[64];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof ip) {
        memcpy(ip, host + 1, n - 2);
        ip[n - 2] = '\0';
    } else {
        snprintf(ip, sizeof ip, "%s", host);
    }
    if (strcasecmp(ip, "localhost") == 0)
        return true; /* libcurl resolves it to loopback only, whatever the resolver says */
    struct in_addr a4;
    struct in6_addr a6, eks6;
    if (inet_pton(AF_INET, ip, &a4) == 1) {
        uint32_t a = ntohl(a4.s_addr);
        return (a >> 24) == 127 || a == 0xA9FEAA02u /* 169.254.170.2 */ || a == 0xA9FEAA17u /* .23 */;
    }
    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        inet_pton(AF_INET6, "fd00:ec2::23", &eks6);
        return IN6_IS_ADDR_LOOPBACK(&a6) || memcmp(&a6, &eks6, sizeof a6) == 0;
    }
    return false;
}

/* Checks a full URI against the AWS rule. Returns 0, or -1 with err set (78). */
static int check_full_uri(s3_cred_provider *p, const char *uri, sv_error *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = 0;
    if (curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) || curl_url_get(u, CURLUPART_HOST, &host, 0)) {
        rc = sv_error_set(err, SV_EXIT_CONFIG, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL: %s", uri);
    } else if (strcasecmp(scheme, "https") == 0) {
        p->url_local = false;
    } else if (strcasecmp(scheme, "http") != 0 || !allowed_http_host(host)) {
        sv_error_set(
            err, SV_EXIT_CONFIG,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI %s is refused: credentials are fetched over http only "
            "from a loopback address, 169.254.170.2 (ECS) or 169.254.170.23 (EKS Pod Identity)",
            uri);
        rc = sv_error_hint(err, "use an https:// URI for any other host");
    } else {
        p->url_local = true;
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static int init_container(s3_cred_provider *p, sv_error *err)
{
    /* the relative URI comes first, as in AWS SDKs */
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    if (rel) {
        p->url = xasprintf("%s%s%s", ECS_HOST_URL, rel[0] == '/' ? "" : "/", rel);
        p->url_local = true;
    } else {
        const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
        if (check_full_uri(p, full, err))
            return -1;
        p->url = xstrdup(full);
    }
    p->auth_token_file = env_dup("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (!p->auth_token_file && env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
        if (!header_safe(env("AWS_CONTAINER_AUTHORIZATION_TOKEN")))
            return sv_error_set(err, SV_EXIT_CONFIG, "AWS_CONTAINER_AUTHORIZATION_TOKEN holds a line break");
        p->auth_token = env_dup("AWS_CONTAINER_AUTHORIZATION_TOKEN");
        log_add_secret(p->auth_token);
    }
    p->source = SOURCE_CONTAINER;
    p->describe = xasprintf("container credentials %s", p->url);
    return 0;
}

s3_cred_provider *s3_credentials_new(const struct sv_config *cfg, sv_error *err)
{
    static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
    pthread_once(&curl_once, curl_init_once);

    s3_cred_provider *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    p->ca_bundle = env_dup("AWS_CA_BUNDLE");
    int rc;
    if (cfg->s3_access_key_id || cfg->s3_secret_access_key || cfg->s3_session_token)
        rc = init_static(p, cfg, err);
    else if (env("AWS_ROLE_ARN") || env("AWS_WEB_IDENTITY_TOKEN_FILE"))
        rc = init_web_identity(p, err);
    else if (env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || env("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
        rc = init_container(p, err);
    else {
        rc =
            sv_error_set(err, SV_EXIT_CONFIG,
                         "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or their _FILE "
                         "forms, or s3.access_key_id and s3.secret_access_key in the config file), or "
                         "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (web identity), or "
                         "AWS_CONTAINER_CREDENTIALS_FULL_URI (container credentials)");
        sv_error_hint(err, "on EKS, give the service account an IAM role (IRSA or EKS Pod Identity) and the "
                           "variables are set for you");
    }
    if (rc) {
        s3_credentials_free(p);
        return NULL;
    }
    return p;
}

/* ------------------------------------------------------------------ use */

static void copy_credentials(s3_credentials *out, const s3_credentials *in)
{
    out->access_key_id = xstrdup(in->access_key_id);
    out->secret_access_key = xstrdup(in->secret_access_key);
    out->session_token = in->session_token ? xstrdup(in->session_token) : NULL;
    out->expires = in->expires;
}

static bool needs_fetch(const s3_cred_provider *p, time_t now)
{
    if (p->source == SOURCE_STATIC)
        return false;
    if (!p->cur.access_key_id)
        return true;
    if (p->cur.expires == 0 || p->cur.expires - now > REFRESH_MARGIN)
        return false;
    /* after a failed refresh, wait a little before asking again, unless the
     * current credentials are about to expire */
    return now >= p->retry_not_before || p->cur.expires - now <= STALE_MIN;
}

int s3_credentials_get(s3_cred_provider *p, s3_credentials *out, sv_error *err)
{
    *out = (s3_credentials){0};
    pthread_mutex_lock(&p->lock);
    time_t now = time(NULL);
    if (needs_fetch(p, now)) {
        s3_credentials fresh = {0};
        sv_error ferr = {0};
        int rc = p->source == SOURCE_WEB_IDENTITY ? fetch_web_identity(p, &fresh, &ferr)
                                                  : fetch_container(p, &fresh, &ferr);
        if (rc == 0) {
            log_add_secret(fresh.secret_access_key);
            log_add_secret(fresh.session_token);
            s3_credentials_clear(&p->cur);
            p->cur = fresh;
            char until[32] = "never";
            struct tm tm;
            if (fresh.expires && gmtime_r(&fresh.expires, &tm))
                strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", &tm);
            log_with(LOG_INFO, LOG_FIELDS(LOG_STR("source", p->describe), LOG_STR("expires", until)),
                     "fetched S3 credentials");
        } else if (p->cur.access_key_id && p->cur.expires - now > STALE_MIN) {
            /* a blip of the endpoint must not fail an upload that still has valid keys */
            p->retry_not_before = now + RETRY_AFTER;
            log_with(LOG_WARN, LOG_FIELDS(LOG_STR("source", p->describe)),
                     "cannot refresh S3 credentials, using the current ones for %ld more seconds: %s",
                     (long)(p->cur.expires - now), ferr.msg);
        } else {
            pthread_mutex_unlock(&p->lock);
            if (err) {
                *err = ferr;
                sv_error_wrap(err, "s3 credentials from %s", p->describe);
            }
            return -1;
        }
    }
    copy_credentials(out, &p->cur);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

const char *s3_credentials_describe(const s3_cred_provider *p)
{
    return p->describe;
}

void s3_credentials_clear(s3_credentials *c)
{
    if (!c)
        return;
    free_secret(c->access_key_id);
    free_secret(c->secret_access_key);
    free_secret(c->session_token);
    *c = (s3_credentials){0};
}

void s3_credentials_free(s3_cred_provider *p)
{
    if (!p)
        return;
    s3_credentials_clear(&p->cur);
    free(p->describe);
    free(p->ca_bundle);
    free(p->role_arn);
    free(p->token_file);
    free(p->session_name);
    free(p->sts_url);
    free(p->url);
    free(p->auth_token_file);
    free_secret(p->auth_token);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
