/*
 * How a Redis backup is restored: the loader of kind "redis"
 * (sources/loader.h). The artifact is an RDB; it goes one of two ways.
 *
 * --to-file PATH writes it as the RDB file of a server that is stopped (the
 * restore Job mounts its volume). It is written into a new temporary file
 * beside PATH, checked as it streams (magic, version, end, CRC-64), and
 * only once restore/ verified the whole artifact is it synced and renamed
 * over PATH; any failure removes the temporary file and leaves PATH as it
 * was (a run killed before it could remove it leaves it: the next restore
 * into PATH removes it). An existing PATH is replaced only with --clean, and
 * without a safety backup (a stopped server cannot be dumped: copy the file
 * first if it matters). The new file gets the replaced one's mode and, when
 * the restore runs as root, its owner; as another user it cannot, and a
 * warning names the Job's runAsUser/fsGroup, which must let the server read.
 *
 * --online replays it into a running server: the RDB walker
 * (redis_rdb.c) cuts each value out of the stream into a DUMP payload,
 * sent as RESTORE key ttl payload REPLACE ABSTTL, pipelined. A target that
 * holds keys is refused without --clean; with it, restore/ takes a safety
 * backup of the target first, then start flushes it (FLUSHALL). Keys whose
 * expiry has passed are not sent (the server would drop them on load too).
 *
 * A keys-mode artifact (format redis-keys, SAUVE_REDIS_MODE=keys) holds
 * DUMP payloads already: --online replays them the same way, through the
 * same pipelined RESTORE as the values cut out of an RDB. --to-file
 * refuses it: it is not an RDB, and no server writes one from it offline.
 *
 * An online restore cannot hold the target back until the artifact is
 * verified as pg_restore's transaction does: Redis has no transaction a
 * client can hold open over a dataset (MULTI queues the whole dataset in
 * the server's memory, twice the size), and buffering the artifact here
 * would take its size in memory or disk. So keys land while the artifact
 * streams, and a failure (a truncated or tampered artifact, a refused
 * RESTORE, a lost connection) is undone by flushing the target again: the
 * target, empty before (or flushed after the safety backup with --clean),
 * is left empty, never half-loaded, and the error says so. Writes that
 * other clients make to the target while it is restored are lost with it:
 * stop them first.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "sources/loader.h"
#include "sources/redis.h"

/* The largest DUMP payload sent: Redis refuses a bulk argument longer than
 * proto-max-bulk-len, 512 MB by default; a value that large is held whole
 * in memory (about 1.5 times, while it arrives). */
#define RESTORE_MAX_PAYLOAD (512u << 20)
/* Pipelining: commands sent before their replies are read, and bytes. */
#define WINDOW_COMMANDS 256
#define WINDOW_BYTES    (8u << 20)
/* Commands are gathered into writes of about this size. */
#define SEND_CHUNK (64u * 1024)

/* What a restore user must be allowed (README: Redis restore). */
#define REDIS_RESTORE_ACL "~* +restore +select +info +flushall +function|list +function|flush +function|load"

static const char *const redis_forms[] = {"redis:NAME", NULL};

struct redis_restore {
    const sv_config *cfg;
    char *name;
    bool clean, online;
    const manifest_artifact *a;

    /* --to-file */
    char *path, *tmp;
    int fd;
    bool existed;
    struct stat old;
    redis_rdb_check check;
    bool file_failed;
    char file_error[256];

    /* --online */
    char *url;      /* the target's URL (SAUVE_REDIS_URL's may hold a password) */
    char *password; /* the named instance's, else NULL: SAUVE_REDIS_PASSWORD's */
    struct redis_url u;
    redis_conn *c;
    struct redis_conn_options copt; /* how c was opened, for a fresh connection */
    bool cut;                       /* a write failed: a command may have been partly written */
    bool flush_first;
    bool keys_format;     /* a keys-mode stream, not an RDB */
    bool flush_functions; /* the target holds function libraries (FLUSHALL keeps them) */
    redis_rdb_walker w;
    redis_keys_reader kr;
    uint64_t db; /* the database selected on the connection */
    bool sent;   /* anything was sent that changes the target */
    char *out;   /* commands not yet written */
    size_t out_len, out_cap;
    size_t inflight;         /* commands sent whose replies were not read */
    uint64_t inflight_bytes; /* their size */
    struct sent_command {
        char what[96];  /* for errors */
        uint64_t bytes; /* its size, for the byte window */
        bool key;       /* a RESTORE: its +OK confirms a key */
    } ring[WINDOW_COMMANDS + 8];
    size_t ring_head;
    uint64_t keys, confirmed, expired, functions, selects;
    int64_t now_ms;
    double next_progress;
    bool failed;
    sv_error err; /* the first failure of the online sink */
};

/* ---- common ----------------------------------------------------------------- */

static int redis_check(const char *name, const struct loader_options *o, sv_error *err)
{
    if (o->no_owner)
        return sv_error_set(err, SV_EXIT_USAGE, "--no-owner does not apply to redis:%s", name);
    if (o->to)
        return sv_error_set(err, SV_EXIT_USAGE,
                            "--to does not apply to redis:%s (it names a directory): "
                            "--to-file PATH writes an RDB file",
                            name);
    if (!o->to_file == !o->online) {
        sv_error_set(err, SV_EXIT_USAGE, "redis:%s needs %s", name,
                     o->online ? "either --to-file or --online, not both" : "--to-file PATH or --online");
        return sv_error_hint(err, "--to-file PATH writes the RDB file of a stopped server; --online replays "
                                  "the backup into a running one");
    }
    if (o->to_file && !*o->to_file)
        return sv_error_set(err, SV_EXIT_USAGE, "--to-file needs a path");
    if (o->to_file && o->into)
        return sv_error_set(err, SV_EXIT_USAGE, "--into goes with --online; --to-file names the file itself");
    if (o->into) {
        struct redis_url u;
        if (redis_url_parse(o->into, &u, err) != 0) {
            err->code = SV_EXIT_USAGE;
            return sv_error_wrap(err, "--into");
        }
        bool has_password = u.password != NULL;
        redis_url_free(&u);
        /* the parser accepts and ignores a /db: here it would be a silent lie */
        const char *auth = strstr(o->into, "://");
        auth = auth ? auth + 3 : o->into;
        const char *at = strrchr(auth, '@');
        const char *slash = strchr(at ? at + 1 : auth, '/');
        if (slash && slash[1]) {
            sv_error_set(err, SV_EXIT_USAGE, "--into: a database (%.20s) does not apply to --online", slash);
            return sv_error_hint(err, "every key goes back into the database it was backed up from; name "
                                      "the server only (redis://host:port)");
        }
        if (has_password) {
            sv_error_set(err, SV_EXIT_USAGE,
                         "--into: a password in the URL would be visible to every process (argv)");
            return sv_error_hint(err, "give it in SAUVE_REDIS_PASSWORD or SAUVE_REDIS_PASSWORD_FILE");
        }
    }
    return 0;
}

