/* A connection to Redis: the URL, TCP or TLS (OpenSSL, verified), AUTH,
 * commands and their replies, and raw reads for the RDB payload. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "sources/redis.h"

#define REDIS_DEFAULT_PORT 6379

struct redis_conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int timeout_s;
    char *endpoint;
    char *buf; /* bytes read but not yet used */
    size_t len, cap;
};

/* ---- URL ------------------------------------------------------------------ */

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n); NULL when an escape is malformed or decodes to NUL. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1), *w = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n)
                goto bad;
            int a = hexval((unsigned char)s[i + 1]), b = hexval((unsigned char)s[i + 2]);
            if (a < 0 || b < 0 || (a == 0 && b == 0))
                goto bad;
            *w++ = (char)(a << 4 | b);
            i += 2;
        } else {
            *w++ = s[i];
        }
    }
    *w = '\0';
    return out;
bad:
    explicit_bzero(out, n + 1);
    free(out);
    return NULL;
}

int redis_url_parse(const char *url, struct redis_url *out, sv_error *err)
{
    memset(out, 0, sizeof *out);
    const char *p;
    if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        p = url + 9;
        out->tls = true;
    } else {
        sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_REDIS_URL: not a redis:// or rediss:// URL");
        return sv_error_hint(err, "write redis://[user[:password]@]host[:port] (rediss:// for TLS)");
    }
    size_t auth_len = strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < p + auth_len; q++)
        if (*q == '@')
            at = q; /* the last '@': a password may hold one unescaped */
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *uend = colon ? colon : at;
        if (uend > p && !(out->user = pct_decode(p, (size_t)(uend - p))))
            goto bad_escape;
        if (colon && !(out->password = pct_decode(colon + 1, (size_t)(at - colon - 1))))
            goto bad_escape;
        if (out->password && !*out->password) {
            free(out->password);
            out->password = NULL;
        }
        if (out->password)
            log_add_secret(out->password);
        auth_len -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    const char *host = p, *host_end, *port = NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', auth_len);
        if (!close) {
            redis_url_free(out);
            return sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_REDIS_URL: an IPv6 host without its ']'");
        }
        host = p + 1;
        host_end = close;
        if (close + 1 < p + auth_len && close[1] == ':')
            port = close + 2;
    } else {
        const char *colon = memchr(p, ':', auth_len);
        host_end = colon ? colon : p + auth_len;
        if (colon)
            port = colon + 1;
    }
    if (host_end == host) {
        redis_url_free(out);
        return sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_REDIS_URL: no host");
    }
    out->host = xstrndup(host, (size_t)(host_end - host));
    out->port = REDIS_DEFAULT_PORT;
    if (port) {
        long v = 0;
        const char *e = p + auth_len;
        if (port == e)
            goto bad_port;
        for (const char *q = port; q < e; q++) {
            if (!isdigit((unsigned char)*q) || (v = v * 10 + (*q - '0')) > 65535)
                goto bad_port;
        }
        if (v == 0)
            goto bad_port;
        out->port = (int)v;
    }
    /* A database number (/N) selects nothing for a sync: the RDB holds every
     * database. Accepted, so that the application's URL can be reused. */
    return 0;
bad_port:
    redis_url_free(out);
    return sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_REDIS_URL: the port is not a number from 1 to 65535");
bad_escape:
    redis_url_free(out);
    sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_REDIS_URL: a malformed %%-escape in the user or password");
    return sv_error_hint(err,
                         "escape reserved characters as %%XX, or give the password in SAUVE_REDIS_PASSWORD");
}

void redis_url_free(struct redis_url *u)
{
    free(u->host);
    free(u->user);
    free_secret(u->password);
    memset(u, 0, sizeof *u);
}

/* ---- socket and TLS ---------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until fd is ready for events, up to timeout_s; -1 with err on a
 * timeout or a stop request. */
