/*
 * What the S3 credential chain (storage/s3/credentials.c) reads from
 * outside: the answer of STS AssumeRoleWithWebIdentity (XML), the
 * Expiration times of STS and of the container credentials endpoint, a
 * service's error message quoted in an error (withheld when it echoes the
 * token), and the form the web identity token is sent in. Those functions
 * are static, reached only through HTTP: the file is included whole, so
 * that this target runs them as they are built, without a network.
 *
 * The input is up to two strings separated by a NUL byte: a body (an STS
 * answer, a time, a message, a token) and a secret (the token).
 */
#include "storage/s3/credentials.c"

#include <ctype.h>

#include "fuzz.h"

/* "2026-11-22T02:00:00Z" with every field in range: the shape AWS writes. */
static bool canonical_time(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    if (strlen(s) != sizeof shape - 1)
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return false;
    int y = atoi(s), mo = atoi(s + 5), d = atoi(s + 8), h = atoi(s + 11), mi = atoi(s + 14),
        sec = atoi(s + 17);
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return y >= 1970 && mo >= 1 && mo <= 12 && d >= 1 && d <= days[mo - 1] - (mo == 2 && !leap) && h <= 23 &&
           mi <= 59 && sec <= 59;
}

static void check_time(const char *s)
{
    time_t t = (time_t)-12345;
    if (parse_iso8601(s, &t) != 0) {
        FUZZ_CHECK(!canonical_time(s));
        return;
    }
    /* what AWS writes reads as the very time it names */
    if (canonical_time(s)) {
        char again[32];
        struct tm tm;
        FUZZ_CHECK(gmtime_r(&t, &tm));
        strftime(again, sizeof again, "%Y-%m-%dT%H:%M:%SZ", &tm);
        FUZZ_CHECK(strcmp(again, s) == 0);
    }
}

static void check_sts(const char *data, size_t size)
{
    struct buf body = {0};
    if (size)
        buf_append(&body, data, size);
    struct sts_parse sp;
    if (sts_parse_body(&body, &sp) == 0) {
        for (int i = 0; i < STS__COUNT; i++)
            if (sp.fields[i])
                FUZZ_CHECK(strlen(sp.fields[i]) <= size);
        if (sp.fields[STS_EXPIRATION])
            check_time(sp.fields[STS_EXPIRATION]);
    }
    sts_parse_free(&sp);
    buf_free(&body);
}

static void check_quote(const char *msg, const char *secret)
{
    char small[16], big[QUOTE_MAX + 1];
    char *outs[] = {small, big};
    size_t lens[] = {sizeof small, sizeof big};
    for (size_t k = 0; k < 2; k++) {
        const char *q = quote_message(msg, secret, outs[k], lens[k]);
        FUZZ_CHECK(q == outs[k] && strlen(q) < lens[k] && strlen(q) <= QUOTE_MAX);
        for (const char *c = q; *c; c++)
            FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f); /* one line, no terminal escape */
        /* a message that quotes the token is withheld whole, not cut; any
         * other shows none of it (unless blanking a control character made
         * it: a token holds no blank) */
        if (*secret && *msg && strstr(msg, secret))
            FUZZ_CHECK(strncmp(q, "message withheld: it quotes the token", strlen(q)) == 0);
        else if (*secret && !strchr(secret, ' ') && strcmp(q, "no message") != 0)
            FUZZ_CHECK(!strstr(q, secret));
    }
}

/* The form field decoded back must be the value. */
static void check_form(const char *value)
{
    struct buf form = {0};
    form_append(&form, "WebIdentityToken", value);
    FUZZ_CHECK(form.data && strncmp(form.data, "WebIdentityToken=", 17) == 0);
    const char *p = form.data + 17;
    size_t n = 0, vlen = strlen(value);
    for (; *p; p++, n++) {
        char c;
        if (*p == '%') {
            FUZZ_CHECK(isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]));
            char hex[3] = {p[1], p[2], 0};
            c = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            /* nothing a form reader would take for a separator or a blank */
            FUZZ_CHECK(isalnum((unsigned char)*p) || strchr("-._~", *p));
            c = *p;
        }
        FUZZ_CHECK(n < vlen && c == value[n]);
    }
    FUZZ_CHECK(n == vlen);
    buf_free(&form);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the STS body is bytes with a length, as curl hands it over */
    check_sts((const char *)data, size);

    char *buf;
    const char *parts[2] = {"", ""};
    fuzz_split(data, size, &buf, parts, 2);
    check_time(parts[0]);
    check_quote(parts[0], parts[1]);
    check_form(parts[0]);
    free(buf);
    return 0;
}
