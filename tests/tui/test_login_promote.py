"""Login and promotion by keyboard, against the real local PDS and PLC (``pds_server``): no mocks.

The app runs with a config whose ``[atmosphere]`` points at the test PDS (handles resolve there,
DID documents come from the test PLC). Promotion results are checked by listing the records on
the PDS: every entry has exactly one schema, entry and label record, also after an interrupted
promotion was retried from the jobs panel.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from pathlib import Path

import pytest
from textual.css.query import NoMatches
from textual.widgets import Input

from atdata_core.atmosphere import AtmosphereClient
from atdata_core.atmosphere.lexicons import ENTRY, LABEL, SCHEMA
from atdata_core.config import load_config, session_path
from atdata_core.importers import import_into, open_source
from atdata_core.index import Index
from atdata_tui.app import AtdataApp
from atdata_tui.cli import main as cli_main
from atdata_tui.jobs import JobState
from atdata_tui.screens.entries import EntriesScreen
from atdata_tui.screens.login import LoginScreen
from atdata_tui.screens.promote import PromotePlanScreen
from atdata_tui.widgets.jobs import JobsPanel, JobsScreen
from atdata_tui.workers.index import IndexOptions


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pds_server) -> Path:
    """An app home whose config points the atmosphere at the test PDS and PLC."""
    if not pds_server.running:
        pds_server.start()
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(
        f'[atmosphere]\npds = "{pds_server.url}"\nplc = "{pds_server.plc_url}"\n'
    )
    monkeypatch.setenv("ATDATA_TUI_HOME", str(home))
    monkeypatch.delenv("ATDATA_TUI_CONFIG", raising=False)
    monkeypatch.delenv("ATDATA_APP_PASSWORD", raising=False)
    return home


def make_app(home: Path, *, readonly: bool = False) -> AtdataApp:
    return AtdataApp(
        options=IndexOptions(index_path=str(home / "data" / "index.db"), readonly=readonly),
        config=load_config(),
    )


def client() -> AtmosphereClient:
    return AtmosphereClient.from_config(load_config())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def holds(predicate) -> bool:
    """``predicate()``, false while the widgets it looks at are not mounted yet."""
    try:
        return bool(predicate())
    except NoMatches:
        return False


async def until(pilot, predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not holds(predicate):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def make_entries(home: Path, tmp_path: Path, names: list[str], rows: int = 40) -> None:
    index = Index(path=home / "data" / "index.db")
    for name in names:
        src = tmp_path / f"{name}.jsonl"
        src.write_text(
            "".join(json.dumps({"text": f"{name} {i}", "n": i}) + "\n" for i in range(rows))
        )
        import_into(index, open_source(src), name=name, maxcount=max(1, rows // 2))
    index.close()


def records(did: str, collection: str) -> list:
    return list(client().iter_records(did, collection))


# --- login -----------------------------------------------------------------------------------------


async def login_modal(pilot, app: AtdataApp) -> LoginScreen:
    app.action_login()
    await pilot.pause(0.1)
    assert isinstance(app.screen, LoginScreen)
    return app.screen


async def submit(pilot, app: AtdataApp, screen: LoginScreen) -> str:
    """Press enter and wait for the login job; the modal's error text (or "" on success)."""
    before = len(app.jobs.jobs)
    await pilot.press("enter")
    await until(pilot, lambda: len(app.jobs.jobs) > before)
    job = app.jobs.jobs[-1]
    await app.jobs.wait(job.id, 30)
    await pilot.pause(0.1)
    if app.screen is not screen:
        return ""
    return str(screen.query_one("#login-error").render())


async def test_login_bad_password_unreachable_unknown_then_good(home: Path, pds_account) -> None:
    app = make_app(home)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await login_modal(pilot, app)
        await pilot.press(*pds_account.handle)
        status = screen.query_one("#login-pds-status")
        # the PDS comes from the handle's DID document, looked up as the handle is typed
        await until(pilot, lambda: "lives on" in str(status.render()))
        assert pds_account.did in str(status.render())
        assert app.session_handle is None
        password = screen.query_one("#login-password", Input)
        assert password.password  # masked
        password.focus()
        await pilot.press(*"not-the-password")
        error = await submit(pilot, app, screen)
        assert "wrong handle or app password" in error
        assert app.screen is screen and app.session_handle is None
        assert password.value == ""  # cleared for another try

        # an unreachable PDS, entered by hand
        pds = screen.query_one("#login-pds", Input)
        pds.value = f"http://127.0.0.1:{closed_port()}"
        password.value = pds_account.password
        error = await submit(pilot, app, screen)
        assert "cannot reach the PDS" in error
        assert app.screen is screen

        # an unknown handle
        pds.value = ""
        handle = screen.query_one("#login-handle", Input)
        handle.value = "nobody-here.test"
        password.value = pds_account.password
        error = await submit(pilot, app, screen)
        assert "unknown handle" in error

        # and the right one
        handle.value = pds_account.handle
        password.value = pds_account.password
        assert await submit(pilot, app, screen) == ""
        await until(pilot, lambda: app.session_handle == pds_account.handle)
        assert not isinstance(app.screen, LoginScreen)
        status_bar = app.screen.query_one("#status-bar")
        await until(pilot, lambda: f"@{pds_account.handle}" in str(status_bar.render()))

    path = session_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = path.read_text()
    assert pds_account.password not in saved and "not-the-password" not in saved
    assert pds_account.did in saved


