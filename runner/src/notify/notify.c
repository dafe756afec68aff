#include "notify/notify.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "common/text.h"

/* Discord refuses a "content" longer than 2000 characters; bytes bound characters. */
#define TEXT_MAX_BYTES 1990
/* Pause before the one retry. */
#define RETRY_PAUSE_MS 1000
/* A path+query shorter than this is not worth masking (it would mangle logs). */
#define PATH_SECRET_MIN 8
/* Below this much time left in the budget, a call is not even tried. */
#define BUDGET_MIN_MS 100

enum channel { CH_HEALTHCHECK, CH_WEBHOOK, CH_PUSHGATEWAY, CH__COUNT };

static const char *const channel_names[CH__COUNT] = {"healthcheck", "webhook", "pushgateway"};
static const enum opt_id channel_opts[CH__COUNT] = {OPT_ID_healthcheck_url, OPT_ID_notify_url,
                                                    OPT_ID_pushgateway_url};

struct notifier {
    char *url[CH__COUNT]; /* NULL: not configured, or invalid (already counted as failed) */
    bool always;          /* notify.on=always: the webhook on success too */
    long timeout;         /* seconds, connect and total, per call */
    double budget_s;      /* total time all calls of the run may take: 2 x timeout + 5 */
    double spent_s;       /* time the calls (and retry pauses) took so far */
    struct timespec t0;   /* CLOCK_MONOTONIC at notify_start */
    int failures;
    char failed[1024];
    bool curl_ready;
    enum notify_command command;
};

/* ---- a growable string ---------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void buf_printf(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            abort();
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
}

static char *buf_take(struct buf *b)
{
    if (!b->p)
        return xstrdup("");
    return b->p;
}

/* ---- URLs ----------------------------------------------------------------- */

