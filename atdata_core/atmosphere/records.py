"""Build and parse the ``science.alt.dataset`` records (and read the older ``ac.foundation.dataset``).

Records from the network are untrusted input. Parsing checks every field it uses: required fields
present, types right, strings within the lexicon's limits (measured in UTF-8 bytes, as the lexicon
language does), at-URIs and datetimes well-formed, schema field names safe identifiers (through
``schema``), shard URLs only ``http(s)``/``s3`` (``sources.check_untrusted_url``: never a local path
or ``file://``), brace patterns bounded, msgpack metadata bounded. Anything else is a
``RecordError`` naming the record and the field: never a crash, never a partially trusted record.

Building produces exactly what the lexicons describe (the tests validate every built record
against the lexicon documents).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import msgpack

from .. import schema as schema_mod
from ..errors import RecordError, SchemaError, SourceError
from ..index.entries import IndexEntry
from ..refs import ATMOSPHERE_REPO
from ..sources import check_untrusted_url
from .client import blob_url
from .lexicons import (
    ENTRY,
    LABEL,
    LEGACY_NAMESPACE,
    LEGACY_SCHEMAS,
    LENS,
    MAX_BLOB_SIZE,
    MAX_CHECKSUM_ALGORITHM,
    MAX_CHECKSUM_DIGEST,
    MAX_CODE_BRANCH,
    MAX_CODE_COMMIT,
    MAX_CODE_PATH,
    MAX_CODE_REPOSITORY,
    MAX_DESCRIPTION,
    MAX_ENTRY_NAME,
    MAX_EXTERNAL_URL,
    MAX_LABEL_NAME,
    MAX_LABEL_VERSION,
    MAX_LANGUAGE,
    MAX_LENS_DESCRIPTION,
    MAX_LENS_NAME,
    MAX_LENS_VERSION_RANGE,
    MAX_LICENSE,
    MAX_METADATA_BYTES,
    MAX_S3_BUCKET,
    MAX_S3_KEY,
    MAX_S3_REGION,
    MAX_SHARD_URL,
    MAX_TAG,
    MAX_TAGS,
    MAX_URI,
    NAMESPACE,
    SCHEMA,
    STORAGE_BLOBS,
    STORAGE_HTTP,
    STORAGE_S3,
    TAR_MIME_TYPE,
)

#: A whole record larger than this (as JSON) is refused before looking inside.
MAX_RECORD_BYTES = 2 << 20
#: The most shards one entry record may list (the lexicon sets no limit; memory does).
MAX_SHARDS = 100_000
#: Limits on the free-form parts (``metadata``, ``contentMetadata``).
MAX_JSON_DEPTH = 16
MAX_JSON_ITEMS = 20_000

_AT_URI = re.compile(
    r"at://(did:(plc:[a-z2-7]{24}|web:[a-zA-Z0-9.%:-]{1,253})|[a-zA-Z0-9.-]{1,253})"
    r"/[a-zA-Z][a-zA-Z0-9-]*(\.[a-zA-Z0-9-]+){2,}/[A-Za-z0-9._:~-]{1,512}"
)
_CID = re.compile(r"b[a-z2-7]{20,200}")
_DATETIME = re.compile(
    r"[0-9]{4}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]:[0-6][0-9](\.[0-9]{1,9})?"
    r"(Z|[+-][0-2][0-9]:?[0-5][0-9])?"
)
_HEX = re.compile(r"[0-9a-fA-F]*")
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_BRACE = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"(-?\d{1,12})\.\.(-?\d{1,12})")

StorageKind = Literal["http", "s3", "blobs", "external"]


# --- small helpers ---------------------------------------------------------------------------------


def now_iso() -> str:
    """Now, as the lexicons' ``datetime`` (RFC 3339, UTC, milliseconds)."""
    return iso_datetime(datetime.now(UTC))


def iso_datetime(value: datetime | str | None) -> str:
    """A datetime (or SQLite's ``YYYY-MM-DD HH:MM:SS``, read as UTC) as ``…T…Z``."""
    if value is None:
        return now_iso()
    if isinstance(value, str):
        text = value.strip().replace(" ", "T", 1)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not a datetime: {value!r}") from None
        value = parsed
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _short(text: str, n: int = 60) -> str:
    shown = "".join(ch if ch.isprintable() else "?" for ch in text[: n + 1])
    return shown if len(shown) <= n else shown[:n] + "…"


