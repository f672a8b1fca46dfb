"""TUI benchmarks, from a REAL ``atdata-tui`` process in a real terminal (tmux, 80x24).

The app is started by tmux exactly as a user starts it (the installed console script, a pseudo
terminal, ``TERM`` set by tmux) with ``ATDATA_TUI_REPORT_TIMINGS=<file>``: it then appends JSON
lines with wall-clock times (``first_paint``, ``open_entries``, ``entries_drawn`` with the row that
became visible, ``quit``), each with ``max_lag_ms``, the longest the event loop was blocked since
the previous line (a frame cannot be drawn while the loop is blocked, so this bounds the frame
time). Keys are sent with ``tmux send-keys`` and timed from just before the send.

Figures, at 1,000 and 1,000,000 entries (only 20,000 in quick mode), each with a baseline measured in
the same run:

- launch → first screen drawn (target ≤ 500 ms); baseline: a bare Textual app that draws one
  line, started the same way (the floor set by Python + Textual start-up);
- ``enter`` on the repository → the first rows of entries drawn; baseline: Textual's own
  ``DataTable`` given every row (headless; 100,000 rows at most: a million takes minutes), the
  naive way to show a listing;
- ``G`` → the last row drawn (a jump to the end of the list; pages are fetched by OFFSET);
- the longest event-loop block while scrolling (j/k, pagedown/pageup, G/g, at key-repeat speed)
  (target ≤ 50 ms);
- the app's peak RSS with 1,000,000 entries (target < 200 MB).

Needs tmux; without it the module reports why instead of figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    from benchmarks.common import Row, make_row
except ImportError:  # run as a script from inside benchmarks/
    from common import Row, make_row  # type: ignore[no-redef]

FIRST_PAINT_TARGET_MS = 500.0
FRAME_TARGET_MS = 50.0
RSS_TARGET_MB = 200.0
RUNS = 3
#: Set by ``run``: quick runs launch the app twice per size (once plain, once scrolling).
QUICK = False


def _runs() -> int:
    return 2 if QUICK else RUNS


#: Seconds of the idle control window (about as long as the scrolling).
SCROLL_S = 5.5

VENV_BIN = Path(sys.executable).parent
APP = VENV_BIN / "atdata-tui"

#: A bare Textual app that draws one line and reports when it did (the start-up floor).
BARE_APP = """
import json, os, sys, time
from textual.app import App
from textual.widgets import Static

class Bare(App):
    def compose(self):
        yield Static("hello")

    def on_mount(self):
        self.call_after_refresh(self.report)

    def report(self):
        with open(os.environ["ATDATA_TUI_REPORT_TIMINGS"], "a") as f:
            f.write(json.dumps({"event": "first_paint", "wall": time.time()}) + "\\n")

Bare().run()
"""


# --- the index ------------------------------------------------------------------------------------


def build_index(path: Path, n: int) -> None:
    """``n`` entries with ``SqliteProvider.bulk_insert`` (no shards: listing is what is measured)."""
    from atdata_core.index import IndexEntry, SqliteProvider

    provider = SqliteProvider(path)
    step = 100_000
    for start in range(0, n, step):
        provider.bulk_insert(
            [
                IndexEntry(
                    cid=f"bafyreib{i:052d}",
                    name=f"dataset-{i:07d}",
                    schema_ref="atdata://local/schema/Big@1.0.0",
                    data_urls=[f"/data/big/{i:07d}/data-000000.tar"],
                    metadata={"samples": i, "shards": 1, "bytes": 1000 * i},
                    created_at="2024-01-01 00:00:00",
                )
                for i in range(start, min(start + step, n))
            ]
        )
    provider.close()


def direct_first_page_ms(path: Path) -> float:
    """The baseline for "entries drawn": the same first page straight from the Index, in-process."""
    from atdata_core.index import Index

    best = float("inf")
    for _ in range(RUNS):
        index = Index(path=path, readonly=True)
        started = time.perf_counter()
        index.page_entries(offset=0, limit=200)
        best = min(best, time.perf_counter() - started)
        index.close()
    return best * 1000


def datatable_first_paint_ms(path: Path, n: int) -> float:
    """The naive baseline: Textual's ``DataTable`` holding every row, headless, add → drawn.

    Reading the rows is not timed (that is the index's cost, not the widget's).
    """
    import asyncio

    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from atdata_core.index import Index

    index = Index(path=path, readonly=True)
    rows = [
        (e.name, e.schema_ref.rsplit("/", 1)[-1], str(e.samples), str(e.shards), e.created_at)
        for e in index.iter_entries()
    ][:n]
    index.close()
    result: dict[str, float] = {}

    class Naive(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("Name", "Schema", "Samples", "Shards", "Created")
            result["t0"] = time.perf_counter()
            table.add_rows(rows)
            self.call_after_refresh(lambda: result.setdefault("t1", time.perf_counter()))

    async def go() -> None:
        app = Naive()
        async with app.run_test(size=(80, 24)) as pilot:
            while "t1" not in result:
                await pilot.pause(0.01)

    asyncio.run(go())
    return (result["t1"] - result["t0"]) * 1000


# --- driving a real process in tmux --------------------------------------------------------------


class Session:
    """One tmux server (own socket) running one command at 80x24."""

    def __init__(self, root: Path, command: str, env: dict[str, str]) -> None:
        self.sock = root / f"tmux-{time.monotonic_ns()}.sock"
        self.command = command
        self.env = env
        self.started = 0.0

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-S", str(self.sock), "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=check,
            env=self.env,
            timeout=30,
        )

    def start(self) -> float:
        self.started = time.time()
        self.tmux("new-session", "-d", "-s", "b", "-x", "80", "-y", "24", self.command)
        return self.started

    def send(self, *keys: str) -> float:
        sent = time.time()
        for key in keys:
            self.tmux("send-keys", "-t", "b", key)
        return sent

    def pid(self) -> int | None:
        done = self.tmux("display-message", "-p", "-t", "b", "#{pane_pid}", check=False)
        text = done.stdout.strip()
        return int(text) if text.isdigit() else None

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", "b", check=False).returncode == 0

    def close(self) -> None:
        self.tmux("kill-server", check=False)
        with contextlib.suppress(OSError):
            self.sock.unlink()


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def wait_event(
    path: Path, event: str, *, after: int = 0, timeout: float = 60.0, **match: Any
) -> tuple[int, dict[str, Any]]:
    """The first ``event`` line at index ≥ ``after`` whose fields match ``match``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = read_events(path)
        for i, e in enumerate(events[after:], after):
            if e.get("event") == event and all(e.get(k) == v for k, v in match.items()):
                return i, e
        time.sleep(0.005)
    raise TimeoutError(f"no {event!r} {match} in {path} after {timeout}s: {read_events(path)}")


