#include "restore/restore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backup/backup.h"
#include "common/log.h"
#include "common/mem.h"
#include "crypto/age.h"
#include "pipeline/progress.h"

int restore_parse(const struct restore_request *req, struct restore_spec *spec, sv_error *err)
{
    memset(spec, 0, sizeof *spec);
    const char *colon = req->spec ? strchr(req->spec, ':') : NULL;
    if (!colon || !colon[1] || !(spec->ops = loader_find(req->spec, (size_t)(colon - req->spec)))) {
        char *forms = loader_forms();
        if (!colon)
            sv_error_set(err, SV_EXIT_USAGE, "restore needs one spec: %s", forms);
        else
            sv_error_set(err, SV_EXIT_USAGE, "cannot restore '%s': sources are %s", req->spec, forms);
        free(forms);
        return -1;
    }
    spec->text = req->spec;
    spec->name = colon + 1;
    return spec->ops->check(spec->name, &req->load, err);
}

static bool encrypted(const manifest_artifact *a)
{
    size_t n = strlen(a->key);
    return a->n_recipients > 0 || (n > 4 && strcmp(a->key + n - 4, ".age") == 0);
}

/* "age1..., age1..." (or a phrase when the manifest names none). */
static char *recipients_text(const manifest_artifact *a)
{
    if (a->n_recipients == 0)
        return xstrdup("recipients the manifest does not name");
    size_t len = 1;
    for (size_t i = 0; i < a->n_recipients; i++)
        len += strlen(a->recipients[i]) + 2;
    char *out = xcalloc(1, len);
    for (size_t i = 0; i < a->n_recipients; i++) {
        if (i)
            strcat(out, ", ");
        strcat(out, a->recipients[i]);
    }
    return out;
}

/* The identities that open encrypted artifact a (of set), or a
 * configuration error naming the recipients it was encrypted to. */
static int open_identities(const sv_config *cfg, const catalog_set *set, const manifest_artifact *a,
                           age_identities *ids, sv_error *err)
{
    char *rcpt = recipients_text(a);
    int rc = -1;
    if (!cfg->age_identity_file || !*cfg->age_identity_file) {
        sv_error_set(err, SV_EXIT_CONFIG, "%s:%s of set %s is encrypted to %s, and no identity is configured",
                     a->kind, a->name, set->id, rcpt);
        sv_error_hint(err, "set SAUVE_AGE_IDENTITY_FILE to the age identity file of one of them (the restore "
                           "Job's own Secret)");
    } else if (age_identities_load(cfg->age_identity_file, ids, err) == 0) {
        if (a->n_recipients == 0 || age_identities_open_any(ids, a->recipients, a->n_recipients)) {
            rc = 0;
        } else {
            char held[512] = "";
            size_t off = 0;
            for (size_t i = 0; i < ids->n && off < sizeof held; i++)
                off += (size_t)snprintf(held + off, sizeof held - off, "%s%s", i ? ", " : "",
                                        ids->items[i].recipient.text);
            sv_error_set(err, SV_EXIT_CONFIG,
                         "SAUVE_AGE_IDENTITY_FILE %s opens %s, but %s:%s of set %s is encrypted to %s",
                         cfg->age_identity_file, held, a->kind, a->name, set->id, rcpt);
            sv_error_hint(err, "use the identity of one of the recipients the set names (sauve list shows "
                               "them for every set)");
            age_identities_free(ids);
        }
    }
    free(rcpt);
    return rc;
}

int restore_check_identity(const sv_config *cfg, const catalog_set *set, const manifest_artifact *a,
                           sv_error *err)
{
    if (!encrypted(a))
        return 0;
    age_identities ids;
    if (open_identities(cfg, set, a, &ids, err) != 0)
        return -1;
    age_identities_free(&ids);
    return 0;
}

int restore_read_artifact(storage *st, const sv_config *cfg, const catalog_set *set,
                          const manifest_artifact *a, enum artifact_depth depth, stream *sink, sv_error *err)
{
    age_identities ids = {0};
    if (depth == ARTIFACT_CONTENT && encrypted(a) && open_identities(cfg, set, a, &ids, err) != 0) {
        stream_abort(sink);
        stream_free(sink);
        return -1;
    }
    char *key = catalog_object_key(cfg->name, set->id, a->key);
    char *label = xasprintf("%s:%s", a->kind, a->name);
    stream *stored = sink;
    if (depth == ARTIFACT_CONTENT) {
        /* a forged manifest may match a forged object, but then its bytes_in
         * still bounds what reaches the loader (a decompression bomb stops) */
        stream *unzstd = zstd_decompress_stage(limit_stage(sink, a->bytes_in, label));
        /* the digest is the stored bytes' (the ciphertext's): checked first */
        stored = ids.n ? age_decrypt_stage(unzstd, &ids) : unzstd;
    }
    stream *count = count_stage(stored);
    stream *head = progress_stage(sha256_expect_stage(count, a->sha256, a->bytes_out), label,
                                  (int)cfg->progress_interval);
    int rc = storage_read(st, key, head, err);
    if (rc == 0)
        rc = stream_finish(head, err);
    if (rc != 0) {
        stream_abort(head);
        if (strstr(err->msg, key))
            sv_error_wrap(err, "artifact of set %s is unusable", set->id);
        else
            sv_error_wrap(err, "artifact %s is unusable", key);
    }
    stream_free(head);
    age_identities_free(&ids);
    free(label);
    free(key);
    return rc;
}

