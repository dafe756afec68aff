/*
 * The S3 request engine: addressing, SigV4 signing, libcurl transfers,
 * error classification and retries. The backend (s3.c) builds requests;
 * this file sends them. No XML here beyond reading an <Error> answer.
 *
 * Threads: an s3_client is shared by every thread of one storage; each
 * thread sends through its own s3_conn (one libcurl easy handle, whose
 * connections are kept alive between requests). Conns are pooled by the
 * client, so that successive objects reuse warm connections.
 *
 * Secrets: no request header, signature or credential ever reaches a log
 * line or an error message; errors carry the operation, the bucket and key,
 * the endpoint, the HTTP status and S3's own error code and message.
 */
#ifndef SAUVE_STORAGE_S3_CLIENT_H
#define SAUVE_STORAGE_S3_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "storage/s3/credentials.h"
#include "storage/s3/sigv4.h"

/* ---- addressing (pure, unit-tested) ---------------------------------- */

/*
 * Splits "s3://bucket[/prefix]" into bucket and a key prefix that is either
 * "" or ends with exactly one '/' ("s3://b/x/y/" and "s3://b/x/y" give
 * "x/y/"). Fails with SV_EXIT_CONFIG naming SAUVE_STORAGE on a missing or
 * invalid bucket name. Both outputs newly allocated.
 */
int s3_parse_storage_url(const char *url, char **bucket, char **prefix, sv_error *err);

/* An endpoint URL taken apart: "https://host:port/base". */
struct s3_endpoint {
    bool https;
    char *host;      /* as written, lowercase; IPv6 literals keep their brackets */
    int port;        /* 0 when the URL has none (the scheme's default) */
    char *base_path; /* "" or "/base" without a trailing '/' */
};

/* Fails with SV_EXIT_CONFIG naming the setting `what` (e.g. "AWS_ENDPOINT_URL_S3"). */
int s3_endpoint_parse(const char *url, const char *what, struct s3_endpoint *out, sv_error *err);
void s3_endpoint_free(struct s3_endpoint *e);

/*
 * Where a request for key (unencoded; NULL or "" for the bucket itself) goes:
 * virtual-hosted "https://bucket.host/key" or path-style
 * "https://host/bucket/key". The key is percent-encoded once, '/' kept.
 * host_out is the Host header (with the port when not the default), path_out
 * the path as sent and signed. All newly allocated; query (already encoded)
 * is appended to the URL after '?' when not empty.
 */
void s3_address(const struct s3_endpoint *ep, const char *bucket, bool path_style, const char *key,
                const char *query, char **url_out, char **host_out, char **path_out);

/* True when bucket can be a DNS label under the endpoint (virtual-hosted
 * style): lowercase letters, digits and '-', and no '.' over https (TLS
 * wildcard certificates do not match dotted names). */
bool s3_bucket_virtual_ok(const char *bucket, bool https);

/* ---- retry policy (pure, unit-tested) -------------------------------- */

/*
 * Whether a failed attempt is worth another: transport failures that a new
 * connection may not see again (timeouts, refused or reset connections,
 * truncated answers), HTTP 429/500/502/503/504, and the S3 codes SlowDown,
 * RequestTimeout, InternalError, ServiceUnavailable, TooManyRequests. Never
 * other 4xx.
 * curl_code is a CURLcode (0 when the answer arrived), status the HTTP
 * status (0 when none), code S3's error code ("" when none).
 */
bool s3_retryable(int curl_code, long status, const char *code);

/* Transport failures worth another attempt (the network, not the settings);
 * shared with the credential fetches. */
bool s3_curl_transient(int curl_code);

/* Delay before attempt `attempt + 1` (attempt >= 1): full jitter, a uniform
 * draw (rand01 in [0,1)) under min(20 s, 200 ms x 2^(attempt-1)). */
long s3_backoff_ms(int attempt, double rand01);

/* ---- multipart schedule (pure, unit-tested) -------------------------- */

#define S3_MIB            (1024ULL * 1024)
#define S3_MAX_PARTS      10000
#define S3_MAX_PART_SIZE  (5120ULL * S3_MIB)
#define S3_MIN_PART_SIZE  (5ULL * S3_MIB)
#define S3_MAX_OBJECT     (5ULL * 1024 * 1024 * S3_MIB) /* 5 TiB */
#define S3_PARTS_PER_STEP 900

/*
 * Size of part `number` (1-based) when the configured size is `base` bytes.
 * See s3.c for the schedule; every part size is within S3's 5 MiB..5 GiB and
 * 10,000 parts of the schedule hold at least 5 TiB for any base >= 5 MiB.
 */
uint64_t s3_part_size(uint64_t base, int number);

/*
 * Part buffers allowed at once when parts are `size` bytes, given the
 * configured parallelism and base size: parallel while parts keep their
 * base size, then fewer so that memory stays near parallel x base, but at
 * least min(2, parallel) so that one upload overlaps the filling of the next.
 */
int s3_parts_in_flight(int parallel, uint64_t base, uint64_t size);

/* ---- the client ------------------------------------------------------ */

typedef struct s3_client s3_client;
typedef struct s3_conn s3_conn;

