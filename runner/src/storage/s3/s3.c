/*
 * The s3:// backend: storage_intern.h's operations as S3 API calls, sent by
 * the request engine of client.h.
 *
 * Writes stream into a multipart upload: the writer fills a part buffer and
 * hands each full part to a small pool of worker threads (UploadPart, one
 * conn each), blocking while every buffer is in use. Memory is therefore
 * s3.parallel x s3.part_size plus small buffers, whatever the stream's
 * length (the part-size schedule in client.c explains the growth for huge
 * streams). A stream that never fills a part is one PutObject. The object
 * appears under its key only on CompleteMultipartUpload; any failure or
 * abort sends AbortMultipartUpload, so no orphaned upload is left when the
 * failure is seen (a crash may leave one: prune lists and aborts those).
 *
 * Reads stream GetObject's body into the sink as it arrives; a connection
 * broken mid-body is resumed with Range and If-Match, so the sink sees each
 * byte exactly once, of one version of the object.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/signals.h"
#include "config/config.h"
#include "storage/s3/client.h"
#include "storage/s3/credentials.h"
#include "storage/s3/xml.h"
#include "storage/storage_intern.h"

#define DELETE_BATCH   1000
#define SSEC_KEY_BYTES 32
#define KEY_FILE_MAX   1024

struct s3 {
    s3_client *client;
    s3_cred_provider *creds;
    char *bucket;
    char *prefix; /* "" or "a/b/": prepended to every key */
    uint64_t part_size;
    int parallel;
    char *sse;            /* NULL, "AES256" or "aws:kms" */
    char *sse_kms_key_id; /* NULL for the account's default key */
    char *storage_class;
    char *ssec_key;     /* base64 of the SSE-C key (a secret), or NULL */
    char ssec_md5[25];  /* base64 of its MD5 */
    sv_config *own_cfg; /* loaded here when storage_open got none */
};

static struct s3 *impl(storage *st)
{
    return st->impl;
}

static char *full_key(const struct s3 *s, const char *key)
{
    return xasprintf("%s%s", s->prefix, key);
}

/* ---- headers --------------------------------------------------------- */

/* Headers an object gets when created (PutObject, CreateMultipartUpload):
 * encryption, storage class. Returns the count added. */
static size_t create_headers(const struct s3 *s, struct sigv4_header *h)
{
    size_t n = 0;
    if (s->sse)
        h[n++] = (struct sigv4_header){"x-amz-server-side-encryption", s->sse};
    if (s->sse_kms_key_id)
        h[n++] = (struct sigv4_header){"x-amz-server-side-encryption-aws-kms-key-id", s->sse_kms_key_id};
    if (s->storage_class)
        h[n++] = (struct sigv4_header){"x-amz-storage-class", s->storage_class};
    return n;
}

/* The SSE-C headers, on every request that reads or writes the object's
 * bytes (Put, Create, UploadPart, Get, Head). */
static size_t ssec_headers(const struct s3 *s, struct sigv4_header *h)
{
    if (!s->ssec_key)
        return 0;
    h[0] = (struct sigv4_header){"x-amz-server-side-encryption-customer-algorithm", "AES256"};
    h[1] = (struct sigv4_header){"x-amz-server-side-encryption-customer-key", s->ssec_key};
    h[2] = (struct sigv4_header){"x-amz-server-side-encryption-customer-key-MD5", s->ssec_md5};
    return 3;
}

static void append_param(char **q, const char *name, const char *value)
{
    char *v = value ? sigv4_uri_encode(value, true) : NULL;
    char *next = xasprintf("%s%s%s%s%s", *q ? *q : "", *q ? "&" : "", name, v ? "=" : "", v ? v : "");
    free(v);
    free(*q);
    *q = next;
}

/* ---- check ----------------------------------------------------------- */

static int s3_check(storage *st, sv_error *err)
{
    struct s3 *s = impl(st);
    char *q = NULL;
    append_param(&q, "encoding-type", "url"); /* see s3_list */
    append_param(&q, "list-type", "2");
    append_param(&q, "max-keys", "1");
    append_param(&q, "prefix", s->prefix);
    struct s3_request req = {
        .op = "ListObjectsV2", .method = "GET", .key = "", .subject = s->prefix, .query = q};
    struct s3_response resp = {0};
    s3_conn *conn = s3_conn_acquire(s->client);
    int rc = s3_request(conn, &req, &resp, err);
    s3_conn_release(conn);
    struct s3_list_page page;
    if (rc == 0 && s3_xml_list_objects(resp.body, resp.body_len, &page) < 0)
        rc = sv_error_set(err, SV_EXIT_FAILED,
                          "s3 ListObjectsV2 s3://%s/%s at %s: the answer is not a listing", s->bucket,
                          s->prefix, s3_client_endpoint_url(s->client));
    else if (rc == 0)
        s3_list_page_free(&page);
    s3_response_reset(&resp);
    free(q);
    return rc;
}

/* ---- write ----------------------------------------------------------- */

struct part {
    int number; /* 1-based */
    char *buf;
    size_t len, cap;
    struct part *next;
};

struct s3_writer {
    stream base;
    struct s3 *s3;
    char *key;     /* full key in the bucket */
    s3_conn *conn; /* the writer's own: Create, Complete, Abort, Put */
    char *upload_id;
    bool create_retried; /* CreateMultipartUpload took more than one attempt */
    struct part *cur;    /* being filled by the writer thread */
    int handed;          /* parts handed to workers so far */
    bool done;           /* finished or aborted: no more writes */
    uint64_t total;      /* bytes accepted by sw_write: the object's size once stored */
    bool committed;

    /* Shared with the workers, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct part *queue, *queue_tail;
    struct part *spare; /* uploaded parts' buffers, ready to be filled again */
    int nbufs;          /* buffers allocated: cur, queued, uploading, spare */
    int busy;           /* parts queued or uploading */
    uint64_t cur_size;  /* part size now, for the workers' buffer accounting */
    bool stopping;
    bool failed;
    sv_error fail_err;
    char **etags; /* by part number - 1 */
    int etags_cap;
    atomic_bool cancel;

    pthread_t *threads;
    int nthreads;
    int start_error; /* pthread_create's return value when a worker could not start */
};

static int writer_error(struct s3_writer *w, sv_error *err)
{
    pthread_mutex_lock(&w->mu);
    *err = w->fail_err;
    pthread_mutex_unlock(&w->mu);
    return -1;
}

static void fail_locked(struct s3_writer *w, const sv_error *e)
{
    if (!w->failed) {
        w->failed = true;
        w->fail_err = *e;
        atomic_store(&w->cancel, true);
    }
    pthread_cond_broadcast(&w->cv);
}

