"""SQLite-specific index behaviour: atdata compatibility, paths, crash safety, stubs, load_dataset.

The behaviour every provider shares is in ``test_index_contract.py``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import msgpack
import numpy as np
import pytest

from atdata_core.errors import (
    AlreadyExistsError,
    NotFoundError,
    ReadOnlyError,
    RefError,
    SchemaError,
    WriteError,
)
from atdata_core.index import Index, entry_cid
from atdata_core.loading import load_dataset
from atdata_core.samples import NDArray, packable
from atdata_core.shards import write_shards


@packable
class Point:
    """A labelled point."""

    xy: NDArray
    label: str


def points(n: int) -> list[Point]:
    return [Point(xy=np.array([i, -i], dtype=np.float32), label=f"p{i}") for i in range(n)]


ATDATA_DDL = """
CREATE TABLE dataset_entries(cid TEXT PRIMARY KEY, name TEXT NOT NULL, schema_ref TEXT NOT NULL,
    data_urls BLOB NOT NULL, metadata BLOB, legacy_uuid TEXT, created_at TEXT DEFAULT (datetime('now')));
CREATE INDEX idx_entries_name ON dataset_entries(name);
CREATE TABLE schemas(name TEXT, version TEXT, schema_json TEXT, created_at TEXT, PRIMARY KEY(name, version));
CREATE TABLE lenses(name TEXT, version TEXT, lens_json TEXT, created_at TEXT, PRIMARY KEY(name, version));
CREATE TABLE labels(name TEXT, cid TEXT, version TEXT DEFAULT '', description TEXT, created_at TEXT,
    PRIMARY KEY(name, version));
