"""The index contract: every provider (SQLite, Redis, PostgreSQL) behaves the same through ``Index``.

One suite, parametrized over the providers, against real servers (the ``redis_url`` and
``postgres_dsn`` fixtures give each test an empty database). Backend-specific facts (atdata's
Redis keys and PostgreSQL tables, index builds, password redaction) are at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from atdata_core.dataset import Dataset
from atdata_core.errors import (
    AlreadyExistsError,
    BackendUnavailableError,
    NotFoundError,
    WriteError,
)
from atdata_core.index import Index, IndexEntry
from atdata_core.index.index import PAGE_SIZE
from atdata_core.index.providers.base import IndexProvider
from atdata_core.index.providers.sqlite import SqliteProvider
from atdata_core.samples import DictSample, NDArray, packable
from atdata_core.shards import write_shards
from atdata_core.stores.disk import LocalDiskStore

try:  # tests/ as a package, or tests/ on sys.path (as tests/conftest.py imports them)
    from tests.services import PostgresServer, RedisServer, free_port
except ImportError:
    from services import PostgresServer, RedisServer, free_port  # type: ignore[no-redef]

BACKENDS = [
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


@packable
class Point:
    """A labelled point."""

    xy: NDArray
    label: str


def points(n: int, start: int = 0) -> list[Point]:
    return [Point(xy=np.array([i, -i], dtype=np.float32), label=f"p{i}") for i in range(start, n)]


def fake_entry(name: str, i: int, created_at: str | None = None) -> IndexEntry:
    entry = IndexEntry.create(name, "atdata://local/schema/Point@1.0.0", [f"/d/{name}-{i}.tar"])
    if created_at is not None:
        entry.created_at = created_at
    return entry


@dataclass
class Backend:
    """One backend under test: how to open another provider on the same data, and where shards go."""

    name: str
    open_provider: Callable[[], IndexProvider]
    store_root: Path

    def index(self) -> Index:
        return Index(
            provider=self.open_provider(),
            data_store=LocalDiskStore(self.store_root),
            atmosphere=None,
        )


@pytest.fixture(params=BACKENDS)
def provider_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A ``Backend`` whose ``index()`` opens a fresh ``Index`` over one empty database."""
    opened: list[IndexProvider] = []
    if request.param == "sqlite":
        db = tmp_path / "index.db"

        def make() -> IndexProvider:
            return SqliteProvider(db)

    elif request.param == "redis":
        from atdata_core.index.providers.redis import RedisProvider

        url = request.getfixturevalue("redis_url")

        def make() -> IndexProvider:
            return RedisProvider(url)

    else:
        from atdata_core.index.providers.postgres import PostgresProvider

        dsn = request.getfixturevalue("postgres_dsn")

        def make() -> IndexProvider:
            return PostgresProvider(dsn)

    def tracked() -> IndexProvider:
        provider = make()
        opened.append(provider)
        return provider

    yield Backend(request.param, tracked, tmp_path / "shards")
    for provider in opened:
        provider.close()


@pytest.fixture
def backend(provider_factory: Backend) -> Backend:
    return provider_factory


@pytest.fixture
def index(provider_factory: Backend) -> Index:
    return provider_factory.index()


def shard_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- writing and reading -------------------------------------------------------------------------


def test_write_typed_samples_and_read_every_one_back(backend: Backend, index: Index) -> None:
    entry = index.write(points(23), name="pts", maxcount=10, description="some points")
    assert (entry.samples, entry.shards) == (23, 3)
    assert all(u.startswith(str(backend.store_root)) for u in entry.data_urls)
    assert entry.description == "some points"

    again = backend.index()  # a second provider on the same data sees it
    samples = list(again.get_dataset("pts"))
    assert [s.label for s in samples] == [f"p{i}" for i in range(23)]
    np.testing.assert_array_equal(samples[17].xy, np.array([17, -17], dtype=np.float32))
    assert type(samples[0]).__name__ == "Point"
    stored = again.get_entry(entry.cid)
    assert stored.metadata == entry.metadata and stored.data_urls == entry.data_urls