static int upload_part(struct s3_writer *w, s3_conn *conn, struct part *p, char **etag, sv_error *err)
{
    struct s3 *s = w->s3;
    struct sigv4_header h[4];
    size_t nh = ssec_headers(s, h);
    char md5[25], sha[65];
    const char *payload_hash = NULL;
    if (s3_client_https(s->client)) {
        /* Unsigned payload over TLS; Content-MD5 has S3 check the bytes. */
        s3_content_md5(p->buf, p->len, md5);
        h[nh++] = (struct sigv4_header){"Content-MD5", md5};
    } else {
        /* Plain http: the signed SHA-256 covers the body, and S3 checks it. */
        sigv4_sha256_hex(p->buf, p->len, sha);
        payload_hash = sha;
    }
    char *q = xasprintf("partNumber=%d", p->number);
    append_param(&q, "uploadId", w->upload_id);
    char detail[32];
    snprintf(detail, sizeof detail, "part %d", p->number);
    struct s3_request req = {.op = "UploadPart",
                             .method = "PUT",
                             .key = w->key,
                             .detail = detail,
                             .query = q,
                             .headers = h,
                             .nheaders = nh,
                             .body = p->buf,
                             .body_len = p->len,
                             .payload_hash = payload_hash,
                             .cancel = &w->cancel};
    struct s3_response resp = {0};
    int rc = s3_request(conn, &req, &resp, err);
    if (rc == 0 && !resp.etag[0])
        rc = sv_error_set(err, SV_EXIT_FAILED, "s3 UploadPart s3://%s/%s (%s): the answer has no ETag",
                          s->bucket, w->key, detail);
    if (rc == 0)
        *etag = xstrdup(resp.etag);
    s3_response_reset(&resp);
    free(q);
    return rc;
}

static void *worker_main(void *arg)
{
    struct s3_writer *w = arg;
    s3_conn *conn = s3_conn_acquire(w->s3->client);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->queue && !w->stopping)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->queue)
            break;
        struct part *p = w->queue;
        w->queue = p->next;
        if (!w->queue)
            w->queue_tail = NULL;
        bool skip = w->failed;
        pthread_mutex_unlock(&w->mu);

        char *etag = NULL;
        sv_error e = {0};
        int rc = skip ? -1 : upload_part(w, conn, p, &etag, &e);

        pthread_mutex_lock(&w->mu);
        if (rc == 0) {
            w->etags[p->number - 1] = etag;
        } else if (!skip) {
            fail_locked(w, &e);
        }
        w->busy--;
        /* Keep the buffer for the next part unless parts have grown past it
         * or fewer buffers are allowed now (memory bound, see client.c). */
        int allowed = s3_parts_in_flight(w->s3->parallel, w->s3->part_size, w->cur_size);
        if (p->cap < w->cur_size || w->nbufs > allowed) {
            free(p->buf);
            free(p);
            w->nbufs--;
        } else {
            p->len = 0;
            p->next = w->spare;
            w->spare = p;
        }
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    s3_conn_release(conn);
    return NULL;
}

static void start_workers(struct s3_writer *w)
{
    /* Workers never take SIGTERM: the thread driving the stream must see it
     * (its blocking reads return EINTR); workers poll the flag instead. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    w->threads = xcalloc((size_t)w->s3->parallel, sizeof *w->threads);
    for (int i = 0; i < w->s3->parallel; i++) {
        int rc = pthread_create(&w->threads[i], NULL, worker_main, w);
        if (rc != 0) {
            w->start_error = rc; /* pthread_create returns its error; errno is not set */
            break;               /* fewer workers still make progress */
        }
        w->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void stop_workers(struct s3_writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    w->nthreads = 0;
}

static int create_upload(struct s3_writer *w, sv_error *err)
{
    struct s3 *s = w->s3;
    struct sigv4_header h[8];
    size_t nh = create_headers(s, h);
    nh += ssec_headers(s, h + nh);
    struct s3_request req = {.op = "CreateMultipartUpload",
                             .method = "POST",
                             .key = w->key,
                             .query = "uploads",
                             .headers = h,
                             .nheaders = nh};
    struct s3_response resp = {0};
    int rc = s3_request(w->conn, &req, &resp, err);
    /* a retried create may have left the store the upload of an attempt
     * whose answer was lost: remembered, so that finish removes it */
    w->create_retried = resp.attempts > 1;
    if (rc == 0 && s3_xml_upload_id(resp.body, resp.body_len, &w->upload_id) < 0)
        rc = sv_error_set(err, SV_EXIT_FAILED,
                          "s3 CreateMultipartUpload s3://%s/%s at %s: the answer has no UploadId", s->bucket,
                          w->key, s3_client_endpoint_url(s->client));
    s3_response_reset(&resp);
    if (rc == 0)
        log_debug("s3: multipart upload of %s started", w->key);
    return rc;
}

/* A buffer for the next part, of the schedule's size; blocks while all the
 * buffers allowed are in use. NULL when the upload failed meanwhile. */
