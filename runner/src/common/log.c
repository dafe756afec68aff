#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/text.h"

/* Bytes of the termination message Kubernetes keeps, newline included. */
#define TERMINATION_MAX 4096

static enum log_format g_format = LOG_FORMAT_AUTO;
static enum log_level g_min = LOG_INFO;
static char *g_term_path;
static bool g_term_path_set;
/* Secrets are added from any thread (credential refreshes run on upload
 * workers) while others log: the list is guarded. */
static pthread_mutex_t g_secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char **g_secrets;
static size_t g_nsecrets;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(enum log_format format, enum log_level min_level)
{
    if (format == LOG_FORMAT_AUTO)
        format = isatty(STDERR_FILENO) ? LOG_FORMAT_TEXT : LOG_FORMAT_JSON;
    g_format = format;
    g_min = min_level;
}

void log_configure(const char *format, const char *level)
{
    enum log_format fmt = LOG_FORMAT_AUTO;
    if (format && strcmp(format, "json") == 0)
        fmt = LOG_FORMAT_JSON;
    else if (format && strcmp(format, "text") == 0)
        fmt = LOG_FORMAT_TEXT;
    enum log_level min = LOG_INFO;
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (level && strcmp(level, levels[i]) == 0)
            min = (enum log_level)i;
    log_init(fmt, min);
}

void log_set_termination_path(const char *path)
{
    free(g_term_path);
    g_term_path = path ? xstrdup(path) : NULL;
    g_term_path_set = true;
}

void log_add_secret(const char *value)
{
    if (!value || !*value)
        return;
    pthread_mutex_lock(&g_secrets_lock);
    bool known = false;
    for (size_t i = 0; i < g_nsecrets && !known; i++)
        known = strcmp(g_secrets[i], value) == 0;
    if (!known) {
        g_secrets = xrealloc(g_secrets, (g_nsecrets + 1) * sizeof *g_secrets);
        g_secrets[g_nsecrets++] = xstrdup(value);
    }
    pthread_mutex_unlock(&g_secrets_lock);
}

void log_clear_secrets(void)
{
    pthread_mutex_lock(&g_secrets_lock);
    for (size_t i = 0; i < g_nsecrets; i++)
        free_secret(g_secrets[i]);
    free(g_secrets);
    g_secrets = NULL;
    g_nsecrets = 0;
    pthread_mutex_unlock(&g_secrets_lock);
}

/*
 * Every byte of every occurrence of every secret is hidden, and each run of
 * hidden bytes becomes one "***": replacing one secret after the other would
 * cut short an occurrence of another that overlaps it and leave the rest of
 * that one readable ("abcd" masked first in "abcdefgh" left "efg" of a
 * secret "bcdefg"). The output is built from the input, so no intermediate
 * copy holds a secret.
 */
char *log_mask(const char *s)
{
    size_t n = strlen(s);
    bool *hidden = NULL;
    pthread_mutex_lock(&g_secrets_lock);
    for (size_t k = 0; k < g_nsecrets; k++) {
        size_t slen = strlen(g_secrets[k]);
        for (const char *p = strstr(s, g_secrets[k]); p; p = strstr(p + 1, g_secrets[k])) {
            if (!hidden)
                hidden = xcalloc(n, sizeof *hidden);
            memset(hidden + (p - s), 1, slen);
        }
    }
    pthread_mutex_unlock(&g_secrets_lock);
    if (!hidden)
        return xstrdup(s);
    /* a run of hidden bytes is at least one byte: "***" per byte at most */
    char *out = xmalloc(3 * n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (!hidden[i]) {
            out[o++] = s[i];
        } else if (i == 0 || !hidden[i - 1]) {
            memcpy(out + o, "***", 3);
            o += 3;
        }
    }
    out[o] = '\0';
    free(hidden);
    return out;
}

void log_mask_into(char *dst, size_t size, const char *src)
{
    if (size == 0)
        return;
    char *masked = log_mask(src);
    size_t n = utf8_prefix(masked, strlen(masked), size - 1);
    memcpy(dst, masked, n);
    dst[n] = '\0';
    free(masked);
}

