/* sauve version: sauve's version, the PostgreSQL client tools it can run,
 * the libraries linked in, and the Debian sources the image was built from.
 * Diagnosis, not a check: it always exits 0, whatever it finds. */
#include "cli/version.h"

#include <archive.h>
#include <curl/curl.h>
#include <errno.h>
#include <expat.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include <zstd.h>

#include "cli/commands.h"
#include "common/log.h"
#include "common/mem.h"
#include "sources/postgres.h"

char *version_sources_path(const char *exe)
{
    /* drop the file name, then its directory: what is left is the prefix */
    size_t len = strlen(exe);
    for (int part = 0; part < 2; part++) {
        while (len > 0 && exe[len - 1] == '/')
            len--;
        while (len > 0 && exe[len - 1] != '/')
            len--;
    }
    while (len > 0 && exe[len - 1] == '/')
        len--;
    return xasprintf("%.*s/share/sauve/sources.json", (int)len, exe);
}

static enum version_sources bad(char **problem, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static enum version_sources bad(char **problem, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    *problem = xvasprintf(fmt, ap);
    va_end(ap);
    return VERSION_SOURCES_BAD;
}

enum version_sources version_sources_read(const char *path, json_t **sources, char **problem)
{
    *sources = NULL;
    *problem = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return VERSION_SOURCES_MISSING;
        return bad(problem, "unreadable: %s", strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return bad(problem, "unreadable: not a regular file");
    }
    json_error_t jerr;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (!root)
        return bad(problem, "malformed: line %d column %d: %s", jerr.line, jerr.column, jerr.text);

    enum version_sources rc = VERSION_SOURCES_BAD;
    json_t *format = json_object_get(root, "format");
    json_t *list = json_object_get(root, "sources");
    if (!json_is_object(root)) {
        bad(problem, "malformed: not a JSON object");
    } else if (!json_is_integer(format)) {
        bad(problem, "malformed: no integer \"format\"");
    } else if (json_integer_value(format) != 1) {
        /* a newer build's record: say so rather than misread it */
        bad(problem, "format %lld, this sauve reads format 1", (long long)json_integer_value(format));
    } else if (!json_is_array(list)) {
        bad(problem, "malformed: no \"sources\" array");
    } else {
        rc = VERSION_SOURCES_OK;
        static const char *const fields[] = {"package", "version", "suite", "built"};
        size_t i;
        json_t *entry;
        json_array_foreach(list, i, entry)
        {
            for (size_t k = 0; k < sizeof fields / sizeof *fields && rc == VERSION_SOURCES_OK; k++)
                if (!json_is_string(json_object_get(entry, fields[k])))
                    rc = bad(problem, "malformed: sources[%zu] has no string \"%s\"", i, fields[k]);
            if (rc != VERSION_SOURCES_OK)
                break;
        }
        if (rc == VERSION_SOURCES_OK)
            *sources = json_incref(list);
    }
    json_decref(root);
    return rc;
}

const char *version_libpq_text(int number, char *buf, size_t len)
{
    /* From 10 on, major * 10000 + minor; before, major.minor * 10000 + patch. */
    if (number >= 100000)
        snprintf(buf, len, "%d.%d", number / 10000, number % 10000);
    else
        snprintf(buf, len, "%d.%d.%d", number / 10000, number / 100 % 100, number % 100);
    return buf;
}

json_t *version_libraries(void)
{
    json_t *o = json_object();
#ifdef OPENSSL_VERSION_STRING
    json_object_set_new(o, "openssl", json_string(OpenSSL_version(OPENSSL_VERSION_STRING)));
#else
    json_object_set_new(o, "openssl", json_string(OpenSSL_version(OPENSSL_VERSION)));
#endif
    json_object_set_new(o, "libcurl", json_string(curl_version_info(CURLVERSION_NOW)->version));
    json_object_set_new(o, "zstd", json_string(ZSTD_versionString()));
    char pq[32];
    json_object_set_new(o, "libpq", json_string(version_libpq_text(PQlibVersion(), pq, sizeof pq)));
#if JANSSON_VERSION_HEX >= 0x020d00
    json_object_set_new(o, "jansson", json_string(jansson_version_str()));
#else
    /* before 2.13 jansson cannot say at run time: the headers' version */
    json_object_set_new(o, "jansson", json_string(JANSSON_VERSION));
#endif
    json_object_set_new(o, "libyaml", json_string(yaml_get_version_string()));
    const char *expat = XML_ExpatVersion();
    if (strncmp(expat, "expat_", 6) == 0)
        expat += 6;
    json_object_set_new(o, "expat", json_string(expat));
    /* "libarchive 3.6.2": the number alone */
    const char *la = archive_version_string();
    if (strncmp(la, "libarchive ", 11) == 0)
        la += 11;
    json_object_set_new(o, "libarchive", json_string(la));
    return o;
}

static json_t *tools_json(const sv_strlist *bindir)
{
    struct pg_tool_candidates c;
    pg_tools_scan(bindir, &c);
    json_t *a = json_array();
    for (size_t i = 0; i < c.n; i++) {
        const struct pg_tool_candidate *k = &c.items[i];
        json_t *o = json_object();
        json_object_set_new(o, "major", k->version ? json_integer(k->major) : json_null());
        json_object_set_new(o, "dir", json_string(k->dir));
        json_object_set_new(o, "pg_dump_version", k->version ? json_string(k->version) : json_null());
        if (k->error)
            json_object_set_new(o, "error", json_string(k->error));
        json_array_append_new(a, o);
    }
    pg_tool_candidates_free(&c);
    return a;
}

/* Sets "sources", "sources_file" and "sources_error" of root. */
static void add_sources(json_t *root)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0) {
        json_object_set_new(root, "sources", json_null());
        json_object_set_new(root, "sources_file", json_null());
        char *problem = xasprintf("cannot find the executable: /proc/self/exe: %s", strerror(errno));
        json_object_set_new(root, "sources_error", json_string(problem));
        free(problem);
        return;
    }
    exe[n] = '\0';
    char *path = version_sources_path(exe);
    json_t *sources;
    char *problem;
    version_sources_read(path, &sources, &problem);
    json_object_set_new(root, "sources", sources ? sources : json_null());
    json_object_set_new(root, "sources_file", json_string(path));
    json_object_set_new(root, "sources_error", problem ? json_string(problem) : json_null());
    free(problem);
    free(path);
}

