/*
 * The S3 answers sauve parses (storage/s3/xml.c): every input goes through
 * each parser, since they share the tree and differ by root element (the
 * dictionary names them all): the tree itself, root name, <Error>,
 * ListObjectsV2, InitiateMultipartUpload, ListMultipartUploads and
 * DeleteObjects results, and the dates and URL-encoded keys in them. A store, or anything
 * between sauve and it, chooses these bytes.
 *
 * Besides memory safety, each parser's contract is checked, and every text
 * the parser produced must survive the trip back through
 * xml_buf_add_escaped: keys read from a listing are written into
 * DeleteObjects bodies, and a key that comes back different is an object
 * that prune believes deleted.
 */
#include "fuzz.h"

#include "storage/s3/xml.h"

/* How many texts of one document are sent through the escaping round trip. */
#define ROUND_TRIPS_MAX 64

struct texts {
    const char *items[ROUND_TRIPS_MAX];
    size_t n;
};

/* Listings are URL-encoded (encoding-type=url): what decodes is a C string
 * of the bytes written, and encoding it again decodes to the same. */
static void check_url_decode(const char *text)
{
    char *key = NULL;
    if (s3_url_decode(text, &key) != 0) {
        FUZZ_CHECK(!key);
        return;
    }
    FUZZ_CHECK(strlen(key) <= strlen(text));
    char *enc = xmalloc(3 * strlen(key) + 1), *e = enc;
    *e = '\0'; /* an empty key writes nothing below */
    for (const unsigned char *c = (const unsigned char *)key; *c; c++)
        e += sprintf(e, "%%%02X", *c);
    char *back = NULL;
    FUZZ_CHECK(s3_url_decode(enc, &back) == 0 && strcmp(back, key) == 0);
    free(back);
    free(enc);
    free(key);
}

/* Every node has a name and a text; collects texts for the round trip. */
static void walk(const xml_node *n, int depth, struct texts *t)
{
    FUZZ_CHECK(depth < 64);
    for (; n; n = n->next) {
        FUZZ_CHECK(n->name && n->text);
        if (t->n < ROUND_TRIPS_MAX)
            t->items[t->n++] = n->text;
        (void)s3_parse_iso8601(n->text);
        check_url_decode(n->text);
        walk(n->first_child, depth + 1, t);
    }
}

/* The texts written as a request body writes keys, in one document (one
 * parser: creating one costs more than the rest of this target), then read. */
static void check_escape_round_trip(const struct texts *t)
{
    struct xml_buf b = {0};
    xml_buf_add(&b, "<Delete>");
    for (size_t i = 0; i < t->n; i++) {
        xml_buf_add(&b, "<Key>");
        xml_buf_add_escaped(&b, t->items[i]);
        xml_buf_add(&b, "</Key>");
    }
    xml_buf_add(&b, "</Delete>");
    xml_node *root = xml_parse(b.data, b.len);
    FUZZ_CHECK(root != NULL);
    const xml_node *k = root->first_child;
    for (size_t i = 0; i < t->n; i++, k = k->next) {
        FUZZ_CHECK(k && strcmp(k->name, "Key") == 0 && !k->first_child);
        if (strcmp(k->text, t->items[i]) != 0) {
            fprintf(stderr, "fuzz: escaped text reads back different: \"%s\" -> \"%s\"\n", t->items[i],
                    k->text);
            abort();
        }
    }
    FUZZ_CHECK(!k);
    xml_free(root);
    xml_buf_free(&b);
}

static void check_tree(const char *data, size_t size)
{
    xml_node *root = xml_parse(data, size);
    if (!root)
        return;
    FUZZ_CHECK(!root->next);
    struct texts t = {.n = 0};
    walk(root, 0, &t);
    check_escape_round_trip(&t);
    /* a whole document also has the root name the light parser sees */
    char name[64];
    FUZZ_CHECK(s3_xml_root_name(data, size, name, sizeof name) == 0);
    FUZZ_CHECK(strncmp(name, root->name, sizeof name - 1) == 0);
    FUZZ_CHECK(s3_xml_root_is(data, size, root->name));
    xml_free(root);
}

