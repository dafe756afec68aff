#include "testutil.h"

#include <math.h>

#include <jansson.h>

#include "common/mem.h"
#include "manifest/manifest.h"
#include "manifest/record.h"

#define SHA_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* 2026-11-22T02:00:00Z */
#define T0 ((time_t)1795312800)

static void fill(manifest *m)
{
    memset(m, 0, sizeof *m);
    m->format = MANIFEST_FORMAT;
    set_id_format(T0, m->id);
    m->name = xstrdup("default");
    m->reason = xstrdup("backup");
    m->note = xstrdup("before restore of postgres:données");
    m->started = T0;
    m->finished = T0 + 754;
    m->sauve_version = xstrdup("0.1.0");
    m->hostname = xstrdup("sauve-29110-x7k2p");

    manifest_artifact *a = manifest_add(m);
    a->ok = true;
    a->kind = xstrdup("postgres");
    a->name = xstrdup("données");
    a->key = xstrdup("postgres/données.dump.zst");
    a->format = xstrdup("pg_dump-custom");
    a->compression = xstrdup("zstd");
    a->bytes_in = 6ULL * 1024 * 1024 * 1024 + 7; /* > 4 GiB: must not be truncated to 32 bits */
    a->bytes_out = 5000000000ULL;
    memcpy(a->sha256, SHA_A, 65);
    a->duration_s = 1.25;
    a->server_version = xstrdup("15.18");
    a->tool = xstrdup("pg_dump");
    a->tool_version = xstrdup("pg_dump (PostgreSQL) 15.18");
    a->endpoint = xstrdup("127.0.0.1:5432 user app");
    a->n_recipients = 2;
    a->recipients = xcalloc(2, sizeof *a->recipients);
    a->recipients[0] = xstrdup("age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq");
    a->recipients[1] = xstrdup("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj");
    manifest_row_counts_add(&a->row_counts, "public", "données", 5000000000LL, ROWS_EXACT);
    manifest_row_counts_add(&a->row_counts, "sales", "We.ird \"name\"", 12, ROWS_ESTIMATE);
    manifest_row_counts_add(&a->row_counts, "sales", "new", -1, ROWS_UNKNOWN);
    manifest_row_counts_add(&a->row_counts, "sales", "empty", 0, ROWS_EXACT);

    a = manifest_add(m);
    a->ok = false;
    a->kind = xstrdup("postgres");
    a->name = xstrdup("analytics");
    a->error = xstrdup("pg_dump exited with status 1: permission denied for table events");
    a->duration_s = 0.5;
    a->tool = xstrdup("pg_dump");

    manifest_update_status(m);
}