CREATE INDEX idx_labels_cid ON labels(cid);
"""


def test_cid_matches_formats_test_vector() -> None:
    cid = entry_cid("atdata://local/schema/S@1.0.0", ["/data/a-000000.tar"])
    assert cid == "bafyreiecbxtrmybkejs6lik2jblcg7uza54m5jssd3xqallbqxwots7cpi"


def test_opens_an_index_written_by_atdata(tmp_path: Path) -> None:
    """Build a database exactly as atdata lays it out (its DDL, its encodings) and read it."""
    shard = tmp_path / "legacy-000000.tar"
    write_shards(points(5), str(tmp_path / "legacy-%06d.tar"))
    db = tmp_path / "atdata-index.db"
    conn = sqlite3.connect(db)
    conn.executescript(ATDATA_DDL)
    record = {
        "name": "Point",
        "version": "1.0.0",
        "description": "A labelled point.",
        "createdAt": "2026-01-01T00:00:00+00:00",
        "$ref": "atdata://local/schema/Point@1.0.0",
        "fields": [
            {
                "name": "xy",
                "fieldType": {"$type": "local#ndarray", "dtype": "float32"},
                "optional": False,
            },
            {
                "name": "label",
                "fieldType": {"$type": "local#primitive", "primitive": "str"},
                "optional": False,
            },
        ],
    }
    conn.execute(
        "INSERT INTO schemas VALUES (?, ?, ?, ?)",
        ("Point", "1.0.0", json.dumps(record), "2026-01-01"),
    )
    legacy_ref = "local://schemas/mymodule.Point@1.0.0"
    urls = [str(shard)]
    cid = entry_cid(legacy_ref, urls)
    conn.execute(
        "INSERT INTO dataset_entries(cid, name, schema_ref, data_urls, metadata, legacy_uuid) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (cid, "legacy", legacy_ref, msgpack.packb(urls), msgpack.packb({"owner": "me"}), "uuid-1"),
    )
    conn.execute("INSERT INTO labels(name, cid, version) VALUES ('legacy', ?, '')", (cid,))
    conn.commit()
    conn.close()

    index = Index(path=db)
    page = index.page_entries()
    assert page.total == 1 and page.items[0].name == "legacy"
    entry = index.resolve_entry("legacy")
    assert entry.cid == cid and entry.metadata == {"owner": "me"} and entry.legacy_uuid == "uuid-1"
    assert index.get_schema(legacy_ref)["name"] == "Point"
    samples = list(index.get_dataset("legacy"))
    assert [s.label for s in samples] == [f"p{i}" for i in range(5)]
    np.testing.assert_array_equal(samples[3].xy, np.array([3, -3], dtype=np.float32))
    # Our additions migrate the file forward without breaking atdata's tables.
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert {"dataset_entries", "schemas", "lenses", "labels", "atdata_tui_meta"} <= tables


def test_path_is_honoured_and_store_sits_beside_it(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "my.db"
    index = Index(path=db)
    entry = index.write(points(3), name="pts")
    assert db.exists()
    assert entry.data_urls[0].startswith(str(tmp_path / "deep" / "shards"))


def test_default_index_lives_under_the_configured_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATDATA_TUI_HOME", str(tmp_path / "home"))
    index = Index()
    index.write(points(2), name="pts")
    assert (tmp_path / "home" / "data" / "index.db").exists()
    assert any((tmp_path / "home" / "data" / "shards").rglob("*.tar"))


def test_write_records_counts_checksums_and_sizes(tmp_path: Path) -> None:
    index = Index(path=tmp_path / "i.db")
    entry = index.write(
        points(25), name="pts", maxcount=10, description="d", tags=["a"], license="MIT"
    )
    assert (entry.samples, entry.shards) == (25, 3)
    assert sorted(entry.shard_samples.values()) == [5, 10, 10]
    assert entry.size_bytes == sum(os.path.getsize(u) for u in entry.data_urls)
    assert set(entry.checksums) == set(entry.data_urls)
    assert (entry.description, entry.tags, entry.license) == ("d", ["a"], "MIT")
    assert index.verify(entry).ok


def test_crash_after_second_shard_leaves_nothing(tmp_path: Path) -> None:
    """A failure after shard 2 of 3: no entry, no shard files, no temporary files."""
    index = Index(path=tmp_path / "i.db")

    def failing():
        yield from points(20)  # two full shards of 10
        yield Point(xy=np.zeros(2, np.float32), label="x")
        raise OSError("disk on fire")

    with pytest.raises(WriteError, match="disk on fire"):
        index.write(failing(), name="broken", maxcount=10)
    assert index.page_entries().total == 0
    with pytest.raises(NotFoundError):
        index.resolve_entry("broken")
    leftovers = [p for p in (tmp_path / "shards").rglob("*") if p.is_file()]
    assert leftovers == []


def test_rewriting_a_name_needs_overwrite(tmp_path: Path) -> None:
    index = Index(path=tmp_path / "i.db")
    first = index.write(points(2), name="pts")
    with pytest.raises(AlreadyExistsError, match="overwrite=True"):
        index.write(points(3), name="pts")
    second = index.write(points(3), name="pts", overwrite=True)
    assert second.cid != first.cid
    assert index.resolve_entry("pts").cid == second.cid


def test_empty_write_is_refused(tmp_path: Path) -> None:
    index = Index(path=tmp_path / "i.db")
    with pytest.raises(ValueError, match="no samples"):
        index.write([], name="empty")
    assert index.page_entries().total == 0


def test_readonly_index_refuses_writes(tmp_path: Path) -> None:
    Index(path=tmp_path / "i.db").write(points(1), name="pts")
    ro = Index(path=tmp_path / "i.db", readonly=True)
    assert ro.resolve_entry("pts").samples == 1
    with pytest.raises(ReadOnlyError):
        ro.write(points(1), name="more")


def test_unknown_repo_and_remote_refs_without_atmosphere(tmp_path: Path) -> None:
    index = Index(path=tmp_path / "i.db", atmosphere=None)
    with pytest.raises(RefError, match="no repository named 'lab'"):
        index.resolve_entry("lab/x")
    with pytest.raises(RefError, match="log in"):
        index.resolve_entry("@alice.test/x")


def test_hostile_schema_record_is_refused_not_executed(tmp_path: Path) -> None:
    index = Index(path=tmp_path / "i.db", auto_stubs=True, stub_dir=tmp_path / "stubs")
    marker = tmp_path / "pwned"
    record = {
        "name": "Evil",
        "version": "1.0.0",
        "description": f'"""\nimport pathlib; pathlib.Path({str(marker)!r}).touch()\n"""',
        "fields": [
            {
                "name": f"x: int\nimport os; os.system('touch {marker}')",
                "fieldType": {"$type": "local#primitive", "primitive": "int"},
                "optional": False,
            }
        ],
    }
    index.provider.insert_schema("Evil", "1.0.0", json.dumps(record))
    with pytest.raises(SchemaError):
        index.decode_schema("atdata://local/schema/Evil@1.0.0")
    assert not marker.exists()
    # A hostile docstring alone stays inert text in the generated stub.
    record["fields"] = [
        {
            "name": "x",
            "fieldType": {"$type": "local#primitive", "primitive": "int"},
            "optional": False,
        }
    ]
    index.provider.insert_schema("Evil", "1.0.1", json.dumps(record))
    cls = index.decode_schema("atdata://local/schema/Evil@1.0.1")
    assert cls(x=1).x == 1
    assert not marker.exists()


def test_stubs_import_path_and_clear(tmp_path: Path) -> None:
    index = Index(path=tmp_path / "i.db", auto_stubs=True, stub_dir=tmp_path / "stubs")
    ref = index.publish_schema(Point)
    path = index.get_import_path(ref)
    assert path.endswith("Point_1_0_0")
    cls = index.load_schema(ref)
    assert index.types.Point is cls
    assert any((tmp_path / "stubs").rglob("Point_1_0_0.py"))
    index.clear_stubs()
    assert not any((tmp_path / "stubs").rglob("Point_1_0_0.py"))


def test_load_dataset_from_paths_dirs_and_refs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_shards(points(4), str(data / "train-%06d.tar"), maxcount=2)
    write_shards(points(2), str(data / "test-%06d.tar"))
    dd = load_dataset(str(data), Point)
    assert set(dd) == {"train", "test"}
    assert len(list(dd["train"])) == 4
    assert len(list(load_dataset(str(data), Point, split="test"))) == 2
    assert len(list(load_dataset(str(data / "train-*.tar"), Point, split="train"))) == 4
    assert (
        len(list(load_dataset(str(data / "train-{000000..000001}.tar"), Point, split="train"))) == 4
    )

    index = Index(path=tmp_path / "i.db")
    index.write(points(3), name="pts")
    by_ref = load_dataset("@local/pts", index=index)
    assert [s.label for s in by_ref] == ["p0", "p1", "p2"]
    assert type(next(iter(load_dataset("pts", index=index)))).__name__ == "Point"
    with pytest.raises(NotFoundError):
        load_dataset(str(tmp_path / "nothing-*.tar"))
    with pytest.raises(NotFoundError, match="no split"):
        load_dataset(str(data), split="validation")


def test_dict_samples_get_an_inferred_schema(tmp_path: Path) -> None:
    from atdata_core.samples import DictSample

    index = Index(path=tmp_path / "i.db")
    rows = [
        DictSample(text=f"t{i}", score=i / 2, arr=np.arange(3, dtype=np.int16)) for i in range(3)
    ]
    entry = index.write(rows, name="free-form")
    record = index.get_schema(entry.schema_ref)
    assert record["name"] == "FreeFormSample"
    assert [f["name"] for f in record["fields"]] == ["text", "score", "arr"]
    back = list(index.get_dataset("free-form"))
    assert back[2].text == "t2" and back[2].arr.dtype == np.int16


def test_connections_of_finished_threads_are_closed(tmp_path: Path) -> None:
    """One connection per thread that asks, but none kept for threads that are gone."""
    import threading

    from atdata_core.index.providers.sqlite import SqliteProvider

    provider = SqliteProvider(tmp_path / "index.db")
    opened: list[sqlite3.Connection] = []

    def ask() -> None:
        opened.append(provider._conn())
        provider._query("SELECT 1")

    for _ in range(20):
        thread = threading.Thread(target=ask)
        thread.start()
        thread.join()
    assert len(provider._all) <= 2  # this thread's and the last worker's
    with pytest.raises(sqlite3.ProgrammingError):  # an early worker's connection is closed
        opened[0].execute("SELECT 1")
    assert provider._query("SELECT 1") == [(1,)]
    provider.close()
