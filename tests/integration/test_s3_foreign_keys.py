"""Objects that sauve did not write, with keys that no sauve key can look
like, in the series on the real S3 server (Ceph RADOS Gateway): a control
character (XML 1.0 cannot carry it: without encoding-type=url the listing
page is unreadable), a double slash (an empty segment, which the catalog
would have made an absolute path), dot segments. Each is reported once as
a warning naming it, escaped, and left alone; list, prune and restore work
for everything else, and nothing outside the series is touched.

The foreign objects are put with boto3. RGW stores control characters in
keys (all but NUL, which it refuses with 400), and with encoding-type=url
it encodes them in ListObjectsV2 and ListMultipartUploads keys; it still
writes them unencoded, as "&#x01;", where it echoes a key (the
continuation token, StartAfter, the upload markers, and the answer to
CreateMultipartUpload, which boto3 therefore cannot read): those requests
go through signed_request below."""

import concurrent.futures
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from pgserver import PG_BINDIR  # noqa: E402
from sauvecli import Sauve, wait_for  # noqa: E402


def escaped(key):
    """A key as sauve names it in a message: printable ASCII as it is, a
    backslash doubled, every other byte of its UTF-8 as \\xNN."""
    out = []
    for b in key.encode():
        if b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def signed_request(s3, method, bucket, key="", query=""):
    """One SigV4-signed request (botocore's signer, urllib): for what boto3
    cannot do against RGW with such keys. Returns (status, body)."""
    path = f"/{bucket}" + ("/" + urllib.parse.quote(key, safe="/~") if key else "")
    url = s3.endpoint + path + ("?" + query if query else "")
    req = AWSRequest(method=method, url=url, data=b"")
    S3SigV4Auth(Credentials(s3.access_key, s3.secret_key), "s3", s3.region).add_auth(req)
    r = urllib.request.Request(url, method=method, headers=dict(req.headers))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(r, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def uploads(s3, bucket, prefix):
    """Open multipart uploads under prefix, {key: upload id}, keys decoded."""
    status, body = signed_request(s3, "GET", bucket, query="encoding-type=url&prefix="
                                  + urllib.parse.quote(prefix, safe="") + "&uploads")
    assert status == 200, body
    found = re.findall(rb"<Upload><Key>([^<]*)</Key><UploadId>([^<]*)</UploadId>", body)
    return {urllib.parse.unquote(k.decode()): u.decode() for k, u in found}


def start_upload(s3, bucket, key):
    status, body = signed_request(s3, "POST", bucket, key, "uploads")
    assert status == 200, body


def remove_foreign(s3, bucket, keys, prefix):
    """DeleteObjects cannot carry these keys (XML): one DeleteObject each,
    and the uploads aborted, so that the bucket fixture can empty it."""
    for k in keys:
        status, body = signed_request(s3, "DELETE", bucket, k)
        assert status in (204, 404), (k, status, body)
    for k, upload_id in uploads(s3, bucket, prefix).items():
        signed_request(s3, "DELETE", bucket, k, "uploadId=" + urllib.parse.quote(upload_id, safe=""))


def skipped_warnings(result):
    """{escaped key: how many warnings name it} for the skip warnings of a run."""
    out = {}
    for line in result.lines:
        if line and line.get("level") == "warn" and "skipping the" in line.get("msg", ""):
            out[line["key"]] = out.get(line["key"], 0) + 1
    return out


@pytest.fixture
def s3sauve(pg, workdir, bucket):
    return Sauve(workdir, {"SAUVE_PG_BINDIR": PG_BINDIR, **pg.tcp_env(), **bucket.env,
                           "SAUVE_PG_GLOBALS": "false", "SAUVE_PRUNE": "false"})


def backup(s3sauve, db):
    r = s3sauve.run("backup", env={"SAUVE_PG_DATABASES": db})
    assert r.code == 0, r.describe()
    return r.summary["msg"].split("set default/")[1].split(",")[0]


def test_foreign_keys_are_reported_once_and_skipped_by_list_prune_and_restore(
        pg, dbs, bucket, s3sauve, s3):
    db = dbs.empty("fk")
    pg.psql(db, "create table t as select g as id, md5(g::text) as v from generate_series(1, 500) g")
    old = backup(s3sauve, db)
    pg.psql(db, "insert into t values (501, 'only in the newer set')")
    new = backup(s3sauve, db)
    assert old < new

    c, b, p = bucket.client, bucket.name, bucket.prefix
    base = f"{p}/default"
    foreign = [
        f"{base}/{old}/postgres/evil\x01name.dump.zst",   # a control character, in a set to prune
        f"{base}/{old}/postgres//double",                 # an empty segment, in a set to prune
        f"{base}/{old}//abs",                             # its set-relative key would be "/abs"
        f"{base}/{new}/x\ry",                             # in the set that is kept
        f"{base}/20270101T000000Z\x02/x",                 # a control character where a set id is
        f"{base}//{old}/manifest.json",                   # an empty segment after the series
        f"{base}/{old}/./manifest.json",                  # a dot segment
        f"{base}/\x1b[2Jterminal",                        # an escape sequence, for whoever reads the log
    ]
    outside = [f"{p}/other/{old}/manifest.json", f"{p}/default-2/{old}/postgres/x",
               f"elsewhere/default/{old}/manifest.json"]
    for k in foreign + outside:
        c.put_object(Bucket=b, Key=k, Body=b"not sauve's")
    stored = set(bucket.keys(f"{p}/"))
    assert set(foreign) <= stored, "RGW did not store every foreign key as given"
    # An interrupted write of sauve's, and a foreign one with a control character.
    ours = f"{base}/{old}/postgres/crashed.dump.zst"
    c.create_multipart_upload(Bucket=b, Key=ours)
    start_upload(s3, b, f"{base}/{old}/postgres/up\x05load")
    started = time.time()
    assert set(uploads(s3, b, base + "/")) == {ours, f"{base}/{old}/postgres/up\x05load"}

    rel = {k: k[len(p) + 1:] for k in foreign}   # keys as sauve names them: relative to the prefix
    expect_named = {escaped(rel[k]) for k in foreign}
    expect_named.add(escaped(f"default/{old}/postgres/up\x05load"))
    try:
        r = s3sauve.run("list", "--json")
        assert r.code == 0, r.describe()
        sets = json.loads(r.stdout)["sets"]
        assert [(s["id"], s["status"], s["objects"]) for s in sets] == [(new, "ok", 2), (old, "ok", 2)], sets
        named = skipped_warnings(r)
        assert set(named) == {escaped(rel[k]) for k in foreign}, named
        assert all(n == 1 for n in named.values()), named
        assert "\x1b" not in r.stderr and "\x01" not in r.stderr

        r = s3sauve.run("check", "--json", env={"SAUVE_PG_DATABASES": db})
        assert r.code == 0, r.describe()

        keep = {"SAUVE_KEEP_LAST": "1", "SAUVE_PRUNE_GRACE": "1s"}
        wait_for(lambda: time.time() - started > 2.5, 10, "the uploads to age past a 1 s grace period")
        before = set(bucket.keys(f"{p}/"))
        plan = s3sauve.run("prune", "--dry-run", "--json", env=keep)
        assert plan.code == 0, plan.describe()
        out = json.loads(plan.stdout)
        assert {s["id"]: s["action"] for s in out["sets"]} == {new: "keep", old: "delete"}, out["sets"]
        assert [(u["key"], u["action"]) for u in out["uploads"]] == [(ours[len(p) + 1:], "remove")]
        assert set(bucket.keys(f"{p}/")) == before, "a dry run deleted something"
        assert set(skipped_warnings(plan)) == expect_named, skipped_warnings(plan)

        r = s3sauve.run("prune", "--json", env=keep)
        assert r.code == 0, r.describe()
        res = json.loads(r.stdout)["result"]
        assert (res["deleted"], res["failed"], res["uploads_removed"]) == (1, 0, 1), res
        assert all(n == 1 for n in skipped_warnings(r).values()), skipped_warnings(r)
        left = set(bucket.keys(f"{p}/")) | set(bucket.keys("elsewhere/"))
        # The old set's own objects are gone; every foreign and outside object stays.
        assert not any(k.startswith(f"{base}/{old}/") and k not in foreign for k in left), sorted(left)
        assert set(foreign) | set(outside) <= left, sorted(set(foreign) | set(outside) - left)
        assert {f"{base}/{new}/manifest.json", f"{base}/{new}/postgres/{db}.dump.zst"} <= left
        assert set(uploads(s3, b, base + "/")) == {f"{base}/{old}/postgres/up\x05load"}

        r = s3sauve.run("list", "--json")
        assert r.code == 0, r.describe()
        assert [s["id"] for s in json.loads(r.stdout)["sets"]] == [new]

        target = dbs.name("fkrestored")
        r = s3sauve.run("restore", f"postgres:{db}", "--into", target, "--yes")
        assert r.code == 0, r.describe()
        assert pg.psql(target, "select count(*), max(v) filter (where id = 501) from t").strip() == \
            "501|only in the newer set"
    finally:
        remove_foreign(s3, b, foreign, base + "/")


def test_a_control_character_at_the_end_of_a_page(pg, dbs, bucket, s3sauve, s3):
    # RGW's continuation token is the page's last key, echoed as "&#x01;":
    # with 999 keys before it, the foreign key ends the first page of 1000.
    db = dbs.empty("fkpage")
    set_id = backup(s3sauve, db)
    c, b, base = bucket.client, bucket.name, f"{bucket.prefix}/default"
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: c.put_object(Bucket=b, Key=f"{base}/00-fill/k{i:04d}", Body=b"x"),
                      range(999)))
    hostile = f"{base}/00-fill/k0999\x01"
    c.put_object(Bucket=b, Key=hostile, Body=b"x")
    status, body = signed_request(s3, "GET", b, query="encoding-type=url&list-type=2&prefix="
                                  + urllib.parse.quote(base + "/", safe=""))
    assert status == 200 and b"<NextContinuationToken>" + hostile.encode().replace(b"\x01", b"&#x01;") in body, \
        body[-300:]
    try:
        r = s3sauve.run("list", "--json")
        assert r.code == 0, r.describe()
        assert [s["id"] for s in json.loads(r.stdout)["sets"]] == [set_id]
        assert skipped_warnings(r) == {escaped(hostile[len(bucket.prefix) + 1:]): 1}
    finally:
        remove_foreign(s3, b, [hostile], base + "/")


def test_a_double_slash_in_a_set_to_prune(pg, dbs, bucket, s3sauve):
    # No control character: the listing is readable, but "OLD//abs" and
    # "postgres//x" made their set-relative keys "/abs" and "postgres//x",
    # which the storage refused to delete, failing every later prune.
    db = dbs.empty("fkslash")
    old = backup(s3sauve, db)
    new = backup(s3sauve, db)
    base = f"{bucket.prefix}/default"
    foreign = [f"{base}/{old}//abs", f"{base}/{old}/postgres//x"]
    for k in foreign:
        bucket.client.put_object(Bucket=bucket.name, Key=k, Body=b"not sauve's")
    r = s3sauve.run("prune", "--json", env={"SAUVE_KEEP_LAST": "1"})
    assert r.code == 0, r.describe()
    assert json.loads(r.stdout)["result"]["deleted"] == 1
    assert set(skipped_warnings(r)) == {escaped(k[len(bucket.prefix) + 1:]) for k in foreign}
    left = bucket.keys(f"{base}/")
    assert sorted(k for k in left if k.startswith(f"{base}/{old}/")) == sorted(foreign), left
    assert f"{base}/{new}/manifest.json" in left
