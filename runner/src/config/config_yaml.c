/*
 * The YAML config file: nested mappings name options by their dotted path
 * (pg: {host: db} is pg.host). Anything the options table does not know is an
 * error with its line, since a file is written by hand and a misspelt key
 * silently ignored is a backup that does not do what its author thinks.
 *
 * Two keys are not options but lists of mappings: redis.instances, named
 * Redis instances, each of name, url or url_file, password or
 * password_file, and mode (secrets inline or in files, as for
 * pg.password); and drill.checks, the user's checks of a restored
 * database, each of name, database and sql.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/log.h"
#include "common/mem.h"
#include "config/config_intern.h"

struct walk {
    sv_config *cfg;
    yaml_document_t *doc;
    const char *file;
    sv_error *err;
    /* Line of the key that gave each option (its _file key included), so
     * that `pg.host` and `pg: {host}` in one file count as a duplicate. */
    int seen_line[OPT__COUNT];
};

static int line_of(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A null is "not given", like an empty environment variable. */
static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = scalar(n);
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

static const char *shape(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "a single value";
    }
}

/* Any option below path, i.e. path names a group such as "pg"? */
static bool is_group(const char *path)
{
    size_t n = 0, len = strlen(path);
    const struct opt_def *opts = config_options(&n);
    for (size_t i = 0; i < n; i++)
        if (strncmp(opts[i].path, path, len) == 0 && opts[i].path[len] == '.')
            return true;
    return false;
}

static const struct opt_def *secret_by_file_key(const char *key)
{
    size_t n = 0;
    const struct opt_def *opts = config_options(&n);
    for (size_t i = 0; i < n; i++) {
        const char *file_key = config_file_key(opts[i].id);
        if (file_key && strcmp(file_key, key) == 0)
            return &opts[i];
    }
    return NULL;
}

static int set_from_node(struct walk *w, const struct opt_def *o, const yaml_node_t *value, int line,
                         const char *key)
{
    if (is_null(value))
        return 0;
    if (value->type == YAML_SCALAR_NODE) {
        char *source = xasprintf("config file %s line %d key %s", w->file, line, key);
        int rc = config_set(w->cfg, o, scalar(value), ORIGIN_FILE, line, source, w->err);
        free(source);
        return rc;
    }
    if (value->type != YAML_SEQUENCE_NODE || o->type != OPT_TYPE_LIST)
        return sv_error_set(
            w->err, SV_EXIT_CONFIG, "config file %s line %d: key '%s' must be %s, not %s", w->file, line, key,
            o->type == OPT_TYPE_LIST ? "a list or a single value" : "a single value", shape(value));
    const yaml_node_item_t *start = value->data.sequence.items.start;
    size_t n = (size_t)(value->data.sequence.items.top - start);
    const char **items = xcalloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(w->doc, start[i]);
        if (item->type != YAML_SCALAR_NODE) {
            free(items);
            return sv_error_set(w->err, SV_EXIT_CONFIG,
                                "config file %s line %d: key '%s' must be a list of single values, not of %s",
                                w->file, line_of(item), key, shape(item));
        }
        items[i] = is_null(item) ? "" : scalar(item);
    }
    int rc = config_set_list(w->cfg, o, items, n, ORIGIN_FILE, line);
    free(items);
    return rc;
}

static int set_secret_file(struct walk *w, const struct opt_def *o, const yaml_node_t *value, int line,
                           const char *key)
{
    if (is_null(value))
        return 0;
    if (value->type != YAML_SCALAR_NODE)
        return sv_error_set(w->err, SV_EXIT_CONFIG,
                            "config file %s line %d: key '%s' must be a file path, not %s", w->file, line,
                            key, shape(value));
    if (!*scalar(value))
        return 0;
    char *source = xasprintf("config file %s line %d key %s", w->file, line, key);
    char *secret;
    int rc = config_read_secret_file(scalar(value), source, &secret, w->err);
    if (rc == 0) {
        rc = config_set(w->cfg, o, secret, ORIGIN_FILE, line, source, w->err);
        free_secret(secret);
    }
    free(source);
    return rc;
}

/* Records that key (on line) sets option o; a second setting is an error. */
static int mark_seen(struct walk *w, const struct opt_def *o, int line, const char *key)
{
    int first = w->seen_line[o->id];
    w->seen_line[o->id] = line;
    if (!first)
        return 0;
    if (o->type == OPT_TYPE_SECRET)
        return sv_error_set(w->err, SV_EXIT_CONFIG,
                            "config file %s line %d: '%s' or '%s' is already set at line %d; use one",
                            w->file, line, o->path, config_file_key(o->id), first);
    return sv_error_set(w->err, SV_EXIT_CONFIG,
                        "config file %s line %d: duplicate key '%s' (first at line %d)", w->file, line, key,
                        first);
}

