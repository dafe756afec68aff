/*
 * Redis: a point-in-time RDB taken the way a replica takes it. sauve
 * connects (TCP, or TLS with verification), authenticates, asks for a full
 * resynchronisation and streams the RDB the server sends into the pipeline,
 * checking it on the way (magic, version, end opcode, CRC-64).
 *
 *   redis_proto.c   the bytes: CRC-64, the RDB checker, RESP replies and
 *                   the framing of the payload after SYNC/PSYNC (no I/O)
 *   redis_conn.c    the URL, the connection (plain or TLS), commands
 *   redis_backup.c  the source behind sources/source.h
 *   redis_rdb.c     the RDB walker: an RDB cut into its items, each value
 *                   as the bytes a DUMP payload carries (no I/O)
 *   redis_keys.c    the keys-mode stream (SAUVE_REDIS_MODE=keys): DUMP
 *                   payloads with their database, key and expiry, for
 *                   servers that refuse replication (no I/O)
 *   redis_restore.c the loader behind sources/loader.h
 */
#ifndef SAUVE_SOURCES_REDIS_H
#define SAUVE_SOURCES_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "config/config.h"
#include "sources/source.h"

/* ---- CRC-64 and the RDB checker (redis_proto.c) ------------------------- */

/* CRC-64 as Redis computes it over an RDB ("Jones" coefficients
 * 0xad93d23594c935a9, reflected input and output, initial value 0, no final
 * xor): crc64(0, "123456789", 9) is 0xe9c6d914c4b8d9ca. Feed chunks by
 * passing the previous result as crc. */
uint64_t redis_crc64(uint64_t crc, const void *buf, size_t len);

/*
 * Checks an RDB as it streams past, in chunks of any size: the magic
 * "REDIS" and 4-digit version (checked as soon as the 9 bytes are there),
 * and at the end that the byte before the last 8 is the end opcode 0xFF and
 * that the last 8 (little-endian) are the CRC-64 of everything before them.
 * The structure in between is not parsed: the checksum covers it.
 */
typedef struct redis_rdb_check {
    uint64_t crc;   /* over every byte but the last 8 seen so far */
    uint64_t bytes; /* bytes seen */
    unsigned char head[9];
    unsigned char tail[8]; /* the last min(bytes, 8) bytes, oldest first */
    size_t tail_len;
    unsigned char last_crc_byte; /* the newest byte that went into crc */
    int version;                 /* RDB version once the header was seen, else 0 */
    bool failed;
    bool unchecksummed; /* after finish: the server wrote 0 (rdbchecksum no) */
    char error[160];
} redis_rdb_check;

void redis_rdb_check_init(redis_rdb_check *c);
/* Returns 0, or -1 once the header is known to be wrong (c->error says why);
 * after a failure every call fails. */
int redis_rdb_check_update(redis_rdb_check *c, const void *buf, size_t len);
/* At the end of the stream: 0 when the RDB is whole, else -1 with c->error. */
int redis_rdb_check_finish(redis_rdb_check *c);

/* ---- the RDB walker (redis_rdb.c) ---------------------------------------- */

/* The newest RDB version the walker knows (Redis 7.4 writes 12). */
#define REDIS_RDB_VERSION_MAX 12

enum redis_rdb_item_kind {
    RDB_ITEM_KEY,        /* a key and its value */
    RDB_ITEM_SELECTDB,   /* the keys that follow are in database db */
    RDB_ITEM_AUX,        /* an aux field: key = name, value = its value */
    RDB_ITEM_FUNCTION,   /* a function library: value = its code */
    RDB_ITEM_MODULE_AUX, /* a module's global data, skipped: module names it */
    RDB_ITEM_HINT,       /* RESIZEDB, SLOT_INFO: sizes, nothing to restore */
    RDB_ITEM_EOF,        /* the end opcode */
};

