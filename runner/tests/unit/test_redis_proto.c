/* sources/redis_proto.c: CRC-64, the RDB checker, RESP replies and the
 * framing of the sync payload; sources/redis_conn.c: the URL. Fed whole,
 * byte by byte and cut at every point. */
#include "testutil.h"

#include "common/log.h"
#include "sources/redis.h"

#include "redis_sample_rdb.h"
#define REAL_LEN sizeof g_real_rdb

static void test_crc64_check_value_and_chunks(void **state)
{
    (void)state;
    /* the published check value of CRC-64/Jones as Redis uses it */
    assert_true(redis_crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9caULL);
    assert_true(redis_crc64(0, "", 0) == 0);
    /* any cut gives the same result as the whole */
    uint64_t whole = redis_crc64(0, g_real_rdb, REAL_LEN);
    for (size_t cut = 0; cut <= REAL_LEN; cut++) {
        uint64_t c = redis_crc64(redis_crc64(0, g_real_rdb, cut), g_real_rdb + cut, REAL_LEN - cut);
        assert_true(c == whole);
    }
}

static void test_crc64_matches_the_servers_trailer(void **state)
{
    (void)state;
    uint64_t stored = 0;
    for (int i = 7; i >= 0; i--)
        stored = stored << 8 | g_real_rdb[REAL_LEN - 8 + (size_t)i];
    assert_true(redis_crc64(0, g_real_rdb, REAL_LEN - 8) == stored);
    assert_int_equal(g_real_rdb[REAL_LEN - 9], 0xff);
}

/* Feeds data in pieces of step bytes; returns finish's result. */
static int check_in_steps(const unsigned char *data, size_t len, size_t step, redis_rdb_check *c)
{
    redis_rdb_check_init(c);
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        if (redis_rdb_check_update(c, data + off, n) != 0)
            return -1;
    }
    return redis_rdb_check_finish(c);
}

static void test_checker_accepts_the_real_rdb_in_any_cut(void **state)
{
    (void)state;
    redis_rdb_check c;
    for (size_t step = 1; step <= REAL_LEN; step++) {
        assert_int_equal(check_in_steps(g_real_rdb, REAL_LEN, step, &c), 0);
        assert_int_equal(c.version, 10);
        assert_false(c.unchecksummed);
        assert_int_equal(c.bytes, REAL_LEN);
    }
    /* two pieces, cut anywhere */
    for (size_t cut = 0; cut <= REAL_LEN; cut++) {
        redis_rdb_check_init(&c);
        assert_int_equal(redis_rdb_check_update(&c, g_real_rdb, cut), 0);
        assert_int_equal(redis_rdb_check_update(&c, g_real_rdb + cut, REAL_LEN - cut), 0);
        assert_int_equal(redis_rdb_check_finish(&c), 0);
    }
}

static void test_checker_refuses_every_flipped_bit(void **state)
{
    (void)state;
    unsigned char copy[REAL_LEN];
    redis_rdb_check c;
    for (size_t i = 0; i < REAL_LEN; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, g_real_rdb, REAL_LEN);
            copy[i] ^= (unsigned char)(1u << bit);
            int step = (int)(i % 3) + 1;
            assert_int_equal(check_in_steps(copy, REAL_LEN, (size_t)step, &c), -1);
            assert_true(c.error[0] != '\0');
        }
    }
    /* the end opcode is named when it is the byte that changed */
    memcpy(copy, g_real_rdb, REAL_LEN);
    copy[REAL_LEN - 9] = 0xfe;
    assert_int_equal(check_in_steps(copy, REAL_LEN, 7, &c), -1);
    assert_non_null(strstr(c.error, "end opcode"));
}

static void test_checker_refuses_every_truncation(void **state)
{
    (void)state;
    redis_rdb_check c;
    for (size_t len = 0; len < REAL_LEN; len++)
        assert_int_equal(check_in_steps(g_real_rdb, len, 5, &c), -1);
}

static void test_checker_header_fails_early(void **state)
{
    (void)state;
    redis_rdb_check c;
    redis_rdb_check_init(&c);
    assert_int_equal(redis_rdb_check_update(&c, "REDIS00", 7), 0);
    assert_int_equal(redis_rdb_check_update(&c, "x1", 2), -1);
    assert_non_null(strstr(c.error, "4-digit version"));
    assert_int_equal(redis_rdb_check_update(&c, "more", 4), -1);
    redis_rdb_check_init(&c);
    assert_int_equal(redis_rdb_check_update(&c, "HELLO0010", 9), -1);
    assert_non_null(strstr(c.error, "not an RDB"));
    redis_rdb_check_init(&c);
    assert_int_equal(redis_rdb_check_update(&c, "REDIS0004", 9), -1);
    assert_non_null(strstr(c.error, "no checksum"));
}