class _Reader:
    """Field access on one untrusted record, with errors that say which record and field."""

    def __init__(self, value: Any, where: str, path: str = "") -> None:
        if not isinstance(value, Mapping):
            raise RecordError(
                f"{where}: {path or 'the record'} must be an object, got {type(value).__name__}"
            )
        self.value = value
        self.where = where
        self.path = path

    def fail(self, key: str, problem: str) -> RecordError:
        name = f"{self.path}.{key}" if self.path else key
        return RecordError(f"{self.where}: field {name!r} {problem}")

    def has(self, key: str) -> bool:
        return self.value.get(key) is not None

    def string(
        self,
        key: str,
        *,
        required: bool = True,
        max_len: int,
        kind: str | None = None,
    ) -> str | None:
        value = self.value.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is missing")
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {type(value).__name__}")
        size = utf8_len(value)
        if size > max_len:
            raise self.fail(key, f"is {size} bytes long (the lexicon allows {max_len})")
        if kind == "at-uri" and not _AT_URI.fullmatch(value):
            raise self.fail(key, f"is not an at:// URI: {_short(value)!r}")
        if kind == "datetime" and not _DATETIME.fullmatch(value):
            raise self.fail(key, f"is not a datetime: {_short(value)!r}")
        if kind == "text" and any(ord(c) < 32 and c not in "\n\t\r" for c in value):
            raise self.fail(key, "contains control characters")
        if kind == "line" and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise self.fail(key, "contains control characters")
        return value

    def integer(
        self, key: str, *, required: bool = False, minimum: int = 0, maximum: int = 1 << 62
    ) -> int | None:
        value = self.value.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is missing")
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"must be an integer, got {type(value).__name__}")
        if value < minimum or value > maximum:
            raise self.fail(key, f"is {value}, outside {minimum}..{maximum}")
        return value

    def obj(self, key: str, *, required: bool = True) -> _Reader | None:
        value = self.value.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is missing")
            return None
        name = f"{self.path}.{key}" if self.path else key
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be an object, got {type(value).__name__}")
        return _Reader(value, self.where, name)

    def array(
        self, key: str, *, required: bool = True, max_items: int, min_items: int = 0
    ) -> list[Any]:
        value = self.value.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is missing")
            return []
        if not isinstance(value, list):
            raise self.fail(key, f"must be an array, got {type(value).__name__}")
        if len(value) > max_items:
            raise self.fail(key, f"has {len(value)} items (at most {max_items})")
        if len(value) < min_items:
            raise self.fail(key, f"has {len(value)} items (at least {min_items})")
        return value

    def item(self, key: str, index: int, value: Any) -> _Reader:
        name = f"{self.path}.{key}" if self.path else key
        return _Reader(value, self.where, f"{name}[{index}]")


def _check_size(value: Any, where: str) -> None:
    if not isinstance(value, Mapping):
        raise RecordError(f"{where}: the record must be an object, got {type(value).__name__}")
    try:
        size = len(json.dumps(value, ensure_ascii=False, default=str))
    except (TypeError, ValueError, RecursionError):
        raise RecordError(f"{where}: the record is not plain JSON") from None
    if size > MAX_RECORD_BYTES:
        raise RecordError(f"{where}: the record is {size} bytes (at most {MAX_RECORD_BYTES})")


def _check_type(value: Mapping[str, Any], where: str, *allowed: str) -> str:
    rtype = value.get("$type")
    if rtype is None:
        return allowed[0]
    if not isinstance(rtype, str) or rtype not in allowed:
        raise RecordError(
            f"{where}: $type is {_short(str(rtype))!r}, expected {' or '.join(allowed)}"
        )
    return rtype


def plain_json(value: Any, where: str, *, depth: int = 0, budget: list[int] | None = None) -> Any:
    """A copy of ``value`` if it is plain JSON data (string keys, bounded depth and size)."""
    budget = budget if budget is not None else [MAX_JSON_ITEMS]
    budget[0] -= 1
    if budget[0] < 0:
        raise RecordError(f"{where}: has more than {MAX_JSON_ITEMS} values")
    if depth > MAX_JSON_DEPTH:
        raise RecordError(f"{where}: is nested more than {MAX_JSON_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and value != value:  # NaN is not JSON
            return None
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, list | tuple):
        return [plain_json(v, where, depth=depth + 1, budget=budget) for v in value]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise RecordError(f"{where}: has a non-string key {_short(repr(k))}")
            out[k] = plain_json(v, where, depth=depth + 1, budget=budget)
        return out
    raise RecordError(f"{where}: holds a {type(value).__name__}, which is not JSON data")


