"""Plain functions over ``atdata_core`` that the TUI's thread workers and the headless CLI call.

Nothing here imports Textual: each function takes an ``Index`` (or settings), does blocking I/O,
and returns plain data. Screens wrap them in ``@work(thread=True, ...)`` methods that post the
result as a message; the CLI calls them directly. ``atdata_core`` is imported lazily inside the
functions so that importing this module costs nothing before the first screen is drawn.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..jobs import human_bytes

if TYPE_CHECKING:
    from atdata_core.config import Config, RepoConfig
    from atdata_core.index import Index, IndexEntry, Page
    from atdata_core.stores.base import DataStore

#: Repository name of the AT Protocol network in ``Index`` (``atdata_core.refs.ATMOSPHERE_REPO``).
ATMOSPHERE = "_atmosphere"
LOCAL = "local"
#: Entries fetched per request by the entry list (one worker round trip per page).
PAGE_SIZE = 200


# --- opening the index --------------------------------------------------------------------------


@dataclass
class IndexOptions:
    """How to open the index: command-line flags first, then the config file, then defaults."""

    index_path: str | None = None
    redis: str | None = None
    postgres: str | None = None
    handle: str | None = None
    readonly: bool = False
    config_path: str | None = None
    #: The dataset AppView (``--appview``); the config's ``[atmosphere] appview`` otherwise.
    appview: str | None = None


def load_config(options: IndexOptions) -> Config:
    """The config named by ``--config`` (or the default location); a missing file is empty."""
    from atdata_core.config import load_config as _load

    return _load(options.config_path)


def build_store(rc: RepoConfig) -> DataStore | None:
    """The data store of a named repository: ``disk`` (default when a path is given) or ``s3``."""
    from atdata_core.config import ConfigError, data_dir
    from atdata_core.stores.disk import LocalDiskStore

    kind = rc.store or "disk"
    if kind == "disk":
        root = rc.store_path or str(data_dir() / "repos" / rc.name / "shards")
        return LocalDiskStore(os.path.expanduser(root))
    if kind == "s3":
        if not rc.bucket:
            raise ConfigError(f"[repos.{rc.name}] store = 's3' needs a bucket")
        try:
            from atdata_core.stores.s3 import S3DataStore
        except ImportError as exc:
            raise ConfigError(
                f"[repos.{rc.name}] uses S3, but the S3 store is not available: {exc}"
            ) from None
        kwargs: dict[str, Any] = {
            "bucket": rc.bucket,
            "endpoint": rc.endpoint,
            "prefix": rc.prefix,
            "region": rc.region,
            "profile": rc.profile,
        }
        if rc.access_key or rc.secret_key:
            kwargs["access_key"] = rc.access_key
            kwargs["secret_key"] = rc.secret_key
        return S3DataStore(**kwargs)
    raise ConfigError(f"[repos.{rc.name}] store must be 'disk' or 's3', not {kind!r}")


def build_repository(rc: RepoConfig, *, readonly: bool = False) -> Any:
    """``Repository(provider, data_store)`` for one ``[repos.X]`` table of the config."""
    from atdata_core.config import ConfigError
    from atdata_core.index import Repository, make_provider

    given = [x for x in (rc.path, rc.redis, rc.postgres) if x]
    if len(given) != 1:
        raise ConfigError(f"[repos.{rc.name}] needs exactly one of path, redis or postgres")
    path = os.path.expanduser(rc.path) if rc.path else None
    provider = make_provider(path=path, dsn=rc.postgres, redis=rc.redis, readonly=readonly)
    return Repository(provider, build_store(rc), rc.name)


def build_index(options: IndexOptions, config: Config | None = None) -> tuple[Index, list[str]]:
    """Open the main index and every named repository; returns the index and non-fatal problems.

    Flags win over the config's ``[index]`` table. A named repository that cannot be opened (its
    server is down, its table is wrong) is left out and described in ``problems`` so the rest of
    the app still works; a main index that cannot be opened raises.
    """
    from atdata_core.errors import AtdataError
    from atdata_core.index import Index

    cfg = config if config is not None else load_config(options)
    path, redis, dsn = options.index_path, options.redis, options.postgres
    if not (path or redis or dsn):
        path, redis, dsn = cfg.index_path, cfg.redis, cfg.postgres
    repos: dict[str, Any] = {}
    problems: list[str] = []
    for name, rc in cfg.repos.items():
        try:
            repos[name] = build_repository(rc, readonly=options.readonly)
        except (AtdataError, OSError, ValueError) as exc:
            problems.append(f"repository {name!r} was not opened: {exc}")
    index = Index(
        path=os.path.expanduser(path) if path else None,
        dsn=dsn or None,
        redis=redis or None,
        repos=repos,
        readonly=options.readonly,
    )
    atmo = cfg.atmosphere
    appview = options.appview or atmo.appview
    if (options.config_path and (atmo.pds or atmo.plc or atmo.timeout)) or appview:
        # The index would build its atmosphere backend from the *default* config on first use;
        # with --config, the [atmosphere] section of that file must win (and --appview over it).
        try:
            from atdata_core.atmosphere import default_backend
        except ImportError as exc:
            problems.append(f"the AT Protocol support is not available: {exc}")
        else:
            try:
                index.atmosphere = default_backend(cfg, appview=appview)
            except AtdataError as exc:
                problems.append(f"the AppView was not used: {exc}")
                index.atmosphere = default_backend(cfg, appview=None)
    return index, problems


# --- refs -----------------------------------------------------------------------------------------


def entry_ref(entry: IndexEntry) -> str:
    """What a user types to get this entry back: ``name``, ``repo/name`` or its ``at://`` URI."""
    if entry.repo == ATMOSPHERE:
        return entry.at_uri or entry.name
    if entry.repo == LOCAL:
        return entry.name
    return f"{entry.repo}/{entry.name}"


