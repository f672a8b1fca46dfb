"""The first screen: every repository the app can reach, with its backend, address and counts.

It is drawn at once with "opening index…"; the index opens in the app's worker, then the rows
appear (without counts), and a worker counts entries and schemas per repository. A repository that
cannot be reached shows "unavailable" in its row (and the details in the error modal) while the
others stay usable. On an empty local index it offers to create the demo datasets.
"""

from __future__ import annotations

import os
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import Button, DataTable, Static

from .. import workers
from ..bindings import bind
from ..messages import RepositoriesLoaded
from ..widgets.status_bar import _squeeze
from ..workers.index import ATMOSPHERE, LOCAL, NETWORK, RepoInfo, human_count
from . import BrowseScreen, Command, VimDataTable


def _home_relative(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home) :] if home != "/" and path.startswith(home + os.sep) else path


class RepositoriesScreen(BrowseScreen):
    """Repositories: local, each named repository, and the atmosphere (logged in or --handle)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: the table would otherwise take enter (and hide "Open" from footer and help)
        bind("open-repo", "open_repo", priority=True),
        bind("open-schemas", "open_schemas"),
        bind("refresh", "refresh"),
        bind("create-demo", "create_demo"),
        bind("search", "search_network"),
    ]

    def __init__(self) -> None:
        super().__init__(id="repositories")
        self.rows: list[RepoInfo] = []
        self.counted = False

    def crumbs(self) -> list[str]:
        return ["repositories"]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="repos-body"):
            yield Static("Opening index…", id="repos-message", markup=False)
            yield VimDataTable(
                id="repos-table", cursor_type="row", zebra_stripes=False, show_cursor=True
            )
            with Vertical(id="empty-panel"):
                yield Static(
                    "This index is empty. Press d (or the button) to create the demo datasets: "
                    "captions, numbers, arrays and images to browse and preview.",
                    id="empty-text",
                    markup=False,
                )
                yield Button("Create demo datasets", id="create-demo", variant="primary")
            yield Static(id="repos-hint", markup=False)

    def on_mount(self) -> None:
        table = self.query_one("#repos-table", DataTable)
        table.display = False
        self.query_one("#empty-panel").display = False
        self.watch(self.app, "index_state", self._on_index_state, init=True)
        self.watch(self.app, "session_handle", self._session_changed, init=False)
        self.call_after_refresh(self.atdata.timings.mark, "first_paint")

    def _session_changed(self, _handle: object = None) -> None:
        """Logged in or out: the atmosphere row comes or goes."""
        self._update_hint()
        if self.atdata.index_state == "open":
            self.counted = False
            self.show_rows(self._uncounted_rows())
            self.load()

    def _update_hint(self, _value: object = None) -> None:
        if self.atdata.index_state != "open":
            return  # the core (and the config path) is imported by the opening worker
        from atdata_core.config import config_path

        lines = [
            f"Named repositories (SQLite, Redis, PostgreSQL; disk or S3 storage) come from the "
            f"config: {config_path()}  (atdata-tui config init writes an example).",
        ]
        if self.atdata.atmosphere_handle:
            lines.append(f"@{self.atdata.atmosphere_handle}: datasets on the AT Protocol network.")
        else:
            lines.append(
                "Log in (ctrl+p, Log in) to browse and publish datasets on the AT Protocol "
                "network, or start with --handle @someone to browse theirs."
            )
        if self.atdata.appview_url:
            lines.append("network: search datasets across the AT Protocol network (enter, or /).")
        self.query_one("#repos-hint", Static).update("\n".join(lines))

    def _on_index_state(self, state: str) -> None:
        message = self.query_one("#repos-message", Static)
        if state == "opening":
            message.update("Opening index…")
        elif state == "failed":
            message.update(
                "The index could not be opened (details in the error window). "
                "Press r to try again, ctrl+p for commands, q to quit."
            )
            self.query_one("#repos-table").display = False
        elif state == "open":
            self.show_rows(self._uncounted_rows())
            self._update_hint()
            self.load()

    def _uncounted_rows(self) -> list[RepoInfo]:
        index = self.index
        if index is None:
            return []
        return workers.index.list_repositories(
            index, self.atdata.atmosphere_handle, self.atdata.appview_url
        )

    # --- loading -------------------------------------------------------------------------------------
    def load(self) -> None:
        index = self.index
        if index is not None:
            self._count(index, self.atdata.atmosphere_handle, self.atdata.appview_url)

    @work(thread=True, exclusive=True, exit_on_error=False, group="repositories")
    def _count(self, index: object, handle: str | None, appview: str | None) -> None:
        rows = workers.call(workers.index.count_repositories, index, handle, appview)
        self.post_message(RepositoriesLoaded(rows))

    def on_repositories_loaded(self, message: RepositoriesLoaded) -> None:
        self.counted = True
        local = next((r for r in message.repos if r.name == LOCAL), None)
        self.atdata.local_entries = local.entries if local is not None and not local.error else None
        self.show_rows(message.repos)
        failed = [r for r in message.repos if r.error]
        for row in failed:
            self.atdata.report_error(f"Repository {row.label} is unavailable", row.error or "")

    def show_rows(self, rows: list[RepoInfo]) -> None:
        """Fill the table (keeping the cursor on the same repository)."""
        self.rows = rows
        table = self.query_one("#repos-table", DataTable)
        current = table.cursor_row if table.row_count else 0
        table.clear(columns=True)
        width = max(self.size.width, 40)
        fixed = 14 + 9 + 9 + 8 + 6 + 12  # every column but the address, plus cell padding
        address_width = max(width - fixed - 2, 10)
        table.add_column("Repository", key="name", width=14)
        table.add_column("Backend", key="backend", width=9)
        table.add_column("Entries", key="entries", width=9)
        table.add_column("Schemas", key="schemas", width=8)
        table.add_column("Store", key="store", width=6)
        table.add_column("Address", key="address", width=address_width)
        for row in rows:
            if row.error:
                entries, schemas = "unavailable", ""
            elif self.counted:
                entries = human_count(row.entries) if row.entries is not None else "?"
                schemas = human_count(row.schemas) if not row.is_atmosphere else "-"
            else:
                entries = schemas = "…"
            table.add_row(
                Text(row.label),
                Text(row.backend),
                Text(entries),
                Text(schemas),
                Text(row.store or "-"),
                Text(_squeeze(_home_relative(row.address), address_width)),
                key=row.name,
            )
        # An explicit height: "auto" on a table that was just cleared and refilled sometimes
        # stayed at its empty size in a real terminal (a race between layout and the refill).
        table.styles.height = len(rows) + 1
        table.display = True
        if rows:
            table.move_cursor(row=min(current, len(rows) - 1))
        self.query_one("#repos-message", Static).update(self._summary())
        self._show_empty_panel()
        if self.focused is None or not self.query_one("#empty-panel").display:
            table.focus()
        self.refresh_bindings()

    def _summary(self) -> str:
        n = len(self.rows)
        word = "repository" if n == 1 else "repositories"
        hint = "enter: entries · s: schemas · ctrl+p: commands · ?: help"
        return f"{n} {word}    {hint}"

    @property
    def local_is_empty(self) -> bool:
        local = next((r for r in self.rows if r.name == LOCAL), None)
        return self.counted and local is not None and local.entries == 0 and not local.error

    def _show_empty_panel(self) -> None:
        show = self.local_is_empty and not self.atdata.readonly
        self.query_one("#empty-panel").display = show

    # --- actions ---------------------------------------------------------------------------------------
    def _highlighted(self) -> RepoInfo | None:
        table = self.query_one("#repos-table", DataTable)
        if not self.rows or not table.row_count:
            return None
        return self.rows[min(table.cursor_row, len(self.rows) - 1)]

    @on(DataTable.RowSelected, "#repos-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_repo()

    def action_open_repo(self) -> None:
        if isinstance(self.focused, Button):  # enter on the "Create demo datasets" button
            self.focused.press()
            return
        row = self._highlighted()
        if row is not None:
            self.atdata.open_entries(row.name)

    def action_open_schemas(self) -> None:
        row = self._highlighted()
        if row is None:
            return
        if row.is_atmosphere or row.is_network:
            self.notify("Schemas of the network are shown with each entry", severity="warning")
            return
        self.atdata.open_schemas(row.name)

    def action_refresh(self) -> None:
        if self.atdata.index_state == "failed":
            self.atdata.open_index()
            return
        self.counted = False
        self.show_rows(self._uncounted_rows())
        self.load()

    def action_create_demo(self) -> None:
        self.atdata.create_demo()

    def action_search_network(self) -> None:
        self.atdata.open_search()

    @on(Button.Pressed, "#create-demo")
    def _demo_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.atdata.create_demo()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "create_demo":
            return self.local_is_empty and not self.atdata.readonly
        if action in ("open_repo", "open_schemas"):
            return bool(self.rows)
        if action == "search_network":
            return bool(self.atdata.appview_url) and self.atdata.index_state == "open"
        return action != "back"

    def commands(self) -> list[Command]:
        out = [
            Command(
                f"Open repository {row.label}",
                f"Browse the entries of {row.label} ({row.backend})",
                partial(self.atdata.open_entries, row.name),
            )
            for row in self.rows
        ]
        out += [
            Command(
                f"Open schemas of {row.label}",
                "Schema names, versions, fields and diffs",
                partial(self.atdata.open_schemas, row.name),
            )
            for row in self.rows
            if row.name not in (ATMOSPHERE, NETWORK)
        ]
        out.append(Command("Refresh", "Count entries and schemas again", self.action_refresh))
        return out
