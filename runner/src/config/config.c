#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "config/config_intern.h"

#define DEFAULT_CONFIG_FILE "/etc/sauve/config.yaml"
#define CONFIG_ENV          "SAUVE_CONFIG"
#define CONFIG_FLAG         "config"
#define ENV_PREFIX          "SAUVE_"
/* A secret file larger than this is a wrong path (a log, a device), not a
 * password or key; refusing it keeps us from reading /dev/zero forever. */
#define SECRET_FILE_MAX (1024 * 1024)
/*
 * Every secret is masked in the logs wherever it occurs. A secret of one to
 * three characters cannot be: masking "ab" would hide every "ab" of every
 * message (unreadable logs, and what is hidden shows what the secret is),
 * and not masking it prints it. Such a value is refused; one under 8 is
 * accepted with a warning, since its masks may still hit ordinary words.
 */
#define SECRET_MIN_LEN  4
#define SECRET_WARN_LEN 8

/* ENUM keeps its allowed values in the min column, a string; the other types
 * must not see it, nor INT's range land anywhere but min and max. */
#define OPT_DEF_STRING(d, lo, hi)   .def = (d)
#define OPT_DEF_SECRET(d, lo, hi)   .def = (d)
#define OPT_DEF_BOOL(d, lo, hi)     .def = (d)
#define OPT_DEF_LIST(d, lo, hi)     .def = (d)
#define OPT_DEF_INT(d, lo, hi)      .def = (d), .min = (lo), .max = (hi)
#define OPT_DEF_ENUM(d, lo, hi)     .def = (d), .allowed = (lo)
#define OPT_DEF_DURATION(d, lo, hi) .def = (d), .min = (lo), .max = (hi)

/* Not const: the derived env names and flags are filled in once, on first use. */
static struct opt_def g_options[OPT__COUNT] = {
#define OPT(f, p, e, t, d, lo, hi, h)                                                                        \
    [OPT_ID_##f] = {.id = OPT_ID_##f,                                                                        \
                    .type = OPT_TYPE_##t,                                                                    \
                    .path = (p),                                                                             \
                    .env = (e),                                                                              \
                    OPT_DEF_##t(d, lo, hi),                                                                  \
                    .help = (h)},
#include "config/options.def"
#undef OPT
};

static const size_t g_field_offset[OPT__COUNT] = {
#define OPT(f, p, e, t, d, lo, hi, h) [OPT_ID_##f] = offsetof(sv_config, f),
#include "config/options.def"
#undef OPT
};

#define NAME_LEN 96

struct opt_names {
    char env[NAME_LEN];
    char flag[NAME_LEN];     /* "--pg-host"; for secrets kept only to recognise and refuse */
    char file_env[NAME_LEN]; /* secrets: "PGPASSWORD_FILE" */
    char file_key[NAME_LEN]; /* secrets: "pg.password_file" */
};

static struct opt_names g_names[OPT__COUNT];
/* Candidates for suggestions: env names (with _FILE and SAUVE_CONFIG), YAML
 * keys, flags without dashes (with config). */
static const char *g_env_names[2 * OPT__COUNT + 1];
static size_t g_nenv_names;
static const char *g_key_names[2 * OPT__COUNT];
static size_t g_nkey_names;
static const char *g_flag_names[OPT__COUNT + 1];
static size_t g_nflag_names;
static pthread_once_t g_names_once = PTHREAD_ONCE_INIT;

static void concat_name(char *dst, const char *a, const char *b)
{
    int n = snprintf(dst, NAME_LEN, "%s%s", a, b);
    /* options.def is ours: an overlong path is a build-time mistake */
    if (n < 0 || n >= NAME_LEN)
        abort();
}

