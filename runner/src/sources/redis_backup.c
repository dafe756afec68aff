/* The Redis source: a point-in-time RDB taken as a replica takes it (PSYNC
 * ? -1 after REPLCONF capa eof and rdb-only), checked while it streams into
 * the pipeline; or, with SAUVE_REDIS_MODE=keys for servers that refuse
 * replication, every key read on its own (SCAN, then PTTL and DUMP,
 * pipelined) into the keys-mode stream (redis_keys.c), which is NOT
 * point-in-time. Nothing touches local disk. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "manifest/manifest.h"
#include "sources/redis.h"

/* The payload is read in large chunks so that the server's socket buffer
 * drains as fast as the pipeline takes it. */
#define SYNC_READ_CHUNK (256 * 1024)

/* What a user must allow for sauve to take the RDB (README: Redis). */
#define REDIS_MINIMAL_ACL "+psync +replconf +info"
/* What keys mode needs (README: Redis keys mode). */
#define REDIS_KEYS_ACL "~* +scan +dump +pttl +select +info"

/* Keys mode: keys asked per SCAN, keys whose PTTL and DUMP are in flight
 * at once (the replies are read one value at a time, each streamed into
 * the pipeline in chunks: a large value is never held whole). */
#define KEYS_SCAN_COUNT "1000"
#define KEYS_WINDOW     128
#define KEYS_CHUNK      (256 * 1024)

struct redis_source {
    const sv_config *cfg;
    const char *url_text; /* SAUVE_REDIS_URL, or the target of a restore */
    const char *name;     /* the artifact's name: SAUVE_REDIS_NAME, or the restore's */
    const char *password; /* the instance's, else SAUVE_REDIS_PASSWORD's */
    const char *mode;     /* "sync" or "keys" */
    bool listed;          /* one of redis.instances: errors name it */
    char *owned_url, *owned_name, *owned_password;
    struct redis_url url;
    int major; /* from INFO server; 0 when INFO was not allowed */
};

bool redis_configured(const sv_config *cfg)
{
    return (cfg->redis_url && *cfg->redis_url) || cfg->n_redis_instances > 0;
}

static redis_conn *connect_configured(struct redis_source *rs, sv_error *err)
{
    const sv_config *cfg = rs->cfg;
    struct redis_conn_options o = {.url = &rs->url,
                                   .password = rs->password,
                                   .ca_file = cfg->redis_tls_ca_file,
                                   .cert_file = cfg->redis_tls_cert_file,
                                   .key_file = cfg->redis_tls_key_file,
                                   .timeout_s = (int)cfg->redis_timeout};
    if (!rs->url.tls && (cfg->redis_tls_ca_file || cfg->redis_tls_cert_file || cfg->redis_tls_key_file))
        log_warn("SAUVE_REDIS_TLS_* is set but SAUVE_REDIS_URL is redis://, without TLS: write rediss:// "
                 "to use TLS");
    return redis_connect(&o, err);
}

/* The value of "name:" in an INFO section, newly allocated, or NULL. */
static char *info_field(const char *info, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = info; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, name, n) == 0 && l[n] == ':')
            return xstrndup(l + n + 1, strcspn(l + n + 1, "\r\n"));
    }
    return NULL;
}

/* Sum of keys= over the db lines of INFO keyspace ("db0:keys=3,expires=0,..."). */
static int64_t keyspace_keys(const char *info)
{
    int64_t total = 0;
    for (const char *l = info; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, "db", 2) != 0)
            continue;
        const char *k = strstr(l, ":keys=");
        const char *eol = strchr(l, '\n');
        if (k && (!eol || k < eol))
            total += strtoll(k + 6, NULL, 10);
    }
    return total;
}

/* Runs INFO section; NULL (and a warning) when the user may not: a user
 * may be allowed to sync but not to INFO, and the backup works without it,
 * only with less in the manifest. *failed is set, with err, when the
 * connection failed or the server wants a password sauve was not given. */
