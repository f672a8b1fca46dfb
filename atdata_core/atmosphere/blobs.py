"""Shards as PDS blobs: ``PDSBlobStore`` writes them, ``getBlob`` URLs read them back (streamed).

A PDS keeps an uploaded blob only once a record references it (until then ``getBlob`` answers 400
and the blob is eventually discarded), and it refuses blobs over its size limit. So:

- each shard is spooled to a local temporary file while it is written and uploaded when it is
  finished, never larger than ``max_blob_size`` (the writer rolls over before the limit; a single
  sample that cannot fit raises ``BlobTooLargeError`` saying what to do);
- whoever writes through the store must create the record that references the blobs right after
  ``commit()`` (``promote.promote_dataset`` does: the entry record lists them in
  ``storageBlobs``); ``blob_shards(urls)`` gives what that record needs.

Reading needs nothing special: a blob shard's URL is ``{pds}/xrpc/com.atproto.sync.getBlob?did=…&cid=…``,
an ordinary HTTP(S) URL that ``sources.URLSource`` streams without downloading it first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import libipld

from ..errors import AtmosphereError, BlobTooLargeError, StoreError
from ..shards import ShardWriter
from ._http import XrpcCallError
from .client import AtmosphereClient, blob_url, parse_blob_url
from .lexicons import MAX_BLOB_SIZE, TAR_MIME_TYPE


def blob_cid(sha256_hex: str) -> str:
    """The CID a PDS gives a blob with this SHA-256: CIDv1, raw codec, sha2-256, base32."""
    digest = bytes.fromhex(sha256_hex)
    if len(digest) != 32:
        raise ValueError("a SHA-256 digest is 32 bytes")
    return str(libipld.encode_cid(bytes((0x01, 0x55, 0x12, 0x20)) + digest))


def file_sha256(path: str, *, chunk: int = 1 << 20) -> tuple[str, int]:
    """``(hex digest, size)`` of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def too_large_message(what: str, size: int, limit: int) -> str:
    return (
        f"{what} is {size:,} bytes, over the PDS blob limit of {limit:,} bytes: write the dataset "
        f"with smaller shards (maxsize={limit - (1 << 20):,} or fewer samples per shard, "
        "e.g. index.write(..., maxsize=...)) and promote that"
    )


@dataclass(frozen=True)
class UploadedBlob:
    """A blob on the PDS: its getBlob URL, CID, size and SHA-256."""

    url: str
    cid: str
    size: int
    sha256: str

    def ref(self) -> dict[str, Any]:
        return {
            "$type": "blob",
            "ref": {"$link": self.cid},
            "mimeType": TAR_MIME_TYPE,
            "size": self.size,
        }


class _BlobShardOutput:
    """One shard spooled to a temporary file, uploaded as a blob by ``finish()``.

    The spool file has no name (``O_TMPFILE`` on Linux, unlinked at once elsewhere), so a writer
    killed mid-shard leaves nothing behind for anyone to clean up.
    """

    def __init__(self, store: PDSBlobStore, label: str) -> None:
        self.store = store
        self.label = label
        self._f: BinaryIO = tempfile.TemporaryFile(
            prefix=".atdata-blob-", suffix=".tar", dir=store.spool_dir
        )
        self._hash = hashlib.sha256()
        self._size = 0

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.store.max_blob_size:
            raise BlobTooLargeError(
                too_large_message(f"shard {self.label}", self._size, self.store.max_blob_size)
                + " (one sample alone may be too big for a blob)"
            )
        self._hash.update(data)
        self._f.write(data)

    def finish(self) -> str:
        try:
            self._f.flush()
            blob = self.store.upload(
                self._f, f"shard {self.label}", self._size, self._hash.hexdigest()
            )
        finally:
            self._f.close()
        return blob.url

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._f.close()