int restore_stream_artifact(storage *st, const sv_config *cfg, const catalog_set *set,
                            const manifest_artifact *a, stream *sink, sv_error *err)
{
    return restore_read_artifact(st, cfg, set, a, ARTIFACT_CONTENT, sink, err);
}

/*
 * Whoever runs a restore says so: by typing on a terminal, by a flag in a
 * Job. Replacing data (--clean) takes more than a habit: the target named
 * again (--confirm TARGET, or typed at the prompt), so that a `--yes` copied
 * from a harmless restore into a new scratch database cannot wipe a live one.
 */
static int confirm(const struct restore_request *req, const loader *l, const char *question, sv_error *err)
{
    bool replaces = req->load.clean;
    if (req->confirm) {
        if (strcmp(req->confirm, l->target) == 0)
            return 0;
        sv_error_set(err, SV_EXIT_USAGE,
                     "--confirm %s does not name the target of this restore, %s; nothing was changed",
                     req->confirm, l->target);
        return -1;
    }
    if (req->yes && !replaces)
        return 0;
    if (!isatty(STDIN_FILENO)) {
        if (replaces) {
            sv_error_set(err, SV_EXIT_USAGE, "restore --clean replaces %s and needs its name typed again",
                         l->changes);
            return sv_error_hint(err, "add --confirm %s (--yes alone does not replace data)", l->target);
        }
        sv_error_set(err, SV_EXIT_USAGE, "restore changes %s and needs confirmation", l->changes);
        return sv_error_hint(err, "add --yes when running non-interactively (e.g. in a Job)");
    }
    const char *expected = replaces ? l->target : "yes";
    if (replaces)
        fprintf(stderr, "%s\nIts current content is replaced. Type its name (%s) to continue: ", question,
                l->target);
    else
        fprintf(stderr, "%s\nType 'yes' to continue: ", question);
    char line[1024] = "";
    if (!fgets(line, sizeof line, stdin)) {
        sv_error_set(err, SV_EXIT_FAILED, "restore cancelled, nothing was changed");
        return -1;
    }
    line[strcspn(line, "\n")] = '\0';
    if (strcmp(line, expected) != 0) {
        sv_error_set(err, SV_EXIT_FAILED, "restore cancelled, nothing was changed");
        return -1;
    }
    return 0;
}

/*
 * The set and the artifact of spec in it, stored and intact: the set asked
 * for; for "latest", when the newest set has no usable copy (last night's
 * set may be partial with this very source failed, or damaged since), the
 * newest complete backup that holds an intact one.
 */
static int pick(const sv_config *cfg, const catalog *cat, const struct restore_spec *spec, const char *which,
                const catalog_set **set_out, const manifest_artifact **a_out, sv_error *err)
{
    const catalog_set *set = catalog_pick(cat, which, err);
    if (!set)
        return -1;
    const char *kind = spec->ops->kind;
    const manifest_artifact *a = catalog_usable_artifact(set, kind, spec->name);
    if (!a && (!which || strcmp(which, "latest") == 0)) {
        const catalog_set *newest = set;
        for (size_t i = 0; i < cat->n; i++) {
            const catalog_set *c = &cat->sets[i];
            const manifest_artifact *ca = catalog_usable_artifact(c, kind, spec->name);
            if (ca && strcmp(c->m.reason, "safety") != 0) {
                set = c;
                a = ca;
                log_warn("the newest set %s/%s has no usable %s; restoring from %s, the newest that has it",
                         cfg->name, newest->id, spec->text, set->id);
                break;
            }
        }
    }
    if (!a) {
        const manifest_artifact *named = manifest_find(&set->m, kind, spec->name);
        if (named && named->ok && set->damaged) {
            sv_error_set(err, SV_EXIT_FAILED, "%s in set %s/%s is damaged, nothing was changed: %s",
                         spec->text, cfg->name, set->id, set->damage);
            return sv_error_hint(err, "restore from another set: sauve list shows which are intact");
        }
        char have[512] = "";
        size_t off = 0;
        for (size_t i = 0; i < set->m.n_artifacts && off < sizeof have; i++)
            if (catalog_usable_artifact(set, set->m.artifacts[i].kind, set->m.artifacts[i].name))
                off += (size_t)snprintf(have + off, sizeof have - off, "%s%s:%s", off ? ", " : "",
                                        set->m.artifacts[i].kind, set->m.artifacts[i].name);
        return sv_error_set(err, SV_EXIT_FAILED, "set %s/%s has no %s %s (it holds: %s)", cfg->name, set->id,
                            named ? "usable" : "artifact", spec->text, off ? have : "nothing restorable");
    }
    *set_out = set;
    *a_out = a;
    return 0;
}

