"""Index benchmarks: inserts, keyed lookups and first pages on SQLite, Redis and PostgreSQL.

Targets (DESIGN.md): entry by name or CID in ≤50 µs on SQLite and ≤1 ms on Redis/PostgreSQL over
loopback, independent of the number of entries; the first page of 1,000,000 entries in ≤50 ms.

The servers are real: this module starts its own ``redis-server`` and ``postgres`` with the test
suite's helpers (``tests/services``) and skips their rows, with a note, where they cannot start.
The baseline for Redis lookups by name is atdata 0.7's method (``SCAN`` every entry key and read
each hash until the name matches), reimplemented here because the comparison is about the
algorithm, on the same server, in the same run.
"""

from __future__ import annotations

import gc
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from atdata_core.index import Index
from atdata_core.index.entries import IndexEntry
from atdata_core.index.providers.sqlite import SqliteProvider
from atdata_core.stores.disk import LocalDiskStore
from benchmarks.common import Row, make_row

SCHEMA_REF = "atdata://local/schema/Point@1.0.0"
TARGET_LOOKUP_US = {"sqlite": 50.0, "redis": 1000.0, "postgres": 1000.0}
TARGET_FIRST_PAGE_MS = 50.0
CHUNK = 50_000


def _entry(i: int) -> IndexEntry:
    name = f"ds{i:07d}"
    return IndexEntry.create(
        name,
        SCHEMA_REF,
        [f"/data/{name}/data-000000.tar", f"/data/{name}/data-000001.tar"],
        {"samples": 20_000, "shards": 2, "bytes": 1 << 24, "description": f"dataset {i}"},
    )


def _entries(start: int, stop: int) -> Iterator[list[IndexEntry]]:
    for lo in range(start, stop, CHUNK):
        yield [_entry(i) for i in range(lo, min(stop, lo + CHUNK))]


def _fill(provider: Any, start: int, stop: int) -> float:
    """Bulk-insert entries ``start..stop``; returns seconds spent inside ``bulk_insert``."""
    spent = 0.0
    for chunk in _entries(start, stop):
        t0 = time.perf_counter()
        provider.bulk_insert(chunk)
        spent += time.perf_counter() - t0
    return spent


