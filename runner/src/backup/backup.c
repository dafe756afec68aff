#include "backup/backup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "crypto/age.h"
#include "pipeline/progress.h"
#include "pipeline/stream.h"
#include "sources/postgres.h"
#include "sources/files.h"
#include "sources/redis.h"
#include "sources/source.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int any_entry(void *ctx, const storage_entry *e)
{
    (void)e;
    *(bool *)ctx = true;
    return 1;
}

/*
 * The id of this run's set: its start time and a suffix (the milliseconds
 * and random digits), so that two runs of the series that start in the
 * same second (a manual Job beside the CronJob's) write to two sets, and
 * sets of one second still sort in start order; no listing can tell that
 * another run is using an id, since its objects stay invisible until their
 * uploads complete. An id already in use (a broken random generator) is
 * still refused, and another suffix drawn.
 */
/* started: one reading of the clock for the seconds and the milliseconds
 * alike (two readings could straddle a second, and a later run's id sort
 * before an earlier one's). */
static int choose_set_id(storage *st, const char *name, const struct timespec *started,
                         char out[SET_ID_LEN + 1], sv_error *err)
{
    for (int tries = 0; tries < 8; tries++) {
        set_id_new(started->tv_sec, (int)(started->tv_nsec / 1000000), out);
        char *prefix = xasprintf("%s/%s/", name, out);
        bool used = false;
        int rc = storage_list(st, prefix, false, any_entry, &used, err);
        free(prefix);
        if (rc != 0)
            return -1;
        if (!used)
            return 0;
        log_warn("set id %s/%s is already in use: drawing another", name, out);
    }
    return sv_error_set(err, SV_EXIT_FAILED, "no free set id for %s under %s/%s", out, storage_url(st), name);
}

struct written {
    char **keys;
    size_t n;
};

/* What remains under a set's prefix: objects and interrupted writes. */
struct leftovers {
    char **keys;
    size_t n;
    storage_upload *uploads; /* key and id copied */
    size_t nuploads;
};

static int collect_object(void *ctx, const storage_entry *e)
{
    struct leftovers *lo = ctx;
    if (!e->is_prefix) {
        lo->keys = xrealloc(lo->keys, (lo->n + 1) * sizeof *lo->keys);
        lo->keys[lo->n++] = xstrdup(e->key);
    }
    return 0;
}

static int collect_upload(void *ctx, const storage_upload *u)
{
    struct leftovers *lo = ctx;
    lo->uploads = xrealloc(lo->uploads, (lo->nuploads + 1) * sizeof *lo->uploads);
    lo->uploads[lo->nuploads++] =
        (storage_upload){.key = xstrdup(u->key), .id = xstrdup(u->id), .started = u->started};
    return 0;
}

static void leftovers_free(struct leftovers *lo)
{
    for (size_t i = 0; i < lo->n; i++)
        free(lo->keys[i]);
    for (size_t i = 0; i < lo->nuploads; i++) {
        free((char *)lo->uploads[i].key);
        free((char *)lo->uploads[i].id);
    }
    free(lo->keys);
    free(lo->uploads);
    memset(lo, 0, sizeof *lo);
}

/* Lists everything under prefix into lo; -1 with err when the storage fails. */
static int list_leftovers(storage *st, const char *prefix, struct leftovers *lo, sv_error *err)
{
    if (storage_list_uploads(st, prefix, collect_upload, lo, err) != 0 ||
        storage_list(st, prefix, true, collect_object, lo, err) != 0)
        return -1;
    return 0;
}

/* Removes what lo names: interrupted writes, then a manifest on its own (a
 * set must never look complete with objects gone), then the other objects.
 * Adds what went to *objects and *uploads. */