/* One item. The pointers are valid until the next call on the walker. */
typedef struct redis_rdb_item {
    enum redis_rdb_item_kind kind;
    uint64_t db;              /* the database the item is in */
    int type;                 /* KEY: the value's type byte */
    const unsigned char *key; /* KEY: the key, decoded (NUL-terminated too); AUX: the name */
    size_t key_len;
    const unsigned char *value; /* KEY: the value's bytes as stored (a DUMP payload's middle);
                                 * AUX, FUNCTION: decoded */
    size_t value_len;
    bool has_expire;    /* KEY: an expire opcode came before it */
    int64_t expire_ms;  /* KEY: with has_expire, absolute Unix time in ms (negative: long
                         * expired, as a loading server takes it); else -1 */
    int64_t idle;       /* KEY: LRU idle seconds, -1 when absent */
    int freq;           /* KEY: LFU counter, -1 when absent */
    uint64_t module_id; /* MODULE_AUX */
    char module[10];    /* MODULE_AUX: the module's 9-character name */
    uint64_t offset;    /* where the item starts in the RDB */
} redis_rdb_item;

/*
 * Cuts an RDB into items as it streams in, in chunks of any size: feed the
 * bytes, then take the items they complete with next. An item is held whole
 * in memory (a DUMP payload needs the whole value), up to max_item bytes;
 * while one is incomplete the walker holds at most about 1.5 times it. The
 * whole stream also goes through the RDB checker (version, end, CRC-64),
 * whose verdict only finish gives. Module values, hashes with field
 * expiration and unknown types fail, naming what they are.
 */
typedef struct redis_rdb_walker {
    unsigned char *buf;
    size_t off, len, cap; /* buf[off..len): bytes not yet handed out as items */
    size_t need, tried;   /* when to try again: bytes the item needs, bytes at the last try */
    size_t max_item;
    unsigned char *key, *aux; /* decoded strings of the last item */
    uint64_t db;
    uint64_t bytes; /* fed */
    int version;    /* once the header was read, else 0 */
    bool eof;       /* the end opcode was read */
    bool failed;
    redis_rdb_check check;
    char error[200];
} redis_rdb_walker;

void redis_rdb_walker_init(redis_rdb_walker *w, size_t max_item);
/* Appends bytes; -1 once the stream is known to be bad (w->error). */
int redis_rdb_walker_feed(redis_rdb_walker *w, const void *buf, size_t len);
/* The next complete item into *it: 1, 0 when more bytes are needed (or
 * after the end), -1 on a malformed or unsupported RDB (w->error names the
 * byte). at_end: nothing more will be fed (an incomplete item is then
 * an error). */
int redis_rdb_walker_next(redis_rdb_walker *w, redis_rdb_item *it, bool at_end);
/* After the last item: 0 when the RDB ended with its end opcode and a
 * matching checksum, else -1 with w->error. */
int redis_rdb_walker_finish(redis_rdb_walker *w);
void redis_rdb_walker_free(redis_rdb_walker *w);

/* "hash", "stream", ...: the kind of value of an RDB type byte, NULL for a
 * type the format does not have. */
const char *redis_rdb_type_name(int type);

/* The 10 bytes that end a DUMP payload of value (type byte, then the
 * value's bytes): the RDB version (2 bytes, little-endian) and the CRC-64
 * of everything before (8 bytes, little-endian). Returns 10. */
size_t redis_dump_trailer(int type, const void *value, size_t len, int version, unsigned char out[10]);

/* The newest RDB version a server of this redis_version (INFO server)
 * reads: "7.0.15" is 10. 0 when unknown (Redis 8 and later). */
int redis_rdb_version_of(const char *redis_version);

/* The address a sauve backup announces as a replica (REPLCONF
 * ip-address): INFO replication and the server's log then name it, and a
 * restore into that server sees that a backup is running. */
#define REDIS_BACKUP_REPLICA "sauve-backup"

/* Pure: how many replicas in the text of INFO replication announced
 * REDIS_BACKUP_REPLICA; the state of the first ("wait_bgsave",
 * "send_bulk") into state[len]. */
int redis_info_backups(const char *replication, char *state, size_t len);

/* ---- the keys-mode stream (redis_keys.c) -------------------------------- */

/* Format "redis-keys": docs/redis-keys-format.md. Not point-in-time: each
 * key is read at its own moment. */