static char *info(redis_conn *c, const char *section, sv_error *err, bool *failed)
{
    const char *argv[] = {"INFO", section};
    redis_reply r;
    *failed = false;
    if (redis_command(c, &r, err, 2, argv) != 0) {
        *failed = true;
        return NULL;
    }
    char *out = NULL;
    if (r.type == REDIS_REPLY_BULK) {
        out = xstrdup(r.str);
    } else if (r.type == REDIS_REPLY_ERROR && strncmp(r.str, "NOAUTH", 6) == 0) {
        sv_error_set(err, SV_EXIT_CONFIG, "redis at %s requires a password, and none is configured",
                     redis_conn_endpoint(c));
        sv_error_hint(
            err, "set SAUVE_REDIS_PASSWORD (or SAUVE_REDIS_PASSWORD_FILE), or put it in SAUVE_REDIS_URL");
        *failed = true;
    } else {
        log_warn("redis at %s: INFO %s refused (%.120s): the manifest will lack what it tells; allow +info",
                 redis_conn_endpoint(c), section, r.str ? r.str : "unexpected reply");
    }
    redis_reply_free(&r);
    return out;
}

/* True for the error a server gives for a command it does not have: one
 * renamed or disabled by its operator, as managed services do with SYNC. */
static bool unknown_command(const char *reply)
{
    return strncmp(reply, "ERR unknown command", 19) == 0 || strstr(reply, "unknown command");
}

static int refused_sync(redis_conn *c, const char *reply, sv_error *err)
{
    sv_error_set(err, SV_EXIT_CONFIG,
                 "redis at %s does not allow replication (PSYNC/SYNC are disabled or renamed: %.100s), so no "
                 "point-in-time RDB can be taken over the network",
                 redis_conn_endpoint(c), reply);
    return sv_error_hint(err, "managed services (ElastiCache, Memorystore, Azure Cache) refuse SYNC: set "
                              "SAUVE_REDIS_MODE=keys (SCAN + DUMP per key, not point-in-time), or use the "
                              "service's own snapshots");
}

static int noperm(redis_conn *c, const char *command, const char *reply, sv_error *err)
{
    sv_error_set(err, SV_EXIT_CONFIG, "redis at %s: the user may not run %s (%.120s)", redis_conn_endpoint(c),
                 command, reply);
    return sv_error_hint(
        err,
        "allow it in the user's ACL, e.g. ACL SETUSER <user> %s; where replication cannot be "
        "allowed (a managed service), set SAUVE_REDIS_MODE=keys",
        REDIS_MINIMAL_ACL);
}

/*
 * Probes PSYNC without starting a sync: an argument count the command
 * cannot take is refused with "wrong number of arguments" when the command
 * exists, and with "unknown command" when the operator renamed or disabled
 * it (managed services). The server checks the arity before the ACL, so a
 * missing permission shows only at the real PSYNC.
 */
static int probe_psync(redis_conn *c, sv_error *err)
{
    const char *argv[] = {"PSYNC"};
    redis_reply r;
    if (redis_command(c, &r, err, 1, argv) != 0)
        return -1;
    int rc = 0;
    if (r.type == REDIS_REPLY_ERROR && unknown_command(r.str)) {
        /* an old server without PSYNC still has SYNC */
        const char *sync_argv[] = {"SYNC", "x"};
        redis_reply s;
        if (redis_command(c, &s, err, 2, sync_argv) != 0) {
            redis_reply_free(&r);
            return -1;
        }
        if (s.type == REDIS_REPLY_ERROR && unknown_command(s.str))
            rc = refused_sync(c, r.str, err);
        redis_reply_free(&s);
    }
    redis_reply_free(&r);
    return rc;
}

static int prepare(source *s, sv_error *err);

/* Errors about a server of redis.instances name it: the connection's
 * messages speak of SAUVE_REDIS_URL, the one-instance setting. */
static int redis_prepare(source *s, sv_error *err)
{
    struct redis_source *rs = s->impl;
    if (prepare(s, err) == 0)
        return 0;
    if (rs->listed)
        sv_error_wrap(err,
                      "redis instance '%s' (redis.instances: its url or url_file stands for SAUVE_REDIS_URL)",
                      rs->name);
    return -1;
}

