"""Fixtures for the TUI tests: indexes in tmp_path, a million-entry index, fault injection, helpers.

Every test runs with ``ATDATA_TUI_HOME`` in its own tmp dir, so neither the user's config nor their
index or session is ever read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from atdata_core.errors import BackendUnavailableError
from atdata_core.index import Index, IndexEntry, SqliteProvider

BIG_N = 1_000_000

#: Worker groups the browse screens use (tests wait for these, not for long-running previews).
BROWSE_GROUPS = {
    "open-index",
    "entry-pages",
    "repositories",
    "schemas",
    "schema-detail",
    "schema-diff",
    "entry-detail",
    "entry-verify",
    "demo",
    "network-search",
    "network-describe",
    "network-schema",
    "network-lenses",
    "network-versions",
}


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "atdata-home"
    monkeypatch.setenv("ATDATA_TUI_HOME", str(home))
    monkeypatch.delenv("ATDATA_TUI_CONFIG", raising=False)
    monkeypatch.delenv("ATDATA_TUI_REPORT_TIMINGS", raising=False)
    return home


@pytest.fixture
def demo_index(tmp_path: Path) -> Iterator[Index]:
    """An index with the demo datasets (no PNG bytes: faster, and sizes independent of zlib)."""
    from atdata_tui.demo import create_demo

    index = Index(path=tmp_path / "demo" / "index.db")
    create_demo(index, with_png=False)
    yield index
    index.close()


@pytest.fixture
def empty_index(tmp_path: Path) -> Iterator[Index]:
    index = Index(path=tmp_path / "empty" / "index.db")
    yield index
    index.close()


def _big_entries(start: int, stop: int) -> list[IndexEntry]:
    return [
        IndexEntry(
            cid=f"bafyreib{i:052d}",
            name=f"dataset-{i:07d}",
            schema_ref="atdata://local/schema/Big@1.0.0",
            data_urls=[f"/data/big/{i:07d}/data-000000.tar"],
            metadata={"samples": i, "shards": 1, "bytes": 1000 * i},
            created_at="2024-01-01 00:00:00",
        )
        for i in range(start, stop)
    ]


@pytest.fixture(scope="session")
def big_index_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite index of 1,000,000 entries, built once per session with ``bulk_insert``."""
    path = tmp_path_factory.mktemp("big") / "index.db"
    provider = SqliteProvider(path)
    step = 100_000
    for start in range(0, BIG_N, step):
        provider.bulk_insert(_big_entries(start, start + step))
    provider.close()
    return path


class FailingProvider(SqliteProvider):
    """Fault injection: listing entries fails as if the server went away (counting still works)."""

    def list_entries(self, **kwargs: Any) -> list[IndexEntry]:
        raise BackendUnavailableError("sqlite", self.address, "injected fault: the server is gone")


@pytest.fixture
def failing_index(tmp_path: Path) -> Iterator[Index]:
    index = Index(FailingProvider(tmp_path / "failing" / "index.db"))
    yield index
    index.close()


# --- helpers --------------------------------------------------------------------------------------


def screen_text(app: Any) -> str:
    """The text on screen (the top screen's compositor; modal screens draw themselves only)."""
    return "\n".join(strip.text.rstrip() for strip in app.screen._compositor.render_strips())


async def settle(pilot: Any, timeout: float = 20.0) -> None:
    """Wait until no browse worker runs and the screen has been redrawn."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause()
        busy = [w for w in app.workers if w.group in BROWSE_GROUPS and not w.is_finished]
        if not busy:
            await pilot.pause()
            await pilot.pause()
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"workers still busy after {timeout}s: {busy}")


async def wait_for(
    pilot: Any, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause()
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}; screen:\n{screen_text(pilot.app)}")
