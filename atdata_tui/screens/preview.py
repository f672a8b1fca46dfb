"""Live preview of an entry's samples: streamed from its shards, rendered for what they are.

Opening the screen starts a thread worker that streams the first shard (local, HTTP, S3 or PDS
blob, all through ``atdata_core.sources``) and posts the first sample the moment it is decoded,
then the rest of the page in small batches. At most ``PAGE_SAMPLES`` samples (and about
``PAGE_BYTES`` of them) are kept; the status line always says how many are shown of how many, and
``n``/``p`` page on, ``[``/``]`` change shard, ``:`` jumps to a sample (one seek or one ranged
request when the shard has a manifest). Every request carries a generation: an answer to an older
request (another entry, another page) is dropped, so stale samples never appear.

Three views share the samples: a table (one row per sample), one sample at a time (fields
rendered by ``widgets.sample_views``; enter opens a field full screen) and the schema with what
does not match it. A watcher notices a shard that grows or an entry that gains shards while a
dataset is being written.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Input, Static
from textual.worker import get_current_worker

from atdata_core.preview import (
    DASH,
    PAGE_BYTES,
    PAGE_SAMPLES,
    PreviewSample,
    ShardBook,
    human_bytes,
    sample_fields,
)
from atdata_core.refs import ATMOSPHERE_REPO, LOCAL_REPO
from atdata_core.samples import FieldSpec
from atdata_core.sources import display_url

from ..bindings import bind
from ..widgets.sample_views import (
    FieldView,
    SampleTable,
    SampleView,
    clean_line,
    inline,
    preview_bind,
)
from ..workers.preview import (
    WATCH_INTERVAL,
    EntryChanged,
    SamplesLoaded,
    SchemaResolved,
    ShardGrew,
    SourceCache,
    StreamFinished,
    StreamProgress,
    StreamRequest,
    WatchState,
    local_size,
    stream_preview,
    watch_preview,
)
from . import BrowseScreen

if TYPE_CHECKING:
    from atdata_core.index import IndexEntry
    from atdata_core.preview import StreamEnd

View = Literal["table", "sample", "schema"]
#: Table cells are cut to this many cells (the sample view shows everything).
CELL_WIDTH = 28


def parse_jump(text: str, current_shard: int) -> tuple[int, int]:
    """``"17"`` → sample 17 of this shard; ``"2:17"``/``"2/17"`` → shard 2, sample 17; ``"s2"`` → shard 2.

    Raises ``ValueError`` with a message for the user on anything else.
    """
    text = text.strip().lower().replace(" ", "")
    m = re.fullmatch(r"(?:s|shard)?(\d+)[:/,](\d+)", text)
    if m:
        return int(m.group(1)), int(m.group(2))
    m = re.fullmatch(r"(?:s|shard)(\d+)", text)
    if m:
        return int(m.group(1)), 0
    m = re.fullmatch(r"#?(\d+)", text)
    if m:
        return current_shard, int(m.group(1))
    raise ValueError("type a sample number (17), shard:sample (2:17) or a shard (s2)")


class FieldScreen(Screen[None]):
    """One field of one sample, full screen: the largest image, the longest text."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("close", "close"),
    ]

    DEFAULT_CSS = """
    FieldScreen #field-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    FieldScreen FieldView { height: 1fr; }
    """

    def __init__(self, item: PreviewSample, name: str, specs: list[FieldSpec] | None) -> None:
        super().__init__()
        self.item = item
        self.field_name = name
        self.value: Any = None
        self.ftype = None
        for fname, value, ftype, _problem in sample_fields(item, specs):
            if fname == name:
                self.value, self.ftype = value, ftype
                break

    def compose(self) -> ComposeResult:
        title = f"{self.field_name} · sample #{self.item.index} · {self.item.key}"
        yield Static(clean_line(title), id="field-title", markup=False)
        yield FieldView(self.value, self.ftype, id="field-view")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(FieldView).focus()

    def action_close(self) -> None:
        self.dismiss(None)


