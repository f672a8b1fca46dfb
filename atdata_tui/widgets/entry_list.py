"""A virtual list of index entries on Textual's line API: a million rows cost what 30 rows cost.

The widget never holds one widget per row, nor all the rows. ``virtual_size`` is the number of
entries (plus a fixed header line); ``render_line(y)`` draws the row under line ``y`` from a page
cache (pages of ``PAGE_SIZE`` entries) and an LRU cache of rendered ``Strip``s. Rows whose page has
not arrived yet draw as a dim "…" and the page is requested from a thread worker that calls the
``fetch`` function given by the screen (``index.page_entries`` underneath); when it answers, only
the rows of that page are redrawn. Each filter or refresh bumps a ``generation``, so answers to
older requests are dropped instead of mixing two listings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from .. import workers
from ..bindings import bind
from ..messages import ForwardWorkerErrors, PageFailed, PageLoaded
from ..workers.index import (
    GAP,
    MARK_WIDTH,
    PAGE_SIZE,
    Column,
    cell_values,
    layout_columns,
)

if TYPE_CHECKING:
    from atdata_core.index import IndexEntry, Page

#: ``fetch(offset, limit, name_filter) -> Page``; runs in a worker thread.
Fetcher = Callable[[int, int, "str | None"], "Page"]

#: Pages kept in memory (200 entries each): ~13k entries, a few MB at most.
PAGE_CACHE_SIZE = 64
#: Pages fetched beyond the visible ones, so scrolling by a page rarely shows placeholders.
PREFETCH_PAGES = 1


def _fit(text: str, width: int, align: str) -> str:
    """Pad or cut ``text`` to exactly ``width`` cells (cut text ends with "…")."""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…" if width > 1 else "…"[:width]
    if align == "right":
        return " " * (width - cell_len(text)) + text
    if align == "center":
        left = (width - cell_len(text)) // 2
        return set_cell_size(" " * left + text, width)
    return set_cell_size(text, width)


class EntryList(ForwardWorkerErrors, ScrollView, can_focus=True):
    """Entries of one repository, fetched a page at a time, with a cursor and marks."""

    DEFAULT_CSS = """
    EntryList {
        background: $surface;
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
    }
    EntryList > .entry-list--header { text-style: bold; color: $text-accent; }
    EntryList > .entry-list--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
        text-style: $block-cursor-blurred-text-style;
    }
    EntryList:focus > .entry-list--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    EntryList > .entry-list--placeholder { color: $text-muted; text-style: dim; }
    EntryList > .entry-list--marked { color: $text-warning; text-style: bold; }
    EntryList > .entry-list--error { color: $text-error; }
    EntryList > .entry-list--dim { color: $text-muted; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "entry-list--header",
        "entry-list--cursor",
        "entry-list--placeholder",
        "entry-list--marked",
        "entry-list--error",
        "entry-list--dim",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("cursor-down", "cursor_down", show=False),
        bind("cursor-up", "cursor_up", show=False),
        bind("cursor-top", "cursor_top", show=False),
        bind("cursor-bottom", "cursor_bottom", show=False),
        bind("page-down", "page_down", show=False),
        bind("page-up", "page_up", show=False),
        bind("open-entry", "select"),
        bind("mark", "toggle_mark"),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False)
    #: Worker group of the page fetches (the app's error modal titles failures by group).
    worker_group = "entry-pages"
    empty_message = "no entries"
    no_match_message = "no entries match"

    # --- messages ----------------------------------------------------------------------------------
    @dataclass
    class Selected(Message):
        """The user pressed enter on an entry."""

        entry_list: EntryList
        entry: IndexEntry

        @property
        def control(self) -> EntryList:
            return self.entry_list

    @dataclass
    class Counted(Message):
        """The number of entries matching the current filter is known (``None``: uncountable)."""

        entry_list: EntryList
        total: int | None
        name_filter: str | None
        more: bool = False

        @property
        def control(self) -> EntryList:
            return self.entry_list

    @dataclass
    class LoadFailed(Message):
        """A page could not be fetched (the error modal has the details)."""

        entry_list: EntryList
        error: str

        @property
        def control(self) -> EntryList:
            return self.entry_list

    @dataclass
    class MarksChanged(Message):
        entry_list: EntryList
        count: int

        @property
        def control(self) -> EntryList:
            return self.entry_list

    @dataclass
    class RowsDrawn(Message):
        """The rows around the cursor were drawn with real data (after a reset or a jump)."""

        entry_list: EntryList
        generation: int
        row: int

        @property
        def control(self) -> EntryList:
            return self.entry_list

    # --- state -------------------------------------------------------------------------------------
    def __init__(
        self,
        fetch: Fetcher | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._fetch = fetch
        self.name_filter: str | None = None
        self.generation = 0
        self.total: int | None = None
        self._more = False  # total unknown, but the last page was full
        self._loaded_rows = 0  # rows known to exist when the backend cannot count
        self._pages: LRUCache[int, list[IndexEntry]] = LRUCache(PAGE_CACHE_SIZE)
        self._errors: dict[int, str] = {}
        self._requested: set[int] = set()
        self._lines: LRUCache[tuple[Any, ...], Strip] = LRUCache(1024)
        self._layout_width = -1
        self._layout: list[tuple[Column, int]] = []
        self._request_scheduled = False
        self._awaiting_draw: int | None = 0  # report RowsDrawn once this row has data
        self._styles: dict[str, Style] | None = None
        self._frame: tuple[int, int, list[tuple[Column, int]], dict[str, Style]] | None = None
        self.marked: dict[str, IndexEntry] = {}

    # --- public API ----------------------------------------------------------------------------------
    def set_fetcher(self, fetch: Fetcher) -> None:
        self._fetch = fetch
        self.reload()

    def set_filter(self, name_filter: str | None) -> None:
        """List only entries whose name contains ``name_filter`` (server-side); "" lists all."""
        self.name_filter = name_filter or None
        self.reload()

    def reload(self) -> None:
        """Start a new listing (after a filter change or refresh); keeps marks."""
        self.generation += 1
        self.total = None
        self._more = False
        self._loaded_rows = 0
        self._pages.clear()
        self._errors.clear()
        self._requested.clear()
        self._lines.clear()
        self._awaiting_draw = 0
        self.set_reactive(EntryList.cursor, 0)
        self._update_virtual_size()
        self.scroll_to(y=0, animate=False, immediate=True)
        self._request_pages([0])
        self.refresh()

    @property
    def row_count(self) -> int:
        """Rows the list can scroll through (loaded ones plus those it knows exist)."""
        if self.total is not None:
            return self.total
        return self._loaded_rows + (PAGE_SIZE if self._more else 0)

    @property
    def loaded_rows(self) -> int:
        """Rows known to exist when the backend cannot count (``total`` is ``None``)."""
        return self._loaded_rows

    def entry_at(self, row: int) -> IndexEntry | None:
        page = self._pages.get(row // PAGE_SIZE)
        if page is None:
            return None
        i = row % PAGE_SIZE
        return page[i] if i < len(page) else None

    @property
    def current_entry(self) -> IndexEntry | None:
        return self.entry_at(self.cursor)

    def marked_entries(self) -> list[IndexEntry]:
        return list(self.marked.values())

    def clear_marks(self) -> None:
        self.marked.clear()
        self._lines.clear()
        self.refresh()
        self.post_message(self.MarksChanged(self, 0))

    # --- layout & rendering ------------------------------------------------------------------------
    @property
    def _body_height(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(0, self.row_count + 1)

    def _columns(self, width: int) -> list[tuple[Column, int]]:
        if width != self._layout_width:
            self._layout_width = width
            self._layout = self.layout_columns(width)
            self._lines.clear()
        return self._layout

    def layout_columns(self, width: int) -> list[tuple[Column, int]]:
        """The columns shown at ``width`` (subclasses show other columns: the network's)."""
        return layout_columns(width)

    def cell_values(self, entry: IndexEntry) -> dict[str, str]:
        """The text of every column for ``entry``."""
        return cell_values(entry)

    def on_resize(self, event: events.Resize) -> None:
        self._lines.clear()
        self._schedule_request()

    # Rendering is on the hot path (every scroll redraws the visible rows), so the styles are
    # computed once per style change, per-frame values once per frame, and a row is at most two
    # segments of pre-padded text with a known cell length.

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._lines.clear()

    def _style_set(self) -> dict[str, Style]:
        if self._styles is None:
            base = self.rich_style
            styles = {"base": base}
            for name in ("header", "cursor", "placeholder", "marked", "error", "dim"):
                styles[name] = base + self.get_component_rich_style(f"entry-list--{name}")
            styles["cursor-marked"] = styles["marked"] + self.get_component_rich_style(
                "entry-list--cursor"
            )
            if getattr(self.app, "no_color", False):  # NO_COLOR: greys alone are too faint
                styles["cursor"] = base + Style(reverse=True, bold=True)
                styles["cursor-marked"] = styles["cursor"]
            self._styles = styles
        return self._styles

    def render_lines(self, crop: Region) -> list[Strip]:
        width = self.scrollable_content_region.width
        self._frame = (width, int(self.scroll_offset.y), self._columns(width), self._style_set())
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        frame = self._frame
        if frame is None:  # render_line called directly (tests): compute what a frame would
            width = self.scrollable_content_region.width
            frame = (width, int(self.scroll_offset.y), self._columns(width), self._style_set())
        width, top, columns, styles = frame
        if y == 0:
            return self._header(columns, width, styles)
        return self._row(top + y - 1, columns, width, styles)

    @staticmethod
    def _line(width: int, *parts: tuple[str, Style]) -> Strip:
        segments = [Segment(text, style) for text, style in parts if text]
        length = sum(cell_len(text) for text, _ in parts)
        strip = Strip(segments, length)
        if length != width:
            strip = strip.adjust_cell_length(width, parts[-1][1] if parts else None)
        return strip

    def _header(
        self, columns: list[tuple[Column, int]], width: int, styles: dict[str, Style]
    ) -> Strip:
        key = ("header", width)
        strip = self._lines.get(key)
        if strip is None:
            text = "".join(_fit(c.title, w, c.align) + " " * GAP for c, w in columns)
            strip = self._line(width, (" " * MARK_WIDTH, styles["base"]), (text, styles["header"]))
            self._lines[key] = strip
        return strip

    def _row(
        self, row: int, columns: list[tuple[Column, int]], width: int, styles: dict[str, Style]
    ) -> Strip:
        if row >= self.row_count:
            if row == 0 and self.total is None:
                if 0 in self._errors:
                    return self._line(width, ("  ! " + self._errors[0], styles["error"]))
                return self._line(width, ("  loading…", styles["placeholder"]))
            if row == 0 and self.total == 0:
                text = "  " + (self.no_match_message if self.name_filter else self.empty_message)
                return self._line(width, (text, styles["dim"]))
            return Strip.blank(width, styles["base"])
        is_cursor = row == self.cursor
        entry = self.entry_at(row)
        if entry is None:
            self._schedule_request()
            page_no = row // PAGE_SIZE
            if page_no in self._errors:
                text, style = "  ! " + self._errors[page_no], styles["error"]
            else:
                text, style = "  …", styles["placeholder"]
            return self._line(width, (text, styles["cursor"] if is_cursor else style))
        marked = entry.cid in self.marked
        key = (row, width, is_cursor, marked, self.generation)
        strip = self._lines.get(key)
        if strip is not None:
            return strip
        values = self.cell_values(entry)
        body = "".join(_fit(values[c.key], w, c.align) + " " * GAP for c, w in columns)
        if is_cursor:
            style = styles["cursor-marked"] if marked else styles["cursor"]
            mark_style = style
        else:
            style = styles["marked"] if marked else styles["base"]
            mark_style = styles["marked"]
        strip = self._line(width, ("● " if marked else "  ", mark_style), (body, style))
        self._lines[key] = strip
        return strip

    # --- fetching pages ----------------------------------------------------------------------------
    def _visible_pages(self) -> list[int]:
        top = int(self.scroll_offset.y)
        bottom = top + self._body_height
        first, last = top // PAGE_SIZE, max(bottom - 1, top) // PAGE_SIZE
        if self.total is not None:
            last = min(last, max(self.total - 1, 0) // PAGE_SIZE)
        pages = list(range(first, last + 1))
        extra = [last + 1 + i for i in range(PREFETCH_PAGES)] + [first - 1]
        for p in extra:
            if p >= 0 and (self.total is None or p * PAGE_SIZE < self.total):
                pages.append(p)
        return pages

    def _schedule_request(self) -> None:
        if not self._request_scheduled:
            self._request_scheduled = True
            self.call_after_refresh(self._request_visible)

    def _request_visible(self) -> None:
        self._request_scheduled = False
        self._request_pages(self._visible_pages())

    def _request_pages(self, pages: list[int]) -> None:
        missing = [
            p
            for p in pages
            if p not in self._pages and p not in self._errors and p not in self._requested
        ]
        if not missing or self._fetch is None:
            return
        self._requested = set(missing)  # an exclusive worker replaces the previous request
        self._fetch_pages(self.generation, missing, self.name_filter, self._fetch)

    def _fetch_pages(
        self, generation: int, pages: list[int], name_filter: str | None, fetch: Fetcher
    ) -> None:
        self.run_worker(
            lambda: self._fetch_pages_thread(generation, pages, name_filter, fetch),
            name=self.worker_group,
            group=self.worker_group,
            thread=True,
            exclusive=True,
            exit_on_error=False,
            description=f"entries pages {pages} filter={name_filter!r}",
        )

    def _fetch_pages_thread(
        self, generation: int, pages: list[int], name_filter: str | None, fetch: Fetcher
    ) -> None:
        """Runs in a worker thread: fetch pages in order, post each; stop when cancelled."""
        worker = get_current_worker()
        for page_no in pages:
            if worker.is_cancelled:
                return
            try:
                page = workers.call(
                    fetch,
                    page_no * PAGE_SIZE,
                    PAGE_SIZE,
                    name_filter,
                    is_cancelled=lambda: worker.is_cancelled,
                )
            except workers.Cancelled:
                return
            except Exception as exc:
                self.post_message(PageFailed(generation, page_no, str(exc) or type(exc).__name__))
                raise
            self.post_message(PageLoaded(generation, page_no, page))

    def on_page_loaded(self, message: PageLoaded) -> None:
        message.stop()
        if message.generation != self.generation:
            return
        page = message.page
        self._pages[message.page_no] = list(page.items)
        self._requested.discard(message.page_no)
        old_rows = self.row_count
        first_count = self.total is None and message.page_no == 0
        if page.total is not None:
            self.total = page.total
        else:
            end = message.page_no * PAGE_SIZE + len(page.items)
            if end >= self._loaded_rows:
                self._loaded_rows = end
                self._more = len(page.items) >= PAGE_SIZE
        if self.row_count != old_rows or first_count:
            self._update_virtual_size()
            self.post_message(self.Counted(self, self.total, self.name_filter, self._more))
        if self.total is not None and self.cursor >= self.total > 0:
            self.cursor = self.total - 1
        start = message.page_no * PAGE_SIZE
        self._lines.clear()
        if first_count or not self.total:
            self.refresh()
        else:
            self.refresh_lines(start + 1, PAGE_SIZE)
        if self._awaiting_draw is not None and self.entry_at(self._awaiting_draw) is not None:
            row, self._awaiting_draw = self._awaiting_draw, None
            generation = self.generation
            self.call_after_refresh(
                lambda: self.post_message(self.RowsDrawn(self, generation, row))
            )
        self._schedule_request()

    def on_page_failed(self, message: PageFailed) -> None:
        message.stop()
        if message.generation != self.generation:
            return
        self._errors[message.page_no] = message.error
        self._requested.discard(message.page_no)
        self._lines.clear()
        self.refresh()
        self.post_message(self.LoadFailed(self, message.error))

    # --- cursor --------------------------------------------------------------------------------------
    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old + 1)
        self.refresh_line(new + 1)
        self._scroll_cursor_into_view()
        if self.entry_at(new) is None:
            self._awaiting_draw = new
            self._schedule_request()

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, self.row_count - 1)) if self.row_count else 0

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_offset.y)
        height = self._body_height
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_cursor_top(self) -> None:
        self.cursor = 0

    def action_cursor_bottom(self) -> None:
        self.cursor = self.row_count - 1

    def action_page_down(self) -> None:
        height = self._body_height
        self.scroll_to(y=int(self.scroll_offset.y) + height, animate=False, immediate=True)
        self.cursor += height

    def action_page_up(self) -> None:
        height = self._body_height
        self.scroll_to(y=max(int(self.scroll_offset.y) - height, 0), animate=False, immediate=True)
        self.cursor -= height

    def action_select(self) -> None:
        entry = self.current_entry
        if entry is not None:
            self.post_message(self.Selected(self, entry))

    def action_toggle_mark(self) -> None:
        entry = self.current_entry
        if entry is None:
            return
        if entry.cid in self.marked:
            del self.marked[entry.cid]
        else:
            self.marked[entry.cid] = entry
        self.refresh_line(self.cursor + 1)
        self.post_message(self.MarksChanged(self, len(self.marked)))
        self.cursor += 1

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._schedule_request()

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        row = int(self.scroll_offset.y) + event.y - 1
        if row < self.row_count:
            self.cursor = row
            if event.chain >= 2:
                self.action_select()
