/*
 * Tests of runner/src/storage/s3: the pure parts of client.c (URLs,
 * addressing, retry policy, part schedule) and, against a scripted fake HTTP
 * server on loopback, what a real server cannot be made to do on demand: a
 * body cut mid-way (ranged resume), a 503 then success, a 200 whose body is
 * an <Error>. The real S3 server (RADOS Gateway) is in tests/integration.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "config/config.h"
#include "storage/s3/client.h"
#include "storage/s3/xml.h"
#include "storage/storage.h"

/* ---- pure functions -------------------------------------------------- */

static void test_storage_url(void **state)
{
    (void)state;
    char *b, *p;
    sv_error err = {0};
    assert_int_equal(s3_parse_storage_url("s3://bucket", &b, &p, &err), 0);
    assert_string_equal(b, "bucket");
    assert_string_equal(p, "");
    free(b);
    free(p);
    assert_int_equal(s3_parse_storage_url("s3://b//x//", &b, &p, &err), 0); /* extra slashes tolerated */
    assert_string_equal(p, "x/");
    free(b);
    free(p);
    assert_int_equal(s3_parse_storage_url("s3://my-bucket.v2/a/b/", &b, &p, &err), 0);
    assert_string_equal(b, "my-bucket.v2");
    assert_string_equal(p, "a/b/");
    free(b);
    free(p);
    assert_int_equal(s3_parse_storage_url("s3://b/x//y", &b, &p, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_int_equal(s3_parse_storage_url("s3:///x", &b, &p, &err), -1);
    assert_non_null(strstr(err.msg, "SAUVE_STORAGE"));
    assert_int_equal(s3_parse_storage_url("s3://bad bucket/x", &b, &p, &err), -1);
    assert_int_equal(s3_parse_storage_url("s3://b/x?y", &b, &p, &err), -1);
    assert_null(b);
    /* "." and ".." segments would be resolved away by HTTP */
    const char *dots[] = {"s3://b/.",   "s3://b/..",  "s3://b/x/../y",
                          "s3://b/./x", "s3://b/x/.", "s3://b/x/../"};
    for (size_t i = 0; i < sizeof dots / sizeof *dots; i++) {
        err = (sv_error){0};
        assert_int_equal(s3_parse_storage_url(dots[i], &b, &p, &err), -1);
        assert_int_equal(err.code, SV_EXIT_CONFIG);
        assert_non_null(strstr(err.msg, "SAUVE_STORAGE"));
    }
    assert_int_equal(s3_parse_storage_url("s3://b/..x/.y./...", &b, &p, &err), 0); /* only whole segments */
    assert_string_equal(p, "..x/.y./.../");
    free(b);
    free(p);
}

static void test_endpoint_and_addressing(void **state)
{
    (void)state;
    struct s3_endpoint ep;
    sv_error err = {0};
    char *url, *host, *path;

    assert_int_equal(s3_endpoint_parse("https://s3.eu-west-3.amazonaws.com", "X", &ep, &err), 0);
    assert_true(ep.https);
    assert_int_equal(ep.port, 0);
    s3_address(&ep, "bkt", false, "set/a b+c~.zst", NULL, &url, &host, &path);
    assert_string_equal(host, "bkt.s3.eu-west-3.amazonaws.com");
    assert_string_equal(path, "/set/a%20b%2Bc~.zst");
    assert_string_equal(url, "https://bkt.s3.eu-west-3.amazonaws.com/set/a%20b%2Bc~.zst");
    free(url), free(host), free(path);
    /* path style, bucket-level request with a query */
    s3_address(&ep, "bkt", true, "", "list-type=2&prefix=a%2F", &url, &host, &path);
    assert_string_equal(host, "s3.eu-west-3.amazonaws.com");
    assert_string_equal(path, "/bkt");
    assert_string_equal(url, "https://s3.eu-west-3.amazonaws.com/bkt?list-type=2&prefix=a%2F");
    free(url), free(host), free(path);
    /* a dotted bucket cannot be virtual-hosted over TLS: path style */
    s3_address(&ep, "my.bucket", false, "k", NULL, &url, &host, &path);
    assert_string_equal(url, "https://s3.eu-west-3.amazonaws.com/my.bucket/k");
    free(url), free(host), free(path);
    s3_endpoint_free(&ep);

    /* port, base path, IP literal (always path style), uppercase host */
    assert_int_equal(s3_endpoint_parse("http://MinIO.local:9000/s3/", "X", &ep, &err), 0);
    assert_false(ep.https);
    assert_int_equal(ep.port, 9000);
    assert_string_equal(ep.host, "minio.local");
    assert_string_equal(ep.base_path, "/s3");
    s3_address(&ep, "b1b", false, "k", NULL, &url, &host, &path);
    assert_string_equal(host, "b1b.minio.local:9000");
    assert_string_equal(url, "http://b1b.minio.local:9000/s3/k");
    free(url), free(host), free(path);
    s3_endpoint_free(&ep);
    assert_int_equal(s3_endpoint_parse("http://127.0.0.1:80", "X", &ep, &err), 0);
    s3_address(&ep, "bkt", false, "k", NULL, &url, &host, &path);
    assert_string_equal(host, "127.0.0.1"); /* default port left out of Host */
    assert_string_equal(url, "http://127.0.0.1/bkt/k");
    free(url), free(host), free(path);
    s3_endpoint_free(&ep);
    assert_int_equal(s3_endpoint_parse("http://[::1]:7480", "X", &ep, &err), 0);
    assert_string_equal(ep.host, "[::1]");
    s3_endpoint_free(&ep);

    assert_int_equal(s3_endpoint_parse("ftp://x", "AWS_ENDPOINT_URL_S3", &ep, &err), -1);
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, "AWS_ENDPOINT_URL_S3"));
    assert_int_equal(s3_endpoint_parse("http://user:pw@h", "X", &ep, &err), -1);
    assert_int_equal(s3_endpoint_parse("http://h:99999", "X", &ep, &err), -1);
    assert_int_equal(s3_endpoint_parse("http://:80", "X", &ep, &err), -1);

    assert_true(s3_bucket_virtual_ok("my-bucket", true));
    assert_true(s3_bucket_virtual_ok("my.bucket", false));
    assert_false(s3_bucket_virtual_ok("my.bucket", true));
    assert_false(s3_bucket_virtual_ok("My_Bucket", false));
    assert_false(s3_bucket_virtual_ok("ab", false));
}