def short_cid(cid: str, length: int = 12) -> str:
    """``bafyrei`` is the same on every entry; show what tells them apart."""
    body = cid[7:] if cid.startswith("bafyrei") else cid
    return body[:length]


def human_count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


# --- entry columns (shared by the entry list widget and ``atdata-tui ls``) -------------------------


@dataclass(frozen=True)
class Column:
    """One column: header, width (0 = takes the remaining space), alignment and drop priority.

    When the terminal is narrow, columns with the highest ``priority`` number go first.
    """

    key: str
    title: str
    width: int
    align: str = "left"
    priority: int = 0
    min_width: int = 0


COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", 0, priority=0, min_width=14),
    Column("schema", "Schema", 22, priority=3),
    Column("samples", "Samples", 9, "right", priority=1),
    Column("shards", "Shards", 6, "right", priority=5),
    Column("size", "Size", 9, "right", priority=2),
    Column("created", "Created", 16, priority=6),
    Column("cid", "CID", 12, priority=7),
    Column("storage", "Store", 5, priority=4),
    Column("promoted", "Pub", 3, "center", priority=3),
)
MARK_WIDTH = 2  # "● " in front of every row
GAP = 1


def layout_columns(width: int) -> list[tuple[Column, int]]:
    """Columns that fit in ``width`` cells, with their widths (the name column takes the rest)."""
    columns = list(COLUMNS)
    available = max(width - MARK_WIDTH, 1)

    def fixed(cols: list[Column]) -> int:
        return sum(c.width + GAP for c in cols if c.width)

    name = COLUMNS[0]
    while len(columns) > 1 and available - fixed(columns) < name.min_width:
        columns.remove(max(columns, key=lambda c: c.priority))
    rest = max(available - fixed(columns), 1)
    return [(c, c.width or rest) for c in columns]


def schema_label(schema_ref: str) -> str:
    """``atdata://local/schema/Name@1.0.0`` → ``Name@1.0.0`` (at:// refs keep their last part)."""
    return schema_ref.rstrip("/").rsplit("/", 1)[-1]


def cell_values(entry: IndexEntry) -> dict[str, str]:
    """The text of every column for one entry."""
    samples = entry.samples
    return {
        "name": entry.name,
        "schema": schema_label(entry.schema_ref),
        "samples": "-" if samples is None else f"{samples:,}",
        "shards": f"{entry.shards:,}",
        "size": human_bytes(entry.size_bytes),
        "created": (entry.created_at or "")[:16],
        "cid": short_cid(entry.cid),
        "storage": entry.storage,
        "promoted": "✓" if entry.promoted else "",
    }


