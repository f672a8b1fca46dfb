"""SVG snapshots of the network screens: search results, a result's details, schema, lenses and
versions. The AppView's answers are recorded (``network_recording``), so the pictures never change;
the behaviour is tested against the real atdata-app in ``test_network_tui``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_textual_snapshot

from atdata_core.index import Index
from atdata_tui.app import AtdataApp
from atdata_tui.screens.search import SearchScreen
from atdata_tui.workers.index import IndexOptions

from .conftest import settle, wait_for
from .network_recording import URL, recorded_index
from .test_snapshots_browse import BrowseSnapshots, fixed_dir  # noqa: F401 (fixture)

SIZE = (120, 36)


@pytest.fixture(autouse=True)
def _snapshot_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytest_textual_snapshot, "SVGImageExtension", BrowseSnapshots)


@pytest.fixture
def network_index(fixed_dir: Path) -> Iterator[Index]:  # noqa: F811
    index = recorded_index(fixed_dir / "index.db")
    yield index
    index.close()


def make_app(index: Index) -> AtdataApp:
    return AtdataApp(index, options=IndexOptions(appview=URL))


async def _search(pilot: Any, query: str = "ocean", count: int = 5) -> SearchScreen:
    await settle(pilot)
    await pilot.press("slash")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SearchScreen))
    screen: SearchScreen = pilot.app.screen  # type: ignore[assignment]
    screen.query_one("#search-query").cursor_blink = False
    await pilot.press(*query, "enter")
    await wait_for(pilot, lambda: screen.total == count, what=f"{count} results")
    await wait_for(pilot, lambda: screen.described is not None, what="the AppView's size")
    await settle(pilot)
    return screen


def test_network_search(snap_compare: Any, network_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await _search(pilot)

    assert snap_compare(make_app(network_index), terminal_size=SIZE, run_before=run_before)


def test_network_search_80x24(snap_compare: Any, network_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await _search(pilot)

    assert snap_compare(make_app(network_index), terminal_size=(80, 24), run_before=run_before)


def test_network_entry_detail(snap_compare: Any, network_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await _search(pilot)
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(make_app(network_index), terminal_size=SIZE, run_before=run_before)


def test_network_schema(snap_compare: Any, network_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await _search(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "schema", None) is not None)
        await settle(pilot)

    assert snap_compare(make_app(network_index), terminal_size=SIZE, run_before=run_before)


def test_network_lenses(snap_compare: Any, network_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await _search(pilot)
        await pilot.press("l")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "lenses", None) is not None)
        await settle(pilot)

    assert snap_compare(make_app(network_index), terminal_size=SIZE, run_before=run_before)


def test_network_versions(snap_compare: Any, network_index: Index) -> None:
    async def run_before(pilot: Any) -> None:
        await _search(pilot)
        await pilot.press("o")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "versions", None) is not None)
        await settle(pilot)

    assert snap_compare(make_app(network_index), terminal_size=SIZE, run_before=run_before)
