"""Promotion: publish a local index entry to the user's PDS, planned first, resumable, idempotent.

``plan_promotion`` works out everything before anything is written, so the user can see it and
confirm: the target account, whether the schema record already exists (found by listing the
user's schema records and comparing name, version and content hash) or will be created, which
local shards will be uploaded as blobs (with sizes and the CIDs they will get, computed from the
SHA-256 the index already holds), and which entry and label records will be created or exist.

``execute_plan`` then writes, in order: schema record → blobs → entry record (right after the
blobs, which a PDS keeps only once a record references them) → label record. Every record has a
deterministic key (the schema's from name, version and content hash; the entry's a TID derived
from the local entry's CID and creation time; the label's from the entry and the label's first
attempt), and is written with ``putRecord``: a retry after a failure at any step rewrites the
same keys, so it never duplicates a record. After each step the state is saved in the local
entry's ``metadata["atproto"]`` (schema_uri, blob CIDs, entry_uri, label_uri), which the next
plan reads: blobs already referenced by the entry record are not uploaded again.

``promote_dataset`` publishes a ``Dataset`` straight to PDS blobs (through ``PDSBlobStore``),
without a local entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .. import schema as schema_mod
from ..errors import (
    AtdataError,
    AtmosphereError,
    BlobTooLargeError,
    CancelledError,
    RecordError,
    SchemaError,
)
from ..index.entries import MANAGED_METADATA_KEYS, IndexEntry
from ..preview import human_bytes
from ..refs import validate_dataset_name
from ..samples import DictSample
from .blobs import PDSBlobStore, blob_cid, file_sha256, too_large_message
from .client import AtmosphereClient, RecordView, at_uri, parse_blob_url
from .lexicons import ENTRY, LABEL, MAX_BLOB_SIZE, SCHEMA
from .records import (
    Checksum,
    DatasetSize,
    EntryRecord,
    LabelRecord,
    Shard,
    Storage,
    iso_datetime,
    now_iso,
    schema_signature,
    schema_to_record,
)

Action = Literal["create", "exists", "update"]

#: Local metadata keys that describe the local copy (paths, sizes): not copied into the record.
_LOCAL_KEYS = MANAGED_METADATA_KEYS | {"record_metadata", "content_metadata"}
_B32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"
_RKEY_UNSAFE = re.compile(r"[^A-Za-z0-9._:~-]")


# --- deterministic record keys -----------------------------------------------------------------------


def make_tid(micros: int, clock_id: int) -> str:
    """A TID (13 base32-sortable characters): 53 bits of microseconds, 10 bits of clock id."""
    value = ((micros & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(_B32_SORTABLE[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def deterministic_tid(when: str, *parts: str) -> str:
    """A TID whose time is ``when`` (to the second) and whose low bits come from ``parts``.

    The same inputs always give the same key, so writing "the same" record twice rewrites it.
    """
    seconds = int(datetime.fromisoformat(iso_datetime(when).replace("Z", "+00:00")).timestamp())
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    h = int.from_bytes(digest[:8], "big")
    return make_tid(seconds * 1_000_000 + h % 1_000_000, (h >> 20) & 0x3FF)


def schema_rkey(name: str, version: str, content_hash: str) -> str:
    """``Name-1.0.0-<16 hex>``: one key per name, version and content (record key ``any``)."""
    return _RKEY_UNSAFE.sub("_", f"{name}-{version}-{content_hash[:16]}")[:512]


# --- the plan --------------------------------------------------------------------------------------


@dataclass
class PlannedRecord:
    """One record the promotion needs: where it goes and whether it is there already."""

    kind: Literal["schema", "entry", "label"]
    collection: str
    rkey: str
    uri: str
    action: Action
    summary: str
    record: dict[str, Any] = field(repr=False, default_factory=dict)


@dataclass
class PlannedBlob:
    """One local shard to upload as a blob (or already referenced by the entry record)."""

    path: str
    size: int
    sha256: str
    cid: str
    action: Literal["upload", "referenced"]


@dataclass
class PromotionProgress:
    """Reported while a promotion runs (the TUI shows it)."""

    step: Literal["schema", "upload", "entry", "label", "done"]
    message: str
    bytes_done: int = 0
    bytes_total: int = 0
    blobs_done: int = 0
    blobs_total: int = 0
    records_created: int = 0
    uri: str | None = None


ProgressFn = Callable[[PromotionProgress], None]
CancelFn = Callable[[], bool]


@dataclass
class PromotionPlan:
    """Everything a promotion will do, computed before anything is written."""

    name: str
    local_name: str
    local_cid: str
    did: str
    handle: str
    pds: str
    storage: Literal["blobs", "http", "s3"]
    schema: PlannedRecord
    schema_name: str
    schema_version: str
    blobs: list[PlannedBlob]
    entry: PlannedRecord
    label: PlannedRecord
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    license: str | None = None
    label_created_at: str = ""
    warnings: list[str] = field(default_factory=list)
    index: Any = field(default=None, repr=False, compare=False)
    local_entry: IndexEntry | None = field(default=None, repr=False, compare=False)
    client: AtmosphereClient | None = field(default=None, repr=False, compare=False)
    max_blob_size: int = MAX_BLOB_SIZE

    @property
    def records(self) -> list[PlannedRecord]:
        return [self.schema, self.entry, self.label]

    @property
    def records_to_write(self) -> list[PlannedRecord]:
        return [r for r in self.records if r.action != "exists"]

    @property
    def blobs_to_upload(self) -> list[PlannedBlob]:
        return [b for b in self.blobs if b.action == "upload"]

    @property
    def upload_bytes(self) -> int:
        return sum(b.size for b in self.blobs_to_upload)

    @property
    def nothing_to_do(self) -> bool:
        return not self.records_to_write and not self.blobs_to_upload

    @property
    def entry_uri(self) -> str:
        return self.entry.uri

    def describe(self) -> str:
        """A plain-text summary for a confirmation screen or the CLI."""
        lines = [
            f"Promote {self.local_name!r} (local {self.local_cid[:16]}…) as @{self.handle}/{self.name}",
            f"  account  @{self.handle} ({self.did}) on {self.pds}",
            f"  schema   {self.schema_name}@{self.schema_version}: {_verb(self.schema.action)} "
            f"{self.schema.uri}",
        ]
        if self.storage == "blobs":
            up = self.blobs_to_upload
            lines.append(
                f"  shards   {len(self.blobs)} as PDS blobs: {len(up)} to upload "
                f"({human_bytes(self.upload_bytes)}), {len(self.blobs) - len(up)} already referenced"
            )
            for b in self.blobs[:20]:
                lines.append(
                    f"           {b.action:<10} {os.path.basename(b.path)}  {human_bytes(b.size)}  {b.cid}"
                )
            if len(self.blobs) > 20:
                lines.append(f"           … and {len(self.blobs) - 20} more")
        else:
            count = len(self.local_entry.data_urls) if self.local_entry else 0
            lines.append(
                f"  shards   {count} referenced by URL ({self.storage}); nothing to upload"
            )
        lines.append(
            f"  entry    {self.entry.summary}: {_verb(self.entry.action)} {self.entry.uri}"
        )
        lines.append(
            f"  label    {self.label.summary}: {_verb(self.label.action)} {self.label.uri}"
        )
        writes = len(self.records_to_write)
        if self.nothing_to_do:
            lines.append("Nothing to do: everything is already published.")
        else:
            lines.append(
                f"Will write {writes} record(s) and upload {len(self.blobs_to_upload)} blob(s) "
                f"({human_bytes(self.upload_bytes)})."
            )
        lines.extend(f"Warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def execute(self, *, progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> str:
        return execute_plan(self, progress=progress, cancel=cancel)


def _verb(action: Action) -> str:
    return {"create": "will create", "exists": "exists", "update": "will update"}[action]


# --- finding what exists ---------------------------------------------------------------------------


def _canonical(value: Any) -> str:
    """A comparable form of a record (``$bytes`` padding and key order do not matter)."""

    def norm(v: Any) -> Any:
        if isinstance(v, dict):
            if set(v) == {"$bytes"} and isinstance(v["$bytes"], str):
                return {"$bytes": v["$bytes"].rstrip("=")}
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def find_schema(
    client: AtmosphereClient, did: str, record: dict[str, Any]
) -> tuple[RecordView | None, list[str]]:
    """An existing schema record of ``did`` with the same name, version and content, if any.

    Also returns warnings (a record with the same name and version but other fields).
    """
    wanted = schema_signature(record)
    warnings: list[str] = []
    for view in client.iter_records(did, SCHEMA):
        value = view.value
        if value.get("name") != record["name"] or value.get("version") != record["version"]:
            continue
        if schema_signature(value) == wanted:
            return view, warnings
        warnings.append(
            f"{view.uri} is also {record['name']}@{record['version']} but has different fields; "
            "consider publishing a new schema version"
        )
    return None, warnings


def plan_schema(
    client: AtmosphereClient, did: str, local: dict[str, Any]
) -> tuple[PlannedRecord, list[str]]:
    """The schema record step: reuse an identical record, or create one at a deterministic key."""
    record = schema_to_record(local)
    existing, warnings = find_schema(client, did, record)
    summary = f"{local['name']}@{local['version']}"
    if existing is not None:
        return PlannedRecord(
            "schema", SCHEMA, existing.rkey, existing.uri, "exists", summary, record
        ), warnings
    rkey = schema_rkey(local["name"], local["version"], schema_mod.content_hash(local))
    return PlannedRecord(
        "schema", SCHEMA, rkey, at_uri(did, SCHEMA, rkey), "create", summary, record
    ), warnings


def _entry_signature(value: Any) -> tuple[Any, ...] | None:
    """What makes two entry records "the same dataset": name, schema and shard list."""
    try:
        storage = value.get("storage")
        if isinstance(storage.get("blobs"), list):
            shards = tuple(b["blob"]["ref"]["$link"] for b in storage["blobs"])
        elif isinstance(storage.get("shards"), list):
            shards = tuple(s.get("url") or s.get("key") for s in storage["shards"])
        else:
            return None
        return (value.get("name"), value.get("schemaRef"), shards)
    except (AttributeError, KeyError, TypeError):
        return None  # someone else's malformed record: not ours


def _find_entry(
    client: AtmosphereClient, did: str, rkey: str, record: dict[str, Any]
) -> tuple[RecordView | None, Action]:
    """The entry record at our key, or an equivalent one elsewhere in the collection."""
    view = client.get_record(did, ENTRY, rkey)
    if view is not None:
        return view, ("exists" if _canonical(view.value) == _canonical(record) else "update")
    wanted = _entry_signature(record)
    for other in client.iter_records(did, ENTRY):
        if _entry_signature(other.value) == wanted:
            return other, "exists"
    return None, "create"


def _find_label(
    client: AtmosphereClient, did: str, name: str, version: str | None, dataset_uri: str
) -> RecordView | None:
    for view in client.iter_records(did, LABEL):
        value = view.value
        if (
            value.get("name") == name
            and value.get("datasetUri") == dataset_uri
            and (value.get("version") or None) == version
        ):
            return view
    return None


# --- planning ---------------------------------------------------------------------------------------


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def _local_path(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


def _record_metadata(entry: IndexEntry, urls: list[str], warnings: list[str]) -> dict[str, Any]:
    """What goes into the entry record's msgpack ``metadata``: per-shard counts and user keys."""
    meta: dict[str, Any] = {"source": "atdata-tui", "atdata_cid": entry.cid}
    per_shard = entry.shard_samples
    if per_shard and all(u in per_shard for u in entry.data_urls):
        meta["shard_samples"] = [int(per_shard[u]) for u in entry.data_urls]
    for key, value in (entry.metadata or {}).items():
        if key in _LOCAL_KEYS:
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            warnings.append(f"metadata key {key!r} is not JSON data and is not published")
            continue
        meta[key] = value
    return meta