# --- repositories -------------------------------------------------------------------------------


@dataclass
class RepoInfo:
    """One row of the repositories screen."""

    name: str
    label: str
    backend: str
    address: str
    entries: int | None = None
    schemas: int | None = None
    store: str | None = None
    error: str | None = None

    @property
    def is_atmosphere(self) -> bool:
        return self.name == ATMOSPHERE

    @property
    def is_network(self) -> bool:
        """The AppView's listing of the whole network (``workers.network``)."""
        return self.name == NETWORK


#: Repository id of the AppView's listing (``workers.network.NETWORK``).
NETWORK = "_network"


def list_repositories(
    index: Index, atmosphere_handle: str | None = None, appview: str | None = None
) -> list[RepoInfo]:
    """Every repository without counts (instant: no I/O), for the first draw; the "network" row
    when an AppView (``appview``, its URL) is configured."""
    rows = [
        RepoInfo(
            name,
            name,
            getattr(repo.provider, "backend", "?"),
            getattr(repo.provider, "address", ""),
            store=getattr(repo.data_store, "kind", None),
        )
        for name, repo in index.repos.items()
    ]
    if atmosphere_handle:
        rows.append(RepoInfo(ATMOSPHERE, f"@{atmosphere_handle.lstrip('@')}", "atproto", ""))
    if appview:
        rows.append(RepoInfo(NETWORK, "network", "appview", appview))
    return rows


def count_repositories(
    index: Index, atmosphere_handle: str | None = None, appview: str | None = None
) -> list[RepoInfo]:
    """Rows with entry and schema counts; a repository that fails gets ``error`` set, not raised.

    One unreachable team server must not hide the local index, so failures are per row.
    """
    from atdata_core.errors import AtdataError

    rows = list_repositories(index, atmosphere_handle, appview)
    for row in rows:
        try:
            if row.is_network:
                from .network import describe_network

                row.entries, row.schemas, row.address = describe_network(index)
            elif row.is_atmosphere:
                page = atmosphere_page(index, atmosphere_handle, offset=0, limit=1)
                row.entries = page.total
                backend = index.atmosphere
                row.address = str(getattr(backend, "pds", None) or getattr(backend, "address", ""))
            else:
                provider = index.repos[row.name].provider
                row.entries = provider.count_entries()
                row.schemas = provider.count_schemas()
        except (AtdataError, OSError) as exc:
            row.error = str(exc) or type(exc).__name__
    return rows


# --- entries --------------------------------------------------------------------------------------


def atmosphere_page(
    index: Index,
    handle: str | None,
    *,
    offset: int,
    limit: int,
    name_filter: str | None = None,
) -> Page:
    """A page of a handle's published entries through the atmosphere backend.

    The backend lists the logged-in account unless it is given the account (``actor``): the
    ``--handle`` browsing passes it.
    """
    from atdata_core.errors import RefError

    backend = index.atmosphere
    if backend is None:
        raise RefError("the AT Protocol network is not available: log in first or pass --handle")
    kwargs: dict[str, Any] = {"offset": offset, "limit": limit, "name_filter": name_filter}
    if handle:
        try:
            params: Mapping[str, Any] = inspect.signature(backend.page_entries).parameters
        except (TypeError, ValueError):
            params = {}
        for name in ("actor", "handle"):
            if name in params:
                kwargs[name] = handle.lstrip("@")
                break
    page = backend.page_entries(**kwargs)
    for entry in page.items:
        entry.repo = ATMOSPHERE
    return page


def fetch_page(
    index: Index,
    repo: str,
    *,
    offset: int,
    limit: int = PAGE_SIZE,
    name_filter: str | None = None,
    handle: str | None = None,
) -> Page:
    """One page of a repository's entries, ordered by name, with the (filtered) total."""
    if repo == ATMOSPHERE:
        return atmosphere_page(index, handle, offset=offset, limit=limit, name_filter=name_filter)
    if repo == NETWORK:
        from .network import NetworkPager, appview_of

        return NetworkPager(appview_of(index)).fetch(offset, limit, name_filter)
    return index.page_entries(repo, offset=offset, limit=limit, name_filter=name_filter or None)


