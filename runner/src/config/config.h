/*
 * Configuration: every setting of options.def, resolved with the precedence
 * command-line flag > environment > YAML file > built-in default.
 *
 * The YAML file is the --config flag, else SAUVE_CONFIG, else
 * /etc/sauve/config.yaml when it exists. Errors exit 78 (SV_EXIT_CONFIG) and
 * name the setting as the user wrote it (env name, flag, or file:line);
 * unknown flags are usage errors (64). Unknown SAUVE_* variables are
 * warnings, not errors, because Kubernetes itself injects SAUVE_SERVICE_HOST
 * and the like for a Service named sauve; unknown YAML keys are errors,
 * because a misspelt key in a file the user wrote must not be ignored.
 */
#ifndef SAUVE_CONFIG_CONFIG_H
#define SAUVE_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

typedef struct sv_strlist {
    char **items;
    size_t n;
} sv_strlist;

/* DURATION: a length of time written with units ("14d", "36h", "1w2d"), held
 * as whole seconds in a long; its range (min..max) is in seconds. */
enum opt_type {
    OPT_TYPE_STRING,
    OPT_TYPE_SECRET,
    OPT_TYPE_INT,
    OPT_TYPE_BOOL,
    OPT_TYPE_LIST,
    OPT_TYPE_ENUM,
    OPT_TYPE_DURATION
};

enum opt_id {
#define OPT(field, path, env, type, def, min, max, help) OPT_ID_##field,
#include "config/options.def"
#undef OPT
    OPT__COUNT
};

enum config_origin { ORIGIN_UNSET, ORIGIN_DEFAULT, ORIGIN_FILE, ORIGIN_ENV, ORIGIN_FLAG };

#define OPT_FIELD_STRING(f)   char *f;
#define OPT_FIELD_SECRET(f)   char *f;
#define OPT_FIELD_ENUM(f)     char *f;
#define OPT_FIELD_INT(f)      long f;
#define OPT_FIELD_BOOL(f)     bool f;
#define OPT_FIELD_LIST(f)     sv_strlist f;
#define OPT_FIELD_DURATION(f) long f;

/* One of several named Redis instances (YAML redis.instances); the shared
 * redis.* settings (TLS files, timeout) apply to each. */
typedef struct sv_redis_instance {
    char *name;
    char *url;      /* secret: may hold a password */
    char *password; /* secret, or NULL */
    char *mode;     /* "sync" or "keys" */
    int line;       /* in the config file */
} sv_redis_instance;

/* How many instances redis.instances may list. */
#define SV_REDIS_INSTANCES_MAX 16

/* One of the user's own checks of a restored database (YAML drill.checks):
 * a query run by `sauve drill` in the scratch copy of database, which must
 * return one row whose first column is true. */
typedef struct sv_drill_check {
    char *name;
    char *database;
    char *sql;
    int line; /* in the config file */
} sv_drill_check;

/* How many checks drill.checks may list. */
#define SV_DRILL_CHECKS_MAX 64

typedef struct sv_config {
#define OPT(field, path, env, type, def, min, max, help) OPT_FIELD_##type(field)
#include "config/options.def"
#undef OPT
    /* Where each value came from, indexed by enum opt_id. */
    enum config_origin origin[OPT__COUNT];
    /* For ORIGIN_FILE: line in the config file; for ORIGIN_ENV: unused. */
    int line[OPT__COUNT];
    /* Config file actually read, or NULL. */
    char *file;
    /* YAML redis.instances, in file order (besides SAUVE_REDIS_URL's). */
    sv_redis_instance *redis_instances;
    size_t n_redis_instances;
    /* YAML drill.checks, in file order. */
    sv_drill_check *drill_checks;
    size_t n_drill_checks;
    /* Human-readable warnings (unknown SAUVE_* variables with suggestions);
     * the caller logs them once logging is set up. */
    sv_strlist warnings;
} sv_config;

/* Static description of one option, for `check`, help and docs. */
struct opt_def {
    enum opt_id id;
    enum opt_type type;
    const char *path;    /* "pg.databases" */
    const char *env;     /* "SAUVE_PG_DATABASES" or "PGHOST" */
    const char *flag;    /* "--pg-databases"; NULL for secrets */
    const char *def;     /* default as text, or NULL */
    const char *allowed; /* ENUM: "a|b|c"; NULL otherwise */
    long min, max;       /* INT range */
    const char *help;
};

/* Table of all options, in options.def order. */
const struct opt_def *config_options(size_t *count);
const struct opt_def *config_option(enum opt_id id);

/* One --name=value from the command line, name without the leading dashes. */
struct config_flag {
    const char *name;
    const char *value;
};

struct config_load_options {
    const char *const *env; /* NULL-terminated "K=V" list; NULL means the process environment */
    const char *file;       /* --config value, or NULL */
    const struct config_flag *flags;
    size_t nflags;
};

/*
 * Resolves every option into cfg (which it zeroes first). Reads X_FILE
 * secrets, validates types and ranges. Does not check that required settings
 * (storage) are present: commands do that with config_require().
 * On failure sets err (78 for config, 64 for an unknown or secret flag) and
 * leaves cfg freed.
 */
int config_load(sv_config *cfg, const struct config_load_options *opts, sv_error *err);
void config_free(sv_config *cfg);

/* Fails with 78 "SETTING is not set" (naming env var, YAML key and flag) when
 * option id has no value. */
int config_require(const sv_config *cfg, enum opt_id id, sv_error *err);

/* "environment SAUVE_ZSTD_LEVEL", "config file /etc/sauve/config.yaml line 4",
 * "flag --zstd-level", "default": where option id got its value. Into buf. */
const char *config_describe_origin(const sv_config *cfg, enum opt_id id, char *buf, size_t len);

/* The known name closest to `name` among candidates (edit distance), or NULL
 * when none is close enough to be a plausible typo. */
const char *config_suggest(const char *name, const char *const *candidates, size_t n);

/*
 * Durations as settings write them: one or more "<number><unit>" with unit
 * s, m, h, d or w ("14d", "36h", "1w2d"); "0" alone is zero. Parse returns 0,
 * or -1 for anything else (a bare number other than 0 included: "14" could
 * mean days or seconds). Format writes the largest exact unit ("14d", "36h",
 * "90m") into buf.
 */
int config_parse_duration(const char *text, long *seconds);
const char *config_format_duration(long seconds, char *buf, size_t len);

void strlist_push(sv_strlist *l, const char *s);
void strlist_free(sv_strlist *l);

#endif
