/* sauve verify: the sets read back from storage and checked (verify/),
 * reported per artifact on stdout (text, or JSON with --json). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "common/mem.h"
#include "common/text.h"
#include "notify/notify.h"
#include "storage/storage.h"
#include "verify/verify.h"

static void print_text(const struct verify_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct verify_set *vs = &r->sets[i];
        printf("%s  %s\n", vs->id, vs->ok ? "ok" : "FAILED");
        for (size_t j = 0; j < vs->n; j++) {
            const struct verify_artifact *va = &vs->artifacts[j];
            /* names and messages come from a manifest or a server: escaped */
            char *src = text_escape(va->source), *detail = text_escape(va->detail);
            printf("  %-6s %-28s %s%s\n", va->ok ? "ok" : "FAILED", src,
                   va->ok && !va->content ? "(integrity only) " : "", detail);
            free(src);
            free(detail);
        }
    }
}

static void print_json(const struct verify_report *r)
{
    json_t *root = json_object();
    json_object_set_new(root, "ok", json_boolean(r->ok));
    json_t *sets = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const struct verify_set *vs = &r->sets[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(vs->id));
        json_object_set_new(o, "ok", json_boolean(vs->ok));
        json_t *arts = json_array();
        for (size_t j = 0; j < vs->n; j++) {
            const struct verify_artifact *va = &vs->artifacts[j];
            json_t *a = json_object();
            json_object_set_new(a, "source", json_string(va->source));
            json_object_set_new(a, "key", va->key ? json_string(va->key) : json_null());
            json_object_set_new(a, "ok", json_boolean(va->ok));
            json_object_set_new(a, "checked", json_string(va->content ? "content" : "integrity"));
            json_object_set_new(a, "detail", json_string(va->detail));
            json_array_append_new(arts, a);
        }
        json_object_set_new(o, "artifacts", arts);
        json_array_append_new(sets, o);
    }
    json_object_set_new(root, "sets", sets);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    puts(text);
    free(text);
    json_decref(root);
}

/* The metrics (job sauve-verify) and the webhook; a failed notification
 * after a good verify is exit 3, as after a good backup. */
static void notify_end(notifier *nt, const sv_config *cfg, const struct verify_report *r, bool ran,
                       struct outcome *out)
{
    struct notify_run run = {.name = cfg->name,
                             .set_id = ran && r->n == 1 ? r->sets[0].id : NULL,
                             .exit_code = out->code,
                             .backup_ok = ran && r->ok && out->code == SV_EXIT_OK,
                             .summary = out->summary,
                             .sets_total = -1};
    outcome_notify(out, nt, &run);
    notify_free(nt);
}

void cmd_verify(const struct cli_args *args, const sv_config *cfg, struct outcome *out)
{
    notifier *nt = notify_start(cfg, NOTIFY_VERIFY);
    struct verify_report r = {0};
    storage *st = command_storage(cfg, "verify failed", out);
    if (!st) {
        notify_end(nt, cfg, &r, false, out);
        return;
    }
    sv_error err = {0};
    bool ran = verify_run(cfg, st, args->set, &r, &err) == 0;
    if (!ran) {
        outcome_fail(out, "verify failed", &err);
    } else {
        if (args->json)
            print_json(&r);
        else
            print_text(&r);
        if (r.ok) {
            outcome_set(
                out, SV_EXIT_OK,
                "verify ok: %zu set(s) of '%s', %zu artifact(s): %zu read whole, %zu for integrity only", r.n,
                cfg->name, r.artifacts_checked, r.content_checked, r.artifacts_checked - r.content_checked);
        } else {
            const struct verify_artifact *first = NULL;
            const char *first_set = NULL;
            for (size_t i = 0; i < r.n && !first; i++)
                for (size_t j = 0; j < r.sets[i].n && !first; j++)
                    if (!r.sets[i].artifacts[j].ok) {
                        first = &r.sets[i].artifacts[j];
                        first_set = r.sets[i].id;
                    }
            outcome_set(out, SV_EXIT_VERIFY,
                        "verify failed: %zu of %zu artifact(s) do not verify; first: set %s/%s %s: %s",
                        r.artifacts_failed, r.artifacts_checked, cfg->name, first_set, first->source,
                        first->detail);
        }
        size_t unstored = verify_record(cfg, st, &r);
        if (unstored)
            outcome_append(out, "; %zu verify record(s) not stored beside their set", unstored);
    }
    notify_end(nt, cfg, &r, ran, out);
    verify_report_free(&r);
    storage_close(st);
}
