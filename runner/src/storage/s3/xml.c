/* S3 responses parsed with expat into a small tree; see xml.h. */
#include "storage/s3/xml.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/mem.h"

/* S3 documents are three or four levels deep; anything much deeper is not
 * an S3 answer, and refusing it bounds the parser's stack of open nodes. */
#define XML_MAX_DEPTH 32

struct text_buf {
    char *data;
    size_t len, cap;
};

struct parse_state {
    xml_node *root;
    xml_node *stack[XML_MAX_DEPTH];
    struct text_buf text[XML_MAX_DEPTH];
    int depth;
    bool failed;
    XML_Parser parser;
};

static void text_add(struct text_buf *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->data = xrealloc(t->data, t->cap);
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

/* Handlers get the parser (XML_UseParserAsHandlerArg), so that a handler
 * that knows nothing of the state can still stop the parse. */
static void XMLCALL on_doctype(void *parser, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    /* No S3 answer has a DTD, and a DTD is how entity expansion (billion
     * laughs, an entity used thousands of times) and external entities get
     * in: the parse stops at "<!DOCTYPE", before any declaration is read. */
    XML_StopParser(parser, XML_FALSE);
}

static void XMLCALL on_entity_decl(void *parser, const XML_Char *name, int is_parameter_entity,
                                   const XML_Char *value, int value_length, const XML_Char *base,
                                   const XML_Char *system_id, const XML_Char *public_id,
                                   const XML_Char *notation_name)
{
    (void)name;
    (void)is_parameter_entity;
    (void)value;
    (void)value_length;
    (void)base;
    (void)system_id;
    (void)public_id;
    (void)notation_name;
    XML_StopParser(parser, XML_FALSE); /* unreachable after on_doctype; kept as a second lock */
}

XML_Parser s3_xml_parser_new(void *user_data)
{
    XML_Parser p = XML_ParserCreate("UTF-8");
    if (!p)
        abort(); /* out of memory: the policy of common/mem.h */
    XML_SetUserData(p, user_data);
    XML_UseParserAsHandlerArg(p);
    XML_SetStartDoctypeDeclHandler(p, on_doctype);
    XML_SetEntityDeclHandler(p, on_entity_decl);
    return p;
}

static void XMLCALL on_start(void *parser, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    struct parse_state *ps = XML_GetUserData((XML_Parser)parser);
    if (ps->failed)
        return;
    if (ps->depth == XML_MAX_DEPTH) {
        ps->failed = true;
        XML_StopParser(ps->parser, XML_FALSE);
        return;
    }
    const char *colon = strchr(name, ':');
    xml_node *n = xcalloc(1, sizeof *n);
    n->name = xstrdup(colon ? colon + 1 : name);
    if (ps->depth == 0) {
        ps->root = n;
    } else {
        xml_node *parent = ps->stack[ps->depth - 1];
        if (parent->last_child)
            parent->last_child->next = n;
        else
            parent->first_child = n;
        parent->last_child = n;
    }
    ps->stack[ps->depth] = n;
    ps->text[ps->depth].len = 0;
    ps->depth++;
}

static void XMLCALL on_end(void *parser, const XML_Char *name)
{
    (void)name;
    struct parse_state *ps = XML_GetUserData((XML_Parser)parser);
    if (ps->failed || ps->depth == 0)
        return;
    ps->depth--;
    struct text_buf *t = &ps->text[ps->depth];
    ps->stack[ps->depth]->text = t->len ? xstrndup(t->data, t->len) : xstrdup("");
    t->len = 0;
}

static void XMLCALL on_text(void *parser, const XML_Char *s, int len)
{
    struct parse_state *ps = XML_GetUserData((XML_Parser)parser);
    if (ps->failed || ps->depth == 0 || len <= 0)
        return;
    text_add(&ps->text[ps->depth - 1], s, (size_t)len);
}

static void node_free(xml_node *n)
{
    while (n) {
        xml_node *next = n->next;
        node_free(n->first_child);
        free(n->name);
        free(n->text);
        free(n);
        n = next;
    }
}

void xml_free(xml_node *root)
{
    node_free(root);
}

xml_node *xml_parse(const char *data, size_t len)
{
    if (!data || len == 0 || len > S3_XML_MAX)
        return NULL;
    struct parse_state ps = {0};
    ps.parser = s3_xml_parser_new(&ps);
    XML_SetElementHandler(ps.parser, on_start, on_end);
    XML_SetCharacterDataHandler(ps.parser, on_text);
    enum XML_Status st = XML_Parse(ps.parser, data, (int)len, XML_TRUE);
    XML_ParserFree(ps.parser);
    for (int i = 0; i < XML_MAX_DEPTH; i++)
        free(ps.text[i].data);
    if (st != XML_STATUS_OK || ps.failed || ps.depth != 0 || !ps.root) {
        node_free(ps.root);
        return NULL;
    }
    return ps.root;
}

/* The first element's local name, recorded by s3_xml_root_name's parser,
 * which stops there: the rest of the document is not read. */
struct root_state {
    XML_Parser parser;
    char *out;
    size_t cap;
    bool seen;
};

static void XMLCALL on_root(void *parser, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    struct root_state *rs = XML_GetUserData((XML_Parser)parser);
    const char *colon = strchr(name, ':');
    snprintf(rs->out, rs->cap, "%s", colon ? colon + 1 : name);
    rs->seen = true;
    XML_StopParser(rs->parser, XML_FALSE);
}

int s3_xml_root_name(const char *data, size_t len, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    if (!data || len == 0 || len > S3_XML_MAX || cap == 0)
        return -1;
    struct root_state rs = {.out = out, .cap = cap};
    rs.parser = s3_xml_parser_new(&rs);
    XML_SetStartElementHandler(rs.parser, on_root);
    (void)XML_Parse(rs.parser, data, (int)len, XML_TRUE);
    XML_ParserFree(rs.parser);
    return rs.seen ? 0 : -1;
}

bool s3_xml_root_is(const char *data, size_t len, const char *name)
{
    xml_node *root = xml_parse(data, len);
    bool ok = root && strcmp(root->name, name) == 0;
    xml_free(root);
    return ok;
}

const xml_node *xml_child(const xml_node *n, const char *name)
{
    if (!n)
        return NULL;
    for (const xml_node *c = n->first_child; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

const char *xml_child_text(const xml_node *n, const char *name)
{
    const xml_node *c = xml_child(n, name);
    return c ? c->text : NULL;
}

const xml_node *xml_next(const xml_node *n)
{
    for (const xml_node *c = n->next; c; c = c->next)
        if (strcmp(c->name, n->name) == 0)
            return c;
    return NULL;
}

void xml_buf_add(struct xml_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
}

void xml_buf_add_escaped(struct xml_buf *b, const char *s)
{
    char one[2] = {0, 0};
    for (; *s; s++) {
        switch (*s) {
        case '&': xml_buf_add(b, "&amp;"); break;
        case '<': xml_buf_add(b, "&lt;"); break;
        case '>': xml_buf_add(b, "&gt;"); break;
        case '"': xml_buf_add(b, "&quot;"); break;
        case '\'': xml_buf_add(b, "&apos;"); break;
        /* A parser turns a raw CR (and CR LF) into LF: a key holding one
         * would name another object. Only a character reference keeps it. */
        case '\r': xml_buf_add(b, "&#13;"); break;
        default: one[0] = *s; xml_buf_add(b, one);
        }
    }
}

void xml_buf_free(struct xml_buf *b)
{
    free(b->data);
    *b = (struct xml_buf){0};
}

int64_t s3_parse_iso8601(const char *s)
{
    if (!s)
        return 0;
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return 0;
    /* Fractional seconds and the zone: S3 always answers in UTC ("Z"). */
    if (*end == '.')
        while (*++end >= '0' && *end <= '9')
            ;
    if (*end != 'Z' && *end != '\0' && strcmp(end, "+00:00") != 0)
        return 0;
    return (int64_t)timegm(&tm);
}

static void copy_trunc(char *dst, size_t cap, const char *src)
{
    if (!cap)
        return;
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

int s3_xml_error(const char *data, size_t len, char *code, size_t code_len, char *message, size_t message_len)
{
    xml_node *root = xml_parse(data, len);
    if (!root || strcmp(root->name, "Error") != 0) {
        xml_free(root);
        return -1;
    }
    copy_trunc(code, code_len, xml_child_text(root, "Code"));
    copy_trunc(message, message_len, xml_child_text(root, "Message"));
    xml_free(root);
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int s3_url_decode(const char *s, char **out)
{
    size_t n = strlen(s), o = 0;
    char *d = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hex_digit(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0)) {
                free(d);
                *out = NULL;
                return -1;
            }
            d[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            d[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    d[o] = '\0';
    *out = d;
    return 0;
}

/* Whether code point c may appear in an XML 1.0 document. */
static bool xml_char_allowed(unsigned long c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
           (c >= 0x10000 && c <= 0x10FFFF);
}

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

/* The document with every character reference to a character XML 1.0
 * forbids replaced by U+FFFD (see xml.h), newly allocated into *out and
 * *out_len; NULL when it has none (use the document as it is). A reference
 * is at least 4 bytes ("&#1;"), its replacement 3: the copy is never longer. */
static char *replace_forbidden_refs(const char *data, size_t len, size_t *out_len)
{
    char *out = NULL;
    size_t o = 0, copied = 0;
    for (size_t i = 0; i + 3 < len; i++) {
        if (data[i] != '&' || data[i + 1] != '#')
            continue;
        size_t j = i + 2;
        bool hex = data[j] == 'x';
        if (hex)
            j++;
        unsigned long c = 0;
        size_t digits = 0;
        for (; j < len && digits < 9; j++, digits++) {
            int v = hex ? hex_digit(data[j]) : (data[j] >= '0' && data[j] <= '9' ? data[j] - '0' : -1);
            if (v < 0)
                break;
            c = c * (hex ? 16 : 10) + (unsigned long)v;
        }
        /* Malformed or allowed references are left for expat to judge. */
        if (digits == 0 || digits > 8 || j >= len || data[j] != ';' || xml_char_allowed(c))
            continue;
        if (!out)
            out = xmalloc(len);
        memcpy(out + o, data + copied, i - copied);
        o += i - copied;
        memcpy(out + o, REPLACEMENT, 3);
        o += 3;
        copied = j + 1;
        i = j;
    }
    if (!out)
        return NULL;
    memcpy(out + o, data + copied, len - copied);
    *out_len = o + len - copied;
    return out;
}

/* Parses a listing page: see replace_forbidden_refs. *replaced says whether
 * any reference was replaced. */
static xml_node *parse_listing(const char *data, size_t len, bool *replaced)
{
    size_t clean_len = 0;
    char *clean = data ? replace_forbidden_refs(data, len, &clean_len) : NULL;
    *replaced = clean != NULL;
    xml_node *root = clean ? xml_parse(clean, clean_len) : xml_parse(data, len);
    free(clean);
    return root;
}

/* A listed key, newly allocated: decoded when url, else as written;
 * *undecodable when it cannot be (then as received). */
static char *listed_key(const char *text, bool url, bool replaced, bool *undecodable)
{
    char *key = NULL;
    *undecodable = (replaced && strstr(text, REPLACEMENT)) || (url && s3_url_decode(text, &key) < 0);
    if (*undecodable || !url) {
        free(key);
        key = xstrdup(text);
    }
    return key;
}

static bool is_url_encoded(const xml_node *root)
{
    const char *e = xml_child_text(root, "EncodingType");
    return e && strcasecmp(e, "url") == 0;
}

static bool is_true(const char *s)
{
    return s && strcmp(s, "true") == 0;
}

static uint64_t parse_u64(const char *s)
{
    return s ? strtoull(s, NULL, 10) : 0;
}

int s3_xml_list_objects(const char *data, size_t len, struct s3_list_page *out)
{
    *out = (struct s3_list_page){0};
    bool replaced;
    xml_node *root = parse_listing(data, len, &replaced);
    if (!root || strcmp(root->name, "ListBucketResult") != 0) {
        xml_free(root);
        return -1;
    }
    size_t cap = 0;
    for (const xml_node *c = root->first_child; c; c = c->next)
        if (strcmp(c->name, "Contents") == 0 || strcmp(c->name, "CommonPrefixes") == 0)
            cap++;
    out->items = cap ? xcalloc(cap, sizeof *out->items) : NULL;

    /* S3 sends all Contents, then all CommonPrefixes, each sorted: merge
     * the two runs into one lexicographic sequence (of the decoded keys:
     * the order S3 sorts in). */
    bool url = is_url_encoded(root);
    const xml_node *obj = xml_child(root, "Contents");
    const xml_node *pre = xml_child(root, "CommonPrefixes");
    char *okey = NULL, *pkey = NULL;
    bool obad = false, pbad = false;
    int rc = 0;
    while (obj || pre) {
        if (obj && !okey) {
            const char *t = xml_child_text(obj, "Key");
            if (!t) {
                rc = -1;
                break;
            }
            okey = listed_key(t, url, replaced, &obad);
        }
        if (pre && !pkey) {
            const char *t = xml_child_text(pre, "Prefix");
            if (!t) {
                rc = -1;
                break;
            }
            pkey = listed_key(t, url, replaced, &pbad);
        }
        struct s3_list_item *it = &out->items[out->n++];
        if (obj && (!pre || strcmp(okey, pkey) < 0)) {
            it->key = okey;
            it->undecodable = obad;
            okey = NULL;
            it->size = parse_u64(xml_child_text(obj, "Size"));
            it->mtime = s3_parse_iso8601(xml_child_text(obj, "LastModified"));
            obj = xml_next(obj);
        } else {
            it->key = pkey;
            it->undecodable = pbad;
            pkey = NULL;
            it->is_prefix = true;
            pre = xml_next(pre);
        }
    }
    free(okey);
    free(pkey);
    out->truncated = is_true(xml_child_text(root, "IsTruncated"));
    const char *next = xml_child_text(root, "NextContinuationToken");
    if (out->truncated) {
        if (!next || !*next)
            rc = -1; /* truncated without a way on: we would loop forever */
        else if (replaced && strstr(next, REPLACEMENT))
            out->token_unusable = true;
        else
            out->next_token = xstrdup(next);
    }
    xml_free(root);
    if (rc < 0)
        s3_list_page_free(out);
    return rc;
}

void s3_list_page_free(struct s3_list_page *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->items[i].key);
    free(p->items);
    free(p->next_token);
    *p = (struct s3_list_page){0};
}

int s3_xml_upload_id(const char *data, size_t len, char **upload_id)
{
    *upload_id = NULL;
    xml_node *root = xml_parse(data, len);
    const char *id = root && strcmp(root->name, "InitiateMultipartUploadResult") == 0
                         ? xml_child_text(root, "UploadId")
                         : NULL;
    if (id && *id)
        *upload_id = xstrdup(id);
    xml_free(root);
    return *upload_id ? 0 : -1;
}

int s3_xml_list_uploads(const char *data, size_t len, struct s3_uploads_page *out)
{
    *out = (struct s3_uploads_page){0};
    bool replaced;
    xml_node *root = parse_listing(data, len, &replaced);
    if (!root || strcmp(root->name, "ListMultipartUploadsResult") != 0) {
        xml_free(root);
        return -1;
    }
    size_t cap = 0;
    for (const xml_node *u = xml_child(root, "Upload"); u; u = xml_next(u))
        cap++;
    out->items = cap ? xcalloc(cap, sizeof *out->items) : NULL;
    int rc = 0;
    for (const xml_node *u = xml_child(root, "Upload"); u; u = xml_next(u)) {
        const char *key = xml_child_text(u, "Key");
        const char *id = xml_child_text(u, "UploadId");
        if (!key || !id || !*id) {
            rc = -1;
            break;
        }
        struct s3_upload_item *it = &out->items[out->n++];
        it->key = listed_key(key, true, replaced, &it->undecodable);
        it->upload_id = xstrdup(id);
        it->initiated = s3_parse_iso8601(xml_child_text(u, "Initiated"));
    }
    out->truncated = is_true(xml_child_text(root, "IsTruncated"));
    if (out->truncated) {
        const char *km = xml_child_text(root, "NextKeyMarker");
        const char *um = xml_child_text(root, "NextUploadIdMarker");
        bool bad = false;
        if (!km || !*km) {
            rc = -1;
        } else {
            out->next_key_marker = listed_key(km, is_url_encoded(root), replaced, &bad);
            out->next_upload_id_marker = xstrdup(um ? um : "");
            out->markers_unusable = bad || (replaced && um && strstr(um, REPLACEMENT));
        }
    }
    xml_free(root);
    if (rc < 0)
        s3_uploads_page_free(out);
    return rc;
}

void s3_uploads_page_free(struct s3_uploads_page *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].key);
        free(p->items[i].upload_id);
    }
    free(p->items);
    free(p->next_key_marker);
    free(p->next_upload_id_marker);
    *p = (struct s3_uploads_page){0};
}

int s3_xml_delete_result(const char *data, size_t len, struct s3_delete_result *out)
{
    *out = (struct s3_delete_result){0};
    xml_node *root = xml_parse(data, len);
    if (!root || strcmp(root->name, "DeleteResult") != 0) {
        xml_free(root);
        return -1;
    }
    size_t cap = 0;
    for (const xml_node *e = xml_child(root, "Error"); e; e = xml_next(e))
        cap++;
    out->errors = cap ? xcalloc(cap, sizeof *out->errors) : NULL;
    for (const xml_node *e = xml_child(root, "Error"); e; e = xml_next(e)) {
        const char *code = xml_child_text(e, "Code");
        if (code && strcmp(code, "NoSuchKey") == 0)
            continue;
        const char *key = xml_child_text(e, "Key");
        const char *msg = xml_child_text(e, "Message");
        struct s3_delete_error *de = &out->errors[out->n++];
        de->key = xstrdup(key ? key : "");
        de->code = xstrdup(code ? code : "");
        de->message = xstrdup(msg ? msg : "");
    }
    xml_free(root);
    return 0;
}

void s3_delete_result_free(struct s3_delete_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->errors[i].key);
        free(r->errors[i].code);
        free(r->errors[i].message);
    }
    free(r->errors);
    *r = (struct s3_delete_result){0};
}
