"""Schemas of one repository: every name with its versions (newest first), the fields and types of
the highlighted version, and the field diff of two marked versions.

Schema lists are small (names, not entries), so a ``DataTable`` is fine here; the details and the
diff are read in workers as the cursor moves, so a slow server never stalls the keys.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Container, VerticalScroll
from textual.widgets import DataTable, Static

from .. import workers
from ..bindings import bind
from ..messages import SchemaDetailLoaded, SchemaDiffLoaded, SchemasLoaded
from ..workers.index import LOCAL, SchemaDetail, SchemaDiff, SchemaInfo
from . import BrowseScreen, Command, VimDataTable

_DIFF_STYLES = {
    "added": "green",
    "removed": "red",
    "type_changed": "yellow",
    "optional_changed": "yellow",
}


class SchemasScreen(BrowseScreen):
    """Schema names, versions, fields, and diffs between two versions."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("mark-version", "mark"),
        bind("diff-previous", "diff_previous"),
        bind("show-entries", "show_entries"),
        bind("refresh", "refresh"),
        bind("copy-ref", "copy_ref"),
    ]

    repo: str

    def __init__(self, repo: str = LOCAL) -> None:
        super().__init__()
        self.repo = repo
        self.schemas: list[SchemaInfo] = []
        self.rows: list[tuple[str, str]] = []  # (name, version) per table row
        self.marked: list[tuple[str, str]] = []
        self.detail: SchemaDetail | None = None
        self.diff: SchemaDiff | None = None
        self.loaded = False

    def crumbs(self) -> list[str]:
        return [self.repo, "schemas"]

    def compose_body(self) -> ComposeResult:
        with Container(id="schemas-body"):
            yield VimDataTable(id="schema-table", cursor_type="row", zebra_stripes=False)
            with VerticalScroll(id="schema-detail"):
                yield Static("Loading schemas…", id="schema-detail-text")

    def on_mount(self) -> None:
        self._set_wide(self.size.width)
        self.query_one("#schema-table", DataTable).focus()
        self.load()

    def on_resize(self, event: events.Resize) -> None:
        self._set_wide(event.size.width)
        if self.loaded:
            self.call_after_refresh(self._fill_table)

    def _set_wide(self, width: int) -> None:
        self.query_one("#schemas-body").set_class(width >= 110, "-wide")

    # --- loading ------------------------------------------------------------------------------------
    def load(self) -> None:
        index = self.index
        if index is not None:
            self._load(index, self.repo)

    @work(thread=True, exclusive=True, exit_on_error=False, group="schemas")
    def _load(self, index: Any, repo: str) -> None:
        schemas = workers.call(workers.index.load_schemas, index, repo)
        self.post_message(SchemasLoaded(schemas))

    def on_schemas_loaded(self, message: SchemasLoaded) -> None:
        self.schemas = message.schemas
        self.loaded = True
        self._fill_table()
        if not self.rows:
            self._show(Text("No schemas in this repository yet.", style="dim"))

    def _fill_table(self) -> None:
        table = self.query_one("#schema-table", DataTable)
        current = self.rows[table.cursor_row] if self.rows and table.row_count else None
        table.clear(columns=True)
        width = table.size.width or self.size.width
        table.add_column(" ", key="mark", width=1)
        table.add_column("Schema", key="name", width=18)
        table.add_column("Version", key="version", width=9)
        table.add_column("Fields", key="fields", width=6)
        table.add_column(
            "Description", key="description", width=max(width - 1 - 18 - 9 - 6 - 11, 10)
        )
        self.rows = []
        for info in self.schemas:
            for i, version in enumerate(info.versions or ["?"]):
                first = i == 0
                self.rows.append((info.name, version))
                fields = str(info.fields) if first and info.fields is not None else ""
                table.add_row(
                    self._mark_text((info.name, version)),
                    Text(info.name if first else ""),
                    Text(version),
                    Text(fields),
                    Text((info.description or "") if first else ""),
                    key=f"{info.name}@{version}",
                )
        if current in self.rows:
            table.move_cursor(row=self.rows.index(current))
        self.refresh_bindings()

    def _mark_text(self, row: tuple[str, str]) -> Text:
        if row in self.marked:
            return Text(str(self.marked.index(row) + 1), style="bold")
        return Text(" ")

    # --- detail and diff --------------------------------------------------------------------------------
    def _highlighted(self) -> tuple[str, str] | None:
        table = self.query_one("#schema-table", DataTable)
        if not self.rows or not table.row_count:
            return None
        return self.rows[min(table.cursor_row, len(self.rows) - 1)]

    @on(DataTable.RowHighlighted, "#schema-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if len(self.marked) == 2:
            return  # the diff stays on screen until the marks are cleared
        row = self._highlighted()
        index = self.index
        if row is not None and index is not None:
            self._load_detail(index, self.repo, *row)

    @on(DataTable.RowSelected, "#schema-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_mark()

    @work(thread=True, exclusive=True, exit_on_error=False, group="schema-detail")
    def _load_detail(self, index: Any, repo: str, name: str, version: str) -> None:
        detail = workers.call(workers.index.load_schema_detail, index, repo, name, version)
        self.post_message(SchemaDetailLoaded(detail))

    def on_schema_detail_loaded(self, message: SchemaDetailLoaded) -> None:
        if len(self.marked) == 2:
            return
        self.detail = message.detail
        self._show(self._detail_renderable(message.detail))

    def _detail_renderable(self, detail: SchemaDetail) -> RenderableType:
        parts: list[RenderableType] = [
            Text(f"{detail.name} @ {detail.version}", style="bold"),
            Text(detail.ref, style="dim"),
        ]
        if detail.description:
            parts.append(Text(detail.description))
        if detail.error:
            parts.append(Text(f"This schema record is malformed: {detail.error}", style="bold red"))
            return Group(*parts)
        table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold", expand=False)
        table.add_column("Field", no_wrap=True)
        table.add_column("Type", no_wrap=True)
        table.add_column("Optional", no_wrap=True)
        for f in detail.fields:
            table.add_row(Text(f.name), Text(f.type), Text("yes" if f.optional else ""))
        parts += [Text(""), table]
        if len(self.marked) == 1:
            parts += [
                Text(""),
                Text("Marked 1 version: mark another (space) to see the diff", style="dim"),
            ]
        else:
            parts += [
                Text(""),
                Text(
                    "space: mark two versions to diff · d: diff with the previous version",
                    style="dim",
                ),
            ]
        return Group(*parts)

    def action_mark(self) -> None:
        row = self._highlighted()
        if row is None:
            return
        if row in self.marked:
            self.marked.remove(row)
        else:
            if len(self.marked) == 2:
                self.marked.pop(0)
            self.marked.append(row)
        self._after_marks_changed()

    def action_diff_previous(self) -> None:
        row = self._highlighted()
        if row is None:
            return
        i = self.rows.index(row)
        if i + 1 < len(self.rows) and self.rows[i + 1][0] == row[0]:
            self.marked = [self.rows[i + 1], row]
            self._after_marks_changed()
        else:
            self.notify(f"{row[0]}@{row[1]} is the first version of {row[0]}", severity="warning")

    def _after_marks_changed(self) -> None:
        table = self.query_one("#schema-table", DataTable)
        for r in self.rows:
            table.update_cell(f"{r[0]}@{r[1]}", "mark", self._mark_text(r))
        self.refresh_bindings()
        index = self.index
        if len(self.marked) == 2 and index is not None:
            old, new = sorted(self.marked, key=self.rows.index, reverse=True)  # lower row = older
            self._show(Text(f"Comparing {old[0]}@{old[1]} → {new[0]}@{new[1]}…", style="dim"))
            self._load_diff(index, self.repo, old, new)
        else:
            self.diff = None
            row = self._highlighted()
            if row is not None and index is not None:
                self._load_detail(index, self.repo, *row)

    @work(thread=True, exclusive=True, exit_on_error=False, group="schema-diff")
    def _load_diff(self, index: Any, repo: str, old: tuple[str, str], new: tuple[str, str]) -> None:
        diff = workers.call(workers.index.diff_schema_versions, index, repo, old, new)
        self.post_message(SchemaDiffLoaded(diff))

    def on_schema_diff_loaded(self, message: SchemaDiffLoaded) -> None:
        if len(self.marked) != 2:
            return
        self.diff = message.diff
        self._show(self._diff_renderable(message.diff))

    def _diff_renderable(self, diff: SchemaDiff) -> RenderableType:
        old = diff.old_ref.rsplit("/", 1)[-1]
        new = diff.new_ref.rsplit("/", 1)[-1]
        parts: list[RenderableType] = [Text(f"Diff {old} → {new}", style="bold")]
        if not diff.changes:
            parts.append(Text("No field changes.", style="dim"))
        for kind, description in diff.changes:
            parts.append(Text(description, style=_DIFF_STYLES.get(kind, "")))
        parts += [Text(""), Text("escape: clear the marks", style="dim")]
        return Group(*parts)

    def _show(self, renderable: RenderableType) -> None:
        self.query_one("#schema-detail-text", Static).update(renderable)

    # --- actions ------------------------------------------------------------------------------------
    def action_back(self) -> None:
        if self.marked:
            self.marked = []
            self._after_marks_changed()
            return
        super().action_back()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return bool(self.marked) or len(self.app.screen_stack) > 1
        if action in ("mark", "diff_previous", "copy_ref"):
            return bool(self.rows)
        return True

    def action_show_entries(self) -> None:
        self.atdata.open_entries(self.repo)

    def action_refresh(self) -> None:
        self.marked = []
        self.load()

    def action_copy_ref(self) -> None:
        row = self._highlighted()
        if row is not None:
            from atdata_core.schema import schema_ref

            self.atdata.copy_text(schema_ref(*row), "schema ref")

    def commands(self) -> list[Command]:
        out = [
            Command("Refresh", "Reload the schemas", self.action_refresh),
            Command("Show entries", f"Entries of {self.repo}", self.action_show_entries),
        ]
        row = self._highlighted()
        if row is not None:
            out.append(
                Command(
                    f"Copy schema ref {row[0]}@{row[1]}",
                    "atdata://local/schema/…",
                    self.action_copy_ref,
                )
            )
            out.append(
                Command(
                    "Diff with the previous version",
                    f"{row[0]}@{row[1]}",
                    self.action_diff_previous,
                )
            )
        if self.marked:
            out.append(Command("Clear marks", "Forget the marked versions", self.action_back))
        return out