static int prepare(source *s, sv_error *err)
{
    struct redis_source *rs = s->impl;
    if (redis_url_parse(rs->url_text, &rs->url, err) != 0)
        return -1;
    const char *name = rs->name;
    bool keys_mode = strcmp(rs->mode, "keys") == 0;
    char *key = xasprintf(keys_mode ? "redis/%s.keys" : "redis/%s.rdb", name);
    char *stored = xasprintf("%s.zst.age", key);
    source_artifact *a =
        source_add_artifact(s, "redis", name, key, keys_mode ? REDIS_KEYS_FORMAT : "redis-rdb");
    bool storable = *name && !strchr(name, '/') && name[0] != '.' && manifest_key_is_safe(stored);
    free(key);
    free(stored);
    if (!storable) {
        /* the name becomes a storage key: refuse one a reader would not accept */
        sv_error e = {0};
        sv_error_set(&e, SV_EXIT_CONFIG,
                     "redis instance name '%s' (SAUVE_REDIS_NAME or redis.instances) cannot be stored under "
                     "sauve's layout (it is empty, contains '/', "
                     "'\\', a control character or invalid UTF-8, or starts with '.')",
                     name);
        source_artifact_fail(a, &e);
        return 0;
    }
    a->mode = xstrdup(rs->mode);

    redis_conn *c = connect_configured(rs, err);
    if (!c)
        return -1;
    s->info.endpoint = xstrdup(redis_conn_endpoint(c));
    s->info.tool = xstrdup(keys_mode ? "redis-scan-dump" : "redis-replication");
    int rc = -1;
    bool io_failed;
    char *server = info(c, "server", err, &io_failed);
    if (io_failed)
        goto out;
    char *keyspace = info(c, "keyspace", err, &io_failed);
    if (io_failed) {
        free(server);
        goto out;
    }
    if (server) {
        s->info.server_version = info_field(server, "redis_version");
        if (s->info.server_version)
            rs->major = atoi(s->info.server_version);
    }
    if (keyspace) {
        a->items = keyspace_keys(keyspace);
        a->has_items = true;
    }
    free(server);
    free(keyspace);

    sv_error perr = {0};
    if (!keys_mode && probe_psync(c, &perr) != 0) {
        if (perr.code != SV_EXIT_CONFIG) {
            *err = perr;
            goto out;
        }
        source_artifact_fail(a, &perr);
    }
    char keys[32] = "an unknown number of";
    if (a->has_items)
        snprintf(keys, sizeof keys, "%lld", (long long)a->items);
    log_with(LOG_INFO,
             LOG_FIELDS(LOG_STR("source", "redis"), LOG_STR("name", a->name),
                        LOG_STR("server_version", s->info.server_version ? s->info.server_version : ""),
                        LOG_NUM("keys", a->has_items ? a->items : -1)),
             "redis %s at %s: %s key(s), mode %s%s",
             s->info.server_version ? s->info.server_version : "(version unknown)", s->info.endpoint, keys,
             rs->mode, keys_mode ? " (each key read on its own: NOT a point-in-time copy)" : "");
    rc = 0;
out:
    redis_close(c);
    return rc;
}

struct sync_sink {
    stream *out;
    redis_rdb_check check;
};

static int emit_payload(void *ctx, const void *buf, size_t len, sv_error *err)
{
    struct sync_sink *k = ctx;
    if (redis_rdb_check_update(&k->check, buf, len) != 0)
        return sv_error_set(err, SV_EXIT_FAILED, "%s", k->check.error);
    return stream_write(k->out, buf, len, err);
}

/* REPLCONF what value: 0, or -1 with err on I/O failure or NOPERM. Other
 * errors are ignored: an older server that does not know the capability
 * still sends the RDB, in the framing it knows. */
