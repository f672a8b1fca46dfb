"""The Textual app: shell, navigation, the one error handler, and hook points for other screens.

The first screen is drawn before the index is opened (that happens in a thread worker), so the
app is on screen within a few hundred milliseconds even when the index is a remote server that
takes seconds to answer, or is down.

Hook points (for the preview and jobs screens, written separately):

* ``app.index``: the open ``atdata_core.index.Index`` (``None`` while opening).
* ``app.open_preview(entry)``: pushes ``atdata_tui.screens.preview.PreviewScreen(entry)``.
* ``action_login`` / ``action_logout`` / ``action_new_dataset`` / ``action_show_jobs`` /
  ``action_promote``: import ``screens.login.LoginScreen`` (and ``screens.login.logout(app)``),
  ``screens.write.NewDatasetScreen``, ``widgets.jobs.JobsPanel`` (or ``JobsScreen``) and
  ``screens.promote.PromotePlanScreen(entries)`` lazily; while those modules do not exist the
  action says "not available yet".
* ``app.session_handle``: reactive; set it (or post ``messages.SessionChanged``) after login /
  logout and the status bar and the palette follow.
* ``app.jobs``: ``atdata_tui.jobs.JobManager(app)`` when that module exists; post
  ``messages.JobsChanged(running=n)`` to the app (or set ``app.running_jobs``) when the number of
  running jobs changes.
* ``EntriesScreen.marked_entries()``: the entries marked with ``space``.
* ``app.report_error(title, text)``: the one error modal (``Worker.StateChanged`` errors of the
  app's workers land there; screens forward theirs with ``messages.ForwardWorkerErrors``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from . import workers
from .bindings import bind, keymap_from_config
from .commands import AtdataCommands
from .messages import DemoCreated, IndexOpened, JobsChanged, SessionChanged
from .screens import BrowseScreen, Command
from .screens.error import ErrorScreen
from .screens.repositories import RepositoriesScreen
from .workers.index import ATMOSPHERE, NETWORK, IndexOptions

if TYPE_CHECKING:
    from atdata_core.config import Config
    from atdata_core.index import Index, IndexEntry

#: Environment variable: a file the app appends JSON lines of timings to (benchmarks).
TIMINGS_ENV = "ATDATA_TUI_REPORT_TIMINGS"

#: What each worker group does, for the error modal's title.
_WORKER_TITLES = {
    "open-index": "Could not open the index",
    "entry-pages": "Could not list the entries",
    "repositories": "Could not count the repositories",
    "schemas": "Could not load the schemas",
    "schema-detail": "Could not read the schema",
    "schema-diff": "Could not compare the schemas",
    "entry-detail": "Could not reload the entry",
    "entry-verify": "Could not verify the checksums",
    "demo": "Could not create the demo datasets",
    "session": "Could not read the login session",
    "network-search": "Could not search the network",
    "network-schema": "Could not read the schema from the AppView",
    "network-lenses": "Could not list the lenses",
    "network-versions": "Could not list the versions",
}


def describe_exception(error: BaseException) -> str:
    """Our own errors explain themselves; anything else gets its traceback (for a bug report)."""
    from atdata_core.errors import AtdataError

    if isinstance(error, AtdataError):
        return f"{error}\n\n({type(error).__name__})"
    return "".join(traceback.format_exception(error)).rstrip()


class Timings:
    """Wall-clock marks for benchmarks (``ATDATA_TUI_REPORT_TIMINGS=path``); a no-op otherwise.

    Each mark is a JSON line ``{"event", "wall", "max_lag_ms", ...}``; ``max_lag_ms`` is the
    longest the event loop was blocked since the previous mark (a frame cannot be drawn faster).
    A watchdog thread samples the event loop's stack while it is blocked for more than
    ``STALL_S``, and the mark carries the most frequent such stack (``stall_stack``): the
    benchmark then says *what* blocked, not only for how long.
    """

    STALL_S = 0.04
    TICK_S = 0.5

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.max_lag = 0.0
        self._task: asyncio.Task[None] | None = None
        self._beat = time.monotonic()
        self._stalls: dict[str, int] = {}
        self._stop = threading.Event()
        self.max_gc = 0.0
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """``gc.callbacks`` hook: the longest collection since the last mark (GC holds the GIL)."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self.max_gc = max(self.max_gc, time.perf_counter() - self._gc_started)

    @property
    def enabled(self) -> bool:
        return bool(self.path)

    def mark(self, event: str, **extra: Any) -> None:
        if not self.path:
            return
        record = {"event": event, "wall": time.time(), "max_lag_ms": round(self.max_lag * 1000, 2)}
        if self.max_gc:
            record["max_gc_ms"] = round(self.max_gc * 1000, 2)
            self.max_gc = 0.0
        if self._stalls:
            stack, count = max(self._stalls.items(), key=lambda kv: kv[1])
            record["stall_stack"] = stack
            record["stall_samples"] = count
        record.update(extra)
        self.max_lag = 0.0
        self._stalls = {}
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        except OSError:
            self.path = None

    def start(self) -> None:
        if self.path and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._monitor())
            gc.callbacks.append(self._on_gc)
            loop_thread = threading.get_ident()
            threading.Thread(
                target=self._watchdog, args=(loop_thread,), name="atdata-timings", daemon=True
            ).start()

    async def _monitor(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 0.005
        last = tick = loop.time()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            self._beat = time.monotonic()
            self.max_lag = max(self.max_lag, now - last - interval)
            last = now
            if now - tick >= self.TICK_S:  # a line per period, so any window can be measured
                tick = now
                self.mark("tick")

    def _watchdog(self, loop_thread: int) -> None:
        while not self._stop.wait(0.01):
            if time.monotonic() - self._beat < self.STALL_S:
                continue
            frame = sys._current_frames().get(loop_thread)
            if frame is None:
                continue
            summary = traceback.extract_stack(frame)[-8:]
            key = " < ".join(
                f"{os.path.basename(f.filename)}:{f.lineno}:{f.name}" for f in reversed(summary)
            )
            self._stalls[key] = self._stalls.get(key, 0) + 1

    def stop(self) -> None:
        self._stop.set()
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            self._task = None


class AtdataApp(App[None]):
    """Browse indexes: repositories → schemas / entries → entry detail → preview.

    Once started, the app ``gc.freeze()``s what it has built (modules, CSS, widgets): a full
    garbage collection over those ~150k long-lived objects took ~100 ms, a frozen one ~0 ms, and
    scrolling allocates enough to trigger one every few seconds.
    """

    CSS_PATH = "app.tcss"
    TITLE = "atdata-tui"
    #: Only our provider: its commands depend on the state and it includes theme and quit.
    COMMANDS: ClassVar[set[Any]] = {AtdataCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("quit", "quit"),
        bind("help", "help"),
        bind("command-palette", "command_palette", show=False, priority=True),
        bind("show-jobs", "show_jobs", show=False),
    ]

    #: ``opening`` → ``open`` or ``failed``; screens watch it.
    index_state: reactive[str] = reactive("opening")
    #: "backend address" of the main index, for the status bar.
    index_label: reactive[str] = reactive("opening index…")
    #: The logged-in ATProto handle (``None`` when logged out). HOOK: set by the login screen.
    session_handle: reactive[str | None] = reactive(None)
    #: Running jobs (writes, promotions). HOOK: updated from ``JobsChanged`` messages.
    running_jobs: reactive[int] = reactive(0)
    readonly: reactive[bool] = reactive(False)

    def __init__(
        self,
        index: Index | None = None,
        *,
        options: IndexOptions | None = None,
        config: Config | None = None,
        demo: bool | str = False,
        timings_path: str | None = None,
        watch_css: bool = False,
    ) -> None:
        super().__init__(watch_css=watch_css)
        self.index: Index | None = index
        self.options = options or IndexOptions()
        self.config = config
        #: ``True`` creates the demo datasets once the index is open; ``"if-empty"`` only when the
        #: local repository has no entries (decided in the opening worker, not on the event loop).
        self.demo_requested: bool | str = demo
        self.timings = Timings(
            timings_path if timings_path is not None else os.environ.get(TIMINGS_ENV)
        )
        self.jobs: Any = None
        #: Entries in the local repository, once counted (``None``: not known yet).
        self.local_entries: int | None = None
        self.set_reactive(AtdataApp.readonly, self.options.readonly)

    # --- start-up -----------------------------------------------------------------------------------
    def get_default_screen(self) -> Screen[Any]:
        return RepositoriesScreen()

    def on_mount(self) -> None:
        self.timings.start()
        self.timings.mark("mounted")
        self._apply_config()
        if self.index is not None:
            self._index_ready(self.index, [])
        else:
            # After the first frame: the worker imports the core (numpy, msgpack…), which would
            # otherwise compete with drawing the first screen for the interpreter.
            self.index_state = "opening"
            self.call_after_refresh(self.open_index)

    def _apply_config(self) -> None:
        cfg = self.config
        if cfg is None:
            return
        if cfg.keys:
            keymap, warnings = keymap_from_config(cfg.keys)
            self.set_keymap(keymap)
            for warning in warnings:
                self.notify(warning, severity="warning", timeout=8)
        if cfg.theme:
            if cfg.theme in self.available_themes:
                self.theme = cfg.theme
            else:
                self.notify(f"[ui] theme {cfg.theme!r} is unknown", severity="warning")

    def _attach_job_manager(self) -> None:
        """HOOK: ``atdata_tui.jobs.JobManager(app)`` becomes ``app.jobs`` when it exists."""
        try:
            from .jobs import JobManager  # type: ignore[import-not-found]
        except ModuleNotFoundError as exc:
            if exc.name not in ("atdata_tui.jobs", __package__ + ".jobs"):
                raise
            return
        self.jobs = JobManager(self)
        running = getattr(self.jobs, "running_count", None)
        if isinstance(running, int):
            self.running_jobs = running

    def open_index(self) -> None:
        """(Re)open the index in a worker; the screens show "opening index…" meanwhile."""
        self.index_state = "opening"
        self.index_label = "opening index…"
        self._open_index()

    @work(thread=True, exclusive=True, exit_on_error=False, group="open-index")
    def _open_index(self) -> None:
        from atdata_core.errors import AtdataError

        config, problems = self.config, []
        if config is None:  # read here, not before the first paint: it imports the core
            try:
                config = workers.index.load_config(self.options)
            except AtdataError as exc:
                from atdata_core.config import Config

                config, problems = Config(), [f"the config was not used: {exc}"]
            self.call_from_thread(self._config_loaded, config)
        index, more = workers.index.build_index(self.options, config)
        problems += more
        if self.demo_requested == "if-empty":
            try:
                self.demo_requested = index.count_entries() == 0
            except AtdataError:
                self.demo_requested = False
        self.post_message(IndexOpened(index, problems))

    def _config_loaded(self, config: Config) -> None:
        self.config = config
        self._apply_config()

    def on_index_opened(self, message: IndexOpened) -> None:
        self._index_ready(message.index, message.problems)

    def _index_ready(self, index: Index, problems: list[str]) -> None:
        self.index = index
        provider = index.provider
        self.index_label = f"{getattr(provider, 'backend', '?')} {getattr(provider, 'address', '')}"
        self.readonly = self.options.readonly or bool(getattr(index, "readonly", False))
        self.index_state = "open"
        self.timings.mark("index_opened")
        for problem in problems:
            self.report_error("Not everything in the configuration could be used", problem)
        if self.demo_requested:
            self.demo_requested = False
            self.create_demo()
        if self.options.handle:
            self.open_entries(ATMOSPHERE)
        if self.jobs is None:
            self._attach_job_manager()  # imports the core, which the opening worker has loaded
        self.call_after_refresh(self._resume_session)
        self.call_after_refresh(self._preload_screens)
        self.call_after_refresh(gc.freeze)
        # Again once the session check (which imports the ATProto client) has settled.
        self.set_timer(3.0, gc.freeze)

    def _preload_screens(self) -> None:
        """Import the browse screens now (idle) rather than on the first key that opens one."""
        from .screens import entries, entry_detail, help, schemas  # noqa: F401

    def _resume_session(self) -> None:
        """HOOK: ``screens.login.resume_session(app)`` reads the saved login in a worker."""
        import importlib

        try:
            login = importlib.import_module(f"{__package__}.screens.login")
        except ModuleNotFoundError:
            return
        resume = getattr(login, "resume_session", None)
        if resume is not None:
            resume(self)

    @property
    def atmosphere_handle(self) -> str | None:
        """The handle whose datasets the atmosphere repository lists (``--handle`` or the login)."""
        handle = self.options.handle or self.session_handle
        return handle.lstrip("@") if handle else None

    @property
    def appview_url(self) -> str | None:
        """The dataset AppView searched for "network" (``--appview``, else the config's)."""
        if self.options.appview:
            return self.options.appview
        return self.config.atmosphere.appview if self.config is not None else None

    # --- errors -------------------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The ONE place failed workers end up (screens forward theirs here)."""
        if event.state != WorkerState.ERROR:
            return
        worker = event.worker
        if worker.group == "open-index":
            self.index_state = "failed"
            self.index_label = "index not open"
        error = worker.error
        title = _WORKER_TITLES.get(worker.group, f"A background task failed ({worker.group})")
        if error is None:
            self.report_error(title, "no details")
            return
        if type(error).__name__ == "Cancelled":
            return
        self.report_error(title, describe_exception(error))

    def report_error(self, title: str, text: str) -> None:
        """Show an error in the modal (appending to it if it is already open)."""
        if isinstance(self.screen, ErrorScreen):
            self.screen.add_error(title, text)
            return
        for screen in self.screen_stack:
            if isinstance(screen, ErrorScreen):
                screen.add_error(title, text)
                return
        self.push_screen(ErrorScreen(title, text))

    # --- navigation ---------------------------------------------------------------------------------
    def open_entries(self, repo: str) -> None:
        from .screens.entries import EntriesScreen

        if repo == NETWORK:
            self.open_search()
            return
        self.timings.mark("open_entries", repo=repo)
        label = (
            f"@{self.atmosphere_handle}" if repo == ATMOSPHERE and self.atmosphere_handle else repo
        )
        self.push_screen(EntriesScreen(repo, label=label))

    def open_search(self, query: str = "") -> None:
        """The network search screen (results through the AppView)."""
        from .screens.search import SearchScreen

        self.push_screen(SearchScreen(query))

    def open_schemas(self, repo: str) -> None:
        from .screens.schemas import SchemasScreen

        self.push_screen(SchemasScreen(repo))

    def open_entry(self, entry: IndexEntry) -> None:
        from .screens.entry_detail import EntryDetailScreen

        self.push_screen(EntryDetailScreen(entry))

    def open_preview(self, entry: IndexEntry) -> None:
        """HOOK: the preview screen (``screens.preview.PreviewScreen(entry)``) when it exists."""
        try:
            from .screens.preview import PreviewScreen  # type: ignore[import-not-found]
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith("screens.preview"):
                self.notify("Preview is not available yet", severity="warning")
                return
            raise
        self.push_screen(PreviewScreen(entry))

    def go_home(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def copy_text(self, text: str, what: str) -> None:
        """Copy to the clipboard (OSC 52, so it works over SSH) and say what was copied."""
        self.copy_to_clipboard(text)
        shown = text if len(text) <= 60 else text[:59] + "…"
        self.notify(f"Copied {what}: {shown}", timeout=4)

    # --- demo ---------------------------------------------------------------------------------------
    def create_demo(self) -> None:
        if self.index is None:
            self.notify("The index is not open yet", severity="warning")
            return
        if self.readonly:
            self.notify("The index is open read-only", severity="error")
            return
        self.notify("Creating the demo datasets…", timeout=3)
        self._create_demo(self.index)

    @work(thread=True, exclusive=True, exit_on_error=False, group="demo")
    def _create_demo(self, index: Index) -> None:
        from .demo import create_demo

        entries = workers.call(create_demo, index)
        self.post_message(DemoCreated(entries))

    def on_demo_created(self, message: DemoCreated) -> None:
        self.local_entries = None
        self.notify(f"Created {len(message.entries)} demo datasets")
        for screen in self.screen_stack:
            refresh = getattr(screen, "action_refresh", None)
            if isinstance(screen, BrowseScreen) and refresh is not None:
                refresh()

    # --- hook points for other engineers' screens ---------------------------------------------------
    def _optional(self, module: str, name: str, feature: str) -> Any:
        """``atdata_tui.<module>.<name>`` or ``None`` (after telling the user) when it is missing."""
        import importlib

        full = f"{__package__}.{module}"
        try:
            mod = importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name != full:
                raise
            self.notify(f"{feature} is not available yet", severity="warning")
            return None
        value = getattr(mod, name, None)
        if value is None:
            self.notify(f"{feature} is not available yet", severity="warning")
        return value

    def action_login(self) -> None:
        screen = self._optional("screens.login", "LoginScreen", "Log in")
        if screen is not None:
            self.push_screen(screen())

    def action_logout(self) -> None:
        logout = self._optional("screens.login", "logout", "Log out")
        if logout is not None:
            logout(self)

    def action_new_dataset(self) -> None:
        if self.readonly:
            self.notify("The index is open read-only", severity="error")
            return
        screen = self._optional("screens.write", "NewDatasetScreen", "Writing datasets")
        if screen is not None:
            self.push_screen(screen())

    def action_show_jobs(self) -> None:
        import importlib

        try:
            mod = importlib.import_module(f"{__package__}.widgets.jobs")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.widgets.jobs":
                raise
            self.notify("Jobs are not available yet", severity="warning")
            return
        jobs_screen = getattr(mod, "JobsScreen", None)
        if jobs_screen is not None:
            self.push_screen(jobs_screen())
            return
        panel = getattr(mod, "JobsPanel", None)
        if panel is None:
            self.notify("Jobs are not available yet", severity="warning")
            return
        from textual.containers import Vertical
        from textual.screen import ModalScreen

        class _JobsModal(ModalScreen[None]):
            BINDINGS: ClassVar[list[BindingType]] = [bind("close", "dismiss")]

            def compose(self):  # type: ignore[no-untyped-def]
                with Vertical(classes="dialog", id="jobs-dialog"):
                    yield panel()

        self.push_screen(_JobsModal())

    def action_promote(self) -> None:
        if self.readonly:
            self.notify("The index is open read-only", severity="error")
            return
        entries = self._selected_entries()
        if not entries:
            self.notify("Mark entries with space first (or open one)", severity="warning")
            return
        screen = self._optional("screens.promote", "PromotePlanScreen", "Promotion")
        if screen is not None:
            self.push_screen(screen(entries))

    def _selected_entries(self) -> list[IndexEntry]:
        """The marked entries of the entries screen, else its current entry, else the detail's."""
        from .screens.entries import EntriesScreen
        from .screens.entry_detail import EntryDetailScreen

        screen = self.screen
        if isinstance(screen, EntriesScreen):
            marked = screen.marked_entries()
            if marked:
                return marked
            current = screen.current_entry()
            return [current] if current is not None else []
        if isinstance(screen, EntryDetailScreen):
            return [screen.entry]
        return []

    def on_jobs_changed(self, message: JobsChanged) -> None:
        self.running_jobs = message.running

    def on_session_changed(self, message: SessionChanged) -> None:
        self.session_handle = message.handle

    # --- help and palette ---------------------------------------------------------------------------
    def action_help(self) -> None:
        from .screens.help import HelpScreen, binding_rows
        from .widgets.breadcrumbs import SEPARATOR

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        screen = self.screen
        title = SEPARATOR.join(getattr(screen, "crumbs", lambda: [])()) or type(screen).__name__
        self.push_screen(HelpScreen(title, binding_rows(screen)))

    def app_commands(self) -> list[Command]:
        """App-wide commands that fit the current state (the palette adds the screen's)."""
        out: list[Command] = []
        if len(self.screen_stack) > 1:
            out.append(Command("Go to repositories", "Back to the first screen", self.go_home))
        if self.index_state == "failed":
            out.append(Command("Open the index again", "Retry opening the index", self.open_index))
        if self.index_state == "open" and self.local_entries == 0 and not self.readonly:
            out.append(
                Command(
                    "Create demo datasets", "Small datasets to browse and preview", self.create_demo
                )
            )
        if self.session_handle:
            out.append(
                Command("Log out", f"End the session of @{self.session_handle}", self.action_logout)
            )
        else:
            out.append(
                Command("Log in", "Log in to the AT Protocol network (ATProto)", self.action_login)
            )
        if not self.readonly and self.index_state == "open":
            out.append(
                Command(
                    "Write a new dataset",
                    "Import samples into a new entry",
                    self.action_new_dataset,
                )
            )
        if self.appview_url and self.index_state == "open":
            out.append(
                Command(
                    "Search the network",
                    "Find datasets across the AT Protocol network (AppView)",
                    self.open_search,
                )
            )
        if self.jobs is not None:
            out.append(Command("Show jobs", "Running writes and promotions", self.action_show_jobs))
        out.append(
            Command(
                "Help: keys of this screen", "The bindings of the current screen", self.action_help
            )
        )
        return out

    async def action_quit(self) -> None:
        """Quit; while jobs run, ask first (``widgets.jobs.ConfirmQuitScreen``) and cancel them."""
        running = list(self.jobs.running()) if self.jobs is not None else []
        if running:
            try:
                from .widgets.jobs import ConfirmQuitScreen
            except ImportError:
                ConfirmQuitScreen = None  # type: ignore[assignment,misc]
            if ConfirmQuitScreen is not None:

                def answered(quit_: bool | None) -> None:
                    if quit_:
                        self.jobs.cancel_all()
                        self._exit_now()

                self.push_screen(ConfirmQuitScreen(running), answered)
                return
        self._exit_now()

    def _exit_now(self) -> None:
        self.timings.mark("quit")
        self.timings.stop()
        self.exit()
