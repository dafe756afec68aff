/*
 * Tests of runner/src/storage/s3/credentials.c: the S3 credential chain.
 *
 * AWS STS and the container credentials endpoint (the EKS Pod Identity
 * agent, ECS) have no local implementation, so a stand-in HTTP server runs in
 * a thread of the test: it listens on 127.0.0.1 on an ephemeral port, answers
 * every request with the canned response the test chose, and records the
 * request it got and how many it got. It is a stand-in for AWS STS or for the
 * EKS Pod Identity agent, not either of them.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "config/config.h"
#include "storage/s3/credentials.h"

/* ------------------------------------------------------ stand-in server */

struct stand_in {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    bool stop;
    /* the canned response */
    int status;
    char *content_type;
    char *body;
    /* what it received */
    int requests;
    char *request_line;  /* "POST / HTTP/1.1" */
    char *request_body;  /* of the last request */
    char *authorization; /* Authorization header of the last request, or NULL */
};

static char *header_value(const char *head, const char *name)
{
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\r\n%s:", name);
    const char *h = strcasestr(head, pattern);
    if (!h)
        return NULL;
    h += strlen(pattern);
    while (*h == ' ')
        h++;
    const char *end = strstr(h, "\r\n");
    return strndup(h, end ? (size_t)(end - h) : strlen(h));
}

/* Reads one request from c, records it, answers the canned response. */
static void stand_in_serve(struct stand_in *s, int c)
{
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[65536];
    size_t n = 0;
    char *end = NULL;
    while (!end && n < sizeof req - 1) {
        ssize_t r = recv(c, req + n, sizeof req - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = '\0';
        end = strstr(req, "\r\n\r\n");
    }
    if (!end)
        return;
    size_t head_len = (size_t)(end - req) + 4;
    char *head = strndup(req, head_len);
    char *cl = header_value(head, "Content-Length");
    size_t body_len = cl ? strtoul(cl, NULL, 10) : 0;
    free(cl);
    while (n < head_len + body_len && n < sizeof req - 1) {
        ssize_t r = recv(c, req + n, sizeof req - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    req[n] = '\0';

    pthread_mutex_lock(&s->lock);
    s->requests++;
    free(s->request_line);
    free(s->request_body);
    free(s->authorization);
    s->request_line = strndup(head, strcspn(head, "\r\n"));
    s->request_body = strdup(req + head_len);
    s->authorization = header_value(head, "Authorization");
    char *resp = NULL;
    int len = asprintf(
        &resp, "HTTP/1.1 %d Canned\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
        s->status, s->content_type, strlen(s->body), s->body);
    pthread_mutex_unlock(&s->lock);
    free(head);
    if (len > 0 && send(c, resp, (size_t)len, MSG_NOSIGNAL) < 0)
        perror("stand-in send");
    free(resp);
}

static void *stand_in_run(void *arg)
{
    struct stand_in *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            return NULL;
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        stand_in_serve(s, c);
        close(c);
    }
}

static struct stand_in *stand_in_start(void)
{
    struct stand_in *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->status = 200;
    s->content_type = strdup("text/plain");
    s->body = strdup("");
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, stand_in_run, s), 0);
    return s;
}

/* Sets the canned response for the next requests. */
static void stand_in_respond(struct stand_in *s, int status, const char *content_type, const char *body)
{
    pthread_mutex_lock(&s->lock);
    s->status = status;
    free(s->content_type);
    free(s->body);
    s->content_type = strdup(content_type);
    s->body = strdup(body);
    pthread_mutex_unlock(&s->lock);
}