def test_write_dict_samples(index: Index) -> None:
    rows = [
        DictSample(text=f"t{i}", n=i, score=i / 2, raw=bytes([i]), vec=np.arange(3) * i)
        for i in range(7)
    ]
    entry = index.write(rows, name="dicts")
    assert entry.samples == 7
    back = list(index.get_dataset("dicts"))
    assert [s.text for s in back] == [f"t{i}" for i in range(7)]
    assert [s.n for s in back] == list(range(7)) and back[3].score == 1.5
    assert back[5].raw == b"\x05"
    np.testing.assert_array_equal(back[6].vec, np.arange(3) * 6)
    assert index.get_schema(entry.schema_ref)["name"] == "DictsSample"


def test_entry_lookups_by_cid_name_and_ref(index: Index) -> None:
    entry = index.write(points(3), name="pts")
    other = index.write(points(2), name="other")
    assert index.get_entry(entry.cid).name == "pts"
    assert index.get_entry_by_name("pts").cid == entry.cid
    assert index.resolve_entry(entry.cid).cid == entry.cid
    assert index.resolve_entry(other.cid).name == "other"
    assert index.provider.get_entry("bafyreinotthere") is None
    with pytest.raises(NotFoundError, match="nope"):
        index.get_entry_by_name("nope")
    with pytest.raises(NotFoundError):
        index.get_entry("bafyreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")


def test_rewriting_a_name_needs_overwrite_then_the_new_entry_wins(
    backend: Backend, index: Index
) -> None:
    first = index.write(points(2), name="pts")
    with pytest.raises(AlreadyExistsError, match="overwrite=True"):
        index.write(points(3), name="pts")
    assert index.count_entries() == 1
    second = index.write(points(3), name="pts", overwrite=True)
    assert second.cid != first.cid
    for _ in range(3):  # deterministic, from any process
        assert index.get_entry_by_name("pts").cid == second.cid
        assert backend.index().get_entry_by_name("pts").cid == second.cid
    assert [s.label for s in index.get_dataset("pts")] == ["p0", "p1", "p2"]
    assert index.provider.list_labels() == [("pts", "", second.cid)]
    assert index.provider.list_labels(first.cid) == []
    assert index.count_entries() == 2  # the old entry stays, reachable by CID


def test_a_refused_label_writes_nothing(index: Index) -> None:
    provider = index.provider
    a, b = fake_entry("x", 1), fake_entry("x", 2)
    provider.put_entry(a, label="x")
    with pytest.raises(AlreadyExistsError):
        provider.put_entry(b, label="x")
    assert provider.get_entry(b.cid) is None
    assert provider.get_label("x") == a.cid
    provider.put_entry(a, label="x")  # the same entry again is not a conflict
    provider.put_entry(b, label="x", replace=True)
    assert provider.get_label("x") == b.cid
    assert provider.list_labels(a.cid) == [] and provider.list_labels(b.cid) == [("x", "", b.cid)]


def test_name_without_label_resolves_to_the_newest_entry(index: Index) -> None:
    provider = index.provider
    old = fake_entry("n", 1, "2020-01-01 00:00:00")
    new = fake_entry("n", 2, "2024-06-01 12:00:00")
    tie_a, tie_b = sorted(
        [fake_entry("t", 1, "2024-01-01 00:00:00"), fake_entry("t", 2, "2024-01-01 00:00:00")],
        key=lambda e: e.cid,
    )
    provider.bulk_insert([new, old, tie_b, tie_a])
    assert provider.get_entry_by_name("n").cid == new.cid
    assert provider.get_entry_by_name("n").created_at == "2024-06-01 12:00:00"
    assert provider.get_entry_by_name("t").cid == tie_a.cid  # ties: smallest CID
    provider.set_label("n", old.cid)  # a label beats recency
    assert provider.get_entry_by_name("n").cid == old.cid


