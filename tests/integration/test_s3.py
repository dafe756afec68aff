"""sauve's S3 backend against a real S3 server (Ceph RADOS Gateway, see
s3server.py): what sauve writes is checked with boto3 and Debian's awscli,
never with sauve alone. Run with /usr/bin/python3 (Debian's boto3)."""

import base64
import concurrent.futures
import hashlib
import json
import os
import secrets
import socket
import subprocess

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402

from conftest import make_bindir  # noqa: E402
from pgdata import assert_same_state, db_state  # noqa: E402
from pgserver import PG_BINDIR  # noqa: E402
from sauvecli import Result, Sauve, trace, wait_for  # noqa: E402

MiB = 1024 * 1024


@pytest.fixture
def s3sauve(pg, workdir, bucket):
    """sauve pointed at the session PostgreSQL and at this test's bucket."""
    return Sauve(workdir, {"SAUVE_PG_BINDIR": PG_BINDIR, **pg.tcp_env(), **bucket.env})


def manifest_of(bucket, set_id, name="default"):
    key = f"{bucket.prefix}/{name}/{set_id}/manifest.json"
    return json.loads(bucket.get(key))


def only_set(bucket, name="default"):
    """The set ids under the series, from boto3's listing."""
    ids = sorted({k.split("/")[2] for k in bucket.keys(f"{bucket.prefix}/{name}/")})
    return ids


def backup_ok(s3sauve, db, env=None):
    r = s3sauve.run("backup", env={"SAUVE_PG_DATABASES": db, **(env or {})})
    assert r.code == 0, r.describe()
    set_id = r.summary["msg"].split("set default/")[1].split(",")[0]
    return r, set_id


def random_db(pg, dbs, mib):
    """A database of about mib MiB of random bytes (bytea): its dump does not
    compress much, so that the stored object is large without a large server."""
    db = dbs.empty("rnd")
    pg.psql(db, f"""
        create table blobs (id int primary key, data bytea);
        insert into blobs
        select g, (select string_agg(decode(md5(random()::text || g || s), 'hex'), ''::bytea)
                   from generate_series(1, 64) s)
        from generate_series(1, {int(mib * 1024)}) g;""")
    return db


def retry_lines(result):
    return [l for l in result.lines if l and l.get("level") == "warn" and "attempt" in l]


# ---- what a backup stores ---------------------------------------------------

def test_backup_objects_and_manifest_are_readable_by_boto3(pg, dbs, small_template, bucket, s3sauve, s3):
    db = dbs.clone(small_template)
    r, set_id = backup_ok(s3sauve, db)
    keys = bucket.keys(f"{bucket.prefix}/")
    base = f"{bucket.prefix}/default/{set_id}/"
    assert keys == sorted([base + "manifest.json", base + "postgres/globals.sql.zst",
                           base + f"postgres/{db}.dump.zst"]), keys

    m = manifest_of(bucket, set_id)
    assert m["id"] == set_id and m["status"] == "ok"
    for a in m["artifacts"]:
        body = bucket.get(base + a["key"])
        assert hashlib.sha256(body).hexdigest() == a["sha256"], a["key"]
        assert len(body) == a["bytes_out"], a["key"]
        assert body[:4] == b"\x28\xb5\x2f\xfd", f"{a['key']} is not a zstd frame"

    # The other independent client lists the same objects.
    out = s3.aws_json("s3api", "list-objects-v2", "--bucket", bucket.name, "--prefix", base)
    assert sorted(o["Key"] for o in out["Contents"]) == keys

    # sauve itself finds the set in the bucket.
    r = s3sauve.run("list", "--json")
    assert r.code == 0, r.describe()
    assert [s["id"] for s in json.loads(r.stdout)["sets"]] == [set_id]


