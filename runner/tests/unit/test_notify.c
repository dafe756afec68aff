#include "testutil.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "config/config.h"
#include "notify/notify.h"

static const struct notify_source two_ok[] = {
    {.source = "postgres:globals", .ok = true, .bytes_stored = 1234},
    {.source = "postgres:app", .ok = true, .bytes_stored = 5000000000ULL},
};

static struct notify_run success_run(void)
{
    return (struct notify_run){.name = "default",
                               .set_id = "20261122T020000Z",
                               .exit_code = 0,
                               .backup_ok = true,
                               .summary =
                                   "backup ok: set default/20261122T020000Z, 2 artifact(s), 4.7 GiB stored",
                               .sources = two_ok,
                               .n_sources = 2,
                               .bytes_stored = 5000001234ULL,
                               .sets_total = 12,
                               .duration_s = 54.3214,
                               .finished = 1795312854.5,
                               .hostname = "sauve-29110-x7k2p"};
}

/* The value of the sample `series` (exact text up to the value), or -1. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
    return -1;
}

/* A drill reports under its own names, with the restore time of each
 * source it restored and none for one it only read. */
static void test_drill_metrics(void **state)
{
    (void)state;
    const struct notify_source srcs[] = {
        {.source = "postgres:app", .ok = true, .restore_s = 41.25},
        {.source = "postgres:globals", .ok = true, .restore_s = -1},
    };
    struct notify_run r = {.command = NOTIFY_DRILL,
                           .name = "default",
                           .set_id = "20261122T020000Z",
                           .exit_code = 0,
                           .backup_ok = true,
                           .sources = srcs,
                           .n_sources = 2,
                           .finished = 1795312854.5,
                           .sets_total = -1};
    char *m = notify_metrics_text(&r);
    assert_true(sample(m, "sauve_last_drill_timestamp_seconds") == 1795312854.5);
    assert_true(sample(m, "sauve_last_drill_success_timestamp_seconds") == 1795312854.5);
    assert_true(sample(m, "sauve_last_drill_success") == 1);
    assert_true(sample(m, "sauve_drill_status") == 0);
    assert_true(sample(m, "sauve_restore_duration_seconds{source=\"postgres:app\"}") == 41.25);
    assert_null(strstr(m, "globals"));
    assert_null(strstr(m, "sauve_run_status")); /* the backup's own series are not touched */
    assert_non_null(strstr(m, "# TYPE sauve_restore_duration_seconds gauge\n"));
    free(m);
    /* a drill of some sources: a success, but not the set's */
    r.some_sources = true;
    m = notify_metrics_text(&r);
    assert_true(sample(m, "sauve_last_drill_success") == 1);
    assert_null(strstr(m, "success_timestamp"));
    free(m);
    r.some_sources = false;

    r.backup_ok = false;
    r.exit_code = 4;
    r.command = NOTIFY_VERIFY;
    m = notify_metrics_text(&r);
    assert_true(sample(m, "sauve_last_verify_success") == 0);
    assert_true(sample(m, "sauve_verify_status") == 4);
    assert_null(strstr(m, "success_timestamp"));
    free(m);
    r.summary = "drill failed: set default/20261122T020000Z, 1 of 2 source(s) did not hold";
    r.command = NOTIFY_DRILL;
    r.hostname = "h";
    char *text = notify_webhook_text(&r);
    assert_string_equal(text,
                        ":x: sauve drill of default failed on h (exit 4): set default/20261122T020000Z, 1 of "
                        "2 source(s) did not hold");
    free(text);
    assert_string_equal(notify_status(&r), "failed");
}

