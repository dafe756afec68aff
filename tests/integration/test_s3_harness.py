"""The S3 test server (Ceph RADOS Gateway, s3server.py) is a real S3 for what
sauve's S3 backend needs: checked with boto3 and Debian's awscli v2 only,
never with sauve. Run with /usr/bin/python3 (Debian's boto3)."""

import base64
import hashlib
import http.client
import os
import secrets
import socket
import time
import urllib.parse

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError, EndpointConnectionError, SSLError  # noqa: E402

from s3server import S3Server, S3StartError, make_ca  # noqa: E402
from sauvecli import pid_alive  # noqa: E402

MiB = 1024 * 1024


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_bucket_fixture_env_reaches_the_server(bucket, s3):
    env = bucket.env
    assert env["SAUVE_STORAGE"] == f"s3://{bucket.name}/{bucket.prefix}"
    assert env["AWS_ENDPOINT_URL_S3"] == s3.endpoint
    assert env["AWS_ENDPOINT_URL_S3"].startswith("http://127.0.0.1:")
    assert env["SAUVE_S3_PATH_STYLE"] == "true"
    # A client built from nothing but what sauve is given.
    c = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"],
                     region_name=env["AWS_REGION"],
                     aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                     config=boto3.session.Config(s3={"addressing_style": "path"}))
    assert c.list_objects_v2(Bucket=bucket.name)["KeyCount"] == 0


def test_put_get_round_trip_boto3_and_aws_cli(bucket, s3, tmp_path):
    body = secrets.token_bytes(300_000)
    key = f"{bucket.prefix}/round/trip.bin"
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=body)
    assert bucket.get(key) == body

    # The other client reads what boto3 wrote...
    out = tmp_path / "via-cli.bin"
    s3.aws("s3", "cp", f"s3://{bucket.name}/{key}", str(out))
    assert out.read_bytes() == body

    # ...and boto3 reads what the CLI streamed from stdin.
    streamed = secrets.token_bytes(1 * MiB + 17)
    s3.aws("s3", "cp", "-", f"s3://{bucket.name}/{bucket.prefix}/stdin.bin",
           "--expected-size", str(len(streamed)), input=streamed)
    assert bucket.get(f"{bucket.prefix}/stdin.bin") == streamed
    head = s3.aws_json("s3api", "head-object", "--bucket", bucket.name,
                       "--key", key)
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()


def test_wrong_secret_is_rejected(bucket, s3):
    bad = s3.client(secret_key=s3.secret_key[:-4] + "AAAA")
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket=bucket.name, Key="x", Body=b"nope")
    assert error_code(e) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as e:
        bad.list_objects_v2(Bucket=bucket.name)
    assert error_code(e) == "SignatureDoesNotMatch"

    # RGW's error bodies carry no <Message>; awscli 2.9 then fails in its own
    # S3 error customisation ("argument of type 'NoneType' is not
    # iterable") instead of printing the code: read the code in --debug.
    p = s3.aws("s3api", "list-objects-v2", "--bucket", bucket.name, "--debug",
               check=False, env={"AWS_SECRET_ACCESS_KEY": "wrong" + s3.secret_key[5:]})
    assert p.returncode != 0, p.stderr[-3000:]
    assert "<Code>SignatureDoesNotMatch</Code>" in p.stderr, p.stderr[-3000:]

    unknown = s3.client(access_key="AKIDOESNOTEXIST00000")
    with pytest.raises(ClientError) as e:
        unknown.list_objects_v2(Bucket=bucket.name)
    assert error_code(e) == "InvalidAccessKeyId"
    assert bucket.keys() == []


def test_body_not_matching_signed_hash_is_rejected(bucket, s3):
    """The server checks the payload hash that SigV4 signs (boto3 signs the
    payload over plain HTTP): a body changed after signing is refused."""
    c = s3.client()

    def tamper(request, **_):
        body = request.body.read() if hasattr(request.body, "read") else request.body
        request.body = b"tampered" + body[8:]

    c.meta.events.register_first("before-send.s3.PutObject", tamper)
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=bucket.name, Key="t", Body=b"original body")
    assert error_code(e) == "XAmzContentSHA256Mismatch"
    assert bucket.keys() == []


