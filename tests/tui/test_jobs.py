"""The job manager and the jobs panel, driven by Pilot in the real app.

Jobs here are small functions with controllable steps (events), so every state is reached on
purpose: queued, running, done, failed, cancelled, retried. The quit confirmation is checked with
a job that keeps running until it is cancelled.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import DataTable

from atdata_core.errors import AtdataError, CancelledError
from atdata_core.index import Index
from atdata_tui.app import AtdataApp
from atdata_tui.jobs import (
    MAX_UPDATES_PER_S,
    JobManager,
    JobProgress,
    JobState,
    JobUpdated,
    human_bytes,
    human_duration,
    human_rate,
)
from atdata_tui.widgets.jobs import ConfirmQuitScreen, JobDetailScreen, JobsPanel, JobsScreen
from atdata_tui.workers.index import IndexOptions


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AtdataApp:
    monkeypatch.setenv("ATDATA_TUI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ATDATA_TUI_CONFIG", raising=False)
    index = Index(path=tmp_path / "home" / "data" / "index.db")
    return AtdataApp(index, options=IndexOptions())


def holds(predicate) -> bool:
    """``predicate()``, false while the widgets it looks at are not mounted yet."""
    try:
        return bool(predicate())
    except NoMatches:
        return False


async def until(pilot, predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not holds(predicate):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def gated(gate: threading.Event, result: str = "ok"):
    """A job that reports some progress, then waits for ``gate`` (or its cancellation)."""

    def run(ctx):
        ctx.report(10, 100, unit="samples", samples=10, bytes=1000, detail="step 1", force=True)
        while not gate.wait(0.01):
            ctx.check()
        ctx.report(100, 100, samples=100, bytes=10_000, force=True)
        ctx.set_result_text(result)
        return result

    return run


async def test_job_lifecycle_done_failed_cancelled(app: AtdataApp) -> None:
    async with app.run_test(size=(120, 36)) as pilot:
        assert isinstance(app.jobs, JobManager)
        gate = threading.Event()
        job = app.jobs.submit("write", "write demo", gated(gate, "demo"))
        await until(pilot, lambda: job.state is JobState.RUNNING and job.progress.done == 10)
        await until(pilot, lambda: app.running_jobs == 1)
        assert job.progress.fraction == pytest.approx(0.1)
        gate.set()
        await app.jobs.wait(job.id)
        assert job.state is JobState.DONE and job.result == "demo" and job.result_text == "demo"
        assert job.progress.fraction == 1.0
        await until(pilot, lambda: app.running_jobs == 0)

        def boom(ctx):
            raise AtdataError("the store is full: free some space")

        failed = app.jobs.submit("write", "write boom", boom)
        await app.jobs.wait(failed.id)
        assert failed.state is JobState.FAILED
        assert failed.error == "the store is full: free some space"

        def bug(ctx):
            raise ZeroDivisionError("oops")

        crashed = app.jobs.submit("write", "write bug", bug)
        await app.jobs.wait(crashed.id)
        assert crashed.state is JobState.FAILED and crashed.error == "ZeroDivisionError: oops"
        assert app.screen_stack[0] is app.screen  # no crash, no error modal for a job failure

        stuck = app.jobs.submit("promote", "promote stuck", gated(threading.Event()))
        await until(pilot, lambda: stuck.state is JobState.RUNNING)
        assert stuck.cancel()
        await app.jobs.wait(stuck.id)
        assert stuck.state is JobState.CANCELLED
        assert not stuck.cancel()  # already finished


async def test_retry_reruns_the_same_function(app: AtdataApp) -> None:
    attempts = []

    def flaky(ctx):
        attempts.append(ctx.job.attempts)
        if len(attempts) == 1:
            raise AtdataError("PDS unreachable")
        return "at://did:plc:abc/science.alt.dataset.entry/1"

    async with app.run_test() as pilot:
        job = app.jobs.submit("promote", "promote flaky", flaky)
        await app.jobs.wait(job.id)
        assert job.state is JobState.FAILED
        assert job.retry()
        await app.jobs.wait(job.id)
        assert job.state is JobState.DONE and attempts == [1, 2]
        assert job.result_text.startswith("at://")
        assert not job.retry()  # done jobs are not retried
        assert "retry (attempt 2)" in job.log
        await pilot.pause()


async def test_queued_jobs_wait_for_a_slot_and_can_be_cancelled(app: AtdataApp) -> None:
    async with app.run_test() as pilot:
        gate = threading.Event()
        first = app.jobs.submit("promote", "promote one", gated(gate))
        second = app.jobs.submit("promote", "promote two", gated(gate))
        await until(pilot, lambda: first.state is JobState.RUNNING)
        await pilot.pause(0.2)
        assert second.state is JobState.QUEUED  # promotions run one at a time
        assert second.cancel()
        await app.jobs.wait(second.id)
        assert second.state is JobState.CANCELLED and second.attempts == 0
        gate.set()
        await app.jobs.wait(first.id)
        assert first.state is JobState.DONE


async def test_progress_is_throttled_and_collapsed(app: AtdataApp) -> None:
    """A job reporting as fast as it can reaches the UI at most ~10 times a second."""
    seen: list[int] = []

    class Counter(Widget):
        def on_job_updated(self, message: JobUpdated) -> None:
            seen.append(message.job_id)

    def flood(ctx):
        end = time.monotonic() + 1.0
        n = 0
        while time.monotonic() < end:
            n += 1
            ctx.report(n, None, samples=n)
        return n

    async with app.run_test() as pilot:
        counter = Counter()
        await app.screen.mount(counter)
        app.jobs.subscribe(counter)
        job = app.jobs.submit("write", "write flood", flood)
        await app.jobs.wait(job.id)
        await pilot.pause(0.2)
        assert job.result > 1000  # it really reported thousands of times
        # ≤10 progress posts per second, plus the state changes (queued, running, done).
        assert len(seen) <= MAX_UPDATES_PER_S * 1.0 + 5
        assert job.progress.rate is not None and job.progress.rate > 0


async def test_jobs_panel_keys_cancel_retry_copy_details(app: AtdataApp) -> None:
    calls = {"n": 0}
    gate = threading.Event()

    def fails_then_works(ctx):
        calls["n"] += 1
        if calls["n"] == 1:
            raise AtdataError("first attempt fails on purpose")
        ctx.set_result_text("at://did:plc:x/science.alt.dataset.entry/2")
        return "ok"

    async with app.run_test(size=(120, 36)) as pilot:
        running = app.jobs.submit("write", "write slow", gated(gate))
        failing = app.jobs.submit("promote", "promote retry-me", fails_then_works)
        await app.jobs.wait(failing.id)
        await pilot.press("J")
        assert isinstance(app.screen, JobsScreen)
        panel = app.screen.query_one(JobsPanel)
        table = panel.query_one(DataTable)
        assert table.row_count == 2
        text = "\n".join(
            " ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)
        )
        assert "write slow" in text and "first attempt fails on purpose" in text
        # retry the failed one
        panel.select_job(failing.id)
        await pilot.press("r")
        await app.jobs.wait(failing.id)
        assert failing.state is JobState.DONE
        await pilot.pause(0.1)
        await pilot.press("y")
        assert app.clipboard == "at://did:plc:x/science.alt.dataset.entry/2"
        # details
        await pilot.press("enter")
        assert isinstance(app.screen, JobDetailScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, JobsScreen)
        # cancel the running one with c (x works too)
        panel.select_job(running.id)
        await pilot.press("x")
        await app.jobs.wait(running.id)
        assert running.state is JobState.CANCELLED
        await pilot.pause(0.1)
        assert "cancelled" in " ".join(str(c) for c in table.get_row_at(0))
        await pilot.press("escape")
        assert not isinstance(app.screen, JobsScreen)


async def test_jobs_table_fits_80_columns(app: AtdataApp) -> None:
    """Over SSH at 80x24 the table drops a column instead of scrolling sideways."""
    async with app.run_test(size=(80, 24)) as pilot:
        gate = threading.Event()
        job = app.jobs.submit("write", "write a-rather-long-dataset-name", gated(gate))
        await until(pilot, lambda: job.state is JobState.RUNNING)
        await pilot.press("J")
        await pilot.pause(0.2)
        table = app.screen.query_one(JobsPanel).query_one(DataTable)
        assert [c.label.plain for c in table.columns.values()][1:] == [
            "job",
            "progress",
            "rate",
            "ETA",
            "result / error",
        ]
        assert table.virtual_size.width <= table.size.width
        gate.set()
        await app.jobs.wait(job.id)


async def test_quitting_with_a_job_running_asks_first(app: AtdataApp) -> None:
    async with app.run_test() as pilot:
        job = app.jobs.submit("write", "write long", gated(threading.Event()))
        await until(pilot, lambda: job.state is JobState.RUNNING)
        await pilot.press("q")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmQuitScreen)
        assert "write long" in str(app.screen.query_one("#quit-question").render())
        await pilot.press("n")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, ConfirmQuitScreen)
        assert app.is_running and job.state is JobState.RUNNING
        await pilot.press("q")
        await pilot.pause(0.1)
        await pilot.press("y")
        await until(pilot, lambda: job.state.finished)
        await pilot.pause(0.3)
        assert job.state is JobState.CANCELLED
    assert not app.is_running


async def test_quitting_without_jobs_does_not_ask(app: AtdataApp) -> None:
    async with app.run_test() as pilot:
        done = app.jobs.submit("write", "write quick", lambda ctx: "ok")
        await app.jobs.wait(done.id)
        await pilot.press("q")
        await pilot.pause(0.2)
    assert not app.is_running


def test_formatting_helpers() -> None:
    assert human_bytes(512) == "512 B" and human_bytes(1536) == "1.5 KB"
    assert human_duration(5) == "5s" and human_duration(125) == "2m05s"
    assert human_duration(3700) == "1h01m" and human_duration(None) == "-"
    assert human_rate(JobProgress(rate=31_234)) == "31k samples/s"
    assert human_rate(JobProgress(rate=2.5e6, unit="bytes")) == "2.4 MB/s"
    assert human_rate(JobProgress(rate=950), short=True) == "950/s"
    assert JobProgress(done=5, total=10).fraction == 0.5
    assert JobProgress(done=5).fraction is None


def test_job_context_outside_a_worker_checks_its_own_flag() -> None:
    class FakeApp:
        def post_message(self, _message) -> None:
            pass

    manager = JobManager(FakeApp())  # type: ignore[arg-type]
    from atdata_tui.jobs import Job, JobContext

    job = Job(1, "write", "t", lambda ctx: None, _manager=manager)
    ctx = JobContext(manager, job)
    assert not ctx.cancelled()
    job._cancel.set()
    with pytest.raises(CancelledError):
        ctx.check()


async def test_clear_finished_jobs(app: AtdataApp) -> None:
    async with app.run_test(size=(120, 36)) as pilot:
        gate = threading.Event()
        running = app.jobs.submit("write", "write keep", gated(gate))
        done = app.jobs.submit("write", "write gone", lambda ctx: "ok")
        await app.jobs.wait(done.id)
        await pilot.press("J")
        await pilot.pause(0.1)
        await pilot.press("delete")
        await pilot.pause(0.1)
        assert [j.title for j in app.jobs.jobs] == ["write keep"]
        assert app.screen.query_one(JobsPanel).query_one(DataTable).row_count == 1
        gate.set()
        await app.jobs.wait(running.id)
