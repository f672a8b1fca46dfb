"""Pilot tests of the browse screens: navigation, filter, help, palette, copy, keymap, errors, scale."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from atdata_core.config import Config
from atdata_core.index import Index
from atdata_tui.app import AtdataApp
from atdata_tui.commands import AtdataCommands
from atdata_tui.messages import JobsChanged
from atdata_tui.screens.entries import EntriesScreen
from atdata_tui.screens.entry_detail import EntryDetailScreen
from atdata_tui.screens.error import ErrorScreen
from atdata_tui.screens.help import HelpScreen
from atdata_tui.screens.repositories import RepositoriesScreen
from atdata_tui.screens.schemas import SchemasScreen
from atdata_tui.widgets.breadcrumbs import SEPARATOR
from atdata_tui.widgets.entry_list import EntryList
from atdata_tui.workers.index import IndexOptions

from .conftest import screen_text, settle, wait_for

SIZE = (120, 36)


def crumbs(*parts: str) -> str:
    return SEPARATOR.join(parts)


async def test_first_screen_lists_repositories_with_counts(demo_index: Index) -> None:
    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, RepositoriesScreen)
        text = screen_text(app)
        assert crumbs("atdata", "repositories") in text
        assert "local" in text and "sqlite" in text
        row = next(r for r in app.screen.rows if r.name == "local")
        assert (row.entries, row.schemas) == (5, 4)
        assert "not logged in" in text
        assert str(demo_index.provider.address) in text or "index.db" in text


async def test_navigate_repositories_entries_detail_and_back(demo_index: Index) -> None:
    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, EntriesScreen)
        text = screen_text(app)
        assert crumbs("atdata", "local", "entries") in text
        assert "5 entries" in text
        for name in ("demo-captions", "demo-images", "demo-numbers", "demo-signals"):
            assert name in text
        entries = app.screen.query_one(EntryList)
        assert entries.cursor == 0
        await pilot.press("j", "j")
        assert entries.cursor == 2
        await pilot.press("k")
        assert entries.current_entry is not None
        assert entries.current_entry.name == "demo-captions-v1"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, EntryDetailScreen)
        text = screen_text(app)
        entry = app.screen.entry
        assert crumbs("atdata", "local", "entries", "demo-captions-v1") in text
        assert entry.cid in text
        assert "Shards (2)" in text
        first_url = entry.data_urls[0]
        assert entry.checksums[first_url][:12] in text
        assert "24 samples" in text
        await pilot.press("escape")
        assert isinstance(app.screen, EntriesScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, RepositoriesScreen)
        await pilot.press("escape")  # the first screen stays
        assert isinstance(app.screen, RepositoriesScreen)


async def test_schemas_versions_fields_and_diff(demo_index: Index) -> None:
    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SchemasScreen)
        assert screen.rows[:2] == [("DemoCaption", "1.1.0"), ("DemoCaption", "1.0.0")]
        text = screen_text(app)
        assert "DemoCaption @ 1.1.0" in text  # the highlighted version's fields
        assert "list[str]" in text and "tokens" in text
        await pilot.press("space", "j", "space")
        await settle(pilot)
        text = screen_text(app)
        assert "Diff DemoCaption@1.0.0 → DemoCaption@1.1.0" in text
        assert "- source: str" in text
        assert "~ score: int → float" in text
        assert "+ tokens: list[str]" in text
        await pilot.press("escape")  # clears the marks first
        await settle(pilot)
        assert isinstance(app.screen, SchemasScreen) and not app.screen.marked
        await pilot.press("d")  # diff the highlighted (1.0.0) with the one before: none
        await pilot.press("k", "d")
        await settle(pilot)
        assert "Diff DemoCaption@1.0.0 → DemoCaption@1.1.0" in screen_text(app)


async def test_filter_as_you_type_and_escape_clears(demo_index: Index) -> None:
    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("slash", *"capt")
        await wait_for(
            pilot, lambda: "2 of 5 entries match “capt”" in screen_text(app), what="filter"
        )
        text = screen_text(app)
        assert "demo-captions-v1" in text and "demo-numbers" not in text
        await pilot.press("enter")  # keep the filter, back to the list
        assert isinstance(app.focused, EntryList)
        await pilot.press("escape")  # clears the filter (does not leave the screen)
        await wait_for(pilot, lambda: "5 entries" in screen_text(app), what="cleared filter")
        assert isinstance(app.screen, EntriesScreen)
        await pilot.press("slash", *"zzz")
        await wait_for(pilot, lambda: "0 of 5 entries" in screen_text(app), what="no match")
        assert "no entries match" in screen_text(app)


async def test_help_lists_the_bindings_of_the_current_screen(demo_index: Index) -> None:
    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for label in ("Filter", "Preview", "Mark", "Open", "Quit", "Down"):
            assert label in text, label
        await pilot.press("escape")
        assert isinstance(app.screen, EntriesScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, EntriesScreen)


async def test_palette_offers_commands_that_fit_the_state(
    empty_index: Index, demo_index: Index
) -> None:
    app = AtdataApp(empty_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.app_commands()]
        assert "Create demo datasets" in titles
        assert "Log in" in titles and "Log out" not in titles
        app.session_handle = "alice.test"
        titles = [c.title for c in app.app_commands()]
        assert "Log out" in titles and "Log in" not in titles
        app.session_handle = None  # (alice.test does not exist: counting her would fail)
        await settle(pilot)
        await pilot.pause(0.3)  # the failed recount's error window may arrive just after
        while isinstance(app.screen, ErrorScreen):
            await pilot.press("escape")
            await pilot.pause()
        # run one through the real palette
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"create demo")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.local_entries == 5, what="demo created")
        assert "Create demo datasets" not in [c.title for c in app.app_commands()]
    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        provider = AtdataCommands(app.screen)
        titles = [hit.text async for hit in provider.discover()]
        assert "Filter entries" in titles
        assert "Copy ref of demo-captions" in titles
        assert "Create demo datasets" not in titles
        assert "Clear filter" not in titles


async def test_copy_ref_and_cid_to_the_clipboard(demo_index: Index) -> None:
    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("y")
        assert app.clipboard == "demo-captions"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("c")
        assert app.clipboard == app.screen.entry.cid
        await pilot.press("y")
        assert app.clipboard == "demo-captions"


def test_copy_writes_osc52(demo_index: Index) -> None:
    """``copy_to_clipboard`` sends OSC 52 to the terminal (what makes it work over SSH)."""
    app = AtdataApp(demo_index)
    written: list[str] = []

    class Driver:
        def write(self, data: str) -> None:
            written.append(data)

    app._driver = Driver()  # type: ignore[assignment]
    app.copy_text("demo-numbers", "ref")
    assert written == ["\x1b]52;c;ZGVtby1udW1iZXJz\a"]


async def test_keys_remapped_from_config(demo_index: Index) -> None:
    config = Config(keys={"quit": "ctrl+q", "filter": "f", "nonsense": "x"})
    app = AtdataApp(demo_index, config=config)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running  # q no longer quits
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("f")
        assert app.focused is not None and app.focused.id == "entries-filter"
        await pilot.press("escape")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running


async def test_backend_failure_shows_the_error_modal_and_the_app_survives(
    failing_index: Index,
) -> None:
    app = AtdataApp(failing_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, RepositoriesScreen)  # counting works
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="error modal")
        text = screen_text(app)
        assert "Could not list the entries" in text
        assert "injected fault: the server is gone" in text
        assert "BackendUnavailableError" in text
        assert "Traceback" not in text  # our own errors explain themselves
        await pilot.press("c")
        assert "injected fault" in app.clipboard
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, EntriesScreen)
        text = screen_text(app)
        assert "! sqlite at" in text and "is unavailable" in text  # the list says why
        assert "Could not list the entries" in text
        await pilot.press("r")  # a second failure appends to one modal, never stacks
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="again")
        assert sum(isinstance(s, ErrorScreen) for s in app.screen_stack) == 1
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, RepositoriesScreen)
        assert app.is_running


async def test_an_index_that_cannot_open_is_reported_not_fatal(tmp_path: Path) -> None:
    options = IndexOptions(index_path=str(tmp_path / "missing" / "index.db"), readonly=True)
    app = AtdataApp(options=options)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="error modal")
        assert app.index_state == "failed"
        assert "Could not open the index" in screen_text(app)
        await pilot.press("escape")
        assert "could not be opened" in screen_text(app)
        assert app.is_running


async def test_app_opens_the_default_index_in_a_worker(isolated_home: Path) -> None:
    app = AtdataApp(options=IndexOptions())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.index_state == "open"
        assert app.index is not None
        assert str(isolated_home) in app.index_label
        text = screen_text(app)
        assert "This index is empty" in text
        await pilot.press("d")
        await wait_for(pilot, lambda: app.local_entries == 5, what="demo datasets")
        assert "This index is empty" not in screen_text(app)
        app.index.close()


async def test_demo_flag_creates_the_demo_then_opens(isolated_home: Path) -> None:
    app = AtdataApp(options=IndexOptions(), demo=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: app.local_entries == 5, what="demo datasets")
        assert app.index is not None
        app.index.close()


async def test_readonly_never_offers_to_write(empty_index: Index) -> None:
    app = AtdataApp(empty_index, options=IndexOptions(readonly=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "read-only" in screen_text(app)
        assert "Create demo datasets" not in [c.title for c in app.app_commands()]
        await pilot.press("d")
        await settle(pilot)
        assert app.local_entries == 0


async def test_status_bar_follows_login_and_jobs(demo_index: Index) -> None:
    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.session_handle = "alice.test"
        app.post_message(JobsChanged(running=2))
        await pilot.pause()
        await pilot.pause()
        text = screen_text(app)
        assert "@alice.test" in text
        assert "2 jobs running" in text


async def test_marked_entries_hook_for_promote(demo_index: Index) -> None:
    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("space", "j", "space")  # marks 0, skips to 2 then marks it
        screen = app.screen
        assert isinstance(screen, EntriesScreen)
        names = [e.name for e in screen.marked_entries()]
        assert names == ["demo-captions", "demo-images"]
        assert "2 marked" in screen_text(app)
        await pilot.press("k", "space")  # unmark demo-images
        assert [e.name for e in screen.marked_entries()] == ["demo-captions"]


async def test_preview_is_pushed_from_entries_and_detail(demo_index: Index) -> None:
    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("v")
        await pilot.pause()
        assert type(app.screen).__name__ == "PreviewScreen"
        app.pop_screen()
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "PreviewScreen"


async def test_verify_checksums_from_the_detail_screen(demo_index: Index) -> None:
    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("V")
        await settle(pilot)
        await wait_for(pilot, lambda: "all shards match" in screen_text(app), what="verify")


async def test_works_in_80x24(demo_index: Index) -> None:
    app = AtdataApp(demo_index)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        lines = screen_text(app).splitlines()
        assert len(lines) == 24
        header = next(line for line in lines if "Name" in line)
        assert "Samples" in header and "Size" in header
        assert "demo-captions-v1" in "\n".join(lines)
        assert lines[-2].lstrip().startswith("sqlite")


async def test_million_entries_open_at_once_and_jump_to_the_end(big_index_path: Path) -> None:
    index = Index(path=big_index_path)
    app = AtdataApp(index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        started = time.monotonic()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "dataset-0000000" in screen_text(app), what="first rows")
        first_rows = time.monotonic() - started
        assert "1,000,000 entries" in screen_text(app)
        entries = app.screen.query_one(EntryList)
        assert entries.row_count == 1_000_000
        assert len(entries._pages) <= 4  # never all the rows
        started = time.monotonic()
        await pilot.press("G")
        await wait_for(pilot, lambda: "dataset-0999999" in screen_text(app), what="last row")
        jump = time.monotonic() - started
        assert entries.cursor == 999_999
        assert entries.current_entry is not None
        assert entries.current_entry.name == "dataset-0999999"
        await pilot.press("pageup", "k")
        await wait_for(pilot, lambda: "…" not in screen_text(app), what="rows after pageup")
        await pilot.press("g")
        await wait_for(pilot, lambda: "dataset-0000000" in screen_text(app), what="back to top")
        assert entries.cursor == 0
        # generous bounds (shared CI machines); the benchmark measures the real numbers
        assert first_rows < 5.0 and jump < 5.0
    index.close()


@pytest.mark.parametrize("no_color", [True, False])
async def test_monochrome_and_256_colours_render(
    demo_index: Index, monkeypatch: pytest.MonkeyPatch, no_color: bool
) -> None:
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    app = AtdataApp(demo_index)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.no_color is no_color
        assert "demo-numbers" in screen_text(app)


async def test_promoted_entries_show_their_at_uri(demo_index: Index) -> None:
    uri = "at://did:plc:abcdefghijklmnopqrstuvwx/science.alt.dataset.entry/3kabc"
    entry = demo_index.resolve_entry("demo-numbers")
    demo_index.update_metadata(entry, {"atproto": {"entry_uri": uri}})
    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        line = next(line for line in screen_text(app).splitlines() if "demo-numbers" in line)
        assert line.rstrip().endswith("✓")
        await pilot.press("j", "j", "j", "enter")
        await settle(pilot)
        assert "✓ " + uri in screen_text(app)
        provider = AtdataCommands(app.screen)
        assert "Copy at:// URI" in [hit.text async for hit in provider.discover()]


async def test_handle_browses_published_datasets_read_only(
    tmp_path: Path, pds_server: Any, pds_account: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--handle``: someone's datasets on a real (local) PDS, listed through the atmosphere."""
    from atdata_core.atmosphere import AtmosphereBackend, AtmosphereClient
    from atdata_tui.demo import DemoNumbers

    def client(session_file: Path | None) -> AtmosphereClient:
        return AtmosphereClient(
            session_file=session_file,
            plc=pds_server.plc_url,
            handle_resolver=pds_server.url,
            timeout=20.0,
        )

    publisher = client(tmp_path / "publisher" / "session.json")
    publisher.login(pds_account.handle, pds_account.password)
    local = Index(path=tmp_path / "pub" / "index.db", atmosphere=AtmosphereBackend(publisher))
    samples = [
        DemoNumbers(index=i, value=i / 2, even=i % 2 == 0, label=f"n{i}", meta={}, history=[i])
        for i in range(6)
    ]
    local.write(samples, name="shared-numbers", maxcount=3, description="shared")
    uri = local.promote_entry("shared-numbers")
    local.close()

    reader = Index(
        path=tmp_path / "reader" / "index.db", atmosphere=AtmosphereBackend(client(None))
    )
    options = IndexOptions(handle=f"@{pds_account.handle}", readonly=True)
    app = AtdataApp(reader, options=options)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, EntriesScreen), what="entries")
        await wait_for(pilot, lambda: "shared-numbers" in screen_text(app), what="the dataset")
        text = screen_text(app)
        assert crumbs("atdata", f"@{pds_account.handle}", "entries") in text
        assert "1 entries" in text and "read-only" in text
        await pilot.press("y")
        assert app.clipboard == uri
        await pilot.press("enter")
        await settle(pilot)
        assert uri in screen_text(app)
        await pilot.press("escape", "escape")
        await settle(pilot)
        row = next(r for r in app.screen.rows if r.is_atmosphere)
        assert row.entries == 1 and row.label == f"@{pds_account.handle}"
    reader.close()
    # the headless CLI, configured for this PDS through --config
    from atdata_tui import cli

    config = tmp_path / "atmo.toml"
    config.write_text(f'[atmosphere]\npds = "{pds_server.url}"\nplc = "{pds_server.plc_url}"\n')
    capsys.readouterr()
    code = cli.main(["ls", f"@{pds_account.handle}", "--json", "--config", str(config)])
    listing = json.loads(capsys.readouterr().out)
    assert code == 0 and listing["total"] == 1
    assert listing["entries"][0]["name"] == "shared-numbers"
    assert listing["entries"][0]["ref"] == uri