def decode_metadata(value: Any, where: str) -> dict[str, Any] | None:
    """An entry's ``metadata``: ``{"$bytes": base64 msgpack}`` (the lexicon) or an object (atdata)."""
    if value is None:
        return None
    if isinstance(value, Mapping) and set(value) == {"$bytes"}:
        text = value["$bytes"]
        if not isinstance(text, str):
            raise RecordError(f"{where}: metadata.$bytes must be a base64 string")
        if len(text) > MAX_METADATA_BYTES * 4 // 3 + 8:
            raise RecordError(f"{where}: metadata is larger than {MAX_METADATA_BYTES} bytes")
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise RecordError(f"{where}: metadata.$bytes is not valid base64") from None
        try:
            decoded = msgpack.unpackb(
                raw,
                raw=False,
                strict_map_key=True,
                max_bin_len=MAX_METADATA_BYTES,
                max_str_len=MAX_METADATA_BYTES,
                max_array_len=MAX_JSON_ITEMS,
                max_map_len=MAX_JSON_ITEMS,
                max_ext_len=0,
            )
        except Exception:  # msgpack raises many types for bad input
            raise RecordError(f"{where}: metadata is not valid msgpack") from None
        if not isinstance(decoded, dict):
            raise RecordError(f"{where}: metadata must encode a map")
        return plain_json(decoded, f"{where}: metadata")
    if isinstance(value, Mapping):
        return plain_json(value, f"{where}: metadata")
    raise RecordError(f"{where}: field 'metadata' must be bytes or an object")


def encode_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Metadata as the lexicon's ``bytes``: msgpack, then ``{"$bytes": base64}`` in JSON."""
    raw = msgpack.packb(dict(metadata), use_bin_type=True)
    if len(raw) > MAX_METADATA_BYTES:
        raise RecordError(f"metadata is {len(raw)} bytes packed (the lexicon allows 100000)")
    return {"$bytes": base64.b64encode(raw).decode("ascii").rstrip("=")}


def _count_expansions(url: str, limit: int) -> int:
    total = 1
    for body in _BRACE.findall(url):
        match = _RANGE.fullmatch(body)
        n = abs(int(match.group(2)) - int(match.group(1))) + 1 if match else len(body.split(","))
        total *= n
        if total > limit:
            return total
    return total


def expand_record_urls(url: str, where: str, limit: int = MAX_SHARDS) -> list[str]:
    """Brace-expand a URL from a record, refusing nested braces and absurd counts."""
    from ..shards import expand_braces

    if _count_expansions(url, limit) > limit:
        raise RecordError(f"{where}: {_short(url)!r} expands to more than {limit} shards")
    if "{" in _BRACE.sub("", url) or "}" in _BRACE.sub("", url):
        raise RecordError(f"{where}: {_short(url)!r} has nested or unbalanced braces")
    return expand_braces(url)


def _safe_url(url: str, where: str) -> str:
    try:
        return check_untrusted_url(url)
    except SourceError as exc:
        raise RecordError(f"{where}: {exc}") from None


# --- storage ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checksum:
    """A shard's integrity hash (``{"algorithm": "none", "digest": ""}`` when unknown)."""

    algorithm: str
    digest: str

    @classmethod
    def sha256(cls, digest: str | None) -> Checksum:
        return cls("sha256", digest) if digest else NO_CHECKSUM

    def to_record(self) -> dict[str, str]:
        return {"algorithm": self.algorithm, "digest": self.digest}


NO_CHECKSUM = Checksum("none", "")


@dataclass(frozen=True)
class Shard:
    """One shard of an entry: the URL readers stream, its checksum, and what the storage knows."""

    url: str
    checksum: Checksum = NO_CHECKSUM
    size: int | None = None
    cid: str | None = None  # storageBlobs: the blob's CID
    key: str | None = None  # storageS3: the object key


@dataclass(frozen=True)
class Storage:
    """Where an entry's shards live: the ``storage`` union of the entry record."""

    kind: StorageKind
    shards: tuple[Shard, ...]
    bucket: str | None = None
    region: str | None = None
    endpoint: str | None = None

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.shards]

    @classmethod
    def http(cls, shards: Sequence[tuple[str, str | None]]) -> Storage:
        """HTTP(S) shards from ``(url, sha256 or None)`` pairs."""
        return cls("http", tuple(Shard(u, Checksum.sha256(d)) for u, d in shards))

    @classmethod
    def blobs(cls, shards: Sequence[tuple[str, int, str | None]], *, pds: str, did: str) -> Storage:
        """PDS blob shards from ``(cid, size, sha256 or None)`` triples."""
        return cls(
            "blobs",
            tuple(
                Shard(blob_url(pds, did, cid), Checksum.sha256(d), size, cid=cid)
                for cid, size, d in shards
            ),
        )

    @classmethod
    def s3(
        cls,
        bucket: str,
        shards: Sequence[tuple[str, str | None]],
        *,
        region: str | None = None,
        endpoint: str | None = None,
    ) -> Storage:
        """S3 shards from ``(key, sha256 or None)`` pairs in one bucket."""
        return cls(
            "s3",
            tuple(Shard(f"s3://{bucket}/{k}", Checksum.sha256(d), key=k) for k, d in shards),
            bucket=bucket,
            region=region,
            endpoint=endpoint,
        )

    def to_record(self) -> dict[str, Any]:
        if self.kind == "http":
            return {
                "$type": STORAGE_HTTP,
                "shards": [{"url": s.url, "checksum": s.checksum.to_record()} for s in self.shards],
            }
        if self.kind == "s3":
            out: dict[str, Any] = {
                "$type": STORAGE_S3,
                "bucket": self.bucket,
                "shards": [{"key": s.key, "checksum": s.checksum.to_record()} for s in self.shards],
            }
            if self.region:
                out["region"] = self.region
            if self.endpoint:
                out["endpoint"] = self.endpoint
            return out
        if self.kind == "blobs":
            blobs = []
            for s in self.shards:
                if s.cid is None or s.size is None:
                    raise RecordError(f"blob shard {s.url} has no CID or size")
                if s.size > MAX_BLOB_SIZE:
                    raise RecordError(
                        f"blob shard {s.cid} is {s.size} bytes, over the lexicon's {MAX_BLOB_SIZE}"
                    )
                item: dict[str, Any] = {"blob": blob_ref(s.cid, s.size)}
                if s.checksum.algorithm != "none":
                    item["checksum"] = s.checksum.to_record()
                blobs.append(item)
            return {"$type": STORAGE_BLOBS, "blobs": blobs}
        raise RecordError("legacy storageExternal is read, never written")