char *notify_url_origin(const char *url)
{
    char *out = NULL;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    if (u && url && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && *host) {
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
            out = xasprintf("%s://%s:%s", scheme, host, port);
        else
            out = xasprintf("%s://%s", scheme, host);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out ? out : xstrdup("(invalid URL)");
}

/* An http:// or https:// URL with a host: the only kind sauve calls. */
static bool url_usable(const char *url)
{
    bool ok = false;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        ok = *host && (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/*
 * Registers url as a secret, and also its path+query and its path alone (when
 * long enough): a receiver may echo those without the scheme and host (an
 * Express 404 says "Cannot POST /hook/TOKEN"), and whole-URL masking would
 * miss them.
 */
static void add_url_secrets(const char *url)
{
    log_add_secret(url);
    const char *p = strstr(url, "://");
    if (!p)
        return;
    p += 3;
    p += strcspn(p, "/?#"); /* past the authority */
    size_t path_query = strcspn(p, "#");
    size_t path = strcspn(p, "?#");
    if (path_query >= PATH_SECRET_MIN) {
        char *s = xasprintf("%.*s", (int)path_query, p);
        log_add_secret(s);
        free_secret(s);
    }
    if (path != path_query && path >= PATH_SECRET_MIN) {
        char *s = xasprintf("%.*s", (int)path, p);
        log_add_secret(s);
        free_secret(s);
    }
}

char *notify_url_with_suffix(const char *url, const char *suffix)
{
    size_t end = strcspn(url, "?#");
    size_t path_end = end;
    while (path_end > 0 && url[path_end - 1] == '/')
        path_end--;
    if (!*suffix)
        return xstrdup(url);
    return xasprintf("%.*s/%s%s", (int)path_end, url, suffix, url + end);
}

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* One path segment "LABEL/VALUE" of a Pushgateway grouping key into b. */
static void grouping_segment(struct buf *b, const char *label, const char *value)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (!*value || strchr(value, '/')) {
        /* The only form the Pushgateway accepts for '/' (and, as "=", for ""). */
        buf_printf(b, "/%s@base64/", label);
        const unsigned char *s = (const unsigned char *)value;
        size_t n = strlen(value);
        if (n == 0)
            buf_printf(b, "=");
        for (size_t i = 0; i < n; i += 3) {
            unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                         (i + 2 < n ? (unsigned)s[i + 2] : 0);
            buf_printf(b, "%c%c%c%c", b64[v >> 18 & 63], b64[v >> 12 & 63],
                       i + 1 < n ? b64[v >> 6 & 63] : '=', i + 2 < n ? b64[v & 63] : '=');
        }
        return;
    }
    buf_printf(b, "/%s/", label);
    for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
        if (unreserved(*s))
            buf_printf(b, "%c", *s);
        else
            buf_printf(b, "%%%02X", *s);
    }
}

char *notify_pushgateway_url(const char *base, const char *job, const char *name)
{
    struct buf b = {0};
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    buf_printf(&b, "%.*s/metrics", (int)len, base);
    grouping_segment(&b, "job", job);
    grouping_segment(&b, "name", name);
    return buf_take(&b);
}

/* ---- what the run did ----------------------------------------------------- */

const char *notify_status(const struct notify_run *run)
{
    if (run->command != NOTIFY_BACKUP)
        return run->backup_ok ? "ok" : "failed";
    if (run->set_id && run->backup_ok)
        return "ok";
    return run->set_id ? "partial" : "failed";
}

/* ---- Prometheus text exposition format ------------------------------------ */

char *notify_escape_label(const char *value)
{
    struct buf b = {0};
    buf_printf(&b, "%s", "");
    for (const char *s = value; *s; s++) {
        switch (*s) {
        case '\\': buf_printf(&b, "\\\\"); break;
        case '"': buf_printf(&b, "\\\""); break;
        case '\n': buf_printf(&b, "\\n"); break;
        default: buf_printf(&b, "%c", *s);
        }
    }
    return buf_take(&b);
}

static void metric_head(struct buf *b, const char *name, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static const char *const command_names[] = {"backup", "drill", "verify"};

/* A drill's or a verify's metrics: when it last ran, whether it held. */
static char *check_metrics_text(const struct notify_run *run)
{
    const char *c = command_names[run->command];
    struct buf b = {0};
    char name[64], help[160];
    snprintf(name, sizeof name, "sauve_last_%s_timestamp_seconds", c);
    snprintf(help, sizeof help, "Unix time at which the last %s ended, whatever its outcome.", c);
    metric_head(&b, name, help);
    buf_printf(&b, "%s %.3f\n", name, run->finished);
    snprintf(name, sizeof name, "sauve_last_%s_success", c);
    snprintf(help, sizeof help, "1 when everything the last %s checked held, else 0.", c);
    metric_head(&b, name, help);
    buf_printf(&b, "%s %d\n", name, run->backup_ok ? 1 : 0);
    if (run->backup_ok && !run->some_sources) {
        snprintf(name, sizeof name, "sauve_last_%s_success_timestamp_seconds", c);
        snprintf(help, sizeof help, "Unix time at which the last %s in which everything held ended.", c);
        metric_head(&b, name, help);
        buf_printf(&b, "%s %.3f\n", name, run->finished);
    }
    snprintf(name, sizeof name, "sauve_%s_status", c);
    snprintf(help, sizeof help,
             "Exit code of the last %s: 0 ok, 4 a set does not hold, 1 failed, 75 temporary failure, 78 "
             "configuration error.",
             c);
    metric_head(&b, name, help);
    buf_printf(&b, "%s %d\n", name, run->exit_code);
    bool any = false;
    for (size_t i = 0; i < run->n_sources; i++) {
        if (run->sources[i].restore_s < 0)
            continue;
        if (!any)
            metric_head(&b, "sauve_restore_duration_seconds",
                        "Seconds the last drill took to restore each source into its scratch target: the "
                        "restore time to expect.");
        any = true;
        char *masked = log_mask(run->sources[i].source);
        char *label = notify_escape_label(masked);
        free(masked);
        buf_printf(&b, "sauve_restore_duration_seconds{source=\"%s\"} %.3f\n", label,
                   run->sources[i].restore_s);
        free(label);
    }
    return buf_take(&b);
}

char *notify_metrics_text(const struct notify_run *run)
{
    if (run->command != NOTIFY_BACKUP)
        return check_metrics_text(run);
    struct buf b = {0};
    metric_head(&b, "sauve_last_run_timestamp_seconds",
                "Unix time at which the last backup run ended, whatever its outcome.");
    buf_printf(&b, "sauve_last_run_timestamp_seconds %.3f\n", run->finished);
    if (run->backup_ok) {
        metric_head(
            &b, "sauve_last_success_timestamp_seconds",
            "Unix time at which the last backup run that stored every source and committed its set ended.");
        buf_printf(&b, "sauve_last_success_timestamp_seconds %.3f\n", run->finished);
    }
    metric_head(&b, "sauve_run_duration_seconds", "Duration of the last backup run in seconds.");
    buf_printf(&b, "sauve_run_duration_seconds %.3f\n", run->duration_s);
    metric_head(
        &b, "sauve_run_status",
        "Exit code of the last backup run: 0 ok, 1 failed, 2 partial, 3 prune or notification failed, "
        "75 temporary failure, 78 configuration error.");
    buf_printf(&b, "sauve_run_status %d\n", run->exit_code);
    if (run->set_id && run->n_sources) {
        metric_head(&b, "sauve_source_bytes",
                    "Bytes stored (compressed) for each source of the set the last run committed; 0 for a "
                    "source that failed.");
        for (size_t i = 0; i < run->n_sources; i++) {
            char *masked = log_mask(run->sources[i].source);
            char *label = notify_escape_label(masked);
            free(masked);
            buf_printf(&b, "sauve_source_bytes{source=\"%s\"} %llu\n", label,
                       (unsigned long long)(run->sources[i].ok ? run->sources[i].bytes_stored : 0));
            free(label);
        }
    }
    if (run->sets_total >= 0) {
        metric_head(&b, "sauve_sets_total",
                    "Complete backup sets of this series in storage after the last run.");
        buf_printf(&b, "sauve_sets_total %ld\n", run->sets_total);
    }
    return buf_take(&b);
}

/* ---- the webhook ---------------------------------------------------------- */

/* "backup failed: X" -> "X": the text already says what happened. */
static const char *summary_detail(const char *summary)
{
    static const char *const prefixes[] = {
        "backup ok: ",    "backup partial: ", "backup failed: ", "drill ok: ",
        "drill failed: ", "verify ok: ",      "verify failed: "};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(summary, prefixes[i], strlen(prefixes[i])) == 0)
            return summary + strlen(prefixes[i]);
    return summary;
}

/* Cuts s to at most max bytes on a UTF-8 character boundary, ending in "…". */
static void truncate_utf8(char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return;
    memcpy(s + utf8_prefix(s, len, max - 3), "\xE2\x80\xA6", 4);
}

char *notify_webhook_text(const struct notify_run *run)
{
    const char *icon, *verb;
    if (run->exit_code == 0) {
        icon = ":white_check_mark:";
        verb = "succeeded";
    } else if (run->command == NOTIFY_BACKUP && run->set_id && !run->backup_ok) {
        icon = ":warning:";
        verb = "was partial";
    } else if (run->command == NOTIFY_BACKUP && run->set_id) {
        icon = ":warning:";
        verb = "needs attention";
    } else {
        icon = ":x:";
        verb = "failed";
    }
    const char *summary = run->summary ? run->summary : "";
    struct buf b = {0};
    buf_printf(&b, "%s sauve %s of %s %s on %s (exit %d): %s", icon, command_names[run->command], run->name,
               verb, run->hostname ? run->hostname : "?", run->exit_code, summary_detail(summary));
    /* The errors the summary does not already carry (e.g. a partial set's). */
    for (size_t i = 0, shown = 0; i < run->n_sources && shown < 3; i++) {
        const struct notify_source *s = &run->sources[i];
        if (!s->ok && s->error && !strstr(summary, s->error)) {
            buf_printf(&b, "; %s: %s", s->source, s->error);
            shown++;
        }
    }
    char *raw = buf_take(&b);
    /* One line: before masking, so that joining lines cannot form a secret
     * ("pass\nword" into "pass word") after the masking has looked. */
    for (char *p = raw; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    /* Masked before it is cut, so that no piece of a secret survives the cut. */
    char *text = log_mask(raw);
    free(raw);
    truncate_utf8(text, TEXT_MAX_BYTES);
    return text;
}

/* A JSON string of s with every registered secret masked, or null; bytes
 * that are not UTF-8 become '?' so that an odd error message never loses the
 * whole notification, and the result is masked again: a '?' can complete a
 * secret that holds one (a URL's query) where the text had another byte. */
static json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    char *copy = log_mask(s);
    json_t *j = json_string(copy);
    if (j) {
        free(copy);
        return j;
    }
    for (unsigned char *p = (unsigned char *)copy; *p; p++)
        if (*p >= 0x80)
            *p = '?';
    char *masked = log_mask(copy);
    free(copy);
    j = json_string(masked);
    free(masked);
    return j ? j : json_string("");
}

char *notify_slack_escape(const char *s)
{
    struct buf b = {0};
    buf_printf(&b, "%s", "");
    for (; *s; s++) {
        switch (*s) {
        case '&': buf_printf(&b, "&amp;"); break;
        case '<': buf_printf(&b, "&lt;"); break;
        case '>': buf_printf(&b, "&gt;"); break;
        default: buf_printf(&b, "%c", *s);
        }
    }
    return buf_take(&b);
}

char *notify_webhook_json(const struct notify_run *run)
{
    char *text = notify_webhook_text(run);
    /* Slack reads <...> as links and mentions (<!channel>): escaped there;
     * Discord's "content" shows the text as it is. */
    char *slack = notify_slack_escape(text);
    json_t *o = json_object();
    json_object_set_new(o, "text", jstr(slack));
    json_object_set_new(o, "content", jstr(text));
    free(slack);
    json_object_set_new(o, "name", jstr(run->name));
    json_object_set_new(o, "set", jstr(run->set_id));
    json_object_set_new(o, "status", jstr(notify_status(run)));
    json_object_set_new(o, "exit_code", json_integer(run->exit_code));
    json_object_set_new(o, "summary", jstr(run->summary));
    json_t *failed = json_array();
    for (size_t i = 0; i < run->n_sources; i++) {
        const struct notify_source *s = &run->sources[i];
        if (s->ok)
            continue;
        json_t *f = json_object();
        json_object_set_new(f, "source", jstr(s->source));
        json_object_set_new(f, "error", jstr(s->error ? s->error : "failed"));
        json_array_append_new(failed, f);
    }
    json_object_set_new(o, "failed_sources", failed);
    json_object_set_new(o, "duration_seconds",
                        json_real((double)(long long)(run->duration_s * 1000 + 0.5) / 1000));
    json_object_set_new(o, "bytes_stored", json_integer((json_int_t)run->bytes_stored));
    json_object_set_new(o, "hostname", jstr(run->hostname));
    char *dumped = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    free(text);
    if (!dumped)
        abort(); /* only on out of memory */
    char *out = xstrdup(dumped);
    free(dumped);
    return out;
}

/* ---- HTTP ----------------------------------------------------------------- */

/* The answer's body is read and dropped: it is never quoted, since a
 * receiver may echo the request's path, and the path holds the token. */
static size_t drop_answer(char *data, size_t size, size_t nmemb, void *ctx)
{
    (void)data;
    (void)ctx;
    return size * nmemb;
}

struct call {
    enum channel ch;
    const char *what;   /* "start ping", "push": for messages */
    const char *method; /* "POST", "PUT" */
    const char *url;
    const char *content_type;
    const char *body;
};

/* One attempt of at most limit_ms. Returns 0 on a 2xx answer; else fills
 * detail and sets *retry when one more attempt may help (refused, reset, 5xx,
 * 429; not a timeout). */
static int http_once(const notifier *n, const struct call *c, long limit_ms, char *detail, size_t dlen,
                     bool *retry)
{
    *retry = false;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(detail, dlen, "cannot initialise libcurl");
        return -1;
    }
    char ctype[128];
    snprintf(ctype, sizeof ctype, "Content-Type: %s", c->content_type);
    struct curl_slist *headers = curl_slist_append(NULL, ctype);
    headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sauve/" SAUVE_VERSION);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, limit_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, limit_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, drop_answer);

    int rc = -1;
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            rc = 0;
        } else {
            /* The status only, never the answer's body, for every channel. */
            snprintf(detail, dlen, "HTTP %ld", status);
            *retry = status >= 500 || status == 429;
        }
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        if (limit_ms < n->timeout * 1000)
            snprintf(detail, dlen, "no answer within %.1f s (what was left of the notification time budget)",
                     (double)limit_ms / 1000);
        else
            snprintf(detail, dlen, "no answer within %ld s (notify.timeout)", n->timeout);
    } else {
        /* curl's generic text, never its error buffer: that could quote the URL. */
        snprintf(detail, dlen, "%s", curl_easy_strerror(cc));
        detail[0] = (char)tolower((unsigned char)detail[0]);
        *retry = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_SEND_ERROR ||
                 cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING;
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return rc;
}