def test_restore_from_s3_gives_the_same_database(pg, dbs, small_template, bucket, s3sauve):
    db = dbs.clone(small_template)
    before = db_state(pg, db)
    backup_ok(s3sauve, db, {"SAUVE_PG_GLOBALS": "false"})
    new = dbs.name("restored")
    r = s3sauve.run("restore", f"postgres:{db}", "--into", new, "--yes")
    assert r.code == 0, r.describe()
    assert_same_state(before, db_state(pg, new))


def test_large_stream_is_a_multipart_upload_of_many_parts(pg, dbs, bucket, s3sauve):
    db = random_db(pg, dbs, 24)  # ~24 MiB of random bytes: ~27 MiB stored
    r, set_id = backup_ok(s3sauve, db, {"SAUVE_S3_PART_SIZE": "5", "SAUVE_PG_GLOBALS": "false",
                                        "SAUVE_ZSTD_LEVEL": "1"})
    key = f"{bucket.prefix}/default/{set_id}/postgres/{db}.dump.zst"
    head = bucket.client.head_object(Bucket=bucket.name, Key=key)
    etag = head["ETag"].strip('"')
    assert "-" in etag, f"not a multipart object: ETag {etag}"
    parts = int(etag.rsplit("-", 1)[1])
    assert parts == -(-head["ContentLength"] // (5 * MiB)) and parts >= 5, (etag, head["ContentLength"])
    # (HeadObject with PartNumber would show each part's size; RGW ignores it.)
    m = manifest_of(bucket, set_id)
    art = next(a for a in m["artifacts"] if a["name"] == db)
    assert hashlib.sha256(bucket.get(key)).hexdigest() == art["sha256"]
    assert bucket.uploads() == [], "a multipart upload was left behind"


def test_listing_across_pages(pg, dbs, small_template, bucket, s3sauve):
    # 1100 stray objects sort before the set ("00-..." < "2026..."): sauve
    # sees the set only if it follows ListObjectsV2's continuation tokens.
    db = dbs.clone(small_template)
    r, set_id = backup_ok(s3sauve, db, {"SAUVE_PG_GLOBALS": "false"})
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: bucket.client.put_object(
            Bucket=bucket.name, Key=f"{bucket.prefix}/default/00-stray/k{i:05d}", Body=b"x"),
            range(1100)))
    r = s3sauve.run("list", "--json")
    assert r.code == 0, r.describe()
    sets = json.loads(r.stdout)["sets"]
    assert [s["id"] for s in sets] == [set_id]
    assert sets[0]["status"] == "ok" and sets[0]["objects"] == 2, sets[0]


def test_virtual_hosted_addressing(pg, dbs, bucket, s3sauve, s3):
    # bucket.s3.localhost:PORT (RGW's "rgw dns name"); curl resolves *.localhost itself.
    endpoint = s3.endpoint.replace("127.0.0.1", "s3.localhost")
    env = {"AWS_ENDPOINT_URL_S3": endpoint, "SAUVE_S3_PATH_STYLE": "false"}
    db = dbs.empty("vh")
    r, set_id = backup_ok(s3sauve, db, env)
    assert manifest_of(bucket, set_id)["status"] == "ok"
    r = s3sauve.run("list", "--json", env=env)
    assert [x["id"] for x in json.loads(r.stdout)["sets"]] == [set_id]


# ---- server-side encryption --------------------------------------------------

# The RADOS Gateway refuses server-side encryption over plain http (its
# default, `rgw crypt require ssl`): these tests use its HTTPS endpoint,
# verified against the harness's CA (s3.env(tls=True), s3.client(tls=True)).