def test_versioned_labels(index: Index) -> None:
    v1 = index.write(points(1), name="pts")
    v2 = index.write(points(2), name="pts2")
    index.provider.set_label("pts", v1.cid, version="v1", description="first")
    index.provider.set_label("pts", v2.cid, version="v2")
    assert index.resolve_entry("pts@v1").cid == v1.cid
    assert index.resolve_entry("pts@v2").cid == v2.cid
    assert index.provider.get_label("pts", "v3") is None
    labels = index.provider.list_labels()
    assert labels == [
        ("pts", "", v1.cid),
        ("pts", "v1", v1.cid),
        ("pts", "v2", v2.cid),
        ("pts2", "", v2.cid),
    ]


# --- listing -------------------------------------------------------------------------------------


def test_page_entries_orders_pages_filters_and_counts(index: Index) -> None:
    names = ["b_x", "Alpha", "alpha", "bxx", "c-1", "C-2", "delta", "a.b", "zeta"]
    entries = [fake_entry(n, i) for n in names for i in range(2)]
    index.provider.bulk_insert(entries)
    want = sorted(((e.name, e.cid) for e in entries), key=lambda t: (t[0].encode(), t[1]))

    page = index.page_entries(offset=0, limit=5)
    assert page.total == 18 and page.offset == 0
    assert [(e.name, e.cid) for e in page.items] == want[:5]
    page = index.page_entries(offset=15, limit=5)
    assert [(e.name, e.cid) for e in page.items] == want[15:]
    assert index.page_entries(offset=40, limit=5).items == []

    page = index.page_entries(name_filter="ALPHA", limit=3)
    assert page.total == 4 and [e.name for e in page.items] == ["Alpha", "Alpha", "alpha"]
    page = index.page_entries(name_filter="alpha", offset=3, limit=3)
    assert [e.name for e in page.items] == ["alpha"]
    assert index.page_entries(name_filter="_").total == 2  # "_" is literal, not a wildcard
    assert index.page_entries(name_filter="%").total == 0  # so is "%"
    assert index.page_entries(name_filter="c-").total == 4
    assert index.count_entries(name_filter="nothing") == 0
    assert index.page_entries(name_filter="a.b").items[0].name == "a.b"


def test_filtered_totals_follow_writes_from_anyone(backend: Backend, index: Index) -> None:
    """Totals are never stale, whoever wrote in between (Redis reuses counts between writes)."""
    index.provider.bulk_insert([fake_entry("alpha", i) for i in range(3)])
    assert index.page_entries(name_filter="alp").total == 3
    other = backend.index()
    other.provider.put_entry(fake_entry("xalpx", 1), label="xalpx")
    assert index.page_entries(name_filter="alp").total == 4
    assert index.count_entries(name_filter="ALP") == 4
    other.provider.delete_entry(fake_entry("alpha", 0).cid)
    assert index.count_entries(name_filter="alp") == 3
    assert [e.name for e in index.page_entries(name_filter="alp").items] == [
        "alpha",
        "alpha",
        "xalpx",
    ]


def test_iter_entries_pages_through_more_than_a_page(backend: Backend, index: Index) -> None:
    n = PAGE_SIZE * 2 + 37
    index.provider.bulk_insert([fake_entry(f"ds{i:05d}", i) for i in range(n)])
    seen = [e.name for e in index.iter_entries()]
    assert seen == [f"ds{i:05d}" for i in range(n)]
    assert len(index.list_datasets()) == n
    assert index.count_entries() == n
    assert index.stats()["local"]["entries"] == n
    assert index.stats()["local"]["backend"] == backend.name
    filtered = list(index.iter_entries(name_filter="ds001"))
    assert [e.name for e in filtered] == [f"ds{i:05d}" for i in range(100, 200)]