#define REDIS_KEYS_FORMAT          "redis-keys"
#define REDIS_KEYS_MAGIC           "SAUVE-REDIS-KEYS"
#define REDIS_KEYS_MAGIC_LEN       16
#define REDIS_KEYS_VERSION         1
#define REDIS_KEYS_HEADER_LEN      18
#define REDIS_KEYS_RECORD_HEAD_LEN 25
#define REDIS_KEYS_END_LEN         25
/* A DUMP payload's least size: type byte, RDB version, CRC-64. */
#define REDIS_DUMP_PAYLOAD_MIN 11
/* The largest key or DUMP payload stored or read: Redis's default
 * proto-max-bulk-len, the most a RESTORE accepts. */
#define REDIS_KEYS_MAX_ITEM (512u << 20)

/* 0 when payload (a DUMP reply) ends with the CRC-64 of what precedes it,
 * with *version (may be NULL) its RDB version; -1 otherwise. */
int redis_dump_payload_check(const void *payload, size_t len, int *version);

/* The writer is a running CRC-64 and counts: the caller writes each byte it
 * is given (header, record heads, end) and passes every other byte it
 * writes (keys, payloads) through redis_keys_writer_pass, in order. */
typedef struct redis_keys_writer {
    uint64_t crc, bytes, keys;
} redis_keys_writer;

void redis_keys_writer_init(redis_keys_writer *w);
void redis_keys_writer_pass(redis_keys_writer *w, const void *buf, size_t len);
size_t redis_keys_header(redis_keys_writer *w, unsigned char out[REDIS_KEYS_HEADER_LEN]);
/* The head of a record; its key_len bytes of key and payload_len bytes of
 * payload must follow, passed through redis_keys_writer_pass. expire_ms <
 * 0: none. */
size_t redis_keys_record_head(redis_keys_writer *w, uint32_t db, int64_t expire_ms, uint32_t key_len,
                              uint64_t payload_len, unsigned char out[REDIS_KEYS_RECORD_HEAD_LEN]);
/* The end record: the count of records written, vanished, and the CRC. */
size_t redis_keys_end(redis_keys_writer *w, uint64_t vanished, unsigned char out[REDIS_KEYS_END_LEN]);

enum redis_keys_record_kind { REDIS_KEYS_KEY, REDIS_KEYS_END };

/* A record; pointers valid until the next call on the reader. */
typedef struct redis_keys_record {
    enum redis_keys_record_kind kind;
    uint32_t db;
    int64_t expire_ms; /* absolute Unix ms, -1: none */
    const unsigned char *key;
    size_t key_len;
    const unsigned char *payload; /* a whole DUMP payload, its CRC-64 checked */
    size_t payload_len;
    int rdb_version;         /* the payload's */
    uint64_t keys, vanished; /* END */
} redis_keys_record;

/*
 * Reads a keys-mode stream fed in chunks of any size, holding one record
 * whole (at most max_item bytes of key and of payload; about twice that
 * while one arrives). Every payload's CRC-64 is checked before it is
 * handed out; the end record's count and CRC-64 are checked when it is
 * read; bytes after it are an error.
 */
typedef struct redis_keys_reader {
    unsigned char *buf;
    size_t off, len, cap, max_item;
    uint64_t crc;      /* over the bytes handed out */
    uint64_t consumed; /* bytes handed out */
    uint64_t keys, vanished;
    int version;         /* once the header was read, else 0 */
    int max_rdb_version; /* the newest RDB version of a payload seen */
    bool ended, failed;
    char error[200];
} redis_keys_reader;

void redis_keys_reader_init(redis_keys_reader *r, size_t max_item);
/* -1 once the stream is known to be bad (r->error). */
int redis_keys_reader_feed(redis_keys_reader *r, const void *buf, size_t len);
/* 1 with *rec, 0 when more bytes are needed (or after the end), -1 when the
 * stream is bad (r->error). at_end: nothing more will be fed. */
int redis_keys_reader_next(redis_keys_reader *r, redis_keys_record *rec, bool at_end);
/* 0 when the end record was read, else -1 with r->error. */
int redis_keys_reader_finish(redis_keys_reader *r);
void redis_keys_reader_free(redis_keys_reader *r);