static struct part *take_buffer(struct s3_writer *w, int number)
{
    uint64_t size = s3_part_size(w->s3->part_size, number);
    int allowed = s3_parts_in_flight(w->s3->parallel, w->s3->part_size, size);
    struct part *p = NULL;
    pthread_mutex_lock(&w->mu);
    w->cur_size = size;
    for (;;) {
        if (w->failed)
            break;
        if (w->spare) {
            p = w->spare;
            w->spare = p->next;
            break;
        }
        if (w->nbufs < allowed) {
            p = xcalloc(1, sizeof *p);
            w->nbufs++;
            break;
        }
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    if (!p)
        return NULL;
    if (p->cap != size) {
        free(p->buf);
        p->buf = xmalloc(size);
        p->cap = size;
    }
    p->len = 0;
    p->next = NULL;
    p->number = number;
    return p;
}

static int hand_off(struct s3_writer *w, sv_error *err)
{
    struct part *p = w->cur;
    w->cur = NULL;
    if (p->number > S3_MAX_PARTS) {
        sv_error_set(err, SV_EXIT_FAILED, "s3 UploadPart s3://%s/%s: the stream exceeds %d parts (5 TiB)",
                     w->s3->bucket, w->key, S3_MAX_PARTS);
        goto fail;
    }
    if (!w->upload_id) {
        if (create_upload(w, err) < 0)
            goto fail;
        start_workers(w);
        if (w->nthreads == 0) {
            sv_error_set(err, SV_EXIT_FAILED, "s3: cannot start upload threads: %s",
                         strerror(w->start_error));
            goto fail;
        }
    }
    pthread_mutex_lock(&w->mu);
    if (p->number > w->etags_cap) {
        int cap = w->etags_cap ? w->etags_cap * 2 : 64;
        while (cap < p->number)
            cap *= 2;
        w->etags = xrealloc(w->etags, (size_t)cap * sizeof *w->etags);
        memset(w->etags + w->etags_cap, 0, (size_t)(cap - w->etags_cap) * sizeof *w->etags);
        w->etags_cap = cap;
    }
    if (w->queue_tail)
        w->queue_tail->next = p;
    else
        w->queue = p;
    w->queue_tail = p;
    w->busy++;
    w->handed = p->number;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;

fail:
    pthread_mutex_lock(&w->mu);
    free(p->buf);
    free(p);
    w->nbufs--;
    fail_locked(w, err);
    pthread_mutex_unlock(&w->mu);
    return -1;
}

static int sw_write(stream *st, const void *buf, size_t len, sv_error *err)
{
    struct s3_writer *w = (struct s3_writer *)st;
    if (w->done)
        return sv_error_set(err, SV_EXIT_FAILED, "storage: write to s3://%s/%s after it was closed",
                            w->s3->bucket, w->key);
    const char *src = buf;
    while (len > 0) {
        if (atomic_load(&w->cancel)) /* set with failed, under the lock */
            return writer_error(w, err);
        /* A full part is handed off only when more bytes come, so that a
         * stream of exactly one part is a plain PutObject. */
        if (w->cur && w->cur->len == w->cur->cap && hand_off(w, err) < 0)
            return -1;
        if (!w->cur) {
            w->cur = take_buffer(w, w->handed + 1);
            if (!w->cur)
                return writer_error(w, err);
        }
        size_t n = w->cur->cap - w->cur->len;
        if (n > len)
            n = len;
        memcpy(w->cur->buf + w->cur->len, src, n);
        w->cur->len += n;
        w->total += n;
        src += n;
        len -= n;
    }
    return 0;
}

static int verify_size(struct s3_writer *w, const char *op, sv_error *err);

static int put_object(struct s3_writer *w, const void *data, size_t len, sv_error *err)
{
    struct s3 *s = w->s3;
    struct sigv4_header h[10];
    size_t nh = create_headers(s, h);
    nh += ssec_headers(s, h + nh);
    char md5[25];
    /* RGW and S3 check Content-MD5 (BadDigest): the bytes stored are the
     * bytes hashed here, also over https with an unsigned payload. */
    s3_content_md5(data, len, md5);
    h[nh++] = (struct sigv4_header){"Content-MD5", md5};
    struct s3_request req = {.op = "PutObject",
                             .method = "PUT",
                             .key = w->key,
                             .headers = h,
                             .nheaders = nh,
                             .body = data,
                             .body_len = len};
    struct s3_response resp = {0};
    int rc = s3_request(w->conn, &req, &resp, err);
    s3_response_reset(&resp);
    if (rc == 0)
        rc = verify_size(w, "PutObject", err);
    return rc;
}

static unsigned char hex_nibble(char c)
{
    return (unsigned char)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
}

/*
 * The ETag S3 gives a completed multipart object when parts' ETags are their
 * MD5s (no SSE-KMS or SSE-C): MD5 of the concatenated binary MD5s, "-N".
 * Into out ("" when a part's ETag is not a plain MD5).
 */
static void multipart_etag(char **etags, int n, char *out, size_t cap)
{
    out[0] = '\0';
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL))
        abort();
    for (int i = 0; i < n; i++) {
        const char *e = etags[i];
        size_t len = strlen(e);
        if (len == 34 && e[0] == '"' && e[33] == '"') {
            e++;
            len = 32;
        }
        if (len != 32 || strspn(e, "0123456789abcdefABCDEF") < 32) {
            EVP_MD_CTX_free(ctx);
            return;
        }
        unsigned char bin[16];
        for (int j = 0; j < 16; j++)
            bin[j] = (unsigned char)(hex_nibble(e[2 * j]) << 4 | hex_nibble(e[2 * j + 1]));
        EVP_DigestUpdate(ctx, bin, 16);
    }
    unsigned char md[16];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    size_t off = (size_t)snprintf(out, cap, "\"");
    for (int j = 0; j < 16 && off < cap; j++)
        off += (size_t)snprintf(out + off, cap - off, "%02x", md[j]);
    snprintf(out + off, cap - off, "-%d\"", n);
}

static int head_object(struct s3 *s, s3_conn *conn, const char *key, struct s3_response *resp, sv_error *err);

/* After op stored the object: its size as the store reports it must be the
 * bytes the stream was given, or the object is not what was written. */
static int verify_size(struct s3_writer *w, const char *op, sv_error *err)
{
    struct s3 *s = w->s3;
    struct s3_response head = {0};
    int rc = head_object(s, w->conn, w->key, &head, err);
    if (rc < 0) {
        sv_error_wrap(err, "checking s3://%s/%s after %s", s->bucket, w->key, op);
    } else if (!head.has_length || head.content_length != w->total) {
        char actual[32] = "no";
        if (head.has_length)
            snprintf(actual, sizeof actual, "%llu", (unsigned long long)head.content_length);
        rc = sv_error_set(err, SV_EXIT_FAILED,
                          "s3 %s s3://%s/%s at %s: the stored object has %s bytes (Content-Length), "
                          "expected %llu (the bytes written)",
                          op, s->bucket, w->key, s3_client_endpoint_url(s->client), actual,
                          (unsigned long long)w->total);
    }
    s3_response_reset(&head);
    return rc;
}

static int complete_upload(struct s3_writer *w, sv_error *err)
{
    struct s3 *s = w->s3;
    int n = w->handed;
    struct xml_buf body = {0};
    xml_buf_add(&body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (int i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i + 1);
        xml_buf_add(&body, "<Part><PartNumber>");
        xml_buf_add(&body, num);
        xml_buf_add(&body, "</PartNumber><ETag>");
        xml_buf_add_escaped(&body, w->etags[i]);
        xml_buf_add(&body, "</ETag></Part>");
    }
    xml_buf_add(&body, "</CompleteMultipartUpload>");
    char *q = NULL;
    append_param(&q, "uploadId", w->upload_id);
    struct sigv4_header h[1];
    h[0] = (struct sigv4_header){"Content-Type", "application/xml"};
    struct s3_request req = {.op = "CompleteMultipartUpload",
                             .method = "POST",
                             .key = w->key,
                             .query = q,
                             .headers = h,
                             .nheaders = 1,
                             .body = body.data,
                             .body_len = body.len,
                             .expect_root = "CompleteMultipartUploadResult"};
    struct s3_response resp = {0};
    struct s3_retry rt = {.attempt = 0};
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rt.started = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    int rc;
    for (;;) {
        rt.attempt++;
        enum s3_outcome o = s3_attempt(w->conn, &req, &resp, err);
        if (o == S3_OK) {
            rc = 0;
            break;
        }
        /* A retry after a lost answer finds the upload gone because the
         * first attempt completed it: the object's ETag tells. */
        if (rt.attempt > 1 && strcmp(resp.code, "NoSuchUpload") == 0) {
            char expect[64];
            multipart_etag(w->etags, n, expect, sizeof expect);
            struct s3_response head = {0};
            sv_error herr = {0};
            bool same = expect[0] && head_object(s, w->conn, w->key, &head, &herr) == 0 &&
                        strcmp(head.etag, expect) == 0;
            s3_response_reset(&head);
            if (same) {
                log_info("s3: CompleteMultipartUpload of %s had succeeded before its answer was lost",
                         w->key);
                rc = 0;
                break;
            }
        }
        if (o == S3_FAIL || s3_retry_wait(s->client, &req, &rt, err) < 0) {
            rc = -1;
            break;
        }
    }
    s3_response_reset(&resp);
    xml_buf_free(&body);
    free(q);
    if (rc == 0)
        rc = verify_size(w, "CompleteMultipartUpload", err);
    return rc;
}

