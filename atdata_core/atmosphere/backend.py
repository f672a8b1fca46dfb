"""``AtmosphereBackend``: what ``Index`` calls for ``@handle/name`` and ``at://`` references.

Resolution of ``@handle/name[@version]``: handle → DID (verified both ways) → every label record
of that account (``listRecords`` followed cursor by cursor, 100 at a time: never only the first
page) → the most recent label with that name (and version) → its entry record (possibly in
another account's repository) → an ``IndexEntry`` whose URLs stream (``getBlob`` for blobs,
http(s) and s3 as recorded) and whose ``schema_ref`` is the schema record's at:// URI, which
``get_schema_record`` turns into the local schema form so ``Index.decode_schema`` works on it.
Accounts with entries but no labels (older atdata) resolve by the entry's name. With an AppView
configured, its ``resolveLabel`` answers first (one request instead of a scan); the entry record
is still read from the account's PDS.

Malformed records met while scanning are skipped (and counted); the record a reference actually
lands on must be valid, or the caller gets the ``RecordError`` that says what is wrong with it.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import AtmosphereError, NotFoundError, RecordError
from ..index.entries import IndexEntry, Page
from ..refs import DatasetRef
from .client import AtmosphereClient, RecordView, split_at_uri
from .lexicons import (
    ENTRY_COLLECTIONS,
    LABEL_COLLECTIONS,
    LENS,
    LENS_COLLECTIONS,
    SCHEMA_COLLECTIONS,
)
from .promote import (
    PromotionPlan,
    execute_plan,
    plan_promotion,
    promote_dataset,
)
from .records import EntryRecord, LabelRecord, LensRecord, parse_schema
from .resolve import Identity

if TYPE_CHECKING:
    from .appview import AppViewClient

CACHE_SECONDS = 60.0


class DatasetNotFoundError(AtmosphereError, NotFoundError):
    """No dataset of that name (or URI) exists on the network."""


def _when(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1)).timestamp()
    except ValueError:
        return 0.0


class AtmosphereBackend:
    """The ATProto side of an ``Index``: resolve, list, read schemas, promote."""

    def __init__(
        self,
        client: AtmosphereClient,
        *,
        max_blob_size: int | None = None,
        appview: AppViewClient | None = None,
    ) -> None:
        self.client = client
        self.max_blob_size = max_blob_size
        #: The dataset AppView, when one is configured: network search, and one-request label
        #: resolution for ``@handle/name`` (the records themselves are still read from the PDS).
        self.appview = appview
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, IndexEntry]] = {}
        self._schemas: dict[str, tuple[float, dict[str, Any]]] = {}
        self._listings: dict[str, tuple[float, list[IndexEntry]]] = {}

    def __repr__(self) -> str:
        return f"AtmosphereBackend({self.client!r})"

    # --- caching ----------------------------------------------------------------------------------
    def _get(self, table: dict[str, tuple[float, Any]], key: str) -> Any:
        with self._lock:
            hit = table.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return copy.deepcopy(hit[1])
        return None

    def _put(self, table: dict[str, tuple[float, Any]], key: str, value: Any) -> None:
        with self._lock:
            if len(table) > 512:
                table.clear()
            table[key] = (time.monotonic(), copy.deepcopy(value))

    def forget(self) -> None:
        """Drop cached records (after publishing, so listings show the new ones)."""
        with self._lock:
            self._entries.clear()
            self._schemas.clear()
            self._listings.clear()

    # --- identities --------------------------------------------------------------------------------
    def _identity(self, actor: str | None) -> Identity:
        if actor:
            return self.client.identify(actor)
        info = self.client.session
        if info is None:
            raise AtmosphereError("whose datasets? log in, or give a handle (@alice.example/name)")
        return Identity(info.did, info.handle, info.pds)

    def _handle_of(self, did: str, known: Identity | None) -> tuple[str | None, str]:
        if known is not None and known.did == did:
            return known.handle, known.pds
        ident = self.client.identify(did)
        return ident.handle, ident.pds

    # --- entries ------------------------------------------------------------------------------------
    def entry_at(
        self, uri: str, *, known: Identity | None = None, label_uri: str | None = None
    ) -> IndexEntry:
        """The entry record at ``uri`` as an ``IndexEntry`` (validated; cached briefly)."""
        cached = self._get(self._entries, uri)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        did, collection, rkey = split_at_uri(uri)
        if not did.startswith("did:"):
            did = self.client.identify(did).did
        if collection not in ENTRY_COLLECTIONS:
            raise AtmosphereError(f"{uri} is a {collection} record, not a dataset entry")
        handle, pds = self._handle_of(did, known)
        view = self.client.get_record(did, collection, rkey, pds=pds)
        if view is None:
            raise DatasetNotFoundError(
                f"no dataset entry at {uri} (it was deleted or never existed)"
            )
        record = EntryRecord.parse(view.value, uri=view.uri, did=did, pds=pds)
        entry = record.to_index_entry(
            uri=view.uri, cid=view.cid, did=did, handle=handle, pds=pds, label_uri=label_uri
        )
        self._put(self._entries, uri, entry)
        return entry

    def resolve_entry(self, ref: DatasetRef) -> IndexEntry:
        """``@handle/name[@version]`` or an ``at://`` URI of an entry or label → ``IndexEntry``."""
        if ref.kind == "handle":
            ident = self.client.identify(ref.handle or ref.did or "")
            return self._resolve_name(ident, ref.name or "", ref.version)
        if ref.kind == "at_uri":
            did = ref.did or self.client.identify(ref.handle or "").did
            collection, rkey = ref.collection or "", ref.rkey or ""
            uri = f"at://{did}/{collection}/{rkey}"
            if collection in ENTRY_COLLECTIONS:
                return self.entry_at(uri)
            if collection in LABEL_COLLECTIONS:
                view = self.client.get_record(did, collection, rkey)
                if view is None:
                    raise DatasetNotFoundError(f"no label at {uri}")
                label = LabelRecord.parse(view.value, uri=view.uri)
                return self.entry_at(label.dataset_uri, label_uri=view.uri)
            if collection in SCHEMA_COLLECTIONS:
                raise AtmosphereError(f"{uri} is a schema record, not a dataset")
            raise AtmosphereError(f"{uri} is a {collection} record, not a dataset entry or label")
        raise AtmosphereError(f"{ref} is not a reference to the AT Protocol network")

    def _resolve_name(self, ident: Identity, name: str, version: str | None) -> IndexEntry:
        want = f"{name}@{version}" if version else name
        if self.appview is not None:
            try:
                dataset_uri, label_uri = self.appview.resolve_label(ident.did, name, version)
            except AtmosphereError:
                pass  # not indexed (yet), or the AppView is down: the account's labels decide
            else:
                return self.entry_at(dataset_uri, known=ident, label_uri=label_uri)
        matches: list[tuple[float, str, LabelRecord, RecordView]] = []
        broken: list[RecordError] = []
        scanned = 0
        for collection in LABEL_COLLECTIONS:
            for view in self.client.iter_records(ident.did, collection, pds=ident.pds):
                scanned += 1
                if view.value.get("name") != name:
                    continue
                try:
                    label = LabelRecord.parse(view.value, uri=view.uri)
                except RecordError as exc:
                    broken.append(exc)
                    continue
                if version is not None and label.version != version:
                    continue
                matches.append((_when(label.created_at), view.rkey, label, view))
        if matches:
            matches.sort(key=lambda m: (m[0], m[1]), reverse=True)
            _, _, label, view = matches[0]
            return self.entry_at(label.dataset_uri, known=ident, label_uri=view.uri)
        if version is None:
            entries: list[tuple[float, str, RecordView]] = []
            for collection in ENTRY_COLLECTIONS:
                for view in self.client.iter_records(ident.did, collection, pds=ident.pds):
                    if view.value.get("name") == name:
                        created = view.value.get("createdAt")
                        entries.append(
                            (_when(created) if isinstance(created, str) else 0.0, view.rkey, view)
                        )
            if entries:
                entries.sort(key=lambda e: (e[0], e[1]), reverse=True)
                return self.entry_at(entries[0][2].uri, known=ident)
        if broken:
            raise RecordError(
                f"{ident.display} has a label {want!r} but it is malformed: {broken[0]}"
            )
        raise DatasetNotFoundError(
            f"{ident.display} has no dataset named {want!r} (looked through {scanned} labels)"
        )

    # --- schemas ------------------------------------------------------------------------------------
    def get_schema_record(self, at_uri: str) -> dict[str, Any]:
        """The schema record at ``at_uri`` in local form (validated; never executed)."""
        cached = self._get(self._schemas, at_uri)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        did, collection, rkey = split_at_uri(at_uri)
        if collection not in SCHEMA_COLLECTIONS:
            raise RecordError(f"{at_uri} is a {collection} record, not a schema")
        if not did.startswith("did:"):
            did = self.client.identify(did).did
        view = self.client.get_record(did, collection, rkey)
        if view is None:
            raise DatasetNotFoundError(f"no schema record at {at_uri}")
        local = parse_schema(view.value, uri=view.uri)
        self._put(self._schemas, at_uri, local)
        return local

    def list_schemas(self, actor: str | None = None) -> list[dict[str, Any]]:
        """Every valid schema record of an account (local form; ``$ref`` is the at:// URI)."""
        ident = self._identity(actor)
        out = []
        for collection in SCHEMA_COLLECTIONS:
            for view in self.client.iter_records(ident.did, collection, pds=ident.pds):
                try:
                    out.append(parse_schema(view.value, uri=view.uri))
                except RecordError:
                    continue
        return out

    # --- listings -----------------------------------------------------------------------------------
    @property
    def can_list(self) -> bool:
        """Listing "my datasets" needs to know who "me" is: a session."""
        return self.client.logged_in

    def list_entries(self, actor: str | None = None) -> list[IndexEntry]:
        """Every valid dataset entry of an account (the logged-in one by default), by name."""
        ident = self._identity(actor)
        cached = self._get(self._listings, ident.did)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        out = []
        for collection in ENTRY_COLLECTIONS:
            for view in self.client.iter_records(ident.did, collection, pds=ident.pds):
                try:
                    record = EntryRecord.parse(
                        view.value, uri=view.uri, did=ident.did, pds=ident.pds
                    )
                except RecordError:
                    continue
                out.append(
                    record.to_index_entry(
                        uri=view.uri,
                        cid=view.cid,
                        did=ident.did,
                        handle=ident.handle,
                        pds=ident.pds,
                    )
                )
        out.sort(key=lambda e: (e.name, e.cid))
        self._put(self._listings, ident.did, out)
        return out

    def list_labels(self, actor: str | None = None) -> list[tuple[str, LabelRecord]]:
        """``(uri, label)`` for every valid label of an account."""
        ident = self._identity(actor)
        out = []
        for collection in LABEL_COLLECTIONS:
            for view in self.client.iter_records(ident.did, collection, pds=ident.pds):
                try:
                    out.append((view.uri, LabelRecord.parse(view.value, uri=view.uri)))
                except RecordError:
                    continue
        return out

    def page_entries(
        self,
        *,
        offset: int = 0,
        limit: int = 100,
        name_filter: str | None = None,
        actor: str | None = None,
    ) -> Page:
        """A page of an account's entries by name (substring filter, case-insensitive)."""
        items = self.list_entries(actor)
        if name_filter:
            needle = name_filter.lower()
            items = [e for e in items if needle in e.name.lower()]
        return Page(items[offset : offset + limit], offset, len(items))

    # --- lenses -------------------------------------------------------------------------------------
    def publish_lens(self, lens: LensRecord) -> str:
        """Publish a lens record (schemas and code references; the code is never run)."""
        return self.client.create_record(LENS, lens.to_record()).uri

    def get_lens(self, at_uri: str) -> LensRecord:
        did, collection, rkey = split_at_uri(at_uri)
        if collection not in LENS_COLLECTIONS:
            raise RecordError(f"{at_uri} is a {collection} record, not a lens")
        view = self.client.get_record(did, collection, rkey)
        if view is None:
            raise DatasetNotFoundError(f"no lens record at {at_uri}")
        return LensRecord.parse(view.value, uri=view.uri)

    # --- promotion ----------------------------------------------------------------------------------
    def plan_promotion(self, index: Any, entry: IndexEntry, **kwargs: Any) -> PromotionPlan:
        kwargs.setdefault("max_blob_size", self.max_blob_size)
        return plan_promotion(index, entry, client=self.client, **kwargs)

    def execute_plan(
        self,
        plan: PromotionPlan,
        *,
        progress: Callable[[Any], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> str:
        try:
            return execute_plan(plan, progress=progress, cancel=cancel)
        finally:
            self.forget()

    def promote_entry(
        self,
        index: Any,
        entry: IndexEntry,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        progress: Callable[[Any], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> str:
        """Plan and publish a local entry; the at:// URI of its entry record."""
        plan = self.plan_promotion(
            index, entry, name=name, description=description, tags=tags, license=license
        )
        return self.execute_plan(plan, progress=progress, cancel=cancel)

    def promote_dataset(self, dataset: Any, **kwargs: Any) -> str:
        kwargs.setdefault("max_blob_size", self.max_blob_size)
        try:
            return promote_dataset(dataset, client=self.client, **kwargs)
        finally:
            self.forget()