def test_multipart_upload_of_three_parts(bucket):
    c, b, key = bucket.client, bucket.name, f"{bucket.prefix}/multi.bin"
    parts = [secrets.token_bytes(5 * MiB), secrets.token_bytes(5 * MiB),
             secrets.token_bytes(MiB + 3)]
    up = c.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        r = c.upload_part(Bucket=b, Key=key, UploadId=up, PartNumber=n, Body=data)
        assert r["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    listed = c.list_parts(Bucket=b, Key=key, UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [
        (n, len(d)) for n, d in enumerate(parts, 1)]
    c.complete_multipart_upload(Bucket=b, Key=key, UploadId=up,
                                MultipartUpload={"Parts": done})

    head = c.head_object(Bucket=b, Key=key)
    whole = b"".join(parts)
    expected = hashlib.md5(b"".join(hashlib.md5(d).digest() for d in parts)).hexdigest()
    assert head["ETag"] == f'"{expected}-3"'
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ContentLength"] == len(whole)
    assert bucket.get(key) == whole
    # Ranged reads, as a restore that resumes would use.
    r = c.get_object(Bucket=b, Key=key, Range="bytes=-10")
    assert r["Body"].read() == whole[-10:]
    r = c.get_object(Bucket=b, Key=key, Range=f"bytes={5 * MiB - 2}-{5 * MiB + 1}")
    assert r["Body"].read() == whole[5 * MiB - 2:5 * MiB + 2]
    assert bucket.uploads() == []


def test_multipart_part_below_5_mib_is_entity_too_small(bucket):
    c, b, key = bucket.client, bucket.name, "small-parts"
    up = c.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
    done = []
    for n, size in ((1, MiB), (2, MiB)):
        r = c.upload_part(Bucket=b, Key=key, UploadId=up, PartNumber=n,
                          Body=secrets.token_bytes(size))
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=b, Key=key, UploadId=up,
                                    MultipartUpload={"Parts": done})
    assert error_code(e) == "EntityTooSmall"
    c.abort_multipart_upload(Bucket=b, Key=key, UploadId=up)


def test_list_and_abort_unfinished_multipart_upload(bucket, s3):
    c, b = bucket.client, bucket.name
    key = f"{bucket.prefix}/20260101T000000Z/dump.zst"
    up = c.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
    c.upload_part(Bucket=b, Key=key, UploadId=up, PartNumber=1,
                  Body=secrets.token_bytes(5 * MiB))
    assert bucket.uploads() == [(key, up)]
    # The unfinished upload is not an object.
    assert bucket.keys() == []
    # The CLI sees it too, also when filtered by prefix.
    listed = s3.aws_json("s3api", "list-multipart-uploads", "--bucket", b,
                         "--prefix", bucket.prefix + "/")
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == [(key, up)]

    c.abort_multipart_upload(Bucket=b, Key=key, UploadId=up)
    assert bucket.uploads() == []
    # Differences from AWS worth knowing (AWS answers NoSuchUpload, 404, to
    # all three): ListParts says NoSuchKey, and completing an aborted
    # upload is a 500 InternalError that no retry will fix.
    with pytest.raises(ClientError) as e:
        c.upload_part(Bucket=b, Key=key, UploadId=up, PartNumber=2, Body=b"x")
    assert error_code(e) == "NoSuchUpload"
    with pytest.raises(ClientError) as e:
        c.list_parts(Bucket=b, Key=key, UploadId=up)
    assert error_code(e) in ("NoSuchUpload", "NoSuchKey")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=b, Key=key, UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": '"0"'}]})
    assert error_code(e) in ("NoSuchUpload", "InternalError")
    assert bucket.keys() == []