def _us_per_op(fn: Callable[[Any], Any], keys: list[Any], repeats: int = 3) -> float:
    """Best of ``repeats`` passes over ``keys`` (µs per call), after one warm-up pass."""
    for k in keys[: max(1, len(keys) // 10)]:
        fn(k)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for k in keys:
            fn(k)
        best = min(best, (time.perf_counter() - t0) / len(keys))
    return best * 1e6


def _ms(fn: Callable[[], Any], repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


class _Servers:
    """redis-server and postgres for the run, started with the test suite's helpers."""

    def __init__(self, stack: ExitStack) -> None:
        self.notes: dict[str, str] = {}
        self.redis_url: str | None = None
        self.redis_scratch_url: str | None = None
        self.postgres_dsn: str | None = None
        root = Path(__file__).resolve().parents[1]
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        try:
            from tests.services import PostgresServer, RedisServer
        except ImportError as exc:
            self.notes["redis"] = self.notes["postgres"] = f"tests/services not importable: {exc}"
            return
        try:
            redis_server = stack.enter_context(RedisServer())
            self.redis_url = redis_server.url
            self.redis_scratch_url = redis_server.url_for_db(1)
        except Exception as exc:
            self.notes["redis"] = f"redis-server did not start: {str(exc).splitlines()[0]}"
        try:
            self.postgres_dsn = stack.enter_context(PostgresServer()).dsn
        except Exception as exc:
            self.notes["postgres"] = f"postgres did not start: {str(exc).splitlines()[0]}"

    def open(self, backend: str, tmp: Path, *, scratch: bool = False) -> Any:
        if backend == "sqlite":
            return SqliteProvider(tmp / f"bench-{time.monotonic_ns()}.db")
        if backend == "redis":
            import redis

            from atdata_core.index.providers.redis import RedisProvider

            url = self.redis_scratch_url if scratch else self.redis_url
            assert url is not None
            redis.Redis.from_url(url).flushdb()
            return RedisProvider(url)
        import psycopg

        from atdata_core.index.providers.postgres import PostgresProvider

        assert self.postgres_dsn is not None
        with psycopg.connect(self.postgres_dsn, autocommit=True) as conn:
            conn.execute(
                "DROP TABLE IF EXISTS dataset_entries, labels, schemas, lenses, atdata_migrations"
            )
        return PostgresProvider(self.postgres_dsn)

    def available(self, backend: str) -> bool:
        return (
            backend == "sqlite"
            or (self.redis_url if backend == "redis" else self.postgres_dsn) is not None
        )


def _atdata_redis_get_by_name(client: Any, name: str) -> dict[bytes, bytes] | None:
    """atdata 0.7's ``get_entry_by_name``: SCAN every entry key, read each hash, compare names."""
    for key in client.scan_iter(match="LocalDatasetEntry:*"):
        raw = client.hgetall(key)
        if raw.get(b"name", b"").decode() == name:
            return raw
    return None


def _row(
    figure: str,
    ours: float | None,
    unit: str,
    *,
    target: float | None = None,
    lower_is_better: bool = True,
    baseline: float | None = None,
    baseline_name: str = "",
    note: str = "",
) -> Row:
    """Latencies by default (lower is better); rates pass ``lower_is_better=False``."""
    return make_row(
        figure,
        ours,
        unit,
        baseline=baseline,
        baseline_name=baseline_name,
        target=target,
        lower_is_better=lower_is_better,
        note=note,
    )


def _skipped(figure: str, unit: str, note: str) -> Row:
    return _row(figure, None, unit, note=f"skipped: {note}")


def _bench_backend(backend: str, servers: _Servers, tmp: Path, quick: bool) -> list[Row]:
    big = 20_000 if quick else 100_000
    small = 1_000
    one_by_one = 300 if quick else 2_000
    probes = 300 if quick else 2_000
    rows: list[Row] = []
    if not servers.available(backend):
        note = servers.notes.get(backend, "server unavailable")
        for fig, unit in [
            (f"index {backend}: bulk insert {big:,} entries", "entries/s"),
            (f"index {backend}: insert one by one ({one_by_one:,})", "entries/s"),
            (f"index {backend}: entry by CID at {small:,} entries", "µs/op"),
            (f"index {backend}: entry by name at {small:,} entries", "µs/op"),
            (f"index {backend}: entry by CID at {big:,} entries", "µs/op"),
            (f"index {backend}: entry by name at {big:,} entries", "µs/op"),
            (f"index {backend}: first page (100) of {big:,} entries", "ms"),
            (f"index {backend}: filtered page of {big:,} entries", "ms"),
        ]:
            rows.append(_skipped(fig, unit, note))
        return rows

    provider = servers.open(backend, tmp)
    rng = random.Random(7)
    target_us = TARGET_LOOKUP_US[backend]

    # One by one: the put_entry path a write takes (with its label).
    t0 = time.perf_counter()
    for i in range(one_by_one):
        provider.put_entry(_entry(10_000_000 + i), label=f"single{i:07d}")
    rate = one_by_one / (time.perf_counter() - t0)

    # Lookups at 1k entries, then grow to `big` (bulk) and look up again.
    seconds = _fill(provider, 0, small)
    lookups: dict[int, tuple[float, float]] = {}
    for size in (small, big):
        if size == big:
            seconds = _fill(provider, small, big)
            bulk_rate = (big - small) / seconds
        sample = [rng.randrange(size) for _ in range(probes)]
        cids = [_entry(i).cid for i in sample]
        names = [f"ds{i:07d}" for i in sample]
        for name, cid in zip(names, cids, strict=True):
            provider.set_label(name, cid)  # written entries carry a label: the normal path
        by_cid = _us_per_op(provider.get_entry, cids)
        by_name = _us_per_op(provider.get_entry_by_name, names)
        assert provider.get_entry_by_name(names[0]).cid == cids[0]
        lookups[size] = (by_cid, by_name)

    rows.append(
        _row(
            f"index {backend}: bulk insert {big:,} entries",
            bulk_rate,
            "entries/s",
            lower_is_better=False,
            note=f"{(big - small) / bulk_rate:.1f} s",
        )
    )
    rows.append(
        _row(
            f"index {backend}: insert one by one ({one_by_one:,})",
            rate,
            "entries/s",
            lower_is_better=False,
            note="put_entry with label, one transaction each",
        )
    )

    baseline_name_1k = None
    if backend == "redis":
        # atdata's scan-based lookup, at 1k entries only (at 100k it takes seconds per call).
        import redis

        scratch = servers.open("redis", tmp, scratch=True)
        _fill(scratch, 0, small)
        client = redis.Redis.from_url(servers.redis_scratch_url)
        names = [f"ds{rng.randrange(small):07d}" for _ in range(10 if quick else 30)]
        baseline_name_1k = _us_per_op(lambda n: _atdata_redis_get_by_name(client, n), names, 1)
        scratch.close()
        client.flushdb()

    for size in (small, big):
        by_cid, by_name = lookups[size]
        rows.append(
            _row(
                f"index {backend}: entry by CID at {size:,} entries",
                by_cid,
                "µs/op",
                target=target_us,
            )
        )
        rows.append(
            _row(
                f"index {backend}: entry by name at {size:,} entries",
                by_name,
                "µs/op",
                target=target_us,
                baseline=baseline_name_1k if size == small else None,
                baseline_name="atdata 0.7 method (SCAN + HGETALL)"
                if baseline_name_1k is not None and size == small
                else "",
            )
        )

    index = Index(provider=provider, data_store=LocalDiskStore(tmp / "shards"), atmosphere=None)
    first = _ms(lambda: index.page_entries(offset=0, limit=100))
    list_only = _ms(lambda: provider.list_entries(offset=0, limit=100))
    rows.append(
        _row(
            f"index {backend}: first page (100) of {provider.count_entries():,} entries",
            first,
            "ms",
            target=TARGET_FIRST_PAGE_MS,
            note=f"page_entries incl. total count; list alone {list_only:.2f} ms",
        )
    )
    filtered = _ms(lambda: index.page_entries(name_filter="s00123", limit=100), repeats=3)
    rows.append(
        _row(
            f"index {backend}: filtered page of {provider.count_entries():,} entries",
            filtered,
            "ms",
            note="substring filter + filtered count, server-side",
        )
    )
    provider.close()
    return rows


def _bench_million(tmp: Path, quick: bool) -> list[Row]:
    """SQLite first page over 1,000,000 entries (fewer in quick mode)."""
    n = 200_000 if quick else 1_000_000
    provider = SqliteProvider(tmp / "million.db")
    seconds = _fill(provider, 0, n)
    gc.collect()
    index = Index(provider=provider, data_store=LocalDiskStore(tmp / "shards"), atmosphere=None)
    first = _ms(lambda: index.page_entries(offset=0, limit=100))
    list_only = _ms(lambda: provider.list_entries(offset=0, limit=100))
    deep = _ms(lambda: provider.list_entries(offset=n // 2, limit=100))
    probes = [f"ds{i:07d}" for i in random.Random(3).sample(range(n), 1000)]
    by_name = _us_per_op(provider.get_entry_by_name, probes)
    provider.close()
    return [
        _row(
            f"index sqlite: first page (100) of {n:,} entries",
            first,
            "ms",
            target=TARGET_FIRST_PAGE_MS,
            note=f"incl. total count; list alone {list_only:.2f} ms; page at offset {n // 2:,} "
            f"{deep:.1f} ms; bulk load {n / seconds:,.0f} entries/s",
        ),
        _row(
            f"index sqlite: entry by name at {n:,} entries (no label)",
            by_name,
            "µs/op",
            target=TARGET_LOOKUP_US["sqlite"],
            note="name index fallback path",
        ),
    ]


def _bench_million_postgres(servers: _Servers, tmp: Path, quick: bool) -> list[Row]:
    """PostgreSQL first page (with its exact total) over 1,000,000 entries (fewer in quick mode)."""
    n = 100_000 if quick else 1_000_000
    figure = f"index postgres: first page (100) of {n:,} entries"
    if not servers.available("postgres"):
        return [_skipped(figure, "ms", servers.notes.get("postgres", "server unavailable"))]
    provider = servers.open("postgres", tmp)
    seconds = _fill(provider, 0, n)
    index = Index(provider=provider, data_store=LocalDiskStore(tmp / "shards"), atmosphere=None)
    first = _ms(lambda: index.page_entries(offset=0, limit=100))
    list_only = _ms(lambda: provider.list_entries(offset=0, limit=100))
    import psycopg

    with psycopg.connect(servers.postgres_dsn or "", autocommit=True) as conn:
        scan = _ms(lambda: conn.execute("SELECT count(*) FROM dataset_entries").fetchone(), 3)
    provider.close()
    return [
        _row(
            figure,
            first,
            "ms",
            target=TARGET_FIRST_PAGE_MS,
            baseline=first - list_only + scan,
            baseline_name="same, counting with count(*)",
            note=f"total from the trigger-kept count; list alone {list_only:.2f} ms; "
            f"count(*) {scan:.1f} ms; bulk load {n / seconds:,.0f} entries/s",
        ),
    ]


def run(quick: bool) -> list[Row]:
    """Every index figure, SQLite, Redis and PostgreSQL side by side."""
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="atdata-bench-index-"))
    try:
        with ExitStack() as stack:
            servers = _Servers(stack)
            for backend in ("sqlite", "redis", "postgres"):
                rows.extend(_bench_backend(backend, servers, tmp, quick))
            rows.extend(_bench_million_postgres(servers, tmp, quick))
        rows.extend(_bench_million(tmp, quick))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":  # usually: benchmarks/run --only index
    for row in run(quick="--quick" in sys.argv):
        print(row)