static void abort_upload_id(s3_conn *conn, const char *key, const char *upload_id)
{
    char *q = NULL;
    append_param(&q, "uploadId", upload_id);
    struct s3_request req = {
        .op = "AbortMultipartUpload", .method = "DELETE", .key = key, .query = q, .cleanup = true};
    struct s3_response resp = {0};
    sv_error err = {0};
    if (s3_request(conn, &req, &resp, &err) < 0 && strcmp(resp.code, "NoSuchUpload") != 0)
        log_warn("%s; the incomplete upload is left for prune to remove", err.msg);
    else
        log_debug("s3: multipart upload of %s aborted", key);
    s3_response_reset(&resp);
    free(q);
}

/* After a retried CreateMultipartUpload: the uploads of this very key but
 * ours were started by attempts whose answer was lost (the key holds the
 * run's own set id, so no other writer has one); aborted, not left for
 * prune. Best effort: a failure is logged, prune removes them later. */
static void abort_lost_creates(struct s3_writer *w)
{
    char *q = NULL;
    append_param(&q, "encoding-type", "url");
    append_param(&q, "prefix", w->key);
    append_param(&q, "uploads", NULL);
    struct s3_request req = {
        .op = "ListMultipartUploads", .method = "GET", .key = "", .subject = w->key, .query = q};
    struct s3_response resp = {0};
    struct s3_uploads_page page = {0};
    sv_error err = {0};
    if (s3_request(w->conn, &req, &resp, &err) == 0 &&
        s3_xml_list_uploads(resp.body, resp.body_len, &page) == 0) {
        for (size_t i = 0; i < page.n; i++) {
            const struct s3_upload_item *it = &page.items[i];
            if (!it->undecodable && strcmp(it->key, w->key) == 0 &&
                (!w->upload_id || strcmp(it->upload_id, w->upload_id) != 0)) {
                log_info(
                    "s3: aborting upload %s of %s, started by a CreateMultipartUpload attempt whose answer "
                    "was lost",
                    it->upload_id, w->key);
                abort_upload_id(w->conn, w->key, it->upload_id);
            }
        }
    } else {
        log_warn("s3: could not look for uploads of %s left by a retried CreateMultipartUpload (%s); prune "
                 "removes them after the grace period",
                 w->key, err.msg[0] ? err.msg : "the answer is not a listing");
    }
    s3_uploads_page_free(&page);
    s3_response_reset(&resp);
    free(q);
}

static int sw_finish(stream *st, sv_error *err)
{
    struct s3_writer *w = (struct s3_writer *)st;
    if (w->done)
        return sv_error_set(err, SV_EXIT_FAILED, "storage: finish of s3://%s/%s after it was closed",
                            w->s3->bucket, w->key);
    if (atomic_load(&w->cancel))
        return writer_error(w, err);
    if (!w->upload_id) {
        int rc = put_object(w, w->cur ? w->cur->buf : "", w->cur ? w->cur->len : 0, err);
        if (rc == 0) {
            w->done = true;
            w->committed = true;
        }
        return rc;
    }
    if (w->cur && w->cur->len > 0 && hand_off(w, err) < 0)
        return -1;
    pthread_mutex_lock(&w->mu);
    while (w->busy > 0 && !w->failed)
        pthread_cond_wait(&w->cv, &w->mu);
    bool failed = w->failed;
    pthread_mutex_unlock(&w->mu);
    if (failed)
        return writer_error(w, err);
    stop_workers(w);
    if (complete_upload(w, err) < 0)
        return -1;
    w->done = true;
    w->committed = true;
    if (w->create_retried)
        abort_lost_creates(w);
    return 0;
}

static void sw_abort(stream *st)
{
    struct s3_writer *w = (struct s3_writer *)st;
    if (w->committed)
        return;
    w->done = true;
    atomic_store(&w->cancel, true);
    stop_workers(w);
    if (w->upload_id) {
        abort_upload_id(w->conn, w->key, w->upload_id);
        free(w->upload_id);
        w->upload_id = NULL;
    }
    if (w->create_retried)
        abort_lost_creates(w);
}

static void free_parts(struct part *p)
{
    while (p) {
        struct part *next = p->next;
        free(p->buf);
        free(p);
        p = next;
    }
}

static void sw_destroy(stream *st)
{
    struct s3_writer *w = (struct s3_writer *)st;
    sw_abort(st); /* freed without finish or abort: discard, as abort would */
    free_parts(w->cur);
    free_parts(w->queue);
    free_parts(w->spare);
    for (int i = 0; i < w->etags_cap; i++)
        free(w->etags[i]);
    free(w->etags);
    free(w->threads);
    s3_conn_release(w->conn);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->upload_id);
    free(w->key);
    free(w);
}

static const struct stream_ops sw_ops = {sw_write, sw_finish, sw_abort, sw_destroy};

static stream *s3_write(storage *st, const char *key, sv_error *err)
{
    (void)err;
    struct s3 *s = impl(st);
    struct s3_writer *w = xcalloc(1, sizeof *w);
    w->base = (stream){.ops = &sw_ops, .next = NULL, .name = "storage"};
    w->s3 = s;
    w->key = full_key(s, key);
    w->conn = s3_conn_acquire(s->client);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    atomic_init(&w->cancel, false);
    return &w->base;
}

/* ---- read, stat ------------------------------------------------------ */

static int head_object(struct s3 *s, s3_conn *conn, const char *key, struct s3_response *resp, sv_error *err)
{
    struct sigv4_header h[4];
    size_t nh = ssec_headers(s, h);
    struct s3_request req = {.op = "HeadObject", .method = "HEAD", .key = key, .headers = h, .nheaders = nh};
    return s3_request(conn, &req, resp, err);
}

static bool is_not_found(const struct s3_response *r)
{
    return r->status == 404 &&
           (!r->code[0] || strcmp(r->code, "NoSuchKey") == 0 || strcmp(r->code, "NotFound") == 0);
}

/* S3 answers 400 to a read whose SSE-C key is missing, wrong, or given for
 * an object stored without one: a configuration mistake. */
static void ssec_hint(const struct s3 *s, const struct s3_response *r, sv_error *err)
{
    if (r->status != 400 || r->sink_failed)
        return;
    err->code = SV_EXIT_CONFIG;
    if (s->ssec_key)
        sv_error_hint(err, "the object was written with another SSE-C key, or without one: check "
                           "SAUVE_S3_SSE_C_KEY_FILE");
    else
        sv_error_hint(err, "if the object was written with SSE-C, set SAUVE_S3_SSE_C_KEY_FILE to its key");
}

struct get_ctx {
    stream *sink;
    const struct s3_response *resp;
    uint64_t delivered; /* bytes given to the sink, over every attempt */
    bool ranged;        /* this attempt asked for bytes=offset- */
    uint64_t offset;    /* where this attempt's bytes start */
    bool checked;       /* this attempt's Content-Range was checked */
};

