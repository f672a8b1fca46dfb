"""SVG snapshots of every browse screen (pytest-textual-snapshot), from a deterministic demo index.

Everything on screen is fixed: the index lives in one fixed directory (``SNAP_DIR``, recreated
for each test, so shard paths and therefore CIDs never change), the disk store's random token
directory is replaced by a counter, ``created_at`` is set to one timestamp, PNG bytes are left out
(their size depends on zlib), the config and session come from an empty ``ATDATA_TUI_HOME``, and
the filter box does not blink. Snapshots are written to ``tests/tui/snapshots/__snapshots__``.

Update them with ``pytest tests/tui/test_snapshots_browse.py --snapshot-update`` and look at the
report. (Not safe under pytest-xdist: the directory is fixed on purpose.)
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_textual_snapshot

from atdata_core.index import Index
from atdata_core.stores import disk as disk_store
from atdata_tui.app import AtdataApp
from atdata_tui.demo import create_demo

from .conftest import FailingProvider, settle, wait_for

SNAP_DIR = Path("/tmp/atdata-tui-snapshots")
SIZE = (120, 36)
CREATED_AT = "2025-01-02 03:04:05"


class BrowseSnapshots(pytest_textual_snapshot.SVGImageExtension):
    """Keep this module's SVGs in ``tests/tui/snapshots/__snapshots__/<module>/``."""

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        base = Path(test_location.filepath).parent / "snapshots" / "__snapshots__"
        return str(base / test_location.basename)


@pytest.fixture(autouse=True)
def _snapshot_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytest_textual_snapshot, "SVGImageExtension", BrowseSnapshots)


@pytest.fixture
def fixed_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """``SNAP_DIR``, empty, with the disk store's token directories numbered instead of random."""
    shutil.rmtree(SNAP_DIR, ignore_errors=True)
    SNAP_DIR.mkdir(parents=True)
    monkeypatch.setenv("ATDATA_TUI_HOME", str(SNAP_DIR / "home"))  # the config path is shown
    counter = itertools.count()
    fake_uuid = types.SimpleNamespace(
        uuid4=lambda: types.SimpleNamespace(hex=f"{next(counter):012d}" + "0" * 20)
    )
    monkeypatch.setattr(disk_store, "uuid", fake_uuid)
    return SNAP_DIR


@pytest.fixture
def snap_index(fixed_dir: Path) -> Iterator[Index]:
    path = fixed_dir / "index.db"
    index = Index(path=path)
    create_demo(index, with_png=False)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE dataset_entries SET created_at = ?", (CREATED_AT,))
    yield index
    index.close()


async def _open_entries(pilot: Any) -> None:
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)


def test_repositories(snap_compare: Any, snap_index: Index) -> None:
    assert snap_compare(AtdataApp(snap_index), terminal_size=SIZE, run_before=settle)


def test_repositories_empty_index_offers_demo(snap_compare: Any, fixed_dir: Path) -> None:
    index = Index(path=fixed_dir / "empty" / "index.db")
    assert snap_compare(AtdataApp(index), terminal_size=SIZE, run_before=settle)
    index.close()


def test_entries(snap_compare: Any, snap_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await _open_entries(pilot)
        await pilot.press("space", "j")  # one marked entry, the cursor on the third row

    assert snap_compare(AtdataApp(snap_index), terminal_size=SIZE, run_before=run_before)


def test_entries_filtered(snap_compare: Any, snap_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await _open_entries(pilot)
        await pilot.press("slash")
        pilot.app.screen.query_one("#entries-filter").cursor_blink = False
        await pilot.press(*"capt")
        await wait_for(
            pilot, lambda: "match" in str(pilot.app.screen.query_one("#entries-count").render())
        )
        await settle(pilot)

    assert snap_compare(AtdataApp(snap_index), terminal_size=SIZE, run_before=run_before)


def test_entries_80x24(snap_compare: Any, snap_index: Index) -> None:
    assert snap_compare(AtdataApp(snap_index), terminal_size=(80, 24), run_before=_open_entries)


def test_entry_detail(snap_compare: Any, snap_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await _open_entries(pilot)
        await pilot.press("j", "j", "j", "enter")  # demo-numbers
        await settle(pilot)

    assert snap_compare(AtdataApp(snap_index), terminal_size=SIZE, run_before=run_before)


def test_schemas(snap_compare: Any, snap_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)

    assert snap_compare(AtdataApp(snap_index), terminal_size=SIZE, run_before=run_before)


def test_schemas_diff(snap_compare: Any, snap_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        await pilot.press("space", "j", "space")
        await settle(pilot)

    assert snap_compare(AtdataApp(snap_index), terminal_size=(80, 24), run_before=run_before)


def test_help(snap_compare: Any, snap_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await _open_entries(pilot)
        await pilot.press("question_mark")

    assert snap_compare(AtdataApp(snap_index), terminal_size=SIZE, run_before=run_before)


def test_error_modal(snap_compare: Any, fixed_dir: Path) -> None:
    index = Index(FailingProvider(fixed_dir / "failing" / "index.db"))

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "ErrorScreen")
        await settle(pilot)

    assert snap_compare(AtdataApp(index), terminal_size=SIZE, run_before=run_before)
    index.close()
