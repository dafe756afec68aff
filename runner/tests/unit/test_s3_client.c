/*
 * Tests of runner/src/storage/s3: the pure parts of client.c (URLs,
 * addressing, retry policy, part schedule) and, against a scripted fake HTTP
 * server on loopback, what a real server cannot be made to do on demand: a
 * body cut mid-way (ranged resume), a 503 then success, a 200 whose body is
 * an <Error>. The real S3 server (RADOS Gateway) is in tests/integration.
 */
#include "testutil.h"

#include <arpa/inet.h>
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
    assert_false(s3_retryable(0, 429, ""));
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

static bool slowdown_handler(struct fake *f, int fd, const struct fake_req *r, int n)
{
    (void)f;
    (void)r;
    static const char slow[] = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
                               "</Message></Error>";
    if (n == 0)
        respond(fd, "503 Slow Down", NULL, slow, sizeof slow - 1, sizeof slow - 1);
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
    assert_int_equal(f->nreq, 2);
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

static bool echo_ssec_handler(struct fake *f, int fd, const struct fake_req *r, int n)
{
    (void)f;
    (void)n;
    (void)r;
    respond(fd, "200 OK", "ETag: \"x\"\r\n", "", 0, 0);
    return true;
}

static void test_ssec_key_file_forms(void **state)
{
    (void)state;
    struct fake *f = fake_start(echo_ssec_handler, NULL);
    /* base64 form with a trailing newline */
    char *dir = test_tmpdir();
    char *kf = test_write_file(dir, "k.b64", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    char *setting = xasprintf("SAUVE_S3_SSE_C_KEY_FILE=%s", kf);
    struct s3fx x = {0};
    open_storage(&x, f, setting);
    sv_error err = {0};
    assert_int_equal(storage_put(x.st, "o", "x", 1, &err), 0);
    close_storage(&x);
    assert_string_equal(f->reqs[0].sse_c_key, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");

    /* a file of the wrong size is a configuration error naming the setting */
    char *bad = test_write_file(dir, "bad", "too short");
    free(setting);
    setting = xasprintf("SAUVE_S3_SSE_C_KEY_FILE=%s", bad);
    struct s3fx y = {0};
    y.dir = test_tmpdir();
    y.empty_yaml = test_write_file(y.dir, "empty.yaml", "");
    const char *env[] = {"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secretsecret", setting,
                         NULL};
    struct config_load_options o = {.env = env, .file = y.empty_yaml};
    assert_int_equal(config_load(&y.cfg, &o, &err), 0);
    assert_null(storage_open("s3://bkt/pre", &y.cfg, &err));
    assert_int_equal(err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(err.msg, "SAUVE_S3_SSE_C_KEY_FILE"));
    config_free(&y.cfg);
    test_rmtree(y.dir);
    free(y.dir);
    free(y.empty_yaml);

    fake_stop(f);
    test_rmtree(dir);
    free(dir);
    free(kf);
    free(bad);
    free(setting);
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
        cmocka_unit_test(test_get_resumes_a_broken_body_with_range),
        cmocka_unit_test(test_put_is_retried_after_slowdown),
        cmocka_unit_test(test_complete_answering_200_error_fails_and_aborts),
        cmocka_unit_test(test_ssec_key_file_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
