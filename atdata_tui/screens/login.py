"""``LoginScreen``: log in to the AT Protocol network with a handle (or DID) and an app password.

As the handle is typed, its DID document is resolved in a thread worker and the PDS it names
becomes the default (shown in the PDS field's placeholder; typing a URL overrides it). Enter logs
in as a ``login`` job; failures (wrong password, unknown handle, PDS unreachable) are shown inside
the modal, which stays open. On success the session is saved (0600, tokens only: the password is
never stored), ``app.session_handle`` shows the handle in the status bar and the modal closes with
the handle. ``logout(app)`` and ``resume_session(app)`` (at start-up, in the background) live here
too, for the app's hook points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static
from textual.worker import get_current_worker

from ..messages import SessionChanged

if TYPE_CHECKING:
    from ..jobs import Job

#: Seconds after the last keystroke in the handle before its PDS is looked up.
RESOLVE_DELAY = 0.6


@dataclass
class PdsResolved(Message):
    """The handle typed as request ``generation`` lives on ``pds`` (or could not be resolved)."""

    generation: int
    actor: str
    pds: str | None
    did: str | None
    error: str | None


class LoginScreen(ModalScreen[str | None]):
    """Handle or DID, app password (masked), PDS URL (defaults from the DID document)."""

    DEFAULT_CSS = """
    LoginScreen { align: center middle; }
    LoginScreen > #login-dialog {
        width: 76; max-width: 96%; height: auto; border: thick $primary; background: $surface;
        padding: 0 1;
    }
    LoginScreen #login-title { text-style: bold; padding-bottom: 1; width: 1fr; }
    LoginScreen .login-row { height: 1; margin-bottom: 1; }
    LoginScreen .login-row Label { width: 14; color: $text-muted; }
    LoginScreen .login-row Input { width: 1fr; }
    LoginScreen #login-pds-status { color: $text-muted; height: auto; padding-left: 14; }
    LoginScreen #login-error { color: $error; height: auto; margin-top: 1; }
    LoginScreen #login-busy { color: $accent; height: auto; margin-top: 1; }
    LoginScreen .empty { display: none; }
    LoginScreen #login-note { color: $text-muted; height: auto; padding-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="login-cancel"),
        Binding("ctrl+s", "submit", "Log in", priority=True, id="login-submit"),
    ]

    def __init__(self, handle: str | None = None, *, reason: str | None = None) -> None:
        super().__init__()
        self._handle = handle or ""
        self._reason = reason
        self._generation = 0
        self._resolved: tuple[str, str] | None = None  # (actor, pds)
        self._timer: Any = None
        self._job: Job | None = None

    def compose(self) -> ComposeResult:
        from atdata_core.config import session_path

        with Vertical(id="login-dialog"):
            yield Label("Log in to the AT Protocol network", id="login-title")
            if self._reason:
                yield Static(self._reason, id="login-reason")
            with Horizontal(classes="login-row"):
                yield Label("Handle or DID")
                yield Input(
                    self._handle,
                    placeholder="alice.bsky.social or did:plc:…",
                    id="login-handle",
                    compact=True,
                )
            with Horizontal(classes="login-row"):
                yield Label("App password")
                yield Input(
                    placeholder="xxxx-xxxx-xxxx-xxxx (from your account's settings)",
                    password=True,
                    id="login-password",
                    compact=True,
                )
            with Horizontal(classes="login-row"):
                yield Label("PDS URL")
                yield Input(
                    placeholder="from the handle's DID document",
                    id="login-pds",
                    compact=True,
                )
            yield Static("", id="login-pds-status", classes="empty")
            yield Static("", id="login-busy", classes="empty")
            yield Static("", id="login-error", classes="empty")
            yield Static(
                Text.assemble(
                    ("enter", "bold"),
                    " log in  ·  ",
                    ("escape", "bold"),
                    " cancel  ·  ",
                    ("tab", "bold"),
                    " next field\n",
                    (
                        "The password goes to your PDS once and is never stored; the session is "
                        f"kept in {session_path()} (mode 0600).",
                        "dim",
                    ),
                ),
                id="login-note",
            )

    def on_mount(self) -> None:
        handle = self.query_one("#login-handle", Input)
        if self._handle:
            self.query_one("#login-password", Input).focus()
            self._resolve_now()
        else:
            handle.focus()

    # -- PDS from the DID document, as the handle is typed
    @on(Input.Changed, "#login-handle")
    def _handle_changed(self, _event: Input.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(RESOLVE_DELAY, self._resolve_now)

    def _resolve_now(self) -> None:
        actor = self.query_one("#login-handle", Input).value.strip().removeprefix("@")
        self._generation += 1
        self._resolved = None
        if "." not in actor and not actor.startswith("did:"):
            self._say("#login-pds-status", "")
            self._set_pds_placeholder("from the handle's DID document")
            return
        self._say("#login-pds-status", Text(f"looking up the PDS of {actor}…", style="dim"))
        self._resolve_worker(self._generation, actor)

    @work(thread=True, exclusive=True, group="login-resolve", exit_on_error=False)
    def _resolve_worker(self, generation: int, actor: str) -> None:
        from atdata_core.errors import AtdataError

        from ..workers.login import client_for, resolve_pds

        worker = get_current_worker()
        try:
            ident = resolve_pds(client_for(self.app), actor)
        except AtdataError as exc:
            if not worker.is_cancelled:
                self.post_message(PdsResolved(generation, actor, None, None, str(exc)))
            return
        if not worker.is_cancelled:
            self.post_message(PdsResolved(generation, actor, ident.pds, ident.did, None))

    @on(PdsResolved)
    def _pds_resolved(self, message: PdsResolved) -> None:
        if message.generation != self._generation:
            return
        if message.pds is None:
            self._say("#login-pds-status", Text(message.error or "cannot resolve", style="yellow"))
            self._set_pds_placeholder("enter the PDS URL by hand")
            return
        self._resolved = (message.actor, message.pds)
        self._set_pds_placeholder(f"{message.pds} (from the DID document)")
        self._say("#login-pds-status", Text(f"{message.did} lives on {message.pds}", style="dim"))

    def _say(self, selector: str, text: str | Text) -> None:
        """Update one of the status lines; an empty one takes no room."""
        widget = self.query_one(selector, Static)
        widget.update(text)
        widget.set_class(not str(text), "empty")

    def _set_pds_placeholder(self, text: str) -> None:
        self.query_one("#login-pds", Input).placeholder = text

    # -- submitting
    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "login-handle" and not self.query_one("#login-password", Input).value:
            self.query_one("#login-password", Input).focus()
            return
        self.action_submit()

    def action_submit(self) -> None:
        if self._job is not None and self._job.running:
            return
        handle = self.query_one("#login-handle", Input).value.strip()
        password_input = self.query_one("#login-password", Input)
        pds = self.query_one("#login-pds", Input).value.strip() or None
        if not handle:
            self._error("Give your handle (like alice.bsky.social) or your DID.")
            self.query_one("#login-handle", Input).focus()
            return
        if not password_input.value:
            self._error("Give an app password (never your main password).")
            password_input.focus()
            return
        if pds is None and self._resolved is not None and self._resolved[0] == handle.lstrip("@"):
            pds = self._resolved[1]
        self._error("")
        self._say(
            "#login-busy",
            Text(f"Logging in as {handle}{f' at {pds}' if pds else ''}…  (escape cancels)"),
        )
        self._job = submit_login(self.app, handle, password_input.value, pds, self._login_done)

    def _login_done(self, job: Job) -> None:
        from ..jobs import JobState

        if not self.is_attached:
            return
        self._say("#login-busy", "")
        if job.state is JobState.DONE and job.result_text:
            self.query_one("#login-password", Input).value = ""
            self.dismiss(job.result_text)
            return
        if job.state is JobState.CANCELLED:
            return
        message = job.error or "login failed"
        self._error(message)
        lowered = message.lower()
        target = "#login-password" if "password" in lowered else "#login-handle"
        if "cannot reach" in lowered:
            target = "#login-pds"
        field = self.query_one(target, Input)
        field.focus()
        if target == "#login-password":
            field.value = ""

    def _error(self, text: str) -> None:
        self._say("#login-error", Text(text, style="bold red") if text else "")

    def action_cancel(self) -> None:
        if self._job is not None and self._job.running:
            self._job.cancel()
        self.query_one("#login-password", Input).value = ""
        self.dismiss(None)


def submit_login(app: Any, handle: str, password: str, pds: str | None, on_done: Any = None) -> Job:
    """Log in as a ``login`` job; the status bar shows the handle on success.

    The password lives only in this closure and is dropped as soon as the request returns (the
    job is not retryable: a retry would need the password again).
    """
    from ..jobs import JobState
    from ..workers.login import client_for, display_handle, login, pds_from_did_document

    secret = [password]

    def run(ctx: Any) -> str:
        try:
            client = client_for(app)
            target = pds
            if target is None and "@" not in handle.lstrip("@"):
                ctx.report(detail=f"looking up {handle}")
                target = pds_from_did_document(client, handle)
            ctx.report(detail=f"asking {target or 'the PDS'}")
            ctx.check()
            info = login(client, handle, secret[0], pds=target)
        finally:
            secret.clear()
        ctx.log(f"logged in as @{info.handle} ({info.did}) at {info.pds}")
        return display_handle(info) or handle

    def done(job: Job) -> None:
        if job.state is JobState.DONE and job.result_text:
            app.post_message(SessionChanged(job.result_text))
            app.notify(f"Logged in as @{job.result_text}", timeout=4)
        if on_done is not None:
            on_done(job)

    return app.jobs.submit("login", f"log in {handle}", run, on_done=done, retryable=False)


def logout(app: Any) -> None:
    """End the session (revoke it on the PDS, delete the session file) in the background."""
    from atdata_core.errors import AtdataError

    from ..workers.login import client_for
    from ..workers.login import logout as do_logout

    def run() -> None:
        try:
            do_logout(client_for(app))
        except AtdataError as exc:
            app.call_from_thread(app.notify, f"Logging out: {exc}", severity="warning")
        app.post_message(SessionChanged(None))
        app.call_from_thread(app.notify, "Logged out; the saved session was deleted", timeout=4)

    app.run_worker(run, thread=True, group="session", exit_on_error=False, name="logout")


def resume_session(app: Any) -> None:
    """Resume a saved session in a thread worker at start-up (never delays the first paint)."""

    def run() -> None:
        from atdata_core.errors import AtdataError

        from ..workers.login import client_for, current_session, display_handle

        try:
            info = current_session(client_for(app))
        except AtdataError:
            return  # a damaged session file: the user logs in again when needed
        handle = display_handle(info)
        if handle:
            app.post_message(SessionChanged(handle))

    app.run_worker(run, thread=True, group="session", exit_on_error=False, name="resume-session")
