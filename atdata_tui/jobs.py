"""Background jobs (writes, promotions, logins): state, progress, cancel and retry, at ``app.jobs``.

A job is a plain function ``fn(ctx: JobContext) -> result`` run in a Textual thread worker. It
never touches widgets: it calls ``ctx.report(...)`` (throttled to ≤10 messages/s per job and
collapsed in the message queue, so a flood of progress never starves the event loop) and checks
``ctx.cancelled()`` between steps. Every state change and (throttled) progress step posts a
``JobUpdated`` to the widgets that ``subscribe``; the app gets ``JobsChanged(running=n)`` for the
status bar. A job that raises shows its error in the jobs panel (and a toast); an
``atdata_core`` ``CancelledError`` makes it ``cancelled``; a failed or cancelled job can be
retried: the same function runs again (promotion resumes without duplicates because the core's
``execute_plan`` is idempotent).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from textual.message import Message
from textual.worker import get_current_worker

from atdata_core.errors import AtdataError, CancelledError

from .switching import short_switch_interval

if TYPE_CHECKING:
    from textual.app import App
    from textual.message_pump import MessagePump
    from textual.worker import Worker

JobKind = Literal["write", "promote", "login"]

#: At most this many progress messages per second per job reach the event loop.
MAX_UPDATES_PER_S = 10
#: Jobs of one kind that run at once; the rest wait in ``queued`` (promotions go one by one,
#: so two entries sharing a schema never race to create its record).
CONCURRENCY: dict[str, int] = {"write": 2, "promote": 1, "login": 2}
#: Seconds of history the rate (and so the ETA) is averaged over.
RATE_WINDOW = 5.0


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass
class JobProgress:
    """How far a job is. ``done``/``total`` are in ``unit`` (samples for writes, bytes uploaded
    for promotions); ``rate`` is ``unit`` per second over the last few seconds."""

    done: float = 0.0
    total: float | None = None
    unit: str = "samples"
    samples: int = 0
    bytes: int = 0
    rate: float | None = None
    eta: float | None = None
    detail: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))


@dataclass
class Job:
    """One background job as the jobs panel shows it. Read it on the event loop; only the
    manager writes it (under its lock)."""

    id: int
    kind: JobKind
    title: str
    fn: Callable[[JobContext], Any] = field(repr=False)
    state: JobState = JobState.QUEUED
    progress: JobProgress = field(default_factory=JobProgress)
    result: Any = None
    #: What to show and copy as the result (an ``at://`` URI, a dataset ref).
    result_text: str | None = None
    error: str | None = None
    attempts: int = 0
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False
    retryable: bool = True
    #: Free-form lines the job logged (resumed steps, skipped rows), shown in the details.
    log: list[str] = field(default_factory=list)
    #: Progress messages posted by the throttle (not counting forced or state-change ones).
    progress_posts: int = 0
    on_done: Callable[[Job], None] | None = field(default=None, repr=False)
    _manager: JobManager | None = field(default=None, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _worker: Worker[Any] | None = field(default=None, repr=False)
    _history: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=64))

    @property
    def running(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.RUNNING)

    @property
    def elapsed(self) -> float | None:
        if self.started is None:
            return None
        end = self.finished if self.finished is not None else self._now()
        return max(0.0, end - self.started)

    def _now(self) -> float:
        return self._manager.clock() if self._manager else time.monotonic()

    def cancel(self) -> bool:
        """Ask the job to stop (it stops at its next check); False if it already finished."""
        return self._manager.cancel(self.id) if self._manager else False

    def retry(self) -> bool:
        """Run a failed or cancelled job again; False if it cannot be retried now."""
        return self._manager.retry(self.id) if self._manager else False


@dataclass
class JobUpdated(Message):
    """A job changed (state or progress): re-read ``app.jobs.get(job_id)``.

    Carries only the id, so a newer update for the same job replaces an older one still in the
    queue: a burst of progress collapses into one repaint.
    """

    job_id: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobUpdated) and message.job_id == self.job_id


class JobContext:
    """What a job function gets: progress reporting (throttled) and cancellation checks."""

    def __init__(self, manager: JobManager, job: Job) -> None:
        self._manager = manager
        self.job = job
        self._last_post = 0.0
        try:
            self._worker: Worker[Any] | None = get_current_worker()
        except Exception:  # called outside a worker (tests, the CLI)
            self._worker = None

    def cancelled(self) -> bool:
        """True once the user cancelled the job (or the app is shutting down)."""
        if self.job._cancel.is_set():
            return True
        return bool(self._worker is not None and self._worker.is_cancelled)

    def check(self) -> None:
        """Raise ``CancelledError`` if the job was cancelled (between steps)."""
        if self.cancelled():
            raise CancelledError(f"{self.job.title}: cancelled")

    def report(
        self,
        done: float | None = None,
        total: float | None = None,
        *,
        unit: str | None = None,
        samples: int | None = None,
        bytes: int | None = None,
        detail: str | None = None,
        force: bool = False,
    ) -> None:
        """Record progress; at most ``MAX_UPDATES_PER_S`` of these per second reach the UI."""
        self._manager._progress(
            self.job, done, total, unit=unit, samples=samples, nbytes=bytes, detail=detail
        )
        now = time.monotonic()
        if force or now - self._last_post >= 1.0 / MAX_UPDATES_PER_S:
            self._last_post = now
            if not force:
                self.job.progress_posts += 1
            self._manager._notify(self.job.id)

    def log(self, line: str) -> None:
        """Add a line to the job's details (e.g. "schema record exists, reused")."""
        with self._manager._lock:
            self.job.log.append(line)
            del self.job.log[:-200]
        self._manager._notify(self.job.id)

    def set_result_text(self, text: str) -> None:
        with self._manager._lock:
            self.job.result_text = text