# --- registering existing shards -----------------------------------------------------------------


def test_add_entry_registers_existing_shards_without_copying(
    backend: Backend, index: Index, tmp_path: Path
) -> None:
    infos = write_shards(points(12), str(tmp_path / "ext" / "pts-%06d.tar"), maxcount=5)
    urls = [i.url for i in infos]
    ref = index.publish_schema(Point)
    entry = index.add_entry(urls, name="external", schema_ref=ref, metadata={"owner": "me"})
    assert entry.data_urls == urls and entry.metadata == {"owner": "me"}
    assert [s.label for s in index.get_dataset("external")] == [f"p{i}" for i in range(12)]
    typed = index.add_entry(Dataset[Point](urls[:1]), name="typed")
    assert typed.schema_ref == ref
    assert shard_files(backend.store_root) == []  # nothing was copied


def test_insert_dataset_copies_shards_into_the_store_byte_for_byte(
    backend: Backend, index: Index, tmp_path: Path
) -> None:
    infos = write_shards(points(9), str(tmp_path / "src" / "s-%06d.tar"), maxcount=4)
    source = Dataset[Point]([i.url for i in infos])
    entry = index.insert_dataset(source, name="copied")
    assert all(u.startswith(str(backend.store_root)) for u in entry.data_urls)
    assert entry.samples == 9
    copied = list(index.get_dataset("copied"))
    original = list(source)
    assert [s.label for s in copied] == [s.label for s in original]
    assert [s.__key__ for s in copied] == [s.__key__ for s in original]  # keys survive
    assert index.verify("copied").ok


# --- schemas -------------------------------------------------------------------------------------


def _point_v2() -> type:
    @packable
    class Point:
        """A labelled point with a weight."""

        xy: NDArray
        label: str
        weight: float

    return Point


def test_publish_schema_versions_dedup_and_conflicts(backend: Backend, index: Index) -> None:
    ref1 = index.publish_schema(Point)
    assert ref1 == "atdata://local/schema/Point@1.0.0"
    assert index.publish_schema(Point) == ref1  # identical content: same ref
    ref2 = index.publish_schema(_point_v2())
    assert ref2 == "atdata://local/schema/Point@1.0.1"
    assert index.publish_schema(_point_v2()) == ref2
    assert index.publish_schema(Point, version="2.0.0") == "atdata://local/schema/Point@2.0.0"
    assert index.publish_schema(Point, version="2.0.0") == "atdata://local/schema/Point@2.0.0"
    with pytest.raises(AlreadyExistsError, match=r"Point@2\.0\.0"):
        index.publish_schema(_point_v2(), version="2.0.0")
    assert index.schema_versions("Point") == ["2.0.0", "1.0.1", "1.0.0"]
    assert backend.index().schema_versions("Point") == ["2.0.0", "1.0.1", "1.0.0"]


def test_get_schema_in_new_and_legacy_ref_forms(index: Index) -> None:
    index.publish_schema(Point)
    index.publish_schema(_point_v2())
    for ref in (
        "atdata://local/schema/Point@1.0.0",
        "local://schemas/mymodule.Point@1.0.0",
        "Point@1.0.0",
    ):
        record = index.get_schema(ref)
        assert (record["name"], record["version"]) == ("Point", "1.0.0"), ref
        assert [f["name"] for f in record["fields"]] == ["xy", "label"]
    assert index.get_schema("Point")["version"] == "1.0.1"  # no version: the latest
    assert index.get_schema("atdata://local/schema/Point")["version"] == "1.0.1"
    with pytest.raises(NotFoundError, match="Nope"):
        index.get_schema("Nope@1.0.0")
    with pytest.raises(NotFoundError, match=r"9\.9\.9"):
        index.get_schema("Point@9.9.9")