static void assert_str_eq_or_null(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_artifact_equal(const manifest_artifact *a, const manifest_artifact *b)
{
    assert_str_eq_or_null(a->key, b->key);
    assert_str_eq_or_null(a->kind, b->kind);
    assert_str_eq_or_null(a->name, b->name);
    assert_str_eq_or_null(a->format, b->format);
    assert_str_eq_or_null(a->compression, b->compression);
    assert_int_equal(a->ok, b->ok);
    assert_str_eq_or_null(a->error, b->error);
    assert_true(a->bytes_in == b->bytes_in);
    assert_true(a->bytes_out == b->bytes_out);
    assert_string_equal(a->sha256, b->sha256);
    assert_true(fabs(a->duration_s - b->duration_s) < 1e-9);
    assert_str_eq_or_null(a->server_version, b->server_version);
    assert_str_eq_or_null(a->tool, b->tool);
    assert_str_eq_or_null(a->tool_version, b->tool_version);
    assert_str_eq_or_null(a->endpoint, b->endpoint);
    assert_str_eq_or_null(a->mode, b->mode);
    assert_true(a->format_version == b->format_version);
    assert_int_equal(a->has_items, b->has_items);
    assert_true(a->items == b->items);
    assert_int_equal(a->n_recipients, b->n_recipients);
    for (size_t i = 0; i < a->n_recipients; i++)
        assert_string_equal(a->recipients[i], b->recipients[i]);
    assert_int_equal(a->row_counts.present, b->row_counts.present);
    assert_str_eq_or_null(a->row_counts.skipped, b->row_counts.skipped);
    assert_int_equal(a->row_counts.n, b->row_counts.n);
    for (size_t i = 0; i < a->row_counts.n; i++) {
        assert_string_equal(a->row_counts.tables[i].schema, b->row_counts.tables[i].schema);
        assert_string_equal(a->row_counts.tables[i].table, b->row_counts.tables[i].table);
        assert_true(a->row_counts.tables[i].rows == b->row_counts.tables[i].rows);
        assert_int_equal(a->row_counts.tables[i].how, b->row_counts.tables[i].how);
    }
}

/* Row counts: written only when recorded (older manifests and other kinds
 * have none, and read as before), as tables or as the reason there are none. */
static void test_row_counts_round_trip(void **state)
{
    (void)state;
    manifest m;
    fill(&m);
    manifest_artifact *a = manifest_add(&m);
    a->ok = true;
    a->kind = xstrdup("postgres");
    a->name = xstrdup("standby");
    a->key = xstrdup("postgres/standby.dump.zst");
    a->format = xstrdup("pg_dump-custom");
    a->compression = xstrdup("zstd");
    memcpy(a->sha256, SHA_A, 65);
    a->row_counts.present = true;
    a->row_counts.skipped = xstrdup("pg_export_snapshot() failed");
    manifest_update_status(&m);
    char *json = manifest_to_json(&m);
    json_t *root = json_loads(json, 0, NULL);
    json_t *arts = json_object_get(root, "artifacts");
    json_t *t =
        json_array_get(json_object_get(json_object_get(json_array_get(arts, 0), "row_counts"), "tables"), 2);
    assert_string_equal(json_string_value(json_object_get(t, "how")), "unknown");
    assert_null(json_object_get(t, "rows"));
    assert_null(json_object_get(json_array_get(arts, 1), "row_counts"));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(arts, 2), "row_counts"), "skipped")),
        "pg_export_snapshot() failed");
    json_decref(root);
    manifest back;
    sv_error err = {0};
    assert_int_equal(manifest_from_json(json, strlen(json), &back, &err), 0);
    for (size_t i = 0; i < 3; i++)
        assert_artifact_equal(&m.artifacts[i], &back.artifacts[i]);
    assert_false(back.artifacts[1].row_counts.present);
    assert_true(back.artifacts[0].row_counts.tables[0].rows == 5000000000LL);
    manifest_free(&back);
    manifest_free(&m);
    free(json);
}

