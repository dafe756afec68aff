/* The trees and exclude patterns of the configuration: parsing and
 * matching, with no I/O. */
#include <fnmatch.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "sources/files.h"

bool files_configured(const sv_config *cfg)
{
    return cfg->files.n > 0;
}

bool files_name_is_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 100 || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

void files_trees_free(struct files_tree *trees, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(trees[i].name);
        free(trees[i].path);
        for (size_t j = 0; j < trees[i].n_excludes; j++)
            free(trees[i].excludes[j]);
        free(trees[i].excludes);
    }
    free(trees);
}

static void push(char ***list, size_t *n, const char *s, size_t len)
{
    *list = xrealloc(*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = xstrndup(s, len);
}

int files_trees_parse(const sv_config *cfg, struct files_tree **out, size_t *nout, sv_error *err)
{
    char where[160];
    struct files_tree *t = xcalloc(cfg->files.n ? cfg->files.n : 1, sizeof *t);
    size_t n = 0;
    for (size_t i = 0; i < cfg->files.n; i++) {
        const char *item = cfg->files.items[i];
        const char *eq = strchr(item, '=');
        config_describe_origin(cfg, OPT_ID_files, where, sizeof where);
        char *name = eq ? xstrndup(item, (size_t)(eq - item)) : NULL;
        if (!eq || !eq[1]) {
            sv_error_set(err, SV_EXIT_CONFIG, "%s: \"%.200s\" is not NAME=/path", where, item);
            sv_error_hint(err, "e.g. SAUVE_FILES=uploads=/data/uploads,media=/data/media");
        } else if (!files_name_is_valid(name)) {
            sv_error_set(err, SV_EXIT_CONFIG,
                         "%s: tree name \"%.100s\" is not 1 to 100 letters, digits, '.', '_' or '-' (not "
                         "starting with '.')",
                         where, name);
        } else if (eq[1] != '/') {
            sv_error_set(err, SV_EXIT_CONFIG, "%s: the path of tree %s (\"%.200s\") is not absolute", where,
                         name, eq + 1);
        } else {
            for (size_t j = 0; j < n; j++)
                if (strcmp(t[j].name, name) == 0) {
                    sv_error_set(err, SV_EXIT_CONFIG, "%s: tree name %s is given twice", where, name);
                    break;
                }
        }
        if (sv_error_isset(err)) {
            free(name);
            files_trees_free(t, n);
            return -1;
        }
        t[n].name = name;
        /* "/data/uploads/" and "/data/uploads" are one tree */
        size_t plen = strlen(eq + 1);
        while (plen > 1 && eq[1 + plen - 1] == '/')
            plen--;
        t[n].path = xstrndup(eq + 1, plen);
        n++;
    }
    for (size_t i = 0; i < cfg->files_exclude.n; i++) {
        const char *p = cfg->files_exclude.items[i];
        const char *colon = strchr(p, ':');
        size_t k = n;
        if (colon)
            for (k = 0; k < n; k++)
                if (strlen(t[k].name) == (size_t)(colon - p) &&
                    memcmp(t[k].name, p, (size_t)(colon - p)) == 0)
                    break;
        const char *pat = k < n ? colon + 1 : p;
        if (!*pat || strcmp(pat, "/") == 0) {
            config_describe_origin(cfg, OPT_ID_files_exclude, where, sizeof where);
            files_trees_free(t, n);
            return sv_error_set(err, SV_EXIT_CONFIG, "%s: pattern \"%.200s\" matches nothing or everything",
                                where, p);
        }
        for (size_t j = 0; j < n; j++)
            if (k == n || k == j)
                push(&t[j].excludes, &t[j].n_excludes, pat, strlen(pat));
    }
    *out = t;
    *nout = n;
    return 0;
}

/* The C locale, for fnmatch: '?' and '[...]' match one byte, as git's
 * patterns do, whatever the process's LC_CTYPE (main.c sets C.UTF-8 for
 * libarchive, and musl's fnmatch then matches no byte of a name that is
 * not UTF-8, where glibc's falls back to bytes). */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

bool files_exclude_match(const char *pattern, const char *rel, const char *base, bool is_dir)
{
    size_t len = strlen(pattern);
    bool dir_only = len > 1 && pattern[len - 1] == '/';
    if (dir_only && !is_dir)
        return false;
    char *p = xstrndup(pattern, dir_only ? len - 1 : len);
    bool anchored = strchr(p, '/') != NULL;
    const char *q = p[0] == '/' ? p + 1 : p;
    pthread_once(&c_locale_once, make_c_locale);
    locale_t prev = c_locale ? uselocale(c_locale) : (locale_t)0;
    bool hit = anchored ? fnmatch(q, rel, FNM_PATHNAME) == 0 : fnmatch(q, base, 0) == 0;
    if (prev)
        uselocale(prev);
    free(p);
    return hit;
}

void files_exclude_parse_lines(const char *text, size_t len, char ***list, size_t *n)
{
    const char *end = text + len;
    for (const char *l = text; l < end;) {
        const char *eol = memchr(l, '\n', (size_t)(end - l));
        if (!eol)
            eol = end;
        const char *a = l, *b = eol;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
            b--;
        if (a < b && *a != '#' && !(b - a == 1 && *a == '/'))
            push(list, n, a, (size_t)(b - a));
        l = eol + 1;
    }
}