static int wait_fd(redis_conn *c, short events, const char *what, sv_error *err)
{
    double deadline = now_s() + c->timeout_s;
    for (;;) {
        if (signals_check(err) != 0)
            return -1;
        double left = deadline - now_s();
        if (left <= 0) {
            sv_error_set(err, SV_EXIT_TEMPFAIL, "redis at %s: no answer within %d s while %s", c->endpoint,
                         c->timeout_s, what);
            return sv_error_hint(
                err, "check that the server is up and reachable; SAUVE_REDIS_TIMEOUT sets the wait");
        }
        struct pollfd pfd = {.fd = c->fd, .events = events};
        int r = poll(&pfd, 1, left > 1 ? 1000 : (int)(left * 1000) + 1);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return sv_error_set(err, SV_EXIT_TEMPFAIL, "redis at %s: poll: %s", c->endpoint, strerror(errno));
    }
}

static int tcp_connect(redis_conn *c, const struct redis_url *u, sv_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", u->port);
    int gai = getaddrinfo(u->host, port, &hints, &res);
    if (gai != 0) {
        sv_error_set(err, SV_EXIT_TEMPFAIL, "cannot resolve redis host %s: %s", u->host, gai_strerror(gai));
        return sv_error_hint(err, "check the host of SAUVE_REDIS_URL");
    }
    int last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (c->fd < 0) {
            last = errno;
            continue;
        }
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            sv_error e = {0};
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (wait_fd(c, POLLOUT, "connecting", &e) == 0 &&
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
                freeaddrinfo(res);
                int one = 1;
                setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                return 0;
            }
            if (signals_stop_requested()) {
                freeaddrinfo(res);
                *err = e;
                return -1;
            }
            last = soerr ? soerr : ETIMEDOUT;
        } else {
            last = errno;
        }
        close(c->fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    sv_error_set(err, SV_EXIT_TEMPFAIL, "cannot connect to redis at %s: %s", c->endpoint, strerror(last));
    return sv_error_hint(err, "check SAUVE_REDIS_URL and that the server is up");
}

/* OpenSSL's queued errors as one line (and the queue emptied). */
static void ssl_errors(char *buf, size_t len)
{
    buf[0] = '\0';
    unsigned long e;
    size_t n = 0;
    while ((e = ERR_get_error()) != 0 && n + 2 < len) {
        char one[256];
        ERR_error_string_n(e, one, sizeof one);
        n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "; " : "", one);
    }
}

static int tls_fail(redis_conn *c, const char *what, sv_error *err)
{
    char detail[512];
    ssl_errors(detail, sizeof detail);
    long vr = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    if (vr != X509_V_OK) {
        sv_error_set(err, SV_EXIT_CONFIG, "redis at %s: TLS certificate not trusted: %s", c->endpoint,
                     X509_verify_cert_error_string(vr));
        return sv_error_hint(err,
                             "set SAUVE_REDIS_TLS_CA_FILE to the CA that signed the server's certificate, "
                             "and use the host name the certificate names");
    }
    sv_error_set(err, SV_EXIT_CONFIG, "redis at %s: %s failed%s%s", c->endpoint, what, detail[0] ? ": " : "",
                 detail);
    return sv_error_hint(err, "check the rediss:// URL and SAUVE_REDIS_TLS_* settings");
}

