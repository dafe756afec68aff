/*
 * s3put: benchmark-only. Copies standard input into one object of the
 * storage named by SAUVE_STORAGE, through the same code a backup uses
 * (storage_open, storage_write, stream_copy_fd, stream_finish), with the
 * configuration loaded from the environment like sauve's own (SAUVE_S3_*,
 * AWS_*). No compression, no hashing: it measures the storage backend alone.
 * Not a user-facing command; bench/s3.sh builds and runs it.
 *
 *   SAUVE_STORAGE=s3://bucket/prefix s3put KEY < data
 *
 * Prints "BYTES SECONDS" on stdout; exits 0, or the sv_error's code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/log.h"
#include "common/signals.h"
#include "config/config.h"
#include "pipeline/stream.h"
#include "storage/storage.h"

static int fail(const char *what, const sv_error *err)
{
    fprintf(stderr, "s3put: %s: %s", what, err->msg);
    if (err->hint[0])
        fprintf(stderr, " (hint: %s)", err->hint);
    fputc('\n', stderr);
    return err->code ? err->code : 1;
}

int main(int argc, char **argv)
{
    if (argc != 2 || !*argv[1]) {
        fputs("usage: SAUVE_STORAGE=URL s3put KEY < data\n", stderr);
        return SV_EXIT_USAGE;
    }
    log_init(LOG_FORMAT_TEXT, LOG_WARN);
    signals_install();

    sv_config cfg;
    sv_error err = {0};
    struct config_load_options lo = {0};
    if (config_load(&cfg, &lo, &err) < 0)
        return fail("configuration", &err);
    if (config_require(&cfg, OPT_ID_storage, &err) < 0) {
        config_free(&cfg);
        return fail("configuration", &err);
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = 0;
    storage *st = storage_open(cfg.storage, &cfg, &err);
    if (!st) {
        rc = fail("storage_open", &err);
        config_free(&cfg);
        return rc;
    }
    stream *s = storage_write(st, argv[1], &err);
    if (!s) {
        rc = fail("storage_write", &err);
        goto out;
    }
    int64_t n = stream_copy_fd(s, 0, NULL, NULL, &err);
    if (n < 0) {
        rc = fail("copying standard input", &err);
        stream_abort(s);
    } else if (stream_finish(s, &err) < 0) {
        rc = fail("stream_finish", &err);
    }
    stream_free(s);
    if (rc == 0) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        printf("%lld %.3f\n", (long long)n, secs);
    }
out:
    storage_close(st);
    config_free(&cfg);
    return rc;
}
