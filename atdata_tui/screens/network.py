"""A network dataset's schema, the lenses of that schema, and the versions under its label.

Each screen asks the AppView in a thread worker (``workers.network``) and draws what comes back;
everything shown came from strangers, so every string goes through ``safe_line``/``safe_text``.
Lens records name code (repository, commit, path): it is shown as a reference to read, never run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from .. import workers
from ..bindings import bind
from ..jobs import human_bytes
from ..messages import LensesLoaded, NetworkSchemaLoaded, VersionsLoaded
from ..workers.index import human_count, schema_label
from . import BrowseScreen, Command, VimDataTable
from .entry_detail import DetailScroll

if TYPE_CHECKING:
    from atdata_core.atmosphere.appview import LabelVersion, Versions
    from atdata_core.index import IndexEntry

    from ..workers.network import LensRow, NetworkSchema


def _line(value: Any, limit: int | None = None) -> str:
    from atdata_core.safe_text import safe_line

    return safe_line("" if value is None else value, limit)


class _NetworkDetail(BrowseScreen):
    """A scrolling text body filled by one worker; subclasses say what to load and how to draw."""

    BINDINGS: ClassVar[list[BindingType]] = [bind("refresh", "refresh", show=False)]

    def __init__(self, entry: IndexEntry) -> None:
        super().__init__()
        self.entry = entry
        self.repo = "network"

    def compose_body(self) -> ComposeResult:
        with DetailScroll(id="detail-body"):
            yield Static("Asking the AppView…", id="network-detail", markup=False)

    def on_mount(self) -> None:
        self.query_one(DetailScroll).focus()
        self.action_refresh()

    def _show_body(self, renderable: RenderableType) -> None:
        self.query_one("#network-detail", Static).update(renderable)

    def action_refresh(self) -> None:
        index = self.index
        if index is not None:
            self.load(index)

    def load(self, index: Any) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError


# --- schema --------------------------------------------------------------------------------------------


class NetworkSchemaScreen(_NetworkDetail):
    """The fields of a network dataset's schema, and the other versions of that schema."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("result-lenses", "lenses"),
        bind("copy-ref", "copy_ref"),
        bind("refresh", "refresh", show=False),
    ]

    def __init__(self, entry: IndexEntry) -> None:
        super().__init__(entry)
        self.schema: NetworkSchema | None = None

    def crumbs(self) -> list[str]:
        return ["network", _line(self.entry.name, 40), "schema"]

    def load(self, index: Any) -> None:
        self._load(index, self.entry.schema_ref)

    @work(thread=True, exclusive=True, exit_on_error=False, group="network-schema")
    def _load(self, index: Any, uri: str) -> None:
        from ..workers.network import load_network_schema

        self.post_message(NetworkSchemaLoaded(workers.call(load_network_schema, index, uri)))

    def on_network_schema_loaded(self, message: NetworkSchemaLoaded) -> None:
        self.schema = message.schema
        self._show_body(self._renderable(message.schema))

    def _renderable(self, schema: NetworkSchema) -> RenderableType:
        head = Table.grid(padding=(0, 2))
        head.add_column(style="bold", no_wrap=True)
        head.add_column(overflow="fold")
        head.add_row("Schema", Text(f"{_line(schema.name)}@{_line(schema.version)}", style="bold"))
        head.add_row("Record", Text(_line(schema.uri)))
        head.add_row("Of dataset", Text(_line(self.entry.name)))
        if schema.description:
            head.add_row("Description", Text(_line(schema.description)))
        fields = Table(
            title=f"Fields ({len(schema.fields)})",
            title_justify="left",
            title_style="bold",
            box=None,
            header_style="bold",
            padding=(0, 1),
        )
        fields.add_column("Name", no_wrap=True)
        fields.add_column("Type", overflow="fold")
        fields.add_column("Optional", no_wrap=True)
        for f in schema.fields:
            fields.add_row(Text(_line(f.name)), Text(_line(f.type)), "yes" if f.optional else "")
        parts: list[RenderableType] = [head, Text(""), fields]
        if schema.error:
            parts += [Text(""), Text(_line(schema.error), style="bold red")]
        versions = Table(
            title="Versions of this schema by the same author (newest first; ● this one)",
            title_justify="left",
            title_style="bold",
            box=None,
            header_style="bold",
            padding=(0, 1),
        )
        versions.add_column("", no_wrap=True)
        versions.add_column("Version", no_wrap=True)
        versions.add_column("Record", overflow="fold")
        for version, uri in schema.versions:
            versions.add_row(
                "●" if uri == schema.uri else "", Text(_line(version)), Text(_line(uri))
            )
        parts += [Text(""), versions]
        if schema.versions_cut:
            parts.append(
                Text("(the listing was cut: the author has very many schemas)", style="dim")
            )
        parts += [
            Text(""),
            Text("l: lenses from and to this schema · y: copy its at:// URI", style="dim"),
        ]
        return Group(*parts)

    def action_lenses(self) -> None:
        self.app.push_screen(LensesScreen(self.entry))

    def action_copy_ref(self) -> None:
        self.atdata.copy_text(self.entry.schema_ref, "schema at:// URI")

    def commands(self) -> list[Command]:
        return [
            Command("Lenses of this schema", "From and to it", self.action_lenses),
            Command(
                "Copy the schema's at:// URI", _line(self.entry.schema_ref), self.action_copy_ref
            ),
        ]