static int replconf(redis_conn *c, const char *what, const char *value, sv_error *err)
{
    const char *argv[] = {"REPLCONF", what, value};
    redis_reply r;
    if (redis_command(c, &r, err, 3, argv) != 0)
        return -1;
    int rc = 0;
    if (r.type == REDIS_REPLY_ERROR) {
        if (strncmp(r.str, "NOPERM", 6) == 0)
            rc = noperm(c, "REPLCONF", r.str, err);
        else
            log_debug("redis at %s: REPLCONF %s %s: %s (ignored)", redis_conn_endpoint(c), what, value,
                      r.str);
    }
    redis_reply_free(&r);
    return rc;
}

/* Why the server closed the connection during a sync, as an error. */
static int closed_during_sync(redis_conn *c, const redis_sync *sy, sv_error *err)
{
    if (sy->state == REDIS_SYNC_HEADER) {
        sv_error_set(err, SV_EXIT_FAILED, "redis at %s closed the connection before sending the RDB",
                     redis_conn_endpoint(c));
        return sv_error_hint(err, "the server's log says why (a failed BGSAVE: disk full, or fork refused "
                                  "for lack of memory; or the server was stopped)");
    }
    char done[32], total[32];
    log_human_bytes(sy->payload, done, sizeof done);
    if (sy->eof_framing)
        snprintf(total, sizeof total, "an unannounced size");
    else
        log_human_bytes(sy->length, total, sizeof total);
    sv_error_set(err, SV_EXIT_FAILED, "redis at %s closed the connection after %s of %s of the RDB",
                 redis_conn_endpoint(c), done, total);
    return sv_error_hint(
        err, "a server drops a replica whose output buffer outgrows client-output-buffer-limit "
             "replica (default 256mb 64mb 60): raise it, e.g. CONFIG SET client-output-buffer-limit "
             "\"replica 1gb 512mb 120\", or the server stopped; its log says which");
}

static int sync_dump(source *s, size_t i, stream *out, sv_error *err)
{
    struct redis_source *rs = s->impl;
    source_artifact *a = &s->artifacts[i];
    redis_conn *c = connect_configured(rs, err);
    if (!c)
        return -1;
    int rc = -1;
    unsigned char *buf = NULL;
    /* ip-address names this replica sauve's backup, in INFO replication
     * (a restore into this server looks for it) and in the server's log;
     * capa eof lets a diskless server stream without knowing the size;
     * rdb-only (7.0+) tells it not to keep a replication stream for us */
    if (replconf(c, "ip-address", REDIS_BACKUP_REPLICA, err) != 0 || replconf(c, "capa", "eof", err) != 0)
        goto out;
    if ((rs->major == 0 || rs->major >= 7) && replconf(c, "rdb-only", "1", err) != 0)
        goto out;
    const char *argv[] = {"PSYNC", "?", "-1"};
    if (redis_send(c, err, 3, argv) != 0)
        goto out;

    struct sync_sink sink = {.out = out};
    redis_rdb_check_init(&sink.check);
    redis_sync sy;
    redis_sync_init(&sy);
    buf = xmalloc(SYNC_READ_CHUNK);
    while (sy.state == REDIS_SYNC_HEADER || sy.state == REDIS_SYNC_PAYLOAD) {
        /* a server that never pauses never makes a read wait: ask here too */
        if (signals_check(err) != 0)
            goto out;
        ssize_t n = redis_conn_read(c, buf, SYNC_READ_CHUNK, err);
        if (n < 0)
            goto out;
        if (n == 0) {
            closed_during_sync(c, &sy, err);
            goto out;
        }
        if (redis_sync_feed(&sy, buf, (size_t)n, emit_payload, &sink, err) < 0) {
            if (!sink.check.failed)
                sv_error_wrap(err, "redis at %s", redis_conn_endpoint(c));
            else
                sv_error_wrap(err, "redis at %s sent a bad RDB", redis_conn_endpoint(c));
            goto out;
        }
    }
    if (sy.state == REDIS_SYNC_REFUSED) {
        if (strncmp(sy.refusal, "NOPERM", 6) == 0)
            noperm(c, "PSYNC", sy.refusal, err);
        else if (unknown_command(sy.refusal))
            refused_sync(c, sy.refusal, err);
        else
            sv_error_set(err, SV_EXIT_FAILED, "redis at %s refused the sync: %.200s", redis_conn_endpoint(c),
                         sy.refusal);
        goto out;
    }
    if (redis_rdb_check_finish(&sink.check) != 0) {
        sv_error_set(err, SV_EXIT_FAILED, "redis at %s sent a bad RDB: %s", redis_conn_endpoint(c),
                     sink.check.error);
        goto out;
    }
    if (sink.check.unchecksummed)
        log_warn("redis at %s writes RDBs without a checksum (rdbchecksum no): only the header and end of "
                 "this one could be checked",
                 redis_conn_endpoint(c));
    a->format_version = sink.check.version;
    char size[32];
    log_with(LOG_INFO,
             LOG_FIELDS(LOG_STR("source", "redis"), LOG_STR("name", a->name),
                        LOG_NUM("rdb_version", sink.check.version), LOG_NUM("rdb_bytes", sy.payload),
                        LOG_STR("framing", sy.eof_framing ? "eof-mark" : "length")),
             "redis:%s: RDB version %d, %s, checksum %s (%s framing, %llu keep-alive(s))", a->name,
             sink.check.version, log_human_bytes(sy.payload, size, sizeof size),
             sink.check.unchecksummed ? "absent" : "ok", sy.eof_framing ? "diskless" : "disk-based",
             (unsigned long long)sy.keepalives);
    rc = 0;
out:
    free(buf);
    /* closing ends our replica session: the server forgets us at once */
    redis_close(c);
    return rc;
}