/*
 * Item idx of list (a key such as "redis.instances"), a mapping whose keys
 * are among keys[0..n): each value into val[] (NULL: absent, "": null).
 * Unknown, duplicate and non-scalar keys are errors with their line.
 */
static int list_item_fields(struct walk *w, const yaml_node_t *item, const char *list, size_t idx,
                            const char *what, const char *const *keys, size_t n, const char **val)
{
    if (item->type != YAML_MAPPING_NODE)
        return sv_error_set(w->err, SV_EXIT_CONFIG,
                            "config file %s line %d: %s[%zu] must be a mapping (%s), not %s", w->file,
                            line_of(item), list, idx, what, shape(item));
    for (size_t j = 0; j < n; j++)
        val[j] = NULL;
    for (const yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        size_t j = 0;
        while (j < n && (k->type != YAML_SCALAR_NODE || strcmp(scalar(k), keys[j]) != 0))
            j++;
        if (j == n) {
            const char *name = k->type == YAML_SCALAR_NODE ? scalar(k) : "?";
            const char *guess = config_suggest(name, keys, n);
            return sv_error_set(w->err, SV_EXIT_CONFIG,
                                "config file %s line %d: unknown key '%s' in %s[%zu]%s%s%s", w->file,
                                line_of(k), name, list, idx, guess ? " (did you mean '" : "",
                                guess ? guess : "", guess ? "'?)" : "");
        }
        if (val[j])
            return sv_error_set(w->err, SV_EXIT_CONFIG,
                                "config file %s line %d: duplicate key '%s' in %s[%zu]", w->file, line_of(k),
                                keys[j], list, idx);
        if (!is_null(v) && v->type != YAML_SCALAR_NODE)
            return sv_error_set(w->err, SV_EXIT_CONFIG,
                                "config file %s line %d: %s[%zu].%s must be a single value, not %s", w->file,
                                line_of(v), list, idx, keys[j], shape(v));
        val[j] = is_null(v) ? "" : scalar(v);
    }
    return 0;
}

/* The items of list, a sequence of at most max: their count into *n. */
static int list_items(struct walk *w, const yaml_node_t *seq, const char *list, int line, size_t max,
                      size_t *n)
{
    *n = 0;
    if (is_null(seq))
        return 0;
    if (seq->type != YAML_SEQUENCE_NODE)
        return sv_error_set(w->err, SV_EXIT_CONFIG,
                            "config file %s line %d: key '%s' must be a list of mappings, not %s", w->file,
                            line, list, shape(seq));
    *n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (*n > max)
        return sv_error_set(w->err, SV_EXIT_CONFIG, "config file %s line %d: %s lists %zu, at most %zu",
                            w->file, line, list, *n, max);
    return 0;
}

/* A secret given inline (key) or as a file (key_file), not both. */
static int instance_secret(struct walk *w, const char *inline_value, const char *file, int line,
                           const char *key, size_t idx, char **out)
{
    if (inline_value && file)
        return sv_error_set(w->err, SV_EXIT_CONFIG,
                            "config file %s line %d: redis.instances[%zu] sets both %s and %s_file; use one",
                            w->file, line, idx, key, key);
    if (inline_value) {
        *out = xstrdup(inline_value);
        log_add_secret(*out);
        return 0;
    }
    if (!file || !*file)
        return 0;
    char *source =
        xasprintf("config file %s line %d key redis.instances[%zu].%s_file", w->file, line, idx, key);
    int rc = config_read_secret_file(file, source, out, w->err);
    if (rc == 0 && *out && **out)
        log_add_secret(*out);
    free(source);
    return rc;
}