static void test_metrics_after_success(void **state)
{
    (void)state;
    struct notify_run r = success_run();
    char *m = notify_metrics_text(&r);
    static const char *const names[] = {"sauve_last_run_timestamp_seconds",
                                        "sauve_last_success_timestamp_seconds",
                                        "sauve_run_duration_seconds",
                                        "sauve_run_status",
                                        "sauve_source_bytes",
                                        "sauve_sets_total"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char help[128], type[128];
        snprintf(help, sizeof help, "# HELP %s ", names[i]);
        snprintf(type, sizeof type, "# TYPE %s gauge\n", names[i]);
        /* HELP, then TYPE on the next line, each family once */
        const char *h = strstr(m, help);
        assert_non_null(h);
        const char *nl = strchr(h, '\n');
        assert_non_null(nl);
        assert_memory_equal(nl + 1, type, strlen(type));
        assert_null(strstr(nl + 1 + strlen(type), type));
    }
    assert_true(sample(m, "sauve_last_run_timestamp_seconds") == 1795312854.5);
    assert_true(sample(m, "sauve_last_success_timestamp_seconds") == 1795312854.5);
    assert_true(sample(m, "sauve_run_duration_seconds") == 54.321);
    assert_true(sample(m, "sauve_run_status") == 0);
    assert_true(sample(m, "sauve_source_bytes{source=\"postgres:globals\"}") == 1234);
    assert_non_null(strstr(m, "sauve_source_bytes{source=\"postgres:app\"} 5000000000\n"));
    assert_true(sample(m, "sauve_sets_total") == 12);
    /* every line ends with \n, the text too */
    assert_int_equal(m[strlen(m) - 1], '\n');
    free(m);
}

static void test_metrics_after_failure_keep_last_success(void **state)
{
    (void)state;
    struct notify_run r = success_run();
    r.exit_code = 75;
    r.backup_ok = false;
    r.set_id = NULL;
    r.sets_total = -1;
    r.n_sources = 0;
    char *m = notify_metrics_text(&r);
    assert_null(strstr(m, "sauve_last_success_timestamp_seconds"));
    assert_null(strstr(m, "sauve_source_bytes"));
    assert_null(strstr(m, "sauve_sets_total"));
    assert_true(sample(m, "sauve_run_status") == 75);
    assert_true(sample(m, "sauve_last_run_timestamp_seconds") == 1795312854.5);
    free(m);
}

static void test_metrics_partial_reports_failed_source_as_zero(void **state)
{
    (void)state;
    const struct notify_source srcs[] = {
        {.source = "postgres:app", .ok = true, .bytes_stored = 77},
        {.source = "postgres:x", .ok = false, .bytes_stored = 999, .error = "permission denied"},
    };
    struct notify_run r = success_run();
    r.exit_code = 2;
    r.backup_ok = false;
    r.sources = srcs;
    r.n_sources = 2;
    char *m = notify_metrics_text(&r);
    assert_null(strstr(m, "sauve_last_success_timestamp_seconds"));
    assert_true(sample(m, "sauve_source_bytes{source=\"postgres:app\"}") == 77);
    assert_true(sample(m, "sauve_source_bytes{source=\"postgres:x\"}") == 0);
    free(m);
}

static void test_label_escaping(void **state)
{
    (void)state;
    char *e = notify_escape_label("a\\b\"c\nd é");
    assert_string_equal(e, "a\\\\b\\\"c\\nd é");
    free(e);
    const struct notify_source odd[] = {{.source = "files:we\"ird\\name\n", .ok = true, .bytes_stored = 1}};
    struct notify_run r = success_run();
    r.sources = odd;
    r.n_sources = 1;
    char *m = notify_metrics_text(&r);
    assert_non_null(strstr(m, "sauve_source_bytes{source=\"files:we\\\"ird\\\\name\\n\"} 1\n"));
    free(m);
}

static void test_pushgateway_url(void **state)
{
    (void)state;
    char *u = notify_pushgateway_url("http://pgw:9091", "sauve", "default");
    assert_string_equal(u, "http://pgw:9091/metrics/job/sauve/name/default");
    free(u);
    u = notify_pushgateway_url("https://pgw.example/prefix//", "sauve", "prod db:1");
    assert_string_equal(u, "https://pgw.example/prefix/metrics/job/sauve/name/prod%20db%3A1");
    free(u);
    /* '/' only in the base64 form (URL-safe alphabet): "team/a?" -> dGVhbS9hPw== */
    u = notify_pushgateway_url("http://pgw:9091", "sauve", "team/a?");
    assert_string_equal(u, "http://pgw:9091/metrics/job/sauve/name@base64/dGVhbS9hPw==");
    free(u);
    /* bytes 0xfb 0xff need - and _ of the URL-safe alphabet; one '/' forces base64 */
    u = notify_pushgateway_url("http://pgw:9091", "sauve", "/\xfb\xff");
    assert_string_equal(u, "http://pgw:9091/metrics/job/sauve/name@base64/L_v_");
    free(u);
    u = notify_pushgateway_url("http://pgw:9091", "sauve", "");
    assert_string_equal(u, "http://pgw:9091/metrics/job/sauve/name@base64/=");
    free(u);
}