static void build_names(void)
{
    for (size_t i = 0; i < OPT__COUNT; i++) {
        struct opt_def *o = &g_options[i];
        struct opt_names *nm = &g_names[i];
        if (o->env) {
            concat_name(nm->env, o->env, "");
        } else {
            concat_name(nm->env, ENV_PREFIX, o->path);
            for (char *c = nm->env; *c; c++)
                *c = *c == '.' ? '_' : (char)toupper((unsigned char)*c);
        }
        o->env = nm->env;
        concat_name(nm->flag, "--", o->path);
        for (char *c = nm->flag + 2; *c; c++)
            if (*c == '.' || *c == '_')
                *c = '-';
        g_env_names[g_nenv_names++] = nm->env;
        g_key_names[g_nkey_names++] = o->path;
        if (o->type == OPT_TYPE_SECRET) {
            o->flag = NULL;
            concat_name(nm->file_env, nm->env, "_FILE");
            concat_name(nm->file_key, o->path, "_file");
            g_env_names[g_nenv_names++] = nm->file_env;
            g_key_names[g_nkey_names++] = nm->file_key;
        } else {
            o->flag = nm->flag;
            g_flag_names[g_nflag_names++] = nm->flag + 2;
        }
    }
    g_env_names[g_nenv_names++] = CONFIG_ENV;
    g_flag_names[g_nflag_names++] = CONFIG_FLAG;
}

static void init_names(void)
{
    pthread_once(&g_names_once, build_names);
}

const struct opt_def *config_options(size_t *count)
{
    init_names();
    if (count)
        *count = OPT__COUNT;
    return g_options;
}

const struct opt_def *config_option(enum opt_id id)
{
    init_names();
    return (size_t)id < OPT__COUNT ? &g_options[id] : NULL;
}

const struct opt_def *config_option_by_path(const char *path)
{
    init_names();
    for (size_t i = 0; i < OPT__COUNT; i++)
        if (strcmp(g_options[i].path, path) == 0)
            return &g_options[i];
    return NULL;
}

const char *config_file_key(enum opt_id id)
{
    init_names();
    return g_options[id].type == OPT_TYPE_SECRET ? g_names[id].file_key : NULL;
}

const char *config_file_env(enum opt_id id)
{
    init_names();
    return g_options[id].type == OPT_TYPE_SECRET ? g_names[id].file_env : NULL;
}

const char *const *config_key_names(size_t *count)
{
    init_names();
    *count = g_nkey_names;
    return g_key_names;
}

void strlist_push(sv_strlist *l, const char *s)
{
    l->items = xrealloc(l->items, (l->n + 1) * sizeof *l->items);
    l->items[l->n++] = xstrdup(s);
}