# --- lenses --------------------------------------------------------------------------------------------


class LensesScreen(_NetworkDetail):
    """Lenses whose source or target is the dataset's schema (code references, never run)."""

    def __init__(self, entry: IndexEntry) -> None:
        super().__init__(entry)
        self.lenses: list[LensRow] | None = None

    def crumbs(self) -> list[str]:
        return ["network", _line(self.entry.name, 40), "lenses"]

    def load(self, index: Any) -> None:
        self._load(index, self.entry.schema_ref)

    @work(thread=True, exclusive=True, exit_on_error=False, group="network-lenses")
    def _load(self, index: Any, uri: str) -> None:
        from ..workers.network import load_lenses

        lenses, skipped = workers.call(load_lenses, index, uri)
        self.post_message(LensesLoaded(lenses, skipped))

    def on_lenses_loaded(self, message: LensesLoaded) -> None:
        self.lenses = message.lenses
        self._show_body(self._renderable(message.lenses, message.skipped))

    def _renderable(self, lenses: list[LensRow], skipped: list[str]) -> RenderableType:
        from ..workers.network import schema_of

        schema = schema_of(self.entry)
        parts: list[RenderableType] = [
            Text(f"Lenses from and to {_line(schema)}", style="bold"),
            Text(_line(self.entry.schema_ref), style="dim"),
            Text(
                "A lens names code (repository, commit, path) that converts samples between two "
                "schemas. It is shown to read: atdata-tui never runs code from the network.",
                style="dim",
            ),
            Text(""),
        ]
        if not lenses:
            parts.append(Text("No lens reads from or writes to this schema."))
        for lens in lenses:
            arrow = "→" if lens.direction == "to" else "←"
            table = Table.grid(padding=(0, 2))
            table.add_column(style="bold", no_wrap=True)
            table.add_column(overflow="fold")
            table.add_row("Lens", Text(_line(lens.name), style="bold"))
            other = lens.other_label or schema_label(lens.other_schema)
            table.add_row("Converts", Text(f"this schema {arrow} {_line(other)}"))
            table.add_row("Other schema", Text(_line(lens.other_schema)))
            table.add_row("Getter", Text(_line(lens.getter)))
            table.add_row("Putter", Text(_line(lens.putter)))
            if lens.language:
                table.add_row("Language", Text(_line(lens.language)))
            table.add_row("Author", Text(_line(lens.author)))
            if lens.description:
                table.add_row("Description", Text(_line(lens.description)))
            table.add_row("Record", Text(_line(lens.uri), style="dim"))
            parts += [table, Text("")]
        if skipped:
            parts.append(
                Text(
                    f"{len(skipped)} malformed lens record(s) left out: {_line(skipped[0], 200)}",
                    style="yellow",
                )
            )
        return Group(*parts)


