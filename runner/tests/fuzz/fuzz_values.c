/*
 * The parsers of setting values (config/config.c), which read what the
 * environment, flags and the YAML file give: durations ("14d", "1w2d":
 * config_parse_duration, and config_format_duration back), and, through
 * config_set, integers and sizes (s3.part_size in MiB, zstd.level, ports),
 * booleans, enums and lists. The first input byte chooses the option, the
 * rest is the text.
 *
 * A duration that parses is at least 0, writes back to text that parses to
 * the same seconds, and is made only of <digits><unit> groups; a value that
 * config_set accepts is within its option's range, and a refused one leaves
 * the previous value as it was.
 */
#include <ctype.h>
#include <limits.h>
#include <strings.h>

#include "fuzz.h"

#include "common/log.h"
#include "config/config_intern.h"

/* "0", or one or more <digits><unit>: what the parser promises to accept. */
static bool duration_shape(const char *s)
{
    if (strcmp(s, "0") == 0)
        return true;
    if (!*s)
        return false;
    while (*s) {
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
        if (!*s || !strchr("smhdw", *s))
            return false;
        s++;
    }
    return true;
}

static void check_duration(const char *text)
{
    long seconds = -1;
    if (config_parse_duration(text, &seconds) != 0) {
        FUZZ_CHECK(seconds == -1); /* untouched on failure */
        return;
    }
    FUZZ_CHECK(seconds >= 0);
    FUZZ_CHECK(duration_shape(text));
    char buf[32];
    const char *back = config_format_duration(seconds, buf, sizeof buf);
    long again = -1;
    FUZZ_CHECK(config_parse_duration(back, &again) == 0 && again == seconds);
}

static bool in_allowed(const char *allowed, const char *v)
{
    size_t len = strlen(v);
    for (const char *p = allowed; *p;) {
        size_t n = strcspn(p, "|");
        if (n == len && strncmp(p, v, n) == 0)
            return true;
        p += n + (p[n] == '|');
    }
    return false;
}

/* The value of option o in cfg, as a long (INT, DURATION, BOOL) or a string. */
static long long_of(const sv_config *cfg, enum opt_id id)
{
    switch (id) {
#define OPT_LONG_INT(f)      return cfg->f;
#define OPT_LONG_DURATION(f) return cfg->f;
#define OPT_LONG_BOOL(f)     return cfg->f;
#define OPT_LONG_STRING(f)
#define OPT_LONG_SECRET(f)
#define OPT_LONG_ENUM(f)
#define OPT_LONG_LIST(f)
#define OPT(field, path, env, type, def, min, max, help)                                                     \
    case OPT_ID_##field:                                                                                     \
        OPT_LONG_##type(field) break;
#include "config/options.def"
#undef OPT
    default: break;
    }
    return 0;
}

static const char *string_of(const sv_config *cfg, enum opt_id id)
{
    switch (id) {
#define OPT_STR_STRING(f)   return cfg->f;
#define OPT_STR_SECRET(f)   return cfg->f;
#define OPT_STR_ENUM(f)     return cfg->f;
#define OPT_STR_INT(f)      (void)0;
#define OPT_STR_DURATION(f) (void)0;
#define OPT_STR_BOOL(f)     (void)0;
#define OPT_STR_LIST(f)     (void)0;
#define OPT(field, path, env, type, def, min, max, help)                                                     \
    case OPT_ID_##field:                                                                                     \
        OPT_STR_##type(field) break;
#include "config/options.def"
#undef OPT
    default: break;
    }
    return NULL;
}