static void remove_leftovers(storage *st, const char *set_prefix, struct leftovers *lo, size_t *objects,
                             size_t *uploads)
{
    sv_error err = {0};
    for (size_t i = 0; i < lo->nuploads; i++) {
        if (storage_abort_upload(st, &lo->uploads[i], &err) == 0)
            ++*uploads;
        else
            log_warn("could not discard the interrupted write of %s: %s", lo->uploads[i].key, err.msg);
    }
    char *mkey = xasprintf("%s%s", set_prefix, MANIFEST_FILENAME);
    size_t rest = 0;
    bool manifest_gone = true;
    for (size_t i = 0; i < lo->n; i++) {
        if (strcmp(lo->keys[i], mkey) != 0) {
            lo->keys[rest++] = lo->keys[i];
            continue;
        }
        const char *one[] = {mkey};
        manifest_gone = storage_delete(st, one, 1, &err) == 0;
        if (manifest_gone)
            ++*objects;
        else
            log_warn("could not remove %s: %s", mkey, err.msg);
        free(lo->keys[i]);
    }
    lo->n = rest;
    if (manifest_gone && lo->n) {
        if (storage_delete(st, (const char *const *)lo->keys, lo->n, &err) == 0)
            *objects += lo->n;
        else
            log_warn("could not remove the objects of the aborted set: %s", err.msg);
    }
    free(mkey);
}

/*
 * Removes everything this run stored: every object and interrupted write
 * under its set's prefix, which no other run shares (set ids are unique
 * per run). Listing finds more than the keys this run knows it stored:
 * what a request cut short by the stop left behind (a PutObject or a
 * CompleteMultipartUpload that the store finished after sauve gave up on
 * its answer, a multipart upload whose creation answer never came). Each
 * round lists, then removes; a listing that finds nothing ends it.
 *
 * Runs while a stop request is held back (signals.h), so that after
 * SIGTERM it still goes out, and gives up SIGNALS_CLEANUP_S after it:
 * what is then left is an incomplete set, which prune removes after
 * SAUVE_PRUNE_GRACE. Writes one phrase for the summary into note.
 */
static void remove_run(storage *st, const char *set_prefix, const struct written *w, char *note, size_t len)
{
    signals_cleanup_begin(SIGNALS_CLEANUP_S);
    size_t objects = 0, uploads = 0, left = 0;
    bool checked = false;
    for (int round = 0;; round++) {
        struct leftovers lo = {0};
        sv_error err = {0};
        if (list_leftovers(st, set_prefix, &lo, &err) != 0) {
            log_warn("cannot list what the aborted set %s stored: %s", set_prefix, err.msg);
            leftovers_free(&lo);
            /* at least the objects this run knows it completed */
            for (size_t i = 0; round == 0 && i < w->n; i++)
                collect_object(&lo, &(storage_entry){.key = w->keys[i]});
            if (lo.n)
                remove_leftovers(st, set_prefix, &lo, &objects, &uploads);
            left = lo.n;
            leftovers_free(&lo);
            break;
        }
        left = lo.n + lo.nuploads;
        if (left == 0 || round == 3 || signals_stop_requested()) {
            checked = left == 0;
            leftovers_free(&lo);
            break;
        }
        remove_leftovers(st, set_prefix, &lo, &objects, &uploads);
        leftovers_free(&lo);
    }
    signals_cleanup_end();
    if (checked && objects + uploads == 0)
        snprintf(note, len, "it had stored nothing");
    else if (checked)
        snprintf(note, len, "what it had stored was removed (%zu object(s), %zu interrupted upload(s))",
                 objects, uploads);
    else
        snprintf(note, len,
                 "%zu object(s) or upload(s) of it may remain (%zu removed): prune removes them after "
                 "SAUVE_PRUNE_GRACE",
                 left, objects + uploads);
    log_with(checked ? LOG_INFO : LOG_WARN,
             LOG_FIELDS(LOG_STR("prefix", set_prefix), LOG_NUM("objects_removed", objects),
                        LOG_NUM("uploads_removed", uploads)),
             "aborted set %s: %s", set_prefix, note);
}

static void result_add(struct backup_result *res, const char *label, bool ok, uint64_t bytes_out,
                       const char *error)
{
    res->artifacts = xrealloc(res->artifacts, (res->n_artifacts + 1) * sizeof *res->artifacts);
    res->artifacts[res->n_artifacts++] = (struct backup_artifact_result){
        .source = xstrdup(label), .ok = ok, .bytes_out = bytes_out, .error = error ? xstrdup(error) : NULL};
}