static void test_url_helpers(void **state)
{
    (void)state;
    char *u = notify_url_with_suffix("https://hc-ping.com/0b1c-uuid", "start");
    assert_string_equal(u, "https://hc-ping.com/0b1c-uuid/start");
    free(u);
    u = notify_url_with_suffix("https://hc.example/ping/abc/?rid=1#x", "fail");
    assert_string_equal(u, "https://hc.example/ping/abc/fail?rid=1#x");
    free(u);
    u = notify_url_with_suffix("https://hc.example/ping/abc", "");
    assert_string_equal(u, "https://hc.example/ping/abc");
    free(u);

    char *o = notify_url_origin("https://user:pw@hooks.slack.com/services/T0/B0/XXXX?token=y");
    assert_string_equal(o, "https://hooks.slack.com");
    free(o);
    o = notify_url_origin("http://127.0.0.1:9091/metrics");
    assert_string_equal(o, "http://127.0.0.1:9091");
    free(o);
    o = notify_url_origin("not a url");
    assert_string_equal(o, "(invalid URL)");
    free(o);
}

static void test_webhook_json_on_failure(void **state)
{
    (void)state;
    const struct notify_source srcs[] = {
        {.source = "postgres",
         .ok = false,
         .error =
             "cannot connect to postgres at db:5432 as app (database app): password authentication failed"},
    };
    struct notify_run r = {.name = "nightly",
                           .exit_code = 75,
                           .summary =
                               "backup failed: cannot connect to postgres at db:5432 as app (database app): "
                               "password authentication failed (hint: check PGPASSWORD)",
                           .sources = srcs,
                           .n_sources = 1,
                           .sets_total = -1,
                           .duration_s = 0.25,
                           .finished = 1795312854,
                           .hostname = "node-1"};
    char *body = notify_webhook_json(&r);
    json_error_t jerr;
    json_t *o = json_loads(body, 0, &jerr);
    assert_non_null(o);
    const char *text = json_string_value(json_object_get(o, "text"));
    assert_non_null(text);
    assert_string_equal(text, json_string_value(json_object_get(o, "content")));
    assert_string_equal(
        text, ":x: sauve backup of nightly failed on node-1 (exit 75): cannot connect to postgres at "
              "db:5432 as app (database app): password authentication failed (hint: check "
              "PGPASSWORD)");
    assert_string_equal(json_string_value(json_object_get(o, "name")), "nightly");
    assert_true(json_is_null(json_object_get(o, "set")));
    assert_string_equal(json_string_value(json_object_get(o, "status")), "failed");
    assert_int_equal(json_integer_value(json_object_get(o, "exit_code")), 75);
    json_t *failed = json_object_get(o, "failed_sources");
    assert_int_equal(json_array_size(failed), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(failed, 0), "source")), "postgres");
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(failed, 0), "error")),
                           "password authentication failed"));
    assert_true(json_real_value(json_object_get(o, "duration_seconds")) == 0.25);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes_stored")), 0);
    assert_string_equal(json_string_value(json_object_get(o, "hostname")), "node-1");
    json_decref(o);
    free(body);
}

