"""The S3 store and source against a real Ceph RADOS Gateway (no mocks, no moto).

What is checked: Index writes through ``S3DataStore`` read back sample for sample; shards over
8 MiB go up as multipart uploads and small ones as one PUT; rollover; manifests make
``Dataset.sample`` one ranged GET; the first sample of a big shard costs one chunk; a failed or
aborted write leaves no object, no incomplete upload and no entry; bad credentials, a missing
bucket or key, a non-tar object and a stopped gateway give clear errors, and things work again
once the gateway is back.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from atdata_core.dataset import Dataset
from atdata_core.errors import (
    AtdataError,
    BackendUnavailableError,
    CorruptShardError,
    NotFoundError,
    SourceError,
    StoreError,
)
from atdata_core.index.index import Index
from atdata_core.samples import NDArray, packable
from atdata_core.shards import ShardWriter, manifest_url
from atdata_core.sources import DataSource, source_for_urls
from atdata_core.stores.base import DataStore
from atdata_core.stores.s3 import (
    PART_SIZE,
    READ_CHUNK,
    S3BucketNotFoundError,
    S3CredentialsError,
    S3DataStore,
    S3KeyNotFoundError,
    S3Source,
    S3UnavailableError,
    bucket_settings,
    configure_bucket,
    configure_from_repo,
    forget_bucket,
    make_client,
    parse_s3_url,
)

MiB = 1 << 20


@packable
class Reading:
    """A small sample: text, numbers and a little array."""

    name: str
    step: int
    score: float
    values: NDArray


@packable
class Frame:
    """A large sample: one array of ``size`` bytes."""

    index: int
    pixels: NDArray


def readings(n: int) -> Iterator[Reading]:
    for i in range(n):
        sample = Reading(
            name=f"r{i}", step=i, score=i / 4, values=np.arange(i % 7 + 1, dtype=np.int32) * i
        )
        sample.__key__ = f"reading-{i:06d}"
        yield sample


def frames(n: int, size: int = MiB, *, fail_after: int | None = None) -> Iterator[Frame]:
    """Arrays of ``size`` bytes whose content depends on the index (so mix-ups are caught)."""
    for i in range(n):
        if fail_after is not None and i == fail_after:
            raise RuntimeError(f"the sample generator broke after {i} samples")
        yield Frame(index=i, pixels=np.full(size // 8, i, dtype=np.int64))


@dataclass
class Sent:
    operation: str
    method: str
    url: str
    range: str | None
    signed: bool


@contextlib.contextmanager
def recorded(client: Any) -> Iterator[list[Sent]]:
    """Every HTTP request the client sends (retries included), via botocore's before-send."""
    sent: list[Sent] = []

    def hook(request: Any, event_name: str, **_: Any) -> None:
        headers = request.headers
        sent.append(
            Sent(
                event_name.rsplit(".", 1)[-1],
                request.method,
                request.url,
                headers.get("Range"),
                "Authorization" in headers,
            )
        )

    client.meta.events.register("before-send.s3", hook, unique_id="atdata-test-recorder")
    try:
        yield sent
    finally:
        client.meta.events.unregister("before-send.s3", unique_id="atdata-test-recorder")


def ops(sent: list[Sent]) -> list[str]:
    return [s.operation for s in sent]


def as_str(rng: Any) -> str:
    return rng.decode() if isinstance(rng, bytes) else str(rng)


@pytest.fixture
def store(s3_server: Any, s3_bucket: str) -> Iterator[S3DataStore]:
    store = S3DataStore(
        bucket=s3_bucket,
        endpoint=s3_server.endpoint_url,
        region=s3_server.region,
        credentials=s3_server.credentials,
        prefix="team",
    )
    yield store
    store.close()
    forget_bucket(s3_bucket)


@pytest.fixture
def index(tmp_path: Any, store: S3DataStore) -> Iterator[Index]:
    with Index(path=tmp_path / "index.db", data_store=store, atmosphere=None) as index:
        yield index


# --- the protocols -------------------------------------------------------------------------------


