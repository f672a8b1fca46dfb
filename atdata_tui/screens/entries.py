"""Entries of one repository: a virtual list (any size), filter as you type, marks for promote.

The list asks for pages itself (``EntryList``); this screen owns the filter box (debounced, the
filter runs server-side as ``name_filter``), the "N of M entries" line (truncation is never
silent), and the actions that leave the list: detail, preview, promote, copy.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Input, Static

from ..bindings import bind
from ..widgets.entry_list import EntryList
from ..workers.index import ATMOSPHERE, LOCAL, entry_ref, fetch_page, human_count
from . import BrowseScreen, Command

if TYPE_CHECKING:
    from atdata_core.index import IndexEntry

#: Wait this long after the last keystroke before asking the index (filter as you type).
FILTER_DEBOUNCE_S = 0.15


class EntriesScreen(BrowseScreen):
    """The entries of ``repo`` (``"local"``, a named repository or ``"_atmosphere"``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("filter", "filter"),
        bind("preview", "preview"),
        bind("copy-ref", "copy_ref"),
        bind("refresh", "refresh", show=False),
        bind("open-schemas", "open_schemas", show=False),
        bind("promote", "promote", show=False),
        bind("new-dataset", "new_dataset", show=False),
        bind("create-demo", "create_demo", show=False),
    ]

    repo: str

    def __init__(self, repo: str = LOCAL, *, label: str | None = None) -> None:
        super().__init__()
        self.repo = repo
        self.label = label or repo
        self.unfiltered_total: int | None = None
        self.total: int | None = None
        self.more = False
        self._debounce: Timer | None = None

    def crumbs(self) -> list[str]:
        return [self.label, "entries"]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="entries-body"):
            yield Static("Loading entries…", id="entries-count", markup=False)
            yield Input(
                placeholder="filter by name (escape clears)", id="entries-filter", compact=True
            )
            yield EntryList(id="entry-list")

    def on_mount(self) -> None:
        self.query_one("#entries-filter", Input).display = False
        entries = self.query_one(EntryList)
        entries.focus()
        index = self.index
        if index is not None:
            handle = self.atdata.atmosphere_handle if self.repo == ATMOSPHERE else None
            entries.set_fetcher(
                lambda offset, limit, name_filter: fetch_page(
                    index,
                    self.repo,
                    offset=offset,
                    limit=limit,
                    name_filter=name_filter,
                    handle=handle,
                )
            )

    # --- public hook ------------------------------------------------------------------------------------
    def marked_entries(self) -> list[IndexEntry]:
        """HOOK for the promote screen: the entries marked with ``space`` (in marking order)."""
        return self.query_one(EntryList).marked_entries()

    @property
    def entry_list(self) -> EntryList:
        return self.query_one(EntryList)

    def current_entry(self) -> IndexEntry | None:
        return self.entry_list.current_entry

    # --- counts -------------------------------------------------------------------------------------
    @on(EntryList.Counted)
    def _counted(self, event: EntryList.Counted) -> None:
        self.total = event.total
        self.more = event.more
        if not event.name_filter:
            self.unfiltered_total = event.total
        self._update_count()
        self.refresh_bindings()

    @on(EntryList.LoadFailed)
    def _load_failed(self, event: EntryList.LoadFailed) -> None:
        if self.total is None:
            self.query_one("#entries-count", Static).update(
                "Could not list the entries (details in the error window) · r: try again"
            )

    @on(EntryList.MarksChanged)
    def _marks_changed(self, event: EntryList.MarksChanged) -> None:
        self._update_count()
        self.refresh_bindings()

    @on(EntryList.RowsDrawn)
    def _rows_drawn(self, event: EntryList.RowsDrawn) -> None:
        self.atdata.timings.mark("entries_drawn", row=event.row)

    def _update_count(self) -> None:
        entries = self.entry_list
        name_filter = entries.name_filter
        if self.total is None and not self.more:
            text = "Loading entries…"
        elif self.total is None:
            text = f"{human_count(entries.loaded_rows)}+ entries (more load as you scroll)"
        elif name_filter:
            of = (
                f" of {human_count(self.unfiltered_total)}"
                if self.unfiltered_total is not None
                else ""
            )
            text = f"{human_count(self.total)}{of} entries match “{name_filter}”"
        else:
            text = f"{human_count(self.total)} entries"
            if self.total == 0 and self.repo == LOCAL and not self.atdata.readonly:
                text += " · press d to create the demo datasets"
        marked = len(entries.marked)
        if marked:
            text += f" · {marked} marked (p: promote)"
        self.query_one("#entries-count", Static).update(text)

    # --- filter -------------------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#entries-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#entries-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(
            FILTER_DEBOUNCE_S, partial(self._apply_filter, event.value.strip())
        )

    def _apply_filter(self, text: str) -> None:
        self._debounce = None
        entries = self.entry_list
        if (text or None) != entries.name_filter:
            self.total = None
            entries.set_filter(text)
            self._update_count()

    @on(Input.Submitted, "#entries-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        self._apply_filter(event.value.strip())
        if not event.value.strip():
            event.input.display = False
        self.entry_list.focus()

    def clear_filter(self) -> None:
        box = self.query_one("#entries-filter", Input)
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        box.value = ""
        box.display = False
        self._apply_filter("")
        self.entry_list.focus()

    def action_back(self) -> None:
        box = self.query_one("#entries-filter", Input)
        if box.display or self.entry_list.name_filter:
            self.clear_filter()
            return
        super().action_back()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            box = self.query_one("#entries-filter", Input)
            return (
                box.display or bool(self.entry_list.name_filter) or len(self.app.screen_stack) > 1
            )
        if action in ("preview", "copy_ref"):
            return self.current_entry() is not None
        if action == "create_demo":
            return self.repo == LOCAL and self.unfiltered_total == 0 and not self.atdata.readonly
        if action == "open_schemas":
            return self.repo != ATMOSPHERE
        return True

    # --- actions ------------------------------------------------------------------------------------
    @on(EntryList.Selected)
    def _selected(self, event: EntryList.Selected) -> None:
        event.stop()
        self.atdata.open_entry(event.entry)

    def action_preview(self) -> None:
        entry = self.current_entry()
        if entry is not None:
            self.atdata.open_preview(entry)

    def action_copy_ref(self) -> None:
        entry = self.current_entry()
        if entry is not None:
            self.atdata.copy_text(entry_ref(entry), "ref")

    def action_refresh(self) -> None:
        self.total = None
        self.entry_list.reload()
        self._update_count()

    def action_open_schemas(self) -> None:
        self.atdata.open_schemas(self.repo)

    def action_promote(self) -> None:
        self.atdata.action_promote()

    def action_new_dataset(self) -> None:
        self.atdata.action_new_dataset()

    def action_create_demo(self) -> None:
        self.atdata.create_demo()

    def commands(self) -> list[Command]:
        out: list[Command] = [
            Command("Filter entries", "Filter by name as you type (/)", self.action_filter),
            Command("Refresh", "Reload the entries", self.action_refresh),
        ]
        entry = self.current_entry()
        if entry is not None:
            out += [
                Command(
                    f"Open {entry.name}",
                    "Show the entry's details",
                    partial(self.atdata.open_entry, entry),
                ),
                Command(f"Preview {entry.name}", "Show its samples", self.action_preview),
                Command(f"Copy ref of {entry.name}", entry_ref(entry), self.action_copy_ref),
                Command(
                    f"Copy CID of {entry.name}",
                    entry.cid,
                    partial(self.atdata.copy_text, entry.cid, "CID"),
                ),
            ]
            if entry.at_uri:
                out.append(
                    Command(
                        "Copy at:// URI",
                        entry.at_uri,
                        partial(self.atdata.copy_text, entry.at_uri, "at:// URI"),
                    )
                )
        if self.entry_list.name_filter:
            out.append(Command("Clear filter", "List every entry again", self.clear_filter))
        if self.entry_list.marked:
            n = len(self.entry_list.marked)
            out.append(
                Command(
                    f"Promote {n} marked entr{'y' if n == 1 else 'ies'}",
                    "Publish them to the AT Protocol network (see the plan first)",
                    self.action_promote,
                )
            )
            out.append(Command("Clear marks", "Unmark every entry", self.entry_list.clear_marks))
        if self.repo != ATMOSPHERE:
            out.append(
                Command("Open schemas", "Schemas of this repository", self.action_open_schemas)
            )
        return out