static void test_record_round_trip_and_refusals(void **state)
{
    (void)state;
    set_record r = {.command = "drill",
                    .finished = 1795312854,
                    .ok = false,
                    .restore_s = 41.2504,
                    .summary = "drill failed",
                    .hostname = "h",
                    .sauve_version = "0.1.0"};
    strcpy(r.set_id, "20261122T020000Z-482a3f91");
    record_add(&r, "postgres:app", false, 41.2504, "restored in 41.3 s, but table public.t has 1 rows");
    record_add(&r, "postgres:globals", true, -1, "not loaded");
    char *json = record_to_json(&r);
    set_record back;
    sv_error err = {0};
    assert_int_equal(record_from_json(json, strlen(json), &back, &err), 0);
    assert_string_equal(back.command, "drill");
    assert_string_equal(back.set_id, r.set_id);
    assert_int_equal(back.finished, r.finished);
    assert_false(back.ok);
    assert_true(back.restore_s == 41.25); /* to the millisecond */
    assert_int_equal(back.n_sources, 2);
    assert_true(back.sources[1].restore_s < 0);
    assert_string_equal(back.sources[0].detail, r.sources[0].detail);
    assert_string_equal(record_key("drill"), "results/drill.json");
    assert_null(record_key("backup"));
    record_free(&back);
    free(json);
    for (size_t i = 0; i < r.n_sources; i++) {
        free(r.sources[i].source);
        free(r.sources[i].detail);
    }
    free(r.sources);

    static const struct {
        const char *json, *field;
    } bad[] = {
        {"[]", "not a JSON object"},
        {"{\"format\":2}", "format is not 1"},
        {"{\"format\":1,\"command\":\"backup\"}", "neither verify nor drill"},
        {"{\"format\":1,\"command\":\"drill\",\"set\":\"x\",\"finished\":\"2026-11-22T02:00:00Z\","
         "\"ok\":true,\"sources\":[]}",
         "'set' is not a set id"},
        {"{\"format\":1,\"command\":\"drill\",\"set\":\"20261122T020000Z\",\"finished\":\"2026-11-22T02:00:"
         "00Z\","
         "\"ok\":true,\"restore_seconds\":1e300,\"sources\":[]}",
         "'restore_seconds' is not a number of seconds"},
        {"{\"format\":1,\"command\":\"drill\",\"set\":\"20261122T020000Z\",\"finished\":\"2026-11-22T02:00:"
         "00Z\","
         "\"ok\":true,\"sources\":[{\"ok\":true}]}",
         "'source' is missing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sv_error e = {0};
        set_record x;
        assert_int_equal(record_from_json(bad[i].json, strlen(bad[i].json), &x, &e), -1);
        if (!strstr(e.msg, bad[i].field))
            fail_msg("%s: %s", bad[i].json, e.msg);
        assert_null(x.command);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    manifest m;
    fill(&m);
    char *json = manifest_to_json(&m);

    manifest back;
    sv_error err = {0};
    assert_int_equal(manifest_from_json(json, strlen(json), &back, &err), 0);
    assert_int_equal(back.format, 1);
    assert_string_equal(back.id, "20261122T020000Z");
    assert_string_equal(back.name, m.name);
    assert_string_equal(back.reason, m.reason);
    assert_string_equal(back.note, m.note);
    assert_int_equal(back.status, SET_PARTIAL);
    assert_true(back.started == m.started);
    assert_true(back.finished == m.finished);
    assert_string_equal(back.sauve_version, m.sauve_version);
    assert_string_equal(back.hostname, m.hostname);
    assert_int_equal(back.n_artifacts, 2);
    for (size_t i = 0; i < 2; i++)
        assert_artifact_equal(&back.artifacts[i], &m.artifacts[i]);
    assert_true(back.artifacts[0].bytes_in == 6ULL * 1024 * 1024 * 1024 + 7);
    assert_true(manifest_bytes_out(&back) == 5000000000ULL);
    assert_true(manifest_bytes_in(&back) == 6ULL * 1024 * 1024 * 1024 + 7);

    /* Non-ASCII stays UTF-8, not \u escapes, so the file reads as written. */
    assert_non_null(strstr(json, "\"données\""));

    manifest_free(&back);
    manifest_free(&m);
    free(json);
}

static void test_null_optionals_round_trip(void **state)
{
    (void)state;
    manifest m = {0};
    set_id_format(T0, m.id);
    m.name = xstrdup("default");
    m.reason = xstrdup("safety");
    m.started = m.finished = T0;
    m.sauve_version = xstrdup("0.1.0");
    char *json = manifest_to_json(&m);

    manifest back;
    sv_error err = {0};
    assert_int_equal(manifest_from_json(json, strlen(json), &back, &err), 0);
    assert_null(back.note);
    assert_null(back.hostname);
    assert_int_equal(back.n_artifacts, 0);
    assert_int_equal(back.status, SET_OK);
    manifest_free(&back);
    manifest_free(&m);
    free(json);
}

/* What a source learns beyond sizes (Redis: mode, RDB version, keys) is
 * written only when known: other artifacts keep their layout. */
static void test_source_details_round_trip(void **state)
{
    (void)state;
    manifest m;
    fill(&m);
    manifest_artifact *a = manifest_add(&m);
    a->ok = true;
    a->kind = xstrdup("redis");
    a->name = xstrdup("cache");
    a->key = xstrdup("redis/cache.rdb.zst");
    a->format = xstrdup("redis-rdb");
    a->compression = xstrdup("zstd");
    memcpy(a->sha256, SHA_A, 65);
    a->mode = xstrdup("sync");
    a->format_version = 10;
    a->items = 0; /* an empty Redis: zero keys is a fact, not an absence */
    a->has_items = true;
    manifest_update_status(&m);
    char *json = manifest_to_json(&m);
    json_t *root = json_loads(json, 0, NULL);
    json_t *pg = json_array_get(json_object_get(root, "artifacts"), 0);
    json_t *rd = json_array_get(json_object_get(root, "artifacts"), 2);
    assert_null(json_object_get(pg, "mode"));
    assert_null(json_object_get(pg, "format_version"));
    assert_null(json_object_get(pg, "items"));
    assert_string_equal(json_string_value(json_object_get(rd, "mode")), "sync");
    assert_int_equal(json_integer_value(json_object_get(rd, "format_version")), 10);
    assert_true(json_is_integer(json_object_get(rd, "items")));
    assert_int_equal(json_integer_value(json_object_get(rd, "items")), 0);
    json_decref(root);

    manifest back;
    sv_error err = {0};
    assert_int_equal(manifest_from_json(json, strlen(json), &back, &err), 0);
    assert_int_equal(back.n_artifacts, 3);
    for (size_t i = 0; i < 3; i++)
        assert_artifact_equal(&m.artifacts[i], &back.artifacts[i]);
    assert_false(back.artifacts[0].has_items);
    manifest_free(&back);
    manifest_free(&m);
    free(json);
}

static void test_json_shape(void **state)
{
    (void)state;
    manifest m;
    fill(&m);
    char *json = manifest_to_json(&m);
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "format")), 1);
    assert_string_equal(json_string_value(json_object_get(root, "status")), "partial");
    assert_true(json_is_real(json_object_get(root, "duration_seconds")));
    assert_true(fabs(json_real_value(json_object_get(root, "duration_seconds")) - 754.0) < 1e-9);
    json_t *totals = json_object_get(root, "totals");
    assert_int_equal(json_integer_value(json_object_get(totals, "bytes_out")), 5000000000LL);
    assert_int_equal(json_integer_value(json_object_get(totals, "artifacts")), 2);
    assert_int_equal(json_integer_value(json_object_get(totals, "failed")), 1);
    json_t *a0 = json_array_get(json_object_get(root, "artifacts"), 0);
    assert_true(json_is_integer(json_object_get(a0, "bytes_in")));
    assert_int_equal(json_array_size(json_object_get(json_object_get(a0, "encryption"), "recipients")), 2);
    json_t *a1 = json_array_get(json_object_get(root, "artifacts"), 1);
    assert_true(json_is_null(json_object_get(a1, "key")));
    assert_true(json_is_null(json_object_get(a1, "sha256")));
    assert_true(json_is_null(json_object_get(a1, "encryption")));
    assert_string_equal(json_string_value(json_object_get(a1, "status")), "failed");
    /* The first field is the format, so `head` on the file tells the version. */
    assert_int_equal(strncmp(json, "{\n  \"format\": 1,", 16), 0);
    json_decref(root);
    manifest_free(&m);
    free(json);
}

