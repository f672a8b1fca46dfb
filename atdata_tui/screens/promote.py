"""``PromotePlanScreen``: see exactly what promotion will publish, then confirm.

For each entry the core computes a plan in a thread worker (reads the PDS, writes nothing):
whether the schema record exists or will be created, which shards are uploaded as blobs (with
sizes and CIDs), the entry and label records and their ``at://`` URIs, and the target account.
``enter`` publishes: one ``promote`` job per entry in the jobs panel (bytes uploaded, records
created; ``c`` cancels, ``r`` retries and resumes without duplicates). ``escape`` goes back
without writing anything. Not logged in: the login modal comes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from ..bindings import bind
from ..jobs import human_bytes
from . import BrowseScreen

if TYPE_CHECKING:
    from atdata_core.atmosphere import PromotionPlan
    from atdata_core.index import IndexEntry

    from ..jobs import Job
    from ..workers.promote import PlannedEntry

#: From this terminal width on, the plan shows whole URIs and CIDs.
FULL_WIDTH = 140

ACTION_STYLE = {
    "create": ("will create", "bold green"),
    "update": ("will update", "bold yellow"),
    "exists": ("exists", "dim"),
    "upload": ("upload", "bold cyan"),
    "referenced": ("already up", "dim"),
}


def _action(text: Text, action: str) -> None:
    word, style = ACTION_STYLE.get(action, (action, ""))
    text.append(f"{word:<12}", style=style)


def _short(text: str, keep: int = 10) -> str:
    """``bafkreihucgjs…qszex4``: long CIDs cut in the middle (the whole one is in the record)."""
    return text if len(text) <= 2 * keep + 1 else f"{text[:keep]}…{text[-keep:]}"


def _where(uri: str, did: str, full: bool) -> str:
    """A record's URI, or (narrow screens) just ``collection/rkey``: the DID is shown on top."""
    prefix = f"at://{did}/science.alt.dataset."
    if full or not uri.startswith(prefix):
        return uri
    return uri[len(prefix) :]


def plan_text(number: int, item: PlannedEntry, *, full: bool = True) -> Text:
    """One entry's plan, as the screen shows it (and as tests read it).

    ``full`` shows whole URIs and CIDs (wide terminals, copying); otherwise record URIs are
    relative to ``at://<did>/science.alt.dataset.`` (shown above the plans) and CIDs are cut.
    """
    import os

    out = Text()
    out.append(f"{number}. ", style="bold")
    out.append(item.entry.name, style="bold")
    plan = item.plan
    if plan is None:
        out.append("  cannot be promoted: ", style="bold red")
        out.append((item.error or "unknown error") + "\n", style="red")
        return out
    did = plan.did
    out.append(f"  →  @{plan.handle}/{plan.name}\n", style="bold")
    out.append("   schema  ", style="dim")
    _action(out, plan.schema.action)
    out.append(f"{plan.schema_name}@{plan.schema_version}" + ("  " if full else "\n" + " " * 23))
    out.append(_where(plan.schema.uri, did, full) + "\n", style="dim")
    if plan.storage == "blobs":
        up = plan.blobs_to_upload
        out.append("   blobs   ", style="dim")
        out.append(
            f"{len(up)} of {len(plan.blobs)} shard(s) to upload, {human_bytes(plan.upload_bytes)}\n"
        )
        for blob in plan.blobs[:12]:
            out.append("           ")
            _action(out, blob.action)
            out.append(f"{os.path.basename(blob.path)}  {human_bytes(blob.size):>9}  ")
            out.append((blob.cid if full else _short(blob.cid)) + "\n", style="dim")
        if len(plan.blobs) > 12:
            out.append(f"           … and {len(plan.blobs) - 12} more\n", style="dim")
    else:
        shards = len(plan.local_entry.data_urls) if plan.local_entry is not None else 0
        out.append("   shards  ", style="dim")
        out.append(f"{shards} referenced by URL ({plan.storage}); nothing to upload\n")
    for label, record in (("entry", plan.entry), ("label", plan.label)):
        out.append(f"   {label:<8}", style="dim")
        _action(out, record.action)
        out.append(f"{record.summary}  ")
        out.append(_where(record.uri, did, full) + "\n", style="dim")
    for warning in plan.warnings:
        out.append(f"   warning {warning}\n", style="yellow")
    return out


