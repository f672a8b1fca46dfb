"""Search the AT Protocol network's datasets through the AppView ("network" on the first screen).

A query box on top, the results below in the virtual entry list (author, schema, size, license),
paged from the AppView by a thread worker as you scroll. Typing searches as you type (debounced);
an empty query lists the most recently indexed datasets. From a result: enter opens it, ``v``
previews it, ``s`` shows its schema, ``l`` the lenses of that schema, ``o`` the other versions
under its label. A down or slow AppView, or one that sends garbage, shows the reason in place of
the results (and in the error window); malformed records are left out and counted.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Input, Static

from .. import workers
from ..bindings import bind
from ..messages import NetworkDescribed
from ..widgets.entry_list import EntryList
from ..widgets.network_list import NetworkResultList
from ..workers.index import human_count
from . import BrowseScreen, Command

if TYPE_CHECKING:
    from atdata_core.index import IndexEntry

    from ..workers.network import NetworkPager

#: Wait this long after the last keystroke before asking the AppView.
SEARCH_DEBOUNCE_S = 0.3


class SearchScreen(BrowseScreen):
    """Datasets across the network, found through the AppView."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("search", "focus_search"),
        bind("preview", "preview"),
        bind("result-schema", "schema"),
        bind("result-lenses", "lenses"),
        bind("result-versions", "versions"),
        bind("copy-ref", "copy_ref", show=False),
        bind("refresh", "refresh", show=False),
    ]

    def __init__(self, query: str = "") -> None:
        super().__init__(id="search")
        self.repo = "network"
        self.initial_query = query
        self.pager: NetworkPager | None = None
        self.total: int | None = None
        self.more = False
        self.failed: str | None = None
        self.described: NetworkDescribed | None = None
        self._reported_skips = 0
        self._debounce: Timer | None = None

    def crumbs(self) -> list[str]:
        return ["network", "search"]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="search-body"):
            yield Static("Searching…", id="search-status", markup=False)
            with Horizontal(id="search-bar"):
                yield Static("Search ", id="search-label", markup=False)
                yield Input(
                    value=self.initial_query,
                    placeholder="words in names, descriptions, tags (enter: go to the results)",
                    id="search-query",
                    compact=True,
                )
            yield NetworkResultList(id="search-results")
            yield Static("", id="search-about", markup=False)

    def on_mount(self) -> None:
        results = self.results
        query = self.query_one("#search-query", Input)
        index = self.index
        if index is None or not self.atdata.appview_url:
            self.query_one("#search-status", Static).update(
                'No AppView is configured: set appview = "https://…" in the [atmosphere] '
                "section of the config, or start with --appview URL."
            )
            query.disabled = True
            return
        from ..workers.network import NetworkPager, appview_of

        self.pager = pager = NetworkPager(appview_of(index))
        results.name_filter = " ".join(self.initial_query.split()) or None
        results.set_fetcher(lambda offset, limit, text: pager.fetch(offset, limit, text))
        self.watch(results, "cursor", self._show_about, init=False)
        query.focus()
        self._describe(index)

    @property
    def results(self) -> NetworkResultList:
        return self.query_one(NetworkResultList)

    def current_entry(self) -> IndexEntry | None:
        return self.results.current_entry

    # --- the AppView's size, for the status line ---------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="network-describe")
    def _describe(self, index: Any) -> None:
        from atdata_core.errors import AtdataError

        from ..workers.network import describe_network

        try:
            entries, schemas, url = workers.call(describe_network, index)
        except AtdataError:
            return  # the search itself reports an unreachable AppView
        self.post_message(NetworkDescribed(entries, schemas, url))

    def on_network_described(self, message: NetworkDescribed) -> None:
        self.described = message
        self._update_status()

    # --- status line ------------------------------------------------------------------------------
    @on(EntryList.Counted, "#search-results")
    def _counted(self, event: EntryList.Counted) -> None:
        self.total, self.more, self.failed = event.total, event.more, None
        self._update_status()
        self._report_skipped()
        self._show_about()
        self.refresh_bindings()

    @on(EntryList.RowsDrawn, "#search-results")
    def _rows_drawn(self, event: EntryList.RowsDrawn) -> None:
        self._show_about()

    def _show_about(self, _cursor: object = None) -> None:
        """The highlighted result's description, tags and at:// URI, under the list."""
        from rich.text import Text

        from atdata_core.safe_text import safe_line

        entry = self.current_entry()
        about = self.query_one("#search-about", Static)
        if entry is None:
            about.update("")
            return
        text = Text(
            safe_line(entry.description or "(no description)", 300),
            no_wrap=True,
            overflow="ellipsis",
        )
        if entry.tags:
            text.append("  tags: " + safe_line(", ".join(map(str, entry.tags)), 120), style="dim")
        text.append("\n" + safe_line(entry.at_uri or ""), style="dim")
        about.update(text)

    @on(EntryList.LoadFailed, "#search-results")
    def _load_failed(self, event: EntryList.LoadFailed) -> None:
        self.failed = event.error
        self._update_status()

    def _update_status(self) -> None:
        from atdata_core.safe_text import safe_line

        results = self.results
        text_query = results.name_filter
        what = f"match “{safe_line(text_query, 60)}”" if text_query else "(most recently indexed)"
        if self.failed is not None:
            text = f"Could not search the network (r: try again): {safe_line(self.failed, 200)}"
        elif self.total is None and not self.more:
            text = "Searching…"
        elif self.total is None:
            text = f"{human_count(results.loaded_rows)}+ datasets {what} (more load as you scroll)"
        else:
            text = f"{human_count(self.total)} datasets {what}"
            if self.pager is not None and self.pager.truncated:
                text += " (the first ones: narrow the search for the rest)"
        skipped = len(self.pager.skipped) if self.pager is not None else 0
        if skipped and self.failed is None:
            text += f" · {skipped} malformed left out"
        described = self.described
        if described is not None and described.entries is not None:
            text += f" · {human_count(described.entries)} indexed by {safe_line(described.url)}"
        self.query_one("#search-status", Static).update(text)

    def _report_skipped(self) -> None:
        from atdata_core.safe_text import safe_line

        pager = self.pager
        if pager is None or len(pager.skipped) <= self._reported_skips:
            self._reported_skips = min(self._reported_skips, len(pager.skipped) if pager else 0)
            return
        new = pager.skipped[self._reported_skips :]
        self._reported_skips = len(pager.skipped)
        self.notify(
            f"{len(new)} record{'s' if len(new) != 1 else ''} from the AppView left out: "
            f"{safe_line(new[0], 200)}",
            severity="warning",
            timeout=8,
        )

    # --- the query -----------------------------------------------------------------------------------
    @on(Input.Changed, "#search-query")
    def _query_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(SEARCH_DEBOUNCE_S, partial(self._apply_query, event.value))

    def _apply_query(self, text: str) -> None:
        self._debounce = None
        query = " ".join(text.split()) or None
        results = self.results
        if self.pager is not None and query != results.name_filter:
            self.total, self.more, self.failed = None, False, None
            self._reported_skips = 0
            results.set_filter(query or "")
            self._update_status()

    @on(Input.Submitted, "#search-query")
    def _query_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        self._apply_query(event.value)
        self.results.focus()

    def action_focus_search(self) -> None:
        box = self.query_one("#search-query", Input)
        if not box.disabled:
            box.focus()

    def action_back(self) -> None:
        box = self.query_one("#search-query", Input)
        if box.has_focus and box.value:
            box.value = ""  # escape in the box clears it first (the recent datasets come back)
            self._apply_query("")
            return
        if box.has_focus and self.results.row_count:
            self.results.focus()
            return
        super().action_back()

    # --- actions on a result -------------------------------------------------------------------------
    @on(EntryList.Selected, "#search-results")
    def _selected(self, event: EntryList.Selected) -> None:
        event.stop()
        self.atdata.open_entry(event.entry)

    def _with_entry(self) -> IndexEntry | None:
        entry = self.current_entry()
        if entry is None:
            self.notify("No result highlighted yet", severity="warning", timeout=3)
        return entry

    def action_preview(self) -> None:
        if (entry := self._with_entry()) is not None:
            self.atdata.open_preview(entry)

    def action_schema(self) -> None:
        if (entry := self._with_entry()) is not None:
            from .network import NetworkSchemaScreen

            self.app.push_screen(NetworkSchemaScreen(entry))

    def action_lenses(self) -> None:
        if (entry := self._with_entry()) is not None:
            from .network import LensesScreen

            self.app.push_screen(LensesScreen(entry))

    def action_versions(self) -> None:
        if (entry := self._with_entry()) is not None:
            from .network import VersionsScreen

            self.app.push_screen(VersionsScreen(entry))

    def action_copy_ref(self) -> None:
        entry = self.current_entry()
        if entry is not None and entry.at_uri:
            self.atdata.copy_text(entry.at_uri, "at:// URI")

    def action_refresh(self) -> None:
        if self.pager is None:
            return
        self.pager.forget()
        self.total, self.more, self.failed = None, False, None
        self._reported_skips = 0
        self.results.reload()
        self._update_status()
        index = self.index
        if index is not None:
            self._describe(index)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("preview", "schema", "lenses", "versions", "copy_ref"):
            return self.pager is not None
        return super().check_action(action, parameters)

    def commands(self) -> list[Command]:
        out = [
            Command("Search", "Type words to search the network (/)", self.action_focus_search),
            Command("Refresh", "Ask the AppView again", self.action_refresh),
        ]
        entry = self.current_entry()
        if entry is not None:
            from atdata_core.safe_text import safe_line

            name = safe_line(entry.name, 40)
            out += [
                Command(
                    f"Open {name}",
                    "Show the dataset's details",
                    partial(self.atdata.open_entry, entry),
                ),
                Command(f"Preview {name}", "Show its samples", self.action_preview),
                Command(f"Schema of {name}", "Fields and other versions", self.action_schema),
                Command(f"Lenses of {name}", "From and to its schema", self.action_lenses),
                Command(f"Versions of {name}", "Under its label", self.action_versions),
            ]
            if entry.at_uri:
                out.append(Command("Copy at:// URI", safe_line(entry.at_uri), self.action_copy_ref))
        return out
