/*
 * The keys-mode stream reader (sources/redis_keys.c): what verify and an
 * online restore read from a keys-mode artifact, which anyone with write
 * access to the bucket can forge. The first byte of the input chooses how
 * the rest is cut into feeds, so that every reader state meets a feed
 * boundary.
 *
 * Contracts checked besides memory safety: the verdict, the error and the
 * records do not depend on the cut; a record's key and payload lie within
 * the bound and within the input; every payload handed out passes its
 * CRC-64; a verdict of whole is given only to a stream that starts with the
 * magic and whose end record was read.
 */
#include "fuzz.h"

#include "sources/redis.h"

#define MAX_ITEM (1u << 16)

struct read {
    uint64_t digest;
    size_t records;
    int rc;
    char error[200];
};

static void read_stream(const uint8_t *data, size_t size, size_t step, struct read *out)
{
    memset(out, 0, sizeof *out);
    redis_keys_reader r;
    redis_keys_reader_init(&r, MAX_ITEM);
    redis_keys_record rec;
    int n = 0;
    bool at_end = false;
    for (size_t off = 0;; off += step) {
        if (off >= size)
            at_end = true;
        if (!at_end) {
            size_t k = size - off < step ? size - off : step;
            if (redis_keys_reader_feed(&r, data + off, k) != 0) {
                n = -1;
                break;
            }
        }
        while ((n = redis_keys_reader_next(&r, &rec, at_end)) == 1) {
            if (rec.kind == REDIS_KEYS_KEY) {
                FUZZ_CHECK(rec.key_len <= MAX_ITEM && rec.key_len <= size);
                FUZZ_CHECK(rec.payload_len <= MAX_ITEM && rec.payload_len <= size);
                FUZZ_CHECK(redis_dump_payload_check(rec.payload, rec.payload_len, NULL) == 0);
                out->digest = redis_crc64(out->digest, rec.key, rec.key_len);
                out->digest = redis_crc64(out->digest, rec.payload, rec.payload_len);
                out->digest = redis_crc64(out->digest, &rec.db, sizeof rec.db);
                out->digest = redis_crc64(out->digest, &rec.expire_ms, sizeof rec.expire_ms);
            } else {
                out->digest = redis_crc64(out->digest, &rec.vanished, sizeof rec.vanished);
            }
            out->records++;
        }
        if (n < 0 || at_end)
            break;
    }
    if (n == 0 && redis_keys_reader_finish(&r) == 0) {
        out->rc = 0;
        FUZZ_CHECK(r.ended && size >= REDIS_KEYS_HEADER_LEN + REDIS_KEYS_END_LEN);
        FUZZ_CHECK(memcmp(data, REDIS_KEYS_MAGIC, REDIS_KEYS_MAGIC_LEN) == 0);
    } else {
        out->rc = -1;
        FUZZ_CHECK(r.error[0]);
        snprintf(out->error, sizeof out->error, "%s", r.error);
    }
    redis_keys_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 29 + 1;
    data++;
    size--;
    struct read whole, cut;
    read_stream(data, size, size ? size : 1, &whole);
    read_stream(data, size, step, &cut);
    FUZZ_CHECK(whole.rc == cut.rc);
    if (whole.rc == 0)
        FUZZ_CHECK(whole.records == cut.records && whole.digest == cut.digest);
    else
        FUZZ_CHECK(strcmp(whole.error, cut.error) == 0);
    return 0;
}