static void test_retry_policy(void **state)
{
    (void)state;
    /* transport: 7 refused, 28 timeout, 56 reset, 52 empty reply, 18 truncated */
    assert_true(s3_retryable(7, 0, ""));
    assert_true(s3_retryable(28, 0, ""));
    assert_true(s3_retryable(56, 0, ""));
    assert_true(s3_retryable(52, 0, ""));
    assert_true(s3_retryable(18, 0, ""));
    assert_false(s3_retryable(60, 0, "")); /* certificate not trusted */
    assert_false(s3_retryable(42, 0, "")); /* aborted by us */
    assert_false(s3_retryable(23, 0, "")); /* the sink failed */
    assert_true(s3_retryable(0, 500, "InternalError"));
    assert_true(s3_retryable(0, 502, ""));
    assert_true(s3_retryable(0, 503, "SlowDown"));
    assert_true(s3_retryable(0, 504, ""));
    assert_true(s3_retryable(0, 400, "RequestTimeout"));
    assert_true(s3_retryable(0, 200, "InternalError")); /* a 200 whose body is an <Error> */
    assert_false(s3_retryable(0, 403, "SignatureDoesNotMatch"));
    assert_false(s3_retryable(0, 404, "NoSuchBucket"));
    assert_false(s3_retryable(0, 400, "BadDigest"));
    assert_true(s3_retryable(0, 429, ""));                /* Too Many Requests */
    assert_true(s3_retryable(0, 400, "TooManyRequests")); /* whatever the status */
    assert_false(s3_retryable(0, 501, "NotImplemented"));

    /* full jitter under min(20 s, 200 ms x 2^(n-1)) */
    assert_int_equal(s3_backoff_ms(1, 0.0), 0);
    assert_int_equal(s3_backoff_ms(1, 0.5), 100);
    assert_int_equal(s3_backoff_ms(2, 0.5), 200);
    assert_int_equal(s3_backoff_ms(4, 0.99), 1584);
    assert_int_equal(s3_backoff_ms(8, 0.5), 10000);
    assert_int_equal(s3_backoff_ms(9, 0.5), 10000); /* capped at 20 s */
    assert_int_equal(s3_backoff_ms(60, 0.5), 10000);
    assert_true(s3_backoff_ms(9, 1.0) < 20000);
}

static void test_part_schedule_fits_5_tib(void **state)
{
    (void)state;
    const uint64_t MiB = S3_MIB;
    assert_true(s3_part_size(16 * MiB, 1) == 16 * MiB);
    assert_true(s3_part_size(16 * MiB, 900) == 16 * MiB);
    assert_true(s3_part_size(16 * MiB, 901) == 32 * MiB);
    assert_true(s3_part_size(16 * MiB, 1801) == 64 * MiB);
    assert_true(s3_part_size(5120 * MiB, 10000) == S3_MAX_PART_SIZE);
    /* For every allowed configured size: parts within S3's limits, never
     * shrinking, and 10,000 of them hold 5 TiB. */
    for (uint64_t base = 5; base <= 5120; base++) {
        uint64_t total = 0, prev = 0;
        for (int n = 1; n <= S3_MAX_PARTS; n++) {
            uint64_t s = s3_part_size(base * MiB, n);
            assert_true(s >= S3_MIN_PART_SIZE && s <= S3_MAX_PART_SIZE);
            assert_true(s >= prev);
            prev = s;
            total += s;
        }
        assert_true(total >= S3_MAX_OBJECT);
    }
    /* memory: parallel x base while parts keep their size, then fewer in flight */
    assert_int_equal(s3_parts_in_flight(4, 16 * MiB, 16 * MiB), 4);
    assert_int_equal(s3_parts_in_flight(4, 16 * MiB, 32 * MiB), 2);
    assert_int_equal(s3_parts_in_flight(4, 16 * MiB, 64 * MiB), 2); /* floor: one uploads, one fills */
    assert_int_equal(s3_parts_in_flight(8, 16 * MiB, 32 * MiB), 4);
    assert_int_equal(s3_parts_in_flight(1, 16 * MiB, 64 * MiB), 1);
    assert_int_equal(s3_parts_in_flight(64, 5 * MiB, 5 * MiB), 64);
}

static void test_slist_wipe(void **state)
{
    (void)state;
    struct curl_slist *l = curl_slist_append(NULL, "Authorization: AWS4-HMAC-SHA256 Credential=AKID/x");
    l = curl_slist_append(l, "x-amz-security-token: secret-token");
    l = curl_slist_append(l, "");
    size_t n0 = strlen(l->data), n1 = strlen(l->next->data);
    s3_slist_wipe(l);
    for (size_t i = 0; i < n0; i++)
        assert_int_equal(l->data[i], 0);
    for (size_t i = 0; i < n1; i++)
        assert_int_equal(l->next->data[i], 0);
    curl_slist_free_all(l);
    s3_slist_wipe(NULL);
}

static void test_base64_md5(void **state)
{
    (void)state;
    char md5[25];
    s3_content_md5("", 0, md5);
    assert_string_equal(md5, "1B2M2Y8AsgTpgAmY7PhCfg==");
    char *b = s3_base64("hello", 5);
    assert_string_equal(b, "aGVsbG8=");
    free(b);
}

/* ---- a scripted fake S3 ---------------------------------------------- */

struct fake_req {
    char method[8];
    char target[512];
    char range[64];
    char if_match[64];
    char md5[64];
    char sse_c_key[64];
    size_t body_len;
};

struct fake;
/* Answers request number n (0-based, in arrival order) on fd. Returns true
 * to keep the connection open. */
typedef bool (*fake_handler)(struct fake *f, int fd, const struct fake_req *r, int n);

struct fake {
    int lfd;
    int port;
    pthread_t accept_thread;
    fake_handler handler;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct fake_req reqs[64];
    int nreq;
    int live; /* connection threads running */
    void *ctx;
};

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, const char *status, const char *headers, const void *body, size_t len,
                    size_t content_length)
{
    char head[1024];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                     content_length, headers ? headers : "");
    write_all(fd, head, (size_t)n);
    write_all(fd, body, len);
}

static void header_copy(const char *line, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0)
        return;
    const char *v = line + n;
    while (*v == ' ')
        v++;
    snprintf(out, cap, "%.*s", (int)strcspn(v, "\r\n"), v);
}

struct conn_arg {
    struct fake *f;
    int fd;
};