static int walk_instances(struct walk *w, const yaml_node_t *seq, int line)
{
    static const char *const keys[] = {"name", "url", "url_file", "password", "password_file", "mode"};
    size_t n = 0;
    if (list_items(w, seq, "redis.instances", line, SV_REDIS_INSTANCES_MAX, &n) != 0)
        return -1;
    sv_config *cfg = w->cfg;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(w->doc, seq->data.sequence.items.start[i]);
        int iline = line_of(item);
        const char *val[6];
        if (list_item_fields(w, item, "redis.instances", i, "name, url, ...", keys, 6, val) != 0)
            return -1;
        const char *name = val[0] && *val[0] ? val[0] : NULL;
        if (!name)
            return sv_error_set(w->err, SV_EXIT_CONFIG,
                                "config file %s line %d: redis.instances[%zu] has no name", w->file, iline,
                                i);
        for (size_t j = 0; j < cfg->n_redis_instances; j++)
            if (strcmp(cfg->redis_instances[j].name, name) == 0)
                return sv_error_set(
                    w->err, SV_EXIT_CONFIG,
                    "config file %s line %d: redis instance name '%s' is already used at line %d", w->file,
                    iline, name, cfg->redis_instances[j].line);
        const char *mode = val[5] && *val[5] ? val[5] : "sync";
        if (strcmp(mode, "sync") != 0 && strcmp(mode, "keys") != 0)
            return sv_error_set(
                w->err, SV_EXIT_CONFIG,
                "config file %s line %d: redis.instances[%zu].mode is '%s': it is sync or keys", w->file,
                iline, i, mode);
        sv_redis_instance ri = {.line = iline};
        if (instance_secret(w, val[1] && *val[1] ? val[1] : NULL, val[2], iline, "url", i, &ri.url) != 0 ||
            instance_secret(w, val[3] && *val[3] ? val[3] : NULL, val[4], iline, "password", i,
                            &ri.password) != 0) {
            free_secret(ri.url);
            return -1;
        }
        if (!ri.url || !*ri.url) {
            free_secret(ri.url);
            free_secret(ri.password);
            return sv_error_set(
                w->err, SV_EXIT_CONFIG,
                "config file %s line %d: redis.instances[%zu] (%s) has no url: set url or url_file", w->file,
                iline, i, name);
        }
        ri.name = xstrdup(name);
        ri.mode = xstrdup(mode);
        cfg->redis_instances = xrealloc(cfg->redis_instances, (cfg->n_redis_instances + 1) * sizeof ri);
        cfg->redis_instances[cfg->n_redis_instances++] = ri;
    }
    return 0;
}

static int walk_drill_checks(struct walk *w, const yaml_node_t *seq, int line)
{
    static const char *const keys[] = {"name", "database", "sql"};
    size_t n = 0;
    if (list_items(w, seq, "drill.checks", line, SV_DRILL_CHECKS_MAX, &n) != 0)
        return -1;
    sv_config *cfg = w->cfg;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(w->doc, seq->data.sequence.items.start[i]);
        int iline = line_of(item);
        const char *val[3];
        if (list_item_fields(w, item, "drill.checks", i, "name, database, sql", keys, 3, val) != 0)
            return -1;
        for (size_t j = 0; j < 3; j++)
            if (!val[j] || !*val[j])
                return sv_error_set(w->err, SV_EXIT_CONFIG,
                                    "config file %s line %d: drill.checks[%zu] has no %s", w->file, iline, i,
                                    keys[j]);
        for (size_t j = 0; j < cfg->n_drill_checks; j++)
            if (strcmp(cfg->drill_checks[j].name, val[0]) == 0)
                return sv_error_set(
                    w->err, SV_EXIT_CONFIG,
                    "config file %s line %d: drill check name '%s' is already used at line %d", w->file,
                    iline, val[0], cfg->drill_checks[j].line);
        sv_drill_check c = {
            .name = xstrdup(val[0]), .database = xstrdup(val[1]), .sql = xstrdup(val[2]), .line = iline};
        cfg->drill_checks = xrealloc(cfg->drill_checks, (cfg->n_drill_checks + 1) * sizeof c);
        cfg->drill_checks[cfg->n_drill_checks++] = c;
    }
    return 0;
}

