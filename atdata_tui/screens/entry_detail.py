"""Everything the index knows about one entry: metadata, shards (checksums, sizes, sample counts),
the ``at://`` URI once promoted, and the ref to copy. ``V`` recomputes the checksums in a worker."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from .. import workers
from ..bindings import KEYS, bind
from ..jobs import human_bytes
from ..messages import EntryLoaded, VerifyDone
from ..workers.index import ATMOSPHERE, entry_ref, human_count
from . import BrowseScreen, Command

if TYPE_CHECKING:
    from atdata_core.index import IndexEntry, VerifyReport

#: Shards listed at most (an entry may have tens of thousands); the rest is counted, not hidden.
MAX_SHARDS_SHOWN = 500


class DetailScroll(VerticalScroll, can_focus=True):
    """The scrolling body; vim keys scroll it too."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(KEYS["cursor-down"].keys, "scroll_down", show=False, id="cursor-down"),
        Binding(KEYS["cursor-up"].keys, "scroll_up", show=False, id="cursor-up"),
        Binding(KEYS["cursor-top"].keys, "scroll_home", show=False, id="cursor-top"),
        Binding(KEYS["cursor-bottom"].keys, "scroll_end", show=False, id="cursor-bottom"),
    ]


def _short_value(value: Any, limit: int = 200) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


