"""SVG snapshots (120x36) of the login modal, the promotion plan, the jobs panel with a write in
progress, and the new-dataset screen.

Everything that changes between runs is pinned: the app's home is a fixed directory (the status
bar and the session note show its path), plans are built from fixed values (no PDS: DIDs and
record keys would differ), the job manager's clock is frozen and the job's rate and ETA are set
by hand, cursors do not blink, and the source file is read from a relative path.
Update with ``pytest tests/tui/test_snapshots_jobs.py --snapshot-update`` after checking the SVGs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import threading
from pathlib import Path

import pytest
from textual.widgets import Input
from textual.worker import WorkerCancelled, WorkerFailed

from atdata_core.atmosphere import PlannedBlob, PlannedRecord, PromotionPlan
from atdata_core.index import Index, IndexEntry
from atdata_tui.app import AtdataApp
from atdata_tui.jobs import JobState, JobUpdated
from atdata_tui.screens.promote import PromotePlanScreen
from atdata_tui.screens.write import NewDatasetScreen
from atdata_tui.widgets.jobs import JobsScreen
from atdata_tui.workers.index import IndexOptions
from atdata_tui.workers.promote import PlannedEntry

SIZE = (120, 36)
ROOT = Path("/tmp/atdata-tui-snapshots")
DID = "did:plc:abcdefghijklmnopqrstuvwx"
PDS = "https://pds.example.com"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> AtdataApp:
    shutil.rmtree(ROOT, ignore_errors=True)
    home = ROOT / "home"
    (home / "config").mkdir(parents=True)
    monkeypatch.setenv("ATDATA_TUI_HOME", str(home))
    monkeypatch.delenv("ATDATA_TUI_CONFIG", raising=False)
    monkeypatch.chdir(ROOT)
    index = Index(path=home / "data" / "index.db")
    app = AtdataApp(index, options=IndexOptions())
    yield app
    shutil.rmtree(ROOT, ignore_errors=True)


async def settle(pilot) -> None:
    """Wait for workers and animations, then stop every cursor from blinking."""
    await pilot.pause(0.3)
    for worker in list(pilot.app.workers):
        if worker.group == "jobs":
            continue  # jobs may run on purpose
        with contextlib.suppress(WorkerCancelled, WorkerFailed, TimeoutError):
            await asyncio.wait_for(worker.wait(), 10)
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause(0.1)


def test_login_modal(snap_compare, app: AtdataApp) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        # Over the (empty) jobs screen, so the snapshot is about this modal, not the first screen.
        app.push_screen(JobsScreen())
        await settle(pilot)
        app.action_login()
        await pilot.pause(0.2)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def _plan(name: str, schema_action: str, blobs: list[tuple[str, int, str]]) -> PlannedEntry:
    urls = [f"/data/shards/{name}/0123456789ab/{b[0]}" for b in blobs]
    entry = IndexEntry.create(name, f"atdata://local/schema/{name.title()}Sample@1.0.0", urls)
    schema = PlannedRecord(
        "schema",
        "science.alt.dataset.schema",
        f"{name.title()}Sample-1.0.0-0f1e2d3c4b5a6978",
        f"at://{DID}/science.alt.dataset.schema/{name.title()}Sample-1.0.0-0f1e2d3c4b5a6978",
        schema_action,  # type: ignore[arg-type]
        f"{name.title()}Sample@1.0.0",
    )
    rkey = {"mnist": "3lbq2xkzx7s2a", "captions": "3lbq2xm4kd52c"}[name]
    entry_rec = PlannedRecord(
        "entry",
        "science.alt.dataset.entry",
        rkey,
        f"at://{DID}/science.alt.dataset.entry/{rkey}",
        "create",
        name,
    )
    label = PlannedRecord(
        "label",
        "science.alt.dataset.label",
        rkey[:-1] + "z",
        f"at://{DID}/science.alt.dataset.label/{rkey[:-1]}z",
        "create",
        name,
    )
    plan = PromotionPlan(
        name=name,
        local_name=name,
        local_cid=entry.cid,
        did=DID,
        handle="alice.example.com",
        pds=PDS,
        storage="blobs",
        schema=schema,
        schema_name=f"{name.title()}Sample",
        schema_version="1.0.0",
        blobs=[
            PlannedBlob(url, size, "0" * 64, cid, "upload")
            for url, (_f, size, cid) in zip(urls, blobs, strict=True)
        ],
        entry=entry_rec,
        label=label,
        local_entry=entry,
    )
    return PlannedEntry(entry, plan)


def test_promotion_plan(snap_compare, app: AtdataApp) -> None:
    items = [
        _plan(
            "mnist",
            "create",
            [
                (
                    "data-000000.tar",
                    41_943_040,
                    "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
                ),
                (
                    "data-000001.tar",
                    12_582_912,
                    "bafkreiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354",
                ),
            ],
        ),
        _plan(
            "captions",
            "exists",
            [
                (
                    "data-000000.tar",
                    3_145_728,
                    "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
                )
            ],
        ),
    ]

    async def run_before(pilot) -> None:
        await settle(pilot)
        app.push_screen(PromotePlanScreen([i.entry for i in items], plans=items))
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_jobs_panel_with_a_write_in_progress(snap_compare, app: AtdataApp) -> None:
    release = threading.Event()

    def writing(ctx) -> str:
        ctx.report(
            61_440,
            200_000,
            unit="samples",
            samples=61_440,
            bytes=62_914_560,
            detail="6 shards written",
            force=True,
        )
        while not release.wait(0.02):
            if ctx.cancelled():
                break
        ctx.check()
        return "done"

    def failing(ctx) -> str:
        from atdata_core.errors import AtmosphereError

        raise AtmosphereError(
            "uploading shards: cannot reach https://pds.example.com: connection refused"
        )

    async def run_before(pilot) -> None:
        await settle(pilot)
        jobs = app.jobs
        jobs.clock = lambda: 1000.0
        done = jobs.submit(
            "promote",
            "promote captions",
            lambda ctx: f"at://{DID}/science.alt.dataset.entry/3lbq2xm4kd52c",
        )
        await jobs.wait(done.id)
        failed = jobs.submit("promote", "promote mnist", failing)
        await jobs.wait(failed.id)
        job = jobs.submit("write", "write mnist-train", writing)
        while job.progress.samples != 61_440:
            await pilot.pause(0.02)
        job.started = 992.0
        job.progress.rate = 7_680.0
        job.progress.eta = (200_000 - 61_440) / 7_680.0
        for j in (done, failed):
            j.started, j.finished = 990.0, 993.0
        app.push_screen(JobsScreen(select=job.id))
        await pilot.pause(0.2)
        for j in (done, failed, job):
            app.screen.query_one("JobsPanel").post_message(JobUpdated(j.id))
        await settle(pilot)
        assert job.state is JobState.RUNNING

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        release.set()


def test_new_dataset_screen(snap_compare, app: AtdataApp) -> None:
    (ROOT / "captions.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "text": f"a photo of a cat #{i}",
                    "width": 640,
                    "score": i / 4,
                    "tags": ["cat", "photo"],
                    "nsfw": None,
                }
            )
            + "\n"
            for i in range(40)
        )
    )

    async def run_before(pilot) -> None:
        await settle(pilot)
        app.push_screen(NewDatasetScreen("captions.jsonl"))
        await pilot.pause(0.1)
        screen = app.screen
        while screen.source is None:
            await pilot.pause(0.02)
        screen.query_one("#description", Input).value = "cat captions, 40 rows"
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