static void *conn_main(void *arg)
{
    struct conn_arg *ca = arg;
    struct fake *f = ca->f;
    int fd = ca->fd;
    free(ca);
    char buf[16384];
    size_t have = 0;
    for (bool keep = true; keep;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            ssize_t n = have < sizeof buf ? read(fd, buf + have, sizeof buf - have) : -1;
            if (n <= 0)
                goto out;
            have += (size_t)n;
        }
        struct fake_req r = {0};
        *end = '\0';
        sscanf(buf, "%7s %511s", r.method, r.target);
        char cl[32] = "";
        for (char *line = strstr(buf, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
            header_copy(line + 2, "Range:", r.range, sizeof r.range);
            header_copy(line + 2, "If-Match:", r.if_match, sizeof r.if_match);
            header_copy(line + 2, "Content-MD5:", r.md5, sizeof r.md5);
            header_copy(line + 2, "x-amz-server-side-encryption-customer-key:", r.sse_c_key,
                        sizeof r.sse_c_key);
            header_copy(line + 2, "Content-Length:", cl, sizeof cl);
        }
        r.body_len = (size_t)strtoull(cl, NULL, 10);
        size_t consumed = (size_t)(end + 4 - buf);
        memmove(buf, buf + consumed, have - consumed);
        have -= consumed;
        /* Discard the request body. */
        size_t left = r.body_len;
        size_t take = left < have ? left : have;
        memmove(buf, buf + take, have - take);
        have -= take;
        left -= take;
        while (left > 0) {
            char sink[65536];
            ssize_t n = read(fd, sink, left < sizeof sink ? left : sizeof sink);
            if (n <= 0)
                goto out;
            left -= (size_t)n;
        }
        pthread_mutex_lock(&f->mu);
        int idx = f->nreq;
        if (f->nreq < 64)
            f->reqs[f->nreq++] = r;
        pthread_mutex_unlock(&f->mu);
        keep = f->handler(f, fd, &r, idx);
    }
out:
    close(fd);
    pthread_mutex_lock(&f->mu);
    f->live--;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        struct conn_arg *ca = xcalloc(1, sizeof *ca);
        ca->f = f;
        ca->fd = fd;
        pthread_mutex_lock(&f->mu);
        f->live++;
        pthread_mutex_unlock(&f->mu);
        pthread_t t;
        pthread_create(&t, NULL, conn_main, ca);
        pthread_detach(t);
    }
}

static struct fake *fake_start(fake_handler h, void *ctx)
{
    struct fake *f = xcalloc(1, sizeof *f);
    f->handler = h;
    f->ctx = ctx;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 16), 0);
    socklen_t len = sizeof a;
    getsockname(f->lfd, (struct sockaddr *)&a, &len);
    f->port = ntohs(a.sin_port);
    pthread_create(&f->accept_thread, NULL, accept_main, f);
    return f;
}

/* Call after storage_close (which closes the client's connections). */
static void fake_stop(struct fake *f)
{
    shutdown(f->lfd, SHUT_RDWR);
    close(f->lfd);
    pthread_join(f->accept_thread, NULL);
    pthread_mutex_lock(&f->mu);
    while (f->live > 0)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    free(f);
}

struct s3fx {
    char *dir;
    char *empty_yaml;
    sv_config cfg;
    storage *st;
};

static void open_storage(struct s3fx *x, struct fake *f, const char *extra)
{
    x->dir = test_tmpdir();
    x->empty_yaml = test_write_file(x->dir, "empty.yaml", "");
    char endpoint[64], extra_kv[128];
    snprintf(endpoint, sizeof endpoint, "AWS_ENDPOINT_URL_S3=http://127.0.0.1:%d", f->port);
    snprintf(extra_kv, sizeof extra_kv, "%s", extra ? extra : "SAUVE_S3_PARALLEL=2");
    const char *env[] = {"AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
                         "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                         endpoint,
                         "SAUVE_S3_PATH_STYLE=true",
                         "SAUVE_S3_PART_SIZE=5",
                         "SAUVE_S3_MAX_ATTEMPTS=2",
                         extra_kv,
                         NULL};
    struct config_load_options o = {.env = env, .file = x->empty_yaml};
    sv_error err = {0};
    assert_int_equal(config_load(&x->cfg, &o, &err), 0);
    x->st = storage_open("s3://bkt/pre", &x->cfg, &err);
    if (!x->st)
        fail_msg("storage_open: %s", err.msg);
}

static void close_storage(struct s3fx *x)
{
    storage_close(x->st);
    config_free(&x->cfg);
    test_rmtree(x->dir);
    free(x->dir);
    free(x->empty_yaml);
}

#define OBJ_LEN 100000

static bool resume_handler(struct fake *f, int fd, const struct fake_req *r, int n)
{
    const char *obj = f->ctx;
    if (n == 0) {
        /* The whole object announced, 40% sent, then the connection breaks. */
        respond(fd, "200 OK", "ETag: \"e1\"\r\n", obj, 40000, OBJ_LEN);
        return false;
    }
    if (strcmp(r->range, "bytes=40000-") == 0 && strcmp(r->if_match, "\"e1\"") == 0) {
        respond(fd, "206 Partial Content", "ETag: \"e1\"\r\nContent-Range: bytes 40000-99999/100000\r\n",
                obj + 40000, OBJ_LEN - 40000, OBJ_LEN - 40000);
        return true;
    }
    respond(fd, "400 Bad Request", NULL, "", 0, 0);
    return true;
}

static void test_get_resumes_a_broken_body_with_range(void **state)
{
    (void)state;
    char *obj = xmalloc(OBJ_LEN);
    for (int i = 0; i < OBJ_LEN; i++)
        obj[i] = (char)(i * 7 + i / 251);
    struct fake *f = fake_start(resume_handler, obj);
    struct s3fx x = {0};
    open_storage(&x, f, NULL);

    stream *sink = buffer_sink(1 << 20);
    sv_error err = {0};
    int rc = storage_read(x.st, "set/obj", sink, &err);
    if (rc != 0)
        fail_msg("storage_read: %s", err.msg);
    size_t len;
    const void *data = buffer_sink_data(sink, &len);
    assert_int_equal(len, OBJ_LEN); /* every byte exactly once */
    assert_memory_equal(data, obj, OBJ_LEN);
    stream_abort(sink);
    stream_free(sink);

    close_storage(&x);
    assert_int_equal(f->nreq, 2);
    assert_string_equal(f->reqs[0].method, "GET");
    assert_string_equal(f->reqs[0].target, "/bkt/pre/set/obj");
    assert_string_equal(f->reqs[0].range, "");
    assert_string_equal(f->reqs[1].range, "bytes=40000-");
    fake_stop(f);
    free(obj);
}

/* The whole object arrives in a chunked answer cut before its last chunk:
 * the resume asks for bytes=OBJ_LEN-, which is past the end (416). */
static bool resume_at_end_handler(struct fake *f, int fd, const struct fake_req *r, int n)
{
    const char *obj = f->ctx;
    if (n == 0) {
        char head[64];
        int hn = snprintf(head, sizeof head,
                          "HTTP/1.1 200 OK\r\nETag: \"e1\"\r\nTransfer-Encoding: chunked\r\n\r\n");
        write_all(fd, head, (size_t)hn);
        hn = snprintf(head, sizeof head, "%x\r\n", OBJ_LEN);
        write_all(fd, head, (size_t)hn);
        write_all(fd, obj, OBJ_LEN);
        write_all(fd, "\r\n", 2); /* no terminating 0-chunk: the connection ends */
        return false;
    }
    if (strcmp(r->range, "bytes=100000-") == 0) {
        static const char e[] = "<Error><Code>InvalidRange</Code></Error>";
        respond(fd, "416 Requested Range Not Satisfiable", "Content-Range: bytes */100000\r\n", e,
                sizeof e - 1, sizeof e - 1);
        return true;
    }
    respond(fd, "400 Bad Request", NULL, "", 0, 0);
    return true;
}