static int tls_start(redis_conn *c, const struct redis_conn_options *o, sv_error *err)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx)
        return tls_fail(c, "TLS setup", err);
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    /* verification is never off: an unverified peer could be anyone */
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    if (o->ca_file && *o->ca_file) {
        if (SSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL) != 1) {
            ERR_clear_error();
            return sv_error_set(err, SV_EXIT_CONFIG,
                                "SAUVE_REDIS_TLS_CA_FILE: cannot read CA certificates from %s", o->ca_file);
        }
    } else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
        return tls_fail(c, "loading the system's CA certificates", err);
    }
    if ((o->cert_file && *o->cert_file) != (o->key_file && *o->key_file))
        return sv_error_set(
            err, SV_EXIT_CONFIG,
            "SAUVE_REDIS_TLS_CERT_FILE and SAUVE_REDIS_TLS_KEY_FILE go together: set both or neither");
    if (o->cert_file && *o->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(c->ctx, o->cert_file) != 1) {
            ERR_clear_error();
            return sv_error_set(err, SV_EXIT_CONFIG,
                                "SAUVE_REDIS_TLS_CERT_FILE: cannot load a certificate from %s", o->cert_file);
        }
        if (SSL_CTX_use_PrivateKey_file(c->ctx, o->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(c->ctx) != 1) {
            ERR_clear_error();
            return sv_error_set(
                err, SV_EXIT_CONFIG,
                "SAUVE_REDIS_TLS_KEY_FILE: cannot load the key of the client certificate from %s",
                o->key_file);
        }
    }
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
        return tls_fail(c, "TLS setup", err);
    const char *host = o->url->host;
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(vp, host);
    } else {
        SSL_set_tlsext_host_name(c->ssl, host);
        SSL_set1_host(c->ssl, host);
    }
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, "in the TLS handshake", err) != 0)
                return -1;
            continue;
        }
        return tls_fail(c, "the TLS handshake", err);
    }
}

static int conn_write(redis_conn *c, const char *buf, size_t len, sv_error *err)
{
    while (len) {
        ssize_t n;
        if (c->ssl) {
            size_t w = 0;
            int r = SSL_write_ex(c->ssl, buf, len, &w);
            if (r == 1) {
                n = (ssize_t)w;
            } else {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    if (wait_fd(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, "sending", err) != 0)
                        return -1;
                    continue;
                }
                char detail[256];
                ssl_errors(detail, sizeof detail);
                return sv_error_set(err, SV_EXIT_TEMPFAIL, "redis at %s: TLS write failed: %s", c->endpoint,
                                    detail);
            }
        } else {
            n = send(c->fd, buf, len, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (wait_fd(c, POLLOUT, "sending", err) != 0)
                    return -1;
                continue;
            }
            if (n < 0)
                return sv_error_set(err, SV_EXIT_TEMPFAIL, "redis at %s: send: %s", c->endpoint,
                                    strerror(errno));
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads what is available into buf (waiting up to the timeout for the
 * first byte): count, 0 at the end of the stream, -1 with err. */
static ssize_t conn_read_raw(redis_conn *c, void *buf, size_t len, sv_error *err)
{
    for (;;) {
        if (c->ssl) {
            size_t got = 0;
            int r = SSL_read_ex(c->ssl, buf, len, &got);
            if (r == 1)
                return (ssize_t)got;
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN)
                return 0;
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                if (wait_fd(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, "reading", err) != 0)
                    return -1;
                continue;
            }
            if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
                /* the peer went away without close_notify: a killed server */
                ERR_clear_error();
                return 0;
            }
            char detail[256];
            ssl_errors(detail, sizeof detail);
            return sv_error_set(err, SV_EXIT_TEMPFAIL, "redis at %s: TLS read failed: %s", c->endpoint,
                                detail[0] ? detail : "connection reset");
        }
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EINTR) {
            if (wait_fd(c, POLLIN, "reading", err) != 0)
                return -1;
            continue;
        }
        if (errno == ECONNRESET)
            return 0;
        return sv_error_set(err, SV_EXIT_TEMPFAIL, "redis at %s: recv: %s", c->endpoint, strerror(errno));
    }
}

ssize_t redis_conn_read(redis_conn *c, void *buf, size_t len, sv_error *err)
{
    if (c->len) {
        size_t n = c->len < len ? c->len : len;
        memcpy(buf, c->buf, n);
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
        return (ssize_t)n;
    }
    return conn_read_raw(c, buf, len, err);
}