def blob_ref(cid: str, size: int, mime_type: str = TAR_MIME_TYPE) -> dict[str, Any]:
    """The JSON form of a blob reference, as records carry it."""
    return {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime_type, "size": size}


def _storage_kind(stype: str) -> str | None:
    for ns in (NAMESPACE, LEGACY_NAMESPACE):
        prefix = f"{ns}.storage"
        if stype.startswith(prefix):
            return stype[len(prefix) :]
    return None


def _parse_checksum(r: _Reader, key: str) -> Checksum:
    sub = r.obj(key, required=False)
    if sub is None:
        return NO_CHECKSUM
    algorithm = sub.string("algorithm", max_len=MAX_CHECKSUM_ALGORITHM, kind="line")
    digest = sub.string("digest", max_len=MAX_CHECKSUM_DIGEST, kind="line")
    assert algorithm is not None and digest is not None
    if algorithm != "none" and not _HEX.fullmatch(digest):
        raise sub.fail("digest", "must be hexadecimal")
    return Checksum(algorithm.lower(), digest.lower())


def parse_storage(value: Any, where: str, *, did: str, pds: str) -> Storage:
    """The ``storage`` union of an entry record; every URL checked, blobs turned into getBlob URLs."""
    r = _Reader(value, where, "storage")
    stype = value.get("$type")
    if not isinstance(stype, str):
        raise r.fail("$type", "is missing (storage must name its kind)")
    kind = _storage_kind(stype)
    if kind == "Http":
        shards = []
        items = r.array("shards", max_items=MAX_SHARDS, min_items=1)
        for i, item in enumerate(items):
            s = r.item("shards", i, item)
            url = s.string("url", max_len=MAX_SHARD_URL)
            assert url is not None
            if _count_expansions(url, MAX_SHARDS) > MAX_SHARDS:
                raise RecordError(
                    f"{where}: {_short(url)!r} expands to more than {MAX_SHARDS} shards"
                )
            shards.append(Shard(_safe_url(url, where), _parse_checksum(s, "checksum")))
        return Storage("http", tuple(shards))
    if kind == "S3":
        bucket = r.string("bucket", max_len=MAX_S3_BUCKET)
        assert bucket is not None
        if not _BUCKET.fullmatch(bucket):
            raise r.fail("bucket", f"is not a bucket name: {_short(bucket)!r}")
        region = r.string("region", required=False, max_len=MAX_S3_REGION, kind="line")
        endpoint = r.string("endpoint", required=False, max_len=MAX_URI)
        if endpoint is not None:
            endpoint = _safe_url(endpoint, where)
            if not endpoint.startswith(("http://", "https://")):
                raise r.fail("endpoint", "must be an http(s) URL")
        shards = []
        for i, item in enumerate(r.array("shards", max_items=MAX_SHARDS, min_items=1)):
            s = r.item("shards", i, item)
            key = s.string("key", max_len=MAX_S3_KEY, kind="line")
            assert key is not None
            if not key or key.startswith("/"):
                raise s.fail("key", f"is not an object key: {_short(key)!r}")
            url = _safe_url(f"s3://{bucket}/{key}", where)
            shards.append(Shard(url, _parse_checksum(s, "checksum"), key=key))
        return Storage("s3", tuple(shards), bucket=bucket, region=region, endpoint=endpoint)
    if kind == "Blobs":
        shards = []
        for i, item in enumerate(r.array("blobs", max_items=MAX_SHARDS, min_items=1)):
            s = r.item("blobs", i, item)
            blob = s.obj("blob")
            assert blob is not None
            cid = _blob_cid(blob)
            size = blob.integer("size", required=False, maximum=1 << 40)
            mime = blob.string("mimeType", required=False, max_len=100, kind="line")
            if mime is not None and mime not in (TAR_MIME_TYPE, "application/octet-stream"):
                raise blob.fail("mimeType", f"is {_short(mime)!r}, not {TAR_MIME_TYPE}")
            url = _safe_url(blob_url(pds, did, cid), where)
            shards.append(Shard(url, _parse_checksum(s, "checksum"), size, cid=cid))
        return Storage("blobs", tuple(shards))
    if kind == "External":
        urls: list[str] = []
        for i, item in enumerate(r.array("urls", max_items=MAX_SHARDS, min_items=1)):
            if not isinstance(item, str):
                raise r.fail(f"urls[{i}]", "must be a string")
            if utf8_len(item) > MAX_EXTERNAL_URL:
                raise r.fail(f"urls[{i}]", f"is longer than {MAX_EXTERNAL_URL} bytes")
            urls.extend(expand_record_urls(item, where, MAX_SHARDS - len(urls)))
        return Storage("external", tuple(Shard(_safe_url(u, where)) for u in urls))
    raise r.fail("$type", f"names an unknown storage kind {_short(stype)!r}")


