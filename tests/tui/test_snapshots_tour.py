"""Snapshots for the screenshot tour that no other snapshot module takes: a large index filtered.

The million-entry index is the session fixture ``big_index_path``; it is reached through a
symlink at a fixed path so the status bar (which shows the index path) never changes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import pytest_textual_snapshot

from atdata_core.index import Index
from atdata_tui.app import AtdataApp

from .conftest import settle, wait_for
from .test_snapshots_browse import BrowseSnapshots  # same snapshot folder layout

FIXED = Path("/tmp/atdata-tui-snapshots-big")
SIZE = (120, 36)


@pytest.fixture(autouse=True)
def _snapshot_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytest_textual_snapshot, "SVGImageExtension", BrowseSnapshots)


@pytest.fixture
def big_index(big_index_path: Path) -> Any:
    shutil.rmtree(FIXED, ignore_errors=True)
    FIXED.mkdir(parents=True)
    (FIXED / "index.db").symlink_to(big_index_path)
    index = Index(path=FIXED / "index.db", readonly=True)
    yield index
    index.close()
    shutil.rmtree(FIXED, ignore_errors=True)


def test_million_entries_filtered(snap_compare: Any, big_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("slash")
        pilot.app.screen.query_one("#entries-filter").cursor_blink = False
        await pilot.press(*"99999")
        await wait_for(
            pilot, lambda: "match" in str(pilot.app.screen.query_one("#entries-count").render())
        )
        await settle(pilot)

    assert snap_compare(AtdataApp(big_index), terminal_size=SIZE, run_before=run_before)
