/*
 * The age v1 file format (age-encryption.org/v1, C2SP), X25519 recipients
 * only: keys, the header, and the STREAM payload, on OpenSSL's primitives
 * (X25519, HKDF-SHA-256, HMAC-SHA-256, ChaCha20-Poly1305).
 *
 * Backups are encrypted to recipients (public keys, "age1..."); only restore
 * holds identities ("AGE-SECRET-KEY-1...", the file age-keygen writes). The
 * pipeline stages that use this are in pipeline/stream.h (age_encrypt_stage,
 * age_decrypt_stage); this module knows nothing of streams.
 *
 * Not supported, and refused with a message saying so: scrypt (passphrase)
 * stanzas, ML-KEM hybrid and SSH recipients, ASCII armor. Unknown stanza
 * types in a header are skipped, as the spec asks.
 */
#ifndef SAUVE_CRYPTO_AGE_H
#define SAUVE_CRYPTO_AGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "config/config.h"

#define AGE_KEY_LEN       32
#define AGE_FILE_KEY_LEN  16
#define AGE_NONCE_LEN     16
#define AGE_CHUNK         65536 /* plaintext bytes per STREAM chunk */
#define AGE_TAG_LEN       16
#define AGE_RECIPIENT_LEN 62 /* "age1" + 58 bech32 characters */
#define AGE_HEADER_MAX    (256 * 1024)

typedef struct age_recipient {
    unsigned char pub[AGE_KEY_LEN];
    char text[AGE_RECIPIENT_LEN + 1];
} age_recipient;

typedef struct age_recipients {
    age_recipient *items;
    size_t n;
} age_recipients;

/* A secret key with its public half; wiped by age_identities_free. */
typedef struct age_identity {
    unsigned char secret[AGE_KEY_LEN];
    age_recipient recipient;
} age_identity;

typedef struct age_identities {
    age_identity *items;
    size_t n;
    char *origin; /* the file they were read from, for messages */
} age_identities;

/* "age1..." into r; the error names what (e.g. "SAUVE_AGE_RECIPIENTS") but
 * never repeats text that could be a secret key pasted by mistake. */
int age_parse_recipient(const char *text, const char *what, age_recipient *r, sv_error *err);

/*
 * The recipients of age.recipients and age.recipients_file together (the
 * file in `age -R` format: one per line, '#' comments, blank lines), in that
 * order, duplicates dropped. None configured: 0 with out->n == 0.
 */
int age_recipients_load(const sv_config *cfg, age_recipients *out, sv_error *err);
void age_recipients_free(age_recipients *r);

/* The identities of an age-keygen file ("AGE-SECRET-KEY-1..." lines,
 * '#' comments, blank lines). Errors name the file and line, never a key. */
int age_identities_load(const char *path, age_identities *out, sv_error *err);
void age_identities_free(age_identities *ids);

/* Whether ids holds the secret key of one of the recipients (the "age1..."
 * strings a manifest records). */
bool age_identities_open_any(const age_identities *ids, char *const *recipients, size_t n);

/* ---- the header ----------------------------------------------------- */

/*
 * A new file key and the header that wraps it for every recipient, ending
 * with the header MAC, followed by the payload nonce: everything a file
 * holds before its first STREAM chunk. *payload_key receives the key the
 * chunks are sealed with. Returns the bytes written into out (at most
 * age_header_size(r)), or -1.
 */
size_t age_header_size(const age_recipients *r);
long age_header_write(const age_recipients *r, unsigned char *out, unsigned char payload_key[AGE_KEY_LEN],
                      sv_error *err);

/*
 * Reads a header and nonce from buf[0..len). Returns 0 and sets *consumed
 * and *payload_key once both are complete and the header opened with one of
 * ids and its MAC verified; 1 when more bytes are needed; -1 on a malformed
 * header ("age header: ..."), no matching identity ("no identity ...") or a
 * MAC mismatch ("age header MAC ..."). len is never expected above
 * AGE_HEADER_MAX + AGE_NONCE_LEN: the header is refused beyond that.
 */
int age_header_read(const unsigned char *buf, size_t len, const age_identities *ids, size_t *consumed,
                    unsigned char payload_key[AGE_KEY_LEN], sv_error *err);

/* ---- the payload (STREAM) ------------------------------------------ */

typedef struct age_stream age_stream;

/* ChaCha20-Poly1305 keyed with payload_key; counts chunks itself. */
age_stream *age_stream_new(const unsigned char payload_key[AGE_KEY_LEN]);
/* Seals n <= AGE_CHUNK bytes into out (n + AGE_TAG_LEN bytes). */
int age_stream_seal(age_stream *s, const unsigned char *in, size_t n, bool last, unsigned char *out,
                    sv_error *err);
/* Opens a sealed chunk of n bytes (AGE_TAG_LEN..AGE_CHUNK + AGE_TAG_LEN)
 * into out (n - AGE_TAG_LEN bytes); fails on a wrong tag or position. */
int age_stream_open(age_stream *s, const unsigned char *in, size_t n, bool last, unsigned char *out,
                    sv_error *err);
void age_stream_free(age_stream *s);

#endif