@pytest.mark.parametrize("backend", ["redis", "postgres"])
async def test_team_index_on_a_real_server(
    request: pytest.FixtureRequest, backend: str, isolated_home: Path
) -> None:
    """``--redis URL`` / ``--postgres DSN``: the same screens over a team index."""
    if backend == "redis":
        options = IndexOptions(redis=request.getfixturevalue("redis_url"))
    else:
        options = IndexOptions(postgres=request.getfixturevalue("postgres_dsn"))
    app = AtdataApp(options=options, demo=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: app.local_entries == 5, what="demo datasets", timeout=60)
        assert app.index_label.startswith(backend)
        assert backend in screen_text(app)
        await pilot.press("enter")
        await settle(pilot)
        assert "5 entries" in screen_text(app)
        await pilot.press("slash", *"sig")
        await wait_for(pilot, lambda: "1 of 5 entries" in screen_text(app), what="filter")
        await pilot.press("enter", "enter")
        await settle(pilot)
        assert "demo-signals" in screen_text(app) and "Shards (2)" in screen_text(app)
        assert app.index is not None
        app.index.close()


async def test_redis_down_is_an_error_window_not_a_crash(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    app = AtdataApp(options=IndexOptions(redis=f"redis://127.0.0.1:{port}/0"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(
            pilot, lambda: isinstance(app.screen, ErrorScreen), what="error modal", timeout=60
        )
        text = screen_text(app)
        assert "redis" in text.lower() and "unavailable" in text.lower()
        assert "Traceback" not in text
        await pilot.press("escape")
        await pilot.press("r")  # try again: still down, still no crash
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="again")
        assert app.is_running


async def test_named_repositories_and_s3_store_from_the_config(
    tmp_path: Path, demo_index: Index
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[repos.lab]\npath = "{demo_index.provider.address}"\n'
        '[repos.team]\npath = "' + str(tmp_path / "team" / "index.db") + '"\n'
        'store = "s3"\nbucket = "team-datasets"\nendpoint = "http://127.0.0.1:9"\n'
        'region = "us-east-1"\naccess_key = "AK"\nsecret_key = "SK"\n'
        '[keys]\nquit = "ctrl+q"\n'
    )
    options = IndexOptions(index_path=str(tmp_path / "main" / "index.db"), config_path=str(config))
    app = AtdataApp(options=options)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RepositoriesScreen)
        rows = {r.name: r for r in screen.rows}
        assert set(rows) == {"local", "lab", "team"}
        assert rows["lab"].entries == 5 and rows["team"].store == "s3"
        assert app.index is not None and app.index.repos["team"].data_store.kind == "s3"
        await pilot.press("j")  # lab
        await pilot.press("enter")
        await settle(pilot)
        assert crumbs("atdata", "lab", "entries") in screen_text(app)
        await pilot.press("y")
        assert app.clipboard == "lab/demo-captions"
        await pilot.press("q")  # remapped by [keys] in that config
        await pilot.pause()
        assert app.is_running
        app.index.close()


async def test_the_demo_button_works_from_the_keyboard(empty_index: Index) -> None:
    from textual.widgets import Button

    app = AtdataApp(empty_index)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "This index is empty" in screen_text(app)
        await pilot.press("tab")
        assert isinstance(app.focused, Button)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.local_entries == 5, what="demo datasets")
        await pilot.press("shift+tab")  # back on the table (the button is gone)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, EntriesScreen)


async def test_login_adds_the_atmosphere_repository(demo_index: Index) -> None:
    from atdata_tui.messages import SessionChanged

    app = AtdataApp(demo_index)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RepositoriesScreen)
        assert [r.name for r in screen.rows] == ["local"]
        app.post_message(SessionChanged("alice.test"))
        await wait_for(pilot, lambda: len(screen.rows) == 2, what="the atmosphere row")
        assert screen.rows[1].label == "@alice.test"
        assert "@alice.test" in screen_text(app)
        app.post_message(SessionChanged(None))
        await wait_for(pilot, lambda: len(screen.rows) == 1, what="logged out")


async def test_a_broken_config_is_reported_and_the_index_still_opens(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[repos.x]\nunknown_key = 1\n")
    options = IndexOptions(index_path=str(tmp_path / "i" / "index.db"), config_path=str(config))
    app = AtdataApp(options=options)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="error modal")
        assert "the config was not used" in screen_text(app)
        assert "unknown keys" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert app.index_state == "open"
        assert app.index is not None
        app.index.close()