def _storage_for(
    index: Any,
    entry: IndexEntry,
    *,
    did: str,
    pds: str,
    blobs: bool,
    state_blobs: dict[str, Any],
    max_blob_size: int,
) -> tuple[Literal["blobs", "http", "s3"], Storage, list[PlannedBlob]]:
    urls = list(entry.data_urls)
    if not urls:
        raise AtmosphereError(f"dataset {entry.name!r} has no shards to publish")
    checksums = entry.checksums
    local = [u for u in urls if _is_local(u)]
    if local:
        if len(local) != len(urls):
            raise AtmosphereError(
                f"dataset {entry.name!r} mixes local and remote shards; an entry record holds one "
                "kind of storage: copy it into one store first"
            )
        if not blobs:
            raise AtmosphereError(
                f"dataset {entry.name!r} has local shards, which others cannot read: they must be "
                "uploaded as PDS blobs (promote with blobs=True)"
            )
        planned = []
        for url in urls:
            path = _local_path(url)
            try:
                size = os.path.getsize(path)
            except OSError as exc:
                raise AtmosphereError(
                    f"shard {path} of {entry.name!r} cannot be read: {exc.strerror}"
                ) from None
            if size > max_blob_size:
                raise BlobTooLargeError(too_large_message(f"shard {path}", size, max_blob_size))
            digest = checksums.get(url)
            known = state_blobs.get(url) if isinstance(state_blobs.get(url), dict) else None
            if not digest and known and known.get("size") == size and known.get("sha256"):
                digest = known["sha256"]
            if not digest:
                digest, size = file_sha256(path)
            planned.append(PlannedBlob(path, size, digest, blob_cid(digest), "upload"))
        storage = Storage.blobs([(b.cid, b.size, b.sha256) for b in planned], pds=pds, did=did)
        return "blobs", storage, planned
    if all(u.startswith(("http://", "https://")) for u in urls):
        parsed = [parse_blob_url(u) for u in urls]
        sizes = entry.shard_sizes
        if all(p is not None and p[1] == did for p in parsed) and all(u in sizes for u in urls):
            shards = tuple(
                Shard(u, Checksum.sha256(checksums.get(u)), int(sizes[u]), cid=p[2])  # type: ignore[index]
                for u, p in zip(urls, parsed, strict=True)
            )
            return "blobs", Storage("blobs", shards), []
        return "http", Storage.http([(u, checksums.get(u)) for u in urls]), []
    if all(u.startswith("s3://") for u in urls):
        buckets = {u[len("s3://") :].split("/", 1)[0] for u in urls}
        if len(buckets) != 1:
            raise AtmosphereError(
                f"dataset {entry.name!r} spans several S3 buckets ({', '.join(sorted(buckets))}); "
                "an entry record names one"
            )
        bucket = buckets.pop()
        store = None
        repos = getattr(index, "repos", {})
        if entry.repo in repos:
            store = repos[entry.repo].data_store
        keys = [(u[len(f"s3://{bucket}/") :], checksums.get(u)) for u in urls]
        endpoint = getattr(store, "endpoint", None) or getattr(store, "endpoint_url", None)
        region = getattr(store, "region", None)
        storage = Storage.s3(
            bucket,
            keys,
            region=region if isinstance(region, str) else None,
            endpoint=endpoint if isinstance(endpoint, str) else None,
        )
        return "s3", storage, []
    raise AtmosphereError(
        f"dataset {entry.name!r} has shards of several kinds (or of an unpublishable kind): "
        f"{', '.join(sorted({u.split('://')[0] for u in urls}))}"
    )


