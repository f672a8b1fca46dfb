"""Several real processes writing one index at once, for every provider.

Each worker is a separate interpreter (``spawn``), released together by a barrier, and writes
datasets, claims one contended name, and publishes schema versions with the same and with
different content. Afterwards nothing may be lost, no version may be claimed twice, exactly one
process may own the contended name, and no worker may have seen an error (for SQLite that includes
"database is locked").
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from atdata_core.errors import AlreadyExistsError
from atdata_core.index import Index
from atdata_core.index.providers.base import IndexProvider
from atdata_core.samples import NDArray, packable
from atdata_core.stores.disk import LocalDiskStore

ENTRIES_PER_WORKER = 8
SCHEMA_ROUNDS = 3
JOIN_TIMEOUT_S = 180


@packable
class Point:
    """A labelled point."""

    xy: NDArray
    label: str


def _open(spec: tuple[str, str]) -> IndexProvider:
    kind, where = spec
    if kind == "sqlite":
        from atdata_core.index.providers.sqlite import SqliteProvider

        return SqliteProvider(where)
    if kind == "redis":
        from atdata_core.index.providers.redis import RedisProvider

        return RedisProvider(where)
    from atdata_core.index.providers.postgres import PostgresProvider

    return PostgresProvider(where)


def _evolving(worker: int, round_: int) -> type:
    """A class named ``Evolving`` whose fields differ per (worker, round): new content each time."""
    annotations = {"base": str, f"w{worker}_r{round_}": int}
    cls = types.new_class(
        "Evolving", (), {}, lambda ns: ns.update({"__annotations__": annotations})
    )
    return packable(cls)


def _worker(spec: tuple[str, str], store: str, worker: int, barrier: Any, results: Any) -> None:
    """One process's share of the load; reports what it did (or its traceback) on ``results``."""
    report: dict[str, Any] = {"worker": worker, "written": {}, "evolving": [], "errors": []}
    try:
        index = Index(provider=_open(spec), data_store=LocalDiskStore(store), atmosphere=None)
        barrier.wait(timeout=60)
        report["point_ref"] = index.publish_schema(Point)
        for i in range(ENTRIES_PER_WORKER):
            name = f"w{worker}-{i:02d}"
            samples = [
                Point(xy=np.array([worker, i], np.float32), label=f"{name}/{j}") for j in range(3)
            ]
            report["written"][name] = index.write(samples, name=name).cid
            if i == 1:
                try:
                    entry = index.add_entry(
                        [f"/shared/{worker}.tar"], name="shared", schema_ref=report["point_ref"]
                    )
                    report["shared"] = entry.cid
                except AlreadyExistsError:
                    report["shared"] = None
        for round_ in range(SCHEMA_ROUNDS):
            ref = index.publish_schema(_evolving(worker, round_))
            report["evolving"].append((ref, f"w{worker}_r{round_}"))
        index.close()
    except BaseException:
        report["errors"].append(traceback.format_exc())
    results.put(report)


def _run_workers(spec: tuple[str, str], store: Path, processes: int) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(spec, str(store), w, barrier, results))
        for w in range(processes)
    ]
    for p in procs:
        p.start()
    reports = []
    try:
        for _ in procs:
            reports.append(results.get(timeout=JOIN_TIMEOUT_S))
    except queue.Empty:
        pytest.fail(f"only {len(reports)} of {processes} workers reported in {JOIN_TIMEOUT_S}s")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    return sorted(reports, key=lambda r: r["worker"])