static void record_failure(notifier *n, enum channel ch, const char *origin)
{
    n->failures++;
    size_t len = strlen(n->failed);
    char item[256];
    snprintf(item, sizeof item, "%s (%s)", channel_names[ch], origin);
    if (!strstr(n->failed, item))
        snprintf(n->failed + len, sizeof n->failed - len, "%s%s", len ? ", " : "", item);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* What is left of the run's notification time budget, in ms. */
static long budget_left_ms(const notifier *n)
{
    double left = (n->budget_s - n->spent_s) * 1000;
    return left > 0 ? (long)left : 0;
}

/*
 * At most two attempts, within what is left of the time budget; none more
 * after a stop request. Logs the outcome; returns 0 when delivered.
 */
static int http_call(notifier *n, const struct call *c)
{
    char *origin = notify_url_origin(c->url);
    char detail[512] = "";
    int rc = -1;
    if (budget_left_ms(n) < BUDGET_MIN_MS) {
        log_with(LOG_WARN, LOG_FIELDS(LOG_STR("channel", channel_names[c->ch]), LOG_STR("host", origin)),
                 "notification skipped: %s %s to %s: the notifications of this run already took their "
                 "time budget of %.0f s (2 x notify.timeout + 5 s)",
                 channel_names[c->ch], c->what, origin, n->budget_s);
        record_failure(n, c->ch, origin);
        free(origin);
        return -1;
    }
    for (int attempt = 1; attempt <= 2; attempt++) {
        bool retry = false;
        long limit = n->timeout * 1000;
        if (budget_left_ms(n) < limit)
            limit = budget_left_ms(n);
        double t0 = now_s();
        rc = http_once(n, c, limit, detail, sizeof detail, &retry);
        n->spent_s += now_s() - t0;
        if (rc == 0 || !retry || attempt == 2)
            break;
        if (signals_stop_requested()) {
            log_with(LOG_DEBUG, LOG_FIELDS(LOG_STR("channel", channel_names[c->ch]), LOG_STR("host", origin)),
                     "%s %s to %s: %s; not tried again: stop requested", channel_names[c->ch], c->what,
                     origin, detail);
            break;
        }
        if (budget_left_ms(n) < RETRY_PAUSE_MS + BUDGET_MIN_MS)
            break;
        log_with(LOG_DEBUG, LOG_FIELDS(LOG_STR("channel", channel_names[c->ch]), LOG_STR("host", origin)),
                 "%s %s to %s: %s; trying once more", channel_names[c->ch], c->what, origin, detail);
        struct timespec pause = {.tv_sec = RETRY_PAUSE_MS / 1000,
                                 .tv_nsec = RETRY_PAUSE_MS % 1000 * 1000000L};
        t0 = now_s();
        nanosleep(&pause, NULL);
        n->spent_s += now_s() - t0;
        if (signals_stop_requested())
            break;
    }
    if (rc == 0) {
        log_with(LOG_INFO, LOG_FIELDS(LOG_STR("channel", channel_names[c->ch]), LOG_STR("host", origin)),
                 "%s: %s sent to %s", channel_names[c->ch], c->what, origin);
    } else {
        log_with(LOG_WARN, LOG_FIELDS(LOG_STR("channel", channel_names[c->ch]), LOG_STR("host", origin)),
                 "notification failed: %s %s to %s: %s", channel_names[c->ch], c->what, origin, detail);
        record_failure(n, c->ch, origin);
    }
    free(origin);
    return rc;
}

/* ---- the run -------------------------------------------------------------- */

notifier *notify_start(const sv_config *cfg, enum notify_command command)
{
    notifier *n = xcalloc(1, sizeof *n);
    clock_gettime(CLOCK_MONOTONIC, &n->t0);
    n->always = cfg->notify_on && strcmp(cfg->notify_on, "always") == 0;
    n->timeout = cfg->notify_timeout > 0 ? cfg->notify_timeout : 10;
    /* With the defaults (10 s), 25 s: within Kubernetes' 30 s termination grace. */
    n->budget_s = 2.0 * (double)n->timeout + 5;
    n->command = command;
    /* the healthcheck is the dead man's switch of backups alone */
    const char *urls[CH__COUNT] = {command == NOTIFY_BACKUP ? cfg->healthcheck_url : NULL, cfg->notify_url,
                                   cfg->pushgateway_url};
    bool any = false;
    for (int ch = 0; ch < CH__COUNT; ch++) {
        const char *url = urls[ch];
        if (!url || !*url)
            continue;
        /* The whole URL is a secret (tokens live in paths and queries); the
         * configuration registered it already, this keeps the contract local.
         * Its path+query too: receivers echo it without the host. */
        add_url_secrets(url);
        const struct opt_def *o = config_option(channel_opts[ch]);
        if (!url_usable(url)) {
            log_with(LOG_WARN, LOG_FIELDS(LOG_STR("channel", channel_names[ch]), LOG_STR("setting", o->env)),
                     "notification failed: %s is not an http:// or https:// URL with a host; the %s is not "
                     "notified",
                     o->env, channel_names[ch]);
            record_failure(n, (enum channel)ch, o->env);
            continue;
        }
        n->url[ch] = xstrdup(url);
        any = true;
    }
    if (any)
        n->curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;

    if (n->url[CH_HEALTHCHECK]) {
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        char *url = notify_url_with_suffix(n->url[CH_HEALTHCHECK], "start");
        add_url_secrets(url);
        char *text = xasprintf("sauve backup of %s started on %s\n", cfg->name ? cfg->name : "default", host);
        char *body = log_mask(text);
        free(text);
        struct call c = {CH_HEALTHCHECK, "start ping", "POST", url, "text/plain; charset=utf-8", body};
        http_call(n, &c);
        free(body);
        free_secret(url);
    }
    return n;
}

int notify_finish(notifier *n, const struct notify_run *in, char *failed, size_t failed_len)
{
    struct notify_run run = *in;
    run.command = n->command;
    char host[256] = "";
    if (!run.hostname) {
        gethostname(host, sizeof host - 1);
        run.hostname = host;
    }
    if (run.duration_s == 0) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        run.duration_s = (double)(t1.tv_sec - n->t0.tv_sec) + (double)(t1.tv_nsec - n->t0.tv_nsec) / 1e9;
    }
    if (run.finished == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        run.finished = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    }
    const char *summary = run.summary ? run.summary : "";

    if (n->url[CH_HEALTHCHECK]) {
        /* A partial set is a failure to act on: /fail, the summary says what. */
        bool ok = run.exit_code == 0;
        char *url = notify_url_with_suffix(n->url[CH_HEALTHCHECK], ok ? "" : "fail");
        add_url_secrets(url);
        char *text = xasprintf("%s\n", summary);
        char *body = log_mask(text);
        free(text);
        struct call c = {CH_HEALTHCHECK,
                         ok ? "success ping" : "failure ping",
                         "POST",
                         url,
                         "text/plain; charset=utf-8",
                         body};
        http_call(n, &c);
        free(body);
        free_secret(url);
    }

    if (n->url[CH_WEBHOOK] && (run.exit_code != 0 || n->always)) {
        char *body = notify_webhook_json(&run);
        struct call c = {CH_WEBHOOK, "message", "POST", n->url[CH_WEBHOOK], "application/json", body};
        http_call(n, &c);
        free(body);
    }

    if (n->url[CH_PUSHGATEWAY]) {
        /* The other channels' failures are part of the status this reports. */
        if (run.exit_code == 0 && n->failures)
            run.exit_code = 3;
        static const char *const jobs[] = {"sauve", "sauve-drill", "sauve-verify"};
        char *url = notify_pushgateway_url(n->url[CH_PUSHGATEWAY], jobs[n->command], run.name);
        add_url_secrets(url);
        char *body = notify_metrics_text(&run);
        /* PUT replaces the whole group: right after a success, and it drops
         * the series of sources no longer configured. After anything else,
         * POST, which replaces only the metrics pushed, so that the group
         * keeps sauve_last_success_timestamp_seconds of the last success. */
        bool put = run.backup_ok && !run.some_sources;
        struct call c = {CH_PUSHGATEWAY,
                         put ? "metrics (PUT)" : "metrics (POST)",
                         put ? "PUT" : "POST",
                         url,
                         "text/plain; version=0.0.4; charset=utf-8",
                         body};
        http_call(n, &c);
        free(body);
        free_secret(url);
    }

    if (failed && failed_len)
        snprintf(failed, failed_len, "%s", n->failed);
    return n->failures;
}

void notify_free(notifier *n)
{
    if (!n)
        return;
    for (int ch = 0; ch < CH__COUNT; ch++)
        free_secret(n->url[ch]);
    if (n->curl_ready)
        curl_global_cleanup();
    free(n);
}