void strlist_free(sv_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Levenshtein distance, ignoring case: SAUVE_pg_host is still a typo of
 * SAUVE_PG_HOST. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = xmalloc((lb + 1) * sizeof *row);
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

const char *config_suggest(const char *name, const char *const *candidates, size_t n)
{
    size_t len = strlen(name);
    /* A quarter of the name, at least two edits: one transposition is two. */
    size_t limit = len / 4 > 2 ? len / 4 : 2;
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(name, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    /* Rewriting the whole of a short name is not a typo. */
    if (!best || best_d > limit || best_d >= len)
        return NULL;
    return best;
}

static void *field_ptr(sv_config *cfg, enum opt_id id)
{
    return (char *)cfg + g_field_offset[id];
}

static void clear_value(sv_config *cfg, const struct opt_def *o)
{
    void *p = field_ptr(cfg, o->id);
    switch (o->type) {
    case OPT_TYPE_STRING:
    case OPT_TYPE_ENUM:
        free(*(char **)p);
        *(char **)p = NULL;
        break;
    case OPT_TYPE_SECRET:
        free_secret(*(char **)p);
        *(char **)p = NULL;
        break;
    case OPT_TYPE_INT:
    case OPT_TYPE_DURATION: *(long *)p = 0; break;
    case OPT_TYPE_BOOL: *(bool *)p = false; break;
    case OPT_TYPE_LIST: strlist_free(p); break;
    }
    cfg->origin[o->id] = ORIGIN_UNSET;
    cfg->line[o->id] = 0;
}

static void list_push_trimmed(sv_strlist *l, const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (!len)
        return;
    l->items = xrealloc(l->items, (l->n + 1) * sizeof *l->items);
    l->items[l->n++] = xstrndup(s, len);
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "1", "on"};
    static const char *const no[] = {"false", "no", "0", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* The allowed spelling of s in "a|b|c" (ignoring case), or NULL. */
static char *match_enum(const char *allowed, const char *s)
{
    size_t len = strlen(s);
    for (const char *p = allowed; *p;) {
        size_t n = strcspn(p, "|");
        if (n == len && strncasecmp(p, s, n) == 0)
            return xstrndup(p, n);
        p += n;
        if (*p == '|')
            p++;
    }
    return NULL;
}

static const struct {
    char unit;
    long seconds;
} g_duration_units[] = {{'w', 7 * 86400L}, {'d', 86400L}, {'h', 3600L}, {'m', 60L}, {'s', 1L}};

int config_parse_duration(const char *text, long *seconds)
{
    if (strcmp(text, "0") == 0) {
        *seconds = 0;
        return 0;
    }
    long total = 0;
    const char *p = text;
    if (!*p)
        return -1;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return -1;
        long n = 0;
        while (isdigit((unsigned char)*p)) {
            /* the last digit counts too: "9223372036854775808s" must not wrap */
            if (n > (LONG_MAX - (*p - '0')) / 10)
                return -1;
            n = n * 10 + (*p++ - '0');
        }
        long unit = 0;
        for (size_t i = 0; i < sizeof g_duration_units / sizeof *g_duration_units; i++)
            if (*p == g_duration_units[i].unit)
                unit = g_duration_units[i].seconds;
        if (!unit || n > (LONG_MAX - total) / unit)
            return -1;
        total += n * unit;
        p++;
    }
    *seconds = total;
    return 0;
}

const char *config_format_duration(long seconds, char *buf, size_t len)
{
    /* Days rather than weeks, as people write retention ("14d"), and one day
     * as "24h", as people write grace periods. */
    for (size_t i = 1; i < sizeof g_duration_units / sizeof *g_duration_units; i++) {
        long u = g_duration_units[i].seconds;
        if (seconds != 0 && seconds % u == 0 && !(u == 86400L && seconds == u)) {
            snprintf(buf, len, "%ld%c", seconds / u, g_duration_units[i].unit);
            return buf;
        }
    }
    snprintf(buf, len, "%lds", seconds);
    return buf;
}

static void install(sv_config *cfg, const struct opt_def *o, enum config_origin origin, int line)
{
    cfg->origin[o->id] = origin;
    cfg->line[o->id] = origin == ORIGIN_FILE ? line : 0;
}

int config_set(sv_config *cfg, const struct opt_def *o, const char *text, enum config_origin origin, int line,
               const char *source, sv_error *err)
{
    if (!text || !*text)
        return 0;
    void *p = field_ptr(cfg, o->id);
    switch (o->type) {
    case OPT_TYPE_STRING:
        clear_value(cfg, o);
        *(char **)p = xstrdup(text);
        break;
    case OPT_TYPE_SECRET: {
        size_t len = strlen(text);
        if (len < SECRET_MIN_LEN) {
            /* The length is all an error may say of a secret. */
            sv_error_set(err, SV_EXIT_CONFIG,
                         "%s: a secret of %zu character%s is too short to be kept out of the logs", source,
                         len, len == 1 ? "" : "s");
            return sv_error_hint(err,
                                 "use a secret of at least %d characters (%d or more keep logs readable)",
                                 SECRET_MIN_LEN, SECRET_WARN_LEN);
        }
        if (len < SECRET_WARN_LEN) {
            char *msg =
                xasprintf("%s is a secret of only %zu characters: the logs mask every occurrence of it as "
                          "***, also inside unrelated words; use %d or more",
                          source, len, SECRET_WARN_LEN);
            strlist_push(&cfg->warnings, msg);
            free(msg);
        }
        log_add_secret(text);
        clear_value(cfg, o);
        *(char **)p = xstrdup(text);
        break;
    }
    case OPT_TYPE_INT: {
        /* strtol alone would accept leading blanks and trailing junk */
        char *end = NULL;
        errno = 0;
        long v = 0;
        bool digits = isdigit((unsigned char)text[0]) ||
                      ((text[0] == '-' || text[0] == '+') && isdigit((unsigned char)text[1]));
        if (digits)
            v = strtol(text, &end, 10);
        if (!digits || *end != '\0') {
            sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s' is not an integer", source, text);
            return sv_error_hint(err, "expected a whole number from %ld to %ld", o->min, o->max);
        }
        if (errno == ERANGE || v < o->min || v > o->max)
            return sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s' is out of range %ld..%ld", source, text,
                                o->min, o->max);
        clear_value(cfg, o);
        *(long *)p = v;
        break;
    }
    case OPT_TYPE_DURATION: {
        long v;
        char lo[32], hi[32];
        if (config_parse_duration(text, &v) != 0) {
            sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s' is not a duration", source, text);
            return sv_error_hint(err,
                                 "write a number and a unit (s, m, h, d, w), e.g. 14d, 36h, 2w or 1d12h");
        }
        if (v < o->min || v > o->max)
            return sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s' is out of range %s..%s", source, text,
                                config_format_duration(o->min, lo, sizeof lo),
                                config_format_duration(o->max, hi, sizeof hi));
        clear_value(cfg, o);
        *(long *)p = v;
        break;
    }
    case OPT_TYPE_BOOL: {
        bool v;
        if (!parse_bool(text, &v)) {
            sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s' is not a boolean", source, text);
            return sv_error_hint(err, "use true or false (yes/no, on/off and 1/0 are accepted too)");
        }
        clear_value(cfg, o);
        *(bool *)p = v;
        break;
    }
    case OPT_TYPE_ENUM: {
        char *v = match_enum(o->allowed, text);
        if (!v) {
            /* "a|b|c" reads as "a, b, c" in a sentence */
            char *shown = xmalloc(2 * strlen(o->allowed) + 1);
            char *d = shown;
            for (const char *c = o->allowed; *c; c++) {
                if (*c == '|') {
                    *d++ = ',';
                    *d++ = ' ';
                } else {
                    *d++ = *c;
                }
            }
            *d = '\0';
            sv_error_set(err, SV_EXIT_CONFIG, "%s: '%s' is not one of %s", source, text, shown);
            free(shown);
            return -1;
        }
        clear_value(cfg, o);
        *(char **)p = v;
        break;
    }
    case OPT_TYPE_LIST: {
        sv_strlist l = {0};
        for (const char *s = text;;) {
            size_t n = strcspn(s, ",");
            list_push_trimmed(&l, s, n);
            if (!s[n])
                break;
            s += n + 1;
        }
        if (!l.n)
            return 0;
        clear_value(cfg, o);
        *(sv_strlist *)p = l;
        break;
    }
    }
    install(cfg, o, origin, line);
    return 0;
}