def _check(spec: tuple[str, str], store: Path, reports: list[dict[str, Any]]) -> None:
    errors = [e for r in reports for e in r["errors"]]
    assert not errors, "\n".join(errors)
    index = Index(provider=_open(spec), data_store=LocalDiskStore(store), atmosphere=None)
    processes = len(reports)

    # No lost entries: every dataset any worker wrote resolves to what it wrote, and reads back.
    written = {name: cid for r in reports for name, cid in r["written"].items()}
    assert len(written) == processes * ENTRIES_PER_WORKER
    for name, cid in written.items():
        assert index.resolve_entry(name).cid == cid
    sample = next(iter(index.get_dataset("w0-03")))
    assert sample.label == "w0-03/0"
    assert index.count_entries() == len(written) + 1  # + the one "shared" winner
    assert len(list(index.iter_entries())) == len(written) + 1

    # Exactly one process owns the contended name, and the index agrees.
    winners = [r["shared"] for r in reports if r["shared"] is not None]
    assert len(winners) == 1
    assert index.resolve_entry("shared").cid == winners[0]
    assert len(index.provider.list_labels()) == len(written) + 1

    # Same content: one version, the same ref for everyone.
    assert {r["point_ref"] for r in reports} == {"atdata://local/schema/Point@1.0.0"}
    assert index.schema_versions("Point") == ["1.0.0"]

    # Different content: a version each, none claimed twice, each holding its own fields.
    refs = [(ref, field) for r in reports for ref, field in r["evolving"]]
    versions = index.schema_versions("Evolving")
    assert len(versions) == len(set(versions)) == processes * SCHEMA_ROUNDS
    assert len({ref for ref, _ in refs}) == len(refs)
    for ref, field in refs:
        assert [f["name"] for f in index.get_schema(ref)["fields"]] == ["base", field]
    index.close()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return ("sqlite", str(tmp_path / "index.db"))
    if request.param == "redis":
        return ("redis", request.getfixturevalue("redis_url"))
    return ("postgres", request.getfixturevalue("postgres_dsn"))


@pytest.mark.slow
def test_four_processes_write_one_index(spec: tuple[str, str], tmp_path: Path) -> None:
    _open(spec).close()  # create the schema/indexes first, like a user's first `atdata-tui`
    store = tmp_path / "shards"
    _check(spec, store, _run_workers(spec, store, processes=4))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_concurrent_first_opens_are_safe(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Nobody has opened the database yet: four processes create its tables/indexes at once."""
    where = request.getfixturevalue("redis_url" if kind == "redis" else "postgres_dsn")
    spec = (kind, where)
    store = tmp_path / "shards"
    _check(spec, store, _run_workers(spec, store, processes=4))


@pytest.mark.slow
def test_two_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    """The case most users hit: two local processes (say the TUI and a script) at once."""
    spec = ("sqlite", str(tmp_path / "fresh" / "index.db"))  # not created beforehand
    store = tmp_path / "shards"
    _check(spec, store, _run_workers(spec, store, processes=2))


@pytest.mark.slow
def test_threads_share_one_provider(spec: tuple[str, str]) -> None:
    """The TUI calls one provider from many short-lived worker threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    from atdata_core.index.entries import IndexEntry

    provider = _open(spec)
    threads, rounds = 8, 25

    def work(t: int) -> list[str]:
        mine = []
        for i in range(rounds):
            entry = IndexEntry.create(
                f"t{t}-{i:02d}", "atdata://local/schema/P@1.0.0", [f"/{t}/{i}"]
            )
            provider.put_entry(entry, label=entry.name)
            got = provider.get_entry_by_name(entry.name)
            assert got is not None and got.cid == entry.cid
            assert len(provider.list_entries(limit=5)) == 5 or i < 5
            provider.count_entries(name_filter=f"t{t}-")
            provider.insert_schema("P", f"1.0.{i}", "{}")
            mine.append(entry.cid)
        return mine

    with ThreadPoolExecutor(threads) as pool:
        written = [cid for cids in pool.map(work, range(threads)) for cid in cids]
    assert provider.count_entries() == threads * rounds == len(set(written))
    assert sorted(provider.schema_versions("P"), key=lambda v: int(v.rsplit(".", 1)[1])) == [
        f"1.0.{i}" for i in range(rounds)
    ]
    assert provider.count_entries(name_filter="t3-") == rounds
    if spec[0] == "postgres":
        import psycopg

        from atdata_core.index.providers.postgres import MAX_IDLE

        with psycopg.connect(spec[1]) as conn:
            (open_conns,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'atdata-tui' AND datname = current_database()"
            ).fetchone()
        assert open_conns <= MAX_IDLE  # idle connections are pooled, not leaked per thread
    provider.close()