static const sv_strlist *list_of(const sv_config *cfg, enum opt_id id)
{
    switch (id) {
#define OPT_LIST_LIST(f)     return &cfg->f;
#define OPT_LIST_STRING(f)   (void)0;
#define OPT_LIST_SECRET(f)   (void)0;
#define OPT_LIST_ENUM(f)     (void)0;
#define OPT_LIST_INT(f)      (void)0;
#define OPT_LIST_DURATION(f) (void)0;
#define OPT_LIST_BOOL(f)     (void)0;
#define OPT(field, path, env, type, def, min, max, help)                                                     \
    case OPT_ID_##field:                                                                                     \
        OPT_LIST_##type(field) break;
#include "config/options.def"
#undef OPT
    default: break;
    }
    return NULL;
}

static void check_set(const struct opt_def *o, const char *text)
{
    sv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    sv_error err = {0};
    /* a previous value, which a refused text must leave in place */
    FUZZ_CHECK(config_set(&cfg, o, o->def, ORIGIN_DEFAULT, 0, "default", &err) == 0);
    long before = long_of(&cfg, o->id);
    char *before_s = string_of(&cfg, o->id) ? xstrdup(string_of(&cfg, o->id)) : NULL;
    enum config_origin before_origin = cfg.origin[o->id];

    if (config_set(&cfg, o, text, ORIGIN_FILE, 7, "config file f line 7 key k", &err) != 0) {
        FUZZ_CHECK(err.code == SV_EXIT_CONFIG && err.msg[0]);
        FUZZ_CHECK(cfg.origin[o->id] == before_origin && long_of(&cfg, o->id) == before);
        const char *now = string_of(&cfg, o->id);
        FUZZ_CHECK((!now && !before_s) || (now && before_s && strcmp(now, before_s) == 0));
        /* a secret is never quoted in an error */
        if (o->type == OPT_TYPE_SECRET && strlen(text) >= 4)
            FUZZ_CHECK(!strstr(err.msg, text) && !strstr(err.hint, text));
    } else if (*text) {
        long v = long_of(&cfg, o->id);
        const char *s = string_of(&cfg, o->id);
        const sv_strlist *l = list_of(&cfg, o->id);
        switch (o->type) {
        case OPT_TYPE_INT:
        case OPT_TYPE_DURATION:
            FUZZ_CHECK(cfg.origin[o->id] == ORIGIN_FILE && cfg.line[o->id] == 7);
            FUZZ_CHECK(v >= o->min && v <= o->max);
            if (o->type == OPT_TYPE_INT) {
                /* exactly the number written: no blanks, no junk after it */
                char *end;
                FUZZ_CHECK(strtol(text, &end, 10) == v && *end == '\0' && !isspace((unsigned char)*text));
            } else {
                FUZZ_CHECK(duration_shape(text));
            }
            break;
        case OPT_TYPE_BOOL: {
            static const char *const words[] = {"true", "yes", "1", "on", "false", "no", "0", "off"};
            bool known = false;
            for (size_t i = 0; i < sizeof words / sizeof *words; i++)
                if (strcasecmp(text, words[i]) == 0)
                    known = (v != 0) == (i < 4);
            FUZZ_CHECK(known);
            break;
        }
        case OPT_TYPE_ENUM: FUZZ_CHECK(s && in_allowed(o->allowed, s) && strcasecmp(s, text) == 0); break;
        case OPT_TYPE_STRING:
        case OPT_TYPE_SECRET: FUZZ_CHECK(s && strcmp(s, text) == 0); break;
        case OPT_TYPE_LIST:
            FUZZ_CHECK(l);
            for (size_t i = 0; i < l->n; i++) {
                const char *item = l->items[i];
                size_t len = strlen(item);
                FUZZ_CHECK(len && !strchr(item, ','));
                FUZZ_CHECK(!isspace((unsigned char)item[0]) && !isspace((unsigned char)item[len - 1]));
            }
            break;
        }
    }
    free(before_s);
    config_free(&cfg);
    log_clear_secrets();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t n = 0;
    const struct opt_def *opts = config_options(&n);
    const struct opt_def *o = &opts[data[0] % n];
    char *text = fuzz_cstr(data + 1, size - 1);
    check_duration(text);
    check_set(o, text);
    free(text);
    return 0;
}