static void test_checker_accepts_a_zero_checksum_as_absent(void **state)
{
    (void)state;
    unsigned char copy[REAL_LEN];
    memcpy(copy, g_real_rdb, REAL_LEN);
    memset(copy + REAL_LEN - 8, 0, 8);
    redis_rdb_check c;
    assert_int_equal(check_in_steps(copy, REAL_LEN, 3, &c), 0);
    assert_true(c.unchecksummed);
}

/* ---- the sync payload ---- */

struct collect {
    unsigned char data[4096];
    size_t len;
    int fail_after; /* fail the call after this many bytes; -1 never */
};

static int collect(void *ctx, const void *buf, size_t len, sv_error *err)
{
    struct collect *k = ctx;
    if (k->fail_after >= 0 && k->len + len > (size_t)k->fail_after)
        return sv_error_set(err, SV_EXIT_FAILED, "sink full");
    assert_true(k->len + len <= sizeof k->data);
    memcpy(k->data + k->len, buf, len);
    k->len += len;
    return 0;
}

/* Feeds wire in steps; returns the total consumed, or -1. */
static ssize_t sync_in_steps(redis_sync *s, const unsigned char *wire, size_t len, size_t step,
                             struct collect *k, sv_error *err)
{
    redis_sync_init(s);
    size_t total = 0;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        ssize_t r = redis_sync_feed(s, wire + off, n, collect, k, err);
        if (r < 0)
            return -1;
        total += (size_t)r;
        if ((size_t)r < n)
            break;
    }
    return (ssize_t)total;
}

static void test_sync_length_framing_with_keepalives(void **state)
{
    (void)state;
    unsigned char wire[1024];
    const char *head = "+FULLRESYNC 8de1787ba490483314a4d30f1c628bc5025eb761 0\r\n\n\n\n$156\r\n";
    size_t hl = strlen(head);
    memcpy(wire, head, hl);
    memcpy(wire + hl, g_real_rdb, REAL_LEN);
    const char *after = "*1\r\n$4\r\nPING\r\n";
    memcpy(wire + hl + REAL_LEN, after, strlen(after));
    size_t len = hl + REAL_LEN + strlen(after);
    for (size_t step = 1; step <= len; step++) {
        redis_sync s;
        struct collect k = {.fail_after = -1};
        sv_error err = {0};
        ssize_t used = sync_in_steps(&s, wire, len, step, &k, &err);
        assert_int_equal(used, (ssize_t)(hl + REAL_LEN)); /* the replication stream is left alone */
        assert_int_equal(s.state, REDIS_SYNC_DONE);
        assert_false(s.eof_framing);
        assert_int_equal(s.keepalives, 3);
        assert_non_null(strstr(s.fullresync, "+FULLRESYNC 8de1"));
        assert_int_equal(k.len, REAL_LEN);
        assert_memory_equal(k.data, g_real_rdb, REAL_LEN);
    }
}

static void test_sync_eof_framing(void **state)
{
    (void)state;
    unsigned char wire[1024];
    const char mark[] = "0123456789abcdef0123456789abcdef01234567";
    size_t n = 0;
    n += (size_t)sprintf((char *)wire, "\n$EOF:%s\r\n", mark);
    memcpy(wire + n, g_real_rdb, REAL_LEN);
    n += REAL_LEN;
    memcpy(wire + n, mark, 40);
    n += 40;
    memcpy(wire + n, "\r\nextra", 7);
    for (size_t step = 1; step <= n + 7; step++) {
        redis_sync s;
        struct collect k = {.fail_after = -1};
        sv_error err = {0};
        ssize_t used = sync_in_steps(&s, wire, n + 7, step, &k, &err);
        assert_int_equal(used, (ssize_t)n);
        assert_int_equal(s.state, REDIS_SYNC_DONE);
        assert_true(s.eof_framing);
        assert_int_equal(k.len, REAL_LEN);
        assert_memory_equal(k.data, g_real_rdb, REAL_LEN);
    }
    /* without its mark, the payload never ends (the caller sees the close) */
    redis_sync s;
    struct collect k = {.fail_after = -1};
    sv_error err = {0};
    assert_true(sync_in_steps(&s, wire, n - 1, 4, &k, &err) == (ssize_t)(n - 1));
    assert_int_equal(s.state, REDIS_SYNC_PAYLOAD);
    assert_true(k.len < REAL_LEN + 40);
}