def test_sse_c_object_unreadable_without_the_key(pg, dbs, small_template, bucket, s3sauve, s3, workdir):
    key = secrets.token_bytes(32)
    key_file = os.path.join(workdir, "sse-c.key")
    with open(key_file, "w") as f:
        f.write(base64.b64encode(key).decode() + "\n")   # the base64 form
    tls = s3.env(tls=True)
    env = {**tls, "SAUVE_S3_SSE_C_KEY_FILE": key_file, "SAUVE_PG_GLOBALS": "false"}
    db = dbs.clone(small_template)
    before = db_state(pg, db)
    r, set_id = backup_ok(s3sauve, db, env)
    assert base64.b64encode(key).decode() not in r.stderr

    c = s3.client(tls=True)
    obj = f"{bucket.prefix}/default/{set_id}/postgres/{db}.dump.zst"
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket.name, Key=obj)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # What sauve sent as the key is the file's key: boto3 decrypts with it.
    body = c.get_object(Bucket=bucket.name, Key=obj, SSECustomerAlgorithm="AES256",
                        SSECustomerKey=key)["Body"].read()
    m = json.loads(c.get_object(
        Bucket=bucket.name, Key=f"{bucket.prefix}/default/{set_id}/manifest.json",
        SSECustomerAlgorithm="AES256", SSECustomerKey=key)["Body"].read())
    assert hashlib.sha256(body).hexdigest() == m["artifacts"][0]["sha256"]

    # Restore needs the key, and works with it (the raw 32-byte form this time).
    with open(key_file, "wb") as f:
        f.write(key)
    new = dbs.name("ssec")
    r = s3sauve.run("restore", f"postgres:{db}", "--into", new, "--yes", env=env)
    assert r.code == 0, r.describe()
    assert_same_state(before, db_state(pg, new))
    r = s3sauve.run("restore", f"postgres:{db}", "--into", dbs.name("nokey"), "--yes", env=tls)
    assert r.code != 0
    assert "SAUVE_S3_SSE_C_KEY_FILE" in r.all_output(), r.describe()


def test_sse_c_over_plain_http_is_refused_before_any_request(dbs, bucket, s3sauve, workdir):
    # A listener that counts who connects: sauve must not, since every
    # request would carry the key in clear text.
    key_file = os.path.join(workdir, "sse-c.key")
    with open(key_file, "w") as f:
        f.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        env = {"AWS_ENDPOINT_URL_S3": endpoint, "SAUVE_S3_SSE_C_KEY_FILE": key_file,
               "SAUVE_PG_DATABASES": dbs.empty("ssechttp"),
               # a sauve that did connect gets no answer: fail fast, not in minutes
               "SAUVE_S3_MAX_ATTEMPTS": "1", "SAUVE_S3_TIMEOUT": "5"}
        for cmd in (["backup"], ["check", "--json"], ["list"]):
            r = s3sauve.run(*cmd, env=env)
            assert r.code == 78, r.describe()
            msg = r.summary["msg"]
            assert "SAUVE_S3_SSE_C_KEY_FILE" in msg and endpoint in msg and "https://" in msg, msg
            assert retry_lines(r) == []
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_tls_is_verified_with_a_clear_error(dbs, bucket, s3sauve, s3, workdir):
    from s3server import make_ca
    other_ca, _ = make_ca(os.path.join(workdir, "tls"), "other")
    db = dbs.empty("tls")
    tls = {**s3.env(tls=True), "SAUVE_PG_DATABASES": db}
    # The right CA: it works over https.
    r = s3sauve.run("check", "--json", env=tls)
    assert r.code == 0, r.describe()
    # Another CA, or the system's CAs: refused, as a configuration error,
    # without retries, naming the endpoint and the setting that fixes it.
    for env, unset in (({**tls, "SAUVE_S3_CA_BUNDLE": other_ca}, ()), (tls, ("SAUVE_S3_CA_BUNDLE",))):
        r = s3sauve.run("backup", env=env, unset=unset)
        assert r.code == 78, r.describe()
        msg = r.summary["msg"]
        assert s3.https_endpoint in msg and "SAUVE_S3_CA_BUNDLE" in msg, msg
        assert "certificate" in msg.lower(), msg
        assert retry_lines(r) == []
    assert bucket.keys() == [], "nothing may be written over an unverified connection"