/* ---- RESP replies (redis_proto.c) -------------------------------------- */

enum redis_reply_type {
    REDIS_REPLY_STATUS,
    REDIS_REPLY_ERROR,
    REDIS_REPLY_INTEGER,
    REDIS_REPLY_BULK,
    REDIS_REPLY_NIL,
    REDIS_REPLY_ARRAY
};

/* One reply. Arrays are read whole, with their elements (SCAN's reply). */
typedef struct redis_reply {
    enum redis_reply_type type;
    char *str; /* status, error or bulk text, NUL-terminated; NULL otherwise */
    size_t len;
    long long integer;           /* INTEGER; ARRAY: the element count */
    struct redis_reply *element; /* ARRAY: its integer elements */
} redis_reply;

/* The largest reply accepted (INFO is a few KB): a peer that announces more
 * is not a Redis to talk to. */
#define REDIS_REPLY_MAX (16u << 20)

/*
 * Parses one reply from the start of buf. Returns 1 with *out filled and
 * *used set to its length, 0 when buf holds only part of one (read more),
 * or -1 on a protocol error (err set). Free *out with redis_reply_free.
 */
int redis_reply_parse(const char *buf, size_t len, redis_reply *out, size_t *used, sv_error *err);
void redis_reply_free(redis_reply *r);

/* ---- the reply to SYNC / PSYNC (redis_proto.c) ------------------------- */

/*
 * The server's answer to SYNC or PSYNC ? -1, fed in chunks as read:
 * optional "+FULLRESYNC <replid> <offset>", bare "\n" keep-alives while
 * the server forks and writes, then the payload in one of two framings:
 * "$<length>\r\n" and that many bytes, or "$EOF:<40-byte mark>\r\n" and the
 * bytes up to the same mark. Payload bytes go to emit; what follows the
 * payload (the replication stream) is not consumed.
 */
enum redis_sync_state { REDIS_SYNC_HEADER, REDIS_SYNC_PAYLOAD, REDIS_SYNC_DONE, REDIS_SYNC_REFUSED };

#define REDIS_EOF_MARK_LEN 40

typedef struct redis_sync {
    enum redis_sync_state state;
    char line[256]; /* the header line being read */
    size_t line_len;
    bool eof_framing;
    uint64_t length;  /* $<length> framing: payload size announced */
    uint64_t payload; /* payload bytes emitted */
    char mark[REDIS_EOF_MARK_LEN];
    unsigned char hold[REDIS_EOF_MARK_LEN]; /* EOF framing: bytes that may be the start of the mark */
    size_t hold_len;
    uint64_t keepalives;
    char fullresync[128]; /* "+FULLRESYNC ..." when the server sent it */
    char refusal[256];    /* REFUSED: the server's error line, without '-' */
} redis_sync;

typedef int (*redis_emit_fn)(void *ctx, const void *buf, size_t len, sv_error *err);

void redis_sync_init(redis_sync *s);
/*
 * Consumes from buf until the payload ended or buf is used up. Returns the
 * bytes consumed (fewer than len only once DONE or REFUSED), or -1 on a
 * protocol error or when emit failed (err set). A server error line ("-ERR
 * ...") before the payload makes the state REFUSED, with the line in
 * refusal, and is not an error here: the caller names the cause.
 */
ssize_t redis_sync_feed(redis_sync *s, const void *buf, size_t len, redis_emit_fn emit, void *ctx,
                        sv_error *err);

/* ---- connection (redis_conn.c) ----------------------------------------- */

struct redis_url {
    char *host;
    int port;
    bool tls;       /* rediss:// */
    char *user;     /* NULL: the default user */
    char *password; /* NULL: none in the URL */
};

/* Parses redis://[user[:password]@]host[:port][/db] and rediss://...
 * (percent-escapes decoded in user and password, [v6] hosts). A password
 * found is registered with log_add_secret before anything can print it.
 * Errors never quote the URL. */
int redis_url_parse(const char *url, struct redis_url *out, sv_error *err);
void redis_url_free(struct redis_url *u);

typedef struct redis_conn redis_conn;