def test_list_objects_v2_pagination(bucket, s3):
    c, b = bucket.client, bucket.name
    keys = [f"{bucket.prefix}/k{i}" for i in range(5)]
    for k in keys:
        c.put_object(Bucket=b, Key=k, Body=k.encode())
    c.put_object(Bucket=b, Key="elsewhere/k", Body=b"x")

    seen, pages, token = [], [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = c.list_objects_v2(Bucket=b, Prefix=bucket.prefix + "/", MaxKeys=2, **kw)
        pages.append(r["KeyCount"])
        seen.extend(o["Key"] for o in r.get("Contents", []))
        if not r["IsTruncated"]:
            assert "NextContinuationToken" not in r
            break
        token = r["NextContinuationToken"]
    assert pages == [2, 2, 1]
    assert seen == keys

    # StartAfter, and "directories" through a delimiter.
    r = c.list_objects_v2(Bucket=b, Prefix=bucket.prefix + "/", StartAfter=keys[2])
    assert [o["Key"] for o in r["Contents"]] == keys[3:]
    r = c.list_objects_v2(Bucket=b, Delimiter="/")
    assert sorted(p["Prefix"] for p in r["CommonPrefixes"]) == [
        bucket.prefix + "/", "elsewhere/"]

    # The CLI paginates by itself with --page-size.
    listed = s3.aws_json("s3api", "list-objects-v2", "--bucket", b,
                         "--prefix", bucket.prefix + "/", "--page-size", "2")
    assert [o["Key"] for o in listed["Contents"]] == keys


def test_https_endpoint_is_verified_against_the_test_ca(bucket, s3, tmp_path):
    assert s3.https_endpoint.startswith("https://127.0.0.1:")
    c = s3.client(tls=True)
    c.put_object(Bucket=bucket.name, Key="over-tls", Body=b"x")
    assert c.get_object(Bucket=bucket.name, Key="over-tls")["Body"].read() == b"x"
    # Neither the system's CAs nor another CA trust its certificate.
    other_ca, _ = make_ca(str(tmp_path), "other")
    for verify in (True, other_ca):
        with pytest.raises(SSLError):
            s3.client(tls=True, verify=verify).head_object(Bucket=bucket.name, Key="over-tls")
    p = s3.aws("s3api", "head-object", "--bucket", bucket.name, "--key", "over-tls", tls=True)
    assert '"ContentLength": 1' in p.stdout


def test_sse_is_refused_over_plain_http(bucket, s3):
    # RGW's default (rgw crypt require ssl = true), which the harness keeps:
    # a customer key or a KMS request over http is refused, after RGW got it.
    c, b = bucket.client, bucket.name
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=b, Key="k", Body=b"x", SSECustomerAlgorithm="AES256",
                     SSECustomerKey=secrets.token_bytes(32))
    assert error_code(e) == "InvalidRequest"
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=b, Key="k", Body=b"x", ServerSideEncryption="aws:kms",
                     SSEKMSKeyId=s3.kms_key_id)
    assert error_code(e) == "InvalidRequest"
    assert bucket.keys() == []


def test_sse_c_object_is_unreadable_without_the_key(bucket, s3):
    c, b, key = s3.client(tls=True), bucket.name, "sse-c.bin"
    secret = secrets.token_bytes(32)
    body = secrets.token_bytes(100_000)
    sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": secret}
    r = c.put_object(Bucket=b, Key=key, Body=body, **sse)
    assert r["SSECustomerAlgorithm"] == "AES256"

    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=b, Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=b, Key=key, SSECustomerAlgorithm="AES256",
                     SSECustomerKey=secrets.token_bytes(32))
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)

    assert c.get_object(Bucket=b, Key=key, **sse)["Body"].read() == body

    # The CLI, with the key, reads it too (the key given as base64 bytes).
    p = s3.aws("s3api", "get-object", "--bucket", b, "--key", key,
               "--sse-customer-algorithm", "AES256",
               "--sse-customer-key", base64.b64encode(secret).decode(),
               "--sse-customer-key-md5",
               base64.b64encode(hashlib.md5(secret).digest()).decode(),
               "/dev/stdout", input=b"", tls=True)
    assert p.stdout.startswith(body)