void backup_result_free(struct backup_result *res)
{
    for (size_t i = 0; i < res->n_artifacts; i++) {
        free(res->artifacts[i].source);
        free(res->artifacts[i].error);
    }
    free(res->artifacts);
    res->artifacts = NULL;
    res->n_artifacts = 0;
}

static void result_add_artifact(struct backup_result *res, const source_artifact *a, bool ok,
                                uint64_t bytes_out, const char *error)
{
    char *label = xasprintf("%s:%s", a->kind, a->name);
    result_add(res, label, ok, bytes_out, error);
    free(label);
}

static void record_failure(manifest_artifact *ma, const source_artifact *a, const char *msg,
                           struct backup_result *res)
{
    ma->ok = false;
    ma->error = xstrdup(msg);
    res->n_failed++;
    result_add_artifact(res, a, false, 0, msg);
    size_t len = strlen(res->failed);
    snprintf(res->failed + len, sizeof res->failed - len, "%s%s:%s", len ? ", " : "", a->kind, a->name);
    log_with(LOG_ERROR, LOG_FIELDS(LOG_STR("source", a->kind), LOG_STR("name", a->name)), "%s:%s failed: %s",
             a->kind, a->name, msg);
}

/* Streams one artifact into storage; fills ma. Returns 0 when stored. */
static int store_artifact(const sv_config *cfg, storage *st, source *src, size_t i, const char *set_prefix,
                          const age_recipients *rcpt, manifest_artifact *ma, struct written *w, sv_error *err)
{
    const source_artifact *a = &src->artifacts[i];
    ma->key = xasprintf("%s.zst%s", a->key, rcpt->n ? ".age" : "");
    char *key = xasprintf("%s%s", set_prefix, ma->key);
    char *label = xasprintf("%s:%s", a->kind, a->name);
    double t0 = now_seconds();
    int rc = -1;

    stream *sink = storage_write(st, key, err);
    if (!sink)
        goto out;
    stream *out_count = count_stage(sink);
    stream *sha = sha256_stage(out_count);
    /* encrypted after compression (ciphertext does not compress); the
     * manifest's digest is the stored ciphertext's, checkable without a key */
    stream *sealed = rcpt->n ? age_encrypt_stage(sha, rcpt) : sha;
    struct zstd_options zo = {.level = (int)cfg->zstd_level, .workers = (int)cfg->zstd_workers};
    stream *zstd = zstd_compress_stage(sealed, &zo);
    stream *in_count = count_stage(zstd);
    stream *head = progress_stage(in_count, label, (int)cfg->progress_interval);

    log_with(LOG_INFO, LOG_FIELDS(LOG_STR("source", a->kind), LOG_STR("name", a->name), LOG_STR("key", key)),
             "%s: dumping into %s", label, key);
    if (src->ops->dump(src, i, head, err) == 0 && stream_finish(head, err) == 0) {
        rc = 0;
        ma->bytes_in = count_stage_bytes(in_count);
        ma->bytes_out = count_stage_bytes(out_count);
        sha256_stage_hex(sha, ma->sha256);
        w->keys = xrealloc(w->keys, (w->n + 1) * sizeof *w->keys);
        w->keys[w->n++] = xstrdup(key);
    } else {
        stream_abort(head);
    }
    stream_free(head);
out:
    ma->duration_s = now_seconds() - t0;
    if (rc == 0) {
        char in[32], outb[32];
        log_with(LOG_INFO,
                 LOG_FIELDS(LOG_STR("source", a->kind), LOG_STR("name", a->name),
                            LOG_NUM("bytes_in", ma->bytes_in), LOG_NUM("bytes_out", ma->bytes_out),
                            LOG_STR("sha256", ma->sha256)),
                 "%s: stored %s (%s before compression) in %.1f s", label,
                 log_human_bytes(ma->bytes_out, outb, sizeof outb),
                 log_human_bytes(ma->bytes_in, in, sizeof in), ma->duration_s);
    }
    free(key);
    free(label);
    return rc;
}

