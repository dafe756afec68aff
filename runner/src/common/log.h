/*
 * Logging to stderr: one JSON object per line when stderr is not a terminal
 * (Kubernetes log collectors), human text when it is. Every record has a time,
 * a level and a message; structured fields ride along.
 *
 * Secrets registered with log_add_secret() are replaced by "***" in every
 * record, as a last line of defence: code must still never log them.
 *
 * The final summary of a run goes through log_summary(), which also writes it
 * to the termination log (default /dev/termination-log) when writable, so
 * that `kubectl describe pod` shows why a Job failed.
 */
#ifndef SAUVE_COMMON_LOG_H
#define SAUVE_COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_AUTO, LOG_FORMAT_JSON, LOG_FORMAT_TEXT };

typedef struct log_field {
    const char *key;
    const char *str; /* used when is_num is false; NULL prints as null */
    int64_t num;
    bool is_num;
} log_field;

#define LOG_STR(k, v) ((log_field){.key = (k), .str = (v)})
#define LOG_NUM(k, v) ((log_field){.key = (k), .num = (int64_t)(v), .is_num = true})

/* Chooses the format (AUTO: JSON unless stderr is a terminal) and the lowest
 * level printed. May be called again once the configuration is known. */
void log_init(enum log_format format, enum log_level min_level);

/* log_init from the settings log.format ("json", "text"; anything else,
 * NULL included, is auto) and log.level ("debug", "info", "warn",
 * "error"; anything else is info). */
void log_configure(const char *format, const char *level);

/* Where log_summary() also writes; NULL disables. Default /dev/termination-log. */
void log_set_termination_path(const char *path);

/* Registers a secret value (copied) to be masked in every record, whatever
 * its length: the configuration refuses secrets too short to mask usefully
 * (config.h), so a short value reaching here comes from elsewhere (a token
 * an endpoint returned) and is still never printed. "" is ignored. */
void log_add_secret(const char *value);

/* A newly allocated copy of s in which every byte of every occurrence of a
 * registered secret is hidden, each run of hidden bytes written "***"
 * (overlapping secrets leave no piece behind): for text that leaves sauve
 * other than through the log (notification bodies). */
char *log_mask(const char *s);

/*
 * Masks src, then copies what fits into dst (size bytes, always
 * NUL-terminated), cut at a UTF-8 character boundary. Masking before the cut
 * is the point: a secret that straddles the cut would otherwise leave its
 * first part in dst, unrecognisable to any later masking. For every bounded
 * message buffer (errors, the summary).
 */
void log_mask_into(char *dst, size_t size, const char *src);

/*
 * For text emitted in pieces (a child's overlong stderr line): the largest
 * cut <= len such that no registered secret, whole or still incomplete at
 * the end of s, spans the cut. s[0..cut) can then be masked and emitted,
 * and s[cut..len) kept for the next piece. 0 when no cut is safe (s is the
 * start of a secret longer than the piece).
 */
size_t log_secret_safe_cut(const char *s, size_t len);

/* Forgets every registered secret (tests). */
void log_clear_secrets(void);

void log_write(enum log_level level, const log_field *fields, size_t nfields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(...) log_write(LOG_DEBUG, NULL, 0, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, NULL, 0, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, NULL, 0, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, NULL, 0, __VA_ARGS__)
/* With fields: log_with(LOG_INFO, LOG_FIELDS(LOG_STR("source", s), LOG_NUM("bytes", n)), "fmt", ...) */
#define LOG_FIELDS(...)                                                                                      \
    (const log_field[]){__VA_ARGS__}, (sizeof((const log_field[]){__VA_ARGS__}) / sizeof(log_field))
#define log_with(level, fields_and_count, ...) log_write(level, fields_and_count, __VA_ARGS__)

/* The last line of every run: level info for exit 0, error otherwise, with an
 * "exit_code" field; also written (as plain text) to the termination log,
 * masked, then with control characters escaped (text_escape), then cut to
 * the 4096 bytes Kubernetes keeps. In text format, every record is escaped
 * the same way: one record, one line, no escape sequence from outside. */
void log_summary(int exit_code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats a byte count for humans ("1.5 GiB") into buf. Returns buf. */
const char *log_human_bytes(uint64_t bytes, char *buf, size_t len);

#endif
