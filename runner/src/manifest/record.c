#include "manifest/record.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "manifest/manifest.h"

const char *record_key(const char *command)
{
    if (strcmp(command, "verify") == 0)
        return "results/verify.json";
    if (strcmp(command, "drill") == 0)
        return "results/drill.json";
    return NULL;
}

void record_init(set_record *r, const char *command, const char *set_id, bool ok, double restore_s)
{
    memset(r, 0, sizeof *r);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    r->command = xstrdup(command);
    snprintf(r->set_id, sizeof r->set_id, "%s", set_id);
    r->finished = time(NULL);
    r->ok = ok;
    r->restore_s = restore_s;
    r->hostname = xstrdup(host);
    r->sauve_version = xstrdup(SAUVE_VERSION);
}

void record_add(set_record *r, const char *source, bool ok, double restore_s, const char *detail)
{
    /* by powers of two: a forged record of many sources parses in linear time */
    size_t n = r->n_sources;
    if (n == 0 || (n & (n - 1)) == 0)
        r->sources = xrealloc(r->sources, (n ? 2 * n : 1) * sizeof *r->sources);
    r->sources[r->n_sources++] = (record_source){.source = xstrdup(source),
                                                 .ok = ok,
                                                 .restore_s = restore_s,
                                                 .detail = log_mask(detail ? detail : "")};
}

/* No restore takes 30 years: a larger figure is a forged record. */
#define SECONDS_MAX 1e9

/* Seconds to the millisecond: a record is read by people. */
static json_t *seconds(double s)
{
    return json_real(s > SECONDS_MAX ? SECONDS_MAX : (double)(long long)(s * 1000 + 0.5) / 1000);
}

char *record_to_json(const set_record *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "format", json_integer(RECORD_FORMAT));
    json_object_set_new(o, "command", json_string(r->command));
    json_object_set_new(o, "set", json_string(r->set_id));
    char when[21];
    iso8601_format(r->finished, when);
    json_object_set_new(o, "finished", json_string(when));
    json_object_set_new(o, "ok", json_boolean(r->ok));
    if (r->restore_s >= 0)
        json_object_set_new(o, "restore_seconds", seconds(r->restore_s));
    json_object_set_new(o, "summary", json_string(r->summary ? r->summary : ""));
    json_object_set_new(o, "hostname", json_string(r->hostname ? r->hostname : ""));
    json_object_set_new(o, "sauve_version", json_string(r->sauve_version ? r->sauve_version : ""));
    json_t *arr = json_array();
    for (size_t i = 0; i < r->n_sources; i++) {
        const record_source *s = &r->sources[i];
        json_t *a = json_object();
        json_object_set_new(a, "source", json_string(s->source));
        json_object_set_new(a, "ok", json_boolean(s->ok));
        if (s->restore_s >= 0)
            json_object_set_new(a, "restore_seconds", seconds(s->restore_s));
        json_object_set_new(a, "detail", json_string(s->detail));
        json_array_append_new(arr, a);
    }
    json_object_set_new(o, "sources", arr);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!text)
        abort(); /* only on out of memory */
    char *out = xasprintf("%s\n", text);
    free(text);
    return out;
}

static int field_string(json_t *o, const char *name, bool required, char **out, sv_error *err)
{
    json_t *v = json_object_get(o, name);
    if (!v && !required)
        return 0;
    if (!json_is_string(v))
        return sv_error_set(err, SV_EXIT_FAILED, "record field '%s' is %s", name,
                            v ? "not a string" : "missing");
    *out = xstrdup(json_string_value(v));
    return 0;
}

static int field_seconds(json_t *o, const char *name, double *out, sv_error *err)
{
    json_t *v = json_object_get(o, name);
    *out = -1;
    if (!v)
        return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= SECONDS_MAX))
        return sv_error_set(err, SV_EXIT_FAILED, "record field '%s' is not a number of seconds", name);
    *out = json_number_value(v);
    return 0;
}

int record_from_json(const char *json, size_t len, set_record *r, sv_error *err)
{
    memset(r, 0, sizeof *r);
    json_error_t jerr;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        return sv_error_set(err, SV_EXIT_FAILED, "record is not a JSON object: %s", jerr.text);
    }
    int rc = -1;
    json_t *format = json_object_get(o, "format");
    json_t *ok = json_object_get(o, "ok");
    json_t *sources = json_object_get(o, "sources");
    char *set = NULL, *finished = NULL;
    if (!json_is_integer(format) || json_integer_value(format) != RECORD_FORMAT) {
        sv_error_set(err, SV_EXIT_FAILED, "record format is not %d", RECORD_FORMAT);
        goto out;
    }
    if (field_string(o, "command", true, &r->command, err) != 0 || !record_key(r->command)) {
        if (r->command)
            sv_error_set(err, SV_EXIT_FAILED, "record field 'command' is neither verify nor drill");
        goto out;
    }
    if (field_string(o, "set", true, &set, err) != 0 ||
        field_string(o, "finished", true, &finished, err) != 0 ||
        field_string(o, "summary", false, &r->summary, err) != 0 ||
        field_string(o, "hostname", false, &r->hostname, err) != 0 ||
        field_string(o, "sauve_version", false, &r->sauve_version, err) != 0 ||
        field_seconds(o, "restore_seconds", &r->restore_s, err) != 0)
        goto out;
    if (set_id_parse(set, NULL) != 0 || strlen(set) >= sizeof r->set_id) {
        sv_error_set(err, SV_EXIT_FAILED, "record field 'set' is not a set id");
        goto out;
    }
    strcpy(r->set_id, set);
    if (iso8601_parse(finished, &r->finished) != 0) {
        sv_error_set(err, SV_EXIT_FAILED, "record field 'finished' is not an ISO 8601 UTC time");
        goto out;
    }
    if (!json_is_boolean(ok)) {
        sv_error_set(err, SV_EXIT_FAILED, "record field 'ok' is not a boolean");
        goto out;
    }
    r->ok = json_is_true(ok);
    if (!json_is_array(sources) || json_array_size(sources) > RECORD_MAX_SOURCES) {
        sv_error_set(err, SV_EXIT_FAILED, "record field 'sources' is not a list of at most %d",
                     RECORD_MAX_SOURCES);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(sources); i++) {
        json_t *s = json_array_get(sources, i);
        json_t *sok = json_object_get(s, "ok");
        char *source = NULL, *detail = NULL;
        double restore_s = -1;
        if (!json_is_object(s) || !json_is_boolean(sok) ||
            field_string(s, "source", true, &source, err) != 0 ||
            field_string(s, "detail", false, &detail, err) != 0 ||
            field_seconds(s, "restore_seconds", &restore_s, err) != 0) {
            if (!sv_error_isset(err))
                sv_error_set(err, SV_EXIT_FAILED, "record field 'sources[%zu]' is not a source", i);
            free(source);
            free(detail);
            goto out;
        }
        record_add(r, source, json_is_true(sok), restore_s, detail);
        free(source);
        free(detail);
    }
    rc = 0;
out:
    free(set);
    free(finished);
    json_decref(o);
    if (rc != 0)
        record_free(r);
    return rc;
}

void record_free(set_record *r)
{
    free(r->command);
    free(r->summary);
    free(r->hostname);
    free(r->sauve_version);
    for (size_t i = 0; i < r->n_sources; i++) {
        free(r->sources[i].source);
        free(r->sources[i].detail);
    }
    free(r->sources);
    memset(r, 0, sizeof *r);
}