def test_store_and_source_implement_the_protocols(store: S3DataStore) -> None:
    assert isinstance(store, DataStore)
    assert store.kind == "s3"
    assert store.supports_streaming() is True
    assert store.read_url("s3://b/k.tar") == "s3://b/k.tar"
    source = S3Source(store.bucket, ["a/data-{000000..000002}.tar"])
    assert isinstance(source, DataSource)
    assert source.shards == [f"s3://{store.bucket}/a/data-00000{i}.tar" for i in range(3)]
    assert source.list_shards() == source.shards
    routed = source_for_urls([f"s3://{store.bucket}/x/data-{{000000..000001}}.tar"])
    assert isinstance(routed, S3Source)
    assert routed.shards == [f"s3://{store.bucket}/x/data-00000{i}.tar" for i in range(2)]


def test_importing_the_library_does_not_import_boto3() -> None:
    code = (
        "import sys, atdata_core, atdata_core.stores, atdata_core.sources\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'\n"
        "from atdata_core.stores import S3DataStore, S3Source\n"
        "assert 'boto3' not in sys.modules, 'boto3 imported by the lazy export'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# --- writing through the Index and reading back -------------------------------------------------


def test_index_write_then_get_dataset_reads_every_sample(
    index: Index, store: S3DataStore, s3_server: Any
) -> None:
    expected = list(readings(53))
    entry = index.write(iter(expected), name="weather", maxcount=20)

    assert len(entry.data_urls) == 3
    for url in entry.data_urls:
        bucket, key = parse_s3_url(url)
        assert bucket == store.bucket
        assert key.startswith("team/weather/") and key.endswith(".tar")
    assert store.list_urls() == sorted(entry.data_urls)
    assert s3_server.keys(store.bucket) == sorted(parse_s3_url(u)[1] for u in entry.data_urls)

    got = list(index.get_dataset("weather"))  # typed by the stored schema, not by Reading
    assert type(got[0]).__name__ == "Reading" and type(got[0]) is not Reading
    assert [s.to_data() for s in got] == [s.to_data() for s in expected]  # arrays byte for byte
    assert [s.__key__ for s in got] == [f"reading-{i:06d}" for i in range(53)]
    assert all(s.values.dtype == np.int32 for s in got)

    report = index.verify("weather")  # re-hashes every shard through S3Source
    assert report.ok and [s.status for s in report.shards] == ["ok"] * 3


def test_shards_over_part_size_are_multipart_and_small_ones_one_put(
    store: S3DataStore, s3_server: Any
) -> None:
    assert MiB * 8 == PART_SIZE
    writer = store.shard_writer("frames", maxsize=30 * MiB, maxcount=None)
    with recorded(store.client) as sent:
        writer.write_all(frames(40, 3 * MiB))  # 9 frames (27 MiB) per shard: 4 big, 1 small
        infos = writer.commit()
    assert [i.samples for i in infos] == [9, 9, 9, 9, 4]
    calls = ops(sent)
    assert calls.count("CreateMultipartUpload") == 5  # the last shard is 12 MiB: multipart too
    assert calls.count("CompleteMultipartUpload") == 5
    assert calls.count("UploadPart") == 4 * 4 + 2  # 27 MiB → 8+8+8+3; 12 MiB → 8+4
    assert calls.count("PutObject") == 0

    raw = s3_server.client()
    for info in infos:
        bucket, key = parse_s3_url(info.url)
        body = raw.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert len(body) == info.bytes
        assert hashlib.sha256(body).hexdigest() == info.sha256

    got = list(Dataset([i.url for i in infos], Frame))
    assert [f.index for f in got] == list(range(40))
    assert all(int(f.pixels[0]) == f.index and f.pixels.nbytes == 3 * MiB for f in got)

    small = store.shard_writer("small", maxcount=5)
    with recorded(store.client) as sent:
        small.write_all(readings(12))
        small_infos = small.commit()
    assert [i.samples for i in small_infos] == [5, 5, 2]
    assert ops(sent) == ["PutObject"] * 3  # no multipart for shards under 8 MiB


def test_rollover_by_count_and_by_size(store: S3DataStore) -> None:
    urls = store.write_shards(readings(35), prefix="by-count", maxcount=10)
    ds = Dataset(urls, Reading)
    assert len(urls) == 4
    per_shard = [sum(1 for _ in Dataset([u], Reading)) for u in urls]
    assert per_shard == [10, 10, 10, 5]
    assert [r.step for r in ds] == list(range(35))

    urls = store.write_shards(
        frames(10, MiB), prefix="by-size", maxcount=None, maxsize=3 * MiB + 8192
    )
    sizes = [
        make_client(store.settings).head_object(Bucket=store.bucket, Key=parse_s3_url(u)[1])[
            "ContentLength"
        ]
        for u in urls
    ]
    assert len(urls) == 4  # three 1 MiB frames fit in 3 MiB + 8 KiB, a fourth does not
    assert all(size <= 3 * MiB + 8192 for size in sizes)
    assert [f.index for f in Dataset(urls, Frame)] == list(range(10))


# --- manifests, ranged reads, time to first sample ------------------------------------------------


def test_manifest_makes_dataset_sample_one_ranged_get(store: S3DataStore, s3_server: Any) -> None:
    urls = store.write_shards(readings(40), prefix="manifested", maxcount=16, manifest=True)
    keys = s3_server.keys(store.bucket)
    for url in urls:
        assert parse_s3_url(manifest_url(url))[1] in keys
        assert manifest_url(url).endswith(".manifest.json")

    ds = Dataset(urls, Reading)
    every = list(ds)
    with recorded(store.client) as sent:
        first = ds.sample(1, 5)  # the manifest (once per shard), then one ranged GET
    assert first.step == every[16 + 5].step and first.__key__ == every[16 + 5].__key__
    assert [(s.operation, s.range is None) for s in sent] == [
        ("GetObject", True),
        ("GetObject", False),
    ]
    assert sent[0].url.endswith(".manifest.json")

    with recorded(store.client) as sent:
        again = ds.sample(1, 9)
    assert again.step == every[16 + 9].step
    assert len(sent) == 1 and sent[0].operation == "GetObject"
    assert sent[0].range is not None
    start, end = (int(x) for x in as_str(sent[0].range).removeprefix("bytes=").split("-"))
    assert end - start + 1 == 512 + len(again.packed)  # the header and this sample's bytes only


def first_sample_cost(store: S3DataStore, url: str, size: int) -> tuple[int, list[Sent]]:
    ds = Dataset([url], Frame)
    assert isinstance(ds.source, S3Source)
    with recorded(store.client) as sent:
        iterator = iter(ds)
        first = next(iterator)
        iterator.close()  # the reader stops: the body is closed, not drained
    assert first.index == 0 and first.pixels.nbytes == size
    return ds.source.bytes_read, sent


def test_first_sample_of_a_big_shard_reads_one_chunk(store: S3DataStore) -> None:
    sample = 256 << 10
    (big,) = store.write_shards(frames(192, sample), prefix="big", maxcount=None)
    (small,) = store.write_shards(frames(8, sample), prefix="small", maxcount=None)
    size = store.client.head_object(Bucket=store.bucket, Key=parse_s3_url(big)[1])["ContentLength"]
    assert size > 48 * MiB

    big_cost, sent = first_sample_cost(store, big, sample)
    assert ops(sent) == ["GetObject"] and sent[0].range is None  # one round trip
    # one chunk: the first sample and the next header (the parser looks one member ahead to
    # know the first sample has no more members) both lie in the first MiB
    assert sample < big_cost <= READ_CHUNK
    small_cost, _ = first_sample_cost(store, small, sample)
    assert big_cost == small_cost  # the cost does not depend on the shard's size

    # samples that straddle the first chunk: still a bounded prefix, never the shard
    (wide,) = store.write_shards(frames(64, 768 << 10), prefix="wide", maxcount=None)
    wide_cost, sent = first_sample_cost(store, wide, 768 << 10)
    assert len(sent) == 1 and wide_cost <= 2 * READ_CHUNK


def test_read_range_and_read_bytes_edges(store: S3DataStore) -> None:
    urls = store.write_shards(readings(3), prefix="edges", maxcount=10)
    source = S3Source(store.bucket, urls)
    head = source.read_range(urls[0], 0, 511)
    assert len(head) == 512 and head[257:262] == b"ustar"
    size = store.client.head_object(Bucket=store.bucket, Key=parse_s3_url(urls[0])[1])[
        "ContentLength"
    ]
    assert source.read_range(urls[0], size - 10, size + 100) == bytes(10)  # fewer at the end
    assert source.read_range(urls[0], size + 10, size + 20) == b""
    assert source.read_bytes(manifest_url(urls[0])) is None  # written without a manifest
    with pytest.raises(ValueError):
        source.read_range(urls[0], 10, 5)
    assert source.exists(urls[0]) and not source.exists(urls[0] + ".nope")


def test_write_shards_copies_a_dataset_byte_for_byte(store: S3DataStore, tmp_path: Any) -> None:
    local = ShardWriter(str(tmp_path / "data-%06d.tar"), maxcount=8)
    local.write_all(readings(20))
    local_infos = local.commit()
    urls = store.write_shards(Dataset([i.url for i in local_infos]), prefix="copy", maxcount=8)
    copied = [
        store.client.get_object(Bucket=store.bucket, Key=parse_s3_url(u)[1])["Body"].read()
        for u in urls
    ]
    assert [hashlib.sha256(b).hexdigest() for b in copied] == [i.sha256 for i in local_infos]


# --- all or nothing --------------------------------------------------------------------------------


def test_failure_in_the_middle_of_a_write_leaves_nothing(
    index: Index, store: S3DataStore, s3_server: Any
) -> None:
    # 1 MiB frames, shards of at most 12 MiB: two shards complete (multipart), a third is
    # being uploaded when the generator breaks.
    with recorded(store.client) as sent, pytest.raises(AtdataError) as caught:
        index.write(frames(40, MiB, fail_after=30), name="broken", maxsize=12 * MiB, maxcount=None)
    assert "the sample generator broke after 30 samples" in str(caught.value)
    calls = ops(sent)
    assert calls.count("CompleteMultipartUpload") == 2
    assert calls.count("AbortMultipartUpload") == 1
    assert calls.count("DeleteObject") == 2
    assert s3_server.keys(store.bucket) == []
    assert s3_server.open_uploads(store.bucket) == []
    assert store.list_incomplete_uploads() == []
    with pytest.raises(NotFoundError):
        index.resolve_entry("broken")
    assert index.provider.count_entries() == 0


def test_abort_after_some_shards_completed_deletes_them(store: S3DataStore, s3_server: Any) -> None:
    writer = store.shard_writer("aborted", maxcount=10, manifest=True)
    writer.write_all(frames(29, MiB))  # two 10 MiB shards complete; the third has sent a part
    assert len(writer.shards) == 2
    visible = s3_server.keys(store.bucket)
    assert visible == sorted(parse_s3_url(i.url)[1] for i in writer.shards)
    assert len(s3_server.open_uploads(store.bucket)) == 1
    writer.abort()
    assert s3_server.keys(store.bucket) == []
    assert s3_server.open_uploads(store.bucket) == []


def test_commit_failure_after_manifests_removes_everything(
    store: S3DataStore, s3_server: Any
) -> None:
    writer = store.shard_writer("committed", maxcount=4, manifest=True)
    writer.write_all(readings(10))
    infos = writer.commit()
    keys = s3_server.keys(store.bucket)
    assert len(keys) == 6  # three shards and three manifests
    assert all(i.manifest_url in {f"s3://{store.bucket}/{k}" for k in keys} for i in infos)
    store.delete_urls([i.url for i in infos])  # what Index does when registration fails
    assert s3_server.keys(store.bucket) == []


# --- listing, deleting, garbage ------------------------------------------------------------------


def test_list_urls_pages_and_delete_urls_stays_inside_the_store(
    store: S3DataStore, s3_server: Any
) -> None:
    urls = store.write_shards(readings(10), prefix="listed", maxcount=2, manifest=True)
    raw = s3_server.client()
    raw.put_object(Bucket=store.bucket, Key="elsewhere/data-000000.tar", Body=b"not ours")
    with recorded(store.client) as sent:
        listed = store.list_urls(page_size=2)
    assert listed == sorted(urls)  # manifests and keys outside the prefix are not listed
    assert ops(sent).count("ListObjectsV2") >= 5  # 10 objects, 2 per page
    assert store.list_urls("listed") == sorted(urls)
    assert store.list_urls("other") == []
    objects = store.list_objects()
    assert [o.url for o in objects] == sorted(urls)
    for o in objects:  # sizes and ages, so gc can spare the shards of a write still running
        body = raw.get_object(Bucket=store.bucket, Key=o.key)["Body"].read()
        assert o.size == len(body) > 1024
        assert -60 < o.age() < 600

    outside = f"s3://{store.bucket}/elsewhere/data-000000.tar"
    store.delete_urls([*urls[:2], outside, "s3://another-bucket/team/x.tar"])
    left = s3_server.keys(store.bucket)
    assert "elsewhere/data-000000.tar" in left
    assert store.list_urls() == sorted(urls[2:])
    assert not any(k.endswith(parse_s3_url(manifest_url(urls[0]))[1]) for k in left)


def test_incomplete_uploads_are_listed_and_aborted(store: S3DataStore, s3_server: Any) -> None:
    writer = store.shard_writer("crashed", maxcount=None)
    writer.write_all(frames(10, MiB))  # one part uploaded, never finished: a crashed process
    uploads = store.list_incomplete_uploads()
    assert len(uploads) == 1
    assert uploads[0].key.startswith("team/crashed/") and uploads[0].key.endswith(".tar")
    assert f"s3://{store.bucket}/{uploads[0].key}" in str(uploads[0])
    assert store.list_incomplete_uploads(older_than=3600) == []
    assert store.abort_incomplete_uploads(older_than=3600) == []  # too young: may be running
    assert store.abort_incomplete_uploads(older_than=None) == uploads
    assert s3_server.open_uploads(store.bucket) == []
    assert s3_server.keys(store.bucket) == []


# --- how URLs find their endpoint and credentials ---------------------------------------------------


def test_urls_read_through_configure_bucket(s3_server: Any, s3_bucket: str) -> None:
    writer_store = S3DataStore(
        bucket=s3_bucket,
        endpoint=s3_server.endpoint_url,
        credentials=s3_server.credentials,
        register=False,
    )
    urls = writer_store.write_shards(readings(6), prefix="configured", maxcount=4)
    assert bucket_settings(s3_bucket).endpoint is None  # register=False left no trace
    try:
        configure_bucket(
            s3_bucket, endpoint=s3_server.endpoint_url, credentials=s3_server.credentials
        )
        # a store made later (e.g. with other settings) does not override explicit configuration
        S3DataStore(
            bucket=s3_bucket, endpoint="http://127.0.0.1:9", credentials=s3_server.credentials
        )
        assert bucket_settings(s3_bucket).endpoint == s3_server.endpoint_url
        assert [r.step for r in Dataset(urls, Reading)] == list(range(6))
    finally:
        forget_bucket(s3_bucket)


def test_urls_read_through_the_aws_environment(
    s3_server: Any, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer_store = S3DataStore(
        bucket=s3_bucket,
        endpoint=s3_server.endpoint_url,
        credentials=s3_server.credentials,
        register=False,
    )
    urls = writer_store.write_shards(readings(5), prefix="env", maxcount=10)
    for name, value in s3_server.env().items():  # AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    forget_bucket(s3_bucket)
    assert [r.step for r in Dataset(urls, Reading)] == list(range(5))


def test_store_from_repository_config(s3_server: Any, s3_bucket: str) -> None:
    from atdata_core.config import RepoConfig

    repo = RepoConfig(
        name="lab",
        store="s3",
        bucket=s3_bucket,
        endpoint=s3_server.endpoint_url,
        region=s3_server.region,
        prefix="/lab/",
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )
    try:
        store = configure_from_repo(repo)
        assert store.prefix == "lab" and store.bucket == s3_bucket
        assert s3_server.secret_key not in repr(store)
        urls = store.write_shards(readings(3), prefix="x", maxcount=10)
        assert parse_s3_url(urls[0])[1].startswith("lab/x/")
        assert [r.step for r in Dataset(urls, Reading)] == [0, 1, 2]
        with pytest.raises(StoreError, match="names no bucket"):
            configure_from_repo(RepoConfig(name="nobucket", store="s3"))
    finally:
        forget_bucket(s3_bucket)


# --- clear errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("access_key", "secret_key", "code"),
    [
        ("NOSUCHKEYID", "whatever-secret-value", "InvalidAccessKeyId"),
        (None, "a-wrong-secret-value-123", "SignatureDoesNotMatch"),
    ],
)
def test_wrong_credentials_give_a_clear_error(
    s3_server: Any, s3_bucket: str, access_key: str | None, secret_key: str, code: str
) -> None:
    bad = {"access_key": access_key or s3_server.access_key, "secret_key": secret_key}
    store = S3DataStore(
        bucket=s3_bucket, endpoint=s3_server.endpoint_url, credentials=bad, register=False
    )
    with pytest.raises(S3CredentialsError) as caught:
        store.write_shards(readings(3), prefix="denied", maxcount=10)
    message = str(caught.value)
    assert code in message and s3_server.endpoint_url in message and s3_bucket in message
    assert "credentials" in message and secret_key not in message
    assert isinstance(caught.value, StoreError)

    good = S3DataStore(
        bucket=s3_bucket,
        endpoint=s3_server.endpoint_url,
        credentials=s3_server.credentials,
        register=False,
    )
    urls = good.write_shards(readings(3), prefix="ok", maxcount=10)
    reader = S3Source(s3_bucket, urls, endpoint=s3_server.endpoint_url, credentials=bad)
    with pytest.raises(S3CredentialsError) as caught, reader.open_shard(urls[0]):
        pass
    assert isinstance(caught.value, SourceError) and parse_s3_url(urls[0])[1] in str(caught.value)
    assert secret_key not in str(caught.value)


def test_missing_bucket_gives_a_clear_error(s3_server: Any) -> None:
    store = S3DataStore(
        bucket="no-such-bucket-atdata",
        endpoint=s3_server.endpoint_url,
        credentials=s3_server.credentials,
        register=False,
    )
    with pytest.raises(S3BucketNotFoundError) as caught:
        store.write_shards(readings(2), prefix="x", maxcount=10)
    message = str(caught.value)
    assert "'no-such-bucket-atdata' does not exist" in message
    assert s3_server.endpoint_url in message and "create it" in message
    with pytest.raises(S3BucketNotFoundError):
        store.list_urls()
    source = S3Source(
        "no-such-bucket-atdata",
        ["a.tar"],
        endpoint=s3_server.endpoint_url,
        credentials=s3_server.credentials,
    )
    with pytest.raises(S3BucketNotFoundError), source.open_shard("a.tar"):
        pass


def test_missing_key_gives_a_clear_error(store: S3DataStore) -> None:
    url = f"s3://{store.bucket}/team/gone/data-000000.tar"
    with pytest.raises(S3KeyNotFoundError) as caught:
        list(Dataset([url]))
    message = str(caught.value)
    assert url in message and store.endpoint_url in message and "does not exist" in message
    assert isinstance(caught.value, SourceError) and caught.value.shard == url


def test_an_object_that_is_not_a_tar_gives_a_clear_error(store: S3DataStore) -> None:
    key = "team/notes/data-000000.tar"
    store.client.put_object(
        Bucket=store.bucket,
        Key=key,
        Body=b"hello, I am a text file\n" * 100,
        ContentType="text/plain",
    )
    with pytest.raises(CorruptShardError) as caught:
        list(Dataset([f"s3://{store.bucket}/{key}"]))
    message = str(caught.value)
    assert "not a WebDataset tar shard" in message
    assert key in message and store.endpoint_url in message and "text/plain" in message


def test_credentials_are_validated_and_never_shown(s3_server: Any) -> None:
    with pytest.raises(StoreError, match="need both access_key and secret_key"):
        S3DataStore(bucket="b", credentials={"access_key": "only-the-id"})
    with pytest.raises(StoreError, match="must be a dict"):
        S3DataStore(bucket="b", credentials="AKIA:secret")
    with pytest.raises(StoreError, match="may not contain"):
        S3DataStore(bucket="b", prefix="../escape")
    store = S3DataStore(
        bucket="b",
        endpoint=s3_server.endpoint_url,
        credentials=s3_server.credentials,
        register=False,
    )
    assert s3_server.secret_key not in repr(store) and s3_server.secret_key not in repr(
        store.settings
    )


# --- the gateway goes away, and comes back --------------------------------------------------------


def fragile_store(s3_server: Any, bucket: str) -> S3DataStore:
    """Short timeouts, two attempts: a dead gateway must be reported in seconds."""
    return S3DataStore(
        bucket=bucket,
        endpoint=s3_server.endpoint_url,
        credentials=s3_server.credentials,
        connect_timeout=2,
        read_timeout=5,
        max_attempts=2,
    )


def test_gateway_stopped_during_a_write_then_back(
    s3_server: Any, s3_bucket: str, tmp_path: Any
) -> None:
    store = fragile_store(s3_server, s3_bucket)
    stopped_at: list[float] = []

    def stop_midway() -> Iterator[Frame]:
        for frame in frames(30, MiB):
            # one 9-frame shard is complete; the next has started its multipart upload
            if frame.index == 17:
                s3_server.stop_rgw()
                stopped_at.append(time.monotonic())
            yield frame

    index = Index(path=tmp_path / "index.db", data_store=store, atmosphere=None)
    try:
        with pytest.raises(BackendUnavailableError) as caught:
            index.write(stop_midway(), name="interrupted", maxsize=10 * MiB, maxcount=None)
        elapsed = time.monotonic() - stopped_at[0]
        assert elapsed < 30, f"the error took {elapsed:.1f}s"
        error = caught.value
        assert isinstance(error, S3UnavailableError) and isinstance(error, StoreError)
        assert s3_server.endpoint_url in str(error) and s3_bucket in str(error)
        assert "server is running" in str(error)
        with pytest.raises(NotFoundError):
            index.resolve_entry("interrupted")
    finally:
        s3_server.start_rgw()
    try:
        # the abort could not reach the gateway: what it left is found and cleaned up now
        left = store.list_incomplete_uploads()
        assert [u.key for u in left] == [u for u in s3_server.open_uploads(s3_bucket)]
        assert len(left) == 1
        assert store.abort_incomplete_uploads(older_than=None) == left
        orphans = store.list_urls()
        assert len(orphans) == 1  # the shard that was complete before the gateway went away
        store.delete_urls(orphans)
        assert s3_server.open_uploads(s3_bucket) == []
        entry = index.write(frames(30, MiB), name="interrupted", maxsize=10 * MiB, maxcount=None)
        assert [f.index for f in index.get_dataset("interrupted")] == list(range(30))
        assert store.list_urls() == sorted(entry.data_urls)
    finally:
        index.close()
        store.close()
        forget_bucket(s3_bucket)


def test_gateway_stopped_during_a_read_then_back(s3_server: Any, s3_bucket: str) -> None:
    store = fragile_store(s3_server, s3_bucket)
    try:
        # 40 MiB: more than the socket buffers hold, so stopping the gateway cuts the stream
        urls = store.write_shards(frames(160, 256 << 10), prefix="streamed", maxcount=None)
        ds = Dataset(urls, Frame)
        iterator = iter(ds)
        assert next(iterator).index == 0
        s3_server.stop_rgw()
        try:
            started = time.monotonic()
            with pytest.raises(S3UnavailableError) as caught:
                for _ in iterator:
                    pass
            assert time.monotonic() - started < 30
            message = str(caught.value)
            assert s3_server.endpoint_url in message and parse_s3_url(urls[0])[1] in message
            assert isinstance(caught.value, SourceError)
            with pytest.raises(S3UnavailableError):
                S3Source(s3_bucket, urls).read_range(urls[0], 0, 511)
        finally:
            s3_server.start_rgw()
        assert [f.index for f in Dataset(urls, Frame)] == list(range(160))
    finally:
        store.close()
        forget_bucket(s3_bucket)


def test_keyword_credentials_and_anonymous_reads_of_public_objects(
    s3_server: Any, s3_bucket: str
) -> None:
    # the keyword form the TUI's repository builder uses
    store = S3DataStore(
        bucket=s3_bucket,
        endpoint=s3_server.endpoint_url,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        register=False,
    )
    with pytest.raises(StoreError, match="either as credentials= or as access_key="):
        S3DataStore(
            bucket=s3_bucket, credentials=s3_server.credentials, access_key="x", secret_key="y"
        )
    public, private = store.write_shards(readings(4), prefix="shared", maxcount=2)
    store.client.put_object_acl(Bucket=s3_bucket, Key=parse_s3_url(public)[1], ACL="public-read")

    anonymous = S3Source(
        s3_bucket, [public, private], endpoint=s3_server.endpoint_url, anonymous=True
    )
    with recorded(anonymous.client()) as sent, anonymous.open_shard(public) as stream:
        assert stream.read(512)[257:262] == b"ustar"
    assert [(s.operation, s.signed) for s in sent] == [("GetObject", False)]
    assert [r.step for r in itertools.islice(Dataset(anonymous, Reading), 2)] == [0, 1]
    with pytest.raises(S3CredentialsError, match="AccessDenied"), anonymous.open_shard(private):
        pass
    # no manifest, and no right to list the bucket: S3 says 403, the sidecar is simply absent
    assert anonymous.read_bytes(manifest_url(public)) is None
    assert anonymous.read_range(public, 0, 3) == b"read"  # "reading-000000.msgpack"