static int stand_in_requests(struct stand_in *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->requests;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void stand_in_stop(struct stand_in *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    close(s->fd);
    free(s->content_type);
    free(s->body);
    free(s->request_line);
    free(s->request_body);
    free(s->authorization);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* A loopback port that nothing listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ------------------------------------------------------------- fixture */

static const char *const aws_vars[] = {
    "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME", "AWS_REGION",
    "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CA_BUNDLE",
    /* the stand-in is on loopback: no proxy of the machine running the tests */
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};

#define ROLE_ARN "arn:aws:iam::123456789012:role/sauve-backup"
/* what a projected service account token looks like: a JWT */
#define WEB_TOKEN                                                                                            \
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl"

struct fx {
    char *dir;
    char *empty; /* an empty config file, so that /etc/sauve/config.yaml never leaks in */
    sv_config cfg;
    sv_error err;
    struct stand_in *srv;
    s3_cred_provider *p;
    s3_credentials creds;
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof aws_vars / sizeof *aws_vars; i++)
        unsetenv(aws_vars[i]);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    fx->dir = test_tmpdir();
    fx->empty = test_write_file(fx->dir, "empty.yaml", "");
    clear_env();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    s3_credentials_clear(&fx->creds);
    s3_credentials_free(fx->p);
    stand_in_stop(fx->srv);
    config_free(&fx->cfg);
    test_rmtree(fx->dir);
    free(fx->dir);
    free(fx->empty);
    free(fx);
    log_clear_secrets();
    clear_env();
    return 0;
}

/* Loads the configuration from env (NULL-terminated "K=V"), then makes the
 * provider. Returns the provider or NULL with fx->err set. */
static s3_cred_provider *provider(struct fx *fx, const char *const *env)
{
    static const char *const no_env[] = {NULL};
    config_free(&fx->cfg);
    sv_error_clear(&fx->err);
    struct config_load_options o = {.env = env ? env : no_env, .file = fx->empty};
    assert_int_equal(config_load(&fx->cfg, &o, &fx->err), 0);
    s3_credentials_free(fx->p);
    fx->p = s3_credentials_new(&fx->cfg, &fx->err);
    return fx->p;
}

static int get(struct fx *fx)
{
    s3_credentials_clear(&fx->creds);
    sv_error_clear(&fx->err);
    return s3_credentials_get(fx->p, &fx->creds, &fx->err);
}

/* Prints an error as the operator sees it. */
static void show(const char *what, const sv_error *err)
{
    print_message("%s: exit %d: %s\n    hint: %s\n", what, err->code, err->msg, err->hint);
}

static void iso8601(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The canned STS answer, expiring at `expires`. */
static char *sts_success(time_t expires)
{
    char when[32];
    iso8601(expires, when);
    char *xml = NULL;
    assert_true(
        asprintf(&xml,
                 "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                 "  <AssumeRoleWithWebIdentityResult>\n"
                 "    <SubjectFromWebIdentityToken>system:serviceaccount:backup:sauve"
                 "</SubjectFromWebIdentityToken>\n"
                 "    <Audience>sts.amazonaws.com</Audience>\n"
                 "    <AssumedRoleUser>\n"
                 "      <Arn>arn:aws:sts::123456789012:assumed-role/sauve-backup/sauve-test</Arn>\n"
                 "      <AssumedRoleId>AROAEXAMPLEROLEID:sauve-test</AssumedRoleId>\n"
                 "    </AssumedRoleUser>\n"
                 "    <Credentials>\n"
                 "      <SessionToken>FwoGZXIvYXdzEXAMPLE+SESSION/TOKEN==</SessionToken>\n"
                 "      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
                 "      <Expiration>%s</Expiration>\n"
                 "      <AccessKeyId>ASIAEXAMPLESTSKEYID</AccessKeyId>\n"
                 "    </Credentials>\n"
                 "    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-3.amazonaws.com"
                 "</Provider>\n"
                 "  </AssumeRoleWithWebIdentityResult>\n"
                 "  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>"
                 "</ResponseMetadata>\n"
                 "</AssumeRoleWithWebIdentityResponse>\n",
                 when) > 0);
    return xml;
}

static char *sts_error(const char *code, const char *message)
{
    char *xml = NULL;
    assert_true(asprintf(&xml,
                         "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                         "  <Error>\n"
                         "    <Type>Sender</Type>\n"
                         "    <Code>%s</Code>\n"
                         "    <Message>%s</Message>\n"
                         "  </Error>\n"
                         "  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n"
                         "</ErrorResponse>\n",
                         code, message) > 0);
    return xml;
}

/* Web identity against the stand-in STS, answering status and body. */
static void web_identity_env(struct fx *fx, int port)
{
    char *token_file = test_write_file(fx->dir, "token", WEB_TOKEN "\n");
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token_file, 1);
    setenv("AWS_ENDPOINT_URL_STS", url, 1);
    setenv("AWS_REGION", "eu-west-3", 1);
    free(token_file);
}

static char *container_json(time_t expires)
{
    char when[32];
    iso8601(expires, when);
    char *json = NULL;
    assert_true(
        asprintf(&json,
                 "{\"AccessKeyId\": \"ASIAEXAMPLEPODKEYID\", \"SecretAccessKey\": \"pod/secret+EXAMPLEKEY\", "
                 "\"Token\": \"IQoJb3JpZ2luX2VjEXAMPLEPODTOKEN\", \"AccountId\": \"123456789012\", "
                 "\"Expiration\": \"%s\"}",
                 when) > 0);
    return json;
}

/* --------------------------------------------------------------- tests */

static void static_keys(void **state)
{
    struct fx *fx = *state;
    const char *env[] = {"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
                         "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};
    /* static keys come first even when web identity is configured too */
    setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
    assert_non_null(provider(fx, env));
    assert_string_equal(s3_credentials_describe(fx->p), "static keys");
    assert_int_equal(get(fx), 0);
    assert_string_equal(fx->creds.access_key_id, "AKIAIOSFODNN7EXAMPLE");
    assert_string_equal(fx->creds.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    assert_null(fx->creds.session_token);
    assert_int_equal(fx->creds.expires, 0);

    const char *with_token[] = {"AWS_ACCESS_KEY_ID=ASIAEXAMPLE", "AWS_SECRET_ACCESS_KEY=secretEXAMPLE",
                                "AWS_SESSION_TOKEN=sessionEXAMPLE", NULL};
    assert_non_null(provider(fx, with_token));
    assert_int_equal(get(fx), 0);
    assert_string_equal(fx->creds.session_token, "sessionEXAMPLE");
}

static void static_keys_half_configured(void **state)
{
    struct fx *fx = *state;
    const char *key_only[] = {"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", NULL};
    assert_null(provider(fx, key_only));
    show("key id without secret", &fx->err);
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(fx->err.msg, "AWS_SECRET_ACCESS_KEY"));
    assert_null(strstr(fx->err.msg, "AKIAIOSFODNN7EXAMPLE"));

    const char *secret_only[] = {"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", NULL};
    assert_null(provider(fx, secret_only));
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(fx->err.msg, "AWS_ACCESS_KEY_ID"));
    assert_null(strstr(fx->err.msg, "wJalrXUtnFEMI"));

    const char *token_only[] = {"AWS_SESSION_TOKEN=sessionEXAMPLE", NULL};
    assert_null(provider(fx, token_only));
    show("session token alone", &fx->err);
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(fx->err.msg, "AWS_SESSION_TOKEN"));
}

