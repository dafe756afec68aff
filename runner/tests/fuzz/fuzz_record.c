/*
 * results/verify.json and results/drill.json as `list` reads them from the
 * bucket (record_from_json): anyone with write access to the bucket can
 * forge one. A record that parses names a set and a command list knows,
 * serialises, and reads back as the same record.
 */
#include <math.h>

#include "fuzz.h"

#include "manifest/manifest.h"
#include "manifest/record.h"

static void check_same(const set_record *a, const set_record *b)
{
    FUZZ_CHECK(strcmp(a->command, b->command) == 0 && strcmp(a->set_id, b->set_id) == 0);
    FUZZ_CHECK(a->finished == b->finished && a->ok == b->ok && a->n_sources == b->n_sources);
    /* seconds are written to the millisecond */
    FUZZ_CHECK((a->restore_s < 0) == (b->restore_s < 0));
    FUZZ_CHECK(a->restore_s < 0 || fabs(a->restore_s - b->restore_s) <= 0.0006 + 1e-9 * a->restore_s);
    for (size_t i = 0; i < a->n_sources; i++) {
        FUZZ_CHECK(strcmp(a->sources[i].source, b->sources[i].source) == 0);
        FUZZ_CHECK(strcmp(a->sources[i].detail, b->sources[i].detail) == 0);
        FUZZ_CHECK(a->sources[i].ok == b->sources[i].ok);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    set_record r;
    sv_error err = {0};
    if (record_from_json((const char *)data, size, &r, &err) != 0) {
        FUZZ_CHECK(err.code == SV_EXIT_FAILED && err.msg[0]);
        FUZZ_CHECK(!r.command && !r.sources && !r.summary);
        return 0;
    }
    FUZZ_CHECK(record_key(r.command) != NULL);
    FUZZ_CHECK(set_id_parse(r.set_id, NULL) == 0);
    char *json = record_to_json(&r);
    set_record back;
    sv_error err2 = {0};
    if (record_from_json(json, strlen(json), &back, &err2) != 0) {
        fprintf(stderr, "fuzz: a parsed record does not read back: %s\n%s\n", err2.msg, json);
        abort();
    }
    check_same(&r, &back);
    free(json);
    record_free(&back);
    record_free(&r);
    return 0;
}
