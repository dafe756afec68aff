/*
 * age decryption as restore meets it: whoever can write to the bucket (and
 * its manifests) chooses every byte of an encrypted artifact. The input is
 * an age file, opened with one fixed X25519 identity through the decrypt
 * stage; the first byte chooses how the input is cut into writes.
 *
 * Checked: a file either opens or fails with an error message (never
 * neither); how it was cut into writes changes nothing (same result, same
 * plaintext digest); and the plaintext of any input, encrypted to the
 * identity's recipient and decrypted again, comes back byte for byte.
 */
#include "fuzz.h"

#include <unistd.h>

#include "crypto/age.h"
#include "pipeline/stream.h"

/* an identity made for this target with age-keygen; it protects nothing */
#define IDENTITY "AGE-SECRET-KEY-1FWHC3WCPUA5WE6U4T09GR2EV5SNVJP3G2F7LLQXDY85PUVK2NQWSN2KM8C"

static age_identities ids;
static age_recipients rcpt;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char path[] = "/tmp/sauve-fuzz-age-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, IDENTITY "\n", sizeof IDENTITY) != (ssize_t)sizeof IDENTITY)
        abort();
    close(fd);
    sv_error err = {0};
    int rc = age_identities_load(path, &ids, &err);
    unlink(path);
    if (rc != 0) {
        fprintf(stderr, "fuzz_age: %s\n", err.msg);
        abort();
    }
    rcpt.items = &ids.items[0].recipient;
    rcpt.n = 1;
    return 0;
}

/* Decrypts data written `piece` bytes at a time into a digest. */
static int open_file(const uint8_t *data, size_t size, size_t piece, char hex[65], sv_error *err)
{
    stream *digest = sha256_stage(NULL);
    stream *head = age_decrypt_stage(digest, &ids);
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += piece)
        rc = stream_write(head, data + off, size - off < piece ? size - off : piece, err);
    if (rc == 0)
        rc = stream_finish(head, err);
    if (rc == 0)
        sha256_stage_hex(digest, hex);
    else
        stream_abort(head);
    stream_free(head);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t piece = 1 + data[0] % 64;
    data++;
    size--;

    char whole[65] = "", cut[65] = "";
    sv_error e1 = {0}, e2 = {0};
    int r1 = open_file(data, size, size ? size : 1, whole, &e1);
    int r2 = open_file(data, size, piece, cut, &e2);
    FUZZ_CHECK(r1 == r2);
    FUZZ_CHECK(r1 == 0 ? strcmp(whole, cut) == 0 : e1.msg[0] && e2.msg[0]);

    /* the input as a plaintext: sealed and opened again, unchanged */
    stream *sink = buffer_sink(size * 2 + 4096);
    stream *enc = age_encrypt_stage(sink, &rcpt);
    sv_error err = {0};
    FUZZ_CHECK(stream_write(enc, data, size, &err) == 0);
    FUZZ_CHECK(stream_finish(enc, &err) == 0);
    size_t n;
    const uint8_t *sealed = buffer_sink_data(sink, &n);
    stream *back = buffer_sink(size + 1);
    stream *dec = age_decrypt_stage(back, &ids);
    FUZZ_CHECK(stream_write(dec, sealed, n, &err) == 0);
    FUZZ_CHECK(stream_finish(dec, &err) == 0);
    size_t m;
    const uint8_t *plain = buffer_sink_data(back, &m);
    FUZZ_CHECK(m == size && (size == 0 || memcmp(plain, data, size) == 0));
    stream_free(dec);
    stream_free(enc);
    return 0;
}