static void static_keys_from_files(void **state)
{
    struct fx *fx = *state;
    char *key = test_write_file(fx->dir, "key", "AKIAFROMFILEEXAMPLE\n");
    char *secret = test_write_file(fx->dir, "secret", "secret/from+file\n");
    char *e1 = NULL, *e2 = NULL;
    assert_true(asprintf(&e1, "AWS_ACCESS_KEY_ID_FILE=%s", key) > 0);
    assert_true(asprintf(&e2, "AWS_SECRET_ACCESS_KEY_FILE=%s", secret) > 0);
    const char *env[] = {e1, e2, NULL};
    assert_non_null(provider(fx, env));
    assert_int_equal(get(fx), 0);
    assert_string_equal(fx->creds.access_key_id, "AKIAFROMFILEEXAMPLE");
    assert_string_equal(fx->creds.secret_access_key, "secret/from+file");
    assert_null(fx->creds.session_token);
    free(e1);
    free(e2);
    free(key);
    free(secret);
}

static void no_source(void **state)
{
    struct fx *fx = *state;
    assert_null(provider(fx, NULL));
    show("nothing configured", &fx->err);
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(fx->err.msg, "AWS_ACCESS_KEY_ID"));
    assert_non_null(strstr(fx->err.msg, "AWS_ROLE_ARN"));
    assert_non_null(strstr(fx->err.msg, "AWS_CONTAINER_CREDENTIALS_FULL_URI"));
}

static void web_identity_half_configured(void **state)
{
    struct fx *fx = *state;
    setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
    assert_null(provider(fx, NULL));
    show("role without token file", &fx->err);
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(fx->err.msg, "AWS_WEB_IDENTITY_TOKEN_FILE"));

    clear_env();
    setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
    setenv("AWS_REGION", "eu west 3", 1);
    assert_null(provider(fx, NULL));
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(fx->err.msg, "AWS_REGION"));

    /* a missing token file is found at the first fetch, before any request */
    setenv("AWS_REGION", "eu-west-3", 1);
    assert_non_null(provider(fx, NULL));
    assert_int_equal(get(fx), -1);
    show("token file missing", &fx->err);
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(fx->err.msg, "/nonexistent/token"));
}

