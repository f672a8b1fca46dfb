"""Data stores: where shards are written (local disk, S3, PDS blobs)."""

from __future__ import annotations

from typing import Any

from .base import DataStore
from .disk import LocalDiskStore

_LAZY = {"S3DataStore": "s3", "S3Source": "s3"}


def __getattr__(name: str) -> Any:
    """Import the S3 module on first use only (it is the door to boto3)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = ["DataStore", "LocalDiskStore", "S3DataStore", "S3Source"]