static void test_webhook_partial_names_the_failed_source_and_error(void **state)
{
    (void)state;
    const struct notify_source srcs[] = {
        {.source = "postgres:app", .ok = true, .bytes_stored = 4096},
        {.source = "postgres:analytics",
         .ok = false,
         .error = "pg_dump exited with status 1: permission denied"},
    };
    struct notify_run r = success_run();
    r.exit_code = 2;
    r.backup_ok = false;
    r.summary = "backup partial: set default/20261122T020000Z committed with 1 of 2 artifact(s); failed: "
                "postgres:analytics";
    r.sources = srcs;
    r.n_sources = 2;
    r.bytes_stored = 4096;
    char *body = notify_webhook_json(&r);
    json_t *o = json_loads(body, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "partial");
    assert_string_equal(json_string_value(json_object_get(o, "set")), "20261122T020000Z");
    const char *text = json_string_value(json_object_get(o, "text"));
    assert_non_null(
        strstr(text, ":warning: sauve backup of default was partial on sauve-29110-x7k2p (exit 2)"));
    assert_non_null(strstr(text, "postgres:analytics: pg_dump exited with status 1: permission denied"));
    assert_int_equal(json_array_size(json_object_get(o, "failed_sources")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes_stored")), 4096);
    json_decref(o);
    free(body);

    r = success_run();
    body = notify_webhook_json(&r);
    o = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "ok");
    assert_int_equal(json_array_size(json_object_get(o, "failed_sources")), 0);
    assert_non_null(strstr(json_string_value(json_object_get(o, "text")),
                           ":white_check_mark: sauve backup of default succeeded"));
    json_decref(o);
    free(body);
}

static void test_webhook_text_fits_discord_and_survives_bad_utf8(void **state)
{
    (void)state;
    /* 3000 bytes of 'é' (2 bytes each): cut on a character boundary */
    char *summary = xmalloc(3001);
    for (int i = 0; i < 3000; i += 2)
        memcpy(summary + i, "\xC3\xA9", 2);
    summary[3000] = '\0';
    const struct notify_source bad[] = {
        {.source = "postgres:x", .ok = false, .error = "bad \xff\xfe bytes\nline 2"}};
    struct notify_run r = success_run();
    r.exit_code = 1;
    r.set_id = NULL;
    r.backup_ok = false;
    r.summary = summary;
    r.sources = bad;
    r.n_sources = 1;
    char *body = notify_webhook_json(&r);
    json_t *o = json_loads(body, 0, NULL);
    assert_non_null(o);
    const char *text = json_string_value(json_object_get(o, "content"));
    assert_non_null(text); /* jansson accepted it: valid UTF-8 */
    assert_true(strlen(text) <= 2000);
    assert_null(strchr(text, '\n'));
    assert_non_null(strstr(text, "\xE2\x80\xA6"));
    const char *err =
        json_string_value(json_object_get(json_array_get(json_object_get(o, "failed_sources"), 0), "error"));
    assert_string_equal(err, "bad ?? bytes\nline 2");
    json_decref(o);
    free(body);
    free(summary);
}

static void test_invalid_url_is_a_failure_without_network(void **state)
{
    (void)state;
    sv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.name = "default";
    cfg.notify_url = "ftp://hooks.example/secret-token";
    cfg.notify_on = "failure";
    cfg.notify_timeout = 1;
    notifier *n = notify_start(&cfg, NOTIFY_BACKUP);
    struct notify_run r = success_run();
    char failed[256];
    assert_int_equal(notify_finish(n, &r, failed, sizeof failed), 1);
    assert_non_null(strstr(failed, "SAUVE_NOTIFY_URL"));
    assert_null(strstr(failed, "secret-token"));
    notify_free(n);

    memset(&cfg, 0, sizeof cfg);
    cfg.name = "default";
    n = notify_start(&cfg, NOTIFY_BACKUP);
    assert_int_equal(notify_finish(n, &r, failed, sizeof failed), 0);
    assert_string_equal(failed, "");
    notify_free(n);
}

static void test_url_path_and_query_are_secrets(void **state)
{
    (void)state;
    log_clear_secrets();
    sv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.name = "default";
    /* port 1: nothing is called for the webhook at the start */
    cfg.notify_url = "http://127.0.0.1:1/hook/secret-token-42?k=v";
    cfg.pushgateway_url = "http://127.0.0.1:1/p"; /* path too short to be masked */
    cfg.notify_timeout = 1;
    notifier *n = notify_start(&cfg, NOTIFY_BACKUP);
    /* What an Express 404 says: the path, without scheme and host */
    char *m = log_mask("Cannot POST /hook/secret-token-42?k=v");
    assert_string_equal(m, "Cannot POST ***");
    free(m);
    m = log_mask("Cannot POST /hook/secret-token-42");
    assert_string_equal(m, "Cannot POST ***");
    free(m);
    m = log_mask("GET /p and /metrics");
    assert_string_equal(m, "GET /p and /metrics");
    free(m);
    notify_free(n);
    log_clear_secrets();
}

/* log_mask hides every byte of every occurrence, however occurrences of
 * secrets overlap and in whatever order the secrets came (found by fuzz_notify). */
static void test_mask_overlapping_secrets(void **state)
{
    (void)state;
    log_clear_secrets();
    log_add_secret("abcd");
    log_add_secret("bcdefg");
    char *m = log_mask("token abcdefghij abcdabcd");
    assert_string_equal(m, "token ***hij ***"); /* was "token ***efghij ******" */
    free(m);
    log_clear_secrets();
    /* a short secret registered first inside a longer one (a password inside a webhook URL) */
    log_add_secret("tok3n");
    log_add_secret("https://h.example/hook/tok3n-and-more");
    m = log_mask("POST https://h.example/hook/tok3n-and-more failed");
    assert_string_equal(m, "POST *** failed");
    free(m);
    log_clear_secrets();
    log_add_secret("aaaa"); /* overlapping itself */
    m = log_mask("x aaaaa y aaaaaaaa z");
    assert_string_equal(m, "x *** y *** z");
    free(m);
    m = log_mask("nothing to hide");
    assert_string_equal(m, "nothing to hide");
    free(m);
    log_clear_secrets();
}

/* What the webhook does to a text after masking must not complete a secret
 * the masking did not see (found by fuzz_notify). */
static void test_webhook_masks_after_reshaping(void **state)
{
    (void)state;
    log_clear_secrets();
    log_add_secret("/hook?token=abcdef"); /* a URL's path and query */
    log_add_secret("pass word1");
    struct notify_run r = success_run();
    r.exit_code = 1;
    r.set_id = NULL;
    r.backup_ok = false;
    /* not UTF-8: the byte becomes '?' in JSON; a line break becomes a blank in text */
    r.summary = "backup failed: POST /hook\xe9token=abcdef refused pass\nword1";
    char *text = notify_webhook_text(&r);
    assert_null(strstr(text, "pass word1"));
    free(text);
    char *body = notify_webhook_json(&r);
    assert_null(strstr(body, "token=abcdef"));
    assert_null(strstr(body, "pass word1"));
    json_t *o = json_loads(body, 0, NULL);
    assert_non_null(o);
    assert_non_null(strstr(json_string_value(json_object_get(o, "summary")), "POST ***"));
    json_decref(o);
    free(body);
    log_clear_secrets();
}

static void test_webhook_masks_secrets_in_every_text(void **state)
{
    (void)state;
    log_clear_secrets();
    log_add_secret("hunter2-Pw");
    const struct notify_source srcs[] = {
        {.source = "postgres:x", .ok = false, .error = "auth failed with hunter2-Pw"},
    };
    struct notify_run r = success_run();
    r.exit_code = 2;
    r.backup_ok = false;
    r.summary = "backup partial: password hunter2-Pw refused";
    r.sources = srcs;
    r.n_sources = 1;
    char *body = notify_webhook_json(&r);
    assert_null(strstr(body, "hunter2"));
    json_t *o = json_loads(body, 0, NULL);
    assert_non_null(o);
    assert_non_null(strstr(json_string_value(json_object_get(o, "text")), "password *** refused"));
    assert_non_null(strstr(json_string_value(json_object_get(o, "content")), "auth failed with ***"));
    assert_string_equal(json_string_value(json_object_get(o, "summary")),
                        "backup partial: password *** refused");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(o, "failed_sources"), 0), "error")),
        "auth failed with ***");
    json_decref(o);
    free(body);

    /* Masked before the cut to 2000 characters: no piece of it survives */
    char *summary = xmalloc(3001);
    memset(summary, 'a', 3000);
    /* The text keeps 1987 bytes and "…": the secret straddles the cut */
    size_t prefix = strlen(":warning: sauve backup of default was partial on sauve-29110-x7k2p (exit 2): ");
    memcpy(summary + 1983 - prefix, "hunter2-Pw", 10);
    summary[3000] = '\0';
    r.summary = summary;
    r.n_sources = 0;
    char *text = notify_webhook_text(&r);
    assert_null(strstr(text, "hunt"));
    assert_non_null(strstr(text, "***"));
    free(text);
    free(summary);
    log_clear_secrets();
}

