"""The jobs panel: a task manager for writes, promotions and logins.

One table row per job (state, title, a progress bar, amount done, rate, ETA, result or error) and a
detail pane for the highlighted job (full error text, the ``at://`` URI, the job's log). Keys:
``c``/``x`` cancel, ``r`` retry a failed or cancelled job, ``y`` copy the result, ``enter``
details, ``delete`` forgets the finished ones.
Rows are updated in place from ``JobUpdated`` messages (already throttled and collapsed by the
manager), so a running write repaints at most ten times a second.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from ..jobs import (
    Job,
    JobState,
    JobUpdated,
    human_bytes,
    human_count,
    human_duration,
    human_rate,
)
from ..screens import BrowseScreen

if TYPE_CHECKING:
    from ..jobs import JobManager

STATE_STYLE = {
    JobState.QUEUED: ("◌", "dim"),
    JobState.RUNNING: ("▶", "bold cyan"),
    JobState.DONE: ("✔", "green"),
    JobState.FAILED: ("✖", "bold red"),
    JobState.CANCELLED: ("■", "yellow"),
}
BAR_WIDTH = 16
NARROW_BAR = 10
#: Seconds quitting waits for cancelled jobs to clean up before it quits anyway.
QUIT_WAIT = 10.0


def progress_bar(job: Job, width: int = BAR_WIDTH) -> Text:
    """``━━━━━━━╸━━━━━━ 52%`` (or a pulse-free ``…`` when the total is unknown)."""
    fraction = job.progress.fraction
    if job.state is JobState.DONE:
        fraction = 1.0
    text = Text(no_wrap=True, end="")
    if fraction is None:
        if job.state is JobState.RUNNING:
            text.append("━" * width, style="cyan dim")
            text.append("   ?%", style="dim")
        else:
            text.append("─" * width, style="dim")
            text.append("     ")
        return text
    filled = int(fraction * width)
    style = {
        JobState.DONE: "green",
        JobState.FAILED: "red",
        JobState.CANCELLED: "yellow",
    }.get(job.state, "cyan")
    text.append("━" * filled, style=style)
    if filled < width:
        text.append(
            "╸" if fraction * width - filled >= 0.5 else "─", style=style if filled else "dim"
        )
        text.append("─" * (width - filled - 1), style="dim")
    text.append(f" {fraction * 100:3.0f}%")
    return text


def job_outcome(job: Job) -> Text:
    """What the last column shows: the result, the error, or what the job is doing now."""
    if job.state is JobState.FAILED:
        return Text((job.error or "failed").splitlines()[0], style="red", no_wrap=True, end="")
    if job.state is JobState.DONE:
        return Text(job.result_text or "done", style="green", no_wrap=True, end="")
    if job.state is JobState.CANCELLED:
        return Text(
            "cancelled; nothing kept" if job.kind == "write" else "cancelled", style="yellow"
        )
    if job.cancel_requested:
        return Text("cancelling…", style="yellow", no_wrap=True, end="")
    if job.state is JobState.QUEUED:
        return Text("waiting for a slot", style="dim", no_wrap=True, end="")
    return Text(job.progress.detail, no_wrap=True, end="")


def job_size(job: Job) -> str:
    """``108k · 106 MB`` for writes, ``12.0 MB/40.0 MB`` for uploads: fits a 13-cell column."""
    p = job.progress
    if p.unit == "bytes":
        if not p.done and not p.total:
            return ""
        total = f"/{human_bytes(p.total)}" if p.total else ""
        return f"{human_bytes(p.done)}{total}"
    if p.samples or p.bytes:
        return f"{human_count(p.samples)} · {human_bytes(p.bytes)}"
    return ""


def job_detail(job: Job) -> Text:
    """The detail pane's text for one job: everything, unabridged (errors wrap here)."""
    icon, style = STATE_STYLE[job.state]
    p = job.progress
    out = Text()
    out.append(f"{icon} {job.state.value}", style=style)
    out.append(f"  {job.kind} job #{job.id}  ", style="dim")
    out.append(job.title, style="bold")
    if job.attempts > 1:
        out.append(f"  (attempt {job.attempts})", style="dim")
    out.append("\n")
    if job.result_text:
        out.append("result  ", style="dim")
        out.append(job.result_text, style="green")
        out.append("  (y copies)\n", style="dim")
    if job.error:
        out.append("error   ", style="dim")
        out.append(job.error + "\n", style="red")
    parts = []
    if p.unit == "bytes" and (p.done or p.total):
        parts.append(job_size(job) + " uploaded")
    if p.samples:
        parts.append(f"{p.samples:,} samples")
    if p.bytes and p.unit != "bytes":
        parts.append(human_bytes(p.bytes))
    if job.running:
        parts.append(f"rate {human_rate(p)}")
        parts.append(f"ETA {human_duration(p.eta)}")
    if job.elapsed is not None:
        parts.append(f"elapsed {human_duration(job.elapsed)}")
    if parts:
        out.append("        " + " · ".join(x for x in parts if x) + "\n", style="dim")
    if p.detail and job.running:
        out.append("now     ", style="dim")
        out.append(p.detail + "\n")
    for line in job.log[-8:]:
        out.append("log     ", style="dim")
        out.append(line + "\n")
    hints = []
    if job.running:
        hints.append("c/x cancel")
    if job.state in (JobState.FAILED, JobState.CANCELLED) and job.retryable:
        hints.append("r retry")
    if job.result_text:
        hints.append("y copy")
    if hints:
        out.append(" · ".join(hints), style="dim italic")
    out.rstrip()
    return out


