/* Tests of runner/src/storage/s3/xml.c: the S3 answers sauve reads, as S3
 * and RADOS Gateway write them. */
#include "testutil.h"

#include "storage/s3/xml.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_parse_tree_and_namespaces(void **state)
{
    (void)state;
    xml_node *root =
        xml_parse(S("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<a:Root xmlns:a=\"urn:x\"><a:B>one</a:B><C/><B>two &amp; three</B></a:Root>"));
    assert_non_null(root);
    assert_string_equal(root->name, "Root");
    assert_string_equal(xml_child_text(root, "B"), "one");
    assert_string_equal(xml_child_text(root, "C"), "");
    assert_null(xml_child_text(root, "D"));
    const xml_node *b = xml_child(root, "B");
    assert_string_equal(xml_next(b)->text, "two & three");
    assert_null(xml_next(xml_next(b)));
    xml_free(root);

    assert_null(xml_parse(S("<a><b></a>")));
    assert_null(xml_parse(S("not xml")));
    assert_null(xml_parse("", 0));
}

static void test_error_document(void **state)
{
    (void)state;
    char code[64], msg[256];
    const char doc[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code>"
                       "<Message>The specified bucket does not exist</Message><BucketName>b</BucketName>"
                       "<RequestId>tx1</RequestId></Error>";
    assert_int_equal(s3_xml_error(doc, sizeof doc - 1, code, sizeof code, msg, sizeof msg), 0);
    assert_string_equal(code, "NoSuchBucket");
    assert_string_equal(msg, "The specified bucket does not exist");
    /* RGW's errors often have no Message */
    assert_int_equal(s3_xml_error(S("<Error><Code>SignatureDoesNotMatch</Code></Error>"), code, sizeof code,
                                  msg, sizeof msg),
                     0);
    assert_string_equal(code, "SignatureDoesNotMatch");
    assert_string_equal(msg, "");
    /* truncated into small buffers */
    char small[5];
    assert_int_equal(s3_xml_error(doc, sizeof doc - 1, small, sizeof small, msg, sizeof msg), 0);
    assert_string_equal(small, "NoSu");
    assert_int_equal(s3_xml_error(S("<ListBucketResult/>"), code, sizeof code, msg, sizeof msg), -1);
}

static void test_root_element(void **state)
{
    (void)state;
    char root[64];
    assert_int_equal(
        s3_xml_root_name(S("<?xml version=\"1.0\"?>\n<!-- c -->\n<Error xmlns=\"http://s3.amazonaws.com/"
                           "doc/2006-03-01/\"><Code>X</Code>"),
                         root, sizeof root),
        0); /* read up to the root's start tag only */
    assert_string_equal(root, "Error");
    assert_int_equal(s3_xml_root_name(S("<s3:Error xmlns:s3=\"urn:x\"/>"), root, sizeof root), 0);
    assert_string_equal(root, "Error");
    assert_int_equal(s3_xml_root_name(S("<Errors/>"), root, sizeof root), 0);
    assert_string_equal(root, "Errors");
    assert_int_equal(s3_xml_root_name(S(" \r\n "), root, sizeof root), -1);
    assert_int_equal(s3_xml_root_name("", 0, root, sizeof root), -1);
    assert_int_equal(s3_xml_root_name(S("Error"), root, sizeof root), -1);

    assert_true(s3_xml_root_is(S("<?xml version=\"1.0\"?><CompleteMultipartUploadResult xmlns=\"urn:x\">"
                                 "<ETag>e</ETag></CompleteMultipartUploadResult>\n"),
                               "CompleteMultipartUploadResult"));
    assert_false(s3_xml_root_is(S("<CompleteMultipartUploadResult><ETag>e</ETag>"),
                                "CompleteMultipartUploadResult")); /* truncated */
    assert_false(s3_xml_root_is(S("<Error><Code>X</Code></Error>"), "CompleteMultipartUploadResult"));
    assert_false(s3_xml_root_is(S("   "), "CompleteMultipartUploadResult"));
    assert_false(s3_xml_root_is("", 0, "CompleteMultipartUploadResult"));
}

static void test_list_objects_merges_prefixes_in_key_order(void **state)
{
    (void)state;
    const char doc[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>b</Name><Prefix>p/</Prefix><KeyCount>4</KeyCount><MaxKeys>1000</MaxKeys>"
        "<Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
        "<Contents><Key>p/a-b</Key><LastModified>2026-11-22T02:00:12.000Z</LastModified>"
        "<ETag>\"x\"</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>"
        "<Contents><Key>p/b.txt</Key><LastModified>2009-10-12T17:50:30Z</LastModified>"
        "<Size>5368709120</Size></Contents>"
        "<CommonPrefixes><Prefix>p/a/</Prefix></CommonPrefixes>"
        "<CommonPrefixes><Prefix>p/c/</Prefix></CommonPrefixes>"
        "</ListBucketResult>";
    struct s3_list_page page;
    assert_int_equal(s3_xml_list_objects(doc, sizeof doc - 1, &page), 0);
    assert_int_equal(page.n, 4);
    /* "p/a-b" < "p/a/" because '-' < '/' */
    assert_string_equal(page.items[0].key, "p/a-b");
    assert_false(page.items[0].is_prefix);
    assert_int_equal(page.items[0].size, 12);
    assert_int_equal(page.items[0].mtime, 1795312812);
    assert_string_equal(page.items[1].key, "p/a/");
    assert_true(page.items[1].is_prefix);
    assert_string_equal(page.items[2].key, "p/b.txt");
    assert_true(page.items[2].size == 5368709120ULL);
    assert_int_equal(page.items[2].mtime, 1255369830);
    assert_string_equal(page.items[3].key, "p/c/");
    assert_true(page.truncated);
    assert_string_equal(page.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    s3_list_page_free(&page);

    assert_int_equal(s3_xml_list_objects(S("<ListBucketResult><IsTruncated>false</IsTruncated>"
                                           "</ListBucketResult>"),
                                         &page),
                     0);
    assert_int_equal(page.n, 0);
    assert_false(page.truncated);
    s3_list_page_free(&page);

    /* Truncated without a token would loop forever: refused. */
    assert_int_equal(s3_xml_list_objects(S("<ListBucketResult><IsTruncated>true</IsTruncated>"
                                           "</ListBucketResult>"),
                                         &page),
                     -1);
    /* An <Error> is not a listing. */
    assert_int_equal(s3_xml_list_objects(S("<Error><Code>x</Code></Error>"), &page), -1);
}

static void test_initiate_multipart_upload(void **state)
{
    (void)state;
    char *id = NULL;
    assert_int_equal(s3_xml_upload_id(S("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                                        "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/"
                                        "2006-03-01/\"><Bucket>b</Bucket><Key>k</Key>"
                                        "<UploadId>2~onn0j56TTQuAL7G9INERrrtxYpUdFwo</UploadId>"
                                        "</InitiateMultipartUploadResult>"),
                                      &id),
                     0);
    assert_string_equal(id, "2~onn0j56TTQuAL7G9INERrrtxYpUdFwo");
    free(id);
    assert_int_equal(s3_xml_upload_id(S("<InitiateMultipartUploadResult><UploadId></UploadId>"
                                        "</InitiateMultipartUploadResult>"),
                                      &id),
                     -1);
    assert_null(id);
}

static void test_list_multipart_uploads(void **state)
{
    (void)state;
    struct s3_uploads_page p;
    assert_int_equal(s3_xml_list_uploads(S("<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/"
                                           "2006-03-01/\"><Bucket>b</Bucket><KeyMarker></KeyMarker>"
                                           "<NextKeyMarker>p/k2</NextKeyMarker>"
                                           "<NextUploadIdMarker>id2</NextUploadIdMarker>"
                                           "<IsTruncated>true</IsTruncated>"
                                           "<Upload><Key>p/k1</Key><UploadId>id1</UploadId>"
                                           "<Initiated>2026-11-22T02:00:00.000Z</Initiated></Upload>"
                                           "<Upload><Key>p/k2</Key><UploadId>id2</UploadId>"
                                           "<Initiated>2026-11-22T03:00:00.000Z</Initiated></Upload>"
                                           "</ListMultipartUploadsResult>"),
                                         &p),
                     0);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.items[0].key, "p/k1");
    assert_string_equal(p.items[1].upload_id, "id2");
    assert_int_equal(p.items[1].initiated - p.items[0].initiated, 3600);
    assert_true(p.truncated);
    assert_string_equal(p.next_key_marker, "p/k2");
    assert_string_equal(p.next_upload_id_marker, "id2");
    s3_uploads_page_free(&p);
}

static void test_delete_result(void **state)
{
    (void)state;
    struct s3_delete_result r;
    assert_int_equal(s3_xml_delete_result(S("<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                                            "<Deleted><Key>a</Key></Deleted>"
                                            "<Error><Key>b</Key><Code>AccessDenied</Code><Message>Access "
                                            "Denied</Message></Error>"
                                            "<Error><Key>c</Key><Code>NoSuchKey</Code></Error>"
                                            "</DeleteResult>"),
                                          &r),
                     0);
    assert_int_equal(r.n, 1); /* NoSuchKey: already gone, not a failure */
    assert_string_equal(r.errors[0].key, "b");
    assert_string_equal(r.errors[0].code, "AccessDenied");
    assert_string_equal(r.errors[0].message, "Access Denied");
    s3_delete_result_free(&r);
    /* Quiet mode with every key deleted: an empty result */
    assert_int_equal(s3_xml_delete_result(S("<DeleteResult/>"), &r), 0);
    assert_int_equal(r.n, 0);
    s3_delete_result_free(&r);
}

static void test_escape_and_dates(void **state)
{
    (void)state;
    struct xml_buf b = {0};
    xml_buf_add(&b, "<Key>");
    xml_buf_add_escaped(&b, "a&b<c>\"d'");
    xml_buf_add(&b, "</Key>");
    assert_string_equal(b.data, "<Key>a&amp;b&lt;c&gt;&quot;d&apos;</Key>");
    /* and back */
    xml_node *n = xml_parse(b.data, b.len);
    assert_string_equal(n->text, "a&b<c>\"d'");
    xml_free(n);
    xml_buf_free(&b);
    /* a CR in a key (from &#13; in a listing) must reach DeleteObjects as
     * one: raw, the store reads LF (found by fuzz_s3_xml) */
    xml_buf_add(&b, "<Key>");
    xml_buf_add_escaped(&b, "a\rb\r\nc\td\ne");
    xml_buf_add(&b, "</Key>");
    assert_string_equal(b.data, "<Key>a&#13;b&#13;\nc\td\ne</Key>");
    n = xml_parse(b.data, b.len);
    assert_string_equal(n->text, "a\rb\r\nc\td\ne");
    xml_free(n);
    xml_buf_free(&b);

    assert_int_equal(s3_parse_iso8601("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(s3_parse_iso8601("2026-11-22T02:00:00.123Z"), 1795312800);
    assert_int_equal(s3_parse_iso8601("2026-11-22T02:00:00+02:00"), 0); /* not UTC: refused */
    assert_int_equal(s3_parse_iso8601("garbage"), 0);
    assert_int_equal(s3_parse_iso8601(NULL), 0);
}

/* No S3 answer has a DTD: a DOCTYPE is refused wherever it is, before any
 * entity it declares can be expanded. */
static void test_doctype_is_refused(void **state)
{
    (void)state;
    const char internal[] = "<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY x \"NoSuchBucket\">]>"
                            "<Error><Code>&x;</Code></Error>";
    assert_null(xml_parse(internal, sizeof internal - 1));
    char code[64], msg[64];
    assert_int_equal(s3_xml_error(internal, sizeof internal - 1, code, sizeof code, msg, sizeof msg), -1);
    char root[64];
    assert_int_equal(s3_xml_root_name(internal, sizeof internal - 1, root, sizeof root), -1);
    assert_false(s3_xml_root_is(internal, sizeof internal - 1, "Error"));

    /* without an internal subset, and an external one: refused too */
    assert_null(xml_parse(S("<!DOCTYPE ListBucketResult><ListBucketResult/>")));
    assert_null(xml_parse(S("<!DOCTYPE a SYSTEM \"http://127.0.0.1:9/x.dtd\"><a/>")));
    struct s3_list_page page;
    assert_int_equal(s3_xml_list_objects(S("<!DOCTYPE ListBucketResult><ListBucketResult>"
                                           "<IsTruncated>false</IsTruncated></ListBucketResult>"),
                                         &page),
                     -1);
}

/* An entity of 64 KiB used 100 times: 6.4 MB of text from a 66 KB answer,
 * under expat's own amplification guard (which starts at 8 MiB). */
static void test_entity_amplification_is_refused(void **state)
{
    (void)state;
    struct xml_buf b = {0};
    xml_buf_add(&b, "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY e \"");
    char chunk[1025];
    memset(chunk, 'x', 1024);
    chunk[1024] = '\0';
    for (int i = 0; i < 64; i++)
        xml_buf_add(&b, chunk);
    xml_buf_add(&b, "\">]><a>");
    for (int i = 0; i < 100; i++)
        xml_buf_add(&b, "&e;");
    xml_buf_add(&b, "</a>");
    xml_node *n = xml_parse(b.data, b.len);
    if (n)
        fail_msg("an entity was expanded into %zu bytes", strlen(n->text));
    xml_buf_free(&b);

    char code[64], msg[64];
    /* billion laughs: ten levels of ten references, refused at the DOCTYPE */
    struct xml_buf l = {0};
    xml_buf_add(&l, "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol0 \"lol\">");
    for (int i = 1; i <= 10; i++) {
        char decl[256];
        int o = snprintf(decl, sizeof decl, "<!ENTITY lol%d \"", i);
        for (int j = 0; j < 10; j++)
            o += snprintf(decl + o, sizeof decl - (size_t)o, "&lol%d;", i - 1);
        snprintf(decl + o, sizeof decl - (size_t)o, "\">");
        xml_buf_add(&l, decl);
    }
    xml_buf_add(&l, "]><Error><Code>&lol10;</Code></Error>");
    assert_null(xml_parse(l.data, l.len));
    assert_int_equal(s3_xml_error(l.data, l.len, code, sizeof code, msg, sizeof msg), -1);
    xml_buf_free(&l);
}

/* No S3 answer is larger than S3_XML_MAX (see xml.h): a larger document is
 * refused before expat sees it. */
static void test_size_cap(void **state)
{
    (void)state;
    size_t len = S3_XML_MAX + 1;
    char *doc = malloc(len);
    assert_non_null(doc);
    memcpy(doc, "<a>", 3);
    memset(doc + 3, ' ', len - 7);
    memcpy(doc + len - 4, "</a>", 4);
    assert_null(xml_parse(doc, len));
    /* one byte less is parsed */
    memcpy(doc + len - 5, "</a>", 4);
    xml_node *n = xml_parse(doc, len - 1);
    assert_non_null(n);
    xml_free(n);
    free(doc);
}

/* Keys of a listing asked with encoding-type=url, as AWS writes them ('+'
 * for a space) and as RADOS Gateway does (%20, '/' as %2F in keys but not in
 * common prefixes), decoded; a key no decoding gives is kept as received
 * and marked. */
static void test_url_decoding(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(s3_url_decode("p%2Fa+b%20c%2Bd%25%C3%A9", &out), 0);
    assert_string_equal(out, "p/a b c+d%\xC3\xA9");
    free(out);
    assert_int_equal(s3_url_decode("ctl%01x%0A", &out), 0);
    assert_string_equal(out, "ctl\x01x\n");
    free(out);
    assert_int_equal(s3_url_decode("", &out), 0);
    assert_string_equal(out, "");
    free(out);
    const char *bad[] = {"%", "a%2", "a%zz", "a%2g", "nul%00x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        out = (char *)"unchanged";
        assert_int_equal(s3_url_decode(bad[i], &out), -1);
        assert_null(out);
    }
}

static void test_list_objects_url_encoded(void **state)
{
    (void)state;
    const char doc[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><EncodingType>url</EncodingType>"
        "<Name>b</Name><Prefix>p/</Prefix><IsTruncated>false</IsTruncated>"
        "<CommonPrefixes><Prefix>p//</Prefix></CommonPrefixes>"
        "<CommonPrefixes><Prefix>p/d%02ir/</Prefix></CommonPrefixes>"
        "<Contents><Key>p%2F%2Fabs</Key><Size>1</Size></Contents>"
        "<Contents><Key>p%2Fbad%zz</Key><Size>4</Size></Contents>"
        "<Contents><Key>p%2Fctl%01x</Key><Size>2</Size></Contents>"
        "<Contents><Key>p%2Fplus%2B%20sp+%25</Key><Size>3</Size></Contents>"
        "</ListBucketResult>";
    struct s3_list_page page;
    assert_int_equal(s3_xml_list_objects(doc, sizeof doc - 1, &page), 0);
    assert_int_equal(page.n, 6);
    /* merged in the order of the decoded keys: "p//" < "p//abs" < "p/bad" < "p/ctl" < "p/d" < "p/plus" */
    assert_string_equal(page.items[0].key, "p//");
    assert_true(page.items[0].is_prefix);
    assert_string_equal(page.items[1].key, "p//abs");
    assert_string_equal(page.items[2].key, "p%2Fbad%zz"); /* as received */
    assert_true(page.items[2].undecodable);
    assert_string_equal(page.items[3].key, "p/ctl\x01x");
    assert_false(page.items[3].undecodable);
    assert_int_equal(page.items[3].size, 2);
    assert_string_equal(page.items[4].key, "p/d\x02ir/");
    assert_string_equal(page.items[5].key, "p/plus+ sp %");
    assert_false(page.truncated);
    s3_list_page_free(&page);

    /* Without EncodingType the store did not encode: keys are taken as they are. */
    assert_int_equal(s3_xml_list_objects(S("<ListBucketResult><IsTruncated>false</IsTruncated>"
                                           "<Contents><Key>a%20b+c</Key></Contents></ListBucketResult>"),
                                         &page),
                     0);
    assert_string_equal(page.items[0].key, "a%20b+c");
    s3_list_page_free(&page);
}

/* RADOS Gateway echoes its continuation token (the last key, unencoded) and
 * StartAfter as they are even with encoding-type=url, and writes a control
 * character as "&#x02;", which XML 1.0 forbids: the page is still read, and
 * its token marked as unusable (the caller goes on after the last key). */
static void test_list_objects_with_forbidden_reference_in_the_token(void **state)
{
    (void)state;
    const char doc[] = "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
                       "<Contents><Key>p%2Fctl%01x</Key></Contents>"
                       "<Contents><Key>p%2Fd%02ir%2Fx</Key></Contents>"
                       "<NextContinuationToken>p/d&#x02;ir/x</NextContinuationToken>"
                       "<StartAfter>p/a&#1;</StartAfter></ListBucketResult>";
    struct s3_list_page page;
    assert_int_equal(s3_xml_list_objects(doc, sizeof doc - 1, &page), 0);
    assert_int_equal(page.n, 2);
    assert_string_equal(page.items[1].key, "p/d\x02ir/x");
    assert_true(page.truncated);
    assert_true(page.token_unusable);
    assert_null(page.next_token);
    s3_list_page_free(&page);

    /* allowed references are left alone, and a token made of them is usable */
    assert_int_equal(s3_xml_list_objects(S("<ListBucketResult><IsTruncated>true</IsTruncated>"
                                           "<NextContinuationToken>a&#x9;&#65;&#xE9;</NextContinuationToken>"
                                           "</ListBucketResult>"),
                                         &page),
                     0);
    assert_false(page.token_unusable);
    assert_string_equal(page.next_token, "a\tA\xC3\xA9");
    s3_list_page_free(&page);
    /* a forbidden reference in a key (a store that did not encode) makes it undecodable, not lost */
    assert_int_equal(s3_xml_list_objects(S("<ListBucketResult><IsTruncated>false</IsTruncated>"
                                           "<Contents><Key>a&#x1;b</Key></Contents></ListBucketResult>"),
                                         &page),
                     0);
    assert_int_equal(page.n, 1);
    assert_true(page.items[0].undecodable);
    s3_list_page_free(&page);
}

/* Uploads: sauve asks with encoding-type=url; RADOS Gateway then encodes
 * the keys without saying so (no EncodingType), and echoes its markers
 * unencoded. */
static void test_list_multipart_uploads_url_encoded(void **state)
{
    (void)state;
    struct s3_uploads_page p;
    assert_int_equal(
        s3_xml_list_uploads(S("<ListMultipartUploadsResult><Prefix>p/</Prefix>"
                              "<NextKeyMarker>p/up+ load</NextKeyMarker>"
                              "<NextUploadIdMarker>id2</NextUploadIdMarker>"
                              "<IsTruncated>true</IsTruncated>"
                              "<Upload><Key>p/up%05load</Key><UploadId>id1</UploadId></Upload>"
                              "<Upload><Key>p/up%2B%20load</Key><UploadId>id2</UploadId></Upload>"
                              "<Upload><Key>p/up%zz</Key><UploadId>id3</UploadId></Upload>"
                              "</ListMultipartUploadsResult>"),
                            &p),
        0);
    assert_int_equal(p.n, 3);
    assert_string_equal(p.items[0].key, "p/up\x05load");
    assert_string_equal(p.items[1].key, "p/up+ load");
    assert_true(p.items[2].undecodable);
    assert_string_equal(p.next_key_marker, "p/up+ load"); /* no EncodingType: as written */
    assert_false(p.markers_unusable);
    s3_uploads_page_free(&p);

    /* AWS: EncodingType given, markers encoded too */
    assert_int_equal(
        s3_xml_list_uploads(S("<ListMultipartUploadsResult><EncodingType>url</EncodingType>"
                              "<NextKeyMarker>p%2Fup%2B+load</NextKeyMarker>"
                              "<NextUploadIdMarker>id2</NextUploadIdMarker>"
                              "<IsTruncated>true</IsTruncated>"
                              "<Upload><Key>p%2Fup%2B+load</Key><UploadId>id2</UploadId></Upload>"
                              "</ListMultipartUploadsResult>"),
                            &p),
        0);
    assert_string_equal(p.items[0].key, "p/up+ load");
    assert_string_equal(p.next_key_marker, "p/up+ load");
    s3_uploads_page_free(&p);

    /* RADOS Gateway's marker holding "&#x05;": read, and marked unusable */
    assert_int_equal(s3_xml_list_uploads(S("<ListMultipartUploadsResult><KeyMarker>p/a&#x05;</KeyMarker>"
                                           "<NextKeyMarker>p/up&#x05;load</NextKeyMarker>"
                                           "<NextUploadIdMarker>id1</NextUploadIdMarker>"
                                           "<IsTruncated>true</IsTruncated>"
                                           "<Upload><Key>p/up%05load</Key><UploadId>id1</UploadId></Upload>"
                                           "</ListMultipartUploadsResult>"),
                                         &p),
                     0);
    assert_int_equal(p.n, 1);
    assert_true(p.markers_unusable);
    s3_uploads_page_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_tree_and_namespaces),
        cmocka_unit_test(test_error_document),
        cmocka_unit_test(test_root_element),
        cmocka_unit_test(test_list_objects_merges_prefixes_in_key_order),
        cmocka_unit_test(test_initiate_multipart_upload),
        cmocka_unit_test(test_list_multipart_uploads),
        cmocka_unit_test(test_delete_result),
        cmocka_unit_test(test_escape_and_dates),
        cmocka_unit_test(test_doctype_is_refused),
        cmocka_unit_test(test_entity_amplification_is_refused),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_url_decoding),
        cmocka_unit_test(test_list_objects_url_encoded),
        cmocka_unit_test(test_list_objects_with_forbidden_reference_in_the_token),
        cmocka_unit_test(test_list_multipart_uploads_url_encoded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