int redis_send(redis_conn *c, sv_error *err, int argc, const char *const *argv)
{
    size_t size = 32;
    for (int i = 0; i < argc; i++)
        size += strlen(argv[i]) + 32;
    char *cmd = xmalloc(size);
    size_t n = (size_t)snprintf(cmd, size, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);
        n += (size_t)snprintf(cmd + n, size - n, "$%zu\r\n", l);
        memcpy(cmd + n, argv[i], l);
        n += l;
        memcpy(cmd + n, "\r\n", 2);
        n += 2;
    }
    int rc = conn_write(c, cmd, n, err);
    /* the command may hold the password (AUTH): wipe it */
    explicit_bzero(cmd, size);
    free(cmd);
    return rc;
}

int redis_write(redis_conn *c, const void *buf, size_t len, sv_error *err)
{
    return conn_write(c, buf, len, err);
}

int redis_read_reply(redis_conn *c, redis_reply *reply, const char *after, sv_error *err)
{
    memset(reply, 0, sizeof *reply);
    for (;;) {
        size_t used = 0;
        int r = c->len ? redis_reply_parse(c->buf, c->len, reply, &used, err) : 0;
        if (r < 0)
            return sv_error_wrap(err, "redis at %s", c->endpoint);
        if (r > 0) {
            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
            return 0;
        }
        if (c->cap - c->len < 4096) {
            if (c->cap >= REDIS_REPLY_MAX + 4096)
                return sv_error_set(err, SV_EXIT_FAILED, "redis at %s: a reply over %u bytes", c->endpoint,
                                    REDIS_REPLY_MAX);
            c->cap = c->cap ? c->cap * 2 : 16384;
            c->buf = xrealloc(c->buf, c->cap);
        }
        ssize_t got = conn_read_raw(c, c->buf + c->len, c->cap - c->len, err);
        if (got < 0)
            return -1;
        if (got == 0) {
            sv_error_set(err, SV_EXIT_TEMPFAIL, "redis at %s closed the connection after %s", c->endpoint,
                         after);
            if (c->ssl == NULL)
                sv_error_hint(err, "if the server wants TLS, use a rediss:// URL");
            return -1;
        }
        c->len += (size_t)got;
    }
}