/*
 * Writes the manifest, the act that commits the set. What is written is
 * first read back as a reader will read it, so that a set whose manifest
 * no reader accepts is never committed. A manifest already there means
 * that the set is another run's (*foreign: the caller must remove
 * nothing); a write that fails removes the manifest at once, before the
 * caller removes the artifacts, so that nothing is ever left looking
 * complete.
 */
static int commit_manifest(storage *st, const manifest *m, const char *set_prefix, bool *foreign,
                           sv_error *err)
{
    char *json = manifest_to_json(m);
    char *mkey = xasprintf("%s%s", set_prefix, MANIFEST_FILENAME);
    manifest check = {0};
    storage_entry existing;
    int rc = -1, stat_rc;
    *foreign = false;
    if (manifest_from_json(json, strlen(json), &check, err) != 0) {
        sv_error_wrap(err, "the manifest of set %s would not be readable", m->id);
    } else if ((stat_rc = storage_stat(st, mkey, &existing, err)) == 0) {
        sv_error_set(err, SV_EXIT_FAILED, "set %s already has a manifest: another run used the same set id",
                     m->id);
        sv_error_hint(err, "give each CronJob sharing a bucket its own SAUVE_NAME");
        /* the other run's manifest names these keys too: leave them */
        *foreign = true;
    } else if (stat_rc < 0) {
        /* The store could not tell (an outage, or a stop request cut the
         * call short): nothing says another run owns this set, and set ids
         * are unique per run, so the caller removes what this run stored. */
        sv_error_wrap(err, "cannot check that set %s has no manifest yet", m->id);
    } else if (storage_put(st, mkey, json, strlen(json), err) == 0) {
        rc = 0;
    } else {
        sv_error_wrap(err, "cannot write the manifest of set %s", m->id);
        sv_error ignored = {0};
        const char *keys[] = {mkey};
        storage_delete(st, keys, 1, &ignored);
    }
    manifest_free(&check);
    free(json);
    free(mkey);
    return rc;
}