struct redis_conn_options {
    const struct redis_url *url;
    const char *password;             /* overrides none; used when the URL has none */
    const char *ca_file;              /* TLS: trusted CAs; NULL: the system's */
    const char *cert_file, *key_file; /* TLS client certificate */
    int timeout_s;                    /* connect, and silence while reading */
};

/*
 * Connects and authenticates (AUTH [user] password when there is a
 * password). TLS verifies the chain and the host name (SNI from the URL's
 * host). Returns NULL with err: SV_EXIT_TEMPFAIL when the server cannot be
 * reached, SV_EXIT_CONFIG for a TLS or authentication failure, naming the
 * setting to check.
 */
redis_conn *redis_connect(const struct redis_conn_options *o, sv_error *err);

/* Sends a command without reading its reply (the reply to PSYNC is read
 * with redis_conn_read). -1 with err on I/O failure. */
int redis_send(redis_conn *c, sv_error *err, int argc, const char *const *argv);

/* Sends a command and reads its reply into *reply (errors from the server
 * are replies of type ERROR, not failures). -1 with err on I/O failure. */
int redis_command(redis_conn *c, redis_reply *reply, sv_error *err, int argc, const char *const *argv);

/* Writes bytes as they are (commands already in RESP, pipelined). -1 with
 * err on I/O failure. */
int redis_write(redis_conn *c, const void *buf, size_t len, sv_error *err);

/* Reads the next reply (of a command sent before; after names it for the
 * error when the server closes the connection). -1 with err on I/O
 * failure; a server error is a reply of type ERROR. */
int redis_read_reply(redis_conn *c, redis_reply *reply, const char *after, sv_error *err);

/*
 * Reads the head of the next reply when it may be a large bulk (DUMP): 1
 * with *len when it is a bulk of len bytes, whose bytes and CRLF are then
 * to be read with redis_conn_read_exact; 0 with *reply for any other reply
 * (nil, error, ...). -1 with err on I/O failure.
 */
int redis_read_bulk_head(redis_conn *c, redis_reply *reply, uint64_t *len, const char *after, sv_error *err);

/* Reads exactly len bytes (buffered bytes first); -1 with err when the
 * connection fails or closes first (after names what was read). */
int redis_conn_read_exact(redis_conn *c, void *buf, size_t len, const char *after, sv_error *err);

/* Reads what the server sends next (buffered bytes first), at most len.
 * Returns the count, 0 when the server closed the connection, or -1 with
 * err (timeout, I/O error, stop requested). */
ssize_t redis_conn_read(redis_conn *c, void *buf, size_t len, sv_error *err);

/* "host:port as user" (no password), for messages and the manifest. */
const char *redis_conn_endpoint(const redis_conn *c);

void redis_close(redis_conn *c);

/* ---- the source (redis_backup.c) --------------------------------------- */

/* True when Redis is to be backed up: redis.url is set, or
 * redis.instances lists any. */
bool redis_configured(const sv_config *cfg);

/* The Redis sources of the configured instances (SAUVE_REDIS_URL's, then
 * each of redis.instances), at most cap, into out; their count. cfg is
 * kept by reference. */
size_t redis_sources_new(const sv_config *cfg, source **out, size_t cap);

/* The instance of redis.instances named name, or NULL. */
const sv_redis_instance *redis_instance_named(const sv_config *cfg, const char *name);

/* The Redis source of the server at url (password, else the configured
 * one; the configured TLS settings), in mode ("sync" or "keys"), stored as
 * artifact redis:name: a restore's safety backup of its target. Strings
 * copied. */
source *redis_source_at(const sv_config *cfg, const char *url, const char *name, const char *password,
                        const char *mode);

/* ---- drill (redis_drill.c): the loader's drill operations --------------- */

struct drill_findings;
struct loader_options;
int redis_drill_target(const manifest_artifact *a, const char *dir, const char *tag, struct loader_options *o,
                       char **owned, const char **skip);
int redis_drill_compare(const sv_config *cfg, const manifest_artifact *a, const struct loader_options *o,
                        struct drill_findings *f, sv_error *err);
int redis_drill_discard(const sv_config *cfg, const struct loader_options *o, sv_error *err);

#endif