def window_max_lag(
    events: list[dict[str, Any]], start: float, end: float
) -> tuple[float | None, str]:
    """The longest event-loop block reported by the marks written in ``(start, end]`` (each covers
    the time since the previous mark), and the stack sampled during the worst one."""
    inside = [e for e in events if start < e["wall"] <= end + 0.6]
    if not inside:
        return None, ""
    worst = max(inside, key=lambda e: e.get("max_lag_ms", 0.0))
    return worst.get("max_lag_ms"), worst.get("stall_stack", "")


def peak_rss_of(pid: int | None) -> float | None:
    if pid is None:
        return None
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def bare_first_paint_ms(root: Path, env: dict[str, str]) -> float:
    script = root / "bare_app.py"
    script.write_text(BARE_APP)
    best = float("inf")
    for i in range(_runs()):
        timings = root / f"bare-{i}.jsonl"
        run_env = {**env, "ATDATA_TUI_REPORT_TIMINGS": str(timings)}
        command = shlex.join([sys.executable, str(script)])
        session = Session(root, command, run_env)
        try:
            started = session.start()
            _, e = wait_event(timings, "first_paint", timeout=30)
            best = min(best, e["wall"] - started)
        finally:
            session.close()
    return best * 1000


def drive_app(root: Path, index: Path, env: dict[str, str], *, scroll: bool) -> dict[str, Any]:
    """Launch, open the entries, jump to the end, optionally scroll hard, quit. Times in ms."""
    timings = root / f"app-{time.monotonic_ns()}.jsonl"
    run_env = {**env, "ATDATA_TUI_REPORT_TIMINGS": str(timings)}
    command = shlex.join([str(APP), "--index", str(index), "--readonly"])
    session = Session(root, command, run_env)
    out: dict[str, Any] = {}
    try:
        started = session.start()
        i, e = wait_event(timings, "first_paint", timeout=60)
        out["first_paint"] = (e["wall"] - started) * 1000
        i, _ = wait_event(timings, "index_opened", after=0, timeout=60)
        time.sleep(0.5)  # let the repository counts arrive, as a user would
        sent = session.send("Enter")
        i, e = wait_event(timings, "entries_drawn", after=i + 1, timeout=60, row=0)
        out["entries_drawn"] = (e["wall"] - sent) * 1000
        time.sleep(0.3)
        n = None
        sent = session.send("G")
        i, e = wait_event(timings, "entries_drawn", after=i + 1, timeout=60)
        out["jump_end"] = (e["wall"] - sent) * 1000
        n = e.get("row")
        out["last_row"] = n
        if scroll:
            time.sleep(0.3)
            session.send("g")
            time.sleep(1.0)
            idle_start = time.time()
            time.sleep(SCROLL_S)  # the control: the same app, same time, no keys
            idle_end = scroll_start = time.time()
            for key, count in (("j", 60), ("Next", 40), ("k", 30), ("G", 1), ("PPage", 40)):
                for _ in range(count):
                    session.send(key)
                    time.sleep(0.03)  # ~33 keys/s, a held key's repeat rate
            time.sleep(0.6)
            scroll_end = time.time()
            out["rss_mb"] = peak_rss_of(session.pid())
            session.send("q")
            wait_event(timings, "quit", after=i, timeout=30)
            events = read_events(timings)
            out["max_lag"], out["stall"] = window_max_lag(events, scroll_start, scroll_end)
            out["idle_lag"], _ = window_max_lag(events, idle_start, idle_end)
        else:
            out["rss_mb"] = peak_rss_of(session.pid())
            session.send("q")
            wait_event(timings, "quit", after=i, timeout=30)
        deadline = time.monotonic() + 10
        while session.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        session.close()
    return out


