/*
 * What notify does with the URLs a user configures and the texts it sends
 * (notify/notify.c, and the masking of common/log.c): the URL's origin for
 * logs, the healthcheck suffix, the Pushgateway grouping path, the secrets a
 * URL registers (notify_start: the URL, its path+query, its path), and the
 * webhook and metrics bodies built from a run's summary and errors. Nothing
 * is sent: notify_start calls out only for a healthcheck URL, never set here.
 *
 * The input is up to four strings separated by NUL bytes: a URL, a text (the
 * run's summary and a source's error), a series name, and a list of extra
 * secrets separated by newlines.
 *
 * Checked: an origin is scheme://host[:port] and nothing of the user, path
 * or query; suffixes go before the query; the grouping path decodes back to
 * the name; a secret present in a text never reaches a body; log_mask hides
 * every byte of every occurrence of a secret, whatever the order secrets were
 * registered in and however their occurrences overlap.
 */
#include <ctype.h>

#include <jansson.h>

#include "fuzz.h"

#include "common/log.h"
#include "config/config.h"
#include "notify/notify.h"

#include <curl/curl.h>

#define SECRETS_MAX 8

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* notify_start logs a warning for each unusable URL: not 10,000 a second */
    log_init(LOG_FORMAT_TEXT, LOG_ERROR);
    /* kept initialised, so that notify_start's init and notify_free's
     * cleanup do not load and unload OpenSSL for every input */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

static void check_origin(const char *url)
{
    char *o = notify_url_origin(url);
    if (strcmp(o, "(invalid URL)") != 0) {
        const char *rest = strstr(o, "://");
        FUZZ_CHECK(rest && rest != o);
        rest += 3;
        FUZZ_CHECK(*rest);
        /* no user or password, path, query or fragment: the URL is a secret */
        FUZZ_CHECK(!strpbrk(rest, "/?#@"));
        /* nothing that would break the log line it goes into */
        for (const char *c = o; *c; c++)
            FUZZ_CHECK((unsigned char)*c >= 0x20);
    }
    free(o);
}

static void check_suffix(const char *url)
{
    char *same = notify_url_with_suffix(url, "");
    FUZZ_CHECK(strcmp(same, url) == 0);
    free(same);
    char *s = notify_url_with_suffix(url, "start");
    const char *query = url + strcspn(url, "?#");
    size_t qlen = strlen(query), slen = strlen(s);
    /* URL/start?query: the query and fragment stay last, as they were */
    FUZZ_CHECK(slen >= qlen + 6 && strcmp(s + slen - qlen, query) == 0);
    FUZZ_CHECK(strncmp(s + slen - qlen - 6, "/start", 6) == 0);
    free(s);
}

static int b64_value(char c)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* The name back from the last path segment(s) of a grouping URL. */
static char *decode_segment(const char *label_and_value)
{
    char *out = xmalloc(strlen(label_and_value) + 1);
    size_t o = 0;
    if (strncmp(label_and_value, "name@base64/", 12) == 0) {
        const char *s = label_and_value + 12;
        if (strcmp(s, "=") == 0) {
            out[0] = '\0';
            return out;
        }
        size_t n = strlen(s);
        FUZZ_CHECK(n % 4 == 0);
        for (size_t i = 0; i < n; i += 4) {
            int v[4];
            for (int k = 0; k < 4; k++)
                v[k] = s[i + k] == '=' ? 0 : b64_value(s[i + k]);
            FUZZ_CHECK(v[0] >= 0 && v[1] >= 0 && v[2] >= 0 && v[3] >= 0);
            unsigned bits =
                (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
            out[o++] = (char)(bits >> 16);
            if (s[i + 2] != '=')
                out[o++] = (char)(bits >> 8 & 0xFF);
            if (s[i + 3] != '=')
                out[o++] = (char)(bits & 0xFF);
        }
    } else {
        FUZZ_CHECK(strncmp(label_and_value, "name/", 5) == 0);
        for (const char *s = label_and_value + 5; *s; s++) {
            if (*s == '%') {
                FUZZ_CHECK(isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2]));
                char hex[3] = {s[1], s[2], 0};
                out[o++] = (char)strtol(hex, NULL, 16);
                s += 2;
            } else {
                FUZZ_CHECK(isalnum((unsigned char)*s) || strchr("-._~", *s));
                out[o++] = *s;
            }
        }
    }
    out[o] = '\0';
    return out;
}

static void check_pushgateway(const char *base, const char *name)
{
    char *u = notify_pushgateway_url(base, "sauve", name);
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    FUZZ_CHECK(strncmp(u, base, blen) == 0);
    FUZZ_CHECK(strncmp(u + blen, "/metrics/job/sauve/", 19) == 0);
    char *back = decode_segment(u + blen + 19);
    /* a name with a NUL cannot come from the configuration: compare as text */
    FUZZ_CHECK(strcmp(back, name) == 0);
    free(back);
    free(u);
}

/*
 * The masking log_mask must do, written the plain way: mark every byte of
 * every occurrence of every secret, then write one "***" for each run of
 * marked bytes (occurrences that overlap or touch make one run).
 */
static char *reference_mask(const char *text, const char *const *secrets, size_t n)
{
    size_t len = strlen(text);
    bool *marked = xcalloc(len + 1, sizeof *marked);
    for (size_t k = 0; k < n; k++)
        for (const char *hit = strstr(text, secrets[k]); hit; hit = strstr(hit + 1, secrets[k]))
            memset(marked + (hit - text), 1, strlen(secrets[k]));
    char *out = xmalloc(3 * len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (!marked[i])
            out[o++] = text[i];
        else if (i == 0 || !marked[i - 1])
            o += (size_t)snprintf(out + o, 4, "***");
    }
    out[o] = '\0';
    free(marked);
    return out;
}