async def test_saved_session_resumes_on_start(home: Path, pds_account) -> None:
    client().login(pds_account.handle, pds_account.password)
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.session_handle == pds_account.handle)
        bar = app.screen.query_one("#status-bar")
        await until(pilot, lambda: f"@{pds_account.handle}" in str(bar.render()))
        # log out from the action the palette offers
        assert any(c.title == "Log out" for c in app.app_commands())
        app.action_logout()
        await until(pilot, lambda: app.session_handle is None)
        assert not session_path().exists()
        assert any(c.title == "Log in" for c in app.app_commands())


async def test_cli_login_logout(home: Path, pds_account, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ATDATA_APP_PASSWORD", "wrong")
    assert cli_main(["login", pds_account.handle]) == 1
    assert "wrong handle or app password" in capsys.readouterr().err
    monkeypatch.setenv("ATDATA_APP_PASSWORD", pds_account.password)
    assert cli_main(["login", "nobody-at-all.test"]) == 1
    assert "unknown handle" in capsys.readouterr().err
    assert cli_main(["login", pds_account.handle]) == 0
    out = capsys.readouterr().out
    assert f"@{pds_account.handle}" in out and pds_account.password not in out
    assert pds_account.password not in session_path().read_text()
    assert cli_main(["logout"]) == 0
    assert not session_path().exists()


# --- promotion -------------------------------------------------------------------------------------


async def open_plan(pilot, app: AtdataApp, marks: int) -> PromotePlanScreen:
    await until(pilot, lambda: app.index is not None)
    app.open_entries("local")
    await until(pilot, lambda: isinstance(app.screen, EntriesScreen))
    screen = app.screen
    await until(pilot, lambda: screen.current_entry() is not None)
    for i in range(marks):
        if i:
            await pilot.press("down")
        await pilot.press("space")
    await pilot.pause(0.1)
    assert len(screen.marked_entries()) == marks
    await pilot.press("p")
    await until(pilot, lambda: isinstance(app.screen, (PromotePlanScreen, LoginScreen)))
    return app.screen


async def test_promote_two_marked_entries(home: Path, tmp_path: Path, pds_account) -> None:
    make_entries(home, tmp_path, ["alpha", "beta"])
    client().login(pds_account.handle, pds_account.password)
    app = make_app(home)
    async with app.run_test(size=(140, 40)) as pilot:
        plan = await open_plan(pilot, app, 2)
        assert isinstance(plan, PromotePlanScreen)
        await until(pilot, lambda: plan.items is not None)
        text = plan.plan_text()
        for name in ("alpha", "beta"):
            assert f"@{pds_account.handle}/{name}" in text
            assert f"{name.capitalize()}Sample@1.0.0" in text
        assert text.count("schema  will create") == 2
        assert text.count("entry   will create") == 2 and text.count("label   will create") == 2
        assert text.count("upload      data-00000") == 4  # two shards each, as blobs
        assert "2 of 2 shard(s) to upload" in text and " KB" in text
        assert f"at://{pds_account.did}/{ENTRY}/" in text
        assert records(pds_account.did, ENTRY) == []  # planning writes nothing
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        jobs = [j for j in app.jobs.jobs if j.kind == "promote"]
        assert len(jobs) == 2
        for job in jobs:
            await app.jobs.wait(job.id, 60)
            assert job.state is JobState.DONE, job.error
            assert job.result_text.startswith(f"at://{pds_account.did}/{ENTRY}/")
        await pilot.pause(0.1)
        panel = app.screen.query_one(JobsPanel)
        panel.select_job(jobs[0].id)
        await pilot.press("y")
        assert app.clipboard == jobs[0].result_text
    entries = records(pds_account.did, ENTRY)
    assert sorted(r.value["name"] for r in entries) == ["alpha", "beta"]
    assert sorted(r.uri for r in entries) == sorted(j.result_text for j in jobs)
    assert len(records(pds_account.did, LABEL)) == 2
    assert len(records(pds_account.did, SCHEMA)) == 2
    index = Index(path=home / "data" / "index.db")
    assert index.resolve_entry("alpha").metadata["atproto"]["status"] == "done"
    index.close()


async def test_promote_offers_login_first(home: Path, tmp_path: Path, pds_account) -> None:
    make_entries(home, tmp_path, ["solo"], rows=6)
    app = make_app(home)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_plan(pilot, app, 1)
        await until(pilot, lambda: isinstance(app.screen, LoginScreen))
        login = app.screen
        assert "log in first" in str(login.query_one("#login-reason").render())
        login.query_one("#login-handle", Input).value = pds_account.handle
        login.query_one("#login-password", Input).value = pds_account.password
        login.query_one("#login-password", Input).focus()
        await submit(pilot, app, login)
        await until(pilot, lambda: isinstance(app.screen, PromotePlanScreen))
        plan = app.screen
        await until(pilot, lambda: plan.items is not None)
        assert f"@{pds_account.handle}/solo" in plan.plan_text()
        await pilot.press("escape")  # cancel: nothing is written
        await pilot.pause(0.1)
        assert not isinstance(app.screen, PromotePlanScreen)
    assert screen is not None
    assert records(pds_account.did, ENTRY) == []


async def test_promote_readonly_is_refused(home: Path, tmp_path: Path, pds_account) -> None:
    make_entries(home, tmp_path, ["ro"], rows=4)
    app = make_app(home, readonly=True)
    async with app.run_test() as pilot:
        await until(pilot, lambda: app.index is not None)
        app.open_entries("local")
        await until(pilot, lambda: isinstance(app.screen, EntriesScreen))
        await until(pilot, lambda: app.screen.current_entry() is not None)
        await pilot.press("p")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, PromotePlanScreen)


