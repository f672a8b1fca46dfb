"""The ``Index`` facade: datasets, schemas, lenses and writes over any provider and store.

All policy lives here (refs, version bumps, dedup, all-or-nothing writes); providers only store.
Named repositories each pair a provider with a data store; ``"local"`` always exists. References
to the atmosphere (``@handle/name``, ``at://``) go to the atmosphere backend when there is one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from .. import config as config_mod
from .. import schema as schema_mod
from ..errors import (
    AlreadyExistsError,
    AtdataError,
    CancelledError,
    NotFoundError,
    ReadOnlyError,
    RefError,
    SchemaError,
    StoreError,
    WriteError,
)
from ..refs import ATMOSPHERE_REPO, LOCAL_REPO, DatasetRef, parse_ref, validate_dataset_name
from ..samples import DictSample, FieldType, PackableSample, packable
from ..shards import ShardInfo
from ..stores.base import DataStore
from ..stores.disk import LocalDiskStore
from .entries import IndexEntry, Page, utc_now
from .providers.base import IndexProvider
from .providers.sqlite import SqliteProvider

T = TypeVar("T")
_DEFAULT: Any = object()
PAGE_SIZE = 500


@dataclass
class Repository:
    """A named place for datasets: an index provider and, optionally, a store for new shards."""

    provider: IndexProvider
    data_store: DataStore | None = None
    name: str = LOCAL_REPO


@dataclass
class WriteProgress:
    """Reported while a write runs (the TUI's jobs panel shows it)."""

    samples: int
    bytes: int
    shards: int
    elapsed: float
    done: bool = False

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class ShardCheck:
    url: str
    status: str  # "ok", "mismatch", "missing", "unchecked"
    expected: str | None
    actual: str | None
    bytes: int = 0
    error: str | None = None


@dataclass
class VerifyReport:
    entry: IndexEntry
    shards: list[ShardCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status in ("ok", "unchecked") for s in self.shards)


ProgressFn = Callable[[WriteProgress], None]
CancelFn = Callable[[], bool]


def _infer_field(value: Any) -> tuple[FieldType, bool]:
    if value is None:
        return FieldType("any"), True
    if isinstance(value, np.ndarray):
        return FieldType("ndarray", dtype=value.dtype.name), False
    if isinstance(value, bool):
        return FieldType("primitive", primitive="bool"), False
    if isinstance(value, (int, np.integer)):
        return FieldType("primitive", primitive="int"), False
    if isinstance(value, (float, np.floating)):
        return FieldType("primitive", primitive="float"), False
    if isinstance(value, str):
        return FieldType("primitive", primitive="str"), False
    if isinstance(value, (bytes, bytearray)):
        return FieldType("primitive", primitive="bytes"), False
    if isinstance(value, (list, tuple)):
        items = _infer_field(value[0])[0] if value else None
        return FieldType("array", items=items), False
    if isinstance(value, dict):
        return FieldType("map"), False
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a sample")


def infer_sample_type(sample: DictSample, name: str) -> type[PackableSample]:
    """A packable type matching a schema-free sample's values (for writing ``DictSample``s)."""
    annotations: dict[str, Any] = {}
    for key, value in sample.items():
        schema_mod.validate_name(key)
        ftype, optional = _infer_field(value)
        annotations[key] = ftype.python_type() | None if optional else ftype.python_type()
    cls = types.new_class(name, (), {}, lambda ns: ns.update({"__annotations__": annotations}))
    return packable(cls)


def _type_name_for(dataset_name: str) -> str:
    parts = [p for p in "".join(c if c.isalnum() else " " for c in dataset_name).split() if p]
    base = "".join(p[:1].upper() + p[1:] for p in parts) or "Dataset"
    if not base[0].isalpha():
        base = "D" + base
    return base + "Sample"


class Index:
    """Datasets, schemas and lenses, in the embedded SQLite index or any other provider."""

    def __init__(
        self,
        provider: IndexProvider | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        dsn: str | None = None,
        redis: Any = None,
        data_store: DataStore | Any | None = _DEFAULT,
        repos: dict[str, Repository] | None = None,
        atmosphere: Any = _DEFAULT,
        auto_stubs: bool = False,
        stub_dir: str | os.PathLike[str] | None = None,
        readonly: bool = False,
    ) -> None:
        chosen = [x for x in (provider, path, dsn, redis) if x is not None]
        if len(chosen) > 1:
            raise ValueError("give at most one of provider=, path=, dsn= and redis=")
        if provider is None:
            provider = make_provider(path=path, dsn=dsn, redis=redis, readonly=readonly)
        if data_store is _DEFAULT:
            if isinstance(provider, SqliteProvider) and path is not None:
                root = os.path.join(os.path.dirname(provider.path), "shards")
            else:
                root = str(config_mod.default_store_root())
            data_store = LocalDiskStore(root)
        self.readonly = readonly
        self.repos: dict[str, Repository] = {
            LOCAL_REPO: Repository(provider, data_store, LOCAL_REPO)
        }
        for name, repo in (repos or {}).items():
            if name in (LOCAL_REPO, ATMOSPHERE_REPO):
                raise ValueError(f"repository name {name!r} is reserved")
            repo.name = name
            self.repos[name] = repo
        self._atmosphere = atmosphere
        self.auto_stubs = auto_stubs
        self._stubs = schema_mod.StubWriter(stub_dir or config_mod.cache_dir() / "stubs")
        self.types = types.SimpleNamespace()

    # --- plumbing --------------------------------------------------------------------------------
    @property
    def provider(self) -> IndexProvider:
        return self.repos[LOCAL_REPO].provider

    @property
    def data_store(self) -> DataStore | None:
        return self.repos[LOCAL_REPO].data_store

    @property
    def atmosphere(self) -> Any:
        """The atmosphere backend (ATProto), created on first use; ``None`` if unavailable."""
        if self._atmosphere is _DEFAULT:
            try:
                from ..atmosphere import default_backend
            except ImportError:
                self._atmosphere = None
            else:
                self._atmosphere = default_backend()
        return self._atmosphere

    @atmosphere.setter
    def atmosphere(self, backend: Any) -> None:
        self._atmosphere = backend

    def _repo(self, name: str) -> Repository:
        try:
            return self.repos[name]
        except KeyError:
            known = ", ".join(sorted(self.repos))
            raise RefError(
                f"no repository named {name!r} (known: {known}); add it to the config"
            ) from None

    def _need_atmosphere(self, ref: DatasetRef | str) -> Any:
        backend = self.atmosphere
        if backend is None:
            raise RefError(
                f"{ref} refers to the AT Protocol network, but no atmosphere backend is configured: "
                "log in first (atdata-tui login) or pass atmosphere= to Index"
            )
        return backend

    def _check_writable(self) -> None:
        if self.readonly:
            raise ReadOnlyError("this index was opened read-only")

    def close(self) -> None:
        for repo in self.repos.values():
            repo.provider.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # --- entries ---------------------------------------------------------------------------------
    def resolve_entry(self, ref: str | DatasetRef) -> IndexEntry:
        """Find the entry a reference names, wherever it lives."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.kind in ("handle", "at_uri"):
            return self._need_atmosphere(parsed).resolve_entry(parsed)
        if parsed.kind == "cid":
            for repo in self.repos.values():
                entry = repo.provider.get_entry(parsed.cid or "")
                if entry is not None:
                    entry.repo = repo.name
                    return entry
            raise NotFoundError(f"no dataset with CID {parsed.cid} in any repository")
        repo = self._repo(parsed.repo)
        entry = None
        if parsed.version:
            cid = repo.provider.get_label(parsed.name or "", parsed.version)
            entry = repo.provider.get_entry(cid) if cid else None
        else:
            entry = repo.provider.get_entry_by_name(parsed.name or "")
        if entry is None:
            where = "" if parsed.repo == LOCAL_REPO else f" in repository {parsed.repo!r}"
            raise NotFoundError(f"no dataset named {str(parsed)!r}{where}")
        entry.repo = repo.name
        return entry

    def get_entry(self, cid: str) -> IndexEntry:
        entry = self.provider.get_entry(cid)
        if entry is None:
            raise NotFoundError(f"no dataset with CID {cid}")
        return entry

    def get_entry_by_name(self, name: str) -> IndexEntry:
        return self.resolve_entry(name)

    def get_dataset(self, ref: str, sample_type: Any = None) -> Any:
        """A ``Dataset`` streaming the entry's shards, typed by its schema unless told otherwise."""
        from ..dataset import Dataset

        entry = self.resolve_entry(ref)
        if sample_type is None:
            sample_type = self._sample_type_for(entry)
        return Dataset(list(entry.data_urls), sample_type)

    def _sample_type_for(self, entry: IndexEntry) -> Any:
        try:
            return self.decode_schema(entry.schema_ref)
        except (AtdataError, TypeError):
            return DictSample

    def page_entries(
        self,
        repo: str = LOCAL_REPO,
        *,
        offset: int = 0,
        limit: int = 100,
        name_filter: str | None = None,
    ) -> Page:
        """One page of a repository's entries, ordered by name; counts are server-side too."""
        if repo == ATMOSPHERE_REPO:
            return self._need_atmosphere(repo).page_entries(
                offset=offset, limit=limit, name_filter=name_filter
            )
        r = self._repo(repo)
        items = r.provider.list_entries(offset=offset, limit=limit, name_filter=name_filter)
        for e in items:
            e.repo = repo
        total = r.provider.count_entries(name_filter)
        return Page(items, offset, total)

    def count_entries(self, repo: str = LOCAL_REPO, name_filter: str | None = None) -> int:
        return self._repo(repo).provider.count_entries(name_filter)

    def iter_entries(
        self, repo: str = LOCAL_REPO, *, name_filter: str | None = None
    ) -> Iterator[IndexEntry]:
        """Every entry of a repository, fetched page by page (never all at once)."""
        r = self._repo(repo)
        for offset in itertools.count(0, PAGE_SIZE):
            page = r.provider.list_entries(offset=offset, limit=PAGE_SIZE, name_filter=name_filter)
            for e in page:
                e.repo = repo
                yield e
            if len(page) < PAGE_SIZE:
                return

    @property
    def datasets(self) -> Iterator[IndexEntry]:
        """Lazily, every entry of every local and named repository."""
        for name in self.repos:
            yield from self.iter_entries(name)

    def list_entries(self, repo: str = LOCAL_REPO) -> list[IndexEntry]:
        return list(self.iter_entries(repo))

    def list_datasets(self, repo: str | None = None) -> list[IndexEntry]:
        """Entries of one repository (``"local"``, a named repo, ``"_atmosphere"``) or of all."""
        if repo is None:
            out = list(self.datasets)
            if self.atmosphere is not None and getattr(self.atmosphere, "can_list", False):
                out.extend(self.atmosphere.list_entries())
            return out
        if repo == ATMOSPHERE_REPO:
            return list(self._need_atmosphere(repo).list_entries())
        return self.list_entries(repo)

    def add_entry(
        self,
        source: Any,
        *,
        name: str,
        schema_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
        repo: str = LOCAL_REPO,
        overwrite: bool = False,
    ) -> IndexEntry:
        """Register shards that already exist (URLs or a ``Dataset``) without copying them."""
        self._check_writable()
        validate_dataset_name(name)
        urls = _urls_of(source)
        if schema_ref is None:
            sample_type = getattr(source, "sample_type", None)
            if sample_type is None or sample_type is DictSample:
                raise SchemaError(
                    f"cannot tell the schema of {name!r}: pass schema_ref= or a typed Dataset[T]"
                )
            schema_ref = self.publish_schema(sample_type)
        entry = IndexEntry.create(name, schema_ref, urls, dict(metadata or {}), repo=repo)
        self._repo(repo).provider.put_entry(entry, label=name, replace=overwrite)
        return entry

    def insert_dataset(
        self,
        ds: Any,
        *,
        name: str,
        schema_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
        prefix: str | None = None,
        cache_local: bool = False,
        repo: str | None = None,
        overwrite: bool = False,
    ) -> IndexEntry:
        """Index a dataset; if the repository has a store, copy its shards there first (byte for byte).

        ``cache_local`` copies remote shards into the store even when the target repository would
        otherwise index their URLs as they are.
        """
        self._check_writable()
        parsed = parse_ref(name)
        if parsed.is_remote:
            raise RefError(
                "insert_dataset writes to a local or named repository; use promote for @handle"
            )
        repo_name = repo or parsed.repo
        store = self._repo(repo_name).data_store
        urls = _urls_of(ds)
        remote = any("://" in u and not u.startswith("file://") for u in urls)
        if store is None or (remote and not cache_local and store.kind == "disk"):
            return self.add_entry(
                ds,
                name=parsed.name or name,
                schema_ref=schema_ref,
                metadata=metadata,
                repo=repo_name,
                overwrite=overwrite,
            )
        if schema_ref is None:
            sample_type = getattr(ds, "sample_type", None)
            if sample_type is None or sample_type is DictSample:
                raise SchemaError(
                    f"cannot tell the schema of {name!r}: pass schema_ref= or a typed Dataset[T]"
                )
            schema_ref = self.publish_schema(sample_type)
        writer = store.shard_writer(prefix or parsed.name or name)
        from ..dataset import Dataset

        source_ds = ds if isinstance(ds, Dataset) else Dataset(urls)
        try:
            copied = _copy_shards(source_ds, writer)
            infos = writer.commit()
        except BaseException as exc:
            writer.abort()
            if isinstance(exc, AtdataError):
                raise
            raise WriteError(f"copying {name!r} into {store!r} failed: {exc}") from exc
        return self._register(
            repo_name,
            parsed.name or name,
            schema_ref,
            infos,
            store,
            {**(metadata or {}), "samples": copied},
            overwrite,
        )

    def delete_entry(self, ref: str, *, delete_data: bool = False) -> IndexEntry:
        self._check_writable()
        entry = self.resolve_entry(ref)
        repo = self._repo(entry.repo)
        repo.provider.delete_entry(entry.cid)
        if delete_data and repo.data_store is not None:
            repo.data_store.delete_urls(entry.data_urls)
        return entry

    def update_metadata(self, entry: IndexEntry, patch: dict[str, Any]) -> IndexEntry:
        """Merge ``patch`` into an entry's metadata (promotion state, descriptions)."""
        merged = {**(entry.metadata or {}), **patch}
        self._repo(entry.repo).provider.update_metadata(entry.cid, merged)
        entry.metadata = merged
        return entry

    # --- promotion (the atmosphere module does the work) ------------------------------------------
    def plan_promotion(
        self,
        entry_name: str | IndexEntry,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
    ) -> Any:
        """What promoting a local entry to the logged-in account would do (writes nothing)."""
        entry = self.resolve_entry(entry_name) if isinstance(entry_name, str) else entry_name
        return self._need_atmosphere(entry.name).plan_promotion(
            self, entry, name=name, description=description, tags=tags, license=license
        )

    def promote_entry(
        self,
        entry_name: str | IndexEntry,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        progress: Callable[[Any], None] | None = None,
        cancel: CancelFn | None = None,
    ) -> str:
        """Publish a local entry (schema, blobs, entry and label records); its ``at://`` URI.

        Resumable: after a failure, calling it again finishes the job without duplicates.
        """
        entry = self.resolve_entry(entry_name) if isinstance(entry_name, str) else entry_name
        return str(
            self._need_atmosphere(entry.name).promote_entry(
                self,
                entry,
                name=name,
                description=description,
                tags=tags,
                license=license,
                progress=progress,
                cancel=cancel,
            )
        )

    def promote_dataset(
        self,
        dataset: Any,
        *,
        name: str,
        sample_type: Any = None,
        schema_version: str = "1.0.0",
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        maxcount: int | None = 10000,
        maxsize: int | None = None,
        progress: Callable[[Any], None] | None = None,
        cancel: CancelFn | None = None,
    ) -> str:
        """Publish a ``Dataset`` straight to PDS blobs (no local entry); its ``at://`` URI."""
        parsed = parse_ref(name)
        return str(
            self._need_atmosphere(name).promote_dataset(
                dataset,
                name=parsed.name or name,
                sample_type=sample_type,
                schema_version=schema_version,
                description=description,
                tags=tags,
                license=license,
                maxcount=maxcount,
                maxsize=maxsize,
                progress=progress,
                cancel=cancel,
            )
        )

    # --- writing ---------------------------------------------------------------------------------
    def write(
        self,
        samples: Iterable[Any],
        *,
        name: str,
        schema_ref: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        maxcount: int | None = 10000,
        maxsize: int | None = None,
        metadata: dict[str, Any] | None = None,
        manifest: bool = False,
        overwrite: bool = False,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> IndexEntry:
        """Samples → shards in the repository's store → one index entry, all or nothing.

        ``name`` is ``name`` (local), ``repo/name`` or ``@handle/name`` (written locally, then
        promoted). On any failure (or ``cancel()`` returning true) the shards written so far are
        removed and no entry exists.
        """
        self._check_writable()
        parsed = parse_ref(name)
        if parsed.kind == "handle":
            local_name = parsed.name or ""
            entry = self.write(
                samples,
                name=local_name,
                schema_ref=schema_ref,
                description=description,
                tags=tags,
                license=license,
                maxcount=maxcount,
                maxsize=maxsize,
                metadata=metadata,
                manifest=manifest,
                overwrite=overwrite,
                progress=progress,
                cancel=cancel,
            )
            backend = self._need_atmosphere(parsed)
            backend.promote_entry(
                self, entry, name=local_name, description=description, tags=tags, license=license
            )
            return self.resolve_entry(local_name)
        if parsed.kind not in ("local", "repo"):
            raise RefError(f"cannot write to {name!r}: give name, repo/name or @handle/name")
        repo = self._repo(parsed.repo)
        if repo.data_store is None:
            raise StoreError(f"repository {parsed.repo!r} has no data store to write shards to")
        dataset_name = parsed.name or ""
        if not overwrite and repo.provider.get_label(dataset_name) is not None:
            raise AlreadyExistsError(
                f"a dataset named {name!r} already exists; choose another name or pass overwrite=True"
            )
        iterator = iter(samples)
        try:
            first = next(iterator)
        except StopIteration:
            raise ValueError(f"no samples to write to {name!r}") from None
        if schema_ref is None:
            sample_type = type(first)
            if isinstance(first, DictSample):
                sample_type = infer_sample_type(first, _type_name_for(dataset_name))
                iterator = (
                    sample_type.from_data(s.to_dict()) if isinstance(s, DictSample) else s
                    for s in iterator
                )
                first = sample_type.from_data(first.to_dict())
            schema_ref = self.publish_schema(sample_type)
        writer = repo.data_store.shard_writer(
            dataset_name, maxcount=maxcount, maxsize=maxsize, manifest=manifest
        )
        started = time.monotonic()
        last_report = 0.0
        try:
            for i, sample in enumerate(itertools.chain((first,), iterator), 1):
                writer.write(sample)
                if i & 255 == 0:
                    if cancel is not None and cancel():
                        raise CancelledError(f"writing {name!r} was cancelled; nothing was kept")
                    now = time.monotonic()
                    if progress is not None and now - last_report > 0.1:
                        last_report = now
                        progress(
                            WriteProgress(
                                i, writer.total_bytes, len(writer.shards) + 1, now - started
                            )
                        )
            if cancel is not None and cancel():
                raise CancelledError(f"writing {name!r} was cancelled; nothing was kept")
            infos = writer.commit()
        except BaseException as exc:
            writer.abort()
            if isinstance(exc, (AtdataError, KeyboardInterrupt, ValueError, TypeError)):
                raise
            raise WriteError(
                f"writing {name!r} failed ({type(exc).__name__}: {exc}); nothing was kept"
            ) from exc
        meta = dict(metadata or {})
        if description is not None:
            meta["description"] = description
        if tags:
            meta["tags"] = list(tags)
        if license is not None:
            meta["license"] = license
        entry = self._register(
            parsed.repo, dataset_name, schema_ref, infos, repo.data_store, meta, overwrite
        )
        if progress is not None:
            progress(
                WriteProgress(
                    entry.samples or 0,
                    entry.size_bytes or 0,
                    len(infos),
                    time.monotonic() - started,
                    done=True,
                )
            )
        return entry

    def _register(
        self,
        repo_name: str,
        name: str,
        schema_ref: str,
        infos: list[ShardInfo],
        store: DataStore,
        metadata: dict[str, Any],
        overwrite: bool,
    ) -> IndexEntry:
        """Commit the entry last; if that fails the freshly written shards are deleted."""
        urls = [store.read_url(i.url) for i in infos]
        meta = {
            **metadata,
            "samples": sum(i.samples for i in infos),
            "shards": len(infos),
            "bytes": sum(i.bytes for i in infos),
            "checksums": {u: i.sha256 for u, i in zip(urls, infos, strict=True)},
            "shard_bytes": {u: i.bytes for u, i in zip(urls, infos, strict=True)},
            "shard_samples": {u: i.samples for u, i in zip(urls, infos, strict=True)},
        }
        manifests = {u: i.manifest_url for u, i in zip(urls, infos, strict=True) if i.manifest_url}
        if manifests:
            meta["manifests"] = manifests
        entry = IndexEntry.create(name, schema_ref, urls, meta, repo=repo_name)
        try:
            self._repo(repo_name).provider.put_entry(entry, label=name, replace=overwrite)
        except BaseException:
            store.delete_urls(urls)
            raise
        return entry

    # --- schemas ---------------------------------------------------------------------------------
    def publish_schema(
        self,
        sample_type: type,
        *,
        version: str | None = None,
        description: str | None = None,
        name: str | None = None,
    ) -> str:
        """Store a schema; returns its ref. Identical content reuses the latest version.

        Without ``version`` the patch of the latest version is bumped (or ``1.0.0`` to start).
        Concurrent publishers are safe: a version is claimed with an atomic insert-if-absent.
        """
        self._check_writable()
        provider = self.provider
        for _attempt in range(50):
            record_name = name or sample_type.__name__
            versions = schema_mod.sort_versions(provider.schema_versions(record_name))
            probe = schema_mod.schema_record(
                sample_type, version=version or "0.0.0", name=name, description=description
            )
            digest = schema_mod.content_hash(probe)
            if version is None and versions:
                latest = provider.get_schema(record_name, versions[0])
                if latest is not None and schema_mod.content_hash(json.loads(latest)) == digest:
                    return schema_mod.schema_ref(record_name, versions[0])
            new_version = version or (schema_mod.bump_patch(versions[0]) if versions else "1.0.0")
            record = schema_mod.schema_record(
                sample_type, version=new_version, name=name, description=description
            )
            if provider.insert_schema(record_name, new_version, json.dumps(record)):
                return record["$ref"]
            if version is not None:
                existing = provider.get_schema(record_name, version)
                if existing is not None and schema_mod.content_hash(json.loads(existing)) == digest:
                    return schema_mod.schema_ref(record_name, version)
                raise AlreadyExistsError(
                    f"schema {record_name}@{version} already exists with different fields; "
                    "publish without a version to bump it"
                )
        raise AtdataError(
            f"could not claim a new version of schema {sample_type.__name__}: too much contention"
        )

    def _schema_json(self, ref: str) -> tuple[dict[str, Any], str, str]:
        if ref.startswith("at://"):
            record = self._need_atmosphere(ref).get_schema_record(ref)
            return record, record["name"], record["version"]
        name, version = schema_mod.parse_schema_ref(ref)
        versions = schema_mod.sort_versions(self.provider.schema_versions(name))
        if not versions:
            raise NotFoundError(f"no schema named {name!r} in the index")
        version = version or versions[0]
        raw = self.provider.get_schema(name, version)
        if raw is None:
            raise NotFoundError(
                f"schema {name}@{version} not found (versions: {', '.join(versions)})"
            )
        return schema_mod.stored_record(raw, name, version), name, version

    def get_schema(self, ref: str) -> dict[str, Any]:
        """The stored schema record (a dict in FORMATS.md's local form)."""
        return self._schema_json(ref)[0]

    def get_schema_record(self, ref: str) -> dict[str, Any]:
        record = self.get_schema(ref)
        schema_mod.fields_from_record(record)  # validates
        return record

    def schema_versions(self, name: str) -> list[str]:
        """Versions of one schema, newest first."""
        return schema_mod.sort_versions(self.provider.schema_versions(name))

    def list_schema_names(self, *, offset: int = 0, limit: int = 1000) -> list[str]:
        return self.provider.list_schema_names(offset=offset, limit=limit)

    @property
    def schemas(self) -> Iterator[dict[str, Any]]:
        """Lazily, every version of every schema (newest version first within a name)."""
        for offset in itertools.count(0, PAGE_SIZE):
            names = self.provider.list_schema_names(offset=offset, limit=PAGE_SIZE)
            for schema_name in names:
                for version in self.schema_versions(schema_name):
                    raw = self.provider.get_schema(schema_name, version)
                    if raw is not None:
                        try:
                            yield json.loads(raw)
                        except ValueError:
                            continue
            if len(names) < PAGE_SIZE:
                return

    def list_schemas(self) -> list[dict[str, Any]]:
        return list(self.schemas)

    def diff_schemas(self, old_ref: str, new_ref: str) -> list[Any]:
        """Field-level changes from one schema version to another."""
        return schema_mod.diff_records(self.get_schema(old_ref), self.get_schema(new_ref))

    def decode_schema(self, ref: str) -> type[PackableSample]:
        """A working sample class built from the stored record (never executing its text)."""
        record = self.get_schema(ref)
        if self.auto_stubs:
            return self._stubs.load(record)
        return schema_mod.sample_type_from_record(record)

    def decode_schema_as(self, ref: str, type_hint: type[T]) -> type[T]:
        """Like ``decode_schema`` but typed for checkers; fields must match ``type_hint``'s."""
        cls = self.decode_schema(ref)
        if isinstance(type_hint, type) and issubclass(type_hint, PackableSample):
            want = {f.name for f in type_hint.fields()}
            have = {f.name for f in cls.fields()}
            if want != have:
                raise SchemaError(
                    f"schema {ref} has fields {sorted(have)}, {type_hint.__name__} has {sorted(want)}"
                )
        return cls  # type: ignore[return-value]

    def load_schema(self, ref: str) -> type[PackableSample]:
        """Decode a schema and make it available as ``index.types.<Name>``."""
        cls = self.decode_schema(ref)
        setattr(self.types, cls.__name__, cls)
        return cls

    def get_import_path(self, ref: str) -> str:
        """The dotted import path of the generated stub module for ``ref`` (writes it if needed)."""
        record = self.get_schema(ref)
        self._stubs.write(record)
        return self._stubs.import_path(record)

    def clear_stubs(self) -> None:
        self._stubs.clear()

    # --- lenses ----------------------------------------------------------------------------------
    def publish_lens(self, record: dict[str, Any]) -> str:
        """Store a lens record (source/target schema refs and a code reference; never code)."""
        self._check_writable()
        name = record.get("name")
        if not isinstance(name, str):
            raise SchemaError("a lens record needs a string 'name'")
        schema_mod.validate_name(name)
        version = str(record.get("version") or "1.0.0")
        self.provider.put_lens(name, version, json.dumps(record))
        return f"atdata://local/lens/{name}@{version}"

    def get_lens(self, name: str, version: str = "1.0.0") -> dict[str, Any]:
        raw = self.provider.get_lens(name, version)
        if raw is None:
            raise NotFoundError(f"no lens named {name}@{version}")
        return json.loads(raw)

    def list_lenses(self) -> list[dict[str, Any]]:
        return [json.loads(j) for _n, _v, j in self.provider.list_lenses()]

    # --- integrity -------------------------------------------------------------------------------
    def verify(self, entry: IndexEntry | str, *, chunk: int = 1 << 20) -> VerifyReport:
        """Recompute every shard's SHA-256 and compare with the recorded checksums."""
        from ..sources import source_for_urls

        if isinstance(entry, str):
            entry = self.resolve_entry(entry)
        report = VerifyReport(entry)
        checksums = entry.checksums
        source = source_for_urls(list(entry.data_urls))
        for url in entry.data_urls:
            expected = checksums.get(url)
            digest = hashlib.sha256()
            size = 0
            try:
                with source.open_shard(url) as stream:
                    if isinstance(stream, (bytes, memoryview)) or hasattr(stream, "madvise"):
                        view = memoryview(stream)
                        digest.update(view)
                        size = len(view)
                        view.release()
                    else:
                        while block := stream.read(chunk):
                            digest.update(block)
                            size += len(block)
            except AtdataError as exc:
                report.shards.append(ShardCheck(url, "missing", expected, None, 0, str(exc)))
                continue
            actual = digest.hexdigest()
            status = (
                "unchecked" if expected is None else ("ok" if actual == expected else "mismatch")
            )
            report.shards.append(ShardCheck(url, status, expected, actual, size))
        return report

    def stats(self) -> dict[str, Any]:
        """Counts per repository (for the repositories screen)."""
        return {
            name: {
                "entries": repo.provider.count_entries(),
                "schemas": repo.provider.count_schemas(),
                "backend": repo.provider.backend,
                "address": repo.provider.address,
                "store": getattr(repo.data_store, "kind", None),
            }
            for name, repo in self.repos.items()
        }


def _urls_of(source: Any) -> list[str]:
    if isinstance(source, str):
        from ..shards import expand_braces

        return expand_braces(source)
    if isinstance(source, (list, tuple)):
        return [str(u) for u in source]
    shard_list = getattr(source, "shard_list", None)
    if shard_list is not None:
        return list(shard_list() if callable(shard_list) else shard_list)
    raise TypeError(f"cannot find shard URLs in {type(source).__name__}")


def _copy_shards(ds: Any, writer: Any) -> int:
    """Copy samples member by member, keeping keys and bytes (atdata regenerates keys; we do not)."""
    count = 0
    for raw in ds.raw():
        for ext, data in raw.parts.items():
            name = f"{raw.key}.{ext}" if ext else raw.key
            writer.write_member(name, bytes(data), key=raw.key)
        count += 1
    return count


def make_provider(
    *, path: Any = None, dsn: str | None = None, redis: Any = None, readonly: bool = False
) -> IndexProvider:
    """Pick the provider for the given connection settings (SQLite when none)."""
    if dsn is not None:
        try:
            from .providers.postgres import PostgresProvider
        except ImportError as exc:
            raise AtdataError(
                f"PostgreSQL support needs psycopg: pip install 'atdata-tui[postgres]' ({exc})"
            ) from None
        return PostgresProvider(dsn)
    if redis is not None:
        try:
            from .providers.redis import RedisProvider
        except ImportError as exc:
            raise AtdataError(
                f"Redis support needs redis-py: pip install 'atdata-tui[redis]' ({exc})"
            ) from None
        return RedisProvider(redis)
    return SqliteProvider(
        path if path is not None else config_mod.default_index_path(), readonly=readonly
    )


__all__ = [
    "Index",
    "IndexEntry",
    "Repository",
    "VerifyReport",
    "WriteProgress",
    "infer_sample_type",
    "make_provider",
    "utc_now",
]
