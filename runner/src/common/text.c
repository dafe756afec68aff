#include "common/text.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/mem.h"

size_t utf8_seq(const char *str, unsigned long *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0)
        return 0;
    unsigned long v = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    static const unsigned long min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    if (cp)
        *cp = v;
    return n;
}

bool utf8_valid(const char *s)
{
    while (*s) {
        size_t n = utf8_seq(s, NULL);
        if (n == 0)
            return false;
        s += n;
    }
    return true;
}

size_t utf8_prefix(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

static bool shown_raw(unsigned long cp)
{
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))
        return false;
    /* LRE..RLO, LRI..PDI: they reorder the rest of the line on screen */
    if ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))
        return false;
    /* line and paragraph separators: a new line to some terminals and viewers */
    return cp != 0x2028 && cp != 0x2029;
}

char *text_escape(const char *s)
{
    size_t len = strlen(s);
    char *out = xmalloc(4 * len + 1); /* at worst every byte becomes \xNN */
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned long cp = 0;
        size_t n = utf8_seq((const char *)p, &cp);
        if (n && shown_raw(cp)) {
            memcpy(out + o, p, n);
            o += n;
        } else {
            if (n == 0)
                n = 1; /* a byte that starts no character: that byte alone */
            for (size_t i = 0; i < n; i++)
                o += (size_t)snprintf(out + o, 5, "\\x%02x", p[i]);
        }
        p += n;
    }
    out[o] = '\0';
    return out;
}