class JobManager:
    """Every job of this app session, running and finished, in submission order."""

    def __init__(self, app: App[Any], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.clock = clock
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._listeners: list[MessagePump] = []
        self._slots = {kind: threading.Semaphore(n) for kind, n in CONCURRENCY.items()}
        self._last_running = 0
        #: Called in the job's thread on every progress report, unthrottled (metrics, tests,
        #: fault injection): ``observer(job)``. Keep them fast; they must not touch widgets.
        self.observers: list[Callable[[Job], None]] = []

    # -- queries (event loop)
    def __iter__(self) -> Any:
        with self._lock:
            return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    @property
    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def running(self) -> list[Job]:
        """Jobs queued or running (what quitting would interrupt)."""
        return [j for j in self.jobs if j.running]

    @property
    def running_count(self) -> int:
        return len(self.running())

    # -- subscriptions
    def subscribe(self, listener: MessagePump) -> None:
        """Post ``JobUpdated`` messages to ``listener`` (a widget or screen) from now on."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def unsubscribe(self, listener: MessagePump) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, job_id: int) -> None:
        """Tell listeners (thread-safe: ``post_message`` is) and the app's status bar."""
        for listener in list(self._listeners):
            listener.post_message(JobUpdated(job_id))
        running = sum(1 for j in self.jobs if j.running)
        if running != self._last_running:
            self._last_running = running
            from .messages import JobsChanged

            self.app.post_message(JobsChanged(running=running))

    # -- submitting
    def submit(
        self,
        kind: JobKind,
        title: str,
        fn: Callable[[JobContext], Any],
        *,
        on_done: Callable[[Job], None] | None = None,
        retryable: bool = True,
    ) -> Job:
        """Queue ``fn`` as a job and start its thread worker. ``on_done(job)`` runs on the event
        loop once the job finishes (whatever its state)."""
        with self._lock:
            job = Job(
                next(self._ids),
                kind,
                title,
                fn,
                created=self.clock(),
                on_done=on_done,
                retryable=retryable,
                _manager=self,
            )
            self._jobs[job.id] = job
        self._start(job)
        return job

    def _start(self, job: Job) -> None:
        job._worker = self.app.run_worker(
            lambda: self._run(job),
            name=f"job-{job.id}",
            group="jobs",
            description=f"{job.kind}: {job.title}",
            thread=True,
            exclusive=False,
            exit_on_error=False,
        )
        self._notify(job.id)

    def _run(self, job: Job) -> None:
        """The thread body: wait for a slot of this kind, run, record the outcome."""
        ctx = JobContext(self, job)
        slot = self._slots.setdefault(job.kind, threading.Semaphore(1))
        while not slot.acquire(timeout=0.1):
            if ctx.cancelled():
                self._finish(job, JobState.CANCELLED, error=None)
                return
        try:
            if ctx.cancelled():
                self._finish(job, JobState.CANCELLED, error=None)
                return
            with self._lock:
                job.state = JobState.RUNNING
                job.attempts += 1
                job.started = self.clock()
                job._history.clear()
            self._notify(job.id)
            with short_switch_interval():  # frames stay short while the job runs
                try:
                    result = job.fn(ctx)
                except CancelledError as exc:
                    self._finish(job, JobState.CANCELLED, error=str(exc) or None)
                except AtdataError as exc:
                    self._finish(job, JobState.FAILED, error=str(exc))
                except Exception as exc:  # a job must never take the app down: show it instead
                    self._finish(job, JobState.FAILED, error=f"{type(exc).__name__}: {exc}")
                else:
                    with self._lock:
                        job.result = result
                        if job.result_text is None and isinstance(result, str):
                            job.result_text = result
                    self._finish(job, JobState.DONE, error=None)
        finally:
            slot.release()

    def _finish(self, job: Job, state: JobState, *, error: str | None) -> None:
        with self._lock:
            job.state = state
            job.error = error
            job.finished = self.clock()
            if job.started is None:
                job.started = job.finished
            if state is JobState.DONE and job.progress.total:
                job.progress.done = job.progress.total
            job.progress.eta = None
        self._notify(job.id)
        if job.on_done is not None:
            self.app.call_later(job.on_done, job)

    def _progress(
        self,
        job: Job,
        done: float | None,
        total: float | None,
        *,
        unit: str | None,
        samples: int | None,
        nbytes: int | None,
        detail: str | None,
    ) -> None:
        now = self.clock()
        with self._lock:
            p = job.progress
            if unit is not None:
                p.unit = unit
            if total is not None:
                p.total = total
            if samples is not None:
                p.samples = samples
            if nbytes is not None:
                p.bytes = nbytes
            if detail is not None:
                p.detail = detail
            if done is not None:
                self._rate(job, p, done, now)
        for observer in list(self.observers):
            observer(job)

    @staticmethod
    def _rate(job: Job, p: JobProgress, done: float, now: float) -> None:
        """Update ``done``, the rate over the last few seconds and the ETA (lock held)."""
        p.done = done
        history = job._history
        history.append((now, done))
        while len(history) > 2 and now - history[0][0] > RATE_WINDOW:
            history.popleft()
        t0, d0 = history[0]
        if now - t0 > 0.2:
            p.rate = (done - d0) / (now - t0)
        elif job.started is not None and now - job.started > 0:
            p.rate = done / (now - job.started)
        if p.total and p.rate and p.rate > 0:
            p.eta = max(0.0, (p.total - done) / p.rate)
        else:
            p.eta = None

    # -- control
    def cancel(self, job_id: int) -> bool:
        job = self._jobs.get(job_id)
        if job is None or job.state.finished:
            return False
        with self._lock:
            job.cancel_requested = True
            job._cancel.set()
        self._notify(job_id)
        return True

    def cancel_all(self) -> int:
        """Cancel every queued or running job (before quitting)."""
        return sum(self.cancel(j.id) for j in self.running())

    def retry(self, job_id: int) -> bool:
        job = self._jobs.get(job_id)
        if job is None or job.state not in (JobState.FAILED, JobState.CANCELLED):
            return False
        if not job.retryable:
            return False
        with self._lock:
            job.state = JobState.QUEUED
            job.error = None
            job.result = None
            job.result_text = None
            job.started = job.finished = None
            job.cancel_requested = False
            job._cancel = threading.Event()
            job.progress = JobProgress(unit=job.progress.unit, total=job.progress.total)
            job.log.append(f"retry (attempt {job.attempts + 1})")
        self._start(job)
        return True

    def clear_finished(self) -> int:
        """Forget finished jobs (the panel's "clear"); returns how many were removed."""
        with self._lock:
            done = [j.id for j in self._jobs.values() if j.state.finished]
            for job_id in done:
                del self._jobs[job_id]
        for job_id in done:
            self._notify(job_id)
        return len(done)

    async def wait(self, job_id: int, timeout: float = 30.0) -> Job:
        """Wait (on the event loop, without blocking it) until a job finishes (tests, CLI)."""
        import asyncio

        job = self._jobs[job_id]
        deadline = time.monotonic() + timeout
        while not job.state.finished:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} ({job.title}) still {job.state.value}")
            await asyncio.sleep(0.02)
        return job


# --- formatting (shared by the panel, the details and the CLI) ------------------------------------


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def human_rate(progress: JobProgress, *, short: bool = False) -> str:
    """``31k samples/s`` (or ``31k/s`` with ``short``), ``1.2 MB/s`` for byte counts."""
    if progress.rate is None:
        return "-"
    if progress.unit == "bytes":
        return f"{human_bytes(progress.rate)}/s"
    unit = "/s" if short else f" {progress.unit}/s"
    return f"{human_count(progress.rate)}{unit}"


def human_count(n: float) -> str:
    """``950``, ``12.5k``, ``31k``, ``1.2M``: counts that fit a narrow column."""
    if n < 1000:
        return f"{n:.0f}"
    if n < 10_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.1f}M"


__all__ = [
    "Job",
    "JobContext",
    "JobKind",
    "JobManager",
    "JobProgress",
    "JobState",
    "JobUpdated",
    "human_bytes",
    "human_count",
    "human_duration",
    "human_rate",
]