def _best(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return min(values) if values else None


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = sorted(r[key] for r in runs if r.get(key) is not None)
    return values[len(values) // 2] if values else None


def run(quick: bool) -> list[Row]:
    if shutil.which("tmux") is None or not APP.exists():
        why = "tmux is not installed" if shutil.which("tmux") is None else f"{APP} is missing"
        return [make_row("TUI benchmarks", None, "ms", note=f"not run: {why}")]
    big = 20_000 if quick else 1_000_000
    global QUICK
    QUICK = quick
    root = Path(tempfile.mkdtemp(prefix="bench-tui-"))
    env = {
        **os.environ,
        "ATDATA_TUI_HOME": str(root / "home"),
        "TERM": "xterm-256color",
        "COLORTERM": "",
    }
    env.pop("NO_COLOR", None)
    rows: list[Row] = []
    try:
        bare = bare_first_paint_ms(root, env)
        for n in (big,) if quick else (1_000, big):  # quick: one size, a smoke test
            index = root / f"index-{n}.db"
            t0 = time.perf_counter()
            build_index(index, n)
            built = time.perf_counter() - t0
            runs = [drive_app(root, index, env, scroll=False) for _ in range(_runs() - 1)]
            runs.append(drive_app(root, index, env, scroll=True))
            label = f"{n:,} entries"
            direct = direct_first_page_ms(index)
            naive_n = min(n, 10_000 if QUICK else 100_000)
            naive = datatable_first_paint_ms(index, naive_n)
            rows.append(
                make_row(
                    f"launch → first screen drawn ({label})",
                    _best(runs, "first_paint"),
                    "ms",
                    baseline=bare,
                    baseline_name="bare Textual app",
                    target=FIRST_PAINT_TARGET_MS,
                    lower_is_better=True,
                    note=(
                        f"real process in tmux 80x24, best of {len(runs)}; median "
                        f"{_median(runs, 'first_paint'):.0f} ms; the index opens after the "
                        "first paint, in a worker"
                    ),
                )
            )
            rows.append(
                make_row(
                    f"enter → entries drawn ({label})",
                    _best(runs, "entries_drawn"),
                    "ms",
                    baseline=naive,
                    baseline_name=f"DataTable with all {naive_n:,} rows",
                    note=(
                        f"key sent with tmux send-keys → first rows drawn; median "
                        f"{_median(runs, 'entries_drawn'):.0f} ms; the page query itself "
                        f"{direct:.1f} ms (index built in {built:.1f} s)"
                    ),
                    lower_is_better=True,
                )
            )
            rows.append(
                make_row(
                    f"G → last row drawn ({label})",
                    _best(runs, "jump_end"),
                    "ms",
                    note=f"cursor on row {runs[-1].get('last_row')}; pages fetched by OFFSET",
                    lower_is_better=True,
                )
            )
            scroll = runs[-1]
            stall = scroll.get("stall") or ""
            rows.append(
                make_row(
                    f"longest frame/event-loop block while scrolling ({label})",
                    scroll.get("max_lag"),
                    "ms",
                    baseline=scroll.get("idle_lag"),
                    baseline_name="same app idle, same duration",
                    target=FRAME_TARGET_MS,
                    lower_is_better=True,
                    note=(
                        "j x60, pagedown x40, k x30, G, pageup x40 at 33 keys/s; 5 ms loop "
                        "monitor (it also counts time the OS gave the CPU to other processes: "
                        "see the idle baseline)"
                        + (f"; stack while blocked: {stall[:160]}" if stall else "")
                    ),
                )
            )
            if n == big:
                rss = scroll.get("rss_mb")
                rows.append(
                    make_row(
                        f"app peak RSS after scrolling ({label})",
                        rss,
                        "MB",
                        target=RSS_TARGET_MB,
                        lower_is_better=True,
                        peak_rss=rss,
                        note="VmHWM of the atdata-tui process (pages of 200 entries, LRU of 64)",
                    )
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows


if __name__ == "__main__":  # pragma: no cover
    from benchmarks.common import format_rows

    print(format_rows(run("--quick" in sys.argv)))