/* The resume is answered with another range than the one asked for. */
static bool wrong_range_handler(struct fake *f, int fd, const struct fake_req *r, int n)
{
    const char *obj = f->ctx;
    (void)r;
    if (n == 0) {
        respond(fd, "200 OK", "ETag: \"e1\"\r\n", obj, 40000, OBJ_LEN);
        return false;
    }
    respond(fd, "206 Partial Content", "ETag: \"e1\"\r\nContent-Range: bytes 0-99999/100000\r\n", obj,
            OBJ_LEN, OBJ_LEN);
    return true;
}

static int read_obj(fake_handler h, char *obj, size_t *len_out, sv_error *err, int *nreq)
{
    struct fake *f = fake_start(h, obj);
    struct s3fx x = {0};
    open_storage(&x, f, NULL);
    stream *sink = buffer_sink(1 << 20);
    int rc = storage_read(x.st, "set/obj", sink, err);
    buffer_sink_data(sink, len_out);
    if (rc == 0 && *len_out == OBJ_LEN)
        assert_memory_equal(buffer_sink_data(sink, len_out), obj, OBJ_LEN);
    stream_abort(sink);
    stream_free(sink);
    close_storage(&x);
    *nreq = f->nreq;
    fake_stop(f);
    return rc;
}

static void test_get_resume_at_the_end_and_wrong_range(void **state)
{
    (void)state;
    char *obj = xmalloc(OBJ_LEN);
    for (int i = 0; i < OBJ_LEN; i++)
        obj[i] = (char)(i * 7 + i / 251);
    size_t len;
    int nreq;
    sv_error err = {0};
    if (read_obj(resume_at_end_handler, obj, &len, &err, &nreq) != 0)
        fail_msg("storage_read: %s", err.msg);
    assert_int_equal(len, OBJ_LEN);
    assert_int_equal(nreq, 2);

    assert_int_equal(read_obj(wrong_range_handler, obj, &len, &err, &nreq), -1);
    if (!strstr(err.msg, "bytes=40000-") || !strstr(err.msg, "bytes 0-99999/100000"))
        fail_msg("message: %s", err.msg);
    assert_int_equal(len, 40000); /* nothing of the wrong range reached the sink */
    free(obj);
}

static bool slowdown_handler(struct fake *f, int fd, const struct fake_req *r, int n)
{
    (void)f;
    static const char slow[] = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
                               "</Message></Error>";
    if (n == 0)
        respond(fd, "503 Slow Down", NULL, slow, sizeof slow - 1, sizeof slow - 1);
    else if (strcmp(r->method, "HEAD") == 0)
        respond(fd, "200 OK", "ETag: \"abc\"\r\n", "", 0, 2); /* the size check after the PUT */
    else
        respond(fd, "200 OK", "ETag: \"abc\"\r\n", "", 0, 0);
    return true;
}

static void test_put_is_retried_after_slowdown(void **state)
{
    (void)state;
    struct fake *f = fake_start(slowdown_handler, NULL);
    struct s3fx x = {0};
    open_storage(&x, f, NULL);
    sv_error err = {0};
    assert_int_equal(storage_put(x.st, "m.json", "{}", 2, &err), 0);
    close_storage(&x);
    assert_int_equal(f->nreq, 3);
    assert_string_equal(f->reqs[2].method, "HEAD");
    assert_string_equal(f->reqs[1].method, "PUT");
    assert_string_equal(f->reqs[1].target, "/bkt/pre/m.json");
    assert_string_equal(f->reqs[1].md5, "mZFLkyvTelC5g8XnyQrpOw=="); /* base64(md5("{}")) */
    assert_int_equal(f->reqs[1].body_len, 2);
    fake_stop(f);
}

/* Multipart: Create, two parts, then CompleteMultipartUpload answers 200
 * with an <Error> body twice: the write fails and the upload is aborted. */
static bool complete_error_handler(struct fake *f, int fd, const struct fake_req *r, int n)
{
    (void)f;
    (void)n;
    if (strcmp(r->method, "POST") == 0 && strstr(r->target, "?uploads")) {
        static const char init[] = "<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>pre/big</Key>"
                                   "<UploadId>UP1</UploadId></InitiateMultipartUploadResult>";
        respond(fd, "200 OK", NULL, init, sizeof init - 1, sizeof init - 1);
    } else if (strcmp(r->method, "PUT") == 0) {
        char etag[64];
        snprintf(etag, sizeof etag, "ETag: \"p%zu\"\r\n", r->body_len);
        respond(fd, "200 OK", etag, "", 0, 0);
    } else if (strcmp(r->method, "POST") == 0) {
        static const char e[] = "<?xml version=\"1.0\"?>\n<Error><Code>InternalError</Code>"
                                "<Message>We encountered an internal error.</Message></Error>";
        respond(fd, "200 OK", NULL, e, sizeof e - 1, sizeof e - 1);
    } else {
        respond(fd, "204 No Content", NULL, "", 0, 0);
    }
    return true;
}

static void test_complete_answering_200_error_fails_and_aborts(void **state)
{
    (void)state;
    struct fake *f = fake_start(complete_error_handler, NULL);
    struct s3fx x = {0};
    open_storage(&x, f, NULL);
    sv_error err = {0};
    stream *w = storage_write(x.st, "big", &err);
    assert_non_null(w);
    size_t len = 5 * S3_MIB + 1000;
    char *data = xcalloc(1, len);
    assert_int_equal(stream_write(w, data, len, &err), 0);
    assert_int_equal(stream_finish(w, &err), -1);
    assert_non_null(strstr(err.msg, "CompleteMultipartUpload"));
    assert_non_null(strstr(err.msg, "InternalError"));
    assert_non_null(strstr(err.msg, "after 2 attempts"));
    stream_abort(w);
    stream_free(w);
    free(data);
    close_storage(&x);

    int creates = 0, parts = 0, completes = 0, aborts = 0;
    for (int i = 0; i < f->nreq; i++) {
        const struct fake_req *r = &f->reqs[i];
        if (!strcmp(r->method, "POST") && strstr(r->target, "?uploads"))
            creates++;
        else if (!strcmp(r->method, "PUT") && strstr(r->target, "uploadId=UP1"))
            parts++;
        else if (!strcmp(r->method, "POST") && strstr(r->target, "uploadId=UP1"))
            completes++;
        else if (!strcmp(r->method, "DELETE") && strstr(r->target, "uploadId=UP1"))
            aborts++;
    }
    assert_int_equal(creates, 1);
    assert_int_equal(parts, 2);
    assert_int_equal(completes, 2);
    assert_int_equal(aborts, 1);
    fake_stop(f);
}