# --- versions ------------------------------------------------------------------------------------------


class VersionsScreen(BrowseScreen):
    """Every version under the label that names a network dataset; enter opens one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("open-entry", "open", priority=True),
        bind("preview", "preview"),
        bind("copy-ref", "copy_ref"),
        bind("refresh", "refresh", show=False),
    ]

    def __init__(self, entry: IndexEntry) -> None:
        super().__init__()
        self.entry = entry
        self.repo = "network"
        self.versions: Versions | None = None

    def crumbs(self) -> list[str]:
        return ["network", _line(self.entry.name, 40), "versions"]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="versions-body"):
            yield Static("Reading the labels…", id="versions-status", markup=False)
            yield VimDataTable(id="versions-table", cursor_type="row", zebra_stripes=False)

    def on_mount(self) -> None:
        self.query_one("#versions-table", DataTable).focus()
        self.action_refresh()

    def action_refresh(self) -> None:
        index = self.index
        if index is not None:
            self._load(index, self.entry)

    @work(thread=True, exclusive=True, exit_on_error=False, group="network-versions")
    def _load(self, index: Any, entry: IndexEntry) -> None:
        from ..workers.network import load_versions

        self.post_message(VersionsLoaded(workers.call(load_versions, index, entry)))

    def on_versions_loaded(self, message: VersionsLoaded) -> None:
        versions: Versions = message.versions
        self.versions = versions
        table = self.query_one("#versions-table", DataTable)
        table.clear(columns=True)
        for title in ("", "Version", "Labelled", "Name", "Samples", "Size", "Entry record"):
            table.add_column(title)
        for v in versions.versions:
            entry = v.entry
            table.add_row(
                "●" if v.dataset_uri == self.entry.at_uri else "",
                Text(_line(v.version or "-")),
                Text(_line(v.created_at)[:16]),
                Text(_line(entry.name if entry else v.name)),
                Text(human_count(entry.samples) if entry else "-"),
                Text(human_bytes(entry.size_bytes) if entry else "-"),
                Text(_line(v.dataset_uri) + (f"  ({_line(v.error)})" if v.error else "")),
            )
        current = next(
            (i for i, v in enumerate(versions.versions) if v.dataset_uri == self.entry.at_uri), 0
        )
        if versions.versions:
            table.move_cursor(row=current)
        label = f"label “{_line(versions.label)}”" if versions.label else "no label"
        n = len(versions.versions)
        status = f"{n} version{'s' if n != 1 else ''} under {label} (● is the one you came from)"
        if versions.note:
            status += f" · {_line(versions.note)}"
        self.query_one("#versions-status", Static).update(status)
        self.refresh_bindings()

    def _highlighted(self) -> LabelVersion | None:
        table = self.query_one("#versions-table", DataTable)
        if self.versions is None or not self.versions.versions or not table.row_count:
            return None
        return self.versions.versions[min(table.cursor_row, len(self.versions.versions) - 1)]

    @on(DataTable.RowSelected, "#versions-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        version = self._highlighted()
        if version is None:
            return
        if version.entry is None:
            self.notify(
                f"The AppView has no entry {_line(version.dataset_uri)} ({_line(version.error)})",
                severity="warning",
            )
            return
        self.atdata.open_entry(version.entry)

    def action_preview(self) -> None:
        version = self._highlighted()
        if version is not None and version.entry is not None:
            self.atdata.open_preview(version.entry)

    def action_copy_ref(self) -> None:
        version = self._highlighted()
        if version is not None:
            self.atdata.copy_text(version.dataset_uri, "at:// URI")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("open", "preview", "copy_ref"):
            return self._highlighted() is not None
        return super().check_action(action, parameters)

    def commands(self) -> list[Command]:
        version = self._highlighted()
        if version is None:
            return []
        return [
            Command("Open this version", _line(version.dataset_uri), self.action_open),
            Command("Preview this version", "Show its samples", self.action_preview),
            Command("Copy its at:// URI", _line(version.dataset_uri), self.action_copy_ref),
        ]