def test_decode_schema_builds_a_working_class_and_diff(index: Index) -> None:
    ref1 = index.publish_schema(Point)
    ref2 = index.publish_schema(_point_v2())
    cls = index.decode_schema(ref2)
    assert [f.name for f in cls.fields()] == ["xy", "label", "weight"]
    sample = cls(xy=np.ones(2, np.float32), label="a", weight=0.5)
    back = cls.from_bytes(sample.packed)
    assert (back.label, back.weight) == ("a", 0.5)
    np.testing.assert_array_equal(back.xy, np.ones(2, np.float32))
    changes = index.diff_schemas(ref1, ref2)
    assert [(c.name, c.kind) for c in changes] == [("weight", "added")]


def test_list_schemas_and_the_lazy_iterator(index: Index) -> None:
    index.publish_schema(Point)
    index.publish_schema(_point_v2())

    @packable
    class Caption:
        text: str

    index.publish_schema(Caption)
    assert index.list_schema_names() == ["Caption", "Point"]
    assert index.list_schema_names(offset=1, limit=1) == ["Point"]
    assert [(r["name"], r["version"]) for r in index.list_schemas()] == [
        ("Caption", "1.0.0"),
        ("Point", "1.0.1"),
        ("Point", "1.0.0"),
    ]
    assert next(iter(index.schemas))["name"] == "Caption"
    assert index.stats()["local"]["schemas"] == 2


# --- lenses, metadata, deletion, integrity -------------------------------------------------------


def test_lenses_put_get_list_and_replace(index: Index) -> None:
    record = {
        "name": "PointToCaption",
        "version": "1.0.0",
        "sourceSchema": "atdata://local/schema/Point@1.0.0",
        "targetSchema": "atdata://local/schema/Caption@1.0.0",
        "getterCode": {"repository": "https://example.org/r", "commit": "abc", "path": "l.py"},
    }
    assert index.publish_lens(record) == "atdata://local/lens/PointToCaption@1.0.0"
    index.publish_lens({**record, "version": "1.1.0"})
    assert index.get_lens("PointToCaption")["targetSchema"].endswith("Caption@1.0.0")
    index.publish_lens({**record, "targetSchema": "atdata://local/schema/Caption@2.0.0"})
    assert index.get_lens("PointToCaption")["targetSchema"].endswith("Caption@2.0.0")
    assert [(r["name"], r["version"]) for r in index.list_lenses()] == [
        ("PointToCaption", "1.0.0"),
        ("PointToCaption", "1.1.0"),
    ]
    with pytest.raises(NotFoundError):
        index.get_lens("PointToCaption", "9.0.0")


def test_update_metadata_merges_and_persists(backend: Backend, index: Index) -> None:
    entry = index.write(points(2), name="pts")
    index.update_metadata(entry, {"atproto": {"entry_uri": "at://did:plc:x/c/r"}})
    again = backend.index().get_entry(entry.cid)
    assert again.at_uri == "at://did:plc:x/c/r" and again.promoted
    assert again.samples == 2  # merged, not replaced
    index.provider.update_metadata(entry.cid, None)
    assert index.get_entry(entry.cid).metadata is None
    index.provider.update_metadata("bafyreinotthere", {"a": 1})  # absent: a no-op
    assert index.provider.get_entry("bafyreinotthere") is None


def test_delete_entry_removes_it_and_its_labels(backend: Backend, index: Index) -> None:
    keep = index.write(points(1), name="keep")
    gone = index.write(points(2), name="gone")
    index.provider.set_label("gone", gone.cid, version="v1")
    deleted = index.delete_entry("gone", delete_data=True)
    assert deleted.cid == gone.cid
    with pytest.raises(NotFoundError):
        index.resolve_entry("gone")
    assert index.provider.get_label("gone", "v1") is None
    assert index.provider.list_labels() == [("keep", "", keep.cid)]
    assert [e.name for e in index.iter_entries()] == ["keep"]
    assert not any(os.path.exists(u) for u in gone.data_urls)
    assert all(os.path.exists(u) for u in keep.data_urls)
    assert index.provider.delete_entry(gone.cid) is False
    assert backend.index().count_entries() == 1


