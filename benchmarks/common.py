"""Shared pieces of the benchmarks: the ``Row`` every module returns, timing, memory, machine info."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Row:
    """One figure: our number, the baseline's (measured in the same run), and the target.

    ``ours``/``baseline`` are in ``unit``; ``target`` is a number in the same unit (or a short
    text when it is not a number); ``met`` is ``None`` when there is no target or no figure.
    """

    figure: str
    ours: float | None
    baseline: float | None
    baseline_name: str
    unit: str
    target: float | str | None
    met: bool | None
    peak_rss_mb: float | None
    note: str = ""
    #: For latencies and sizes: the ratio then reads baseline/ours (how many times better).
    lower_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        """How many times better than the baseline (>1 is better, whichever way is better)."""
        if not self.ours or not self.baseline:
            return None
        return self.baseline / self.ours if self.lower_is_better else self.ours / self.baseline

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB.

    On Linux ``VmHWM`` from ``/proc/self/status``: unlike ``ru_maxrss`` it starts afresh in an
    exec'd child, so a child started by ``measure_in_child`` reports its own peak, not its
    parent's. Elsewhere ``ru_maxrss`` (KB on Linux, bytes on macOS).
    """
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def make_row(
    figure: str,
    ours: float | None,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_name: str = "",
    target: float | str | None = None,
    lower_is_better: bool = False,
    peak_rss: float | None = None,
    note: str = "",
    digits: int = 2,
) -> Row:
    """A ``Row`` with ``met`` worked out from a numeric target and the peak RSS filled in."""
    met = None
    if isinstance(target, (int, float)) and ours is not None:
        met = ours <= target if lower_is_better else ours >= target
    return Row(
        figure=figure,
        ours=None if ours is None else round(ours, digits),
        baseline=None if baseline is None else round(baseline, digits),
        baseline_name=baseline_name,
        unit=unit,
        target=round(target, digits) if isinstance(target, float) else target,
        met=met,
        peak_rss_mb=round(peak_rss if peak_rss is not None else peak_rss_mb(), 1),
        note=note,
        lower_is_better=lower_is_better,
    )


# --- timing ----------------------------------------------------------------------------------------


@dataclass
class Timer:
    """Elapsed seconds of a ``with timed():`` block (``seconds`` is set when the block ends)."""

    clock: Callable[[], float] = time.perf_counter
    start: float = 0.0
    seconds: float = 0.0


@contextlib.contextmanager
def timed(cpu: bool = False) -> Iterator[Timer]:
    """Time a block, with the garbage collector paused (it adds noise).

    Wall time by default. ``cpu=True`` counts this process's CPU time instead (user + system,
    all threads): for single-threaded work on page-cached data that is what wall time would be
    on an idle machine, and it does not count the time other processes held the CPU, so figures
    from a shared machine stay comparable. Never use it for work that runs threads in parallel.
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    timer = Timer(time.process_time if cpu else time.perf_counter)
    timer.start = timer.clock()
    try:
        yield timer
    finally:
        timer.seconds = timer.clock() - timer.start
        if was_enabled:
            gc.enable()


def best_of(fn: Callable[[], Any], repeats: int = 3, *, cpu: bool = False) -> tuple[float, Any]:
    """Run ``fn`` ``repeats`` times; the fastest time in seconds and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        with timed(cpu) as t:
            result = fn()
        best = min(best, t.seconds)
    return best, result


def median_of(fn: Callable[[], Any], repeats: int = 5) -> float:
    """The median time in seconds of ``repeats`` runs (for noisy, short operations)."""
    times = []
    for _ in range(repeats):
        with timed() as t:
            fn()
        times.append(t.seconds)
    return statistics.median(times)


# --- isolation -------------------------------------------------------------------------------------


def _child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result = fn(*args)
        conn.send(("ok", result, peak_rss_mb()))
    except BaseException:
        conn.send(("error", traceback.format_exc(), peak_rss_mb()))
    finally:
        conn.close()


def measure_in_child(fn: Callable[..., Any], *args: Any, fresh: bool = True) -> tuple[Any, float]:
    """Run ``fn(*args)`` in a child process; return its result and the child's peak RSS in MB.

    ``fresh`` (the default) starts a new interpreter, so the peak is the function's own (plus
    the interpreter and its imports, ~30-40 MB); ``fn`` must then be a module-level function and
    its arguments and result must pickle. ``fresh=False`` forks, which is quicker but counts
    everything the parent holds in the child's peak.
    """
    ctx = multiprocessing.get_context("spawn" if fresh else "fork")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(child, fn, args))
    process.start()
    child.close()
    try:
        status, value, peak = parent.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"benchmark child died (exit code {process.exitcode})") from None
    process.join()
    if status != "ok":
        raise RuntimeError(f"benchmark child failed:\n{value}")
    return value, peak


# --- the machine -----------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux), or what ``platform`` knows."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info() -> dict[str, str]:
    """What a reader needs to judge the figures: CPU, cores, memory, Python, platform."""
    info = {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count() or "?"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(terse=True),
    }
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["memory"] = f"{kb / (1 << 20):.1f} GB"
    with contextlib.suppress(ImportError):
        import numpy

        info["numpy"] = numpy.__version__
    return info


# --- formatting ------------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.3g}"


def format_rows(rows: list[Row]) -> str:
    """A Markdown table of rows."""
    lines = [
        "| figure | ours | baseline | ratio | target | met? | peak RSS | note |",
        "|---|---:|---:|---:|---:|:---:|---:|---|",
    ]
    for row in rows:
        ours = f"{_num(row.ours)} {row.unit}" if row.ours is not None else "-"
        baseline = "-"
        if row.baseline is not None:
            baseline = (
                f"{_num(row.baseline)} ({row.baseline_name})"
                if row.baseline_name
                else _num(row.baseline)
            )
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        if isinstance(row.target, (int, float)):
            target = ("≤ " if row.lower_is_better else "≥ ") + _num(float(row.target))
        else:
            target = row.target or "-"
        met = {True: "✅", False: "❌", None: "-"}[row.met]
        rss = f"{row.peak_rss_mb:,.0f} MB" if row.peak_rss_mb is not None else "-"
        note = row.note.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {row.figure} | {ours} | {baseline} | {ratio} | {target} | {met} | {rss} | {note} |"
        )
    return "\n".join(lines)


def format_machine(info: dict[str, str]) -> str:
    order = ["cpu", "cores", "memory", "python", "numpy", "platform"]
    parts = [f"**{key}**: {info[key]}" for key in order if key in info]
    return " · ".join(parts)