static void check_root_name(const char *data, size_t size)
{
    char small[8], big[256];
    int rc = s3_xml_root_name(data, size, small, sizeof small);
    FUZZ_CHECK(strlen(small) < sizeof small);
    FUZZ_CHECK(s3_xml_root_name(data, size, big, sizeof big) == rc);
    FUZZ_CHECK(strlen(big) < sizeof big);
    if (rc == 0)
        FUZZ_CHECK(strncmp(small, big, sizeof small - 1) == 0);
}

static void check_error(const char *data, size_t size)
{
    char code[16], message[40];
    memset(code, 'x', sizeof code);
    memset(message, 'x', sizeof message);
    if (s3_xml_error(data, size, code, sizeof code, message, sizeof message) == 0) {
        FUZZ_CHECK(memchr(code, '\0', sizeof code) && memchr(message, '\0', sizeof message));
        FUZZ_CHECK(s3_xml_root_is(data, size, "Error"));
    }
}

static void check_list_objects(const char *data, size_t size)
{
    struct s3_list_page page;
    if (s3_xml_list_objects(data, size, &page) != 0) {
        FUZZ_CHECK(!page.items && page.n == 0 && !page.next_token);
        return;
    }
    for (size_t i = 0; i < page.n; i++)
        FUZZ_CHECK(page.items[i].key != NULL);
    /* a truncated page must say where the next one starts, or listing loops;
     * a token that cannot be read (RADOS Gateway's "&#x01;") sends the caller
     * on after the page's last key instead */
    FUZZ_CHECK(!page.truncated || (page.next_token && *page.next_token) || page.token_unusable);
    FUZZ_CHECK(page.truncated || !page.next_token);
    s3_list_page_free(&page);
}

static void check_upload_id(const char *data, size_t size)
{
    char *id = NULL;
    if (s3_xml_upload_id(data, size, &id) == 0)
        FUZZ_CHECK(id && *id);
    else
        FUZZ_CHECK(!id);
    free(id);
}

static void check_list_uploads(const char *data, size_t size)
{
    struct s3_uploads_page page;
    if (s3_xml_list_uploads(data, size, &page) != 0) {
        FUZZ_CHECK(!page.items && page.n == 0 && !page.next_key_marker && !page.next_upload_id_marker);
        return;
    }
    for (size_t i = 0; i < page.n; i++)
        FUZZ_CHECK(page.items[i].key && page.items[i].upload_id && *page.items[i].upload_id);
    FUZZ_CHECK(!page.truncated ||
               (page.next_key_marker && *page.next_key_marker && page.next_upload_id_marker));
    s3_uploads_page_free(&page);
}

static void check_delete_result(const char *data, size_t size)
{
    struct s3_delete_result r;
    if (s3_xml_delete_result(data, size, &r) != 0) {
        FUZZ_CHECK(!r.errors && r.n == 0);
        return;
    }
    for (size_t i = 0; i < r.n; i++) {
        FUZZ_CHECK(r.errors[i].key && r.errors[i].code && r.errors[i].message);
        /* NoSuchKey is a key already gone, never reported as a failure */
        FUZZ_CHECK(strcmp(r.errors[i].code, "NoSuchKey") != 0);
    }
    s3_delete_result_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parsers take a length, not a C string: give them exactly the
     * input, in a buffer of its own size, so that ASan sees any overread. */
    char *copy = xmalloc(size ? size : 1);
    if (size)
        memcpy(copy, data, size);
    check_tree(copy, size);
    check_root_name(copy, size);
    check_error(copy, size);
    check_list_objects(copy, size);
    check_upload_id(copy, size);
    check_list_uploads(copy, size);
    check_delete_result(copy, size);
    free(copy);

    /* the dates and URL encoding, as text of any shape */
    char *s = fuzz_cstr(data, size);
    (void)s3_parse_iso8601(s);
    check_url_decode(s);
    free(s);
    return 0;
}
