/*
 * Restore: one source of one set, streamed from storage through SHA-256 and
 * zstd into the loader (pg_restore, psql), never through local disk. The
 * target is changed only when the whole artifact verified: a new target is
 * created and dropped again on failure; a non-empty target is replaced only
 * with --clean, after a safety backup, by restoring into a scratch database
 * and swapping names once it is complete.
 *
 * The command itself is cmd_restore (cli/commands.h).
 */
#ifndef SAUVE_RESTORE_RESTORE_H
#define SAUVE_RESTORE_RESTORE_H

#include <stdbool.h>

#include "catalog/catalog.h"
#include "config/config.h"
#include "storage/storage.h"

/*
 * For an artifact encrypted to age recipients: whether SAUVE_AGE_IDENTITY_FILE
 * holds the identity of one of them, checked before anything changes; the
 * error (78) names the recipients. 0 for an unencrypted artifact.
 */
int restore_check_identity(const sv_config *cfg, const catalog_set *set, const manifest_artifact *a,
                           sv_error *err);

/*
 * Streams the object of artifact a (of set) into sink, checking its SHA-256
 * and size against the manifest before the sink is finished, and decrypting
 * it with SAUVE_AGE_IDENTITY_FILE when it is encrypted. Finishes the
 * sink on success and aborts it on any failure; frees it either way.
 */
int restore_stream_artifact(storage *st, const sv_config *cfg, const catalog_set *set,
                            const manifest_artifact *a, stream *sink, sv_error *err);

#endif