static void test_status_derivation(void **state)
{
    (void)state;
    manifest m = {0};
    manifest_update_status(&m);
    assert_int_equal(m.status, SET_OK);
    manifest_artifact *a = manifest_add(&m);
    a->ok = true;
    a->kind = xstrdup("redis");
    a->name = xstrdup("cache");
    manifest_update_status(&m);
    assert_int_equal(m.status, SET_OK);
    a = manifest_add(&m);
    a->ok = false;
    a->kind = xstrdup("files");
    a->name = xstrdup("uploads");
    manifest_update_status(&m);
    assert_int_equal(m.status, SET_PARTIAL);
    m.artifacts[1].ok = true;
    manifest_update_status(&m);
    assert_int_equal(m.status, SET_OK);

    assert_ptr_equal(manifest_find(&m, "files", "uploads"), &m.artifacts[1]);
    assert_ptr_equal(manifest_find(&m, "redis", "cache"), &m.artifacts[0]);
    assert_null(manifest_find(&m, "redis", "uploads"));
    manifest_free(&m);
    assert_null(m.artifacts);
    assert_int_equal(m.n_artifacts, 0);
}

static void test_status_written_from_artifacts(void **state)
{
    (void)state;
    manifest m;
    fill(&m);
    m.status = SET_OK; /* stale: the writer must not commit a lie readers reject */
    char *json = manifest_to_json(&m);
    manifest back;
    sv_error err = {0};
    assert_int_equal(manifest_from_json(json, strlen(json), &back, &err), 0);
    assert_int_equal(back.status, SET_PARTIAL);
    manifest_free(&back);
    manifest_free(&m);
    free(json);
}

/*
 * Edits the JSON of the filled manifest with jansson (path "a.b" or
 * "artifacts.0.key"), parses it back, and returns the error message.
 */
