"""The real servers the suite relies on really work (and their fault hooks behave)."""

from __future__ import annotations

import hashlib
import io
import os
import time

import pytest

# -- Redis ------------------------------------------------------------------------------------


def test_redis_ping_set_get(redis_url):
    import redis

    with redis.Redis.from_url(redis_url) as r:
        assert r.ping()
        r.set("atdata:test", b"\x00value")
        assert r.get("atdata:test") == b"\x00value"
        assert r.dbsize() == 1


def test_redis_url_is_isolated_per_test(redis_url, redis_server):
    import redis

    assert redis_url != redis_server.url
    with redis.Redis.from_url(redis_url) as r:
        assert r.dbsize() == 0


def test_redis_restart_same_port(redis_server):
    import redis

    port = redis_server.port
    redis_server.stop()
    with pytest.raises(redis.ConnectionError), redis.Redis.from_url(redis_server.url) as r:
        r.ping()
    redis_server.restart()
    assert redis_server.port == port
    with redis.Redis.from_url(redis_server.url) as r:
        assert r.ping()


# -- PostgreSQL -------------------------------------------------------------------------------


def test_postgres_select_1(postgres_dsn):
    import psycopg

    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        conn.execute("create table t (k text primary key, v bytea)")
        conn.execute("insert into t values (%s, %s)", ("a", b"\x00\x01"))
        assert conn.execute("select v from t").fetchone() == (b"\x00\x01",)


def test_postgres_dsn_is_a_fresh_database(postgres_dsn, postgres_server):
    import psycopg

    assert postgres_dsn != postgres_server.dsn
    with psycopg.connect(postgres_dsn) as conn:
        n = conn.execute(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        ).fetchone()
        assert n == (0,)


def test_postgres_restart_keeps_data(postgres_server):
    import psycopg

    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute("create table if not exists restart_probe (v int)")
        conn.execute("insert into restart_probe values (42)")
    postgres_server.restart()
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        assert (42,) in conn.execute("select v from restart_probe").fetchall()
        conn.execute("drop table restart_probe")


# -- S3 (Ceph RADOS Gateway) ------------------------------------------------------------------


def test_s3_put_get_list(s3_server, s3_bucket):
    c = s3_server.client()
    c.put_object(Bucket=s3_bucket, Key="shards/a-000000.tar", Body=b"hello", ContentType="x/y")
    c.put_object(Bucket=s3_bucket, Key="other/b.tar", Body=b"world")
    assert c.get_object(Bucket=s3_bucket, Key="shards/a-000000.tar")["Body"].read() == b"hello"
    listed = c.list_objects_v2(Bucket=s3_bucket, Prefix="shards/")
    assert [o["Key"] for o in listed["Contents"]] == ["shards/a-000000.tar"]


