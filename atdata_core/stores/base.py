"""The seam for where shards live: local disk, S3-compatible storage, PDS blobs."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..shards import ShardWriter


@runtime_checkable
class DataStore(Protocol):
    """Writes shards (all or nothing) and tells the index how to read them back."""

    #: ``"disk"``, ``"s3"`` or ``"pds"``.
    kind: str

    def shard_writer(
        self,
        prefix: str,
        *,
        maxcount: int | None = 10000,
        maxsize: int | None = None,
        manifest: bool = False,
    ) -> ShardWriter:
        """A writer whose shards land under ``prefix`` and stay invisible until ``commit()``."""
        ...

    def delete_urls(self, urls: list[str]) -> None:
        """Remove shards (and their manifests) that a failed registration left behind."""
        ...

    def list_urls(self, prefix: str = "") -> list[str]:
        """Every shard URL in the store under ``prefix`` (for ``gc``)."""
        ...

    def read_url(self, url: str) -> str:
        """The URL readers should open for a stored shard (often ``url`` itself)."""
        ...

    def supports_streaming(self) -> bool: ...