static void test_webhook_text_is_escaped_for_slack_content_is_not(void **state)
{
    (void)state;
    char *e = notify_slack_escape("<!channel> a&b > c");
    assert_string_equal(e, "&lt;!channel&gt; a&amp;b &gt; c");
    free(e);
    const struct notify_source srcs[] = {
        {.source = "postgres:x", .ok = false, .error = "relation <!channel> & <@U123> missing"},
    };
    struct notify_run r = success_run();
    r.exit_code = 1;
    r.set_id = NULL;
    r.backup_ok = false;
    r.summary = "backup failed: 1 source failed";
    r.sources = srcs;
    r.n_sources = 1;
    char *body = notify_webhook_json(&r);
    json_t *o = json_loads(body, 0, NULL);
    assert_non_null(o);
    const char *text = json_string_value(json_object_get(o, "text"));
    assert_null(strchr(text, '<'));
    assert_null(strchr(text, '>'));
    assert_non_null(strstr(text, "relation &lt;!channel&gt; &amp; &lt;@U123&gt; missing"));
    assert_non_null(
        strstr(json_string_value(json_object_get(o, "content")), "relation <!channel> & <@U123> missing"));
    json_decref(o);
    free(body);
}

/* A local port that refuses connections: bound, never listening. */
static int refusing_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