static int walk_mapping(struct walk *w, const yaml_node_t *map, const char *prefix)
{
    const yaml_node_pair_t *start = map->data.mapping.pairs.start;
    const yaml_node_pair_t *top = map->data.mapping.pairs.top;
    for (const yaml_node_pair_t *pair = start; pair < top; pair++) {
        const yaml_node_t *k = yaml_document_get_node(w->doc, pair->key);
        const yaml_node_t *v = yaml_document_get_node(w->doc, pair->value);
        int line = line_of(k);
        if (k->type != YAML_SCALAR_NODE)
            return sv_error_set(w->err, SV_EXIT_CONFIG,
                                "config file %s line %d: a key must be a name, not %s", w->file, line,
                                shape(k));
        for (const yaml_node_pair_t *prev = start; prev < pair; prev++) {
            const yaml_node_t *pk = yaml_document_get_node(w->doc, prev->key);
            if (pk->type == YAML_SCALAR_NODE && strcmp(scalar(pk), scalar(k)) == 0)
                return sv_error_set(w->err, SV_EXIT_CONFIG,
                                    "config file %s line %d: duplicate key '%s%s%s' (first at line %d)",
                                    w->file, line, prefix, *prefix ? "." : "", scalar(k), line_of(pk));
        }
        char *key = *prefix ? xasprintf("%s.%s", prefix, scalar(k)) : xstrdup(scalar(k));
        const struct opt_def *o = config_option_by_path(key);
        int rc = 0;
        if (strcmp(key, "redis.instances") == 0) {
            rc = walk_instances(w, v, line);
        } else if (strcmp(key, "drill.checks") == 0) {
            rc = walk_drill_checks(w, v, line);
        } else if (o) {
            rc = mark_seen(w, o, line, key);
            if (!rc)
                rc = set_from_node(w, o, v, line, key);
        } else {
            o = secret_by_file_key(key);
            if (o) {
                rc = mark_seen(w, o, line, key);
                if (!rc)
                    rc = set_secret_file(w, o, v, line, key);
            } else if (is_group(key)) {
                if (v->type == YAML_MAPPING_NODE)
                    rc = walk_mapping(w, v, key);
                else if (!is_null(v))
                    rc = sv_error_set(
                        w->err, SV_EXIT_CONFIG,
                        "config file %s line %d: key '%s' must be a mapping of %s.* settings, not %s",
                        w->file, line, key, key, shape(v));
            } else {
                size_t n = 0;
                const char *const *names = config_key_names(&n);
                const char *guess = config_suggest(key, names, n);
                if (guess)
                    rc = sv_error_set(w->err, SV_EXIT_CONFIG,
                                      "config file %s line %d: unknown key '%s' (did you mean '%s'?)",
                                      w->file, line, key, guess);
                else
                    rc = sv_error_set(w->err, SV_EXIT_CONFIG, "config file %s line %d: unknown key '%s'",
                                      w->file, line, key);
            }
        }
        free(key);
        if (rc)
            return rc;
    }
    return 0;
}

static int syntax_error(const yaml_parser_t *p, const char *file, sv_error *err)
{
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->error == YAML_READER_ERROR)
        return sv_error_set(err, SV_EXIT_CONFIG, "config file %s byte %zu: %s", file, p->problem_offset,
                            problem);
    if (p->context)
        /* the context locates where the broken construct began, e.g. an unclosed quote */
        return sv_error_set(err, SV_EXIT_CONFIG,
                            "config file %s line %zu column %zu: %s (%s at line %zu column %zu)", file,
                            p->problem_mark.line + 1, p->problem_mark.column + 1, problem, p->context,
                            p->context_mark.line + 1, p->context_mark.column + 1);
    return sv_error_set(err, SV_EXIT_CONFIG, "config file %s line %zu column %zu: %s", file,
                        p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
}

int config_read_yaml(sv_config *cfg, const char *path, sv_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sv_error_set(err, SV_EXIT_CONFIG, "cannot read config file %s: %s", path, strerror(errno));
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        abort(); /* only fails on out of memory, and the policy there is to abort */
    yaml_parser_set_input_file(&parser, f);

    int rc = 0;
    yaml_document_t doc;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = syntax_error(&parser, path, err);
        goto out;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type != YAML_MAPPING_NODE && !is_null(root)) {
        rc = sv_error_set(err, SV_EXIT_CONFIG,
                          "config file %s line %d: the top level must be a mapping of settings, not %s", path,
                          line_of(root), shape(root));
    } else if (root && root->type == YAML_MAPPING_NODE) {
        struct walk w = {.cfg = cfg, .doc = &doc, .file = path, .err = err};
        rc = walk_mapping(&w, root, "");
    }
    yaml_document_delete(&doc);
    if (rc)
        goto out;

    /* A second document would be silently ignored by the walk above. */
    if (!yaml_parser_load(&parser, &doc)) {
        rc = syntax_error(&parser, path, err);
        goto out;
    }
    root = yaml_document_get_root_node(&doc);
    if (root)
        rc = sv_error_set(err, SV_EXIT_CONFIG,
                          "config file %s line %d: a second YAML document; only one is read", path,
                          line_of(root));
    yaml_document_delete(&doc);
out:
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}