int redis_conn_read_exact(redis_conn *c, void *buf, size_t len, const char *after, sv_error *err)
{
    char *p = buf;
    while (len) {
        ssize_t n = redis_conn_read(c, p, len, err);
        if (n < 0)
            return -1;
        if (n == 0)
            return sv_error_set(err, SV_EXIT_TEMPFAIL, "redis at %s closed the connection in %s", c->endpoint,
                                after);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int redis_read_bulk_head(redis_conn *c, redis_reply *reply, uint64_t *len, const char *after, sv_error *err)
{
    memset(reply, 0, sizeof *reply);
    for (;;) {
        char *eol = c->len ? memchr(c->buf, '\n', c->len) : NULL;
        if (eol) {
            if (c->buf[0] != '$')
                return redis_read_reply(c, reply, after, err);
            size_t line = (size_t)(eol - c->buf) + 1;
            char num[32];
            size_t nl = line - 1;
            if (nl < 2 || c->buf[nl - 1] != '\r' || nl - 2 >= sizeof num)
                return sv_error_set(err, SV_EXIT_FAILED, "redis at %s: protocol error: a bad bulk header",
                                    c->endpoint);
            memcpy(num, c->buf + 1, nl - 2);
            num[nl - 2] = '\0';
            char *end;
            long long v = strtoll(num, &end, 10);
            if (*end || end == num || v < -1)
                return sv_error_set(err, SV_EXIT_FAILED, "redis at %s: protocol error: a bad bulk length",
                                    c->endpoint);
            memmove(c->buf, c->buf + line, c->len - line);
            c->len -= line;
            if (v == -1) {
                reply->type = REDIS_REPLY_NIL;
                return 0;
            }
            *len = (uint64_t)v;
            return 1;
        }
        if (c->len >= 64) {
            if (c->buf[0] != '$')
                return redis_read_reply(c, reply, after, err);
            return sv_error_set(err, SV_EXIT_FAILED, "redis at %s: protocol error: a bad bulk header",
                                c->endpoint);
        }
        if (c->cap - c->len < 4096) {
            c->cap = c->cap ? c->cap * 2 : 16384;
            c->buf = xrealloc(c->buf, c->cap);
        }
        ssize_t got = conn_read_raw(c, c->buf + c->len, c->cap - c->len, err);
        if (got < 0)
            return -1;
        if (got == 0)
            return sv_error_set(err, SV_EXIT_TEMPFAIL, "redis at %s closed the connection after %s",
                                c->endpoint, after);
        c->len += (size_t)got;
    }
}

int redis_command(redis_conn *c, redis_reply *reply, sv_error *err, int argc, const char *const *argv)
{
    memset(reply, 0, sizeof *reply);
    if (redis_send(c, err, argc, argv) != 0)
        return -1;
    return redis_read_reply(c, reply, argv[0], err);
}

const char *redis_conn_endpoint(const redis_conn *c)
{
    return c->endpoint;
}

/* The reply to AUTH as an error naming what to fix. */
static int auth_refused(redis_conn *c, const struct redis_url *u, const char *reply, bool from_url,
                        sv_error *err)
{
    if (strncmp(reply, "WRONGPASS", 9) == 0 || strstr(reply, "invalid password") ||
        strstr(reply, "invalid username-password")) {
        sv_error_set(err, SV_EXIT_CONFIG, "redis at %s refused the password%s%s", c->endpoint,
                     u->user ? " of user " : "", u->user ? u->user : "");
        return sv_error_hint(err, "check %s",
                             from_url ? "the password in SAUVE_REDIS_URL"
                                      : "SAUVE_REDIS_PASSWORD or SAUVE_REDIS_PASSWORD_FILE");
    }
    if (strstr(reply, "without any password configured") || strstr(reply, "no password is set")) {
        sv_error_set(err, SV_EXIT_CONFIG, "redis at %s has no password, but one is configured", c->endpoint);
        return sv_error_hint(err, "remove the password from SAUVE_REDIS_URL / SAUVE_REDIS_PASSWORD, or set "
                                  "requirepass on the server");
    }
    return sv_error_set(err, SV_EXIT_CONFIG, "redis at %s refused AUTH: %.200s", c->endpoint, reply);
}

redis_conn *redis_connect(const struct redis_conn_options *o, sv_error *err)
{
    const struct redis_url *u = o->url;
    redis_conn *c = xcalloc(1, sizeof *c);
    c->fd = -1;
    c->timeout_s = o->timeout_s > 0 ? o->timeout_s : 60;
    bool v6 = strchr(u->host, ':') != NULL;
    c->endpoint = xasprintf("%s%s%s:%d%s as %s", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port,
                            u->tls ? " (TLS)" : "", u->user ? u->user : "default");
    if (tcp_connect(c, u, err) != 0 || (u->tls && tls_start(c, o, err) != 0)) {
        redis_close(c);
        return NULL;
    }
    const char *password = u->password ? u->password : o->password;
    if (password && *password) {
        const char *argv[3] = {"AUTH"};
        int argc = 1;
        if (u->user)
            argv[argc++] = u->user;
        argv[argc++] = password;
        redis_reply r;
        if (redis_command(c, &r, err, argc, argv) != 0) {
            redis_close(c);
            return NULL;
        }
        if (r.type == REDIS_REPLY_ERROR) {
            auth_refused(c, u, r.str, u->password != NULL, err);
            redis_reply_free(&r);
            redis_close(c);
            return NULL;
        }
        redis_reply_free(&r);
    }
    return c;
}

void redis_close(redis_conn *c)
{
    if (!c)
        return;
    if (c->ssl) {
        SSL_shutdown(c->ssl); /* best effort: we are leaving either way */
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    free(c->endpoint);
    free(c->buf);
    free(c);
}
