/*
 * The RDB walker (sources/redis_rdb.c): what an online restore reads from
 * an artifact that anyone with write access to the bucket can forge, before
 * any checksum is known. The first byte of the input chooses how the rest
 * is cut into feeds, so that every parser state meets a feed boundary.
 *
 * Contracts checked besides memory safety: the verdict, the error and the
 * items do not depend on the cut; an item's key and value lie within what
 * was fed and within the bound; a key's value is never longer than the
 * input; a verdict of whole is only given to an RDB that ends with the end
 * opcode and its checksum.
 */
#include "fuzz.h"

#include "sources/redis.h"

#define MAX_ITEM (1u << 16)

struct walked {
    uint64_t digest; /* CRC-64 over every item's fields, in order */
    size_t items;
    int rc;
    char error[200];
};

static uint64_t mix(uint64_t crc, const void *p, size_t n)
{
    return redis_crc64(crc, p, n);
}

static void walk(const uint8_t *data, size_t size, size_t step, struct walked *out)
{
    memset(out, 0, sizeof *out);
    redis_rdb_walker w;
    redis_rdb_walker_init(&w, MAX_ITEM);
    redis_rdb_item it;
    int n = 0;
    bool at_end = false;
    for (size_t off = 0;; off += step) {
        if (off >= size)
            at_end = true;
        if (!at_end) {
            size_t k = size - off < step ? size - off : step;
            if (redis_rdb_walker_feed(&w, data + off, k) != 0) {
                n = -1;
                break;
            }
        }
        while ((n = redis_rdb_walker_next(&w, &it, at_end)) == 1) {
            FUZZ_CHECK(it.value_len <= size && it.key_len <= MAX_ITEM * 8);
            if (it.kind == RDB_ITEM_KEY) {
                FUZZ_CHECK(it.value_len <= MAX_ITEM);
                FUZZ_CHECK(redis_rdb_type_name(it.type) != NULL);
                unsigned char trailer[10];
                redis_dump_trailer(it.type, it.value, it.value_len, w.version, trailer);
            }
            out->items++;
            out->digest = mix(out->digest, &it.kind, sizeof it.kind);
            out->digest = mix(out->digest, &it.db, sizeof it.db);
            if (it.key)
                out->digest = mix(out->digest, it.key, it.key_len);
            if (it.value)
                out->digest = mix(out->digest, it.value, it.value_len);
            out->digest = mix(out->digest, &it.expire_ms, sizeof it.expire_ms);
        }
        if (n < 0 || at_end)
            break;
    }
    if (n == 0 && redis_rdb_walker_finish(&w) == 0) {
        out->rc = 0;
        FUZZ_CHECK(w.eof && size >= 10 && memcmp(data, "REDIS", 5) == 0);
    } else {
        out->rc = -1;
        FUZZ_CHECK(w.error[0]);
        snprintf(out->error, sizeof out->error, "%s", w.error);
    }
    redis_rdb_walker_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 29 + 1;
    data++;
    size--;
    struct walked whole, cut;
    walk(data, size, size ? size : 1, &whole);
    walk(data, size, step, &cut);
    FUZZ_CHECK(whole.rc == cut.rc);
    if (whole.rc == 0) {
        FUZZ_CHECK(whole.items == cut.items && whole.digest == cut.digest);
    } else {
        /* the same failure, found at the same byte */
        FUZZ_CHECK(strcmp(whole.error, cut.error) == 0);
    }
    return 0;
}
