"""Index entries: what the index knows about one dataset, and its content address (CID)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import libipld
import msgpack

from ..refs import LOCAL_REPO


def entry_cid(schema_ref: str, data_urls: list[str]) -> str:
    """CIDv1 (dag-cbor, sha2-256, base32) of ``{"schema_ref", "data_urls"}``, as atdata computes it."""
    encoded = libipld.encode_dag_cbor({"schema_ref": schema_ref, "data_urls": list(data_urls)})
    digest = hashlib.sha256(encoded).digest()
    return libipld.encode_cid(bytes((0x01, 0x71, 0x12, 0x20)) + digest)


def utc_now() -> str:
    """Timestamps as SQLite's ``datetime('now')`` writes them, so atdata's rows and ours sort together."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def pack_metadata(metadata: dict[str, Any] | None) -> bytes | None:
    return None if metadata is None else msgpack.packb(metadata, use_bin_type=True)


def unpack_metadata(data: bytes | None) -> dict[str, Any] | None:
    if not data:
        return None
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        return {"_unreadable_metadata": True}
    return value if isinstance(value, dict) else {"_value": value}


#: Metadata keys the index itself writes and reads back through ``IndexEntry`` properties (sizes,
#: checksums, descriptive fields, promotion state); everything else in metadata is the user's.
MANAGED_METADATA_KEYS = frozenset(
    {
        "samples",
        "shards",
        "bytes",
        "checksums",
        "shard_bytes",
        "shard_samples",
        "manifests",
        "description",
        "tags",
        "license",
        "atproto",
    }
)


@dataclass
class IndexEntry:
    """One dataset: a schema, the shard URLs, and metadata (sizes, checksums, promotion state).

    Statistics live in ``metadata`` (as atdata keeps them) and are exposed as properties; entries
    written by atdata simply have fewer of them.
    """

    cid: str
    name: str
    schema_ref: str
    data_urls: list[str]
    metadata: dict[str, Any] | None = None
    created_at: str = field(default_factory=utc_now)
    legacy_uuid: str | None = None
    repo: str = LOCAL_REPO

    @classmethod
    def create(
        cls,
        name: str,
        schema_ref: str,
        data_urls: list[str],
        metadata: dict[str, Any] | None = None,
        *,
        repo: str = LOCAL_REPO,
    ) -> IndexEntry:
        return cls(
            entry_cid(schema_ref, data_urls), name, schema_ref, list(data_urls), metadata, repo=repo
        )

    def _meta(self, key: str, default: Any = None) -> Any:
        return (self.metadata or {}).get(key, default)

    @property
    def samples(self) -> int | None:
        return self._meta("samples")

    @property
    def shards(self) -> int:
        return int(self._meta("shards", len(self.data_urls)))

    @property
    def size_bytes(self) -> int | None:
        return self._meta("bytes")

    @property
    def checksums(self) -> dict[str, str]:
        value = self._meta("checksums", {})
        return value if isinstance(value, dict) else {}

    @property
    def shard_sizes(self) -> dict[str, int]:
        value = self._meta("shard_bytes", {})
        return value if isinstance(value, dict) else {}

    @property
    def shard_samples(self) -> dict[str, int]:
        value = self._meta("shard_samples", {})
        return value if isinstance(value, dict) else {}

    @property
    def manifests(self) -> dict[str, str]:
        value = self._meta("manifests", {})
        return value if isinstance(value, dict) else {}

    @property
    def description(self) -> str | None:
        return self._meta("description")

    @property
    def tags(self) -> list[str]:
        return list(self._meta("tags", []) or [])

    @property
    def license(self) -> str | None:
        return self._meta("license")

    @property
    def at_uri(self) -> str | None:
        """The ``at://`` URI of the published entry record, once promoted."""
        atproto = self._meta("atproto") or {}
        return atproto.get("entry_uri") if isinstance(atproto, dict) else None

    @property
    def promoted(self) -> bool:
        return self.at_uri is not None

    @property
    def storage(self) -> str:
        """Where the shards live, in a word: ``disk``, ``s3``, ``http``, ``pds`` or ``mixed``."""
        kinds = {_storage_kind(u) for u in self.data_urls}
        return kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "none")

    def to_dict(self) -> dict[str, Any]:
        return {
            "cid": self.cid,
            "name": self.name,
            "repo": self.repo,
            "schema_ref": self.schema_ref,
            "data_urls": list(self.data_urls),
            "metadata": self.metadata,
            "created_at": self.created_at,
            "legacy_uuid": self.legacy_uuid,
        }


def _storage_kind(url: str) -> str:
    if url.startswith("s3://"):
        return "s3"
    if "/xrpc/com.atproto.sync.getBlob" in url or url.startswith("at://"):
        return "pds"
    if url.startswith(("http://", "https://")):
        return "http"
    return "disk"


@dataclass(frozen=True)
class Page:
    """One page of a listing. ``total`` may be ``None`` when counting would be slow."""

    items: list[Any]
    offset: int
    total: int | None
    next_cursor: str | None = None