class JobsPanel(Vertical):
    """Every running and finished job, newest last, with a detail pane for the highlighted one."""

    DEFAULT_CSS = """
    JobsPanel { height: 1fr; }
    JobsPanel > DataTable { height: auto; max-height: 70%; }
    JobsPanel > #job-detail-scroll {
        height: auto; max-height: 9; border-top: solid $primary-darken-2; padding: 0 1;
    }
    JobsPanel > #jobs-empty { color: $text-muted; padding: 1 2; height: auto; }
    """

    BINDINGS = [
        Binding("c,x", "cancel_job", "Cancel", id="job-cancel"),
        Binding("r", "retry_job", "Retry", id="job-retry"),
        Binding("y", "copy_result", "Copy URI", id="job-copy"),
        Binding("enter", "job_details", "Details", id="job-details", show=False),
        Binding("delete", "clear_finished", "Clear finished", id="jobs-clear", show=False),
    ]

    #: (label, key, width); the result column takes what is left of the terminal's width.
    COLUMNS: tuple[tuple[str, str, int], ...] = (
        ("", "state", 1),
        ("job", "job", 22),
        ("progress", "progress", BAR_WIDTH + 5),
        ("done", "size", 13),
        ("rate", "rate", 9),
        ("ETA", "eta", 6),
        ("result / error", "result", 0),
    )
    #: Below this many columns (80x24 over SSH) the table drops "done" and narrows the rest;
    #: the detail pane below still shows everything.
    NARROW = 100
    NARROW_COLUMNS: tuple[tuple[str, str, int], ...] = (
        ("", "state", 1),
        ("job", "job", 16),
        ("progress", "progress", NARROW_BAR + 5),
        ("rate", "rate", 7),
        ("ETA", "eta", 5),
        ("result / error", "result", 0),
    )

    def __init__(self, *, id: str | None = "jobs-panel") -> None:
        super().__init__(id=id)
        self._rows: set[int] = set()
        self._shown: dict[int, list[Any]] = {}
        self._detail_lines = -1
        self._binding_state: Any = ()
        self._columns: tuple[tuple[str, str, int], ...] = self.COLUMNS
        self._empty_shown: bool | None = None

    @property
    def manager(self) -> JobManager:
        return self.app.jobs  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="jobs-table", cursor_type="row", zebra_stripes=False)
        yield table
        yield Static(
            "No jobs yet. Write a dataset (n) or promote entries (p); they run here in the "
            "background.",
            id="jobs-empty",
        )
        with VerticalScroll(id="job-detail-scroll"):
            yield Static(id="job-detail")

    def on_mount(self) -> None:
        self._build_table()
        self.manager.subscribe(self)
        self._sync_empty()
        self.set_interval(1.0, self._tick)
        self.query_one(DataTable).focus()

    def _build_table(self) -> None:
        """(Re)create the columns for the terminal's width, then every row."""
        table = self.query_one(DataTable)
        width = self.app.size.width
        self._columns = self.NARROW_COLUMNS if width < self.NARROW else self.COLUMNS
        table.clear(columns=True)
        self._rows.clear()
        self._shown.clear()
        used = sum(w + 2 * table.cell_padding for _l, _k, w in self._columns)
        rest = max(12, width - used - 4)
        for label, key, column_width in self._columns:
            table.add_column(label, key=key, width=column_width or rest)
        for job in self.manager.jobs:
            self._upsert(job)

    def on_resize(self) -> None:
        narrow = self.app.size.width < self.NARROW
        if narrow != (self._columns is self.NARROW_COLUMNS):
            selected = self.selected_job()
            self._build_table()
            if selected is not None:
                self.select_job(selected.id)

    def on_unmount(self) -> None:
        self.manager.unsubscribe(self)

    # -- rows
    def _cells(self, job: Job) -> list[Any]:
        icon, style = STATE_STYLE[job.state]
        running = job.state is JobState.RUNNING
        narrow = self._columns is self.NARROW_COLUMNS
        cells: dict[str, Any] = {
            "state": Text(icon, style=style),
            "job": Text(job.title, no_wrap=True, overflow="ellipsis", end=""),
            "progress": progress_bar(job, NARROW_BAR if narrow else BAR_WIDTH),
            "size": Text(job_size(job), no_wrap=True, end=""),
            "rate": Text(
                human_rate(job.progress, short=True) if running else "", no_wrap=True, end=""
            ),
            "eta": Text(human_duration(job.progress.eta) if running else "", end=""),
            "result": job_outcome(job),
        }
        return [cells[key] for _label, key, _w in self._columns]

    def _upsert(self, job: Job) -> None:
        table = self.query_one(DataTable)
        key = str(job.id)
        cells = self._cells(job)
        if job.id in self._rows:
            before = self._shown.get(job.id, [])
            for i, ((_label, column, _w), cell) in enumerate(
                zip(self._columns, cells, strict=True)
            ):
                if i >= len(before) or before[i] != cell:  # repaint only what changed
                    table.update_cell(key, column, cell)
        else:
            table.add_row(*cells, key=key)
            self._rows.add(job.id)
        self._shown[job.id] = cells

    def _remove(self, job_id: int) -> None:
        if job_id in self._rows:
            self.query_one(DataTable).remove_row(str(job_id))
            self._rows.discard(job_id)
            self._shown.pop(job_id, None)

    def _sync_empty(self) -> None:
        empty = not self._rows
        if empty != self._empty_shown:  # only touch the layout when it changes
            self._empty_shown = empty
            self.query_one("#jobs-empty").display = empty
            self.query_one(DataTable).display = not empty
            self.query_one("#job-detail-scroll").display = not empty
        self._show_detail()

    def _tick(self) -> None:
        """Refresh elapsed times of running jobs (a slow clock; progress comes by message)."""
        if any(j.state is JobState.RUNNING for j in self.manager.jobs):
            self._show_detail()

    @on(JobUpdated)
    def _job_updated(self, message: JobUpdated) -> None:
        job = self.manager.get(message.job_id)
        if job is None:
            self._remove(message.job_id)
        else:
            self._upsert(job)
        self._sync_empty()

    # -- selection and detail
    def selected_job(self) -> Job | None:
        table = self.query_one(DataTable)
        if not self._rows or table.row_count == 0:
            return None
        try:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        except Exception:
            return None
        return self.manager.get(int(row_key.value or 0))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer only what the highlighted job allows (the footer follows)."""
        job = self.selected_job() if self.is_mounted else None
        if action == "cancel_job":
            return job is not None and job.running
        if action == "retry_job":
            return (
                job is not None
                and job.state in (JobState.FAILED, JobState.CANCELLED)
                and job.retryable
            )
        if action == "copy_result":
            return job is not None and bool(job.result_text)
        if action == "job_details":
            return job is not None
        return True

    def select_job(self, job_id: int) -> None:
        """Move the cursor to a job (e.g. the one just submitted)."""
        table = self.query_one(DataTable)
        if job_id in self._rows:
            table.move_cursor(row=table.get_row_index(str(job_id)))
            self._show_detail()

    @on(DataTable.RowHighlighted)
    def _highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        """The highlighted job's details. Cheap when only numbers change: no relayout (same
        number of lines) and no footer rebuild (same keys apply), which a progress update
        at 10/s would otherwise pay for every time."""
        job = self.selected_job()
        text = job_detail(job) if job else Text()
        lines = len(text.plain.splitlines())
        self.query_one("#job-detail", Static).update(text, layout=lines != self._detail_lines)
        self._detail_lines = lines
        keys = (
            None
            if job is None
            else (job.id, job.state, job.retryable, bool(job.result_text), job.cancel_requested)
        )
        if keys != self._binding_state:
            self._binding_state = keys
            self.refresh_bindings()

    # -- actions
    def action_cancel_job(self) -> None:
        job = self.selected_job()
        if job is None:
            return
        if job.cancel():
            self.notify(f"Cancelling {job.title}…", timeout=3)
        else:
            self.notify(f"{job.title} is not running", severity="warning", timeout=3)

    def action_retry_job(self) -> None:
        job = self.selected_job()
        if job is None:
            return
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            self.notify("Only a failed or cancelled job can be retried", severity="warning")
        elif not job.retry():
            self.notify(f"{job.title} cannot be retried", severity="warning")

    def action_copy_result(self) -> None:
        job = self.selected_job()
        if job is None or not job.result_text:
            self.notify("This job has no result to copy yet", severity="warning", timeout=3)
            return
        self.app.copy_to_clipboard(job.result_text)
        self.notify(f"Copied {job.result_text}", timeout=3)

    def action_clear_finished(self) -> None:
        removed = self.manager.clear_finished()
        self.notify(f"Cleared {removed} finished job{'s' if removed != 1 else ''}", timeout=3)

    @on(DataTable.RowSelected)
    def _selected(self, _event: DataTable.RowSelected) -> None:
        self.action_job_details()

    def action_job_details(self) -> None:
        job = self.selected_job()
        if job is not None:
            self.app.push_screen(JobDetailScreen(job.id))


class JobDetailScreen(ModalScreen[None]):
    """Everything about one job, scrollable (long errors, the whole log); updates live."""

    DEFAULT_CSS = """
    JobDetailScreen { align: center middle; }
    JobDetailScreen > VerticalScroll {
        width: 90%; max-width: 110; height: auto; max-height: 80%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    """

    BINDINGS = [
        Binding("escape,q", "dismiss_detail", "Close", id="close"),
        Binding("c,x", "cancel_job", "Cancel", id="job-cancel"),
        Binding("r", "retry_job", "Retry", id="job-retry"),
        Binding("y", "copy_result", "Copy URI", id="job-copy"),
    ]

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="job-detail-full")
        yield Footer()

    def on_mount(self) -> None:
        self.app.jobs.subscribe(self)  # type: ignore[attr-defined]
        self._refresh()

    def on_unmount(self) -> None:
        self.app.jobs.unsubscribe(self)  # type: ignore[attr-defined]

    def _job(self) -> Job | None:
        return self.app.jobs.get(self.job_id)  # type: ignore[attr-defined]

    def _refresh(self) -> None:
        job = self._job()
        text = job_detail(job) if job else Text("This job was cleared.")
        if job is not None and job.error:
            text.append("\n\nFull error:\n", style="dim")
            text.append(job.error)
        self.query_one("#job-detail-full", Static).update(text)

    @on(JobUpdated)
    def _updated(self, message: JobUpdated) -> None:
        if message.job_id == self.job_id:
            self._refresh()

    def action_dismiss_detail(self) -> None:
        self.dismiss(None)

    def action_cancel_job(self) -> None:
        job = self._job()
        if job is not None and job.cancel():
            self.notify(f"Cancelling {job.title}…", timeout=3)

    def action_retry_job(self) -> None:
        job = self._job()
        if job is not None and not job.retry():
            self.notify("Only a failed or cancelled job can be retried", severity="warning")

    def action_copy_result(self) -> None:
        job = self._job()
        if job is not None and job.result_text:
            self.app.copy_to_clipboard(job.result_text)
            self.notify(f"Copied {job.result_text}", timeout=3)


class JobsScreen(BrowseScreen):
    """The jobs panel as a screen of its own (``J`` from anywhere; ``escape`` goes back)."""

    DEFAULT_CSS = """
    JobsScreen #jobs-title { height: 1; padding: 0 1; background: $boost; }
    """

    def __init__(self, select: int | None = None) -> None:
        super().__init__()
        self._select = select
        self._last_summary = ""

    def crumbs(self) -> list[str]:
        return ["jobs"]

    def compose_body(self) -> ComposeResult:
        yield Static("Jobs", id="jobs-title")
        yield JobsPanel()

    def on_mount(self) -> None:
        if self._select is not None:
            self.query_one(JobsPanel).select_job(self._select)
        self.app.jobs.subscribe(self)  # type: ignore[attr-defined]
        self._summary()

    def on_unmount(self) -> None:
        self.app.jobs.unsubscribe(self)  # type: ignore[attr-defined]

    @on(JobUpdated)
    def _summary(self, _message: JobUpdated | None = None) -> None:
        """``2 running · 3 done · 1 failed`` and a reminder that jobs outlive this screen."""
        counts: dict[str, int] = {}
        for job in self.app.jobs.jobs:  # type: ignore[attr-defined]
            counts[job.state.value] = counts.get(job.state.value, 0) + 1
        parts = " · ".join(f"{n} {state}" for state, n in counts.items() if n) or "no jobs"
        if parts != self._last_summary:  # one line, so no relayout either
            self._last_summary = parts
            self.query_one("#jobs-title", Static).update(
                Text.assemble((parts, "bold"), ("   escape: back (jobs keep running)", "dim")),
                layout=False,
            )

    def action_back(self) -> None:
        self.app.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return len(self.app.screen_stack) > 1
        return True


class ConfirmQuitScreen(ModalScreen[bool]):
    """Asked before quitting while jobs run: quitting cancels them (writes leave nothing)."""

    DEFAULT_CSS = """
    ConfirmQuitScreen { align: center middle; }
    ConfirmQuitScreen > Vertical {
        width: 64; max-width: 95%; height: auto; border: thick $warning; background: $surface;
        padding: 1 2;
    }
    ConfirmQuitScreen #quit-keys { color: $text-muted; margin-top: 1; }
    """

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Quit", id="confirm-quit"),
        Binding("n,escape", "answer(False)", "Stay", id="cancel-quit"),
        Binding("j", "show_jobs", "Jobs", id="quit-show-jobs"),
    ]

    def __init__(self, jobs: list[Job]) -> None:
        super().__init__()
        self._jobs = jobs

    def compose(self) -> ComposeResult:
        n = len(self._jobs)
        lines = Text()
        lines.append(f"{n} job{'s' if n != 1 else ''} still running:\n", style="bold")
        for job in self._jobs[:6]:
            lines.append(f"  • {job.kind}: {job.title}\n")
        if n > 6:
            lines.append(f"  … and {n - 6} more\n", style="dim")
        lines.append(
            "\nQuitting cancels them: unfinished writes leave nothing behind; "
            "promotions can be resumed later."
        )
        with Vertical():
            yield Static(lines, id="quit-question")
            yield Static("y / enter quit anyway · n / escape stay · j show jobs", id="quit-keys")

    def action_answer(self, quit_: bool) -> None:
        if not quit_:
            self.dismiss(False)
            return
        # Cancel here and wait (without blocking the loop) until the jobs have cleaned up: a
        # write removes its partial shards, a promotion saves where it stopped. Then quit.
        manager = self.app.jobs  # type: ignore[attr-defined]
        manager.cancel_all()
        self.query_one("#quit-keys", Static).update(
            Text("Cancelling… (partial writes are being removed)", style="bold yellow")
        )
        self._deadline = time.monotonic() + QUIT_WAIT
        self._waiting = self.set_interval(0.05, self._wait_for_jobs)

    def _wait_for_jobs(self) -> None:
        manager = self.app.jobs  # type: ignore[attr-defined]
        if not manager.running() or time.monotonic() > self._deadline:
            self._waiting.stop()
            self.dismiss(True)

    def action_show_jobs(self) -> None:
        self.dismiss(False)
        self.app.push_screen(JobsScreen())