int backup_run(const sv_config *cfg, storage *st, const struct backup_request *req, struct backup_result *res,
               sv_error *err)
{
    memset(res, 0, sizeof *res);
    double t0 = now_seconds();
    age_recipients rcpt;
    if (age_recipients_load(cfg, &rcpt, err) != 0)
        return err->code;
    if (rcpt.n && cfg->age_identity_file && *cfg->age_identity_file)
        log_warn(
            "SAUVE_AGE_IDENTITY_FILE is set for a backup, which never needs it: keep the identity out of "
            "the backup Job, in restore Jobs only, or whoever holds the cluster can read every backup");
    if (storage_check(st, err) != 0) {
        age_recipients_free(&rcpt);
        return err->code;
    }

    /* PostgreSQL, SAUVE_REDIS_URL's and each named Redis, the directories */
    source *sources[1 + 1 + SV_REDIS_INSTANCES_MAX + 1];
    size_t nsources = 0;
    if (req->only)
        sources[nsources++] = req->only;
    else {
        if (pg_configured(cfg))
            sources[nsources++] = pg_source_new(cfg, NULL, cfg->pg_globals);
        nsources += redis_sources_new(cfg, sources + nsources, sizeof sources / sizeof *sources - nsources);
        if (files_configured(cfg))
            sources[nsources++] = files_source_new(cfg);
    }
    if (nsources == 0) {
        sv_error_set(err, SV_EXIT_CONFIG, "nothing to back up: no source is configured");
        sv_error_hint(
            err, "set SAUVE_PG_DATABASES (a list, or 'all') or PGDATABASE, SAUVE_REDIS_URL or SAUVE_FILES");
        age_recipients_free(&rcpt);
        return err->code;
    }

    int code = SV_EXIT_FAILED;
    size_t primary_ok = 0;
    /* primary dumps that failed: [0] for any reason, [1] for a configuration
     * error (a missing permission found only when the dump started) */
    size_t dump_codes[2] = {0, 0};
    manifest m = {0};
    struct written w = {0};
    char *set_prefix = NULL;

    /* Preflight every source before writing anything, so that an unreachable
     * database or a configuration mistake fails fast with its own exit code. */
    for (size_t s = 0; s < nsources; s++) {
        if (sources[s]->ops->prepare(sources[s], err) != 0) {
            result_add(res, sources[s]->ops->kind, false, 0, err->msg);
            code = err->code;
            goto out;
        }
    }
    /* Roles alone are no backup: a set is worth committing only when a
     * database or a Redis (a primary artifact) can be dumped. */
    bool any_dumpable = false;
    int first_code = 0;
    for (size_t s = 0; s < nsources; s++)
        for (size_t i = 0; i < sources[s]->n_artifacts; i++) {
            const source_artifact *a = &sources[s]->artifacts[i];
            if (!a->error && !a->auxiliary)
                any_dumpable = true;
            else if (a->error && !first_code)
                first_code = a->err_code;
        }
    if (!any_dumpable) {
        for (size_t s = 0; s < nsources; s++)
            for (size_t i = 0; i < sources[s]->n_artifacts; i++)
                result_add_artifact(res, &sources[s]->artifacts[i], false, 0, sources[s]->artifacts[i].error);
        /* the first that failed says why: the globals, listed first, do not fail here */
        const source_artifact *a = NULL;
        for (size_t s = 0; s < nsources && !a; s++)
            for (size_t i = 0; i < sources[s]->n_artifacts && !a; i++)
                if (sources[s]->artifacts[i].error)
                    a = &sources[s]->artifacts[i];
        sv_error_set(err, first_code ? first_code : SV_EXIT_FAILED, "nothing could be backed up%s%s",
                     a ? ": " : "", a ? a->error : "");
        code = err->code;
        goto out;
    }

    struct timespec started;
    clock_gettime(CLOCK_REALTIME, &started);
    m.started = started.tv_sec;
    if (choose_set_id(st, cfg->name, &started, m.id, err) != 0) {
        code = err->code; /* nothing written yet: storage unreachable is temporary */
        goto out;
    }
    set_prefix = xasprintf("%s/%s/", cfg->name, m.id);
    m.format = MANIFEST_FORMAT;
    m.name = xstrdup(cfg->name);
    m.reason = xstrdup(req->reason ? req->reason : "backup");
    m.note = req->note ? xstrdup(req->note) : NULL;
    m.sauve_version = xstrdup(SAUVE_VERSION);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    m.hostname = xstrdup(host);
    log_with(LOG_INFO, LOG_FIELDS(LOG_STR("set", m.id), LOG_STR("storage", storage_url(st))),
             "backup set %s/%s started (%s) in %s", cfg->name, m.id, m.reason, storage_url(st));

    for (size_t s = 0; s < nsources; s++) {
        source *src = sources[s];
        for (size_t i = 0; i < src->n_artifacts; i++) {
            source_artifact *a = &src->artifacts[i];
            manifest_artifact *ma = manifest_add(&m);
            ma->kind = xstrdup(a->kind);
            ma->name = xstrdup(a->name);
            ma->format = xstrdup(a->format);
            ma->compression = xstrdup("zstd");
            ma->server_version = src->info.server_version ? xstrdup(src->info.server_version) : NULL;
            ma->endpoint = src->info.endpoint ? xstrdup(src->info.endpoint) : NULL;
            if (a->error) {
                record_failure(ma, a, a->error, res);
                continue;
            }
            bool globals = strcmp(a->name, "globals") == 0 && strcmp(a->format, "pg_dump-custom") != 0;
            ma->tool = xstrdup(globals ? "pg_dumpall" : (src->info.tool ? src->info.tool : a->kind));
            ma->tool_version = src->info.tool_version ? xstrdup(src->info.tool_version) : NULL;
            sv_error aerr = {0};
            for (size_t r = 0; r < rcpt.n; r++) {
                ma->recipients = xrealloc(ma->recipients, (r + 1) * sizeof *ma->recipients);
                ma->recipients[ma->n_recipients++] = xstrdup(rcpt.items[r].text);
            }
            int stored = store_artifact(cfg, st, src, i, set_prefix, &rcpt, ma, &w, &aerr);
            /* what the source learnt while dumping (the RDB version) too */
            ma->mode = a->mode ? xstrdup(a->mode) : NULL;
            ma->format_version = a->format_version;
            ma->items = a->items;
            ma->has_items = a->has_items;
            for (size_t k = 0; k < a->n_warnings; k++) {
                ma->warnings = xrealloc(ma->warnings, (k + 1) * sizeof *ma->warnings);
                ma->warnings[ma->n_warnings++] = xstrdup(a->warnings[k]);
            }
            /* the row counts move over: they can be large */
            ma->row_counts = a->row_counts;
            memset(&a->row_counts, 0, sizeof a->row_counts);
            ma->vanished = a->vanished;
            ma->has_vanished = a->has_vanished;
            if (stored == 0) {
                ma->ok = true;
                res->n_ok++;
                primary_ok += !a->auxiliary;
                result_add_artifact(res, a, true, ma->bytes_out, NULL);
                res->bytes_in += ma->bytes_in;
                res->bytes_out += ma->bytes_out;
            } else {
                free(ma->key);
                ma->key = NULL;
                /* the hint is what the operator needs (which permission, which limit) */
                char *why =
                    aerr.hint[0] ? xasprintf("%s (hint: %s)", aerr.msg, aerr.hint) : xstrdup(aerr.msg);
                record_failure(ma, a, why, res);
                free(why);
                if (!a->auxiliary)
                    dump_codes[aerr.code == SV_EXIT_CONFIG]++;
            }
            sv_error stop = {0};
            if (signals_check(&stop) != 0) {
                char note[256];
                remove_run(st, set_prefix, &w, note, sizeof note);
                sv_error_set(err, SV_EXIT_FAILED, "%s: set %s/%s not committed; %s", stop.msg, cfg->name,
                             m.id, note);
                code = SV_EXIT_FAILED;
                goto out;
            }
        }
    }

    if (primary_ok == 0) {
        char note[256];
        remove_run(st, set_prefix, &w, note, sizeof note);
        /* Every dump refused for its configuration (a Redis user without
         * +psync): retrying cannot help, so the code says configuration */
        code = dump_codes[1] && !dump_codes[0] ? SV_EXIT_CONFIG : SV_EXIT_FAILED;
        sv_error_set(err, code, "nothing was backed up, set %s/%s not committed (failed: %s)", cfg->name,
                     m.id, res->failed);
        goto out;
    }

    /* the clock that gave started: time() reads a coarser one, which can
     * still show the second before it */
    struct timespec finished;
    clock_gettime(CLOCK_REALTIME, &finished);
    m.finished = finished.tv_sec;
    manifest_update_status(&m);
    bool foreign;
    if (commit_manifest(st, &m, set_prefix, &foreign, err) != 0) {
        if (!foreign) {
            sv_error saved = *err; /* a stop during the commit: its cause stays the message */
            char note[256];
            remove_run(st, set_prefix, &w, note, sizeof note);
            *err = saved;
        }
        code = SV_EXIT_FAILED;
        goto out;
    }
    res->committed = true;
    memcpy(res->set_id, m.id, sizeof m.id);
    code = res->n_failed ? SV_EXIT_PARTIAL : SV_EXIT_OK;

out:
    /* Stopped (SIGTERM, SIGINT) before a set was committed: a failure (1),
     * whatever the step cut short reported (a dump killed, a connection
     * closed, 75 for a storage call given up). */
    if (!res->committed && code != SV_EXIT_OK && code != SV_EXIT_PARTIAL && signals_stop_requested()) {
        sv_error stop = {0};
        signals_check(&stop);
        if (!strstr(err->msg, stop.msg))
            sv_error_wrap(err, "%s", stop.msg);
        code = err->code = SV_EXIT_FAILED;
    }
    res->seconds = now_seconds() - t0;
    for (size_t s = 0; s < nsources; s++)
        if (sources[s] != req->only)
            source_free(sources[s]);
    for (size_t i = 0; i < w.n; i++)
        free(w.keys[i]);
    free(w.keys);
    free(set_prefix);
    manifest_free(&m);
    age_recipients_free(&rcpt);
    return code;
}