def plans_summary(items: list[PlannedEntry]) -> Text:
    plans = [i.plan for i in items if i.plan is not None]
    records = sum(len(p.records_to_write) for p in plans)
    blobs = sum(len(p.blobs_to_upload) for p in plans)
    size = sum(p.upload_bytes for p in plans)
    failed = sum(1 for i in items if i.plan is None)
    out = Text()
    if plans:
        out.append(
            f"{len(plans)} entr{'y' if len(plans) == 1 else 'ies'}: "
            f"{records} record(s) to write, {blobs} blob(s) to upload ({human_bytes(size)}). ",
            style="bold",
        )
        out.append("enter", style="bold reverse")
        out.append(" publish  ")
        out.append("escape", style="bold reverse")
        out.append(" cancel (nothing is written)")
    else:
        out.append("Nothing can be promoted. ", style="bold red")
        out.append("escape", style="bold reverse")
        out.append(" back")
    if failed and plans:
        out.append(
            f"\n{failed} entr{'y' if failed == 1 else 'ies'} will be skipped (see above).",
            style="yellow",
        )
    return out


@dataclass
class PlansReady(Message):
    """Plans for every entry (``items``), or ``error`` when planning as a whole failed."""

    items: list[Any]
    error: str | None = None
    need_login: bool = False


@dataclass
class PlanProgress(Message):
    """``done`` of ``total`` entries planned (shown while the PDS is asked)."""

    done: int
    total: int