static void test_sync_refusal_and_protocol_errors(void **state)
{
    (void)state;
    const char *refused = "-NOPERM this user has no permissions to run the 'psync' command\r\n";
    redis_sync s;
    struct collect k = {.fail_after = -1};
    sv_error err = {0};
    assert_int_equal(sync_in_steps(&s, (const unsigned char *)refused, strlen(refused), 1, &k, &err),
                     (ssize_t)strlen(refused));
    assert_int_equal(s.state, REDIS_SYNC_REFUSED);
    assert_string_equal(s.refusal, "NOPERM this user has no permissions to run the 'psync' command");

    const char *bad[] = {"$EOF:short\r\n", "$-4\r\n", "$12x\r\n", "+CONTINUE\r\n", ":1\r\n", "hello\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sv_error_clear(&err);
        assert_int_equal(sync_in_steps(&s, (const unsigned char *)bad[i], strlen(bad[i]), 2, &k, &err), -1);
        assert_true(err.msg[0] != '\0');
    }
    /* a line that never ends is refused, not buffered forever */
    unsigned char longline[600];
    memset(longline, 'a', sizeof longline);
    longline[0] = '+';
    assert_int_equal(sync_in_steps(&s, longline, sizeof longline, 64, &k, &err), -1);
}

static void test_sync_emit_failure_stops_the_feed(void **state)
{
    (void)state;
    unsigned char wire[512];
    size_t hl = (size_t)sprintf((char *)wire, "$156\r\n");
    memcpy(wire + hl, g_real_rdb, REAL_LEN);
    redis_sync s;
    struct collect k = {.fail_after = 50};
    sv_error err = {0};
    assert_int_equal(sync_in_steps(&s, wire, hl + REAL_LEN, 16, &k, &err), -1);
    assert_string_equal(err.msg, "sink full");
    assert_true(k.len <= 50);
}

/* ---- RESP replies ---- */

static void parse_whole(const char *wire, int expect_type, const char *expect_str, long long expect_int)
{
    size_t len = strlen(wire);
    redis_reply r;
    size_t used = 0;
    sv_error err = {0};
    /* every proper prefix asks for more */
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(redis_reply_parse(wire, cut, &r, &used, &err), 0);
        assert_null(r.str);
    }
    assert_int_equal(redis_reply_parse(wire, len, &r, &used, &err), 1);
    assert_int_equal(used, len);
    assert_int_equal(r.type, expect_type);
    if (expect_str)
        assert_string_equal(r.str, expect_str);
    else
        assert_null(r.str);
    assert_int_equal(r.integer, expect_int);
    redis_reply_free(&r);
}

static void test_resp_replies(void **state)
{
    (void)state;
    parse_whole("+OK\r\n", REDIS_REPLY_STATUS, "OK", 0);
    parse_whole("-WRONGPASS invalid username-password pair\r\n", REDIS_REPLY_ERROR,
                "WRONGPASS invalid username-password pair", 0);
    parse_whole(":-42\r\n", REDIS_REPLY_INTEGER, NULL, -42);
    parse_whole("$12\r\nredis\r\nx:7.0\r\n", REDIS_REPLY_BULK, "redis\r\nx:7.0", 0);
    parse_whole("$0\r\n\r\n", REDIS_REPLY_BULK, "", 0);
    parse_whole("$-1\r\n", REDIS_REPLY_NIL, NULL, 0);
    parse_whole("*2\r\n*1\r\n:1\r\n$1\r\na\r\n", REDIS_REPLY_ARRAY, NULL, 2);
    /* a reply followed by the next one: only the first is used */
    redis_reply r;
    size_t used;
    sv_error err = {0};
    assert_int_equal(redis_reply_parse("+A\r\n+B\r\n", 8, &r, &used, &err), 1);
    assert_int_equal(used, 4);
    redis_reply_free(&r);
}

static void test_resp_protocol_errors(void **state)
{
    (void)state;
    const char *bad[] = {"?x\r\n",  ":12a\r\n",  "$-2\r\n", "$3\r\nabcde\r\n",
                         "*-5\r\n", "+a\rb\r\n", "\r\n",    "$99999999999\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        redis_reply r;
        size_t used = 0;
        sv_error err = {0};
        assert_int_equal(redis_reply_parse(bad[i], strlen(bad[i]), &r, &used, &err), -1);
        assert_true(err.msg[0] != '\0');
        assert_null(r.str);
    }
    /* arrays nested beyond the limit */
    char deep[64] = "";
    for (int i = 0; i < 12; i++)
        strcat(deep, "*1\r\n");
    strcat(deep, ":1\r\n");
    redis_reply r;
    size_t used;
    sv_error err = {0};
    assert_int_equal(redis_reply_parse(deep, strlen(deep), &r, &used, &err), -1);
}

/* ---- the URL ---- */