extern const struct loader_ops redis_loader;

/* "127.0.0.1:6379": a target without its password. */
static char *target_text(const char *url)
{
    struct redis_url u;
    sv_error ignored = {0};
    if (!url || redis_url_parse(url, &u, &ignored) != 0)
        return xstrdup("SAUVE_REDIS_URL");
    bool v6 = strchr(u.host, ':') != NULL;
    char *t = xasprintf("%s%s%s:%d", v6 ? "[" : "", u.host, v6 ? "]" : "", u.port);
    redis_url_free(&u);
    return t;
}

static loader *redis_open(const sv_config *cfg, const char *name, const struct loader_options *o)
{
    struct redis_restore *r = xcalloc(1, sizeof *r);
    r->cfg = cfg;
    r->name = xstrdup(name);
    r->clean = o->clean;
    r->online = o->online;
    r->fd = -1;
    loader *l = xcalloc(1, sizeof *l);
    l->ops = &redis_loader;
    l->impl = r;
    if (o->to_file) {
        r->path = xstrdup(o->to_file);
        l->target = xstrdup(r->path);
        l->what = xasprintf("file %s", r->path);
    } else {
        /* without --into, the configured instance of that name: one of
         * redis.instances, else SAUVE_REDIS_URL's */
        const sv_redis_instance *ri = o->into ? NULL : redis_instance_named(cfg, name);
        const char *url = o->into ? o->into : ri ? ri->url : cfg->redis_url;
        r->url = url ? xstrdup(url) : NULL;
        r->password = ri && ri->password ? xstrdup(ri->password) : NULL;
        l->target = target_text(url);
        l->what = xasprintf("redis at %s", l->target);
    }
    l->changes = xstrdup(l->what);
    return l;
}

static int check_format(struct redis_restore *r, const manifest_artifact *a, sv_error *err)
{
    r->keys_format = strcmp(a->format, REDIS_KEYS_FORMAT) == 0;
    if (r->keys_format && !r->online) {
        sv_error_set(err, SV_EXIT_FAILED,
                     "%s:%s was taken in keys mode (format %s): it is a stream of DUMP payloads, not an RDB "
                     "file, so --to-file cannot write it; nothing was changed",
                     a->kind, a->name, a->format);
        return sv_error_hint(err, "restore it into a running server with --online");
    }
    if (!r->keys_format && strcmp(a->format, "redis-rdb") != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "%s:%s is in format %s, which this sauve cannot restore",
                            a->kind, a->name, a->format);
    return 0;
}

/* ---- --to-file ---------------------------------------------------------------- */

static int file_inspect(loader *l, sv_error *err)
{
    struct redis_restore *r = l->impl;
    if (lstat(r->path, &r->old) == 0) {
        if (!S_ISREG(r->old.st_mode))
            return sv_error_set(err, SV_EXIT_FAILED, "--to-file %s exists and is not a regular file",
                                r->path);
        if (!r->clean) {
            sv_error_set(err, SV_EXIT_FAILED, "file %s exists, nothing was changed", r->path);
            return sv_error_hint(err, "stop the Redis that uses it, then pass --clean to replace it (copy it "
                                      "first if it matters: a stopped server's file gets no safety backup)");
        }
        r->existed = true;
    } else if (errno != ENOENT) {
        return sv_error_set(err, SV_EXIT_FAILED, "--to-file %s: %s", r->path, strerror(errno));
    }
    char *copy = xstrdup(r->path);
    char *dir = dirname(copy);
    struct stat st;
    int rc = 0;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        rc = sv_error_set(err, SV_EXIT_FAILED, "--to-file %s: directory %s does not exist", r->path, dir);
    else if (access(dir, W_OK) != 0)
        rc = sv_error_set(err, SV_EXIT_FAILED, "--to-file %s: directory %s is not writable: %s", r->path, dir,
                          strerror(errno));
    /* the new file is written beside the old one before it replaces it */
    int dfd = rc == 0 ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        rc = loader_check_space(dfd, r->path, r->a->bytes_in, 1, err);
        close(dfd);
    }
    free(copy);
    return rc;
}

static int file_write(void *ctx, const void *buf, size_t len, sv_error *err)
{
    struct redis_restore *r = ctx;
    if (redis_rdb_check_update(&r->check, buf, len) != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "not an RDB: %s", r->check.error);
    const char *p = buf;
    while (len) {
        ssize_t n = write(r->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r->file_failed = true;
            snprintf(r->file_error, sizeof r->file_error, "cannot write %s: %s", r->tmp, strerror(errno));
            return sv_error_set(err, SV_EXIT_FAILED, "%s", r->file_error);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void file_discard(struct redis_restore *r);

/* True when name is ".BASE.sauve-PID-TIME", a temporary file of ours. */
static bool our_temp_name(const char *name, const char *base)
{
    size_t n = strlen(base);
    if (name[0] != '.' || strncmp(name + 1, base, n) != 0 || strncmp(name + 1 + n, ".sauve-", 7) != 0)
        return false;
    const char *p = name + 1 + n + 7;
    for (int part = 0; part < 2; part++) {
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
        if (part == 0 && *p++ != '-')
            return false;
    }
    return *p == '\0';
}

/* Removes the temporary files that a run killed before it could clean up
 * (SIGKILL, a node lost) left beside PATH: only regular files named as
 * ours, in that directory. */
static void remove_stale_temps(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!our_temp_name(e->d_name, base))
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (unlink(path) == 0)
                log_info("removed %s, left by an earlier restore that did not finish", path);
            else
                log_warn("cannot remove %s, left by an earlier restore: %s", path, strerror(errno));
        }
        free(path);
    }
    closedir(d);
}