static double webhook_seconds(const char *url)
{
    sv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.name = "default";
    char copy[128];
    snprintf(copy, sizeof copy, "%s", url);
    cfg.notify_url = copy;
    cfg.notify_on = "always";
    cfg.notify_timeout = 5;
    notifier *n = notify_start(&cfg, NOTIFY_BACKUP);
    struct notify_run r = success_run();
    char failed[256];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(notify_finish(n, &r, failed, sizeof failed), 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    notify_free(n);
    return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

static void test_no_retry_after_a_stop_request(void **state)
{
    (void)state;
    int fd;
    int port = refusing_port(&fd);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
    /* A refused connection is tried once more, after a pause of 1 s... */
    assert_true(webhook_seconds(url) >= 0.9);
    /* ...but not once Kubernetes asked sauve to stop */
    signals_install();
    raise(SIGTERM);
    assert_int_not_equal(signals_stop_requested(), 0);
    assert_true(webhook_seconds(url) < 0.8);
    signals_reset();
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    close(fd);
    log_clear_secrets();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_after_success),
        cmocka_unit_test(test_drill_metrics),
        cmocka_unit_test(test_metrics_after_failure_keep_last_success),
        cmocka_unit_test(test_metrics_partial_reports_failed_source_as_zero),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_pushgateway_url),
        cmocka_unit_test(test_url_helpers),
        cmocka_unit_test(test_webhook_json_on_failure),
        cmocka_unit_test(test_webhook_partial_names_the_failed_source_and_error),
        cmocka_unit_test(test_webhook_text_fits_discord_and_survives_bad_utf8),
        cmocka_unit_test(test_invalid_url_is_a_failure_without_network),
        cmocka_unit_test(test_url_path_and_query_are_secrets),
        cmocka_unit_test(test_mask_overlapping_secrets),
        cmocka_unit_test(test_webhook_masks_after_reshaping),
        cmocka_unit_test(test_webhook_masks_secrets_in_every_text),
        cmocka_unit_test(test_webhook_text_is_escaped_for_slack_content_is_not),
        cmocka_unit_test(test_no_retry_after_a_stop_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
