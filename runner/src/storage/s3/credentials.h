/*
 * Where S3 credentials come from, in the order AWS SDKs use:
 *   1. static keys: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN),
 *      or their _FILE forms, or the config file (s3.access_key_id, ...);
 *   2. web identity (IRSA on EKS): AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE,
 *      exchanged with STS AssumeRoleWithWebIdentity;
 *   3. container credentials (EKS Pod Identity, ECS):
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI (+ AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
 *      or AWS_CONTAINER_AUTHORIZATION_TOKEN), or AWS_CONTAINER_CREDENTIALS_RELATIVE_URI.
 * Temporary credentials are refreshed before they expire, so a long upload
 * never signs with an expired key. Thread-safe: upload workers share one
 * provider.
 */
#ifndef SAUVE_STORAGE_S3_CREDENTIALS_H
#define SAUVE_STORAGE_S3_CREDENTIALS_H

#include <time.h>

#include "common/error.h"

struct sv_config;

typedef struct s3_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL for long-term keys */
    time_t expires;      /* 0 for long-term keys */
} s3_credentials;

typedef struct s3_cred_provider s3_cred_provider;

/*
 * Chooses the first source of the chain that is configured. Fails with
 * SV_EXIT_CONFIG, naming the variables to set, when none is (or when a
 * source is half-configured, e.g. AWS_ACCESS_KEY_ID without the secret).
 * Fetches nothing yet.
 */
s3_cred_provider *s3_credentials_new(const struct sv_config *cfg, sv_error *err);

/*
 * Copies current credentials into out (free with s3_credentials_clear),
 * fetching or refreshing them when absent or expiring within 5 minutes.
 * Fetch failures: SV_EXIT_TEMPFAIL when the endpoint is unreachable or
 * answers 5xx, SV_EXIT_CONFIG when it refuses (e.g. AccessDenied), with the
 * endpoint and the service's error code named; never a token or key.
 */
int s3_credentials_get(s3_cred_provider *p, s3_credentials *out, sv_error *err);

/* "static keys", "web identity arn:aws:iam::1:role/x", "container credentials http://..." */
const char *s3_credentials_describe(const s3_cred_provider *p);

void s3_credentials_clear(s3_credentials *c);
void s3_credentials_free(s3_cred_provider *p);

#endif