/* Content-Range "bytes FIRST-LAST/SIZE" ("*" for an unknown size): *first
 * and *size (UINT64_MAX when "*" or absent). "bytes *\/SIZE" (a 416) gives
 * first = UINT64_MAX. Returns -1 when malformed. */
static int parse_content_range(const char *cr, uint64_t *first, uint64_t *size)
{
    *first = *size = UINT64_MAX;
    if (strncasecmp(cr, "bytes ", 6) != 0)
        return -1;
    const char *p = cr + 6;
    char *end;
    if (*p == '*') {
        p++;
    } else {
        if (*p < '0' || *p > '9')
            return -1;
        *first = strtoull(p, &end, 10);
        if (*end != '-')
            return -1;
        p = end + 1;
        if (*p < '0' || *p > '9')
            return -1;
        strtoull(p, &end, 10);
        p = end;
    }
    if (*p != '/')
        return -1;
    p++;
    if (*p == '*')
        return p[1] == '\0' ? 0 : -1;
    if (*p < '0' || *p > '9')
        return -1;
    *size = strtoull(p, &end, 10);
    return *end == '\0' ? 0 : -1;
}

static int get_on_data(void *ctx, const void *data, size_t len, sv_error *err)
{
    struct get_ctx *g = ctx;
    /* A server that ignores Range would replay bytes the sink already has. */
    if (g->ranged && g->resp->status != 206)
        return sv_error_set(err, SV_EXIT_FAILED,
                            "the store ignored the Range of a resumed download (HTTP %ld)", g->resp->status);
    /* ...and one that answers another range would mix them. */
    if (g->ranged && !g->checked) {
        uint64_t first, size;
        if (parse_content_range(g->resp->content_range, &first, &size) < 0 || first != g->offset)
            return sv_error_set(err, SV_EXIT_FAILED,
                                "the store answered the Range bytes=%llu- of a resumed download with "
                                "Content-Range '%s'",
                                (unsigned long long)g->offset, g->resp->content_range);
        g->checked = true;
    }
    if (stream_write(g->sink, data, len, err) < 0)
        return -1;
    g->delivered += len;
    return 0;
}

static int s3_read(storage *st, const char *key, stream *sink, sv_error *err)
{
    struct s3 *s = impl(st);
    char *fkey = full_key(s, key);
    struct sigv4_header h[6];
    char range[48], etag[128] = "";
    struct s3_response resp = {0};
    struct get_ctx g = {.sink = sink, .resp = &resp};
    struct s3_request req = {
        .op = "GetObject", .method = "GET", .key = fkey, .headers = h, .on_data = get_on_data, .ctx = &g};
    struct s3_retry rt = {0};
    struct timespec ts;
    s3_conn *conn = s3_conn_acquire(s->client);
    int rc = -1;
    uint64_t size = UINT64_MAX; /* the object's size, once an answer told it */
    for (;;) {
        if (rt.attempt == 0) {
            clock_gettime(CLOCK_MONOTONIC, &ts);
            rt.started = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
        }
        size_t nh = ssec_headers(s, h);
        g.ranged = g.delivered > 0;
        g.offset = g.delivered;
        g.checked = false;
        if (g.ranged) {
            /* Resume where the sink is, from the same version of the object. */
            snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)g.delivered);
            h[nh++] = (struct sigv4_header){"Range", range};
            if (etag[0])
                h[nh++] = (struct sigv4_header){"If-Match", etag};
        }
        req.nheaders = nh;
        uint64_t before = g.delivered;
        rt.attempt++;
        enum s3_outcome o = s3_attempt(conn, &req, &resp, err);
        if (!etag[0] && resp.etag[0] && resp.status >= 200 && resp.status < 300)
            snprintf(etag, sizeof etag, "%s", resp.etag);
        uint64_t first, total;
        if (resp.status == 200 && resp.has_length)
            size = resp.content_length;
        else if ((resp.status == 206 || resp.status == 416) &&
                 parse_content_range(resp.content_range, &first, &total) == 0 && total != UINT64_MAX)
            size = total;
        /* A resume at exactly the end (the break came after the last byte):
         * nothing is left to read, the sink has the whole object. */
        if (resp.status == 416 && g.ranged && size != UINT64_MAX && g.delivered == size) {
            sv_error_clear(err);
            rc = 0;
            break;
        }
        if (o == S3_OK) {
            rc = 0;
            break;
        }
        if (resp.sink_failed) {
            /* The sink refused the bytes (corrupt, too large, reader gone). */
            sv_error_wrap(err, "object %s", key);
            break;
        }
        if (is_not_found(&resp)) {
            sv_error_set(err, SV_EXIT_FAILED, "object %s not found in %s", key, st->url);
            break;
        }
        if (resp.status == 412 && g.ranged) {
            sv_error_set(err, SV_EXIT_FAILED,
                         "s3 GetObject s3://%s/%s: the object changed while it was being read (ETag %s)",
                         s->bucket, fkey, etag);
            break;
        }
        ssec_hint(s, &resp, err);
        if (o == S3_FAIL)
            break;
        if (g.delivered > before) {
            /* Progress: the budget of attempts starts again from here. */
            rt.attempt = 0;
            log_warn("%s; resuming at byte %llu", err->msg, (unsigned long long)g.delivered);
            continue;
        }
        if (s3_retry_wait(s->client, &req, &rt, err) < 0)
            break;
    }
    s3_conn_release(conn);
    s3_response_reset(&resp);
    free(fkey);
    return rc;
}

static int s3_stat(storage *st, const char *key, storage_entry *out, sv_error *err)
{
    struct s3 *s = impl(st);
    char *fkey = full_key(s, key);
    struct s3_response resp = {0};
    s3_conn *conn = s3_conn_acquire(s->client);
    int rc = head_object(s, conn, fkey, &resp, err);
    s3_conn_release(conn);
    if (rc == 0) {
        if (out)
            *out = (storage_entry){
                .key = key, .size = resp.has_length ? resp.content_length : 0, .mtime = resp.last_modified};
    } else if (is_not_found(&resp)) {
        sv_error_clear(err);
        rc = 1;
    } else {
        ssec_hint(s, &resp, err);
    }
    s3_response_reset(&resp);
    free(fkey);
    return rc;
}

/* ---- list ------------------------------------------------------------ */

/* Keys the storage interface never shows: outside the prefix, folder
 * markers ("x/" objects made by consoles), and names with a segment
 * starting with '.', which backends reserve for temporary objects. A "."
 * or ".." segment is no such name: it is left to the storage layer, which
 * reports it as a key sauve cannot use. */