class PreviewScreen(BrowseScreen):
    """Samples of ``entry``, streamed; ``entries`` (optional) lets ``{``/``}`` move between entries.

    ``watch`` polls for a growing shard and a changed entry every ``watch_interval`` seconds;
    ``page_bytes`` bounds the memory a page of samples may take (with ``PAGE_SAMPLES``).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        preview_bind("preview-toggle-view", "toggle_view"),
        preview_bind("preview-schema", "schema"),
        preview_bind("preview-next-page", "next_page"),
        preview_bind("preview-prev-page", "prev_page", show=False),
        preview_bind("preview-next-shard", "next_shard"),
        preview_bind("preview-prev-shard", "prev_shard", show=False),
        preview_bind("preview-jump", "jump"),
        preview_bind("preview-next-entry", "next_entry", show=False),
        preview_bind("preview-prev-entry", "prev_entry", show=False),
        bind("refresh", "reload", show=False),
    ]

    DEFAULT_CSS = """
    PreviewScreen #preview-info { height: 1; padding: 0 1; color: $text; }
    PreviewScreen #preview-status { height: 1; padding: 0 1; color: $text-muted; }
    PreviewScreen #preview-status.-error { color: $error; }
    PreviewScreen ContentSwitcher { height: 1fr; }
    PreviewScreen #preview-table { height: 1fr; }
    PreviewScreen #preview-sample { height: 1fr; }
    PreviewScreen #preview-schema { height: 1fr; padding: 0 1; }
    PreviewScreen #preview-jump { dock: bottom; display: none; }
    PreviewScreen #preview-jump.-open { display: block; }
    """

    def __init__(
        self,
        entry: IndexEntry,
        entries: list[IndexEntry] | None = None,
        *,
        watch: bool = True,
        watch_interval: float = WATCH_INTERVAL,
        page_bytes: int = PAGE_BYTES,
    ) -> None:
        self.entry = entry
        self.page_bytes = page_bytes
        self.polling = watch
        self.poll_interval = watch_interval
        self.repo = entry.repo
        self.entries = list(entries) if entries else None
        super().__init__()
        self.samples: list[PreviewSample] = []
        self.page_start = 0
        self.shard_index = 0
        self.cursor = 0
        self.view: View = "table"
        self._previous_view: View = "table"
        self.generation = 0
        self.loading = False
        self.end: StreamEnd | None = None
        self.progress: tuple[int, int] | None = None
        self.sample_type: Any = None
        self.specs: list[FieldSpec] | None = None
        self.schema: dict[str, Any] | None = None
        self.schema_note: str | None = None
        self.first_sample_s: float | None = None
        self.book = ShardBook()
        self.sources = SourceCache()
        self.watch_state = WatchState()
        self._columns: list[str] | None = None
        self._request_started = 0.0
        self.schema_renderable: Group = Group()
        self._bindings_for: tuple[Any, ...] | None = None
        self._lines_shown: dict[str, str] = {}

    # --- layout -----------------------------------------------------------------------------------
    def crumbs(self) -> list[str]:
        return [self.entry.repo, self.entry.name, "preview"]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="preview-body"):
            yield Static("", id="preview-info", markup=False)
            yield Static("", id="preview-status", markup=False)
            with ContentSwitcher(initial="preview-table", id="preview-views"):
                yield SampleTable(id="preview-table")
                yield SampleView(id="preview-sample")
                with VerticalScroll(id="preview-schema"):
                    yield Static("", id="preview-schema-text", markup=False)
            yield Input(
                placeholder="sample (17), shard:sample (2:17) or shard (s2)", id="preview-jump"
            )

    @property
    def table(self) -> SampleTable:
        return self.query_one("#preview-table", SampleTable)

    @property
    def sample_view(self) -> SampleView:
        return self.query_one("#preview-sample", SampleView)

    def on_mount(self) -> None:
        self.table.focus()
        if self.polling:
            self._start_watch()
        self._load(0, 0)

    def on_unmount(self) -> None:
        # Let go of the page now: the screen object may outlive its unmounting (references
        # from the app, a pending callback), and a page can hold 64 MB of samples.
        self.generation += 1
        self.samples = []
        self.book = ShardBook()

    # --- requests ---------------------------------------------------------------------------------
    def set_entry(self, entry: IndexEntry) -> None:
        """Show another entry: whatever is still streaming for the old one is cancelled."""
        self.entry = entry
        self.repo = entry.repo
        self.sample_type = self.specs = self.schema = self.schema_note = None
        self.book = ShardBook()
        self._columns = None
        self.watch_state.entry = entry
        self.watch_state.entry_ref = self._entry_ref(entry)
        self.query_one("#breadcrumbs").set_parts(*self.crumbs())  # type: ignore[attr-defined]
        self._load(0, 0)

    @staticmethod
    def _entry_ref(entry: IndexEntry) -> str | None:
        if entry.repo == ATMOSPHERE_REPO:
            return None  # entries on the network are not polled
        return entry.name if entry.repo == LOCAL_REPO else f"{entry.repo}/{entry.name}"

    def _load(
        self,
        shard_index: int,
        start_index: int,
        start_offset: int | None = None,
        *,
        append: bool = False,
    ) -> None:
        """Ask for a page of a shard; ``append`` continues the current page (a growing shard)."""
        self.generation += 1
        self.watch_state.generation = self.generation
        self.watch_state.size_at_end = None
        self.loading = True
        self.progress = None
        if not append:
            self.samples = []
            self.page_start = start_index
            self.shard_index = shard_index
            self.cursor = 0
            self.end = None
            self.first_sample_s = None
            self.table.clear()
            self.sample_view.show(None)
        self.watch_state.url = (
            self.entry.data_urls[shard_index] if shard_index < len(self.entry.data_urls) else None
        )
        if not self.entry.data_urls:
            self.loading = False
            self.sample_view.set_placeholder("this entry has no shards")
            self._update_status()
            return
        self.sample_view.set_placeholder("loading the first sample…")
        limit = PAGE_SAMPLES - len(self.samples) if append else PAGE_SAMPLES
        request = StreamRequest(
            self.generation,
            self.entry,
            shard_index,
            start_index,
            start_offset,
            limit=max(1, limit),
            max_bytes=self.page_bytes,
            sample_type=self.sample_type,
        )
        self._request_started = request.started
        generation = self.generation
        worker_box: list[Any] = []

        def cancelled() -> bool:
            worker = worker_box[0] if worker_box else None
            return self.generation != generation or (worker is not None and worker.is_cancelled)

        def run() -> None:
            worker_box.append(get_current_worker())
            stream_preview(
                request,
                index=getattr(self.app, "index", None),
                sources=self.sources,
                book=self.book,
                post=self.post_message,
                cancelled=cancelled,
            )

        self.run_worker(
            run,
            name=f"preview {self.entry.name} shard {shard_index}",
            group="preview-stream",
            thread=True,
            exclusive=True,
            exit_on_error=False,
        )
        self._update_status()

    def _start_watch(self) -> None:
        self.watch_state.entry = self.entry
        self.watch_state.entry_ref = self._entry_ref(self.entry)
        index = getattr(self.app, "index", None)

        def run() -> None:
            worker = get_current_worker()
            watch_preview(
                self.watch_state,
                index=index,
                post=self.post_message,
                cancelled=lambda: worker.is_cancelled,
                interval=self.poll_interval,
                entry_interval=2 * self.poll_interval,
            )

        self.run_worker(
            run,
            name="preview watcher",
            group="preview-watch",
            thread=True,
            exclusive=True,
            exit_on_error=False,
        )

    # --- worker messages --------------------------------------------------------------------------
    @on(SchemaResolved)
    def _schema_resolved(self, message: SchemaResolved) -> None:
        if message.generation != self.generation:
            return
        self.sample_type = message.sample_type
        self.specs = message.specs
        self.schema = message.schema
        self.schema_note = message.note
        self._update_info()

    @on(SamplesLoaded)
    def _samples_loaded(self, message: SamplesLoaded) -> None:
        if message.generation != self.generation:
            return  # an answer to an older request: another entry, page or shard
        if message.first and self.first_sample_s is None:
            self.first_sample_s = time.perf_counter() - self._request_started
        if message.shown is not None:
            self.call_after_refresh(message.shown.set)  # the worker reads on once it is drawn
        start = len(self.samples)
        self.samples.extend(message.samples)
        self.progress = None
        self._add_rows(message.samples, start)
        if self.sample_view.item is None and self.samples:
            self._show_sample(min(self.cursor, len(self.samples) - 1))
        if self.view == "schema":
            self._update_schema()
        self._update_status()

    @on(StreamProgress)
    def _stream_progress(self, message: StreamProgress) -> None:
        if message.generation == self.generation:
            self.progress = (message.passed, message.target)
            self._update_status()

    @on(StreamFinished)
    def _stream_finished(self, message: StreamFinished) -> None:
        if message.generation != self.generation:
            return
        self.loading = False
        self.end = message.end
        self.progress = None
        if not self.samples:
            reason = message.end.error or "the shard holds no samples here"
            self.sample_view.set_placeholder(f"no samples: {reason}")
        if message.size is not None and message.end.reason != "page-full":
            self.watch_state.size_at_end = message.size  # the watcher reports when it grows
        if self.view == "schema":
            self._update_schema()
        self._update_status()

    @on(ShardGrew)
    def _shard_grew(self, message: ShardGrew) -> None:
        if message.generation != self.generation or self.end is None:
            return
        if message.url != self.entry.data_urls[self.shard_index]:
            return
        end = self.end
        if end.reason == "error" and not self.samples:
            self.book.forget(message.url)
            self._load(self.shard_index, self.page_start)
        elif len(self.samples) < PAGE_SAMPLES:
            self.book.set_count(message.url, None)
            self._load(self.shard_index, end.next_index, end.resume_offset, append=True)
        else:
            self._update_status()

    @on(EntryChanged)
    def _entry_changed(self, message: EntryChanged) -> None:
        old = self.entry
        self.entry = message.entry
        self.watch_state.entry = message.entry
        self._update_info()
        if (
            not self.loading
            and self.end is not None
            and self.end.reason == "eof"
            and len(message.entry.data_urls) > len(old.data_urls)
        ):
            self.notify(
                f"{len(message.entry.data_urls) - len(old.data_urls)} new shard(s): ] shows the next",
                title="Preview",
            )
        self._update_status()

    # --- the table --------------------------------------------------------------------------------
    def _column_names(self, item: PreviewSample) -> list[str]:
        if self.specs:
            return [s.name for s in self.specs]
        if item.sample is not None:
            return [name for name, *_ in sample_fields(item, None)]
        return []

    def _add_rows(self, items: list[PreviewSample], start: int) -> None:
        table = self.table
        if self._columns is None:
            first = next((i for i in items if i.sample is not None), None)
            if first is not None:
                columns = self._column_names(first)
            else:
                columns = [s.name for s in self.specs or []]
            self._columns = columns
            table.clear(columns=True)
            table.set_columns(["#", "", "key", *columns])
        table.add_rows([self._row(item) for item in items])

    def _row(self, item: PreviewSample) -> list[Any]:
        status = {
            "ok": Text("✓", "green"),
            "mismatch": Text("≠", "bold yellow"),
            "error": Text("✗", "bold red"),
        }[item.status]
        key_text = clean_line(item.key)
        if len(key_text) > 24:
            key_text = key_text[:11] + "…" + key_text[-12:]
        cells: list[Any] = [
            Text(str(item.index), "dim", justify="right"),
            status,
            Text(key_text, "cyan"),
        ]
        columns = self._columns or []
        if item.sample is None:
            message = Text(clean_line(item.error or "cannot be decoded")[:60], "red")
            cells += [message] + [Text("")] * max(0, len(columns) - 1)
            return cells[: 3 + len(columns)] if columns else cells[:3]
        values = {
            name: (value, problem) for name, value, _t, problem in sample_fields(item, self.specs)
        }
        for name in columns:
            if name not in values:
                cells.append(Text("—", "dim"))
                continue
            value, problem = values[name]
            if problem == "missing":
                cells.append(Text("missing", "bold red"))
            else:
                cells.append(inline(value, CELL_WIDTH))
        return cells

    @on(SampleTable.Highlighted, "#preview-table")
    def _row_highlighted(self, event: SampleTable.Highlighted) -> None:
        if 0 <= event.row < len(self.samples):
            self.cursor = event.row

    @on(SampleTable.Selected, "#preview-table")
    def _row_selected(self, event: SampleTable.Selected) -> None:
        event.stop()
        if 0 <= event.row < len(self.samples):
            self._show_sample(event.row)
            self._switch("sample")

    # --- views ------------------------------------------------------------------------------------
    def _show_sample(self, position: int) -> None:
        if not self.samples:
            return
        self.cursor = max(0, min(position, len(self.samples) - 1))
        self.sample_view.show(self.samples[self.cursor], self.specs)
        if self.table.row_count > self.cursor and self.table.cursor_row != self.cursor:
            self.table.move_cursor(self.cursor)
        self._update_status()

    def _switch(self, view: View) -> None:
        if view == "schema" and self.view != "schema":
            self._previous_view = self.view
        self.view = view
        switcher = self.query_one("#preview-views", ContentSwitcher)
        switcher.current = f"preview-{view}"
        if view == "table":
            self.table.focus()
        elif view == "sample":
            if self.sample_view.item is None and self.samples:
                self._show_sample(self.cursor)
            self.sample_view.focus()
        else:
            self._update_schema()
            self.query_one("#preview-schema", VerticalScroll).focus()
        self.refresh_bindings()
        self._update_status()

    def action_toggle_view(self) -> None:
        self._switch("sample" if self.view == "table" else "table")

    def action_schema(self) -> None:
        if self.view == "schema":
            self._switch(self._previous_view)
        else:
            self._switch("schema")

    def action_next_sample(self) -> None:
        if self.cursor + 1 < len(self.samples):
            self._show_sample(self.cursor + 1)
        elif self._has_more():
            self.notify("last sample of this page: n loads the next", title="Preview")

    def action_prev_sample(self) -> None:
        if self.cursor > 0:
            self._show_sample(self.cursor - 1)

    @on(SampleView.Step)
    def _step(self, message: SampleView.Step) -> None:
        if message.delta > 0:
            self.action_next_sample()
        else:
            self.action_prev_sample()

    @on(SampleView.OpenField)
    def _open_field(self, message: SampleView.OpenField) -> None:
        self.app.push_screen(FieldScreen(message.item, message.name, self.specs))

    # --- paging -----------------------------------------------------------------------------------
    def _has_more(self) -> bool:
        end = self.end
        if end is None:
            return False
        if end.reason == "page-full":
            return True
        return end.reason == "eof" and self.shard_index + 1 < len(self.entry.data_urls)

    def action_next_page(self) -> None:
        end = self.end
        if end is None:
            return
        if end.reason == "page-full":
            self._load(self.shard_index, end.next_index, end.next_offset)
        elif self.shard_index + 1 < len(self.entry.data_urls):
            self._load(self.shard_index + 1, 0)

    def action_prev_page(self) -> None:
        if self.page_start > 0:
            self._load(self.shard_index, max(0, self.page_start - PAGE_SAMPLES))
        elif self.shard_index > 0:
            self._load(self.shard_index - 1, 0)

    def action_next_shard(self) -> None:
        if self.shard_index + 1 < len(self.entry.data_urls):
            self._load(self.shard_index + 1, 0)

    def action_prev_shard(self) -> None:
        if self.shard_index > 0:
            self._load(self.shard_index - 1, 0)

    def action_reload(self) -> None:
        if self.entry.data_urls:
            self.book.forget(self.entry.data_urls[self.shard_index])
        self.sample_type = None
        self._columns = None
        self._load(self.shard_index, self.page_start)

    def action_next_entry(self) -> None:
        self._step_entry(1)

    def action_prev_entry(self) -> None:
        self._step_entry(-1)

    def _step_entry(self, delta: int) -> None:
        if not self.entries:
            return
        cids = [e.cid for e in self.entries]
        i = cids.index(self.entry.cid) if self.entry.cid in cids else 0
        j = i + delta
        if 0 <= j < len(self.entries):
            self.set_entry(self.entries[j])

    # --- jump -------------------------------------------------------------------------------------
    def action_jump(self) -> None:
        box = self.query_one("#preview-jump", Input)
        box.border_title = "Jump to · enter to go · escape to cancel"
        box.add_class("-open")
        box.value = ""
        box.focus()

    def _close_jump(self) -> None:
        box = self.query_one("#preview-jump", Input)
        box.remove_class("-open")
        self._switch(self.view)

    @on(Input.Submitted, "#preview-jump")
    def _jump_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            shard, index = parse_jump(event.value, self.shard_index)
        except ValueError as exc:
            self.notify(str(exc), title="Jump", severity="warning")
            return
        self._close_jump()
        self.jump_to(shard, index)

    def jump_to(self, shard: int, index: int) -> None:
        """Show sample ``index`` of shard ``shard`` (a page starting there unless it is loaded)."""
        if not 0 <= shard < len(self.entry.data_urls):
            self.notify(
                f"no shard {shard}: this entry has shards 0{DASH}{len(self.entry.data_urls) - 1}",
                title="Jump",
                severity="warning",
            )
            return
        if shard == self.shard_index and self.page_start <= index < self.page_start + len(
            self.samples
        ):
            self._show_sample(index - self.page_start)
            self._switch("sample")
            return
        self._load(shard, index)
        self._switch("sample")

    def action_back(self) -> None:
        box = self.query_one("#preview-jump", Input)
        if box.has_class("-open"):
            self._close_jump()
            return
        if self.view == "schema":
            self._switch(self._previous_view)
            return
        super().action_back()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return True
        urls = self.entry.data_urls
        if action == "next_page":
            return True if self._has_more() else None
        if action == "prev_page":
            return True if (self.page_start > 0 or self.shard_index > 0) else None
        if action == "next_shard":
            return True if self.shard_index + 1 < len(urls) else None
        if action == "prev_shard":
            return True if self.shard_index > 0 else None
        if action in ("next_entry", "prev_entry"):
            return bool(self.entries and len(self.entries) > 1)
        return True

    # --- text -------------------------------------------------------------------------------------
    def _schema_name(self) -> str:
        if self.schema:
            return f"{self.schema.get('name', '?')}@{self.schema.get('version', '?')}"
        ref = self.entry.schema_ref
        return ref.rsplit("/", 1)[-1] if ref else "no schema"

    def _update_info(self) -> None:
        entry = self.entry
        parts = [entry.name, self._schema_name(), entry.storage]
        n = len(entry.data_urls)
        parts.append(f"{n} shard{'s' if n != 1 else ''}")
        if entry.samples is not None:
            parts.append(f"{entry.samples:,} samples")
        if entry.size_bytes:
            parts.append(human_bytes(entry.size_bytes))
        text = " · ".join(clean_line(str(p)) for p in parts)
        if self.schema_note:
            text += f" · {clean_line(self.schema_note)}"
        self._set_line("#preview-info", text)

    def shard_total(self) -> int | None:
        """Samples in the current shard, when known (metadata, manifest, or read to the end)."""
        if not self.entry.data_urls:
            return 0
        url = self.entry.data_urls[self.shard_index]
        known = self.entry.shard_samples.get(url)
        if isinstance(known, int):
            return known
        return self.book.count(url)

    def status_parts(self) -> list[tuple[int, str]]:
        """``(priority, text)`` parts of the status line; 0 must show, higher ones may be dropped."""
        urls = self.entry.data_urls
        if not urls:
            return [(0, "this entry has no shards")]
        url = urls[self.shard_index]
        name = display_url(url).rsplit("/", 1)[-1][:40]
        parts = [(0, f"shard {self.shard_index} of {len(urls)}"), (3, name)]
        total = self.shard_total()
        shown = len(self.samples)
        if shown:
            span = f"{self.page_start}{DASH}{self.page_start + shown - 1}"
            if total is not None:
                of = f"{total:,}"
            elif self._has_more() or self.loading:
                of = f"≥{self.page_start + shown:,}"
            elif self.end is not None and self.end.reason in ("truncated", "error"):
                of = f"{self.page_start + shown:,} readable"
            else:
                of = "?"
            parts.append((0, f"{span} of {of} ({shown} shown)" if shown > 1 else f"{span} of {of}"))
        if self.view == "sample" and shown:
            parts.append((2, f"at #{self.page_start + self.cursor}"))
        end = self.end
        if self.progress is not None:
            parts.append((0, f"skipping to #{self.progress[1]:,}: {self.progress[0]:,}…"))
        elif self.loading:
            parts.append((0, "streaming…"))
        elif end is not None:
            if end.reason == "page-full" and end.capped_by == "bytes":
                parts.append((0, f"n: more (≤{human_bytes(self.page_bytes)} kept)"))
            elif end.reason == "page-full":
                parts.append((0, f"n: {PAGE_SAMPLES} more"))
            elif end.reason == "eof":
                parts.append((1, "end of shard"))
                if self.shard_index + 1 < len(urls):
                    parts.append((0, "n: next shard"))
            elif end.reason == "truncated":
                parts.append((0, f"⚠ shard truncated after #{end.next_index - 1}"))
                parts.append((4, f"({end.error})"))
            elif end.reason == "error":
                parts.append((0, f"✗ {end.error}"))
        bad = sum(1 for s in self.samples if s.status != "ok")
        if bad:
            parts.append((0, f"{bad} bad"))
        return parts

    def status_text(self, width: int | None = None) -> str:
        """The status line: where we are, how many are shown of how many, and what keys do next.

        When it does not fit ``width``, the least important parts go first (the file name, then
        the cursor); what is shown and what ``n`` does always stay.
        """
        parts = self.status_parts()
        text = " · ".join(p for _, p in parts)
        while width is not None and len(text) > width and any(pr > 0 for pr, _ in parts):
            worst = max(pr for pr, _ in parts)
            drop = max(i for i, (pr, _) in enumerate(parts) if pr == worst)
            parts.pop(drop)
            text = " · ".join(p for _, p in parts)
        return text

    def _update_status(self) -> None:
        status = self.query_one("#preview-status", Static)
        width = status.content_region.width or (self.app.size.width - 2)
        self._set_line("#preview-status", clean_line(self.status_text(width)))
        status.set_class(
            self.end is not None and self.end.reason in ("error", "truncated"), "-error"
        )
        self._refresh_bindings_if_changed()
        self._update_info()

    def _set_line(self, selector: str, text: str) -> None:
        """Update a one-line Static only when its text changes, and without a layout pass
        (its size never changes): this runs for every batch of samples."""
        if self._lines_shown.get(selector) != text:
            self._lines_shown[selector] = text
            self.query_one(selector, Static).update(text, layout=False)

    def _binding_state(self) -> tuple[Any, ...]:
        """What ``check_action`` depends on: bindings (and the footer) change only with it."""
        return (
            self.view,
            self._has_more(),
            self.page_start > 0 or self.shard_index > 0,
            self.shard_index + 1 < len(self.entry.data_urls),
            self.shard_index > 0,
            bool(self.entries and len(self.entries) > 1),
        )

    def _refresh_bindings_if_changed(self) -> None:
        # Refreshing bindings makes the footer rebuild its keys (and restyle them): doing it on
        # every batch of samples costs more than the samples themselves.
        state = self._binding_state()
        if state != self._bindings_for:
            self._bindings_for = state
            self.refresh_bindings()

    def _update_schema(self) -> None:
        out: list[Any] = []
        title = Text.assemble(("Schema ", "bold"), (self._schema_name(), "bold cyan"))
        out.append(title)
        out.append(Text(clean_line(self.entry.schema_ref), "dim"))
        if self.schema_note:
            out.append(Text(clean_line(self.schema_note), "yellow"))
        if self.specs:
            table = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
            table.add_column("field")
            table.add_column("type")
            table.add_column("optional")
            for spec in self.specs:
                table.add_row(
                    Text(clean_line(spec.name), "cyan"),
                    spec.type.describe(),
                    "yes" if spec.optional else "",
                )
            out.append(table)
        description = (self.schema or {}).get("description")
        if isinstance(description, str) and description:
            out.append(Text(clean_line(description)[:300], "italic dim"))
        ok = sum(1 for s in self.samples if s.status == "ok")
        mismatch = [s for s in self.samples if s.status == "mismatch"]
        broken = [s for s in self.samples if s.status == "error"]
        out.append(Text(""))
        out.append(
            Text.assemble(
                (f"{len(self.samples)} samples loaded: ", "bold"),
                (f"{ok} match", "green"),
                " · ",
                (f"{len(mismatch)} do not match", "yellow" if mismatch else "dim"),
                " · ",
                (f"{len(broken)} cannot be decoded", "red" if broken else "dim"),
            )
        )
        end = self.end
        if end is not None and end.reason in ("truncated", "error"):
            what = "shard truncated" if end.reason == "truncated" else "shard unreadable"
            out.append(
                Text.assemble(
                    (
                        f"  {what} after #{end.next_index - 1}: "
                        if end.next_index
                        else f"  {what}: ",
                        "bold red",
                    ),
                    (clean_line(end.error or "")[:300], "red"),
                )
            )
        for item in sorted(mismatch + broken, key=lambda s: s.index)[:50]:
            style = "yellow" if item.status == "mismatch" else "red"
            out.append(
                Text.assemble(
                    (f"  #{item.index} ", "bold"),
                    (clean_line(item.key)[:40], "cyan"),
                    "  ",
                    (clean_line(item.error or item.status)[:120], style),
                )
            )
        if len(mismatch) + len(broken) > 50:
            out.append(Text(f"  … {len(mismatch) + len(broken) - 50} more", "italic yellow"))
        self.schema_renderable = Group(*out)
        self.query_one("#preview-schema-text", Static).update(self.schema_renderable)

    def local_shard_size(self) -> int | None:
        """The current shard's size on disk (tests and the status use it)."""
        return local_size(self.entry.data_urls[self.shard_index]) if self.entry.data_urls else None


__all__ = ["FieldScreen", "PreviewScreen", "parse_jump"]