size_t log_secret_safe_cut(const char *s, size_t len)
{
    size_t cut = len;
    pthread_mutex_lock(&g_secrets_lock);
    /* Moving the cut back can make it fall inside another occurrence: go
     * round again until no secret spans it. The cut only decreases. */
    for (bool moved = true; moved && cut > 0;) {
        moved = false;
        for (size_t i = 0; i < g_nsecrets; i++) {
            const char *secret = g_secrets[i];
            size_t slen = strlen(secret);
            /* an occurrence starting at j spans the cut when j < cut < j + slen */
            size_t first = cut >= slen ? cut - slen + 1 : 0;
            for (size_t j = first; j < cut; j++) {
                size_t known = len - j < slen ? len - j : slen;
                if (memcmp(s + j, secret, known) == 0) {
                    cut = j;
                    moved = true;
                    break;
                }
            }
        }
    }
    pthread_mutex_unlock(&g_secrets_lock);
    return cut;
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void timestamp(char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void emit(enum log_level level, const log_field *fields, size_t nfields, const char *msg)
{
    char ts[40];
    timestamp(ts, sizeof ts);
    char *masked = log_mask(msg);
    /* One buffer per record, written with one call, so that records from
     * threads and from captured child output never interleave mid-line. */
    char *buf = NULL;
    size_t buflen = 0;
    FILE *f = open_memstream(&buf, &buflen);
    if (!f)
        abort();
    if (g_format == LOG_FORMAT_JSON) {
        fprintf(f, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level_names[level]);
        json_string(f, masked);
        for (size_t i = 0; i < nfields; i++) {
            fputc(',', f);
            json_string(f, fields[i].key);
            fputc(':', f);
            if (fields[i].is_num) {
                fprintf(f, "%lld", (long long)fields[i].num);
            } else if (fields[i].str) {
                char *v = log_mask(fields[i].str);
                json_string(f, v);
                free(v);
            } else {
                fputs("null", f);
            }
        }
        fputs("}\n", f);
    } else {
        /* A terminal: one record is one line, and text from outside (a
         * child's stderr, a manifest's error) cannot send it escapes. */
        char *shown = text_escape(masked);
        fprintf(f, "%s %-5s %s", ts, level_names[level], shown);
        free(shown);
        for (size_t i = 0; i < nfields; i++) {
            if (fields[i].is_num) {
                fprintf(f, " %s=%lld", fields[i].key, (long long)fields[i].num);
            } else {
                char *v = log_mask(fields[i].str ? fields[i].str : "null");
                char *sv = text_escape(v);
                fprintf(f, " %s=%s", fields[i].key, sv);
                free(sv);
                free(v);
            }
        }
        fputc('\n', f);
    }
    fclose(f);
    ssize_t off = 0;
    while ((size_t)off < buflen) {
        ssize_t n = write(STDERR_FILENO, buf + off, buflen - (size_t)off);
        if (n <= 0)
            break;
        off += n;
    }
    free(buf);
    free(masked);
}

void log_write(enum log_level level, const log_field *fields, size_t nfields, const char *fmt, ...)
{
    if (level < g_min)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    emit(level, fields, nfields, msg);
    free(msg);
}

void log_summary(int exit_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    log_field f = LOG_NUM("exit_code", exit_code);
    emit(exit_code == 0 ? LOG_INFO : LOG_ERROR, &f, 1, msg);
    const char *path = g_term_path_set ? g_term_path : "/dev/termination-log";
    if (path) {
        FILE *t = fopen(path, "w");
        if (t) {
            /* The kubelet keeps at most 4096 bytes of it: cut here, after
             * masking, rather than let it cut text it cannot mask. */
            char masked[TERMINATION_MAX];
            log_mask_into(masked, sizeof masked - 1, msg);
            /* kubectl describe prints it to a terminal: a server's or a
             * manifest's text in it is escaped, and the summary one line */
            char *shown = text_escape(masked);
            log_mask_into(masked, sizeof masked - 1, shown);
            free(shown);
            fprintf(t, "%s\n", masked);
            fclose(t);
        }
    }
    free(msg);
}

const char *log_human_bytes(uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}