/* ---- keys mode ------------------------------------------------------------ */

struct keys_run {
    source_artifact *a;
    redis_conn *c;
    stream *out;
    redis_keys_writer w;
    uint64_t vanished, payload_bytes;
    unsigned char *chunk;
    char *cmd; /* commands of one window, in RESP */
    size_t cmd_len, cmd_cap;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cmd_add(struct keys_run *k, const void *p, size_t n)
{
    if (k->cmd_cap - k->cmd_len < n) {
        size_t cap = k->cmd_cap ? k->cmd_cap : 65536;
        while (cap - k->cmd_len < n)
            cap *= 2;
        k->cmd = xrealloc(k->cmd, cap);
        k->cmd_cap = cap;
    }
    memcpy(k->cmd + k->cmd_len, p, n);
    k->cmd_len += n;
}

/* "*2\r\n$4\r\nPTTL\r\n$<n>\r\n<key>\r\n" and the same for DUMP. */
static void cmd_key(struct keys_run *k, const char *verb, const char *key, size_t len)
{
    char h[48];
    cmd_add(k, h, (size_t)snprintf(h, sizeof h, "*2\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(verb), verb, len));
    cmd_add(k, key, len);
    cmd_add(k, "\r\n", 2);
}

/* A server's error reply to a keys-mode command, as an error. */
static int keys_refused(struct keys_run *k, const char *command, const char *reply, sv_error *err)
{
    if (strncmp(reply, "NOPERM", 6) == 0) {
        sv_error_set(err, SV_EXIT_CONFIG, "redis at %s: the user may not run %s (%.120s)",
                     redis_conn_endpoint(k->c), command, reply);
        return sv_error_hint(err, "keys mode needs, e.g., ACL SETUSER <user> %s", REDIS_KEYS_ACL);
    }
    return sv_error_set(err, SV_EXIT_FAILED, "redis at %s refused %s: %.200s", redis_conn_endpoint(k->c),
                        command, reply);
}

static int keys_write(struct keys_run *k, const void *p, size_t n, bool pass, sv_error *err)
{
    if (pass)
        redis_keys_writer_pass(&k->w, p, n);
    return stream_write(k->out, p, n, err);
}

/* Reads the PTTL and DUMP replies of one key and writes its record, the
 * value streamed from the socket into the pipeline in chunks. */
static int keys_one(struct keys_run *k, uint32_t db, const redis_reply *key, sv_error *err)
{
    redis_reply r;
    if (redis_read_reply(k->c, &r, "PTTL", err) != 0)
        return -1;
    if (r.type != REDIS_REPLY_INTEGER) {
        int rc = r.type == REDIS_REPLY_ERROR
                     ? keys_refused(k, "PTTL", r.str, err)
                     : sv_error_set(err, SV_EXIT_FAILED, "redis at %s: an unexpected reply to PTTL",
                                    redis_conn_endpoint(k->c));
        redis_reply_free(&r);
        return rc;
    }
    long long pttl = r.integer;
    redis_reply_free(&r);
    int64_t at = wall_ms();
    uint64_t len = 0;
    int b = redis_read_bulk_head(k->c, &r, &len, "DUMP", err);
    if (b < 0)
        return -1;
    if (b == 0) {
        int rc = 0;
        if (r.type == REDIS_REPLY_NIL)
            k->vanished++; /* deleted or expired since SCAN listed it */
        else if (r.type == REDIS_REPLY_ERROR)
            rc = keys_refused(k, "DUMP", r.str, err);
        else
            rc = sv_error_set(err, SV_EXIT_FAILED, "redis at %s: an unexpected reply to DUMP",
                              redis_conn_endpoint(k->c));
        redis_reply_free(&r);
        return rc;
    }
    if (pttl == -2) {
        /* gone at PTTL, back at DUMP: a new key, whose expiry is unknown;
         * counted as vanished, as the key SCAN listed was */
        k->vanished++;
        for (uint64_t left = len + 2; left;) {
            size_t n = left < KEYS_CHUNK ? (size_t)left : KEYS_CHUNK;
            if (redis_conn_read_exact(k->c, k->chunk, n, "a DUMP reply", err) != 0)
                return -1;
            left -= n;
        }
        return 0;
    }
    if (len < REDIS_DUMP_PAYLOAD_MIN || len > REDIS_KEYS_MAX_ITEM) {
        sv_error_set(err, SV_EXIT_FAILED,
                     "redis at %s: a key in db %lu (%zu-byte name) has a DUMP payload of %llu bytes; keys "
                     "mode stores up to %u (a RESTORE takes no more under the default proto-max-bulk-len)",
                     redis_conn_endpoint(k->c), (unsigned long)db, key->len, (unsigned long long)len,
                     REDIS_KEYS_MAX_ITEM);
        return -1;
    }
    unsigned char head[REDIS_KEYS_RECORD_HEAD_LEN];
    int64_t expire = pttl >= 0 ? at + pttl : -1;
    redis_keys_record_head(&k->w, db, expire, (uint32_t)key->len, len, head);
    if (keys_write(k, head, sizeof head, false, err) != 0 ||
        keys_write(k, key->str, key->len, true, err) != 0)
        return -1;
    for (uint64_t left = len; left;) {
        size_t n = left < KEYS_CHUNK ? (size_t)left : KEYS_CHUNK;
        if (redis_conn_read_exact(k->c, k->chunk, n, "a DUMP reply", err) != 0 ||
            keys_write(k, k->chunk, n, true, err) != 0)
            return -1;
        left -= n;
    }
    char crlf[2];
    if (redis_conn_read_exact(k->c, crlf, 2, "a DUMP reply", err) != 0)
        return -1;
    if (crlf[0] != '\r' || crlf[1] != '\n')
        return sv_error_set(err, SV_EXIT_FAILED, "redis at %s: protocol error: a DUMP reply without its CRLF",
                            redis_conn_endpoint(k->c));
    k->payload_bytes += len;
    return 0;
}

/* The keys of one SCAN reply, KEYS_WINDOW at a time: their PTTL and DUMP
 * sent in one write, then the replies read in order. */
static int keys_batch(struct keys_run *k, uint32_t db, const redis_reply *keys, sv_error *err)
{
    for (long long i = 0; i < keys->integer; i += KEYS_WINDOW) {
        if (signals_check(err) != 0)
            return -1;
        long long end = i + KEYS_WINDOW < keys->integer ? i + KEYS_WINDOW : keys->integer;
        k->cmd_len = 0;
        for (long long j = i; j < end; j++) {
            const redis_reply *key = &keys->element[j];
            if (key->type != REDIS_REPLY_BULK)
                return sv_error_set(err, SV_EXIT_FAILED,
                                    "redis at %s: SCAN returned a key that is not a string",
                                    redis_conn_endpoint(k->c));
            cmd_key(k, "PTTL", key->str, key->len);
            cmd_key(k, "DUMP", key->str, key->len);
        }
        if (redis_write(k->c, k->cmd, k->cmd_len, err) != 0)
            return -1;
        for (long long j = i; j < end; j++)
            if (keys_one(k, db, &keys->element[j], err) != 0)
                return -1;
    }
    return 0;
}

/* The databases INFO keyspace lists ("db3:keys=..."), ascending. */
static size_t keyspace_dbs(const char *info, uint32_t **dbs)
{
    size_t n = 0, cap = 0;
    *dbs = NULL;
    for (const char *l = info; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, "db", 2) != 0 || l[2] < '0' || l[2] > '9')
            continue;
        char *end;
        unsigned long db = strtoul(l + 2, &end, 10);
        if (*end != ':' || db > UINT32_MAX)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            *dbs = xrealloc(*dbs, cap * sizeof **dbs);
        }
        (*dbs)[n++] = (uint32_t)db;
    }
    return n;
}