def test_sse_kms_key_id_is_echoed(pg, dbs, bucket, s3sauve, s3):
    db = dbs.empty("kms")
    pg.psql(db, "create table t as select g from generate_series(1, 1000) g")
    r, set_id = backup_ok(s3sauve, db, {**s3.env(tls=True), "SAUVE_S3_SSE": "aws:kms",
                                        "SAUVE_S3_SSE_KMS_KEY_ID": s3.kms_key_id})
    c = s3.client(tls=True)
    for k in bucket.keys(f"{bucket.prefix}/default/{set_id}/"):
        head = c.head_object(Bucket=bucket.name, Key=k)
        assert head.get("ServerSideEncryption") == "aws:kms", (k, head)
        assert head.get("SSEKMSKeyId") == s3.kms_key_id, (k, head)


# ---- failures ------------------------------------------------------------------

def test_wrong_secret_is_a_clear_configuration_error_without_retries(dbs, bucket, s3sauve):
    db = dbs.empty("sig")
    r = s3sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    assert r.code == 78, r.describe()
    assert "SignatureDoesNotMatch" in r.summary["msg"], r.describe()
    assert "AWS_SECRET_ACCESS_KEY" in r.summary["msg"]      # in the hint
    assert "not-the-secret" not in r.all_output()
    assert retry_lines(r) == [], "a signature error must not be retried"
    r = s3sauve.run("check", env={"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, json_stdout=True)
    assert r.code == 78, r.describe()


def test_missing_bucket_is_a_configuration_error_naming_it(dbs, bucket, s3sauve):
    db = dbs.empty("nb")
    missing = f"sauve-it-missing-{secrets.token_hex(3)}"
    r = s3sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_STORAGE": f"s3://{missing}/x"})
    assert r.code == 78, r.describe()
    assert "NoSuchBucket" in r.summary["msg"] and missing in r.summary["msg"], r.describe()
    assert bucket.server.endpoint in r.summary["msg"]
    assert retry_lines(r) == []


def test_unreachable_endpoint_is_a_temporary_failure(dbs, bucket, s3sauve):
    r = s3sauve.run("check", env={"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", "SAUVE_S3_MAX_ATTEMPTS": "2"},
                    json_stdout=True)
    assert r.code == 75, r.describe()
    assert "127.0.0.1:9" in r.summary["msg"]
    assert len(retry_lines(r)) == 1


def test_dot_segment_in_the_prefix_is_a_configuration_error(dbs, bucket, s3sauve):
    # HTTP would resolve "." and "..": the keys would not be where the URL says.
    for url in (f"s3://{bucket.name}/a/../b", f"s3://{bucket.name}/./x"):
        r = s3sauve.run("check", env={"SAUVE_STORAGE": url}, json_stdout=True)
        assert r.code == 78, r.describe()
        assert "SAUVE_STORAGE" in r.summary["msg"], r.describe()
        assert retry_lines(r) == []


def _paused_pg_dump(workdir, mib):
    """A pg_dump that writes its first mib MiB, then waits for the file
    DIR/go before writing the rest: the test acts on the server while the
    upload is under way, with no sleep."""
    return make_bindir(workdir, {"pg_dump": f"""
"$REAL" "$@" | {{ dd bs=1M count={mib} iflag=fullblock status=none
  while [ ! -e "$DIR/go" ]; do sleep 0.05; done
  cat; }}
exit ${{PIPESTATUS[0]}}
"""}, name="pausebin")


def _start_logged(sauve, args, env, log_path):
    """Starts sauve with stderr in a file, so that the test can wait for a line."""
    argv, full, term = sauve._prepare(args, env, ())
    log = open(log_path, "wb")
    p = subprocess.Popen(argv, env=full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=log, cwd=sauve.workdir)
    p._sauve = (args, term, log, log_path)
    return p


def _finish_logged(p, timeout=120):
    args, term, log, log_path = p._sauve
    out, _ = p.communicate(timeout=timeout)
    log.close()
    with open(log_path, encoding="utf-8", errors="replace") as f:
        err = f.read()
    termination = open(term).read() if os.path.exists(term) else None
    r = Result(list(args), p.returncode, out.decode(), err, termination)
    trace(r)
    return r


def _upload_started(bucket, db):
    return [u for u in bucket.uploads() if u[0].endswith(f"/postgres/{db}.dump.zst")]


def test_server_killed_mid_upload_fails_without_a_manifest(pg, dbs, small_template, bucket, s3sauve,
                                                           s3, workdir):
    # An earlier set, which must survive.
    early_db = dbs.clone(small_template)
    _, early = backup_ok(s3sauve, early_db, {"SAUVE_PG_GLOBALS": "false"})
    early_keys = bucket.keys(f"{bucket.prefix}/default/{early}/")

    db = random_db(pg, dbs, 16)
    go = os.path.join(workdir, "pausebin", "go")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_S3_PART_SIZE": "5",
           "SAUVE_ZSTD_LEVEL": "1", "SAUVE_S3_MAX_ATTEMPTS": "3",
           "SAUVE_PG_BINDIR": _paused_pg_dump(workdir, 16)}
    p = _start_logged(s3sauve, ["backup"], env, os.path.join(workdir, "kill.log"))
    try:
        wait_for(lambda: _upload_started(bucket, db), 60, "sauve's multipart upload to start")
        s3.kill_rgw()
    finally:
        open(go, "w").close()
    r = _finish_logged(p)
    s3.start_rgw()
    assert r.code == 1, r.describe()
    r.check_log_contract()
    assert "UploadPart" in r.stderr or "CreateMultipartUpload" in r.stderr, r.describe()

    assert bucket.keys(f"{bucket.prefix}/default/{early}/") == early_keys
    assert manifest_of(bucket, early)["status"] == "ok"
    sets = only_set(bucket)
    for s in sets:
        if s != early:
            assert f"{bucket.prefix}/default/{s}/manifest.json" not in bucket.keys(
                f"{bucket.prefix}/default/{s}/"), "the failed set has a manifest"
    r = s3sauve.run("list", "--json")
    assert r.code == 0, r.describe()
    listed = {s["id"]: s["status"] for s in json.loads(r.stdout)["sets"]}
    assert listed[early] == "ok", listed
    assert all(st == "incomplete" for s, st in listed.items() if s != early), listed


def test_server_restarted_between_parts_is_retried(pg, dbs, bucket, s3sauve, s3, workdir):
    db = random_db(pg, dbs, 16)
    go = os.path.join(workdir, "pausebin", "go")
    log_path = os.path.join(workdir, "restart.log")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PG_GLOBALS": "false", "SAUVE_S3_PART_SIZE": "5",
           "SAUVE_ZSTD_LEVEL": "1", "SAUVE_S3_MAX_ATTEMPTS": "12",
           "SAUVE_PG_BINDIR": _paused_pg_dump(workdir, 16)}
    p = _start_logged(s3sauve, ["backup"], env, log_path)
    try:
        wait_for(lambda: _upload_started(bucket, db), 60, "sauve's multipart upload to start")
        s3.kill_rgw()
        open(go, "w").close()
        wait_for(lambda: b"retrying" in open(log_path, "rb").read(), 60, "sauve to retry a request")
    finally:
        open(go, "w").close()
        s3.start_rgw()
    r = _finish_logged(p)
    assert r.code == 0, r.describe()
    assert retry_lines(r), "no retry was logged"
    for l in retry_lines(r):
        assert l.get("attempt") and l.get("op"), l
    set_id = r.summary["msg"].split("set default/")[1].split(",")[0]
    m = manifest_of(bucket, set_id)
    key = f"{bucket.prefix}/default/{set_id}/{m['artifacts'][0]['key']}"
    assert hashlib.sha256(bucket.get(key)).hexdigest() == m["artifacts"][0]["sha256"]
    assert bucket.uploads() == []
