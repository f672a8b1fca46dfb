"""The UI stays responsive while a write job runs: event-loop stalls during a 200k-sample write.

Target (DESIGN.md): the event loop is never blocked more than 50 ms while workers write shards
(no frame can be drawn while it is blocked). The real app runs headless (``run_test``) with the
jobs screen open, so the panel repaints from the job's progress messages; a timer on the event
loop fires every 10 ms and records how late each call is. The job is a real write: a 200k-row
JSON Lines file imported through ``Index.write`` into a SQLite index and a disk store.

Baseline, same run, same data: the same write called directly on the event loop (what a naive
app would do in an ``on_key`` handler): the loop is then stalled for the whole write. Also
reported: how many progress messages reached the UI per second (target ≤10 per job) and the
write's throughput inside the app next to the same import run headless (the cost of sharing
the GIL with the UI).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from atdata_tui.jobs import MAX_UPDATES_PER_S
from benchmarks.common import Row, make_row

TARGET_STALL_MS = 50.0
TICK = 0.010
IDLE_SECONDS = 2.0


def _make_source(path: Path, n: int) -> None:
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"text": f"caption number {i}", "n": i, "score": i / 7}) + "\n")


class LatenessProbe:
    """A callback every ``TICK`` seconds on the event loop; records how late each one ran."""

    def __init__(self) -> None:
        self.lateness: list[float] = []
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time() + TICK
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self.lateness.append(now - self._due)
        self._due = now + TICK
        self._handle = self._loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    @property
    def max_ms(self) -> float:
        return 1000 * max(self.lateness, default=0.0)

    @property
    def p99_ms(self) -> float:
        if len(self.lateness) < 2:
            return self.max_ms
        return 1000 * statistics.quantiles(self.lateness, n=100)[98]


async def _in_app(root: Path, source_path: Path, *, on_loop: bool) -> dict[str, Any]:
    """Run the write in the app (as a job, or blocking the loop) and measure the loop."""
    from textual.widget import Widget

    from atdata_core.importers import open_source
    from atdata_core.index import Index
    from atdata_tui.app import AtdataApp
    from atdata_tui.jobs import JobUpdated
    from atdata_tui.screens.write import start_write_job
    from atdata_tui.widgets.jobs import JobsScreen
    from atdata_tui.workers.index import IndexOptions
    from atdata_tui.workers.write import WriteRequest, run_write

    index = Index(path=root / "index.db")
    app = AtdataApp(index, options=IndexOptions())
    source = open_source(source_path)
    request = WriteRequest(name="onloop" if on_loop else "job", maxcount=20_000)
    probe = LatenessProbe()
    idle = LatenessProbe()
    seen: list[int] = []

    class Counter(Widget):
        """Counts the progress messages that reach the UI (what the panel repaints from)."""

        def on_job_updated(self, message: JobUpdated) -> None:
            seen.append(message.job_id)

    async with app.run_test(size=(120, 36)) as pilot:
        app.push_screen(JobsScreen())
        await pilot.pause(1.0)  # let start-up work (counting repositories…) finish
        counter = Counter()
        await app.screen.mount(counter)
        app.jobs.subscribe(counter)
        idle.start()  # the noise floor: the same app, nothing running
        await pilot.pause(IDLE_SECONDS)
        idle.stop()
        probe.start()
        await pilot.pause(0.1)
        t0 = time.perf_counter()
        if on_loop:
            run_write(index, source, request)
            seconds = time.perf_counter() - t0
            await pilot.pause(0.1)
        else:
            job = start_write_job(app, source, request)
            await app.jobs.wait(job.id, timeout=600)
            seconds = time.perf_counter() - t0
            if job.error:
                raise RuntimeError(job.error)
            posts = job.progress_posts
            await pilot.pause(0.2)
        probe.stop()
        handled = len(seen)
        if on_loop:
            posts = 0
    index.close()
    return {
        "seconds": seconds,
        "max_ms": probe.max_ms,
        "p99_ms": probe.p99_ms,
        "ticks": len(probe.lateness),
        "handled": handled,
        "posts": posts,
        "idle_max_ms": idle.max_ms,
        "idle_p99_ms": idle.p99_ms,
    }


def _headless(root: Path, source_path: Path) -> float:
    from atdata_core.importers import import_into, open_source
    from atdata_core.index import Index

    index = Index(path=root / "headless.db")
    t0 = time.perf_counter()
    import_into(index, open_source(source_path), name="headless", maxcount=20_000)
    seconds = time.perf_counter() - t0
    index.close()
    return seconds


def run(quick: bool) -> list[Row]:
    n = 50_000 if quick else 200_000
    root = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    old_home = os.environ.get("ATDATA_TUI_HOME")
    os.environ["ATDATA_TUI_HOME"] = str(root / "home")
    try:
        source = root / "rows.jsonl"
        _make_source(source, n)
        job = asyncio.run(_in_app(root / "a", source, on_loop=False))
        blocking = asyncio.run(_in_app(root / "b", source, on_loop=True))
        headless = _headless(root / "c", source)
    finally:
        if old_home is None:
            os.environ.pop("ATDATA_TUI_HOME", None)
        else:
            os.environ["ATDATA_TUI_HOME"] = old_home
        shutil.rmtree(root, ignore_errors=True)
    label = f"{n // 1000}k-sample write"
    per_s = job["posts"] / job["seconds"] if job["seconds"] else None
    return [
        make_row(
            f"longest event-loop stall during a {label} job",
            job["max_ms"],
            "ms",
            baseline=blocking["max_ms"],
            baseline_name="same write on the event loop",
            target=TARGET_STALL_MS,
            lower_is_better=True,
            note=(
                f"10 ms timer, {job['ticks']} ticks; p99 lateness {job['p99_ms']:.1f} ms "
                f"(baseline p99 {blocking['p99_ms']:.0f} ms); the idle app, same run: max "
                f"{job['idle_max_ms']:.0f} ms, p99 {job['idle_p99_ms']:.0f} ms (machine noise); "
                "jobs screen open, 120x36"
            ),
        ),
        make_row(
            f"progress messages per second during a {label} job",
            per_s,
            "msgs/s",
            target=float(MAX_UPDATES_PER_S),
            lower_is_better=True,
            note=(
                f"{job['posts']} throttled progress posts in {job['seconds']:.1f} s; the panel "
                f"handled {job['handled']} JobUpdated in all (with state changes and the first "
                "and last report; bursts collapse in the queue)"
            ),
        ),
        make_row(
            f"{label} throughput inside the app",
            n / job["seconds"],
            "samples/s",
            baseline=n / headless,
            baseline_name="same import, headless",
            note="JSON Lines → typed samples → Index.write (SQLite + disk); sharing the GIL "
            "with the UI costs the difference",
        ),
    ]


if __name__ == "__main__":
    from benchmarks.common import format_rows

    print(format_rows(run(quick=True)))