def test_verify_reports_ok_then_a_mismatch_for_a_corrupted_shard(index: Index) -> None:
    entry = index.write(points(20), name="pts", maxcount=10)
    report = index.verify("pts")
    assert report.ok and [s.status for s in report.shards] == ["ok", "ok"]
    victim = entry.data_urls[1]
    with open(victim, "r+b") as f:
        f.seek(700)
        byte = f.read(1)
        f.seek(700)
        f.write(bytes([byte[0] ^ 0xFF]))
    report = index.verify(entry)
    assert not report.ok
    assert [s.status for s in report.shards] == ["ok", "mismatch"]
    assert report.shards[1].url == victim


# --- all or nothing ------------------------------------------------------------------------------


def test_empty_write_is_refused_and_registers_nothing(backend: Backend, index: Index) -> None:
    with pytest.raises(ValueError, match="no samples"):
        index.write([], name="empty")
    with pytest.raises(ValueError, match="no samples"):
        index.write(iter(()), name="empty")
    assert index.count_entries() == 0
    assert index.provider.get_label("empty") is None
    assert shard_files(backend.store_root) == []


def test_a_failure_mid_write_leaves_no_entry_and_no_files(backend: Backend, index: Index) -> None:
    def failing() -> Iterator[Point]:
        yield from points(25)  # two full shards of 10, then part of a third
        raise OSError("disk on fire")

    with pytest.raises(WriteError, match="disk on fire"):
        index.write(failing(), name="broken", maxcount=10)
    assert index.count_entries() == 0
    with pytest.raises(NotFoundError):
        index.resolve_entry("broken")
    assert backend.index().provider.get_label("broken") is None
    assert shard_files(backend.store_root) == []
    index.write(points(3), name="broken")  # the name is still free
    assert index.resolve_entry("broken").samples == 3


# --- unreachable servers ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["redis", "postgres"])
def test_unreachable_server_fails_fast_with_a_clear_error(which: str) -> None:
    port = free_port()  # nobody listens here
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as info:
        if which == "redis":
            Index(redis=f"redis://admin:s3cret@127.0.0.1:{port}/0", atmosphere=None)
        else:
            Index(dsn=f"postgresql://admin:s3cret@127.0.0.1:{port}/db", atmosphere=None)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert info.value.backend == which
    assert f"127.0.0.1:{port}" in message and "admin" in message
    assert "s3cret" not in message and "s3cret" not in repr(info.value.args)


@pytest.mark.parametrize("which", ["redis", "postgres"])
def test_a_server_that_goes_away_and_comes_back(which: str) -> None:
    """Our error while the server is down; the same provider works again once it is back."""
    if which == "redis":
        from atdata_core.index.providers.redis import RedisProvider

        server: Any = RedisServer()
        make: Callable[[], IndexProvider] = lambda: RedisProvider(server.url)  # noqa: E731
    else:
        from atdata_core.index.providers.postgres import PostgresProvider

        server = PostgresServer()
        make = lambda: PostgresProvider(server.dsn)  # noqa: E731
    with server:
        provider = make()
        entry = fake_entry("x", 1)
        provider.put_entry(entry, label="x")
        server.stop()
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError) as info:
            provider.get_entry_by_name("x")
        assert time.monotonic() - started < 5
        assert info.value.backend == which and str(server.port) in str(info.value)
        server.start()
        if which == "redis":  # no persistence: the data went with the server
            provider.put_entry(entry, label="x")
        assert provider.get_entry_by_name("x").cid == entry.cid
        provider.close()


# --- backend-specific compatibility ------------------------------------------------------------------