static bool hidden_key(const char *rel, bool is_prefix)
{
    if (!*rel || (!is_prefix && rel[strlen(rel) - 1] == '/'))
        return true;
    for (const char *seg = rel; seg; seg = strchr(seg, '/')) {
        if (*seg == '/')
            seg++;
        size_t n = strcspn(seg, "/");
        bool dots = (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.');
        if (*seg == '.' && !dots)
            return true;
    }
    return false;
}

/*
 * Pages are asked with encoding-type=url: a key holding a character XML
 * cannot carry (a control character) would otherwise make the page, and so
 * the whole listing, unreadable. Such a key is decoded and reaches the
 * storage layer, which reports and skips it like any key sauve cannot use.
 *
 * RADOS Gateway's continuation token is the page's last key, echoed
 * unencoded: when that key holds such a character, the token cannot be
 * read (xml.h), and the next page starts after the last key listed
 * (start-after), which is where the token points.
 */
static int s3_list(storage *st, const char *prefix, bool recursive, storage_list_cb cb, void *ctx,
                   sv_error *err)
{
    struct s3 *s = impl(st);
    char *fprefix = full_key(s, prefix);
    size_t plen = strlen(s->prefix), fplen = strlen(fprefix);
    char *token = NULL, *after = NULL;
    char *last = NULL; /* the greatest key listed: none at or before it is passed on twice */
    s3_conn *conn = s3_conn_acquire(s->client);
    int rc = 0;
    bool stop = false;
    while (!stop) {
        char *q = NULL;
        if (token)
            append_param(&q, "continuation-token", token);
        if (!recursive)
            append_param(&q, "delimiter", "/");
        append_param(&q, "encoding-type", "url");
        append_param(&q, "list-type", "2");
        append_param(&q, "prefix", fprefix);
        if (after)
            append_param(&q, "start-after", after);
        struct s3_request req = {
            .op = "ListObjectsV2", .method = "GET", .key = "", .subject = fprefix, .query = q};
        struct s3_response resp = {0};
        struct s3_list_page page = {0};
        rc = s3_request(conn, &req, &resp, err);
        if (rc == 0 && s3_xml_list_objects(resp.body, resp.body_len, &page) < 0)
            rc = sv_error_set(err, SV_EXIT_FAILED,
                              "s3 ListObjectsV2 s3://%s/%s at %s: the answer is not a listing", s->bucket,
                              fprefix, s3_client_endpoint_url(s->client));
        s3_response_reset(&resp);
        free(q);
        if (rc < 0)
            break;
        bool progress = false;
        for (size_t i = 0; i < page.n && !stop; i++) {
            const struct s3_list_item *it = &page.items[i];
            if (it->undecodable) {
                storage_skip_key(st, it->is_prefix ? "prefix" : "object", it->key,
                                 "the store sent it in an encoding that does not decode (or to NUL)");
                continue;
            }
            /* A page started with start-after may give the last common
             * prefix again: never twice, never backwards. */
            if (last && strcmp(it->key, last) <= 0)
                continue;
            progress = true;
            free(last);
            last = xstrdup(it->key);
            /* Keys outside what was asked for are a store's mistake, never a key of this listing. */
            if (strncmp(it->key, fprefix, fplen) != 0 || hidden_key(it->key + plen, it->is_prefix))
                continue;
            storage_entry e = {
                .key = it->key + plen, .size = it->size, .mtime = it->mtime, .is_prefix = it->is_prefix};
            if (cb(ctx, &e) != 0)
                stop = true;
        }
        free(token);
        free(after);
        token = after = NULL;
        if (page.truncated && page.next_token) {
            token = xstrdup(page.next_token);
        } else if (page.truncated) {
            if (!progress) {
                rc = sv_error_set(err, SV_EXIT_FAILED,
                                  "s3 ListObjectsV2 s3://%s/%s at %s: a page is truncated, but neither its "
                                  "continuation token nor its keys can be read",
                                  s->bucket, fprefix, s3_client_endpoint_url(s->client));
                s3_list_page_free(&page);
                break;
            }
            after = xstrdup(last);
        }
        s3_list_page_free(&page);
        if (!token && !after)
            break;
        if (signals_check(err) < 0) {
            rc = -1;
            break;
        }
    }
    free(token);
    free(after);
    free(last);
    s3_conn_release(conn);
    free(fprefix);
    return rc < 0 ? -1 : 0;
}

/* ---- remove ---------------------------------------------------------- */

static int delete_batch(struct s3 *s, s3_conn *conn, const char *const *keys, size_t n, size_t *failed,
                        sv_error *err)
{
    struct xml_buf body = {0};
    xml_buf_add(&body, "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
    for (size_t i = 0; i < n; i++) {
        char *fkey = full_key(s, keys[i]);
        xml_buf_add(&body, "<Object><Key>");
        xml_buf_add_escaped(&body, fkey);
        xml_buf_add(&body, "</Key></Object>");
        free(fkey);
    }
    xml_buf_add(&body, "</Delete>");
    char md5[25];
    s3_content_md5(body.data, body.len, md5);
    struct sigv4_header h[2] = {{"Content-MD5", md5}, {"Content-Type", "application/xml"}};
    struct s3_request req = {.op = "DeleteObjects",
                             .method = "POST",
                             .key = "",
                             .subject = s->prefix,
                             .query = "delete",
                             .headers = h,
                             .nheaders = 2,
                             .body = body.data,
                             .body_len = body.len};
    struct s3_response resp = {0};
    int rc = s3_request(conn, &req, &resp, err);
    struct s3_delete_result dr = {0};
    if (rc == 0 && s3_xml_delete_result(resp.body, resp.body_len, &dr) < 0)
        rc = sv_error_set(err, SV_EXIT_FAILED,
                          "s3 DeleteObjects s3://%s/%s at %s: the answer is not a DeleteResult", s->bucket,
                          s->prefix, s3_client_endpoint_url(s->client));
    if (rc == 0 && dr.n > 0) {
        if (*failed == 0)
            sv_error_set(err, SV_EXIT_FAILED, "s3 DeleteObjects s3://%s/%s: %s: %s", s->bucket,
                         dr.errors[0].key, dr.errors[0].code, dr.errors[0].message);
        for (size_t i = 0; i < dr.n; i++)
            log_warn("s3 DeleteObjects s3://%s/%s: %s: %s", s->bucket, dr.errors[i].key, dr.errors[i].code,
                     dr.errors[i].message);
        *failed += dr.n;
    }
    s3_delete_result_free(&dr);
    s3_response_reset(&resp);
    xml_buf_free(&body);
    return rc;
}

static int s3_remove(storage *st, const char *const *keys, size_t nkeys, sv_error *err)
{
    struct s3 *s = impl(st);
    s3_conn *conn = s3_conn_acquire(s->client);
    size_t failed = 0;
    int rc = 0;
    for (size_t i = 0; i < nkeys && rc == 0; i += DELETE_BATCH) {
        size_t n = nkeys - i < DELETE_BATCH ? nkeys - i : DELETE_BATCH;
        rc = delete_batch(s, conn, keys + i, n, &failed, err);
    }
    s3_conn_release(conn);
    if (rc < 0)
        return -1;
    if (failed > 1)
        sv_error_wrap(err, "%zu of %zu deletions failed, the first", failed, nkeys);
    return failed ? -1 : 0;
}

/* ---- interrupted uploads --------------------------------------------- */

/* Asked with encoding-type=url, as s3_list and for the same reason. When
 * RADOS Gateway's markers (the last key, echoed unencoded) cannot be read,
 * the next page starts after the last upload listed, which is where they
 * point. */
static int s3_list_uploads(storage *st, const char *prefix, storage_upload_cb cb, void *ctx, sv_error *err)
{
    struct s3 *s = impl(st);
    char *fprefix = full_key(s, prefix ? prefix : "");
    size_t plen = strlen(s->prefix), fplen = strlen(fprefix);
    char *key_marker = NULL, *id_marker = NULL;
    s3_conn *conn = s3_conn_acquire(s->client);
    int rc = 0;
    bool stop = false;
    while (!stop) {
        char *q = NULL;
        append_param(&q, "encoding-type", "url");
        if (key_marker)
            append_param(&q, "key-marker", key_marker);
        append_param(&q, "prefix", fprefix);
        if (id_marker)
            append_param(&q, "upload-id-marker", id_marker);
        append_param(&q, "uploads", NULL);
        struct s3_request req = {
            .op = "ListMultipartUploads", .method = "GET", .key = "", .subject = fprefix, .query = q};
        struct s3_response resp = {0};
        struct s3_uploads_page page = {0};
        rc = s3_request(conn, &req, &resp, err);
        if (rc == 0 && s3_xml_list_uploads(resp.body, resp.body_len, &page) < 0)
            rc = sv_error_set(err, SV_EXIT_FAILED,
                              "s3 ListMultipartUploads s3://%s/%s at %s: the answer is not a listing",
                              s->bucket, fprefix, s3_client_endpoint_url(s->client));
        s3_response_reset(&resp);
        free(q);
        if (rc < 0)
            break;
        const struct s3_upload_item *lastu = NULL;
        for (size_t i = 0; i < page.n && !stop; i++) {
            const struct s3_upload_item *it = &page.items[i];
            if (it->undecodable) {
                storage_skip_key(st, "interrupted write", it->key,
                                 "the store sent it in an encoding that does not decode (or to NUL)");
                continue;
            }
            lastu = it;
            if (strncmp(it->key, fprefix, fplen) != 0)
                continue; /* not what was asked for: a store's mistake */
            storage_upload u = {.key = it->key + plen, .id = it->upload_id, .started = it->initiated};
            if (cb(ctx, &u) != 0)
                stop = true;
        }
        char *prev_key = key_marker, *prev_id = id_marker;
        key_marker = id_marker = NULL;
        if (page.truncated && !page.markers_unusable) {
            key_marker = xstrdup(page.next_key_marker);
            id_marker = xstrdup(page.next_upload_id_marker);
        } else if (page.truncated && lastu) {
            key_marker = xstrdup(lastu->key);
            id_marker = xstrdup(lastu->upload_id);
        } else if (page.truncated) {
            rc = -1;
        }
        /* The same markers again would list the same page forever. */
        if (rc == 0 && key_marker && prev_key && strcmp(key_marker, prev_key) == 0 &&
            strcmp(id_marker, prev_id) == 0)
            rc = -1;
        if (rc < 0)
            sv_error_set(err, SV_EXIT_FAILED,
                         "s3 ListMultipartUploads s3://%s/%s at %s: a page is truncated, but neither its "
                         "markers nor its keys give a way on",
                         s->bucket, fprefix, s3_client_endpoint_url(s->client));
        free(prev_key);
        free(prev_id);
        s3_uploads_page_free(&page);
        if (rc < 0 || !key_marker)
            break;
    }
    free(key_marker);
    free(id_marker);
    s3_conn_release(conn);
    free(fprefix);
    return rc < 0 ? -1 : 0;
}

static int s3_abort_upload(storage *st, const storage_upload *upload, sv_error *err)
{
    struct s3 *s = impl(st);
    char *fkey = full_key(s, upload->key);
    char *q = NULL;
    append_param(&q, "uploadId", upload->id);
    struct s3_request req = {.op = "AbortMultipartUpload", .method = "DELETE", .key = fkey, .query = q};
    struct s3_response resp = {0};
    s3_conn *conn = s3_conn_acquire(s->client);
    int rc = s3_request(conn, &req, &resp, err);
    s3_conn_release(conn);
    if (rc < 0 && strcmp(resp.code, "NoSuchUpload") == 0) {
        sv_error_clear(err); /* already gone */
        rc = 0;
    }
    s3_response_reset(&resp);
    free(q);
    free(fkey);
    return rc;
}

/* ---- open, close ----------------------------------------------------- */

static void s3_close(storage *st)
{
    struct s3 *s = impl(st);
    if (!s)
        return;
    s3_client_free(s->client);
    s3_credentials_free(s->creds);
    free(s->bucket);
    free(s->prefix);
    free(s->sse);
    free(s->sse_kms_key_id);
    free(s->storage_class);
    free_secret(s->ssec_key);
    if (s->own_cfg) {
        config_free(s->own_cfg);
        free(s->own_cfg);
    }
    free(s);
    st->impl = NULL;
}

static const struct storage_backend s3_backend = {
    .scheme = "s3",
    .check = s3_check,
    .write = s3_write,
    .read = s3_read,
    .stat = s3_stat,
    .list = s3_list,
    .remove = s3_remove,
    .list_uploads = s3_list_uploads,
    .abort_upload = s3_abort_upload,
    .close = s3_close,
};

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* The SSE-C key: a file of 32 raw bytes, or of their base64 (one trailing
 * newline or blanks allowed). Keeps only its base64 and MD5. */
static int load_ssec_key(struct s3 *s, const char *path, sv_error *err)
{
    const char *what = "SAUVE_S3_SSE_C_KEY_FILE";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sv_error_set(err, SV_EXIT_CONFIG, "%s: cannot read %s: %s", what, path, strerror(errno));
        return sv_error_hint(err, "mount the secret holding the 256-bit key at that path");
    }
    unsigned char buf[KEY_FILE_MAX + 1];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf)
            break;
    }
    close(fd);
    unsigned char key[SSEC_KEY_BYTES + 3];
    bool ok = false;
    if (len == SSEC_KEY_BYTES) {
        memcpy(key, buf, SSEC_KEY_BYTES);
        ok = true;
    } else if (len <= KEY_FILE_MAX) {
        size_t b = 0, e = len;
        while (b < e && (buf[b] == ' ' || buf[b] == '\t' || buf[b] == '\n' || buf[b] == '\r'))
            b++;
        while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t' || buf[e - 1] == '\n' || buf[e - 1] == '\r'))
            e--;
        /* 32 bytes are 44 base64 characters, one '=' of padding. */
        if (e - b == 44 && buf[b + 43] == '=' && buf[b + 42] != '=') {
            int n = EVP_DecodeBlock(key, buf + b, 44);
            ok = n == SSEC_KEY_BYTES + 1; /* DecodeBlock counts the padding as a byte */
        }
    }
    OPENSSL_cleanse(buf, sizeof buf);
    if (!ok) {
        OPENSSL_cleanse(key, sizeof key);
        sv_error_set(err, SV_EXIT_CONFIG, "%s: %s does not hold a 256-bit key (%zu bytes read)", what, path,
                     len);
        return sv_error_hint(err, "write 32 random bytes, or their base64: openssl rand -base64 32 > FILE");
    }
    s->ssec_key = s3_base64(key, SSEC_KEY_BYTES);
    s3_content_md5(key, SSEC_KEY_BYTES, s->ssec_md5);
    OPENSSL_cleanse(key, sizeof key);
    log_add_secret(s->ssec_key);
    return 0;
}

