/*
 * What the config module's files share and nothing outside it uses: the
 * setter that parses and validates a value whatever its origin, and the YAML
 * reader that feeds it.
 */
#ifndef SAUVE_CONFIG_CONFIG_INTERN_H
#define SAUVE_CONFIG_CONFIG_INTERN_H

#include "config/config.h"

/* The option whose YAML path is `path`, or NULL. */
const struct opt_def *config_option_by_path(const char *path);

/* For a secret: its YAML key naming a secret file ("pg.password_file") and its
 * environment variable naming one ("PGPASSWORD_FILE"); NULL for other types. */
const char *config_file_key(enum opt_id id);
const char *config_file_env(enum opt_id id);

/* Every YAML path that may appear as a key (options and secrets' _file keys),
 * for suggestions. */
const char *const *config_key_names(size_t *count);

/*
 * Parses text as option o and, when valid, replaces its current value and
 * records origin and line. `source` names where the text came from in error
 * messages ("SAUVE_ZSTD_LEVEL", "--zstd-level", "config file F line L key
 * zstd.level"). Empty or NULL text (and a list without items) is "not given"
 * and leaves the option as it was. Secret values are registered with
 * log_add_secret() and never quoted in errors. Returns 0, or -1 with err set
 * (78) leaving the previous value in place.
 */
int config_set(sv_config *cfg, const struct opt_def *o, const char *text, enum config_origin origin, int line,
               const char *source, sv_error *err);

/* Like config_set for a LIST option given as separate items (a YAML sequence):
 * items are trimmed and empty ones dropped, but not split at commas. */
int config_set_list(sv_config *cfg, const struct opt_def *o, const char *const *items, size_t n,
                    enum config_origin origin, int line);

/*
 * Reads a secret from the file at path into *out (newly allocated; free with
 * free_secret), stripping one trailing "\n" or "\r\n". `source` names the
 * setting that named the file. Returns 0, or -1 with err set (78).
 */
int config_read_secret_file(const char *path, const char *source, char **out, sv_error *err);

/* Reads the YAML file at path into cfg with origin ORIGIN_FILE. Returns 0, or
 * -1 with err set (78) naming the file and line. */
int config_read_yaml(sv_config *cfg, const char *path, sv_error *err);

#endif