@pytest.mark.redis
def test_redis_opens_an_atdata_database_and_builds_indexes_once(redis_url: str) -> None:
    """atdata's keys only (no indexes): one SCAN on open builds them, then reads are keyed."""
    import redis

    from atdata_core.index.providers.redis import RedisProvider

    raw = redis.Redis.from_url(redis_url)
    cids = []
    for i in range(30):
        entry = fake_entry(f"legacy{i:02d}", i)
        cids.append(entry.cid)
        mapping: dict[str, Any] = {
            "name": entry.name,
            "schema_ref": entry.schema_ref,
            "data_urls": msgpack.packb(entry.data_urls),
            "cid": entry.cid,
        }
        if i % 2:
            mapping["metadata"] = msgpack.packb({"i": i})
            mapping["legacy_uuid"] = f"uuid-{i}"
        raw.hset(f"LocalDatasetEntry:{entry.cid}", mapping=mapping)
    raw.hset("Label:legacy07@", mapping={"cid": cids[7], "name": "legacy07", "version": ""})
    raw.set("LocalSchema:Point@1.0.0", '{"name": "Point", "version": "1.0.0", "fields": []}')
    raw.set("LocalSchema:Point@1.0.1", '{"name": "Point", "version": "1.0.1", "fields": []}')
    raw.set("LocalLens:L@1.0.0", '{"name": "L"}')

    provider = RedisProvider(redis_url)
    assert raw.hget("atdata:meta", "layout") == b"1"
    assert provider.count_entries() == 30
    assert [e.name for e in provider.list_entries(limit=3)] == ["legacy00", "legacy01", "legacy02"]
    e7 = provider.get_entry_by_name("legacy07")
    assert e7.cid == cids[7] and e7.metadata == {"i": 7} and e7.legacy_uuid == "uuid-7"
    assert provider.get_entry_by_name("legacy08").metadata is None  # no label: by name
    assert sorted(provider.schema_versions("Point")) == ["1.0.0", "1.0.1"]
    assert provider.list_lenses() == [("L", "1.0.0", '{"name": "L"}')]

    # Built once: a key atdata adds later is not indexed until reindex().
    late = fake_entry("late", 99)
    raw.hset(
        f"LocalDatasetEntry:{late.cid}",
        mapping={
            "name": "late",
            "schema_ref": late.schema_ref,
            "data_urls": msgpack.packb(late.data_urls),
            "cid": late.cid,
        },
    )
    assert RedisProvider(redis_url).count_entries() == 30
    assert provider.reindex()["entries"] == 31
    assert provider.get_entry_by_name("late").cid == late.cid


@pytest.mark.redis
def test_redis_writes_what_atdata_reads(redis_url: str) -> None:
    """Our hashes carry atdata's fields and encodings (absent metadata is an absent field)."""
    import redis

    from atdata_core.index.providers.redis import RedisProvider

    provider = RedisProvider(redis_url)
    with_meta = IndexEntry.create("a", "atdata://local/schema/S@1.0.0", ["/x.tar"], {"k": 1})
    bare = IndexEntry.create("b", "atdata://local/schema/S@1.0.0", ["/y.tar"])
    provider.put_entry(with_meta, label="a")
    provider.put_entry(bare)
    provider.insert_schema("S", "1.0.0", '{"name": "S"}')
    provider.put_lens("L", "1.0.0", "{}")
    raw = redis.Redis.from_url(redis_url)
    h = raw.hgetall(f"LocalDatasetEntry:{with_meta.cid}")
    assert h[b"name"] == b"a" and h[b"cid"] == with_meta.cid.encode()
    assert msgpack.unpackb(h[b"data_urls"]) == ["/x.tar"]
    assert msgpack.unpackb(h[b"metadata"]) == {"k": 1}
    assert b"metadata" not in raw.hgetall(f"LocalDatasetEntry:{bare.cid}")
    assert raw.hget("Label:a@", "cid") == with_meta.cid.encode()
    assert raw.hget("Label:a@", "version") == b""
    assert raw.get("LocalSchema:S@1.0.0") == b'{"name": "S"}'
    assert raw.get("LocalLens:L@1.0.0") == b"{}"


