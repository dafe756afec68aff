/*
 * The XML that S3 speaks, parsed with expat into a small tree, and the
 * parsers of the few responses sauve reads. S3's answers are small (a
 * listing page of 1000 keys is a few hundred KB), so a tree is the simplest
 * correct reading; element names are kept without their namespace.
 *
 * Pure functions over a buffer: no I/O. Every parser returns 0, or -1 when
 * the document is not well-formed or lacks what it must have (the caller
 * reports the operation).
 */
#ifndef SAUVE_STORAGE_S3_XML_H
#define SAUVE_STORAGE_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <expat.h>

/*
 * The largest document sauve parses, and the largest answer body the request
 * engine collects (client.c). S3's largest answers hold 1000 entries: a
 * ListObjectsV2 or ListMultipartUploads page of 1000 keys (a key is at most
 * 1024 bytes, 3072 once URL-encoded, plus about 600 bytes of other elements:
 * about 3.7 MB), or a DeleteResult naming 1000 keys it could not delete (a
 * key XML-escaped is at most 6 bytes per byte, plus its code and message:
 * about 6.3 MB). 8 MiB holds the worst of them; anything larger is not S3's
 * answer, and refusing it bounds what a hostile or broken store can make
 * sauve hold in memory.
 */
#define S3_XML_MAX (8u * 1024 * 1024)

typedef struct xml_node xml_node;

struct xml_node {
    char *name; /* local name, namespace prefix removed */
    char *text; /* concatenated character data directly inside; "" when none */
    xml_node *first_child, *last_child, *next;
};

/*
 * A new expat parser for an answer from the network: user_data is set, and
 * handlers get the parser as their first argument (XML_UseParserAsHandlerArg:
 * XML_GetUserData() gives user_data back). Any DOCTYPE stops the parse with
 * an error before its declarations are read, so no entity is ever declared
 * or expanded. Aborts on out of memory. Free with XML_ParserFree.
 */
XML_Parser s3_xml_parser_new(void *user_data);

/* Parses a document of at most S3_XML_MAX bytes; NULL when it is not
 * well-formed XML, has a DOCTYPE, or is larger. Free with xml_free. */
xml_node *xml_parse(const char *data, size_t len);
void xml_free(xml_node *root);

/* The local name of the document's root element (namespace prefix removed,
 * attributes such as xmlns ignored) into out; 0 when the document is
 * well-formed up to that element's start tag (the rest is not read), -1 when
 * there is none (empty, blanks, not XML). */
int s3_xml_root_name(const char *data, size_t len, char *out, size_t cap);
/* True when data is a whole well-formed document whose root element is name. */
bool s3_xml_root_is(const char *data, size_t len, const char *name);

/* The first child of n named name, or NULL. */
const xml_node *xml_child(const xml_node *n, const char *name);
/* Text of the first child named name, or NULL when there is none. */
const char *xml_child_text(const xml_node *n, const char *name);
/* The next sibling of n with n's name, or NULL: `for (c = xml_child(p, "X"); c; c = xml_next(c))`. */
const xml_node *xml_next(const xml_node *n);

/* Appends s to buf with &, <, >, " and ' escaped (for request bodies). */
struct xml_buf {
    char *data;
    size_t len, cap;
};
void xml_buf_add(struct xml_buf *b, const char *s);
void xml_buf_add_escaped(struct xml_buf *b, const char *s);
void xml_buf_free(struct xml_buf *b);

/* "2009-10-12T17:50:30.000Z" (ISO 8601, UTC) to unix seconds; 0 when malformed. */
int64_t s3_parse_iso8601(const char *s);

/* An <Error> document: code and message copied (truncated) into the buffers.
 * Returns 0 when data is an <Error> document, -1 otherwise. */
int s3_xml_error(const char *data, size_t len, char *code, size_t code_len, char *message,
                 size_t message_len);

/*
 * Listings are asked with encoding-type=url, so that a key holding a
 * character XML 1.0 cannot carry (a control character) still gives a
 * well-formed page. s3_url_decode undoes that encoding: %XX is the byte XX
 * and '+' a space (AWS writes a space as '+', RADOS Gateway as %20, and both
 * write '+' as %2B). Returns 0 with *out newly allocated, or -1 with *out
 * NULL when s is not such an encoding (a '%' without two hex digits) or
 * decodes to a NUL byte, which no C string (and no S3 key) can hold.
 */
int s3_url_decode(const char *s, char **out);

/*
 * Character references to characters XML 1.0 forbids ("&#x01;") make expat
 * refuse a whole document. RADOS Gateway writes them where it echoes a key
 * without encoding it, even when asked for encoding-type=url: its
 * NextContinuationToken (the last key), StartAfter, KeyMarker and
 * NextKeyMarker. The two listing parsers below replace each such reference
 * with U+FFFD before parsing, so that the page is read; a value that held
 * one is unusable (a key so marked is undecodable, a token or marker is
 * reported unusable), never taken for another.
 */

/* One entry of a ListObjectsV2 page: an object (Contents) or a common prefix. */
struct s3_list_item {
    char *key; /* full key, as the bucket has it (decoded); as received when undecodable */
    uint64_t size;
    int64_t mtime;
    bool is_prefix;
    bool undecodable; /* the key is no URL encoding, or held a forbidden character reference */
};

struct s3_list_page {
    struct s3_list_item *items; /* Contents and CommonPrefixes merged in key order */
    size_t n;
    bool truncated;
    char *next_token;    /* NextContinuationToken when truncated and usable */
    bool token_unusable; /* truncated, but the token held a forbidden reference: go on after the last key */
};

/* Keys and prefixes are URL-decoded when the page says <EncodingType>url;
 * the continuation token is opaque and never decoded. */
int s3_xml_list_objects(const char *data, size_t len, struct s3_list_page *out);
void s3_list_page_free(struct s3_list_page *p);

/* InitiateMultipartUploadResult: the UploadId, newly allocated. */
int s3_xml_upload_id(const char *data, size_t len, char **upload_id);

/* ListMultipartUploadsResult. */
struct s3_upload_item {
    char *key; /* decoded; as received when undecodable */
    char *upload_id;
    int64_t initiated;
    bool undecodable;
};

struct s3_uploads_page {
    struct s3_upload_item *items;
    size_t n;
    bool truncated;
    char *next_key_marker;
    char *next_upload_id_marker;
    bool markers_unusable; /* a marker held a forbidden reference: go on after the last upload */
};

/* The page of a listing asked with encoding-type=url: keys are always
 * URL-decoded (RADOS Gateway encodes them without an <EncodingType> to say
 * so), NextKeyMarker only when the page says <EncodingType>url (RADOS
 * Gateway echoes it as it is). */
int s3_xml_list_uploads(const char *data, size_t len, struct s3_uploads_page *out);
void s3_uploads_page_free(struct s3_uploads_page *p);

/* DeleteResult: the keys that could not be deleted, with the error of each.
 * Keys reported as NoSuchKey are not failures (already gone) and are left out. */
struct s3_delete_error {
    char *key;
    char *code;
    char *message;
};

struct s3_delete_result {
    struct s3_delete_error *errors;
    size_t n;
};

int s3_xml_delete_result(const char *data, size_t len, struct s3_delete_result *out);
void s3_delete_result_free(struct s3_delete_result *r);

#endif