def resolve(index: Index, ref: str) -> IndexEntry:
    return index.resolve_entry(ref)


# --- schemas --------------------------------------------------------------------------------------


@dataclass
class SchemaInfo:
    """A schema name with its versions (newest first) and the latest version's description."""

    name: str
    versions: list[str]
    description: str | None = None
    fields: int | None = None


@dataclass
class FieldRow:
    name: str
    type: str
    optional: bool


@dataclass
class SchemaDetail:
    name: str
    version: str
    ref: str
    description: str | None
    fields: list[FieldRow] = field(default_factory=list)
    error: str | None = None


@dataclass
class SchemaDiff:
    old_ref: str
    new_ref: str
    changes: list[tuple[str, str]] = field(default_factory=list)  # (kind, description)


class _SchemaSource:
    """Schemas of one repository: the Index's own for ``local``, the provider's for named repos."""

    def __init__(self, index: Index, repo: str) -> None:
        from atdata_core.errors import RefError

        if repo == ATMOSPHERE:
            raise RefError("schemas of the AT Protocol network are shown with each entry")
        if repo not in index.repos:
            raise RefError(f"no repository named {repo!r}")
        self.index = index
        self.repo = repo
        self.provider = index.repos[repo].provider

    def names(self, limit: int = 10_000) -> list[str]:
        out: list[str] = []
        offset = 0
        while len(out) < limit:
            batch = self.provider.list_schema_names(offset=offset, limit=min(1000, limit))
            out.extend(batch)
            if len(batch) < min(1000, limit):
                break
            offset += len(batch)
        return out[:limit]

    def versions(self, name: str) -> list[str]:
        from atdata_core.schema import sort_versions

        return sort_versions(self.provider.schema_versions(name))

    def record(self, name: str, version: str) -> dict[str, Any]:
        from atdata_core.errors import NotFoundError
        from atdata_core.schema import stored_record

        raw = self.provider.get_schema(name, version)
        if raw is None:
            raise NotFoundError(f"schema {name}@{version} not found in {self.repo!r}")
        return stored_record(raw, name, version)


def load_schemas(index: Index, repo: str = LOCAL, limit: int = 10_000) -> list[SchemaInfo]:
    """Every schema name (up to ``limit``) with its versions, newest first."""
    source = _SchemaSource(index, repo)
    out = []
    for name in source.names(limit):
        versions = source.versions(name)
        info = SchemaInfo(name, versions)
        if versions:
            try:
                record = source.record(name, versions[0])
                info.description = _one_line(record.get("description"))
                fields = record.get("fields")
                info.fields = len(fields) if isinstance(fields, list) else None
            except Exception:  # a malformed record still lists; its detail shows the error
                pass
        out.append(info)
    return out


def _one_line(text: Any) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return None
    return " ".join(text.split())


def load_schema_detail(index: Index, repo: str, name: str, version: str) -> SchemaDetail:
    """Fields, types and description of ``name@version`` (a hostile record reports its error)."""
    from atdata_core.errors import AtdataError
    from atdata_core.schema import fields_from_record, schema_ref

    source = _SchemaSource(index, repo)
    record = source.record(name, version)
    detail = SchemaDetail(
        name, version, schema_ref(name, version), _one_line(record.get("description"))
    )
    try:
        specs = fields_from_record(record)
    except AtdataError as exc:
        detail.error = str(exc)
        return detail
    detail.fields = [FieldRow(s.name, s.type.describe(), s.optional) for s in specs]
    return detail


def diff_schema_versions(
    index: Index, repo: str, old: tuple[str, str], new: tuple[str, str]
) -> SchemaDiff:
    """Field changes from schema version ``old`` to ``new`` (each ``(name, version)``)."""
    from atdata_core.schema import diff_records, schema_ref

    source = _SchemaSource(index, repo)
    changes = diff_records(source.record(*old), source.record(*new))
    return SchemaDiff(schema_ref(*old), schema_ref(*new), [(c.kind, c.describe()) for c in changes])
