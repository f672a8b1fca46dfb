"""Shards on local disk, under one root directory (the default store beside the SQLite index)."""

from __future__ import annotations

import contextlib
import os
import uuid

from ..errors import StoreError
from ..shards import ShardWriter, manifest_url

PARTIAL_MARK = ".partial-"


class LocalDiskStore:
    """Each write goes to ``<root>/<prefix>/<token>/data-%06d.tar``: never over an older dataset."""

    kind = "disk"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(os.fspath(root))

    def __repr__(self) -> str:
        return f"LocalDiskStore({self.root!r})"

    def _safe_dir(self, prefix: str) -> str:
        path = os.path.abspath(os.path.join(self.root, prefix))
        if os.path.commonpath([path, self.root]) != self.root:
            raise StoreError(f"prefix {prefix!r} would write outside the store {self.root}")
        return path

    def shard_writer(
        self,
        prefix: str,
        *,
        maxcount: int | None = 10000,
        maxsize: int | None = None,
        manifest: bool = False,
    ) -> ShardWriter:
        directory = os.path.join(self._safe_dir(prefix), uuid.uuid4().hex[:12])
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {directory}: {exc.strerror}") from None
        return ShardWriter(
            os.path.join(directory, "data-%06d.tar"),
            maxcount=maxcount,
            maxsize=maxsize,
            manifest=manifest,
        )

    def delete_urls(self, urls: list[str]) -> None:
        for url in urls:
            path = url.removeprefix("file://")
            if os.path.commonpath([os.path.abspath(path), self.root]) != self.root:
                continue  # never delete outside the store
            for p in (path, manifest_url(path)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))

    def list_urls(self, prefix: str = "") -> list[str]:
        out = []
        for dirpath, _dirs, files in os.walk(self._safe_dir(prefix)):
            out.extend(
                os.path.join(dirpath, f)
                for f in files
                if f.endswith(".tar") and not f.startswith(".")
            )
        return sorted(out)

    def list_partials(self) -> list[str]:
        """Temporary files of writes that never finished (a crashed process leaves these)."""
        out = []
        for dirpath, _dirs, files in os.walk(self.root):
            out.extend(os.path.join(dirpath, f) for f in files if PARTIAL_MARK in f)
        return sorted(out)

    def read_url(self, url: str) -> str:
        return url

    def supports_streaming(self) -> bool:
        return True