static void test_url_forms(void **state)
{
    (void)state;
    struct redis_url u;
    sv_error err = {0};
    assert_int_equal(redis_url_parse("redis://cache.app.svc", &u, &err), 0);
    assert_string_equal(u.host, "cache.app.svc");
    assert_int_equal(u.port, 6379);
    assert_false(u.tls);
    assert_null(u.user);
    assert_null(u.password);
    redis_url_free(&u);

    assert_int_equal(redis_url_parse("rediss://backup:p%40ss%3Aw0rd@10.0.0.5:6380/2", &u, &err), 0);
    assert_true(u.tls);
    assert_string_equal(u.user, "backup");
    assert_string_equal(u.password, "p@ss:w0rd");
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 6380);
    redis_url_free(&u);

    assert_int_equal(redis_url_parse("redis://:only-a-password@[::1]:7000", &u, &err), 0);
    assert_null(u.user);
    assert_string_equal(u.password, "only-a-password");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    redis_url_free(&u);

    /* the password from the URL is masked in everything logged afterwards */
    assert_int_equal(redis_url_parse("redis://u:Secret-From-Url-77@h", &u, &err), 0);
    char masked[128];
    log_mask_into(masked, sizeof masked, "auth with Secret-From-Url-77 failed");
    assert_null(strstr(masked, "Secret-From-Url-77"));
    redis_url_free(&u);
}

static void test_url_errors_never_quote_it(void **state)
{
    (void)state;
    const char *bad[] = {"http://h:1",       "redis://",         "redis://h:0",  "redis://h:65536",
                         "redis://h:12x",    "redis://h:",       "redis://[::1", "redis://u:pa%4@h",
                         "redis://u:p%00@h", "rediss://:pw%zz@h"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct redis_url u;
        sv_error err = {0};
        assert_int_equal(redis_url_parse(bad[i], &u, &err), -1);
        assert_int_equal(err.code, SV_EXIT_CONFIG);
        assert_non_null(strstr(err.msg, "SAUVE_REDIS_URL"));
        assert_null(strstr(err.msg, bad[i]));
        assert_null(u.host);
    }
}

/* INFO replication as Redis 7.0 writes it, with a real replica and two
 * sauve backups (one still waiting for the fork). */
static void test_backups_are_found_in_info_replication(void **state)
{
    (void)state;
    const char *info = "# Replication\r\nrole:master\r\nconnected_slaves:3\r\n"
                       "slave0:ip=10.0.0.7,port=6379,state=online,offset=1234,lag=0\r\n"
                       "slave1:ip=sauve-backup,port=0,state=send_bulk,offset=0,lag=0\r\n"
                       "slave2:ip=sauve-backup,port=0,state=wait_bgsave,offset=0,lag=0\r\n"
                       "master_failover_state:no-failover\r\n";
    char st[32];
    assert_int_equal(redis_info_backups(info, st, sizeof st), 2);
    assert_string_equal(st, "send_bulk");
    /* an address that only starts like it, a field that only ends like it,
     * and other sections' lines are not backups */
    const char *others = "slave0:ip=sauve-backup2,port=0,state=online\r\n"
                         "slave1:port=0,xip=sauve-backup,state=online\r\n"
                         "slaves:ip=sauve-backup,state=online\r\n"
                         "slave3ip=sauve-backup,state=online\r\n"
                         "master_host:sauve-backup\r\n";
    assert_int_equal(redis_info_backups(others, st, sizeof st), 0);
    assert_string_equal(st, "");
    assert_int_equal(redis_info_backups("", st, sizeof st), 0);
    /* the last line without its end, a state missing */
    assert_int_equal(redis_info_backups("slave0:ip=sauve-backup,port=0", st, sizeof st), 1);
    assert_string_equal(st, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc64_check_value_and_chunks),
        cmocka_unit_test(test_crc64_matches_the_servers_trailer),
        cmocka_unit_test(test_checker_accepts_the_real_rdb_in_any_cut),
        cmocka_unit_test(test_checker_refuses_every_flipped_bit),
        cmocka_unit_test(test_checker_refuses_every_truncation),
        cmocka_unit_test(test_checker_header_fails_early),
        cmocka_unit_test(test_checker_accepts_a_zero_checksum_as_absent),
        cmocka_unit_test(test_sync_length_framing_with_keepalives),
        cmocka_unit_test(test_sync_eof_framing),
        cmocka_unit_test(test_sync_refusal_and_protocol_errors),
        cmocka_unit_test(test_sync_emit_failure_stops_the_feed),
        cmocka_unit_test(test_resp_replies),
        cmocka_unit_test(test_resp_protocol_errors),
        cmocka_unit_test(test_url_forms),
        cmocka_unit_test(test_url_errors_never_quote_it),
        cmocka_unit_test(test_backups_are_found_in_info_replication),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
