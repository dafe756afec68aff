/*
 * Secrets are wiped before their memory is freed: the canonical requests,
 * header lists and signatures that sigv4.c and client.c build hold the
 * session token and the SSE-C key. A freed block is not cleared by malloc,
 * so a core dump or a later read of the heap would find them.
 *
 * How: this file compiles sigv4.c and client.c itself, with free() and
 * xrealloc() replaced by versions that search every block given back for the
 * secrets before releasing it (xrealloc always moves, so that the block it
 * leaves is searched too). The library's own copies of these modules are
 * then not linked in. Blocks freed inside libcurl and OpenSSL are not seen:
 * their copies are wiped by s3_slist_wipe (tested in test_s3_client.c) or
 * are libcurl's own request buffer (see the report of issue 13).
 */
#include "testutil.h"

/* Every header the two modules include, first: their include guards then
 * keep the redirections below away from the system's declarations. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "config/config.h"
#include "storage/s3/client.h"
#include "storage/s3/credentials.h"
#include "storage/s3/sigv4.h"
#include "storage/s3/xml.h"

#define TOKEN  "FwoGZXIvYXdzEXAMPLE-SESSION-TOKEN-wipe-me"
#define SSEC   "c2VjcmV0LXNzZS1jLWtleS0zMi1ieXRlcy1sb25nISE="
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static int leaks;

/* Counts (and shows) a block about to be released that still holds a secret. */
static void search(const void *p, const char *where)
{
    if (!p)
        return;
    size_t n = malloc_usable_size((void *)p);
    static const char *const secrets[] = {TOKEN, SSEC, SECRET};
    for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++) {
        if (memmem(p, n, secrets[i], strlen(secrets[i]))) {
            leaks++;
            fprintf(stderr, "%s released a block of %zu bytes holding %.12s...: %.*s\n", where, n, secrets[i],
                    (int)strnlen(p, n < 160 ? n : 160), (const char *)p);
        }
    }
}

static void searching_free(void *p)
{
    search(p, "free");
    free(p);
}

static void *searching_xrealloc(void *p, size_t size)
{
    void *q = xmalloc(size);
    if (p) {
        size_t old = malloc_usable_size(p);
        memcpy(q, p, old < size ? old : size);
        search(p, "xrealloc");
        free(p);
    }
    return q;
}

#define free     searching_free
#define xrealloc searching_xrealloc
#include "storage/s3/client.c"
#include "storage/s3/sigv4.c"
#undef free
#undef xrealloc

/* ---- signing alone --------------------------------------------------- */

static void test_sign_and_presign_wipe(void **state)
{
    (void)state;
    leaks = 0;
    struct sigv4_header h[] = {{"host", "bkt.s3.eu-west-3.amazonaws.com"},
                               {"x-amz-date", "20261122T020000Z"},
                               {"x-amz-security-token", "  " TOKEN "  "},
                               {"x-amz-server-side-encryption-customer-key", SSEC},
                               {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}};
    struct sigv4_request req = {.method = "PUT",
                                .path = "/default/20261122T020000Z/manifest.json",
                                .query = "partNumber=1&uploadId=abc",
                                .headers = h,
                                .nheaders = 5,
                                .payload_hash = "UNSIGNED-PAYLOAD"};
    struct sigv4_key key = {
        .access_key_id = "AKIDEXAMPLE", .secret_access_key = SECRET, .region = "eu-west-3", .service = "s3"};
    struct sigv4_result r;
    assert_int_equal(sigv4_sign(&req, &key, "20261122T020000Z", &r), 0);
    assert_non_null(strstr(r.canonical_request, TOKEN)); /* what is to be wiped */
    assert_non_null(strstr(r.canonical_request, SSEC));
    sigv4_result_free(&r);

    char *query = NULL;
    req.nheaders = 2;
    assert_int_equal(sigv4_presign(&req, &key, "20261122T020000Z", 300, TOKEN, &query, &r), 0);
    assert_non_null(strstr(query, "X-Amz-Security-Token="));
    sigv4_result_free(&r);
    free_secret(query); /* the caller's: it carries the token */
    assert_int_equal(leaks, 0);
}

