#include "restore/restore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backup/backup.h"
#include "cli/commands.h"
#include "common/log.h"
#include "common/mem.h"
#include "crypto/age.h"
#include "pipeline/progress.h"
#include "sources/postgres.h"

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

int restore_stream_artifact(storage *st, const sv_config *cfg, const catalog_set *set,
                            const manifest_artifact *a, stream *sink, sv_error *err)
{
    age_identities ids = {0};
    if (encrypted(a) && open_identities(cfg, set, a, &ids, err) != 0) {
        stream_abort(sink);
        stream_free(sink);
        return -1;
    }
    char *key = catalog_object_key(cfg->name, set->id, a->key);
    char *label = xasprintf("%s:%s", a->kind, a->name);
    /* a forged manifest may match a forged object, but then its bytes_in
     * still bounds what reaches the loader (a decompression bomb stops) */
    stream *unzstd = zstd_decompress_stage(limit_stage(sink, a->bytes_in, label));
    /* the digest is the stored bytes' (the ciphertext's): checked first */
    stream *plain = ids.n ? age_decrypt_stage(unzstd, &ids) : unzstd;
    stream *count = count_stage(plain);
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

static int confirm(const struct cli_args *args, const char *what, sv_error *err)
{
    if (args->yes)
        return 0;
    if (!isatty(STDIN_FILENO)) {
        sv_error_set(err, SV_EXIT_USAGE, "restore changes a database and needs confirmation");
        return sv_error_hint(err, "add --yes when running non-interactively (e.g. in a Job)");
    }
    fprintf(stderr, "%s\nType 'yes' to continue: ", what);
    char line[16] = "";
    if (!fgets(line, sizeof line, stdin) || strcmp(line, "yes\n") != 0) {
        sv_error_set(err, SV_EXIT_FAILED, "restore cancelled, nothing was changed");
        return -1;
    }
    return 0;
}

/* The tools that will load artifact a into a server of server_major, chosen
 * before anything changes: a restore that cannot load must not have
 * created, backed up or replaced anything first. */
static int loader_tools(const sv_config *cfg, const manifest_artifact *a, int server_major,
                        struct pg_tools *tools, sv_error *err)
{
    if (pg_loader_tools(cfg, server_major, a->tool_version, tools, err) != 0)
        return -1;
    log_with(LOG_INFO,
             LOG_FIELDS(LOG_STR("tools", tools->dir), LOG_STR("tools_version", tools->dump_version),
                        LOG_STR("artifact_tool_version", a->tool_version ? a->tool_version : ""),
                        LOG_NUM("server_major", server_major)),
             "%s from %s (PostgreSQL %d) loads %s:%s, written by %s, into a server of major %d",
             strcmp(a->format, "pg_dumpall-globals-sql") == 0 ? "psql" : "pg_restore", tools->dir,
             tools->major, a->kind, a->name, a->tool_version ? a->tool_version : "an unrecorded pg_dump",
             server_major);
    return 0;
}

/* Loads artifact a into database db of a server of server_major with
 * tools; the loader sees the artifact's end only after it verified. */
static int load(const sv_config *cfg, storage *st, const catalog_set *set, const manifest_artifact *a,
                const char *db, bool no_owner, const struct pg_tools *tools, int server_major, sv_error *err)
{
    stream *sink = NULL;
    pg_loader *l = pg_loader_start(cfg, a->format, db, no_owner, tools, server_major, &sink, err);
    if (!l)
        return -1;
    int rc = restore_stream_artifact(st, cfg, set, a, sink, err);
    sv_error lerr = {0};
    int lrc = pg_loader_finish(l, rc == 0, &lerr);
    if ((rc == 0 && lrc != 0) || lrc == 1) {
        /* the loader's own refusal, not a damaged artifact */
        *err = lerr;
        sv_error_wrap(err, "loading %s:%s into database %s failed%s", a->kind, a->name, db,
                      pg_loader_transactional(tools->major, server_major) ? ", nothing was committed" : "");
        if (strstr(err->msg, "role") && strstr(err->msg, "does not exist"))
            sv_error_hint(err, "restore postgres:globals first, or pass --no-owner");
        rc = -1;
    }
    return rc;
}

static int safety_backup(const sv_config *cfg, storage *st, const char *target, const char *from_set,
                         char *id_out, sv_error *err)
{
    sv_strlist dbs = {0};
    strlist_push(&dbs, target);
    char *note = xasprintf("database %s before restore --clean from set %s", target, from_set);
    struct backup_request req = {.reason = "safety", .note = note, .pg_databases = &dbs};
    struct backup_result res;
    int code = backup_run(cfg, st, &req, &res, err);
    if (code != SV_EXIT_OK) {
        if (code == SV_EXIT_PARTIAL)
            sv_error_set(err, SV_EXIT_FAILED, "the safety backup of %s failed: %s", target, res.failed);
        else
            sv_error_wrap(err, "the safety backup of database %s failed, nothing was changed", target);
        sv_error_hint(err, "fix the cause, or pass --no-safety-backup if a copy of %s is not needed", target);
        code = -1;
    } else {
        strcpy(id_out, res.set_id);
        code = 0;
    }
    backup_result_free(&res);
    free(note);
    strlist_free(&dbs);
    return code;
}

static int restore_database(const struct cli_args *args, const sv_config *cfg, storage *st,
                            const catalog_set *set, const manifest_artifact *a, const char *target,
                            sv_error *err)
{
    struct pg_target t;
    if (pg_target_inspect(cfg, target, &t, err) != 0)
        return -1;
    int rc = -1;
    char *scratch = NULL;
    struct pg_tools tools = {0};
    if (t.exists && !t.empty && !args->clean) {
        sv_error_set(err, SV_EXIT_FAILED, "database %s is not empty, nothing was changed", target);
        sv_error_hint(
            err, "use --clean to replace it (a safety backup is taken first), or --into another database");
        goto out;
    }
    if (loader_tools(cfg, a, t.server_major, &tools, err) != 0)
        goto out;
    bool one_transaction = pg_loader_transactional(tools.major, t.server_major);
    if (!one_transaction)
        log_info("pg_restore %d cannot load into a server of major %d in one transaction (it sets "
                 "transaction_timeout, which servers before 17 reject): it loads into a database dropped if "
                 "anything fails",
                 tools.major, t.server_major);
    if (!t.exists) {
        if (pg_create_database(cfg, target, NULL, NULL, err) != 0)
            goto out;
        if (load(cfg, st, set, a, target, args->no_owner, &tools, t.server_major, err) != 0) {
            sv_error derr = {0};
            if (pg_drop_database(cfg, target, false, &derr) != 0)
                log_warn("could not drop database %s created for the failed restore: %s", target, derr.msg);
            goto out;
        }
    } else if (t.empty && one_transaction) {
        /* pg_restore runs in one transaction: on failure the target stays empty */
        if (load(cfg, st, set, a, target, args->no_owner, &tools, t.server_major, err) != 0)
            goto out;
    } else {
        /* Not empty (--clean), or empty but loaded without one transaction:
         * into a scratch database, swapped in once complete. An empty
         * target needs no safety copy. */
        char safety[SET_ID_LEN + 1] = "";
        if (!t.empty && !args->no_safety_backup) {
            if (safety_backup(cfg, st, target, set->id, safety, err) != 0)
                goto out;
            log_info("safety backup of database %s stored as set %s/%s (reason safety)", target, cfg->name,
                     safety);
        }
        scratch = xasprintf("sauve_restore_%ld_%d", (long)time(NULL), (int)getpid());
        if (pg_create_database(cfg, scratch, target, t.owner, err) != 0)
            goto out;
        if (load(cfg, st, set, a, scratch, args->no_owner, &tools, t.server_major, err) != 0 ||
            pg_copy_database_properties(cfg, target, scratch, err) != 0) {
            sv_error derr = {0};
            pg_drop_database(cfg, scratch, false, &derr);
            goto out;
        }
        /* The restored copy is complete: only now is the target replaced. */
        if (pg_replace_database(cfg, target, scratch, args->clean && t.server_major >= 13, err) != 0) {
            sv_error_wrap(err, "restored copy is complete in database %s but could not replace %s", scratch,
                          target);
            goto out;
        }
    }
    rc = 0;
out:
    free(scratch);
    pg_tools_free(&tools);
    pg_target_free(&t);
    return rc;
}

void cmd_restore(const struct cli_args *args, const sv_config *cfg, struct outcome *out)
{
    sv_error err = {0};
    if (args->nargs != 1 || !strchr(args->args[0], ':')) {
        sv_error_set(&err, SV_EXIT_USAGE, "restore needs one spec: postgres:DATABASE or postgres:globals");
        outcome_fail(out, "usage error", &err);
        return;
    }
    const char *spec = args->args[0];
    size_t kind_len = (size_t)(strchr(spec, ':') - spec);
    const char *name = spec + kind_len + 1;
    if (kind_len != 8 || strncmp(spec, "postgres", 8) != 0 || !*name) {
        sv_error_set(&err, SV_EXIT_USAGE,
                     "cannot restore '%s': sources are postgres:DATABASE or postgres:globals", spec);
        outcome_fail(out, "usage error", &err);
        return;
    }
    if (args->into && strcmp(name, "globals") == 0) {
        sv_error_set(&err, SV_EXIT_USAGE,
                     "--into does not apply to postgres:globals (roles are cluster-wide)");
        outcome_fail(out, "usage error", &err);
        return;
    }
    storage *st = command_storage(cfg, "restore failed", out);
    if (!st)
        return;
    catalog cat = {0};
    const catalog_set *set = NULL;
    const manifest_artifact *a = NULL;
    const char *target = args->into ? args->into : name;
    if (catalog_load(st, cfg->name, &cat, &err) != 0 || !(set = catalog_pick(&cat, args->set, &err)))
        goto fail;
    a = catalog_usable_artifact(set, "postgres", name);
    if (!a && (!args->set || strcmp(args->set, "latest") == 0)) {
        /* last night's set may be partial with this very database failed,
         * or damaged since: "latest" then means the newest backup that
         * holds an intact copy */
        const catalog_set *newest = set;
        for (size_t i = 0; i < cat.n; i++) {
            const catalog_set *c = &cat.sets[i];
            const manifest_artifact *ca = catalog_usable_artifact(c, "postgres", name);
            if (ca && strcmp(c->m.reason, "safety") != 0) {
                set = c;
                a = ca;
                log_warn("the newest set %s/%s has no usable %s; restoring from %s, the newest that has it",
                         cfg->name, newest->id, spec, set->id);
                break;
            }
        }
    }
    if (!a) {
        char have[512] = "";
        size_t off = 0;
        for (size_t i = 0; i < set->m.n_artifacts && off < sizeof have; i++)
            if (catalog_usable_artifact(set, set->m.artifacts[i].kind, set->m.artifacts[i].name))
                off += (size_t)snprintf(have + off, sizeof have - off, "%s%s:%s", off ? ", " : "",
                                        set->m.artifacts[i].kind, set->m.artifacts[i].name);
        const manifest_artifact *named = manifest_find(&set->m, "postgres", name);
        if (named && named->ok && set->damaged) {
            sv_error_set(&err, SV_EXIT_FAILED, "%s in set %s/%s is damaged, nothing was changed: %s", spec,
                         cfg->name, set->id, set->damage);
            sv_error_hint(&err, "restore from another set: sauve list shows which are intact");
        } else {
            sv_error_set(&err, SV_EXIT_FAILED, "set %s/%s has no %s %s (it holds: %s)", cfg->name, set->id,
                         named ? "usable" : "artifact", spec, off ? have : "nothing restorable");
        }
        goto fail;
    }

    if (restore_check_identity(cfg, set, a, &err) != 0)
        goto fail;

    char *question = xasprintf("About to restore %s from set %s/%s into %s%s.", spec, cfg->name, set->id,
                               strcmp(name, "globals") == 0 ? "the cluster's roles" : "database ",
                               strcmp(name, "globals") == 0 ? "" : target);
    int crc = confirm(args, question, &err);
    free(question);
    if (crc != 0)
        goto fail;

    log_with(LOG_INFO,
             LOG_FIELDS(LOG_STR("set", set->id), LOG_STR("source", spec), LOG_STR("target", target)),
             "restoring %s from set %s/%s", spec, cfg->name, set->id);
    time_t t0 = time(NULL);
    int rc;
    if (strcmp(name, "globals") == 0) {
        struct pg_target t;
        struct pg_tools tools = {0};
        rc = pg_target_inspect(cfg, "postgres", &t, &err);
        if (rc == 0)
            rc = loader_tools(cfg, a, t.server_major, &tools, &err);
        if (rc == 0)
            rc = load(cfg, st, set, a, "postgres", false, &tools, t.server_major, &err);
        pg_tools_free(&tools);
        pg_target_free(&t);
    } else {
        rc = restore_database(args, cfg, st, set, a, target, &err);
    }
    if (rc != 0)
        goto fail;
    char human[32];
    outcome_set(out, SV_EXIT_OK, "restore ok: %s from set %s/%s into %s%s (%s) in %ld s", spec, cfg->name,
                set->id, strcmp(name, "globals") == 0 ? "the cluster" : "database ",
                strcmp(name, "globals") == 0 ? "" : target, log_human_bytes(a->bytes_in, human, sizeof human),
                (long)(time(NULL) - t0));
    catalog_free(&cat);
    storage_close(st);
    return;
fail:
    outcome_fail(out, err.code == SV_EXIT_USAGE ? "usage error" : "restore failed", &err);
    catalog_free(&cat);
    storage_close(st);
}
