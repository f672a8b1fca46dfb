"""The "network" repository and the search screen, by keyboard, against the real atdata-app fed
from the real local PDS (datasets published by our promotion); failure modes against a down and a
hostile AppView. Keys are pressed in bursts, without waiting between them, as over SSH."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atdata_core.config import load_config
from atdata_tui.app import AtdataApp
from atdata_tui.screens.entry_detail import EntryDetailScreen
from atdata_tui.screens.error import ErrorScreen
from atdata_tui.screens.network import LensesScreen, NetworkSchemaScreen, VersionsScreen
from atdata_tui.screens.repositories import RepositoriesScreen
from atdata_tui.screens.search import SearchScreen
from atdata_tui.workers.index import NETWORK, IndexOptions
from tests.services import free_port
from tests.services.hostile_appview import HostileAppView

from .conftest import screen_text, wait_for
from .network_setup import Published, publish_datasets, write_config

SIZE = (120, 34)


def make_app(home: Path, **options: Any) -> AtdataApp:
    return AtdataApp(
        options=IndexOptions(index_path=str(home / "data" / "index.db"), **options),
        config=load_config(),
    )


def repositories(app: AtdataApp) -> RepositoriesScreen:
    screen = app.screen_stack[0]
    assert isinstance(screen, RepositoriesScreen)
    return screen


def counted(app: AtdataApp) -> bool:
    return repositories(app).counted


def network_row(app: AtdataApp) -> Any:
    return next((r for r in repositories(app).rows if r.name == NETWORK), None)


async def open_search(pilot: Any) -> SearchScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.index_state == "open", what="the index")
    await wait_for(pilot, lambda: isinstance(app.screen, RepositoriesScreen) and counted(app))
    await pilot.press("slash")
    await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen), what="the search screen")
    return app.screen  # type: ignore[return-value]


@pytest.fixture
def published(
    tmp_path: Path, pds_server: Any, pds_account: Any, appview: Any, isolated_home: Path
) -> Published:
    return publish_datasets(
        tmp_path, pds_server, pds_account, appview, isolated_home, versions=True
    )


async def test_search_open_preview_schema_lenses_versions_end_to_end(published: Published) -> None:
    from atdata_tui.screens.preview import PreviewScreen

    app = make_app(published.home)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.index_state == "open", what="the index")
        await wait_for(pilot, lambda: counted(app), what="the counts")
        row = network_row(app)
        assert row is not None and row.error is None and row.entries and row.entries >= 3
        assert "network" in screen_text(app) and "appview" in screen_text(app)

        # the network row opens the search screen; type a query and enter at once
        screen = await open_search(pilot)
        await pilot.press(*published.key, "enter")
        await wait_for(pilot, lambda: screen.total == 3, what="three results")
        text = screen_text(app)
        for name in ("sensor-readings", "sensor-calibration"):
            assert name in text
        assert "Reading@1.0.0" in text and "CC-BY-4.0" in text and "@" in text
        assert f"3 datasets match “{published.key}”" in text
        assert app.focused is screen.results

        # open the highlighted result: its details, with the author and where it was found
        entry = screen.current_entry()
        assert entry is not None and entry.at_uri in published.uris.values()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EntryDetailScreen))
        detail = screen_text(app)
        assert entry.at_uri in detail and f"@{published.handle}" in detail
        assert "Indexed by" in detail

        # preview streams real samples from the PDS blobs
        await pilot.press("escape", "v")
        await wait_for(pilot, lambda: isinstance(app.screen, PreviewScreen), what="preview")
        await wait_for(pilot, lambda: len(app.screen.samples) >= 5, what="samples", timeout=30)
        assert "reading 0" in screen_text(app)

        # schema, lenses, versions from the search results
        await pilot.press("escape", "s")
        await wait_for(pilot, lambda: isinstance(app.screen, NetworkSchemaScreen))
        await wait_for(pilot, lambda: app.screen.schema is not None, what="the schema")
        text = screen_text(app)
        assert "Reading@1.0.0" in text and "values" in text and "ndarray" in text
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LensesScreen))
        await wait_for(pilot, lambda: app.screen.lenses is not None, what="the lenses")
        assert "No lens reads from or writes to this schema" in screen_text(app)

        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen))
        # go to the first version of sensor-readings and ask for its versions
        rows = [screen.results.entry_at(i) for i in range(3)]
        target = next(i for i, e in enumerate(rows) if e and e.name == "sensor-readings")
        await pilot.press("g", *["j"] * target, "o")
        await wait_for(pilot, lambda: isinstance(app.screen, VersionsScreen))
        versions_screen = app.screen
        await wait_for(pilot, lambda: versions_screen.versions is not None, what="the versions")
        versions = versions_screen.versions
        assert versions.label == "sensor-readings"
        assert [v.version for v in versions.versions] == ["2", "1"]
        text = screen_text(app)
        assert "2 versions under label “sensor-readings”" in text
        # enter on the other version opens it
        await pilot.press("g", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EntryDetailScreen))
        assert app.screen.entry.at_uri == published.uris["sensor-readings-v2"]
        # refresh reads the entry again from the author's PDS
        await pilot.press("r")
        await wait_for(
            pilot,
            lambda: any("Entry reloaded" in str(n.message) for n in app._notifications),
            what="the entry read again from the PDS",
        )


async def test_search_as_you_type_and_escape_clears(published: Published) -> None:
    app = make_app(published.home)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_search(pilot)
        await wait_for(pilot, lambda: screen.total is not None or screen.more, what="recent")
        assert "most recently indexed" in screen_text(app)
        await pilot.press(*published.key, "space", *"calibration")
        await wait_for(pilot, lambda: screen.total == 1, what="one result")
        assert "sensor-calibration" in screen_text(app)
        await pilot.press("escape")  # clears the query: recent datasets again
        await wait_for(pilot, lambda: screen.results.name_filter is None, what="cleared")
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RepositoriesScreen), what="back")


async def test_no_appview_no_network_row(isolated_home: Path, pds_server: Any) -> None:
    write_config(isolated_home, pds_server, None)
    app = make_app(isolated_home)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: counted(app), what="the counts")
        assert network_row(app) is None
        await pilot.press("slash")
        await pilot.pause()
        assert isinstance(app.screen, RepositoriesScreen)
        assert not any(c.title == "Search the network" for c in app.app_commands())


async def test_appview_down_is_a_clear_message_not_a_crash(
    isolated_home: Path, pds_server: Any
) -> None:
    write_config(isolated_home, pds_server, f"http://127.0.0.1:{free_port()}", timeout=3)
    app = make_app(isolated_home)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: counted(app), what="the counts")
        row = network_row(app)
        assert row is not None and row.error and "cannot reach" in row.error
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="error window")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RepositoriesScreen))
        await pilot.press("slash", *"mnist", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, (SearchScreen, ErrorScreen)))
        await wait_for(
            pilot,
            lambda: any(isinstance(s, ErrorScreen) for s in app.screen_stack),
            what="the error window",
        )
        error = next(s for s in app.screen_stack if isinstance(s, ErrorScreen))
        await wait_for(pilot, lambda: app.screen is error, what="the error window on top")
        assert "Could not search the network" in screen_text(app)
        await pilot.press("escape")
        search = next(s for s in app.screen_stack if isinstance(s, SearchScreen))
        await wait_for(pilot, lambda: search.failed is not None, what="the reason")
        assert "Could not search the network" in screen_text(app)
        assert "r: try again" in screen_text(app) and "cannot reach" in screen_text(app)


async def test_a_hostile_appview_is_sanitized_and_counted(
    isolated_home: Path, pds_server: Any
) -> None:
    did = "did:plc:" + "a" * 24

    def entry(rkey: str, **changes: Any) -> dict[str, Any]:
        value: dict[str, Any] = {
            "uri": f"at://{did}/science.alt.dataset.entry/{rkey}",
            "did": did,
            "name": "fine-name",
            "schemaRef": f"at://{did}/science.alt.dataset.schema/S-1.0.0",
            "storage": {
                "$type": "science.alt.dataset.storageHttp",
                "shards": [{"url": "https://data.example/a.tar"}],
            },
            "createdAt": "2024-01-01T00:00:00.000Z",
            "license": "MIT\u202e",
        }
        value.update(changes)
        return value

    answer = {
        "entries": [
            entry("3kaaaaaaaaaa2", name="bidi\u202eevil"),
            entry("3kaaaaaaaaab2", name="esc\x1b[2Jevil"),
            entry("3kaaaaaaaaac2", storage={"$type": "science.alt.dataset.storageHttp",
                                            "shards": [{"url": "/etc/passwd"}]}),
        ]
    }  # fmt: skip
    with HostileAppView(
        {
            "science.alt.dataset.searchDatasets": answer,
            "science.alt.dataset.listEntries": answer,
            "science.alt.dataset.describeService": {"did": "did:web:evil", "recordCount": {}},
        }
    ) as hostile:
        write_config(isolated_home, pds_server, hostile.url, timeout=5)
        app = make_app(isolated_home)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_search(pilot)
            await wait_for(pilot, lambda: screen.total == 1, what="the one valid result")
            text = screen_text(app)
            assert "bidi\\u202eevil" in text and "\u202e" not in text and "\x1b" not in text
            assert "2 malformed left out" in text


async def test_appview_flag_without_config(
    isolated_home: Path, published: Published, appview: Any, pds_server: Any
) -> None:
    write_config(isolated_home, pds_server, None)
    app = make_app(isolated_home, appview=appview.url)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        await pilot.press(*published.key, "enter")
        await wait_for(pilot, lambda: screen.total == 3, what="three results")


async def test_key_bursts_never_break_the_search(published: Published) -> None:
    """A query, enter and the result keys in one burst (over SSH, before any answer is back):
    keys that arrive before the results find nothing to act on; screens opened and closed while
    their workers still run leave nothing behind. Then everything works."""
    app = make_app(published.home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.index_state == "open" and counted(app))
        await pilot.press("slash", *published.key, "enter", "v", "escape", "s", "escape", "l")
        await pilot.press("escape", "o", "escape", "j", "k", "s", "escape", "o", "escape")
        await pilot.pause(0.5)
        assert not any(isinstance(s, ErrorScreen) for s in app.screen_stack), screen_text(app)
        while not isinstance(app.screen, RepositoriesScreen):
            await pilot.press("escape")
        screen = await open_search(pilot)
        await pilot.press(*published.key, "enter")
        await wait_for(pilot, lambda: screen.total == 3, what="three results")
        # open and leave each result screen faster than it can load
        for key in ("s", "l", "o", "enter", "v"):
            await pilot.press(key, "escape")
        await pilot.pause(0.5)
        assert app.screen is screen
        assert not any(isinstance(s, ErrorScreen) for s in app.screen_stack), screen_text(app)
