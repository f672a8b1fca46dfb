"""Plain functions for the "network" repository: search and lookups through the dataset AppView.

Like ``workers.index``, nothing here imports Textual: the search screen's thread workers and the
CLI (``atdata-tui search``, ``ls network``) call these. The AppView pages by cursor while the entry
list asks for rows by offset, so ``NetworkPager`` walks the cursors in order and keeps the rows it
has seen (at most ``MAX_RESULTS``: a search is for finding, not for dumping the network).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..jobs import human_bytes
from .index import NETWORK, Column, FieldRow, human_count, schema_label  # noqa: F401 (NETWORK: re-exported)

if TYPE_CHECKING:
    from atdata_core.atmosphere.appview import AppViewClient, NetworkLens, Versions
    from atdata_core.index import Index, IndexEntry, Page

#: Results kept per search (10 AppView pages of 100); the list says when there are more.
MAX_RESULTS = 1000
#: What the AppView is asked for per request (its maximum).
REQUEST_SIZE = 100


def appview_of(index: Index) -> AppViewClient:
    """The index's AppView client, or an error that says how to configure one."""
    from atdata_core.atmosphere.appview import AppViewError

    backend = index.atmosphere
    view = getattr(backend, "appview", None) if backend is not None else None
    if view is None:
        raise AppViewError(
            'no AppView is configured: set `appview = "https://…"` in the [atmosphere] section '
            "of the config (atdata-tui config path), or pass --appview URL"
        )
    return view  # type: ignore[no-any-return]


# --- paging ----------------------------------------------------------------------------------------


class NetworkPager:
    """Rows by offset over the AppView's cursors, for one query at a time (thread-safe).

    An empty query lists the most recently indexed entries (``listEntries``); anything else is a
    full-text search (``searchDatasets``). Rows are deduplicated by URI: atdata-app's search cursor
    is keyed by indexing time while its results are ordered by rank, so pages can overlap.
    """

    def __init__(self, appview: AppViewClient, *, author: str | None = None) -> None:
        self.appview = appview
        self.author = author
        self._lock = threading.Lock()
        self._query: str | None = None
        self._rows: list[IndexEntry] = []
        self._seen: set[str] = set()
        self._cursor: str | None = None
        self._cursors: set[str] = set()
        self._done = False
        self.truncated = False
        self.skipped: list[str] = []

    def _reset(self, query: str) -> None:
        self._query = query
        self._rows, self._seen = [], set()
        self._cursor, self._cursors = None, set()
        self._done = self.truncated = False
        self.skipped = []

    def forget(self) -> None:
        """Drop the rows kept so far: the next ``fetch`` asks the AppView again."""
        with self._lock:
            self._query = None

    def _next_page(self) -> None:
        query = self._query or ""
        if query:
            page = self.appview.search(
                query, author=self.author, limit=REQUEST_SIZE, cursor=self._cursor
            )
        else:
            page = self.appview.list_entries(
                author=self.author, limit=REQUEST_SIZE, cursor=self._cursor
            )
        self.skipped += page.skipped
        for entry in page.items:
            uri = entry.at_uri or entry.cid
            if uri not in self._seen:
                self._seen.add(uri)
                entry.repo = "_atmosphere"
                self._rows.append(entry)
        cursor = page.cursor
        if len(self._rows) > MAX_RESULTS or (len(self._rows) == MAX_RESULTS and cursor):
            del self._rows[MAX_RESULTS:]
            self._done = self.truncated = True
        elif cursor is None or cursor in self._cursors:
            self._done = True
        else:
            self._cursors.add(cursor)
            self._cursor = cursor

    def fetch(self, offset: int, limit: int, query: str | None) -> Page:
        """Rows ``offset`` to ``offset + limit`` of ``query``'s results (``total`` once known)."""
        from atdata_core.index import Page

        text = " ".join((query or "").split())
        with self._lock:
            if text != self._query:
                self._reset(text)
            while len(self._rows) < offset + limit and not self._done:
                self._next_page()
            rows = self._rows[offset : offset + limit]
            total = len(self._rows) if self._done else None
            return Page(rows, offset, total, next_cursor=self._cursor)

    @property
    def done(self) -> bool:
        return self._done


# --- the network's row on the repositories screen ----------------------------------------------------


def describe_network(index: Index) -> tuple[int | None, int | None, str]:
    """``(entries, schemas, address)`` the AppView holds (one request)."""
    info = appview_of(index).describe()
    return info.entries, info.schemas, info.url


# --- columns of the results list ---------------------------------------------------------------------


#: Display order. ``width`` is the width a column gets when there is room, ``min_width`` the least
#: it is squeezed to; when even that does not fit, columns go by ``priority`` (highest first).
NETWORK_COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", 0, priority=0, min_width=18),
    Column("author", "Author", 22, priority=1, min_width=16),
    Column("schema", "Schema", 22, priority=4, min_width=16),
    Column("samples", "Samples", 9, "right", priority=5, min_width=9),
    Column("size", "Size", 9, "right", priority=2, min_width=8),
    Column("license", "License", 12, priority=3, min_width=10),
    Column("created", "Created", 10, priority=6, min_width=10),
)


def author_of(entry: IndexEntry) -> str:
    """``@handle`` when verified, else the DID (what a user can type back)."""
    atproto = (entry.metadata or {}).get("atproto") or {}
    handle = atproto.get("handle") if isinstance(atproto, dict) else None
    if isinstance(handle, str) and handle:
        return f"@{handle}"
    did = atproto.get("did") if isinstance(atproto, dict) else None
    return did if isinstance(did, str) else "?"