async def test_cancel_mid_upload_then_retry_resumes_without_duplicates(
    home: Path, tmp_path: Path, pds_account
) -> None:
    """Cancel right after the first blob is uploaded; ``r`` in the jobs panel finishes the job."""
    make_entries(home, tmp_path, ["gamma"], rows=60)  # two shards → two blobs
    client().login(pds_account.handle, pds_account.password)
    app = make_app(home)
    async with app.run_test(size=(140, 40)) as pilot:
        plan = await open_plan(pilot, app, 1)
        await until(pilot, lambda: plan.items is not None)

        def interrupt(job) -> None:
            if job.kind == "promote" and job.attempts == 1 and "uploaded" in job.progress.detail:
                job.cancel()

        app.jobs.observers.append(interrupt)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        job = app.jobs.jobs[-1]
        await app.jobs.wait(job.id, 60)
        assert job.state is JobState.CANCELLED
        assert records(pds_account.did, ENTRY) == []  # stopped before the entry record
        assert len(records(pds_account.did, SCHEMA)) == 1
        app.screen.query_one(JobsPanel).select_job(job.id)
        await pilot.press("r")
        await until(pilot, lambda: job.attempts == 2)
        await app.jobs.wait(job.id, 60)
        assert job.state is JobState.DONE, job.error
        assert any("resumed" in line for line in job.log)
    assert len(records(pds_account.did, SCHEMA)) == 1
    entries = records(pds_account.did, ENTRY)
    assert [e.uri for e in entries] == [job.result_text]
    assert len(entries[0].value["storage"]["blobs"]) == 2
    assert len(records(pds_account.did, LABEL)) == 1


async def test_pds_outage_fails_then_retry_succeeds(
    home: Path, tmp_path: Path, pds_account, pds_server
) -> None:
    """A real failure: the PDS goes down after planning; ``r`` after it is back resumes."""
    make_entries(home, tmp_path, ["delta"], rows=8)
    client().login(pds_account.handle, pds_account.password)
    app = make_app(home)
    try:
        async with app.run_test(size=(140, 40)) as pilot:
            plan = await open_plan(pilot, app, 1)
            await until(pilot, lambda: plan.items is not None)
            pds_server.stop()
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, JobsScreen))
            job = app.jobs.jobs[-1]
            await app.jobs.wait(job.id, 60)
            assert job.state is JobState.FAILED
            assert "cannot reach" in (job.error or "") or "unreachable" in (job.error or "")
            pds_server.start_pds()
            app.screen.query_one(JobsPanel).select_job(job.id)
            await pilot.press("r")
            await until(pilot, lambda: job.attempts == 2)
            await app.jobs.wait(job.id, 60)
            assert job.state is JobState.DONE, job.error
    finally:
        if not pds_server.running:
            pds_server.start_pds()
    assert len(records(pds_account.did, ENTRY)) == 1
    assert len(records(pds_account.did, LABEL)) == 1
    assert len(records(pds_account.did, SCHEMA)) == 1


def test_cli_promote_dry_run_then_execute(home: Path, tmp_path: Path, pds_account, capsys) -> None:
    make_entries(home, tmp_path, ["epsilon"], rows=6)
    index_flag = ["--index", str(home / "data" / "index.db")]
    assert cli_main(["promote", "epsilon", *index_flag]) == 1
    assert "not logged in" in capsys.readouterr().err
    client().login(pds_account.handle, pds_account.password)
    assert cli_main(["promote", "epsilon", "--dry-run", *index_flag]) == 0
    out = capsys.readouterr().out
    assert "will create" in out and f"@{pds_account.handle}/epsilon" in out
    assert records(pds_account.did, ENTRY) == []
    assert cli_main(["promote", "epsilon", *index_flag]) == 0
    uri = capsys.readouterr().out.strip().splitlines()[-1]
    assert uri.startswith(f"at://{pds_account.did}/{ENTRY}/")
    assert cli_main(["promote", "epsilon", *index_flag]) == 0  # again: nothing new
    assert capsys.readouterr().out.strip().splitlines()[-1] == uri
    assert [r.uri for r in records(pds_account.did, ENTRY)] == [uri]
    assert os.environ.get("ATDATA_APP_PASSWORD") is None