static void check_mask(const char *text, char *secret_list)
{
    const char *secrets[SECRETS_MAX];
    size_t n = 0;
    for (char *s = strtok(secret_list, "\n"); s && n < SECRETS_MAX; s = strtok(NULL, "\n")) {
        /* a secret with '*' could match the mask itself; under 4 bytes, log_add_secret ignores it */
        for (char *c = s; *c; c++)
            if (*c == '*')
                *c = '+';
        if (strlen(s) >= 4)
            secrets[n++] = s;
    }
    log_clear_secrets();
    for (size_t i = 0; i < n; i++)
        log_add_secret(secrets[i]);
    char *got = log_mask(text);
    char *want = reference_mask(text, secrets, n);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "fuzz: log_mask(\"%s\") = \"%s\", want \"%s\"\n", text, got, want);
        abort();
    }
    free(want);
    free(got);
    log_clear_secrets();
}

/*
 * No registered secret shows in out. Secrets under 4 bytes are not
 * registered; one holding '*' can be completed by a mask ("***"); one
 * holding a character of `made` can be formed by an escaping that runs after
 * the masking (a label's \" or \\): those are not looked for.
 */
static void check_no_secret(const char *out, const char *const *secrets, size_t n, const char *made)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(secrets[i]) < 4 || strchr(secrets[i], '*') || strpbrk(secrets[i], made))
            continue;
        if (strstr(out, secrets[i])) {
            fprintf(stderr, "fuzz: secret \"%s\" sent in \"%s\"\n", secrets[i], out);
            abort();
        }
    }
}

static void check_bodies(const char *url, const char *text, const char *name)
{
    sv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.notify_url = (char *)url;
    cfg.pushgateway_url = (char *)url;
    cfg.notify_on = (char *)"always";
    cfg.notify_timeout = 1;
    cfg.name = (char *)name;
    notifier *nt = notify_start(&cfg, NOTIFY_BACKUP);

    /* what notify_start registered (notify.h): the URL, its path+query and path when 8 bytes or more */
    const char *secrets[3] = {url, "", ""};
    char *pq = NULL, *path = NULL;
    const char *p = strstr(url, "://");
    if (p) {
        p += 3;
        p += strcspn(p, "/?#");
        size_t pql = strcspn(p, "#"), pl = strcspn(p, "?#");
        if (pql >= 8)
            secrets[1] = pq = xstrndup(p, pql);
        if (pl >= 8)
            secrets[2] = path = xstrndup(p, pl);
    }

    struct notify_source src[2] = {
        {.source = "postgres:app", .ok = false, .error = text},
        {.source = "postgres:globals", .ok = true, .bytes_stored = 42},
    };
    struct notify_run run = {.name = name,
                             .set_id = "20261122T020000Z",
                             .exit_code = 2,
                             .summary = text,
                             .sources = src,
                             .n_sources = 2,
                             .bytes_stored = 42,
                             .sets_total = 3,
                             .duration_s = 12.5,
                             .finished = 1795312812.25,
                             .hostname = "sauve-29110-x7k2p"};

    char *t = notify_webhook_text(&run);
    /* Discord's limit, and a cut that never splits a character */
    FUZZ_CHECK(strlen(t) <= 1990);
    FUZZ_CHECK(!strpbrk(t, "\r\n"));
    /* (a secret that is not UTF-8 itself may start inside a character, and
     * its mask then leaves half a character: only valid secrets count) */
    if (fuzz_utf8_valid(text) && fuzz_utf8_valid(name) && fuzz_utf8_valid(url))
        FUZZ_CHECK(fuzz_utf8_valid(t));
    check_no_secret(t, secrets, 3, "");
    free(t);

    char *json = notify_webhook_json(&run);
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    FUZZ_CHECK(json_is_object(root));
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (json_is_string(v))
            check_no_secret(json_string_value(v), secrets, 3, "");
    }
    json_t *failed = json_object_get(root, "failed_sources");
    FUZZ_CHECK(json_is_array(failed) && json_array_size(failed) == 1);
    check_no_secret(json_string_value(json_object_get(json_array_get(failed, 0), "error")), secrets, 3, "");
    json_decref(root);
    free(json);

    src[0].source = text; /* a label value, in the metrics */
    char *metrics = notify_metrics_text(&run);
    for (char *line = metrics; *line;) {
        size_t n = strcspn(line, "\n");
        FUZZ_CHECK(line[n] == '\n'); /* every line ends, so a label cannot open a new one */
        FUZZ_CHECK(strncmp(line, "# ", 2) == 0 || strncmp(line, "sauve_", 6) == 0);
        /* the label values are what came from outside (the rest is fixed text) */
        static const char label[] = "sauve_source_bytes{source=\"";
        if (strncmp(line, label, sizeof label - 1) == 0) {
            char *value = line + sizeof label - 1, *end = line + n;
            while (end > value && *end != '"')
                end--;
            FUZZ_CHECK(end > value || *value == '"');
            char saved = *end;
            *end = '\0';
            check_no_secret(value, secrets, 3, "\\\"\n");
            *end = saved;
        }
        line += n + 1;
    }
    free(metrics);

    notify_free(nt);
    free(pq);
    free(path);
    log_clear_secrets();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf;
    const char *parts[4] = {"", "", "default", ""};
    fuzz_split(data, size, &buf, parts, 4);
    const char *url = parts[0], *text = parts[1], *name = parts[2];

    check_origin(url);
    check_suffix(url);
    check_pushgateway(url, name);
    check_bodies(url, text, name);
    char *secret_list = xstrdup(parts[3]);
    check_mask(text, secret_list);
    free(secret_list);
    free(buf);
    return 0;
}