static int width_of(json_t *array, const char *field)
{
    size_t i;
    json_t *e;
    int w = 0;
    json_array_foreach(array, i, e)
    {
        const char *s = json_string_value(json_object_get(e, field));
        if (s && (int)strlen(s) > w)
            w = (int)strlen(s);
    }
    return w;
}

static void print_text(json_t *root)
{
    printf("sauve %s\n", json_string_value(json_object_get(root, "version")));

    printf("PostgreSQL client tools in pg.bindir (");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(root, "pg_bindir"), i, e)
    {
        printf("%s%s", i ? "," : "", json_string_value(e));
    }
    json_t *tools = json_object_get(root, "postgresql_tools");
    if (json_array_size(tools) == 0) {
        printf("): none found\n");
    } else {
        printf("), newest first:\n");
        int dirw = width_of(tools, "dir");
        json_array_foreach(tools, i, e)
        {
            json_t *major = json_object_get(e, "major");
            const char *dir = json_string_value(json_object_get(e, "dir"));
            if (json_is_integer(major))
                printf("  %-4lld %-*s  %s\n", (long long)json_integer_value(major), dirw, dir,
                       json_string_value(json_object_get(e, "pg_dump_version")));
            else
                printf("  %-4s %-*s  pg_dump does not run: %s\n", "?", dirw, dir,
                       json_string_value(json_object_get(e, "error")));
        }
    }

    printf("libraries:\n");
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(root, "libraries"), name, v)
    {
        printf("  %-10s %s\n", name, json_string_value(v));
    }

    const char *file = json_string_value(json_object_get(root, "sources_file"));
    const char *problem = json_string_value(json_object_get(root, "sources_error"));
    json_t *sources = json_object_get(root, "sources");
    if (problem && file) {
        printf("built from Debian sources: %s %s\n", file, problem);
    } else if (problem) {
        printf("built from Debian sources: not recorded (%s)\n", problem);
    } else if (!json_is_array(sources)) {
        printf("built from Debian sources: not recorded (a developer build: no %s)\n", file);
    } else {
        printf("built from Debian sources (%s):\n", file);
        int pw = width_of(sources, "package"), vw = width_of(sources, "version"),
            sw = width_of(sources, "suite");
        json_array_foreach(sources, i, e)
        {
            printf("  %-*s  %-*s  %-*s  %s\n", pw, json_string_value(json_object_get(e, "package")), vw,
                   json_string_value(json_object_get(e, "version")), sw,
                   json_string_value(json_object_get(e, "suite")),
                   json_string_value(json_object_get(e, "built")));
        }
    }
}