def _blob_cid(blob: _Reader) -> str:
    ref = blob.value.get("ref")
    # the legacy blob form is {"cid": ..., "mimeType": ...}
    link = ref.get("$link") if isinstance(ref, Mapping) else blob.value.get("cid")
    if not isinstance(link, str) or not _CID.fullmatch(link):
        raise blob.fail("ref", "must be a blob CID link")
    return link


# --- entries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSize:
    samples: int | None = None
    bytes: int | None = None
    shards: int | None = None

    def to_record(self) -> dict[str, int]:
        out = {}
        if self.samples is not None:
            out["samples"] = self.samples
        if self.bytes is not None:
            out["bytes"] = self.bytes
        if self.shards is not None:
            out["shards"] = self.shards
        return out


@dataclass
class EntryRecord:
    """A ``science.alt.dataset.entry``: a named dataset, its schema and where its shards are."""

    name: str
    schema_ref: str
    storage: Storage
    created_at: str = field(default_factory=now_iso)
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    license: str | None = None
    size: DatasetSize | None = None
    metadata: dict[str, Any] | None = None
    metadata_schema_ref: str | None = None
    content_metadata: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        """The record JSON (validated against the lexicon's limits while building)."""
        _check_build(self.name, "name", MAX_ENTRY_NAME)
        _check_build(self.schema_ref, "schemaRef", MAX_URI)
        if not _AT_URI.fullmatch(self.schema_ref):
            raise RecordError(f"schemaRef {self.schema_ref!r} is not an at:// URI")
        out: dict[str, Any] = {
            "$type": ENTRY,
            "name": self.name,
            "schemaRef": self.schema_ref,
            "storage": self.storage.to_record(),
            "createdAt": iso_datetime(self.created_at),
        }
        if self.description:
            out["description"] = _cut(self.description, MAX_DESCRIPTION)
        if self.tags:
            if len(self.tags) > MAX_TAGS:
                raise RecordError(f"{len(self.tags)} tags (the lexicon allows {MAX_TAGS})")
            for tag in self.tags:
                _check_build(tag, "tag", MAX_TAG)
            out["tags"] = list(self.tags)
        if self.size is not None and self.size.to_record():
            out["size"] = self.size.to_record()
        if self.license:
            _check_build(self.license, "license", MAX_LICENSE)
            out["license"] = self.license
        if self.metadata:
            out["metadata"] = encode_metadata(self.metadata)
        if self.metadata_schema_ref:
            out["metadataSchemaRef"] = self.metadata_schema_ref
        if self.content_metadata is not None:
            out["contentMetadata"] = dict(self.content_metadata)
        return out

    @classmethod
    def parse(cls, value: Any, *, uri: str, did: str, pds: str) -> EntryRecord:
        """Validate and read an entry record (either namespace) fetched from ``did``'s PDS."""
        _check_size(value, uri)
        _check_type(value, uri, ENTRY, f"{LEGACY_NAMESPACE}.record")
        r = _Reader(value, uri)
        name = r.string("name", max_len=MAX_ENTRY_NAME, kind="line")
        schema_ref = r.string("schemaRef", max_len=MAX_URI, kind="at-uri")
        storage = (
            parse_storage(r.value.get("storage"), uri, did=did, pds=pds)
            if r.has("storage")
            else None
        )
        if storage is None:
            raise r.fail("storage", "is missing")
        created_at = r.string("createdAt", max_len=64, kind="datetime")
        description = r.string("description", required=False, max_len=MAX_DESCRIPTION, kind="text")
        tags = []
        for i, tag in enumerate(r.array("tags", required=False, max_items=MAX_TAGS)):
            if not isinstance(tag, str) or utf8_len(tag) > MAX_TAG:
                raise r.fail(f"tags[{i}]", f"must be a string of at most {MAX_TAG} bytes")
            tags.append(tag)
        license_ = r.string("license", required=False, max_len=MAX_LICENSE, kind="line")
        size = None
        size_r = r.obj("size", required=False)
        if size_r is not None:
            size = DatasetSize(
                size_r.integer("samples"),
                size_r.integer("bytes"),
                size_r.integer("shards", minimum=1),
            )
        metadata = decode_metadata(value.get("metadata"), uri)
        msr = r.string("metadataSchemaRef", required=False, max_len=MAX_URI, kind="at-uri")
        content = value.get("contentMetadata")
        if content is not None:
            if not isinstance(content, Mapping):
                raise r.fail("contentMetadata", "must be an object")
            content = plain_json(content, f"{uri}: contentMetadata")
        assert name is not None and schema_ref is not None and created_at is not None
        return cls(
            name=name,
            schema_ref=schema_ref,
            storage=storage,
            created_at=created_at,
            description=description,
            tags=tags,
            license=license_,
            size=size,
            metadata=metadata,
            metadata_schema_ref=msr,
            content_metadata=content,
        )

    def to_index_entry(
        self,
        *,
        uri: str,
        cid: str,
        did: str,
        handle: str | None,
        pds: str,
        label_uri: str | None = None,
    ) -> IndexEntry:
        """The ``IndexEntry`` readers use: streamable URLs, the schema's at:// URI, metadata."""
        urls = self.storage.urls
        meta: dict[str, Any] = {}
        if self.description:
            meta["description"] = self.description
        if self.tags:
            meta["tags"] = list(self.tags)
        if self.license:
            meta["license"] = self.license
        if self.size is not None:
            if self.size.samples is not None:
                meta["samples"] = self.size.samples
            if self.size.bytes is not None:
                meta["bytes"] = self.size.bytes
            if self.size.shards is not None:
                meta["shards"] = self.size.shards
        checksums = {
            s.url: s.checksum.digest
            for s in self.storage.shards
            if s.checksum.algorithm == "sha256"
        }
        if checksums:
            meta["checksums"] = checksums
        sizes = {s.url: s.size for s in self.storage.shards if s.size is not None}
        if sizes:
            meta["shard_bytes"] = sizes
        extra = dict(self.metadata or {})
        per_shard = extra.get("shard_samples")
        if (
            isinstance(per_shard, list)
            and len(per_shard) == len(urls)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in per_shard)
        ):
            meta["shard_samples"] = dict(zip(urls, per_shard, strict=True))
        if extra:
            meta["record_metadata"] = extra
        if self.content_metadata is not None:
            meta["content_metadata"] = self.content_metadata
        meta["atproto"] = {
            "entry_uri": uri,
            "entry_record_cid": cid,
            "did": did,
            "handle": handle,
            "pds": pds,
            "schema_uri": self.schema_ref,
            "storage": self.storage.kind,
            "created_at": self.created_at,
            **({"label_uri": label_uri} if label_uri else {}),
            **(
                {
                    "s3": {
                        "bucket": self.storage.bucket,
                        "region": self.storage.region,
                        "endpoint": self.storage.endpoint,
                    }
                }
                if self.storage.kind == "s3"
                else {}
            ),
        }
        entry = IndexEntry.create(self.name, self.schema_ref, urls, meta, repo=ATMOSPHERE_REPO)
        entry.created_at = self.created_at
        return entry