def _state_for(entry: IndexEntry, did: str) -> dict[str, Any]:
    state = (entry.metadata or {}).get("atproto")
    if isinstance(state, dict) and state.get("did") == did:
        return dict(state)
    return {}


def plan_promotion(
    index: Any,
    entry: IndexEntry,
    *,
    client: AtmosphereClient,
    name: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
    version: str | None = None,
    blobs: bool = True,
    max_blob_size: int | None = None,
) -> PromotionPlan:
    """Work out what promoting ``entry`` would do (reads the PDS, writes nothing).

    ``name`` (default: the entry's name) is the label others use: ``@handle/name``. Description,
    tags and license default to the entry's. Local shards are uploaded as blobs (``blobs`` must
    be true); http(s) and s3 shards are referenced by URL.
    """
    info = client.require_login()
    label_name = validate_dataset_name(name or entry.name)
    limit = MAX_BLOB_SIZE if max_blob_size is None else min(int(max_blob_size), MAX_BLOB_SIZE)
    warnings: list[str] = []
    state = _state_for(entry, info.did)
    description = description if description is not None else entry.description
    tags = list(tags) if tags is not None else entry.tags
    license = license if license is not None else entry.license

    # 1. the schema record
    if entry.schema_ref.startswith("at://"):
        schema_view = client.get_record_uri(entry.schema_ref)
        if schema_view is None:
            raise AtmosphereError(
                f"the schema {entry.schema_ref} of {entry.name!r} no longer exists"
            )
        schema_name = str(schema_view.value.get("name"))
        schema_version = str(schema_view.value.get("version"))
        planned_schema = PlannedRecord(
            "schema",
            schema_view.collection,
            schema_view.rkey,
            schema_view.uri,
            "exists",
            f"{schema_name}@{schema_version}",
            schema_view.value,
        )
    else:
        try:
            local_schema = index.get_schema(entry.schema_ref)
            schema_mod.fields_from_record(local_schema)
        except (AtdataError, KeyError) as exc:
            raise AtmosphereError(
                f"cannot publish {entry.name!r}: its schema {entry.schema_ref} cannot be read ({exc})"
            ) from None
        planned_schema, schema_warnings = plan_schema(client, info.did, local_schema)
        warnings.extend(schema_warnings)
        schema_name, schema_version = local_schema["name"], local_schema["version"]

    # 2. storage (and the blobs to upload)
    kind, storage, planned_blobs = _storage_for(
        index,
        entry,
        did=info.did,
        pds=info.pds,
        blobs=blobs,
        state_blobs=state.get("blobs") or {},
        max_blob_size=limit,
    )

    # 3. the entry record
    created_at = iso_datetime(entry.created_at)
    entry_record = EntryRecord(
        name=label_name,
        schema_ref=planned_schema.uri,
        storage=storage,
        created_at=created_at,
        description=description,
        tags=list(tags or []),
        license=license,
        size=DatasetSize(entry.samples, entry.size_bytes, len(entry.data_urls)),
        metadata=_record_metadata(entry, storage.urls, warnings),
    ).to_record()
    rkey = deterministic_tid(created_at, info.did, entry.cid, label_name)
    existing_entry, entry_action = _find_entry(client, info.did, rkey, entry_record)
    entry_uri = existing_entry.uri if existing_entry is not None else at_uri(info.did, ENTRY, rkey)
    if existing_entry is not None:
        rkey = existing_entry.rkey
    if entry_action != "create":
        signature = _entry_signature(existing_entry.value) if existing_entry else None
        referenced = set(signature[2]) if signature else set()
        for blob in planned_blobs:
            if blob.cid in referenced:
                blob.action = "referenced"
    planned_entry = PlannedRecord(
        "entry", ENTRY, rkey, entry_uri, entry_action, label_name, entry_record
    )

    # 4. the label record
    label_created = state.get("label_created_at") if state.get("entry_cid") == entry.cid else None
    label_created = label_created or now_iso()
    label_record = LabelRecord(
        label_name, entry_uri, label_created, version, description
    ).to_record()
    existing_label = _find_label(client, info.did, label_name, version, entry_uri)
    if existing_label is not None:
        planned_label = PlannedRecord(
            "label",
            LABEL,
            existing_label.rkey,
            existing_label.uri,
            "exists",
            label_name,
            label_record,
        )
    else:
        lrkey = deterministic_tid(label_created, info.did, entry_uri, label_name, version or "")
        planned_label = PlannedRecord(
            "label",
            LABEL,
            lrkey,
            at_uri(info.did, LABEL, lrkey),
            "create",
            label_name,
            label_record,
        )

    return PromotionPlan(
        name=label_name,
        local_name=entry.name,
        local_cid=entry.cid,
        did=info.did,
        handle=info.handle,
        pds=info.pds,
        storage=kind,
        schema=planned_schema,
        schema_name=schema_name,
        schema_version=schema_version,
        blobs=planned_blobs,
        entry=planned_entry,
        label=planned_label,
        description=description,
        tags=list(tags or []),
        license=license,
        label_created_at=label_created,
        warnings=warnings,
        index=index,
        local_entry=entry,
        client=client,
        max_blob_size=limit,
    )