@pytest.mark.redis
def test_redis_prefixes_isolate_indexes_and_clients_are_accepted(redis_url: str) -> None:
    import redis

    from atdata_core.index.providers.redis import RedisProvider

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    a = RedisProvider(client, prefix="team-a:")
    b = RedisProvider(redis_url, prefix="team-b:")
    a.put_entry(fake_entry("x", 1), label="x")
    assert a.count_entries() == 1 and b.count_entries() == 0
    assert b.get_entry_by_name("x") is None
    assert a.get_entry_by_name("x").data_urls == ["/d/x-1.tar"]  # msgpack survives
    assert client.exists(f"team-a:LocalDatasetEntry:{fake_entry('x', 1).cid}")


@pytest.mark.postgres
def test_postgres_opens_atdata_tables_and_migrates_once(postgres_dsn: str) -> None:
    """A database with atdata's own PostgreSQL tables opens; migrations are recorded once."""
    import psycopg

    from atdata_core.index.providers.postgres import MIGRATIONS, PostgresProvider

    entry = fake_entry("old", 1)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE dataset_entries (cid TEXT PRIMARY KEY, name TEXT NOT NULL, "
            "schema_ref TEXT NOT NULL, data_urls BYTEA NOT NULL, metadata BYTEA, "
            "legacy_uuid TEXT, created_at TIMESTAMPTZ DEFAULT now())"
        )
        conn.execute(
            "CREATE TABLE schemas (name TEXT NOT NULL, version TEXT NOT NULL, "
            "schema_json TEXT NOT NULL, created_at TIMESTAMPTZ DEFAULT now(), "
            "PRIMARY KEY (name, version))"
        )
        conn.execute(
            "INSERT INTO dataset_entries (cid, name, schema_ref, data_urls) VALUES (%s, %s, %s, %s)",
            (entry.cid, entry.name, entry.schema_ref, msgpack.packb(entry.data_urls)),
        )
    provider = PostgresProvider(postgres_dsn)
    PostgresProvider(postgres_dsn).close()
    assert provider.get_entry_by_name("old").data_urls == entry.data_urls
    assert provider.count_entries() == 1  # the kept count starts from the rows already there
    with psycopg.connect(postgres_dsn) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM atdata_migrations ORDER BY 1")]
        packed = conn.execute("SELECT data_urls FROM dataset_entries").fetchone()[0]
    assert versions == [m[0] for m in MIGRATIONS]
    assert msgpack.unpackb(packed) == entry.data_urls  # atdata reads ours the same way
    provider.close()


@pytest.mark.postgres
def test_postgres_kept_count_stays_exact_whoever_writes(postgres_dsn: str) -> None:
    """The entry count is kept by triggers: replacing, raw SQL, rollbacks and TRUNCATE included."""
    import psycopg

    from atdata_core.index.providers.postgres import PostgresProvider

    provider = PostgresProvider(postgres_dsn)
    provider.bulk_insert([fake_entry("a", i) for i in range(10)])
    provider.bulk_insert([fake_entry("a", i) for i in range(5, 15)])  # 5 replaced, 5 new
    provider.put_entry(fake_entry("a", 3))  # a replacement
    assert provider.count_entries() == 15
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM dataset_entries WHERE cid = %s", (fake_entry("a", 0).cid,))
        with pytest.raises(psycopg.errors.DivisionByZero), conn.transaction():
            conn.execute("DELETE FROM dataset_entries")
            conn.execute("SELECT 1 / 0")  # rolled back: so is the count
        assert provider.count_entries() == 14
        (real,) = conn.execute("SELECT count(*) FROM dataset_entries").fetchone()
        assert real == 14
        conn.execute("TRUNCATE dataset_entries")
    assert provider.count_entries() == 0
    provider.close()