struct s3_client_options {
    const char *bucket;
    const struct s3_endpoint *endpoint; /* copied */
    const char *endpoint_url;           /* as configured, for messages */
    const char *region;
    bool path_style;
    const char *ca_bundle;   /* PEM file; NULL for the system default */
    long timeout_s;          /* no progress for this long abandons an attempt */
    int max_attempts;        /* >= 1 */
    long retry_budget_s;     /* no attempt starts later than this after the first; 0: 600 */
    s3_cred_provider *creds; /* not owned; shared by every thread */
};

s3_client *s3_client_new(const struct s3_client_options *o);
void s3_client_free(s3_client *c);

const char *s3_client_bucket(const s3_client *c);
const char *s3_client_endpoint_url(const s3_client *c);
bool s3_client_https(const s3_client *c);

/* A conn from the client's pool (or a new one); give it back with
 * s3_conn_release, from any thread, when done. */
s3_conn *s3_conn_acquire(s3_client *c);
void s3_conn_release(s3_conn *conn);

/* ---- requests -------------------------------------------------------- */

struct s3_request {
    const char *op;      /* "PutObject": for messages and logs */
    const char *method;  /* "GET", "PUT", "POST", "DELETE", "HEAD" */
    const char *key;     /* full object key, unencoded; NULL or "" for the bucket */
    const char *subject; /* named in messages instead of the key, e.g. a listed prefix; NULL: key */
    const char *detail;  /* extra context for messages, e.g. "part 3"; NULL for none */
    const char *query;   /* already encoded, e.g. "partNumber=3&uploadId=x"; NULL for none */
    const struct sigv4_header *headers; /* more headers to send (and sign), e.g. Content-MD5 */
    size_t nheaders;
    const void *body; /* request body (not copied); NULL with body_len 0 for none */
    size_t body_len;
    /* Lowercase hex SHA-256 of body when the caller has it; NULL: computed
     * when the payload must be signed (plain http), else UNSIGNED-PAYLOAD. */
    const char *payload_hash;
    /* When set, a 2xx answer's body is handed to on_data as it arrives
     * instead of being collected; a failure there (-1, err set) stops the
     * transfer and fails the request without retry. */
    int (*on_data)(void *ctx, const void *data, size_t len, sv_error *err);
    void *ctx;
    /* When set and true, a transfer in progress stops (another part failed). */
    const atomic_bool *cancel;
    /* Best-effort cleanup (AbortMultipartUpload after a failure): sent even
     * after SIGTERM, at most 2 attempts, stalls cut at 10 s, so that a
     * failing run still ends quickly and leaves nothing behind when it can. */
    bool cleanup;
    /* When set, a 2xx answer counts only when its body is a whole,
     * well-formed XML document whose root element has this name; anything
     * else (empty, blanks, truncated, another document) is a retryable
     * failure. For answers that S3 may send as 200 before the work is done
     * (CompleteMultipartUpload). */
    const char *expect_root;
};

struct s3_response {
    long status; /* 0 when no answer arrived */
    char *body;  /* collected body (error answers always), NUL-terminated; may be NULL */
    size_t body_len;
    char etag[128]; /* ETag header, quotes included; "" when absent */
    int64_t last_modified;
    uint64_t content_length; /* from the Content-Length header, when has_length */
    bool has_length;
    char content_range[96]; /* Content-Range header, e.g. "bytes 5-9/10"; "" when absent */
    char code[64];          /* S3 error code: from an <Error> body, else derived from the status */
    char message[512];      /* S3 error message, "" when none */
    int curl_code;          /* CURLcode of the transfer */
    bool sink_failed;       /* on_data failed: err is the sink's */
    int attempts;           /* s3_request: the attempts it made (the last one's answer is the above) */
};

void s3_response_reset(struct s3_response *r);

enum s3_outcome { S3_OK, S3_RETRY, S3_FAIL };

/*
 * One attempt, no retry: fetches credentials, signs, sends. S3_OK for a 2xx
 * answer whose body is not an <Error> document (CompleteMultipartUpload can
 * fail that way) and, with req->expect_root, is the document expected; else err describes the failure and the
 * outcome says whether another attempt may succeed. resp is reset first and describes the answer.
 */
enum s3_outcome s3_attempt(s3_conn *conn, const struct s3_request *req, struct s3_response *resp,
                           sv_error *err);

/* Retry bookkeeping of one request. */
struct s3_retry {
    int attempt;    /* attempts made so far */
    double started; /* monotonic seconds of the first attempt */
};

/*
 * After a failed attempt whose outcome was S3_RETRY (failure described in
 * err): when the attempts or the time budget are used up, completes err
 * ("... after N attempts") and returns -1; else logs a warning with the
 * attempt number and cause, sleeps the backoff (stopping early on SIGTERM
 * or req->cancel, then returning -1 with err set) and returns 0.
 */
int s3_retry_wait(s3_client *c, const struct s3_request *req, struct s3_retry *rt, sv_error *err);

/* s3_attempt until S3_OK, S3_FAIL, or s3_retry_wait gives up. Returns 0 or -1. */
int s3_request(s3_conn *conn, const struct s3_request *req, struct s3_response *resp, sv_error *err);

/* Zeroes every string of a curl header list (copies of Authorization, a
 * session or metadata token, an SSE-C key) before curl_slist_free_all. */
struct curl_slist;
void s3_slist_wipe(struct curl_slist *list);

/* Base64 of data into a newly allocated string; the MD5 of data as base64
 * (the Content-MD5 header) into out. */
char *s3_base64(const void *data, size_t len);
void s3_content_md5(const void *data, size_t len, char out[25]);

#endif
