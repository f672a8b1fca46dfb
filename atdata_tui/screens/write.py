"""``NewDatasetScreen``: import samples into a new dataset, by keyboard, as a background job.

Pick the kind of source and its path; the schema inferred from a bounded prefix appears at once
(inferred in a thread worker) and can be edited (``e`` rename, ``t`` type, ``o`` optional, ``d``
drop, ``u`` undo edits). Choose the name (validated as you type), the repository (its store is
shown), shard limits and a description, then ``ctrl+s``: the write runs as a job in the jobs
panel (progress, samples/s, ETA, ``c`` cancels; a cancelled write leaves nothing behind).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Select, Static
from textual.worker import get_current_worker

from ..bindings import bind
from . import BrowseScreen

if TYPE_CHECKING:
    from atdata_core.importers import ImportSchema, ImportSource

    from ..jobs import Job

KIND_OPTIONS: list[tuple[str, str]] = [
    ("detect from path", "auto"),
    ("JSON Lines", "jsonl"),
    ("CSV", "csv"),
    ("folder of images", "images"),
    ("tar URL(s)", "tar"),
]
IMAGE_MODES: list[tuple[str, str]] = [
    ("HxWx3 uint8 array", "array"),
    ("PNG/JPEG bytes", "encoded"),
]
#: Seconds after the last keystroke in the path before the source is (re)inspected.
INSPECT_DELAY = 0.4


class PromptScreen(ModalScreen[str | None]):
    """Ask for one value (rename a field, change its type); ``escape`` keeps the old one."""

    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical {
        width: 64; max-width: 95%; height: auto; border: thick $primary; background: $surface;
        padding: 0 1;
    }
    PromptScreen #prompt-error { color: $error; height: auto; }
    PromptScreen #prompt-help { color: $text-muted; height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompt-cancel")
    ]

    def __init__(self, title: str, value: str, help: str = "", check: Any = None) -> None:
        super().__init__()
        self._title = title
        self._value = value
        self._help = help
        self._check = check

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, id="prompt-title")
            yield Input(self._value, id="prompt-input", compact=True)
            yield Static("", id="prompt-error")
            if self._help:
                yield Static(self._help, id="prompt-help")

    @on(Input.Submitted, "#prompt-input")
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if self._check is not None:
            try:
                self._check(value)
            except Exception as exc:  # show why, keep the prompt open
                self.query_one("#prompt-error", Static).update(str(exc))
                return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SchemaTable(DataTable[Any]):
    """The inferred schema, one row per field; its keys edit the highlighted field."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e,n", "screen.rename_field", "Rename", id="field-rename"),
        Binding("t", "screen.retype_field", "Type", id="field-type"),
        Binding("o", "screen.toggle_optional", "Optional", id="field-optional"),
        Binding("d,delete", "screen.drop_field", "Drop", id="field-drop"),
        Binding("u", "screen.reset_schema", "Undo edits", id="field-reset"),
    ]


@dataclass
class SourceInspected(Message):
    """A source was opened (``source``) or could not be (``error``), for request ``generation``."""

    generation: int
    source: Any
    error: str | None


@dataclass
class RequestChecked(Message):
    """The name is free (``error`` is None) and the write can start."""

    error: str | None