static void web_identity_success(void **state)
{
    struct fx *fx = *state;
    fx->srv = stand_in_start();
    time_t expires = time(NULL) + 3600;
    char *xml = sts_success(expires);
    stand_in_respond(fx->srv, 200, "text/xml", xml);
    free(xml);
    web_identity_env(fx, fx->srv->port);

    assert_non_null(provider(fx, NULL));
    assert_string_equal(s3_credentials_describe(fx->p), "web identity " ROLE_ARN);
    assert_int_equal(stand_in_requests(fx->srv), 0); /* nothing fetched before the first get */
    assert_int_equal(get(fx), 0);
    assert_int_equal(stand_in_requests(fx->srv), 1);

    assert_string_equal(fx->srv->request_line, "POST / HTTP/1.1");
    const char *body = fx->srv->request_body;
    assert_non_null(strstr(body, "Action=AssumeRoleWithWebIdentity"));
    assert_non_null(strstr(body, "Version=2011-06-15"));
    assert_non_null(strstr(body, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fsauve-backup"));
    assert_non_null(strstr(body, "RoleSessionName=sauve-"));
    assert_non_null(strstr(body, "WebIdentityToken=" WEB_TOKEN));
    assert_null(strstr(body, WEB_TOKEN "%0A")); /* the file's newline is not part of the token */
    assert_null(fx->srv->authorization);        /* unsigned */

    assert_string_equal(fx->creds.access_key_id, "ASIAEXAMPLESTSKEYID");
    assert_string_equal(fx->creds.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
    assert_string_equal(fx->creds.session_token, "FwoGZXIvYXdzEXAMPLE+SESSION/TOKEN==");
    assert_int_equal(fx->creds.expires, expires);

    /* a session name of the user's */
    setenv("AWS_ROLE_SESSION_NAME", "nightly backup", 1);
    assert_non_null(provider(fx, NULL));
    assert_int_equal(get(fx), 0);
    assert_non_null(strstr(fx->srv->request_body, "RoleSessionName=nightly%20backup"));
}

static void web_identity_access_denied(void **state)
{
    struct fx *fx = *state;
    fx->srv = stand_in_start();
    char *xml = sts_error("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
    stand_in_respond(fx->srv, 403, "text/xml", xml);
    free(xml);
    web_identity_env(fx, fx->srv->port);

    assert_non_null(provider(fx, NULL));
    assert_int_equal(get(fx), -1);
    show("sts AccessDenied", &fx->err);
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_int_equal(stand_in_requests(fx->srv), 1); /* a refusal is not retried */
    assert_non_null(strstr(fx->err.msg, "AccessDenied"));
    assert_non_null(strstr(fx->err.msg, "Not authorized to perform sts:AssumeRoleWithWebIdentity"));
    assert_non_null(strstr(fx->err.msg, ROLE_ARN));
    assert_non_null(strstr(fx->err.msg, "127.0.0.1"));
    assert_null(strstr(fx->err.msg, WEB_TOKEN));
    assert_null(strstr(fx->err.hint, WEB_TOKEN));
    assert_null(fx->creds.access_key_id);
}

/* An answer with a DTD is not STS's (no STS answer has one): refused before
 * any entity it declares is expanded, so no credential is taken from it. */
static void web_identity_answer_with_doctype(void **state)
{
    struct fx *fx = *state;
    fx->srv = stand_in_start();
    char *good = sts_success(time(NULL) + 3600);
    char *xml = NULL;
    assert_true(asprintf(&xml, "<!DOCTYPE r [<!ENTITY k \"ASIAFROMANENTITY\">]>%s", good) > 0);
    char *use = strstr(xml, "ASIAEXAMPLESTSKEYID");
    assert_non_null(use);
    memcpy(use, "&k;", 3);
    memmove(use + 3, use + strlen("ASIAEXAMPLESTSKEYID"), strlen(use + strlen("ASIAEXAMPLESTSKEYID")) + 1);
    stand_in_respond(fx->srv, 200, "text/xml", xml);
    free(xml);
    free(good);
    web_identity_env(fx, fx->srv->port);

    assert_non_null(provider(fx, NULL));
    assert_int_equal(get(fx), -1);
    show("sts answer with a DOCTYPE", &fx->err);
    assert_null(fx->creds.access_key_id);
    assert_non_null(strstr(fx->err.msg, "127.0.0.1"));
}

/* A service echoing the token in its message: the message is withheld. */
static void web_identity_error_quoting_token(void **state)
{
    struct fx *fx = *state;
    fx->srv = stand_in_start();
    char *xml = sts_error("InvalidIdentityToken", "Incorrect token audience in " WEB_TOKEN);
    stand_in_respond(fx->srv, 400, "text/xml", xml);
    free(xml);
    web_identity_env(fx, fx->srv->port);

    assert_non_null(provider(fx, NULL));
    assert_int_equal(get(fx), -1);
    show("sts InvalidIdentityToken quoting the token", &fx->err);
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(fx->err.msg, "InvalidIdentityToken"));
    assert_null(strstr(fx->err.msg, WEB_TOKEN));
    assert_null(strstr(fx->err.hint, WEB_TOKEN));
}

static void web_identity_unreachable(void **state)
{
    struct fx *fx = *state;
    web_identity_env(fx, closed_port());
    assert_non_null(provider(fx, NULL));
    assert_int_equal(get(fx), -1);
    show("sts unreachable", &fx->err);
    assert_int_equal(fx->err.code, SV_EXIT_TEMPFAIL);
    assert_non_null(strstr(fx->err.msg, "127.0.0.1"));
    assert_non_null(strstr(fx->err.msg, "3 attempts"));
    assert_null(strstr(fx->err.msg, WEB_TOKEN));
}

static void web_identity_5xx_retried(void **state)
{
    struct fx *fx = *state;
    fx->srv = stand_in_start();
    char *xml = sts_error("ServiceUnavailable", "Service is unable to handle request");
    stand_in_respond(fx->srv, 503, "text/xml", xml);
    free(xml);
    web_identity_env(fx, fx->srv->port);
    assert_non_null(provider(fx, NULL));
    assert_int_equal(get(fx), -1);
    show("sts 503", &fx->err);
    assert_int_equal(fx->err.code, SV_EXIT_TEMPFAIL);
    assert_int_equal(stand_in_requests(fx->srv), 3);
}

static void refresh(void **state)
{
    struct fx *fx = *state;
    fx->srv = stand_in_start();
    web_identity_env(fx, fx->srv->port);

    /* expiring in 2 minutes: within the 5-minute margin, fetched again */
    char *xml = sts_success(time(NULL) + 120);
    stand_in_respond(fx->srv, 200, "text/xml", xml);
    free(xml);
    assert_non_null(provider(fx, NULL));
    assert_int_equal(get(fx), 0);
    assert_int_equal(get(fx), 0);
    assert_int_equal(stand_in_requests(fx->srv), 2);

    /* expiring in an hour: kept */
    xml = sts_success(time(NULL) + 3600);
    stand_in_respond(fx->srv, 200, "text/xml", xml);
    free(xml);
    assert_int_equal(get(fx), 0);
    assert_int_equal(stand_in_requests(fx->srv), 3);
    assert_int_equal(get(fx), 0);
    assert_int_equal(get(fx), 0);
    assert_int_equal(stand_in_requests(fx->srv), 3);
    assert_string_equal(fx->creds.access_key_id, "ASIAEXAMPLESTSKEYID");
}

/* The EKS Pod Identity agent's way: full URI plus a rotating token file. */
static void container_token_file(void **state)
{
    struct fx *fx = *state;
    fx->srv = stand_in_start();
    char *json = container_json(time(NULL) + 120); /* expiring soon: every get fetches */
    stand_in_respond(fx->srv, 200, "application/json", json);
    free(json);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/credentials", fx->srv->port);
    char *token_file = test_write_file(fx->dir, "eks-pod-identity-token", "pod-identity-token-one\n");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file, 1);

    assert_non_null(provider(fx, NULL));
    char describe[128];
    snprintf(describe, sizeof describe, "container credentials %s", url);
    assert_string_equal(s3_credentials_describe(fx->p), describe);
    assert_int_equal(get(fx), 0);
    assert_string_equal(fx->srv->request_line, "GET /v1/credentials HTTP/1.1");
    assert_string_equal(fx->srv->authorization, "pod-identity-token-one");
    assert_string_equal(fx->creds.access_key_id, "ASIAEXAMPLEPODKEYID");
    assert_string_equal(fx->creds.secret_access_key, "pod/secret+EXAMPLEKEY");
    assert_string_equal(fx->creds.session_token, "IQoJb3JpZ2luX2VjEXAMPLEPODTOKEN");

    /* the agent rotated the token: the next fetch sends the new one */
    free(test_write_file(fx->dir, "eks-pod-identity-token", "pod-identity-token-two\n"));
    assert_int_equal(get(fx), 0);
    assert_int_equal(stand_in_requests(fx->srv), 2);
    assert_string_equal(fx->srv->authorization, "pod-identity-token-two");

    /* a refusal of the agent names the endpoint and its code, never the token
     * (a new provider: one holding valid credentials would keep using them) */
    assert_non_null(provider(fx, NULL));
    stand_in_respond(fx->srv, 403, "application/json",
                     "{\"code\": \"AccessDeniedException\", \"message\": \"no pod identity association\"}");
    assert_int_equal(get(fx), -1);
    show("pod identity agent 403", &fx->err);
    assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
    assert_non_null(strstr(fx->err.msg, "AccessDeniedException"));
    assert_non_null(strstr(fx->err.msg, url));
    assert_null(strstr(fx->err.msg, "pod-identity-token-two"));
    free(token_file);
}

static void container_token_env(void **state)
{
    struct fx *fx = *state;
    fx->srv = stand_in_start();
    char *json = container_json(time(NULL) + 3600);
    stand_in_respond(fx->srv, 200, "application/json", json);
    free(json);
    char url[64];
    snprintf(url, sizeof url, "http://localhost:%d/creds", fx->srv->port);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Basic dGVzdDp0ZXN0", 1);
    assert_non_null(provider(fx, NULL));
    assert_int_equal(get(fx), 0);
    assert_string_equal(fx->srv->authorization, "Basic dGVzdDp0ZXN0");
}

static void container_full_uri_rule(void **state)
{
    struct fx *fx = *state;
    static const char *const refused[] = {"http://example.com/credentials", "http://10.0.0.1/credentials",
                                          "http://169.254.169.254/latest/meta-data", "ftp://127.0.0.1/creds"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", refused[i], 1);
        assert_null(provider(fx, NULL));
        if (i == 0)
            show("non-loopback http full URI", &fx->err);
        assert_int_equal(fx->err.code, SV_EXIT_CONFIG);
        assert_non_null(strstr(fx->err.msg, refused[i]));
    }
    static const char *const accepted[] = {"http://169.254.170.23/v1/credentials", "http://127.0.0.2:8080/c",
                                           "http://[::1]:8080/c", "https://credentials.example.com/c",
                                           "http://[fd00:ec2::23]/v1/credentials"};
    for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++) {
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", accepted[i], 1);
        assert_non_null(provider(fx, NULL));
    }

    /* the ECS relative URI comes first */
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/5ee8b1c4", 1);
    assert_non_null(provider(fx, NULL));
    assert_string_equal(s3_credentials_describe(fx->p),
                        "container credentials http://169.254.170.2/v2/credentials/5ee8b1c4");
}

/* A failed refresh keeps credentials that are still valid for a while. */
static void refresh_failure_keeps_valid_credentials(void **state)
{
    struct fx *fx = *state;
    fx->srv = stand_in_start();
    char *json = container_json(time(NULL) + 240);
    stand_in_respond(fx->srv, 200, "application/json", json);
    free(json);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/credentials", fx->srv->port);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    assert_non_null(provider(fx, NULL));
    assert_int_equal(get(fx), 0);
    assert_int_equal(stand_in_requests(fx->srv), 1);

    stand_in_respond(fx->srv, 500, "application/json",
                     "{\"code\": \"InternalError\", \"message\": \"oops\"}");
    assert_int_equal(get(fx), 0); /* three attempts failed, the current keys are returned */
    assert_int_equal(stand_in_requests(fx->srv), 4);
    assert_string_equal(fx->creds.access_key_id, "ASIAEXAMPLEPODKEYID");
    assert_int_equal(get(fx), 0); /* and the agent is not asked again at once */
    assert_int_equal(stand_in_requests(fx->srv), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(static_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(static_keys_half_configured, setup, teardown),
        cmocka_unit_test_setup_teardown(static_keys_from_files, setup, teardown),
        cmocka_unit_test_setup_teardown(no_source, setup, teardown),
        cmocka_unit_test_setup_teardown(web_identity_half_configured, setup, teardown),
        cmocka_unit_test_setup_teardown(web_identity_success, setup, teardown),
        cmocka_unit_test_setup_teardown(web_identity_access_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(web_identity_answer_with_doctype, setup, teardown),
        cmocka_unit_test_setup_teardown(web_identity_error_quoting_token, setup, teardown),
        cmocka_unit_test_setup_teardown(web_identity_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(web_identity_5xx_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(container_token_file, setup, teardown),
        cmocka_unit_test_setup_teardown(container_token_env, setup, teardown),
        cmocka_unit_test_setup_teardown(container_full_uri_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(refresh_failure_keeps_valid_credentials, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