def _check_build(value: str, what: str, limit: int) -> None:
    if not isinstance(value, str) or not value:
        raise RecordError(f"{what} must be a non-empty string")
    if utf8_len(value) > limit:
        raise RecordError(f"{what} {_short(value)!r} is longer than the lexicon's {limit} bytes")


def _cut(text: str, limit: int) -> str:
    """Cut text to at most ``limit`` UTF-8 bytes (ending in …) rather than refuse it."""
    if utf8_len(text) <= limit:
        return text
    data = text.encode("utf-8")[: limit - 3]
    return data.decode("utf-8", "ignore") + "…"


# --- labels ----------------------------------------------------------------------------------------


@dataclass
class LabelRecord:
    """A ``science.alt.dataset.label``: a human name (and version) for an entry's at:// URI."""

    name: str
    dataset_uri: str
    created_at: str = field(default_factory=now_iso)
    version: str | None = None
    description: str | None = None

    def to_record(self) -> dict[str, Any]:
        _check_build(self.name, "label name", MAX_LABEL_NAME)
        _check_build(self.dataset_uri, "datasetUri", MAX_URI)
        if not _AT_URI.fullmatch(self.dataset_uri):
            raise RecordError(f"datasetUri {self.dataset_uri!r} is not an at:// URI")
        out: dict[str, Any] = {
            "$type": LABEL,
            "name": self.name,
            "datasetUri": self.dataset_uri,
            "createdAt": iso_datetime(self.created_at),
        }
        if self.version:
            _check_build(self.version, "label version", MAX_LABEL_VERSION)
            out["version"] = self.version
        if self.description:
            out["description"] = _cut(self.description, MAX_DESCRIPTION)
        return out

    @classmethod
    def parse(cls, value: Any, *, uri: str) -> LabelRecord:
        _check_size(value, uri)
        _check_type(value, uri, LABEL, f"{LEGACY_NAMESPACE}.label")
        r = _Reader(value, uri)
        name = r.string("name", max_len=MAX_LABEL_NAME, kind="line")
        dataset_uri = r.string("datasetUri", max_len=MAX_URI, kind="at-uri")
        created_at = r.string("createdAt", max_len=64, kind="datetime")
        version = r.string("version", required=False, max_len=MAX_LABEL_VERSION, kind="line")
        description = r.string("description", required=False, max_len=MAX_DESCRIPTION, kind="text")
        assert name is not None and dataset_uri is not None and created_at is not None
        return cls(name, dataset_uri, created_at, version or None, description)