static int file_start(loader *l, stream **sink, sv_error *err)
{
    struct redis_restore *r = l->impl;
    char *copy = xstrdup(r->path);
    char *base = xstrdup(basename(copy));
    free(copy);
    copy = xstrdup(r->path);
    char *dir = dirname(copy);
    remove_stale_temps(dir, base);
    r->tmp = xasprintf("%s/.%s.sauve-%d-%ld", dir, base, (int)getpid(), (long)time(NULL));
    free(copy);
    free(base);
    /* the mode of the file it replaces, else what redis-server gives a new
     * one (0666 less the umask, 0644 usually) */
    mode_t mode = r->existed ? (r->old.st_mode & 0777) : 0644;
    r->fd = open(r->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (r->fd < 0)
        return sv_error_set(err, SV_EXIT_FAILED, "cannot create %s: %s", r->tmp, strerror(errno));
    if (r->existed) {
        if (fchmod(r->fd, mode) != 0) {
            sv_error_set(err, SV_EXIT_FAILED, "cannot give %s the mode of %s: %s", r->tmp, r->path,
                         strerror(errno));
            file_discard(r);
            return -1;
        }
        /* keep the server's ownership; only root may give a file away, so
         * as another user the new file is ours, and the server (another
         * uid) may not be able to read it: say so rather than fail, since
         * a group or mode may still let it read */
        if (fchown(r->fd, r->old.st_uid, r->old.st_gid) != 0) {
            if (errno == EPERM && r->old.st_uid != geteuid())
                log_warn("%s is owned by uid %u, and this restore (uid %u) cannot give the new file that "
                         "owner: the server may not be able to read it; run the restore Job with the "
                         "server's runAsUser, or a shared fsGroup with a group-readable mode",
                         r->path, (unsigned)r->old.st_uid, (unsigned)geteuid());
            else if (errno != EPERM)
                log_warn("cannot give %s the owner of %s: %s", r->tmp, r->path, strerror(errno));
        }
    }
    redis_rdb_check_init(&r->check);
    *sink = callback_sink(file_write, r, "rdb file");
    return 0;
}

static void file_discard(struct redis_restore *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    if (r->tmp && unlink(r->tmp) != 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", r->tmp, strerror(errno));
}

static int fsync_dir_of(const char *path, sv_error *err)
{
    char *copy = xstrdup(path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (dfd < 0 || fsync(dfd) != 0)
        rc = sv_error_set(err, SV_EXIT_FAILED, "cannot sync directory %s: %s", copy, strerror(errno));
    if (dfd >= 0)
        close(dfd);
    free(copy);
    return rc;
}

static int file_finish(loader *l, bool ok, sv_error *err)
{
    struct redis_restore *r = l->impl;
    if (!ok) {
        if (r->file_failed)
            sv_error_set(err, SV_EXIT_FAILED, "%s, %s was not changed", r->file_error, r->path);
        file_discard(r);
        return -1;
    }
    if (redis_rdb_check_finish(&r->check) != 0) {
        sv_error_set(err, SV_EXIT_FAILED, "%s:%s is not a whole RDB (%s), %s was not changed", r->a->kind,
                     r->a->name, r->check.error, r->path);
        file_discard(r);
        return -1;
    }
    if (fsync(r->fd) != 0) {
        sv_error_set(err, SV_EXIT_FAILED, "cannot sync %s: %s, %s was not changed", r->tmp, strerror(errno),
                     r->path);
        file_discard(r);
        return -1;
    }
    int fd = r->fd;
    r->fd = -1;
    if (close(fd) != 0) {
        sv_error_set(err, SV_EXIT_FAILED, "cannot close %s: %s, %s was not changed", r->tmp, strerror(errno),
                     r->path);
        file_discard(r);
        return -1;
    }
    if (rename(r->tmp, r->path) != 0) {
        sv_error_set(err, SV_EXIT_FAILED, "cannot rename %s to %s: %s", r->tmp, r->path, strerror(errno));
        file_discard(r);
        return -1;
    }
    free(r->tmp);
    r->tmp = NULL;
    if (fsync_dir_of(r->path, err) != 0)
        return -1;
    char size[32];
    log_with(LOG_INFO,
             LOG_FIELDS(LOG_STR("file", r->path), LOG_NUM("rdb_version", r->check.version),
                        LOG_NUM("rdb_bytes", (int64_t)r->check.bytes)),
             "wrote %s: RDB version %d, %s, checksum %s; start Redis with appendonly no to load it", r->path,
             r->check.version, log_human_bytes(r->check.bytes, size, sizeof size),
             r->check.unchecksummed ? "absent" : "ok");
    return 0;
}

/* ---- --online --------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The value of "name:" in an INFO reply, newly allocated, or NULL. */
static char *info_field(const char *info, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ':')
            return xstrndup(p + n + 1, strcspn(p + n + 1, "\r\n"));
    return NULL;
}

static int command_error(struct redis_restore *r, const char *what, const char *reply, sv_error *err)
{
    sv_error_set(err, SV_EXIT_FAILED, "redis at %s refused %s: %.200s", redis_conn_endpoint(r->c), what,
                 reply);
    if (strncmp(reply, "NOPERM", 6) == 0)
        sv_error_hint(err, "allow it in the restore user's ACL, e.g. ACL SETUSER <user> %s",
                      REDIS_RESTORE_ACL);
    else if (strncmp(reply, "NOAUTH", 6) == 0)
        sv_error_hint(err, "set SAUVE_REDIS_PASSWORD (or SAUVE_REDIS_PASSWORD_FILE)");
    return -1;
}

/* INFO section as text; -1 with err when refused or the connection failed. */
static int info(struct redis_restore *r, const char *section, char **out, sv_error *err)
{
    const char *argv[] = {"INFO", section};
    redis_reply rep;
    *out = NULL;
    if (redis_command(r->c, &rep, err, 2, argv) != 0)
        return -1;
    int rc = 0;
    if (rep.type == REDIS_REPLY_BULK)
        *out = xstrdup(rep.str);
    else
        rc = command_error(r, "INFO", rep.str ? rep.str : "an unexpected reply", err);
    redis_reply_free(&rep);
    return rc;
}

/*
 * Refuses, with SV_EXIT_TEMPFAIL and nothing changed, while a sauve backup
 * reads this server (a replica that announced REDIS_BACKUP_REPLICA): the
 * RDB it is being sent is the server as it was when the fork happened, but
 * a set committed in the middle of a restore would be taken for a good
 * copy of what the server holds afterwards. A keys-mode backup is no
 * replica and is not seen. Checked once: the backup CronJob's suspend
 * keeps the next one from starting.
 */
static int refuse_while_backed_up(struct redis_restore *r, const char *target, sv_error *err)
{
    char *replication = NULL;
    if (info(r, "replication", &replication, err) != 0)
        return sv_error_wrap(err, "cannot tell whether a sauve backup is running, nothing was changed");
    char state[64];
    int n = redis_info_backups(replication, state, sizeof state);
    free(replication);
    if (n == 0)
        return 0;
    char more[64] = "";
    if (n > 1)
        snprintf(more, sizeof more, "; %d other sauve backups", n - 1);
    sv_error_set(
        err, SV_EXIT_TEMPFAIL,
        "a sauve backup of redis at %s is running (a replica named %s, state %s%s): nothing was changed",
        target, REDIS_BACKUP_REPLICA, *state ? state : "unknown", more);
    return sv_error_hint(err, "%s", LOADER_HINT_BACKUP_RUNNING);
}

static int online_inspect(loader *l, bool *replaces, sv_error *err)
{
    struct redis_restore *r = l->impl;
    const sv_config *cfg = r->cfg;
    if (!r->url) {
        sv_error_set(err, SV_EXIT_CONFIG, "--online needs a target server");
        return sv_error_hint(err, "set SAUVE_REDIS_URL to it, or pass --into redis://[user@]host:port");
    }
    if (redis_url_parse(r->url, &r->u, err) != 0)
        return -1;
    r->copt = (struct redis_conn_options){.url = &r->u,
                                          .password = r->password ? r->password : cfg->redis_password,
                                          .ca_file = cfg->redis_tls_ca_file,
                                          .cert_file = cfg->redis_tls_cert_file,
                                          .key_file = cfg->redis_tls_key_file,
                                          .timeout_s = (int)cfg->redis_timeout};
    if (!(r->c = redis_connect(&r->copt, err)))
        return -1;
    if (refuse_while_backed_up(r, l->target, err) != 0)
        return -1;
    char *server = NULL, *keyspace = NULL;
    if (info(r, "server", &server, err) != 0 || info(r, "keyspace", &keyspace, err) != 0) {
        free(server);
        return -1;
    }
    char *version = info_field(server, "redis_version");
    char *valkey = info_field(server, "valkey_version");
    /* Valkey reports a fixed redis_version for clients' sake: its own
     * RDB versions do not follow Redis's, so they are not guessed */
    int reads = valkey ? 0 : redis_rdb_version_of(version);
    free(valkey);
    int rc = 0;
    if (!r->keys_format && r->a->format_version > 0 && reads > 0 && r->a->format_version > reads) {
        sv_error_set(
            err, SV_EXIT_FAILED,
            "redis at %s is version %s, which reads RDB versions up to %d; %s:%s is RDB version %lld "
            "(from Redis %s), nothing was changed",
            l->target, version, reads, r->a->kind, r->a->name, (long long)r->a->format_version,
            r->a->server_version ? r->a->server_version : "of an unrecorded version");
        sv_error_hint(err, "restore into a server at least as new as the one backed up");
        rc = -1;
    }
    uint64_t keys = 0;
    for (const char *p = keyspace; rc == 0 && p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *k = strncmp(p, "db", 2) == 0 ? strstr(p, ":keys=") : NULL;
        const char *eol = strchr(p, '\n');
        if (k && (!eol || k < eol))
            keys += strtoull(k + 6, NULL, 10);
    }
    /* function libraries are content too, and FLUSHALL does not remove them */
    long long libraries = 0;
    if (rc == 0) {
        const char *argv[] = {"FUNCTION", "LIST"};
        redis_reply rep;
        if (redis_command(r->c, &rep, err, 2, argv) != 0)
            rc = -1;
        else if (rep.type == REDIS_REPLY_ARRAY)
            libraries = rep.integer;
        else if (rep.type != REDIS_REPLY_ERROR || !rep.str ||
                 strncmp(rep.str, "ERR unknown command", 19) != 0)
            rc = command_error(r, "FUNCTION LIST", rep.str ? rep.str : "an unexpected reply", err);
        /* else a server older than 7.0: no functions */
        redis_reply_free(&rep);
    }
    if (rc == 0 && (keys > 0 || libraries > 0) && !r->clean) {
        char libs[64] = "";
        if (libraries > 0)
            snprintf(libs, sizeof libs, " and %lld function librar%s", libraries,
                     libraries == 1 ? "y" : "ies");
        sv_error_set(err, SV_EXIT_FAILED, "redis at %s holds %llu key(s)%s, nothing was changed", l->target,
                     (unsigned long long)keys, libs);
        sv_error_hint(err, "use --clean to replace them (a safety backup is taken first)");
        rc = -1;
    }
    if (rc == 0) {
        *replaces = keys > 0 || libraries > 0;
        r->flush_first = keys > 0;
        r->flush_functions = libraries > 0;
        log_with(LOG_INFO,
                 LOG_FIELDS(LOG_STR("target", l->target), LOG_STR("server_version", version ? version : ""),
                            LOG_NUM("keys", (int64_t)keys)),
                 "redis at %s: version %s (reads RDB up to %d), %llu key(s)", l->target,
                 version ? version : "unknown", reads, (unsigned long long)keys);
    }
    free(version);
    free(server);
    free(keyspace);
    return rc;
}

static source *redis_safety_source(loader *l)
{
    struct redis_restore *r = l->impl;
    /* a target restored from keys mode is likely a server that refuses
     * replication: its safety backup is taken the same way */
    const sv_redis_instance *ri = redis_instance_named(r->cfg, r->name);
    const char *mode = ri && strcmp(ri->url, r->url) == 0 ? ri->mode : r->keys_format ? "keys" : "sync";
    return redis_source_at(r->cfg, r->url, r->name, r->password, mode);
}

/* Appends raw bytes to the commands to send. */
static void out_add(struct redis_restore *r, const void *p, size_t n)
{
    if (!n)
        return;
    if (r->out_cap - r->out_len < n) {
        size_t cap = r->out_cap ? r->out_cap : SEND_CHUNK * 2;
        while (cap - r->out_len < n)
            cap *= 2;
        r->out = xrealloc(r->out, cap);
        r->out_cap = cap;
    }
    memcpy(r->out + r->out_len, p, n);
    r->out_len += n;
}

static void out_bulk_header(struct redis_restore *r, size_t len)
{
    char h[32];
    out_add(r, h, (size_t)snprintf(h, sizeof h, "$%zu\r\n", len));
}

static void out_arg(struct redis_restore *r, const void *p, size_t n)
{
    out_bulk_header(r, n);
    out_add(r, p, n);
    out_add(r, "\r\n", 2);
}

static int out_flush(struct redis_restore *r, sv_error *err)
{
    if (!r->out_len)
        return 0;
    int rc = redis_write(r->c, r->out, r->out_len, err);
    r->out_len = 0;
    if (rc != 0)
        r->cut = true;
    return rc;
}

/* Reads one reply; an error reply fails, naming the command it answers. */
static int read_one(struct redis_restore *r, sv_error *err)
{
    const struct sent_command *cmd =
        &r->ring[(r->ring_head + WINDOW_COMMANDS + 8 - r->inflight) % (WINDOW_COMMANDS + 8)];
    const char *what = cmd->what;
    redis_reply rep;
    if (out_flush(r, err) != 0 || redis_read_reply(r->c, &rep, what, err) != 0)
        return -1;
    r->inflight--;
    r->inflight_bytes -= cmd->bytes;
    if (cmd->key && rep.type != REDIS_REPLY_ERROR)
        r->confirmed++;
    int rc = 0;
    if (rep.type == REDIS_REPLY_ERROR) {
        rc = command_error(r, what, rep.str, err);
        if (strstr(rep.str, "payload version"))
            sv_error_hint(err, "the server is older than the RDB (version %d): restore into a newer one",
                          r->keys_format ? r->kr.max_rdb_version : r->w.version);
    }
    redis_reply_free(&rep);
    return rc;
}

/* Records a command sent (its description for errors), and reads replies
 * when the window is full. */
static int sent(struct redis_restore *r, size_t bytes, bool key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int sent(struct redis_restore *r, size_t bytes, bool key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->ring[r->ring_head].what, sizeof r->ring[0].what, fmt, ap);
    va_end(ap);
    r->ring[r->ring_head].bytes = bytes;
    r->ring[r->ring_head].key = key;
    r->ring_head = (r->ring_head + 1) % (WINDOW_COMMANDS + 8);
    r->inflight++;
    r->inflight_bytes += bytes;
    r->sent = true;
    sv_error err = {0};
    if (r->out_len >= SEND_CHUNK && out_flush(r, &err) != 0)
        goto fail;
    if (r->inflight >= WINDOW_COMMANDS || r->inflight_bytes >= WINDOW_BYTES) {
        while (r->inflight > WINDOW_COMMANDS / 2 || (r->inflight && r->inflight_bytes >= WINDOW_BYTES / 2))
            if (read_one(r, &err) != 0)
                goto fail;
    }
    return 0;
fail:
    r->err = err;
    r->failed = true;
    return -1;
}

/* The key as printable text for messages: up to 60 bytes, others escaped. */
static void printable(const unsigned char *key, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        if (i == 60) {
            o += (size_t)snprintf(out + o, cap - o, "...");
            break;
        }
        if (key[i] >= 0x20 && key[i] < 0x7f && key[i] != '\\')
            out[o++] = (char)key[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", key[i]);
    }
    out[o] = '\0';
}

/* One RESTORE: what an RDB's key and a keys-mode record share. The payload
 * comes in up to three pieces (a value cut out of an RDB is sent from the
 * walker's buffer between its type byte and its trailer, not copied). */
struct restore_cmd {
    uint64_t db;
    const unsigned char *key;
    size_t key_len;
    bool has_expire;
    int64_t expire_ms; /* with has_expire: absolute, in ms (negative: long expired) */
    const unsigned char *head, *body, *tail;
    size_t head_len, body_len, tail_len;
    int freq;     /* -1: none */
    int64_t idle; /* -1: none */
    const char *type;
};

/* Queues RESTORE key ttl payload REPLACE ABSTTL [FREQ|IDLETIME], after a
 * SELECT when the database changes; a key whose expiry has passed is
 * skipped (the server would drop it on load too). Pipelined: replies are
 * read when the window fills. */
static int send_restore(struct redis_restore *r, const struct restore_cmd *c)
{
    if (c->has_expire && c->expire_ms <= r->now_ms) {
        r->expired++;
        return 0;
    }
    char shown[80];
    if (c->db != r->db) {
        char db[24];
        int n = snprintf(db, sizeof db, "%llu", (unsigned long long)c->db);
        out_add(r, "*2\r\n$6\r\nSELECT\r\n", 16);
        out_arg(r, db, (size_t)n);
        r->db = c->db;
        r->selects++;
        if (sent(r, 32, false, "SELECT %s", db) != 0)
            return -1;
    }
    size_t payload = c->head_len + c->body_len + c->tail_len;
    if (payload > RESTORE_MAX_PAYLOAD) {
        printable(c->key, c->key_len, shown, sizeof shown);
        sv_error_set(
            &r->err, SV_EXIT_FAILED,
            "key %s (db %llu) holds a value of %zu bytes: RESTORE takes at most %u (proto-max-bulk-len)",
            shown, (unsigned long long)c->db, payload, RESTORE_MAX_PAYLOAD);
        r->failed = true;
        return r->keys_format ? -1 : sv_error_hint(&r->err, "restore with --to-file instead");
    }
    char ttl[24], extra[24];
    int ttl_len = snprintf(ttl, sizeof ttl, "%lld", (long long)(c->has_expire ? c->expire_ms : 0));
    int argc = 6;
    const char *opt = NULL;
    int extra_len = 0;
    if (c->freq >= 0) {
        opt = "FREQ";
        extra_len = snprintf(extra, sizeof extra, "%d", c->freq);
        argc += 2;
    } else if (c->idle >= 0) {
        opt = "IDLETIME";
        extra_len = snprintf(extra, sizeof extra, "%lld", (long long)c->idle);
        argc += 2;
    }
    char head[32];
    out_add(r, head, (size_t)snprintf(head, sizeof head, "*%d\r\n$7\r\nRESTORE\r\n", argc));
    out_arg(r, c->key, c->key_len);
    out_arg(r, ttl, (size_t)ttl_len);
    out_bulk_header(r, payload);
    out_add(r, c->head, c->head_len);
    if (c->body_len >= SEND_CHUNK) {
        /* a large value goes from the reader's buffer, not copied */
        sv_error err = {0};
        if (out_flush(r, &err) != 0 || redis_write(r->c, c->body, c->body_len, &err) != 0) {
            r->cut = true;
            r->err = err;
            r->failed = true;
            return -1;
        }
    } else {
        out_add(r, c->body, c->body_len);
    }
    out_add(r, c->tail, c->tail_len);
    out_add(r, "\r\n", 2);
    out_arg(r, "REPLACE", 7);
    out_arg(r, "ABSTTL", 6);
    if (opt) {
        out_arg(r, opt, strlen(opt));
        out_arg(r, extra, (size_t)extra_len);
    }
    r->keys++;
    printable(c->key, c->key_len, shown, sizeof shown);
    return sent(r, payload + c->key_len, true, "RESTORE of key %s (db %llu, %s)", shown,
                (unsigned long long)c->db, c->type ? c->type : "unknown type");
}

/* A key of an RDB: its value with the type byte before it and the DUMP
 * trailer (RDB version, CRC-64) after. */
static int restore_key(struct redis_restore *r, const redis_rdb_item *it)
{
    unsigned char type = (unsigned char)it->type, trailer[10];
    redis_dump_trailer(it->type, it->value, it->value_len, r->w.version, trailer);
    struct restore_cmd c = {.db = it->db,
                            .key = it->key,
                            .key_len = it->key_len,
                            .has_expire = it->has_expire,
                            .expire_ms = it->expire_ms,
                            .head = &type,
                            .head_len = 1,
                            .body = it->value,
                            .body_len = it->value_len,
                            .tail = trailer,
                            .tail_len = sizeof trailer,
                            .freq = it->freq,
                            .idle = it->idle,
                            .type = redis_rdb_type_name(it->type)};
    return send_restore(r, &c);
}

/* A record of a keys-mode stream: its payload is a DUMP payload already. */
static int restore_record(struct redis_restore *r, const redis_keys_record *rec)
{
    if (rec->kind != REDIS_KEYS_KEY)
        return 0;
    struct restore_cmd c = {.db = rec->db,
                            .key = rec->key,
                            .key_len = rec->key_len,
                            .has_expire = rec->expire_ms >= 0,
                            .expire_ms = rec->expire_ms,
                            .body = rec->payload,
                            .body_len = rec->payload_len,
                            .freq = -1,
                            .idle = -1,
                            .type = redis_rdb_type_name(rec->payload[0])};
    return send_restore(r, &c);
}

static void progress(struct redis_restore *r, bool last)
{
    double now = mono_s();
    if (!last && now < r->next_progress)
        return;
    r->next_progress = now + (double)r->cfg->progress_interval;
    char size[32];
    log_with(LOG_INFO,
             LOG_FIELDS(LOG_NUM("keys", (int64_t)r->keys), LOG_NUM("expired_skipped", (int64_t)r->expired),
                        LOG_NUM("rdb_bytes", (int64_t)(r->keys_format ? r->kr.consumed : r->w.bytes))),
             "redis at %s: %s %llu key(s) from %s of %s%s", redis_conn_endpoint(r->c),
             last ? "restored" : "restoring:", (unsigned long long)r->keys,
             log_human_bytes(r->keys_format ? r->kr.consumed : r->w.bytes, size, sizeof size),
             r->keys_format ? "keys-mode stream" : "RDB", last ? "" : " so far");
}

/* Acts on one item of the RDB. */
static int online_item(struct redis_restore *r, const redis_rdb_item *it)
{
    switch (it->kind) {
    case RDB_ITEM_KEY: return restore_key(r, it);
    case RDB_ITEM_FUNCTION: {
        static const char cmd[] = "*4\r\n$8\r\nFUNCTION\r\n$4\r\nLOAD\r\n$7\r\nREPLACE\r\n";
        out_add(r, cmd, sizeof cmd - 1);
        out_arg(r, it->value, it->value_len);
        r->functions++;
        return sent(r, it->value_len, false, "FUNCTION LOAD of a function library");
    }
    case RDB_ITEM_MODULE_AUX:
        log_warn("redis:%s holds global data of module %s, which an online restore does not carry (a server "
                 "loading the RDB file with the module does)",
                 r->name, it->module);
        return 0;
    case RDB_ITEM_AUX:
        if (it->key_len == 9 && memcmp(it->key, "redis-ver", 9) == 0)
            log_debug("the RDB was written by Redis %s", (const char *)it->value);
        return 0;
    default: return 0;
    }
}

static int online_write(void *ctx, const void *buf, size_t len, sv_error *err)
{
    struct redis_restore *r = ctx;
    if (r->failed) {
        *err = r->err;
        return -1;
    }
    /* the loader's own failures (a refused command, content it cannot
     * send) are kept in r->err: finish reports them as the cause */
    if (r->keys_format) {
        if (redis_keys_reader_feed(&r->kr, buf, len) != 0) {
            sv_error_set(&r->err, SV_EXIT_FAILED, "%s:%s: %s", r->a->kind, r->a->name, r->kr.error);
            r->failed = true;
            *err = r->err;
            return -1;
        }
        redis_keys_record rec;
        int n;
        while ((n = redis_keys_reader_next(&r->kr, &rec, false)) == 1)
            if (restore_record(r, &rec) != 0) {
                *err = r->err;
                return -1;
            }
        if (n < 0) {
            sv_error_set(&r->err, SV_EXIT_FAILED, "%s:%s is not a whole keys-mode stream: %s", r->a->kind,
                         r->a->name, r->kr.error);
            r->failed = true;
            *err = r->err;
            return -1;
        }
        progress(r, false);
        return 0;
    }
    if (redis_rdb_walker_feed(&r->w, buf, len) != 0) {
        sv_error_set(&r->err, SV_EXIT_FAILED, "%s:%s: %s", r->a->kind, r->a->name, r->w.error);
        r->failed = true;
        *err = r->err;
        return -1;
    }
    redis_rdb_item it;
    int n;
    while ((n = redis_rdb_walker_next(&r->w, &it, false)) == 1)
        if (online_item(r, &it) != 0) {
            *err = r->err;
            return -1;
        }
    if (n < 0) {
        sv_error_set(&r->err, SV_EXIT_FAILED, "%s:%s cannot be restored online: %s", r->a->kind, r->a->name,
                     r->w.error);
        r->failed = true;
        *err = r->err;
        return -1;
    }
    progress(r, false);
    return 0;
}

static int online_start(loader *l, stream **sink, sv_error *err)
{
    struct redis_restore *r = l->impl;
    if (r->flush_first) {
        const char *argv[] = {"FLUSHALL"};
        redis_reply rep;
        if (redis_command(r->c, &rep, err, 1, argv) != 0)
            return -1;
        int rc = rep.type == REDIS_REPLY_ERROR ? command_error(r, "FLUSHALL", rep.str, err) : 0;
        redis_reply_free(&rep);
        if (rc != 0)
            return -1;
        log_info("redis at %s flushed (FLUSHALL) for the restore", l->target);
    }
    if (r->flush_functions) {
        const char *argv[] = {"FUNCTION", "FLUSH"};
        redis_reply rep;
        if (redis_command(r->c, &rep, err, 2, argv) != 0)
            return -1;
        int rc = rep.type == REDIS_REPLY_ERROR ? command_error(r, "FUNCTION FLUSH", rep.str, err) : 0;
        redis_reply_free(&rep);
        if (rc != 0)
            return -1;
        log_info("redis at %s: its function libraries removed (FUNCTION FLUSH) for the restore", l->target);
    }
    if (r->keys_format)
        redis_keys_reader_init(&r->kr, REDIS_KEYS_MAX_ITEM);
    else
        redis_rdb_walker_init(&r->w, RESTORE_MAX_PAYLOAD + (1u << 20));
    r->now_ms = now_ms();
    r->next_progress = mono_s() + (double)r->cfg->progress_interval;
    *sink = callback_sink(online_write, r, "redis restore");
    return 0;
}

/* One command of argv on c; -1 with *why when it failed or was refused. */
static int undo_command(redis_conn *c, int argc, const char *const *argv, char *why, size_t len)
{
    sv_error ferr = {0};
    redis_reply rep = {0};
    int rc = 0;
    if (redis_command(c, &rep, &ferr, argc, argv) != 0) {
        snprintf(why, len, "%s", ferr.msg);
        rc = -1;
    } else if (rep.type == REDIS_REPLY_ERROR) {
        snprintf(why, len, "%s", rep.str ? rep.str : "refused");
        rc = -1;
    }
    redis_reply_free(&rep);
    return rc;
}

/* FLUSHALL on c, and FUNCTION FLUSH when functions were loaded (FLUSHALL
 * keeps them). */
static int flushall(redis_conn *c, bool functions, char *why, size_t len)
{
    static const char *const argv[] = {"FLUSHALL"}, *const fargv[] = {"FUNCTION", "FLUSH"};
    if (undo_command(c, 1, argv, why, len) != 0)
        return -1;
    return functions ? undo_command(c, 2, fargv, why, len) : 0;
}

/*
 * Empties the target again after a failure: it was empty (or flushed after
 * its safety backup) before the restore started. Runs while a stop request
 * is held back (signals.h), so that after SIGTERM the FLUSHALL still goes
 * out. On the restore's connection, the commands gathered are sent and the
 * replies still due read, so that the FLUSHALL comes after every RESTORE;
 * but when a write failed, a command may have been cut off inside a bulk
 * string, and the server would take a FLUSHALL there as the rest of it:
 * then the connection is closed (the server drops the unfinished command)
 * and the FLUSHALL goes on a fresh one.
 */
static void online_undo(loader *l, sv_error *err)
{
    struct redis_restore *r = l->impl;
    if (!r->sent)
        return;
    signals_cleanup_begin(SIGNALS_CLEANUP_S);
    char why[256] = "";
    sv_error ferr = {0};
    bool alive = !r->cut && out_flush(r, &ferr) == 0;
    while (alive && r->inflight) {
        const struct sent_command *cmd =
            &r->ring[(r->ring_head + WINDOW_COMMANDS + 8 - r->inflight) % (WINDOW_COMMANDS + 8)];
        redis_reply rep = {0};
        if (redis_read_reply(r->c, &rep, "a command", &ferr) != 0) {
            alive = false;
        } else {
            r->inflight--;
            if (cmd->key && rep.type != REDIS_REPLY_ERROR)
                r->confirmed++;
        }
        redis_reply_free(&rep);
    }
    if (!alive) {
        redis_close(r->c);
        r->c = redis_connect(&r->copt, &ferr);
    }
    int rc = -1;
    if (r->c)
        rc = flushall(r->c, r->functions > 0, why, sizeof why);
    else
        snprintf(why, sizeof why, "%s", ferr.msg);
    signals_cleanup_end();
    if (rc == 0) {
        sv_error_wrap(err,
                      "redis at %s was emptied again (FLUSHALL%s) after %llu key(s) had been sent, %llu "
                      "confirmed",
                      l->target, r->functions ? ", FUNCTION FLUSH" : "", (unsigned long long)r->keys,
                      (unsigned long long)r->confirmed);
        return;
    }
    log_error("redis at %s holds a partial restore (%llu key(s) sent, %llu confirmed) and could not be "
              "emptied: %s",
              l->target, (unsigned long long)r->keys, (unsigned long long)r->confirmed, why);
    sv_error_wrap(err, "redis at %s holds a PARTIAL restore (%llu key(s) sent, %llu confirmed): FLUSHALL it",
                  l->target, (unsigned long long)r->keys, (unsigned long long)r->confirmed);
}

/* After a failure with --clean: the target's data was flushed before it,
 * and the undo cannot bring it back. restore/ logged the safety backup's
 * set id (none with --no-safety-backup). */
static void say_flushed(loader *l, sv_error *err)
{
    struct redis_restore *r = l->impl;
    if (r->flush_first || r->flush_functions)
        sv_error_wrap(err,
                      "redis at %s was emptied (FLUSHALL) for the restore; its data is in the safety "
                      "backup taken before (set of reason safety, logged above)",
                      l->target);
}

static int online_finish(loader *l, bool ok, sv_error *err)
{
    struct redis_restore *r = l->impl;
    sv_error ferr = {0};
    if (ok && r->failed) {
        ferr = r->err;
        ok = false;
    }
    if (ok) {
        int n;
        if (r->keys_format) {
            redis_keys_record rec;
            while ((n = redis_keys_reader_next(&r->kr, &rec, true)) == 1)
                if (restore_record(r, &rec) != 0)
                    break;
        } else {
            redis_rdb_item it;
            while ((n = redis_rdb_walker_next(&r->w, &it, true)) == 1)
                if (online_item(r, &it) != 0)
                    break;
        }
        if (r->failed) {
            ferr = r->err;
        } else if (r->keys_format && (n < 0 || redis_keys_reader_finish(&r->kr) != 0)) {
            sv_error_set(&ferr, SV_EXIT_FAILED, "%s:%s is not a whole keys-mode stream: %s", r->a->kind,
                         r->a->name, r->kr.error);
        } else if (r->keys_format) {
            while (r->inflight && read_one(r, &ferr) == 0)
                ;
        } else if (r->failed) {
            ferr = r->err;
        } else if (n < 0 || redis_rdb_walker_finish(&r->w) != 0) {
            sv_error_set(&ferr, SV_EXIT_FAILED, "%s:%s is not a whole RDB: %s", r->a->kind, r->a->name,
                         r->w.error);
        } else {
            while (r->inflight && read_one(r, &ferr) == 0)
                ;
        }
        if (!sv_error_isset(&ferr)) {
            progress(r, true);
            log_with(LOG_INFO,
                     LOG_FIELDS(LOG_NUM("keys", (int64_t)r->keys),
                                LOG_NUM("expired_skipped", (int64_t)r->expired),
                                LOG_NUM("functions", (int64_t)r->functions)),
                     "redis at %s: %llu key(s) restored, %llu already expired not restored (Redis drops them "
                     "on load too), %llu function librar%s",
                     l->target, (unsigned long long)r->keys, (unsigned long long)r->expired,
                     (unsigned long long)r->functions, r->functions == 1 ? "y" : "ies");
            return 0;
        }
        *err = ferr;
        online_undo(l, err);
        say_flushed(l, err);
        return -1;
    }
    if (sv_error_isset(&ferr)) {
        *err = ferr;
        online_undo(l, err);
        say_flushed(l, err);
        return -1;
    }
    if (r->failed) {
        /* the loader failed first (a refused command, a lost connection):
         * that is the cause, not the artifact */
        *err = r->err;
        online_undo(l, err);
        say_flushed(l, err);
        return -1;
    }
    if (r->sent || r->flush_first || r->flush_functions) {
        /* the artifact failed: the caller reports it; undo and say so */
        sv_error note = {0};
        sv_error_set(&note, SV_EXIT_FAILED, "the artifact failed");
        online_undo(l, &note);
        say_flushed(l, &note);
        log_warn("%s", note.msg);
    }
    return -1;
}

/* ---- the loader ----------------------------------------------------------- */

static int redis_inspect(loader *l, const manifest_artifact *a, bool *replaces, sv_error *err)
{
    struct redis_restore *r = l->impl;
    r->a = a;
    *replaces = false;
    if (check_format(r, a, err) != 0)
        return -1;
    return r->online ? online_inspect(l, replaces, err) : file_inspect(l, err);
}

static int redis_start(loader *l, stream **sink, sv_error *err)
{
    struct redis_restore *r = l->impl;
    return r->online ? online_start(l, sink, err) : file_start(l, sink, err);
}

static int redis_finish(loader *l, bool ok, sv_error *err)
{
    struct redis_restore *r = l->impl;
    return r->online ? online_finish(l, ok, err) : file_finish(l, ok, err);
}

static void redis_destroy(loader *l)
{
    struct redis_restore *r = l->impl;
    if (r->tmp)
        file_discard(r);
    free(r->tmp);
    free(r->path);
    redis_close(r->c);
    redis_url_free(&r->u);
    redis_rdb_walker_free(&r->w);
    redis_keys_reader_free(&r->kr);
    free(r->out);
    free_secret(r->url);
    free_secret(r->password);
    free(r->name);
    free(r);
}

const struct loader_ops redis_loader = {
    .drill_target = redis_drill_target,
    .drill_needs_dir = true,
    .drill_compare = redis_drill_compare,
    .drill_discard = redis_drill_discard,
    .kind = "redis",
    .forms = redis_forms,
    .check = redis_check,
    .open = redis_open,
    .inspect = redis_inspect,
    .safety_source = redis_safety_source,
    .start = redis_start,
    .finish = redis_finish,
    .destroy = redis_destroy,
};
