"""Retention on the real S3 server: the same plan as on local storage, and
deletions done as batches; interrupted multipart uploads older than the
grace period aborted, younger ones left to the job that may still own them."""

import json
import time

from pgserver import PG_BINDIR
from sauvecli import Sauve, wait_for


def s3_sauve(pg, workdir, bucket, **extra):
    return Sauve(workdir, {**pg.tcp_env(), **bucket.env, "SAUVE_PG_BINDIR": PG_BINDIR, **extra})


def manifests(bucket):
    return [k for k in bucket.keys(bucket.prefix + "/") if k.endswith("/manifest.json")]


def test_prune_on_s3_keeps_what_the_policy_keeps_and_deletes_the_rest(pg, dbs, workdir, bucket):
    db = dbs.empty("s3prune")
    sauve = s3_sauve(pg, workdir, bucket, SAUVE_PG_DATABASES=db, SAUVE_PRUNE="false")
    for _ in range(3):
        r = sauve.run("backup")
        assert r.code == 0, r.describe()
    sets = sorted(k.split("/")[2] for k in manifests(bucket))
    assert len(sets) == 3

    plan = sauve.run("prune", "--dry-run", "--json", env={"SAUVE_KEEP_LAST": "1"}, json_stdout=True)
    assert plan.code == 0, plan.describe()
    assert len(manifests(bucket)) == 3, "a dry run deletes nothing"

    r = sauve.run("prune", env={"SAUVE_KEEP_LAST": "1"}, json_stdout=True)
    r.check_log_contract(json_stdout=True)
    assert r.code == 0, r.describe()
    left = bucket.keys(bucket.prefix + "/")
    assert {k.split("/")[2] for k in left} == {sets[-1]}, left
    listing = sauve.run("list", "--json", json_stdout=True)
    assert [s["id"] for s in json.loads(listing.stdout)["sets"]] == [sets[-1]]


def start_interrupted_upload(bucket, set_id):
    key = f"{bucket.prefix}/default/{set_id}/postgres/crashed.dump.zst"
    upload = bucket.client.create_multipart_upload(Bucket=bucket.name, Key=key)
    return key, upload["UploadId"]


def test_interrupted_upload_older_than_the_grace_period_is_aborted(pg, dbs, workdir, bucket):
    db = dbs.empty("s3grace")
    sauve = s3_sauve(pg, workdir, bucket, SAUVE_PG_DATABASES=db, SAUVE_PRUNE="false")
    r = sauve.run("backup")
    assert r.code == 0, r.describe()
    key, upload_id = start_interrupted_upload(bucket, "20200101T000000Z")
    started = time.time()

    # a grace period of an hour: the upload may belong to a running job
    r = sauve.run("prune", env={"SAUVE_PRUNE_GRACE": "1h"}, json_stdout=True)
    assert r.code == 0, r.describe()
    assert (key, upload_id) in bucket.uploads()

    # the upload outlives a one-second grace period: now it is abandoned
    wait_for(lambda: time.time() - started > 2.5, 10, "the upload to age past the grace period")
    r = sauve.run("prune", env={"SAUVE_PRUNE_GRACE": "1s"}, json_stdout=True)
    r.check_log_contract(json_stdout=True)
    assert r.code == 0, r.describe()
    assert (key, upload_id) not in bucket.uploads(), r.describe()
    assert len(manifests(bucket)) == 1, "the complete set is kept"