# --- lenses ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeReference:
    """Where a lens function's code lives. It is a reference to read, never code to run."""

    repository: str
    commit: str
    path: str
    branch: str | None = None
    language: str | None = None

    def to_record(self) -> dict[str, str]:
        _check_build(self.repository, "repository", MAX_CODE_REPOSITORY)
        _check_build(self.commit, "commit", MAX_CODE_COMMIT)
        _check_build(self.path, "path", MAX_CODE_PATH)
        out = {"repository": self.repository, "commit": self.commit, "path": self.path}
        if self.branch:
            _check_build(self.branch, "branch", MAX_CODE_BRANCH)
            out["branch"] = self.branch
        if self.language:
            _check_build(self.language, "language", MAX_LANGUAGE)
            out["language"] = self.language
        return out

    @classmethod
    def parse(cls, r: _Reader) -> CodeReference:
        repository = r.string("repository", max_len=MAX_CODE_REPOSITORY, kind="line")
        commit = r.string("commit", max_len=MAX_CODE_COMMIT, kind="line")
        path = r.string("path", max_len=MAX_CODE_PATH, kind="line")
        branch = r.string("branch", required=False, max_len=MAX_CODE_BRANCH, kind="line")
        language = r.string("language", required=False, max_len=MAX_LANGUAGE, kind="line")
        assert repository is not None and commit is not None and path is not None
        return cls(repository, commit, path, branch, language)


@dataclass
class LensRecord:
    """A ``science.alt.dataset.lens``: two schemas and references to getter/putter code."""

    name: str
    source_schema: str
    target_schema: str
    getter_code: CodeReference
    putter_code: CodeReference
    created_at: str = field(default_factory=now_iso)
    description: str | None = None
    language: str | None = None
    source_schema_version: str | None = None
    target_schema_version: str | None = None
    metadata: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        _check_build(self.name, "lens name", MAX_LENS_NAME)
        for what, uri in (
            ("sourceSchema", self.source_schema),
            ("targetSchema", self.target_schema),
        ):
            if not _AT_URI.fullmatch(uri) or utf8_len(uri) > MAX_URI:
                raise RecordError(f"{what} {uri!r} is not an at:// URI")
        out: dict[str, Any] = {
            "$type": LENS,
            "name": self.name,
            "sourceSchema": self.source_schema,
            "targetSchema": self.target_schema,
            "getterCode": self.getter_code.to_record(),
            "putterCode": self.putter_code.to_record(),
            "createdAt": iso_datetime(self.created_at),
        }
        if self.description:
            out["description"] = _cut(self.description, MAX_LENS_DESCRIPTION)
        if self.language:
            _check_build(self.language, "language", MAX_LANGUAGE)
            out["language"] = self.language
        for key, value in (
            ("sourceSchemaVersion", self.source_schema_version),
            ("targetSchemaVersion", self.target_schema_version),
        ):
            if value:
                _check_build(value, key, MAX_LENS_VERSION_RANGE)
                out[key] = value
        if self.metadata:
            out["metadata"] = plain_json(self.metadata, "lens metadata")
        return out

    @classmethod
    def parse(cls, value: Any, *, uri: str) -> LensRecord:
        _check_size(value, uri)
        _check_type(value, uri, LENS, f"{LEGACY_NAMESPACE}.lens")
        r = _Reader(value, uri)
        name = r.string("name", max_len=MAX_LENS_NAME, kind="line")
        source = r.string("sourceSchema", max_len=MAX_URI, kind="at-uri")
        target = r.string("targetSchema", max_len=MAX_URI, kind="at-uri")
        getter = r.obj("getterCode")
        putter = r.obj("putterCode")
        assert getter is not None and putter is not None
        created_at = r.string("createdAt", max_len=64, kind="datetime")
        description = r.string(
            "description", required=False, max_len=MAX_LENS_DESCRIPTION, kind="text"
        )
        language = r.string("language", required=False, max_len=MAX_LANGUAGE, kind="line")
        ssv = r.string("sourceSchemaVersion", required=False, max_len=MAX_LENS_VERSION_RANGE)
        tsv = r.string("targetSchemaVersion", required=False, max_len=MAX_LENS_VERSION_RANGE)
        meta = value.get("metadata")
        if meta is not None:
            if not isinstance(meta, Mapping):
                raise r.fail("metadata", "must be an object")
            meta = plain_json(meta, f"{uri}: metadata")
        assert name is not None and source is not None and target is not None
        assert created_at is not None
        return cls(
            name,
            source,
            target,
            CodeReference.parse(getter),
            CodeReference.parse(putter),
            created_at,
            description,
            language,
            ssv,
            tsv,
            meta,
        )