def schema_of(entry: IndexEntry) -> str:
    """The schema's ``name@version`` when the AppView knows it, else its record key."""
    atproto = (entry.metadata or {}).get("atproto") or {}
    named = atproto.get("schema") if isinstance(atproto, dict) else None
    return named if isinstance(named, str) and named else schema_label(entry.schema_ref)


def network_cell_values(entry: IndexEntry) -> dict[str, str]:
    """The text of every network column for one result (unsanitized: the list sanitizes)."""
    return {
        "name": entry.name,
        "author": author_of(entry),
        "schema": schema_of(entry),
        "samples": human_count(entry.samples),
        "size": human_bytes(entry.size_bytes),
        "license": str(entry.license or "-"),
        "created": (entry.created_at or "")[:10],
    }


def layout_network_columns(width: int) -> list[tuple[Column, int]]:
    """Network columns that fit in ``width`` cells: squeezed towards their minimum widths first,
    dropped by priority only when that is not enough; the name takes what is left."""
    from .index import GAP, MARK_WIDTH

    available = max(width - MARK_WIDTH, 1)
    name = NETWORK_COLUMNS[0]
    columns = list(NETWORK_COLUMNS)
    while True:
        widths = {c.key: c.width for c in columns if c is not name}
        floor = {c.key: c.min_width or c.width for c in columns if c is not name}
        excess = sum(w + GAP for w in widths.values()) + name.min_width - available
        while excess > 0 and any(widths[k] > floor[k] for k in widths):
            key = max(widths, key=lambda k: widths[k] - floor[k])
            widths[key] -= 1
            excess -= 1
        if excess <= 0 or len(columns) == 1:
            break
        columns.remove(max(columns, key=lambda c: c.priority))
    rest = max(available - sum(w + GAP for w in widths.values()), 1)
    return [(c, rest if c is name else widths[c.key]) for c in columns]


# --- a result's schema, lenses and versions ---------------------------------------------------------


@dataclass
class NetworkSchema:
    """A schema record from the AppView: its fields, and the other versions of that name."""

    uri: str
    name: str
    version: str
    description: str | None
    fields: list[FieldRow] = field(default_factory=list)
    versions: list[tuple[str, str]] = field(default_factory=list)  # (version, uri), newest first
    versions_cut: bool = False
    error: str | None = None


def load_network_schema(index: Index, schema_uri: str) -> NetworkSchema:
    """Fields of the schema at ``schema_uri`` and every version of its name by the same author."""
    from atdata_core.errors import AtdataError
    from atdata_core.schema import fields_from_record

    appview = appview_of(index)
    record = appview.get_schema(schema_uri)
    description = record.get("description")
    out = NetworkSchema(
        schema_uri,
        str(record["name"]),
        str(record["version"]),
        " ".join(description.split()) if isinstance(description, str) else None,
    )
    try:
        specs = fields_from_record(record)
        out.fields = [FieldRow(s.name, s.type.describe(), s.optional) for s in specs]
    except AtdataError as exc:
        out.error = str(exc)
    try:
        versions, out.versions_cut = appview.schema_versions(schema_uri)
        out.versions = [(str(v["version"]), str(v["$ref"])) for v in versions]
    except AtdataError as exc:
        out.error = out.error or f"other versions unavailable: {exc}"
    return out


@dataclass
class LensRow:
    """One lens to or from a schema, ready to show (its code is a reference, never run)."""

    uri: str
    name: str
    direction: str  # "to" (this schema is the source) or "from" (it is the target)
    other_schema: str
    language: str | None
    getter: str
    putter: str
    description: str | None
    author: str
    other_label: str | None = None  # the other schema's name@version, when the AppView has it


def _code(ref: Any) -> str:
    branch = f" ({ref.branch})" if ref.branch else ""
    return f"{ref.repository}@{ref.commit[:12]}:{ref.path}{branch}"


def load_lenses(index: Index, schema_uri: str) -> tuple[list[LensRow], list[str]]:
    """Lenses that read from or write to ``schema_uri``; and the records that were left out."""
    appview = appview_of(index)
    lenses, skipped = appview.lenses_for(schema_uri)
    return [_lens_row(appview, lens, schema_uri) for lens in lenses], skipped


def _lens_row(appview: AppViewClient, found: NetworkLens, schema_uri: str) -> LensRow:
    lens = found.lens
    outgoing = lens.source_schema == schema_uri
    other = lens.target_schema if outgoing else lens.source_schema
    handle = appview.handle_of(found.did)
    return LensRow(
        uri=found.uri,
        name=lens.name,
        direction="to" if outgoing else "from",
        other_schema=other,
        language=lens.language or lens.getter_code.language,
        getter=_code(lens.getter_code),
        putter=_code(lens.putter_code),
        description=lens.description,
        author=f"@{handle}" if handle else found.did,
        other_label=appview.schema_name(other),
    )


def load_versions(index: Index, entry: IndexEntry) -> Versions:
    """The versions under the label that names ``entry`` (labels from the author's PDS)."""
    return appview_of(index).versions(entry)


def resolve_from_network(index: Index, uri: str) -> IndexEntry:
    """An entry by at:// URI from the AppView (when its author's PDS cannot be asked)."""
    entry = appview_of(index).get_entry(uri)
    entry.repo = "_atmosphere"
    return entry