class PromotePlanScreen(BrowseScreen):
    """The plan for promoting ``entries``; ``enter`` confirms, ``escape`` cancels."""

    DEFAULT_CSS = """
    PromotePlanScreen #promote-target { height: auto; padding: 0 1; background: $boost; }
    PromotePlanScreen #promote-scroll { height: 1fr; padding: 0 1; }
    PromotePlanScreen #promote-summary {
        height: auto; padding: 0 1; border-top: solid $primary-darken-2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("back", "back"),
        Binding("enter", "confirm", "Publish", priority=True, id="promote-confirm"),
        Binding("ctrl+r", "replan", "Plan again", id="promote-replan"),
    ]

    def __init__(
        self, entries: list[IndexEntry], *, plans: list[PlannedEntry] | None = None
    ) -> None:
        super().__init__()
        self.entries = list(entries)
        self.items: list[PlannedEntry] | None = plans
        self._login_offered = False
        self._shown_full = True

    def crumbs(self) -> list[str]:
        n = len(self.entries)
        return [f"promote {n} entr{'y' if n == 1 else 'ies'}"]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="promote-target")
        with VerticalScroll(id="promote-scroll"):
            yield Static("", id="promote-plan")
        yield Static("", id="promote-summary")

    def on_mount(self) -> None:
        if getattr(self.app, "readonly", False):
            self._show_message(
                "Opened with --readonly: promotion is disabled (it writes the promotion state "
                "into the index).",
                style="bold red",
            )
            return
        if self.items is not None:
            self._show_plans(self.items)
        else:
            self._plan()
        self.query_one("#promote-scroll").focus()

    # -- planning
    def _plan(self) -> None:
        self.items = None
        n = len(self.entries)
        self._show_message(
            f"Planning {n} entr{'y' if n == 1 else 'ies'}: asking the PDS what exists… "
            "(nothing is written; escape to cancel)"
        )
        self._plan_worker()

    @work(thread=True, exclusive=True, group="promote-plan", exit_on_error=False)
    def _plan_worker(self) -> None:
        from atdata_core.errors import AtdataError, NotLoggedInError

        from ..workers.login import backend_for
        from ..workers.promote import plan_entries

        worker = get_current_worker()
        index = self.index
        if index is None:
            self.post_message(PlansReady([], "the index is not open yet; try again in a moment"))
            return
        try:
            backend = backend_for(self.app)
            if backend.client.session is None:
                self.post_message(PlansReady([], None, need_login=True))
                return

            def planned(i: int, _item: PlannedEntry) -> None:
                self.post_message(PlanProgress(i + 1, len(self.entries)))

            items = plan_entries(
                index, backend, self.entries, cancel=lambda: worker.is_cancelled, on_plan=planned
            )
        except NotLoggedInError as exc:
            self.post_message(PlansReady([], str(exc), need_login=True))
            return
        except AtdataError as exc:
            self.post_message(PlansReady([], str(exc)))
            return
        if not worker.is_cancelled:
            self.post_message(PlansReady(items))

    @on(PlanProgress)
    def _plan_progress(self, message: PlanProgress) -> None:
        if self.items is None:
            self.query_one("#promote-summary", Static).update(
                Text(f"planned {message.done} of {message.total}…", style="dim")
            )

    @on(PlansReady)
    def _plans_ready(self, message: PlansReady) -> None:
        if message.need_login:
            self._offer_login(message.error)
            return
        if message.error is not None:
            self._show_message(message.error, style="bold red")
            self.query_one("#promote-summary", Static).update(
                Text("ctrl+r plan again · escape back", style="dim")
            )
            return
        self._show_plans(message.items)

    def _offer_login(self, why: str | None) -> None:
        from .login import LoginScreen

        if self._login_offered:
            self._show_message(why or "Not logged in.", style="bold red")
            return
        self._login_offered = True
        reason = "Promotion publishes to your account on the AT Protocol network: log in first."
        if why:
            reason = f"{why}\n{reason}"

        def after(handle: str | None) -> None:
            if handle:
                self._login_offered = False
                self._plan()
            else:
                self.action_back()
                self.notify("Promotion needs a login; nothing was published", severity="warning")

        self.app.push_screen(LoginScreen(reason=reason), after)

    def _show_message(self, text: str, style: str = "") -> None:
        self.query_one("#promote-plan", Static).update(Text(text, style=style))
        self.query_one("#promote-target", Static).update("")
        self.query_one("#promote-summary", Static).update("")

    def _show_plans(self, items: list[PlannedEntry]) -> None:
        self.items = items
        plans = [i.plan for i in items if i.plan is not None]
        full = self.size.width >= FULL_WIDTH
        target = Text()
        if plans:
            p = plans[0]
            target.append("Publish to ", style="dim")
            target.append(f"@{p.handle}", style="bold")
            target.append(f" on {p.pds}", style="dim")
            if not full:
                target.append(f"\nrecords in at://{p.did}/science.alt.dataset.…", style="dim")
            else:
                target.append(f"  ({p.did})", style="dim")
        self.query_one("#promote-target", Static).update(target)
        body = Text()
        for number, item in enumerate(items, 1):
            body.append_text(plan_text(number, item, full=full))
            body.append("\n")
        body.rstrip()
        self.query_one("#promote-plan", Static).update(body)
        self.query_one("#promote-summary", Static).update(plans_summary(items))
        self._shown_full = full

    def on_resize(self) -> None:
        if self.items is not None and (self.size.width >= FULL_WIDTH) != self._shown_full:
            self._show_plans(self.items)

    def plan_text(self) -> str:
        """The plan as plain text (for tests and for copying)."""
        if not self.items:
            return ""
        return "\n".join(
            plan_text(i, item, full=True).plain for i, item in enumerate(self.items, 1)
        )

    # -- actions
    def action_replan(self) -> None:
        self._plan()

    def action_confirm(self) -> None:
        if getattr(self.app, "readonly", False):
            self.notify("Opened with --readonly: promotion is disabled", severity="error")
            return
        if not self.items:
            self.notify("The plan is not ready yet", severity="warning")
            return
        ready = [i for i in self.items if i.plan is not None]
        if not ready:
            self.notify("Nothing can be promoted", severity="warning")
            return
        jobs = [start_promote_job(self.app, item.entry, item.plan) for item in ready]
        from ..widgets.jobs import JobsScreen

        self.app.pop_screen()
        self.app.push_screen(JobsScreen(select=jobs[0].id))


def start_promote_job(app: Any, entry: IndexEntry, plan: PromotionPlan | None) -> Job:
    """Submit one entry's promotion as a job; on success tell the user the ``at://`` URI."""
    from ..jobs import JobState
    from ..workers.login import backend_for
    from ..workers.promote import promote_job, promote_title

    def done(job: Job) -> None:
        if job.state is JobState.DONE:
            app.notify(
                f"{job.result_text}  (y in the jobs panel copies it)",
                title=f"Published {entry.name}",
                timeout=8,
            )
            for screen in app.screen_stack:
                refresh = getattr(screen, "action_refresh", None)
                if isinstance(screen, BrowseScreen) and callable(refresh):
                    refresh()
        elif job.state is JobState.FAILED:
            app.notify(
                f"{job.error}\nPress r on it in the jobs panel (J) to resume.",
                title=f"Promotion of {entry.name} failed",
                severity="error",
                timeout=12,
            )

    backend = backend_for(app)
    return app.jobs.submit(
        "promote",
        promote_title(entry, plan),
        promote_job(app.index, backend, entry, plan),
        on_done=done,
    )
