/*
 * AWS Signature Version 4, written here because no well-kept C library
 * offers it alone. Pure functions: no I/O, no clock, no allocation visible
 * to the caller beyond sigv4_result_free(). Tested against the AWS signing
 * test suite (../shared/testdata/sigv4).
 *
 * S3 rules (normalize_path = false): the path is signed exactly as sent,
 * already percent-encoded once by the caller (sigv4_uri_encode with
 * encode_slash false), with no dot-segment removal and no second encoding.
 * Other services (normalize_path = true) get RFC 3986 dot-segment removal
 * and the path encoded a second time, as the suite's "normalize" cases want.
 */
#ifndef SAUVE_STORAGE_S3_SIGV4_H
#define SAUVE_STORAGE_S3_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct sigv4_header {
    const char *name;  /* as sent; compared case-insensitively */
    const char *value; /* as sent; trimmed and inner blanks folded for signing */
};

struct sigv4_request {
    const char *method; /* "GET", "PUT", ... */
    const char *path;   /* as sent, e.g. "/bucket/my%20key" */
    const char *query;  /* as sent, without '?', e.g. "partNumber=1&uploadId=x"; NULL or "" for none */
    const struct sigv4_header *headers; /* the headers to sign, including host and x-amz-date */
    size_t nheaders;
    const char *payload_hash; /* lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    bool normalize_path;      /* false for S3 */
};

struct sigv4_key {
    const char *access_key_id;
    const char *secret_access_key;
    const char *region;  /* "eu-west-3" */
    const char *service; /* "s3" */
};

struct sigv4_result {
    char signature[65];   /* lowercase hex */
    char *authorization;  /* the Authorization header value */
    char *signed_headers; /* "host;x-amz-date" */
    char *canonical_request;
    char *string_to_sign;
};

/* amz_date is the request time as "20150830T123600Z" (the x-amz-date header).
 * Returns 0, or -1 when a required field is missing. */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_key *key, const char *amz_date,
               struct sigv4_result *out);

/*
 * Query-string signing (presigned URLs): adds X-Amz-Algorithm, -Credential,
 * -Date, -Expires, -SignedHeaders (and -Security-Token when token is set) to
 * the request's query, signs, and returns the full query to send, with
 * X-Amz-Signature last, in *query_out (newly allocated).
 */
int sigv4_presign(const struct sigv4_request *req, const struct sigv4_key *key, const char *amz_date,
                  long expires_seconds, const char *session_token, char **query_out,
                  struct sigv4_result *out);

void sigv4_result_free(struct sigv4_result *r);

/* RFC 3986 unreserved characters kept, everything else %XX (uppercase hex);
 * '/' kept when encode_slash is false (paths). Newly allocated. */
char *sigv4_uri_encode(const char *s, bool encode_slash);

/* Lowercase hex SHA-256 of data. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* "20150830T123600Z" for t (UTC). */
void sigv4_amz_date(time_t t, char out[17]);

#endif