def test_s3_multipart_20mb_and_ranged_get(s3_server, s3_bucket):
    from boto3.s3.transfer import TransferConfig

    c = s3_server.client()
    data = os.urandom(20 * 1024 * 1024)
    cfg = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024)
    c.upload_fileobj(io.BytesIO(data), s3_bucket, "big.bin", Config=cfg)
    head = c.head_object(Bucket=s3_bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # really multipart: 3 parts
    got = c.get_object(Bucket=s3_bucket, Key="big.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    part = c.get_object(Bucket=s3_bucket, Key="big.bin", Range="bytes=1000-1999")
    assert part["ContentRange"] == f"bytes 1000-1999/{len(data)}"
    assert part["Body"].read() == data[1000:2000]


def test_s3_buckets_are_fresh(s3_server, s3_bucket):
    assert s3_server.client().list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0
    assert s3_server.new_bucket("x") != s3_server.new_bucket("x")


def test_s3_gateway_stop_and_start(s3_server, s3_bucket):
    from botocore.exceptions import EndpointConnectionError

    c = s3_server.client(retries={"max_attempts": 1}, connect_timeout=2)
    c.put_object(Bucket=s3_bucket, Key="survives", Body=b"1")
    s3_server.stop_rgw()
    with pytest.raises(EndpointConnectionError):
        c.get_object(Bucket=s3_bucket, Key="survives")
    t0 = time.monotonic()
    s3_server.start_rgw()
    assert time.monotonic() - t0 < 30
    assert c.get_object(Bucket=s3_bucket, Key="survives")["Body"].read() == b"1"


# -- ATProto PDS ------------------------------------------------------------------------------


def test_pds_account_record_and_blob(pds_server):
    from atproto import models

    did, handle = pds_server.create_account("alice", "alice-password")
    assert did.startswith("did:plc:")
    assert handle == "alice.test"

    client = pds_server.login(handle, "alice-password")
    assert client.com.atproto.server.get_session().did == did

    # a custom record in the science.alt.dataset namespace (no lexicon on the PDS: no validate)
    label = client.com.atproto.repo.create_record(
        models.ComAtprotoRepoCreateRecord.Data(
            repo=did,
            collection="science.alt.dataset.label",
            record={
                "$type": "science.alt.dataset.label",
                "name": "mnist-test",
                "createdAt": client.get_current_time_iso(),
            },
        )
    )
    assert label.uri.startswith(f"at://{did}/science.alt.dataset.label/")
    got = client.com.atproto.repo.get_record(
        {"repo": did, "collection": "science.alt.dataset.label", "rkey": label.uri.split("/")[-1]}
    )
    assert got.value["name"] == "mnist-test"

    # a blob larger than the stock 5 MB limit, referenced from a record, read back via sync
    payload = os.urandom(6 * 1024 * 1024)
    blob = client.upload_blob(payload).blob
    client.com.atproto.repo.create_record(
        models.ComAtprotoRepoCreateRecord.Data(
            repo=did,
            collection="science.alt.dataset.shard",
            record={
                "$type": "science.alt.dataset.shard",
                "blob": blob,
                "createdAt": client.get_current_time_iso(),
            },
        )
    )
    data = client.com.atproto.sync.get_blob({"did": did, "cid": str(blob.cid)})
    assert hashlib.sha256(data).digest() == hashlib.sha256(payload).digest()


def test_pds_identity_resolves_offline(pds_server, pds_account):
    from atproto import IdResolver

    resolved = IdResolver(plc_url=pds_server.plc_url).did.resolve(pds_account.did)
    assert resolved.get_pds_endpoint() == pds_server.url
    client = pds_server.login(pds_account.handle, pds_account.password)
    did = client.com.atproto.identity.resolve_handle({"handle": pds_account.handle}).did
    assert did == pds_account.did


def test_pds_restart_keeps_accounts(pds_server, pds_account):
    port = pds_server.pds_port
    pds_server.restart()
    assert pds_server.pds_port == port
    client = pds_server.login(pds_account.handle, pds_account.password)
    assert client.com.atproto.server.get_session().did == pds_account.did


# -- atdata-app (the dataset AppView) ---------------------------------------------------------


def test_appview_indexes_a_pds_account_through_its_own_backfill(appview, pds_server):
    """A record written to the local PDS is served by atdata-app after ``ingest(did)``."""
    import json
    import urllib.request
    import uuid

    did, handle = pds_server.create_account(pds_server.unique_handle("av"), "pw-appview")
    client = pds_server.login(handle, "pw-appview")
    name = f"label-{uuid.uuid4().hex[:8]}"
    target = f"at://{did}/science.alt.dataset.entry/3kabcdefghij2"
    client.com.atproto.repo.create_record(
        {
            "repo": did,
            "collection": "science.alt.dataset.label",
            "record": {
                "$type": "science.alt.dataset.label",
                "name": name,
                "datasetUri": target,
                "createdAt": "2024-01-01T00:00:00.000Z",
            },
        }
    )
    counts = appview.ingest(did)
    assert counts["science.alt.dataset.label"] == 1
    url = f"{appview.url}/xrpc/science.alt.dataset.resolveLabel?handle={did}&name={name}"
    with urllib.request.urlopen(url, timeout=10) as r:
        assert json.loads(r.read())["uri"] == target


def test_appview_stop_and_start_keeps_its_index(appview):
    import urllib.error
    import urllib.request

    appview.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{appview.url}/health", timeout=2)
    appview.start()
    with urllib.request.urlopen(f"{appview.url}/health", timeout=5) as r:
        assert r.status == 200