static int keys_db(struct keys_run *k, uint32_t db, sv_error *err)
{
    char dbs[16];
    snprintf(dbs, sizeof dbs, "%lu", (unsigned long)db);
    const char *sel[] = {"SELECT", dbs};
    redis_reply r;
    if (redis_command(k->c, &r, err, 2, sel) != 0)
        return -1;
    int rc = r.type == REDIS_REPLY_ERROR ? keys_refused(k, "SELECT", r.str, err) : 0;
    redis_reply_free(&r);
    if (rc != 0)
        return -1;
    char cursor[32] = "0";
    do {
        const char *scan[] = {"SCAN", cursor, "COUNT", KEYS_SCAN_COUNT};
        if (redis_command(k->c, &r, err, 4, scan) != 0)
            return -1;
        if (r.type == REDIS_REPLY_ERROR) {
            keys_refused(k, "SCAN", r.str, err);
            redis_reply_free(&r);
            return -1;
        }
        if (r.type != REDIS_REPLY_ARRAY || r.integer != 2 || r.element[0].type != REDIS_REPLY_BULK ||
            r.element[0].len >= sizeof cursor || r.element[1].type != REDIS_REPLY_ARRAY) {
            redis_reply_free(&r);
            return sv_error_set(err, SV_EXIT_FAILED, "redis at %s: an unexpected reply to SCAN",
                                redis_conn_endpoint(k->c));
        }
        memcpy(cursor, r.element[0].str, r.element[0].len + 1);
        rc = keys_batch(k, db, &r.element[1], err);
        redis_reply_free(&r);
        if (rc != 0)
            return -1;
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static int keys_dump(struct redis_source *rs, source_artifact *a, stream *out, sv_error *err)
{
    struct keys_run k = {.a = a, .out = out};
    if (!(k.c = connect_configured(rs, err)))
        return -1;
    int rc = -1;
    uint32_t *dbs = NULL;
    size_t n_dbs = 0;
    const char *argv[] = {"INFO", "keyspace"};
    redis_reply r;
    if (redis_command(k.c, &r, err, 2, argv) != 0)
        goto out;
    if (r.type != REDIS_REPLY_BULK) {
        keys_refused(&k, "INFO", r.str ? r.str : "an unexpected reply", err);
        redis_reply_free(&r);
        goto out;
    }
    n_dbs = keyspace_dbs(r.str, &dbs);
    redis_reply_free(&r);
    k.chunk = xmalloc(KEYS_CHUNK);
    redis_keys_writer_init(&k.w);
    unsigned char head[REDIS_KEYS_HEADER_LEN], end[REDIS_KEYS_END_LEN];
    redis_keys_header(&k.w, head);
    if (keys_write(&k, head, sizeof head, false, err) != 0)
        goto out;
    for (size_t i = 0; i < n_dbs; i++)
        if (keys_db(&k, dbs[i], err) != 0)
            goto out;
    redis_keys_end(&k.w, k.vanished, end);
    if (keys_write(&k, end, sizeof end, false, err) != 0)
        goto out;
    a->format_version = REDIS_KEYS_VERSION;
    a->items = (int64_t)k.w.keys;
    a->has_items = true;
    a->vanished = (int64_t)k.vanished;
    a->has_vanished = true;
    char size[32];
    log_with(LOG_INFO,
             LOG_FIELDS(LOG_STR("source", "redis"), LOG_STR("name", a->name), LOG_STR("mode", "keys"),
                        LOG_NUM("keys", (int64_t)k.w.keys), LOG_NUM("vanished", (int64_t)k.vanished),
                        LOG_NUM("databases", (int64_t)n_dbs)),
             "redis:%s: keys mode, NOT point-in-time: %llu key(s) from %zu database(s), %s of DUMP payloads; "
             "%llu key(s) vanished between SCAN and DUMP",
             a->name, (unsigned long long)k.w.keys, n_dbs,
             log_human_bytes(k.payload_bytes, size, sizeof size), (unsigned long long)k.vanished);
    rc = 0;
out:
    free(dbs);
    free(k.chunk);
    free(k.cmd);
    redis_close(k.c);
    return rc;
}

static int redis_dump(source *s, size_t i, stream *out, sv_error *err)
{
    struct redis_source *rs = s->impl;
    if (strcmp(rs->mode, "keys") == 0)
        return keys_dump(rs, &s->artifacts[i], out, err);
    return sync_dump(s, i, out, err);
}

static void redis_destroy(source *s)
{
    struct redis_source *rs = s->impl;
    redis_url_free(&rs->url);
    free_secret(rs->owned_url);
    free_secret(rs->owned_password);
    free(rs->owned_name);
    free(rs);
}

static const struct source_ops redis_source_ops = {
    .kind = "redis",
    .prepare = redis_prepare,
    .dump = redis_dump,
    .destroy = redis_destroy,
};

static source *source_of(const sv_config *cfg, const char *url, const char *name, const char *password,
                         const char *mode)
{
    struct redis_source *rs = xcalloc(1, sizeof *rs);
    rs->cfg = cfg;
    rs->url_text = url;
    rs->name = name;
    rs->password = password;
    rs->mode = mode;
    source *s = xcalloc(1, sizeof *s);
    s->ops = &redis_source_ops;
    s->impl = rs;
    return s;
}

size_t redis_sources_new(const sv_config *cfg, source **out, size_t cap)
{
    size_t n = 0;
    if (cfg->redis_url && *cfg->redis_url && n < cap)
        out[n++] = source_of(cfg, cfg->redis_url, cfg->redis_name, cfg->redis_password, cfg->redis_mode);
    for (size_t i = 0; i < cfg->n_redis_instances && n < cap; i++) {
        const sv_redis_instance *ri = &cfg->redis_instances[i];
        out[n] = source_of(cfg, ri->url, ri->name, ri->password, ri->mode);
        ((struct redis_source *)out[n++]->impl)->listed = true;
    }
    return n;
}

const sv_redis_instance *redis_instance_named(const sv_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_redis_instances; i++)
        if (strcmp(cfg->redis_instances[i].name, name) == 0)
            return &cfg->redis_instances[i];
    return NULL;
}

source *redis_source_at(const sv_config *cfg, const char *url, const char *name, const char *password,
                        const char *mode)
{
    source *s = source_of(cfg, NULL, NULL, NULL, strcmp(mode, "keys") == 0 ? "keys" : "sync");
    struct redis_source *rs = s->impl;
    rs->url_text = rs->owned_url = xstrdup(url);
    rs->name = rs->owned_name = xstrdup(name);
    rs->password = password ? (rs->owned_password = xstrdup(password)) : cfg->redis_password;
    return s;
}