class PDSBlobStore:
    """A ``DataStore`` whose shards are blobs on the logged-in user's PDS (``kind = "pds"``).

    Blobs uploaded through it are only kept by the PDS once a record references them: create the
    entry record (``blob_shards``) right after the writer's ``commit()``.
    """

    kind = "pds"

    def __init__(
        self,
        client: AtmosphereClient,
        *,
        max_blob_size: int | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        progress: Callable[[int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> None:
        limit = MAX_BLOB_SIZE if max_blob_size is None else int(max_blob_size)
        if limit <= 0 or limit > MAX_BLOB_SIZE:
            raise ValueError(
                f"max_blob_size must be between 1 and {MAX_BLOB_SIZE} (the lexicon's limit)"
            )
        self.client = client
        self.max_blob_size = limit
        self.spool_dir = os.fspath(spool_dir) if spool_dir is not None else None
        self.progress = progress
        self.cancel = cancel
        self.uploaded: dict[str, UploadedBlob] = {}

    def __repr__(self) -> str:
        return f"PDSBlobStore({self.client!r}, max_blob_size={self.max_blob_size})"

    def upload_file(self, path: str, *, sha256: str | None = None) -> UploadedBlob:
        """Upload one shard file as a blob (streamed) and check the PDS stored exactly those bytes."""
        size = os.path.getsize(path)
        if size > self.max_blob_size:
            raise BlobTooLargeError(too_large_message(f"shard {path}", size, self.max_blob_size))
        if sha256 is None:
            sha256, size = file_sha256(path)
        return self.upload(path, f"shard {path}", size, sha256)

    def upload(self, source: str | BinaryIO, what: str, size: int, sha256: str) -> UploadedBlob:
        """Upload ``source`` (a path or an open file) of ``size`` bytes hashing to ``sha256``."""
        info = self.client.require_login()
        expected = blob_cid(sha256)
        try:
            ref = self.client.upload_blob(
                source, mime_type=TAR_MIME_TYPE, progress=self.progress, cancel=self.cancel
            )
        except XrpcCallError as exc:
            if exc.status == 413 or exc.error in ("BlobTooLarge", "PayloadTooLargeError"):
                raise BlobTooLargeError(
                    f"{info.pds} refused {what} ({size:,} bytes) as too large: its blob "
                    f"limit is below {self.max_blob_size:,} bytes. Set a smaller max_blob_size "
                    "and write the dataset again with a smaller maxsize"
                ) from None
            raise
        cid = ref["ref"]["$link"]
        if cid != expected or ref.get("size", size) != size:
            raise AtmosphereError(
                f"the PDS stored {what} as blob {cid} ({ref.get('size')} bytes) but its bytes "
                f"hash to {expected} ({size} bytes): the file changed during the upload, or the "
                "PDS altered it"
            )
        blob = UploadedBlob(blob_url(info.pds, info.did, cid), cid, size, sha256)
        self.uploaded[blob.url] = blob
        return blob

    def shard_writer(
        self,
        prefix: str,
        *,
        maxcount: int | None = 10000,
        maxsize: int | None = None,
        manifest: bool = False,
    ) -> ShardWriter:
        """A writer whose finished shards are uploaded as blobs (each at most ``max_blob_size``)."""
        self.client.require_login()
        if manifest:
            raise StoreError(
                "PDS blob shards cannot carry manifest sidecars; write without manifest=True"
            )
        if maxsize is None:
            maxsize = self.max_blob_size
        elif maxsize > self.max_blob_size:
            raise BlobTooLargeError(
                f"maxsize={maxsize:,} is over the PDS blob limit of {self.max_blob_size:,} bytes: "
                f"pass maxsize={self.max_blob_size:,} or less"
            )
        label = prefix or "dataset"
        return ShardWriter(
            maxcount=maxcount,
            maxsize=maxsize,
            open_output=lambda i: _BlobShardOutput(self, f"{label}#{i}"),
        )

    def blob_shards(self, urls: list[str]) -> list[UploadedBlob]:
        """What an entry record needs for shards this store uploaded, in ``urls`` order."""
        missing = [u for u in urls if u not in self.uploaded]
        if missing:
            raise StoreError(
                f"{len(missing)} shard(s) were not uploaded by this store: {missing[0]}"
            )
        return [self.uploaded[u] for u in urls]

    def delete_urls(self, urls: list[str]) -> None:
        """Nothing to do: a PDS discards unreferenced blobs itself, and deletes referenced ones
        with the records that reference them."""

    def list_urls(self, prefix: str = "") -> list[str]:
        """The getBlob URLs of every blob the user's repository references."""
        info = self.client.require_login()
        out: list[str] = []
        cursor: str | None = None
        from ._http import get_json

        while True:
            params: dict[str, Any] = {"did": info.did, "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            data = get_json(
                self.client._http,
                f"{info.pds}/xrpc/com.atproto.sync.listBlobs",
                params,
                what="listing blobs",
            )
            cids = data.get("cids", []) if isinstance(data, dict) else []
            out.extend(blob_url(info.pds, info.did, c) for c in cids if isinstance(c, str))
            next_cursor = data.get("cursor") if isinstance(data, dict) else None
            if not cids or not isinstance(next_cursor, str) or next_cursor == cursor:
                return out
            cursor = next_cursor

    def read_url(self, url: str) -> str:
        return url

    def supports_streaming(self) -> bool:
        return True


def is_blob_url(url: str) -> bool:
    return parse_blob_url(url) is not None
