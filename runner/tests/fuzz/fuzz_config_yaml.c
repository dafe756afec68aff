/*
 * The YAML configuration file, through the public loading path:
 * config_load with the input as the --config file and an empty
 * environment, so that libyaml's reader, the walk of nested keys, the
 * duplicate and unknown key checks, X_file secrets and every value parser
 * run as they do for `sauve --config FILE`. The file is a memfd, never a
 * file on disk.
 *
 * A load that succeeds must leave every setting valid for its type and
 * range, with its origin recorded; one that fails must be a configuration
 * error (78) that says why, and leave nothing allocated.
 */
#include <ctype.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

#include "common/log.h"
#include "config/config.h"

static int g_fd = -1;
static char g_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_fd = memfd_create("sauve-fuzz-config", MFD_CLOEXEC);
    if (g_fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    return 0;
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

static void check_loaded(const sv_config *cfg)
{
    size_t n = 0;
    const struct opt_def *opts = config_options(&n);
    for (size_t i = 0; i < n; i++) {
        const struct opt_def *o = &opts[i];
        enum config_origin origin = cfg->origin[o->id];
        /* only defaults and this file can have set anything */
        FUZZ_CHECK(origin == ORIGIN_UNSET || origin == ORIGIN_DEFAULT || origin == ORIGIN_FILE);
        FUZZ_CHECK((origin == ORIGIN_FILE) == (cfg->line[o->id] >= 1));
        char where[512];
        FUZZ_CHECK(config_describe_origin(cfg, o->id, where, sizeof where) == where && *where);
    }
}

/* Each value, by its declared type. */
#define CHECK_STRING(f, o) FUZZ_CHECK(cfg->origin[o] == ORIGIN_UNSET || (cfg->f && *cfg->f));
#define CHECK_SECRET(f, o) CHECK_STRING(f, o)
#define CHECK_ENUM(f, o)                                                                                     \
    FUZZ_CHECK(cfg->origin[o] == ORIGIN_UNSET || (cfg->f && in_allowed(config_option(o)->allowed, cfg->f)));
#define CHECK_INT(f, o)                                                                                      \
    FUZZ_CHECK(cfg->origin[o] == ORIGIN_UNSET ||                                                             \
               (cfg->f >= config_option(o)->min && cfg->f <= config_option(o)->max));
#define CHECK_DURATION(f, o)                                                                                 \
    do {                                                                                                     \
        CHECK_INT(f, o)                                                                                      \
        if (cfg->origin[o] != ORIGIN_UNSET) {                                                                \
            char text[32];                                                                                   \
            long back = -1;                                                                                  \
            config_format_duration(cfg->f, text, sizeof text);                                               \
            FUZZ_CHECK(config_parse_duration(text, &back) == 0 && back == cfg->f);                           \
        }                                                                                                    \
    } while (0);
#define CHECK_BOOL(f, o) FUZZ_CHECK(cfg->origin[o] != ORIGIN_UNSET || !cfg->f);
#define CHECK_LIST(f, o)                                                                                     \
    for (size_t i = 0; i < cfg->f.n; i++) {                                                                  \
        const char *item = cfg->f.items[i];                                                                  \
        size_t len = strlen(item);                                                                           \
        /* items are trimmed and never empty */                                                              \
        FUZZ_CHECK(len && !isspace((unsigned char)item[0]) && !isspace((unsigned char)item[len - 1]));       \
    }                                                                                                        \
    FUZZ_CHECK((cfg->origin[o] == ORIGIN_UNSET) == (cfg->f.n == 0));

static void check_values(const sv_config *cfg)
{
#define OPT(field, path, env, type, def, min, max, help) CHECK_##type(field, OPT_ID_##field)
#include "config/options.def"
#undef OPT
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(g_fd, 0) != 0 || pwrite(g_fd, data, size, 0) != (ssize_t)size)
        abort();
    static const char *const no_env[] = {NULL};
    struct config_load_options opts = {.env = no_env, .file = g_path};
    sv_config cfg;
    sv_error err = {0};
    if (config_load(&cfg, &opts, &err) == 0) {
        FUZZ_CHECK(cfg.file && strcmp(cfg.file, g_path) == 0);
        check_loaded(&cfg);
        check_values(&cfg);
        config_free(&cfg);
    } else {
        FUZZ_CHECK(err.code == SV_EXIT_CONFIG && err.msg[0]);
        /* config_load frees and zeroes what it had read */
        FUZZ_CHECK(!cfg.file && !cfg.storage && !cfg.pg_databases.items);
    }
    /* secrets read from the file are registered for masking: not across inputs */
    log_clear_secrets();
    return 0;
}