/* ---- CompleteMultipartUpload answers, and the size check ------------- */

/* A scripted multipart store: Complete attempt i answers 200 with
 * complete[i] (NULL: 404 NoSuchUpload); HEAD reports the bytes received in
 * parts (or by a single PUT) plus head_delta. */
struct mp_script {
    const char *complete[4];
    long head_delta;
    int completes;
    size_t stored;
};

static const char complete_ok[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                  "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/"
                                  "2006-03-01/\"><Bucket>bkt</Bucket><Key>pre/big</Key><ETag>\"e-2\"</ETag>"
                                  "</CompleteMultipartUploadResult>";

static bool mp_handler(struct fake *f, int fd, const struct fake_req *r, int n)
{
    (void)n;
    struct mp_script *sc = f->ctx;
    if (strcmp(r->method, "POST") == 0 && strstr(r->target, "?uploads")) {
        static const char init[] = "<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>pre/big</Key>"
                                   "<UploadId>UP1</UploadId></InitiateMultipartUploadResult>";
        respond(fd, "200 OK", NULL, init, sizeof init - 1, sizeof init - 1);
    } else if (strcmp(r->method, "PUT") == 0) {
        pthread_mutex_lock(&f->mu);
        sc->stored += r->body_len;
        pthread_mutex_unlock(&f->mu);
        respond(fd, "200 OK", "ETag: \"p\"\r\n", "", 0, 0);
    } else if (strcmp(r->method, "POST") == 0) {
        pthread_mutex_lock(&f->mu);
        int i = sc->completes++;
        pthread_mutex_unlock(&f->mu);
        const char *body = i < 4 ? sc->complete[i] : NULL;
        if (body) {
            respond(fd, "200 OK", NULL, body, strlen(body), strlen(body));
        } else {
            static const char e[] = "<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>";
            respond(fd, "404 Not Found", NULL, e, sizeof e - 1, sizeof e - 1);
        }
    } else if (strcmp(r->method, "HEAD") == 0) {
        pthread_mutex_lock(&f->mu);
        size_t len = (size_t)((long)sc->stored + sc->head_delta);
        pthread_mutex_unlock(&f->mu);
        respond(fd, "200 OK", "ETag: \"e-2\"\r\n", "", 0, len);
    } else {
        respond(fd, "204 No Content", NULL, "", 0, 0);
    }
    return true;
}

#define MP_LEN (5 * S3_MIB + 1000)

/* Writes MP_LEN bytes (two parts) to "big"; returns stream_finish's result. */
static int mp_write(struct mp_script *sc, sv_error *err, int *aborts)
{
    struct fake *f = fake_start(mp_handler, sc);
    struct s3fx x = {0};
    open_storage(&x, f, NULL);
    stream *w = storage_write(x.st, "big", err);
    assert_non_null(w);
    char *data = xcalloc(1, MP_LEN);
    assert_int_equal(stream_write(w, data, MP_LEN, err), 0);
    int rc = stream_finish(w, err);
    if (rc < 0)
        stream_abort(w);
    stream_free(w);
    free(data);
    close_storage(&x);
    *aborts = 0;
    for (int i = 0; i < f->nreq; i++)
        if (!strcmp(f->reqs[i].method, "DELETE") && strstr(f->reqs[i].target, "uploadId=UP1"))
            (*aborts)++;
    fake_stop(f);
    return rc;
}

static void test_complete_200_empty_is_retried(void **state)
{
    (void)state;
    /* An empty 200 proves nothing: the second attempt's result counts. */
    struct mp_script sc = {.complete = {"", complete_ok}};
    sv_error err = {0};
    int aborts;
    if (mp_write(&sc, &err, &aborts) != 0)
        fail_msg("finish: %s", err.msg);
    assert_int_equal(sc.completes, 2);
    assert_int_equal(aborts, 0);
}

static void test_complete_200_blank_or_truncated_fails(void **state)
{
    (void)state;
    struct mp_script sc = {
        .complete = {"<CompleteMultipartUploadResult><Bucket>bkt</Bucket><Ke", " \r\n\t "}};
    sv_error err = {0};
    int aborts;
    assert_int_equal(mp_write(&sc, &err, &aborts), -1);
    assert_int_equal(sc.completes, 2);
    assert_non_null(strstr(err.msg, "CompleteMultipartUpload"));
    assert_non_null(strstr(err.msg, "not a CompleteMultipartUploadResult document"));
    assert_non_null(strstr(err.msg, "after 2 attempts"));
    assert_int_equal(err.code, SV_EXIT_TEMPFAIL);
    assert_int_equal(aborts, 1);

    /* another document, well-formed, is no result either */
    struct mp_script other = {.complete = {"<ListBucketResult></ListBucketResult>", "<a/>"}};
    assert_int_equal(mp_write(&other, &err, &aborts), -1);
    assert_non_null(strstr(err.msg, "not a CompleteMultipartUploadResult document"));
}

static void test_complete_200_namespaced_error_is_an_error(void **state)
{
    (void)state;
    static const char e[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<Error xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Code>InternalError</Code>"
        "<Message>We encountered an internal error.</Message></Error>";
    struct mp_script sc = {.complete = {e, e}};
    sv_error err = {0};
    int aborts;
    assert_int_equal(mp_write(&sc, &err, &aborts), -1);
    assert_non_null(strstr(err.msg, "HTTP 200 InternalError"));
    assert_int_equal(aborts, 1);
}

static void test_complete_lost_answer_then_no_such_upload(void **state)
{
    (void)state;
    /* The first answer is lost (empty); the retry finds the upload gone.
     * Without MD5 part ETags the HeadObject ETag cannot confirm it: fails. */
    struct mp_script sc = {.complete = {"", NULL}};
    sv_error err = {0};
    int aborts;
    assert_int_equal(mp_write(&sc, &err, &aborts), -1);
    assert_non_null(strstr(err.msg, "NoSuchUpload"));
}

/* CreateMultipartUpload whose first answer is lost after the store made
 * the upload (UP0): the retry gets UP1, the write completes UP1, and the
 * writer then aborts UP0 rather than leave it for prune. */
static bool lost_create_handler(struct fake *f, int fd, const struct fake_req *r, int n)
{
    (void)n;
    int *creates = f->ctx;
    if (strcmp(r->method, "POST") == 0 && strstr(r->target, "?uploads")) {
        pthread_mutex_lock(&f->mu);
        int i = (*creates)++;
        pthread_mutex_unlock(&f->mu);
        if (i == 0)
            return false; /* made, then the connection dropped before the answer */
        static const char init[] = "<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>pre/big</Key>"
                                   "<UploadId>UP1</UploadId></InitiateMultipartUploadResult>";
        respond(fd, "200 OK", NULL, init, sizeof init - 1, sizeof init - 1);
    } else if (strcmp(r->method, "PUT") == 0) {
        respond(fd, "200 OK", "ETag: \"p\"\r\n", "", 0, 0);
    } else if (strcmp(r->method, "POST") == 0) {
        respond(fd, "200 OK", NULL, complete_ok, sizeof complete_ok - 1, sizeof complete_ok - 1);
    } else if (strcmp(r->method, "HEAD") == 0) {
        respond(fd, "200 OK", "ETag: \"e-2\"\r\n", "", 0, MP_LEN);
    } else if (strcmp(r->method, "GET") == 0 && strstr(r->target, "uploads")) {
        static const char list[] =
            "<ListMultipartUploadsResult><Bucket>bkt</Bucket><IsTruncated>false</IsTruncated>"
            "<Upload><Key>pre/big</Key><UploadId>UP0</UploadId><Initiated>2026-12-05T00:00:00.000Z</"
            "Initiated>"
            "</Upload><Upload><Key>pre/big</Key><UploadId>UP1</UploadId>"
            "<Initiated>2026-12-05T00:00:01.000Z</Initiated></Upload>"
            "<Upload><Key>pre/big2</Key><UploadId>OTHER</UploadId>"
            "<Initiated>2026-12-05T00:00:01.000Z</Initiated></Upload></ListMultipartUploadsResult>";
        respond(fd, "200 OK", NULL, list, sizeof list - 1, sizeof list - 1);
    } else {
        respond(fd, "204 No Content", NULL, "", 0, 0);
    }
    return true;
}

static void test_create_retried_aborts_the_upload_of_the_lost_answer(void **state)
{
    (void)state;
    int creates = 0;
    struct fake *f = fake_start(lost_create_handler, &creates);
    struct s3fx x = {0};
    open_storage(&x, f, NULL);
    sv_error err = {0};
    stream *w = storage_write(x.st, "big", &err);
    assert_non_null(w);
    char *data = xcalloc(1, MP_LEN);
    assert_int_equal(stream_write(w, data, MP_LEN, &err), 0);
    if (stream_finish(w, &err) != 0)
        fail_msg("finish: %s", err.msg);
    stream_free(w);
    free(data);
    close_storage(&x);
    int aborted_up0 = 0, aborted_other = 0, lists = 0;
    for (int i = 0; i < f->nreq; i++) {
        const struct fake_req *r = &f->reqs[i];
        if (!strcmp(r->method, "DELETE") && strstr(r->target, "uploadId=UP0"))
            aborted_up0++;
        else if (!strcmp(r->method, "DELETE"))
            aborted_other++;
        if (!strcmp(r->method, "GET") && strstr(r->target, "uploads"))
            lists++;
    }
    assert_int_equal(creates, 2);
    assert_int_equal(lists, 1);
    assert_int_equal(aborted_up0, 1);
    assert_int_equal(aborted_other, 0); /* not our own, not another key's */
    fake_stop(f);
}

static void test_stored_size_must_match(void **state)
{
    (void)state;
    struct mp_script sc = {.complete = {complete_ok}, .head_delta = -1};
    sv_error err = {0};
    int aborts;
    assert_int_equal(mp_write(&sc, &err, &aborts), -1);
    char want[160];
    snprintf(want, sizeof want, "s3 CompleteMultipartUpload s3://bkt/pre/big at ");
    assert_non_null(strstr(err.msg, want));
    snprintf(want, sizeof want, "the stored object has %llu bytes (Content-Length), expected %llu",
             (unsigned long long)MP_LEN - 1, (unsigned long long)MP_LEN);
    if (!strstr(err.msg, want))
        fail_msg("message: %s", err.msg);

    /* a single PutObject too */
    struct mp_script one = {.head_delta = 5};
    struct fake *f = fake_start(mp_handler, &one);
    struct s3fx x = {0};
    open_storage(&x, f, NULL);
    assert_int_equal(storage_put(x.st, "m.json", "{\"a\":1}", 7, &err), -1);
    if (!strstr(err.msg, "s3 PutObject s3://bkt/pre/m.json") ||
        !strstr(err.msg, "has 12 bytes (Content-Length), expected 7"))
        fail_msg("message: %s", err.msg);
    one.head_delta = 0;
    one.stored = 0;
    assert_int_equal(storage_put(x.st, "m.json", "{\"a\":1}", 7, &err), 0);
    close_storage(&x);
    fake_stop(f);
}

/* A key with "." or ".." segments (the storage layer refuses them, the
 * client must not rely on it) goes out as signed, not resolved by curl. */
static void test_dot_segments_sent_as_is(void **state)
{
    (void)state;
    struct mp_script sc = {0};
    struct fake *f = fake_start(mp_handler, &sc);
    struct s3fx x = {0};
    open_storage(&x, f, NULL);
    sv_error err = {0};
    s3_cred_provider *creds = s3_credentials_new(&x.cfg, &err);
    assert_non_null(creds);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    struct s3_endpoint ep;
    assert_int_equal(s3_endpoint_parse(url, "X", &ep, &err), 0);
    struct s3_client_options o = {.bucket = "bkt",
                                  .endpoint = &ep,
                                  .endpoint_url = url,
                                  .region = "us-east-1",
                                  .path_style = true,
                                  .timeout_s = 10,
                                  .max_attempts = 1,
                                  .creds = creds};
    s3_client *c = s3_client_new(&o);
    s3_conn *conn = s3_conn_acquire(c);
    struct s3_request req = {.op = "GetObject", .method = "GET", .key = "a/./b/../c"};
    struct s3_response resp = {0};
    if (s3_request(conn, &req, &resp, &err) != 0)
        fail_msg("request: %s", err.msg);
    s3_response_reset(&resp);
    s3_conn_release(conn);
    s3_client_free(c);
    s3_endpoint_free(&ep);
    s3_credentials_free(creds);
    close_storage(&x);
    assert_string_equal(f->reqs[0].method, "GET");
    assert_string_equal(f->reqs[0].target, "/bkt/a/./b/../c");
    fake_stop(f);
}

/* Virtual-hosted addressing (no SAUVE_S3_PATH_STYLE): when the bucket's own
 * host name does not resolve, the hint names that host and the way out. */
static void test_virtual_host_not_resolved_names_the_host(void **state)
{
    (void)state;
    struct s3fx x = {0};
    x.dir = test_tmpdir();
    x.empty_yaml = test_write_file(x.dir, "empty.yaml", "");
    const char *env[] = {
        "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "AWS_ENDPOINT_URL_S3=http://s3.sauve-test.invalid:7480", "SAUVE_S3_MAX_ATTEMPTS=1", NULL};
    struct config_load_options o = {.env = env, .file = x.empty_yaml};
    sv_error err = {0};
    assert_int_equal(config_load(&x.cfg, &o, &err), 0);
    x.st = storage_open("s3://bkt/pre", &x.cfg, &err);
    if (!x.st)
        fail_msg("storage_open: %s", err.msg);
    assert_int_equal(storage_put(x.st, "m.json", "{}", 2, &err), -1);
    assert_int_equal(err.code, SV_EXIT_TEMPFAIL);
    if (!strstr(err.hint, "bkt.s3.sauve-test.invalid:7480") ||
        !strstr(err.hint, "or set SAUVE_S3_PATH_STYLE=true"))
        fail_msg("hint: %s", err.hint);
    close_storage(&x);
}

/* A listing answer one byte over S3_XML_MAX (xml.h): no S3 answer is that
 * large, so sauve stops reading it there instead of holding it. */
static bool huge_listing_handler(struct fake *f, int fd, const struct fake_req *r, int n)
{
    (void)f;
    (void)r;
    (void)n;
    size_t len = S3_XML_MAX + 1;
    char *body = xmalloc(len);
    static const char open_tag[] = "<ListBucketResult>", close_tag[] = "</ListBucketResult>";
    memcpy(body, open_tag, sizeof open_tag - 1);
    memset(body + sizeof open_tag - 1, ' ', len - (sizeof open_tag - 1) - (sizeof close_tag - 1));
    memcpy(body + len - (sizeof close_tag - 1), close_tag, sizeof close_tag - 1);
    respond(fd, "200 OK", NULL, body, len, len);
    free(body);
    return false;
}

static int count_entry(void *ctx, const storage_entry *e)
{
    (void)e;
    (*(int *)ctx)++;
    return 0;
}

/* A store's error Message that echoes a secret past the length kept. */
#define ECHOED_SECRET "Sess10nT0ken-echoed-by-the-store-0123456789"
static bool echo_secret_handler(struct fake *f, int fd, const struct fake_req *r, int n)
{
    (void)f;
    (void)r;
    (void)n;
    char msg[600];
    memset(msg, 'x', 490);
    snprintf(msg + 490, sizeof msg - 490, "%s", ECHOED_SECRET);
    char body[800];
    int len =
        snprintf(body, sizeof body, "<Error><Code>AccessDenied</Code><Message>%s</Message></Error>", msg);
    respond(fd, "403 Forbidden", "", body, (size_t)len, (size_t)len);
    return true;
}

static void test_error_message_masked_before_it_is_cut(void **state)
{
    (void)state;
    log_add_secret(ECHOED_SECRET);
    struct fake *f = fake_start(echo_secret_handler, NULL);
    struct s3fx x = {0};
    open_storage(&x, f, NULL);
    sv_error err = {0};
    assert_int_equal(storage_put(x.st, "m.json", "{}", 2, &err), -1);
    if (!strstr(err.msg, "AccessDenied") || !strstr(err.msg, "***") ||
        test_has_piece(err.msg, ECHOED_SECRET, 6))
        fail_msg("%s", err.msg);
    close_storage(&x);
    fake_stop(f);
    log_clear_secrets();
}

static void test_answer_larger_than_s3_sends_is_refused(void **state)
{
    (void)state;
    struct fake *f = fake_start(huge_listing_handler, NULL);
    struct s3fx x = {0};
    open_storage(&x, f, NULL);
    sv_error err = {0};
    int n = 0;
    assert_int_equal(storage_list(x.st, "default/", true, count_entry, &n, &err), -1);
    assert_int_equal(n, 0);
    if (!strstr(err.msg, "larger than 8 MiB"))
        fail_msg("%s", err.msg);
    close_storage(&x);
    fake_stop(f);
}

/* Listings of a bucket holding keys sauve cannot use, as RADOS Gateway
 * answers them with encoding-type=url: keys encoded, the continuation token
 * (its last key) and markers echoed unencoded, a control character in them
 * written as a reference XML forbids. */
static bool hostile_list_handler(struct fake *f, int fd, const struct fake_req *r, int n)
{
    (void)f;
    static const char page1[] =
        "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
        "<Contents><Key>pre%2Fdefault%2FS%2F%2Fabs</Key><Size>1</Size></Contents>"
        "<Contents><Key>pre%2Fdefault%2FS%2Fa</Key><Size>2</Size></Contents>"
        "<Contents><Key>pre%2Fdefault%2FS%2Fbad%zz</Key><Size>3</Size></Contents>"
        "<Contents><Key>pre%2Fdefault%2FS%2Fctl%01x</Key><Size>4</Size></Contents>"
        "<Contents><Key>pre%2Fdefault%2FS%2Fd%02</Key><Size>5</Size></Contents>"
        "<NextContinuationToken>pre/default/S/d&#x02;</NextContinuationToken></ListBucketResult>";
    static const char page2[] =
        "<ListBucketResult><EncodingType>url</EncodingType>"
        "<StartAfter>pre/default/S/d&#x02;</StartAfter><IsTruncated>false</IsTruncated>"
        "<Contents><Key>pre%2Fdefault%2FS%2Fz</Key><Size>6</Size></Contents>"
        "<Contents><Key>pre%2Felsewhere</Key><Size>7</Size></Contents>"
        "</ListBucketResult>";
    static const char up1[] = "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
                              "<NextKeyMarker>pre/default/S/up&#x05;</NextKeyMarker>"
                              "<NextUploadIdMarker>id2</NextUploadIdMarker>"
                              "<Upload><Key>pre/default/S/ok</Key><UploadId>id1</UploadId></Upload>"
                              "<Upload><Key>pre/default/S/up%05</Key><UploadId>id2</UploadId></Upload>"
                              "</ListMultipartUploadsResult>";
    static const char up2[] = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
                              "<Upload><Key>pre/default/S/zz</Key><UploadId>id3</UploadId></Upload>"
                              "</ListMultipartUploadsResult>";
    const char *body = strstr(r->target, "uploads") ? (n == 2 ? up1 : up2) : (n == 0 ? page1 : page2);
    respond(fd, "200 OK", NULL, body, strlen(body), strlen(body));
    return true;
}

struct names {
    char buf[512];
};

static int name_entry(void *ctx, const storage_entry *e)
{
    struct names *nm = ctx;
    size_t len = strlen(nm->buf);
    snprintf(nm->buf + len, sizeof nm->buf - len, "%s%s", len ? " " : "", e->key);
    return 0;
}

static int name_upload(void *ctx, const storage_upload *u)
{
    struct names *nm = ctx;
    size_t len = strlen(nm->buf);
    snprintf(nm->buf + len, sizeof nm->buf - len, "%s%s=%s", len ? " " : "", u->key, u->id);
    return 0;
}

static void test_listing_with_keys_sauve_cannot_use(void **state)
{
    (void)state;
    struct fake *f = fake_start(hostile_list_handler, NULL);
    struct s3fx x = {0};
    open_storage(&x, f, NULL);
    sv_error err = {0};
    struct names nm = {0};
    if (storage_list(x.st, "default/", true, name_entry, &nm, &err) != 0)
        fail_msg("%s", err.msg);
    /* "S//abs", "S/bad%zz", "S/ctl\x01x", "S/d\x02" skipped; "elsewhere" was not asked for */
    assert_string_equal(nm.buf, "default/S/a default/S/z");
    assert_non_null(strstr(f->reqs[0].target, "encoding-type=url"));
    assert_non_null(strstr(f->reqs[1].target, "encoding-type=url"));
    /* the token could not be read: the second page starts after the last key */
    assert_non_null(strstr(f->reqs[1].target, "start-after=pre%2Fdefault%2FS%2Fd%02"));
    assert_null(strstr(f->reqs[1].target, "continuation-token"));

    struct names up = {0};
    if (storage_list_uploads(x.st, "default/", name_upload, &up, &err) != 0)
        fail_msg("%s", err.msg);
    assert_string_equal(up.buf, "default/S/ok=id1 default/S/zz=id3");
    assert_non_null(strstr(f->reqs[2].target, "encoding-type=url"));
    assert_non_null(strstr(f->reqs[3].target, "key-marker=pre%2Fdefault%2FS%2Fup%05"));
    assert_non_null(strstr(f->reqs[3].target, "upload-id-marker=id2"));
    close_storage(&x);
    fake_stop(f);
}

/* Opens s3://bkt/pre at endpoint with one more setting; NULL and err set
 * when storage_open refuses. Nothing remote happens at open. */
static storage *open_with(const char *endpoint, const char *setting, sv_config *cfg, const char *dir,
                          sv_error *err)
{
    char *yaml = test_write_file(dir, "empty.yaml", "");
    char *ep = xasprintf("AWS_ENDPOINT_URL_S3=%s", endpoint);
    const char *env[] = {"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secretsecret", ep, setting,
                         NULL};
    struct config_load_options o = {.env = env, .file = yaml};
    assert_int_equal(config_load(cfg, &o, err), 0);
    storage *st = storage_open("s3://bkt/pre", cfg, err);
    free(ep);
    free(yaml);
    return st;
}

static bool no_request_expected(struct fake *f, int fd, const struct fake_req *r, int n)
{
    (void)f;
    (void)r;
    (void)n;
    respond(fd, "500 Internal Server Error", NULL, "", 0, 0);
    return false;
}

static void test_ssec_key_file_forms(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char *b64 = test_write_file(dir, "k.b64", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    char *raw = xasprintf("%s/k.raw", dir);
    FILE *fp = fopen(raw, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 32; i++)
        fputc(i, fp);
    fclose(fp);
    char *bad = test_write_file(dir, "bad", "too short");
    const char *files[] = {b64, raw};
    for (int i = 0; i < 2; i++) {
        char *setting = xasprintf("SAUVE_S3_SSE_C_KEY_FILE=%s", files[i]);
        sv_config cfg;
        sv_error err = {0};
        storage *st = open_with("https://s3.example.test", setting, &cfg, dir, &err);
        if (!st)
            fail_msg("%s: %s", files[i], err.msg);
        storage_close(st);
        config_free(&cfg);
        free(setting);
    }

    /* a file of the wrong size is a configuration error naming the setting */
    char *setting = xasprintf("SAUVE_S3_SSE_C_KEY_FILE=%s", bad);
    sv_config cfg;
    sv_error err = {0};
    assert_null(open_with("https://s3.example.test", setting, &cfg, dir, &err));
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, "SAUVE_S3_SSE_C_KEY_FILE"));
    config_free(&cfg);
    free(setting);

    test_rmtree(dir);
    free(dir);
    free(b64);
    free(raw);
    free(bad);
}

/* The customer key goes in a header of every request: over plain http it
 * would cross the network in clear text. Refused at open, before any
 * request and before the key file is even read. */
static void test_ssec_over_plain_http_is_refused(void **state)
{
    (void)state;
    struct fake *f = fake_start(no_request_expected, NULL);
    char *dir = test_tmpdir();
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", f->port);
    const char *files[] = {"/nonexistent/sse-c.key", NULL};
    char *real = test_write_file(dir, "k.b64", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    files[1] = real;
    for (int i = 0; i < 2; i++) {
        char *setting = xasprintf("SAUVE_S3_SSE_C_KEY_FILE=%s", files[i]);
        sv_config cfg;
        sv_error err = {0};
        storage *st = open_with(endpoint, setting, &cfg, dir, &err);
        if (st)
            fail_msg("SSE-C over %s was accepted", endpoint);
        assert_int_equal(err.code, SV_EXIT_CONFIG);
        if (!strstr(err.msg, "SAUVE_S3_SSE_C_KEY_FILE") || !strstr(err.msg, endpoint) ||
            !strstr(err.hint, "https://"))
            fail_msg("%s (hint: %s)", err.msg, err.hint);
        config_free(&cfg);
        free(setting);
    }
    pthread_mutex_lock(&f->mu);
    int nreq = f->nreq;
    pthread_mutex_unlock(&f->mu);
    fake_stop(f);
    assert_int_equal(nreq, 0);
    test_rmtree(dir);
    free(dir);
    free(real);
}

int main(void)
{
    log_init(LOG_FORMAT_TEXT, LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storage_url),
        cmocka_unit_test(test_endpoint_and_addressing),
        cmocka_unit_test(test_retry_policy),
        cmocka_unit_test(test_part_schedule_fits_5_tib),
        cmocka_unit_test(test_base64_md5),
        cmocka_unit_test(test_slist_wipe),
        cmocka_unit_test(test_get_resumes_a_broken_body_with_range),
        cmocka_unit_test(test_put_is_retried_after_slowdown),
        cmocka_unit_test(test_complete_answering_200_error_fails_and_aborts),
        cmocka_unit_test(test_ssec_key_file_forms),
        cmocka_unit_test(test_ssec_over_plain_http_is_refused),
        cmocka_unit_test(test_complete_200_empty_is_retried),
        cmocka_unit_test(test_complete_200_blank_or_truncated_fails),
        cmocka_unit_test(test_complete_200_namespaced_error_is_an_error),
        cmocka_unit_test(test_complete_lost_answer_then_no_such_upload),
        cmocka_unit_test(test_create_retried_aborts_the_upload_of_the_lost_answer),
        cmocka_unit_test(test_stored_size_must_match),
        cmocka_unit_test(test_virtual_host_not_resolved_names_the_host),
        cmocka_unit_test(test_dot_segments_sent_as_is),
        cmocka_unit_test(test_get_resume_at_the_end_and_wrong_range),
        cmocka_unit_test(test_answer_larger_than_s3_sends_is_refused),
        cmocka_unit_test(test_error_message_masked_before_it_is_cut),
        cmocka_unit_test(test_listing_with_keys_sauve_cannot_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