# --- execution ---------------------------------------------------------------------------------------


class _Reporter:
    """Turns byte counts into (throttled) ``PromotionProgress`` reports."""

    def __init__(
        self, progress: ProgressFn | None, plan: PromotionPlan | None, total: int, blobs: int
    ) -> None:
        self.progress = progress
        self.total = total
        self.blobs_total = blobs
        self.bytes_done = 0
        self.blobs_done = 0
        self.records_created = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def report(self, step: Any, message: str, uri: str | None = None) -> None:
        if self.progress is not None:
            self.progress(
                PromotionProgress(
                    step,
                    message,
                    self.bytes_done,
                    self.total,
                    self.blobs_done,
                    self.blobs_total,
                    self.records_created,
                    uri,
                )
            )

    def on_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes_done += n
            now = time.monotonic()
            if now - self._last < 0.1:
                return
            self._last = now
        self.report(
            "upload", f"uploading: {human_bytes(self.bytes_done)} of {human_bytes(self.total)}"
        )


def _check_cancel(cancel: CancelFn | None, what: str) -> None:
    if cancel is not None and cancel():
        raise CancelledError(
            f"promotion cancelled {what}; what was published so far is kept and a retry resumes"
        )


def execute_plan(
    plan: PromotionPlan, *, progress: ProgressFn | None = None, cancel: CancelFn | None = None
) -> str:
    """Carry out a plan; returns the entry's ``at://`` URI. Safe to run again after any failure."""
    client = plan.client
    index = plan.index
    entry = plan.local_entry
    if client is None or entry is None or index is None:
        raise AtmosphereError("this plan was not made by plan_promotion (no client or entry)")
    info = client.require_login()
    if info.did != plan.did:
        raise AtmosphereError(
            f"the plan is for {plan.did} but you are logged in as {info.did}: plan again"
        )
    state = _state_for(entry, plan.did)
    state.update(
        {
            "did": plan.did,
            "handle": plan.handle,
            "pds": plan.pds,
            "name": plan.name,
            "entry_cid": entry.cid,
            "label_created_at": plan.label_created_at,
            "status": "in_progress",
        }
    )
    state.setdefault("blobs", {})

    def save() -> None:
        state["updated_at"] = now_iso()
        index.update_metadata(entry, {"atproto": dict(state)})

    save()
    to_upload = plan.blobs_to_upload
    rep = _Reporter(progress, plan, sum(b.size for b in to_upload), len(to_upload))

    # 1. schema
    _check_cancel(cancel, "before the schema record")
    if plan.schema.action != "exists":
        client.put_record(SCHEMA, plan.schema.rkey, plan.schema.record)
        rep.records_created += 1
    state["schema_uri"] = plan.schema.uri
    save()
    rep.report("schema", f"schema {plan.schema.summary}: {plan.schema.uri}", plan.schema.uri)

    # 2. blobs (right before the entry record that references them)
    if to_upload:
        store = PDSBlobStore(
            client, max_blob_size=plan.max_blob_size, progress=rep.on_bytes, cancel=cancel
        )
        for blob in to_upload:
            _check_cancel(cancel, "while uploading shards")
            uploaded = store.upload_file(blob.path, sha256=blob.sha256)
            state["blobs"][_url_of(entry, blob.path)] = {
                "cid": uploaded.cid,
                "size": uploaded.size,
                "sha256": uploaded.sha256,
            }
            rep.blobs_done += 1
            save()
            rep.report("upload", f"uploaded {os.path.basename(blob.path)} as {uploaded.cid}")

    # 3. entry
    _check_cancel(cancel, "before the entry record")
    if plan.entry.action != "exists":
        ref = client.put_record(ENTRY, plan.entry.rkey, plan.entry.record)
        state["entry_record_cid"] = ref.cid
        rep.records_created += 1
    state["entry_uri"] = plan.entry.uri
    save()
    rep.report("entry", f"entry {plan.name}: {plan.entry.uri}", plan.entry.uri)

    # 4. label
    _check_cancel(cancel, "before the label record")
    if plan.label.action != "exists":
        client.put_record(LABEL, plan.label.rkey, plan.label.record)
        rep.records_created += 1
    state["label_uri"] = plan.label.uri
    state["status"] = "done"
    save()
    rep.report("done", f"published @{plan.handle}/{plan.name}: {plan.entry.uri}", plan.entry.uri)
    return plan.entry.uri