class NewDatasetScreen(BrowseScreen):
    """Write a new dataset from JSON Lines, CSV, a folder of images or existing tar shards."""

    DEFAULT_CSS = """
    NewDatasetScreen #write-form { height: 1fr; padding: 0 1; }
    NewDatasetScreen .row { height: 1; }
    NewDatasetScreen #name-row { margin-top: 1; }
    NewDatasetScreen .row Label { width: 10; color: $text-muted; }
    NewDatasetScreen .row .short { width: 12; }
    NewDatasetScreen .row .label2 { width: auto; padding: 0 1 0 2; color: $text-muted; }
    NewDatasetScreen #source-kind { width: 22; }
    NewDatasetScreen #source-path { width: 1fr; }
    NewDatasetScreen #dataset-name { width: 1fr; }
    NewDatasetScreen #dataset-repo { width: 20; }
    NewDatasetScreen #image-mode { width: 24; }
    NewDatasetScreen #description { width: 1fr; }
    NewDatasetScreen #source-status, NewDatasetScreen #name-status {
        height: auto; max-height: 3; color: $text-muted; padding-left: 10;
    }
    NewDatasetScreen .error { color: $error; }
    NewDatasetScreen #schema-table { height: 1fr; min-height: 3; margin-left: 10; }
    NewDatasetScreen #schema-help { color: $text-muted; padding-left: 10; height: 1; }
    NewDatasetScreen #write-button { min-width: 10; margin-left: 2; }
    NewDatasetScreen #skip-bad { width: auto; margin-left: 2; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("back", "back"),
        Binding("ctrl+s", "write", "Write", priority=True, id="write-dataset"),
    ]

    def __init__(self, path: str | None = None, kind: str = "auto") -> None:
        super().__init__()
        self._initial_path = path
        self._initial_kind = kind
        self._generation = 0
        self.source: ImportSource | None = None
        self._inferred: ImportSchema | None = None
        self._name_touched = False
        self._inspect_timer: Any = None
        self._inspected_request: tuple[Any, ...] | None = None
        self._pending: Any = None  # the WriteRequest whose name is being checked

    def crumbs(self) -> list[str]:
        return ["new dataset"]

    # -- layout
    def compose_body(self) -> ComposeResult:
        repos = self._repo_options()
        with Vertical(id="write-form"):
            with Horizontal(classes="row"):
                yield Label("Source")
                yield Select(
                    KIND_OPTIONS,
                    value=self._initial_kind,
                    allow_blank=False,
                    id="source-kind",
                    compact=True,
                )
                yield Input(
                    self._initial_path or "",
                    placeholder="path to .jsonl / .csv / image folder, or tar URL(s)",
                    id="source-path",
                    compact=True,
                )
            yield Static(
                "Type a path; the schema is inferred from its first rows.", id="source-status"
            )
            yield SchemaTable(id="schema-table", cursor_type="row")
            yield Static("e rename · t type · o optional · d drop · u undo edits", id="schema-help")
            with Horizontal(classes="row", id="name-row"):
                yield Label("Name")
                yield Input(placeholder="dataset name", id="dataset-name", compact=True)
                yield Label("repo", classes="label2")
                yield Select(
                    repos or [("local", "local")],
                    value=repos[0][1] if repos else "local",
                    allow_blank=False,
                    id="dataset-repo",
                    compact=True,
                )
            yield Static("", id="name-status")
            with Horizontal(classes="row"):
                yield Label("Shards")
                yield Input("10000", id="maxcount", type="integer", compact=True, classes="short")
                yield Label("samples, max", classes="label2")
                yield Input(placeholder="64M", id="maxsize", compact=True, classes="short")
                yield Label("bytes", classes="label2")
                yield Checkbox("skip bad rows", id="skip-bad", compact=True)
            with Horizontal(classes="row", id="images-row"):
                yield Label("Images")
                yield Select(
                    IMAGE_MODES, value="array", allow_blank=False, id="image-mode", compact=True
                )
            with Horizontal(classes="row"):
                yield Label("About")
                yield Input(placeholder="description (optional)", id="description", compact=True)
                yield Button("Write", id="write-button", variant="primary", compact=True)

    def _repo_options(self) -> list[tuple[str, str]]:
        index = self.index
        if index is None:
            return []
        return [(name, name) for name, repo in index.repos.items() if repo.data_store is not None]

    def on_mount(self) -> None:
        table = self.query_one(SchemaTable)
        for label, key in (
            ("field", "name"),
            ("type", "type"),
            ("optional", "optional"),
            ("from", "source"),
        ):
            table.add_column(label, key=key)
        self.query_one("#images-row").display = False
        self._update_store_label()
        self.query_one("#source-path", Input).focus()
        if self._initial_path:
            self._inspect()

    # -- inspecting the source
    def _kind(self) -> str | None:
        value = self.query_one("#source-kind", Select).value
        return None if value in ("auto", Select.NULL) else str(value)

    def _schedule_inspect(self) -> None:
        if self._inspect_timer is not None:
            self._inspect_timer.stop()
        self._inspect_timer = self.set_timer(INSPECT_DELAY, self._inspect)

    def _inspect(self) -> None:
        path = self.query_one("#source-path", Input).value.strip()
        if not path:
            self._generation += 1
            self._inspected_request = None
            self._set_source(None, "Type a path; the schema is inferred from its first rows.")
            return
        skip = self.query_one("#skip-bad", Checkbox).value
        mode = str(self.query_one("#image-mode", Select).value)
        request = (path, self._kind(), skip, mode)
        if request == self._inspected_request:
            return  # same source, same options: keep the schema edits
        self._generation += 1
        self._inspected_request = request
        self.query_one("#source-status", Static).update(Text(f"Reading {path}…", style="dim"))
        self._inspect_worker(self._generation, path, self._kind(), skip, mode)

    @work(thread=True, exclusive=True, group="inspect-source", exit_on_error=False)
    def _inspect_worker(
        self, generation: int, path: str, kind: str | None, skip: bool, mode: str
    ) -> None:
        from atdata_core.errors import AtdataError

        from ..workers.write import inspect_source

        worker = get_current_worker()
        try:
            source: Any = inspect_source(
                os.path.expanduser(path),
                kind,  # type: ignore[arg-type]
                on_error="skip" if skip else "raise",
                image_mode=mode,  # type: ignore[arg-type]
            )
            if source.kind in ("jsonl", "csv", "images"):
                source.count()
        except AtdataError as exc:
            if not worker.is_cancelled:
                self.post_message(SourceInspected(generation, None, str(exc)))
            return
        if not worker.is_cancelled:
            self.post_message(SourceInspected(generation, source, None))

    @on(SourceInspected)
    def _inspected(self, message: SourceInspected) -> None:
        if message.generation != self._generation:
            return  # an answer to an older path
        if message.error is not None:
            self._set_source(None, message.error, error=True)
            return
        source: ImportSource = message.source
        if source.total is None:
            total = "size unknown until written"
        elif source.kind == "images":
            total = f"{source.total:,} images"
        else:
            total = f"≈{source.total:,} rows"
        status = f"{source.describe().split(',')[0]} · {len(source.schema.fields)} fields · {total}"
        self._set_source(source, status)
        if not self._name_touched:
            self._suggest_name(source)

    def _set_source(self, source: ImportSource | None, status: str, *, error: bool = False) -> None:
        self.source = source
        self._inferred = source.schema.copy() if source is not None else None
        label = self.query_one("#source-status", Static)
        label.update(Text(status, style="red" if error else ""))
        label.set_class(error, "error")
        self.query_one("#images-row").display = source is not None and source.kind == "images"
        self._fill_schema()

    def _suggest_name(self, source: ImportSource) -> None:
        import re

        base = os.path.basename(source.path.rstrip("/")) or "dataset"
        base = re.sub(r"\.(jsonl|ndjson|json|csv|tsv|tar)$", "", base, flags=re.I)
        base = re.sub(r"[^A-Za-z0-9._+-]+", "-", base).strip("-._+") or "dataset"
        name_input = self.query_one("#dataset-name", Input)
        name_input.value = base[:200]
        self._name_touched = False

    def _fill_schema(self, keep: str | None = None) -> None:
        table = self.query_one(SchemaTable)
        row = table.cursor_row
        table.clear()
        if self.source is None:
            return
        for f in self.source.schema.fields:
            table.add_row(
                Text(f.name, style="bold"),
                Text(f.type.describe()),
                Text("yes" if f.optional else "no", style="" if f.optional else "dim"),
                Text(f.source if f.source != f.name else "", style="dim"),
                key=f.source,
            )
        if table.row_count:
            if keep is not None:
                row = next(
                    (i for i, f in enumerate(self.source.schema.fields) if f.source == keep), row
                )
            table.move_cursor(row=min(max(row, 0), table.row_count - 1))

    # -- form events
    @on(Input.Changed, "#source-path")
    def _path_changed(self, _event: Input.Changed) -> None:
        self._schedule_inspect()

    @on(Input.Submitted, "#source-path")
    def _path_submitted(self, _event: Input.Submitted) -> None:
        if self._inspect_timer is not None:
            self._inspect_timer.stop()
        self._inspected_request = None  # enter reads the source again (it may have changed)
        self._inspect()
        self.query_one(SchemaTable).focus()

    @on(Select.Changed, "#source-kind")
    @on(Select.Changed, "#image-mode")
    @on(Checkbox.Changed, "#skip-bad")
    def _options_changed(self, _event: Message) -> None:
        if self.query_one("#source-path", Input).value.strip():
            self._inspect()

    @on(Select.Changed, "#dataset-repo")
    def _repo_changed(self, _event: Select.Changed) -> None:
        self._update_store_label()

    @on(Input.Changed, "#dataset-name")
    def _name_changed(self, event: Input.Changed) -> None:
        if event.input.has_focus:
            self._name_touched = True
        self._validate_name()

    def _validate_name(self) -> str | None:
        from atdata_core.errors import RefError
        from atdata_core.refs import validate_dataset_name

        name = self.query_one("#dataset-name", Input).value.strip()
        status = self.query_one("#name-status", Static)
        if not name:
            status.update(Text("Give the dataset a name (letters, digits, . _ + -).", style="dim"))
            return None
        try:
            validate_dataset_name(name)
        except RefError as exc:
            status.update(Text(str(exc), style="red"))
            return None
        store = self._store_text()
        status.update(
            Text(f"→ {self._ref(name)}" + (f" · shards in {store}" if store else ""), style="dim")
        )
        return name

    def _ref(self, name: str) -> str:
        repo = str(self.query_one("#dataset-repo", Select).value)
        return name if repo == "local" else f"{repo}/{name}"

    def _store_text(self) -> str:
        """Where the shards will go: the chosen repository's store."""
        index = self.index
        repo_name = str(self.query_one("#dataset-repo", Select).value)
        repo = index.repos.get(repo_name) if index is not None else None
        store = repo.data_store if repo is not None else None
        if store is None:
            return ""
        where = getattr(store, "root", None) or getattr(store, "bucket", None) or ""
        return f"{store.kind} store {where}".rstrip()

    def _update_store_label(self) -> None:
        self._validate_name()

    # -- schema edits (bindings of SchemaTable run here)
    def _field(self) -> Any:
        if self.source is None:
            return None
        table = self.query_one(SchemaTable)
        if not table.row_count:
            return None
        return self.source.schema.fields[table.cursor_row]

    def action_rename_field(self) -> None:
        f = self._field()
        if f is None:
            return
        schema = self.source.schema  # type: ignore[union-attr]

        def check(value: str) -> None:
            probe = schema.copy()
            probe.rename(f.name, value)

        def done(value: str | None) -> None:
            if value:
                schema.rename(f.name, value)
                self._fill_schema(keep=f.source)

        self.app.push_screen(
            PromptScreen(f"Rename field {f.name!r} to", f.name, "letters, digits and _", check),
            done,
        )

    def action_retype_field(self) -> None:
        from atdata_core.importers import TYPE_CHOICES, parse_type

        f = self._field()
        if f is None:
            return
        schema = self.source.schema  # type: ignore[union-attr]

        def done(value: str | None) -> None:
            if value:
                schema.set_type(f.name, value)
                self._fill_schema(keep=f.source)

        self.app.push_screen(
            PromptScreen(
                f"Type of field {f.name!r} (values are converted while writing)",
                f.type.describe(),
                f"{', '.join(TYPE_CHOICES)}; or list[T], ndarray[uint8]",
                parse_type,
            ),
            done,
        )

    def action_toggle_optional(self) -> None:
        f = self._field()
        if f is not None:
            self.source.schema.set_optional(f.name, not f.optional)  # type: ignore[union-attr]
            self._fill_schema(keep=f.source)

    def action_drop_field(self) -> None:
        from atdata_core.errors import AtdataError

        f = self._field()
        if f is None:
            return
        try:
            self.source.schema.drop(f.name)  # type: ignore[union-attr]
        except AtdataError as exc:
            self.notify(str(exc), severity="warning")
            return
        self._fill_schema()

    def action_reset_schema(self) -> None:
        if self.source is not None and self._inferred is not None:
            self.source.schema = self._inferred.copy()
            self._fill_schema()
            self.notify("Schema edits undone", timeout=2)

    # -- writing
    @on(Button.Pressed, "#write-button")
    def _write_pressed(self, _event: Button.Pressed) -> None:
        self.action_write()

    def _request(self) -> Any:
        """The write request from the form, or ``None`` after saying what is missing."""
        from atdata_core.errors import AtdataError
        from atdata_core.importers import parse_size

        from ..workers.write import WriteRequest

        if getattr(self.app, "readonly", False):
            self.notify("Opened with --readonly: writing is disabled", severity="warning")
            return None
        if self.source is None:
            self.notify("Choose a source first (its schema must show)", severity="warning")
            self.query_one("#source-path", Input).focus()
            return None
        name = self._validate_name()
        if name is None:
            self.notify("Give the dataset a valid name", severity="warning")
            self.query_one("#dataset-name", Input).focus()
            return None
        try:
            count_text = self.query_one("#maxcount", Input).value.strip()
            maxcount = int(count_text) if count_text else None
            if maxcount is not None and maxcount < 1:
                raise ValueError
        except ValueError:
            self.notify("Max samples per shard must be a positive number", severity="warning")
            return None
        try:
            maxsize = parse_size(self.query_one("#maxsize", Input).value)
        except AtdataError as exc:
            self.notify(str(exc), severity="warning")
            return None
        try:
            self.source.schema.sample_type()
        except AtdataError as exc:
            self.notify(str(exc), severity="error")
            return None
        return WriteRequest(
            name=name,
            repo=str(self.query_one("#dataset-repo", Select).value),
            maxcount=maxcount,
            maxsize=maxsize,
            description=self.query_one("#description", Input).value.strip() or None,
        )

    def action_write(self) -> None:
        request = self._request()
        if request is None:
            return
        self._pending = request
        self.query_one("#name-status", Static).update(Text("Checking the name…", style="dim"))
        self._check_worker(request)

    @work(thread=True, exclusive=True, group="check-write", exit_on_error=False)
    def _check_worker(self, request: Any) -> None:
        from atdata_core.errors import AtdataError

        from ..workers.write import check_request

        try:
            check_request(self.index, request)  # type: ignore[arg-type]
        except AtdataError as exc:
            self.post_message(RequestChecked(str(exc)))
            return
        self.post_message(RequestChecked(None))

    @on(RequestChecked)
    def _checked(self, message: RequestChecked) -> None:
        if message.error is not None:
            self.query_one("#name-status", Static).update(Text(message.error, style="red"))
            self.query_one("#dataset-name", Input).focus()
            return
        if self._pending is None or self.source is None:
            return
        job = start_write_job(self.app, self.source, self._pending)
        from ..widgets.jobs import JobsScreen

        self.app.pop_screen()
        self.app.push_screen(JobsScreen(select=job.id))


def start_write_job(app: Any, source: Any, request: Any) -> Job:
    """Submit a write as a job of ``app.jobs``; on success, tell the user and refresh lists."""
    from ..jobs import JobState
    from ..workers.write import write_job

    def done(job: Job) -> None:
        if job.state is JobState.DONE:
            app.notify(f"Wrote {job.result_text}", title="Dataset written", timeout=6)
            if hasattr(app, "local_entries"):
                app.local_entries = None  # recount (the palette offers "demo" only when empty)
            for screen in app.screen_stack:
                refresh = getattr(screen, "action_refresh", None)
                if isinstance(screen, BrowseScreen) and callable(refresh):
                    refresh()
        elif job.state is JobState.FAILED:
            app.notify(
                job.error or "failed",
                title=f"Write of {request.ref} failed",
                severity="error",
                timeout=10,
            )

    return app.jobs.submit(
        "write", f"write {request.ref}", write_job(app.index, source, request), on_done=done
    )
