/*
 * Text from outside sauve (a manifest read from storage, a server's error,
 * a database name) shown on a terminal. A forged manifest or a hostile
 * server must not be able to move the cursor, recolour the screen, set the
 * window title or start a line that looks like sauve's own: whatever is not
 * printable text is shown as an escape, never sent raw.
 */
#ifndef SAUVE_COMMON_TEXT_H
#define SAUVE_COMMON_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* UTF-8, once for every module that checks, cuts or escapes text. */

/* The length (1..4) of the well-formed UTF-8 sequence at s, and its code
 * point into *cp when cp is not NULL; 0 when s does not start one (stray
 * continuation byte, overlong form, surrogate, beyond U+10FFFF, cut by the
 * end of the string). */
size_t utf8_seq(const char *s, unsigned long *cp);

/* True when the NUL-terminated s is well-formed UTF-8 throughout. */
bool utf8_valid(const char *s);

/* The length of the longest prefix of s[0..len) of at most max bytes that
 * does not end inside a character (s[len] need not exist when len <= max). */
size_t utf8_prefix(const char *s, size_t len, size_t max);

/*
 * A newly allocated copy of s for a terminal: printable ASCII and valid
 * UTF-8 as they are; every byte of a control character (C0, DEL, the C1
 * controls U+0080..U+009F that some terminals obey like ESC), of a
 * bidirectional override or isolate (which reorder what is shown), of a
 * line or paragraph separator, and of anything that is not UTF-8, as \xNN.
 * A backslash stays as it is: the text "\x1b" and an escaped ESC then look
 * alike, which harms nobody, and ordinary messages (a Windows path, a
 * regular expression) read as they were written.
 */
char *text_escape(const char *s);

#endif