# --- schemas ---------------------------------------------------------------------------------------


def schema_to_record(
    local: Mapping[str, Any], *, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``science.alt.dataset.schema`` record for a local schema record (JSON Schema form).

    A PDS stores records as DAG-CBOR, which sorts map keys, so the order of ``properties`` does
    not survive; the field order is kept in the open ``metadata`` object as ``fieldOrder``.
    """
    try:
        names = [f.name for f in schema_mod.fields_from_record(local)]
        meta = {"fieldOrder": names, **dict(metadata or {})}
        out = schema_mod.to_atproto_record(local, metadata=meta)
    except SchemaError as exc:
        raise RecordError(f"cannot publish schema: {exc}") from None
    out["createdAt"] = iso_datetime(out.get("createdAt"))
    return out


def parse_schema(value: Any, *, uri: str) -> dict[str, Any]:
    """A schema record from the network → the local form (``Index.decode_schema`` reads it).

    Field names, types, nesting and sizes are validated by ``schema``; nothing in it is executed.
    Fields come in ``metadata.fieldOrder`` order when that names exactly the fields (else in the
    order of ``required``, then the rest). The local form's ``$ref`` is the record's at:// URI.
    """
    _check_size(value, uri)
    rtype = _check_type(value, uri, SCHEMA, *LEGACY_SCHEMAS)
    r = _Reader(value, uri)
    r.string("name", max_len=schema_mod.ATPROTO_MAX_NAME, kind="line")
    r.string("version", max_len=schema_mod.MAX_VERSION_LENGTH, kind="line")
    r.string("createdAt", required=False, max_len=64, kind="datetime")
    r.string("description", required=False, max_len=MAX_DESCRIPTION, kind="text")
    r.obj("schema")
    r.obj("metadata", required=False)
    normalized = dict(value)
    if rtype != SCHEMA:
        normalized["$type"] = SCHEMA
    try:
        local = schema_mod.record_from_atproto(normalized)
        schema_mod.fields_from_record(local)
    except SchemaError as exc:
        raise RecordError(f"{uri}: {exc}") from None
    local["fields"] = _ordered_fields(local["fields"], value)
    local["$ref"] = uri
    return local


def _ordered_fields(fields: list[dict[str, Any]], value: Mapping[str, Any]) -> list[dict[str, Any]]:
    by_name = {f["name"]: f for f in fields}
    meta = value.get("metadata")
    order = meta.get("fieldOrder") if isinstance(meta, Mapping) else None
    if isinstance(order, list) and sorted(map(str, order)) == sorted(by_name):
        return [by_name[name] for name in order]
    schema = value.get("schema")
    required = schema.get("required") if isinstance(schema, Mapping) else None
    if isinstance(required, list):
        first = [by_name[n] for n in dict.fromkeys(required) if isinstance(n, str) and n in by_name]
        rest = [f for f in fields if f["name"] not in set(required)]
        return first + rest
    return fields


def schema_signature(value: Mapping[str, Any]) -> str | None:
    """What makes two schema records the same schema: name, version and the JSON Schema body
    (compared with sorted keys, because a PDS reorders them), or ``None`` if it is malformed."""
    try:
        body = value["schema"]
        if not isinstance(body, Mapping):
            return None
        return json.dumps(
            [value["name"], value["version"], body],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
    except (KeyError, TypeError, ValueError):
        return None