def _url_of(entry: IndexEntry, path: str) -> str:
    for url in entry.data_urls:
        if _local_path(url) == path:
            return url
    return path


def promote_entry(
    index: Any,
    entry: IndexEntry,
    *,
    client: AtmosphereClient,
    name: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    max_blob_size: int | None = None,
) -> str:
    """Plan and execute in one go (for scripts and ``Index.write("@handle/name")``)."""
    plan = plan_promotion(
        index,
        entry,
        client=client,
        name=name,
        description=description,
        tags=tags,
        license=license,
        max_blob_size=max_blob_size,
    )
    return execute_plan(plan, progress=progress, cancel=cancel)


# --- datasets straight to blobs ------------------------------------------------------------------------


def promote_dataset(
    dataset: Any,
    *,
    client: AtmosphereClient,
    name: str,
    sample_type: type | None = None,
    schema_version: str = "1.0.0",
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
    maxcount: int | None = 10000,
    maxsize: int | None = None,
    max_blob_size: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> str:
    """Publish a ``Dataset`` as PDS blobs (copied sample by sample, keys and bytes kept).

    Writes the schema record (reused when an identical one exists), uploads each shard as it is
    finished, then creates the entry record referencing the blobs and the label. Running it again
    with the same data finds the same entry (same blob CIDs) and label and creates nothing new.
    """
    info = client.require_login()
    label_name = validate_dataset_name(name)
    sample_type = sample_type or getattr(dataset, "sample_type", None)
    if sample_type is None or sample_type is DictSample:
        raise SchemaError(f"cannot tell the schema of {name!r}: pass sample_type=")
    local_schema = schema_mod.schema_record(sample_type, version=schema_version)
    planned_schema, _warnings = plan_schema(client, info.did, local_schema)
    rep = _Reporter(progress, None, 0, 0)
    _check_cancel(cancel, "before the schema record")
    if planned_schema.action != "exists":
        client.put_record(SCHEMA, planned_schema.rkey, planned_schema.record)
        rep.records_created += 1
    rep.report(
        "schema", f"schema {planned_schema.summary}: {planned_schema.uri}", planned_schema.uri
    )

    store = PDSBlobStore(client, max_blob_size=max_blob_size, progress=rep.on_bytes, cancel=cancel)
    writer = store.shard_writer(label_name, maxcount=maxcount, maxsize=maxsize)
    samples = 0
    try:
        for raw in dataset.raw():
            for ext, data in raw.parts.items():
                member = f"{raw.key}.{ext}" if ext else raw.key
                writer.write_member(member, bytes(data), key=raw.key)
            samples += 1
            if samples % 256 == 0:
                _check_cancel(cancel, "while uploading shards")
        if samples == 0:
            raise AtmosphereError(f"dataset {name!r} has no samples to publish")
        infos = writer.commit()
    except BaseException:
        writer.abort()
        raise
    uploaded = store.blob_shards([i.url for i in infos])
    rep.blobs_done = rep.blobs_total = len(uploaded)
    storage = Storage.blobs(
        [(b.cid, b.size, b.sha256) for b in uploaded], pds=info.pds, did=info.did
    )
    record = EntryRecord(
        name=label_name,
        schema_ref=planned_schema.uri,
        storage=storage,
        description=description,
        tags=list(tags or []),
        license=license,
        size=DatasetSize(samples, sum(i.bytes for i in infos), len(infos)),
        metadata={"source": "atdata-tui", "shard_samples": [i.samples for i in infos]},
    ).to_record()
    wanted = _entry_signature(record)
    entry_uri = next(
        (
            v.uri
            for v in client.iter_records(info.did, ENTRY)
            if _entry_signature(v.value) == wanted
        ),
        None,
    )
    if entry_uri is None:
        rkey = deterministic_tid(record["createdAt"], info.did, _canonical(wanted), label_name)
        entry_uri = client.put_record(ENTRY, rkey, record).uri
        rep.records_created += 1
    rep.report("entry", f"entry {label_name}: {entry_uri}", entry_uri)
    if _find_label(client, info.did, label_name, None, entry_uri) is None:
        label = LabelRecord(label_name, entry_uri, now_iso(), None, description).to_record()
        lrkey = deterministic_tid(label["createdAt"], info.did, entry_uri, label_name)
        client.put_record(LABEL, lrkey, label)
        rep.records_created += 1
    rep.report("done", f"published @{info.handle}/{label_name}: {entry_uri}", entry_uri)
    return entry_uri


__all__ = [
    "PlannedBlob",
    "PlannedRecord",
    "PromotionPlan",
    "PromotionProgress",
    "RecordError",
    "deterministic_tid",
    "execute_plan",
    "make_tid",
    "plan_promotion",
    "promote_dataset",
    "promote_entry",
    "schema_rkey",
]