class EntryDetailScreen(BrowseScreen):
    """One entry's metadata and shards."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("preview", "preview"),
        bind("open-preview", "preview", show=False),
        bind("copy-ref", "copy_ref"),
        bind("copy-cid", "copy_cid"),
        bind("verify", "verify"),
        bind("refresh", "refresh"),
        bind("promote", "promote", show=False),
        bind("result-schema", "network_schema"),
        bind("result-lenses", "network_lenses"),
        bind("result-versions", "network_versions"),
    ]

    def __init__(self, entry: IndexEntry) -> None:
        super().__init__()
        self.entry = entry
        self.repo = "network" if entry.repo == ATMOSPHERE else entry.repo
        self.report: VerifyReport | None = None
        self.verifying = False

    def crumbs(self) -> list[str]:
        repo = "@network" if self.entry.repo == ATMOSPHERE else self.entry.repo
        return [repo, "entries", self.entry.name]

    def compose_body(self) -> ComposeResult:
        with DetailScroll(id="detail-body"):
            yield Static(id="detail-meta")
            yield Static(id="detail-shards")

    def on_mount(self) -> None:
        self.render_entry()
        self.query_one(DetailScroll).focus()

    # --- rendering ------------------------------------------------------------------------------------
    def render_entry(self) -> None:
        self.query_one("#detail-meta", Static).update(self._meta())
        self.query_one("#detail-shards", Static).update(self._shards())

    def _meta(self) -> RenderableType:
        e = self.entry
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        table.add_row("Name", Text(e.name, style="bold"))
        table.add_row("Ref", Text(entry_ref(e)))
        table.add_row(
            "Repository", Text("the AT Protocol network" if e.repo == ATMOSPHERE else e.repo)
        )
        table.add_row("CID", Text(e.cid))
        atproto = (e.metadata or {}).get("atproto")
        if e.repo == ATMOSPHERE and isinstance(atproto, dict):
            from atdata_core.safe_text import safe_line

            handle, did = atproto.get("handle"), atproto.get("did")
            author = f"@{handle} ({did})" if handle else str(did or "?")
            table.add_row("Author", Text(safe_line(author)))
            if atproto.get("appview"):
                table.add_row("Indexed by", Text(safe_line(atproto["appview"])))
        named = (
            atproto.get("schema") if e.repo == ATMOSPHERE and isinstance(atproto, dict) else None
        )
        if isinstance(named, str) and named:  # the network's name@version for the schema record
            from atdata_core.safe_text import safe_line

            table.add_row("Schema", Text(f"{safe_line(named)}  {e.schema_ref}"))
        else:
            table.add_row("Schema", Text(e.schema_ref))
        table.add_row("Created", Text(e.created_at or "-"))
        table.add_row(
            "Size",
            Text(
                f"{human_count(e.samples)} samples · {human_count(e.shards)} shards · "
                f"{human_bytes(e.size_bytes)}"
            ),
        )
        table.add_row("Storage", Text(e.storage))
        if e.at_uri:
            table.add_row("Published", Text("✓ " + e.at_uri))
        else:
            table.add_row(
                "Published", Text("no (p: promote to the AT Protocol network)", style="dim")
            )
        if e.description:
            table.add_row("Description", Text(str(e.description)))
        if e.tags:
            table.add_row("Tags", Text(", ".join(str(t) for t in e.tags)))
        if e.license:
            table.add_row("License", Text(str(e.license)))
        if e.legacy_uuid:
            table.add_row("Legacy UUID", Text(e.legacy_uuid))
        from atdata_core.index.entries import MANAGED_METADATA_KEYS  # loaded after first paint

        for key, value in sorted((e.metadata or {}).items(), key=lambda kv: str(kv[0])):
            if key not in MANAGED_METADATA_KEYS:  # those have rows of their own
                table.add_row(Text(str(key)), Text(_short_value(value)))
        if self.verifying:
            table.add_row("Checksums", Text("verifying…", style="dim"))
        elif self.report is not None:
            ok = self.report.ok
            style = "bold green" if ok else "bold red"
            summary = "all shards match" if ok else "MISMATCH or missing shards (see below)"
            table.add_row("Checksums", Text(summary, style=style))
        return table

    def _shards(self) -> RenderableType:
        e = self.entry
        urls = list(e.data_urls)
        checks = {c.url: c for c in self.report.shards} if self.report is not None else {}
        sizes, samples, sums = e.shard_sizes, e.shard_samples, e.checksums
        wide = self.size.width >= 110
        other = 4 + 9 + 10 + (66 if wide else 16) + (10 if self.report is not None else 0)
        keep = max(self.size.width - other - 4, 16)
        table = Table(
            title=f"Shards ({len(urls):,})",
            title_justify="left",
            title_style="bold",
            expand=True,
            box=None,
            padding=(0, 1),
            header_style="bold",
        )
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("URL", overflow="ellipsis", no_wrap=True, ratio=1)
        table.add_column("Samples", justify="right", no_wrap=True)
        table.add_column("Size", justify="right", no_wrap=True)
        table.add_column("SHA-256", no_wrap=True, overflow="ellipsis", max_width=64 if wide else 14)
        if checks:
            table.add_column("Check", no_wrap=True)
        for i, url in enumerate(urls[:MAX_SHARDS_SHOWN]):
            digest = sums.get(url) or "-"
            row: list[RenderableType] = [
                Text(str(i)),
                Text(_left_ellipsis(url, keep)),
                Text(human_count(samples.get(url)) if url in samples else "-"),
                Text(human_bytes(sizes.get(url)) if url in sizes else "-"),
                Text(str(digest)),
            ]
            if checks:
                check = checks.get(url)
                status = check.status if check is not None else "-"
                style = {"ok": "green", "mismatch": "bold red", "missing": "bold red"}.get(
                    status, ""
                )
                row.append(Text(status, style=style))
            table.add_row(*row)
        parts: list[RenderableType] = [Text(""), table]
        if len(urls) > MAX_SHARDS_SHOWN:
            parts.append(
                Text(f"… {len(urls) - MAX_SHARDS_SHOWN:,} more shards not listed", style="dim")
            )
        return Group(*parts)

    def on_resize(self) -> None:
        self.query_one("#detail-shards", Static).update(self._shards())

    # --- actions ------------------------------------------------------------------------------------
    def action_preview(self) -> None:
        self.atdata.open_preview(self.entry)

    def action_copy_ref(self) -> None:
        self.atdata.copy_text(entry_ref(self.entry), "ref")

    def action_copy_cid(self) -> None:
        self.atdata.copy_text(self.entry.cid, "CID")

    def action_refresh(self) -> None:
        index = self.index
        if index is not None:
            # a network entry is read again from its author's PDS (its at:// URI)
            self._reload(index, entry_ref(self.entry))

    @work(thread=True, exclusive=True, exit_on_error=False, group="entry-detail")
    def _reload(self, index: Any, ref: str) -> None:
        entry = workers.call(workers.index.resolve, index, ref)
        self.post_message(EntryLoaded(entry))

    def on_entry_loaded(self, message: EntryLoaded) -> None:
        self.entry = message.entry
        self.render_entry()
        self.notify("Entry reloaded", timeout=2)

    def action_verify(self) -> None:
        index = self.index
        if index is None or self.verifying:
            return
        self.verifying = True
        self.report = None
        self.render_entry()
        self.notify("Verifying checksums… (other keys keep working)", timeout=3)
        self._verify(index, self.entry)

    @work(thread=True, exclusive=True, exit_on_error=False, group="entry-verify")
    def _verify(self, index: Any, entry: IndexEntry) -> None:
        try:
            report = workers.call(index.verify, entry)
        finally:
            self.app.call_from_thread(self._verify_finished)
        self.post_message(VerifyDone(report))

    def _verify_finished(self) -> None:
        self.verifying = False
        self.render_entry()

    def on_verify_done(self, message: VerifyDone) -> None:
        self.report = message.report
        self.render_entry()
        if self.report is not None and self.report.ok:
            self.notify("All shards match their checksums")
        else:
            self.notify("Some shards do not match their checksums", severity="error")

    def action_promote(self) -> None:
        self.atdata.action_promote()

    def _is_network(self) -> bool:
        """A published entry, with an AppView to ask about its schema, lenses and versions."""
        return bool(self.entry.at_uri and getattr(self.app, "appview_url", None))

    def action_network_schema(self) -> None:
        from .network import NetworkSchemaScreen

        self.app.push_screen(NetworkSchemaScreen(self.entry))

    def action_network_lenses(self) -> None:
        from .network import LensesScreen

        self.app.push_screen(LensesScreen(self.entry))

    def action_network_versions(self) -> None:
        from .network import VersionsScreen

        self.app.push_screen(VersionsScreen(self.entry))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "verify":
            return self.entry.repo != ATMOSPHERE or bool(self.entry.data_urls)
        if action in ("network_schema", "network_lenses", "network_versions"):
            return self._is_network() and self.entry.repo == ATMOSPHERE
        return super().check_action(action, parameters)

    def commands(self) -> list[Command]:
        e = self.entry
        out = [
            Command("Preview samples", f"Show samples of {e.name}", self.action_preview),
            Command("Copy ref", entry_ref(e), self.action_copy_ref),
            Command("Copy CID", e.cid, self.action_copy_cid),
            Command("Verify checksums", "Recompute every shard's SHA-256", self.action_verify),
            Command("Refresh", "Reload this entry from the index", self.action_refresh),
        ]
        if e.at_uri:
            out.append(
                Command(
                    "Copy at:// URI",
                    e.at_uri,
                    partial(self.atdata.copy_text, e.at_uri, "at:// URI"),
                )
            )
        else:
            out.append(
                Command(
                    "Promote this entry",
                    "Publish it to the AT Protocol network",
                    self.action_promote,
                )
            )
        return out


def _left_ellipsis(url: str, keep: int = 80) -> str:
    """Shard URLs differ at the end: keep the end when they must be cut."""
    return url if len(url) <= keep else "…" + url[-(keep - 1) :]