/* Backs up the loader's target as it is now, into a set of reason
 * "safety" that latest never picks; its id into id_out. */
static int safety_backup(const sv_config *cfg, storage *st, loader *l, const char *from_set, char *id_out,
                         sv_error *err)
{
    source *src = l->ops->safety_source(l);
    char *note = xasprintf("%s before restore --clean from set %s", l->what, from_set);
    struct backup_request req = {.reason = "safety", .note = note, .only = src};
    struct backup_result res;
    int code = backup_run(cfg, st, &req, &res, err);
    if (code != SV_EXIT_OK) {
        if (code == SV_EXIT_PARTIAL)
            sv_error_set(err, SV_EXIT_FAILED, "the safety backup of %s failed: %s", l->target, res.failed);
        else
            sv_error_wrap(err, "the safety backup of %s failed, nothing was changed", l->what);
        sv_error_hint(err, "fix the cause, or pass --no-safety-backup if a copy of %s is not needed",
                      l->target);
        code = -1;
    } else {
        strcpy(id_out, res.set_id);
        code = 0;
    }
    backup_result_free(&res);
    source_free(src);
    free(note);
    return code;
}

/* Inspects, backs up what is replaced, then streams the artifact into the
 * loader; the loader's own failure, when it is the cause, is the error. */
static int load(const sv_config *cfg, storage *st, const struct restore_request *req, loader *l,
                const catalog_set *set, const manifest_artifact *a, struct restore_result *res, sv_error *err)
{
    bool replaces = false;
    if (l->ops->inspect(l, a, &replaces, err) != 0)
        return -1;
    if (replaces && !req->no_safety_backup) {
        char safety[SET_ID_LEN + 1] = "";
        if (safety_backup(cfg, st, l, set->id, safety, err) != 0)
            return -1;
        log_info("safety backup of %s stored as set %s/%s (reason safety)", l->what, cfg->name, safety);
    }
    stream *sink = NULL;
    if (l->ops->start(l, &sink, err) != 0)
        return -1;
    res->target_started = true;
    int rc = restore_stream_artifact(st, cfg, set, a, sink, err);
    sv_error lerr = {0};
    int lrc = l->ops->finish(l, rc == 0, &lerr);
    if (sv_error_isset(&lerr))
        *err = lerr;
    else if (rc != 0)
        res->artifact_failed = true;
    return rc == 0 && lrc == 0 ? 0 : -1;
}

int restore_run(const sv_config *cfg, storage *st, const struct restore_spec *spec,
                const struct restore_request *req, struct restore_result *res, sv_error *err)
{
    memset(res, 0, sizeof *res);
    catalog cat = {0};
    const catalog_set *set = NULL;
    const manifest_artifact *a = NULL;
    loader *l = NULL;
    int rc = -1;
    if (catalog_load(st, cfg->name, &cat, err) != 0 || pick(cfg, &cat, spec, req->set, &set, &a, err) != 0 ||
        restore_check_identity(cfg, set, a, err) != 0)
        goto out;
    l = spec->ops->open(cfg, spec->name, &req->load);
    char *question =
        xasprintf("About to restore %s from set %s/%s into %s.", spec->text, cfg->name, set->id, l->changes);
    int crc = confirm(req, l, question, err);
    free(question);
    if (crc != 0)
        goto out;

    log_with(LOG_INFO,
             LOG_FIELDS(LOG_STR("set", set->id), LOG_STR("source", spec->text), LOG_STR("target", l->target)),
             "restoring %s from set %s/%s", spec->text, cfg->name, set->id);
    time_t t0 = time(NULL);
    if (load(cfg, st, req, l, set, a, res, err) != 0)
        goto out;
    memcpy(res->set_id, set->id, sizeof res->set_id);
    res->what = xstrdup(l->what);
    res->bytes_in = a->bytes_in;
    res->seconds = (long)(time(NULL) - t0);
    rc = 0;
out:
    loader_free(l);
    catalog_free(&cat);
    return rc;
}

void restore_result_free(struct restore_result *res)
{
    free(res->what);
    res->what = NULL;
}