/* What `sauve version` prints; cfg NULL: the default pg.bindir. */
static void print_version(const struct cli_args *args, const sv_config *cfg)
{
    sv_strlist fallback = {0};
    const sv_strlist *bindir = cfg ? &cfg->pg_bindir : &fallback;
    if (!cfg) {
        /* the built-in default, from the one table that defines it */
        char *def = xstrdup(config_option(OPT_ID_pg_bindir)->def);
        char *save = NULL;
        for (char *p = strtok_r(def, ",", &save); p; p = strtok_r(NULL, ",", &save))
            strlist_push(&fallback, p);
        free(def);
    }

    json_t *root = json_object();
    json_object_set_new(root, "version", json_string(SAUVE_VERSION));
    json_t *patterns = json_array();
    for (size_t i = 0; i < bindir->n; i++)
        json_array_append_new(patterns, json_string(bindir->items[i]));
    json_object_set_new(root, "pg_bindir", patterns);
    json_object_set_new(root, "postgresql_tools", tools_json(bindir));
    json_object_set_new(root, "libraries", version_libraries());
    add_sources(root);

    if (args->json) {
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(text);
        free(text);
    } else {
        print_text(root);
    }
    json_decref(root);
    strlist_free(&fallback);
}

/*
 * A Pod runs `sauve version` to see what the image holds, typically because
 * something is wrong, so a configuration that does not load (an invalid
 * SAUVE_* value, a broken YAML file) must not stop it: it then says so in
 * one line on stderr and searches the default pg.bindir. A malformed
 * command line (a flag version does not take, an unknown flag) is still a
 * usage error, as for every command.
 */
int cmd_version(const struct cli_args *args, struct outcome *out)
{
    sv_error err = {0};
    if (cli_check_flags(args, "version", CLI_JSON, &err) != 0) {
        outcome_fail(out, "usage error", &err);
        return -1;
    }
    sv_config cfg;
    struct config_load_options lo = {
        .file = args->config_file, .flags = args->options, .nflags = args->noptions};
    bool loaded = config_load(&cfg, &lo, &err) == 0;
    if (!loaded && err.code == SV_EXIT_USAGE) {
        outcome_fail(out, "usage error", &err);
        return -1;
    }
    if (!loaded)
        log_warn("the configuration did not load, so version searches the default pg.bindir: %s", err.msg);
    /* Unknown SAUVE_* warnings are left to the commands that use the
     * configuration: version's stderr stays one line at most. */
    print_version(args, loaded ? &cfg : NULL);
    if (loaded)
        config_free(&cfg);
    return 0;
}