int storage_s3_open(storage *st, const char *url, const struct sv_config *cfg, sv_error *err)
{
    struct s3 *s = xcalloc(1, sizeof *s);
    st->backend = &s3_backend;
    st->impl = s;
    if (s3_parse_storage_url(url, &s->bucket, &s->prefix, err) < 0)
        goto fail;
    if (!cfg) {
        /* No configuration given: the settings of the environment. */
        s->own_cfg = xcalloc(1, sizeof *s->own_cfg);
        struct config_load_options lo = {0};
        if (config_load(s->own_cfg, &lo, err) < 0) {
            free(s->own_cfg);
            s->own_cfg = NULL;
            goto fail;
        }
        cfg = s->own_cfg;
    }

    /* Region: AWS_REGION, else AWS_DEFAULT_REGION (what AWS CLI v1 reads). */
    const char *region = cfg->s3_region;
    if (cfg->origin[OPT_ID_s3_region] <= ORIGIN_DEFAULT && env_nonempty("AWS_DEFAULT_REGION"))
        region = env_nonempty("AWS_DEFAULT_REGION");
    if (!region || !*region)
        region = "us-east-1";

    /* Endpoint: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else AWS's. */
    char *endpoint_url;
    const char *what = "AWS_ENDPOINT_URL_S3";
    if (cfg->s3_endpoint && *cfg->s3_endpoint) {
        endpoint_url = xstrdup(cfg->s3_endpoint);
    } else if (env_nonempty("AWS_ENDPOINT_URL")) {
        endpoint_url = xstrdup(env_nonempty("AWS_ENDPOINT_URL"));
        what = "AWS_ENDPOINT_URL";
    } else {
        bool china = strncmp(region, "cn-", 3) == 0;
        endpoint_url = xasprintf("https://s3.%s.amazonaws.com%s", region, china ? ".cn" : "");
        what = "AWS_REGION";
    }
    struct s3_endpoint ep;
    if (s3_endpoint_parse(endpoint_url, what, &ep, err) < 0) {
        free(endpoint_url);
        goto fail;
    }

    const char *ca =
        cfg->s3_ca_bundle && *cfg->s3_ca_bundle ? cfg->s3_ca_bundle : env_nonempty("AWS_CA_BUNDLE");
    if (ca && access(ca, R_OK) < 0) {
        sv_error_set(err, SV_EXIT_CONFIG, "%s: cannot read %s: %s",
                     cfg->s3_ca_bundle && *cfg->s3_ca_bundle ? "SAUVE_S3_CA_BUNDLE" : "AWS_CA_BUNDLE", ca,
                     strerror(errno));
        sv_error_hint(err, "name a PEM file of CA certificates, or unset it to trust the system's");
        free(endpoint_url);
        s3_endpoint_free(&ep);
        goto fail;
    }

    s->part_size = (uint64_t)(cfg->s3_part_size > 0 ? cfg->s3_part_size : 16) * S3_MIB;
    s->parallel = cfg->s3_parallel > 0 ? (int)cfg->s3_parallel : 4;
    if (cfg->s3_sse && strcmp(cfg->s3_sse, "none") != 0)
        s->sse = xstrdup(cfg->s3_sse);
    if (cfg->s3_sse_kms_key_id && *cfg->s3_sse_kms_key_id) {
        if (!s->sse || strcmp(s->sse, "aws:kms") != 0) {
            sv_error_set(err, SV_EXIT_CONFIG, "SAUVE_S3_SSE_KMS_KEY_ID is set but SAUVE_S3_SSE is %s",
                         s->sse ? s->sse : "none");
            sv_error_hint(err, "set SAUVE_S3_SSE=aws:kms to encrypt with that KMS key");
            free(endpoint_url);
            s3_endpoint_free(&ep);
            goto fail;
        }
        s->sse_kms_key_id = xstrdup(cfg->s3_sse_kms_key_id);
    }
    if (cfg->s3_storage_class && *cfg->s3_storage_class)
        s->storage_class = xstrdup(cfg->s3_storage_class);
    if (cfg->s3_sse_c_key_file && *cfg->s3_sse_c_key_file) {
        if (s->sse) {
            sv_error_set(err, SV_EXIT_CONFIG,
                         "SAUVE_S3_SSE_C_KEY_FILE and SAUVE_S3_SSE=%s exclude each other", s->sse);
            sv_error_hint(err, "an object is encrypted either with a customer key (SSE-C) or by S3 (SSE-S3, "
                               "SSE-KMS): unset one");
            free(endpoint_url);
            s3_endpoint_free(&ep);
            goto fail;
        }
        /* The key goes in a header of every upload, download and stat: over
         * plain http anyone on the path reads it (a store refusing SSE-C
         * without TLS does so only after receiving it). Refused before the
         * key file is read and before any request. */
        if (!ep.https) {
            sv_error_set(
                err, SV_EXIT_CONFIG,
                "SAUVE_S3_SSE_C_KEY_FILE is set but the endpoint %s (%s) is plain http: the SSE-C key "
                "would cross the network in clear text with every request",
                endpoint_url, what);
            sv_error_hint(err, "use an https:// endpoint (with SAUVE_S3_CA_BUNDLE for a private CA), or "
                               "SAUVE_S3_SSE instead of a customer key");
            free(endpoint_url);
            s3_endpoint_free(&ep);
            goto fail;
        }
        if (load_ssec_key(s, cfg->s3_sse_c_key_file, err) < 0) {
            free(endpoint_url);
            s3_endpoint_free(&ep);
            goto fail;
        }
    }

    s->creds = s3_credentials_new(cfg, err);
    if (!s->creds) {
        free(endpoint_url);
        s3_endpoint_free(&ep);
        goto fail;
    }
    struct s3_client_options co = {
        .bucket = s->bucket,
        .endpoint = &ep,
        .endpoint_url = endpoint_url,
        .region = region,
        .path_style = cfg->s3_path_style,
        .ca_bundle = ca,
        .timeout_s = cfg->s3_timeout > 0 ? cfg->s3_timeout : 60,
        .max_attempts = cfg->s3_max_attempts > 0 ? (int)cfg->s3_max_attempts : 6,
        .creds = s->creds,
    };
    s->client = s3_client_new(&co);
    log_debug("s3: bucket %s, prefix '%s', endpoint %s, region %s, %s-style, credentials: %s", s->bucket,
              s->prefix, endpoint_url, region,
              cfg->s3_path_style || !s3_bucket_virtual_ok(s->bucket, ep.https) ? "path" : "virtual-hosted",
              s3_credentials_describe(s->creds));
    free(endpoint_url);
    s3_endpoint_free(&ep);
    return 0;

fail:
    s3_close(st);
    st->backend = NULL;
    return -1;
}