int config_set_list(sv_config *cfg, const struct opt_def *o, const char *const *items, size_t n,
                    enum config_origin origin, int line)
{
    sv_strlist l = {0};
    for (size_t i = 0; i < n; i++)
        list_push_trimmed(&l, items[i], strlen(items[i]));
    if (!l.n)
        return 0;
    clear_value(cfg, o);
    *(sv_strlist *)field_ptr(cfg, o->id) = l;
    install(cfg, o, origin, line);
    return 0;
}

int config_read_secret_file(const char *path, const char *source, char **out, sv_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sv_error_set(err, SV_EXIT_CONFIG, "%s: cannot read %s: %s", source, path, strerror(errno));
        return sv_error_hint(err, "mount the secret at that path, readable by the user sauve runs as");
    }
    size_t cap = 256, len = 0;
    char *buf = xmalloc(cap);
    int rc = 0;
    for (;;) {
        if (len + 1 == cap) {
            if (cap > SECRET_FILE_MAX) {
                rc = sv_error_set(err, SV_EXIT_CONFIG, "%s: %s is larger than %d bytes, not a secret", source,
                                  path, SECRET_FILE_MAX);
                break;
            }
            /* grow by hand so that no copy of the secret is left unwiped in freed memory */
            char *bigger = xmalloc(cap * 2);
            memcpy(bigger, buf, len);
            explicit_bzero(buf, cap);
            free(buf);
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = sv_error_set(err, SV_EXIT_CONFIG, "%s: cannot read %s: %s", source, path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (rc) {
        explicit_bzero(buf, cap);
        free(buf);
        return rc;
    }
    /* editors and `echo` add a final newline that is not part of the secret */
    if (len && buf[len - 1] == '\n') {
        len--;
        if (len && buf[len - 1] == '\r')
            len--;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
}

void config_free(sv_config *cfg)
{
    for (size_t i = 0; i < OPT__COUNT; i++)
        clear_value(cfg, &g_options[i]);
    free(cfg->file);
    for (size_t i = 0; i < cfg->n_redis_instances; i++) {
        sv_redis_instance *ri = &cfg->redis_instances[i];
        free(ri->name);
        free_secret(ri->url);
        free_secret(ri->password);
        free(ri->mode);
    }
    free(cfg->redis_instances);
    for (size_t i = 0; i < cfg->n_drill_checks; i++) {
        free(cfg->drill_checks[i].name);
        free(cfg->drill_checks[i].database);
        free(cfg->drill_checks[i].sql);
    }
    free(cfg->drill_checks);
    strlist_free(&cfg->warnings);
    memset(cfg, 0, sizeof *cfg);
}

/* The value of name in env ("K=V" list), or NULL when absent or empty: an
 * empty variable is how a chart says "not set". */
static const char *env_get(const char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (; *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return (*env)[n + 1] ? *env + n + 1 : NULL;
    return NULL;
}

/* Secrets from a file: `file_source` names the setting that gave the path. */
static int set_secret_from_file(sv_config *cfg, const struct opt_def *o, const char *path,
                                enum config_origin origin, int line, const char *file_source, sv_error *err)
{
    char *secret;
    if (config_read_secret_file(path, file_source, &secret, err))
        return -1;
    int rc = config_set(cfg, o, secret, origin, line, file_source, err);
    free_secret(secret);
    return rc;
}

static int apply_env(sv_config *cfg, const char *const *env, sv_error *err)
{
    for (size_t i = 0; i < OPT__COUNT; i++) {
        const struct opt_def *o = &g_options[i];
        const char *v = env_get(env, o->env);
        if (o->type == OPT_TYPE_SECRET) {
            const char *file_env = g_names[i].file_env;
            const char *path = env_get(env, file_env);
            if (v && path) {
                sv_error_set(err, SV_EXIT_CONFIG, "%s and %s are both set; use one", o->env, file_env);
                return sv_error_hint(err, "unset %s to read the secret from %s, or unset %s", o->env, path,
                                     file_env);
            }
            if (path)
                if (set_secret_from_file(cfg, o, path, ORIGIN_ENV, 0, file_env, err))
                    return -1;
        }
        if (config_set(cfg, o, v, ORIGIN_ENV, 0, o->env, err))
            return -1;
    }
    return 0;
}

static bool is_known_env(const char *name, size_t len)
{
    for (size_t i = 0; i < g_nenv_names; i++)
        if (strlen(g_env_names[i]) == len && strncmp(g_env_names[i], name, len) == 0)
            return true;
    return false;
}

static void warn_unknown_env(sv_config *cfg, const char *const *env)
{
    for (; *env; env++) {
        const char *e = *env;
        if (strncmp(e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
            continue;
        size_t len = strcspn(e, "=");
        if (is_known_env(e, len))
            continue;
        char *name = xstrndup(e, len);
        const char *guess = config_suggest(name, g_env_names, g_nenv_names);
        char *msg = guess
                        ? xasprintf("unknown environment variable %s ignored (did you mean %s?)", name, guess)
                        : xasprintf("unknown environment variable %s ignored", name);
        strlist_push(&cfg->warnings, msg);
        free(msg);
        free(name);
    }
}

static const struct opt_def *option_by_flag(const char *name)
{
    for (size_t i = 0; i < OPT__COUNT; i++)
        if (strcmp(g_names[i].flag + 2, name) == 0)
            return &g_options[i];
    return NULL;
}

static bool is_secret_file_flag(const struct opt_def *o, const char *name)
{
    size_t n = strlen(g_names[o->id].flag + 2);
    return strncmp(g_names[o->id].flag + 2, name, n) == 0 && strcmp(name + n, "-file") == 0;
}

/* Refuses unknown and secret flags before anything is read, so that a typo
 * is reported as the usage error it is rather than as a later symptom. */
static int check_flags(const struct config_load_options *opts, const char **config_flag, sv_error *err)
{
    for (size_t i = 0; i < opts->nflags; i++) {
        const struct config_flag *f = &opts->flags[i];
        if (strcmp(f->name, CONFIG_FLAG) == 0) {
            if (!f->value || !*f->value)
                return sv_error_set(err, SV_EXIT_USAGE, "option --%s needs a value", f->name);
            *config_flag = f->value;
            continue;
        }
        const struct opt_def *o = option_by_flag(f->name);
        const struct opt_def *secret = o && o->type == OPT_TYPE_SECRET ? o : NULL;
        for (size_t j = 0; !o && j < OPT__COUNT; j++)
            if (g_options[j].type == OPT_TYPE_SECRET && is_secret_file_flag(&g_options[j], f->name))
                o = secret = &g_options[j];
        if (secret) {
            sv_error_set(err, SV_EXIT_USAGE, "option --%s is not accepted", f->name);
            return sv_error_hint(
                err,
                "secrets are not accepted on the command line (visible in the process list): "
                "use %s or %s",
                secret->env, g_names[secret->id].file_env);
        }
        if (!o) {
            const char *guess = config_suggest(f->name, g_flag_names, g_nflag_names);
            if (guess)
                return sv_error_set(err, SV_EXIT_USAGE, "unknown option --%s (did you mean --%s?)", f->name,
                                    guess);
            return sv_error_set(err, SV_EXIT_USAGE, "unknown option --%s", f->name);
        }
        if (!f->value && o->type != OPT_TYPE_BOOL)
            return sv_error_set(err, SV_EXIT_USAGE, "option --%s needs a value", f->name);
    }
    return 0;
}

static int apply_flags(sv_config *cfg, const struct config_load_options *opts, sv_error *err)
{
    for (size_t i = 0; i < opts->nflags; i++) {
        const struct config_flag *f = &opts->flags[i];
        const struct opt_def *o = option_by_flag(f->name);
        if (!o)
            continue; /* --config, already used */
        const char *value = f->value ? f->value : "true";
        if (config_set(cfg, o, value, ORIGIN_FLAG, 0, o->flag, err))
            return -1;
    }
    return 0;
}

static int apply_defaults(sv_config *cfg, sv_error *err)
{
    for (size_t i = 0; i < OPT__COUNT; i++) {
        const struct opt_def *o = &g_options[i];
        if (config_set(cfg, o, o->def, ORIGIN_DEFAULT, 0, "default", err))
            return -1;
    }
    return 0;
}

/* The config file to read, or NULL for none; an explicitly named file must exist. */
static int choose_file(const struct config_load_options *opts, const char *config_flag,
                       const char *const *env, const char **path, sv_error *err)
{
    const char *named_by = NULL;
    *path = NULL;
    if (opts->file && *opts->file) {
        *path = opts->file;
        named_by = "--config";
    } else if (config_flag) {
        *path = config_flag;
        named_by = "--config";
    } else if ((*path = env_get(env, CONFIG_ENV))) {
        named_by = CONFIG_ENV;
    }
    struct stat st;
    if (named_by) {
        if (stat(*path, &st) != 0 && errno == ENOENT) {
            sv_error_set(err, SV_EXIT_CONFIG, "config file %s does not exist (named by %s)", *path, named_by);
            return sv_error_hint(err, "mount the file at that path, or unset %s to use the environment alone",
                                 named_by);
        }
        return 0;
    }
    if (stat(DEFAULT_CONFIG_FILE, &st) == 0 || errno != ENOENT)
        *path = DEFAULT_CONFIG_FILE;
    return 0;
}

int config_load(sv_config *cfg, const struct config_load_options *opts, sv_error *err)
{
    static const struct config_load_options no_options = {0};
    extern char **environ;

    memset(cfg, 0, sizeof *cfg);
    init_names();
    if (!opts)
        opts = &no_options;
    const char *const *env = opts->env ? opts->env : (const char *const *)environ;
    static const char *const empty_env[] = {NULL};
    if (!env)
        env = empty_env;

    const char *config_flag = NULL;
    const char *path = NULL;
    if (check_flags(opts, &config_flag, err) || apply_defaults(cfg, err) ||
        choose_file(opts, config_flag, env, &path, err))
        goto fail;
    if (path) {
        cfg->file = xstrdup(path);
        if (config_read_yaml(cfg, path, err))
            goto fail;
    }
    if (apply_env(cfg, env, err))
        goto fail;
    warn_unknown_env(cfg, env);
    if (apply_flags(cfg, opts, err))
        goto fail;
    if (cfg->redis_url && *cfg->redis_url)
        for (size_t i = 0; i < cfg->n_redis_instances; i++)
            if (strcmp(cfg->redis_instances[i].name, cfg->redis_name) == 0) {
                sv_error_set(
                    err, SV_EXIT_CONFIG,
                    "redis instance name '%s' is used twice: by SAUVE_REDIS_URL (SAUVE_REDIS_NAME) and "
                    "by redis.instances in config file %s line %d",
                    cfg->redis_name, cfg->file, cfg->redis_instances[i].line);
                sv_error_hint(err,
                              "give SAUVE_REDIS_NAME another name, or list that server in redis.instances");
                goto fail;
            }
    return 0;
fail:
    config_free(cfg);
    return -1;
}

int config_require(const sv_config *cfg, enum opt_id id, sv_error *err)
{
    if (cfg->origin[id] != ORIGIN_UNSET)
        return 0;
    const struct opt_def *o = config_option(id);
    if (o->type == OPT_TYPE_SECRET)
        sv_error_set(
            err, SV_EXIT_CONFIG,
            "%s is not set: set %s or %s, or the '%s' or '%s' key of the config file (secrets are not "
            "accepted as flags)",
            o->path, o->env, g_names[id].file_env, o->path, g_names[id].file_key);
    else
        sv_error_set(err, SV_EXIT_CONFIG, "%s is not set: set %s, the '%s' key of the config file, or %s",
                     o->path, o->env, o->path, o->flag);
    return sv_error_hint(err, "%s", o->help);
}

const char *config_describe_origin(const sv_config *cfg, enum opt_id id, char *buf, size_t len)
{
    const struct opt_def *o = config_option(id);
    switch (cfg->origin[id]) {
    case ORIGIN_UNSET: snprintf(buf, len, "not set"); break;
    case ORIGIN_DEFAULT: snprintf(buf, len, "default"); break;
    case ORIGIN_FILE:
        snprintf(buf, len, "config file %s line %d", cfg->file ? cfg->file : "?", cfg->line[id]);
        break;
    case ORIGIN_ENV: snprintf(buf, len, "environment %s", o->env); break;
    case ORIGIN_FLAG: snprintf(buf, len, "flag %s", o->flag ? o->flag : g_names[id].flag); break;
    }
    return buf;
}