/* ---- a whole request ------------------------------------------------- */

/* Answers 200 with an empty body to every request of every connection. */
struct ok_server {
    int lfd, port;
    pthread_t thread;
};

static void *ok_main(void *arg)
{
    struct ok_server *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char buf[65536];
        size_t have = 0;
        for (;;) {
            char *end = memmem(buf, have, "\r\n\r\n", 4);
            if (!end) {
                ssize_t n = have < sizeof buf ? read(fd, buf + have, sizeof buf - have) : -1;
                if (n <= 0)
                    break;
                have += (size_t)n;
                continue;
            }
            *end = '\0';
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            size_t body = cl ? strtoul(cl + 17, NULL, 10) : 0;
            size_t head = (size_t)(end + 4 - buf);
            while (have < head + body) { /* bodies here are a few bytes */
                ssize_t n = read(fd, buf + have, sizeof buf - have);
                if (n <= 0)
                    goto next;
                have += (size_t)n;
            }
            memmove(buf, buf + head + body, have - head - body);
            have -= head + body;
            static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nETag: \"e\"\r\n\r\n";
            if (write(fd, ok, sizeof ok - 1) < 0)
                break;
        }
    next:
        close(fd);
    }
}

static void test_request_with_token_and_ssec_key_wipes(void **state)
{
    (void)state;
    struct ok_server srv = {0};
    srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(srv.lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(srv.lfd, 4), 0);
    socklen_t alen = sizeof a;
    getsockname(srv.lfd, (struct sockaddr *)&a, &alen);
    srv.port = ntohs(a.sin_port);
    pthread_create(&srv.thread, NULL, ok_main, &srv);

    char *dir = test_tmpdir();
    char *yaml = test_write_file(dir, "empty.yaml", "");
    const char *env[] = {"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=" SECRET,
                         "AWS_SESSION_TOKEN=" TOKEN, NULL};
    struct config_load_options o = {.env = env, .file = yaml};
    sv_config cfg;
    sv_error err = {0};
    assert_int_equal(config_load(&cfg, &o, &err), 0);
    s3_cred_provider *creds = s3_credentials_new(&cfg, &err);
    assert_non_null(creds);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", srv.port);
    struct s3_endpoint ep;
    assert_int_equal(s3_endpoint_parse(url, "AWS_ENDPOINT_URL_S3", &ep, &err), 0);
    struct s3_client_options co = {.bucket = "bkt",
                                   .endpoint = &ep,
                                   .endpoint_url = url,
                                   .region = "eu-west-3",
                                   .path_style = true,
                                   .max_attempts = 1,
                                   .creds = creds};
    s3_client *c = s3_client_new(&co);
    s3_conn *conn = s3_conn_acquire(c);

    leaks = 0;
    struct sigv4_header h[] = {{"x-amz-server-side-encryption-customer-algorithm", "AES256"},
                               {"x-amz-server-side-encryption-customer-key", SSEC},
                               {"x-amz-server-side-encryption-customer-key-MD5", "md5"}};
    struct s3_request req = {.op = "PutObject",
                             .method = "PUT",
                             .key = "k",
                             .headers = h,
                             .nheaders = 3,
                             .body = "x",
                             .body_len = 1};
    struct s3_response resp = {0};
    assert_int_equal(s3_request(conn, &req, &resp, &err), 0);
    s3_response_reset(&resp);
    assert_int_equal(leaks, 0);

    s3_conn_release(conn);
    s3_client_free(c);
    s3_endpoint_free(&ep);
    s3_credentials_free(creds);
    config_free(&cfg);
    shutdown(srv.lfd, SHUT_RDWR);
    close(srv.lfd);
    pthread_join(srv.thread, NULL);
    test_rmtree(dir);
    free(dir);
    free(yaml);
}

int main(void)
{
    log_init(LOG_FORMAT_TEXT, LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_and_presign_wipe),
        cmocka_unit_test(test_request_with_token_and_ssec_key_wipes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