def test_sse_kms_echoes_the_test_key_id(bucket, s3, tmp_path):
    c, b, key = s3.client(tls=True), bucket.name, "sse-kms.bin"
    body = secrets.token_bytes(50_000)
    r = c.put_object(Bucket=b, Key=key, Body=body, ServerSideEncryption="aws:kms",
                     SSEKMSKeyId=s3.kms_key_id)
    assert r["ServerSideEncryption"] == "aws:kms"
    assert r["SSEKMSKeyId"] == s3.kms_key_id
    head = c.head_object(Bucket=b, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == s3.kms_key_id
    assert c.get_object(Bucket=b, Key=key)["Body"].read() == body

    # A key id the KMS does not know is refused.
    with pytest.raises(ClientError):
        c.put_object(Bucket=b, Key="unknown-kms", Body=b"x",
                     ServerSideEncryption="aws:kms", SSEKMSKeyId="no-such-key")
    assert "unknown-kms" not in bucket.keys()

    # Through the CLI, multipart (8 MiB crosses its 8 MiB threshold).
    src = tmp_path / "big.bin"
    src.write_bytes(secrets.token_bytes(9 * MiB))
    s3.aws("s3", "cp", str(src), f"s3://{b}/kms-multipart.bin", "--sse", "aws:kms",
           "--sse-kms-key-id", s3.kms_key_id, tls=True)
    head = c.head_object(Bucket=b, Key="kms-multipart.bin")
    assert head["SSEKMSKeyId"] == s3.kms_key_id
    assert head["ETag"].strip('"').endswith("-2")
    assert c.get_object(Bucket=b, Key="kms-multipart.bin")["Body"].read() == src.read_bytes()


def test_gateway_restart_keeps_data_and_port(bucket, s3):
    c, b = bucket.client, bucket.name
    c.put_object(Bucket=b, Key="before", Body=b"written before the restart")
    port = s3.port
    old_pid = s3.pids()["radosgw"]

    s3.kill_rgw()
    assert not s3.rgw_running() and not pid_alive(old_pid)
    with pytest.raises(EndpointConnectionError):
        c.get_object(Bucket=b, Key="before")

    s3.start_rgw()
    assert s3.port == port and s3.pids()["radosgw"] != old_pid
    assert bucket.get("before") == b"written before the restart"
    c.put_object(Bucket=b, Key="after", Body=b"after")
    assert bucket.keys() == ["after", "before"]
    # Metadata changes do not wait for the dead gateway (stale watches).
    t0 = time.monotonic()
    other = s3.make_bucket(f"sauve-it-{secrets.token_hex(4)}")
    assert time.monotonic() - t0 < 5
    c.delete_bucket(Bucket=other)


def test_gateway_killed_mid_upload(bucket, s3):
    """What an interrupted upload looks like: the connection breaks, no
    object appears, a multipart upload in progress survives the restart and
    can be resumed; the gateway comes back on its port although a client
    connection was open when it died."""
    c, b = bucket.client, bucket.name
    key = "resumable"
    up = c.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
    part1 = secrets.token_bytes(5 * MiB)
    e1 = c.upload_part(Bucket=b, Key=key, UploadId=up, PartNumber=1, Body=part1)["ETag"]

    url = c.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "torn"},
                                   ExpiresIn=600)
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.putrequest("PUT", u.path + "?" + u.query, skip_accept_encoding=True)
    conn.putheader("Content-Length", str(16 * MiB))
    conn.endheaders()
    conn.send(b"\0" * MiB)
    s3.kill_rgw()
    with pytest.raises(OSError):
        for _ in range(64):             # until the kernel notices the reset
            conn.send(b"\0" * MiB)
        conn.getresponse()
    conn.close()

    s3.start_rgw()
    assert "torn" not in bucket.keys()
    assert bucket.uploads() == [(key, up)]
    part2 = secrets.token_bytes(1000)
    e2 = c.upload_part(Bucket=b, Key=key, UploadId=up, PartNumber=2, Body=part2)["ETag"]
    c.complete_multipart_upload(Bucket=b, Key=key, UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert bucket.get(key) == part1 + part2


class _PortTakenS3Server(S3Server):
    """Someone else listens on the gateway's port by the time it starts."""

    def _write_conf(self):
        self.blocker = socket.socket()
        self.blocker.bind(("127.0.0.1", self.port))
        self.blocker.listen(1)
        super()._write_conf()


def test_failed_start_reports_logs_and_leaves_nothing():
    """A start that fails (radosgw cannot bind its port) raises with the
    daemons' log tails and leaves no process and no directory."""
    server = _PortTakenS3Server(start_timeout=60)
    try:
        with pytest.raises(S3StartError) as e:
            server.start()
    finally:
        server.blocker.close()
    msg = str(e.value)
    assert "radosgw exited" in msg, msg
    for name in ("radosgw", "ceph-osd", "ceph-mon"):
        assert f"--- {name} log " in msg, msg
    assert server.daemons, "not even the monitor was started"
    for d in server.daemons.values():
        assert d.proc is None and not pid_alive(d.pid), d.name
    assert not os.path.exists(server.base)