static void expect_invalid(void (*edit)(json_t *root), const char *want1, const char *want2)
{
    manifest m;
    fill(&m);
    char *json = manifest_to_json(&m);
    manifest_free(&m);
    json_t *root = json_loads(json, 0, NULL);
    assert_non_null(root);
    free(json);
    edit(root);
    json = json_dumps(root, JSON_PRESERVE_ORDER);
    json_decref(root);

    manifest back;
    memset(&back, 0x5a, sizeof back);
    sv_error err = {0};
    assert_int_equal(manifest_from_json(json, strlen(json), &back, &err), -1);
    assert_int_equal(err.code, SV_EXIT_FAILED);
    if (!strstr(err.msg, want1) || (want2 && !strstr(err.msg, want2)))
        fail_msg("error \"%s\" does not name \"%s\"%s%s", err.msg, want1, want2 ? " and " : "",
                 want2 ? want2 : "");
    /* Freed and zeroed on failure. */
    assert_null(back.artifacts);
    assert_null(back.name);
    free(json);
}

static json_t *art(json_t *root, size_t i)
{
    return json_array_get(json_object_get(root, "artifacts"), i);
}

static void edit_missing_id(json_t *r)
{
    json_object_del(r, "id");
}
static void edit_bad_id(json_t *r)
{
    json_object_set_new(r, "id", json_string("20261322T020000Z"));
}
static void edit_bad_sha(json_t *r)
{
    json_object_set_new(art(r, 0), "sha256",
                        json_string("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
}
static void edit_short_sha(json_t *r)
{
    json_object_set_new(art(r, 0), "sha256", json_string("abc"));
}
static void edit_missing_sha(json_t *r)
{
    json_object_del(art(r, 0), "sha256");
}
static void edit_dotdot_key(json_t *r)
{
    json_object_set_new(art(r, 0), "key", json_string("postgres/../../etc/passwd"));
}
static void edit_abs_key(json_t *r)
{
    json_object_set_new(art(r, 0), "key", json_string("/postgres/app.dump.zst"));
}
static void edit_empty_segment_key(json_t *r)
{
    json_object_set_new(art(r, 0), "key", json_string("postgres//app.dump.zst"));
}
static void edit_format2(json_t *r)
{
    json_object_set_new(r, "format", json_integer(2));
    json_object_del(r, "id"); /* a newer format may differ anywhere: the format is reported first */
}
static void edit_format_string(json_t *r)
{
    json_object_set_new(r, "format", json_string("1"));
}
static void edit_bytes_string(json_t *r)
{
    json_object_set_new(art(r, 0), "bytes_out", json_string("5000000000"));
}
static void edit_mode_number(json_t *r)
{
    json_object_set_new(art(r, 0), "mode", json_integer(1));
}
static void edit_items_negative(json_t *r)
{
    json_object_set_new(art(r, 0), "items", json_integer(-3));
}
static void edit_format_version_string(json_t *r)
{
    json_object_set_new(art(r, 0), "format_version", json_string("10"));
}
static void edit_bytes_negative(json_t *r)
{
    json_object_set_new(art(r, 0), "bytes_in", json_integer(-1));
}
static void edit_name_number(json_t *r)
{
    json_object_set_new(r, "name", json_integer(7));
}
static void edit_artifacts_object(json_t *r)
{
    json_object_set_new(r, "artifacts", json_object());
}
static void edit_unknown_status(json_t *r)
{
    json_object_set_new(r, "status", json_string("great"));
}
static void edit_status_lies(json_t *r)
{
    json_object_set_new(r, "status", json_string("ok"));
}
static void edit_failed_without_error(json_t *r)
{
    json_object_set_new(art(r, 1), "error", json_null());
}
static void edit_missing_kind(json_t *r)
{
    json_object_del(art(r, 0), "kind");
}
static void edit_empty_name(json_t *r)
{
    json_object_set_new(art(r, 0), "name", json_string(""));
}
static void edit_totals(json_t *r)
{
    json_object_set_new(json_object_get(r, "totals"), "bytes_out", json_integer(1));
}
static void edit_bad_time(json_t *r)
{
    json_object_set_new(r, "started_at", json_string("2026-11-22 02:00:00"));
}
static void edit_finished_before_started(json_t *r)
{
    json_object_set_new(r, "finished_at", json_string("2026-11-22T01:59:59Z"));
}
static void edit_recipient_number(json_t *r)
{
    json_array_set_new(json_object_get(json_object_get(art(r, 0), "encryption"), "recipients"), 1,
                       json_integer(3));
}
static void edit_duplicate_artifact(json_t *r)
{
    json_object_set_new(art(r, 1), "name", json_string("données"));
}

/* Three ok artifacts whose sizes wrap around 2^64 to the total given
 * (found by fuzz_manifest's check that totals do not wrap). */
static void edit_sizes_wrap(json_t *r)
{
    json_t *arts = json_object_get(r, "artifacts");
    const char *names[] = {"b", "c"};
    for (size_t i = 0; i < 2; i++) {
        json_t *copy = json_deep_copy(art(r, 0));
        json_object_set_new(copy, "name", json_string(names[i]));
        json_object_set_new(copy, "key", json_string(names[i]));
        json_array_append_new(arts, copy);
    }
    json_object_set_new(art(r, 0), "bytes_out", json_integer(INT64_MAX));
    json_object_set_new(art(r, 2), "bytes_out", json_integer(INT64_MAX));
    json_object_set_new(art(r, 3), "bytes_out", json_integer(2));
    json_t *totals = json_object_get(r, "totals");
    json_object_set_new(totals, "bytes_out", json_integer(0));
    json_object_set_new(totals, "bytes_in",
                        json_integer(3 * json_integer_value(json_object_get(totals, "bytes_in"))));
    json_object_set_new(totals, "artifacts", json_integer(4));
}

static json_t *row_counts(json_t *r)
{
    return json_object_get(art(r, 0), "row_counts");
}

static json_t *counted_table(json_t *r, size_t i)
{
    return json_array_get(json_object_get(row_counts(r), "tables"), i);
}

static void edit_rows_negative(json_t *r)
{
    json_object_set_new(counted_table(r, 0), "rows", json_integer(-1));
}

static void edit_rows_how(json_t *r)
{
    json_object_set_new(counted_table(r, 1), "how", json_string("guessed"));
}

static void edit_rows_unknown_with_rows(json_t *r)
{
    json_object_set_new(counted_table(r, 2), "rows", json_integer(3));
}

static void edit_rows_missing(json_t *r)
{
    json_object_del(counted_table(r, 1), "rows");
}

static void edit_rows_both(json_t *r)
{
    json_object_set_new(row_counts(r), "skipped", json_string("no"));
}

static void edit_rows_neither(json_t *r)
{
    json_object_del(row_counts(r), "tables");
}

static void edit_rows_repeat(json_t *r)
{
    json_object_set_new(counted_table(r, 3), "table", json_string("données"));
    json_object_set_new(counted_table(r, 3), "schema", json_string("public"));
}

static void edit_rows_not_object(json_t *r)
{
    json_object_set_new(art(r, 0), "row_counts", json_integer(3));
}

static void edit_rows_no_schema(json_t *r)
{
    json_object_del(counted_table(r, 0), "schema");
}

static void test_invalid(void **state)
{
    (void)state;
    expect_invalid(edit_missing_id, "field id", "missing");
    expect_invalid(edit_bad_id, "field id", "20261322T020000Z");
    expect_invalid(edit_bad_sha, "artifacts[0].sha256", "hex");
    expect_invalid(edit_short_sha, "artifacts[0].sha256", NULL);
    expect_invalid(edit_missing_sha, "artifacts[0].sha256", NULL);
    expect_invalid(edit_dotdot_key, "artifacts[0].key", "../../etc/passwd");
    expect_invalid(edit_abs_key, "artifacts[0].key", NULL);
    expect_invalid(edit_empty_segment_key, "artifacts[0].key", NULL);
    expect_invalid(edit_format2, "manifest format 2 is newer than this sauve understands: upgrade sauve",
                   NULL);
    expect_invalid(edit_format_string, "field format", "a string");
    expect_invalid(edit_bytes_string, "artifacts[0].bytes_out", "integer");
    expect_invalid(edit_bytes_negative, "artifacts[0].bytes_in", "negative");
    expect_invalid(edit_mode_number, "artifacts[0].mode", "a string or null");
    expect_invalid(edit_items_negative, "artifacts[0].items", "negative");
    expect_invalid(edit_format_version_string, "artifacts[0].format_version", "integer");
    expect_invalid(edit_name_number, "field name", "an integer");
    expect_invalid(edit_artifacts_object, "field artifacts", "an array");
    expect_invalid(edit_unknown_status, "field status", "great");
    expect_invalid(edit_status_lies, "field status", NULL);
    expect_invalid(edit_failed_without_error, "artifacts[1].error", NULL);
    expect_invalid(edit_missing_kind, "artifacts[0].kind", NULL);
    expect_invalid(edit_empty_name, "artifacts[0].name", "empty");
    expect_invalid(edit_totals, "totals.bytes_out", NULL);
    expect_invalid(edit_bad_time, "started_at", NULL);
    expect_invalid(edit_finished_before_started, "finished_at", NULL);
    expect_invalid(edit_recipient_number, "artifacts[0].encryption.recipients[1]", NULL);
    expect_invalid(edit_duplicate_artifact, "artifacts[1]", "repeats");
    expect_invalid(edit_sizes_wrap, "artifacts[3]", "2^64");
    expect_invalid(edit_rows_negative, "artifacts[0].row_counts.tables[0].rows", "negative");
    expect_invalid(edit_rows_how, "artifacts[0].row_counts.tables[1].how", "guessed");
    expect_invalid(edit_rows_unknown_with_rows, "artifacts[0].row_counts.tables[2].rows", "unknown");
    expect_invalid(edit_rows_missing, "artifacts[0].row_counts.tables[1].rows", "missing");
    expect_invalid(edit_rows_both, "artifacts[0].row_counts", "either tables or skipped");
    expect_invalid(edit_rows_neither, "artifacts[0].row_counts", "either tables or skipped");
    expect_invalid(edit_rows_repeat, "artifacts[0].row_counts.tables[3]", "repeats [0]");
    expect_invalid(edit_rows_not_object, "artifacts[0].row_counts", "an object or null");
    expect_invalid(edit_rows_no_schema, "artifacts[0].row_counts.tables[0].schema", NULL);
}

static void test_not_json(void **state)
{
    (void)state;
    manifest m;
    sv_error err = {0};
    const char *cases[] = {"", "{\"format\": 1,", "[1, 2]", "null",
                           "{\"format\": 1, \"format\": 1}" /* duplicate keys */};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sv_error_clear(&err);
        assert_int_equal(manifest_from_json(cases[i], strlen(cases[i]), &m, &err), -1);
        assert_non_null(strstr(err.msg, "manifest"));
    }
}

static void test_set_id(void **state)
{
    (void)state;
    char id[SET_ID_LEN + 1];
    set_id_format(T0, id);
    assert_string_equal(id, "20261122T020000Z");
    time_t t = 0;
    assert_int_equal(set_id_parse(id, &t), 0);
    assert_true(t == T0);

    /* Round trip over a spread of times, including a leap day. */
    time_t leap = 0;
    assert_int_equal(set_id_parse("20280229T235959Z", &leap), 0);
    for (time_t x = 0; x < (time_t)4102444800; x += 86399 * 37) {
        set_id_format(x, id);
        assert_int_equal(set_id_parse(id, &t), 0);
        assert_true(t == x);
    }
    set_id_format(leap, id);
    assert_string_equal(id, "20280229T235959Z");

    const char *bad[] = {
        "",
        "20261122T020000",                    /* missing Z */
        "20261122T020000Z0",                  /* no '-' before the suffix */
        "20261122T020000Z-",                  /* empty suffix */
        "20261122T020000Z-3F9A1C",            /* uppercase suffix */
        "20261122T020000Z-3f9a/1c",           /* not a letter or digit */
        "20261122T020000Z-0123456789abcdefg", /* suffix of 17 */
        "20261122T020000Z--3f9a1c",           /* two dashes */
        "2026112T020000Z",                    /* too short */
        "20261322T020000Z",                   /* month 13 */
        "20260022T020000Z",                   /* month 0 */
        "20261131T020000Z",                   /* 31 November */
        "20270229T020000Z",                   /* not a leap year */
        "20261122T240000Z",                   /* hour 24 */
        "20261122T026000Z",                   /* minute 60 */
        "20261122T020060Z",                   /* leap second */
        "20261122t020000Z",                   /* lowercase t */
        "20261122T020000z",                   /* lowercase z */
        "2026-1122T02000Z",                   /* right length, wrong shape */
        "+0261122T020000Z",
        "20261122 020000Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (set_id_parse(bad[i], &t) == 0)
            fail_msg("set id \"%s\" was accepted", bad[i]);
    assert_int_equal(set_id_parse(NULL, &t), -1);
}

static void test_set_id_new(void **state)
{
    (void)state;
    /* the time, '-', the milliseconds, 5 random hex digits: what readers accept */
    char a[SET_ID_LEN + 1], b[SET_ID_LEN + 1];
    set_id_new(T0, 482, a);
    assert_int_equal(strlen(a), SET_ID_TIME_LEN + 1 + SET_ID_SUFFIX_LEN);
    assert_memory_equal(a, "20261122T020000Z-482", SET_ID_TIME_LEN + 4);
    assert_int_equal(strspn(a + SET_ID_TIME_LEN + 4, "0123456789abcdef"), 5);
    time_t t = 0;
    assert_int_equal(set_id_parse(a, &t), 0);
    assert_true(t == T0);
    /* two runs of the same millisecond: two ids (a repeat is a 1 in 2^20
     * event; ten in a row means the digits are not random) */
    int same = 0;
    for (int i = 0; i < 10; i++) {
        set_id_new(T0, 482, b);
        same += strcmp(a, b) == 0;
    }
    assert_true(same < 10);
    /* text order is start order: by the second, then the millisecond */
    char later[SET_ID_LEN + 1];
    set_id_new(T0, 483, later);
    assert_true(strcmp(a, later) < 0);
    set_id_new(T0, 7, b);
    assert_memory_equal(b, "20261122T020000Z-007", SET_ID_TIME_LEN + 4);
    assert_true(strcmp(b, a) < 0);
    set_id_new(T0 + 1, 0, later);
    assert_true(strcmp(a, later) < 0);
    assert_true(strcmp("20261122T020000Z", b) < 0); /* an older sauve's id of the same second */

    /* the longest suffix a reader accepts, and the time it carries */
    assert_int_equal(set_id_parse("20261122T020000Z-0123456789abcdef", &t), 0);
    assert_true(t == T0);
    assert_int_equal(set_id_parse("20261122T020000Z-z", NULL), 0);
}

static void test_iso8601(void **state)
{
    (void)state;
    char s[21];
    iso8601_format(T0 + 59, s);
    assert_string_equal(s, "2026-11-22T02:00:59Z");
    time_t t = 0;
    assert_int_equal(iso8601_parse(s, &t), 0);
    assert_true(t == T0 + 59);
    const char *bad[] = {"2026-11-22T02:00:59",  "2026-11-22T02:00:59+00:00", "2026-13-22T02:00:59Z",
                         "2026-11-22 02:00:59Z", "2026-02-30T02:00:59Z",      "26-11-22T02:00:59Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (iso8601_parse(bad[i], &t) == 0)
            fail_msg("time \"%s\" was accepted", bad[i]);
}

static void test_invalid_utf8_is_replaced(void **state)
{
    (void)state;
    manifest m;
    fill(&m);
    free(m.artifacts[1].error);
    m.artifacts[1].error = xstrdup("pg_dump: erreur: table \xE9v\xE9nements"); /* Latin-1 */
    char *json = manifest_to_json(&m);
    manifest back;
    sv_error err = {0};
    assert_int_equal(manifest_from_json(json, strlen(json), &back, &err), 0);
    assert_string_equal(back.artifacts[1].error, "pg_dump: erreur: table \xEF\xBF\xBDv\xEF\xBF\xBDnements");
    manifest_free(&back);
    manifest_free(&m);
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_record_round_trip_and_refusals),
        cmocka_unit_test(test_null_optionals_round_trip),
        cmocka_unit_test(test_json_shape),
        cmocka_unit_test(test_source_details_round_trip),
        cmocka_unit_test(test_row_counts_round_trip),
        cmocka_unit_test(test_status_derivation),
        cmocka_unit_test(test_status_written_from_artifacts),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_set_id),
        cmocka_unit_test(test_set_id_new),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_invalid_utf8_is_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
